/* Wire format shared by retransmits.bpf.c and sense/retransmits.c. No
 * includes: both sides bring their own fixed-width types. */
#ifndef REFLEX_BPF_RETRANSMITS_H
#define REFLEX_BPF_RETRANSMITS_H

/* Who created a TCP socket: socket storage, written in the creator's
 * context (an accepted socket inherits its listener's). */
struct reflex_sock_owner {
	__u64 cgroup_id;  /* cgroup2 id of the owner */
	__u32 pid;        /* thread group id, global */
	__u32 tid;
};

/* One flow of one process: the key of the kernel's flow table. Addresses
 * are 16 bytes for both families (IPv4 in the first 4); ports host order. */
struct reflex_flow_key {
	__u32 pid;        /* the socket's creator; 0 when not known */
	__u16 family;     /* AF_INET or AF_INET6 */
	__u16 sport;
	__u16 dport;
	__u16 pad;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct reflex_flow {
	__u64 retransmits;    /* tcp_retransmit_skb events counted here */
	__u64 first_ns;       /* CLOCK_MONOTONIC of the first and last one */
	__u64 last_ns;
	__u64 cgroup_id;      /* the creator's */
	__u64 inode;          /* the socket's inode at the last one; 0 if closed */
	/* the socket's own counters at the last one (tcp_sock) */
	__u32 total_retrans;  /* segments retransmitted over its life */
	__u32 data_segs_out;  /* data segments sent over its life */
};

/* A process that has flows exited or exec'd: its state goes. */
#define REFLEX_RETRANS_EXIT 1
#define REFLEX_RETRANS_EXEC 2

struct reflex_retrans_event {
	__u32 pid;
	__u32 what;
};

/* What the kernel could not count: the drops array's slots
 * (bpf/drops.bpf.h). */
#define REFLEX_RETRANS_DROP_FLOWS_FULL 0  /* the flow table was full */
#define REFLEX_RETRANS_DROP_EVENTS_LOST 1 /* the ring buffer was full */
#define REFLEX_RETRANS_DROP_NO_STORAGE 2  /* socket storage could not be allocated */
#define REFLEX_RETRANS_DROPS 3

#endif
