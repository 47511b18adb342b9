#! /usr/bin/env atf-sh
#
# Devices that test guests talk to (fixtures/guests): debug-exit and
# pc-testdev (exit status (v << 1) | 1), QEMU's fw_cfg with -f files, and
# the HPET's counter and timer interrupt. Each case loads its guest with
# rawload into a private instance directory and runs bhyve on it with the
# console on stdio; they need /dev/kvm (make check runs them nested under
# QEMU when the host has none) and fail without it, never skip.

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
}

# load_guest GUEST VMNAME
load_guest()
{
	[ -f "$GUESTS/$1.bin" ] && [ -f "$GUESTS/$1.args" ] ||
	    atf_fail "guest $1 is not built: run make guests"
	# shellcheck disable=SC2046 # NAME.args is a list of arguments
	"$BIN/rawload" -m 32M $(cat "$GUESTS/$1.args") "$GUESTS/$1.bin" \
	    "$2" 2>rawload.err || atf_fail "rawload $1: $(cat rawload.err)"
}

# run_bhyve VMNAME [BHYVE-ARGS...]: console to ./out, errors to ./err;
# take the status with rc=$? (124 if it ran for 60 s).
run_bhyve()
{
	vm=$1
	shift
	timeout 60 "$BIN/bhyve" $BHYVE_ARGS "$@" "$vm" </dev/null >out 2>err
}

# expect_error TEXT: bhyve's stderr is one line containing TEXT.
expect_error()
{
	grep -qF -- "$1" err || fail_with_output "bhyve's error lacks '$1'"
}

atf_test_case debugexit
debugexit_head()
{
	atf_set descr "a guest writes 0x10 to -l debug-exit's port 0xf4:" \
	    "exit (0x10 << 1) | 1 = 33"
}
debugexit_body()
{
	setup
	load_guest debugexit t-dbgexit
	run_bhyve t-dbgexit -l debug-exit
	rc=$?
	expect_exit 33 "debug-exit 0x10"
	expect_console "debug-exit 0x10"
	[ ! -s err ] || fail_with_output "bhyve wrote errors"
}

atf_test_case debugexit_elsewhere
debugexit_elsewhere_head()
{
	atf_set descr "-l debug-exit,port=0x501: port 0xf4 is nobody's," \
	    "so the guest runs on and halts: exit 2"
}
debugexit_elsewhere_body()
{
	setup
	load_guest debugexit t-dbgexit2
	run_bhyve t-dbgexit2 -l debug-exit,port=0x501,size=2
	rc=$?
	expect_exit 2 "halted after a write to an unclaimed port"
	expect_console "still running after debug-exit"
}

atf_test_case pctestdev
pctestdev_head()
{
	atf_set descr "-l pc-testdev has the same exit at 0xf4: exit 33"
}
pctestdev_body()
{
	setup
	load_guest debugexit t-pctest
	run_bhyve t-pctest -l pc-testdev
	rc=$?
	expect_exit 33 "pc-testdev's debug exit"
}

atf_test_case exit_port_conflict
exit_port_conflict_head()
{
	atf_set descr "-l debug-exit with -l pc-testdev: both want 0xf4;" \
	    "bhyve says who has it and exits 4"
}
exit_port_conflict_body()
{
	setup
	load_guest debugexit t-conflict
	run_bhyve t-conflict -l debug-exit -l pc-testdev
	rc=$?
	expect_exit 4 "error: port 0xf4 claimed twice"
	grep -q "port 0xf4 is taken by \(debug-exit\|pc-testdev\)" err ||
	    fail_with_output "the error does not name port 0xf4's owner"
	[ ! -s out ] || fail_with_output "the guest ran"
}

atf_test_case fwcfg_string
fwcfg_string_head()
{
	atf_set descr "-l fwcfg,qemu -f opt/test,string=hello: the guest" \
	    "reads the signature through the ports and the file through" \
	    "the directory and DMA"
}
fwcfg_string_body()
{
	setup
	load_guest fwcfg t-fwcfg
	run_bhyve t-fwcfg -l fwcfg,qemu -f opt/test,string=hello
	rc=$?
	expect_exit 1 "powered off"
	expect_console "fw_cfg signature: QEMU"
	expect_console "fw_cfg opt/test: hello"
	expect_console "fw_cfg: DMA outside RAM sets the error bit"
}

