/* amplify: attaches one tracepoint program K more times, so that what it
 * costs a workload per run, too small to see on a noisy machine's wall
 * clock, is measured as the slope over K runs instead (b_retransmits.sh).
 *
 *   amplify K ID...  K more links of each loaded program ID (tp_btf or
 *                    raw_tp: on the tracepoint it was loaded for); ID
 *                    "empty" is a program that only returns, on
 *                    sched_switch: what any program there costs
 *
 * Prints "attached" once every link is made, then holds them until
 * SIGTERM or SIGINT. Exits 1 with a message if a link cannot be made. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

static int empty_program(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	return bpf_prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, "amplify_empty", "GPL", insns, 2, NULL);
}

/* K links of the program named by id (a number or "empty") */
static int attach(const char *id, int k)
{
	const char *tracepoint = NULL;
	int prog;

	if (strcmp(id, "empty") == 0) {
		prog = empty_program();
		tracepoint = "sched_switch";
	} else {
		prog = bpf_prog_get_fd_by_id((__u32)atoi(id));
	}
	if (prog < 0) {
		fprintf(stderr, "amplify: program %s: %s\n", id, strerror(errno));
		return -1;
	}
	for (int i = 0; i < k; i++) {
		if (bpf_raw_tracepoint_open(tracepoint, prog) < 0) {
			fprintf(stderr, "amplify: link %d of program %s: %s\n", i + 1, id,
				strerror(errno));
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	sigset_t stop;
	int k, sig;

	if (argc < 3 || (k = atoi(argv[1])) < 1) {
		fprintf(stderr, "usage: amplify K ID|empty...\n");
		return 2;
	}
	/* SIGTERM waits for sigwait below, not the default action */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	for (int i = 2; i < argc; i++)
		if (attach(argv[i], k))
			return 1;
	printf("attached\n");
	fflush(stdout);
	sigwait(&stop, &sig);
	return 0;
}
