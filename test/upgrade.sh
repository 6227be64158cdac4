#!/usr/bin/env bash
# ALTER EXTENSION recsys UPDATE through every version of the chain (sql/recsys--A--B.sql), on a database in use:
# a shop installed with the first release, trained, serving, with impressions, feedback and an experiment. After the
# update every answer and the model bytes are unchanged, training goes on, the catalogue equals a fresh install's,
# and the pg_regress suites pass on an extension that each of them installs old and updates.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
cd "$ROOT"
DB=recsys_upgrade
FRESH=recsys_upgrade_fresh
q() { psql -X -At -d "$DB" -c "$1" 2>&1; }
# the first release: the oldest released install script
BASE=$(awk '{print $2}' sql/RELEASED | grep -v -- '--.*--' | sort -V | head -1 | sed -n 's/^sql\/recsys--\(.*\)\.sql$/\1/p')
V=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" recsys.control)
CHAIN=$(psql -X -At -d postgres -c "SELECT path FROM pg_extension_update_paths('recsys') WHERE source = '$BASE' AND target = '$V'")
echo "# chain $BASE -> $V: ${CHAIN:-$BASE (no update yet)}"

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" 2>/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null 2>&1 <<SQL
CREATE EXTENSION recsys VERSION '$BASE';
SELECT recsys.demo_shop(customers => 600);
SELECT count(*) FROM recsys.prepare();
CALL recsys.train('default', '{"max_epochs": 2, "gru_epochs": 1}');
SELECT recsys.log_impressions(c::text, ARRAY(SELECT bundle_id::text FROM shop.bundles ORDER BY bundle_id LIMIT 3))
  FROM generate_series(1, 5) c;
SELECT recsys.log_feedback('1', (SELECT min(bundle_id)::text FROM shop.bundles), 'purchase');
SELECT recsys.create_experiment('upgrade_ab', '[{"name": "model", "version": 1, "share": 0.5}, {"name": "base", "baseline": true, "share": 0.5}]');
SQL
ok $? "version $BASE installed, trained and serving, with impressions, feedback and an experiment"
is "$(q "SELECT extversion FROM pg_extension WHERE extname = 'recsys'")" "$BASE" "installed at the base version"

# everything a customer or an analyst can see, as one text; recommend_items is checked apart: 0.2.0 replaced the
# 0.1.0 heuristic with the item model, so its answers change by design
is "$(q "SELECT count(*) FROM recommend_items(7, 5)")" "5" "the base version's recommend_items answers"
answers() {
    psql -X -At -d "$DB" 2>&1 <<'SQL'
SELECT u, string_agg(bundle_id || '/' || reason, '; ' ORDER BY rank)
  FROM generate_series(1, 40) u, recommend_bundles(u, 10) GROUP BY u ORDER BY u;
SELECT string_agg(bundle_id::text, ',' ORDER BY rank) FROM recommend_bundles(-1, 5);
SELECT string_agg(item_id::text, ',' ORDER BY rank) FROM similar_items((SELECT min(product_id) FROM shop.products), 5);
SELECT string_agg(item_id::text, ',' ORDER BY rank) FROM complete_bundle(ARRAY(SELECT product_id FROM shop.products ORDER BY 1 LIMIT 2), 5);
SELECT version_id, status, md5(weights), recsys.model_check(weights) FROM recsys.model_versions ORDER BY 1;
SELECT count(*) FROM recsys.impressions;
SELECT count(*) FROM recsys.feedback;
SELECT variant, users FROM recsys.experiment_report('upgrade_ab') ORDER BY 1;
SQL
}
# scores apart: 0.2.0 puts every tier on one 0..1 scale, so the baseline's (the experiment's base variant) become
# s / (1 + s); the model's are unchanged
scores() { psql -X -At -F ' ' -d "$DB" -c "SELECT u, rank, score FROM generate_series(1, 40) u, recommend_bundles(u, 10) ORDER BY 1, 2"; }
before=$(answers)
scores_before=$(scores)
grep -q ERROR <<<"$before"; ok $((1 - $?)) "the base version answers every query"

