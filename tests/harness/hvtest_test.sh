#! /usr/bin/env atf-sh
#
# hvtest against real guests: the examples in harness/examples pass, the
# must-fail cases in tests/harness/cases fail with the right verdict, -j
# runs do not collide, nothing is left running, reports are well formed,
# kyua runs a directory of test files, and the expect(1) example works.
#
# These boot the tiny test guests (fixtures/guests), so they need /dev/kvm:
# `make check` runs them nested under QEMU when the host has none. The
# Linux-guest cases are in hvtest_linux_test.sh.

setup()
{
	top=$(cd "$(atf_get_srcdir)/../.." && pwd -P)
	HVTEST=$top/harness/hvtest
	EX=$top/harness/examples
	CASES=$top/tests/harness/cases
	# Work in a directory of our own: kyua runs each case in a fresh work
	# directory (TMPDIR points into it), but a case run by hand would leave
	# out, err and results wherever it started (once, in tests/harness, to
	# be committed by mistake).
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/hvtest_test.XXXXXX") || atf_fail "mktemp failed"
	trap 'rm -rf "$WORK"' EXIT
	cd "$WORK" || atf_fail "cannot enter $WORK"
	RES=$WORK/results
	for b in bhyve bhyvectl rawload; do
		[ -x "${HVTEST_BIN:-$top/build/bin}/$b" ] || atf_fail "$b is not built: run make"
	done
	[ -f "$top/build/guests/hello.bin" ] || atf_fail "the test guests are not built: run make"
}

# run_hvtest ARGS...: hvtest's output in ./out, its status in $rc.
run_hvtest()
{
	"$HVTEST" --results "$RES" "$@" >out 2>err
	rc=$?
}

show_fail()
{
	echo "--- hvtest stdout ---" >&2
	cat out >&2
	echo "--- hvtest stderr ---" >&2
	cat err >&2
	atf_fail "$*"
}

# expect_line REGEX: some line of ./out matches (grep -E).
expect_line()
{
	grep -Eq -- "$1" out || show_fail "no line matching '$1' in hvtest's output"
}

atf_test_case examples
examples_head()
{
	atf_set descr "The tiny-guest examples pass: console, send, reboots, exit statuses, milestones"
}
examples_body()
{
	setup
	run_hvtest -j 2 "$EX/hello.hvt" "$EX/echo.hvt" "$EX/echo-quit.hvt" \
	    "$EX/reboot-twice.hvt" "$EX/exit-statuses.hvt" "$EX/milestones.hvt"
	[ "$rc" -eq 0 ] || show_fail "hvtest exited $rc"
	[ "$(tail -n 1 out)" = "6 passed, 0 failed" ] || show_fail "wrong summary"
	expect_line 'PASS .*milestones \([0-9.]+s\) \[greeted [0-9.]+s\]'
	grep -rq '] | hello from guest$' "$RES" || show_fail "no transcript line for hello"
}

atf_test_case debug_exit
debug_exit_head()
{
	atf_set descr "A tiny guest reports pass and fail through the debug-exit device"
}
debug_exit_body()
{
	setup
	run_hvtest "$EX/debugexit-pass.hvt" "$EX/debugexit-fail.hvt" "$CASES/debugexit-fails.hvt"
	expect_line 'PASS .*debugexit-pass'
	expect_line 'PASS .*debugexit-fail'
	expect_line 'FAIL .*debugexit-fails .*bhyve exited 3 \(debug-exit value 1\), expected 1 \(debug-exit 0\)'
	[ "$rc" -eq 1 ] || show_fail "hvtest exited $rc, expected 1"
}

atf_test_case verdicts
verdicts_head()
{
	atf_set descr "Each must-fail case fails with its own verdict, named"
}
verdicts_body()
{
	setup
	run_hvtest -j 2 "$CASES/reboot-not-poweroff.hvt" "$CASES/halt-not-poweroff.hvt" \
	    "$CASES/exits-early.hvt" "$CASES/forbidden.hvt" "$CASES/bad-file.hvt"
	[ "$rc" -eq 1 ] || show_fail "hvtest exited $rc, expected 1"
	[ "$(tail -n 1 out)" = "0 passed, 5 failed" ] || show_fail "wrong summary"
	expect_line 'FAIL .*reboot-not-poweroff .*: the guest rebooted \(exit 0\) instead of powering off \(line 5'
	expect_line 'FAIL .*halt-not-poweroff .*: bhyve exited 2 \(halted\), expected 1 \(poweroff\)'
	expect_line "FAIL .*exits-early .*: bhyve exited 1 \(powered off\) before 'a line the guest never prints'"
	expect_line "FAIL .*forbidden .*: forbidden output: 'from guest' \(line 4\) appeared: hello from guest"
	expect_line "FAIL .*bad-file .*bad-file.hvt:4: unknown keyword 'wiat-exit' \(did you mean 'wait-exit'\?\)"
	expect_line '^      \[ *[0-9]+\.[0-9]{3}\] \| resetting through 0xcf9$'
}

