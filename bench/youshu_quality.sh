#!/usr/bin/env bash
# Trains the bundle model the README's way (CALL recsys.train()), then scores
# recommend_bundles on a Youshu split with the CrossCBR/BGCN protocol:
# full ranking over all bundles, training pairs masked (exclude_taken), Recall@K =
# hits / |positives|, NDCG@K with binary relevance and ideal DCG over min(|positives|, K),
# averaged over users with at least one positive. Next to it, computed the same way on
# the same users: most popular, item co-occurrence (recsys.recommend_bundles_baseline,
# what serves before any training) and plain EASE (recsys.ease_fit, lambda from
# RECSYS_EASE_LAMBDA, default 300). It then scores the same split through recsys.evaluate
# and prints the largest difference between the two, metric by metric.
#
#   bench/youshu_quality.sh [DATABASE] [SCHEMA] [SPLIT]     (defaults: postgres youshu tune)
# Load the data first with bench/load_youshu.sh. RECSYS_TRAIN=0 scores the active model
# as it is; RECSYS_TRAIN_OPTIONS passes options to recsys.train (default '{}').
set -euo pipefail
DB=${1:-postgres}
SCHEMA=${2:-youshu}
SPLIT=${3:-tune}
START=$SECONDS
if [ "${RECSYS_TRAIN:-1}" = 1 ]; then
    T0=$SECONDS
    psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "CALL recsys.train('default', '${RECSYS_TRAIN_OPTIONS:-{\}}')"
    echo "trained in $((SECONDS - T0)) s"
fi
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -v schema="$SCHEMA" -v split="user_bundle_$SPLIT" -v lambda="${RECSYS_EASE_LAMBDA:-300}" <<'SQL'
SET client_min_messages = warning;
\timing off
CREATE TEMP TABLE truth AS
SELECT user_id::text AS user_id, array_agg(bundle_id::text) AS positives
  FROM :"schema".:"split" GROUP BY user_id;
CREATE TEMP TABLE ranked AS
SELECT 'recommend_bundles' AS method, t.user_id, r.rank, r.bundle_id
  FROM truth t CROSS JOIN LATERAL recommend_bundles(t.user_id, 40) r;
CREATE TEMP TABLE ranked_cooc AS
SELECT 'item co-occurrence' AS method, t.user_id, r.rank, r.bundle_id
  FROM truth t CROSS JOIN LATERAL recsys.recommend_bundles_baseline(t.user_id, 40) r;
-- most popular, masked the same way
CREATE TEMP TABLE train AS
SELECT user_id::text AS user_id, bundle_id::text AS bundle_id FROM :"schema".user_bundle_train;
CREATE INDEX ON train (user_id);
ANALYZE train;
CREATE TEMP TABLE popular AS
SELECT bundle_id::text AS bundle_id, count(*) AS n FROM :"schema".user_bundle_train GROUP BY 1;
CREATE TEMP TABLE ranked_pop AS
SELECT 'most_popular' AS method, t.user_id, p.rank, p.bundle_id
  FROM truth t CROSS JOIN LATERAL (
    SELECT (row_number() OVER (ORDER BY c.n DESC, c.bundle_id))::int AS rank, c.bundle_id
      FROM popular c
     WHERE NOT EXISTS (SELECT 1 FROM train tr WHERE tr.user_id = t.user_id AND tr.bundle_id = c.bundle_id)
     ORDER BY c.n DESC, c.bundle_id LIMIT 40) p;
-- EASE on the training pairs (recsys.ease_fit), masked the same way
CREATE TEMP TABLE ease AS SELECT recsys.ease_fit(:lambda) AS w;
CREATE TEMP TABLE taken AS
SELECT u.ext_id AS user_id, array_agg(ub.bundle_idx) AS bundles
  FROM recsys.user_bundles ub JOIN recsys.id_map u ON u.space = 'user' AND u.idx = ub.user_idx GROUP BY u.ext_id;
CREATE TEMP TABLE ranked_ease AS
SELECT 'ease (lambda ' || :lambda || ')' AS method, t.user_id, r.rank, b.ext_id AS bundle_id
  FROM truth t JOIN taken k USING (user_id), ease e,
       LATERAL (SELECT (row_number() OVER (ORDER BY s.score DESC, s.idx))::int AS rank, s.idx - 1 AS bundle_idx
                  FROM unnest(recsys.ease_scores(e.w, k.bundles)) WITH ORDINALITY AS s(score, idx)
                 WHERE NOT (s.idx - 1 = ANY (k.bundles))
                 ORDER BY s.score DESC, s.idx LIMIT 40) r
  JOIN recsys.id_map b ON b.space = 'bundle' AND b.idx = r.bundle_idx;
CREATE TEMP TABLE harness AS
WITH all_ranked AS (SELECT * FROM ranked UNION ALL SELECT * FROM ranked_pop UNION ALL SELECT * FROM ranked_ease
                    UNION ALL SELECT * FROM ranked_cooc),
ks AS (SELECT unnest(ARRAY[20, 40]) AS k),
per_user AS (
  SELECT a.method, ks.k, t.user_id,
         count(*) FILTER (WHERE a.rank <= ks.k AND a.bundle_id = ANY (t.positives))::float8
           / cardinality(t.positives) AS recall,
         coalesce(sum(1 / log(2, a.rank + 1)) FILTER (WHERE a.rank <= ks.k AND a.bundle_id = ANY (t.positives)), 0)
           / (SELECT sum(1 / log(2, i + 1)) FROM generate_series(1, least(cardinality(t.positives), ks.k)) i) AS ndcg
    FROM truth t CROSS JOIN ks JOIN all_ranked a ON a.user_id = t.user_id
   GROUP BY a.method, ks.k, t.user_id, t.positives)
SELECT method, k, count(*) AS users, avg(recall) AS recall, avg(ndcg) AS ndcg
  FROM per_user GROUP BY method, k;
SELECT method, k, users, round(recall::numeric, 4) AS recall, round(ndcg::numeric, 4) AS ndcg FROM harness ORDER BY k, method;
-- the same split through recsys.evaluate (the in-database evaluation), compared number by number
CREATE TEMP TABLE via_evaluate AS
SELECT CASE e.method WHEN 'model' THEN 'recommend_bundles' WHEN 'item_cooccurrence' THEN 'item co-occurrence' ELSE e.method END AS method,
       e.k, e.metric, e.value
  FROM recsys.evaluate('default', NULL, (:'schema' || '.' || :'split')::regclass, '{20,40}') e WHERE e.metric IN ('recall', 'ndcg');
SELECT count(*) AS compared, max(abs(CASE v.metric WHEN 'recall' THEN h.recall ELSE h.ndcg END - v.value)) AS max_abs_difference
  FROM harness h JOIN via_evaluate v USING (method, k);
SQL
echo "scored split $SPLIT of $SCHEMA in $((SECONDS - START)) s"
