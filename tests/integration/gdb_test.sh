#! /usr/bin/env atf-sh
#
# bhyve -G: Debian's gdb attaches to the stub, reads registers and memory,
# stops at a software breakpoint, single-steps and detaches, and the guest
# then finishes as it would have without the debugger. The guest is
# fixtures/guests/debugexit (32-bit, no paging, loaded at 0x100000 by
# rawload): it prints a line, then writes 0x10 to debug-exit's port, so
# bhyve exits 33. Needs /dev/kvm (make check runs it nested under QEMU).
#
# The breakpoint is gdb's hbreak (Z1, a debug register), not break (Z0, an
# INT3 in guest memory): nested under QEMU's TCG an INT3 in the inner guest
# never reaches KVM's #BP intercept (TCG checks software interrupts against
# the INTn intercept only), so the guest takes its own #BP and, with no
# IDT, triple-faults. On real hardware both work; the unit tests cover Z0.

BHYVE_ARGS="-c 1 -m 32M -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio -l debug-exit"
RUN_TIMEOUT=120
. "$(atf_get_srcdir)/bhyve_lib.sh"

setup()
{
	top=$(atf_get_srcdir)/../..
	BIN=$top/build/bin
	GUESTS=$top/build/guests
	BHYVE_VMM_DIR=$(pwd)/vmm
	export BHYVE_VMM_DIR
	[ -c /dev/kvm ] || atf_fail "/dev/kvm is missing: run the" \
	    "integration tests with 'make check', which runs them nested" \
	    "under QEMU (harness/nested) on hosts without KVM"
	for b in rawload bhyve; do
		[ -x "$BIN/$b" ] || atf_fail "$BIN/$b is missing: run make"
	done
	command -v gdb >/dev/null ||
	    atf_fail "gdb is missing: apt-get install gdb (ci/deps.sh)"
	[ -f "$GUESTS/debugexit.bin" ] ||
	    atf_fail "guest debugexit is not built: run make guests"
	# shellcheck disable=SC2046 # NAME.args is a list of arguments
	"$BIN/rawload" -m 32M $(cat "$GUESTS/debugexit.args") \
	    "$GUESTS/debugexit.bin" "$1" 2>rawload.err ||
	    atf_fail "rawload: $(cat rawload.err)"
	# The instruction after the console line: mov $0x10,%eax (5 bytes).
	addr=$(objdump -d "$GUESTS/debugexit.elf" |
	    awk '/mov +\$0x10,%eax/ { sub(":", "", $1); print $1; exit }')
	[ -n "$addr" ] || atf_fail "no mov \$0x10,%eax in debugexit.elf"
	port=$((20000 + $$ % 20000))
}

# wait_listen: bhyve says it waits for gdb (within 20 s).
wait_listen()
{
	i=0
	while ! grep -q "waiting for gdb" err 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -lt 200 ] || { kill "$pid"; fail_with_output \
		    "bhyve never said it waits for gdb"; }
		kill -0 "$pid" 2>/dev/null || fail_with_output "bhyve exited"
		sleep 0.1
	done
}

atf_test_case break_step_detach
break_step_detach_head()
{
	atf_set descr "-G w127.0.0.1:PORT: the guest waits for gdb; gdb" \
	    "reads rip and memory, stops at an hbreak, steps, detaches; exit 33"
	atf_set timeout 300
}
break_step_detach_body()
{
	setup t-gdb
	timeout "$RUN_TIMEOUT" "$BIN/bhyve" $BHYVE_ARGS -G "w127.0.0.1:$port" \
	    t-gdb </dev/null >out 2>err &
	pid=$!
	wait_listen
	# Nothing ran before the debugger came: no console output yet.
	[ ! -s out ] || fail_with_output "the guest ran before gdb attached"
	timeout 60 gdb -nx -batch \
	    -ex 'set architecture i386:x86-64' \
	    -ex "target remote 127.0.0.1:$port" \
	    -ex 'info registers rip' \
	    -ex 'x/4xb $pc' \
	    -ex 'info threads' \
	    -ex "hbreak *0x$addr" \
	    -ex 'continue' \
	    -ex 'info registers rip' \
	    -ex 'stepi' \
	    -ex 'info registers rip eax' \
	    -ex 'detach' >gdb.out 2>&1
	grc=$?
	wait "$pid"
	rc=$?
	echo "--- gdb ---" >&2
	cat gdb.out >&2
	[ "$grc" -eq 0 ] || fail_with_output "gdb exited $grc"
	# Where rawload left the guest, and its first bytes (.bin's).
	grep -qE '^rip +0x100000 ' gdb.out ||
	    fail_with_output "gdb did not see rip 0x100000 at attach"
	want=$(od -An -tx1 -N4 "$GUESTS/debugexit.bin" |
	    awk '{ printf "0x%s\t0x%s\t0x%s\t0x%s", $1, $2, $3, $4 }')
	grep -qF "$want" gdb.out ||
	    fail_with_output "x/4xb \$pc did not show the guest's first bytes"
	grep -qE "^rip +0x$addr " gdb.out ||
	    fail_with_output "gdb did not stop at the breakpoint 0x$addr"
	next=$(printf '%x' $((0x$addr + 5)))
	grep -qE "^rip +0x$next " gdb.out ||
	    fail_with_output "stepi did not end at 0x$next"
	grep -qE '^eax +0x10 ' gdb.out ||
	    fail_with_output "after the step eax is not 0x10"
	expect_exit 33 "debug-exit 0x10 after the debugger detached"
	expect_console "debug-exit 0x10"
}

atf_test_case kill
kill_head()
{
	atf_set descr "-G wPORT (address 127.0.0.1): gdb's kill powers the" \
	    "guest off before it ran: bhyve exits 1"
	atf_set timeout 300
}
kill_body()
{
	setup t-gdb2
	timeout "$RUN_TIMEOUT" "$BIN/bhyve" $BHYVE_ARGS -G "w$port" \
	    t-gdb2 </dev/null >out 2>err &
	pid=$!
	wait_listen
	timeout 60 gdb -nx -batch -ex "target remote 127.0.0.1:$port" \
	    -ex 'kill' >gdb.out 2>&1
	grc=$?
	wait "$pid"
	rc=$?
	echo "--- gdb ---" >&2
	cat gdb.out >&2
	[ "$grc" -eq 0 ] || fail_with_output "gdb exited $grc"
	expect_exit 1 "killed from gdb"
	[ ! -s out ] || fail_with_output "the guest ran"
}

atf_init_test_cases()
{
	atf_add_test_case break_step_detach
	atf_add_test_case kill
}
