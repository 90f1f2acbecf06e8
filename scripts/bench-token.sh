#!/usr/bin/env bash
# GET /token (regtoken serve as the token server of a stock registry) over keep-alive HTTP (wrk,
# Basic credentials with a read-write regtoken token, one repository scope) beside the raw ES256
# signing rate of this machine (openssl speed ecdsap256: the primitive each answer pays once), in
# one run. Prints both rows and their ratio. Release build; installs wrk when missing.
#
#   scripts/bench-token.sh [SECONDS] [CONNECTIONS]     # defaults: 10 s, 16 connections
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-10}
connections=${2:-16}
cd "$root"
. scripts/bench-lib.sh
bench_setup

bench_serve "$work/served" --token-service registry.test --token-issuer regtoken --token-region eu-west-1
token=$(printf '%s\n' "$key" | "$bin" login "http://127.0.0.1:$port" --api-key-stdin --home "$work/client" >/dev/null && \
        REGTOKEN_REGION=eu-west-1 "$bin" token-add --readwrite -q --home "$work/client")
basic=$(printf 'token:%s' "$token" | base64 -w0)
curl -sf -H "Authorization: Basic $basic" "http://127.0.0.1:$port/token?service=registry.test&scope=repository:acme/app:pull,push" \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["token"] and d["expires_in"] > 0' \
    || { echo "GET /token did not answer a registry token" >&2; exit 1; }
cat >"$work/get.lua" <<LUA
wrk.headers["Authorization"] = "Basic $basic"
$wrk_report_lua
LUA
wrk_out=$(wrk -t2 -c"$connections" -d"${seconds}s" -s "$work/get.lua" "http://127.0.0.1:$port/token?service=registry.test&scope=repository:acme/app:pull,push")
read -r _ requests errors p50 p99 < <(grep '^WRK ' <<<"$wrk_out")
kill $serve_pid; wait $serve_pid 2>/dev/null || true

# The primitive, on the same machine, right after: P-256 ECDSA signatures per second (2 processes, as wrk had 2 cores of load).
signs=$(openssl speed -seconds "$seconds" -multi 2 ecdsap256 2>/dev/null | awk '/256 bits ecdsa \(nistp256\)/ {print $(NF-1)}' | tail -1)

python3 - "$requests" "$errors" "$p50" "$p99" "$seconds" "$connections" "$signs" <<'PY'
import sys
requests, errors, p50, p99, seconds, conns, signs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6], float(sys.argv[7])
rate = requests / seconds
print(f"| GET /token through serve (wrk, {conns} keep-alive connections) | {rate:.0f}/s | p50 {p50:.2f} ms | p99 {p99:.2f} ms |")
print(f"| ES256 signatures, raw (openssl speed ecdsap256, 2 processes) | {signs:.0f}/s | | |")
print(f"/token / raw signing: {rate / signs:.3f}; HTTP errors {errors}")
PY
