-- recsys SQL source: experiments -- feedback, impressions and A/B experiments (the Makefile assembles sql/src/*.sql into the install script)

------------------------------------------------------------------------------
-- Feedback loop and A/B experiments
------------------------------------------------------------------------------

CREATE TABLE recsys.experiments (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    variants   jsonb NOT NULL CHECK (jsonb_typeof(variants) = 'array'),
    status     text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'stopped')),
    started_at timestamptz NOT NULL DEFAULT now(),
    stopped_at timestamptz
);
COMMENT ON TABLE recsys.experiments IS 'A/B experiments: variants (name, model version or baseline, traffic share; the first is the control), status running or stopped';
SELECT pg_catalog.pg_extension_config_dump('recsys.experiments', '');

CREATE TABLE recsys.impressions (
    impression_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shown_at      timestamptz NOT NULL DEFAULT now(),
    user_id       text NOT NULL,
    target        text NOT NULL,
    target_kind   text NOT NULL DEFAULT 'bundle' CHECK (target_kind IN ('bundle', 'item')),
    rank          integer,
    version_id    bigint,
    experiment    text,
    variant       text
);
CREATE INDEX ON recsys.impressions (user_id, target);
CREATE INDEX ON recsys.impressions (experiment, variant);
COMMENT ON TABLE recsys.impressions IS 'what was shown to whom: the bundle or item, its rank, the model version that ranked it, and the experiment variant';
SELECT pg_catalog.pg_extension_config_dump('recsys.impressions', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('recsys.impressions', 'impression_id')::regclass, '');

CREATE TABLE recsys.feedback (
    feedback_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    user_id     text NOT NULL,
    target      text NOT NULL,
    target_kind text NOT NULL DEFAULT 'bundle' CHECK (target_kind IN ('bundle', 'item')),
    event       text NOT NULL CHECK (event IN ('click', 'add_to_cart', 'purchase', 'dismiss')),
    value       numeric
);
CREATE INDEX ON recsys.feedback (user_id, target);
COMMENT ON TABLE recsys.feedback IS 'what customers did with what they were shown: click, add_to_cart, purchase (value: revenue), dismiss';
SELECT pg_catalog.pg_extension_config_dump('recsys.feedback', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('recsys.feedback', 'feedback_id')::regclass, '');
ALTER TABLE recsys.feedback ADD CONSTRAINT feedback_value_finite CHECK (value IS NULL OR (value >= 0 AND value < 'Infinity'::numeric));

--@begin recsys.log_impressions(text, text[], bigint, text, text, text)
CREATE OR REPLACE FUNCTION recsys.log_impressions(user_id text, targets text[], version_id bigint DEFAULT NULL,
                                       experiment text DEFAULT NULL, variant text DEFAULT NULL,
                                       target_kind text DEFAULT 'bundle') RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF user_id IS NULL OR targets IS NULL THEN
        RAISE EXCEPTION 'user_id and targets must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF target_kind IS NULL OR target_kind NOT IN ('bundle', 'item', 'promotion') THEN
        RAISE EXCEPTION 'target_kind must be bundle, item or promotion' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO recsys.impressions (user_id, target, target_kind, rank, version_id, experiment, variant)
    SELECT log_impressions.user_id, t.target, log_impressions.target_kind, t.rank::int,
           log_impressions.version_id, log_impressions.experiment, log_impressions.variant
      FROM unnest(targets) WITH ORDINALITY AS t(target, rank)
     WHERE t.target IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.log_impressions(text, text[], bigint, text, text, text) IS 'logs what was shown to a user, in rank order: bundle (or item, or promotion) ids, the model version that ranked them, the experiment and variant (a promotion''s held-out customers are logged with the experiment''s first variant, its control); returns the rows logged';
-- the application serving the logged-in customer logs what it showed and what the customer did, without reading
-- the logs or the raw events: the logging functions run as their owner, for recsys_app (and recsys_admin)
ALTER FUNCTION recsys.log_impressions(text, text[], bigint, text, text, text) SECURITY DEFINER;
--@end

--@begin recsys.log_feedback(text, text, text, numeric, text)
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
    IF target_kind IS NULL OR target_kind NOT IN ('bundle', 'item', 'promotion') THEN
        RAISE EXCEPTION 'target_kind must be bundle, item or promotion' USING ERRCODE = 'invalid_parameter_value';
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
COMMENT ON FUNCTION recsys.log_feedback(text, text, text, numeric, text) IS 'logs what a user did with a bundle (or item, or promotion: a purchase redeems it): click, add_to_cart, purchase (value: revenue) or dismiss; returns the feedback id';
ALTER FUNCTION recsys.log_feedback(text, text, text, numeric, text) SECURITY DEFINER;
--@end

CREATE FUNCTION recsys.create_experiment(name text, variants jsonb) RETURNS text
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
    total numeric := 0;
    names text[] := '{}';
BEGIN
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid experiment name %', quote_literal(coalesce(name, 'NULL'))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF variants IS NULL OR jsonb_typeof(variants) <> 'array' OR jsonb_array_length(variants) < 2 THEN
        RAISE EXCEPTION 'variants must be a JSON array of at least two variants'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example [{"name": "control", "version": 3, "share": 0.5}, {"name": "b", "version": 4, "share": 0.5}]; a variant may use "baseline": true instead of a version.';
    END IF;
    FOR v IN SELECT * FROM jsonb_array_elements(variants) LOOP
        IF jsonb_typeof(v) <> 'object' OR jsonb_typeof(v -> 'name') IS DISTINCT FROM 'string'
           OR jsonb_typeof(v -> 'share') IS DISTINCT FROM 'number' OR (v ->> 'share')::numeric <= 0 THEN
            RAISE EXCEPTION 'each variant needs a name and a positive share, got %', v USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF (v ->> 'name') = ANY (names) THEN
            RAISE EXCEPTION 'variant % appears twice', quote_literal(v ->> 'name') USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v ? 'version' AND NOT EXISTS (SELECT 1 FROM recsys.model_versions mv
                                           WHERE mv.version_id = (v ->> 'version')::bigint AND mv.weights IS NOT NULL) THEN
            RAISE EXCEPTION 'variant %: model version % does not exist or has no weights', quote_literal(v ->> 'name'), v ->> 'version'
                USING ERRCODE = 'undefined_object';
        END IF;
        IF NOT (v ? 'version') AND NOT coalesce((v ->> 'baseline')::boolean, false) THEN
            RAISE EXCEPTION 'variant % needs a model version or "baseline": true', quote_literal(v ->> 'name')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        names := names || (v ->> 'name');
        total := total + (v ->> 'share')::numeric;
    END LOOP;
    IF abs(total - 1) > 1e-9 THEN
        RAISE EXCEPTION 'variant shares must sum to 1, got %', total USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO recsys.experiments (name, variants) VALUES (create_experiment.name, create_experiment.variants);
    PERFORM recsys.serving_invalidate();
    RETURN name;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'experiment % already exists', quote_literal(name) USING ERRCODE = 'duplicate_object';
END
$$;
COMMENT ON FUNCTION recsys.create_experiment(text, jsonb) IS 'starts an A/B experiment: variants is an array of {"name", "share", "version" (a model version) or "baseline": true}; shares sum to 1; the first variant is the control; users are assigned by a hash of experiment and user';

CREATE FUNCTION recsys.stop_experiment(name text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE recsys.experiments e SET status = 'stopped', stopped_at = now()
     WHERE e.name = stop_experiment.name AND e.status = 'running';
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM recsys.experiments e WHERE e.name = stop_experiment.name) THEN
            RAISE EXCEPTION 'experiment % does not exist', quote_literal(coalesce(name, 'NULL')) USING ERRCODE = 'undefined_object';
        END IF;
        RETURN false;
    END IF;
    PERFORM recsys.serving_invalidate();
    RETURN true;
END
$$;
COMMENT ON FUNCTION recsys.stop_experiment(text) IS 'stops a running experiment (serving goes back to the active version); false if it was already stopped';

CREATE FUNCTION recsys.experiment_variant(experiment text, user_id text) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    -- a point in [0, 1) from the hash of experiment and user, against the cumulative shares
    WITH point AS (
        SELECT ((hashtextextended(experiment || ':' || user_id, 0) & 9007199254740991)::float8 / 9007199254740992) AS u
    ), cum AS (
        SELECT v ->> 'name' AS name, sum((v ->> 'share')::float8) OVER (ORDER BY o) AS upto, o
          FROM recsys.experiments e, jsonb_array_elements(e.variants) WITH ORDINALITY AS x(v, o)
         WHERE e.name = experiment_variant.experiment
    )
    SELECT coalesce((SELECT c.name FROM cum c, point p WHERE p.u < c.upto ORDER BY c.o LIMIT 1),
                    (SELECT c.name FROM cum c ORDER BY c.o DESC LIMIT 1))
$$;
COMMENT ON FUNCTION recsys.experiment_variant(text, text) IS 'the variant a user sees in an experiment: deterministic, from a hash of experiment and user against the cumulative traffic shares';

CREATE FUNCTION recsys.normal_cdf(x double precision) RETURNS double precision
    AS 'MODULE_PATHNAME', 'normal_cdf'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.normal_cdf(double precision) IS 'the standard normal distribution function Phi(x), from libm erfc, for p-values';

CREATE FUNCTION recsys.experiment_report(name text)
RETURNS TABLE (variant text, is_control boolean, users bigint, impressions bigint, clicks bigint, ctr double precision,
               converted_users bigint, conversion double precision, revenue_per_user double precision,
               uplift double precision, uplift_low double precision, uplift_high double precision, p_value double precision)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SECURITY DEFINER  -- aggregates only: BI readers see rates, never who saw what
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH exp AS (
        SELECT e.* FROM recsys.experiments e WHERE e.name = experiment_report.name
    ), vars AS (
        SELECT v ->> 'name' AS variant, o = 1 AS is_control, o
          FROM exp, jsonb_array_elements(exp.variants) WITH ORDINALITY AS x(v, o)
    ), shown AS (
        SELECT i.variant, i.user_id, i.target, i.target_kind, min(i.shown_at) AS first_shown, count(*) AS n
          FROM recsys.impressions i, exp WHERE i.experiment = exp.name
         GROUP BY 1, 2, 3, 4
    ), outcome AS (
        -- feedback counts when it follows an impression of the same target to the same user
        SELECT s.variant, s.user_id, s.n,
               count(f.*) FILTER (WHERE f.event = 'click') AS clicks,
               count(f.*) FILTER (WHERE f.event = 'purchase') AS purchases,
               coalesce(sum(f.value) FILTER (WHERE f.event = 'purchase'), 0) AS revenue
          FROM shown s LEFT JOIN recsys.feedback f
            ON f.user_id = s.user_id AND f.target = s.target AND f.target_kind = s.target_kind AND f.at >= s.first_shown
         GROUP BY s.variant, s.user_id, s.target, s.n
    ), per_user AS (
        SELECT o.variant, o.user_id, sum(o.n) AS impressions, sum(o.clicks) AS clicks, sum(o.purchases) > 0 AS converted,
               sum(o.revenue) AS revenue
          FROM outcome o GROUP BY 1, 2
    ), stats AS (
        SELECT v.variant, v.is_control, v.o, count(pu.user_id) AS users, coalesce(sum(pu.impressions), 0)::bigint AS impressions,
               coalesce(sum(pu.clicks), 0)::bigint AS clicks, count(*) FILTER (WHERE pu.converted) AS converted_users,
               coalesce(sum(pu.revenue), 0)::float8 AS revenue
          FROM vars v LEFT JOIN per_user pu ON pu.variant = v.variant
         GROUP BY v.variant, v.is_control, v.o
    ), rates AS (
        SELECT s.*, CASE WHEN s.impressions > 0 THEN s.clicks::float8 / s.impressions END AS ctr,
               CASE WHEN s.users > 0 THEN s.converted_users::float8 / s.users END AS conversion,
               CASE WHEN s.users > 0 THEN s.revenue / s.users END AS rpu
          FROM stats s
    )
    SELECT r.variant, r.is_control, r.users, r.impressions, r.clicks, r.ctr, r.converted_users, r.conversion, r.rpu,
           -- conversion uplift over the control with a 95% (Wald) interval; two-proportion z-test with the pooled rate
           CASE WHEN NOT r.is_control THEN r.conversion - c.conversion END,
           CASE WHEN NOT r.is_control THEN r.conversion - c.conversion
                - 1.959963984540054 * sqrt(r.conversion * (1 - r.conversion) / nullif(r.users, 0)
                                           + c.conversion * (1 - c.conversion) / nullif(c.users, 0)) END,
           CASE WHEN NOT r.is_control THEN r.conversion - c.conversion
                + 1.959963984540054 * sqrt(r.conversion * (1 - r.conversion) / nullif(r.users, 0)
                                           + c.conversion * (1 - c.conversion) / nullif(c.users, 0)) END,
           CASE WHEN NOT r.is_control THEN
               (SELECT 2 * (1 - recsys.normal_cdf(abs(r.conversion - c.conversion)
                            / nullif(sqrt(pp * (1 - pp) * (1.0 / nullif(r.users, 0) + 1.0 / nullif(c.users, 0))), 0)))
                  FROM (SELECT (r.converted_users + c.converted_users)::float8 / nullif(r.users + c.users, 0) AS pp) pooled)
           END
      FROM rates r, rates c
     WHERE c.is_control
     ORDER BY r.o
$$;
COMMENT ON FUNCTION recsys.experiment_report(text) IS 'per variant of an experiment: users shown something, impressions, clicks, CTR, converted users (a purchase of something shown, after it was shown), conversion rate, revenue per user, and against the control (the first variant) the conversion uplift with a 95% confidence interval and the two-proportion z-test p-value';

--@begin recsys.experiments_check()
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
--@end
