/* Wire format of rss.bpf.c, the one rss_stat program that the leak
 * sensor and the memory reflex share (sense/rss.c): its maps hold their
 * structures (struct reflex_leak_proc in bpf/leak.h; struct reflex_arm
 * and struct reflex_crossing in bpf/memory.h). No includes. */
#ifndef REFLEX_BPF_RSS_H
#define REFLEX_BPF_RSS_H

/* The drops array's slots (bpf/drops.bpf.h) */
#define REFLEX_RSS_DROP_PROCS 0  /* a process not followed by the leak sensor: procs was full */
#define REFLEX_RSS_DROPS 1

#endif
