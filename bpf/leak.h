/* Wire format shared by leak.bpf.c and sense/leak.c. No includes: both
 * sides bring their own fixed-width types. */
#ifndef REFLEX_BPF_LEAK_H
#define REFLEX_BPF_LEAK_H

/* the kernel's MM_* resident-memory counters */
#define REFLEX_LEAK_FILE 0
#define REFLEX_LEAK_ANON 1
#define REFLEX_LEAK_SWAP 2
#define REFLEX_LEAK_SHMEM 3
#define REFLEX_LEAK_MEMBERS 4

/* processes followed at once; past this, new ones are not followed and
 * counted in rss.bpf.c's drops array at REFLEX_RSS_DROP_PROCS */
#define REFLEX_LEAK_PROCS_MAX 16384

/* One process (by tgid): its memory counters as of its last rss_stat. */
struct reflex_leak_proc {
	__u64 start_ns;                    /* task start time: a recycled pid differs */
	__s64 rss[REFLEX_LEAK_MEMBERS];    /* bytes resident, by member */
	__u64 data_vm;                     /* bytes of private writable mappings */
};

#endif
