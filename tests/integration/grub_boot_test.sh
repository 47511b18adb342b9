#! /usr/bin/env atf-sh
# The guest's commands are single-quoted: the guest expands them.
# shellcheck disable=SC2016
#
# The default Linux guest (fixtures/linux) booted FROM IMAGES through
# grub-bhyve and bhyve (issue 10): the images are made here, on the host
# side of the test, from the fixture's kernel and initramfs (xorriso,
# sfdisk, mkfs.ext4 -d, mkfs.vfat + mcopy, lvm_image.py); grub-bhyve reads
# the kernel from the image and runs the image's grub.cfg (default entry
# after its timeout: stdin is not a terminal) or the commands typed at
# grub>; bhyve then boots it with the image attached. Last, the FreeBSD
# Handbook's Linux guest section command by command (its host-only steps
# swapped for their Linux twins), and vmrun.sh's install path as the
# Handbook writes it: an "installer" on the ISO partitions the disk,
# makes a file system, copies the kernel onto it, and the next boot comes
# from the disk. Needs /dev/kvm that runs a stock kernel (make check nests
# the suite under QEMU where there is none).

LINUX_TIMEOUT=300
. "$(atf_get_srcdir)/linux_lib.sh"

# Tools the images are made with (grub_images_test.sh's list).
image_tools()
{
	for t in sfdisk mkfs.ext4 mkfs.vfat mcopy xorriso python3; do
		command -v $t >/dev/null ||
		    atf_fail "$t is missing: ci/deps.sh installs it"
	done
}

# Show grub-bhyve's input and output too.
fail_all()
{
	for f in cmds gout; do
		[ -f $f ] || continue
		echo "--- $f ---" >&2
		cat $f >&2
	done
	[ -f out ] || : >out
	[ -f err ] || : >err
	fail_with_output "$@"
}

# grub_load ARGS...: grub-bhyve ARGS (device map, root, memory, name) with
# ./cmds (empty: the image's grub.cfg runs) on stdin; ./gout.
grub_load()
{
	[ -f cmds ] || : >cmds
	timeout 120 "$BIN/grub-bhyve" "$@" <cmds >gout 2>&1 ||
	    fail_all "grub-bhyve $* exited $?"
}

expect_gout()
{
	tr -d '\r' <gout | grep -qE -- "$1" ||
	    fail_all "grub-bhyve's output has no line matching /$1/"
}

# run_bhyve ARGS...: bhyve ARGS, console in ./out, status in $rc.
run_bhyve()
{
	timeout -k 10 $LINUX_TIMEOUT "$BIN/bhyve" "$@" </dev/null >out 2>err
	rc=$?
}

# The usual small guest: 2 vCPUs, 512M, hostbridge and lpc, console on
# stdio, then the given devices and the name.
boot_small()
{
	run_bhyve -c 2 -m 512M -A -H -P -s 0:0,hostbridge -s 1:0,lpc \
	    -l com1,stdio "$@"
}

# A guest that ran "echo WORD" and powered off.
expect_echo()
{
	expect_exit 1 "the guest powers off after its command"
	expect_line "^$1\$"
	expect_line '^hvtest: exit status 0$'
}

# root_tree CFG-WORD: ./tree with /boot/$KERNEL (vmlinux, the ELF kernel,
# unless the caller sets vmlinuz, the bzImage), /boot/initramfs.cpio
# and, when CFG-WORD is not empty, a /boot/grub/grub.cfg whose default
# entry boots them running "echo CFG-WORD".
root_tree()
{
	rm -rf tree
	mkdir -p tree/boot/grub tree/etc
	cp "$LINUX/${KERNEL:=vmlinux}" "$LINUX/initramfs.cpio" tree/boot/ ||
	    atf_fail "cannot copy the guest"
	echo "hv root" >tree/etc/hostname
	[ -n "$1" ] || return 0
	cat >tree/boot/grub/grub.cfg <<EOF
set default=0
set timeout=1
menuentry 'a broken entry first' --id broken {
	linux /boot/nothing
}
menuentry 'Linux from the image' --id hv {
	linux /boot/$KERNEL console=ttyS0 quiet -- echo $1
	initrd /boot/initramfs.cpio
}
set default=hv
EOF
}

