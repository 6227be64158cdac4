-- The embedded demo shop: deterministic, realistic shape, and the literal first query works.
\i test/regress_setup.psql
DROP SCHEMA IF EXISTS shop CASCADE;
DROP SCHEMA IF EXISTS shop_b CASCADE;
DROP SCHEMA IF EXISTS shop_c CASCADE;

SELECT recsys.demo_shop();
-- same seed, same shop; another seed, another shop
SELECT recsys.demo_shop('shop_b', register => false) <> recsys.demo_shop('shop_c', seed => 7, register => false) AS counts_differ_by_seed;
CREATE FUNCTION pg_temp.fingerprint(s name) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  EXECUTE format($q$SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
      SELECT format('o%%s,%%s,%%s,%%s', order_id, customer_id, ordered_at, status) x FROM %1$I.orders
      UNION ALL SELECT format('i%%s,%%s,%%s', order_id, product_id, quantity) FROM %1$I.order_items
      UNION ALL SELECT format('b%%s,%%s,%%s', customer_id, bundle_id, ordered_at) FROM %1$I.bundle_orders
      UNION ALL SELECT format('p%%s,%%s,%%s,%%s', product_id, name, price, stock) FROM %1$I.products) t$q$, s) INTO r;
  RETURN r;
END $$;
SELECT pg_temp.fingerprint('shop') = pg_temp.fingerprint('shop_b') AS same_seed_same_shop,
       pg_temp.fingerprint('shop') <> pg_temp.fingerprint('shop_c') AS other_seed_other_shop;
SELECT pg_temp.try($$SELECT recsys.demo_shop('shop')$$);
SELECT pg_temp.try($$SELECT recsys.demo_shop('shop_d', 3)$$);

-- shape
SELECT count(*) AS customers, count(DISTINCT city) AS cities FROM shop.customers;
SELECT count(*) AS products, count(DISTINCT category) AS categories, min(price) > 0 AS priced,
       count(*) FILTER (WHERE stock = 0) > 0 AS some_out_of_stock FROM shop.products;
SELECT min(ordered_at) >= '2026-05-01' AND max(ordered_at) < '2026-11-01' AS may_to_october,
       count(*) FILTER (WHERE status = 'cancelled') BETWEEN 150 AND 450 AS about_3pct_cancelled,
       count(*) FILTER (WHERE customer_id IS NULL) BETWEEN 40 AND 160 AS about_1pct_guests
  FROM shop.orders;
SELECT bool_and(n >= 1) AS every_order_has_lines FROM (SELECT count(oi.order_id) n FROM shop.orders o LEFT JOIN shop.order_items oi USING (order_id) GROUP BY o.order_id) x;
-- complementary categories: most smartphone baskets also hold a phone accessory
SELECT avg(((SELECT count(*) FROM shop.order_items a JOIN shop.products pa USING (product_id)
              WHERE a.order_id = oi.order_id AND pa.category IN ('Phone Case', 'Screen Protector', 'USB-C Charger', 'Wireless Earbuds')) > 0)::int) >= 0.6
       AS phone_baskets_with_accessories
  FROM shop.order_items oi JOIN shop.products p USING (product_id) WHERE p.category = 'Smartphone';
-- and customers stick to their tastes: a customer's orders mostly share one department
SELECT avg(top_share) > 0.6 AS customers_have_tastes FROM (
  SELECT customer_id, max(n)::float / sum(n) AS top_share
    FROM (SELECT customer_id, dept, count(*) n FROM shop.orders WHERE customer_id IS NOT NULL GROUP BY 1, 2) d
   GROUP BY customer_id HAVING sum(n) >= 3) t;
SELECT count(*) AS bundles, count(*) FILTER (WHERE name LIKE '%starter kit') AS starter_kits FROM shop.bundles;
SELECT count(DISTINCT customer_id) > 1500 AS many_bundle_buyers FROM shop.bundle_orders;

-- registered as the recsys sources; prepare drops the planted mess by rule
SELECT kind, relation FROM recsys.sources ORDER BY kind;
SELECT source, rule, rows > 0 AS some FROM recsys.prepare() WHERE rule NOT IN ('read', 'kept', 'new_ids') ORDER BY 1, 2;

-- the literal first query from the README, in the default search_path
SHOW search_path;
SELECT count(*) AS rows, count(DISTINCT bundle_id) AS distinct_bundles,
       bool_and(bundle_id IN (SELECT bundle_id FROM shop.bundles)) AS real_bundles,
       bool_and(items <@ ARRAY(SELECT product_id FROM shop.products)) AS real_products,
       bool_and(reason <> '') AS reasons
  FROM recommend_bundles(42, 10);
SELECT array_agg(rank ORDER BY rank) = ARRAY[1,2,3,4,5,6,7,8,9,10] AS ranks_1_to_10,
       bool_and(score IS NOT NULL) AS scored
  FROM recommend_bundles(42, 10);
-- no bundle the customer already bought comes back
SELECT count(*) AS already_bought_returned FROM recommend_bundles(42, 10) r
 WHERE r.bundle_id IN (SELECT bundle_id FROM shop.bundle_orders WHERE customer_id = 42);
SELECT rank, reason LIKE 'popular with all customers (new customer)%' AS labelled FROM recommend_bundles(-1, 3);
