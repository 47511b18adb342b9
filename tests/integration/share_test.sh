#! /usr/bin/env atf-sh
# The guest's commands are single-quoted: the guest expands them; rc is
# read by bhyve_lib.sh's expect_exit.
# shellcheck disable=SC2016,SC2034
#
# virtio-9p, virtio-console and virtio-rnd with the default Linux guest
# (fixtures/linux: its init mounts each 9p share at /mnt/TAG, moves to hvc0
# with console=hvc0, loads virtio_rng): a share read and written both ways,
# a read-only share refusing writes, paths and symbolic links that stay
# inside the share, a 100 MiB file that round-trips, the VM's console on
# hvc0 without com1 (and hvtest's Linux examples with `--console virtio`),
# /dev/hwrng, and a missing share path in one line. Needs /dev/kvm that
# runs a stock kernel (`make check` nests it under QEMU).

# A boot takes about 30 s nested; a hang costs this much.
LINUX_TIMEOUT=150
. "$(atf_get_srcdir)/linux_lib.sh"

expect_ok()
{
	expect_line '^hvtest: exit status 0$'
}

need_device()
{
	"$BIN/bhyve" -s help | grep -qx "$1" ||
	    atf_skip "bhyve -s help does not list $1 (not in this tree yet)"
}

# A directory to share (./share), and the bhyve option for it as tag s.
make_share()
{
	need_device virtio-9p
	mkdir share || atf_fail "cannot make ./share"
	SHARE=$(pwd -P)/share
}

atf_test_case read_write
read_write_head()
{
	atf_set descr "virtio-9p: the guest reads a file the host wrote and" \
	    "writes one the host then reads; init mounts the share at /mnt/TAG"
	atf_set timeout 600
}
read_write_body()
{
	setup
	make_share
	echo "written by the host" >share/from-host.txt
	boot v-9p-rw 'cat /mnt/s/from-host.txt; echo "written by the guest" >/mnt/s/from-guest.txt; mkdir /mnt/s/dir; echo nested >/mnt/s/dir/f; mv /mnt/s/dir/f /mnt/s/dir/g; ls -l /mnt/s' \
	    -s 3,virtio-9p,s="$SHARE"
	expect_exit 1 "powered off after the command"
	expect_ok
	expect_line '^9p: s on /mnt/s$'
	expect_line '^written by the host$'
	[ "$(cat share/from-guest.txt)" = "written by the guest" ] ||
	    fail_with_output "share/from-guest.txt holds '$(cat share/from-guest.txt 2>&1)'"
	[ "$(cat share/dir/g)" = nested ] && [ ! -e share/dir/f ] ||
	    fail_with_output "share/dir/g is missing or share/dir/f remains: $(ls -lR share)"
}

atf_test_case read_only
read_only_head()
{
	atf_set descr "virtio-9p ro: every change fails with 'Read-only file" \
	    "system' and the host's files stay as they were"
	atf_set timeout 600
}
read_only_body()
{
	setup
	make_share
	echo "original" >share/f.txt
	boot v-9p-ro 'cat /mnt/s/f.txt; echo changed >/mnt/s/f.txt; echo "write $?"; touch /mnt/s/new; echo "create $?"; rm /mnt/s/f.txt; echo "rm $?"; mkdir /mnt/s/d; echo "mkdir $?"' \
	    -s 3,virtio-9p,s="$SHARE",ro
	expect_exit 1 "powered off after the command"
	expect_ok
	expect_line '^original$'
	expect_line 'Read-only file system'
	for op in write create rm mkdir; do
		expect_line "^$op [1-9]\$"
	done
	[ "$(cat share/f.txt)" = original ] ||
	    fail_with_output "share/f.txt now holds '$(cat share/f.txt)'"
	[ "$(ls share)" = f.txt ] || fail_with_output "the share holds: $(ls share)"
}

