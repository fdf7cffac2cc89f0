"""Anthropic Messages requests as OpenAI Chat Completions requests, for Claude Code or the
anthropic SDK on a route that reaches an OpenAI model. `cache_control` has no OpenAI equivalent
and is left behind (OpenAI caches prompt prefixes automatically). Chat Completions is the surface
every OpenAI-compatible provider serves, so Anthropic clients reach OpenAI models through it, not
through the Responses API. A tool result marked `is_error` is prefixed `Error: `; its images
follow it in a user turn (OpenAI tool messages carry only text)."""

from __future__ import annotations

from typing import Any

import orjson

from ..exceptions import TranslationError
from . import coverage


def _parts(blocks: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(content parts, tool calls, tool results) of one Anthropic turn."""
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    late: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            source = block.get("source") or {}
            url = source.get("url") if source.get("type") == "url" else \
                f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()}})
        elif kind == "tool_result":
            content = block.get("content")
            items = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
            inner, _, _ = _parts([c for c in items if isinstance(c, dict)])
            text = "\n\n".join(c["text"] for c in inner if c["type"] == "text")
            if block.get("is_error"):
                text = f"Error: {text}"
            results.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
            images = [c for c in inner if c["type"] == "image_url"]
            if images:
                late.append({"type": "text", "text": f"(images returned by tool call {block.get('tool_use_id')})"})
                late.extend(images)
        elif kind in ("document", "search_result"):
            raise TranslationError(f"content blocks of type {kind} cannot be sent to an OpenAI model")
    if late:
        results.append({"role": "user", "content": late})
    return parts, calls, results


def _flat(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def messages_to_chat(p: dict[str, Any], model: str) -> dict[str, Any]:
    coverage.refuse_messages(p)
    messages: list[dict[str, Any]] = []
    system = p.get("system")
    if isinstance(system, str) and system:
        messages.append({"role": "system", "content": system})
    elif isinstance(system, list):
        text = "\n\n".join(b["text"] for b in system if isinstance(b, dict) and isinstance(b.get("text"), str) and b["text"])
        if text:
            messages.append({"role": "system", "content": text})
    for m in p.get("messages") or []:
        role, content = m.get("role"), m.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        parts, calls, results = _parts(blocks)
        messages.extend(results)
        if role == "assistant":
            message: dict[str, Any] = {"role": "assistant", "content": _flat(parts) if parts else None}
            if calls:
                message["tool_calls"] = calls
            messages.append(message)
        elif parts:
            messages.append({"role": "user", "content": _flat(parts)})
    out: dict[str, Any] = {"model": model, "messages": messages}
    if p.get("max_tokens"):
        out["max_completion_tokens"] = p["max_tokens"]
    for name in ("temperature", "top_p"):
        if p.get(name) is not None:
            out[name] = p[name]
    if p.get("stop_sequences"):
        out["stop"] = list(p["stop_sequences"])
    if p.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    tools = [
        {"type": "function", "function": {"name": t.get("name"), "description": t.get("description", ""),
                                          "parameters": t.get("input_schema") or {"type": "object"}}}
        for t in p.get("tools") or [] if isinstance(t, dict) and t.get("name")
    ]
    if tools:
        out["tools"] = tools
        choice = p.get("tool_choice") or {}
        kind = choice.get("type")
        if kind == "any":
            out["tool_choice"] = "required"
        elif kind == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        elif kind == "none":
            out["tool_choice"] = "none"
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    user = (p.get("metadata") or {}).get("user_id")
    if isinstance(user, str):
        out["user"] = user
    return out
