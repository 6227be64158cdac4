-- Weights format v1: pack, describe, read back, and refuse every damaged value.
\i test/regress_setup.psql

CREATE TEMP TABLE m AS
SELECT recsys.model_pack('mlp', '{"layer0.w": [[1, -2, 3.5], [0, 0.001, -7]], "layer0.b": [0.25, -0.5, 2]}',
                         '{"layers": [3, 2], "activation": "relu"}') AS w;
SELECT length(w) AS bytes, length(w) % 16 = 4 AS aligned_plus_crc, substr(w, 1, 4) AS magic FROM m;
SELECT jsonb_pretty(recsys.model_info(w)) FROM m;
SELECT recsys.model_tensor(w, 'layer0.w') AS w, recsys.model_tensor(w, 'layer0.b') AS b FROM m;
SELECT recsys.model_check(w) FROM m;

-- every byte position, flipped three ways, is an ERROR with data_corrupted; the session survives
CREATE TEMP TABLE flips AS
SELECT pos, mask, pg_temp.try(format('SELECT recsys.model_info(%L::bytea)',
                              set_byte(w, pos, get_byte(w, pos) # mask))) AS result
  FROM m, generate_series(0, length(w) - 1) pos, unnest(ARRAY[1, 128, 255]) mask;
SELECT count(*) AS variants, count(*) FILTER (WHERE result LIKE 'XX001:%') AS rejected_data_corrupted,
       count(DISTINCT pos) AS positions
  FROM flips;
-- and every truncation, and one extra byte
SELECT count(*) AS truncations,
       count(*) FILTER (WHERE pg_temp.try(format('SELECT recsys.model_info(%L::bytea)', substr(w, 1, len))) LIKE 'XX001:%') AS rejected
  FROM m, generate_series(0, length(w) - 1) len;
SELECT pg_temp.try(format('SELECT recsys.model_info(%L::bytea)', w || '\x00'::bytea)) FROM m;
SELECT 'session alive' AS still;

-- readable messages for typical damage
SELECT pg_temp.try(format('SELECT recsys.model_info(%L::bytea)', overlay(w placing 'XXXX'::bytea from 1))) FROM m;
SELECT pg_temp.try(format('SELECT recsys.model_info(%L::bytea)', set_byte(w, 4, 2))) FROM m;
SELECT pg_temp.try(format('SELECT recsys.model_info(%L::bytea)', set_byte(w, 6, 1))) FROM m;
SELECT pg_temp.try(format('SELECT recsys.model_info(%L::bytea)', set_byte(w, 8, 9))) FROM m;
SELECT pg_temp.try(format('SELECT recsys.model_info(%L::bytea)', set_byte(w, length(w) - 1, get_byte(w, length(w) - 1) # 1))) FROM m;
SELECT pg_temp.try($$SELECT recsys.model_info('\x'::bytea)$$);
SELECT pg_temp.try($$SELECT recsys.model_info('not a model'::bytea)$$);

-- packing: bad input is an ERROR that says what is wrong
SELECT pg_temp.try($$SELECT recsys.model_pack('lstm', '{"w": [1]}')$$);
SELECT pg_temp.try($$SELECT recsys.model_pack('mlp', '{}')$$);
SELECT pg_temp.try($$SELECT recsys.model_pack('mlp', '[1, 2]')$$);
SELECT pg_temp.try($$SELECT recsys.model_pack('mlp', '{"w": [[1, 2], [3]]}')$$);
SELECT pg_temp.try($$SELECT recsys.model_pack('mlp', '{"w": [1, "x"]}')$$);
SELECT pg_temp.try($$SELECT recsys.model_pack('mlp', '{"w": []}')$$);
SELECT pg_temp.try($$SELECT recsys.model_pack('mlp', '{"w": 3}')$$);
SELECT pg_temp.try($$SELECT recsys.model_pack('mlp', '{"W": [1]}')$$);
SELECT pg_temp.try($$SELECT recsys.model_pack('mlp', '{"w": [[[[[1]]]]]}')$$);
SELECT pg_temp.try($$SELECT recsys.model_pack('mlp', '{"w": [1e300]}')$$);
SELECT pg_temp.try($$SELECT recsys.model_pack('mlp', '{"w": [1]}', '[]')$$);
SELECT pg_temp.try(format('SELECT recsys.model_pack(%L, %L)', 'mlp', jsonb_build_object(repeat('a', 40), '[1]'::jsonb)));
SELECT pg_temp.try(format('SELECT recsys.model_tensor(%L::bytea, %L)', w, 'missing')) FROM m;
SELECT recsys.model_info(NULL) IS NULL AS strict_null;
