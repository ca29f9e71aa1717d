# The closed loop on the running kernel: real processes really deadlock,
# reflexd detects them with the right threads, decides by a Lua rule, and
# signals them (or, in dry-run, records that it would have).
. "$(dirname "$0")/lib.sh"
ulimit -c 0 # SIGABRT'd workloads leave no core files behind

# check_deadlock_record REC: the decision names the workload's pid and its
# deadlocked threads, and came within hold (1 s) + 1 s of the deadlock.
check_deadlock_record() {
	want_tids=$(field tids | tr ',' '\n' | sort -n | paste -sd,)
	got_tids=$(echo "$1" | jq -r '[.evidence.cycle[].tid] | sort | map(tostring) | join(",")')
	[ "$(echo "$1" | jq -r .pid)" = "$WL_PID" ] || fail "wrong pid: $1"
	[ "$got_tids" = "$want_tids" ] || fail "threads $got_tids, want $want_tids"
	[ "$(echo "$1" | jq -r .kind)" = deadlock ] || fail "kind: $1"
	late_ms=$(( ($(echo "$1" | jq -r .time_unix_nano) - $(field realtime_ns)) / 1000000 ))
	# the workload reads its clock after the barrier; its threads may already
	# sleep on the lock a little earlier, which is when the kernel starts hold
	[ "$late_ms" -ge 950 ] || fail "decided ${late_ms} ms after the deadlock, before hold (1 s)"
	[ "$late_ms" -le 2000 ] || fail "decided ${late_ms} ms after the deadlock, want <= hold + 1 s"
	echo "decision ${late_ms} ms after the deadlock formed (hold 1000 ms)"
}

# live_kill MODE: a deadlock of this shape is detected and killed.
live_kill() {
	write_rule live <<R
rule "kill-$1" {
  when = deadlock { }, where = { comm = "rx-$1" }, hold = "1s",
  act = signal { "SIGKILL" }, cooldown = "1m",
}
R
	start_daemon --rules "$T/rules"
	start_wl deadlock "$1" --comm "rx-$1"
	wait_record '.outcome == "acted"' 4
	wait_gone "$WL_PID" 1
	rec=$(audit --rule "kill-$1")
	[ "$(echo "$rec" | wc -l)" = 1 ] || fail "want one decision: $rec"
	check_deadlock_record "$rec"
	echo "$rec" | jq -e '.mode == "live" and .action == "signal" and .params.signal == "SIGKILL"' >/dev/null
	echo "$rec" | jq -e ".detail == \"SIGKILL sent to pid $WL_PID\"" >/dev/null || fail "detail: $rec"
	grep -q "deadlock in pid $WL_PID (rx-$1)" "$LOG" || fail "no log line for the deadlock"
	stop_daemon
}

test_abba_killed() {
	live_kill abba
}

test_ring_of_three_killed() {
	live_kill ring3
	[ "$(audit | jq '.evidence.threads')" = 3 ] || fail "want 3 threads in the cycle"
}

test_relock_own_mutex_killed() {
	live_kill relock
	audit | holds '.evidence.self_deadlock == true' || fail "not marked self_deadlock"
}

test_dry_run_records_and_spares() {
	write_rule live <<'R'
rule "kill-dry" { when = deadlock { }, where = { comm = "rx-dry" }, hold = "1s", act = signal { "SIGKILL" } }
R
	start_daemon --rules "$T/rules" --dry-run
	start_wl deadlock abba --comm rx-dry
	wait_record '.outcome == "dry-run"' 4
	check_deadlock_record "$(audit)"
	audit | holds '.mode == "dry-run" and (.detail | startswith("would have run signal"))'
	sleep 1
	alive "$WL_PID" || fail "dry-run killed the process"
	[ "$(audit | wc -l)" = 1 ] || fail "one deadlock, one decision: $(audit)"
	stop_daemon
}

test_rule_level_dry_run() {
	write_rule live <<'R'
rule "kill-dry-rule" {
  when = deadlock { }, where = { comm = "rx-dryrule" }, hold = "1s",
  act = signal { "SIGKILL" }, dry_run = true,
}
R
	start_daemon --rules "$T/rules"
	start_wl deadlock relock --comm rx-dryrule
	wait_record '.outcome == "dry-run"' 4
	sleep 0.5
	alive "$WL_PID" || fail "a dry_run rule killed the process"
	stop_daemon
}

