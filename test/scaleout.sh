#!/usr/bin/env bash
# Scale-out on one machine: a coordinator and 2 shards, each a cluster of its own on loopback (scripts/shards.sh),
# the demo shop split by user. Routed calls land on the owning shard and answer exactly what that shard answers
# directly (single, text, batch); one data-parallel training (recsys_proxy.train) merges the shards' fits and
# scorer states, commits the version on the coordinator and publishes it to both shards (md5-checked, idempotent);
# the merged fit equals a single node's fit of the whole shop; a shard failing mid-round or at publication leaves
# every shard on the version it had. Every cluster started is stopped, also on failure. Needs root (runuser).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
source "$ROOT/scripts/shards.sh"
if [ "$(id -u)" -ne 0 ]; then
    echo "# not root: this suite starts its own clusters as user postgres; skipped"
    ok 0 "skipped (not root)"; tap_done; exit 0
fi
N=2
BASE=54360
CUSTOMERS=800
trap 'shards_stop $N $BASE' EXIT
export PGHOST=/tmp PGUSER=postgres
c() { psql -X -At -p $BASE -d recsys_coord -c "$1" 2>&1; }
s() { psql -X -At -p $((BASE + 1 + $1)) -d "recsys_shard$1" -c "$2" 2>&1; }

shards_start $N $BASE >/dev/null 2>&1; ok $? "coordinator on port $BASE and $N shards started, recsys on each, PL/Proxy on the coordinator"
shards_demo $N $BASE $CUSTOMERS >/dev/null 2>&1; ok $? "the demo shop loaded on every shard, each keeping the customers it owns, prepared"
is "$(s 0 "SELECT count(*) FROM shop.customers") + $(s 1 "SELECT count(*) FROM shop.customers")" "$(s 0 "SELECT count(*) FROM shop.customers") + $(( CUSTOMERS - $(s 0 "SELECT count(*) FROM shop.customers") ))" \
   "every customer is on exactly one shard"
maps0=$(s 0 "SELECT md5(string_agg(space || idx || ext_id, ',' ORDER BY space, idx)) FROM recsys.id_map WHERE space IN ('item', 'bundle')")
maps1=$(s 1 "SELECT md5(string_agg(space || idx || ext_id, ',' ORDER BY space, idx)) FROM recsys.id_map WHERE space IN ('item', 'bundle')")
is "$maps1" "$maps0" "item and bundle indexes agree on every shard (the model is shared)"

USERS="1,2,3,5,8,13,21,42,77,100,150,222,301,404,512,600,655,700,799,-1"
NU=$(tr ',' '\n' <<<"$USERS" | wc -l)
# the answers of the users in %s (twice), bigint and text forms: "user|form|rank|..." lines
ROUTED_Q="SELECT u, 'bigint' AS form, r.rank, r.bundle_id::text, r.items::text, r.score, r.reason
            FROM unnest(ARRAY[%s]::bigint[]) u, recommend_bundles(u, 10) r
          UNION ALL SELECT u, 'text', r.rank, r.bundle_id, r.items::text, r.score, r.reason
            FROM unnest(ARRAY[%s]::bigint[]) u, recommend_bundles(u::text, 5) r
          ORDER BY 1, 2, 3"
# check_routing LABEL: every tested user is served by its owner shard, and routed answers = the owner's direct ones
check_routing() {
    local i owned direct="" routed batch direct_batch=""
    is "$(c "SELECT count(*) FROM unnest(ARRAY[$USERS]::bigint[]) u
              WHERE recsys_proxy.shard_of(u) = 'recsys_shard' || (hashtext(u::text) & $((N - 1))) || ':' || ($((BASE + 1)) + (hashtext(u::text) & $((N - 1))))")" \
       "$NU" "$1: each of $NU users is routed to the shard that owns it (hashtext & $((N - 1)))"
    routed=$(c "$(printf "$ROUTED_Q" "$USERS" "$USERS")")
    batch=$(c "SELECT user_id, rank, bundle_id, score, reason FROM recommend_bundles_batch(ARRAY[$USERS]::bigint[], 4) ORDER BY 1, 2")
    for i in $(seq 0 $((N - 1))); do
        owned=$(c "SELECT string_agg(u::text, ',') FROM unnest(ARRAY[$USERS]::bigint[]) u WHERE (hashtext(u::text) & $((N - 1))) = $i")
        [ -n "$owned" ] || continue
        direct="$direct$(s "$i" "$(printf "$ROUTED_Q" "$owned" "$owned")")
"
        direct_batch="$direct_batch$(s "$i" "SELECT u, r.rank, r.bundle_id, r.score, r.reason FROM unnest(ARRAY[$owned]::bigint[]) u, recommend_bundles(u, 4) r")
"
    done
    direct=$(sed '/^$/d' <<<"$direct" | sort -t'|' -k1,1n -s)
    routed=$(sort -t'|' -k1,1n -s <<<"$routed")
    [ -n "$routed" ] && [ "$direct" = "$routed" ]
    ok $? "$1: routed answers (bigint and text forms, $(wc -l <<<"$routed") rows) are exactly the owner shards' direct answers"
    [ "$direct" = "$routed" ] || diff <(echo "$direct") <(echo "$routed") | head -6 | sed 's/^/#   /'
    [ "$batch" = "$(sed '/^$/d' <<<"$direct_batch" | sort -t'|' -k1,1n -k2,2n)" ]
    ok $? "$1: the SPLIT batch call answers what every owner shard answers directly"
}
check_routing "before training (baseline ranker)"

