#!/bin/bash
# What the retransmit sensor costs a TCP request/response loop over
# loopback (64-byte request, 64-byte reply, one connection, client and
# server pinned to one CPU), without and with reflexd: the retransmit
# sensor alone (--sensors retransmits) and every sensor. Two measures of
# each run: wall-clock ns per round trip, and the CPU time client and
# server used per round trip, which other jobs on a shared machine do not
# inflate. And the kernel's own accounting of the per-send program.
# Ports 47190-47199.
set -eu
ROUNDS=${ROUNDS:-15}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OPS=${OPS:-30000}
PORT=47190

# One run: "WALL_NS CPU_NS" per round trip on stdout (nothing if it could
# not run).
rr() {
	local srv wall srv_cpu cli_cpu
	taskset -c 1 build/workloads/tcp_stream listen "$PORT" --echo --comm rt-bench-srv --seconds 60 \
		> "$T/srv" 2>&1 &
	srv=$!
	for _ in $(seq 200); do
		grep -q '^ready' "$T/srv" && break
		sleep 0.05
	done
	if grep -q '^ready' "$T/srv"; then
		taskset -c 1 build/workloads/tcp_stream connect "$PORT" --rr "$OPS" --comm rt-bench-cli > "$T/cli"
		# the server ends when the client hangs up
		for _ in $(seq 100); do
			grep -q '^cpu_ns' "$T/srv" && break
			sleep 0.05
		done
		wall=$(sed -n 's/.*ns_per_op=//p' "$T/cli")
		cli_cpu=$(sed -n 's/^cpu_ns=//p' "$T/cli")
		srv_cpu=$(sed -n 's/^cpu_ns=//p' "$T/srv")
		if [ -n "$wall" ] && [ -n "$cli_cpu" ] && [ -n "$srv_cpu" ]; then
			echo "$wall $(awk -v a="$cli_cpu" -v b="$srv_cpu" -v n="$OPS" 'BEGIN {printf "%.0f", (a + b) / n}')"
		fi
	else
		echo "rr server on port $PORT did not start: $(cat "$T/srv")" >&2
	fi
	kill -KILL "$srv" 2>/dev/null || true
	wait "$srv" 2>/dev/null || true
	PORT=$((PORT == 47199 ? 47190 : PORT + 1))
}

# four series of "wall cpu" pairs
off="" on="" all_off="" all_on=""
for _ in $(seq "$ROUNDS"); do
	off="$off $(rr | tr ' ' ,)"
	start_daemon --rules rules/ --dry-run --sensors retransmits
	on="$on $(rr | tr ' ' ,)"
	stop_daemon
	all_off="$all_off $(rr | tr ' ' ,)"
	start_daemon --rules rules/ --dry-run
	all_on="$all_on $(rr | tr ' ' ,)"
	stop_daemon
done
wall() { echo "$1" | tr ' ' '\n' | cut -d, -f1; }
cpu() { echo "$1" | tr ' ' '\n' | grep , | cut -d, -f2; }

# the per-send program's price, from the kernel's BPF run-time statistics
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
start_daemon --rules rules/ --dry-run --sensors retransmits
rr > /dev/null
read -r send_ns send_cnt <<< "$(bpftool prog show name sock_send -j | jq -r '"\(.run_time_ns // 0) \(.run_cnt // 0)"')"
stop_daemon
sysctl -qw kernel.bpf_stats_enabled="$stats_was"

# row LABEL SERIES_OFF SERIES_ON TARGET
compare() {
	local o n
	o=$(echo "$2" | median)
	n=$(echo "$3" | median)
	row "$1" "$o" "$n" "$(pct "$o" "$n")" "$(echo "$2" | iqr)" "$4"
}
compare "TCP req/resp loopback (ns/op), retransmits" "$(wall "$off")" "$(wall "$on")" "< 3%"
compare "  CPU per round trip (ns), retransmits" "$(cpu "$off")" "$(cpu "$on")" "< 3%"
compare "  wall, every sensor running (ns/op)" "$(wall "$all_off")" "$(wall "$all_on")" ""
compare "  CPU, every sensor running (ns)" "$(cpu "$all_off")" "$(cpu "$all_on")" ""
per_send=$(awk -v t="$send_ns" -v c="$send_cnt" 'BEGIN {printf "%.0f", c ? t / c : 0}')
row "  sock_send_length program, per send (ns)" "" "$per_send" "" "" ""
row "  = share of one round trip (2 sends)" "" \
	"$(awk -v s="$per_send" -v p="$(wall "$off" | median)" 'BEGIN {printf "%.2f%%", 2 * s / p * 100}')" "" "" "< 3%"
