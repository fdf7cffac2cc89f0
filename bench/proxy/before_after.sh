#!/usr/bin/env bash
# The peer benchmark's c=32 run of this checkout against an older commit, in the same runs:
#   before_after.sh BEFORE_DIR [RUNS] [OUT_DIR]
# PEER_BENCH (default ../shared/bench-peer beside the checkout) is the peer benchmark. BEFORE_DIR is a worktree of the older commit with this checkout's .venv linked into it
# (`git worktree add --detach /tmp/before <commit> && ln -s "$PWD/.venv" /tmp/before/.venv`).
# Targets: plain, governed and traced at 100% and 10% from this checkout, governed and traced at
# 100% from BEFORE_DIR; the order is reversed every other run. TARGETS="plain plain_again traced10
# traced10_before" (any of the names below) runs those instead: plain_again is this checkout's plain
# served again, a control for how far two targets of the same code land apart; traced0 traces every
# request at ratio 0 (each request's trace id drawn and sent upstream, none sampled). Each run's
# rows go to OUT_DIR/runN.json (`rows[].target`, `rows[].rps`); a target's share is its rps over plain's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
before=$(cd "${1:?before_after.sh BEFORE_DIR [RUNS] [OUT_DIR]}" && pwd)
runs="${2:-10}"
out="${3:-/tmp/gatepost-before-after}"
peer="${PEER_BENCH:-$here/../../../shared/bench-peer}"
key=gp-bench-key-000000000000000000000001
export SKIP_SETUP=1 BENCH_PORT_BASE="${BENCH_PORT_BASE:-39000}" BENCH_RUN_DIR="$out/run"
read -r -a names <<< "${TARGETS:-plain governed governed_before traced100 traced100_before traced10}"
declare -A port=([plain]=8600 [governed]=8601 [governed_before]=8602 [traced100]=8603 [traced10]=8604
                 [traced100_before]=8605 [plain_again]=8606 [traced10_before]=8607 [traced0]=8608)
declare -A mode=([plain]="" [plain_again]="" [governed]=governed [governed_before]=governed
                 [traced100]="traced 1" [traced100_before]="traced 1" [traced10]="traced 0.1"
                 [traced10_before]="traced 0.1" [traced0]="traced 0")
serve() {  # the serve.sh of this checkout, or BEFORE_DIR's for a *_before target
  if [[ $1 == *_before ]]; then echo "env PYTHONPATH=$before $before/bench/proxy/serve.sh"; else echo "$here/serve.sh"; fi
}
mkdir -p "$out"
for ((run = 0; run < runs; run++)); do
  order=()
  for name in "${names[@]}"; do
    if ((run % 2)); then order=("$name" "${order[@]}"); else order+=("$name"); fi
  done
  args=()
  for name in "${order[@]}"; do
    args+=(--target "$name=http://127.0.0.1:${port[$name]}/v1/chat/completions" --key "$name=$key"
           --model "$name=bench-model" --cmd "$name=$(serve "$name") {upstream} ${port[$name]} ${mode[$name]}")
  done
  (cd "$peer" && ./run.sh --peers direct -c 32 -d 10 "${args[@]}" --json-out "$out/run$run.json")
done
