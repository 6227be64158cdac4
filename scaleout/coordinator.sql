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

-- One data-parallel training: recsys.train_driver, the loop recsys.train runs, with these steps, each on every shard
-- at once. The job a version's samples are kept under on the shards is "model:version_id". The held-out fit is
-- merged from every shard's share, scorer and GRU epochs run on every shard from the same weights and are merged
-- by the training aggregates' combine function, validation sums over all shards, the final fit is merged again;
-- the version is committed here, then published. A shard that fails before publication leaves every shard on the
-- version it had.
CREATE FUNCTION recsys_proxy.shard_status(job text) RETURNS TABLE (samples bigint, items integer)
    LANGUAGE plproxy AS $$
    CLUSTER 'recsys_shards';
    RUN ON ALL;
    SELECT (SELECT count(*) FROM recsys.shard_samples s WHERE s.job = $1) AS samples,
           (SELECT max(m.idx) + 1 FROM recsys.id_map m WHERE m.space = 'item')::integer AS items;
$$;
-- the newest prepared event of every shard; features are not refreshed from here: mined bundles must have the same
-- ids on every shard, so the catalogue's bundles are loaded on every shard alike, not mined per shard
CREATE FUNCTION recsys_proxy.data_to() RETURNS SETOF timestamptz
    LANGUAGE plproxy AS $$
    CLUSTER 'recsys_shards';
    RUN ON ALL;
    SELECT max(e.ts) FROM recsys.events_clean e;
$$;
CREATE FUNCTION recsys_proxy.job(version_id bigint) RETURNS text
    LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT mv.model || ':' || mv.version_id FROM recsys.model_versions mv WHERE mv.version_id = job.version_id $$;
-- the fit's options: the held-out one when holdout, else the servable one on every customer
CREATE FUNCTION recsys_proxy.fit(o jsonb, holdout boolean) RETURNS bytea
    LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
    SELECT recsys.fit_merge(ARRAY(SELECT p FROM recsys_proxy.fit_partial(f.fo) p), f.fo)
      FROM (SELECT jsonb_build_object('lambda', o -> 'lambda', 'beta', o -> 'beta', 'view_norm', o -> 'view_norm',
                                      'content', o -> 'content', 'keep_b', o -> 'keep_b', 'keep_m', o -> 'keep_m')
                   || CASE WHEN holdout THEN jsonb_build_object('holdout_seed', o -> 'seed') ELSE '{}' END AS fo) f
$$;
CREATE FUNCTION recsys_proxy.train_prepare(o jsonb) RETURNS timestamptz
    LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT max(t) FROM recsys_proxy.data_to() t $$;
CREATE FUNCTION recsys_proxy.train_status(version_id bigint, OUT samples bigint, OUT items integer)
    LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT sum(s.samples)::bigint, max(s.items) FROM recsys_proxy.shard_status(recsys_proxy.job(version_id)) s $$;
CREATE FUNCTION recsys_proxy.train_samples_for(version_id bigint, o jsonb, feedback_since timestamptz) RETURNS bigint
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
    -- the shards' feedback is not collected here: feedback_since is not used
    SELECT sum(n)::bigint FROM recsys_proxy.samples_for(recsys_proxy.job(version_id), recsys_proxy.fit(o, true),
                                                         (o ->> 'seed')::bigint, (o ->> 'candidates')::int) n
$$;
CREATE FUNCTION recsys_proxy.train_validate(version_id bigint, scorer bytea)
RETURNS TABLE (recall20 double precision, ndcg20 double precision, users bigint)
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sum(x.hits) / greatest(sum(x.users), 1), sum(x.ndcg) / greatest(sum(x.users), 1), sum(x.users)::bigint
      FROM recsys_proxy.validate(recsys_proxy.job(version_id), scorer) x
$$;
CREATE FUNCTION recsys_proxy.train_scorer_epoch(version_id bigint, scorer bytea, epoch integer, o jsonb) RETURNS bytea
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- the shards' epochs are mlp_train_partial over rows: bce
    IF o ->> 'scorer_loss' <> 'bce' THEN
        RAISE EXCEPTION 'data-parallel training takes scorer_loss bce only' USING ERRCODE = 'feature_not_supported',
            HINT = 'Train with recsys.train on one node for the listwise loss.';
    END IF;
    RETURN (SELECT recsys.train_merge(s)
              FROM recsys_proxy.scorer_epoch(recsys_proxy.job(version_id), scorer, epoch, (o ->> 'lr')::float8) s);
END
$$;
CREATE FUNCTION recsys_proxy.train_encoder_epoch(version_id bigint, encoder bytea, epoch integer, o jsonb, since timestamptz)
RETURNS bytea
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
    -- every shard trains on all its customers: since is not used
    SELECT recsys.train_merge(s) FROM recsys_proxy.encoder_epoch(encoder, epoch, (o ->> 'seed')::bigint) s
$$;
CREATE FUNCTION recsys_proxy.train_final(version_id bigint, o jsonb, scorer bytea, encoder bytea) RETURNS bytea
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT recsys.bundle_attach(recsys_proxy.fit(o, false), scorer, encoder, (o ->> 'candidates')::int)
      FROM (SELECT count(*) FROM recsys_proxy.done(recsys_proxy.job(version_id))) d
$$;
CREATE FUNCTION recsys_proxy.train_kind() RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT recsys.train_kind() $$;
CREATE FUNCTION recsys_proxy.train_scorer_init(hidden integer, seed bigint) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT recsys.train_scorer_init(hidden, seed) $$;
CREATE FUNCTION recsys_proxy.train_scorer_of(weights bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT recsys.train_scorer_of(weights) $$;
CREATE FUNCTION recsys_proxy.train_activate(version_id bigint) RETURNS void
    LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT count(*) FROM recsys_proxy.publish(version_id) $$;
COMMENT ON FUNCTION recsys_proxy.train_samples_for(bigint, jsonb, timestamptz) IS 'a data-parallel training step (see recsys.train_driver): the merged held-out fit, and each shard''s samples under it kept for the job';

CREATE PROCEDURE recsys_proxy.train(model text DEFAULT 'default', options jsonb DEFAULT '{}')
    LANGUAGE plpgsql
AS $$
DECLARE
    v bigint;
BEGIN
    -- an interrupted round is not resumed (a shard may have failed to store its samples): it is marked failed
    -- and the next round replaces what it left on the shards
    CALL recsys.train_driver('recsys_proxy.train', model, coalesce(options, '{}') || '{"resume": false}', 'recsys_proxy.train', false, v);
END
$$;
COMMENT ON PROCEDURE recsys_proxy.train(text, jsonb) IS 'data-parallel recsys.train over the shards (recsys.train_driver with recsys_proxy''s steps): merged fit, scorer and GRU epochs merged by the combine function, early stopping, commit here, then publication to every shard';
