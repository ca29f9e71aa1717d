/*
 * memgrow - memory that grows, for the leak sensor's tests and benchmark.
 *
 *   memgrow leak  [--comm NAME] [--rate MIB_S] [--limit MIB]
 *       leaks 64 KiB blocks (malloc + memset, never freed) at MIB_S
 *       (default 8) from leak_block(), up to MIB (default 1024), then holds;
 *       scratch() mallocs and frees small buffers all along: busy, but not
 *       the leak.
 *   memgrow reserve [--comm NAME] [--rate MIB_S] [--limit MIB]
 *       the same leak, but the blocks are never written: the heap's mapped
 *       size grows at MIB_S while resident memory grows by a page a block
 *       (malloc's own header), a sixteenth of that.
 *   memgrow cache [--comm NAME] [--rate MIB_S] [--size MIB]
 *       fills a cache of 64 KiB entries at MIB_S (default 32) up to MIB
 *       (default 256), then churns it for ever: every millisecond four
 *       random entries are evicted and refilled. Resident memory holds.
 *   memgrow loop  [--comm NAME] [--ops N]
 *       a tight malloc(64)/free loop, N times (default 50M); prints
 *       "ns_per_op=X".
 *   memgrow faults [--comm NAME] [--ops N]
 *       maps 64 MiB, touches every page, unmaps it, until N pages (default
 *       1M) have faulted in: where rss_stat fires; prints "ns_per_page=X".
 *   memgrow churn [--comm NAME] [--ops N]
 *       malloc(256 KiB), writes it, frees it, until N pages (default 1M)
 *       have been written: glibc's mmap threshold is pinned at 128 KiB,
 *       so every block is mapped, faulted in and unmapped, two rss_stat
 *       events a page, as a program that allocates big buffers makes them;
 *       prints "ns_per_page=X".
 *   memgrow leakloop [--comm NAME] [--rate MIB_S] [--ops N] [--threads T]
 *       a thread leaks at MIB_S (default 16) while T threads (default 1)
 *       run the malloc/free loop in batches of N (default 1M) for ever,
 *       each printing "batch realtime_ns=T ns_per_op=X" after each batch:
 *       what attribution costs a busy allocator.
 *
 * Prints "ready pid=P realtime_ns=T" when the growth starts, and for the
 * cache "plateau realtime_ns=T" when it is full.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "workload.h"

#define BLOCK (64 * 1024)

static void usage(void)
{
	fprintf(stderr, "usage: memgrow leak|reserve|cache|loop|faults|churn|leakloop [--comm NAME] [--rate MIB_S] "
			"[--limit MIB] [--size MIB] [--ops N] [--threads T]\n");
	exit(2);
}

static long long realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *volatile sink;

/* noinline: the allocation site the leak sensor must name */
__attribute__((noinline)) static void leak_block(bool touch)
{
	char *p = malloc(BLOCK);

	if (!p)
		die_errno("malloc");
	if (touch)
		memset(p, 0x5a, BLOCK);
	sink = p; /* and forgotten: the leak */
}

__attribute__((noinline)) static void scratch(void)
{
	for (int i = 0; i < 8; i++) {
		char *p = malloc(256 + i * 64);

		if (!p)
			die_errno("malloc");
		memset(p, i, 256);
		sink = p;
		free(p);
	}
}

static void sleep_ns(double ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1e9), .tv_nsec = (long)((long long)ns % 1000000000LL) };

	nanosleep(&ts, NULL);
}

static void leak(double rate_mib, long limit_mib, bool touch)
{
	double per_block_ns = 1e9 * BLOCK / (rate_mib * 1024 * 1024), start = now_ns();
	long blocks = limit_mib * 1024 * 1024 / BLOCK;

	printf("ready pid=%d realtime_ns=%lld\n", getpid(), realtime_ns());
	fflush(stdout);
	for (long i = 0; i < blocks; i++) {
		double due = start + (double)(i + 1) * per_block_ns, now;

		leak_block(touch);
		scratch();
		now = now_ns();
		if (due > now)
			sleep_ns(due - now);
	}
	for (;;)
		pause();
}

static void cache(double rate_mib, long size_mib)
{
	long n = size_mib * 1024 * 1024 / BLOCK;
	double per_block_ns = 1e9 * BLOCK / (rate_mib * 1024 * 1024), start = now_ns();
	char **entries = xcalloc((size_t)n, sizeof(*entries));
	unsigned seed = 1;

	printf("ready pid=%d realtime_ns=%lld\n", getpid(), realtime_ns());
	fflush(stdout);
	for (long i = 0; i < n; i++) {
		double due = start + (double)(i + 1) * per_block_ns, now;

		entries[i] = malloc(BLOCK);
		if (!entries[i])
			die_errno("malloc");
		memset(entries[i], 1, BLOCK);
		now = now_ns();
		if (due > now)
			sleep_ns(due - now);
	}
	printf("plateau realtime_ns=%lld\n", realtime_ns());
	fflush(stdout);
	for (;;) {
		for (int k = 0; k < 4; k++) {
			long i = rand_r(&seed) % n;

			free(entries[i]);
			entries[i] = malloc(BLOCK);
			if (!entries[i])
				die_errno("malloc");
			memset(entries[i], 2, BLOCK);
		}
		sleep_ns(1e6);
	}
}

