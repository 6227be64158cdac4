#!/usr/bin/env bash
# Every test suite on a throwaway cluster; the last line is "N passed, N failed".
#   bash scripts/test.sh
# Installs Debian packages (as root), builds with -Werror under CI, then runs: the C unit
# tests of the core, pg_regress (sql/ + expected/), pgTAP (test/pgtap/), and the shell
# suites (test/*.sh). Each suite's own counts are added up; any failure exits 1.
source "$(dirname "$0")/lib.sh"
PORT=${RECSYS_TEST_PORT:-54329}
PASSED=0
FAILED=0
tally() { # SUITE PASSED FAILED
    PASSED=$((PASSED + $2)); FAILED=$((FAILED + $3))
    log "$1: $2 passed, $3 failed"
}
count() { grep -cE "$1" <<<"$2" || true; }

install_deps
[ "${CI:-}" = true ] && export RECSYS_WERROR=1
build_install
start_cluster "$PORT"
trap stop_cluster EXIT
set +e

# 1. C unit tests of the plain-C core
log "unit tests (test/unit)"
out=$(make -s -C "$RECSYS_ROOT" with_llvm=no unitcheck 2>&1)
echo "$out"
# two builds (float, and the double reference for gradient checks), one summary line each
p=$(sed -n 's/^unit[^:]*: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' <<<"$out" | awk '{s += $1} END {print s + 0}')
f=$(sed -n 's/^unit[^:]*: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' <<<"$out" | awk '{s += $1} END {print s + 0}')
if [ "$(grep -c '^unit[^:]*: [0-9]* passed' <<<"$out")" -ne 2 ]; then
    p=${p:-0}; f=$(( ${f:-0} + 1 )); echo "a unit runner did not finish"
fi
tally unit "$p" "$f"

# 2. pg_regress
log "pg_regress (sql/, expected/)"
out=$(make -C "$RECSYS_ROOT" with_llvm=no installcheck 2>&1)
echo "$out" | grep -E '^(test |     |ok |not ok |# )' || true
p=$(count '^(test|ok) .*\.\.\. ok' "$out")
f=$(count '^(test|not ok) .*\.\.\. FAILED' "$out")
if [ "$f" -gt 0 ] || ! grep -q 'tests passed' <<<"$out"; then
    [ -f "$RECSYS_ROOT/regression.diffs" ] && head -100 "$RECSYS_ROOT/regression.diffs"
    [ "$f" -gt 0 ] || f=1
fi
tally pg_regress "$p" "$f"

# 3. pgTAP
log "pgTAP (test/pgtap)"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS recsys_tap" -c "CREATE DATABASE recsys_tap" >/dev/null 2>&1
out=$(cd "$RECSYS_ROOT" && pg_prove -v -d recsys_tap test/pgtap/*.sql 2>&1)
rc=$?
# pg_cron runs jobs only in cron.database_name (postgres here): its suite runs there
out_cron=$(cd "$RECSYS_ROOT" && pg_prove -v -d postgres test/pgtap_cron/*.sql 2>&1)
rc_cron=$?
out="$out
$out_cron"
[ "$rc" -eq 0 ] && rc=$rc_cron
echo "$out" | grep -E '^(not ok|ok|#|.*\.\. |Files=|Result)' || true
p=$(count '^ok [0-9]' "$out")
f=$(count '^not ok [0-9]' "$out")
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
tally pgTAP "$p" "$f"

# 4. shell suites
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS recsys_shell" -c "CREATE DATABASE recsys_shell" \
     -c "\\c recsys_shell" -c "CREATE EXTENSION recsys" >/dev/null 2>&1
for t in "$RECSYS_ROOT"/test/*.sh; do
    [ "$(basename "$t")" = tap.sh ] && continue
    log "shell suite $(basename "$t")"
    out=$(bash "$t" recsys_shell 2>&1)
    rc=$?
    echo "$out"
    p=$(count '^ok [0-9]' "$out")
    f=$(count '^not ok [0-9]' "$out")
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    tally "$(basename "$t" .sh)" "$p" "$f"
done

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
