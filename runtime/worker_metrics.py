"""`/metrics` of a server run as several worker processes: every worker's series, each labelled
`worker="N"`, whichever worker answers.

Each worker writes its own exposition to a file in the run directory every `SNAPSHOT_S` (atomically,
by rename); the one answering `/metrics` renders its own live and reads its siblings' files, so a
scrape sees the whole server, its siblings' series at most `SNAPSHOT_S` old. A replaced worker
takes its predecessor's number and starts its counters from zero, which Prometheus's `rate()` reads
as a counter reset.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from .metrics import Metrics

SNAPSHOT_S = 1.0


def snapshot_path(run_dir: Path, index: int) -> Path:
    return run_dir / f"metrics-{index}.prom"


class WorkerMetrics(Metrics):
    def __init__(self, run_dir: Path, index: int) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.index = index

    def own(self) -> bytes:
        return super().render()

    def render(self) -> bytes:
        expositions: list[tuple[int, bytes]] = [(self.index, self.own())]
        for path in sorted(self.run_dir.glob("metrics-*.prom")):
            index = int(path.stem.removeprefix("metrics-"))
            if index == self.index:
                continue
            try:
                expositions.append((index, path.read_bytes()))
            except OSError:
                continue
        return merge(sorted(expositions))

    def write_snapshot(self) -> None:
        target = snapshot_path(self.run_dir, self.index)
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(self.own())
        partial.replace(target)


async def keep_snapshots(metrics: WorkerMetrics, every_s: float = SNAPSHOT_S) -> None:
    while True:
        await asyncio.to_thread(metrics.write_snapshot)
        await asyncio.sleep(every_s)


def merge(expositions: list[tuple[int, bytes]]) -> bytes:
    """One exposition of several workers' (Prometheus text format), each family's `# HELP` and
    `# TYPE` once and its samples together, every sample labelled with its worker."""
    families: dict[str, tuple[list[str], list[str]]] = {}
    for index, text in expositions:
        family: tuple[list[str], list[str]] | None = None
        for line in text.decode().splitlines():
            if not line:
                continue
            if line.startswith("# "):
                name = line.split(" ", 3)[2]
                family = families.setdefault(name, ([], []))
                if line not in family[0]:
                    family[0].append(line)
                continue
            if family is None:
                family = families.setdefault("", ([], []))
            family[1].append(labelled(line, index))
    lines = [line for head, samples in families.values() for line in (*head, *samples)]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def labelled(sample: str, index: int) -> str:
    label = f'worker="{index}"'
    brace = sample.find("{")
    space = sample.find(" ")
    if brace != -1 and brace < space:
        rest = sample[brace + 1:]
        return f"{sample[:brace]}{{{label}{'' if rest.startswith('}') else ','}{rest}"
    return f"{sample[:space]}{{{label}}}{sample[space:]}"
