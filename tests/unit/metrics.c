/* /metrics text from a registry whose families are first used
 * interleaved, the way sensors and the exporter register them at run
 * time: prints the text as served. tests/t_otlp.sh checks it with
 * promtool and that each family is one block. */
#include <stdio.h>

#include "lib/metrics.h"

int main(void)
{
	static char text[16384];
	struct sbuf b;

	metric_add(metrics_counter("unit_drops_total", "drops", "sensor", "deadlock"), 2);
	metric_set(metrics_gauge("unit_backlog", "waiting", NULL, NULL), 7);
	metric_add(metrics_counter("unit_drops_total", "drops", "sensor", "leak"), 0);
	metric_add(metrics_counter("unit_decisions_total", "decisions", "outcome", "acted"), 1);
	metric_add(metrics_counter("unit_drops_total", "drops", "sensor", "a \"quoted\\ name\n"), 3);
	metric_add(metrics_counter("unit_decisions_total", "decisions", "outcome", "failed"), 0);
	sbuf_init(&b, text, sizeof(text));
	metrics_format(&b);
	fputs(text, stdout);
	return 0;
}
