# The reflex arc on the running kernel: a process whose resident memory
# climbs past an in_kernel rule's threshold is signalled by the BPF program
# itself, and the decision is recorded afterwards; dry-run only reports,
# protected processes are never armed, and the same rule without in_kernel
# acts through the engine. One program on rss_stat serves the reflex and the
# leak sensor.
. "$(dirname "$0")/lib.sh"

MIB=1048576

# grow_armed COMM ARGS...: the grow workload, let go once reflexd armed it.
grow_armed() {
	comm=$1
	shift
	start_wl grow --comm "$comm" --go "$T/go.$comm" "$@"
	GROW_OUT=$out
	wait_for "$LOG" "memory: pid $WL_PID \\($comm\\) armed" 5
	touch "$T/go.$comm"
}

# killed_at_threshold: the workload died of SIGKILL, and the one record
# says so with an rss just past 128 MiB.
killed_at_threshold() {
	wait_gone "$WL_PID" 8
	status=0
	wait "$WL_PID" || status=$?
	[ "$status" = 137 ] || fail "exit status $status, want 137 (SIGKILL)"
	grep -q "grown mib=144" "$GROW_OUT" && fail "grew to 144 MiB before the kill"
	rec=$(audit --pid "$WL_PID")
	[ "$(echo "$rec" | wc -l)" = 1 ] || fail "want one decision: $rec"
	echo "$rec" | jq -e ".kind == \"memory\" and .mode == \"live\" and .outcome == \"acted\" and
		.evidence.threshold_bytes == $((128 * MIB)) and .evidence.rss_bytes >= $((128 * MIB)) and
		.evidence.rss_bytes < $((136 * MIB))" > /dev/null || fail "record: $rec"
}

test_in_kernel_rule_kills_at_the_threshold() {
	write_rule rss <<'R'
rule "rss-cap" {
  when = memory { rss = "128MiB" }, where = { comm = "rx-*" },
  act = signal { "SIGKILL" }, in_kernel = true,
}
R
	start_daemon --rules "$T/rules" --log-level debug
	grow_armed rx-grow --max 256
	killed_at_threshold
	audit | holds '.detail | test("^signalled in the kernel: SIGKILL at rss 12[89]\\.[0-9] MiB >= 128\\.0 MiB$")' \
		|| fail "detail: $(audit)"
	audit | holds '.rule == "rss-cap" and .action == "signal" and .params.signal == "SIGKILL"' \
		|| fail "rule and action: $(audit)"
	# the kernel acted before userspace knew: the record is the afterword
	grep -q "memory: pid $WL_PID (rx-grow): resident memory .* (in-kernel rule)" "$LOG" \
		|| fail "no log line for the crossing"
	stop_daemon
}

# rss_programs SINCE: the programs on rss_stat loaded since SINCE (epoch s),
# by the names the leak sensor's and the reflex's have had
rss_programs() {
	bpftool prog show --json | jq --argjson since "$1" '[.[] | select(.type == "tracing" and
		.loaded_at >= $since and (.name == "rss_stat" or .name == "reflex_rss"))] | length'
}

# One program on rss_stat serves the leak sensor and the reflex: one with
# both on, one with either alone, and the reflex alone still kills.
test_one_rss_stat_program_for_leak_and_reflex() {
	write_rule rss <<'R'
rule "rss-cap" {
  when = memory { rss = "128MiB" }, where = { comm = "rx-*" },
  act = signal { "SIGKILL" }, in_kernel = true,
}
R
	for sensors in deadlock,leak,memory leak; do
		since=$(date +%s)
		start_daemon --rules "$T/rules" --sensors "$sensors"
		n=$(rss_programs "$since")
		[ "$n" = 1 ] || fail "--sensors $sensors: $n programs on rss_stat, want 1"
		stop_daemon
	done
	since=$(date +%s)
	start_daemon --rules "$T/rules" --log-level debug --sensors memory
	[ "$(rss_programs "$since")" = 1 ] || fail "the reflex alone: not one program on rss_stat"
	grow_armed rx-grow --max 256
	killed_at_threshold
	stop_daemon
}

