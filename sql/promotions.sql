-- Promotions and demand on the demo shop, where the truth is known (recsys.demo_promotions keeps each customer's
-- chance to buy with and without each offer): registration and its rules, the campaigns' uplift against their
-- held-out customers, the response model (CALL recsys.train('promotions')), offers ranked by the margin they add,
-- and demand forecasts against their baselines.
\i test/regress_setup.psql
DROP SCHEMA IF EXISTS shop CASCADE;
SELECT (recsys.demo_shop()) ->> 'customers' AS customers;
SELECT p ->> 'campaigns' AS campaigns, p ->> 'first_order' AS first_order, p ->> 'last_order' AS last_order
  FROM recsys.demo_promotions() p;

-- registration is validated like every registration
SELECT pg_temp.try($$SELECT recsys.register_promotions('shop.campaigns', 'campaign_id', 'nope', 'discount', 'starts', 'ends')$$);
SELECT pg_temp.try($$SELECT recsys.register_promotions('shop.campaigns', 'campaign_id', 'target', 'name', 'starts', 'ends')$$);
SELECT pg_temp.try($$SELECT recsys.register_promotion_exposures('shop.campaign_exposures', 'customer_id', 'campaign_id', 'exposed_at', 'p_with')$$);

-- prepare reads them, by rule
SELECT source, rule, rows FROM recsys.prepare() WHERE source LIKE 'promotion%' ORDER BY source, rule;
-- an offer it cannot use is dropped and counted: a bad unit, a window that ends before it starts, an unknown target
CREATE TABLE shop.more_campaigns AS SELECT * FROM shop.campaigns;
INSERT INTO shop.more_campaigns VALUES
  ('X1', 'bad unit', 'item', '1000', 1, 5, 'euros', '2026-03-01', '2026-03-10', true, 1),
  ('X2', 'backwards', 'item', '1000', 1, 5, 'amount', '2026-03-10', '2026-03-01', true, 1),
  ('X3', 'no such product', 'item', '424242', 1, 5, 'amount', '2026-03-01', '2026-03-10', true, 1);
SELECT recsys.register_promotions('shop.more_campaigns', 'campaign_id', 'target', 'discount', 'starts', 'ends',
                                  'target_kind', 'discount_unit', 'name') ->> 'kind' AS kind;
SELECT rule, rows FROM recsys.prepare() WHERE source = 'promotions' AND rows > 0 ORDER BY rule;

-- the randomised campaigns' uplift: each 95% interval holds the true effect on buying in the window (the mean of
-- p_with - p_without over the customers the campaign picked, 0 for those whose own orders already held the
-- target); a targeted campaign without held-out customers measures none, nor does one the events do not reach yet
SELECT c.promo_id, c.randomised, c.status,
       CASE WHEN c.randomised AND c.status = 'ended'
            THEN t.truth BETWEEN c.uplift_low AND c.uplift_high END AS interval_holds_truth,
       (c.randomised AND c.status <> 'upcoming') = (c.uplift IS NOT NULL) AS uplift_when_measured
  FROM recsys.campaign_results c
  JOIN (SELECT campaign_id, avg(CASE WHEN bought_anyway THEN 0 ELSE p_with - p_without END) AS truth FROM shop.campaign_exposures GROUP BY 1) t
    ON t.campaign_id = c.promo_id
 ORDER BY c.starts;

-- before any training, offers rank on the campaigns' measured shares, and say so
SELECT count(*) AS offers, bool_and(reason LIKE '%no response model is trained%') AS says_untrained
  FROM recommend_promotions(17, 5, '{"at": "2026-11-15"}');

-- the response model, in the one training loop: a committed row per epoch with validation AUC and log loss, early
-- stop on the AUC, activation
CALL recsys.train('promotions', '{"max_epochs": 12, "patience": 3}');
SELECT count(*) > 1 AS epochs, bool_and((r.metrics ->> 'valid_auc')::float8 > 0.6) AS auc_above_chance
  FROM recsys.training_runs r JOIN recsys.model_versions v USING (version_id)
 WHERE v.model = 'promotions' AND r.epoch > 0;
SELECT status, metrics ? 'valid_auc' AS has_auc FROM recsys.model_versions WHERE model = 'promotions';
SELECT stage, state FROM recsys.training_progress WHERE model = 'promotions' ORDER BY started_at;

-- recommend_promotions: the offers running then, ranked by expected incremental margin, with a reason
SELECT count(*) AS offers, bool_and(p_with >= 0 AND p_with <= 1 AND p_without >= 0 AND p_without <= 1) AS probabilities,
       bool_and(version_id = recsys.active_version('promotions')) AS traced,
       bool_and(reason ~ 'lifts purchase from [0-9.]+% to [0-9.]+%') AS reasons
  FROM recommend_promotions(17, 5, '{"at": "2026-11-15"}');
