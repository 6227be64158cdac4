-- Serving from a trained bundle model: exact k after filters, reasons, cold-start tiers, the backend cache.
\i test/regress_setup.psql
DROP SCHEMA IF EXISTS shop CASCADE;
SELECT recsys.demo_shop(customers => 800) IS NOT NULL AS shop;
SELECT count(*) > 0 AS prepared FROM recsys.prepare();
-- before any training: the baseline serves, and filters that need a model say so
SELECT count(*) AS baseline_rows FROM recommend_bundles(42, 5);
SELECT pg_temp.try($$SELECT * FROM recommend_bundles(42, 3, '{"in_stock": true}')$$);
CALL recsys.train('default', '{"max_epochs": 3, "gru_epochs": 1}');
SELECT status, (metrics ->> 'valid_ndcg20')::float8 >= 0 AS has_validation,
       recsys.model_info(weights) #>> '{config,model}' AS model,
       recsys.model_info(weights) -> 'config' ? 'scorer' AS has_scorer,
       recsys.model_info(weights) -> 'config' ? 'encoder' AS has_encoder
  FROM recsys.model_versions;
SELECT epoch, metrics ->> 'stage' AS stage, checkpoint IS NOT NULL AS checkpointed
  FROM recsys.training_runs ORDER BY epoch;

-- a customer with history: k rows, ranks 1..k, scores not increasing, a reason each, none already taken
CREATE TEMP TABLE r42 AS SELECT * FROM recommend_bundles(42, 10);
SELECT count(*) AS k_rows, array_agg(rank ORDER BY rank) = ARRAY[1,2,3,4,5,6,7,8,9,10] AS ranks,
       bool_and(reason <> '') AS reasons,
       bool_and(NOT EXISTS (SELECT 1 FROM shop.bundle_orders o WHERE o.customer_id = 42 AND o.bundle_id = r42.bundle_id)) AS none_taken
  FROM r42;
SELECT bool_and(a.score >= b.score) AS scores_ordered FROM r42 a JOIN r42 b ON b.rank = a.rank + 1;
SELECT count(*) FILTER (WHERE reason ~ '^(because you bought|customers who took)') > 0 AS personal_reasons FROM r42;
-- text and bigint forms agree
SELECT (SELECT array_agg(bundle_id::text ORDER BY rank) FROM recommend_bundles(42, 10))
     = (SELECT array_agg(bundle_id ORDER BY rank) FROM recommend_bundles('42', 10)) AS forms_agree;

-- filters apply before the cut: still exactly k rows, each one passing
-- (the candidates are the curated bundles and the mined ones taken in some basket: recsys.bundle_attrs, priced)
SELECT count(*) = (SELECT least(10, count(*)) FROM recsys.bundle_attrs a
                     WHERE a.price <= 150
                       AND NOT EXISTS (SELECT 1 FROM recsys.user_bundles ub
                                         JOIN recsys.id_map u ON u.space = 'user' AND u.idx = ub.user_idx
                                        WHERE u.ext_id = '42' AND ub.bundle_idx = a.bundle_idx))
         AS every_passing_bundle_up_to_k,
       bool_and((SELECT sum(p.price) FROM shop.products p WHERE p.product_id = ANY (r.items)) <= 150) AS under_cap
  FROM recommend_bundles(42, 10, '{"max_price": 150}') r;
SELECT count(*) AS k_rows,
       bool_and((SELECT bool_and(p.stock > 0) FROM shop.products p WHERE p.product_id = ANY (r.items))) AS all_in_stock
  FROM recommend_bundles(42, 10, '{"in_stock": true}') r;
SELECT count(*) AS k_rows,
       bool_and((SELECT count(DISTINCT p.category) FROM shop.products p WHERE p.product_id = ANY (r.items)) >= 2) AS two_categories
  FROM recommend_bundles(42, 10, '{"min_categories": 2}') r;
SELECT count(*) AS rows_with_item, bool_and(r.items @> ARRAY[i.product_id]) AS all_contain
  FROM (SELECT product_id FROM shop.bundle_items ORDER BY bundle_id, product_id LIMIT 1) i,
       LATERAL recommend_bundles(42, 3, jsonb_build_object('include_items', jsonb_build_array(i.product_id))) r;
