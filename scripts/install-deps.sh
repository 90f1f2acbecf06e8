#!/usr/bin/env bash
# Installs what building regtoken needs when it is missing: OpenSSL's libcrypto headers
# (libssl-dev), SQLite's (libsqlite3-dev) and pkg-config. With --test, also what the tests need:
# the openssl tool, PyJWT, prometheus-client, schemathesis, and Debian's docker-registry and
# skopeo. Installs only what is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq >/dev/null; apt_updated=1; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
command -v pkg-config >/dev/null || missing+=(pkg-config)
pkg-config --exists libcrypto 2>/dev/null || missing+=(libssl-dev)
pkg-config --exists sqlite3 2>/dev/null || missing+=(libsqlite3-dev)
if [ "${1:-}" = "--test" ]; then
  command -v openssl >/dev/null || missing+=(openssl)
  command -v python3 >/dev/null || missing+=(python3 python3-pip)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps.sh: installing ${missing[*]}" >&2
  apt_install "${missing[@]}"
fi

if [ "${1:-}" = "--test" ]; then
  if ! python3 -c 'import jwt, cryptography' 2>/dev/null; then
    echo "install-deps.sh: installing PyJWT" >&2
    python3 -m pip install -q pyjwt cryptography 2>/dev/null \
      || python3 -m pip install -q --break-system-packages pyjwt cryptography 2>/dev/null \
      || apt_install python3-jwt python3-cryptography
    python3 -c 'import jwt, cryptography'
  fi
  # Prometheus's official Python client: its parser reads the proxy's metrics in the tests.
  if ! python3 -c 'import prometheus_client' 2>/dev/null; then
    echo "install-deps.sh: installing prometheus-client" >&2
    python3 -m pip install -q prometheus-client 2>/dev/null \
      || python3 -m pip install -q --break-system-packages prometheus-client 2>/dev/null \
      || apt_install python3-prometheus-client
    python3 -c 'import prometheus_client'
  fi
  # schemathesis, run against regtoken serve by the end-to-end tests.
  if ! command -v schemathesis >/dev/null 2>&1; then
    echo "install-deps.sh: installing schemathesis" >&2
    python3 -m pip install -q schemathesis 2>/dev/null || python3 -m pip install -q --break-system-packages schemathesis
    command -v schemathesis >/dev/null
  fi
  # The real registry and client for the end-to-end tests.
  bash Tests/e2e/install.sh
fi