# one data-parallel training round
out=$(psql -X -q -p $BASE -d recsys_coord -c "CALL recsys_proxy.train('default', '{\"max_epochs\": 3, \"patience\": 3, \"gru_epochs\": 1}')" 2>&1)
ok $? "CALL recsys_proxy.train: a data-parallel training over both shards"
echo "$out" | sed 's/^/# /'
is "$(c "SELECT version_id || ':' || status FROM recsys.model_versions")" "1:active" "the coordinator committed version 1 and it is active"
is "$(c "SELECT string_agg(epoch || ':' || (metrics ->> 'stage'), ' ' ORDER BY epoch) FROM recsys.training_runs
          WHERE version_id = 1 AND metrics ->> 'steps' = 'recsys_proxy.train'")" "0:fit 1:scorer 2:scorer 3:scorer 4:encoder" \
   "the fit, scorer epochs 1..3 (merged validation over both shards) and a GRU epoch are recorded"
is "$(c "SELECT recsys.model_info(weights) -> 'config' ? 'scorer' AND recsys.model_info(weights) -> 'config' ? 'encoder'
          FROM recsys.model_versions WHERE version_id = 1")" "t" "the version holds the merged scorer and the merged GRU encoder"
SUM=$(c "SELECT md5(weights) FROM recsys.model_versions WHERE version_id = 1")
is "$(c "SELECT string_agg(shard || '=' || version_id || '/' || checksum, ' ' ORDER BY shard) FROM recsys_proxy.active_versions('default')")" \
   "recsys_shard0:$((BASE + 1))=1/$SUM recsys_shard1:$((BASE + 2))=1/$SUM" "both shards serve version 1 with the coordinator's checksum"
is "$(s 0 "SELECT count(*) FROM recsys.shard_samples") $(s 1 "SELECT count(*) FROM recsys.shard_samples")" "0 0" "the job's samples are dropped from the shards"
SAMPLES=$(c "SELECT (recsys.model_info(recsys.bundle_part(weights, 'scorer')) #>> '{config,train,samples}') FROM recsys.model_versions WHERE version_id = 1")
[ "${SAMPLES:-0}" -gt 0 ]; ok $? "the merged scorer counts the samples seen on both shards ($SAMPLES)"
check_routing "after training"
SESSION_Q="SELECT rank, bundle_id, score, reason FROM recommend_bundles(-5, 5, '{\"session\": [1030, 1031]}')"
is "$(c "$SESSION_Q")" "$(s "$(c "SELECT hashtext('-5') & $((N - 1))")" "$SESSION_Q")" \
   "a visitor with a session (GRU tier) gets the owner shard's answer through the coordinator"
[[ "$(c "$SESSION_Q")" == *"from your session (GRU)"* ]]; ok $? "and it comes from the merged GRU"
is "$(c "SELECT string_agg(result, ' ' ORDER BY shard) FROM recsys_proxy.publish(1)")" "unchanged unchanged" "publishing version 1 again changes nothing"
is "$(s 0 "SELECT count(*) FROM recsys.model_versions") $(s 1 "SELECT count(*) FROM recsys.model_versions")" "1 1" "and adds no version on the shards"
is "$(s 0 "SELECT recsys.publish_version('default', 1, weights, 'not-the-md5') FROM recsys.model_versions WHERE version_id = 1" | grep -o 'do not match checksum')" \
   "do not match checksum" "a publication whose weights do not match the checksum is refused"