SELECT bool_and(NOT r.items @> ARRAY[x.product_id]) AS none_contain
  FROM (SELECT (SELECT items[1] FROM r42 WHERE rank = 1) AS product_id) x,
       LATERAL recommend_bundles(42, 10, jsonb_build_object('exclude_items', jsonb_build_array(x.product_id))) r;
-- only as many rows as bundles pass: no bundle costs less than 1
SELECT count(*) AS rows_under_1 FROM recommend_bundles(42, 10, '{"max_price": 1}');
-- exclude_taken false may return bundles already taken; a repurchase window of 0 days does too
SELECT count(*) AS k_rows FROM recommend_bundles(42, 10, '{"exclude_taken": false}');
SELECT count(*) >= (SELECT count(*) FROM recommend_bundles(42, 10)) AS window_rows FROM recommend_bundles(42, 10, '{"repurchase_days": 0}');

-- cold start, labelled: unknown customer -> popularity and trend; a session without history -> GRU over it
SELECT rank, reason LIKE 'popular with all customers (new customer): taken by %' AS popular_tier
  FROM recommend_bundles(-1, 3) ORDER BY rank;
SELECT count(*) AS k_rows, bool_and(reason LIKE 'from your session (GRU): %') AS session_tier
  FROM recommend_bundles('visitor-1', 5, (SELECT jsonb_build_object('session', jsonb_agg(product_id)) FROM
                                          (SELECT product_id FROM shop.products ORDER BY product_id LIMIT 3) p));

