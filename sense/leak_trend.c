#include <math.h>
#include <string.h>

#include "sense/leak_trend.h"

/* Bytes per second over s[0..n); 0 for fewer than two samples. */
static double slope(const struct trend_sample *s, size_t n)
{
	double rate = 0;

	(void)trend_slope(s, n, &rate);
	return rate;
}

bool leak_trend_judge(const struct trend_sample *s, size_t n, uint64_t window_ns,
		      double min_rate_bps, bool raised, struct leak_verdict *v)
{
	double sum[LEAK_TREND_SLICES] = { 0 }, mean[LEAK_TREND_SLICES];
	size_t count[LEAK_TREND_SLICES] = { 0 }, first = 0;
	double slice_s = (double)window_ns / 1e9 / LEAK_TREND_SLICES;
	double min_step = 0.25 * min_rate_bps * slice_s;
	double last_rate;
	uint64_t start, last_slice;
	size_t k;

	memset(v, 0, sizeof(*v));
	if (n < 2 * LEAK_TREND_SLICES)
		return false;
	start = s[n - 1].t_ns > window_ns ? s[n - 1].t_ns - window_ns : 0;
	while (first < n && s[first].t_ns < start)
		first++;
	v->samples = n - first;
	if (v->samples < 2 * LEAK_TREND_SLICES)
		return false;
	v->span_ns = s[n - 1].t_ns - s[first].t_ns;
	v->growth = s[n - 1].value - s[first].value;
	for (size_t i = first; i < n; i++) {
		k = (size_t)((s[i].t_ns - start) * LEAK_TREND_SLICES / (window_ns + 1));
		sum[k] += s[i].value;
		count[k]++;
	}
	v->rate_bps = slope(s + first, n - first);
	/* a window not yet covered (a young process, a new sensor) is no
	 * evidence of anything */
	if (v->span_ns < window_ns - window_ns / 10)
		return false;
	for (k = 0; k < LEAK_TREND_SLICES; k++) {
		if (!count[k])
			return false;
		mean[k] = sum[k] / (double)count[k];
	}
	/* growth that has just stopped shows first in the last slice's own slope */
	last_slice = start + window_ns / LEAK_TREND_SLICES * (LEAK_TREND_SLICES - 1);
	for (k = n; k > first && s[k - 1].t_ns >= last_slice; k--)
		;
	last_rate = slope(s + k, n - k);
	if (raised) {
		v->leak = last_rate >= 0.5 * min_rate_bps &&
			  mean[LEAK_TREND_SLICES - 1] - mean[LEAK_TREND_SLICES - 2] >= 2 * min_step;
		return v->leak;
	}
	if (v->rate_bps < min_rate_bps || last_rate < 0.5 * v->rate_bps)
		return false;
	for (k = 1; k < LEAK_TREND_SLICES; k++)
		if (mean[k] - mean[k - 1] < min_step)
			return false;
	v->leak = true;
	return true;
}

double leak_trend_eta_ms(double free_bytes, double rate_bps)
{
	if (!(rate_bps > 0))
		return NAN;
	return free_bytes > 0 ? free_bytes / rate_bps * 1e3 : 0;
}
