#!/usr/bin/env bash
# recsys.train as operators meet it: a second training of the same model is refused,
# a training killed mid-epoch resumes from its last checkpoint, a worse model is not
# activated (unless forced), and an incremental training warm-starts.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
DB=recsys_training
q() { psql -X -At -d "$DB" -c "$1"; }
setup_shop "$DB" 600
ok $? "demo shop of 600 customers prepared"

# 1. one training per model: while a training runs, a second one of the same model is refused at once
psql -X -q -d "$DB" -c "CALL recsys.train('default', '{\"max_epochs\": 400, \"patience\": 400, \"gru_epochs\": 0}')" >/dev/null 2>&1 &
TRAINER=$!
for _ in $(seq 1 200); do
    n=$(q "SELECT count(*) FROM recsys.training_runs r JOIN recsys.model_versions v USING (version_id) WHERE v.status = 'training' AND r.epoch >= 3")
    [ "${n:-0}" -ge 1 ] && break
    sleep 0.1
done
# progress, from another session, while the CALL runs
is "$(q "SELECT string_agg(stage || ':' || state, ',' ORDER BY stage_id) FROM recsys.training_progress")" \
   "features:done,fit:done,scorer:running" "another session sees the stages done and the one running (training_progress)"
detail=$(q "SELECT detail FROM recsys.training_progress WHERE state = 'running'")
[[ "$detail" =~ ^epoch\ [0-9]+\ of\ at\ most\ 400:\ loss\ .*validation\ NDCG@20 ]]; ok $? "the running stage names its epoch, loss and validation NDCG ($detail)"
err=$(psql -X -q -d "$DB" -c "CALL recsys.train('default', '{\"max_epochs\": 1}')" 2>&1)
[[ "$err" == *"recsys.train:default is running in another session"* ]]; ok $? "a second training of the same model gets a clear error"
is "$(q "SELECT count(*) FROM recsys.model_versions")" "1" "the refused training left no version behind"

# 2. killed mid-training, resumed from the last checkpoint
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'CALL recsys.train%' AND pid <> pg_backend_pid()" >/dev/null
wait $TRAINER
is "$(q "SELECT status FROM recsys.model_versions ORDER BY version_id DESC LIMIT 1")" "training" \
   "the killed training's version is left in status training, resumable"
last=$(q "SELECT max(epoch) FROM recsys.training_runs WHERE checkpoint IS NOT NULL")
[ "${last:-0}" -ge 3 ]; ok $? "its committed epochs (up to $last) kept their checkpoints"
is "$(q "SELECT count(*) FROM recsys.model_versions WHERE status = 'active'")" "0" "nothing half-trained was activated"
is "$(q "SELECT stage || ':' || state FROM recsys.training_progress ORDER BY stage_id DESC LIMIT 1")" "scorer:interrupted" \
   "training_progress shows the killed CALL's stage as interrupted"
out=$(PGOPTIONS="-c client_min_messages=notice" psql -X -d "$DB" -c "CALL recsys.train('default', '{\"max_epochs\": $((last + 2)), \"gru_epochs\": 0}')" 2>&1)
[[ "$out" == *"resuming version 1 of default at epoch $((last + 1))"* ]]; ok $? "train resumes version 1 at epoch $((last + 1))"
[[ "$out" == *"NOTICE:  recsys.train: model default: scorer: epoch $((last + 1)) of at most $((last + 2)): loss "* &&
   "$out" == *"NOTICE:  recsys.train: model default: final: "* ]]; ok $? "at client_min_messages = notice, a NOTICE per stage and epoch"
is "$(q "SELECT string_agg(stage || ':' || state, ',' ORDER BY stage_id) FROM recsys.training_progress WHERE stage_id > (SELECT min(stage_id) FROM recsys.training_progress WHERE state = 'interrupted')")" \
   "features:done,scorer:done,final:done,activation:done" "the resumed CALL's stages, all done"
is "$(q "SELECT count(DISTINCT epoch) = max(epoch) + 1 FROM recsys.training_runs WHERE version_id = 1 AND metrics ->> 'stage' <> 'encoder'")" "t" \
   "epochs 0..N of the resumed version are contiguous, none repeated"
