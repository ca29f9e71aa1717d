/* Wire format shared by allocs.bpf.c and sense/leak.c (leak attribution).
 * No includes: both sides bring their own fixed-width types. */
#ifndef REFLEX_BPF_ALLOCS_H
#define REFLEX_BPF_ALLOCS_H

#define REFLEX_ALLOCS_MAX 262144  /* live allocations followed at once */
#define REFLEX_ALLOC_SITES_MAX 4096

/* One live allocation made while attached: its size, and the return
 * address of its malloc/calloc/realloc call (the allocation site). */
struct reflex_alloc {
	__u64 size;
	__u64 site;
};

/* An allocation site: what its allocations still hold. */
struct reflex_alloc_site {
	__s64 outstanding;  /* bytes allocated and not freed */
	__u64 allocs;       /* allocations not freed */
};

/* What the probes counted, in the allocs_stats array (one entry). */
struct reflex_alloc_stats {
	__u64 calls;          /* malloc, calloc, realloc and free calls seen */
};

/* The drops array's slots (bpf/drops.bpf.h) */
#define REFLEX_ALLOC_DROP_ALLOCS 0 /* allocations not followed: the allocs map was full */
#define REFLEX_ALLOC_DROP_SITES 1  /* allocations at sites past REFLEX_ALLOC_SITES_MAX */
#define REFLEX_ALLOC_DROP_CALLS 2  /* calls not followed: too many threads inside at once */
#define REFLEX_ALLOC_DROPS 3

#endif
