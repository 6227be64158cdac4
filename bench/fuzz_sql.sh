#!/usr/bin/env bash
# SQL-level fuzzing of the entry points that take caller-shaped JSON and arrays (model_pack, model_init,
# mlp_forward, the serving functions' options, the training option parser, rank_metrics), as a superuser and as a
# recsys_reader login, on a demo shop with a trained model. test/fuzz/fuzz_sql.sql says what counts as a finding.
#   bash bench/fuzz_sql.sh DATABASE [SECONDS_PER_ROLE] [SEED]     (needs PGHOST/PGPORT/PGUSER; DATABASE is recreated)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
DB=$1; SECS=${2:-60}; SEED=${3:-0.42}
setup_shop "$DB" 300 '{"max_epochs": 2, "gru_epochs": 1}' || { echo "fuzz_sql: could not set up $DB"; exit 1; }
psql -X -q -d "$DB" -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'recsys_fuzz_reader') THEN
                          CREATE ROLE recsys_fuzz_reader; END IF; END \$\$; GRANT recsys_reader TO recsys_fuzz_reader" >/dev/null
status=0
for role in "$PGUSER" recsys_fuzz_reader; do
    out=$(cd "$ROOT" && psql -X -q -d "$DB" -v iterations=100000000 -v seed="$SEED" -v seconds="$SECS" -v role="$role" \
          -f test/fuzz/fuzz_sql.sql 2>&1)
    rc=$?
    echo "$out" | sed "s/^/# [$role] /" | cut -c1-220
    line=$(grep -o 'fuzz_sql: .*' <<<"$out")
    if [ $rc -ne 0 ] || [ -z "$line" ] || [[ "$line" != *"unexpected: 0" ]]; then status=1; fi
    echo "fuzz_sql as $role: ${line:-no summary (the backend died?)}"
done
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
exit $status
