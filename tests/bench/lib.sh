# Shared by the benchmark scripts: a daemon of their own, medians, rows.
# b_*.sh scripts source this, print rows (no header), and are run by run.sh
# after its own table; each also runs alone: bash tests/bench/b_x.sh
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROUNDS=${ROUNDS:-9}
T=$(mktemp -d /tmp/reflexd-bench.XXXXXX)
D=""
cleanup() {
	if [ -n "$D" ]; then kill -KILL "$D" 2>/dev/null || true; fi
	for f in ${BENCH_CLEANUP:-}; do "$f" || true; done
	rm -rf "$T"
}
trap cleanup EXIT

start_daemon() {
	: > "$T/d.log"
	"${REFLEXD_BIN:-./reflexd}" run --journal "$T/j.db" "$@" > "$T/d.log" 2>&1 &
	D=$!
	for _ in $(seq 200); do
		grep -q 'info: ready' "$T/d.log" && return 0
		sleep 0.05
	done
	echo "reflexd did not start: $(cat "$T/d.log")" >&2
	exit 1
}

stop_daemon() {
	kill -TERM "$D"
	wait "$D"
	D=""
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
