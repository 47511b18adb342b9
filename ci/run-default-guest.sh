#!/bin/bash
# `make run`: boot the default guest with its console on this terminal,
# nested under QEMU when this machine has no usable /dev/kvm.
#
# Until the Linux guest lands, the default guest is the echo test guest:
# it echoes what you type; a line "quit" powers it off (bhyve exits 1).
set -euo pipefail
cd "$(dirname "$0")/.."
B=$PWD/build

boot() {
	local vm=default-$$
	export BHYVE_VMM_DIR=${BHYVE_VMM_DIR:-/tmp/bhyve-run-$$}
	"$B/bin/rawload" -m 32M $(cat "$B/guests/echo.args") \
		"$B/guests/echo.bin" "$vm"
	echo "bhyve: booting the echo guest; type text, 'quit' + Enter ends it" >&2
	set +e
	"$B/bin/bhyve" -c 1 -m 32M -s 0:0,hostbridge -s 1:0,lpc \
		-l com1,stdio "$vm"
	local rc=$?
	"$B/bin/bhyvectl" --destroy --vm="$vm" 2>/dev/null
	echo "bhyve exited with status $rc" >&2
	return $rc
}

. ci/kvm.sh
if [ "${1:-}" = "--inside" ] || kvm_usable; then
	boot
else
	echo "run: $(kvm_why_nested): booting nested under QEMU (harness/nested)" >&2
	exec harness/nested -- "$PWD/ci/run-default-guest.sh" --inside
fi
