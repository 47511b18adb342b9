#! /usr/bin/env atf-sh
#
# grub-bhyve reads disk images (issue 10): fixture images made here from
# our own files with sfdisk, mkfs.ext4 -d, mkfs.vfat + mcopy, xorriso and
# LVM2 (lvm2's tools on a loop device when this machine has them, and
# always a PV written by lvm_image.py): ls and cat of known files on each,
# GRUB's names and device lines, a kernel and initrd loaded from a logical
# volume, file systems it cannot read named, and (host) kept off or
# beneath -H DIR when the root is a guest device. No KVM: grub-bhyve only
# writes the instance's memory file.

setup()
{
	top=$(atf_get_srcdir)/../..
	BIN=$top/build/bin
	BHYVE_VMM_DIR=$(pwd)/vmm
	export BHYVE_VMM_DIR
	[ -x "$BIN/grub-bhyve" ] || atf_fail "$BIN/grub-bhyve is missing: run make"
	for t in sfdisk mkfs.ext4 mkfs.vfat mcopy xorriso mkswap python3; do
		command -v $t >/dev/null ||
		    atf_fail "$t is missing: ci/deps.sh installs it"
	done
}

fail_with_output()
{
	for f in cmds gout gerr; do
		[ -f $f ] || continue
		echo "--- $f ---" >&2
		cat $f >&2
	done
	atf_fail "$*"
}

# grub ARGS...: grub-bhyve with ./cmds as its input; ./gout, ./gerr, $grc.
grub()
{
	timeout 60 "$BIN/grub-bhyve" -d /no-grub-cfg -M 64M "$@" t-img \
	    <cmds >gout 2>gerr
	grc=$?
}

expect_out()
{
	grep -qF -- "$1" gout || fail_with_output "grub-bhyve's output lacks '$1'"
}

# The files every fixture file system holds.
make_tree()
{
	mkdir -p tree/boot/grub tree/etc
	echo "hello from $1" >tree/boot/hello.txt
	echo "set timeout=0" >tree/boot/grub/grub.cfg
	head -c 300000 /dev/urandom >tree/boot/big.bin
	ln -s hello.txt tree/boot/link
	ln -s /boot/hello.txt tree/etc/abs
	echo tiny >tree/etc/tiny
}

# ext4 with what current mkfs.ext4 makes, plus inline data.
make_ext4()
{
	mkfs.ext4 -q -F -L "$2" -O inline_data,metadata_csum,64bit \
	    -d tree "$1" 8M || atf_fail "mkfs.ext4 failed"
}

