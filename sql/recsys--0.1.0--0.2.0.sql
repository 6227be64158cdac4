/* recsys upgrade script 0.1.0 -> 0.2.0: only the delta (released scripts never change; see sql/RELEASED) */
\echo Use "ALTER EXTENSION recsys UPDATE TO '0.2.0'" to load this file. \quit

------------------------------------------------------------------------------
-- recsys.train: a failed CALL no longer leaves the model locked for the rest of its session
------------------------------------------------------------------------------

-- Session advisory locks count: a CALL that failed in a session (a cancel, an error) left its hold, and a
-- single unlock at the end of a later one would keep the lock for as long as the session lives.
CREATE FUNCTION recsys.advisory_unlock_all(lock_key bigint) RETURNS integer
    LANGUAGE plpgsql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := 0;
BEGIN
    -- pg_locks shows a bigint key as classid (high half) and objid (low half), objsubid 1, while any hold remains
    WHILE EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                   WHERE l.locktype = 'advisory' AND l.pid = pg_catalog.pg_backend_pid() AND l.objsubid = 1
                     AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
                     AND l.classid::bigint = (lock_key >> 32) & 4294967295 AND l.objid::bigint = lock_key & 4294967295) LOOP
        PERFORM pg_catalog.pg_advisory_unlock(lock_key);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.advisory_unlock_all(bigint) IS 'releases every hold this session has on a session advisory lock (they count), quietly; returns how many; the trainings end with it';

CREATE OR REPLACE PROCEDURE recsys.train(model text DEFAULT 'default', options jsonb DEFAULT '{}')
    LANGUAGE plpgsql
-- no SET clause: a procedure with one cannot COMMIT, and committing per epoch is the point; names are qualified
AS $$
DECLARE
    o jsonb := recsys.train_options(options);
    lock_key bigint := pg_catalog.hashtextextended('recsys.train:' || coalesce(model, ''), 0);
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
    nsamples bigint;
    vocab integer;
    new_data_to timestamptz;
    activated boolean;
