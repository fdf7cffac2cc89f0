"""The hub's one model of a conversation: a request, its answer, and the events of a streamed
answer, whatever protocol spoke them.

Each protocol has one reader (its requests, answers and stream events into this model) and one
writer (this model into its requests, answers and stream events); a translation is a reader and a
writer, so a protocol is added once rather than once per pair. What the model has no room for is
refused or left behind by the reader, as `coverage` states.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

Stop = Literal["end", "stop_sequence", "length", "tool_use", "refusal"]
"""Why an answer ended, in the hub's words (each writer names it its own way)."""


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Image:
    """An image as a URL: `data:<media type>;base64,<data>` for inline bytes, else a web address."""

    url: str

    @property
    def inline(self) -> tuple[str, str] | None:
        """(media type, base64 data) of an inline image; None for one given by address."""
        if not self.url.startswith("data:"):
            return None
        header, _, data = self.url.partition(",")
        media = header[5:].split(";")[0] or "image/png"
        if ";base64" not in header:
            data = base64.b64encode(data.encode()).decode()
        return media, data

    @staticmethod
    def of(media_type: str, data: str) -> Image:
        return Image(f"data:{media_type or 'image/png'};base64,{data}")


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str
    """The call's arguments as JSON text (what OpenAI sends; parsed for Anthropic and Gemini)."""

    def input(self) -> object:
        """The arguments as a JSON value; text that is not JSON is kept as `_raw_arguments`."""
        if not self.arguments.strip():
            return {}
        try:
            return orjson.loads(self.arguments)
        except orjson.JSONDecodeError:
            return {"_raw_arguments": self.arguments}


@dataclass(frozen=True, slots=True)
class ToolResult:
    call_id: str
    parts: tuple[Text | Image, ...]
    is_error: bool = False
    name: str | None = None
    """The tool's name when the client's protocol names it (Gemini pairs results by name)."""

    def text(self) -> str:
        return "\n\n".join(p.text for p in self.parts if isinstance(p, Text))

    @property
    def images(self) -> tuple[Image, ...]:
        return tuple(p for p in self.parts if isinstance(p, Image))


Part = Text | Image | ToolCall | ToolResult


@dataclass(slots=True)
class Turn:
    role: Literal["user", "assistant"]
    parts: list[Part]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, object]


@dataclass(frozen=True, slots=True)
class ToolChoice:
    kind: Literal["auto", "none", "required", "tool"]
    name: str | None = None


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """JSON output the client asked for: any JSON object, or one matching `schema`."""

    kind: Literal["json_object", "json_schema"]
    name: str = "output"
    schema: dict[str, object] | None = None
    strict: bool | None = None
    field: str = "response_format"
    """The client's name for the setting, for a refusal to name it."""


@dataclass(slots=True)
class Request:
    system: list[str] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    """A chat client asked for the usage chunk (`stream_options.include_usage`)."""
    user: str | None = None
    output: OutputFormat | None = None
    dropped: list[str] = field(default_factory=list)
    """What the reader or the writer left behind (see coverage)."""

    def add(self, role: Literal["user", "assistant"], parts: list[Part]) -> None:
        if parts:
            self.turns.append(Turn(role, list(parts)))

    def merged_turns(self, roles: tuple[str, ...] = ("user", "assistant")) -> list[Turn]:
        """The turns with consecutive ones of a role in `roles` made one (for protocols whose roles
        alternate, and for OpenAI's assistant turns, which hold all of a step's tool calls)."""
        turns: list[Turn] = []
        for turn in self.turns:
            if turns and turns[-1].role == turn.role and turn.role in roles:
                turns[-1] = Turn(turn.role, [*turns[-1].parts, *turn.parts])
            else:
                turns.append(Turn(turn.role, list(turn.parts)))
        return turns

    def tool_names(self) -> dict[str, str]:
        """Each tool call's name by its id, for protocols that pair results by name."""
        return {p.id: p.name for t in self.turns for p in t.parts if isinstance(p, ToolCall)}


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    """Every input token, cached ones included."""
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    """Every output token, reasoning ones included."""
    reasoning_tokens: int = 0

    def merged(self, other: Usage) -> Usage:
        """Streams report usage in parts or as running totals: the larger figure of each kind."""
        return Usage(*(max(a, b) for a, b in zip(self.figures(), other.figures(), strict=True)))

    def figures(self) -> tuple[int, int, int, int, int]:
        return self.input_tokens, self.cached_tokens, self.cache_write_tokens, self.output_tokens, self.reasoning_tokens


@dataclass(slots=True)
class Answer:
    id: str
    model: str
    parts: list[Text | ToolCall]
    stop: Stop = "end"
    usage: Usage = field(default_factory=Usage)
    created: int | None = None


@dataclass(frozen=True, slots=True)
class Started:
    id: str
    usage: Usage | None = None
    created: int | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    index: int
    """The call's place among this answer's calls (0, 1, ...)."""
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolArguments:
    index: int
    fragment: str


@dataclass(frozen=True, slots=True)
class UsageSeen:
    usage: Usage


@dataclass(frozen=True, slots=True)
class Stopped:
    """The answer's stop reason is known; more usage may follow before it is Finished."""

    stop: Stop


@dataclass(frozen=True, slots=True)
class Finished:
    """The stream's end, as its protocol marks it."""


@dataclass(frozen=True, slots=True)
class Failed:
    kind: str
    message: str


Event = Started | TextDelta | ToolCallStarted | ToolArguments | UsageSeen | Stopped | Finished | Failed


def joined_text(content: Any) -> str:
    """The text of a content field that is a string or a list of parts (those with a `text`)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""
