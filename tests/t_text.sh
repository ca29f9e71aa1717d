# Bytes from the host become text at every exit (docs/journal.md, "Bytes
# and text"): valid UTF-8 in OTLP records and JSON, control characters
# escaped on a terminal, the raw bytes kept in the journal. The checks use
# decoders that are not reflexd's: Python's strict UTF-8 codec, protoc
# --decode (which refuses a string field holding invalid UTF-8), jq.
. "$(dirname "$0")/lib.sh"

PORT=47750
# what the workload calls itself: two invalid bytes, then ESC [2J (clear
# the screen), then a name a rule can match (15 bytes, comm's limit)
COMM=$'\xff\xfe\x1b[2Jbytes-dl'
# the same as text: the invalid bytes escaped, ESC kept (it is valid UTF-8)
COMM_TEXT='\xff\xfe'$'\x1b''[2Jbytes-dl'
# on a terminal: ESC escaped too
COMM_TERM='\xff\xfe\x1b[2Jbytes-dl'

# strict_json: every line of stdin is JSON in strictly decoded UTF-8.
strict_json() {
	python3 -c 'import json, sys
lines = sys.stdin.buffer.read().decode("utf-8", "strict").splitlines()
assert lines, "no output"
for line in lines:
    json.loads(line)'
}

# terminal_safe FILE: valid UTF-8 with no control character but newline.
terminal_safe() {
	python3 - "$1" <<'PY'
import sys, unicodedata
text = open(sys.argv[1], "rb").read().decode("utf-8", "strict")
bad = [c for c in text if c != "\n" and unicodedata.category(c) == "Cc"]
assert not bad, "control characters %r in %r" % (bad, text[:400])
PY
}

test_escape_matches_python_strict_decoder() {
	[ -x build/unit/text ] || fail "build/unit/text missing: make units"
	python3 - <<'PY'
import json, random, subprocess

rng = random.Random(14)
pieces = [b"a", b"Z", b" ", b"\\", b'"', b"\n", b"\t", b"\r", b"\x1b", b"\x7f", b"\x01",
          "é".encode(), "€".encode(), "😀".encode(), "\u0085".encode(), "\u009f".encode(),
          "\ufffd".encode(), "\U0010ffff".encode(), "\ud7ff".encode(), "\ue000".encode(),
          b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xed\xa0\x80",
          b"\xed\xbf\xbf", b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80",
          b"\xf5\x80\x80\x80", b"\xfe", b"\xff", b"\x80", b"\xbf", b"\xc3", b"\xe2\x82",
          b"\xf0\x9f\x98"]
cases = []
for _ in range(20000):
    b = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
    if rng.random() < 0.2:
        b = bytes(rng.randint(1, 255) for _ in range(rng.randint(1, 20)))
    cases.append(b)

def controls(text):
    out = []
    for ch in text:
        o = ord(ch)
        if ch in "\n\t\r":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}[ch])
        elif o < 0x20 or o == 0x7f or 0x80 <= o < 0xa0:
            out.append("".join("\\x%02x" % x for x in ch.encode()))
        else:
            out.append(ch)
    return "".join(out)

lines = []
for b in cases:
    for mode in "tcj":
        lines.append("%s %s" % (mode, b.hex()))
    lines.append("s %02x%s" % (rng.randint(0, 255), b.hex()))
r = subprocess.run(["build/unit/text"], input="\n".join(lines) + "\n", capture_output=True,
                   text=True, check=True)
outs = r.stdout.splitlines()
assert len(outs) == len(lines), (len(outs), len(lines))
it = iter(outs)
for b in cases:
    want = b.decode("utf-8", "backslashreplace")
    t, c, j, s = (bytes.fromhex(next(it)) for _ in range(4))
    assert t.decode("utf-8", "strict") == want, (b, t, want)
    assert c.decode("utf-8", "strict") == controls(want), (b, c, controls(want))
    assert json.loads(j.decode("utf-8", "strict")) == want, (b, j, want)
    # cut short: valid UTF-8, and a prefix of the whole text
    assert s.decode("utf-8", "strict") == want.encode()[:len(s)].decode("utf-8", "strict"), (b, s)
print("checked %d inputs in 4 modes" % len(cases))
PY
}

