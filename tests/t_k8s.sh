# Kubernetes: pod identity from cgroup paths, and actions through a fixture
# API server (tests/k8s/apiserver.py: HTTPS, bearer tokens, Status bodies,
# PDBs, uid preconditions, Lease conflicts, injected faults) on real
# deadlocked processes placed in cgroups named the way the kubelet names
# pod cgroups.
. "$(dirname "$0")/lib.sh"
ulimit -c 0

. tests/k8s/lib.sh

k8s_cleanup() {
	kill_started
	remove_cgroups
	cleanup
}
trap k8s_cleanup EXIT

test_cgroup_path_table() {
	build/tests/cgroup_table tests/k8s/cgroup_paths.tsv
}

# fuzz NAME SEED_DIR: libFuzzer with ASan and UBSan, FUZZ_SECONDS (8) long.
fuzz() {
	build/fuzz/"$1" -max_total_time="${FUZZ_SECONDS:-8}" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$T/" "$2" > "$T/$1.log" 2>&1 || fail "$1 found a crash: $(tail -5 "$T/$1.log")"
	grep -E '^Done [0-9]+ runs' "$T/$1.log"
}

test_replies_and_kubeconfig_survive_fuzzing() {
	mkdir -p "$T/json" "$T/kcs"
	printf '{"kind":"Status","reason":"TooManyRequests","details":{"causes":[{"reason":"DisruptionBudget"}]}}' > "$T/json/1"
	printf '{"items":[{"metadata":{"uid":"a\\u00e9\\ud83d\\ude00","labels":{"a.b/c":"d"}}}],"n":-1.5e3}' > "$T/json/2"
	fuzz fuzz_json "$T/json"
	printf 'apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: aGVsbG8=\n    server: "https://a:6443"\n  name: c\ncontexts:\n- context:\n    cluster: c\n    user: u\n  name: x\ncurrent-context: x\nusers:\n- name: u\n  user:\n    token: t\n' > "$T/kcs/1"
	fuzz fuzz_kubeconfig "$T/kcs"
}

