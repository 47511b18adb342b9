#!/bin/bash
# pio_ab.sh OLD-TREE NEW-TREE: the port-I/O exit cost of two built trees
# (make in each), alternating in one run so both see the same (nested)
# machine: ROUNDS rounds of a median of 5 bhyve runs of N OUTs and of 0,
# (T(N) - T(0)) / N each, as tests/bench/run.sh's pio. Nested:
#   harness/nested --share OLD -- tests/bench/pio_ab.sh OLD "$PWD"
set -eu
N=${N:-100000}
ROUNDS=${ROUNDS:-3}
[ $# -eq 2 ] || { echo "usage: pio_ab.sh OLD-TREE NEW-TREE" >&2; exit 2; }
BHYVE_VMM_DIR=$(mktemp -d /tmp/pio-ab.XXXXXX)
export BHYVE_VMM_DIR
trap 'rm -rf "$BHYVE_VMM_DIR"' EXIT
now() { date +%s%N; }
once() { # tree count
	"$1/build/bin/rawload" -m 16M $(cat "$1/build/guests/piobench.args") \
		-r rcx="$2" "$1/build/guests/piobench.bin" ab >/dev/null
	t0=$(now)
	"$1/build/bin/bhyve" -m 16M -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio \
		ab >/dev/null || true
	t1=$(now)
	echo $((t1 - t0))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for round in $(seq "$ROUNDS"); do
	for tree in "$1" "$2"; do
		z=$(for i in 1 2 3 4 5; do once "$tree" 0; done | median)
		n=$(for i in 1 2 3 4 5; do once "$tree" "$N"; done | median)
		echo "round $round $tree: $(((n - z) / N)) ns/exit"
	done
done
