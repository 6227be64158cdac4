#!/usr/bin/env bash
# libFuzzer (clang) on the weights parser and the core's entry points, with AddressSanitizer.
#   bash bench/fuzz.sh [SECONDS_PER_HARNESS]        (default 60; the test command runs a 5 s smoke)
# Prints the executions per harness; a crash stops with the reproducer under /tmp/recsys-fuzz/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-60}
OUT=/tmp/recsys-fuzz
mkdir -p "$OUT"
CC=${FUZZ_CC:-$(command -v clang || command -v clang-14)}
PGINC=$(pg_config --includedir-server)
BLAS=$(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
COMMON="-g -O1 -Wno-ignored-attributes -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$ROOT/src -I$PGINC $BLAS"
LIBS="$(pg_config --pkglibdir)/libpgcommon.a $(pg_config --pkglibdir)/libpgport.a -lopenblas -lm"
CORE="$ROOT/src/core/rs_core.c $ROOT/src/core/rs_mlp.c $ROOT/src/core/rs_optim.c $ROOT/src/core/rs_loss.c $ROOT/src/core/rs_bundle.c $ROOT/src/core_host.c"
$CC $COMMON -o "$OUT/fuzz_format" "$ROOT/test/fuzz/fuzz_format.c" "$ROOT/src/core/rs_format.c" "$ROOT/src/core/rs_core.c" "$ROOT/src/core_host.c" $LIBS
$CC $COMMON -o "$OUT/fuzz_core" "$ROOT/test/fuzz/fuzz_core.c" $CORE $LIBS
# seeds for the parser: valid weights (a small MLP, a GRU, a bundle model) behind the harness's mode byte
mkdir -p "$OUT/corpus_format" "$OUT/corpus_core"
cp "$ROOT"/test/fuzz/seeds/* "$OUT/corpus_format/"
status=0
for h in fuzz_format fuzz_core; do
    log="$OUT/$h.log"
    if (cd "$OUT" && "./$h" -max_total_time="$SECS" -max_len=4096 -artifact_prefix="$OUT/$h-" "corpus_${h#fuzz_}" >"$log" 2>&1); then
        execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
        cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 || true)
        echo "$h: ${execs:-?} executions in ${SECS} s, ${cov:-cov: ?} edges, no crash"
    else
        echo "$h: CRASH, see $log and $OUT/$h-*"; tail -30 "$log"; status=1
    fi
done
exit $status
