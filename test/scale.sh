#!/usr/bin/env bash
# The smallest size of the scale benchmark (bench/scale.sh small: 10,000 customers, 5,000 products, 1,000 bundles,
# about 200,000 order lines): every step runs, and serving answers. Times are printed, never asserted.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
out=$(RECSYS_SCALE_SECONDS=2 bash "$ROOT/bench/scale.sh" small recsys_scale_test 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
for s in "generate the shop" "recsys.prepare()" "recsys.refresh_features()" "CALL recsys.train() (bundle model)" \
         "CALL recsys.train('items')"; do
    grep -F "$s" <<<"$out" | grep -q ' peak '; ok $? "scale small: $s runs (time and peak memory printed)"
done
for f in recommend_bundles recommend_items; do
    grep -F "serving $f" <<<"$out" | grep -q ' p99 '; ok $? "scale small: $f serves (p50 and p99 printed)"
done
[ "$rc" -eq 0 ]; ok $? "bench/scale.sh small exits 0"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS recsys_scale_test" >/dev/null 2>&1
tap_done
