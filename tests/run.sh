#!/bin/sh
# Runs every tests/t_*.sh (or those named) and ends with "N passed, N failed".
# Each file prints "ok - NAME" or "not ok - NAME: why" per test.
cd "$(dirname "$0")/.." || exit 1
mkdir -p build/test-logs
passed=0
failed=0
files=${*:-$(ls tests/t_*.sh)}
for f in $files; do
	name=$(basename "$f" .sh)
	start=$(date +%s)
	bash "$f" > "build/test-logs/$name.log" 2>&1
	status=$?
	grep -E '^(ok|not ok) - ' "build/test-logs/$name.log"
	p=$(grep -c '^ok - ' "build/test-logs/$name.log")
	n=$(grep -c '^not ok - ' "build/test-logs/$name.log")
	if [ "$status" != 0 ] && [ "$n" = 0 ]; then
		echo "not ok - $name: exited $status (see build/test-logs/$name.log)"
		n=1
	fi
	passed=$((passed + p))
	failed=$((failed + n))
	echo "# $name: $(( $(date +%s) - start ))s"
done
if [ "$failed" != 0 ]; then
	echo "# failures: see build/test-logs/*.log"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
