/* Leak sensor: resident and mapped memory per process, copied from its mm
 * at each rss_stat (bpf/leak.bpf.c), judged by its trend
 * (sense/leak_trend.c): growth with no plateau over --leak-window is a
 * `leak`. On a leak, glibc's malloc/free in that one process are traced
 * for --leak-attribution (bpf/allocs.bpf.c) to name the allocation sites
 * that hold the memory. docs/leak.md. */
#ifndef REFLEX_SENSE_LEAK_H
#define REFLEX_SENSE_LEAK_H

#include "sense/sensor.h"

extern const struct sensor sensor_leak;

#endif