# The end-to-end case: real deadlocked processes in pod cgroups (a static
# pod among them), one daemon, and a fault for each kind of reply the API
# server can give.
test_pod_actions_end_to_end() {
	RUN=e2e
	rm -rf "$T/api" && mkdir -p "$T/api"
	{
		echo '['
		for p in web pdb evk gone swap rbac busy down slow lab static; do pod "$p"; echo ,; done
		pod scl "$NODE" scl-5f6c7d 5f6c7d
		echo ']'
	} > "$T/api/pods.json"
	api 47511
	cat > "$T/api/faults.json" <<F
{"faults": [
  {"method": "DELETE", "path": "/pods/busy$", "status": 429, "retry_after": "1", "count": 1},
  {"method": "DELETE", "path": "/pods/down$", "status": 503, "count": 10},
  {"method": "DELETE", "path": "/pods/slow$", "delay": 3, "count": 10}],
 "watch_lag": 120,
 "forbid": [["delete", "pods", "/pods/rbac$"]],
 "pdb_blocks": ["k8-shop/pdb"]}
F
	write_rule k8s <<'R'
rule "k8-restart" {
  when = deadlock { }, hold = "1s",
  where = { comm = "k8-*", namespace = "k8-shop", container = "server", labels = { app = "web" },
            pod = { "web", "gone", "swap", "rbac", "busy", "down", "slow", "static" } },
  act = k8s.restart_pod { grace = "5s" },
}
rule "k8-evict" {
  when = deadlock { }, hold = "1s", where = { comm = "k8-*", pod = { "pdb", "evk" } },
  act = k8s.evict_pod { },
}
rule "k8-label" {
  when = deadlock { }, hold = "1s", where = { comm = "k8-*", pod = "lab" },
  act = k8s.label { ["reflexd.io/quarantine"] = "deadlock" },
}
rule "k8-scale" {
  when = deadlock { }, hold = "1s", where = { comm = "k8-*", pod = "scl" },
  act = k8s.scale { replicas = 3 },
}
R
	start_daemon --rules "$T/rules" --node-name "$NODE" --k8s-sa-dir "$T/sa" --k8s-timeout 1s \
		--k8s-retries 2 --k8s-budget-max 5
	wait_request '.method == "GET" and .path == "/api/v1/pods" and .status == 200' 5
	requests '.path == "/api/v1/pods"' | head -1 | jq -e '.query == "fieldSelector=spec.nodeName%3Dk8-node" and .token == "tok-1"' > /dev/null ||
		fail "pod list: $(requests '.path == "/api/v1/pods"' | head -1)"
	# the API server's view changes after reflexd listed: one pod is gone,
	# one was recreated under the same name (a new uid); the watch lags
	# (watch_lag above), so reflexd acts on what it last saw
	jq 'map(select(.metadata.name != "gone")) | map(if .metadata.name == "swap" then .metadata.uid = "11111111-2222-3333-4444-555555555555" else . end)' \
		"$T/api/pods.json" > "$T/api/pods.new" && mv "$T/api/pods.new" "$T/api/pods.json"
	for p in web pdb evk gone swap rbac busy down slow lab scl static; do in_pod "$p" abba; done
	end=$(( $(date +%s) + 25 ))
	while [ "$(audit | jq -s 'map(select(.outcome != "pending")) | length')" -lt 12 ] &&
		[ "$(date +%s)" -le "$end" ]; do sleep 0.2; done
	audit > "$T/decisions"
	decision() { jq -c "select(.detail | test(\"$1\"))" "$T/decisions"; }
	web_uid=$(uuid_of webe2e)

	# restart: DELETE with the uid precondition and grace, then the Event
	requests '.method == "DELETE" and .path == "/api/v1/namespaces/k8-shop/pods/web"' |
		jq -e ".status == 200 and .body.preconditions.uid == \"$web_uid\" and .body.gracePeriodSeconds == 5 and .body.kind == \"DeleteOptions\"" > /dev/null ||
		fail "DELETE web: $(requests '.path | endswith("/pods/web")')"
	requests '.method == "POST" and .path == "/api/v1/namespaces/k8-shop/events"' |
		holds ".body.involvedObject.uid == \"$web_uid\" and .body.involvedObject.kind == \"Pod\" and .body.reason == \"ReflexdRestartPod\" and (.body.message | test(\"k8-restart\")) and .status == 201" ||
		fail "no Event on pod web: $(requests '.path | endswith("/events")' | head -3)"
	decision "pod k8-shop/web deleted; Event posted" | jq -e '.outcome == "acted" and .action == "k8s.restart_pod" and .params.grace_s == 5' > /dev/null ||
		fail "web decision: $(grep web "$T/decisions")"
	# the journal knows the pod: audit by pod name
	audit --pod web | jq -e ".namespace == \"k8-shop\" and .pod == \"web\" and .pod_uid == \"$web_uid\" and .container == \"server\" and .container_id == \"$(hexid webe2e)\"" > /dev/null ||
		fail "audit --pod web: $(audit --pod web)"
	"$REFLEXD" audit --journal "$T/journal.db" show "$(audit --pod web | jq -r .id)" | grep -q "pod k8-shop/web (uid $web_uid), container server" ||
		fail "audit show: no pod line"
	# eviction: a PDB refusal is an outcome, another pod evicts
	decision "PodDisruptionBudget" | jq -e '.outcome == "suppressed" and (.detail | test("disruption budget pdb-pdb"))' > /dev/null ||
		fail "pdb: $(grep -i evict "$T/decisions")"
	[ "$(requests '.path | endswith("/pods/pdb/eviction")' | wc -l)" = 1 ] || fail "a PDB refusal was retried"
	requests '.path == "/api/v1/namespaces/k8-shop/pods/evk/eviction"' |
		jq -e '.status == 201 and .body.kind == "Eviction" and .body.apiVersion == "policy/v1" and .body.deleteOptions.preconditions.uid != null' > /dev/null ||
		fail "evk eviction: $(requests '.path | endswith("evk/eviction")')"
	decision "pod k8-shop/evk evicted; Event posted" | jq -e '.outcome == "acted"' > /dev/null || fail "evk decision"
	# errors by meaning
	decision "already gone" | jq -e '.outcome == "failed" and (.detail | test("404 NotFound"))' > /dev/null ||
		fail "gone: $(grep gone "$T/decisions")"
	decision "uid precondition" | jq -e '.outcome == "failed" and (.detail | test("409 Conflict"))' > /dev/null ||
		fail "swap: $(grep swap "$T/decisions")"
	decision "RBAC" | jq -e '.outcome == "failed" and (.detail | test("403 Forbidden.*verb .delete. on resource .pods."))' > /dev/null ||
		fail "rbac: $(grep -i forbid "$T/decisions")"
	[ "$(requests '.path | endswith("/pods/busy")' | wc -l)" = 2 ] || fail "busy: want 429 then success"
	requests '.path | endswith("/pods/busy")' | jq -s -e '.[0].status == 429 and .[1].status == 200 and (.[1].time - .[0].time) >= 0.9' > /dev/null ||
		fail "Retry-After not honoured: $(requests '.path | endswith("/pods/busy")')"
	decision "pod k8-shop/busy deleted" | jq -e '.outcome == "acted"' > /dev/null || fail "busy decision"
	[ "$(requests '.path | endswith("/pods/down")' | wc -l)" = 3 ] || fail "down: want 3 attempts"
	decision "503 ServiceUnavailable" | jq -e '.outcome == "failed" and (.detail | test("after 3 attempts"))' > /dev/null ||
		fail "down: $(grep down "$T/decisions")"
	decision "no answer from the API server after 3 attempts" | jq -e '.outcome == "failed"' > /dev/null ||
		fail "slow: $(grep -i slow "$T/decisions")"
	# a static pod is found by its mirror, and not deleted
	decision "static pod" | jq -e '.outcome == "failed" and .pod == "static" and (.pod_uid | length == 32)' > /dev/null ||
		fail "static: $(grep static "$T/decisions")"
	[ -z "$(requests '.path | endswith("/pods/static")')" ] || fail "a call on the static pod"
	# quarantine label (merge patch) and scale of the pod's Deployment
	requests '.method == "PATCH" and .path == "/api/v1/namespaces/k8-shop/pods/lab"' |
		jq -e '.content_type == "application/merge-patch+json" and .body.metadata.labels["reflexd.io/quarantine"] == "deadlock" and .status == 200' > /dev/null ||
		fail "label: $(requests '.path | endswith("/pods/lab")')"
	jq -e '.[] | select(.metadata.name == "lab") | .metadata.labels["reflexd.io/quarantine"] == "deadlock"' "$T/api/pods.json" > /dev/null
	requests '.method == "PATCH" and .path == "/apis/apps/v1/namespaces/k8-shop/deployments/scl/scale"' |
		jq -e '.body.spec.replicas == 3 and .status == 200' > /dev/null || fail "scale: $(requests '.path | endswith("scale")')"
	requests '.path | endswith("/events")' | holds '.body.involvedObject.kind == "Deployment" and .body.involvedObject.name == "scl" and .body.involvedObject.apiVersion == "apps/v1"' ||
		fail "no Event on the Deployment"
	# the loop never waits on the API: while the first slow call hung (3 s),
	# other calls went out and were answered
	slow_at=$(requests '.path | endswith("/pods/slow")' | head -1 | jq .time)
	[ "$(requests "(.time > $slow_at) and (.time < $slow_at + 2.5) and (.path | endswith(\"/pods/slow\") | not)" | wc -l)" -ge 3 ] ||
		fail "no other call while the slow one hung"
	# every Event and request carried the token; no action went unrecorded
	[ "$(requests '.token != "tok-1"' | wc -l)" = 0 ] || fail "a request without the token"
	[ "$(jq -s 'map(select(.outcome == "pending" or .outcome == "unknown")) | length' "$T/decisions")" = 0 ] ||
		fail "unfinished decisions: $(jq -c 'select(.outcome == "pending")' "$T/decisions")"
	stop_daemon
}
# fleet_start ARGS...: the real Kubernetes client (build/tests/k8s_fleet,
# one node or many), driven through a fifo; ask CMD prints the answer.
fleet_start() {
	rm -f "$T/fleet.in"
	mkfifo "$T/fleet.in"
	build/tests/k8s_fleet --sa-dir "$T/sa" "$@" < "$T/fleet.in" > "$T/fleet.out" 2> "$T/fleet.err" &
	STARTED="$STARTED $!"
	exec 7> "$T/fleet.in"
}

ask() {
	n=$(wc -l < "$T/fleet.out")
	echo "$1" >&7
	end=$(( $(date +%s) + 5 ))
	while [ "$(wc -l < "$T/fleet.out")" -le "$n" ]; do
		[ "$(date +%s)" -le "$end" ] || { fail "no answer to '$1': $(tail -3 "$T/fleet.err")"; return 1; }
		sleep 0.05
	done
	sed -n "$((n + 1))p" "$T/fleet.out"
}

# until_answer CMD REGEX SECONDS: asks until the answer matches.
until_answer() {
	end=$(( $(date +%s) + $3 ))
	while [ "$(date +%s)" -le "$end" ]; do
		a=$(ask "$1") || return 1
		echo "$a" | grep -Eq -- "$2" && return 0
		sleep 0.1
	done
	fail "'$1' answered '$a', want /$2/"
}

# set_faults JSON: replaces faults.json atomically (the fixture polls it).
set_faults() {
	echo "$1" > "$T/api/faults.new" && mv "$T/api/faults.new" "$T/api/faults.json"
}

# edit_pods JQ: changes the API server's pods as a controller would.
edit_pods() {
	jq "$1" "$T/api/pods.json" > "$T/api/pods.new" && mv "$T/api/pods.new" "$T/api/pods.json"
}

watches_started() {
	requests '(.query | test("watch=true")) and (.watch_end | not)' | wc -l
}

# wait_watches N: until N watches have started.
wait_watches() {
	end=$(( $(date +%s) + 5 ))
	while [ "$(watches_started)" -lt "$1" ]; do
		[ "$(date +%s)" -le "$end" ] || { fail "want $1 watches, have $(watches_started)"; return 1; }
		sleep 0.1
	done
}

count_lists() {
	requests '.path == "/api/v1/pods" and (.query | test("watch=true") | not)' | wc -l
}

# The pod cache is listed once, then kept by a watch: additions,
# changes and deletions arrive as events; bookmarks move the
# resourceVersion on; the server's timeout and a cut connection resume
# from it; 410 Gone (as an event on an open watch, as an event on a
# resume, or as HTTP 410) and a resume the server refuses relist. Every
# list is accounted for.
test_pod_watch() {
	RUN=watch
	rm -rf "$T/api" && mkdir -p "$T/api"
	echo "[$(pod wa), $(pod wb), $(pod wc other-node)]" > "$T/api/pods.json"
	api 47520
	set_faults '{"bookmark_every": 0.3, "watch_timeout": 4}'
	fleet_start --node "$NODE" --refresh 300 --timeout 2
	wait_request '.path == "/api/v1/pods" and (.query | test("watch=true"))' 5
	count_lists | grep -qx 1 || fail "lists at start: $(count_lists)"
	requests '.query | test("watch=true")' | head -1 | jq -e '.query | test("fieldSelector=spec.nodeName%3Dk8-node&resourceVersion=[0-9]+&allowWatchBookmarks=true&timeoutSeconds=(3[0-9][0-9]|[45][0-9][0-9])&watch=true$")' > /dev/null ||
		fail "watch query: $(requests '.query | test("watch=true")' | head -1)"
	until_answer "resolve 0 $(pod_uid wa)" '^pod k8-shop/wa app=web$' 2
	ask "resolve 0 $(pod_uid wc)" | grep -qx unknown || fail "a pod of another node is known"
	# add
	edit_pods ". + [$(pod wd)]"
	until_answer "resolve 0 $(pod_uid wd)" '^pod k8-shop/wd app=web$' 3
	# modify
	edit_pods 'map(if .metadata.name == "wa" then .metadata.labels.app = "api" else . end)'
	until_answer "resolve 0 $(pod_uid wa)" '^pod k8-shop/wa app=api$' 3
	# delete
	edit_pods 'map(select(.metadata.name != "wb"))'
	until_answer "resolve 0 $(pod_uid wb)" '^unknown$' 3
	count_lists | grep -qx 1 || fail "add, modify, delete relisted: $(count_lists) lists"
	# bookmark: another node's change moves the resourceVersion; our watch
	# learns it only from a bookmark, and resumes from it after the server's
	# timeout (4 s)
	edit_pods 'map(if .metadata.name == "wc" then .metadata.labels.app = "x" else . end)'
	wait_for "$T/api/events.log" '"name": "wc"' 3
	rv_other=$(jq -r 'select(.name == "wc") | .rv' "$T/api/events.log")
	wait_request ".query | test(\"resourceVersion=$rv_other&\")" 8
	requests '.watch_end == "timeout"' | holds true || fail "no watch ended by the server's timeout"
	count_lists | grep -qx 1 || fail "the timeout relisted"
	# disconnect: resumes from the last resourceVersion, no list
	n=$(watches_started)
	set_faults '{"bookmark_every": 0.3, "watch_timeout": 60, "drop_watches": true}'
	wait_request '.watch_end == "dropped"' 3
	wait_watches "$((n + 1))"
	count_lists | grep -qx 1 || fail "a disconnect relisted"
	edit_pods ". + [$(pod we)]"
	until_answer "resolve 0 $(pod_uid we)" '^pod k8-shop/we' 5
	# 410 as an ERROR event on the open watch (the watcher fell behind)
	set_faults '{"bookmark_every": 0.3, "watch_timeout": 60, "expire_watches": true}'
	end=$(( $(date +%s) + 5 ))
	while [ "$(count_lists)" -lt 2 ] && [ "$(date +%s)" -le "$end" ]; do sleep 0.1; done
	count_lists | grep -qx 2 || fail "410 event: $(count_lists) lists"
	requests '.watch_end == "expired"' | holds true || fail "no watch ended by 410"
	# compaction past the client's resourceVersion (no bookmarks told it of
	# the newer one), then a cut: the resume gets an ERROR 410 event and
	# relists; then the same as an HTTP 410
	for gone in event http; do
		until_answer stats 'synced 1 ' 3
		n=$(watches_started)
		set_faults '{"bookmark_every": 60, "watch_timeout": 60, "drop_watches": true}'
		wait_watches "$((n + 1))"
		lists=$(count_lists)
		edit_pods "map(if .metadata.name == \"wc\" then .metadata.labels.app = \"$gone\" else . end)"
		wait_for "$T/api/events.log" "\"name\": \"wc\".*" 3
		sleep 0.3
		set_faults "{\"bookmark_every\": 60, \"watch_timeout\": 60, \"compact\": true, \"drop_watches\": true,
			\"gone_as_http\": $([ $gone = http ] && echo true || echo false)}"
		end=$(( $(date +%s) + 6 ))
		while [ "$(count_lists)" -le "$lists" ] && [ "$(date +%s)" -le "$end" ]; do sleep 0.1; done
		[ "$(count_lists)" = $((lists + 1)) ] || fail "compaction, 410 as $gone: $(count_lists) lists, had $lists"
	done
	requests '.status == 410 and (.query | test("watch=true"))' | holds true || fail "no HTTP 410 seen"
	# a resume the server refuses (503): the next start lists
	until_answer stats 'synced 1 ' 3
	set_faults '{"bookmark_every": 0.3, "watch_timeout": 60, "drop_watches": true,
		"faults": [{"method": "GET", "path": "^/api/v1/pods$", "status": 503, "count": 1}]}'
	end=$(( $(date +%s) + 8 ))
	while [ "$(count_lists)" -lt 5 ] && [ "$(date +%s)" -le "$end" ]; do sleep 0.1; done
	count_lists | grep -qx 5 || fail "failed resume: $(count_lists) lists"
	requests '.status == 503' | jq -e '.query | test("watch=true")' > /dev/null || fail "the 503 was not on a watch"
	# after all that, the cache is right
	until_answer "resolve 0 $(pod_uid wa)" '^pod k8-shop/wa app=api$' 3
	ask "resolve 0 $(pod_uid wb)" | grep -qx unknown || fail "wb came back"
	until_answer stats 'synced 1 pods 3 lists 5 ' 3
	[ "$(requests '.token != "tok-1"' | wc -l)" = 0 ] || fail "a request without the token"
}

# Twenty nodes' clients (the real code, one process) ask for one
# workload's budget of 3 within the same 200 ms: exactly 3 granted, the
# rest refused as spent, none left without an answer, conflicts resolved
# by re-reading; the Lease holds a count of 3 (in one bucket, or two when
# the takes straddle a bucket's edge).
test_budget_contention() {
	rm -rf "$T/api" && mkdir -p "$T/api"
	echo '[]' > "$T/api/pods.json"
	api 47521
	fleet_start --nodes 20 --budget-max 3 --budget-window 600
	until_answer stats '^nodes 20 synced 20 ' 10
	echo "budget k8-shop/DaemonSet/agent 200" >&7
	end=$(( $(date +%s) + 40 ))
	while ! grep -q '^budget' "$T/fleet.out"; do
		[ "$(date +%s)" -le "$end" ] || { fail "no budget answer: $(tail -3 "$T/fleet.err")"; return 1; }
		sleep 0.2
	done
	a=$(grep '^budget' "$T/fleet.out")
	echo "$a" | grep -Eq '^budget granted 3 refused 17 failed 0 ' || fail "$a"
	[ "$(requests '.method == "PUT" and .status == 200' | wc -l)" -le 3 ] || fail "more than 3 writes won"
	requests '.path | test("/leases") and .method != "GET" and (.status == 200 or .status == 201)' | tail -1 |
		jq -e '.body.metadata.annotations["reflexd.io/budget"] | fromjson | .["k8-shop/DaemonSet/agent"] | length <= 2 and (map(.[1]) | add) == 3' > /dev/null ||
		fail "Lease: $(requests '.path | test("/leases") and .method != "GET"' | tail -1 | jq -c .body.metadata.annotations)"
}

# When the budget cannot be read, nothing is restarted: fail closed, recorded.
test_budget_unreachable_fails_closed() {
	RUN=closed
	rm -rf "$T/api" && mkdir -p "$T/api"
	echo "[$(pod shut)]" > "$T/api/pods.json"
	api 47515
	echo '{"faults": [{"method": "GET", "path": "/leases/", "status": 503, "count": 100}]}' > "$T/api/faults.json"
	write_rule closed <<'R'
rule "k8-closed" {
  when = deadlock { }, hold = "1s", where = { comm = "k8-shut", pod = "shut" },
  act = k8s.restart_pod { },
}
R
	start_daemon --rules "$T/rules" --k8s-sa-dir "$T/sa" --node-name "$NODE" --k8s-retries 1
	wait_request '.path == "/api/v1/pods" and .status == 200' 5
	in_pod shut abba
	wait_record '.outcome == "failed"' 10
	audit | jq -e '.detail | test("cluster budget unknown, so no action \\(fail closed\\): 503 ServiceUnavailable")' > /dev/null ||
		fail "$(audit | jq .detail)"
	[ -z "$(requests '.method == "DELETE"')" ] || fail "deleted without a budget"
	[ "$(requests '.path | test("/leases/")' | wc -l)" = 2 ] || fail "want 2 attempts at the Lease"
	stop_daemon
}

# The budget counts only the window: older entries (of any workload) are
# dropped when the Lease is written again; entries of the older form (unix
# times) are read and written back as buckets.
test_budget_window_drops_old_entries() {
	RUN=window
	rm -rf "$T/api" && mkdir -p "$T/api"
	echo "[$(pod win-1 "$NODE" win-7c8d9e 7c8d9e)]" > "$T/api/pods.json"
	now=$(date +%s)
	jq -n --arg b "{\"k8-shop/Deployment/win\":[$((now - 1200)),$((now - 60))],\"k8-shop/Deployment/old\":[$((now - 900))]}" \
		'[{apiVersion: "coordination.k8s.io/v1", kind: "Lease",
		   metadata: {name: "reflexd-budget", namespace: "k8-system", annotations: {"reflexd.io/budget": $b}},
		   spec: {}}]' > "$T/api/leases.json"
	api 47516
	write_rule window <<'R'