atf_test_case fwcfg_file
fwcfg_file_head()
{
	atf_set descr "-f name=opt/test,file=PATH: the guest reads the host" \
	    "file's bytes"
}
fwcfg_file_body()
{
	setup
	printf 'from a host file' >payload
	load_guest fwcfg t-fwcfgf
	run_bhyve t-fwcfgf -l fwcfg,qemu -f "name=opt/test,file=$(pwd)/payload"
	rc=$?
	expect_exit 1 "powered off"
	expect_console "fw_cfg opt/test: from a host file"
}

atf_test_case fwcfg_errors
fwcfg_errors_head()
{
	atf_set descr "bad fw_cfg set-ups end bhyve at start-up with exit 4" \
	    "and a one-line message"
}
fwcfg_errors_body()
{
	setup
	load_guest fwcfg t-fwerr
	run_bhyve t-fwerr -l fwcfg,qemu -f opt/test,file=/nonexistent/blob
	rc=$?
	expect_exit 4 "a -f file that is not there"
	expect_error "/nonexistent/blob"
	run_bhyve t-fwerr -l fwcfg,bhyve
	rc=$?
	expect_exit 4 "the bhyve fwctl interface"
	expect_error "-l fwcfg,qemu"
	run_bhyve t-fwerr -f opt/test,string=x
	rc=$?
	expect_exit 4 "-f without -l fwcfg,qemu"
	expect_error "need -l fwcfg,qemu"
	run_bhyve t-fwerr -l fwcfg,qemu -f opt/test
	rc=$?
	expect_exit 4 "a -f without a value"
	expect_error "-f opt/test: expected"
	[ "$(wc -l <err)" -eq 1 ] || fail_with_output "not one line"
	run_bhyve t-fwerr -l fwcfg,qemu -f opt/a,string=1 -f opt/a,string=2
	rc=$?
	expect_exit 4 "the same -f name twice"
	expect_error "'opt/a' is already given"
}

atf_test_case hpet
hpet_head()
{
	atf_set descr "the HPET counts once enabled and timer 0 interrupts" \
	    "through IOAPIC pin 11: exit 1"
}
hpet_body()
{
	setup
	load_guest hpet t-hpet
	run_bhyve t-hpet
	rc=$?
	if [ "$rc" -eq 124 ]; then
		grep -q "hpet counting" out ||
		    fail_with_output "the HPET counter never moved"
		fail_with_output "HPET timer 0's interrupt never came"
	fi
	expect_exit 1 "powered off from the timer's interrupt handler"
	expect_console "hpet counting"
	expect_console "hpet timer 0 fired"
}

atf_test_case milestone
milestone_head()
{
	atf_set descr "-l milestone,path=F: timestamped records of the guest's lines"
}
milestone_body()
{
	setup
	load_guest milestones t-ms
	run_bhyve t-ms -l milestone,path=$(pwd)/ms.log
	rc=$?
	expect_exit 1 "powered off"
	expect_console "milestones sent"
	[ "$(wc -l <ms.log)" -eq 2 ] || fail_with_output "want 2 records: $(cat ms.log)"
	grep -Eq '^[0-9]+\.[0-9]{6} kernel started$' ms.log ||
	    fail_with_output "no 'kernel started' record: $(cat ms.log)"
	grep -Eq '^[0-9]+\.[0-9]{6} userspace up$' ms.log ||
	    fail_with_output "no 'userspace up' record (CR dropped): $(cat ms.log)"
	# Without a path the records go to stderr.
	load_guest milestones t-ms
	run_bhyve t-ms -l milestone
	rc=$?
	expect_exit 1 "powered off"
	grep -q "bhyve: milestone [0-9.]* userspace up" err ||
	    fail_with_output "no milestone on stderr"
	run_bhyve t-ms -l milestone,bogus=1
	rc=$?
	[ $rc -ne 0 ] || fail_with_output "a bad option was accepted"
	grep -q "bogus" err || fail_with_output "the error does not name 'bogus'"
}

# wait_file TEXT FILE PID: up to 90 s for TEXT in FILE; 1 if PID ended
# first or the time ran out.
wait_file()
{
	i=0
	while ! grep -qF -- "$1" "$2" 2>/dev/null; do
		kill -0 "$3" 2>/dev/null || return 1
		i=$((i + 1))
		[ $i -le 900 ] || return 1
		sleep 0.1
	done
}

