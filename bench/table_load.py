"""Serving a large table: artifact size, time to healthy, RSS, and what a reload costs requests.

For each size, the compile bench's repository (`bench/compile.py`) is generated with its providers
pointed at a loopback upstream run by this script, compiled to two artifacts (the second with one
price changed), and served by `policy serve` in a fresh process, once from the artifact and once
from the directory. Measured:

- the artifact's size;
- time to healthy: from starting the process to the first 200 from /healthz, and the CPU time the
  server had used by then (steadier on a shared machine);
- RSS of the server once healthy, and after the reload;
- during a SIGHUP reload to the other table, under a steady probe load: the longest a
  non-streaming request took (one every 5 ms, one at a time) and the longest gap between two
  events of a stream in flight (the upstream sends one every 10 ms), each against the same
  measure before the reload;
- once that stream (the last request on the old table) has ended, while the old table is let go
  of: the longest probe request, and RSS after it.

    .venv/bin/python bench/table_load.py                      # 10k and 50k keys
    .venv/bin/python bench/table_load.py --sizes 10000 --sources artifact
    .venv/bin/python bench/table_load.py --sizes 10000 --code /tmp/before   # another checkout's code
    .venv/bin/python bench/table_load.py --sizes 50000 --reloads 5          # five reloads a run
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))
from compile import generate  # noqa: E402

PROBE_EVERY_S = 0.005
STREAM_EVENT_EVERY_S = 0.010
RELOAD_EVERY_S = 4.0
"""Between two reloads of one run (`--reloads`): the replaced table is taken apart meanwhile."""
RELEASE_WATCH_S = 4.0
"""How long the probe goes on after the stream that held the old table ends: the reloader takes the
old table apart after its last request and a grace of a second, polling each second."""
KEY = "bench-key-1"
"""vk-000001 (profile-1), whose models include gpt-bench-03."""
MODEL = "gpt-bench-03"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Upstream(threading.Thread):
    """An OpenAI-shaped upstream on loopback: answers at once, or streams an event every 10 ms
    until told to end."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.port = free_port()
        self.end_streams = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        asyncio.run(self.serve())

    async def serve(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self.ready.set()
        await asyncio.Event().wait()

    async def chat(self, request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
        if not payload.get("stream"):
            return web.json_response({
                "id": "c", "object": "chat.completion", "created": 0, "model": payload["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": usage,
            })
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": payload["model"]}
        while not self.end_streams.is_set():
            delta = {"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]}
            await response.write(b"data: " + json.dumps({**chunk, **delta}).encode() + b"\n\n")
            await asyncio.sleep(STREAM_EVENT_EVERY_S)
        end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage}
        await response.write(b"data: " + json.dumps({**chunk, **end}).encode() + b"\n\ndata: [DONE]\n\n")
        return response


def repository(keys: int, upstream: Upstream, root: Path) -> None:
    """The compile bench's repository, its OpenAI and Azure providers at `upstream`."""
    generate(root, keys)
    providers = root / "providers.yaml"
    base = f"http://127.0.0.1:{upstream.port}"
    text = providers.read_text().replace(
        "type: openai\n    api_key", f"type: openai\n    base_url: {base}/v1\n    api_key"
    ).replace("https://bench.openai.azure.com", base)
    providers.write_text(text)


CODE = HERE.parent
"""The checkout whose packages compile and serve (`--code`: another one, to compare with)."""


def compile_to(root: Path, out: Path) -> None:
    subprocess.run([sys.executable, "-m", "cli", "compile", str(root), "-o", str(out), "-q"], check=True,
                   stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(CODE)}, cwd=CODE)


def cpu_s(pid: int) -> float:
    """The process's user and system time so far: steadier than wall time on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Probe(threading.Thread):
    """One non-streaming request every 5 ms, one at a time; records (start, seconds) of each."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.timings: list[tuple[float, float]] = []
        self.failures = 0

    def run(self) -> None:
        body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
        headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                conn.request("POST", "/v1/chat/completions", body, headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    self.failures += 1
            except (OSError, http.client.HTTPException):
                self.failures += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            took = time.perf_counter() - start
            self.timings.append((start, took))
            time.sleep(max(0.0, PROBE_EVERY_S - took))
        conn.close()


class Stream(threading.Thread):
    """One streaming request held open; records when each event arrived."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.arrivals: list[float] = []
        self.first = threading.Event()
        self.finished_ok = False

    def run(self) -> None:
        body = json.dumps({"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request("POST", "/v1/chat/completions", body,
                     {"authorization": f"Bearer {KEY}", "content-type": "application/json"})
        response = conn.getresponse()
        while line := response.readline():
            if line.startswith(b"data: "):
                self.arrivals.append(time.perf_counter())
                self.first.set()
                if line.strip() == b"data: [DONE]":
                    self.finished_ok = True
        conn.close()


def longest_gap(times: list[float], start: float, end: float) -> float:
    inside = [t for t in times if start <= t <= end]
    return max((b - a for a, b in itertools.pairwise(inside)), default=float("nan"))


def revision(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/readyz")
    answer = json.loads(conn.getresponse().read())
    conn.close()
    return str(answer.get("revision", ""))


def serve(source: Path, other: Path | None, upstream: Upstream, workdir: Path, reloads: int = 1) -> dict[str, Any]:
    """Serve `source`, measure start and `reloads` reloads, each to the other table: `other` (an
    artifact moved in place of `source`, the replaced one kept to move back) or, for a directory
    (`other` None), one price edited and then edited back."""
    port = free_port()
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "AZURE_KEY": "az-bench", "ANTHROPIC_API_KEY": "an-bench",
           "XDG_STATE_HOME": str(workdir / "state"), "PYTHONPATH": str(CODE)}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", str(source), "--port", str(port), "--no-watch", "--no-access-log",
         "--data", str(workdir / "data")],
        env=env, stdout=subprocess.DEVNULL, stderr=(workdir / "serve.log").open("wb"), cwd=CODE,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"policy serve exited {proc.returncode}: {(workdir / 'serve.log').read_text()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.02)
        healthy = time.perf_counter() - started
        healthy_cpu = cpu_s(proc.pid)
        rss = rss_mib(proc.pid)
        first = revision(port)

        probe, stream = Probe(port), Stream(port)
        stream.start()
        stream.first.wait(30)
        probe.start()
        time.sleep(1.0)
        before_end = time.perf_counter()
        windows: list[tuple[float, float]] = []
        current, tables = first, (source.with_name("first.json"), other)
        if other is not None:
            shutil.copy(source, tables[0])
        for turn in range(reloads):
            if other is not None:
                staged = source.with_name("staged.json")
                shutil.copy(tables[(turn + 1) % 2], staged)
                os.replace(staged, source)
            else:
                models = source / "models.yaml"
                before, after = ("input: 1.25", "input: 1.5") if turn % 2 == 0 else ("input: 1.5", "input: 1.25")
                models.write_text(models.read_text().replace(before, after, 1))
            reload_start = time.perf_counter()
            proc.send_signal(signal.SIGHUP)
            while revision(port) == current:
                time.sleep(0.01)
            swapped = time.perf_counter()
            current = revision(port)
            windows.append((reload_start, swapped))
            time.sleep(1.0 if turn == reloads - 1 else RELOAD_EVERY_S)
        rss_after_reload = rss_mib(proc.pid)
        upstream.end_streams.set()
        stream.join(30)
        upstream.end_streams.clear()
        stream_ended = time.perf_counter()
        time.sleep(RELEASE_WATCH_S)
        probe.stop.set()
        probe.join()
        baseline = [took for start, took in probe.timings if start < before_end]
        each_probe = [
            max((took for start, took in probe.timings if begin - 0.05 <= start <= end), default=float("nan")) * 1000
            for begin, end in windows
        ]
        each_gap = [longest_gap(stream.arrivals, begin, end + 0.05) * 1000 for begin, end in windows]
        releasing = [took for start, took in probe.timings if start >= stream_ended]
        return {
            "healthy_s": healthy,
            "healthy_cpu_s": healthy_cpu,
            "rss_mib": rss,
            "rss_after_reload_mib": rss_after_reload,
            "rss_after_release_mib": rss_mib(proc.pid),
            "reload_s": statistics.median(end - begin for begin, end in windows),
            "probe_median_ms": statistics.median(baseline) * 1000,
            "probe_max_before_ms": max(baseline) * 1000,
            "probe_max_reload_ms": max(each_probe),
            "probe_median_reload_ms": statistics.median(each_probe),
            "probe_max_release_ms": max(releasing, default=float("nan")) * 1000,
            "probe_failures": probe.failures,
            "stream_gap_before_ms": longest_gap(stream.arrivals, 0, before_end) * 1000,
            "stream_gap_reload_ms": max(each_gap),
            "stream_gap_median_reload_ms": statistics.median(each_gap),
            "reloads": float(reloads),
            "probe_max_reload_each": [round(ms, 1) for ms in each_probe],
            "stream_gap_reload_each": [round(ms, 1) for ms in each_gap],
            "stream_finished": float(stream.finished_ok),
        }
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def measure(keys: int, sources: list[str], upstream: Upstream, reloads: int = 1) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix=f"table-load-{keys}-", dir=OUT) as tmp:
        work = Path(tmp)
        root = work / "policy"
        repository(keys, upstream, root)
        first, second = work / "first.json", work / "second.json"
        compile_to(root, first)
        models = root / "models.yaml"
        original = models.read_text()
        models.write_text(original.replace("input: 1.25", "input: 1.5", 1))
        compile_to(root, second)
        models.write_text(original)
        results: dict[str, dict[str, Any]] = {}
        for source in sources:
            run = work / f"run-{source}"
            run.mkdir()
            if source == "artifact":
                served = run / "routing-table.json"
                shutil.copy(first, served)
                following = run / "next.json"
                shutil.copy(second, following)
                results[source] = serve(served, following, upstream, run, reloads)
            else:
                served = run / "policy"
                shutil.copytree(root, served)
                results[source] = serve(served, None, upstream, run, reloads)
            results[source]["artifact_mib"] = first.stat().st_size / 2**20
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 50000])
    parser.add_argument("--sources", nargs="+", choices=["artifact", "directory"], default=["artifact", "directory"])
    parser.add_argument("--reloads", type=int, default=1,
                        help="reloads in each run, back and forth between the two tables: the reload columns "
                        "give the worst, and a line after each run every reload's")
    parser.add_argument("--json", action="store_true", help="print each result as JSON too")
    parser.add_argument("--code", type=Path, help="a checkout of other code (git worktree add ...) to measure instead")
    args = parser.parse_args()
    global CODE
    CODE = (args.code or CODE).resolve()
    OUT.mkdir(exist_ok=True)
    upstream = Upstream()
    upstream.start()
    upstream.ready.wait(10)
    print(f"{'keys':>6} {'source':>9} {'artifact MiB':>12} {'healthy s (cpu)':>15} {'RSS MiB':>8} {'after reload':>12} "
          f"{'reload s':>8} {'probe ms median/max before/max reload':>38} {'stream gap ms before/reload':>28} "
          f"{'probe max ms / RSS MiB after release':>37}")
    for keys in args.sizes:
        for source, r in measure(keys, args.sources, upstream, args.reloads).items():
            print(f"{keys:>6} {source:>9} {r['artifact_mib']:>12.1f} {r['healthy_s']:>8.2f} ({r['healthy_cpu_s']:.2f}) "
                  f"{r['rss_mib']:>8.0f} "
                  f"{r['rss_after_reload_mib']:>12.0f} {r['reload_s']:>8.2f} "
                  f"{r['probe_median_ms']:>14.1f} / {r['probe_max_before_ms']:>6.1f} / {r['probe_max_reload_ms']:>7.1f} "
                  f"{r['stream_gap_before_ms']:>14.1f} / {r['stream_gap_reload_ms']:>7.1f} "
                  f"{r['probe_max_release_ms']:>21.1f} / {r['rss_after_release_mib']:>7.0f}"
                  + ("" if r["probe_failures"] == 0 and r["stream_finished"] else
                     f"  ({r['probe_failures']:.0f} probe failures, stream finished: {bool(r['stream_finished'])})"))
            if args.reloads > 1:
                print(f"{'':>16} {args.reloads} reloads: probe ms max each {r['probe_max_reload_each']}, "
                      f"median {r['probe_median_reload_ms']:.1f}; stream gap ms each {r['stream_gap_reload_each']}, "
                      f"median {r['stream_gap_median_reload_ms']:.1f}")
            if args.json:
                print(json.dumps({"keys": keys, "source": source, **r}))


if __name__ == "__main__":
    main()
