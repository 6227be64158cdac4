#!/usr/bin/env bash
# Promotions on the demo shop, where the truth is known (recsys.demo_promotions keeps every customer's chance to buy
# each offer's target with and without it):
#   1. the randomised campaigns' uplift intervals: over SEEDS seeds, how often each campaign's 95% interval holds
#      its true effect (the mean of p_with - p_without over the customers it picked);
#   2. the response model (CALL recsys.train('promotions')): the margin that the top offer adds in the simulator, for
#      every customer, ranked by expected incremental margin, by the chance to buy, and by expected margin but only
#      when it is positive (no offer otherwise), beside the best possible (the truth's best offer, or none);
#   3. recommend_promotions latency (p50, p99 over CALLS calls, server side, warm).
#
#   bash bench/promotions.sh [SEEDS] [CUSTOMERS] [DATABASE]     (defaults: 20 3000 recsys_promo)
# Connection from PGHOST/PGPORT/PGUSER (a role that may create databases).
set -euo pipefail
SEEDS=${1:-20}
CUSTOMERS=${2:-3000}
DB=${3:-recsys_promo}
CALLS=${RECSYS_PROMO_CALLS:-2000}
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
psql -X -q -d "$DB" -c "SET client_min_messages = warning" -c "CREATE EXTENSION recsys" >/dev/null

echo "1. uplift intervals of the randomised campaigns over $SEEDS seeds ($CUSTOMERS customers)"
psql -X -q -d "$DB" -c "CREATE TABLE bench_cover (seed int, promo_id text, truth float8, uplift float8, lo float8, hi float8)"
for seed in $(seq 1 "$SEEDS"); do
    psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<SQL
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS shop CASCADE;
SELECT recsys.demo_shop('shop', $CUSTOMERS, $seed);
SELECT recsys.demo_promotions('shop', $seed);
SELECT count(*) FROM recsys.prepare();
INSERT INTO bench_cover
SELECT $seed, c.promo_id, t.truth, c.uplift, c.uplift_low, c.uplift_high
  FROM recsys.campaign_results c
  JOIN (SELECT campaign_id, avg(CASE WHEN bought_anyway THEN 0 ELSE p_with - p_without END) AS truth FROM shop.campaign_exposures GROUP BY 1) t ON t.campaign_id = c.promo_id
 WHERE c.randomised AND c.status = 'ended';
SQL
done
psql -X -d "$DB" <<'SQL'
SELECT promo_id, count(*) AS seeds, count(*) FILTER (WHERE truth BETWEEN lo AND hi) AS interval_holds_truth,
       round(avg(truth)::numeric, 4) AS mean_truth, round(avg(uplift)::numeric, 4) AS mean_estimate,
       round(avg(hi - lo)::numeric, 4) AS mean_interval_width
  FROM bench_cover GROUP BY promo_id ORDER BY promo_id;
SELECT count(*) AS intervals, count(*) FILTER (WHERE truth BETWEEN lo AND hi) AS holding_truth,
       round(avg((truth BETWEEN lo AND hi)::int)::numeric, 3) AS coverage
  FROM bench_cover;
SQL

echo "2. offers ranked by expected incremental margin against ranked by P(buy), every customer (seed 42)"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<SQL
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS shop CASCADE;
SELECT recsys.demo_shop('shop', $CUSTOMERS, 42);
SELECT recsys.demo_promotions('shop', 42);
SELECT count(*) FROM recsys.prepare();
CALL recsys.train('promotions');
SQL
psql -X -d "$DB" <<'SQL'
WITH picks AS (
    SELECT c.customer_id,
           (SELECT r.promo_id FROM recommend_promotions(c.customer_id, 3, '{"at": "2026-11-15"}') r ORDER BY r.rank LIMIT 1) AS by_margin,
           (SELECT r.expected_margin FROM recommend_promotions(c.customer_id, 3, '{"at": "2026-11-15"}') r ORDER BY r.rank LIMIT 1) AS margin,
           (SELECT r.promo_id FROM recommend_promotions(c.customer_id, 3, '{"at": "2026-11-15"}') r ORDER BY r.p_with DESC LIMIT 1) AS by_p_buy
      FROM shop.customers c
), value AS (
    SELECT t.campaign_id, t.customer_id,
           t.p_with * (0.3 * p.price - p.price * p.discount / 100) - t.p_without * 0.3 * p.price AS gain
      FROM shop.campaign_truth t JOIN recsys.promotions p ON p.promo_id = t.campaign_id
), best AS (
    SELECT customer_id, max(gain) AS gain FROM value v JOIN recsys.promotions p ON p.promo_id = v.campaign_id
     WHERE p.starts <= '2026-11-15' AND '2026-11-15' < p.ends GROUP BY customer_id
)
SELECT count(*) AS customers, round(sum(a.gain)::numeric, 1) AS "margin added: by expected margin",
       round(sum(b.gain)::numeric, 1) AS "by P(buy)",
       round(sum(CASE WHEN k.margin > 0 THEN a.gain ELSE 0 END)::numeric, 1) AS "by expected margin, only when positive",
       round(sum(greatest(o.gain, 0))::numeric, 1) AS "the best possible (the truth)"
  FROM picks k
  JOIN value a ON a.customer_id = k.customer_id AND a.campaign_id = k.by_margin
  JOIN value b ON b.customer_id = k.customer_id AND b.campaign_id = k.by_p_buy
  JOIN best o ON o.customer_id = k.customer_id;
SQL

echo "3. recommend_promotions latency, $CALLS calls (server side, warm)"
psql -X -d "$DB" <<SQL
SET client_min_messages = warning;
CREATE TEMP TABLE lat (ms float8);
DO \$\$
DECLARE t0 timestamptz; n int;
BEGIN
    FOR i IN 1 .. $CALLS LOOP
        t0 := clock_timestamp();
        SELECT count(*) INTO n FROM recommend_promotions(1 + (i * 7919) % $CUSTOMERS, 3, '{"at": "2026-11-15"}');
        INSERT INTO lat VALUES (1000 * extract(epoch FROM clock_timestamp() - t0));
    END LOOP;
END \$\$;
SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 3) AS p50_ms,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 3) AS p99_ms FROM lat;
SQL
