# Degrade, never die: a sensor that cannot load leaves the others running,
# visible in the log, /metrics, /readyz and `reflexd probe`; --require makes
# it fatal; /readyz follows the journal's writability. The failure is forced
# with the test hook REFLEX_TEST_FAIL_SENSORS (docs/architecture.md).
. "$(dirname "$0")/lib.sh"

METRICS=127.0.0.1:47650

http_code() {
	curl -s -o /dev/null -w '%{http_code}' "http://$METRICS$1"
}

# metric NAME: its value in /metrics
metric() {
	curl -s "http://$METRICS/metrics" | awk -v m="$1" '$1 == m {print $2}'
}

deadlock_and_leak_rules() {
	echo 'rule "dg-deadlock" { when = deadlock { }, where = { comm = "rx-dg" }, hold = "1s", act = signal { "SIGKILL" } }' \
		| write_rule deadlock
	echo 'rule "leak-kill" { when = leak { }, where = { comm = "rx-dg-leak" }, act = signal { "SIGKILL" } }' \
		| write_rule leak
}

test_probe_reports_every_sensor_and_actuator() {
	"$REFLEXD" probe > "$T/probe.txt"
	for c in deadlock leak goroutines memory retransmits signal traffic k8s; do
		grep -Eq "^(sensor|actuator) +$c " "$T/probe.txt" || fail "no row for $c: $(cat "$T/probe.txt")"
	done
	grep -q "^kernel   $(uname -r) " "$T/probe.txt" || fail "kernel line: $(head -1 "$T/probe.txt")"
	"$REFLEXD" probe --json > "$T/probe.json"
	python3 -m json.tool "$T/probe.json" > /dev/null || fail "not JSON: $(cat "$T/probe.json")"
	jq -e --arg r "$(uname -r)" '.kernel.release == $r and (.btf | type) == "boolean"
		and (.cgroup.mode | IN("v1", "v2", "hybrid", "none"))
		and ([.sensors[].name] == ["deadlock", "leak", "goroutines", "memory", "retransmits"])
		and ([.actuators[].name] == ["signal", "traffic", "k8s"])
		and all(.sensors[]; (.programs | length) > 0 and (.needs | length) > 0 and (.conditions | length) > 0)' \
		"$T/probe.json" > /dev/null || fail "shape: $(cat "$T/probe.json")"
	# on this kernel every sensor loads (the load is the authority)
	jq -e 'all(.sensors[]; .works)' "$T/probe.json" > /dev/null \
		|| fail "a sensor does not load here: $(jq -c '.sensors[] | select(.works | not) | {name, why}' "$T/probe.json")"
	# the cgroup mode is what the filesystem says
	mode=$(jq -r .cgroup.mode "$T/probe.json")
	case "$(stat -f -c %T /sys/fs/cgroup)" in
	cgroup2fs) [ "$mode" = v2 ] ;;
	tmpfs) [ "$mode" = hybrid ] || [ "$mode" = v1 ] ;;
	esac || fail "cgroup mode $mode for a $(stat -f -c %T /sys/fs/cgroup) /sys/fs/cgroup"
}

test_probe_shows_a_forced_failure_and_exits_0() {
	REFLEX_TEST_FAIL_SENSORS=leak "$REFLEXD" probe --json > "$T/probe.json"
	jq -e '(.sensors[] | select(.name == "leak") | .works == false and (.why | test("REFLEX_TEST_FAIL_SENSORS")))
		and (.sensors[] | select(.name == "deadlock") | .works)' "$T/probe.json" > /dev/null \
		|| fail "$(cat "$T/probe.json")"
	REFLEX_TEST_FAIL_SENSORS=leak "$REFLEXD" probe > "$T/probe.txt"
	grep -Eq '^sensor +leak +NO +forced down' "$T/probe.txt" || fail "$(cat "$T/probe.txt")"
}

