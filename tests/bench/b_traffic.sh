#!/bin/bash
# Traffic shift: what the sk_lookup steering program costs connection
# setup. Each round measures connections per second to a backend's own
# port with no steering program (without), then with reflexd steering the
# service port (with): to the service port, and to the backend's port,
# which the program looks up and passes. The service's second backend
# does not listen, so every connection ends at the same one server as
# without (half of them after the program's fallback), and the client and
# the server each keep a CPU of their own. Rounds alternate, so drift on a
# shared machine lands on both sides. On a busy machine the rates are
# noisy; the program's own run time (kernel.bpf_stats_enabled, on only
# while this runs) is not, and is the precise price: it is set against
# the time a connection takes to set up without it.
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SECS=${SECS:-1}
SVC=47310 B1=47311 B2=47312
PIN=/sys/fs/bpf/reflexd-traffic
SERVERS=""
STATS=$(sysctl -n kernel.bpf_stats_enabled)
stop_servers() {
	for p in $SERVERS; do kill -KILL "$p" 2>/dev/null || true; done
	rm -f "$PIN"
	sysctl -q kernel.bpf_stats_enabled="$STATS"
}
BENCH_CLEANUP=stop_servers

taskset -c 0 build/workloads/connrate serve $B1 --comm ts-bench-srv > /dev/null &
SERVERS=$!
disown
mkdir -p "$T/rules"
echo 'rule "idle" { when = deadlock { }, where = { comm = "ts-bench-none" }, act = traffic.shift { service = "bench" }, dry_run = true }' > "$T/rules/idle.lua"
sleep 0.3

rate() { taskset -c 1 build/workloads/connrate "$1" "$SECS" | awk '$2 == 0 { print $1 }'; }

sysctl -q kernel.bpf_stats_enabled=1
off="" svc="" direct="" prog_ns=0 prog_runs=0
for i in $(seq "$ROUNDS"); do
	# which side goes first alternates too
	if [ $((i % 2)) = 1 ]; then
		rm -f "$PIN"
		off="$off $(rate $B1)"
	fi
	start_daemon --rules "$T/rules" --service "bench=$SVC:$B1,$B2" --sensors deadlock
	svc="$svc $(rate $SVC)"
	direct="$direct $(rate $B1)"
	stats=$(bpftool prog show name steer -j | jq -s -r '[.[] | if type == "array" then .[] else . end] | "\(map(.run_time_ns // 0) | add) \(map(.run_cnt // 0) | add)"')
	prog_ns=$((prog_ns + ${stats% *}))
	prog_runs=$((prog_runs + ${stats#* }))
	stop_daemon
	if [ $((i % 2)) = 0 ]; then
		rm -f "$PIN"
		off="$off $(rate $B1)"
	fi
done
m_off=$(echo "$off" | median)
m_svc=$(echo "$svc" | median)
m_direct=$(echo "$direct" | median)
noise=$(echo "$off" | iqr)
row "connections/s, service port (steered)" "$m_off" "$m_svc" "$(pct "$m_off" "$m_svc")" "$noise" "> -3%"
row "connections/s, other port (passed)" "$m_off" "$m_direct" "$(pct "$m_off" "$m_direct")" "$noise" "> -3%"
# the program's ns per connection, as a share of a connection's setup time without it
ns=$(awk -v t="$prog_ns" -v n="$prog_runs" 'BEGIN { printf "%.0f", n ? t / n : 0 }')
row "steering program, ns per connection" "-" "${ns}ns" "$(awk -v ns="$ns" -v r="$m_off" 'BEGIN { printf "+%.2f%%", ns * r / 1e9 * 100 }')" "-" "< 3%"
