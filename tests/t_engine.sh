# The engine's semantics, one test each, driven by hand-written condition
# traces through `reflexd simulate`: the daemon's own engine in virtual
# time, no kernel, no privileges, deterministic.
. "$(dirname "$0")/lib.sh"

# sim TRACE_BODY [ARGS...]: simulates $T/rules with the trace from stdin
# (the header is added), JSON lines on stdout.
sim() {
	{ echo "reflexd-trace 1 start=1795300000"; cat; } > "$T/trace"
	"$REFLEXD" simulate --trace "$T/trace" --rules "$T/rules" --json "$@"
}

# decisions JQ: the decisions (not verifications) as compact "rule outcome" lines.
decisions() {
	jq -r 'select(.id) | "\(.rule) \(.outcome) \(.time_unix_nano / 1e6 - 1795300000000 | floor)"'
}

test_hold_counts_from_when_the_condition_began() {
	echo 'rule "r" { when = deadlock { }, hold = "2s", act = signal { "SIGKILL" } }' | write_rule r
	out=$(sim <<'E' | decisions
5 raise 1 deadlock pid=10 comm=a since=4
9 raise 2 deadlock pid=11 comm=b
10 clear 2
E
)
	# 1 began at 4 s: decided at 6 s; 2 cleared after 1 s: never decided
	[ "$out" = "r acted 6000" ] || fail "$out"
}

# A recorded condition may have begun long before the recording (a
# process deadlocked for weeks): its negative since, as far back as a
# trace may say, counts as held that long, decided at its line's time.
test_since_long_before_the_trace() {
	echo 'rule "r" { when = deadlock { }, hold = "2s", act = signal { "SIGKILL" } }' | write_rule r
	for since in -1209600 -4294967295; do
		out=$(sim <<E | jq -r 'select(.id) | "\(.outcome) \(.time_unix_nano / 1e6 - 1795300000000) \(.held_ms)"'
5 raise 1 deadlock pid=10 comm=a since=$since
6 end
E
)
		[ "$out" = "acted 5000 $(( (5 - since) * 1000 ))" ] || fail "since=$since: $out"
	done
}

test_thresholds_on_measures() {
	write_rule r <<'R'
rule "fast-leak" { when = leak { rate = "8MiB/s" }, act = signal { "SIGKILL" } }
rule "many-goroutines" { when = goroutines { count = 1000, rate = "100/s" }, act = signal { "SIGKILL" } }
R
	# rate_bps 8 MiB/s exactly decides; 1 MiB/s does not, until fresh
	# evidence of the same condition crosses the threshold
	out=$(sim --explain <<'E' | jq -r 'select(.id) | "\(.pid) \(.rule) \(.held_ms)"' | paste -sd' '
1 raise 1 leak pid=10 evidence={"rate_bps":8388608,"rss_bytes":1}
2 raise 2 leak pid=11 evidence={"rate_bps":1048576}
4 raise 2 leak pid=11 since=2 evidence={"rate_bps":9e6}
5 raise 3 goroutines pid=12 evidence={"count":5000,"rate":50}
6 raise 4 goroutines pid=13 evidence={"nested":{"count":1},"count":1200,"rate":150.5}
7 raise 5 leak pid=14 evidence={}
E
)
	[ "$out" = "10 fast-leak 0 11 fast-leak 2000 13 many-goroutines 0" ] || fail "$out"
	{ echo "reflexd-trace 1"; echo '1 raise 1 leak pid=11 evidence={"rate_bps":1048576}'; echo '2 clear 1'; } > "$T/trace"
	"$REFLEXD" simulate --trace "$T/trace" --rules "$T/rules" --explain | grep -q 'rate_bps 1.04858e+06 is below 8.38861e+06' \
		|| fail "$("$REFLEXD" simulate --trace "$T/trace" --rules "$T/rules" --explain)"
}

