#!/bin/bash
# OTLP export: throughput to a local receiver, and reflexd's memory through
# a collector outage with decisions flowing (the backlog lives on disk, so
# memory stays flat), then how fast the backlog drains when it is back.
#   RECORDS   conditions in the generated trace for the throughput runs
#   OUTAGE    seconds without a collector (the issue's figure: OUTAGE=600)
#   RATE      decisions per second during the outage (rule reloads: each
#             is a decision record, exported like any other)
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PORT=47450
METRICS=127.0.0.1:47451
RECORDS=${RECORDS:-20000}
OUTAGE=${OUTAGE:-120}
RATE=${RATE:-100}
RX=""
stop_rx() {
	if [ -n "$RX" ]; then kill "$RX" 2>/dev/null || true; wait "$RX" 2>/dev/null || true; fi
	RX=""
}
BENCH_CLEANUP=stop_rx

rx() {
	rm -rf "$T/rx"
	python3 tests/otlp_receiver.py --port $PORT --out "$T/rx" --count-only > "$T/rx.log" 2>&1 &
	RX=$!
	wait_line "$T/rx.log" ready 5 && return 0
	echo "receiver did not start: $(cat "$T/rx.log")" >&2
	exit 1
}

received() {
	jq -s '[.[] | select(.status == 200) | .count] | add // 0' "$T/rx/requests.jsonl" 2>/dev/null || echo 0
}

now() { date +%s.%N; }

# Throughput: the simulator's decisions through the exporter, less the
# time the simulation alone takes.
sh tests/bench/gen_trace.sh "$RECORDS" > "$T/trace"
n=$(./reflexd simulate --trace "$T/trace" --rules tests/bench/sim_rules.lua --json | grep -c '"id"')
rx
rates=""
for _ in 1 2 3; do
	t0=$(now)
	./reflexd simulate --trace "$T/trace" --rules tests/bench/sim_rules.lua > /dev/null
	t1=$(now)
	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$PORT ./reflexd simulate --otlp \
		--trace "$T/trace" --rules tests/bench/sim_rules.lua > /dev/null 2> "$T/sim.err"
	t2=$(now)
	grep -q " 0 not sent" "$T/sim.err" || { cat "$T/sim.err" >&2; exit 1; }
	rates="$rates $(awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {printf "%.0f", n / ((c - b) - (b - a))}')"
done
stop_rx
row "otlp export, $n records (records/s)" - "$(echo "$rates" | median)" - - ">= 5000"

# The outage: no collector, RATE decisions a second.
echo 'rule "quiet" { when = deadlock { }, where = { comm = "ot-none" }, act = signal { "SIGKILL" } }' > "$T/quiet.lua"
OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$PORT start_daemon --rules "$T/quiet.lua" --sensors deadlock \
	--metrics $METRICS --otlp-retry-max 2s
rss() { awk '/^VmRSS/ {print $2}' "/proc/$D/status"; }
metric() { curl -s "http://$METRICS/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
# SIGHUP at RATE a second, on time (a shell loop would fork a sleep each)
hups() {
	python3 -c 'import os, signal, sys, time
pid, rate, secs = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
start = time.monotonic()
n = 0
while time.monotonic() - start < secs:
    os.kill(pid, signal.SIGHUP)
    n += 1
    time.sleep(max(0.0, start + n / rate - time.monotonic()))' "$D" "$RATE" "$1"
}
# warm-up: 20 s of decisions, so SQLite's page cache (2 MiB) and the
# allocator reach their working size before the first sample
hups 20
rss0=$(rss)
backlog0=$(metric reflexd_export_backlog)
hups "$OUTAGE" &
HUPS=$!
peak=$rss0
half=$(( $(date +%s) + OUTAGE / 2 ))
rss_half=""
while kill -0 "$HUPS" 2>/dev/null; do
	r=$(rss)
	[ "$r" -gt "$peak" ] && peak=$r
	[ -z "$rss_half" ] && [ "$(date +%s)" -ge "$half" ] && rss_half=$r
	sleep 5
done
sleep 1
rss1=$(rss)
backlog=$(metric reflexd_export_backlog)
rate=$(awk -v b="$backlog" -v a="$backlog0" -v s="$OUTAGE" 'BEGIN {printf "%.0f", (b - a) / s}')
row "rss, ${OUTAGE}s outage at ${rate}/s: start (KiB)" - "$rss0" - - -
# flat: the second half of the outage adds nothing
row "rss, outage half-way -> end (KiB)" "$rss_half" "$rss1" "$(pct "$rss_half" "$rss1")" "peak $peak" "< +2%"
row "export backlog after the outage (records)" - "$backlog" - - "all kept"

# The collector returns: the backlog drains.
rx
t0=$(now)
while [ "$(metric reflexd_export_backlog)" != 0 ]; do sleep 0.2; done
t1=$(now)
stop_daemon
stop_rx
row "backlog drain after the outage (records/s)" - "$(awk -v n="$backlog" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')" - - ">= 1000"
