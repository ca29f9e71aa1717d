/* The leak sensor's verdict, fed synthetic samples: no BPF, no root.
 * Prints "ok - NAME" or "not ok - NAME: why" per case; exits 1 if any
 * failed. Run by tests/t_leak.sh. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "sense/leak_trend.h"

#define MIB (1024.0 * 1024.0)
#define SEC 1000000000ULL
#define WINDOW (20 * SEC)
#define MIN_RATE (1 * MIB)
#define STEP (SEC)            /* the sensor samples every window/20 */
#define MAX_SAMPLES 400

static int failed;

static void expect(const char *name, int cond, const char *why)
{
	printf("%s - %s%s%s\n", cond ? "ok" : "not ok", name, cond ? "" : ": ", cond ? "" : why);
	failed |= !cond;
}

/* A deterministic +-amp jitter: churn. */
static double jitter(unsigned *seed, double amp)
{
	return ((double)(rand_r(seed) % 2001) / 1000.0 - 1.0) * amp;
}

/* Feeds f(t) sample by sample from t = 0 to until, judging each time the
 * way the sensor does (raised follows the verdict). Returns the verdict at
 * the end; *first_ns is when it first said leak, *cleared_ns when it last
 * went from leak to no leak (0: never). */
static struct leak_verdict run(double (*f)(double t, unsigned *seed), uint64_t until,
			       uint64_t *first_ns, uint64_t *cleared_ns)
{
	static struct trend_sample s[MAX_SAMPLES];
	struct leak_verdict v = { 0 };
	unsigned seed = 42;
	bool raised = false;
	size_t n = 0;

	*first_ns = *cleared_ns = 0;
	for (uint64_t t = 0; t <= until && n < MAX_SAMPLES; t += STEP) {
		s[n].t_ns = t + 1000 * SEC; /* monotonic time is never near 0 */
		s[n].value = f((double)t / 1e9, &seed);
		n++;
		leak_trend_judge(s, n, WINDOW, MIN_RATE, raised, &v);
		if (v.leak && !raised && !*first_ns)
			*first_ns = t;
		if (!v.leak && raised)
			*cleared_ns = t;
		raised = v.leak;
	}
	return v;
}

static double leak8(double t, unsigned *seed)
{
	return 50 * MIB + 8 * MIB * t + jitter(seed, 1 * MIB);
}

static double cache(double t, unsigned *seed)
{
	/* 8 MiB/s for 40 s (past a whole window), then 320 MiB with churn */
	return 20 * MIB + 8 * MIB * (t < 40 ? t : 40) + jitter(seed, 4 * MIB);
}

static double short_fill(double t, unsigned *seed)
{
	/* 16 MiB/s for 16 s (less than a window), then 256 MiB with churn */
	return 8 * MIB + 16 * MIB * (t < 16 ? t : 16) + jitter(seed, 4 * MIB);
}

static double steady(double t, unsigned *seed)
{
	return 300 * MIB + jitter(seed, 8 * MIB);
}

static double slow(double t, unsigned *seed)
{
	return 100 * MIB + 0.5 * MIB * t;
}

static double step(double t, unsigned *seed)
{
	return t < 30 ? 100 * MIB : 400 * MIB;
}

static double sawtooth(double t, unsigned *seed)
{
	/* up 16 MiB/s for 1.5 s, down 8 MiB over the next 0.5 s: net 8 MiB/s */
	double cycle = floor(t / 2), in = t - cycle * 2;

	return 10 * MIB + cycle * 16 * MIB + (in < 1.5 ? in * 16 * MIB : 24 * MIB - (in - 1.5) * 16 * MIB);
}

static double slowing(double t, unsigned *seed)
{
	/* 8 MiB/s for 40 s, then 0.6 MiB/s: slower than min rate, still growing */
	return t < 40 ? 8 * MIB * t : 320 * MIB + 0.6 * MIB * (t - 40);
}

