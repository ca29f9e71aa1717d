#!/bin/bash
# What the retransmit sensor costs a TCP request/response loop over
# loopback (64-byte request, 64-byte reply, one connection, client and
# server on one CPU): ns per round trip without and with reflexd, the
# retransmit sensor alone (--sensors retransmits) and every sensor; and the
# kernel's own accounting of the per-send program. Ports 47190-47199.
set -eu
ROUNDS=${ROUNDS:-15}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OPS=${OPS:-30000}
PORT=47190

# One run: ns per round trip on stdout (nothing if it could not run).
rr_ns() {
	local srv
	taskset -c 1 build/workloads/tcp_stream listen "$PORT" --echo --comm rt-bench-srv --seconds 60 \
		> "$T/srv" 2>&1 &
	srv=$!
	for _ in $(seq 200); do
		grep -q '^ready' "$T/srv" && break
		sleep 0.05
	done
	if grep -q '^ready' "$T/srv"; then
		taskset -c 1 build/workloads/tcp_stream connect "$PORT" --rr "$OPS" --comm rt-bench-cli |
			sed -n 's/.*ns_per_op=//p'
	else
		echo "rr server on port $PORT did not start: $(cat "$T/srv")" >&2
	fi
	kill -KILL "$srv" 2>/dev/null || true
	wait "$srv" 2>/dev/null || true
	PORT=$((PORT == 47199 ? 47190 : PORT + 1))
}

off="" on="" all_off="" all_on=""
for _ in $(seq "$ROUNDS"); do
	off="$off $(rr_ns)"
	start_daemon --rules rules/ --dry-run --sensors retransmits
	on="$on $(rr_ns)"
	stop_daemon
	all_off="$all_off $(rr_ns)"
	start_daemon --rules rules/ --dry-run
	all_on="$all_on $(rr_ns)"
	stop_daemon
done

# the per-send program's price, from the kernel's BPF run-time statistics
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
start_daemon --rules rules/ --dry-run --sensors retransmits
rr_ns > /dev/null
read -r send_ns send_cnt <<< "$(bpftool prog show name sock_send -j | jq -r '"\(.run_time_ns // 0) \(.run_cnt // 0)"')"
stop_daemon
sysctl -qw kernel.bpf_stats_enabled="$stats_was"

o=$(echo "$off" | median); n=$(echo "$on" | median)
ao=$(echo "$all_off" | median); an=$(echo "$all_on" | median)
row "TCP req/resp loopback (ns/op), retransmits" "$o" "$n" "$(pct "$o" "$n")" "$(echo "$off" | iqr)" "< 3%"
row "  the same, every sensor running" "$ao" "$an" "$(pct "$ao" "$an")" "$(echo "$all_off" | iqr)" ""
per_send=$(awk -v t="$send_ns" -v c="$send_cnt" 'BEGIN {printf "%.0f", c ? t / c : 0}')
row "  sock_send_length program, per send (ns)" "" "$per_send" "" "" ""
row "  = share of one round trip (2 sends)" "" \
	"$(awk -v s="$per_send" -v p="$o" 'BEGIN {printf "%.2f%%", 2 * s / p * 100}')" "" "" "< 3%"
