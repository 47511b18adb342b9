#! /usr/bin/env atf-sh
#
# hvtest with the Linux guest (fixtures/linux, booted by grub-bhyve): it
# boots and runs commands, runs a command from its kernel command line,
# survives a reboot with its disk, and hvtest reports a panic and a hang as
# failures, with the panic in the report. Needs /dev/kvm that runs Linux:
# `make check` runs it nested under QEMU on hosts without one. Fails (never
# skips) while grub-bhyve or the Linux fixture is missing.

setup()
{
	top=$(cd "$(atf_get_srcdir)/../.." && pwd -P)
	HVTEST=$top/harness/hvtest
	EX=$top/harness/examples/linux
	CASES=$top/tests/harness/cases
	# Work in a directory of our own: kyua runs each case in a fresh work
	# directory (TMPDIR points into it), but a case run by hand would leave
	# out, err and results wherever it started (once, in tests/harness, to
	# be committed by mistake).
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/hvtest_linux_test.XXXXXX") || atf_fail "mktemp failed"
	trap 'rm -rf "$WORK"' EXIT
	cd "$WORK" || atf_fail "cannot enter $WORK"
	RES=$WORK/results
	[ -x "${HVTEST_BIN:-$top/build/bin}/grub-bhyve" ] || atf_fail "grub-bhyve is not built: run make"
	[ -x "$top/fixtures/linux/build.sh" ] || atf_fail "fixtures/linux/build.sh is missing"
	# kyua points HOME at the work directory: keep the fixture cache at home.
	if [ -z "${BHYVE_CACHE:-}" ]; then
		BHYVE_CACHE=$(getent passwd "$(id -u)" | cut -d: -f6)/.cache/bhyve-linux
		export BHYVE_CACHE
	fi
}

run_hvtest()
{
	"$HVTEST" --results "$RES" "$@" >out 2>err
	rc=$?
}

show_fail()
{
	echo "--- hvtest stdout ---" >&2
	cat out >&2
	echo "--- hvtest stderr ---" >&2
	cat err >&2
	atf_fail "$*"
}

expect_line()
{
	grep -Eq -- "$1" out || show_fail "no line matching '$1' in hvtest's output"
}

linux_head()
{
	atf_set timeout 1200
}

atf_test_case boot_and_run
boot_and_run_head()
{
	atf_set descr "The Linux guest boots, runs commands with checked statuses, powers off;" \
	    "the report shows the kernel-started and userspace-up milestones"
	linux_head
}
boot_and_run_body()
{
	setup
	run_hvtest "$EX/boot-and-run.hvt"
	[ "$rc" -eq 0 ] || show_fail "hvtest exited $rc"
	expect_line 'PASS .*boot-and-run \([0-9.]+s\) \[kernel started [0-9.]+s, userspace up [0-9.]+s, commands ran [0-9.]+s'
	# Init and the test's command reported through the milestone port.
	grep -rqE 'milestone: userspace up at [0-9.]+ s \(port\)' "$RES" ||
	    show_fail "no 'userspace up' milestone from the port in the transcript"
	grep -rqE 'milestone: commands ran at [0-9.]+ s \(port\)' "$RES" ||
	    show_fail "no 'commands ran' milestone from the port in the transcript"
}

atf_test_case command
command_head()
{
	atf_set descr "The Linux guest runs the command after ' -- ' and reports its status"
	linux_head
}
command_body()
{
	setup
	run_hvtest "$EX/command.hvt"
	[ "$rc" -eq 0 ] || show_fail "hvtest exited $rc"
}

atf_test_case disk_reboot
disk_reboot_head()
{
	atf_set descr "Boot, write to a disk, reboot, and find what was written"
	linux_head
}
disk_reboot_body()
{
	setup
	run_hvtest "$EX/disk-reboot.hvt"
	[ "$rc" -eq 0 ] || show_fail "hvtest exited $rc"
}

atf_test_case net_http
net_http_head()
{
	atf_set descr "net user and forward (virtio-net and e1000): the guest's httpd," \
	    "fetched by a host step through the forwarded port"
	linux_head
}
net_http_body()
{
	setup
	run_hvtest "$EX/net-http.hvt" "$EX/net-http-e1000.hvt"
	[ "$rc" -eq 0 ] || show_fail "hvtest exited $rc"
	expect_line 'PASS .*net-http '
	expect_line 'PASS .*net-http-e1000 '
}

atf_test_case panic
panic_head()
{
	atf_set descr "A guest that panics is a failure with the panic in the report"
	linux_head
}
panic_body()
{
	setup
	run_hvtest "$CASES/linux-panic.hvt"
	[ "$rc" -eq 1 ] || show_fail "hvtest exited $rc, expected 1"
	expect_line 'FAIL .*linux-panic .*: the guest kernel panicked'
	expect_line '^    .*(Kernel panic - not syncing|sysrq)'
}

atf_test_case hang
hang_head()
{
	atf_set descr "A Linux guest whose command hangs is stopped at the test's timeout"
	linux_head
}
hang_body()
{
	setup
	"$HVTEST" --results "$RES" "$CASES/linux-hang.hvt" >out 2>err &
	hv=$!
	wait $hv
	rc=$?
	[ "$rc" -eq 1 ] || show_fail "hvtest exited $rc, expected 1"
	expect_line "FAIL .*linux-hang .*test timeout \(45 s\) reached .*\(hung\?\): stopped it"
	if pgrep -f "hvt$hv-" >/dev/null; then
		show_fail "processes of hvtest's VM are still running"
	fi
}

atf_init_test_cases()
{
	atf_add_test_case boot_and_run
	atf_add_test_case command
	atf_add_test_case disk_reboot
	atf_add_test_case net_http
	atf_add_test_case panic
	atf_add_test_case hang
}
