"""OpenTelemetry traces of proxied requests, as `gateway.telemetry` (or GATEPOST_OTLP_ENDPOINT) asks.

`switch` decides, per request and for the table it reads, which tracer serves it (none when
telemetry is off: then nothing of OpenTelemetry is imported). The first request that finds
telemetry on in a process imports `setup`, which builds that process's SDK provider, sampler and
batching OTLP/HTTP exporter; `spans` is a request's span and its upstream attempts' child spans,
`content` the opt-in prompt and answer text.
"""

from .switch import ENV_ENDPOINT, SHUTDOWN_WAIT_S, Tracing

__all__ = ["ENV_ENDPOINT", "SHUTDOWN_WAIT_S", "Tracing"]
