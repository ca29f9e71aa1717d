# TCP retransmits on the running kernel: a lossy loopback link (iptables'
# statistic match drops a share of the packets to one port), real senders,
# and reflexd attributing the retransmits to the process that sent them and
# the peer they went to. Ports 47110-47119; workloads named rt-*.
. "$(dirname "$0")/lib.sh"

# Drops on INPUT, not OUTPUT: a packet netfilter drops on the way out is a
# send error to TCP, which sends it again as new data (no retransmit); a
# packet lost after it left is what a lossy link looks like.
drop() { # drop [-6] --dport|--sport PORT PROBABILITY
	local tool=iptables rule
	if [ "$1" = -6 ]; then
		tool=ip6tables
		shift
	fi
	undrop
	rule="INPUT -i lo -p tcp $1 $2 -m statistic --mode random --probability $3 -j DROP"
	$tool -w -I $rule || { fail "$tool cannot add the statistic rule ($rule)"; return 1; }
}
# Removes every drop rule on this file's ports, whoever added it: a test
# that failed half-way (in its own subshell) leaves nothing behind.
undrop() {
	local t r
	for t in iptables ip6tables; do
		$t -w -S INPUT | grep -E -- '--[sd]port 4711[0-9] .*statistic' | sed 's/^-A/-D/' |
			while read -r r; do
				$t -w $r
			done
	done
}
trap 'undrop; cleanup' EXIT
trap 'exit 1' INT TERM

# the window is the default (10 s); only the first raise is fast
RULE='rule "rt-retrans" { when = retransmits { rate = "2/s" }, where = { comm = "rt-*" }, hold = "1s",
  act = signal { "SIGTERM" }, dry_run = true }'

# start_tcp NAME ARGS...: tcp_stream ARGS; sets NAME_PID and NAME_PORTS
start_tcp() {
	v=$1
	shift
	start_wl tcp_stream "$@" --seconds 60
	eval "${v}_PID=$WL_PID ${v}_PORTS=$(field ports) ${v}_SERVER=$(field server_pid)"
}

# conditions TRACE PID: the conditions raised for PID in a recorded trace
conditions() {
	grep -E " raise [0-9]+ retransmits pid=$2 " "$1" || true
}

# ids FILE PID: the distinct conditions about PID (updates repeat the id).
ids() {
	conditions "$1" "$2" | awk '{print $3}' | sort -u
}

test_lossy_link_attributed_to_the_sender_and_peer() {
	drop --dport 47110 0.1
	write_rule rt <<< "$RULE"
	start_daemon --rules rules/ --rules "$T/rules" --dry-run --record "$T/rec.trace"
	start_tcp SINK listen 47110 --comm rt-sink
	start_tcp CLEANSINK listen 47111 --comm rt-cleansink
	start_tcp LOSSY connect 47110 --send --comm rt-lossy
	start_tcp CLEAN connect 47111 --send --comm rt-clean
	wait_record ".pid == $LOSSY_PID" 10
	rec=$(audit --pid "$LOSSY_PID" | head -1)
	echo "$rec" | jq -c .evidence
	echo "$rec" | holds ".kind == \"retransmits\" and .rule == \"rt-retrans\" and .comm == \"rt-lossy\"" \
		|| fail "kind, rule, comm: $rec"
	echo "$rec" | holds ".evidence.flows[0].remote == \"127.0.0.1:47110\" and
		.evidence.flows[0].local == \"127.0.0.1:$LOSSY_PORTS\"" || fail "wrong flow: $rec"
	echo "$rec" | holds '.evidence.peers[0].addr == "127.0.0.1" and .evidence.peers[0].flows == 1' \
		|| fail "wrong peer: $rec"
	# 10% of the packets dropped: retransmits are a few % to a few 10s of
	# % of the segments, and several a second
	echo "$rec" | holds '.evidence.rate >= 2 and .evidence.ratio >= 0.01 and .evidence.ratio <= 0.6' \
		|| fail "rate or ratio out of range: $(echo "$rec" | jq -c .evidence)"
	grep -q "retransmits in pid $LOSSY_PID (rt-lossy): .* most to 127.0.0.1:47110" "$LOG" \
		|| fail "no log line"
	# the clean sender and both receivers, watched for a whole window
	sleep 11
	for p in $CLEAN_PID $SINK_PID $CLEANSINK_PID; do
		[ -z "$(conditions "$T/rec.trace" "$p")" ] || fail "pid $p has a condition: $(conditions "$T/rec.trace" "$p")"
		[ -z "$(audit --pid "$p")" ] || fail "pid $p has a decision"
	done
	# one condition all along: steady loss does not flap
	[ "$(ids "$T/rec.trace" "$LOSSY_PID" | wc -l)" = 1 ] || fail "flapping: $(grep -v '^#' "$T/rec.trace")"
	# the condition goes with the process, at once (not a window later)
	id=$(conditions "$T/rec.trace" "$LOSSY_PID" | awk '{print $3}')
	kill -KILL "$LOSSY_PID"
	wait_for "$T/rec.trace" " clear $id\$" 2
	stop_daemon
	undrop
}

