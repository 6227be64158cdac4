-- Roles, a hostile search_path, and erasure: a reader serves but reads no customer data, a function shadowing a
-- built-in in the caller's path changes nothing, and forget_user leaves no row holding the customer.
\i test/pgtap/setup.psql
BEGIN;
SELECT plan(45);
DO $$ BEGIN PERFORM recsys.demo_shop('secshop', customers => 300); END $$;
CREATE ROLE rs_alice;
CREATE ROLE rs_bob;
CREATE ROLE rs_eve;
GRANT recsys_reader TO rs_alice;
GRANT recsys_admin TO rs_bob;
GRANT USAGE ON SCHEMA secshop TO rs_bob;
GRANT SELECT ON ALL TABLES IN SCHEMA secshop TO rs_bob;

SET ROLE rs_bob;
SELECT lives_ok($$SELECT count(*) FROM recsys.prepare()$$, 'an admin prepares');
RESET ROLE;

SET ROLE rs_alice;
SELECT lives_ok($$SELECT * FROM recommend_bundles(42, 3)$$, 'a reader gets recommendations');
SELECT lives_ok($$SELECT * FROM similar_items('1001', 3)$$, 'a reader gets similar items');
SELECT throws_ok($$SELECT * FROM recsys.events_clean$$, '42501', NULL, 'a reader cannot read events');
SELECT throws_ok($$SELECT * FROM recsys.id_map$$, '42501', NULL, 'a reader cannot read the id maps');
SELECT throws_ok($$SELECT * FROM recsys.user_bundles$$, '42501', NULL, 'a reader cannot read purchase histories');
SELECT throws_ok($$SELECT * FROM recsys.impressions$$, '42501', NULL, 'a reader cannot read the impression log');
SELECT throws_ok($$SELECT * FROM recsys.feedback$$, '42501', NULL, 'a reader cannot read the feedback log');
SELECT lives_ok($$SELECT * FROM recsys.model_overview$$, 'a reader reads the BI views');
SELECT lives_ok($$SELECT (SELECT count(*) FROM recsys.training_curve) + (SELECT count(*) FROM recsys.evaluation_history)
                        + (SELECT count(*) FROM recsys.bundle_performance) + (SELECT count(*) FROM recsys.experiment_results)$$,
                'and every other BI view');
SELECT throws_ok($$SELECT * FROM recsys.prepare()$$, '42501', NULL, 'a reader cannot prepare');
-- issue 12: a reader may not drop every backend's serving cache, nor ask for history-revealing answers
SELECT throws_ok($$SELECT recsys.serving_invalidate()$$, '42501', NULL, 'a reader cannot invalidate the serving caches');
SELECT throws_ok($$SELECT * FROM recommend_bundles(42, 3, '{"exclude_taken": false}')$$, '42501', NULL,
                 'a reader cannot ask for bundles the customer already took (exclude_taken false)');
SELECT throws_ok($$SELECT * FROM recommend_bundles(42, 3, '{"repurchase_days": 30}')$$, '42501', NULL,
                 'a reader cannot sweep repurchase_days (it dates the customer''s purchases)');
SELECT throws_ok($$SELECT * FROM recommend_items(42, 3, '{"exclude_bought": false}')$$, '42501', NULL,
                 'a reader cannot ask for items the customer already bought');
SELECT lives_ok($$SELECT * FROM recommend_bundles(42, 3, '{"exclude_taken": true}')$$, 'a reader may state the default');
SELECT throws_ok($$SELECT recsys.model_pack('mlp', '{"w": [1]}')$$, '42501', NULL, 'a reader runs no recsys function beyond serving');
RESET ROLE;
CREATE ROLE rs_app;
GRANT recsys_app TO rs_app;
SET ROLE rs_app;
SELECT lives_ok($$SELECT * FROM recommend_bundles(42, 3, '{"exclude_taken": false}')$$,
                'the application role (recsys_app) serves the logged-in customer with every option');
