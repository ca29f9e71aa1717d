#!/bin/bash
# PID 1 inside a matrix guest, on the host's root (tests/kernels/init):
# mounts what a booted system has, runs the command the host wrote to the
# result share, writes its exit status there and powers off.
OUT=/run/reflexd-out
mount -t proc proc /proc
mount -t sysfs sys /sys
# no tmpfs on /tmp: the overlay already keeps every write in memory, and
# the tree under test may itself live in /tmp (a CI clone)
mount -t tmpfs tmpfs /run/lock 2> /dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# this kernel's modules where modprobe (and the kernel's request_module) look
mkdir -p "/lib/modules/$(uname -r)"
mount --bind "$REFLEXD_GUEST_KMODS" "/lib/modules/$(uname -r)"
ip link set lo up
# Debian's kernels default to THP "always", the machines the tests are
# written on to "madvise": khugepaged then fills in the untouched leak of
# t_leak.sh at random, and its rss (not only its mappings) grows
echo madvise > /sys/kernel/mm/transparent_hugepage/enabled
hostname reflexd-guest
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
read -r up _ < /proc/uptime
echo "$up" > "$OUT/boot_s"
echo "reflexd-guest: up in ${up}s on $(uname -r)" > /dev/console
cd "$REFLEXD_GUEST_WORKDIR" && bash "$OUT/cmd" > "$OUT/out.log" 2>&1
status=$?
echo "$status" > "$OUT/rc"
sync
echo "reflexd-guest: exit $status" > /dev/console
echo o > /proc/sysrq-trigger
sleep 10
