# The guards that bound what the robot can do: per-rule and global budgets,
# cooldowns, the kill switch, verification, and all of it surviving a
# restart (the journal remembers). Driven by real deadlocked processes.
. "$(dirname "$0")/lib.sh"

# deadlock COMM: a fresh ABBA deadlock named COMM; sets WL_PID.
deadlock() {
	start_wl deadlock abba --comm "$1"
}

test_rule_budget_stops_the_third_action_and_survives_restart() {
	write_rule r <<'R'
rule "budgeted" {
  when = deadlock { }, where = { comm = "rx-budget" }, hold = "200ms",
  act = signal { "SIGKILL" }, budget = { max = 2, per = "1h" },
}
R
	start_daemon --rules "$T/rules"
	for _ in 1 2; do
		deadlock rx-budget
		wait_record ".pid == $WL_PID and .outcome == \"acted\"" 3
		wait_gone "$WL_PID" 1
	done
	deadlock rx-budget
	wait_record ".pid == $WL_PID and .outcome == \"suppressed\"" 3
	audit --pid "$WL_PID" | holds '.detail == "budget: this rule acted 2 times in the last 1.0h (max 2)"' \
		|| fail "$(audit --pid "$WL_PID")"
	alive "$WL_PID" || fail "the over-budget action ran"
	stop_daemon
	# a restart does not reset the blast radius
	start_daemon --rules "$T/rules"
	deadlock rx-budget
	wait_record ".pid == $WL_PID and .outcome == \"suppressed\"" 3
	alive "$WL_PID" || fail "a restart reset the budget"
	stop_daemon
}

test_global_budget_across_rules() {
	write_rule r <<'R'
rule "one" { when = deadlock { }, where = { comm = "rx-global-1" }, hold = "200ms", act = signal { "SIGKILL" } }
rule "two" { when = deadlock { }, where = { comm = "rx-global-2" }, hold = "200ms", act = signal { "SIGKILL" } }
R
	start_daemon --rules "$T/rules" --budget-max 1 --budget-window 10m
	deadlock rx-global-1
	wait_record ".pid == $WL_PID and .outcome == \"acted\"" 3
	deadlock rx-global-2
	wait_record ".pid == $WL_PID and .outcome == \"suppressed\"" 3
	audit --pid "$WL_PID" | holds '.detail == "global budget: 1 actions across all rules in the last 10.0m (max 1)"' || fail "$(audit --pid "$WL_PID")"
	stop_daemon
}

test_cooldown_survives_restart() {
	write_rule r <<'R'
rule "cool" { when = deadlock { }, where = { comm = "rx-cool" }, hold = "200ms", act = signal { "SIGKILL" }, cooldown = "1h", dry_run = true }
R
	start_daemon --rules "$T/rules"
	deadlock rx-cool
	wait_record ".pid == $WL_PID and .outcome == \"dry-run\"" 3
	stop_daemon
	# the same process, still deadlocked, is seen anew after the restart
	start_daemon --rules "$T/rules"
	wait_record ".pid == $WL_PID and .outcome == \"suppressed\"" 3
	audit --outcome suppressed | holds '.detail | test("^cooldown: this rule acted on this process recently \\((59|60)\\.[0-9]m left\\)$")' || fail "$(audit --outcome suppressed)"
	stop_daemon
}

test_kill_switch_turns_actions_into_dry_run() {
	write_rule r <<'R'
rule "ks" { when = deadlock { }, where = { comm = "rx-ks*" }, hold = "200ms", act = signal { "SIGKILL" } }
R
	touch "$T/stop"
	start_daemon --rules "$T/rules" --kill-switch "$T/stop"
	grep -q "kill switch $T/stop is set" "$LOG" || fail "no startup warning"
	deadlock rx-ks1
	wait_record ".pid == $WL_PID and .outcome == \"dry-run\"" 3
	audit --pid "$WL_PID" | holds ".mode == \"dry-run\" and (.detail | startswith(\"kill switch $T/stop is set: would have run signal\"))" || fail "$(audit --pid "$WL_PID")"
	alive "$WL_PID" || fail "acted with the kill switch set"
	# removed: the robot acts again, no restart needed
	rm "$T/stop"
	deadlock rx-ks2
	wait_record ".pid == $WL_PID and .outcome == \"acted\"" 3
	stop_daemon
}

