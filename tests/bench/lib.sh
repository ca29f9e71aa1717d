# Shared by the benchmark scripts: a daemon of their own, medians, rows.
# b_*.sh scripts source this, print rows (no header), and are run by run.sh
# after its own table; each also runs alone: bash tests/bench/b_x.sh
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROUNDS=${ROUNDS:-9}
T=$(mktemp -d /tmp/reflexd-bench.XXXXXX)
D=""
VERDICT_WL=""
cleanup() {
	if [ -n "$D" ]; then kill -KILL "$D" 2>/dev/null || true; fi
	if [ -n "$VERDICT_WL" ]; then kill -KILL "$VERDICT_WL" 2>/dev/null || true; fi
	for f in ${BENCH_CLEANUP:-}; do "$f" || true; done
	rm -rf "$T"
}
trap cleanup EXIT

start_daemon() {
	: > "$T/d.log"
	"${REFLEXD_BIN:-./reflexd}" run --journal "$T/j.db" "$@" > "$T/d.log" 2>&1 &
	D=$!
	wait_line "$T/d.log" 'info: ready' 10 && return 0
	echo "reflexd did not start: $(cat "$T/d.log")" >&2
	exit 1
}

stop_daemon() {
	kill -TERM "$D"
	wait "$D"
	D=""
}

# abab MEASURE...: ROUNDS rounds; in each, every MEASURE (a function that
# prints one number) runs bare, then under a reflexd with the shipped rules
# in dry-run, then, where a function MEASURE_peer exists, that one (the
# measure under a peer tool). The numbers gather, space-separated, in
# MEASURE_bare, MEASURE_rflx and MEASURE_peer: each side sees the same
# drift of a shared machine.
abab() {
	local m v
	for m in "$@"; do
		printf -v "${m}_bare" '%s' ""
		printf -v "${m}_rflx" '%s' ""
		printf -v "${m}_peer" '%s' ""
	done
	for _ in $(seq "$ROUNDS"); do
		for m in "$@"; do
			v=${m}_bare
			printf -v "$v" '%s %s' "${!v}" "$("$m")"
		done
		start_daemon --rules rules/ --dry-run
		for m in "$@"; do
			v=${m}_rflx
			printf -v "$v" '%s %s' "${!v}" "$("$m")"
		done
		stop_daemon
		for m in "$@"; do
			declare -F "${m}_peer" > /dev/null || continue
			v=${m}_peer
			printf -v "$v" '%s %s' "${!v}" "$("${m}_peer")"
		done
	done
}

# wait_line FILE PATTERN SECONDS: whether a line matching PATTERN (grep's)
# shows up in FILE (a tool's "ready", a daemon's log line) within SECONDS
wait_line() {
	for _ in $(seq $(($3 * 20))); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	grep -q -- "$2" "$1" 2>/dev/null
}

