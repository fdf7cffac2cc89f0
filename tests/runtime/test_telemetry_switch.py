"""Building a tracer imports the SDK and its exporter's libraries after the table's load froze the
heap; the switch moves what the tracer brought out of the cyclic collector's generations too, so a
traced process's full collections walk no more than an untraced one's."""

from __future__ import annotations

import gc
import io
from collections.abc import Iterator

import pytest

from runtime.access_log import EventLog
from runtime.metrics import Metrics
from runtime.table import Telemetry
from runtime.telemetry.switch import Tracing
from tests.support.proxy_process import free_port


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def collected(target: object) -> bool:
    return any(candidate is target for candidate in gc.get_objects())


def test_what_a_new_tracer_brings_is_left_out_of_the_collectors_generations(unfrozen: None) -> None:
    tracing = Tracing(Metrics(), EventLog(io.StringIO()), environ={})
    settings = Telemetry(endpoint=f"http://127.0.0.1:{free_port()}", service_name="gatepost-test",
                         sampling_ratio=1.0, record_content=False)
    tracer = tracing.tracer_for(settings)
    assert tracer is not None
    try:
        assert gc.get_freeze_count() > 0
        assert not collected(tracer) and not collected(tracer.processor) and not collected(tracer.parts)
        assert tracing.tracer_for(settings) is tracer
    finally:
        closing = tracing.close()
        assert closing is not None
        closing.join(5)


def test_no_tracer_freezes_nothing(unfrozen: None) -> None:
    gc.unfreeze()
    tracing = Tracing(Metrics(), EventLog(io.StringIO()), environ={})
    assert tracing.tracer_for(None) is None
    assert gc.get_freeze_count() == 0
