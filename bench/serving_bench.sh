#!/usr/bin/env bash
# Serving benchmark: pgbench, 2 clients, prepared mode, random users of the catalogue.
# recommend_bundles(uid, 10) against a lookup of a precomputed top-10 table (same
# columns, index on (user_id, rank), clustered), in the same run. Prints TPS, p50 and
# p99 latency of each and the ratio.
#
#   bench/serving_bench.sh [DATABASE] [SECONDS]      (defaults: postgres 20)
# Needs integer user ids 0..N-1 (Youshu: bench/load_youshu.sh) and a trained model
# (CALL recsys.train(), or bench/youshu_quality.sh).
set -euo pipefail
DB=${1:-postgres}
SECS=${2:-20}
WORK=$(mktemp -d /tmp/recsys_serving.XXXXXX)
chmod 777 "$WORK"
trap 'rm -rf "$WORK"' EXIT
# user ids are drawn from 0..max; the few ids without events get the popularity tier, as they would live
NUSERS=$(psql -X -At -d "$DB" -c "SELECT max(ext_id::bigint) + 1 FROM recsys.id_map WHERE space = 'user'")
echo "precomputing the top-10 table for $NUSERS users"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_top10;
CREATE TABLE bench_top10 AS
SELECT u.ext_id::bigint AS user_id, r.rank, r.bundle_id, r.items, r.score, r.reason
  FROM generate_series(0, (SELECT max(ext_id::bigint) FROM recsys.id_map WHERE space = 'user')) u(ext_id),
       recommend_bundles(u.ext_id, 10) r;
CREATE INDEX bench_top10_user ON bench_top10 (user_id, rank);
CLUSTER bench_top10 USING bench_top10_user;
VACUUM ANALYZE bench_top10;
SQL
cat >"$WORK/lookup.sql" <<SQL
\set uid random(0, $((NUSERS - 1)))
SELECT rank, bundle_id, items, score, reason FROM bench_top10 WHERE user_id = :uid ORDER BY rank;
SQL
cat >"$WORK/serve.sql" <<SQL
\set uid random(0, $((NUSERS - 1)))
SELECT rank, bundle_id, items, score, reason FROM recommend_bundles(:uid::bigint, 10);
SQL
run() {  # name script
    (cd "$WORK" && pgbench -n -M prepared -c 2 -j 2 -T "$SECS" -l --log-prefix="$1" -f "$2" "$DB" >"$1.out" 2>&1)
    local tps p50 p99
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$WORK/$1.out" | head -1)
    read -r p50 p99 < <(cat "$WORK"/"$1".* | awk '{print $3}' | sort -n |
        awk '{a[NR]=$1} END {printf "%.3f %.3f\n", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}')
    printf '%-28s %10.0f TPS   p50 %6.3f ms   p99 %6.3f ms\n' "$1" "$tps" "$p50" "$p99"
    echo "$tps" >"$WORK/$1.tps"
}
run lookup "$WORK/lookup.sql"
run recommend_bundles "$WORK/serve.sql"
awk -v a="$(cat "$WORK/recommend_bundles.tps")" -v b="$(cat "$WORK/lookup.tps")" \
    'BEGIN {printf "recommend_bundles / precomputed lookup: %.1f%% of its TPS\n", 100 * a / b}'
