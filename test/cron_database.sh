#!/usr/bin/env bash
# A shop whose database is not pg_cron's (cron.database_name is postgres on the test cluster): scheduling from the
# shop says where pg_cron lives and what to run there; the statement recsys writes, run in pg_cron's database,
# trains the shop's model on schedule; the run log is matched to what the CALL did; uninstall says how to remove
# the job it cannot reach.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
DB=recsys_cron_shop
q() { psql -X -At -d "$DB" -c "$1"; }
c() { psql -X -At -d postgres -c "$1"; }
# the status of the first finished run of the jobs matching a condition on d (run details) and j (job); pg_cron 1.4
# schedules by the minute, so a run starts at the next minute boundary
first_run() {
    local st=""
    for _ in $(seq 1 100); do
        st=$(c "SELECT d.status FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                 WHERE $1 AND d.status IN ('succeeded', 'failed') ORDER BY d.runid LIMIT 1")
        [ -n "$st" ] && break
        sleep 1
    done
    echo "$st"
}
setup_shop "$DB" 300
ok $? "a shop of 300 customers prepared in database $DB"
OPTS='{"max_epochs": 1, "gru_epochs": 0}'

err=$(psql -X -q -v VERBOSITY=verbose -d "$DB" -c "SELECT recsys.schedule_training('default', '* * * * *', '$OPTS')" 2>&1)
[[ "$err" == *"0A000"*"pg_cron is not installed in this database"* && "$err" == *"DETAIL:  pg_cron lives in database postgres. Run this there: SELECT cron.schedule_in_database("* ]]
ok $? "schedule_training in the shop's database names pg_cron's database and the statement to run there"
sql=$(q "SELECT recsys.schedule_training_sql('default', '* * * * *', '$OPTS')")
is "$sql" "SELECT cron.schedule_in_database('recsys-train-default@$DB', '* * * * *', 'CALL recsys.train(''default'', ''{\"gru_epochs\": 0, \"max_epochs\": 1}'')', '$DB')" \
   "schedule_training_sql writes the cron.schedule_in_database statement, the job named after model and database"
err=$(psql -X -q -d "$DB" -c "SELECT recsys.schedule_training_sql('nosuch', '0 3 * * *')" 2>&1)
[[ "$err" == *"model 'nosuch' does not exist"* ]]; ok $? "it checks the model as schedule_training does"

c "CREATE EXTENSION IF NOT EXISTS pg_cron" >/dev/null 2>&1
# at the same minute, a training scheduled in pg_cron's own database, whose runs are shown beside what their CALL did
psql -X -q -d postgres >/dev/null 2>&1 <<'SQL'
DROP EXTENSION IF EXISTS recsys CASCADE;
DROP SCHEMA IF EXISTS cronshop2 CASCADE;
CREATE EXTENSION recsys;
SELECT recsys.demo_shop('cronshop2', customers => 200);
SELECT count(*) FROM recsys.prepare();
CALL recsys.train('default', '{"max_epochs": 2, "gru_epochs": 0}');
SELECT recsys.schedule_training('default', '* * * * *', '{"max_epochs": 1, "gru_epochs": 0, "seed": 7}');
SQL
job=$(c "$sql")
[ "${job:-0}" -gt 0 ]; ok $? "run in pg_cron's database, it schedules job $job"
is "$(first_run "d.jobid = $job")" "succeeded" "pg_cron ran the shop's training in the shop's database"
is "$(q "SELECT count(*) FROM recsys.model_versions WHERE status = 'active'")" "1" "the shop has an active version from it"
pid=$(c "SELECT job_pid FROM cron.job_run_details WHERE jobid = $job ORDER BY runid LIMIT 1")
is "$(q "SELECT string_agg(DISTINCT stage, ',' ORDER BY stage) || ' ' || bool_and(state = 'done') FROM recsys.training_progress WHERE stage_id IN (SELECT stage_id FROM recsys.training_stages WHERE pid = ${pid:-0})")" \
   "activation,features,final,fit,scorer true" "the run's stages in the shop carry the job's backend pid (${pid:-none}), to match the run log"
c "SELECT cron.unschedule($job)" >/dev/null

out=$(PGOPTIONS="-c client_min_messages=warning" psql -X -q -d "$DB" -c "SELECT recsys.uninstall()" 2>&1)
[[ "$out" == *"pg_cron lives in database postgres"* && "$out" == *"cron.unschedule(jobid) FROM cron.job WHERE database = '$DB'"* ]]
ok $? "uninstall in the shop warns that its jobs live in pg_cron's database, and how to remove them there"

is "$(first_run "j.jobname = 'recsys-train-default'")" "succeeded" "a training scheduled in pg_cron's database ran"
run=$(c "SELECT return_message || '|' || model || '|' || (version_id = 2) || '|' || (outcome ~ '^(activated|not activated): validation NDCG@20') FROM recsys.scheduled_runs() ORDER BY runid LIMIT 1")
is "$run" "CALL|default|true|true" "recsys.scheduled_runs puts pg_cron's bare 'CALL' beside the model, the version and the decision"
psql -X -q -d postgres >/dev/null 2>&1 <<'SQL'
SELECT recsys.uninstall();
DROP EXTENSION recsys CASCADE;
DROP SCHEMA IF EXISTS cronshop2 CASCADE;
SQL
# pg_cron stays (see test/pgtap_cron/schedule.sql: a dropped and re-created pg_cron never runs the new jobs)
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
tap_done
