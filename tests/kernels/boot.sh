#!/bin/bash
# boot.sh [-t SECONDS] SERIES OUTDIR COMMAND
# Boots Debian's newest stock kernel of SERIES (6.1 or 6.12) under qemu
# (TCG: nested KVM does not work here) with this machine's root shared
# read-only, runs COMMAND with bash in this worktree inside the guest, and
# exits with COMMAND's status. OUTDIR gets out.log (COMMAND's output),
# console.log (the guest's serial console), rc, boot_s (seconds from power
# on to the test shell) and time_s (the whole boot, run and power off).
set -u
cd "$(dirname "$0")/../.." || exit 1
timeout=1800
if [ "${1:-}" = -t ]; then
	timeout=$2
	shift 2
fi
[ $# = 3 ] || { echo "usage: $0 [-t SECONDS] SERIES OUTDIR COMMAND" >&2; exit 2; }
series=$1 out=$2 cmd=$3
. tests/kernels/kernel.sh
sh deploy/deps.sh || exit 1
kernel_fetch "$series" || exit 1

rm -rf "$out"
mkdir -p "$out/initramfs" || exit 1
out=$(cd "$out" && pwd)
printf '%s\n' "$cmd" > "$out/cmd"

# the initramfs: busybox, the 9p and overlay modules with what they need,
# unpacked (busybox's modprobe reads modules.dep, not xz), and a modules.dep
# of just those
ird=$out/initramfs
mkdir -p "$ird/bin" "$ird/proc" "$ird/sys" "$ird/dev" "$ird/lib/modules/$KVER"
cp /bin/busybox "$ird/bin/busybox"
/bin/busybox true 2> /dev/null && ! ldd /bin/busybox > /dev/null 2>&1 || { echo "boot: /bin/busybox is not static (busybox-static)" >&2; exit 1; }
cp tests/kernels/init "$ird/init"
cat > "$ird/conf" <<CONF
REFLEXD_GUEST_WORKDIR='$PWD'
REFLEXD_GUEST_KMODS='$KMODS'
CONF
wanted="virtio_pci 9pnet_virtio 9p overlay"
mods=$(for m in $wanted; do
	grep -E "(^|/)$m\.ko(\.xz)?:" "$KMODS/modules.dep" | tr -d ':' | tr ' ' '\n'
done | grep . | sort -u)
for m in $mods; do
	mkdir -p "$ird/lib/modules/$KVER/$(dirname "$m")"
	case "$m" in
	*.xz) xz -dc "$KMODS/$m" > "$ird/lib/modules/$KVER/${m%.xz}" ;;
	*) cp "$KMODS/$m" "$ird/lib/modules/$KVER/$m" ;;
	esac
done
for m in $wanted; do
	grep -E "(^|/)$m\.ko(\.xz)?:" "$KMODS/modules.dep"
done | sed 's/\.xz//g' > "$ird/lib/modules/$KVER/modules.dep"
(cd "$ird" && find . | busybox cpio -o -H newc 2> /dev/null | gzip -1) > "$out/initramfs.cpio.gz" || exit 1

# thread=single: 2 vCPUs run in turn. With one host thread per vCPU, a
# vCPU can run a stale translation of code another is patching (a static
# key flipped when a tracepoint gets its first program) and the guest dies
# of "Oops: int3" in __schedule (seen on 6.12).
start=$(date +%s%N)
timeout --foreground -k 10 "$timeout" qemu-system-x86_64 \
	-accel tcg,thread=single -cpu max -smp 2 -m "${REFLEXD_GUEST_MEM:-3G}" \
	-kernel "$KIMAGE" -initrd "$out/initramfs.cpio.gz" \
	-append "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=4 mitigations=off" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs local,path="$out",mount_tag=out,security_model=none \
	-nic none -display none -no-reboot -monitor none \
	-serial file:"$out/console.log" < /dev/null
qstatus=$?
echo $(( ($(date +%s%N) - start) / 1000000000 )) > "$out/time_s"
if [ ! -f "$out/rc" ]; then
	[ "$qstatus" = 124 ] && echo "boot: $KPKG: timed out after $timeout s" >&2
	echo "boot: $KPKG: the guest wrote no exit status (qemu exited $qstatus); console:" >&2
	tail -20 "$out/console.log" >&2
	exit 1
fi
exit "$(cat "$out/rc")"
