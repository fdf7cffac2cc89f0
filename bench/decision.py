"""The decision function alone: authenticate (sha256 look-up) + allow-list + alias + targets.

    .venv/bin/python bench/decision.py

Uses examples/acme compiled in-process; reports the median and p99 of single calls (timed in
batches of 1,000 to keep timer overhead out) for an allowed alias, an allowed model and a denial.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from compiler import compile_policy
from runtime.decision import Deny, authenticate, decide_for_key
from runtime.table import table_from_artifact

ROOT = Path(__file__).resolve().parent.parent
BATCH = 1000
ROUNDS = 300


def main() -> None:
    result = compile_policy(ROOT / "examples" / "acme")
    assert result.artifact is not None
    table = table_from_artifact(result.artifact)
    digest = next(d for d, k in table.keys_by_hash.items() if k.id == "vk-platform-shared")
    now = datetime.now(UTC)
    key = "gp-bench-not-a-key"
    cases = {
        "alias gpt-4o -> azure (hash + decide)": ("gpt-4o", True),
        "model gpt-5-mini (decide only)": ("gpt-5-mini", False),
        "denied o3 (decide only)": ("o3", False),
    }
    print(f"{'case':42} {'median µs':>10} {'p99 µs':>8}")
    for name, (model, with_hash) in cases.items():
        samples = []
        for _ in range(ROUNDS):
            start = time.perf_counter_ns()
            for _ in range(BATCH):
                d = hashlib.sha256(key.encode()).hexdigest() if with_hash else digest
                found = authenticate(table, digest if with_hash else d, now)
                if not isinstance(found, Deny):
                    decide_for_key(found, "chat", model)
            samples.append((time.perf_counter_ns() - start) / BATCH / 1000)
        samples.sort()
        print(f"{name:42} {statistics.median(samples):>10.2f} {samples[int(len(samples) * 0.99)]:>8.2f}")


if __name__ == "__main__":
    main()
