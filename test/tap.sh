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

# cancel_ms DB PID: pg_cancel_backend(PID), then prints the milliseconds until that backend is no longer active
cancel_ms() {
    local db=$1 pid=$2 t0
    t0=$(date +%s%N)
    psql -X -At -d "$db" -c "SELECT pg_cancel_backend($pid)" >/dev/null 2>&1
    for _ in $(seq 1 200); do
        [ "$(psql -X -At -d "$db" -c "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND state = 'active'" 2>/dev/null)" = "0" ] && break
        sleep 0.01
    done
    echo $(( ($(date +%s%N) - t0) / 1000000 ))
}
