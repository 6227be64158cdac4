-- A/B experiments on seeded synthetic traffic: a variant that truly converts better is detected (p < 0.05), A/A
-- experiments are not (beyond their 5% false-positive rate), assignment is deterministic and follows the shares.
\i test/pgtap/setup.psql
BEGIN;
SELECT plan(14);

-- seeded uniform in [0, 1) from a key (another hash seed than assignment uses, so behaviour does not follow the split)
CREATE FUNCTION pg_temp.u(key text) RETURNS float8 LANGUAGE sql IMMUTABLE AS
$$ SELECT (hashtextextended(key, 12345) & 9007199254740991)::float8 / 9007199254740992 $$;
-- n users see three bundles each; a user of variant v buys the first one with probability rates ->> v
CREATE FUNCTION pg_temp.simulate(exp text, n int, rates jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- user ids of their own per experiment: one experiment's purchases are not another's conversions
    PERFORM recsys.log_impressions(exp || '-u' || g, ARRAY['b1', 'b2', 'b3'], NULL, exp, recsys.experiment_variant(exp, exp || '-u' || g))
       FROM generate_series(1, n) g;
    PERFORM recsys.log_feedback(i.user_id, 'b2', 'click') FROM recsys.impressions i
      WHERE i.experiment = exp AND i.target = 'b2' AND pg_temp.u(exp || ':click:' || i.user_id) < 0.3;
    PERFORM recsys.log_feedback(i.user_id, 'b1', 'purchase', 25)
       FROM recsys.impressions i
      WHERE i.experiment = exp AND i.target = 'b1'
        AND pg_temp.u(exp || ':buy:' || i.user_id) < (rates ->> i.variant)::float8;
END $$;

SELECT lives_ok($$SELECT recsys.create_experiment('ab', '[{"name": "a", "baseline": true, "share": 0.5},
                                                          {"name": "b", "baseline": true, "share": 0.5}]')$$,
                'create_experiment accepts two variants whose shares sum to 1');
SELECT is(recsys.experiment_variant('ab', 'u17'), recsys.experiment_variant('ab', 'u17'), 'assignment is deterministic');
SELECT ok((SELECT abs(count(*) FILTER (WHERE recsys.experiment_variant('ab', 'u' || g) = 'a') - 2000) < 120
             FROM generate_series(1, 4000) g), 'assignment follows the 50/50 shares (within 3 standard deviations)');

-- B truly converts better: 14% against 10%
SELECT lives_ok($$SELECT pg_temp.simulate('ab', 4000, '{"a": 0.10, "b": 0.14}')$$, '4,000 users see three bundles each');
SELECT ok((SELECT p_value < 0.05 FROM recsys.experiment_report('ab') WHERE variant = 'b'),
          'a variant that truly converts better is detected with p < 0.05');
SELECT ok((SELECT uplift_low < 0.04 AND 0.04 < uplift_high AND uplift > 0 FROM recsys.experiment_report('ab') WHERE variant = 'b'),
          'the 95% interval of the uplift holds the true difference of 0.04');
SELECT is((SELECT impressions FROM recsys.experiment_report('ab') WHERE variant = 'a') +
          (SELECT impressions FROM recsys.experiment_report('ab') WHERE variant = 'b'), 12000::bigint,
          'every impression is counted once');
SELECT ok((SELECT abs(revenue_per_user - 25 * conversion) < 1e-9 FROM recsys.experiment_report('ab') WHERE variant = 'a'),
          'revenue per user is the purchases'' value over the users');
SELECT ok((SELECT abs(ctr - 0.1) < 0.02 FROM recsys.experiment_report('ab') WHERE variant = 'a'),
          'CTR is clicks over impressions (a third of impressions are clicked 30% of the time)');

-- A/A: twenty experiments with no true difference; at 5% about one is "significant" by chance
DO $$ BEGIN
    FOR s IN 1 .. 20 LOOP
        PERFORM recsys.create_experiment('aa' || s, '[{"name": "a", "baseline": true, "share": 0.5},
                                                     {"name": "a2", "baseline": true, "share": 0.5}]');
        PERFORM pg_temp.simulate('aa' || s, 1000, '{"a": 0.10, "a2": 0.10}');
    END LOOP;
END $$;
SELECT ok((SELECT count(*) FROM generate_series(1, 20) s, recsys.experiment_report('aa' || s) r
            WHERE r.variant = 'a2' AND r.p_value < 0.05) <= 3,
          'A/A experiments are not detected beyond chance (at most 3 of 20 below p 0.05)');
SELECT ok((SELECT p_value > 0.05 FROM recsys.experiment_report('aa1') WHERE variant = 'a2'), 'the first A/A is not detected');

-- a purchase before the impression does not count as a conversion
DO $$ BEGIN
    PERFORM recsys.create_experiment('order', '[{"name": "a", "baseline": true, "share": 0.5}, {"name": "b", "baseline": true, "share": 0.5}]');
    INSERT INTO recsys.feedback (user_id, target, event, value, at) VALUES ('early', 'b1', 'purchase', 10, now() - interval '1 day');
    PERFORM recsys.log_impressions('early', ARRAY['b1'], NULL, 'order', recsys.experiment_variant('order', 'early'));
END $$;
SELECT is((SELECT sum(converted_users) FROM recsys.experiment_report('order')), 0::numeric,
          'only purchases after the impression convert');

SELECT ok(recsys.stop_experiment('ab') AND NOT recsys.stop_experiment('ab'), 'stop_experiment is one call, and idempotent');
SELECT throws_ok($$SELECT recsys.create_experiment('bad', '[{"name": "a", "baseline": true, "share": 0.7},
                                                           {"name": "b", "baseline": true, "share": 0.7}]')$$,
                 '22023', NULL, 'shares that do not sum to 1 are refused');

SELECT * FROM finish();
ROLLBACK;
