"""Compile-time benchmark: synthetic policy repositories of 1k and 10k virtual keys.

Each size is generated once into bench/out/ and compiled in a fresh process, so peak RSS is that
of one compile (parse, validate, resolve, check, lower, emit and write the artifact).

    .venv/bin/python bench/compile.py                 # 1k and 10k
    .venv/bin/python bench/compile.py --sizes 1000 --repeat 5
    .venv/bin/python bench/compile.py --sizes 1000 10000 50000
    .venv/bin/python bench/compile.py --sizes 1000 10000 --repeat 6 --baseline /tmp/before

`cpu s` (the child's process time, median) is steadier than wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
MODELS_PER_KEY = 20
PROVIDERS = {
    "openai-primary": "type: openai\n    api_key: env:OPENAI_API_KEY",
    "azure-east": "type: azure_openai\n    base_url: https://bench.openai.azure.com\n"
    "    api_version: \"2024-10-21\"\n    api_key: env:AZURE_KEY",
    "anthropic-main": "type: anthropic\n    api_key: env:ANTHROPIC_API_KEY",
}


def model_names() -> list[str]:
    names = [f"gpt-bench-{i:02d}" for i in range(30)]
    names += [f"claude-bench-{i:02d}" for i in range(10)]
    return names


def generate(root: Path, keys: int) -> None:
    """Write a realistic repository: registry, 20 teams, 10 profiles, keys in files of 100."""
    root.mkdir(parents=True, exist_ok=True)
    models = model_names()
    gpt = [m for m in models if m.startswith("gpt")]
    lines = ["providers:"]
    for pid, body in PROVIDERS.items():
        lines.append(f"  {pid}:\n    {body}")
    lines.append("    deployments:")
    lines[-1] = lines[-1]
    azure_deps = "".join(f"      {m}: dep-{m}\n" for m in gpt[:10])
    text = "\n".join(lines[:-1]) + "\n"
    text = text.replace("api_key: env:AZURE_KEY", "api_key: env:AZURE_KEY\n    deployments:\n" + azure_deps.rstrip("\n"))
    (root / "providers.yaml").write_text(text)
    reg = ["models:"]
    for i, m in enumerate(models):
        providers = ["anthropic-main"] if m.startswith("claude") else ["openai-primary"] + (["azure-east"] if m in gpt[:10] else [])
        reg.append(f"  {m}:\n    providers: [{', '.join(providers)}]\n"
                   f"    price: {{input: {1 + i % 7}.25, cached_input: 0.125, output: {4 + i % 5}.5}}")
    (root / "models.yaml").write_text("\n".join(reg) + "\n")
    teams = [f"team-{t:02d}" for t in range(20)]
    (root / "teams.yaml").write_text(
        "teams:\n" + "".join(f"  {t}:\n    defaults: {{models_allowed: [gpt-bench-00, gpt-bench-01]}}\n" for t in teams)
    )
    prof = ["profiles:"]
    for p in range(10):
        allowed = [models[(p * 3 + j) % len(models)] for j in range(MODELS_PER_KEY - 2)]
        prof.append(
            f"  profile-{p}:\n    models_allowed: [{', '.join(allowed)}, claude-bench-0*]\n"
            f"    model_aliases: {{fast: {allowed[0]}, smart: {allowed[1]}}}\n"
            f"    fallback: {{on: [5xx, timeout, 429], chain: [openai-primary, {{provider: anthropic-main, model: claude-bench-00}}]}}\n"
            f"    cache: {{mode: respect}}"
        )
    (root / "profiles.yaml").write_text("\n".join(prof) + "\n")
    (root / "budgets.yaml").write_text(
        "budgets:\n"
        "  org-monthly: {scope: org, window: month, limit_usd: 500000, on_breach: {warn: 80%, block: 100%}}\n"
        "  team-daily: {scope: team, target: '*', window: day, timezone: Europe/Amsterdam, limit_usd: 1000, on_breach: {warn: 80%, block: 100%}}\n"
        "  per-engineer: {scope: principal, target: '*', window: month, limit_usd: 300, on_breach: {warn: 80%, block: 100%}}\n"
        "  per-key-weekly: {scope: vk, target: '*', window: week, limit_usd: 150}\n"
    )
    vk_dir = root / "virtual_keys"
    for batch in range(0, keys, 100):
        out = ["virtual_keys:"]
        for n in range(batch, min(batch + 100, keys)):
            digest = hashlib.sha256(f"bench-key-{n}".encode()).hexdigest()
            team = teams[n % len(teams)]
            out.append(
                f"  vk-{n:06d}:\n    key_sha256: {digest}\n    key_prefix: gp-{n:09d}\n"
                f"    principal: user{n}@bench.example\n    team: {team}\n    extends: profile-{n % 10}"
            )
            if n % 10 == 0:
                out.append(f"    model_aliases: {{gpt-4o: azure-east/{gpt[n % 10]}}}")
        team_dir = vk_dir / teams[batch // 100 % len(teams)]
        team_dir.mkdir(parents=True, exist_ok=True)
        (team_dir / f"keys-{batch // 100:04d}.yaml").write_text("\n".join(out) + "\n")


def child(root: Path) -> None:
    from artifact import write_to
    from compiler import compile_policy

    target = root.parent / f"{root.name}.routing-table.json"
    # A compile writes a new file (`policy compile -o` writes a temporary one and renames it); the
    # previous run's artifact is removed before the clock starts: truncating it dropped its 95-477 MB
    # from the page cache inside the timed write (0.03-0.07 s at 10k, 0.1-0.18 s at 50k).
    target.unlink(missing_ok=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = compile_policy(root)
    if result.artifact is None:
        sys.stderr.write("\n".join(f"{d.code} {d.span} {d.message}" for d in result.errors[:20]) + "\n")
        raise SystemExit(1)
    with target.open("wb") as fh:
        write_to(result.artifact, fh)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    table = result.artifact.table
    routes = sum(len(table.route_sets[k.routes]) for k in table.virtual_keys.values())
    print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "peak_mib": peak_kib / 1024, "bytes": target.stat().st_size, "routes": routes}))


def measure(root: Path, code: Path = HERE.parent) -> dict[str, float]:
    """One compile of `root` in a fresh process, with the packages of the checkout `code`."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(root)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(code)},
    )
    if proc.returncode != 0:
        raise SystemExit(f"compile of {root} failed:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def compare(sizes: list[int], repeat: int, baseline: Path) -> None:
    """This checkout against `baseline`, run by run in turn, the order swapped every round: on a
    shared machine the load changes between runs, so they share it."""
    print(f"{'keys':>6} {'code':>9} {'wall median (min) s':>20} {'cpu median (min) s':>19} {'peak MiB':>9}")
    for size in sizes:
        root = OUT / f"vk{size}"
        if not root.exists():
            generate(root, size)
        codes = {"baseline": baseline, "this": HERE.parent}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in codes}
        for round_ in range(repeat):
            for name in sorted(codes, reverse=round_ % 2 == 1):
                runs[name].append(measure(root, codes[name]))
        for name, found in runs.items():
            wall = [r["seconds"] for r in found]
            cpu = [r["cpu_seconds"] for r in found]
            print(
                f"{size:>6} {name:>9} {statistics.median(wall):>10.2f} ({min(wall):.2f}) "
                f"{statistics.median(cpu):>10.2f} ({min(cpu):.2f}) {max(r['peak_mib'] for r in found):>9.0f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the median is reported")
    parser.add_argument(
        "--baseline", type=Path, help="a checkout of other code (git worktree add ...) to run in turn with this one"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if args.baseline:
        compare(args.sizes, args.repeat, args.baseline.resolve())
        return
    results = {}
    print(f"{'keys':>6} {'routes':>8} {'median s':>9} {'cpu s':>6} {'peak MiB':>9} {'artifact MiB':>13}")
    for size in args.sizes:
        root = OUT / f"vk{size}"
        if not root.exists():
            generate(root, size)
        runs = [measure(root) for _ in range(args.repeat)]
        secs = statistics.median(r["seconds"] for r in runs)
        cpu = statistics.median(r["cpu_seconds"] for r in runs)
        peak = max(r["peak_mib"] for r in runs)
        results[size] = secs
        print(f"{size:>6} {runs[0]['routes']:>8} {secs:>9.2f} {cpu:>6.2f} {peak:>9.0f} {runs[0]['bytes'] / 2**20:>13.1f}")
    if len(results) > 1:
        small, large = min(results), max(results)
        print(f"scaling {large}/{small} keys: {results[large] / results[small]:.1f}x time")


if __name__ == "__main__":
    main()
