/* Is memory growing without a plateau? The leak sensor's verdict, as a
 * pure function of samples, so that it can be tested without BPF
 * (tests/unit/leak_trend.c). */
#ifndef REFLEX_SENSE_LEAK_TREND_H
#define REFLEX_SENSE_LEAK_TREND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/trend.h"

struct leak_verdict {
	bool leak;
	double rate_bps;     /* least-squares slope over the window */
	double growth;       /* last sample minus the first, in the window */
	uint64_t span_ns;    /* from the first sample in the window to the last */
	size_t samples;      /* in the window */
};

/* The number of equal slices the window is cut into. */
#define LEAK_TREND_SLICES 4

/* Judges s[0..n) (oldest first, values in bytes) over the last window_ns. A leak is growth
 * at min_rate_bps or more that has no plateau: the window is covered, its
 * slope is at least min_rate_bps, the mean of each of its slices is above
 * the one before by at least a quarter of what min_rate_bps would add in a
 * slice (churn averages out inside a slice; a plateau shows as two slices
 * alike), and the last slice on its own still rises at half the window's
 * slope (growth that has just stopped shows there first). raised says the
 * leak was already reported: it then stands while the last slice rises at
 * half of min_rate_bps, slope and mean step both, so a leak that slows a
 * little does not flap. Returns v->leak. */
bool leak_trend_judge(const struct trend_sample *s, size_t n, uint64_t window_ns,
		      double min_rate_bps, bool raised, struct leak_verdict *v);

/* Milliseconds until free_bytes are used up at rate_bps: 0 when none are
 * left, NAN when the memory is not growing. */
double leak_trend_eta_ms(double free_bytes, double rate_bps);

#endif
