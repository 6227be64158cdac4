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
