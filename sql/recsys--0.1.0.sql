/* recsys install script, version 0.1.0 (the version lives in recsys.control) */
\echo Use "CREATE EXTENSION recsys" to load this file. \quit

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
-- Features: item co-occurrence with association-rule statistics
------------------------------------------------------------------------------

CREATE FUNCTION recsys.item_pairs(min_count integer DEFAULT 2, max_basket integer DEFAULT 100)
RETURNS TABLE (item_a integer, item_b integer, together bigint, support double precision,
               confidence double precision, lift double precision)
    AS 'MODULE_PATHNAME', 'item_pairs'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10000;
COMMENT ON FUNCTION recsys.item_pairs(integer, integer) IS 'item co-occurrence over the prepared baskets (each customer''s history when no basket column is registered), both directions a -> b of every pair seen together in at least min_count transactions: together, support, confidence (together / transactions with a), lift; transactions over max_basket items count for item totals only';

------------------------------------------------------------------------------
-- EASE: the bundle view as a closed-form item-item model
------------------------------------------------------------------------------

CREATE FUNCTION recsys.ease_fit(lambda double precision DEFAULT 500) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ease_fit'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.ease_fit(double precision) IS 'fits EASE (Steck 2019) on the prepared user-bundle pairs: B = I - P / diag(P), P = (X''X + lambda I)^-1, zero diagonal; returns bundle-kind weights with tensor ease.b (bundles x bundles); dense, so up to 12000 bundles';

CREATE FUNCTION recsys.ease_scores(weights bytea, bundles integer[]) RETURNS real[]
    AS 'MODULE_PATHNAME', 'ease_scores'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.ease_scores(bytea, integer[]) IS 'EASE scores of every bundle (by bundle index) for a user who took the given bundle indexes: the sum of their rows of B';

------------------------------------------------------------------------------
-- Sources: the shop's own relations, registered by name and column
------------------------------------------------------------------------------

CREATE TABLE recsys.sources (
    kind          text PRIMARY KEY CHECK (kind IN ('events', 'items', 'bundles', 'bundle_events')),
    relation      regclass NOT NULL,
    columns       jsonb NOT NULL,
    column_types  jsonb NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    registered_by name NOT NULL DEFAULT current_user
);
COMMENT ON TABLE recsys.sources IS 'registered shop relations, one per kind (events, items, bundles, bundle_events), read in place by recsys.prepare()';

