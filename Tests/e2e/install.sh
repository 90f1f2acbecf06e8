#!/usr/bin/env bash
# Installs the real registry pieces for the end-to-end tests from Debian's packages when missing:
# docker-registry (CNCF distribution v2) and skopeo (a real registry client), plus curl and
# python3. Idempotent and quiet. Blocks packaged services from starting during the install and
# makes sure none stays up (the tests run their own registry on 127.0.0.1:PORT).
# (Adapted from the team's e2e harness.)
set -euo pipefail
PKGS="docker-registry skopeo curl python3 openssl"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "install.sh: installing:$missing" >&2
  ours=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d; ours=1
  fi
  trap 'if [ -n "$ours" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi' EXIT
  aptlog=$(mktemp)
  # shellcheck disable=SC2086
  install() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing >"$aptlog" 2>&1; }
  if ! install; then
    $SUDO apt-get update -qq >>"$aptlog" 2>&1 || true
    install || { cat "$aptlog" >&2; echo "install.sh: apt-get install failed" >&2; exit 1; }
  fi
  rm -f "$aptlog"
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  $SUDO systemctl stop docker-registry >/dev/null 2>&1 || true
  $SUDO systemctl disable docker-registry >/dev/null 2>&1 || true
elif [ -x /etc/init.d/docker-registry ]; then
  $SUDO /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
fi
for b in docker-registry skopeo curl; do
  command -v "$b" >/dev/null || { echo "install.sh: $b missing after install" >&2; exit 1; }
done
