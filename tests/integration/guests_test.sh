#! /usr/bin/env atf-sh
#
# Boot each test guest (fixtures/guests) in bhyve and check its console
# output and bhyve's exit status (bhyve(8): 0 rebooted, 1 powered off,
# 2 halted, 3 triple fault, 4 error).
#
# Each case loads its guest with rawload into a private instance directory
# (BHYVE_VMM_DIR under the case's work directory) and runs bhyve on it with
# the console on stdio. These need /dev/kvm: `make check` runs them nested
# under QEMU when the host has none. Without it they fail, never skip.
#
# nested-cpus: 2 (ci/check.sh gives this program's outer VM two vCPUs: the
# pinned case tells two host CPUs apart; its guests are tiny, few exits)

BHYVE_ARGS="-c 1 -m 32M -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio"
RUN_TIMEOUT=60
. "$(atf_get_srcdir)/bhyve_lib.sh"

# Paths and the private instance directory; fail early without KVM.
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
}

# load_guest GUEST VMNAME [RAWLOAD-ARGS...]
load_guest()
{
	g=$1 vm=$2
	shift 2
	[ -f "$GUESTS/$g.bin" ] && [ -f "$GUESTS/$g.args" ] ||
	    atf_fail "guest $g is not built: run make guests"
	# shellcheck disable=SC2046 # NAME.args is a list of arguments
	"$BIN/rawload" -m 32M $(cat "$GUESTS/$g.args") "$@" \
	    "$GUESTS/$g.bin" "$vm" 2>rawload.err ||
	    atf_fail "rawload $g: $(cat rawload.err)"
}

# run_bhyve VMNAME: console to ./out, errors to ./err; bhyve's status
# (124 if it ran for 60 s). Callers take it with rc=$?: at the end of a
# pipeline this runs in a subshell.
run_bhyve()
{
	timeout 60 "$BIN/bhyve" $BHYVE_ARGS "$1" >out 2>err
}

# start_bhyve VMNAME: in the background, console to ./out; sets $pid.
# --foreground makes timeout pass a signal it gets to bhyve exactly once
# (without it bhyve would get a second copy through the process group).
start_bhyve()
{
	timeout --foreground 60 "$BIN/bhyve" $BHYVE_ARGS "$1" </dev/null \
	    >out 2>err &
	pid=$!
}

# not_ready PATTERN: the background bhyve never printed PATTERN; fail.
not_ready()
{
	if kill -0 $pid 2>/dev/null; then
		kill -KILL $pid 2>/dev/null
		wait $pid
		fail_with_output "the guest never printed '$1' (in 60 s)"
	fi
	wait $pid
	fail_with_output "bhyve exited $? before the guest printed '$1'"
}

# wait_for PATTERN FILE [PID]: up to 60 s for a fixed string to appear;
# gives up early once PID (the bhyve run) has ended.
wait_for()
{
	i=0
	while ! grep -qF -- "$1" "$2" 2>/dev/null; do
		[ $i -lt 600 ] || return 1
		if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then
			grep -qF -- "$1" "$2" 2>/dev/null
			return
		fi
		sleep 0.1
		i=$((i + 1))
	done
}

atf_test_case hello
hello_head()
{
	atf_set descr "32-bit guest prints a line, ACPI power-off: exit 1"
}
hello_body()
{
	setup
	load_guest hello t-hello
	run_bhyve t-hello </dev/null
	rc=$?
	expect_exit 1 "powered off"
	printf 'hello from guest\r\n' >expected
	cmp -s expected out ||
	    fail_with_output "console output is not exactly 'hello from" \
		"guest' CR LF"
}

atf_test_case reset
reset_head()
{
	atf_set descr "16-bit guest resets through port 0xcf9: exit 0"
}
reset_body()
{
	setup
	load_guest reset t-reset
	run_bhyve t-reset </dev/null
	rc=$?
	expect_exit 0 "rebooted"
	expect_console "resetting through 0xcf9"
}

atf_test_case kbdreset
kbdreset_head()
{
	atf_set descr "16-bit guest resets through the keyboard controller" \
	    "(0xfe to port 0x64): exit 0"
}
kbdreset_body()
{
	setup
	load_guest kbdreset t-kbdreset
	run_bhyve t-kbdreset </dev/null
	rc=$?
	expect_exit 0 "rebooted"
	expect_console "resetting through 0x64"
}

atf_test_case halt
halt_head()
{
	atf_set descr "32-bit guest halts with interrupts off: exit 2"
}
halt_body()
{
	setup
	load_guest halt t-halt
	run_bhyve t-halt </dev/null
	rc=$?
	expect_exit 2 "halted"
	expect_console "halting"
}

atf_test_case triplefault
triplefault_head()
{
	atf_set descr "64-bit guest (rawload's long-mode hand-off) triple" \
	    "faults with an empty IDT: exit 3"
}
triplefault_body()
{
	setup
	load_guest triplefault t-triplefault
	run_bhyve t-triplefault </dev/null
	rc=$?
	expect_exit 3 "triple fault"
	expect_console "triple faulting"
	# Where it faulted; or, where KVM resets the vCPU at a shutdown (AMD),
	# that it is not known: never the reset vector named as the place.
	grep -qE '^bhyve: vCPU 0: triple fault (at rip 0x[0-9a-f]+|\(KVM reset the vCPU, as on AMD: where it faulted is not known\))$' err ||
	    fail_with_output "stderr does not report the triple fault"
	! grep -q 'at rip 0xfff0$' err ||
	    fail_with_output "the reset vector reported as where it faulted"
}

