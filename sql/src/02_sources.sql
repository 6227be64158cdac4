-- recsys SQL source: sources -- the shop's own relations, registered by name and column (the Makefile assembles sql/src/*.sql into the install script)

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

------------------------------------------------------------------------------
-- pg_dump keeps recsys state (extension member tables are otherwise skipped)
------------------------------------------------------------------------------
-- (one call per statement: each call updates the pg_extension row)
SELECT pg_catalog.pg_extension_config_dump('recsys.sources', '');

-- Column types each role accepts (domains are checked by their base type).
--@begin recsys.column_types_for(text)
CREATE OR REPLACE FUNCTION recsys.column_types_for(role text) RETURNS regtype[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN role IN ('user', 'item', 'bundle', 'basket', 'promotion', 'target')
            THEN ARRAY['smallint', 'integer', 'bigint', 'text', 'character varying', 'character', 'uuid']::regtype[]
        WHEN role IN ('time', 'starts', 'ends')
            THEN ARRAY['timestamp with time zone', 'timestamp without time zone', 'date']::regtype[]
        WHEN role IN ('weight', 'price', 'discount')
            THEN ARRAY['smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision']::regtype[]
        WHEN role = 'stock'
            THEN ARRAY['smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision', 'boolean']::regtype[]
        WHEN role IN ('name', 'target_kind', 'discount_unit')
            THEN ARRAY['text', 'character varying', 'character']::regtype[]
        WHEN role = 'category'
            THEN ARRAY['text', 'character varying', 'character', 'smallint', 'integer', 'bigint']::regtype[]
        WHEN role = 'treated'
            THEN ARRAY['boolean']::regtype[]
    END
$$;
COMMENT ON FUNCTION recsys.column_types_for(text) IS 'the column types a source role (user, item, bundle, basket, time, weight, price, stock, name, category; for promotions promotion, target, discount, starts, ends, target_kind, discount_unit, treated) accepts';
--@end

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

--@begin recsys.register_bundles(regclass, name, name, name)
CREATE FUNCTION recsys.register_bundles(relation regclass, bundle_column name, item_column name,
                                        name_column name DEFAULT NULL) RETURNS jsonb
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT recsys.register_source('bundles', relation, ARRAY['bundle', 'item', 'name'],
                                  ARRAY[bundle_column, item_column, name_column], 2)
$$;
COMMENT ON FUNCTION recsys.register_bundles(regclass, name, name, name) IS 'registers curated bundles as (bundle id, item id) membership rows, with an optional name column (any row of a bundle may carry it; reasons and views show it, and bundles without one are named after their items)';
--@end

CREATE FUNCTION recsys.register_bundle_events(relation regclass, user_column name, bundle_column name,
                                              time_column name DEFAULT NULL) RETURNS jsonb
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT recsys.register_source('bundle_events', relation, ARRAY['user', 'bundle', 'time'],
                                  ARRAY[user_column, bundle_column, time_column], 2)
$$;
COMMENT ON FUNCTION recsys.register_bundle_events(regclass, name, name, name) IS 'registers bundle purchases (or other user-bundle interactions): user id, bundle id, optional time';