BEGIN
    IF model IS NULL OR model !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid model name %', pg_catalog.quote_literal(coalesce(model, 'NULL'))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- one training per model at a time, across sessions (held over the per-epoch commits)
    IF NOT pg_catalog.pg_try_advisory_lock(lock_key) THEN
        RAISE EXCEPTION 'model % is being trained by another session', pg_catalog.quote_literal(model)
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Wait for it to finish; recsys.training_runs shows its progress.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM recsys.models m WHERE m.name = train.model) THEN
        PERFORM recsys.create_model(model, 'bundle', o, 'bundle ranker trained by recsys.train');
    ELSIF (SELECT m.kind FROM recsys.models m WHERE m.name = train.model) <> 'bundle' THEN
        RAISE EXCEPTION 'model % is not a bundle model', pg_catalog.quote_literal(model)
            USING ERRCODE = 'wrong_object_type', HINT = 'recsys.train trains bundle models; pick another name.';
    END IF;
    active := recsys.active_version(model);
    SELECT max(e.ts) INTO new_data_to FROM recsys.events_clean e;
    IF (o ->> 'features')::boolean THEN
        PERFORM recsys.refresh_features();
        COMMIT;
    END IF;

    -- resume an interrupted training of this model, unless told not to
    SELECT mv.version_id INTO v FROM recsys.model_versions mv
     WHERE mv.model = train.model AND mv.status = 'training' ORDER BY mv.version_id DESC LIMIT 1;
    IF v IS NOT NULL AND NOT (o ->> 'resume')::boolean THEN
        UPDATE recsys.model_versions mv SET status = 'failed', note = 'abandoned: a new training started with resume false'
         WHERE mv.version_id = v;
        v := NULL;
    END IF;
    IF v IS NOT NULL AND EXISTS (SELECT 1 FROM recsys.train_samples s WHERE s.version_id = v) THEN
        SELECT r.epoch + 1, r.checkpoint INTO start_epoch, scorer FROM recsys.training_runs r
         WHERE r.version_id = v AND r.checkpoint IS NOT NULL ORDER BY r.epoch DESC LIMIT 1;
        start_epoch := coalesce(start_epoch, 1);
        SELECT r.epoch, r.checkpoint, (r.metrics ->> 'valid_ndcg20')::float8, (r.metrics ->> 'valid_recall20')::float8
          INTO best_epoch, best, best_ndcg, best_recall
          FROM recsys.training_runs r WHERE r.version_id = v AND r.checkpoint IS NOT NULL
         ORDER BY (r.metrics ->> 'valid_ndcg20')::float8 DESC, r.epoch LIMIT 1;
        best_epoch := coalesce(best_epoch, 0);
        best_ndcg := coalesce(best_ndcg, -1);
        RAISE NOTICE 'recsys.train: resuming version % of % at epoch %', v, model, start_epoch;
    ELSE
        IF v IS NULL THEN
            v := recsys.add_version(model, NULL, 'training', '{}', active, NULL, new_data_to);
        END IF;
        UPDATE recsys.model_versions mv SET note = pg_catalog.format('training with %s', o) WHERE mv.version_id = v;
        COMMIT;
        -- the scorer learns to rerank the fit's candidates for one held-out bundle per customer
        t0 := pg_catalog.clock_timestamp();
        -- feedback on what was shown since the active version went live
        nsamples := recsys.train_samples_for(v, o, coalesce((SELECT mv.activated_at FROM recsys.model_versions mv
                                                              WHERE mv.version_id = active), '-infinity'));
        SELECT * INTO val FROM recsys.train_validate(v, NULL);
        INSERT INTO recsys.training_runs (version_id, epoch, loss, metrics, samples, samples_per_s, elapsed_ms)
        VALUES (v, 0, NULL, pg_catalog.jsonb_build_object('stage', 'fit', 'valid_recall20', val.recall20,
                    'valid_ndcg20', val.ndcg20, 'valid_users', val.users,
                    'feedback_samples', (SELECT count(*) FROM recsys.train_samples s WHERE s.version_id = v) - nsamples),
                nsamples, NULL, 1000 * extract(epoch FROM pg_catalog.clock_timestamp() - t0));
        COMMIT;
        IF (o ->> 'incremental')::boolean AND active IS NOT NULL THEN
            scorer := recsys.bundle_part((SELECT mv.weights FROM recsys.model_versions mv WHERE mv.version_id = active), 'scorer');
        END IF;
        IF scorer IS NULL THEN
            scorer := recsys.model_init('mlp', pg_catalog.jsonb_build_object(
                          'layers', pg_catalog.jsonb_build_array(5, o -> 'hidden', 1), 'output', 'linear'),
                          (o ->> 'seed')::bigint);
        END IF;
        best := scorer;
    END IF;

    -- scorer epochs: one committed row (and checkpoint) each, early stop on validation NDCG@20
    FOR epoch IN start_epoch .. (o ->> 'max_epochs')::int LOOP
        t0 := pg_catalog.clock_timestamp();
        scorer := recsys.train_scorer_epoch(v, scorer, epoch, o);
        SELECT * INTO val FROM recsys.train_validate(v, scorer);
        nsamples := (recsys.model_info(scorer) #>> '{config,train,samples}')::bigint;
        INSERT INTO recsys.training_runs (version_id, epoch, loss, metrics, samples, samples_per_s, elapsed_ms, checkpoint)
        VALUES (v, epoch, (recsys.model_info(scorer) #>> '{config,train,mean_loss}')::float8,
                pg_catalog.jsonb_build_object('stage', 'scorer', 'valid_recall20', val.recall20,
                    'valid_ndcg20', val.ndcg20, 'valid_users', val.users),
                nsamples, nsamples / greatest(extract(epoch FROM pg_catalog.clock_timestamp() - t0), 1e-6),
                1000 * extract(epoch FROM pg_catalog.clock_timestamp() - t0), scorer);
        IF val.ndcg20 > best_ndcg THEN
            best_ndcg := val.ndcg20;
            best_recall := val.recall20;
            best := scorer;
            best_epoch := epoch;
        END IF;
        COMMIT;
        EXIT WHEN epoch - best_epoch >= (o ->> 'patience')::int;
    END LOOP;

    -- the GRU encoder for customers who bring a session but no history
    IF (o ->> 'gru_epochs')::int > 0 THEN
        SELECT max(m.idx) + 1 INTO vocab FROM recsys.id_map m WHERE m.space = 'item';
        IF (o ->> 'incremental')::boolean AND active IS NOT NULL THEN
            encoder := recsys.bundle_part((SELECT mv.weights FROM recsys.model_versions mv WHERE mv.version_id = active), 'encoder');
            IF encoder IS NOT NULL AND (recsys.model_info(encoder) #>> '{config,vocab}')::int <> vocab THEN
                encoder := NULL;    -- new items since: start over
            END IF;
        END IF;
        IF encoder IS NULL AND vocab IS NOT NULL THEN
            encoder := recsys.model_init('gru', pg_catalog.jsonb_build_object('vocab', vocab,
                           'embed', o -> 'gru_embed', 'hidden', o -> 'gru_hidden'), (o ->> 'seed')::bigint);
        END IF;
        FOR epoch IN 1 .. CASE WHEN encoder IS NULL THEN 0 ELSE (o ->> 'gru_epochs')::int END LOOP
            t0 := pg_catalog.clock_timestamp();
            encoder := (
                WITH ordered AS (
                    SELECT sq.user_idx, sq.items FROM recsys.user_sequences(50) sq
                     -- incremental: only customers with events since the active version's data
                     WHERE NOT (o ->> 'incremental')::boolean OR active IS NULL
                        OR sq.user_idx IN (SELECT e2.user_idx FROM recsys.events_clean e2
                                            WHERE e2.ts > (SELECT mv.data_to FROM recsys.model_versions mv WHERE mv.version_id = active)))
                SELECT recsys.rnn_train(encoder, sq.prefix, sq.target,
                                        pg_catalog.jsonb_build_object('lr', 0.01, 'negatives', 50, 'seed', (o ->> 'seed')::bigint + epoch))
                  FROM (SELECT od.items[greatest(1, t - 20):t - 1] AS prefix, od.items[t] AS target
                          FROM ordered od, pg_catalog.generate_subscripts(od.items, 1) AS t WHERE t > 1
                         ORDER BY pg_catalog.hashint8(od.user_idx::bigint * 1000 + t + epoch)) sq);
            nsamples := (recsys.model_info(encoder) #>> '{config,train,samples}')::bigint;
            INSERT INTO recsys.training_runs (version_id, epoch, loss, metrics, samples, samples_per_s, elapsed_ms)
            VALUES (v, 1000 + epoch, (recsys.model_info(encoder) #>> '{config,train,mean_loss}')::float8,
                    '{"stage": "encoder"}', nsamples,
                    nsamples / greatest(extract(epoch FROM pg_catalog.clock_timestamp() - t0), 1e-6),
                    1000 * extract(epoch FROM pg_catalog.clock_timestamp() - t0));
            COMMIT;
        END LOOP;
    END IF;

    -- the served model: the fit on all data, the best scorer, the encoder
    t0 := pg_catalog.clock_timestamp();
    new_weights := recsys.train_final_weights(o, best, encoder);
    UPDATE recsys.model_versions mv
       SET weights = new_weights, status = 'candidate', data_to = new_data_to,
           metrics = pg_catalog.jsonb_build_object('valid_recall20', best_recall, 'valid_ndcg20', best_ndcg,
                         'best_epoch', best_epoch,
                         'fit_valid_ndcg20', (SELECT r.metrics -> 'valid_ndcg20' FROM recsys.training_runs r
                                               WHERE r.version_id = v AND r.epoch = 0),
                         'train_seconds', extract(epoch FROM pg_catalog.clock_timestamp() - started),
                         'options', o)
     WHERE mv.version_id = v;
    DELETE FROM recsys.train_samples s WHERE s.version_id = v;
    COMMIT;

    -- activate only if not worse than the active version on validation (force overrides)
    active := recsys.active_version(model);
    SELECT (mv.metrics ->> 'valid_ndcg20')::float8 INTO active_ndcg FROM recsys.model_versions mv WHERE mv.version_id = active;
    activated := active IS NULL OR (o ->> 'force')::boolean OR active_ndcg IS NULL OR best_ndcg >= active_ndcg;
    IF activated THEN
        PERFORM recsys.activate_version(v);
        UPDATE recsys.models m SET needs_retrain = false WHERE m.name = train.model;
    ELSE
        UPDATE recsys.model_versions mv
           SET note = pg_catalog.format('not activated: validation NDCG@20 %s is below the active version''s %s',
                                        round(best_ndcg::numeric, 4), round(active_ndcg::numeric, 4))
         WHERE mv.version_id = v;
    END IF;
    COMMIT;
    PERFORM recsys.advisory_unlock_all(lock_key);
    RAISE NOTICE 'recsys.train: version % of % %: validation Recall@20 %, NDCG@20 % (best epoch %), % s',
        v, model, CASE WHEN activated THEN 'activated' ELSE 'kept as candidate' END,
        round(best_recall::numeric, 4), round(best_ndcg::numeric, 4), best_epoch,
        round(extract(epoch FROM pg_catalog.clock_timestamp() - started)::numeric, 1);
END
$$;

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

CREATE FUNCTION recommend_bundles_batch(user_ids bigint[], k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (user_id bigint, rank integer, bundle_id bigint, items bigint[], score real, reason text)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, r.rank, r.bundle_id, r.items, r.score, r.reason
      FROM unnest(user_ids) WITH ORDINALITY AS u(id, n)
     CROSS JOIN LATERAL @extschema@.recommend_bundles(u.id, k, options) r
     WHERE u.id IS NOT NULL
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
     WHERE u.id IS NOT NULL
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