-- scores on one 0..1 scale in every tier, not increasing down the list: a known customer (the scorer's sigmoid,
-- then the fit's order and popularity fill-ins below it), an unknown one (popularity shares, summing to at most 1
-- over every bundle), a visitor with a session (the GRU's softmax over the candidates, as shares), and items (the
-- item scorer's sigmoid)
CREATE TEMP TABLE tier_scores AS
SELECT 'known' AS tier, rank, score FROM recommend_bundles(42, 200)
UNION ALL SELECT 'unknown', rank, score FROM recommend_bundles(-1, 10000)
UNION ALL SELECT 'session', rank, score
  FROM recommend_bundles('visitor-1', 200, (SELECT jsonb_build_object('session', jsonb_agg(product_id)) FROM
                                            (SELECT product_id FROM shop.products ORDER BY product_id LIMIT 3) p))
UNION ALL SELECT 'items known', rank, score FROM recommend_items(42, 50)
UNION ALL SELECT 'items unknown', rank, score FROM recommend_items(-1, 50);
SELECT t.tier, count(*) > 10 AS many_rows, bool_and(t.score > 0 AND t.score <= 1) AS in_0_1,
       bool_and(n.score IS NULL OR n.score <= t.score) AS not_increasing,
       CASE WHEN t.tier IN ('unknown', 'session') THEN sum(t.score) <= 1.0001 END AS shares_sum_to_at_most_1
  FROM tier_scores t LEFT JOIN tier_scores n ON n.tier = t.tier AND n.rank = t.rank + 1
 GROUP BY t.tier ORDER BY t.tier;

-- the model is loaded once per backend and reused until a version is activated
SELECT (recsys.serving_status() ->> 'loads')::int AS loads_before,
       (SELECT count(*) FROM generate_series(1, 50) g, recommend_bundles(42, 5)) AS rows,
       (recsys.serving_status() ->> 'loads')::int AS loads_after;
SELECT recsys.activate_version(recsys.add_version('default', (SELECT weights FROM recsys.model_versions WHERE status = 'active'))) IS NOT NULL AS activated;
SELECT count(*) AS rows FROM recommend_bundles(42, 5);
SELECT (recsys.serving_status() ->> 'version_id')::bigint = recsys.active_version('default') AS serves_new_version,
       (recsys.serving_status() ->> 'loads')::int AS loads;

-- bad input: clear errors, and the session goes on
SELECT pg_temp.try($$SELECT * FROM recommend_bundles(42, 0)$$);
SELECT pg_temp.try($$SELECT * FROM recommend_bundles(42, 10001)$$);
SELECT pg_temp.try($$SELECT * FROM recommend_bundles(42, 3, '{"colour": "red"}')$$);
SELECT pg_temp.try($$SELECT * FROM recommend_bundles(42, 3, '{"max_price": "cheap"}')$$);
SELECT pg_temp.try($$SELECT * FROM recommend_bundles(42, 3, '{"max_price": -5}')$$);
SELECT pg_temp.try($$SELECT * FROM recommend_bundles(42, 3, '{"include_items": 7}')$$);
SELECT pg_temp.try($$SELECT * FROM recommend_bundles(42, 3, '{"model": "nope"}')$$);
SELECT pg_temp.try($$CALL recsys.train('default', '{"epochs": 3}')$$);
SELECT pg_temp.try($$CALL recsys.train('Bad Name')$$);
SELECT pg_temp.try($$SELECT recsys.bundle_attach(recsys.model_pack('mlp', '{"w": [1]}'), NULL)$$);
SELECT 'session alive' AS still;
-- a parallel worker loads its own cache with the leader's snapshot (it may not take a newer one)
SET force_parallel_mode = on;
SELECT count(*) AS rows_from_a_worker FROM recommend_bundles(42, 10);
SELECT count(*) AS batch_rows FROM recommend_bundles_batch(ARRAY[42, 43, -1]::bigint[], 5);
RESET force_parallel_mode;

-- mined bundles beside curated ones (the default, bundles 'both'): each was taken in some basket, holds another
-- item set than every curated bundle, and has a stable id (a hash of its items) and a name from its items
SELECT a.source, count(*) > 0 AS some, bool_and(s.n_users > 0) AS all_taken,
       bool_and(a.name ~ ' \+ ') FILTER (WHERE a.source = 'mined') AS named_after_items
  FROM recsys.bundle_attrs a JOIN recsys.bundle_stats s USING (bundle_idx) GROUP BY 1 ORDER BY 1;
SELECT count(*) AS mined_equal_to_curated
  FROM (SELECT bundle_idx, array_agg(item_idx ORDER BY item_idx) AS items FROM recsys.bundle_items GROUP BY 1) m
  JOIN recsys.bundle_attrs am ON am.bundle_idx = m.bundle_idx AND am.source = 'mined'
  JOIN (SELECT bundle_idx, array_agg(item_idx ORDER BY item_idx) AS items FROM recsys.bundle_items GROUP BY 1) c
    ON c.items = m.items AND c.bundle_idx <> m.bundle_idx;
-- only adopted bundles get ids: none without items (a mined set nobody took in a basket gets no id)
SELECT count(*) AS bundle_ids_without_items
  FROM recsys.id_map m WHERE m.space = 'bundle' AND NOT EXISTS (SELECT 1 FROM recsys.bundle_items bi WHERE bi.bundle_idx = m.idx);
CREATE TEMP TABLE mined_before AS
SELECT b.ext_id, a.name FROM recsys.bundle_attrs a JOIN recsys.id_map b ON b.space = 'bundle' AND b.idx = a.bundle_idx
 WHERE a.source = 'mined';
-- adopting again keeps every id and name; 'curated' drops the mined ones, 'mined' the curated ones
SELECT recsys.adopt_mined_bundles() = (SELECT count(*) FROM mined_before) AS same_count,
       (SELECT count(*) FROM mined_before x JOIN recsys.id_map b ON b.space = 'bundle' AND b.ext_id = x.ext_id
          JOIN recsys.bundle_attrs a ON a.bundle_idx = b.idx AND a.name = x.name) = (SELECT count(*) FROM mined_before) AS same_ids;
BEGIN;
SELECT recsys.adopt_mined_bundles(2000, 'curated') AS adopted;
SELECT array_agg(DISTINCT source) AS sources,
       (SELECT count(*) FROM recsys.bundle_items bi
         WHERE NOT EXISTS (SELECT 1 FROM recsys.bundle_attrs a WHERE a.bundle_idx = bi.bundle_idx)) AS unnamed
  FROM recsys.bundle_attrs;
SELECT recsys.adopt_mined_bundles(2000, 'mined') > 0 AS adopted;
SELECT array_agg(DISTINCT source) AS sources,
       (SELECT count(*) FROM recsys.bundle_items bi
         WHERE NOT EXISTS (SELECT 1 FROM recsys.bundle_attrs a WHERE a.bundle_idx = bi.bundle_idx)) AS unnamed
  FROM recsys.bundle_attrs;
ROLLBACK;

-- the learned parts (scorer, item blend, GRU) learn from a seeded sample of about max_customers customers; the fit
-- sees everyone
SELECT count(*) FILTER (WHERE recsys.in_customer_sample(u, 42, 10000, 2000)) BETWEEN 1800 AND 2200 AS about_2000_of_10000,
       bool_and(recsys.in_customer_sample(u, 42, 10000, 0)) AND bool_and(recsys.in_customer_sample(u, 42, 10000, 10000)) AS all_when_they_fit
  FROM generate_series(0, 9999) u;
CREATE TEMP TABLE fit42 AS SELECT recsys.bundle_fit('{"holdout_seed": 42}') AS w;
SELECT (SELECT count(DISTINCT user_idx) FROM fit42, recsys.bundle_samples(w, 42, 20)) AS customers_all,
       (SELECT count(DISTINCT user_idx) FROM fit42, recsys.bundle_samples(w, 42, 20, 100)) AS customers_sampled,
       (SELECT bool_and(recsys.in_customer_sample(user_idx, 42, (SELECT count(*) FROM recsys.id_map WHERE space = 'user'), 100))
          FROM fit42, recsys.bundle_samples(w, 42, 20, 100)) AS each_in_the_sample;

-- similar_items and complete_bundle rank in C from the item cache: the same rows as the SQL rankings they replace
-- (kept here as the reference), for every item and for carts of one to three items
CREATE FUNCTION pg_temp.similar_ref(i integer, k integer) RETURNS TABLE (rank integer, item_id text, score real, reason text)
LANGUAGE sql AS $$
    WITH together AS (
        SELECT p.item_b AS idx, 1 AS tier, (p.confidence * ln(1 + p.lift))::real AS s,
               format('bought together in %s (lift %s)',
                      p.together || CASE WHEN p.together = 1 THEN ' order' ELSE ' orders' END, round(p.lift::numeric, 1)) AS why
          FROM recsys.item_pair_stats p WHERE p.item_a = i
    ), content AS (
        SELECT f.item_idx AS idx, 2 AS tier,
               ((SELECT sum(a * b) FROM unnest(f.content, me.content) AS t(a, b)) + 0.001 * ln(1 + f.buyers))::real AS s,
               format('similar product: %s%s', coalesce(f.category, 'same kind'),
                      CASE WHEN f.price_band = me.price_band THEN ', same price band' ELSE '' END) AS why
          FROM recsys.item_features f, recsys.item_features me
         WHERE me.item_idx = i AND f.item_idx <> i AND f.item_idx NOT IN (SELECT t.idx FROM together t)
    ), ranked AS (SELECT * FROM together UNION ALL SELECT * FROM content)
    SELECT (row_number() OVER (ORDER BY r.tier, r.s DESC, r.idx))::int, m.ext_id, r.s, r.why
      FROM ranked r JOIN recsys.id_map m ON m.space = 'item' AND m.idx = r.idx
     ORDER BY r.tier, r.s DESC, r.idx LIMIT k
$$;
CREATE FUNCTION pg_temp.complete_ref(cart integer[], k integer, opts jsonb) RETURNS TABLE (rank integer, item_id text, score real, reason text)
LANGUAGE sql AS $$
    WITH mined AS (
        SELECT x AS idx, 1 AS tier, max(b.lift * cardinality(ARRAY(SELECT unnest(b.items) INTERSECT SELECT unnest(cart))))::real AS s,
               (array_agg(format('completes a set bought together by %s (lift %s)',
                                 recsys.n_customers(b.customers), round(b.lift::numeric, 1)) ORDER BY b.lift DESC, b.bundle_key))[1] AS why
          FROM recsys.mined_bundles b, unnest(b.items) x
         WHERE b.items && cart AND NOT x = ANY (cart)
         GROUP BY x
    ), together AS (
        SELECT p.item_b AS idx, 2 AS tier, sum(p.confidence * ln(1 + p.lift))::real AS s,
               format('bought together with %s in %s (lift %s)',
                      recsys.item_label((array_agg(p.item_a ORDER BY p.confidence DESC, p.item_a))[1]),
                      max(p.together) || CASE WHEN max(p.together) = 1 THEN ' order' ELSE ' orders' END,
                      round(max(p.lift)::numeric, 1)) AS why
          FROM recsys.item_pair_stats p
         WHERE p.item_a = ANY (cart) AND NOT p.item_b = ANY (cart) AND p.item_b NOT IN (SELECT mined.idx FROM mined)
         GROUP BY p.item_b
    ), popular AS (
        SELECT f.item_idx AS idx, 3 AS tier, ln(1 + f.buyers)::real AS s, format('popular: %s buyers', f.buyers) AS why
          FROM recsys.item_features f
         WHERE NOT f.item_idx = ANY (cart)
           AND f.item_idx NOT IN (SELECT mined.idx FROM mined) AND f.item_idx NOT IN (SELECT together.idx FROM together)
    ), ranked AS (SELECT * FROM mined UNION ALL SELECT * FROM together UNION ALL SELECT * FROM popular)
    SELECT (row_number() OVER (ORDER BY r.tier, r.s DESC, r.idx))::int, m.ext_id, r.s, r.why
      FROM ranked r JOIN recsys.id_map m ON m.space = 'item' AND m.idx = r.idx
     WHERE recsys.item_passes(r.idx, opts)
     ORDER BY r.tier, r.s DESC, r.idx LIMIT k
$$;
SELECT count(*) AS items_compared,
       count(*) FILTER (WHERE (SELECT array_agg(s ORDER BY rank) FROM similar_items(m.ext_id, 12) s)
                          IS DISTINCT FROM (SELECT array_agg(s ORDER BY rank) FROM pg_temp.similar_ref(m.idx, 12) s)) AS differing
  FROM recsys.id_map m WHERE m.space = 'item';
CREATE TEMP TABLE carts AS
SELECT c, ARRAY(SELECT m.idx FROM recsys.id_map m WHERE m.space = 'item'
                 ORDER BY hashint4(m.idx * 31 + c) LIMIT 1 + c % 3) AS cart,
       (ARRAY['{}', '{"in_stock": true}', '{"max_price": 40}'])[1 + c % 3]::jsonb AS opts
  FROM generate_series(1, 120) c
UNION ALL
(SELECT 1000 + row_number() OVER (ORDER BY mb.bundle_key), mb.items[1:1], '{}'
   FROM recsys.mined_bundles mb ORDER BY mb.bundle_key LIMIT 60);
SELECT count(*) AS carts_compared,
       count(*) FILTER (WHERE (SELECT array_agg(s ORDER BY rank)
                                 FROM complete_bundle(ARRAY(SELECT m.ext_id FROM recsys.id_map m WHERE m.space = 'item' AND m.idx = ANY (c.cart)), 8, c.opts) s)
                          IS DISTINCT FROM (SELECT array_agg(s ORDER BY rank)
                                              FROM pg_temp.complete_ref(c.cart, 8, recsys.check_item_options(8, c.opts, '{in_stock,max_price}')) s)) AS differing,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM complete_bundle(ARRAY(SELECT m.ext_id FROM recsys.id_map m WHERE m.space = 'item' AND m.idx = ANY (c.cart)), 8, c.opts) s
                                       WHERE s.reason LIKE 'completes a set%')) > 0 AS some_complete_a_mined_set
  FROM carts c;

