"""OpenAI-shaped requests (Chat Completions, Responses) as Anthropic Messages requests.

Anthropic needs `max_tokens`; when the client set none, 4,096 is used. Tools other than
functions (Codex's `web_search`, `namespace`, ...) are left behind: Anthropic cannot run them. The
client's OpenAI cache directive (`prompt_cache_key`) has no Anthropic equivalent and does not
cross; cache mode `force` adds Anthropic breakpoints instead. What is refused and what is left
behind (and reported) is decided in `coverage`.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from ..exceptions import TranslationError
from . import coverage

DEFAULT_MAX_TOKENS = 4096


def _json_args(text: Any) -> Any:
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text.strip():
        return {}
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": text}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _image(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media = header[5:].split(";")[0] or "image/png"
        if ";base64" not in header:
            data = base64.b64encode(data.encode()).decode()
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text"):
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            url = part.get("image_url")
            blocks.append(_image(url.get("url", "") if isinstance(url, dict) else str(url)))
        elif kind == "input_image":
            if not part.get("image_url"):
                raise TranslationError("an input_image given by file_id refers to a file stored by OpenAI; "
                                       "send it as image_url (a data: URL) for Anthropic models")
            blocks.append(_image(str(part["image_url"])))
        elif kind in ("input_audio", "input_file", "file"):
            raise TranslationError(f"content of type {kind} cannot be sent to an Anthropic model through the gateway")
    return blocks


class _Conversation:
    """Anthropic wants alternating roles: consecutive turns of one role are merged."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def add(self, role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if self.messages and self.messages[-1]["role"] == role:
            self.messages[-1]["content"].extend(blocks)
        else:
            self.messages.append({"role": role, "content": list(blocks)})


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    result: dict[str, Any] | None = None
    if choice == "auto":
        result = {"type": "auto"}
    elif choice == "none":
        result = {"type": "none"}
    elif choice == "required":
        result = {"type": "any"}
    elif isinstance(choice, dict):
        name = choice.get("name") or (choice.get("function") or {}).get("name")
        if name:
            result = {"type": "tool", "name": name}
    if parallel is False:
        result = {**(result or {"type": "auto"}), "disable_parallel_tool_use": True}
    return result


def _common(p: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    for name in ("temperature", "top_p", "stream"):
        if p.get(name) is not None:
            out[name] = p[name]
    stop = p.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    choice = _tool_choice(p.get("tool_choice"), p.get("parallel_tool_calls"))
    if choice is not None and out.get("tools"):
        out["tool_choice"] = choice
    if isinstance(p.get("user"), str):
        out["metadata"] = {"user_id": p["user"]}
    return out


def chat_to_messages(p: dict[str, Any], model: str) -> dict[str, Any]:
    coverage.refuse_chat(p)
    system: list[str] = []
    conversation = _Conversation()
    for m in p.get("messages") or []:
        if not isinstance(m, dict):
            continue
        role, content = m.get("role"), m.get("content")
        if role in ("system", "developer"):
            system.append(_text(content))
        elif role == "user":
            conversation.add("user", _blocks(content))
        elif role == "assistant":
            blocks = _blocks(content)
            for call in m.get("tool_calls") or []:
                fn = call.get("function") or {}
                blocks.append({"type": "tool_use", "id": call.get("id"), "name": fn.get("name"),
                               "input": _json_args(fn.get("arguments"))})
            conversation.add("assistant", blocks)
        elif role == "tool":
            result = content if isinstance(content, str) else _blocks(content)
            conversation.add("user", [{"type": "tool_result", "tool_use_id": m.get("tool_call_id"), "content": result}])
        elif role == "function" or m.get("function_call"):
            raise TranslationError(
                "legacy function calling (a `function` role or `function_call`) has no ids to pair a call with its "
                "result; send tools and tool_calls instead"
            )
    out: dict[str, Any] = {
        "model": model,
        "max_tokens": p.get("max_completion_tokens") or p.get("max_tokens") or DEFAULT_MAX_TOKENS,
        "messages": conversation.messages,
    }
    if system:
        out["system"] = "\n\n".join(s for s in system if s)
    tools = [
        {"name": t["function"]["name"], "description": t["function"].get("description", ""),
         "input_schema": t["function"].get("parameters") or {"type": "object", "properties": {}}}
        for t in p.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function" and t.get("function")
    ]
    if tools:
        out["tools"] = tools
    return _common(p, out)


STORED_ITEMS = frozenset({"item_reference"})
TOOL_HISTORY = ("local_shell_call", "custom_tool_call", "computer_call", "code_interpreter_call", "mcp_call",
                "image_generation_call", "file_search_call", "apply_patch_call", "shell_call")
"""Input items that are turns of a conversation with tools Anthropic does not have: refused, since
leaving them out would hand the model a history with holes."""


def responses_to_messages(p: dict[str, Any], model: str) -> dict[str, Any]:
    coverage.refuse_responses(p)
    system: list[str] = []
    if isinstance(p.get("instructions"), str) and p["instructions"]:
        system.append(p["instructions"])
    conversation = _Conversation()
    items = p.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                system.append(_text(item.get("content")))
            elif role in ("user", "assistant"):
                conversation.add(role, _blocks(item.get("content")))
        elif kind == "function_call":
            conversation.add("assistant", [{"type": "tool_use", "id": item.get("call_id"), "name": item.get("name"),
                                            "input": _json_args(item.get("arguments"))}])
        elif kind == "function_call_output":
            output = item.get("output")
            conversation.add("user", [{"type": "tool_result", "tool_use_id": item.get("call_id"),
                                       "content": output if isinstance(output, str) else _text(output)}])
        elif isinstance(kind, str) and kind.startswith(TOOL_HISTORY):
            raise TranslationError(f"input item {kind} is a turn with a tool Anthropic models do not have; "
                                   "the conversation cannot be sent without it")
        elif kind in STORED_ITEMS:
            raise TranslationError(f"input item {kind} refers to an item stored by OpenAI; an Anthropic model cannot see it")
    out: dict[str, Any] = {
        "model": model,
        "max_tokens": p.get("max_output_tokens") or DEFAULT_MAX_TOKENS,
        "messages": conversation.messages,
    }
    if system:
        out["system"] = "\n\n".join(s for s in system if s)
    tools = [
        {"name": t["name"], "description": t.get("description") or "",
         "input_schema": t.get("parameters") or {"type": "object", "properties": {}}}
        for t in p.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function" and t.get("name")
    ]
    if tools:
        out["tools"] = tools
    return _common(p, out)