test_where_filters() {
	write_rule r <<'R'
rule "by-comm" { when = deadlock { }, where = { comm = { "web*", "db" } }, act = signal { "SIGKILL" } }
rule "by-exe" { when = deadlock { }, where = { exe = "/opt/*" }, act = signal { "SIGKILL" } }
rule "by-cgroup" { when = deadlock { }, where = { cgroup = "/kubepods/*" }, act = signal { "SIGKILL" } }
rule "by-pid" { when = deadlock { }, where = { pid = 77 }, act = signal { "SIGKILL" } }
R
	out=$(sim <<'E' | jq -r 'select(.id) | "\(.pid) \(.rule)"' | paste -sd' '
1 raise 1 deadlock pid=10 comm=web-1
2 raise 2 deadlock pid=11 comm=x exe=/opt/app/bin
3 raise 3 deadlock pid=12 comm=x cgroup=/kubepods/pod1/c
4 raise 4 deadlock pid=77 comm=x
5 raise 5 deadlock pid=13 comm=nobody exe=/usr/bin/x cgroup=/system.slice
E
)
	[ "$out" = "10 by-comm 11 by-exe 12 by-cgroup 77 by-pid" ] || fail "$out"
}

test_first_rule_to_fire_decides_priority_first() {
	write_rule a <<'R'
rule "first-in-file" { when = deadlock { }, hold = "1s", act = signal { "SIGTERM" } }
rule "urgent" { when = deadlock { }, hold = "1s", act = signal { "SIGKILL" }, priority = 10 }
rule "quick" { when = deadlock { }, where = { comm = "q" }, hold = "0", act = signal { "SIGQUIT" } }
R
	out=$(sim <<'E' | jq -r 'select(.id) | "\(.pid) \(.rule)"' | paste -sd' '
0 raise 1 deadlock pid=10 comm=x
0 raise 2 deadlock pid=11 comm=q
E
)
	# one decision per condition: priority beats file order; a rule whose
	# hold passes first wins over one still holding
	[ "$out" = "11 quick 10 urgent" ] || fail "$out"
}

test_cooldown_per_target() {
	echo 'rule "r" { when = deadlock { }, act = signal { "SIGKILL" }, cooldown = "1m" }' | write_rule r
	out=$(sim <<'E' | decisions | paste -sd' '
0 raise 1 deadlock pid=10 start=5 comm=a
1 clear 1
2 raise 2 deadlock pid=10 start=5 comm=a
3 raise 3 deadlock pid=11 start=6 comm=b
4 clear 2
70 raise 4 deadlock pid=10 start=5 comm=a
E
)
	[ "$out" = "r acted 0 r suppressed 2000 r acted 3000 r acted 70000" ] || fail "$out"
}

test_recycled_pid_is_a_new_target() {
	echo 'rule "r" { when = deadlock { }, act = signal { "SIGKILL" }, cooldown = "1h" }' | write_rule r
	out=$(sim <<'E' | decisions | paste -sd' '
0 raise 1 deadlock pid=10 start=5 comm=a
1 clear 1
2 raise 2 deadlock pid=10 start=99 comm=a
E
)
	[ "$out" = "r acted 0 r acted 2000" ] || fail "$out"
}

test_settle_flapping_is_one_occurrence() {
	write_rule r <<'R'
rule "r" { when = deadlock { }, act = signal { "SIGKILL" }, verify = { within = "10s" }, settle = "3s" }
R
	out=$(sim <<'E' | jq -r 'if .id then "decide:\(.pid)@\(.time_unix_nano / 1e6 - 1795300000000 | floor)" else "verify:\(.verify)@\(.time_unix_nano / 1e6 - 1795300000000 | floor)" end' | paste -sd' '
0 raise 1 deadlock pid=10 start=1
1 clear 1
2 raise 2 deadlock pid=10 start=1
4 clear 2
20 raise 3 deadlock pid=10 start=1
E
)
	# back within settle: the same occurrence, no second decision; cleared
	# once it stayed clear 3 s; back after that: a new occurrence
	[ "$out" = "decide:10@0 verify:cleared after 4.0s@7000 decide:10@20000 verify:not cleared within 10.0s@30000" ] || fail "$out"
	echo 'rule "r" { when = deadlock { }, act = signal { "SIGKILL" } }' | write_rule r
	out=$(sim <<'E' | jq -r 'select(.id) | .pid' | wc -l
0 raise 1 deadlock pid=10 start=1
1 clear 1
2 raise 2 deadlock pid=10 start=1
E
)
	[ "$out" = 2 ] || fail "without settle, a recurrence is a new occurrence: $out decisions"
}

