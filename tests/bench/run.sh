#!/bin/bash
# Benchmarks (make bench). Not tests: they print numbers for BENCHMARKS.md.
#
# pio: the cost of one port-I/O exit round trip through bhyve, against the
#      raw KVM floor (tests/bench/kvmfloor.c) running the same guest code:
#      the piobench guest does N OUTs to port 0x80 (which bhyve emulates),
#      then powers off. Per-exit cost = (T(N) - T(0)) / N, median of 5.
# console: the cost of one console character through com1 (a THR write and
#      an LSR read), with KVM's coalesced PIO for THR writes on and off.
# boot: the default Linux guest's boot under bhyve and QEMU (boot.py;
#      BOOT=0 skips it, it takes about 8 minutes nested).
# disk: disk throughput and IOPS inside the guest, bhyve's virtio-blk,
#      ahci and nvme against QEMU's (disk.py; DISK=0 skips it, about
#      15 minutes nested).
# net: TCP throughput guest <-> host, bhyve's virtio-net and e1000 against
#      QEMU's, on a tap and on user-mode networking (net.py; NET=0 skips it).
# p9: virtio-9p, sequential and small-file, against QEMU's (p9.py; P9=0
#      skips it).
# Runs nested under QEMU when there is no /dev/kvm, like the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=$PWD/build
RUNS=${RUNS:-5}
N=${N:-100000}

. ci/kvm.sh
# --nested: run inside the outer QEMU VM even where /dev/kvm works here.
if [ "${1:-}" = "--nested" ] ||
	{ [ "${1:-}" != "--inside" ] && ! kvm_usable; }; then
	echo "bench: running nested under QEMU (harness/nested): $(kvm_why_nested)" >&2
	# The outer VM has no network: the Linux guest is built here first.
	if [ "${BOOT:-1}" = 1 ] || [ "${DISK:-1}" = 1 ] ||
		[ "${NET:-1}" = 1 ] || [ "${P9:-1}" = 1 ]; then
		fixtures/linux/build.sh >/dev/null
	fi
	# Two outer vCPUs: QEMU as the inner VMM (the reference) wedged on
	# one when this project began (docs/nested.md, "One outer vCPU");
	# comparisons stay within one outer VM.
	exec harness/nested --cpus 2 -- env RUNS="$RUNS" N="$N" BOOT="${BOOT:-1}" \
		DISK="${DISK:-1}" NET="${NET:-1}" P9="${P9:-1}" \
		"$PWD/tests/bench/run.sh" --inside
fi
echo "bench: on $(uname -r)${BHYVE_NESTED:+, nested in QEMU TCG}" >&2

export BHYVE_VMM_DIR=$(mktemp -d /tmp/bench-vmm.XXXXXX)
trap 'rm -rf "$BHYVE_VMM_DIR"' EXIT

now_ns() { date +%s%N; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# One bhyve run of a guest; prints elapsed ns.
bhyve_once() {
	local guest=$1 count=$2 extra=${3:-} t0 t1 rc
	"$B/bin/rawload" -m 16M $(cat "$B/guests/$guest.args") -r rcx="$count" \
		"$B/guests/$guest.bin" bench >/dev/null
	t0=$(now_ns)
	set +e
	"$B/bin/bhyve" -m 16M -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio \
		$extra bench >/dev/null
	rc=$?
	set -e
	t1=$(now_ns)
	[ "$rc" -eq 1 ] || { echo "bench: bhyve exited $rc (want 1)" >&2; exit 1; }
	echo $((t1 - t0))
}

floor_once() {
	local count=$1 t0 t1
	t0=$(now_ns)
	"$B/bin/kvmfloor" "$B/guests/piobench.bin" "$count" >/dev/null
	t1=$(now_ns)
	echo $((t1 - t0))
}

# Median over RUNS of a command's elapsed ns.
med() {
	local i
	for i in $(seq "$RUNS"); do "$@"; done | median
}

per_exit_ns() { echo $(( ($1 - $2) / N )); }

echo "bench: pio, $N exits, median of $RUNS" >&2
b0=$(med bhyve_once piobench 0)
bn=$(med bhyve_once piobench "$N")
f0=$(med floor_once 0)
fn=$(med floor_once "$N")
bhyve_ns=$(per_exit_ns "$bn" "$b0")
floor_ns=$(per_exit_ns "$fn" "$f0")
ratio=$(awk -v a="$bhyve_ns" -v b="$floor_ns" 'BEGIN {printf "%.3f", a / b}')

echo "| benchmark | bhyve | raw KVM floor | ratio |"
echo "| --- | --- | --- | --- |"
echo "| port-I/O exit round trip (ns, median of $RUNS, $N OUTs) | $bhyve_ns | $floor_ns | $ratio |"

if [ -f "$B/guests/conbench.bin" ]; then
	NC=${NC:-20000}
	echo "bench: console, $NC characters, median of $RUNS" >&2
	c0=$(med bhyve_once conbench 0 "-o lpc.com1.coalesce=false")
	coff=$(med bhyve_once conbench "$NC" "-o lpc.com1.coalesce=false")
	con=$(med bhyve_once conbench "$NC")
	echo "| console character, coalesced THR off (ns/char) | $(( (coff - c0) / NC )) | | |"
	echo "| console character, coalesced THR on (ns/char) | $(( (con - c0) / NC )) | | |"
fi

if [ "${BOOT:-1}" = 1 ]; then
	echo "bench: Linux boot, bhyve against QEMU (tests/bench/boot.py)" >&2
	RUNS=$RUNS tests/bench/boot.py
fi

if [ "${DISK:-1}" = 1 ]; then
	echo "bench: disks, bhyve against QEMU (tests/bench/disk.py)" >&2
	RUNS=$RUNS tests/bench/disk.py
fi

if [ "${NET:-1}" = 1 ]; then
	echo "bench: network, bhyve against QEMU (tests/bench/net.py)" >&2
	RUNS=$RUNS tests/bench/net.py
fi

if [ "${P9:-1}" = 1 ]; then
	echo "bench: virtio-9p, bhyve against QEMU (tests/bench/p9.py)" >&2
	RUNS=$RUNS tests/bench/p9.py
fi
