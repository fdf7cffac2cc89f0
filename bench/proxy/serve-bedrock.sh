#!/usr/bin/env bash
# The bench policy with its provider as bedrock, on bedrock_upstream.py: serve-bedrock.sh [PORT] [MOCK_PORT]
# The mock runs on CPU 0 (with the load generator) and exits with the proxy; requests are SigV4-signed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mock_port=${2:-8790}
dir=$(mktemp -d /tmp/gatepost-bench.XXXXXX)
sed "s|@UPSTREAM@|http://127.0.0.1:$mock_port|" "$here/policy-bedrock.yaml.tmpl" > "$dir/policy.yaml"
taskset -c 0 "$root/.venv/bin/python" "$here/bedrock_upstream.py" --port "$mock_port" --parent $$ &
export BENCH_AWS_KEY_ID=GATEPOSTBENCHKEYID01
export BENCH_AWS_SECRET=bench-secret-access-key-not-a-secret-0001
exec "$root/.venv/bin/policy" serve "$dir" --port "${1:-8000}" --no-watch