test_rule_budget() {
	echo 'rule "r" { when = deadlock { }, act = signal { "SIGKILL" }, budget = { max = 2, per = "10s" } }' | write_rule r
	out=$(sim <<'E' | decisions | paste -sd' '
0 raise 1 deadlock pid=10
1 raise 2 deadlock pid=11
2 raise 3 deadlock pid=12
11 raise 4 deadlock pid=13
E
)
	[ "$out" = "r acted 0 r acted 1000 r suppressed 2000 r acted 11000" ] || fail "$out"
	sim <<'E' | holds '.pid == 12 and .detail == "budget: this rule acted 2 times in the last 10.0s (max 2)"'
0 raise 1 deadlock pid=10
1 raise 2 deadlock pid=11
2 raise 3 deadlock pid=12
E
}

test_global_budget() {
	write_rule r <<'R'
rule "a" { when = deadlock { }, where = { comm = "a" }, act = signal { "SIGKILL" } }
rule "b" { when = deadlock { }, where = { comm = "b" }, act = signal { "SIGKILL" } }
R
	out=$(sim --budget-max 2 --budget-window 1m <<'E' | decisions | paste -sd' '
0 raise 1 deadlock pid=10 comm=a
1 raise 2 deadlock pid=11 comm=b
2 raise 3 deadlock pid=12 comm=a
61 raise 4 deadlock pid=13 comm=b
E
)
	[ "$out" = "a acted 0 b acted 1000 a suppressed 2000 b acted 61000" ] || fail "$out"
}

test_protected_targets() {
	echo 'rule "r" { when = deadlock { }, act = signal { "SIGKILL" } }' | write_rule r
	out=$(sim --protect-exe '/usr/sbin/important*' --protect-cgroup '/system.slice/db*' <<'E' | jq -r 'select(.id) | "\(.pid):\(.outcome):\(.detail)"'
0 raise 1 deadlock pid=1 comm=init
0 raise 2 deadlock pid=2 comm=kworker/0:1 kernel_thread=true
0 raise 3 deadlock pid=3 comm=kubelet
0 raise 4 deadlock pid=4 comm=x exe=/usr/sbin/important-daemon
0 raise 5 deadlock pid=5 comm=x cgroup=/system.slice/db.service
0 raise 6 deadlock pid=6 comm=ordinary
0 raise 7 deadlock pid=7 comm=sshd-session
0 raise 8 deadlock pid=8 comm=sshd-auth
0 raise 9 deadlock pid=9 comm=sshd-sessionx
E
)
	echo "$out" | grep -q "^1:suppressed:protected target: pid 1 (init)$" || fail "$out"
	echo "$out" | grep -q "^2:suppressed:protected target: kernel thread$" || fail "$out"
	echo "$out" | grep -q "^3:suppressed:protected target: comm 'kubelet' is protected by default" || fail "$out"
	echo "$out" | grep -q "^4:suppressed:protected target: exe '/usr/sbin/important-daemon' matches" || fail "$out"
	echo "$out" | grep -q "^5:suppressed:protected target: cgroup '/system.slice/db.service' matches" || fail "$out"
	echo "$out" | grep -q "^6:acted:" || fail "$out"
	# OpenSSH 9.8 and later: the session and authentication processes
	echo "$out" | grep -q "^7:suppressed:protected target: comm 'sshd-session' is protected by default" || fail "$out"
	echo "$out" | grep -q "^8:suppressed:protected target: comm 'sshd-auth' is protected by default" || fail "$out"
	echo "$out" | grep -q "^9:acted:" || fail "$out"
}

