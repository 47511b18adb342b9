#! /usr/bin/env atf-sh
# Tests for harness/nested, the runner that boots an outer QEMU (TCG) VM with
# /dev/kvm and runs a command in it. Every case boots a VM (about 4 s each).

# Sets NESTED (the runner) and WORK (the work directory: it is under /tmp, a
# fresh tmpfs inside the VM, so every run shares it), and keeps the kernel
# cache (a 70 MB download) in the real home: kyua points HOME at the work
# directory.
nested_setup() {
	if [ -z "${BHYVE_CACHE:-}" ]; then
		BHYVE_CACHE=$(getent passwd "$(id -u)" | cut -d: -f6)/.cache/bhyve-linux
		export BHYVE_CACHE
	fi
	NESTED=$(atf_get_srcdir)/../../harness/nested
	WORK=$(pwd)
}

nested_head() {
	atf_set require.progs qemu-system-x86_64 cpio
	atf_set timeout 600
}

atf_test_case exit_status
exit_status_head() {
	atf_set descr "The command's exit status is nested's: 0 and non-zero"
	nested_head
}
exit_status_body() {
	nested_setup
	atf_check -s exit:0 -o empty -e empty "$NESTED" --share "$WORK" -- true
	atf_check -s exit:42 -o empty -e empty "$NESTED" --share "$WORK" -- sh -c 'exit 42'
}

atf_test_case stdout_stderr
stdout_stderr_head() {
	atf_set descr "The command's stdout and stderr stay apart, bytes unchanged"
	nested_head
}
stdout_stderr_body() {
	nested_setup
	atf_check -s exit:3 -o inline:"out 1\nout 2\n" -e inline:"err 1\nerr 2\n" \
		"$NESTED" --share "$WORK" -- sh -c 'echo out 1; echo err 1 >&2; echo out 2; echo err 2 >&2; exit 3'
}

atf_test_case shared_dir
shared_dir_head() {
	atf_set descr "A --share directory is read-write at the same path; / is read-only"
	nested_head
}
shared_dir_body() {
	nested_setup
	mkdir shared
	cd shared || atf_fail "cannot cd to shared"
	atf_check -s exit:0 "$NESTED" --share "$WORK/shared" -- sh -c '
		echo written inside >file &&
		! touch /nested-test-probe 2>/dev/null'
	atf_check -o inline:"written inside\n" cat file
	atf_check -s exit:1 test -e /nested-test-probe
}

atf_test_case frozen_vm
frozen_vm_head() {
	atf_set descr "A VM whose clock stops (QEMU's monitor 'stop', as a" \
	    "TCG livelock looks) is stopped by the watchdog: exit 123, a" \
	    "clear line, the vCPUs' state kept"
	nested_head
}
frozen_vm_body() {
	nested_setup
	mkdir tmp
	# The command stops its own VM once it runs; without the watchdog
	# nested would wait for the 300 s timeout.
	TMPDIR=$WORK/tmp BHYVE_NESTED_STALL=10 "$NESTED" --timeout 300 \
	    --share "$WORK" -- sh -c 'sleep 3600' >out 2>err &
	pid=$!
	i=0
	until sock=$(ls "$WORK"/tmp/nested.*/monitor.sock 2>/dev/null) &&
	    [ -e "$(dirname "$sock")/heartbeat" ]; do
		[ $i -lt 600 ] || atf_fail "the VM never started its heartbeat"
		sleep 0.2
		i=$((i + 1))
	done
	# The monitor drops input that comes before its first prompt.
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
out = b""
while out.count(b"(qemu)") < 1: out += s.recv(4096)
s.sendall(b"stop\n")
while out.count(b"(qemu)") < 2: out += s.recv(4096)' "$sock" ||
	    atf_fail "cannot stop the VM through its monitor"
	wait "$pid"
	rc=$?
	[ "$rc" = 123 ] || atf_fail "exit $rc, expected 123: $(cat err)"
	grep -q "the outer VM froze" err || atf_fail "no froze line: $(cat err)"
	grep -q "CPU#0" "$(dirname "$sock")/frozen.txt" ||
	    atf_fail "no vCPU state in frozen.txt"
}

atf_test_case dev_kvm
dev_kvm_head() {
	atf_set descr "/dev/kvm exists inside and BHYVE_NESTED=1 is set"
	nested_head
}
dev_kvm_body() {
	nested_setup
	# shellcheck disable=SC2016 # expanded inside the VM
	atf_check -s exit:0 -o inline:"1\n" \
		"$NESTED" --share "$WORK" -- sh -c 'test -c /dev/kvm && echo "$BHYVE_NESTED"'
}

atf_init_test_cases() {
	atf_add_test_case exit_status
	atf_add_test_case stdout_stderr
	atf_add_test_case shared_dir
	atf_add_test_case dev_kvm
	atf_add_test_case frozen_vm
}