-- Column types each role accepts (domains are checked by their base type).
CREATE FUNCTION recsys.column_types_for(role text) RETURNS regtype[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN role IN ('user', 'item', 'bundle', 'basket')
            THEN ARRAY['smallint', 'integer', 'bigint', 'text', 'character varying', 'character', 'uuid']::regtype[]
        WHEN role = 'time'
            THEN ARRAY['timestamp with time zone', 'timestamp without time zone', 'date']::regtype[]
        WHEN role IN ('weight', 'price')
            THEN ARRAY['smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision']::regtype[]
        WHEN role = 'stock'
            THEN ARRAY['smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision', 'boolean']::regtype[]
        WHEN role = 'name'
            THEN ARRAY['text', 'character varying', 'character']::regtype[]
        WHEN role = 'category'
            THEN ARRAY['text', 'character varying', 'character', 'smallint', 'integer', 'bigint']::regtype[]
    END
$$;
COMMENT ON FUNCTION recsys.column_types_for(text) IS 'the column types a source role (user, item, bundle, basket, time, weight, price, stock, name, category) accepts';

-- Validates one column of a registered relation and returns its type.
CREATE FUNCTION recsys.check_source_column(relation regclass, col name, role text) RETURNS regtype
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ regtype;
    base regtype;
    allowed regtype[] := recsys.column_types_for(role);
BEGIN
    IF col IS NULL THEN
        RAISE EXCEPTION 'the % column of relation % must not be NULL', role, relation
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT a.atttypid::regtype,
           CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END::regtype
      INTO typ, base
      FROM pg_catalog.pg_attribute a
      JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
     WHERE a.attrelid = relation AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column % does not exist in relation %', pg_catalog.quote_ident(col), relation
            USING ERRCODE = 'undefined_column',
                  HINT = pg_catalog.format('Pass the name of the %s column of %s as it appears in \d.', role, relation);
    END IF;
    IF NOT base = ANY (allowed) THEN
        RAISE EXCEPTION 'column % of relation % has type %, which cannot be a % column',
                        pg_catalog.quote_ident(col), relation, typ, role
            USING ERRCODE = 'datatype_mismatch',
                  HINT = pg_catalog.format('A %s column must have one of the types %s; a view with a cast can adapt it.',
                                           role, pg_catalog.array_to_string(allowed, ', '));
    END IF;
    RETURN typ;
END
$$;
COMMENT ON FUNCTION recsys.check_source_column(regclass, name, text) IS 'raises undefined_column or datatype_mismatch naming the column when it is missing from the relation or has a type the role cannot use; returns its type';

-- Common part of the register_* functions: checks the relation and every
-- named column, then stores the registration (replacing an earlier one).
CREATE FUNCTION recsys.register_source(kind text, relation regclass, roles text[], cols name[], n_required integer)
RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    relkind "char";
    colmap jsonb := '{}';
    typemap jsonb := '{}';
BEGIN
    IF relation IS NULL THEN
        RAISE EXCEPTION 'relation must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relkind INTO relkind FROM pg_catalog.pg_class c WHERE c.oid = relation;
    IF relkind IS NULL OR relkind NOT IN ('r', 'v', 'm', 'f', 'p') THEN
        RAISE EXCEPTION '% is not a table, view, materialized view or foreign table', relation
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT pg_catalog.has_table_privilege(relation, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied to read %', relation
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'recsys reads sources with the privileges of the role that calls recsys.prepare().';
    END IF;
    FOR i IN 1 .. pg_catalog.array_length(roles, 1) LOOP
        -- the first n_required roles are mandatory; optional ones may be NULL
        CONTINUE WHEN cols[i] IS NULL AND i > n_required;
        typemap := typemap || pg_catalog.jsonb_build_object(roles[i],
                       recsys.check_source_column(relation, cols[i], roles[i])::text);
        colmap := colmap || pg_catalog.jsonb_build_object(roles[i], cols[i]::text);
    END LOOP;
    INSERT INTO recsys.sources AS s (kind, relation, columns, column_types)
    VALUES (kind, relation, colmap, typemap)
    ON CONFLICT ON CONSTRAINT sources_pkey DO UPDATE
        SET relation = excluded.relation, columns = excluded.columns, column_types = excluded.column_types,
            registered_at = pg_catalog.now(), registered_by = current_user;
    RETURN pg_catalog.jsonb_build_object('kind', kind, 'relation', relation::text,
                                         'columns', colmap, 'types', typemap);
END
$$;
COMMENT ON FUNCTION recsys.register_source(text, regclass, text[], name[], integer) IS 'shared body of the register_* functions: validates the relation and columns, then stores the registration';

CREATE FUNCTION recsys.register_events(relation regclass, user_column name, item_column name,
                                       time_column name DEFAULT NULL, basket_column name DEFAULT NULL,
                                       weight_column name DEFAULT NULL) RETURNS jsonb
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT recsys.register_source('events', relation,
        ARRAY['user', 'item', 'time', 'basket', 'weight'],
        ARRAY[user_column, item_column, time_column, basket_column, weight_column], 2)
$$;
COMMENT ON FUNCTION recsys.register_events(regclass, name, name, name, name, name) IS 'registers the shop''s interaction relation (orders lines, clicks, carts): user and item ids (bigint or text), optional time, basket/order id and weight (rows with weight <= 0 are dropped as cancelled)';

CREATE FUNCTION recsys.register_items(relation regclass, item_column name, name_column name DEFAULT NULL,
                                      category_column name DEFAULT NULL, price_column name DEFAULT NULL,
                                      stock_column name DEFAULT NULL) RETURNS jsonb
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT recsys.register_source('items', relation,
        ARRAY['item', 'name', 'category', 'price', 'stock'],
        ARRAY[item_column, name_column, category_column, price_column, stock_column], 1)
$$;
COMMENT ON FUNCTION recsys.register_items(regclass, name, name, name, name, name) IS 'registers the product catalogue: item id, optional name, category, price and stock; once registered, events and bundles naming other items are dropped as unknown';

CREATE FUNCTION recsys.register_bundles(relation regclass, bundle_column name, item_column name) RETURNS jsonb
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT recsys.register_source('bundles', relation, ARRAY['bundle', 'item'], ARRAY[bundle_column, item_column], 2)
$$;
COMMENT ON FUNCTION recsys.register_bundles(regclass, name, name) IS 'registers curated bundles as (bundle id, item id) membership rows';

CREATE FUNCTION recsys.register_bundle_events(relation regclass, user_column name, bundle_column name,
                                              time_column name DEFAULT NULL) RETURNS jsonb
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT recsys.register_source('bundle_events', relation, ARRAY['user', 'bundle', 'time'],
                                  ARRAY[user_column, bundle_column, time_column], 2)
$$;
COMMENT ON FUNCTION recsys.register_bundle_events(regclass, name, name, name) IS 'registers bundle purchases (or other user-bundle interactions): user id, bundle id, optional time';

------------------------------------------------------------------------------
-- Id maps and prepared data
------------------------------------------------------------------------------

CREATE TABLE recsys.id_map (
    space      text NOT NULL CHECK (space IN ('user', 'item', 'bundle')),
    idx        integer NOT NULL CHECK (idx >= 0),
    ext_id     text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (space, idx),
    UNIQUE (space, ext_id)
);
COMMENT ON TABLE recsys.id_map IS 'external user, item and bundle ids (as text) to dense 0-based indexes; append-only, so indexes stored in weights stay valid';

CREATE TABLE recsys.events_clean (
    user_idx   integer NOT NULL,
    item_idx   integer NOT NULL,
    ts         timestamptz,
    basket_idx bigint,
    weight     real NOT NULL
);
CREATE INDEX ON recsys.events_clean (user_idx, ts);
COMMENT ON TABLE recsys.events_clean IS 'cleaned, deduplicated, id-mapped events written by recsys.prepare()';

CREATE TABLE recsys.user_items (
    user_idx integer NOT NULL,
    item_idx integer NOT NULL,
    n        integer NOT NULL,
    weight   real NOT NULL,
    last_ts  timestamptz,
    PRIMARY KEY (user_idx, item_idx)
);
CREATE INDEX ON recsys.user_items (item_idx);
COMMENT ON TABLE recsys.user_items IS 'distinct user-item pairs with event count, summed weight and last time';

CREATE TABLE recsys.bundle_items (
    bundle_idx integer NOT NULL,
    item_idx   integer NOT NULL,
    PRIMARY KEY (bundle_idx, item_idx)
);
CREATE INDEX ON recsys.bundle_items (item_idx);
COMMENT ON TABLE recsys.bundle_items IS 'cleaned bundle membership';

CREATE TABLE recsys.user_bundles (
    user_idx   integer NOT NULL,
    bundle_idx integer NOT NULL,
    n          integer NOT NULL,
    last_ts    timestamptz,
    PRIMARY KEY (user_idx, bundle_idx)
);
CREATE INDEX ON recsys.user_bundles (bundle_idx);
COMMENT ON TABLE recsys.user_bundles IS 'distinct user-bundle pairs (bundle purchases) with count and last time';

CREATE TABLE recsys.item_attrs (
    item_idx integer PRIMARY KEY,
    name     text,
    category text,
    price    double precision,
    in_stock boolean
);
COMMENT ON TABLE recsys.item_attrs IS 'item content from the registered catalogue: name, category, price, stock';

CREATE TABLE recsys.item_stats (
    item_idx integer PRIMARY KEY,
    n_users  integer NOT NULL,
    n_events integer NOT NULL
);
COMMENT ON TABLE recsys.item_stats IS 'item popularity: distinct users and events';

CREATE TABLE recsys.bundle_stats (
    bundle_idx      integer PRIMARY KEY,
    n_items         integer NOT NULL,
    n_users         integer NOT NULL,
    item_popularity real NOT NULL,
    -- small enough never to outweigh a personal signal; ranks the popularity tier
    pop_score       double precision NOT NULL
);
COMMENT ON TABLE recsys.bundle_stats IS 'bundle popularity: size, distinct buyers, mean distinct users of its items, and the popularity score that breaks ties and ranks cold start';

CREATE TABLE recsys.prepare_log (
    run_id      bigint NOT NULL,
    prepared_at timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,
    rule        text NOT NULL,
    rows        bigint NOT NULL
);
CREATE SEQUENCE recsys.prepare_run_seq;
COMMENT ON TABLE recsys.prepare_log IS 'what each recsys.prepare() run read, kept and dropped per source and rule';
COMMENT ON SEQUENCE recsys.prepare_run_seq IS 'run ids of recsys.prepare()';

-- Appends ids not yet mapped, numbered after the largest index in the space.
CREATE FUNCTION recsys.map_append(space text, new_ids text[]) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO recsys.id_map (space, idx, ext_id)
    SELECT map_append.space,
           (SELECT coalesce(max(m.idx), -1) FROM recsys.id_map m WHERE m.space = map_append.space)
             + row_number() OVER (ORDER BY length(x.id), x.id),
           x.id
      FROM (SELECT DISTINCT id FROM unnest(new_ids) AS u(id) WHERE id IS NOT NULL) x
     WHERE NOT EXISTS (SELECT 1 FROM recsys.id_map m WHERE m.space = map_append.space AND m.ext_id = x.id);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.map_append(text, text[]) IS 'adds unmapped external ids to a space (user, item, bundle) after its largest index, in (length, text) order so numeric ids keep their order; returns how many were added';

-- SQL expression reading one registered column as text (or NULL when unset).
CREATE FUNCTION recsys.source_expr(src recsys.sources, role text, cast_to text DEFAULT 'text') RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN src.columns ->> role IS NULL THEN 'NULL::' || cast_to
                ELSE pg_catalog.format('%I::%s', src.columns ->> role, cast_to) END
$$;
COMMENT ON FUNCTION recsys.source_expr(recsys.sources, text, text) IS 'quoted SQL expression that reads a registered column with a cast, or a typed NULL when the role is not registered';

CREATE FUNCTION recsys.prepare() RETURNS TABLE (source text, rule text, rows bigint)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    run bigint := nextval('recsys.prepare_run_seq');
    s recsys.sources;
    have_items boolean;
    have_bundles boolean;
    n bigint;
BEGIN
    -- one prepare at a time; serving keeps reading the previous data until commit
    IF NOT pg_try_advisory_xact_lock(hashtext('recsys.prepare')) THEN
        RAISE EXCEPTION 'another recsys.prepare() is running'
            USING ERRCODE = 'lock_not_available', HINT = 'Wait for it to commit, then run it again if needed.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM recsys.sources WHERE kind IN ('events', 'bundle_events')) THEN
        RAISE EXCEPTION 'no events are registered'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Call recsys.register_events(...) or recsys.register_bundle_events(...) first.';
    END IF;
    -- a registration stores the relation's oid: a dropped relation is named, not guessed
    FOR s IN SELECT * FROM recsys.sources LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = s.relation) THEN
            RAISE EXCEPTION 'the relation registered for % (oid %) no longer exists', s.kind, s.relation::oid
                USING ERRCODE = 'undefined_table',
                      HINT = pg_catalog.format('Register the %s again with recsys.register_%s(...).', s.kind, s.kind);
        END IF;
    END LOOP;
    -- staging lives in temp tables dropped at commit (twice in one transaction: drop first)
    IF pg_catalog.to_regclass('pg_temp.rs_report') IS NOT NULL THEN
        DROP TABLE rs_report, rs_items, rs_bundles, rs_events, rs_bevents;
    END IF;
    CREATE TEMP TABLE rs_report (source text, rule text, rows bigint, ord serial) ON COMMIT DROP;

    -- items
    SELECT * INTO s FROM recsys.sources WHERE kind = 'items';
    have_items := FOUND;
    CREATE TEMP TABLE rs_items (item text, name text, category text, price float8, in_stock boolean) ON COMMIT DROP;
    IF have_items THEN
        EXECUTE pg_catalog.format('INSERT INTO rs_items SELECT %s, %s, %s, %s, %s FROM %s',
            recsys.source_expr(s, 'item'), recsys.source_expr(s, 'name'), recsys.source_expr(s, 'category'),
            recsys.source_expr(s, 'price', 'float8'),
            CASE WHEN s.column_types ->> 'stock' = 'boolean' THEN recsys.source_expr(s, 'stock', 'boolean')
                 WHEN s.columns ? 'stock' THEN pg_catalog.format('(%I > 0)', s.columns ->> 'stock')
                 ELSE 'NULL::boolean' END,
            s.relation);
        GET DIAGNOSTICS n = ROW_COUNT;
        INSERT INTO rs_report (source, rule, rows) VALUES ('items', 'read', n);
        DELETE FROM rs_items WHERE item IS NULL;
        GET DIAGNOSTICS n = ROW_COUNT;
        INSERT INTO rs_report (source, rule, rows) VALUES ('items', 'null_key', n);
        -- one row per item id: the first one the source returned
        DELETE FROM rs_items a USING rs_items b
         WHERE a.item = b.item AND a.ctid > b.ctid;
        GET DIAGNOSTICS n = ROW_COUNT;
        INSERT INTO rs_report (source, rule, rows) VALUES ('items', 'duplicate', n);
        CREATE INDEX ON rs_items (item);
        ANALYZE rs_items;
    END IF;

    -- bundles
    SELECT * INTO s FROM recsys.sources WHERE kind = 'bundles';
    have_bundles := FOUND;
    CREATE TEMP TABLE rs_bundles (bundle text, item text) ON COMMIT DROP;
    IF have_bundles THEN
        EXECUTE pg_catalog.format('INSERT INTO rs_bundles SELECT %s, %s FROM %s',
            recsys.source_expr(s, 'bundle'), recsys.source_expr(s, 'item'), s.relation);
        PERFORM recsys.prepare_rules('bundles', 'rs_bundles', ARRAY['bundle', 'item'], have_items, 'item');
    END IF;

    -- events
    CREATE TEMP TABLE rs_events (usr text, item text, ts timestamptz, basket text, weight float8) ON COMMIT DROP;
    SELECT * INTO s FROM recsys.sources WHERE kind = 'events';
    IF FOUND THEN
        EXECUTE pg_catalog.format('INSERT INTO rs_events SELECT %s, %s, %s, %s, %s FROM %s',
            recsys.source_expr(s, 'user'), recsys.source_expr(s, 'item'),
            recsys.source_expr(s, 'time', 'timestamptz'), recsys.source_expr(s, 'basket'),
            recsys.source_expr(s, 'weight', 'float8'), s.relation);
        PERFORM recsys.prepare_rules('events', 'rs_events', ARRAY['usr', 'item'], have_items, 'item');
    END IF;

    -- bundle events
    CREATE TEMP TABLE rs_bevents (usr text, bundle text, ts timestamptz) ON COMMIT DROP;
    SELECT * INTO s FROM recsys.sources WHERE kind = 'bundle_events';
    IF FOUND THEN
        IF NOT have_bundles THEN
            RAISE EXCEPTION 'bundle events are registered but bundles are not'
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Call recsys.register_bundles(...) so recsys knows what each bundle holds.';
        END IF;
        EXECUTE pg_catalog.format('INSERT INTO rs_bevents SELECT %s, %s, %s FROM %s',
            recsys.source_expr(s, 'user'), recsys.source_expr(s, 'bundle'),
            recsys.source_expr(s, 'time', 'timestamptz'), s.relation);
        PERFORM recsys.prepare_rules('bundle_events', 'rs_bevents', ARRAY['usr', 'bundle'], true, 'bundle');
    END IF;

    -- customers erased by recsys.forget_user stay out, whatever the shop's tables still hold
    IF EXISTS (SELECT 1 FROM recsys.forgotten_users) THEN
        DELETE FROM rs_events WHERE recsys.user_digest(usr) IN (SELECT f.digest FROM recsys.forgotten_users f);
        GET DIAGNOSTICS n = ROW_COUNT;
        INSERT INTO rs_report (source, rule, rows) VALUES ('events', 'forgotten_user', n);
        DELETE FROM rs_bevents WHERE recsys.user_digest(usr) IN (SELECT f.digest FROM recsys.forgotten_users f);
        GET DIAGNOSTICS n = ROW_COUNT;
        INSERT INTO rs_report (source, rule, rows) VALUES ('bundle_events', 'forgotten_user', n);
    END IF;

    -- id maps: append new ids, never renumber
    INSERT INTO rs_report (source, rule, rows)
    VALUES ('item_map', 'new_ids', recsys.map_append('item', ARRAY(
                SELECT item FROM rs_items UNION SELECT item FROM rs_bundles UNION SELECT item FROM rs_events))),
           ('bundle_map', 'new_ids', recsys.map_append('bundle', ARRAY(SELECT bundle FROM rs_bundles))),
           ('user_map', 'new_ids', recsys.map_append('user', ARRAY(
                SELECT usr FROM rs_events UNION SELECT usr FROM rs_bevents)));

    -- prepared tables, rebuilt in this transaction (readers see the old ones until commit)
    DELETE FROM recsys.item_attrs;
    INSERT INTO recsys.item_attrs
    SELECT m.idx, i.name, i.category, i.price, i.in_stock
      FROM rs_items i JOIN recsys.id_map m ON m.space = 'item' AND m.ext_id = i.item;

    DELETE FROM recsys.bundle_items;
    INSERT INTO recsys.bundle_items
    SELECT DISTINCT b.idx, i.idx
      FROM rs_bundles x
      JOIN recsys.id_map b ON b.space = 'bundle' AND b.ext_id = x.bundle
      JOIN recsys.id_map i ON i.space = 'item' AND i.ext_id = x.item;

    DELETE FROM recsys.events_clean;
    INSERT INTO recsys.events_clean
    SELECT u.idx, i.idx, e.ts,
           CASE WHEN e.basket IS NOT NULL THEN dense_rank() OVER (ORDER BY e.basket) END,
           coalesce(e.weight, 1)
      FROM rs_events e
      JOIN recsys.id_map u ON u.space = 'user' AND u.ext_id = e.usr
      JOIN recsys.id_map i ON i.space = 'item' AND i.ext_id = e.item;

    DELETE FROM recsys.user_items;
    INSERT INTO recsys.user_items
    SELECT user_idx, item_idx, count(*), sum(weight), max(ts)
      FROM recsys.events_clean GROUP BY user_idx, item_idx;

    DELETE FROM recsys.user_bundles;
    INSERT INTO recsys.user_bundles
    SELECT u.idx, b.idx, count(*), max(e.ts)
      FROM rs_bevents e
      JOIN recsys.id_map u ON u.space = 'user' AND u.ext_id = e.usr
      JOIN recsys.id_map b ON b.space = 'bundle' AND b.ext_id = e.bundle
     GROUP BY u.idx, b.idx;

    DELETE FROM recsys.item_stats;
    INSERT INTO recsys.item_stats
    SELECT item_idx, count(*), sum(n) FROM recsys.user_items GROUP BY item_idx;

    DELETE FROM recsys.bundle_stats;
    INSERT INTO recsys.bundle_stats
    SELECT x.bundle_idx, x.n_items, x.n_users, x.item_popularity,
           1e-3 * ln(1 + x.n_users::float8) + 1e-6 * ln(1 + x.item_popularity::float8)
      FROM (SELECT bi.bundle_idx, count(*) AS n_items,
                   coalesce((SELECT count(*) FROM recsys.user_bundles ub WHERE ub.bundle_idx = bi.bundle_idx), 0) AS n_users,
                   avg(coalesce(st.n_users, 0)) AS item_popularity
              FROM recsys.bundle_items bi LEFT JOIN recsys.item_stats st USING (item_idx)
             GROUP BY bi.bundle_idx) x;

    ANALYZE recsys.id_map, recsys.events_clean, recsys.user_items, recsys.bundle_items,
            recsys.user_bundles, recsys.item_attrs, recsys.item_stats, recsys.bundle_stats;

    INSERT INTO rs_report (source, rule, rows)
    VALUES ('events', 'kept', (SELECT count(*) FROM recsys.events_clean)),
           ('bundles', 'kept', (SELECT count(*) FROM recsys.bundle_items)),
           ('bundle_events', 'kept', (SELECT coalesce(sum(n), 0) FROM recsys.user_bundles)),
           ('items', 'kept', (SELECT count(*) FROM recsys.item_attrs));
    INSERT INTO recsys.prepare_log (run_id, source, rule, rows)
    SELECT run, r.source, r.rule, r.rows FROM rs_report r ORDER BY r.ord;
    PERFORM recsys.serving_invalidate();
    RETURN QUERY SELECT r.source, r.rule, r.rows FROM rs_report r ORDER BY r.ord;
END
$$;
COMMENT ON FUNCTION recsys.prepare() IS 'reads the registered sources in place, drops rows by rule (null_key, non_positive_weight, unknown_item, unknown_bundle, duplicate), appends new ids to the id maps and rebuilds the prepared tables; returns and logs rows read, dropped and kept per source and rule';

-- Cleaning rules shared by the staged sources, applied in order:
-- null_key, non_positive_weight (events), unknown_<ref>, duplicate.
CREATE FUNCTION recsys.prepare_rules(source text, stage text, keys text[], check_ref boolean, ref text)
RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    ref_table text := CASE ref WHEN 'item' THEN 'rs_items' ELSE 'rs_bundles' END;
BEGIN
    EXECUTE pg_catalog.format('SELECT count(*) FROM %I', stage) INTO n;
    INSERT INTO rs_report (source, rule, rows) VALUES (prepare_rules.source, 'read', n);
    EXECUTE pg_catalog.format('DELETE FROM %I WHERE %I IS NULL OR %I IS NULL', stage, keys[1], keys[2]);
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO rs_report (source, rule, rows) VALUES (prepare_rules.source, 'null_key', n);
    IF stage = 'rs_events' THEN
        DELETE FROM rs_events WHERE weight <= 0 OR weight = 'NaN';
        GET DIAGNOSTICS n = ROW_COUNT;
        INSERT INTO rs_report (source, rule, rows) VALUES (prepare_rules.source, 'non_positive_weight', n);
    END IF;
    IF check_ref THEN
        EXECUTE pg_catalog.format('DELETE FROM %I s WHERE NOT EXISTS (SELECT 1 FROM %I r WHERE r.%I = s.%I)',
                                  stage, ref_table, ref, ref);
        GET DIAGNOSTICS n = ROW_COUNT;
        INSERT INTO rs_report (source, rule, rows) VALUES (prepare_rules.source, 'unknown_' || ref, n);
    END IF;
    -- exact duplicates: the same row twice (a repeat purchase at another time is kept)
    EXECUTE pg_catalog.format(
        'DELETE FROM %1$I WHERE ctid IN (SELECT ctid FROM (SELECT ctid, row_number() OVER (PARTITION BY s.*) AS rn FROM %1$I s) d WHERE d.rn > 1)',
        stage);
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO rs_report (source, rule, rows) VALUES (prepare_rules.source, 'duplicate', n);
END
$$;
COMMENT ON FUNCTION recsys.prepare_rules(text, text, text[], boolean, text) IS 'applies the cleaning rules of recsys.prepare() to one staged source and reports the rows each rule dropped';

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

CREATE FUNCTION recsys.rollback(model text) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target bigint;
BEGIN
    SELECT mv.version_id INTO target FROM recsys.model_versions mv
     WHERE mv.model = rollback.model AND mv.status = 'retired'
     ORDER BY mv.retired_at DESC, mv.version_id DESC LIMIT 1;
    IF target IS NULL THEN
        RAISE EXCEPTION 'model % has no retired version to roll back to', pg_catalog.quote_literal(coalesce(model, 'NULL'))
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM recsys.activate_version(target);
    RETURN target;
END
$$;
COMMENT ON FUNCTION recsys.rollback(text) IS 'reactivates the most recently retired version of a model; returns its version_id';

------------------------------------------------------------------------------
-- Serving: the baseline ranker (bundle view + item view + popularity)
------------------------------------------------------------------------------

CREATE FUNCTION recsys.check_serving_options(k integer, options jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key text;
BEGIN
    IF k IS NULL OR k < 1 THEN
        RAISE EXCEPTION 'k must be at least 1, got %', coalesce(k::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF k > 10000 THEN
        RAISE EXCEPTION 'k must be at most 10000, got %', k USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF options IS NULL OR pg_catalog.jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass ''{}'' for the defaults.';
    END IF;
    FOR key IN SELECT pg_catalog.jsonb_object_keys(options) LOOP
        IF key NOT IN ('exclude_taken') THEN
            RAISE EXCEPTION 'unknown option %', pg_catalog.quote_literal(key)
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Known options: exclude_taken.';
        END IF;
    END LOOP;
    IF options ? 'exclude_taken' AND pg_catalog.jsonb_typeof(options -> 'exclude_taken') <> 'boolean' THEN
        RAISE EXCEPTION 'option exclude_taken must be true or false' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN '{"exclude_taken": true}'::jsonb || options;
END
$$;
COMMENT ON FUNCTION recsys.check_serving_options(integer, jsonb) IS 'validates k (1..10000) and the serving options (exclude_taken: skip bundles the user already took, default true); returns the options with defaults filled in';

CREATE FUNCTION recsys.n_customers(n bigint) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT n || CASE WHEN n = 1 THEN ' customer' ELSE ' customers' END $$;
COMMENT ON FUNCTION recsys.n_customers(bigint) IS 'a count of customers in words for reasons: 1 customer, 2 customers';

CREATE FUNCTION recsys.rank_bundles(user_idx integer, k integer, exclude_taken boolean DEFAULT true)
RETURNS TABLE (rank integer, bundle_idx integer, score real, reason text)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH mine AS (
        SELECT ub.bundle_idx FROM recsys.user_bundles ub WHERE ub.user_idx = rank_bundles.user_idx
    ),
    -- bundle view: cosine co-occurrence over customers, per bundle already taken
    pairs AS (
        SELECT o.bundle_idx, m.bundle_idx AS via, count(*) AS co,
               count(*) / sqrt(max(sm.n_users)::float8 * max(so.n_users)) AS s
          FROM mine m
          JOIN recsys.user_bundles peer ON peer.bundle_idx = m.bundle_idx AND peer.user_idx <> rank_bundles.user_idx
          JOIN recsys.user_bundles o ON o.user_idx = peer.user_idx AND o.bundle_idx <> m.bundle_idx
          JOIN recsys.bundle_stats sm ON sm.bundle_idx = m.bundle_idx
          JOIN recsys.bundle_stats so ON so.bundle_idx = o.bundle_idx
         GROUP BY o.bundle_idx, m.bundle_idx
    ),
    bundle_view AS (
        SELECT p.bundle_idx, sum(p.s) AS s,
               (array_agg(p.via ORDER BY p.co DESC, p.via))[1] AS via,
               max(p.co) AS co
          FROM pairs p GROUP BY p.bundle_idx
    ),
    -- item view: items of the bundle the customer bought, rarer items count more
    item_view AS (
        SELECT bi.bundle_idx, count(*) AS n_common,
               sum(1 / ln(2 + coalesce(st.n_users, 0)::float8)) / sqrt(max(bs.n_items)::float8) AS s,
               (array_agg(bi.item_idx ORDER BY st.n_users DESC NULLS LAST, bi.item_idx))[1] AS via_item
          FROM recsys.user_items ui
          JOIN recsys.bundle_items bi ON bi.item_idx = ui.item_idx
          JOIN recsys.bundle_stats bs ON bs.bundle_idx = bi.bundle_idx
          LEFT JOIN recsys.item_stats st ON st.item_idx = bi.item_idx
         WHERE ui.user_idx = rank_bundles.user_idx
         GROUP BY bi.bundle_idx
    ),
    scored AS (
        SELECT bs.bundle_idx, bs.n_users, bs.item_popularity,
               coalesce(bv.s, 0) AS s_bundle, coalesce(iv.s, 0) AS s_item,
               coalesce(bv.s, 0) + coalesce(iv.s, 0) + bs.pop_score AS score,
               bv.via, bv.co, iv.n_common, iv.via_item
          FROM recsys.bundle_stats bs
          LEFT JOIN bundle_view bv ON bv.bundle_idx = bs.bundle_idx
          LEFT JOIN item_view iv ON iv.bundle_idx = bs.bundle_idx
         WHERE NOT (rank_bundles.exclude_taken AND bs.bundle_idx IN (SELECT mine.bundle_idx FROM mine))
         ORDER BY score DESC, bs.n_users DESC, bs.bundle_idx
         LIMIT rank_bundles.k
    )
    SELECT (row_number() OVER (ORDER BY sc.score DESC, sc.n_users DESC, sc.bundle_idx))::integer,
           sc.bundle_idx, sc.score::real,
           CASE
             WHEN sc.s_bundle > 0 AND sc.s_bundle >= sc.s_item THEN
               pg_catalog.format('taken by %s who also took bundle %s', recsys.n_customers(sc.co),
                                 (SELECT m.ext_id FROM recsys.id_map m WHERE m.space = 'bundle' AND m.idx = sc.via))
             WHEN sc.s_item > 0 THEN
               pg_catalog.format('has %s item%s you bought, like %s', sc.n_common,
                                 CASE WHEN sc.n_common > 1 THEN 's' ELSE '' END,
                                 coalesce((SELECT a.name FROM recsys.item_attrs a WHERE a.item_idx = sc.via_item),
                                          'item ' || (SELECT m.ext_id FROM recsys.id_map m
                                                       WHERE m.space = 'item' AND m.idx = sc.via_item)))
             -- the popularity tier, labelled for a customer recsys has never seen
             ELSE CASE WHEN rank_bundles.user_idx IS NULL THEN 'popular with all customers (new customer): '
                       ELSE 'popular: ' END
                  || CASE WHEN sc.n_users > 0 THEN pg_catalog.format('taken by %s', recsys.n_customers(sc.n_users))
                          -- no purchases of the bundle itself (or none registered): its items speak
                          WHEN sc.item_popularity >= 1 THEN
                            pg_catalog.format('its items were bought by %s on average',
                                              recsys.n_customers(pg_catalog.round(sc.item_popularity)::bigint))
                          ELSE 'a new bundle nobody has taken yet' END
           END
      FROM scored sc
     ORDER BY 1
$$;
COMMENT ON FUNCTION recsys.rank_bundles(integer, integer, boolean) IS 'baseline bundle ranking on dense indexes: bundle view (cosine co-occurrence of bundles over customers) plus item view (bundles holding items the user bought) plus popularity; NULL user_idx gives the labelled popularity tier';

CREATE FUNCTION recsys.recommend_bundles_baseline(user_id text, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, bundle_id text, items text[], score real, reason text)
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    opts jsonb := recsys.check_serving_options(k, options);
    u integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM recsys.bundle_stats) THEN
        RAISE EXCEPTION 'recsys has no prepared bundles'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Register bundles and events, then run SELECT * FROM recsys.prepare().';
    END IF;
    SELECT m.idx INTO u FROM recsys.id_map m WHERE m.space = 'user' AND m.ext_id = recommend_bundles_baseline.user_id;
    RETURN QUERY
    SELECT r.rank, b.ext_id,
           ARRAY(SELECT im.ext_id FROM recsys.bundle_items bi
                   JOIN recsys.id_map im ON im.space = 'item' AND im.idx = bi.item_idx
                  WHERE bi.bundle_idx = r.bundle_idx ORDER BY bi.item_idx),
           r.score, r.reason
      FROM recsys.rank_bundles(u, recommend_bundles_baseline.k, (opts ->> 'exclude_taken')::boolean) r
      JOIN recsys.id_map b ON b.space = 'bundle' AND b.idx = r.bundle_idx
     ORDER BY r.rank;
END
$$;
COMMENT ON FUNCTION recsys.recommend_bundles_baseline(text, integer, jsonb) IS 'the baseline ranker with ids as text (bundle co-occurrence, item view, popularity): what recommend_bundles serves while its model has no active version, and the item co-occurrence baseline of the quality harness; options: exclude_taken (default true)';

CREATE FUNCTION recommend_bundles(user_id text, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, bundle_id text, items text[], score real, reason text)
    AS 'MODULE_PATHNAME', 'recommend_bundles'
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    -- a reader may serve without reading histories; the C code pins search_path around its own queries
    SECURITY DEFINER;
COMMENT ON FUNCTION recommend_bundles(text, integer, jsonb) IS 'top-k bundles for a user (ids as text): rank, bundle_id, items, score, reason; served by the active version of the bundle model (option model, default ''default''), cached per backend until a version is activated; filters apply before the cut so k rows come back whenever k bundles pass; options: exclude_taken (true), repurchase_days, in_stock, max_price, min_categories, include_items, exclude_items, session (item ids of a visitor without history), model, version (serve that version rather than the active one); a running experiment serves each user the variant they are assigned to; an unknown user gets the labelled popularity and trend tier; with no active version, the baseline ranker';

CREATE FUNCTION recommend_bundles(user_id bigint, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, bundle_id bigint, items bigint[], score real, reason text)
    AS 'MODULE_PATHNAME', 'recommend_bundles'
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    -- a reader may serve without reading histories; the C code pins search_path around its own queries
    SECURITY DEFINER;
COMMENT ON FUNCTION recommend_bundles(bigint, integer, jsonb) IS 'top-k bundles for a user with integer ids: rank, bundle_id, items, score, reason; same ranking and options as the text form';

CREATE FUNCTION recsys.serving_invalidate() RETURNS void
    AS 'MODULE_PATHNAME', 'serving_invalidate'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION recsys.serving_invalidate() IS 'makes every backend reload its serving cache (model and prepared data) once this transaction commits; activate_version and prepare call it';

CREATE FUNCTION recsys.serving_status() RETURNS jsonb
    AS 'MODULE_PATHNAME', 'serving_status'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.serving_status() IS 'this backend''s serving cache: whether it is valid, the model and version it holds, how many times it was loaded and how many requests it served';

------------------------------------------------------------------------------
-- Serving items: recommend_items, complete_bundle, similar_items (over the refreshed features)
------------------------------------------------------------------------------

CREATE FUNCTION recsys.check_item_options(k integer, options jsonb, known text[]) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
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
    IF options ? 'max_price' AND (jsonb_typeof(options -> 'max_price') <> 'number' OR (options ->> 'max_price')::float8 < 0) THEN
        RAISE EXCEPTION 'option max_price must be a non-negative number' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF options ? 'in_stock' AND jsonb_typeof(options -> 'in_stock') <> 'boolean' THEN
        RAISE EXCEPTION 'option in_stock must be true or false' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF options ? 'exclude_bought' AND jsonb_typeof(options -> 'exclude_bought') <> 'boolean' THEN
        RAISE EXCEPTION 'option exclude_bought must be true or false' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN '{"exclude_bought": true, "in_stock": false}'::jsonb || options;
END
$$;
COMMENT ON FUNCTION recsys.check_item_options(integer, jsonb, text[]) IS 'validates k (1..10000) and item serving options (exclude_bought, in_stock, max_price) against the keys a function knows; returns them with defaults';

-- item filters shared by the item SRFs
CREATE FUNCTION recsys.item_passes(item_idx integer, opts jsonb) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT (NOT (opts ->> 'in_stock')::boolean OR coalesce(a.in_stock, true))
                            AND (NOT opts ? 'max_price' OR a.price <= (opts ->> 'max_price')::float8)
                       FROM recsys.item_attrs a WHERE a.item_idx = item_passes.item_idx),
                    NOT opts ? 'max_price')
