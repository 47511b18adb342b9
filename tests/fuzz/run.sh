#!/bin/sh
# Run the fuzz targets one after another (make fuzz-run):
#
#   tests/fuzz/run.sh [TARGET...]     default: every build/fuzz/fuzz_*
#
# Each target starts from its seed corpus, copied to a scratch directory
# (tests/fuzz/seeds/NAME/ from the tree, plus what tests/fuzz/NAME_seeds.py
# or NAME_seeds.sh makes), and runs for FUZZ_TIME seconds (default 60) with
# a 10 s per-input timeout, an RSS limit and ASan's leak check on. One line
# per target gives executions per second and coverage (cov: and ft: from
# libFuzzer's last status line). Any crash, leak, timeout or out-of-memory
# fails the run (exit 1) and names the target and the input that did it;
# the log is next to it. Scratch: FUZZ_OUT (default build/fuzz/run).
# One fuzzer at a time, one process each: no -jobs, no -workers.
set -u
here=$(cd "$(dirname "$0")" && pwd -P)
top=$(cd "$here/../.." && pwd -P)
bin=${FUZZ_BIN:-$top/build/fuzz}
out=${FUZZ_OUT:-$top/build/fuzz/run}
time=${FUZZ_TIME:-60}
rss=${FUZZ_RSS_MB:-2048}

# The seed generator for a target: NAME_seeds.{py,sh}, or the one it shares.
seed_script() {
	case $1 in
	virtio_blk_race) echo "$here/virtio_blk_seeds.py" ;;
	grub_ext | grub_fat | grub_iso | grub_part) echo "$here/grub_seeds.sh" ;;
	*)
		for s in "$here/$1_seeds.py" "$here/$1_seeds.sh"; do
			[ -f "$s" ] && { echo "$s"; return; }
		done
		;;
	esac
}

# Fill corpus dir $2 for target name $1.
seed() {
	name=$1 corpus=$2
	mkdir -p "$corpus"
	[ -d "$here/seeds/$name" ] && cp "$here/seeds/$name"/* "$corpus"/ 2>/dev/null
	gen=$(seed_script "$name")
	[ -n "$gen" ] || return 0
	case $gen in *.py) run="python3" ;; *) run="sh" ;; esac
	case $name in
	grub_ext | grub_fat | grub_iso | grub_part)
		sub=${name#grub_}
		$run "$gen" "$corpus.gen" >/dev/null 2>&1 &&
			cp "$corpus.gen/$sub"/* "$corpus"/
		rm -rf "$corpus.gen"
		;;
	*) $run "$gen" "$corpus" >/dev/null 2>&1 ;;
	esac || echo "fuzz-run: $name: $gen failed; fuzzing from what seeds there are" >&2
}

if [ $# -eq 0 ]; then
	for b in "$bin"/fuzz_*; do
		case $b in *.*) ;; *) [ -x "$b" ] && set -- "$@" "${b##*/}" ;; esac
	done
fi
[ $# -gt 0 ] || { echo "fuzz-run: no targets in $bin: run make fuzz" >&2; exit 1; }

fail=0
printf '%-22s %6s %10s %10s %8s %8s %s\n' target status execs exec/s cov ft corpus
for t in "$@"; do
	t=${t##*/}
	name=${t#fuzz_}
	dir=$out/$t
	rm -rf "$dir"
	mkdir -p "$dir"
	seed "$name" "$dir/corpus"
	nseed=$(find "$dir/corpus" -type f | wc -l)
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		"$bin/$t" -max_total_time="$time" -timeout=10 \
		-rss_limit_mb="$rss" -detect_leaks=1 -print_final_stats=1 \
		-artifact_prefix="$dir/" "$dir/corpus" >"$dir/log" 2>&1
	rc=$?
	art=
	for a in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*; do
		[ -e "$a" ] && art=${a##*/} && break
	done
	last=$(grep -E '^#[0-9]+' "$dir/log" | grep ' cov: ' | tail -1)
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p')
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log")
	status=ok
	if [ "$rc" -ne 0 ] || [ -n "$art" ]; then
		status=FAIL
		fail=1
	fi
	printf '%-22s %6s %10s %10s %8s %8s %s (%s seeds)\n' "$t" "$status" \
		"${execs:--}" "${eps:--}" "${cov:--}" "${ft:--}" "${corp:--}" "$nseed"
	if [ "$status" = FAIL ]; then
		echo "fuzz-run: $t failed (exit $rc): ${art:+$dir/$art }log $dir/log" >&2
		grep -m1 -E 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error|SUMMARY' \
			"$dir/log" >&2
	fi
done
exit $fail
