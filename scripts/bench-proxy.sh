#!/usr/bin/env bash
# regtoken proxy beside nginx doing the same work, in one run: both in front of the same
# zero-cost nginx stub upstream on loopback, wrk GET with the same Basic credentials (user
# `token`, a regtoken token as password), nginx checking them with auth_basic and writing a
# buffered access log (buffer=32k flush=1s), regtoken proxy verifying the token and writing its
# default access log. The servers are measured in turn, ROUNDS times, and each round prints the
# ratio regtoken/nginx; the median ratio is the result.
#
#   scripts/bench-proxy.sh [--es256] [--tls] [--connections N] [--seconds S] [--rounds R] [--baseline BIN] [--floor] [--profile FILE]
#     --es256        ES256 tokens and the proxy's verified-signature cache (default HS256)
#     --tls          TLS on both servers (a loopback certificate; wrk speaks https)
#     --connections  wrk connections (default 32; 1000 for the many-connections row)
#     --baseline     another regtoken binary (an earlier build) run beside, in the same rounds:
#                    prints this build's rate over the baseline's too
#     --floor        also measures the floors of scripts/bench-floor: a SwiftNIO forwarder that
#                    copies bytes and reads none of them (what a proxy on SwiftNIO pays before any
#                    HTTP); one that runs SwiftNIO's HTTP/1 codecs, as regtoken proxy does, and
#                    checks nothing (what it pays before it decides anything); and one that reads
#                    and rewrites HTTP/1.1 heads on the bytes (a cost model of a byte-level HTTP
#                    layer); plain only
#     --profile      records the proxy with perf (linux-perf) into FILE, in an extra round before
#                    the measured ones (recording slows it), and prints where its samples went
#                    (scripts/profile-attribute.py: kernel and user time by part of the request path,
#                    and samples a request); with --floor, the byte-level cost model too (FILE.bytes)
#
# Each row also prints the server's CPU time per request (user and system, all its processes
# and threads, from /proc), which the machine's noise disturbs less than the rates, then that
# time's user and system parts and how often per request the server was preempted (involuntary
# context switches: on a machine shared with wrk and the stub, a longer turn on the CPU is
# preempted more often, which costs system time); the last lines give the median ratios of the
# rates and CPU times, per round.
#
# Release build; installs wrk, nginx and procps when missing. Everything binds to 127.0.0.1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
alg=HS256 tls=0 connections=32 seconds=10 rounds=3 baseline= floor=0 profile=
while (($#)); do
  case "$1" in
    --es256) alg=ES256; shift ;;
    --tls) tls=1; shift ;;
    --connections) connections=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    --floor) floor=1; shift ;;
    --profile) profile=$(realpath -m "$2"); shift 2 ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "bench-proxy.sh: unknown argument '$1'" >&2; exit 64 ;;
  esac
done
if [ -n "$profile" ]; then
  command -v perf >/dev/null || { echo "bench-proxy.sh: --profile needs perf (apt-get install linux-perf)" >&2; exit 64; }
fi
for tool in wrk nginx pgrep; do
  package=$tool; [ $tool = pgrep ] && package=procps
  command -v $tool >/dev/null || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $package >/dev/null; }
done
cd "$root"
swift build -c release --product regtoken >/dev/null
bin=$root/.build/release/regtoken
if ((floor)); then
  ((tls)) && { echo "bench-proxy.sh: --floor measures plain TCP only" >&2; exit 64; }
  swift build -c release --package-path scripts/bench-floor >/dev/null
  floor_bin=$root/scripts/bench-floor/.build/release/bench-floor
