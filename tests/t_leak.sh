# The leak sensor on the running kernel: a real process that leaks 8 MiB/s
# is found within the documented window (--leak-window, 20 s) and its
# allocation site named; a real cache that fills and then churns is not a
# leak after its plateau; a leak that never writes its blocks is found on
# mapped memory; a static binary gets "not available" for attribution. The shipped rules, in dry-run, as a user would run them.
. "$(dirname "$0")/lib.sh"

MIB=1048576

test_trend_verdicts() {
	[ -x build/unit/leak_trend ] || fail "build/unit/leak_trend missing: make units"
	build/unit/leak_trend > "$T/unit.out" 2>&1 || fail "$(grep '^not ok' "$T/unit.out" | head -3)"
	sed 's/^/  case: /' "$T/unit.out"
}

test_bad_leak_options_rejected() {
	out=$("$REFLEXD" run --rules rules/ --leak-min-rate 5MiB 2>&1) && fail "accepted 5MiB as a rate"
	echo "$out" | grep -q "bad value '5MiB' for --leak-min-rate" || fail "message: $out"
	out=$("$REFLEXD" run --rules rules/ --leak-window 1s 2>&1) && fail "accepted a 1s window"
	echo "$out" | grep -q "bad value '1s' for --leak-window" || fail "message: $out"
	printf 'leak-attribution = forever\n' > "$T/bad.conf"
	out=$("$REFLEXD" run --rules rules/ --config "$T/bad.conf" 2>&1) && fail "accepted 'forever'"
	echo "$out" | grep -q "$T/bad.conf:1: bad value 'forever' for --leak-attribution" || fail "message: $out"
}

# raises_of PID: the trace times (seconds since its start) at which a leak
# of PID was raised, one a line.
raises_of() {
	awk -v pid="pid=$1" '$2 == "raise" && $4 == "leak" && $5 == pid { print $1 }' "$T/rec.trace"
}

test_leak_caught_attributed_cache_spared() {
	cc -static -O2 -g -o "$T/lk-static" tests/workloads/memgrow.c 2>"$T/cc.err" ||
		fail "building a static leaker: $(cat "$T/cc.err")"
	start_daemon --rules rules/ --dry-run --record "$T/rec.trace"
	start_wl memgrow leak --comm lk-leak --rate 8 --limit 900
	leak_pid=$WL_PID
	leak_t0=$(field realtime_ns)
	"$T/lk-static" leak --comm lk-static --rate 8 --limit 600 > "$T/static.out" &
	static_pid=$!
	STARTED="$STARTED $static_pid"
	# a leak that never writes its blocks: mapped memory grows, rss barely
	start_wl memgrow reserve --comm lk-resv --rate 8 --limit 600
	resv_pid=$WL_PID
	start_wl memgrow cache --comm lk-cache --rate 32 --size 320
	cache_pid=$WL_PID
	wait_for "$out" '^plateau' 30
	cache_plateau_ns=$(sed -n 's/^plateau realtime_ns=//p' "$out")

	wait_for "$LOG" "leak in pid $leak_pid \(lk-leak\): rss grew" 35
	# the shipped rule decides after 30 s of growth, in dry-run
	wait_record ".rule == \"leak-restart\" and .pid == $leak_pid" 25
	rec=$(audit --rule leak-restart --pid "$leak_pid")
	echo "$rec" | jq -e ".outcome == \"dry-run\" and .kind == \"leak\" and .comm == \"lk-leak\"" >/dev/null ||
		fail "decision: $rec"
	echo "$rec" | jq -e ".evidence.rate_bps > 6.5 * $MIB and .evidence.rate_bps < 9.5 * $MIB" >/dev/null ||
		fail "rate_bps $(echo "$rec" | jq .evidence.rate_bps), want about 8 MiB/s"
	echo "$rec" | jq -e ".evidence.rss_bytes > 150 * $MIB and .evidence.signal == \"rss\"" >/dev/null ||
		fail "rss_bytes: $(echo "$rec" | jq -c .evidence)"
	# attribution: 1 s of baseline, 10 s of uprobes, the right function
	wait_for "$LOG" "leak attribution for pid $leak_pid \(lk-leak\): [0-9]+ calls" 25
	grep "leak attribution for pid $leak_pid" "$LOG"
	grep -Eq "leak attribution for pid $leak_pid \(lk-leak\): .* top: leak_block\+0x[0-9a-f]+ \([^)]*memgrow, [0-9.]+ MiB outstanding\)" "$LOG" ||
		fail "top site is not leak_block: $(grep "attribution for pid $leak_pid" "$LOG")"
	grep -q "leak attribution for pid $static_pid (lk-static): not available: no shared glibc" "$LOG" ||
		fail "static binary: $(grep "pid $static_pid" "$LOG")"
	alive "$leak_pid" || fail "dry-run touched the leaking process"
	grep -q "leak in pid $resv_pid (lk-resv): mapped memory grew" "$LOG" ||
		fail "untouched leak: $(grep "pid $resv_pid" "$LOG")"
	rec=$(audit --rule leak-restart --pid "$resv_pid")
	echo "$rec" | jq -e ".evidence.signal == \"mapped\" and .evidence.rate_bps > 6.5 * $MIB and
		.evidence.rate_bps < 9.5 * $MIB and .evidence.rss_bytes < 100 * $MIB" >/dev/null ||
		fail "untouched leak's decision: $rec"

	# the cache, watched for more than 60 s after its plateau
	while [ $(( ($(date +%s%N) - cache_plateau_ns) / 1000000000 )) -lt 65 ]; do
		sleep 1
	done
	alive "$cache_pid" || fail "the cache died"
	stop_daemon
	start_s=$(sed -n 's/^reflexd-trace 1 start=\([0-9]*\).*/\1/p' "$T/rec.trace")
	plateau_s=$(( cache_plateau_ns / 1000000000 - start_s ))
	for t in $(raises_of "$cache_pid"); do
		awk -v t="$t" -v p="$plateau_s" 'BEGIN { exit !(t > p + 2) }' &&
			fail "the cache was called a leak at +${t}s, its plateau at +${plateau_s}s"
	done
	raised=$(raises_of "$cache_pid" | wc -l)
	cleared=$(awk -v pid="pid=$cache_pid" '$2 == "raise" && $5 == pid { id[$3] = 1 }
		$2 == "clear" && ($3 in id) { n++ } END { print n + 0 }' "$T/rec.trace")
	[ "$raised" = "$cleared" ] || fail "cache: $raised leak(s) raised, $cleared cleared"
	audit | holds ".pid == $cache_pid" && fail "a decision about the cache: $(audit --pid "$cache_pid")"
	echo "cache: plateau at +${plateau_s}s, $raised leak condition(s) while filling, all cleared; none after"
	# found within the window (20 s) plus two samples and scheduling slack
	t=$(raises_of "$leak_pid" | head -1)
	[ -n "$t" ] || fail "the recording lacks the leak"
	start_ns=$(sed -n 's/^reflexd-trace 1 start=\([0-9]*\)\.\([0-9]*\).*/\1\2/p' "$T/rec.trace")
	found_ms=$(awk -v t="$t" -v s="$start_ns" -v t0="$leak_t0" 'BEGIN { printf "%d", (s / 1e9 + t - t0 / 1e9) * 1000 }')
	echo "leak found ${found_ms} ms after it began (window 20 s)"
	[ "$found_ms" -ge 15000 ] || fail "found after ${found_ms} ms: before the window was covered"
	[ "$found_ms" -le 25000 ] || fail "found after ${found_ms} ms, want <= window + 5 s"
}

run_tests
