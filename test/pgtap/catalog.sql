-- Catalog-wide rules: every object commented, search_path pinned, volatility told, state dumped by pg_dump.
\i test/pgtap/setup.psql
BEGIN;
SELECT plan(10);

CREATE TEMP VIEW members AS
SELECT d.classid::regclass AS catalog, d.objid,
       pg_describe_object(d.classid, d.objid, 0) AS object
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'recsys') AND d.deptype = 'e';

SELECT is(array_agg(object ORDER BY object), NULL,
          'every function, table, view, sequence and schema of recsys has a COMMENT')
  FROM members m
 WHERE m.catalog IN ('pg_proc'::regclass, 'pg_class'::regclass, 'pg_namespace'::regclass)
   AND obj_description(m.objid, m.catalog::text) IS NULL
   AND NOT (m.catalog = 'pg_class'::regclass
            AND (SELECT relkind FROM pg_class WHERE oid = m.objid) IN ('i', 'S')
            AND object NOT LIKE 'sequence recsys.prepare_run_seq');

SELECT is(array_agg(p.oid::regprocedure::text ORDER BY 1), NULL,
          'every SQL and PL/pgSQL function pins search_path')
  FROM members m JOIN pg_proc p ON p.oid = m.objid
  JOIN pg_language l ON l.oid = p.prolang
 WHERE m.catalog = 'pg_proc'::regclass AND l.lanname IN ('sql', 'plpgsql')
   AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp']
   -- a procedure with a SET clause cannot COMMIT; recsys.train commits per epoch and qualifies every name
   AND p.prokind <> 'p';

SELECT is(array_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text),
          '{"complete_bundle(text[],integer,jsonb)","recommend_bundles(bigint,integer,jsonb)","recommend_bundles(text,integer,jsonb)","recommend_bundles_batch(bigint[],integer,jsonb)","recommend_bundles_batch(text[],integer,jsonb)","recommend_items(text,integer,jsonb)","recommend_promotions(text,integer,jsonb)",recsys.experiment_report(text),"recsys.log_feedback(text,text,text,numeric,text)","recsys.log_impressions(text,text[],bigint,text,text,text)","recsys.recommend_bundles_logged(text,integer,jsonb)","recsys.recommend_bundles_traced(text,integer,jsonb)","recsys.statement_live(integer,timestamp with time zone)",recsys.training_claim(text),recsys.training_release(text),"similar_items(text,integer,jsonb)"}',
          'SECURITY DEFINER only where callers must not read the tables (serving, the experiment report, the application''s logging) and for the training claim and the progress view''s liveness check (they read other roles'' pg_stat_activity rows)')
  FROM members m JOIN pg_proc p ON p.oid = m.objid WHERE m.catalog = 'pg_proc'::regclass AND p.prosecdef;
-- C serving pins it around its queries instead (src/serving.c, PinSearchPath); test/pgtap/security.sql attacks both kinds
SELECT is(array_agg(p.oid::regprocedure::text ORDER BY 1), NULL, 'every SQL or PL/pgSQL SECURITY DEFINER function pins search_path')
  FROM members m JOIN pg_proc p ON p.oid = m.objid JOIN pg_language l ON l.oid = p.prolang
 WHERE m.catalog = 'pg_proc'::regclass AND p.prosecdef AND l.lanname <> 'c'
   AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp'];

SELECT is(array_agg(p.oid::regprocedure::text ORDER BY 1), NULL, 'functions that write are VOLATILE')
  FROM members m JOIN pg_proc p ON p.oid = m.objid
 WHERE m.catalog = 'pg_proc'::regclass AND p.provolatile <> 'v'
   AND (p.prosrc ~* '\m(insert|update|delete)\s+(into|from)?\s*recsys\.' OR p.prosrc ~* '\mCREATE\s+(TABLE|SCHEMA|VIEW)');

SELECT is(array_agg(p.oid::regprocedure::text ORDER BY 1), NULL, 'functions that read tables are not IMMUTABLE')
  FROM members m JOIN pg_proc p ON p.oid = m.objid
 WHERE m.catalog = 'pg_proc'::regclass AND p.provolatile = 'i'
   -- a relation of schema recsys after FROM (a set-returning function call, name followed by "(", reads nothing itself)
   AND p.prosrc ~* '\mFROM\s+recsys\.[a-z_]+\M(?!\s*\()';

