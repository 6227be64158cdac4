#!/usr/bin/env bash
# Concurrent serving while a training finishes and activates a new version, and feedback is logged:
# 8 pgbench clients call recsys.recommend_bundles_logged (which records the serving version per response) and
# log feedback, for SECONDS and at least one more round past the activation (pgbench runs in back-to-back rounds
# of SECONDS / 4, at least 2 s, so a training slowed by the load still finishes under it); a training that activates version 2 runs meanwhile. Prints the transactions, the
# errors, responses mixing versions, and how long after the activation's commit the last version-1 answer came.
#
#   bash bench/concurrency.sh DATABASE [SECONDS]       (default 60; the test command runs 8 s)
# The database needs the demo shop prepared and a first version trained (the test makes one).
set -uo pipefail
DB=$1
SECS=${2:-60}
WORK=$(mktemp -d /tmp/recsys_conc.XXXXXX)
chmod 777 "$WORK"
trap 'rm -rf "$WORK"' EXIT
N=$(psql -X -At -d "$DB" -c "SELECT count(*) FROM recsys.id_map WHERE space = 'user'")
cat >"$WORK/serve.sql" <<SQL
\set uid random(1, $N)
SELECT count(*) FROM recsys.recommend_bundles_logged(:uid::text, 5);
SQL
cat >"$WORK/feedback.sql" <<SQL
\set uid random(1, $N)
SELECT recsys.log_feedback(:uid::text, '611', 'click');
SQL
psql -X -q -d "$DB" -c "TRUNCATE recsys.impressions, recsys.feedback"
(
    cd "$WORK" || exit 1
    end=$((SECONDS + SECS)); i=0
    ROUND=$((SECS / 4 > 2 ? SECS / 4 : 2))
    while :; do
        done_before=0; [ -f "$WORK/trained" ] && done_before=1
        pgbench -n -c 8 -j 2 -T "$ROUND" -f serve.sql@9 -f feedback.sql@1 "$DB" >"$WORK/pgbench.$i.out" 2>&1
        echo $? >>"$WORK/rc"
        i=$((i + 1))
        [ "$done_before" = 1 ] && [ "$SECONDS" -ge "$end" ] && break
    done
) &
BENCH=$!
sleep $((SECS / 4 > 1 ? SECS / 4 : 1))
# the training commits its epochs, then activates; the activation's commit time is taken right after CALL returns
psql -X -q -d "$DB" -c "CALL recsys.train('default', '{\"max_epochs\": 2, \"gru_epochs\": 0, \"force\": true}')" >/dev/null 2>&1
COMMITTED=$(psql -X -At -d "$DB" -c "SELECT clock_timestamp()")
touch "$WORK/trained"
wait $BENCH
NEW=$(psql -X -At -d "$DB" -c "SELECT recsys.active_version('default')")
psql -X -At -d "$DB" -v new="$NEW" -v committed="$COMMITTED" >"$WORK/result" <<'SQL'
SELECT 'responses ' || count(*) FROM (SELECT DISTINCT user_id, shown_at FROM recsys.impressions) r;
SELECT 'mixed ' || count(*) FROM (SELECT user_id, shown_at FROM recsys.impressions GROUP BY 1, 2
                                   HAVING count(DISTINCT coalesce(version_id, 0)) > 1) m;
SELECT 'versions ' || string_agg(DISTINCT version_id::text, ',') FROM recsys.impressions;
SELECT 'new_served ' || count(*) FROM recsys.impressions WHERE version_id = :new;
-- the last answer from an older version, in ms after the activation committed (negative: none after it)
SELECT 'switch_ms ' || coalesce(round(extract(epoch FROM max(shown_at) - :'committed'::timestamptz) * 1000), -1)
  FROM recsys.impressions WHERE version_id <> :new;
SELECT 'feedback ' || count(*) FROM recsys.feedback;
SQL
TX=$(cat "$WORK"/pgbench.*.out | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}')
ABORTED=$(cat "$WORK"/pgbench.*.out | grep -c "aborted")
echo "transactions $TX"
echo "rounds $(ls "$WORK"/pgbench.*.out | wc -l)"
echo "errors $((ABORTED + $(awk '{s += $1} END {print s + 0}' "$WORK/rc")))"
cat "$WORK/result"
