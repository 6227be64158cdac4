-- recsys SQL source: items -- the item model: what a customer buys next, learned from the shop's baskets (the Makefile assembles sql/src/*.sql into the install script)

------------------------------------------------------------------------------
-- The item model: each customer's history of baskets says how often and how recently they bought each item;
-- the shop's says how many buy it and how many buy it again (src/core/rs_items.c). A learned scorer (an mlp over
-- those features, and a GRU over the customer's item sequence) blends them; it trains through the one training driver
-- with the steps recsys.items_*, on each customer's last basket held out. recommend_items serves it from C
-- (src/items.c).
------------------------------------------------------------------------------
--@begin item model
CREATE FUNCTION recsys.item_samples(holdout_seed bigint, max_customers integer DEFAULT 0, encoder bytea DEFAULT NULL)
RETURNS TABLE (user_idx integer, valid boolean, bundle_idx integer, x real[], y real)
    AS 'MODULE_PATHNAME', 'item_samples'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.item_samples(bigint, integer, bytea) IS 'the item scorer''s samples: for every customer with two or more baskets (max_customers > 0: a seeded sample of about that many, recsys.in_customer_sample), the features of their items and the popular ones from the baskets before their last, labelled by the last (bundle_idx holds the item index; valid: one customer in five, by seed); encoder (gru weights, NULL: none) gives the feature of their sequence up to that basket';

CREATE FUNCTION recsys.item_sequences(holdout_seed bigint, max_customers integer DEFAULT 0, max_len integer DEFAULT 50)
RETURNS TABLE (user_idx integer, items integer[])
    AS 'MODULE_PATHNAME', 'item_sequences'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.item_sequences(bigint, integer, integer) IS 'what the item model''s GRU learns from: each customer''s items oldest first (by basket, in a basket by index), the last max_len, without the last basket of a customer with two or more (recsys.item_samples labels by it); max_customers > 0: the seeded sample of recsys.item_samples';

