#include <string.h>

#include "core/util.h"
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
