#include <errno.h>

#include "lib/trend.h"

int trend_slope(const struct trend_sample *s, size_t n, double *per_s)
{
	double st = 0, sv = 0, stt = 0, stv = 0, m = (double)n, d;

	for (size_t i = 0; i < n; i++) {
		/* seconds since the first: small numbers keep the sums exact */
		double t = (double)(s[i].t_ns - s[0].t_ns) / 1e9;

		st += t;
		sv += s[i].value;
		stt += t * t;
		stv += t * s[i].value;
	}
	d = stt * m - st * st;
	if (n < 2 || !(d > 0))
		return -EDOM;
	*per_s = (stv * m - st * sv) / d;
	return 0;
}