# ext4 IMAGE LABEL [SIZE]: ./tree as an ext4 file system (64M: the guest
# with its ELF kernel fits).
make_ext4()
{
	mkfs.ext4 -q -F -L "$2" -d tree "$1" "${3:-64M}" ||
	    atf_fail "mkfs.ext4 failed"
}

# put IMAGE FS SECTOR: copy a file system image into a disk image.
put()
{
	dd if="$2" of="$1" bs=512 seek="$3" conv=notrunc status=none ||
	    atf_fail "dd failed"
}

# mbr_image CFG-WORD: ./disk.img with a small primary (msdos1), an
# extended partition and a logical ext4 partition (msdos5) holding
# root_tree CFG-WORD.
mbr_image()
{
	root_tree "$1"
	make_ext4 e.img mbrroot
	truncate -s 72M disk.img
	printf 'label: dos\nstart=2048,size=2048,type=83\nstart=4096,type=5\nstart=6144,size=131072,type=83\n' |
	    sfdisk -q disk.img || atf_fail "sfdisk failed"
	put disk.img e.img 6144
	echo "(hd0) $(pwd)/disk.img" >device.map
}

atf_test_case iso
iso_head()
{
	atf_set descr "an ISO (xorriso -R -J) with an isolinux/ layout and a" \
	    "boot/grub/grub.cfg: -r cd0 boots its default entry (bzImage and" \
	    "initrd from the ISO), the ISO attached as ahci-cd"
	atf_set timeout 900
}
iso_body()
{
	setup
	image_tools
	mkdir -p iso/isolinux iso/boot/grub
	cp "$LINUX/vmlinuz" iso/isolinux/vmlinuz
	cp "$LINUX/initramfs.cpio" iso/isolinux/initrd.img
	echo "default linux" >iso/isolinux/isolinux.cfg
	cat >iso/boot/grub/grub.cfg <<'EOF'
set timeout=1
menuentry 'Install Linux' {
	linux /isolinux/vmlinuz console=ttyS0 quiet -- echo hv-from-iso
	initrd /isolinux/initrd.img
}
EOF
	xorriso -as mkisofs -quiet -R -J -V HVLIVE -o x.iso iso 2>xorriso.err ||
	    atf_fail "xorriso: $(cat xorriso.err)"
	echo "(cd0) ./x.iso" >device.map
	grub_load -m device.map -r cd0 -M 512M g-iso
	expect_gout "^Booting 'Install Linux'"
	boot_small -s 4:0,ahci-cd,./x.iso g-iso
	expect_echo hv-from-iso
}

atf_test_case msdos5
msdos5_head()
{
	atf_set descr "MBR with an extended partition: the logical ext4" \
	    "partition's grub.cfg (-r hd0,msdos5) boots the ELF kernel and" \
	    "initramfs from it, the disk attached as ahci-hd"
	atf_set timeout 900
}
msdos5_body()
{
	setup
	image_tools
	mbr_image hv-from-msdos5
	grub_load -m device.map -r hd0,msdos5 -M 512M g-msdos5
	# The default entry by its --id, past a broken first entry.
	expect_gout "^Booting 'Linux from the image'"
	expect_gout "^ *0  a broken entry first"
	boot_small -s 4:0,ahci-hd,./disk.img g-msdos5
	expect_echo hv-from-msdos5
}

