#!/bin/bash
# grub_load.sh: grub-bhyve's time from its start to "boot" done, loading the
# default guest's 35 MB vmlinux and its initramfs from (host), from an ext4
# partition of an MBR disk image and from an ISO 9660 image (Rock Ridge),
# median of RUNS (issue 10; target: images within 1.5x of (host)).
# grub-bhyve needs no KVM, so this runs on the host as it is; under
# harness/nested it measures the same inside the outer VM. Prints a
# Markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=$PWD/build/bin
RUNS=${RUNS:-5}
L=$(fixtures/linux/build.sh)
W=$(mktemp -d /tmp/grub-load.XXXXXX)
trap 'rm -rf "$W"' EXIT
export BHYVE_VMM_DIR=$W/vmm

mkdir -p "$W/tree/boot"
cp "$L/vmlinux" "$L/initramfs.cpio" "$W/tree/boot/"
# The ext4 partition at 1 MiB of an MBR disk, made from the tree.
mkfs.ext4 -q -F -d "$W/tree" "$W/part.img" 96M
truncate -s 100M "$W/disk.img"
echo 'start=2048,type=83' | sfdisk -q "$W/disk.img"
dd if="$W/part.img" of="$W/disk.img" bs=1M seek=1 conv=notrunc status=none
xorriso -as mkisofs -quiet -R -J -o "$W/cd.iso" "$W/tree" 2>/dev/null
printf '(hd0) %s\n(cd0) %s\n' "$W/disk.img" "$W/cd.iso" >"$W/device.map"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# One load: seconds from grub-bhyve's start to its exit after "boot".
once() { # root prefix
	local t0 t1
	t0=$(date +%s%N)
	printf 'linux %s/boot/vmlinux console=ttyS0\ninitrd %s/boot/initramfs.cpio\nboot\n' \
	    "$2" "$2" | "$B/grub-bhyve" -m "$W/device.map" -r "$1" -M 512M \
	    -d /no-grub-cfg bench >/dev/null
	t1=$(date +%s%N)
	"$B/bhyvectl" --destroy --vm=bench >/dev/null 2>&1 || true
	echo $(((t1 - t0) / 1000000))
}

med() { # root prefix
	local i
	for i in $(seq "$RUNS"); do once "$1" "$2"; done | median
}

host=$(med host "(host)$W/tree")
ext4=$(med hd0,msdos1 "(hd0,msdos1)")
iso=$(med cd0 "(cd0)")
echo "| source | grub-bhyve start to boot (ms, median of $RUNS) | vs (host) |"
echo "| --- | --- | --- |"
for row in "(host) $host" "ext4 partition $ext4" "ISO 9660 $iso"; do
	v=${row##* }
	echo "| ${row% *} | $v | $(awk -v a="$v" -v b="$host" 'BEGIN {printf "%.2fx", a / b}') |"
done
