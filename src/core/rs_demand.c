/*
 * rs_demand.c — demand forecasts: the global quantile MLP and its baselines (see rs_demand.h).
 */
#include "rs_demand.h"

#include <math.h>
#include <string.h>

#include "rs_optim.h"

#define DEMAND_BATCH 256
#define DEMAND_MAX_VALID 100000
#define DEMAND_PATIENCE 3

static inline float
day_at(const float *y, int i)
{
	return y[i < 0 ? 0 : i];
}

static double
mean_days(const float *y, int from, int to)
{
	double		s = 0;

	for (int i = from; i <= to; i++)
		s += day_at(y, i);
	return s / (to - from + 1);
}

double
rs_demand_features(const RsDemandData *d, int s, int t, int h, float *x)
{
	const float *y = d->y + (size_t) s * d->T;
	double		level = mean_days(y, t - 27, t),
				scale = level + 0.1,	/* a series that sold nothing lately still has a finite scale */
				same = 0;
	int			td = t + h,
				k = (h + 6) / 7,
				dow = (d->dow0 + td) % 7;
	float	   *p = x;

	for (int i = 0; i < RS_DEMAND_LAGS; i++)
		*p++ = (float) (day_at(y, t - RS_DEMAND_LAGS + 1 + i) / scale);
	*p++ = (float) (mean_days(y, t - 6, t) / scale);
	*p++ = (float) (level / scale);
	*p++ = (float) ((t >= 55 ? mean_days(y, t - 55, t - 28) : level) / scale);
	/* the target's weekday over the last four weeks known */
	for (int j = 0; j < 4; j++)
		same += day_at(y, td - 7 * k - 7 * j);
	*p++ = (float) (same / 4 / scale);
	*p++ = (float) log1p(level);
	for (int j = 0; j < 7; j++)
		*p++ = j == dow ? 1.0f : 0.0f;
	*p++ = (float) h / 28.0f;
	*p++ = (float) sin(2 * M_PI * (d->doy0 - 1 + td) / 365.25);
	*p++ = (float) cos(2 * M_PI * (d->doy0 - 1 + td) / 365.25);
	/* the same week a year before, when known */
	*p++ = (float) ((td - 367 >= 0 ? mean_days(y, td - 367, td - 361) : level) / scale);
	*p++ = d->promo && td < d->promo_width ? d->promo[(size_t) s * d->promo_width + td] : 0.0f;
	return scale;
}

/* mean pinball loss of B x 3 quantile outputs q against y; writes d loss / d q when dq is not NULL */
static double
pinball(const rs_real *q, const float *y, int b, const double *tau, rs_real *dq)
{
	double		loss = 0,
				w = 1.0 / (b * 3.0);

	for (int i = 0; i < b; i++)
		for (int j = 0; j < 3; j++)
		{
			double		u = y[i] - q[i * 3 + j];

			loss += u >= 0 ? tau[j] * u : (tau[j] - 1) * u;
			if (dq)
				dq[i * 3 + j] = (rs_real) ((u >= 0 ? -tau[j] : 1 - tau[j]) * w);
		}
	return loss * w;
}

static double
valid_loss(RsMlp *m, const float *x, const float *y, int64_t n, const double *tau)
{
	double		loss = 0;

	for (int64_t i = 0; i < n; i += DEMAND_BATCH)
	{
		int			b = (int) (n - i < DEMAND_BATCH ? n - i : DEMAND_BATCH);
		rs_real    *q = rs_mlp_forward(m, x + i * RS_DEMAND_NFEAT, b);

		loss += pinball(q, y + i, b, tau, NULL) * b;
		rs_check_interrupts();
	}
	return n > 0 ? loss / n : 0;
}