static void loop(long ops)
{
	double start;

	printf("ready pid=%d realtime_ns=%lld\n", getpid(), realtime_ns());
	fflush(stdout);
	start = now_ns();
	for (long i = 0; i < ops; i++) {
		void *p = malloc(64);

		sink = p;
		free(p);
	}
	printf("ns_per_op=%.2f\n", (now_ns() - start) / (double)ops);
}

static void faults(long pages)
{
	size_t len = 64 << 20, page = (size_t)sysconf(_SC_PAGESIZE);
	double start;
	long done = 0;

	printf("ready pid=%d realtime_ns=%lld\n", getpid(), realtime_ns());
	fflush(stdout);
	start = now_ns();
	while (done < pages) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			die_errno("mmap");
		for (size_t off = 0; off < len && done < pages; off += page, done++)
			p[off] = 1;
		munmap(p, len);
	}
	printf("ns_per_page=%.2f\n", (now_ns() - start) / (double)pages);
}

static void churn(long pages)
{
	size_t len = 256 << 10, page = (size_t)sysconf(_SC_PAGESIZE);
	double start;
	long done = 0;

	/* else glibc raises the threshold at the first free and the blocks
	 * come from the heap, faulted in once */
	if (!mallopt(M_MMAP_THRESHOLD, 128 << 10))
		die_rc("mallopt", EINVAL);
	printf("ready pid=%d realtime_ns=%lld\n", getpid(), realtime_ns());
	fflush(stdout);
	start = now_ns();
	while (done < pages) {
		char *p = malloc(len);

		if (!p)
			die_errno("malloc");
		for (size_t off = 0; off < len && done < pages; off += page, done++)
			p[off] = 1;
		sink = p;
		free(p);
	}
	printf("ns_per_page=%.2f\n", (now_ns() - start) / (double)pages);
}

static double leak_rate_mib;

static void *leak_thread(void *arg)
{
	(void)arg;
	leak(leak_rate_mib, 2048, true); /* then holds: a benchmark left running cannot eat the host */
	return NULL;
}

static long loop_ops;

static void *loop_thread(void *arg)
{
	long ops = loop_ops;

	(void)arg;
	for (;;) {
		double start = now_ns();

		for (long i = 0; i < ops; i++) {
			void *p = malloc(64);

			sink = p;
			free(p);
		}
		printf("batch realtime_ns=%lld ns_per_op=%.2f\n", realtime_ns(), (now_ns() - start) / (double)ops);
		fflush(stdout);
	}
	return NULL;
}

static void leakloop(double rate_mib, long ops, long threads)
{
	pthread_t t;

	leak_rate_mib = rate_mib;
	loop_ops = ops;
	CHECK(pthread_create(&t, NULL, leak_thread, NULL));
	for (long i = 1; i < threads; i++)
		CHECK(pthread_create(&t, NULL, loop_thread, NULL));
	loop_thread(NULL);
}

int main(int argc, char **argv)
{
	double rate = 0;
	long limit = 1024, size = 256, ops = 50000000, threads = 1;

	if (argc < 2)
		usage();
	for (int i = 2; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--comm"))
			set_comm(argv[++i]);
		else if (!strcmp(argv[i], "--rate"))
			rate = (double)parse_long(argv[++i], 1, 4096, usage);
		else if (!strcmp(argv[i], "--limit"))
			limit = parse_long(argv[++i], 1, 65536, usage);
		else if (!strcmp(argv[i], "--size"))
			size = parse_long(argv[++i], 1, 65536, usage);
		else if (!strcmp(argv[i], "--threads"))
			threads = parse_long(argv[++i], 1, 64, usage);
		else if (!strcmp(argv[i], "--ops"))
			ops = parse_long(argv[++i], 1, 1L << 40, usage);
		else
			usage();
	}
	if (!strcmp(argv[1], "leak"))
		leak(rate ? rate : 8, limit, true);
	else if (!strcmp(argv[1], "reserve"))
		leak(rate ? rate : 8, limit, false);
	else if (!strcmp(argv[1], "cache"))
		cache(rate ? rate : 32, size);
	else if (!strcmp(argv[1], "loop"))
		loop(ops);
	else if (!strcmp(argv[1], "churn"))
		churn(ops == 50000000 ? 1000000 : ops);
	else if (!strcmp(argv[1], "faults"))
		faults(ops == 50000000 ? 1000000 : ops);
	else if (!strcmp(argv[1], "leakloop"))
		leakloop(rate ? rate : 16, ops == 50000000 ? 1000000 : ops, threads);
	else
		usage();
	return 0;
}
