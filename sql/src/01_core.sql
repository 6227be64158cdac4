-- recsys SQL source: core -- the schema, the weights format, neural models (C) and the option declarations (the Makefile assembles sql/src/*.sql into the install script)

-- Serving functions live in the extension's schema (public by default, so
-- SELECT * FROM recommend_bundles(42, 10) works as is); state and everything
-- else live in schema recsys.
CREATE SCHEMA recsys;
COMMENT ON SCHEMA recsys IS 'recsys state (sources, id maps, prepared data, model store) and administration functions';

------------------------------------------------------------------------------
-- C functions: version and the weights format
------------------------------------------------------------------------------

CREATE FUNCTION recsys.version() RETURNS text
    AS 'MODULE_PATHNAME', 'recsys_module_version'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.version() IS 'version of the loaded recsys shared library; equals the extension version when the install is consistent';

CREATE FUNCTION recsys.model_info(weights bytea) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'model_info'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.model_info(bytea) IS 'describes a weights value (format version, kind, config, tensors with dims, parameter count, CRC-32C) after validating all of it; damaged values raise data_corrupted';

CREATE FUNCTION recsys.model_check(weights bytea) RETURNS boolean
    AS 'MODULE_PATHNAME', 'model_check'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.model_check(bytea) IS 'true when a weights value is valid (size, header, dims, CRC-32C, finite weights); raises data_corrupted otherwise';

CREATE FUNCTION recsys.model_pack(kind text, tensors jsonb, config jsonb DEFAULT '{}') RETURNS bytea
    AS 'MODULE_PATHNAME', 'model_pack'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.model_pack(text, jsonb, jsonb) IS 'builds a v1 weights value from a JSON object of tensor name to (nested, rectangular) number arrays; kind is one of mlp, rnn, gru, baseline, bundle';

CREATE FUNCTION recsys.model_tensor(weights bytea, name text) RETURNS real[]
    AS 'MODULE_PATHNAME', 'model_tensor'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.model_tensor(bytea, text) IS 'one tensor of a validated weights value as a real array with the tensor''s dimensions';

------------------------------------------------------------------------------
-- Neural models: init, forward passes, training aggregates (bytea state)
------------------------------------------------------------------------------

CREATE FUNCTION recsys.model_init(kind text, config jsonb, seed bigint DEFAULT 0) RETURNS bytea
    AS 'MODULE_PATHNAME', 'model_init'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.model_init(text, jsonb, bigint) IS 'new weights, seeded (Xavier, He for ReLU layers): mlp {"layers": [in, ..., out], "activation": relu|tanh|sigmoid|linear, "output": sigmoid|linear|...}; rnn or gru {"vocab": n, "embed": 64, "hidden": 128} (rnn also "activation", default sigmoid); same seed, same bytes';

CREATE FUNCTION recsys.mlp_forward(weights bytea, x real[]) RETURNS real[]
    AS 'MODULE_PATHNAME', 'mlp_forward'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.mlp_forward(bytea, real[]) IS 'MLP outputs (after the output activation) for one feature vector, or for each row of a two-dimensional array (a batch, computed in one pass)';

CREATE FUNCTION recsys.rnn_encode(weights bytea, items integer[]) RETURNS real[]
    AS 'MODULE_PATHNAME', 'rnn_encode'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.rnn_encode(bytea, integer[]) IS 'the hidden state of an rnn or gru after reading a sequence of item indexes (oldest first); an empty sequence gives zeros';

CREATE FUNCTION recsys.mlp_train_step(state bytea, weights bytea, x real[], y real, options jsonb) RETURNS bytea
    AS 'MODULE_PATHNAME', 'mlp_train_step'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.mlp_train_step(bytea, bytea, real[], real, jsonb) IS 'transition function of recsys.mlp_train: buffers a row and takes an optimiser step per mini-batch, in place';

CREATE FUNCTION recsys.rnn_train_step(state bytea, weights bytea, items integer[], target integer, options jsonb) RETURNS bytea
    AS 'MODULE_PATHNAME', 'rnn_train_step'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.rnn_train_step(bytea, bytea, integer[], integer, jsonb) IS 'transition function of recsys.rnn_train: buffers a sequence and takes an optimiser step per mini-batch, in place';

CREATE FUNCTION recsys.train_combine(a bytea, b bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'train_combine'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.train_combine(bytea, bytea) IS 'combine function of the training aggregates: steps pending rows, then averages parameters and optimiser moments weighted by samples seen';

CREATE FUNCTION recsys.train_final(state bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'train_final'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.train_final(bytea) IS 'final function of the training aggregates: steps pending rows and returns v1 weights whose config records samples, steps, mean loss and optimiser';

-- Support functions are for the aggregates: a hand-made state is validated, but there is no need to call them.
REVOKE EXECUTE ON FUNCTION recsys.mlp_train_step(bytea, bytea, real[], real, jsonb),
                           recsys.rnn_train_step(bytea, bytea, integer[], integer, jsonb),
                           recsys.train_combine(bytea, bytea), recsys.train_final(bytea) FROM PUBLIC;

CREATE AGGREGATE recsys.mlp_train(weights bytea, x real[], y real, options jsonb) (
    SFUNC = recsys.mlp_train_step,
    STYPE = bytea,
    COMBINEFUNC = recsys.train_combine,
    FINALFUNC = recsys.train_final,
    FINALFUNC_MODIFY = READ_WRITE,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE recsys.mlp_train(bytea, real[], real, jsonb) IS 'one epoch of mini-batch training of an MLP over the rows (features x, target y) starting from weights; options: optimizer (sgd, momentum, adam), lr, momentum, beta1, beta2, eps, l2, clip, batch (256), loss (bce on logits, or mse); returns the trained weights; runs as a parallel aggregate';

CREATE AGGREGATE recsys.rnn_train(weights bytea, items integer[], target integer, options jsonb) (
    SFUNC = recsys.rnn_train_step,
    STYPE = bytea,
    COMBINEFUNC = recsys.train_combine,
    FINALFUNC = recsys.train_final,
    FINALFUNC_MODIFY = READ_WRITE,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE recsys.rnn_train(bytea, integer[], integer, jsonb) IS 'one epoch of training of an rnn or gru encoder to predict the next item (target) after a sequence, by sampled softmax; options as mlp_train plus negatives (100), max_len (20, most recent items kept), seed; returns the trained weights';

------------------------------------------------------------------------------
-- Trust, round 2: options, ids, the model store, erasure, privileges
------------------------------------------------------------------------------

-- Options: every option of every function family declared once (src/options.c), read by the C parsers and,
-- through recsys.option_specs(), by the SQL ones: one rule (declared keys, types, ranges, whole numbers) and one
-- wording, the declared defaults, and the README reference.
--@begin recsys.option_specs()
CREATE FUNCTION recsys.option_specs()
RETURNS TABLE (family text, key text, type text, min numeric, max numeric, "default" jsonb, help text)
    AS 'MODULE_PATHNAME', 'option_specs'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.option_specs() IS 'every option of every function family (recommend_bundles, train, refresh_features, mine_bundles, split_pairs, bundle_fit, mlp_train, rnn_train): key, type, range, default and what it does, as the parsers check them';
--@end

--@begin recsys.check_options(jsonb, text)
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
--@end
