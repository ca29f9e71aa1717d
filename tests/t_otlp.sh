# OTLP logs export (docs/otlp.md): every decision reaches a collector,
# checked by a receiver that decodes with protoc (not reflexd's code);
# retries as OTLP/HTTP says; nothing lost across an outage or a restart;
# the audit's filters, show and summary; /metrics.
. "$(dirname "$0")/lib.sh"
. tests/pki.sh

PORT=47400
METRICS=127.0.0.1:47401
RX_PID=""

# receiver ARGS...: the test receiver on $PORT, writing to $T/rx.
receiver() {
	[ -n "$RX_KEEP" ] || rm -rf "$T/rx"
	mkdir -p "$T/rx"
	# Debian's python3, for which deploy/deps.sh installs python3-protobuf
	/usr/bin/python3 tests/otlp_receiver.py --port "$PORT" --out "$T/rx" "$@" > "$T/rx.log" 2>&1 &
	RX_PID=$!
	STARTED="$STARTED $RX_PID"
	wait_for "$T/rx.log" '^ready' 10
}

receiver_stop() {
	kill -TERM "$RX_PID" 2>/dev/null || true
	wait "$RX_PID" 2>/dev/null || true
}

# records: the records the receiver accepted, one JSON object a line.
records() {
	cat "$T/rx/records.jsonl" 2>/dev/null || true
}

# wait_records N SECONDS: until the receiver has accepted N records.
wait_records() {
	records_end=$(( $(date +%s) + $2 ))
	while [ "$(records | wc -l)" -lt "$1" ]; do
		[ "$(date +%s)" -le "$records_end" ] || { fail "want $1 records, have $(records | wc -l): $(tail -3 "$T/rx/requests.jsonl" 2>/dev/null)"; return 1; }
		sleep 0.2
	done
}

# export_daemon ARGS...: reflexd run exporting to the receiver.
export_daemon() {
	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$PORT start_daemon --sensors deadlock \
		--otlp-batch-delay 100ms --otlp-retry-max 2s "$@"
}

# reloads N: N rule reloads, each a decision record of its own.
reloads() {
	for _ in $(seq "$1"); do
		n=$(grep -c 'reloaded:' "$LOG" || true)
		kill -HUP "$DAEMON"
		wait_for "$LOG" "reloaded:.*" 5
		while [ "$(grep -c 'reloaded:' "$LOG")" -le "$n" ]; do sleep 0.05; done
	done
}

metric() {
	curl -s "http://$METRICS/metrics" | awk -v m="$1" '$1 == m {print $2}'
}

