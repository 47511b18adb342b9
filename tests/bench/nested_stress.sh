#!/bin/bash
# nested_stress.sh [N] [CPUS] [PAR]: boot the default Linux guest N times
# (default 40) with CPUS vCPUs (default 4), PAR guests at once (default 1),
# and count the outcomes: a clean run prints "hvtest: exit status 0" and
# exits 1 (poweroff). Anything else is listed with its exit status and the
# last console lines. Meant for inside harness/nested, to compare outer
# VMMs (BHYVE_NESTED_QEMU) by how often nested guests break:
#   flock /tmp/bhyve-nested.lock harness/nested --timeout 3000 -- \
#       tests/bench/nested_stress.sh 60 4 2
set -u
n=${1:-40} cpus=${2:-4} par=${3:-1}
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$top/build/bin
linux=$("$top/fixtures/linux/build.sh") || exit 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export BHYVE_VMM_DIR=$work/vmm

one() { # one INDEX SLOT
	local d=$work/$1 vm=stress$2
	mkdir -p "$d"
	printf 'linux (host)%s/vmlinux console=ttyS0 quiet -- echo hello\ninitrd (host)%s/initramfs.cpio\nboot\n' \
	    "$linux" "$linux" | "$bin/grub-bhyve" -r host -M 512M "$vm" >"$d/grub" 2>&1
	local t0=$EPOCHREALTIME
	timeout -k 5 120 "$bin/bhyve" -c "$cpus" -m 512M -A -H -P -s 0:0,hostbridge \
	    -s 1:0,lpc -l com1,stdio "$vm" </dev/null >"$d/out" 2>"$d/err"
	local rc=$? t1=$EPOCHREALTIME
	if [ $rc = 1 ] && grep -q 'hvtest: exit status 0' "$d/out"; then
		printf 'run %d: ok %.2f s\n' "$1" "$(echo "$t1 - $t0" | bc)"
	else
		printf 'run %d: FAIL exit %d\n' "$1" $rc
		tail -n 5 "$d/out" "$d/err" | sed 's/^/    /'
	fi
}

i=0
while [ $i -lt "$n" ]; do
	for s in $(seq 1 "$par"); do
		[ $i -lt "$n" ] || break
		one $i "$s" &
		i=$((i + 1))
	done
	wait
done | tee "$work/log"
ok=$(grep -c ': ok' "$work/log")
echo "stress: $ok of $n clean ($cpus vCPUs, $par at once)"
