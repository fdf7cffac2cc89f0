"""How a request reaches a target: as it is, when the target speaks the client's protocol, or
through the translation hub when it does not.

The hub reads the client's request into one model of a conversation (`translators/model.py`) and
writes it in the target's protocol; the answer, whole or streamed, goes back the same way. Which
happens is a function of the client's surface and the wire protocols the target serves (`WIRES`,
keyed by the target's protocol, or the one surface of a single-wire target): a provider type that
speaks only Chat Completions gives its targets `wire="chat"`, and Responses clients reach it
translated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson

from . import cache
from .count_translation import COUNTING_SURFACE, count_answer, count_request
from .exceptions import TranslationError
from .surfaces import Surface
from .table import Target
from .translators import CODECS, Codec, StreamReader, StreamWriter
from .translators.model import Request
from .translators.sse import SseEvent, SseParser
from .upstream import Outbound

Headers = list[tuple[bytes, bytes]]
JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
SSE_HEADERS: Headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
WIRES: dict[str, tuple[str, ...]] = {
    "openai": ("chat", "responses"),
    "anthropic": ("messages",),
    "gemini": ("gemini",),
}
"""The surfaces a target of each protocol serves natively, the first one the one every other
client is translated to (Chat Completions for OpenAI: every OpenAI-compatible provider has it)."""


def target_wire(surface: str, target: Target) -> str | None:
    """The surface `target` is spoken to in for a client of `surface`: None when it serves the
    client's own (the client's bytes pass untouched), else the one it is translated to: the one
    surface a single-wire target accepts (`Target.wire`), or the first of its protocol's `WIRES`.
    Raises TranslationError when no protocol of the hub serves the target."""
    if target.wire is not None:
        return None if surface == target.wire else target.wire
    if target.protocol == "mock":
        return None
    served = WIRES.get(target.protocol)
    if served is None:
        raise TranslationError(f"the hub has no translation to the {target.protocol} protocol")
    return None if surface in served else served[0]


class ResponseTranslator(Protocol):
    def headers(self, upstream: Headers) -> Headers: ...

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...

    def error(self, event: bytes) -> bytes:
        """The surface's error event for a stream that failed, as this translation must end it."""
        ...


@dataclass(frozen=True)
class Step:
    outbound: Outbound
    error: str | None = None
    translator: Callable[[Target], ResponseTranslator] | None = None
    injected: bool = False
    dropped: tuple[str, ...] = ()
    """Request fields the target's protocol has no equivalent for (see translators/coverage.py)."""
    translated: bool = False

    def response_translator(self, target: Target) -> ResponseTranslator | None:
        return self.translator(target) if self.translator is not None else None


def _asked_for_usage(payload: dict[str, Any]) -> bool:
    options = payload.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _native_chat_stream(request: Outbound) -> Step:
    """Chat streams report usage only when asked, and spend accounting needs it: the proxy asks on
    the client's behalf and hides the answer from a client that did not (README, Budgets)."""
    if _asked_for_usage(request.payload):
        return Step(request)
    options = request.payload.get("stream_options")
    merged = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    asked = replace(request, payload={**request.payload, "stream_options": merged})
    return Step(asked, translator=lambda _: UsageChunkFilter())


class UsageChunkFilter:
    """Removes what `include_usage` added to a chat stream: the final chunk with empty `choices`
    and the `"usage": null` on every other chunk. The budget tap reads the upstream bytes before
    this filter, so the charge still sees the usage."""

    def __init__(self) -> None:
        self._pending = b""

    def headers(self, upstream: Headers) -> Headers:
        return upstream

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk
        cut = data.rfind(b"\n") + 1
        self._pending = data[cut:]
        return self._filter(data[:cut]) if cut else b""

    def error(self, event: bytes) -> bytes:
        return event

    def finish(self) -> bytes:
        tail, self._pending = self._pending, b""
        return self._filter(tail)

    @staticmethod
    def _filter(block: bytes) -> bytes:
        if b'"usage"' not in block:
            return block
        lines = block.split(b"\n")
        kept: list[bytes] = []
        for line in lines:
            if line.startswith(b"data:") and b'"usage"' in line:
                line = UsageChunkFilter._without_usage(line)
                if not line:
                    continue
            kept.append(line)
        return b"\n".join(kept)

    @staticmethod
    def _without_usage(line: bytes) -> bytes:
        compact = line.replace(b',"usage":null', b"").replace(b'"usage":null,', b"")
        if b'"usage"' not in compact:
            return compact
        try:
            event = orjson.loads(line[5:])
        except orjson.JSONDecodeError:
            return line
        if not isinstance(event, dict) or "usage" not in event:
            return line
        if event.get("choices") == [] and isinstance(event["usage"], dict):
            return b""
        if event["usage"] is None:
            del event["usage"]
            return b"data: " + orjson.dumps(event)
        return line


