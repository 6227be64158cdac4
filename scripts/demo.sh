#!/usr/bin/env bash
# The demo: packages, build, throwaway cluster, embedded shop, prepare, recommendations.
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
\echo 'a customer the shop has never seen:'
SELECT rank, bundle_id, score, reason FROM recommend_bundles(-1, 3);
SQL

if [ "$KEEP" = 1 ]; then
    echo "cluster left running: psql -h /tmp -p $PORT -U postgres postgres"
    echo "stop it with: runuser -u postgres -- $PGBIN/pg_ctl -D $PGDATA_DIR stop"
fi
