-- What Citus needs to push recsys down to workers (README "Scale-out"): training aggregates with a combine
-- function and a state that can travel (not internal), serving functions whose bodies resolve no name through
-- the caller's search_path, and the user id as the first argument (create_distributed_function's distribution
-- argument '$1').
\i test/pgtap/setup.psql
BEGIN;
SELECT plan(6);

SELECT is(array_agg(a.aggfnoid::regprocedure::text ORDER BY 1), NULL,
          'every recsys aggregate has a COMBINEFUNC')
  FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'recsys' AND a.aggcombinefn = 0;
SELECT is(array_agg(a.aggfnoid::regprocedure::text ORDER BY 1), NULL,
          'no recsys aggregate has an internal state type')
  FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'recsys' AND a.aggtranstype = 'internal'::regtype;
SELECT is(array_agg(a.aggfnoid::regprocedure::text ORDER BY 1), NULL,
          'every recsys aggregate is PARALLEL SAFE, with a bytea state')
  FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'recsys' AND (p.proparallel <> 's' OR a.aggtranstype <> 'bytea'::regtype);
SELECT ok((SELECT count(*) FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'recsys') >= 5,
          'the training aggregates (mlp_train, rnn_train, mlp_train_partial, rnn_train_partial, train_merge) are there');
-- a body run with search_path = pg_catalog, pg_temp can only reach recsys objects by qualified names
SELECT is(array_agg(p.oid::regprocedure::text ORDER BY 1), NULL,
          'every SQL serving function runs with search_path pinned to pg_catalog, pg_temp (so its names are qualified)')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
 WHERE n.nspname = 'public' AND p.proname IN ('recommend_bundles', 'recommend_bundles_batch', 'recommend_items',
                                              'complete_bundle', 'similar_items')
   AND l.lanname <> 'c' AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp'];
SELECT is(array_agg(p.oid::regprocedure::text ORDER BY 1), NULL,
          'every per-user serving function takes the user id first (the distribution argument)')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public' AND p.proname IN ('recommend_bundles', 'recommend_items')
   AND (p.proargnames)[1] <> 'user_id';

SELECT * FROM finish();
ROLLBACK;