int
rs_demand_fit(RsMlp *m, rs_real *params, int64_t nparams, const RsDemandData *d, RsDemandTrain *cfg)
{
	int			H = cfg->horizon,
				tv = d->T - 1 - H;		/* the validation origin: its targets are the last H days */
	int64_t		ntrain = cfg->max_samples,
				nvalid;
	double		tau[3] = {(1 - cfg->coverage) / 2, 0.5, (1 + cfg->coverage) / 2};
	float	   *xt,
			   *yt,
			   *xv,
			   *yv;
	rs_real    *grads,
			   *om,
			   *ov,
			   *best;
	int64_t    *order;
	RsRng		rng;
	RsOptim		opt;
	double		best_loss = INFINITY;

	/* a training window needs a target day before the validation days and an origin with 28 days behind it */
	if (d->n < 1 || tv - 1 < RS_DEMAND_MIN_HISTORY - 1)
		return -1;
	grads = rs_alloc(sizeof(rs_real) * nparams);
	om = rs_alloc(sizeof(rs_real) * nparams);
	ov = rs_alloc(sizeof(rs_real) * nparams);
	best = rs_alloc(sizeof(rs_real) * nparams);
	rs_rng_seed(&rng, cfg->seed);
	xt = rs_alloc(sizeof(float) * ntrain * RS_DEMAND_NFEAT);
	yt = rs_alloc(sizeof(float) * ntrain);
	/* a seeded sample of windows: a series, an origin, a horizon whose target day is before the validation days */
	for (int64_t i = 0; i < ntrain; i++)
	{
		int			s = (int) rs_rng_below(&rng, (uint32_t) d->n),
					h = 1 + (int) rs_rng_below(&rng, (uint32_t) H),
					lo = RS_DEMAND_MIN_HISTORY - 1,
					hi = tv - h;		/* target t + h <= tv */
		int			t;
		double		sc;

		if (hi < lo)
		{
			h = 1;
			hi = tv - 1;
		}
		t = lo + (int) rs_rng_below(&rng, (uint32_t) (hi - lo + 1));
		sc = rs_demand_features(d, s, t, h, xt + i * RS_DEMAND_NFEAT);
		yt[i] = (float) (d->y[(size_t) s * d->T + t + h] / sc);
	}
	/* validation: every horizon at the validation origin, for every series (a seeded sample past 100,000) */
	nvalid = (int64_t) d->n * H;
	if (nvalid > DEMAND_MAX_VALID)
		nvalid = DEMAND_MAX_VALID;
	xv = rs_alloc(sizeof(float) * nvalid * RS_DEMAND_NFEAT);
	yv = rs_alloc(sizeof(float) * nvalid);
	for (int64_t i = 0; i < nvalid; i++)
	{
		int64_t		w = nvalid == (int64_t) d->n * H ? i : (int64_t) (rs_rng_uniform(&rng) * ((double) d->n * H));
		int			s = (int) (w / H),
					h = 1 + (int) (w % H);
		double		sc = rs_demand_features(d, s, tv, h, xv + i * RS_DEMAND_NFEAT);

		yv[i] = (float) (d->y[(size_t) s * d->T + tv + h] / sc);
	}

	rs_optim_defaults(&opt, RS_OPT_ADAM);
	opt.lr = cfg->lr;
	memset(om, 0, sizeof(rs_real) * nparams);
	memset(ov, 0, sizeof(rs_real) * nparams);
	rs_mlp_bind(m, params, grads);
	rs_mlp_reserve(m, DEMAND_BATCH);
	order = rs_alloc(sizeof(int64_t) * ntrain);
	for (int64_t i = 0; i < ntrain; i++)
		order[i] = i;
	memcpy(best, params, sizeof(rs_real) * nparams);
	cfg->best_epoch = 0;
	cfg->epochs_run = 0;
	for (int epoch = 1; epoch <= cfg->epochs; epoch++)
	{
		double		loss = 0,
					vl;
		float	   *xb = rs_alloc(sizeof(float) * DEMAND_BATCH * RS_DEMAND_NFEAT),
				   *yb = rs_alloc(sizeof(float) * DEMAND_BATCH);

		for (int64_t i = ntrain - 1; i > 0; i--)
		{
			int64_t		j = (int64_t) (rs_rng_uniform(&rng) * (double) (i + 1)),
						tmp = order[i];

			order[i] = order[j];
			order[j] = tmp;
		}
		for (int64_t i = 0; i < ntrain; i += DEMAND_BATCH)
		{
			int			b = (int) (ntrain - i < DEMAND_BATCH ? ntrain - i : DEMAND_BATCH);
			rs_real    *q;

			for (int r = 0; r < b; r++)
			{
				memcpy(xb + r * RS_DEMAND_NFEAT, xt + order[i + r] * RS_DEMAND_NFEAT, sizeof(float) * RS_DEMAND_NFEAT);
				yb[r] = yt[order[i + r]];
			}
			memset(grads, 0, sizeof(rs_real) * nparams);
			q = rs_mlp_forward(m, xb, b);
			loss += pinball(q, yb, b, tau, m->dloss) * b;
			rs_mlp_backward(m, xb, b, m->dloss);
			opt.t++;
			rs_optim_dense(&opt, params, grads, om, ov, nparams, 1.0);
			if ((i / DEMAND_BATCH) % 64 == 0)
				rs_check_interrupts();
		}
		rs_release(xb);
		rs_release(yb);
		vl = valid_loss(m, xv, yv, nvalid, tau);
		cfg->epochs_run = epoch;
		cfg->train_loss = loss / ntrain;
		if (vl < best_loss)
		{
			best_loss = vl;
			cfg->best_epoch = epoch;
			memcpy(best, params, sizeof(rs_real) * nparams);
		}
		if (epoch - cfg->best_epoch >= DEMAND_PATIENCE)
			break;
	}
	memcpy(params, best, sizeof(rs_real) * nparams);
	cfg->valid_loss = best_loss;
	cfg->samples = ntrain;
	cfg->valid_samples = nvalid;
	rs_release(order);
	rs_release(xt);
	rs_release(yt);
	rs_release(xv);
	rs_release(yv);
	rs_release(grads);
	rs_release(om);
	rs_release(ov);
	rs_release(best);
	return 0;
}

