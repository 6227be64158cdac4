-- The item model on a shop without bundles: CALL recsys.train() trains it, recommend_items serves it from C
-- (exact k, filters before the cut, repeat purchases for the roles that may see a history, reasons).
\i test/regress_setup.psql
DROP SCHEMA IF EXISTS shop CASCADE;
SELECT (recsys.demo_shop(register => false)) ->> 'customers' AS customers;
-- order lines and products only: no curated bundles
SELECT recsys.register_events('shop.order_lines', 'customer_id', 'product_id', 'ordered_at', 'order_id', 'quantity') ->> 'kind' AS events;
SELECT recsys.register_items('shop.products', 'product_id', 'name', 'category', 'price', 'stock') ->> 'kind' AS items;
SELECT count(*) > 0 AS prepared FROM recsys.prepare();

-- before training: the default blend serves, exactly k rows, repeat purchases first for a returning customer
SELECT count(*) AS k_rows, count(DISTINCT item_id) AS distinct_items, bool_and(score IS NOT NULL) AS scored
  FROM recommend_items(42, 10);
SELECT reason ~ '^you bought .* in [0-9]+ of your [0-9]+ orders' AS repeat_reason FROM recommend_items(42, 1);
-- exact k past the candidates: the whole catalogue, once each
SELECT count(*) AS k_rows, count(DISTINCT item_id) AS distinct_items FROM recommend_items(42, 1000);
SELECT count(*) = (SELECT count(*) FROM shop.products) AS whole_catalogue FROM recommend_items(42, 1000);
-- filters before the cut
SELECT count(*) AS k_rows,
       bool_and(NOT EXISTS (SELECT 1 FROM shop.order_lines o WHERE o.customer_id = 42 AND o.product_id = r.item_id)) AS none_bought,
       bool_and((SELECT stock > 0 FROM shop.products p WHERE p.product_id = r.item_id)) AS in_stock
  FROM recommend_items(42, 10, '{"exclude_bought": true, "in_stock": true}') r;
SELECT count(*) AS k_rows, bool_and((SELECT price <= 20 FROM shop.products p WHERE p.product_id = r.item_id)) AS under_20
  FROM recommend_items(42, 10, '{"max_price": 20}') r;
-- a new customer: popular items, labelled
SELECT count(*) AS k_rows, bool_and(reason LIKE 'popular (new customer):%') AS popular FROM recommend_items(-1, 5);
SELECT pg_temp.try($$SELECT * FROM recommend_items(42, 10, '{"model": 7}')$$);
SELECT pg_temp.try($$SELECT * FROM recommend_items(42, 0)$$);
-- the ranking function called directly keeps the same rules
SELECT pg_temp.try($$SELECT * FROM recsys.item_rank('42', 10, '[1, 2]')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.item_rank('42', 100000, '{}')$$);

-- a reader gets no item the customer bought by default (it would reveal their history) and may not ask for them
CREATE ROLE recsys_items_reader;
GRANT recsys_reader TO recsys_items_reader;
GRANT USAGE ON SCHEMA shop TO recsys_items_reader;
GRANT SELECT ON shop.order_lines TO recsys_items_reader;
SET ROLE recsys_items_reader;
SELECT count(*) AS k_rows,
       bool_and(NOT EXISTS (SELECT 1 FROM shop.order_lines o WHERE o.customer_id = 42 AND o.product_id = r.item_id)) AS none_bought
  FROM recommend_items(42, 10) r;
SELECT pg_temp.try($$SELECT * FROM recommend_items(42, 10, '{"exclude_bought": false}')$$);
RESET ROLE;

-- CALL recsys.train() on a shop without curated bundles: features (adopting the mined bundles), the item model
-- with the driver's per-epoch rows, then the bundle model over the mined bundles
CALL recsys.train('default', '{"max_epochs": 3, "patience": 3}');
SELECT m.name, m.kind, v.status, v.weights IS NOT NULL AS has_weights
  FROM recsys.models m JOIN recsys.model_versions v ON v.model = m.name ORDER BY v.version_id;
SELECT string_agg(r.epoch || ':' || (r.metrics ->> 'stage'), ' ' ORDER BY r.epoch) AS runs,
       bool_and(r.metrics ->> 'steps' = 'recsys.items') AS item_steps
  FROM recsys.training_runs r JOIN recsys.model_versions v USING (version_id) WHERE v.model = 'items';