SELECT is(array_agg(p.oid::regprocedure::text ORDER BY 1), NULL,
          'C functions are IMMUTABLE PARALLEL SAFE, and STRICT unless they are aggregate transition functions')
  FROM members m JOIN pg_proc p ON p.oid = m.objid JOIN pg_language l ON l.oid = p.prolang
 WHERE m.catalog = 'pg_proc'::regclass AND l.lanname = 'c'
   AND NOT (p.provolatile = 'i' AND p.proparallel = 's'
            AND (p.proisstrict OR p.oid IN (SELECT aggtransfn FROM pg_aggregate)))
   -- ease_fit and item_pairs read the prepared tables through SPI: STABLE, and kept in the leader
   AND NOT (p.oid IN ('recsys.ease_fit(double precision)'::regprocedure, 'recsys.item_pairs(integer, integer)'::regprocedure)
            AND p.provolatile = 's' AND p.proparallel = 'r')
   -- feature extraction and mining read the prepared tables through SPI: STABLE, kept in the leader
   AND NOT (p.oid IN ('recsys.user_sequences(integer)'::regprocedure, 'recsys.item_profiles(integer)'::regprocedure,
                      'recsys.user_profiles(integer)'::regprocedure, 'recsys.mine_itemsets(integer, integer, integer)'::regprocedure,
                      'recsys.basket_takers(integer[], integer[], integer[])'::regprocedure,
                      'recsys.item_sequences(bigint, integer, integer)'::regprocedure)
            AND p.provolatile = 's' AND p.proparallel = 'r' AND p.proisstrict)
   -- the bundle fit and its samples, and the item samples, read prepared data through SPI and take seconds:
   -- VOLATILE, in the leader
   AND NOT (p.oid IN ('recsys.bundle_fit(jsonb)'::regprocedure, 'recsys.bundle_samples(bytea, bigint, integer, integer)'::regprocedure,
                      'recsys.fit_partial(jsonb)'::regprocedure)
            AND p.provolatile = 'v' AND p.proparallel = 'r' AND p.proisstrict)
   -- a scorer's epochs and validation read a version's samples through SPI into the backend's memory, which the
   -- release frees: VOLATILE, in the leader
   AND NOT (p.oid IN ('recsys.scorer_epoch(bigint, bytea, integer, jsonb)'::regprocedure,
                      'recsys.scorer_ranks(bigint, bytea)'::regprocedure, 'recsys.scorer_samples_release()'::regprocedure)
            AND p.provolatile = 'v' AND p.proparallel = 'r')
   -- item weights with the encoder optional (NULL: the scorer alone)
   AND NOT (p.oid = 'recsys.item_attach(bytea, bytea)'::regprocedure
            AND p.provolatile = 'i' AND p.proparallel = 's' AND NOT p.proisstrict)
   -- the item samples likewise, with the encoder optional (NULL: no GRU feature)
   AND NOT (p.oid = 'recsys.item_samples(bigint, integer, bytea)'::regprocedure
            AND p.provolatile = 'v' AND p.proparallel = 'r' AND NOT p.proisstrict)
   -- the item model's rankings (recommend_items, similar_items, complete_bundle) read through SPI and the backend's
   -- item cache: STABLE, in the leader
   AND NOT (p.oid IN ('recsys.item_rank(text, integer, jsonb)'::regprocedure,
                      'recsys.similar_items_idx(integer, integer, jsonb)'::regprocedure,
                      'recsys.complete_bundle_idx(integer[], integer, jsonb)'::regprocedure)
            AND p.provolatile = 's' AND p.proparallel = 'r' AND p.proisstrict)
   -- the demand model's fit reads the daily sales through SPI: STABLE, in the leader; its forecasts too, with the
   -- model optional (NULL: the baselines alone)
   AND NOT (p.oid = 'recsys.demand_fit(bytea, text, date, integer, jsonb)'::regprocedure
            AND p.provolatile = 's' AND p.proparallel = 'r' AND p.proisstrict)
   AND NOT (p.oid = 'recsys.demand_predict(bytea, text, date, integer, jsonb)'::regprocedure
            AND p.provolatile = 's' AND p.proparallel = 'r' AND NOT p.proisstrict)
   -- a customer's features under a fit read their history through SPI: STABLE, in the leader
   AND NOT (p.oid = 'recsys.bundle_features(bytea, integer, integer[])'::regprocedure
            AND p.provolatile = 's' AND p.proparallel = 'r' AND p.proisstrict)
   -- serving reads tables (STABLE) and keeps a per-backend cache, which a parallel worker may build as well
   AND NOT (p.proname IN ('recommend_bundles', 'recommend_bundles_traced') AND p.provolatile = 's' AND p.proparallel = 's' AND p.proisstrict)
   -- n_items is optional (NULL: the catalogue is the list plus the relevant ids)
   AND NOT (p.oid = 'recsys.rank_metrics(text[], text[], integer, bigint)'::regprocedure AND p.provolatile = 'i'
            AND p.proparallel = 's' AND NOT p.proisstrict)
   -- scorer and encoder are optional (NULL) parts of the model bundle_attach composes
   AND NOT (p.oid = 'recsys.bundle_attach(bytea, bytea, bytea, integer)'::regprocedure AND p.provolatile = 'i'
            AND p.proparallel = 's' AND NOT p.proisstrict)
   -- cache control: invalidation is sent at commit (VOLATILE, leader only); the status reads backend state
   AND NOT (p.oid = 'recsys.serving_invalidate()'::regprocedure AND p.provolatile = 'v' AND p.proparallel = 'u')
   AND NOT (p.oid = 'recsys.serving_status()'::regprocedure AND p.provolatile = 'v' AND p.proparallel = 'r')
   -- role membership can change within a query's life: STABLE
   AND NOT (p.oid = 'recsys.may_see_history()'::regprocedure AND p.provolatile = 's' AND p.proparallel = 's');

SELECT is(array_agg(c.oid::regclass::text ORDER BY 1), NULL, 'every recsys table is dumped by pg_dump')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'recsys' AND c.relkind IN ('r', 'S')
   AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'recsys')::oid[]);

SELECT is((SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'public' AND p.proname = 'recommend_bundles'), 2::bigint,
          'recommend_bundles (bigint and text forms) is in the extension schema');
SELECT is((SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'public'
              AND p.proname NOT IN ('recommend_bundles', 'recommend_bundles_batch', 'recommend_items', 'complete_bundle',
                                    'similar_items', 'recommend_promotions')
              AND p.oid IN (SELECT objid FROM members)), 0::bigint,
          'nothing but the serving functions lands in the extension schema');

SELECT * FROM finish();
ROLLBACK;
