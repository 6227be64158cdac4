#!/usr/bin/env bash
# 100,000 recommend_bundles calls in one backend grow its resident memory by less than 5 MB: the per-backend
# cache is built once, and every request's memory goes with its statement.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
DB=recsys_memory
setup_shop "$DB" 600 '{"max_epochs": 2, "gru_epochs": 1}'
ok $? "a trained model to serve"
out=$(psql -X -q -At -d "$DB" 2>&1 <<'SQL'
CREATE FUNCTION pg_temp.rss_kb() RETURNS bigint LANGUAGE sql AS
$$ SELECT substring(pg_read_file('/proc/self/status') FROM 'VmRSS:\s+(\d+) kB')::bigint $$;
CREATE FUNCTION pg_temp.serve(n int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE rows bigint := 0; c bigint;
BEGIN
    FOR i IN 1 .. n LOOP
        -- known customers, an unknown one, a session and filters: every serving path
        SELECT count(*) INTO c FROM recommend_bundles((i % 700)::bigint, 10,
            CASE i % 4 WHEN 0 THEN '{}' WHEN 1 THEN '{"max_price": 300}'
                       WHEN 2 THEN '{"session": [1000, 1001]}' ELSE '{"in_stock": true, "min_categories": 2}' END::jsonb);
        rows := rows + c;
    END LOOP;
    RETURN rows;
END $$;
SELECT pg_temp.serve(2000) > 0;
SELECT pg_temp.rss_kb();
SELECT pg_temp.serve(100000) > 0;
SELECT pg_temp.rss_kb();
SQL
)
before=$(echo "$out" | sed -n 2p)
after=$(echo "$out" | sed -n 4p)
echo "# VmRSS after warm-up ${before} kB, after 100,000 more calls ${after} kB"
[ -n "$before" ] && [ -n "$after" ] && [ $((after - before)) -lt 5120 ]
ok $? "100,000 calls grow the backend's RSS by less than 5 MB ($((${after:-0} - ${before:-0})) kB)"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
tap_done
