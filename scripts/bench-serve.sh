#!/usr/bin/env bash
# token-add through regtoken serve over keep-alive HTTP (wrk, POST /v1/tokens) beside the same
# work in process (regtoken loadtest --issue: the service's own Issuer, no HTTP), in one run, on
# fresh homes. Prints both rows and their ratio. Release build; installs wrk when missing.
#
#   scripts/bench-serve.sh [SECONDS] [CONNECTIONS]     # defaults: 10 s, 16 connections
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-10}
connections=${2:-16}
cd "$root"
. scripts/bench-lib.sh
bench_setup

# In process: 2 threads issuing on their own home.
"$bin" init --home "$work/local" >/dev/null
local_line=$("$bin" loadtest --issue --home "$work/local" --account acme --region eu-west-1 --threads 2 --duration "${seconds}s" --output json)

# Over HTTP: the service on another home, wrk with keep-alive connections.
bench_serve "$work/served"
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"region":"eu-west-1","readwrite":true}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
$wrk_report_lua
LUA
wrk_out=$(wrk -t2 -c"$connections" -d"${seconds}s" -s "$work/post.lua" "http://127.0.0.1:$port/v1/tokens")
read -r _ requests errors p50 p99 < <(grep '^WRK ' <<<"$wrk_out")
listed=$("$bin" token-list --home "$work/served" --account acme --region eu-west-1 --output json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')

python3 - "$local_line" "$requests" "$errors" "$p50" "$p99" "$seconds" "$listed" "$connections" <<'PY'
import json, sys
local = json.loads(sys.argv[1])
requests, errors, p50, p99, seconds, listed, conns = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
http_rate = requests / seconds
print(f"| token-add in process (2 threads, Issuer, no HTTP) | {local['per_second']:.0f}/s | p50 {local['p50_ms']:.2f} ms | p99 {local['p99_ms']:.2f} ms |")
print(f"| token-add through serve (wrk, {conns} keep-alive connections) | {http_rate:.0f}/s | p50 {p50:.2f} ms | p99 {p99:.2f} ms |")
print(f"serve / in process: {http_rate / local['per_second']:.2f}; HTTP errors {errors}; tokens listed after the HTTP run {listed} (answered 201: {requests - errors})")
PY
