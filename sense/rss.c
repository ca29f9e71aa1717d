/* One program on rss_stat rather than one per sensor: the tracepoint fires
 * on every page fault and unmap of every process on the host, and each
 * program attached to it is one more dispatch and one more read of the
 * same mm counters per event (docs/leak.md, "One program on rss_stat"). */
#include <errno.h>
#include <unistd.h>

#include "sense/rss.h"

static struct rss_bpf *shared;
static unsigned refs;

struct rss_bpf *sense_rss_get(void)
{
	struct rss_bpf *skel;
	int err;

	if (shared) {
		refs++;
		return shared;
	}
	skel = rss_bpf__open();
	if (!skel)
		return NULL;
	skel->rodata->self_tgid = (__u32)getpid();
	skel->rodata->page_shift = (__u32)__builtin_ctzl((unsigned long)sysconf(_SC_PAGESIZE));
	err = rss_bpf__load(skel);
	if (!err)
		err = rss_bpf__attach(skel);
	if (err) {
		rss_bpf__destroy(skel);
		errno = -err;
		return NULL;
	}
	shared = skel;
	refs = 1;
	return shared;
}

void sense_rss_put(struct rss_bpf *skel)
{
	if (!skel || skel != shared || --refs)
		return;
	rss_bpf__destroy(shared);
	shared = NULL;
}
