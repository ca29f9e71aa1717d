#include <errno.h>
#include <string.h>

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

void sensor_drops(const char *sensor, uint64_t n)
{
	metric_add(metrics_counter("reflexd_sensor_drops_total",
				   "what sensors could not keep or attribute: full maps, lost ring-buffer records",
				   "sensor", sensor),
		   (double)n);
}
