/* recsys upgrade script 0.1.0 -> 0.2.0: only the delta (released scripts never change; see sql/RELEASED) */
\echo Use "ALTER EXTENSION recsys UPDATE TO '0.2.0'" to load this file. \quit

------------------------------------------------------------------------------
-- Training claims: one training per model, and a failed CALL never leaves the model locked
------------------------------------------------------------------------------

-- A session advisory lock outlives a CALL stopped by an error or statement_timeout for as long as its
-- session lives (a pooled connection then blocks the nightly job). A claim names the statement that holds
-- it instead: it is live while that backend still runs that statement (pg_stat_activity: same pid, state
-- active, same query_start, which stays the CALL's start across its COMMITs), and stale otherwise.
--#include sql/src/11_training.sql recsys.training_claims

--#include sql/src/04_model_store.sql recsys.statement_live(integer, timestamp with time zone)

--#include sql/src/11_training.sql recsys.training_claim(text)

--#include sql/src/11_training.sql recsys.training_release(text)

--#include sql/src/11_training.sql recsys.bundle_scorer_init(integer, bigint)

-- One training driver. recsys.train, recsys.cross_validate and the coordinator's recsys_proxy.train run the same
-- loop (samples, scorer epochs with early stopping on validation NDCG@20, GRU epochs, the final fit, the
-- activation rule); what differs is where each step runs, so the steps are functions of one schema, named alike:
--   S.train_prepare(o)                                 -> timestamptz   features refreshed if asked; the data's end
--   S.train_samples_for(version_id, o, feedback_since) -> bigint        the held-out fit's samples, stored
--   S.train_status(version_id)                         -> (samples bigint, items integer)
--   S.train_validate(version_id, scorer)               -> (recall20, ndcg20, users); scorer NULL: the fit alone
--   S.train_scorer_epoch(version_id, scorer, epoch, o) -> bytea
--   S.train_encoder_epoch(version_id, encoder, epoch, o, since) -> bytea   since: only customers active after it
--   S.train_final(version_id, o, scorer, encoder)      -> bytea         servable weights; the samples dropped
--   S.train_activate(version_id)                       -> void
-- recsys has the single-node steps; scaleout/coordinator.sql defines recsys_proxy's, which run on every shard.
--#include sql/src/11_training.sql recsys.bundle_fit(jsonb) comment

--#include sql/src/11_training.sql recsys.train_prepare(jsonb)

-- the learned parts learn from a seeded sample of customers (option max_customers); the fit sees everyone
DROP FUNCTION recsys.bundle_samples(bytea, bigint, integer);
--#include sql/src/11_training.sql recsys.bundle_samples(bytea, bigint, integer, integer)

--#include sql/src/11_training.sql recsys.train_samples_for(bigint, jsonb, timestamp with time zone)

--#include sql/src/11_training.sql recsys.train_final_weights(jsonb, bytea, bytea)

-- a scorer's epochs and validation over the samples in memory, not sorted and fed row by row each epoch
--#include sql/src/11_training.sql scorer epochs
--#include sql/src/11_training.sql recsys.train_validate(bigint, bytea)
--#include sql/src/11_training.sql recsys.train_scorer_epoch(bigint, bytea, integer, jsonb)

--#include sql/src/11_training.sql recsys.train_status(bigint)

--#include sql/src/11_training.sql recsys.train_encoder_epoch(bigint, bytea, integer, jsonb, timestamp with time zone)

--#include sql/src/11_training.sql recsys.train_final(bigint, jsonb, bytea, bytea)

--#include sql/src/11_training.sql recsys.train_activate(bigint)

-- the transaction boundary of a training: commit, then pin the path again (a local setting ends with the
-- transaction; a procedure that commits may not carry a SET clause)
--#include sql/src/11_training.sql recsys.train_commit(boolean)

--#include sql/src/11_training.sql recsys.train_driver(text, text, jsonb, text, boolean, bigint)
--#include sql/src/11_training.sql recsys.train_kind()

--#include sql/src/11_training.sql recsys.train(text, jsonb)

--#include sql/src/07_evaluation.sql recsys.cross_validate(text, integer, jsonb)

------------------------------------------------------------------------------
-- Scale-out: data-parallel fitting and training over shards, publication of a
-- version to every shard, batch serving (PL/Proxy SPLIT, Citus). The coordinator's
-- side is scaleout/coordinator.sql; these are the pieces every node has.
------------------------------------------------------------------------------

--#include sql/src/13_scaleout.sql recsys.fit_partial(jsonb)

--#include sql/src/13_scaleout.sql recsys.fit_merge(bytea[], jsonb)

-- the training aggregate's raw state, as a shard returns it (no final function)
--#include sql/src/13_scaleout.sql recsys.mlp_train_partial(bytea, real[], real, jsonb)

--#include sql/src/13_scaleout.sql recsys.rnn_train_partial(bytea, integer[], integer, jsonb)

-- the coordinator's half: COMBINEFUNC over the shards' states, then the final function
--#include sql/src/13_scaleout.sql recsys.train_merge(bytea)

--#include sql/src/13_scaleout.sql recsys.shard_samples

--#include sql/src/13_scaleout.sql recsys.shard_samples_for(text, bytea, bigint, integer)

--#include sql/src/13_scaleout.sql recsys.shard_scorer_epoch(text, bytea, integer, double precision)

--#include sql/src/13_scaleout.sql recsys.shard_encoder_epoch(bytea, integer, bigint)

--#include sql/src/13_scaleout.sql recsys.shard_validate(text, bytea)

--#include sql/src/13_scaleout.sql recsys.shard_done(text)

--#include sql/src/13_scaleout.sql recsys.publish_version(text, bigint, bytea, text, boolean, jsonb)

-- a batch's answer is bounded like a single call's: at most 1,000,000 rows (users x k), so a caller cannot fill
-- memory or the temporary files with one statement
--#include sql/src/05_serving.sql recsys.check_batch(integer, integer)

--#include sql/src/05_serving.sql recommend_bundles_batch(bigint[], integer, jsonb)

--#include sql/src/05_serving.sql recommend_bundles_batch(text[], integer, jsonb)

REVOKE EXECUTE ON FUNCTION @extschema@.recommend_bundles_batch(bigint[], integer, jsonb),
                           @extschema@.recommend_bundles_batch(text[], integer, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.recommend_bundles_batch(bigint[], integer, jsonb),
                          @extschema@.recommend_bundles_batch(text[], integer, jsonb) TO recsys_admin, recsys_reader;
REVOKE EXECUTE ON FUNCTION recsys.fit_partial(jsonb), recsys.fit_merge(bytea[], jsonb),
                           recsys.mlp_train_partial(bytea, real[], real, jsonb), recsys.train_merge(bytea),
                           recsys.shard_samples_for(text, bytea, bigint, integer),
                           recsys.shard_scorer_epoch(text, bytea, integer, double precision),
                           recsys.shard_validate(text, bytea), recsys.shard_done(text),
                           recsys.rnn_train_partial(bytea, integer[], integer, jsonb),
                           recsys.shard_encoder_epoch(bytea, integer, bigint),
                           recsys.publish_version(text, bigint, bytea, text, boolean, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recsys.fit_partial(jsonb), recsys.fit_merge(bytea[], jsonb),
                          recsys.mlp_train_partial(bytea, real[], real, jsonb), recsys.train_merge(bytea),
                          recsys.shard_samples_for(text, bytea, bigint, integer),
                          recsys.shard_scorer_epoch(text, bytea, integer, double precision),
                          recsys.shard_validate(text, bytea), recsys.shard_done(text),
                          recsys.rnn_train_partial(bytea, integer[], integer, jsonb),
                          recsys.shard_encoder_epoch(bytea, integer, bigint),
                          recsys.publish_version(text, bigint, bytea, text, boolean, jsonb) TO recsys_admin;
GRANT ALL ON recsys.shard_samples TO recsys_admin;

------------------------------------------------------------------------------
-- Trust, round 2: options, ids, the model store, erasure, privileges
------------------------------------------------------------------------------

-- Options: every option of every function family declared once (src/options.c), read by the C parsers and,
-- through recsys.option_specs(), by the SQL ones: one rule (declared keys, types, ranges, whole numbers) and one
-- wording, the declared defaults, and the README reference.
--#include sql/src/01_core.sql recsys.option_specs()

--#include sql/src/01_core.sql recsys.check_options(jsonb, text)

--#include sql/src/11_training.sql recsys.train_options(jsonb)

-- scheduling checks the model exists; recsys.uninstall() removes the cron jobs a drop cannot reach
--#include sql/src/11_training.sql recsys.training_job(text, text, jsonb)
--#include sql/src/11_training.sql recsys.schedule_training(text, text, jsonb)
--#include sql/src/11_training.sql recsys.uninstall()

-- pg_cron in another database: the statement to run there; each scheduled run beside what its CALL did
--#include sql/src/11_training.sql recsys.schedule_training_sql(text, text, jsonb)
--#include sql/src/11_training.sql recsys.scheduled_runs(integer)

-- evaluate warns when the held-out pairs are in the training data
--#include sql/src/07_evaluation.sql recsys.evaluate(text, bigint, regclass, integer[])

-- what every backend serves, readable by recsys_reader
--#include sql/src/07_evaluation.sql recsys.serving

-- where a training is: a row per stage, committed as it starts, and a NOTICE per stage and epoch
--#include sql/src/04_model_store.sql recsys.training_stages
--#include sql/src/11_training.sql recsys.training_stage(text, text, bigint, text, text)
--#include sql/src/07_evaluation.sql recsys.training_progress

-- scores on one 0..1 scale in every tier (the C tiers are in the library); the baseline's squashed
--#include sql/src/05_serving.sql recsys.recommend_bundles_baseline(text, integer, jsonb)

-- a second rollback goes further back: the version rolled back from is a candidate again
--#include sql/src/04_model_store.sql recsys.rollback(text)

-- one rule for the bundles' popularity, curated or mined
--#include sql/src/03_prepare.sql recsys.bundle_stats_refresh()

-- bundles have names (registered or built from their items), a source (curated or mined) and a price
--#include sql/src/03_prepare.sql recsys.bundle_attrs
--#include sql/src/03_prepare.sql recsys.bundle_attrs_add(text, jsonb)

-- BI views: the bundle's name and when it was shown; every column commented (JDBC and ODBC REMARKS)
--#include sql/src/07_evaluation.sql BI views

DROP FUNCTION recsys.register_bundles(regclass, name, name);
--#include sql/src/05_serving.sql recsys.rank_bundles(integer, integer, boolean)
--#include sql/src/02_sources.sql recsys.register_bundles(regclass, name, name, name)
--#include sql/src/03_prepare.sql recsys.progress(text, text)
--#include sql/src/03_prepare.sql recsys.prepare_rules(text, text, text[], boolean, text)
--#include sql/src/03_prepare.sql recsys.prepare()
--#include sql/src/10_features.sql recsys.basket_takers(integer[], integer[], integer[])
--#include sql/src/10_features.sql recsys.adopt_mined_bundles(integer, text)
--#include sql/src/10_features.sql recsys.refresh_features(jsonb)

-- mining and splitting check their options with the same rule, then run as before
ALTER FUNCTION recsys.mine_bundles(jsonb) RENAME TO mine_bundles_run;
--#include sql/src/10_features.sql recsys.mine_itemsets(integer, integer, integer)
--#include sql/src/10_features.sql recsys.mine_bundles_run(jsonb)
--#include sql/src/10_features.sql recsys.mine_bundles(jsonb)

ALTER FUNCTION recsys.split_pairs(text, jsonb) RENAME TO split_pairs_run;
COMMENT ON FUNCTION recsys.split_pairs_run(text, jsonb) IS 'the splitting step of recsys.split_pairs, on options it has checked';
--#include sql/src/07_evaluation.sql recsys.split_pairs(text, jsonb)

-- Ids: a space's high-water mark, so an index is never handed out twice (forget_user deletes the row of the
-- highest index too), and a bigint form that returns only ids that are their own canonical integer text.
--#include sql/src/03_prepare.sql recsys.id_spaces

--#include sql/src/03_prepare.sql recsys.map_append(text, text[])

--#include sql/src/03_prepare.sql recsys.ext_bigint(text)

DROP FUNCTION similar_items(bigint, integer);

--#include sql/src/05_serving.sql recommend_items(bigint, integer, jsonb)

--#include sql/src/05_serving.sql complete_bundle(bigint[], integer, jsonb)

-- Erasure: the flag compares wall-clock times (a version trained after the customer was mapped may hold them),
-- the shards' samples go too, and a lost salt is an error rather than forgotten customers coming back.
--#include sql/src/08_erasure.sql recsys.forget_salt()

--#include sql/src/08_erasure.sql recsys.user_digest(text)

--#include sql/src/08_erasure.sql recsys.secrets_guard()

--#include sql/src/08_erasure.sql recsys.forget_user(text)

-- Sources: a view calls its functions as whoever reads it. A superuser (or a pg_cron job of one) running
-- recsys.prepare() over a view owned by a lesser role would run that role's code with superuser rights.
--#include sql/src/03_prepare.sql recsys.source_expr(recsys.sources, text, text)

-- The model store: a version's weights are of its model's kind, and an experiment compares versions of one
-- model, whoever writes the row (recsys.add_version, recsys.publish_version or a plain INSERT).
--#include sql/src/04_model_store.sql recsys.model_versions_check()

--#include sql/src/06_experiments.sql recsys.experiments_check()

--#include sql/src/06_experiments.sql recsys.log_feedback(text, text, text, numeric, text)
ALTER TABLE recsys.feedback ADD CONSTRAINT feedback_value_finite CHECK (value IS NULL OR (value >= 0 AND value < 'Infinity'::numeric));

-- Readers and private histories: the options that put a customer's own purchases back into an answer are for
-- the application that serves the logged-in customer (recsys_app) and for recsys_admin.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'recsys_app') THEN
        CREATE ROLE recsys_app NOLOGIN;
    END IF;
END $$;
GRANT recsys_reader TO recsys_app;

--#include sql/src/05_serving.sql recsys.may_see_history()

--#include sql/src/05_serving.sql recsys.check_item_options(integer, jsonb, text[])

-- complete_bundle: a cart is bounded like the serving options' item lists
-- similar_items takes the options of complete_bundle and recommend_items
DROP FUNCTION similar_items(text, integer);
--#include sql/src/05_serving.sql similar_items(text, integer, jsonb)
--#include sql/src/05_serving.sql similar_items(bigint, integer, jsonb)
--#include sql/src/05_serving.sql complete_bundle(text[], integer, jsonb)

-- Serving with its provenance as columns (the version, NULL for the baseline ranker; the experiment and variant),
-- where the impressions are logged from: per request, with no state left in the backend between calls
--#include sql/src/05_serving.sql recsys.recommend_bundles_traced(text, integer, jsonb)

DROP FUNCTION recsys.recommend_bundles_logged(text, integer, jsonb);
--#include sql/src/05_serving.sql recsys.recommend_bundles_logged(text, integer, jsonb)

-- search_path: every function that resolves names at run time pins it. SQL and PL/pgSQL functions carry a SET
-- clause (recsys.train, a procedure that commits, pins it per transaction); these C functions run queries;
-- recommend_bundles pins it around its own loads (a SET clause would cost every cached request a GUC save
-- and restore); the other C functions run no query, so they resolve no names.
ALTER FUNCTION recsys.item_pairs(integer, integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recsys.ease_fit(double precision) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recsys.user_sequences(integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recsys.item_profiles(integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recsys.user_profiles(integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recsys.bundle_fit(jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION recsys.bundle_features(bytea, integer, integer[]) SET search_path = pg_catalog, pg_temp;

-- No user code on recsys tables: nobody may add a trigger, rule or policy to them (a trigger on a table that a
-- superuser's recsys.prepare() writes would run as that superuser). The extension's own triggers call its own
-- functions and pass.
--#include sql/src/17_security.sql recsys.guard_tables()
CREATE EVENT TRIGGER recsys_guard_tables ON ddl_command_end
    WHEN TAG IN ('CREATE TRIGGER', 'CREATE RULE', 'CREATE POLICY', 'ALTER POLICY')
    EXECUTE FUNCTION recsys.guard_tables();

-- the application serving the logged-in customer logs what it showed and what the customer did, without reading
-- the logs or the raw events: the logging functions run as their owner, for recsys_app (and recsys_admin)
ALTER FUNCTION recsys.log_impressions(text, text[], bigint, text, text, text) SECURITY DEFINER;
ALTER FUNCTION recsys.log_feedback(text, text, text, numeric, text) SECURITY DEFINER;

-- the item model, learned from the shop's baskets and served from C by recommend_items
--#include sql/src/12_items.sql item model
--#include sql/src/05_serving.sql recommend_items(text, integer, jsonb)

-- Promotions and demand: offers as data (who saw them, who was held out), the campaigns' measured uplift, a
-- response model trained by CALL recsys.train('promotions') and served by recommend_promotions, and forecasts of
-- what each item, category and bundle will sell, with their backtest and the stock they put at risk
--#include sql/src/02_sources.sql recsys.column_types_for(text)
--#include sql/src/06_experiments.sql recsys.log_impressions(text, text[], bigint, text, text, text)
--#include sql/src/15_promotions.sql promotion sources
--#include sql/src/15_promotions.sql recsys.register_promotions(regclass, name, name, name, name, name, name, name, name)
--#include sql/src/15_promotions.sql recsys.register_promotion_exposures(regclass, name, name, name, name)
--#include sql/src/15_promotions.sql recsys.prepare_promotions()
--#include sql/src/15_promotions.sql recsys.campaign_results
--#include sql/src/15_promotions.sql recsys.promotion_features(integer, integer[], timestamp with time zone)
--#include sql/src/15_promotions.sql promotion training steps
--#include sql/src/15_promotions.sql recommend_promotions(text, integer, jsonb)
--#include sql/src/15_promotions.sql recommend_promotions(bigint, integer, jsonb)
--#include sql/src/15_promotions.sql recsys.bundle_offers(text, text[], timestamp with time zone)
--#include sql/src/09_demo.sql recsys.demo_promotions(name, bigint, boolean)
--#include sql/src/16_demand.sql demand forecasts
--#include sql/src/16_demand.sql recsys.demand_origin(jsonb)
--#include sql/src/16_demand.sql recsys.demand_options(integer, jsonb)
--#include sql/src/16_demand.sql recsys.forecast_demand(integer, jsonb)
--#include sql/src/16_demand.sql recsys.demand_backtest(integer, jsonb)
--#include sql/src/16_demand.sql recsys.item_stock()
--#include sql/src/16_demand.sql recsys.stock_risk(integer, integer)
--#include sql/src/16_demand.sql recsys.forecast_accuracy

-- Privileges, for every object this script and the ones before it created
--#include sql/src/17_security.sql privileges