$$;
COMMENT ON FUNCTION recsys.item_passes(integer, jsonb) IS 'whether an item passes the in_stock and max_price filters (an item without a price fails a price cap)';

CREATE FUNCTION recsys.item_label(item_idx integer) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT a.name FROM recsys.item_attrs a WHERE a.item_idx = item_label.item_idx),
                    'item ' || (SELECT m.ext_id FROM recsys.id_map m WHERE m.space = 'item' AND m.idx = item_label.item_idx))
$$;
COMMENT ON FUNCTION recsys.item_label(integer) IS 'an item''s name for reasons, or "item <id>"';

CREATE FUNCTION similar_items(item text, k integer DEFAULT 10)
RETURNS TABLE (rank integer, item_id text, score real, reason text)
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    i integer;
BEGIN
    PERFORM recsys.check_item_options(k, '{}', '{}');
    SELECT m.idx INTO i FROM recsys.id_map m WHERE m.space = 'item' AND m.ext_id = similar_items.item;
    IF i IS NULL THEN
        RAISE EXCEPTION 'unknown item %', quote_literal(similar_items.item) USING ERRCODE = 'undefined_object',
            HINT = 'Items become known when recsys.prepare() reads them from the registered sources.';
    END IF;
    RETURN QUERY
    WITH together AS (
        -- bought together: the strongest association rules from this item
        SELECT p.item_b AS idx, 1 AS tier, (p.confidence * ln(1 + p.lift))::real AS s,
               format('bought together in %s (lift %s)',
                      p.together || CASE WHEN p.together = 1 THEN ' order' ELSE ' orders' END, round(p.lift::numeric, 1)) AS why
          FROM recsys.item_pair_stats p WHERE p.item_a = i
    ), content AS (
        -- the content vector (category, price band) for items without co-occurrence, new ones included
        SELECT f.item_idx AS idx, 2 AS tier,
               ((SELECT sum(a * b) FROM unnest(f.content, me.content) AS t(a, b)) + 0.001 * ln(1 + f.buyers))::real AS s,
               format('similar product: %s%s', coalesce(f.category, 'same kind'),
                      CASE WHEN f.price_band = me.price_band THEN ', same price band' ELSE '' END) AS why
          FROM recsys.item_features f, recsys.item_features me
         WHERE me.item_idx = i AND f.item_idx <> i
           AND f.item_idx NOT IN (SELECT t.idx FROM together t)
    ), ranked AS (
        SELECT * FROM together UNION ALL SELECT * FROM content
    )
    SELECT (row_number() OVER (ORDER BY r.tier, r.s DESC, r.idx))::int, m.ext_id, r.s, r.why
      FROM ranked r JOIN recsys.id_map m ON m.space = 'item' AND m.idx = r.idx
     ORDER BY r.tier, r.s DESC, r.idx LIMIT k;
