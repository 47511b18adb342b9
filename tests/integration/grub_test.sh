#! /usr/bin/env atf-sh
#
# grub-bhyve: it loads our multiboot guest (fixtures/guests/mbhello.S) with
# multiboot/module/boot and bhyve runs it; its shell prints GRUB's error
# texts through a pipe and exits 1 when the input ends without a boot; a
# grub.cfg on (host) with two entries and default=1 boots the second;
# vmrun.sh's install path (-i -I) boots the medium, then the installed disk
# (with a stub bhyve: that case needs no KVM).
#
# Each case uses a private instance directory (BHYVE_VMM_DIR under the
# case's work directory) and -d pointing into the work directory, so no
# grub.cfg of the host is ever read. Cases that run bhyve need /dev/kvm:
# `make check` runs them nested under QEMU on hosts without it. Without it
# they fail, never skip.

# A list of arguments, split where it is used.
# shellcheck disable=SC2086
BHYVE_ARGS="-c 1 -m 32M -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio"

# Paths and the private instance directory.
setup()
{
	top=$(atf_get_srcdir)/../..
	BIN=$top/build/bin
	GUESTS=$top/build/guests
	BHYVE_VMM_DIR=$(pwd)/vmm
	export BHYVE_VMM_DIR
	for b in grub-bhyve bhyve; do
		[ -x "$BIN/$b" ] || atf_fail "$BIN/$b is missing: run make"
	done
	[ -f "$GUESTS/mbhello.elf" ] ||
	    atf_fail "$GUESTS/mbhello.elf is missing: run make guests"
}

need_kvm()
{
	[ -c /dev/kvm ] || atf_fail "/dev/kvm is missing: run the" \
	    "integration tests with 'make check', which runs them nested" \
	    "under QEMU (harness/nested) on hosts without KVM"
}

# Show what grub-bhyve and bhyve printed, then fail.
fail_with_output()
{
	for f in gout gerr out err; do
		[ -f $f ] || continue
		echo "--- $f ---" >&2
		cat $f >&2
	done
	atf_fail "$*"
}

# grub VMNAME ARGS...: grub-bhyve with stdin as given (a file: at the end
# of a pipeline this would run in a subshell); ./gout, ./gerr, $grc.
grub()
{
	vm=$1
	shift
	timeout 60 "$BIN/grub-bhyve" -d "$(pwd)/no-grub-cfg" "$@" "$vm" \
	    >gout 2>gerr
	grc=$?
}

expect_grub_out()
{
	grep -qF -- "$1" gout ||
	    fail_with_output "grub-bhyve's output lacks '$1'"
}

# The guest's way of saying it passed: debug-exit when bhyve has it,
# otherwise ACPI power-off.
pass_status()
{
	if "$BIN/bhyve" -l help 2>/dev/null | grep -q '^debug-exit'; then
		BHYVE_ARGS="$BHYVE_ARGS -l debug-exit"
		pass=33 # (0x10 << 1) | 1
	else
		pass=1
	fi
}

# run_bhyve VMNAME: console to ./out, errors to ./err, status in $rc.
run_bhyve()
{
	timeout 60 "$BIN/bhyve" $BHYVE_ARGS "$1" </dev/null >out 2>err
	rc=$?
}

expect_guest()
{
	[ "$rc" -ne 124 ] ||
	    fail_with_output "bhyve did not exit within 60 s"
	[ "$rc" -eq "$pass" ] ||
	    fail_with_output "bhyve exited $rc, expected $pass (the guest" \
		"reports success)"
	for line in "$@"; do
		grep -qF -- "$line" out ||
		    fail_with_output "the guest did not print '$line'"
	done
	! grep -q FAIL out || fail_with_output "the guest reported a failure"
}

