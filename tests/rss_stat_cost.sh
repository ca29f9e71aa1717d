#!/bin/bash
# What reflexd's BPF costs per rss_stat event (docs/benchmarks.md, "One
# program on rss_stat"): the kernel's own run-time accounting
# (kernel.bpf_stats_enabled: run_time_ns and run_cnt of every program of
# the daemon on rss_stat), while `memgrow churn` mallocs, writes and frees
# 256 KiB blocks (every page faulted in and unmapped: two events a page).
# The daemon runs the shipped rules in dry-run, so the leak sensor and the
# memory reflex are both on; the churner is armed by no rule, as most
# processes on a host are. Each binary given is run once per round, in
# ABAB order. Under the live lock:
#   flock -o /tmp/reflexd-live.lock bash tests/rss_stat_cost.sh OLD_REFLEXD ./reflexd [ROUNDS]
# Prints per run: binary, programs on rss_stat, events, BPF ns/event
# (all its programs), and the churner's ns/page.
set -eu
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 REFLEXD_A REFLEXD_B [ROUNDS]" >&2; exit 2; }
A=$1 B=$2 ROUNDS=${3:-3} PAGES=${PAGES:-200000}
T=$(mktemp -d /tmp/rss_cost.XXXXXX)
D=
stats=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
	[ -n "$D" ] && kill -TERM "$D" 2>/dev/null && wait "$D" 2>/dev/null
	sysctl -qw kernel.bpf_stats_enabled="$stats"
	rm -rf "$T"
}
trap cleanup EXIT
sysctl -qw kernel.bpf_stats_enabled=1

# totals SINCE: "programs run_cnt run_time_ns" over the programs on
# rss_stat loaded since SINCE (epoch s): the daemon's (bpftool here shows
# no pids; nothing else loads BPF under the live lock)
totals() {
	bpftool prog show --json | jq -r --argjson since "$1" '
		[.[] | select(.type == "tracing" and (.name == "rss_stat" or .name == "reflex_rss")
			and .loaded_at >= $since)] |
		"\(length) \(map(.run_cnt // 0) | max // 0) \(map(.run_time_ns // 0) | add // 0)"'
}

one() {
	bin=$1
	: > "$T/log"
	since=$(date +%s)
	"$bin" run --rules rules/ --dry-run --journal "$T/j.db" >> "$T/log" 2>&1 &
	D=$!
	for _ in $(seq 200); do
		grep -q 'reflexd: info: ready' "$T/log" && break
		sleep 0.1
	done
	grep -q 'reflexd: info: ready' "$T/log" || { echo "$bin did not start: $(tail -3 "$T/log")" >&2; exit 1; }
	read -r progs cnt0 ns0 <<< "$(totals "$since")"
	per_page=$(./build/workloads/memgrow churn --comm rss-churn --ops "$PAGES" | sed -n 's/^ns_per_page=//p')
	read -r _ cnt1 ns1 <<< "$(totals "$since")"
	kill -TERM "$D"
	wait "$D" || true
	D=
	awk -v b="$bin" -v p="$progs" -v c=$((cnt1 - cnt0)) -v n=$((ns1 - ns0)) -v pp="$per_page" \
		'BEGIN { printf "%s programs=%d events=%d bpf_ns_per_event=%.1f churn_ns_per_page=%.0f\n", b, p, c, n / c, pp }'
}

for r in $(seq "$ROUNDS"); do
	one "$A"
	one "$B"
done
