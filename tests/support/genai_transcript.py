"""What the google-genai SDK makes of one conversation through the gateway, as plain data: a whole
answer, a stream, a tool call and its result sent back, and a token count.

It holds only what a Gemini client reads (texts, roles, finish reasons, function calls, usage,
counts), nothing volatile (ids, dates), so one golden file states the answer whatever serves the
model: the native Gemini route, and a route translated to another protocol.
"""

from __future__ import annotations

from typing import Any

from tests.support.upstream import MockUpstream

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
}


def transcript(base_url: str, key: str, model: str, upstream: MockUpstream) -> dict[str, Any]:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=base_url))
    whole = client.models.generate_content(model=model, contents="hi")
    chunks = list(client.models.generate_content_stream(model=model, contents="hi"))
    tools = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[types.FunctionDeclaration(**WEATHER)])])
    upstream.ask_tool("get_weather", {"city": "Amsterdam"})
    asked = client.models.generate_content(model=model, contents="weather in Amsterdam?", config=tools)
    call = asked.function_calls[0] if asked.function_calls else None
    history: list[Any] = [
        types.Content(role="user", parts=[types.Part(text="weather in Amsterdam?")]),
        asked.candidates[0].content if asked.candidates else None,
        types.Content(role="user", parts=[types.Part.from_function_response(
            name="get_weather", response={"forecast": "rain"})]),
    ]
    answered = client.models.generate_content(model=model, contents=history, config=tools)
    counted = client.models.count_tokens(model=model, contents="count these five words please")
    return {
        "whole": _answer(whole),
        "stream": [_answer(chunk) for chunk in chunks],
        "tool_call": {"name": call.name, "args": call.args} if call is not None else None,
        "after_tool": _answer(answered),
        "count": counted.total_tokens,
    }


def _answer(reply: Any) -> dict[str, Any]:
    candidate = reply.candidates[0] if reply.candidates else None
    usage = reply.usage_metadata
    return {
        "text": reply.text,
        "role": candidate.content.role if candidate is not None and candidate.content is not None else None,
        "finish_reason": candidate.finish_reason.value if candidate is not None and candidate.finish_reason else None,
        "usage": [usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count] if usage else None,
    }
