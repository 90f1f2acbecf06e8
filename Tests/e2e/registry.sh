#!/usr/bin/env bash
# (Adapted from the team's e2e harness.)
# registry.sh — run our own CNCF distribution registry (Debian docker-registry 2.8)
# on 127.0.0.1:PORT with filesystem storage under DIR. No auth, delete enabled.
# Usage: registry.sh start PORT DIR   # waits for GET /v2/ == 200, else fails loudly
#        registry.sh stop  PORT DIR   # SIGTERM by pid file, then SIGKILL after 5 s
#        registry.sh status PORT DIR
# Files in DIR: config.yml, registry.pid, registry.log, storage/ (the blobs/repos).
# Env: E2E_START_TIMEOUT (s, default 20), E2E_REGISTRY_LOGLEVEL (default error;
#      use info/debug to see requests in registry.log), E2E_REGISTRY_RELATIVE_URLS=true
#      (Location headers become relative "/v2/...": safe behind a proxy that rewrites Host).
set -euo pipefail

usage() { echo "usage: $0 start|stop|status PORT DIR" >&2; exit 2; }
[ $# -eq 3 ] || usage
cmd=$1 port=$2 dir=$3
[[ "$port" =~ ^[0-9]+$ ]] || usage
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
pidf="$dir/registry.pid" conf="$dir/config.yml" log="$dir/registry.log"
url="http://127.0.0.1:$port/v2/"
# E2E_REGISTRY_TLS_CERT and E2E_REGISTRY_TLS_KEY (PEM files): serve HTTPS instead.
[ -n "${E2E_REGISTRY_TLS_CERT:-}" ] && url="https://127.0.0.1:$port/v2/"

# True if the pid file names a live docker-registry process.
alive() {
  [ -f "$pidf" ] || return 1
  local pid; pid=$(cat "$pidf")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q docker-registry
}
code() { curl -sk -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null || true; }
# Token authentication (distribution's auth: token): E2E_REGISTRY_TOKEN_REALM (the token endpoint's
# URL), _SERVICE, _ISSUER and _CERTS (PEM bundle for rootcertbundle); ready means 401 on /v2/.
ready=200; [ -n "${E2E_REGISTRY_TOKEN_REALM:-}" ] && ready=401

case "$cmd" in
start)
  if alive; then
    [ "$(code)" = "$ready" ] && { echo "registry already running (pid $(cat "$pidf")) on $url"; exit 0; }
    echo "registry.sh: pid $(cat "$pidf") alive but $url not answering $ready" >&2; exit 1
  fi
  if ss -Hltn "sport = :$port" | grep -q .; then
    echo "registry.sh: port $port already in use:" >&2; ss -ltnp "sport = :$port" >&2; exit 1
  fi
  mkdir -p "$dir/storage"
  # Config keys are distribution v2.8's (docs: configuration.md). 'secret' is set so
  # the registry does not warn; delete.enabled allows DELETE of manifests/blobs.
  cat >"$conf" <<EOF
version: 0.1
log:
  level: ${E2E_REGISTRY_LOGLEVEL:-error}
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: "$dir/storage"
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  relativeurls: ${E2E_REGISTRY_RELATIVE_URLS:-false}
  secret: e2e-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
$( [ -n "${E2E_REGISTRY_TLS_CERT:-}" ] && printf '  tls:\n    certificate: "%s"\n    key: "%s"\n' "$E2E_REGISTRY_TLS_CERT" "$E2E_REGISTRY_TLS_KEY" )
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
EOF
  if [ -n "${E2E_REGISTRY_TOKEN_REALM:-}" ]; then
    cat >>"$conf" <<EOF
auth:
  token:
    realm: "$E2E_REGISTRY_TOKEN_REALM"
    service: "${E2E_REGISTRY_TOKEN_SERVICE:?set E2E_REGISTRY_TOKEN_SERVICE}"
    issuer: "${E2E_REGISTRY_TOKEN_ISSUER:?set E2E_REGISTRY_TOKEN_ISSUER}"
    rootcertbundle: "${E2E_REGISTRY_TOKEN_CERTS:?set E2E_REGISTRY_TOKEN_CERTS}"
EOF
  fi
  # Detach fully: stdin/stdout/stderr redirected so callers using $(...) or
  # pipes (Swift Process) don't hang waiting for EOF.
  # The daemon must not inherit the caller's other descriptors either: a parent that waits for
  # them to close (Foundation's Process does) would otherwise wait for the registry to exit.
  (
    for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done
    exec nohup docker-registry serve "$conf" </dev/null >>"$log" 2>&1
  ) &
  echo $! >"$pidf"
  deadline=$(( $(date +%s) + ${E2E_START_TIMEOUT:-20} ))
  # While starting, the child may still be the subshell closing descriptors (its command line is
  # not docker-registry's yet): only its death counts as a failed start, not its name.
  until [ "$(code)" = "$ready" ]; do
    if ! kill -0 "$(cat "$pidf")" 2>/dev/null; then
      echo "registry.sh: registry exited during start; log tail:" >&2; tail -n 20 "$log" >&2; rm -f "$pidf"; exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "registry.sh: $url not $ready after ${E2E_START_TIMEOUT:-20}s; log tail:" >&2; tail -n 20 "$log" >&2
      kill "$(cat "$pidf")" 2>/dev/null || true; rm -f "$pidf"; exit 1
    fi
    sleep 0.1
  done
  echo "registry started (pid $(cat "$pidf")) on $url storage=$dir/storage"
  ;;
stop)
  if ! alive; then echo "registry not running (no live pid in $pidf)"; rm -f "$pidf"; exit 0; fi
  pid=$(cat "$pidf"); kill -TERM "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then echo "registry.sh: pid $pid ignored TERM, killing" >&2; kill -KILL "$pid"; fi
  rm -f "$pidf"; echo "registry stopped (pid $pid)"
  ;;
status)
  if alive; then echo "running pid $(cat "$pidf") http=$(code)"; else echo "not running"; exit 1; fi
  ;;
*) usage ;;
esac
