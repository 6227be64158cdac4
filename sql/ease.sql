-- EASE: the closed form on a small shop, its defining property, scores, and errors.
\i test/regress_setup.psql

SELECT pg_temp.try($$SELECT recsys.ease_fit(100)$$);
DROP SCHEMA IF EXISTS e CASCADE;
CREATE SCHEMA e;
CREATE TABLE e.bundle_items (bundle int, item int);
INSERT INTO e.bundle_items SELECT b, b * 10 + i FROM generate_series(0, 3) b, generate_series(1, 2) i;
CREATE TABLE e.taken (customer int, bundle int);
INSERT INTO e.taken VALUES (1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (3, 1), (3, 2), (4, 2), (4, 3), (5, 0), (5, 3);
SELECT recsys.register_bundles('e.bundle_items', 'bundle', 'item') IS NOT NULL AS registered;
SELECT recsys.register_bundle_events('e.taken', 'customer', 'bundle') IS NOT NULL AS registered;
SELECT count(*) > 0 AS prepared FROM recsys.prepare();

CREATE TEMP TABLE m AS SELECT recsys.ease_fit(2) AS w;
SELECT recsys.model_info(w) -> 'config' AS config, recsys.model_info(w) -> 'tensors' -> 0 -> 'dims' AS dims FROM m;
-- B has a zero diagonal, and off the diagonal (X'X + lambda I) B equals X'X: the closed form's defining property
CREATE TEMP TABLE b AS
SELECT i - 1 AS i, j - 1 AS j, (recsys.model_tensor(w, 'ease.b'))[i][j] AS v
  FROM m, generate_series(1, 4) i, generate_series(1, 4) j;
CREATE TEMP TABLE g AS
SELECT b1.bundle_idx AS i, b2.bundle_idx AS j, count(*) AS v
  FROM recsys.user_bundles b1 JOIN recsys.user_bundles b2 USING (user_idx) GROUP BY 1, 2;
SELECT bool_and(v = 0) AS zero_diagonal FROM b WHERE i = j;
SELECT max(abs(lhs - coalesce(g.v, 0))) < 1e-5 AS property_holds
  FROM (SELECT x.i, y.j, sum((coalesce(g.v, 0) + CASE WHEN x.i = x.k THEN 2 ELSE 0 END) * bb.v) AS lhs
          FROM (SELECT i, k FROM generate_series(0, 3) i, generate_series(0, 3) k) x
          JOIN (SELECT generate_series(0, 3) AS j) y ON true
          LEFT JOIN g ON g.i = x.i AND g.j = x.k
          JOIN b bb ON bb.i = x.k AND bb.j = y.j
         GROUP BY x.i, y.j) p
  LEFT JOIN g ON g.i = p.i AND g.j = p.j
 WHERE p.i <> p.j;
-- scores are sums of B's rows; after bundles 0 and 1, bundle 2 scores highest of the bundles not taken
SELECT array_length(recsys.ease_scores(w, '{0, 1}'), 1) AS n,
       recsys.ease_scores(w, '{}') = array_fill(0::real, ARRAY[4]) AS nothing_taken_scores_zero,
       (SELECT array_agg(round(v::numeric, 4)) FROM unnest(recsys.ease_scores(w, '{0, 1}')) v) AS scores
  FROM m;
-- the same model read from a table serves every row without being parsed again
CREATE TEMP TABLE users AS SELECT user_idx, array_agg(bundle_idx ORDER BY bundle_idx) AS taken FROM recsys.user_bundles GROUP BY 1;
SELECT count(*) AS users_scored, bool_and(array_length(recsys.ease_scores(m.w, u.taken), 1) = 4) AS all_full
  FROM users u, m;
SELECT pg_temp.try($$SELECT recsys.ease_fit(0)$$);
SELECT pg_temp.try($$SELECT recsys.ease_fit('NaN')$$);
SELECT pg_temp.try(format('SELECT recsys.ease_scores(%L::bytea, %L)', w, '{0, 4}')) FROM m;
SELECT pg_temp.try(format('SELECT recsys.ease_scores(%L::bytea, %L)', recsys.model_init('mlp', '{"layers": [2, 1]}', 1), '{0}'));
SELECT pg_temp.try(format('SELECT recsys.ease_scores(%L::bytea, %L)', w, '{{0}, {1}}')) FROM m;

-- past dense_max the bundle fit is low-rank (EASE on the Gram matrix's strongest eigenpairs, never formed):
-- at full rank it is the dense fit, entry for entry; below it, the same servable shape
CREATE TEMP TABLE lr AS
SELECT recsys.bundle_fit('{"lambda": 2}') AS dense,
       recsys.bundle_fit('{"lambda": 2, "dense_max": 0, "rank": 4}') AS low,
       recsys.bundle_fit('{"lambda": 2, "dense_max": 0, "rank": 2}') AS low2;
SELECT recsys.model_info(low) -> 'config' -> 'fit' ->> 'method' AS method,
       recsys.model_info(low) -> 'config' -> 'fit' ->> 'rank' AS rank,
       recsys.model_info(low2) -> 'config' -> 'fit' ->> 'rank' AS rank2,
       recsys.model_info(dense) -> 'config' -> 'fit' ->> 'method' AS dense_method
  FROM lr;
-- as sparse matrices: each kept (row, column) entry, zero entries and padding aside
CREATE TEMP TABLE lr_entries AS
SELECT f.fit, m.name, (i.o - 1) / array_length(recsys.model_tensor(f.w, m.name || '.idx'), 2) AS r, i.j::int AS c,
       sum((recsys.model_tensor(f.w, m.name || '.val'))[(i.o - 1) / array_length(recsys.model_tensor(f.w, m.name || '.idx'), 2) + 1]
                                                         [(i.o - 1) % array_length(recsys.model_tensor(f.w, m.name || '.idx'), 2) + 1]) AS x
  FROM (SELECT 'dense' AS fit, dense AS w FROM lr UNION ALL SELECT 'low', low FROM lr) f,
       unnest(ARRAY['b', 'm']) m(name),
       unnest(recsys.model_tensor(f.w, m.name || '.idx')) WITH ORDINALITY i(j, o)
 GROUP BY 1, 2, 3, 4;
SELECT name, count(*) FILTER (WHERE abs(coalesce(d.x, 0)) > 1e-6) AS entries,
       max(abs(coalesce(d.x, 0) - coalesce(l.x, 0))) < 1e-4 AS same_as_dense
  FROM (SELECT * FROM lr_entries WHERE fit = 'dense') d
  FULL JOIN (SELECT * FROM lr_entries WHERE fit = 'low') l USING (name, r, c)
 GROUP BY name ORDER BY name;
SELECT max(abs(a - b)) < 1e-6 AS same_popularity
  FROM lr, unnest(recsys.model_tensor(dense, 'bundle.pop'), recsys.model_tensor(low, 'bundle.pop')) AS x(a, b);
SELECT recsys.model_tensor(low2, 'b.val') IS NOT NULL AS rank2_fits,
       array_dims(recsys.model_tensor(low2, 'b.val')) = array_dims(recsys.model_tensor(dense, 'b.val')) AS same_shape
  FROM lr;
SELECT pg_temp.try($$SELECT recsys.bundle_fit('{"dense_max": 0, "rank": 1}')$$);
SELECT pg_temp.try($$SELECT recsys.bundle_fit('{"dense_max": 12001}')$$);
