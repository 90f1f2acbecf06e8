#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ (Swift and C compiled with -sanitize=fuzzer,address) and
# runs each for a bounded time, starting from the seed corpus kept in Fuzz/Corpus/<target> and
# first replaying every input in Fuzz/Regressions/<target> (inputs that once found a bug).
#
#   scripts/fuzz.sh                      # every target, 60 s each (a local run)
#   scripts/fuzz.sh --time 600 FuzzVerify
#   REGTOKEN_FUZZ_SECONDS=15 scripts/fuzz.sh   # what CI runs (scripts/test.sh)
#
# A crash, a memory error, a timeout or a broken invariant stops the script with a non-zero exit;
# the input is saved in Fuzz/Findings/<target>/ (not committed). Fix the bug, then move the input
# into Fuzz/Regressions/<target>/ so that every later run replays it.
#
# New corpus entries go to a temporary directory, never into the repository.
# Leak detection is off: Swift stores enum tags in pointers' spare bits, which LeakSanitizer
# cannot follow, so it reports live global objects as leaks. Memory errors are what is checked.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${REGTOKEN_FUZZ_SECONDS:-60}
targets=()
while (($#)); do
  case "$1" in
    --time) seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    Fuzz*) targets+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown argument '$1' (expected --time SECONDS or a target name such as FuzzVerify)" >&2; exit 64 ;;
  esac
done
((${#targets[@]})) || targets=(FuzzVerify FuzzAuthorization FuzzDecision FuzzRevocations FuzzKeys FuzzForwarding FuzzHTTP1 FuzzHTTP1Response)

cd "$root/Fuzz"
# SwiftPM's --sanitize=fuzzer makes the executables use libFuzzer's main; the swiftc flag after it
# (the last -sanitize wins) adds the address sanitizer to the Swift code, -Xcc to the C code.
build_log=$(mktemp)
# -enable-testing lets FuzzForwarding, FuzzHTTP1 and FuzzHTTP1Response reach internal code with @testable import.
if ! swift build -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing -Xcc -fsanitize=address >"$build_log" 2>&1; then
  grep -v "ld.gold: warning: Cannot export local symbol" "$build_log" | tail -40 >&2
  echo "fuzz.sh: the fuzz targets did not build" >&2
  exit 1
fi
rm -f "$build_log"

export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:symbolize=1
# The Swift runtime's own crash backtracer fights the sanitizer's; the sanitizer's report is the one to read.
export SWIFT_BACKTRACE=enable=no
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for t in "${targets[@]}"; do
  test -d "Corpus/$t" || { echo "fuzz.sh: no target $t (see Fuzz/Sources)" >&2; exit 64; }
  mkdir -p "$work/$t" "Findings/$t" "Regressions/$t"
  log="$work/$t.log"
  if ! .build/release/"$t" -runs=0 -artifact_prefix="Findings/$t/" "Corpus/$t" "Regressions/$t" >"$log" 2>&1; then
    tail -40 "$log" >&2; echo "fuzz.sh: $t fails on its seed corpus or a regression input" >&2; status=1; continue
  fi
  if .build/release/"$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
       -artifact_prefix="Findings/$t/" -print_final_stats=1 \
       "$work/$t" "Corpus/$t" "Regressions/$t" >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "fuzz: $t: ${seconds}s, $runs inputs, ${cov:-cov: ?} edges, no finding"
  else
    tail -60 "$log" >&2
    echo "fuzz.sh: $t found a problem; the input is in Fuzz/Findings/$t/" >&2
    status=1
  fi
done
exit $status