test_two_step_signal_follows_up_after_grace() {
	# SIGCONT does nothing to a running process, so the followup must come
	write_rule live <<'R'
rule "two-step" {
  when = deadlock { }, where = { comm = "rx-twostep" }, hold = "500ms",
  act = signal { "SIGCONT", followup = "SIGKILL", grace = "1s" },
}
R
	start_daemon --rules "$T/rules"
	start_wl deadlock abba --comm rx-twostep
	wait_record '.outcome == "pending"' 3
	alive "$WL_PID" || fail "killed before the grace period ended"
	wait_record '.outcome == "acted"' 3
	wait_gone "$WL_PID" 1
	audit | holds '.detail == "SIGCONT sent; still running after 1.0s, so SIGKILL sent"' \
		|| fail "detail: $(audit)"
	stop_daemon
}

test_two_step_ends_early_when_the_process_exits() {
	write_rule live <<'R'
rule "two-step-abort" {
  when = deadlock { }, where = { comm = "rx-abort" }, hold = "500ms",
  act = signal { "SIGABRT", followup = "SIGKILL", grace = "10s" },
}
R
	start_daemon --rules "$T/rules"
	start_wl deadlock ring3 --comm rx-abort
	wait_record '.outcome == "acted"' 4
	audit | holds '.detail | test("^SIGABRT sent; the process exited after [0-9]+ms$")' \
		|| fail "detail: $(audit)"
	stop_daemon
}

test_protected_by_config_is_never_signalled() {
	write_rule live <<'R'
rule "kill-prot" { when = deadlock { }, where = { comm = "rx-prot" }, hold = "500ms", act = signal { "SIGKILL" } }
R
	start_daemon --rules "$T/rules" --protect-comm 'rx-prot*'
	start_wl deadlock abba --comm rx-prot
	wait_record '.outcome == "suppressed"' 3
	audit | holds '.detail == "protected target: comm '"'rx-prot'"' matches protected '"'rx-prot*'"'"' \
		|| fail "detail: $(audit)"
	sleep 1
	alive "$WL_PID" || fail "a protected process was signalled"
	[ "$(audit | wc -l)" = 1 ] || fail "one suppression, no more: $(audit)"
	stop_daemon
}

test_builtin_protected_names() {
	write_rule live <<'R'
rule "kill-sshd" { when = deadlock { }, where = { comm = "sshd" }, hold = "500ms", act = signal { "SIGKILL" } }
R
	start_daemon --rules "$T/rules"
	start_wl deadlock abba --comm sshd
	wait_record '.outcome == "suppressed"' 3
	audit | holds '.detail | test("protected by default")' || fail "$(audit)"
	alive "$WL_PID" || fail "sshd was signalled"
	stop_daemon
}

test_shipped_rules_in_dry_run() {
	start_daemon --rules rules/ --dry-run
	start_wl deadlock abba --comm rx-shipped
	wait_record ".pid == $WL_PID and .outcome == \"dry-run\"" 5
	audit | holds ".pid == $WL_PID and .rule == \"deadlock-kill\""
	alive "$WL_PID" || fail "shipped rules in dry-run killed a process"
	stop_daemon
}

test_target_gone_before_the_action() {
	write_rule live <<'R'
rule "kill-gone" { when = deadlock { }, where = { comm = "rx-gone" }, hold = "300ms", act = signal { "SIGKILL" } }
R
	start_daemon --rules "$T/rules" --act-delay 2s
	start_wl deadlock abba --comm rx-gone
	wait_record '.outcome == "pending"' 3
	kill -KILL "$WL_PID"
	wait_record '.outcome == "failed"' 4
	audit | holds '.detail | test("already gone|no longer the process")' || fail "$(audit)"
	stop_daemon
}

