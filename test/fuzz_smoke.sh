#!/usr/bin/env bash
# A short libFuzzer run (3 s per harness, AddressSanitizer and UBSan) of the weights parser and the core's entry
# points; bench/fuzz.sh SECONDS runs them longer.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
out=$(bash "$ROOT/bench/fuzz.sh" 3 2>&1)
rc=$?
echo "$out" | grep -E '^fuzz_' | sed 's/^/# /'
for h in fuzz_format fuzz_core; do
    grep -q "^$h: .* no crash" <<<"$out"; ok $? "$h: no crash, leak or undefined behaviour in its smoke run"
done
[ "$rc" -eq 0 ]; ok $? "bench/fuzz.sh exits 0"
tap_done
