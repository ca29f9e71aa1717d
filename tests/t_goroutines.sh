# The goroutine sensor on real Go programs, built here with the toolchain
# deploy/deps.sh installs: a leak is caught by the shipped rule with the
# right rate and its creation site named, stripped or not, read from the
# runtime without a probe; a steady program is counted exactly and not
# called growing; the uprobes (--goroutine-probes) count the same; a binary
# that can be neither read nor probed is skipped with a clear message, and
# a process that exits is forgotten.
. "$(dirname "$0")/lib.sh"

# The workloads: one program, under several names (comm is the file's name;
# each copy is a binary of its own to the sensor): as built, without DWARF
# (-w), stripped (-s -w), and stripped with its .gopclntab section renamed
# (it still runs: the runtime finds its tables by symbol, not by section),
# so that the sensor finds its functions nowhere.
WL=$T/go
mkdir -p "$WL"
export GOCACHE=$PWD/build/gocache GOPATH=$T/gopath
if ! go build -o "$WL/gr-leak" tests/workloads/gr_work.go ||
	! go build -ldflags=-w -o "$WL/gr-nodwarf" tests/workloads/gr_work.go ||
	! go build -ldflags='-s -w' -o "$WL/gr-stripped" tests/workloads/gr_work.go ||
	! objcopy --rename-section .gopclntab=.gopclntaX "$WL/gr-stripped" "$WL/gr-nofuncs"; then
	echo "not ok - go_build: cannot build tests/workloads/gr_work.go (is golang-go installed? deploy/deps.sh)"
	exit 0
fi
cp "$WL/gr-leak" "$WL/gr-steady"
GO_VERSION=$(go env GOVERSION)

# in_pct GOT WANT PCT: GOT is within PCT% of WANT
in_pct() {
	awk -v g="$1" -v w="$2" -v p="$3" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= w * p / 100) }'
}

test_leak_caught_by_the_shipped_rule() {
	start_daemon --rules rules/ --dry-run
	start_wl gr-leak leak 200
	leak_start=$(field realtime_ns)
	# the whole window (10 s) growing, then the rule's hold (10 s)
	wait_record ".pid == $WL_PID and .rule == \"goroutine-leak\"" 30
	rec=$(audit --pid "$WL_PID")
	[ "$(echo "$rec" | wc -l)" = 1 ] || fail "one decision: $rec"
	echo "$rec" | holds '.kind == "goroutines" and .outcome == "dry-run" and .params.signal == "SIGQUIT"' \
		|| fail "decision: $rec"
	rate=$(echo "$rec" | jq .evidence.rate)
	in_pct "$rate" 200 10 || fail "rate $rate/s, want 200/s within 10%"
	echo "$rec" | holds ".evidence.growing == true and .evidence.go_version == \"$GO_VERSION\" and
		.evidence.absolute == true and .evidence.window_ms == 10000 and .evidence.source == \"runtime\" and
		.evidence.table_from == \"symtab\" and .evidence.layout_from == \"dwarf\"" \
		|| fail "evidence: $rec"
	leak_site_named "$rec"
	late=$(( ($(echo "$rec" | jq .time_unix_nano) - leak_start) / 1000000 ))
	echo "rate $rate/s; decided ${late} ms after the leak began (window 10 s + hold 10 s)"
	[ "$late" -le 26000 ] || fail "decided ${late} ms after the leak began"
	grep -q "goroutines in pid $WL_PID (gr-leak): goroutines growing" "$LOG" || fail "no log line"
	alive "$WL_PID" || fail "dry-run signalled the process"
	stop_daemon
}

# leak_site_named RECORD: the leak's creation site, main.leakyHandler, is
# the top one and the growing one, with its file and line, in the evidence
# and the summary; the count it has is most of the process's.
leak_site_named() {
	echo "$1" | holds '.evidence.sites[0].function == "main.leakyHandler" and
		(.evidence.sites[0].file | endswith("gr_work.go")) and .evidence.sites[0].line > 0 and
		.evidence.sites[0].count > .evidence.count / 2 and (.evidence.sites | length) <= 5 and
		.evidence.growing_site == "main.leakyHandler" and
		(.summary | test("made in main.leakyHandler \\(gr_work.go:[0-9]+\\)"))' \
		|| fail "creation site: $(echo "$1" | jq -c '{summary, sites: .evidence.sites, growing_site: .evidence.growing_site}')"
	echo "$1" | jq -r '"top site: \(.evidence.sites[0].function) \(.evidence.sites[0].file):\(.evidence.sites[0].line) \(.evidence.sites[0].count) of \(.evidence.count)"'
}

