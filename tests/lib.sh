# Shared by the tests: start reflexd and workloads, wait for what they say,
# read the journal, and clean up whatever a test started.
# Each test file defines test_* functions and ends with `run_tests`;
# ONLY=REGEX runs the tests whose names (without test_) match it.

cd "$(dirname "$0")/.." || exit 1
REFLEXD=$PWD/reflexd
WL=$PWD/build/workloads
T=$(mktemp -d /tmp/reflexd-test.XXXXXX)
STARTED=""
# waits last this many times longer: the kernel matrix runs the tests in a
# guest that qemu's TCG slows down (tests/kernels/matrix.sh)
SLOW=${REFLEXD_TEST_SLOW:-1}

kill_started() {
	for p in $STARTED; do
		kill -KILL "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}

# The tests listen on fixed ports in 47000-49999, inside the kernel's
# ephemeral range (32768-60999): a client socket in TIME_WAIT on one of
# them (connclient makes thousands) makes a backend's bind fail with
# EADDRINUSE for a minute. Reserved ports are never picked as ephemeral;
# the file that reserved them gives them back when it ends.
TEST_PORTS=47000-49999
RESERVED=/proc/sys/net/ipv4/ip_local_reserved_ports
reserved_before=
if reserved_now=$(cat "$RESERVED" 2> /dev/null) && ! echo ",$reserved_now," | grep -q ",$TEST_PORTS,"; then
	echo "${reserved_now:+$reserved_now,}$TEST_PORTS" > "$RESERVED" 2> /dev/null &&
		reserved_before=${reserved_now:-none}
fi

cleanup() {
	kill_started
	rm -rf "$T"
	if [ -n "$reserved_before" ]; then
		[ "$reserved_before" = none ] && reserved_before=
		echo "$reserved_before" > "$RESERVED" 2> /dev/null || true
	fi
}
trap cleanup EXIT

# A test fails with one line saying why.
fail() {
	echo "FAILED: $*" >&2
	return 1
}

# wait_for FILE PATTERN SECONDS: until an extended regex shows up in FILE.
wait_for() {
	end=$(( $(date +%s%N) / 1000000 + $3 * 1000 * SLOW ))
	while [ "$(( $(date +%s%N) / 1000000 ))" -lt "$end" ]; do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "no '$2' in $1 within $3 s: $(tail -5 "$1" 2>/dev/null)"
}

# write_rule NAME: the rule file $T/rules/NAME.lua from stdin.
write_rule() {
	mkdir -p "$T/rules"
	cat > "$T/rules/$1.lua"
}

# start_daemon ARGS...: reflexd run with its own journal and log; waits
# until its sensors are attached. Sets DAEMON (pid) and LOG.
start_daemon() {
	LOG=$T/daemon.log
	: > "$LOG"
	"$REFLEXD" run --journal "$T/journal.db" "$@" >> "$LOG" 2>&1 &
	DAEMON=$!
	STARTED="$STARTED $DAEMON"
	wait_for "$LOG" 'reflexd: info: ready|reflexd: error' 20 || return 1
	grep -q 'reflexd: info: ready' "$LOG" || fail "reflexd did not start: $(cat "$LOG")"
}

# stop_daemon: SIGTERM, and the exit status must be 0.
stop_daemon() {
	kill -TERM "$DAEMON" 2>/dev/null
	wait "$DAEMON"
	status=$?
	[ "$status" = 0 ] || fail "reflexd exited $status on SIGTERM: $(tail -3 "$LOG")"
}

# start_wl NAME ARGS...: a workload from tests/workloads; waits for its
# first line. Sets WL_PID and WL_LINE.
start_wl() {
	name=$1
	shift
	out=$T/wl.$name.$RANDOM
	"$WL/$name" "$@" > "$out" 2>&1 &
	WL_PID=$!
	STARTED="$STARTED $WL_PID"
	wait_for "$out" '^(formed|ready)' 10 || return 1
	WL_LINE=$(head -1 "$out")
}

# field KEY: the value of KEY=... in WL_LINE.
field() {
	echo "$WL_LINE" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

alive() {
	kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' /proc/"$1"/stat 2>/dev/null)" != Z ]
}

# holds JQ_FILTER: some JSON line on stdin makes the filter true. (jq -e
# alone judges only the last input, and fails when that one yields nothing.)
holds() {
	jq -s -e "any(.[]; $1)" > /dev/null
}

# audit ARGS...: the journal as JSON lines.
audit() {
	"$REFLEXD" audit --journal "$T/journal.db" --json "$@"
}

# wait_record JQ_FILTER SECONDS: until a decision matching the filter exists.
wait_record() {
	end=$(( $(date +%s) + $2 * SLOW ))
	while [ "$(date +%s)" -le "$end" ]; do
		[ -n "$(audit 2>/dev/null | jq -c "select($1)")" ] && return 0
		sleep 0.1
	done
	fail "no decision matching '$1' within $2 s; journal: $(audit 2>&1 | tail -3)"
}

# wait_gone PID SECONDS
wait_gone() {
	end=$(( $(date +%s) + $2 * SLOW ))
	while alive "$1"; do
		[ "$(date +%s)" -le "$end" ] || { fail "pid $1 still alive after $2 s"; return 1; }
		sleep 0.05
	done
}

# Each test runs in its own subshell with -e: the first failing step ends
# it, and whatever it started is killed.
run_tests() {
	for t in $(declare -F | awk '{print $3}' | grep -E "^test_(${ONLY:-.*})\$"); do
		rm -rf "$T/rules" "$T/journal.db"* "$T/daemon.log"
		( set -e; trap 'st=$?; kill_started; exit $st' EXIT; "$t" ) 2> "$T/err"
		if [ $? = 0 ]; then
			echo "ok - ${t#test_}"
		else
			echo "not ok - ${t#test_}: $(grep FAILED "$T/err" | tail -1 | sed 's/^FAILED: //')"
			cat "$T/err"
			echo "--- the last daemon's log:"
			grep -v 'debug: libbpf' "$T/daemon.log" 2>/dev/null | tail -20
		fi
	done
}
