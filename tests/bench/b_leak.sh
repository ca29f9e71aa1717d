#!/bin/bash
# The leak sensor's price and speed (docs/leak.md): a tight malloc/free
# loop and page faults with and without reflexd (shipped rules, dry-run),
# the same loop while attribution's uprobes are on it, the time from the
# start of an 8 MiB/s leak to the sensor's verdict, and reflexd at rest
# with and without the leak sensor. Rows only; run alone with
# bash tests/bench/b_leak.sh.
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROUNDS=${ROUNDS:-7}
LOOP_OPS=${LOOP_OPS:-20000000}
FAULT_PAGES=${FAULT_PAGES:-500000}
LATENCY_RUNS=${LATENCY_RUNS:-3}
WL=""
kill_wl() { if [ -n "$WL" ]; then kill -KILL "$WL" 2>/dev/null || true; fi; }
BENCH_CLEANUP=kill_wl
mg() { taskset -c 1 build/workloads/memgrow "$@" --comm lk-bench; }

loop_off="" loop_on="" fault_off="" fault_on=""
for _ in $(seq "$ROUNDS"); do
	loop_off="$loop_off $(mg loop --ops "$LOOP_OPS" | sed -n 's/^ns_per_op=//p')"
	fault_off="$fault_off $(mg faults --ops "$FAULT_PAGES" | sed -n 's/^ns_per_page=//p')"
	start_daemon --rules rules/ --dry-run
	loop_on="$loop_on $(mg loop --ops "$LOOP_OPS" | sed -n 's/^ns_per_op=//p')"
	fault_on="$fault_on $(mg faults --ops "$FAULT_PAGES" | sed -n 's/^ns_per_page=//p')"
	stop_daemon
done
lo=$(echo "$loop_off" | median); ln=$(echo "$loop_on" | median)
fo=$(echo "$fault_off" | median); fn=$(echo "$fault_on" | median)
row "malloc+free(64), tight loop (ns/op)" "$lo" "$ln" "$(pct "$lo" "$ln")" "$(echo "$loop_off" | iqr)" "< 1%"
row "page fault, first touch (ns/page)" "$fo" "$fn" "$(pct "$fo" "$fn")" "$(echo "$fault_off" | iqr)" ""

# The exact price where the sensor sits, from the kernel's own BPF run-time
# accounting: per rss_stat event (about one per page fault).
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
start_daemon --rules rules/ --dry-run
mg faults --ops "$FAULT_PAGES" > /dev/null
prog_ns() {
	bpftool prog show name "$1" -j | jq -r 'if .run_cnt > 0 then .run_time_ns / .run_cnt else 0 end | floor'
}
rss_ns=$(prog_ns rss_stat)
stop_daemon
sysctl -qw kernel.bpf_stats_enabled="$stats_was"
row "  rss_stat program, per event (ns)" "" "$rss_ns" "" "" ""

# Attribution: the loop runs in batches while a thread leaks 16 MiB/s;
# a short window finds the leak soon, then 10 s of uprobes. Batches
# before the verdict against batches while the uprobes are attached.
start_daemon --rules rules/ --dry-run --leak-window 4s --leak-attribution 10s
# (taskset execs: $! is the workload itself)
taskset -c 1 build/workloads/memgrow leakloop --rate 16 --ops 200000 --comm lk-bench > "$T/ll" 2>&1 &
WL=$!
disown
attached="" detached=""
for _ in $(seq 600); do
	if [ -z "$attached" ] && grep -q "pid $WL (lk-bench): tracing" "$T/d.log"; then attached=$(date +%s%N); fi
	if grep -q "pid $WL (lk-bench): [0-9]* calls" "$T/d.log"; then detached=$(date +%s%N); break; fi
	sleep 0.05
done
kill_wl
WL=""
stop_daemon
[ -n "$attached" ] && [ -n "$detached" ] || { echo "b_leak: attribution never ran: $(tail -3 "$T/d.log")" >&2; exit 1; }
batches() { awk -v a="$1" -v b="$2" '/^batch/ { split($2, t, "="); split($3, n, "="); if (t[2] > a && t[2] < b) print n[2] }' "$T/ll"; }
before=$(batches 0 $((attached - 2000000000)) | tail -20 | median)
during=$(batches $((attached + 500000000)) $((detached - 500000000)) | median)
row "  same loop while attributing (ns/op)" "$before" "$during" "$(pct "$before" "$during")" "" "bounded"
row "  = per traced call (ns)" "" "$(awk -v a="$before" -v b="$during" 'BEGIN {printf "%.0f", (b - a) / 2}')" "" "" ""

# Detection latency: from the start of an 8 MiB/s leak (the workload's own
# clock) to the leak condition in the recorded trace, default window.
lat=""
for _ in $(seq "$LATENCY_RUNS"); do
	start_daemon --rules rules/ --dry-run --record "$T/rec.trace" --leak-attribution 0
	build/workloads/memgrow leak --comm lk-bench --rate 8 --limit 400 > "$T/wl" &
	WL=$!
	disown
	wait_line "$T/d.log" "leak in pid $WL " 30 || true
	kill_wl
	WL=""
	stop_daemon
	t0=$(sed -n 's/^ready.*realtime_ns=//p' "$T/wl")
	start=$(sed -n 's/^reflexd-trace 1 start=\([0-9]*\)\.\([0-9]*\).*/\1\2/p' "$T/rec.trace")
	t=$(awk '$2 == "raise" && $4 == "leak" && / comm=lk-bench / { print $1; exit }' "$T/rec.trace")
	[ -n "$t" ] || { echo "b_leak: no leak found: $(tail -3 "$T/d.log")" >&2; exit 1; }
	lat="$lat $(awk -v t="$t" -v s="$start" -v t0="$t0" 'BEGIN { printf "%.1f", s / 1e9 + t - t0 / 1e9 }')"
done
lat_max=$(echo "$lat" | tr ' ' '\n' | grep . | sort -g | tail -1)
row "leak 8 MiB/s to verdict, window 20 s (s)" "p50 $(echo "$lat" | median)" "max $lat_max" "" "" "<= 25"

# reflexd at rest: without the leak sensor and with it.
idle() {
	start_daemon --rules rules/ --dry-run "$@"
	sleep 2
	local t0 t1
	t0=$(awk '{print $14 + $15}' "/proc/$D/stat")
	sleep 10
	t1=$(awk '{print $14 + $15}' "/proc/$D/stat")
	echo "$(awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b - a) / hz / 10 * 100}') $(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$D/status")"
	stop_daemon
}
read -r cpu_off rss_off <<< "$(idle --sensors deadlock)"
read -r cpu_on rss_on <<< "$(idle)"
row "reflexd idle CPU, leak sensor off/on (%)" "$cpu_off" "$cpu_on" "" "" "low"
row "reflexd idle RSS, leak sensor off/on (MiB)" "$rss_off" "$rss_on" "" "" "low"