median() {
	tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.1f%%", (b - a) / a * 100}'; }
# interquartile range of the runs without reflexd, as a share of their
# median: a change smaller than this is noise
iqr() {
	tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {q1 = a[int((NR + 3) / 4)]; q3 = a[int((3 * NR + 3) / 4)]; m = a[int((NR + 1) / 2)]; printf "%.1f%%", (q3 - q1) / m * 100}'
}
# columns: benchmark, without, with reflexd, change, noise, target
row() { printf '%-42s %12s %12s %9s %9s %9s\n' "$@"; }

# One 64-byte request/response run over loopback TCP (tcp_stream, client
# and server pinned to one CPU, RR_OPS round trips, port RR_PORT, the next
# run on the next port of ten): "WALL_NS CPU_NS" per round trip on stdout,
# CPU being what client and server used (getrusage), which other jobs do
# not inflate; nothing if it could not run.
RR_OPS=${RR_OPS:-30000}
RR_PORT=${RR_PORT:-47190}
tcp_rr() {
	local srv wall srv_cpu cli_cpu base=$((RR_PORT / 10 * 10))
	# emptied here, not by the redirection below, which runs in the
	# background: the last run's "ready" must not be read as this one's
	: > "$T/srv"
	taskset -c 1 build/workloads/tcp_stream listen "$RR_PORT" --echo --comm rr-bench-srv --seconds 60 \
		> "$T/srv" 2>&1 &
	srv=$!
	if wait_line "$T/srv" '^ready' 10; then
		taskset -c 1 build/workloads/tcp_stream connect "$RR_PORT" --rr "$RR_OPS" --comm rr-bench-cli > "$T/cli"
		# the server ends when the client hangs up
		for _ in $(seq 100); do
			grep -q '^cpu_ns' "$T/srv" && break
			sleep 0.05
		done
		wall=$(sed -n 's/.*ns_per_op=//p' "$T/cli")
		cli_cpu=$(sed -n 's/^cpu_ns=//p' "$T/cli")
		srv_cpu=$(sed -n 's/^cpu_ns=//p' "$T/srv")
		if [ -n "$wall" ] && [ -n "$cli_cpu" ] && [ -n "$srv_cpu" ]; then
			echo "$wall $(awk -v a="$cli_cpu" -v b="$srv_cpu" -v n="$RR_OPS" 'BEGIN {printf "%.0f", (a + b) / n}')"
		fi
	else
		echo "rr server on port $RR_PORT did not start: $(cat "$T/srv")" >&2
	fi
	kill -KILL "$srv" 2>/dev/null || true
	wait "$srv" 2>/dev/null || true
	RR_PORT=$((RR_PORT == base + 9 ? base : RR_PORT + 1))
}

# The ids of the BPF programs loaded now, one a line, sorted for comm(1).
bpf_prog_ids() { bpftool prog show -j | jq -r '.[].id' | sort; }

# bpf_snapshot IDS: "NAME RUN_TIME_NS RUN_COUNT" of each program whose id
# is in IDS (comma-separated), read in one bpftool call (a call per
# program would run the programs it measures between the readings);
# kernel.bpf_stats_enabled must be on while they run.
bpf_snapshot() {
	bpftool prog show -j | jq -r --argjson ids "[$1]" \
		'.[] | select(.id as $i | $ids | index($i)) | "\(.name) \(.run_time_ns // 0) \(.run_cnt // 0)"'
}

# bpf_top SNAP0 SNAP1 DIV: the three programs that ran longest between
# two snapshots, "NAME=X ..." with X their run time over DIV
bpf_top() {
	awk -v d="$3" 'NR == FNR {a[$1] += $2; next} {b[$1] += $2}
		END {for (n in b) if (b[n] > a[n]) printf "%.2f %s\n", (b[n] - a[n]) / d, n}' "$1" "$2" |
		sort -gr | head -3 | awk '{printf "%s%s=%s", sep, $2, $1 + 0; sep = " "}'
}

# verdict_latencies RUNS: a daemon with one deadlock rule (hold 1 s, SIGKILL);
# RUNS times an ABBA deadlock is made and killed. Sets lat to, per run, the
# ms from the moment it formed (the workload's own clock) to the acted
# record, less the hold. Leaves that daemon running (D).
verdict_latencies() {
	cat > "$T/verdict.lua" <<'R'
rule "verdict" { when = deadlock { }, where = { comm = "rx-verdict" }, hold = "1s", act = signal { "SIGKILL" } }
R
	start_daemon --rules "$T/verdict.lua"
	lat=""
	# (the shell's "Killed" notices for the workloads the rule kills go to /dev/null)
	exec 3>&2 2>/dev/null
	for i in $(seq "$1"); do
		build/workloads/deadlock abba --comm rx-verdict > "$T/wl" &
		VERDICT_WL=$!
		for _ in $(seq 100); do
			grep -q '^formed' "$T/wl" && break
			sleep 0.05
		done
		formed=$(sed -n 's/.*realtime_ns=//p' "$T/wl")
		t=""
		for _ in $(seq 100); do
			t=$(./reflexd audit --journal "$T/j.db" --json --pid "$VERDICT_WL" | jq -r 'select(.outcome == "acted") | .time_unix_nano')
			[ -n "$t" ] && break
			sleep 0.05
		done
		# (a deadlock no rule killed would never end)
		[ -n "$t" ] || kill -KILL "$VERDICT_WL"
		wait "$VERDICT_WL" 2>/dev/null || true
		VERDICT_WL=""
		[ -n "$t" ] || { echo "verdict run $i: no decision" >&3; exit 1; }
		lat="$lat $(awk -v t="$t" -v f="$formed" 'BEGIN {printf "%.1f", (t - f) / 1e6 - 1000}')"
	done
	exec 2>&3 3>&-
}