-- similar_items takes the filters of complete_bundle and recommend_items, applied before the cut: still k rows
SELECT count(*) AS k_rows, bool_and(p.stock > 0) AS all_in_stock
  FROM similar_items((SELECT min(product_id) FROM shop.products), 10, '{"in_stock": true}') s
  JOIN shop.products p ON p.product_id = s.item_id;
SELECT count(*) AS k_rows, bool_and(p.price <= 30) AS all_under_cap
  FROM similar_items((SELECT min(product_id) FROM shop.products)::text, 10, '{"max_price": 30}') s
  JOIN shop.products p ON p.product_id::text = s.item_id;
SELECT pg_temp.try($$SELECT * FROM similar_items(1000, 3, '{"exclude_taken": true}')$$);

-- a visitor whose session names no item of the catalogue is told so, not silently served as a new customer
SELECT rank, reason FROM recommend_bundles('visitor-1', 2, '{"session": ["no-such-item", "nor-this"]}');
SELECT count(*) FILTER (WHERE reason LIKE 'from your session%') = 2 AS known_session_is_personal
  FROM recommend_bundles('visitor-1', 2, jsonb_build_object('session', jsonb_build_array((SELECT min(product_id) FROM shop.products)::text)));

-- item_pairs counts each item's partners over an inverted index (memory linear in the events); the same pairs and
-- statistics as counting every basket's pairs in SQL
CREATE TEMP TABLE ref_pairs AS
WITH tx AS (SELECT e.basket_idx AS t, array_agg(DISTINCT e.item_idx ORDER BY e.item_idx) AS items
              FROM recsys.events_clean e WHERE e.basket_idx IS NOT NULL GROUP BY 1),
     n AS (SELECT count(*)::float8 AS n FROM tx),
     ic AS (SELECT i, count(*) AS c FROM tx, unnest(items) i GROUP BY i),
     pr AS (SELECT a, b, count(*) AS together FROM tx, unnest(items) a, unnest(items) b
             WHERE a <> b AND cardinality(items) <= 50 GROUP BY a, b HAVING count(*) >= 2)