SELECT lives_ok($$SELECT * FROM recommend_items(42, 3, '{"exclude_bought": false}')$$, 'including exclude_bought false');
SELECT lives_ok($$SELECT * FROM recsys.recommend_bundles_logged('42', 3)$$, 'the application serves and logs the impressions');
SELECT lives_ok($$SELECT recsys.log_feedback('42', '611', 'click')$$, 'and logs the customer''s feedback');
SELECT throws_ok($$SELECT * FROM recsys.impressions$$, '42501', NULL, 'without reading the logs');
SELECT throws_ok($$SELECT * FROM recsys.events_clean$$, '42501', NULL, 'or the raw events');
RESET ROLE;
SET ROLE rs_alice;
SELECT throws_ok($$SELECT recsys.log_feedback('42', '611', 'click')$$, '42501', NULL, 'a plain reader logs nothing');
RESET ROLE;

-- issue 12: an admin cannot become superuser through code on recsys tables or sources
GRANT CREATE ON SCHEMA secshop TO rs_bob;
SET ROLE rs_bob;
CREATE FUNCTION secshop.escalate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ALTER ROLE rs_bob SUPERUSER; RETURN NULL; END $$;
SELECT throws_ok($$CREATE TRIGGER escalate AFTER INSERT ON recsys.prepare_log FOR EACH STATEMENT EXECUTE FUNCTION secshop.escalate()$$,
                 '42501', NULL, 'an admin cannot put a trigger on a recsys table');
SELECT throws_ok($$TRUNCATE recsys.model_versions CASCADE$$, '42501', NULL, 'an admin cannot truncate recsys tables');
SELECT throws_ok($$CREATE TABLE secshop.pin (v bigint REFERENCES recsys.model_versions)$$, '42501', NULL,
                 'nor tie its own tables to them (REFERENCES)');
CREATE FUNCTION secshop.sneak(bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN ALTER ROLE rs_bob SUPERUSER; END IF; RETURN $1; END $$;
CREATE VIEW secshop.sneaky_lines AS SELECT secshop.sneak(customer_id) AS customer_id, product_id FROM secshop.order_lines;
SELECT lives_ok($$SELECT recsys.register_events('secshop.sneaky_lines', 'customer_id', 'product_id')$$, 'an admin registers its own view');
RESET ROLE;
SELECT throws_ok($$CREATE TRIGGER audit AFTER INSERT ON recsys.prepare_log FOR EACH STATEMENT EXECUTE FUNCTION secshop.escalate()$$,
                 '42501', NULL, 'not even a superuser can attach a trigger to a recsys table (event trigger)');
SELECT throws_ok($$SELECT * FROM recsys.prepare()$$, '42501', NULL,
                 'a superuser''s prepare refuses a source view owned by a lesser role (its functions would run as superuser)');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'rs_bob'), false, 'and the admin is no superuser');
SET ROLE rs_bob;
SELECT lives_ok($$SELECT count(*) FROM recsys.prepare()$$, 'the admin prepares from its own view');
SELECT lives_ok($$SELECT recsys.register_events('secshop.order_lines', 'customer_id', 'product_id', 'ordered_at', 'order_id', 'quantity')$$,
                'and registers the shop''s view again');
RESET ROLE;
SELECT lives_ok($$SELECT count(*) FROM recsys.prepare()$$, 'a superuser prepares from a superuser''s view');

-- every function resolves names with a pinned path: a SET clause, or C that runs no query (recommend_bundles
-- pins around its loads; recsys.train per transaction)
SELECT is(array_agg(p.oid::regprocedure::text ORDER BY 1), NULL,
          'every SQL and PL/pgSQL function of recsys carries search_path = pg_catalog, pg_temp')
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'recsys' JOIN pg_language l ON l.oid = p.prolang
 WHERE l.lanname IN ('sql', 'plpgsql') AND p.prokind = 'f'
   AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp'];
SELECT ok(ARRAY['gini', 'mlp_forward', 'mlp_train_step', 'model_check', 'model_info', 'model_init', 'model_pack', 'model_tensor',
                'may_see_history', 'normal_cdf', 'option_specs', 'rank_metrics', 'recommend_bundles', 'recommend_bundles_traced', 'rnn_encode',
                'rnn_train_step', 'serving_invalidate', 'serving_status', 'train_combine', 'train_final', 'version',
                'bundle_attach', 'bundle_part', 'bundle_scorer_init', 'item_scorer_init', 'item_attach', 'item_encoder', 'scorer_samples_release', 'demand_init', 'item_default_score', 'ease_scores', 'fit_merge',
                'in_customer_sample']::text[] @> array_agg(p.proname::text ORDER BY 1),
          'the C functions without a SET clause are the ones that run no query (and recommend_bundles, which pins its own)')
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'recsys' JOIN pg_language l ON l.oid = p.prolang
 WHERE l.lanname = 'c' AND p.proconfig IS NULL;