atf_test_case multiboot
multiboot_head()
{
	atf_set descr "grub-bhyve loads a multiboot ELF kernel and a" \
	    "module; bhyve runs it and the guest sees its command line," \
	    "module, memory sizes and the loader's name"
}
multiboot_body()
{
	setup
	need_kvm
	pass_status
	printf 'module data line\nmore\n' >mod.txt
	printf 'multiboot (host)%s arg1\nmodule (host)%s modarg\nboot\n' \
	    "$GUESTS/mbhello.elf" "$(pwd)/mod.txt" >cmds
	grub t-mb -M 32M <cmds
	[ "$grc" -eq 0 ] ||
	    fail_with_output "grub-bhyve exited $grc, expected 0 (booted)"
	run_bhyve t-mb
	expect_guest "cmdline: (host)$GUESTS/mbhello.elf arg1" \
	    "mods: 1" \
	    "mod0: (host)$(pwd)/mod.txt modarg" \
	    "mod0 data: module data line" \
	    "mem_lower: 640 KiB" \
	    "mem_upper: 31744 KiB" \
	    "loader: grub-bhyve" \
	    "mbhello ok"
}

atf_test_case shell_errors
shell_errors_head()
{
	atf_set descr "GRUB's error texts through a pipe; the shell goes on;" \
	    "the end of input without a boot exits 1; a bad device.map" \
	    "names its file and line"
}
shell_errors_body()
{
	setup
	printf 'foo bar\nlinux /nonexistent/vmlinuz\nls\nboot\necho done\n' \
	    >cmds
	grub t-err -M 32M <cmds
	[ "$grc" -eq 1 ] ||
	    fail_with_output "grub-bhyve exited $grc, expected 1 (no boot)"
	expect_grub_out "error: can't find command 'foo'."
	expect_grub_out "error: file '/nonexistent/vmlinuz' not found."
	expect_grub_out "(host)"
	expect_grub_out "error: you need to load the kernel first."
	expect_grub_out "done"
	grep -q "no kernel was booted" gerr ||
	    fail_with_output "grub-bhyve did not say that nothing booted"
	# Nothing to boot: bhyve refuses the instance.
	"$BIN/bhyve" $BHYVE_ARGS t-err </dev/null >out 2>err
	grep -q "nothing to boot" err ||
	    fail_with_output "bhyve ran an instance grub-bhyve never booted"

	printf '(hd0) /dev/null\n(hd1 /dev/null\n' >bad.map
	grub t-err -M 32M -m "$(pwd)/bad.map" </dev/null
	if [ "$grc" -ne 1 ] || [ "$(wc -l <gerr)" -ne 1 ]; then
		fail_with_output "a bad device.map: expected one error line"
	fi
	grep -qF "bad.map:2:" gerr ||
	    fail_with_output "the error does not name bad.map:2"

	printf '(hd0) /dev/null\n' >good.map
	printf 'ls\nls (hd0)\n' >cmds
	grub t-err -M 32M -m "$(pwd)/good.map" <cmds
	expect_grub_out "(host) (hd0)"
	expect_grub_out "Device hd0: No known filesystem detected"
}

atf_test_case menu_default
menu_default_head()
{
	atf_set descr "a grub.cfg on (host) with two menuentries and" \
	    "default=1 boots the second entry"
}
menu_default_body()
{
	setup
	need_kvm
	pass_status
	mkdir -p boot/grub
	cat >boot/grub/grub.cfg <<EOF
set default=1
set timeout=5
menuentry 'first' --class os {
	multiboot (host)$GUESTS/mbhello.elf first-entry
}
menuentry "second" --class os
{
	echo loading the second entry
	multiboot (host)$GUESTS/mbhello.elf second-entry
}
EOF
	timeout 60 "$BIN/grub-bhyve" -r host -d "$(pwd)/boot/grub" -M 32M \
	    t-menu </dev/null >gout 2>gerr
	grc=$?
	[ "$grc" -eq 0 ] ||
	    fail_with_output "grub-bhyve exited $grc, expected 0 (booted)"
	expect_grub_out "Booting 'second'"
	expect_grub_out "loading the second entry"
	run_bhyve t-menu
	expect_guest "cmdline: (host)$GUESTS/mbhello.elf second-entry" \
	    "mbhello ok"
	! grep -q first-entry out ||
	    fail_with_output "the first entry booted"
}

