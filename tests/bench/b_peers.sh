#!/bin/bash
# reflexd beside what a user would attach instead: the probes bcc's
# deadlock, memleak -p and tcpretrans use, written as bpftrace scripts
# (tests/bench/peers/; bcc itself cannot run without kernel headers and
# kprobes). Three workloads, each bare, with reflexd (every sensor, shipped
# rules, dry-run) and with the peer, in alternating rounds; medians, and
# the spread (interquartile range over median) of each column. The peers
# trace only the workload's process, as the bcc tools do with a pid; their
# runs are shorter (PEER_*_OPS) because each operation costs thousands of
# times more. Ports 48300-48309.
set -eu
ROUNDS=${ROUNDS:-5}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOCK_OPS=${LOCK_OPS:-2000000}
PEER_LOCK_OPS=${PEER_LOCK_OPS:-20000}
MALLOC_OPS=${MALLOC_OPS:-20000000}
PEER_MALLOC_OPS=${PEER_MALLOC_OPS:-20000}
PEERS=tests/bench/peers
RR_PORT=48300
TRACER=""
kill_tracer() { if [ -n "$TRACER" ]; then kill -KILL "$TRACER" 2>/dev/null || true; fi; }
BENCH_CLEANUP=kill_tracer

command -v bpftrace > /dev/null || sh deploy/deps.sh bench || { echo "b_peers: no bpftrace" >&2; exit 1; }

# lock|malloc [TRACER_SCRIPT OPS]: ns per operation of one run, bare or
# under bpftrace -c (the tracer attached to that process alone)
lock_cmd() { echo "/usr/bin/taskset -c 0,1 $PWD/build/workloads/futex_bench --threads 4 --ops $1"; }
malloc_cmd() { echo "/usr/bin/taskset -c 1 $PWD/build/workloads/memgrow loop --ops $1 --comm pr-bench"; }
run() {
	local cmd
	cmd=$("$1_cmd" "${3:-$([ "$1" = lock ] && echo "$LOCK_OPS" || echo "$MALLOC_OPS")}")
	if [ -n "${2:-}" ]; then
		bpftrace -c "$cmd" "$2" 2> /dev/null | sed -n 's/.*ns_per_op=\([0-9.]*\).*/\1/p'
	else
		$cmd | sed -n 's/.*ns_per_op=\([0-9.]*\).*/\1/p'
	fi
}
# tcpretrans watches the whole host, as the tool does: started before the
# loop, stopped after it
rr_traced() {
	bpftrace "$PEERS/tcpretrans.bt" > "$T/tracer" 2>&1 &
	TRACER=$!
	for _ in $(seq 600); do
		grep -q '^Attaching' "$T/tracer" && break
		sleep 0.05
	done
	grep -q '^Attaching' "$T/tracer" || { echo "tcpretrans.bt did not start: $(cat "$T/tracer")" >&2; exit 1; }
	tcp_rr | cut -d' ' -f1
	kill -INT "$TRACER"
	wait "$TRACER" 2>/dev/null || true
	TRACER=""
}

lock_b="" lock_r="" lock_p="" mal_b="" mal_r="" mal_p="" tcp_b="" tcp_r="" tcp_p=""
for _ in $(seq "$ROUNDS"); do
	lock_b="$lock_b $(run lock)"
	mal_b="$mal_b $(run malloc)"
	tcp_b="$tcp_b $(tcp_rr | cut -d' ' -f1)"
	start_daemon --rules rules/ --dry-run
	lock_r="$lock_r $(run lock)"
	mal_r="$mal_r $(run malloc)"
	tcp_r="$tcp_r $(tcp_rr | cut -d' ' -f1)"
	stop_daemon
	lock_p="$lock_p $(run lock "$PEERS/deadlock.bt" "$PEER_LOCK_OPS")"
	mal_p="$mal_p $(run malloc "$PEERS/memleak.bt" "$PEER_MALLOC_OPS")"
	tcp_p="$tcp_p $(rr_traced)"
done

prow() { printf '%-34s %10s %10s %10s %9s %9s %17s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {r = b / a; printf (r >= 100 ? "%.0fx" : "%.3f"), r}'; }
spread() { echo "$1" | iqr | tr -d %; }
# peer_row LABEL PEER BARE REFLEXD PEER_SERIES
peer_row() {
	local b r p
	b=$(echo "$3" | median) r=$(echo "$4" | median) p=$(echo "$5" | median)
	prow "$1" "$b" "$r" "$p" "$(ratio "$b" "$r")" "$(ratio "$b" "$p")" \
		"$(spread "$3")/$(spread "$4")/$(spread "$5")%"
	prow "  the peer: $2" "" "" "" "" "" ""
}
echo
prow "peers ($ROUNDS rounds, medians)" "bare" "reflexd" "peer" "reflexd/" "peer/" "spread"
prow "" "" "" "" "bare" "bare" "bare/rflx/peer"
peer_row "4 threads, one mutex (ns/op)" "deadlock.bt (uprobes lock/unlock)" "$lock_b" "$lock_r" "$lock_p"
peer_row "malloc(64)+free (ns/pair)" "memleak.bt (uprobes malloc/free)" "$mal_b" "$mal_r" "$mal_p"
peer_row "loopback TCP 64 B req/resp (ns/RT)" "tcpretrans.bt (tracepoint)" "$tcp_b" "$tcp_r" "$tcp_p"
