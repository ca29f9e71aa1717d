#!/bin/bash
# Big, crowded hosts and event storms (docs/benchmarks.md): reflexd at rest
# on a host with CROWD_PROCS extra processes and CROWD_THREADS extra
# sleeping threads (tests/workloads/crowd.c), then through a storm of
# short processes and context switches. Rows: CPU (% of one core, median
# of three windows and their range), loop lag p99 (the daemon's own
# reflexd_loop_lag_seconds histogram), RSS, the deadlock sensor's BPF run
# time (kernel.bpf_stats_enabled), the deadlock verdict latency on the
# crowded host, and the storm's memory and drop counters.
#
# Run alone: flock /tmp/reflexd-bench.lock flock /tmp/reflexd-live.lock \
#            bash tests/bench/b_bighost.sh
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CROWD_PROCS=${CROWD_PROCS:-10000}
CROWD_THREADS=${CROWD_THREADS:-50000}
WINDOW=${WINDOW:-10}          # seconds; three windows make the 30 s
STORM_SECONDS=${STORM_SECONDS:-60}
STORM_RATE=${STORM_RATE:-1000}
VERDICT_RUNS=${VERDICT_RUNS:-5}
METRICS=127.0.0.1:${BIGHOST_PORT:-48400}
ALL_SENSORS=deadlock,leak,retransmits,goroutines,memory

# the host's limits, raised for the crowd and put back afterwards
pid_max_was=$(sysctl -n kernel.pid_max)
threads_max_was=$(sysctl -n kernel.threads-max)
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
crowd=""
restore_host() {
	if [ -n "$crowd" ]; then kill -TERM "$crowd" 2>/dev/null || true; wait "$crowd" 2>/dev/null || true; fi
	pkill -KILL -f "deadlock abba --comm rx-bighost" 2>/dev/null || true
	sysctl -qw kernel.pid_max="$pid_max_was" kernel.threads-max="$threads_max_was" \
		kernel.bpf_stats_enabled="$stats_was" || true
}
BENCH_CLEANUP=restore_host
need=$(( (CROWD_PROCS + CROWD_THREADS) * 2 + 32768 ))
[ "$pid_max_was" -ge "$need" ] || sysctl -qw kernel.pid_max="$need"
[ "$threads_max_was" -ge "$need" ] || sysctl -qw kernel.threads-max="$need"
ulimit -u unlimited 2>/dev/null || true
sysctl -qw kernel.bpf_stats_enabled=1
make -s build/workloads/crowd build/workloads/deadlock > /dev/null

