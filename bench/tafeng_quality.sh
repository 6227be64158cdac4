#!/usr/bin/env bash
# Trains the way the README says (CALL recsys.train(): on a shop without bundles, the item model), then scores
# recommend_items(customer, 10) with default options on the Ta-Feng customers whose next basket is known
# (bench/load_tafeng.sh loads them), with the data set's protocol: Recall@10 = hits / |next basket|, NDCG@10 binary
# with IDCG over min(|basket|, 10), mean over customers. Next to it, on the same customers: the globally most-bought
# items (G-TopFreq) and each customer's own most-bought items, topped up with the global ones (P-TopFreq).
#
#   bench/tafeng_quality.sh [DATABASE] [SCHEMA] [K]      (defaults: postgres tafeng 10)
# RECSYS_TRAIN=0 scores the active model as it is; RECSYS_TRAIN_OPTIONS passes options to recsys.train.
set -euo pipefail
DB=${1:-postgres}
SCHEMA=${2:-tafeng}
K=${3:-10}
if [ "${RECSYS_TRAIN:-1}" = 1 ]; then
    T0=$SECONDS
    psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "CALL recsys.train('default', '${RECSYS_TRAIN_OPTIONS:-{\}}')"
    echo "trained in $((SECONDS - T0)) s"
fi
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -v schema="$SCHEMA" -v k="$K" <<'SQL'
SET client_min_messages = warning;
\timing off
CREATE TEMP TABLE truth AS SELECT customer_id, array_agg(item_id) AS basket FROM :"schema".next_basket GROUP BY 1;
CREATE TEMP TABLE ranked (method text, customer_id integer, item_id integer, rk integer);
-- recommend_items, default options, every known customer; its time per call
CREATE TEMP TABLE t0 AS SELECT clock_timestamp() AS t;
INSERT INTO ranked SELECT 'recommend_items', t.customer_id, r.item_id::integer, r.rank
  FROM truth t, recommend_items(t.customer_id, :k) r;
SELECT format('recommend_items: %s customers in %s s, %s ms per call', count(*),
              round(extract(epoch FROM clock_timestamp() - (SELECT t FROM t0))::numeric, 1),
              round((1000 * extract(epoch FROM clock_timestamp() - (SELECT t FROM t0)) / count(*))::numeric, 3)) AS timing
  FROM truth;
-- G-TopFreq: the items most customers bought
CREATE TEMP TABLE gtop AS
SELECT item_id, row_number() OVER (ORDER BY n DESC, item_id) AS g
  FROM (SELECT item_id, count(DISTINCT customer_id) AS n FROM :"schema".order_lines GROUP BY 1) x ORDER BY g LIMIT 100;
INSERT INTO ranked SELECT 'G-TopFreq', t.customer_id, g.item_id, g.g FROM truth t, gtop g WHERE g.g <= :k;
-- P-TopFreq: the customer's own items by the number of baskets holding them, then G-TopFreq
INSERT INTO ranked
SELECT 'P-TopFreq', customer_id, item_id, rk FROM (
    SELECT customer_id, item_id, row_number() OVER (PARTITION BY customer_id ORDER BY pri, s DESC, item_id) AS rk FROM (
        SELECT customer_id, item_id, min(pri) AS pri, max(s) AS s FROM (
            SELECT o.customer_id, o.item_id, 0 AS pri, count(DISTINCT o.order_id)::float8 AS s
              FROM :"schema".order_lines o WHERE o.customer_id IN (SELECT customer_id FROM truth) GROUP BY 1, 2
            UNION ALL SELECT t.customer_id, g.item_id, 1, -g.g FROM truth t, gtop g) u
         GROUP BY 1, 2) v) w
 WHERE rk <= :k;
-- per customer and method: hits and DCG; a customer a method left without an answer counts 0
WITH per AS (
    SELECT m.method, t.customer_id, cardinality(t.basket) AS nb,
           count(r.item_id) FILTER (WHERE r.item_id = ANY (t.basket)) AS hits,
           coalesce(sum(1 / log(2, r.rk + 1.0)) FILTER (WHERE r.item_id = ANY (t.basket)), 0) AS dcg
      FROM truth t CROSS JOIN (SELECT DISTINCT method FROM ranked) m
      LEFT JOIN ranked r ON r.method = m.method AND r.customer_id = t.customer_id
     GROUP BY 1, 2, 3)
SELECT p.method, :k AS k, count(*) AS customers, round(avg(p.hits::numeric / p.nb), 4) AS recall,
       round(avg(p.dcg / (SELECT sum(1 / log(2, g + 1.0)) FROM generate_series(1, least(p.nb, :k)) g))::numeric, 4) AS ndcg
  FROM per p GROUP BY p.method ORDER BY recall DESC;
SQL
