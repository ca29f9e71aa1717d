# The daemon's life: clean stop, reload, refusal without privileges, and
# the write-ahead journal surviving a kill -9 between intent and outcome.
. "$(dirname "$0")/lib.sh"

# The ids of the BPF programs the daemon holds, one a line.
daemon_progs() {
	grep -h '^prog_id:' /proc/"$DAEMON"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -u
}

# How many of the program ids on stdin are still loaded on the host.
still_loaded() {
	bpftool prog show -j 2>/dev/null | jq -r '.[].id' > "$T/loaded"
	awk 'NR == FNR { loaded[$1] = 1; next } $1 in loaded { n++ } END { print n + 0 }' "$T/loaded" -
}

test_sigterm_stops_cleanly_and_detaches() {
	echo 'rule "r" { when = deadlock { }, where = { comm = "rx-none" }, act = signal { "SIGKILL" } }' | write_rule r
	start_daemon --rules "$T/rules"
	daemon_progs > "$T/progs"
	[ "$(wc -l < "$T/progs")" -ge 2 ] || fail "the daemon holds $(wc -l < "$T/progs") programs"
	[ "$(still_loaded < "$T/progs")" = "$(wc -l < "$T/progs")" ] || fail "bpftool does not list the daemon's programs"
	stop_daemon
	grep -q 'reflexd: info: stopped' "$LOG" || fail "no 'stopped' line"
	# the kernel frees a dead process's programs asynchronously
	for _ in $(seq 60); do
		[ "$(still_loaded < "$T/progs")" = 0 ] && return 0
		sleep 0.05
	done
	fail "$(still_loaded < "$T/progs") of the daemon's $(wc -l < "$T/progs") programs still loaded after it stopped"
}

test_deadlock_older_than_reflexd_is_found() {
	start_wl deadlock abba --comm rx-old
	sleep 0.5
	echo 'rule "old" { when = deadlock { }, where = { comm = "rx-old" }, hold = "1s", act = signal { "SIGKILL" } }' | write_rule r
	start_daemon --rules "$T/rules"
	wait_record '.outcome == "acted"' 4
	wait_gone "$WL_PID" 1
	stop_daemon
}

test_sigint_stops_too() {
	echo 'rule "r" { when = deadlock { }, where = { comm = "rx-none" }, act = signal { "SIGKILL" } }' | write_rule r
	start_daemon --rules "$T/rules"
	kill -INT "$DAEMON"
	wait "$DAEMON"
}

test_needs_root() {
	set +e
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
		"$REFLEXD" run --rules rules/ --journal "$T/nobody.db" 2>&1)
	status=$?
	set -e
	[ "$status" = 1 ] || fail "exit $status: $out"
	echo "$out" | grep -q "reflexd needs root, or these capabilities it lacks: CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_KILL" \
		|| fail "$out"
}

test_kill_9_between_intent_and_outcome_is_recorded() {
	echo 'rule "crash" { when = deadlock { }, where = { comm = "rx-crash" }, hold = "300ms", act = signal { "SIGKILL" } }' \
		| write_rule crash
	start_daemon --rules "$T/rules" --act-delay 30s
	start_wl deadlock abba --comm rx-crash
	wait_record '.outcome == "pending"' 3
	id=$(audit | jq -r .id)
	kill -KILL "$DAEMON"
	wait "$DAEMON" || true
	alive "$WL_PID" || fail "the action ran although reflexd died first"
	# the next start reports it, and the record says so
	start_daemon --rules "$T/rules"
	grep -q "decision $id (rule crash, deadlock on pid $WL_PID): outcome unknown" "$LOG" \
		|| fail "restart did not report it: $(cat "$LOG")"
	audit | holds ".id == \"$id\" and .outcome == \"unknown\"" || fail "$(audit)"
	# and the loop carries on: the still-deadlocked process is handled now
	wait_record '.outcome == "acted"' 3
	wait_gone "$WL_PID" 1
	stop_daemon
}

