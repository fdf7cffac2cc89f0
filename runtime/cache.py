"""Cache modes: how the proxy treats providers' prompt caches, per VK and (where allowed) per request.

- respect: the client's directives pass through untouched (Anthropic `cache_control`, Gemini
  `cachedContent`, OpenAI `prompt_cache_key`).
- disable: every such directive is stripped; with `salt`, a per-request marker is put at the very
  start of the prompt (`[gatepost-nocache <random>]` as the first line of the system prompt, or a
  system message of its own) so providers' automatic prefix caching cannot match an earlier request.
- force: Anthropic-bound requests that carry no `cache_control` get ephemeral breakpoints on the
  system prompt and on the last turn before the newest user message (the stable prefix).
"""

from __future__ import annotations

import secrets
from typing import Any

MODES = ("respect", "disable", "force")
OPENAI_DIRECTIVES = ("prompt_cache_key", "prompt_cache_retention")
GEMINI_DIRECTIVES = ("cachedContent", "cached_content")
EPHEMERAL = {"type": "ephemeral"}


def choose_mode(vk_mode: str, allow_override: bool, requested: str | None) -> tuple[str, str | None]:
    """(mode to apply, why a requested override was ignored or None)."""
    if requested is None:
        return vk_mode, None
    wanted = requested.strip().lower()
    if wanted not in MODES:
        return vk_mode, f"unknown cache mode {requested!r}; expected respect, disable or force"
    if not allow_override:
        return vk_mode, "this key's policy does not allow a per-request cache mode (cache.allow_override)"
    return wanted, None


def salt_marker() -> str:
    return f"[gatepost-nocache {secrets.token_hex(8)}]"


def apply(protocol: str, surface: str, payload: dict[str, Any], mode: str, salt: bool) -> tuple[dict[str, Any], bool]:
    """The payload as the mode wants it for a target speaking `protocol` (the request's shape is
    `surface`'s); True when breakpoints were injected."""
    if mode == "disable":
        stripped = strip(surface, payload)
        return (add_salt(surface, stripped) if salt else stripped), False
    if mode == "force" and surface == "messages" and not has_cache_control(payload):
        return inject_breakpoints(payload), True
    return payload, False


def strip(surface: str, payload: dict[str, Any]) -> dict[str, Any]:
    if surface in ("chat", "responses"):
        return {k: v for k, v in payload.items() if k not in OPENAI_DIRECTIVES}
    if surface == "gemini":
        return {k: v for k, v in payload.items() if k not in GEMINI_DIRECTIVES}
    stripped: dict[str, Any] = _without_cache_control(payload)
    return stripped


def _blocks_without(blocks: Any) -> Any:
    """Content blocks without `cache_control`, a tool result's own blocks included."""
    if not isinstance(blocks, list):
        return blocks
    out = []
    for block in blocks:
        if isinstance(block, dict):
            block = {k: v for k, v in block.items() if k != "cache_control"}
            if block.get("type") == "tool_result":
                block["content"] = _blocks_without(block.get("content"))
        out.append(block)
    return out


def _without_cache_control(payload: dict[str, Any]) -> dict[str, Any]:
    """Only where Anthropic defines the directive: the request itself, system blocks, tools and
    message content blocks. A tool's input schema or a tool call's input may well have a property
    called `cache_control`; that is the user's content and is left alone."""
    out = {k: v for k, v in payload.items() if k != "cache_control"}
    out["system"] = _blocks_without(payload.get("system"))
    if isinstance(payload.get("tools"), list):
        out["tools"] = [{k: v for k, v in t.items() if k != "cache_control"} if isinstance(t, dict) else t
                        for t in payload["tools"]]
    if isinstance(payload.get("messages"), list):
        out["messages"] = [{**m, "content": _blocks_without(m.get("content"))} if isinstance(m, dict) else m
                           for m in payload["messages"]]
    if "system" not in payload:
        del out["system"]
    return out


def _blocks_have(blocks: Any) -> bool:
    for block in blocks if isinstance(blocks, list) else ():
        if isinstance(block, dict) and ("cache_control" in block or (
                block.get("type") == "tool_result" and _blocks_have(block.get("content")))):
            return True
    return False


def has_cache_control(payload: Any) -> bool:
    """Whether the client placed a breakpoint anywhere Anthropic reads one (see `_without_cache_control`)."""
    if not isinstance(payload, dict):
        return False
    if "cache_control" in payload or _blocks_have(payload.get("system")):
        return True
    if any(isinstance(t, dict) and "cache_control" in t for t in payload.get("tools") or []):
        return True
    return any(isinstance(m, dict) and _blocks_have(m.get("content")) for m in payload.get("messages") or [])


def add_salt(surface: str, payload: dict[str, Any]) -> dict[str, Any]:
    marker = salt_marker()
    if surface == "chat":
        return {**payload, "messages": [{"role": "system", "content": marker}, *(payload.get("messages") or [])]}
    if surface == "responses":
        instructions = payload.get("instructions")
        return {**payload, "instructions": f"{marker}\n{instructions}" if instructions else marker}
    if surface == "messages":
        system = payload.get("system")
        if isinstance(system, list):
            return {**payload, "system": [{"type": "text", "text": marker}, *system]}
        return {**payload, "system": f"{marker}\n{system}" if system else marker}
    if surface == "gemini":
        instruction = payload.get("systemInstruction") or payload.get("system_instruction") or {"parts": []}
        parts = [{"text": marker}, *(instruction.get("parts") or [])]
        rest = {k: v for k, v in payload.items() if k not in ("systemInstruction", "system_instruction")}
        return {**rest, "systemInstruction": {**instruction, "parts": parts}}
    return payload


def inject_breakpoints(payload: dict[str, Any]) -> dict[str, Any]:
    """Ephemeral breakpoints on the system prompt and on the turn before the newest user message."""
    result = dict(payload)
    system = payload.get("system")
    if isinstance(system, str) and system:
        result["system"] = [{"type": "text", "text": system, "cache_control": dict(EPHEMERAL)}]
    elif isinstance(system, list) and system and isinstance(system[-1], dict):
        result["system"] = [*system[:-1], {**system[-1], "cache_control": dict(EPHEMERAL)}]
    messages = list(payload.get("messages") or [])
    stable = len(messages) - 2
    if stable >= 0 and isinstance(messages[stable], dict):
        message = messages[stable]
        content = message.get("content")
        if isinstance(content, str) and content:
            content = [{"type": "text", "text": content}]
        if isinstance(content, list) and content and isinstance(content[-1], dict):
            content = [*content[:-1], {**content[-1], "cache_control": dict(EPHEMERAL)}]
            messages[stable] = {**message, "content": content}
            result["messages"] = messages
    return result


def cache_status(mode: str, injected: bool, cached_tokens: int | None) -> str | None:
    """The value of `<prefix>Cache`: bypass, force, or hit/miss from the usage the upstream reported."""
    if mode == "disable":
        return "bypass"
    if injected:
        return "force"
    return lookup_result(cached_tokens)


def lookup_result(cached_tokens: int | None) -> str | None:
    """hit or miss from the cached input tokens the upstream reported; None when it reported no usage."""
    if cached_tokens is None:
        return None
    return "hit" if cached_tokens > 0 else "miss"