# Out of the box: the shipped rules in dry-run report a sender behind a
# lossy link once it has lasted the rule's hold (30 s).
test_shipped_rule_reports_in_dry_run() {
	drop --dport 47116 0.1
	start_daemon --rules rules/ --dry-run
	start_tcp SINK listen 47116 --comm rt-sink
	start_tcp LOSSY connect 47116 --send --comm rt-shipped
	wait_record ".pid == $LOSSY_PID" 45
	audit --pid "$LOSSY_PID" | holds '.rule == "retransmits-report" and .outcome == "dry-run" and
		.held_ms >= 30000' || fail "$(audit --pid "$LOSSY_PID")"
	alive "$LOSSY_PID" || fail "dry-run signalled the process"
	stop_daemon
	undrop
}

# A server's listening socket is created by one process and its
# connections accepted (in softirq) and served by a forked child: the
# child, which sends, is the one reported, with the client as its peer.
test_accepted_socket_attributed_to_the_acceptor() {
	drop --sport 47112 0.1
	write_rule rt <<< "$RULE"
	start_daemon --rules "$T/rules" --record "$T/rec.trace"
	start_tcp SERVER listen 47112 --send --fork-accept rt-acceptor --comm rt-listener
	start_tcp READER connect 47112 --comm rt-reader
	wait_record ".pid == $SERVER_SERVER" 10
	rec=$(audit --pid "$SERVER_SERVER" | head -1)
	echo "$rec" | holds ".comm == \"rt-acceptor\" and .evidence.flows[0].local == \"127.0.0.1:47112\" and
		.evidence.flows[0].remote == \"127.0.0.1:$READER_PORTS\"" || fail "wrong attribution: $rec"
	for p in $SERVER_PID $READER_PID; do
		[ -z "$(conditions "$T/rec.trace" "$p")" ] || fail "pid $p has a condition"
	done
	[ "$(ids "$T/rec.trace" "$SERVER_SERVER" | wc -l)" = 1 ] || fail "flapping: $(grep -v '^#' "$T/rec.trace")"
	! grep -q ' clear ' "$T/rec.trace" || fail "cleared while still losing packets: $(grep -v '^#' "$T/rec.trace")"
	stop_daemon
	undrop
}

# A process that execs is another program: its condition ends at once (not
# a window later); if its old sockets go on retransmitting, a new one names
# the new program.
test_exec_ends_the_condition() {
	drop --dport 47115 0.1
	write_rule rt <<< "$RULE"
	start_daemon --rules "$T/rules" --record "$T/rec.trace"
	start_tcp SINK listen 47115 --comm rt-sink
	start_tcp LOSSY connect 47115 --send --exec-after 4 --comm rt-execer
	wait_for "$T/rec.trace" " raise [0-9]+ retransmits pid=$LOSSY_PID .*comm=rt-execer" 4
	id=$(conditions "$T/rec.trace" "$LOSSY_PID" | awk '{print $3}')
	end=$(( $(date +%s) + 6 ))
	until [ "$(cat /proc/"$LOSSY_PID"/comm 2>/dev/null)" = sleep ]; do
		[ "$(date +%s)" -le "$end" ] || { fail "the workload did not exec"; return 1; }
		sleep 0.05
	done
	wait_for "$T/rec.trace" " clear $id\$" 2
	! conditions "$T/rec.trace" "$LOSSY_PID" | grep -v "comm=rt-execer" | grep -qv "comm=sleep" ||
		fail "a condition under another name: $(conditions "$T/rec.trace" "$LOSSY_PID")"
	stop_daemon
	undrop
}