is "$(q "SELECT status FROM recsys.model_versions WHERE version_id = 1")" "active" "the resumed version finished and became active"
is "$(q "SELECT count(*) FROM recsys.train_samples")" "0" "its samples were cleaned up"

# 3. activation only if not worse on validation; force overrides
q "UPDATE recsys.model_versions SET metrics = metrics || '{\"valid_ndcg20\": 1.0}' WHERE version_id = 1" >/dev/null
psql -X -q -d "$DB" -c "CALL recsys.train('default', '{\"max_epochs\": 2, \"gru_epochs\": 0}')" >/dev/null 2>&1
is "$(q "SELECT status || ':' || (note LIKE 'not activated: validation NDCG@20%') FROM recsys.model_versions WHERE version_id = 2")" "candidate:true" \
   "a version worse than the active one stays a candidate, with the reason in its note"
is "$(q "SELECT recsys.active_version('default')")" "1" "the active version is unchanged"
psql -X -q -d "$DB" -c "CALL recsys.train('default', '{\"max_epochs\": 2, \"gru_epochs\": 0, \"force\": true}')" >/dev/null 2>&1
is "$(q "SELECT recsys.active_version('default')")" "3" "force activates regardless"
# incremental: warm-starts the scorer from the active version (its first epoch starts lower than a cold start's)
psql -X -q -d "$DB" -c "CALL recsys.train('default', '{\"max_epochs\": 1, \"gru_epochs\": 1, \"incremental\": true, \"force\": true}')" >/dev/null 2>&1
is "$(q "SELECT parent_version || ':' || (metrics #>> '{options,incremental}') FROM recsys.model_versions WHERE version_id = 4")" "3:true" \
   "an incremental training records the active version as its parent"
is "$(q "SELECT (SELECT loss FROM recsys.training_runs WHERE version_id = 4 AND epoch = 1)
              < (SELECT loss FROM recsys.training_runs WHERE version_id = 3 AND epoch = 1)")" "t" \
   "its scorer starts from the active one: first-epoch loss below a cold start's"

# feedback since the active version: bought or carted -> positive samples, dismissed or ignored -> negative ones
psql -X -q -d "$DB" >/dev/null <<'SQL'
SELECT recsys.log_impressions(c::text, ARRAY(SELECT bundle_id::text FROM shop.bundles ORDER BY bundle_id LIMIT 3))
  FROM (SELECT DISTINCT customer_id AS c FROM shop.bundle_orders ORDER BY 1 LIMIT 3) x;
SELECT recsys.log_feedback(i.user_id, i.target, 'purchase', 30) FROM recsys.impressions i WHERE i.rank = 1 LIMIT 2;
SELECT recsys.log_feedback(i.user_id, i.target, 'dismiss') FROM recsys.impressions i WHERE i.rank = 2 LIMIT 1;
SELECT recsys.log_feedback(i.user_id, i.target, 'click') FROM recsys.impressions i WHERE i.rank = 3 LIMIT 1;
SQL
psql -X -q -d "$DB" -c "CALL recsys.train('default', '{\"max_epochs\": 1, \"gru_epochs\": 0, \"force\": true}')" >/dev/null 2>&1
is "$(q "SELECT metrics ->> 'feedback_samples' FROM recsys.training_runs WHERE version_id = 5 AND epoch = 0")" "8" \
   "feedback since the active version became 8 scorer samples (2 bought, 1 dismissed, 5 ignored; the clicked one says too little)"
# a training that fails in a session that stays open (a pooled connection) must not keep the model locked: while
# that session idles (psql runs a shell command, the connection stays open), another session trains
psql -X -At -d "$DB" >/tmp/recsys_pooled.$$ 2>&1 <<'SQL' &
SET statement_timeout = '200ms';
CALL recsys.train('default', '{"max_epochs": 400, "patience": 400, "gru_epochs": 0, "resume": false}');
\! sleep 8
SELECT 'pooled session alive';
SQL
POOLED=$!
for _ in $(seq 1 50); do grep -q "statement timeout" /tmp/recsys_pooled.$$ && break; sleep 0.1; done
grep -q "canceling statement due to statement timeout" /tmp/recsys_pooled.$$; ok $? "a training cancelled by statement_timeout"
err=$(psql -X -q -d "$DB" -c "CALL recsys.train('default', '{\"max_epochs\": 1, \"gru_epochs\": 0, \"resume\": false}')" 2>&1)
ok $? "while its session stays open and idle, another session trains the model ($err)"
wait $POOLED
grep -q "pooled session alive" /tmp/recsys_pooled.$$; ok $? "the pooled session was open all along"
rm -f /tmp/recsys_pooled.$$
is "$(q "SELECT count(*) FROM recsys.training_claims")" "0" "the finished training released its claim"

# a hostile search_path (round() and operators shadowed by functions that fail) changes nothing in recsys.train
psql -X -q -d "$DB" >/dev/null 2>&1 <<'SQL'
CREATE SCHEMA evil;
CREATE FUNCTION evil.boom_n(numeric, integer) RETURNS numeric LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked round'; END $$;
CREATE FUNCTION evil.round(numeric, integer) RETURNS numeric LANGUAGE sql AS $$ SELECT evil.boom_n($1, $2) $$;
CREATE FUNCTION evil.boom_t(text, text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked ||'; END $$;
CREATE OPERATOR evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.boom_t);
CREATE FUNCTION evil.boom_i(integer, integer) RETURNS integer LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked -'; END $$;
CREATE OPERATOR evil.- (LEFTARG = integer, RIGHTARG = integer, FUNCTION = evil.boom_i);
CREATE FUNCTION evil.boom_b(integer, integer) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked >='; END $$;
CREATE OPERATOR evil.>= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = evil.boom_b);
SQL
out=$(PGOPTIONS="-c search_path=evil,pg_catalog,public -c client_min_messages=notice" \
      psql -X -q -d "$DB" -c "CALL recsys.train('default', '{\"max_epochs\": 2, \"gru_epochs\": 1}')" 2>&1)