# By default, no probes on binaries whose runtime can be read: counts and
# rates read from the runtime every sample.
test_sampled_from_the_runtime() {
	write_rule count <<'R'
rule "gr-any" {
  when = goroutines { count = 2000 }, where = { comm = "gr-*" }, hold = "1s",
  act = signal { "SIGQUIT" }, dry_run = true,
}
R
	start_daemon --rules "$T/rules" --sensors goroutines --goroutine-window 4s --goroutine-min-count 2000
	start_wl gr-steady steady 5000
	steady=$WL_PID
	truth=$(field numgoroutine)
	start_wl gr-leak leak 400 1
	leak=$WL_PID
	wait_for "$LOG" "watching pid $steady \\(gr-steady\\), $GO_VERSION, counting by sampling its runtime's state" 3
	wait_record ".pid == $steady" 5
	count=$(audit --pid "$steady" | jq .evidence.count)
	in_pct "$count" "$truth" 1 || fail "$count goroutines, the program has $truth"
	audit --pid "$steady" | holds '.evidence.source == "runtime" and .evidence.growing == false' \
		|| fail "$(audit --pid "$steady")"
	# 400/s passes 2000 in 5 s, growing over the whole 4 s window by then
	wait_record ".pid == $leak" 10
	rate=$(audit --pid "$leak" | jq .evidence.rate)
	in_pct "$rate" 400 10 || fail "rate $rate/s, want 400/s within 10%"
	audit --pid "$leak" | holds '.evidence.source == "runtime" and .evidence.growing == true' \
		|| fail "$(audit --pid "$leak")"
	# no uprobe (a perf event each) was attached: probing one binary takes two
	probes=$(ls -l "/proc/$DAEMON/fd" | grep -c perf_event || true)
	[ "$probes" = 0 ] || fail "$probes uprobes attached"
	echo "sampled: $count goroutines (truth $truth), leak at $rate/s"
	stop_daemon
}

# Growth that stops: the condition clears, once the window no longer grows.
test_growth_that_stops_clears() {
	start_daemon --rules rules/ --dry-run --sensors goroutines --goroutine-window 4s
	start_wl gr-leak leak 200 1 6
	wait_for "$LOG" "goroutines in pid $WL_PID \\(gr-leak\\): goroutines growing" 8
	wait_for "$LOG" "goroutines: pid $WL_PID \\(gr-leak\\): back to 120[0-9] goroutines" 10
	alive "$WL_PID" || fail "the program is gone"
	stop_daemon
}

# With the uprobes (--goroutine-probes), two steady programs of one binary:
# the first is counted from its runtime's state (the binary was attached
# after it started), the second from its start (the binary was watched when
# it exec'd). Their parked goroutines start a second after exec.
test_steady_count_exact_and_not_growing() {
	write_rule count <<'R'
rule "gr-many" {
  when = goroutines { count = 2000 }, where = { comm = "gr-steady" }, hold = "2s",
  act = signal { "SIGQUIT" }, dry_run = true,
}
R
	start_daemon --rules rules/ --rules "$T/rules" --dry-run --goroutine-window 4s \
		--goroutine-min-count 2000 --goroutine-probes
	start_wl gr-steady steady 5000
	first=$WL_PID
	truth=$(field numgoroutine)
	start_wl gr-steady steady 5000
	second=$WL_PID
	ready=$(date +%s)
	wait_record ".pid == $first and .rule == \"gr-many\"" 10
	wait_record ".pid == $second and .rule == \"gr-many\"" 10
	for p in $first $second; do
		count=$(audit --pid "$p" --rule gr-many | jq .evidence.count)
		in_pct "$count" "$truth" 1 || fail "pid $p: $count goroutines, the program has $truth"
		echo "pid $p: $count goroutines counted, runtime.NumGoroutine() = $truth"
	done
	audit --pid "$first" | holds '.evidence.absolute == true and .evidence.recovered == true and
		.evidence.source == "probes"' \
		|| fail "first: $(audit --pid "$first")"
	audit --pid "$second" | holds '.evidence.absolute == true and .evidence.recovered == false' \
		|| fail "second: $(audit --pid "$second")"
	# three windows with churn of short-lived goroutines: never growing
	while [ $(( $(date +%s) - ready )) -lt 12 ]; do sleep 0.5; done
	! grep -E "pid ($first|$second) .*growing" "$LOG" || fail "a steady program called growing"
	! audit | holds '.rule == "goroutine-leak"' || fail "the leak rule decided: $(audit --rule goroutine-leak)"
	grep -q "watching pid $first (gr-steady), $GO_VERSION, counting from its runtime's state" "$LOG" \
		|| fail "log: first"
	grep -q "watching pid $second (gr-steady), $GO_VERSION, counting from its start" "$LOG" \
		|| fail "log: second"
	stop_daemon
}