test_dry_run_global_and_per_rule() {
	write_rule r <<'R'
rule "live" { when = deadlock { }, where = { comm = "a" }, act = signal { "SIGKILL" } }
rule "trial" { when = deadlock { }, where = { comm = "b" }, act = signal { "SIGKILL" }, dry_run = true }
R
	out=$(sim <<'E' | decisions | paste -sd' '
0 raise 1 deadlock pid=10 comm=a
0 raise 2 deadlock pid=11 comm=b
E
)
	[ "$out" = "live acted 0 trial dry-run 0" ] || fail "$out"
	tail -n +2 "$T/trace" > "$T/body"
	out=$(sim --dry-run < "$T/body" | decisions | paste -sd' ')
	[ "$out" = "live dry-run 0 trial dry-run 0" ] || fail "--dry-run: $out"
}

test_dry_run_takes_its_own_budget() {
	write_rule r <<'R'
rule "trial" { when = deadlock { }, where = { comm = "b" }, act = signal { "SIGKILL" }, dry_run = true }
rule "live" { when = deadlock { }, where = { comm = "a" }, act = signal { "SIGKILL" } }
R
	out=$(sim --budget-max 1 <<'E' | decisions | paste -sd' '
0 raise 1 deadlock pid=10 comm=b
1 raise 2 deadlock pid=11 comm=b
2 raise 3 deadlock pid=12 comm=a
E
)
	# dry-run stops where live would; it never spends live's budget
	[ "$out" = "trial dry-run 0 trial suppressed 1000 live acted 2000" ] || fail "$out"
}

test_verification() {
	echo 'rule "r" { when = deadlock { }, act = signal { "SIGKILL" }, verify = { within = "5s" } }' | write_rule r
	out=$(sim <<'E' | jq -r 'select(.verify_of) | "\(.pid) \(.verify)"' | paste -sd' '
0 raise 1 deadlock pid=10
0 raise 2 deadlock pid=11
2.5 clear 1
E
)
	[ "$out" = "10 cleared after 2.5s 11 not cleared within 5.0s" ] || fail "$out"
}

test_escalation_ladder() {
	write_rule r <<'R'
rule "ladder" {
  when = deadlock { }, act = signal { "SIGQUIT" }, verify = { within = "2s" },
  escalate = { signal { "SIGTERM" }, signal { "SIGKILL" } },
}
R
	out=$(sim <<'E' | jq -r 'if .id then "\(.params.signal)@\(.time_unix_nano / 1e6 - 1795300000000 | floor):\(.detail | split(":")[0])" else "verify:\(.verify)" end' | paste -sd' '
0 raise 1 deadlock pid=10
5 clear 1
E
)
	[ "$out" = "SIGQUIT@0:simulated verify:not cleared within 2.0s SIGTERM@2000:escalation 1 of 2 verify:not cleared within 2.0s SIGKILL@4000:escalation 2 of 2 verify:cleared after 1.0s" ] \
		|| fail "$out"
}

test_recurrence_climbs_the_ladder() {
	write_rule r <<'R'
rule "ladder" {
  when = deadlock { }, act = signal { "SIGTERM" }, verify = { within = "10s" },
  escalate = signal { "SIGKILL" },
}
R
	out=$(sim <<'E' | jq -r 'select(.id) | "\(.params.signal)@\(.time_unix_nano / 1e6 - 1795300000000 | floor)"' | paste -sd' '
0 raise 1 deadlock pid=10 start=1
1 clear 1
3 raise 2 deadlock pid=10 start=1
4 clear 2
30 raise 3 deadlock pid=10 start=1
31 clear 3
E
)
	# back 2 s after SIGTERM "helped": the next rung; back after the window: the first
	[ "$out" = "SIGTERM@0 SIGKILL@3000 SIGTERM@30000" ] || fail "$out"
}

