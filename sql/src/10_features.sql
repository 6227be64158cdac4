-- recsys SQL source: features -- co-occurrence, EASE, sequences, profiles, mined bundles (the Makefile assembles sql/src/*.sql into the install script)

------------------------------------------------------------------------------
-- Features: item co-occurrence with association-rule statistics
------------------------------------------------------------------------------

CREATE FUNCTION recsys.item_pairs(min_count integer DEFAULT 2, max_basket integer DEFAULT 100)
RETURNS TABLE (item_a integer, item_b integer, together bigint, support double precision,
               confidence double precision, lift double precision)
    AS 'MODULE_PATHNAME', 'item_pairs'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10000;
COMMENT ON FUNCTION recsys.item_pairs(integer, integer) IS 'item co-occurrence over the prepared baskets (each customer''s history when no basket column is registered), both directions a -> b of every pair seen together in at least min_count transactions: together, support, confidence (together / transactions with a), lift; transactions over max_basket items count for item totals only';

-- search_path: every function that resolves names at run time pins it. SQL and PL/pgSQL functions carry a SET
-- clause (recsys.train, a procedure that commits, pins it per transaction); these C functions run queries;
-- recommend_bundles pins it around its own loads (a SET clause would cost every cached request a GUC save
-- and restore); the other C functions run no query, so they resolve no names.
ALTER FUNCTION recsys.item_pairs(integer, integer) SET search_path = pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- EASE: the bundle view as a closed-form item-item model
------------------------------------------------------------------------------

CREATE FUNCTION recsys.ease_fit(lambda double precision DEFAULT 500) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ease_fit'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.ease_fit(double precision) IS 'fits EASE (Steck 2019) on the prepared user-bundle pairs: B = I - P / diag(P), P = (X''X + lambda I)^-1, zero diagonal; returns bundle-kind weights with tensor ease.b (bundles x bundles); dense, so up to 12000 bundles';
ALTER FUNCTION recsys.ease_fit(double precision) SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION recsys.ease_scores(weights bytea, bundles integer[]) RETURNS real[]
    AS 'MODULE_PATHNAME', 'ease_scores'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.ease_scores(bytea, integer[]) IS 'EASE scores of every bundle (by bundle index) for a user who took the given bundle indexes: the sum of their rows of B';

------------------------------------------------------------------------------
-- Features: sequences, item and customer profiles (C), mined bundles, refreshed together
------------------------------------------------------------------------------

CREATE FUNCTION recsys.user_sequences(max_len integer DEFAULT 50)
RETURNS TABLE (user_idx integer, items integer[], times timestamptz[])
    AS 'MODULE_PATHNAME', 'user_sequences'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.user_sequences(integer) IS 'each customer''s most recent items (at most max_len), oldest first, with their times (NULL when the events have none); the GRU''s input';
ALTER FUNCTION recsys.user_sequences(integer) SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION recsys.item_profiles(window_days integer DEFAULT 30)
RETURNS TABLE (item_idx integer, buyers bigint, recent_buyers bigint, trend double precision, category text,
               price double precision, price_band integer, content real[])
    AS 'MODULE_PATHNAME', 'item_profiles'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.item_profiles(integer) IS 'per item: distinct buyers, buyers in the last window_days of the data, trend (share of recent buyers over share of all buyers, 1 = steady), category, price, price band (quintile 0-4) and a content vector (one-hot category in name order, then one-hot price band) that lets a new item score on its first day';
ALTER FUNCTION recsys.item_profiles(integer) SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION recsys.user_profiles(window_days integer DEFAULT 30)
RETURNS TABLE (user_idx integer, recency_days double precision, frequency bigint, events bigint, recent_events bigint,
               monetary double precision, top_category text, category_affinity jsonb)
    AS 'MODULE_PATHNAME', 'user_profiles'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys.user_profiles(integer) IS 'per customer: recency (days before the newest event), frequency (orders, or events without baskets), events, events in the last window_days, monetary value (price times quantity), top category and category affinity (share of events per category)';
ALTER FUNCTION recsys.user_profiles(integer) SET search_path = pg_catalog, pg_temp;

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
SELECT pg_catalog.pg_extension_config_dump('recsys.item_features', '');

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
SELECT pg_catalog.pg_extension_config_dump('recsys.user_features', '');

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
SELECT pg_catalog.pg_extension_config_dump('recsys.item_pair_stats', '');

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
SELECT pg_catalog.pg_extension_config_dump('recsys.mined_bundles', '');

-- frequent item sets of the prepared baskets, in C
--@begin recsys.mine_itemsets(integer, integer, integer)
CREATE FUNCTION recsys.mine_itemsets(min_customers integer, max_size integer, max_basket integer)
RETURNS TABLE (items integer[], baskets bigint, customers bigint, support double precision, lift double precision)
    AS 'MODULE_PATHNAME', 'mine_itemsets'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.mine_itemsets(integer, integer, integer) IS 'the item sets of 2 to max_size items that at least min_customers customers bought together in one basket (each customer''s history when no basket column is registered; baskets of 2 to max_basket distinct items): baskets holding the set, customers, support (share of those baskets) and lift (support over the product of its items'' supports); depth-first over an inverted index, memory linear in the events';
--@end

-- who took each of a list of item sets in one basket, in C
--@begin recsys.basket_takers(integer[], integer[], integer[])
CREATE FUNCTION recsys.basket_takers(ks integer[], starts integer[], items integer[])
RETURNS TABLE (k integer, user_idx integer, n bigint, last_ts timestamptz)
    AS 'MODULE_PATHNAME', 'basket_takers'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.basket_takers(integer[], integer[], integer[]) IS 'for item sets given as set numbers ks, starts (n + 1 offsets, from 0) and their items: each customer with a prepared basket holding every item of a set, how many such baskets and the latest time of those items in them; none on a shop without baskets; what recsys.adopt_mined_bundles counts as taking a mined bundle';
--@end

--@begin recsys.mine_bundles_run(jsonb)
CREATE OR REPLACE FUNCTION recsys.mine_bundles_run(options jsonb DEFAULT '{}') RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o jsonb;
    key text;
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
    -- the frequent sets come from C (recsys.mine_itemsets: memory linear in the events); kept when their lift, and
    -- across categories when asked, pass
    DELETE FROM recsys.mined_bundles;
    INSERT INTO recsys.mined_bundles (bundle_key, items, size, baskets, customers, support, lift, categories)
    SELECT 'mined:' || array_to_string(m.items, '-'), m.items, cardinality(m.items), m.baskets, m.customers, m.support,
           m.lift, (SELECT count(DISTINCT a.category) FROM recsys.item_attrs a WHERE a.item_idx = ANY (m.items))
      FROM recsys.mine_itemsets((o ->> 'min_customers')::int, (o ->> 'max_size')::int, (o ->> 'max_basket')::int) m
     WHERE m.lift >= (o ->> 'min_lift')::float8;
    IF (o ->> 'cross_category')::boolean THEN
        DELETE FROM recsys.mined_bundles m WHERE m.categories < 2;
    END IF;
    SELECT count(*) INTO total FROM recsys.mined_bundles;
    RETURN total;
END
$$;
COMMENT ON FUNCTION recsys.mine_bundles_run(jsonb) IS 'the mining step of recsys.mine_bundles, on options it has checked: recsys.mine_itemsets, then the lift and category rules';
--@end
--@begin recsys.mine_bundles(jsonb)
CREATE FUNCTION recsys.mine_bundles(options jsonb DEFAULT '{}') RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint := recsys.mine_bundles_run(recsys.check_options(options, 'mine_bundles'));
BEGIN
    -- complete_bundle serves the mined bundles from each backend's item cache
    PERFORM recsys.serving_invalidate();
    RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.mine_bundles(jsonb) IS 'mines bundles from baskets (or from customers'' histories when events have no basket) into recsys.mined_bundles: Apriori itemsets of 2 to max_size (3) items bought together by at least min_customers (5, never below 2) distinct customers, with lift at least min_lift (1.5), optionally spanning two or more categories (cross_category); baskets over max_basket (50) items are skipped; returns the count';
--@end

-- Mined bundles as bundles (most shops have only order lines): the strongest ones become prepared bundles, with
-- ids that survive re-mining (the same item set keeps its id: a hash of its item ids), a name built from their
-- items and bundle events derived from the baskets that hold the whole set, so recommend_bundles and the bundle
-- model work on order lines alone. Beside curated bundles ('both'), a mined one must have been taken that way
-- and hold another item set than every curated bundle: a shop without baskets serves its curated bundles alone.
--@begin recsys.adopt_mined_bundles(integer, text)
CREATE FUNCTION recsys.adopt_mined_bundles(max_bundles integer DEFAULT 2000, bundles text DEFAULT 'both') RETURNS bigint
    LANGUAGE plpgsql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    curated boolean := EXISTS (SELECT 1 FROM recsys.sources s WHERE s.kind = 'bundles');
BEGIN
    IF max_bundles < 0 OR max_bundles > 1000000 THEN
        RAISE EXCEPTION 'max_bundles must be from 0 to 1000000, got %', max_bundles USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF bundles NOT IN ('curated', 'mined', 'both') THEN
        RAISE EXCEPTION 'bundles must be curated, mined or both, got %', bundles
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'curated: the registered bundles alone; mined: the mined ones alone; both: the registered ones and mined ones taken in baskets.';
    END IF;
    -- the previous adoption goes (recsys.prepare() rebuilt the curated ones): adopting twice changes nothing
    DELETE FROM recsys.user_bundles ub USING recsys.bundle_attrs a WHERE a.bundle_idx = ub.bundle_idx AND a.source = 'mined';
    DELETE FROM recsys.bundle_items bi USING recsys.bundle_attrs a WHERE a.bundle_idx = bi.bundle_idx AND a.source = 'mined';
    DELETE FROM recsys.bundle_attrs a WHERE a.source = 'mined';
    -- the prepared bundles still without attributes are curated ones prepared before bundles had them (0.1.0)
    PERFORM recsys.bundle_attrs_add('curated');
    IF bundles = 'mined' THEN
        DELETE FROM recsys.user_bundles;
        DELETE FROM recsys.bundle_items;
        DELETE FROM recsys.bundle_attrs;
        curated := false;
    END IF;
    IF bundles = 'curated' OR max_bundles = 0 THEN
        PERFORM recsys.bundle_stats_refresh();
        PERFORM recsys.serving_invalidate();
        RETURN 0;
    END IF;
    -- beside curated bundles, only item sets the shop has not curated (mined item sets are sorted: Apriori grows
    -- them by larger items)
    CREATE TEMP TABLE rs_curated_sets ON COMMIT DROP AS
    SELECT pg_catalog.array_agg(bi.item_idx ORDER BY bi.item_idx) AS items FROM recsys.bundle_items bi GROUP BY bi.bundle_idx;
    ANALYZE rs_curated_sets;
    -- the candidates by a number of their own (k): only those adopted get an id in recsys.id_map
    CREATE TEMP TABLE rs_adopted ON COMMIT DROP AS
    SELECT (row_number() OVER (ORDER BY x.bundle_key))::integer AS k, x.bundle_key, x.items,
           pg_catalog.hashtextextended(pg_catalog.string_agg(m.ext_id, ',' ORDER BY m.ext_id), 0)::text AS ext_id
      FROM (SELECT b.bundle_key, b.items FROM recsys.mined_bundles b
             WHERE NOT EXISTS (SELECT 1 FROM rs_curated_sets c WHERE c.items = b.items)
             ORDER BY b.customers DESC, b.lift DESC, b.bundle_key LIMIT max_bundles) x
     CROSS JOIN LATERAL pg_catalog.unnest(x.items) AS it(idx)
      JOIN recsys.id_map m ON m.space = 'item' AND m.idx = it.idx
     GROUP BY x.bundle_key, x.items;
    -- a mined set whose id is a curated bundle's (a shop's own hash ids) stays the curated one
    DELETE FROM rs_adopted a USING recsys.id_map b, recsys.bundle_items c
     WHERE b.space = 'bundle' AND b.ext_id = a.ext_id AND c.bundle_idx = b.idx;
    CREATE TEMP TABLE rs_adopted_items ON COMMIT DROP AS
    SELECT y.k, y.item_idx, count(*) OVER (PARTITION BY y.k) AS size
      FROM (SELECT DISTINCT a.k, it.idx AS item_idx FROM rs_adopted a CROSS JOIN LATERAL pg_catalog.unnest(a.items) AS it(idx)) y;
    ANALYZE rs_adopted_items;
    -- a customer took a mined bundle when one of their baskets holds every one of its items: in C, intersecting the
    -- items' inverted lists of baskets (the SQL join it replaced took six minutes on 20 M order lines)
    CREATE TEMP TABLE rs_adopted_takers ON COMMIT DROP AS
    SELECT t.user_idx, t.k, t.n, t.last_ts
      FROM recsys.basket_takers(ARRAY(SELECT a.k FROM rs_adopted a ORDER BY a.k),
                                ARRAY[0] || ARRAY(SELECT (sum(cardinality(a.items)) OVER (ORDER BY a.k))::integer
                                                    FROM rs_adopted a ORDER BY a.k),
                                ARRAY(SELECT it.idx FROM rs_adopted a CROSS JOIN LATERAL pg_catalog.unnest(a.items) WITH ORDINALITY AS it(idx, o)
                                       ORDER BY a.k, it.o)) t;
    -- millions of takers over a few thousand sets: without statistics the planner hashed the takers on k and
    -- walked bucket chains thousands long (six minutes on the large shop)
    ANALYZE rs_adopted, rs_adopted_takers;
    IF curated THEN
        DELETE FROM rs_adopted a WHERE NOT EXISTS (SELECT 1 FROM rs_adopted_takers t WHERE t.k = a.k);
    END IF;
    PERFORM recsys.map_append('bundle', ARRAY(SELECT a.ext_id FROM rs_adopted a ORDER BY a.k));
    INSERT INTO recsys.bundle_items
    SELECT b.idx, ai.item_idx
      FROM rs_adopted a JOIN rs_adopted_items ai ON ai.k = a.k
      JOIN recsys.id_map b ON b.space = 'bundle' AND b.ext_id = a.ext_id;
    INSERT INTO recsys.user_bundles
    SELECT t.user_idx, b.idx, t.n, t.last_ts
      FROM rs_adopted a JOIN rs_adopted_takers t ON t.k = a.k
      JOIN recsys.id_map b ON b.space = 'bundle' AND b.ext_id = a.ext_id;
    -- dropped now, not at commit: a transaction may adopt twice
    DROP TABLE rs_curated_sets, rs_adopted, rs_adopted_items, rs_adopted_takers;
    n := recsys.bundle_attrs_add('mined');
    PERFORM recsys.bundle_stats_refresh();
    PERFORM recsys.serving_invalidate();
    RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.adopt_mined_bundles(integer, text) IS 'makes the max_bundles strongest mined bundles (most customers, then lift) prepared bundles, each with a stable id (a hash of its item ids), a name from its items and bundle events from the baskets holding all its items; bundles: both (default: beside curated bundles only mined item sets taken in some basket and not curated; all of them on a shop without curated bundles), mined (the mined ones alone), curated (none); replaces the previous adoption; returns how many; recsys.refresh_features calls it';
--@end

--@begin recsys.refresh_features(jsonb)
CREATE OR REPLACE FUNCTION recsys.refresh_features(options jsonb DEFAULT '{}') RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    -- sorts and hashes over every event: up to 256 MB each before they spill to temporary files
    SET work_mem = '256MB'
AS $$
DECLARE
    o jsonb := recsys.check_options(options, 'refresh_features');
    result jsonb;
BEGIN
    -- the features are shared by every model: two trainings refresh them one after the other
    PERFORM pg_advisory_xact_lock(hashtextextended('recsys.refresh_features', 0));
    PERFORM recsys.progress('recsys.refresh_features', 'item profiles');
    DELETE FROM recsys.item_features;
    INSERT INTO recsys.item_features SELECT * FROM recsys.item_profiles((o ->> 'window_days')::int);
    PERFORM recsys.progress('recsys.refresh_features', 'customer profiles');
    DELETE FROM recsys.user_features;
    INSERT INTO recsys.user_features SELECT * FROM recsys.user_profiles((o ->> 'window_days')::int);
    PERFORM recsys.progress('recsys.refresh_features', 'item pairs (association rules)');
    DELETE FROM recsys.item_pair_stats;
    INSERT INTO recsys.item_pair_stats SELECT * FROM recsys.item_pairs((o ->> 'min_pair_count')::int);
    PERFORM recsys.progress('recsys.refresh_features', 'mining bundles from baskets');
    result := jsonb_build_object('items', (SELECT count(*) FROM recsys.item_features),
                                 'customers', (SELECT count(*) FROM recsys.user_features),
                                 'item_pairs', (SELECT count(*) FROM recsys.item_pair_stats),
                                 'mined_bundles', recsys.mine_bundles(o -> 'mining'));
    -- a shop without curated bundles serves its mined ones
    PERFORM recsys.progress('recsys.refresh_features', 'adopting mined bundles');
    result := result || jsonb_build_object('adopted_bundles', recsys.adopt_mined_bundles((o ->> 'max_mined')::int, o ->> 'bundles'));
    PERFORM recsys.progress('recsys.refresh_features', pg_catalog.format('done: %s', result));
    RETURN result;
END
$$;
COMMENT ON FUNCTION recsys.refresh_features(jsonb) IS 'recomputes item_features, user_features, item_pair_stats and mined_bundles from the prepared data; options window_days (30), min_pair_count (2), mining (options of recsys.mine_bundles), bundles (both: curated and mined; curated; mined) and max_mined (2000: mined bundles adopted at most, see recsys.adopt_mined_bundles); recsys.train calls it first';
--@end
