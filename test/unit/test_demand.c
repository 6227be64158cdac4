/*
 * test_demand.c — the demand forecasts' numerics (core/rs_demand.h): the baselines by hand, the features of a
 * known series, and the global model learning a weekly pattern under noise better than seasonal naive.
 */
#include <math.h>
#include <string.h>

#include "core/rs_demand.h"
#include "unit.h"

static void
test_demand_baselines(int *failed)
{
	/* one series of 28 days: 1..7 each week; one constant at 3 */
	float		y[2 * 28],
				naive[2 * 10],
				ets[2 * 10],
				x[RS_DEMAND_NFEAT];
	RsDemandData d = {.y = y, .n = 2, .T = 28, .dow0 = 0, .doy0 = 1};

	for (int t = 0; t < 28; t++)
	{
		y[t] = (float) (1 + t % 7);
		y[28 + t] = 3;
	}
	rs_demand_seasonal_naive(&d, 10, naive);
	/* day 28 is weekday 0 again: 1; day 37 (h = 10) repeats day 30: 3 */
	CHECK(naive[0] == 1 && naive[6] == 7 && naive[7] == 1 && naive[9] == 3);
	CHECK(naive[10] == 3 && naive[19] == 3);
	rs_demand_ets(&d, 10, ets);
	/* the weekday factors reproduce the weekly pattern; a constant stays constant */
	CHECK_MSG(fabsf(ets[0] - 1) < 0.05f && fabsf(ets[6] - 7) < 0.05f, "ets %g %g", ets[0], ets[6]);
	CHECK_MSG(fabsf(ets[10] - 3) < 1e-4f && fabsf(ets[19] - 3) < 1e-4f, "ets of a constant %g", ets[10]);
	/* MASE scale: a repeating week never changes from a week before */
	CHECK(rs_demand_scale(&d, 0) == 0 && rs_demand_scale(&d, 1) == 0);

	/* features of the constant at origin 27, one day ahead: every lag is 3 / (3 + 0.1), the weekday one-hot */
	{
		double		sc = rs_demand_features(&d, 1, 27, 1, x);
		int			ones = 0;

		CHECK(fabs(sc - 3.1) < 1e-9);
		for (int i = 0; i < RS_DEMAND_LAGS; i++)
			CHECK(fabsf(x[i] - 3 / 3.1f) < 1e-6f);
		CHECK(fabsf(x[RS_DEMAND_LAGS + 4] - logf(4)) < 1e-6f);
		for (int j = 0; j < 7; j++)
			ones += x[RS_DEMAND_LAGS + 5 + j] == 1;
		CHECK(ones == 1 && x[RS_DEMAND_LAGS + 5 + 0] == 1);	/* day 28: weekday 0 */
	}
}

/* a weekly pattern under noise: the model's median beats seasonal naive on the held-out days */
static void
test_demand_fit(int *failed)
{
	int			n = 40,
				T = 200,
				H = 14;
	float	   *y = rs_alloc(sizeof(float) * n * (T + H)),
			   *hist = rs_alloc(sizeof(float) * n * T),
			   *lo = rs_alloc(sizeof(float) * n * H),
			   *mid = rs_alloc(sizeof(float) * n * H),
			   *hi = rs_alloc(sizeof(float) * n * H),
			   *naive = rs_alloc(sizeof(float) * n * H);
	int			dims[3] = {RS_DEMAND_NFEAT, 16, 3};
	int64_t		np = rs_mlp_nparams(dims, 2);
	rs_real    *params = rs_alloc(sizeof(rs_real) * np);
	RsMlp		m;
	RsRng		rng;
	RsDemandTrain cfg = {.horizon = H, .epochs = 15, .max_samples = 20000, .lr = 0.003, .coverage = 0.8, .seed = 7};
	RsDemandData d;
	double		err_model = 0,
				err_naive = 0,
				inside = 0;

	rs_rng_seed(&rng, 11);
	for (int s = 0; s < n; s++)
	{
		double		level = 2 + 8 * rs_rng_uniform(&rng);

		for (int t = 0; t < T + H; t++)
		{
			double		mean = level * (t % 7 >= 5 ? 1.6 : 0.85);

			/* rounded normal noise, sd sqrt(mean), floored at 0 */
			y[s * (T + H) + t] = (float) fmax(0, round(mean + sqrt(mean) * rs_rng_normal(&rng)));
		}
		memcpy(hist + s * T, y + s * (T + H), sizeof(float) * T);
	}
	d = (RsDemandData) {.y = hist, .n = n, .T = T, .dow0 = 0, .doy0 = 1};
	memset(&m, 0, sizeof(m));
	m.nlayers = 2;
	memcpy(m.dims, dims, sizeof(dims));
	m.hidden = RS_ACT_RELU;
	m.output = RS_ACT_LINEAR;
	rs_mlp_bind(&m, params, NULL);
	rs_mlp_init(&m, &rng);
	CHECK(rs_demand_fit(&m, params, np, &d, &cfg) == 0);
	CHECK(cfg.best_epoch >= 1 && cfg.epochs_run >= cfg.best_epoch && isfinite(cfg.valid_loss));
	rs_demand_predict(&m, &d, H, lo, mid, hi);
	rs_demand_seasonal_naive(&d, H, naive);
	for (int s = 0; s < n; s++)
		for (int h = 0; h < H; h++)
		{
			float		a = y[s * (T + H) + T + h];

			err_model += fabsf(mid[s * H + h] - a);
			err_naive += fabsf(naive[s * H + h] - a);
			inside += a >= lo[s * H + h] && a <= hi[s * H + h];
			CHECK(lo[s * H + h] <= mid[s * H + h] && mid[s * H + h] <= hi[s * H + h] && lo[s * H + h] >= 0);
		}
	CHECK_MSG(err_model < 0.85 * err_naive, "model MAE %g, seasonal naive %g", err_model / (n * H), err_naive / (n * H));
	CHECK_MSG(inside / (n * H) > 0.6 && inside / (n * H) < 0.97, "80%% interval covers %g", inside / (n * H));
	/* too short a history is refused, not guessed */
	d.T = 40;
	CHECK(rs_demand_fit(&m, params, np, &d, &cfg) == -1);
	rs_mlp_free(&m);
	rs_release(y), rs_release(hist), rs_release(lo), rs_release(mid), rs_release(hi), rs_release(naive), rs_release(params);
}

const UnitCase unit_demand_cases[] = {
	{"demand: seasonal naive, exponential smoothing, the MASE scale and the features by hand", test_demand_baselines},
	{"demand: the global quantile model learns a weekly pattern under noise, beats seasonal naive, its interval covers", test_demand_fit},
	{NULL, NULL}
};