class SseToJsonArray:
    """Gemini's stream without `alt=sse`: the same chunks as one JSON array, sent as they come."""

    def __init__(self) -> None:
        self._started = False

    def feed(self, event: Any) -> list[bytes]:
        data = event.data.strip()
        if not data:
            return []
        lead = b",\r\n" if self._started else b"["
        self._started = True
        return [lead + data.encode()]

    def finish(self) -> list[bytes]:
        return [b"]" if self._started else b"[]"]

    def error(self, event: bytes) -> bytes:
        """The SSE error event's JSON as the array's last element, and the array closed."""
        data = b"".join(line[5:].strip() for line in event.splitlines() if line.startswith(b"data:"))
        return (b",\r\n" if self._started else b"[") + data + b"]"


class StreamTranslator:
    """SSE in, SSE out: parses upstream events and hands each to a protocol translator."""

    def __init__(self, inner: Any, headers: Headers = SSE_HEADERS) -> None:
        self._parser = SseParser()
        self._inner = inner
        self._headers = headers

    def headers(self, upstream: Headers) -> Headers:
        return list(self._headers)

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(out for event in self._parser.feed(chunk) for out in self._inner.feed(event))

    def error(self, event: bytes) -> bytes:
        end = getattr(self._inner, "error", None)
        return end(event) if end is not None else event

    def finish(self) -> bytes:
        tail = [out for event in self._parser.finish() for out in self._inner.feed(event)]
        end = getattr(self._inner, "finish", None)
        if end is not None:
            tail += end()
        return b"".join(tail)