atf_test_case vmrun_install
vmrun_install_head()
{
	atf_set descr "vmrun.sh's install path as the Handbook writes it:" \
	    "-d linux.img -i -I install.iso runs the medium's grub.cfg" \
	    "(-r cd0) and gives bhyve the medium as ahci-cd; once the disk" \
	    "is installed, the next run boots the grub.cfg grub-bhyve finds" \
	    "on its first partition (-r hd0). bhyve is a stub: no KVM needed"
}
vmrun_install_body()
{
	setup
	command -v mkfs.ext4 >/dev/null ||
	    atf_fail "mkfs.ext4 is missing: apt-get install e2fsprogs"
	# bhyve's stand-in: its arguments to bhyve.args, then "powered off".
	printf '#!/bin/sh\necho "$*" >>"$STUB_ARGS"\nexit 1\n' >bhyve-stub
	chmod +x bhyve-stub
	STUB_ARGS=$(pwd)/bhyve.args
	export STUB_ARGS
	# The install medium: an ext4 image stands in for the ISO (grub-bhyve
	# reads whatever file system (cd0) holds).
	mkdir -p iso/boot/grub disk/boot/grub
	cp "$GUESTS/mbhello.elf" iso/
	cp "$GUESTS/mbhello.elf" disk/boot/
	printf 'set timeout=5\nmenuentry Install {\n multiboot /mbhello.elf inst\n}\n' \
	    >iso/boot/grub/grub.cfg
	printf 'set default=1\nmenuentry Old { true; }\nmenuentry Installed {\n multiboot /boot/mbhello.elf disk\n}\n' \
	    >disk/boot/grub/grub.cfg
	mkfs.ext4 -q -F -d iso install.iso 4M >/dev/null 2>&1 &&
	    mkfs.ext4 -q -F -d disk root.img 4M >/dev/null 2>&1 ||
	    atf_fail "mkfs.ext4 -d failed"

	BHYVE=$(pwd)/bhyve-stub timeout 120 "$BIN/vmrun.sh" -c 1 -m 64M \
	    -d linux.img -i -I install.iso t-vmrun </dev/null >gout 2>gerr
	rc=$?
	[ "$rc" -eq 1 ] || fail_with_output "vmrun.sh exited $rc, expected" \
	    "1 (the stub bhyve's power-off)"
	expect_grub_out "Booting 'Install'"
	grep -q ',ahci-cd,install.iso' bhyve.args ||
	    fail_with_output "bhyve did not get the medium as ahci-cd"
	grep -q ',virtio-blk,linux.img' bhyve.args ||
	    fail_with_output "bhyve did not get the disk"
	[ "$(stat -c %s linux.img)" -eq $((8 << 30)) ] ||
	    fail_with_output "vmrun.sh did not create an 8G linux.img"

	# "Install": an MBR with partition 1 (type 0x83, from LBA 2048, 8192
	# sectors) holding the root file system.
	printf '\203' | dd of=linux.img bs=1 seek=450 conv=notrunc 2>/dev/null
	printf '\000\010\000\000\000\040\000\000' |
	    dd of=linux.img bs=1 seek=454 conv=notrunc 2>/dev/null
	printf '\125\252' | dd of=linux.img bs=1 seek=510 conv=notrunc 2>/dev/null
	dd if=root.img of=linux.img bs=1M seek=1 conv=notrunc 2>/dev/null
	: >bhyve.args
	BHYVE=$(pwd)/bhyve-stub timeout 120 "$BIN/vmrun.sh" -c 1 -m 64M \
	    -d linux.img -I install.iso t-vmrun </dev/null >gout 2>gerr
	rc=$?
	[ "$rc" -eq 1 ] || fail_with_output "vmrun.sh exited $rc on the" \
	    "installed disk, expected 1"
	expect_grub_out "Booting 'Installed'"
	! grep -q ahci-cd bhyve.args ||
	    fail_with_output "the installed disk's run still had the medium"
}

atf_init_test_cases()
{
	atf_add_test_case multiboot
	atf_add_test_case shell_errors
	atf_add_test_case menu_default
	atf_add_test_case vmrun_install
}
