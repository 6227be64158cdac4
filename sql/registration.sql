-- Registering the shop's own relations: validation names what is wrong; identifiers never reach SQL unquoted.
\i test/regress_setup.psql

CREATE SCHEMA reg;
CREATE TABLE reg.t (customer bigint, product text, at timestamptz, basket uuid, qty numeric, note jsonb,
                    "x""; DROP TABLE reg.t; --" bigint);
CREATE DOMAIN reg.sku AS text;
CREATE TABLE reg.catalog (sku reg.sku, title varchar(40), cat integer, price real, in_stock boolean);
CREATE SEQUENCE reg.seq;

SELECT recsys.register_events('reg.t', 'customer', 'product', 'at', 'basket', 'qty');
SELECT recsys.register_items('reg.catalog', 'sku', 'title', 'cat', 'price', 'in_stock');
SELECT recsys.register_bundles('reg.t', 'customer', 'product');
SELECT recsys.register_bundle_events('reg.t', 'customer', 'customer');
SELECT kind, relation, columns, column_types FROM recsys.sources ORDER BY kind;

-- missing relation, missing column, unusable type, not a table, NULL column
SELECT pg_temp.try($$SELECT recsys.register_events('reg.nosuch', 'customer', 'product')$$);
SELECT pg_temp.try($$SELECT recsys.register_events('reg.t', 'client', 'product')$$);
SELECT pg_temp.try($$SELECT recsys.register_events('reg.t', 'customer', 'product', 'qty')$$);
SELECT pg_temp.try($$SELECT recsys.register_events('reg.t', 'note', 'product')$$);
SELECT pg_temp.try($$SELECT recsys.register_items('reg.catalog', 'sku', 'cat')$$);
SELECT pg_temp.try($$SELECT recsys.register_items('reg.catalog', 'sku', stock_column => 'title')$$);
SELECT pg_temp.try($$SELECT recsys.register_events('reg.seq', 'a', 'b')$$);
SELECT pg_temp.try($$SELECT recsys.register_events('reg.t', NULL, 'product')$$);
SELECT pg_temp.try($$SELECT recsys.register_events(NULL, 'customer', 'product')$$);
-- a failed registration leaves the previous one in place
SELECT columns ->> 'user' AS user_column FROM recsys.sources WHERE kind = 'events';

-- hostile names: a column and a relation named like an injection are just names
SELECT pg_temp.try($$SELECT recsys.register_events('reg.t', 'x"; DROP TABLE reg.t; --', 'product')$$);
SELECT pg_temp.try($$SELECT recsys.register_events('reg.t', 'customer"; DROP TABLE reg.t; --', 'product')$$);
SELECT recsys.register_events('reg.t', 'x"; DROP TABLE reg.t; --', 'product') ->> 'columns' AS registered;
DELETE FROM recsys.sources WHERE kind <> 'events';
INSERT INTO reg.t ("x""; DROP TABLE reg.t; --", product) VALUES (7, 'p1'), (8, 'p1');
SELECT source, rule, rows FROM recsys.prepare() WHERE source = 'events' AND rule IN ('read', 'kept');
SELECT ext_id FROM recsys.id_map WHERE space = 'user' ORDER BY idx;
CREATE TABLE reg."x""; DROP TABLE reg.t; --" (u bigint, i bigint);
INSERT INTO reg."x""; DROP TABLE reg.t; --" VALUES (1, 10), (1, 11), (2, 10);
SELECT recsys.register_events('reg."x""; DROP TABLE reg.t; --"', 'u', 'i') ->> 'relation' AS registered;
SELECT source, rule, rows FROM recsys.prepare() WHERE rule IN ('read', 'kept');
SELECT to_regclass('reg.t') IS NOT NULL AS table_t_still_exists;

-- a registration follows a renamed relation (regclass), and prepare() without events is refused
ALTER TABLE reg."x""; DROP TABLE reg.t; --" RENAME TO renamed;
SELECT relation FROM recsys.sources WHERE kind = 'events';
DELETE FROM recsys.sources;
SELECT pg_temp.try($$SELECT * FROM recsys.prepare()$$);