SELECT pr.a, pr.b, pr.together, round((pr.together / n.n)::numeric, 9) AS support,
       round((pr.together::float8 / ia.c)::numeric, 9) AS confidence,
       round(((pr.together::float8 / ia.c) / (ib.c / n.n))::numeric, 9) AS lift
  FROM pr, n, ic ia, ic ib WHERE ia.i = pr.a AND ib.i = pr.b;
CREATE TEMP TABLE c_pairs AS
SELECT p.item_a AS a, p.item_b AS b, p.together, round(p.support::numeric, 9) AS support,
       round(p.confidence::numeric, 9) AS confidence, round(p.lift::numeric, 9) AS lift
  FROM recsys.item_pairs(2, 50) p;
SELECT (SELECT count(*) FROM ref_pairs) > 100 AS many_pairs,
       (SELECT count(*) FROM (SELECT * FROM ref_pairs EXCEPT SELECT * FROM c_pairs) d) AS missing,
       (SELECT count(*) FROM (SELECT * FROM c_pairs EXCEPT SELECT * FROM ref_pairs) d) AS extra;

-- mine_itemsets grows sets depth-first over an inverted index; the same sets, counts and lift as the SQL Apriori
-- it replaced (baskets of 2..50 items, a set grown by larger items while 3 customers hold it, up to 4 items), run
-- here as the reference
CREATE TEMP TABLE ref_baskets AS
SELECT e.basket_idx AS basket, min(e.user_idx) AS user_idx, array_agg(DISTINCT e.item_idx ORDER BY e.item_idx) AS items
  FROM recsys.events_clean e WHERE e.basket_idx IS NOT NULL
 GROUP BY 1 HAVING count(DISTINCT e.item_idx) BETWEEN 2 AND 50;
