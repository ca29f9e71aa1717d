/* The least-squares trend of a time series: the leak and goroutine
 * sensors' growth rates. */
#ifndef REFLEX_LIB_TREND_H
#define REFLEX_LIB_TREND_H

#include <stddef.h>
#include <stdint.h>

struct trend_sample {
	uint64_t t_ns;   /* CLOCK_MONOTONIC */
	double value;
};

/* The least-squares slope of s[0..n) (oldest first), per second, into
 * *per_s: 0, or -EDOM when fewer than two distinct times give none. */
int trend_slope(const struct trend_sample *s, size_t n, double *per_s);

#endif
