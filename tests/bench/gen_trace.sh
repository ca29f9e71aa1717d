#!/bin/sh
# gen_trace.sh N: a trace of N deadlock conditions over a virtual day, on
# 10 000 distinct processes, each cleared half a step after it is raised
# (before the next raise: the file stays in time order without sorting).
n=${1:-1000000}
awk -v n="$n" 'BEGIN {
	print "reflexd-trace 1 start=1795300000"
	step = 86400 / n
	for (i = 1; i <= n; i++) {
		t = i * step
		p = 1000 + (i * 7919) % 10000
		printf "%.6f raise %d deadlock pid=%d start=%d comm=svc%d-w exe=/srv/app%d\n", t, i, p, p, p % 50, p % 50
		printf "%.6f clear %d\n", t + step / 2, i
	}
}'
