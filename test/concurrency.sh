#!/usr/bin/env bash
# The short variant of bench/concurrency.sh (8 s): no errors, no response mixing versions, and every backend
# serving the new version within a second of the activation's commit.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
DB=recsys_conc
setup_shop "$DB" 800 '{"max_epochs": 2, "gru_epochs": 0}'
ok $? "a trained version 1 to serve"
out=$(bash "$ROOT/bench/concurrency.sh" "$DB" 8 2>&1)
echo "$out" | sed 's/^/# /'
val() { sed -n "s/^$1 //p" <<<"$out" | head -1; }
[ "$(val transactions)" -gt 1000 ] 2>/dev/null; ok $? "8 clients served and logged ($(val transactions) transactions)"
is "$(val errors)" "0" "no client saw an error"
is "$(val mixed)" "0" "every response came from exactly one model version"
[ "$(val new_served)" -gt 0 ] 2>/dev/null; ok $? "the new version served $(val new_served) impressions"
[ "$(val switch_ms)" -lt 1000 ] 2>/dev/null; ok $? "no older version answered later than 1 s after the activation committed ($(val switch_ms) ms)"
[ "$(val feedback)" -gt 0 ] 2>/dev/null; ok $? "feedback was logged meanwhile ($(val feedback) rows)"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
tap_done
