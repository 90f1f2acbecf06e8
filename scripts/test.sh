#!/usr/bin/env bash
# Runs every test of regtoken, first installing what the tests need when it is missing
# (scripts/install-deps.sh --test: libssl-dev, libsqlite3-dev, the openssl tool, PyJWT, and
# Debian's docker-registry and skopeo). Safe to run again: installs only what is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh --test

swift build --build-tests
swift test --skip-build

# The public API's documentation (DocC catalogs of RegToken and RegTokenAccess): a broken link, an
# undocumented parameter or any other DocC warning fails the run.
swift package --disable-sandbox generate-documentation --target RegToken --target RegTokenAccess \
  --warnings-as-errors --output-path .build/docs >/tmp/regtoken-docc.log 2>&1 \
  || { grep -E -A6 "^(error|warning):" /tmp/regtoken-docc.log | head -80 >&2; echo "documentation build failed" >&2; exit 1; }
echo "documentation: $(ls -d .build/docs/*.doccarchive | wc -l) archives built with warnings as errors"

# A short benchmark run (its own package, release build): a smoke test that every benchmark
# builds and runs, not a measurement (see BENCHMARKS.md for those).
(cd Benchmarks && REGTOKEN_BENCH_QUICK=1 swift package --disable-sandbox benchmark --no-progress >/tmp/regtoken-bench-smoke.log 2>&1) \
  || { tail -40 /tmp/regtoken-bench-smoke.log >&2; echo "benchmark smoke run failed" >&2; exit 1; }
echo "benchmark smoke run: $(grep -c '^╒' /tmp/regtoken-bench-smoke.log) benchmarks ran"

# Every fuzz target for a short, bounded time, after replaying its seed corpus and regression
# inputs (Fuzz/; scripts/fuzz.sh --time 600 for a longer local run).
REGTOKEN_FUZZ_SECONDS=${REGTOKEN_FUZZ_SECONDS:-15} bash scripts/fuzz.sh
