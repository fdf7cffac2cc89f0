"""Streaming benchmark (SSE chat completions), loopback only: direct, Gatepost, and LiteLLM and
Portkey when ../shared/bench-peer/setup.sh has installed them under /tmp/peers, each gateway pinned
to CPU 1, nginx and wrk to CPU 0.

    .venv/bin/python bench/proxy/stream.py [--duration 10] [--concurrency 1,32] [--runs 3]

The upstream is nginx answering a fixed 12-event chat.completion.chunk stream ending in [DONE];
a response counts as failed unless it is a 200 that carries the [DONE] line. With --runs N each
cell is measured N times (gateways restarted between runs) and the median shown with min-max;
peak RSS is sampled from /proc every 0.2 s over each gateway's process group.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
UPSTREAM_PORT, GATEPOST_PORT, PORTKEY_PORT, LITELLM_PORT = 28180, 28100, 28187, 28140
PORTKEY_JS = Path("/tmp/peers/portkey/node_modules/@portkey-ai/gateway/build/start-server.js")
LITELLM_BIN = Path("/tmp/peers/litellm-venv/bin/litellm")
LITELLM_MASTER_KEY = "sk-litellm-bench-master"
LITELLM_CONFIG = """
model_list:
  - model_name: gpt-4o-mini
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{upstream}", api_key: sk-upstream-fake-0001}}
litellm_settings: {{callbacks: [], success_callback: [], failure_callback: [], num_retries: 0, drop_params: true,
                   cache: false, request_timeout: 30}}
router_settings: {{num_retries: 0, enable_pre_call_checks: false}}
general_settings: {{master_key: {key}, disable_spend_logs: true, disable_error_logs: true}}
"""
KEY = "gp-bench-key-000000000000000000000001"


def sse_body() -> str:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-mini"}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    events += [{**base, "choices": [{"index": 0, "delta": {"content": f"word{i} "}, "finish_reason": None}]} for i in range(9)]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**base, "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}})
    text = "".join(f"data: {json.dumps(e, separators=(',', ':'))}\\n\\n" for e in events) + "data: [DONE]\\n\\n"
    return text.replace("'", "\\'")


def nginx_conf(run: Path) -> str:
    return f"""
