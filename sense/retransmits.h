/* TCP retransmit sensor: retransmits counted per flow in the kernel and
 * attributed to the process that owns the socket (bpf/retransmits.bpf.c);
 * rates and ratios per flow, per peer and per process over a sliding
 * window (`retransmits`). Options: --retrans-window, --retrans-min,
 * --retrans-flows. */
#ifndef REFLEX_SENSE_RETRANSMITS_H
#define REFLEX_SENSE_RETRANSMITS_H

#include "sense/sensor.h"

extern const struct sensor sensor_retransmits;

#endif
