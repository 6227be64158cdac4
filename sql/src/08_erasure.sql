-- recsys SQL source: erasure -- forget_user and its salt (the Makefile assembles sql/src/*.sql into the install script)

------------------------------------------------------------------------------
-- Erasure: recsys.forget_user
------------------------------------------------------------------------------

CREATE TABLE recsys.secrets (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
COMMENT ON TABLE recsys.secrets IS 'per-installation secrets: the salt of the digests that keep forgotten customers out (made by the first recsys.forget_user; pg_dump keeps it, so digests survive a restore)';
SELECT pg_catalog.pg_extension_config_dump('recsys.secrets', '');

CREATE TABLE recsys.forgotten_users (
    digest       bytea PRIMARY KEY,
    forgotten_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recsys.forgotten_users IS 'salted SHA-256 digests of erased customers'' ids (never the ids), so recsys.prepare() keeps them out while the shop''s own tables still hold them';
SELECT pg_catalog.pg_extension_config_dump('recsys.forgotten_users', '');

--@begin recsys.user_digest(text)
CREATE OR REPLACE FUNCTION recsys.user_digest(user_id text) RETURNS bytea
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
-- per event row in prepare(): the salt is read as before, and forget_salt() (which raises when it is gone) runs
-- only when it is missing
AS $$ SELECT sha256(coalesce((SELECT s.value FROM recsys.secrets s WHERE s.name = 'forget_salt'), recsys.forget_salt())
                    || convert_to(user_id, 'UTF8')) $$;
COMMENT ON FUNCTION recsys.user_digest(text) IS 'the salted SHA-256 digest of a customer id that recsys.forgotten_users keeps';
--@end

--@begin recsys.forget_user(text)
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
        DELETE FROM recsys.promotion_exposures x WHERE x.user_idx = u;     GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('promotion_exposures', n);
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
COMMENT ON FUNCTION recsys.forget_user(text) IS 'erases a customer from every recsys table (id map, prepared events, histories, features, training samples, impressions, feedback; serving caches are dropped), keeps only a salted digest so recsys.prepare() leaves them out from now on, and flags models whose live versions may have learned from them (models.needs_retrain); returns the rows removed per table. Mined bundles need at least min_customers distinct customers, so none describes one person';
--@end

-- Erasure: the flag compares wall-clock times (a version trained after the customer was mapped may hold them),
-- the shards' samples go too, and a lost salt is an error rather than forgotten customers coming back.
--@begin recsys.forget_salt()
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
--@end

--@begin recsys.secrets_guard()
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
--@end
