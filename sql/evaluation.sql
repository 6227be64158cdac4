-- recsys.evaluate against metrics computed directly, experiments served by recommend_bundles, impression logging, BI views.
\i test/regress_setup.psql
DROP SCHEMA IF EXISTS shop CASCADE;
SELECT recsys.demo_shop(customers => 600) IS NOT NULL AS shop;
SELECT count(*) > 0 AS prepared FROM recsys.prepare();
CALL recsys.train('default', '{"max_epochs": 2, "gru_epochs": 0}');
-- held-out pairs: for each of 100 customers, two bundles they did not take (a hash picks them)
CREATE TABLE heldout AS
SELECT c.customer_id AS user_id, b.bundle_id
  FROM (SELECT customer_id FROM shop.customers ORDER BY customer_id LIMIT 100) c
 CROSS JOIN LATERAL (SELECT b.bundle_id FROM shop.bundles b
                      WHERE NOT EXISTS (SELECT 1 FROM shop.bundle_orders o WHERE o.customer_id = c.customer_id AND o.bundle_id = b.bundle_id)
                      ORDER BY hashint8(b.bundle_id * 1000 + c.customer_id) LIMIT 2) b;
CREATE TEMP TABLE ev AS SELECT * FROM recsys.evaluate('default', NULL, 'heldout', '{5,10}');
SELECT method, count(*) AS metrics FROM ev GROUP BY 1 ORDER BY 1;
-- the model's recall@10 and ndcg@10, recomputed here from recommend_bundles and rank_metrics
SELECT abs((SELECT value FROM ev WHERE method = 'model' AND k = 10 AND metric = 'recall')
           - (SELECT avg((recsys.rank_metrics(ARRAY(SELECT r.bundle_id FROM recommend_bundles(h.user_id::text, 10) r ORDER BY r.rank),
                                              h.positives, 10)).recall_at_k)
                FROM (SELECT user_id, array_agg(bundle_id::text) AS positives FROM heldout GROUP BY 1) h)) < 1e-9 AS recall_matches,
       (SELECT bool_and(users = 100) FROM ev WHERE metric <> 'coverage') AS users_100,
       (SELECT lift_over_popular = 1 FROM ev WHERE method = 'most_popular' AND k = 5 AND metric = 'hit') AS popular_lift_1;
SELECT count(DISTINCT evaluation_id) AS evaluations, count(*) AS rows FROM recsys.evaluations;
-- a hold-out taken from the very bundle events the model trained on: a warning, not silent zeros
CREATE TABLE heldout_trained AS
SELECT customer_id AS user_id, bundle_id FROM shop.bundle_orders ORDER BY customer_id, bundle_id LIMIT 50;
SELECT count(*) AS metrics, max(value) AS best FROM recsys.evaluate('default', NULL, 'heldout_trained', '{10}') WHERE method = 'model';
DROP TABLE heldout_trained;
SELECT pg_temp.try($$SELECT * FROM recsys.evaluate('default', NULL, NULL)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.evaluate('nope', NULL, 'heldout')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.evaluate('default', NULL, 'heldout', '{0}')$$);

-- serving a version explicitly, and an experiment between two versions
SELECT recsys.add_version('default', (SELECT weights FROM recsys.model_versions WHERE version_id = 1), 'candidate') AS v2;
SELECT count(*) AS rows, max(version_id)::int AS served FROM recsys.recommend_bundles_traced('42', 5, '{"version": 2}');
SELECT pg_temp.try($$SELECT * FROM recommend_bundles(42, 5, '{"version": 99}')$$);
SELECT recsys.create_experiment('retrain', '[{"name": "control", "version": 1, "share": 0.5}, {"name": "new", "version": 2, "share": 0.5}]');
CREATE TEMP TABLE served AS
SELECT g AS customer, count(*) AS rows, max(t.variant) AS variant, max(t.version_id)::int AS version
  FROM generate_series(1, 60) g, recsys.recommend_bundles_traced(g::text, 3) t GROUP BY g;
SELECT bool_and(variant = recsys.experiment_variant('retrain', customer::text)) AS variant_matches_assignment,
       bool_and(version = CASE variant WHEN 'control' THEN 1 ELSE 2 END) AS version_matches_variant,
       count(DISTINCT variant) AS variants_seen, bool_and(rows = 3) AS k_rows
  FROM served;
-- logged impressions carry version, experiment and variant
SELECT count(*) AS shown FROM recsys.recommend_bundles_logged('42', 4);
SELECT count(*) AS impressions, bool_and(version_id = CASE variant WHEN 'control' THEN 1 ELSE 2 END) AS traced,
       min(experiment) AS experiment, array_agg(rank ORDER BY rank) AS ranks
  FROM recsys.impressions;
SELECT recsys.stop_experiment('retrain') AS stopped;
SELECT count(*) AS rows, max(version_id)::int AS back_to_active, bool_and(variant IS NULL) AS no_variant
  FROM recsys.recommend_bundles_traced('42', 3);
