# linux_lib.sh: what the ATF programs that boot the default Linux guest
# (fixtures/linux) share; they source it. Sets LINUX_TIMEOUT (seconds a
# bhyve run may take) unless the program did.

: "${LINUX_TIMEOUT:=300}"
RUN_TIMEOUT=$LINUX_TIMEOUT
. "$(atf_get_srcdir)/bhyve_lib.sh"

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