test_circuit_breaker_opens_and_closes() {
	echo 'rule "r" { when = deadlock { }, act = signal { "SIGTERM" }, verify = { within = "1s" }, breaker = { failures = 2, per = "1m" } }' \
		| write_rule r
	out=$(sim <<'E' | decisions | paste -sd' '
0 raise 1 deadlock pid=10
2 raise 2 deadlock pid=11
4 raise 3 deadlock pid=12
65 raise 4 deadlock pid=13
E
)
	# two actions did not help: the third is refused until they age out
	[ "$out" = "r acted 0 r acted 2000 r suppressed 4000 r acted 65000" ] || fail "$out"
	sim <<'E' | holds '.pid == 12 and (.detail | startswith("circuit open: 2 actions of this rule did not help within 1.0m"))'
0 raise 1 deadlock pid=10
2 raise 2 deadlock pid=11
4 raise 3 deadlock pid=12
E
}

test_simulation_is_deterministic() {
	write_rule r <<'R'
rule "r" { when = deadlock { }, hold = "1s", act = signal { "SIGKILL" }, verify = { within = "3s" }, cooldown = "5s" }
R
	for i in $(seq 40); do
		echo "$i raise $i deadlock pid=$((100 + i % 7)) start=$((i % 7)) comm=w$((i % 3))"
		[ $((i % 2)) = 0 ] && echo "$i.5 clear $((i - 1))"
	done > "$T/body"
	a=$(sim < "$T/body" | sha256sum)
	b=$(sim < "$T/body" | sha256sum)
	[ "$a" = "$b" ] || fail "two runs differ"
	[ "$(sim < "$T/body" | wc -l)" -gt 20 ] || fail "too few lines to mean anything"
}

test_function_when_and_computed_action() {
	write_rule f <<'R'
rule "big-cycles" {
  when = function(c) return c.kind == "deadlock" and (c.evidence.threads or 0) >= 3 end,
  hold = "1s",
  act = function(c) return signal { c.held_ms >= 3000 and "SIGKILL" or "SIGTERM" } end,
}
rule "slow" {
  when = deadlock { }, where = { comm = "slow" }, hold = "3s",
  act = function(c) return signal { c.held_ms >= 3000 and "SIGKILL" or "SIGTERM" } end,
}
R
	out=$(sim <<'E' | jq -r 'select(.id) | "\(.pid) \(.rule) \(.params.signal)"' | paste -sd' '
0 raise 1 deadlock pid=10 comm=a evidence={"threads":3,"cycle":[{"tid":1},{"tid":2},{"tid":3}]}
0 raise 2 deadlock pid=11 comm=b evidence={"threads":2}
0 raise 3 deadlock pid=12 comm=slow evidence={"threads":2}
E
)
	[ "$out" = "10 big-cycles SIGTERM 12 slow SIGKILL" ] || fail "$out"
}