END
$$;
COMMENT ON FUNCTION similar_items(text, integer) IS 'items like an item: bought together (association rules from recsys.item_pair_stats, by confidence and lift), then items with the closest content vector (category, price band), which is how a new item gets neighbours on its first day; unknown item: ERROR';

CREATE FUNCTION recommend_items(user_id text, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, item_id text, score real, reason text)
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    opts jsonb := recsys.check_item_options(k, options, '{exclude_bought,in_stock,max_price}');
    u integer;
BEGIN
    SELECT m.idx INTO u FROM recsys.id_map m WHERE m.space = 'user' AND m.ext_id = recommend_items.user_id;
    RETURN QUERY
    WITH mine AS (
        SELECT ui.item_idx FROM recsys.user_items ui WHERE ui.user_idx = u
    ), together AS (
        SELECT p.item_b AS idx, 1 AS tier, sum(p.confidence * ln(1 + p.lift))::real AS s,
               format('bought together with %s in %s (lift %s)',
                      recsys.item_label((array_agg(p.item_a ORDER BY p.confidence * ln(1 + p.lift) DESC))[1]),
                      max(p.together) || CASE WHEN max(p.together) = 1 THEN ' order' ELSE ' orders' END,
                      round(max(p.lift)::numeric, 1)) AS why
          FROM mine JOIN recsys.item_pair_stats p ON p.item_a = mine.item_idx
         GROUP BY p.item_b
    ), content AS (
        -- what the customer's categories offer, new and trending first: content features for the cold items
        SELECT f.item_idx AS idx, 2 AS tier,
               (coalesce((uf.category_affinity ->> f.category)::float8, 0) * (1 + f.trend) + 0.01 * ln(1 + f.buyers))::real AS s,
               CASE WHEN u IS NULL THEN format('trending (new customer): %s buyers, %s recently', f.buyers, f.recent_buyers)
                    WHEN f.buyers = 0 THEN format('new in %s, which you buy', f.category)
                    WHEN uf.category_affinity ? f.category THEN format('popular in %s, which you buy', f.category)
                    ELSE format('popular: %s buyers', f.buyers) END AS why
          FROM recsys.item_features f LEFT JOIN recsys.user_features uf ON uf.user_idx = u
         WHERE f.item_idx NOT IN (SELECT t.idx FROM together t)
    ), ranked AS (
        SELECT * FROM together UNION ALL SELECT * FROM content
    )
    SELECT (row_number() OVER (ORDER BY r.tier, r.s DESC, r.idx))::int, m.ext_id, r.s, r.why
      FROM ranked r JOIN recsys.id_map m ON m.space = 'item' AND m.idx = r.idx
     WHERE NOT ((opts ->> 'exclude_bought')::boolean AND r.idx IN (SELECT mine.item_idx FROM mine))
       AND recsys.item_passes(r.idx, opts)
     ORDER BY r.tier, r.s DESC, r.idx LIMIT k;
END
$$;
COMMENT ON FUNCTION recommend_items(text, integer, jsonb) IS 'top-k items for a customer: bought together with what they bought (association rules), then content (category affinity times trend, so new items in their categories appear); an unknown customer gets trending items, labelled; options exclude_bought (true), in_stock, max_price, applied before the cut';

CREATE FUNCTION complete_bundle(items text[], k integer DEFAULT 5, options jsonb DEFAULT '{}')
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
COMMENT ON FUNCTION complete_bundle(text[], integer, jsonb) IS 'what goes with this cart: items that complete mined bundles holding cart items (by lift), then items bought together with them (association rules), then popular items; unknown cart items are ignored; options in_stock, max_price, applied before the cut';

CREATE FUNCTION similar_items(item bigint, k integer DEFAULT 10)
RETURNS TABLE (rank integer, item_id bigint, score real, reason text)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT s.rank, s.item_id::bigint, s.score, s.reason FROM @extschema@.similar_items(item::text, k) s $$;
COMMENT ON FUNCTION similar_items(bigint, integer) IS 'similar_items for integer item ids';

CREATE FUNCTION recommend_items(user_id bigint, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, item_id bigint, score real, reason text)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT r.rank, r.item_id::bigint, r.score, r.reason FROM @extschema@.recommend_items(user_id::text, k, options) r $$;
COMMENT ON FUNCTION recommend_items(bigint, integer, jsonb) IS 'recommend_items for integer user and item ids';

CREATE FUNCTION complete_bundle(items bigint[], k integer DEFAULT 5, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, item_id bigint, score real, reason text)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT c.rank, c.item_id::bigint, c.score, c.reason FROM @extschema@.complete_bundle(items::text[], k, options) c $$;
COMMENT ON FUNCTION complete_bundle(bigint[], integer, jsonb) IS 'complete_bundle for integer item ids';

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

