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

# boot VMNAME CMDLINE BHYVE-ARGS...: load the default guest with grub-bhyve
# (its command line CMDLINE after " -- ", BOOT_ARGS before it), run bhyve
# with BOOT_CPUS vCPUs (default 1), the console to ./out and errors to
# ./err; status in $rc. BOOT_CONSOLE=virtio: no com1, the console is the
# guest's hvc0 on -s 31,virtio-console,console=stdio.
boot()
{
	vm=$1 cmd=$2
	shift 2
	if [ "${BOOT_CONSOLE:-com1}" = virtio ]; then
		console=hvc0
		set -- -s 31,virtio-console,console=stdio "$@"
	else
		console=ttyS0
		set -- -l com1,stdio "$@"
	fi
	printf 'linux (host)%s/vmlinux %s\ninitrd (host)%s/initramfs.cpio\nboot\n' \
	    "$LINUX" "$(grub_escape "console=$console quiet ${BOOT_ARGS:+$BOOT_ARGS }-- $cmd")" "$LINUX" |
	    "$BIN/grub-bhyve" -r host -M 512M "$vm" >grub.out 2>&1 ||
	    atf_fail "grub-bhyve $vm: $(cat grub.out)"
	timeout -k 10 $LINUX_TIMEOUT "$BIN/bhyve" -c "${BOOT_CPUS:-1}" \
	    -m 512M -A -H -P -s 0:0,hostbridge -s 1:0,lpc "$@" \
	    "$vm" </dev/null >out 2>err
	rc=$?
}

# payload FILE: a cpio archive of ./payload (scripts and modules the guest
# unpacks from a disk), padded to whole sectors.
payload()
{
	(cd payload && find . | cpio --quiet -o -H newc) >"$1" ||
	    atf_fail "cannot make the payload archive"
	truncate -s %4096 "$1"
}

# expect_image IMAGE OFFSET STRING: the image holds STRING at byte OFFSET.
expect_image()
{
	got=$(dd if="$1" bs=1 skip="$2" count=${#3} 2>/dev/null)
	[ "$got" = "$3" ] ||
	    fail_with_output "$1 holds '$got' at $2, expected '$3'"
}
