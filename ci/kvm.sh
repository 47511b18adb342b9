# Sourced by ci/ and tests/bench scripts: may this host run guests on its
# own /dev/kvm, or must they run nested under QEMU (harness/nested)?
#
# Some cloud VMs expose a /dev/kvm backed by kvm_pvm (a paging-based KVM
# that runs our tiny test guests but not a stock Linux kernel: a Debian
# kernel hangs in its decompressor there). That counts as "no KVM".
# BHYVE_NESTED_TESTS=1 forces nesting; BHYVE_DIRECT=1 forces direct runs.
kvm_usable() {
	[ "${BHYVE_NESTED_TESTS:-0}" = 1 ] && return 1
	[ "${BHYVE_DIRECT:-0}" = 1 ] && return 0
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
	[ ! -d /sys/module/kvm_pvm ]
}

kvm_why_nested() {
	if [ "${BHYVE_NESTED_TESTS:-0}" = 1 ]; then
		echo "BHYVE_NESTED_TESTS=1"
	elif [ ! -e /dev/kvm ]; then
		# kvm_pvm can be loaded without having made a /dev/kvm.
		if [ -d /sys/module/kvm_pvm ]; then
			echo "no /dev/kvm here (the kvm_pvm module is loaded but made none)"
		else
			echo "no /dev/kvm here"
		fi
	elif [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
		echo "/dev/kvm is not readable and writable by $(id -un) (join its group, usually kvm)"
	elif [ -d /sys/module/kvm_pvm ]; then
		echo "/dev/kvm here is kvm_pvm, which cannot run a stock Linux guest"
	else
		echo "no usable /dev/kvm here"
	fi
}
