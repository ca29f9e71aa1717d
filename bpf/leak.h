/* Wire format shared by leak.bpf.c and sense/leak.c. No includes: both
 * sides bring their own fixed-width types. */
#ifndef REFLEX_BPF_LEAK_H
#define REFLEX_BPF_LEAK_H

/* kmem:rss_stat's member: the kernel's MM_* counters */
#define REFLEX_LEAK_FILE 0
#define REFLEX_LEAK_ANON 1
#define REFLEX_LEAK_SWAP 2
#define REFLEX_LEAK_SHMEM 3
#define REFLEX_LEAK_MEMBERS 4

/* processes followed at once; past this, new ones are counted in
 * procs_dropped and not followed */
#define REFLEX_LEAK_PROCS_MAX 16384

/* One process (by tgid): the latest value of each resident-memory counter,
 * and what its brk/mmap/munmap calls added and removed. */
struct reflex_leak_proc {
	__u64 start_ns;                    /* task start time: a recycled pid differs */
	__s64 rss[REFLEX_LEAK_MEMBERS];    /* bytes, as rss_stat last reported */
	__u64 mapped;                      /* bytes of writable anonymous mmap(2)s */
	__u64 unmapped;                    /* bytes munmap(2) released */
	__u64 brk_first, brk_last;         /* program break, first and last seen */
	__u32 seen;                        /* bit per member rss_stat has reported */
	__u32 pad;
};

#endif