# A stripped binary (no symbol table, no DWARF): its runtime's table found
# through its code, the goroutine's layout from its Go release; counted
# whole, and its leak's creation site named through .gopclntab; no probe.
test_stripped_binary_read_and_its_leak_named() {
	write_rule count <<'R'
rule "gr-many" {
  when = goroutines { count = 2000 }, where = { comm = "gr-stripped" }, hold = "1s",
  act = signal { "SIGQUIT" }, dry_run = true,
}
R
	start_daemon --rules "$T/rules" --sensors goroutines --goroutine-min-count 2000 --goroutine-window 4s
	start_wl gr-stripped steady 3000
	steady=$WL_PID
	truth=$(field numgoroutine)
	wait_for "$LOG" "watching pid $steady \\(gr-stripped\\), $GO_VERSION, counting by sampling its runtime's state" 3
	wait_record ".pid == $steady" 5
	count=$(audit --pid "$steady" | jq .evidence.count)
	in_pct "$count" "$truth" 1 || fail "$count goroutines, the program has $truth"
	audit --pid "$steady" | holds '.evidence.absolute == true and .evidence.source == "runtime" and
		.evidence.table_from == "code" and .evidence.layout_from == "go release" and
		.evidence.sites[0].function == "main.steady"' || fail "$(audit --pid "$steady")"
	echo "stripped: $count goroutines counted, runtime.NumGoroutine() = $truth"
	start_wl gr-stripped leak 400 1
	leak=$WL_PID
	wait_record ".pid == $leak and .evidence.growing == true" 10
	leak_site_named "$(audit --pid "$leak" | jq -c 'select(.evidence.growing)' | tail -1)"
	probes=$(ls -l "/proc/$DAEMON/fd" | grep -c perf_event || true)
	[ "$probes" = 0 ] || fail "$probes uprobes attached"
	stop_daemon
}

test_functions_not_found_skipped_clearly() {
	start_daemon --rules rules/ --dry-run --sensors goroutines
	start_wl gr-nofuncs steady 10
	skipped=$WL_PID
	wait_for "$LOG" "pid $skipped \\(gr-nofuncs\\): $WL/gr-nofuncs \\($GO_VERSION, stripped\\): runtime.newproc1 and runtime.goexit1 are in neither its symbol table nor its .gopclntab, its goroutines are not counted" 5
	# the daemon goes on: the next Go program is watched
	start_wl gr-steady steady 10
	wait_for "$LOG" "watching pid $WL_PID \\(gr-steady\\)" 5
	[ "$(grep -c "pid $skipped " "$LOG")" = 1 ] || fail "said more than once: $(grep "pid $skipped " "$LOG")"
	stop_daemon
}

# Found by the startup scan: counted whole from the runtime's state, with
# DWARF or without (-ldflags=-w: the layout of its Go release); then gone,
# and their state with them.
test_running_before_start_then_exit() {
	write_rule count <<'R'
rule "gr-many" {
  when = goroutines { count = 2000 }, where = { comm = "gr-*" }, hold = "1s",
  act = signal { "SIGQUIT" }, dry_run = true,
}
R
	start_wl gr-steady steady 5000
	steady=$WL_PID
	truth=$(field numgoroutine)
	start_wl gr-nodwarf steady 3000
	nodwarf=$WL_PID
	truth_nodwarf=$(field numgoroutine)
	start_daemon --rules "$T/rules" --sensors goroutines --log-level debug --goroutine-min-count 2000
	wait_for "$LOG" "watching pid $steady \\(gr-steady\\), $GO_VERSION, counting by sampling its runtime's state" 3
	wait_for "$LOG" "watching pid $nodwarf \\(gr-nodwarf\\), $GO_VERSION, counting by sampling its runtime's state" 3
	wait_record ".pid == $steady" 5
	wait_record ".pid == $nodwarf" 5
	count=$(audit --pid "$steady" | jq .evidence.count)
	in_pct "$count" "$truth" 1 || fail "$count goroutines, the program has $truth"
	count_nodwarf=$(audit --pid "$nodwarf" | jq .evidence.count)
	in_pct "$count_nodwarf" "$truth_nodwarf" 1 || fail "-w: $count_nodwarf goroutines, the program has $truth_nodwarf"
	echo "started before reflexd: $count and $count_nodwarf goroutines counted, runtime.NumGoroutine() = $truth and $truth_nodwarf"
	audit --pid "$nodwarf" | holds '.evidence.table_from == "symtab" and .evidence.layout_from == "go release"' \
		|| fail "$(audit --pid "$nodwarf")"
	kill -KILL "$steady" "$nodwarf"
	wait_for "$LOG" "goroutines: pid $steady \\(gr-steady\\) exited, its state freed" 5
	wait_for "$LOG" "goroutines: pid $nodwarf \\(gr-nodwarf\\) exited, its state freed" 5
	stop_daemon
}

# The first process of a binary is often gone by the time its exec is read:
# the binary is still attached (from an open file, not the process's exe).
test_short_lived_processes_then_a_long_one() {
	start_daemon --rules rules/ --dry-run --sensors goroutines --goroutine-probes
	for _ in 1 2 3 4 5; do "$WL/gr-steady" spawn 1000 > /dev/null; done
	start_wl gr-steady steady 10
	wait_for "$LOG" "watching pid $WL_PID \\(gr-steady\\)" 5
	! grep "could not be watched\\|attaching uprobes" "$LOG" || fail "a short-lived process spoiled its binary"
	stop_daemon
}

test_bad_options_are_refused() {
	for opt in "--goroutine-min-rate abc" "--goroutine-window 100ms" "--goroutine-min-count 0"; do
		# shellcheck disable=SC2086
		if out=$("$REFLEXD" run $opt 2>&1); then fail "accepted $opt"; fi
		echo "$out" | grep -q "bad value .* for ${opt%% *}" || fail "$opt: $out"
	done
}

run_tests