atf_test_case escapes
escapes_head()
{
	atf_set descr "virtio-9p: '..' past the share's root, absolute and" \
	    "relative symbolic links the host planted and a link the guest" \
	    "makes to /etc all stay in the guest's own view: the host's" \
	    "files are neither read nor written"
	atf_set timeout 600
}
escapes_body()
{
	setup
	make_share
	ln -s /etc/passwd share/evil
	ln -s ../../../../../../../../etc/passwd share/evil-rel
	mkdir share/sub
	ln -s / share/sub/root
	[ ! -e /etc/hvtest-planted ] || atf_skip "/etc/hvtest-planted exists on the host"
	boot v-9p-esc 'echo "hostname: $(cat /mnt/s/../../etc/hostname)"; cat /mnt/s/evil /mnt/s/evil-rel; test -e /mnt/s/sub/root/init && echo "root: the guest'"'"'s"; ln -s /etc /mnt/s/etclink; echo planted >/mnt/s/etclink/hvtest-planted; echo "guest: $(cat /etc/hvtest-planted)"; readlink /mnt/s/evil' \
	    -s 3,virtio-9p,s="$SHARE"
	expect_exit 1 "powered off after the command"
	expect_ok
	# The guest's own files (fixtures/linux/build.sh writes them).
	expect_line '^hostname: bhyve$'
	expect_line '^root:x:0:0:root:/root:/bin/sh$'
	expect_line '^guest: planted$'
	expect_line '^/etc/passwd$'
	expect_line "^root: the guest's\$"
	# Nothing of the host's /etc/passwd (which has more users than root).
	other=$(grep -v '^root:' /etc/passwd | head -n 1 | cut -d: -f1)
	[ -z "$other" ] || ! tr -d '\r' <out | grep -q "^$other:" ||
	    fail_with_output "the guest read the host's /etc/passwd (user $other)"
	[ -L share/etclink ] && [ "$(readlink share/etclink)" = /etc ] ||
	    fail_with_output "share/etclink is not the guest's link to /etc: $(ls -l share)"
	[ ! -e /etc/hvtest-planted ] ||
	    fail_with_output "the guest wrote the host's /etc/hvtest-planted"
	[ "$(readlink share/evil)" = /etc/passwd ] ||
	    fail_with_output "share/evil changed: $(ls -l share)"
}

atf_test_case big_file
big_file_head()
{
	atf_set descr "virtio-9p: a 100 MiB file the host wrote has the same" \
	    "SHA-256 in the guest, and the guest's copy of it is the same file"
	atf_set timeout 1200
}
big_file_body()
{
	setup
	make_share
	head -c 100M /dev/urandom >share/big || atf_fail "cannot write share/big"
	sum=$(sha256sum <share/big | cut -d' ' -f1)
	LINUX_TIMEOUT=900
	boot v-9p-big 'sha256sum /mnt/s/big; cp /mnt/s/big /mnt/s/big.copy && md5sum /mnt/s/big.copy' \
	    -s 3,virtio-9p,s="$SHARE"
	expect_exit 1 "powered off after the command"
	expect_ok
	expect_line "^$sum  /mnt/s/big\$"
	expect_line "^$(md5sum <share/big | cut -d' ' -f1)  /mnt/s/big.copy\$"
	cmp share/big share/big.copy || fail_with_output "the guest's copy differs"
}

atf_test_case missing_share
missing_share_head()
{
	atf_set descr "virtio-9p: a share path that does not exist is one" \
	    "line naming it, and exit 4"
	atf_set timeout 300
}
missing_share_body()
{
	setup
	need_device virtio-9p
	boot v-9p-miss 'true' -s 3,virtio-9p,s="$(pwd)/nosuch"
	"$BIN/bhyvectl" --destroy --vm=v-9p-miss >/dev/null 2>&1
	expect_exit 4 "a missing share"
	[ "$(wc -l <err)" -eq 1 ] || fail_with_output "bhyve printed more than one line"
	grep -q nosuch err || fail_with_output "the error does not name the path"
}

atf_test_case hvc0
hvc0_head()
{
	atf_set descr "virtio-console: with console=hvc0 and no com1 the" \
	    "guest's command runs on hvc0 and its output reaches bhyve's" \
	    "stdout; the guest powers off (exit 1)"
	atf_set timeout 600
}
hvc0_body()
{
	setup
	need_device virtio-console
	BOOT_CONSOLE=virtio
	boot v-hvc 'echo "tty $(tty)"; seq 1 2000 | tail -n 1; cat /proc/consoles'
	expect_exit 1 "powered off after the command"
	expect_ok
	expect_line '^userspace up$'
	expect_line '^tty /dev/hvc0$'
	expect_line '^2000$'
	expect_line '^hvc0 '
}

