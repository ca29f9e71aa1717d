#!/bin/bash
# The deadlock evidence's cost: 4 threads on one mutex (futex_bench) bare,
# under a reflexd without stack capture (BASELINE=path of an older build,
# e.g. main's) and under this one, in ABAB rounds; the scan program's price
# per task visited in both; and the time to name a confirmed deadlock.
# Only the deadlock sensor runs, so the rows measure it alone.
set -eu
. "$(dirname "$0")/lib.sh"
FUTEX_OPS=${FUTEX_OPS:-10000000}
BASELINE=${BASELINE:-}
WLP=""
kill_bench_wl() {
	[ -z "$WLP" ] || kill -KILL "$WLP" 2>/dev/null || true
	[ -z "$WLP" ] || wait "$WLP" 2>/dev/null || true
	WLP=""
}
BENCH_CLEANUP=kill_bench_wl

futex_ns() {
	build/workloads/futex_bench --threads 4 --ops "$FUTEX_OPS" | sed 's/.*ns_per_op=//'
}

# start BINARY: a daemon of that build with only the deadlock sensor
start() {
	REFLEXD_BIN=$1 start_daemon --rules rules/ --dry-run --sensors deadlock
}

# scan_ns BINARY: the scan iterator's run time per task visited, with one
# deadlocked process among the tasks (its two threads are copied out)
scan_ns() {
	start "$1"
	build/workloads/deadlock-nofp abba --comm rx-bname > /dev/null &
	WLP=$!
	sleep 3
	bpftool prog show name scan_waits -j | jq -r '"\(.run_time_ns // 0) \(.run_cnt // 0)"' |
		awk '{printf "%.0f\n", $2 ? $1 / $2 : 0}'
	kill_bench_wl
	stop_daemon
}

bare="" base="" with=""
for _ in $(seq "$ROUNDS"); do
	bare="$bare $(futex_ns)"
	if [ -n "$BASELINE" ]; then
		start "$BASELINE"
		base="$base $(futex_ns)"
		stop_daemon
	fi
	start ./reflexd
	with="$with $(futex_ns)"
	stop_daemon
done

stats_was=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
scan_base="" scan_with=""
for _ in 1 2 3; do
	[ -z "$BASELINE" ] || scan_base="$scan_base $(scan_ns "$BASELINE")"
	scan_with="$scan_with $(scan_ns ./reflexd)"
done
sysctl -qw kernel.bpf_stats_enabled="$stats_was"

# naming: the debug line the sensor logs once a deadlock is confirmed
named=""
for _ in 1 2 3 4 5; do
	: > "$T/d.log"
	./reflexd run --journal "$T/j.db" --rules rules/ --dry-run --sensors deadlock \
		--log-level debug > "$T/d.log" 2>&1 &
	D=$!
	for _ in $(seq 200); do grep -q 'info: ready' "$T/d.log" && break; sleep 0.05; done
	build/workloads/deadlock-nofp abba --comm rx-bname > /dev/null &
	WLP=$!
	for _ in $(seq 100); do grep -q 'named 2 threads' "$T/d.log" && break; sleep 0.05; done
	named="$named $(sed -n 's/.*named 2 threads of pid [0-9]* in \([0-9.]*\) ms.*/\1/p' "$T/d.log")"
	kill_bench_wl
	stop_daemon
done

spread() { echo "$1" | tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {printf "%s-%s", a[1], a[NR]}'; }
printf '%-46s %10s %10s %12s\n' "deadlock evidence ($ROUNDS rounds, medians)" "median" "min-max" "vs bare"
b=$(echo "$bare" | median)
printf '%-46s %10s %10s %12s\n' "futex 4 threads, bare (ns/op)" "$b" "$(spread "$bare")" ""
if [ -n "$BASELINE" ]; then
	m=$(echo "$base" | median)
	printf '%-46s %10s %10s %12s\n' "  reflexd without stack capture" "$m" "$(spread "$base")" "$(pct "$b" "$m")"
fi
m=$(echo "$with" | median)
printf '%-46s %10s %10s %12s\n' "  reflexd with stack capture" "$m" "$(spread "$with")" "$(pct "$b" "$m")"
[ -z "$BASELINE" ] || printf '%-46s %10s %10s\n' "scan, per task visited, without capture (ns)" \
	"$(echo "$scan_base" | median)" "$(spread "$scan_base")"
printf '%-46s %10s %10s\n' "scan, per task visited, with capture (ns)" \
	"$(echo "$scan_with" | median)" "$(spread "$scan_with")"
printf '%-46s %10s %10s\n' "naming a confirmed 2-thread deadlock (ms)" \
	"$(echo "$named" | median)" "$(spread "$named")"
