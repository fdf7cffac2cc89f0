"""Which tracer serves the telemetry settings of the table a request reads.

A reload that changes `gateway.telemetry` takes effect on the first request that reads the new
table: that request finds settings it has not seen, and the process's tracer is rebuilt for them
(the old one flushes and shuts down on a thread of its own). A table with the same settings keeps
the tracer. Nothing is built before the first request, so each worker process has its own
provider, exporter and export thread, never one inherited across a fork.

Building a tracer imports the SDK, its exporter and their HTTP and protobuf libraries: some ten
thousand long-lived objects, created after the table's load moved everything then alive out of the
cyclic collector's generations (`table._collector_paused`). Left in them, every full collection
would walk them again (at the bench's load, a fifth of the time a traced process spent collecting),
so they are moved out the same way (`gc.freeze`) once the tracer is built.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from ..access_log import EventLog
from ..metrics import Metrics
from ..table import Telemetry

if TYPE_CHECKING:
    from .spans import RequestTracer

ENV_ENDPOINT = "GATEPOST_OTLP_ENDPOINT"
"""The collector's OTLP/HTTP URL. Set, it replaces the policy's endpoint, and turns tracing on with
the default settings when the policy has none."""
DEFAULTS = Telemetry(endpoint="", service_name="gatepost", sampling_ratio=1.0, record_content=False)
SHUTDOWN_WAIT_S = 5.0
"""How long closing waits for a tracer's last spans to be sent."""

_UNSEEN = object()


class Tracing:
    """The tracer of this process for the settings last seen (None: telemetry is off)."""

    def __init__(self, metrics: Metrics, events: EventLog, environ: Mapping[str, str] = os.environ) -> None:
        self._metrics = metrics
        self._events = events
        self._env_endpoint = environ.get(ENV_ENDPOINT, "").strip() or None
        self._seen: object = _UNSEEN
        self._settings: Telemetry | None = None
        self._tracer: RequestTracer | None = None

    def tracer_for(self, settings: Telemetry | None) -> RequestTracer | None:
        """The tracer for a table's `gateway.telemetry`: one identity test while it is unchanged."""
        if settings is self._seen:
            return self._tracer
        return self._switch(settings)

    def _switch(self, settings: Telemetry | None) -> RequestTracer | None:
        self._seen = settings
        effective = settings
        if self._env_endpoint is not None:
            effective = replace(settings or DEFAULTS, endpoint=self._env_endpoint)
        if effective == self._settings:
            return self._tracer
        old, self._settings, self._tracer = self._tracer, effective, None
        if effective is not None:
            from .setup import start_tracer

            self._tracer = start_tracer(effective, self._metrics, self._events)
            gc.freeze()
        if old is not None:
            threading.Thread(target=old.close, name="gatepost-telemetry-close", daemon=True).start()
        return self._tracer

    def close(self) -> threading.Thread | None:
        """Send the spans still queued and stop, on a daemon thread the caller may wait on a while
        (an unreachable collector would hold an exit for its export timeout)."""
        tracer, self._tracer, self._settings, self._seen = self._tracer, None, None, _UNSEEN
        if tracer is None:
            return None
        closing = threading.Thread(target=tracer.close, name="gatepost-telemetry-close", daemon=True)
        closing.start()
        return closing
