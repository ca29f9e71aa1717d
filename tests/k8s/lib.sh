# Shared by tests/t_k8s.sh and tests/bench/b_k8s.sh: a test PKI, the
# fixture API server, Pod objects, and real processes placed in cgroups
# named the way the kubelet names pod cgroups. Needs T, STARTED, WL, fail
# and wait_for from the sourcing script.
. tests/pki.sh
CG2=/sys/fs/cgroup/unified
[ -f "$CG2/cgroup.procs" ] || CG2=/sys/fs/cgroup
NODE=k8-node

# add_cgroup DIR: makes DIR (and its parents) and remembers it in a file,
# since tests run in subshells.
add_cgroup() {
	mkdir -p "$1"
	echo "$1" >> "$T/cgroups"
}

# remove_cgroups: the cgroups add_cgroup made and their kubepods parents,
# deepest first, once their processes are gone; one still in use stays.
remove_cgroups() {
	[ -f "$T/cgroups" ] || return 0
	sort -ru "$T/cgroups" | while read -r d; do
		while [ "$d" != "$CG2" ] && [ "${d#"$CG2"/kubepods}" != "$d" ]; do
			rmdir "$d" 2>/dev/null || true
			d=${d%/*}
		done
	done
}

# api PORT: starts the fixture API server with its state in $T/api; the
# in-cluster environment (service account in $T/sa) points at it.
api() {
	pki
	mkdir -p "$T/api" "$T/sa"
	rm -f "$T/api/requests.log" "$T/api/faults.json"
	echo tok-1 > "$T/api/tokens"
	echo tok-1 > "$T/sa/token"
	echo k8-system > "$T/sa/namespace"
	cp "$T/pki/ca.crt" "$T/sa/ca.crt"
	[ -f "$T/api/pods.json" ] || echo '[]' > "$T/api/pods.json"
	python3 tests/k8s/apiserver.py "$1" "$T/pki/server.crt" "$T/pki/server.key" "$T/api" \
		> "$T/api/out" 2>&1 &
	STARTED="$STARTED $!"
	wait_for "$T/api/out" '^ready' 10
	export KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$1
}

# requests JQ_FILTER: the fixture's log lines for which the filter holds.
requests() {
	jq -c "select($1)" "$T/api/requests.log" 2>/dev/null
}

# wait_request JQ_FILTER SECONDS
wait_request() {
	end=$(( $(date +%s) + $2 ))
	while [ "$(date +%s)" -le "$end" ]; do
		[ -n "$(requests "$1")" ] && return 0
		sleep 0.1
	done
	fail "no request matching '$1' within $2 s: $(tail -3 "$T/api/requests.log" 2>/dev/null)"
}

hexid() {
	printf '%s' "$1" | sha256sum | cut -c1-64
}

uuid_of() {
	h=$(printf '%s' "$1" | sha256sum)
	echo "$h" | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/'
}

# pod_uid NAME: the uid in NAME's cgroup path. A pod named static* is a
# static pod: its cgroup has the kubelet's 32-hex config hash, which the
# API server shows as its mirror pod's kubernetes.io/config.mirror.
pod_uid() {
	case $1 in
	static*) hexid "$1$RUN" | cut -c1-32 ;;
	*) uuid_of "$1$RUN" ;;
	esac
}

# pod NAME [NODE] [OWNER_RS HASH]: a Pod object for pods.json, its uid and
# container id derived from NAME; its container is "server".
pod() {
	uid=$(pod_uid "$1")
	mirror=""
	case $1 in
	static*)
		mirror=", \"kubernetes.io/config.mirror\": \"$uid\""
		uid=$(uuid_of "mirror$1$RUN")
		;;
	esac
	owner=""
	labels="\"app\": \"web\""
	if [ -n "${3:-}" ]; then
		owner=", \"ownerReferences\": [{\"apiVersion\": \"apps/v1\", \"kind\": \"ReplicaSet\", \"name\": \"$3\", \"uid\": \"$(uuid_of "$3")\", \"controller\": true}]"
		labels="$labels, \"pod-template-hash\": \"$4\""
	fi
	cat <<P
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": "$1", "namespace": "k8-shop", "uid": "$uid", "labels": {$labels},
   "annotations": {"kubernetes.io/psp": "x"$mirror}$owner},
 "spec": {"nodeName": "${2:-$NODE}", "containers": [{"name": "server", "image": "x"}]},
 "status": {"phase": "Running", "containerStatuses": [
   {"name": "sidecar", "containerID": "containerd://$(hexid "side$1$RUN")"},
   {"name": "server", "containerID": "containerd://$(hexid "$1$RUN")"}]}}
P
}

# in_pod NAME MODE: a deadlock workload (comm k8-NAME) started inside the
# cgroup the kubelet (systemd driver, containerd) would give pod NAME's
# container "server". Sets WL_PID.
in_pod() {
	uid=$(pod_uid "$1")
	slice=$CG2/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$(echo "$uid" | tr - _).slice
	cg=$slice/cri-containerd-$(hexid "$1$RUN").scope
	add_cgroup "$cg"
	out=$T/wl.$1
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$cg" \
		"$WL/deadlock" "$2" --comm "k8-$1" > "$out" 2>&1 &
	WL_PID=$!
	STARTED="$STARTED $WL_PID"
	wait_for "$out" '^formed' 10
}

