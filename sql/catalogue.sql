-- Features in C (sequences, item and customer profiles), mined bundles, and the item SRFs over them.
\i test/regress_setup.psql
DROP SCHEMA IF EXISTS shop CASCADE;
SELECT recsys.demo_shop(customers => 800) IS NOT NULL AS shop;
SELECT count(*) > 0 AS prepared FROM recsys.prepare();
SELECT recsys.refresh_features() ?& ARRAY['items', 'customers', 'item_pairs', 'mined_bundles'] AS refreshed;

-- sequences: at most max_len, the most recent, oldest first, equal to the events in time order
SELECT bool_and(cardinality(items) <= 5) AS capped,
       bool_and(cardinality(items) = cardinality(times)) AS aligned,
       bool_and((SELECT bool_and(t1 <= t2) FROM unnest(times[1:cardinality(times) - 1], times[2:]) AS x(t1, t2)) IS NOT FALSE) AS in_time_order
  FROM recsys.user_sequences(5);
SELECT s.items = (SELECT array_agg(item_idx ORDER BY ts, basket_idx, item_idx)
                    FROM (SELECT * FROM recsys.events_clean e WHERE e.user_idx = s.user_idx
                           ORDER BY ts DESC, basket_idx DESC, item_idx DESC LIMIT 5) last5) AS last_five_match
  FROM recsys.user_sequences(5) s WHERE s.user_idx = 7;
SELECT pg_temp.try($$SELECT * FROM recsys.user_sequences(0)$$);

-- item profiles agree with counts done in SQL; content = one-hot category + one-hot price band
SELECT bool_and(f.buyers = (SELECT count(*) FROM recsys.user_items ui WHERE ui.item_idx = f.item_idx)) AS buyers_match,
       bool_and(cardinality(f.content) = (SELECT count(DISTINCT category) FROM recsys.item_attrs) + 5) AS content_dims,
       bool_and((SELECT sum(c) FROM unnest(f.content) c) = 2) AS two_hot,
       min(f.price_band) AS min_band, max(f.price_band) AS max_band,
       bool_and(f.trend > 0) AS trend_positive
  FROM recsys.item_features f;
-- customer profiles: frequency is distinct orders, monetary is price times quantity
SELECT bool_and(uf.frequency = (SELECT count(DISTINCT basket_idx) FROM recsys.events_clean e WHERE e.user_idx = uf.user_idx)) AS frequency_match,
       bool_and(abs(uf.monetary - (SELECT sum(e.weight * a.price) FROM recsys.events_clean e JOIN recsys.item_attrs a USING (item_idx)
                                    WHERE e.user_idx = uf.user_idx)) < 1e-6 * uf.monetary) AS monetary_match,
       bool_and(abs((SELECT sum(v::float8) FROM jsonb_each_text(uf.category_affinity) AS j(k, v)) - 1) < 0.01) AS affinity_sums_to_1
  FROM recsys.user_features uf;

-- mined bundles: every one bought together by at least min_customers distinct customers, recounted here
SELECT count(*) > 0 AS mined,
       bool_and(m.customers >= 5 AND m.lift >= 1.5) AS thresholds,
       bool_and(m.customers = (SELECT count(DISTINCT b.user_idx) FROM
                                 (SELECT basket_idx, min(user_idx) AS user_idx, array_agg(item_idx) AS items
                                    FROM recsys.events_clean GROUP BY basket_idx) b
                                WHERE b.items @> m.items)) AS recount_matches
  FROM recsys.mined_bundles m;
SELECT recsys.mine_bundles('{"cross_category": true, "min_customers": 8}') > 0 AS mined_again;
SELECT bool_and(categories >= 2) AS all_cross_category, bool_and(customers >= 8) AS at_least_8 FROM recsys.mined_bundles;
SELECT pg_temp.try($$SELECT recsys.mine_bundles('{"min_customers": 1}')$$);
SELECT pg_temp.try($$SELECT recsys.mine_bundles('{"size": 3}')$$);

-- similar_items: association rules first, by confidence and lift
SELECT rank, item_id, reason ~ '^bought together in \d+ orders \(lift [0-9.]+\)$' AS rule_reason
  FROM similar_items(1001, 3) ORDER BY rank;
SELECT pg_temp.try($$SELECT * FROM similar_items(424242, 3)$$);

-- complete_bundle: never the cart's own items, exact k, reasons by tier
SELECT count(*) AS k_rows, bool_and(item_id <> 1001) AS not_in_cart,
       bool_and(reason ~ '^(completes a set bought together by|bought together with|popular)') AS reasons
  FROM complete_bundle(ARRAY[1001]::bigint[], 8);
SELECT bool_and((SELECT price FROM shop.products p WHERE p.product_id = c.item_id) <= 20) AS under_cap, count(*) AS k_rows
  FROM complete_bundle(ARRAY[1001]::bigint[], 5, '{"max_price": 20}') c;
SELECT pg_temp.try($$SELECT * FROM complete_bundle('{}'::text[], 3)$$);
SELECT pg_temp.try($$SELECT * FROM complete_bundle(ARRAY['1001'], 3, '{"colour": 1}')$$);

-- recommend_items: exact k, nothing already bought when asked, filters before the cut; unknown customer: popular,
-- labelled (a superuser, as recsys_app, gets what the model ranks by default, repeat purchases included)
SELECT count(*) AS k_rows,
       bool_and(NOT EXISTS (SELECT 1 FROM shop.order_lines o WHERE o.customer_id = 42 AND o.product_id = r.item_id)) AS none_bought
  FROM recommend_items(42, 10, '{"exclude_bought": true}') r;
SELECT count(*) AS k_rows, bool_and((SELECT stock > 0 FROM shop.products p WHERE p.product_id = r.item_id)) AS in_stock
  FROM recommend_items(42, 10, '{"in_stock": true}') r;
SELECT count(*) AS k_rows, bool_and(reason LIKE 'popular (new customer):%') AS popular FROM recommend_items(-1, 4);

-- a product added today: no sales, yet content features give it neighbours and a place in its category
INSERT INTO shop.products (product_id, name, category, dept, brand, line, price, stock, created_at)
SELECT 99999, 'Nova Max Phone Case', category, dept, brand, line, price, 10, now() FROM shop.products WHERE product_id = 1001;
SELECT count(*) > 0 AS prepared_again FROM recsys.prepare();
SELECT (recsys.refresh_features() ->> 'items')::int AS items;
SELECT rank, item_id, reason FROM similar_items(99999, 3) ORDER BY rank;
SELECT r.reason LIKE 'new in Phone Case%' AS labelled_new
  FROM recommend_items((SELECT u.ext_id FROM recsys.id_map u JOIN recsys.user_features f ON f.user_idx = u.idx
                         WHERE u.space = 'user' AND f.top_category = 'Phone Case' ORDER BY u.idx LIMIT 1), 240) r
 WHERE r.item_id = '99999';
SELECT 'session alive' AS still;
