-- A scheduled training really runs. pg_cron only works in cron.database_name (postgres on the test cluster), and its
-- worker connects on its own, so this suite runs there and commits as it goes (no enclosing transaction).
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pg_cron;
DROP EXTENSION IF EXISTS recsys CASCADE;
DROP SCHEMA IF EXISTS cronshop CASCADE;
CREATE EXTENSION recsys;
DO $$ BEGIN PERFORM recsys.demo_shop('cronshop', customers => 300); PERFORM count(*) FROM recsys.prepare(); END $$;
-- polls with a fresh snapshot per statement: the cron worker's commits become visible
CREATE FUNCTION pg_temp.wait_for_run(job text, seconds integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text;
BEGIN
    FOR i IN 1 .. seconds LOOP
        SELECT d.status INTO st FROM cron.job_run_details d JOIN cron.job j USING (jobid)
         WHERE j.jobname = job AND d.status IN ('succeeded', 'failed') ORDER BY d.runid LIMIT 1;
        EXIT WHEN st IS NOT NULL;
        PERFORM pg_sleep(1);
    END LOOP;
    RETURN coalesce(st, 'no run within ' || seconds || ' s');
END $$;

SELECT plan(9);
SELECT ok(recsys.schedule_training('default', '* * * * *', '{"max_epochs": 1, "gru_epochs": 0}') > 0,
          'schedule_training returns the pg_cron job id');
SELECT is((SELECT command FROM cron.job WHERE jobname = 'recsys-train-default'),
          $$CALL recsys.train('default', '{"gru_epochs": 0, "max_epochs": 1}')$$, 'the job runs the documented CALL');
SELECT throws_ok($$SELECT recsys.schedule_training('default', '* * * * *', '{"epochs": 1}')$$, '22023', NULL,
                 'bad training options are refused when scheduling, not at 3 a.m.');
-- pg_cron 1.4 schedules by the minute: the run starts at the next minute boundary
SELECT is(pg_temp.wait_for_run('recsys-train-default', 90), 'succeeded',
          'cron.job_run_details shows the scheduled training ran and succeeded');
SELECT is((SELECT count(*) FROM recsys.model_versions WHERE status = 'active'), 1::bigint,
          'the scheduled run left an active version');
SELECT ok(recsys.unschedule_training('default'), 'unschedule_training removes the job');
SELECT throws_ok($$SELECT recsys.schedule_training('nosuch', '0 3 * * *')$$, '42704', NULL,
                 'a model that does not exist is refused when scheduling (a typo would create one at 3 a.m.)');
-- before DROP EXTENSION: recsys.uninstall() removes the jobs a drop cannot reach
SELECT ok(recsys.schedule_training('default', '0 3 * * *') > 0, 'a nightly job scheduled');
SELECT is(recsys.uninstall(), 1, 'recsys.uninstall() removes it, and says how many');
SELECT * FROM finish();

DROP EXTENSION recsys CASCADE;
DROP SCHEMA cronshop CASCADE;
-- pg_cron stays: its scheduler keeps a cache of the jobs that a DROP and CREATE EXTENSION leave stale (jobs
-- scheduled after a re-create never ran), and test/cron_database.sh schedules after this suite
