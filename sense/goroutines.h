/* Goroutine sensor: Go programs found at startup and at every exec, their
 * live goroutines read from the runtime's own table every sample, with
 * their creation sites (entry uprobes on the runtime's goroutine create and
 * exit, bpf/goroutines.bpf.c, where the runtime cannot be read), and per
 * process the live count and its growth rate (`goroutines`). Options:
 * --goroutine-window (the rate is the slope over it), --goroutine-min-rate
 * and --goroutine-min-count (what makes a condition), --goroutine-probes
 * (probe every Go binary). docs/goroutines.md has the design. */
#ifndef REFLEX_SENSE_GOROUTINES_H
#define REFLEX_SENSE_GOROUTINES_H

#include "sense/sensor.h"

extern const struct sensor sensor_goroutines;

#endif
