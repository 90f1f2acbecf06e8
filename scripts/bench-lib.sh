# Shared by scripts/bench-serve.sh and scripts/bench-token.sh (sourced, not run): a release build,
# wrk, a work directory removed on exit, and regtoken serve on a free loopback port.

# Installs wrk when missing, builds regtoken (release), sets $bin, $work and $port.
bench_setup() {
  command -v wrk >/dev/null || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
  swift build -c release --product regtoken >/dev/null
  bin=$root/.build/release/regtoken
  work=$(mktemp -d)
  serve_pid=
  trap 'kill $serve_pid 2>/dev/null || true; rm -rf "$work"' EXIT
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
}

# bench_serve HOME [SERVE OPTIONS...]: a fresh home with account acme (its API key in $key), served
# on $port in the background ($serve_pid), waited for until it answers /healthz.
bench_serve() {
  local home=$1; shift
  "$bin" init --home "$home" >/dev/null
  key=$("$bin" accounts add acme -q --home "$home")
  "$bin" serve --listen "127.0.0.1:$port" --home "$home" --log-level warning "$@" >"$work/serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
}

# The wrk `done` hook both scripts read: "WRK requests errors p50_ms p99_ms".
wrk_report_lua='done = function(summary, latency, requests)
  io.write(string.format("WRK %d %d %.3f %.3f\n", summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end'
