"""Fallback bookkeeping and cache-directive rewriting on a request that needs no fallback:
`plan` (the per-target request, with the cache mode applied), the circuit check and success
record, and the cache header decision. A Codex-sized request (the captured fixture, 43 KB).

    .venv/bin/python bench/fallback_cache.py
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from runtime.cache import cache_status
from runtime.circuit import Circuits
from runtime.metrics import Metrics
from runtime.surfaces import MESSAGES, RESPONSES
from runtime.table import Target
from runtime.translation import plan
from runtime.upstream import Outbound

ROOT = Path(__file__).resolve().parent.parent
ROUNDS, BATCH = 200, 100


def measure(surface, target: Target, out: Outbound) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    circuits = Circuits(Metrics())
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        for _ in range(BATCH):
            permit = circuits.admit(target.provider)
            if permit is not None:
                step = plan(surface, target, out)
                circuits.succeeded(target.provider)
                circuits.release(permit)
                cache_status(out.cache_mode, step.injected, 0)
        samples.append((time.perf_counter_ns() - start) / BATCH / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def main() -> None:
    codex = json.loads((ROOT / "tests" / "fixtures" / "codex-responses-request.json").read_text())
    claude = json.loads((ROOT / "tests" / "fixtures" / "claude-messages-request.json").read_text())
    openai_target = Target("openai-primary", "gpt-4o", "gpt-4o", "openai")
    anthropic_target = Target("anthropic-main", "claude", "claude", "anthropic")
    print(f"{'case':44} {'p50 µs':>7} {'p99 µs':>7}")
    for mode in ("respect", "disable", "force"):
        out = Outbound("responses", codex, True, {}, None, mode, mode == "disable")
        p50, p99 = measure(RESPONSES, openai_target, out)
        print(f"{'Codex /v1/responses -> openai, ' + mode:44} {p50:>7.1f} {p99:>7.1f}")
    for mode in ("respect", "disable", "force"):
        out = Outbound("messages", claude, True, {}, None, mode, False)
        p50, p99 = measure(MESSAGES, anthropic_target, out)
        print(f"{'Claude Code /v1/messages (121 KB), ' + mode:44} {p50:>7.1f} {p99:>7.1f}")


if __name__ == "__main__":
    main()
