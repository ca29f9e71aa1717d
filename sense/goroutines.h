/* Goroutine sensor: Go programs found at startup and at every exec, entry
 * uprobes on their runtime's goroutine create and exit
 * (bpf/goroutines.bpf.c), and per process the live count and its growth
 * rate (`goroutines`). Options: --goroutine-window (the rate is the slope
 * over it), --goroutine-min-rate and --goroutine-min-count (what makes a
 * condition), --goroutine-sample (read the runtime's state instead of
 * probing, where the binary allows). docs/goroutines.md has the design. */
#ifndef REFLEX_SENSE_GOROUTINES_H
#define REFLEX_SENSE_GOROUTINES_H

#include "sense/sensor.h"

extern const struct sensor sensor_goroutines;

#endif
