# Record and replay: the live condition stream written to a trace, and the
# simulator, given that trace and the same rules, deciding as live did.
. "$(dirname "$0")/lib.sh"

test_replay_of_a_recorded_session_decides_as_live() {
	write_rule r <<'R'
rule "kill-abba" { when = deadlock { }, where = { comm = "rx-rec-a*" }, hold = "500ms", act = signal { "SIGKILL" }, cooldown = "1m" }
rule "kill-relock" { when = deadlock { }, where = { comm = "rx-rec-r" }, hold = "1s", act = signal { "SIGKILL" } }
R
	start_daemon --rules "$T/rules" --dry-run --record "$T/session.trace"
	start_wl deadlock abba --comm rx-rec-a1
	a1=$WL_PID
	start_wl deadlock relock --comm rx-rec-r
	r=$WL_PID
	start_wl deadlock ring3 --comm rx-rec-a2
	a2=$WL_PID
	wait_record ".pid == $a2" 4
	wait_record ".pid == $r" 4
	kill -KILL "$a1"
	sleep 0.5
	stop_daemon
	head -1 "$T/session.trace" | grep -Eq '^reflexd-trace 1 start=[0-9]+\.[0-9]{9}$' || fail "header: $(head -1 "$T/session.trace")"
	grep -q "clear" "$T/session.trace" || fail "the killed process's condition never cleared in the trace"
	live=$(audit | jq -r '"\(.rule) \(.pid) \(.outcome)"' | sort)
	replay=$("$REFLEXD" simulate --trace "$T/session.trace" --rules "$T/rules" --dry-run --json |
		jq -r 'select(.id) | "\(.rule) \(.pid) \(.outcome)"' | sort)
	[ "$(echo "$live" | wc -l)" = 3 ] || fail "live decided: $live"
	[ "$live" = "$replay" ] || fail "live: $live; replayed: $replay"
	# and the replay itself is deterministic
	a=$("$REFLEXD" simulate --trace "$T/session.trace" --rules "$T/rules" --json | sha256sum)
	b=$("$REFLEXD" simulate --trace "$T/session.trace" --rules "$T/rules" --json | sha256sum)
	[ "$a" = "$b" ] || fail "two replays differ"
}

test_record_command_writes_the_stream_and_stops() {
	# a comm with a newline, ESC and an invalid byte stays on its line
	start_wl deadlock abba --comm $'rx\nrec\x1b\xff'
	odd=$WL_PID
	start_wl deadlock abba --comm rx-rec-old
	sleep 0.3
	"$REFLEXD" record --out "$T/rec.trace" --duration 2s --journal "$T/journal.db" > "$T/rec.log" 2>&1
	grep -Eq "raise [0-9]+ deadlock pid=$WL_PID .*comm=rx-rec-old .*since=[0-9]" "$T/rec.trace" \
		|| fail "no raise for the deadlock that began before the recording: $(cat "$T/rec.trace")"
	# what was recorded reads back as a trace
	echo 'rule "r" { when = deadlock { }, where = { comm = "rx-rec-old" }, act = signal { "SIGKILL" } }' | write_rule r
	"$REFLEXD" simulate --trace "$T/rec.trace" --rules "$T/rules" --json | holds ".pid == $WL_PID" \
		|| fail "the recorded trace does not replay"
	LC_ALL=C grep -aqF "pid=$odd start=" "$T/rec.trace" || fail "no raise for pid $odd"
	LC_ALL=C grep -aqF $'comm="rx\\x0arec\\x1b\xff"' "$T/rec.trace" || fail "$(grep -a "pid=$odd" "$T/rec.trace")"
	echo 'rule "odd" { when = deadlock { }, where = { comm = "rx?rec*" }, act = signal { "SIGKILL" } }' | write_rule odd
	"$REFLEXD" simulate --trace "$T/rec.trace" --rules "$T/rules" --json |
		holds ".pid == $odd and .comm == \"rx\\nrec\\u001b\\\\xff\"" || fail "the odd comm does not replay"
	set +e
	out=$("$REFLEXD" record 2>&1)
	status=$?
	set -e
	[ "$status" = 2 ] && echo "$out" | grep -q "where to? (--out FILE)" || fail "$status $out"
}

run_tests