test_failing_rule_functions_disable_only_their_rule() {
	write_rule f <<'R'
rule "errors" { when = function(c) return c.evidence.nope.deeper end, where = { comm = "e" }, act = signal { "SIGKILL" } }
rule "loops" { when = function(c) while true do end end, where = { comm = "l" }, act = signal { "SIGKILL" } }
rule "eats" { when = function(c) return #string.rep("x", 1 << 22) > 0 end, where = { comm = "m" }, act = signal { "SIGKILL" } }
rule "wrong-act" { when = deadlock { }, where = { comm = "w" }, act = function(c) return "SIGKILL" end }
rule "fine" { when = deadlock { }, where = { comm = "ok" }, act = signal { "SIGKILL" } }
R
	out=$(sim <<'E' | jq -r 'select(.id) | "\(.pid) \(.rule) \(.outcome): \(.detail)"'
0 raise 1 deadlock pid=10 comm=e
1 raise 2 deadlock pid=11 comm=l
2 raise 3 deadlock pid=12 comm=m
3 raise 4 deadlock pid=13 comm=w
4 raise 5 deadlock pid=14 comm=e
5 raise 6 deadlock pid=15 comm=ok
E
)
	echo "$out" | grep -q "^10 errors failed: rule disabled until the rules are reloaded: .*f.lua:1: attempt to index a nil value (field 'nope')$" || fail "$out"
	echo "$out" | grep -q "^11 loops failed: .*f.lua:2: instruction budget exceeded$" || fail "$out"
	echo "$out" | grep -q "^12 eats failed: .*memory limit exceeded$" || fail "$out"
	echo "$out" | grep -q "^13 wrong-act failed: .*act function returned string, not an action" || fail "$out"
	# a disabled rule stays quiet; the others carry on
	echo "$out" | grep -q "^14 " && fail "a disabled rule decided again: $out"
	echo "$out" | grep -q "^15 fine acted" || fail "$out"
}

test_explain_says_why_each_rule_did_or_did_not_decide() {
	write_rule r <<'R'
rule "workers" { when = deadlock { }, where = { comm = "worker*" }, hold = "2s", act = signal { "SIGKILL" } }
rule "big" { when = function(c) return (c.evidence.threads or 0) > 2 end, act = signal { "SIGKILL" } }
rule "db" { when = deadlock { }, where = { comm = "db" }, act = signal { "SIGTERM" } }
R
	out=$(sim --explain <<'E'
0 raise 1 deadlock pid=10 comm=worker-1 evidence={"threads":2}
1 clear 1
2 raise 2 deadlock pid=11 comm=db evidence={"threads":2}
E
)
	echo "$out" | holds '.no_decision == 1 and .explain == [
		{"rule":"workers","why":"hold: held 1.0s of 2.0s"},
		{"rule":"big","why":"its when function said no"},
		{"rule":"db","why":"where.comm: '"'worker-1'"' matches none of '"'db'"'"}]' \
		|| fail "undecided: $out"
	echo "$out" | holds '.pid == 11 and .explain == [
		{"rule":"big","why":"its when function said no"},
		{"rule":"db","why":"decides"},
		{"rule":"","why":"1 earlier rules: kind or where did not match"}]' || fail "decided: $out"
}

test_shipped_rules_pass_their_rule_tests() {
	out=$("$REFLEXD" test rules/)
	echo "$out" | grep -q "^ok   rules/deadlock.test.trace$" || fail "$out"
	echo "$out" | grep -q "^rule tests: [1-9][0-9]* passed, 0 failed$" || fail "$out"
}

test_rule_test_mismatch_is_a_readable_diff() {
	mkdir -p "$T/rt"
	echo 'rule "r" { when = deadlock { }, hold = "1s", act = signal { "SIGKILL" } }' > "$T/rt/r.lua"
	printf 'reflexd-trace 1\n0 raise 1 deadlock pid=10\n0 raise 2 deadlock pid=11\n0.5 clear 2\n' > "$T/rt/a.test.trace"
	printf '# expected\n+1.000s r 10 acted\n+1.000s r 11 acted\n' > "$T/rt/a.test.expect"
	set +e
	out=$("$REFLEXD" test "$T/rt")
	status=$?
	set -e
	[ "$status" = 1 ] || fail "exit $status: $out"
	echo "$out" | grep -q "^FAIL .*a.test.trace$" || fail "$out"
	echo "$out" | grep -q "^     - +1.000s r 11 acted$" || fail "$out"
	echo "$out" | grep -q "^rule tests: 0 passed, 1 failed$" || fail "$out"
	printf '+1.000s r 10 acted\n' > "$T/rt/a.test.expect"
	"$REFLEXD" test "$T/rt" | grep -q "^rule tests: 1 passed, 0 failed$"
}

