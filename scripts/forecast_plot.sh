#!/usr/bin/env bash
# Renders, with gnuplot, a demand forecast beside what then sold: OUTDIR/forecast.png shows the best-selling series
# of a level (default category) over the ten weeks before a backtest origin (HORIZON days before the newest event),
# the global model's median forecast and its 80% interval for the HORIZON days after, and the actual days, with the
# seasonal-naive baseline for comparison.
#
#   bash scripts/forecast_plot.sh [DATABASE] [OUTDIR] [LEVEL] [HORIZON]     (defaults: postgres docs category 28)
# Connection from PGHOST/PGPORT/PGUSER; the database has recsys prepared over events with times (e.g. the demo shop
# after recsys.demo_promotions). Installs gnuplot-nox if it is missing (Debian).
set -euo pipefail
DB=${1:-postgres}
OUT=${2:-docs}
LEVEL=${3:-category}
HORIZON=${4:-28}
if ! command -v gnuplot >/dev/null; then
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null
fi
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'if [ -n "${RECSYS_PLOTS_KEEP:-}" ]; then mkdir -p "$RECSYS_PLOTS_KEEP" && cp "$WORK"/* "$RECSYS_PLOTS_KEEP"/; fi; rm -rf "$WORK"' EXIT

# one fit at the origin; the series that sold most in the history; its days before (actual) and after (forecasts)
psql -X -At -F ' ' -v ON_ERROR_STOP=1 -d "$DB" -v level="$LEVEL" -v horizon="$HORIZON" >"$WORK/forecast.dat" <<'SQL'
\o /dev/null
CREATE TEMP TABLE o AS SELECT recsys.demand_origin('{}') - :horizon AS origin;
CREATE TEMP TABLE p AS
SELECT f.* FROM o, recsys.demand_predict(recsys.demand_fit(recsys.demand_init(32, 42), :'level', o.origin, :horizon, '{}'),
                                         :'level', o.origin, :horizon, '{"actuals": true}') f;
CREATE TEMP TABLE hist AS
SELECT h.* FROM o, recsys.demand_predict(NULL, :'level', o.origin - 70, 70, '{"actuals": true}') h
 WHERE h.method = 'seasonal_naive';
CREATE TEMP TABLE top AS SELECT key FROM p WHERE method = 'model' GROUP BY key ORDER BY sum(actual) DESC, key LIMIT 1;
\o
SELECT '# ' || key FROM top;
-- day, history actual, actual after the origin, model median, lo, hi, seasonal naive (NaN: none)
SELECT d.day, coalesce(d.past::text, 'NaN'), coalesce(d.actual::text, 'NaN'), coalesce(d.mid::text, 'NaN'),
       coalesce(d.lo::text, 'NaN'), coalesce(d.hi::text, 'NaN'), coalesce(d.naive::text, 'NaN')
  FROM (SELECT h.day, h.actual AS past, NULL::real AS actual, NULL::real AS mid, NULL::real AS lo, NULL::real AS hi, NULL::real AS naive
          FROM hist h JOIN top USING (key)
        UNION ALL
        SELECT m.day, NULL, m.actual, m.forecast, m.lo, m.hi, n.forecast
          FROM p m JOIN top USING (key) JOIN p n ON n.key = m.key AND n.day = m.day AND n.method = 'seasonal_naive'
         WHERE m.method = 'model') d
 ORDER BY d.day;
SQL
[ -s "$WORK/forecast.dat" ] || { echo "no series to plot" >&2; exit 1; }
KEY=$(sed -n 's/^# //p' "$WORK/forecast.dat")
echo "$LEVEL $KEY" >"$WORK/labels.txt"
gnuplot <<GP
set terminal pngcairo size 1000,500 font ",11" noenhanced
set output "$OUT/forecast.png"
set title "Daily sales of $LEVEL '$KEY': the forecast made on the last day of history, and what sold" font ",13"
set xdata time
set timefmt "%Y-%m-%d"
set format x "%d %b"
set grid
set ylabel "units per day"
set yrange [0:*]
set key top left opaque box
plot "$WORK/forecast.dat" using 1:5:6 with filledcurves lc rgb "#cfe3f3" title "80% prediction interval", \
     "$WORK/forecast.dat" using 1:2 with linespoints lw 1.5 pt 7 ps 0.6 lc rgb "#555555" title "sold (history)", \
     "$WORK/forecast.dat" using 1:3 with linespoints lw 1.5 pt 7 ps 0.6 lc rgb "#000000" title "sold (after the forecast was made)", \
     "$WORK/forecast.dat" using 1:4 with lines lw 2.5 lc rgb "#1f78b4" title "forecast: global model (median)", \
     "$WORK/forecast.dat" using 1:7 with lines lw 1.5 dashtype 2 lc rgb "#d95f02" title "baseline: the same weekday a week before"
GP
echo "wrote $OUT/forecast.png ($LEVEL $KEY)"
