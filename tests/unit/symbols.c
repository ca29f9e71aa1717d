/* symbols PID TID... : names what reflexd names in a deadlocked process,
 * without BPF. Each thread is stopped with ptrace only to read the
 * registers the sensor's scan would read from the kernel; then one line per
 * frame, "TID FRAME", one line per named global, "data NAME=ADDRESS-NAME",
 * for the names given as NAME=0xADDRESS after a "--". x86-64 (the
 * registers as ptrace gives them there). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>

#include "sense/symbols.h"

/* The registers of tid, as the scan reads them: 0, or -1. */
static int thread_regs(pid_t tid, struct user_regs *u)
{
	struct user_regs_struct r;
	int rc = -1;

	if (ptrace(PTRACE_SEIZE, tid, 0, 0))
		return -1;
	if (!ptrace(PTRACE_INTERRUPT, tid, 0, 0) && waitpid(tid, NULL, __WALL) == tid &&
	    !ptrace(PTRACE_GETREGS, tid, 0, &r)) {
		uint64_t regs[16] = { r.rax, r.rdx, r.rcx, r.rbx, r.rsi, r.rdi, r.rbp, r.rsp,
				      r.r8,  r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15 };

		memcpy(u->regs, regs, sizeof(regs));
		u->nregs = 16;
		u->pc = r.rip;
		rc = 0;
	}
	(void)ptrace(PTRACE_DETACH, tid, 0, 0);
	return rc;
}

int main(int argc, char **argv)
{
	struct symbols *s;
	struct frame f[12];
	char name[128];
	int i = 2;

	if (argc < 2) {
		fprintf(stderr, "usage: symbols PID TID... [-- NAME=0xADDRESS...]\n");
		return 2;
	}
	s = symbols_open((pid_t)atoi(argv[1]));
	if (!s) {
		perror("symbols_open");
		return 1;
	}
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		struct user_regs u = { 0 };
		int n;

		if (thread_regs((pid_t)atoi(argv[i]), &u)) {
			perror("ptrace");
			return 1;
		}
		n = symbols_unwind(s, (pid_t)atoi(argv[i]), &u, f, 12);
		for (int k = 0; k < n; k++)
			printf("%s %s+0x%" PRIx64 " %s:%d (%s)\n", argv[i], f[k].function, f[k].offset,
			       f[k].file, f[k].line, f[k].object);
	}
	for (i++; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq)
			continue;
		symbols_data_name(s, strtoull(eq + 1, NULL, 0), name, sizeof(name));
		printf("data %.*s=%s\n", (int)(eq - argv[i]), argv[i], name);
	}
	symbols_close(s);
	return 0;
}