atf_test_case gpt2
gpt2_head()
{
	atf_set descr "GPT with a FAT ESP (gpt1) and an ext4 root (gpt2):" \
	    "-r hd0,gpt2 runs its grub.cfg, the disk attached as virtio-blk"
	atf_set timeout 900
}
gpt2_body()
{
	setup
	image_tools
	root_tree hv-from-gpt2
	make_ext4 e.img gptroot
	mkdir -p esp/EFI/BOOT
	echo "not a loader" >esp/EFI/BOOT/BOOTX64.EFI
	mkfs.vfat -n ESP -C f.img 8192 >/dev/null || atf_fail "mkfs.vfat failed"
	mcopy -s -i f.img esp/* ::/ || atf_fail "mcopy failed"
	truncate -s 80M disk.img
	printf 'label: gpt\nstart=2048,size=16384,type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=18432,size=131072,type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' |
	    sfdisk -q disk.img || atf_fail "sfdisk failed"
	put disk.img f.img 2048
	put disk.img e.img 18432
	echo "(hd0) $(pwd)/disk.img" >device.map
	grub_load -m device.map -r hd0,gpt2 -M 512M g-gpt2
	# The default entry by its --id, past a broken first entry.
	expect_gout "^Booting 'Linux from the image'"
	expect_gout "^ *0  a broken entry first"
	boot_small -s 3:0,virtio-blk,./disk.img g-gpt2
	expect_echo hv-from-gpt2
}

atf_test_case lvm
lvm_head()
{
	atf_set descr "an LVM2 linear volume (lvm/vg-root) written by" \
	    "lvm_image.py: -r lvm/vg-root runs its grub.cfg, the PV" \
	    "attached as virtio-blk"
	atf_set timeout 900
}
lvm_body()
{
	setup
	image_tools
	# lvm_image.py's PV is 64 MiB with room for a 20 MiB volume (5
	# extents): the bzImage (8 MB) fits, the ELF kernel (35 MB) does not.
	KERNEL=vmlinuz
	root_tree hv-from-lvm
	make_ext4 e.img lvroot 20M
	python3 "$(atf_get_srcdir)/lvm_image.py" pv.img vg root e.img ||
	    atf_fail "lvm_image.py failed"
	echo "(hd0) $(pwd)/pv.img" >device.map
	grub_load -m device.map -r lvm/vg-root -M 512M g-lvm
	# The default entry by its --id, past a broken first entry.
	expect_gout "^Booting 'Linux from the image'"
	expect_gout "^ *0  a broken entry first"
	boot_small -s 3:0,virtio-blk,./pv.img g-lvm
	expect_echo hv-from-lvm
}

atf_test_case typed
typed_head()
{
	atf_set descr "the MBR image without a grub.cfg: ls, linux, initrd" \
	    "and boot typed at grub> (piped), as the Handbook does"
	atf_set timeout 900
}
typed_body()
{
	setup
	image_tools
	mbr_image ""
	cat >cmds <<'EOF'
ls
ls (hd0,msdos5)/boot
linux (hd0,msdos5)/boot/vmlinux console=ttyS0 quiet -- echo hv-typed
initrd (hd0,msdos5)/boot/initramfs.cpio
boot
EOF
	grub_load -m device.map -r hd0,msdos5 -M 512M g-typed
	expect_gout '^\(hd0\) \(hd0,msdos1\) \(hd0,msdos5\)'
	expect_gout 'initramfs.cpio'
	expect_gout 'vmlinux'
	boot_small -s 4:0,ahci-hd,./disk.img g-typed
	expect_echo hv-typed
}

# install_media ISO: an install ISO for the Handbook and vmrun.sh cases:
# isolinux/vmlinuz and isolinux/initrd.img (the guest), the ext4 modules
# (mods/, with load-order), install.sh (the installer) and grub-disk.cfg
# (the grub.cfg vmrun.sh's installed disk boots with).
#
# install.sh [cfg]: partitions /dev/vda with one partition of 64 MiB
# (busybox fdisk, as typed), makes ext2 on it (busybox mke2fs), copies the
# kernel and initrd from the CD to its root (the Handbook's separate
# /boot), with "cfg" also grub-disk.cfg as /boot/grub/grub.cfg, prints
# "hv-install: done".
install_media()
{
	kdir=$("$top/fixtures/debian-kernel.sh") ||
	    atf_fail "no Debian kernel for the ext4 modules"
	rm -rf media
	mkdir -p media/isolinux media/mods
	"$top/fixtures/debian-kernel.sh" modules "$kdir" media/mods ext4 \
	    crc32c_generic >/dev/null || atf_fail "cannot copy the ext4 modules"
	cp "$LINUX/vmlinuz" media/isolinux/vmlinuz
	cp "$LINUX/initramfs.cpio" media/isolinux/initrd.img
	echo "default linux" >media/isolinux/isolinux.cfg
	cat >media/grub-disk.cfg <<'EOF'
set timeout=1
menuentry 'Installed Linux' {
	linux /vmlinuz-hv console=ttyS0 quiet -- echo hv-vmrun-disk
	initrd /initrd.img-hv
}
EOF
	cat >media/install.sh <<'EOF'
fail() { echo "hv-install: failed: $*"; exit 1; }
echo "hv-install: starting"
while read -r m; do
	insmod "/cd/mods/$m" || fail "insmod $m"
done </cd/mods/load-order
# n(ew), p(rimary), 1, the first sector by default, 64 MiB, w(rite).
printf 'n\np\n1\n\n+64M\nw\n' | fdisk /dev/vda >/tmp/fdisk.out 2>&1
i=0
while [ ! -b /dev/vda1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -b /dev/vda1 ] || { cat /tmp/fdisk.out; fail "no /dev/vda1"; }
echo "hv-install: partitioned: $(cat /sys/block/vda/vda1/size) sectors"
mke2fs -L hvroot /dev/vda1 >/tmp/mke2fs.out 2>&1 ||
    { cat /tmp/mke2fs.out; fail mke2fs; }
mkdir -p /mnt
mount -t ext4 /dev/vda1 /mnt || fail "mount /dev/vda1"
cp /cd/isolinux/vmlinuz /mnt/vmlinuz-hv || fail "copy the kernel"
cp /cd/isolinux/initrd.img /mnt/initrd.img-hv || fail "copy the initrd"
if [ "$1" = cfg ]; then
	mkdir -p /mnt/boot/grub
	cp /cd/grub-disk.cfg /mnt/boot/grub/grub.cfg || fail "copy grub.cfg"
fi
umount /mnt || fail "umount"
sync
echo "hv-install: done"
EOF
}

# The installer's command line (short: the kernel passes at most 32
# words to init): the CD mounted (after a second, in case the SATA disk is
# still being probed), install.sh run. The command's own shell has init's
# reboot and poweroff (the applets in install.sh's shell would signal
# init, which waits for the command), so "&& reboot" comes after it.
INSTALL_CMD='mkdir /cd; sleep 1; mount -t iso9660 /dev/sr0 /cd; sh /cd/install.sh'

atf_test_case handbook cleanup
handbook_head()
{
	atf_set descr "the FreeBSD Handbook's Linux guest section command by" \
	    "command: install from an ISO (typed grub> commands, an" \
	    "installer that partitions and formats the disk and copies the" \
	    "kernel), bhyvectl --destroy, boot the installed disk"
	atf_set timeout 900
	atf_set require.user root
}
handbook_body()
{
	setup
	image_tools
	install_media
	# The Handbook's host network steps, in Linux's words: a tap for the
	# guest, a bridge it joins, both up (the host's own address on the
	# bridge stands in for the LAN the Handbook bridges to).
	ip tuntap add tap0 mode tap 2>ip.err &&
	    ip link add bridge0 type bridge 2>>ip.err &&
	    ip link set tap0 master bridge0 2>>ip.err &&
	    ip addr add 192.168.77.1/24 dev bridge0 2>>ip.err &&
	    ip link set tap0 up 2>>ip.err && ip link set bridge0 up 2>>ip.err ||
	    atf_fail "cannot make tap0 and bridge0: $(cat ip.err)"
	xorriso -as mkisofs -quiet -R -J -V SOMELINUX -o somelinux.iso media \
	    2>xorriso.err || atf_fail "xorriso: $(cat xorriso.err)"

	# truncate -s 16G linux.img
	truncate -s 16G linux.img || atf_fail "truncate failed"
	# device.map
	printf '(hd0) ./linux.img\n(cd0) ./somelinux.iso\n' >device.map
	# grub-bhyve -m device.map -r cd0 -M 1024M linuxguest, typed commands
	# (the Handbook's, with console=ttyS0 and the installer added).
	printf 'ls\nls (cd0)/isolinux\nlinux (cd0)/isolinux/vmlinuz %s\ninitrd (cd0)/isolinux/initrd.img\nboot\n' \
	    "$(grub_escape "console=ttyS0 quiet ip=off -- $INSTALL_CMD nocfg && reboot")" >cmds
	grub_load -m device.map -r cd0 -M 1024M linuxguest
	expect_gout '^\(hd0\) \(cd0\) *$'
	for f in initrd.img isolinux.cfg vmlinuz; do
		tr ' ' '\n' <gout | grep -qxF -- "$f" ||
		    fail_all "ls (cd0)/isolinux does not list $f"
	done
	# bhyve -A -H -P -s 0:0,hostbridge -s 1:0,lpc -s 2:0,virtio-net,tap0
	#   -s 3:0,virtio-blk,./linux.img -s 4:0,ahci-cd,./somelinux.iso
	#   -l com1,stdio -c 4 -m 1024M linuxguest
	run_bhyve -A -H -P -s 0:0,hostbridge -s 1:0,lpc -s 2:0,virtio-net,tap0 \
	    -s 3:0,virtio-blk,./linux.img -s 4:0,ahci-cd,./somelinux.iso \
	    -l com1,stdio -c 4 -m 1024M linuxguest
	# "reboot the virtual machine. This will cause bhyve to exit."
	expect_exit 0 "the installer reboots"
	expect_line '^hv-install: partitioned: 131072 sectors$'
	expect_line '^hv-install: done$'
	cp out install.out
	# The guest's fdisk wrote one Linux partition of 64 MiB.
	sfdisk -d linux.img >sfdisk.out 2>&1 || fail_all "sfdisk -d: $(cat sfdisk.out)"
	if [ "$(grep -c 'start=' sfdisk.out)" -ne 1 ] ||
	    ! grep -qE 'size= *131072, type=83' sfdisk.out; then
		fail_all "linux.img's partitions after the install: $(cat sfdisk.out)"
	fi
	# bhyvectl --destroy --vm=linuxguest
	"$BIN/bhyvectl" --destroy --vm=linuxguest >destroy.out 2>&1 ||
	    fail_all "bhyvectl --destroy: $(cat destroy.out)"

	# grub-bhyve -m device.map -r hd0,msdos1 -M 1024M linuxguest
	# The installed guest's NIC on tap0 reaches the host's bridge; its MAC
	# is bhyve's (MD5 of "2-0-linuxguest" after 00:a0:98).
	printf 'ls\nls (hd0,msdos1)/\nlinux (hd0,msdos1)/vmlinuz-hv console=ttyS0 quiet ip=192.168.77.2/24 -- %s\ninitrd (hd0,msdos1)/initrd.img-hv\nboot\n' \
	    "$(grub_escape 'cat /sys/class/net/eth0/address; ping -c 1 -W 5 192.168.77.1 >/dev/null && echo hv-installed')" >cmds
	grub_load -m device.map -r hd0,msdos1 -M 1024M linuxguest
	expect_gout '^\(hd0\) \(hd0,msdos1\) \(cd0\) *$'
	for f in initrd.img-hv lost+found/ vmlinuz-hv; do
		tr ' ' '\n' <gout | grep -qxF -- "$f" ||
		    fail_all "ls (hd0,msdos1)/ does not list $f"
	done
	# bhyve -A -H -P -s 0:0,hostbridge -s 1:0,lpc -s 2:0,virtio-net,tap0
	#   -s 3:0,virtio-blk,./linux.img -l com1,stdio -c 4 -m 1024M linuxguest
	run_bhyve -A -H -P -s 0:0,hostbridge -s 1:0,lpc -s 2:0,virtio-net,tap0 \
	    -s 3:0,virtio-blk,./linux.img -l com1,stdio -c 4 -m 1024M linuxguest
	expect_echo hv-installed
	mac=$(printf '2-0-linuxguest' | md5sum | sed 's/^\(..\)\(..\)\(..\).*/00:a0:98:\1:\2:\3/')
	expect_line "^$mac\$"
	# bhyvectl --destroy --vm=linuxguest
	"$BIN/bhyvectl" --destroy --vm=linuxguest >destroy.out 2>&1 ||
	    fail_all "bhyvectl --destroy: $(cat destroy.out)"
}

