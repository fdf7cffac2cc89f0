"""How a request reaches a target: as it is, when the target speaks the client's protocol, or
translated both ways when it does not (OpenAI Chat Completions and Responses <-> Anthropic).

The translations themselves are pure functions in `runtime/translate/`; this module picks one per
(surface, target protocol) and wraps its response side so the relay can feed it bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson

from . import cache
from .surfaces import Surface
from .table import Target
from .upstream import Outbound

Headers = list[tuple[bytes, bytes]]
JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
SSE_HEADERS: Headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]


class ResponseTranslator(Protocol):
    def headers(self, upstream: Headers) -> Headers: ...

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


@dataclass(frozen=True)
class Step:
    outbound: Outbound
    error: str | None = None
    translator: Callable[[Target], ResponseTranslator] | None = None
    injected: bool = False

    def response_translator(self, target: Target) -> ResponseTranslator | None:
        return self.translator(target) if self.translator is not None else None


def _with_usage(request: Outbound) -> Outbound:
    """Chat streams report usage only when asked; spend accounting needs it (README, Budgets)."""
    options = request.payload.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return request
    merged = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return replace(request, payload={**request.payload, "stream_options": merged})


Planner = Callable[[Outbound, Target], Step]
TRANSLATIONS: dict[tuple[str, str], Planner] = {}


def plan(surface: Surface, target: Target, request: Outbound) -> Step:
    """The request as `target` gets it: translated if need be, then with the cache mode applied."""
    if target.protocol in (surface.protocol, "mock"):
        step = Step(_with_usage(request) if surface.name == "chat" and request.stream else request)
    else:
        planner = TRANSLATIONS.get((surface.name, target.protocol))
        if planner is None:
            return Step(request, f"requests to {surface.name} cannot be translated to the {target.protocol} protocol")
        step = planner(request, target)
        if step.error is not None:
            return step
    out = step.outbound
    payload, injected = cache.apply(target.protocol, out.surface, out.payload, out.cache_mode, out.cache_salt)
    if payload is out.payload:
        return step
    return replace(step, outbound=replace(out, payload=payload), injected=injected)


class JsonTranslator:
    """A non-streaming answer: collected whole, converted once."""

    def __init__(self, convert: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self._convert = convert
        self._body: list[bytes] = []

    def headers(self, upstream: Headers) -> Headers:
        return list(JSON_HEADERS)

    def feed(self, chunk: bytes) -> bytes:
        self._body.append(chunk)
        return b""

    def finish(self) -> bytes:
        return orjson.dumps(self._convert(orjson.loads(b"".join(self._body))))
