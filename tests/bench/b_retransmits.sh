#!/bin/bash
# What reflexd costs a TCP request/response loop over loopback (64-byte
# request, 64-byte reply, one connection, client and server pinned to one
# CPU): bare, with the retransmit sensor alone (--sensors retransmits) and
# with every sensor, in alternating rounds. Two measures of each run:
# wall-clock ns per round trip, and the CPU time client and server used per
# round trip (tcp_rr in lib.sh). Then the kernel's own accounting of every
# BPF program reflexd loaded, over one loop: what runs per round trip.
# Ports 49320-49329.
set -eu
ROUNDS=${ROUNDS:-15}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RR_PORT=49320

# four series of "wall,cpu" pairs
off="" on="" all_off="" all_on=""
for _ in $(seq "$ROUNDS"); do
	off="$off $(tcp_rr | tr ' ' ,)"
	start_daemon --rules rules/ --dry-run --sensors retransmits
	on="$on $(tcp_rr | tr ' ' ,)"
	stop_daemon
	all_off="$all_off $(tcp_rr | tr ' ' ,)"
	start_daemon --rules rules/ --dry-run
	all_on="$all_on $(tcp_rr | tr ' ' ,)"
	stop_daemon
done
wall() { echo "$1" | tr ' ' '\n' | cut -d, -f1; }
cpu() { echo "$1" | tr ' ' '\n' | grep , | cut -d, -f2; }

# BPF run time per round trip of the programs one daemon loaded (those
# that were not loaded before it), from the kernel's run-time statistics:
# "NS RUNS" per round trip; and in $T/by_prog, "NAME=NS" per round trip
# of the three largest
bpf_per_rt() {
	local before ids
	before=$(bpf_prog_ids)
	start_daemon --rules rules/ --dry-run "$@"
	ids=$(comm -13 <(echo "$before") <(bpf_prog_ids) | paste -sd, -)
	bpf_snapshot "$ids" > "$T/p0"
	tcp_rr > /dev/null
	bpf_snapshot "$ids" > "$T/p1"
	stop_daemon
	bpf_top "$T/p0" "$T/p1" "$RR_OPS" > "$T/by_prog"
	awk -v o="$RR_OPS" 'NR == FNR {n[$1] -= $3; next} {n[$1] += $3}
		END {for (p in n) if (n[p] / o >= 0.5) print p}' "$T/p0" "$T/p1" > "$T/per_rt"
	awk -v o="$RR_OPS" 'NR == FNR {t -= $2; n -= $3; next} {t += $2; n += $3}
		END {printf "%.0f %.2f", t / o, n / o}' "$T/p0" "$T/p1"
}
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
read -r rt_ns rt_runs <<< "$(bpf_per_rt --sensors retransmits)"
read -r all_ns all_runs <<< "$(bpf_per_rt)"
all_by_prog=$(cat "$T/by_prog")
sysctl -qw kernel.bpf_stats_enabled="$stats_was"

# That accounting adds two clock reads to every run, most of a short
# program's time on this VM, and leaves out the tracepoint's dispatch into
# the program; the wall clock cannot see 1 % here (its noise is larger).
# So the programs that ran per round trip are measured amplified: under a
# daemon with every sensor, each attached AMP_K more times (amplify.c) in
# alternate runs, and what one attachment costs a round trip is the slope,
# (with copies - without) / AMP_K, per round. Copies after the first are
# called through the tracepoint's indirect loop, the first directly, so
# the slope is an upper bound. Then the same with a program that only
# returns: the floor of any program on sched_switch.
AMP_K=${AMP_K:-64}
with_copies() {
	local amp
	build/bench/amplify "$AMP_K" "$@" > "$T/amp" &
	amp=$!
	if wait_line "$T/amp" '^attached' 2; then
		tcp_rr | cut -d' ' -f1
	fi
	kill -TERM "$amp" 2>/dev/null || true
	wait "$amp" 2>/dev/null || true
}
# slopes BASE COPIES: each round's (copies - base) / AMP_K
slopes() {
	paste <(echo "$1" | tr ' ' '\n' | grep .) <(echo "$2" | tr ' ' '\n' | grep .) |
		awk -v k="$AMP_K" '{print ($2 - $1) / k}'
}
amp_names=$(paste -sd' ' "$T/per_rt")
base="" progs="" empty=""
start_daemon --rules rules/ --dry-run
amp_ids=$(for n in $amp_names; do bpftool prog show name "$n" -j | jq -r '.id'; done)
for _ in $(seq "$ROUNDS"); do
	base="$base $(tcp_rr | cut -d' ' -f1)"
	if [ -n "$amp_ids" ]; then progs="$progs $(with_copies $amp_ids)"; fi
	empty="$empty $(with_copies empty)"
done
stop_daemon
prog_slope=$(slopes "$base" "$progs" | median)
empty_slope=$(slopes "$base" "$empty" | median)

# row LABEL SERIES_OFF SERIES_ON TARGET
compare() {
	local o n
	o=$(echo "$2" | median)
	n=$(echo "$3" | median)
	row "$1" "$o" "$n" "$(pct "$o" "$n")" "$(echo "$2" | iqr)" "$4"
}
compare "TCP req/resp loopback (ns/op), retransmits" "$(wall "$off")" "$(wall "$on")" "< 1%"
compare "  CPU per round trip (ns), retransmits" "$(cpu "$off")" "$(cpu "$on")" "< 1%"
compare "  wall, every sensor running (ns/op)" "$(wall "$all_off")" "$(wall "$all_on")" "< 1%"
compare "  CPU, every sensor running (ns)" "$(cpu "$all_off")" "$(cpu "$all_on")" "< 1%"
row "  BPF per round trip, retransmits (ns)" "" "$rt_ns" "" "" ""
row "    programs run per round trip" "" "$rt_runs" "" "" ""
row "  BPF per round trip, every sensor (ns)" "" "$all_ns" "" "" ""
row "    programs run per round trip" "" "$all_runs" "" "" ""
row "    by program, top 3 (ns)" "" "$all_by_prog" "" "" ""
row "    = share of one round trip" "" \
	"$(awk -v s="$all_ns" -v p="$(wall "$all_off" | median)" 'BEGIN {printf "%.2f%%", s / p * 100}')" "" "" ""
row "  the same, amplified x$AMP_K (ns/RT)" "" "$(printf %.0f "${prog_slope:-0}")" "" "$(slopes "$base" "$progs" | iqr)" ""
row "    programs amplified" "" "${amp_names:-none}" "" "" ""
row "    a program that only returns (ns/RT)" "" "$(printf %.0f "$empty_slope")" "" "$(slopes "$base" "$empty" | iqr)" ""
row "    = share of one round trip" "" \
	"$(awk -v s="${prog_slope:-0}" -v p="$(echo "$base" | median)" 'BEGIN {printf "%.2f%%", s / p * 100}')" "" "" "< 1%"
