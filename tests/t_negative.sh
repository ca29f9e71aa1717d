# What is not a deadlock must never be reported as one. Watched for 32 s
# with a rule that would record anything at once (hold 0), next to a real
# deadlock that proves the daemon was watching all along.
. "$(dirname "$0")/lib.sh"

test_parked_and_contended_threads_are_not_deadlocks() {
	write_rule neg <<'R'
rule "anything-negative" { when = deadlock { }, where = { comm = "rx-neg-*" }, hold = "0", act = signal { "SIGKILL" } }
rule "control" { when = deadlock { }, where = { comm = "rx-control" }, hold = "0", act = signal { "SIGKILL" }, dry_run = true }
R
	start_daemon --rules "$T/rules"
	# threads parked on a condition variable (and one in timed waits)
	start_wl condwait --threads 4 --comm rx-neg-cond
	cond=$WL_PID
	# a mutex held by a thread that sleeps, with two threads waiting on it
	start_wl contend sleep --seconds 60 --waiters 2 --comm rx-neg-sleep
	sleeper=$WL_PID
	# a mutex held by a thread that computes, with two threads waiting
	start_wl contend spin --seconds 60 --waiters 2 --comm rx-neg-spin
	spinner=$WL_PID
	start_wl deadlock abba --comm rx-control
	control=$WL_PID
	sleep 32
	for p in $cond $sleeper $spinner; do
		alive "$p" || fail "pid $p was killed"
		grep -q "deadlock in pid $p " "$LOG" && fail "pid $p reported as a deadlock: $(grep "pid $p" "$LOG")"
	done
	[ "$(audit | jq -c 'select(.rule == "anything-negative")' | wc -l)" = 0 ] || fail "$(audit)"
	[ "$(audit | jq -c "select(.pid == $control)" | wc -l)" = 1 ] || fail "the control deadlock was not seen: $(audit)"
	# the waiters really were in futex waits the whole time
	for p in $sleeper $spinner; do
		[ "$(grep -l futex /proc/$p/task/*/wchan 2>/dev/null | wc -l)" -ge 2 ] \
			|| fail "pid $p: fewer than two threads in a futex wait"
	done
	stop_daemon
}

run_tests