test_verification_cleared_and_not_cleared() {
	write_rule r <<'R'
rule "kill-verified" {
  when = deadlock { }, where = { comm = "rx-verify-kill" }, hold = "200ms",
  act = signal { "SIGKILL" }, verify = { within = "3s" },
}
rule "useless" {
  when = deadlock { }, where = { comm = "rx-verify-cont" }, hold = "200ms",
  act = signal { "SIGCONT" }, verify = { within = "1s" },
}
R
	start_daemon --rules "$T/rules"
	deadlock rx-verify-kill
	kill_pid=$WL_PID
	deadlock rx-verify-cont
	cont_pid=$WL_PID
	wait_record ".pid == $kill_pid and (.verify | startswith(\"cleared after\"))" 4
	wait_record ".pid == $cont_pid and .verify == \"not cleared within 1.0s\"" 4
	grep -q "verification: not cleared within 1.0s" "$LOG" || fail "not logged"
	stop_daemon
}

test_breaker_survives_restart() {
	write_rule r <<'R'
rule "useless" {
  when = deadlock { }, where = { comm = "rx-breaker*" }, hold = "200ms",
  act = signal { "SIGCONT" }, verify = { within = "1s" }, breaker = { failures = 1, per = "1h" },
}
R
	start_daemon --rules "$T/rules"
	deadlock rx-breaker1
	wait_record ".pid == $WL_PID and .verify == \"not cleared within 1.0s\"" 4
	stop_daemon
	start_daemon --rules "$T/rules"
	deadlock rx-breaker2
	wait_record ".pid == $WL_PID and .outcome == \"suppressed\"" 3
	audit --pid "$WL_PID" | holds '.detail | startswith("circuit open: 1 actions of this rule did not help within 1.0h")' \
		|| fail "$(audit --pid "$WL_PID")"
	stop_daemon
	# editing the rule closes the breaker: it is a new version of the rule
	sed -i 's/per = "1h"/per = "2h"/' "$T/rules/r.lua"
	start_daemon --rules "$T/rules"
	deadlock rx-breaker3
	wait_record ".pid == $WL_PID and .outcome == \"acted\"" 3
	stop_daemon
}

test_journal_from_schema_1_is_migrated() {
	sqlite3 "$T/journal.db" "CREATE TABLE decisions (id TEXT PRIMARY KEY, time_ns INTEGER NOT NULL,
	  mode TEXT NOT NULL, host TEXT NOT NULL, rule TEXT NOT NULL, rule_file TEXT NOT NULL,
	  rule_hash TEXT NOT NULL, kind TEXT NOT NULL, held_ns INTEGER NOT NULL, pid INTEGER NOT NULL,
	  tid INTEGER NOT NULL, start_time INTEGER NOT NULL, comm TEXT NOT NULL, exe TEXT NOT NULL,
	  cgroup TEXT NOT NULL, summary TEXT NOT NULL, evidence TEXT NOT NULL, action TEXT NOT NULL,
	  params TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL, completed_ns INTEGER);
	  INSERT INTO decisions VALUES ('old-1', 1, 'live', 'h', 'r', 'f', 'x', 'deadlock', 0, 42, 0, 0,
	  'c', 'e', '/', 's', '{}', 'signal', '{}', 'acted', 'SIGKILL sent to pid 42', 2);
	  PRAGMA user_version = 1;"
	echo 'rule "r" { when = deadlock { }, where = { comm = "rx-none" }, act = signal { "SIGKILL" } }' | write_rule r
	start_daemon --rules "$T/rules"
	stop_daemon
	[ "$(sqlite3 "$T/journal.db" 'PRAGMA user_version')" = 5 ] || fail "not migrated"
	audit | holds '.id == "old-1" and .verify == "" and .detail == "SIGKILL sent to pid 42"' \
		|| fail "old record lost: $(audit)"
}

test_bad_budget_and_verify() {
	write_rule b <<'R'
rule "x" {
  when = deadlock { }, act = signal { "SIGKILL" },
  budget = { max = 0, per = "1h" },
  verify = { within = "soon" },
}
R
	set +e
	out=$("$REFLEXD" check "$T/rules/b.lua" 2>&1)
	set -e
	echo "$out" | grep -q "b.lua:3: rule 'x': budget.max must be a whole number from 1 to 1000000: a budget of 0 could never allow an action" \
		|| fail "$out"
	echo "$out" | grep -q "b.lua:4: rule 'x': verify.within: bad duration 'soon'" || fail "$out"
}

run_tests
