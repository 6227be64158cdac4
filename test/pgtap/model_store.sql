-- Model store: versions, one active per model, activation and rollback, weights validated on write.
\i test/pgtap/setup.psql
BEGIN;
SELECT plan(33);

SELECT has_table('recsys', 'models', 'models table');
SELECT has_table('recsys', 'model_versions', 'model_versions table');
SELECT has_table('recsys', 'training_runs', 'training_runs table');
SELECT col_type_is('recsys', 'model_versions', 'weights', 'bytea', 'weights are bytea');
SELECT col_type_is('recsys', 'model_versions', 'metrics', 'jsonb', 'metrics are jsonb');

SELECT is(recsys.create_model('default', 'mlp', '{"layers": [2, 1]}'), 'default', 'create_model returns the name');
SELECT throws_ok($$SELECT recsys.create_model('default', 'mlp')$$, '42710', NULL, 'a second model of the same name is refused');
SELECT throws_ok($$SELECT recsys.create_model('Bad Name', 'mlp')$$, '22023', NULL, 'model names are checked');
SELECT throws_ok($$SELECT recsys.create_model('m2', 'lstm')$$, '22023', NULL, 'model kinds are checked');

CREATE TEMP TABLE w AS
SELECT recsys.model_pack('mlp', '{"w": [[0.5, -1]], "b": [0.1]}') AS v1,
       recsys.model_pack('mlp', '{"w": [[0.25, 2]], "b": [0.2]}') AS v2,
       recsys.model_pack('gru', '{"w": [1]}') AS wrong_kind;

SELECT lives_ok($$SELECT recsys.add_version('default', (SELECT v1 FROM w), metrics => '{"recall@20": 0.2}')$$, 'add a candidate');
SELECT lives_ok($$SELECT recsys.add_version('default', (SELECT v2 FROM w), metrics => '{"recall@20": 0.3}')$$, 'add another candidate');
SELECT throws_ok($$SELECT recsys.add_version('default', (SELECT wrong_kind FROM w))$$, '42804', NULL, 'weights of another kind are refused');
SELECT throws_ok($$SELECT recsys.add_version('nosuch', (SELECT v1 FROM w))$$, '42704', NULL, 'unknown model is an error');
SELECT throws_ok($$SELECT recsys.add_version('default', (SELECT v1 FROM w), 'active')$$, '22023', NULL, 'a version cannot start active');

-- damaged weights never reach the table, whatever path writes them
SELECT throws_ok($$INSERT INTO recsys.model_versions (model, status, weights)
                   SELECT 'default', 'candidate', set_byte(v1, 40, get_byte(v1, 40) # 1) FROM w$$,
                 'XX001', NULL, 'a corrupted weights value is rejected by the table itself');

SELECT is(recsys.activate_version((SELECT min(version_id) FROM recsys.model_versions)), NULL::bigint,
          'first activation has no previous version');
SELECT is(recsys.activate_version((SELECT max(version_id) FROM recsys.model_versions)),
          (SELECT min(version_id) FROM recsys.model_versions), 'second activation returns the one it retired');
SELECT is((SELECT count(*) FROM recsys.model_versions WHERE status = 'active'), 1::bigint, 'exactly one active version');
SELECT throws_ok($$UPDATE recsys.model_versions SET status = 'active' WHERE status = 'retired'$$, '23505', NULL,
                 'the table itself refuses a second active version');
SELECT is(recsys.rollback('default'), (SELECT min(version_id) FROM recsys.model_versions), 'rollback reactivates the retired version');
SELECT is(recsys.active_version('default'), (SELECT min(version_id) FROM recsys.model_versions), 'active_version follows the rollback');
SELECT is((SELECT status || ': ' || (note ~ 'rolled back from') FROM recsys.model_versions WHERE version_id = (SELECT max(version_id) FROM recsys.model_versions)),
          'candidate: true', 'the version rolled back from is a candidate again, and its note says why');
-- a second rollback goes further back, never to the version the first one rolled back from
SELECT throws_ok($$SELECT recsys.rollback('default')$$, '55000', NULL, 'a second rollback with nothing older retired is refused');
SELECT lives_ok($$SELECT recsys.activate_version((SELECT max(version_id) FROM recsys.model_versions))$$, 'activate_version brings it back');
SELECT is(recsys.rollback('default'), (SELECT min(version_id) FROM recsys.model_versions), 'and a rollback after that goes back again');

-- recsys.serving: what every backend serves, for the reader role too
SELECT is((SELECT active_version FROM recsys.serving WHERE model = 'default'), recsys.active_version('default'),
          'recsys.serving shows the active version');
SELECT ok(has_table_privilege('recsys_reader', 'recsys.serving', 'SELECT'), 'recsys_reader may read recsys.serving');
SELECT ok(has_function_privilege('recsys_reader', 'recsys.active_version(text)', 'EXECUTE'), 'and call recsys.active_version');
-- every column of the BI views a reader sees has a comment (JDBC and ODBC return them as REMARKS)
SELECT is(array_agg(c.relname || '.' || a.attname ORDER BY 1), NULL, 'every column of every recsys view has a comment')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'recsys'
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind = 'v' AND col_description(c.oid, a.attnum) IS NULL;
INSERT INTO recsys.model_versions (model, status) VALUES ('default', 'training');
SELECT is((SELECT last_training_status FROM recsys.serving WHERE model = 'default'), 'training',
          'and the last training''s outcome (here: still training)');
SELECT throws_ok(format('SELECT recsys.activate_version(%s)', (SELECT max(version_id) FROM recsys.model_versions)),
                 '55000', NULL, 'a version still training cannot be activated');
INSERT INTO recsys.training_runs (version_id, epoch, loss, metrics)
SELECT (SELECT max(version_id) FROM recsys.model_versions), e, 1.0 / (e + 1), jsonb_build_object('recall@20', 0.1 * e)
  FROM generate_series(0, 2) e;
SELECT is((SELECT count(*) FROM recsys.training_runs), 3::bigint, 'one training_runs row per epoch');
SELECT throws_ok($$INSERT INTO recsys.training_runs (version_id, epoch) SELECT max(version_id), 1 FROM recsys.model_versions$$,
                 '23505', NULL, 'an epoch is recorded once per version');

SELECT * FROM finish();
ROLLBACK;