void
rs_demand_predict(RsMlp *m, const RsDemandData *d, int horizon, float *lo, float *mid, float *hi)
{
	float	   *x = rs_alloc(sizeof(float) * DEMAND_BATCH * RS_DEMAND_NFEAT);
	double		sc[DEMAND_BATCH];
	int64_t		total = (int64_t) d->n * horizon;

	rs_mlp_reserve(m, DEMAND_BATCH);
	for (int64_t i = 0; i < total; i += DEMAND_BATCH)
	{
		int			b = (int) (total - i < DEMAND_BATCH ? total - i : DEMAND_BATCH);
		rs_real    *q;

		for (int r = 0; r < b; r++)
			sc[r] = rs_demand_features(d, (int) ((i + r) / horizon), d->T - 1, 1 + (int) ((i + r) % horizon),
									   x + r * RS_DEMAND_NFEAT);
		q = rs_mlp_forward(m, x, b);
		for (int r = 0; r < b; r++)
		{
			float		v[3];

			/* quantiles in order and not below zero: demand is a count */
			for (int j = 0; j < 3; j++)
				v[j] = (float) fmax(0.0, q[r * 3 + j] * sc[r]);
			if (v[0] > v[1])
			{
				float		tmp = v[0];

				v[0] = v[1];
				v[1] = tmp;
			}
			if (v[1] > v[2])
			{
				float		tmp = v[1];

				v[1] = v[2];
				v[2] = tmp;
			}
			if (v[0] > v[1])
			{
				float		tmp = v[0];

				v[0] = v[1];
				v[1] = tmp;
			}
			lo[i + r] = v[0];
			mid[i + r] = v[1];
			hi[i + r] = v[2];
		}
		rs_check_interrupts();
	}
	rs_release(x);
}

void
rs_demand_seasonal_naive(const RsDemandData *d, int horizon, float *out)
{
	for (int s = 0; s < d->n; s++)
	{
		const float *y = d->y + (size_t) s * d->T;

		for (int h = 1; h <= horizon; h++)
			out[(size_t) s * horizon + h - 1] = day_at(y, d->T - 1 + h - 7 * ((h + 6) / 7));
	}
}

void
rs_demand_ets(const RsDemandData *d, int horizon, float *out)
{
	static const double alphas[] = {0.05, 0.1, 0.2, 0.3, 0.5};
	int			T = d->T,
				recent = T < 56 ? T : 56;

	for (int s = 0; s < d->n; s++)
	{
		const float *y = d->y + (size_t) s * T;
		double		f[7] = {0},
					cnt[7] = {0},
					all = 0,
					best_err = INFINITY,
					best_level = 0;

		/* weekday factors over the last eight weeks, kept within [0.2, 5] */
		for (int t = T - recent; t < T; t++)
		{
			f[(d->dow0 + t) % 7] += y[t];
			cnt[(d->dow0 + t) % 7] += 1;
			all += y[t];
		}
		all /= recent;
		for (int j = 0; j < 7; j++)
			f[j] = all > 0 && cnt[j] > 0 ? fmin(fmax(f[j] / cnt[j] / all, 0.2), 5.0) : 1.0;
		/* simple exponential smoothing of the deseasonalised days, alpha by one-step error on the later half */
		for (int a = 0; a < (int) (sizeof(alphas) / sizeof(alphas[0])); a++)
		{
			double		level = mean_days(y, 0, (T < 28 ? T : 28) - 1),
						err = 0;

			for (int t = 0; t < T; t++)
			{
				double		ft = f[(d->dow0 + t) % 7];

				if (t >= T / 2)
					err += fabs(y[t] - level * ft);
				level += alphas[a] * (y[t] / ft - level);
			}
			if (err < best_err)
			{
				best_err = err;
				best_level = level;
			}
		}
		for (int h = 1; h <= horizon; h++)
			out[(size_t) s * horizon + h - 1] = (float) (best_level * f[(d->dow0 + T - 1 + h) % 7]);
	}
}

double
rs_demand_scale(const RsDemandData *d, int s)
{
	const float *y = d->y + (size_t) s * d->T;
	double		sum = 0;

	if (d->T <= 7)
		return 0;
	for (int t = 7; t < d->T; t++)
		sum += fabs(y[t] - y[t - 7]);
	return sum / (d->T - 7);
}