class HubStream:
    """One translated stream: the target protocol's reader, the client protocol's writer."""

    def __init__(self, reader: StreamReader, writer: StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    def feed(self, event: SseEvent) -> list[bytes]:
        write = self._writer.write
        return [out for e in self._reader.feed(event) for out in write(e)]

    def finish(self) -> list[bytes]:
        return self._writer.finish()

    def error(self, event: bytes) -> bytes:
        return self._writer.error(event)


def _translate(client: Codec, wire: Codec, request: Outbound, target: Target) -> Step:
    hub: Request = client.read_request(request.payload)
    hub.stream = request.stream
    payload = wire.write_request(hub, target.upstream_model)
    model, sse = target.model, request.sse

    def translator(_: Target) -> ResponseTranslator:
        if request.stream:
            writer = client.stream_writer(hub, model, sse)
            return StreamTranslator(HubStream(wire.stream_reader(), writer), SSE_HEADERS if sse else JSON_HEADERS)
        return JsonTranslator(lambda answer: client.write_answer(wire.read_answer(answer), hub, model))

    outbound = replace(request, surface=wire.name, payload=payload, gemini_method=None, sse=True)
    return Step(outbound, translator=translator, dropped=tuple(hub.dropped), translated=True)


def _translate_count(surface: Surface, wire: str, request: Outbound, target: Target) -> Step:
    try:
        payload, dropped = count_request(surface.name, wire, request.payload, target.upstream_model)
    except (TranslationError, TypeError, AttributeError, KeyError, ValueError) as exc:
        return Step(request, f"this token count cannot be translated for {target.provider}/{target.model}: {exc}")

    def translator(_: Target) -> ResponseTranslator:
        return JsonTranslator(lambda answer: count_answer(surface.name, wire, answer))

    outbound = replace(request, surface=wire, payload=payload, gemini_method="countTokens", stream=False)
    return Step(outbound, translator=translator, dropped=tuple(dropped), translated=True)


def plan(surface: Surface, target: Target, request: Outbound) -> Step:
    """The request as `target` gets it: translated if need be, then with the cache mode applied."""
    try:
        wire = target_wire(surface.name, target)
    except TranslationError as exc:
        return Step(request, f"requests to {surface.name} cannot be translated for {target.provider}/{target.model}: {exc}")
    if request.count and target.protocol in COUNTING_SURFACE:
        wire = None if surface.name == COUNTING_SURFACE[target.protocol] else COUNTING_SURFACE[target.protocol]
        if wire is not None:
            return _translate_count(surface, wire, request, target)
    if wire is None:
        if surface.name == "chat" and request.stream:
            step = _native_chat_stream(request)
        elif surface.name == "gemini" and request.stream and not request.sse:
            step = Step(request, translator=lambda _: StreamTranslator(SseToJsonArray(), JSON_HEADERS))
        else:
            step = Step(request)
    else:
        try:
            step = _translate(CODECS[surface.name], CODECS[wire], request, target)
        except TranslationError as exc:
            return Step(request, f"this request cannot be translated for {target.provider}/{target.model}: {exc}")
        except (TypeError, AttributeError, KeyError, ValueError) as exc:
            return Step(request, f"this request cannot be translated for {target.provider}/{target.model}: it does not "
                                 f"have the shape of a {surface.name} request ({type(exc).__name__}: {exc})")
    out = step.outbound
    payload, injected = cache.apply(target.protocol, out.surface, out.payload, out.cache_mode, out.cache_salt)
    if payload is out.payload:
        return step
    return replace(step, outbound=replace(out, payload=payload), injected=injected)


class _WholeBody:
    """Collects an answer whole; `finish` converts it once."""

    def __init__(self) -> None:
        self._body: list[bytes] = []

    def headers(self, upstream: Headers) -> Headers:
        return list(JSON_HEADERS)

    def feed(self, chunk: bytes) -> bytes:
        self._body.append(chunk)
        return b""

    def error(self, event: bytes) -> bytes:
        return event


class JsonTranslator(_WholeBody):
    """A non-streaming answer: collected whole, converted once."""

    def __init__(self, convert: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        super().__init__()
        self._convert = convert

    def finish(self) -> bytes:
        """Raises TranslationError when the answer is not one of the target protocol's."""
        try:
            answer = orjson.loads(b"".join(self._body))
        except orjson.JSONDecodeError as exc:
            raise TranslationError(f"the answer is not JSON ({exc})") from exc
        if not isinstance(answer, dict):
            raise TranslationError("the answer is not a JSON object")
        try:
            return orjson.dumps(self._convert(answer))
        except (TypeError, AttributeError, KeyError, ValueError) as exc:
            raise TranslationError(f"the answer does not have its protocol's shape ({type(exc).__name__}: {exc})") from exc


def upstream_error(raw: bytes) -> tuple[str, str]:
    """(type or code, message) of an error body in any provider's shape; the raw text otherwise."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "provider_error", raw.decode("utf-8", "replace")[:500]
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return "provider_error", raw.decode("utf-8", "replace")[:500]
    kind = error.get("type") or error.get("status") or error.get("code") or "provider_error"
    return str(kind), str(error.get("message") or "")


class ErrorTranslator(_WholeBody):
    """A translated hop's error answer, re-shaped for the client's surface: the client's SDK parses
    it as its own provider's error, and the message says which provider and protocol it came from."""

    def __init__(self, surface: Surface, target: Target, status: int) -> None:
        super().__init__()
        self._surface = surface
        self._target = target
        self._status = status

    def finish(self) -> bytes:
        kind, message = upstream_error(b"".join(self._body))
        target = self._target
        text = f"{target.provider}/{target.upstream_model} ({target.protocol}, translated) answered {self._status}: {message}"
        meta = {"provider": target.provider, "translated_from": target.protocol, "upstream_error_type": kind}
        return self._surface.error_body(self._status, kind, text, None, meta)
