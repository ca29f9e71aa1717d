# reflexd's image, built here (deploy/image.sh: debootstrap'd Debian 12
# bases, then deploy/Dockerfile with podman) and run the way
# deploy/reflexd.yaml's DaemonSet runs it: the host's PID and network
# namespaces, its hostPath mounts, --cap-drop ALL plus exactly its
# capabilities, not privileged, seccomp and AppArmor as it says. It must
# see and kill a real deadlocked process of the host.
. "$(dirname "$0")/lib.sh"
ulimit -c 0
export CONTAINERS_CONF=$PWD/deploy/containers.conf
IMAGE=localhost/reflexd:test
CTR=reflexd-test-$$

# the container is not a child of the test: remove it with what it started
kill_started() {
	podman rm -f -t 0 "$CTR" > /dev/null 2>&1 || true
	for p in $STARTED; do
		kill -KILL "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}

# The first build fetches the base system and the build packages (about
# 4 minutes on a fresh machine); later ones reuse the cached bases and layers.
test_image_builds() {
	start=$(date +%s)
	sh deploy/image.sh "$IMAGE" > "$T/build.log" 2>&1 || fail "deploy/image.sh: $(tail -5 "$T/build.log")"
	size=$(podman image inspect -f '{{.Size}}' "$IMAGE")
	echo "image built in $(( $(date +%s) - start )) s, $(( size / 1000000 )) MB"
	# the binary finds every library it links in the runtime stage
	out=$(podman run --rm --network=none --entrypoint ldd "$IMAGE" /usr/local/bin/reflexd 2>&1) || fail "ldd: $out"
	! echo "$out" | grep -q 'not found' || fail "missing in the image: $(echo "$out" | grep 'not found')"
	for lib in $(readelf -d "$REFLEXD" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		echo "$out" | grep -q "$lib => /" || fail "$lib is not resolved in the image: $out"
	done
	version=$(podman run --rm --network=none "$IMAGE" --version 2>&1)
	[ "$version" = "$("$REFLEXD" --version)" ] || fail "the image's reflexd --version: $version"
}

# manifest_caps: the capabilities the DaemonSet adds, as capsh names them
manifest_caps() {
	python3 -c 'import sys, yaml
ds = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "DaemonSet"][0]
c = ds["spec"]["template"]["spec"]["containers"][0]
print("\n".join(sorted("cap_" + x.lower() for x in c["securityContext"]["capabilities"]["add"])))' deploy/reflexd.yaml
}

test_image_kills_a_host_deadlock_as_the_daemonset_runs_it() {
	podman image exists "$IMAGE" || fail "no $IMAGE: test_image_builds first"
	write_rule kill <<'R'
rule "image-kill" {
  when = deadlock { }, where = { comm = "rx-image" }, hold = "1s",
  act = signal { "SIGKILL" }, cooldown = "1m",
}
R
	# the manifest's own container, less --dry-run (what going live is),
	# the metrics on a test port, and this test's rule in the rules volume
	mapfile -t args < <(python3 tests/deploy/podman_args.py deploy/reflexd.yaml "$T" \
		--rules-dir "$T/rules" --env POD_IP=127.0.0.1 --env NODE_NAME="$(hostname)" |
		sed -e "s|^IMAGE\$|$IMAGE|" -e 's|^127\.0\.0\.1:9477$|127.0.0.1:47820|' | grep -vx -- --dry-run)
	printf '%s\n' "${args[@]}" | grep -qx -- '--cap-drop' || fail "no --cap-drop from the manifest"
	podman run -d --name "$CTR" "${args[@]}" --log-level debug > /dev/null || fail "podman run failed"
	LOG=$T/daemon.log
	end=$(( $(date +%s) + 30 ))
	until podman logs "$CTR" > "$LOG" 2>&1; grep -Eq 'info: ready|reflexd: error' "$LOG"; do
		[ "$(date +%s)" -le "$end" ] || fail "no ready line within 30 s"
		sleep 0.2
	done
	grep -q 'info: ready' "$LOG" || fail "reflexd did not start in the container"
	pid=$(podman inspect -f '{{.State.Pid}}' "$CTR")
	# exactly the manifest's capabilities, bounding set included, no new privileges
	for set in CapEff CapBnd; do
		got=$(capsh --decode="$(awk "/^$set:/ { print \$2 }" /proc/"$pid"/status)" | cut -d= -f2 | tr ',' '\n' | sort)
		[ "$got" = "$(manifest_caps)" ] || fail "$set is $(echo "$got" | paste -sd,), want $(manifest_caps | paste -sd,)"
	done
	grep -q '^NoNewPrivs:[[:space:]]*1' /proc/"$pid"/status || fail "no_new_privs is not set"
	# the host's PID and network namespaces, and the host's cgroup2 root
	for ns in pid net; do
		[ "$(readlink /proc/"$pid"/ns/$ns)" = "$(readlink /proc/self/ns/$ns)" ] || fail "not in the host's $ns namespace"
	done
	grep -q 'retransmits: sock_create attached to /host/sys/fs/cgroup' "$LOG" ||
		fail "cgroup/sock_create not on the host's hierarchy: $(grep retransmits "$LOG")"
	[ "$(curl -sf 127.0.0.1:47820/healthz)" = ok ] || fail "/healthz on the metrics address does not answer ok"
	# a real deadlock of the host, detected and killed from the container
	start_wl deadlock abba --comm rx-image
	wait_gone "$WL_PID" 5
	rec=$(podman exec "$CTR" reflexd audit --journal /var/lib/reflexd/journal.db --json --rule image-kill)
	echo "$rec" | jq -e ".pid == $WL_PID and .outcome == \"acted\" and .mode == \"live\" and
		.detail == \"SIGKILL sent to pid $WL_PID\" and .evidence.threads == 2" > /dev/null ||
		fail "the journal: $rec"
	# the journal is the host's (hostPath), as the DaemonSet keeps it
	[ -s "$T/var_lib_reflexd/journal.db" ] || fail "no journal on the host's side of the volume"
	# uprobes too (the goroutines sensor): the capabilities are enough
	export GOCACHE=$PWD/build/gocache GOPATH=$T/gopath
	[ -x "$WL/gr-image" ] || go build -o "$WL/gr-image" tests/workloads/gr_work.go || fail "go build"
	start_wl gr-image steady 10
	end=$(( $(date +%s) + 10 ))
	until podman logs "$CTR" 2>&1 | grep -q "goroutines: watching pid $WL_PID (gr-image)"; do
		[ "$(date +%s)" -le "$end" ] || fail "uprobes not attached: $(podman logs "$CTR" 2>&1 | grep "pid $WL_PID" | tail -2)"
		sleep 0.2
	done
	podman stop -t 10 "$CTR" > /dev/null
	[ "$(podman inspect -f '{{.State.ExitCode}}' "$CTR")" = 0 ] || fail "reflexd exited $(podman inspect -f '{{.State.ExitCode}}' "$CTR") on SIGTERM"
}

# in_sd CMD...: a command in the systemd container
in_sd() {
	podman exec "$CTR" "$@"
}

# start_sd_container: the systemd image with the unit, $T/dropin as its
# drop-ins and $T/rules.d as its rules; waits until systemd is up.
start_sd_container() {
	podman run -d --name "$CTR" --systemd=always --privileged --network=host \
		-v "$PWD/deploy/reflexd.service:/etc/systemd/system/reflexd.service:ro" \
		-v "$T/dropin:/etc/systemd/system/reflexd.service.d:ro" \
		-v "$T/rules.d:/etc/reflexd/rules.d:ro" \
		-v /sys/fs/bpf:/sys/fs/bpf -v /sys/kernel/tracing:/sys/kernel/tracing \
		"$IMAGE-systemd" > /dev/null || fail "podman run (systemd)"
	end=$(( $(date +%s) + 30 ))
	until in_sd systemctl is-system-running 2>/dev/null | grep -Eq 'running|degraded'; do
		[ "$(date +%s)" -le "$end" ] || fail "systemd did not come up: $(in_sd systemctl is-system-running 2>&1)"
		sleep 0.2
	done
}

# deploy/reflexd.service under a real systemd (PID 1 of a container, which
# is privileged so that systemd can set up the unit's own sandbox; reflexd
# runs inside that sandbox): the unit is "activating" until reflexd sends
# READY=1 after its sensors and rules are up, and "active" from then on;
# its STATUS= shows; its watchdog restarts a reflexd whose loop stops.
test_unit_reaches_active_only_after_ready() {
	podman image exists "$IMAGE" || fail "no $IMAGE: test_image_builds first"
	podman build --pull=never --network=host --build-arg IMAGE="$IMAGE" -t "$IMAGE-systemd" \
		-f tests/deploy/systemd.Containerfile tests/deploy > "$T/sd-build.log" 2>&1 ||
		fail "building the systemd image: $(tail -3 "$T/sd-build.log")"
	mkdir -p "$T/rules.d" "$T/dropin"
	cp rules/deadlock.lua "$T/rules.d/"
	# a short watchdog, to see it act within the test
	printf '[Service]\nWatchdogSec=2s\n' > "$T/dropin/watchdog.conf"
	start_sd_container
	in_sd systemctl start reflexd 2>/dev/null ||
		fail "systemctl start: $(in_sd journalctl -u reflexd --no-pager -o cat | grep -v libbpf | tail -4 | paste -sd"|")"
	[ "$(in_sd systemctl show -p ActiveState --value reflexd)" = active ] || fail "not active after start"
	# systemd took the unit as started only once reflexd said it was ready
	in_sd journalctl -u reflexd --no-pager -o cat > "$T/sd.log"
	ready=$(grep -n 'reflexd: info: ready' "$T/sd.log" | head -1 | cut -d: -f1)
	started=$(grep -n '^Started reflexd.service' "$T/sd.log" | head -1 | cut -d: -f1)
	[ -n "$ready" ] && [ -n "$started" ] && [ "$ready" -lt "$started" ] ||
		fail "systemd's Started (line $started) is not after reflexd's ready (line $ready): $(cat "$T/sd.log")"
	[ "$(in_sd systemctl show -p StatusText --value reflexd)" = "running: 1 rules from 1 files, dry-run" ] ||
		fail "STATUS: $(in_sd systemctl show -p StatusText --value reflexd)"
	# inside the unit's sandbox: its bounding set, its syscall filter
	main=$(in_sd systemctl show -p MainPID --value reflexd)
	bnd=$(capsh --decode="$(in_sd awk '/^CapBnd:/ { print $2 }' /proc/"$main"/status)" | cut -d= -f2)
	[ "$bnd" = cap_kill,cap_net_admin,cap_sys_ptrace,cap_sys_admin,cap_perfmon,cap_bpf ] || fail "bounding set $bnd"
	in_sd grep -q '^Seccomp:[[:space:]]*2' /proc/"$main"/status || fail "no seccomp filter"
	# the loop pings: still the same process 3 s later, with a 2 s watchdog
	grep -q 'notify: watchdog ping every 1 s' "$T/sd.log" || fail "no watchdog ping set up"
	sleep 3
	[ "$(in_sd systemctl show -p MainPID --value reflexd)" = "$main" ] || fail "restarted though the loop runs"
	in_sd systemctl reload reflexd 2>/dev/null || fail "systemctl reload: $(in_sd journalctl -u reflexd --no-pager -o cat | tail -2)"
	end=$(( $(date +%s) + 5 ))
	until in_sd systemctl show -p StatusText --value reflexd | grep -q '^running: reloaded'; do
		[ "$(date +%s)" -le "$end" ] || fail "no STATUS after reload: $(in_sd systemctl show -p StatusText --value reflexd)"
		sleep 0.2
	done
	# a stopped loop stops the pings: systemd kills and restarts reflexd
	in_sd sh -c "kill -STOP $main"
	end=$(( $(date +%s) + 10 ))
	until [ "$(in_sd systemctl show -p NRestarts --value reflexd)" = 1 ]; do
		[ "$(date +%s)" -le "$end" ] || fail "no restart by the watchdog: $(in_sd journalctl -u reflexd --no-pager | tail -3)"
		sleep 0.2
	done
	in_sd journalctl -u reflexd --no-pager | grep -q 'Watchdog timeout' || fail "restarted, but not by the watchdog"
	end=$(( $(date +%s) + 20 ))
	until [ "$(in_sd systemctl show -p ActiveState --value reflexd)" = active ]; do
		[ "$(date +%s)" -le "$end" ] || fail "not active again after the restart"
		sleep 0.2
	done
	in_sd systemctl stop reflexd
	[ "$(in_sd systemctl show -p Result --value reflexd)" = success ] ||
		fail "stop: $(in_sd systemctl show -p Result --value reflexd)"
}

# The same unit with reflexd kept from the notify socket stays
# "activating" and fails at its start timeout: systemd does wait for READY=1.
test_unit_without_ready_never_activates() {
	podman image exists "$IMAGE-systemd" || fail "no $IMAGE-systemd: test_unit_reaches_active_only_after_ready first"
	mkdir -p "$T/rules.d" "$T/dropin"
	cp rules/deadlock.lua "$T/rules.d/"
	printf '[Service]\nExecStart=\nExecStart=/usr/bin/env -u NOTIFY_SOCKET %s\nTimeoutStartSec=4s\nRestart=no\n' \
		"$(sed -n 's/^ExecStart=//p' deploy/reflexd.service)" > "$T/dropin/no-notify.conf"
	start_sd_container
	in_sd systemctl start --no-block reflexd
	sleep 2
	in_sd journalctl -u reflexd --no-pager -o cat | grep -q 'reflexd: info: ready' || fail "reflexd did not start"
	[ "$(in_sd systemctl show -p ActiveState --value reflexd)" = activating ] ||
		fail "active without READY=1: $(in_sd systemctl show -p ActiveState --value reflexd)"
	sleep 3
	[ "$(in_sd systemctl show -p Result --value reflexd)" = timeout ] ||
		fail "want a start timeout: $(in_sd systemctl show -p Result --value reflexd)"
}

run_tests
