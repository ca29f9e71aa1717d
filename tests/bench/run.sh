#!/bin/bash
# make bench: what reflexd costs the workloads it watches, how fast it
# detects a deadlock, and what it costs itself. Prints a table; the numbers
# go to docs/benchmarks.md.
#
# Overhead runs alternate without and with reflexd (shipped rules, dry-run)
# for ROUNDS rounds and compare medians, so drift on a shared machine
# lands on both sides.
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-7}
LATENCY_RUNS=${LATENCY_RUNS:-10}
PIPE_LOOPS=${PIPE_LOOPS:-20000}
FUTEX_OPS=${FUTEX_OPS:-10000000}
T=$(mktemp -d /tmp/reflexd-bench.XXXXXX)
D=""
trap '[ -n "$D" ] && kill -KILL $D 2>/dev/null; pkill -KILL -f "deadlock abba --comm rx-bench" 2>/dev/null; rm -rf "$T"' EXIT

start_daemon() {
	: > "$T/d.log"
	./reflexd run --journal "$T/j.db" "$@" > "$T/d.log" 2>&1 &
	D=$!
	for _ in $(seq 200); do
		grep -q 'info: ready' "$T/d.log" && return 0
		sleep 0.05
	done
	echo "reflexd did not start: $(cat "$T/d.log")" >&2
	exit 1
}

stop_daemon() {
	kill -TERM "$D"
	wait "$D"
	D=""
}

median() {
	tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

pipe_ns() {
	perf bench sched pipe -l "$PIPE_LOOPS" 2>/dev/null | awk '/usecs\/op/ {printf "%.0f\n", $1 * 1000}'
}

futex_ns() {
	build/workloads/futex_bench --threads 4 --ops "$FUTEX_OPS" | sed 's/.*ns_per_op=//'
}

pipe_off="" pipe_on="" futex_off="" futex_on=""
for _ in $(seq "$ROUNDS"); do
	pipe_off="$pipe_off $(pipe_ns)"
	futex_off="$futex_off $(futex_ns)"
	start_daemon --rules rules/ --dry-run
	pipe_on="$pipe_on $(pipe_ns)"
	futex_on="$futex_on $(futex_ns)"
	stop_daemon
done

# Futex syscalls per operation: how much of the benchmark is the contended
# path the sensor sits on.
futex_calls=$(perf stat -x, -e syscalls:sys_enter_futex build/workloads/futex_bench --threads 4 \
	--ops "$FUTEX_OPS" 2>&1 >/dev/null | awk -F, '/sys_enter_futex/ {print $1}')

# Detection latency: from the moment the deadlock forms (the workload's own
# clock) to the decision record, minus hold.
cat > "$T/bench.lua" <<'R'
rule "bench" { when = deadlock { }, where = { comm = "rx-bench" }, hold = "1s", act = signal { "SIGKILL" } }
R
start_daemon --rules "$T/bench.lua"
lat=""
for i in $(seq "$LATENCY_RUNS"); do
	build/workloads/deadlock abba --comm rx-bench > "$T/wl" &
	wl=$!
	for _ in $(seq 100); do
		grep -q '^formed' "$T/wl" && break
		sleep 0.05
	done
	formed=$(sed -n 's/.*realtime_ns=//p' "$T/wl")
	for _ in $(seq 100); do
		t=$(./reflexd audit --journal "$T/j.db" --json --pid "$wl" | jq -r 'select(.outcome == "acted") | .time_unix_nano')
		[ -n "$t" ] && break
		sleep 0.05
	done
	wait "$wl" 2>/dev/null || true
	[ -n "$t" ] || { echo "run $i: no decision" >&2; exit 1; }
	lat="$lat $(( (t - formed) / 1000 - 1000000 ))"
done

# reflexd at rest on this host: CPU over 10 s and resident memory.
stop_daemon
start_daemon --rules rules/ --dry-run
sleep 1
ticks() { awk '{print $14 + $15}' "/proc/$D/stat"; }
t0=$(ticks)
sleep 10
t1=$(ticks)
hz=$(getconf CLK_TCK)
idle_cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz / 10 * 100}')
rss=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$D/status")
stop_daemon

pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.1f%%", (b - a) / a * 100}'; }
po=$(echo "$pipe_off" | median); pn=$(echo "$pipe_on" | median)
fo=$(echo "$futex_off" | median); fn=$(echo "$futex_on" | median)
lat_p50=$(echo "$lat" | median)
lat_max=$(echo "$lat" | tr ' ' '\n' | grep . | sort -g | tail -1)

printf '\n%-46s %14s %14s %10s %10s\n' "benchmark ($ROUNDS rounds, medians)" "without" "with reflexd" "change" "target"
printf '%-46s %14s %14s %10s %10s\n' "perf bench sched pipe (ns/op)" "$po" "$pn" "$(pct "$po" "$pn")" "< 3%"
printf '%-46s %14s %14s %10s %10s\n' "futex contention, 4 threads (ns/op)" "$fo" "$fn" "$(pct "$fo" "$fn")" "< 3%"
printf '%-46s %14s\n' "  futex syscalls per op in that benchmark" "$(awk -v c="$futex_calls" -v n="$FUTEX_OPS" 'BEGIN {printf "%.3f", c / n}')"
printf '%-46s %14s %14s %10s %10s\n' "detection latency - hold, $LATENCY_RUNS runs (us)" "p50 $lat_p50" "max $lat_max" "" "< 250000"
printf '%-46s %14s\n' "reflexd idle CPU (% of one core)" "$idle_cpu"
printf '%-46s %14s\n' "reflexd RSS (MiB)" "$rss"
