#!/bin/sh
# `make run`: reflexd on this host with the shipped rules, in dry-run: it
# senses and decides for real, records every decision, and acts on nothing.
# Stop it with Ctrl-C; see what it would have done with
#   ./reflexd audit --journal /var/lib/reflexd/journal.db
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "run-here: reflexd loads BPF programs and needs root: sudo make run" >&2
	exit 1
fi
exec ./reflexd run --rules rules/ --dry-run --journal /var/lib/reflexd/journal.db "$@"
