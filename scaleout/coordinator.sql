-- recsys on PL/Proxy: the coordinator's functions. Run in the coordinator's database after
--   CREATE SCHEMA recsys_local; CREATE EXTENSION recsys SCHEMA recsys_local;   -- model store; serving names stay free
--   CREATE EXTENSION plproxy;
--   CREATE SERVER recsys_shards FOREIGN DATA WRAPPER plproxy OPTIONS (p0 'dbname=... host=... port=...', p1 ...);
--   CREATE USER MAPPING FOR PUBLIC SERVER recsys_shards OPTIONS (user '...');
-- (scripts/shards.sh does all of it on loopback). Shards number a power of two; a user lives on shard
-- hashtext(user_id::text) & (shards - 1), which is where PL/Proxy's RUN ON sends each call. Every shard has recsys
-- in schema public, the whole catalogue (items, bundles) and its own customers' events; versions are numbered and
-- committed here, then published to every shard.

-- Serving: the same names, arguments and columns as on a single node, routed to the user's shard.
CREATE FUNCTION public.recommend_bundles(user_id bigint, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, bundle_id bigint, items bigint[], score real, reason text)
    LANGUAGE plproxy AS $$
    CLUSTER 'recsys_shards';
    RUN ON hashtext(user_id::text);
$$;
CREATE FUNCTION public.recommend_bundles(user_id text, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, bundle_id text, items text[], score real, reason text)
    LANGUAGE plproxy AS $$
    CLUSTER 'recsys_shards';
    RUN ON hashtext(user_id);