CREATE FUNCTION recsys.log_impressions(user_id text, targets text[], version_id bigint DEFAULT NULL,
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
    IF target_kind IS NULL OR target_kind NOT IN ('bundle', 'item') THEN
        RAISE EXCEPTION 'target_kind must be bundle or item' USING ERRCODE = 'invalid_parameter_value';
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
COMMENT ON FUNCTION recsys.log_impressions(text, text[], bigint, text, text, text) IS 'logs what was shown to a user, in rank order: bundle (or item) ids, the model version that ranked them, the experiment and variant; returns the rows logged';

CREATE FUNCTION recsys.log_feedback(user_id text, target text, event text, value numeric DEFAULT NULL,
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
    IF value IS NOT NULL AND value < 0 THEN
        RAISE EXCEPTION 'value must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO recsys.feedback (user_id, target, target_kind, event, value)
    VALUES (log_feedback.user_id, log_feedback.target, log_feedback.target_kind, log_feedback.event, log_feedback.value)
    RETURNING feedback_id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION recsys.log_feedback(text, text, text, numeric, text) IS 'logs what a user did with a bundle (or item): click, add_to_cart, purchase (value: revenue) or dismiss; returns the feedback id';

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

CREATE FUNCTION recsys.recommend_bundles_logged(user_id text, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, bundle_id text, items text[], score real, reason text)
    LANGUAGE plpgsql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    status jsonb;
    r record;
    shown text[] := '{}';
BEGIN
    -- recommend_bundles itself is STABLE (it cannot write); this wrapper serves once, then logs what it showed
    -- with the version that served it (one call: a second one could meet a newly activated version)
    FOR r IN SELECT * FROM @extschema@.recommend_bundles(user_id, k, options) LOOP
        rank := r.rank; bundle_id := r.bundle_id; items := r.items; score := r.score; reason := r.reason;
        shown := shown || r.bundle_id;
        RETURN NEXT;
    END LOOP;
    status := recsys.serving_status();
    PERFORM recsys.log_impressions(user_id, shown, nullif((status ->> 'last_version')::bigint, 0),
                                   status ->> 'last_experiment', status ->> 'last_variant');
END
$$;
COMMENT ON FUNCTION recsys.recommend_bundles_logged(text, integer, jsonb) IS 'recommend_bundles that also logs its impressions (ids in rank order, the model version that served them, the experiment and variant) into recsys.impressions; VOLATILE, since it writes';

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
CREATE SEQUENCE recsys.evaluation_seq;
COMMENT ON TABLE recsys.evaluations IS 'one row per evaluation, method (the model, most_popular, item_cooccurrence), K and metric (recall, ndcg, precision, f1, map, hit, mrr, coverage), averaged over users with a positive; BI tools read it';
COMMENT ON SEQUENCE recsys.evaluation_seq IS 'evaluation ids of recsys.evaluate';

CREATE FUNCTION recsys.evaluate(model text DEFAULT 'default', version bigint DEFAULT NULL, split regclass DEFAULT NULL,
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
BEGIN
    IF split IS NULL THEN
        RAISE EXCEPTION 'split must name a relation of held-out (user_id, bundle_id) pairs'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'For example the Youshu tune split loaded by bench/load_youshu.sh: youshu.user_bundle_tune.';
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
COMMENT ON FUNCTION recsys.evaluate(text, bigint, regclass, integer[]) IS 'scores a model version (default: the active one) on held-out (user, bundle) pairs in a relation (first two columns) with the CrossCBR/BGCN protocol, next to the most_popular and item_cooccurrence baselines on the same users; writes recsys.evaluations and returns each metric at each K with its lift over most popular';

CREATE FUNCTION recsys.split_pairs(method text, options jsonb DEFAULT '{}')
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
COMMENT ON FUNCTION recsys.split_pairs(text, jsonb) IS 'held-out user-bundle pairs of a split: random (a seeded fraction, default 0.2), time (each customer''s latest fraction of their own history), last_basket (each customer''s most recent purchase), kfold (every pair in one of folds folds, seeded); only customers with two or more bundles, and never all of one customer''s bundles except by kfold chance';

CREATE FUNCTION recsys.cross_validate(model text DEFAULT 'default', folds integer DEFAULT 5, options jsonb DEFAULT '{}')
RETURNS TABLE (method text, k integer, metric text, mean double precision, stddev double precision, folds_run integer)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    split_method text := coalesce(options ->> 'split', 'kfold');
    k_list integer[] := coalesce((SELECT array_agg(x::int) FROM jsonb_array_elements_text(options -> 'k_list') x), '{20}');
    o jsonb := recsys.train_options(coalesce(options -> 'train', '{}'));
    runs integer := CASE WHEN coalesce(options ->> 'split', 'kfold') = 'kfold' THEN folds ELSE 1 END;
    results jsonb := '[]';
    eid bigint;
    v bigint;
    scorer bytea;
    best bytea;
    best_ndcg float8;
    best_epoch integer;
    val record;
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
            v := recsys.add_version(model, NULL, 'training');
            PERFORM recsys.train_samples_for(v, o);
            scorer := recsys.model_init('mlp', jsonb_build_object('layers', jsonb_build_array(5, o -> 'hidden', 1), 'output', 'linear'),
                                        (o ->> 'seed')::bigint);
            best := scorer; best_ndcg := -1; best_epoch := 0;
            FOR epoch IN 1 .. (o ->> 'max_epochs')::int LOOP
                scorer := recsys.train_scorer_epoch(v, scorer, epoch, o);
                SELECT * INTO val FROM recsys.train_validate(v, scorer);
                IF val.ndcg20 > best_ndcg THEN
                    best := scorer; best_ndcg := val.ndcg20; best_epoch := epoch;
                END IF;
                EXIT WHEN epoch - best_epoch >= (o ->> 'patience')::int;
            END LOOP;
            UPDATE recsys.model_versions mv SET weights = recsys.train_final_weights(o, best, NULL), status = 'candidate'
             WHERE mv.version_id = v;
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

CREATE VIEW recsys.model_overview AS
SELECT v.model, m.kind, v.version_id, v.status, v.created_at, v.activated_at, v.retired_at, v.parent_version,
       (v.metrics ->> 'valid_recall20')::float8 AS valid_recall20, (v.metrics ->> 'valid_ndcg20')::float8 AS valid_ndcg20,
       (v.metrics ->> 'train_seconds')::float8 AS train_seconds, v.data_to, v.note
  FROM recsys.model_versions v JOIN recsys.models m ON m.name = v.model;
COMMENT ON VIEW recsys.model_overview IS 'BI: every model version with status, validation metrics, training time and lineage';

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

------------------------------------------------------------------------------
-- Erasure: recsys.forget_user
------------------------------------------------------------------------------

CREATE TABLE recsys.secrets (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
COMMENT ON TABLE recsys.secrets IS 'per-installation secrets: the salt of the digests that keep forgotten customers out (made by the first recsys.forget_user; pg_dump keeps it, so digests survive a restore)';

CREATE TABLE recsys.forgotten_users (
    digest       bytea PRIMARY KEY,
    forgotten_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recsys.forgotten_users IS 'salted SHA-256 digests of erased customers'' ids (never the ids), so recsys.prepare() keeps them out while the shop''s own tables still hold them';

CREATE FUNCTION recsys.user_digest(user_id text) RETURNS bytea
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT sha256((SELECT s.value FROM recsys.secrets s WHERE s.name = 'forget_salt') || convert_to(user_id, 'UTF8')) $$;
COMMENT ON FUNCTION recsys.user_digest(text) IS 'the salted SHA-256 digest of a customer id that recsys.forgotten_users keeps';

CREATE FUNCTION recsys.forget_user(user_id text) RETURNS jsonb
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
        -- the index is not reused: ids map append-only, a hole is harmless
        DELETE FROM recsys.id_map m WHERE m.space = 'user' AND m.idx = u;  GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('id_map', n);
        -- versions that may have learned from this customer are flagged for retraining
        UPDATE recsys.models md SET needs_retrain = true
         WHERE md.name IN (SELECT mv.model FROM recsys.model_versions mv
                            WHERE mv.status IN ('active', 'candidate') AND (mv.data_to IS NULL OR mv.data_to >= since));
        GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('models_to_retrain', n);
    END IF;
    DELETE FROM recsys.impressions i WHERE i.user_id = forget_user.user_id;  GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('impressions', n);
    DELETE FROM recsys.feedback f WHERE f.user_id = forget_user.user_id;     GET DIAGNOSTICS n = ROW_COUNT; counts := counts || jsonb_build_object('feedback', n);
    -- 32 random bytes from the server's strong random source, once per installation
    INSERT INTO recsys.secrets VALUES ('forget_salt',
        decode(replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''), 'hex'))
    ON CONFLICT (name) DO NOTHING;
    INSERT INTO recsys.forgotten_users (digest) VALUES (recsys.user_digest(forget_user.user_id)) ON CONFLICT DO NOTHING;
    -- every backend drops what it cached of this customer
    PERFORM recsys.serving_invalidate();
    RETURN counts;
END
$$;
COMMENT ON FUNCTION recsys.forget_user(text) IS 'erases a customer from every recsys table (id map, prepared events, histories, features, training samples, impressions, feedback; serving caches are dropped), keeps only a salted digest so recsys.prepare() leaves them out from now on, and flags models whose live versions may have learned from them (models.needs_retrain); returns the rows removed per table. Mined bundles need at least min_customers distinct customers, so none describes one person';

------------------------------------------------------------------------------
-- The embedded demo shop
------------------------------------------------------------------------------

-- Uniform [0, 1) from (seed, stream, key): a hash, so the generated shop does
-- not depend on the order in which a plan visits rows.
CREATE FUNCTION recsys.demo_uniform(seed bigint, stream integer, key bigint) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ((pg_catalog.hashint8extended(key * 1000003 + stream, seed) >> 11) & 9007199254740991)::float8
           / 9007199254740992.0
$$;
COMMENT ON FUNCTION recsys.demo_uniform(bigint, integer, bigint) IS 'deterministic uniform number in [0, 1) from a seed, a stream number and a key; used by recsys.demo_shop';

CREATE FUNCTION recsys.demo_shop(target_schema name DEFAULT 'shop', customers integer DEFAULT 3000,
                                 seed bigint DEFAULT 42, register boolean DEFAULT true)
RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    counts jsonb;
BEGIN
    IF customers IS NULL OR customers < 50 OR customers > 1000000 THEN
        RAISE EXCEPTION 'customers must be between 50 and 1000000, got %', coalesce(customers::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF target_schema IS NULL OR seed IS NULL OR register IS NULL THEN
        RAISE EXCEPTION 'target_schema, seed and register must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- a fresh schema: never touches existing shop data (fails if it exists)
    EXECUTE pg_catalog.format('CREATE SCHEMA %I', target_schema);
    PERFORM pg_catalog.set_config('search_path', pg_catalog.quote_ident(target_schema) || ', pg_catalog, pg_temp', true);

    -- 8 departments: an anchor product and 4 complements, 3 brands x 2 lines each
    CREATE TABLE departments (dept integer PRIMARY KEY, anchor text, base_price numeric,
                              brands text[], complements text[], complement_prices numeric[]);
    INSERT INTO departments VALUES
      (1, 'Smartphone', 699, '{Nova,Zenit,Orca}', '{Phone Case,Screen Protector,USB-C Charger,Wireless Earbuds}', '{19,12,25,89}'),
      (2, 'Laptop', 1199, '{Aero,Vertex,Lumen}', '{Laptop Sleeve,Wireless Mouse,USB-C Hub,Keyboard}', '{29,25,45,69}'),
      (3, 'Mirrorless Camera', 899, '{Kito,Prisma,Halden}', '{Memory Card,Tripod,Camera Bag,Lens Cleaning Kit}', '{29,49,59,15}'),
      (4, 'Espresso Machine', 499, '{Brava,Milo,Crema}', '{Coffee Beans,Milk Frother,Ceramic Mug,Descaler}', '{14,39,12,9}'),
      (5, 'Running Shoes', 129, '{Stride,Pace,Vela}', '{Running Socks,Water Bottle,Sports Watch,Running Cap}', '{12,15,149,19}'),
      (6, 'Game Console', 449, '{Pixel,Arcadia,Nexo}', '{Controller,Gaming Headset,Game,Charging Dock}', '{59,79,49,29}'),
      (7, 'Stroller', 399, '{Bloom,Nido,Koala}', '{Diaper Bag,Rain Cover,Cup Holder,Baby Blanket}', '{49,25,12,29}'),
      (8, 'Chef Knife', 89, '{Forge,Sora,Tama}', '{Cutting Board,Knife Sharpener,Apron,Knife Block}', '{35,29,19,49}');
    COMMENT ON TABLE departments IS 'demo shop: departments, each an anchor product with four complements';

    -- product_id = 1000 + series * 5 + slot; series = (dept, brand, line); slot 0 is the anchor
    CREATE TABLE products (
        product_id bigint PRIMARY KEY,
        name       text NOT NULL,
        category   text NOT NULL,
        dept       integer NOT NULL,
        brand      text NOT NULL,
        line       text NOT NULL,
        price      numeric(10,2) NOT NULL,
        stock      integer NOT NULL,
        created_at timestamptz NOT NULL
    );
    INSERT INTO products
    SELECT 1000 + sr.series * 5 + slot.n,
           d.brands[sr.b] || ' ' || sr.line || ' ' || CASE slot.n WHEN 0 THEN d.anchor ELSE d.complements[slot.n] END,
           CASE slot.n WHEN 0 THEN d.anchor ELSE d.complements[slot.n] END,
           d.dept, d.brands[sr.b], sr.line,
           round((CASE slot.n WHEN 0 THEN d.base_price ELSE d.complement_prices[slot.n] END)
                 * (0.9 + 0.15 * sr.b) * (CASE sr.line WHEN 'Pro' THEN 1.5 ELSE 1 END)) - 0.01,
           CASE WHEN recsys.demo_uniform(seed, 1, sr.series * 5 + slot.n) < 0.08 THEN 0
                ELSE 1 + floor(recsys.demo_uniform(seed, 2, sr.series * 5 + slot.n) * 80)::int END,
           timestamptz '2026-01-01 00:00+00' + (sr.series * 5 + slot.n) * interval '1 day'
      FROM departments d
     CROSS JOIN LATERAL (SELECT (d.dept - 1) * 6 + (b - 1) * 2 + (l - 1) AS series, b,
                                CASE l WHEN 1 THEN 'Lite' ELSE 'Pro' END AS line
                           FROM generate_series(1, 3) b, generate_series(1, 2) l) sr
     CROSS JOIN generate_series(0, 4) AS slot(n);
    COMMENT ON TABLE products IS 'demo shop: products with names, categories, prices and stock';

    -- customers: one or two favourite departments, a favourite brand, a taste for Pro lines
    CREATE TABLE customers (
        customer_id bigint PRIMARY KEY,
        name        text NOT NULL,
        city        text NOT NULL,
        fav_dept    integer NOT NULL,
        second_dept integer,
        fav_brand   integer NOT NULL,
        pro_taste   double precision NOT NULL,
        signed_up   date NOT NULL
    );
    INSERT INTO customers
    SELECT c,
           (ARRAY['Ana','Ben','Chen','Dara','Eli','Fatima','Goran','Hana','Ivan','Jia','Kofi','Lena','Mateo','Nora',
                  'Omar','Priya','Quinn','Rosa','Sven','Tara','Umar','Vera','Wei','Yusuf','Zoe'])
             [1 + floor(recsys.demo_uniform(seed, 10, c) * 25)::int] || ' ' ||
           (ARRAY['Li','Smith','Garcia','Muller','Rossi','Kim','Novak','Silva','Sato','Khan','Dubois','Jansen',
                  'Popov','Nguyen','Okafor','Larsen'])[1 + floor(recsys.demo_uniform(seed, 11, c) * 16)::int],
           (ARRAY['Berlin','Lisbon','Shanghai','Austin','Lagos','Osaka','Toronto','Krakow'])
             [1 + floor(recsys.demo_uniform(seed, 12, c) * 8)::int],
           1 + floor(recsys.demo_uniform(seed, 13, c) * 8)::int,
           CASE WHEN recsys.demo_uniform(seed, 14, c) < 0.45 THEN 1 + floor(recsys.demo_uniform(seed, 15, c) * 8)::int END,
           1 + floor(recsys.demo_uniform(seed, 16, c) * 3)::int,
           recsys.demo_uniform(seed, 17, c),
           date '2026-01-01' + floor(recsys.demo_uniform(seed, 18, c) * 120)::int
      FROM generate_series(1, customers) c;
    COMMENT ON TABLE customers IS 'demo shop: customers with hidden tastes that drive their orders';

    -- orders: 1 to 8 per customer over May to October 2026; about 3% cancelled, 1% guest checkouts
    CREATE TABLE orders (
        order_id    bigint PRIMARY KEY,
        customer_id bigint,
        ordered_at  timestamptz NOT NULL,
        status      text NOT NULL,
        dept        integer NOT NULL,
        series      integer NOT NULL
    );
    INSERT INTO orders
    SELECT o.order_id,
           CASE WHEN recsys.demo_uniform(seed, 20, o.order_id) < 0.01 THEN NULL ELSE c.customer_id END,
           timestamptz '2026-05-01 08:00+00' + recsys.demo_uniform(seed, 21, o.order_id) * interval '183 days',
           CASE WHEN recsys.demo_uniform(seed, 22, o.order_id) < 0.03 THEN 'cancelled' ELSE 'completed' END,
           o.dept,
           (o.dept - 1) * 6
             + (CASE WHEN recsys.demo_uniform(seed, 24, o.order_id) < 0.7 THEN c.fav_brand
                     ELSE 1 + floor(recsys.demo_uniform(seed, 25, o.order_id) * 3)::int END - 1) * 2
             + (CASE WHEN recsys.demo_uniform(seed, 26, o.order_id) < c.pro_taste THEN 1 ELSE 0 END)
      FROM customers c
     CROSS JOIN LATERAL (
        SELECT c.customer_id * 10 + j AS order_id,
               CASE WHEN recsys.demo_uniform(seed, 23, c.customer_id * 10 + j) < 0.85
                    THEN CASE WHEN c.second_dept IS NOT NULL AND recsys.demo_uniform(seed, 27, c.customer_id * 10 + j) < 0.4
                              THEN c.second_dept ELSE c.fav_dept END
                    ELSE 1 + floor(recsys.demo_uniform(seed, 28, c.customer_id * 10 + j) * 8)::int END AS dept
          FROM generate_series(1, 1 + floor(recsys.demo_uniform(seed, 19, c.customer_id) ^ 2 * 8)::int) j
     ) o;
    COMMENT ON TABLE orders IS 'demo shop: orders (status completed or cancelled; customer_id NULL for guest checkout)';

    -- order lines: the anchor and its complements of the same series, sometimes another brand's
    -- complement; about 0.5% name a discontinued product and 1% are entered twice
    CREATE TABLE order_items (
        order_id   bigint NOT NULL,
        product_id bigint NOT NULL,
        quantity   integer NOT NULL,
        unit_price numeric(10,2)
    );
    INSERT INTO order_items
    SELECT l.order_id,
           CASE WHEN recsys.demo_uniform(seed, 30, l.key) < 0.005 THEN 99000 + l.slot ELSE l.product_id END,
           1 + (recsys.demo_uniform(seed, 31, l.key) < 0.1)::int,
           p.price
      FROM (SELECT o.order_id, o.order_id * 5 + s.slot AS key, s.slot,
                   1000 + CASE WHEN s.slot > 0 AND recsys.demo_uniform(seed, 32, o.order_id * 5 + s.slot) < 0.15
                               THEN (o.dept - 1) * 6 + floor(recsys.demo_uniform(seed, 33, o.order_id * 5 + s.slot) * 6)::int
                               ELSE o.series END * 5 + s.slot AS product_id
              FROM orders o
             CROSS JOIN generate_series(0, 4) AS s(slot)
             WHERE recsys.demo_uniform(seed, 34, o.order_id * 5 + s.slot) < (ARRAY[0.55, 0.5, 0.35, 0.3, 0.2])[s.slot + 1]
                OR (s.slot = 1 AND recsys.demo_uniform(seed, 34, o.order_id * 5) >= 0.55)) l
      LEFT JOIN products p ON p.product_id = l.product_id;
    INSERT INTO order_items
    SELECT * FROM order_items oi
     WHERE recsys.demo_uniform(seed, 35, oi.order_id * 100003 + oi.product_id) < 0.01;
    COMMENT ON TABLE order_items IS 'demo shop: order lines, with the usual mess (a few duplicates and discontinued products)';

    CREATE VIEW order_lines AS
    SELECT o.customer_id, oi.product_id, o.ordered_at, o.order_id, oi.quantity
      FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
     WHERE o.status <> 'cancelled';
    COMMENT ON VIEW order_lines IS 'demo shop: completed order lines, the events recsys reads';

    -- curated bundles: per series a starter kit (anchor + 3 complements), per brand an accessory pack
    CREATE TABLE bundles (bundle_id bigint PRIMARY KEY, name text NOT NULL, dept integer NOT NULL);
    CREATE TABLE bundle_items (bundle_id bigint NOT NULL, product_id bigint NOT NULL, PRIMARY KEY (bundle_id, product_id));
    INSERT INTO bundles
    SELECT 500 + sr.series, min(p.brand || ' ' || p.line || ' ' || d.anchor) || ' starter kit', min(d.dept)
      FROM (SELECT DISTINCT (product_id - 1000) / 5 AS series FROM products) sr
      JOIN products p ON p.product_id = 1000 + sr.series * 5
      JOIN departments d ON d.dept = p.dept
     GROUP BY sr.series;
    INSERT INTO bundle_items
    SELECT 500 + (p.product_id - 1000) / 5, p.product_id FROM products p WHERE (p.product_id - 1000) % 5 IN (0, 1, 2, 3);
    INSERT INTO bundles
    SELECT 600 + (d.dept - 1) * 3 + b, d.brands[b] || ' ' || lower(d.anchor) || ' accessory pack', d.dept
      FROM departments d CROSS JOIN generate_series(1, 3) b;
    INSERT INTO bundle_items
    SELECT 600 + (p.dept - 1) * 3 + b, p.product_id
      FROM departments d CROSS JOIN generate_series(1, 3) b
      JOIN products p ON p.dept = d.dept AND p.brand = d.brands[b] AND p.line = 'Lite'
     WHERE (p.product_id - 1000) % 5 > 0;
    COMMENT ON TABLE bundles IS 'demo shop: curated bundles (starter kits and accessory packs)';
    COMMENT ON TABLE bundle_items IS 'demo shop: what each curated bundle holds';

    -- bundle purchases: 0 to 3 per customer, from favourite departments and brands
    CREATE TABLE bundle_orders (customer_id bigint NOT NULL, bundle_id bigint NOT NULL, ordered_at timestamptz NOT NULL);
    INSERT INTO bundle_orders
    SELECT c.customer_id,
           CASE WHEN recsys.demo_uniform(seed, 41, c.customer_id * 10 + j) < 0.5
                THEN 500 + (x.dept - 1) * 6 + (x.brand - 1) * 2
                       + (recsys.demo_uniform(seed, 42, c.customer_id * 10 + j) < c.pro_taste)::int
                ELSE 600 + (x.dept - 1) * 3 + x.brand END,
           timestamptz '2026-05-01 08:00+00' + recsys.demo_uniform(seed, 43, c.customer_id * 10 + j) * interval '183 days'
      FROM customers c
     CROSS JOIN LATERAL generate_series(1, floor(recsys.demo_uniform(seed, 40, c.customer_id) ^ 1.5 * 4)::int) j
     CROSS JOIN LATERAL (
        SELECT CASE WHEN c.second_dept IS NOT NULL AND recsys.demo_uniform(seed, 44, c.customer_id * 10 + j) < 0.4
                    THEN c.second_dept ELSE c.fav_dept END AS dept,
               CASE WHEN recsys.demo_uniform(seed, 45, c.customer_id * 10 + j) < 0.7 THEN c.fav_brand
                    ELSE 1 + floor(recsys.demo_uniform(seed, 46, c.customer_id * 10 + j) * 3)::int END AS brand
     ) x;
    COMMENT ON TABLE bundle_orders IS 'demo shop: bundle purchases';

    SELECT pg_catalog.jsonb_build_object(
             'customers', (SELECT count(*) FROM customers), 'products', (SELECT count(*) FROM products),
             'orders', (SELECT count(*) FROM orders), 'order_items', (SELECT count(*) FROM order_items),
             'bundles', (SELECT count(*) FROM bundles), 'bundle_items', (SELECT count(*) FROM bundle_items),
             'bundle_orders', (SELECT count(*) FROM bundle_orders))
      INTO counts;

    IF register THEN
        PERFORM recsys.register_events(pg_catalog.format('%I.order_lines', target_schema)::regclass,
                                       'customer_id', 'product_id', 'ordered_at', 'order_id', 'quantity');
        PERFORM recsys.register_items(pg_catalog.format('%I.products', target_schema)::regclass,
                                      'product_id', 'name', 'category', 'price', 'stock');
        PERFORM recsys.register_bundles(pg_catalog.format('%I.bundle_items', target_schema)::regclass,
                                        'bundle_id', 'product_id');
        PERFORM recsys.register_bundle_events(pg_catalog.format('%I.bundle_orders', target_schema)::regclass,
                                              'customer_id', 'bundle_id', 'ordered_at');
    END IF;
    RETURN counts;
END
$fn$;
COMMENT ON FUNCTION recsys.demo_shop(name, integer, bigint, boolean) IS 'creates the deterministic demo shop in a new schema (customers, products, orders, order_items, order_lines view, bundles, bundle_items, bundle_orders) and, unless register is false, registers it as the recsys sources; returns row counts';

------------------------------------------------------------------------------
-- Features: sequences, item and customer profiles (C), mined bundles, refreshed together
------------------------------------------------------------------------------

CREATE FUNCTION recsys.user_sequences(max_len integer DEFAULT 50)
RETURNS TABLE (user_idx integer, items integer[], times timestamptz[])
    AS 'MODULE_PATHNAME', 'user_sequences'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.user_sequences(integer) IS 'each customer''s most recent items (at most max_len), oldest first, with their times (NULL when the events have none); the GRU''s input';

CREATE FUNCTION recsys.item_profiles(window_days integer DEFAULT 30)
RETURNS TABLE (item_idx integer, buyers bigint, recent_buyers bigint, trend double precision, category text,
               price double precision, price_band integer, content real[])
    AS 'MODULE_PATHNAME', 'item_profiles'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.item_profiles(integer) IS 'per item: distinct buyers, buyers in the last window_days of the data, trend (share of recent buyers over share of all buyers, 1 = steady), category, price, price band (quintile 0-4) and a content vector (one-hot category in name order, then one-hot price band) that lets a new item score on its first day';

CREATE FUNCTION recsys.user_profiles(window_days integer DEFAULT 30)
RETURNS TABLE (user_idx integer, recency_days double precision, frequency bigint, events bigint, recent_events bigint,
               monetary double precision, top_category text, category_affinity jsonb)
    AS 'MODULE_PATHNAME', 'user_profiles'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.user_profiles(integer) IS 'per customer: recency (days before the newest event), frequency (orders, or events without baskets), events, events in the last window_days, monetary value (price times quantity), top category and category affinity (share of events per category)';

CREATE TABLE recsys.item_features (
    item_idx      integer PRIMARY KEY,
    buyers        bigint NOT NULL,
    recent_buyers bigint NOT NULL,
    trend         double precision NOT NULL,
    category      text,
    price         double precision,
    price_band    integer,
    content       real[] NOT NULL
);
COMMENT ON TABLE recsys.item_features IS 'item profiles as of the last recsys.refresh_features(): popularity, trend, category, price band, content vector';

CREATE TABLE recsys.user_features (
    user_idx          integer PRIMARY KEY,
    recency_days      double precision,
    frequency         bigint NOT NULL,
    events            bigint NOT NULL,
    recent_events     bigint NOT NULL,
    monetary          double precision,
    top_category      text,
    category_affinity jsonb NOT NULL
);
COMMENT ON TABLE recsys.user_features IS 'customer profiles (RFM and category affinity) as of the last recsys.refresh_features()';

CREATE TABLE recsys.item_pair_stats (
    item_a     integer NOT NULL,
    item_b     integer NOT NULL,
    together   bigint NOT NULL,
    support    double precision NOT NULL,
    confidence double precision NOT NULL,
    lift       double precision NOT NULL,
    PRIMARY KEY (item_a, item_b)
);
COMMENT ON TABLE recsys.item_pair_stats IS 'item co-occurrence with association-rule statistics (confidence of b given a), both directions, as of the last recsys.refresh_features(); complete_bundle, similar_items and recommend_items read it';

CREATE TABLE recsys.mined_bundles (
    bundle_key text PRIMARY KEY,
    items      integer[] NOT NULL,
    size       integer NOT NULL,
    baskets    bigint NOT NULL,
    customers  bigint NOT NULL,
    support    double precision NOT NULL,
    lift       double precision NOT NULL,
    categories integer NOT NULL,
    mined_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recsys.mined_bundles IS 'bundles mined from baskets: frequent itemsets of 2 to max_size items with support, lift over independence and categories spanned; each was bought together by at least min_customers distinct customers, so none reveals one person''s basket';

CREATE FUNCTION recsys.mine_bundles(options jsonb DEFAULT '{}') RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o jsonb;
    key text;
    n_baskets bigint;
    by_basket boolean;
    set_size integer;
    total bigint := 0;
BEGIN
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    o := '{"min_customers": 5, "min_lift": 1.5, "max_size": 3, "cross_category": false, "max_basket": 50}'::jsonb || options;
    FOR key IN SELECT jsonb_object_keys(options) LOOP
        IF key NOT IN ('min_customers', 'min_lift', 'max_size', 'cross_category', 'max_basket') THEN
            RAISE EXCEPTION 'unknown option %', quote_literal(key) USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Known options: min_customers, min_lift, max_size, cross_category, max_basket.';
        END IF;
    END LOOP;
    -- the privacy floor: a bundle of one or two customers' baskets would expose them
    IF (o ->> 'min_customers')::int < 2 OR (o ->> 'max_size')::int NOT BETWEEN 2 AND 5 THEN
        RAISE EXCEPTION 'min_customers must be at least 2 and max_size from 2 to 5'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    by_basket := EXISTS (SELECT 1 FROM recsys.events_clean WHERE basket_idx IS NOT NULL);
    CREATE TEMP TABLE rs_baskets ON COMMIT DROP AS
    SELECT CASE WHEN by_basket THEN e.basket_idx ELSE e.user_idx END AS basket, min(e.user_idx) AS user_idx,
           array_agg(DISTINCT e.item_idx ORDER BY e.item_idx) AS items
      FROM recsys.events_clean e WHERE NOT by_basket OR e.basket_idx IS NOT NULL
     GROUP BY 1 HAVING count(DISTINCT e.item_idx) BETWEEN 2 AND (o ->> 'max_basket')::int;
    SELECT count(*) INTO n_baskets FROM rs_baskets;
    DELETE FROM recsys.mined_bundles;
    IF n_baskets = 0 THEN
        RETURN 0;
    END IF;
    CREATE TEMP TABLE rs_item_support ON COMMIT DROP AS
    SELECT i AS item_idx, count(*)::float8 / n_baskets AS support FROM rs_baskets, unnest(items) i GROUP BY i;
    CREATE UNIQUE INDEX ON rs_item_support (item_idx);
    ANALYZE rs_item_support;
    -- Apriori: itemsets of size s grow from frequent ones of size s - 1 by a larger item
    CREATE TEMP TABLE rs_frequent ON COMMIT DROP AS
    SELECT ARRAY[s.item_idx] AS items FROM rs_item_support s
     WHERE s.support * n_baskets >= (o ->> 'min_customers')::int;
    CREATE INDEX ON rs_baskets USING gin (items);
    ANALYZE rs_baskets;
    FOR set_size IN 2 .. (o ->> 'max_size')::int LOOP
        -- each frequent itemset grows by the larger items of the baskets that hold it (GIN finds them)
        CREATE TEMP TABLE rs_next ON COMMIT DROP AS
        SELECT f.items || x AS items, count(*) AS baskets, count(DISTINCT b.user_idx) AS customers
          FROM rs_frequent f
          JOIN rs_baskets b ON b.items @> f.items
          CROSS JOIN LATERAL unnest(b.items) x
         WHERE x > f.items[cardinality(f.items)]
           AND x IN (SELECT s.item_idx FROM rs_item_support s WHERE s.support * n_baskets >= (o ->> 'min_customers')::int)
         GROUP BY 1
        HAVING count(DISTINCT b.user_idx) >= (o ->> 'min_customers')::int;
        INSERT INTO recsys.mined_bundles (bundle_key, items, size, baskets, customers, support, lift, categories)
        SELECT 'mined:' || array_to_string(n.items, '-'), n.items, set_size, n.baskets, n.customers,
               n.baskets::float8 / n_baskets,
               (n.baskets::float8 / n_baskets) / (SELECT exp(sum(ln(s.support))) FROM rs_item_support s WHERE s.item_idx = ANY (n.items)),
               (SELECT count(DISTINCT a.category) FROM recsys.item_attrs a WHERE a.item_idx = ANY (n.items))
          FROM rs_next n;
        DELETE FROM recsys.mined_bundles m
         WHERE m.size = set_size
           AND (m.lift < (o ->> 'min_lift')::float8 OR ((o ->> 'cross_category')::boolean AND m.categories < 2));
        DROP TABLE rs_frequent;
        ALTER TABLE rs_next RENAME TO rs_frequent;
        EXIT WHEN NOT EXISTS (SELECT 1 FROM rs_frequent);
    END LOOP;
    SELECT count(*) INTO total FROM recsys.mined_bundles;
    DROP TABLE IF EXISTS rs_frequent, rs_item_support, rs_baskets;
    RETURN total;
END
$$;
COMMENT ON FUNCTION recsys.mine_bundles(jsonb) IS 'mines bundles from baskets (or from customers'' histories when events have no basket) into recsys.mined_bundles: Apriori itemsets of 2 to max_size (3) items bought together by at least min_customers (5, never below 2) distinct customers, with lift at least min_lift (1.5), optionally spanning two or more categories (cross_category); baskets over max_basket (50) items are skipped; returns the count';

CREATE FUNCTION recsys.refresh_features(options jsonb DEFAULT '{}') RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    window_days integer := coalesce((options ->> 'window_days')::int, 30);
    min_count integer := coalesce((options ->> 'min_pair_count')::int, 2);
    result jsonb;
BEGIN
    DELETE FROM recsys.item_features;
    INSERT INTO recsys.item_features SELECT * FROM recsys.item_profiles(window_days);
    DELETE FROM recsys.user_features;
    INSERT INTO recsys.user_features SELECT * FROM recsys.user_profiles(window_days);
    DELETE FROM recsys.item_pair_stats;
    INSERT INTO recsys.item_pair_stats SELECT * FROM recsys.item_pairs(min_count);
    result := jsonb_build_object('items', (SELECT count(*) FROM recsys.item_features),
                                 'customers', (SELECT count(*) FROM recsys.user_features),
                                 'item_pairs', (SELECT count(*) FROM recsys.item_pair_stats),
                                 'mined_bundles', recsys.mine_bundles(coalesce(options -> 'mining', '{}')));
    RETURN result;
END
$$;
COMMENT ON FUNCTION recsys.refresh_features(jsonb) IS 'recomputes item_features, user_features, item_pair_stats and mined_bundles from the prepared data; options window_days (30), min_pair_count (2), mining (options of recsys.mine_bundles); recsys.train calls it first';

------------------------------------------------------------------------------
-- The bundle ranker: sparse EASE over item-view-augmented users, reranked by a learned MLP
------------------------------------------------------------------------------

CREATE FUNCTION recsys.bundle_fit(options jsonb DEFAULT '{}') RETURNS bytea
    AS 'MODULE_PATHNAME', 'bundle_fit'
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.bundle_fit(jsonb) IS 'fits the bundle ranker on the prepared data: EASE over user rows X + beta * (idf-weighted item view, summing to 1), kept sparse (keep_b entries per bundle, keep_m per item); options lambda (500), beta (8), keep_b (256), keep_m (64), holdout_seed (leave one bundle out per customer with two or more, for validation); returns bundle weights';

CREATE FUNCTION recsys.bundle_samples(fit bytea, holdout_seed bigint, candidates integer DEFAULT 100)
RETURNS TABLE (user_idx integer, valid boolean, bundle_idx integer, x real[], y real)
    AS 'MODULE_PATHNAME', 'bundle_samples'
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.bundle_samples(bytea, bigint, integer) IS 'the learned scorer''s data: for each customer with a held-out bundle (holdout_seed as in the fit), the fit''s top candidates with their features x and y = 1 for the held-out bundle; valid marks the one customer in five kept for validation (a validating customer whose bundle was missed gets one row with a NULL bundle)';

CREATE FUNCTION recsys.bundle_attach(fit bytea, scorer bytea, encoder bytea DEFAULT NULL, candidates integer DEFAULT 100)
RETURNS bytea
    AS 'MODULE_PATHNAME', 'bundle_attach'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.bundle_attach(bytea, bytea, bytea, integer) IS 'one servable bundle model from a fit, an optional mlp scorer (5 features to 1 score) and an optional gru encoder (for session cold start); candidates is how many of the fit''s best bundles the scorer reranks per request';

CREATE FUNCTION recsys.bundle_part(weights bytea, part text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'bundle_part'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.bundle_part(bytea, text) IS 'the scorer (mlp) or encoder (gru) inside bundle weights as weights of their own, NULL when absent; incremental training warm-starts from them';

------------------------------------------------------------------------------
-- Training: CALL recsys.train(model, options)
------------------------------------------------------------------------------

CREATE TABLE recsys.train_samples (
    version_id bigint NOT NULL REFERENCES recsys.model_versions (version_id) ON DELETE CASCADE,
    user_idx   integer NOT NULL,
    valid      boolean NOT NULL,
    bundle_idx integer,
    x          real[],
    y          real NOT NULL
);
CREATE INDEX ON recsys.train_samples (version_id, valid);
COMMENT ON TABLE recsys.train_samples IS 'the learned scorer''s samples of a version being trained (from recsys.bundle_samples), kept until it finishes so an interrupted training resumes without refitting';

CREATE FUNCTION recsys.train_options(options jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- lambda, keep_m and patience chosen on the Youshu tune split (bench/youshu_quality.sh)
    defaults jsonb := '{"seed": 42, "lambda": 500, "beta": 8, "keep_b": 256, "keep_m": 64, "candidates": 100,
                        "hidden": 32, "lr": 0.01, "max_epochs": 30, "patience": 6, "gru_epochs": 1,
                        "gru_embed": 32, "gru_hidden": 64, "force": false, "resume": true, "incremental": false,
                        "features": true}';
    key text;
    o jsonb;
BEGIN
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass ''{}'' for the defaults.';
    END IF;
    FOR key IN SELECT jsonb_object_keys(options) LOOP
        IF NOT defaults ? key THEN
            RAISE EXCEPTION 'unknown training option %', quote_literal(key)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Known options: ' || (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(defaults) k) || '.';
        END IF;
        IF jsonb_typeof(options -> key) <> jsonb_typeof(defaults -> key) THEN
            RAISE EXCEPTION 'training option % must be a %', quote_literal(key), jsonb_typeof(defaults -> key)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    o := defaults || options;
    IF (o ->> 'max_epochs')::int NOT BETWEEN 1 AND 1000 OR (o ->> 'patience')::int NOT BETWEEN 1 AND 1000
       OR (o ->> 'gru_epochs')::int NOT BETWEEN 0 AND 100 OR (o ->> 'candidates')::int NOT BETWEEN 1 AND 10000
       OR (o ->> 'hidden')::int NOT BETWEEN 1 AND 1024 OR NOT (o ->> 'lr')::float8 > 0 THEN
        RAISE EXCEPTION 'training option out of range: max_epochs 1..1000, patience 1..1000, gru_epochs 0..100, candidates 1..10000, hidden 1..1024, lr > 0'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN o;
END
$$;
COMMENT ON FUNCTION recsys.train_options(jsonb) IS 'validates recsys.train options and fills in defaults: seed (42), lambda (500), beta (8), keep_b (256), keep_m (64), candidates (100), hidden (32), lr (0.01), max_epochs (30), patience (6), gru_epochs (1), gru_embed (32), gru_hidden (64), force (false), resume (true), incremental (false), features (true: refresh item and customer features and mined bundles first)';

-- validation Recall@20 and NDCG@20 of a scorer on the held-out bundles of a version's validating customers
CREATE FUNCTION recsys.train_validate(version_id bigint, scorer bytea)
RETURNS TABLE (recall20 double precision, ndcg20 double precision, users bigint)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH scored AS (
        SELECT s.user_idx, s.y, s.bundle_idx,
               CASE WHEN train_validate.scorer IS NULL THEN s.x[2]
                    ELSE (recsys.mlp_forward(train_validate.scorer, s.x))[1] END AS p
          FROM recsys.train_samples s
         WHERE s.version_id = train_validate.version_id AND s.valid AND s.bundle_idx IS NOT NULL
    ), ranked AS (
        SELECT sc.user_idx, sc.y, row_number() OVER (PARTITION BY sc.user_idx ORDER BY sc.p DESC, sc.bundle_idx) AS rk
          FROM scored sc
    ), users AS (
        SELECT DISTINCT s.user_idx FROM recsys.train_samples s
         WHERE s.version_id = train_validate.version_id AND s.valid
    )
    SELECT coalesce(avg(CASE WHEN r.rk <= 20 THEN 1.0 ELSE 0.0 END), 0)::float8,
           coalesce(avg(CASE WHEN r.rk <= 20 THEN 1.0 / log(2, r.rk + 1.0) ELSE 0.0 END), 0)::float8,
           count(*)
      FROM users u LEFT JOIN ranked r ON r.user_idx = u.user_idx AND r.y = 1
$$;
COMMENT ON FUNCTION recsys.train_validate(bigint, bytea) IS 'Recall@20 and NDCG@20 (one held-out bundle per customer, so both are per-customer hit measures) of a scorer, or of the fit alone when scorer is NULL, over the validating customers of a version in training';

-- the steps of a training, shared by recsys.train (which commits between them) and recsys.cross_validate
CREATE FUNCTION recsys.train_samples_for(version_id bigint, o jsonb, feedback_since timestamptz DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fit bytea := recsys.bundle_fit(jsonb_build_object('lambda', o -> 'lambda', 'beta', o -> 'beta',
                                   'keep_b', o -> 'keep_b', 'keep_m', o -> 'keep_m', 'holdout_seed', o -> 'seed'));
    n bigint;
BEGIN
    DELETE FROM recsys.train_samples s WHERE s.version_id = train_samples_for.version_id;
    INSERT INTO recsys.train_samples
    SELECT train_samples_for.version_id, b.* FROM recsys.bundle_samples(fit, (o ->> 'seed')::bigint, (o ->> 'candidates')::int) b;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- feedback since then: a bundle bought or put in the cart after being shown is a positive; one shown and
    -- dismissed, or shown and ignored (no click, cart or purchase), a negative; a click alone says too little
    IF feedback_since IS NOT NULL THEN
        -- one bundle_features call per customer (it reads their history), not per bundle shown
        INSERT INTO recsys.train_samples (version_id, user_idx, valid, bundle_idx, x, y)
        SELECT train_samples_for.version_id, g.user_idx, false, g.bundles[j],
               ARRAY(SELECT unnest(ff.x[j:j][1:5])), g.ys[j]
          FROM (SELECT l.user_idx, array_agg(l.bundle_idx ORDER BY l.bundle_idx) AS bundles,
                       array_agg(l.y ORDER BY l.bundle_idx) AS ys
                  FROM (SELECT u.idx AS user_idx, b.idx AS bundle_idx,
                       CASE WHEN bool_or(f.event IN ('purchase', 'add_to_cart')) THEN 1
                            WHEN bool_or(f.event = 'dismiss') OR count(f.*) = 0 THEN 0 END::real AS y
                  FROM recsys.impressions i
                  JOIN recsys.id_map u ON u.space = 'user' AND u.ext_id = i.user_id
                  JOIN recsys.id_map b ON b.space = 'bundle' AND b.ext_id = i.target
                  LEFT JOIN recsys.feedback f ON f.user_id = i.user_id AND f.target = i.target AND f.target_kind = 'bundle'
                                             AND f.at >= i.shown_at
                 WHERE i.target_kind = 'bundle' AND i.shown_at >= feedback_since
                 GROUP BY 1, 2) l
                 WHERE l.y IS NOT NULL
                 GROUP BY l.user_idx) g
         CROSS JOIN LATERAL (SELECT recsys.bundle_features(fit, g.user_idx, g.bundles) AS x) ff
         CROSS JOIN LATERAL generate_subscripts(g.bundles, 1) AS j;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.train_samples_for(bigint, jsonb, timestamptz) IS 'a training step: the fit with one held-out bundle per customer (seed) and the scorer''s samples it yields, plus, when feedback_since is given, one sample per bundle shown since then (bought or carted: 1; dismissed or ignored: 0), stored for the version; returns the held-out sample count';

CREATE FUNCTION recsys.bundle_features(fit bytea, user_idx integer, bundles integer[]) RETURNS real[]
    AS 'MODULE_PATHNAME', 'bundle_features'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.bundle_features(bytea, integer, integer[]) IS 'the scorer''s features (one row of 5 per bundle index) of bundles for a customer under a fit, from the customer''s prepared history';

CREATE FUNCTION recsys.train_scorer_epoch(version_id bigint, scorer bytea, epoch integer, o jsonb) RETURNS bytea
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    -- shuffled by customer per epoch in a subquery: an ORDER BY inside the aggregate would sort a copy of the
    -- weights argument with every row
    SELECT recsys.mlp_train(scorer, s.x, s.y, jsonb_build_object('lr', o -> 'lr', 'optimizer', 'adam', 'batch', 256))
      FROM (SELECT s.x, s.y FROM recsys.train_samples s
             WHERE s.version_id = train_scorer_epoch.version_id AND NOT s.valid
             ORDER BY hashint8(s.user_idx::bigint * 1000 + epoch), s.bundle_idx) s
$$;
COMMENT ON FUNCTION recsys.train_scorer_epoch(bigint, bytea, integer, jsonb) IS 'a training step: one epoch of the scorer over a version''s training samples (Adam, batch 256, shuffled by customer per epoch)';

CREATE FUNCTION recsys.train_final_weights(o jsonb, scorer bytea, encoder bytea) RETURNS bytea
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT recsys.bundle_attach(recsys.bundle_fit(jsonb_build_object('lambda', o -> 'lambda', 'beta', o -> 'beta',
                                                   'keep_b', o -> 'keep_b', 'keep_m', o -> 'keep_m')),
                                scorer, encoder, (o ->> 'candidates')::int)
$$;
COMMENT ON FUNCTION recsys.train_final_weights(jsonb, bytea, bytea) IS 'a training step: the fit on all prepared data with the scorer and encoder attached, the servable weights';

CREATE PROCEDURE recsys.train(model text DEFAULT 'default', options jsonb DEFAULT '{}')
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
    PERFORM pg_catalog.pg_advisory_unlock(lock_key);
    RAISE NOTICE 'recsys.train: version % of % %: validation Recall@20 %, NDCG@20 % (best epoch %), % s',
        v, model, CASE WHEN activated THEN 'activated' ELSE 'kept as candidate' END,
        round(best_recall::numeric, 4), round(best_ndcg::numeric, 4), best_epoch,
        round(extract(epoch FROM pg_catalog.clock_timestamp() - started)::numeric, 1);
END
$$;
COMMENT ON PROCEDURE recsys.train(text, jsonb) IS 'trains a bundle model end to end: fit with one held-out bundle per customer, learned scorer epochs (one committed training_runs row and checkpoint each, early stop on validation NDCG@20, resumable), GRU encoder epochs, final fit on all data; activates the new version only if its validation NDCG@20 is not below the active one''s (option force); one training per model at a time (advisory lock); options: see recsys.train_options';

CREATE FUNCTION recsys.schedule_training(model text, schedule text, options jsonb DEFAULT '{}') RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF model IS NULL OR model !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid model name %', quote_literal(coalesce(model, 'NULL'))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM recsys.train_options(options);
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database and cron.host, then CREATE EXTENSION pg_cron.';
    END IF;
    -- the job (one per model, rescheduling replaces it) runs the same CALL a DBA would type
    RETURN cron.schedule('recsys-train-' || model, schedule, format('CALL recsys.train(%L, %L)', model, options));
END
$$;
COMMENT ON FUNCTION recsys.schedule_training(text, text, jsonb) IS 'schedules CALL recsys.train(model, options) with pg_cron (cron syntax, e.g. ''0 3 * * *''); one job per model named recsys-train-MODEL, replaced when scheduled again; returns the pg_cron job id; needs pg_cron in this database';

CREATE FUNCTION recsys.unschedule_training(model text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN false;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM cron.job WHERE jobname = 'recsys-train-' || model) THEN
        RETURN false;
    END IF;
    RETURN cron.unschedule('recsys-train-' || model);
END
$$;
COMMENT ON FUNCTION recsys.unschedule_training(text) IS 'removes the pg_cron job of recsys.schedule_training for a model; false when there is none';

------------------------------------------------------------------------------
-- pg_dump keeps recsys state (extension member tables are otherwise skipped)
------------------------------------------------------------------------------
-- (one call per statement: each call updates the pg_extension row)
SELECT pg_catalog.pg_extension_config_dump('recsys.sources', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.id_map', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.events_clean', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.user_items', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.bundle_items', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.user_bundles', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.item_attrs', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.item_stats', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.bundle_stats', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.prepare_log', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.prepare_run_seq', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.models', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.model_versions', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.training_runs', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.train_samples', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.item_features', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.user_features', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.item_pair_stats', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.mined_bundles', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.experiments', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.secrets', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.forgotten_users', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.evaluations', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.evaluation_seq', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.impressions', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.feedback', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('recsys.impressions', 'impression_id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('recsys.feedback', 'feedback_id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('recsys.model_versions', 'version_id')::regclass, '');

------------------------------------------------------------------------------
-- Roles: recsys_admin (register, prepare, train, schedule, experiments) and recsys_reader (serving and BI views)
------------------------------------------------------------------------------
-- roles are cluster-wide: created once, kept if the extension is dropped
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'recsys_admin') THEN
        CREATE ROLE recsys_admin NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'recsys_reader') THEN
        CREATE ROLE recsys_reader NOLOGIN;
    END IF;
END $$;
GRANT USAGE ON SCHEMA recsys TO recsys_admin, recsys_reader;
GRANT ALL ON ALL TABLES IN SCHEMA recsys TO recsys_admin;
GRANT ALL ON ALL SEQUENCES IN SCHEMA recsys TO recsys_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA recsys TO recsys_admin;
GRANT EXECUTE ON ALL PROCEDURES IN SCHEMA recsys TO recsys_admin;
-- the serving functions run as their owner: only the two roles may call them
REVOKE EXECUTE ON FUNCTION @extschema@.recommend_bundles(text, integer, jsonb), @extschema@.recommend_bundles(bigint, integer, jsonb),
                           @extschema@.recommend_items(text, integer, jsonb), @extschema@.complete_bundle(text[], integer, jsonb),
                           @extschema@.similar_items(text, integer), recsys.experiment_report(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.recommend_bundles(text, integer, jsonb), @extschema@.recommend_bundles(bigint, integer, jsonb),
                          @extschema@.recommend_items(text, integer, jsonb), @extschema@.recommend_items(bigint, integer, jsonb),
                          @extschema@.complete_bundle(text[], integer, jsonb), @extschema@.complete_bundle(bigint[], integer, jsonb),
                          @extschema@.similar_items(text, integer), @extschema@.similar_items(bigint, integer),
                          recsys.experiment_report(text)
   TO recsys_admin, recsys_reader;
GRANT SELECT ON recsys.model_overview, recsys.training_curve, recsys.evaluation_history, recsys.bundle_performance,
                recsys.experiment_results TO recsys_reader;