# A pending intent whose row was forged (pid 2^32 + 1, read as pid 1 once)
# is not recovered with a wrong pid: the start says why it is skipped and
# leaves the row pending as it is; the other pending intent is recovered.
test_forged_pending_intent_is_skipped_at_start() {
	echo 'rule "idle" { when = deadlock { }, where = { comm = "rx-none" }, act = signal { "SIGKILL" } }' \
		| write_rule idle
	"$REFLEXD" simulate --trace tests/report/incident.trace --rules tests/report/rules.lua \
		--journal-out "$T/journal.db" > /dev/null || fail "simulate failed"
	good=$(sqlite3 "$T/journal.db" "SELECT id FROM decisions WHERE pid = 6000")
	forged=$(sqlite3 "$T/journal.db" "SELECT id FROM decisions WHERE pid = 5000")
	sqlite3 "$T/journal.db" "UPDATE decisions SET outcome = 'pending' WHERE id IN ('$good', '$forged');
		UPDATE decisions SET pid = 4294967297 WHERE id = '$forged'"
	# start_daemon takes an error line for a failed start: wait for ready
	LOG=$T/daemon.log
	"$REFLEXD" run --journal "$T/journal.db" --rules "$T/rules" > "$LOG" 2>&1 &
	DAEMON=$!
	STARTED="$STARTED $DAEMON"
	wait_for "$LOG" 'reflexd: info: ready' 20 || return 1
	stop_daemon
	grep -qx "reflexd: error: journal: decision $forged: pid 4294967297 is out of range; row skipped" "$LOG" ||
		fail "the skip is not said: $(cat "$LOG")"
	! grep -q "decision $forged (" "$LOG" || fail "the forged intent was recovered: $(grep "$forged" "$LOG")"
	grep -q "decision $good (rule goroutines-watch, goroutines on pid 6000): outcome unknown" "$LOG" ||
		fail "the other intent was not recovered: $(cat "$LOG")"
	[ "$(sqlite3 "$T/journal.db" "SELECT outcome || ' ' || pid FROM decisions WHERE id = '$forged'")" = \
	  "pending 4294967297" ] || fail "the forged row changed: $(sqlite3 "$T/journal.db" "SELECT * FROM decisions WHERE id = '$forged'")"
	[ "$(sqlite3 "$T/journal.db" "SELECT outcome FROM decisions WHERE id = '$good'")" = unknown ] ||
		fail "the other row is not unknown"
}

# Group commit: a dry-run record is committed to the WAL at once (a kill -9
# keeps it), made durable by the periodic checkpoint, and a clean stop
# leaves it in the database itself, the WAL checkpointed away.
test_dry_run_records_batched_but_kept() {
	echo 'rule "gc" { when = deadlock { }, where = { comm = "rx-gc*" }, hold = "200ms", act = signal { "SIGKILL" }, dry_run = true }' \
		| write_rule gc
	start_daemon --rules "$T/rules"
	start_wl deadlock abba --comm rx-gc-1
	wait_record '.outcome == "dry-run" and .comm == "rx-gc-1"' 3
	kill -KILL "$DAEMON"
	wait "$DAEMON" || true
	audit | holds '.comm == "rx-gc-1" and .outcome == "dry-run"' || fail "lost at kill -9: $(audit)"
	kill -KILL "$WL_PID"
	start_daemon --rules "$T/rules"
	start_wl deadlock abba --comm rx-gc-2
	wait_record '.outcome == "dry-run" and .comm == "rx-gc-2"' 3
	stop_daemon
	[ ! -s "$T/journal.db-wal" ] || fail "the WAL still holds $(stat -c %s "$T/journal.db-wal") bytes after a clean stop"
	[ "$(audit --outcome dry-run --comm 'rx-gc-*' | jq -s 'map(.comm) | unique | length')" = 2 ] \
		|| fail "$(audit)"
}

