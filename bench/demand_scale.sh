#!/usr/bin/env bash
# Demand forecasts at catalogue scale: a shop of ITEMS products with a year of daily sales (each product its own
# rate, weekly and yearly seasons, Poisson noise), registered and prepared like any shop, then
# recsys.forecast_demand(28) (the global model fitted, every product x 28 days forecast and stored with the
# baselines) and the item backtest, each with its time and the backend's peak memory.
#
#   bash bench/demand_scale.sh [ITEMS] [DATABASE]      (defaults: 100000 recsys_demand)
# Runs as a superuser (it reads /proc for the backend's memory).
set -euo pipefail
ITEMS=${1:-100000}
DB=${2:-recsys_demand}
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1

step() {  # label sql
    local t0 t1 out
    t0=$(date +%s.%N)
    out=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<SQL
SET client_min_messages = warning;
$2
SELECT 'VmHWM ' || (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmHWM:\s+(\d+)'))[1];
SQL
) || { echo "$1 FAILED: $(grep -m1 ERROR <<<"$out")"; return 1; }
    t1=$(date +%s.%N)
    grep -v '^VmHWM' <<<"$out" | sed 's/^/      /' || true
    printf '%-34s %9.1f s   peak %7.0f MB\n' "$1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
           "$(sed -n 's/^VmHWM \([0-9]*\)$/\1/p' <<<"$out" | awk '{print $1 / 1024}')"
}

echo "demand scale: $ITEMS products, 364 days"
step "generate the sales" "
CREATE EXTENSION recsys;
CREATE TABLE products AS
SELECT i AS product_id, 'category ' || (i % 500) AS category, round((5 + 95 * random())::numeric, 2) AS price,
       floor(40 * random())::int AS stock,
       -- units a day: log-normal across products (median 0.15, a long tail of best sellers)
       exp(ln(0.15) + sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS rate
  FROM generate_series(1, $ITEMS) i;
-- one line per product and day that sold: weekends busier, a peak towards the year's end; the day's units are its
-- expected demand rounded up or down at random (so their mean is the demand)
CREATE TABLE sales AS
SELECT p.product_id, 1 + (p.product_id % 997) AS customer_id, d AS sold_at, q AS quantity
  FROM products p
 CROSS JOIN generate_series(date '2025-11-01', date '2026-10-30', interval '1 day') d
 CROSS JOIN LATERAL (SELECT floor(p.rate * CASE WHEN extract(dow FROM d) IN (0, 6) THEN 1.4 ELSE 0.85 END
                                  * (1 + 0.3 * cos(2 * pi() * (extract(doy FROM d) - 355) / 365.25))
                                  + random())::int AS q) x
 WHERE x.q > 0;
SELECT count(*) || ' sales lines' FROM sales;
SELECT recsys.register_items('products', 'product_id', NULL, 'category', 'price', 'stock') IS NOT NULL;
SELECT recsys.register_events('sales', 'customer_id', 'product_id', 'sold_at', NULL, 'quantity') IS NOT NULL;"
step "recsys.prepare()" "SELECT count(*) || ' report rows' FROM recsys.prepare();"
step "forecast_demand(28), items" "SELECT count(DISTINCT key) || ' items, ' || count(*) || ' item-days returned' FROM recsys.forecast_demand(28);
SELECT count(*) || ' rows stored (3 methods)' FROM recsys.demand_forecasts;"
step "forecast_demand(28), categories" "SELECT count(*) || ' category-days' FROM recsys.forecast_demand(28, '{\"level\": \"category\"}');"
step "demand_backtest, items, 2 origins" "SELECT method || ': MASE ' || round(mase::numeric, 3) || ', WAPE ' || round(wape::numeric, 3) || ', vs seasonal naive ' || round(mase_vs_seasonal_naive::numeric, 3) FROM recsys.demand_backtest(28, '{\"origins\": 2}');"
step "stock_risks" "SELECT risk || ': ' || count(*) FROM recsys.stock_risks GROUP BY risk ORDER BY 1;"
