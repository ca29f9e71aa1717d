/* Memory sensor and the reflex arc (docs/reflex.md): processes that a
 * `memory { rss = ... }` rule's where matches are armed in a BPF map with
 * the rule's threshold; the BPF program on rss_stat sees the crossing in
 * the process's own context. An in_kernel rule's signal is sent right
 * there by the kernel and recorded here afterwards; any other rule gets a
 * `memory` condition that the engine decides as usual. */
#ifndef REFLEX_SENSE_MEMORY_H
#define REFLEX_SENSE_MEMORY_H

#include "sense/sensor.h"

extern const struct sensor sensor_memory;

#endif
