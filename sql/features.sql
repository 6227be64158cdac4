-- Item co-occurrence: counts, support, confidence and lift checked by hand on four baskets.
\i test/regress_setup.psql

DROP SCHEMA IF EXISTS f CASCADE;
CREATE SCHEMA f;
CREATE TABLE f.lines (customer text, item text, basket int);
-- baskets: 1 {phone, case, charger}, 2 {phone, case}, 3 {phone, charger, charger}, 4 {mug}
INSERT INTO f.lines VALUES ('a', 'phone', 1), ('a', 'case', 1), ('a', 'charger', 1),
  ('b', 'phone', 2), ('b', 'case', 2), ('c', 'phone', 3), ('c', 'charger', 3), ('c', 'charger', 3), ('d', 'mug', 4);
SELECT recsys.register_events('f.lines', 'customer', 'item', basket_column => 'basket') IS NOT NULL AS registered;
SELECT count(*) > 0 AS prepared FROM recsys.prepare();
CREATE TEMP VIEW named AS
SELECT a.ext_id AS a, b.ext_id AS b, p.together, round(p.support::numeric, 4) AS support,
       round(p.confidence::numeric, 4) AS confidence, round(p.lift::numeric, 4) AS lift
  FROM recsys.item_pairs(1) p
  JOIN recsys.id_map a ON a.space = 'item' AND a.idx = p.item_a
  JOIN recsys.id_map b ON b.space = 'item' AND b.idx = p.item_b;
-- by hand: 4 baskets; phone in 3, case in 2, charger in 2 (twice in basket 3 counts once), mug in 1
-- phone+case: together 2, support 2/4, confidence phone->case 2/3, case->phone 2/2, lift (2/3)/(2/4) = 4/3
SELECT * FROM named ORDER BY a, b;
-- min_count drops rare pairs; a one-item basket makes no pair
SELECT count(*) AS pairs_seen_twice FROM recsys.item_pairs(2);
SELECT count(*) AS pairs_with_mug FROM named WHERE 'mug' IN (a, b);
-- a basket over max_basket counts for the items but not for pairs
SELECT count(*) AS pairs_when_baskets_over_2_are_skipped FROM recsys.item_pairs(1, 2);
-- no basket column: each customer's history is one transaction
SELECT recsys.register_events('f.lines', 'customer', 'item') IS NOT NULL AS registered;
SELECT count(*) > 0 AS prepared FROM recsys.prepare();
SELECT * FROM named ORDER BY a, b LIMIT 2;
SELECT pg_temp.try($$SELECT * FROM recsys.item_pairs(0)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.item_pairs(1, 1)$$);
