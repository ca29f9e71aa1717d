# Debian's stock kernels for the qemu matrix: find the newest package of a
# series in the archive, download it with apt-get into a cache outside the
# repository, unpack it once. Sourced by tests/kernels/boot.sh.
#   kernel_fetch SERIES   SERIES is 6.1 or 6.12; sets KPKG, KVER, KDIR,
#                         KIMAGE, KMODS, or prints why not and returns 1.
KCACHE=${REFLEXD_KERNEL_CACHE:-/var/cache/reflexd-kernels}

# the apt package name pattern of each series: the generic -amd64 flavour
# (the -cloud one builds 9p in neither way, so it cannot mount the host)
kernel_pattern() {
	case "$1" in
	6.1) echo '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' ;;
	6.12) echo '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' ;;
	*) return 1 ;;
	esac
}

kernel_newest() {
	apt-cache pkgnames linux-image-"$1" 2>/dev/null | grep -E "$2" | sort -V | tail -1
}

kernel_fetch() {
	pattern=$(kernel_pattern "$1") || { echo "kernel: unknown series '$1' (6.1 or 6.12)" >&2; return 1; }
	KPKG=$(kernel_newest "$1" "$pattern")
	if [ -z "$KPKG" ]; then
		apt-get update -q > /dev/null 2>&1
		KPKG=$(kernel_newest "$1" "$pattern")
	fi
	if [ -z "$KPKG" ]; then
		echo "kernel: no package matches $pattern in the apt lists (apt-get update failed: no network?)" >&2
		return 1
	fi
	mkdir -p "$KCACHE" || return 1
	KDIR=$KCACHE/x/$KPKG
	if [ ! -f "$KDIR/.unpacked" ]; then
		deb=$(ls "$KCACHE/${KPKG}"_*.deb 2>/dev/null | sort -V | tail -1)
		if [ -z "$deb" ]; then
			# apt's sandbox user cannot write a root-owned cache: say nothing of it
			(cd "$KCACHE" && apt-get download -q "$KPKG" > /dev/null 2> "$KCACHE/download.err") || {
				echo "kernel: apt-get download $KPKG failed: $(grep -v '^W:' "$KCACHE/download.err" | tail -2)" >&2
				return 1
			}
			deb=$(ls "$KCACHE/${KPKG}"_*.deb | sort -V | tail -1)
		fi
		rm -rf "$KDIR"
		mkdir -p "$KDIR" && dpkg-deb -x "$deb" "$KDIR" && touch "$KDIR/.unpacked" || {
			echo "kernel: cannot unpack $deb" >&2
			return 1
		}
	fi
	KVER=$(ls "$KDIR/lib/modules" | head -1)
	KIMAGE=$KDIR/boot/vmlinuz-$KVER
	KMODS=$KDIR/lib/modules/$KVER
	[ -f "$KIMAGE" ] && [ -d "$KMODS" ] || { echo "kernel: $KDIR has no vmlinuz or modules" >&2; return 1; }
	kernel_depmod || { echo "kernel: depmod failed for $KVER" >&2; return 1; }
}

# the kernel's own modules.dep (a .deb leaves it to depmod at install)
kernel_depmod() {
	[ -f "$KMODS/modules.dep" ] || depmod -b "$KDIR" "$KVER"
}