ticks() { awk '{print $14 + $15}' "/proc/$D/stat"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$D/status"; }
lag_buckets() { curl -s "http://$METRICS/metrics" | awk '/^reflexd_loop_lag_seconds_bucket/'; }
# p99 from two snapshots of the histogram: the upper bound of the bucket
# the 99th percentile of the observations between them falls in (ms)
lag_p99() {
	awk 'NR == FNR {a[$1] = $2; next} {n[++k] = $1; d[k] = $2 - a[$1]}
	     END {tot = d[k]; for (i = 1; i <= k; i++) if (d[i] >= 0.99 * tot) {
	             le = n[i]; sub(/.*le="/, "", le); sub(/".*/, "", le)
	             if (le == "+Inf") print "inf"; else printf "%g\n", le * 1000; exit}}' "$1" "$2"
}
hz=$(getconf CLK_TCK)
# the deadlock sensor's programs' run time so far (ns), summed
deadlock_bpf_ns() {
	bpftool prog show -j | jq '[.[] | select(.name == "futex_switch" or .name == "scan_waits") |
		.run_time_ns // 0] | add // 0'
}

# CPU over three windows, loop lag and the deadlock programs' BPF time
# over the whole 30 s, RSS at the end:
# prints "cpu_median cpu_min cpu_max lag_p99_ms rss_mib bpf_us_per_s"
at_rest() {
	local cpus="" t0 t1 b0
	lag_buckets > "$T/lag0"
	b0=$(deadlock_bpf_ns)
	for _ in 1 2 3; do
		t0=$(ticks)
		sleep "$WINDOW"
		t1=$(ticks)
		cpus="$cpus $(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v w="$WINDOW" 'BEGIN {printf "%.2f", (b - a) / hz / w * 100}')"
	done
	lag_buckets > "$T/lag1"
	echo "$(echo "$cpus" | median) $(echo "$cpus" | tr ' ' '\n' | grep . | sort -g | head -1) \
$(echo "$cpus" | tr ' ' '\n' | grep . | sort -g | tail -1) $(lag_p99 "$T/lag0" "$T/lag1") $(rss_mib) \
$(awk -v a="$b0" -v b="$(deadlock_bpf_ns)" -v w="$WINDOW" 'BEGIN {printf "%.0f", (b - a) / (3 * w) / 1000}')"
}

# reflexd at rest with the given sensors, shipped rules in dry-run (and
# any more options)
rest_row() {
	local sensors=$1
	shift
	start_daemon --rules rules/ --dry-run --metrics "$METRICS" --sensors "$sensors" "$@"
	sleep 2
	at_rest
	stop_daemon
}

read -r small_cpu small_lo small_hi small_lag small_rss small_bpf <<< "$(rest_row "$ALL_SENSORS")"
tasks_small=$(ls /proc | grep -c '^[0-9]')

build/workloads/crowd idle --procs "$CROWD_PROCS" --threads "$CROWD_THREADS" > "$T/crowd" &
crowd=$!
for _ in $(seq 1200); do
	grep -q '^ready' "$T/crowd" && break
	kill -0 "$crowd" 2>/dev/null || { echo "crowd failed" >&2; exit 1; }
	sleep 0.1
done
grep -q '^ready' "$T/crowd" || { echo "crowd not ready in 120 s" >&2; exit 1; }
tasks_big=$(awk '{split($4, a, "/"); print a[2]}' /proc/loadavg)

read -r big_cpu big_lo big_hi big_lag big_rss big_bpf <<< "$(rest_row "$ALL_SENSORS")"
# the deadlock sensor's share: the same host without it
read -r nodl_cpu nodl_lo nodl_hi nodl_lag nodl_rss _ <<< "$(rest_row "${ALL_SENSORS#deadlock,}")"

# a memory rule arms the processes it may match (none here): the shipped
# rules have none
cat > "$T/mem.lua" <<'R'
rule "bighost-rss" { when = memory { rss = "64GiB" }, where = { comm = "rx-*" }, act = signal { "SIGKILL" } }
R
read -r mem_cpu mem_lo mem_hi mem_lag mem_rss _ <<< "$(rest_row "$ALL_SENSORS" --rules "$T/mem.lua")"

# the deadlock verdict on the crowded host: decision time - formed - hold
verdict_latencies "$VERDICT_RUNS"
stop_daemon
kill -TERM "$crowd"
wait "$crowd" 2>/dev/null || true
crowd=""

# the storm: short processes and context switches, every sensor, memory
# sampled each second, the drop counters read at the end
start_daemon --rules rules/ --dry-run --metrics "$METRICS"
sleep 2
storm_rss0=$(rss_mib)
lag_buckets > "$T/lag0"
t0=$(ticks)
build/workloads/crowd storm --spawn-rate "$STORM_RATE" --seconds "$STORM_SECONDS" > "$T/storm" &
storm=$!
rss_max=$storm_rss0
while kill -0 "$storm" 2>/dev/null; do
	rss_max=$(awk -v a="$rss_max" -v b="$(rss_mib)" 'BEGIN {print (b > a) ? b : a}')
	sleep 1
done
wait "$storm"
t1=$(ticks)
lag_buckets > "$T/lag1"
storm_cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$STORM_SECONDS" 'BEGIN {printf "%.1f", (b - a) / hz / s * 100}')
storm_lag=$(lag_p99 "$T/lag0" "$T/lag1")
sleep 5
storm_rss_end=$(rss_mib)
drops=$(curl -s "http://$METRICS/metrics" | awk '/^reflexd_[a-z_]*drop[a-z_]*(\{| )/ && $2 > 0 {printf "%s%s=%s", sep, $1, $2; sep = ", "}')
stop_daemon
storm_spawned=$(sed -n 's/.*spawned=\([0-9]*\).*/\1/p' "$T/storm")
storm_sw=$(sed -n 's/.*switches_per_s=\([0-9]*\).*/\1/p' "$T/storm")

spread() { echo "$1 ($2-$3)"; }
row "host at rest, $tasks_small tasks: CPU (% core)" "" "$(spread "$small_cpu" "$small_lo" "$small_hi")" "" "" "< 1%"
row "  loop lag p99 (ms) / RSS (MiB)" "" "$small_lag / $small_rss" "" "" "< 5 ms"
row "  deadlock sensor's BPF time (us/s)" "" "$small_bpf" "" "" ""
row "crowded, $tasks_big tasks: CPU (% core)" "" "$(spread "$big_cpu" "$big_lo" "$big_hi")" "" "" "< 1%"
row "  without the deadlock sensor" "" "$(spread "$nodl_cpu" "$nodl_lo" "$nodl_hi")" "" "" ""
row "  deadlock sensor's BPF time (us/s)" "$small_bpf" "$big_bpf" "" "" "flat"
row "  loop lag p99 (ms)" "" "$big_lag" "" "" "< 5 ms"
row "  with a memory rule: CPU (% core)" "" "$(spread "$mem_cpu" "$mem_lo" "$mem_hi")" "" "" "< 1%"
row "  with a memory rule: loop lag p99 (ms)" "" "$mem_lag" "" "" "< 5 ms"
row "  RSS (MiB), idle host / crowded" "$small_rss" "$big_rss" "" "" "flat"
row "  deadlock verdict - hold, $VERDICT_RUNS runs (ms)" "p50 $(echo "$lat" | median)" "max $(echo "$lat" | tr ' ' '\n' | grep . | sort -g | tail -1)" "" "" "< 250"
row "storm: $storm_spawned procs in ${STORM_SECONDS}s, $storm_sw sw/s: CPU (% core)" "" "$storm_cpu" "" "" ""
row "  loop lag p99 (ms)" "" "$storm_lag" "" "" "< 5 ms"
row "  RSS (MiB) before / max / 5 s after" "$storm_rss0" "$rss_max / $storm_rss_end" "" "" "bounded"
row "  drops counted" "" "${drops:-none}" "" "" ""
