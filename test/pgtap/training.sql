-- Training aggregates under parallel query, and cancellation by statement_timeout.
\i test/pgtap/setup.psql
-- regular tables (temp tables would keep the plan serial): y = (x1 > x2) plus two noise features
DROP TABLE IF EXISTS public.train_rows, public.train_seqs;
CREATE TABLE public.train_rows AS
SELECT ARRAY[a, b, ((i * 31) % 101) / 101.0, ((i * 17) % 89) / 89.0]::real[] AS x, (a > b)::int::real AS y
  FROM (SELECT i, ((i * 7919) % 1000) / 1000.0 AS a, ((i * 104729) % 997) / 997.0 AS b
          FROM generate_series(1::bigint, 300000) i) t;
CREATE TABLE public.train_seqs AS
SELECT ARRAY(SELECT ((i * 7 + j * 13) % 5000) FROM generate_series(1, 20) j) AS items, (i * 11) % 5000 AS target
  FROM generate_series(1, 60000) i;
ANALYZE public.train_rows, public.train_seqs;

CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text; out text := '';
BEGIN
  FOR r IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP out := out || r || E'\n'; END LOOP;
  RETURN out;
END $$;
-- mean BCE of a model over the table
CREATE FUNCTION pg_temp.bce(w bytea) RETURNS float8 LANGUAGE sql AS $$
  SELECT avg(-(y * ln(greatest(p, 1e-7)) + (1 - y) * ln(greatest(1 - p, 1e-7))))
    FROM (SELECT y, (recsys.mlp_forward(w, x))[1]::float8 AS p FROM public.train_rows) t $$;

BEGIN;
SELECT plan(10);

SELECT is((SELECT aggcombinefn::regproc::text FROM pg_aggregate WHERE aggfnoid = 'recsys.mlp_train'::regproc),
          'recsys.train_combine', 'mlp_train has a combine function');
SELECT is((SELECT format_type(aggtranstype, NULL) FROM pg_aggregate WHERE aggfnoid = 'recsys.rnn_train'::regproc),
          'bytea', 'rnn_train state is bytea, not internal');

SET LOCAL max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE serial AS
SELECT recsys.mlp_train(recsys.model_init('mlp', '{"layers": [4, 16, 1]}', 3), x, y, '{"lr": 0.01, "batch": 64}') AS w
  FROM public.train_rows;

-- force a parallel plan on this small table and machine
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
-- workers only: a leader that scanned every block itself would make the "parallel" model the serial one
SET LOCAL parallel_leader_participation = off;
CREATE TEMP TABLE plan AS
SELECT pg_temp.plan_of($$SELECT recsys.mlp_train(recsys.model_init('mlp', '{"layers": [4, 16, 1]}', 3), x, y,
                                                  '{"lr": 0.01, "batch": 64}') FROM public.train_rows$$) AS p;
SELECT ok(p LIKE '%Partial Aggregate%' AND p LIKE '%Finalize Aggregate%', 'EXPLAIN shows Partial and Finalize Aggregate') FROM plan;
SELECT ok(p ~ 'Workers Launched: [12]', 'workers really ran the partial training') FROM plan;
CREATE TEMP TABLE par AS
SELECT recsys.mlp_train(recsys.model_init('mlp', '{"layers": [4, 16, 1]}', 3), x, y, '{"lr": 0.01, "batch": 64}') AS w
  FROM public.train_rows;
SELECT is((SELECT (recsys.model_info(w) #>> '{config,train,samples}')::int FROM par), 300000,
          'the merged model counts every row once');
SELECT ok((SELECT (recsys.model_info(w) #>> '{config,train,merged_parts}')::int FROM par) >= 2,
          'it was merged from the workers'' partial models');
CREATE TEMP TABLE losses AS SELECT pg_temp.bce((SELECT w FROM serial)) AS serial, pg_temp.bce((SELECT w FROM par)) AS par,
                                   pg_temp.bce(recsys.model_init('mlp', '{"layers": [4, 16, 1]}', 3)) AS untrained;
SELECT ok(par < 0.5 * untrained, format('the parallel-trained model learned (loss %s, untrained %s)',
                                        round(par::numeric, 4), round(untrained::numeric, 4))) FROM losses;
-- stated tolerance: one SGD epoch's final loss is noisy (serially, on the first half of these rows 0.029, on all of
-- them 0.037, on the first quarter 0.041), and how the rows split between the workers depends on scheduling; over
-- repeated parallel runs under load the loss ranged 0.027..0.048, so the bound is twice the serial loss (at
-- lr 0.05 the noise was larger: 0.018..0.071 against a serial 0.046, which failed a 50% bound once in CI)
SELECT ok(par <= serial * 2, format('parallel loss %s within twice the serial loss %s',
                                       round(par::numeric, 6), round(serial::numeric, 6))) FROM losses;

-- statement_timeout stops training inside a mini-batch (4096 sequences of 20 steps per step).
-- A cancel is not caught by WHEN OTHERS (pgTAP's throws_ok), so this catches query_canceled by name.
CREATE FUNCTION pg_temp.train_until_canceled() RETURNS float8 LANGUAGE plpgsql AS $f$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM recsys.rnn_train(recsys.model_init('gru', '{"vocab": 5000, "embed": 32, "hidden": 64}', 1),
                           items, target, '{"batch": 4096, "negatives": 100}') FROM public.train_seqs;
  RETURN -1;
EXCEPTION WHEN query_canceled THEN
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $f$;
SET LOCAL max_parallel_workers_per_gather = 0;
SET LOCAL statement_timeout = '300ms';
CREATE TEMP TABLE canceled AS SELECT pg_temp.train_until_canceled() AS ms;
SET LOCAL statement_timeout = 0;
SELECT ok(ms >= 0, 'statement_timeout cancels rnn_train') FROM canceled;
SELECT ok(ms < 1000, format('... within a second of the 300 ms timeout (took %s ms)', round(ms::numeric))) FROM canceled;

SELECT * FROM finish();
ROLLBACK;
DROP TABLE public.train_rows, public.train_seqs;