CREATE TEMP TABLE ref_grown (items integer[], baskets bigint, customers bigint);
DO $$
DECLARE size integer;
BEGIN
    CREATE TEMP TABLE ref_level AS SELECT ARRAY[i] AS items FROM ref_baskets b, unnest(b.items) i GROUP BY i
                                   HAVING count(DISTINCT b.user_idx) >= 3;
    FOR size IN 2 .. 4 LOOP
        CREATE TEMP TABLE ref_next AS
        SELECT f.items || x AS items, count(*) AS baskets, count(DISTINCT b.user_idx) AS customers
          FROM ref_level f JOIN ref_baskets b ON b.items @> f.items CROSS JOIN LATERAL unnest(b.items) x
         WHERE x > f.items[cardinality(f.items)] GROUP BY 1 HAVING count(DISTINCT b.user_idx) >= 3;
        INSERT INTO ref_grown SELECT * FROM ref_next;
        DROP TABLE ref_level;
        CREATE TEMP TABLE ref_level AS SELECT items FROM ref_next;
        DROP TABLE ref_next;
    END LOOP;
END $$;
CREATE TEMP TABLE ref_sets AS
SELECT g.items, g.baskets, g.customers,
       round(((g.baskets::float8 / (SELECT count(*) FROM ref_baskets))
              / (SELECT exp(sum(ln(s.c::float8 / (SELECT count(*) FROM ref_baskets))))
                   FROM (SELECT i, count(*) AS c FROM ref_baskets, unnest(items) i GROUP BY i) s WHERE s.i = ANY (g.items)))::numeric, 6) AS lift
  FROM ref_grown g;
