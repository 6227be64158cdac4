-- recsys SQL source: scaleout -- the pieces every node has for data-parallel training and publication (the Makefile assembles sql/src/*.sql into the install script)

------------------------------------------------------------------------------
-- Scale-out: data-parallel fitting and training over shards, publication of a
-- version to every shard, batch serving (PL/Proxy SPLIT, Citus). The coordinator's
-- side is scaleout/coordinator.sql; these are the pieces every node has.
------------------------------------------------------------------------------

--@begin recsys.fit_partial(jsonb)
CREATE FUNCTION recsys.fit_partial(options jsonb DEFAULT '{}') RETURNS bytea
    AS 'MODULE_PATHNAME', 'fit_partial'
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.fit_partial(jsonb) IS 'this node''s share of a data-parallel fit: the Gram matrix (packed upper triangle) and bundle taker counts over its own customers, with the catalogue''s item view; options as recsys.bundle_fit (beta, view_norm and holdout_seed shape it; lambda, content, keep_b, keep_m are for the merge); recsys.fit_merge adds the shares up';
ALTER FUNCTION recsys.fit_partial(jsonb) SET search_path = pg_catalog, pg_temp;
--@end

--@begin recsys.fit_merge(bytea[], jsonb)
CREATE FUNCTION recsys.fit_merge(partials bytea[], options jsonb DEFAULT '{}') RETURNS bytea
    AS 'MODULE_PATHNAME', 'fit_merge'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.fit_merge(bytea[], jsonb) IS 'sums the shares from recsys.fit_partial (every shard''s customers) and finishes the fit as recsys.bundle_fit does on one node (adding the catalogue''s own rows, content, once): the same weights, up to float summation order; NULL elements are skipped; shares of another catalogue or other beta / view_norm / holdout_seed are an error; options lambda (500), content (3), keep_b (256), keep_m (64)';
--@end

-- the training aggregate's raw state, as a shard returns it (no final function)
--@begin recsys.mlp_train_partial(bytea, real[], real, jsonb)
CREATE AGGREGATE recsys.mlp_train_partial(weights bytea, x real[], y real, options jsonb) (
    SFUNC = recsys.mlp_train_step,
    STYPE = bytea,
    COMBINEFUNC = recsys.train_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE recsys.mlp_train_partial(bytea, real[], real, jsonb) IS 'recsys.mlp_train without its final function: the state (weights, optimiser moments, samples seen) of an epoch over this node''s rows, for recsys.train_merge on the coordinator';
--@end

--@begin recsys.rnn_train_partial(bytea, integer[], integer, jsonb)
CREATE AGGREGATE recsys.rnn_train_partial(weights bytea, items integer[], target integer, options jsonb) (
    SFUNC = recsys.rnn_train_step,
    STYPE = bytea,
    COMBINEFUNC = recsys.train_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE recsys.rnn_train_partial(bytea, integer[], integer, jsonb) IS 'recsys.rnn_train without its final function: the state of an epoch of the sequence encoder over this node''s sequences, for recsys.train_merge on the coordinator';
--@end

-- the coordinator's half: COMBINEFUNC over the shards' states, then the final function
--@begin recsys.train_merge(bytea)
CREATE AGGREGATE recsys.train_merge(state bytea) (
    SFUNC = recsys.train_combine,
    STYPE = bytea,
    COMBINEFUNC = recsys.train_combine,
    FINALFUNC = recsys.train_final,
    FINALFUNC_MODIFY = READ_WRITE,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE recsys.train_merge(bytea) IS 'merges training states from recsys.mlp_train_partial (one per shard) with the training aggregates'' combine function (weighted model averaging) and finishes them into weights';
--@end

--@begin recsys.shard_samples
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
-- every recsys table is dumped; this one is empty between trainings
SELECT pg_catalog.pg_extension_config_dump('recsys.shard_samples', '');
--@end

--@begin recsys.shard_samples_for(text, bytea, bigint, integer)
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
--@end

--@begin recsys.shard_scorer_epoch(text, bytea, integer, double precision)
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
--@end

--@begin recsys.shard_encoder_epoch(bytea, integer, bigint)
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
--@end

--@begin recsys.shard_validate(text, bytea)
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
--@end

--@begin recsys.shard_done(text)
CREATE FUNCTION recsys.shard_done(job text) RETURNS bigint
    LANGUAGE sql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH d AS (DELETE FROM recsys.shard_samples s WHERE s.job = shard_done.job RETURNING 1) SELECT count(*) FROM d
$$;
COMMENT ON FUNCTION recsys.shard_done(text) IS 'drops a data-parallel training job''s samples from this shard; returns how many';
--@end

--@begin recsys.publish_version(text, bigint, bytea, text, boolean, jsonb)
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
--@end
