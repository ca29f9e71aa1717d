# The parsers of user input, and the rule engine running hostile rules,
# under libFuzzer with AddressSanitizer and UBSan, briefly (FUZZ_SECONDS each, 15 by default; run longer by hand:
#   build/fuzz/fuzz_rules -max_total_time=3600 tests/corpus/rules rules).
. "$(dirname "$0")/lib.sh"
SECONDS_EACH=${FUZZ_SECONDS:-15}

# fuzz NAME SEED_DIR...: no crash, leak or hang within the time.
fuzz() {
	name=$1
	shift
	mkdir -p "$T/corpus-$name"
	cp "$@" "$T/corpus-$name/"
	if ! "build/fuzz/$name" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$T/" "$T/corpus-$name" > "$T/$name.log" 2>&1; then
		tail -30 "$T/$name.log" >&2
		fail "$name found a crash: $(ls "$T"/crash-* "$T"/leak-* "$T"/timeout-* 2>/dev/null)"
	fi
	grep -E '^Done [0-9]+ runs' "$T/$name.log"
}

# Seeded with the broken and the hostile rule files: a rule set that loads
# is driven through the engine, so its functions run too.
test_rule_loader_survives_fuzzing() {
	fuzz fuzz_rules tests/corpus/rules/*.lua tests/corpus/hostile/*.lua rules/*.lua
}

# A rule file and a trace: the shipped rules with their tests' traces, and
# each hostile file with a trace that makes it run.
test_engine_survives_fuzzing() {
	mkdir -p "$T/engine"
	for f in rules/*.lua; do
		{ cat "$f"; printf '\n--trace--\n'; cat "${f%.lua}.test.trace" 2>/dev/null || true; } \
			> "$T/engine/$(basename "$f")"
	done
	for f in tests/corpus/hostile/*.lua; do
		{ cat "$f"; printf '\n--trace--\nreflexd-trace 1\n0 raise 1 deadlock pid=4242 comm=worker\n'
		  printf '1 raise 2 leak pid=4243 comm=svc\n3 clear 1\n'; } > "$T/engine/hostile-$(basename "$f")"
	done
	fuzz fuzz_engine "$T"/engine/*
}

test_trace_reader_survives_fuzzing() {
	fuzz fuzz_trace tests/corpus/traces/*
}

test_glob_match_agrees_with_fnmatch() {
	mkdir -p "$T/globs"
	printf 'worker*\0worker-1' > "$T/globs/1"
	printf '*a?c*\0xxabcyy' > "$T/globs/2"
	printf '/kubepods/*\0/kubepods/pod1/c' > "$T/globs/3"
	fuzz fuzz_glob "$T"/globs/*
}

# time_format's own calendar against gmtime_r and strftime, seeded with
# 1970, a leap day, 2000's and 2100's ends of February and the last
# nanosecond an int64_t holds
test_time_format_agrees_with_gmtime() {
	mkdir -p "$T/times"
	for ns in 0 951782400000000000 951868799999999999 4107542399999000000 9223372036854775807; do
		python3 -c "import sys; sys.stdout.buffer.write(($ns).to_bytes(8, 'little'))" > "$T/times/$ns"
	done
	fuzz fuzz_time "$T"/times/*
}

# sbuf_int's two-digits-a-step writer against snprintf, seeded with 0,
# -1, the extremes and a buffer too small for the number
test_int_writer_agrees_with_snprintf() {
	mkdir -p "$T/ints"
	for v in 0 -1 9223372036854775807 -9223372036854775808 1234567890123; do
		python3 -c "import sys; sys.stdout.buffer.write(($v).to_bytes(8, 'little', signed=True) + bytes([5]))" > "$T/ints/$v"
	done
	fuzz fuzz_int "$T"/ints/*
}

# Seeds: a Go binary as built (PIE: symbols, DWARF), a stripped one
# (.gopclntab), and a C one.
test_go_binary_reader_survives_fuzzing() {
	GOCACHE=$PWD/build/gocache GOPATH=$T/gopath go build -buildmode=pie -o "$T/go-pie" tests/workloads/gr_work.go
	GOCACHE=$PWD/build/gocache GOPATH=$T/gopath go build -ldflags='-s -w' -o "$T/go-stripped" tests/workloads/gr_work.go
	fuzz fuzz_go_elf "$T/go-pie" "$T/go-stripped" build/workloads/deadlock
}

run_tests