test_stall_without_a_cycle_is_a_stall_not_a_deadlock() {
	write_rule live <<'R'
rule "deadlocks" { when = deadlock { }, where = { comm = "rx-stall" }, act = signal { "SIGKILL" }, dry_run = true }
rule "stalls" { when = stall { }, where = { comm = "rx-stall" }, hold = "1s", act = signal { "SIGKILL" } }
R
	start_daemon --rules "$T/rules" --stall-after 500ms
	start_wl stall --comm rx-stall
	wait_record ".pid == $WL_PID and .outcome == \"acted\"" 4
	wait_gone "$WL_PID" 1
	rec=$(audit --pid "$WL_PID")
	[ "$(echo "$rec" | wc -l)" = 1 ] || fail "one decision, the stall's: $rec"
	echo "$rec" | holds '.kind == "stall" and .rule == "stalls" and .evidence.threads == 3' || fail "$rec"
	# the workers wait on main's mutex; main waits on a condition variable
	main_tid=$(field tids | cut -d, -f1)
	echo "$rec" | holds "[.evidence.waits[] | select(.lock == \"mutex\") | .held_by_tid] == [$main_tid, $main_tid]" \
		|| fail "who holds what: $rec"
	grep -q "stall in pid $WL_PID (rx-stall): all 3 threads asleep in futex waits" "$LOG" || fail "no log line"
	stop_daemon
}

# The naming itself, without BPF or a daemon: tests/unit/symbols reads the
# registers with ptrace (the sensor gets them from its scan) and prints
# what the sensor would name, on each build of the workload.
test_symbols_name_functions_and_globals_on_every_build() {
	[ -x build/unit/symbols ] || fail "build/unit/symbols missing: make units"
	for b in fp nofp nodebug; do
		start_wl "deadlock-$b" abba
		base=$(awk '$3 == "00000000" && $6 ~ /deadlock-/ { split($1, a, "-"); print a[1]; exit }' "/proc/$WL_PID/maps")
		heap=$(awk '$6 == "[heap]" { split($1, a, "-"); print a[1]; exit }' "/proc/$WL_PID/maps")
		addr() { printf '0x%x' $(( 0x$base + 0x$(nm "$WL/deadlock-$b" | awk -v s="$1" '$3 == s { print $1 }') + $2 )); }
		# shellcheck disable=SC2046 # one argument a thread
		out=$(build/unit/symbols "$WL_PID" $(field tids | tr , ' ') -- account_lock="$(addr account_lock 0)" \
			ledger_word="$(addr ledger_lock 8)" heap="$(printf '0x%x' $(( 0x$heap + 16 )))") || fail "$b: $out"
		for t in $(field tids | tr , ' '); do
			echo "$out" | grep -Eq "^$t (transfer_funds|audit_ledger)\+0x[0-9a-f]+ " || fail "$b: tid $t unnamed: $out"
			if [ "$b" != nodebug ]; then
				echo "$out" | grep -Eq "^$t (transfer_funds|audit_ledger)\+0x[0-9a-f]+ deadlock\.c:[0-9]+ " \
					|| fail "$b: tid $t has no file:line: $out"
			fi
		done
		echo "$out" | grep -qx "data account_lock=account_lock" || fail "$b: $out"
		echo "$out" | grep -qx "data ledger_word=ledger_lock+0x8" || fail "$b: $out"
		echo "$out" | grep -qx "data heap=\[heap\]+0x10" || fail "$b: $out"
		kill -KILL "$WL_PID"
	done
}

# finding SHAPE: the summary a deadlock of the workload's SHAPE must have.
finding() {
	case $1 in
	abba) echo "transfer_funds() holds account_lock, waits for ledger_lock; audit_ledger() holds ledger_lock, waits for account_lock" ;;
	ring3) echo "take_order() holds orders_lock, waits for stock_lock; ship_stock() holds stock_lock, waits for billing_lock; bill_customer() holds billing_lock, waits for orders_lock" ;;
	relock) echo "refresh_cache() holds cache_lock, waits for cache_lock, which it holds itself" ;;
	esac
}

# named_record SHAPE BUILD: the decision on workload SHAPE built as BUILD.
named_record() {
	audit | jq -c "select(.pid == $(cat "$T/pid.$1.$2"))"
}

