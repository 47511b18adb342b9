#!/bin/sh
# ci/check-includes.sh on this tree and on copies with one deliberate
# violation each: the tree passes, every violation fails naming its file.
# TAP output, as make check's unit programs print it.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
check="$here/ci/check-includes.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fails=0

tap() { # OK? NAME
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		fails=$((fails + 1))
	fi
}

# A fresh copy of the sources with LINE appended to FILE; the check must
# fail and name FILE.
violates() { # FILE LINE NAME
	rm -rf "$tmp/t" && mkdir -p "$tmp/t" && cp -r "$here/src" "$tmp/t/"
	echo "$2" >>"$tmp/t/$1"
	out=$("$check" "$tmp/t" 2>&1)
	rc=$?
	[ $rc -ne 0 ] && echo "$out" | grep -q "^$1:"
	tap $? "$3"
}

echo "1..6"
"$check" "$here" >/dev/null 2>&1
tap $? "the tree's includes go one way"
violates src/devices/pm.c '#include "acpi.h"' \
	"a device including a front-end header fails"
violates src/hv/core/machine.c '#include "pci_emul.h"' \
	"the runtime including a device header fails"
violates src/hv/core/e820.c '#include "mptbl.h"' \
	"the runtime including a front-end header fails"
violates src/kmod/vmm_kvm.c '#include "config.h"' \
	"the vmm layer including the runtime fails"
violates src/devices/rtc.c '#include "../hv/acpi.h"' \
	"a spelled-out path fails"
[ $fails -eq 0 ]
