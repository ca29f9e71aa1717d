/* /metrics text from a registry whose families are first used
 * interleaved, the way sensors and the exporter register them at run
 * time: prints the text as served. tests/t_otlp.sh checks it with
 * promtool and that each family is one block. */
#include <stdio.h>

#include "lib/metrics.h"

int main(void)
{
	static const double bounds[] = { 0.001, 0.01, 0.1 };
	static char text[16384];
	struct metric *lag = metrics_histogram("unit_lag_seconds", "lag", bounds, 3);
	struct sbuf b;

	metric_add(metrics_counter("unit_drops_total", "drops", "sensor", "deadlock"), 2);
	metric_set(metrics_gauge("unit_backlog", "waiting", NULL, NULL), 7);
	metric_add(metrics_counter("unit_drops_total", "drops", "sensor", "leak"), 0);
	metric_add(metrics_counter("unit_decisions_total", "decisions", "outcome", "acted"), 1);
	metric_add(metrics_counter("unit_drops_total", "drops", "sensor", "a \"quoted\\ name\n"), 3);
	metric_add(metrics_counter("unit_decisions_total", "decisions", "outcome", "failed"), 0);
	/* one at a bound (le is inclusive), one between, one past the last */
	metric_observe(lag, 0.001);
	metric_observe(lag, 0.05);
	metric_observe(lag, 3);
	sbuf_init(&b, text, sizeof(text));
	metrics_format(&b);
	fputs(text, stdout);
	return 0;
}
