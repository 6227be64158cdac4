#!/usr/bin/env bash
# The demo: packages, build, throwaway cluster, embedded shop, prepare, CALL recsys.train(), recommendations.
#   bash scripts/demo.sh          # prints recommendations, then stops the cluster
#   bash scripts/demo.sh --keep   # leaves the cluster running and prints the psql line
source "$(dirname "$0")/lib.sh"
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1
PORT=${RECSYS_DEMO_PORT:-54320}

install_deps
build_install
start_cluster "$PORT"
[ "$KEEP" = 1 ] || trap stop_cluster EXIT

log "loading the embedded demo shop and preparing it"
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
CREATE EXTENSION recsys;
SELECT recsys.demo_shop();
\echo 'prepare report:'
SELECT source, rule, rows FROM recsys.prepare() WHERE rows > 0;
SQL

log "training the bundle model: CALL recsys.train() (fit, learned scorer, GRU encoder; commits per epoch)"
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
CALL recsys.train();
\echo 'training curve (one committed row per epoch; epoch 0 is the fit alone, 1001+ the GRU):'
SELECT epoch, metrics ->> 'stage' AS stage, round(loss::numeric, 4) AS loss,
       round((metrics ->> 'valid_recall20')::numeric, 4) AS valid_recall20,
       round((metrics ->> 'valid_ndcg20')::numeric, 4) AS valid_ndcg20, samples
  FROM recsys.training_runs ORDER BY epoch;
SELECT version_id, model, status, round((metrics ->> 'valid_ndcg20')::numeric, 4) AS valid_ndcg20
  FROM recsys.model_versions;
SQL

USER_ID=$(psql -X -At -d postgres -c "SELECT customer_id FROM shop.bundle_orders GROUP BY 1 HAVING count(*) >= 2 ORDER BY 1 LIMIT 1")
log "recommendations for customer $USER_ID"
psql -X -v ON_ERROR_STOP=1 -d postgres <<SQL
\echo 'what customer $USER_ID bought before (bundles):'
SELECT b.bundle_id, b.name FROM shop.bundle_orders o JOIN shop.bundles b USING (bundle_id)
 WHERE o.customer_id = $USER_ID ORDER BY o.ordered_at;
SELECT r.rank, r.bundle_id, b.name AS bundle, r.score, r.reason,
       (SELECT string_agg(p.name, ', ' ORDER BY p.product_id) FROM shop.products p WHERE p.product_id = ANY (r.items)) AS products
  FROM recommend_bundles($USER_ID, 10) r JOIN shop.bundles b USING (bundle_id)
 ORDER BY r.rank;
\echo 'the same, under 150 in total and in stock:'
SELECT r.rank, b.name AS bundle, r.reason FROM recommend_bundles($USER_ID, 3, '{"max_price": 150, "in_stock": true}') r
  JOIN shop.bundles b USING (bundle_id) ORDER BY r.rank;
\echo 'what goes with a smartphone in the cart (complete_bundle):'
SELECT c.rank, p.name, c.reason FROM complete_bundle(ARRAY[1000]::bigint[], 4) c JOIN shop.products p ON p.product_id = c.item_id
 ORDER BY c.rank;
\echo 'a visitor with no history and a session of two products (the GRU reads the session):'
SELECT r.rank, b.name AS bundle, r.reason FROM recommend_bundles('visitor', 3, '{"session": [1000, 1001]}') r
  JOIN shop.bundles b ON b.bundle_id::text = r.bundle_id ORDER BY r.rank;
\echo 'a customer the shop has never seen:'
SELECT rank, bundle_id, score, reason FROM recommend_bundles(-1, 3);
SQL

log "promotions and demand: campaigns, two years of seasonal orders, the response model, forecasts"
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
SELECT recsys.demo_promotions();
SELECT count(*) AS prepared_rules FROM recsys.prepare();
\echo 'what each campaign did (uplift: the share who bought when shown minus the share of the held-out customers):'
SELECT promo_id, name, treated, held_out, round(100 * rate_treated::numeric, 1) AS "bought % (shown)",
       round(100 * rate_held_out::numeric, 1) AS "bought % (held out)",
       round(100 * uplift::numeric, 1) || ' [' || round(100 * uplift_low::numeric, 1) || ', ' || round(100 * uplift_high::numeric, 1) || ']' AS "uplift, points [95% CI]",
       status
  FROM recsys.campaign_results ORDER BY starts;
SET client_min_messages = warning;
CALL recsys.train('promotions');
SQL
PROMO_USER=$(psql -X -At -d postgres -c "SELECT customer_id FROM shop.customers WHERE second_dept = 1 ORDER BY customer_id LIMIT 1")
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL
\echo 'the offers running on 2026-11-15 for customer $PROMO_USER, ranked by the margin they add (not by who buys anyway):'
SELECT rank, promo_id, name, round(100 * p_without::numeric, 1) AS "p buy % without", round(100 * p_with::numeric, 1) AS "with",
       round(expected_margin::numeric, 2) AS "expected margin", reason
  FROM recommend_promotions($PROMO_USER, 3, '{"at": "2026-11-15"}') ORDER BY rank;
\echo 'demand: the backtest of the global model against the baselines (4 rolling origins, 28 days ahead):'
SELECT level, method, round(mase::numeric, 3) AS mase, round(wape::numeric, 3) AS wape,
       round(interval_coverage::numeric, 3) AS "80% interval covers", round(mase_vs_seasonal_naive::numeric, 3) AS "vs seasonal naive"
  FROM (SELECT * FROM recsys.demand_backtest(28, '{"level": "category"}')
        UNION ALL SELECT * FROM recsys.demand_backtest(28, '{"level": "item"}')) b ORDER BY level, mase;
SELECT count(*) AS item_days_forecast FROM recsys.forecast_demand(28);
\echo 'stock at risk over a 7-day lead time (and slow movers with more than 8 weeks of cover):'
SELECT item_id, name, stock, round(demand_lead::numeric, 1) AS "demand in 7 days", round(cover_days::numeric) AS cover_days, risk
  FROM recsys.stock_risks LIMIT 10;
SQL

if [ "$KEEP" = 1 ]; then
    echo "cluster left running: psql -h /tmp -p $PORT -U postgres postgres"
    echo "stop it with: runuser -u postgres -- $PGBIN/pg_ctl -D $PGDATA_DIR stop"
fi
