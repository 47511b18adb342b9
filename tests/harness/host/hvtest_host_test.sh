#! /usr/bin/env atf-sh
#
# hvtest on the host itself, never nested by the caller: without a usable
# /dev/kvm (forced here with BHYVE_NESTED_TESTS=1) it runs the whole suite
# inside one outer VM through harness/nested and says so in its first line.
# Included from tests/host/Kyuafile (one outer VM boot, 10-30 s).

atf_test_case nests_whole_suite
nests_whole_suite_head()
{
	atf_set descr "BHYVE_NESTED_TESTS=1: one outer VM runs the whole suite; the first" \
	    "line says so; results and JUnit land in a shared directory"
	atf_set require.progs qemu-system-x86_64 cpio
	atf_set timeout 600
}
nests_whole_suite_body()
{
	top=$(cd "$(atf_get_srcdir)/../../.." && pwd -P)
	if [ -z "${BHYVE_CACHE:-}" ]; then
		BHYVE_CACHE=$(getent passwd "$(id -u)" | cut -d: -f6)/.cache/bhyve-linux
		export BHYVE_CACHE
	fi
	# The work directory is under /tmp, hidden inside the outer VM:
	# hvtest must share it for the results.
	BHYVE_NESTED_TESTS=1 "$top/harness/hvtest" -j 2 --results "$(pwd)/res" \
	    --junit "$(pwd)/junit.xml" "$top/harness/examples/hello.hvt" \
	    "$top/harness/examples/echo-quit.hvt" >out 2>err
	rc=$?
	if [ "$rc" -ne 0 ] || ! head -n 1 out | grep -q 'running the suite nested under QEMU (harness/nested), in one outer VM: 2 tests$'; then
		cat out err >&2
		atf_fail "hvtest exited $rc or did not say it nests"
	fi
	[ "$(grep -c 'running the suite nested' out)" -eq 1 ] || atf_fail "more than one outer VM"
	[ "$(tail -n 1 out)" = "2 passed, 0 failed" ] || { cat out >&2; atf_fail "wrong summary"; }
	[ -f res/summary.txt ] && [ -f junit.xml ] || atf_fail "no results in the shared directory"
}

atf_init_test_cases()
{
	atf_add_test_case nests_whole_suite
}
