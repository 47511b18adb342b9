#! /usr/bin/env atf-sh
# The guest's commands are single-quoted: the guest expands them.
# shellcheck disable=SC2016
#
# virtio-blk with the default Linux guest (fixtures/linux: Debian's kernel,
# busybox, virtio_pci and virtio_blk): the guest sees /dev/vda with the
# image's size, what it writes is in the image file on the host and is
# there again after a reboot and a new bhyve, a read-only disk refuses
# writes, and bad -s options end bhyve with status 4 and one line.
#
# Longer guest scripts and the ext4 modules travel on a second disk, a
# cpio archive the guest unpacks from /dev/vdb: the kernel command line
# takes only about 30 words, and the default guest carries no file system
# modules. Needs /dev/kvm that runs a stock kernel (`make check` nests the
# suite under QEMU where there is none); fails, never skips, without it.

LINUX_TIMEOUT=300
. "$(atf_get_srcdir)/linux_lib.sh"

# The guest ran its command to the end with status 0.
expect_ok()
{
	expect_line '^hvtest: exit status 0$'
}

UNPACK='cd /tmp; cpio -id </dev/vdb 2>/dev/null; sh t.sh'

atf_test_case raw_reboot
raw_reboot_head()
{
	atf_set descr "a raw image is /dev/vda with its size and serial;" \
	    "data written there is in the file, survives the guest's" \
	    "reboot and a new bhyve, and reads back"
	atf_set timeout 900
}
raw_reboot_body()
{
	setup
	truncate -s 64M disk.img
	mkdir payload
	cat >payload/t.sh <<'EOF'
. /etc/shrc # reboot and poweroff that act at once, the console drained
echo "hvsize $(cat /sys/block/vda/size) $(cat /sys/block/vda/serial)"
echo "hvlbs $(cat /sys/block/vda/queue/logical_block_size)"
grep -c virtio0-req /proc/interrupts | sed 's/^/hvmsix /'
if [ "$1" = write ]; then
	echo hv-persist-1 | dd of=/dev/vda bs=512 seek=1000 conv=sync,fsync 2>/dev/null
	reboot
fi
echo "hvread $(dd if=/dev/vda bs=512 skip=1000 count=1 2>/dev/null | head -c 12)"
EOF
	payload payload.img
	boot v-raw "$UNPACK write" -s 4,virtio-blk,disk.img,ser=HVSERIAL42 \
	    -s 5,virtio-blk,payload.img,ro
	expect_exit 0 "the guest rebooted after writing"
	expect_line '^hvsize 131072 HVSERIAL42$'
	expect_line '^hvlbs 512$'
	expect_line '^hvmsix 1$'
	expect_image disk.img $((1000 * 512)) hv-persist-1

	boot v-raw "$UNPACK read" -s 4,virtio-blk,disk.img \
	    -s 5,virtio-blk,payload.img,ro
	expect_exit 1 "powered off after reading"
	expect_ok
	expect_line '^hvread hv-persist-1$'
}

atf_test_case ext4
ext4_head()
{
	atf_set descr "an ext4 image from mkext4.sh mounts; a file written" \
	    "and synced is in the image (debugfs sees it) and is read back" \
	    "by the next boot"
	atf_set timeout 900
}
ext4_body()
{
	setup
	mkdir -p seed payload/mods
	echo "seeded by mkext4.sh" >seed/seed.txt
	"$top/fixtures/linux/mkext4.sh" seed disk.img 32M ||
	    atf_fail "mkext4.sh failed"
	kdir=$("$top/fixtures/debian-kernel.sh") ||
	    atf_fail "no Debian kernel for the ext4 modules"
	"$top/fixtures/debian-kernel.sh" modules "$kdir" payload/mods ext4 \
	    crc32c_generic >/dev/null || atf_fail "cannot copy the ext4 modules"
	cat >payload/t.sh <<'EOF'
while read -r m; do insmod "/tmp/mods/$m" || echo "hvfail insmod $m"; done </tmp/mods/load-order
mkdir -p /mnt
mount -t ext4 /dev/vda /mnt || { echo hvfail mount; exit 1; }
echo "hvseed $(cat /mnt/seed.txt)"
if [ "$1" = write ]; then
	echo "written by the guest" >/mnt/hello.txt
	dd if=/dev/urandom of=/mnt/big bs=64k count=64 2>/dev/null
	md5sum /mnt/big | cut -c1-32 >/mnt/big.md5
	sync
else
	echo "hvhello $(cat /mnt/hello.txt)"
	[ "$(md5sum /mnt/big | cut -c1-32)" = "$(cat /mnt/big.md5)" ] && echo hvbig ok
fi
umount /mnt || echo hvfail umount
EOF
	payload payload.img
	boot v-ext4 "$UNPACK write" -s 4,virtio-blk,disk.img \
	    -s 5,virtio-blk,payload.img,ro
	expect_exit 1 "powered off after writing"
	expect_ok
	expect_line '^hvseed seeded by mkext4.sh$'
	if grep -q hvfail out; then
		fail_with_output "a step failed in the guest"
	fi
	debugfs=$(PATH=$PATH:/sbin:/usr/sbin command -v debugfs) ||
	    atf_fail "debugfs is missing: apt-get install e2fsprogs"
	got=$("$debugfs" -R 'cat /hello.txt' disk.img 2>/dev/null)
	[ "$got" = "written by the guest" ] ||
	    fail_with_output "debugfs finds '$got' in /hello.txt"

	boot v-ext4 "$UNPACK read" -s 4,virtio-blk,disk.img \
	    -s 5,virtio-blk,payload.img,ro
	expect_exit 1 "powered off after reading"
	expect_ok
	expect_line '^hvhello written by the guest$'
	expect_line '^hvbig ok$'
}