test_sighup_reload_good_and_bad() {
	echo 'rule "before" { when = deadlock { }, where = { comm = "rx-reload*" }, hold = "300ms", act = signal { "SIGKILL" }, dry_run = true }' \
		| write_rule r
	start_daemon --rules "$T/rules"
	# a broken edit is rejected whole; the old rule keeps acting
	echo 'rule "after" { when = deadlock { }, act = signal { "SIGKILL" }, hold = "bogus" }' > "$T/rules/r.lua"
	kill -HUP "$DAEMON"
	wait_for "$LOG" 'reload rejected' 5
	grep -q "r.lua:1: rule 'after': hold: bad duration 'bogus'" "$LOG" || fail "$(cat "$LOG")"
	start_wl deadlock abba --comm rx-reload1
	wait_record ".pid == $WL_PID and .rule == \"before\"" 3
	# a good edit takes over
	echo 'rule "after" { when = deadlock { }, where = { comm = "rx-reload*" }, hold = "300ms", act = signal { "SIGKILL" }, dry_run = true }' \
		> "$T/rules/r.lua"
	kill -HUP "$DAEMON"
	wait_for "$LOG" 'reloaded: loaded 1 rules' 5
	start_wl deadlock ring3 --comm rx-reload2
	wait_record ".pid == $WL_PID and .rule == \"after\"" 3
	stop_daemon
}

test_rule_files_reload_when_they_change() {
	echo 'rule "v1" { when = deadlock { }, where = { comm = "rx-watch*" }, hold = "300ms", act = signal { "SIGKILL" }, dry_run = true }' \
		| write_rule r
	start_daemon --rules "$T/rules"
	echo 'rule "v2" { when = deadlock { }, where = { comm = "rx-watch*" }, hold = "300ms", act = signal { "SIGKILL" }, dry_run = true }' \
		> "$T/rules/r.lua"
	wait_for "$LOG" 'reloaded: loaded 1 rules' 5
	start_wl deadlock abba --comm rx-watch1
	wait_record ".pid == $WL_PID and .rule == \"v2\"" 3
	# a bad edit: refused, recorded, and v2 keeps acting
	echo 'rule "v3" { when = deadlock { }, act = signal { "SIGKIL" } }' > "$T/rules/r.lua"
	wait_for "$LOG" 'reload rejected' 5
	start_wl deadlock abba --comm rx-watch2
	wait_record ".pid == $WL_PID and .rule == \"v2\"" 3
	audit | jq -r 'select(.action == "reload" and .outcome == "failed") | .detail' | grep -q \
		"^rejected (1 errors; the running rules stay): .*r.lua:1: rule 'v3': signal: unknown signal 'SIGKIL' after a change to the rule files$" \
		|| fail "no record of the refused reload: $(audit | jq -c 'select(.action == "reload") | .detail')"
	audit | holds '.action == "reload" and .outcome == "acted" and .kind == "-" and .rule == "(rules)"' \
		|| fail "no record of the reload"
	stop_daemon
}

# wait_reloads N SECONDS: until the log shows N successful reloads.
wait_reloads() {
	reload_end=$(( $(date +%s) + $2 ))
	until [ "$(grep -c 'reloaded: loaded' "$LOG")" -ge "$1" ]; do
		[ "$(date +%s)" -le "$reload_end" ] || { fail "fewer than $1 reloads in $2 s: $(grep reload "$LOG")"; return 1; }
		sleep 0.05
	done
}

