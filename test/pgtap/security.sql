-- Roles, a hostile search_path, and erasure: a reader serves but reads no customer data, a function shadowing a
-- built-in in the caller's path changes nothing, and forget_user leaves no row holding the customer.
\i test/pgtap/setup.psql
BEGIN;
SELECT plan(17);
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
SELECT throws_ok($$SELECT * FROM recsys.prepare()$$, '42501', NULL, 'a reader cannot prepare');
RESET ROLE;

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