SELECT is(count(*), 0::bigint, 'PUBLIC may execute no recsys routine')
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'recsys', aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
 WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE';
SELECT is(count(*), 0::bigint, 'no recsys role holds TRIGGER, TRUNCATE or REFERENCES on a recsys table')
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.relnamespace = 'recsys'::regnamespace AND c.relkind = 'r'
   AND a.grantee IN (0, 'recsys_admin'::regrole, 'recsys_reader'::regrole, 'recsys_app'::regrole)
   AND a.privilege_type IN ('TRIGGER', 'TRUNCATE', 'REFERENCES');

SET ROLE rs_eve;
SELECT throws_ok($$SELECT * FROM recommend_bundles(42, 3)$$, '42501', NULL, 'a role with neither grant cannot serve');
RESET ROLE;

-- a hostile path: max() and unnest() shadowed by functions that fail if ever called
CREATE SCHEMA evil;
CREATE FUNCTION evil.boom(integer, integer) RETURNS integer LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked'; END $$;
CREATE AGGREGATE evil.max(integer) (SFUNC = evil.boom, STYPE = integer);
CREATE FUNCTION evil.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked'; END $$;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
-- the serving caches reload under the hostile path (their queries are where a hijack would happen)
SELECT recsys.serving_invalidate();
SET search_path = evil, pg_catalog, public;
SELECT lives_ok($$SELECT * FROM recommend_bundles(43, 3)$$, 'recommend_bundles ignores the caller''s hostile search_path');
SELECT lives_ok($$SELECT * FROM complete_bundle(ARRAY['1001'], 3)$$, 'complete_bundle ignores it too');
SELECT lives_ok($$SELECT count(*) FROM recsys.prepare()$$, 'so does prepare');
RESET search_path;

-- erasure: nothing of customer 42 left in any recsys column about users
SELECT recsys.log_impressions('42', ARRAY['611', '612']);
SELECT recsys.log_feedback('42', '611', 'purchase', 10);
CREATE TEMP TABLE gone AS SELECT idx FROM recsys.id_map WHERE space = 'user' AND ext_id = '42';
SELECT ok((recsys.forget_user('42') ->> 'events_clean')::int > 0, 'forget_user removes the customer''s events');
CREATE FUNCTION pg_temp.rows_holding(ext text, idx int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE c record; n bigint := 0; m bigint;
BEGIN
    FOR c IN SELECT a.attrelid::regclass AS rel, a.attname, t.typname FROM pg_attribute a
               JOIN pg_class r ON r.oid = a.attrelid JOIN pg_namespace s ON s.oid = r.relnamespace
               JOIN pg_type t ON t.oid = a.atttypid
              WHERE s.nspname = 'recsys' AND r.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
                AND a.attname ~ 'user' LOOP
        IF c.typname = 'text' THEN
            EXECUTE format('SELECT count(*) FROM %s WHERE %I = $1', c.rel, c.attname) INTO m USING ext;
        ELSE
            EXECUTE format('SELECT count(*) FROM %s WHERE %I::bigint = $1', c.rel, c.attname) INTO m USING idx;
        END IF;
        n := n + m;
    END LOOP;
    RETURN n + (SELECT count(*) FROM recsys.id_map WHERE space = 'user' AND (ext_id = ext OR id_map.idx = rows_holding.idx));
END $$;
SELECT is(pg_temp.rows_holding('42', (SELECT idx FROM gone)), 0::bigint, 'no row of any recsys table holds the customer''s id or index');
SELECT is((SELECT rows FROM recsys.prepare() WHERE source = 'events' AND rule = 'forgotten_user'), 15::bigint,
          'prepare keeps the forgotten customer out although the shop still has their orders');

SELECT * FROM finish();
ROLLBACK;