test_rules_directory_deleted_and_made_again_is_watched() {
	echo 'rule "d1" { when = deadlock { }, where = { comm = "rx-again*" }, hold = "300ms", act = signal { "SIGKILL" }, dry_run = true }' \
		| write_rule r
	start_daemon --rules "$T/rules"
	rm -rf "$T/rules"
	wait_for "$LOG" 'reload rejected' 5
	mkdir "$T/rules"
	echo 'rule "d2" { when = deadlock { }, where = { comm = "rx-again*" }, hold = "300ms", act = signal { "SIGKILL" }, dry_run = true }' \
		> "$T/rules/r.lua"
	wait_reloads 1 5
	start_wl deadlock abba --comm rx-again1
	wait_record ".pid == $WL_PID and .rule == \"d2\"" 3
	# the new directory is itself watched: an edit in it reloads
	echo 'rule "d3" { when = deadlock { }, where = { comm = "rx-again*" }, hold = "300ms", act = signal { "SIGKILL" }, dry_run = true }' \
		> "$T/rules/r.lua"
	wait_reloads 2 5
	start_wl deadlock abba --comm rx-again2
	wait_record ".pid == $WL_PID and .rule == \"d3\"" 3
	# moved away and replaced, as a deployment tool might
	mv "$T/rules" "$T/rules.old"
	mkdir "$T/rules"
	sed 's/"d3"/"d4"/' "$T/rules.old/r.lua" > "$T/rules/r.lua"
	wait_reloads 3 5
	start_wl deadlock abba --comm rx-again3
	wait_record ".pid == $WL_PID and .rule == \"d4\"" 5
	# the parent's other entries (the journal beside the rules) are not
	# changes to the rules: no reload came of the decisions' writes
	n=$(grep -c 'reloading after' "$LOG")
	touch "$T/unrelated"
	sleep 1
	[ "$(grep -c 'reloading after' "$LOG")" = "$n" ] || fail "a change beside the rules reloaded them"
	stop_daemon
}

# `audit` as a user who cannot write the journal's directory (as SQLite
# needs for a WAL journal's -shm file): it reads the journal, running
# daemon or not, and says so plainly when it cannot.
test_audit_reads_a_journal_in_a_directory_it_cannot_write() {
	echo 'rule "q" { when = deadlock { }, where = { comm = "rx-none" }, act = signal { "SIGKILL" } }' | write_rule r
	ro=$T/ro
	mkdir -p "$ro"
	chmod 755 "$T" "$ro"
	as_nobody() { setpriv --reuid nobody --regid nogroup --clear-groups "$@"; }
	start_daemon --rules "$T/rules" --journal "$ro/journal.db"
	kill -HUP "$DAEMON"
	wait_for "$LOG" 'reloaded: loaded 1 rules' 5
	chmod 644 "$ro"/journal.db*
	# while the daemon writes: -wal and -shm are there to read through
	as_nobody "$REFLEXD" audit --journal "$ro/journal.db" --json > "$T/live.json" 2> "$T/live.err" \
		|| fail "audit of a live journal as nobody: $(cat "$T/live.err")"
	holds '.action == "reload"' < "$T/live.json" || fail "live: $(cat "$T/live.json")"
	stop_daemon
	[ ! -e "$ro/journal.db-wal" ] || fail "the daemon left its -wal behind"
	# stopped: nothing but the file, in a directory nobody cannot write
	as_nobody touch "$ro/probe" 2>/dev/null && fail "nobody can write $ro"
	as_nobody "$REFLEXD" audit --journal "$ro/journal.db" --json > "$T/ro.json" 2> "$T/ro.err" \
		|| fail "audit as nobody: $(cat "$T/ro.err")"
	[ ! -e "$ro/journal.db-shm" ] || fail "audit wrote beside the journal"
	"$REFLEXD" audit --journal "$ro/journal.db" --json > "$T/root.json"
	[ -s "$T/root.json" ] && cmp -s "$T/ro.json" "$T/root.json" || fail "nobody read $(wc -l < "$T/ro.json") records, root $(wc -l < "$T/root.json")"
	# a -wal file with no -shm to share it through: the reason, not a wrong one
	rm -f "$ro/journal.db-shm"
	: > "$ro/journal.db-wal"
	as_nobody "$REFLEXD" audit --journal "$ro/journal.db" > /dev/null 2> "$T/wal.err" && fail "read past a -wal"
	grep -q "cannot read a journal that is being written from a directory this user cannot write" "$T/wal.err" \
		|| fail "$(cat "$T/wal.err")"
}