rule "k8-window" {
  when = deadlock { }, hold = "1s", where = { comm = "k8-win-*", pod = "win-*" },
  act = k8s.restart_pod { },
}
R
	start_daemon --rules "$T/rules" --k8s-sa-dir "$T/sa" --node-name "$NODE" --k8s-budget-max 2 \
		--k8s-budget-window 10m
	wait_request '.path == "/api/v1/pods" and .status == 200' 5
	in_pod win-1 abba
	wait_record '.outcome == "acted"' 10
	# counted in buckets of 600/16 = 37 s: [bucket start, count]
	requests '.method == "PUT" and .status == 200' | jq -e ".body.metadata.annotations[\"reflexd.io/budget\"] | fromjson |
		(keys == [\"k8-shop/Deployment/win\"]) and (.[\"k8-shop/Deployment/win\"] |
		length == 2 and .[0] == [$(( (now - 60) / 37 * 37 )), 1] and .[1][1] == 1)" > /dev/null ||
		fail "Lease: $(requests '.method == "PUT"')"
	stop_daemon
}

# Two nodes' reflexd, one API server: together they restart at most
# --k8s-budget-max pods of one Deployment, the budget kept in a Lease with
# optimistic concurrency (one write conflict is injected on top of the
# natural races).
test_cluster_budget_across_two_daemons() {
	RUN=budget
	rm -rf "$T/api" && mkdir -p "$T/api"
	{
		echo '['
		pod shop-a1 k8-node-a shop-6b7c8d 6b7c8d; echo ,
		pod shop-a2 k8-node-a shop-6b7c8d 6b7c8d; echo ,
		pod shop-b1 k8-node-b shop-6b7c8d 6b7c8d
		echo ']'
	} > "$T/api/pods.json"
	api 47512
	echo '{"faults": [{"method": "PUT", "path": "/leases/reflexd-budget$", "status": 409, "count": 1}]}' \
		> "$T/api/faults.json"
	write_rule budget <<'R'
rule "k8-budget" {
  when = deadlock { }, hold = "1s", where = { comm = "k8-shop-*", namespace = "k8-shop", pod = "shop-*" },
  act = k8s.restart_pod { },
}
R
	common="--rules $T/rules --k8s-sa-dir $T/sa --k8s-budget-max 2 --k8s-budget-window 10m"
	# shellcheck disable=SC2086
	start_daemon $common --node-name k8-node-a
	# shellcheck disable=SC2086
	"$REFLEXD" run --journal "$T/b.db" $common --node-name k8-node-b > "$T/b.log" 2>&1 &
	STARTED="$STARTED $!"
	wait_for "$T/b.log" 'reflexd: info: ready' 20
	wait_request '.path == "/api/v1/pods" and (.query | test("k8-node-b"))' 5
	wait_request '.path == "/api/v1/pods" and (.query | test("k8-node-a"))' 5
	in_pod shop-a1 abba
	in_pod shop-a2 abba
	in_pod shop-b1 abba
	end=$(( $(date +%s) + 20 ))
	while [ "$(cat_decisions | jq -s 'map(select(.outcome != "pending")) | length')" -lt 3 ] &&
		[ "$(date +%s)" -le "$end" ]; do sleep 0.2; done
	cat_decisions > "$T/decisions"
	[ "$(jq -s length "$T/decisions")" = 3 ] || fail "want 3 decisions: $(cat "$T/decisions")"
	[ "$(jq -s 'map(select(.outcome == "acted")) | length' "$T/decisions")" = 2 ] ||
		fail "want 2 restarts: $(jq -c '[.comm, .outcome, .detail]' "$T/decisions")"
	jq -s -e 'map(select(.outcome == "suppressed" and (.detail | test("cluster budget spent: 2 disruptions of k8-shop/Deployment/shop")))) | length == 1' "$T/decisions" > /dev/null ||
		fail "want one refused by the cluster budget: $(jq -c '[.comm, .outcome, .detail]' "$T/decisions")"
	[ "$(requests '.method == "DELETE" and .status == 200' | wc -l)" = 2 ] || fail "want 2 DELETEs"
	requests '.path | test("/leases")' | holds '.method == "PUT" and .status == 409' || fail "no Lease conflict seen"
	# the Lease holds the two restarts
	requests '.path | test("/leases") and (.status == 200 or .status == 201) and .method != "GET"' | tail -1 |
		jq -e '.body.metadata.annotations["reflexd.io/budget"] | fromjson | .["k8-shop/Deployment/shop"] | map(.[1]) | add == 2' > /dev/null ||
		fail "Lease: $(requests '.path | test("/leases")' | tail -1)"
	stop_daemon
}

