-- recommend_bundles(): ranked rows with reasons, exact k, labelled cold start, argument checks.
\i test/regress_setup.psql

-- before any data: a clear error, not an empty answer
SELECT pg_temp.try($$SELECT * FROM recommend_bundles(1, 5)$$);

-- the small shop that the prepare test created in schema p (text user and bundle ids)
SELECT recsys.register_events('p.lines', 'cust', 'item', 'at', 'basket', 'qty') IS NOT NULL AS registered;
SELECT recsys.register_items('p.items', 'id', 'name', 'cat', 'price', 'stock') IS NOT NULL AS registered;
SELECT recsys.register_bundles('p.bundle_items', 'bid', 'item') IS NOT NULL AS registered;
SELECT recsys.register_bundle_events('p.bundle_orders', 'cust', 'bid', 'at') IS NOT NULL AS registered;
SELECT count(*) > 0 AS prepared FROM recsys.prepare();

-- ann took K1; bob took K1 and K2, so K2 comes through the bundle view
SELECT rank, bundle_id, items, round(score::numeric, 4) AS score, reason FROM recommend_bundles('ann', 3);
-- cy took K2 and K4; zed bought items that are in no bundle (popularity, labelled)
SELECT rank, bundle_id, items, round(score::numeric, 4) AS score, reason FROM recommend_bundles('cy', 10);
SELECT rank, bundle_id, items, round(score::numeric, 4) AS score, reason FROM recommend_bundles('zed', 2);
-- already taken bundles come back when asked
SELECT rank, bundle_id, reason FROM recommend_bundles('ann', 4, '{"exclude_taken": false}');
-- unknown user: popularity, labelled
SELECT rank, bundle_id, items, round(score::numeric, 4) AS score, reason FROM recommend_bundles('nobody', 2);
-- exactly k rows while k candidates exist; all of them when fewer
SELECT k, (SELECT count(*) FROM recommend_bundles('ann', k)) AS rows FROM generate_series(1, 5) k;
-- STRICT: a NULL user is an empty answer
SELECT count(*) AS rows_for_null_user FROM recommend_bundles(NULL::text, 3);

-- bad arguments
SELECT pg_temp.try($$SELECT * FROM recommend_bundles('ann', 0)$$);
SELECT pg_temp.try($$SELECT * FROM recommend_bundles('ann', -3)$$);
SELECT pg_temp.try($$SELECT * FROM recommend_bundles('ann', 1000000)$$);
SELECT pg_temp.try($$SELECT * FROM recommend_bundles('ann', 3, '{"exclude_taken": "yes"}')$$);
SELECT pg_temp.try($$SELECT * FROM recommend_bundles('ann', 3, '{"max_price": 3}')$$);
SELECT pg_temp.try($$SELECT * FROM recommend_bundles('ann', 3, '[]')$$);
-- text bundle ids cannot be returned as bigint: the error says what to call instead
SELECT pg_temp.try($$SELECT * FROM recommend_bundles(42, 3)$$);
SELECT 'session alive' AS still;
-- a shop that registers curated bundles but no bundle purchases: popularity comes from the items
DELETE FROM recsys.sources WHERE kind = 'bundle_events';
SELECT count(*) > 0 AS prepared FROM recsys.prepare();
SELECT rank, bundle_id, reason FROM recommend_bundles('nobody', 4);

-- bundles have names: a registered name column (any row of the bundle may carry it), else one built from the
-- items; a source (curated or mined) and a price (the items' sum); reasons name the bundle, not its id
CREATE TABLE p.named_bundles AS
SELECT bid, item, CASE WHEN bid = 'K1' THEN 'Starter kit' END AS title FROM p.bundle_items;
SELECT recsys.register_bundles('p.named_bundles', 'bid', 'item', 'title') ->> 'kind' AS registered;
SELECT recsys.register_bundle_events('p.bundle_orders', 'cust', 'bid', 'at') IS NOT NULL AS registered;
SELECT count(*) > 0 AS prepared FROM recsys.prepare();
SELECT b.ext_id AS bundle_id, a.name, a.source, a.price
  FROM recsys.bundle_attrs a JOIN recsys.id_map b ON b.space = 'bundle' AND b.idx = a.bundle_idx ORDER BY 1;
SELECT rank, bundle_id, reason FROM recommend_bundles('ann', 2);
SELECT pg_temp.try($$SELECT recsys.register_bundles('p.named_bundles', 'bid', 'item', 'nosuch')$$);
SELECT pg_temp.try($$SELECT recsys.adopt_mined_bundles(10, 'some')$$);
SELECT recsys.register_bundles('p.bundle_items', 'bid', 'item') IS NOT NULL AS registered_again;