atf_test_case echo
echo_head()
{
	atf_set descr "console input reaches the guest's UART and its" \
	    "output comes back; 'quit' powers off: exit 1"
}
echo_body()
{
	setup
	load_guest echo t-echo
	: >out
	(
		wait_for "echo ready" out
		printf 'abc\nquit\n'
	) | run_bhyve t-echo
	rc=$?
	expect_exit 1 "powered off"
	expect_console "echo ready"
	expect_console "abc"
	expect_console "quit"
	expect_console "bye"
}

atf_test_case pinned
pinned_head()
{
	atf_set descr "-p 0:1 -p 1:0: each vCPU thread may run only on its" \
	    "host CPU (Cpus_allowed_list); a CPU the host lacks: exit 4"
}
# The Cpus_allowed_list of bhyve PID's thread named NAME.
thread_cpus()
{
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] || continue
		sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "$t/status"
	done
}
pinned_body()
{
	setup
	[ "$(nproc --all)" -ge 2 ] || atf_fail "needs 2 host CPUs"
	load_guest echo t-pin
	: >out
	BHYVE_ARGS="$BHYVE_ARGS -c 2 -p 0:1 -p 1:0"
	(
		wait_for "echo ready" out
		bpid=$(pgrep -x bhyve -n)
		echo "vcpu0=$(thread_cpus "$bpid" "vcpu 0")" \
		    "vcpu1=$(thread_cpus "$bpid" "vcpu 1")" >cpus
		printf 'quit\n'
	) | run_bhyve t-pin
	rc=$?
	expect_exit 1 "powered off"
	[ "$(cat cpus)" = "vcpu0=1 vcpu1=0" ] ||
	    fail_with_output "vCPU threads' CPUs: $(cat cpus), expected" \
		"vcpu0=1 vcpu1=0"
	load_guest hello t-pin
	BHYVE_ARGS="-c 1 -m 32M -s 0:0,hostbridge -p 0:999 t-pin"
	timeout 60 "$BIN/bhyve" $BHYVE_ARGS </dev/null >out 2>err
	rc=$?
	expect_exit 4 "no host CPU 999"
	grep -q "vcpu.0.cpuset: host CPU 999 does not exist" err ||
	    fail_with_output "the error does not say which CPU"
}

atf_test_case irq
irq_head()
{
	atf_set descr "a byte on the console raises COM1's IRQ 4 through" \
	    "the IOAPIC into the guest's handler: exit 1"
}
irq_body()
{
	setup
	load_guest irq t-irq
	: >out
	(
		wait_for "irq ready" out
		printf x
	) | run_bhyve t-irq
	rc=$?
	if [ "$rc" -eq 124 ]; then
		fail_with_output "the guest's IRQ 4 handler never ran" \
		    "(bhyve timed out)"
	fi
	expect_exit 1 "powered off from the interrupt handler"
	expect_console "irq 4 received: x"
}

atf_test_case acpibutton
acpibutton_head()
{
	atf_set descr "SIGTERM presses the ACPI power button once the guest" \
	    "enabled ACPI; the guest sees PWRBTN_STS and powers off: exit 1"
}
acpibutton_body()
{
	setup
	load_guest acpibutton t-acpibutton
	start_bhyve t-acpibutton
	wait_for "waiting for power button" out $pid ||
	    not_ready "waiting for power button"
	kill -TERM $pid
	wait $pid
	rc=$?
	expect_exit 1 "powered off after the power button"
	expect_console "power button pressed"
}

atf_test_case spin_sigterm
spin_sigterm_head()
{
	atf_set descr "SIGTERM to a guest that never enabled ACPI stops" \
	    "bhyve within a few seconds: exit 4"
}
spin_sigterm_body()
{
	setup
	load_guest spin t-spin
	start_bhyve t-spin
	wait_for "spinning" out $pid || not_ready "spinning"
	start=$(date +%s)
	kill -TERM $pid
	wait $pid
	rc=$?
	took=$(($(date +%s) - start))
	expect_exit 4 "stopped by SIGTERM"
	[ $took -le 10 ] ||
	    fail_with_output "bhyve took $took s to stop after SIGTERM"
}

atf_test_case strictio
strictio_head()
{
	atf_set descr "unemulated port: all ones and dropped, or with -e exit 4"
}
strictio_body()
{
	setup
	load_guest strictio t-strict
	run_bhyve t-strict </dev/null
	rc=$?
	expect_exit 1 "powered off"
	expect_console "unemulated port reads ff"
	load_guest strictio t-strict
	BHYVE_ARGS="$BHYVE_ARGS -e" run_bhyve t-strict </dev/null
	rc=$?
	expect_exit 4 "error: -e and an unemulated port"
	grep -q "port 0x1234" err ||
	    fail_with_output "bhyve's error does not name port 0x1234"
	[ ! -s out ] || fail_with_output "the guest ran past the bad access"
}

atf_test_case smp_hello
smp_hello_head()
{
	atf_set descr "-c 4 -m 5G: the BSP runs while APs wait for SIPI"
}
smp_hello_body()
{
	setup
	"$BIN/rawload" -m 5G $(cat "$GUESTS/hello.args") \
	    "$GUESTS/hello.bin" t-smp 2>rawload.err ||
	    atf_fail "rawload: $(cat rawload.err)"
	BHYVE_ARGS="-c 4 -m 5G -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio" \
	    run_bhyve t-smp </dev/null
	rc=$?
	expect_exit 1 "powered off"
	expect_console "hello from guest"
}

atf_init_test_cases()
{
	atf_add_test_case hello
	atf_add_test_case reset
	atf_add_test_case kbdreset
	atf_add_test_case halt
	atf_add_test_case triplefault
	atf_add_test_case echo
	atf_add_test_case pinned
	atf_add_test_case irq
	atf_add_test_case acpibutton
	atf_add_test_case spin_sigterm
	atf_add_test_case strictio
	atf_add_test_case smp_hello
}
