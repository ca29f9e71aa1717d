#!/bin/bash
# Kubernetes: how soon a deadlocked process in a pod becomes a pod restart
# on the API server, and what the pod cache costs the node.
#  - deadlock -> DELETE: from the deadlock forming (the workload's clock) to
#    the fixture API server receiving the DELETE, with hold = 1s.
#  - pod list: reflexd's CPU time per list of 1000 pods (~2 MB JSON), from
#    /proc/PID/stat while the fixture expires its watch every second (each
#    410 is a relist).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
WL=$PWD/build/workloads
STARTED=""
fail() { echo "b_k8s: $*" >&2; exit 1; }
# tests/k8s/lib.sh's wait_for, as tests/lib.sh has it: a timeout fails
wait_for() { wait_line "$@" || fail "no '$2' in $1"; }
. tests/k8s/lib.sh
k8s_bench_cleanup() {
	for p in $STARTED; do kill -KILL "$p" 2>/dev/null || true; done
	wait 2>/dev/null
	remove_cgroups
}
BENCH_CLEANUP=k8s_bench_cleanup
ROUNDS=${ROUNDS:-7}

# deadlock -> DELETE, one pod per round
RUN=bench
mkdir -p "$T/api" "$T/rules"
{
	echo '['
	for i in $(seq "$ROUNDS"); do pod "r$i"; [ "$i" = "$ROUNDS" ] || echo ,; done
	echo ']'
} > "$T/api/pods.json"
api 47520
cat > "$T/rules/k8s.lua" <<'R'
rule "k8-bench" {
  when = deadlock { }, hold = "1s", where = { comm = "k8-r*", namespace = "k8-shop" },
  act = k8s.restart_pod { },
}
R
start_daemon --rules "$T/rules" --k8s-sa-dir "$T/sa" --node-name "$NODE" --k8s-budget-max 100
wait_for "$T/api/requests.log" '"/api/v1/pods"' 5
lat=""
for i in $(seq "$ROUNDS"); do
	in_pod "r$i" abba
	formed=$(sed -n 's/.*realtime_ns=\([0-9]*\).*/\1/p' "$T/wl.r$i")
	wait_for "$T/api/requests.log" "\"DELETE\", \"path\": \"/api/v1/namespaces/k8-shop/pods/r$i\"" 10
	at=$(grep "pods/r$i\"" "$T/api/requests.log" | jq -r 'select(.method == "DELETE") | .time')
	lat="$lat $(awk -v a="$at" -v f="$formed" 'BEGIN {printf "%d", a * 1000 - f / 1e6}')"
	{ kill -KILL "$WL_PID"; wait "$WL_PID"; } 2>/dev/null
done
stop_daemon
row "k8s: deadlock in a pod -> DELETE (ms)" "-" "$(echo "$lat" | median)" "-" "$(echo "$lat" | iqr)" "<= 1500"

# CPU per pod list refresh, 1000 pods
python3 - "$T/api/pods.json" <<'PY'
import json, sys, uuid
pods = []
for i in range(1000):
    name = "p%04d" % i
    pods.append({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": name, "namespace": "ns%d" % (i % 20), "uid": str(uuid.uuid4()),
                              "labels": {"app": "a%d" % (i % 50), "pod-template-hash": "abc123",
                                         "app.kubernetes.io/part-of": "shop"},
                              "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "x" * 800},
                              "ownerReferences": [{"kind": "ReplicaSet", "name": "a-abc123", "controller": True}]},
                 "spec": {"nodeName": "k8-node", "containers": [{"name": "c", "image": "i"}]},
                 "status": {"containerStatuses": [{"name": "c", "containerID": "containerd://" + uuid.uuid4().hex * 2}]}})
json.dump(pods, open(sys.argv[1], "w"))
PY
start_daemon --rules "$T/rules" --k8s-sa-dir "$T/sa" --node-name "$NODE"
sleep 2
ticks() { awk '{print $14 + $15}' "/proc/$D/stat"; }
lists() { jq -c 'select(.path == "/api/v1/pods" and (.query | test("watch=true") | not))' "$T/api/requests.log" | wc -l; }
n0=$(lists)
t0=$(ticks)
for _ in $(seq 10); do
	echo '{"expire_watches": true}' > "$T/api/faults.new" && mv "$T/api/faults.new" "$T/api/faults.json"
	sleep 1
done
t1=$(ticks)
n1=$(lists)
stop_daemon
hz=$(getconf CLK_TCK)
row "k8s: CPU per 1000-pod list (ms)" "-" \
	"$(awk -v t="$((t1 - t0))" -v n="$((n1 - n0))" -v hz="$hz" 'BEGIN {printf "%.1f", t * 1000 / hz / n}')" \
	"-" "-" "<= 50"
