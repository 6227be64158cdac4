#!/usr/bin/env bash
# Loads the Ta-Feng next-basket data (../shared/datasets/tafeng: history.json, future_dev.json) into ordinary
# shop-like tables and registers them through the recsys entry points, as the data set's README says: one event
# row per item of a basket, the basket's index as its order id, its position as a synthetic day. PostgreSQL
# parses the JSON (no other tool needed).
#
#   bench/load_tafeng.sh DIR [DATABASE] [SCHEMA]       (defaults: postgres tafeng)
# Creates SCHEMA with order_lines (customer_id, order_id, day, item_id), products (item_id) and next_basket
# (customer_id, item_id: the known next baskets, for scoring; never registered). Connection from PGHOST/PGPORT/PGUSER.
set -euo pipefail
DIR=${1:?usage: load_tafeng.sh DIR [DATABASE] [SCHEMA]}
DB=${2:-postgres}
SCHEMA=${3:-tafeng}
for f in history.json future_dev.json; do
    [ -r "$DIR/$f" ] || { echo "load_tafeng: $DIR/$f is missing" >&2; exit 2; }
done
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -v schema="$SCHEMA" -v schema_q="$(printf '"%s"' "${SCHEMA//\"/\"\"}")" \
     -v history_file="$DIR/history.json" -v future_file="$DIR/future_dev.json" >/dev/null <<'SQL'
SET client_min_messages = warning;
-- the files' text in psql variables (shell-quoted paths inside the backquotes)
\set history `cat :'history_file'`
\set future `cat :'future_file'`
CREATE EXTENSION IF NOT EXISTS recsys;
DROP SCHEMA IF EXISTS :"schema" CASCADE;
CREATE SCHEMA :"schema";
SET search_path = :"schema", public;
-- baskets in time order per customer; the leading [-1] is a marker, not a basket
CREATE TABLE order_lines AS
SELECT h.key::integer AS customer_id, h.key::bigint * 1000 + b.n - 1 AS order_id,
       timestamptz '2000-01-01' + (b.n - 1) * interval '1 day' AS day, i.value::integer AS item_id
  FROM jsonb_each(:'history'::jsonb) h,
       jsonb_array_elements(h.value) WITH ORDINALITY AS b(basket, n),
       jsonb_array_elements_text(b.basket) i
 WHERE b.n > 1 AND i.value::integer >= 0;
CREATE INDEX ON order_lines (customer_id);
CREATE TABLE products AS SELECT DISTINCT item_id FROM order_lines;
ALTER TABLE products ADD PRIMARY KEY (item_id);
CREATE TABLE next_basket AS
SELECT DISTINCT f.key::integer AS customer_id, i.value::integer AS item_id
  FROM jsonb_each(:'future'::jsonb) f,
       jsonb_array_elements(f.value) WITH ORDINALITY AS b(basket, n),
       jsonb_array_elements_text(b.basket) i
 WHERE i.value::integer >= 0;
ANALYZE;
SELECT recsys.register_events(:'schema_q' || '.order_lines', 'customer_id', 'item_id', 'day', 'order_id');
SELECT recsys.register_items(:'schema_q' || '.products', 'item_id');
SELECT count(*) FROM recsys.prepare();
SQL
psql -X -At -d "$DB" -v schema="$SCHEMA" <<'SQL'
SELECT format('loaded %s: %s order lines of %s customers over %s products; %s known next baskets',
              :'schema', (SELECT count(*) FROM :"schema".order_lines), (SELECT count(DISTINCT customer_id) FROM :"schema".order_lines),
              (SELECT count(*) FROM :"schema".products), (SELECT count(DISTINCT customer_id) FROM :"schema".next_basket));
SQL