test_ipv6_flow() {
	drop -6 --dport 47114 0.1
	# hold 3 s: by then both flows have lost packets
	write_rule rt <<< "${RULE/\"1s\"/\"3s\"}"
	start_daemon --rules "$T/rules"
	start_tcp SINK listen 47114 --ipv6 --conns 2 --comm rt-sink6
	start_tcp LOSSY connect 47114 --ipv6 --send --conns 2 --comm rt-lossy6
	wait_record ".pid == $LOSSY_PID" 12
	rec=$(audit --pid "$LOSSY_PID" | head -1)
	echo "$rec" | holds '.evidence.flows | length == 2' || fail "not two flows: $rec"
	for port in ${LOSSY_PORTS//,/ }; do
		echo "$rec" | holds "any(.evidence.flows[]; .remote == \"[::1]:47114\" and .local == \"[::1]:$port\")" \
			|| fail "no flow from port $port: $rec"
	done
	echo "$rec" | holds '.evidence.peers == [.evidence.peers[0]] and .evidence.peers[0].addr == "::1" and
		.evidence.peers[0].flows == 2 and
		.evidence.peers[0].retransmits == ([.evidence.flows[].retransmits] | add)' \
		|| fail "peer not the sum of its flows: $rec"
	stop_daemon
	undrop
}

# reflexd (re)started while a process is already losing packets on a
# socket it opened before: the process holding the socket is found in
# /proc when the flow first retransmits.
test_sockets_older_than_reflexd() {
	drop --dport 47117 0.1
	write_rule rt <<< "$RULE"
	start_tcp SINK listen 47117 --comm rt-sink
	start_tcp LOSSY connect 47117 --send --comm rt-older
	sleep 1
	start_daemon --rules "$T/rules"
	wait_record ".pid == $LOSSY_PID" 10
	audit --pid "$LOSSY_PID" | holds ".evidence.flows[0].local == \"127.0.0.1:$LOSSY_PORTS\"" \
		|| fail "$(audit --pid "$LOSSY_PID")"
	stop_daemon
	undrop
}

# Every map is bounded; what does not fit is counted and said.
test_full_flow_table_is_counted_and_logged() {
	drop --dport 47113 0.1
	write_rule rt <<< "$RULE"
	start_daemon --rules "$T/rules" --retrans-flows 1 --metrics 127.0.0.1:47199
	start_tcp SINK listen 47113 --conns 3 --comm rt-sink
	start_tcp LOSSY connect 47113 --send --conns 3 --comm rt-many
	wait_for "$LOG" "retransmits: [0-9]+ retransmits not counted: flow table full \\(--retrans-flows\\) \\([0-9]+ since start\\)" 10
	# and visible where monitoring looks
	curl -sf http://127.0.0.1:47199/metrics | grep -Eq '^reflexd_sensor_drops_total\{sensor="retransmits"\} [1-9]' \
		|| fail "no drops in /metrics: $(curl -sf http://127.0.0.1:47199/metrics | grep drops)"
	# the one flow that fits is still reported
	wait_record ".pid == $LOSSY_PID" 10
	[ "$(audit --pid "$LOSSY_PID" | jq '.evidence.flows | length')" = 1 ] || fail "more than one flow"
	stop_daemon
	undrop
}

test_bad_options_are_refused() {
	for opt in "--retrans-window 500ms" "--retrans-min 0" "--retrans-flows many"; do
		out=$("$REFLEXD" run --rules rules/ $opt 2>&1) && fail "accepted $opt"
		echo "$out" | grep -q "bad value '${opt#* }' for ${opt% *}" || fail "$opt: $out"
	done
}

run_tests