cat_decisions() {
	audit 2>/dev/null
	"$REFLEXD" audit --journal "$T/b.db" --json 2>/dev/null
}

# A projected service account token rotates: the next call carries the
# new one, and the old one is no longer needed.
test_token_rotation() {
	RUN=rot
	rm -rf "$T/api" && mkdir -p "$T/api"
	echo "[$(pod rot)]" > "$T/api/pods.json"
	api 47513
	mkdir -p "$T/rules" && touch "$T/rules/none.lua"
	start_daemon --rules "$T/rules" --k8s-sa-dir "$T/sa" --node-name "$NODE" --k8s-refresh 1s
	wait_request '.path == "/api/v1/pods" and .token == "tok-1" and .status == 200' 5
	echo tok-1 tok-2 > "$T/api/tokens"
	echo tok-2 > "$T/sa/token.new" && mv "$T/sa/token.new" "$T/sa/token"
	before=$(wc -l < "$T/api/requests.log")
	wait_request '.token == "tok-2" and .status == 200' 4
	echo tok-2 > "$T/api/tokens"
	sleep 2.5
	# (a watch's end is logged with the token it started with: not a request)
	tail -n +"$((before + 1))" "$T/api/requests.log" | jq -s -e 'map(select(.watch_end | not)) | length >= 2 and all(.[]; .token == "tok-2" and .status == 200)' > /dev/null ||
		fail "after the rotation: $(tail -n +"$((before + 1))" "$T/api/requests.log" | jq -c '[.token, .status, .watch_end]')"
	# revoked: the 401 is explained, and tried once more with a re-read token
	: > "$T/api/tokens"
	wait_for "$LOG" 'listing the pods on node k8-node: 401 Unauthorized.*refused the credentials' 5
	stop_daemon
}

