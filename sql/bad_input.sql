-- Bad input at every SQL entry point: each case gets an ERROR with a fitting SQLSTATE (or the documented empty
-- answer), the message names the argument, and the session goes on. The last query counts the cases.
\i test/regress_setup.psql
DROP SCHEMA IF EXISTS shop CASCADE;
SELECT recsys.demo_shop(customers => 300) IS NOT NULL AS shop;
SELECT count(*) > 0 AS prepared FROM recsys.prepare();
CREATE TABLE pg_temp.cases (n serial, entry text, call text, want text);
INSERT INTO pg_temp.cases (entry, call, want) VALUES
 -- registration and preparation
 ('register_events', $$SELECT recsys.register_events('no_such_table', 'a', 'b')$$, '42P01'),
 ('register_events', $$SELECT recsys.register_events('shop.order_lines', 'nope', 'product_id')$$, '42703'),
 ('register_events', $$SELECT recsys.register_events('shop.order_lines', NULL, 'product_id')$$, '22004'),
 ('register_items', $$SELECT recsys.register_items('shop.products', 'product_id', 'name', 'category', 'created_at')$$, '42804'),
 ('register_bundles', $$SELECT recsys.register_bundles('recsys.prepare_run_seq', 'a', 'b')$$, '42809'),
 -- weights
 ('model_info', $$SELECT recsys.model_info('\x00'::bytea)$$, 'XX001'),
 ('model_info', $$SELECT recsys.model_info('RSYS'::bytea)$$, 'XX001'),
 ('model_check', $$SELECT recsys.model_check(NULL)$$, 'ok'),
 ('model_pack', $$SELECT recsys.model_pack('mlp', '{"w": [1, "x"]}')$$, '22023'),
 ('model_pack', $$SELECT recsys.model_pack('nope', '{"w": [1]}')$$, '22023'),
 ('model_tensor', $$SELECT recsys.model_tensor(recsys.model_pack('mlp', '{"w": [1]}'), 'nope')$$, '42704'),
 ('model_init', $$SELECT recsys.model_init('mlp', '{"layers": [3]}')$$, '54000'),
 ('model_init', $$SELECT recsys.model_init('mlp', '{"layers": [3, -1]}')$$, '54000'),
 ('model_init', $$SELECT recsys.model_init('gru', '{"vocab": 0}')$$, '22023'),
 ('model_init', $$SELECT recsys.model_init('bundle', '{}')$$, '22023'),
 ('mlp_forward', $$SELECT recsys.mlp_forward(recsys.model_init('mlp', '{"layers": [2, 1]}'), ARRAY[1, 'NaN']::real[])$$, '22023'),
 ('mlp_forward', $$SELECT recsys.mlp_forward(recsys.model_init('mlp', '{"layers": [2, 1]}'), ARRAY[1, 'Infinity']::real[])$$, '22023'),
 ('mlp_forward', $$SELECT recsys.mlp_forward(recsys.model_init('mlp', '{"layers": [2, 1]}'), ARRAY[1, 2, 3]::real[])$$, '2202E'),
 ('mlp_forward', $$SELECT recsys.mlp_forward(recsys.model_init('mlp', '{"layers": [2, 1]}'), '{}'::real[])$$, '2202E'),
 ('rnn_encode', $$SELECT recsys.rnn_encode(recsys.model_init('gru', '{"vocab": 5}'), ARRAY[7])$$, '22023'),
 ('rnn_encode', $$SELECT recsys.rnn_encode(recsys.model_init('mlp', '{"layers": [2, 1]}'), ARRAY[1])$$, '22023'),
 ('ease_fit', $$SELECT recsys.ease_fit(-1)$$, '22023'),
 ('ease_fit', $$SELECT recsys.ease_fit('NaN')$$, '22023'),
 ('item_pairs', $$SELECT * FROM recsys.item_pairs(0)$$, '22023'),
 ('bundle_fit', $$SELECT recsys.bundle_fit('{"lambda": -3}')$$, '22023'),
 ('bundle_fit', $$SELECT recsys.bundle_fit('{"colour": 1}')$$, '22023'),
 ('bundle_attach', $$SELECT recsys.bundle_attach(NULL, NULL)$$, '22004'),
 ('bundle_part', $$SELECT recsys.bundle_part(recsys.model_pack('mlp', '{"w": [1]}'), 'scorer')$$, '22023'),
 ('bundle_part', $$SELECT recsys.bundle_part(recsys.model_pack('mlp', '{"w": [1]}'), 'wheels')$$, '22023'),
 -- model store
 ('create_model', $$SELECT recsys.create_model('Bad Name', 'mlp')$$, '22023'),
 ('create_model', $$SELECT recsys.create_model('m', 'forest')$$, '22023'),
 ('add_version', $$SELECT recsys.add_version('nope', NULL)$$, '42704'),
 ('activate_version', $$SELECT recsys.activate_version(999999)$$, '42704'),
 ('rollback', $$SELECT recsys.rollback('nope')$$, '55000'),
 -- training
 ('train', $$CALL recsys.train('default', '{"epochs": 3}')$$, '22023'),
 ('train', $$CALL recsys.train('default', '{"max_epochs": "many"}')$$, '22023'),
 ('train', $$CALL recsys.train('default', '{"max_epochs": 0}')$$, '22023'),
 ('train', $$CALL recsys.train('default', '[]')$$, '22023'),
 ('train', $$CALL recsys.train(NULL)$$, '22023'),
 ('schedule_training', $$SELECT recsys.schedule_training('default', '* * * * *', '{"nope": 1}')$$, '22023'),
 ('schedule_training', $$SELECT recsys.schedule_training('default', '* * * * *')$$, '0A000'),
 -- serving
 ('recommend_bundles', $$SELECT * FROM recommend_bundles(42, 0)$$, '22023'),
 ('recommend_bundles', $$SELECT * FROM recommend_bundles(42, -5)$$, '22023'),
 ('recommend_bundles', $$SELECT * FROM recommend_bundles(42, 2000000000)$$, '54000'),
 ('recommend_bundles', $$SELECT * FROM recommend_bundles(42, 3, '[]')$$, '22023'),
 ('recommend_bundles', $$SELECT * FROM recommend_bundles(42, 3, '{"exclude_taken": "yes"}')$$, '22023'),
 ('recommend_bundles', $$SELECT * FROM recommend_bundles(42, 3, '{"model": "nope"}')$$, '42704'),
 ('recommend_bundles', $$SELECT * FROM recommend_bundles(NULL::bigint, 3)$$, 'ok'),
 ('recommend_bundles', $$SELECT * FROM recommend_bundles('someone we never saw', 3)$$, 'ok'),
 ('recommend_items', $$SELECT * FROM recommend_items(42, 0)$$, '22023'),
 ('recommend_items', $$SELECT * FROM recommend_items(42, 3, '{"max_price": -1}')$$, '22023'),
 ('complete_bundle', $$SELECT * FROM complete_bundle('{}'::text[], 3)$$, '22023'),
 ('complete_bundle', $$SELECT * FROM complete_bundle(ARRAY['1001'], 3, '{"in_stock": 1}')$$, '22023'),
 ('similar_items', $$SELECT * FROM similar_items('no such item', 3)$$, '42704'),
 ('similar_items', $$SELECT * FROM similar_items('1001', 100000)$$, '54000'),
 -- features
 ('user_sequences', $$SELECT * FROM recsys.user_sequences(-1)$$, '22023'),
 ('item_profiles', $$SELECT * FROM recsys.item_profiles(0)$$, '22023'),
 ('user_profiles', $$SELECT * FROM recsys.user_profiles(100000)$$, '22023'),
 ('mine_bundles', $$SELECT recsys.mine_bundles('{"min_customers": 1}')$$, '22023'),
 ('mine_bundles', $$SELECT recsys.mine_bundles('{"max_size": 9}')$$, '22023'),
 -- evaluation, experiments, feedback
 ('rank_metrics', $$SELECT * FROM recsys.rank_metrics(ARRAY['a'], ARRAY['a'], -1)$$, '22023'),
 ('gini', $$SELECT recsys.gini(ARRAY[-1]::float8[])$$, '22023'),
 ('normal_cdf', $$SELECT recsys.normal_cdf('NaN')$$, '22023'),
 ('split_pairs', $$SELECT * FROM recsys.split_pairs('random', '{"fraction": 2}')$$, '22023'),
 ('cross_validate', $$SELECT * FROM recsys.cross_validate('default', 50)$$, '22023'),
 ('evaluate', $$SELECT * FROM recsys.evaluate('default', NULL, 'pg_class', '{}')$$, '55000'),
 ('create_experiment', $$SELECT recsys.create_experiment('x', '[]')$$, '22023'),
 ('create_experiment', $$SELECT recsys.create_experiment('x', '[{"name": "a", "version": 424242, "share": 0.5}, {"name": "b", "baseline": true, "share": 0.5}]')$$, '42704'),
 ('stop_experiment', $$SELECT recsys.stop_experiment('never started')$$, '42704'),
 ('log_feedback', $$SELECT recsys.log_feedback('42', '611', 'love')$$, '22023'),
 ('log_feedback', $$SELECT recsys.log_feedback('42', '611', 'purchase', -3)$$, '22023'),
 ('log_impressions', $$SELECT recsys.log_impressions('42', ARRAY['611'], NULL, NULL, NULL, 'shelf')$$, '22023'),
 ('forget_user', $$SELECT recsys.forget_user(NULL)$$, 'ok'),
 ('demo_shop', $$SELECT recsys.demo_shop('shop')$$, '42P06'),
 -- scale-out
 ('fit_partial', $$SELECT recsys.fit_partial('{"lambda": "x"}')$$, '22023'),
 ('fit_partial', $$SELECT recsys.fit_partial('{"nope": 1}')$$, '22023'),
 ('fit_merge', $$SELECT recsys.fit_merge('{}'::bytea[], '{}')$$, '22023'),
 ('fit_merge', $$SELECT recsys.fit_merge(ARRAY[NULL]::bytea[], '{}')$$, '22023'),
 ('fit_merge', $$SELECT recsys.fit_merge(ARRAY['\x00'::bytea], '{}')$$, 'XX001'),
 ('fit_merge', $$SELECT recsys.fit_merge(ARRAY[recsys.bundle_fit('{}')], '{}')$$, '22023'),
 ('fit_merge', $$SELECT recsys.fit_merge(ARRAY[recsys.fit_partial('{}'), recsys.fit_partial('{"beta": 2}')], '{}')$$, '22023'),
 ('fit_merge', $$SELECT recsys.fit_merge(ARRAY[recsys.fit_partial('{}')], '{"beta": 3}')$$, '22023'),
 ('fit_merge', $$SELECT recsys.fit_merge(ARRAY[[recsys.fit_partial('{}')]], '{}')$$, '2202E'),
 ('train_merge', $$SELECT recsys.train_merge(x) FROM (VALUES ('\x00'::bytea)) v(x)$$, 'XX001'),
 ('shard_scorer_epoch', $$SELECT recsys.shard_scorer_epoch('no such job', recsys.model_init('mlp', '{"layers": [5, 1]}'), 1)$$, 'ok'),
 ('shard_validate', $$SELECT * FROM recsys.shard_validate('no such job', NULL)$$, 'ok'),
 ('shard_encoder_epoch', $$SELECT recsys.shard_encoder_epoch(recsys.model_init('mlp', '{"layers": [5, 1]}'), 1)$$, '22023'),
 ('shard_encoder_epoch', $$SELECT recsys.shard_encoder_epoch(recsys.model_init('gru', '{"vocab": 3}'), 1)$$, '22023'),
 ('publish_version', $$SELECT recsys.publish_version('default', 1, recsys.model_init('mlp', '{"layers": [5, 1]}'), 'x')$$, 'XX001'),
 ('publish_version', $$SELECT recsys.publish_version('default', NULL, NULL, NULL)$$, '22004'),
 ('recommend_bundles_batch', $$SELECT * FROM recommend_bundles_batch(ARRAY[NULL, 42]::bigint[], 3)$$, 'ok'),
 ('recommend_bundles_batch', $$SELECT * FROM recommend_bundles_batch(ARRAY[42]::bigint[], -1)$$, '22023');
SELECT c.n, c.entry, pg_temp.try(c.call) AS result FROM pg_temp.cases c ORDER BY c.n;
-- every case got what it should: an error with the expected SQLSTATE, or 'ok' for the documented answers
SELECT count(*) AS cases, count(*) FILTER (WHERE left(pg_temp.try(c.call), 5) = c.want OR (c.want = 'ok' AND pg_temp.try(c.call) = 'ok')) AS as_expected,
       count(DISTINCT c.entry) AS entry_points
  FROM pg_temp.cases c;
SELECT 'session alive' AS still;
