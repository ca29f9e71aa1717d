#!/bin/bash
# The goroutine sensor: what it costs a stripped Go program (-s -w, as
# release builds ship) that starts goroutines: nothing per goroutine by
# default (the runtime's table is read every sample), an entry uprobe on
# each create and exit with --goroutine-probes; and how long after a leak
# begins it is reported. Runs alone: bash tests/bench/b_goroutines.sh
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SPAWN=${SPAWN:-300000}
LATENCY_RUNS=${LATENCY_RUNS:-3}
LEAK_PID=""
kill_leak() { if [ -n "$LEAK_PID" ]; then kill -KILL "$LEAK_PID" 2>/dev/null || true; fi; }
BENCH_CLEANUP=kill_leak

export GOCACHE=$PWD/build/gocache GOPATH=$T/gopath
go build -ldflags='-s -w' -o "$T/gr-bench" tests/workloads/gr_work.go

# ns per goroutine created and finished, on one CPU so the two sides
# compare the same scheduling
spawn_ns() { taskset -c 1 "$T/gr-bench" spawn "$SPAWN"; }

off="" on="" probed=""
for _ in $(seq "$ROUNDS"); do
	off="$off $(spawn_ns)"
	start_daemon --rules rules/ --dry-run
	spawn_ns > /dev/null
	on="$on $(spawn_ns)"
	stop_daemon
	start_daemon --rules rules/ --dry-run --goroutine-probes
	spawn_ns > /dev/null # the first run of a new binary attaches its uprobes
	probed="$probed $(spawn_ns)"
	stop_daemon
done
mo=$(echo "$off" | median)
mn=$(echo "$on" | median)
mp=$(echo "$probed" | median)

# the BPF programs' own share, from the kernel's run-time accounting
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
start_daemon --rules rules/ --dry-run --goroutine-probes
spawn_ns > /dev/null
spawn_ns > /dev/null
prog_ns() {
	bpftool prog show name "$1" -j | jq -r 'if .run_cnt then .run_time_ns / .run_cnt else 0 end'
}
create_ns=$(prog_ns go_create)
exit_ns=$(prog_ns go_exit)
stop_daemon
sysctl -qw kernel.bpf_stats_enabled="$stats_was"

# Detection: a Go program watched for longer than the window (12 s) starts
# leaking 200 goroutines/s; the time from its first leaked goroutine to the
# decision of a rule that acts at once (hold 0).
mkdir -p "$T/rules"
cat > "$T/rules/leak.lua" <<'R'
rule "bench-leak" { when = goroutines { rate = "100/s" }, where = { comm = "gr-bench" }, act = signal { "SIGQUIT" }, dry_run = true }
R
lat=""
start_daemon --rules "$T/rules" --sensors goroutines
for _ in $(seq "$LATENCY_RUNS"); do
	"$T/gr-bench" leak 200 12 > "$T/leak.out" &
	LEAK_PID=$!
	wait_line "$T/leak.out" ready 20 || true
	began=$(sed -n 's/.*realtime_ns=//p' "$T/leak.out")
	decided=""
	for _ in $(seq 300); do
		decided=$(./reflexd audit --journal "$T/j.db" --pid "$LEAK_PID" --json | jq -r .time_unix_nano | head -1)
		[ -n "$decided" ] && break
		sleep 0.1
	done
	kill_leak
	wait "$LEAK_PID" 2>/dev/null || true
	[ -n "$decided" ] && [ -n "$began" ] && lat="$lat $(( (decided - began) / 1000000 ))"
done
stop_daemon

row "goroutine create+exit, stripped, one CPU (ns)" "$mo" "$mn" "$(pct "$mo" "$mn")" "$(echo "$off" | iqr)" "< 10 %"
row "  with --goroutine-probes (ns)" "$mo" "$mp" "$(pct "$mo" "$mp")" "$(echo "$off" | iqr)" ""
row "  probes: BPF per create / per exit (ns)" "" "$(printf '%.0f / %.0f' "$create_ns" "$exit_ns")" "" "" ""
row "goroutine leak 200/s: detection (ms)" "" "p50 $(echo "$lat" | median)" "" "" "< window"
