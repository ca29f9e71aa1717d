# The hostile rule corpus (tests/corpus/hostile): every file there is
# written to break the sandbox, and ends as its last line says:
#   -- expect: rejected: REGEX   check and simulate refuse it, the error
#                                (starting with the file's name) matching
#   -- expect: disabled: REGEX   it loads; its rule is disabled at its first
#                                evaluation, with a record matching
# (bytecode.lua has its line in bytecode.expect). Each goes through
# `reflexd check`, `reflexd simulate` with a trace, and a live daemon that
# keeps deciding a real deadlock for a well-behaved rule all along.
. "$(dirname "$0")/lib.sh"
ulimit -c 0
HOSTILE=tests/corpus/hostile
METRICS=127.0.0.1:47700

# expectation FILE: "rejected: REGEX" or "disabled: REGEX".
expectation() {
	side=${1%.lua}.expect
	[ -f "$side" ] || side=$1
	grep -a '^-- expect: ' "$side" | tail -1 | sed 's/^-- expect: //'
}

# files KIND: the corpus files expected to end so.
files() {
	for f in "$HOSTILE"/*.lua; do
		case "$(expectation "$f")" in "$1: "*) echo "$f" ;; esac
	done
}

now_ms() {
	echo $(( $(date +%s%N) / 1000000 ))
}

# run_bounded SECONDS CMD...: OUT gets the output; fails on a crash or a hang.
run_bounded() {
	limit=$1
	shift
	start=$(now_ms)
	set +e
	OUT=$(timeout "$limit" "$@" 2>&1)
	RC=$?
	set -e
	TOOK=$(( $(now_ms) - start ))
	[ "$RC" -lt 124 ] || fail "$* ended with status $RC (crash or hang) after ${TOOK} ms: $OUT"
}

test_corpus_is_large_and_each_file_says_what_it_expects() {
	n=0
	for f in "$HOSTILE"/*.lua; do
		expectation "$f" | grep -Eq '^(rejected|disabled): .' || fail "$f: no '-- expect:' line"
		n=$((n + 1))
	done
	[ "$n" -ge 60 ] || fail "only $n hostile files"
	echo "hostile corpus: $n files, $(files rejected | wc -l) rejected, $(files disabled | wc -l) disabled at run time"
}

test_check_rejects_each_with_its_file_and_line() {
	for f in $(files rejected); do
		want=$(expectation "$f" | sed 's/^rejected: //')
		run_bounded 10 "$REFLEXD" check "$f"
		[ "$RC" != 0 ] || fail "$f: check accepted it"
		echo "$OUT" | grep -Eq -- "$want" || fail "$f: got '$OUT', want /$want/"
		# every error names the file first, whatever raised it
		echo "$OUT" | grep -Ev "^$f(:[0-9]+)?: " && fail "$f: an error without the file name: $OUT"
		[ "$TOOK" -lt 5000 ] || fail "$f: check took $TOOK ms"
	done
}

test_check_loads_those_disabled_at_run_time() {
	for f in $(files disabled); do
		run_bounded 10 "$REFLEXD" check "$f"
		[ "$RC" = 0 ] || fail "$f: check refused it: $OUT"
	done
}

trace() {
	printf 'reflexd-trace 1\n0 raise 1 deadlock pid=4242 comm=hx-victim\n'
	printf '1 raise 2 deadlock pid=4243 comm=hx-victim\n'
}

# Each rule is disabled at its first evaluation, with a failed record that
# says why, and the evaluation ended within its wall-clock bound.
test_simulate_disables_each_with_a_record() {
	trace > "$T/trace"
	for f in $(files disabled); do
		want=$(expectation "$f" | sed 's/^disabled: //')
		run_bounded 10 "$REFLEXD" simulate --trace "$T/trace" --rules "$f" --json
		[ "$RC" = 0 ] || fail "$f: simulate failed: $OUT"
		rec=$(echo "$OUT" | jq -c 'select(.outcome == "failed")' | head -1)
		[ -n "$rec" ] || fail "$f: no failed record: $OUT"
		detail=$(echo "$rec" | jq -r .detail)
		echo "$detail" | grep -Eq -- "^rule disabled until the rules are reloaded: $HOSTILE/($want)" ||
			fail "$f: got '$detail', want /$want/"
		# disabled once: the second condition finds it disabled, no second record
		[ "$(echo "$OUT" | jq -c 'select(.outcome == "failed")' | wc -l)" = 1 ] ||
			fail "$f: more than one failed record: $OUT"
	done
}

test_simulate_refuses_the_rejected() {
	trace > "$T/trace"
	for f in $(files rejected); do
		want=$(expectation "$f" | sed 's/^rejected: //')
		run_bounded 10 "$REFLEXD" simulate --trace "$T/trace" --rules "$f"
		[ "$RC" != 0 ] || fail "$f: simulate accepted it"
		echo "$OUT" | grep -Eq -- "$want" || fail "$f: got '$OUT', want /$want/"
	done
}

# One evaluation that never ends is stopped near its bound (50 ms), not at
# the instruction budget's leisure: the whole simulate, load included,
# stays under two seconds (the instruction budget alone would let it run
# for half a minute).
test_wall_clock_bound_is_held() {
	trace > "$T/trace"
	run_bounded 10 "$REFLEXD" simulate --trace "$T/trace" --rules "$HOSTILE/when-wall-clock.lua" --json
	echo "$OUT" | grep -q 'wall-clock bound of 50 ms' || fail "not stopped by the clock: $OUT"
	[ "$TOOK" -lt 2000 ] || fail "took $TOOK ms"
	echo "when-wall-clock.lua: simulate (load and evaluation) took $TOOK ms"
	run_bounded 10 "$REFLEXD" simulate --trace "$T/trace" --rules "$HOSTILE/when-wall-clock.lua" \
		--json --rule-timeout 5ms
	echo "$OUT" | grep -q 'wall-clock bound of 5 ms' || fail "--rule-timeout not taken: $OUT"
}

# Generated rather than kept: 100 000 nested braces (200 KB), and as many
# nested parentheses and function calls. The parser's error names the file.
test_nesting_bombs_name_the_file() {
	mkdir -p "$T/nest"
	awk 'BEGIN { s = "x = "; for (i = 0; i < 100000; i++) s = s "{"; for (i = 0; i < 100000; i++) s = s "}"; print s }' > "$T/nest/braces.lua"
	awk 'BEGIN { s = "x = "; for (i = 0; i < 100000; i++) s = s "("; s = s "1"; for (i = 0; i < 100000; i++) s = s ")"; print s }' > "$T/nest/parens.lua"
	awk 'BEGIN { s = "x = "; for (i = 0; i < 50000; i++) s = s "tostring("; s = s "1"; for (i = 0; i < 50000; i++) s = s ")"; print s }' > "$T/nest/calls.lua"
	for f in "$T"/nest/*.lua; do
		run_bounded 10 "$REFLEXD" check "$f"
		[ "$RC" = 1 ] || fail "$f: status $RC: $OUT"
		echo "$OUT" | grep -Eq "^$f(:[0-9]+)?: .*(C stack overflow|too many|overflow)" || fail "$f: $OUT"
	done
}

# A file that rewrites its libraries (string.find, the string metatable)
# changes nothing for another file's rule.
test_files_do_not_reach_each_other() {
	mkdir -p "$T/iso"
	cat > "$T/iso/a.lua" <<'R'
string.find = function() return nil end
getmetatable("").__index = { find = function() return nil end }
rule "a" { when = function(c) return false end, act = signal { "SIGTERM" } }
R
	cat > "$T/iso/b.lua" <<'R'
rule "b" { when = function(c) return c.comm:find("victim", 1, true) ~= nil end, act = signal { "SIGTERM" } }
R
	trace > "$T/trace"
	out=$("$REFLEXD" simulate --trace "$T/trace" --rules "$T/iso" --json)
	[ "$(echo "$out" | jq -r 'select(.rule == "b") | .outcome' | sort -u)" = acted ] ||
		fail "b did not decide: $out"
}

# 32 MiB per file, as documented: two files of 20 MiB each load; one of
# 40 MiB does not.
test_memory_limit_is_per_file() {
	mkdir -p "$T/mem" "$T/mem2"
	for n in a b; do
		cat > "$T/mem/$n.lua" <<'R'
local keep = {}
for i = 1, 20 do keep[i] = ("x"):rep(1 << 20) .. i end
rule "NAME" { when = function(c) return #keep == 20 end, act = signal { "SIGTERM" } }
R
		sed -i "s/NAME/$n/" "$T/mem/$n.lua"
	done
	"$REFLEXD" check "$T/mem" > "$T/out" 2>&1 || fail "two files of 20 MiB: $(cat "$T/out")"
	sed 's/1, 20/1, 40/; s/== 20/== 40/' "$T/mem/a.lua" > "$T/mem2/big.lua"
	! "$REFLEXD" check "$T/mem2" > "$T/out" 2>&1 || fail "one file of 40 MiB loaded"
	grep -q "big.lua: memory limit exceeded" "$T/out" || fail "$(cat "$T/out")"
}

healthz() {
	[ "$(curl -s -m 2 "http://$METRICS/healthz")" = ok ] || fail "/healthz did not answer ok"
}

# control_decides: a real deadlock in a process of the control rule is
# detected and killed, live.
control_decides() {
	start_wl deadlock abba --comm hx-control
	wait_record ".rule == \"control\" and .pid == $WL_PID and .outcome == \"acted\"" 6
	wait_gone "$WL_PID" 2
}

# Live: the daemon runs every rule disabled at run time (each named after
# its file) next to a well-behaved control rule. Deadlocked victims make
# the hostile rules run; a real deadlock is killed by the control rule
# before, while and after they run and after a reload of every rejected
# file is refused; /healthz answers throughout; SIGTERM stops it in < 2 s.
test_live_daemon_keeps_deciding() {
	mkdir -p "$T/rules"
	n=0
	for f in $(files disabled); do
		name=$(basename "$f" .lua)
		sed "s/rule \"f\"/rule \"$name\"/" "$f" > "$T/rules/$name.lua"
		n=$((n + 1))
	done
	cat > "$T/rules/zz-control.lua" <<'R'
rule "control" {
  when = deadlock { }, where = { comm = "hx-control" }, priority = 1000,
  act = signal { "SIGKILL" },
}
R
	start_daemon --rules "$T/rules" --metrics "$METRICS"
	healthz
	control_decides
	# one victim per rule an act function decides (each such failure
	# takes its condition), and the when functions fail on the first
	victims=$(( $(grep -l 'act = function' "$T"/rules/*.lua | wc -l) + 1 ))
	for i in $(seq 1 "$victims"); do
		start_wl deadlock abba --comm hx-victim
		healthz
	done
	end=$(( $(date +%s) + 30 ))
	while :; do
		got=$(audit | jq -r 'select(.outcome == "failed" and (.detail | startswith("rule disabled"))) | .rule' | sort -u | wc -l)
		[ "$got" -ge "$n" ] && break
		[ "$(date +%s)" -le "$end" ] || fail "only $got of $n hostile rules disabled: $(audit | jq -c '[.rule, .outcome, .detail]' | tail -5)"
		sleep 0.2
	done
	for f in $(files disabled); do
		name=$(basename "$f" .lua)
		want=$(expectation "$f" | sed 's/^disabled: //')
		audit --rule "$name" | jq -r .detail | grep -Eq -- "$want" ||
			fail "$name: $(audit --rule "$name" | jq -r .detail)"
	done
	alive "$DAEMON" || fail "the daemon died"
	healthz
	control_decides
	# a ConfigMap update bringing every rejected file: refused, the rules stay
	for f in $(files rejected); do
		cp "$f" "$T/rules/"
	done
	wait_for "$LOG" 'reload rejected' 10
	alive "$DAEMON" || fail "the daemon died on the reload"
	healthz
	control_decides
	start=$(now_ms)
	stop_daemon
	took=$(( $(now_ms) - start ))
	[ "$took" -lt 2000 ] || fail "SIGTERM took $took ms"
	echo "live: $n hostile rules disabled, control decided 3 deadlocks, SIGTERM took $took ms"
}

run_tests
