#!/bin/bash
# What leak attribution costs a busy multi-threaded allocator, before and
# after a change (docs/leak.md, "per-CPU counters"): THREADS threads on
# CPUs 0-1 run malloc(64)+free in batches while a thread leaks 16 MiB/s;
# the leak is found (--leak-window 4s), its malloc/free are traced for
# 10 s; the batches while traced give ns per pair, and the kernel's BPF
# run-time accounting gives the programs' own ns per call. With BEFORE (a
# reflexd built from an older tree), rounds alternate it and this tree's;
# without (as make bench runs it), this tree's alone.
#   BEFORE=/path/to/old/reflexd bash tests/bench/b_leak_attr.sh
# Run under flock /tmp/reflexd-bench.lock and /tmp/reflexd-live.lock.
set -eu
# before lib.sh, whose default (9) would win
ROUNDS=${ROUNDS:-2}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
THREADS=${THREADS:-2}
BEFORE=${BEFORE:-}
WL=""
kill_wl() { if [ -n "$WL" ]; then kill -KILL "$WL" 2>/dev/null || true; fi; }
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
restore_stats() { sysctl -qw kernel.bpf_stats_enabled="$stats_was"; }
BENCH_CLEANUP="kill_wl restore_stats"
sysctl -qw kernel.bpf_stats_enabled=1

# ns per run of the attribution programs, summed over the three a
# malloc+free pair runs (0 when bpftool cannot tell)
progs_ns() {
	bpftool prog show -j 2>/dev/null | jq -r '[.[] | select(.name == "malloc_enter" or
		.name == "alloc_return" or .name == "free_enter") | select(.run_cnt > 0) |
		.run_time_ns / .run_cnt] | add // 0 | floor'
}

# one_round BIN: one traced window; sets PAIR (ns per malloc+free while
# traced) and PROGS (the programs' ns per pair). Runs in this shell, so
# that the cleanup knows its daemon and workload.
one_round() {
	REFLEXD_BIN=$1 start_daemon --rules rules/ --dry-run --leak-window 4s --leak-attribution 10s
	taskset -c 0,1 build/workloads/memgrow leakloop --rate 16 --ops 20000 --threads "$THREADS" \
		--comm lk-bench > "$T/ll" 2>&1 &
	WL=$!
	attached="" detached="" progs=""
	for _ in $(seq 900); do
		if [ -z "$attached" ] && grep -q "pid $WL (lk-bench): tracing" "$T/d.log"; then attached=$(date +%s%N); fi
		if [ -n "$attached" ] && [ -z "$progs" ] && [ $(( $(date +%s%N) - attached )) -gt 8000000000 ]; then
			progs=$(progs_ns)
		fi
		if grep -q "pid $WL (lk-bench): [0-9]* calls" "$T/d.log"; then detached=$(date +%s%N); break; fi
		sleep 0.05
	done
	kill_wl
	wait "$WL" 2>/dev/null || true
	WL=""
	stop_daemon
	[ -n "$attached" ] && [ -n "$detached" ] || { echo "b_leak_attr: attribution never ran: $(tail -3 "$T/d.log")" >&2; exit 1; }
	pair=$(awk -v a=$((attached + 500000000)) -v b=$((detached - 500000000)) '/^batch/ {
		split($2, t, "="); split($3, n, "="); if (t[2] > a && t[2] < b) print n[2] }' "$T/ll" | median)
	PAIR=$pair PROGS=${progs:-0}
}

pb="" pa="" gb="" ga=""
for _ in $(seq "$ROUNDS"); do
	if [ -n "$BEFORE" ]; then one_round "$BEFORE"; pb="$pb $PAIR"; gb="$gb $PROGS"; fi
	one_round ./reflexd; pa="$pa $PAIR"; ga="$ga $PROGS"
done
echo "rounds: before pairs [$pb ] progs [$gb ]; after pairs [$pa ] progs [$ga ]" >&2
# before_after LABEL BEFORE_SERIES AFTER_SERIES: a row, its before and
# change left empty without a BEFORE build
before_after() {
	local b="" a
	a=$(echo "$3" | median)
	[ -z "$BEFORE" ] || b=$(echo "$2" | median)
	row "$1" "$b" "$a" "${b:+$(pct "$b" "$a")}" "" ""
}
before_after "malloc+free(64) while attributing, $THREADS threads (ns/pair)" "$pb" "$pa"
before_after "  BPF programs per malloc+free (ns)" "$gb" "$ga"
