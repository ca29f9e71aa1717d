#!/bin/bash
# reflexd beside what a user would attach instead: the probes bcc's
# deadlock, memleak -p and tcpretrans use, written as bpftrace scripts
# (tests/bench/peers/; bcc itself cannot run without kernel headers and
# kprobes). Three workloads, each bare, with reflexd (every sensor, shipped
# rules, dry-run) and with the peer, in alternating rounds; medians, and
# the spread (interquartile range over median) of each column. The peers
# trace only the workload's process, as the bcc tools do with a pid; their
# runs are shorter (PEER_*_OPS) because each operation costs thousands of
# times more. Ports 49300-49309.
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOCK_OPS=${LOCK_OPS:-2000000}
PEER_LOCK_OPS=${PEER_LOCK_OPS:-20000}
MALLOC_OPS=${MALLOC_OPS:-20000000}
PEER_MALLOC_OPS=${PEER_MALLOC_OPS:-20000}
PEERS=tests/bench/peers
RR_PORT=49300

command -v bpftrace > /dev/null || sh deploy/deps.sh bench || { echo "b_peers: no bpftrace" >&2; exit 1; }

# ns per operation of one run of CMD, bare or under bpftrace -c with the
# peer SCRIPT (the tracer attached to that process alone, as the bcc tools
# take a pid)
ns_per_op() { "$@" | sed -n 's/.*ns_per_op=\([0-9.]*\).*/\1/p'; }
traced_ns_per_op() {
	local script=$1
	shift
	bpftrace -c "$*" "$script" 2> /dev/null | sed -n 's/.*ns_per_op=\([0-9.]*\).*/\1/p'
}
lock_cmd() { echo /usr/bin/taskset -c 0,1 "$PWD/build/workloads/futex_bench" --threads 4 --ops "$1"; }
malloc_cmd() { echo /usr/bin/taskset -c 1 "$PWD/build/workloads/memgrow" loop --ops "$1" --comm pr-bench; }
lock() { ns_per_op $(lock_cmd "$LOCK_OPS"); }
lock_peer() { traced_ns_per_op "$PEERS/deadlock.bt" $(lock_cmd "$PEER_LOCK_OPS"); }
malloc() { ns_per_op $(malloc_cmd "$MALLOC_OPS"); }
malloc_peer() { traced_ns_per_op "$PEERS/memleak.bt" $(malloc_cmd "$PEER_MALLOC_OPS"); }
tcp() { tcp_rr | cut -d' ' -f1; }
# tcpretrans watches the whole host, as the tool does: started before the
# loop, stopped after it. (This runs in a command substitution, a subshell
# the EXIT trap does not cover: it stops its tracer itself.)
tcp_peer() {
	local tracer
	bpftrace "$PEERS/tcpretrans.bt" > "$T/tracer" 2>&1 &
	tracer=$!
	if wait_line "$T/tracer" '^Attaching' 30; then
		tcp
	else
		echo "tcpretrans.bt did not start: $(cat "$T/tracer")" >&2
	fi
	kill -INT "$tracer"
	wait "$tracer" 2>/dev/null || true
}

abab lock malloc tcp

prow() { printf '%-34s %10s %10s %10s %9s %9s %17s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {r = b / a; printf (r >= 100 ? "%.0fx" : "%.3f"), r}'; }
spread() { echo "$1" | iqr | tr -d %; }
# peer_row LABEL PEER MEASURE
peer_row() {
	local b r p bare=${3}_bare rflx=${3}_rflx peer=${3}_peer
	b=$(echo "${!bare}" | median) r=$(echo "${!rflx}" | median) p=$(echo "${!peer}" | median)
	prow "$1" "$b" "$r" "$p" "$(ratio "$b" "$r")" "$(ratio "$b" "$p")" \
		"$(spread "${!bare}")/$(spread "${!rflx}")/$(spread "${!peer}")%"
	prow "  the peer: $2" "" "" "" "" "" ""
}
echo
prow "peers ($ROUNDS rounds, medians)" "bare" "reflexd" "peer" "reflexd/" "peer/" "spread"
prow "" "" "" "" "bare" "bare" "bare/rflx/peer"
peer_row "4 threads, one mutex (ns/op)" "deadlock.bt (uprobes lock/unlock)" lock
peer_row "malloc(64)+free (ns/pair)" "memleak.bt (uprobes malloc/free)" malloc
peer_row "loopback TCP 64 B req/resp (ns/RT)" "tcpretrans.bt (tracepoint)" tcp
