#!/usr/bin/env bash
# pg_dump / pg_restore keeps recsys state: sources, id maps, prepared data, models and
# their weights; the restored database serves the same answers.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
SRC=recsys_dump_src
DST=recsys_dump_dst
DUMP=$(mktemp /tmp/recsys_dump.XXXXXX)
chmod 644 "$DUMP"
q() { psql -X -At -d "$1" -c "$2"; }
answers="SELECT string_agg(format('%s:%s:%s:%s', rank, bundle_id, round(score::numeric, 6), reason), ' | ' ORDER BY rank) FROM recommend_bundles(42, 10)"

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $SRC" -c "DROP DATABASE IF EXISTS $DST" -c "CREATE DATABASE $SRC" -c "CREATE DATABASE $DST"
psql -X -q -v ON_ERROR_STOP=1 -d "$SRC" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION recsys;
SELECT recsys.demo_shop(customers => 400);
SELECT count(*) FROM recsys.prepare();
CALL recsys.train('default', '{"max_epochs": 2, "gru_epochs": 1}');
SQL
ok $? "source database with demo shop, prepared data and a trained, active bundle model"
before=$(q "$SRC" "$answers")
weights_before=$(q "$SRC" "SELECT md5(weights) FROM recsys.model_versions WHERE status = 'active'")

pg_dump -Fc -d "$SRC" -f "$DUMP" 2>/tmp/recsys_dump.err; ok $? "pg_dump (model_versions.parent_version is a self-reference, hence its warning)"
sed "s/^/#   /" /tmp/recsys_dump.err | head -3
pg_restore -d "$DST" "$DUMP" 2>/tmp/recsys_restore.err; ok $? "pg_restore without errors"
sed 's/^/#   /' /tmp/recsys_restore.err | head -5

for t in sources id_map events_clean user_items bundle_items user_bundles item_attrs bundle_stats prepare_log models model_versions; do
    is "$(q "$DST" "SELECT count(*) FROM recsys.$t")" "$(q "$SRC" "SELECT count(*) FROM recsys.$t")" "recsys.$t restored with every row"
done
is "$(q "$DST" "SELECT md5(weights) FROM recsys.model_versions WHERE status = 'active'")" "$weights_before" \
   "active model weights restored byte for byte"
is "$(q "$DST" "SELECT recsys.model_check(weights) FROM recsys.model_versions WHERE status = 'active'")" "t" \
   "restored weights pass the CRC check"
[ -n "$before" ]; ok $? "the source serves recommendations"
is "$(q "$DST" "$answers")" "$before" "the restored database serves identical answers"
is "$(q "$DST" "SELECT relation::text FROM recsys.sources WHERE kind = 'events'")" "shop.order_lines" \
   "registrations point at the restored shop relations"
# sequences continue after the restored values: new versions and runs do not collide
q "$DST" "SELECT recsys.add_version('default', (SELECT weights FROM recsys.model_versions WHERE status = 'active'))" >/dev/null
ok $? "a new version after restore gets a fresh id"
q "$DST" "SELECT count(*) FROM recsys.prepare()" >/dev/null; ok $? "prepare runs again after restore"

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $SRC" -c "DROP DATABASE IF EXISTS $DST"
rm -f "$DUMP" /tmp/recsys_restore.err /tmp/recsys_dump.err
tap_done
