#! /usr/bin/env atf-sh
# The guest's commands are single-quoted: the guest expands them.
# shellcheck disable=SC2016
#
# Every disk device with the default Linux guest (fixtures/linux loads
# ahci, sd_mod, sr_mod, isofs and nvme when it finds SATA or NVMe
# controllers): /dev/vda (virtio-blk), /dev/sda (ahci-hd), /dev/sr0
# (ahci-cd) and /dev/nvme0n1 (nvme) at their sizes; a pattern written to
# each disk is in its image on the host; ro refuses writes; an ext4 image
# made on the host mounts and passes fsck in the guest; an ISO's files
# read back byte for byte; what the guest flushed survives SIGKILL; bad
# options end bhyve with status 4 and one line naming the device.
#
# Scripts, the ext4 modules and e2fsck travel on a payload disk (a cpio
# archive on /dev/vda, as in virtio_test.sh). Needs /dev/kvm that runs a
# stock kernel (make check nests the suite under QEMU where there is none).

LINUX_TIMEOUT=300
. "$(atf_get_srcdir)/linux_lib.sh"
BOOT_CPUS=2 # nvme: an I/O queue per vCPU

UNPACK='cd /tmp; cpio -id </dev/vda 2>/dev/null; sh t.sh'

no_guest_failures()
{
	if grep -q hvfail out; then
		fail_with_output "a step failed in the guest"
	fi
}

atf_test_case all_disks
all_disks_head()
{
	atf_set descr "virtio-blk, ahci-hd, ahci-cd and nvme side by side:" \
	    "each shows at its size, a pattern written to each writable" \
	    "disk and flushed is in its image, the ISO's files read back"
	atf_set timeout 900
}
all_disks_body()
{
	setup
	mkdir -p payload iso/docs
	truncate -s 48M sata.img
	truncate -s 80M nvme.img
	truncate -s 24M virtio.img
	head -c 300000 /dev/urandom >iso/docs/random.bin
	echo "hello from the ISO" >iso/hello.txt
	xorriso -as mkisofs -quiet -R -J -V HVISO -o cd.iso iso 2>xorriso.err ||
	    atf_fail "xorriso: $(cat xorriso.err)"
	sum_bin=$(md5sum <iso/docs/random.bin | cut -c1-32)
	cat >payload/t.sh <<'EOF'
for d in vdb sda sr0 nvme0n1; do
	[ -e /sys/block/$d ] || echo "hvfail no /dev/$d"
	echo "hvsize $d $(cat /sys/block/$d/size 2>/dev/null)"
done
grep -q nvme /proc/interrupts && echo "hvnvmeq $(grep -c nvme0q /proc/interrupts)"
echo hv-virtio-pattern | dd of=/dev/vdb bs=512 seek=1024 conv=sync,fsync 2>/dev/null || echo hvfail vdb write
echo hv-sata-pattern | dd of=/dev/sda bs=512 seek=2048 conv=sync,fsync 2>/dev/null || echo hvfail sda write
echo hv-nvme-pattern | dd of=/dev/nvme0n1 bs=512 seek=4096 conv=sync,fsync 2>/dev/null || echo hvfail nvme write
mkdir -p /cd
mount -t iso9660 -o ro /dev/sr0 /cd || echo hvfail mount sr0
echo "hviso $(cat /cd/hello.txt)"
echo "hvisosum $(md5sum </cd/docs/random.bin | cut -c1-32)"
umount /cd
EOF
	payload payload.img
	boot s-all "$UNPACK" -s 3,virtio-blk,payload.img,ro \
	    -s 4,ahci-hd,sata.img -s 5,ahci-cd,cd.iso -s 6,nvme,nvme.img \
	    -s 7,virtio-blk,virtio.img
	expect_exit 1 "powered off"
	expect_line '^hvtest: exit status 0$'
	no_guest_failures
	expect_line '^hvsize vdb 49152$'
	expect_line '^hvsize sda 98304$'
	expect_line "^hvsize sr0 $(($(stat -c %s cd.iso) / 512))\$"
	expect_line '^hvsize nvme0n1 163840$'
	expect_line '^hvnvmeq 3$' # the admin queue and one I/O queue per vCPU
	expect_line '^hviso hello from the ISO$'
	expect_line "^hvisosum $sum_bin\$"
	expect_image virtio.img $((1024 * 512)) hv-virtio-pattern
	expect_image sata.img $((2048 * 512)) hv-sata-pattern
	expect_image nvme.img $((4096 * 512)) hv-nvme-pattern
}

