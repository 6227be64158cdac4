#!/usr/bin/env bash
# How cost grows with the size of a shop: generates one (customers, products in categories, curated bundles, orders
# whose lines follow each customer's categories, staples they buy again and a skew to popular products; bundle
# orders from the customer's categories), registers it, and prints for each step its time and the peak memory of the
# backend that ran it (VmHWM), then serving p50/p99 of recommend_bundles and recommend_items for random customers.
#
#   bench/scale.sh SIZE [DATABASE]        SIZE: small | medium | large (default small; database default recsys_scale)
#     small   10,000 customers,   5,000 products,  1,000 bundles,    200,000 order lines
#     medium 100,000 customers,  20,000 products, 10,000 bundles,  2,000,000 order lines
#     large 1,000,000 customers, 100,000 products, 50,000 bundles, 20,000,000 order lines
# RECSYS_SCALE_SECONDS sets each serving run's length (default 10); RECSYS_SCALE_TRAIN_OPTIONS adds options to the
# bundle model's training (e.g. '{"dense_max": 0}' fits at low rank whatever the size); RECSYS_SCALE_NOTICES=1 prints
# each step's progress NOTICEs (prepare's and the features' steps, the training's stages and epochs) under it;
# RECSYS_SCALE_SERVE_ONLY=1 measures serving alone on the DATABASE a run of that SIZE left. A step that fails prints
# its error and the run goes on, so the table shows where a size stops. Runs as a superuser (it reads /proc for the
# backend's memory).
set -uo pipefail
SIZE=${1:-small}
DB=${2:-recsys_scale}
SECS=${RECSYS_SCALE_SECONDS:-10}
TRAIN_OPTIONS=${RECSYS_SCALE_TRAIN_OPTIONS:-\{\}}
MESSAGES=$([ "${RECSYS_SCALE_NOTICES:-0}" = 1 ] && echo notice || echo warning)
case "$SIZE" in
    small)  C=10000;   P=5000;   B=1000;  L=200000 ;;
    medium) C=100000;  P=20000;  B=10000; L=2000000 ;;
    large)  C=1000000; P=100000; B=50000; L=20000000 ;;
    *) echo "scale: SIZE is small, medium or large" >&2; exit 2 ;;
esac
SERVE_ONLY=${RECSYS_SCALE_SERVE_ONLY:-0}
if [ "$SERVE_ONLY" != 1 ]; then
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1 || exit 1
fi
WORK=$(mktemp -d /tmp/recsys_scale.XXXXXX)
chmod 777 "$WORK"
trap 'rm -rf "$WORK"' EXIT
FAILED=0

# one step in its own session: seconds and the backend's peak resident memory; the error when it fails
step() {  # label sql
    local t0 t1 out mem
    t0=$(date +%s.%N)
    out=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<SQL
SET client_min_messages = $MESSAGES;
$2
SELECT 'VmHWM ' || (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmHWM:\s+(\d+)'))[1];
SQL
)
    local rc=$?
    t1=$(date +%s.%N)
    mem=$(sed -n 's/^VmHWM \([0-9]*\)$/\1/p' <<<"$out" | tail -1)
    # the steps' progress NOTICEs (RECSYS_SCALE_NOTICES=1), indented under the step
    [ "$MESSAGES" = notice ] && grep '^NOTICE: ' <<<"$out" | sed 's/^NOTICE:  /      /'
    if [ $rc -eq 0 ]; then
        printf '%-34s %9.1f s   peak %7.0f MB\n' "$1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
               "$(awk -v m="${mem:-0}" 'BEGIN {print m / 1024}')"
    else
        FAILED=1
        printf '%-34s %9.1f s   FAILED: %s\n' "$1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" "$(grep -m1 -E "ERROR|FATAL|server closed" <<<"$out" || tail -1 <<<"$out")"
    fi
}

echo "scale $SIZE: $C customers, $P products, $B bundles, $L order lines"
if [ "$SERVE_ONLY" != 1 ]; then
step "generate the shop" "
CREATE EXTENSION IF NOT EXISTS recsys;
DROP SCHEMA IF EXISTS scale CASCADE;
CREATE SCHEMA scale;
-- deterministic uniform numbers in [0, 1) (inlined: no SET clause)
CREATE FUNCTION scale.u(stream integer, key bigint) RETURNS double precision LANGUAGE sql IMMUTABLE
AS \$\$ SELECT ((hashint8extended(\$2 * 1000003 + \$1, 42) >> 11) & 9007199254740991)::float8 / 9007199254740992.0 \$\$;
CREATE TABLE scale.products AS
SELECT p AS product_id, 'product ' || p AS name, 'category ' || (p % 50) AS category,
       round((2 + 200 * scale.u(1, p) ^ 2)::numeric, 2) AS price, CASE WHEN scale.u(2, p) < 0.05 THEN 0 ELSE 10 END AS stock
  FROM generate_series(0, $P - 1) p;
