#!/usr/bin/env bash
# The Youshu-format loader, on a tiny fixture that (unlike our copy of Youshu) has a test split.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
DB=recsys_youshu_test
FIX=$ROOT/test/fixtures/youshu_tiny
q() { psql -X -At -d "$DB" -c "$1"; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" 2>/dev/null
out=$("$ROOT/bench/load_youshu.sh" "$FIX" "$DB" 2>&1); ok $? "loader runs on a directory with a test split"
echo "$out" | sed 's/^/# /'
for t in bundle_item user_item user_bundle_train user_bundle_tune user_bundle_test; do
    is "$(q "SELECT count(*) FROM youshu.$t")" "$(wc -l < "$FIX/$t.txt")" "youshu.$t has every line of $t.txt"
done
is "$(q "SELECT count(*) FROM youshu.items")" "12" "items 0..n_items-1 from Youshu_data_size.txt"
is "$(q "SELECT string_agg(kind || '=' || relation::text, ' ' ORDER BY kind) FROM recsys.sources")" \
   "bundle_events=youshu.user_bundle_train bundles=youshu.bundle_item events=youshu.user_item items=youshu.items" \
   "registered through the entry points, training pairs as bundle events"
is "$(q "SELECT count(*) FROM recsys.user_bundles")" "10" "prepare kept every training pair"
is "$(q "SELECT count(*) FROM recommend_bundles(0, 3)")" "3" "recommend_bundles answers for a Youshu user"
is "$(q "SELECT count(*) FROM recommend_bundles(0, 3) r JOIN youshu.user_bundle_train t ON t.user_id = 0 AND t.bundle_id = r.bundle_id")" \
   "0" "training pairs are masked"
out=$("$ROOT/bench/load_youshu.sh" "$FIX" "$DB" 2>&1); ok $? "loading again replaces the schema"
rm -rf /tmp/recsys_ys_missing && mkdir -p /tmp/recsys_ys_missing && cp "$FIX/bundle_item.txt" /tmp/recsys_ys_missing/
"$ROOT/bench/load_youshu.sh" /tmp/recsys_ys_missing "$DB" >/dev/null 2>&1; ok $((1 - ($? == 2))) "a directory missing files is refused with exit 2"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB"
tap_done
