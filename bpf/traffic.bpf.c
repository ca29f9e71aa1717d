// SPDX-License-Identifier: GPL-2.0
/* Traffic shift, kernel side. An sk_lookup program, attached to the
 * network namespace, runs before the kernel looks up the listening socket
 * for a new TCP connection. For a declared service port it picks one of
 * the service's backend listeners, by the weights userspace sets, out of a
 * sockmap; for any other port, and whenever no backend listens, it leaves
 * the normal lookup alone: it never drops a connection itself.
 * A TCP socket iterator closes an instance's established connections
 * (draining) with bpf_sock_destroy. For services whose backends are not
 * local, a cgroup/connect4 program rewrites the destination of connect(2)
 * to the service's address, by the same weights. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "traffic.h"

char LICENSE[] SEC("license") = "GPL";

#define TCP_LISTEN 10
#define PROTO_TCP 6

/* 6.5+: weak, so the object loads without it; the loader then leaves the
 * drain program out (act/traffic.c) */
extern int bpf_sock_destroy(struct sock_common *sk) __ksym __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, REFLEX_TRAFFIC_SERVICES_MAX);
	__type(key, __u32);
	__type(value, struct traffic_service);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, REFLEX_TRAFFIC_SERVICES_MAX * REFLEX_TRAFFIC_BACKENDS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, REFLEX_TRAFFIC_SERVICES_MAX);
	__type(key, struct traffic_remote_key);
	__type(value, struct traffic_remote);
} remote_services SEC(".maps");

/* the inodes of the sockets the next drain closes */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, REFLEX_TRAFFIC_DRAIN_MAX);
	__type(key, __u64);
	__type(value, __u8);
} drain_inodes SEC(".maps");

/* and whose local port is one of these: the service's or the backend's own
 * (an instance's outgoing connections, to its database say, stay) */
__u16 drain_ports[2] = {};
__u64 drained = 0;

/* 0 when the connection now goes to the listener in slot. */
static __always_inline int assign(struct bpf_sk_lookup *ctx, __u32 slot)
{
	struct bpf_sock *sk = bpf_map_lookup_elem(&backends, &slot);
	int err;

	if (!sk)
		return -1;
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	return err;
}

SEC("sk_lookup")
int steer(struct bpf_sk_lookup *ctx)
{
	struct traffic_service *s;
	__u32 port = ctx->local_port, total = 0, pick, n, i;

	if (ctx->protocol != PROTO_TCP)
		return SK_PASS;
	s = bpf_map_lookup_elem(&services, &port);
	if (!s)
		return SK_PASS;
	n = s->nbackends;
	for (i = 0; i < REFLEX_TRAFFIC_BACKENDS_MAX && i < n; i++)
		total += s->weight[i];
	if (total) {
		pick = bpf_get_prandom_u32() % total;
		for (i = 0; i < REFLEX_TRAFFIC_BACKENDS_MAX && i < n; i++) {
			if (pick < s->weight[i])
				break;
			pick -= s->weight[i];
		}
		if (i < n && assign(ctx, s->slot + i) == 0)
			return SK_PASS;
	}
	/* the chosen backend no longer listens: another that has weight,
	 * then any that listens, then the kernel's own lookup */
	for (i = 0; i < REFLEX_TRAFFIC_BACKENDS_MAX && i < n; i++)
		if (s->weight[i] && assign(ctx, s->slot + i) == 0)
			return SK_PASS;
	for (i = 0; i < REFLEX_TRAFFIC_BACKENDS_MAX && i < n; i++)
		if (!s->weight[i] && assign(ctx, s->slot + i) == 0)
			return SK_PASS;
	return SK_PASS;
}

/* Every TCP socket of the namespace; those drain_inodes names (an
 * instance's connections to the service, never a listener) are closed:
 * the peer sees a reset and reconnects, through steer, to a healthy
 * instance. */
SEC("iter/tcp")
int drain(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;
	__u64 ino;

	if (!skc || skc->skc_state == TCP_LISTEN ||
	    (skc->skc_num != drain_ports[0] && skc->skc_num != drain_ports[1]))
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	ino = BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.sk_socket, file, f_inode, i_ino);
	if (!ino || !bpf_map_lookup_elem(&drain_inodes, &ino))
		return 0;
	if (bpf_sock_destroy(skc) == 0)
		drained++;
	return 0;
}

/* connect(2) on IPv4 by any process of the cgroup tree: a TCP connect to a
 * remote service's address goes to one of its backends by weight, or, when
 * every one is shifted away from, to any (a sick backend beats none).
 * Always allows the connect. */
SEC("cgroup/connect4")
int steer_connect(struct bpf_sock_addr *ctx)
{
	struct traffic_remote_key key = { .addr = ctx->user_ip4, .port = ctx->user_port };
	struct traffic_remote *r;
	__u32 total = 0, pick, n, i;

	if (ctx->protocol != PROTO_TCP)
		return 1;
	r = bpf_map_lookup_elem(&remote_services, &key);
	if (!r)
		return 1;
	n = r->nbackends;
	if (!n || n > REFLEX_TRAFFIC_BACKENDS_MAX)
		return 1;
	for (i = 0; i < REFLEX_TRAFFIC_BACKENDS_MAX && i < n; i++)
		total += r->weight[i];
	pick = bpf_get_prandom_u32() % (total ? total : n);
	for (i = 0; i < REFLEX_TRAFFIC_BACKENDS_MAX - 1 && i < n - 1; i++) {
		__u32 w = total ? r->weight[i] : 1;

		if (pick < w)
			break;
		pick -= w;
	}
	ctx->user_ip4 = r->addr[i];
	ctx->user_port = r->port[i];
	return 1;
}