# The issue's scenario: the leak sensor cannot load, a real ABBA deadlock
# next to it is still killed, and the failure shows everywhere.
test_leak_down_deadlock_still_killed() {
	deadlock_and_leak_rules
	echo 'rule "k8s-off" { when = deadlock { }, where = { comm = "rx-none" }, act = k8s.evict_pod { } }' | write_rule k8s
	unset KUBERNETES_SERVICE_HOST
	export REFLEX_TEST_FAIL_SENSORS=leak
	start_daemon --rules "$T/rules" --metrics "$METRICS"
	unset REFLEX_TEST_FAIL_SENSORS
	[ "$(grep -c 'sensor leak cannot run here' "$LOG")" = 1 ] || fail "not logged once: $(cat "$LOG")"
	grep -q "rule 'leak-kill' needs the leak sensor, which cannot run here: forced down by REFLEX_TEST_FAIL_SENSORS" "$LOG" \
		|| fail "the rule is not reported: $(cat "$LOG")"
	[ "$(metric 'reflexd_sensor_up{sensor="leak"}')" = 0 ] || fail "$(curl -s "http://$METRICS/metrics")"
	[ "$(metric 'reflexd_sensor_up{sensor="deadlock"}')" = 1 ] || fail "deadlock not up"
	grep -q "rule 'k8s-off' acts with k8s.evict_pod, which cannot act here: not in a cluster" "$LOG" \
		|| fail "the k8s rule is not reported: $(cat "$LOG")"
	[ "$(metric 'reflexd_actuator_up{actuator="k8s"}')" = 0 ] || fail "k8s actuator up"
	[ "$(metric 'reflexd_actuator_up{actuator="signal"}')" = 1 ] || fail "signal actuator down"
	[ "$(metric 'reflexd_rules_degraded')" = 2 ] || fail "rules_degraded $(metric reflexd_rules_degraded)"
	curl -s "http://$METRICS/metrics" | promtool check metrics > "$T/promtool" 2>&1 \
		|| fail "promtool: $(cat "$T/promtool")"
	# degraded, still ready: the leak sensor is not required
	[ "$(http_code /readyz)" = 200 ] || fail "readyz $(curl -s "http://$METRICS/readyz")"
	curl -s "http://$METRICS/readyz" | grep -q '^degraded: sensor leak is down: forced down' \
		|| fail "$(curl -s "http://$METRICS/readyz")"
	start_wl deadlock abba --comm rx-dg
	wait_record '.rule == "dg-deadlock" and .outcome == "acted"' 6
	wait_gone "$WL_PID" 2
	alive "$DAEMON" || fail "reflexd died"
	# a reload reports it again
	kill -HUP "$DAEMON"
	wait_for "$LOG" 'reloaded:' 5
	[ "$(grep -c "rule 'leak-kill' needs the leak sensor" "$LOG")" = 2 ] || fail "not reported on reload"
	stop_daemon
}

# A real failure, no hook: without CAP_NET_ADMIN the kernel refuses the
# retransmits sensor's cgroup/sock_create program and the traffic
# actuator's sockmap; the reason is libbpf's own, and the others run.
test_kernel_refusal_is_reported_with_libbpfs_reason() {
	deadlock_and_leak_rules
	echo 'rule "rt" { when = retransmits { }, where = { comm = "rx-none" }, act = signal { "SIGKILL" } }' | write_rule rt
	LOG=$T/daemon.log
	setpriv --bounding-set -all,+bpf,+perfmon,+sys_ptrace,+kill,+dac_override,+sys_resource \
		"$REFLEXD" run --journal "$T/journal.db" --rules "$T/rules" --metrics "$METRICS" > "$LOG" 2>&1 &
	DAEMON=$!
	STARTED="$STARTED $DAEMON"
	wait_for "$LOG" 'reflexd: info: ready|reflexd: error' 20
	! grep -q 'reflexd: error' "$LOG" || fail "an error line: $(grep 'reflexd: error' "$LOG")"
	grep -Eq "warn: sensor retransmits cannot run here, the others run without it: loading (and attaching )?the BPF programs[^:]*: Operation not permitted; libbpf: prog 'sock_create': BPF program load failed: Operation not permitted \(it needs Linux " "$LOG" \
		|| fail "$(grep retransmits "$LOG")"
	grep -q "warn: actuator traffic cannot act here.*libbpf: map '[a-z_]*': failed to create: Operation not permitted" "$LOG" \
		|| fail "$(grep traffic "$LOG")"
	grep -Eq "rule 'rt' needs the retransmits sensor, which cannot run here: loading (and attaching )?the BPF programs[^:]*: Operation not permitted" "$LOG" \
		|| fail "rule not reported"
	[ "$(metric 'reflexd_sensor_up{sensor="retransmits"}')" = 0 ] && [ "$(metric 'reflexd_sensor_up{sensor="deadlock"}')" = 1 ] \
		|| fail "$(curl -s "http://$METRICS/metrics" | grep _up)"
	curl -s "http://$METRICS/readyz" | grep -Eq "^degraded: sensor retransmits is down: loading (and attaching )?the BPF programs" \
		|| fail "$(curl -s "http://$METRICS/readyz")"
	start_wl deadlock abba --comm rx-dg
	wait_record '.rule == "dg-deadlock" and .outcome == "acted"' 6
	stop_daemon
}

# A verifier refusal: libbpf's line and the verifier's own last word, the
# reason a sensor refused on another kernel is reported with.
test_verifier_reason_is_captured() {
	[ -x build/unit/probe_capture ] || fail "build/unit/probe_capture missing: make units"
	out=$(build/unit/probe_capture build/unit/refused.bpf.o)
	# the verifier calls the number 'scalar' (5.19+) or 'inv' (before)
	echo "$out" | grep -Eqx "rc=-13 why=prog 'refused': BPF program load failed: Permission denied \(verifier: R0 invalid mem access '(scalar|inv)'\)" \
		|| fail "$out"
}

