-- recsys SQL source: demand -- how much of each item, category and bundle will sell, and where stock is at risk (the Makefile assembles sql/src/*.sql into the install script)

------------------------------------------------------------------------------
-- Demand forecasts: one global model over every series, beside seasonal naive and exponential smoothing
------------------------------------------------------------------------------

--@begin demand forecasts
CREATE FUNCTION recsys.demand_init(hidden integer, seed bigint) RETURNS bytea
    AS 'MODULE_PATHNAME', 'demand_init'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.demand_init(integer, bigint) IS 'new weights of the demand model (an mlp from the forecast features of src/core/rs_demand.h through hidden units to three quantiles), seeded';

CREATE FUNCTION recsys.demand_fit(weights bytea, level text, origin date, horizon integer, options jsonb) RETURNS bytea
    AS 'MODULE_PATHNAME', 'demand_fit'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.demand_fit(bytea, text, date, integer, jsonb) IS 'fits the demand model (weights from recsys.demand_init) on the daily sales of every item, category or bundle (level) over option history_days up to origin: a seeded sample of windows (max_samples) whose targets precede the last horizon days, early stop on those days (pinball loss of the interval''s ends and the median, option coverage); options epochs, lr, seed; returns the weights with what it did under config.demand';

CREATE FUNCTION recsys.demand_predict(weights bytea, level text, origin date, horizon integer, options jsonb)
RETURNS TABLE (method text, key text, day date, forecast real, lo real, hi real, actual real, scale real)
    AS 'MODULE_PATHNAME', 'demand_predict'
    LANGUAGE C STABLE PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION recsys.demand_predict(bytea, text, date, integer, jsonb) IS 'forecasts of the days after origin for every item, category or bundle that sold in the history (option history_days): the model''s median and interval (weights not NULL) and the baselines seasonal_naive and ets; with option actuals true, each day''s actual sales; scale is the series'' in-sample mean absolute weekly change (what MASE divides by)';

CREATE TABLE recsys.demand_forecasts (
    level      text NOT NULL CHECK (level IN ('item', 'category', 'bundle')),
    key        text NOT NULL,
    day        date NOT NULL,
    method     text NOT NULL CHECK (method IN ('model', 'seasonal_naive', 'ets')),
    forecast   real NOT NULL,
    lo         real,
    hi         real,
    origin     date NOT NULL,
    version_id bigint REFERENCES recsys.model_versions (version_id) ON DELETE SET NULL,
    made_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (level, key, day, method)
);
COMMENT ON TABLE recsys.demand_forecasts IS 'the latest forecasts of recsys.forecast_demand per level: each series and day after the origin, by method (model, seasonal_naive, ets), with the model''s interval and the version of the model that made them';
COMMENT ON COLUMN recsys.demand_forecasts.level IS 'item, category or bundle';
COMMENT ON COLUMN recsys.demand_forecasts.key IS 'the item or bundle id, or the category';
COMMENT ON COLUMN recsys.demand_forecasts.day IS 'the day forecast';
COMMENT ON COLUMN recsys.demand_forecasts.method IS 'model (the global model''s median), seasonal_naive (the same weekday a week before) or ets (exponential smoothing with weekday factors)';
COMMENT ON COLUMN recsys.demand_forecasts.forecast IS 'units expected to sell that day';
COMMENT ON COLUMN recsys.demand_forecasts.lo IS 'lower end of the model''s prediction interval (its coverage: the version''s config.demand.coverage)';
COMMENT ON COLUMN recsys.demand_forecasts.hi IS 'upper end of the interval';
COMMENT ON COLUMN recsys.demand_forecasts.origin IS 'the last day of the history the forecast read';
COMMENT ON COLUMN recsys.demand_forecasts.version_id IS 'the model version of the run (recsys.model_versions; model demand_LEVEL)';
COMMENT ON COLUMN recsys.demand_forecasts.made_at IS 'when it was made';
SELECT pg_catalog.pg_extension_config_dump('recsys.demand_forecasts', '');
--@end

-- the origin of a forecast: the option's date or the day of the newest event
--@begin recsys.demand_origin(jsonb)
CREATE FUNCTION recsys.demand_origin(o jsonb) RETURNS date
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d date;
BEGIN
    BEGIN
        d := (o ->> 'origin')::date;
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
        RAISE EXCEPTION 'option origin must be a date, got %', o -> 'origin'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass it as text, e.g. "2026-10-31".';
    END;
    d := coalesce(d, (SELECT max(e.ts)::date FROM recsys.events_clean e));
    IF d IS NULL THEN
        RAISE EXCEPTION 'no prepared events with times to forecast from'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Register events with a time column and run recsys.prepare().';
    END IF;
    RETURN d;
END
$$;
COMMENT ON FUNCTION recsys.demand_origin(jsonb) IS 'the last day of history of a forecast: option origin, else the day of the newest prepared event';
--@end

-- the options of forecast_demand and demand_backtest, checked once for both
--@begin recsys.demand_options(integer, jsonb)
CREATE FUNCTION recsys.demand_options(horizon_days integer, options jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o jsonb := recsys.check_options(options, 'forecast_demand');
BEGIN
    IF horizon_days IS NULL OR horizon_days < 1 OR horizon_days > 366 THEN
        RAISE EXCEPTION 'horizon_days must be between 1 and 366, got %', coalesce(horizon_days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF o ->> 'level' NOT IN ('item', 'category', 'bundle') OR o ->> 'method' NOT IN ('model', 'seasonal_naive', 'ets') THEN
        RAISE EXCEPTION 'option level must be item, category or bundle and method model, seasonal_naive or ets, got % and %',
                        o -> 'level', o -> 'method'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN o;
END
$$;
COMMENT ON FUNCTION recsys.demand_options(integer, jsonb) IS 'checks a forecast''s horizon (1 to 366 days) and options (family forecast_demand of recsys.option_specs(), level item, category or bundle, method model, seasonal_naive or ets) and returns the options with their defaults';
--@end

--@begin recsys.forecast_demand(integer, jsonb)
CREATE FUNCTION recsys.forecast_demand(horizon_days integer DEFAULT 28, options jsonb DEFAULT '{}')
RETURNS TABLE (level text, key text, day date, forecast real, lo real, hi real, method text, version_id bigint)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    o jsonb := recsys.demand_options(horizon_days, options);
    lvl text := o ->> 'level';
    origin date;
    w bytea;
    v bigint;
    model text;
BEGIN
    origin := recsys.demand_origin(o);
    model := 'demand_' || lvl;
    w := recsys.demand_fit(recsys.demand_init((o ->> 'hidden')::int, (o ->> 'seed')::bigint), lvl, origin, horizon_days, o);
    IF NOT EXISTS (SELECT 1 FROM recsys.models m WHERE m.name = model) THEN
        PERFORM recsys.create_model(model, 'mlp', '{}', pg_catalog.format('demand forecasts per %s and day (recsys.forecast_demand)', lvl));
    END IF;
    -- every run is a version, so each stored forecast names the weights that made it
    v := recsys.add_version(model, w, 'candidate', recsys.model_info(w) #> '{config,demand}', NULL, NULL,
                            (origin + 1)::timestamptz);
    PERFORM recsys.activate_version(v);
    IF (o ->> 'store')::boolean THEN
        DELETE FROM recsys.demand_forecasts f WHERE f.level = lvl;
        INSERT INTO recsys.demand_forecasts (level, key, day, method, forecast, lo, hi, origin, version_id)
        SELECT lvl, p.key, p.day, p.method, p.forecast, p.lo, p.hi, origin, v
          FROM recsys.demand_predict(w, lvl, origin, horizon_days, o) p;
        RETURN QUERY SELECT f.level, f.key, f.day, f.forecast, f.lo, f.hi, f.method, f.version_id
                       FROM recsys.demand_forecasts f WHERE f.level = lvl AND f.method = o ->> 'method'
                      ORDER BY f.key, f.day;
    ELSE
        RETURN QUERY SELECT lvl, p.key, p.day, p.forecast, p.lo, p.hi, p.method, v
                       FROM recsys.demand_predict(w, lvl, origin, horizon_days, o) p
                      WHERE p.method = o ->> 'method' ORDER BY p.key, p.day;
    END IF;
END
$$;
COMMENT ON FUNCTION recsys.forecast_demand(integer, jsonb) IS 'forecasts the next horizon_days of sales of every item (option level: category, bundle) that sold in the history: fits the global model (a version of model demand_LEVEL, activated), stores its forecasts with their interval and the baselines'' in recsys.demand_forecasts (unless store is false) and returns option method''s (model, seasonal_naive, ets); options: see recsys.option_specs() family forecast_demand';
--@end

--@begin recsys.demand_backtest(integer, jsonb)
CREATE FUNCTION recsys.demand_backtest(horizon_days integer DEFAULT 28, options jsonb DEFAULT '{}')
RETURNS TABLE (level text, method text, origins integer, series bigint, mase double precision, wape double precision,
               interval_coverage double precision, mase_vs_seasonal_naive double precision)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    o jsonb := recsys.demand_options(horizon_days, options);
    lvl text := o ->> 'level';
    last_day date;
    origin date;
    w bytea;
    n integer := (o ->> 'origins')::int;
BEGIN
    last_day := recsys.demand_origin(o);
    IF pg_catalog.to_regclass('pg_temp.rs_backtest') IS NOT NULL THEN
        DROP TABLE rs_backtest;
    END IF;
    CREATE TEMP TABLE rs_backtest (origin date, method text, key text, err float8, actual float8, inside boolean,
                                   scale float8) ON COMMIT DROP;
    -- rolling origins a week apart, each forecasting the horizon_days that follow it, fitted on what came before
    FOR k IN 1 .. n LOOP
        origin := last_day - horizon_days - 7 * (k - 1);
        w := recsys.demand_fit(recsys.demand_init((o ->> 'hidden')::int, (o ->> 'seed')::bigint), lvl, origin,
                               horizon_days, o);
        INSERT INTO rs_backtest
        SELECT origin, p.method, p.key, abs(p.forecast - p.actual), p.actual,
               CASE WHEN p.method = 'model' THEN p.actual BETWEEN p.lo AND p.hi END, p.scale
          FROM recsys.demand_predict(w, lvl, origin, horizon_days, o || '{"actuals": true}') p;
    END LOOP;
    RETURN QUERY
    WITH per_series AS (
        SELECT b.method, b.origin, b.key, avg(b.err) / nullif(min(b.scale), 0) AS scaled, sum(b.err) AS err,
               sum(b.actual) AS actual, avg(b.inside::int)::float8 AS inside
          FROM rs_backtest b GROUP BY b.method, b.origin, b.key
    ), per_method AS (
        SELECT s.method, avg(s.scaled) AS mase, sum(s.err) / nullif(sum(s.actual), 0) AS wape, avg(s.inside) AS cov,
               count(DISTINCT s.key) AS series
          FROM per_series s GROUP BY s.method
    )
    SELECT lvl, m.method, n, m.series, m.mase, m.wape, m.cov,
           m.mase / nullif((SELECT b.mase FROM per_method b WHERE b.method = 'seasonal_naive'), 0)
      FROM per_method m ORDER BY m.mase;
END
$$;
COMMENT ON FUNCTION recsys.demand_backtest(integer, jsonb) IS 'the forecasts'' backtest at one level (option level): option origins rolling origins a week apart before the newest day (option origin), each fitted on the days before it and scored on the horizon_days after; per method (model, seasonal_naive, ets): MASE (mean over series of the mean absolute error over the series'' in-sample mean absolute weekly change; series that never changed are left out), WAPE (absolute errors over units sold), the model interval''s coverage of the actual days, and MASE relative to seasonal naive';
--@end

------------------------------------------------------------------------------
-- Stock against demand
------------------------------------------------------------------------------

-- the registered items' stock as units (a boolean stock column has none)
--@begin recsys.item_stock()
CREATE FUNCTION recsys.item_stock() RETURNS TABLE (item_idx integer, item_id text, stock double precision)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s recsys.sources;
BEGIN
    SELECT * INTO s FROM recsys.sources WHERE kind = 'items';
    IF NOT FOUND OR NOT s.columns ? 'stock' OR s.column_types ->> 'stock' = 'boolean' THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE pg_catalog.format(
        'SELECT m.idx, m.ext_id, x.stock FROM (SELECT %s AS item, %s AS stock FROM %s) x
           JOIN recsys.id_map m ON m.space = ''item'' AND m.ext_id = x.item WHERE x.stock IS NOT NULL',
        recsys.source_expr(s, 'item'), recsys.source_expr(s, 'stock', 'float8'), s.relation);
END
$$;
COMMENT ON FUNCTION recsys.item_stock() IS 'each registered item''s stock in units, read from the items source (none when its stock column is boolean or absent)';
--@end

--@begin recsys.stock_risk(integer, integer)
CREATE FUNCTION recsys.stock_risk(lead_days integer DEFAULT 7, cover_weeks integer DEFAULT 8)
RETURNS TABLE (item_id text, name text, stock double precision, demand_lead double precision,
               demand_lead_high double precision, cover_days double precision, risk text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH f AS (
        SELECT d.key, sum(d.forecast) FILTER (WHERE d.day <= d.origin + stock_risk.lead_days) AS lead,
               sum(d.hi) FILTER (WHERE d.day <= d.origin + stock_risk.lead_days) AS lead_hi,
               avg(d.forecast) AS daily
          FROM recsys.demand_forecasts d WHERE d.level = 'item' AND d.method = 'model' GROUP BY d.key
    )
    SELECT s.item_id, a.name, s.stock, coalesce(f.lead, 0), coalesce(f.lead_hi, 0),
           s.stock / nullif(f.daily, 0),
           CASE WHEN s.stock < f.lead AND f.lead >= 0.5 THEN 'stock-out'
                WHEN s.stock < f.lead_hi AND f.lead_hi >= 1 THEN 'stock-out possible'
                ELSE 'slow mover' END
      FROM recsys.item_stock() s
      LEFT JOIN f ON f.key = s.item_id
      LEFT JOIN recsys.item_attrs a ON a.item_idx = s.item_idx
     -- short of what is likely to sell (half a unit or more: a sliver of expected demand is no risk), or of what
     -- might (a whole unit at the interval's upper end); or stock for more than cover_weeks
     WHERE (s.stock < f.lead AND f.lead >= 0.5) OR (s.stock < f.lead_hi AND f.lead_hi >= 1)
        OR (s.stock > 0 AND s.stock > 7 * stock_risk.cover_weeks * coalesce(f.daily, 0))
     ORDER BY CASE WHEN s.stock < f.lead AND f.lead >= 0.5 THEN 0 WHEN s.stock < f.lead_hi AND f.lead_hi >= 1 THEN 1 ELSE 2 END,
              s.stock - coalesce(f.lead, 0), s.item_id
$$;
COMMENT ON FUNCTION recsys.stock_risk(integer, integer) IS 'items at risk against the stored item forecasts (recsys.forecast_demand): stock-out (stock below the median demand over lead_days, when that is half a unit or more), stock-out possible (below the interval''s upper end, when that is a unit or more), and slow movers whose stock covers more than cover_weeks of forecast demand; cover_days is stock over the forecast daily demand';

CREATE VIEW recsys.stock_risks AS SELECT * FROM recsys.stock_risk();
COMMENT ON VIEW recsys.stock_risks IS 'BI: recsys.stock_risk() with its defaults (a 7-day lead time, 8 weeks of cover)';
COMMENT ON COLUMN recsys.stock_risks.item_id IS 'the item''s id';
COMMENT ON COLUMN recsys.stock_risks.name IS 'its name';
COMMENT ON COLUMN recsys.stock_risks.stock IS 'units in stock (the items source''s stock column)';
COMMENT ON COLUMN recsys.stock_risks.demand_lead IS 'forecast units over the lead time (the model''s median)';
COMMENT ON COLUMN recsys.stock_risks.demand_lead_high IS 'the same at the interval''s upper end';
COMMENT ON COLUMN recsys.stock_risks.cover_days IS 'days the stock lasts at the forecast daily demand (NULL: none forecast)';
COMMENT ON COLUMN recsys.stock_risks.risk IS 'stock-out, stock-out possible or slow mover';
--@end

--@begin recsys.forecast_accuracy
CREATE VIEW recsys.forecast_accuracy AS
SELECT f.level, f.key, f.day, f.method, f.forecast, f.lo, f.hi, a.actual, f.version_id
  FROM recsys.demand_forecasts f
  LEFT JOIN LATERAL (
    SELECT sum(e.weight)::real AS actual FROM recsys.events_clean e
      JOIN recsys.id_map m ON m.space = 'item' AND m.idx = e.item_idx
     WHERE f.level = 'item' AND m.ext_id = f.key AND e.ts >= f.day AND e.ts < f.day + 1
  ) a ON true;
COMMENT ON VIEW recsys.forecast_accuracy IS 'BI: the stored forecasts beside what sold on each day once the events reach it (items; NULL before, and for other levels see recsys.demand_backtest)';
COMMENT ON COLUMN recsys.forecast_accuracy.level IS 'item, category or bundle';
COMMENT ON COLUMN recsys.forecast_accuracy.key IS 'the item or bundle id, or the category';
COMMENT ON COLUMN recsys.forecast_accuracy.day IS 'the day forecast';
COMMENT ON COLUMN recsys.forecast_accuracy.method IS 'model, seasonal_naive or ets';
COMMENT ON COLUMN recsys.forecast_accuracy.forecast IS 'units forecast';
COMMENT ON COLUMN recsys.forecast_accuracy.lo IS 'lower end of the model''s interval';
COMMENT ON COLUMN recsys.forecast_accuracy.hi IS 'upper end of the model''s interval';
COMMENT ON COLUMN recsys.forecast_accuracy.actual IS 'units sold that day (items; NULL until the prepared events reach it or when none sold)';
COMMENT ON COLUMN recsys.forecast_accuracy.version_id IS 'the model version that made the forecast';
--@end