test_diff_between_two_rule_sets() {
	mkdir -p "$T/old" "$T/new"
	echo 'rule "kill" { when = deadlock { }, hold = "2s", act = signal { "SIGKILL" } }' > "$T/old/r.lua"
	cat > "$T/new/r.lua" <<'R'
rule "spare-db" { when = deadlock { }, where = { comm = "db" }, act = signal { "SIGQUIT" }, dry_run = true }
rule "try-cache" { when = deadlock { }, where = { comm = "cache" }, hold = "2s", act = signal { "SIGTERM" }, dry_run = true }
rule "kill" { when = deadlock { }, hold = "5s", act = signal { "SIGKILL" } }
R
	{ echo "reflexd-trace 1"; printf '0 raise 1 deadlock pid=10 comm=web\n0 raise 2 deadlock pid=11 comm=db\n'
	  printf '0 raise 3 deadlock pid=12 comm=web\n0 raise 4 deadlock pid=13 comm=cache\n3 clear 3\n'; } > "$T/d.trace"
	set +e
	out=$("$REFLEXD" simulate --diff "$T/old" "$T/new" --trace "$T/d.trace")
	status=$?
	set -e
	[ "$status" = 1 ] || fail "exit $status: $out"
	# web 10: later (hold 5 s); db 11: spared by the new rule; web 12:
	# cleared at 3 s, so killed by the old rules only; cache 13: the same
	# moment, another verdict
	echo "$out" | grep -q "^- +2.000s kill 10 acted$" || fail "$out"
	echo "$out" | grep -q "^+ +5.000s kill 10 acted$" || fail "$out"
	echo "$out" | grep -q "^- +2.000s kill 12 acted$" || fail "$out"
	echo "$out" | grep -q "^+ +0.000s spare-db 11 dry-run$" || fail "$out"
	echo "$out" | grep -q "^~ +2.000s kill 13 acted$" || fail "$out"
	echo "$out" | grep -q "^  now +2.000s try-cache 13 dry-run$" || fail "$out"
	echo "$out" | grep -q "^0 the same, 1 changed, 3 only in .*old, 2 only in .*new$" || fail "$out"
	# the same rules on both sides: no difference, exit 0
	"$REFLEXD" simulate --diff "$T/old" "$T/old" --trace "$T/d.trace" | grep -q "^4 the same, 0 changed, 0 only"
}

# bad_trace BODY_FILE REGEX: simulate stops with exit 1 and the message.
bad_trace() {
	set +e
	out=$("$REFLEXD" simulate --trace "$1" --rules "$T/rules" 2>&1 >/dev/null)
	status=$?
	set -e
	[ "$status" = 1 ] || fail "exit $status for $(cat "$1")"
	echo "$out" | grep -Eq -- "$2" || fail "got '$out', want /$2/"
}

test_bad_traces_name_file_and_line() {
	echo 'rule "r" { when = deadlock { }, act = signal { "SIGKILL" } }' | write_rule r
	printf 'reflexd-trace 2\n' > "$T/v2"
	bad_trace "$T/v2" "v2:1: unsupported trace version '2' \(this reflexd reads 1\)"
	printf 'hello\n' > "$T/nohdr"
	bad_trace "$T/nohdr" "nohdr:1: not a reflexd trace"
	: > "$T/empty"
	bad_trace "$T/empty" "empty:0: empty trace"
	printf 'reflexd-trace 1\n# c\n2 raise 1 deadlock pid=1\n1 clear 1\n' > "$T/order"
	bad_trace "$T/order" "order:4: time 1 is before the previous event's"
	printf 'reflexd-trace 1\n1 raise 1 deadlok pid=1\n' > "$T/kind"
	bad_trace "$T/kind" "kind:2: unknown condition kind 'deadlok'"
	printf 'reflexd-trace 1\n1 raise 1 deadlock pid=1 comm="unterminated\n' > "$T/quote"
	bad_trace "$T/quote" "quote:2: unterminated quote"
	printf 'reflexd-trace 1\n1 raise 1 deadlock comm=x\n' > "$T/nopid"
	bad_trace "$T/nopid" "nopid:2: raise needs pid="
	printf 'reflexd-trace 1\n1 raise 1 deadlock pid=1 colour=red\n' > "$T/field"
	bad_trace "$T/field" "field:2: unknown field 'colour'"
	printf 'reflexd-trace 1\n1 raise 1 deadlock pid=1 evidence={"a":\n' > "$T/json"
	bad_trace "$T/json" "json:2: evidence must be a JSON object and the last field"
	printf 'reflexd-trace 1\nsoon raise 1 deadlock pid=1\n' > "$T/time"
	bad_trace "$T/time" "time:2: expected a time in seconds, got 'soon'"
	# a time whose nanoseconds do not fit 64 bits is refused, not wrapped
	printf 'reflexd-trace 1\n9223372037 raise 1 deadlock pid=1\n' > "$T/big"
	bad_trace "$T/big" "big:2: time 9223372037 out of range \\(at most 4294967295 seconds\\)"
	printf 'reflexd-trace 1\n18446744074.5 raise 1 deadlock pid=1\n' > "$T/wrap"
	bad_trace "$T/wrap" "wrap:2: time 18446744074.5 out of range"
	printf 'reflexd-trace 1 start=9223372037\n1 raise 1 deadlock pid=1\n' > "$T/start"
	bad_trace "$T/start" "start:1: start=9223372037: time out of range"
	printf 'reflexd-trace 1\n1 raise 1 deadlock pid=1 since=-18446744074\n' > "$T/sincebig"
	bad_trace "$T/sincebig" "sincebig:2: since=-18446744074: time out of range"
	printf 'reflexd-trace 1\n1 raise 1 deadlock pid=1 since=2\n' > "$T/since"
	bad_trace "$T/since" "since:2: since=2 must be seconds on the trace clock, not after the event"
	# decisions made before the bad line are still printed
	printf 'reflexd-trace 1\n1 raise 1 deadlock pid=5\n2 bogus\n' > "$T/partial"
	set +e
	out=$("$REFLEXD" simulate --trace "$T/partial" --rules "$T/rules" --json 2>/dev/null)
	set -e
	[ "$(echo "$out" | jq -r .pid)" = 5 ] || fail "lost the decision before the bad line: $out"
}