fi
work=$(mktemp -d)
proxy_pid= base_pid= floor_pid= hfloor_pid= bfloor_pid=
cleanup() {
  kill "$proxy_pid" "$base_pid" "$floor_pid" "$hfloor_pid" "$bfloor_pid" 2>/dev/null || true
  for d in stub front; do [ -f "$work/$d/nginx.pid" ] && kill -QUIT "$(cat "$work/$d/nginx.pid")" 2>/dev/null || true; done
  sleep 0.3; rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
stub_port=$(free_port) nginx_port=$(free_port) proxy_port=$(free_port) base_port=$(free_port) floor_port=$(free_port) hfloor_port=$(free_port) bfloor_port=$(free_port)
ulimit -n 65536 2>/dev/null || true

# A regtoken home, a read-write token, and the same credentials for nginx's htpasswd.
"$bin" init --alg "$alg" --home "$work/home" >/dev/null
token=$(REGTOKEN_ACCOUNT=acme REGTOKEN_REGION=eu-west-1 "$bin" token-add --readwrite -q --home "$work/home")
basic=$(printf 'token:%s' "$token" | base64 -w0)

scheme=http tls_listen="" tls_conf=""
if ((tls)); then
  scheme=https
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  chmod 600 "$work/key.pem"
  tls_listen=" ssl"
  tls_conf="ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; ssl_protocols TLSv1.2 TLSv1.3;"
fi

# nginx_conf DIR PORT BODY: an nginx of our own (no /etc/nginx), 2 workers.
nginx_conf() {
  local dir=$1 port=$2 body=$3
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 2;
$( [ "$(id -u)" -eq 0 ] && echo "user root root;" )
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  client_body_temp_path $dir/tmp/body; proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fcgi; uwsgi_temp_path $dir/tmp/uwsgi; scgi_temp_path $dir/tmp/scgi;
  $body
}
EOF
  nginx -c "$dir/nginx.conf" -p "$dir" -g "error_log $dir/error.log warn;"
}
# The stub: every /v2/ request answers 200 {} at once, no log.
nginx_conf "$work/stub" "$stub_port" "access_log off; server { listen 127.0.0.1:$stub_port; location /v2/ { default_type application/json; return 200 '{}'; } }"
# nginx in front of it: auth_basic with the token as password, a buffered access log, keep-alive
# upstream with as many idle connections kept as wrk has (at least 64): fewer would have nginx open
# and close registry connections under load, which the proxy (one per client connection) does not.
mkdir -p "$work/front"
printf 'token:{PLAIN}%s\n' "$token" >"$work/front/htpasswd"
nginx_conf "$work/front" "$nginx_port" "
  log_format reg '\$remote_addr \$request_method \$request_uri \$status user=\$remote_user rt=\$request_time';
  access_log $work/front/access.log reg buffer=32k flush=1s;
  upstream stub { server 127.0.0.1:$stub_port; keepalive $((connections > 64 ? connections : 64)); }
  server {
    listen 127.0.0.1:$nginx_port$tls_listen; $tls_conf
    location /v2/ {
      auth_basic \"Registry\"; auth_basic_user_file $work/front/htpasswd;
      proxy_pass http://stub; proxy_http_version 1.1; proxy_set_header Connection \"\";
      proxy_set_header Host \$http_host; proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_request_buffering off; proxy_buffering off;
    }
  }"

proxy_args=(proxy --listen "127.0.0.1:$proxy_port" --upstream "http://127.0.0.1:$stub_port" --region eu-west-1
            --keys "$work/home/keys" --home "$work/home" --max-connections 4096)
((tls)) && proxy_args+=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
"$bin" "${proxy_args[@]}" 2>"$work/proxy.log" &
proxy_pid=$!
if [ -n "$baseline" ]; then
  "$baseline" "${proxy_args[@]/127.0.0.1:$proxy_port/127.0.0.1:$base_port}" 2>"$work/baseline.log" &
  base_pid=$!
fi
if ((floor)); then
  "$floor_bin" "$floor_port" "$stub_port" &
  floor_pid=$!
  "$floor_bin" --http "$hfloor_port" "$stub_port" &
  hfloor_pid=$!
  "$floor_bin" --bytes "$bfloor_port" "$stub_port" &
  bfloor_pid=$!
