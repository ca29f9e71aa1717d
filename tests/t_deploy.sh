# The deployment artifacts, checked by the tools their users run them with:
# the image's runtime packages against the binary's NEEDED libraries, the
# manifest against the Kubernetes API's schemas, the systemd unit with
# systemd-analyze, and the notify protocol with a listener that speaks it
# as systemd does. The image itself is built and run in tests/t_image.sh.
. "$(dirname "$0")/lib.sh"
CACHE=${REFLEXD_IMAGE_CACHE:-/var/cache/reflexd-image}

# runtime_packages: the packages the Dockerfile's runtime stage installs
runtime_packages() {
	awk '/^FROM/ { stage++ } stage == 2' deploy/Dockerfile | tr -d '\\' |
		sed -n '/apt-get install/,/&&.*rm/p' | tr ' \t' '\n\n' |
		grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vxE 'apt-get|install|rm|update'
}

# needed_packages: the Debian package of each NEEDED library of ./reflexd
needed_packages() {
	arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
	for lib in $(readelf -d "$REFLEXD" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		pkg=$(dpkg -S "*/$arch/$lib" 2>/dev/null | cut -d: -f1 | sort -u)
		[ -n "$pkg" ] || fail "no package provides $lib" || return 1
		echo "$pkg"
	done
}

test_runtime_stage_provides_every_needed_library() {
	want=$(needed_packages)
	[ "$(echo "$want" | wc -l)" -ge 8 ] || fail "too few NEEDED libraries read: $want"
	have=$(runtime_packages)
	for p in $want; do
		echo "$have" | grep -qx "$p" || fail "the runtime stage lacks $p (a NEEDED library's package)"
	done
	echo "runtime packages: $(echo "$have" | paste -sd' ')"
}

test_runtime_stage_installs_nothing_else() {
	want=$(needed_packages)
	for p in $(runtime_packages); do
		[ "$p" = ca-certificates ] && continue # TLS to the API server and OTLP
		echo "$want" | grep -qx "$p" || fail "the runtime stage installs $p, which no NEEDED library needs"
	done
}

# validate_k8s FILE: the Kubernetes schemas' verdict on a manifest
validate_k8s() {
	dir=$CACHE/npm
	if ! cmp -s tests/deploy/package.json "$dir/package.json" || [ ! -d "$dir/node_modules/kubernetes-models" ]; then
		mkdir -p "$dir"
		cp tests/deploy/package.json "$dir/"
		(cd "$dir" && npm install --no-audit --no-fund --loglevel=error > npm.log 2>&1) ||
			fail "npm install kubernetes-models: $(tail -3 "$dir/npm.log")" || return 1
	fi
	cp tests/deploy/validate_k8s.mjs "$dir/"
	python3 -c 'import sys, yaml, json; json.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d], sys.stdout)' "$1" |
		node "$dir/validate_k8s.mjs"
}

test_manifest_passes_the_kubernetes_schemas() {
	out=$(validate_k8s deploy/reflexd.yaml) || fail "deploy/reflexd.yaml: $(echo "$out" | grep invalid)"
	[ "$(echo "$out" | grep -c '^valid')" = 8 ] || fail "want 8 valid objects: $out"
	# the validator bites: a wrong type and a bad enum value are refused
	sed 's/hostNetwork: true/hostNetwork: "yes"/' deploy/reflexd.yaml > "$T/bad.yaml"
	out=$(validate_k8s "$T/bad.yaml") && fail "a string hostNetwork passed: $out"
	echo "$out" | grep -q 'invalid DaemonSet reflexd: .*hostNetwork must be boolean' || fail "$out"
	sed 's/protocol: TCP/protocol: TCPX/' deploy/reflexd.yaml > "$T/bad.yaml"
	out=$(validate_k8s "$T/bad.yaml") && fail "protocol TCPX passed: $out"
	echo "$out" | grep -q 'invalid DaemonSet' || fail "$out"
}

# What the schema cannot know: the settings reflexd needs on a node.
test_daemonset_sees_the_node() {
	python3 - deploy/reflexd.yaml <<'PY' || fail "deploy/reflexd.yaml: see above"
import re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kind = lambda k: [d for d in docs if d["kind"] == k][0]
ns, ds = kind("Namespace"), kind("DaemonSet")
tpl = ds["spec"]["template"]
spec, c = tpl["spec"], tpl["spec"]["containers"][0]
bad = []
def need(ok, why):
    if not ok:
        bad.append(why)
need(ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") == "privileged",
     "the Namespace's Pod Security label is not enforce=privileged")
need(spec.get("hostNetwork") is True, "no hostNetwork")
need(spec.get("hostPID") is True, "no hostPID")
need(spec.get("dnsPolicy") == "ClusterFirstWithHostNet", "hostNetwork without dnsPolicy ClusterFirstWithHostNet")
vols = {v["name"]: v for v in spec["volumes"]}
mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
cg = mounts.get("/host/sys/fs/cgroup")
need(cg and vols[cg["name"]].get("hostPath", {}).get("path") == "/sys/fs/cgroup",
     "the host's /sys/fs/cgroup is not mounted at /host/sys/fs/cgroup")
src = open("sense/retransmits.c").read()
need('"/host/sys/fs/cgroup"' in src, "sense/retransmits.c does not look at /host/sys/fs/cgroup")
ports = {p["name"]: p for p in c.get("ports", [])}
need("metrics" in ports, "no port named metrics")
port = ports.get("metrics", {}).get("containerPort")
args = c["args"]
metrics = args[args.index("--metrics") + 1] if "--metrics" in args else ""
need(metrics == "$(POD_IP):%s" % port, "--metrics %r is not the pod IP on the metrics port %s" % (metrics, port))
env = {e["name"]: e for e in c["env"]}
need(env.get("POD_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP",
     "POD_IP does not come from status.podIP")
ann = tpl["metadata"].get("annotations", {})
need(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == str(port),
     "prometheus.io annotations missing or not on the metrics port")
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
    g = c.get(probe, {}).get("httpGet", {})
    need(g.get("path") == path and g.get("port") == "metrics", "%s is not GET %s on the metrics port" % (probe, path))
res = c.get("resources", {})
need(res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory") and
     res.get("limits", {}).get("memory"), "resources: want cpu and memory requests and a memory limit")
need("cpu" not in res.get("limits", {}), "a CPU limit throttles the loop")
sc = c["securityContext"]
need(sc.get("privileged") is False and sc["capabilities"]["drop"] == ["ALL"], "not privileged=false with drop ALL")
for b in bad:
    print("deploy/reflexd.yaml: " + b)
sys.exit(1 if bad else 0)
PY
}

# Every manifest a message of the code points at exists.
test_403_hint_names_a_real_file() {
	grep -q 'see deploy/reflexd.yaml' k8s/k8s.c || fail "the 403 hint does not name deploy/reflexd.yaml"
	for f in $(grep -ho 'deploy/[a-z.-]*\.yaml' */*.c */*.h | sort -u); do
		[ -f "$f" ] || fail "the code names $f, which does not exist"
	done
}

# unit_here: the unit with ExecStart at this tree's reflexd, where
# systemd-analyze can find the program it names
unit_here() {
	mkdir -p "$T/unit"
	sed "s|/usr/local/bin/reflexd|$REFLEXD|" deploy/reflexd.service > "$T/unit/reflexd.service"
}

test_unit_verifies() {
	unit_here
	out=$(cd "$T/unit" && systemd-analyze verify ./reflexd.service 2>&1) || fail "verify: $out"
	[ -z "$out" ] || fail "systemd-analyze verify: $out"
	grep -qx 'Type=notify' deploy/reflexd.service || fail "not Type=notify"
	grep -q '^WatchdogSec=' deploy/reflexd.service || fail "no WatchdogSec"
}

# 5.1 before the hardening of issue 15; 2.8 after (docs/deploy.md).
test_unit_exposure() {
	unit_here
	line=$(cd "$T/unit" && systemd-analyze security --offline=true reflexd.service 2>&1 | grep 'Overall exposure')
	level=$(echo "$line" | sed -n 's/.*reflexd.service: \([0-9.]*\).*/\1/p')
	[ -n "$level" ] || fail "no exposure level: $line"
	echo "$line"
	awk -v l="$level" 'BEGIN { exit !(l <= 2.8) }' || fail "exposure $level, want <= 2.8"
}

# expand_syscalls FILTER...: the system calls a unit's SystemCallFilter= lines
# allow (the first line is an allow list, each "~" line takes away).
allowed_syscalls() {
	python3 - "$@" <<'PY'
import subprocess, sys
seen = {}
def expand(name):
    if not name.startswith("@"):
        return {name}
    if name not in seen:
        out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, check=True).stdout
        seen[name] = set()
        for w in (l.strip() for l in out.splitlines()[1:]):
            if w and not w.startswith("#"):
                seen[name] |= expand(w)
    return seen[name]
allowed = set()
for line in sys.argv[1:]:
    names = line.split()
    if names[0].startswith("~"):
        names[0] = names[0][1:]
        for n in names:
            allowed -= expand(n)
    else:
        for n in names:
            allowed |= expand(n)
print("\n".join(sorted(allowed)))
PY
}

# Every system call reflexd makes while it starts, detects and kills a
# deadlock, serves /metrics, reloads and stops is one the unit allows: a
# filtered call would fail with EPERM only on the hosts that run the unit.
test_unit_allows_every_syscall_reflexd_makes() {
	command -v strace > /dev/null || fail "no strace (deploy/deps.sh installs it)"
	mapfile -t filters < <(sed -n 's/^SystemCallFilter=//p' deploy/reflexd.service)
	allowed_syscalls "${filters[@]}" > "$T/allowed"
	grep -qx bpf "$T/allowed" || fail "the filter does not allow bpf()"
	write_rule kill <<'R'
rule "sc-kill" { when = deadlock { }, where = { comm = "rx-sc" }, hold = "1s", act = signal { "SIGKILL" } }
R
	cp rules/*.lua "$T/rules/"
	LOG=$T/daemon.log
	strace -f -qq -o "$T/strace" "$REFLEXD" run --rules "$T/rules" --journal "$T/journal.db" \
		--metrics 127.0.0.1:47810 > "$LOG" 2>&1 &
	STARTED="$STARTED $!"
	wait_for "$LOG" 'reflexd: info: ready' 30
	DAEMON=$(pgrep -f -n "^$REFLEXD run --rules $T/rules")
	start_wl deadlock abba --comm rx-sc
	wait_gone "$WL_PID" 5
	curl -sf 127.0.0.1:47810/metrics > /dev/null || fail "no /metrics"
	kill -HUP "$DAEMON"
	wait_for "$LOG" 'reloaded' 5
	kill -TERM "$DAEMON"
	wait_for "$LOG" 'info: stopped' 10
	sed -E 's/^[0-9]+ +//; s/^<\.\.\. ([a-z0-9_]+) resumed>.*/\1/; s/\(.*//' "$T/strace" |
		grep -E '^[a-z0-9_]+$' | sort -u > "$T/used"
	# execve is strace's own start of reflexd, before any filter applies
	denied=$(grep -vx execve "$T/used" | comm -23 - "$T/allowed")
	[ -z "$denied" ] || fail "reflexd calls what the unit filters out: $(echo "$denied" | paste -sd' ')"
	echo "$(wc -l < "$T/used") distinct system calls, all allowed"
}

# notify_run SOCKET [ENV...]: reflexd with a notify listener at SOCKET;
# NOTES holds what the listener got.
notify_run() {
	sock=$1
	shift
	NOTES=$T/notes
	LOG=$T/daemon.log
	: > "$LOG"
	python3 tests/deploy/notify_listener.py "$sock" "$LOG" > "$NOTES" &
	STARTED="$STARTED $!"
	wait_for "$NOTES" '^listening' 5
	write_rule kill <<'R'
rule "n-kill" { when = deadlock { }, where = { comm = "rx-notify" }, hold = "1s", act = signal { "SIGKILL" } }
R
	env NOTIFY_SOCKET="$sock" "$@" "$REFLEXD" run --rules "$T/rules" --journal "$T/journal.db" >> "$LOG" 2>&1 &
	DAEMON=$!
	STARTED="$STARTED $DAEMON"
}

# READY=1 comes once the sensors are attached and the rules loaded, after a
# STATUS= of the start; WATCHDOG=1 every half of WATCHDOG_USEC from then on;
# a reload, taken or rejected, shows in STATUS=; SIGTERM says STOPPING=1.
test_notify_ready_after_sensors_and_watchdog() {
	notify_run "$T/notify.sock" WATCHDOG_USEC=1000000
	wait_for "$NOTES" 'READY=1' 30
	grep -q 'ready-logged=yes' "$NOTES" || fail "READY=1 before the sensors were up: $(cat "$NOTES")"
	grep -n 'STATUS=starting the sensors' "$NOTES" > /dev/null || fail "no STATUS= for the start: $(cat "$NOTES")"
	[ "$(grep -n 'STATUS=starting' "$NOTES" | cut -d: -f1)" -lt "$(grep -n 'READY=1' "$NOTES" | cut -d: -f1)" ] ||
		fail "STATUS=starting after READY=1"
	grep -q 'STATUS=running: 1 rules from 1 files' "$NOTES" || fail "no running STATUS=: $(cat "$NOTES")"
	sleep 2.2
	pings=$(grep -c 'WATCHDOG=1' "$NOTES")
	[ "$pings" -ge 3 ] && [ "$pings" -le 6 ] || fail "$pings WATCHDOG=1 in ~2.2 s, want every 0.5 s"
	# the pings come from the loop: a stopped loop pings no more
	kill -STOP "$DAEMON"
	before=$(grep -c 'WATCHDOG=1' "$NOTES")
	sleep 1.2
	[ "$(grep -c 'WATCHDOG=1' "$NOTES")" = "$before" ] || fail "WATCHDOG=1 while the daemon was stopped"
	kill -CONT "$DAEMON"
	kill -HUP "$DAEMON"
	wait_for "$NOTES" 'STATUS=running: reloaded' 5
	write_rule broken <<'R'
rule "n-broken" { when = deadlock { }, act = signal { "SIGKILL" }, hold = "soon" }
R
	kill -HUP "$DAEMON"
	wait_for "$NOTES" 'STATUS=running: reload rejected, the running rules stay' 5
	kill -TERM "$DAEMON"
	wait_for "$NOTES" 'STOPPING=1' 5
	wait "$DAEMON" || fail "reflexd exited $? on SIGTERM"
}

# '@' names a socket in the abstract namespace; WATCHDOG_PID of another
# process means the watchdog is not reflexd's to feed.
test_notify_abstract_socket_and_foreign_watchdog() {
	notify_run "@reflexd-test-$$" WATCHDOG_USEC=200000 WATCHDOG_PID=1
	wait_for "$NOTES" 'READY=1' 30
	sleep 0.6
	! grep -q 'WATCHDOG=1' "$NOTES" || fail "pinged a watchdog set for pid 1"
	# and the daemon still works: a deadlock is killed
	start_wl deadlock abba --comm rx-notify
	wait_gone "$WL_PID" 5
	kill -TERM "$DAEMON"
	wait_for "$NOTES" 'STOPPING=1' 5
}

# A socket nobody listens on: reflexd says so and runs on.
test_notify_unreachable_socket_is_a_warning() {
	LOG=$T/daemon.log
	write_rule kill <<'R'
rule "n-kill" { when = deadlock { }, where = { comm = "rx-notify" }, hold = "1s", act = signal { "SIGKILL" } }
R
	NOTIFY_SOCKET=$T/nobody.sock start_daemon --rules "$T/rules"
	grep -q 'warn: notify: telling the service manager we are ready' "$LOG" || fail "no warning: $(cat "$LOG")"
	stop_daemon
}

run_tests
