-- recsys SQL source: evaluation -- ranking metrics, splits, evaluate and cross_validate (the Makefile assembles sql/src/*.sql into the install script)

------------------------------------------------------------------------------
-- Evaluation: ranking metrics (C) and beyond-accuracy measures
------------------------------------------------------------------------------

CREATE FUNCTION recsys.rank_metrics(ranked text[], relevant text[], k integer, n_items bigint DEFAULT NULL,
                                    OUT precision_at_k double precision, OUT recall_at_k double precision,
                                    OUT f1_at_k double precision, OUT ndcg_at_k double precision, OUT ap_at_k double precision,
                                    OUT hit_at_k double precision, OUT rr double precision, OUT auc double precision)
    AS 'MODULE_PATHNAME', 'rank_metrics'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.rank_metrics(text[], text[], integer, bigint) IS 'metrics of one ranked list against the relevant ids: precision@k (hits / k), recall@k (hits / |relevant|), F1, NDCG@k (binary, ideal over min(|relevant|, k)), AP@k (over min(|relevant|, k)), hit@k, reciprocal rank within k, and AUC over a catalogue of n_items (unlisted items tie below the list; NULL: list plus relevant); ids listed twice count once; with no relevant ids the metrics that divide by them are NULL, so averages skip such users';

CREATE FUNCTION recsys.rank_metrics(ranked bigint[], relevant bigint[], k integer, n_items bigint DEFAULT NULL,
                                    OUT precision_at_k double precision, OUT recall_at_k double precision,
                                    OUT f1_at_k double precision, OUT ndcg_at_k double precision, OUT ap_at_k double precision,
                                    OUT hit_at_k double precision, OUT rr double precision, OUT auc double precision)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM recsys.rank_metrics(ranked::text[], relevant::text[], k, n_items) $$;
COMMENT ON FUNCTION recsys.rank_metrics(bigint[], bigint[], integer, bigint) IS 'rank_metrics for integer ids';

CREATE FUNCTION recsys.gini(counts double precision[]) RETURNS double precision
    AS 'MODULE_PATHNAME', 'gini'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.gini(double precision[]) IS 'Gini index of exposure counts over the catalogue (include the zeros of items never shown): 0 when every item is shown equally, towards 1 when exposure concentrates on a few';

CREATE FUNCTION recsys.novelty(popularity double precision[]) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT avg(-log(2, p::numeric))::float8 FROM unnest(popularity) p WHERE p > 0 $$;
COMMENT ON FUNCTION recsys.novelty(double precision[]) IS 'mean self-information -log2(p) of a list''s items, p each item''s share of users (its popularity); higher is more novel';

CREATE FUNCTION recsys.intra_list_diversity(categories text[]) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN count(*) = 0 THEN NULL ELSE avg(CASE WHEN a.c IS DISTINCT FROM b.c THEN 1.0 ELSE 0.0 END)::float8 END
      FROM unnest(categories) WITH ORDINALITY a(c, i), unnest(categories) WITH ORDINALITY b(c, j)
     WHERE a.i < b.j
$$;
COMMENT ON FUNCTION recsys.intra_list_diversity(text[]) IS 'intra-list category diversity: the share of pairs of listed items whose categories differ (NULL for fewer than two items)';

CREATE FUNCTION recsys.coverage(recommended text[], catalogue_size bigint) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN catalogue_size > 0 THEN (SELECT count(DISTINCT r) FROM unnest(recommended) r)::float8 / catalogue_size END $$;
COMMENT ON FUNCTION recsys.coverage(text[], bigint) IS 'catalogue coverage: distinct recommended ids (all lists concatenated, e.g. with array_agg) over the catalogue size';

CREATE TABLE recsys.evaluations (
    evaluation_id bigint NOT NULL,
    evaluated_at  timestamptz NOT NULL DEFAULT now(),
    model         text NOT NULL,
    version_id    bigint,
    method        text NOT NULL,
    split         text NOT NULL,
    k             integer NOT NULL,
    metric        text NOT NULL,
    value         double precision,
    users         bigint NOT NULL,
    PRIMARY KEY (evaluation_id, method, k, metric)
);
COMMENT ON TABLE recsys.evaluations IS 'one row per evaluation, method (the model, most_popular, item_cooccurrence), K and metric (recall, ndcg, precision, f1, map, hit, mrr, coverage), averaged over users with a positive; BI tools read it';
SELECT pg_catalog.pg_extension_config_dump('recsys.evaluations', '');
CREATE SEQUENCE recsys.evaluation_seq;
COMMENT ON SEQUENCE recsys.evaluation_seq IS 'evaluation ids of recsys.evaluate';
SELECT pg_catalog.pg_extension_config_dump('recsys.evaluation_seq', '');

--@begin recsys.evaluate(text, bigint, regclass, integer[])
CREATE OR REPLACE FUNCTION recsys.evaluate(model text DEFAULT 'default', version bigint DEFAULT NULL, split regclass DEFAULT NULL,
                                k_list integer[] DEFAULT '{20,40}')
RETURNS TABLE (evaluation_id bigint, method text, k integer, metric text, value double precision, users bigint,
               lift_over_popular double precision)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    eid bigint := nextval('recsys.evaluation_seq');
    v bigint := coalesce(version, recsys.active_version(model));
    kmax integer;
    n_bundles bigint;
    n_overlap bigint;
    n_pairs bigint;
BEGIN
    IF split IS NULL THEN
        RAISE EXCEPTION 'split must name a relation of held-out (user_id, bundle_id) pairs'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Hold pairs out of the shop''s own bundle events and train without them (README, "Evaluating on your own data"), or use the Youshu tune split loaded by bench/load_youshu.sh: youshu.user_bundle_tune.';
    END IF;
    IF v IS NULL THEN
        RAISE EXCEPTION 'model % has no active version', quote_literal(coalesce(model, 'NULL'))
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Train one with CALL recsys.train(), or pass a version.';
    END IF;
    IF k_list IS NULL OR cardinality(k_list) = 0 OR EXISTS (SELECT 1 FROM unnest(k_list) x WHERE x IS NULL OR x NOT BETWEEN 1 AND 1000) THEN
        RAISE EXCEPTION 'k_list must hold values from 1 to 1000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    kmax := (SELECT max(x) FROM unnest(k_list) x);
    SELECT count(*) INTO n_bundles FROM recsys.id_map m WHERE m.space = 'bundle';
    -- the held-out truth, read through the relation's first two columns (user, bundle)
    EXECUTE format('CREATE TEMP TABLE rs_truth ON COMMIT DROP AS SELECT %I::text AS user_id, array_agg(DISTINCT %I::text) AS positives FROM %s GROUP BY 1',
                   (SELECT attname FROM pg_attribute WHERE attrelid = split AND attnum > 0 AND NOT attisdropped ORDER BY attnum LIMIT 1),
                   (SELECT attname FROM pg_attribute WHERE attrelid = split AND attnum > 0 AND NOT attisdropped ORDER BY attnum OFFSET 1 LIMIT 1),
                   split);
    -- held-out pairs the model trained on are masked as already taken: they can never be hit, and every metric
    -- reads 0; say so instead of scoring silently
    SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM recsys.id_map u
                                            JOIN recsys.user_bundles ub ON ub.user_idx = u.idx
                                            JOIN recsys.id_map b ON b.space = 'bundle' AND b.idx = ub.bundle_idx
                                           WHERE u.space = 'user' AND u.ext_id = t.user_id AND b.ext_id = p)),
           count(*)
      INTO n_overlap, n_pairs
      FROM rs_truth t, unnest(t.positives) p;
    IF n_overlap > 0 THEN
        RAISE WARNING '% of % held-out pairs are in the prepared training data (recsys.user_bundles): they are masked as already taken and cannot be hit', n_overlap, n_pairs
            USING HINT = 'Leave the held-out pairs out of the registered bundle events, prepare and train again, then evaluate (README, "Evaluating on your own data").';
    END IF;
    CREATE TEMP TABLE rs_lists ON COMMIT DROP AS
    SELECT 'model' AS method, t.user_id, t.positives,
           ARRAY(SELECT r.bundle_id FROM @extschema@.recommend_bundles(t.user_id, kmax, jsonb_build_object('model', model, 'version', v)) r
                  ORDER BY r.rank) AS ranked
      FROM rs_truth t
    UNION ALL
    SELECT 'item_cooccurrence', t.user_id, t.positives,
           ARRAY(SELECT r.bundle_id FROM recsys.recommend_bundles_baseline(t.user_id, kmax) r ORDER BY r.rank)
      FROM rs_truth t
    UNION ALL
    -- most popular, with what the user took masked as for the others
    SELECT 'most_popular', t.user_id, t.positives,
           ARRAY(SELECT b.ext_id FROM recsys.bundle_stats s JOIN recsys.id_map b ON b.space = 'bundle' AND b.idx = s.bundle_idx
                  WHERE NOT EXISTS (SELECT 1 FROM recsys.user_bundles ub JOIN recsys.id_map u ON u.space = 'user' AND u.idx = ub.user_idx
                                     WHERE u.ext_id = t.user_id AND ub.bundle_idx = s.bundle_idx)
                  ORDER BY s.n_users DESC, s.bundle_idx LIMIT kmax)
      FROM rs_truth t;
    INSERT INTO recsys.evaluations (evaluation_id, model, version_id, method, split, k, metric, value, users)
    SELECT eid, evaluate.model, v, l.method, split::text, kk, m.metric, avg(m.value), count(m.value)
      FROM rs_lists l, unnest(k_list) kk,
           LATERAL recsys.rank_metrics(l.ranked[1:kk], l.positives, kk, n_bundles) rm,
           LATERAL (VALUES ('recall', rm.recall_at_k), ('ndcg', rm.ndcg_at_k), ('precision', rm.precision_at_k),
                           ('f1', rm.f1_at_k), ('map', rm.ap_at_k), ('hit', rm.hit_at_k), ('mrr', rm.rr)) m(metric, value)
     GROUP BY l.method, kk, m.metric;
    INSERT INTO recsys.evaluations (evaluation_id, model, version_id, method, split, k, metric, value, users)
    SELECT eid, evaluate.model, v, l.method, split::text, kk, 'coverage',
           count(DISTINCT b)::float8 / nullif(n_bundles, 0), count(DISTINCT l.user_id)
      FROM rs_lists l, unnest(k_list) kk, unnest(l.ranked[1:kk]) b
     GROUP BY l.method, kk;
    DROP TABLE rs_lists, rs_truth;
    RETURN QUERY
    SELECT e.evaluation_id, e.method, e.k, e.metric, e.value, e.users,
           e.value / nullif((SELECT p.value FROM recsys.evaluations p WHERE p.evaluation_id = eid AND p.method = 'most_popular'
                                AND p.k = e.k AND p.metric = e.metric), 0)
      FROM recsys.evaluations e WHERE e.evaluation_id = eid
     ORDER BY e.k, e.metric, e.method;
END
$$;
COMMENT ON FUNCTION recsys.evaluate(text, bigint, regclass, integer[]) IS 'scores a model version (default: the active one) on held-out (user, bundle) pairs in a relation (first two columns) with the CrossCBR/BGCN protocol, next to the most_popular and item_cooccurrence baselines on the same users; warns when held-out pairs are in the training data (they are masked and cannot be hit); writes recsys.evaluations and returns each metric at each K with its lift over most popular';
--@end

CREATE FUNCTION recsys.split_pairs_run(method text, options jsonb DEFAULT '{}')
RETURNS TABLE (user_idx integer, bundle_idx integer, fold integer)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    seed bigint := coalesce((options ->> 'seed')::bigint, 42);
    fraction float8 := coalesce((options ->> 'fraction')::float8, 0.2);
    folds integer := coalesce((options ->> 'folds')::int, 5);
BEGIN
    IF method IS NULL OR method NOT IN ('random', 'time', 'last_basket', 'kfold') THEN
        RAISE EXCEPTION 'unknown split method %', quote_literal(coalesce(method, 'NULL'))
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use random, time, last_basket or kfold.';
    END IF;
    IF NOT (fraction > 0 AND fraction < 1) OR folds NOT BETWEEN 2 AND 100 THEN
        RAISE EXCEPTION 'fraction must be between 0 and 1 and folds from 2 to 100' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- only customers with two or more bundles are tested: the rest would have no history left
    RETURN QUERY
    WITH eligible AS (
        SELECT ub.user_idx, ub.bundle_idx, ub.last_ts,
               count(*) OVER (PARTITION BY ub.user_idx) AS n,
               row_number() OVER (PARTITION BY ub.user_idx ORDER BY ub.last_ts DESC NULLS LAST, ub.bundle_idx DESC) AS recent,
               (hashint8extended(ub.user_idx::bigint * 1000003 + ub.bundle_idx, seed) & 9007199254740991)::float8 / 9007199254740992 AS u
          FROM recsys.user_bundles ub
    )
    SELECT e.user_idx, e.bundle_idx,
           CASE method WHEN 'kfold' THEN 1 + floor(e.u * folds)::int ELSE 1 END
      FROM eligible e
     WHERE e.n >= 2
       AND CASE method
             WHEN 'random' THEN e.u < fraction
             -- each customer's latest share of their own history (at least one, never all)
             WHEN 'time' THEN e.recent <= least(greatest(1, ceil(fraction * e.n)), e.n - 1)
             -- each customer's most recent purchase time, everything bought then
             WHEN 'last_basket' THEN e.last_ts = (SELECT max(x.last_ts) FROM recsys.user_bundles x WHERE x.user_idx = e.user_idx)
                                     AND e.recent < e.n
             ELSE true END;
END
$$;
COMMENT ON FUNCTION recsys.split_pairs_run(text, jsonb) IS 'the splitting step of recsys.split_pairs, on options it has checked';
--@begin recsys.split_pairs(text, jsonb)
CREATE FUNCTION recsys.split_pairs(method text, options jsonb DEFAULT '{}')
RETURNS TABLE (user_idx integer, bundle_idx integer, fold integer)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM recsys.split_pairs_run(method, recsys.check_options(options, 'split_pairs'))
$$;
COMMENT ON FUNCTION recsys.split_pairs(text, jsonb) IS 'held-out user-bundle pairs of a split: random (a seeded fraction, default 0.2), time (each customer''s latest fraction of their own history), last_basket (each customer''s most recent purchase), kfold (every pair in one of folds folds, seeded); only customers with two or more bundles, and never all of one customer''s bundles except by kfold chance';
--@end

--@begin recsys.cross_validate(text, integer, jsonb)
CREATE OR REPLACE FUNCTION recsys.cross_validate(model text DEFAULT 'default', folds integer DEFAULT 5, options jsonb DEFAULT '{}')
RETURNS TABLE (method text, k integer, metric text, mean double precision, stddev double precision, folds_run integer)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    split_method text := coalesce(options ->> 'split', 'kfold');
    k_list integer[] := coalesce((SELECT array_agg(x::int) FROM jsonb_array_elements_text(options -> 'k_list') x), '{20}');
    -- no features refresh, session encoder or resumption inside a fold: the scorer on the fold's fit is scored
    o jsonb := recsys.train_options(coalesce(options -> 'train', '{}'))
               || '{"features": false, "gru_epochs": 0, "resume": false, "incremental": false}';
    runs integer := CASE WHEN coalesce(options ->> 'split', 'kfold') = 'kfold' THEN folds ELSE 1 END;
    results jsonb := '[]';
    eid bigint;
    v bigint;
    key text;
BEGIN
    FOR key IN SELECT jsonb_object_keys(options) LOOP
        IF key NOT IN ('split', 'k_list', 'train', 'seed', 'fraction') THEN
            RAISE EXCEPTION 'unknown option %', quote_literal(key) USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Known options: split, k_list, train, seed, fraction.';
        END IF;
    END LOOP;
    IF folds IS NULL OR folds NOT BETWEEN 2 AND 20 THEN
        RAISE EXCEPTION 'folds must be from 2 to 20, got %', coalesce(folds::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM recsys.models m WHERE m.name = cross_validate.model) THEN
        PERFORM recsys.create_model(model, 'bundle', o, 'bundle ranker');
    END IF;
    FOR f IN 1 .. runs LOOP
        -- each fold trains and scores inside a subtransaction that is then rolled back: the held-out pairs are
        -- removed from the prepared data only there, and nothing of the fold's model stays behind
        BEGIN
            CREATE TEMP TABLE rs_cv_truth ON COMMIT DROP AS
            SELECT u.ext_id AS user_id, b.ext_id AS bundle_id, sp.user_idx, sp.bundle_idx
              FROM recsys.split_pairs(split_method, jsonb_build_object('folds', folds) || (options - 'k_list' - 'train' - 'split')) sp
              JOIN recsys.id_map u ON u.space = 'user' AND u.idx = sp.user_idx
              JOIN recsys.id_map b ON b.space = 'bundle' AND b.idx = sp.bundle_idx
             WHERE sp.fold = f;
            DELETE FROM recsys.user_bundles ub USING rs_cv_truth t
             WHERE ub.user_idx = t.user_idx AND ub.bundle_idx = t.bundle_idx;
            -- the baselines' popularity must not know the held-out pairs either
            UPDATE recsys.bundle_stats bs SET n_users = (SELECT count(*) FROM recsys.user_bundles ub WHERE ub.bundle_idx = bs.bundle_idx);
            PERFORM recsys.serving_invalidate();
            -- the one training loop, inside this fold's subtransaction: no commit, no activation, no resume
            v := NULL;
            CALL recsys.train_driver('recsys.cross_validate', model, o, 'recsys.train', true, v);
            ALTER TABLE rs_cv_truth DROP COLUMN user_idx, DROP COLUMN bundle_idx;
            results := results || coalesce((SELECT jsonb_agg(jsonb_build_object('fold', f, 'method', e.method, 'k', e.k,
                                                                               'metric', e.metric, 'value', e.value, 'users', e.users))
                                               FROM recsys.evaluate(model, v, 'rs_cv_truth'::regclass, k_list) e), '[]');
            RAISE EXCEPTION USING ERRCODE = 'RSCV0', MESSAGE = 'cross-validation fold rolled back';
        EXCEPTION WHEN SQLSTATE 'RSCV0' THEN
            NULL;
        END;
        -- the fold's data and model are gone: every serving cache reloads
        PERFORM recsys.serving_invalidate();
    END LOOP;
    -- per-fold results land in recsys.evaluations, one evaluation per fold
    FOR f IN 1 .. runs LOOP
        eid := nextval('recsys.evaluation_seq');
        INSERT INTO recsys.evaluations (evaluation_id, model, version_id, method, split, k, metric, value, users)
        SELECT eid, model, NULL, r ->> 'method', format('%s %s/%s', split_method, f, runs), (r ->> 'k')::int,
               r ->> 'metric', (r ->> 'value')::float8, (r ->> 'users')::bigint
          FROM jsonb_array_elements(results) r WHERE (r ->> 'fold')::int = f;
    END LOOP;
    RETURN QUERY
    SELECT r ->> 'method', (r ->> 'k')::int, r ->> 'metric', avg((r ->> 'value')::float8), stddev_samp((r ->> 'value')::float8),
           count(*)::int
      FROM jsonb_array_elements(results) r
     GROUP BY 1, 2, 3 ORDER BY 2, 3, 1;
END
$$;
COMMENT ON FUNCTION recsys.cross_validate(text, integer, jsonb) IS 'trains and scores a model on each fold of a split (options split: kfold (default, folds folds), random, time, last_basket; seed, fraction; k_list (default [20]); train: recsys.train options) next to the baselines, each fold in a rolled-back subtransaction so the prepared data and the models are untouched; returns the mean and standard deviation of every metric and writes each fold to recsys.evaluations';
--@end

CREATE VIEW recsys.model_overview AS
SELECT v.model, m.kind, v.version_id, v.status, v.created_at, v.activated_at, v.retired_at, v.parent_version,
       (v.metrics ->> 'valid_recall20')::float8 AS valid_recall20, (v.metrics ->> 'valid_ndcg20')::float8 AS valid_ndcg20,
       (v.metrics ->> 'train_seconds')::float8 AS train_seconds, v.data_to, v.note
  FROM recsys.model_versions v JOIN recsys.models m ON m.name = v.model;
COMMENT ON VIEW recsys.model_overview IS 'BI: every model version with status, validation metrics, training time and lineage';

-- what every backend serves, in one place: per-backend serving_status() cannot show another session's
--@begin recsys.serving
CREATE VIEW recsys.serving AS
SELECT m.name AS model, m.kind,
       a.version_id AS active_version, a.activated_at,
       (a.metrics ->> 'valid_ndcg20')::float8 AS active_valid_ndcg20,
       ARRAY(SELECT e.name FROM recsys.experiments e
              WHERE e.status = 'running'
                AND EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(e.variants) x
                              JOIN recsys.model_versions ev ON ev.version_id = (x ->> 'version')::bigint
                             WHERE ev.model = m.name)
              ORDER BY e.name) AS running_experiments,
       l.version_id AS last_training_version, l.status AS last_training_status, l.created_at AS last_training_at,
       l.note AS last_training_note
  FROM recsys.models m
  LEFT JOIN recsys.model_versions a ON a.model = m.name AND a.status = 'active'
  LEFT JOIN LATERAL (SELECT v.version_id, v.status, v.created_at, v.note FROM recsys.model_versions v
                      WHERE v.model = m.name ORDER BY v.created_at DESC, v.version_id DESC LIMIT 1) l ON true;
COMMENT ON VIEW recsys.serving IS 'what every backend serves, one row per model: the active version, the running experiments over its versions and the outcome of its last training; readable by recsys_reader (recsys.serving_status() shows only the calling backend''s cache)';
COMMENT ON COLUMN recsys.serving.model IS 'model name';
COMMENT ON COLUMN recsys.serving.kind IS 'model kind (bundle, mlp, gru, ...)';
COMMENT ON COLUMN recsys.serving.active_version IS 'the version recommend_bundles / recommend_items serve (NULL: none; the baseline or default blend serves)';
COMMENT ON COLUMN recsys.serving.activated_at IS 'when the active version became active';
COMMENT ON COLUMN recsys.serving.active_valid_ndcg20 IS 'the active version''s validation NDCG@20';
COMMENT ON COLUMN recsys.serving.running_experiments IS 'running experiments with a variant on a version of this model';
COMMENT ON COLUMN recsys.serving.last_training_version IS 'the newest version of the model';
COMMENT ON COLUMN recsys.serving.last_training_status IS 'its status: training (running or interrupted), candidate (kept, not activated), active, retired or failed';
COMMENT ON COLUMN recsys.serving.last_training_at IS 'when that version was created';
COMMENT ON COLUMN recsys.serving.last_training_note IS 'why it was kept as a candidate, failed or rolled back from';
--@end

--@begin recsys.training_progress
CREATE VIEW recsys.training_progress AS
SELECT s.stage_id, s.model, s.version_id, s.stage,
       CASE WHEN s.finished_at IS NOT NULL AND s.detail LIKE 'failed: %' THEN 'failed'
            WHEN s.finished_at IS NOT NULL THEN 'done'
            WHEN recsys.statement_live(s.pid, s.statement_started) THEN 'running'
            ELSE 'interrupted' END AS state,
       s.started_at, s.finished_at,
       round(extract(epoch FROM coalesce(s.finished_at, pg_catalog.clock_timestamp()) - s.started_at), 1) AS seconds,
       s.detail
  FROM recsys.training_stages s;
COMMENT ON VIEW recsys.training_progress IS 'where each training is and was, one row per stage (features, fit, scorer, encoder, final, activation), visible from other sessions while the CALL runs';
COMMENT ON COLUMN recsys.training_progress.stage_id IS 'the stage''s number; a training''s stages are numbered in order';
COMMENT ON COLUMN recsys.training_progress.model IS 'model name';
COMMENT ON COLUMN recsys.training_progress.version_id IS 'the version being trained (recsys.model_versions)';
COMMENT ON COLUMN recsys.training_progress.stage IS 'features (refresh of pairs, profiles and mined bundles), fit (the held-out fit and the scorer''s samples), scorer (its epochs), encoder (the GRU''s epochs), final (the fit on all data), activation (the decision)';
COMMENT ON COLUMN recsys.training_progress.state IS 'running (its CALL still runs), done, failed (with the error in detail), or interrupted (its CALL ended without finishing it: an error, a cancel or a crash)';
COMMENT ON COLUMN recsys.training_progress.started_at IS 'when the stage started';
COMMENT ON COLUMN recsys.training_progress.finished_at IS 'when it finished (NULL: running or interrupted)';
COMMENT ON COLUMN recsys.training_progress.seconds IS 'how long it took, or has taken so far';
COMMENT ON COLUMN recsys.training_progress.detail IS 'the epoch reached and its validation NDCG@20, the decision, or why it failed';
--@end

CREATE VIEW recsys.training_curve AS
SELECT v.model, r.version_id, r.epoch, r.metrics ->> 'stage' AS stage, r.loss,
       (r.metrics ->> 'valid_recall20')::float8 AS valid_recall20, (r.metrics ->> 'valid_ndcg20')::float8 AS valid_ndcg20,
       r.samples, r.samples_per_s, r.elapsed_ms, r.finished_at
  FROM recsys.training_runs r JOIN recsys.model_versions v USING (version_id);
COMMENT ON VIEW recsys.training_curve IS 'BI: the training curve of every run, one row per epoch';

CREATE VIEW recsys.evaluation_history AS
SELECT e.evaluation_id, e.evaluated_at, e.model, e.version_id, e.split, e.method, e.k, e.metric, e.value, e.users
  FROM recsys.evaluations e;
COMMENT ON VIEW recsys.evaluation_history IS 'BI: every evaluation, method, K and metric';

CREATE VIEW recsys.bundle_performance AS
SELECT i.target AS bundle_id, count(DISTINCT i.impression_id) AS impressions,
       (SELECT count(*) FROM recsys.feedback f WHERE f.target = i.target AND f.target_kind = 'bundle' AND f.event = 'click') AS clicks,
       (SELECT count(*) FROM recsys.feedback f WHERE f.target = i.target AND f.target_kind = 'bundle' AND f.event = 'purchase') AS purchases,
       (SELECT coalesce(sum(f.value), 0) FROM recsys.feedback f WHERE f.target = i.target AND f.target_kind = 'bundle' AND f.event = 'purchase') AS revenue
  FROM recsys.impressions i WHERE i.target_kind = 'bundle'
 GROUP BY i.target;
COMMENT ON VIEW recsys.bundle_performance IS 'BI: per bundle shown, impressions, clicks, purchases and revenue';

CREATE VIEW recsys.experiment_results AS
SELECT e.name AS experiment, e.status, e.started_at, e.stopped_at, r.*
  FROM recsys.experiments e, LATERAL recsys.experiment_report(e.name) r;
COMMENT ON VIEW recsys.experiment_results IS 'BI: recsys.experiment_report for every experiment';

-- BI columns people read: the bundle's name and when it was shown (added at the end: a view keeps its columns'
-- order), and a comment on every column, which JDBC and ODBC return as REMARKS
--@begin BI views
CREATE OR REPLACE VIEW recsys.bundle_performance AS
SELECT i.target AS bundle_id, count(DISTINCT i.impression_id) AS impressions,
       (SELECT count(*) FROM recsys.feedback f WHERE f.target = i.target AND f.target_kind = 'bundle' AND f.event = 'click') AS clicks,
       (SELECT count(*) FROM recsys.feedback f WHERE f.target = i.target AND f.target_kind = 'bundle' AND f.event = 'purchase') AS purchases,
       (SELECT coalesce(sum(f.value), 0) FROM recsys.feedback f WHERE f.target = i.target AND f.target_kind = 'bundle' AND f.event = 'purchase') AS revenue,
       (SELECT a.name FROM recsys.id_map b JOIN recsys.bundle_attrs a ON a.bundle_idx = b.idx
         WHERE b.space = 'bundle' AND b.ext_id = i.target) AS bundle_name,
       min(i.shown_at) AS first_shown, max(i.shown_at) AS last_shown,
       ARRAY(SELECT DISTINCT x.experiment || '/' || x.variant FROM recsys.impressions x
              WHERE x.target = i.target AND x.target_kind = 'bundle' AND x.variant IS NOT NULL
              ORDER BY 1) AS variants
  FROM recsys.impressions i WHERE i.target_kind = 'bundle'
 GROUP BY i.target;
COMMENT ON VIEW recsys.bundle_performance IS 'BI: per bundle shown, its name, impressions, clicks, purchases, revenue, when it was first and last shown and the experiment variants that showed it (per-variant results: recsys.experiment_results)';
COMMENT ON COLUMN recsys.bundle_performance.bundle_id IS 'the shop''s bundle id';
COMMENT ON COLUMN recsys.bundle_performance.impressions IS 'times it was shown (recsys.impressions)';
COMMENT ON COLUMN recsys.bundle_performance.clicks IS 'clicks logged for it (recsys.feedback)';
COMMENT ON COLUMN recsys.bundle_performance.purchases IS 'purchases logged for it';
COMMENT ON COLUMN recsys.bundle_performance.revenue IS 'sum of the logged purchases'' values';
COMMENT ON COLUMN recsys.bundle_performance.bundle_name IS 'its name (registered, or built from its items; recsys.bundle_attrs)';
COMMENT ON COLUMN recsys.bundle_performance.first_shown IS 'when it was first shown';
COMMENT ON COLUMN recsys.bundle_performance.last_shown IS 'when it was last shown';
COMMENT ON COLUMN recsys.bundle_performance.variants IS 'experiment/variant pairs that showed it (empty: shown outside experiments)';
COMMENT ON COLUMN recsys.model_overview.model IS 'model name';
COMMENT ON COLUMN recsys.model_overview.kind IS 'model kind (bundle, mlp, gru, ...)';
COMMENT ON COLUMN recsys.model_overview.version_id IS 'version id (recsys.model_versions)';
COMMENT ON COLUMN recsys.model_overview.status IS 'training, candidate, active, retired or failed';
COMMENT ON COLUMN recsys.model_overview.created_at IS 'when the version was created (its training started)';
COMMENT ON COLUMN recsys.model_overview.activated_at IS 'when it last became active';
COMMENT ON COLUMN recsys.model_overview.retired_at IS 'when it was retired';
COMMENT ON COLUMN recsys.model_overview.parent_version IS 'the version active when it was trained (an incremental training starts from it)';
COMMENT ON COLUMN recsys.model_overview.valid_recall20 IS 'validation Recall@20 (held-out customers)';
COMMENT ON COLUMN recsys.model_overview.valid_ndcg20 IS 'validation NDCG@20; the activation rule compares it';
COMMENT ON COLUMN recsys.model_overview.train_seconds IS 'seconds its training took';
COMMENT ON COLUMN recsys.model_overview.data_to IS 'time of the newest event it learned from';
COMMENT ON COLUMN recsys.model_overview.note IS 'why it was kept as a candidate, failed or rolled back from';
COMMENT ON COLUMN recsys.training_curve.model IS 'model name';
COMMENT ON COLUMN recsys.training_curve.version_id IS 'the version being trained';
COMMENT ON COLUMN recsys.training_curve.epoch IS 'epoch: 0 the fit, then the scorer''s epochs, then the encoder''s (stage says which)';
COMMENT ON COLUMN recsys.training_curve.stage IS 'fit, scorer or encoder';
COMMENT ON COLUMN recsys.training_curve.loss IS 'training loss of the epoch';
COMMENT ON COLUMN recsys.training_curve.valid_recall20 IS 'validation Recall@20 after the epoch';
COMMENT ON COLUMN recsys.training_curve.valid_ndcg20 IS 'validation NDCG@20 after the epoch (early stopping watches it)';
COMMENT ON COLUMN recsys.training_curve.samples IS 'training samples in the epoch';
COMMENT ON COLUMN recsys.training_curve.samples_per_s IS 'samples per second';
COMMENT ON COLUMN recsys.training_curve.elapsed_ms IS 'milliseconds the epoch took';
COMMENT ON COLUMN recsys.training_curve.finished_at IS 'when the epoch was committed';
COMMENT ON COLUMN recsys.evaluation_history.evaluation_id IS 'one recsys.evaluate() call';
COMMENT ON COLUMN recsys.evaluation_history.evaluated_at IS 'when it ran';
COMMENT ON COLUMN recsys.evaluation_history.model IS 'model evaluated';
COMMENT ON COLUMN recsys.evaluation_history.version_id IS 'version evaluated (NULL: none active)';
COMMENT ON COLUMN recsys.evaluation_history.split IS 'the held-out pairs it was scored on';
COMMENT ON COLUMN recsys.evaluation_history.method IS 'the model, or a baseline (most_popular, item_cooccurrence)';
COMMENT ON COLUMN recsys.evaluation_history.k IS 'cut-off K';
COMMENT ON COLUMN recsys.evaluation_history.metric IS 'recall, ndcg, precision, f1, map, hit, mrr or coverage';
COMMENT ON COLUMN recsys.evaluation_history.value IS 'the metric, averaged over customers with a held-out positive';
COMMENT ON COLUMN recsys.evaluation_history.users IS 'customers averaged over';
COMMENT ON COLUMN recsys.experiment_results.experiment IS 'experiment name';
COMMENT ON COLUMN recsys.experiment_results.status IS 'running or stopped';
COMMENT ON COLUMN recsys.experiment_results.started_at IS 'when it started';
COMMENT ON COLUMN recsys.experiment_results.stopped_at IS 'when it stopped';
COMMENT ON COLUMN recsys.experiment_results.variant IS 'variant name';
COMMENT ON COLUMN recsys.experiment_results.is_control IS 'the control variant (the first), which the others are compared with';
COMMENT ON COLUMN recsys.experiment_results.users IS 'customers assigned to the variant and shown something';
COMMENT ON COLUMN recsys.experiment_results.impressions IS 'recommendations shown';
COMMENT ON COLUMN recsys.experiment_results.clicks IS 'clicks logged';
COMMENT ON COLUMN recsys.experiment_results.ctr IS 'clicks per impression';
COMMENT ON COLUMN recsys.experiment_results.converted_users IS 'customers who bought what they were shown';
COMMENT ON COLUMN recsys.experiment_results.conversion IS 'converted customers per customer';
COMMENT ON COLUMN recsys.experiment_results.revenue_per_user IS 'revenue per customer';
COMMENT ON COLUMN recsys.experiment_results.uplift IS 'conversion minus the control''s (an absolute difference)';
COMMENT ON COLUMN recsys.experiment_results.uplift_low IS 'lower end of its 95% interval';
COMMENT ON COLUMN recsys.experiment_results.uplift_high IS 'upper end of its 95% interval';
COMMENT ON COLUMN recsys.experiment_results.p_value IS 'two-sided p-value of the conversion difference';
--@end
