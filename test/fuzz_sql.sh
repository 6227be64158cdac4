#!/usr/bin/env bash
# A short run (6 s per role) of the SQL-level fuzzer: model_pack, model_init, mlp_forward, serving options,
# training options, rank_metrics; bash bench/fuzz_sql.sh DB SECONDS runs it longer.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
out=$(bash "$ROOT/bench/fuzz_sql.sh" recsys_fuzz_sql 6 2>&1)
rc=$?
echo "$out" | grep -E '^fuzz_sql' | sed 's/^/# /'
for role in "$PGUSER" recsys_fuzz_reader; do
    grep -Eq "^fuzz_sql as $role: fuzz_sql: [0-9]+ calls, .* unexpected: 0$" <<<"$out"
    ok $? "fuzz_sql as $role: every call answered or refused with an expected error, the backend alive"
done
[ "$rc" -eq 0 ]; ok $? "bench/fuzz_sql.sh exits 0"
tap_done
