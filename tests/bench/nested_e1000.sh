#!/bin/bash
# nested_e1000.sh [N] [MIB] [CPUS]: boot the default Linux guest N times
# (default 6) with an e1000 on a tap, and have it send MIB MiB (default
# 10) over TCP to a sink on the host's side of a bridge, with CPUS vCPUs
# (default 1). Each frame the guest sends costs several exits and an
# interrupt, so this is the heaviest exit load we know; under QEMU 7.2's
# TCG it is what breaks nested runs most often (docs/nested.md). A clean
# run powers off with the sink's SHA-256 equal to the guest's. Anything
# else is listed with bhyve's exit status, the last console lines and,
# for a run that overstays, the outer kernel's stacks of bhyve's threads.
# BHYVE_BENCH_NIC=virtio-net (or any bhyve NIC) sends through that
# instead; BHYVE_BENCH_TIMEOUT: seconds a run may take (default 150).
# Meant for inside harness/nested:
#   flock /tmp/bhyve-nested.lock harness/nested --timeout 3000 -- \
#       tests/bench/nested_e1000.sh 6 10
set -u
n=${1:-6} mib=${2:-10} cpus=${3:-1} tmo=${BHYVE_BENCH_TIMEOUT:-150}
nic=${BHYVE_BENCH_NIC:-e1000}
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$top/build/bin
linux=$("$top/fixtures/linux/build.sh") || exit 1
work=$(mktemp -d)
tap=tap81 br=bridge81 net=192.168.81
cleanup() {
	kill "$sink" 2>/dev/null
	ip link del $tap 2>/dev/null
	ip link del $br 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
export BHYVE_VMM_DIR=$work/vmm
ip link del $tap 2>/dev/null
ip link del $br 2>/dev/null
ip tuntap add $tap mode tap && ip link add $br type bridge &&
    ip link set $tap master $br && ip addr add $net.1/24 dev $br &&
    ip link set $tap up && ip link set $br up || exit 1
port=5081
python3 "$top/tests/integration/tcp_sink.py" $net.1 $port "$work/ready" \
    >"$work/sink.log" 2>&1 &
sink=$!
s=0 # python3 starts slowly nested: until the sink listens
while [ ! -e "$work/ready" ] && [ $s -lt 600 ]; do
	sleep 0.1
	s=$((s + 1))
done
cmd="dd if=/dev/urandom of=/tmp/o bs=1M count=$mib 2>/dev/null; echo \"out \$(sha256sum </tmp/o)\"; echo \"posted \$(nc $net.1 $port </tmp/o)\""
cmd=$(printf '%s' "$cmd" | sed 's/[^A-Za-z0-9 _.,:=\/+-]/\\&/g') # grub's quoting
ok=0
for i in $(seq 1 "$n"); do
	d=$work/$i vm=e1k$i
	mkdir -p "$d"
	printf 'linux (host)%s/vmlinux console=ttyS0 quiet ip=%s.2/24 -- %s\ninitrd (host)%s/initramfs.cpio\nboot\n' \
	    "$linux" "$net" "$cmd" "$linux" | "$bin/grub-bhyve" -r host -M 512M "$vm" >"$d/grub" 2>&1
	t0=$EPOCHREALTIME
	"$bin/bhyve" -c "$cpus" -m 512M -A -H -P -s 0:0,hostbridge -s 1:0,lpc \
	    -s "2,$nic,$tap" -l com1,stdio "$vm" </dev/null >"$d/out" 2>"$d/err" &
	pid=$!
	s=0
	while kill -0 $pid 2>/dev/null && [ $s -lt "$tmo" ]; do
		sleep 1
		s=$((s + 1))
	done
	if kill -0 $pid 2>/dev/null; then
		echo "run $i: HUNG after $tmo s; bhyve's threads in the outer kernel:"
		for t in /proc/$pid/task/*; do
			echo "    $(cat "$t/comm") $(sed 's/.*) //; s/ .*//' "$t/stat")"
			sed 's/^/        /' "$t/stack" 2>/dev/null | head -n 8
		done
		for k in 1 2; do # moving, or stuck?
			echo "    the tap and the sink's socket ($k of 2):"
			ip -s link show $tap | sed 's/^/        /'
			ss -tni "sport = :$port" | sed 's/^/        /'
			sleep 3
		done
		kill -9 $pid
		wait $pid 2>/dev/null
		tail -n 5 "$d/out" | sed 's/^/    /'
		continue
	fi
	wait $pid
	rc=$? t1=$EPOCHREALTIME
	sum=$(tr -d '\r' <"$d/out" | sed -n 's/^out \([0-9a-f]*\) .*/\1/p')
	if [ $rc = 1 ] && [ -n "$sum" ] && tr -d '\r' <"$d/out" | grep -q "^posted $sum\$"; then
		ok=$((ok + 1))
		printf 'run %d: ok %.1f s\n' "$i" "$(echo "$t1 - $t0" | bc)"
	else
		echo "run $i: FAIL exit $rc"
		tail -n 5 "$d/out" "$d/err" | sed 's/^/    /'
	fi
done
echo "$ok of $n clean"
echo "the tap afterwards, and softnet_stat (processed, dropped, squeezed):"
ip -s link show $tap | sed 's/^/    /'
c=0
while read -r a b d _; do
	echo "    cpu$c $((16#$a)) $((16#$b)) $((16#$d))"
	c=$((c + 1))
done </proc/net/softnet_stat
