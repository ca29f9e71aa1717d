// SPDX-License-Identifier: GPL-2.0
/* TCP retransmit sensor, kernel side. Nothing runs per segment or per
 * send: only at a retransmit, at socket creation, and at exec/exit.
 * Retransmits happen in softirq or on another task's stack, so the current
 * task says nothing about whose they are. tcp_retransmit_skb counts into a
 * bounded flow table keyed by the socket's creator (socket storage written
 * by cgroup/sock_create; an accepted socket's is cloned from its
 * listener) and records the socket's inode; userspace finds which process
 * holds that inode, once per flow, and that process is the owner. The
 * ratio's counts are the socket's own (tcp_sock), read at the retransmit. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "retransmits.h"
#include "core_fixes.bpf.h"
#include "drops.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	/* BPF_F_CLONE: an accepted socket starts with its listener's owner */
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct reflex_sock_owner);
} owners SEC(".maps");

/* sized by the loader (--retrans-flows); userspace deletes idle flows */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct reflex_flow_key);
	__type(value, struct reflex_flow);
} flows SEC(".maps");

/* the processes that have had flows: their exit and exec are reported.
 * LRU: one whose entry is evicted, or that died before its first flow was
 * counted (a FIN retransmitted by an orphaned socket), costs nothing; its
 * flows go quiet and expire anyway. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024);
} events SEC(".maps");

static __always_inline void owner_set(struct reflex_sock_owner *o, __u64 id)
{
	o->pid = id >> 32;
	o->tid = (__u32)id;
	o->cgroup_id = bpf_get_current_cgroup_id();
}

/* Runs in the creating task for every inet socket in the cgroup tree. */
SEC("cgroup/sock_create")
int sock_create(struct bpf_sock *ctx)
{
	struct reflex_sock_owner *o;

	if (ctx->protocol != IPPROTO_TCP)
		return 1;
	o = bpf_sk_storage_get(&owners, ctx, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (o)
		owner_set(o, bpf_get_current_pid_tgid());
	else
		drop(REFLEX_RETRANS_DROP_NO_STORAGE);
	return 1;
}

/* tcp_retransmit_skb(const struct sock *sk, const struct sk_buff *skb,
 *                    int err): a segment was retransmitted (err 0); the
 * kernels without err fire only for those (tcp_retransmit_err) */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit, const struct sock *sk, const struct sk_buff *skb)
{
	struct reflex_flow_key key = {};
	struct reflex_sock_owner *o;
	struct reflex_flow *f;
	struct tcp_sock *tp;
	__u64 now;
	__u8 one = 1;

	if (tcp_retransmit_err(ctx) || !sk)
		return 0;
	/* the creator, a hint for userspace; none for a socket older than
	 * reflexd (key.pid 0) */
	o = bpf_sk_storage_get(&owners, (struct sock *)sk, 0, 0);
	if (o)
		key.pid = o->pid;
	key.family = sk->__sk_common.skc_family;
	key.sport = sk->__sk_common.skc_num;
	key.dport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (key.family == AF_INET6) {
		BPF_CORE_READ_INTO(&key.saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&key.daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		__builtin_memcpy(key.saddr, &sk->__sk_common.skc_rcv_saddr, 4);
		__builtin_memcpy(key.daddr, &sk->__sk_common.skc_daddr, 4);
	}
	now = bpf_ktime_get_ns();
	f = bpf_map_lookup_elem(&flows, &key);
	if (!f) {
		struct reflex_flow init = { .first_ns = now, .cgroup_id = o ? o->cgroup_id : 0 };

		if (bpf_map_update_elem(&flows, &key, &init, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&flows, &key)) {
			drop(REFLEX_RETRANS_DROP_FLOWS_FULL);
			return 0;
		}
		f = bpf_map_lookup_elem(&flows, &key);
		if (!f)
			return 0;
		if (key.pid)
			(void)bpf_map_update_elem(&procs, &key.pid, &one, BPF_ANY);
	}
	__sync_fetch_and_add(&f->retransmits, 1);
	f->last_ns = now;
	/* NULL once the socket is closed (orphaned): then the hint stands */
	f->inode = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
	tp = bpf_skc_to_tcp_sock((void *)sk);
	if (tp) {
		f->total_retrans = tp->total_retrans;
		f->data_segs_out = tp->data_segs_out;
	}
	return 0;
}

static __always_inline void report(__u32 pid, __u32 what)
{
	struct reflex_retrans_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		drop(REFLEX_RETRANS_DROP_EVENTS_LOST);
		return;
	}
	e->pid = pid;
	e->what = what;
	bpf_ringbuf_submit(e, 0);
}

/* sched_process_exit(struct task_struct *p, ...): the last thread of a
 * process that has flows is gone. (signal->live reached 0 before the
 * tracepoint; reading it, not the newer group_dead argument, works on
 * older kernels too.) */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(proc_exit, struct task_struct *p)
{
	__u32 pid = p->tgid;

	if (p->signal->live.counter != 0)
		return 0;
	if (bpf_map_delete_elem(&procs, &pid) == 0)
		report(pid, REFLEX_RETRANS_EXIT);
	return 0;
}

/* sched_process_exec(struct task_struct *p, pid_t old_pid,
 *                    struct linux_binprm *bprm) */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(proc_exec, struct task_struct *p)
{
	__u32 pid = p->tgid;

	if (bpf_map_lookup_elem(&procs, &pid))
		report(pid, REFLEX_RETRANS_EXEC);
	return 0;
}