[[ "$out" != *hijacked* && "$out" == *"recsys.train: version"* ]]; ok $? "recsys.train under a hostile search_path runs none of its functions or operators"
q "DROP SCHEMA evil CASCADE" >/dev/null 2>&1

# two models trained at once both refresh the shared features: one waits for the other, neither fails
psql -X -q -d "$DB" -c "CALL recsys.train('default', '{\"max_epochs\": 1, \"gru_epochs\": 0}')" >/tmp/recsys_train_a.$$ 2>&1 &
A=$!
psql -X -q -d "$DB" -c "CALL recsys.train('second', '{\"max_epochs\": 1, \"gru_epochs\": 0}')" >/tmp/recsys_train_b.$$ 2>&1 &
B=$!
wait $A; ra=$?; wait $B; rb=$?
[ $ra -eq 0 ] && [ $rb -eq 0 ]; ok $? "two models trained at the same time both finish ($(cat /tmp/recsys_train_a.$$ /tmp/recsys_train_b.$$ | tr '\n' ' '))"
rm -f /tmp/recsys_train_a.$$ /tmp/recsys_train_b.$$
# (a scheduled run under pg_cron: test/pgtap_cron/schedule.sql)
# the other long calls say where they are, at client_min_messages = notice
out=$(PGOPTIONS="-c client_min_messages=notice" psql -X -q -d "$DB" -c "SELECT count(*) FROM recsys.prepare()" -c "SELECT recsys.refresh_features() IS NOT NULL" 2>&1)
[[ "$out" == *"NOTICE:  recsys.prepare: reading events ("*" s)"* && "$out" == *"NOTICE:  recsys.prepare: mapping ids"* &&
   "$out" == *"NOTICE:  recsys.refresh_features: item pairs (association rules)"* && "$out" == *"NOTICE:  recsys.refresh_features: done: {"* ]]
ok $? "prepare and refresh_features say each step as they go, with the seconds since the call began"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
tap_done
