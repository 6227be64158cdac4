# Minimal TAP helpers for the shell suites (sourced). Each check prints "ok"/"not ok".
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
TAP_N=0
TAP_FAILED=0
ok() { # ok CONDITION_EXIT_CODE DESCRIPTION
    TAP_N=$((TAP_N + 1))
    if [ "$1" -eq 0 ]; then echo "ok $TAP_N - $2"; else echo "not ok $TAP_N - $2"; TAP_FAILED=$((TAP_FAILED + 1)); fi
}
is() { # is GOT EXPECTED DESCRIPTION
    if [ "$1" = "$2" ]; then ok 0 "$3"; else ok 1 "$3"; echo "#   got:      $1" ; echo "#   expected: $2"; fi
}
tap_done() { echo "1..$TAP_N"; [ "$TAP_FAILED" -eq 0 ]; }
# setup_shop DB CUSTOMERS [TRAIN_OPTIONS]: a fresh database with recsys, the demo shop prepared and, when
# training options are given, CALL recsys.train('default', TRAIN_OPTIONS) done. Returns psql's status.
setup_shop() {
    local db=$1 customers=$2 train=${3:-}
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null || return 1
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null 2>&1 <<SQL
CREATE EXTENSION recsys;
SELECT recsys.demo_shop(customers => $customers);
SELECT count(*) FROM recsys.prepare();
${train:+CALL recsys.train('default', '$train');}
SQL
}