# families_whole: stdin, a Prometheus text exposition, has each family in
# one block (its HELP and TYPE, then all its samples) and each TYPE once.
families_whole() {
	awk '/^# TYPE / { if (seen[$3]++) { print "second TYPE for " $3; bad = 1 } fam = $3; hist = $4 == "histogram"; next }
	     /^#/ { next }
	     { name = $1; sub(/\{.*/, "", name); if (hist) sub(/_(bucket|sum|count)$/, "", name)
	       if (name != fam) { print name " outside its family block (in " fam ")"; bad = 1 } }
	     END { exit bad }'
}

quiet_rule() {
	echo 'rule "quiet" { when = deadlock { }, where = { comm = "ot-none" }, act = signal { "SIGKILL" } }' | write_rule quiet
}

test_decisions_as_otlp_records() {
	echo 'rule "ot-kill" { when = deadlock { }, where = { comm = "ot-kill" }, hold = "200ms", act = signal { "SIGKILL" }, verify = { within = "3s" } }
rule "ot-dry" { when = deadlock { }, where = { comm = "ot-dry" }, hold = "200ms", act = signal { "SIGTERM" }, dry_run = true }
rule "ot-prot" { when = deadlock { }, where = { comm = "ot-prot" }, hold = "200ms", act = signal { "SIGKILL" } }' | write_rule r
	receiver
	OTEL_EXPORTER_OTLP_HEADERS='x-test=yes%20really' OTEL_EXPORTER_OTLP_COMPRESSION=gzip \
	OTEL_RESOURCE_ATTRIBUTES='deployment.environment=test,k8s.node.name=node-7' OTEL_SERVICE_NAME=ot-svc \
		export_daemon --rules "$T/rules" --protect-comm ot-prot --metrics "$METRICS"
	start_wl deadlock abba --comm ot-kill
	kill_pid=$WL_PID
	# what the conventions want: argv[0] (start_wl runs the workload by its
	# path), and the cgroup2 line the workload inherited from this shell
	argv0=$WL/deadlock
	cgroup_line=$(grep '^0::' "/proc/$$/cgroup")
	start_wl deadlock abba --comm ot-dry
	dry_pid=$WL_PID
	start_wl deadlock relock --comm ot-prot
	prot_pid=$WL_PID
	# three decisions and the kill's verification
	wait_records 4 15
	[ "$(metric 'reflexd_decisions_total{outcome="acted"}')" = 1 ] || fail "acted: $(curl -s "http://$METRICS/metrics")"
	[ "$(metric 'reflexd_decisions_total{outcome="suppressed"}')" = 1 ] || fail "suppressed"
	[ "$(metric 'reflexd_conditions_total{kind="deadlock"}')" -ge 3 ] || fail "conditions"
	stop_daemon
	req=$(head -1 "$T/rx/requests.jsonl")
	echo "$req" | jq -e '.path == "/v1/logs" and .content_type == "application/x-protobuf" and .encoding == "gzip"
		and .x_test == "yes really" and (.decode_error | not)' >/dev/null || fail "request: $req"
	records | holds '.resource["service.name"] == "ot-svc" and .resource["deployment.environment"] == "test"
		and .resource["k8s.node.name"] == "node-7" and .resource["host.name"] != null and .resource["service.version"] != null
		and .scope == "reflexd"' || fail "resource: $(records | head -1 | jq -c .resource)"
	records | jq -s -e 'all(.[]; .resource_schema_url == "https://opentelemetry.io/schemas/1.27.0"
		and .scope_schema_url == .resource_schema_url)' >/dev/null || fail "schema_url: $(records | head -1 | jq -c '[.resource_schema_url, .scope_schema_url]')"
	id=$(audit --pid "$kill_pid" | jq -r .id)
	hash=$(audit --pid "$kill_pid" | jq -r .rule_hash)
	records | holds ".event_name == \"reflex.decision\" and .severity_number == \"SEVERITY_NUMBER_WARN\"
		and .severity_text == \"WARN\" and .attributes[\"reflex.decision.id\"] == \"$id\"
		and .attributes[\"process.pid\"] == $kill_pid and .attributes[\"process.command\"] == \"$argv0\"
		and .attributes[\"process.linux.cgroup\"] == \"$cgroup_line\" and (.attributes | has(\"reflex.target.cgroup\") | not)
		and .attributes[\"process.executable.name\"] == \"deadlock\" and .attributes[\"reflex.rule\"] == \"ot-kill\"
		and .attributes[\"reflex.rule.hash\"] == \"$hash\" and .attributes[\"reflex.condition.kind\"] == \"deadlock\"
		and .attributes[\"reflex.action\"] == \"signal\" and .attributes[\"reflex.outcome\"] == \"acted\"
		and .attributes[\"reflex.mode\"] == \"live\" and (.attributes[\"reflex.action.params\"] | fromjson | .signal == \"SIGKILL\")
		and (.attributes[\"reflex.condition.evidence\"] | type == \"object\" and .threads == 2
			and (.cycle | length == 2) and (.cycle[0].blocked_in | type == \"string\")
			and (.cycle[0].stack | type == \"array\") and (.cycle[0].blocked_ms | type == \"number\")
			and .self_deadlock == false)
		and .time_unix_nano > 0 and .observed_time_unix_nano >= .time_unix_nano" \
		|| fail "acted record: $(records | jq -c "select(.attributes[\"process.pid\"] == $kill_pid)")"
	body=$(records | jq -r "select(.attributes[\"reflex.decision.id\"] == \"$id\" and .event_name == \"reflex.decision\") | .body")
	echo "$body" | grep -Eq "^killed pid $kill_pid \(ot-kill\) with SIGKILL: deadlock, transfer_funds\(\) holds account_lock, waits for ledger_lock; audit_ledger\(\) holds ledger_lock, waits for account_lock, held [0-9.]+m?s; rule ot-kill$" \
		|| fail "body: $body"
	records | holds ".event_name == \"reflex.verification\" and .attributes[\"reflex.decision.id\"] == \"$id\"
		and (.attributes[\"reflex.verification\"] | startswith(\"cleared\")) and .severity_text == \"INFO\"" \
		|| fail "no verification record"
	records | holds ".attributes[\"process.pid\"] == $dry_pid and .severity_text == \"INFO\"
		and .attributes[\"reflex.outcome\"] == \"dry-run\" and .attributes[\"reflex.mode\"] == \"dry-run\"
		and (.body | startswith(\"would have signalled pid $dry_pid (ot-dry) with SIGTERM (dry-run): deadlock\"))" \
		|| fail "dry-run record: $(records | jq -c "select(.attributes[\"process.pid\"] == $dry_pid) | .body")"
	records | holds ".attributes[\"process.pid\"] == $prot_pid and .severity_text == \"INFO\"
		and .attributes[\"reflex.outcome\"] == \"suppressed\" and (.body | startswith(\"did not kill pid $prot_pid\"))" \
		|| fail "suppressed record"
	# each record once: no retry was needed
	[ "$(records | jq -r '.attributes["reflex.decision.id"] + .event_name' | sort | uniq -d)" = "" ] || fail "duplicates"
	kill -KILL "$dry_pid" "$prot_pid"
}

test_metrics_and_healthz() {
	quiet_rule
	receiver
	export_daemon --rules "$T/rules" --metrics "$METRICS"
	# every counter family is there from the start, its known series at 0
	text=$(curl -s "http://$METRICS/metrics")
	for series in 'reflexd_decisions_total{outcome="acted"}' 'reflexd_decisions_total{outcome="failed"}' \
		      'reflexd_decisions_total{outcome="dry-run"}' 'reflexd_decisions_total{outcome="suppressed"}' \
		      'reflexd_decisions_total{outcome="unknown"}' 'reflexd_sensor_drops_total{sensor="deadlock"}' \
		      reflexd_export_records_total reflexd_export_failed_total; do
		echo "$text" | grep -qxF "$series 0" || fail "no '$series 0' at start: $text"
	done
	reloads 2
	wait_records 2 10
	[ "$(curl -s "http://$METRICS/healthz")" = ok ] || fail "healthz"
	text=$(curl -s "http://$METRICS/metrics")
	echo "$text" | grep -q '^# TYPE reflexd_conditions_total counter$' || fail "$text"
	echo "$text" | grep -q '^reflexd_conditions_total{kind="deadlock"} ' || fail "$text"
	[ "$(metric reflexd_export_records_total)" = 2 ] || fail "exported: $text"
	[ "$(metric reflexd_export_backlog)" = 0 ] || fail "backlog: $text"
	echo "$text" | grep -q '^reflexd_rule_evals_total [1-9]' || fail "evals: $text"
	# the loop-lag histogram: one observation every 97 ms, cumulative
	# buckets ending in +Inf equal to the count
	echo "$text" | grep -q '^# TYPE reflexd_loop_lag_seconds histogram$' || fail "$text"
	echo "$text" | awk '/^reflexd_loop_lag_seconds_bucket\{le="\+Inf"\}/ {inf = $2}
		/^reflexd_loop_lag_seconds_count/ {n = $2} END {exit !(n > 0 && inf == n)}' \
		|| fail "loop lag: $(echo "$text" | grep loop_lag)"
	# Prometheus' own parser and linter, and each family in one block
	echo "$text" | promtool check metrics > "$T/promtool.out" 2>&1 || fail "promtool: $(cat "$T/promtool.out")"
	echo "$text" | families_whole || fail "families split: $text"
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$METRICS/nope")" = 404 ] || fail "404"
	head=$(curl -s -D - -o /dev/null -X POST "http://$METRICS/metrics" | tr -d '\r')
	echo "$head" | grep -q '^HTTP/1.0 405 ' && echo "$head" | grep -qx 'Allow: GET, HEAD' || fail "405: $head"
	stop_daemon
	# off by default
	export_daemon --rules "$T/rules"
	curl -s "http://$METRICS/healthz" >/dev/null && fail "metrics served without --metrics"
	stop_daemon
}

# Families first used interleaved (as sensors and the exporter register
# theirs at run time) are still written whole, and the text parses.
test_metric_families_written_whole() {
	[ -x build/unit/metrics ] || fail "build/unit/metrics missing: make units"
	build/unit/metrics > "$T/unit.txt"
	families_whole < "$T/unit.txt" || fail "$(cat "$T/unit.txt")"
	promtool check metrics < "$T/unit.txt" > "$T/promtool.out" 2>&1 || fail "promtool: $(cat "$T/promtool.out")"
	[ "$(grep -c '^unit_drops_total' "$T/unit.txt")" = 3 ] || fail "$(cat "$T/unit.txt")"
	grep -qxF 'unit_drops_total{sensor="a \"quoted\\ name\n"} 3' "$T/unit.txt" || fail "escaping: $(cat "$T/unit.txt")"
	# a histogram: cumulative buckets, +Inf, sum and count
	[ "$(grep '^unit_lag_seconds' "$T/unit.txt" | tr '\n' ' ')" = 'unit_lag_seconds_bucket{le="0.001"} 1 unit_lag_seconds_bucket{le="0.01"} 1 unit_lag_seconds_bucket{le="0.1"} 2 unit_lag_seconds_bucket{le="+Inf"} 3 unit_lag_seconds_sum 3.0510000000000002 unit_lag_seconds_count 3 ' ] \
		|| fail "histogram: $(grep unit_lag "$T/unit.txt")"
	# the check itself catches a split family
	printf '# TYPE a_total counter\na_total{k="x"} 1\n# TYPE b_total counter\nb_total 0\na_total{k="y"} 2\n' |
		families_whole > /dev/null && fail "families_whole passed a split family"
	true
}

# A reload is a lifecycle event: its own event name, INFO when taken,
# ERROR when refused; never a reflex.decision.
test_lifecycle_reload_records() {
	quiet_rule
	receiver
	export_daemon --rules "$T/rules"
	reloads 1
	wait_records 1 10
	echo 'rule "broken" { when = deadlock { }, act = signal { "SIGKIL" } }' | write_rule broken
	kill -HUP "$DAEMON"
	wait_for "$LOG" 'reload rejected: the running rules stay' 5
	wait_records 2 10
	stop_daemon
	records | holds '.event_name == "reflex.lifecycle.reload" and .severity_text == "INFO"
		and .severity_number == "SEVERITY_NUMBER_INFO" and .attributes["reflex.outcome"] == "acted"
		and .body == "reload done: loaded 1 rules from 1 files after SIGHUP"' || fail "taken: $(records | jq -c .)"
	records | holds '.event_name == "reflex.lifecycle.reload" and .severity_text == "ERROR"
		and .severity_number == "SEVERITY_NUMBER_ERROR" and .attributes["reflex.outcome"] == "failed"
		and (.body | test("^reload failed: rejected \\([0-9]+ errors; the running rules stay\\): .* after SIGHUP$"))' \
		|| fail "refused: $(records | jq -c .)"
	records | holds '.event_name == "reflex.decision"' && fail "a reload as a decision: $(records | jq -c .)"
	true
}

test_retry_429_503_then_400_is_dropped() {
	quiet_rule
	receiver --schedule '429:1,503,400'
	export_daemon --rules "$T/rules" --metrics "$METRICS"
	reloads 1
	wait_for "$LOG" 'HTTP 400: 1 records refused, not retried: receiver says 400' 15
	[ "$(jq -s -c '[.[].status]' "$T/rx/requests.jsonl")" = '[429,503,400]' ] || fail "$(cat "$T/rx/requests.jsonl")"
	grep -q 'HTTP 429 Retry-After: 1; 1 records kept, retry in 1.0s' "$LOG" || fail "$(grep otlp "$LOG")"
	[ "$(metric reflexd_export_failed_total)" = 1 ] || fail "failed count"
	[ "$(metric reflexd_export_retries_total)" = 2 ] || fail "retries count"
	# the refused record is not retried; the next one goes through
	reloads 1
	wait_records 1 10
	sleep 1
	[ "$(wc -l < "$T/rx/requests.jsonl")" = 4 ] || fail "a 400 was retried: $(cat "$T/rx/requests.jsonl")"
	stop_daemon
}

test_retry_after_http_date_and_partial_success() {
	quiet_rule
	receiver --schedule '429date:2,partial:1'
	export_daemon --rules "$T/rules" --metrics "$METRICS"
	reloads 1
	wait_for "$LOG" 'the collector rejected 1 of 1 records: test rejects 1' 15
	t1=$(jq -s '.[0] | .n' "$T/rx/requests.jsonl")
	[ "$t1" = 1 ] || fail "requests"
	grep -Eq 'HTTP 429 Retry-After: .* GMT; 1 records kept, retry in [12]\.[0-9]s' "$LOG" || fail "$(grep otlp "$LOG")"
	[ "$(metric reflexd_export_rejected_total)" = 1 ] || fail "rejected count"
	stop_daemon
}

test_slow_collector_times_out_and_retries() {
	quiet_rule
	receiver --schedule 'sleep:4'
	export_daemon --rules "$T/rules" --otlp-timeout 1s
	reloads 1
	# the timed-out request is sent again: the receiver sees it twice
	wait_records 2 20
	grep -Eq 'otlp: .*(timed out|Timeout).*; 1 records kept' "$LOG" || fail "$(grep otlp "$LOG")"
	[ "$(records | jq -r '.attributes["reflex.decision.id"]' | sort -u | wc -l)" = 1 ] || fail "different records"
	stop_daemon
}

test_outage_loses_nothing() {
	echo 'rule "ot-out" { when = deadlock { }, where = { comm = "ot-out*" }, hold = "200ms", act = signal { "SIGKILL" }, budget = { max = 1000, per = "1h" } }' | write_rule r
	receiver
	export_daemon --rules "$T/rules" --metrics "$METRICS" --budget-max 1000
	reloads 1
	wait_records 1 10
	receiver_stop
	# two minutes with decisions flowing and no collector
	# (not $end: lib.sh's wait functions use that name)
	outage_end=$(( $(date +%s) + 120 ))
	i=0
	while [ "$(date +%s)" -lt "$outage_end" ]; do
		i=$((i + 1))
		start_wl deadlock abba --comm "ot-out$i"
		kill -HUP "$DAEMON"
		wait_gone "$WL_PID" 10
		sleep 4
	done
	wait_for "$LOG" "reloaded:" 5
	sleep 1
	backlog=$(metric reflexd_export_backlog)
	[ "${backlog:-0}" -ge "$i" ] || fail "backlog $backlog after $i kills"
	grep -q 'Connection refused\|Couldn.t connect' "$LOG" || fail "$(grep otlp "$LOG")"
	want=$(audit | jq -s 'length')
	RX_KEEP=1 receiver
	wait_records "$want" 40
	stop_daemon
	# every decision exactly once: refused connections delivered nothing
	[ "$(records | jq -r '.attributes["reflex.decision.id"]' | sort | uniq -d)" = "" ] || fail "duplicates"
	[ "$(records | jq -r '.attributes["reflex.decision.id"]' | sort -u)" = "$(audit | jq -r .id | sort -u)" ] \
		|| fail "journal and collector differ"
	[ "$(records | jq -s '[.[] | select(.attributes["reflex.rule"] == "ot-out")] | length')" -ge "$i" ] || fail "kills missing"
}

test_restart_sends_the_backlog() {
	quiet_rule
	export_daemon --rules "$T/rules"
	reloads 3
	stop_daemon
	receiver
	export_daemon --rules "$T/rules"
	grep -q 'otlp: 3 records from before are waiting' "$LOG" || fail "$(grep otlp "$LOG")"
	wait_records 3 10
	[ "$(records | jq -r '.attributes["reflex.decision.id"]' | sort)" = "$(audit | jq -r .id | sort)" ] || fail "ids differ"
	stop_daemon
}

# A forged row waiting in the outbox (pid 2^32 + 1, read as pid 1 once) is
# never sent with a wrong pid: the journal says why it is skipped, it
# leaves the outbox unsent (no retry loop), the others are sent, and the
# row itself stays in the journal as it is.
test_forged_row_in_the_backlog_is_not_sent() {
	quiet_rule
	export_daemon --rules "$T/rules"
	reloads 3
	stop_daemon
	forged=$(sqlite3 "$T/journal.db" "SELECT id FROM decisions ORDER BY time_ns LIMIT 1 OFFSET 1")
	sqlite3 "$T/journal.db" "UPDATE decisions SET pid = 4294967297 WHERE id = '$forged'"
	receiver
	# export_daemon takes an error line for a failed start: wait for ready
	LOG=$T/daemon.log
	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$PORT "$REFLEXD" run --journal "$T/journal.db" \
		--sensors deadlock --otlp-batch-delay 100ms --otlp-retry-max 2s --rules "$T/rules" > "$LOG" 2>&1 &
	DAEMON=$!
	STARTED="$STARTED $DAEMON"
	wait_for "$LOG" 'reflexd: info: ready' 20 || return 1
	wait_records 2 10
	sleep 1
	said=$(grep -c "reflexd: error: journal: decision $forged: pid 4294967297 is out of range; row skipped" "$LOG" || true)
	stop_daemon
	# by the exporter once (not a retry loop), and by the guards' read of
	# the recent decisions at start
	[ "$said" -ge 1 ] && [ "$said" -le 2 ] || fail "the skip said $said times: $(cat "$LOG")"
	[ "$(records | wc -l)" = 2 ] || fail "$(records | wc -l) records sent"
	! records | grep -q "$forged" || fail "the forged row was sent"
	[ "$(sqlite3 "$T/journal.db" "SELECT count(*) FROM outbox")" = 0 ] || fail "the outbox keeps it"
	[ "$(sqlite3 "$T/journal.db" "SELECT pid FROM decisions WHERE id = '$forged'")" = 4294967297 ] ||
		fail "the forged row changed"
}

test_backlog_bound_drops_oldest_visibly() {
	quiet_rule
	export_daemon --rules "$T/rules" --export-backlog-max 2 --metrics "$METRICS"
	reloads 4
	grep -q 'export backlog full (--export-backlog-max 2): 1 oldest records dropped' "$LOG" || fail "$(grep otlp "$LOG")"
	[ "$(metric reflexd_export_dropped_total)" = 2 ] || fail "dropped"
	receiver
	wait_records 2 15
	sleep 1
	[ "$(records | wc -l)" = 2 ] || fail "$(records | wc -l) records"
	# the newest two
	[ "$(records | jq -r '.attributes["reflex.decision.id"]' | sort)" = "$(audit | jq -r .id | sort | tail -2)" ] || fail "not the newest"
	stop_daemon
}

# refused_at_start "VAR=value|message"...: with each variable set, reflexd
# run stops at start with exit 2 and says the message.
refused_at_start() {
	for bad in "$@"; do
		set +e
		out=$(env OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$PORT "${bad%%|*}" \
			"$REFLEXD" run --rules "$T/rules" --journal "$T/j2.db" 2>&1)
		s=$?
		set -e
		[ "$s" = 2 ] && echo "$out" | grep -qF "${bad#*|}" || fail "$bad: $s $out"
	done
}

test_bad_and_missing_configuration() {
	quiet_rule
	start_daemon --rules "$T/rules" --sensors deadlock
	[ "$(grep -c 'otlp: no endpoint configured' "$LOG")" = 1 ] || fail "$(cat "$LOG")"
	stop_daemon
	refused_at_start "OTEL_EXPORTER_OTLP_COMPRESSION=brotli|OTEL_EXPORTER_OTLP_COMPRESSION: compression 'brotli' is not gzip or none" \
		   "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT=soon|OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: timeout 'soon' is not a number" \
		   "OTEL_RESOURCE_ATTRIBUTES=team|OTEL_RESOURCE_ATTRIBUTES: 'team' is not key=value" \
		   "OTEL_EXPORTER_OTLP_HEADERS=a=1,,b|OTEL_EXPORTER_OTLP_HEADERS: 'b' is not key=value"
	set +e
	out=$(OTEL_EXPORTER_OTLP_ENDPOINT=127.0.0.1:4318 "$REFLEXD" run --rules "$T/rules" --journal "$T/j2.db" 2>&1)
	s=$?
	out2=$("$REFLEXD" run --rules "$T/rules" --journal "$T/j2.db" --metrics 127.0.0.1:notaport 2>&1)
	s2=$?
	out3=$("$REFLEXD" simulate --otlp --trace rules/deadlock.test.trace --rules rules/ 2>&1)
	s3=$?
	set -e
	[ "$s" = 2 ] && echo "$out" | grep -q "OTEL_EXPORTER_OTLP_ENDPOINT: '127.0.0.1:4318/v1/logs' is not an http:// or https:// URL" \
		|| fail "$s $out"
	[ "$s2" = 1 ] && echo "$out2" | grep -q -- "--metrics 127.0.0.1:notaport" || fail "$s2 $out2"
	[ "$s3" = 2 ] && echo "$out3" | grep -q "simulate --otlp: no endpoint configured" || fail "$s3 $out3"
}

# A collector behind TLS that wants a client certificate: verified
# against --otlp-certificate, reflexd's certificate from the OTEL
# variables. Without the CA nothing is sent, and says why; a missing file
# or a certificate without its key stops it before anything is sent.
test_tls_collector_with_client_certificate() {
	pki
	receiver --tls "$T/pki"
	sim() {
		"$REFLEXD" simulate --otlp --otlp-retry-max 1s --otlp-endpoint "https://127.0.0.1:$PORT" \
			--trace rules/deadlock.test.trace --rules rules/ "$@"
	}
	n=$(OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=$T/pki/client.crt OTEL_EXPORTER_OTLP_CLIENT_KEY=$T/pki/client.key \
		sim --json --otlp-certificate "$T/pki/ca.crt" 2>"$T/sim.err" | jq -s '[.[] | select(.id or .verify_of)] | length') ||
		fail "$(cat "$T/sim.err")"
	[ "$n" -gt 0 ] && [ "$(records | wc -l)" = "$n" ] || fail "want $n records, have $(records | wc -l)"
	jq -s -e 'length > 0 and all(.[]; .client_cn == "k8-reflexd" and .status == 200)' "$T/rx/requests.jsonl" \
		>/dev/null || fail "requests: $(head -c 600 "$T/rx/requests.jsonl")"
	# the system store does not know the test CA: refused, kept, retried
	set +e
	OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=$T/pki/client.crt OTEL_EXPORTER_OTLP_CLIENT_KEY=$T/pki/client.key \
		timeout --preserve-status -s INT 4 "$REFLEXD" simulate --otlp --otlp-endpoint "https://127.0.0.1:$PORT" \
		--trace rules/deadlock.test.trace --rules rules/ > /dev/null 2>"$T/sim.err"
	s=$?
	out=$(sim --otlp-certificate "$T/pki/ca.crt" --otlp-client-certificate "$T/pki/client.crt" 2>&1)
	s2=$?
	out3=$(sim --otlp-certificate "$T/pki/nothere.crt" 2>&1)
	s3=$?
	set -e
	[ "$s" = 1 ] && grep -Eq "otlp: https://127.0.0.1:$PORT/v1/logs: .*(SSL|certificate).*records kept" "$T/sim.err" &&
		grep -Eq "simulate: 0 records exported .* [1-9][0-9]* not sent" "$T/sim.err" || fail "no CA: $s $(cat "$T/sim.err")"
	[ "$s2" = 2 ] && echo "$out" | grep -q "a client certificate needs its key" || fail "no key: $s2 $out"
	[ "$s3" = 2 ] && echo "$out3" | grep -q -- "--otlp-certificate: $T/pki/nothere.crt: No such file" ||
		fail "missing file: $s3 $out3"
	[ "$(records | wc -l)" = "$n" ] || fail "records arrived without the CA"
}

test_simulate_exports_marked_simulate() {
	receiver --schedule '503'
	out=$(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http://127.0.0.1:$PORT/v1/logs OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1 \
		"$REFLEXD" simulate --otlp --json --otlp-retry-max 1s --trace rules/deadlock.test.trace --rules rules/ 2>"$T/sim.err")
	n=$(echo "$out" | jq -s '[.[] | select(.id)] | length')
	v=$(echo "$out" | jq -s '[.[] | select(.verify_of)] | length')
	[ "$n" -gt 0 ] || fail "no decisions: $out"
	[ "$(records | wc -l)" = $((n + v)) ] || fail "want $((n + v)) records, have $(records | wc -l)"
	records | jq -s -e 'all(.[]; .attributes["reflex.mode"] == "simulate")' >/dev/null || fail "mode"
	[ "$(records | jq -r 'select(.event_name == "reflex.decision") | .attributes["reflex.decision.id"]' | sort)" = \
	  "$(echo "$out" | jq -r 'select(.id) | .id' | sort)" ] || fail "ids differ"
	grep -q "simulate: $((n + v)) records exported to http://127.0.0.1:$PORT/v1/logs, 0 rejected, 0 refused, 0 not sent" "$T/sim.err" \
		|| fail "$(cat "$T/sim.err")"
}

# A rule whose function fails is disabled: a lifecycle record (ERROR),
# not a decision that reads as a failed kill.
test_rule_disabled_is_a_lifecycle_record() {
	mkdir -p "$T/simrules"
	echo 'rule "errors" { when = function(c) return c.evidence.nope.deeper end, where = { comm = "e" }, act = signal { "SIGKILL" } }' \
		> "$T/simrules/f.lua"
	printf 'reflexd-trace 1 start=1700000000\n0 raise 1 deadlock pid=10 comm=e\n5 end\n' > "$T/f.trace"
	receiver
	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$PORT "$REFLEXD" simulate --otlp --trace "$T/f.trace" \
		--rules "$T/simrules" > /dev/null 2>"$T/sim.err" || fail "$(cat "$T/sim.err")"
	[ "$(records | wc -l)" = 1 ] || fail "records: $(records | jq -c .)"
	records | holds '.event_name == "reflex.lifecycle.rule_disabled" and .severity_text == "ERROR"
		and .attributes["reflex.rule"] == "errors" and .attributes["process.pid"] == 10
		and (.body | test("^rule errors disabled until the rules are reloaded, evaluating deadlock on pid 10 \\(e\\): .*f.lua:1: attempt to index a nil value"))' \
		|| fail "$(records | jq -c '[.event_name, .severity_text, .body]')"
}

# The exporter settings as the OTLP exporter specification words them.
# Refused at start, naming the variable: a protocol reflexd does not speak,
# a header that is not a valid HTTP header (CR/LF, raw or percent-encoded,
# would inject one of the user's choosing). Taken: TIMEOUT=0 (no limit: a
# collector slower than the 10 s default is waited for, not retried),
# compression in any case.
test_exporter_settings_per_spec() {
	quiet_rule
	lf='
'
	refused_at_start "OTEL_EXPORTER_OTLP_PROTOCOL=grpc|OTEL_EXPORTER_OTLP_PROTOCOL: protocol 'grpc' is not supported: reflexd exports OTLP/HTTP (http/protobuf or http/json" \
		   "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=grpc|OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: protocol 'grpc' is not supported" \
		   "OTEL_EXPORTER_OTLP_PROTOCOL=thrift|OTEL_EXPORTER_OTLP_PROTOCOL: protocol 'thrift' is not grpc, http/protobuf or http/json" \
		   "OTEL_EXPORTER_OTLP_TIMEOUT=-1|OTEL_EXPORTER_OTLP_TIMEOUT: timeout '-1' is not a number of milliseconds (0: no limit" \
		   "OTEL_EXPORTER_OTLP_HEADERS=x-test=a%0D%0AX-Injected: 1|OTEL_EXPORTER_OTLP_HEADERS: the value of header 'x-test' has a control character (0x0d): refused" \
		   "OTEL_EXPORTER_OTLP_LOGS_HEADERS=x-test=a%0AX-Injected: 1|OTEL_EXPORTER_OTLP_LOGS_HEADERS: the value of header 'x-test' has a control character (0x0a)" \
		   "OTEL_EXPORTER_OTLP_HEADERS=x-test=a${lf}X-Injected: 1|OTEL_EXPORTER_OTLP_HEADERS: the value of header 'x-test' has a control character (0x0a)" \
		   "OTEL_EXPORTER_OTLP_HEADERS=x-test=a%00b|OTEL_EXPORTER_OTLP_HEADERS: the value of 'x-test' decodes to a NUL byte (%00)" \
		   "OTEL_EXPORTER_OTLP_HEADERS=x test=1|OTEL_EXPORTER_OTLP_HEADERS: header name 'x test' has a character HTTP does not allow in a name (0x20)" \
		   "OTEL_EXPORTER_OTLP_HEADERS=x:y=1|OTEL_EXPORTER_OTLP_HEADERS: header name 'x:y' has a character HTTP does not allow"
	# --otlp-headers goes through the same check
	set +e
	out=$("$REFLEXD" simulate --otlp --otlp-endpoint "http://127.0.0.1:$PORT" --otlp-headers 'x-test=a%0d%0ab: c' \
		--trace rules/deadlock.test.trace --rules rules/ 2>&1)
	s=$?
	set -e
	[ "$s" = 2 ] && echo "$out" | grep -qF -- "--otlp-headers: the value of header 'x-test' has a control character (0x0d)" \
		|| fail "--otlp-headers: $s $out"
	# the collector takes 11 s to answer: more than the 10 s default
	receiver --schedule 'sleep:11'
	set +e
	out=$(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$PORT OTEL_EXPORTER_OTLP_TIMEOUT=0 OTEL_EXPORTER_OTLP_COMPRESSION=GZIP \
		OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/protobuf \
		OTEL_EXPORTER_OTLP_HEADERS='x-test=tab%09and%20space' \
		"$REFLEXD" simulate --otlp --json --trace rules/deadlock.test.trace --rules rules/ 2>"$T/sim.err")
	s=$?
	set -e
	n=$(echo "$out" | jq -s '[.[] | select(.id or .verify_of)] | length')
	[ "$s" = 0 ] && [ "$n" -gt 0 ] || fail "simulate: $s $(cat "$T/sim.err")"
	[ "$(wc -l < "$T/rx/requests.jsonl")" = 1 ] || fail "retried: $(cat "$T/rx/requests.jsonl") $(cat "$T/sim.err")"
	jq -e ".status == 200 and .encoding == \"gzip\" and .x_test == \"tab\tand space\" and (.records | length) == $n
		and ([.header_names[] | select(startswith(\"x-\"))] == [\"x-test\"])" "$T/rx/requests.jsonl" >/dev/null \
		|| fail "request: $(head -c 600 "$T/rx/requests.jsonl")"
	grep -q "simulate: $n records exported .* 0 not sent" "$T/sim.err" || fail "$(cat "$T/sim.err")"
	# --otlp-compression too is case-insensitive
	"$REFLEXD" simulate --otlp --otlp-endpoint "http://127.0.0.1:$PORT" --otlp-compression Gzip \
		--trace rules/deadlock.test.trace --rules rules/ > /dev/null 2>"$T/sim.err" || fail "$(cat "$T/sim.err")"
	[ "$(jq -s -c '[.[].encoding]' "$T/rx/requests.jsonl")" = '["gzip","gzip"]' ] || fail "$(cat "$T/rx/requests.jsonl")"
}

# http/json: the same messages in OTLP's JSON encoding, read by Google's
# protobuf JSON parser (strict) and checked for OTLP's rules (camelCase
# keys, int64 as strings); the records equal the protobuf export's of the
# same replay (bar the random decision ids), and a JSON partial success is
# read.
test_http_json_export() {
	sim_json() {
		"$REFLEXD" simulate --otlp --json --otlp-endpoint "http://127.0.0.1:$PORT" \
			--trace rules/deadlock.test.trace --rules rules/ 2>"$T/sim.err"
	}
	receiver
	sim_json > /dev/null || fail "$(cat "$T/sim.err")"
	records | jq -c 'del(.attributes["reflex.decision.id"], .request)' > "$T/protobuf.jsonl"
	receiver_stop
	receiver --schedule 'partial:1'
	set +e
	OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/json OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_COMPRESSION=gzip \
		sim_json > /dev/null
	s=$?
	set -e
	[ "$s" = 1 ] && grep -q 'the collector rejected 1 of [0-9]* records: test rejects 1' "$T/sim.err" \
		|| fail "partial success: $s $(cat "$T/sim.err")"
	jq -e '.content_type == "application/json" and .encoding == "gzip" and .json_problems == []
		and (.decode_error | not) and .status == 200' "$T/rx/requests.jsonl" >/dev/null \
		|| fail "request: $(head -c 800 "$T/rx/requests.jsonl")"
	records | jq -c 'del(.attributes["reflex.decision.id"], .request)' > "$T/json.jsonl"
	[ -s "$T/json.jsonl" ] && cmp -s "$T/protobuf.jsonl" "$T/json.jsonl" \
		|| fail "json and protobuf differ: $(diff "$T/protobuf.jsonl" "$T/json.jsonl" | head -5)"
}

# simulate exports every record on the trace's clock: a verification as
# well as its decision, observed times too; and the target's argv[0] and
# cgroup from the trace under their convention names.
test_simulate_records_on_trace_clock() {
	cat > "$T/clock.trace" <<'TRACE'
reflexd-trace 1 start=1700000000
0.5 raise 1 deadlock pid=4242 start=100 comm=worker exe=/usr/bin/worker command=/opt/bin/worker-main cgroup=/kubepods/pod1/c1 summary="lock cycle" evidence={}
4.0 clear 1
30 end
TRACE
	mkdir -p "$T/simrules"
	echo 'rule "sim-kill" { when = deadlock { }, where = { comm = "worker" }, hold = "1s", act = signal { "SIGKILL" }, verify = { within = "10s" } }' \
		> "$T/simrules/k.lua"
	receiver
	out=$(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$PORT "$REFLEXD" simulate --otlp --json --trace "$T/clock.trace" \
		--rules "$T/simrules" 2>"$T/sim.err") || fail "$(cat "$T/sim.err")"
	vtime=$(echo "$out" | jq -r 'select(.verify_of) | .time_unix_nano')
	[ -n "$vtime" ] || fail "no verification: $out"
	[ "$(records | wc -l)" = 2 ] || fail "records: $(records | jq -c .)"
	records | jq -s -e 'all(.[]; .time_unix_nano >= 1700000000000000000 and .time_unix_nano <= 1700000030000000000
		and .observed_time_unix_nano >= .time_unix_nano and .observed_time_unix_nano <= 1700000030000000000)' >/dev/null \
		|| fail "not the trace clock: $(records | jq -c '[.event_name, .time_unix_nano, .observed_time_unix_nano]')"
	records | holds ".event_name == \"reflex.verification\" and .time_unix_nano == $vtime" \
		|| fail "verification at $vtime: $(records | jq -c '[.event_name, .time_unix_nano]')"
	records | holds '.event_name == "reflex.decision" and .time_unix_nano == 1700000001500000000' \
		|| fail "decision: $(records | jq -c '[.event_name, .time_unix_nano]')"
	records | jq -s -e 'all(.[]; .attributes["process.command"] == "/opt/bin/worker-main"
		and .attributes["process.linux.cgroup"] == "0::/kubepods/pod1/c1" and .attributes["process.executable.name"] == "worker")' \
		>/dev/null || fail "attributes: $(records | jq -c .attributes)"
}

# Export volume controls: a fleet's dry-run and suppressed records are
# capped per second (by their own time) and cut below a severity floor;
# acted ones always go; the journal keeps everything.
test_volume_controls() {
	PORT=47950
	mkdir -p "$T/vol"
	cat > "$T/vol/vol.lua" <<'R'
rule "vol-dry" { when = deadlock { }, where = { comm = "vol" }, hold = "1s", dry_run = true,
  act = signal { "SIGKILL" } }
rule "vol-act" { when = deadlock { }, where = { comm = "volact" }, hold = "1s",
  act = signal { "SIGKILL" } }
R
	{
		echo "reflexd-trace 1 start=1795300000"
		for i in $(seq 1 12); do echo "0.5 raise $i deadlock pid=$((5000 + i)) start=1 comm=vol"; done
		echo "0.5 raise 99 deadlock pid=6001 start=1 comm=volact"
	} > "$T/vol/trace"
	sim() {
		receiver_stop
		receiver $RX_ARGS
		OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$PORT "$REFLEXD" simulate --otlp --json \
			--trace "$T/vol/trace" --rules "$T/vol" "$@" > "$T/vol/out" 2> "$T/sim.err"
	}
	outcome() {
		records | jq -s "[.[] | select(.event_name == \"reflex.decision\" and .attributes[\"reflex.outcome\"] == \"$1\")] | length"
	}
	sim
	quiet=$(jq -s '[.[] | select(.outcome == "dry-run" or .outcome == "suppressed")] | length' "$T/vol/out")
	[ "$quiet" -ge 12 ] && [ "$(outcome dry-run)" -ge 1 ] || fail "uncapped: $quiet decisions, $(outcome dry-run) dry-run records"
	sim --otlp-rate-max 3
	[ "$(( $(outcome dry-run) + $(outcome suppressed) ))" = 3 ] && [ "$(outcome acted)" = 1 ] ||
		fail "rate 3: $(outcome dry-run) dry-run, $(outcome suppressed) suppressed, $(outcome acted) acted"
	grep -q ", $((quiet - 3)) withheld$" "$T/sim.err" || fail "$(cat "$T/sim.err")"
	# a retry sends the records the cap let through the first time, and
	# the withheld ones are counted once
	RX_ARGS="--schedule 503" sim --otlp-rate-max 3 --otlp-retry-max 1s
	jq -s -e '[.[].status] == [503, 200] and .[0].records == .[1].records' "$T/rx/requests.jsonl" >/dev/null ||
		fail "retry: $(jq -c '[.status, (.records | length)]' "$T/rx/requests.jsonl")"
	[ "$(( $(outcome dry-run) + $(outcome suppressed) ))" = 3 ] && [ "$(outcome acted)" = 1 ] ||
		fail "rate 3 after a retry: $(outcome dry-run) dry-run, $(outcome suppressed) suppressed, $(outcome acted) acted"
	grep -q ", $((quiet - 3)) withheld$" "$T/sim.err" || fail "after a retry: $(cat "$T/sim.err")"
	sim --otlp-severity-floor WARN
	[ "$(( $(outcome dry-run) + $(outcome suppressed) ))" = 0 ] && [ "$(outcome acted)" = 1 ] ||
		fail "floor WARN: $(records | jq -c '.attributes["reflex.outcome"]' | sort | uniq -c)"
	grep -q ", $quiet withheld$" "$T/sim.err" || fail "$(cat "$T/sim.err")"
	out=$("$REFLEXD" simulate --otlp --otlp-endpoint http://127.0.0.1:1 --otlp-severity-floor LOUD \
		--trace "$T/vol/trace" --rules "$T/vol" 2>&1) && fail "a bad floor passed"
	echo "$out" | grep -q -- "--otlp-severity-floor: 'LOUD' is not INFO, WARN or ERROR" || fail "$out"
}

test_audit_filters_show_and_summary() {
	quiet_rule
	start_daemon --rules "$T/rules" --sensors deadlock
	stop_daemon
	# a journal with known content: the daemon made the schema
	now=$(( $(date +%s) * 1000000000 ))
	h=$(( 3600 * 1000000000 ))
	sqlite3 "$T/journal.db" <<SQL
INSERT INTO decisions (id, time_ns, mode, host, rule, rule_file, rule_hash, kind, held_ns, pid, tid, start_time,
  comm, exe, cgroup, summary, evidence, action, params, outcome, detail, completed_ns, verify, rung, explain,
  container_id, pod_uid, pod, namespace, container) VALUES
 ('00000000-0000-7000-8000-00000000000a', $((now - 3 * h)), 'live', 'h', 'old', 'r.lua', 'aa', 'deadlock', 0, 10, 0, 1,
  'w', '/bin/w', '/', 's', '{}', 'signal', '{"signal":"SIGKILL"}', 'acted', 'killed', 0, '', 0, '[]', '', '', '', '', ''),
 ('00000000-0000-7000-8000-00000000000b', $((now - h)), 'live', 'h', 'web', 'r.lua', 'bb', 'deadlock', 0, 20, 0, 5,
  'api', '/bin/api', '/kubepods/x', 'lock cycle 1→2→1', '{"threads":2}', 'signal', '{"signal":"SIGABRT"}', 'acted', 'sent SIGABRT', 0,
  'not cleared within 10s', 0, '[{"rule":"web","why":"decides"},{"rule":"other","why":"where comm does not match"}]',
  'c0ffee', 'uid-1', 'api-7f', 'shop', 'api'),
 ('00000000-0000-7000-8000-00000000000c', $((now - h + 1000)), 'live', 'h', 'web', 'r.lua', 'bb', 'deadlock', 0, 20, 0, 5,
  'api', '/bin/api', '/kubepods/x', 'lock cycle 1→2→1', '{"threads":2}', 'signal', '{"signal":"SIGKILL"}', 'acted', 'killed', 0,
  'cleared after 1.0s', 1, '[]', 'c0ffee', 'uid-1', 'api-7f', 'shop', 'api'),
 ('00000000-0000-7000-8000-00000000000d', $((now - h / 2)), 'dry-run', 'h', 'web', 'r.lua', 'bb', 'stall', 0, 30, 0, 9,
  'db', '/bin/db', '/kubepods/y', 's', '{}', 'signal', '{"signal":"SIGKILL"}', 'dry-run', 'would have', 0, '', 0, '[]',
  '', '', 'db-0', 'data', 'db'),
 ('00000000-0000-7000-8000-00000000000e', $((now - h / 4)), 'dry-run', 'h', 'web', 'r.lua', 'bb', 'stall', 0, 31, 0, 9,
  'db', '/bin/db', '/kubepods/y', 's', '{}', 'signal', '{"signal":"SIGKILL"}', 'suppressed', 'cooldown', 0, '', 0, '[]',
  '', '', 'db-0', 'data', 'db');
SQL
	[ "$(audit --since 2h | wc -l)" = 4 ] || fail "--since"
	[ "$(audit --until 2h | jq -r .rule)" = old ] || fail "--until"
	[ "$(audit --pod api-7f | wc -l)" = 2 ] || fail "--pod"
	[ "$(audit --namespace data | jq -r .pid | tr '\n' ' ')" = "30 31 " ] || fail "--namespace"
	[ "$(audit --mode dry-run | wc -l)" = 2 ] || fail "--mode"
	[ "$(audit --kind stall --outcome suppressed | jq -r .pid)" = 31 ] || fail "--kind --outcome"
	[ "$(audit --action signal --rule web --comm 'a*' | wc -l)" = 2 ] || fail "--action --rule --comm"
	audit --pod api-7f | holds '.pod == "api-7f" and .namespace == "shop" and .pod_uid == "uid-1" and .container == "api" and .container_id == "c0ffee"' \
		|| fail "json pod fields"
	chain=$("$REFLEXD" audit --journal "$T/journal.db" show 0000000b)
	for line in "target    pid 20 (tid 0) api" "what      deadlock, held 0ms: lock cycle 1→2→1" "          threads: 2" \
		    "pod shop/api-7f (uid uid-1), container api (c0ffee)" 'rule      web (r.lua, sha256 bb)' \
		    'why       web: decides' '          other: where comm does not match' 'action    signal' '          signal: SIGABRT' \
		    'outcome   acted: sent SIGABRT' 'verified  not cleared within 10s' \
		    'escalated' '00000000-0000-7000-8000-00000000000c: signal (rung 1) acted: killed; verified: cleared after 1.0s'; do
		echo "$chain" | grep -qF -- "$line" || fail "show lacks '$line': $chain"
	done
	sum=$("$REFLEXD" audit --journal "$T/journal.db" summary --since 2h --json)
	echo "$sum" | holds '.rule == "web" and .mode == "live" and .acted == 2 and .total == 2' || fail "$sum"
	echo "$sum" | holds '.rule == "web" and .mode == "dry-run" and ."dry-run" == 1 and .suppressed == 1 and .total == 2' || fail "$sum"
	echo "$sum" | holds '.rule == "old"' && fail "summary ignores --since: $sum"
	table=$("$REFLEXD" audit --journal "$T/journal.db" summary)
	echo "$table" | head -1 | grep -Eq '^RULE +MODE +acted +failed +dry-run +suppressed +unknown +pending +total$' || fail "$table"
	echo "$table" | grep -Eq '^web +dry-run +0 +0 +1 +1 +0 +0 +2$' || fail "$table"
	"$REFLEXD" audit --journal "$T/journal.db" --pod api-7f | grep -q 'acted      shop/api-7f: killed' || fail "table pod"
	set +e
	out=$("$REFLEXD" audit --journal "$T/journal.db" --mode maybe 2>&1); s=$?
	set -e
	[ "$s" = 2 ] && echo "$out" | grep -q "unknown mode 'maybe'" || fail "$out"
}

run_tests
