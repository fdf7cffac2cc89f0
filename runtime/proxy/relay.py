"""Relaying a target's answer to the client: whole, or as a stream event by event; translated when
the target speaks another protocol; with the gateway's headers and the cache status."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

import orjson

from ..access_log import Attempt
from ..budget.cost import usage_from
from ..budget.tap import UsageTap
from ..cache import cache_status, lookup_result
from ..circuit import Circuits
from ..exceptions import AnswerTooLarge, StreamCutShort, TranslationError, UpstreamError
from ..metrics import Metrics
from ..ratelimit.headers import limit_headers, merged
from ..request_ids import HEADER as REQUEST_ID
from ..scrub import CredentialScrubber
from ..streams import HeldAnswer
from ..table import Credential, Target
from ..translation import ErrorTranslator, ResponseTranslator, Step
from ..translators.sse import SseParser
from .answers import stamped
from .asgi import Headers, Send, respond
from .exchange import Exchange

UNTRANSLATABLE_EVENT = "untranslatable_event"
"""The stream error of an event the gateway could not translate (an UpstreamError names its own)."""


@dataclass(slots=True)
class CacheState:
    mode: str
    injected: bool
    header_name: bytes

    def header(self, cached_tokens: int | None) -> str | None:
        return cache_status(self.mode, self.injected, cached_tokens)


@dataclass(slots=True)
class Answer:
    """A target's answer, held until its first event (or whole), on its way to the client."""

    held: HeldAnswer
    target: Target
    credential: Credential
    headers: Headers
    translator: ResponseTranslator | None
    cache: CacheState