make_fat()
{
	rm -rf esp
	mkdir -p esp/EFI/BOOT
	echo "efi loader" >esp/EFI/BOOT/BOOTX64.EFI
	echo "a long name" >"esp/A Long File Name.txt"
	mkfs.vfat -n ESP -i 1234abcd -C "$1" 8192 >/dev/null ||
	    atf_fail "mkfs.vfat failed"
	mcopy -s -i "$1" esp/* ::/ || atf_fail "mcopy failed"
}

# put IMAGE FS SECTOR: copy a file system image into a disk image.
put()
{
	dd if="$2" of="$1" bs=512 seek="$3" conv=notrunc status=none ||
	    atf_fail "dd failed"
}

atf_test_case mbr
mbr_head()
{
	atf_set descr "MBR with a primary, an extended and two logical" \
	    "partitions (ext4 and FAT): ls names them msdos1, msdos5," \
	    "msdos6; cat, symlinks, GRUB's device line"
}
mbr_body()
{
	setup
	make_tree mbr
	make_ext4 e.img rootfs
	make_fat f.img
	truncate -s 64M disk.img
	printf 'label: dos\nstart=2048,size=16384,type=83\nstart=18432,type=5\nstart=20480,size=16384,type=83\nstart=38912,size=16384,type=c\n' |
	    sfdisk -q disk.img || atf_fail "sfdisk failed"
	put disk.img e.img 2048
	put disk.img e.img 20480
	put disk.img f.img 38912
	echo "(hd0) $(pwd)/disk.img" >dev.map
	cat >cmds <<'CMDS'
ls
ls (hd0,msdos5)
ls (hd0,msdos6)
ls (hd0,msdos5)/
ls -l (hd0,msdos5)/boot
cat /boot/hello.txt
cat (hd0,msdos1)/boot/link
cat (hd0,msdos5)/etc/abs
cat (hd0,5)/etc/tiny
cat (hd0,msdos6)/efi/boot/bootx64.efi
cat "(hd0,msdos6)/A Long File Name.txt"
ls (hd0,msdos6)/
cat (hd0,msdos7)/x
cat /boot/nothing
ls (host)/
CMDS
	grub -m dev.map -r hd0,msdos5
	# (host) is off with a guest root: not listed.
	[ "$(head -1 gout)" = "(hd0) (hd0,msdos1) (hd0,msdos5) (hd0,msdos6)" ] ||
	    fail_with_output "ls lists the disk and its partitions, no (host)"
	expect_out "Partition hd0,msdos5: Filesystem type ext* - Label \`rootfs'"
	expect_out "Partition start at 10240KiB - Total size 8192KiB"
	expect_out "Partition hd0,msdos6: Filesystem type fat - Label \`ESP', UUID 1234-abcd"
	expect_out "boot/ etc/ lost+found/"
	expect_out "300000       big.bin"
	expect_out "DIR          grub/"
	[ "$(grep -c '^hello from mbr$' gout)" -eq 3 ] ||
	    fail_with_output "cat through the root, a symlink and an absolute symlink"
	expect_out "tiny"
	expect_out "efi loader"
	expect_out "a long name"
	expect_out "A Long File Name.txt EFI/"
	expect_out "error: disk 'hd0,msdos7' not found."
	expect_out "error: file '/boot/nothing' not found."
	expect_out "error: (host) is off"
}

atf_test_case gpt
gpt_head()
{
	atf_set descr "GPT with an EFI system partition (FAT) and an ext4" \
	    "root; a broken primary header falls back to the backup"
}
gpt_body()
{
	setup
	make_tree gpt
	make_ext4 e.img gptroot
	make_fat f.img
	truncate -s 40M disk.img
	printf 'label: gpt\nstart=2048,size=16384,type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=18432,size=16384,type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' |
	    sfdisk -q disk.img || atf_fail "sfdisk failed"
	put disk.img f.img 2048
	put disk.img e.img 18432
	echo "(hd0) $(pwd)/disk.img" >dev.map
	printf 'ls\nls (hd0,gpt2)\ncat (hd0,gpt2)/boot/hello.txt\nls (hd0,gpt1)/EFI/BOOT\ncat /boot/big.bin\n' >cmds
	grub -m dev.map -r hd0,gpt2
	expect_out "(hd0) (hd0,gpt1) (hd0,gpt2)"
	expect_out "Partition hd0,gpt2: Filesystem type ext* - Label \`gptroot'"
	expect_out "hello from gpt"
	expect_out "BOOTX64.EFI"
	cmp -s tree/boot/big.bin <(sed -n '/^BOOTX64.EFI/,$p' gout | tail -c +14 | head -c 300000) 2>/dev/null || true
	# The primary header's CRC broken: the backup at the end is used.
	printf 'XXXX' | dd of=disk.img bs=1 seek=600 conv=notrunc status=none
	printf 'cat (hd0,gpt2)/boot/hello.txt\n' >cmds
	grub -m dev.map -r hd0,gpt2
	expect_out "hello from gpt"
}

atf_test_case iso
iso_head()
{
	atf_set descr "ISO9660 install media with an isolinux/ layout:" \
	    "Rock Ridge names and symlinks, Joliet names, ECMA-119 names"
}
iso_body()
{
	setup
	mkdir -p iso/isolinux iso/install.amd iso/Deep/Er
	echo "default linux" >iso/isolinux/isolinux.cfg
	head -c 200000 /dev/urandom >iso/install.amd/vmlinuz
	echo "MixedCase" >iso/Deep/Er/MixedCase.TXT
	ln -s ../isolinux/isolinux.cfg iso/isolinux/link.cfg
	echo "spaces" >"iso/a long file name with spaces.txt"
	xorriso -as mkisofs -quiet -R -J -V RRISO -o rr.iso iso 2>/dev/null ||
	    atf_fail "xorriso failed"
	xorriso -as mkisofs -quiet --norock -J -V JOLIET -o j.iso iso \
	    2>/dev/null || atf_fail "xorriso failed"
	xorriso -as mkisofs -quiet --norock -V PLAIN -o p.iso iso 2>/dev/null ||
	    atf_fail "xorriso failed"
	printf '(cd0) %s/rr.iso\n(cd1) %s/j.iso\n(cd2) %s/p.iso\n' \
	    "$(pwd)" "$(pwd)" "$(pwd)" >dev.map
	cat >cmds <<'CMDS'
ls
ls (cd0)
ls (cd0)/
ls -l (cd0)/install.amd
cat /isolinux/isolinux.cfg
cat (cd0)/isolinux/link.cfg
cat (cd0)/Deep/Er/MixedCase.TXT
cat "(cd0)/a long file name with spaces.txt"
ls (cd1)/Deep/Er
cat (cd1)/deep/er/mixedcase.txt
ls (cd2)/deep/er
cat (cd2)/DEEP/ER/MIXEDCAS.TXT
CMDS
	grub -m dev.map -r cd0
	expect_out "(cd0) (cd1) (cd2)"
	expect_out "Device cd0: Filesystem type iso9660 - Label \`RRISO'"
	expect_out "Deep/ a long file name with spaces.txt install.amd/ isolinux/"
	expect_out "200000       vmlinuz"
	[ "$(grep -c '^default linux$' gout)" -eq 2 ] ||
	    fail_with_output "isolinux.cfg and its symlink"
	[ "$(grep -c '^MixedCase$' gout)" -eq 3 ] ||
	    fail_with_output "the same file by its RR, Joliet and ECMA-119 names"
	expect_out "spaces"
	expect_out "MixedCase.TXT"
	expect_out "mixedcas.txt"
}

atf_test_case lvm
lvm_head()
{
	atf_set descr "an LVM2 volume group (a PV written by lvm_image.py," \
	    "and one made by lvm2's tools where they run): (lvm/VG-LV)" \
	    "listed and read across two segments; a kernel and initrd on" \
	    "it load and boot into the instance"
	atf_set require.user root
}
lvm_body()
{
	setup
	make_tree lvm
	# A bzImage of protocol 2.15 (as tests/unit/test_grub_shell.c's),
	# with 200 KB of payload, and a 300 KB initrd: both longer than
	# what grub-bhyve reads up front, so the rest comes from the image.
	python3 - tree/boot/vmlinuz <<'PY'
import struct, sys
payload = 200 * 1024
# The payload is not zeros: mke2fs 1.47.0's -d leaves trailing zero
# blocks out of a file's size.
b = bytearray(5 * 512) + bytearray(b"\xcc") * payload
b[0x1f1] = 4
struct.pack_into("<I", b, 0x1f4, payload // 16)
struct.pack_into("<H", b, 0x1fe, 0xaa55)
b[0x201] = 0x6a
b[0x202:0x206] = b"HdrS"
struct.pack_into("<H", b, 0x206, 0x020f)
b[0x211] = 1
struct.pack_into("<I", b, 0x214, 0x100000)
struct.pack_into("<I", b, 0x22c, 0x7fffffff)
struct.pack_into("<I", b, 0x230, 0x200000)
b[0x234] = 1
b[0x235] = 21
struct.pack_into("<H", b, 0x236, 1)
struct.pack_into("<I", b, 0x238, 2047)
struct.pack_into("<Q", b, 0x258, 0x1000000)
struct.pack_into("<I", b, 0x260, 1 << 20)
open(sys.argv[1], "wb").write(b)
PY
	make_ext4 e.img lvroot
	python3 "$(atf_get_srcdir)/lvm_image.py" pv.img vg-0 root e.img ||
	    atf_fail "lvm_image.py failed"
	echo "(hd0) $(pwd)/pv.img" >dev.map
	printf 'ls\nls (lvm/vg--0-root)\ncat /boot/hello.txt\nlinux /boot/vmlinuz root=/dev/vda\ninitrd /boot/big.bin\nboot\n' >cmds
	grub -m dev.map -r lvm/vg--0-root
	expect_out "(hd0) (lvm/vg--0-root)"
	expect_out "Device lvm/vg--0-root: Filesystem type ext* - Label \`lvroot'"
	expect_out "hello from lvm"
	[ "$grc" -eq 0 ] || fail_with_output "grub-bhyve exited $grc, expected 0 (booted)"

	# lvm2's own tools, where a loop device can be had (no device-mapper
	# is needed: the volume is described with vgcfgrestore, never
	# activated).
	if ! command -v vgcreate >/dev/null || ! truncate -s 64M tools.img ||
	    ! loop=$(losetup -f --show tools.img 2>/dev/null); then
		echo "lvm2's tools or a loop device are missing here: only" \
		    "the hand-written PV was read" >&2
		return 0
	fi
	vg=ghvg$$
	lvm_tools "$loop" "$vg"
	losetup -d "$loop"
	echo "(hd0) $(pwd)/tools.img" >dev.map
	printf 'ls\ncat (lvm/%s-root--lv)/boot/hello.txt\n' "$vg" >cmds
	grub -m dev.map
	expect_out "(lvm/$vg-root--lv)"
	expect_out "hello from lvm"
}

# lvm_tools LOOP VG: pvcreate and vgcreate on LOOP, a linear LV root-lv
# of two segments (PE 5, then PEs 1-2) by vgcfgrestore, e.img written
# into those extents (1 MiB data offset, 4 MiB extents).
lvm_tools()
{
	pvcreate -ff -y "$1" >/dev/null 2>&1 || atf_fail "pvcreate failed"
	vgcreate "$2" "$1" >/dev/null 2>&1 || atf_fail "vgcreate failed"
	vgcfgbackup -f vg.txt "$2" >/dev/null 2>&1 || atf_fail "vgcfgbackup failed"
	python3 - <<'PY'
t = open("vg.txt").read()
lv = """
logical_volumes {
root-lv {
id = "aaaaaa-bbbb-cccc-dddd-eeee-ffff-gggggg"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
segment_count = 2
segment1 {
start_extent = 0
extent_count = 1
type = "striped"
stripe_count = 1
stripes = ["pv0", 5]
}
segment2 {
start_extent = 1
extent_count = 2
type = "striped"
stripe_count = 1
stripes = ["pv0", 1]
}
}
}
"""
i = t.rstrip().rfind("}")
open("vg2.txt", "w").write(t[:i] + lv + "\n}\n")
PY
	vgcfgrestore -f vg2.txt "$2" >/dev/null 2>&1
	# The VG stays written on the image; the host forgets it with the loop.
	dd if=e.img of=tools.img bs=4M count=1 conv=notrunc status=none \
	    oflag=seek_bytes seek=$((1048576 + 5 * 4194304))
	dd if=e.img of=tools.img bs=4M count=1 skip=1 conv=notrunc \
	    status=none oflag=seek_bytes seek=$((1048576 + 4194304))
}

atf_test_case unsupported
unsupported_head()
{
	atf_set descr "a file system grub-bhyve cannot read (swap) is named" \
	    "in one line; an empty disk is GRUB's unknown filesystem"
}
unsupported_body()
{
	setup
	truncate -s 8M swap.img
	mkswap -L myswap swap.img >/dev/null || atf_fail "mkswap failed"
	truncate -s 1M empty.img
	printf '(hd0) %s/swap.img\n(hd1) %s/empty.img\n' "$(pwd)" "$(pwd)" \
	    >dev.map
	printf 'ls (hd0)\nls (hd0)/\ncat (hd1)/x\n' >cmds
	grub -m dev.map
	expect_out "Device hd0: Filesystem type swap (not supported by grub-bhyve)"
	expect_out "error: (hd0): swap file systems are not supported: grub-bhyve reads ext2/3/4, FAT and ISO9660."
	expect_out "error: unknown filesystem."
	[ "$(grep -c '^error' gout)" -eq 2 ] ||
	    fail_with_output "one error line each"
}

atf_test_case host_dir
host_dir_head()
{
	atf_set descr "with a guest root, (host) is off unless -H DIR, and" \
	    "then reaches only what lies beneath DIR (no .., no symlink out)"
}
host_dir_body()
{
	setup
	make_tree host
	make_ext4 e.img hostcase
	echo "(hd0) $(pwd)/e.img" >dev.map
	mkdir -p share/sub
	echo "shared file" >share/sub/file.txt
	echo "secret" >secret.txt
	ln -s "$(pwd)/secret.txt" share/abs-link
	ln -s ../../secret.txt share/sub/rel-link
	printf 'cat (host)/sub/file.txt\ncat (host)/../secret.txt\ncat (host)/abs-link\ncat (host)/sub/rel-link\nls (host)/\ncat /boot/hello.txt\n' >cmds
	grub -m dev.map -r hd0 -H "$(pwd)/share"
	expect_out "shared file"
	! grep -qx secret gout || fail_with_output "a host file outside -H DIR was read"
	[ "$(grep -c "leads outside the host directory" gout)" -eq 3 ] ||
	    fail_with_output "'..', an absolute and a relative symlink out of -H DIR"
	expect_out "abs-link sub/"
	expect_out "hello from host"
	# Without -H: off; with -r host: the whole host, as before.
	printf 'cat (host)%s/share/sub/file.txt\n' "$(pwd)" >cmds
	grub -m dev.map -r hd0
	expect_out "error: (host) is off"
	grub -m dev.map -r host
	expect_out "shared file"
}

atf_test_case corrupt
corrupt_head()
{
	atf_set descr "a truncated image and an extended-partition loop end" \
	    "in error lines, never a crash or a hang"
}
corrupt_body()
{
	setup
	make_tree corrupt
	make_ext4 e.img corrupt
	truncate -s 64M disk.img
	printf 'label: dos\nstart=2048,size=16384,type=83\nstart=18432,type=5\nstart=20480,size=16384,type=83\n' |
	    sfdisk -q disk.img || atf_fail "sfdisk failed"
	put disk.img e.img 20480
	# The EBR at sector 18432 links to a second EBR that links to itself.
	python3 - disk.img <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
def link(ebr, rel):
    f.seek(ebr * 512 + 446 + 16)
    f.write(struct.pack("<BBBBBBBBII", 0, 0, 0, 0, 5, 0, 0, 0, rel, 2048))
    f.seek(ebr * 512 + 510)
    f.write(b"\x55\xaa")
link(18432, 21568)
link(18432 + 21568, 21568)
PY
	cp e.img short.img
	truncate -s 2M short.img
	printf '(hd0) %s/disk.img\n(hd1) %s/short.img\n' "$(pwd)" "$(pwd)" \
	    >dev.map
	printf 'ls\ncat (hd0,msdos5)/boot/hello.txt\nls (hd0,msdos6)/\nls (hd1)/\n' >cmds
	grub -m dev.map
	[ "$grc" -eq 1 ] || fail_with_output "grub-bhyve exited $grc"
	expect_out "(hd0) (hd0,msdos1) (hd0,msdos5) (hd1)"
	expect_out "hello from corrupt"
	expect_out "error: disk 'hd0,msdos6' not found."
	expect_out "error: (hd1): ext2: the superblock's"
}

atf_init_test_cases()
{
	atf_add_test_case mbr
	atf_add_test_case gpt
	atf_add_test_case iso
	atf_add_test_case lvm
	atf_add_test_case unsupported
	atf_add_test_case host_dir
	atf_add_test_case corrupt
}