# refused_with KUBECONFIG PATTERN WHAT: `reflexd run` with this
# kubeconfig does not start (fail: WHAT), and says why (a grep PATTERN).
refused_with() {
	if "$REFLEXD" run --rules "$T/rules" --journal "$T/refused.db" --kubeconfig "$1" > "$T/out" 2>&1; then
		fail "$3"
	fi
	grep -q "$2" "$T/out" || fail "$3: $(cat "$T/out")"
}

# Outside a cluster: a kubeconfig (current context, CA data, a token or a
# client certificate); TLS is verified, and a kubeconfig that turns
# verification off is refused.
test_kubeconfig() {
	RUN=kc
	rm -rf "$T/api" && mkdir -p "$T/api" "$T/rules"
	echo "[$(pod kc)]" > "$T/api/pods.json"
	api 47514
	unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT
	echo tok-kc > "$T/api/tokens"
	kubeconfig() { # CA_FILE EXTRA_CLUSTER_LINE
		cat <<K
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 "$1")
    server: https://127.0.0.1:47514
$2
  name: fixture
- cluster:
    server: https://127.0.0.1:1
  name: elsewhere
contexts:
- context:
    cluster: elsewhere
    user: nobody
  name: other
- context:
    cluster: fixture
    namespace: k8-system
    user: "reflexd"
  name: fixture
current-context: fixture
users:
- name: nobody
  user:
    token: wrong
- name: reflexd
  user:
$3
K
	}
	kubeconfig "$T/pki/ca.crt" "" "    token: tok-kc" > "$T/kc"
	touch "$T/rules/none.lua"
	start_daemon --rules "$T/rules" --kubeconfig "$T/kc" --node-name "$NODE"
	wait_request '.path == "/api/v1/pods" and .token == "tok-kc" and .status == 200' 5
	stop_daemon
	# a CA bundle is one base64 line, here past 16 KiB: it is read whole
	for _ in $(seq 24); do cat "$T/pki/other.crt"; done > "$T/bundle.crt"
	cat "$T/pki/ca.crt" >> "$T/bundle.crt"
	kubeconfig "$T/bundle.crt" "" "    token: tok-kc" > "$T/kc-bundle"
	[ "$(wc -L < "$T/kc-bundle")" -gt 16384 ] || fail "the bundle's line is only $(wc -L < "$T/kc-bundle") bytes"
	: > "$T/api/requests.log"
	start_daemon --rules "$T/rules" --kubeconfig "$T/kc-bundle" --node-name "$NODE"
	wait_request '.path == "/api/v1/pods" and .token == "tok-kc" and .status == 200' 5
	stop_daemon
	# a server certificate from another CA: no request gets through
	# a client certificate instead of a token, files relative to the kubeconfig
	mkdir -p "$T/kcdir/certs"
	cp "$T/pki/client.crt" "$T/pki/client.key" "$T/pki/ca.crt" "$T/kcdir/certs/"
	echo "cert:k8-reflexd" > "$T/api/tokens"
	kubeconfig "$T/pki/ca.crt" "" "    client-certificate: certs/client.crt
    client-key: certs/client.key" > "$T/kcdir/config"
	start_daemon --rules "$T/rules" --kubeconfig "$T/kcdir/config" --node-name "$NODE"
	wait_request '.path == "/api/v1/pods" and .token == "cert:k8-reflexd" and .status == 200' 5
	stop_daemon
	kubeconfig "$T/pki/other.crt" "" "    token: tok-kc" > "$T/kc-other"
	: > "$T/api/requests.log"
	start_daemon --rules "$T/rules" --kubeconfig "$T/kc-other" --node-name "$NODE" --k8s-retries 0
	wait_for "$LOG" 'listing the pods on node k8-node: no answer.*(SSL|certificate)' 5
	[ ! -s "$T/api/requests.log" ] || fail "a request passed TLS with the wrong CA"
	stop_daemon
	kubeconfig "$T/pki/ca.crt" "    insecure-skip-tls-verify: true" "    token: x" > "$T/kc-insecure"
	refused_with "$T/kc-insecure" "kubeconfig $T/kc-insecure: cluster 'fixture' skips TLS verification" "started with TLS verification off"
	# bad YAML: the line libyaml stopped at, and its reason
	printf 'apiVersion: v1\nclusters: [a, b\nusers: []\n' > "$T/kc-bad"
	refused_with "$T/kc-bad" "kubeconfig $T/kc-bad:3: did not find expected ',' or ']'" "started with a bad kubeconfig"
	printf 'apiVersion: v1\nclusters:\n- cluster:\n\tserver: x\n' > "$T/kc-tab"
	refused_with "$T/kc-tab" "kubeconfig $T/kc-tab:4: found character that cannot start any token" "started with a tab-indented kubeconfig"
	printf -- '- just\n- a list\n' > "$T/kc-list"
	refused_with "$T/kc-list" "kubeconfig $T/kc-list:1: not a mapping" "started with a kubeconfig that is a list"
	# past the 1 MiB read: refused, not cut
	{ kubeconfig "$T/pki/ca.crt" "" "    token: tok-kc"; head -c 1100000 /dev/zero | tr '\0' '#'; echo; } > "$T/kc-big"
	refused_with "$T/kc-big" "kubeconfig $T/kc-big: larger than 1 MiB" "started with a kubeconfig cut short"
}

