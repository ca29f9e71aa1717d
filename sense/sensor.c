#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "sense/deadlock.h"
#include "sense/goroutines.h"
#include "sense/leak.h"
#include "sense/memory.h"
#include "sense/retransmits.h"
#include "sense/sensor.h"

const struct sensor *const sensors[] = {
	&sensor_deadlock,
	&sensor_leak,
	&sensor_goroutines,
	&sensor_memory,
	&sensor_retransmits,
};
const size_t sensors_count = ARRAY_SIZE(sensors);
_Static_assert(ARRAY_SIZE(sensors) <= REFLEX_SENSORS_MAX, "raise REFLEX_SENSORS_MAX");

const struct sensor *sensor_find(const char *name)
{
	for (size_t i = 0; i < sensors_count; i++)
		if (strcmp(sensors[i]->name, name) == 0)
			return sensors[i];
	return NULL;
}

static void ring_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	sensor_ring_drain(w->data);
}

int sensor_ring_open(struct sensor_ring *r, struct ev_loop *loop, int map_fd,
		     ring_buffer_sample_fn fn, void *ctx, const char *who)
{
	int err;

	r->rb = ring_buffer__new(map_fd, fn, ctx, NULL);
	if (!r->rb) {
		err = -errno;
		log_error("%s: ring buffer: %s", who, strerror(-err));
		return err;
	}
	r->loop = loop;
	ev_io_init(&r->io, ring_ready, ring_buffer__epoll_fd(r->rb), EV_READ);
	r->io.data = r;
	ev_io_start(loop, &r->io);
	return 0;
}

void sensor_ring_drain(struct sensor_ring *r)
{
	(void)ring_buffer__consume(r->rb);
}

void sensor_ring_close(struct sensor_ring *r)
{
	if (r->loop)
		ev_io_stop(r->loop, &r->io);
	ring_buffer__free(r->rb);
	r->rb = NULL;
	r->loop = NULL;
}

void sensor_drops_open(struct sensor_drop_counts *d, const char *sensor, int map_fd,
		       const char *const *why, size_t n)
{
	*d = (struct sensor_drop_counts){ .sensor = sensor, .why = why, .fd = map_fd,
					  .n = n < REFLEX_DROPS_MAX ? n : REFLEX_DROPS_MAX };
}

int sensor_drops_report(struct sensor_drop_counts *d, uint64_t *grew)
{
	int ncpus = libbpf_num_possible_cpus(), err = 0;
	uint64_t *v = NULL;

	if (ncpus < 0)
		return ncpus;
	v = calloc((size_t)ncpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (__u32 i = 0; i < d->n; i++) {
		uint64_t sum = 0;

		if (bpf_map_lookup_elem(d->fd, &i, v)) {
			err = -errno;
			goto cleanup;
		}
		for (int c = 0; c < ncpus; c++)
			sum += v[c];
		if (grew)
			grew[i] = sum - d->total[i];
		if (sum == d->total[i])
			continue;
		log_warn("%s: %llu %s (%llu since start)", d->sensor,
			 (unsigned long long)(sum - d->total[i]), d->why[i], (unsigned long long)sum);
		sensor_drops(d->sensor, sum - d->total[i]);
		d->total[i] = sum;
	}
cleanup:
	free(v);
	return err;
}

void sensor_drops(const char *sensor, uint64_t n)
{
	metric_add(metrics_counter("reflexd_sensor_drops_total",
				   "what sensors could not keep or attribute: full maps, lost ring-buffer records",
				   "sensor", sensor),
		   (double)n);
}
