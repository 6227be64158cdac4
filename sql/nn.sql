-- Neural models in SQL: init, forward passes, training aggregates, and their errors.
\i test/regress_setup.psql

-- init: seeded, deterministic, described by model_info
SELECT recsys.model_info(recsys.model_init('mlp', '{"layers": [4, 8, 1]}', 1)) -> 'config' AS mlp_config;
SELECT jsonb_path_query_array(recsys.model_info(recsys.model_init('gru', '{"vocab": 50, "embed": 8, "hidden": 16}', 1)),
                              '$.tensors[*].name') AS gru_tensors,
       recsys.model_info(recsys.model_init('gru', '{"vocab": 50, "embed": 8, "hidden": 16}', 1)) -> 'parameters' AS gru_parameters;
SELECT recsys.model_info(recsys.model_init('rnn', '{"vocab": 50, "embed": 8, "hidden": 16}', 1)) -> 'config' AS rnn_config;
SELECT recsys.model_init('mlp', '{"layers": [4, 8, 1]}', 1) = recsys.model_init('mlp', '{"layers": [4, 8, 1]}', 1) AS same_seed_same_bytes,
       recsys.model_init('mlp', '{"layers": [4, 8, 1]}', 1) <> recsys.model_init('mlp', '{"layers": [4, 8, 1]}', 2) AS other_seed_other_bytes;
SELECT pg_temp.try($$SELECT recsys.model_init('lstm', '{}', 1)$$);
SELECT pg_temp.try($$SELECT recsys.model_init('mlp', '{"layers": [4]}', 1)$$);
SELECT pg_temp.try($$SELECT recsys.model_init('mlp', '{"layers": [4, 0]}', 1)$$);
SELECT pg_temp.try($$SELECT recsys.model_init('mlp', '{"layers": [4, 1.5]}', 1)$$);
SELECT pg_temp.try($$SELECT recsys.model_init('mlp', '{"layers": [4, 1], "activation": "swish"}', 1)$$);
SELECT pg_temp.try($$SELECT recsys.model_init('mlp', '{"layers": [4, 1], "dropout": 0.5}', 1)$$);
SELECT pg_temp.try($$SELECT recsys.model_init('gru', '{"embed": 8}', 1)$$);
SELECT pg_temp.try($$SELECT recsys.model_init('gru', '{"vocab": 100000000}', 1)$$);
SELECT pg_temp.try($$SELECT recsys.model_init('gru', '{"vocab": 10000000, "embed": 8192, "hidden": 8}', 1)$$);

-- forward: a vector, or a batch as a matrix; the batch equals the rows one by one
CREATE TEMP TABLE w AS
SELECT recsys.model_pack('mlp', '{"l0.w": [[1, -1], [0.5, 2]], "l0.b": [0, 1], "l1.w": [[1], [-1]], "l1.b": [0.5]}',
                         '{"layers": [2, 2, 1], "activation": "relu", "output": "linear"}') AS mlp,
       recsys.model_init('gru', '{"vocab": 20, "embed": 4, "hidden": 6}', 3) AS gru,
       recsys.model_init('rnn', '{"vocab": 20, "embed": 4, "hidden": 6}', 3) AS rnn;
-- hand-computed: x = (1, 2): h = relu(1*1 + 2*0.5 + 0, 1*-1 + 2*2 + 1) = (2, 4); out = 2 - 4 + 0.5 = -1.5
SELECT recsys.mlp_forward(mlp, '{1, 2}') AS hand_computed_minus_1_5 FROM w;
SELECT recsys.mlp_forward(mlp, '{{1, 2}, {0, 0}, {-3, 1}}') AS batch FROM w;
SELECT recsys.mlp_forward(mlp, '{-3, 1}') AS third_row_alone FROM w;
SELECT pg_temp.try(format('SELECT recsys.mlp_forward(%L::bytea, %L)', mlp, '{1, 2, 3}')) FROM w;
SELECT pg_temp.try(format('SELECT recsys.mlp_forward(%L::bytea, %L)', mlp, '{1, NULL}')) FROM w;
SELECT pg_temp.try(format('SELECT recsys.mlp_forward(%L::bytea, %L)', mlp, '{1, NaN}')) FROM w;
SELECT pg_temp.try(format('SELECT recsys.mlp_forward(%L::bytea, %L)', mlp, '{}')) FROM w;
SELECT pg_temp.try(format('SELECT recsys.mlp_forward(%L::bytea, %L)', gru, '{1, 2}')) FROM w;
SELECT pg_temp.try(format('SELECT recsys.mlp_forward(%L::bytea, %L)', recsys.model_pack('baseline', '{"p": [1]}'), '{1}'));