atf_test_case read_only
read_only_head()
{
	atf_set descr "ahci-hd and nvme with ,ro: writes fail in the guest," \
	    "the images stay as they were"
	atf_set timeout 900
}
read_only_body()
{
	setup
	for f in sata.img nvme.img; do
		truncate -s 16M $f
		printf 'hv-original' | dd of=$f conv=notrunc 2>/dev/null
	done
	boot s-ro 'for d in sda nvme0n1; do echo "hvro $d $(cat /sys/block/$d/ro)"; echo x | dd of=/dev/$d conv=fsync 2>/dev/null || echo "hvwrite $d failed"; done' \
	    -s 4,ahci-hd,sata.img,ro -s 5,nvme,nvme.img,ro
	expect_exit 1 "powered off"
	expect_line '^hvtest: exit status 0$'
	expect_line '^hvwrite sda failed$'
	expect_line '^hvwrite nvme0n1 failed$'
	expect_image sata.img 0 hv-original
	expect_image nvme.img 0 hv-original
}

atf_test_case ext4_fsck
ext4_fsck_head()
{
	atf_set descr "an ext4 image made on the host (mkfs.ext4 -d) on" \
	    "ahci-hd and on nvme mounts, its file reads back, a file the" \
	    "guest writes is there, and e2fsck in the guest finds it clean"
	atf_set timeout 900
}
ext4_fsck_body()
{
	setup
	mkdir -p seed payload/mods
	echo "seeded on the host" >seed/seed.txt
	for f in sata.img nvme.img; do
		"$top/fixtures/linux/mkext4.sh" seed $f 32M ||
		    atf_fail "mkext4.sh failed"
	done
	kdir=$("$top/fixtures/debian-kernel.sh") ||
	    atf_fail "no Debian kernel for the ext4 modules"
	"$top/fixtures/debian-kernel.sh" modules "$kdir" payload/mods ext4 \
	    crc32c_generic >/dev/null || atf_fail "cannot copy the ext4 modules"
	e2fsck=/sbin/e2fsck.static
	[ -x $e2fsck ] || atf_fail "$e2fsck is missing: apt-get install e2fsck-static"
	cp $e2fsck payload/e2fsck
	cat >payload/t.sh <<'EOF'
while read -r m; do insmod "/tmp/mods/$m" || echo "hvfail insmod $m"; done </tmp/mods/load-order
mkdir -p /mnt
for d in sda nvme0n1; do
	mount -t ext4 /dev/$d /mnt || { echo "hvfail mount $d"; continue; }
	echo "hvseed $d $(cat /mnt/seed.txt)"
	echo "written on $d" >/mnt/guest.txt
	umount /mnt || echo "hvfail umount $d"
	/tmp/e2fsck -fn /dev/$d >/tmp/fsck.out 2>&1 && echo "hvfsck $d clean" || cat /tmp/fsck.out
done
EOF
	payload payload.img
	boot s-ext4 "$UNPACK" -s 3,virtio-blk,payload.img,ro \
	    -s 4,ahci-hd,sata.img -s 5,nvme,nvme.img
	expect_exit 1 "powered off"
	expect_line '^hvtest: exit status 0$'
	no_guest_failures
	for d in sda nvme0n1; do
		expect_line "^hvseed $d seeded on the host\$"
		expect_line "^hvfsck $d clean\$"
	done
	debugfs=$(PATH=$PATH:/sbin:/usr/sbin command -v debugfs) ||
	    atf_fail "debugfs is missing: apt-get install e2fsprogs"
	[ "$("$debugfs" -R 'cat /guest.txt' sata.img 2>/dev/null)" = "written on sda" ] ||
	    fail_with_output "sata.img lacks the guest's file"
	[ "$("$debugfs" -R 'cat /guest.txt' nvme.img 2>/dev/null)" = "written on nvme0n1" ] ||
	    fail_with_output "nvme.img lacks the guest's file"
}