atf_test_case console_stalled_reader
console_stalled_reader_head()
{
	atf_set descr "com1 on a pipe whose reader never reads, a guest" \
	    "printing without end: bhyve keeps 64 KiB, drops the rest and" \
	    "says so once; SIGTERM still presses the power button: exit 1"
}
console_stalled_reader_body()
{
	setup
	load_guest flood t-flood
	: >out
	mkfifo pipe
	# The pipe's reader: holds it open, never reads.
	sleep 600 <pipe &
	holder=$!
	timeout --foreground 120 "$BIN/bhyve" $BHYVE_ARGS t-flood \
	    </dev/null >pipe 2>err &
	pid=$!
	if ! wait_file "is not reading" err $pid; then
		kill -KILL $pid $holder 2>/dev/null
		wait $pid
		fail_with_output "bhyve never said it drops console output"
	fi
	start=$(date +%s)
	kill -TERM $pid
	wait $pid
	rc=$?
	took=$(($(date +%s) - start))
	kill $holder 2>/dev/null
	wait $holder 2>/dev/null
	expect_exit 1 "powered off after the power button"
	[ $took -le 10 ] ||
	    fail_with_output "bhyve took $took s to stop after SIGTERM"
	[ "$(grep -c "is not reading" err)" -eq 1 ] ||
	    fail_with_output "the drop was not said exactly once"
	grep -Eq "com1: [0-9]+ bytes of console output were dropped" err ||
	    fail_with_output "no count of the dropped bytes"
}

# listening PORT PID: up to 60 s for a listener on 127.0.0.1:PORT.
listening()
{
	hex=$(printf '0100007F:%04X 00000000:0000 0A' "$1")
	i=0
	while ! grep -q "$hex" /proc/net/tcp; do
		kill -0 "$2" 2>/dev/null || return 1
		i=$((i + 1))
		[ $i -le 600 ] || return 1
		sleep 0.1
	done
}

atf_test_case com_tcp
com_tcp_head()
{
	atf_set descr "-l com1,tcp=127.0.0.1:PORT: nc talks to the echo" \
	    "guest, raw bytes both ways; a second nc meanwhile is told" \
	    "the socket is taken and closed; quit powers off: exit 1"
}
com_tcp_body()
{
	setup
	command -v nc >/dev/null ||
	    atf_fail "nc is missing: ci/deps.sh installs netcat-openbsd"
	load_guest echo t-tcp
	port=$((20000 + $$ % 20000))
	timeout --foreground 120 "$BIN/bhyve" -c 1 -m 32M -s 0:0,hostbridge \
	    -s 1:0,lpc -l com1,tcp=127.0.0.1:$port t-tcp </dev/null \
	    >out 2>err &
	pid=$!
	if ! listening $port $pid; then
		kill -KILL $pid 2>/dev/null
		wait $pid
		fail_with_output "bhyve never listened on 127.0.0.1:$port"
	fi
	(printf 'one\r'; sleep 5; printf 'quit\r') |
	    timeout 90 nc 127.0.0.1 $port >nc1 &
	nc1=$!
	if ! wait_file one nc1 $nc1; then
		kill -KILL $pid $nc1 2>/dev/null
		wait $pid
		fail_with_output "the guest never echoed 'one' to nc: $(cat nc1)"
	fi
	timeout 30 nc 127.0.0.1 $port </dev/null >nc2
	grep -q "Socket already connected" nc2 ||
	    fail_with_output "the second client got '$(cat nc2)'"
	wait $nc1
	wait $pid
	rc=$?
	expect_exit 1 "powered off after 'quit' from nc"
	grep -q bye nc1 || fail_with_output "nc lacks 'bye': $(cat nc1)"
	[ ! -s out ] || fail_with_output "console bytes reached stdout"
}

atf_init_test_cases()
{
	atf_add_test_case debugexit
	atf_add_test_case debugexit_elsewhere
	atf_add_test_case pctestdev
	atf_add_test_case exit_port_conflict
	atf_add_test_case fwcfg_string
	atf_add_test_case fwcfg_file
	atf_add_test_case fwcfg_errors
	atf_add_test_case hpet
	atf_add_test_case milestone
	atf_add_test_case console_stalled_reader
	atf_add_test_case com_tcp
}