-- rnn_encode: the hidden state; an empty sequence is zeros; padding never leaks into the state
SELECT array_length(recsys.rnn_encode(gru, '{1, 2, 3}'), 1) AS hidden,
       recsys.rnn_encode(gru, '{}') = array_fill(0::real, ARRAY[6]) AS empty_is_zero,
       recsys.rnn_encode(gru, '{5}') <> recsys.rnn_encode(gru, '{5, 5}') AS order_and_length_matter,
       recsys.rnn_encode(rnn, '{1, 2, 3}') <> recsys.rnn_encode(gru, '{1, 2, 3}') AS cells_differ
  FROM w;
SELECT pg_temp.try(format('SELECT recsys.rnn_encode(%L::bytea, %L)', gru, '{1, 20}')) FROM w;
SELECT pg_temp.try(format('SELECT recsys.rnn_encode(%L::bytea, %L)', gru, '{1, -1}')) FROM w;
SELECT pg_temp.try(format('SELECT recsys.rnn_encode(%L::bytea, %L)', gru, '{1, NULL}')) FROM w;
SELECT pg_temp.try(format('SELECT recsys.rnn_encode(%L::bytea, %L)', gru, '{{1, 2}, {3, 4}}')) FROM w;
SELECT pg_temp.try(format('SELECT recsys.rnn_encode(%L::bytea, %L)', mlp, '{1}')) FROM w;

-- mlp_train learns a rule from a table: y = (x1 > x2); deterministic rows, no random()
CREATE TEMP TABLE train AS
SELECT ARRAY[a, b, (i % 7) / 7.0, (i % 3) / 3.0]::real[] AS x, (a > b)::int::real AS y, i
  FROM (SELECT i, ((i * 7919) % 1000) / 1000.0 AS a, ((i * 104729) % 997) / 997.0 AS b
          FROM generate_series(1, 6000) i) t;
