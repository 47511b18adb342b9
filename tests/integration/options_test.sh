#! /usr/bin/env atf-sh
#
# bhyve(8) options as a guest sees them (fixtures/guests/msr.S): -w makes an
# MSR nobody implements read 0 and drop writes where it is a #GP otherwise;
# -a hides x2APIC from CPUID, -x starts the local APIC in x2APIC mode.
# -S and -C run the guest with its memory wired or in core dumps; -S fails
# with a line naming RLIMIT_MEMLOCK when the limit is in the way. They need
# /dev/kvm (make check runs them nested under QEMU when the host has none)
# and fail without it, never skip.

BHYVE_ARGS="-c 1 -m 32M -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio"
RUN_TIMEOUT=60
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
	[ -f "$GUESTS/msr.bin" ] || atf_fail "guest msr is not built: run make"
}

# msr_guest [BHYVE-ARGS...]: load the msr guest, run it; console in ./out,
# stderr in ./err, status in $rc.
msr_guest()
{
	# shellcheck disable=SC2046 # msr.args is a list of arguments
	"$BIN/rawload" -m 32M $(cat "$GUESTS/msr.args") "$GUESTS/msr.bin" \
	    t-msr 2>rawload.err || atf_fail "rawload msr: $(cat rawload.err)"
	timeout $RUN_TIMEOUT "$BIN/bhyve" $BHYVE_ARGS "$@" t-msr \
	    </dev/null >out 2>err
	rc=$?
}

no_errors()
{
	[ ! -s err ] || fail_with_output "bhyve wrote to stderr"
}

atf_test_case strictmsr
strictmsr_head()
{
	atf_set descr "without -w, reading an MSR nobody implements is a #GP;" \
	    "-A -H -P (vmrun.sh's) print nothing"
}
strictmsr_body()
{
	setup
	msr_guest -A -H -P
	expect_exit 1 "the #GP handler powers off"
	expect_console "unknown msr: #GP"
	no_errors
}

atf_test_case ignoremsr
ignoremsr_head()
{
	atf_set descr "-w: an MSR nobody implements reads 0, writes are dropped"
}
ignoremsr_body()
{
	setup
	msr_guest -w
	expect_exit 1 "powered off"
	expect_console "unknown msr reads 0"
	expect_console "unknown msr write dropped"
	no_errors
	# -o x86.strictmsr=false is the same thing.
	msr_guest -o x86.strictmsr=false
	expect_exit 1 "powered off"
	expect_console "unknown msr write dropped"
}

atf_test_case apic_default
apic_default_head()
{
	atf_set descr "no -a or -x: x2APIC offered, the LAPIC starts in xAPIC mode"
}
apic_default_body()
{
	setup
	msr_guest
	expect_exit 1 "powered off"
	expect_line "^x2apic cpuid 1$"
	expect_line "^x2apic mode 0$"
}

atf_test_case xapic
xapic_head()
{
	atf_set descr "-a: CPUID hides x2APIC"
}
xapic_body()
{
	setup
	msr_guest -a
	expect_exit 1 "powered off"
	expect_line "^x2apic cpuid 0$"
	expect_line "^x2apic mode 0$"
	no_errors
}

atf_test_case x2apic
x2apic_head()
{
	atf_set descr "-x: x2APIC offered and the LAPIC already in x2APIC mode"
}
x2apic_body()
{
	setup
	msr_guest -x
	expect_exit 1 "powered off"
	expect_line "^x2apic cpuid 1$"
	expect_line "^x2apic mode 1$"
	no_errors
}

atf_test_case wired
wired_head()
{
	atf_set descr "-S -C: the guest runs with its memory wired and" \
	    "dumpable; -S over RLIMIT_MEMLOCK fails naming it"
}
wired_body()
{
	setup
	msr_guest -S -C
	expect_exit 1 "powered off"
	expect_console "unknown msr: #GP"
	no_errors
	# Root's CAP_IPC_LOCK ignores the limit: take it out of the bounding
	# set, so bhyve runs without it, under a 1 MiB limit.
	BHYVE_ARGS="-S $BHYVE_ARGS"
	if [ "$(id -u)" -eq 0 ]; then
		(ulimit -l 1024 && exec setpriv --bounding-set=-ipc_lock \
		    "$BIN/bhyve" $BHYVE_ARGS t-msr </dev/null >out 2>err)
	else
		(ulimit -l 1024 && exec "$BIN/bhyve" $BHYVE_ARGS t-msr \
		    </dev/null >out 2>err)
	fi
	rc=$?
	expect_exit 4 "-S cannot wire 32 MiB under a 1 MiB RLIMIT_MEMLOCK"
	grep -q "bhyve: -S: cannot wire 32 MiB of guest memory: RLIMIT_MEMLOCK is 1024 KiB" err ||
	    fail_with_output "the error does not name RLIMIT_MEMLOCK"
	[ "$(wc -l <err)" -eq 1 ] || fail_with_output "more than one line"
}

atf_init_test_cases()
{
	atf_add_test_case strictmsr
	atf_add_test_case ignoremsr
	atf_add_test_case apic_default
	atf_add_test_case xapic
	atf_add_test_case x2apic
	atf_add_test_case wired
}
