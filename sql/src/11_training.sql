-- recsys SQL source: training -- the bundle ranker's fit and the one training driver (the Makefile assembles sql/src/*.sql into the install script)

------------------------------------------------------------------------------
-- The bundle ranker: sparse EASE over item-view-augmented users, reranked by a learned MLP
------------------------------------------------------------------------------

CREATE FUNCTION recsys.bundle_fit(options jsonb DEFAULT '{}') RETURNS bytea
    AS 'MODULE_PATHNAME', 'bundle_fit'
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
--@begin recsys.bundle_fit(jsonb) comment
COMMENT ON FUNCTION recsys.bundle_fit(jsonb) IS 'fits the bundle ranker on the prepared data: EASE over user rows X + beta * (idf-weighted item view, its weights divided by the customer''s item mass to the power view_norm) and, weighted content, one row per item (the bundles holding it, idf-weighted), kept sparse (keep_b entries per bundle, keep_m per item); exact (dense) up to dense_max bundles (12000, memory bundles squared), past it EASE on the rank strongest eigenpairs of the Gram matrix (rank 256; memory (bundles + items) x rank, time linear in events); options lambda (500), beta (3.2), view_norm (0.75), content (3), keep_b (256), keep_m (64), dense_max, rank, holdout_seed (leave one bundle out per customer with two or more, for validation); returns bundle weights';
--@end
ALTER FUNCTION recsys.bundle_fit(jsonb) SET search_path = pg_catalog, pg_temp;

--@begin recsys.bundle_samples(bytea, bigint, integer, integer)
CREATE FUNCTION recsys.bundle_samples(fit bytea, holdout_seed bigint, candidates integer DEFAULT 100,
                                      max_customers integer DEFAULT 0)
RETURNS TABLE (user_idx integer, valid boolean, bundle_idx integer, x real[], y real)
    AS 'MODULE_PATHNAME', 'bundle_samples'
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.bundle_samples(bytea, bigint, integer, integer) IS 'the learned scorer''s data: for each customer with a held-out bundle (holdout_seed as in the fit), the fit''s top candidates with their features x and y = 1 for the held-out bundle; valid marks the one customer in five kept for validation (a validating customer whose bundle was missed gets one row with a NULL bundle); max_customers > 0 keeps a seeded sample of about that many customers (recsys.in_customer_sample)';
ALTER FUNCTION recsys.bundle_samples(bytea, bigint, integer, integer) SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION recsys.in_customer_sample(user_idx integer, seed bigint, customers bigint, max_customers bigint)
RETURNS boolean
    AS 'MODULE_PATHNAME', 'in_customer_sample'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.in_customer_sample(integer, bigint, bigint, bigint) IS 'whether a customer is in the seeded sample of about max_customers of customers that the learned parts (the scorer, the item blend, the GRU) learn from: everyone when max_customers <= 0 or customers <= max_customers; the fit always sees everyone';
--@end

CREATE FUNCTION recsys.bundle_attach(fit bytea, scorer bytea, encoder bytea DEFAULT NULL, candidates integer DEFAULT 100)
RETURNS bytea
    AS 'MODULE_PATHNAME', 'bundle_attach'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.bundle_attach(bytea, bytea, bytea, integer) IS 'one servable bundle model from a fit, an optional mlp scorer (5 features to 1 score) and an optional gru encoder (for session cold start); candidates is how many of the fit''s best bundles the scorer reranks per request';

