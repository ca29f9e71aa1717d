# The 6.1 live smoke: Debian 12's stock kernel under qemu (the newest
# linux-image-6.1.0-*-amd64-unsigned, downloaded with apt-get into
# /var/cache/reflexd-kernels), the daemon with every sensor, and a short
# subset of the live tests inside it. The whole matrix (6.1 and 6.12, more
# tests) is `make test-kernels`. With no kernel to download this fails and
# says why: a kernel the tests never ran on is not a pass.
. "$(dirname "$0")/lib.sh"

SMOKE="t_daemon.sh:sigterm_stops_cleanly_and_detaches
t_deadlock.sh:abba_killed
t_reflex.sh:in_kernel_rule_kills_at_the_threshold
t_retransmits.sh:accepted_socket_attributed_to_the_acceptor
t_traffic.sh:shift_drain_restore_on_deadlock"

test_debian_6_1_live_smoke() {
	want=$(echo "$SMOKE" | wc -l)
	KERNEL_TESTS=$SMOKE KERNEL_TIMEOUT=900 FILE_TIMEOUT=200 bash tests/kernels/matrix.sh 6.1 > "$T/matrix" 2>&1 || true
	cat "$T/matrix" >&2
	grep -q "^$want passed, 0 failed\$" "$T/matrix" ||
		fail "6.1: $(grep -E '^not ok' "$T/matrix" | head -1) ($(tail -1 "$T/matrix"))"
	echo "6.1 smoke: $(grep '^# 6.1:' "$T/matrix")"
}

run_tests