test_simulate_table_and_json() {
	echo 'rule "r" { when = deadlock { }, act = signal { "SIGKILL" }, verify = { within = "1s" } }' | write_rule r
	printf 'reflexd-trace 1\n0 raise 1 deadlock pid=42 comm="\\xff\\xfe\\x1b[2Jsim\\x0aX" summary="\\x1b]0;owned\\x07"\n2 end\n' > "$T/trace"
	"$REFLEXD" simulate --trace "$T/trace" --rules "$T/rules" > "$T/table"
	terminal_safe "$T/table" || fail "table: $(od -c "$T/table" | head)"
	grep -qF '\xff\xfe\x1b[2Jsim\nX' "$T/table" || fail "table: $(cat "$T/table")"
	"$REFLEXD" simulate --trace "$T/trace" --rules "$T/rules" --json > "$T/json"
	strict_json < "$T/json" || fail "simulate --json: $(od -c "$T/json" | head)"
	holds '.comm == "\\xff\\xfe\u001b[2Jsim\nX" and .summary == "\u001b]0;owned\u0007"' < "$T/json" || fail "$(cat "$T/json")"
	holds '.verify_of and .cleared == false' < "$T/json" || fail "no verification line: $(cat "$T/json")"
}

test_otlp_endpoint_too_long_is_refused() {
	echo 'rule "r" { when = deadlock { }, act = signal { "SIGKILL" } }' | write_rule r
	printf 'reflexd-trace 1\n0 raise 1 deadlock pid=42\n1 end\n' > "$T/trace"
	set +e
	out=$(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$PORT/$(printf '%01100d' 0)" \
		"$REFLEXD" simulate --trace "$T/trace" --rules "$T/rules" --otlp 2>&1)
	status=$?
	set -e
	[ "$status" != 0 ] || fail "a cut URL was used: $out"
	echo "$out" | grep -q "OTEL_EXPORTER_OTLP_ENDPOINT: the URL is longer than 1022 bytes" || fail "$out"
}

# An empty --otlp-endpoint is no URL (its last byte was read from before
# the string: AddressSanitizer's heap-buffer-overflow in a sanitized build).
test_otlp_endpoint_empty_is_refused() {
	echo 'rule "r" { when = deadlock { }, act = signal { "SIGKILL" } }' | write_rule r
	printf 'reflexd-trace 1\n0 raise 1 deadlock pid=42\n1 end\n' > "$T/trace"
	set +e
	out=$("$REFLEXD" simulate --trace "$T/trace" --rules "$T/rules" --otlp --otlp-endpoint '' 2>&1)
	status=$?
	set -e
	[ "$status" = 2 ] || fail "exit $status: $out"
	echo "$out" | grep -q -- "--otlp-endpoint: '/v1/logs' is not an http:// or https:// URL" || fail "$out"
}

test_receiver_refuses_invalid_utf8() {
	# the receiver stands in for a collector that validates UTF-8: a
	# record with raw invalid bytes is refused whole, with 400
	rm -rf "$T/rx"
	mkdir -p "$T/rx"
	python3 tests/otlp_receiver.py --port "$PORT" --out "$T/rx" > "$T/rx.log" 2>&1 &
	STARTED="$STARTED $!"
	wait_for "$T/rx.log" '^ready' 10
	printf 'resource_logs { scope_logs { log_records { body { string_value: "ok" } } log_records { body { string_value: "\\377\\376" } } } }' |
		protoc --encode=opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest -Iproto \
			opentelemetry/proto/collector/logs/v1/logs_service.proto > "$T/bad.pb" 2>/dev/null
	code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/x-protobuf' \
		--data-binary @"$T/bad.pb" "http://127.0.0.1:$PORT/v1/logs")
	[ "$code" = 400 ] || fail "raw invalid UTF-8 answered $code"
	jq -e '.decode_error | test("UTF-8|parse")' "$T/rx/requests.jsonl" >/dev/null || fail "$(cat "$T/rx/requests.jsonl")"
	[ ! -s "$T/rx/records.jsonl" ] || fail "records accepted"
}

test_process_named_with_invalid_bytes() {
	echo 'rule "bytes-kill" { when = deadlock { }, where = { comm = "*bytes-dl" }, hold = "200ms", act = signal { "SIGKILL" } }
rule "bytes-plain" { when = deadlock { }, where = { comm = "bytes-plain" }, hold = "200ms", act = signal { "SIGKILL" } }' | write_rule r
	rm -rf "$T/rx"
	mkdir -p "$T/rx"
	python3 tests/otlp_receiver.py --port "$PORT" --out "$T/rx" > "$T/rx.log" 2>&1 &
	STARTED="$STARTED $!"
	wait_for "$T/rx.log" '^ready' 10
	# one batch for both records: one record's bytes must not sink the other
	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$PORT start_daemon --sensors deadlock \
		--rules "$T/rules" --otlp-batch-delay 2s
	start_wl deadlock abba --comm "$COMM"
	bad=$WL_PID
	[ "$(cat /proc/$bad/comm)" = "$COMM" ] || fail "the workload's comm is $(od -c /proc/$bad/comm)"
	start_wl deadlock abba --comm bytes-plain
	plain=$WL_PID
	wait_gone "$bad" 15
	wait_gone "$plain" 15
	end_rx=$(( $(date +%s) + 15 ))
	touch "$T/rx/records.jsonl"
	until [ "$(wc -l < "$T/rx/records.jsonl")" -ge 2 ]; do
		[ "$(date +%s)" -le "$end_rx" ] || fail "records: $(cat "$T/rx/requests.jsonl" 2>/dev/null)"
		sleep 0.2
	done
	stop_daemon
	# every request accepted and decoded: protoc found valid UTF-8 in
	# every string, and both records rode in one request
	jq -s -e 'all(.[]; .status == 200 and (.decode_error | not))' "$T/rx/requests.jsonl" >/dev/null \
		|| fail "requests: $(cat "$T/rx/requests.jsonl")"
	jq -s -e 'any(.[]; (.records | length) == 2)' "$T/rx/requests.jsonl" >/dev/null \
		|| fail "not one batch: $(jq -c '.records | length' "$T/rx/requests.jsonl")"
	want=$(printf '%s' "$COMM_TEXT" | jq -Rs .)
	jq -s -e "any(.[]; .attributes[\"process.pid\"] == $bad
		and .attributes[\"reflex.outcome\"] == \"acted\"
		and (.body | startswith(\"killed pid $bad (\" + $want + \") with SIGKILL\")))" "$T/rx/records.jsonl" >/dev/null \
		|| fail "record: $(jq -c "select(.attributes[\"process.pid\"] == $bad)" "$T/rx/records.jsonl")"
	jq -s -e "any(.[]; .attributes[\"process.pid\"] == $plain and (.body | contains(\"(bytes-plain)\")))" \
		"$T/rx/records.jsonl" >/dev/null || fail "the other record is missing"
	# audit --json: strict UTF-8 JSON, the comm as text
	audit > "$T/audit.json"
	strict_json < "$T/audit.json" || fail "audit --json is not strict UTF-8 JSON: $(od -c "$T/audit.json" | head -5)"
	holds ".pid == $bad and .comm == $want and (.evidence | type == \"object\")" < "$T/audit.json" \
		|| fail "audit --json: $(jq -c "select(.pid == $bad) | {comm, evidence}" "$T/audit.json")"
	# the table and `audit show`: no control character reaches the terminal
	"$REFLEXD" audit --journal "$T/journal.db" > "$T/table"
	terminal_safe "$T/table" || fail "table: $(od -c "$T/table" | head)"
	grep -qF "$COMM_TERM" "$T/table" || fail "table: $(cat "$T/table")"
	id=$(jq -r "select(.pid == $bad) | .id" "$T/audit.json")
	"$REFLEXD" audit --journal "$T/journal.db" show "$id" > "$T/show"
	terminal_safe "$T/show" || fail "show: $(od -c "$T/show" | head)"
	grep -qF "target    pid $bad (tid" "$T/show" && grep -qF ") $COMM_TERM" "$T/show" || fail "show: $(cat "$T/show")"
	# the daemon's log echoes the comm escaped
	terminal_safe "$LOG" || fail "log: $(grep -a bytes-dl "$LOG")"
	grep -qF "$COMM_TERM" "$LOG" || fail "log: $(grep -a bytes-dl "$LOG")"
	# a time range further back than the epoch is everything, not nothing
	[ "$(audit --since 200000d | wc -l)" = "$(audit | wc -l)" ] || fail "--since 200000d: $(audit --since 200000d)"
	[ "$(audit --until 200000d | wc -l)" = 0 ] || fail "--until 200000d: $(audit --until 200000d)"
	# the journal keeps the bytes as they were
	[ "$(sqlite3 "$T/journal.db" "SELECT hex(comm) FROM decisions WHERE pid = $bad")" = \
	  "$(printf '%s' "$COMM" | od -An -tx1 | tr -d ' \n' | tr a-f A-F)" ] || fail "journal: $(sqlite3 "$T/journal.db" "SELECT hex(comm) FROM decisions")"
}

run_tests
