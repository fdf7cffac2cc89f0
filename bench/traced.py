"""What tracing adds to one request, in process: the bench key's chat completion through the whole
ASGI app against the in-process `mock` provider, under the bench policy with tracing off, at 100%
sampling and at 10% (`gateway.telemetry`, exporting with the SDK's batch processor and OTLP/HTTP
exporter to `bench/proxy/otlp_sink.py`, a loopback receiver in a process of its own), as `policy
serve` composes them. No client sockets, so the figure is the Python work alone.

The three apps take turns, a round of `--requests` each, over `--rounds` rounds. Each round ends
with the tracer's queue flushed, so every span of the round has been written and sent when the
round's CPU time is read. The batch processor sends a batch when it is full (its timer set far
off), as it does under the peer benchmark's load, so a slow run (callgrind) sends the same
batches as a fast one. Two figures per request, their medians over the rounds: the request
path (the CPU time of the thread serving requests) and the export (the CPU time of every other
thread of the process: the batch processor writing and posting the spans). The receiver's CPU is
its own process's and is not counted.

    .venv/bin/python bench/traced.py [--requests 2000] [--rounds 7] [--profile 100]

CPU times are noisy on a shared machine; for a repeatable figure run one app under callgrind
(which counts the instructions of every thread) twice, with requests and with none, and divide
the difference by the requests:

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.traced100 \\
        .venv/bin/python bench/traced.py --only 100 --rounds 1 --requests 2000
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.traced100.none \\
        .venv/bin/python bench/traced.py --only 100 --rounds 1 --requests 0
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asgi_request import chat_completion

import runtime.telemetry.setup
from cli.sources import load_source
from runtime.access_log import AccessLog
from runtime.app import Gatepost
from runtime.server import build_app

HERE = Path(__file__).resolve().parent
PROVIDER = re.compile(r"  bench-openai:\n    type: openai\n    base_url: \"@UPSTREAM@\"\n    api_key: env:BENCH_UPSTREAM_KEY\n")
HEADER_PREFIX = "  header_prefix: X-LangWatch-\n"
APPS = {"off": None, "100": 1.0, "10": 0.1}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_sink(work: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    """The loopback OTLP/HTTP receiver of the traced bench targets, once it accepts connections."""
    port = free_port()
    count_file = work / "spans.txt"
    sink = subprocess.Popen([sys.executable, str(HERE / "proxy" / "otlp_sink.py"), str(port), str(os.getpid()),
                             str(count_file)])
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return sink, port, count_file
        except OSError:
            if time.monotonic() > deadline or sink.poll() is not None:
                raise SystemExit("the OTLP sink did not start") from None
            time.sleep(0.05)


def app_for(name: str, ratio: float | None, sink_port: int, work: Path) -> Gatepost:
    """The bench policy with its provider made the in-process mock, traced at `ratio` (None: off)."""
    text = (HERE / "proxy" / "policy.yaml.tmpl").read_text()
    text, replaced = PROVIDER.subn("  bench-openai:\n    type: mock\n", text)
    assert replaced == 1, "the bench policy's provider block changed"
    if ratio is not None:
        telemetry = f'  telemetry: {{endpoint: "http://127.0.0.1:{sink_port}", sampling_ratio: {ratio}}}\n'
        assert HEADER_PREFIX in text, "the bench policy's gateway block changed"
        text = text.replace(HEADER_PREFIX, HEADER_PREFIX + telemetry)
    source = work / f"traced-{name}"
    source.mkdir()
    (source / "policy.yaml").write_text(text)
    return build_app(load_source(source), access_log=AccessLog(enabled=False))


def flush(app: Gatepost) -> None:
    """Every span ended so far written and sent (nothing when tracing is off)."""
    tracer = app.tracing.tracer_for(app.serving.table.gateway.telemetry)
    if tracer is not None:
        tracer.processor.force_flush()


async def one(app: Gatepost) -> int:
    status = await chat_completion(app)
    return status


async def requests(app: Gatepost, count: int) -> None:
    for _ in range(count):
        await one(app)


def round_of(app: Gatepost, count: int) -> tuple[float, float]:
    """CPU µs per request of one round: the request path's, and the other threads' (the export)."""
    thread, process = time.thread_time(), time.process_time()
    asyncio.run(requests(app, count))
    path = time.thread_time() - thread
    flush(app)
    total = time.process_time() - process
    return path / count * 1e6, (total - path) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per app and round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", choices=tuple(APPS))
    parser.add_argument("--profile", choices=tuple(APPS), help="cProfile this app's rounds")
    parser.add_argument("--schedule-delay-ms", type=int, default=600_000,
                        help="the batch processor's timer: by default a batch is sent when it is full, as under load")
    args = parser.parse_args()
    runtime.telemetry.setup.SCHEDULE_DELAY_MS = args.schedule_delay_ms
    work = Path(tempfile.mkdtemp(prefix="gatepost-traced-"))
    sink, sink_port, count_file = start_sink(work)
    try:
        apps = {name: app_for(name, ratio, sink_port, work) for name, ratio in APPS.items()
                if not args.only or name == args.only}
        for app in apps.values():
            assert asyncio.run(one(app)) == 200, "the bench request is not answered"
            asyncio.run(requests(app, 200))
            flush(app)
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
        profile = cProfile.Profile() if args.profile else None
        for turn in range(args.rounds if args.requests else 0):
            order = list(apps) if turn % 2 == 0 else list(reversed(apps))
            for name in order:
                if profile is not None and name == args.profile:
                    profile.enable()
                figures[name].append(round_of(apps[name], args.requests))
                if profile is not None and name == args.profile:
                    profile.disable()
        for app in apps.values():
            closing = app.tracing.close()
            if closing is not None:
                closing.join(10)
        if profile is not None:
            pstats.Stats(profile).sort_stats("tottime").print_stats(40)
        report(figures)
    finally:
        sink.terminate()
        sink.wait(60)
        if count_file.exists():
            print(f"the sink received {count_file.read_text().strip()} spans")
        shutil.rmtree(work, ignore_errors=True)


def report(figures: dict[str, list[tuple[float, float]]]) -> None:
    totals: dict[str, float] = {}
    for name, rounds in figures.items():
        if not rounds:
            continue
        path = statistics.median(p for p, _ in rounds)
        export = statistics.median(e for _, e in rounds)
        totals[name] = statistics.median(p + e for p, e in rounds)
        print(f"{name:4} path {path:7.1f} µs  export {export:6.1f} µs  total {totals[name]:7.1f} µs/request")
    off = totals.get("off")
    if off is not None:
        for name in ("100", "10"):
            if name in totals:
                print(f"{name:>3}%: +{totals[name] - off:5.1f} µs a request, off/traced {off / totals[name]:.1%}")


if __name__ == "__main__":
    main()