fi
for port in $stub_port $nginx_port $proxy_port ${baseline:+$base_port} ${floor_pid:+$floor_port $hfloor_port $bfloor_port}; do
  for _ in $(seq 100); do curl -sk -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break; curl -sk -o /dev/null "https://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.1; done
done
path=/v2/acme/app/manifests/v1
for port in $nginx_port $proxy_port ${baseline:+$base_port} ${floor_pid:+$floor_port $hfloor_port $bfloor_port}; do
  code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Basic $basic" "$scheme://127.0.0.1:$port$path")
  [ "$code" = 200 ] || { echo "bench-proxy.sh: 127.0.0.1:$port answered $code, not 200" >&2; tail -5 "$work/proxy.log" >&2; exit 1; }
done

cat >"$work/auth.lua" <<LUA
wrk.headers["Authorization"] = "Basic $basic"
done = function(summary, latency, requests)
  io.write(string.format("WRK %.0f %d %.3f %.3f\n", summary.requests / (summary.duration / 1e6),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
measure() {  # PORT -> "rate errors p50 p99"
  wrk -t2 -c"$connections" -d"${seconds}s" -s "$work/auth.lua" "$scheme://127.0.0.1:$1$path" | awk '/^WRK /{print $2, $3, $4, $5}'
}
echo "wrk -t2 -c$connections -d${seconds}s GET $path with Basic credentials; $alg tokens$( ((tls)) && echo ', TLS' ); $(nproc) CPUs; load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-6s %-34s %10s %8s %10s %10s %12s %7s %7s %8s\n' round server "req/s" errors "p50 ms" "p99 ms" "CPU us/req" user system preempt
# cpu_ticks PID...: user and system clock ticks of these processes (all their threads), and
# their involuntary context switches (preemptions), as "user system preemptions".
cpu_ticks() {
  local u=0 k=0 p=0 pid t fields
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    read -r -a fields < <(sed 's/.*) //' "/proc/$pid/stat")
    u=$((u + fields[11])) k=$((k + fields[12]))
    for t in /proc/"$pid"/task/*; do p=$((p + $(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$t/status" 2>/dev/null || echo 0))); done
  done
  echo "$u $k $p"
}
# row ROUND NAME PORT PID...: measures PORT, prints its row with the CPU time the processes PID...
# took per request (all, user, system) and their preemptions per request, and leaves its rate in
# $rate and that CPU time in $cpu.
row() {
  local err p50 p99 round=$1 name=$2 port=$3 u0 k0 p0 u1 k1 p1 us uus kus pre
  shift 3
  read -r u0 k0 p0 < <(cpu_ticks "$@")
  read -r rate err p50 p99 < <(measure "$port")
  read -r u1 k1 p1 < <(cpu_ticks "$@")
  read -r us uus kus pre < <(python3 -c "n = max($rate * $seconds, 1); t = 1e6 / $(getconf CLK_TCK) / n
print(f'{($u1 - $u0 + $k1 - $k0) * t:.1f} {($u1 - $u0) * t:.1f} {($k1 - $k0) * t:.1f} {($p1 - $p0) / n:.2f}')")
  printf '%-6s %-34s %10s %8s %10s %10s %12s %7s %7s %8s\n' "$round" "$name" "$rate" "$err" "$p50" "$p99" "$us" "$uus" "$kus" "$pre"
  cpu=$us
}
ratio() { python3 -c "print(f'{$1 / $2:.3f}')"; }
ratios=() gains=() floors=() hfloors=() bfloors=() cpus=() cpugains=()
# The front nginx: its master and workers.
nginx_pids="$(cat "$work/front/nginx.pid") $(pgrep -P "$(cat "$work/front/nginx.pid")" | tr '\n' ' ')"
# record FILE NAME PORT PID: an extra round, not counted (perf slows what it records), with PID
# recorded into FILE for part of it; leaves the requests made while recording in $recorded.
record() {
  local file=$1 name=$2 port=$3 pid=$4 span=$((seconds > 3 ? seconds - 2 : 1)) perf_pid
  (sleep 1; exec perf record -q -F 1999 -g -p "$pid" -o "$file" -- sleep "$span") >"$work/perf.log" 2>&1 &
  perf_pid=$!
  row 0 "$name, recorded (not counted)" "$port" "$pid"
  wait "$perf_pid" || true
  [ -s "$file" ] || { echo "bench-proxy.sh: perf recorded nothing into $file:" >&2; cat "$work/perf.log" >&2; exit 1; }
  recorded=$((rate * span))
}
if [ -n "$profile" ]; then
  record "$profile" "regtoken proxy" "$proxy_port" "$proxy_pid"; proxy_recorded=$recorded
  # With the floors, the byte-level cost model too: the same parts, samples a request side by side.
  if ((floor)); then record "$profile.bytes" "HTTP/1.1 on the bytes" "$bfloor_port" "$bfloor_pid"; bytes_recorded=$recorded; fi
fi
for r in $(seq "$rounds"); do
  row "$r" "nginx auth_basic, buffered log" "$nginx_port" $nginx_pids; n_rate=$rate n_cpu=$cpu
  row "$r" "regtoken proxy, access log" "$proxy_port" "$proxy_pid"; p_rate=$rate p_cpu=$cpu
  ratios+=("$(ratio "$p_rate" "$n_rate")") cpus+=("$(ratio "$p_cpu" "$n_cpu")")
  if [ -n "$baseline" ]; then
    row "$r" "baseline regtoken proxy" "$base_port" "$base_pid"; gains+=("$(ratio "$p_rate" "$rate")") cpugains+=("$(ratio "$p_cpu" "$cpu")")
  fi
  if ((floor)); then
    row "$r" "SwiftNIO byte copy (the floor)" "$floor_port" "$floor_pid"; floors+=("$(ratio "$rate" "$n_rate")")
    row "$r" "SwiftNIO HTTP/1 codecs (HTTP floor)" "$hfloor_port" "$hfloor_pid"; hfloors+=("$(ratio "$rate" "$n_rate")")
    row "$r" "HTTP/1.1 on the bytes (cost model)" "$bfloor_port" "$bfloor_pid"; bfloors+=("$(ratio "$rate" "$n_rate")")
  fi
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "regtoken/nginx per round: ${ratios[*]}; median $(median "${ratios[@]}")"
echo "CPU time a request, regtoken/nginx, per round: ${cpus[*]}; median $(median "${cpus[@]}")"
[ -n "$baseline" ] && echo "this build/baseline per round: ${gains[*]}; median $(median "${gains[@]}")"
[ -n "$baseline" ] && echo "CPU time a request, this build/baseline, per round: ${cpugains[*]}; median $(median "${cpugains[@]}")"
((floor)) && echo "floor/nginx per round: ${floors[*]}; median $(median "${floors[@]}")"
((floor)) && echo "HTTP floor/nginx per round: ${hfloors[*]}; median $(median "${hfloors[@]}")"
((floor)) && echo "HTTP on the bytes/nginx per round: ${bfloors[*]}; median $(median "${bfloors[@]}")"
grep -c '"access"\|access' "$work/proxy.log" >/dev/null || { echo "bench-proxy.sh: the proxy wrote no access log" >&2; exit 1; }
if [ -n "$profile" ]; then
  python3 "$root/scripts/profile-attribute.py" "$profile" "$proxy_recorded"
  if ((floor)); then
    echo "HTTP/1.1 on the bytes (cost model), recorded the same way:"
    python3 "$root/scripts/profile-attribute.py" "$profile.bytes" "$bytes_recorded"
  fi
fi
