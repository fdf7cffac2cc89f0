#!/usr/bin/env bash
# The bench policy with its provider as bedrock, on a mock Bedrock: serve-bedrock.sh [PORT] [MOCK_PORT]
# The mock is nginx with a canned InvokeModel answer (bedrock-upstream.nginx.conf.tmpl) on CPU 0,
# beside the load generator, as the harness's own mock; it stops with the proxy. Requests are SigV4-signed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mock_port=${2:-8790}
dir=$(mktemp -d /tmp/gatepost-bench.XXXXXX)
mkdir -p "$dir/policy" "$dir/nginx"/{tmp_body,tmp_proxy,tmp_fcgi,tmp_uwsgi,tmp_scgi}
sed "s|@PREFIX@|$dir/nginx|g; s|@PORT@|$mock_port|g" "$here/bedrock-upstream.nginx.conf.tmpl" > "$dir/nginx/nginx.conf"
sed "s|@UPSTREAM@|http://127.0.0.1:$mock_port|" "$here/policy-bedrock.yaml.tmpl" > "$dir/policy/policy.yaml"
taskset -c 0 "$(command -v nginx || echo /usr/sbin/nginx)" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -g 'daemon off;' &
mock=$!
trap 'kill "$mock" 2>/dev/null || true' EXIT
export BENCH_AWS_KEY_ID=GATEPOSTBENCHKEYID01
export BENCH_AWS_SECRET=bench-secret-access-key-not-a-secret-0001
"$root/.venv/bin/policy" serve "$dir/policy" --port "${1:-8000}" --no-watch &
proxy=$!
trap 'kill "$proxy" "$mock" 2>/dev/null || true' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
wait "$proxy"