SELECT count(*) AS samples_left FROM recsys.train_samples;
-- mined bundles serve as bundles: exactly k, each a set bought together
SELECT count(*) > 100 AS bundles_adopted, bool_and(n >= 2) AS sets FROM (SELECT count(*) AS n FROM recsys.bundle_items GROUP BY bundle_idx) b;
SELECT count(*) AS k_rows, bool_and(cardinality(items) >= 2) AS sets FROM recommend_bundles(42, 5);
-- their ids survive re-mining: the same item set keeps its id
CREATE TEMP TABLE adopted AS SELECT m.ext_id FROM recsys.id_map m JOIN (SELECT DISTINCT bundle_idx FROM recsys.bundle_items) b ON b.bundle_idx = m.idx WHERE m.space = 'bundle';
SELECT (recsys.refresh_features() ->> 'adopted_bundles')::int = (SELECT count(*) FROM adopted) AS same_count;
SELECT count(*) = (SELECT count(*) FROM adopted) AS all_kept FROM adopted a JOIN recsys.id_map m ON m.space = 'bundle' AND m.ext_id = a.ext_id
  JOIN (SELECT DISTINCT bundle_idx FROM recsys.bundle_items) b ON b.bundle_idx = m.idx;
-- the trained scorer serves: exactly k, the same reasons, scores of the scorer
SELECT count(*) AS k_rows, count(DISTINCT item_id) AS distinct_items FROM recommend_items(42, 10);
SELECT (recsys.model_info(v.weights) #>> '{config,layers,0}')::int AS features
  FROM recsys.model_versions v WHERE v.model = 'items';
-- the GRU over each customer's item sequence is one of them, attached to the served weights, over every item
SELECT recsys.model_info(recsys.item_encoder(v.weights)) ->> 'kind' AS encoder,
       (recsys.model_info(recsys.item_encoder(v.weights)) #>> '{config,vocab}')::int
         = (SELECT count(*) FROM recsys.id_map m WHERE m.space = 'item') AS every_item
  FROM recsys.model_versions v WHERE v.model = 'items';
-- its feature (the 10th) ranks each customer's candidates: it varies within a customer, in [-4, 0]; without an
-- encoder it is 0
SELECT count(*) FILTER (WHERE n > 1) > 0 AS varies_within_customers, bool_and(lo >= -4 AND hi <= 0) AS in_range
  FROM (SELECT s.user_idx, count(DISTINCT s.x[10]) AS n, min(s.x[10]) AS lo, max(s.x[10]) AS hi
          FROM recsys.item_samples(42, 0, (SELECT recsys.item_encoder(v.weights) FROM recsys.model_versions v
                                             WHERE v.model = 'items' AND v.status = 'active')) s
         GROUP BY s.user_idx) c;
SELECT bool_and(s.x[10] = 0) AS zero_without_encoder FROM recsys.item_samples(42, 0) s;
-- the GRU learns from the sequences without each customer's last basket, which the samples are labelled by
WITH e AS (SELECT user_idx, item_idx, ts, coalesce(basket_idx, -extract(epoch FROM date_trunc('day', ts))::bigint, 0) AS bk
             FROM recsys.events_clean),
     b AS (SELECT user_idx, bk, dense_rank() OVER (PARTITION BY user_idx ORDER BY min(ts) NULLS FIRST, bk) AS bno,
                  count(*) OVER (PARTITION BY user_idx) AS nb
             FROM e GROUP BY user_idx, bk),
     p AS (SELECT DISTINCT e.user_idx, e.item_idx, b.bno, b.nb FROM e JOIN b USING (user_idx, bk)),
     kept AS (SELECT user_idx, count(*) AS n FROM p WHERE nb < 2 OR bno < nb GROUP BY user_idx HAVING count(*) >= 2)
SELECT (SELECT sum(n) FROM kept) = (SELECT sum(cardinality(s.items)) FROM recsys.item_sequences(42, 0, 1000) s) AS sequences_held_out;
SELECT pg_temp.try($$SELECT recsys.item_attach(recsys.item_scorer_init(8, 1), recsys.item_scorer_init(8, 1))$$);
-- without an encoder, the scorer alone (what incremental training starts from): the GRU's tensors and config go
SELECT recsys.item_encoder(recsys.item_attach(v.weights, NULL)) IS NULL AS encoder_gone,
       (recsys.model_info(recsys.item_attach(v.weights, NULL)) #>> '{config,layers,0}')::int AS scorer_features,
       recsys.model_info(recsys.item_attach(v.weights, NULL)) -> 'config' ? 'encoder' AS config_keeps_encoder,
       recsys.item_attach(NULL, NULL) IS NULL AS null_scorer
  FROM recsys.model_versions v WHERE v.model = 'items' AND v.status = 'active';
-- the item model by name trains it alone: version 2 replaces version 1 (force)
CALL recsys.train('items', '{"max_epochs": 1, "force": true}');
SELECT string_agg(v.version_id || ':' || v.status, ' ' ORDER BY v.version_id) AS item_versions
  FROM recsys.model_versions v WHERE v.model = 'items';
-- the listwise scorer loss (a softmax over each customer's candidates, whole customers per mini-batch) trains the
-- blend too. Its epochs' losses are cross-entropies over a customer's candidates: above 1 here, where bce's
-- (each candidate on its own, most of them negatives) stayed near 0.1
CALL recsys.train('items', '{"max_epochs": 2, "force": true, "scorer_loss": "listwise"}');
SELECT v.version_id, v.status, count(r.loss) AS epochs,
       bool_and(r.loss > 1 AND r.loss < ln(1000)) AS softmax_losses,
       (SELECT max(b.loss) FROM recsys.training_runs b WHERE b.version_id = v.version_id - 1) < 0.5 AS bce_losses,
       (SELECT count(*) FROM recommend_items(42, 10)) AS served
  FROM recsys.model_versions v JOIN recsys.training_runs r USING (version_id)
 WHERE v.model = 'items' AND v.version_id = (SELECT max(version_id) FROM recsys.model_versions WHERE model = 'items')
 GROUP BY v.version_id, v.status;
-- a loss it does not know is refused before any work; mlp_train's rows are not grouped by customer, so no listwise
SELECT pg_temp.try($$SELECT recsys.train_options('{"scorer_loss": "hinge"}')$$);
SELECT pg_temp.try($$SELECT recsys.mlp_train(recsys.model_init('mlp', '{"layers": [2, 1]}', 1), ARRAY[1, 2]::real[], 1, '{"loss": "listwise"}')$$);
REVOKE ALL ON shop.order_lines FROM recsys_items_reader;
REVOKE ALL ON SCHEMA shop FROM recsys_items_reader;
DROP ROLE recsys_items_reader;
-- nothing to learn from: a clear error, and the version is marked failed (not left in training)
CREATE TABLE one_event (customer_id integer, product_id integer);
INSERT INTO one_event VALUES (1, 1001);
SELECT recsys.register_events('one_event', 'customer_id', 'product_id') ->> 'kind' AS events;
SELECT count(*) > 0 AS prepared FROM recsys.prepare();
\set VERBOSITY terse
CALL recsys.train('items');
\set VERBOSITY default
SELECT status, note FROM recsys.model_versions WHERE model = 'items' ORDER BY version_id DESC LIMIT 1;
-- events without time or basket are one basket: the customer's item comes back as theirs
SELECT rank, item_id, reason FROM recommend_items(1, 1);
-- one option vocabulary with recommend_bundles: exclude_taken is exclude_bought's other name
SELECT (SELECT array_agg(item_id ORDER BY rank) FROM recommend_items(1, 1, '{"exclude_taken": true}'))
       IS NOT DISTINCT FROM (SELECT array_agg(item_id ORDER BY rank) FROM recommend_items(1, 1, '{"exclude_bought": true}')) AS same_answer,
       (SELECT count(*) FROM recommend_items(1, 1, '{"exclude_taken": true}') WHERE item_id = 1001) AS own_item_returned;
SELECT pg_temp.try($$SELECT * FROM recommend_items(1, 1, '{"exclude_taken": true, "exclude_bought": false}')$$);
-- a training that fails past its start (here: every registered bundle names unknown items, so none is prepared)
-- marks its version failed with the error, instead of leaving it in training
CREATE TABLE ghost_bundles (bundle_id integer, product_id integer);
INSERT INTO ghost_bundles VALUES (1, 999998), (1, 999999);
SELECT recsys.register_bundles('ghost_bundles', 'bundle_id', 'product_id') ->> 'kind' AS bundles;
SELECT count(*) > 0 AS prepared FROM recsys.prepare();
\set VERBOSITY terse
CALL recsys.train('ghosts');
\set VERBOSITY default
SELECT status, note FROM recsys.model_versions WHERE model = 'ghosts' ORDER BY version_id DESC LIMIT 1;
SELECT count(*) AS left_in_training FROM recsys.model_versions WHERE status = 'training';
-- its progress shows the stage that failed, and why
SELECT stage, state, detail FROM recsys.training_progress WHERE model = 'ghosts' ORDER BY stage_id;
DELETE FROM recsys.sources WHERE kind = 'bundles';
DROP TABLE ghost_bundles;
DROP TABLE one_event;