handbook_cleanup()
{
	ip link del tap0 2>/dev/null
	ip link del bridge0 2>/dev/null
	:
}

atf_test_case vmrun cleanup
vmrun_head()
{
	atf_set descr "vmrun.sh's install path as the Handbook writes it:" \
	    "-t tap0 -i -I install.iso boots the ISO's grub.cfg," \
	    "whose installer writes the disk and powers off; the next run" \
	    "boots the disk through its grub.cfg (-r hd0)"
	atf_set timeout 900
	atf_set require.user root
}
vmrun_body()
{
	setup
	ip tuntap add tap0 mode tap 2>ip.err && ip link set tap0 up 2>>ip.err ||
	    atf_fail "cannot make tap0: $(cat ip.err)"
	image_tools
	install_media
	mkdir -p media/boot/grub
	cat >media/boot/grub/grub.cfg <<EOF
set timeout=1
menuentry 'Install' {
	linux /isolinux/vmlinuz console=ttyS0 quiet -- $(grub_escape "$INSTALL_CMD cfg")
	initrd /isolinux/initrd.img
}
EOF
	xorriso -as mkisofs -quiet -R -J -V INSTALL -o install.iso media \
	    2>xorriso.err || atf_fail "xorriso: $(cat xorriso.err)"
	# vmrun.sh creates linux.img (8G) when it is missing, as FreeBSD's.
	timeout -k 10 $LINUX_TIMEOUT "$BIN/vmrun.sh" -c 1 -m 1024M -t tap0 \
	    -d linux.img -i -I install.iso g-vmrun </dev/null >out 2>err
	rc=$?
	expect_exit 1 "the installer powers off: vmrun.sh ends"
	expect_line '^hv-install: done$'
	expect_line '^hvtest: exit status 0$'
	expect_line "^Booting 'Install'"
	[ "$(stat -c %s linux.img)" -eq $((8 << 30)) ] ||
	    fail_with_output "vmrun.sh did not create an 8G linux.img"
	mv out install.out
	mv err install.err
	timeout -k 10 $LINUX_TIMEOUT "$BIN/vmrun.sh" -c 1 -m 1024M -t tap0 \
	    -d linux.img g-vmrun </dev/null >out 2>err
	rc=$?
	expect_echo hv-vmrun-disk
	# grub-bhyve (-r hd0) found the partition's grub.cfg and ran it.
	expect_line "^Booting 'Installed Linux'"
	# The guest had vmrun.sh's NIC on tap0 (init's DHCP finds no server).
	expect_line '^eth0: no DHCP answer'
}

vmrun_cleanup()
{
	ip link del tap0 2>/dev/null
	:
}

atf_init_test_cases()
{
	atf_add_test_case iso
	atf_add_test_case msdos5
	atf_add_test_case gpt2
	atf_add_test_case lvm
	atf_add_test_case typed
	atf_add_test_case handbook
	atf_add_test_case vmrun
}
