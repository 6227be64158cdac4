#!/usr/bin/env bash
# Renders, with gnuplot, what people would rather look at than read:
#   OUTDIR/training_curve.png      the last training run of a model: validation Recall@20 / NDCG@20 and the scorer's
#                                  loss per epoch, the kept epoch and the activation decision marked
#   OUTDIR/recall_vs_baselines.png the last recsys.evaluate: Recall@K and NDCG@K of the model next to the baselines,
#                                  one colour per method, values on the bars
#
#   bash scripts/plots.sh [DATABASE] [OUTDIR] [MODEL]      (defaults: postgres docs default)
# Connection from PGHOST/PGPORT/PGUSER. Installs gnuplot-nox if it is missing (Debian).
set -euo pipefail
DB=${1:-postgres}
OUT=${2:-docs}
MODEL=${3:-default}
if ! command -v gnuplot >/dev/null; then
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null
fi
mkdir -p "$OUT"
WORK=$(mktemp -d)
# RECSYS_PLOTS_KEEP=DIR keeps gnuplot's input there (the data and the words on the charts), for tests
trap 'if [ -n "${RECSYS_PLOTS_KEEP:-}" ]; then mkdir -p "$RECSYS_PLOTS_KEEP" && cp "$WORK"/* "$RECSYS_PLOTS_KEEP"/; fi; rm -rf "$WORK"' EXIT

# 1. training curve of the model's newest version that has scorer epochs: the validation metrics above, the loss
# below, both axes from 0; the epoch the version kept (the best validation NDCG@20) and the decision marked
psql -X -At -F ' ' -d "$DB" -v model="$MODEL" >"$WORK/curve.dat" <<'SQL'
SELECT epoch, coalesce(loss::text, 'NaN'), coalesce(valid_recall20::text, 'NaN'), coalesce(valid_ndcg20::text, 'NaN')
  FROM recsys.training_curve
 WHERE version_id = (SELECT max(version_id) FROM recsys.training_curve WHERE model = :'model' AND stage = 'scorer')
   AND stage IN ('fit', 'scorer') ORDER BY epoch;
SQL
[ -s "$WORK/curve.dat" ] || { echo "no training run of model $MODEL to plot" >&2; exit 1; }
# version|kept epoch|its NDCG@20|decision, in words
IFS='|' read -r VERSION BEST BESTNDCG DECISION < <(psql -X -At -d "$DB" -v model="$MODEL" <<'SQL'
SELECT v.version_id, coalesce(v.metrics ->> 'best_epoch', '0'), round(coalesce((v.metrics ->> 'valid_ndcg20')::numeric, 0), 4),
       CASE v.status WHEN 'active' THEN 'activated: now serving'
                     WHEN 'retired' THEN 'activated, since replaced'
                     WHEN 'candidate' THEN 'not activated: ' || coalesce(substring(v.note FROM '^not activated: (.*)$'), 'kept as a candidate')
                     ELSE v.status END
  FROM recsys.model_versions v
 WHERE v.version_id = (SELECT max(version_id) FROM recsys.training_curve WHERE model = :'model' AND stage = 'scorer');
SQL
)
printf 'Decision: %s\nkept: epoch %s (NDCG@20 %s)\n' "$DECISION" "$BEST" "$BESTNDCG" >"$WORK/labels.txt"
gnuplot <<GP
set terminal pngcairo size 900,650 font ",11" noenhanced
set output "$OUT/training_curve.png"
set multiplot layout 2,1 title "How model '$MODEL' (version $VERSION) learned, epoch by epoch\nDecision: $DECISION" font ",13"
set grid
set xrange [-0.5:$(awk 'END {print $1 + 0.5}' "$WORK/curve.dat")]
set arrow 1 from $BEST, graph 0 to $BEST, graph 1 nohead dashtype 2 lw 2 lc rgb "#444444" back
set label 1 "kept: epoch $BEST (NDCG@20 $BESTNDCG) " at $BEST, graph 0.5 right front
set ylabel "validation score (higher is better)"
set yrange [0:*]
set key bottom left opaque box
set xtics 1
set format x ""
plot "$WORK/curve.dat" using 1:3 with linespoints lw 2 pt 7 lc rgb "#1b9e77" title "Recall@20 (share of held-out bundles in the top 20)", \
     "$WORK/curve.dat" using 1:4 with linespoints lw 2 pt 5 lc rgb "#d95f02" title "NDCG@20 (the same, weighted by rank)"
unset label 1
set format x "%g"
set xlabel "epoch (0 = the fit alone, before the learned scorer)"
set ylabel "training loss (lower is better)"
set yrange [0:*]
set key top right opaque box
plot "$WORK/curve.dat" using 1:2 with linespoints lw 2 pt 9 lc rgb "#7570b3" title "scorer loss (binary cross-entropy)"
unset multiplot
GP

# 2. the last evaluation: one group of bars per metric and K, one colour per method, named for people, values on bars
psql -X -At -F '|' -d "$DB" >"$WORK/eval.dat" <<'SQL'
WITH last AS (SELECT max(evaluation_id) AS id FROM recsys.evaluations WHERE split NOT LIKE 'kfold %' AND split NOT LIKE 'random %'),
m AS (SELECT e.metric, e.k, e.method, e.value FROM recsys.evaluations e, last
       WHERE e.evaluation_id = last.id AND e.metric IN ('recall', 'ndcg'))
SELECT CASE metric WHEN 'recall' THEN 'Recall' ELSE 'NDCG' END || '@' || k,
       max(value) FILTER (WHERE method = 'most_popular'),
       max(value) FILTER (WHERE method = 'item_cooccurrence'),
       max(value) FILTER (WHERE method = 'model')
  FROM m GROUP BY metric, k ORDER BY metric DESC, k;
SQL
IFS='|' read -r SPLIT EVMODEL EVVERSION < <(psql -X -At -d "$DB" -c "SELECT split, model, coalesce(version_id::text, 'none') FROM recsys.evaluations WHERE evaluation_id = (SELECT max(evaluation_id) FROM recsys.evaluations WHERE split NOT LIKE 'kfold %' AND split NOT LIKE 'random %') LIMIT 1")
[ -s "$WORK/eval.dat" ] || { echo "no evaluation to plot: run recsys.evaluate first" >&2; exit 1; }
printf "Most popular bundles|Bought together (item co-occurrence)|recsys model '%s', version %s\n" "$EVMODEL" "$EVVERSION" >>"$WORK/labels.txt"
gnuplot <<GP
set terminal pngcairo size 900,500 font ",11" noenhanced
set output "$OUT/recall_vs_baselines.png"
set title "Does the model beat simple rules?\nHeld-out bundles found on $SPLIT (higher is better)" font ",13"
set datafile separator "|"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "held-out bundles found (NDCG: by rank)"
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set grid ytics
set key below horizontal
plot "$WORK/eval.dat" using 2:xtic(1) lc rgb "#bbbbbb" title "Most popular bundles", \
     "" using 3 lc rgb "#7fb3d5" title "Bought together (item co-occurrence)", \
     "" using 4 lc rgb "#d95f02" title "recsys model '$EVMODEL', version $EVVERSION", \
     "" using (\$0 - 0.3):2:(sprintf("%.3f", \$2)) with labels offset 0,0.7 font ",9" notitle, \
     "" using (\$0):3:(sprintf("%.3f", \$3)) with labels offset 0,0.7 font ",9" notitle, \
     "" using (\$0 + 0.3):4:(sprintf("%.3f", \$4)) with labels offset 0,0.7 font ",9" notitle
GP
echo "wrote $OUT/training_curve.png and $OUT/recall_vs_baselines.png"
