"""Prometheus metrics in the text exposition format.

A few counters and histograms kept in plain dicts: the proxy runs one event loop per process, so
no locks are needed, and an increment costs a dict update rather than a client library's lock.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Counter:
    def __init__(self, name: str, help_text: str, label_names: Iterable[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(label_names)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        self.values[label_values] = self.values.get(label_values, 0.0) + amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        for key, value in sorted(self.values.items()):
            lines.append(f"{self.name}{_labels(tuple(zip(self.label_names, key, strict=True)))} {value:g}")
        return lines


class Gauge(Counter):
    def set(self, *label_values: str, value: float) -> None:
        self.values[label_values] = value

    def render(self) -> list[str]:
        return [line.replace(" counter", " gauge") if line.startswith("# TYPE") else line for line in super().render()]


class Histogram:
    def __init__(self, name: str, help_text: str, label_names: Iterable[str] = (), buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(label_names)
        self.buckets = buckets
        self.values: dict[tuple[str, ...], list[float]] = {}

    def observe(self, value: float, *label_values: str) -> None:
        row = self.values.get(label_values)
        if row is None:
            row = self.values[label_values] = [0.0] * (len(self.buckets) + 3)
        row[bisect.bisect_left(self.buckets, value)] += 1
        row[-2] += value
        row[-1] += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key, row in sorted(self.values.items()):
            labels = tuple(zip(self.label_names, key, strict=True))
            cumulative = 0.0
            for bound, count in zip((*self.buckets, float("inf")), row[:-2], strict=True):
                cumulative += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                bucket_labels = _labels(labels, 'le="' + le + '"')
                lines.append(f"{self.name}_bucket{bucket_labels} {cumulative:g}")
            lines.append(f"{self.name}_sum{_labels(labels)} {row[-2]:g}")
            lines.append(f"{self.name}_count{_labels(labels)} {row[-1]:g}")
        return lines


class Metrics:
    def __init__(self) -> None:
        self.requests = Counter(
            "gatepost_requests_total", "Requests answered, by virtual key, requested model, provider and status",
            ("vk", "model", "provider", "status"),
        )
        self.upstream_latency = Histogram(
            "gatepost_upstream_latency_seconds", "Time to the upstream's response headers", ("provider",)
        )
        self.request_latency = Histogram(
            "gatepost_request_duration_seconds", "Whole request duration as the client sees it", ("surface",)
        )
        self.upstream_attempts = Counter(
            "gatepost_upstream_attempts_total", "Upstream attempts by provider and outcome", ("provider", "outcome")
        )
        self.budget_warnings = Counter(
            "gatepost_budget_warnings_total", "Warn thresholds crossed, by budget and scope", ("budget", "scope")
        )
        self.budget_blocks = Counter(
            "gatepost_budget_blocks_total", "Requests refused with 402, by budget and scope", ("budget", "scope")
        )
        self.rate_limited = Counter(
            "gatepost_rate_limited_total",
            "Requests the gateway refused with 429 for its own rate limits (never a provider's 429), by limit instance and kind",
            ("limit", "kind"),
        )
        self.spend = Counter(
            "gatepost_spend_usd_total", "Settled spend in USD, by virtual key and model", ("vk", "model")
        )
        self.cache_lookups = Counter(
            "gatepost_cache_lookups_total",
            "Answers by whether the provider reported cached input tokens (hit) or none (miss)",
            ("vk", "model", "provider", "result"),
        )
        self.circuit_open = Gauge(
            "gatepost_circuit_open",
            "1 while a provider is cooled down: after consecutive failures, or every one of its api_keys resting",
            ("provider",)
        )
        self.circuit_opened = Counter(
            "gatepost_circuit_opened_total", "Times a provider's circuit opened", ("provider",)
        )
        self.credential_attempts = Counter(
            "gatepost_credential_attempts_total",
            "Upstream calls of providers that list api_keys, by provider, credential id (never its value) and "
            "outcome (answered, 429, 5xx, timeout, connect, provider_401, ...)",
            ("provider", "credential", "outcome"),
        )
        self.credential_cooldowns = Counter(
            "gatepost_credential_cooldowns_total",
            "Times a credential of a provider that lists api_keys was left out while the others served, by cause "
            "(429, refused: a 401 or 403, failures: its circuit opened)",
            ("provider", "credential", "cause"),
        )
        self.stream_errors = Counter(
            "gatepost_stream_errors_total",
            "Streams that failed after their first event reached the client, by provider and reason",
            ("provider", "reason"),
        )
        self.client_connections_closed = Counter(
            "gatepost_client_connections_closed_total",
            "Client connections the gateway closed for its bounds, by reason (header_timeout, body_timeout, "
            "header_too_large, too_many_headers, malformed, max_connections)",
            ("reason",),
        )
        self.trace_spans_exported = Counter(
            "gatepost_trace_spans_exported_total", "Spans the OTLP collector accepted (while telemetry is on)"
        )
        self.trace_spans_dropped = Counter(
            "gatepost_trace_spans_dropped_total",
            "Spans never delivered to the OTLP collector, by reason (queue_full: the export queue was full; "
            "export_failed: the collector refused them or could not be reached)",
            ("reason",),
        )
        self.reloads = Counter("gatepost_reloads_total", "Routing table reloads by result", ("result",))
        self.revision = Gauge("gatepost_policy_revision_info", "The revision of the table now serving", ("revision",))

    def set_revision(self, revision: str) -> None:
        self.revision.values.clear()
        self.revision.set(revision, value=1)

    def render(self) -> bytes:
        lines: list[str] = []
        for metric in (
            self.requests, self.request_latency, self.upstream_latency, self.upstream_attempts, self.budget_warnings,
            self.budget_blocks, self.rate_limited, self.spend, self.cache_lookups, self.circuit_open,
            self.circuit_opened, self.credential_attempts, self.credential_cooldowns, self.stream_errors, self.client_connections_closed,
            self.trace_spans_exported, self.trace_spans_dropped, self.reloads, self.revision,
        ):
            lines.extend(metric.render())
        return ("\n".join(lines) + "\n").encode()
