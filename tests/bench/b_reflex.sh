#!/bin/bash
# Reflex-arc latency: from the moment the BPF program sees a process's
# resident memory cross its threshold (crossed_mono_ns in the record's
# evidence) to the kernel delivering the SIGKILL (signal:signal_deliver,
# read with bpftrace on the same clock), for the same rule run in the
# kernel (in_kernel = true) and through userspace (condition, engine,
# journal write-ahead, pidfd_send_signal).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RUNS=${RUNS:-20}
THRESHOLD_MIB=32
BT=""
stop_bpftrace() { [ -z "$BT" ] || kill -INT "$BT" 2>/dev/null; }
BENCH_CLEANUP=stop_bpftrace

cat > "$T/rules.lua" <<R
rule "arc-kernel" {
  when = memory { rss = "${THRESHOLD_MIB}MiB" }, where = { comm = "rx-bk" },
  act = signal { "SIGKILL" }, in_kernel = true,
}
rule "arc-user" {
  when = memory { rss = "${THRESHOLD_MIB}MiB" }, where = { comm = "rx-bu" },
  act = signal { "SIGKILL" },
}
R
# generated: when the SIGKILL was sent (to pid); delivered: when the target
# took it, which also waits for it to get a CPU back
bpftrace -e 'tracepoint:signal:signal_generate /args->sig == 9 &&
	(args->comm == "rx-bk" || args->comm == "rx-bu")/ { printf("sent %d %llu\n", args->pid, nsecs); }
	tracepoint:signal:signal_deliver /args->sig == 9 && (comm == "rx-bk" || comm == "rx-bu")/
	{ printf("delivered %d %llu\n", pid, nsecs); }' > "$T/trace" 2> "$T/bt.err" &
BT=$!
wait_line "$T/trace" Attaching 10 || { echo "bpftrace did not start: $(cat "$T/bt.err")" >&2; exit 1; }
# every run is an action: the global budget must not stop them
start_daemon --rules "$T/rules.lua" --log-level debug --budget-max 1000000

# one_run COMM: a process armed, let go, grown past the threshold, killed.
one_run() {
	rm -f "$T/go"
	./build/workloads/grow --comm "$1" --rate 256 --max $((THRESHOLD_MIB * 4)) --go "$T/go" \
		> /dev/null 2>&1 &
	pid=$!
	wait_line "$T/d.log" "memory: pid $pid ($1) armed" 5 || true
	touch "$T/go"
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	# not killed (not armed): the run is left out of the numbers
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
for _ in $(seq "$RUNS"); do
	# bash reports each killed job on stderr: not a result
	one_run rx-bk 2> /dev/null
	one_run rx-bu 2> /dev/null
done
# the program's cost on every resident-memory change of every process,
# here a process it does not watch: the kernel's own run-time accounting
stats=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
./build/workloads/grow --comm rx-bn --rate 100000 --max 256 > "$T/bn.out" 2>&1 &
bn=$!
for _ in $(seq 200); do
	grep -q '^done' "$T/bn.out" && break
	sleep 0.05
done
kill -KILL "$bn" 2>/dev/null
wait "$bn" 2> /dev/null || true
per_call=$(bpftool prog show name rss_stat --json |
	jq -r 'if .run_cnt > 0 then .run_time_ns / .run_cnt | floor else "?" end')
calls=$(bpftool prog show name rss_stat --json | jq -r .run_cnt)
sysctl -qw kernel.bpf_stats_enabled="$stats"
sleep 0.5
stop_bpftrace
wait "$BT" 2>/dev/null || true
BT=""
stop_daemon

# latencies RULE EVENT: milliseconds from the crossing to the first EVENT
# (sent, delivered) for the process, one line per run
latencies() {
	./reflexd audit --journal "$T/j.db" --json --rule "$1" |
		jq -r 'select(.outcome == "acted") | "\(.pid) \(.evidence.crossed_mono_ns)"' |
		awk -v ev="$2" 'NR == FNR { if ($1 == ev && !($2 in at)) at[$2] = $3; next }
		     ($1 in at) { printf "%.3f\n", (at[$1] - $2) / 1e6 }' "$T/trace" -
}
# p99 by nearest rank: with 20 runs, the largest
p99() { sort -g | awk '{a[NR] = $1} END {i = int(NR * 0.99); if (i < NR * 0.99) i++; print a[i]}'; }
kd=$(latencies arc-kernel delivered)
ks=$(latencies arc-kernel sent)
ud=$(latencies arc-user delivered)
us=$(latencies arc-user sent)
if [ -n "${VERBOSE:-}" ]; then
	for v in kd ks ud us; do echo "$v:" $(echo "${!v}" | sort -g); done
fi
row "reflex arc in kernel, $(echo "$kd" | grep -c .)/$RUNS runs: crossing→SIGKILL delivered (ms)" \
	"p50 $(echo "$kd" | median)" "p99 $(echo "$kd" | p99)" "" "" "p99 < 1"
row "  crossing→SIGKILL sent (ms)" "p50 $(echo "$ks" | median)" "p99 $(echo "$ks" | p99)" "" "" ""
row "same rule via userspace, $(echo "$ud" | grep -c .)/$RUNS runs: →delivered (ms)" \
	"p50 $(echo "$ud" | median)" "p99 $(echo "$ud" | p99)" "" "" "p99 < 20"
row "  crossing→SIGKILL sent (ms)" "p50 $(echo "$us" | median)" "p99 $(echo "$us" | p99)" "" "" ""
row "rss_stat program, per call (ns; $calls calls)" "" "$per_call" "" "" ""