for hop in $(tr -s '-' ' ' <<<"${CHAIN#"$BASE"}"); do
    out=$(q "ALTER EXTENSION recsys UPDATE TO '$hop'"); ok $? "ALTER EXTENSION recsys UPDATE TO '$hop'"
    [ "$out" = "ALTER EXTENSION" ] || echo "# $out"
done
is "$(q "SELECT extversion FROM pg_extension WHERE extname = 'recsys'")" "$V" "the extension is at $V"
after=$(answers)
scores_after=$(scores)
paste -d ' ' <(echo "$scores_before") <(echo "$scores_after") |
    awk 'function abs(x) { return x < 0 ? -x : x }
         NF != 6 || $1 != $4 || $2 != $5 { bad++; next }
         abs($6 - $3) < 1e-5 * (1 + abs($3)) { same++; next }
         abs($6 - $3 / (1 + $3)) < 1e-5 { squashed++; next }
         { bad++ }
         END { exit !(bad == 0 && same > 0 && squashed > 0) }'
ok $? "every score is unchanged (the model's) or the baseline's s on the 0..1 scale as s / (1 + s)"
[ "$before" = "$after" ]; ok $? "recommendations, reasons, similar and completing items, model bytes and CRCs, logs and the experiment are unchanged"
[ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after") | head -10 | sed 's/^/#   /'
is "$(q "SELECT count(*) FROM recsys.serving_status()")" "1" "serving_status answers after the update"
is "$(q "SELECT count(*) FROM recommend_items(7, 5)")" "5" "recommend_items answers after the update (the item model, served from C)"
out=$(psql -X -q -d "$DB" -c "CALL recsys.train('default', '{\"max_epochs\": 2, \"gru_epochs\": 0, \"force\": true}')" 2>&1)
ok $? "training goes on after the update"
is "$(q "SELECT count(*) FROM recsys.model_versions WHERE status = 'active' AND version_id = 2")" "1" \
   "the version trained after the update is active"
is "$(q "SELECT count(*) FROM recommend_bundles(3, 10)")" "10" "and serves"

# the updated catalogue is the one a fresh install of $V makes
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $FRESH" -c "CREATE DATABASE $FRESH" 2>/dev/null
psql -X -q -d "$FRESH" -c "CREATE EXTENSION recsys" 2>/dev/null
cat_fresh=$(psql -X -At -d "$FRESH" -f test/extension_catalog.sql 2>&1)
cat_upd=$(psql -X -At -d "$DB" -f test/extension_catalog.sql 2>&1)
[ -n "$cat_fresh" ] && [ "$cat_fresh" = "$cat_upd" ]
ok $? "catalogue after the update = fresh install: $(wc -l <<<"$cat_upd") objects, bodies, columns, indexes, grants, comments"
[ "$cat_fresh" = "$cat_upd" ] || diff <(echo "$cat_fresh") <(echo "$cat_upd") | head -20 | sed 's/^/#   /'

# the regression suites, each installing $BASE and updating it (test/regress_setup.psql)
OUTDIR=$(mktemp -d /tmp/recsys_upgrade_regress.XXXXXX)
out=$(PGOPTIONS="${PGOPTIONS:-} -c recsys_test.upgrade_from=$BASE" \
      make -s -C "$ROOT" with_llvm=no installcheck REGRESS_OPTS="--inputdir=. --outputdir=$OUTDIR" 2>&1)
grep -q "tests passed" <<<"$out"; ok $? "pg_regress after ALTER EXTENSION UPDATE: $(grep -oE '(All )?[0-9]+ (of [0-9]+ )?tests (passed|failed)' <<<"$out" | head -1)"
grep -q "tests passed" <<<"$out" || { grep -E "FAILED" <<<"$out"; head -60 "$OUTDIR/regression.diffs" 2>/dev/null; }
rm -rf "$OUTDIR"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "DROP DATABASE IF EXISTS $FRESH" 2>/dev/null
tap_done
