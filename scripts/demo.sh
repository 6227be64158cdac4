#!/usr/bin/env bash
# The demo: packages, build, throwaway cluster, embedded shop, prepare, a trained GRU, recommendations.
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

log "training a GRU next-item model on the customers' order sequences (5 epochs)"
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
-- each customer's items in time order; every position predicts its item from up to 20 before it
CREATE TABLE demo_sequences AS
WITH ordered AS (
    SELECT user_idx, array_agg(item_idx ORDER BY ts, basket_idx, item_idx) AS items
      FROM recsys.events_clean GROUP BY user_idx)
SELECT items[greatest(1, t - 20):t - 1] AS prefix, items[t] AS target
  FROM ordered, generate_subscripts(items, 1) AS t WHERE t > 1;
DO $$
DECLARE
    w bytea := recsys.model_init('gru', jsonb_build_object(
                   'vocab', (SELECT max(idx) + 1 FROM recsys.id_map WHERE space = 'item'), 'embed', 32, 'hidden', 64), 42);
    v bigint;
BEGIN
    PERFORM recsys.create_model('demo_gru', 'gru', '{"embed": 32, "hidden": 64}', 'next item from the order history');
    v := recsys.add_version('demo_gru', w, 'training');
    FOR epoch IN 1 .. 5 LOOP
        w := (SELECT recsys.rnn_train(w, prefix, target, '{"lr": 0.01, "negatives": 50, "seed": 7}') FROM demo_sequences);
        INSERT INTO recsys.training_runs (version_id, epoch, loss, samples)
        VALUES (v, epoch, (recsys.model_info(w) #>> '{config,train,mean_loss}')::float8,
                (recsys.model_info(w) #>> '{config,train,samples}')::bigint);
    END LOOP;
    UPDATE recsys.model_versions SET weights = w, status = 'candidate' WHERE version_id = v;
    PERFORM recsys.activate_version(v);
END $$;
\echo 'training curve (one row per epoch):'
SELECT epoch, round(loss::numeric, 4) AS mean_loss, samples FROM recsys.training_runs ORDER BY epoch;
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
\echo 'what the GRU expects customer $USER_ID to buy next (active version of demo_gru):'
WITH w AS (SELECT weights FROM recsys.model_versions WHERE version_id = recsys.active_version('demo_gru')),
     hist AS (SELECT array_agg(e.item_idx ORDER BY e.ts, e.basket_idx, e.item_idx) AS items
                FROM recsys.events_clean e JOIN recsys.id_map u ON u.space = 'user' AND u.idx = e.user_idx
               WHERE u.ext_id = '$USER_ID'),
     m AS (SELECT recsys.rnn_encode(w.weights, hist.items[greatest(1, cardinality(hist.items) - 19):]) AS h,
                  recsys.model_tensor(w.weights, 'out') AS o, recsys.model_tensor(w.weights, 'out_b') AS ob FROM w, hist)
SELECT p.name AS product, round(s.score::numeric, 3) AS score
  FROM m, LATERAL (SELECT i.idx, (SELECT sum(m.h[k] * m.o[i.idx + 1][k]) FROM generate_subscripts(m.h, 1) k) + m.ob[i.idx + 1] AS score
                     FROM recsys.id_map i WHERE i.space = 'item') s
  JOIN recsys.id_map im ON im.space = 'item' AND im.idx = s.idx
  JOIN shop.products p ON p.product_id = im.ext_id::bigint
 ORDER BY s.score DESC LIMIT 5;
\echo 'a customer the shop has never seen:'
SELECT rank, bundle_id, score, reason FROM recommend_bundles(-1, 3);
SQL

if [ "$KEEP" = 1 ]; then
    echo "cluster left running: psql -h /tmp -p $PORT -U postgres postgres"
    echo "stop it with: runuser -u postgres -- $PGBIN/pg_ctl -D $PGDATA_DIR stop"
fi
