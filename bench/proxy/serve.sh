#!/usr/bin/env bash
# Serve the bench policy against the peer benchmark's mock upstream: serve.sh UPSTREAM_BASE [PORT]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=$(mktemp -d /tmp/gatepost-bench.XXXXXX)
sed "s|@UPSTREAM@|$1|" "$here/policy.yaml.tmpl" > "$dir/policy.yaml"
export BENCH_UPSTREAM_KEY=sk-upstream-fake-0001
exec "$root/.venv/bin/policy" serve "$dir" --port "${2:-8000}" --no-watch
