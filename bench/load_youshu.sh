#!/usr/bin/env bash
# Loads a directory in the Youshu format into ordinary shop-like tables and
# registers them through the recsys entry points. Not a copy into recsys: the
# tables are the "shop", recsys reads them in place.
#
#   bench/load_youshu.sh DIR [DATABASE] [SCHEMA]
#
# DIR holds tab-separated 0-based pairs: user_bundle_train.txt, user_bundle_tune.txt,
# user_item.txt, bundle_item.txt, Youshu_data_size.txt ("users bundles items"), and
# optionally user_bundle_test.txt. Connection settings come from PGHOST/PGPORT/PGUSER.
# Creates SCHEMA (default youshu) with items, bundle_item, user_item,
# user_bundle_train, user_bundle_tune and, when present, user_bundle_test.
set -euo pipefail
DIR=${1:?usage: load_youshu.sh DIR [DATABASE] [SCHEMA]}
DB=${2:-postgres}
SCHEMA=${3:-youshu}
for f in Youshu_data_size.txt bundle_item.txt user_item.txt user_bundle_train.txt user_bundle_tune.txt; do
    [ -r "$DIR/$f" ] || { echo "load_youshu: $DIR/$f is missing" >&2; exit 2; }
done
read -r N_USERS N_BUNDLES N_ITEMS < "$DIR/Youshu_data_size.txt"
TEST=0
[ -r "$DIR/user_bundle_test.txt" ] && TEST=1

{
    echo "\\set ON_ERROR_STOP 1"
    echo "SET client_min_messages = warning;"
    echo "CREATE EXTENSION IF NOT EXISTS recsys;"
    echo "DROP SCHEMA IF EXISTS :\"schema\" CASCADE;"
    echo "CREATE SCHEMA :\"schema\";"
    echo "SET search_path = :\"schema\", public;"
    echo "CREATE TABLE items (item_id integer PRIMARY KEY);"
    echo "INSERT INTO items SELECT generate_series(0, $N_ITEMS - 1);"
    echo "CREATE TABLE bundles (bundle_id integer PRIMARY KEY);"
    echo "INSERT INTO bundles SELECT generate_series(0, $N_BUNDLES - 1);"
    echo "CREATE TABLE users (user_id integer PRIMARY KEY);"
    echo "INSERT INTO users SELECT generate_series(0, $N_USERS - 1);"
    echo "CREATE TABLE bundle_item (bundle_id integer NOT NULL, item_id integer NOT NULL);"
    echo "CREATE TABLE user_item (user_id integer NOT NULL, item_id integer NOT NULL);"
    for split in train tune test; do
        [ "$split" = test ] && [ "$TEST" = 0 ] && continue
        echo "CREATE TABLE user_bundle_$split (user_id integer NOT NULL, bundle_id integer NOT NULL);"
    done
    echo "\\copy bundle_item FROM '$DIR/bundle_item.txt'"
    echo "\\copy user_item FROM '$DIR/user_item.txt'"
    for split in train tune test; do
        [ "$split" = test ] && [ "$TEST" = 0 ] && continue
        echo "\\copy user_bundle_$split FROM '$DIR/user_bundle_$split.txt'"
        echo "CREATE INDEX ON user_bundle_$split (user_id);"
    done
    echo "ANALYZE;"
    echo "SELECT recsys.register_events(:'schema_q' || '.user_item', 'user_id', 'item_id');"
    echo "SELECT recsys.register_items(:'schema_q' || '.items', 'item_id');"
    echo "SELECT recsys.register_bundles(:'schema_q' || '.bundle_item', 'bundle_id', 'item_id');"
    echo "SELECT recsys.register_bundle_events(:'schema_q' || '.user_bundle_train', 'user_id', 'bundle_id');"
    echo "SELECT source, rule, rows FROM recsys.prepare() WHERE rows > 0;"
} | psql -X -q -v schema="$SCHEMA" -v schema_q="$(printf '"%s"' "${SCHEMA//\"/\"\"}")" -d "$DB" -f - >/dev/null

psql -X -At -d "$DB" -v schema="$SCHEMA" <<'SQL'
SELECT format('loaded %s: %s bundle_item, %s user_item, %s train, %s tune%s rows',
              :'schema',
              (SELECT count(*) FROM :"schema".bundle_item), (SELECT count(*) FROM :"schema".user_item),
              (SELECT count(*) FROM :"schema".user_bundle_train), (SELECT count(*) FROM :"schema".user_bundle_tune),
              CASE WHEN to_regclass(format('%I.user_bundle_test', :'schema')) IS NOT NULL THEN ' and test' ELSE ' (no test split)' END);
SQL