atf_test_case read_only
read_only_head()
{
	atf_set descr "a disk given with ,ro is read-only in the guest:" \
	    "writes fail, the image stays as it was, reads work"
	atf_set timeout 900
}
read_only_body()
{
	setup
	truncate -s 16M disk.img
	printf 'hv-original' | dd of=disk.img conv=notrunc 2>/dev/null
	boot v-ro 'cat /sys/block/vda/ro; echo x | dd of=/dev/vda conv=fsync || echo hvwrite failed; head -c 11 /dev/vda; echo' \
	    -s 4,virtio-blk,disk.img,ro
	expect_exit 1 "powered off"
	expect_ok
	expect_line '^1$'
	expect_line '^hvwrite failed$'
	expect_line 'hv-original'
	expect_image disk.img 0 hv-original
}

atf_test_case intx
intx_head()
{
	atf_set descr "-W (no MSI-X): the disk works on its INTx line;" \
	    "sectorsize=4096/8192 shows as the guest's block sizes"
	atf_set timeout 900
}
intx_body()
{
	setup
	truncate -s 16M disk.img
	boot v-intx 'cat /sys/block/vda/queue/logical_block_size /sys/block/vda/queue/physical_block_size; echo hv-intx | dd of=/dev/vda bs=4096 conv=sync,fsync; grep -c IO-APIC.*virtio0 /proc/interrupts' \
	    -W -s 4,virtio-blk,disk.img,sectorsize=4096/8192
	expect_exit 1 "powered off"
	expect_ok
	expect_line '^4096$'
	expect_line '^8192$'
	expect_line '^1$'
	expect_image disk.img 0 hv-intx
}

atf_test_case sandboxed
sandboxed_head()
{
	atf_set descr "the disk threads run under their seccomp filter" \
	    "(Seccomp: 2 in each one's /proc status) and the guest's I/O works"
	atf_set timeout 900
}
# The Seccomp modes of bhyve's disk threads (comm "blk"), each once: "2"
# when every one is filtered, nothing before they start.
blk_seccomp()
{
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = blk ] || continue
		sed -n 's/^Seccomp:[[:space:]]*//p' "$t/status" 2>/dev/null
	done | sort -u | tr '\n' ' ' | sed 's/ $//'
}
sandboxed_body()
{
	setup
	truncate -s 1M disk.img
	printf 'linux (host)%s/vmlinux %s\ninitrd (host)%s/initramfs.cpio\nboot\n' \
	    "$LINUX" "$(grub_escape "console=ttyS0 quiet -- echo hv-sbx | dd of=/dev/vda conv=sync,fsync; sleep 1")" \
	    "$LINUX" | "$BIN/grub-bhyve" -r host -M 512M v-sbx >grub.out 2>&1 ||
	    atf_fail "grub-bhyve: $(cat grub.out)"
	timeout -k 10 $LINUX_TIMEOUT "$BIN/bhyve" -c 1 -m 512M -A -H -P \
	    -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio \
	    -s 4,virtio-blk,disk.img v-sbx </dev/null >out 2>err &
	pid=$!
	# timeout's child is bhyve.
	i=0 mode=
	while [ $i -lt 600 ] && [ "$mode" != 2 ]; do
		bpid=$(pgrep -P "$pid" -x bhyve)
		[ -n "$bpid" ] && mode=$(blk_seccomp "$bpid")
		sleep 0.1
		i=$((i + 1))
	done
	wait "$pid"
	rc=$?
	[ "$mode" = 2 ] || fail_with_output "the disk threads' Seccomp" \
	    "modes were '$mode', expected 2 (filter) for each"
	expect_exit 1 "powered off"
	expect_ok
	expect_image disk.img 0 hv-sbx
	! grep -q "sandbox" err || fail_with_output "a sandbox warning"
}

atf_test_case bad_options
bad_options_head()
{
	atf_set descr "bad virtio-blk options: one line naming the device," \
	    "exit 4; -s help lists virtio-blk"
}
bad_options_body()
{
	setup
	"$BIN/bhyve" -s help | grep -qx virtio-blk ||
	    atf_fail "bhyve -s help does not list virtio-blk"
	truncate -s 1M disk.img
	for opts in /nonexistent/disk.img disk.img,sectorsize=1000 \
	    disk.img,bogus .,ro; do
		timeout 60 "$BIN/bhyve" -c 1 -m 32M -s 0:0,hostbridge \
		    -s 4,virtio-blk,$opts v-bad </dev/null >out 2>err
		rc=$?
		[ "$rc" -eq 4 ] || fail_with_output "-s 4,virtio-blk,$opts:" \
		    "exit $rc, expected 4"
		[ "$(wc -l <err)" -eq 1 ] || fail_with_output \
		    "-s 4,virtio-blk,$opts: expected one line on stderr"
		grep -q "virtio-blk at 0:4:0: " err || fail_with_output \
		    "-s 4,virtio-blk,$opts: the error does not name the device"
	done
	grep -q "not a regular file" err ||
	    fail_with_output "a directory is not called what it is"
}

atf_init_test_cases()
{
	atf_add_test_case raw_reboot
	atf_add_test_case ext4
	atf_add_test_case read_only
	atf_add_test_case intx
	atf_add_test_case sandboxed
	atf_add_test_case bad_options
}
