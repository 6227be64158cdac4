#!/usr/bin/env bash
# scripts/plots.sh renders the training curve and the evaluation chart to PNG from what recsys.train and
# recsys.evaluate left in the database.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
DB=recsys_plots
OUT=$(mktemp -d)
setup_shop "$DB" 400 &&
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null 2>&1 <<'SQL'
-- the README's own-data recipe: hold out a fifth, train without it, evaluate on it
CREATE TABLE shop.heldout AS
SELECT u.ext_id AS user_id, b.ext_id AS bundle_id
  FROM recsys.split_pairs('random', '{"fraction": 0.2}') s
  JOIN recsys.id_map u ON u.space = 'user' AND u.idx = s.user_idx
  JOIN recsys.id_map b ON b.space = 'bundle' AND b.idx = s.bundle_idx;
CREATE VIEW shop.bundle_orders_train AS
SELECT o.* FROM shop.bundle_orders o
 WHERE NOT EXISTS (SELECT 1 FROM shop.heldout h WHERE h.user_id = o.customer_id::text AND h.bundle_id = o.bundle_id::text);
SELECT recsys.register_bundle_events('shop.bundle_orders_train', 'customer_id', 'bundle_id', 'ordered_at');
SELECT count(*) FROM recsys.prepare();
CALL recsys.train('default', '{"max_epochs": 3, "gru_epochs": 0}');
SELECT count(*) FROM recsys.evaluate('default', NULL, 'shop.heldout', '{10,20}');
SQL
ok $? "a trained model and an evaluation to plot"
bash "$ROOT/scripts/plots.sh" "$DB" "$OUT" >/dev/null 2>&1; ok $? "scripts/plots.sh runs"
# what the charts say, from the data they drew (the script keeps gnuplot's input when asked)
RECSYS_PLOTS_KEEP="$OUT/data" bash "$ROOT/scripts/plots.sh" "$DB" "$OUT" >/dev/null 2>&1
grep -q '^Decision: activated: now serving$' "$OUT/data/labels.txt" && grep -q '^kept: epoch [0-3] (NDCG@20 0\.[0-9]*)$' "$OUT/data/labels.txt"
ok $? "the training curve marks the kept epoch and states the decision in words"
grep -q "^Most popular bundles|Bought together (item co-occurrence)|recsys model 'default', version 1$" "$OUT/data/labels.txt"
ok $? "the evaluation chart names its methods for people, one colour each"
awk -F'|' 'NF == 4 && $4 > 0 { n++ } END { exit !(n == 4) }' "$OUT/data/eval.dat"
ok $? "it draws Recall and NDCG at 10 and 20, each with the model's value (non-zero: held out before training)"
for f in training_curve recall_vs_baselines; do
    [ "$(head -c 8 "$OUT/$f.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] && [ "$(stat -c %s "$OUT/$f.png")" -gt 5000 ]
    ok $? "$f.png is a PNG with a picture in it"
done
# the demand forecast beside what then sold: two seasonal years of the same shop
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "SELECT recsys.demo_promotions('shop')" -c "SELECT count(*) FROM recsys.prepare()" >/dev/null 2>&1
ok $? "the shop gains two seasonal years and its campaigns"
RECSYS_PLOTS_KEEP="$OUT/fdata" bash "$ROOT/scripts/forecast_plot.sh" "$DB" "$OUT" category 28 >/dev/null 2>&1
ok $? "scripts/forecast_plot.sh runs"
awk '!/^#/ && $2 != "NaN" { h++ } !/^#/ && $4 != "NaN" && $5 + 0 <= $4 + 0 && $4 + 0 <= $6 + 0 && $3 != "NaN" { f++ }
     END { exit !(h == 70 && f == 28) }' "$OUT/fdata/forecast.dat"
ok $? "it draws ten weeks sold before the origin and 28 forecast days, each inside its interval order and beside what sold"
grep -q '^category .' "$OUT/fdata/labels.txt"
ok $? "it names the series it draws"
[ "$(head -c 8 "$OUT/forecast.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] && [ "$(stat -c %s "$OUT/forecast.png")" -gt 5000 ]
ok $? "forecast.png is a PNG with a picture in it"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
rm -rf "$OUT"
tap_done