test_configmap_symlink_swap_reloads() {
	# how the kubelet updates a ConfigMap volume: files are links through
	# ..data, and ..data is swapped atomically to a new directory
	mkdir -p "$T/cm/..v1" "$T/cm/..v2"
	echo 'rule "cm-1" { when = deadlock { }, where = { comm = "rx-cm*" }, hold = "300ms", act = signal { "SIGKILL" }, dry_run = true }' > "$T/cm/..v1/r.lua"
	echo 'rule "cm-2" { when = deadlock { }, where = { comm = "rx-cm*" }, hold = "300ms", act = signal { "SIGKILL" }, dry_run = true }' > "$T/cm/..v2/r.lua"
	ln -s ..v1 "$T/cm/..data"
	ln -s ..data/r.lua "$T/cm/r.lua"
	start_daemon --rules "$T/cm"
	ln -s ..v2 "$T/cm/..data_tmp"
	mv -T "$T/cm/..data_tmp" "$T/cm/..data"
	wait_for "$LOG" 'reloaded: loaded 1 rules' 5
	start_wl deadlock abba --comm rx-cm
	wait_record ".pid == $WL_PID and .rule == \"cm-2\"" 3
	stop_daemon
}

test_audit_filters_and_table() {
	echo 'rule "a" { when = deadlock { }, where = { comm = "rx-audit-a" }, hold = "200ms", act = signal { "SIGKILL" }, dry_run = true }
rule "b" { when = deadlock { }, where = { comm = "rx-audit-b" }, hold = "200ms", act = signal { "SIGKILL" } }' | write_rule r
	start_daemon --rules "$T/rules" --protect-comm rx-audit-b
	start_wl deadlock abba --comm rx-audit-a
	a=$WL_PID
	start_wl deadlock relock --comm rx-audit-b
	b=$WL_PID
	wait_record ".pid == $a" 3
	wait_record ".pid == $b" 3
	stop_daemon
	[ "$(audit --rule a | jq -r .pid)" = "$a" ] || fail "--rule"
	[ "$(audit --pid "$b" | jq -r .rule)" = b ] || fail "--pid"
	[ "$(audit --outcome suppressed | jq -r .pid)" = "$b" ] || fail "--outcome"
	[ "$(audit --comm 'rx-audit-*' | wc -l)" = 2 ] || fail "--comm"
	[ "$(audit --since 1h | wc -l)" = 2 ] || fail "--since"
	[ "$(audit --until 1h | wc -l)" = 0 ] || fail "--until"
	[ "$(audit --limit 1 | jq -r .pid)" = "$b" ] || fail "--limit keeps the newest"
	# every record carries what an on-call engineer needs
	audit | jq -s -e 'all(.[]; .id and .time and .mode and .rule and .kind and .pid and .comm and .action and .outcome)' >/dev/null
	# the whole chain of one decision, by the id's tail as the table shows it
	id=$(audit --pid "$a" | jq -r .id)
	chain=$("$REFLEXD" audit --journal "$T/journal.db" show "${id#"${id%????????}"}")
	for line in "decision  $id" "what      deadlock, held " "target    pid $a (tid" ") rx-audit-a" "rule      a (" \
		    'why       a: decides' "outcome   dry-run: would have run signal"; do
		echo "$chain" | grep -qF "$line" || fail "audit show lacks '$line': $chain"
	done
	set +e
	"$REFLEXD" audit --journal "$T/journal.db" show 0000dead 2>"$T/err4"
	s3=$?
	set -e
	[ "$s3" = 1 ] && grep -q "no decision 0000dead" "$T/err4" || fail "show of a missing id: $s3"
	table=$("$REFLEXD" audit --journal "$T/journal.db")
	echo "$table" | head -1 | grep -Eq '^TIME +ID +MODE +RULE +KIND +PID +COMM +ACTION +OUTCOME +DETAIL$' || fail "$table"
	echo "$table" | grep -Eq " a +deadlock +$a rx-audit-a +signal +dry-run " || fail "$table"
	set +e
	out=$("$REFLEXD" audit --journal "$T/journal.db" --outcome maybe 2>&1); s=$?
	out2=$("$REFLEXD" audit --journal "$T/none.db" 2>&1); s2=$?
	set -e
	[ "$s" = 2 ] && echo "$out" | grep -q "unknown outcome 'maybe'" || fail "$out"
	[ "$s2" = 1 ] && echo "$out2" | grep -q "none.db" || fail "$out2"
}

run_tests
