# reflexd audit show and audit report --html: an incident as a person reads
# it, and the report opened in a real headless browser (Debian's chromium):
# every decision present, the counts right, one plot mark per decision, no
# console error (the page's Content-Security-Policy forbids every fetch, so
# anything reaching for the network is logged as one), hostile names inert.
. "$(dirname "$0")/lib.sh"

SIM_RULES=tests/report/rules.lua
SIM_TRACE=tests/report/incident.trace

# CI installs chromium with deploy/deps.sh; a machine without it gets it
# here, never a skipped test
if ! command -v chromium > /dev/null; then
	if [ "$(id -u)" = 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium > /dev/null ||
			{ echo "not ok - chromium: cannot install it (deploy/deps.sh)"; exit 1; }
	else
		echo "not ok - chromium: missing; run deploy/deps.sh as root"; exit 1
	fi
fi

# incident_journal: $T/incident.db from the incident trace, once
incident_journal() {
	[ -s "$T/incident.db" ] && return 0
	"$REFLEXD" simulate --trace "$SIM_TRACE" --rules "$SIM_RULES" --journal-out "$T/incident.db" \
		> "$T/incident.sim" || fail "simulate: $(cat "$T/incident.sim")"
}

# sql DB QUERY
sql() {
	sqlite3 "$1" "$2"
}

# browse HTML NAME: the page's DOM in $T/NAME.dom, the browser's log in
# $T/NAME.log; fails on any console message (the page has no script)
browse() {
	timeout 120 chromium --headless=new --no-sandbox --disable-gpu --user-data-dir="$T/chromium" \
		--enable-logging=stderr --v=0 --dump-dom "file://$1" > "$T/$2.dom" 2> "$T/$2.log" ||
		fail "chromium: $(tail -3 "$T/$2.log")"
	[ -s "$T/$2.dom" ] || fail "chromium dumped no DOM: $(tail -3 "$T/$2.log")"
	! grep ':CONSOLE' "$T/$2.log" || fail "the browser logged console messages"
}

# marks DOM SVG_ID: how many decision marks that plot holds, parsed as HTML
marks() {
	python3 - "$1" "$2" <<'P'
import sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(s):
        super().__init__(); s.svg = None; s.n = 0
    def handle_starttag(s, tag, a):
        a = dict(a)
        if tag == "svg": s.svg = a.get("id")
        if tag == "circle" and s.svg == sys.argv[2] and "mark" in (a.get("class") or "").split(): s.n += 1
    def handle_endtag(s, tag):
        if tag == "svg": s.svg = None
p = P(); p.feed(open(sys.argv[1], encoding="utf-8").read()); print(p.n)
P
}

# same_counts DB DOM: the page's outcome totals are the journal's
same_counts() {
	for o in acted failed dry-run suppressed unknown pending; do
		want=$(sql "$1" "SELECT count(*) FROM decisions WHERE outcome = '$o'")
		got=$(grep -o "id=\"total-$o\">[0-9]*<" "$2" | grep -o '[0-9]*')
		[ "$got" = "$want" ] || fail "$o: the page says $got, the journal $want"
	done
	want=$(sql "$1" "SELECT count(*) FROM decisions")
	grep -q "id=\"total\">$want<" "$2" || fail "the total is not $want"
}

# every_id DB DOM: each decision has its section, and no other
every_id() {
	sql "$1" "SELECT id FROM decisions ORDER BY id" > "$T/want.ids"
	grep -o '<details class="decision" id="d-[^"]*"' "$2" | sed 's/.*id="d-//; s/"$//' | sort > "$T/got.ids"
	cmp -s "$T/want.ids" "$T/got.ids" || fail "sections differ from the journal: $(diff "$T/want.ids" "$T/got.ids" | head -5)"
}

test_show_reads_an_incident() {
	incident_journal || return 1
	id=$(sql "$T/incident.db" "SELECT id FROM decisions WHERE rule = 'deadlock-ladder' AND rung = 0")
	out=$("$REFLEXD" audit --journal "$T/incident.db" show "${id%-*}") || fail "show by prefix failed"
	for want in "decision  $id" '^SEEN$' '^DECIDED$' '^DONE$' '^CHAIN$' \
		'what      deadlock, held 0ms: transfer_funds\(\) holds account_lock' \
		'^ +- tid: 3534$' '^ +lock: ledger_lock$' '^ +transfer_funds\+0x2a \(bank.c:42\)$' \
		'blocked_ms: 2300 \(2.3s\)' 'why       deadlock-ladder: decides' \
		'^ +signal: SIGQUIT$' 'verified  not cleared within 2.0s' \
		'^escalated .* signal \(rung 1\) acted: escalation 1 of 1'; do
		echo "$out" | grep -Eq -- "$want" || fail "show: no /$want/ in:
$out"
	done
	# the undo names the shift it undoes
	shift_id=$(sql "$T/incident.db" "SELECT id FROM decisions WHERE action = 'traffic.shift'")
	undo_id=$(sql "$T/incident.db" "SELECT id FROM decisions WHERE action = 'traffic.restore'")
	"$REFLEXD" audit --journal "$T/incident.db" show "$undo_id" | grep -q "^undoes    $shift_id$" ||
		fail "the restore does not name the shift it undoes"
	# a leak's time to OOM, and its sites, read as such
	leak=$("$REFLEXD" audit --journal "$T/incident.db" show \
		"$(sql "$T/incident.db" "SELECT id FROM decisions WHERE pid = 5000")")
	echo "$leak" | grep -q 'eta_ms: 95000 (1.6m)' || fail "no eta in: $leak"
	echo "$leak" | grep -q 'site: cache_put+0x33' || fail "no site in: $leak"
}

test_show_hostile_names_stay_inert() {
	incident_journal || return 1
	id=$(sql "$T/incident.db" "SELECT id FROM decisions WHERE pid = 6666")
	"$REFLEXD" audit --journal "$T/incident.db" show "$id" > "$T/hostile.txt" || fail "show failed"
	! LC_ALL=C grep -q "$(printf '[\001-\010\013-\037\177]')" "$T/hostile.txt" || fail "a control character reached the terminal"
	python3 -c 'import sys; open(sys.argv[1], encoding="utf-8", errors="strict").read()' "$T/hostile.txt" ||
		fail "show printed invalid UTF-8"
	grep -qF 'target    pid 6666 (tid 0) <script>x\xff\x1b' "$T/hostile.txt" || fail "the name is not shown escaped"
	grep -qF '\x1b[2J' "$T/hostile.txt" || fail "the evidence's ESC is not shown escaped"
}

test_show_unknown_or_ambiguous_id() {
	incident_journal || return 1
	set +e
	out=$("$REFLEXD" audit --journal "$T/incident.db" show ffffffff 2>&1); st=$?
	set -e
	[ "$st" = 1 ] || fail "unknown id: exit $st"
	[ "$out" = "reflexd: audit show: no decision ffffffff" ] || fail "unknown id: '$out'"
	prefix=$(sql "$T/incident.db" "SELECT substr(id, 1, 4) FROM decisions LIMIT 1")
	set +e
	out=$("$REFLEXD" audit --journal "$T/incident.db" show "$prefix" 2>&1); st=$?
	set -e
	[ "$st" = 1 ] || fail "ambiguous id: exit $st"
	echo "$out" | grep -q "^reflexd: audit show: 7 decisions match $prefix; give more of the id:" ||
		fail "ambiguous id: '$out'"
	# an id with LIKE's wildcards, or none, is no id: it matched any
	# decision (one in a journal of one, shown as if it were the one)
	sql "$T/incident.db" "DELETE FROM decisions WHERE rowid > (SELECT min(rowid) FROM decisions)" > /dev/null
	for id in % _ ''; do
		set +e
		out=$("$REFLEXD" audit --journal "$T/incident.db" show "$id" 2>&1); st=$?
		set -e
		[ "$st" = 2 ] || fail "id '$id': exit $st: $out"
		[ "$out" = "reflexd: audit show: '$id' is not a decision id (hex digits and '-')" ] || fail "id '$id': $out"
	done
	rm -f "$T/incident.db"
}

test_report_in_browser() {
	incident_journal || return 1
	"$REFLEXD" audit --journal "$T/incident.db" report --html "$T/incident.html" || fail "report failed"
	# self-contained: nothing to fetch, no script
	! grep -Eiq '(src|href)="(https?:|//)|<script|<link|url\(' "$T/incident.html" ||
		fail "the page reaches outside itself: $(grep -Eio '(src|href)="(https?:|//)[^"]*|<script|<link|url\(' "$T/incident.html" | head -3)"
	browse "$T/incident.html" incident || return 1
	every_id "$T/incident.db" "$T/incident.dom" || return 1
	same_counts "$T/incident.db" "$T/incident.dom" || return 1
	n=$(sql "$T/incident.db" "SELECT count(*) FROM decisions")
	[ "$(marks "$T/incident.dom" by-rule)" = "$n" ] || fail "by-rule plot: $(marks "$T/incident.dom" by-rule) marks, $n decisions"
	[ "$(marks "$T/incident.dom" by-target)" = "$n" ] || fail "by-target plot: $(marks "$T/incident.dom" by-target) marks"
	# the hostile names are text in the page, never elements
	! grep -Eq '<(script|img)' "$T/incident.dom" || fail "a hostile name became an element"
	grep -qF '&lt;script&gt;x\xff\x1b' "$T/incident.dom" || fail "the hostile comm is not shown escaped"
	grep -qF '&lt;/details&gt;&lt;script&gt;alert(1)&lt;/script&gt;\xfe' "$T/incident.dom" ||
		fail "the hostile summary is not shown escaped"
	# evidence, stacks, the chain
	for want in '<td>ledger_lock</td>' 'transfer_funds+0x2a (bank.c:42)' '95000 <span class="note">(1.6m)</span>' \
		'main.leakyHandler' 'escalated' 'undoes <a href="#d-'; do
		grep -qF -- "$want" "$T/incident.dom" || fail "no '$want' in the page"
	done
	timeout 120 chromium --headless=new --no-sandbox --disable-gpu --user-data-dir="$T/chromium" \
		--hide-scrollbars --window-size=1100,1400 --screenshot="$T/incident.png" \
		"file://$T/incident.html" > /dev/null 2>&1 || fail "no screenshot"
	[ "$(head -c 8 "$T/incident.png" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ] || fail "the screenshot is no PNG"
	[ "$(stat -c %s "$T/incident.png")" -gt 20000 ] || fail "the screenshot is blank"
}

test_report_thousands_of_decisions() {
	sh tests/bench/gen_trace.sh 2100 > "$T/big.trace"
	"$REFLEXD" simulate --trace "$T/big.trace" --rules rules --rules tests/bench/sim_rules.lua \
		--journal-out "$T/big.db" > /dev/null || fail "simulate failed"
	n=$(sql "$T/big.db" "SELECT count(*) FROM decisions")
	[ "$n" -ge 2000 ] || fail "only $n decisions"
	"$REFLEXD" audit --journal "$T/big.db" report --html "$T/big.html" || fail "report failed"
	browse "$T/big.html" big || return 1
	every_id "$T/big.db" "$T/big.dom" || return 1
	same_counts "$T/big.db" "$T/big.dom" || return 1
	[ "$(marks "$T/big.dom" by-rule)" = "$n" ] || fail "by-rule plot: $(marks "$T/big.dom" by-rule) marks, $n decisions"
	[ "$(marks "$T/big.dom" by-target)" = "$n" ] || fail "by-target plot: $(marks "$T/big.dom" by-target) marks"
	# thousands stay readable: groups start collapsed, at most 16 target lanes
	! grep -q '<details class="rule" open' "$T/big.dom" || fail "rule groups start open"
	lanes=$(grep -o '<svg id="by-target".*</svg>' "$T/big.dom" | grep -o 'class="lane"' | wc -l)
	[ "$lanes" -le 16 ] || fail "$lanes target lanes"
	# the audit's filters apply
	"$REFLEXD" audit --journal "$T/big.db" report --rule now-0 --html "$T/one.html" || fail "filtered report failed"
	want=$(sql "$T/big.db" "SELECT count(*) FROM decisions WHERE rule = 'now-0'")
	grep -q "id=\"total\">$want<" "$T/one.html" || fail "--rule now-0: not $want decisions"
	[ "$(grep -c '<details class="rule"' "$T/one.html")" = 1 ] || fail "--rule now-0: other rules shown"
	"$REFLEXD" audit --journal "$T/big.db" report --rule nosuch --html "$T/none.html" || fail "empty report failed"
	grep -q '<b id="count">0</b> decisions\.' "$T/none.html" || fail "empty report: $(grep about "$T/none.html")"
}

test_report_keeps_the_newest() {
	sh tests/bench/gen_trace.sh 10100 > "$T/huge.trace"
	"$REFLEXD" simulate --trace "$T/huge.trace" --rules rules --journal-out "$T/huge.db" > /dev/null ||
		fail "simulate failed"
	n=$(sql "$T/huge.db" "SELECT count(*) FROM decisions")
	[ "$n" -gt 10000 ] || fail "only $n decisions"
	"$REFLEXD" audit --journal "$T/huge.db" report --html "$T/huge.html" || fail "report failed"
	grep -q '<b id="count">10000</b> decisions' "$T/huge.html" || fail "$(grep about "$T/huge.html")"
	grep -q 'More decisions matched: these are the newest' "$T/huge.html" || fail "no word of the rest"
	oldest=$(sql "$T/huge.db" "SELECT id FROM decisions ORDER BY time_ns, id LIMIT 1")
	newest=$(sql "$T/huge.db" "SELECT id FROM decisions ORDER BY time_ns DESC, id DESC LIMIT 1")
	! grep -q "id=\"d-$oldest\"" "$T/huge.html" || fail "the oldest is in"
	grep -q "id=\"d-$newest\"" "$T/huge.html" || fail "the newest is not in"
}

test_report_bad_input() {
	incident_journal || return 1
	set +e
	out=$("$REFLEXD" audit --journal "$T/incident.db" report 2>&1); st=$?
	[ "$st" = 2 ] && [ "$out" = "reflexd: audit report: where to? (--html FILE)" ] || fail "no --html: $st '$out'"
	out=$("$REFLEXD" audit --journal "$T/incident.db" report --html "$T/no/such/dir/r.html" 2>&1); st=$?
	[ "$st" = 1 ] && echo "$out" | grep -q "cannot write $T/no/such/dir/r.html: No such file or directory" ||
		fail "unwritable: $st '$out'"
	out=$("$REFLEXD" audit --journal "$T/absent.db" report --html "$T/r.html" 2>&1); st=$?
	set -e
	[ "$st" = 1 ] && [ ! -e "$T/r.html" ] || fail "absent journal: $st '$out'"
}

# A forged or corrupted journal: a row holding a value reflexd cannot have
# written is never shown changed to fit (pid 2^32 + 1 read as pid 1 once).
# Every reader skips it with one line naming the decision, the column and
# the value; the other rows are all shown; the exit status is 1.
test_forged_rows_are_skipped_and_said() {
	incident_journal || return 1
	id=$(sql "$T/incident.db" "SELECT id FROM decisions WHERE pid = 5000")
	sql "$T/incident.db" "SELECT id FROM decisions WHERE id != '$id' ORDER BY id" > "$T/others.ids"
	[ "$(wc -l < "$T/others.ids")" = 6 ] || fail "the incident has not 7 decisions"
	while IFS='|' read -r set says; do
		cp "$T/incident.db" "$T/forged.db"
		sql "$T/forged.db" "UPDATE decisions SET $set WHERE id = '$id'"
		want="reflexd: audit: journal: decision $id: $says; row skipped"
		for cmd in list --json summary "show $id" "report --html $T/forged.html"; do
			[ "$cmd" = list ] && cmd=
			set +e
			# shellcheck disable=SC2086
			"$REFLEXD" audit --journal "$T/forged.db" $cmd > "$T/forged.out" 2> "$T/forged.err"; st=$?
			set -e
			[ "$st" = 1 ] || fail "$set, audit $cmd: exit $st"
			[ "$(head -1 "$T/forged.err")" = "$want" ] || fail "$set, audit $cmd: said '$(cat "$T/forged.err")', not '$want'"
			! grep -q "${id: -8}" "$T/forged.out" || fail "$set, audit $cmd: the forged row is shown: $(cat "$T/forged.out")"
		done
		# the table, the JSON and the report show every other row
		"$REFLEXD" audit --journal "$T/forged.db" --json 2> /dev/null | jq -r .id | sort > "$T/got.ids"
		cmp -s "$T/others.ids" "$T/got.ids" || fail "$set: --json shows $(cat "$T/got.ids")"
		"$REFLEXD" audit --journal "$T/forged.db" 2> /dev/null | awk 'NR > 1 { print $2 }' | sort > "$T/got.short"
		sed 's/.*\(........\)$/\1/' "$T/others.ids" | sort | cmp -s - "$T/got.short" || fail "$set: the table shows $(cat "$T/got.short")"
		for other in $(cat "$T/others.ids"); do
			grep -q "id=\"d-$other\"" "$T/forged.html" || fail "$set: the report lacks $other"
		done
		"$REFLEXD" audit --journal "$T/forged.db" summary --json 2> /dev/null | jq -s 'map(.total) | add' |
			grep -qx 6 || fail "$set: the summary does not count the 6 others"
	done <<'CASES'
pid = 4294967297|pid 4294967297 is out of range
pid = 1099511627776|pid 1099511627776 is out of range
pid = -5|pid -5 is out of range
tid = 4294967296|tid 4294967296 is out of range
rung = -1|rung -1 is out of range
held_ns = -1|held_ns -1 is out of range
start_time = -1|start_time -1 is out of range
pid = 'abc'|pid 'abc' is not an integer
pid = 1.5|pid '1.5' is not an integer
mode = 'bogus'|mode 'bogus' is not a known name
kind = 'bogus'|kind 'bogus' is not a known name
outcome = 'exploded'|outcome 'exploded' is not a known name
comm = CAST(x'6261736800657669' AS TEXT)|comm holds a NUL byte
comm = 'a-process-name-of-27-bytes'|comm is 26 bytes long, more than the 15 it holds
detail = printf('%600s', 'x')|detail is 600 bytes long, more than the 511 it holds
CASES
}

run_tests
