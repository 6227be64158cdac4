#!/usr/bin/env bash
# Data-parallel training on 2 PL/Proxy shards against single-node training, on Youshu:
# time per scorer epoch, per GRU epoch and for the fit, and tune Recall@20 / NDCG@20 of each model, both
# trained for the same number of epochs (no early stop, one GRU epoch) with the same options.
#   bash bench/scaleout_youshu.sh [DATA_DIR] [EPOCHS]
# Starts a coordinator and 2 shards on ports 54370..54372 (scripts/shards.sh), loads Youshu on every shard
# keeping the users each owns, and the whole of it in a single-node database on the coordinator's cluster;
# stops every cluster at the end. Needs root (the clusters run as user postgres). Quality is scored on the
# single-node database, where both versions are stored: full ranking, training pairs masked, as
# bench/youshu_quality.sh does.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/shards.sh"
DATA=${1:-$ROOT/../shared/datasets/youshu}
EPOCHS=${2:-10}
N=2
BASE=54370
export PGHOST=/tmp PGUSER=postgres
trap 'shards_stop $N $BASE' EXIT
say() { printf '== %s\n' "$*" >&2; }
OPTS="{\"max_epochs\": $EPOCHS, \"patience\": $EPOCHS, \"gru_epochs\": 1, \"features\": false, \"force\": true}"

say "starting a coordinator and $N shards"
shards_start $N $BASE >/dev/null || exit 1
for i in $(seq 0 $((N - 1))); do
    say "shard $i: loading Youshu and keeping its users"
    PGPORT=$((BASE + 1 + i)) "$ROOT/bench/load_youshu.sh" "$DATA" "recsys_shard$i" >/dev/null || exit 1
    psql -X -q -v ON_ERROR_STOP=1 -p $((BASE + 1 + i)) -d "recsys_shard$i" >/dev/null <<SQL || exit 1
DELETE FROM youshu.user_item WHERE (hashtext(user_id::text) & $((N - 1))) <> $i;
DELETE FROM youshu.user_bundle_train WHERE (hashtext(user_id::text) & $((N - 1))) <> $i;
SELECT count(*) FROM recsys.prepare();
SQL
done
say "single node: loading all of Youshu"
psql -X -q -p $BASE -d postgres -c "CREATE DATABASE recsys_single" >/dev/null
PGPORT=$BASE "$ROOT/bench/load_youshu.sh" "$DATA" recsys_single >/dev/null || exit 1

say "single node: CALL recsys.train('default', '$OPTS')"
T0=$(date +%s.%N)
psql -X -q -p $BASE -d recsys_single -c "CALL recsys.train('default', '$OPTS')" >/dev/null || exit 1
T_SINGLE=$(echo "$(date +%s.%N) - $T0" | bc)
say "2 shards: CALL recsys_proxy.train('default', '$OPTS')"
T0=$(date +%s.%N)
psql -X -q -p $BASE -d recsys_coord -c "CALL recsys_proxy.train('default', '$OPTS')" >/dev/null || exit 1
T_PAR=$(echo "$(date +%s.%N) - $T0" | bc)

# the merged version joins the single-node store, to be scored on the same data
psql -X -At -p $BASE -d recsys_coord -c "COPY (SELECT weights FROM recsys.model_versions WHERE status = 'active') TO STDOUT" > /tmp/recsys_merged.copy
psql -X -q -p $BASE -d recsys_single >/dev/null <<'SQL'
CREATE TEMP TABLE merged (weights bytea);
\copy merged FROM '/tmp/recsys_merged.copy'
SELECT recsys.add_version('default', (SELECT weights FROM merged), 'candidate', '{}', NULL, NULL, NULL, 'data-parallel, 2 shards');
SQL
psql -X -p $BASE -d recsys_single <<SQL
\echo single node against 2 shards, $EPOCHS scorer epochs each (this machine: $(nproc) cores)
SELECT 'single node' AS training, round($T_SINGLE, 1) AS total_s,
       (SELECT round(elapsed_ms::numeric) FROM recsys.training_runs r JOIN recsys.model_versions v USING (version_id)
         WHERE v.note IS DISTINCT FROM 'data-parallel, 2 shards' AND r.epoch = 0 ORDER BY version_id LIMIT 1) AS fit_and_samples_ms,
       (SELECT round(avg(elapsed_ms)::numeric, 1) FROM recsys.training_runs r WHERE r.metrics ->> 'stage' = 'scorer'
           AND r.version_id = (SELECT min(version_id) FROM recsys.model_versions)) AS ms_per_epoch,
       (SELECT round(avg(elapsed_ms)::numeric) FROM recsys.training_runs r WHERE r.metrics ->> 'stage' = 'encoder'
           AND r.version_id = (SELECT min(version_id) FROM recsys.model_versions)) AS gru_epoch_ms
UNION ALL
SELECT '2 shards (PL/Proxy)', round($T_PAR, 1),
       $(psql -X -At -p $BASE -d recsys_coord -c "SELECT round(elapsed_ms::numeric) FROM recsys.training_runs WHERE epoch = 0"),
       $(psql -X -At -p $BASE -d recsys_coord -c "SELECT round(avg(elapsed_ms)::numeric, 1) FROM recsys.training_runs WHERE metrics ->> 'stage' = 'scorer'"),
       $(psql -X -At -p $BASE -d recsys_coord -c "SELECT round(avg(elapsed_ms)::numeric) FROM recsys.training_runs WHERE metrics ->> 'stage' = 'encoder'");
WITH v AS (SELECT version_id, CASE WHEN note = 'data-parallel, 2 shards' THEN '2 shards (PL/Proxy)' ELSE 'single node' END AS training
             FROM recsys.model_versions WHERE weights IS NOT NULL),
pos AS (SELECT user_id, array_agg(bundle_id) AS b FROM youshu.user_bundle_tune GROUP BY user_id),
per AS (
    SELECT v.training, p.user_id,
           count(*) FILTER (WHERE r.bundle_id = ANY (p.b))::float8 / cardinality(p.b) AS recall,
           coalesce(sum(1 / log(2, r.rank + 1.0)) FILTER (WHERE r.bundle_id = ANY (p.b)), 0)
             / (SELECT sum(1 / log(2, i + 1.0)) FROM generate_series(1, least(cardinality(p.b), 20)) i) AS ndcg
      FROM v CROSS JOIN pos p
      CROSS JOIN LATERAL recommend_bundles(p.user_id::bigint, 20, jsonb_build_object('version', v.version_id)) r
     GROUP BY 1, 2, p.b)
SELECT training, count(*) AS users, round(avg(recall)::numeric, 4) AS recall20, round(avg(ndcg)::numeric, 4) AS ndcg20
  FROM per GROUP BY 1 ORDER BY 1 DESC;
SQL
