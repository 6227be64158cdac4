-- prepare(): cleaning rules with counts, dense id maps that only ever append.
\i test/regress_setup.psql

DROP SCHEMA IF EXISTS p CASCADE;
CREATE SCHEMA p;
CREATE TABLE p.items (id integer, name text, cat text, price numeric, stock integer);
INSERT INTO p.items VALUES (1, 'phone', 'phones', 500, 3), (2, 'case', 'cases', 20, 0), (3, 'charger', 'chargers', 25, 9),
  (4, 'laptop', 'laptops', 999, 1), (5, 'mouse', 'mice', 30, 5), (6, 'sleeve', 'bags', 40, 2),
  (6, 'sleeve again', 'bags', 40, 2), (NULL, 'ghost', 'x', 1, 1);
CREATE TABLE p.lines (cust text, item integer, at timestamptz, basket integer, qty integer);
INSERT INTO p.lines VALUES
  ('ann', 1, '2026-06-01', 1, 1), ('ann', 2, '2026-06-01', 1, 1), ('ann', 3, '2026-06-01', 1, 1),
  ('ann', 3, '2026-06-01', 1, 1),                      -- duplicate line
  ('bob', 1, '2026-06-02', 2, 1), ('bob', 2, '2026-06-02', 2, 1),
  ('bob', 4, '2026-07-02', 3, 1), ('bob', 5, '2026-07-02', 3, 1),
  ('cy', 4, '2026-06-03', 4, 1), ('cy', 5, '2026-06-03', 4, 1), ('cy', 6, '2026-06-03', 4, 1),
  ('cy', 6, '2026-08-03', 5, 1),                       -- a repeat purchase is kept
  ('dee', 99, '2026-06-04', 6, 1),                     -- unknown item
  (NULL, 1, '2026-06-05', 7, 1),                       -- guest checkout
  ('eve', 1, '2026-06-06', 8, 0);                      -- cancelled (weight 0)
CREATE TABLE p.bundle_items (bid text, item integer);
INSERT INTO p.bundle_items VALUES ('K1', 1), ('K1', 2), ('K1', 3), ('K2', 4), ('K2', 5), ('K2', 6),
  ('K3', 2), ('K3', 3), ('K3', 77), ('K4', 5), ('K4', 6);
CREATE TABLE p.bundle_orders (cust text, bid text, at timestamptz);
INSERT INTO p.bundle_orders VALUES ('ann', 'K1', '2026-06-01'), ('bob', 'K1', '2026-06-02'), ('bob', 'K2', '2026-07-02'),
  ('cy', 'K2', '2026-06-03'), ('cy', 'K4', '2026-06-09'), ('fay', 'K9', '2026-06-10'), ('fay', 'K2', '2026-06-10'),
  ('fay', 'K2', '2026-06-10');

-- bundle events need bundles
SELECT recsys.register_bundle_events('p.bundle_orders', 'cust', 'bid', 'at') IS NOT NULL AS registered;
SELECT pg_temp.try($$SELECT * FROM recsys.prepare()$$);

SELECT recsys.register_events('p.lines', 'cust', 'item', 'at', 'basket', 'qty') IS NOT NULL AS registered;
SELECT recsys.register_items('p.items', 'id', 'name', 'cat', 'price', 'stock') IS NOT NULL AS registered;
SELECT recsys.register_bundles('p.bundle_items', 'bid', 'item') IS NOT NULL AS registered;
SELECT * FROM recsys.prepare();

SELECT space, idx, ext_id FROM recsys.id_map ORDER BY space, idx;
SELECT * FROM recsys.events_clean ORDER BY user_idx, item_idx, ts;
SELECT * FROM recsys.user_bundles ORDER BY 1, 2;
SELECT * FROM recsys.item_attrs ORDER BY 1;
SELECT bundle_idx, n_items, n_users, item_popularity, round(pop_score::numeric, 6) AS pop_score FROM recsys.bundle_stats ORDER BY 1;

-- new ids append after the largest index; old ids keep theirs
CREATE TEMP TABLE map_before AS SELECT * FROM recsys.id_map;
INSERT INTO p.items VALUES (10, 'earbuds', 'audio', 80, 4), (7, 'cable', 'chargers', 9, 9);
INSERT INTO p.lines VALUES ('zed', 10, '2026-09-01', 9, 1), ('zed', 7, '2026-09-01', 9, 1), ('ann', 10, '2026-09-02', 10, 1);
SELECT source, rule, rows FROM recsys.prepare() WHERE rule IN ('new_ids', 'kept');
SELECT count(*) AS renumbered FROM map_before b JOIN recsys.id_map m USING (space, ext_id) WHERE m.idx <> b.idx;
SELECT space, idx, ext_id FROM recsys.id_map m
 WHERE NOT EXISTS (SELECT 1 FROM map_before b WHERE b.space = m.space AND b.ext_id = m.ext_id) ORDER BY 1, 2;
-- every run is logged
SELECT count(DISTINCT run_id) AS runs_logged FROM recsys.prepare_log;

-- the source is read in place: a view works, and a dropped source is a clear error
CREATE VIEW p.recent AS SELECT cust, item FROM p.lines WHERE at >= '2026-07-01';
SELECT recsys.register_events('p.recent', 'cust', 'item') IS NOT NULL AS registered;
SELECT source, rule, rows FROM recsys.prepare() WHERE source = 'events';
DROP VIEW p.recent;
SELECT regexp_replace(pg_temp.try($$SELECT * FROM recsys.prepare()$$), 'oid \d+', 'oid N') AS dropped_source;
