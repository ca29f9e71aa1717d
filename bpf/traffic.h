/* Wire format shared by traffic.bpf.c and act/traffic.c. No includes:
 * both sides bring their own fixed-width types. */
#ifndef REFLEX_BPF_TRAFFIC_H
#define REFLEX_BPF_TRAFFIC_H

#define REFLEX_TRAFFIC_SERVICES_MAX 16
#define REFLEX_TRAFFIC_BACKENDS_MAX 8
/* sockets one drain may close: an instance's established connections */
#define REFLEX_TRAFFIC_DRAIN_MAX 4096

/* A service, keyed by its port (host order) in the services map. Backend
 * i's listening socket is in the backends sockmap at slot + i. */
struct traffic_service {
	__u32 slot;
	__u32 nbackends;
	/* new connections go to backend i with probability weight[i] / sum;
	 * 0: shifted away (it still gets them if no other backend listens) */
	__u32 weight[REFLEX_TRAFFIC_BACKENDS_MAX];
};

/* A service whose backends are elsewhere: connect(2) to its address and
 * port is steered, in the caller, to one of the backends. Key and
 * addresses in network byte order, as bpf_sock_addr has them. */
struct traffic_remote_key {
	__u32 addr;
	__u32 port;
};

struct traffic_remote {
	__u32 nbackends;
	__u32 addr[REFLEX_TRAFFIC_BACKENDS_MAX];
	__u32 port[REFLEX_TRAFFIC_BACKENDS_MAX];
	__u32 weight[REFLEX_TRAFFIC_BACKENDS_MAX];
};

#endif