# The kubeconfig forms kubectl reads (docs/k8s.md): an exec credential
# plugin (EKS, GKE: nested args and env lists; run as kubectl runs it,
# again when the server refuses its token), JSON, and comments anywhere.
test_kubeconfig_forms() {
	RUN=kcf
	rm -rf "$T/api" "$T/kcf" && mkdir -p "$T/api" "$T/rules" "$T/kcf/bin"
	echo "[$(pod kcf)]" > "$T/api/pods.json"
	api 48210
	unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT
	echo tok-exec > "$T/api/tokens"
	touch "$T/rules/none.lua"
	ca=$(base64 -w0 "$T/pki/ca.crt")
	# the plugin: its first token is refused, the next is good
	cat > "$T/kcf/bin/get-token" <<'P'
#!/bin/sh
dir=$(dirname "$0")
n=$(cat "$dir/runs" 2>/dev/null || echo 0)
echo $((n + 1)) > "$dir/runs"
{ printf 'args:'; printf ' [%s]' "$@"; echo; echo "from=$TOKEN_FROM"; echo "info=$KUBERNETES_EXEC_INFO"; } >> "$dir/calls"
[ "$n" = 0 ] && tok=wrong || tok=tok-exec
cat <<J
{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
 "status": {"token": "$tok", "expirationTimestamp": "2099-01-01T00:00:00Z"}}
J
P
	chmod +x "$T/kcf/bin/get-token"
	cat > "$T/kcf/config" <<K
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $ca
    server: https://127.0.0.1:48210
  name: eks
contexts:
- context: {cluster: eks, user: aws}
  name: eks
current-context: eks
users:
- name: aws
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: bin/get-token
      args:
        - --cluster
        - "fixture one"
      env:
        - name: TOKEN_FROM
          value: kubeconfig
      interactiveMode: Never
      provideClusterInfo: true
K
	start_daemon --rules "$T/rules" --kubeconfig "$T/kcf/config" --node-name "$NODE"
	wait_request '.path == "/api/v1/pods" and .token == "tok-exec" and .status == 200' 5
	stop_daemon
	[ -n "$(requests '.token == "wrong" and .status == 401')" ] || fail "the first token was never refused"
	[ "$(cat "$T/kcf/bin/runs")" -ge 2 ] || fail "the plugin ran $(cat "$T/kcf/bin/runs") times"
	grep -qx 'args: \[--cluster\] \[fixture one\]' "$T/kcf/bin/calls" || fail "args: $(cat "$T/kcf/bin/calls")"
	grep -qx 'from=kubeconfig' "$T/kcf/bin/calls" || fail "env: $(cat "$T/kcf/bin/calls")"
	sed -n 's/^info=//p' "$T/kcf/bin/calls" | head -1 > "$T/kcf/info"
	jq -e '.apiVersion == "client.authentication.k8s.io/v1" and .kind == "ExecCredential" and
		.spec.interactive == false and .spec.cluster.server == "https://127.0.0.1:48210"' \
		"$T/kcf/info" > /dev/null || fail "KUBERNETES_EXEC_INFO: $(cat "$T/kcf/info")"
	# a plugin that fails or answers nonsense stops the start, saying so
	printf '#!/bin/sh\necho "no credentials" >&2\nexit 3\n' > "$T/kcf/bin/get-token"
	refused_with "$T/kcf/config" "exec plugin $T/kcf/bin/get-token: exit status 3" "started with a failing exec plugin"
	printf '#!/bin/sh\necho "{}"\n' > "$T/kcf/bin/get-token"
	refused_with "$T/kcf/config" "get-token: its output is not an ExecCredential" "started with an exec plugin that gives no token"
	# JSON (what `kubectl config view -o json` writes)
	echo tok-kc > "$T/api/tokens"
	: > "$T/api/requests.log"
	jq -n --arg ca "$ca" '{apiVersion: "v1", kind: "Config", "current-context": "j",
		clusters: [{name: "j", cluster: {server: "https://127.0.0.1:48210", "certificate-authority-data": $ca}}],
		contexts: [{name: "j", context: {cluster: "j", user: "u"}}],
		users: [{name: "u", user: {token: "tok-kc"}}]}' > "$T/kcf/config.json"
	start_daemon --rules "$T/rules" --kubeconfig "$T/kcf/config.json" --node-name "$NODE"
	wait_request '.path == "/api/v1/pods" and .token == "tok-kc" and .status == 200' 5
	stop_daemon
	# comments on their own lines and after values, the server's included
	: > "$T/api/requests.log"
	cat > "$T/kcf/commented" <<K
