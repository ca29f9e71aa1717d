# The fleet simulation (make scale): N simulated nodes, each the real
# Kubernetes client of reflexd (build/tests/k8s_fleet: k8s/k8s.c on
# lib/http.c, one instance per node, all on one loop), against the fixture
# API server (tests/k8s/apiserver.py --sim-nodes N) over TLS. For each N:
#   start    time until every node has listed and watches
#   rest     API calls per second with nothing happening (watch renewals)
#   churn    the same while pods are replaced at CHURN a second
#   incident every node asks for the same workload's cluster budget
#            within one second: calls, 409 conflicts, time until the last
#            node has its answer, granted against the budget
# SCALE_NODES (100 1000 5000), SCALE_PODS per node (10), SCALE_REFRESH (the
# watch renewal, 4 s: short so that a minute shows renewals; the rate
# scales as 1/refresh, docs/scale.md), SCALE_REST (30 s window), CHURN (50
# pods/s; 0: the incident only), SCALE_BUDGET (the cluster budget's max, 5),
# FLEET (the driver, build/tests/k8s_fleet), SCALE_START_RATE (nodes started
# a second, as a rollout; 0: all at once).
set -u
cd "$(dirname "$0")/../.." || exit 1
T=$(mktemp -d /tmp/reflexd-scale.XXXXXX)
PIDS=""
trap 'for p in $PIDS; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() {
	echo "scale: $*" >&2
	exit 1
}
. tests/pki.sh
FLEET=${FLEET:-build/tests/k8s_fleet}
PORT=${SCALE_PORT:-48000}
REFRESH=${SCALE_REFRESH:-4}
REST=${SCALE_REST:-30}
CHURN=${CHURN:-50}
BUDGET=${SCALE_BUDGET:-5}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
pki

# ask CMD: one command to the fleet, its one-line answer (waits up to 600 s)
ask() {
	n=$(wc -l < "$T/fleet.out")
	echo "$1" >&7
	end=$(( $(date +%s) + 600 ))
	while [ "$(wc -l < "$T/fleet.out")" -le "$n" ]; do
		[ "$(date +%s)" -le "$end" ] || fail "no answer to '$1'"
		kill -0 "$FLEET_PID" 2>/dev/null || fail "the fleet died: $(tail -3 "$T/fleet.err")"
		sleep 0.2
	done
	sed -n "$((n + 1))p" "$T/fleet.out"
}

# calls FROM TO: API requests started in [FROM, TO) (unix seconds), by kind.
calls() {
	python3 - "$T/api/requests.log" "$1" "$2" <<'P'
import json, sys
n = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("watch_end") or not float(sys.argv[2]) <= e["time"] < float(sys.argv[3]):
        continue
    kind = "watch" if "watch=true" in e["query"] else e["method"] + " " + e["path"].split("/")[-1 if "leases" not in e["path"] else -2]
    kind = {"GET pods": "list"}.get(kind, kind)
    n[kind] = n.get(kind, 0) + 1
print(sum(n.values()), " ".join("%s=%d" % kv for kv in sorted(n.items())))
P
}

now() { date +%s.%N; }

