# reflexd check and bad input: every mistake a user can make in a rule file,
# an option or a config file gets "file:line: message" and a non-zero exit,
# and a daemon given bad rules never starts.
. "$(dirname "$0")/lib.sh"

# expect_check_error NAME EXPECTED_REGEX: the rule file NAME (from write_rule)
# fails `reflexd check` with exit 1 and a message matching the regex.
expect_check_error() {
	set +e
	out=$("$REFLEXD" check "$T/rules/$1.lua" 2>&1)
	status=$?
	set -e
	[ "$status" = 1 ] || fail "check $1: exit $status, want 1: $out"
	echo "$out" | grep -Eq -- "$2" || fail "check $1: got '$out', want /$2/"
}

test_good_rule_passes() {
	write_rule good <<'R'
rule "good" {
  when = deadlock { }, where = { comm = { "worker*", "db" }, exe = "/usr/*" },
  hold = "1m30s", act = signal { "SIGQUIT", followup = "SIGKILL", grace = "10s" },
  cooldown = "5m", dry_run = true, description = "ok",
}
R
	out=$("$REFLEXD" check "$T/rules/good.lua")
	[ "$out" = "1 rules in 1 files: ok" ] || fail "got '$out'"
}

test_shipped_rules_pass() {
	"$REFLEXD" check rules/ | grep -q ': ok$'
}

test_syntax_error() {
	write_rule syntax <<'R'
rule "x" {
  when = deadlock { }
  hold = "2s",
}
R
	expect_check_error syntax "syntax.lua:3: '}' expected \(to close '\{' at line 1\) near 'hold'"
}

test_unknown_field_names_its_line() {
	write_rule field <<'R'
rule "x" {
  when = deadlock { },
  act = signal { "SIGKILL" },
  holdd = "2s",
}
R
	expect_check_error field "field.lua:4: rule 'x': unknown field 'holdd' \(known: when, where"
}

test_unknown_action() {
	write_rule action <<'R'
rule "x" {
  when = deadlock { },
  act = sigkill { },
}
R
	expect_check_error action "action.lua:3: unknown name 'sigkill' \\(actions: signal.*; conditions: deadlock, stall, leak, retransmits, goroutines[^)]*\\)"
}

test_not_an_action() {
	write_rule notaction <<'R'
rule "x" { when = deadlock { },
  act = "SIGKILL" }
R
	expect_check_error notaction "notaction.lua:2: rule 'x': act must be an action like signal"
}

test_bad_duration() {
	write_rule duration <<'R'
rule "x" {
  when = deadlock { },
  act = signal { "SIGKILL" },
  cooldown = "2x",
}
R
	expect_check_error duration "duration.lua:4: rule 'x': cooldown: bad duration '2x'"
}

test_bad_signal() {
	write_rule sig <<'R'
rule "x" { when = deadlock { }, act = signal { "SIGKIL" } }
R
	expect_check_error sig "sig.lua:1: rule 'x': signal: unknown signal 'SIGKIL'"
}

test_missing_act_and_bad_where() {
	write_rule missing <<'R'
rule "x" {
  when = deadlock { },
  where = { command = "a" },
}
R
	expect_check_error missing "missing.lua:3: rule 'x': unknown field 'command' in where"
	expect_check_error missing "missing.lua:1: rule 'x': missing 'act'"
}

test_duplicate_rule_name() {
	write_rule dup <<'R'
rule "x" { when = deadlock { }, act = signal { "SIGKILL" } }
rule "x" { when = deadlock { }, act = signal { "SIGTERM" } }
R
	expect_check_error dup "dup.lua:2: rule 'x': a rule with this name is already defined at .*dup.lua:1"
}

