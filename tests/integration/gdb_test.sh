#! /usr/bin/env atf-sh
#
# bhyve -G: Debian's gdb attaches to the stub, reads registers and memory,
# stops at a software breakpoint, single-steps and detaches, and the guest
# then finishes as it would have without the debugger. The guest is
# fixtures/guests/debugexit (32-bit, no paging, loaded at 0x100000 by
# rawload): it prints a line, then writes 0x10 to debug-exit's port, so
# bhyve exits 33. Needs /dev/kvm (make check runs it nested under QEMU).


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
	guest=${2:-debugexit}
	[ -f "$GUESTS/$guest.bin" ] ||
	    atf_fail "guest $guest is not built: run make guests"
	# shellcheck disable=SC2046 # NAME.args is a list of arguments
	"$BIN/rawload" -m 32M $(cat "$GUESTS/$guest.args") \
	    "$GUESTS/$guest.bin" "$1" 2>rawload.err ||
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

# start_bhyve VMNAME: bhyve with -G w127.0.0.1:$port in the background
# ($pid), waiting for gdb.
start_bhyve()
{
	timeout "$RUN_TIMEOUT" "$BIN/bhyve" $BHYVE_ARGS -G "w127.0.0.1:$port" \
	    "$1" </dev/null >out 2>err &
	pid=$!
	wait_listen
	# Nothing ran before the debugger came: no console output yet.
	[ ! -s out ] || fail_with_output "the guest ran before gdb attached"
}

# run_gdb GDB-ARGS...: gdb in batch mode against the stub, then bhyve's
# end; gdb's output in gdb.out (and the transcript), bhyve's status in $rc.
run_gdb()
{
	timeout 60 gdb -nx -batch -ex 'set architecture i386:x86-64' \
	    -ex "target remote 127.0.0.1:$port" "$@" >gdb.out 2>&1
	grc=$?
	wait "$pid"
	rc=$?
	echo "--- gdb ---" >&2
	cat gdb.out >&2
	[ "$grc" -eq 0 ] || fail_with_output "gdb exited $grc"
}

# expect_reg REG VALUE: gdb printed "REG  VALUE ...".
expect_reg()
{
	grep -qE "^$1 +$2 " gdb.out ||
	    fail_with_output "gdb did not show $1 = $2"
}

# Nested under QEMU's TCG (make check on a host without KVM) a guest's
# INT3 never reaches KVM's #BP intercept (TCG checks INTn intercepts for
# it) and DR7 breakpoints are not armed for the inner guest: breakpoints
# work on KVM hosts only. Single steps work in both.
tcg_breakpoints()
{
	grep -q "QEMU TCG" /proc/cpuinfo &&
	    atf_expect_fail "nested under QEMU TCG: its SVM emulation does" \
	    "not hand the inner guest's $1 to KVM"
}

atf_test_case step_detach
step_detach_head()
{
	atf_set descr "-G w127.0.0.1:PORT: the guest waits for gdb; gdb" \
	    "reads rip and memory, single-steps, detaches; exit 33"
	atf_set timeout 300
}
step_detach_body()
{
	setup t-gdb
	start_bhyve t-gdb
	run_gdb -ex 'info registers rip' -ex 'x/4xb $pc' -ex 'info threads' \
	    -ex 'stepi' -ex 'info registers rip esi' -ex 'detach'
	# Where rawload left the guest, and its first bytes (.bin's).
	expect_reg rip 0x100000
	want=$(od -An -tx1 -N4 "$GUESTS/debugexit.bin" |
	    awk '{ printf "0x%s\t0x%s\t0x%s\t0x%s", $1, $2, $3, $4 }')
	grep -qF "$want" gdb.out ||
	    fail_with_output "x/4xb \$pc did not show the guest's first bytes"
	grep -qF "Thread 1" gdb.out || fail_with_output "no thread 1 (vCPU 0)"
	# The first instruction: mov $msg,%esi (5 bytes).
	expect_reg rip 0x100005
	msg=$(nm "$GUESTS/debugexit.elf" | awk '$3 == "msg" { print $1 }' |
	    sed 's/^0*//')
	expect_reg esi "0x$msg"
	expect_exit 33 "debug-exit 0x10 after the debugger detached"
	expect_console "debug-exit 0x10"
}

# break_body KIND: gdb's KIND (break or hbreak) at the mov $0x10,%eax after
# the console line, continue, a step over it, detach; exit 33.
break_case()
{
	setup "t-$1"
	start_bhyve "t-$1"
	tcg_breakpoints "$2"
	run_gdb -ex "$1 *0x$addr" -ex 'continue' -ex 'info registers rip' \
	    -ex 'stepi' -ex 'info registers rip eax' -ex 'detach'
	expect_console "debug-exit 0x10"
	expect_exit 33 "debug-exit 0x10 after the debugger detached"
	expect_reg rip "0x$addr"
	expect_reg rip "0x$(printf '%x' $((0x$addr + 5)))"
	expect_reg eax 0x10
}

atf_test_case break
break_head()
{
	atf_set descr "-G: a software breakpoint (INT3, Z0), a step, detach"
	atf_set timeout 300
}
break_body()
{
	break_case break "INT3"
}

atf_test_case hbreak
hbreak_head()
{
	atf_set descr "-G: a hardware breakpoint (DR0, Z1), a step, detach"
	atf_set timeout 300
}
hbreak_body()
{
	break_case hbreak "debug-register breakpoints"
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

atf_test_case interrupt
interrupt_head()
{
	atf_set descr "-G PORT without w: a client attaches to a running" \
	    "guest (fixtures/guests/spin, 2 vCPUs), continues it," \
	    "interrupts it (Ctrl-C, 0x03) in its loop, kills it: exit 1"
	atf_set timeout 300
}
interrupt_body()
{
	setup t-gdbint spin
	timeout "$RUN_TIMEOUT" "$BIN/bhyve" $BHYVE_ARGS -c 2 -G "$port" \
	    t-gdbint </dev/null >out 2>err &
	pid=$!
	i=0
	while ! grep -q spinning out 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -lt 300 ] || { kill "$pid"; fail_with_output \
		    "the guest never said it spins"; }
		sleep 0.1
	done
	loop=$(nm "$GUESTS/spin.elf" | awk '$3 == "spin" { print $1 }' |
	    sed 's/^0*//')
	# gdb -batch cannot wait for the stop its interrupt asks for: a
	# client of our own sends the 0x03.
	timeout 60 python3 "$(atf_get_srcdir)/gdb_client.py" "$port" \
	    >client.out 2>&1
	grc=$?
	wait "$pid"
	rc=$?
	echo "--- client ---" >&2
	cat client.out >&2
	[ "$grc" -eq 0 ] || fail_with_output "the client exited $grc"
	grep -qE '^stop: T05' client.out ||
	    fail_with_output "no stop reply at attach"
	grep -qE '^interrupt: T02thread:[12];' client.out ||
	    fail_with_output "no SIGINT stop reply after 0x03"
	[ "$(grep -c "^rip: 0x$loop\$" client.out)" -ge 1 ] ||
	    fail_with_output "rip is not in the guest's loop (0x$loop)"
	expect_exit 1 "killed from gdb"
}

atf_init_test_cases()
{
	atf_add_test_case step_detach
	atf_add_test_case break
	atf_add_test_case hbreak
	atf_add_test_case kill
	atf_add_test_case interrupt
}
