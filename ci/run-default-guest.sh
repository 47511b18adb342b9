#!/bin/bash
# `make run`: boot the default Linux guest (fixtures/linux: Debian's kernel
# and a busybox initramfs) through grub-bhyve and bhyve with vmrun.sh, its
# shell on this terminal, nested under QEMU when this machine has no usable
# /dev/kvm. `poweroff` (or leaving the shell) ends it; `reboot` boots it
# again, as vmrun.sh does.
#
#   ci/run-default-guest.sh [-c CPUS] [-m MEM]      (default: -c 2 -m 512M)
set -euo pipefail
cd "$(dirname "$0")/.."
B=$PWD/build

cpus=2
mem=512M

# The guest is built (or found in the cache) here, on the host: inside the
# nested VM there is no network and the cache is read-only.
guest_dir() {
	fixtures/linux/build.sh ||
		{ echo "run: cannot build the Linux guest (fixtures/linux/build.sh)" >&2; exit 1; }
}

boot() { # guest-dir
	local dir=$1 vm=linux-$$ vmrun=$B/bin/vmrun.sh rc
	[ -x "$vmrun" ] || vmrun=$PWD/src/hv/vmrun.sh
	# Nested, /dev/vmm (bhyve's default for root) is the VM's own tmpfs.
	if [ -z "${BHYVE_VMM_DIR:-}" ] && [ "${BHYVE_NESTED:-0}" != 1 ]; then
		export BHYVE_VMM_DIR=/tmp/bhyve-run-$$
		trap 'rm -rf "$BHYVE_VMM_DIR"' EXIT
	fi
	echo "run: booting Linux $(cat "$dir/version") (-c $cpus -m $mem);" \
		"'poweroff' ends it, 'reboot' restarts it" >&2
	set +e
	BHYVE=$B/bin/bhyve BHYVECTL=$B/bin/bhyvectl "$vmrun" \
		-l "$B/bin/grub-bhyve" -c "$cpus" -m "$mem" \
		-k "$dir/vmlinux" -K "$dir/initramfs.cpio" \
		-B "console=ttyS0 quiet" "$vm"
	rc=$?
	set -e
	echo "run: bhyve exited with status $rc" >&2
	case $rc in
	1 | 2) return 0 ;; # powered off, halted: a normal end
	*) return $rc ;;
	esac
}

inside=0
dir=
while [ $# -gt 0 ]; do
	case $1 in
	--inside) inside=1; dir=$2; shift 2 ;;
	-c) cpus=$2; shift 2 ;;
	-m) mem=$2; shift 2 ;;
	*) echo "usage: $0 [-c CPUS] [-m MEM]" >&2; exit 2 ;;
	esac
done

. ci/kvm.sh
if [ "$inside" = 1 ]; then
	boot "$dir"
elif kvm_usable; then
	boot "$(guest_dir)"
else
	dir=$(guest_dir)
	echo "run: $(kvm_why_nested): booting nested under QEMU (harness/nested)" >&2
	exec harness/nested -- "$PWD/ci/run-default-guest.sh" -c "$cpus" -m "$mem" \
		--inside "$dir"
fi
