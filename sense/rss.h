/* The one rss_stat program (bpf/rss.bpf.c), shared by the leak sensor and
 * the memory reflex: whichever starts first loads and attaches it, the
 * other takes a reference, and the last to stop destroys it. Both run on
 * the daemon's one loop, so the count needs no lock. */
#ifndef REFLEX_SENSE_RSS_H
#define REFLEX_SENSE_RSS_H

#include "rss.skel.h"

/* The shared object, loaded and attached on the first call; NULL with
 * errno set (and nothing logged: the caller says who needed it). */
struct rss_bpf *sense_rss_get(void);
/* Gives back a reference; NULL is fine. */
void sense_rss_put(struct rss_bpf *skel);

#endif
