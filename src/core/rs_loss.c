/*
 * rs_loss.c — BCE, MSE, BPR and sampled softmax, numerically stable forms.
 */
#include "rs_loss.h"

#include <math.h>

/* log(1 + exp(x)) without overflow */
static inline double
softplus(double x)
{
	return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

double
rs_loss_bce_logits(const rs_real *z, const rs_real *y, int n, rs_real *dz)
{
	double		sum = 0;

	for (int i = 0; i < n; i++)
	{
		/* -y log s(z) - (1-y) log(1-s(z)) = softplus(z) - y z */
		sum += softplus(z[i]) - (double) y[i] * z[i];
		if (dz)
			dz[i] = (rs_sigmoid(z[i]) - y[i]) / n;
	}
	return n ? sum / n : 0;
}

double
rs_loss_mse(const rs_real *z, const rs_real *y, int n, rs_real *dz)
{
	double		sum = 0;

	for (int i = 0; i < n; i++)
	{
		double		e = (double) z[i] - y[i];

		sum += 0.5 * e * e;
		if (dz)
			dz[i] = (rs_real) (e / n);
	}
	return n ? sum / n : 0;
}

double
rs_loss_bpr(const rs_real *pos, const rs_real *neg, int n, rs_real *dpos, rs_real *dneg)
{
	double		sum = 0;

	for (int i = 0; i < n; i++)
	{
		double		d = (double) pos[i] - neg[i];

		sum += softplus(-d);
		if (dpos)
		{
			rs_real		g = (rs_real) (-rs_sigmoid((rs_real) -d) / n);

			dpos[i] = g;
			dneg[i] = -g;
		}
	}
	return n ? sum / n : 0;
}

double
rs_loss_listwise(const rs_real *z, const rs_real *y, const int32_t *gptr, int ngroups, rs_real *dz)
{
	double		sum = 0;
	int			used = 0;

	for (int g = 0; g < ngroups; g++)
	{
		double		ysum = 0;

		for (int32_t i = gptr[g]; i < gptr[g + 1]; i++)
			ysum += y[i] > 0 ? y[i] : 0;
		used += ysum > 0;
	}
	for (int g = 0; g < ngroups; g++)
	{
		double		mx = -INFINITY,
					zs = 0,
					ysum = 0;

		for (int32_t i = gptr[g]; i < gptr[g + 1]; i++)
		{
			ysum += y[i] > 0 ? y[i] : 0;
			if (z[i] > mx)
				mx = z[i];
		}
		if (ysum <= 0)
		{
			for (int32_t i = gptr[g]; i < gptr[g + 1] && dz; i++)
				dz[i] = 0;
			continue;
		}
		for (int32_t i = gptr[g]; i < gptr[g + 1]; i++)
			zs += exp(z[i] - mx);
		for (int32_t i = gptr[g]; i < gptr[g + 1]; i++)
		{
			double		t = (y[i] > 0 ? y[i] : 0) / ysum,
						p = exp(z[i] - mx) / zs;

			/* -sum t log p, log p = z - mx - log zs */
			sum -= t * (z[i] - mx - log(zs));
			if (dz)
				dz[i] = (rs_real) ((p - t) / used);
		}
	}
	return used ? sum / used : 0;
}

double
rs_loss_sampled_softmax(const rs_real *logits, int n, int w, rs_real *dlogits)
{
	double		sum = 0;

	for (int i = 0; i < n; i++)
	{
		const rs_real *row = logits + (int64_t) i * w;
		double		mx = row[0],
					z = 0;

		for (int j = 1; j < w; j++)
			if (row[j] > mx)
				mx = row[j];
		for (int j = 0; j < w; j++)
			z += exp(row[j] - mx);
		sum += log(z) + mx - row[0];
		if (dlogits)
			for (int j = 0; j < w; j++)
				dlogits[(int64_t) i * w + j] = (rs_real) ((exp(row[j] - mx) / z - (j == 0)) / n);
	}
	return n ? sum / n : 0;
}
