-- A SQL-level fuzzer for the entry points whose input is JSON or arrays shaped by the caller: model_pack (nested
-- tensors, configs), model_init, mlp_forward, the serving functions' options, the training and mining option
-- parsers, rank_metrics. Inputs come from a seeded generator (setseed), so a run is reproducible from its seed.
-- Every call runs under a statement_timeout in its own subtransaction; the answer must be a result or an ERROR
-- of an expected class. An internal error (XX000), running out of memory (53xxx), a timeout (57014: a call that
-- ran away) or a lost backend (psql exits) is a finding.
--   psql -v iterations=N -v seed=S -v seconds=T -f test/fuzz/fuzz_sql.sql DB   (a database with a trained model)
--   -v role=R runs the calls as role R (a recsys_reader login, say); the generator's item ids are read first
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE TEMP TABLE fz_items AS SELECT ext_id FROM recsys.id_map WHERE space = 'item';
GRANT SELECT ON fz_items TO PUBLIC;
SET ROLE :"role";

CREATE FUNCTION pg_temp.pick(VARIADIC xs text[]) RETURNS text LANGUAGE sql AS
$$ SELECT xs[1 + floor(random() * cardinality(xs))::int] $$;

CREATE FUNCTION pg_temp.fz_num() RETURNS jsonb LANGUAGE sql AS $$
    SELECT (pg_temp.pick('0', '1', '-1', '2', '3', '7', '20', '1.5', '2.9', '-0.5', '0.001', '1e-300', '1e300', '-1e300',
                         '65536', '2147483648', '9007199254740993', '1e30', '30', '100', '1000', '10000', '10001',
                         (floor(random() * 300))::text, (random() * 200 - 100)::text))::jsonb
$$;

CREATE FUNCTION pg_temp.fz_scalar() RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE r float8 := random();
BEGIN
    IF r < 0.45 THEN RETURN pg_temp.fz_num(); END IF;
    IF r < 0.75 THEN
        RETURN to_jsonb(pg_temp.pick('42', '1', '1000', '1001', ' +0546', '0546', '', 'x', 'NaN', 'Infinity', 'default',
                                      'nope', 'Ä', repeat('a', 300), (SELECT ext_id FROM fz_items ORDER BY random() LIMIT 1)));
    END IF;
    IF r < 0.93 THEN RETURN to_jsonb(random() < 0.5); END IF;
    RETURN 'null'::jsonb;
END $$;

-- an array of n copies-or-variants; promise: the first element is long, the rest are short (a shape that lies)
CREATE FUNCTION pg_temp.fz_array(depth int) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    n int := (pg_temp.pick('0', '1', '2', '3', '5', '8', '1001', '4'))::int;
    v jsonb := '[]';
BEGIN
    IF depth > 0 AND random() < 0.15 THEN
        -- a nested array whose first element promises far more than the rest hold
        RETURN jsonb_build_array(pg_temp.fz_array(depth - 1)) || to_jsonb(array_fill(0, ARRAY[(pg_temp.pick('1', '2', '100', '5000'))::int]));
    END IF;
    IF n > 1000 THEN
        RETURN to_jsonb(array_fill((floor(random() * 300))::int, ARRAY[n]));
    END IF;
    FOR i IN 1 .. n LOOP
        v := v || jsonb_build_array(CASE WHEN depth > 0 AND random() < 0.5 THEN pg_temp.fz_array(depth - 1)
                                         ELSE pg_temp.fz_scalar() END);
    END LOOP;
    RETURN v;
END $$;

CREATE FUNCTION pg_temp.fz_value(depth int) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    IF depth <= 0 OR random() < 0.55 THEN RETURN pg_temp.fz_scalar(); END IF;
    IF random() < 0.7 THEN RETURN pg_temp.fz_array(depth - 1); END IF;
    RETURN pg_temp.fz_object(ARRAY['a', 'b', 'layers', 'vocab'], depth - 1);
END $$;

-- an object of a few keys, mostly known ones, each with a value that may be almost right
CREATE FUNCTION pg_temp.fz_object(keys text[], depth int) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    o jsonb := '{}';
    n int := floor(random() * 4)::int;
BEGIN
    IF random() < 0.05 THEN RETURN pg_temp.fz_value(1); END IF;   -- not an object at all
    FOR i IN 1 .. n LOOP
        o := o || jsonb_build_object(CASE WHEN random() < 0.9 THEN keys[1 + floor(random() * cardinality(keys))::int] ELSE 'nope' END,
                                     pg_temp.fz_value(depth));
    END LOOP;
    RETURN o;
END $$;

CREATE FUNCTION pg_temp.fz_call() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t int := floor(random() * 9)::int;
    serving text[] := ARRAY['exclude_taken', 'repurchase_days', 'in_stock', 'max_price', 'min_categories', 'include_items',
                            'exclude_items', 'session', 'model', 'version'];
    items text[] := ARRAY['exclude_bought', 'in_stock', 'max_price'];
    train text[] := ARRAY['seed', 'lambda', 'beta', 'keep_b', 'keep_m', 'candidates', 'hidden', 'lr', 'max_epochs', 'patience',
                          'gru_epochs', 'gru_embed', 'gru_hidden', 'force', 'resume', 'incremental', 'features'];
    user_id text := pg_temp.pick('42', '1', '7', 'visitor', '', '-1', ' +0042', '0042');
    k text := pg_temp.pick('-1', '0', '1', '3', '10', '10000', '10001');
