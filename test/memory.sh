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

# inputs a caller sizes: their peak (VmHWM) and what the backend keeps (VmRSS) stay bounded
out=$(psql -X -q -At -d "$DB" 2>&1 <<'SQL'
CREATE FUNCTION pg_temp.kb(field text) RETURNS bigint LANGUAGE sql AS
$$ SELECT substring(pg_read_file('/proc/self/status') FROM field || ':\s+(\d+) kB')::bigint $$;
SELECT count(*) FROM recommend_bundles('visitor', 10, '{"session": [1000]}');
SELECT pg_temp.kb('VmHWM');
-- 40,000 rows through an 8,192-wide layer: 1.3 GB of activations in one piece, chunks of 4 MB now
SELECT cardinality(recsys.mlp_forward(recsys.model_init('mlp', '{"layers": [1, 8192, 1]}', 1), array_fill(0.5::real, ARRAY[40000, 1])));
SELECT pg_temp.kb('VmHWM'), pg_temp.kb('VmRSS');
-- the longest session an option may hold, through the GRU, twenty times
SELECT sum(n) FROM (SELECT (SELECT count(*) FROM recommend_bundles('visitor', 10,
         jsonb_build_object('session', (SELECT jsonb_agg(1000 + (i * 7 + j) % 240) FROM generate_series(1, 1000) j)))) AS n
         FROM generate_series(1, 20) i) x;
SELECT pg_temp.kb('VmRSS');
SQL
)
hwm0=$(echo "$out" | sed -n 2p); rows=$(echo "$out" | sed -n 3p)
hwm1=$(echo "$out" | sed -n 4p | cut -d'|' -f1); rss0=$(echo "$out" | sed -n 4p | cut -d'|' -f2); rss1=$(echo "$out" | sed -n 6p)
echo "# mlp_forward of 40,000 rows through 8,192 units: $rows outputs, peak +$(( ${hwm1:-0} - ${hwm0:-0} )) kB"
[ "$rows" = "40000" ] && [ $(( ${hwm1:-0} - ${hwm0:-0} )) -lt 262144 ]
ok $? "mlp_forward on 40,000 rows x 8,192 units peaks below 256 MB more (it was 1.3 GB)"
echo "# 20 sessions of 1,000 items: VmRSS ${rss0} kB before, ${rss1} kB after"
[ -n "$rss0" ] && [ -n "$rss1" ] && [ $(( rss1 - rss0 )) -lt 20480 ]
ok $? "sessions of the most items an option holds leave the backend under 20 MB larger ($(( ${rss1:-0} - ${rss0:-0} )) kB)"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
tap_done
