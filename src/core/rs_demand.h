/*
 * rs_demand.h — demand forecasts for many daily series at once: one global model (an MLP over each series'
 * scaled recent days, last year's days, the calendar and the horizon, with three quantile outputs: the
 * interval's ends and the median), and the baselines it must beat, seasonal naive and exponential smoothing
 * with weekday factors. One model for all series, so a new or sparse series borrows from the others.
 */
#ifndef RS_DEMAND_H
#define RS_DEMAND_H

#include "rs_core.h"
#include "rs_mlp.h"

#define RS_DEMAND_LAGS 14
/* lags, 4 means, log level, 7 weekdays, horizon, day of year (sin, cos), last year, a promotion on the day */
#define RS_DEMAND_NFEAT (RS_DEMAND_LAGS + 4 + 1 + 7 + 1 + 2 + 1 + 1)
#define RS_DEMAND_MIN_HISTORY 28
#define RS_DEMAND_MAX_HORIZON 366

/*
 * n daily series of T days each (row-major, y[s * T + t]); day 0's weekday (0 Sunday) and day of year (1..366);
 * promo (may be NULL): n rows of promo_width >= T + horizon days, 1 where a promotion covers the series that day
 * (promotions are planned ahead, so the days forecast have theirs)
 */
typedef struct RsDemandData
{
	const float *y;
	int			n,
				T,
				dow0,
				doy0;
	const uint8_t *promo;
	int			promo_width;
} RsDemandData;

typedef struct RsDemandTrain
{
	int			horizon;
	int			epochs;
	int64_t		max_samples;
	double		lr;
	double		coverage;		/* the interval's: quantiles (1 - c) / 2 and (1 + c) / 2 */
	uint64_t	seed;
	/* results */
	int			epochs_run,
				best_epoch;
	int64_t		samples,
				valid_samples;
	double		train_loss,
				valid_loss;		/* mean pinball loss over the three quantiles, in scaled units */
} RsDemandTrain;

/*
 * the features of series s at origin t (its last known day) for day t + h, and the series' scale (what the
 * outputs are multiplied by); needs t >= 0 (days before 0 read as the oldest known levels)
 */
extern double rs_demand_features(const RsDemandData *d, int s, int t, int h, float *x);

/*
 * fits the MLP m (dims RS_DEMAND_NFEAT .. 3, linear output, parameters bound) on windows whose target day is
 * at most T - 1 - horizon, early-stopping on the windows of origin T - 1 - horizon (every target day in the last
 * horizon days); keeps the best epoch's parameters. Returns 0, or -1 when the history is too short.
 */
extern int	rs_demand_fit(RsMlp *m, rs_real *params, int64_t nparams, const RsDemandData *d, RsDemandTrain *cfg);

/* forecasts of day T - 1 + h, h = 1..horizon, for every series: lo, mid, hi (n x horizon each) */
extern void rs_demand_predict(RsMlp *m, const RsDemandData *d, int horizon, float *lo, float *mid, float *hi);

/* baselines, n x horizon: the same weekday a week (or weeks) before; exponential smoothing with weekday factors */
extern void rs_demand_seasonal_naive(const RsDemandData *d, int horizon, float *out);
extern void rs_demand_ets(const RsDemandData *d, int horizon, float *out);

/* the MASE scale of a series: mean absolute change from the same weekday a week before (0: constant) */
extern double rs_demand_scale(const RsDemandData *d, int s);

#endif
