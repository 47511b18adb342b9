# linux_lib.sh: what the ATF programs that boot the default Linux guest
# (fixtures/linux) share; they source it. Sets LINUX_TIMEOUT (seconds a
# bhyve run may take) unless the program did.

: "${LINUX_TIMEOUT:=300}"

# Paths, the private instance directory and the guest; fail early without
# KVM or the binaries.
setup()
{
	top=$(atf_get_srcdir)/../..
	BIN=$top/build/bin
	BHYVE_VMM_DIR=$(pwd)/vmm
	export BHYVE_VMM_DIR
	[ -c /dev/kvm ] || atf_fail "/dev/kvm is missing: run the" \
	    "integration tests with 'make check', which runs them nested" \
	    "under QEMU (harness/nested) on hosts without KVM"
	if [ -d /sys/module/kvm_pvm ] && [ "${BHYVE_DIRECT:-0}" != 1 ]; then
		atf_fail "/dev/kvm here is kvm_pvm, which cannot run a stock" \
		    "Linux kernel: run the tests with 'make check', which" \
		    "nests them under QEMU (BHYVE_DIRECT=1 tries anyway)"
	fi
	for b in grub-bhyve bhyve bhyvectl; do
		[ -x "$BIN/$b" ] || atf_fail "$BIN/$b is missing: run make"
	done
	# kyua points HOME at the work directory: the guest's cache is in
	# the real home (or BHYVE_CACHE).
	if [ -z "${BHYVE_CACHE:-}" ]; then
		BHYVE_CACHE=$(getent passwd "$(id -u)" | cut -d: -f6)/.cache/bhyve-linux
		export BHYVE_CACHE
	fi
	LINUX=$("$top/fixtures/linux/build.sh" 2>build.err) ||
	    atf_fail "the Linux guest is not built and cannot be built" \
		"here: run fixtures/linux/build.sh on the host (make check" \
		"does): $(cat build.err)"
}

# A kernel command line as grub words: GRUB splits on spaces and reads
# quotes, $ and ; itself, so every other character goes backslashed.
grub_escape()
{
	printf '%s' "$1" | sed 's/[^A-Za-z0-9 _.,:=\/+-]/\\&/g'
}

# Show what the guest and bhyve printed (kept in the transcript), fail.
fail_with_output()
{
	echo "--- console (stdout) ---" >&2
	tr -d '\r' <out >&2
	echo "--- bhyve stderr ---" >&2
	cat err >&2
	atf_fail "$*"
}

expect_exit()
{
	[ "$rc" -eq "$1" ] && return
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		fail_with_output "bhyve did not exit within $LINUX_TIMEOUT s" \
		    "(expected exit $1, $2)"
	fi
	if [ "$rc" -gt 128 ]; then
		fail_with_output "bhyve died of signal $((rc - 128)), expected" \
		    "exit $1 ($2)"
	fi
	fail_with_output "bhyve exited $rc, expected $1 ($2)"
}

expect_console()
{
	grep -qF -- "$1" out ||
	    fail_with_output "console output lacks '$1'"
}

# expect_line REGEX: a console line (CR dropped) matches the extended
# regular expression.
expect_line()
{
	tr -d '\r' <out | grep -qE -- "$1" ||
	    fail_with_output "no console line matches /$1/"
}
