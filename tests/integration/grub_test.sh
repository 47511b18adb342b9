#! /usr/bin/env atf-sh
#
# grub-bhyve: it loads our multiboot guest (fixtures/guests/mbhello.S) with
# multiboot/module/boot and bhyve runs it; its shell prints GRUB's error
# texts through a pipe and exits 1 when the input ends without a boot; a
# grub.cfg on (host) with two entries and default=1 boots the second.
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

atf_init_test_cases()
{
	atf_add_test_case multiboot
	atf_add_test_case shell_errors
	atf_add_test_case menu_default
}