atf_test_case hwrng
hwrng_head()
{
	atf_set descr "virtio-rnd: /dev/hwrng gives bytes and the guest's" \
	    "current hardware RNG is virtio_rng"
	atf_set timeout 600
}
hwrng_body()
{
	setup
	need_device virtio-rnd
	boot v-rnd 'echo "rng $(cat /sys/class/misc/hw_random/rng_current)"; echo "hex $(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | od -An -tx1 | xargs | tr -d " ")"' \
	    -s 3,virtio-rnd
	expect_exit 1 "powered off after the command"
	expect_ok
	expect_line '^rng virtio_rng\.0$'
	expect_line '^hex [0-9a-f]{128}$'
	! tr -d '\r' <out | grep -qE '^hex 0{128}$' || fail_with_output "/dev/hwrng gave zeros"
}

atf_test_case hvtest_console_virtio
hvtest_console_virtio_head()
{
	atf_set descr "hvtest --console virtio: Linux examples (a command," \
	    "shares, a shell) pass with the console on hvc0 (not" \
	    "boot-and-run.hvt: hvc0 never shows the kernel's first line," \
	    "its 'kernel started' milestone)"
	atf_set timeout 1200
}
hvtest_console_virtio_body()
{
	setup
	need_device virtio-console
	need_device virtio-9p
	ex=$top/harness/examples/linux
	"$top/harness/hvtest" -j 2 --console virtio --results "$(pwd)/results" \
	    "$ex/command.hvt" "$ex/share.hvt" "$ex/hvc0.hvt" >out 2>err
	rc=$?
	[ "$rc" -eq 0 ] && grep -q '^3 passed, 0 failed$' out ||
	    fail_with_output "hvtest exited $rc"
	grep -rq 'virtio-console,console=stdio' results ||
	    fail_with_output "no test ran with virtio-console"
}

atf_test_case hostroot
hostroot_head()
{
	atf_set descr "fixtures/hostroot: the kernel boots with the host's /" \
	    "read-only over virtio-9p under a tmpfs overlay: the guest runs" \
	    "the host's python3 and sees its /etc/debian_version, its writes" \
	    "stay in the overlay, modprobe loads a module of the kernel's"
	atf_set timeout 900
}
hostroot_body()
{
	setup
	need_device virtio-9p
	LINUX=$("$top/fixtures/hostroot/build.sh" 2>build.err) ||
	    atf_fail "fixtures/hostroot/build.sh failed: $(cat build.err)"
	[ -x /usr/bin/python3 ] && [ -r /etc/debian_version ] ||
	    atf_skip "the host has no /usr/bin/python3 or /etc/debian_version"
	command -v modprobe >/dev/null ||
	    atf_skip "the host has no modprobe (apt-get install kmod)"
	probe=/etc/bhyve-hostroot-probe
	[ ! -e "$probe" ] || atf_fail "$probe exists on the host before the test"
	# Its cmdline is console=ttyS0 and hostroot.modules=... (boot adds
	# console= again); its bhyve-args, the root share, are passed here.
	BOOT_ARGS=$(cat "$LINUX/cmdline")
	LINUX_TIMEOUT=600
	RUN_TIMEOUT=$LINUX_TIMEOUT
	# The script reaches the guest through a second share (the guest's
	# /tmp, where kyua works, is its own tmpfs).
	cat >guest.sh <<'GUEST'
echo "debian $(cat /etc/debian_version)"
/usr/bin/python3 -c 'print(6 * 7)'
echo overlay >/etc/bhyve-hostroot-probe && echo "wrote $(cat /etc/bhyve-hostroot-probe)"
grep ' / ' /proc/mounts
modprobe dummy && grep '^dummy ' /proc/modules
GUEST
	boot v-hostroot "sh /mnt/work/guest.sh" -s 19:0,virtio-9p,hostroot=/,ro \
	    -s 20:0,virtio-9p,work="$(pwd -P)"
	expect_exit 1 "powered off after the command"
	expect_ok
	expect_line '^hostroot: / is the host.s, read-only, under a tmpfs overlay$'
	expect_line '^9p: work on /mnt/work$'
	expect_line "^debian $(cat /etc/debian_version)\$"
	expect_line '^42$'
	expect_line '^wrote overlay$'
	expect_line '^overlay / overlay '
	expect_line '^dummy '
	[ ! -e "$probe" ] || fail_with_output "the guest's write reached the host: $probe"
}

atf_init_test_cases()
{
	atf_add_test_case read_write
	atf_add_test_case read_only
	atf_add_test_case escapes
	atf_add_test_case big_file
	atf_add_test_case missing_share
	atf_add_test_case hvc0
	atf_add_test_case hwrng
	atf_add_test_case hvtest_console_virtio
	atf_add_test_case hostroot
}
