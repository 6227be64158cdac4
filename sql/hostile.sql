-- A hostile probe's classes (issue 12), with the shapes it used and others: sizes from user input, ids that are
-- missing or not canonical, weights that do not fit the model or the catalogue, options that are almost right.
-- Each case must end in its SQLSTATE (or 'ok'), and the backend must live. Roles are in test/pgtap/security.sql,
-- locks in test/training.sh.
\i test/regress_setup.psql
DROP SCHEMA IF EXISTS shop CASCADE;
SELECT recsys.demo_shop(customers => 300) IS NOT NULL AS shop;
SELECT count(*) > 0 AS prepared FROM recsys.prepare();
CALL recsys.train('default', '{"max_epochs": 2, "gru_epochs": 1}');
-- nested arrays whose first elements promise more numbers than the JSON holds
CREATE FUNCTION pg_temp.zeros(n int) RETURNS jsonb LANGUAGE sql AS $$ SELECT to_jsonb(array_fill(0, ARRAY[n])) $$;
CREATE FUNCTION pg_temp.promise(lens int[]) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v jsonb := pg_temp.zeros(lens[cardinality(lens)]);
BEGIN
    FOR i IN REVERSE cardinality(lens) - 1 .. 1 LOOP
        v := jsonb_build_array(v) || pg_temp.zeros(lens[i] - 1);
    END LOOP;
    RETURN jsonb_build_object('w', v);
