/* signal { "SIGKILL" } or signal { "SIGQUIT", followup = "SIGKILL", grace = "5s" }
 * (its parameters: act/actions.c): signals a process from userspace
 * through a pidfd. A deadlocked process never runs, so an in-kernel
 * bpf_send_signal cannot reach it. The pidfd pins the process: once its
 * start time matches the condition's, a recycled pid can no longer be hit. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "act/actions.h"
#include "sense/identity.h"

struct signal_state {
	int pidfd;
	ev_io exited;
	ev_timer grace;
	uint64_t started_ns;
};

static void signal_release(struct act_run *run)
{
	struct signal_state *s = run->state;

	ev_io_stop(run->loop, &s->exited);
	ev_timer_stop(run->loop, &s->grace);
	close(s->pidfd);
	free(s);
	run->state = NULL;
}

static void target_exited(struct ev_loop *loop, ev_io *w, int revents)
{
	struct act_run *run = w->data;
	const struct signal_params *p = (const void *)run->params;
	struct signal_state *s = run->state;
	char waited[32];

	duration_format(clock_mono_ns() - s->started_ns, waited, sizeof(waited));
	act_end(run, REFLEX_OUTCOME_ACTED, "%s sent; the process exited after %s",
	        act_signal_name(p->sig), waited);
}

static void grace_over(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct act_run *run = w->data;
	const struct signal_params *p = (const void *)run->params;
	struct signal_state *s = run->state;
	char grace[32];

	duration_format(p->grace_ns, grace, sizeof(grace));
	if (syscall(SYS_pidfd_send_signal, s->pidfd, p->followup_sig, NULL, 0) == 0)
		act_end(run, REFLEX_OUTCOME_ACTED, "%s sent; still running after %s, so %s sent",
		        act_signal_name(p->sig), grace, act_signal_name(p->followup_sig));
	else if (errno == ESRCH)
		act_end(run, REFLEX_OUTCOME_ACTED, "%s sent; the process exited within %s",
		        act_signal_name(p->sig), grace);
	else
		act_end(run, REFLEX_OUTCOME_FAILED, "%s sent; %s after %s failed: %s",
		        act_signal_name(p->sig), act_signal_name(p->followup_sig), grace, strerror(errno));
}

static void signal_start(struct act_run *run)
{
	const struct signal_params *p = (const void *)run->params;
	const struct target *t = &run->decision.condition.target;
	struct signal_state *s;
	uint64_t start_time;
	int pidfd;

	pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (pidfd < 0) {
		act_end(run, REFLEX_OUTCOME_FAILED, "pid %d: %s", t->pid,
		        errno == ESRCH ? "already gone, nothing signalled" : strerror(errno));
		return;
	}
	/* After pidfd_open: a start time that still matches proves the pidfd
	 * holds the very process the condition is about. */
	if (identity_start_time(t->pid, &start_time) || start_time != t->start_time) {
		close(pidfd);
		act_end(run, REFLEX_OUTCOME_FAILED,
		        "pid %d is no longer the process the condition was about (it exited "
		        "or the pid was reused): nothing signalled", t->pid);
		return;
	}
	if (syscall(SYS_pidfd_send_signal, pidfd, p->sig, NULL, 0)) {
		int err = errno;

		close(pidfd);
		act_end(run, REFLEX_OUTCOME_FAILED, "%s to pid %d failed: %s", act_signal_name(p->sig),
		        t->pid, strerror(err));
		return;
	}
	if (!p->followup_sig) {
		close(pidfd);
		act_end(run, REFLEX_OUTCOME_ACTED, "%s sent to pid %d", act_signal_name(p->sig), t->pid);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(pidfd);
		act_end(run, REFLEX_OUTCOME_FAILED, "%s sent; out of memory before the grace period",
		        act_signal_name(p->sig));
		return;
	}
	/* a pidfd turns readable when its process exits */
	s->pidfd = pidfd;
	s->started_ns = clock_mono_ns();
	ev_io_init(&s->exited, target_exited, pidfd, EV_READ);
	ev_timer_init(&s->grace, grace_over, (double)p->grace_ns / 1e9, 0);
	s->exited.data = s->grace.data = run;
	run->state = s;
	ev_io_start(run->loop, &s->exited);
	ev_timer_start(run->loop, &s->grace);
}

static void signal_cancel(struct act_run *run)
{
	const struct signal_params *p = (const void *)run->params;

	act_end(run, REFLEX_OUTCOME_FAILED, "%s sent; reflexd stopped during the grace period, "
	        "%s not sent", act_signal_name(p->sig), act_signal_name(p->followup_sig));
}

const struct act_impl act_signal_impl = {
	.ops = &act_signal_ops,
	.start = signal_start,
	.cancel = signal_cancel,
	.release = signal_release,
};
