#!/bin/sh
# Installs the Debian packages reflexd builds, runs and tests with;
# `deps.sh build`: only those `make reflexd` needs (the image's build stage);
# `deps.sh bench`: only those `make bench` adds (its peers and probes).
# Idempotent and quick: one dpkg-query when everything is present.
set -eu

BUILD="make clang gcc pkg-config bpftool libbpf-dev libelf-dev libdw-dev zlib1g-dev
liblua5.4-dev libev-dev libsqlite3-dev libcurl4-openssl-dev libprotobuf-c-dev libyaml-dev libssl-dev
protobuf-c-compiler"
# bpftrace: the peer tools beside reflexd in make bench (tests/bench/peers/)
# and b_reflex.sh's clock on signal delivery
BENCH="bpftrace"
# prometheus: for promtool, which the tests check /metrics with (Debian ships
# promtool only in the server's package); python3-protobuf: the test receiver
# reads OTLP/JSON with Google's parser; chromium: tests/t_audit_report.sh
# opens the HTML report in it, headless
PACKAGES="$BUILD llvm protobuf-compiler sqlite3 jq linux-perf procps libclang-rt-14-dev util-linux time
python3 python3-yaml openssl golang-go $BENCH iptables curl systemd strace
podman runc debootstrap prometheus python3-protobuf
qemu-system-x86 busybox-static kmod xz-utils chromium"
[ "${1:-}" = build ] && PACKAGES=$BUILD
[ "${1:-}" = bench ] && PACKAGES=$BENCH

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$status" in
	ii*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing" >&2
	echo "deps: run as root (sudo make ...) to install them" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
