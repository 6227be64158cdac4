-- recsys SQL source: serving -- recommend_bundles, recommend_items, complete_bundle, similar_items, batches (the Makefile assembles sql/src/*.sql into the install script)

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

--@begin recsys.rank_bundles(integer, integer, boolean)
CREATE OR REPLACE FUNCTION recsys.rank_bundles(user_idx integer, k integer, exclude_taken boolean DEFAULT true)
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
               pg_catalog.format('taken by %s who also took %s', recsys.n_customers(sc.co),
                                 coalesce((SELECT '"' || a.name || '"' FROM recsys.bundle_attrs a WHERE a.bundle_idx = sc.via),
                                          'bundle ' || (SELECT m.ext_id FROM recsys.id_map m
                                                         WHERE m.space = 'bundle' AND m.idx = sc.via)))
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
--@end

--@begin recsys.recommend_bundles_baseline(text, integer, jsonb)
CREATE OR REPLACE FUNCTION recsys.recommend_bundles_baseline(user_id text, k integer DEFAULT 10, options jsonb DEFAULT '{}')
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
           -- on the 0..1 scale of the model's tiers: the baseline's strength (co-occurrence, items, popularity;
           -- non-negative) squashed as s / (1 + s), not a probability
           (GREATEST(r.score, 0) / (1 + GREATEST(r.score, 0)))::real, r.reason
      FROM recsys.rank_bundles(u, recommend_bundles_baseline.k, (opts ->> 'exclude_taken')::boolean) r
      JOIN recsys.id_map b ON b.space = 'bundle' AND b.idx = r.bundle_idx
     ORDER BY r.rank;
END
$$;
COMMENT ON FUNCTION recsys.recommend_bundles_baseline(text, integer, jsonb) IS 'the baseline ranker with ids as text (bundle co-occurrence, item view, popularity): what recommend_bundles serves while its model has no active version, and the item co-occurrence baseline of the quality harness; score: its strength s squashed to 0..1 as s / (1 + s); options: exclude_taken (default true)';
--@end

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

--@begin recsys.check_item_options(integer, jsonb, text[])
CREATE OR REPLACE FUNCTION recsys.check_item_options(k integer, options jsonb, known text[]) RETURNS jsonb
    LANGUAGE plpgsql STABLE PARALLEL SAFE
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
    -- one vocabulary with recommend_bundles: exclude_taken is exclude_bought's other name
    IF options ? 'exclude_taken' AND 'exclude_bought' = ANY (known) THEN
        IF options ? 'exclude_bought' AND options -> 'exclude_bought' IS DISTINCT FROM options -> 'exclude_taken' THEN
            RAISE EXCEPTION 'options exclude_taken and exclude_bought disagree'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'They are one option under two names: pass one.';
        END IF;
        options := (options - 'exclude_taken') || pg_catalog.jsonb_build_object('exclude_bought', options -> 'exclude_taken');
    END IF;
    FOR key IN SELECT jsonb_object_keys(options) LOOP
        IF NOT key = ANY (known) THEN
            RAISE EXCEPTION 'unknown option %', quote_literal(key) USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Known options: ' || array_to_string(known, ', ') || '.';
        END IF;
    END LOOP;
    -- types and ranges as declared for the item options (recsys.option_specs, family items)
    PERFORM recsys.check_options(options, 'items');
    IF options ? 'exclude_bought' AND NOT (options ->> 'exclude_bought')::boolean AND NOT recsys.may_see_history() THEN
        RAISE EXCEPTION 'option exclude_bought false needs the role recsys_app or recsys_admin'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'It returns a customer''s own purchases, so comparing answers would reveal the customer''s history.',
                  HINT = 'Serve with the defaults, or grant recsys_app to the application that serves the logged-in customer.';
    END IF;
    -- by default a reader gets no item the customer bought (it would reveal their history); the roles that may
    -- see it get what the model ranks, repeat purchases included
    RETURN pg_catalog.jsonb_build_object('exclude_bought', NOT recsys.may_see_history(), 'in_stock', false) || options;
END
$$;
COMMENT ON FUNCTION recsys.check_item_options(integer, jsonb, text[]) IS 'validates k (1..10000) and item serving options (exclude_bought, also called exclude_taken as in recommend_bundles; in_stock, max_price) against the keys a function knows; returns them with defaults';
--@end

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

--@begin similar_items(text, integer, jsonb)
CREATE FUNCTION recsys.similar_items_idx(item_idx integer, k integer, options jsonb)
RETURNS TABLE (rank integer, item_id text, score real, reason text)
    AS 'MODULE_PATHNAME', 'similar_items_idx'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.similar_items_idx(integer, integer, jsonb) IS 'the ranking of similar_items on a dense item index, from the per-backend item cache (src/items.c); options in_stock and max_price as recsys.check_item_options leaves them';

CREATE FUNCTION recsys.complete_bundle_idx(cart integer[], k integer, options jsonb)
RETURNS TABLE (rank integer, item_id text, score real, reason text)
    AS 'MODULE_PATHNAME', 'complete_bundle_idx'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.complete_bundle_idx(integer[], integer, jsonb) IS 'the ranking of complete_bundle on dense item indexes, from the per-backend item cache (src/items.c); options in_stock and max_price as recsys.check_item_options leaves them';

CREATE FUNCTION similar_items(item text, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, item_id text, score real, reason text)
    LANGUAGE plpgsql STABLE STRICT PARALLEL RESTRICTED
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    opts jsonb := recsys.check_item_options(k, options, '{in_stock,max_price}');
    i integer;
BEGIN
    SELECT m.idx INTO i FROM recsys.id_map m WHERE m.space = 'item' AND m.ext_id = similar_items.item;
    IF i IS NULL THEN
        RAISE EXCEPTION 'unknown item %', quote_literal(similar_items.item) USING ERRCODE = 'undefined_object',
            HINT = 'Items become known when recsys.prepare() reads them from the registered sources.';
    END IF;
    RETURN QUERY SELECT * FROM recsys.similar_items_idx(i, k, opts);
END
$$;
COMMENT ON FUNCTION similar_items(text, integer, jsonb) IS 'items like an item: bought together (association rules from recsys.item_pair_stats, by confidence and lift), then items with the closest content vector (category, price band), which is how a new item gets neighbours on its first day; options in_stock, max_price, applied before the cut (as complete_bundle and recommend_items); ranked in C from the per-backend item cache; unknown item: ERROR';
--@end

--@begin recommend_items(text, integer, jsonb)
CREATE OR REPLACE FUNCTION recommend_items(user_id text, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, item_id text, score real, reason text)
    LANGUAGE sql STABLE STRICT PARALLEL RESTRICTED
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM recsys.item_rank(user_id, k, recsys.check_item_options(k, options, '{exclude_bought,in_stock,max_price,model}')) $$;
COMMENT ON FUNCTION recommend_items(text, integer, jsonb) IS 'top-k items for a customer from the item model (recsys.item_rank, in C): what they buy often and lately, and what the shop''s customers buy, blended by the scorer recsys.train learned (before training, a default blend); an unknown customer gets popular items, labelled; options exclude_bought (default true for readers, false for recsys_app and recsys_admin), in_stock, max_price (applied before the cut), model (default items)';
--@end

--@begin complete_bundle(text[], integer, jsonb)
CREATE OR REPLACE FUNCTION complete_bundle(items text[], k integer DEFAULT 5, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, item_id text, score real, reason text)
    LANGUAGE plpgsql STABLE STRICT PARALLEL RESTRICTED
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
    -- a cart is compared with every candidate: bounded like the serving options' item lists
    IF cardinality(items) > 1000 THEN
        RAISE EXCEPTION 'items holds at most 1000 ids, got %', cardinality(items) USING ERRCODE = 'program_limit_exceeded';
    END IF;
    SELECT array_agg(m.idx) INTO cart FROM recsys.id_map m WHERE m.space = 'item' AND m.ext_id = ANY (items);
    cart := coalesce(cart, '{}');
    RETURN QUERY SELECT * FROM recsys.complete_bundle_idx(cart, k, opts);
END
$$;
COMMENT ON FUNCTION complete_bundle(text[], integer, jsonb) IS 'what goes with this cart: items that complete mined bundles holding cart items (by lift), then items bought together with them (association rules), then popular items; unknown cart items are ignored; options in_stock, max_price, applied before the cut; ranked in C from the per-backend item cache';
--@end

--@begin similar_items(bigint, integer, jsonb)
CREATE FUNCTION similar_items(item bigint, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, item_id bigint, score real, reason text)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT s.rank, recsys.ext_bigint(s.item_id), s.score, s.reason FROM @extschema@.similar_items(item::text, k, options) s $$;
COMMENT ON FUNCTION similar_items(bigint, integer, jsonb) IS 'similar_items for integer item ids';
--@end

--@begin recommend_items(bigint, integer, jsonb)
CREATE OR REPLACE FUNCTION recommend_items(user_id bigint, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, item_id bigint, score real, reason text)
    LANGUAGE sql STABLE STRICT PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT r.rank, recsys.ext_bigint(r.item_id), r.score, r.reason FROM @extschema@.recommend_items(user_id::text, k, options) r $$;
COMMENT ON FUNCTION recommend_items(bigint, integer, jsonb) IS 'recommend_items for integer user and item ids';
--@end

--@begin complete_bundle(bigint[], integer, jsonb)
CREATE OR REPLACE FUNCTION complete_bundle(items bigint[], k integer DEFAULT 5, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, item_id bigint, score real, reason text)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT c.rank, recsys.ext_bigint(c.item_id), c.score, c.reason FROM @extschema@.complete_bundle(items::text[], k, options) c $$;
COMMENT ON FUNCTION complete_bundle(bigint[], integer, jsonb) IS 'complete_bundle for integer item ids';
--@end

-- a batch's answer is bounded like a single call's: at most 1,000,000 rows (users x k), so a caller cannot fill
-- memory or the temporary files with one statement
--@begin recsys.check_batch(integer, integer)
CREATE FUNCTION recsys.check_batch(users integer, k integer) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF users::bigint * greatest(k, 1) > 1000000 THEN
        RAISE EXCEPTION 'a batch of % users at k = % would return more than 1000000 rows', users, k
            USING ERRCODE = 'program_limit_exceeded', HINT = 'Split the users into smaller batches.';
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION recsys.check_batch(integer, integer) IS 'true, or an error when users x k passes the 1,000,000 rows a batch may return';
--@end

--@begin recommend_bundles_batch(bigint[], integer, jsonb)
CREATE FUNCTION recommend_bundles_batch(user_ids bigint[], k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (user_id bigint, rank integer, bundle_id bigint, items bigint[], score real, reason text)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, r.rank, r.bundle_id, r.items, r.score, r.reason
      FROM unnest(user_ids) WITH ORDINALITY AS u(id, n)
     CROSS JOIN LATERAL @extschema@.recommend_bundles(u.id, k, options) r
     WHERE u.id IS NOT NULL AND recsys.check_batch(cardinality(user_ids), k)
     ORDER BY u.n, r.rank
$$;
COMMENT ON FUNCTION recommend_bundles_batch(bigint[], integer, jsonb) IS 'recommend_bundles for many users in one call (rows carry user_id, in the order given); what a PL/Proxy SPLIT call runs on each shard';
--@end

--@begin recommend_bundles_batch(text[], integer, jsonb)
CREATE FUNCTION recommend_bundles_batch(user_ids text[], k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (user_id text, rank integer, bundle_id text, items text[], score real, reason text)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, r.rank, r.bundle_id, r.items, r.score, r.reason
      FROM unnest(user_ids) WITH ORDINALITY AS u(id, n)
     CROSS JOIN LATERAL @extschema@.recommend_bundles(u.id, k, options) r
     WHERE u.id IS NOT NULL AND recsys.check_batch(cardinality(user_ids), k)
     ORDER BY u.n, r.rank
$$;
COMMENT ON FUNCTION recommend_bundles_batch(text[], integer, jsonb) IS 'recommend_bundles_batch for text user ids';
--@end

--@begin recsys.may_see_history()
CREATE FUNCTION recsys.may_see_history() RETURNS boolean
    AS 'MODULE_PATHNAME', 'may_see_history'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.may_see_history() IS 'whether the session''s role (as SET ROLE left it, also inside SECURITY DEFINER functions) may use options that reveal a customer''s own purchases: recsys_app, recsys_admin or a superuser';
--@end

-- Serving with its provenance as columns (the version, NULL for the baseline ranker; the experiment and variant),
-- where the impressions are logged from: per request, with no state left in the backend between calls
--@begin recsys.recommend_bundles_traced(text, integer, jsonb)
CREATE FUNCTION recsys.recommend_bundles_traced(user_id text, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, bundle_id text, items text[], score real, reason text,
               version_id bigint, experiment text, variant text)
    AS 'MODULE_PATHNAME', 'recommend_bundles'
    LANGUAGE C STABLE STRICT PARALLEL SAFE
    SECURITY DEFINER;
COMMENT ON FUNCTION recsys.recommend_bundles_traced(text, integer, jsonb) IS 'recommend_bundles with what served each row: the model version (NULL: the co-occurrence baseline), the running experiment and the variant (NULL when none)';
--@end
--@begin recsys.recommend_bundles_logged(text, integer, jsonb)
CREATE FUNCTION recsys.recommend_bundles_logged(user_id text, k integer DEFAULT 10, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, bundle_id text, items text[], score real, reason text,
               version_id bigint, experiment text, variant text)
    LANGUAGE plpgsql VOLATILE STRICT
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    shown text[] := '{}';
BEGIN
    -- recommend_bundles is STABLE (it cannot write): serve once, then log what was shown, traced by the very
    -- rows that were returned (a second call could meet a newly activated version)
    FOR r IN SELECT * FROM recsys.recommend_bundles_traced(user_id, k, options) LOOP
        rank := r.rank; bundle_id := r.bundle_id; items := r.items; score := r.score; reason := r.reason;
        version_id := r.version_id; experiment := r.experiment; variant := r.variant;
        shown := shown || r.bundle_id;
        RETURN NEXT;
    END LOOP;
    PERFORM recsys.log_impressions(user_id, shown, version_id, experiment, variant);
END
$$;
COMMENT ON FUNCTION recsys.recommend_bundles_logged(text, integer, jsonb) IS 'recommend_bundles_traced that also logs its impressions (ids in rank order, the model version that served them, the experiment and variant) into recsys.impressions; VOLATILE, since it writes';
--@end
