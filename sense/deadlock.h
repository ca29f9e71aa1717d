/* Deadlock sensor: threads blocked in futex(2) (bpf/deadlock.bpf.c), owners
 * read from the locks themselves, and cycles in the wait-for graph
 * (`deadlock`); every thread of a process blocked, no cycle (`stall`).
 * Options: --min-wait (waits shorter than this are contention, never looked
 * at) and --stall-after. */
#ifndef REFLEX_SENSE_DEADLOCK_H
#define REFLEX_SENSE_DEADLOCK_H

#include "sense/sensor.h"

extern const struct sensor sensor_deadlock;

#endif
