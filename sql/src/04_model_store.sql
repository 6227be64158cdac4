-- recsys SQL source: model store -- models, versions, activation and rollback (the Makefile assembles sql/src/*.sql into the install script)

------------------------------------------------------------------------------
-- Model store
------------------------------------------------------------------------------

CREATE TABLE recsys.models (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    kind        text NOT NULL CHECK (kind IN ('mlp', 'rnn', 'gru', 'baseline', 'bundle')),
    config      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- set by recsys.forget_user when a version was trained on a forgotten customer; recsys.train clears it
    needs_retrain boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE recsys.models IS 'named models: kind (mlp, rnn, gru, baseline, bundle), configuration, and whether a forgotten customer''s data went into a live version (needs_retrain)';
SELECT pg_catalog.pg_extension_config_dump('recsys.models', '');

CREATE TABLE recsys.model_versions (
    version_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model          text NOT NULL REFERENCES recsys.models (name) ON DELETE CASCADE,
    status         text NOT NULL DEFAULT 'training'
                   CHECK (status IN ('training', 'candidate', 'active', 'retired', 'failed')),
    -- validated on every write: a damaged value can never be stored, let alone activated
    weights        bytea CHECK (weights IS NULL OR recsys.model_check(weights)),
    metrics        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metrics) = 'object'),
    data_from      timestamptz,
    data_to        timestamptz,
    parent_version bigint REFERENCES recsys.model_versions (version_id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     name NOT NULL DEFAULT current_user,
    activated_at   timestamptz,
    retired_at     timestamptz,
    note           text,
    CHECK (status IN ('training', 'failed') OR weights IS NOT NULL),
    CHECK (data_from IS NULL OR data_to IS NULL OR data_from <= data_to)
);
CREATE UNIQUE INDEX model_versions_one_active ON recsys.model_versions (model) WHERE status = 'active';
CREATE INDEX ON recsys.model_versions (model, version_id);
COMMENT ON TABLE recsys.model_versions IS 'versions of each model: status (training, candidate, active, retired, failed), weights in the v1 format, metrics, training data range, parent version; at most one active per model';
SELECT pg_catalog.pg_extension_config_dump('recsys.model_versions', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('recsys.model_versions', 'version_id')::regclass, '');

CREATE TABLE recsys.training_runs (
    version_id    bigint NOT NULL REFERENCES recsys.model_versions (version_id) ON DELETE CASCADE,
    epoch         integer NOT NULL CHECK (epoch >= 0),
    loss          double precision,
    metrics       jsonb NOT NULL DEFAULT '{}',
    samples       bigint,
    samples_per_s double precision,
    elapsed_ms    double precision,
    finished_at   timestamptz NOT NULL DEFAULT now(),
    -- what recsys.train resumes from (the scorer after this epoch)
    checkpoint    bytea CHECK (checkpoint IS NULL OR recsys.model_check(checkpoint)),
    PRIMARY KEY (version_id, epoch)
);
COMMENT ON TABLE recsys.training_runs IS 'one row per training epoch of a model version (loss, validation metrics in metrics, throughput, the checkpoint to resume from), committed as training goes';
SELECT pg_catalog.pg_extension_config_dump('recsys.training_runs', '');

-- whether the statement of backend pid that started at since still runs; SECURITY DEFINER: another role's
-- pg_stat_activity row shows no state to the caller
--@begin recsys.statement_live(integer, timestamp with time zone)
CREATE FUNCTION recsys.statement_live(pid integer, since timestamptz) RETURNS boolean
    LANGUAGE sql VOLATILE STRICT
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_stat_activity a
                    WHERE a.pid = statement_live.pid AND a.state = 'active' AND a.query_start = statement_live.since)
$$;
COMMENT ON FUNCTION recsys.statement_live(integer, timestamptz) IS 'whether backend pid still runs the statement it started at since (a CALL keeps its start across its commits): what makes a training claim live and a training stage running';
--@end

--@begin recsys.training_stages
CREATE TABLE recsys.training_stages (
    stage_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model             text NOT NULL REFERENCES recsys.models (name) ON DELETE CASCADE,
    version_id        bigint REFERENCES recsys.model_versions (version_id) ON DELETE CASCADE,
    stage             text NOT NULL CHECK (stage IN ('features', 'fit', 'scorer', 'encoder', 'final', 'activation')),
    started_at        timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at       timestamptz,
    detail            text,
    -- the CALL that runs it: running while that statement still runs, interrupted otherwise
    pid               integer NOT NULL DEFAULT pg_catalog.pg_backend_pid(),
    statement_started timestamptz NOT NULL DEFAULT pg_catalog.statement_timestamp()
);
CREATE INDEX ON recsys.training_stages (model, stage_id);
COMMENT ON TABLE recsys.training_stages IS 'one row per stage of each training (features, fit, scorer, encoder, final, activation), committed when it starts and when it ends; read through recsys.training_progress';
SELECT pg_catalog.pg_extension_config_dump('recsys.training_stages', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('recsys.training_stages', 'stage_id')::regclass, '');
--@end

CREATE FUNCTION recsys.create_model(name text, kind text, config jsonb DEFAULT '{}', description text DEFAULT NULL)
RETURNS text
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid model name %', pg_catalog.quote_literal(coalesce(name, 'NULL'))
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A model name is 1 to 63 characters of a-z, 0-9 and _, starting with a letter.';
    END IF;
    IF kind IS NULL OR kind NOT IN ('mlp', 'rnn', 'gru', 'baseline', 'bundle') THEN
        RAISE EXCEPTION 'unknown model kind %', pg_catalog.quote_literal(coalesce(kind, 'NULL'))
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use one of mlp, rnn, gru, baseline, bundle.';
    END IF;
    IF config IS NULL OR pg_catalog.jsonb_typeof(config) <> 'object' THEN
        RAISE EXCEPTION 'config must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO recsys.models (name, kind, config, description)
    VALUES (create_model.name, create_model.kind, create_model.config, create_model.description);
    RETURN name;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'model % already exists', pg_catalog.quote_literal(name) USING ERRCODE = 'duplicate_object';
END
$$;
COMMENT ON FUNCTION recsys.create_model(text, text, jsonb, text) IS 'creates a named model of a kind (mlp, rnn, gru, baseline, bundle) with a JSON configuration';

CREATE FUNCTION recsys.add_version(model text, weights bytea, status text DEFAULT 'candidate',
                                   metrics jsonb DEFAULT '{}', parent_version bigint DEFAULT NULL,
                                   data_from timestamptz DEFAULT NULL, data_to timestamptz DEFAULT NULL,
                                   note text DEFAULT NULL)
RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m recsys.models;
    v bigint;
BEGIN
    SELECT * INTO m FROM recsys.models WHERE name = add_version.model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model % does not exist', pg_catalog.quote_literal(coalesce(add_version.model, 'NULL'))
            USING ERRCODE = 'undefined_object', HINT = 'Create it with recsys.create_model(name, kind).';
    END IF;
    IF status IS NULL OR status NOT IN ('training', 'candidate', 'failed') THEN
        RAISE EXCEPTION 'a new version must start as training, candidate or failed, not %', coalesce(status, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Activate it afterwards with recsys.activate_version(id).';
    END IF;
    IF weights IS NOT NULL AND recsys.model_info(weights) ->> 'kind' <> m.kind THEN
        RAISE EXCEPTION 'weights of kind % do not fit model % of kind %',
                        recsys.model_info(weights) ->> 'kind', m.name, m.kind
            USING ERRCODE = 'datatype_mismatch';
    END IF;
    INSERT INTO recsys.model_versions (model, status, weights, metrics, parent_version, data_from, data_to, note)
    VALUES (m.name, add_version.status, add_version.weights, coalesce(add_version.metrics, '{}'),
            add_version.parent_version, add_version.data_from, add_version.data_to, add_version.note)
    RETURNING version_id INTO v;
    RETURN v;
END
$$;
COMMENT ON FUNCTION recsys.add_version(text, bytea, text, jsonb, bigint, timestamptz, timestamptz, text) IS 'stores a new version of a model (weights validated, kind checked) as training, candidate or failed; returns its version_id';

CREATE FUNCTION recsys.activate_version(version_id bigint) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v recsys.model_versions;
    previous bigint;
BEGIN
    SELECT * INTO v FROM recsys.model_versions mv WHERE mv.version_id = activate_version.version_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model version % does not exist', coalesce(activate_version.version_id::text, 'NULL')
            USING ERRCODE = 'undefined_object';
    END IF;
    -- serialise activations of one model; readers never wait
    PERFORM 1 FROM recsys.models WHERE name = v.model FOR UPDATE;
    SELECT * INTO v FROM recsys.model_versions mv WHERE mv.version_id = activate_version.version_id;
    IF v.status = 'active' THEN
        RETURN v.version_id;
    END IF;
    IF v.status NOT IN ('candidate', 'retired') THEN
        RAISE EXCEPTION 'model version % is %, only a candidate or retired version can be activated',
                        v.version_id, v.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE recsys.model_versions mv SET status = 'retired', retired_at = pg_catalog.now()
     WHERE mv.model = v.model AND mv.status = 'active'
    RETURNING mv.version_id INTO previous;
    UPDATE recsys.model_versions mv SET status = 'active', activated_at = pg_catalog.now(), retired_at = NULL
     WHERE mv.version_id = v.version_id;
    PERFORM recsys.serving_invalidate();
    RETURN previous;
END
$$;
COMMENT ON FUNCTION recsys.activate_version(bigint) IS 'makes a candidate (or retired, to roll back) version the active one of its model and retires the previous active version, in one transaction; returns the previous active version_id';

CREATE FUNCTION recsys.active_version(model text) RETURNS bigint
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT mv.version_id FROM recsys.model_versions mv WHERE mv.model = active_version.model AND mv.status = 'active'
$$;
COMMENT ON FUNCTION recsys.active_version(text) IS 'version_id of the active version of a model, NULL when none is active';

--@begin recsys.rollback(text)
CREATE OR REPLACE FUNCTION recsys.rollback(model text) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target bigint;
    previous bigint;
BEGIN
    SELECT mv.version_id INTO target FROM recsys.model_versions mv
     WHERE mv.model = rollback.model AND mv.status = 'retired'
     ORDER BY mv.retired_at DESC, mv.version_id DESC LIMIT 1;
    IF target IS NULL THEN
        RAISE EXCEPTION 'model % has no retired version to roll back to', pg_catalog.quote_literal(coalesce(model, 'NULL'))
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    previous := recsys.activate_version(target);
    -- the version rolled back from is a candidate again, not the most recently retired: a second rollback goes
    -- further back instead of undoing the first; recsys.activate_version() brings it back
    UPDATE recsys.model_versions mv
       SET status = 'candidate', retired_at = NULL,
           note = pg_catalog.format('rolled back from at %s: version %s re-activated', pg_catalog.now(), target)
     WHERE mv.version_id = previous;
    RETURN target;
END
$$;
COMMENT ON FUNCTION recsys.rollback(text) IS 'reactivates the most recently retired version of a model and makes the version it replaces a candidate again (note says so), so a second rollback goes one version further back; returns the reactivated version_id';
--@end

-- The model store: a version's weights are of its model's kind, and an experiment compares versions of one
-- model, whoever writes the row (recsys.add_version, recsys.publish_version or a plain INSERT).
--@begin recsys.model_versions_check()
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
--@end
