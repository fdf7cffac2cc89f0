#!/usr/bin/env bash
# Serve the bench policy against the peer benchmark's mock upstream:
#   serve.sh UPSTREAM_BASE [PORT] [governed [LEDGER_URL] | traced RATIO]
# `governed` serves policy-governed.yaml.tmpl instead (two budgets and three rate limits on the
# bench key, never reached) with a fresh SQLite ledger in the run's temporary directory, or with
# the Redis ledger at LEDGER_URL (e.g. redis://127.0.0.1:6390/0; flush it between runs).
# `traced RATIO` adds gateway.telemetry with sampling_ratio RATIO, sending to a loopback OTLP/HTTP
# receiver (otlp_sink.py, on port PORT+1000, pinned to CPU 0 beside the load) that counts the
# spans it receives in the run's temporary directory (spans.txt).
# BENCH_ADMIN_PORT=N also serves the admin API there (`--admin-port`, a generated token), unused by the load.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=$(mktemp -d /tmp/gatepost-bench.XXXXXX)
template="$here/policy.yaml.tmpl"
port="${2:-8000}"
ledger=()
case "${3:-}" in
  "") ;;
  governed) template="$here/policy-governed.yaml.tmpl"; ledger=(--data "$dir/data")
            if [ -n "${4:-}" ]; then ledger=(--ledger "$4"); fi ;;
  traced) ;;
  *) echo "serve.sh: the third argument is 'governed', 'traced RATIO' or nothing, not '$3'" >&2; exit 2 ;;
esac
sed "s|@UPSTREAM@|$1|" "$template" > "$dir/policy.yaml"
if [ "${3:-}" = traced ]; then
  sink_port=$((port + 1000))
  sed -i "s|^  header_prefix: X-LangWatch-$|&\n  telemetry: {endpoint: \"http://127.0.0.1:$sink_port\", sampling_ratio: ${4:?traced needs a RATIO}}|" "$dir/policy.yaml"
  setsid taskset -c 0 "$root/.venv/bin/python" "$here/otlp_sink.py" "$sink_port" $$ "$dir/spans.txt" &
fi
admin=()
if [ -n "${BENCH_ADMIN_PORT:-}" ]; then
  sed -i "s|^gateway:$|gateway:\n  admin: {token: env:BENCH_ADMIN_TOKEN}|" "$dir/policy.yaml"
  export BENCH_ADMIN_TOKEN="bench-admin-$RANDOM$RANDOM"
  admin=(--admin-port "$BENCH_ADMIN_PORT")
fi
export BENCH_UPSTREAM_KEY=sk-upstream-fake-0001
exec "$root/.venv/bin/policy" serve "$dir" --port "$port" --no-watch "${ledger[@]}" "${admin[@]}"