-- a baseline variant serves the co-occurrence ranker
SELECT recsys.create_experiment('vs_baseline', '[{"name": "model", "version": 1, "share": 0.5}, {"name": "base", "baseline": true, "share": 0.5}]');
SELECT bool_and(s.version = CASE s.variant WHEN 'base' THEN 0 ELSE 1 END) AS baseline_variant_served
  FROM (SELECT g, count(*) AS n, max(t.variant) AS variant, coalesce(max(t.version_id), 0)::int AS version
          FROM generate_series(1, 40) g, recsys.recommend_bundles_traced(g::text, 3) t GROUP BY g) s;
SELECT recsys.stop_experiment('vs_baseline') AS stopped;

-- splits: kfold covers every eligible pair once; time takes each customer's latest share; last_basket the latest purchase
SELECT (SELECT count(*) FROM recsys.split_pairs('kfold', '{"folds": 4}'))
     = (SELECT count(*) FROM recsys.user_bundles ub WHERE (SELECT count(*) FROM recsys.user_bundles x WHERE x.user_idx = ub.user_idx) >= 2) AS kfold_covers,
       (SELECT count(DISTINCT (user_idx, bundle_idx)) = count(*) AND min(fold) = 1 AND max(fold) = 4 FROM recsys.split_pairs('kfold', '{"folds": 4}')) AS kfold_partition;
SELECT bool_and(t.n_test = least(greatest(1, ceil(0.2 * t.n)), t.n - 1)) AS time_share,
       bool_and(t.oldest_test >= t.newest_train) AS time_latest
  FROM (SELECT ub.user_idx, count(*) AS n, count(sp.bundle_idx) AS n_test,
               min(ub.last_ts) FILTER (WHERE sp.bundle_idx IS NOT NULL) AS oldest_test,
               max(ub.last_ts) FILTER (WHERE sp.bundle_idx IS NULL) AS newest_train
          FROM recsys.user_bundles ub LEFT JOIN recsys.split_pairs('time') sp USING (user_idx, bundle_idx)
         GROUP BY ub.user_idx HAVING count(*) >= 2) t;
SELECT bool_and(ub.last_ts = (SELECT max(x.last_ts) FROM recsys.user_bundles x WHERE x.user_idx = sp.user_idx)) AS last_basket_latest
  FROM recsys.split_pairs('last_basket') sp JOIN recsys.user_bundles ub USING (user_idx, bundle_idx);
SELECT abs((SELECT count(*) FROM recsys.split_pairs('random', '{"fraction": 0.3}'))::float8
           / (SELECT count(*) FROM recsys.split_pairs('kfold')) - 0.3) < 0.1 AS random_fraction;
SELECT pg_temp.try($$SELECT * FROM recsys.split_pairs('bogus')$$);

-- cross-validation: each fold trained and scored in a rolled-back subtransaction; mean and deviation per metric
CREATE TEMP TABLE before AS SELECT (SELECT count(*) FROM recsys.user_bundles) AS pairs, (SELECT count(*) FROM recsys.model_versions) AS versions,
                                   (SELECT sum(n_users) FROM recsys.bundle_stats) AS buyers;
CREATE TEMP TABLE cv AS SELECT * FROM recsys.cross_validate('default', 3, '{"k_list": [10], "train": {"max_epochs": 2}}');
SELECT method, count(*) AS metrics, bool_and(folds_run = 3) AS three_folds, bool_and(stddev >= 0) AS deviations,
       bool_and(mean BETWEEN 0 AND 1) FILTER (WHERE metric <> 'coverage') AS in_range
  FROM cv GROUP BY method ORDER BY method;
SELECT (SELECT count(*) FROM recsys.user_bundles) = pairs AS pairs_untouched, (SELECT count(*) FROM recsys.model_versions) = versions AS no_new_versions,
       (SELECT sum(n_users) FROM recsys.bundle_stats) = buyers AS stats_untouched,
       (SELECT count(DISTINCT split) FROM recsys.evaluations WHERE split LIKE 'kfold %/3') AS folds_recorded
  FROM before;
SELECT pg_temp.try($$SELECT * FROM recsys.cross_validate('default', 1)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.cross_validate('default', 3, '{"fold": 1}')$$);

-- BI views read
SELECT count(*) > 0 AS overview FROM recsys.model_overview;
SELECT count(*) > 0 AS curve FROM recsys.training_curve WHERE stage = 'scorer';
SELECT count(*) > 0 AS history FROM recsys.evaluation_history;
SELECT sum(impressions) AS bundle_impressions FROM recsys.bundle_performance;
SELECT count(*) FILTER (WHERE bundle_name IS NOT NULL) = count(*) AS all_named,
       bool_and(first_shown <= last_shown) AS times_ordered,
       count(*) FILTER (WHERE cardinality(variants) > 0) > 0 AS some_shown_by_a_variant
  FROM recsys.bundle_performance;
SELECT count(*) AS result_rows FROM recsys.experiment_results;
DROP TABLE heldout;
