-- recsys SQL source: prepare -- id maps and the prepared data (the Makefile assembles sql/src/*.sql into the install script)

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
SELECT pg_catalog.pg_extension_config_dump('recsys.id_map', '');

CREATE TABLE recsys.events_clean (
    user_idx   integer NOT NULL,
    item_idx   integer NOT NULL,
    ts         timestamptz,
    basket_idx bigint,
    weight     real NOT NULL
);
CREATE INDEX ON recsys.events_clean (user_idx, ts);
COMMENT ON TABLE recsys.events_clean IS 'cleaned, deduplicated, id-mapped events written by recsys.prepare()';
SELECT pg_catalog.pg_extension_config_dump('recsys.events_clean', '');

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
SELECT pg_catalog.pg_extension_config_dump('recsys.user_items', '');

CREATE TABLE recsys.bundle_items (
    bundle_idx integer NOT NULL,
    item_idx   integer NOT NULL,
    PRIMARY KEY (bundle_idx, item_idx)
);
CREATE INDEX ON recsys.bundle_items (item_idx);
COMMENT ON TABLE recsys.bundle_items IS 'cleaned bundle membership';
SELECT pg_catalog.pg_extension_config_dump('recsys.bundle_items', '');

CREATE TABLE recsys.user_bundles (
    user_idx   integer NOT NULL,
    bundle_idx integer NOT NULL,
    n          integer NOT NULL,
    last_ts    timestamptz,
    PRIMARY KEY (user_idx, bundle_idx)
);
CREATE INDEX ON recsys.user_bundles (bundle_idx);
COMMENT ON TABLE recsys.user_bundles IS 'distinct user-bundle pairs (bundle purchases) with count and last time';
SELECT pg_catalog.pg_extension_config_dump('recsys.user_bundles', '');

CREATE TABLE recsys.item_attrs (
    item_idx integer PRIMARY KEY,
    name     text,
    category text,
    price    double precision,
    in_stock boolean
);
COMMENT ON TABLE recsys.item_attrs IS 'item content from the registered catalogue: name, category, price, stock';
SELECT pg_catalog.pg_extension_config_dump('recsys.item_attrs', '');

CREATE TABLE recsys.item_stats (
    item_idx integer PRIMARY KEY,
    n_users  integer NOT NULL,
    n_events integer NOT NULL
);
COMMENT ON TABLE recsys.item_stats IS 'item popularity: distinct users and events';
SELECT pg_catalog.pg_extension_config_dump('recsys.item_stats', '');

CREATE TABLE recsys.bundle_stats (
    bundle_idx      integer PRIMARY KEY,
    n_items         integer NOT NULL,
    n_users         integer NOT NULL,
    item_popularity real NOT NULL,
    -- small enough never to outweigh a personal signal; ranks the popularity tier
    pop_score       double precision NOT NULL
);
COMMENT ON TABLE recsys.bundle_stats IS 'bundle popularity: size, distinct buyers, mean distinct users of its items, and the popularity score that breaks ties and ranks cold start';
SELECT pg_catalog.pg_extension_config_dump('recsys.bundle_stats', '');

-- what a person reads about a bundle: its name (registered, or built from its items), where it comes from, its price
--@begin recsys.bundle_attrs
CREATE TABLE recsys.bundle_attrs (
    bundle_idx integer PRIMARY KEY,
    name       text NOT NULL,
    source     text NOT NULL CHECK (source IN ('curated', 'mined')),
    price      double precision
);
COMMENT ON TABLE recsys.bundle_attrs IS 'each prepared bundle''s name (the registered name column, or its first three items'' names joined by " + "), source (curated: registered; mined: adopted from recsys.mined_bundles) and price (the sum of its items'' prices; NULL when one has none)';
COMMENT ON COLUMN recsys.bundle_attrs.bundle_idx IS 'dense bundle index (recsys.id_map space bundle)';
COMMENT ON COLUMN recsys.bundle_attrs.name IS 'the name reasons and views show';
COMMENT ON COLUMN recsys.bundle_attrs.source IS 'curated (registered by the shop) or mined (found in its baskets)';
COMMENT ON COLUMN recsys.bundle_attrs.price IS 'sum of the items'' prices; NULL when an item has no price';
SELECT pg_catalog.pg_extension_config_dump('recsys.bundle_attrs', '');
--@end

-- the attributes of the prepared bundles of one source that have none yet, set-based (a prepare names every bundle):
-- a registered name (names: bundle index -> name) or one built from the items, the first three by id, then how many
-- more; and the items' summed price
--@begin recsys.bundle_attrs_add(text, jsonb)
CREATE FUNCTION recsys.bundle_attrs_add(source text, names jsonb DEFAULT '{}') RETURNS bigint
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH items AS (
        SELECT bi.bundle_idx, coalesce(a.name, 'item ' || m.ext_id) AS label, a.price,
               row_number() OVER (PARTITION BY bi.bundle_idx ORDER BY m.ext_id) AS ord
          FROM recsys.bundle_items bi
          JOIN recsys.id_map m ON m.space = 'item' AND m.idx = bi.item_idx
          LEFT JOIN recsys.item_attrs a ON a.item_idx = bi.item_idx
         WHERE NOT EXISTS (SELECT 1 FROM recsys.bundle_attrs x WHERE x.bundle_idx = bi.bundle_idx)
    ), added AS (
        INSERT INTO recsys.bundle_attrs (bundle_idx, name, source, price)
        SELECT i.bundle_idx,
               coalesce(nullif(names ->> i.bundle_idx::text, ''),
                        pg_catalog.string_agg(CASE WHEN i.ord <= 3 THEN i.label END, ' + ' ORDER BY i.ord)
                        || CASE WHEN count(*) > 3 THEN pg_catalog.format(' + %s more', count(*) - 3) ELSE '' END),
               source, CASE WHEN bool_and(i.price IS NOT NULL) THEN sum(i.price) END
          FROM items i GROUP BY i.bundle_idx
        RETURNING 1)
    SELECT count(*) FROM added
$$;
COMMENT ON FUNCTION recsys.bundle_attrs_add(text, jsonb) IS 'adds recsys.bundle_attrs rows for the prepared bundles that have none, as the given source: the registered name from names (bundle index -> name), or one built from its items (the names, or ids, of its first three items by id joined by " + ", then "+ N more"), and the sum of the items'' prices (NULL when one has none); returns how many';
--@end

CREATE TABLE recsys.prepare_log (
    run_id      bigint NOT NULL,
    prepared_at timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,
    rule        text NOT NULL,
    rows        bigint NOT NULL
);
COMMENT ON TABLE recsys.prepare_log IS 'what each recsys.prepare() run read, kept and dropped per source and rule';
SELECT pg_catalog.pg_extension_config_dump('recsys.prepare_log', '');
CREATE SEQUENCE recsys.prepare_run_seq;
COMMENT ON SEQUENCE recsys.prepare_run_seq IS 'run ids of recsys.prepare()';
SELECT pg_catalog.pg_extension_config_dump('recsys.prepare_run_seq', '');

-- Appends ids not yet mapped, numbered after the largest index in the space.
--@begin recsys.map_append(text, text[])
CREATE OR REPLACE FUNCTION recsys.map_append(space text, new_ids text[]) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    first_idx integer;
BEGIN
    IF map_append.space IS NULL OR map_append.space NOT IN ('user', 'item', 'bundle') THEN
        RAISE EXCEPTION 'unknown id space %', quote_literal(coalesce(map_append.space, 'NULL'))
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use user, item or bundle.';
    END IF;
    -- a space's mark starts after its ids (none yet, or ids restored from a dump made before marks)
    INSERT INTO recsys.id_spaces (space, next_idx)
    SELECT map_append.space, coalesce(max(m.idx) + 1, 0) FROM recsys.id_map m WHERE m.space = map_append.space
    ON CONFLICT ON CONSTRAINT id_spaces_pkey DO NOTHING;
    SELECT s.next_idx INTO first_idx FROM recsys.id_spaces s WHERE s.space = map_append.space FOR UPDATE;
    -- rows written by hand past the mark: number after them (readers report them as corruption)
    first_idx := greatest(first_idx, (SELECT coalesce(max(m.idx), -1) + 1 FROM recsys.id_map m WHERE m.space = map_append.space));
    INSERT INTO recsys.id_map (space, idx, ext_id)
    SELECT map_append.space, first_idx - 1 + row_number() OVER (ORDER BY length(x.id), x.id), x.id
      FROM (SELECT DISTINCT id FROM unnest(new_ids) AS u(id) WHERE id IS NOT NULL) x
     WHERE NOT EXISTS (SELECT 1 FROM recsys.id_map m WHERE m.space = map_append.space AND m.ext_id = x.id);
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE recsys.id_spaces s SET next_idx = first_idx + n WHERE s.space = map_append.space;
    RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.map_append(text, text[]) IS 'adds unmapped external ids to a space (user, item, bundle) from its high-water mark (recsys.id_spaces), in (length, text) order so numeric ids keep their order; an index is never handed out twice; returns how many were added';
--@end

-- SQL expression reading one registered column as text (or NULL when unset).
--@begin recsys.source_expr(recsys.sources, text, text)
CREATE OR REPLACE FUNCTION recsys.source_expr(src recsys.sources, role text, cast_to text DEFAULT 'text') RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner name;
BEGIN
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        WITH RECURSIVE v(oid) AS (
            SELECT src.relation::oid
            UNION
            SELECT d.refobjid FROM v JOIN pg_rewrite rw ON rw.ev_class = v.oid
              JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                              AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid)
        SELECT r.rolname INTO owner
          FROM v JOIN pg_class c ON c.oid = v.oid JOIN pg_roles r ON r.oid = c.relowner
         WHERE c.relkind = 'v' AND NOT r.rolsuper LIMIT 1;
        IF owner IS NOT NULL THEN
            RAISE EXCEPTION 'the % source % reads a view owned by role %, and this session is a superuser', src.kind, src.relation, owner
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'A view runs the functions it calls as the role reading it: they would run with superuser rights.',
                      HINT = pg_catalog.format('Run recsys.prepare() as %I or as a role granted recsys_admin (schedule the job as that role), or register a table.', owner);
        END IF;
    END IF;
    RETURN CASE WHEN src.columns ->> role IS NULL THEN 'NULL::' || cast_to
                ELSE pg_catalog.format('%I::%s', src.columns ->> role, cast_to) END;
END
$$;
COMMENT ON FUNCTION recsys.source_expr(recsys.sources, text, text) IS 'quoted SQL expression that reads a registered column with a cast, or a typed NULL when the role is not registered';
--@end

-- the bundles' popularity, one rule for curated and mined bundles (recsys.adopt_mined_bundles)
--@begin recsys.bundle_stats_refresh()
CREATE FUNCTION recsys.bundle_stats_refresh() RETURNS void
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM recsys.bundle_stats;
    INSERT INTO recsys.bundle_stats
    SELECT x.bundle_idx, x.n_items, x.n_users, x.item_popularity,
           1e-3 * ln(1 + x.n_users::float8) + 1e-6 * ln(1 + x.item_popularity::float8)
      FROM (SELECT bi.bundle_idx, count(*) AS n_items,
                   coalesce((SELECT count(*) FROM recsys.user_bundles ub WHERE ub.bundle_idx = bi.bundle_idx), 0) AS n_users,
                   avg(coalesce(st.n_users, 0)) AS item_popularity
              FROM recsys.bundle_items bi LEFT JOIN recsys.item_stats st USING (item_idx)
             GROUP BY bi.bundle_idx) x;
$$;
COMMENT ON FUNCTION recsys.bundle_stats_refresh() IS 'rebuilds recsys.bundle_stats from the prepared bundles and bundle events: size, distinct buyers, mean buyers of the items, and the popularity score that breaks ties and ranks cold start';
--@end

-- a long call says where it is, at client_min_messages = notice, with the seconds since its statement began
--@begin recsys.progress(text, text)
CREATE FUNCTION recsys.progress(caller text, what text) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE NOTICE '%', format('%s: %s (%s s)', caller, what,
                             round(extract(epoch FROM clock_timestamp() - statement_timestamp())::numeric, 1));
END
$$;
COMMENT ON FUNCTION recsys.progress(text, text) IS 'a NOTICE of where a long call is (recsys.prepare, recsys.refresh_features), with the seconds since its statement began';
--@end

--@begin recsys.prepare()
CREATE OR REPLACE FUNCTION recsys.prepare() RETURNS TABLE (source text, rule text, rows bigint)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    -- sorts and hashes over every event: up to 256 MB each before they spill to temporary files
    SET work_mem = '256MB'
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
    IF pg_catalog.to_regclass('pg_temp.rs_user_items') IS NOT NULL THEN
        DROP TABLE rs_user_items;
    END IF;
    IF pg_catalog.to_regclass('pg_temp.rs_baskets') IS NOT NULL THEN
        DROP TABLE rs_baskets;
    END IF;
    CREATE TEMP TABLE rs_report (source text, rule text, rows bigint, ord serial) ON COMMIT DROP;

    -- items
    PERFORM recsys.progress('recsys.prepare', 'reading items');
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
    PERFORM recsys.progress('recsys.prepare', 'reading bundles');
    SELECT * INTO s FROM recsys.sources WHERE kind = 'bundles';
    have_bundles := FOUND;
    CREATE TEMP TABLE rs_bundles (bundle text, item text, name text) ON COMMIT DROP;
    IF have_bundles THEN
        EXECUTE pg_catalog.format('INSERT INTO rs_bundles SELECT %s, %s, %s FROM %s',
            recsys.source_expr(s, 'bundle'), recsys.source_expr(s, 'item'), recsys.source_expr(s, 'name'), s.relation);
        PERFORM recsys.prepare_rules('bundles', 'rs_bundles', ARRAY['bundle', 'item'], have_items, 'item');
    END IF;

    -- events
    PERFORM recsys.progress('recsys.prepare', 'reading events');
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
    PERFORM recsys.progress('recsys.prepare', 'reading bundle events');
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
    PERFORM recsys.progress('recsys.prepare', 'mapping ids');
    INSERT INTO rs_report (source, rule, rows)
    VALUES ('item_map', 'new_ids', recsys.map_append('item', ARRAY(
                SELECT item FROM rs_items UNION SELECT item FROM rs_bundles UNION SELECT item FROM rs_events))),
           ('bundle_map', 'new_ids', recsys.map_append('bundle', ARRAY(SELECT bundle FROM rs_bundles))),
           ('user_map', 'new_ids', recsys.map_append('user', ARRAY(
                SELECT usr FROM rs_events UNION SELECT usr FROM rs_bevents)));

    -- prepared tables, rebuilt in this transaction (readers see the old ones until commit)
    PERFORM recsys.progress('recsys.prepare', 'writing the prepared tables and statistics');
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
    DELETE FROM recsys.bundle_attrs;
    PERFORM recsys.bundle_attrs_add('curated', (
        SELECT coalesce(jsonb_object_agg(n.idx, n.name), '{}')
          FROM (SELECT b.idx, min(x.name) AS name
                  FROM rs_bundles x JOIN recsys.id_map b ON b.space = 'bundle' AND b.ext_id = x.bundle
                 WHERE x.name IS NOT NULL GROUP BY b.idx) n));

    -- baskets to dense indexes in their text order: from the distinct baskets (a dense_rank over the events sorted
    -- every event by basket, besides the sort below)
    CREATE TEMP TABLE rs_baskets ON COMMIT DROP AS
    SELECT b.basket, row_number() OVER (ORDER BY b.basket) AS idx
      FROM (SELECT DISTINCT e.basket FROM rs_events e WHERE e.basket IS NOT NULL) b;
    ANALYZE rs_baskets;
    DELETE FROM recsys.events_clean;
    INSERT INTO recsys.events_clean
    SELECT u.idx, i.idx, e.ts, k.idx, coalesce(e.weight, 1)
      FROM rs_events e
      JOIN recsys.id_map u ON u.space = 'user' AND u.ext_id = e.usr
      JOIN recsys.id_map i ON i.space = 'item' AND i.ext_id = e.item
      LEFT JOIN rs_baskets k ON k.basket = e.basket
     -- in the index's order: appending to a b-tree, not scattering into it
     ORDER BY 1, 3;

    -- the customer-item pairs change little between two runs: only what changed is written (deleting them all and
    -- inserting them again made every insert check its key against the deleted row, a heap visit each)
    CREATE TEMP TABLE rs_user_items ON COMMIT DROP AS
    SELECT user_idx, item_idx, count(*)::integer AS n, sum(weight)::real AS weight, max(ts) AS last_ts
      FROM recsys.events_clean GROUP BY user_idx, item_idx;
    DELETE FROM recsys.user_items x
     WHERE NOT EXISTS (SELECT 1 FROM rs_user_items r WHERE r.user_idx = x.user_idx AND r.item_idx = x.item_idx);
    UPDATE recsys.user_items x SET n = r.n, weight = r.weight, last_ts = r.last_ts
      FROM rs_user_items r
     WHERE r.user_idx = x.user_idx AND r.item_idx = x.item_idx
       AND (x.n, x.weight, x.last_ts) IS DISTINCT FROM (r.n, r.weight, r.last_ts);
    INSERT INTO recsys.user_items
    SELECT r.* FROM rs_user_items r
     WHERE NOT EXISTS (SELECT 1 FROM recsys.user_items x WHERE x.user_idx = r.user_idx AND x.item_idx = r.item_idx)
     ORDER BY r.user_idx, r.item_idx;

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

    PERFORM recsys.bundle_stats_refresh();
    -- promotions and who saw them, against the events just prepared
    PERFORM recsys.prepare_promotions();

    ANALYZE recsys.id_map, recsys.events_clean, recsys.user_items, recsys.bundle_items,
            recsys.user_bundles, recsys.item_attrs, recsys.item_stats, recsys.bundle_stats, recsys.bundle_attrs;

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
--@end

-- Cleaning rules shared by the staged sources, applied in order:
-- null_key, non_positive_weight (events), unknown_<ref>, duplicate.
-- Two passes over the staged rows, whatever their number: one counts what each rule drops (in rule order, so a
-- row counts once, for the first rule it breaks), one copies the distinct rows that break none into a fresh table
-- of the same name. (Deleting rule by rule rewrote the rows once per rule, and the duplicates took a sort of
-- whole rows: on 20 M events that was most of prepare's reading time.)
--@begin recsys.prepare_rules(text, text, text[], boolean, text)
CREATE OR REPLACE FUNCTION recsys.prepare_rules(source text, stage text, keys text[], check_ref boolean, ref text)
RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n_read bigint;
    n_null bigint;
    n_weight bigint;
    n_ref bigint;
    n_kept bigint;
    ref_table text := CASE ref WHEN 'item' THEN 'rs_items' ELSE 'rs_bundles' END;
    bad_key text := pg_catalog.format('(s.%I IS NULL OR s.%I IS NULL)', keys[1], keys[2]);
    bad_weight text := CASE WHEN stage = 'rs_events' THEN '(s.weight <= 0 OR s.weight = ''NaN'')' ELSE 'false' END;
    -- a hashed subplan: the references are the staged items or bundles, already cleaned (no NULL key)
    bad_ref text := CASE WHEN check_ref
                         THEN pg_catalog.format('(s.%I NOT IN (SELECT r.%I FROM %I r))', ref, ref, ref_table)
                         ELSE 'false' END;
BEGIN
    EXECUTE pg_catalog.format(
        'SELECT count(*), count(*) FILTER (WHERE %1$s), count(*) FILTER (WHERE NOT %1$s AND %2$s),
                count(*) FILTER (WHERE NOT %1$s AND NOT coalesce(%2$s, false) AND %3$s)
           FROM %4$I s', bad_key, bad_weight, bad_ref, stage)
      INTO n_read, n_null, n_weight, n_ref;
    -- exact duplicates: the same row twice (a repeat purchase at another time is kept)
    EXECUTE pg_catalog.format(
        'CREATE TEMP TABLE %1$I ON COMMIT DROP AS SELECT DISTINCT * FROM %2$I s
          WHERE NOT (%3$s OR coalesce(%4$s, false) OR %5$s)', stage || '_clean', stage, bad_key, bad_weight, bad_ref);
    GET DIAGNOSTICS n_kept = ROW_COUNT;
    EXECUTE pg_catalog.format('DROP TABLE %I', stage);
    EXECUTE pg_catalog.format('ALTER TABLE %I RENAME TO %I', stage || '_clean', stage);
    INSERT INTO rs_report (source, rule, rows) VALUES (prepare_rules.source, 'read', n_read),
                                                      (prepare_rules.source, 'null_key', n_null);
    IF stage = 'rs_events' THEN
        INSERT INTO rs_report (source, rule, rows) VALUES (prepare_rules.source, 'non_positive_weight', n_weight);
    END IF;
    IF check_ref THEN
        INSERT INTO rs_report (source, rule, rows) VALUES (prepare_rules.source, 'unknown_' || ref, n_ref);
    END IF;
    INSERT INTO rs_report (source, rule, rows)
    VALUES (prepare_rules.source, 'duplicate', n_read - n_null - n_weight - n_ref - n_kept);
END
$$;
COMMENT ON FUNCTION recsys.prepare_rules(text, text, text[], boolean, text) IS 'applies the cleaning rules of recsys.prepare() to one staged source and reports the rows each rule dropped';
--@end

-- Ids: a space's high-water mark, so an index is never handed out twice (forget_user deletes the row of the
-- highest index too), and a bigint form that returns only ids that are their own canonical integer text.
--@begin recsys.id_spaces
CREATE TABLE recsys.id_spaces (
    space    text PRIMARY KEY CHECK (space IN ('user', 'item', 'bundle')),
    next_idx integer NOT NULL CHECK (next_idx >= 0)
);
COMMENT ON TABLE recsys.id_spaces IS 'the next index of each id space: recsys.map_append alone moves it, and an index below it is never handed out again (erased customers leave holes, not reusable slots)';
-- rows appear with a space's first ids (a fresh install has none, so a restored dump brings its own)
INSERT INTO recsys.id_spaces (space, next_idx) SELECT m.space, max(m.idx) + 1 FROM recsys.id_map m GROUP BY m.space;
SELECT pg_catalog.pg_extension_config_dump('recsys.id_spaces', '');
--@end

--@begin recsys.ext_bigint(text)
CREATE FUNCTION recsys.ext_bigint(ext_id text) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- '0546' or ' +546' would come back as 546, another id: only the canonical text converts
    IF ext_id !~ '^(0|-?[1-9][0-9]{0,18})$' OR ext_id::numeric NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
        RAISE EXCEPTION 'id % is not an integer, so it cannot be returned as bigint', quote_literal(ext_id)
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Call the text form of the function (pass the argument as text), which returns ids as text.';
    END IF;
    RETURN ext_id::bigint;
END
$$;
COMMENT ON FUNCTION recsys.ext_bigint(text) IS 'an external id as bigint when its text is exactly the integer''s (no sign, spaces or leading zeros added), else an error: what the bigint forms of the serving functions return';
--@end
