"""What a translation carries, what it refuses, and what it leaves behind: the single statement,
per field and per protocol pair, of the hub's reach. A pair's coverage is its client protocol's
(what that protocol's reader carries into the hub's model, `CARRIED`, and what it refuses below)
with its target protocol's limits (`TARGET_LIMITS`: what that writer cannot give the model).

Every request field falls in one of three groups per direction:
- carried: translated to the target protocol's equivalent;
- refused: the client relies on it for the shape or meaning of the answer (JSON output, several
  choices, server-side state, tools only the source provider can run), so the request is refused
  (400 `untranslatable_request`, or the next hop of a fallback chain) rather than answered
  differently than asked;
- dropped: a hint the target has no equivalent for (a sampling seed, penalties, reasoning effort,
  client metadata, cache keys). The answer is still the one asked for; what was left behind is named
  in the `<prefix>Translation-Dropped` response header and the access log, never silently lost.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import TranslationError
from .model import Request

CHAT_CARRIED = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stream", "stream_options",
    "stop", "tools", "tool_choice", "parallel_tool_calls", "user", "n", "logprobs", "response_format",
})
RESPONSES_CARRIED = frozenset({
    "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "stream", "tools", "tool_choice",
    "parallel_tool_calls", "user", "store", "text",
})
MESSAGES_CARRIED = frozenset({
    "model", "messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences", "stream", "tools",
    "tool_choice", "metadata",
})
GEMINI_CARRIED = frozenset({"model", "contents", "systemInstruction", "tools", "toolConfig", "generationConfig"})
"""Gemini's fields by their JSON names (a proto name such as `system_instruction` counts as its JSON
name); generationConfig is carried setting by setting (gemini.GENERATION_CARRIED), the rest of it
reported as `generationConfig.<name>`."""
CARRIED = {"chat": CHAT_CARRIED, "responses": RESPONSES_CARRIED, "messages": MESSAGES_CARRIED, "gemini": GEMINI_CARRIED}
"""Per client protocol, the request fields its reader carries into the hub's model; any other
field that is set is refused below or reported as left behind."""
TARGET_LIMITS = {
    "chat": (),
    "responses": ("dropped: stop (Responses has no stop sequences)",),
    "messages": ("refused: temperature above 1", "refused: JSON output (response_format, text.format, "
                 "generationConfig.responseMimeType/responseSchema)",
                 "dropped: top_p beside temperature (current Claude models take one or the other)"),
    "gemini": ("dropped: parallel_tool_calls false (Gemini has no switch for it)",),
}
"""Per target protocol, what its writer cannot give the model of what the hub carries (see
`refuse_for_target` and each writer); everything else the hub carries reaches every target."""
ANTHROPIC_SERVER_TOOLS = ("web_search", "web_fetch", "code_execution", "bash_", "text_editor", "computer", "memory",
                          "tool_search", "mcp")


def _present(value: Any) -> bool:
    return value is not None and value is not False and value != [] and value != {}


def dropped_fields(payload: dict[str, Any], carried: frozenset[str]) -> list[str]:
    return sorted(k for k, v in payload.items() if k not in carried and _present(v))


def refuse_chat(p: dict[str, Any]) -> None:
    if isinstance(p.get("n"), int) and p["n"] > 1:
        raise TranslationError("n > 1 (several choices) cannot be translated: the other protocols answer with one")
    if p.get("logprobs") or p.get("top_logprobs"):
        raise TranslationError("logprobs are not available from models of another protocol")
    if p.get("functions"):
        raise TranslationError("legacy `functions` have no ids to pair calls with results; send tools instead")
    if "audio" in (p.get("modalities") or []) or p.get("audio"):
        raise TranslationError("audio output cannot be translated to another protocol")


def refuse_responses(p: dict[str, Any]) -> None:
    if p.get("previous_response_id"):
        raise TranslationError(
            "previous_response_id refers to a conversation stored by OpenAI; a model of another protocol cannot see it "
            "(send the whole input instead, as Codex does)"
        )
    if p.get("conversation"):
        raise TranslationError("conversation refers to state stored by OpenAI; a model of another protocol cannot see it")
    if p.get("background"):
        raise TranslationError("background responses are an OpenAI service, not available for models of another protocol")
    for tool in p.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "custom":
            raise TranslationError(
                f"custom (free-form) tool '{tool.get('name')}' has no equivalent in other protocols; "
                "declare it as a function tool for routes that reach models of another protocol"
            )


def refuse_messages(p: dict[str, Any]) -> None:
    for tool in p.get("tools") or []:
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind != "custom" and kind.startswith(ANTHROPIC_SERVER_TOOLS):
            raise TranslationError(
                f"tool '{tool.get('name')}' of type {kind} is run by Anthropic (or defined by it); "
                "a model of another protocol cannot run it"
            )
    if p.get("mcp_servers"):
        raise TranslationError("mcp_servers are connected by Anthropic's API; a model of another protocol cannot reach them")
    if p.get("container"):
        raise TranslationError("container refers to Anthropic's code-execution sandbox; a model of another protocol has none")


def refuse_gemini(p: dict[str, Any]) -> None:
    """`p` with its own and its generationConfig's fields by their JSON names."""
    config = p.get("generationConfig") or {}
    if isinstance(config, dict) and isinstance(config.get("candidateCount"), int) and config["candidateCount"] > 1:
        raise TranslationError("generationConfig.candidateCount > 1 (several candidates) cannot be translated: "
                               "the other protocols answer with one")
    if isinstance(config, dict) and config.get("responseLogprobs"):
        raise TranslationError("generationConfig.responseLogprobs: logprobs are not available from models of another protocol")
    if p.get("cachedContent"):
        raise TranslationError("cachedContent refers to content stored by Google; a model of another protocol cannot see it")


def refuse_for_target(request: Request, wire: str) -> None:
    """What a target protocol cannot be given of what the hub carries (TARGET_LIMITS)."""
    if wire != "messages":
        return
    value = request.temperature
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 1:
        raise TranslationError(f"temperature {value} is above Anthropic's maximum of 1")
    if request.output is not None:
        raise TranslationError(
            f"{request.output.field} {request.output.kind} asks for JSON output, which Anthropic models do not enforce; "
            "the answer could not be guaranteed to be JSON"
        )


def dropped_tools(tools: Any, kept_type: str) -> list[str]:
    """Tools of kinds the target cannot be given, as `tools:<kind>` entries of the dropped list."""
    kinds = sorted({
        str(t.get("type")) for t in tools or []
        if isinstance(t, dict) and t.get("type") not in (kept_type, None)
    })
    return [f"tools:{kind}" for kind in kinds]

