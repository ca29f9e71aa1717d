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
LATENCY_RUNS=${LATENCY_RUNS:-10}
PIPE_LOOPS=${PIPE_LOOPS:-20000}
FUTEX_OPS=${FUTEX_OPS:-10000000}
. tests/bench/lib.sh

pipe_ns() {
	perf bench sched pipe -l "$PIPE_LOOPS" 2>/dev/null | awk '/usecs\/op/ {printf "%.0f\n", $1 * 1000}'
}

futex_ns() {
	build/workloads/futex_bench --threads 4 --ops "$FUTEX_OPS" | sed 's/.*ns_per_op=//'
}

# One futex(2) call that does not sleep, and one unrelated syscall,
# single-threaded on one CPU: the per-call price of the sensor, free of the
# scheduling noise that dominates the contention benchmark.
syscall_ns() {
	taskset -c 1 build/workloads/syscall_cost "$1" | sed 's/.*ns_per_call=//'
}

wait_ns() { syscall_ns futex-wait; }
ppid_ns() { syscall_ns getppid; }
abab pipe_ns futex_ns wait_ns ppid_ns

# The sensor's price per context switch, from the kernel's own BPF
# run-time accounting: free of the wall clock's noise, but with the
# accounting's two clock reads in it (most of it on this VM) and without
# the tracepoint's dispatch; b_retransmits.sh measures it amplified.
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
start_daemon --rules rules/ --dry-run
pipe_ns > /dev/null
prog_stat() {
	bpftool prog show name "$1" -j | jq -r '"\(.run_time_ns // 0) \(.run_cnt // 0)"'
}
read -r switch_ns switch_cnt <<< "$(prog_stat futex_switch)"
read -r scan_ns scan_cnt <<< "$(prog_stat scan_waits)"
stop_daemon
sysctl -qw kernel.bpf_stats_enabled="$stats_was"
per_switch=$(awk -v t="$switch_ns" -v n="$switch_cnt" 'BEGIN {printf "%.0f", n ? t / n : 0}')
per_task=$(awk -v t="$scan_ns" -v n="$scan_cnt" 'BEGIN {printf "%.0f", n ? t / n : 0}')

# Futex syscalls per operation: how much of the benchmark is the contended
# path the sensor sits on.
futex_calls=$(perf stat -x, -e syscalls:sys_enter_futex build/workloads/futex_bench --threads 4 \
	--ops "$FUTEX_OPS" 2>&1 >/dev/null | awk -F, '/sys_enter_futex/ {print $1}')

# Detection latency: from the moment the deadlock forms (the workload's own
# clock) to the decision record, minus hold.
verdict_latencies "$LATENCY_RUNS"

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

# Rule evaluation: the engine alone, pinned to one core, median of 5 runs;
# evaluations that decide nothing, and evaluations ending in a decision.
eng_rate="" eng_p99="" dec_rate="" dec_p99=""
field() { echo "$1" | sed "s/.*$2=\([0-9.]*\).*/\1/"; }
for _ in 1 2 3 4 5; do
	line=$(taskset -c 1 build/bench/engine_bench --conditions 400000)
	eng_rate="$eng_rate $(field "$line" evals_per_s)"
	eng_p99="$eng_p99 $(field "$line" p99_us)"
	line=$(taskset -c 1 build/bench/engine_bench --conditions 100000 --decide)
	dec_rate="$dec_rate $(field "$line" evals_per_s)"
	dec_p99="$dec_p99 $(field "$line" p99_us)"
done

# The simulator: generated traces over a virtual day against 50 rules; its
# memory must not grow with the trace (a 5x longer one, same memory).
sim_run() {
	sh tests/bench/gen_trace.sh "$1" > "$T/sim.trace"
	/usr/bin/time -o "$T/sim.time" -f "%U %M" ./reflexd simulate --trace "$T/sim.trace" \
		--rules tests/bench/sim_rules.lua --json > /dev/null || { echo "simulate failed" >&2; exit 1; }
	cat "$T/sim.time"
}
SIM_N=${SIM_N:-10000000}
read -r sim_small_s sim_small_kib <<< "$(sim_run 1000000)"
read -r sim_s sim_kib <<< "$(sim_run "$SIM_N")"
rm -f "$T/sim.trace"

po=$(echo "$pipe_ns_bare" | median); pn=$(echo "$pipe_ns_rflx" | median)
fo=$(echo "$futex_ns_bare" | median); fn=$(echo "$futex_ns_rflx" | median)
wo=$(echo "$wait_ns_bare" | median); wn=$(echo "$wait_ns_rflx" | median)
go=$(echo "$ppid_ns_bare" | median); gn=$(echo "$ppid_ns_rflx" | median)
lat_p50=$(echo "$lat" | median)
lat_max=$(echo "$lat" | tr ' ' '\n' | grep . | sort -g | tail -1)

echo
row "benchmark ($ROUNDS rounds, medians)" "without" "with reflexd" "change" "noise" "target"
row "perf bench sched pipe (ns/op)" "$po" "$pn" "$(pct "$po" "$pn")" "$(echo "$pipe_ns_bare" | iqr)" "< 3%"
row "futex contention, 4 threads (ns/op)" "$fo" "$fn" "$(pct "$fo" "$fn")" "$(echo "$futex_ns_bare" | iqr)" "< 3%"
row "futex(2) call that does not sleep (ns)" "$wo" "$wn" "$(pct "$wo" "$wn")" "$(echo "$wait_ns_bare" | iqr)" ""
row "getppid(2), not watched (ns)" "$go" "$gn" "$(pct "$go" "$gn")" "$(echo "$ppid_ns_bare" | iqr)" ""
row "sched_switch program, accounted (ns)" "" "$per_switch" "" "" ""
row "  = share of one pipe round trip (2 sw.)" "" "$(awk -v s="$per_switch" -v p="$pn" 'BEGIN {printf "%.3f%%", 2 * s / p * 100}')" "" "" ""
row "scan iterator, per task visited (ns)" "" "$per_task" "" "" ""
row "  futex syscalls per op in that run" "$(awk -v c="$futex_calls" -v n="$FUTEX_OPS" 'BEGIN {printf "%.3f", c / n}')" "" "" "" ""
row "detection latency - hold, $LATENCY_RUNS runs (ms)" "p50 $lat_p50" "max $lat_max" "" "" "< 250"
row "rule evaluations/s, 100 rules, 50 in Lua" "" "$(echo "$eng_rate" | median)" "" "" ">= 200000"
row "  p99 evaluation latency (us)" "" "$(echo "$eng_p99" | median)" "" "" "< 50"
row "  ending in a decision: per second" "" "$(echo "$dec_rate" | median)" "" "" ""
row "  ending in a decision: p99 (us)" "" "$(echo "$dec_p99" | median)" "" "" "< 50"
row "simulate: conditions/s, $((SIM_N / 1000000))M over a day, 50 rules" "" "$(awk -v s="$sim_s" -v n="$SIM_N" 'BEGIN {printf "%.0f", n / s}')" "" "" ">= 1000000"
row "  max RSS for 1M / $((SIM_N / 1000000))M conditions (MiB)" "$(awk -v k="$sim_small_kib" 'BEGIN {printf "%.1f", k / 1024}')" "$(awk -v k="$sim_kib" 'BEGIN {printf "%.1f", k / 1024}')" "" "" "flat"
row "reflexd idle CPU (% of one core)" "" "$idle_cpu" "" "" ""
row "reflexd RSS (MiB)" "" "$rss" "" "" ""
for b in tests/bench/b_*.sh; do
	if [ -e "$b" ]; then bash "$b"; fi
done