END $$;
CREATE TABLE pg_temp.cases (n serial, entry text, call text, want text);
INSERT INTO pg_temp.cases (entry, call, want) VALUES
 -- 1. sizes: the product of promised dimensions overflows (2^64 wraps to 0) or exceeds what the value holds
 ('model_pack', $$SELECT recsys.model_pack('mlp', pg_temp.promise(ARRAY[65536, 65536, 32768, 32768]))$$, '22023'),
 ('model_pack', $$SELECT recsys.model_pack('mlp', pg_temp.promise(ARRAY[65536, 65536, 65536, 65536]))$$, '22023'),
 ('model_pack', $$SELECT recsys.model_pack('mlp', pg_temp.promise(ARRAY[2, 3000000]))$$, '22023'),
 ('model_pack', $$SELECT recsys.model_pack('mlp', pg_temp.promise(ARRAY[3, 2, 2]))$$, '22023'),
 ('model_pack', $$SELECT recsys.model_pack('mlp', '{"w": [[1, 2], [3, 4]]}') IS NOT NULL$$, 'ok'),
 -- a small value whose config claims a large model: refused before anything is allocated
 ('rnn_encode', $$SELECT recsys.rnn_encode(recsys.model_pack('gru', '{"emb": [[1]]}', '{"vocab": 2000000, "embed": 8, "hidden": 8}'), ARRAY[1])$$, 'XX001'),
 ('mlp_train', $$SELECT recsys.mlp_train(recsys.model_pack('mlp', '{"l0.w": [[1]]}', '{"layers": [4096, 4096, 1]}'), ARRAY[1]::real[], 1, '{}')$$, 'XX001'),
 ('rnn_encode', $$SELECT recsys.rnn_encode(recsys.model_init('gru', '{"vocab": 2, "embed": 1024, "hidden": 1024}'), array_fill(1, ARRAY[10000]))$$, '54000'),
 ('rnn_train', $$SELECT recsys.rnn_train(recsys.model_init('gru', '{"vocab": 5, "embed": 8, "hidden": 8}'), ARRAY[1], 2, '{"batch": 8192, "max_len": 10000}')$$, '54000'),
 ('mlp_forward', $$SELECT recsys.mlp_forward(recsys.model_init('mlp', '{"layers": [1, 8192]}'), array_fill(0::real, ARRAY[4096, 1]))$$, '54000'),
 -- options holding lists: bounded
 ('recommend_bundles', $$SELECT * FROM recommend_bundles('visitor', 3, jsonb_build_object('session', to_jsonb(array_fill(1000, ARRAY[1000000]))))$$, '54000'),
 ('recommend_bundles', $$SELECT * FROM recommend_bundles('42', 3, jsonb_build_object('exclude_items', to_jsonb(array_fill(1000, ARRAY[1001]))))$$, '54000'),
 ('recommend_bundles', $$SELECT count(*) FROM recommend_bundles('visitor', 3, jsonb_build_object('session', to_jsonb(array_fill(1000, ARRAY[1000]))))$$, 'ok'),
 ('complete_bundle', $$SELECT count(*) FROM complete_bundle(array_fill('1000'::text, ARRAY[1001]), 3)$$, '54000'),
 ('recommend_bundles_batch', $$SELECT count(*) FROM recommend_bundles_batch(array_fill(42::bigint, ARRAY[1000]), 10000)$$, '54000'),
 ('recommend_bundles_batch', $$SELECT count(*) FROM recommend_bundles_batch(array_fill('42'::text, ARRAY[100001]), 10)$$, '54000'),
 ('recommend_bundles_batch', $$SELECT count(*) FROM recommend_bundles_batch(ARRAY[42, 43]::bigint[], 3)$$, 'ok'),
 -- 10. almost-right options: fractions where integers are due, numbers past their range
 ('train', $$CALL recsys.train('default', '{"max_epochs": 1.5}')$$, '22023'),
 ('train', $$CALL recsys.train('default', '{"seed": 1e30}')$$, '22023'),
 ('train', $$CALL recsys.train('default', '{"gru_hidden": 64.5}')$$, '22023'),
 ('recommend_bundles', $$SELECT * FROM recommend_bundles('42', 3, '{"version": 1.5}')$$, '22023'),
 ('recommend_bundles', $$SELECT * FROM recommend_bundles('42', 3, '{"min_categories": 2.9}')$$, '22023'),
 ('recommend_bundles', $$SELECT * FROM recommend_bundles('42', 3, '{"version": 1e300}')$$, '22023'),
 ('mlp_train', $$SELECT recsys.mlp_train(recsys.model_init('mlp', '{"layers": [2, 1]}'), ARRAY[1, 2]::real[], 1, '{"batch": 2.5}')$$, '22023'),
 ('rnn_train', $$SELECT recsys.rnn_train(recsys.model_init('gru', '{"vocab": 5}'), ARRAY[1], 2, '{"seed": 0.5}')$$, '22023'),
 ('bundle_fit', $$SELECT recsys.bundle_fit('{"holdout_seed": 1.5}')$$, '22023'),
 ('mine_bundles', $$SELECT recsys.mine_bundles('{"min_customers": 2.5}')$$, '22023'),
 ('mine_bundles', $$SELECT recsys.mine_bundles('{"cross_category": "yes"}')$$, '22023'),
 ('refresh_features', $$SELECT recsys.refresh_features('{"window_days": 7.5}')$$, '22023'),
 ('split_pairs', $$SELECT count(*) FROM recsys.split_pairs('kfold', '{"folds": 2.5}')$$, '22023'),
 ('log_feedback', $$SELECT recsys.log_feedback('42', '611', 'purchase', 'NaN')$$, '22023'),
 ('log_feedback', $$SELECT recsys.log_feedback('42', '611', 'purchase', 'Infinity')$$, '22023'),
 ('log_feedback', $$SELECT recsys.log_feedback('42', '611', 'purchase', '-Infinity')$$, '22023'),
 ('feedback', $$INSERT INTO recsys.feedback (user_id, target, event, value) VALUES ('42', '611', 'purchase', 'NaN')$$, '23514'),
 -- 10. weights that do not fit the model store: kind, experiment across models, huge finite values
 ('publish_version', $$SELECT recsys.publish_version('default', 9999, recsys.model_init('mlp', '{"layers": [5, 1]}'), md5(recsys.model_init('mlp', '{"layers": [5, 1]}')))$$, '42804'),
 ('add_version', $$SELECT recsys.add_version('default', recsys.model_init('gru', '{"vocab": 3}'))$$, '42804'),
 ('model_versions', $$INSERT INTO recsys.model_versions (model, status, weights) VALUES ('default', 'candidate', recsys.model_init('mlp', '{"layers": [5, 1]}'))$$, '42804'),
 ('create_experiment', $$SELECT recsys.create_experiment('mixed', jsonb_build_array(
       jsonb_build_object('name', 'a', 'share', 0.5, 'version', recsys.active_version('default')),
       jsonb_build_object('name', 'b', 'share', 0.5, 'version', (SELECT max(version_id) FROM recsys.model_versions WHERE model = 'other'))))$$, '22023'),
 ('create_experiment', $$SELECT recsys.create_experiment('fraction', jsonb_build_array(
       jsonb_build_object('name', 'a', 'share', 0.5, 'version', recsys.active_version('default') + 0.5),
       jsonb_build_object('name', 'b', 'share', 0.5, 'baseline', true)))$$, '22P02'),
 ('experiments', $$INSERT INTO recsys.experiments (name, variants) VALUES ('direct', jsonb_build_array(
       jsonb_build_object('name', 'a', 'share', 0.5, 'version', recsys.active_version('default') + 0.5),
       jsonb_build_object('name', 'b', 'share', 0.5, 'baseline', true)))$$, '22023'),
 ('experiments', $$INSERT INTO recsys.experiments (name, variants) VALUES ('noname', '[{"share": 0.5, "baseline": true}, {"name": "b", "share": 0.5, "baseline": true}]')$$, '22023'),
 ('experiments', $$INSERT INTO recsys.experiments (name, variants) VALUES ('shares', '[{"name": "a", "share": 0.7, "baseline": true}, {"name": "b", "share": 0.7, "baseline": true}]')$$, '22023'),
 ('mlp_forward', $$SELECT recsys.mlp_forward(recsys.model_pack('mlp', '{"l0.w": [[3e38], [3e38]], "l0.b": [0], "l1.w": [[3e38]], "l1.b": [0]}',
       '{"layers": [2, 1, 1], "activation": "relu", "output": "linear"}'), ARRAY[1, 1]::real[])$$, '22003'),
 -- 2. ids: not canonical integers come back as errors, not as other ids
 ('ext_bigint', $$SELECT recsys.ext_bigint(' +0546')$$, '42804'),
 ('ext_bigint', $$SELECT recsys.ext_bigint('0546')$$, '42804'),
 ('ext_bigint', $$SELECT recsys.ext_bigint('99999999999999999999')$$, '42804'),
 ('ext_bigint', $$SELECT recsys.ext_bigint('-546') = -546$$, 'ok');
