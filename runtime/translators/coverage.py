"""What a translation carries, what it refuses, and what it leaves behind.

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

CHAT_CARRIED = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stream", "stream_options",
    "stop", "tools", "tool_choice", "parallel_tool_calls", "user", "n", "logprobs",
})
RESPONSES_CARRIED = frozenset({
    "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "stream", "tools", "tool_choice",
    "parallel_tool_calls", "user", "store",
})
MESSAGES_CARRIED = frozenset({
    "model", "messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences", "stream", "tools",
    "tool_choice", "metadata",
})
ANTHROPIC_SERVER_TOOLS = ("web_search", "web_fetch", "code_execution", "bash_", "text_editor", "computer", "memory",
                          "tool_search", "mcp")


def _present(value: Any) -> bool:
    return value is not None and value is not False and value != [] and value != {}


def dropped_fields(payload: dict[str, Any], carried: frozenset[str]) -> list[str]:
    return sorted(k for k, v in payload.items() if k not in carried and _present(v))


def refuse_chat(p: dict[str, Any]) -> None:
    if isinstance(p.get("n"), int) and p["n"] > 1:
        raise TranslationError("n > 1 (several choices) has no Anthropic equivalent")
    if p.get("logprobs") or p.get("top_logprobs"):
        raise TranslationError("logprobs are not available from Anthropic models")
    if p.get("functions"):
        raise TranslationError("legacy `functions` have no ids to pair calls with results; send tools instead")
    _refuse_temperature(p)
    _refuse_json_output((p.get("response_format") or {}).get("type") if isinstance(p.get("response_format"), dict) else None,
                        "response_format")
    if "audio" in (p.get("modalities") or []) or p.get("audio"):
        raise TranslationError("audio output is not available from Anthropic models")


def refuse_responses(p: dict[str, Any]) -> None:
    if p.get("previous_response_id"):
        raise TranslationError(
            "previous_response_id refers to a conversation stored by OpenAI; an Anthropic model cannot see it "
            "(send the whole input instead, as Codex does)"
        )
    if p.get("conversation"):
        raise TranslationError("conversation refers to state stored by OpenAI; an Anthropic model cannot see it")
    if p.get("background"):
        raise TranslationError("background responses are an OpenAI service, not available for Anthropic models")
    _refuse_temperature(p)
    text = p.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    _refuse_json_output(fmt.get("type") if isinstance(fmt, dict) else None, "text.format")
    for tool in p.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "custom":
            raise TranslationError(
                f"custom (free-form) tool '{tool.get('name')}' has no Anthropic equivalent; "
                "declare it as a function tool for routes that reach Anthropic models"
            )


def refuse_messages(p: dict[str, Any]) -> None:
    for tool in p.get("tools") or []:
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind != "custom" and kind.startswith(ANTHROPIC_SERVER_TOOLS):
            raise TranslationError(
                f"tool '{tool.get('name')}' of type {kind} is run by Anthropic (or defined by it); "
                "an OpenAI model cannot run it"
            )
    if p.get("mcp_servers"):
        raise TranslationError("mcp_servers are connected by Anthropic's API; an OpenAI model cannot reach them")
    if p.get("container"):
        raise TranslationError("container refers to Anthropic's code-execution sandbox; an OpenAI model has none")


def dropped_tools(tools: Any, kept_type: str) -> list[str]:
    """Tools of kinds the target cannot be given, as `tools:<kind>` entries of the dropped list."""
    kinds = sorted({
        str(t.get("type")) for t in tools or []
        if isinstance(t, dict) and t.get("type") not in (kept_type, None)
    })
    return [f"tools:{kind}" for kind in kinds]


def _refuse_json_output(kind: Any, field: str) -> None:
    if kind in ("json_object", "json_schema"):
        raise TranslationError(
            f"{field} {kind} asks for JSON output, which Anthropic models do not enforce; "
            "the answer could not be guaranteed to be JSON"
        )


def _refuse_temperature(p: dict[str, Any]) -> None:
    """OpenAI takes 0-2, Anthropic 0-1: scaling would change what the client asked for."""
    value = p.get("temperature")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 1:
        raise TranslationError(f"temperature {value} is above Anthropic's maximum of 1")