SELECT array_agg(rank ORDER BY expected_margin DESC) = array_agg(rank ORDER BY rank) AS ranked_by_margin
  FROM recommend_promotions(17, 5, '{"at": "2026-11-15"}');
SELECT count(*) AS offers_before_any FROM recommend_promotions(17, 5, '{"at": "2020-01-01"}');
SELECT count(*) AS unknown_customer FROM recommend_promotions('somebody new', 2, '{"at": "2026-11-15"}');
SELECT pg_temp.try($$SELECT * FROM recommend_promotions(17, 0)$$);
SELECT pg_temp.try($$SELECT * FROM recommend_promotions(17, 3, '{"at": "soon"}')$$);
SELECT pg_temp.try($$SELECT * FROM recommend_promotions(17, 3, '{"margin": 2}')$$);
SELECT pg_temp.try($$SELECT * FROM recommend_promotions(17, 3, '{"colour": "red"}')$$);

-- a reader serves offers and reads the campaigns' results, without the customer's history in the reasons, and
-- trains or forecasts nothing
SELECT count(*) FILTER (WHERE r.reason LIKE 'you b%') > 0 AS history_for_admin
  FROM shop.customers c CROSS JOIN LATERAL recommend_promotions(c.customer_id, 5, '{"at": "2026-11-15"}') r
 WHERE c.customer_id <= 100;
CREATE ROLE recsys_promo_reader;
GRANT recsys_reader TO recsys_promo_reader;
GRANT USAGE ON SCHEMA shop TO recsys_promo_reader;
GRANT SELECT ON shop.customers TO recsys_promo_reader;
SET ROLE recsys_promo_reader;
SELECT count(*) > 0 AS offers, count(*) FILTER (WHERE r.reason LIKE 'you b%') AS history_for_reader
  FROM shop.customers c CROSS JOIN LATERAL recommend_promotions(c.customer_id, 5, '{"at": "2026-11-15"}') r
 WHERE c.customer_id <= 100;
SELECT count(*) AS campaigns FROM recsys.campaign_results;
SELECT pg_temp.try($$SELECT * FROM recsys.forecast_demand(7)$$);
SELECT pg_temp.try($$CALL recsys.train('promotions')$$);
RESET ROLE;
REVOKE ALL ON shop.customers FROM recsys_promo_reader;
REVOKE ALL ON SCHEMA shop FROM recsys_promo_reader;
DROP ROLE recsys_promo_reader;

-- in the simulator: each of 400 customers gets the top offer of each ranking; the margin it truly adds is
-- p_with x (margin - discount) - p_without x margin. Ranking by expected incremental margin earns more than
-- ranking by the chance to buy, which courts the customers who buy anyway.
WITH picks AS (
    SELECT c.customer_id,
           (SELECT r.promo_id FROM recommend_promotions(c.customer_id, 3, '{"at": "2026-11-15"}') r ORDER BY r.rank LIMIT 1) AS by_margin,
           (SELECT r.promo_id FROM recommend_promotions(c.customer_id, 3, '{"at": "2026-11-15"}') r ORDER BY r.p_with DESC LIMIT 1) AS by_p_buy
      FROM shop.customers c WHERE c.customer_id <= 400
), value AS (
    SELECT t.campaign_id, t.customer_id,
           t.p_with * (0.3 * p.price - p.price * p.discount / 100) - t.p_without * 0.3 * p.price AS gain
      FROM shop.campaign_truth t JOIN recsys.promotions p ON p.promo_id = t.campaign_id
)
SELECT sum(a.gain) > sum(b.gain) AS margin_ranking_earns_more
  FROM picks k
  JOIN value a ON a.customer_id = k.customer_id AND a.campaign_id = k.by_margin
  JOIN value b ON b.customer_id = k.customer_id AND b.campaign_id = k.by_p_buy;

-- recommend_bundles attaches the running offer on a bundle's items that adds the most margin, when asked
CALL recsys.train('default', '{"max_epochs": 2, "gru_epochs": 0, "features": false}');
-- offers running then attach to bundles that hold their target, for the customers for whom the model expects
-- them to add margin
SELECT count(*) >= 20 AS offers_attached,
       bool_and(EXISTS (SELECT 1 FROM recsys.promotions p JOIN recsys.id_map m ON m.space = 'bundle' AND m.ext_id = r.bundle_id::text
                         WHERE r.reason LIKE '%; offer: %' || p.name || ' lifts purchase from%'
                           AND p.items && ARRAY(SELECT bi.item_idx FROM recsys.bundle_items bi WHERE bi.bundle_idx = m.idx)
                           AND p.starts <= '2026-11-15' AND '2026-11-15' < p.ends)) AS on_bundles_holding_their_target
  FROM shop.customers c
 CROSS JOIN LATERAL recommend_bundles(c.customer_id, 10, '{"promotions": true, "promotions_at": "2026-11-15"}') r
 WHERE c.second_dept = 1 AND r.reason LIKE '%; offer: %';