# The finding names the functions and the global mutexes, on every build a
# user runs: with frame pointers, without, and without debug info.
test_deadlocks_and_stalls_named_by_function_and_lock() {
	write_rule live <<'R'
rule "named-deadlock" { when = deadlock { }, where = { comm = "rx-named" }, hold = "300ms", act = signal { "SIGKILL" } }
rule "named-stall" { when = stall { }, where = { comm = "rx-named" }, hold = "300ms", act = signal { "SIGKILL" } }
R
	start_daemon --rules "$T/rules" --dry-run --stall-after 500ms --record "$T/named.trace"
	for b in fp nofp nodebug; do
		for shape in abba ring3 relock; do
			start_wl "deadlock-$b" "$shape" --comm rx-named
			echo "$WL_PID" > "$T/pid.$shape.$b"
		done
		start_wl "stall-$b" --comm rx-named
		echo "$WL_PID" > "$T/pid.stall.$b"
	done
	for b in fp nofp nodebug; do
		for shape in abba ring3 relock stall; do
			pid=$(cat "$T/pid.$shape.$b")
			wait_record ".pid == $pid" 6
		done
		for shape in abba ring3 relock; do
			rec=$(named_record "$shape" "$b")
			echo "$rec" | holds ".summary == \"$(finding "$shape")\"" || fail "$shape ($b): $(echo "$rec" | jq -r .summary)"
			# each member's stack reaches its function, with file:line where there is debug info
			echo "$rec" | holds '[.evidence.cycle[] | .blocked_in as $f | .stack | any(startswith($f + "+0x"))] | all' \
				|| fail "$shape ($b): a stack without its function: $rec"
			if [ "$b" != nodebug ]; then
				echo "$rec" | holds '[.evidence.cycle[] | .blocked_in as $f | .stack | any(startswith($f + "+0x") and test(" deadlock\\.c:[0-9]+ "))] | all' \
					|| fail "$shape ($b): no file:line: $rec"
			fi
		done
		echo "abba ($b): $(named_record abba "$b" | jq -c '.evidence.cycle[0] | {blocked_in, lock_name, holds, stack}')"
		rec=$(named_record stall "$b")
		echo "$rec" | holds '.kind == "stall"' || fail "stall ($b): $rec"
		echo "$rec" | holds '.summary | test(": wait_for_reload\\(\\) holds config_lock, waits on reload_cond(\\+0x[0-9a-f]+)? \\(no owner: not a lock\\); apply_config\\(\\) waits for config_lock; apply_config\\(\\) waits for config_lock$")' \
			|| fail "stall ($b): $(echo "$rec" | jq -r .summary)"
		echo "$rec" | holds '[.evidence.waits[] | select(.blocked_in == "apply_config") | .lock_name] == ["config_lock", "config_lock"]' \
			|| fail "stall ($b): $rec"
	done
	stop_daemon
	# the names travel with the evidence: into traces, and out of a replay
	pid=$(cat "$T/pid.abba.nofp")
	"$REFLEXD" simulate --trace "$T/named.trace" --rules "$T/rules" --json |
		holds "select(.pid == $pid) | .summary == \"$(finding abba)\" and
			([.evidence.cycle[].blocked_in] | sort) == [\"audit_ledger\", \"transfer_funds\"]" \
		|| fail "the replay lost the names: $(grep "pid=$pid" "$T/named.trace" | head -2)"
}

# --no-stacks: the same deadlock, by tids and addresses only (what
# tests/bench/b_deadlock.sh measures against the names)
test_no_stacks_names_tids_and_addresses_only() {
	write_rule live <<'R'
rule "plain" { when = deadlock { }, where = { comm = "rx-plain" }, hold = "300ms", act = signal { "SIGKILL" } }
R
	start_daemon --rules "$T/rules" --dry-run --no-stacks
	start_wl deadlock abba --comm rx-plain
	wait_record '.outcome == "dry-run"' 4
	rec=$(audit)
	echo "$rec" | holds '.summary | test("^lock cycle [0-9]+→[0-9]+→[0-9]+ \\(2 threads\\)$")' \
		|| fail "summary: $(echo "$rec" | jq -r .summary)"
	echo "$rec" | holds '[.evidence.cycle[] | has("stack") or has("lock_name")] | any | not' \
		|| fail "names with --no-stacks: $rec"
	echo "$rec" | holds '[.evidence.cycle[].waits_on | test("^0x[0-9a-f]+$")] | all' || fail "addresses: $rec"
	stop_daemon
}

run_tests