test_sandbox_has_no_io_os_require_load() {
	for call in 'io.open("/etc/passwd")' 'os.execute("true")' 'require("x")' 'load("return 1")' \
		    'dofile("/etc/passwd")' 'debug.getinfo(1)'; do
		echo "local x = $call" | write_rule sb
		name=${call%%[.(]*}
		expect_check_error sb "sb.lua:1: unknown name '$name'"
	done
	echo 'local x = string.dump(function() end)' | write_rule dump2
	expect_check_error dump2 "dump2.lua:1: attempt to call a nil value \(field 'dump'\)"
}

test_runaway_rule_file_is_stopped() {
	echo 'while true do end' | write_rule loop
	expect_check_error loop "loop.lua:1: instruction budget exceeded"
	echo 'local s = string.rep("x", 1 << 30)' | write_rule mem
	expect_check_error mem "memory limit exceeded|not enough memory"
}

test_precompiled_chunk_refused() {
	printf '\033Lua' > "$T/rules/bin.lua" 2>/dev/null || { mkdir -p "$T/rules"; printf '\033Lua' > "$T/rules/bin.lua"; }
	expect_check_error bin "bin.lua: precompiled Lua \(bytecode\) is refused"
}

test_check_reports_every_error() {
	write_rule many <<'R'
rule "a" { when = deadlock { }, act = signal { "SIGKILL" }, hold = "x" }
rule "b" { when = deadlock { }, act = signal { "SIGKILL" }, cooldown = 5 }
R
	set +e
	out=$("$REFLEXD" check "$T/rules/many.lua" 2>&1)
	set -e
	[ "$(echo "$out" | wc -l)" = 2 ] || fail "want two errors, got: $out"
	echo "$out" | grep -q "many.lua:2: rule 'b': cooldown must be a duration" || fail "$out"
}

test_unknown_flag_and_bad_values() {
	set +e
	out=$("$REFLEXD" run --frobnicate 2>&1); s1=$?
	out2=$("$REFLEXD" run --rules rules --scan-interval 1ms 2>&1); s2=$?
	out3=$("$REFLEXD" frob 2>&1); s3=$?
	out4=$("$REFLEXD" run --rules 2>&1); s4=$?
	set -e
	[ "$s1" = 2 ] && echo "$out" | grep -q "unknown option '--frobnicate' (see reflexd --help)" || fail "$s1 $out"
	[ "$s2" = 2 ] && echo "$out2" | grep -q "bad value '1ms' for --scan-interval" || fail "$s2 $out2"
	[ "$s3" = 2 ] && echo "$out3" | grep -q "unknown command 'frob'" || fail "$s3 $out3"
	[ "$s4" = 2 ] && echo "$out4" | grep -q "option '--rules' needs a value" || fail "$s4 $out4"
}

test_config_file_errors_name_file_and_line() {
	mkdir -p "$T/rules"
	printf '# reflexd\ndry-run = true\nscan-intervall = 1s\n' > "$T/bad.conf"
	set +e
	out=$("$REFLEXD" run --config "$T/bad.conf" --rules rules 2>&1)
	status=$?
	set -e
	[ "$status" = 2 ] || fail "exit $status"
	echo "$out" | grep -q "bad.conf:3: unknown option 'scan-intervall'" || fail "$out"
}

# A line is read whole, however long: the tail of a long comment is still
# the comment, never a setting; a long value is the value.
test_config_long_lines_are_read_whole() {
	echo 'rule "r" { when = deadlock { }, act = signal { "SIGKILL" } }' | write_rule r
	printf 'reflexd-trace 1\n0 raise 1 deadlock pid=42 comm=worker\n1 end\n' > "$T/trace"
	# (4095 bytes: what a 4 KiB fgets buffer once took for the whole line)
	printf '# %04093d dry-run = true\n' 0 > "$T/comment.conf"
	out=$("$REFLEXD" simulate --config "$T/comment.conf" --trace "$T/trace" --rules "$T/rules" --json)
	[ "$(echo "$out" | jq -r .outcome)" = acted ] || fail "the comment's tail was applied: $out"
	# the value after 9000 blanks is still this line's
	printf 'protect-comm =%9000sworker\n' '' > "$T/value.conf"
	out=$("$REFLEXD" simulate --config "$T/value.conf" --trace "$T/trace" --rules "$T/rules" --json)
	[ "$(echo "$out" | jq -r .outcome)" = suppressed ] || fail "the long line's value was lost: $out"
	printf '# a\nprotect-comm = x\000y\n' > "$T/nul.conf"
	set +e
	out=$("$REFLEXD" simulate --config "$T/nul.conf" --trace "$T/trace" --rules "$T/rules" 2>&1)
	status=$?
	set -e
	[ "$status" = 2 ] || fail "exit $status: $out"
	echo "$out" | grep -q "nul.conf:2: a NUL byte in the line" || fail "$out"
}

# A rules directory holding what is not a regular file: a FIFO (opening
# it waited for a writer: check, and a daemon reloading, hung) and a
# device are refused by name; the directory's good file still loads.
test_rule_path_not_a_regular_file() {
	echo 'rule "r" { when = deadlock { }, act = signal { "SIGKILL" } }' | write_rule r
	mkfifo "$T/rules/fifo.lua"
	ln -s /dev/zero "$T/rules/zero.lua"
	set +e
	out=$(timeout 10 "$REFLEXD" check "$T/rules" 2>&1)
	status=$?
	set -e
	[ "$status" = 1 ] || fail "exit $status: $out"
	echo "$out" | grep -q "rules/fifo.lua: not a regular file" || fail "$out"
	echo "$out" | grep -q "rules/zero.lua: not a regular file" || fail "$out"
	rm "$T/rules/fifo.lua" "$T/rules/zero.lua"
	"$REFLEXD" check "$T/rules" > /dev/null || fail "the good file alone was refused"
}

test_daemon_refuses_bad_rules() {
	write_rule broken <<'R'
rule "x" { when = deadlock { }, act = signal { "SIGKILL" }, hold = "soon" }
R
	set +e
	out=$("$REFLEXD" run --rules "$T/rules" --journal "$T/journal.db" 2>&1)
	status=$?
	set -e
	[ "$status" = 1 ] || fail "exit $status"
	echo "$out" | grep -q "broken.lua:1: rule 'x': hold: bad duration 'soon'" || fail "$out"
	echo "$out" | grep -q "not starting" || fail "$out"
	[ ! -e "$T/journal.db" ] || fail "a journal was created by a daemon that did not start"
}

# Each file in tests/corpus/rules is one mistake; its first line says the
# message it must produce: "-- expect: REGEX".
test_broken_rule_corpus() {
	n=0
	for f in tests/corpus/rules/*.lua; do
		want=$(head -1 "$f" | sed -n 's/^-- expect: //p')
		[ -n "$want" ] || fail "$f has no '-- expect:' line"
		set +e
		out=$("$REFLEXD" check "$f" 2>&1)
		status=$?
		set -e
		[ "$status" = 1 ] || fail "$f: exit $status, want 1: $out"
		echo "$out" | grep -Eq -- "$want" || fail "$f: got '$out', want /$want/"
		n=$((n + 1))
	done
	echo "$n broken rule files, each with its message"
	[ "$n" -ge 20 ] || fail "the corpus shrank to $n files"
}

test_help_and_version() {
	"$REFLEXD" --version | grep -Eq '^reflexd [0-9]+\.[0-9]+\.[0-9]+$'
	"$REFLEXD" --help | grep -q -- '--dry-run'
	"$REFLEXD" run --help | grep -q -- '--rules DIR|FILE'
}

run_tests