# written by hand
apiVersion: v1
clusters:
- cluster:
    # the fixture's CA
    certificate-authority-data: $ca
    server: https://127.0.0.1:48210 # the fixture
  name: c   # one cluster
contexts:
- context:
    cluster: c
    user: u
  name: x
current-context: x # this one
users:
- name: u
  user:
    token: tok-kc # a static token
K
	start_daemon --rules "$T/rules" --kubeconfig "$T/kcf/commented" --node-name "$NODE"
	wait_request '.path == "/api/v1/pods" and .token == "tok-kc" and .status == 200' 5
	stop_daemon
}

# Rules filter on the pod (namespace, pod glob, container, labels) and
# protected pods are never touched: deterministic, through the simulator.
test_pod_filters_and_protected_pods() {
	write_rule pods <<'R'
rule "quarantine-web" {
  when = deadlock { }, hold = "1s",
  where = { pod = "web-*", container = "server", labels = { app = "web", tier = "front*" } },
  act = k8s.label { ["reflexd.io/quarantine"] = "true" },
}
R
	cat > "$T/trace" <<'TR'
reflexd-trace 1 start=1795300000
0.1 raise 1 deadlock pid=100 start=1 comm=srv namespace=shop pod=web-1 container=server labels=app=web,tier=frontend
0.1 raise 2 deadlock pid=101 start=1 comm=srv namespace=shop pod=web-2 container=sidecar labels=app=web,tier=frontend
0.1 raise 3 deadlock pid=102 start=1 comm=srv namespace=shop pod=web-3 container=server labels=app=web,tier=back
0.1 raise 4 deadlock pid=103 start=1 comm=srv namespace=kube-system pod=web-4 container=server labels=app=web,tier=frontend
0.1 raise 5 deadlock pid=104 start=1 comm=srv namespace=shop pod=web-5 container=server labels=app=web,tier=frontend,critical=yes
0.1 raise 6 deadlock pid=105 start=1 comm=srv namespace=batch pod=web-6 container=server labels=app=web,tier=frontend
0.1 raise 7 deadlock pid=106 start=1 comm=srv pod=api-7 container=server labels=app=web,tier=frontend
0.1 raise 8 deadlock pid=107 start=1 comm=srv namespace=shop pod=web-8 container=server labels=tier=frontend
TR
	out=$("$REFLEXD" simulate --trace "$T/trace" --rules "$T/rules" --json --protect-labels critical \
		--protect-namespace 'batch*' | jq -r '[.pid, .outcome, .detail] | join(" ")' | sort)
	want="100 acted simulated: k8s.label {\"reflexd.io/quarantine\":\"true\"}
103 suppressed protected target: namespace 'kube-system' is protected by default
104 suppressed protected target: pod labels match protected selector 'critical'
105 suppressed protected target: namespace 'batch' matches protected 'batch*'"
	[ "$out" = "$want" ] || fail "got: $out"
}