echo "| N | start s | rest calls/s | rest calls/s/node | churn calls/s | events/s | fixture RSS MB | fleet RSS MB |"
echo "|---|---|---|---|---|---|---|---|"
: > "$T/incidents"
for N in ${SCALE_NODES:-100 1000 5000}; do
	rm -rf "$T/api" "$T/sa" && mkdir -p "$T/api" "$T/sa"
	echo tok-1 > "$T/api/tokens"
	echo tok-1 > "$T/sa/token"
	echo reflexd > "$T/sa/namespace"
	cp "$T/pki/ca.crt" "$T/sa/ca.crt"
	echo '{"bookmark_every": 60}' > "$T/api/faults.json"
	: > "$T/api/out"
	python3 tests/k8s/apiserver.py "$PORT" "$T/pki/server.crt" "$T/pki/server.key" "$T/api" \
		--sim-nodes "$N" --sim-pods "${SCALE_PODS:-10}" > "$T/api/out" 2>&1 &
	API_PID=$!
	PIDS="$PIDS $API_PID"
	end=$(( $(date +%s) + 120 ))
	until grep -q '^ready' "$T/api/out"; do
		[ "$(date +%s)" -le "$end" ] || fail "the fixture did not start: $(tail -3 "$T/api/out")"
		sleep 0.2
	done
	rm -f "$T/fleet.in" && mkfifo "$T/fleet.in"
	t0=$(now)
	KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$PORT \
		"$FLEET" --sa-dir "$T/sa" --nodes "$N" --refresh "$REFRESH" --timeout 30 --retries 3 \
		--start-rate "${SCALE_START_RATE:-0}" \
		--budget-max "$BUDGET" --budget-window 600 < "$T/fleet.in" > "$T/fleet.out" 2> "$T/fleet.err" &
	FLEET_PID=$!
	PIDS="$PIDS $FLEET_PID"
	exec 7> "$T/fleet.in"
	: > "$T/fleet.out"
	while ! ask stats | grep -q "synced $N "; do sleep 1; done
	t1=$(now)
	start=$(echo "$t1 - $t0" | bc)
	# the incident: every node wants a disruption of one DaemonSet within 1 s
	line=$(ask "budget reflexd/DaemonSet/agent 1000")
	echo "$N $BUDGET $line" >> "$T/incidents"
	if [ "$REST" = 0 ]; then
		exec 7>&-
		kill "$FLEET_PID" "$API_PID" 2>/dev/null
		wait "$FLEET_PID" "$API_PID" 2>/dev/null
		PIDS=""
		continue
	fi
	# rest: settle one renewal period, then count
	sleep "$REFRESH"
	a=$(now)
	sleep "$REST"
	b=$(now)
	rest=$(calls "$a" "$b")
	# churn: pods replaced (a DELETED and an ADDED event each)
	ev0=$(ask stats | awk '{print $12}')
	echo "{\"bookmark_every\": 60, \"churn_per_s\": $CHURN}" > "$T/api/faults.json"
	sleep 2
	c=$(now)
	sleep "$REST"
	d=$(now)
	ev1=$(ask stats | awk '{print $12}')
	echo '{"bookmark_every": 60}' > "$T/api/faults.json"
	churn=$(calls "$c" "$d")
	rss_api=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$API_PID/status")
	rss_fleet=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$FLEET_PID/status")
	printf '| %s | %.1f | %.1f | %.4f | %.1f | %.0f | %s | %s |\n' "$N" "$start" \
		"$(echo "${rest%% *} / ($b - $a)" | bc -l)" "$(echo "${rest%% *} / ($b - $a) / $N" | bc -l)" \
		"$(echo "${churn%% *} / ($d - $c)" | bc -l)" "$(echo "($ev1 - $ev0) / ($d - $c + 2)" | bc -l)" \
		"$rss_api" "$rss_fleet"
	echo "N=$N rest: ${rest#* }; churn: ${churn#* }" >> "$T/detail"
	exec 7>&-
	kill "$FLEET_PID" "$API_PID" 2>/dev/null
	wait "$FLEET_PID" "$API_PID" 2>/dev/null
	PIDS=""
	sleep 1
done
echo
cat "$T/detail" 2>/dev/null
echo
echo "| N | budget | granted | refused | failed closed | calls | conflicts | p50 ms | p99 ms | last answer ms |"
echo "|---|---|---|---|---|---|---|---|---|---|"
while read -r n max _ _ g _ r _ f _ c _ x _ mx _ p50 _ p99; do
	echo "| $n | $max | $g | $r | $f | $c | $x | $p50 | $p99 | $mx |"
done < "$T/incidents"
