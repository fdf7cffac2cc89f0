#!/usr/bin/env bash
# Serve the bench policy against the peer benchmark's mock upstream:
#   serve.sh UPSTREAM_BASE [PORT] [governed] [ADMIN_PORT]
# `governed` serves policy-governed.yaml.tmpl instead (two budgets and three rate limits on the
# bench key, never reached) with a fresh SQLite ledger in the run's temporary directory.
# ADMIN_PORT also serves the admin API there (`--admin-port`, a generated token), unused by the load.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=$(mktemp -d /tmp/gatepost-bench.XXXXXX)
template="$here/policy.yaml.tmpl"
ledger=()
case "${3:-}" in
  "") ;;
  governed) template="$here/policy-governed.yaml.tmpl"; ledger=(--data "$dir/data") ;;
  *) echo "serve.sh: the third argument is 'governed' or nothing, not '$3'" >&2; exit 2 ;;
esac
sed "s|@UPSTREAM@|$1|" "$template" > "$dir/policy.yaml"
admin=()
if [ -n "${4:-}" ]; then
  sed -i "s|^gateway:$|gateway:\n  admin: {token: env:BENCH_ADMIN_TOKEN}|" "$dir/policy.yaml"
  export BENCH_ADMIN_TOKEN="bench-admin-$RANDOM$RANDOM"
  admin=(--admin-port "$4")
fi
export BENCH_UPSTREAM_KEY=sk-upstream-fake-0001
exec "$root/.venv/bin/policy" serve "$dir" --port "${2:-8000}" --no-watch "${ledger[@]}" "${admin[@]}"
