#!/bin/bash
# The kernel matrix: boots each of Debian's stock kernels under qemu
# (tests/kernels/boot.sh) and runs the live tests named below inside it,
# against this worktree's build. Prints "ok - KERNEL: FILE: TEST" or
# "not ok - ...", the time each kernel took, and ends with
# "N passed, N failed".
#   tests/kernels/matrix.sh [SERIES...]     (default: 6.1 6.12)
#   KERNEL_TESTS="t_deadlock.sh:abba_killed ..." picks other tests.
# Time limits inside the tests are scaled by REFLEXD_TEST_SLOW (TCG runs
# the guest several times slower than the host).
cd "$(dirname "$0")/../.." || exit 1

# FILE:ONLY-REGEX, each one of the issue's minimum: a deadlock killed, a
# stall, a leak seen, retransmits attributed, goroutines counted, the reflex
# arc, a traffic shift; and the daemon starting with every sensor
DEFAULT_TESTS="t_daemon.sh:sigterm_stops_cleanly_and_detaches
t_deadlock.sh:abba_killed|stall_without_a_cycle_is_a_stall_not_a_deadlock
t_leak.sh:leak_caught_attributed_cache_spared
t_retransmits.sh:lossy_link_attributed_to_the_sender_and_peer|accepted_socket_attributed_to_the_acceptor|sockets_older_than_reflexd
t_goroutines.sh:leak_caught_by_the_shipped_rule
t_reflex.sh:in_kernel_rule_kills_at_the_threshold
t_traffic.sh:shift_drain_restore_on_deadlock"
tests=${KERNEL_TESTS:-$DEFAULT_TESTS}
series=${*:-6.1 6.12}
slow=${REFLEXD_TEST_SLOW:-4}

cmd="export REFLEXD_TEST_SLOW=$slow
for t in $(printf "'%s' " $tests); do
	file=\${t%%:*} only=\${t#*:}
	start=\$(date +%s)
	# a test that hangs fails alone, the others still run
	ONLY=\"\$only\" timeout -k 5 ${FILE_TIMEOUT:-400} bash tests/\$file 2>&1 |
		sed -e \"s/^\\(ok\\|not ok\\) - /&\$file: /\"
	[ \"\${PIPESTATUS[0]}\" = 124 ] && echo \"not ok - \$file: \$only: timed out after ${FILE_TIMEOUT:-400} s\"
	echo \"# \$file: \$(( \$(date +%s) - start ))s\"
done"

mkdir -p build/kernels
passed=0 failed=0 all_start=$(date +%s)
for k in $series; do
	out=build/kernels/$k
	bash tests/kernels/boot.sh -t "${KERNEL_TIMEOUT:-1500}" "$k" "$out" "$cmd" 2> "build/kernels/$k.err"
	status=$?
	log=$out/out.log
	sed -n -e "s/^\\(ok\\|not ok\\) - /& $k: /p" "$log" 2> /dev/null | sed 's/  / /'
	p=$(grep -c '^ok - ' "$log" 2> /dev/null)
	n=$(grep -c '^not ok - ' "$log" 2> /dev/null)
	# the guest must have finished: tests it never reached are not passes
	if [ ! -f "$out/rc" ]; then
		echo "not ok - $k: the guest did not finish (exit $status): $(grep -v '^reflexd-guest' "build/kernels/$k.err" | head -2 | tr '\n' ' ')"
		n=$((${n:-0} + 1))
	elif [ "${p:-0}" = 0 ] && [ "${n:-0}" = 0 ]; then
		echo "not ok - $k: no test ran (exit $status)"
		n=1
	fi
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${n:-0}))
	echo "# $k: $(cat "$out/boot_s" 2> /dev/null || echo '?')s to boot, $(cat "$out/time_s" 2> /dev/null || echo '?')s in all; log in $log"
done
echo "# matrix: $(( $(date +%s) - all_start ))s"
[ "$failed" != 0 ] && echo "# failures: see build/kernels/*/out.log"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
