# Traffic shift on the running kernel: two instances of a service behind
# one port (the sk_lookup steering program), a client connecting all the
# time, and a rule that shifts new connections off an instance when it
# deadlocks, drains its connections, and restores it when it recovers.
. "$(dirname "$0")/lib.sh"

SVC=47300
PORT_A=47301
PORT_B=47302
SERVICE="web=$SVC:$PORT_A,$PORT_B"
PIN=/sys/fs/bpf/reflexd-traffic

# backends HOLD_A [HOLD_B]: instances A and B (ts-backend-a, -b); touching
# $T/trig-a (-b) deadlocks one for HOLD seconds (0: for good).
backends() {
	start_wl backend A $PORT_A --comm ts-backend-a --trigger "$T/trig-a" --hold "$1"
	A_PID=$WL_PID
	A_OUT=$out
	start_wl backend B $PORT_B --comm ts-backend-b --trigger "$T/trig-b" --hold "${2:-0}"
	B_PID=$WL_PID
}

# client SECONDS ARGS...: connclient on the service port, in the background.
client() {
	secs=$1
	shift
	C=$T/client
	# a reply slower than the timeout is a failure: as slow as the machine
	"$WL/connclient" $SVC "$secs" --comm ts-client --timeout-ms $((1000 * SLOW)) "$@" > "$C" 2>&1 &
	C_PID=$!
	STARTED="$STARTED $C_PID"
	wait_for "$C" '^ready' 10
}

# count FROM_NS TO_NS RESULT: attempts started in [FROM, TO) that got RESULT
# (A, B, or fail for any failure).
count() {
	awk -v from="$1" -v to="$2" -v want="$3" '$1 == "att" && $2 >= from && $2 < to &&
		($4 == want || (want == "fail" && $4 ~ /^fail/)) { n++ } END { print n + 0 }' "$C"
}

# failed_before NS: attempts that failed and had ended by NS. One still in
# flight when a backend deadlocks may fail (it waits on the backend's lock
# until drained), so "before the deadlock" means ended before it.
failed_before() {
	awk -v to="$1" '$1 == "att" && $3 < to && $4 ~ /^fail/ { n++ } END { print n + 0 }' "$C"
}

# shifted_window: the shift's completion and the restore's decision,
# in ns: new connections are steered from when the shift was done (its
# intent is journaled first) until the restore was decided.
shifted_window() {
	shift=$(audit | jq -r 'select(.action == "traffic.shift") | .completed_unix_nano')
	restore=$(audit | jq -r 'select(.action == "traffic.restore") | .time_unix_nano')
}

shift_rule() {
	write_rule shift <<R
rule "shift-web" {
  when = deadlock { }, where = { comm = "ts-backend-*" }, hold = "1s",
  act = traffic.shift { service = "web", drain = true },
  settle = "1s", dry_run = $1,
}
R
}

# Draining closes sockets with bpf_sock_destroy (Linux 6.5+); on an older
# kernel a shift steers and says it did not drain (docs/kernels.md).
if bpftool btf dump file /sys/kernel/btf/vmlinux 2> /dev/null | grep -q "FUNC 'bpf_sock_destroy'"; then
	CAN_DRAIN=true
	DRAINED='[0-9]+ of its connections drained'
else
	CAN_DRAIN=false
	DRAINED='not drained: needs bpf_sock_destroy'
fi

field_of() { # FILE KEY: the value of KEY=... on its line
	sed -n "s/.*$2=\([0-9]*\).*/\1/p" "$1" | head -1
}

