"""Fallback bookkeeping and cache-directive rewriting on a request that needs no fallback:
`plan` (the per-target request, with the cache mode applied), the circuit permit and success
record, the adapter's body (the client's bytes under respect, the model spliced in through an
alias) and the cache header decision, on the captured Codex (43 KB) and Claude Code (121 KB)
requests; and the stream relay's event framing and final-event check over the captured Codex
stream.

    .venv/bin/python bench/fallback_cache.py
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from types import MappingProxyType

from runtime.cache import cache_status
from runtime.circuit import Circuits
from runtime.metrics import Metrics
from runtime.streams import EventFramer
from runtime.surfaces import MESSAGES, RESPONSES
from runtime.table import Credential, Provider, Target, Timeouts
from runtime.translation import plan
from runtime.upstream import ADAPTERS, Outbound, RawBody

ROOT = Path(__file__).resolve().parent.parent
ROUNDS, BATCH = 200, 100


def provider(pid: str, kind: str) -> Provider:
    return Provider(pid, kind, kind, "http://127.0.0.1:9", None, None, MappingProxyType({}), Timeouts(5, 60, 180), 5, 30)


def measure(surface, target: Target, out: Outbound) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    circuits = Circuits(Metrics())
    prepare, upstream = ADAPTERS[target.protocol], provider(target.provider, target.protocol)
    credentials = (Credential(target.provider, target.provider, "env:KEY", 1, upstream),)
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        for _ in range(BATCH):
            permit = circuits.admit(credentials)
            if permit is not None:
                step = plan(surface, target, out)
                prepare(upstream, "key", target, step.outbound)
                circuits.succeeded(permit.credential)
                circuits.release(permit)
                cache_status(out.cache_mode, step.injected, 0)
        samples.append((time.perf_counter_ns() - start) / BATCH / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def measure_framing(stream: bytes, chunk: int) -> tuple[float, float]:
    pieces = [stream[i:i + chunk] for i in range(0, len(stream), chunk)]
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        for _ in range(BATCH):
            framer = EventFramer("responses")
            for piece in pieces:
                framer.feed(piece)
            framer.close()
        samples.append((time.perf_counter_ns() - start) / BATCH / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def main() -> None:
    fixtures = ROOT / "tests" / "fixtures"
    codex_raw = (fixtures / "codex-responses-request.json").read_bytes()
    claude_raw = (fixtures / "claude-messages-request.json").read_bytes()
    codex, claude = json.loads(codex_raw), json.loads(claude_raw)
    openai_target = Target("openai-primary", codex["model"], codex["model"], "openai")
    aliased_openai = Target("openai-primary", "gpt-4o", "gpt-4o-2024-08-06", "openai")
    anthropic_target = Target("anthropic-main", claude["model"], claude["model"], "anthropic")
    aliased_anthropic = Target("anthropic-main", "claude", "claude-haiku-4-5-20251001", "anthropic")
    print(f"{'case':52} {'p50 µs':>7} {'p99 µs':>7}")
    for mode in ("respect", "disable", "force"):
        out = Outbound("responses", codex, True, {}, None, mode, mode == "disable", RawBody(codex_raw, codex))
        p50, p99 = measure(RESPONSES, openai_target, out)
        print(f"{'Codex /v1/responses -> openai, ' + mode:52} {p50:>7.1f} {p99:>7.1f}")
    out = Outbound("responses", codex, True, {}, None, "respect", False, RawBody(codex_raw, codex))
    p50, p99 = measure(RESPONSES, aliased_openai, out)
    print(f"{'Codex /v1/responses -> openai, respect, alias':52} {p50:>7.1f} {p99:>7.1f}")
    for mode in ("respect", "disable", "force"):
        out = Outbound("messages", claude, True, {}, None, mode, False, RawBody(claude_raw, claude))
        p50, p99 = measure(MESSAGES, anthropic_target, out)
        print(f"{'Claude Code /v1/messages (121 KB), ' + mode:52} {p50:>7.1f} {p99:>7.1f}")
    out = Outbound("messages", claude, True, {}, None, "respect", False, RawBody(claude_raw, claude))
    p50, p99 = measure(MESSAGES, aliased_anthropic, out)
    print(f"{'Claude Code /v1/messages (121 KB), respect, alias':52} {p50:>7.1f} {p99:>7.1f}")
    stream = (fixtures / "codex-responses-stream.sse").read_bytes()
    for chunk in (64, 1024):
        p50, p99 = measure_framing(stream, chunk)
        print(f"{f'stream framing, Codex stream (4.4 KB), {chunk} B chunks':52} {p50:>7.1f} {p99:>7.1f}")


if __name__ == "__main__":
    main()