SELECT 88 AS promo_customer \gset
SELECT count(*) FILTER (WHERE reason LIKE '%; offer: %') AS offers_unasked FROM recommend_bundles(:promo_customer, 10);
SELECT count(*) FILTER (WHERE reason LIKE '%; offer: %') AS offers_before_any
  FROM recommend_bundles(:promo_customer, 10, '{"promotions": true, "promotions_at": "2020-01-01"}');
SELECT pg_temp.try($$SELECT * FROM recommend_bundles(1, 3, '{"promotions": "yes"}')$$);
SELECT pg_temp.try($$SELECT * FROM recommend_bundles(1, 3, '{"promotions": true, "promotions_at": 5}')$$);

-- without a registered exposures relation, the application's log: offers shown (and held out, variant holdout)
-- as impressions of kind promotion, redemptions as purchase feedback
DELETE FROM recsys.sources WHERE kind = 'promotion_exposures';
SELECT sum(recsys.log_impressions(c::text, ARRAY['C1'], NULL, 'spring_offer', CASE WHEN c % 4 = 0 THEN 'holdout' ELSE 'offer' END, 'promotion')) AS logged
  FROM generate_series(1, 200) c;
SELECT count(*) AS redemptions FROM (
    SELECT recsys.log_feedback(c::text, 'C1', 'purchase', 9.99, 'promotion') FROM generate_series(1, 200, 3) c) f;
UPDATE recsys.impressions SET shown_at = '2026-03-03' WHERE target_kind = 'promotion';
UPDATE recsys.feedback SET at = '2026-03-05' WHERE target_kind = 'promotion';
SELECT rule, rows FROM recsys.prepare() WHERE source = 'promotion_exposures' ORDER BY rule;
SELECT promo_id, treated, held_out, buyers_treated >= 50 AS redemptions_count FROM recsys.campaign_results WHERE treated + held_out > 0;
SELECT pg_temp.try($$SELECT recsys.log_impressions('1', ARRAY['C1'], NULL, NULL, NULL, 'coupon')$$);
SELECT recsys.register_promotion_exposures('shop.campaign_exposures', 'customer_id', 'campaign_id', 'exposed_at', 'treated') ->> 'kind' AS kind;
SELECT count(*) > 0 AS prepared_again FROM recsys.prepare();

-- erasure reaches the exposures
SELECT (recsys.forget_user('17') -> 'promotion_exposures')::int > 0 AS exposures_erased;

-- demand: the backtest over rolling origins beats seasonal naive by at least 10% (items) and 15% (categories)
SELECT level, method, origins, mase_vs_seasonal_naive < CASE level WHEN 'item' THEN 0.9 ELSE 0.85 END AS beats_target,
       interval_coverage BETWEEN 0.5 AND 1 AS interval_covers
  FROM (SELECT * FROM recsys.demand_backtest(28, '{"origins": 2}')
        UNION ALL SELECT * FROM recsys.demand_backtest(28, '{"origins": 2, "level": "category"}')) b
 WHERE method = 'model';
-- forecasts are stored with the version that made them, the baselines beside them
SELECT count(DISTINCT key) > 100 AS items, count(DISTINCT day) AS days, bool_and(lo <= forecast AND forecast <= hi) AS ordered
  FROM recsys.forecast_demand(14);
SELECT method, count(*) > 0 AS stored, bool_and(version_id = recsys.active_version('demand_item')) AS traced
  FROM recsys.demand_forecasts GROUP BY method ORDER BY method;
SELECT count(*) > 0 AS bundle_series FROM recsys.forecast_demand(7, '{"level": "bundle", "store": false}');
-- stock against the forecasts: out-of-stock items first, slow movers last
SELECT count(*) > 0 AS at_risk, bool_or(risk = 'stock-out') AS stock_outs, bool_or(risk = 'slow mover') AS slow_movers
  FROM recsys.stock_risks;
SELECT pg_temp.try($$SELECT * FROM recsys.forecast_demand(0)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.forecast_demand(7, '{"level": "aisle"}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.forecast_demand(7, '{"origin": "2019-01-01"}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.forecast_demand(200, '{"history_days": 100}')$$);
