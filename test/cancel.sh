#!/usr/bin/env bash
# Cancelling feature extraction and the model fit: statement_timeout and pg_cancel_backend stop every long C entry
# point within one second, at several points of its run (the fit's Gram, inverse and top-k phases are all reached),
# and the session goes on working. Data: a seeded synthetic shop big enough that each call runs for seconds.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
DB=recsys_cancel
q() { psql -X -At -d "$DB" -c "$1" 2>&1; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" 2>/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null 2>&1 <<'SQL'
CREATE EXTENSION recsys;
CREATE SCHEMA syn;
SELECT setseed(0.42);
-- 3,000 bundles of up to 6 items out of 12,000; 6,000 customers with up to 30 items and 5 bundles each
CREATE TABLE syn.items AS SELECT i AS item_id FROM generate_series(0, 11999) i;
CREATE TABLE syn.bundle_item AS
  SELECT DISTINCT b AS bundle_id, ((b * 4 + j * 997 + (random() * 50)::int) % 12000) AS item_id
    FROM generate_series(0, 2999) b, generate_series(1, 6) j;
CREATE TABLE syn.user_item AS
  SELECT DISTINCT u AS user_id, ((u % 300) * 40 + (random() * 400)::int) % 12000 AS item_id
    FROM generate_series(0, 5999) u, generate_series(1, 30) j;
CREATE TABLE syn.user_bundle AS
  SELECT DISTINCT u AS user_id, ((u % 300) * 10 + (random() * 60)::int) % 3000 AS bundle_id
    FROM generate_series(0, 5999) u, generate_series(1, 5) j;
SELECT recsys.register_events('syn.user_item', 'user_id', 'item_id');
SELECT recsys.register_items('syn.items', 'item_id');
SELECT recsys.register_bundles('syn.bundle_item', 'bundle_id', 'item_id');
SELECT recsys.register_bundle_events('syn.user_bundle', 'user_id', 'bundle_id');
SELECT count(*) FROM recsys.prepare();
SQL
ok $? "a synthetic shop: 3,000 bundles, 12,000 items, 6,000 customers, prepared"

# timed CALL TIMEOUT_MS: runs CALL under statement_timeout; prints "SQLSTATE elapsed_ms"
timed() {
    local t0 out
    t0=$(date +%s%N)
    out=$(psql -X -At -d "$DB" -v ON_ERROR_STOP=1 -c "SET statement_timeout = $2" \
          -c "\\set VERBOSITY sqlstate" -c "$1" 2>&1 >/dev/null)
    echo "${out:-00000} $(( ($(date +%s%N) - t0) / 1000000 ))"
}
check() { # check CALL TIMEOUT_MS LABEL
    local r st ms
    r=$(timed "$1" "$2"); st=${r% *}; ms=${r##* }
    [ "$st" = "ERROR:  57014" ] && [ $((ms - $2)) -lt 1000 ]
    ok $? "$3: statement_timeout ${2} ms stopped it in ${ms} ms ($st)"
}
runs_ms() { # runs_ms CALL: how long an untimed run of CALL takes here, in ms (a call that may run again)
    local t0=$(date +%s%N)
    q "$1" >/dev/null
    echo $(( ($(date +%s%N) - t0) / 1000000 ))
}
check "SELECT count(*) FROM recsys.prepare()" 300 "prepare (reading and cleaning the sources)"
# late in a prepare, wherever that is on this machine: six tenths into an untimed run's length
PREP_MS=$(runs_ms "SELECT count(*) FROM recsys.prepare()")
check "SELECT count(*) FROM recsys.prepare()" $((PREP_MS * 6 / 10)) "prepare, later (of its ${PREP_MS} ms run)"
check "SELECT count(*) FROM recsys.item_pairs(2, 100)" 100 "item_pairs"
# counting, past the 0.2 s of reading: at six tenths of an untimed run (a fixed point could outlast a faster run)
PAIRS="SELECT count(*) FROM recsys.item_pairs(1, 100)"
PAIRS_MS=$(runs_ms "$PAIRS")
check "$PAIRS" $((PAIRS_MS * 6 / 10)) "item_pairs, counting (at six tenths of its ${PAIRS_MS} ms run)"
check "SELECT count(*) FROM recsys.user_profiles(30)" 60 "user_profiles"
check "SELECT count(*) FROM recsys.user_sequences(50)" 60 "user_sequences"
# mining in C takes 0.3 s here with the default options: sets of up to 5 items that 2 customers share take seconds
MINE="SELECT count(*) FROM recsys.mine_bundles('{\"max_size\": 5, \"min_customers\": 2}')"
check "$MINE" 200 "mine_bundles"
check "$MINE" 3000 "mine_bundles, deeper itemsets"
check "SELECT count(*) FROM recsys.refresh_features()" 1500 "refresh_features"
# four points of the fit, as fractions of an untimed run here: a fixed 1300 ms outlasted a 1.3 s fit
FIT="SELECT length(recsys.bundle_fit('{}'))"
FIT_MS=$(runs_ms "$FIT")
for f in 1 3 5 7; do
    check "$FIT" $((FIT_MS * f / 10)) "bundle_fit, at ${f}0% of its ${FIT_MS} ms run"
done

# pg_cancel_backend from another session, in the middle of mining
psql -X -q -d "$DB" -c "$MINE" >/dev/null 2>&1 &
sleep 1.5
PID=$(q "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%mine_bundles%' AND pid <> pg_backend_pid()")
MS=$(cancel_ms "$DB" "$PID")
wait
[ -n "$PID" ] && [ "$MS" -lt 1000 ]; ok $? "pg_cancel_backend stopped mine_bundles in ${MS} ms"

# the same session survives a cancel and goes on: cancelled, then served and fitted again
out=$(psql -X -At -d "$DB" -c "SET statement_timeout = 100" -c "$MINE" \
      -c "RESET statement_timeout" -c "SELECT count(*) FROM recsys.user_sequences(5)" 2>&1)
is "$(tail -1 <<<"$out")" "6000" "the session that was cancelled answers its next statement"
is "$(q "SELECT count(*) FROM recsys.mined_bundles")" "0" "a cancelled mine_bundles left no partial result"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB"
tap_done
