#!/usr/bin/env bash
# The bundle fit at catalogue scale, on the numeric core alone (no server): the low-rank fit over a generated shop
# of the scale benchmark's large size, with its time and peak memory (GNU time's maximum resident set).
#
#   bash bench/fit_bench.sh [CUSTOMERS ITEMS BUNDLES [RANK]]     (default 1000000 100000 50000 256)
source "$(dirname "$0")/../scripts/lib.sh"
cd "$(dirname "$0")/.." || exit 1
install_deps
make -s bench/fit_bench || exit 1
if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "peak memory (max RSS): %M kB; wall %e s" bench/fit_bench "${1:-1000000}" "${2:-100000}" "${3:-50000}" "${4:-256}"
else
    bench/fit_bench "${1:-1000000}" "${2:-100000}" "${3:-50000}" "${4:-256}"
fi
