/* recsys upgrade script 0.1.0 -> 0.2.0: only the delta (released scripts never change; see sql/RELEASED) */
\echo Use "ALTER EXTENSION recsys UPDATE TO '0.2.0'" to load this file. \quit

------------------------------------------------------------------------------
-- Training claims: one training per model, and a failed CALL never leaves the model locked
------------------------------------------------------------------------------

-- A session advisory lock outlives a CALL stopped by an error or statement_timeout for as long as its
-- session lives (a pooled connection then blocks the nightly job). A claim names the statement that holds
-- it instead: it is live while that backend still runs that statement (pg_stat_activity: same pid, state
-- active, same query_start, which stays the CALL's start across its COMMITs), and stale otherwise.
CREATE TABLE recsys.training_claims (
    name       text PRIMARY KEY,
    pid        integer NOT NULL,
    since      timestamptz NOT NULL,
    claimed_by name NOT NULL
);
COMMENT ON TABLE recsys.training_claims IS 'which statement trains a model now (backend pid and the CALL''s start); a claim whose statement has ended is stale and taken over';
-- dumped like every recsys table; a restored claim names no running statement, so it is stale
SELECT pg_catalog.pg_extension_config_dump('recsys.training_claims', '');

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
       AND EXISTS (SELECT 1 FROM pg_stat_activity a
                    WHERE a.pid = c.pid AND a.state = 'active' AND a.query_start = c.since) THEN
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

CREATE FUNCTION recsys.training_release(name text) RETURNS void
    LANGUAGE sql VOLATILE STRICT
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$ DELETE FROM recsys.training_claims t WHERE t.name = training_release.name AND t.pid = pg_backend_pid() $$;
COMMENT ON FUNCTION recsys.training_release(text) IS 'ends this backend''s claim on a training; a claim left by a failed statement needs no release (it is stale once the statement ends)';

CREATE FUNCTION recsys.bundle_scorer_init(hidden integer, seed bigint) RETURNS bytea
    AS 'MODULE_PATHNAME', 'bundle_scorer_init'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.bundle_scorer_init(integer, bigint) IS 'new weights of the bundle scorer (an MLP from the scorer''s features through hidden units to one linear score), seeded';

-- One training driver. recsys.train, recsys.cross_validate and the coordinator's recsys_proxy.train run the same
-- loop (samples, scorer epochs with early stopping on validation NDCG@20, GRU epochs, the final fit, the
-- activation rule); what differs is where each step runs, so the steps are functions of one schema, named alike:
--   S.train_prepare(o)                                 -> timestamptz   features refreshed if asked; the data's end
--   S.train_samples_for(version_id, o, feedback_since) -> bigint        the held-out fit's samples, stored
--   S.train_status(version_id)                         -> (samples bigint, items integer)
--   S.train_validate(version_id, scorer)               -> (recall20, ndcg20, users); scorer NULL: the fit alone
--   S.train_scorer_epoch(version_id, scorer, epoch, o) -> bytea
--   S.train_encoder_epoch(version_id, encoder, epoch, o, since) -> bytea   since: only customers active after it
--   S.train_final(version_id, o, scorer, encoder)      -> bytea         servable weights; the samples dropped
--   S.train_activate(version_id)                       -> void
-- recsys has the single-node steps; scaleout/coordinator.sql defines recsys_proxy's, which run on every shard.
CREATE FUNCTION recsys.train_prepare(o jsonb) RETURNS timestamptz
    LANGUAGE plpgsql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (o ->> 'features')::boolean THEN
        PERFORM recsys.refresh_features();
    END IF;
    RETURN (SELECT max(e.ts) FROM recsys.events_clean e);
END
$$;
COMMENT ON FUNCTION recsys.train_prepare(jsonb) IS 'a training step: refreshes features and mined bundles when option features is true; returns the time of the newest prepared event (the new version''s data_to)';

CREATE FUNCTION recsys.train_status(version_id bigint, OUT samples bigint, OUT items integer)
    LANGUAGE sql STABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (SELECT count(*) FROM recsys.train_samples s WHERE s.version_id = train_status.version_id),
           (SELECT max(m.idx) + 1 FROM recsys.id_map m WHERE m.space = 'item')::integer
$$;
COMMENT ON FUNCTION recsys.train_status(bigint) IS 'a training step: the samples stored for a version in training (none: it cannot resume) and the item vocabulary of a session encoder';

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
             ORDER BY hashint8(od.user_idx::bigint * 1000 + t + epoch)) sq
$$;
COMMENT ON FUNCTION recsys.train_encoder_epoch(bigint, bytea, integer, jsonb, timestamptz) IS 'a training step: one epoch of the GRU encoder over the customers'' item sequences (next item by sampled softmax; since: only customers with events after it)';

CREATE FUNCTION recsys.train_final(version_id bigint, o jsonb, scorer bytea, encoder bytea) RETURNS bytea
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM recsys.train_samples s WHERE s.version_id = train_final.version_id;
    RETURN recsys.train_final_weights(o, scorer, encoder);
END
$$;
COMMENT ON FUNCTION recsys.train_final(bigint, jsonb, bytea, bytea) IS 'a training step: the servable weights (the fit on all prepared data, the scorer and encoder attached); drops the version''s samples';

CREATE FUNCTION recsys.train_activate(version_id bigint) RETURNS void
    LANGUAGE sql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT recsys.activate_version(version_id) $$;
COMMENT ON FUNCTION recsys.train_activate(bigint) IS 'a training step: activates the trained version (the coordinator''s publishes it to every shard first)';

-- the transaction boundary of a training: commit, then pin the path again (a local setting ends with the
-- transaction; a procedure that commits may not carry a SET clause)
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

CREATE PROCEDURE recsys.train_driver(caller text, model text, options jsonb, steps text, trial boolean,
                                     INOUT version_id bigint DEFAULT NULL)
    LANGUAGE plpgsql
