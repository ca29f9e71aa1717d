/* A program the verifier must refuse (it dereferences a random number):
 * tests/unit/probe_capture shows the verifier's reason reaches the one
 * line a sensor that cannot load is reported with. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tracepoint/syscalls/sys_enter_getpid")
int refused(void *ctx)
{
	return *(int *)(long)bpf_get_prandom_u32();
}
