#!/bin/sh
# Builds reflexd's image on a machine that reaches Debian's archive but no
# container registry: the debian:12 and debian:12-slim base images from
# debootstrap (kept in $REFLEXD_IMAGE_CACHE, so only the first build fetches
# them), then deploy/Dockerfile with podman.
#   sh deploy/image.sh [TAG]          (default localhost/reflexd:dev)
# The base images are minbase Debian 12 with bookworm, -updates and
# -security, as the registry's are; -slim drops documentation and man pages
# and keeps dpkg from installing them, as the registry's does.
set -eu
cd "$(dirname "$0")/.."
CACHE=${REFLEXD_IMAGE_CACHE:-/var/cache/reflexd-image}
TAG=${1:-localhost/reflexd:dev}
# runc and rlimits a root without CAP_SYS_RESOURCE may set: see the file
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/containers.conf}

# the Debian mirror this host's apt uses, else debootstrap's default
host_mirror() {
	{ sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null
	  awk '$1 == "deb" && $3 == "bookworm" { print $2 }' /etc/apt/sources.list 2>/dev/null; } |
		grep -v -- '-security' | head -1
}

# base_tarballs: $CACHE/debian-12.tar and debian-12-slim.tar
base_tarballs() {
	[ -s "$CACHE/debian-12.tar" ] && [ -s "$CACHE/debian-12-slim.tar" ] && return 0
	mkdir -p "$CACHE"
	root=$CACHE/rootfs
	rm -rf "$root" "$root.tmp"
	# shellcheck disable=SC2046
	debootstrap --variant=minbase bookworm "$root.tmp" $(host_mirror) > "$CACHE/debootstrap.log" 2>&1 ||
		{ tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
	mirror=$(awk '$1 == "deb" { print $2; exit }' "$root.tmp/etc/apt/sources.list")
	cat > "$root.tmp/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $mirror-security bookworm-security main
SOURCES
	chroot "$root.tmp" apt-get clean
	rm -rf "$root.tmp"/var/lib/apt/lists/* "$root.tmp"/var/cache/apt/*.bin "$root.tmp"/var/log/*.log \
		"$root.tmp"/var/cache/ldconfig/aux-cache
	mv "$root.tmp" "$root"
	tar --numeric-owner -C "$root" -cf "$CACHE/debian-12.tar.tmp" .
	cat > "$root/etc/dpkg/dpkg.cfg.d/slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
SLIM
	find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
	rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
	tar --numeric-owner -C "$root" -cf "$CACHE/debian-12-slim.tar.tmp" .
	rm -rf "$root"
	mv "$CACHE/debian-12.tar.tmp" "$CACHE/debian-12.tar"
	mv "$CACHE/debian-12-slim.tar.tmp" "$CACHE/debian-12-slim.tar"
}

for tag in 12 12-slim; do
	podman image exists "localhost/debian:$tag" && continue
	base_tarballs
	podman import --change 'CMD ["bash"]' "$CACHE/debian-$tag.tar" "localhost/debian:$tag" > /dev/null
done
# FROM debian:12 resolves to the local images, never to a registry; the
# RUN steps use the host's network (no bridge plugins needed)
podman build --pull=never --network=host -f deploy/Dockerfile -t "$TAG" .