# the merged fit is the single-node fit of the whole shop
psql -X -q -p $BASE -d postgres -c "CREATE DATABASE recsys_single" >/dev/null 2>&1
psql -X -q -v ON_ERROR_STOP=1 -p $BASE -d recsys_single >/dev/null 2>&1 <<SQL
CREATE EXTENSION recsys;
SELECT recsys.demo_shop(customers => $CUSTOMERS);
DELETE FROM shop.order_items WHERE order_id IN (SELECT order_id FROM shop.orders WHERE customer_id IS NULL);
DELETE FROM shop.orders WHERE customer_id IS NULL;
SELECT count(*) FROM recsys.prepare();
SQL
psql -X -At -p $BASE -d recsys_single -c "COPY (SELECT recsys.bundle_fit('{}')) TO STDOUT" > /tmp/recsys_scaleout_single.copy
cmp=$(psql -X -q -At -p $BASE -d recsys_coord <<'SQL'
CREATE TEMP TABLE single (fit bytea);
\copy single FROM '/tmp/recsys_scaleout_single.copy'
WITH f AS (SELECT (SELECT fit FROM single) AS one,
                  recsys.fit_merge(ARRAY(SELECT p FROM recsys_proxy.fit_partial('{}') p), '{}') AS merged)
SELECT (SELECT max(abs(a - b)) FROM unnest(recsys.model_tensor(one, 'b.val'), recsys.model_tensor(merged, 'b.val')) t(a, b)) < 1e-4
   AND (SELECT max(abs(a)) FROM unnest(recsys.model_tensor(one, 'b.val')) a) > 1e-3,
       recsys.model_tensor(one, 'bundle.pop') = recsys.model_tensor(merged, 'bundle.pop'),
       (SELECT avg((a = b)::int) FROM unnest(recsys.model_tensor(one, 'b.idx'), recsys.model_tensor(merged, 'b.idx')) t(a, b)) > 0.99,
       recsys.model_info(one) #> '{config,fit,pairs}' = recsys.model_info(merged) #> '{config,fit,pairs}'
  FROM f
SQL
)
is "$cmp" "t|t|t|t" "the fit merged from both shards = the single-node fit: B within 1e-4, same popularity, same sparsity pattern, same pairs"

# a shard failing mid-round: the shards keep version 1
s 1 "ALTER TABLE recsys.shard_samples ADD CONSTRAINT fail_here CHECK (false) NOT VALID" >/dev/null
out=$(psql -X -q -p $BASE -d recsys_coord -c "CALL recsys_proxy.train('default', '{\"max_epochs\": 2, \"gru_epochs\": 0, \"force\": true}')" 2>&1)
[ $? -ne 0 ]; ok $? "a training whose shard 1 fails mid-round (storing its samples) stops with an error"
echo "$out" | grep -m1 ERROR | sed 's/^/# /'
is "$(c "SELECT string_agg(shard || '=' || version_id, ' ' ORDER BY shard) FROM recsys_proxy.active_versions('default')")" \
   "recsys_shard0:$((BASE + 1))=1 recsys_shard1:$((BASE + 2))=1" "after the mid-round failure both shards still serve version 1"
is "$(c "SELECT status || ': ' || (note LIKE 'failed: %') FROM recsys.model_versions WHERE version_id = 2")" "failed: true" \
   "the coordinator's failed round is marked failed with the error, never active"
[ "$(s 0 "SELECT count(*) FROM recsys.shard_samples")" -gt 0 ]; ok $? "the failed round left its samples on shard 0"
s 1 "ALTER TABLE recsys.shard_samples DROP CONSTRAINT fail_here" >/dev/null

# a shard failing at publication: staged on one shard, active on none
s 1 "ALTER TABLE recsys.model_versions ADD CONSTRAINT fail_here CHECK (version_id < 3) NOT VALID" >/dev/null
out=$(psql -X -q -p $BASE -d recsys_coord -c "CALL recsys_proxy.train('default', '{\"max_epochs\": 2, \"gru_epochs\": 0, \"force\": true}')" 2>&1)
[ $? -ne 0 ]; ok $? "a training whose shard 1 refuses the new version at publication stops with an error"
is "$(c "SELECT string_agg(shard || '=' || version_id, ' ' ORDER BY shard) FROM recsys_proxy.active_versions('default')")" \
   "recsys_shard0:$((BASE + 1))=1 recsys_shard1:$((BASE + 2))=1" "after the failed publication both shards still serve version 1"
is "$(c "SELECT version_id || ':' || status FROM recsys.model_versions WHERE version_id = 3")" "3:candidate" \
   "the coordinator committed version 3 as a candidate before publishing"
is "$(s 0 "SELECT count(*) FROM recsys.shard_samples") $(s 1 "SELECT count(*) FROM recsys.shard_samples")" "0 0" \
   "the next round of the model cleared what the failed one left"
check_routing "after the failed rounds"
s 1 "ALTER TABLE recsys.model_versions DROP CONSTRAINT fail_here" >/dev/null
is "$(c "SELECT string_agg(result, ' ' ORDER BY shard) FROM recsys_proxy.publish(3)")" "activated activated" \
   "publishing version 3 again, once the shard is fixed, activates it on both shards"
SUM=$(c "SELECT md5(weights) FROM recsys.model_versions WHERE version_id = 3")
is "$(c "SELECT string_agg(version_id || '/' || checksum, ' ' ORDER BY shard) FROM recsys_proxy.active_versions('default')") $(c "SELECT recsys.active_version('default')")" \
   "3/$SUM 3/$SUM 3" "both shards and the coordinator are on version 3"
check_routing "after publishing version 3"
tap_done
