#!/bin/sh
# Seeds for the grub-bhyve fuzz targets: small images made with the same
# tools as tests/integration/grub_images_test.sh.
#   tests/fuzz/grub_seeds.sh DIR  -> DIR/{ext,iso,fat,part}/
set -eu
out=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out/ext" "$out/iso" "$out/fat" "$out/part"
mkdir -p "$tmp/t/boot/grub" "$tmp/t/a/c" "$tmp/t/isolinux" "$tmp/t/EFI/BOOT"
echo hello >"$tmp/t/boot/hello.txt"
head -c 5000 /dev/urandom >"$tmp/t/boot/vmlinuz"
# Past 64 KiB: read by extent (grub_fs_ext.c read_extents).
head -c 70000 /dev/urandom >"$tmp/t/boot/initrd"
ln -s hello.txt "$tmp/t/boot/link"
echo cfg >"$tmp/t/isolinux/isolinux.cfg"
echo efi >"$tmp/t/EFI/BOOT/BOOTX64.EFI"
mkfs.ext4 -q -F -O inline_data,metadata_csum,64bit,^has_journal -N 64 -d "$tmp/t" "$out/ext/ext4" 256K
mkfs.ext2 -q -F -N 64 -d "$tmp/t" "$out/ext/ext2" 128K
xorriso -as mkisofs -quiet -R -J -o "$out/iso/rrj.iso" "$tmp/t" 2>/dev/null
xorriso -as mkisofs -quiet --norock -J -o "$out/iso/j.iso" "$tmp/t" 2>/dev/null
mkfs.vfat -C "$out/fat/fat12" 128 >/dev/null
mcopy -s -i "$out/fat/fat12" "$tmp/t/boot" "$tmp/t/EFI" ::/
# FAT32 needs 65525 clusters (33 MB): too big a seed; FAT16 instead.
mkfs.vfat -F 16 -s 1 -C "$out/fat/fat16" 2100 >/dev/null
mcopy -s -i "$out/fat/fat16" "$tmp/t/boot" ::/
truncate -s 64K "$out/part/mbr"
printf 'label: dos\nstart=1,size=8,type=83\nstart=10,type=5\nstart=12,size=8,type=83\nstart=30,size=8,type=83\n' |
	sfdisk -q "$out/part/mbr"
truncate -s 64K "$out/part/gpt"
printf 'label: gpt\nstart=40,size=16\nstart=60,size=16\n' |
	sfdisk -q "$out/part/gpt"
# An LVM2 PV (lvm_image.py) is 64 MiB: the seed keeps its label and
# metadata only.
python3 "$here/../integration/lvm_image.py" "$tmp/pv" vg lv "$out/ext/ext2"
head -c 8192 "$tmp/pv" >"$out/part/lvm-head"
