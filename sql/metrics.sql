-- Ranking metrics against hand-computed values (to 1e-6), empty and all-relevant lists included.
\i test/regress_setup.psql
CREATE FUNCTION pg_temp.near(got double precision, want double precision) RETURNS boolean LANGUAGE sql AS
$$ SELECT CASE WHEN want IS NULL THEN got IS NULL ELSE abs(got - want) < 1e-6 END $$;

-- ranked a b c d e, relevant b e x, k 5, catalogue of 10:
-- hits at 2 and 5; P = 2/5; R = 2/3; F1 = 0.5; DCG = 1/log2(3) + 1/log2(6), IDCG = 1 + 1/log2(3) + 1/2;
-- AP = (1/2 + 2/5) / 3 = 0.3; RR = 1/2; AUC: b beats c, d and 4 unlisted, e beats 4 unlisted, x ties 4 unlisted -> 12 / 21
SELECT pg_temp.near(precision_at_k, 0.4) AS p, pg_temp.near(recall_at_k, 2.0 / 3) AS r, pg_temp.near(f1_at_k, 0.5) AS f1,
       pg_temp.near(ndcg_at_k, (1 / log(2, 3) + 1 / log(2, 6)) / (1 + 1 / log(2, 3) + 0.5)) AS ndcg,
       pg_temp.near(ap_at_k, 0.3) AS ap, pg_temp.near(hit_at_k, 1) AS hit, pg_temp.near(rr, 0.5) AS rr, pg_temp.near(auc, 12.0 / 21) AS auc
  FROM recsys.rank_metrics(ARRAY['a', 'b', 'c', 'd', 'e'], ARRAY['b', 'e', 'x'], 5, 10);
-- the same list cut at k = 2: one hit
SELECT pg_temp.near(precision_at_k, 0.5) AS p, pg_temp.near(recall_at_k, 1.0 / 3) AS r, pg_temp.near(f1_at_k, 0.4) AS f1,
       pg_temp.near(ndcg_at_k, (1 / log(2, 3)) / (1 + 1 / log(2, 3))) AS ndcg, pg_temp.near(ap_at_k, 0.25) AS ap,
       pg_temp.near(rr, 0.5) AS rr
  FROM recsys.rank_metrics(ARRAY['a', 'b', 'c', 'd', 'e'], ARRAY['b', 'e', 'x'], 2, 10);
-- an empty list: nothing found; AUC of an uninformed order is 1/2
SELECT pg_temp.near(precision_at_k, 0) AS p, pg_temp.near(recall_at_k, 0) AS r, pg_temp.near(f1_at_k, 0) AS f1, pg_temp.near(ndcg_at_k, 0) AS ndcg,
       pg_temp.near(ap_at_k, 0) AS ap, pg_temp.near(hit_at_k, 0) AS hit, pg_temp.near(rr, 0) AS rr, pg_temp.near(auc, 0.5) AS auc
  FROM recsys.rank_metrics('{}'::text[], ARRAY['b', 'e', 'x'], 5, 10);
-- all relevant: every metric 1; no other item exists, so AUC is undefined (NULL)
SELECT pg_temp.near(precision_at_k, 1) AS p, pg_temp.near(recall_at_k, 1) AS r, pg_temp.near(f1_at_k, 1) AS f1, pg_temp.near(ndcg_at_k, 1) AS ndcg,
       pg_temp.near(ap_at_k, 1) AS ap, pg_temp.near(hit_at_k, 1) AS hit, pg_temp.near(rr, 1) AS rr, auc IS NULL AS auc_null
  FROM recsys.rank_metrics(ARRAY['a', 'b'], ARRAY['b', 'a'], 2);
-- no relevant ids: precision and hit 0, the rest NULL (skipped by avg)
SELECT precision_at_k, hit_at_k, recall_at_k IS NULL AND f1_at_k IS NULL AND ndcg_at_k IS NULL AND ap_at_k IS NULL AND rr IS NULL AND auc IS NULL AS rest_null
  FROM recsys.rank_metrics(ARRAY['a', 'b'], '{}'::text[], 2, 10);
-- k beyond the list: precision divides by k; duplicates in the list count once, duplicates in relevant once
SELECT pg_temp.near(precision_at_k, 1.0 / 3) AS p, pg_temp.near(recall_at_k, 1) AS r, pg_temp.near(f1_at_k, 0.5) AS f1,
       pg_temp.near(ndcg_at_k, 1) AS ndcg, pg_temp.near(ap_at_k, 1) AS ap
  FROM recsys.rank_metrics(ARRAY['a', 'a', 'b'], ARRAY['a', 'a'], 3);
-- bigint ids, and AUC with the catalogue grown to hold list and relevant (n_items NULL): the one other item (7) is
-- listed above both relevant ones (8 listed second, 9 unlisted), so no pair is right
SELECT pg_temp.near(auc, 0) AS auc, pg_temp.near(rr, 0.5) AS rr FROM recsys.rank_metrics(ARRAY[7, 8]::bigint[], ARRAY[8, 9]::bigint[], 2);
-- Gini: equal exposure 0; all on one of four 0.75; 1, 2, 3 -> 4 / 18
SELECT pg_temp.near(recsys.gini(ARRAY[1, 1, 1, 1]::float8[]), 0) AS equal,
       pg_temp.near(recsys.gini(ARRAY[0, 0, 0, 4]::float8[]), 0.75) AS one_item,
       pg_temp.near(recsys.gini(ARRAY[3, 1, 2]::float8[]), 4.0 / 18) AS ramp,
       pg_temp.near(recsys.gini(ARRAY[0, 0]::float8[]), 0) AS nothing_shown;
-- novelty, diversity, coverage
SELECT pg_temp.near(recsys.novelty(ARRAY[0.5, 0.25]), 1.5) AS novelty,
       pg_temp.near(recsys.intra_list_diversity(ARRAY['x', 'x', 'y']), 2.0 / 3) AS diversity,
       recsys.intra_list_diversity(ARRAY['x']) IS NULL AS one_item_null,
       pg_temp.near(recsys.coverage(ARRAY['a', 'b', 'a'], 10), 0.2) AS coverage;
-- bad input
SELECT pg_temp.try($$SELECT * FROM recsys.rank_metrics(ARRAY['a', NULL], ARRAY['a'], 2)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.rank_metrics(ARRAY['a'], ARRAY['a'], 0)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.rank_metrics(ARRAY['a'], ARRAY['a'], NULL)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.rank_metrics(ARRAY['a'], ARRAY['a'], 2, -1)$$);
SELECT pg_temp.try($$SELECT * FROM recsys.rank_metrics(ARRAY[['a']], ARRAY['a'], 2)$$);
SELECT pg_temp.try($$SELECT recsys.gini(ARRAY[1, 'NaN']::float8[])$$);
SELECT (recsys.rank_metrics(NULL::text[], ARRAY['a'], 2)).recall_at_k IS NULL AS null_list_null_row;