ALTER TABLE scale.products ADD PRIMARY KEY (product_id);
-- orders of 1 to 7 lines; a customer's lines follow their category, with staples bought again and popular products
CREATE TABLE scale.orders AS
SELECT o AS order_id, floor(scale.u(3, o) ^ 1.3 * $C)::bigint AS customer_id,
       timestamptz '2026-01-01' + (o::float8 / ($L / 4)) * interval '300 days' AS ordered_at,
       1 + floor(scale.u(4, o) * 7)::int AS n
  FROM generate_series(0, $L / 4 - 1) o;
CREATE TABLE scale.order_lines AS
SELECT DISTINCT o.order_id, o.customer_id, o.ordered_at,
       CASE WHEN scale.u(5, o.order_id * 8 + s) < 0.3
            THEN (hashint8(o.customer_id) & 49) + 50 * floor(scale.u(6, o.customer_id * 4 + s % 3) * least(20, $P / 50))::bigint
            ELSE CASE WHEN scale.u(7, o.order_id * 8 + s) < 0.7 THEN hashint8(o.customer_id) & 49
                      ELSE floor(scale.u(8, o.order_id * 8 + s) * 50)::bigint END
                 + 50 * floor(scale.u(9, o.order_id * 8 + s) ^ 3 * ($P / 50))::bigint END AS product_id
  FROM scale.orders o, generate_series(1, 7) s WHERE s <= o.n;
CREATE TABLE scale.bundle_items AS
SELECT DISTINCT b AS bundle_id, (b % 50) + 50 * floor(scale.u(10, b * 4 + j) ^ 2 * ($P / 50))::bigint AS product_id
  FROM generate_series(0, $B - 1) b, generate_series(1, 2 + (b % 3)) j;
CREATE TABLE scale.bundle_orders AS
SELECT DISTINCT o.customer_id, (hashint8(o.customer_id) & 49) + 50 * floor(scale.u(11, o.order_id) ^ 2 * ($B / 50))::bigint AS bundle_id,
       o.ordered_at
  FROM scale.orders o WHERE scale.u(12, o.order_id) < 0.1;
ANALYZE scale.products, scale.order_lines, scale.bundle_items, scale.bundle_orders;
SELECT recsys.register_events('scale.order_lines', 'customer_id', 'product_id', 'ordered_at', 'order_id');
SELECT recsys.register_items('scale.products', 'product_id', 'name', 'category', 'price', 'stock');
SELECT recsys.register_bundles('scale.bundle_items', 'bundle_id', 'product_id');
SELECT recsys.register_bundle_events('scale.bundle_orders', 'customer_id', 'bundle_id', 'ordered_at');"
step "recsys.prepare()" "SELECT count(*) FROM recsys.prepare();"
step "recsys.refresh_features()" "SELECT recsys.refresh_features();"
step "CALL recsys.train() (bundle model)" "CALL recsys.train('default', '{\"features\": false}'::jsonb || '$TRAIN_OPTIONS');"
step "CALL recsys.train('items')" "CALL recsys.train('items');"
fi

run() {  # label sql
    cat >"$WORK/$1.sql" <<SQL
\set uid random(0, $((C - 1)))
$2
SQL
    (cd "$WORK" && pgbench -n -M prepared -c 1 -T "$SECS" -l --log-prefix="$1" -f "$1.sql" "$DB" >"$1.out" 2>&1)
    if ! grep -q '^tps' "$WORK/$1.out"; then
        FAILED=1
        printf '%-34s FAILED: %s\n' "serving $1" "$(grep -m1 -i error "$WORK/$1.out")"
        return
    fi
    # the first call of the session (pgbench numbers calls from 1) loads the serving caches: reported apart, the
    # percentiles are the warm calls
    first=$(cat "$WORK"/"$1".[0-9]* | awk '$2 == 1 {printf "%.1f", $3 / 1e6}')
    read -r p50 p99 n < <(cat "$WORK"/"$1".[0-9]* | awk '$2 != 1 {print $3}' | sort -n |
        awk '{a[NR]=$1} END {if (NR == 0) print "0 0 0"; else {i = int(NR*0.5); j = int(NR*0.99); if (i < 1) i = 1; if (j < 1) j = 1;
                             printf "%.3f %.3f %d\n", a[i]/1000, a[j]/1000, NR}}')
    if [ "$n" -eq 0 ]; then
        printf '%-34s first call %s s; no warm call in %s s (raise RECSYS_SCALE_SECONDS)\n' "serving $1" "$first" "$SECS"
    else
        printf '%-34s p50 %6.3f ms   p99 %6.3f ms   (%d warm calls; the first, loading the caches: %s s)\n' \
               "serving $1" "$p50" "$p99" "$n" "$first"
    fi
}
run recommend_bundles "SELECT * FROM recommend_bundles(:uid::bigint, 10);"
run recommend_items "SELECT * FROM recommend_items(:uid::bigint, 10);"
exit $FAILED
