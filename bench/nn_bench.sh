#!/usr/bin/env bash
# Training speed of the reference models, side by side in one run on this machine:
#   (a) the recsys core standalone (bench/core_bench),
#   (b) recsys inside PostgreSQL, through the training aggregates over a table
#       (1 thread = one backend; 2 threads = a parallel aggregate with 2 workers),
#   (c) PyTorch on the CPU (Debian python3-torch, /usr/bin/python3),
# at 1 and 2 threads, with the ratios recsys / PyTorch.
#
#   bash bench/nn_bench.sh [SECONDS]      (as root: installs python3-torch if missing)
#   RECSYS_BENCH_RUNS=N sets the runs per cell (default 3; the median is reported)
#
# MLP 128-256-128-1, BCE, Adam, batch 256, 200,000 rows in PostgreSQL.
# GRU embedding 64, hidden 128, length 20, vocabulary 10,000, 100 sampled negatives,
# Adam, batch 256; 20,000 rows in PostgreSQL (an epoch there takes seconds).
source "$(dirname "$0")/../scripts/lib.sh"
SECS=${1:-5}
PORT=${RECSYS_BENCH_PORT:-54341}

install_deps
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    log "installing python3-torch"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch >/dev/null
fi
build_install
make -s -C "$RECSYS_ROOT" with_llvm=no bench/core_bench >/dev/null
start_cluster "$PORT"
trap stop_cluster EXIT

log "making the benchmark tables"
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS recsys;
SELECT setseed(0.5);
DROP TABLE IF EXISTS bench_mlp, bench_gru;
CREATE TABLE bench_mlp AS
SELECT ARRAY(SELECT (random() * 2 - 1)::real FROM generate_series(1, 128) WHERE i > 0) AS x,
       (random() < 0.5)::int::real AS y
  FROM generate_series(1, 200000) i;
CREATE TABLE bench_gru AS
SELECT ARRAY(SELECT floor(random() * 10000)::int FROM generate_series(1, 20) WHERE i > 0) AS items,
       floor(random() * 10000)::int AS target
  FROM generate_series(1, 20000) i;
VACUUM ANALYZE bench_mlp, bench_gru;
SQL

# in-database samples/s: rows / seconds of one epoch; $1 = workers (0 = one backend). The statement is prepared
# and run once before the clock starts, so the timed run reuses its plan, where the planner folded model_init's
# constant weights: like PyTorch and the core, the clock measures training, not the initialisation of the weights
# (2,000,000 seeded normals for the GRU, 3% of an epoch here)
pg_rate() {
    local workers=$1 table=$2 call=$3 rows
    rows=$(psql -X -At -d postgres -c "SELECT count(*) FROM $table")
    psql -X -At -d postgres <<SQL | tail -1
SET max_parallel_workers_per_gather = $workers;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
-- the temporary table first: creating the session's temporary schema later would make the plan be made again
CREATE TEMP TABLE t (t0 timestamptz);
PREPARE epoch AS SELECT length($call) FROM $table;
EXECUTE epoch;  -- warm-up: load the library, page in the table, plan (folding the initial weights)
INSERT INTO t SELECT clock_timestamp();
EXECUTE epoch;
SELECT round($rows / extract(epoch FROM clock_timestamp() - t0)) FROM t;
SQL
}
MLP_CALL="recsys.mlp_train(recsys.model_init('mlp', '{\"layers\": [128, 256, 128, 1]}', 1), x, y, '{\"batch\": 256}')"
GRU_CALL="recsys.rnn_train(recsys.model_init('gru', '{\"vocab\": 10000, \"embed\": 64, \"hidden\": 128}', 1), items, target, '{\"batch\": 256, \"negatives\": 100, \"max_len\": 20}')"

median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
# each cell is the median of RUNS runs: single runs on a small VM move by 10% and more
RUNS=${RECSYS_BENCH_RUNS:-3}
declare -A R
for t in 1 2; do
    cm=(); cg=(); tm=(); tg=(); pm=(); pgr=()
    w=$((t == 1 ? 0 : 2))
    for run in $(seq "$RUNS"); do
        log "run $run/$RUNS at $t thread(s): core, PyTorch, inside PostgreSQL"
        out=$("$RECSYS_ROOT/bench/core_bench" "$t" "$SECS")
        echo "$out"
        cm+=("$(sed -n 's/^core mlp[^:]*: \([0-9]*\) samples.*/\1/p' <<<"$out")")
        cg+=("$(sed -n 's/^core gru[^:]*: \([0-9]*\) samples.*/\1/p' <<<"$out")")
        out=$(OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t /usr/bin/python3 "$RECSYS_ROOT/bench/torch_bench.py" "$t" "$SECS")
        echo "$out"
        tm+=("$(sed -n 's/^torch mlp[^:]*: \([0-9]*\) samples.*/\1/p' <<<"$out")")
        tg+=("$(sed -n 's/^torch gru[^:]*: \([0-9]*\) samples.*/\1/p' <<<"$out")")
        pm+=("$(pg_rate $w bench_mlp "$MLP_CALL")")
        pgr+=("$(pg_rate $w bench_gru "$GRU_CALL")")
        echo "pg mlp: ${pm[-1]} samples/s, pg gru: ${pgr[-1]} samples/s"
    done
    R[core_mlp_$t]=$(median "${cm[@]}")
    R[core_gru_$t]=$(median "${cg[@]}")
    R[torch_mlp_$t]=$(median "${tm[@]}")
    R[torch_gru_$t]=$(median "${tg[@]}")
    R[pg_mlp_$t]=$(median "${pm[@]}")
    R[pg_gru_$t]=$(median "${pgr[@]}")
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "samples/s, median of $RUNS runs of ${SECS}s each (PostgreSQL: one epoch over the table per run)"
printf '%-8s %-7s %12s %12s %12s %14s %14s\n' model threads core pg torch core/torch pg/torch
for m in mlp gru; do
    for t in 1 2; do
        printf '%-8s %-7s %12s %12s %12s %14s %14s\n' "$m" "$t" "${R[core_${m}_$t]}" "${R[pg_${m}_$t]}" \
            "${R[torch_${m}_$t]}" "$(ratio "${R[core_${m}_$t]}" "${R[torch_${m}_$t]}")" \
            "$(ratio "${R[pg_${m}_$t]}" "${R[torch_${m}_$t]}")"
    done
done
