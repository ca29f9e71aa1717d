#!/bin/bash
# The deadlock evidence's cost: 4 threads on one mutex (futex_bench) bare,
# under a reflexd with --no-stacks (no registers copied, nothing unwound,
# tids and addresses only) and under the same reflexd with its stacks, in
# ABAB rounds (bare, without, with, then again); optionally BASELINE= an
# older build as a fourth column. Then the scan programs' run time a
# second with one deadlocked process (whose two threads are the only
# long waits: the only records with registers), without and with the
# stacks; and the time to name a confirmed deadlock. Only the deadlock
# sensor runs, so the rows measure it alone.
#
# Run alone: flock -o /tmp/reflexd-bench.lock flock -o /tmp/reflexd-live.lock \
#            bash tests/bench/b_deadlock.sh
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
FUTEX_OPS=${FUTEX_OPS:-10000000}
BASELINE=${BASELINE:-}
SCAN_SECONDS=${SCAN_SECONDS:-5}
WLP=""
kill_bench_wl() {
	[ -z "$WLP" ] || kill -KILL "$WLP" 2>/dev/null || true
	[ -z "$WLP" ] || wait "$WLP" 2>/dev/null || true
	WLP=""
}
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
restore_stats() { sysctl -qw kernel.bpf_stats_enabled="$stats_was"; }
BENCH_CLEANUP="kill_bench_wl restore_stats"
make -s build/workloads/futex_bench build/workloads/deadlock-nofp > /dev/null

futex_ns() {
	build/workloads/futex_bench --threads 4 --ops "$FUTEX_OPS" | sed 's/.*ns_per_op=//'
}

# start BINARY [OPTION...]: a daemon of that build with only the deadlock sensor
start() {
	local bin=$1
	shift
	REFLEXD_BIN=$bin start_daemon --rules rules/ --dry-run --sensors deadlock "$@"
}

# under BINARY [OPTION...]: futex_bench's ns/op under that daemon
under() {
	start "$@"
	futex_ns
	stop_daemon
}

bare="" base="" without="" with=""
for _ in $(seq "$ROUNDS"); do
	bare="$bare $(futex_ns)"
	[ -z "$BASELINE" ] || base="$base $(under "$BASELINE")"
	without="$without $(under ./reflexd --no-stacks)"
	with="$with $(under ./reflexd)"
done

# scan_us [OPTION...]: the deadlock programs' run time a second (us/s,
# kernel.bpf_stats_enabled) over SCAN_SECONDS, with one deadlocked process
scan_us() {
	local before ids
	before=$(bpf_prog_ids)
	start ./reflexd "$@"
	ids=$(comm -13 <(echo "$before") <(bpf_prog_ids) | paste -sd, -)
	build/workloads/deadlock-nofp abba --comm rx-bname > /dev/null &
	WLP=$!
	sleep 1
	bpf_snapshot "$ids" > "$T/scan0"
	sleep "$SCAN_SECONDS"
	bpf_snapshot "$ids" > "$T/scan1"
	# the deadlock sensor's two programs, of all the daemon loaded
	awk -v s="$SCAN_SECONDS" '$1 != "futex_switch" && $1 != "scan_waits" {next}
		NR == FNR {t -= $2; next} {t += $2} END {printf "%.1f\n", t / s / 1000}' "$T/scan0" "$T/scan1"
	kill_bench_wl
	stop_daemon
}

sysctl -qw kernel.bpf_stats_enabled=1
scan_without="" scan_with=""
for _ in 1 2 3; do
	scan_without="$scan_without $(scan_us --no-stacks)"
	scan_with="$scan_with $(scan_us)"
done
restore_stats

# naming: the debug line the sensor logs once a deadlock is confirmed
named=""
for _ in 1 2 3 4 5; do
	start ./reflexd --log-level debug
	build/workloads/deadlock-nofp abba --comm rx-bname > /dev/null &
	WLP=$!
	wait_line "$T/d.log" 'named 2 threads' 5 || true
	named="$named $(sed -n 's/.*named 2 threads of pid [0-9]* in \([0-9.]*\) ms.*/\1/p' "$T/d.log")"
	kill_bench_wl
	stop_daemon
done

spread() { echo "$1" | tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {printf "%s-%s", a[1], a[NR]}'; }
printf '%-50s %10s %14s %10s\n' "deadlock evidence ($ROUNDS ABAB rounds, medians)" "median" "min-max" "vs bare"
b=$(echo "$bare" | median)
printf '%-50s %10s %14s %10s\n' "futex 4 threads, one mutex, bare (ns/op)" "$b" "$(spread "$bare")" \
	"iqr $(echo "$bare" | iqr)"
if [ -n "$BASELINE" ]; then
	m=$(echo "$base" | median)
	printf '%-50s %10s %14s %10s\n' "  reflexd BASELINE ($BASELINE)" "$m" "$(spread "$base")" "$(pct "$b" "$m")"
fi
m=$(echo "$without" | median)
printf '%-50s %10s %14s %10s\n' "  reflexd --no-stacks" "$m" "$(spread "$without")" "$(pct "$b" "$m")"
m=$(echo "$with" | median)
printf '%-50s %10s %14s %10s\n' "  reflexd with stacks" "$m" "$(spread "$with")" "$(pct "$b" "$m")"
printf '%-50s %10s %14s\n' "deadlock programs, one deadlock, --no-stacks (us/s)" \
	"$(echo "$scan_without" | median)" "$(spread "$scan_without")"
printf '%-50s %10s %14s\n' "  with stacks (us/s)" "$(echo "$scan_with" | median)" "$(spread "$scan_with")"
printf '%-50s %10s %14s\n' "naming a confirmed 2-thread deadlock (ms)" \
	"$(echo "$named" | median)" "$(spread "$named")"