BEGIN
    RETURN CASE t
        WHEN 0 THEN format('SELECT recsys.model_pack(%L, %L, %L)', pg_temp.pick('mlp', 'gru', 'rnn', 'bundle', 'baseline', 'nope'),
                           jsonb_build_object(pg_temp.pick('w', 'l0.w', 'l0.b', 'emb', 'out'), pg_temp.fz_array(3),
                                              pg_temp.pick('w', 'l1.w', 'b'), pg_temp.fz_array(2)),
                           pg_temp.fz_object(ARRAY['layers', 'vocab', 'embed', 'hidden', 'activation', 'output'], 1))
        WHEN 1 THEN format('SELECT recsys.model_init(%L, %L, (%s)::numeric::bigint)', pg_temp.pick('mlp', 'gru', 'rnn', 'bundle'),
                           pg_temp.fz_object(ARRAY['layers', 'vocab', 'embed', 'hidden', 'activation', 'output'], 1), pg_temp.fz_num())
        WHEN 2 THEN format('SELECT recsys.mlp_forward(recsys.model_init(''mlp'', %L, 1), %L::real[])',
                           jsonb_build_object('layers', jsonb_build_array((pg_temp.pick('1', '2', '5'))::int,
                                                                          (pg_temp.pick('1', '8', '64', '2048'))::int, 1)),
                           (SELECT array_agg(round((random() * 10)::numeric, 2)) FROM generate_series(1, (pg_temp.pick('1', '2', '5', '10'))::int)))
        WHEN 3 THEN format('SELECT count(*) FROM recommend_bundles(%L, %s, %L)', user_id, k, pg_temp.fz_object(serving, 1))
        WHEN 4 THEN format('SELECT count(*) FROM recommend_bundles(%s::bigint, %s, %L)', pg_temp.pick('42', '1', '-1', '9223372036854775807'), k,
                           pg_temp.fz_object(serving, 1))
        WHEN 5 THEN format('SELECT count(*) FROM recommend_items(%L, %s, %L)', user_id, k, pg_temp.fz_object(items, 1))
        WHEN 6 THEN format('SELECT count(*) FROM complete_bundle(%L::text[], %s, %L)',
                           (SELECT array_agg(ext_id) FROM (SELECT ext_id FROM fz_items ORDER BY random() LIMIT 3) x),
                           k, pg_temp.fz_object(items, 1))
        WHEN 7 THEN format('SELECT recsys.train_options(%L)', pg_temp.fz_object(train, 1))
        ELSE format('SELECT recsys.rank_metrics(%L::text[], %L::text[], %s)',
                    (SELECT array_agg(x::text) FROM generate_series(1, (pg_temp.pick('0', '3', '20'))::int) x),
                    (SELECT array_agg(x::text) FROM generate_series(2, (pg_temp.pick('1', '4', '30'))::int) x), k)
    END;
END $$;

-- runs calls until iterations or seconds are used up; one row per SQLSTATE seen, with a sample call
CREATE FUNCTION pg_temp.fuzz(iterations int, seed float8, seconds float8)
RETURNS TABLE (sqlstate text, calls bigint, expected boolean, sample text) LANGUAGE plpgsql AS $$
DECLARE
    q text;
    st text;
    t0 timestamptz := clock_timestamp();
BEGIN
    PERFORM setseed(seed);
    CREATE TEMP TABLE IF NOT EXISTS fz_log (sqlstate text, call text);
    FOR i IN 1 .. iterations LOOP
        EXIT WHEN extract(epoch FROM clock_timestamp() - t0) > seconds;
        q := pg_temp.fz_call();
        BEGIN
            PERFORM set_config('statement_timeout', '5s', true);
            EXECUTE q;
            st := '00000';
        EXCEPTION WHEN OTHERS THEN
            st := SQLSTATE;
        END;
        INSERT INTO fz_log VALUES (st, left(q, 300));
    END LOOP;
    RETURN QUERY
    SELECT l.sqlstate, count(*), (l.sqlstate = '00000' OR left(l.sqlstate, 2) IN ('22', '54', '55')
                                  OR l.sqlstate IN ('42501', '42804', '42704', '2202E', 'XX001')),
           min(l.call)
      FROM fz_log l GROUP BY l.sqlstate ORDER BY l.sqlstate;
END $$;

SELECT * FROM pg_temp.fuzz(:iterations, :seed, :seconds);
SELECT 'fuzz_sql: ' || count(*) || ' calls, ' || count(*) FILTER (WHERE sqlstate = '00000') || ' answered, '
       || count(DISTINCT sqlstate) - 1 || ' error kinds, unexpected: '
       || count(*) FILTER (WHERE NOT (sqlstate = '00000' OR left(sqlstate, 2) IN ('22', '54', '55')
                                      OR sqlstate IN ('42501', '42804', '42704', '2202E', 'XX001'))) AS summary
  FROM fz_log;
