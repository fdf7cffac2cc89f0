"""The OpenTelemetry SDK as one process of the gateway uses it: the service's resource, and the
batch span processor exporting over OTLP/HTTP (protobuf) with the SDK's exporter, the batches'
bytes written by `wire.SpanWriter`.

The export runs on the batch processor's own thread. A request only appends its ended spans to a
bounded queue: when the queue is full the span is dropped and counted, never waited for; a batch
the collector refuses or cannot be reached for is counted too, and that is all an unreachable
collector costs (the exporter's own retry warnings are kept out of the gateway's output).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from ..access_log import EventLog
from ..credentials import resolve_reference
from ..exceptions import CredentialError
from ..metrics import Metrics
from ..table import Telemetry
from .spans import RequestTracer
from .wire import SpanWriter, Unencodable, spans_in

TRACES_PATH = "/v1/traces"
MAX_QUEUE = 4096
"""Requests' spans waiting for export at most (a queued `WrittenSpan` is a request's span and its
attempts'): a few seconds of a busy process's requests."""
BATCH = 1024
"""Requests' spans a batch sends at most (about 2,048 spans, 900 KB, well under a collector's
usual request limit): sending a batch costs the same CPU (about 1 ms, most of it requests')
however many spans it holds, so under load a bigger batch is less CPU per request."""
SCHEDULE_DELAY_MS = 1000
CREDENTIAL_PROVIDERS = (
    "OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER", "OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER",
)
"""The SDK's settings naming a session of its own for the exporter (then it keeps its own)."""
QUIET_LOGGERS = ("opentelemetry.exporter", "opentelemetry.sdk._shared_internal", "opentelemetry.sdk.trace.export")


def traces_url(endpoint: str) -> str:
    """The URL spans are posted to: a base URL gets `/v1/traces` (as OTEL_EXPORTER_OTLP_ENDPOINT
    does); one whose path already ends in it is used as it is."""
    url = endpoint.strip()
    path = urlsplit(url).path
    return url if path.rstrip("/").endswith(TRACES_PATH) else url.rstrip("/") + TRACES_PATH


def resolved_endpoint(endpoint: str) -> str:
    """An http(s) URL as it is; an env:/file: reference read now (CredentialError when it cannot be)."""
    if endpoint.startswith(("http://", "https://")):
        return endpoint
    value = resolve_reference(endpoint)
    if not value.startswith(("http://", "https://")):
        raise CredentialError(f"{endpoint.partition(':')[0]} reference {endpoint} does not hold an http(s) URL")
    return value


def start_tracer(settings: Telemetry, metrics: Metrics, events: EventLog) -> RequestTracer | None:
    """This process's tracer for `settings`, or None (reported as `telemetry_unavailable`) when
    its endpoint reference cannot be read."""
    try:
        url = traces_url(resolved_endpoint(settings.endpoint))
    except CredentialError as exc:
        events.event("telemetry_unavailable", problem=str(exc))
        return None
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    metrics.trace_spans_exported.values.setdefault((), 0.0)
    for reason in ("queue_full", "export_failed"):
        metrics.trace_spans_dropped.values.setdefault((reason,), 0.0)
    batch = BatchSpanProcessor(
        CountingExporter(WireExporter(url), metrics),
        max_queue_size=MAX_QUEUE, max_export_batch_size=BATCH, schedule_delay_millis=SCHEDULE_DELAY_MS,
    )
    resource = Resource.create({"service.name": settings.service_name})
    events.event(
        "telemetry_started", endpoint=_without_credentials(url), service_name=settings.service_name,
        sampling_ratio=settings.sampling_ratio, record_content=settings.record_content,
    )
    return RequestTracer(BoundedQueue(batch, metrics), resource, settings)


class WireExporter(OTLPSpanExporter):
    """The OTLP/HTTP exporter (its endpoint, headers, TLS, compression, timeout and retries), its
    batches written by `wire.SpanWriter` rather than its own encoder."""

    def __init__(self, endpoint: str, environ: Mapping[str, str] = os.environ) -> None:
        named = any(environ.get(name) for name in CREDENTIAL_PROVIDERS)
        super().__init__(endpoint=endpoint, session=None if named else SettledSession())
        self._writer = SpanWriter()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        client = getattr(self, "_client", None)
        if self._shutdown or client is None:
            return super().export(spans)
        try:
            data = self._writer.request(spans)
        except Unencodable:
            return super().export(spans)
        return SpanExportResult.SUCCESS if client.export(data).success else SpanExportResult.FAILURE


class SettledSession(requests.Session):
    """The exporter's HTTP session, reading the environment's proxy and CA-bundle settings for the
    collector's URL at its first batch: requests reads them (and scans the whole environment) for
    every request, a third of the CPU a batch's send took."""

    def __init__(self) -> None:
        super().__init__()
        self._settled: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any,
    ) -> dict[str, Any]:
        if proxies:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        key = (url, stream, verify, cert)
        settled = self._settled.get(key)
        if settled is None:
            settled = self._settled[key] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        return dict(settled)


class CountingExporter(SpanExporter):
    """The OTLP exporter, its outcome counted in `gatepost_trace_spans_exported_total` and
    `gatepost_trace_spans_dropped_total{reason="export_failed"}`."""

    def __init__(self, exporter: SpanExporter, metrics: Metrics) -> None:
        self._exporter = exporter
        self._metrics = metrics

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._exporter.export(spans)
        except Exception:  # noqa: BLE001 - an exporter fault loses the batch, never the export thread
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self._metrics.trace_spans_exported.inc(amount=spans_in(spans))
        else:
            self._metrics.trace_spans_dropped.inc("export_failed", amount=spans_in(spans))
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


class BoundedQueue(SpanProcessor):
    """The batch processor, refusing a span (and counting it) when its queue is full rather than
    letting it push out the oldest with a warning per span. A span is put straight in its queue:
    the processor's own `on_end` only checks the sampled flag, which every span here has."""

    def __init__(self, batch: BatchSpanProcessor, metrics: Metrics) -> None:
        self._batch = batch
        self._metrics = metrics
        shared = getattr(batch, "_batch_processor", None)
        self._queue: Any = getattr(shared, "_queue", None)
        self._emit: Callable[[ReadableSpan], None] = getattr(shared, "emit", None) or batch.on_end

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        queue = self._queue
        if queue is not None and len(queue) >= MAX_QUEUE:
            self._metrics.trace_spans_dropped.inc("queue_full", amount=spans_in((span,)))
            return
        self._emit(span)

    def shutdown(self) -> None:
        self._batch.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._batch.force_flush(timeout_millis)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
