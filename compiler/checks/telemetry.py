"""Telemetry settings: the collector's endpoint is a URL the exporter can post to, or a reference to one."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic

REFERENCE_KINDS = ("env:", "file:")


def check_telemetry(ctx: Context) -> Iterator[Diagnostic]:
    gateway = ctx.policy.gateway
    telemetry = gateway.telemetry if gateway is not None else None
    if telemetry is None:
        return
    endpoint = telemetry.endpoint.strip()
    if endpoint.startswith(REFERENCE_KINDS) and endpoint.partition(":")[2]:
        return
    parts = urlsplit(endpoint)
    if parts.scheme in ("http", "https") and parts.hostname and not parts.query and not parts.fragment:
        return
    yield Diagnostic.of(
        codes.TELEMETRY_ENDPOINT_INVALID,
        f"gateway.telemetry.endpoint '{endpoint}' is neither an http(s) URL of an OTLP/HTTP collector nor an "
        "env:NAME or file:PATH reference to one",
        ctx.index.value("gateway", "telemetry", "endpoint"),
        hint="for example http://otel-collector:4318 (the gateway posts to its /v1/traces), or env:OTLP_ENDPOINT",
    )
