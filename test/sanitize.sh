#!/usr/bin/env bash
# Sanitizers. (1) The pg_regress suites on a server that loads a UBSan build of recsys (make RECSYS_SANITIZE=undefined,
# every check fatal): the server runs from a relocated copy of the postgres binary whose $libdir holds that build, so
# the cluster under test and every other one keep the normal module. (2) The C unit tests of the core built with
# AddressSanitizer and UBSan. No sanitizer report may appear. AddressSanitizer in the server itself is not run here:
# preloading libasan into Debian's postgres deadlocks before main (libgpg-error's constructor holds glibc's
# _nl_state_lock when its malloc starts ASan, whose initialisation takes it again); see README "Sanitizers".
# Own cluster on port 54346; needs root (runuser).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
PGBIN=/usr/lib/postgresql/15/bin
PORT=54346
if [ "$(id -u)" -ne 0 ]; then
    echo "# not root: this suite starts its own cluster as user postgres; skipped"
    ok 0 "skipped (not root)"; tap_done; exit 0
fi
WORK=$(mktemp -d /tmp/recsys_sanitize.XXXXXX)
chmod 755 "$WORK"
DATA=$WORK/data
stop() { [ -f "$DATA/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1; rm -rf "$WORK"; }
trap stop EXIT

# a copy of the tree, built with UBSan
SRC=$WORK/src
mkdir -p "$SRC" && (cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$SRC")
make -s -C "$SRC" with_llvm=no RECSYS_SANITIZE=undefined >"$WORK/build.log" 2>&1
ok $? "make RECSYS_SANITIZE=undefined builds the module"

# the relocated server: PostgreSQL finds $libdir relative to its executable
REL=$WORK/usr/lib/postgresql/15
mkdir -p "$REL/bin" "$REL/lib" "$WORK/usr/share"
cp "$PGBIN/postgres" "$REL/bin/"
for f in "$($PGBIN/pg_config --pkglibdir)"/*; do ln -s "$f" "$REL/lib/"; done
rm -f "$REL/lib/recsys.so" && cp "$SRC/recsys.so" "$REL/lib/recsys.so"
ln -s /usr/share/postgresql "$WORK/usr/share/postgresql"
mkdir -p "$WORK/reports" "$DATA" && chown postgres "$WORK/reports" "$DATA" && chmod 700 "$DATA" && chmod -R a+rX "$WORK/usr"
runuser -u postgres -- "$PGBIN/initdb" -D "$DATA" -U postgres -A trust --no-sync >/dev/null 2>&1
cat >>"$DATA/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '/tmp'
fsync = off
CONF
runuser -u postgres -- env UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$WORK/reports/ubsan" \
    "$PGBIN/pg_ctl" -p "$REL/bin/postgres" -D "$DATA" -l "$DATA/server.log" -w -t 60 start >/dev/null 2>&1
ok $? "a cluster on port $PORT runs the relocated server"
export PGHOST=/tmp PGPORT=$PORT PGUSER=postgres
maps=$(psql -X -At -d postgres -c "CREATE EXTENSION IF NOT EXISTS recsys" -c "SELECT recsys.version()" \
       -c "SELECT string_agg(DISTINCT regexp_replace(l, '^.* ', ''), ' ') FROM regexp_split_to_table(pg_read_file('/proc/self/maps'), E'\n') l WHERE l ~ '(recsys\.so|libubsan)'" 2>&1 | tail -1)
[[ "$maps" == *"$REL/lib/recsys.so"* && "$maps" == *libubsan* ]]; ok $? "its backends load the UBSan build of recsys ($maps)"
psql -X -q -d postgres -c "DROP EXTENSION recsys" >/dev/null 2>&1

out=$(make -C "$SRC" with_llvm=no installcheck 2>&1)
p=$(grep -cE '^(test|ok) .*\.\.\. ok' <<<"$out"); f=$(grep -cE '^(test|not ok) .*\.\.\. FAILED' <<<"$out")
[ "$f" -eq 0 ] && grep -q 'tests passed' <<<"$out"; ok $? "pg_regress under UBSan: $p suites passed, $f failed"
[ "$f" -eq 0 ] || head -60 "$SRC/regression.diffs" 2>/dev/null
reports=$(cat "$WORK"/reports/* 2>/dev/null; grep -h "runtime error" "$DATA/server.log")
[ -z "$reports" ]; ok $? "no UBSan report from the server"
[ -z "$reports" ] || head -30 <<<"$reports" | sed 's/^/#   /'
grep -q "terminated by signal\|server process .* exited with exit code [^0]" "$DATA/server.log"
ok $((1 - $?)) "no backend died during the suites"

# the numeric core and the weights format under ASan + UBSan
out=$(make -s -C "$SRC" with_llvm=no unitcheck OPTFLAGS="-O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" 2>&1)
rc=$?
grep -E '^unit' <<<"$out" | sed 's/^/# /'
[ $rc -eq 0 ] && ! grep -qE "ERROR: AddressSanitizer|runtime error" <<<"$out"; ok $? "C unit tests under ASan + UBSan pass with no report"
[ $rc -eq 0 ] || grep -E "AddressSanitizer|runtime error|failed" <<<"$out" | head -10 | sed 's/^/#   /'
tap_done