-- a second model, for the cross-model experiment above
SELECT recsys.create_model('other', 'mlp') AS other;
SELECT recsys.add_version('other', recsys.model_init('mlp', '{"layers": [5, 1]}')) > 0 AS other_version;
SELECT c.n, c.entry, pg_temp.try(c.call) AS result FROM pg_temp.cases c ORDER BY c.n;
SELECT count(*) AS cases, count(*) FILTER (WHERE left(pg_temp.try(c.call), 5) = c.want OR (c.want = 'ok' AND pg_temp.try(c.call) = 'ok')) AS as_expected
  FROM pg_temp.cases c;

-- 2. a hole in the item or bundle map, an index past the mark, a text id that is not its integer: serving
-- names the corruption (each in a transaction rolled back; serving_invalidate stands for the next session)
BEGIN;
DELETE FROM recsys.id_map WHERE space = 'item' AND idx = 3;
SELECT recsys.serving_invalidate();
SELECT pg_temp.try($$SELECT * FROM recommend_bundles('42', 3)$$) AS item_hole;
SELECT pg_temp.try($$SELECT * FROM recommend_bundles(42::bigint, 3)$$) AS item_hole_bigint;
ROLLBACK;
BEGIN;
DELETE FROM recsys.id_map WHERE space = 'bundle' AND idx = (SELECT max(idx) FROM recsys.id_map WHERE space = 'bundle');
SELECT recsys.serving_invalidate();
SELECT pg_temp.try($$SELECT * FROM recommend_bundles('42', 3)$$) AS bundle_hole;
ROLLBACK;
BEGIN;
INSERT INTO recsys.id_map (space, idx, ext_id) VALUES ('bundle', 5000, 'b-late'), ('user', 900000, 'u-late');
SELECT recsys.serving_invalidate();
SELECT pg_temp.try($$SELECT * FROM recommend_bundles('42', 3)$$) AS past_the_mark;
ROLLBACK;
BEGIN;
-- a new item after the model's (its catalogue is unchanged) whose text id reads as an integer only loosely
INSERT INTO recsys.id_map (space, idx, ext_id) SELECT 'item', next_idx, ' +0546' FROM recsys.id_spaces WHERE space = 'item';
UPDATE recsys.id_spaces SET next_idx = next_idx + 1 WHERE space = 'item';
SELECT recsys.serving_invalidate();
SELECT pg_temp.try($$SELECT * FROM recommend_bundles(42::bigint, 3)$$) AS not_canonical;
SELECT count(*) AS text_form_serves FROM recommend_bundles('42', 3);
ROLLBACK;