class Relay:
    def __init__(self, metrics: Metrics, circuits: Circuits) -> None:
        self.metrics = metrics
        self.circuits = circuits

    async def answer(
        self, exchange: Exchange, target: Target, step: Step, held: HeldAnswer, abandoned: int, credential: Credential
    ) -> int:
        """The answer of `target` on its way with the gateway's headers (the provider's own request id
        renamed `<prefix>Upstream-Request-Id`: `x-request-id` is the gateway's): provider, the
        credential's id where the provider lists api_keys, translation, Fallback-Count (the
        target's place in the route: every target before it was skipped or failed), a refused
        cache override, budget warnings, and the cache status."""
        surface, record, charge = exchange.surface, exchange.record, exchange.charge
        prefix = exchange.serving.header_prefix
        status = held.response.status
        provider = target.provider
        self.metrics.upstream_attempts.inc(provider, "answered")
        record.provider = provider
        pooled = exchange.serving.table.providers[provider].pooled
        if pooled:
            record.credential = credential.id
        record.upstream_model = target.upstream_model
        if exchange.attempts:
            answered: Attempt = {"provider": provider, "model": target.model, "reason": "answered"}
            if pooled:
                answered["credential"] = credential.id
            record.attempts = [*exchange.attempts, answered]
        translated = step.translated
        translator: ResponseTranslator | None
        if 200 <= status < 300:
            translator = step.response_translator(target)
        else:
            translator = ErrorTranslator(surface, target, status) if translated else None
        upstream_headers = held.response.headers if translator is None else translator.headers(held.response.headers)
        upstream_id = prefix + b"upstream-request-id"
        headers = stamped(exchange.serving, [(upstream_id, v) if k == REQUEST_ID else (k, v) for k, v in upstream_headers])
        label = f"{provider}; translated-from={target.protocol}" if translated else provider
        headers.append((prefix + b"provider", label.encode()))
        if pooled:
            headers.append((prefix + b"credential", credential.id.encode()))
        if translated:
            record.translated = (f"{surface.name}<-{target.wire}" if target.protocol == surface.protocol and target.wire
                                 else f"{surface.protocol}<-{target.protocol}")
            if step.dropped:
                headers.append((prefix + b"translation-dropped", ",".join(step.dropped).encode()))
                record.translation_dropped = list(step.dropped)
        headers.append((prefix + b"fallback-count", str(abandoned).encode()))
        if exchange.request.count:
            headers.append((prefix + b"token-count", b"provider"))
        record.fallback_count = abandoned
        if charge.admission is not None and charge.admission.limits:
            headers[:] = merged(surface.protocol, headers, limit_headers(surface.protocol, charge.admission.limits))
        refused = record.cache_override_refused
        if refused:
            headers.append((prefix + b"cache-override", f"refused; {refused}".encode("latin-1", "replace")))
        charge.answered(target.model, status, exchange.request.stream)
        cache = CacheState(exchange.request.cache_mode, step.injected, prefix + b"cache")
        answer = Answer(held, target, credential, headers, translator, cache)
        if charge.stream:
            _warn(exchange, headers, 0)
            return await self._stream(exchange, answer)
        return await self._whole(exchange, answer)

    async def _whole(self, exchange: Exchange, answer: Answer) -> int:
        """A non-streaming answer, read whole before its start was sent: its usage decides the cache
        header. A translated answer that is not one of its protocol's is a 502, not a crash or an
        empty answer."""
        charge, translator, target, headers = exchange.charge, answer.translator, answer.target, answer.headers
        response, body, parsed = answer.held.response, answer.held.head, answer.held.parsed
        status = response.status
        scrub = exchange.serving.scrub
        await response.aclose()
        if charge.tap is not None:
            charge.tap.feed(body, parsed)
        charge.finish()
        if translator is not None:
            translator.feed(body)
            try:
                body = translator.finish()
            except TranslationError as exc:
                exchange.record.translation_error = scrub.text(str(exc))
                message = f"{target.provider}/{target.upstream_model} answered {status}, but {exchange.record.translation_error}"
                meta = {"provider": target.provider}
                status, body = 502, exchange.surface.error_body(502, "provider_error", message, None, meta)
                headers = [(k, v) for k, v in headers if k != b"content-type"] + [(b"content-type", b"application/json")]
        header = self._record_cache(exchange, answer.cache)
        if header is not None:
            headers.append((answer.cache.header_name, header.encode()))
        if charge.admission is not None and charge.admission.warns:
            own = charge.amount(exchange.serving.table)
            _warn(exchange, headers, charge.admission.estimate if own is None else own)
        await respond(exchange.send, status, scrub(body), headers)
        charge.complete = True
        return status

    async def _stream(self, exchange: Exchange, answer: Answer) -> int:
        """A stream, whole events at a time. Its cache status is its first event's, where that one
        reports usage (Anthropic's `message_start`, Gemini's chunks); OpenAI's streams report usage
        last, so under `respect` their headers have none (the access log and metrics do). It ends
        with an error event in the surface's format
        when the upstream fails or stops before its final event, never as a silent success. Such a
        failure counts against the provider's circuit (it answered, then failed) and in
        `gatepost_stream_errors_total`; so does an event the proxy could not translate."""
        send, charge, translator, held = exchange.send, exchange.charge, answer.translator, answer.held
        response, framer, tap, scrub = held.response, held.framer, charge.tap, exchange.serving.scrub
        headers = answer.headers
        header = answer.cache.header(_first_event_cached_tokens(held.head))
        if header is not None:
            headers.append((answer.cache.header_name, header.encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        complete = False
        try:
            await _relay_part(send, held.head, tap, translator, scrub)
            if framer is not None and framer.ended:
                await _stop(held.rest)
            elif framer is not None:
                async for chunk in held.rest:
                    events = framer.feed(chunk)
                    if events:
                        await _relay_part(send, events, tap, translator, scrub)
                        if framer.ended:
                            await _stop(held.rest)
                            break
                else:
                    tail, ended = framer.close()
                    if tail:
                        await _relay_part(send, tail, tap, translator, scrub)
                    if not ended:
                        raise StreamCutShort("the stream ended before its final event")
            if translator is not None:
                tail = translator.finish()
                if tail:
                    await send({"type": "http.response.body", "body": scrub(tail), "more_body": True})
            complete = True
        except Exception as exc:  # noqa: BLE001 - every failure after the start ends the stream in-band
            await self._stream_failed(exchange, answer, exc)
        finally:
            if not complete:
                await response.aclose()
            charge.finish()
            self._record_cache(exchange, answer.cache)
        try:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            charge.complete = True
        finally:
            if complete:
                await response.end()
        return response.status

    async def _stream_failed(self, exchange: Exchange, answer: Answer, exc: Exception) -> None:
        reason = exc.reason if isinstance(exc, UpstreamError) else UNTRANSLATABLE_EVENT
        record = exchange.record
        record.stream_error = reason
        if not isinstance(exc, UpstreamError):
            record.internal_error = type(exc).__name__
        exchange.charge.broken = True
        serving = exchange.serving
        provider = serving.table.providers[answer.target.provider]
        self.metrics.stream_errors.inc(provider.id, reason)
        self.circuits.failed(provider, answer.credential, serving.usable[provider.id])
        detail = f" ({exc})" if isinstance(exc, AnswerTooLarge) else ""
        held = answer.held
        last = held.framer.last if held.framer is not None else held.head
        error = exchange.surface.stream_error("provider_error", f"upstream stream failed: {reason}{detail}", last)
        if answer.translator is not None:
            error = answer.translator.error(error)
        await exchange.send({"type": "http.response.body", "body": error, "more_body": True})

    def _record_cache(self, exchange: Exchange, cache: CacheState) -> str | None:
        """The header value, and in the log and metrics whether the provider's cache was hit, in
        every mode: a hit under `disable` means the cold run was not cold."""
        record, charge = exchange.record, exchange.charge
        cached = charge.usage.cached_input_tokens if charge.usage is not None else None
        status = cache.header(cached)
        record.cache_mode = cache.mode
        if status is not None:
            record.cache = status
        lookup = lookup_result(cached)
        if lookup is not None and record.provider:
            record.cache_lookup = lookup
            self.metrics.cache_lookups.inc(record.vk or "-", charge.model or "-", record.provider, lookup)
        return status


async def _stop(rest: AsyncIterator[bytes]) -> None:
    """Close the answer's byte iterator left at its final event: now, rather than by a task the
    event loop would start for it once it is collected."""
    if isinstance(rest, AsyncGenerator):
        await rest.aclose()


def _first_event_cached_tokens(head: bytes) -> int | None:
    """The cached input tokens the stream's first event reports; None when it reports no usage."""
    ends = [at + len(mark) for mark in (b"\n\n", b"\r\n\r\n") if (at := head.find(mark)) >= 0]
    first = head[: min(ends)] if ends else head + b"\n\n"
    if b'"usage' not in first:
        return None
    events = SseParser().feed(first)
    try:
        payload = orjson.loads(events[0].data) if events else None
    except orjson.JSONDecodeError:
        return None
    usage = usage_from(payload) if isinstance(payload, dict) else None
    return usage.cached_input_tokens if usage is not None else None


def _warn(exchange: Exchange, headers: Headers, own: int) -> None:
    """`<prefix>Budget-Warning` for the key's instances at or over their warn threshold once `own`
    (this answer's charge, when it is known before the headers go) is added to their spend."""
    admission = exchange.charge.admission
    if admission is not None and (warnings := admission.warnings_with(own)):
        headers.append((exchange.header(b"budget-warning"), ",".join(warnings).encode()))


async def _relay_part(
    send: Send, events: bytes, tap: UsageTap | None, translator: ResponseTranslator | None, scrub: CredentialScrubber
) -> None:
    if tap is not None:
        tap.feed(events)
    out = events if translator is None else translator.feed(events)
    if out:
        await send({"type": "http.response.body", "body": scrub(out), "more_body": True})
