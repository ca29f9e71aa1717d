#!/bin/bash
# Traffic shift: what the sk_lookup steering program costs connection
# setup. Two backend servers share one CPU; a client on the other CPU
# connects (then resets) as fast as it can, in turn to each backend's own
# port with no steering program (without), then with reflexd steering the
# service port to the two (with): to the service port, and to the
# backends' own ports, which the program looks up and passes. Rounds
# alternate, and which side goes first too, so drift on a shared machine
# lands on both sides.
# Rates are noisy on a busy machine; the client's CPU time per connection
# (the SYN, and so the listener lookup, is handled in the sender's
# context on loopback) is less so, and the program's own run time
# (kernel.bpf_stats_enabled, on only while this runs) is the precise
# price, set against a connection's setup time without it.
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

for port in $B1 $B2; do
	taskset -c 0 build/workloads/connrate serve $port --comm ts-bench-srv > /dev/null &
	SERVERS="$SERVERS $!"
	disown
done
mkdir -p "$T/rules"
echo 'rule "idle" { when = deadlock { }, where = { comm = "ts-bench-none" }, act = traffic.shift { service = "bench" }, dry_run = true }' > "$T/rules/idle.lua"
sleep 0.3

# measure NAME PORTS: appends "rate cpu_ns" of one run to $T/NAME
measure() { taskset -c 1 build/workloads/connrate "$2" "$SECS" | awk '$2 == 0 { print $1, $3 }' >> "$T/$1"; }
col() { awk -v c="$2" '{ printf "%s ", $c }' "$T/$1"; }

sysctl -q kernel.bpf_stats_enabled=1
prog_ns=0 prog_runs=0
for i in $(seq "$ROUNDS"); do
	if [ $((i % 2)) = 1 ]; then
		rm -f "$PIN"
		measure off $B1,$B2
	fi
	start_daemon --rules "$T/rules" --service "bench=$SVC:$B1,$B2" --sensors deadlock
	measure svc $SVC
	measure passed $B1,$B2
	stats=$(bpftool prog show name steer -j | jq -s -r '[.[] | if type == "array" then .[] else . end] |
		"\(map(.run_time_ns // 0) | add) \(map(.run_cnt // 0) | add)"')
	prog_ns=$((prog_ns + ${stats% *}))
	prog_runs=$((prog_runs + ${stats#* }))
	stop_daemon
	if [ $((i % 2)) = 0 ]; then
		rm -f "$PIN"
		measure off $B1,$B2
	fi
done
rate_off=$(col off 1 | median)
cpu_off=$(col off 2 | median)
for side in svc passed; do
	what=$([ $side = svc ] && echo "service port (steered)" || echo "backend ports (passed)")
	rate=$(col $side 1 | median)
	cpu=$(col $side 2 | median)
	row "connections/s, $what" "$rate_off" "$rate" "$(pct "$rate_off" "$rate")" "$(col off 1 | iqr)" "> -3%"
	row "CPU us per connection, $what" "$(awk -v n="$cpu_off" 'BEGIN { printf "%.1f", n / 1000 }')" \
		"$(awk -v n="$cpu" 'BEGIN { printf "%.1f", n / 1000 }')" "$(pct "$cpu_off" "$cpu")" "$(col off 2 | iqr)" "< +3%"
done
ns=$(awk -v t="$prog_ns" -v n="$prog_runs" 'BEGIN { printf "%.0f", n ? t / n : 0 }')
row "steering program, ns per connection" "-" "${ns}ns" \
	"$(awk -v ns="$ns" -v c="$cpu_off" 'BEGIN { printf "+%.2f%%", ns / c * 100 }')" "-" "< +3%"