CREATE FUNCTION recsys.item_attach(scorer bytea, encoder bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'item_attach'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.item_attach(bytea, bytea) IS 'item model weights: the scorer (mlp weights, as they are) with its GRU attached (tensors gru.*, config key encoder), or with encoder NULL the scorer alone (without an encoder it carried); NULL scorer: NULL; checked as recommend_items loads them';

CREATE FUNCTION recsys.item_encoder(weights bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'item_encoder'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.item_encoder(bytea) IS 'the GRU attached to item model weights (recsys.item_attach) as gru weights of its own, NULL when none';

CREATE FUNCTION recsys.item_rank(user_id text, k integer, options jsonb)
RETURNS TABLE (rank integer, item_id text, score real, reason text)
    AS 'MODULE_PATHNAME', 'item_rank'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.item_rank(text, integer, jsonb) IS 'the item model''s top k for a customer from a per-backend cache (the active version of options model, default items, or the default blend before training), filters before the cut; recommend_items checks the options and calls it';

CREATE FUNCTION recsys.item_scorer_init(hidden integer, seed bigint) RETURNS bytea
    AS 'MODULE_PATHNAME', 'item_scorer_init'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.item_scorer_init(integer, bigint) IS 'new weights of the item scorer (an mlp from the item features through hidden units to one linear score), seeded';

CREATE FUNCTION recsys.item_default_score(x real[]) RETURNS real
    AS 'MODULE_PATHNAME', 'item_default_score'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.item_default_score(real[]) IS 'the item model''s default blend of one candidate''s features (what serves before training): the rule of core/rs_items.c, for SQL';

-- the training driver's steps for the item model (see recsys.train_driver)
CREATE FUNCTION recsys.items_kind() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT 'mlp' $$;
COMMENT ON FUNCTION recsys.items_kind() IS 'an item model step: the kind of the model it trains (its scorer is an mlp)';

CREATE FUNCTION recsys.items_prepare(o jsonb) RETURNS timestamptz
    LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT max(e.ts) FROM recsys.events_clean e $$;
COMMENT ON FUNCTION recsys.items_prepare(jsonb) IS 'an item model step: the time of the newest prepared event';

CREATE FUNCTION recsys.items_encoder_epoch(encoder bytea, epoch integer, o jsonb) RETURNS bytea
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
    -- next item by sampled softmax, as the bundle model's encoder (recsys.train_encoder_epoch), over the sequences
    -- without the held-out baskets
    SELECT recsys.rnn_train(encoder, sq.prefix, sq.target,
                            jsonb_build_object('lr', 0.01, 'negatives', 50, 'seed', (o ->> 'seed')::bigint + epoch))
      FROM (SELECT sq.items[greatest(1, t - 20):t - 1] AS prefix, sq.items[t] AS target
              FROM recsys.item_sequences((o ->> 'seed')::bigint, (o ->> 'max_customers')::int) sq,
                   generate_subscripts(sq.items, 1) AS t
             WHERE t > 1
             ORDER BY hashint8(sq.user_idx::bigint * 1000 + t + epoch)) sq
$$;
COMMENT ON FUNCTION recsys.items_encoder_epoch(bytea, integer, jsonb) IS 'an item model step: one epoch of its GRU over the customers'' item sequences without their held-out baskets (recsys.item_sequences)';

CREATE FUNCTION recsys.items_samples_for(version_id bigint, o jsonb, feedback_since timestamptz) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    encoder bytea;
    t0 timestamptz;
    model text := (SELECT mv.model FROM recsys.model_versions mv WHERE mv.version_id = items_samples_for.version_id);
    vocab integer := (SELECT max(m.idx) + 1 FROM recsys.id_map m WHERE m.space = 'item');
BEGIN
    DELETE FROM recsys.train_samples s WHERE s.version_id = items_samples_for.version_id;
    -- the GRU first: its view of each customer's sequence is one of the scorer's features. It is kept with the
    -- version (attached to a fresh scorer: the weights of an item model are an mlp's) for items_final and a resume.
    IF (o ->> 'gru_epochs')::int > 0 AND vocab > 0 THEN
        encoder := recsys.model_init('gru', jsonb_build_object('vocab', vocab, 'embed', o -> 'gru_embed',
                                                               'hidden', o -> 'gru_hidden'), (o ->> 'seed')::bigint);
        FOR epoch IN 1 .. (o ->> 'gru_epochs')::int LOOP
            t0 := clock_timestamp();
            encoder := coalesce(recsys.items_encoder_epoch(encoder, epoch, o), encoder);
            PERFORM recsys.training_stage('recsys.train', model, items_samples_for.version_id, 'fit',
                        format('GRU epoch %s of %s: loss %s, %s sequences, %s s', epoch, o ->> 'gru_epochs',
                               round((recsys.model_info(encoder) #>> '{config,train,mean_loss}')::numeric, 4),
                               coalesce(recsys.model_info(encoder) #>> '{config,train,samples}', '0'),
                               round(extract(epoch FROM clock_timestamp() - t0)::numeric, 1)));
        END LOOP;
        UPDATE recsys.model_versions mv
           SET weights = recsys.item_attach(recsys.item_scorer_init((o ->> 'hidden')::int, (o ->> 'seed')::bigint), encoder)
         WHERE mv.version_id = items_samples_for.version_id;
    END IF;
    INSERT INTO recsys.train_samples
    SELECT items_samples_for.version_id, i.*
      FROM recsys.item_samples((o ->> 'seed')::bigint, (o ->> 'max_customers')::int, encoder) i;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION recsys.items_samples_for(bigint, jsonb, timestamptz) IS 'an item model step: trains the GRU over the customers'' sequences (option gru_epochs; kept with the version), then stores the samples of recsys.item_samples for the version; returns their count';

CREATE FUNCTION recsys.items_status(version_id bigint, OUT samples bigint, OUT items integer)
    LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT (SELECT count(*) FROM recsys.train_samples s WHERE s.version_id = items_status.version_id), 0 $$;
COMMENT ON FUNCTION recsys.items_status(bigint) IS 'an item model step: the samples stored for a version in training, and no session encoder for the driver to train (items 0: the item model trains its GRU before its samples, recsys.items_samples_for)';

CREATE FUNCTION recsys.items_validate(version_id bigint, scorer bytea)
RETURNS TABLE (recall20 double precision, ndcg20 double precision, users bigint)
    LANGUAGE sql VOLATILE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
    -- a scorer: ranked in memory (recsys.scorer_ranks); NULL: the default blend, what serves before training
    WITH scored AS (
        SELECT s.user_idx, s.y, s.bundle_idx, recsys.item_default_score(s.x) AS p
          FROM recsys.train_samples s
         WHERE items_validate.scorer IS NULL AND s.version_id = items_validate.version_id AND s.valid
    ), ranked AS (
        SELECT sc.user_idx, sc.y, row_number() OVER (PARTITION BY sc.user_idx ORDER BY sc.p DESC, sc.bundle_idx) AS rk
          FROM scored sc
        UNION ALL
        SELECT m.user_idx, m.y, m.rk FROM recsys.scorer_ranks(items_validate.version_id, items_validate.scorer) m
    )
    SELECT coalesce(avg(CASE WHEN r.rk <= 20 THEN 1.0 ELSE 0.0 END), 0)::float8,
           coalesce(avg(CASE WHEN r.rk <= 20 THEN 1.0 / log(2, r.rk + 1.0) ELSE 0.0 END), 0)::float8,
           count(DISTINCT r.user_idx)
      FROM ranked r WHERE r.y = 1
$$;
COMMENT ON FUNCTION recsys.items_validate(bigint, bytea) IS 'an item model step: Recall@20 and a hit-discounted NDCG@20 over the items of the validating customers'' held-out baskets that their candidates hold, of a scorer (ranked in memory, recsys.scorer_ranks) or, when NULL, of the default blend';

CREATE FUNCTION recsys.items_scorer_init(hidden integer, seed bigint) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT recsys.item_scorer_init(hidden, seed) $$;
COMMENT ON FUNCTION recsys.items_scorer_init(integer, bigint) IS 'an item model step: a fresh scorer';

CREATE FUNCTION recsys.items_scorer_of(weights bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT recsys.item_attach(weights, NULL) $$;
COMMENT ON FUNCTION recsys.items_scorer_of(bytea) IS 'an item model step: the scorer of a version''s weights, without its GRU (incremental training starts from it)';

CREATE FUNCTION recsys.items_scorer_epoch(version_id bigint, scorer bytea, epoch integer, o jsonb) RETURNS bytea
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT recsys.train_scorer_epoch(version_id, scorer, epoch, o) $$;
COMMENT ON FUNCTION recsys.items_scorer_epoch(bigint, bytea, integer, jsonb) IS 'an item model step: one epoch of the scorer over the version''s samples (as the bundle scorer''s)';

CREATE FUNCTION recsys.items_final(version_id bigint, o jsonb, scorer bytea, encoder bytea) RETURNS bytea
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gru bytea := recsys.item_encoder((SELECT mv.weights FROM recsys.model_versions mv WHERE mv.version_id = items_final.version_id));
BEGIN
    DELETE FROM recsys.train_samples s WHERE s.version_id = items_final.version_id;
    PERFORM recsys.scorer_samples_release();
    -- the GRU its samples were computed with, or none (an incremental start carried the active version's)
    RETURN recsys.item_attach(scorer, gru);
END
$$;
COMMENT ON FUNCTION recsys.items_final(bigint, jsonb, bytea, bytea) IS 'an item model step: the servable weights (the best scorer, with the GRU its samples were computed with); drops the version''s samples';

CREATE FUNCTION recsys.items_activate(version_id bigint) RETURNS void
    LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT recsys.activate_version(version_id) $$;
COMMENT ON FUNCTION recsys.items_activate(bigint) IS 'an item model step: activates the trained version';
--@end