test_shift_drain_restore_on_deadlock() {
	shift_rule false
	backends 5
	start_daemon --rules "$T/rules" --service "$SERVICE" --sensors deadlock
	grep -q "service web: :$SVC steered to 2 backends" "$LOG"
	client 11 --hold 6 --hold-ports $PORT_A,$PORT_B
	sleep 1
	touch "$T/trig-a"
	wait_for "$A_OUT" '^deadlock' 3
	deadlock=$(field_of "$A_OUT" realtime_ns)
	wait_record '.action == "traffic.restore"' 12
	wait_for "$C" '^done' 8
	shifted_window
	sid=$(audit | jq -r 'select(.action == "traffic.shift") | .id')
	audit | holds ".action == \"traffic.shift\" and .outcome == \"acted\" and .pid == $A_PID and
		(.detail | test(\"away from :$PORT_A .pid $A_PID.; $DRAINED\"))" ||
		fail "shift record: $(audit | head -1)"
	audit | holds ".action == \"traffic.restore\" and .outcome == \"acted\" and
		(.detail | test(\"clear for 1.0s: undoing decision $sid; .*reach :$PORT_A .pid $A_PID. again\"))" ||
		fail "restore record: $(audit | tail -1)"
	echo "shift $(( (shift - deadlock) / 1000000 )) ms after the deadlock, restore $(( (restore - shift) / 1000000 )) ms after the shift"
	# before: both instances serve, nothing fails
	[ "$(count 0 "$deadlock" A)" -gt 5 ] && [ "$(count 0 "$deadlock" B)" -gt 5 ] ||
		fail "before the deadlock, not both served: A $(count 0 "$deadlock" A), B $(count 0 "$deadlock" B)"
	[ "$(failed_before "$deadlock")" = 0 ] || fail "failures before the deadlock: $(grep fail "$C" | head -2)"
	# shifted: every new connection reaches B, none fails
	[ "$(count "$shift" "$restore" A)" = 0 ] || fail "$(count "$shift" "$restore" A) connections reached A after the shift"
	[ "$(count "$shift" "$restore" fail)" = 0 ] ||
		fail "$(count "$shift" "$restore" fail) connections failed after the shift: $(grep fail "$C" | tail -2)"
	[ "$(count "$shift" "$restore" B)" -gt 20 ] || fail "too few connections while shifted"
	# restored: A serves again within a second, still nothing fails
	after=$((restore + 1000000000))
	[ "$(count "$after" 9999999999999999999 A)" -gt 5 ] || fail "A did not get traffic back after the restore"
	[ "$(count "$restore" 9999999999999999999 fail)" = 0 ] || fail "failures after the restore"
	# drained: the connections held on A were closed, those on B were not
	if $CAN_DRAIN; then
		[ "$(grep -c '^closed [0-9]* A ' "$C")" = 3 ] ||
			fail "held connections to A not all closed: $(grep -E '^(closed|ready)' "$C")"
	fi
	! grep -q '^closed [0-9]* B ' "$C" || fail "a connection to B was closed"
	stop_daemon
	rm -f "$PIN"
}

test_dry_run_shifts_nothing() {
	shift_rule true
	backends 4
	start_daemon --rules "$T/rules" --service "$SERVICE" --sensors deadlock
	client 8 --hold 2 --hold-ports $PORT_A --timeout-ms 300
	touch "$T/trig-a"
	wait_for "$A_OUT" '^recovered' 8
	wait_record '.action == "traffic.restore"' 4
	decided=$(audit | jq -r 'select(.action == "traffic.shift") | .time_unix_nano')
	recovered=$(sed -n 's/^recovered realtime_ns=//p' "$A_OUT")
	audit | holds '.action == "traffic.shift" and .outcome == "dry-run" and (.detail | startswith("would have run traffic.shift"))'
	audit | holds '.action == "traffic.restore" and .outcome == "dry-run"'
	# A, deadlocked, still got new connections (which timed out); its held ones stayed
	[ "$(count $((decided + 200000000)) "$recovered" fail)" -gt 0 ] || fail "no connection reached deadlocked A: shifted in dry-run?"
	! grep -q '^closed' "$C" || fail "dry-run drained connections"
	stop_daemon
	rm -f "$PIN"
}

test_never_shifts_the_last_healthy_backend() {
	shift_rule false
	start_daemon --rules "$T/rules" --service "$SERVICE" --sensors deadlock
	backends 0 0
	touch "$T/trig-a" "$T/trig-b"
	wait_record '.outcome == "failed"' 6
	wait_record '.outcome == "acted"' 2
	audit | holds '.outcome == "failed" and (.detail | test("no other healthy backend listens: not shifted away from :4730[12], its last one"))' ||
		fail "$(audit)"
	[ "$(audit | wc -l)" = 2 ] || fail "want 2 decisions: $(audit)"
	stop_daemon
	rm -f "$PIN"
}

test_restarted_instance_starts_healthy() {
	shift_rule false
	backends 0
	start_daemon --rules "$T/rules" --service "$SERVICE" --sensors deadlock
	touch "$T/trig-a"
	wait_record '.action == "traffic.shift" and .outcome == "acted"' 6
	kill -KILL "$A_PID"
	# its listener closes when it has exited, not when kill returns
	wait_gone "$A_PID" 5
	start_wl backend A2 $PORT_A --comm ts-backend-a
	for _ in $(seq 60); do
		[ "$(grep -c "backend :$PORT_A is in" "$LOG")" = 2 ] && break
		sleep 0.05
	done
	[ "$(grep -c "backend :$PORT_A is in" "$LOG")" = 2 ] || fail "the new instance was not taken in"
	client 2
	wait_for "$C" '^done' 5
	[ "$(count 0 9999999999999999999 fail)" = 0 ] || fail "failures: $(grep fail "$C" | head -2)"
	[ "$(count 0 9999999999999999999 A2)" -gt 5 ] || fail "the new instance gets no traffic"
	# the old one's condition ended with it: its restore finds nothing left to do
	wait_record '.action == "traffic.restore"' 4
	audit | holds ".action == \"traffic.restore\" and .outcome == \"acted\" and
		(.detail | endswith(\"nothing to restore: no backend is shifted away from pid $A_PID\"))" ||
		fail "restore: $(audit | tail -1)"
	stop_daemon
	rm -f "$PIN"
}

test_target_not_a_backend() {
	shift_rule false
	sed -i 's/ts-backend-\*/ts-other/' "$T/rules/shift.lua"
	start_daemon --rules "$T/rules" --service "$SERVICE" --sensors deadlock
	backends 0
	start_wl deadlock abba --comm ts-other
	wait_record '.outcome == "failed"' 6
	audit | holds ".detail | test(\"pid $WL_PID .ts-other. holds none of the listeners of service web .:$PORT_A, :$PORT_B.: nothing shifted\")" ||
		fail "$(audit)"
	stop_daemon
	rm -f "$PIN"
}

test_exit_undoes_the_shift_and_keeps_serving() {
	shift_rule false
	start_daemon --rules "$T/rules" --service "$SERVICE" --sensors deadlock
	backends 3
	touch "$T/trig-a"
	wait_record '.action == "traffic.shift" and .outcome == "acted"' 6
	stop_daemon
	audit | holds ".rule == \"(exit)\" and .action == \"traffic.restore\" and .outcome == \"acted\" and .pid == $A_PID and
		.detail == \"reflexd stopping: service web: new connections to :$SVC reach :$PORT_A (pid $A_PID) again\"" ||
		fail "no record of the undo at exit: $(audit | tail -1)"
	[ -e "$PIN" ] || fail "the steering program was not left pinned"
	wait_for "$A_OUT" '^recovered' 5
	client 1
	wait_for "$C" '^done' 5
	[ "$(count 0 9999999999999999999 fail)" = 0 ] || fail "failures with reflexd stopped: $(grep fail "$C" | head -2)"
	[ "$(count 0 9999999999999999999 A)" -gt 3 ] && [ "$(count 0 9999999999999999999 B)" -gt 3 ] ||
		fail "not both instances served with reflexd stopped"
	# a daemon with no services takes the steering away
	start_daemon --rules "$T/rules" --sensors deadlock
	grep -q 'no services declared: removed the steering' "$LOG" || fail "stale steering not removed"
	[ ! -e "$PIN" ] || fail "still pinned"
	stop_daemon
}

test_simulated_deadlock_shifts_and_restores() {
	shift_rule false
	cat > "$T/sim.trace" <<'TR'
reflexd-trace 1 start=1795300000
0.5 raise 1 deadlock pid=4242 start=100 comm=ts-backend-a summary="lock cycle 1→2→1" evidence={"threads":2}
6.0 clear 1
10 end
TR
	out=$("$REFLEXD" simulate --trace "$T/sim.trace" --rules "$T/rules" --json)
	echo "$out" | jq -s -e 'length == 2 and
		(.[0] | .action == "traffic.shift" and .outcome == "acted" and .pid == 4242 and .params.drain == true) and
		(.[1] | .action == "traffic.restore" and .outcome == "acted" and
		 (.detail | test("^clear for 1.0s: undoing decision " + "00000000-0000-0000-0000-000000000001")))' > /dev/null ||
		fail "simulate: $out"
	# the shift at hold (1 s after 0.5), the restore at settle (1 s after 6.0)
	times=$("$REFLEXD" simulate --trace "$T/sim.trace" --rules "$T/rules" | awk 'NR > 1 { print $1 }' | paste -sd,)
	[ "$times" = "+1.500s,+7.000s" ] || fail "times $times"
	# a restore is no action a budget counts: with max 2, the second shift still acts
	sed -i 's/settle = "1s",/settle = "1s", budget = { max = 2, per = "1h" },/' "$T/rules/shift.lua"
	sed -i 's/^10 end$/8.0 raise 2 deadlock pid=4343 start=200 comm=ts-backend-b\n12 end/' "$T/sim.trace"
	out=$("$REFLEXD" simulate --trace "$T/sim.trace" --rules "$T/rules" --json)
	echo "$out" | jq -s -e 'length == 3 and (.[2] | .action == "traffic.shift" and .outcome == "acted" and .pid == 4343)' > /dev/null ||
		fail "the restore counted against the budget: $out"
}

# Remote backends: 127.0.0.2 and .3 stand in for other hosts; clients
# connect to 127.0.0.10, where nothing listens, and connect4 steers them.
VIP=127.0.0.10
R1=127.0.0.2:47321
R2=127.0.0.3:47322
REMOTE="api=$VIP:47320:$R1,$R2"

test_remote_shift_at_connect() {
	write_rule remote <<R
rule "shift-api" {
  when = deadlock { }, where = { comm = "ts-remote-sick" }, hold = "1s",
  act = traffic.shift { service = "api", away_from = "$R1" },
  settle = "1s",
}
R
	start_wl backend R1 47321 --addr 127.0.0.2 --comm ts-backend-r1
	start_wl backend R2 47322 --addr 127.0.0.3 --comm ts-backend-r2
	start_daemon --rules "$T/rules" --service "$REMOTE" --sensors deadlock
	grep -q "service api: $VIP:47320 steered to 2 backends at connect" "$LOG"
	C=$T/client
	"$WL/connclient" 47320 8 --addr $VIP --comm ts-client > "$C" 2>&1 &
	STARTED="$STARTED $!"
	wait_for "$C" '^ready' 5
	sleep 0.5
	start_wl deadlock abba --comm ts-remote-sick
	wait_record '.action == "traffic.shift"' 5
	sleep 1.5
	kill -KILL "$WL_PID"
	wait_record '.action == "traffic.restore"' 5
	wait_for "$C" '^done' 8
	shifted_window
	audit | holds ".action == \"traffic.shift\" and .outcome == \"acted\" and .params.away_from == \"$R1\" and
		.detail == \"service api: new connections to $VIP:47320 go to $R2, away from $R1\"" ||
		fail "shift: $(audit | head -1)"
	audit | holds ".action == \"traffic.restore\" and .outcome == \"acted\" and .params.away_from == \"$R1\" and
		(.detail | endswith(\"new connections to $VIP:47320 reach $R1 again\"))" || fail "restore: $(audit | tail -1)"
	[ "$(count 0 "$shift" R1)" -gt 5 ] && [ "$(count 0 "$shift" R2)" -gt 5 ] || fail "not both served before"
	[ "$(count "$shift" "$restore" R1)" = 0 ] || fail "R1 got connections while shifted away from"
	[ "$(count "$shift" "$restore" R2)" -gt 20 ] || fail "too few connections while shifted"
	[ "$(count $((restore + 1000000000)) 9999999999999999999 R1)" -gt 5 ] || fail "R1 did not get traffic back"
	[ "$(count 0 9999999999999999999 fail)" = 0 ] || fail "failures: $(grep fail "$C" | head -2)"
	stop_daemon
	audit | holds '.rule == "(exit)"' && fail "nothing was shifted at exit, yet an exit record"
	rm -f "$PIN" "$PIN-connect"
}

test_remote_away_from_the_evidence() {
	write_rule remote <<'R'
rule "shift-lossy-peer" {
  when = retransmits { }, hold = "1s", settle = "2s",
  act = function(c) return traffic.shift { service = "api", away_from = c.evidence.peer } end,
}
R
	cat > "$T/sim.trace" <<'TR'
reflexd-trace 1 start=1795300000
0.0 raise 1 retransmits pid=4242 start=100 comm=ts-client evidence={"peer":"10.1.0.5:8080","rate":40}
3.0 clear 1
8 end
TR
	out=$("$REFLEXD" simulate --trace "$T/sim.trace" --rules "$T/rules" --json)
	echo "$out" | jq -s -e 'length == 2 and
		(.[0] | .action == "traffic.shift" and .params.away_from == "10.1.0.5:8080") and
		(.[1] | .action == "traffic.restore" and .params == {"service": "api", "away_from": "10.1.0.5:8080"})' > /dev/null ||
		fail "simulate: $out"
	# away_from is checked when the action is built
	sed -i 's/c.evidence.peer/"10.1.0.5"/' "$T/rules/remote.lua"
	out=$("$REFLEXD" simulate --trace "$T/sim.trace" --rules "$T/rules" --json)
	echo "$out" | jq -e 'select(.outcome == "failed") | .detail | test("away_from must be a remote backend like")' > /dev/null ||
		fail "bad away_from: $out"
}

test_bad_service_option() {
	write_rule ok <<'R'
rule "x" { when = deadlock { }, act = traffic.shift { service = "web" }, dry_run = true }
R
	set +e
	out=$("$REFLEXD" run --rules "$T/rules" --journal "$T/journal.db" --service web=$SVC:$PORT_A 2>&1)
	status=$?
	printf 'service = web=%s:%s,x\n' $SVC $PORT_A > "$T/reflexd.conf"
	conf=$("$REFLEXD" run --config "$T/reflexd.conf" --rules "$T/rules" --journal "$T/journal.db" 2>&1)
	cstatus=$?
	set -e
	[ "$status" != 0 ] && echo "$out" | grep -q "bad value 'web=$SVC:$PORT_A' for --service: a service needs at least two backends" ||
		fail "exit $status: $out"
	[ "$cstatus" != 0 ] && echo "$conf" | grep -q "reflexd.conf:1: bad value 'web=$SVC:$PORT_A,x' for --service: 'x' is not a backend port" ||
		fail "exit $cstatus: $conf"
	set +e
	out=$("$REFLEXD" run --rules "$T/rules" --journal "$T/journal.db" --service "api=$VIP:47320:127.0.0.2,$R2" 2>&1)
	status=$?
	set -e
	[ "$status" != 0 ] && echo "$out" | grep -q "bad value 'api=$VIP:47320:127.0.0.2,$R2' for --service: '127.0.0.2' is not a backend address like 10.1.0.5:8080" ||
		fail "exit $status: $out"
}

run_tests