CREATE TEMP TABLE m0 AS SELECT recsys.model_init('mlp', '{"layers": [4, 16, 1]}', 7) AS w;
CREATE TEMP TABLE m1 AS
SELECT recsys.mlp_train(m0.w, x, y, '{"lr": 0.05, "batch": 16}' ORDER BY i) AS w FROM train, m0 GROUP BY m0.w;
SELECT (recsys.model_info(w) -> 'config' -> 'train') - 'mean_loss' AS training,
       (recsys.model_info(w) #>> '{config,train,mean_loss}')::float < 0.3 AS loss_fell
  FROM m1;
SELECT avg((((recsys.mlp_forward(m1.w, x))[1] > 0.5)::int = y)::int) >= 0.9 AS accuracy_over_90pct,
       avg((((recsys.mlp_forward(m0.w, x))[1] > 0.5)::int = y)::int) < 0.8 AS untrained_was_not
  FROM train, m0, m1;
-- same start, same rows, same order: same weights
SELECT recsys.mlp_train(m0.w, x, y, '{"lr": 0.05, "batch": 16}' ORDER BY i) = (SELECT w FROM m1) AS deterministic
  FROM train, m0 GROUP BY m0.w;
-- options
SELECT recsys.model_info(recsys.mlp_train(m0.w, x, y, '{"optimizer": "momentum", "lr": 0.05, "l2": 0.0001, "clip": 1, "loss": "mse"}' ORDER BY i))
         #>> '{config,train,optimizer}' AS optimizer
  FROM train, m0 GROUP BY m0.w;
SELECT pg_temp.try($$SELECT recsys.mlp_train(w, x, y, '{"lr": -1}') FROM train, m0$$);
SELECT pg_temp.try($$SELECT recsys.mlp_train(w, x, y, '{"optimizer": "rmsprop"}') FROM train, m0$$);
SELECT pg_temp.try($$SELECT recsys.mlp_train(w, x, y, '{"epochs": 3}') FROM train, m0$$);
SELECT pg_temp.try($$SELECT recsys.mlp_train(w, x, y, '{"batch": 0}') FROM train, m0$$);
SELECT pg_temp.try($$SELECT recsys.mlp_train(w, x, y, '[]') FROM train, m0$$);
SELECT pg_temp.try($$SELECT recsys.mlp_train(w, x[1:3], y, '{}') FROM train, m0$$);
SELECT pg_temp.try($$SELECT recsys.mlp_train(w, x, (y + 1)::real, '{}') FROM train, m0$$);
SELECT pg_temp.try($$SELECT recsys.mlp_train(NULL, x, y, '{}') FROM train$$);
SELECT pg_temp.try($$SELECT recsys.mlp_train(w, x, y, '{}') FROM train, (SELECT recsys.model_init('mlp', '{"layers": [4, 2]}', 1) w) m$$);
SELECT pg_temp.try($$SELECT recsys.mlp_train(w, x, y, '{"lr": 1e9}') FROM train, m0$$);
-- NULL rows are skipped; no rows gives NULL
SELECT recsys.mlp_train(w, x, y, '{}') IS NULL AS no_rows_no_model FROM train, m0 WHERE false;
SELECT (recsys.model_info(recsys.mlp_train(m0.w, CASE WHEN i % 2 = 0 THEN x END, y, '{}')) #>> '{config,train,samples}') AS half_the_rows
  FROM train, m0 GROUP BY m0.w;

-- rnn_train learns next-item: sequences i, i+1, i+2 (mod 12) -> i+3
CREATE TEMP TABLE seqs AS
SELECT ARRAY[s % 12, (s + 1) % 12, (s + 2) % 12]::int[] AS items, (s + 3) % 12 AS target, n
  FROM generate_series(0, 11) s, generate_series(1, 40) n;
CREATE TEMP TABLE g AS SELECT recsys.model_init('gru', '{"vocab": 12, "embed": 8, "hidden": 16}', 5) AS w;
DO $$
DECLARE
  i int;
BEGIN
  FOR i IN 1 .. 6 LOOP
    UPDATE g SET w = (SELECT recsys.rnn_train(g.w, items, target, '{"lr": 0.03, "batch": 16, "negatives": 12, "seed": 1}' ORDER BY n, items)
                        FROM seqs);
  END LOOP;
END $$;
SELECT (recsys.model_info(w) #>> '{config,train,mean_loss}')::float < 0.8 AS loss_fell,
       recsys.model_info(w) #>> '{config,train,samples}' AS samples_last_epoch
  FROM g;
-- the encoder's state now points at the next item: score every item against the output table
WITH m AS (SELECT recsys.model_tensor(w, 'out') AS o, recsys.model_tensor(w, 'out_b') AS ob, w FROM g),
     s AS (SELECT DISTINCT items, target FROM seqs),
     scores AS (
       SELECT s.items, s.target, v,
              (SELECT sum(h[k] * m.o[v + 1][k]) FROM generate_subscripts(h, 1) k) + m.ob[v + 1] AS score
         FROM s, m, LATERAL (SELECT recsys.rnn_encode(m.w, s.items) AS h) e, generate_series(0, 11) v),
     top AS (SELECT DISTINCT ON (items) items, target, v FROM scores ORDER BY items, score DESC)
SELECT round(avg((v = target)::int), 2) AS next_item_accuracy FROM top;
SELECT pg_temp.try($$SELECT recsys.rnn_train(w, items, 12, '{}') FROM seqs, g$$);
SELECT pg_temp.try($$SELECT recsys.rnn_train(w, items, target, '{"max_len": 0}') FROM seqs, g$$);
SELECT pg_temp.try($$SELECT recsys.rnn_train(w, items, target, '{"loss": "bce"}') FROM seqs, g$$);
SELECT pg_temp.try($$SELECT recsys.rnn_train(w, ARRAY[1, 99], 1, '{}') FROM g$$);
SELECT pg_temp.try($$SELECT recsys.rnn_train(w, items, target, '{}') FROM seqs, m0$$);

-- the support functions are for the aggregates only
CREATE ROLE recsys_nn_tester;
GRANT USAGE ON SCHEMA recsys TO recsys_nn_tester;
SET ROLE recsys_nn_tester;
SELECT pg_temp.try($$SELECT recsys.train_final('\x00'::bytea)$$);
RESET ROLE;
REVOKE USAGE ON SCHEMA recsys FROM recsys_nn_tester;
DROP ROLE recsys_nn_tester;
-- and a hand-made state is refused, never trusted
SELECT pg_temp.try($$SELECT recsys.train_final(decode(repeat('00', 400), 'hex'))$$);
SELECT pg_temp.try($$SELECT recsys.train_combine('\x01'::bytea, '\x01'::bytea)$$);
SELECT 'session alive' AS still;