$$;
-- many users in one call per shard: SPLIT sends each shard the elements it owns
CREATE FUNCTION public.recommend_bundles_batch(user_ids bigint[], k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (user_id bigint, rank integer, bundle_id bigint, items bigint[], score real, reason text)
    LANGUAGE plproxy AS $$
    CLUSTER 'recsys_shards';
    SPLIT user_ids;
    RUN ON hashtext(user_ids::text);
$$;
COMMENT ON FUNCTION public.recommend_bundles(bigint, integer, jsonb) IS 'PL/Proxy: recommend_bundles on the shard that owns the user';
COMMENT ON FUNCTION public.recommend_bundles(text, integer, jsonb) IS 'PL/Proxy: recommend_bundles on the shard that owns the user';
COMMENT ON FUNCTION public.recommend_bundles_batch(bigint[], integer, jsonb) IS 'PL/Proxy: recommend_bundles_batch, one call per shard with the users it owns';

CREATE SCHEMA recsys_proxy;
COMMENT ON SCHEMA recsys_proxy IS 'the coordinator''s PL/Proxy calls to the recsys shards and the data-parallel training';

-- which shard serves a user (database:port), for checks
CREATE FUNCTION recsys_proxy.shard_of(user_id bigint) RETURNS text
    LANGUAGE plproxy AS $$
    CLUSTER 'recsys_shards';
    RUN ON hashtext(user_id::text);
    SELECT pg_catalog.current_database()::text || ':' || pg_catalog.current_setting('port');
$$;

-- the data-parallel steps, each on every shard at once
CREATE FUNCTION recsys_proxy.fit_partial(options jsonb) RETURNS SETOF bytea
    LANGUAGE plproxy AS $$
    CLUSTER 'recsys_shards';
    RUN ON ALL;
    SELECT recsys.fit_partial(options);
$$;
CREATE FUNCTION recsys_proxy.samples_for(job text, fit bytea, holdout_seed bigint, candidates integer) RETURNS SETOF bigint
    LANGUAGE plproxy AS $$
    CLUSTER 'recsys_shards';
    RUN ON ALL;
    SELECT recsys.shard_samples_for(job, fit, holdout_seed, candidates);
$$;
CREATE FUNCTION recsys_proxy.scorer_epoch(job text, scorer bytea, epoch integer, lr double precision) RETURNS SETOF bytea
    LANGUAGE plproxy AS $$
    CLUSTER 'recsys_shards';
    RUN ON ALL;
    SELECT recsys.shard_scorer_epoch(job, scorer, epoch, lr);
$$;
CREATE FUNCTION recsys_proxy.encoder_epoch(encoder bytea, epoch integer, seed bigint) RETURNS SETOF bytea
    LANGUAGE plproxy AS $$
    CLUSTER 'recsys_shards';
    RUN ON ALL;
    SELECT recsys.shard_encoder_epoch(encoder, epoch, seed);
$$;
CREATE FUNCTION recsys_proxy.validate(job text, scorer bytea)
RETURNS TABLE (hits double precision, ndcg double precision, users bigint)
    LANGUAGE plproxy AS $$
    CLUSTER 'recsys_shards';
    RUN ON ALL;
    SELECT hits, ndcg, users FROM recsys.shard_validate(job, scorer);
$$;
CREATE FUNCTION recsys_proxy.done(job text) RETURNS SETOF bigint
    LANGUAGE plproxy AS $$
    CLUSTER 'recsys_shards';
    RUN ON ALL;
    SELECT recsys.shard_done(job);
$$;
CREATE FUNCTION recsys_proxy.publish_version(model text, version_id bigint, weights bytea, checksum text,
                                             activate boolean, metrics jsonb)
RETURNS TABLE (shard text, result text)
    LANGUAGE plproxy AS $$
    CLUSTER 'recsys_shards';
    RUN ON ALL;
    SELECT pg_catalog.current_database()::text || ':' || pg_catalog.current_setting('port') AS shard,
           recsys.publish_version(model, version_id, weights, checksum, activate, metrics) AS result;
$$;
CREATE FUNCTION recsys_proxy.active_versions(model_name text)
RETURNS TABLE (shard text, version_id bigint, checksum text)
    LANGUAGE plproxy AS $$
    CLUSTER 'recsys_shards';
    RUN ON ALL;
    SELECT pg_catalog.current_database()::text || ':' || pg_catalog.current_setting('port') AS shard,
           (SELECT mv.version_id FROM recsys.model_versions mv WHERE mv.model = model_name AND mv.status = 'active') AS version_id,
           (SELECT md5(mv.weights) FROM recsys.model_versions mv WHERE mv.model = model_name AND mv.status = 'active') AS checksum;
$$;

-- Publish a committed version to every shard: stage it everywhere (checked by md5), and only when every shard
-- holds it, activate it everywhere and here. Idempotent: publishing again changes nothing.
CREATE FUNCTION recsys_proxy.publish(version_id bigint) RETURNS TABLE (shard text, result text)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v recsys.model_versions;
BEGIN
    SELECT * INTO v FROM recsys.model_versions mv WHERE mv.version_id = publish.version_id;
    IF NOT FOUND OR v.weights IS NULL OR v.status NOT IN ('candidate', 'active', 'retired') THEN
        RAISE EXCEPTION 'version % is not a committed version with weights', publish.version_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM 1 FROM recsys_proxy.publish_version(v.model, v.version_id, v.weights, md5(v.weights), false, v.metrics);
    RETURN QUERY SELECT p.shard, p.result
                   FROM recsys_proxy.publish_version(v.model, v.version_id, v.weights, md5(v.weights), true, v.metrics) p
                  ORDER BY 1;
    IF v.status <> 'active' THEN
        PERFORM recsys.activate_version(v.version_id);
    END IF;
END
$$;
COMMENT ON FUNCTION recsys_proxy.publish(bigint) IS 'stages a committed version on every shard (md5-checked), then activates it on every shard and here; idempotent';

-- One data-parallel training, as recsys.train does on one node, committing per epoch: the held-out fit merged
-- from every shard's share, scorer epochs trained on every shard from the same weights and merged by the
-- training aggregates' combine function, early stopping on validation over all shards, GRU epochs likewise
-- (gru_epochs), the final fit merged
-- again, the version committed here, then published. A shard that fails before publication leaves every
-- shard on the version it had.
CREATE PROCEDURE recsys_proxy.train(model text DEFAULT 'default', options jsonb DEFAULT '{}')
    LANGUAGE plpgsql
AS $$
DECLARE
    -- initialisers run before the path is pinned: function calls only, qualified, no operators
    o jsonb;
    job text;
    fo jsonb;
    fit bytea;
    scorer bytea;
    best bytea;
    best_epoch integer := 0;
    best_ndcg float8;
    best_recall float8;
    v bigint;
    active bigint;
    active_ndcg float8;
    nsamples bigint;
    new_weights bytea;
    encoder bytea;
    vocab integer;
    t0 timestamptz;
    r record;
BEGIN
    -- a procedure that commits may not carry a SET clause: the path is pinned per transaction, as in recsys.train
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    o := recsys.train_options(options);
    IF model IS NULL OR model !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid model name %', pg_catalog.quote_literal(coalesce(model, 'NULL'))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    job := model || ':' || txid_current()::text;
    active := recsys.active_version(model);
    -- one training per model at a time (the shards keep one job's samples per model); a failed CALL leaves a
    -- stale claim, never a lock held by an idle session
    PERFORM recsys.training_claim('recsys_proxy.train:' || model);
    IF NOT EXISTS (SELECT 1 FROM recsys.models m WHERE m.name = train.model) THEN
        PERFORM recsys.create_model(model, 'bundle', o, 'bundle ranker trained over the shards by recsys_proxy.train');
    END IF;
    v := recsys.add_version(model, NULL, 'training', '{}', active);
    UPDATE recsys.model_versions mv SET note = pg_catalog.format('data-parallel training with %s', o) WHERE mv.version_id = v;
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    fo := pg_catalog.jsonb_build_object('lambda', o -> 'lambda', 'beta', o -> 'beta', 'keep_b', o -> 'keep_b',
                                        'keep_m', o -> 'keep_m', 'holdout_seed', o -> 'seed');
    t0 := pg_catalog.clock_timestamp();
    fit := recsys.fit_merge(ARRAY(SELECT p FROM recsys_proxy.fit_partial(fo) p), fo);
    SELECT sum(n) INTO nsamples FROM recsys_proxy.samples_for(job, fit, (o ->> 'seed')::bigint, (o ->> 'candidates')::int) n;
    SELECT sum(x.hits) / greatest(sum(x.users), 1) AS recall20, sum(x.ndcg) / greatest(sum(x.users), 1) AS ndcg20, sum(x.users) AS users
      INTO r FROM recsys_proxy.validate(job, NULL) x;
    INSERT INTO recsys.training_runs (version_id, epoch, loss, metrics, samples, samples_per_s, elapsed_ms)
    VALUES (v, 0, NULL, pg_catalog.jsonb_build_object('stage', 'fit', 'valid_recall20', r.recall20, 'valid_ndcg20', r.ndcg20,
                'valid_users', r.users, 'data_parallel', true), nsamples, NULL,
            1000 * extract(epoch FROM pg_catalog.clock_timestamp() - t0));
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    scorer := recsys.model_init('mlp', pg_catalog.jsonb_build_object('layers', pg_catalog.jsonb_build_array(5, o -> 'hidden', 1),
                                                                    'output', 'linear'), (o ->> 'seed')::bigint);
    best := scorer;
    best_ndcg := -1;
    FOR epoch IN 1 .. (o ->> 'max_epochs')::int LOOP
        t0 := pg_catalog.clock_timestamp();
        scorer := (SELECT recsys.train_merge(s) FROM recsys_proxy.scorer_epoch(job, scorer, epoch, (o ->> 'lr')::float8) s);
        SELECT sum(x.hits) / greatest(sum(x.users), 1) AS recall20, sum(x.ndcg) / greatest(sum(x.users), 1) AS ndcg20, sum(x.users) AS users
          INTO r FROM recsys_proxy.validate(job, scorer) x;
        nsamples := (recsys.model_info(scorer) #>> '{config,train,samples}')::bigint;
        INSERT INTO recsys.training_runs (version_id, epoch, loss, metrics, samples, samples_per_s, elapsed_ms, checkpoint)
        VALUES (v, epoch, (recsys.model_info(scorer) #>> '{config,train,mean_loss}')::float8,
                pg_catalog.jsonb_build_object('stage', 'scorer', 'valid_recall20', r.recall20, 'valid_ndcg20', r.ndcg20,
                    'valid_users', r.users, 'data_parallel', true),
                nsamples, nsamples / greatest(extract(epoch FROM pg_catalog.clock_timestamp() - t0), 1e-6),
                1000 * extract(epoch FROM pg_catalog.clock_timestamp() - t0), scorer);
        IF r.ndcg20 > best_ndcg THEN
            best_ndcg := r.ndcg20; best_recall := r.recall20; best := scorer; best_epoch := epoch;
        END IF;
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        EXIT WHEN epoch - best_epoch >= (o ->> 'patience')::int;
    END LOOP;
    PERFORM recsys_proxy.done(job);
    -- the GRU encoder for visitors with a session but no history: epochs on every shard, states merged
    vocab := (recsys.model_info(fit) #>> '{config,fit,items}')::int;
    IF (o ->> 'gru_epochs')::int > 0 AND vocab > 0 THEN
        encoder := recsys.model_init('gru', pg_catalog.jsonb_build_object('vocab', vocab, 'embed', o -> 'gru_embed',
                                                                         'hidden', o -> 'gru_hidden'), (o ->> 'seed')::bigint);
        FOR epoch IN 1 .. (o ->> 'gru_epochs')::int LOOP
            t0 := pg_catalog.clock_timestamp();
            encoder := (SELECT recsys.train_merge(s) FROM recsys_proxy.encoder_epoch(encoder, epoch, (o ->> 'seed')::bigint) s);
            nsamples := (recsys.model_info(encoder) #>> '{config,train,samples}')::bigint;
            INSERT INTO recsys.training_runs (version_id, epoch, loss, metrics, samples, samples_per_s, elapsed_ms)
            VALUES (v, 1000 + epoch, (recsys.model_info(encoder) #>> '{config,train,mean_loss}')::float8,
                    '{"stage": "encoder", "data_parallel": true}', nsamples,
                    nsamples / greatest(extract(epoch FROM pg_catalog.clock_timestamp() - t0), 1e-6),
                    1000 * extract(epoch FROM pg_catalog.clock_timestamp() - t0));
            COMMIT;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        END LOOP;
    END IF;
    -- the servable fit on every customer of every shard
    fo := fo - 'holdout_seed';
    new_weights := recsys.bundle_attach(recsys.fit_merge(ARRAY(SELECT p FROM recsys_proxy.fit_partial(fo) p), fo),
                                    best, encoder, (o ->> 'candidates')::int);
    UPDATE recsys.model_versions mv
       SET weights = new_weights, status = 'candidate',
           metrics = pg_catalog.jsonb_build_object('valid_recall20', best_recall, 'valid_ndcg20', best_ndcg,
                                                   'best_epoch', best_epoch, 'data_parallel', true)
     WHERE mv.version_id = v;
    COMMIT;     -- committed here first: PL/Proxy has no distributed transactions
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    active_ndcg := (SELECT (mv.metrics ->> 'valid_ndcg20')::float8 FROM recsys.model_versions mv WHERE mv.version_id = active);
    IF active IS NULL OR (o ->> 'force')::boolean OR best_ndcg >= coalesce(active_ndcg, -1) THEN
        PERFORM recsys_proxy.publish(v);
        RAISE NOTICE 'recsys_proxy.train: version % of % published to every shard and active', v, model;
    ELSE
        UPDATE recsys.model_versions mv SET note = pg_catalog.format('kept as candidate: validation NDCG@20 %s below the active version''s %s',
                                                                     round(best_ndcg::numeric, 4), round(active_ndcg::numeric, 4))
         WHERE mv.version_id = v;
        RAISE NOTICE 'recsys_proxy.train: version % of % kept as candidate', v, model;
    END IF;
    PERFORM recsys.training_release('recsys_proxy.train:' || model);
END
$$;
COMMENT ON PROCEDURE recsys_proxy.train(text, jsonb) IS 'data-parallel recsys.train over the shards: merged fit, scorer and GRU epochs merged by the combine function, early stopping, commit here, then publication to every shard';