-- no SET clause: a procedure with one cannot COMMIT; the path is pinned per transaction (recsys.train_commit)
AS $$
DECLARE
    -- initialisers run before the path is pinned: function calls only, qualified, no operators
    o jsonb;
    s text;
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
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    o := recsys.train_options(options);
    IF model IS NULL OR model !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid model name %', pg_catalog.quote_literal(coalesce(model, 'NULL'))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF steps IS NULL OR pg_catalog.to_regnamespace(steps) IS NULL THEN
        RAISE EXCEPTION 'no schema % of training steps', pg_catalog.quote_literal(coalesce(steps, 'NULL'))
            USING ERRCODE = 'invalid_schema_name';
    END IF;
    s := pg_catalog.quote_ident(steps);
    IF NOT trial THEN
        -- one training per model at a time, across sessions (held over the per-epoch commits)
        PERFORM recsys.training_claim(caller || ':' || model);
    END IF;
    CALL recsys.train_commit(trial);
    IF NOT EXISTS (SELECT 1 FROM recsys.models m WHERE m.name = train_driver.model) THEN
        PERFORM recsys.create_model(model, 'bundle', o, 'bundle ranker trained by ' || caller);
    ELSIF (SELECT m.kind FROM recsys.models m WHERE m.name = train_driver.model) <> 'bundle' THEN
        RAISE EXCEPTION 'model % is not a bundle model', pg_catalog.quote_literal(model)
            USING ERRCODE = 'wrong_object_type', HINT = caller || ' trains bundle models; pick another name.';
    END IF;
    active := recsys.active_version(model);
    EXECUTE pg_catalog.format('SELECT %s.train_prepare($1)', s) INTO new_data_to USING o;
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
        EXECUTE pg_catalog.format('SELECT * FROM %s.train_status($1)', s) INTO have_samples, items USING v;
    END IF;
    IF v IS NOT NULL AND have_samples > 0 THEN
        SELECT r.epoch + 1, r.checkpoint INTO start_epoch, scorer FROM recsys.training_runs r
         WHERE r.version_id = v AND r.checkpoint IS NOT NULL ORDER BY r.epoch DESC LIMIT 1;
        start_epoch := coalesce(start_epoch, 1);
        SELECT r.epoch, r.checkpoint, (r.metrics ->> 'valid_ndcg20')::float8, (r.metrics ->> 'valid_recall20')::float8
          INTO best_epoch, best, best_ndcg, best_recall
          FROM recsys.training_runs r WHERE r.version_id = v AND r.checkpoint IS NOT NULL
         ORDER BY (r.metrics ->> 'valid_ndcg20')::float8 DESC, r.epoch LIMIT 1;
        best_epoch := coalesce(best_epoch, 0);
        best_ndcg := coalesce(best_ndcg, -1);
        RAISE NOTICE '%: resuming version % of % at epoch %', caller, v, model, start_epoch;
    ELSE
        IF v IS NULL THEN
            v := recsys.add_version(model, NULL, 'training', '{}', active, NULL, new_data_to);
        ELSE
            -- interrupted before its samples were kept (a crash can lose the last commits): the same version over
            RAISE NOTICE '%: restarting version % of % from its samples (none survived)', caller, v, model;
        END IF;
        UPDATE recsys.model_versions mv SET note = pg_catalog.format('training with %s', o) WHERE mv.version_id = v;
        CALL recsys.train_commit(trial);
        -- the scorer learns to rerank the fit's candidates for one held-out bundle per customer, and from the
        -- feedback on what was shown since the active version went live
        t0 := pg_catalog.clock_timestamp();
        EXECUTE pg_catalog.format('SELECT %s.train_samples_for($1, $2, $3)', s) INTO nsamples
          USING v, o, CASE WHEN NOT trial    -- a trial learns from the held-out pairs alone
                           THEN coalesce((SELECT mv.activated_at FROM recsys.model_versions mv WHERE mv.version_id = active),
                                         '-infinity') END;
        EXECUTE pg_catalog.format('SELECT * FROM %s.train_validate($1, NULL)', s) INTO val USING v;
        EXECUTE pg_catalog.format('SELECT * FROM %s.train_status($1)', s) INTO have_samples, items USING v;
        INSERT INTO recsys.training_runs (version_id, epoch, loss, metrics, samples, samples_per_s, elapsed_ms)
        VALUES (v, 0, NULL, pg_catalog.jsonb_build_object('stage', 'fit', 'valid_recall20', val.recall20,
                    'valid_ndcg20', val.ndcg20, 'valid_users', val.users, 'feedback_samples', have_samples - nsamples,
                    'steps', steps),
                nsamples, NULL, 1000 * extract(epoch FROM pg_catalog.clock_timestamp() - t0));
        CALL recsys.train_commit(trial);
        IF (o ->> 'incremental')::boolean AND active IS NOT NULL THEN
            scorer := recsys.bundle_part((SELECT mv.weights FROM recsys.model_versions mv WHERE mv.version_id = active), 'scorer');
        END IF;
    END IF;
    -- a fresh scorer, and also for a resumed version that kept no checkpoint: a crash can lose the last commits
    -- (synchronous_commit off), and the version's samples may outlive every epoch row
    IF scorer IS NULL THEN
        scorer := recsys.bundle_scorer_init((o ->> 'hidden')::int, (o ->> 'seed')::bigint);
        start_epoch := 1;
    END IF;
    best := coalesce(best, scorer);

    -- scorer epochs: one committed row (and checkpoint) each, early stop on validation NDCG@20
    FOR epoch IN start_epoch .. (o ->> 'max_epochs')::int LOOP
        t0 := pg_catalog.clock_timestamp();
        EXECUTE pg_catalog.format('SELECT %s.train_scorer_epoch($1, $2, $3, $4)', s) INTO scorer USING v, scorer, epoch, o;
        EXECUTE pg_catalog.format('SELECT * FROM %s.train_validate($1, $2)', s) INTO val USING v, scorer;
        nsamples := (recsys.model_info(scorer) #>> '{config,train,samples}')::bigint;
        INSERT INTO recsys.training_runs (version_id, epoch, loss, metrics, samples, samples_per_s, elapsed_ms, checkpoint)
        VALUES (v, epoch, (recsys.model_info(scorer) #>> '{config,train,mean_loss}')::float8,
                pg_catalog.jsonb_build_object('stage', 'scorer', 'valid_recall20', val.recall20,
                    'valid_ndcg20', val.ndcg20, 'valid_users', val.users, 'steps', steps),
                nsamples, nsamples / greatest(extract(epoch FROM pg_catalog.clock_timestamp() - t0), 1e-6),
                1000 * extract(epoch FROM pg_catalog.clock_timestamp() - t0), scorer);
        IF val.ndcg20 > best_ndcg THEN
            best_ndcg := val.ndcg20;
            best_recall := val.recall20;
            best := scorer;
            best_epoch := epoch;
        END IF;
        CALL recsys.train_commit(trial);
        EXIT WHEN epoch - best_epoch >= (o ->> 'patience')::int;
    END LOOP;

    -- the GRU encoder for customers who bring a session but no history
    EXECUTE pg_catalog.format('SELECT * FROM %s.train_status($1)', s) INTO have_samples, items USING v;
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
        FOR epoch IN 1 .. (o ->> 'gru_epochs')::int LOOP
            t0 := pg_catalog.clock_timestamp();
            -- incremental: only customers with events since the active version's data
            EXECUTE pg_catalog.format('SELECT %s.train_encoder_epoch($1, $2, $3, $4, $5)', s) INTO encoder
              USING v, encoder, epoch, o,
                    CASE WHEN (o ->> 'incremental')::boolean AND active IS NOT NULL
                         THEN (SELECT mv.data_to FROM recsys.model_versions mv WHERE mv.version_id = active) END;
            nsamples := (recsys.model_info(encoder) #>> '{config,train,samples}')::bigint;
            INSERT INTO recsys.training_runs (version_id, epoch, loss, metrics, samples, samples_per_s, elapsed_ms)
            VALUES (v, 1000 + epoch, (recsys.model_info(encoder) #>> '{config,train,mean_loss}')::float8,
                    pg_catalog.jsonb_build_object('stage', 'encoder', 'steps', steps), nsamples,
                    nsamples / greatest(extract(epoch FROM pg_catalog.clock_timestamp() - t0), 1e-6),
                    1000 * extract(epoch FROM pg_catalog.clock_timestamp() - t0));
            CALL recsys.train_commit(trial);
        END LOOP;
    END IF;

    -- the served model: the fit on all data, the best scorer, the encoder
    EXECUTE pg_catalog.format('SELECT %s.train_final($1, $2, $3, $4)', s) INTO new_weights USING v, o, best, encoder;
    UPDATE recsys.model_versions mv
       SET weights = new_weights, status = 'candidate', data_to = new_data_to,
           metrics = pg_catalog.jsonb_build_object('valid_recall20', best_recall, 'valid_ndcg20', best_ndcg,
                         'best_epoch', best_epoch,
                         'fit_valid_ndcg20', (SELECT r.metrics -> 'valid_ndcg20' FROM recsys.training_runs r
                                               WHERE r.version_id = v AND r.epoch = 0),
                         'train_seconds', extract(epoch FROM pg_catalog.clock_timestamp() - started),
                         'options', o, 'steps', steps)
     WHERE mv.version_id = v;
    version_id := v;
    IF trial THEN
        RETURN;     -- the caller scores it and rolls it back
    END IF;
    -- committed here first: a coordinator's shards have no distributed transaction with it
    CALL recsys.train_commit(trial);

    -- activate only if not worse than the active version on validation (force overrides)
    active := recsys.active_version(model);
    SELECT (mv.metrics ->> 'valid_ndcg20')::float8 INTO active_ndcg FROM recsys.model_versions mv WHERE mv.version_id = active;
    activated := active IS NULL OR (o ->> 'force')::boolean OR active_ndcg IS NULL OR best_ndcg >= active_ndcg;
    IF activated THEN
        EXECUTE pg_catalog.format('SELECT %s.train_activate($1)', s) USING v;
        UPDATE recsys.models m SET needs_retrain = false WHERE m.name = train_driver.model;
    ELSE
        UPDATE recsys.model_versions mv
           SET note = pg_catalog.format('not activated: validation NDCG@20 %s is below the active version''s %s',
                                        round(best_ndcg::numeric, 4), round(active_ndcg::numeric, 4))
         WHERE mv.version_id = v;
    END IF;
    CALL recsys.train_commit(trial);
    PERFORM recsys.training_release(caller || ':' || model);
    RAISE NOTICE '%: version % of % %: validation Recall@20 %, NDCG@20 % (best epoch %), % s',
        caller, v, model, CASE WHEN activated THEN 'activated' ELSE 'kept as candidate' END,
        round(best_recall::numeric, 4), round(best_ndcg::numeric, 4), best_epoch,
        round(extract(epoch FROM pg_catalog.clock_timestamp() - started)::numeric, 1);
END
$$;
COMMENT ON PROCEDURE recsys.train_driver(text, text, jsonb, text, boolean, bigint) IS 'the one training loop of recsys.train, recsys.cross_validate and recsys_proxy.train: samples, scorer epochs (one committed training_runs row and checkpoint each, early stop on validation NDCG@20, resumable), GRU epochs, the final fit, activation only if not worse (option force); each step is the function train_* of schema steps (recsys: this node; recsys_proxy: every shard); trial: inside the caller''s transaction, no commit, claim or activation; returns the version';

CREATE OR REPLACE PROCEDURE recsys.train(model text DEFAULT 'default', options jsonb DEFAULT '{}')
    LANGUAGE plpgsql
-- no SET clause: a procedure with one cannot COMMIT, and the driver commits per epoch
AS $$
DECLARE
    v bigint;
BEGIN
    CALL recsys.train_driver('recsys.train', model, options, 'recsys', false, v);
END
$$;
COMMENT ON PROCEDURE recsys.train(text, jsonb) IS 'trains a bundle model end to end (recsys.train_driver with this node''s steps): fit with one held-out bundle per customer, learned scorer epochs (one committed training_runs row and checkpoint each, early stop on validation NDCG@20, resumable), GRU encoder epochs, final fit on all data; activates the new version only if its validation NDCG@20 is not below the active one''s (option force); one training per model at a time (a claim on the running CALL: a failed or cancelled one holds nothing); search_path pinned per transaction; options: see recsys.option_specs()';

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
            CALL recsys.train_driver('recsys.cross_validate', model, o, 'recsys', true, v);
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


------------------------------------------------------------------------------
-- Scale-out: data-parallel fitting and training over shards, publication of a
-- version to every shard, batch serving (PL/Proxy SPLIT, Citus). The coordinator's
-- side is scaleout/coordinator.sql; these are the pieces every node has.
------------------------------------------------------------------------------

CREATE FUNCTION recsys.fit_partial(options jsonb DEFAULT '{}') RETURNS bytea
    AS 'MODULE_PATHNAME', 'fit_partial'
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.fit_partial(jsonb) IS 'this node''s share of a data-parallel fit: the Gram matrix (packed upper triangle) and bundle taker counts over its own customers, with the catalogue''s item view; options as recsys.bundle_fit (beta and holdout_seed shape it; lambda, keep_b, keep_m are for the merge); recsys.fit_merge adds the shares up';

CREATE FUNCTION recsys.fit_merge(partials bytea[], options jsonb DEFAULT '{}') RETURNS bytea
    AS 'MODULE_PATHNAME', 'fit_merge'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.fit_merge(bytea[], jsonb) IS 'sums the shares from recsys.fit_partial (every shard''s customers) and finishes the fit as recsys.bundle_fit does on one node: the same weights, up to float summation order; NULL elements are skipped; shares of another catalogue or other beta / holdout_seed are an error; options lambda (500), keep_b (256), keep_m (64)';

-- the training aggregate's raw state, as a shard returns it (no final function)
CREATE AGGREGATE recsys.mlp_train_partial(weights bytea, x real[], y real, options jsonb) (
    SFUNC = recsys.mlp_train_step,
    STYPE = bytea,
    COMBINEFUNC = recsys.train_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE recsys.mlp_train_partial(bytea, real[], real, jsonb) IS 'recsys.mlp_train without its final function: the state (weights, optimiser moments, samples seen) of an epoch over this node''s rows, for recsys.train_merge on the coordinator';

CREATE AGGREGATE recsys.rnn_train_partial(weights bytea, items integer[], target integer, options jsonb) (
    SFUNC = recsys.rnn_train_step,
    STYPE = bytea,
    COMBINEFUNC = recsys.train_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE recsys.rnn_train_partial(bytea, integer[], integer, jsonb) IS 'recsys.rnn_train without its final function: the state of an epoch of the sequence encoder over this node''s sequences, for recsys.train_merge on the coordinator';

-- the coordinator's half: COMBINEFUNC over the shards' states, then the final function
CREATE AGGREGATE recsys.train_merge(state bytea) (
    SFUNC = recsys.train_combine,
    STYPE = bytea,
    COMBINEFUNC = recsys.train_combine,
    FINALFUNC = recsys.train_final,
    FINALFUNC_MODIFY = READ_WRITE,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE recsys.train_merge(bytea) IS 'merges training states from recsys.mlp_train_partial (one per shard) with the training aggregates'' combine function (weighted model averaging) and finishes them into weights';

CREATE TABLE recsys.shard_samples (
    job        text NOT NULL,
    user_idx   integer NOT NULL,
    valid      boolean NOT NULL,
    bundle_idx integer,
    x          real[],
    y          real NOT NULL
);
CREATE INDEX ON recsys.shard_samples (job, valid);
COMMENT ON TABLE recsys.shard_samples IS 'a shard''s scorer samples for a data-parallel training job (from the merged held-out fit), kept between the coordinator''s epoch calls; transient, not dumped';

CREATE FUNCTION recsys.shard_samples_for(job text, fit bytea, holdout_seed bigint, candidates integer DEFAULT 100)
RETURNS bigint
    LANGUAGE plpgsql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    -- this job's earlier samples, and those a failed job of the same model (job "model:...") left behind
    DELETE FROM recsys.shard_samples s
     WHERE s.job = shard_samples_for.job OR s.job LIKE replace(split_part(shard_samples_for.job, ':', 1), '_', '\_') || ':%';
    INSERT INTO recsys.shard_samples
    SELECT shard_samples_for.job, b.* FROM recsys.bundle_samples(fit, holdout_seed, candidates) b;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.shard_samples_for(text, bytea, bigint, integer) IS 'a data-parallel training step on a shard: the scorer''s samples of its customers under the merged held-out fit, stored for the job (replacing its earlier ones and any left by a failed job of the same model, named "model:..."); returns their count';

CREATE FUNCTION recsys.shard_scorer_epoch(job text, scorer bytea, epoch integer, lr double precision DEFAULT 0.01)
RETURNS bytea
    LANGUAGE sql STABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
    -- the same epoch as recsys.train_scorer_epoch, over this shard's samples, stopping short of the final function
    SELECT recsys.mlp_train_partial(scorer, s.x, s.y, jsonb_build_object('lr', lr, 'optimizer', 'adam', 'batch', 256))
      FROM (SELECT s.x, s.y FROM recsys.shard_samples s
             WHERE s.job = shard_scorer_epoch.job AND NOT s.valid
             ORDER BY hashint8(s.user_idx::bigint * 1000 + epoch), s.bundle_idx) s
$$;
COMMENT ON FUNCTION recsys.shard_scorer_epoch(text, bytea, integer, double precision) IS 'a data-parallel training step on a shard: one epoch of the scorer from the given weights over the job''s samples (Adam, batch 256, shuffled by customer); returns the training state for recsys.train_merge';

CREATE FUNCTION recsys.shard_encoder_epoch(encoder bytea, epoch integer, seed bigint DEFAULT 42)
RETURNS bytea
    LANGUAGE sql STABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
    -- the same epoch as recsys.train's encoder epochs, over this shard's customers' sequences
    SELECT recsys.rnn_train_partial(encoder, sq.prefix, sq.target,
                                    jsonb_build_object('lr', 0.01, 'negatives', 50, 'seed', seed + epoch))
      FROM (SELECT od.items[greatest(1, t - 20):t - 1] AS prefix, od.items[t] AS target
              FROM recsys.user_sequences(50) od, generate_subscripts(od.items, 1) AS t WHERE t > 1
             ORDER BY hashint8(od.user_idx::bigint * 1000 + t + epoch)) sq
$$;
COMMENT ON FUNCTION recsys.shard_encoder_epoch(bytea, integer, bigint) IS 'a data-parallel training step on a shard: one epoch of the GRU encoder from the given weights over its customers'' item sequences (next item by sampled softmax); returns the training state for recsys.train_merge';

CREATE FUNCTION recsys.shard_validate(job text, scorer bytea)
RETURNS TABLE (hits double precision, ndcg double precision, users bigint)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH scored AS (
        SELECT s.user_idx, s.y, s.bundle_idx,
               CASE WHEN shard_validate.scorer IS NULL THEN s.x[2]
                    ELSE (recsys.mlp_forward(shard_validate.scorer, s.x))[1] END AS p
          FROM recsys.shard_samples s
         WHERE s.job = shard_validate.job AND s.valid AND s.bundle_idx IS NOT NULL
    ), ranked AS (
        SELECT sc.user_idx, sc.y, row_number() OVER (PARTITION BY sc.user_idx ORDER BY sc.p DESC, sc.bundle_idx) AS rk
          FROM scored sc
    ), users AS (
        SELECT DISTINCT s.user_idx FROM recsys.shard_samples s WHERE s.job = shard_validate.job AND s.valid
    )
    SELECT coalesce(sum(CASE WHEN r.rk <= 20 THEN 1.0 ELSE 0.0 END), 0)::float8,
           coalesce(sum(CASE WHEN r.rk <= 20 THEN 1.0 / log(2, r.rk + 1.0) ELSE 0.0 END), 0)::float8,
           count(*)
      FROM users u LEFT JOIN ranked r ON r.user_idx = u.user_idx AND r.y = 1
$$;
COMMENT ON FUNCTION recsys.shard_validate(text, bytea) IS 'a data-parallel training step on a shard: hits and NDCG sums at 20 (one held-out bundle per validating customer) of a scorer, or of the fit alone when NULL, with the customer count, so the coordinator can average over all shards';

CREATE FUNCTION recsys.shard_done(job text) RETURNS bigint
    LANGUAGE sql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH d AS (DELETE FROM recsys.shard_samples s WHERE s.job = shard_done.job RETURNING 1) SELECT count(*) FROM d
$$;
COMMENT ON FUNCTION recsys.shard_done(text) IS 'drops a data-parallel training job''s samples from this shard; returns how many';

CREATE FUNCTION recsys.publish_version(model text, version_id bigint, weights bytea, checksum text,
                                       activate boolean DEFAULT true, metrics jsonb DEFAULT '{}')
RETURNS text
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v recsys.model_versions;
BEGIN
    IF model IS NULL OR version_id IS NULL OR weights IS NULL OR checksum IS NULL OR activate IS NULL THEN
        RAISE EXCEPTION 'model, version_id, weights, checksum and activate must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF md5(weights) <> checksum THEN
        RAISE EXCEPTION 'weights of version % do not match checksum %', version_id, checksum
            USING ERRCODE = 'data_corrupted', HINT = 'Pass md5(weights) as computed where the version was committed.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM recsys.models m WHERE m.name = publish_version.model) THEN
        PERFORM recsys.create_model(model, 'bundle', '{}', 'published by the coordinator');
    END IF;
    -- serialise publications and activations of the model on this node
    PERFORM 1 FROM recsys.models m WHERE m.name = publish_version.model FOR UPDATE;
    SELECT * INTO v FROM recsys.model_versions mv WHERE mv.version_id = publish_version.version_id;
    IF FOUND THEN
        -- idempotent: the same version again changes nothing (beyond activating it when asked)
        IF v.model <> model OR v.weights IS NULL OR md5(v.weights) <> checksum THEN
            RAISE EXCEPTION 'version % exists on this node with other weights or another model', version_id
                USING ERRCODE = 'duplicate_object',
                      HINT = 'Versions are numbered by the coordinator; do not train on shards directly.';
        END IF;
        IF activate AND v.status <> 'active' THEN
            PERFORM recsys.activate_version(version_id);
            RETURN 'activated';
        END IF;
        RETURN 'unchanged';
    END IF;
    INSERT INTO recsys.model_versions (version_id, model, status, weights, metrics, note)
    OVERRIDING SYSTEM VALUE
    VALUES (version_id, model, 'candidate', weights, coalesce(metrics, '{}'), 'published by the coordinator');
    -- local numbering continues after the coordinator's
    PERFORM setval(pg_get_serial_sequence('recsys.model_versions', 'version_id'),
                   (SELECT max(mv.version_id) FROM recsys.model_versions mv));
    IF activate THEN
        PERFORM recsys.activate_version(version_id);
        RETURN 'activated';
    END IF;
    RETURN 'staged';
END
$$;
COMMENT ON FUNCTION recsys.publish_version(text, bigint, bytea, text, boolean, jsonb) IS 'installs a version committed on the coordinator under the same version_id, after checking md5(weights) = checksum; idempotent (the same version again returns unchanged, other weights under its id are an error); activate false stages it as a candidate; returns staged, activated or unchanged';

-- a batch's answer is bounded like a single call's: at most 1,000,000 rows (users x k), so a caller cannot fill
-- memory or the temporary files with one statement
CREATE FUNCTION recsys.check_batch(users integer, k integer) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF users::bigint * greatest(k, 1) > 1000000 THEN
        RAISE EXCEPTION 'a batch of % users at k = % would return more than 1000000 rows', users, k
            USING ERRCODE = 'program_limit_exceeded', HINT = 'Split the users into smaller batches.';
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION recsys.check_batch(integer, integer) IS 'true, or an error when users x k passes the 1,000,000 rows a batch may return';

CREATE FUNCTION recommend_bundles_batch(user_ids bigint[], k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (user_id bigint, rank integer, bundle_id bigint, items bigint[], score real, reason text)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, r.rank, r.bundle_id, r.items, r.score, r.reason
      FROM unnest(user_ids) WITH ORDINALITY AS u(id, n)
     CROSS JOIN LATERAL @extschema@.recommend_bundles(u.id, k, options) r
     WHERE u.id IS NOT NULL AND recsys.check_batch(cardinality(user_ids), k)
     ORDER BY u.n, r.rank
$$;
COMMENT ON FUNCTION recommend_bundles_batch(bigint[], integer, jsonb) IS 'recommend_bundles for many users in one call (rows carry user_id, in the order given); what a PL/Proxy SPLIT call runs on each shard';

CREATE FUNCTION recommend_bundles_batch(user_ids text[], k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (user_id text, rank integer, bundle_id text, items text[], score real, reason text)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, r.rank, r.bundle_id, r.items, r.score, r.reason
      FROM unnest(user_ids) WITH ORDINALITY AS u(id, n)
     CROSS JOIN LATERAL @extschema@.recommend_bundles(u.id, k, options) r
     WHERE u.id IS NOT NULL AND recsys.check_batch(cardinality(user_ids), k)
     ORDER BY u.n, r.rank
$$;
COMMENT ON FUNCTION recommend_bundles_batch(text[], integer, jsonb) IS 'recommend_bundles_batch for text user ids';

REVOKE EXECUTE ON FUNCTION @extschema@.recommend_bundles_batch(bigint[], integer, jsonb),
                           @extschema@.recommend_bundles_batch(text[], integer, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.recommend_bundles_batch(bigint[], integer, jsonb),
                          @extschema@.recommend_bundles_batch(text[], integer, jsonb) TO recsys_admin, recsys_reader;
REVOKE EXECUTE ON FUNCTION recsys.fit_partial(jsonb), recsys.fit_merge(bytea[], jsonb),
                           recsys.mlp_train_partial(bytea, real[], real, jsonb), recsys.train_merge(bytea),
                           recsys.shard_samples_for(text, bytea, bigint, integer),
                           recsys.shard_scorer_epoch(text, bytea, integer, double precision),
                           recsys.shard_validate(text, bytea), recsys.shard_done(text),
                           recsys.rnn_train_partial(bytea, integer[], integer, jsonb),
                           recsys.shard_encoder_epoch(bytea, integer, bigint),
                           recsys.publish_version(text, bigint, bytea, text, boolean, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recsys.fit_partial(jsonb), recsys.fit_merge(bytea[], jsonb),
                          recsys.mlp_train_partial(bytea, real[], real, jsonb), recsys.train_merge(bytea),
                          recsys.shard_samples_for(text, bytea, bigint, integer),
                          recsys.shard_scorer_epoch(text, bytea, integer, double precision),
                          recsys.shard_validate(text, bytea), recsys.shard_done(text),
                          recsys.rnn_train_partial(bytea, integer[], integer, jsonb),
                          recsys.shard_encoder_epoch(bytea, integer, bigint),
                          recsys.publish_version(text, bigint, bytea, text, boolean, jsonb) TO recsys_admin;
GRANT ALL ON recsys.shard_samples TO recsys_admin;
-- every recsys table is dumped; this one is empty between trainings
SELECT pg_catalog.pg_extension_config_dump('recsys.shard_samples', '');

------------------------------------------------------------------------------
-- Trust, round 2: options, ids, the model store, erasure, privileges
------------------------------------------------------------------------------

-- Options: every option of every function family declared once (src/options.c), read by the C parsers and,
-- through recsys.option_specs(), by the SQL ones: one rule (declared keys, types, ranges, whole numbers) and one
-- wording, the declared defaults, and the README reference.
CREATE FUNCTION recsys.option_specs()
RETURNS TABLE (family text, key text, type text, min numeric, max numeric, "default" jsonb, help text)
    AS 'MODULE_PATHNAME', 'option_specs'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.option_specs() IS 'every option of every function family (recommend_bundles, train, refresh_features, mine_bundles, split_pairs, bundle_fit, mlp_train, rnn_train): key, type, range, default and what it does, as the parsers check them';

CREATE FUNCTION recsys.check_options(options jsonb, family text) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    spec jsonb := (SELECT jsonb_object_agg(o.key, jsonb_build_object('type', o.type, 'min', o.min, 'max', o.max,
                                                                    'default', o."default"))
                     FROM recsys.option_specs() o WHERE o.family = check_options.family);
    what text := family;
    key text;
    s jsonb;
    v jsonb;
    x numeric;
    o jsonb := '{}';
BEGIN
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass ''{}'' for the defaults.';
    END IF;
    FOR key IN SELECT jsonb_object_keys(options) LOOP
        IF NOT spec ? key THEN
            RAISE EXCEPTION 'unknown option "%"', key USING ERRCODE = 'invalid_parameter_value',
                HINT = format('Known options of %s: %s.', what,
                              (SELECT string_agg(o.key, ', ') FROM recsys.option_specs() o WHERE o.family = check_options.family));
        END IF;
    END LOOP;
    FOR key, s IN SELECT * FROM jsonb_each(spec) LOOP
        v := coalesce(options -> key, s -> 'default');
        IF options ? key THEN
            IF s ->> 'type' IN ('integer', 'number') THEN
                IF jsonb_typeof(v) <> 'number' THEN
                    RAISE EXCEPTION 'option "%" must be %', key, CASE WHEN s ->> 'type' = 'integer' THEN 'an integer' ELSE 'a number' END
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                x := (v #>> '{}')::numeric;
                IF s ->> 'type' = 'integer' AND (x <> trunc(x) OR x < (s ->> 'min')::numeric OR x > (s ->> 'max')::numeric) THEN
                    RAISE EXCEPTION 'option "%" must be an integer from % to %, got %', key, s ->> 'min', s ->> 'max', x::float8
                        USING ERRCODE = 'invalid_parameter_value';
                ELSIF x < (s ->> 'min')::numeric OR x > (s ->> 'max')::numeric THEN
                    RAISE EXCEPTION 'option "%" must be from % to %, got %', key, (s ->> 'min')::float8, (s ->> 'max')::float8, x::float8
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            ELSIF jsonb_typeof(v) IS DISTINCT FROM s ->> 'type' THEN
                RAISE EXCEPTION 'option "%" must be %', key,
                    CASE s ->> 'type' WHEN 'boolean' THEN 'true or false' WHEN 'object' THEN 'an object'
                                      WHEN 'array' THEN 'an array' ELSE 'a ' || (s ->> 'type') END
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        END IF;
        o := o || jsonb_build_object(key, v);
    END LOOP;
    RETURN o;
END
$$;
COMMENT ON FUNCTION recsys.check_options(jsonb, text) IS 'validates options against the family''s declared options (recsys.option_specs): unknown keys, wrong types, fractions where integers are due and values out of range are errors naming the key; returns every key with its declared default filled in';

CREATE OR REPLACE FUNCTION recsys.train_options(options jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT recsys.check_options(options, 'train')
$$;

CREATE OR REPLACE FUNCTION recsys.refresh_features(options jsonb DEFAULT '{}') RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o jsonb := recsys.check_options(options, 'refresh_features');
    result jsonb;
BEGIN
    -- the features are shared by every model: two trainings refresh them one after the other
    PERFORM pg_advisory_xact_lock(hashtextextended('recsys.refresh_features', 0));
    DELETE FROM recsys.item_features;
    INSERT INTO recsys.item_features SELECT * FROM recsys.item_profiles((o ->> 'window_days')::int);
    DELETE FROM recsys.user_features;
    INSERT INTO recsys.user_features SELECT * FROM recsys.user_profiles((o ->> 'window_days')::int);
    DELETE FROM recsys.item_pair_stats;
    INSERT INTO recsys.item_pair_stats SELECT * FROM recsys.item_pairs((o ->> 'min_pair_count')::int);
    result := jsonb_build_object('items', (SELECT count(*) FROM recsys.item_features),
                                 'customers', (SELECT count(*) FROM recsys.user_features),
                                 'item_pairs', (SELECT count(*) FROM recsys.item_pair_stats),
                                 'mined_bundles', recsys.mine_bundles(o -> 'mining'));
    RETURN result;
END
$$;

-- mining and splitting check their options with the same rule, then run as before
ALTER FUNCTION recsys.mine_bundles(jsonb) RENAME TO mine_bundles_run;
COMMENT ON FUNCTION recsys.mine_bundles_run(jsonb) IS 'the mining step of recsys.mine_bundles, on options it has checked';
CREATE FUNCTION recsys.mine_bundles(options jsonb DEFAULT '{}') RETURNS bigint
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT recsys.mine_bundles_run(recsys.check_options(options, 'mine_bundles'))
$$;
COMMENT ON FUNCTION recsys.mine_bundles(jsonb) IS 'mines bundles from baskets (or from customers'' histories when events have no basket) into recsys.mined_bundles: Apriori itemsets of 2 to max_size (3) items bought together by at least min_customers (5, never below 2) distinct customers, with lift at least min_lift (1.5), optionally spanning two or more categories (cross_category); baskets over max_basket (50) items are skipped; returns the count';

ALTER FUNCTION recsys.split_pairs(text, jsonb) RENAME TO split_pairs_run;
COMMENT ON FUNCTION recsys.split_pairs_run(text, jsonb) IS 'the splitting step of recsys.split_pairs, on options it has checked';
CREATE FUNCTION recsys.split_pairs(method text, options jsonb DEFAULT '{}')
RETURNS TABLE (user_idx integer, bundle_idx integer, fold integer)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM recsys.split_pairs_run(method, recsys.check_options(options, 'split_pairs'))
$$;
COMMENT ON FUNCTION recsys.split_pairs(text, jsonb) IS 'held-out user-bundle pairs of a split: random (a seeded fraction, default 0.2), time (each customer''s latest fraction of their own history), last_basket (each customer''s most recent purchase), kfold (every pair in one of folds folds, seeded); only customers with two or more bundles, and never all of one customer''s bundles except by kfold chance';

-- Ids: a space's high-water mark, so an index is never handed out twice (forget_user deletes the row of the
-- highest index too), and a bigint form that returns only ids that are their own canonical integer text.
CREATE TABLE recsys.id_spaces (
    space    text PRIMARY KEY CHECK (space IN ('user', 'item', 'bundle')),
    next_idx integer NOT NULL CHECK (next_idx >= 0)
);
COMMENT ON TABLE recsys.id_spaces IS 'the next index of each id space: recsys.map_append alone moves it, and an index below it is never handed out again (erased customers leave holes, not reusable slots)';
-- rows appear with a space's first ids (a fresh install has none, so a restored dump brings its own)
INSERT INTO recsys.id_spaces (space, next_idx) SELECT m.space, max(m.idx) + 1 FROM recsys.id_map m GROUP BY m.space;
SELECT pg_catalog.pg_extension_config_dump('recsys.id_spaces', '');

CREATE OR REPLACE FUNCTION recsys.map_append(space text, new_ids text[]) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    first_idx integer;
BEGIN
    IF map_append.space IS NULL OR map_append.space NOT IN ('user', 'item', 'bundle') THEN
        RAISE EXCEPTION 'unknown id space %', quote_literal(coalesce(map_append.space, 'NULL'))
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use user, item or bundle.';
    END IF;
    -- a space's mark starts after its ids (none yet, or ids restored from a dump made before marks)
    INSERT INTO recsys.id_spaces (space, next_idx)
    SELECT map_append.space, coalesce(max(m.idx) + 1, 0) FROM recsys.id_map m WHERE m.space = map_append.space
    ON CONFLICT ON CONSTRAINT id_spaces_pkey DO NOTHING;
    SELECT s.next_idx INTO first_idx FROM recsys.id_spaces s WHERE s.space = map_append.space FOR UPDATE;
    -- rows written by hand past the mark: number after them (readers report them as corruption)
    first_idx := greatest(first_idx, (SELECT coalesce(max(m.idx), -1) + 1 FROM recsys.id_map m WHERE m.space = map_append.space));
    INSERT INTO recsys.id_map (space, idx, ext_id)
    SELECT map_append.space, first_idx - 1 + row_number() OVER (ORDER BY length(x.id), x.id), x.id
      FROM (SELECT DISTINCT id FROM unnest(new_ids) AS u(id) WHERE id IS NOT NULL) x
     WHERE NOT EXISTS (SELECT 1 FROM recsys.id_map m WHERE m.space = map_append.space AND m.ext_id = x.id);
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE recsys.id_spaces s SET next_idx = first_idx + n WHERE s.space = map_append.space;
    RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.map_append(text, text[]) IS 'adds unmapped external ids to a space (user, item, bundle) from its high-water mark (recsys.id_spaces), in (length, text) order so numeric ids keep their order; an index is never handed out twice; returns how many were added';

CREATE FUNCTION recsys.ext_bigint(ext_id text) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- '0546' or ' +546' would come back as 546, another id: only the canonical text converts
    IF ext_id !~ '^(0|-?[1-9][0-9]{0,18})$' OR ext_id::numeric NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
        RAISE EXCEPTION 'id % is not an integer, so it cannot be returned as bigint', quote_literal(ext_id)
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Call the text form of the function (pass the argument as text), which returns ids as text.';
    END IF;
    RETURN ext_id::bigint;
END
$$;
COMMENT ON FUNCTION recsys.ext_bigint(text) IS 'an external id as bigint when its text is exactly the integer''s (no sign, spaces or leading zeros added), else an error: what the bigint forms of the serving functions return';

CREATE OR REPLACE FUNCTION similar_items(item bigint, k integer DEFAULT 10)
RETURNS TABLE (rank integer, item_id bigint, score real, reason text)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT s.rank, recsys.ext_bigint(s.item_id), s.score, s.reason FROM @extschema@.similar_items(item::text, k) s $$;

CREATE OR REPLACE FUNCTION recommend_items(user_id bigint, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, item_id bigint, score real, reason text)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT r.rank, recsys.ext_bigint(r.item_id), r.score, r.reason FROM @extschema@.recommend_items(user_id::text, k, options) r $$;

CREATE OR REPLACE FUNCTION complete_bundle(items bigint[], k integer DEFAULT 5, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, item_id bigint, score real, reason text)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT c.rank, recsys.ext_bigint(c.item_id), c.score, c.reason FROM @extschema@.complete_bundle(items::text[], k, options) c $$;

-- Erasure: the flag compares wall-clock times (a version trained after the customer was mapped may hold them),
-- the shards' samples go too, and a lost salt is an error rather than forgotten customers coming back.
CREATE FUNCTION recsys.forget_salt() RETURNS bytea
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    salt bytea;
BEGIN
    SELECT s.value INTO salt FROM recsys.secrets s WHERE s.name = 'forget_salt';
    IF salt IS NULL AND EXISTS (SELECT 1 FROM recsys.forgotten_users) THEN
        RAISE EXCEPTION 'the salt of the forgotten customers'' digests is missing from recsys.secrets'
            USING ERRCODE = 'data_corrupted',
                  DETAIL = 'Without it, no erased customer can be recognised, and the next recsys.prepare() would bring them back.',
                  HINT = 'Restore recsys.secrets from a backup (pg_dump keeps it).';
    END IF;
    RETURN salt;
END
$$;
COMMENT ON FUNCTION recsys.forget_salt() IS 'the installation''s salt for forgotten customers'' digests; an error when digests exist but the salt is gone';

CREATE OR REPLACE FUNCTION recsys.user_digest(user_id text) RETURNS bytea
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
-- per event row in prepare(): the salt is read as before, and forget_salt() (which raises when it is gone) runs
-- only when it is missing
AS $$ SELECT sha256(coalesce((SELECT s.value FROM recsys.secrets s WHERE s.name = 'forget_salt'), recsys.forget_salt())
                    || convert_to(user_id, 'UTF8')) $$;

CREATE FUNCTION recsys.secrets_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'recsys.secrets cannot be changed or emptied (%)', tg_op
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'The forgotten customers'' digests are salted with its value: without it they would come back.';
END
$$;
COMMENT ON FUNCTION recsys.secrets_guard() IS 'refuses UPDATE, DELETE and TRUNCATE of recsys.secrets (a restore inserts)';
CREATE TRIGGER secrets_guard BEFORE UPDATE OR DELETE OR TRUNCATE ON recsys.secrets
    FOR EACH STATEMENT EXECUTE FUNCTION recsys.secrets_guard();

CREATE OR REPLACE FUNCTION recsys.forget_user(user_id text) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u integer;
    since timestamptz;
    counts jsonb := '{}';
    n bigint;
BEGIN
    SELECT m.idx, m.first_seen INTO u, since FROM recsys.id_map m WHERE m.space = 'user' AND m.ext_id = forget_user.user_id;
    IF u IS NOT NULL THEN
        DELETE FROM recsys.events_clean e WHERE e.user_idx = u;            GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('events_clean', n);
        DELETE FROM recsys.user_items x WHERE x.user_idx = u;              GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('user_items', n);
        DELETE FROM recsys.user_bundles x WHERE x.user_idx = u;            GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('user_bundles', n);
        DELETE FROM recsys.user_features x WHERE x.user_idx = u;           GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('user_features', n);
        DELETE FROM recsys.train_samples x WHERE x.user_idx = u;           GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('train_samples', n);
        DELETE FROM recsys.shard_samples x WHERE x.user_idx = u;           GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('shard_samples', n);
        -- the index is not reused (recsys.id_spaces keeps the mark past it): a hole is harmless
        DELETE FROM recsys.id_map m WHERE m.space = 'user' AND m.idx = u;  GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('id_map', n);
        -- a live version that was still being made or went live after the customer was mapped may have
        -- learned from them: both sides are wall-clock times (data_to is event time, which says nothing here)
        UPDATE recsys.models md SET needs_retrain = true
         WHERE md.name IN (SELECT mv.model FROM recsys.model_versions mv
                            WHERE mv.status IN ('active', 'candidate', 'training')
                              AND greatest(mv.created_at, mv.activated_at,
                                           (SELECT max(r.finished_at) FROM recsys.training_runs r
                                             WHERE r.version_id = mv.version_id)) >= since);
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('models_to_retrain', n);
    END IF;
    DELETE FROM recsys.impressions i WHERE i.user_id = forget_user.user_id;  GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('impressions', n);
    DELETE FROM recsys.feedback f WHERE f.user_id = forget_user.user_id;     GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('feedback', n);
    -- 32 random bytes from the server's strong random source, once per installation (a lost salt is an
    -- error in recsys.forget_salt, never silently replaced)
    IF NOT EXISTS (SELECT 1 FROM recsys.secrets s WHERE s.name = 'forget_salt') THEN
        PERFORM recsys.forget_salt();
        INSERT INTO recsys.secrets VALUES ('forget_salt',
            decode(replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''), 'hex'));
    END IF;
    INSERT INTO recsys.forgotten_users (digest) VALUES (recsys.user_digest(forget_user.user_id)) ON CONFLICT DO NOTHING;
    -- every backend drops what it cached of this customer
    PERFORM recsys.serving_invalidate();
    RETURN counts;
END
$$;

-- Sources: a view calls its functions as whoever reads it. A superuser (or a pg_cron job of one) running
-- recsys.prepare() over a view owned by a lesser role would run that role's code with superuser rights.
CREATE OR REPLACE FUNCTION recsys.source_expr(src recsys.sources, role text, cast_to text DEFAULT 'text') RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner name;
BEGIN
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        WITH RECURSIVE v(oid) AS (
            SELECT src.relation::oid
            UNION
            SELECT d.refobjid FROM v JOIN pg_rewrite rw ON rw.ev_class = v.oid
              JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                              AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid)
        SELECT r.rolname INTO owner
          FROM v JOIN pg_class c ON c.oid = v.oid JOIN pg_roles r ON r.oid = c.relowner
         WHERE c.relkind = 'v' AND NOT r.rolsuper LIMIT 1;
        IF owner IS NOT NULL THEN
            RAISE EXCEPTION 'the % source % reads a view owned by role %, and this session is a superuser', src.kind, src.relation, owner
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'A view runs the functions it calls as the role reading it: they would run with superuser rights.',
                      HINT = pg_catalog.format('Run recsys.prepare() as %I or as a role granted recsys_admin (schedule the job as that role), or register a table.', owner);
        END IF;
    END IF;
    RETURN CASE WHEN src.columns ->> role IS NULL THEN 'NULL::' || cast_to
                ELSE pg_catalog.format('%I::%s', src.columns ->> role, cast_to) END;
END
$$;

-- The model store: a version's weights are of its model's kind, and an experiment compares versions of one
-- model, whoever writes the row (recsys.add_version, recsys.publish_version or a plain INSERT).
CREATE FUNCTION recsys.model_versions_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    want text := (SELECT m.kind FROM recsys.models m WHERE m.name = new.model);
    have text;
BEGIN
    IF new.weights IS NOT NULL THEN
        have := recsys.model_info(new.weights) ->> 'kind';
        IF have IS DISTINCT FROM want THEN
            RAISE EXCEPTION 'weights of kind % do not fit model % of kind %', have, new.model, want
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'Each model serves weights of its own kind: train or pack weights of that kind, or create a model of this kind.';
        END IF;
    END IF;
    RETURN new;
END
$$;
COMMENT ON FUNCTION recsys.model_versions_check() IS 'trigger: a version''s weights are of its model''s kind';
CREATE TRIGGER model_versions_check BEFORE INSERT OR UPDATE OF weights, model ON recsys.model_versions
    FOR EACH ROW EXECUTE FUNCTION recsys.model_versions_check();

CREATE FUNCTION recsys.experiments_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
    models text[];
BEGIN
    -- what serving reads back: every variant an object with a name, a positive share, and a whole version id
    -- or "baseline": true; the shares sum to 1
    IF jsonb_typeof(new.variants) IS DISTINCT FROM 'array' OR jsonb_array_length(new.variants) < 2 THEN
        RAISE EXCEPTION 'variants must be a JSON array of at least two variants' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR v IN SELECT * FROM jsonb_array_elements(new.variants) LOOP
        IF jsonb_typeof(v) <> 'object' OR jsonb_typeof(v -> 'name') IS DISTINCT FROM 'string' OR length(v ->> 'name') NOT BETWEEN 1 AND 63
           OR jsonb_typeof(v -> 'share') IS DISTINCT FROM 'number' OR NOT (v ->> 'share')::numeric > 0 THEN
            RAISE EXCEPTION 'each variant needs a name (1 to 63 characters) and a positive share, got %', v
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v ? 'version' AND (jsonb_typeof(v -> 'version') <> 'number' OR (v ->> 'version')::numeric <> trunc((v ->> 'version')::numeric)
                              OR (v ->> 'version')::numeric NOT BETWEEN 1 AND 9007199254740991) THEN
            RAISE EXCEPTION 'variant %: version must be a version id (a positive integer), got %', quote_literal(v ->> 'name'), v -> 'version'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF NOT (v ? 'version') AND jsonb_typeof(v -> 'baseline') IS DISTINCT FROM 'boolean' THEN
            RAISE EXCEPTION 'variant % needs a model version or "baseline": true', quote_literal(v ->> 'name')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    IF abs((SELECT sum((x ->> 'share')::numeric) FROM jsonb_array_elements(new.variants) x) - 1) > 1e-9 THEN
        RAISE EXCEPTION 'variant shares must sum to 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(DISTINCT mv.model ORDER BY mv.model) INTO models
      FROM jsonb_array_elements(new.variants) x JOIN recsys.model_versions mv ON mv.version_id = (x ->> 'version')::bigint;
    IF cardinality(models) > 1 THEN
        RAISE EXCEPTION 'an experiment compares versions of one model, got versions of %', array_to_string(models, ', ')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Run one experiment per model; a variant may also be "baseline": true.';
    END IF;
    RETURN new;
END
$$;
COMMENT ON FUNCTION recsys.experiments_check() IS 'trigger: an experiment''s variants are what serving reads back (names, positive shares summing to 1, whole version ids or baseline) and its versions belong to one model';
CREATE TRIGGER experiments_check BEFORE INSERT OR UPDATE OF variants ON recsys.experiments
    FOR EACH ROW EXECUTE FUNCTION recsys.experiments_check();

CREATE OR REPLACE FUNCTION recsys.log_feedback(user_id text, target text, event text, value numeric DEFAULT NULL,
                                               target_kind text DEFAULT 'bundle') RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    IF user_id IS NULL OR target IS NULL THEN
        RAISE EXCEPTION 'user_id and target must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF event IS NULL OR event NOT IN ('click', 'add_to_cart', 'purchase', 'dismiss') THEN
        RAISE EXCEPTION 'unknown feedback event %', quote_literal(coalesce(event, 'NULL'))
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use click, add_to_cart, purchase or dismiss.';
    END IF;
    IF target_kind IS NULL OR target_kind NOT IN ('bundle', 'item') THEN
        RAISE EXCEPTION 'target_kind must be bundle or item' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- numeric has NaN and infinities; NaN sorts above every number, so both fail the upper bound
    IF value IS NOT NULL AND NOT (value >= 0 AND value < 'Infinity'::numeric) THEN
        RAISE EXCEPTION 'value must be a finite, non-negative amount, got %', value USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO recsys.feedback (user_id, target, target_kind, event, value)
    VALUES (log_feedback.user_id, log_feedback.target, log_feedback.target_kind, log_feedback.event, log_feedback.value)
    RETURNING feedback_id INTO id;
    RETURN id;
END
$$;
ALTER TABLE recsys.feedback ADD CONSTRAINT feedback_value_finite CHECK (value IS NULL OR (value >= 0 AND value < 'Infinity'::numeric));

-- Readers and private histories: the options that put a customer's own purchases back into an answer are for
-- the application that serves the logged-in customer (recsys_app) and for recsys_admin.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'recsys_app') THEN
        CREATE ROLE recsys_app NOLOGIN;
    END IF;
END $$;
GRANT recsys_reader TO recsys_app;

CREATE FUNCTION recsys.may_see_history() RETURNS boolean
    AS 'MODULE_PATHNAME', 'may_see_history'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.may_see_history() IS 'whether the session''s role (as SET ROLE left it, also inside SECURITY DEFINER functions) may use options that reveal a customer''s own purchases: recsys_app, recsys_admin or a superuser';

CREATE OR REPLACE FUNCTION recsys.check_item_options(k integer, options jsonb, known text[]) RETURNS jsonb
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key text;
BEGIN
    IF k IS NULL OR k < 1 OR k > 10000 THEN
        RAISE EXCEPTION 'k must be from 1 to 10000, got %', coalesce(k::text, 'NULL')
            USING ERRCODE = CASE WHEN k > 10000 THEN 'program_limit_exceeded' ELSE 'invalid_parameter_value' END;
    END IF;
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass ''{}'' for the defaults.';
    END IF;
    FOR key IN SELECT jsonb_object_keys(options) LOOP
        IF NOT key = ANY (known) THEN
            RAISE EXCEPTION 'unknown option %', quote_literal(key) USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Known options: ' || array_to_string(known, ', ') || '.';
        END IF;
    END LOOP;
    -- types and ranges as declared for the item options (recsys.option_specs, family items)
    PERFORM recsys.check_options(options, 'items');
    IF options ? 'exclude_bought' AND NOT (options ->> 'exclude_bought')::boolean AND NOT recsys.may_see_history() THEN
        RAISE EXCEPTION 'option exclude_bought false needs the role recsys_app or recsys_admin'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'It returns a customer''s own purchases, so comparing answers would reveal the customer''s history.',
                  HINT = 'Serve with the defaults, or grant recsys_app to the application that serves the logged-in customer.';
    END IF;
    RETURN '{"exclude_bought": true, "in_stock": false}'::jsonb || options;
END
$$;

-- complete_bundle: a cart is bounded like the serving options' item lists
CREATE OR REPLACE FUNCTION complete_bundle(items text[], k integer DEFAULT 5, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, item_id text, score real, reason text)
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    opts jsonb := recsys.check_item_options(k, options, '{in_stock,max_price}');
    cart integer[];
BEGIN
    IF cardinality(items) = 0 THEN
        RAISE EXCEPTION 'items must not be empty' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass the ids of the items in the cart.';
    END IF;
    -- a cart is compared with every candidate: bounded like the serving options' item lists
    IF cardinality(items) > 1000 THEN
        RAISE EXCEPTION 'items holds at most 1000 ids, got %', cardinality(items) USING ERRCODE = 'program_limit_exceeded';
    END IF;
    SELECT array_agg(m.idx) INTO cart FROM recsys.id_map m WHERE m.space = 'item' AND m.ext_id = ANY (items);
    cart := coalesce(cart, '{}');
    RETURN QUERY
    WITH mined AS (
        -- mined bundles that hold part of the cart: their other items complete the set
        SELECT x AS idx, 1 AS tier, max(b.lift * cardinality(ARRAY(SELECT unnest(b.items) INTERSECT SELECT unnest(cart))))::real AS s,
               (array_agg(format('completes a set bought together by %s (lift %s)',
                                 recsys.n_customers(b.customers), round(b.lift::numeric, 1)) ORDER BY b.lift DESC, b.bundle_key))[1] AS why
          FROM recsys.mined_bundles b, unnest(b.items) x
         WHERE b.items && cart AND NOT x = ANY (cart)
         GROUP BY x
    ), together AS (
        SELECT p.item_b AS idx, 2 AS tier, sum(p.confidence * ln(1 + p.lift))::real AS s,
               format('bought together with %s in %s (lift %s)',
                      recsys.item_label((array_agg(p.item_a ORDER BY p.confidence DESC))[1]),
                      max(p.together) || CASE WHEN max(p.together) = 1 THEN ' order' ELSE ' orders' END,
                      round(max(p.lift)::numeric, 1)) AS why
          FROM recsys.item_pair_stats p
         WHERE p.item_a = ANY (cart) AND NOT p.item_b = ANY (cart)
           AND p.item_b NOT IN (SELECT mined.idx FROM mined)
         GROUP BY p.item_b
    ), popular AS (
        SELECT f.item_idx AS idx, 3 AS tier, ln(1 + f.buyers)::real AS s,
               format('popular: %s buyers', f.buyers) AS why
          FROM recsys.item_features f
         WHERE NOT f.item_idx = ANY (cart)
           AND f.item_idx NOT IN (SELECT mined.idx FROM mined) AND f.item_idx NOT IN (SELECT together.idx FROM together)
    ), ranked AS (
        SELECT * FROM mined UNION ALL SELECT * FROM together UNION ALL SELECT * FROM popular
    )
    SELECT (row_number() OVER (ORDER BY r.tier, r.s DESC, r.idx))::int, m.ext_id, r.s, r.why
      FROM ranked r JOIN recsys.id_map m ON m.space = 'item' AND m.idx = r.idx
     WHERE recsys.item_passes(r.idx, opts)
     ORDER BY r.tier, r.s DESC, r.idx LIMIT k;
END
$$;


-- Serving with its provenance as columns (the version, NULL for the baseline ranker; the experiment and variant),
-- where the impressions are logged from: per request, with no state left in the backend between calls
CREATE FUNCTION recsys.recommend_bundles_traced(user_id text, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, bundle_id text, items text[], score real, reason text,
               version_id bigint, experiment text, variant text)
    AS 'MODULE_PATHNAME', 'recommend_bundles'
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    SECURITY DEFINER;
COMMENT ON FUNCTION recsys.recommend_bundles_traced(text, integer, jsonb) IS 'recommend_bundles with what served each row: the model version (NULL: the co-occurrence baseline), the running experiment and the variant (NULL when none)';

DROP FUNCTION recsys.recommend_bundles_logged(text, integer, jsonb);
CREATE FUNCTION recsys.recommend_bundles_logged(user_id text, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, bundle_id text, items text[], score real, reason text,
               version_id bigint, experiment text, variant text)
    LANGUAGE plpgsql VOLATILE STRICT
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    shown text[] := '{}';
BEGIN
    -- recommend_bundles is STABLE (it cannot write): serve once, then log what was shown, traced by the very
    -- rows that were returned (a second call could meet a newly activated version)
    FOR r IN SELECT * FROM recsys.recommend_bundles_traced(user_id, k, options) LOOP
        rank := r.rank; bundle_id := r.bundle_id; items := r.items; score := r.score; reason := r.reason;
        version_id := r.version_id; experiment := r.experiment; variant := r.variant;
        shown := shown || r.bundle_id;
        RETURN NEXT;
    END LOOP;
    PERFORM recsys.log_impressions(user_id, shown, version_id, experiment, variant);
END
$$;
COMMENT ON FUNCTION recsys.recommend_bundles_logged(text, integer, jsonb) IS 'recommend_bundles_traced that also logs its impressions (ids in rank order, the model version that served them, the experiment and variant) into recsys.impressions; VOLATILE, since it writes';

-- search_path: every function that resolves names at run time pins it. SQL and PL/pgSQL functions carry a SET
-- clause (recsys.train, a procedure that commits, pins it per transaction); these C functions run queries;
-- recommend_bundles pins it around its own loads (a SET clause would cost every cached request a GUC save
-- and restore); the other C functions run no query, so they resolve no names.
ALTER FUNCTION recsys.item_pairs(integer, integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recsys.ease_fit(double precision) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recsys.user_sequences(integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recsys.item_profiles(integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recsys.user_profiles(integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recsys.bundle_fit(jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recsys.bundle_samples(bytea, bigint, integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recsys.bundle_features(bytea, integer, integer[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recsys.fit_partial(jsonb) SET search_path = pg_catalog, pg_temp;

-- No user code on recsys tables: nobody may add a trigger, rule or policy to them (a trigger on a table that a
-- superuser's recsys.prepare() writes would run as that superuser). The extension's own triggers call its own
-- functions and pass.
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
CREATE EVENT TRIGGER recsys_guard_tables ON ddl_command_end
    WHEN TAG IN ('CREATE TRIGGER', 'CREATE RULE', 'CREATE POLICY', 'ALTER POLICY')
    EXECUTE FUNCTION recsys.guard_tables();

-- Privileges, for every object this script and the ones before it created: PUBLIC runs nothing of recsys;
-- recsys_admin runs everything but owns nothing, and may not add triggers (TRIGGER), empty tables behind the
-- extension's back (TRUNCATE) or tie its own tables to them (REFERENCES); recsys_reader serves and reads the BI
-- views, and invalidates nothing. A later upgrade script ends with this block again.
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
                          @extschema@.similar_items(text, integer), @extschema@.similar_items(bigint, integer),
                          @extschema@.recommend_bundles_batch(bigint[], integer, jsonb),
                          @extschema@.recommend_bundles_batch(text[], integer, jsonb), recsys.check_batch(integer, integer),
                          recsys.experiment_report(text), recsys.version(), recsys.may_see_history(), recsys.ext_bigint(text),
                          recsys.recommend_bundles_traced(text, integer, jsonb),
                          recsys.rank_metrics(text[], text[], integer, bigint), recsys.gini(double precision[]),
                          recsys.normal_cdf(double precision)
   TO recsys_reader;
-- the application serving the logged-in customer logs what it showed and what the customer did, without reading
-- the logs or the raw events: the logging functions run as their owner, for recsys_app (and recsys_admin)
ALTER FUNCTION recsys.log_impressions(text, text[], bigint, text, text, text) SECURITY DEFINER;
ALTER FUNCTION recsys.log_feedback(text, text, text, numeric, text) SECURITY DEFINER;
GRANT EXECUTE ON FUNCTION recsys.recommend_bundles_logged(text, integer, jsonb),
                          recsys.log_impressions(text, text[], bigint, text, text, text),
                          recsys.log_feedback(text, text, text, numeric, text)
   TO recsys_app;