test_require_makes_a_missing_sensor_fatal() {
	deadlock_and_leak_rules
	set +e
	out=$(REFLEX_TEST_FAIL_SENSORS=leak "$REFLEXD" run --rules "$T/rules" --journal "$T/journal.db" \
		--require deadlock,leak 2>&1)
	status=$?
	set -e
	[ "$status" = 1 ] || fail "exit $status: $out"
	echo "$out" | grep -q "error: run: --require leak: the leak sensor cannot run here: forced down" || fail "$out"
	set +e
	out=$("$REFLEXD" run --rules "$T/rules" --journal "$T/journal.db" --require leek 2>&1)
	status=$?
	out2=$("$REFLEXD" run --rules "$T/rules" --journal "$T/journal.db" --sensors deadlock --require leak 2>&1)
	status2=$?
	out3=$("$REFLEXD" run --rules "$T/rules" --journal "$T/journal.db" --sensors deadlock,leek 2>&1)
	status3=$?
	set -e
	[ "$status" = 2 ] && echo "$out" | grep -q "no sensor called 'leek'" || fail "$status $out"
	[ "$status3" = 2 ] && echo "$out3" | grep -q "bad value 'deadlock,leek' for --sensors: no sensor called 'leek'" \
		|| fail "$status3 $out3"
	[ "$status2" = 1 ] && echo "$out2" | grep -q -- "--require leak, but --sensors leaves the leak sensor out" \
		|| fail "$status2 $out2"
}

test_every_sensor_down_is_not_ready() {
	deadlock_and_leak_rules
	export REFLEX_TEST_FAIL_SENSORS=deadlock,leak
	start_daemon --rules "$T/rules" --metrics "$METRICS" --sensors deadlock --sensors leak
	unset REFLEX_TEST_FAIL_SENSORS
	[ "$(http_code /readyz)" = 503 ] || fail "readyz $(http_code /readyz)"
	curl -s "http://$METRICS/readyz" | grep -q '^not ready: no sensor runs' || fail "$(curl -s "http://$METRICS/readyz")"
	[ "$(http_code /healthz)" = 200 ] || fail "healthz"
	stop_daemon
}

# The journal on a small tmpfs: full, /readyz says so (503); room again, 200.
# (A read-only remount is refused while SQLite holds the file open for
# writing, so a full filesystem stands for every "cannot write".)
test_readyz_follows_the_journal() {
	deadlock_and_leak_rules
	mkdir -p "$T/jfs"
	mount -t tmpfs -o size=4m tmpfs "$T/jfs"
	trap 'st=$?; kill_started; while umount -l "$T/jfs" 2>/dev/null; do :; done; exit $st' EXIT
	LOG=$T/daemon.log
	"$REFLEXD" run --journal "$T/jfs/journal.db" --rules "$T/rules" --metrics "$METRICS" >> "$LOG" 2>&1 &
	DAEMON=$!
	STARTED="$STARTED $DAEMON"
	wait_for "$LOG" 'reflexd: info: ready|reflexd: error' 20
	[ "$(http_code /readyz)" = 200 ] || fail "readyz $(curl -s "http://$METRICS/readyz")"
	dd if=/dev/zero of="$T/jfs/fill" bs=64k 2>/dev/null || true
	[ "$(http_code /readyz)" = 503 ] || fail "full: readyz $(http_code /readyz)"
	curl -s "http://$METRICS/readyz" | grep -q "^not ready: journal $T/jfs/journal.db is not writable: no space left" \
		|| fail "$(curl -s "http://$METRICS/readyz")"
	[ "$(http_code /healthz)" = 200 ] || fail "healthz while not ready"
	rm "$T/jfs/fill"
	[ "$(http_code /readyz)" = 200 ] || fail "readyz after room: $(curl -s "http://$METRICS/readyz")"
	# root passes any permission check; a read-only bind mount over the
	# journal's directory does not (the daemon's open file is on the mount below)
	mount --bind "$T/jfs" "$T/jfs"
	mount -o remount,bind,ro "$T/jfs"
	[ "$(http_code /readyz)" = 503 ] || fail "ro: readyz $(http_code /readyz)"
	curl -s "http://$METRICS/readyz" | grep -q "^not ready: journal $T/jfs/journal.db is not writable: Read-only" \
		|| fail "$(curl -s "http://$METRICS/readyz")"
	umount "$T/jfs"
	[ "$(http_code /readyz)" = 200 ] || fail "readyz after rw: $(curl -s "http://$METRICS/readyz")"
	stop_daemon
	umount "$T/jfs"
}

run_tests