atf_test_case flush_then_kill
flush_then_kill_head()
{
	atf_set descr "what the guest flushed (fsync) on ahci-hd and nvme is" \
	    "in the images after bhyve is killed with SIGKILL"
	atf_set timeout 900
}
flush_then_kill_body()
{
	setup
	truncate -s 16M sata.img nvme.img
	printf 'linux (host)%s/vmlinux %s\ninitrd (host)%s/initramfs.cpio\nboot\n' \
	    "$LINUX" "$(grub_escape "console=ttyS0 quiet -- echo hv-kept-sata | dd of=/dev/sda conv=sync,fsync; echo hv-kept-nvme | dd of=/dev/nvme0n1 conv=sync,fsync; echo hvflushed; sleep 600")" \
	    "$LINUX" | "$BIN/grub-bhyve" -r host -M 512M s-kill >grub.out 2>&1 ||
	    atf_fail "grub-bhyve: $(cat grub.out)"
	"$BIN/bhyve" -c 1 -m 512M -A -H -P -s 0:0,hostbridge -s 1:0,lpc \
	    -l com1,stdio -s 4,ahci-hd,sata.img -s 5,nvme,nvme.img s-kill \
	    </dev/null >out 2>err &
	pid=$!
	i=0
	while [ $i -lt 3000 ] && ! grep -q '^hvflushed' out; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL $pid
	wait $pid
	grep -q '^hvflushed' out || fail_with_output "the guest never flushed"
	expect_image sata.img 0 hv-kept-sata
	expect_image nvme.img 0 hv-kept-nvme
	"$BIN/bhyvectl" --destroy --vm=s-kill >/dev/null 2>&1 || true
}

atf_test_case bad_options
bad_options_head()
{
	atf_set descr "bad ahci and nvme options: one line naming the" \
	    "device, exit 4, before the guest starts; -s help lists them"
}
bad_options_body()
{
	setup
	for d in ahci ahci-hd ahci-cd nvme; do
		"$BIN/bhyve" -s help | grep -qx "$d" ||
		    atf_fail "bhyve -s help does not list $d"
	done
	truncate -s 1M disk.img
	for spec in ahci-hd,/nonexistent/disk.img ahci-hd,disk.img,bogus \
	    ahci-cd,disk.img,sectorsize=1000 nvme,/nonexistent/disk.img \
	    nvme,disk.img,maxq=0 nvme,disk.img,bogus=1 \
	    ahci,hd:disk.img,floppy:disk.img; do
		"$BIN/bhyve" -c 1 -m 64M -s 0,hostbridge -s 4,"$spec" s-bad \
		    >out 2>err
		rc=$?
		expect_exit 4 "bhyve with -s 4,$spec"
		[ "$(wc -l <err)" -eq 1 ] ||
		    fail_with_output "-s 4,$spec: expected one line on stderr"
		"$BIN/bhyvectl" --destroy --vm=s-bad >/dev/null 2>&1 || true
	done
}

atf_init_test_cases()
{
	atf_add_test_case all_disks
	atf_add_test_case read_only
	atf_add_test_case ext4_fsck
	atf_add_test_case flush_then_kill
	atf_add_test_case bad_options
}
