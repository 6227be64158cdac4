#!/usr/bin/env bash
# Renders, with gnuplot, what people would rather look at than read:
#   OUTDIR/training_curve.png      the last training run of a model: scorer loss and validation Recall@20 / NDCG@20
#   OUTDIR/recall_vs_baselines.png the last recsys.evaluate: Recall@K and NDCG@K of the model next to the baselines
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
trap 'rm -rf "$WORK"' EXIT

# 1. training curve of the model's newest version that has scorer epochs
psql -X -At -F ' ' -d "$DB" -v model="$MODEL" >"$WORK/curve.dat" <<'SQL'
SELECT epoch, coalesce(loss::text, 'NaN'), coalesce(valid_recall20::text, 'NaN'), coalesce(valid_ndcg20::text, 'NaN')
  FROM recsys.training_curve
 WHERE version_id = (SELECT max(version_id) FROM recsys.training_curve WHERE model = :'model' AND stage = 'scorer')
   AND stage IN ('fit', 'scorer') ORDER BY epoch;
SQL
VERSION=$(psql -X -At -d "$DB" -v model="$MODEL" <<<"SELECT max(version_id) FROM recsys.training_curve WHERE model = :'model' AND stage = 'scorer'")
[ -s "$WORK/curve.dat" ] || { echo "no training run of model $MODEL to plot" >&2; exit 1; }
gnuplot <<GP
set terminal pngcairo size 900,500 font ",11" noenhanced
set output "$OUT/training_curve.png"
set title "recsys.train: model $MODEL, version $VERSION (epoch 0 = the fit alone)"
set xlabel "epoch"
set ylabel "scorer loss (BCE)"
set y2label "validation metric"
set ytics nomirror
set y2tics
set key center right
set grid
plot "$WORK/curve.dat" using 1:2 with linespoints lw 2 title "loss", \
     "$WORK/curve.dat" using 1:3 axes x1y2 with linespoints lw 2 title "Recall@20", \
     "$WORK/curve.dat" using 1:4 axes x1y2 with linespoints lw 2 title "NDCG@20"
GP

# 2. the last evaluation: recall and NDCG at each K, per method
psql -X -At -F ' ' -d "$DB" >"$WORK/eval.dat" <<'SQL'
WITH last AS (SELECT max(evaluation_id) AS id FROM recsys.evaluations WHERE split NOT LIKE 'kfold %' AND split NOT LIKE 'random %')
SELECT e.k, e.method, max(e.value) FILTER (WHERE e.metric = 'recall'), max(e.value) FILTER (WHERE e.metric = 'ndcg')
  FROM recsys.evaluations e, last WHERE e.evaluation_id = last.id
 GROUP BY e.k, e.method ORDER BY e.k, CASE e.method WHEN 'most_popular' THEN 1 WHEN 'item_cooccurrence' THEN 2 ELSE 3 END;
SQL
SPLIT=$(psql -X -At -d "$DB" -c "SELECT split FROM recsys.evaluations WHERE evaluation_id = (SELECT max(evaluation_id) FROM recsys.evaluations WHERE split NOT LIKE 'kfold %') LIMIT 1")
[ -s "$WORK/eval.dat" ] || { echo "no evaluation to plot: run recsys.evaluate first" >&2; exit 1; }
gnuplot <<GP
set terminal pngcairo size 900,500 font ",11" noenhanced
set output "$OUT/recall_vs_baselines.png"
set title "recsys.evaluate on $SPLIT: the model against in-database baselines"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set ylabel "metric"
set yrange [0:*]
set grid ytics
set key top left
set xtics rotate by -20
plot "$WORK/eval.dat" using 3:xtic(sprintf("%s @%d", stringcolumn(2), column(1))) title "Recall@K", \
     "" using 4 title "NDCG@K"
GP
echo "wrote $OUT/training_curve.png and $OUT/recall_vs_baselines.png"