int main(void)
{
	uint64_t first, cleared;
	struct leak_verdict v;
	char why[160];

	struct trend_sample line[5], flat[2] = { { 7 * SEC, 1 }, { 7 * SEC, 3 } };
	double rate = -1;

	/* lib/trend's slope, which this verdict and the goroutine sensor's share */
	for (int i = 0; i < 5; i++)
		line[i] = (struct trend_sample){ 1000 * SEC + (uint64_t)i * SEC / 2, 5 + 3.0 * i / 2 };
	expect("slope_of_a_line", !trend_slope(line, 5, &rate) && fabs(rate - 3) < 1e-9, "not 3/s");
	expect("slope_needs_two_times", trend_slope(line, 1, &rate) == -EDOM &&
					trend_slope(flat, 2, &rate) == -EDOM, "a slope from one time");

	v = run(leak8, 60 * SEC, &first, &cleared);
	snprintf(why, sizeof(why), "leak=%d first at %.0fs rate %.2f MiB/s", v.leak, first / 1e9,
		 v.rate_bps / MIB);
	expect("leak_8mib_s_caught_within_a_window", v.leak && first >= 18 * SEC && first <= 21 * SEC &&
						     !cleared, why);
	expect("leak_rate_measured", fabs(v.rate_bps / MIB - 8) < 0.4, why);

	v = run(cache, 120 * SEC, &first, &cleared);
	snprintf(why, sizeof(why), "leak=%d first %.0fs cleared %.0fs", v.leak, first / 1e9, cleared / 1e9);
	expect("cache_plateau_clears_within_half_a_window",
	       !v.leak && first && cleared >= 40 * SEC && cleared <= 46 * SEC, why);

	/* seen at 18 s, its plateau is 2 s old: a leak or a pause, who knows;
	 * the plateau must end it soon after */
	v = run(short_fill, 120 * SEC, &first, &cleared);
	snprintf(why, sizeof(why), "leak=%d first %.0fs cleared %.0fs", v.leak, first / 1e9,
		 cleared / 1e9);
	expect("fill_shorter_than_window_cleared_after_plateau",
	       !v.leak && (!first || cleared <= 26 * SEC), why);

	v = run(steady, 120 * SEC, &first, &cleared);
	snprintf(why, sizeof(why), "leak=%d first %.0fs", v.leak, first / 1e9);
	expect("steady_with_churn_never_a_leak", !first, why);

	v = run(slow, 120 * SEC, &first, &cleared);
	snprintf(why, sizeof(why), "leak=%d first %.0fs rate %.2f MiB/s", v.leak, first / 1e9,
		 v.rate_bps / MIB);
	expect("growth_below_min_rate_not_a_leak", !first, why);

	v = run(step, 120 * SEC, &first, &cleared);
	snprintf(why, sizeof(why), "leak=%d first %.0fs", v.leak, first / 1e9);
	expect("one_step_then_flat_not_a_leak", !first, why);

	v = run(sawtooth, 60 * SEC, &first, &cleared);
	snprintf(why, sizeof(why), "leak=%d first %.0fs rate %.2f MiB/s", v.leak, first / 1e9,
		 v.rate_bps / MIB);
	expect("sawtooth_leak_caught", v.leak && first && first <= 22 * SEC, why);

	v = run(leak8, 10 * SEC, &first, &cleared);
	snprintf(why, sizeof(why), "leak=%d after 10s", v.leak);
	expect("window_not_covered_no_verdict", !first, why);

	v = run(slowing, 120 * SEC, &first, &cleared);
	snprintf(why, sizeof(why), "leak=%d first %.0fs cleared %.0fs", v.leak, first / 1e9, cleared / 1e9);
	expect("raised_leak_holds_while_still_rising", v.leak && first && !cleared, why);

	snprintf(why, sizeof(why), "%.0f ms, %.0f ms, %.0f ms, %f", leak_trend_eta_ms(192 * MIB, 16 * MIB),
		 leak_trend_eta_ms(0, 16 * MIB), leak_trend_eta_ms(-MIB, 16 * MIB),
		 leak_trend_eta_ms(MIB, 0));
	expect("eta_is_free_memory_over_rate", leak_trend_eta_ms(192 * MIB, 16 * MIB) == 12000 &&
	       leak_trend_eta_ms(0, 16 * MIB) == 0 && leak_trend_eta_ms(-MIB, 16 * MIB) == 0 &&
	       isnan(leak_trend_eta_ms(MIB, 0)), why);
	return failed;
}
