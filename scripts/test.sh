#!/usr/bin/env bash
# Runs every test of regtoken, first installing what the tests need when it is missing:
# OpenSSL's libcrypto headers (libssl-dev) and the openssl tool, SQLite's (libsqlite3-dev), and PyJWT (the third-party JWT
# library the interoperability tests check against). Safe to run again: installs only what is absent.
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
pkg-config --exists libcrypto 2>/dev/null || missing+=(libssl-dev pkg-config)
pkg-config --exists sqlite3 2>/dev/null || missing+=(libsqlite3-dev)
command -v openssl >/dev/null || missing+=(openssl)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}" >&2
  apt_install "${missing[@]}"
fi

if ! python3 -c 'import jwt, cryptography' 2>/dev/null; then
  echo "test.sh: installing PyJWT" >&2
  python3 -m pip install -q pyjwt cryptography 2>/dev/null \
    || python3 -m pip install -q --break-system-packages pyjwt cryptography 2>/dev/null \
    || apt_install python3-jwt python3-cryptography
  python3 -c 'import jwt, cryptography'
fi

# The real registry and client for the end-to-end tests: Debian's docker-registry and skopeo.
bash Tests/e2e/install.sh

swift build --build-tests
swift test --skip-build

# A short benchmark run (its own package, release build): a smoke test that every benchmark
# builds and runs, not a measurement (see BENCHMARKS.md for those).
(cd Benchmarks && REGTOKEN_BENCH_QUICK=1 swift package --disable-sandbox benchmark --no-progress >/tmp/regtoken-bench-smoke.log 2>&1) \
  || { tail -40 /tmp/regtoken-bench-smoke.log >&2; echo "benchmark smoke run failed" >&2; exit 1; }
echo "benchmark smoke run: $(grep -c '^╒' /tmp/regtoken-bench-smoke.log) benchmarks ran"