# dry_run_survives ARGS...: the process grows well past the threshold, and
# the one record says what the kernel would have done.
dry_run_survives() {
	start_daemon --rules "$T/rules" --log-level debug "$@"
	grow_armed rx-grow-dry --max 192
	wait_for "$GROW_OUT" '^done mib=192' 10
	alive "$WL_PID" || fail "dry-run killed the process"
	wait_record '.outcome == "dry-run"' 2
	rec=$(audit --pid "$WL_PID")
	[ "$(echo "$rec" | wc -l)" = 1 ] || fail "one crossing, one record: $rec"
	echo "$rec" | jq -e '.mode == "dry-run" and
		(.detail | test("^the kernel would have signalled SIGKILL at rss 12[89]\\.[0-9] MiB >= 128\\.0 MiB$"))' \
		> /dev/null || fail "record: $rec"
	stop_daemon
}

test_global_dry_run_only_reports() {
	write_rule rss <<'R'
rule "rss-cap" {
  when = memory { rss = "128MiB" }, where = { comm = "rx-*" },
  act = signal { "SIGKILL" }, in_kernel = true,
}
R
	dry_run_survives --dry-run
}

test_rule_dry_run_only_reports() {
	write_rule rss <<'R'
rule "rss-cap" {
  when = memory { rss = "128MiB" }, where = { comm = "rx-*" },
  act = signal { "SIGKILL" }, in_kernel = true, dry_run = true,
}
R
	dry_run_survives
}

test_cooldown_arms_the_process_again() {
	write_rule rss <<'R'
rule "rss-cap" {
  when = memory { rss = "128MiB" }, where = { comm = "rx-*" },
  act = signal { "SIGKILL" }, in_kernel = true, dry_run = true, cooldown = "1s",
}
R
	start_daemon --rules "$T/rules" --log-level debug
	# 128 MiB at 4 s, then 3 s more of growth: cooldown and a walk fit in
	grow_armed rx-grow-cool --rate 32 --max 224
	wait_for "$GROW_OUT" '^done mib=224' 12
	sleep 0.5
	n=$(audit --pid "$WL_PID" | wc -l)
	[ "$n" -ge 2 ] || fail "want the process armed again after the cooldown, crossed again: $(audit)"
	# ordered newest first: the gap between the first two is the cooldown at least
	gap=$(audit --pid "$WL_PID" | jq -s 'sort_by(.time_unix_nano) | (.[1].time_unix_nano - .[0].time_unix_nano) / 1e6 | floor')
	[ "$gap" -ge 1000 ] || fail "armed again ${gap} ms after firing, before the 1 s cooldown"
	stop_daemon
}

test_protected_process_is_never_armed() {
	write_rule rss <<'R'
rule "rss-cap" {
  when = memory { rss = "128MiB" }, where = { comm = "rx-*" },
  act = signal { "SIGKILL" }, in_kernel = true,
}
R
	start_daemon --rules "$T/rules" --log-level debug --protect-comm 'rx-grow-prot*'
	start_wl grow --comm rx-grow-prot --max 192
	wait_for "$out" '^done mib=192' 10
	sleep 1.2 # a walk after the crossing: still not armed
	alive "$WL_PID" || fail "a protected process was signalled"
	grep -q "memory: pid $WL_PID (rx-grow-prot) armed" "$LOG" && fail "a protected process was armed"
	[ -z "$(audit)" ] || fail "no crossing can be seen, so no record: $(audit)"
	stop_daemon
}

test_same_rule_in_userspace_acts_through_the_engine() {
	write_rule rss <<'R'
rule "rss-cap-user" {
  when = memory { rss = "128MiB" }, where = { comm = "rx-*" },
  act = signal { "SIGKILL" },
}
R
	start_daemon --rules "$T/rules" --log-level debug
	grow_armed rx-grow-user --max 256
	killed_at_threshold
	audit | holds ".detail == \"SIGKILL sent to pid $WL_PID\" and .rule == \"rss-cap-user\"" \
		|| fail "detail: $(audit)"
	stop_daemon
}

