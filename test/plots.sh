#!/usr/bin/env bash
# scripts/plots.sh renders the training curve and the evaluation chart to PNG from what recsys.train and
# recsys.evaluate left in the database.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
DB=recsys_plots
OUT=$(mktemp -d)
setup_shop "$DB" 400 '{"max_epochs": 3, "gru_epochs": 0}' &&
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null 2>&1 <<'SQL'
CREATE TABLE heldout AS SELECT customer_id AS user_id, bundle_id FROM shop.bundle_orders ORDER BY 1, 2 LIMIT 50;
SELECT count(*) FROM recsys.evaluate('default', NULL, 'heldout', '{10,20}');
SQL
ok $? "a trained model and an evaluation to plot"
bash "$ROOT/scripts/plots.sh" "$DB" "$OUT" >/dev/null 2>&1; ok $? "scripts/plots.sh runs"
for f in training_curve recall_vs_baselines; do
    [ "$(head -c 8 "$OUT/$f.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] && [ "$(stat -c %s "$OUT/$f.png")" -gt 5000 ]
    ok $? "$f.png is a PNG with a picture in it"
done
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
rm -rf "$OUT"
tap_done