-- 10. a rebuilt id map: the model would serve other bundles under its reasons
BEGIN;
UPDATE recsys.id_map SET ext_id = ext_id || '-renamed' WHERE space = 'bundle' AND idx IN (0, 1);
SELECT recsys.serving_invalidate();
SELECT pg_temp.try($$SELECT * FROM recommend_bundles('42', 3)$$) AS other_catalogue;
ROLLBACK;
SELECT count(*) AS serves_again FROM recommend_bundles('42', 3);

-- 10. weights with finite but huge values: an error, not NaN or tied scores
BEGIN;
SELECT recsys.add_version('default', recsys.bundle_attach(recsys.bundle_fit('{}'),
    recsys.model_pack('mlp', jsonb_build_object('l0.w', (SELECT jsonb_agg(to_jsonb(array_fill(3e38::float8, ARRAY[32]))) FROM generate_series(1, 5)),
                                                'l0.b', to_jsonb(array_fill(0, ARRAY[32])), 'l1.w', (SELECT jsonb_agg(jsonb_build_array(3e38)) FROM generate_series(1, 32)),
                                                'l1.b', '[0]'::jsonb), '{"layers": [5, 32, 1], "output": "linear"}'), NULL, 100), 'candidate') AS huge \gset
SELECT recsys.activate_version(:huge) IS NOT NULL AS activated;
SELECT pg_temp.try($$SELECT * FROM recommend_bundles('42', 3)$$) AS huge_weights;
ROLLBACK;

-- 8. erasure: a trained-on customer flags the model, and the highest index is never handed out again
SELECT needs_retrain FROM recsys.models WHERE name = 'default';
-- a shard's samples of the customer (left by a data-parallel job) go too
INSERT INTO recsys.shard_samples (job, user_idx, valid, y)
SELECT 'job', idx, false, 1 FROM recsys.id_map WHERE space = 'user' ORDER BY idx DESC LIMIT 1;
SELECT c ->> 'id_map' AS forgotten, c ->> 'shard_samples' AS shard_samples
  FROM recsys.forget_user((SELECT ext_id FROM recsys.id_map WHERE space = 'user' ORDER BY idx DESC LIMIT 1)) c;
SELECT count(*) AS shard_samples_left FROM recsys.shard_samples;
SELECT needs_retrain FROM recsys.models WHERE name = 'default';
SELECT next_idx - 1 AS highest_handed_out FROM recsys.id_spaces WHERE space = 'user' \gset
INSERT INTO shop.orders (order_id, customer_id, ordered_at, status, dept, series) VALUES (900001, 900001, '2026-10-30', 'completed', 0, 0);
INSERT INTO shop.order_items (order_id, product_id, quantity, unit_price) VALUES (900001, 1000, 1, 10);
SELECT count(*) > 0 AS prepared FROM recsys.prepare();
SELECT idx > :highest_handed_out AS new_index_is_new FROM recsys.id_map WHERE space = 'user' AND ext_id = '900001';
-- the salt cannot be emptied, and a lost salt stops prepare rather than bringing the forgotten back
SELECT pg_temp.try($$TRUNCATE recsys.secrets$$) AS truncate_secrets;
SELECT pg_temp.try($$DELETE FROM recsys.secrets$$) AS delete_secrets;
BEGIN;
ALTER TABLE recsys.secrets DISABLE TRIGGER secrets_guard;
DELETE FROM recsys.secrets;
SELECT pg_temp.try($$SELECT * FROM recsys.prepare()$$) AS prepare_without_salt;
ROLLBACK;
SELECT 'session alive' AS still;