# reflexd's own pod is protected: reflexd runs in pod "self" (its cgroup,
# as the kubelet would make it), and a deadlocked sidecar of the same pod
# is never acted on.
test_own_pod_protected() {
	RUN=own
	rm -rf "$T/api" && mkdir -p "$T/api"
	echo "[$(pod self)]" > "$T/api/pods.json"
	api 47517
	uid=$(pod_uid self)
	slice=$CG2/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$(echo "$uid" | tr - _).slice
	add_cgroup "$slice/cri-containerd-$(hexid reflexd-own).scope"
	printf '#!/bin/sh\necho $$ > %s/cgroup.procs && exec %s "$@"\n' \
		"$slice/cri-containerd-$(hexid reflexd-own).scope" "$REFLEXD" > "$T/in-pod-reflexd"
	chmod +x "$T/in-pod-reflexd"
	write_rule own <<'R'
rule "k8-own" {
  when = deadlock { }, hold = "1s", where = { comm = "k8-self" },
  act = k8s.restart_pod { },
}
R
	REFLEXD=$T/in-pod-reflexd start_daemon --rules "$T/rules" --k8s-sa-dir "$T/sa" --node-name "$NODE"
	grep -q "pod$(echo "$uid" | tr - _)" "/proc/$DAEMON/cgroup" || fail "reflexd is not in the pod's cgroup"
	wait_request '.path == "/api/v1/pods" and .status == 200' 5
	in_pod self abba
	wait_record '.outcome != "pending"' 10
	audit | jq -e '.outcome == "suppressed" and .detail == "protected target: reflexd'"'"'s own pod"' > /dev/null ||
		fail "$(audit | jq -c '[.outcome, .detail]')"
	[ -z "$(requests '.method == "DELETE" or (.path | test("leases"))')" ] || fail "acted on its own pod"
	stop_daemon
}

# Off Kubernetes, a k8s action is a recorded failure that says why; the
# process is still seen as a container of a pod (from its cgroup alone).
test_not_configured_is_recorded() {
	RUN=off
	unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT
	write_rule off <<'R'
rule "k8-off" { when = deadlock { }, hold = "1s", where = { comm = "k8-off" }, act = k8s.evict_pod { } }
R
	start_daemon --rules "$T/rules"
	grep -q "kubernetes: not in a cluster and no --kubeconfig: k8s.\* actions are off" "$LOG" || fail "no notice"
	in_pod off abba
	wait_record '.outcome != "pending"' 10
	audit | jq -e ".outcome == \"failed\" and (.detail | test(\"Kubernetes is not configured\")) and .pod_uid == \"$(pod_uid off)\" and .container_id == \"$(hexid offoff)\"" > /dev/null ||
		fail "$(audit | jq -c '[.outcome, .detail, .pod_uid]')"
	stop_daemon
}

# Bad k8s action parameters name the file and line.
test_bad_k8s_actions() {
	write_rule bad <<'R'
rule "a" { when = deadlock { },
  act = k8s.scale { } }
R
	out=$("$REFLEXD" check "$T/rules/bad.lua" 2>&1) && fail "check passed"
	echo "$out" | grep -q 'bad.lua:2: .*k8s.scale: how many? e.g. k8s.scale { replicas = 3 }' || fail "$out"
	write_rule bad <<'R'
rule "a" { when = deadlock { },
  act = k8s.restart { } }
R
	out=$("$REFLEXD" check "$T/rules/bad.lua" 2>&1) && fail "check passed"
	echo "$out" | grep -q "bad.lua:2: unknown name 'restart'" || fail "$out"
	write_rule bad <<'R'
rule "a" { when = deadlock { }, act = k8s.evict_pod { grace = 5 } }
R
	out=$("$REFLEXD" check "$T/rules/bad.lua" 2>&1) && fail "check passed"
	echo "$out" | grep -q 'k8s.evict_pod: grace must be a duration like "30s"' || fail "$out"
	write_rule bad <<'R'
rule "a" { when = deadlock { }, where = { labels = { "app" } }, act = k8s.cordon_node { } }
R
	out=$("$REFLEXD" check "$T/rules/bad.lua" 2>&1) && fail "check passed"
	echo "$out" | grep -q 'where.labels: each entry must be label = "glob"' || fail "$out"
}

# The manifests: parsed, required fields, and RBAC exactly the calls in
# k8s/k8s.c; the shipped ConfigMap rules pass `reflexd check`. A role
# missing a verb, or a subPath rules mount, is caught.
test_deploy_manifests() {
	python3 tests/k8s/check_deploy.py . "$T/cm-rules"
	"$REFLEXD" check "$T/cm-rules" | grep -q ': ok$'
	mkdir -p "$T/root/deploy" "$T/root/k8s" "$T/root/cmd"
	cp k8s/k8s.c k8s/k8s.h "$T/root/k8s/"
	cp cmd/daemon.c "$T/root/cmd/"
	sed -e 's/verbs: \["patch"\]$/verbs: ["get"]/' -e 's|mountPath: /etc/reflexd/rules$|&\n              subPath: deadlock.lua|' \
		deploy/reflexd.yaml > "$T/root/deploy/reflexd.yaml"
	out=$(python3 tests/k8s/check_deploy.py "$T/root" "$T/cm2" 2>&1) && fail "bad manifests passed: $out"
	echo "$out" | grep -q "reflexd calls 'patch' on 'nodes' (group '') but no role grants it" || fail "$out"
	echo "$out" | grep -q "grants 'get' on 'nodes' (group ''), which reflexd never uses" || fail "$out"
	echo "$out" | grep -q "mounted with subPath" || fail "$out"
}

run_tests