CREATE TEMP TABLE c_sets AS SELECT m.items, m.baskets, m.customers, round(m.lift::numeric, 6) AS lift FROM recsys.mine_itemsets(3, 4, 50) m;
SELECT (SELECT count(*) FROM ref_sets) > 50 AS many_sets, (SELECT max(cardinality(items)) FROM ref_sets) AS largest,
       (SELECT count(*) FROM (SELECT * FROM ref_sets EXCEPT SELECT * FROM c_sets) d) AS missing,
       (SELECT count(*) FROM (SELECT * FROM c_sets EXCEPT SELECT * FROM ref_sets) d) AS extra;

-- basket_takers intersects the items' inverted lists of baskets: the same customers, basket counts and latest
-- times as finding in SQL the baskets that hold every item of each set
CREATE TEMP TABLE t_sets AS
SELECT (row_number() OVER (ORDER BY m.bundle_key))::integer AS k, m.items FROM recsys.mined_bundles m ORDER BY m.bundle_key LIMIT 300;
CREATE TEMP TABLE ref_takers AS
SELECT s.k, b.user_idx, count(*) AS n, max(l.last) AS last_ts
  FROM t_sets s
  JOIN (SELECT e.basket_idx, min(e.user_idx) AS user_idx, array_agg(e.item_idx) AS items
          FROM recsys.events_clean e WHERE e.basket_idx IS NOT NULL GROUP BY e.basket_idx) b ON b.items @> s.items
 CROSS JOIN LATERAL (SELECT max(e.ts) AS last FROM recsys.events_clean e
                      WHERE e.basket_idx = b.basket_idx AND e.item_idx = ANY (s.items)) l
 GROUP BY s.k, b.user_idx;
CREATE TEMP TABLE c_takers AS
SELECT t.k, t.user_idx, t.n, t.last_ts
  FROM recsys.basket_takers(ARRAY(SELECT k FROM t_sets ORDER BY k),
                            ARRAY[0] || ARRAY(SELECT (sum(cardinality(items)) OVER (ORDER BY k))::integer FROM t_sets ORDER BY k),
                            ARRAY(SELECT it FROM t_sets, unnest(items) WITH ORDINALITY u(it, o) ORDER BY k, o)) t;
SELECT (SELECT count(*) FROM ref_takers) > 100 AS many_takers,
       (SELECT count(*) FROM (SELECT * FROM ref_takers EXCEPT SELECT * FROM c_takers) d) AS missing,
       (SELECT count(*) FROM (SELECT * FROM c_takers EXCEPT SELECT * FROM ref_takers) d) AS extra;
SELECT pg_temp.try($$SELECT * FROM recsys.basket_takers('{1}', '{0}', '{}')$$);
SELECT pg_temp.try($$SELECT * FROM recsys.basket_takers('{1}', '{0,5}', '{1,2}')$$);
