-- recsys SQL source: security -- dump configuration, roles, privileges and the guard on recsys tables (the Makefile assembles sql/src/*.sql into the install script)

------------------------------------------------------------------------------
-- Roles: recsys_admin (register, prepare, train, schedule, experiments) and recsys_reader (serving and BI views)
------------------------------------------------------------------------------
-- roles are cluster-wide: created once, kept if the extension is dropped
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'recsys_admin') THEN
        CREATE ROLE recsys_admin NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'recsys_reader') THEN
        CREATE ROLE recsys_reader NOLOGIN;
    END IF;
END $$;
GRANT USAGE ON SCHEMA recsys TO recsys_admin, recsys_reader;

-- Readers and private histories: the options that put a customer's own purchases back into an answer are for
-- the application that serves the logged-in customer (recsys_app) and for recsys_admin.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'recsys_app') THEN
        CREATE ROLE recsys_app NOLOGIN;
    END IF;
END $$;
GRANT recsys_reader TO recsys_app;

-- No user code on recsys tables: nobody may add a trigger, rule or policy to them (a trigger on a table that a
-- superuser's recsys.prepare() writes would run as that superuser). The extension's own triggers call its own
-- functions and pass.
--@begin recsys.guard_tables()
CREATE FUNCTION recsys.guard_tables() RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    rel oid;
BEGIN
    FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        rel := NULL;
        IF r.classid = 'pg_trigger'::regclass THEN
            SELECT t.tgrelid INTO rel FROM pg_trigger t
             WHERE t.oid = r.objid
               AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                WHERE d.classid = 'pg_proc'::regclass AND d.objid = t.tgfoid AND d.deptype = 'e'
                                  AND d.refobjid = (SELECT e.oid FROM pg_extension e WHERE e.extname = 'recsys'));
        ELSIF r.classid = 'pg_rewrite'::regclass THEN
            SELECT w.ev_class INTO rel FROM pg_rewrite w WHERE w.oid = r.objid AND w.rulename <> '_RETURN';
        ELSIF r.classid = 'pg_policy'::regclass THEN
            SELECT p.polrelid INTO rel FROM pg_policy p WHERE p.oid = r.objid;
        END IF;
        IF rel IS NOT NULL AND (SELECT c.relnamespace FROM pg_class c WHERE c.oid = rel) = 'recsys'::regnamespace THEN
            RAISE EXCEPTION '% % on recsys table % is not allowed', lower(r.command_tag), r.object_identity, rel::regclass
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'Code attached to a recsys table would run as whoever calls recsys.prepare() or recsys.train(), a superuser included.';
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION recsys.guard_tables() IS 'event trigger: refuses triggers, rules and policies on recsys tables (other than the extension''s own triggers)';
--@end
CREATE EVENT TRIGGER recsys_guard_tables ON ddl_command_end
    WHEN TAG IN ('CREATE TRIGGER', 'CREATE RULE', 'CREATE POLICY', 'ALTER POLICY')
    EXECUTE FUNCTION recsys.guard_tables();

-- Privileges, for every object of the extension: PUBLIC runs nothing of recsys; recsys_admin runs everything but
-- owns nothing, and may not add triggers (TRIGGER), empty tables behind the extension's back (TRUNCATE) or tie its
-- own tables to them (REFERENCES); recsys_reader serves and reads the BI views, and invalidates nothing; recsys_app
-- also logs what it showed. Every upgrade script ends with this block (--#include), for the objects it added.
--@begin privileges
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_depend d ON d.objid = p.oid
              WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.deptype = 'e'
                AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'recsys')
                AND p.prokind IN ('f', 'p', 'a', 'w') LOOP
        EXECUTE pg_catalog.format('REVOKE EXECUTE ON ROUTINE %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON ROUTINE %s TO recsys_admin', f);
    END LOOP;
END $$;
REVOKE TRIGGER, TRUNCATE, REFERENCES ON ALL TABLES IN SCHEMA recsys FROM recsys_admin, recsys_reader, PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA recsys TO recsys_admin;
GRANT ALL ON ALL SEQUENCES IN SCHEMA recsys TO recsys_admin;
GRANT EXECUTE ON FUNCTION @extschema@.recommend_bundles(text, integer, jsonb), @extschema@.recommend_bundles(bigint, integer, jsonb),
                          @extschema@.recommend_items(text, integer, jsonb), @extschema@.recommend_items(bigint, integer, jsonb),
                          @extschema@.complete_bundle(text[], integer, jsonb), @extschema@.complete_bundle(bigint[], integer, jsonb),
                          @extschema@.similar_items(text, integer, jsonb), @extschema@.similar_items(bigint, integer, jsonb),
                          @extschema@.recommend_bundles_batch(bigint[], integer, jsonb),
                          @extschema@.recommend_bundles_batch(text[], integer, jsonb), recsys.check_batch(integer, integer),
                          recsys.experiment_report(text), recsys.version(), recsys.may_see_history(), recsys.ext_bigint(text),
                          recsys.active_version(text),
                          recsys.recommend_bundles_traced(text, integer, jsonb),
                          recsys.rank_metrics(text[], text[], integer, bigint), recsys.gini(double precision[]),
                          recsys.normal_cdf(double precision), recsys.wilson_interval(bigint, bigint),
                          @extschema@.recommend_promotions(text, integer, jsonb),
                          @extschema@.recommend_promotions(bigint, integer, jsonb)
   TO recsys_reader;
GRANT EXECUTE ON FUNCTION recsys.recommend_bundles_logged(text, integer, jsonb),
                          recsys.log_impressions(text, text[], bigint, text, text, text),
                          recsys.log_feedback(text, text, text, numeric, text)
   TO recsys_app;
GRANT SELECT ON recsys.model_overview, recsys.training_curve, recsys.evaluation_history, recsys.bundle_performance,
                recsys.experiment_results, recsys.serving, recsys.campaign_results, recsys.forecast_accuracy,
                recsys.demand_forecasts TO recsys_reader;
--@end
