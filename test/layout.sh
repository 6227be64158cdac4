#!/usr/bin/env bash
# Layout, version-in-one-place and README agreement. Needs PGHOST/PGPORT/PGUSER and
# a database with recsys installed as $1 (for the reference check).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
cd "$ROOT"
DB=${1:-postgres}

for p in Makefile src sql expected test recsys.control README.md .ci/run bench; do
    [ -e "$p" ]; ok $? "layout: $p exists"
done
V=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" recsys.control)
[ -n "$V" ]; ok $? "control file names a default_version ($V)"
is "$(make -s --no-print-directory -f Makefile -f - print-version <<<'print-version: ; @echo $(EXTVERSION)' 2>/dev/null)" "$V" \
   "Makefile EXTVERSION is derived from the control file"
# the first release's base script, a chain of delta scripts from it to the control version, and the install
# script of the control version, built from sql/src/ (released scripts are committed; built ones are not)
BASE=$(awk '{print $2}' sql/RELEASED | grep -v -- '--.*--' | sort -V | head -1)
[ -f "$BASE" ]; ok $? "the first release's install script is here ($BASE)"
[ -f "sql/recsys--$V.sql" ] && ! git ls-files --error-unmatch "sql/recsys--$V.sql" >/dev/null 2>&1
ok $? "the install script of $V is built from sql/src/, not committed"
is "$(grep -c '^--@begin ' sql/src/*.sql | awk -F: '{s += $2} END {print s}')" "$(grep -c '^--@end$' sql/src/*.sql | awk -F: '{s += $2} END {print s}')" \
   "every --@begin block of sql/src/ has its --@end"
is "$(grep -ilE '^CREATE (OR REPLACE )?(FUNCTION|PROCEDURE|AGGREGATE)' sql/updates/*.sql)" "" \
   "upgrade sources carry no routine definition of their own: each comes from its sql/src/ file (--#include)"
from=$(sed -n 's/^sql\/recsys--\(.*\)\.sql$/\1/p' <<<"$BASE"); hops=0
while [ "$from" != "$V" ] && [ $hops -lt 50 ]; do
    next=$(ls sql/recsys--"$from"--*.sql 2>/dev/null | sed -n 's/^sql\/recsys--.*--\(.*\)\.sql$/\1/p')
    [ "$(wc -w <<<"$next")" = 1 ] || break
    from=$next; hops=$((hops + 1))
done
is "$from" "$V" "the upgrade scripts lead from the base script to $V in $hops step(s), one path"
for f in sql/recsys--*.sql; do
    case "$f" in
        *--*--*) head -3 "$f" | grep -q '^\\echo Use "ALTER EXTENSION recsys UPDATE'; ok $? "$f starts with the \\echo guard" ;;
        *) head -3 "$f" | grep -q '^\\echo Use "CREATE EXTENSION recsys"'; ok $? "$f starts with the \\echo guard" ;;
    esac
done
# a released script is frozen: a fix goes into the next upgrade script
sha256sum --quiet -c sql/RELEASED; ok $? "released scripts are unchanged (sql/RELEASED)"
for f in sql/recsys--*.sql; do
    grep -q " $f\$" sql/RELEASED || [[ "$f" == *"--$V.sql" ]]; ok $? "$f is released or is the script of the version in work"
done
TEST_CMD=$(grep -x 'bash scripts/test.sh' README.md | head -1)
[ -n "$TEST_CMD" ]; ok $? "README shows the test command"
grep -qx "exec $TEST_CMD" .ci/run; ok $? ".ci/run runs exactly the README test command"
DEMO_CMD=$(grep -x 'bash scripts/demo.sh' README.md | head -1)
[ -n "$DEMO_CMD" ]; ok $? "README shows the demo command"
want=$(scripts/reference.sh "$DB")
got=$(sed -n '/<!-- reference:start -->/,/<!-- reference:end -->/p' README.md | sed '1d;$d')
[ "$want" = "$got" ]; ok $? "README reference mirrors the COMMENT ON text (scripts/reference.sh --write updates it)"
if [ "$want" != "$got" ]; then diff <(echo "$want") <(echo "$got") | head -20 | sed 's/^/#   /'; fi
tap_done
