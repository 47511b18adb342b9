#!/bin/sh
# Install what the build and the tests need, when it is missing (Debian 12).
# Says what it installs; as non-root, says what to install and fails.
set -eu

PKGS="gcc make libc6-dev binutils libcmocka-dev libseccomp-dev kyua atf-sh qemu-system-x86 \
busybox-static cpio acpica-tools python3 expect e2fsprogs xz-utils zstd gzip libext2fs-dev libblkid-dev fdisk dosfstools mtools xorriso lvm2 \
e2fsck-static libmd-dev libslirp-dev netcat-openbsd kmod gdb"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing; install them with: sudo apt-get install$missing" >&2
	exit 1
fi
echo "deps: installing$missing (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
# Another apt-get or unattended-upgrades may hold the dpkg lock (a fresh
# cloud VM often does): wait for it rather than fail at once.
lock_wait=600
echo "deps: if another apt-get or dpkg holds its lock, waiting up to ${lock_wait} s for it" >&2
apt-get -o DPkg::Lock::Timeout=$lock_wait update -qq >/dev/null
apt-get -o DPkg::Lock::Timeout=$lock_wait install -y -qq $missing >/dev/null
