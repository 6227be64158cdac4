-- recsys SQL source: promotions -- offers as data, who responds to which, and by how much (the Makefile assembles sql/src/*.sql into the install script)

------------------------------------------------------------------------------
-- Promotions: registered offers and exposures, prepared beside the events
------------------------------------------------------------------------------

--@begin promotion sources
ALTER TABLE recsys.sources DROP CONSTRAINT sources_kind_check;
ALTER TABLE recsys.sources ADD CONSTRAINT sources_kind_check
    CHECK (kind IN ('events', 'items', 'bundles', 'bundle_events', 'promotions', 'promotion_exposures'));
-- the application logs the offers it showed (and, with the experiment's control variant, the customers it held
-- out) as impressions of kind promotion, and redemptions as purchase feedback
ALTER TABLE recsys.impressions DROP CONSTRAINT impressions_target_kind_check;
ALTER TABLE recsys.impressions ADD CONSTRAINT impressions_target_kind_check
    CHECK (target_kind IN ('bundle', 'item', 'promotion'));
ALTER TABLE recsys.feedback DROP CONSTRAINT feedback_target_kind_check;
ALTER TABLE recsys.feedback ADD CONSTRAINT feedback_target_kind_check
    CHECK (target_kind IN ('bundle', 'item', 'promotion'));

-- the prepared offers: each target resolved to the items it covers (a category's, a bundle's, one item)
CREATE TABLE recsys.promotions (
    promo_idx     integer PRIMARY KEY,
    promo_id      text NOT NULL UNIQUE,
    name          text,
    target_kind   text NOT NULL CHECK (target_kind IN ('item', 'bundle', 'category')),
    target        text NOT NULL,
    items         integer[] NOT NULL,
    categories    text[] NOT NULL,
    price         double precision,
    discount      double precision NOT NULL CHECK (discount > 0),
    discount_unit text NOT NULL CHECK (discount_unit IN ('percent', 'amount')),
    starts        timestamptz NOT NULL,
    ends          timestamptz NOT NULL CHECK (ends > starts)
);
COMMENT ON TABLE recsys.promotions IS 'registered promotions as recsys.prepare() read them: the target (an item, a bundle or a category) with the item indexes it covers, its categories and price (a bundle''s total, a category''s mean), the discount (percent or amount) and the window';
COMMENT ON COLUMN recsys.promotions.promo_idx IS 'dense index of the promotion in this preparation';
COMMENT ON COLUMN recsys.promotions.promo_id IS 'the shop''s promotion id';
COMMENT ON COLUMN recsys.promotions.name IS 'the shop''s name of the offer, when registered';
COMMENT ON COLUMN recsys.promotions.target_kind IS 'item, bundle or category';
COMMENT ON COLUMN recsys.promotions.target IS 'the target''s id (item or bundle id) or category';
COMMENT ON COLUMN recsys.promotions.items IS 'item indexes the offer covers: buying any of them counts as a response';
COMMENT ON COLUMN recsys.promotions.categories IS 'the categories of those items';
COMMENT ON COLUMN recsys.promotions.price IS 'the target''s price before the discount (a bundle: its items together; a category: their mean)';
COMMENT ON COLUMN recsys.promotions.discount IS 'the discount: a percentage (0 to 100) or an amount off the price';
COMMENT ON COLUMN recsys.promotions.discount_unit IS 'percent or amount';
COMMENT ON COLUMN recsys.promotions.starts IS 'when the offer starts';
COMMENT ON COLUMN recsys.promotions.ends IS 'when it ends: purchases up to then count as responses';
SELECT pg_catalog.pg_extension_config_dump('recsys.promotions', '');

CREATE TABLE recsys.promotion_exposures (
    promo_idx  integer NOT NULL REFERENCES recsys.promotions ON DELETE CASCADE,
    user_idx   integer NOT NULL,
    exposed_at timestamptz NOT NULL,
    treated    boolean NOT NULL,
    bought     boolean NOT NULL,
    PRIMARY KEY (promo_idx, user_idx)
);
CREATE INDEX ON recsys.promotion_exposures (user_idx);
COMMENT ON TABLE recsys.promotion_exposures IS 'who each promotion reached (treated) or held out (not treated), and whether they bought its target between the exposure and the offer''s end (from the prepared events)';
COMMENT ON COLUMN recsys.promotion_exposures.promo_idx IS 'the promotion (recsys.promotions)';
COMMENT ON COLUMN recsys.promotion_exposures.user_idx IS 'the customer''s dense index (recsys.id_map, space user)';
COMMENT ON COLUMN recsys.promotion_exposures.exposed_at IS 'when the customer was shown the offer, or held out (the offer''s start when not registered)';
COMMENT ON COLUMN recsys.promotion_exposures.treated IS 'true: shown the offer; false: held out as control';
COMMENT ON COLUMN recsys.promotion_exposures.bought IS 'bought an item of the target between exposed_at and the offer''s end';
SELECT pg_catalog.pg_extension_config_dump('recsys.promotion_exposures', '');
--@end

--@begin recsys.register_promotions(regclass, name, name, name, name, name, name, name, name)
CREATE FUNCTION recsys.register_promotions(relation regclass, promo_column name, target_column name, discount_column name,
                                           starts_column name, ends_column name, target_kind_column name DEFAULT NULL,
                                           discount_unit_column name DEFAULT NULL, name_column name DEFAULT NULL)
RETURNS jsonb
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT recsys.register_source('promotions', relation,
        ARRAY['promotion', 'target', 'discount', 'starts', 'ends', 'target_kind', 'discount_unit', 'name'],
        ARRAY[promo_column, target_column, discount_column, starts_column, ends_column, target_kind_column,
              discount_unit_column, name_column], 5)
$$;
COMMENT ON FUNCTION recsys.register_promotions(regclass, name, name, name, name, name, name, name, name) IS 'registers the shop''s promotions: id, target (an item id, a bundle id or a category), discount, start and end, and optionally the target''s kind (item, bundle or category; default item), the discount''s unit (percent or amount; default percent) and a name; recsys.prepare() reads them and drops rows it cannot use, by rule';
--@end

--@begin recsys.register_promotion_exposures(regclass, name, name, name, name)
CREATE FUNCTION recsys.register_promotion_exposures(relation regclass, user_column name, promo_column name,
                                                    time_column name DEFAULT NULL, treated_column name DEFAULT NULL)
RETURNS jsonb
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT recsys.register_source('promotion_exposures', relation, ARRAY['user', 'promotion', 'time', 'treated'],
                                  ARRAY[user_column, promo_column, time_column, treated_column], 2)
$$;
COMMENT ON FUNCTION recsys.register_promotion_exposures(regclass, name, name, name, name) IS 'registers who saw which promotion: user id, promotion id, optional time (default: the offer''s start) and treated (boolean; false marks a customer held out as control, as an experiment''s random assignment does; default: all treated); the uplift of an offer is measured against its held-out customers; without a registration, recsys.prepare() reads the impressions the application logged with target_kind promotion (variant holdout or control: held out) and counts logged purchases of the promotion as redemptions';
--@end

-- Called by recsys.prepare() in its transaction, after the events: reads the registered promotions and
-- exposures, drops rows by rule into prepare's report, and derives each exposure's response from the events.
--@begin recsys.prepare_promotions()
CREATE FUNCTION recsys.prepare_promotions() RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s recsys.sources;
    n bigint;
BEGIN
    DELETE FROM recsys.promotion_exposures;
    DELETE FROM recsys.promotions;
    SELECT * INTO s FROM recsys.sources WHERE kind = 'promotions';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM recsys.progress('recsys.prepare', 'reading promotions');
    IF pg_catalog.to_regclass('pg_temp.rs_promos') IS NOT NULL THEN
        DROP TABLE rs_promos;    -- prepared twice in one transaction
    END IF;
    IF pg_catalog.to_regclass('pg_temp.rs_exposures') IS NOT NULL THEN
        DROP TABLE rs_exposures;
    END IF;
    CREATE TEMP TABLE rs_promos (promo text, target text, discount float8, starts timestamptz, ends timestamptz,
                                 target_kind text, unit text, name text) ON COMMIT DROP;
    EXECUTE pg_catalog.format('INSERT INTO rs_promos SELECT %s, %s, %s, %s, %s, %s, %s, %s FROM %s',
        recsys.source_expr(s, 'promotion'), recsys.source_expr(s, 'target'), recsys.source_expr(s, 'discount', 'float8'),
        recsys.source_expr(s, 'starts', 'timestamptz'), recsys.source_expr(s, 'ends', 'timestamptz'),
        recsys.source_expr(s, 'target_kind'), recsys.source_expr(s, 'discount_unit'), recsys.source_expr(s, 'name'),
        s.relation);
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO rs_report (source, rule, rows) VALUES ('promotions', 'read', n);
    UPDATE rs_promos SET target_kind = coalesce(lower(target_kind), 'item'), unit = coalesce(lower(unit), 'percent');
    DELETE FROM rs_promos WHERE promo IS NULL OR target IS NULL OR starts IS NULL OR ends IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO rs_report (source, rule, rows) VALUES ('promotions', 'null_key', n);
    DELETE FROM rs_promos WHERE target_kind NOT IN ('item', 'bundle', 'category') OR unit NOT IN ('percent', 'amount')
                             OR NOT discount > 0 OR discount = 'Infinity' OR (unit = 'percent' AND discount > 100)
                             OR NOT ends > starts;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO rs_report (source, rule, rows) VALUES ('promotions', 'invalid_offer', n);
    DELETE FROM rs_promos a USING rs_promos b WHERE a.promo = b.promo AND a.ctid > b.ctid;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO rs_report (source, rule, rows) VALUES ('promotions', 'duplicate', n);

    INSERT INTO recsys.promotions
    SELECT row_number() OVER (ORDER BY p.promo)::int, p.promo, p.name, p.target_kind, p.target, t.items, t.categories,
           t.price, p.discount, p.unit, p.starts, p.ends
      FROM rs_promos p
     CROSS JOIN LATERAL (
        SELECT array_agg(x.item_idx ORDER BY x.item_idx) AS items,
               coalesce(array_agg(DISTINCT a.category) FILTER (WHERE a.category IS NOT NULL), '{}') AS categories,
               CASE WHEN p.target_kind = 'bundle' THEN sum(a.price) ELSE avg(a.price) END AS price
          FROM (SELECT m.idx AS item_idx FROM recsys.id_map m
                 WHERE p.target_kind = 'item' AND m.space = 'item' AND m.ext_id = p.target
                UNION
                SELECT bi.item_idx FROM recsys.id_map m JOIN recsys.bundle_items bi ON bi.bundle_idx = m.idx
                 WHERE p.target_kind = 'bundle' AND m.space = 'bundle' AND m.ext_id = p.target
                UNION
                SELECT a.item_idx FROM recsys.item_attrs a
                 WHERE p.target_kind = 'category' AND a.category = p.target) x
          LEFT JOIN recsys.item_attrs a ON a.item_idx = x.item_idx
     ) t
     WHERE t.items IS NOT NULL;
    INSERT INTO rs_report (source, rule, rows)
    VALUES ('promotions', 'unknown_target', (SELECT count(*) FROM rs_promos) - (SELECT count(*) FROM recsys.promotions));

    CREATE TEMP TABLE rs_exposures (usr text, promo text, ts timestamptz, treated boolean) ON COMMIT DROP;
    SELECT * INTO s FROM recsys.sources WHERE kind = 'promotion_exposures';
    IF FOUND THEN
        EXECUTE pg_catalog.format('INSERT INTO rs_exposures SELECT %s, %s, %s, %s FROM %s',
            recsys.source_expr(s, 'user'), recsys.source_expr(s, 'promotion'), recsys.source_expr(s, 'time', 'timestamptz'),
            recsys.source_expr(s, 'treated', 'boolean'), s.relation);
        GET DIAGNOSTICS n = ROW_COUNT;
    ELSE
        -- no registered relation: the offers the application logged as shown; a customer logged under variant
        -- holdout or control, or the first (control) variant of the impression's experiment, was held out
        INSERT INTO rs_exposures
        SELECT i.user_id, i.target, i.shown_at,
               NOT (coalesce(i.variant IN ('holdout', 'control'), false)
                    OR coalesce(i.variant = (SELECT x.variants -> 0 ->> 'name' FROM recsys.experiments x WHERE x.name = i.experiment), false))
          FROM recsys.impressions i WHERE i.target_kind = 'promotion';
        GET DIAGNOSTICS n = ROW_COUNT;
    END IF;
    IF n > 0 OR s.kind IS NOT NULL THEN
        INSERT INTO rs_report (source, rule, rows) VALUES ('promotion_exposures', 'read', n);
        DELETE FROM rs_exposures WHERE usr IS NULL OR promo IS NULL;
        GET DIAGNOSTICS n = ROW_COUNT;
        INSERT INTO rs_report (source, rule, rows) VALUES ('promotion_exposures', 'null_key', n);
        DELETE FROM rs_exposures e WHERE NOT EXISTS (SELECT 1 FROM recsys.promotions p WHERE p.promo_id = e.promo);
        GET DIAGNOSTICS n = ROW_COUNT;
        INSERT INTO rs_report (source, rule, rows) VALUES ('promotion_exposures', 'unknown_promotion', n);
        IF EXISTS (SELECT 1 FROM recsys.forgotten_users) THEN
            DELETE FROM rs_exposures WHERE recsys.user_digest(usr) IN (SELECT f.digest FROM recsys.forgotten_users f);
            GET DIAGNOSTICS n = ROW_COUNT;
            INSERT INTO rs_report (source, rule, rows) VALUES ('promotion_exposures', 'forgotten_user', n);
        END IF;
        -- one row per customer and offer: the first exposure (a customer both shown and held out counts as shown)
        DELETE FROM rs_exposures a USING rs_exposures b
         WHERE a.usr = b.usr AND a.promo = b.promo
           AND (coalesce(b.treated, true), -extract(epoch FROM coalesce(b.ts, '-infinity')), b.ctid)
             > (coalesce(a.treated, true), -extract(epoch FROM coalesce(a.ts, '-infinity')), a.ctid);
        GET DIAGNOSTICS n = ROW_COUNT;
        INSERT INTO rs_report (source, rule, rows) VALUES ('promotion_exposures', 'duplicate', n);
        -- a customer held out who never bought anything is still a customer: the control group needs them
        INSERT INTO rs_report (source, rule, rows)
        VALUES ('user_map', 'new_ids', recsys.map_append('user', ARRAY(SELECT DISTINCT usr FROM rs_exposures)));
        INSERT INTO recsys.promotion_exposures
        SELECT p.promo_idx, u.idx, greatest(coalesce(e.ts, p.starts), p.starts), coalesce(e.treated, true),
               EXISTS (SELECT 1 FROM recsys.events_clean c
                        WHERE c.user_idx = u.idx AND c.item_idx = ANY (p.items)
                          AND c.ts >= greatest(coalesce(e.ts, p.starts), p.starts) AND c.ts < p.ends)
               -- or a redemption the application logged
               OR EXISTS (SELECT 1 FROM recsys.feedback f
                           WHERE f.user_id = e.usr AND f.target = p.promo_id AND f.target_kind = 'promotion'
                             AND f.event = 'purchase' AND f.at >= greatest(coalesce(e.ts, p.starts), p.starts) AND f.at < p.ends)
          FROM rs_exposures e
          JOIN recsys.promotions p ON p.promo_id = e.promo
          JOIN recsys.id_map u ON u.space = 'user' AND u.ext_id = e.usr;
        GET DIAGNOSTICS n = ROW_COUNT;
        INSERT INTO rs_report (source, rule, rows) VALUES ('promotion_exposures', 'kept', n);
    END IF;
    INSERT INTO rs_report (source, rule, rows) VALUES ('promotions', 'kept', (SELECT count(*) FROM recsys.promotions));
    ANALYZE recsys.promotions, recsys.promotion_exposures;
END
$$;
COMMENT ON FUNCTION recsys.prepare_promotions() IS 'recsys.prepare''s step for the registered promotions and exposures (without a registered exposures relation: the impressions of kind promotion, those logged under variant holdout or control, or the first variant of their experiment, held out): drops rows by rule (null_key, invalid_offer: a kind, unit, discount or window it cannot use, duplicate, unknown_target, unknown_promotion, forgotten_user), resolves each target to its items and marks each exposure bought from the prepared events (or a logged purchase of the promotion) in its window';
--@end

------------------------------------------------------------------------------
-- What the campaigns did: uplift against the held-out customers, with confidence intervals
------------------------------------------------------------------------------

--@begin recsys.campaign_results
-- Wilson's score interval of a share (95%): it keeps its coverage with few buyers, where the normal one does not
CREATE FUNCTION recsys.wilson_interval(successes bigint, trials bigint, OUT low double precision, OUT high double precision)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (p + z * z / (2 * n) - z * sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n),
           (p + z * z / (2 * n) + z * sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
      FROM (SELECT successes::float8 / trials AS p, trials::float8 AS n, 1.959964::float8 AS z) x
     WHERE trials > 0
$$;
COMMENT ON FUNCTION recsys.wilson_interval(bigint, bigint) IS 'the 95% Wilson score interval of a share of successes among trials (NULL bounds for no trials)';

CREATE VIEW recsys.campaign_results AS
SELECT p.promo_id, p.name, p.target_kind, p.target, p.discount, p.discount_unit, p.starts, p.ends,
       r.treated, r.held_out, r.buyers_treated, r.buyers_held_out,
       r.rate_treated, r.rate_held_out,
       r.rate_treated - r.rate_held_out AS uplift,
       -- Newcombe's hybrid score interval of the difference, from the two Wilson intervals
       r.rate_treated - r.rate_held_out
         - sqrt((r.rate_treated - wt.low) ^ 2 + (wc.high - r.rate_held_out) ^ 2) AS uplift_low,
       r.rate_treated - r.rate_held_out
         + sqrt((wt.high - r.rate_treated) ^ 2 + (r.rate_held_out - wc.low) ^ 2) AS uplift_high,
       CASE WHEN r.se > 0 THEN 2 * (1 - recsys.normal_cdf(abs(r.rate_treated - r.rate_held_out) / r.se)) END AS p_value,
       (r.rate_treated - r.rate_held_out) * r.treated AS incremental_buyers,
       r.held_out > 0 AS randomised,
       CASE WHEN d.newest IS NULL OR d.newest < p.starts THEN 'upcoming' WHEN d.newest < p.ends THEN 'running'
            ELSE 'ended' END AS status
  FROM recsys.promotions p
  CROSS JOIN (SELECT max(e.ts) AS newest FROM recsys.events_clean e) d
  JOIN LATERAL (
    SELECT count(*) FILTER (WHERE x.treated) AS treated, count(*) FILTER (WHERE NOT x.treated) AS held_out,
           count(*) FILTER (WHERE x.treated AND x.bought) AS buyers_treated,
           count(*) FILTER (WHERE NOT x.treated AND x.bought) AS buyers_held_out,
           avg(x.bought::int) FILTER (WHERE x.treated)::float8 AS rate_treated,
           avg(x.bought::int) FILTER (WHERE NOT x.treated)::float8 AS rate_held_out,
           -- the pooled standard error under no difference, for the test
           sqrt(avg(x.bought::int) * (1 - avg(x.bought::int))
                * (1.0 / nullif(count(*) FILTER (WHERE x.treated), 0) + 1.0 / nullif(count(*) FILTER (WHERE NOT x.treated), 0)))::float8 AS se
      FROM recsys.promotion_exposures x WHERE x.promo_idx = p.promo_idx
  ) r0 ON r0.treated + r0.held_out > 0
  -- nothing is measured before the prepared events reach the offer's start
  CROSS JOIN LATERAL (SELECT r0.treated, r0.held_out,
                             CASE WHEN d.newest >= p.starts THEN r0.buyers_treated END AS buyers_treated,
                             CASE WHEN d.newest >= p.starts THEN r0.buyers_held_out END AS buyers_held_out,
                             CASE WHEN d.newest >= p.starts THEN r0.rate_treated END AS rate_treated,
                             CASE WHEN d.newest >= p.starts THEN r0.rate_held_out END AS rate_held_out,
                             CASE WHEN d.newest >= p.starts THEN r0.se END AS se) r
  LEFT JOIN LATERAL recsys.wilson_interval(r.buyers_treated, r.treated) wt ON true
  LEFT JOIN LATERAL recsys.wilson_interval(r.buyers_held_out, r.held_out) wc ON true;
COMMENT ON VIEW recsys.campaign_results IS 'BI: each promotion''s exposures and buyers, shown (treated) and held out, the share who bought its target in the window, the uplift (difference of the shares: what the offer added) with its 95% confidence interval (Newcombe''s hybrid score interval) and two-sided p-value (pooled z test), and the incremental buyers; an offer without held-out customers (not randomised) has no uplift, since its buyers might have bought anyway';
COMMENT ON COLUMN recsys.campaign_results.promo_id IS 'the shop''s promotion id';
COMMENT ON COLUMN recsys.campaign_results.name IS 'the offer''s name';
COMMENT ON COLUMN recsys.campaign_results.target_kind IS 'item, bundle or category';
COMMENT ON COLUMN recsys.campaign_results.target IS 'the target''s id or category';
COMMENT ON COLUMN recsys.campaign_results.discount IS 'the discount (percent or amount)';
COMMENT ON COLUMN recsys.campaign_results.discount_unit IS 'percent or amount';
COMMENT ON COLUMN recsys.campaign_results.starts IS 'the offer''s start';
COMMENT ON COLUMN recsys.campaign_results.ends IS 'the offer''s end';
COMMENT ON COLUMN recsys.campaign_results.treated IS 'customers shown the offer';
COMMENT ON COLUMN recsys.campaign_results.held_out IS 'customers held out (control)';
COMMENT ON COLUMN recsys.campaign_results.buyers_treated IS 'shown customers who bought the target in the window';
COMMENT ON COLUMN recsys.campaign_results.buyers_held_out IS 'held-out customers who bought it';
COMMENT ON COLUMN recsys.campaign_results.rate_treated IS 'share of shown customers who bought';
COMMENT ON COLUMN recsys.campaign_results.rate_held_out IS 'share of held-out customers who bought (NULL: none held out)';
COMMENT ON COLUMN recsys.campaign_results.uplift IS 'rate_treated - rate_held_out: the purchases the offer caused, per customer shown';
COMMENT ON COLUMN recsys.campaign_results.uplift_low IS 'lower end of the uplift''s 95% confidence interval';
COMMENT ON COLUMN recsys.campaign_results.uplift_high IS 'upper end of the uplift''s 95% confidence interval';
COMMENT ON COLUMN recsys.campaign_results.p_value IS 'two-sided p-value of no uplift';
COMMENT ON COLUMN recsys.campaign_results.incremental_buyers IS 'uplift x customers shown: buyers the offer added';
COMMENT ON COLUMN recsys.campaign_results.randomised IS 'whether the offer held customers out (without them no uplift is measured)';
COMMENT ON COLUMN recsys.campaign_results.status IS 'ended, running (the prepared events reach into its window: shares so far) or upcoming (they end before it starts: nothing measured yet)';
--@end

------------------------------------------------------------------------------
-- The response model: P(buy | customer, offer, shown or not), so uplift = P(buy | shown) - P(buy | not shown)
------------------------------------------------------------------------------

-- One definition of what the model reads of a customer and an offer, as of a time (training: the exposure, so
-- the response is never among the features; serving: now). The shown flag is appended by the callers.
--@begin recsys.promotion_features(integer, integer[], timestamp with time zone)
CREATE FUNCTION recsys.promotion_features(user_idx integer, promos integer[], as_of timestamptz)
RETURNS TABLE (promo_idx integer, x real[])
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    -- one pass over the customer's history for every offer asked
    WITH e AS (
        SELECT e.item_idx, e.ts, a.category
          FROM recsys.events_clean e LEFT JOIN recsys.item_attrs a ON a.item_idx = e.item_idx
         WHERE e.user_idx = promotion_features.user_idx AND e.ts < promotion_features.as_of
    )
    SELECT p.promo_idx, ARRAY[
        ln(1 + count(e.item_idx) FILTER (WHERE e.item_idx = ANY (p.items))),       -- bought the target before
        ln(1 + count(e.item_idx) FILTER (WHERE e.category = ANY (p.categories))),-- bought in its categories
        coalesce(exp(-extract(epoch FROM promotion_features.as_of - max(e.ts) FILTER (WHERE e.item_idx = ANY (p.items)))
                     / (86400 * 90)), 0),                                        -- recency of the target, 90-day decay
        ln(1 + count(e.item_idx)),                                               -- how much the customer buys
        CASE WHEN p.discount_unit = 'percent' THEN p.discount / 100
             ELSE least(p.discount / nullif(p.price, 0), 1) END,                -- the discount as a share
        ln(1 + coalesce(p.price, 0)) / 5,                                        -- the target's price
        -- what goes with what the customer bought: the strongest rule from one of their items to the target
        -- (recsys.item_pair_stats: departments and uses the catalogue does not spell out)
        coalesce((SELECT max(ps.confidence) FROM (SELECT DISTINCT e2.item_idx FROM e e2) d
                    JOIN recsys.item_pair_stats ps ON ps.item_a = d.item_idx AND ps.item_b = ANY (p.items)
                   WHERE NOT d.item_idx = ANY (p.items)), 0)
    ]::real[]
      FROM recsys.promotions p LEFT JOIN e ON true
     WHERE p.promo_idx = ANY (promotion_features.promos)
     GROUP BY p.promo_idx, p.items, p.discount_unit, p.discount, p.price
$$;
COMMENT ON FUNCTION recsys.promotion_features(integer, integer[], timestamp with time zone) IS 'what the response model reads of a customer and each of the offers asked, from the events before as_of (one pass over them): purchases of the target and of its categories (log), recency of the target (90-day decay), purchases in all (log), the discount as a share of the price, the price (log), and the strongest association rule (recsys.item_pair_stats confidence) from an item the customer bought to the target; no row for an unknown promotion';
--@end

-- The response model trains in the one training loop, recsys.train_driver, with the steps recsys.promotion_*:
-- CALL recsys.train('promotions') runs it. Its measure is the validation AUC of P(buy); the encoder stage is
-- skipped (no item vocabulary).
--@begin promotion training steps
CREATE FUNCTION recsys.promotion_kind() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT 'mlp' $$;
COMMENT ON FUNCTION recsys.promotion_kind() IS 'a response model step: the kind of the model it trains';

CREATE FUNCTION recsys.promotion_measure(OUT key text, OUT label text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT 'auc', 'AUC' $$;
COMMENT ON FUNCTION recsys.promotion_measure() IS 'a response model step: the validation measure it early-stops and activates on (the auc column of recsys.promotion_validate)';

CREATE FUNCTION recsys.promotion_prepare(o jsonb) RETURNS timestamptz
    LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- the association rules the features read, fresh unless told not to (as for the bundle model)
    IF (o ->> 'features')::boolean THEN
        PERFORM recsys.refresh_features();
    END IF;
    RETURN (SELECT max(x.exposed_at) FROM recsys.promotion_exposures x);
END
$$;
COMMENT ON FUNCTION recsys.promotion_prepare(jsonb) IS 'a response model step: refreshes the features (item pairs) when option features is true; returns the newest exposure''s time';

-- one sample per exposure: features as of the exposure plus the shown flag; one customer in five validates (seeded)
CREATE FUNCTION recsys.promotion_samples_for(version_id bigint, o jsonb, feedback_since timestamptz) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM recsys.train_samples s WHERE s.version_id = promotion_samples_for.version_id;
    INSERT INTO recsys.train_samples (version_id, user_idx, valid, bundle_idx, x, y)
    SELECT promotion_samples_for.version_id, x.user_idx,
           pg_catalog.hashint8extended(x.user_idx, (o ->> 'seed')::bigint) % 5 = 0,
           x.promo_idx,
           (SELECT f.x FROM recsys.promotion_features(x.user_idx, ARRAY[x.promo_idx], x.exposed_at) f) || x.treated::int::real,
           x.bought::int
      FROM recsys.promotion_exposures x;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.promotion_samples_for(bigint, jsonb, timestamp with time zone) IS 'a response model step: one sample per prepared exposure (features as of the exposure, the shown flag last; y: bought in the window), one customer in five (seeded) validating, stored for the version; returns their count';

CREATE FUNCTION recsys.promotion_status(version_id bigint, OUT samples bigint, OUT items integer)
    LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT (SELECT count(*) FROM recsys.train_samples s WHERE s.version_id = promotion_status.version_id), 0 $$;
COMMENT ON FUNCTION recsys.promotion_status(bigint) IS 'a response model step: the samples stored for a version in training, and no session encoder (items 0)';

CREATE FUNCTION recsys.promotion_validate(version_id bigint, scorer bytea)
RETURNS TABLE (auc double precision, logloss double precision, samples bigint)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    -- before any scorer (NULL) nothing is measured
    WITH scored AS (
        SELECT s.y, least(greatest((recsys.mlp_forward(promotion_validate.scorer, s.x))[1], 1e-6), 1 - 1e-6)::float8 AS p
          FROM recsys.train_samples s
         WHERE s.version_id = promotion_validate.version_id AND s.valid AND promotion_validate.scorer IS NOT NULL
    ), ranked AS (
        SELECT sc.y, sc.p, rank() OVER (ORDER BY sc.p) AS r FROM scored sc
    )
    -- the Mann-Whitney form of the area under the ROC curve
    SELECT (sum(r.r) FILTER (WHERE r.y = 1) - count(*) FILTER (WHERE r.y = 1) * (count(*) FILTER (WHERE r.y = 1) + 1) / 2.0)
             / nullif(count(*) FILTER (WHERE r.y = 1) * count(*) FILTER (WHERE r.y = 0), 0)::float8,
           -avg(r.y * ln(r.p) + (1 - r.y) * ln(1 - r.p)),
           count(*)
      FROM ranked r
$$;
COMMENT ON FUNCTION recsys.promotion_validate(bigint, bytea) IS 'a response model step: ROC AUC and log loss of P(buy) over the validating customers'' exposures of a version in training (NULL scorer: none)';

CREATE FUNCTION recsys.promotion_scorer_init(hidden integer, seed bigint) RETURNS bytea
    LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
    -- as wide as the samples: recsys.promotion_features and the shown flag
    SELECT recsys.model_init('mlp', pg_catalog.jsonb_build_object('layers',
               ARRAY[(SELECT cardinality(f.x) + 1 FROM recsys.promotions p
                        CROSS JOIN LATERAL recsys.promotion_features(-1, ARRAY[p.promo_idx], p.starts) f LIMIT 1),
                     hidden, 1], 'output', 'sigmoid'), seed)
$$;
COMMENT ON FUNCTION recsys.promotion_scorer_init(integer, bigint) IS 'a response model step: a fresh mlp from the response features and the shown flag through hidden units to P(buy), seeded';

CREATE FUNCTION recsys.promotion_scorer_of(weights bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT weights $$;
COMMENT ON FUNCTION recsys.promotion_scorer_of(bytea) IS 'a response model step: the scorer of a version''s weights (the weights are the scorer)';

CREATE FUNCTION recsys.promotion_scorer_epoch(version_id bigint, scorer bytea, epoch integer, o jsonb) RETURNS bytea
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT recsys.train_scorer_epoch(version_id, scorer, epoch, o) $$;
COMMENT ON FUNCTION recsys.promotion_scorer_epoch(bigint, bytea, integer, jsonb) IS 'a response model step: one epoch over the version''s samples (as the bundle scorer''s: Adam, binary cross-entropy)';

CREATE FUNCTION recsys.promotion_final(version_id bigint, o jsonb, scorer bytea, encoder bytea) RETURNS bytea
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM recsys.train_samples s WHERE s.version_id = promotion_final.version_id;
    PERFORM recsys.scorer_samples_release();
    RETURN scorer;
END
$$;
COMMENT ON FUNCTION recsys.promotion_final(bigint, jsonb, bytea, bytea) IS 'a response model step: the servable weights (the best scorer); drops the version''s samples';

CREATE FUNCTION recsys.promotion_activate(version_id bigint) RETURNS void
    LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT recsys.activate_version(version_id) $$;
COMMENT ON FUNCTION recsys.promotion_activate(bigint) IS 'a response model step: activates the trained version';
--@end

------------------------------------------------------------------------------
-- recommend_promotions: offers ranked by the margin they add, not by who would buy anyway
------------------------------------------------------------------------------

--@begin recommend_promotions(text, integer, jsonb)
CREATE FUNCTION @extschema@.recommend_promotions(user_id text, k integer DEFAULT 5, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, promo_id text, name text, target_kind text, target text, p_without real, p_with real,
               uplift real, expected_margin real, reason text, version_id bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    -- readers serve offers without reading the events or the exposures (as recommend_bundles)
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    o jsonb;
    at timestamptz;
    u integer;
    v bigint;
    w bytea;
BEGIN
    IF user_id IS NULL THEN
        RAISE EXCEPTION 'user_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'k must be between 1 and 1000, got %', coalesce(k::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    o := recsys.check_options(options, 'recommend_promotions');
    BEGIN
        at := coalesce((o ->> 'at')::timestamptz, pg_catalog.now());
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
        RAISE EXCEPTION 'option at must be a timestamp, got %', o -> 'at'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass it as text, e.g. "2026-11-30 12:00+00".';
    END;
    SELECT m.idx INTO u FROM recsys.id_map m WHERE m.space = 'user' AND m.ext_id = recommend_promotions.user_id;
    v := recsys.active_version(o ->> 'model');
    SELECT mv.weights INTO w FROM recsys.model_versions mv WHERE mv.version_id = v;
    RETURN QUERY
    WITH running AS (
        SELECT p.* FROM recsys.promotions p WHERE p.starts <= at AND at < p.ends
    ), offers AS (
        -- a customer recsys has never seen reads as one without purchases (index -1 has none)
        SELECT p.*, (o ->> 'margin')::float8 * coalesce(p.price, 0) AS margin,
               CASE WHEN p.discount_unit = 'percent' THEN coalesce(p.price, 0) * p.discount / 100
                    ELSE least(p.discount, coalesce(p.price, p.discount)) END AS cost,
               f.x
          FROM running p
          JOIN recsys.promotion_features(coalesce(u, -1), ARRAY(SELECT r.promo_idx FROM running r), at) f
            ON f.promo_idx = p.promo_idx
    ), predicted AS (
        -- the model, or before any training each offer's measured shares (held-out and shown customers)
        SELECT f.*,
               (recsys.mlp_forward(w, f.x || 0::real))[1] AS p0,
               (recsys.mlp_forward(w, f.x || 1::real))[1] AS p1
          FROM offers f WHERE w IS NOT NULL
        UNION ALL
        SELECT f.*, coalesce(c.rate_held_out, c.rate_treated, 0), coalesce(c.rate_treated, 0)
          FROM offers f LEFT JOIN recsys.campaign_results c ON c.promo_id = f.promo_id WHERE w IS NULL
    ), valued AS (
        -- with the offer the shop earns the margin less the discount on every sale; without it, the margin on the
        -- sales that happen anyway
        SELECT d.*, d.p1 * (d.margin - d.cost) - d.p0 * d.margin AS gain FROM predicted d
    )
    SELECT (row_number() OVER (ORDER BY x.gain DESC, x.promo_id))::int, x.promo_id, x.name, x.target_kind, x.target,
           x.p0::real, x.p1::real, (x.p1 - x.p0)::real, x.gain::real,
           -- the customer's own history only for the roles that may see it (recsys.may_see_history)
           CASE WHEN NOT recsys.may_see_history() THEN ''
                WHEN u IS NOT NULL AND x.x[1] > 0
                THEN pg_catalog.format('you bought %s %s time%s, last %s days ago; ', lower(x.target),
                                       round(exp(x.x[1]) - 1), CASE WHEN round(exp(x.x[1]) - 1) = 1 THEN '' ELSE 's' END,
                                       round(-90 * ln(greatest(x.x[3], 1e-9))))
                WHEN u IS NOT NULL AND x.x[2] > 0
                THEN pg_catalog.format('you buy in %s; ', array_to_string(x.categories, ', '))
                ELSE '' END
           || pg_catalog.format('%s lifts purchase from %s%% to %s%%%s',
                                coalesce(x.name, CASE WHEN x.discount_unit = 'percent' THEN round(x.discount::numeric, 1) || '%'
                                                      ELSE round(x.discount::numeric, 2)::text END || ' off ' || x.target),
                                round(100 * x.p0::numeric, 1), round(100 * x.p1::numeric, 1),
                                CASE WHEN w IS NULL THEN ' (the campaign''s measured shares: no response model is trained)'
                                     ELSE '' END),
           v
      FROM valued x
     ORDER BY x.gain DESC, x.promo_id
     LIMIT k;
END
$$;
COMMENT ON FUNCTION @extschema@.recommend_promotions(text, integer, jsonb) IS 'the k promotions running at option at (default now) ranked by expected incremental margin for a customer: P(buy | shown) x (margin - discount) - P(buy | not shown) x margin, from the active response model (CALL recsys.train(''promotions''); before one exists, each offer''s measured shares), so an offer to someone who buys anyway ranks low; margin is option margin (0.3) x the target''s price; a reason with the lift, and the customer''s history for the roles that may see it (recsys_app, recsys_admin); options: model, at, margin';
--@end

--@begin recommend_promotions(bigint, integer, jsonb)
CREATE FUNCTION @extschema@.recommend_promotions(user_id bigint, k integer DEFAULT 5, options jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, promo_id text, name text, target_kind text, target text, p_without real, p_with real,
               uplift real, expected_margin real, reason text, version_id bigint)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM @extschema@.recommend_promotions(user_id::text, k, options) $$;
COMMENT ON FUNCTION @extschema@.recommend_promotions(bigint, integer, jsonb) IS 'recommend_promotions for a bigint customer id';
--@end

-- recommend_bundles' option promotions: the best running offer on each bundle's items, for its reason
--@begin recsys.bundle_offers(text, text[], timestamp with time zone)
CREATE FUNCTION recsys.bundle_offers(user_id text, bundles text[], at timestamptz DEFAULT NULL)
RETURNS TABLE (ord integer, promo_id text, offer text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT ON (b.ord) b.ord::integer, o.promo_id, o.reason
      FROM pg_catalog.unnest(bundle_offers.bundles) WITH ORDINALITY AS b(bundle, ord)
      JOIN recsys.id_map m ON m.space = 'bundle' AND m.ext_id = b.bundle
      JOIN recsys.promotions p
        ON p.items && ARRAY(SELECT bi.item_idx FROM recsys.bundle_items bi WHERE bi.bundle_idx = m.idx)
      JOIN @extschema@.recommend_promotions(bundle_offers.user_id, 1000,
               CASE WHEN bundle_offers.at IS NULL THEN '{}'::jsonb
                    ELSE pg_catalog.jsonb_build_object('at', bundle_offers.at) END) o ON o.promo_id = p.promo_id
     -- an offer that costs more than it adds is not worth showing
     WHERE o.expected_margin > 0
     ORDER BY b.ord, o.expected_margin DESC, o.promo_id
$$;
COMMENT ON FUNCTION recsys.bundle_offers(text, text[], timestamp with time zone) IS 'for each of a list of bundle ids (ord: its position), the offer running at at (default now) on any of its items that adds the most expected margin for the customer, as recommend_promotions ranks and explains it; offers that lose margin are left out; what recommend_bundles attaches to its reasons with option promotions';
--@end