CREATE FUNCTION recsys.bundle_part(weights bytea, part text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'bundle_part'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.bundle_part(bytea, text) IS 'the scorer (mlp) or encoder (gru) inside bundle weights as weights of their own, NULL when absent; incremental training warm-starts from them';

------------------------------------------------------------------------------
-- Training: CALL recsys.train(model, options)
------------------------------------------------------------------------------

CREATE TABLE recsys.train_samples (
    version_id bigint NOT NULL REFERENCES recsys.model_versions (version_id) ON DELETE CASCADE,
    user_idx   integer NOT NULL,
    valid      boolean NOT NULL,
    bundle_idx integer,
    x          real[],
    y          real NOT NULL
);
CREATE INDEX ON recsys.train_samples (version_id, valid);
COMMENT ON TABLE recsys.train_samples IS 'the learned scorer''s samples of a version being trained (from recsys.bundle_samples), kept until it finishes so an interrupted training resumes without refitting';
SELECT pg_catalog.pg_extension_config_dump('recsys.train_samples', '');

--@begin recsys.train_options(jsonb)
CREATE OR REPLACE FUNCTION recsys.train_options(options jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o jsonb := recsys.check_options(options, 'train');
BEGIN
    -- checked here, before the features and the fit, rather than by the scorer's first epoch
    IF o ->> 'scorer_loss' NOT IN ('bce', 'listwise') THEN
        RAISE EXCEPTION 'option "scorer_loss" must be bce or listwise, got %', o ->> 'scorer_loss'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN o;
END
$$;
COMMENT ON FUNCTION recsys.train_options(jsonb) IS 'validates recsys.train options and fills in defaults: seed (42), lambda (500), beta (3.2), view_norm (0.75: a customer''s item view weighs (item mass)^-0.75 per unit of idf), content (3: the weight of the bundles'' shared items in the fit), keep_b (256), keep_m (64), dense_max (12000: past it the fit is low-rank), rank (256), max_customers (100000: the scorer, the item blend and the GRU learn from a seeded sample of about that many customers; 0: all), candidates (100), hidden (32), lr (0.01), scorer_loss (bce, or listwise: a softmax over each customer''s candidates), max_epochs (30), patience (6), gru_epochs (1), gru_embed (32), gru_hidden (64), force (false), resume (true), incremental (false), features (true: refresh item and customer features and mined bundles first)';
--@end

-- a learned scorer's epochs and validation over the version's samples held in the backend's memory (read once per
-- training: src/scorer_epochs.c), rather than sorted and fed to mlp_train row by row each epoch
--@begin scorer epochs
CREATE FUNCTION recsys.scorer_epoch(version_id bigint, scorer bytea, epoch integer, options jsonb DEFAULT '{}')
RETURNS bytea
    AS 'MODULE_PATHNAME', 'scorer_epoch'
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.scorer_epoch(bigint, bytea, integer, jsonb) IS 'one epoch of a scorer (mlp weights) over the training samples of a version in training: its customers in an order of the epoch (by hashint8(user_idx * 1000 + epoch)), each one''s rows together, mini-batches as recsys.mlp_train takes them (options: mlp_train''s); the samples are read into the backend''s memory once per version (again when rewritten); NULL when no customer trains';

CREATE FUNCTION recsys.scorer_ranks(version_id bigint, scorer bytea)
RETURNS TABLE (user_idx integer, y real, rk integer)
    AS 'MODULE_PATHNAME', 'scorer_ranks'
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.scorer_ranks(bigint, bytea) IS 'for each validating customer of a version in training, the rank under a scorer of each positive among their scored samples (ties by index), or one row with rank NULL when none was scored; from the samples in memory, as recsys.scorer_epoch';

CREATE FUNCTION recsys.scorer_samples_release() RETURNS boolean
    AS 'MODULE_PATHNAME', 'scorer_samples_release'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.scorer_samples_release() IS 'frees the samples recsys.scorer_epoch holds in this backend''s memory (a training''s last step calls it); true when it held some';
--@end

-- validation Recall@20 and NDCG@20 of a scorer on the held-out bundles of a version's validating customers
--@begin recsys.train_validate(bigint, bytea)
CREATE OR REPLACE FUNCTION recsys.train_validate(version_id bigint, scorer bytea)
RETURNS TABLE (recall20 double precision, ndcg20 double precision, users bigint)
    LANGUAGE sql VOLATILE PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp
AS $$
    -- a scorer: ranked in memory (recsys.scorer_ranks); NULL: the fit alone, its score x[2]
    WITH scored AS (
        SELECT s.user_idx, s.y, s.bundle_idx, s.x[2] AS p
          FROM recsys.train_samples s
         WHERE train_validate.scorer IS NULL
           AND s.version_id = train_validate.version_id AND s.valid AND s.bundle_idx IS NOT NULL
    ), ranked AS (
        SELECT sc.user_idx, sc.y, row_number() OVER (PARTITION BY sc.user_idx ORDER BY sc.p DESC, sc.bundle_idx) AS rk
          FROM scored sc
    ), users AS (
        SELECT DISTINCT s.user_idx FROM recsys.train_samples s
         WHERE train_validate.scorer IS NULL AND s.version_id = train_validate.version_id AND s.valid
    ), hits AS (
        SELECT r.rk FROM users u LEFT JOIN ranked r ON r.user_idx = u.user_idx AND r.y = 1
        UNION ALL
        SELECT m.rk FROM recsys.scorer_ranks(train_validate.version_id, train_validate.scorer) m
    )
    SELECT coalesce(avg(CASE WHEN h.rk <= 20 THEN 1.0 ELSE 0.0 END), 0)::float8,
           coalesce(avg(CASE WHEN h.rk <= 20 THEN 1.0 / log(2, h.rk + 1.0) ELSE 0.0 END), 0)::float8,
           count(*)
      FROM hits h
$$;
COMMENT ON FUNCTION recsys.train_validate(bigint, bytea) IS 'Recall@20 and NDCG@20 (one held-out bundle per customer, so both are per-customer hit measures) of a scorer (ranked in memory, recsys.scorer_ranks), or of the fit alone when scorer is NULL, over the validating customers of a version in training';
--@end

-- the steps of a training, shared by recsys.train (which commits between them) and recsys.cross_validate
--@begin recsys.train_samples_for(bigint, jsonb, timestamp with time zone)
CREATE OR REPLACE FUNCTION recsys.train_samples_for(version_id bigint, o jsonb, feedback_since timestamptz DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fit bytea := recsys.bundle_fit(jsonb_build_object('lambda', o -> 'lambda', 'beta', o -> 'beta',
                                   'view_norm', o -> 'view_norm', 'content', o -> 'content',
                                   'keep_b', o -> 'keep_b', 'keep_m', o -> 'keep_m',
                                   'dense_max', o -> 'dense_max', 'rank', o -> 'rank', 'holdout_seed', o -> 'seed'));
    n bigint;
BEGIN
    DELETE FROM recsys.train_samples s WHERE s.version_id = train_samples_for.version_id;
    INSERT INTO recsys.train_samples
    SELECT train_samples_for.version_id, b.*
      FROM recsys.bundle_samples(fit, (o ->> 'seed')::bigint, (o ->> 'candidates')::int, (o ->> 'max_customers')::int) b;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- feedback since then: a bundle bought or put in the cart after being shown is a positive; one shown and
    -- dismissed, or shown and ignored (no click, cart or purchase), a negative; a click alone says too little
    IF feedback_since IS NOT NULL THEN
        -- one bundle_features call per customer (it reads their history), not per bundle shown
        INSERT INTO recsys.train_samples (version_id, user_idx, valid, bundle_idx, x, y)
        SELECT train_samples_for.version_id, g.user_idx, false, g.bundles[j],
               ARRAY(SELECT unnest(ff.x[j:j][1:5])), g.ys[j]
          FROM (SELECT l.user_idx, array_agg(l.bundle_idx ORDER BY l.bundle_idx) AS bundles,
                       array_agg(l.y ORDER BY l.bundle_idx) AS ys
                  FROM (SELECT u.idx AS user_idx, b.idx AS bundle_idx,
                       CASE WHEN bool_or(f.event IN ('purchase', 'add_to_cart')) THEN 1
                            WHEN bool_or(f.event = 'dismiss') OR count(f.*) = 0 THEN 0 END::real AS y
                  FROM recsys.impressions i
                  JOIN recsys.id_map u ON u.space = 'user' AND u.ext_id = i.user_id
                  JOIN recsys.id_map b ON b.space = 'bundle' AND b.ext_id = i.target
                  LEFT JOIN recsys.feedback f ON f.user_id = i.user_id AND f.target = i.target AND f.target_kind = 'bundle'
                                             AND f.at >= i.shown_at
                 WHERE i.target_kind = 'bundle' AND i.shown_at >= feedback_since
                 GROUP BY 1, 2) l
                 WHERE l.y IS NOT NULL
                 GROUP BY l.user_idx) g
         CROSS JOIN LATERAL (SELECT recsys.bundle_features(fit, g.user_idx, g.bundles) AS x) ff
         CROSS JOIN LATERAL generate_subscripts(g.bundles, 1) AS j;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.train_samples_for(bigint, jsonb, timestamptz) IS 'a training step: the fit with one held-out bundle per customer (seed) and the scorer''s samples it yields, plus, when feedback_since is given, one sample per bundle shown since then (bought or carted: 1; dismissed or ignored: 0), stored for the version; returns the held-out sample count';
--@end

CREATE FUNCTION recsys.bundle_features(fit bytea, user_idx integer, bundles integer[]) RETURNS real[]
    AS 'MODULE_PATHNAME', 'bundle_features'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.bundle_features(bytea, integer, integer[]) IS 'the scorer''s features (one row of 5 per bundle index) of bundles for a customer under a fit, from the customer''s prepared history';
ALTER FUNCTION recsys.bundle_features(bytea, integer, integer[]) SET search_path = pg_catalog, pg_temp;

--@begin recsys.train_scorer_epoch(bigint, bytea, integer, jsonb)
CREATE OR REPLACE FUNCTION recsys.train_scorer_epoch(version_id bigint, scorer bytea, epoch integer, o jsonb) RETURNS bytea
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT recsys.scorer_epoch(version_id, scorer, epoch,
                               jsonb_build_object('lr', o -> 'lr', 'optimizer', 'adam', 'batch', 256,
                                                  'loss', coalesce(o -> 'scorer_loss', '"bce"')))
$$;
COMMENT ON FUNCTION recsys.train_scorer_epoch(bigint, bytea, integer, jsonb) IS 'a training step: one epoch of the scorer over a version''s training samples (Adam, batch 256, the customers shuffled per epoch; recsys.scorer_epoch)';
--@end

--@begin recsys.train_final_weights(jsonb, bytea, bytea)
CREATE OR REPLACE FUNCTION recsys.train_final_weights(o jsonb, scorer bytea, encoder bytea) RETURNS bytea
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT recsys.bundle_attach(recsys.bundle_fit(jsonb_build_object('lambda', o -> 'lambda', 'beta', o -> 'beta',
                                                   'view_norm', o -> 'view_norm', 'content', o -> 'content',
                                                   'keep_b', o -> 'keep_b', 'keep_m', o -> 'keep_m',
                                                   'dense_max', o -> 'dense_max', 'rank', o -> 'rank')),
                                scorer, encoder, (o ->> 'candidates')::int)
$$;
COMMENT ON FUNCTION recsys.train_final_weights(jsonb, bytea, bytea) IS 'a training step: the fit on all prepared data with the scorer and encoder attached, the servable weights';
--@end

--@begin recsys.train(text, jsonb)
CREATE OR REPLACE PROCEDURE recsys.train(model text DEFAULT 'default', options jsonb DEFAULT '{}')
    LANGUAGE plpgsql
-- no SET clause: a procedure with one cannot COMMIT, and the driver commits per epoch
AS $$
DECLARE
    v bigint;
    w bigint;
    -- the item model beside a bundle model: items beside the default one, else MODEL_items
    item_model text := CASE WHEN model = 'default' THEN 'items' ELSE model || '_items' END;
BEGIN
    IF model = 'promotions' OR model LIKE '%\_promotions' THEN
        -- the promotions' response model by name: it alone
        CALL recsys.train_driver('recsys.train', model, options, 'recsys.promotion', false, w);
        RETURN;
    END IF;
    IF model = 'items' OR model LIKE '%\_items' THEN
        -- an item model by name: it alone
        CALL recsys.train_driver('recsys.train', model, options, 'recsys.items', false, w);
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM recsys.sources s WHERE s.kind = 'bundles') THEN
        -- a shop of order lines alone: the features first (they adopt the mined bundles), then the item model, then
        -- the bundle model over the mined bundles when there are any
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        IF coalesce(options ->> 'features', 'true') <> 'false' THEN
            PERFORM recsys.refresh_features(pg_catalog.jsonb_build_object(
                'bundles', recsys.train_options(options) -> 'bundles', 'max_mined', recsys.train_options(options) -> 'max_mined'));
            CALL recsys.train_commit(false);
        END IF;
        CALL recsys.train_driver('recsys.train', item_model, coalesce(options, '{}') || '{"features": false}',
                                 'recsys.items', false, w);
        IF EXISTS (SELECT 1 FROM recsys.bundle_items) THEN
            CALL recsys.train_driver('recsys.train', model, coalesce(options, '{}') || '{"features": false}',
                                     'recsys.train', false, v);
        ELSE
            RAISE NOTICE 'recsys.train: no bundles are registered or mined: only the item model % is trained', item_model
                USING HINT = 'Register curated bundles with recsys.register_bundles, or relax the mining options.';
        END IF;
        RETURN;
    END IF;
    CALL recsys.train_driver('recsys.train', model, options, 'recsys.train', false, v);
    IF coalesce(options ->> 'items', 'false') <> 'false' THEN
        CALL recsys.train_driver('recsys.train', item_model, options, 'recsys.items', false, w);
    END IF;
END
$$;
COMMENT ON PROCEDURE recsys.train(text, jsonb) IS 'trains the bundle model MODEL and, with option items, the item model (items beside the default model, else MODEL_items); a shop without registered bundles gets its features refreshed (adopting mined bundles), the item model, then the bundle model over the mined bundles; MODEL items or ending in _items trains that item model alone, MODEL promotions or ending in _promotions the promotions'' response model (steps recsys.promotion); with recsys.train_driver: samples with one held-out bundle (or basket) per customer, learned scorer epochs (one committed training_runs row and checkpoint each, early stop on validation NDCG@20, resumable), GRU encoder epochs, the final fit; activates each new version only if its validation NDCG@20 is not below the active one''s (option force); one training per model at a time (a claim on the running CALL: a failed or cancelled one holds nothing); search_path pinned per transaction; options: see recsys.option_specs()';
--@end

-- the one check and command of a scheduled training, whether pg_cron lives here or in another database
--@begin recsys.training_job(text, text, jsonb)
CREATE FUNCTION recsys.training_job(model text, schedule text, options jsonb DEFAULT '{}') RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF model IS NULL OR model !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid model name %', quote_literal(coalesce(model, 'NULL'))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF schedule IS NULL OR btrim(schedule) = '' THEN
        RAISE EXCEPTION 'a schedule is required'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use cron syntax, e.g. ''0 3 * * *'' for 3 a.m. every day.';
    END IF;
    -- a misspelt name would create a new model at 3 a.m.: schedule only models that exist (or the two defaults)
    IF model NOT IN ('default', 'items') AND NOT EXISTS (SELECT 1 FROM recsys.models m WHERE m.name = training_job.model) THEN
        RAISE EXCEPTION 'model % does not exist', quote_literal(model)
            USING ERRCODE = 'undefined_object',
                  HINT = format('Train it once with CALL recsys.train(%L), or schedule one of SELECT name FROM recsys.models.', model);
    END IF;
    PERFORM recsys.train_options(options);
    -- the same CALL a DBA would type
    RETURN format('CALL recsys.train(%L, %L)', model, coalesce(options, '{}'));
END
$$;
COMMENT ON FUNCTION recsys.training_job(text, text, jsonb) IS 'the command of a scheduled training (CALL recsys.train(model, options)), after checking the model name, that the model exists (default and items may be new), the schedule and the options';
--@end

--@begin recsys.schedule_training(text, text, jsonb)
CREATE OR REPLACE FUNCTION recsys.schedule_training(model text, schedule text, options jsonb DEFAULT '{}') RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    command text := recsys.training_job(model, schedule, options);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        IF coalesce(current_setting('cron.database_name', true), '') NOT IN ('', current_database()) THEN
            -- pg_cron runs in another database, which this one cannot reach: say what to run there
            RAISE EXCEPTION 'pg_cron is not installed in this database'
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = format('pg_cron lives in database %s. Run this there: %s', quote_ident(current_setting('cron.database_name')),
                                      recsys.schedule_training_sql(model, schedule, options)),
                      HINT = format('SELECT recsys.schedule_training_sql(%L, %L, %L) here returns that statement.', model, schedule, coalesce(options, '{}'));
        END IF;
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database and cron.host, then CREATE EXTENSION pg_cron; or schedule from pg_cron''s database with recsys.schedule_training_sql.';
    END IF;
    -- one job per model, rescheduling replaces it
    RETURN cron.schedule('recsys-train-' || model, schedule, command);
END
$$;
COMMENT ON FUNCTION recsys.schedule_training(text, text, jsonb) IS 'schedules CALL recsys.train(model, options) with pg_cron (cron syntax, e.g. ''0 3 * * *''); one job per model named recsys-train-MODEL, replaced when scheduled again; the model must exist (default and items may be new); returns the pg_cron job id; needs pg_cron in this database (where it lives in another, recsys.schedule_training_sql gives the statement to run there)';
--@end

-- pg_cron lives in one database (cron.database_name); a shop in another schedules from there with
-- cron.schedule_in_database, and this writes that statement, checked here
--@begin recsys.schedule_training_sql(text, text, jsonb)
CREATE FUNCTION recsys.schedule_training_sql(model text, schedule text, options jsonb DEFAULT '{}') RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- the job's name carries the database: pg_cron replaces a job of the same name and user
    RETURN format('SELECT cron.schedule_in_database(%L, %L, %L, %L)',
                  'recsys-train-' || model || '@' || current_database(), schedule,
                  recsys.training_job(model, schedule, options), current_database());
END
$$;
COMMENT ON FUNCTION recsys.schedule_training_sql(text, text, jsonb) IS 'the statement to run in pg_cron''s database (cron.database_name) that schedules CALL recsys.train(model, options) in this one: SELECT cron.schedule_in_database(''recsys-train-MODEL@DATABASE'', ...); checked as recsys.schedule_training checks; the job runs as the role that runs the statement';
--@end

CREATE FUNCTION recsys.unschedule_training(model text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN false;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM cron.job WHERE jobname = 'recsys-train-' || model) THEN
        RETURN false;
    END IF;
    RETURN cron.unschedule('recsys-train-' || model);
END
$$;
COMMENT ON FUNCTION recsys.unschedule_training(text) IS 'removes the pg_cron job of recsys.schedule_training for a model; false when there is none';

-- DROP EXTENSION cannot reach pg_cron's jobs (an event trigger of the extension is dropped with it), so a drop is
-- preceded by this; the README says so, and what a drop deletes
--@begin recsys.uninstall()
CREATE FUNCTION recsys.uninstall() RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := 0;
    job bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        FOR job IN SELECT j.jobid FROM cron.job j
                    WHERE j.jobname LIKE 'recsys-train-%' AND j.database = pg_catalog.current_database() LOOP
            IF cron.unschedule(job) THEN
                n := n + 1;
            END IF;
        END LOOP;
    ELSIF coalesce(current_setting('cron.database_name', true), '') NOT IN ('', current_database()) THEN
        -- jobs scheduled from pg_cron's database with recsys.schedule_training_sql are out of reach from here
        RAISE WARNING 'recsys.uninstall: pg_cron lives in database %: remove this database''s recsys jobs there', quote_ident(current_setting('cron.database_name'))
            USING DETAIL = format('Run there: SELECT cron.unschedule(jobid) FROM cron.job WHERE database = %L AND jobname LIKE ''recsys-train-%%'';', current_database());
    END IF;
    RAISE NOTICE 'recsys.uninstall: % scheduled training% removed; DROP EXTENSION recsys now deletes every model, version, impression, feedback row and experiment', n, CASE WHEN n = 1 THEN '' ELSE 's' END
        USING HINT = 'Dump the recsys schema first to keep them: pg_dump --schema=recsys.';
    RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.uninstall() IS 'run before DROP EXTENSION recsys: removes this database''s pg_cron jobs of recsys.schedule_training (a drop cannot reach them, and they would fail every night) and returns how many; DROP EXTENSION then deletes every model, version, impression, feedback row and experiment';
--@end

-- pg_cron's run log says only CALL (or the error): this puts each run of a recsys job beside what its CALL did,
-- matched by the backend that ran it (job_pid) and the time
--@begin recsys.scheduled_runs(integer)
CREATE FUNCTION recsys.scheduled_runs(runs integer DEFAULT 20)
RETURNS TABLE (jobid bigint, runid bigint, jobname text, status text, return_message text, start_time timestamptz,
               end_time timestamptz, model text, version_id bigint, outcome text)
    LANGUAGE plpgsql STABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Where pg_cron lives in another database, match its cron.job_run_details.job_pid to recsys.training_progress here (the stages of a run have its pid).';
    END IF;
    -- pg_cron's tables exist only where it is installed: a dynamic query
    RETURN QUERY EXECUTE $q$
        SELECT d.jobid, d.runid, j.jobname::text, d.status::text, d.return_message::text, d.start_time, d.end_time,
               st.model, st.version_id,
               coalesce(CASE WHEN st.stage = 'activation' OR st.detail LIKE 'failed: %' THEN st.detail END,
                        CASE WHEN d.status = 'failed'
                             THEN 'failed' || coalesce(' in stage ' || st.stage, '') || ': ' || d.return_message END,
                        'stopped in stage ' || st.stage, d.status)
          FROM cron.job_run_details d
          JOIN cron.job j ON j.jobid = d.jobid
          LEFT JOIN LATERAL (SELECT s.model, s.version_id, s.stage, s.detail FROM recsys.training_stages s
                              WHERE s.pid = d.job_pid AND s.started_at >= d.start_time
                                AND (d.end_time IS NULL OR s.started_at <= d.end_time)
                              ORDER BY s.stage_id DESC LIMIT 1) st ON true
         WHERE j.jobname LIKE 'recsys-train-%' AND j.database = pg_catalog.current_database()
         ORDER BY d.runid DESC LIMIT $1 $q$ USING runs;
END
$$;
COMMENT ON FUNCTION recsys.scheduled_runs(integer) IS 'the last RUNS runs of this database''s scheduled trainings (pg_cron''s cron.job_run_details, whose message says only CALL), each with what its CALL did: the model, the version and the outcome (activated, not activated and why, failed and why, or the stage it stopped in)';
--@end

------------------------------------------------------------------------------
-- Training claims: one training per model, and a failed CALL never leaves the model locked
------------------------------------------------------------------------------

-- A session advisory lock outlives a CALL stopped by an error or statement_timeout for as long as its
-- session lives (a pooled connection then blocks the nightly job). A claim names the statement that holds
-- it instead: it is live while that backend still runs that statement (pg_stat_activity: same pid, state
-- active, same query_start, which stays the CALL's start across its COMMITs), and stale otherwise.
--@begin recsys.training_claims
CREATE TABLE recsys.training_claims (
    name       text PRIMARY KEY,
    pid        integer NOT NULL,
    since      timestamptz NOT NULL,
    claimed_by name NOT NULL
);
COMMENT ON TABLE recsys.training_claims IS 'which statement trains a model now (backend pid and the CALL''s start); a claim whose statement has ended is stale and taken over';
-- dumped like every recsys table; a restored claim names no running statement, so it is stale
SELECT pg_catalog.pg_extension_config_dump('recsys.training_claims', '');
--@end

--@begin recsys.training_claim(text)
CREATE FUNCTION recsys.training_claim(name text) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT
    SECURITY DEFINER  -- reads other roles' pg_stat_activity rows; writes only its own claim
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c recsys.training_claims;
BEGIN
    -- claimers of one name queue here for the length of a check, never for a training
    PERFORM pg_advisory_xact_lock(hashtextextended('recsys.training_claim:' || training_claim.name, 0));
    SELECT * INTO c FROM recsys.training_claims t WHERE t.name = training_claim.name;
    IF FOUND AND NOT (c.pid = pg_backend_pid() AND c.since = statement_timestamp())
       AND recsys.statement_live(c.pid, c.since) THEN
        RAISE EXCEPTION '% is running in another session (pid %, since %)', training_claim.name, c.pid, c.since
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Wait for it to finish; recsys.training_runs shows its progress.';
    END IF;
    INSERT INTO recsys.training_claims AS t (name, pid, since, claimed_by)
    VALUES (training_claim.name, pg_backend_pid(), statement_timestamp(), session_user)
    ON CONFLICT ON CONSTRAINT training_claims_pkey DO UPDATE SET pid = excluded.pid, since = excluded.since, claimed_by = excluded.claimed_by;
END
$$;
COMMENT ON FUNCTION recsys.training_claim(text) IS 'claims a training (recsys.train:MODEL) for the calling statement, or raises 55P03 while another statement that claimed it still runs; the caller commits the claim';
--@end

--@begin recsys.training_release(text)
CREATE FUNCTION recsys.training_release(name text) RETURNS void
    LANGUAGE sql VOLATILE STRICT
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$ DELETE FROM recsys.training_claims t WHERE t.name = training_release.name AND t.pid = pg_backend_pid() $$;
COMMENT ON FUNCTION recsys.training_release(text) IS 'ends this backend''s claim on a training; a claim left by a failed statement needs no release (it is stale once the statement ends)';
--@end

-- progress: a row per stage of each training, committed when the stage starts, so another session sees where a
-- long CALL is (recsys.training_progress); and a NOTICE per stage and epoch for the session that runs it
--@begin recsys.training_stage(text, text, bigint, text, text)
CREATE FUNCTION recsys.training_stage(caller text, model text, version_id bigint, stage text, detail text DEFAULT NULL)
RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cur recsys.training_stages;
BEGIN
    -- this CALL's open stage (a CALL keeps its statement start across its commits)
    SELECT * INTO cur FROM recsys.training_stages s
     WHERE s.model = training_stage.model AND s.pid = pg_backend_pid() AND s.statement_started = statement_timestamp()
       AND s.finished_at IS NULL
     ORDER BY s.stage_id DESC LIMIT 1;
    IF FOUND AND cur.stage = training_stage.stage THEN
        -- the same stage goes on: its detail (the epoch) changes
        UPDATE recsys.training_stages s SET detail = training_stage.detail, version_id = coalesce(training_stage.version_id, s.version_id)
         WHERE s.stage_id = cur.stage_id;
    ELSE
        IF FOUND THEN
            UPDATE recsys.training_stages s
               SET finished_at = pg_catalog.clock_timestamp(),
                   detail = CASE WHEN training_stage.stage IS NULL AND training_stage.detail IS NOT NULL
                                 THEN training_stage.detail ELSE s.detail END
             WHERE s.stage_id = cur.stage_id;
        END IF;
        IF stage IS NOT NULL THEN
            INSERT INTO recsys.training_stages (model, version_id, stage, detail)
            VALUES (training_stage.model, training_stage.version_id, training_stage.stage, training_stage.detail);
        END IF;
    END IF;
    IF version_id IS NOT NULL THEN
        -- the stages before the version existed (features) belong to it
        UPDATE recsys.training_stages s SET version_id = training_stage.version_id
         WHERE s.model = training_stage.model AND s.pid = pg_backend_pid()
           AND s.statement_started = statement_timestamp() AND s.version_id IS NULL;
    END IF;
    -- (the decision has its own NOTICE, from the driver)
    IF stage IS NOT NULL AND stage <> 'activation' THEN
        RAISE NOTICE '%', pg_catalog.format('%s: model %s: %s%s', caller, model, stage, coalesce(': ' || detail, ''));
    END IF;
END
$$;
COMMENT ON FUNCTION recsys.training_stage(text, text, bigint, text, text) IS 'a training''s progress: ends the calling CALL''s open stage of the model and starts STAGE (NULL: none; DETAIL then closes the open stage, as failed: ...), or updates the detail of the stage that goes on; raises a NOTICE per call with a stage (but activation, which the driver reports)';
--@end

--@begin recsys.bundle_scorer_init(integer, bigint)
CREATE FUNCTION recsys.bundle_scorer_init(hidden integer, seed bigint) RETURNS bytea
    AS 'MODULE_PATHNAME', 'bundle_scorer_init'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.bundle_scorer_init(integer, bigint) IS 'new weights of the bundle scorer (an MLP from the scorer''s features through hidden units to one linear score), seeded';
--@end

-- One training driver. recsys.train (the bundle model and the item model), recsys.cross_validate and the
-- coordinator's recsys_proxy.train run the same loop (samples, scorer epochs with early stopping on validation
-- NDCG@20, GRU epochs, the final fit, the activation rule); what differs is the model and where each step runs,
-- so the steps are functions named S_step for a prefix S (recsys.train, recsys.items, recsys_proxy.train):
--   S_kind()                                           -> text          the model kind it trains
--   S_scorer_init(hidden, seed)                        -> bytea         a fresh scorer
--   S_scorer_of(weights)                               -> bytea         a version's scorer (incremental training)
--   S.train_prepare(o)                                 -> timestamptz   features refreshed if asked; the data's end
--   S.train_samples_for(version_id, o, feedback_since) -> bigint        the held-out fit's samples, stored
--   S.train_status(version_id)                         -> (samples bigint, items integer)
--   S.train_validate(version_id, scorer)               -> (recall20, ndcg20, users); scorer NULL: the fit alone
--   S.train_scorer_epoch(version_id, scorer, epoch, o) -> bytea
--   S.train_encoder_epoch(version_id, encoder, epoch, o, since) -> bytea   since: only customers active after it
--   S.train_final(version_id, o, scorer, encoder)      -> bytea         servable weights; the samples dropped
--   S.train_activate(version_id)                       -> void
-- recsys.train has the bundle model's steps on this node, recsys.items the item model's (sql/src/12_items.sql);
-- scaleout/coordinator.sql defines recsys_proxy.train's, which run on every shard.
--@begin recsys.train_prepare(jsonb)
CREATE FUNCTION recsys.train_prepare(o jsonb) RETURNS timestamptz
    LANGUAGE plpgsql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (o ->> 'features')::boolean THEN
        PERFORM recsys.refresh_features(pg_catalog.jsonb_build_object('bundles', o -> 'bundles', 'max_mined', o -> 'max_mined'));
    END IF;
    RETURN (SELECT max(e.ts) FROM recsys.events_clean e);
END
$$;
COMMENT ON FUNCTION recsys.train_prepare(jsonb) IS 'a training step: refreshes features and mined bundles when option features is true; returns the time of the newest prepared event (the new version''s data_to)';
--@end

--@begin recsys.train_status(bigint)
CREATE FUNCTION recsys.train_status(version_id bigint, OUT samples bigint, OUT items integer)
    LANGUAGE sql STABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (SELECT count(*) FROM recsys.train_samples s WHERE s.version_id = train_status.version_id),
           (SELECT max(m.idx) + 1 FROM recsys.id_map m WHERE m.space = 'item')::integer
$$;
COMMENT ON FUNCTION recsys.train_status(bigint) IS 'a training step: the samples stored for a version in training (none: it cannot resume) and the item vocabulary of a session encoder';
--@end

--@begin recsys.train_encoder_epoch(bigint, bytea, integer, jsonb, timestamp with time zone)
CREATE FUNCTION recsys.train_encoder_epoch(version_id bigint, encoder bytea, epoch integer, o jsonb, since timestamptz)
RETURNS bytea
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    -- shuffled in a subquery, as the scorer's epoch: an ORDER BY in the aggregate would copy the weights per row
    SELECT recsys.rnn_train(encoder, sq.prefix, sq.target,
                            jsonb_build_object('lr', 0.01, 'negatives', 50, 'seed', (o ->> 'seed')::bigint + epoch))
      FROM (SELECT od.items[greatest(1, t - 20):t - 1] AS prefix, od.items[t] AS target
              FROM recsys.user_sequences(50) od, generate_subscripts(od.items, 1) AS t
             WHERE t > 1
               AND (since IS NULL OR od.user_idx IN (SELECT e.user_idx FROM recsys.events_clean e WHERE e.ts > since))
               AND recsys.in_customer_sample(od.user_idx, (o ->> 'seed')::bigint,
                                             (SELECT count(*) FROM recsys.id_map m WHERE m.space = 'user'),
                                             (o ->> 'max_customers')::bigint)
             ORDER BY hashint8(od.user_idx::bigint * 1000 + t + epoch)) sq
$$;
COMMENT ON FUNCTION recsys.train_encoder_epoch(bigint, bytea, integer, jsonb, timestamptz) IS 'a training step: one epoch of the GRU encoder over the customers'' item sequences (next item by sampled softmax; since: only customers with events after it)';
--@end

--@begin recsys.train_final(bigint, jsonb, bytea, bytea)
CREATE FUNCTION recsys.train_final(version_id bigint, o jsonb, scorer bytea, encoder bytea) RETURNS bytea
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM recsys.train_samples s WHERE s.version_id = train_final.version_id;
    PERFORM recsys.scorer_samples_release();
    RETURN recsys.train_final_weights(o, scorer, encoder);
END
$$;
COMMENT ON FUNCTION recsys.train_final(bigint, jsonb, bytea, bytea) IS 'a training step: the servable weights (the fit on all prepared data, the scorer and encoder attached); drops the version''s samples';
--@end

--@begin recsys.train_activate(bigint)
CREATE FUNCTION recsys.train_activate(version_id bigint) RETURNS void
    LANGUAGE sql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT recsys.activate_version(version_id) $$;
COMMENT ON FUNCTION recsys.train_activate(bigint) IS 'a training step: activates the trained version (the coordinator''s publishes it to every shard first)';
--@end

--@begin recsys.train_kind()
CREATE FUNCTION recsys.train_kind() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT 'bundle' $$;
COMMENT ON FUNCTION recsys.train_kind() IS 'a training step: the kind of the model it trains';
CREATE FUNCTION recsys.train_scorer_init(hidden integer, seed bigint) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT recsys.bundle_scorer_init(hidden, seed) $$;
COMMENT ON FUNCTION recsys.train_scorer_init(integer, bigint) IS 'a training step: a fresh bundle scorer';
CREATE FUNCTION recsys.train_scorer_of(weights bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT recsys.bundle_part(weights, 'scorer') $$;
COMMENT ON FUNCTION recsys.train_scorer_of(bytea) IS 'a training step: the scorer part of a version''s weights (incremental training starts from it)';
--@end

-- the transaction boundary of a training: commit, then pin the path again (a local setting ends with the
-- transaction; a procedure that commits may not carry a SET clause)
--@begin recsys.train_commit(boolean)
CREATE PROCEDURE recsys.train_commit(trial boolean)
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT trial THEN
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    END IF;
END
$$;
COMMENT ON PROCEDURE recsys.train_commit(boolean) IS 'a training''s transaction boundary: commits and pins search_path again, unless trial (a training inside the caller''s transaction)';
--@end

--@begin recsys.train_driver(text, text, jsonb, text, boolean, bigint)
CREATE PROCEDURE recsys.train_driver(caller text, model text, options jsonb, steps text, trial boolean,
                                     INOUT version_id bigint DEFAULT NULL)
    LANGUAGE plpgsql
-- no SET clause: a procedure with one cannot COMMIT; the path is pinned per transaction (recsys.train_commit)
AS $$
DECLARE
    -- initialisers run before the path is pinned: function calls only, qualified, no operators
    o jsonb;
    sch text;
    pre text;
    kind text;
    v bigint;
    active bigint;
    active_ndcg float8;
    start_epoch integer := 1;
    epoch integer;
    scorer bytea;
    best bytea;
    best_epoch integer := 0;
    best_ndcg float8 := -1;
    best_recall float8;
    encoder bytea;
    new_weights bytea;
    t0 timestamptz;
    started timestamptz := pg_catalog.clock_timestamp();
    val record;
    have_samples bigint;
    items integer;
    nsamples bigint;
    new_data_to timestamptz;
    activated boolean;
    err_message text;
    err_state text;
    err_hint text;
    measure text;       -- the validation measure the steps early-stop and activate on (higher is better)
    label text;
    vj jsonb;           -- a validation's columns as metrics: valid_<column>
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    o := recsys.train_options(options);
    IF model IS NULL OR model !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid model name %', pg_catalog.quote_literal(coalesce(model, 'NULL'))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- steps: schema.prefix of the step functions, e.g. recsys.train (recsys.train_samples_for, ...)
    IF steps IS NULL OR steps !~ '^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$'
       OR pg_catalog.to_regnamespace(pg_catalog.split_part(steps, '.', 1)) IS NULL THEN
        RAISE EXCEPTION 'no training steps %', pg_catalog.quote_literal(coalesce(steps, 'NULL'))
            USING ERRCODE = 'invalid_schema_name', HINT = 'Pass schema.prefix of the step functions, as recsys.train.';
    END IF;
    sch := pg_catalog.split_part(steps, '.', 1);
    pre := pg_catalog.split_part(steps, '.', 2);
    EXECUTE pg_catalog.format('SELECT %I.%I()', sch, pre || '_kind') INTO kind;
    -- steps may name their measure (S.P_measure() -> key, label: a column of S.P_validate); by default NDCG@20
    measure := 'ndcg20';
    label := 'NDCG@20';
    IF pg_catalog.to_regproc(pg_catalog.format('%I.%I', sch, pre || '_measure')) IS NOT NULL THEN
        EXECUTE pg_catalog.format('SELECT * FROM %I.%I()', sch, pre || '_measure') INTO measure, label;
    END IF;
    IF NOT trial THEN
        -- one training per model at a time, across sessions (held over the per-epoch commits)
        PERFORM recsys.training_claim(caller || ':' || model);
    END IF;
    CALL recsys.train_commit(trial);
    IF NOT EXISTS (SELECT 1 FROM recsys.models m WHERE m.name = train_driver.model) THEN
        PERFORM recsys.create_model(model, kind, o, pg_catalog.format('%s model trained by %s (%s)', kind, caller, steps));
        RAISE NOTICE '%: model % did not exist: created (kind %)', caller, pg_catalog.quote_literal(model), kind;
    ELSIF (SELECT m.kind FROM recsys.models m WHERE m.name = train_driver.model) <> kind THEN
        RAISE EXCEPTION 'model % is not a % model', pg_catalog.quote_literal(model), kind
            USING ERRCODE = 'wrong_object_type', HINT = pg_catalog.format('%s trains %s models here; pick another name.', caller, kind);
    END IF;
    active := recsys.active_version(model);
    PERFORM recsys.training_stage(caller, model, NULL, 'features',
                                  CASE WHEN (o ->> 'features')::boolean AND kind = 'bundle'
                                       THEN 'refreshing item pairs, profiles and mined bundles' END);
    CALL recsys.train_commit(trial);
    EXECUTE pg_catalog.format('SELECT %I.%I($1)', sch, pre || '_prepare') INTO new_data_to USING o;
    CALL recsys.train_commit(trial);

    -- resume an interrupted training of this model, unless told not to
    SELECT mv.version_id INTO v FROM recsys.model_versions mv
     WHERE mv.model = train_driver.model AND mv.status = 'training' ORDER BY mv.version_id DESC LIMIT 1;
    IF v IS NOT NULL AND NOT (o ->> 'resume')::boolean THEN
        UPDATE recsys.model_versions mv SET status = 'failed', note = 'abandoned: a new training started with resume false'
         WHERE mv.version_id = v;
        v := NULL;
    END IF;
    IF v IS NOT NULL THEN
        EXECUTE pg_catalog.format('SELECT * FROM %I.%I($1)', sch, pre || '_status') INTO have_samples, items USING v;
    END IF;
    IF v IS NOT NULL AND have_samples > 0 THEN
        SELECT r.epoch + 1, r.checkpoint INTO start_epoch, scorer FROM recsys.training_runs r
         WHERE r.version_id = v AND r.checkpoint IS NOT NULL ORDER BY r.epoch DESC LIMIT 1;
        start_epoch := coalesce(start_epoch, 1);
        SELECT r.epoch, r.checkpoint, (r.metrics ->> ('valid_' || measure))::float8, (r.metrics ->> 'valid_recall20')::float8
          INTO best_epoch, best, best_ndcg, best_recall
          FROM recsys.training_runs r WHERE r.version_id = v AND r.checkpoint IS NOT NULL
         ORDER BY (r.metrics ->> ('valid_' || measure))::float8 DESC, r.epoch LIMIT 1;
        best_epoch := coalesce(best_epoch, 0);
        best_ndcg := coalesce(best_ndcg, -1);
        -- the encoder keeps no checkpoint: its epochs run again, after the scorer's, so their rows go
        DELETE FROM recsys.training_runs r WHERE r.version_id = v AND r.metrics ->> 'stage' = 'encoder';
        RAISE NOTICE '%: resuming version % of % at epoch %', caller, v, model, start_epoch;
    ELSE
        IF v IS NULL THEN
            v := recsys.add_version(model, NULL, 'training', '{}', active, NULL, new_data_to);
        ELSE
            -- interrupted before its samples were kept (a crash can lose the last commits): the same version over,
            -- from its first row
            RAISE NOTICE '%: restarting version % of % from its samples (none survived)', caller, v, model;
            DELETE FROM recsys.training_runs r WHERE r.version_id = v;
        END IF;
        UPDATE recsys.model_versions mv SET note = pg_catalog.format('training with %s', o) WHERE mv.version_id = v;
        PERFORM recsys.training_stage(caller, model, v, 'fit', 'the held-out fit and the scorer''s samples');
        CALL recsys.train_commit(trial);
        -- the scorer learns to rerank the fit's candidates for one held-out bundle per customer, and from the
        -- feedback on what was shown since the active version went live
        t0 := pg_catalog.clock_timestamp();
        -- an error here (no prepared bundles, data gone) fails the version with the error, not left in training;
        -- the block holds no COMMIT, so it may catch (a cancel is not caught: that version resumes)
        BEGIN
            EXECUTE pg_catalog.format('SELECT %I.%I($1, $2, $3)', sch, pre || '_samples_for') INTO nsamples
              USING v, o, CASE WHEN NOT trial    -- a trial learns from the held-out pairs alone
                               THEN coalesce((SELECT mv.activated_at FROM recsys.model_versions mv WHERE mv.version_id = active),
                                             '-infinity') END;
            EXECUTE pg_catalog.format('SELECT * FROM %I.%I($1, NULL)', sch, pre || '_validate') INTO val USING v;
            EXECUTE pg_catalog.format('SELECT * FROM %I.%I($1)', sch, pre || '_status') INTO have_samples, items USING v;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err_message = MESSAGE_TEXT, err_state = RETURNED_SQLSTATE, err_hint = PG_EXCEPTION_HINT;
        END;
        -- outside the block: a block with a handler cannot commit
        IF err_state IS NOT NULL THEN
            IF NOT trial THEN
                UPDATE recsys.model_versions mv SET status = 'failed', note = pg_catalog.format('failed: %s', err_message)
                 WHERE mv.version_id = v;
                PERFORM recsys.training_stage(caller, model, v, NULL, pg_catalog.format('failed: %s', err_message));
                CALL recsys.train_commit(trial);
                PERFORM recsys.training_release(caller || ':' || model);
            END IF;
            RAISE EXCEPTION USING MESSAGE = err_message, ERRCODE = err_state, HINT = coalesce(err_hint, '');
        END IF;
        IF coalesce(have_samples, 0) = 0 THEN
            -- nothing to learn from (no customer with a held-out bundle or basket): the version fails, clearly
            IF NOT trial THEN
                UPDATE recsys.model_versions mv SET status = 'failed', note = 'no training samples' WHERE mv.version_id = v;
                PERFORM recsys.training_stage(caller, model, v, NULL, 'failed: no training samples');
                CALL recsys.train_commit(trial);
                PERFORM recsys.training_release(caller || ':' || model);
            END IF;
            RAISE EXCEPTION '% found no training samples for model %', caller, pg_catalog.quote_literal(model)
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'The model learns from customers with two or more purchases (bundles, or baskets for the item model): prepare more data.';
        END IF;
        INSERT INTO recsys.training_runs (version_id, epoch, loss, metrics, samples, samples_per_s, elapsed_ms)
        VALUES (v, 0, NULL, pg_catalog.jsonb_build_object('stage', 'fit', 'feedback_samples', have_samples - nsamples,
                    'steps', steps)
                    || (SELECT pg_catalog.jsonb_object_agg('valid_' || j.key, j.value) FROM pg_catalog.jsonb_each(pg_catalog.to_jsonb(val)) j),
                nsamples, NULL, 1000 * extract(epoch FROM pg_catalog.clock_timestamp() - t0));
        CALL recsys.train_commit(trial);
        IF (o ->> 'incremental')::boolean AND active IS NOT NULL THEN
            EXECUTE pg_catalog.format('SELECT %I.%I($1)', sch, pre || '_scorer_of') INTO scorer
              USING (SELECT mv.weights FROM recsys.model_versions mv WHERE mv.version_id = active);
        END IF;
    END IF;
    -- a fresh scorer, and also for a resumed version that kept no checkpoint: a crash can lose the last commits
    -- (synchronous_commit off), and the version's samples may outlive every epoch row
    IF scorer IS NULL THEN
        EXECUTE pg_catalog.format('SELECT %I.%I($1, $2)', sch, pre || '_scorer_init') INTO scorer
          USING (o ->> 'hidden')::int, (o ->> 'seed')::bigint;
        start_epoch := 1;
    END IF;
    best := coalesce(best, scorer);

    -- scorer epochs: one committed row (and checkpoint) each, early stop on validation NDCG@20
    PERFORM recsys.training_stage(caller, model, v, 'scorer',
                                  pg_catalog.format('from epoch %s, at most %s', start_epoch, o ->> 'max_epochs'));
    CALL recsys.train_commit(trial);
    FOR epoch IN start_epoch .. (o ->> 'max_epochs')::int LOOP
        t0 := pg_catalog.clock_timestamp();
        -- an epoch over no training rows (every customer validates) leaves the scorer as it was
        EXECUTE pg_catalog.format('SELECT coalesce(%I.%I($1, $2, $3, $4), $2)', sch, pre || '_scorer_epoch') INTO scorer
          USING v, scorer, epoch, o;
        EXECUTE pg_catalog.format('SELECT * FROM %I.%I($1, $2)', sch, pre || '_validate') INTO val USING v, scorer;
        vj := (SELECT pg_catalog.jsonb_object_agg('valid_' || j.key, j.value) FROM pg_catalog.jsonb_each(pg_catalog.to_jsonb(val)) j);
        nsamples := (recsys.model_info(scorer) #>> '{config,train,samples}')::bigint;
        INSERT INTO recsys.training_runs (version_id, epoch, loss, metrics, samples, samples_per_s, elapsed_ms, checkpoint)
        VALUES (v, epoch, (recsys.model_info(scorer) #>> '{config,train,mean_loss}')::float8,
                pg_catalog.jsonb_build_object('stage', 'scorer', 'steps', steps) || vj,
                nsamples, nsamples / greatest(extract(epoch FROM pg_catalog.clock_timestamp() - t0), 1e-6),
                1000 * extract(epoch FROM pg_catalog.clock_timestamp() - t0), scorer);
        IF (vj ->> ('valid_' || measure))::float8 > best_ndcg THEN
            best_ndcg := (vj ->> ('valid_' || measure))::float8;
            best_recall := (vj ->> 'valid_recall20')::float8;
            best := scorer;
            best_epoch := epoch;
        END IF;
        PERFORM recsys.training_stage(caller, model, v, 'scorer',
                    pg_catalog.format('epoch %s of at most %s: loss %s, validation %s %s (best: epoch %s, %s), %s s',
                                      epoch, o ->> 'max_epochs',
                                      round((recsys.model_info(scorer) #>> '{config,train,mean_loss}')::numeric, 4),
                                      label, round((vj ->> ('valid_' || measure))::numeric, 4), best_epoch, round(best_ndcg::numeric, 4),
                                      round(extract(epoch FROM pg_catalog.clock_timestamp() - t0)::numeric, 1)));
        CALL recsys.train_commit(trial);
        EXIT WHEN epoch - best_epoch >= (o ->> 'patience')::int;
    END LOOP;

    -- the GRU encoder for customers who bring a session but no history
    EXECUTE pg_catalog.format('SELECT * FROM %I.%I($1)', sch, pre || '_status') INTO have_samples, items USING v;
    IF (o ->> 'gru_epochs')::int > 0 AND items > 0 THEN
        IF (o ->> 'incremental')::boolean AND active IS NOT NULL THEN
            encoder := recsys.bundle_part((SELECT mv.weights FROM recsys.model_versions mv WHERE mv.version_id = active), 'encoder');
            IF encoder IS NOT NULL AND (recsys.model_info(encoder) #>> '{config,vocab}')::int <> items THEN
                encoder := NULL;    -- new items since: start over
            END IF;
        END IF;
        IF encoder IS NULL THEN
            encoder := recsys.model_init('gru', pg_catalog.jsonb_build_object('vocab', items,
                           'embed', o -> 'gru_embed', 'hidden', o -> 'gru_hidden'), (o ->> 'seed')::bigint);
        END IF;
        PERFORM recsys.training_stage(caller, model, v, 'encoder', pg_catalog.format('%s epochs', o ->> 'gru_epochs'));
        CALL recsys.train_commit(trial);
        FOR epoch IN 1 .. (o ->> 'gru_epochs')::int LOOP
            t0 := pg_catalog.clock_timestamp();
            -- incremental: only customers with events since the active version's data
            EXECUTE pg_catalog.format('SELECT %I.%I($1, $2, $3, $4, $5)', sch, pre || '_encoder_epoch') INTO encoder
              USING v, encoder, epoch, o,
                    CASE WHEN (o ->> 'incremental')::boolean AND active IS NOT NULL
                         THEN (SELECT mv.data_to FROM recsys.model_versions mv WHERE mv.version_id = active) END;
            nsamples := (recsys.model_info(encoder) #>> '{config,train,samples}')::bigint;
            -- numbered on from the scorer's epochs (a resumed training dropped this stage's earlier rows)
            INSERT INTO recsys.training_runs (version_id, epoch, loss, metrics, samples, samples_per_s, elapsed_ms)
            VALUES (v, (SELECT coalesce(max(r.epoch), 0) + 1 FROM recsys.training_runs r WHERE r.version_id = v),
                    (recsys.model_info(encoder) #>> '{config,train,mean_loss}')::float8,
                    pg_catalog.jsonb_build_object('stage', 'encoder', 'steps', steps), nsamples,
                    nsamples / greatest(extract(epoch FROM pg_catalog.clock_timestamp() - t0), 1e-6),
                    1000 * extract(epoch FROM pg_catalog.clock_timestamp() - t0));
            PERFORM recsys.training_stage(caller, model, v, 'encoder',
                        pg_catalog.format('epoch %s of %s: loss %s, %s sequences, %s s', epoch, o ->> 'gru_epochs',
                                          round((recsys.model_info(encoder) #>> '{config,train,mean_loss}')::numeric, 4),
                                          nsamples, round(extract(epoch FROM pg_catalog.clock_timestamp() - t0)::numeric, 1)));
            CALL recsys.train_commit(trial);
        END LOOP;
    END IF;

    -- the served model: the fit on all data, the best scorer, the encoder
    PERFORM recsys.training_stage(caller, model, v, 'final', 'the fit on all prepared data, with the best scorer');
    CALL recsys.train_commit(trial);
    EXECUTE pg_catalog.format('SELECT %I.%I($1, $2, $3, $4)', sch, pre || '_final') INTO new_weights USING v, o, best, encoder;
    UPDATE recsys.model_versions mv
       SET weights = new_weights, status = 'candidate', data_to = new_data_to,
           metrics = pg_catalog.jsonb_build_object('valid_recall20', best_recall, 'valid_' || measure, best_ndcg,
                         'best_epoch', best_epoch,
                         'fit_valid_' || measure, (SELECT r.metrics -> ('valid_' || measure) FROM recsys.training_runs r
                                                    WHERE r.version_id = v AND r.epoch = 0),
                         'train_seconds', extract(epoch FROM pg_catalog.clock_timestamp() - started),
                         'options', o, 'steps', steps)
     WHERE mv.version_id = v;
    version_id := v;
    IF trial THEN
        PERFORM recsys.training_stage(caller, model, v, NULL);
        RETURN;     -- the caller scores it and rolls it back
    END IF;
    -- committed here first: a coordinator's shards have no distributed transaction with it
    CALL recsys.train_commit(trial);

    -- activate only if not worse than the active version on validation (force overrides)
    active := recsys.active_version(model);
    SELECT (mv.metrics ->> ('valid_' || measure))::float8 INTO active_ndcg FROM recsys.model_versions mv WHERE mv.version_id = active;
    activated := active IS NULL OR (o ->> 'force')::boolean OR active_ndcg IS NULL OR best_ndcg >= active_ndcg;
    IF activated THEN
        EXECUTE pg_catalog.format('SELECT %I.%I($1)', sch, pre || '_activate') USING v;
        UPDATE recsys.models m SET needs_retrain = false WHERE m.name = train_driver.model;
    ELSE
        UPDATE recsys.model_versions mv
           SET note = pg_catalog.format('not activated: validation %s %s is below the active version''s %s',
                                        label, round(best_ndcg::numeric, 4), round(active_ndcg::numeric, 4))
         WHERE mv.version_id = v;
    END IF;
    PERFORM recsys.training_stage(caller, model, v, 'activation',
                CASE WHEN activated THEN pg_catalog.format('activated: validation %s %s%s', label, round(best_ndcg::numeric, 4),
                                                           CASE WHEN active_ndcg IS NOT NULL
                                                                THEN pg_catalog.format(' (the active version had %s)', round(active_ndcg::numeric, 4))
                                                                ELSE '' END)
                     ELSE (SELECT mv.note FROM recsys.model_versions mv WHERE mv.version_id = v) END);
    PERFORM recsys.training_stage(caller, model, v, NULL);
    CALL recsys.train_commit(trial);
    PERFORM recsys.training_release(caller || ':' || model);
    RAISE NOTICE '%: version % of % %: validation % (best epoch %), % s',
        caller, v, model, CASE WHEN activated THEN 'activated' ELSE 'kept as candidate' END,
        CASE WHEN best_recall IS NOT NULL THEN pg_catalog.format('Recall@20 %s, ', round(best_recall::numeric, 4)) ELSE '' END
          || label || ' ' || round(best_ndcg::numeric, 4), best_epoch,
        round(extract(epoch FROM pg_catalog.clock_timestamp() - started)::numeric, 1);
END
$$;
COMMENT ON PROCEDURE recsys.train_driver(text, text, jsonb, text, boolean, bigint) IS 'the one training loop of recsys.train, recsys.cross_validate and recsys_proxy.train: samples, scorer epochs (one committed training_runs row and checkpoint each, early stop on validation NDCG@20 or the measure the steps name, resumable), GRU epochs, the final fit, activation only if not worse (option force); each step is the function PREFIX_* of steps SCHEMA.PREFIX (recsys.train: the bundle model on this node; recsys_proxy.train: on every shard; recsys.items; recsys.promotion), whose PREFIX_validate columns become valid_* metrics; trial: inside the caller''s transaction, no commit, claim or activation; returns the version';
--@end