test_spent_budget_disarms_the_kernel() {
	write_rule rss <<'R'
rule "rss-cap" {
  when = memory { rss = "128MiB" }, where = { comm = "rx-*" },
  act = signal { "SIGKILL" }, in_kernel = true, budget = { max = 1, per = "1h" },
}
R
	start_daemon --rules "$T/rules" --log-level debug
	start_wl grow --comm rx-grow-b2 --max 192 --go "$T/go.b2"
	second=$WL_PID
	second_out=$out
	wait_for "$LOG" "memory: pid $second \(rx-grow-b2\) armed" 5
	grow_armed rx-grow-b1 --max 256
	killed_at_threshold
	wait_for "$LOG" "memory: pid $second \(rx-grow-b2\) disarmed: budget: this rule acted 1 times" 2
	touch "$T/go.b2"
	wait_for "$second_out" '^done mib=192' 10
	alive "$second" || fail "the kernel acted past the rule's budget"
	[ "$(audit | wc -l)" = 1 ] || fail "one action, one record: $(audit)"
	stop_daemon
}

test_userspace_condition_clears_and_the_process_is_armed_again() {
	write_rule rss <<'R'
rule "rss-watch" {
  when = memory { rss = "128MiB" }, where = { comm = "rx-*" },
  act = signal { "SIGKILL" }, dry_run = true,
}
R
	start_daemon --rules "$T/rules" --log-level debug
	# grows past 128 MiB, frees it all and rests 2 s (a walk sees it below
	# the threshold: cleared, armed again), grows past it again
	grow_armed rx-grow-again --max 160 --cycles 2
	wait_for "$GROW_OUT" '^done mib=160' 12
	sleep 0.3
	n=$(audit --pid "$WL_PID" | jq -s 'map(select(.outcome == "dry-run")) | length')
	[ "$n" = 2 ] || fail "two crossings, two decisions, got $n: $(audit)"
	audit | holds '.detail | startswith("would have run signal")' || fail "$(audit)"
	stop_daemon
}

test_check_refuses_what_the_kernel_cannot_do() {
	write_rule bad <<'R'
rule "not-memory" { when = leak { rate = "1MiB/s" }, act = signal { "SIGKILL" }, in_kernel = true }
rule "followup" {
  when = memory { rss = "1G" },
  act = signal { "SIGTERM", followup = "SIGKILL" },
  in_kernel = true,
}
rule "verifies" {
  when = memory { rss = "1G" }, act = signal { "SIGKILL" }, verify = { within = "5s" },
  in_kernel = true,
}
rule "no-threshold" { when = memory { }, act = signal { "SIGKILL" }, in_kernel = true }
R
	status=0
	"$REFLEXD" check "$T/rules/bad.lua" > "$T/check.out" 2>&1 || status=$?
	[ "$status" = 1 ] || fail "check exited $status: $(cat "$T/check.out")"
	f=$T/rules/bad.lua
	grep -qF "$f:1: rule 'not-memory': in_kernel needs when = memory { rss = \"256MiB\" }" "$T/check.out" \
		|| fail "$(cat "$T/check.out")"
	grep -qF "$f:5: rule 'followup': in_kernel needs act = signal { \"SIGKILL\" }: one signal without followup" \
		"$T/check.out" || fail "$(cat "$T/check.out")"
	grep -qF "$f:9: rule 'verifies': in_kernel cannot escalate or verify" "$T/check.out" \
		|| fail "$(cat "$T/check.out")"
	grep -qF "$f:11: rule 'no-threshold': in_kernel needs when = memory { rss" "$T/check.out" \
		|| fail "$(cat "$T/check.out")"
}

run_tests