worker_processes 1;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    server {{
        listen 127.0.0.1:{UPSTREAM_PORT} reuseport backlog=4096;
        location = /v1/chat/completions {{ default_type text/event-stream; return 200 '{sse_body()}'; }}
        location = /healthz {{ return 200 'ok'; }}
    }}
}}
"""


def pin(cpu: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *argv] if shutil.which("taskset") else argv


def wait_ready(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def run_wrk(run: Path, url: str, body: dict[str, object], conc: int, seconds: int, auth: str, extra: str) -> dict[str, float]:
    body_file = run / "body.json"
    body_file.write_text(json.dumps(body))
    env = dict(os.environ, BODY_FILE=str(body_file), AUTH=auth, EXTRA_HEADER=extra)
    argv = pin("0", ["wrk", "-t", "1", "-c", str(conc), "-d", f"{seconds}s", "--timeout", "10s", "-s", str(HERE / "sse.lua"), url])
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=seconds + 30).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    result: dict[str, float] = json.loads(line[len("RESULT "):])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def group_rss_kib(pgid: int) -> int:
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[2]) != pgid:
                continue
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total


class PeakRss(threading.Thread):
    def __init__(self, pgid: int) -> None:
        super().__init__(daemon=True)
        self.pgid, self.peak_kib = pgid, 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak_kib = max(self.peak_kib, group_rss_kib(self.pgid))
            self._halt.wait(0.2)

    def stop(self) -> float:
        self._halt.set()
        self.join(timeout=2)
        return self.peak_kib / 1024


def spawn(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, start_new_session=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def one_run(args: argparse.Namespace, run: Path, upstream: str) -> dict[tuple[str, int], dict[str, float]]:
    """Every target at every concurrency once, gateways started fresh for this run."""
    procs: list[subprocess.Popen[bytes]] = []
    samplers: dict[str, PeakRss] = {}
    results: dict[tuple[str, int], dict[str, float]] = {}
    body = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Say hello."}]}
    try:
        targets: list[tuple[str, str, str, str, dict[str, object]]] = [
            ("direct", f"{upstream}/chat/completions", "Bearer sk-upstream-fake-0001", "", body)
        ]
        log = (run / "gatepost.log").open("wb")
        gatepost = spawn(pin("1", [str(HERE / "serve.sh"), upstream, str(GATEPOST_PORT)]), stdout=log, stderr=log)
        procs.append(gatepost)
        wait_ready(f"http://127.0.0.1:{GATEPOST_PORT}/healthz")
        samplers["gatepost"] = PeakRss(gatepost.pid)
        targets.append(("gatepost", f"http://127.0.0.1:{GATEPOST_PORT}/v1/chat/completions", f"Bearer {KEY}", "",
                        {**body, "model": "bench-model"}))
        if PORTKEY_JS.exists():
            env = dict(os.environ, NODE_ENV="production", TRUSTED_CUSTOM_HOSTS="127.0.0.1,localhost")
            portkey = spawn(pin("1", ["node", str(PORTKEY_JS), f"--port={PORTKEY_PORT}", "--headless"]),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(portkey)
            time.sleep(1.5)
            samplers["portkey"] = PeakRss(portkey.pid)
            config = json.dumps({"provider": "openai", "api_key": "sk-upstream-fake-0001", "custom_host": upstream,
                                 "retry": {"attempts": 0}}, separators=(",", ":"))
            targets.append(("portkey", f"http://127.0.0.1:{PORTKEY_PORT}/v1/chat/completions", "Bearer unused",
                            f"x-portkey-config: {config}", body))
        if LITELLM_BIN.exists():
            config = run / "litellm.yaml"
            config.write_text(LITELLM_CONFIG.format(upstream=upstream, key=LITELLM_MASTER_KEY))
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "DATABASE_URL"))}
            env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR", LITELLM_MODE="PRODUCTION",
                       LITELLM_TELEMETRY="False", DISABLE_ADMIN_UI="True", NO_PROXY="127.0.0.1,localhost")
            argv = [str(LITELLM_BIN), "--config", str(config), "--host", "127.0.0.1", "--port", str(LITELLM_PORT),
                    "--num_workers", "1", "--telemetry", "False"]
            litellm = spawn(pin("1", argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(litellm)
            wait_ready(f"http://127.0.0.1:{LITELLM_PORT}/health/liveliness", timeout_s=120)
            samplers["litellm"] = PeakRss(litellm.pid)
            targets.append(("litellm", f"http://127.0.0.1:{LITELLM_PORT}/v1/chat/completions",
                            f"Bearer {LITELLM_MASTER_KEY}", "", body))
        for sampler in samplers.values():
            sampler.start()
        for name, url, auth, extra, target_body in targets:
            for conc in [int(c) for c in args.concurrency.split(",")]:
                run_wrk(run, url, target_body, conc, 2, auth, extra)
                r = run_wrk(run, url, target_body, conc, args.duration, auth, extra)
                results[(name, conc)] = r
                print(f"  {name} c={conc}: {r['rps']:.0f} rps, p50 {r['p50_ms']:.3f} ms", flush=True)
        for name, sampler in samplers.items():
            peak = sampler.stop()
            for key in results:
                if key[0] == name:
                    results[key]["rss_mib"] = peak
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    run = Path(tempfile.mkdtemp(prefix="gatepost-stream-bench."))
    (run / "nginx.conf").write_text(nginx_conf(run))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    upstream = f"http://127.0.0.1:{UPSTREAM_PORT}/v1"
    upstream_proc = spawn(pin("0", [nginx, "-p", str(run), "-c", str(run / "nginx.conf"), "-g", "daemon off;"]))
    runs = []
    try:
        wait_ready(f"http://127.0.0.1:{UPSTREAM_PORT}/healthz")
        for n in range(args.runs):
            print(f"run {n + 1} of {args.runs}", flush=True)
            runs.append(one_run(args, run, upstream))
    finally:
        os.killpg(upstream_proc.pid, signal.SIGTERM)
        upstream_proc.wait(timeout=10)

    def cell(key: tuple[str, int], field: str, fmt: str) -> str:
        values = [r[key][field] for r in runs if key in r and field in r[key]]
        if not values:
            return "-"
        median = statistics.median(values)
        return fmt.format(median) if len(values) == 1 else f"{fmt.format(median)} ({fmt.format(min(values))}-{fmt.format(max(values))})"

    print(f"\nmedian of {args.runs} runs of {args.duration} s per cell (min-max)\n")
    print("| target | conc | rps | p50 ms | p99 ms | failed | peak RSS MiB |\n|---|---|---|---|---|---|---|")
    for key in runs[0]:
        failed = sum(int(r[key]["failed"] + r[key]["socket_errors"]) for r in runs)
        print(f"| {key[0]} | {key[1]} | {cell(key, 'rps', '{:,.0f}')} | {cell(key, 'p50_ms', '{:.3f}')} | "
              f"{cell(key, 'p99_ms', '{:.2f}')} | {failed} | {cell(key, 'rss_mib', '{:.0f}')} |")


if __name__ == "__main__":
    main()