atf_test_case hang_leaves_nothing
hang_leaves_nothing_head()
{
	atf_set descr "Hung guests are stopped at their timeouts; no bhyve process or" \
	    "instance outlives a suite with failures and timeouts"
}
hang_leaves_nothing_body()
{
	setup
	"$HVTEST" --results "$RES" -j 3 "$CASES/hang.hvt" "$CASES/step-timeout.hvt" \
	    "$CASES/reboot-not-poweroff.hvt" "$EX/hello.hvt" >out 2>err &
	hv=$!
	wait $hv
	rc=$?
	[ "$rc" -eq 1 ] || show_fail "hvtest exited $rc, expected 1"
	expect_line "FAIL .*cases/hang .*test timeout \(3 s\) reached .*still running \(hung\?\): stopped it"
	expect_line "FAIL .*step-timeout .*no 'never' within 2 s .*stopped it"
	[ "$(tail -n 1 out)" = "1 passed, 3 failed" ] || show_fail "wrong summary"
	if pgrep -f "hvt$hv-" >pids; then
		ps -fp "$(tr '\n' ',' <pids)0" >&2
		show_fail "processes of hvtest's VMs are still running"
	fi
	if ls -d /dev/shm/hvtest-hvt"$hv"-* /tmp/hvtest-hvt"$hv"-* 2>/dev/null; then
		show_fail "instance directories were left behind"
	fi
	grep -rq "destroyed VM instance hvt$hv-" "$RES" || show_fail "no instance was destroyed"
}

atf_test_case parallel
parallel_head()
{
	atf_set descr "-j 4 runs four copies of a test at once without collisions"
}
parallel_body()
{
	setup
	for i in 1 2 3 4; do
		cp "$EX/echo-quit.hvt" "copy$i.hvt"
	done
	run_hvtest -j 4 copy1.hvt copy2.hvt copy3.hvt copy4.hvt
	[ "$rc" -eq 0 ] || show_fail "hvtest exited $rc"
	[ "$(tail -n 1 out)" = "4 passed, 0 failed" ] || show_fail "wrong summary"
	[ "$(grep -h '# bhyve: ' "$RES"/copy*/transcript.txt | awk '{print $NF}' | sort -u | wc -l)" -eq 4 ] ||
	    show_fail "the four runs did not use four VM names"
}

atf_test_case reports
reports_head()
{
	atf_set descr "JUnit XML and TAP reports, shards that cover the suite, merged JUnit"
}
reports_body()
{
	setup
	run_hvtest --junit all.xml --tap all.tap "$EX/hello.hvt" "$CASES/halt-not-poweroff.hvt"
	/usr/bin/python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' all.xml ||
	    show_fail "all.xml is not XML"
	grep -q 'failures="1"' all.xml || show_fail "all.xml does not count one failure"
	grep -qx '1..2' all.tap || show_fail "no TAP plan"
	grep -q '^not ok 2 - .*halt-not-poweroff' all.tap || show_fail "no TAP failure line"
	for k in 1 2; do
		"$HVTEST" --results "$RES" --shard $k/2 --junit shard$k.xml \
		    "$EX/hello.hvt" "$EX/echo-quit.hvt" "$EX/exit-statuses.hvt" >>out 2>>err
	done
	"$HVTEST" --merge-junit merged.xml shard1.xml shard2.xml >>out 2>>err ||
	    show_fail "--merge-junit failed"
	grep -q 'tests="3"' merged.xml || show_fail "the merged report does not have 3 tests"
}

atf_test_case kyua
kyua_head()
{
	atf_set descr "A directory of test files runs under kyua (hvtest --kyua), with JUnit"
	atf_set require.progs kyua
}
kyua_body()
{
	setup
	mkdir suite
	cp "$EX/hello.hvt" "$CASES/halt-not-poweroff.hvt" suite/
	"$HVTEST" --kyua suite >out 2>err || show_fail "hvtest --kyua failed"
	kyua --logfile=kyua.log test -k suite/Kyuafile --results-file=k.db >>out 2>>err
	kyua --logfile=kyua.log report --results-file=k.db --results-filter=passed,failed >report 2>&1
	grep -q 'hvtest_test:hello  ->  passed' report || { cat report >&2; atf_fail "hello did not pass"; }
	grep -q 'hvtest_test:halt_not_poweroff  ->  failed: bhyve exited 2 (halted)' report ||
	    { cat report >&2; atf_fail "halt_not_poweroff did not fail as expected"; }
	kyua --logfile=kyua.log report-junit --results-file=k.db --output=k.xml ||
	    atf_fail "kyua report-junit failed"
}

atf_test_case expect_example
expect_example_head()
{
	atf_set descr "The expect(1) example drives the echo guest over -l com1,stdio"
	atf_set require.progs expect
}
expect_example_body()
{
	setup
	BHYVE_VMM_DIR=$(pwd)/vmm
	export BHYVE_VMM_DIR
	expect "$EX/expect/echo.exp" >out 2>err
	rc=$?
	[ "$rc" -eq 0 ] || show_fail "echo.exp exited $rc"
	expect_line 'echo.exp: passed'
	[ -z "$(ls -A vmm 2>/dev/null)" ] || show_fail "the instance was not destroyed"
}

atf_init_test_cases()
{
	atf_add_test_case examples
	atf_add_test_case debug_exit
	atf_add_test_case verdicts
	atf_add_test_case hang_leaves_nothing
	atf_add_test_case parallel
	atf_add_test_case reports
	atf_add_test_case kyua
	atf_add_test_case expect_example
}