test_skip_bad_lines_counts_them() {
	echo 'rule "r" { when = deadlock { }, act = signal { "SIGKILL" } }' | write_rule r
	printf 'reflexd-trace 1\n1 raise 1 deadlock pid=5\nnonsense\n2 raise 2 deadlock pid=6\n3 frob 3\n' > "$T/skip"
	out=$("$REFLEXD" simulate --trace "$T/skip" --rules "$T/rules" --json --skip-bad 2>"$T/err2")
	[ "$(echo "$out" | jq -r .pid | paste -sd' ')" = "5 6" ] || fail "$out"
	grep -q "skip:3: expected a time in seconds, got 'nonsense' (skipped)" "$T/err2" || fail "$(cat "$T/err2")"
	grep -q "2 bad trace lines skipped" "$T/err2" || fail "$(cat "$T/err2")"
	# a bad header is not a line to skip: nothing after it can be read
	printf 'reflexd-trace 9\n1 raise 1 deadlock pid=5\n' > "$T/hdr"
	set +e
	timeout 10 "$REFLEXD" simulate --trace "$T/hdr" --rules "$T/rules" --skip-bad > /dev/null 2> "$T/err3"
	status=$?
	set -e
	[ "$status" = 1 ] || fail "exit $status with a bad header and --skip-bad"
	grep -q "hdr:1: unsupported trace version '9'" "$T/err3" || fail "$(cat "$T/err3")"
}

# A NUL byte in a line is named as such, and skipping that line keeps the
# next one (it once read as a line too long, whose skip took the next too).
test_nul_byte_in_a_trace_line() {
	echo 'rule "r" { when = deadlock { }, act = signal { "SIGKILL" } }' | write_rule r
	printf 'reflexd-trace 1\n1 raise 1 deadlock pid=5 comm=a\000b\n2 raise 2 deadlock pid=6\n' > "$T/nul"
	out=$("$REFLEXD" simulate --trace "$T/nul" --rules "$T/rules" --json --skip-bad 2>"$T/err")
	[ "$(echo "$out" | jq -r .pid)" = 6 ] || fail "the line after it was lost: $out"
	grep -q "nul:2: a NUL byte in the line (skipped)" "$T/err" || fail "$(cat "$T/err")"
	bad_trace "$T/nul" "nul:2: a NUL byte in the line"
}

run_tests
