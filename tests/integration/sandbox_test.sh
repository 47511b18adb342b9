#! /usr/bin/env atf-sh
#
# bhyve's sandbox (README, "Sandbox"): every thread of a running bhyve has a
# seccomp filter (Seccomp: 2 in each /proc/PID/task/*/status) while a Linux
# guest uses its disks, consoles, share, network and entropy; -o sandbox=off
# runs without any; a bad value and a host that cannot install a filter are
# one line and exit 4; the teardown a filter restricts (destroy on power-off,
# a console socket's removal) still happens. Needs /dev/kvm that runs Linux
# for every_thread: `make check` runs it nested under QEMU.

LINUX_TIMEOUT=300
. "$(atf_get_srcdir)/linux_lib.sh"

GUESTS=$(atf_get_srcdir)/../../build/guests

# The guest's command ended with status 0 (the fixture's init says so).
expect_ok()
{
	expect_line '^hvtest: exit status 0$'
}

# tiny GUEST VMNAME: load a test guest from fixtures/guests with rawload.
tiny()
{
	[ -f "$GUESTS/$1.bin" ] || atf_fail "guest $1 is not built: run make"
	# shellcheck disable=SC2046 # NAME.args is a list of arguments
	"$BIN/rawload" -m 32M $(cat "$GUESTS/$1.args") "$GUESTS/$1.bin" "$2" \
	    2>rawload.err || atf_fail "rawload $1: $(cat rawload.err)"
}

TINY_ARGS="-c 1 -m 32M -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio"

# modes PID: "COMM=MODE" for each thread of PID (spaces in COMM as _), one
# per line, sorted.
# KVM's own kernel workers that it attaches to the VM's process (comm
# kvm-*) are not bhyve's code and are left out.
modes()
{
	for t in /proc/"$1"/task/*; do
		c=$(cat "$t/comm" 2>/dev/null) || continue
		case $c in kvm-*) continue ;; esac
		printf '%s=%s\n' "$(printf '%s' "$c" | tr ' ' _)" \
		    "$(sed -n 's/^Seccomp:[[:space:]]*//p' "$t/status" 2>/dev/null)"
	done | sort
}

# watch PID WANT: poll the threads of bhyve (the child of timeout PID)
# until each expected comm in WANT is there and every thread's mode is 2,
# or bhyve ends; the last reading in ./modes.
watch()
{
	i=0
	: >modes
	while [ $i -lt 1500 ] && kill -0 "$1" 2>/dev/null; do
		bpid=$(pgrep -P "$1" -x bhyve)
		if [ -n "$bpid" ]; then
			modes "$bpid" >modes.new
			if [ -s modes.new ]; then
				mv modes.new modes
				all=yes
				for c in $2; do
					grep -qx "$c=2" modes || all=no
				done
				! grep -qv '=2$' modes || all=no
				[ $all = yes ] && return 0
			fi
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

atf_test_case every_thread
every_thread_head()
{
	atf_set descr "Seccomp: 2 on every thread while a 2-vCPU Linux guest" \
	    "writes a disk, reads /dev/hwrng, uses a 9p share, gets a DHCP" \
	    "address from slirp and has a console socket and a gdb stub;" \
	    "the guest powers off, exit 1, and the socket is removed"
	atf_set timeout 900
}
every_thread_body()
{
	setup
	truncate -s 1M disk.img
	mkdir share
	echo "from the host" >share/in.txt
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cmd='echo hv-sbx | dd of=/dev/vda conv=sync,fsync 2>/dev/null; echo "rng $(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1 | tr -d " \n")"; cat /mnt/s/in.txt; echo "from the guest" >/mnt/s/out.txt; ip -4 addr show eth0 | grep -o "inet [0-9./]*"; sleep 2'
	printf 'linux (host)%s/vmlinux %s\ninitrd (host)%s/initramfs.cpio\nboot\n' \
	    "$LINUX" "$(grub_escape "console=ttyS0 quiet -- $cmd")" \
	    "$LINUX" | "$BIN/grub-bhyve" -r host -M 512M v-sbx >grub.out 2>&1 ||
	    atf_fail "grub-bhyve: $(cat grub.out)"
	timeout -k 10 $LINUX_TIMEOUT "$BIN/bhyve" -c 2 -m 512M -A -H -P \
	    -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio \
	    -s 3,virtio-blk,disk.img -s 4,virtio-rnd \
	    -s 5,virtio-9p,s="$(pwd)/share" -s 6,virtio-net,slirp \
	    -s 7,virtio-console,port1="$(pwd)/con.sock" \
	    -G "127.0.0.1:$port" v-sbx </dev/null >out 2>err &
	pid=$!
	watch "$pid" "bhyve vcpu_0 vcpu_1 blk 9p vtnet-tx gdb"
	seen=$?
	wait "$pid"
	rc=$?
	[ $seen -eq 0 ] || fail_with_output "not every thread had Seccomp 2" \
	    "(or one was missing): $(tr '\n' ' ' <modes)"
	expect_exit 1 "powered off"
	expect_ok
	expect_image disk.img 0 hv-sbx
	expect_line '^rng [0-9a-f]{32}$'
	expect_line '^from the host$'
	expect_line '^inet 10\.0\.2\.15/'
	[ "$(cat share/out.txt)" = "from the guest" ] ||
	    fail_with_output "share/out.txt holds '$(cat share/out.txt 2>&1)'"
	[ ! -e con.sock ] || fail_with_output "con.sock was left behind"
}

atf_test_case off
off_head()
{
	atf_set descr "-o sandbox=off: no thread has a filter, the guest runs"
}
off_body()
{
	setup_tiny
	tiny spin v-off
	timeout --foreground 30 "$BIN/bhyve" $TINY_ARGS -o sandbox=off \
	    v-off </dev/null >out 2>err &
	pid=$!
	i=0
	while [ $i -lt 100 ]; do
		bpid=$(pgrep -P "$pid" -x bhyve)
		[ -n "$bpid" ] && modes "$bpid" >modes && grep -q '^vcpu_0=' modes && break
		sleep 0.1
		i=$((i + 1))
	done
	kill -TERM "$pid"
	wait "$pid"
	grep -q '^vcpu_0=0$' modes && ! grep -qv '=0$' modes ||
	    fail_with_output "thread modes with sandbox=off: $(tr '\n' ' ' <modes)"
}

atf_test_case bad_value
bad_value_head()
{
	atf_set descr "-o sandbox=maybe: one line naming the key and value, exit 4"
}
bad_value_body()
{
	setup_tiny
	tiny hello v-bad
	timeout 30 "$BIN/bhyve" $TINY_ARGS -o sandbox=maybe v-bad \
	    </dev/null >out 2>err
	rc=$?
	expect_exit 4 "a bad boolean"
	[ "$(wc -l <err)" -eq 1 ] && grep -q "sandbox" err && grep -q maybe err ||
	    fail_with_output "expected one line naming sandbox and 'maybe'"
}

atf_test_case cannot_install
cannot_install_head()
{
	atf_set descr "where no seccomp filter can be installed: one line," \
	    "exit 4, before the guest runs; -o sandbox=off runs it"
}
cannot_install_body()
{
	setup_tiny
	noseccomp=$(atf_get_srcdir)/noseccomp.py
	tiny hello v-nosc
	timeout 30 python3 "$noseccomp" "$BIN/bhyve" $TINY_ARGS v-nosc \
	    </dev/null >out 2>err
	rc=$?
	expect_exit 4 "no seccomp"
	[ "$(wc -l <err)" -eq 1 ] && grep -q "cannot install a seccomp filter" err &&
	    grep -q "sandbox=off" err ||
	    fail_with_output "expected one line saying so and naming sandbox=off"
	! grep -q "hello" out || fail_with_output "the guest ran"
	timeout 30 python3 "$noseccomp" "$BIN/bhyve" $TINY_ARGS -o sandbox=off \
	    v-nosc </dev/null >out 2>err
	rc=$?
	expect_exit 1 "powered off"
	grep -q "hello from guest" out || fail_with_output "no guest output"
}

atf_test_case destroy_on_poweroff
destroy_on_poweroff_head()
{
	atf_set descr "-D under the sandbox: the instance is removed at" \
	    "power-off (through descriptors bhyve holds), and kept without -D"
}
destroy_on_poweroff_body()
{
	setup_tiny
	tiny hello v-keep
	timeout 30 "$BIN/bhyve" $TINY_ARGS v-keep </dev/null >out 2>err
	rc=$?
	expect_exit 1 "powered off"
	[ -d "$BHYVE_VMM_DIR/v-keep" ] || fail_with_output "v-keep went without -D"
	tiny hello v-gone
	timeout 30 "$BIN/bhyve" $TINY_ARGS -D v-gone </dev/null >out 2>err
	rc=$?
	expect_exit 1 "powered off"
	[ ! -e "$BHYVE_VMM_DIR/v-gone" ] ||
	    fail_with_output "v-gone is still there: $(ls -la "$BHYVE_VMM_DIR/v-gone")"
}

# For the tiny guests: KVM and the binaries, no Linux fixture.
setup_tiny()
{
	top=$(atf_get_srcdir)/../..
	BIN=$top/build/bin
	BHYVE_VMM_DIR=$(pwd)/vmm
	export BHYVE_VMM_DIR
	[ -c /dev/kvm ] || atf_fail "/dev/kvm is missing: run the" \
	    "integration tests with 'make check'"
	for b in rawload bhyve; do
		[ -x "$BIN/$b" ] || atf_fail "$BIN/$b is missing: run make"
	done
}

atf_init_test_cases()
{
	atf_add_test_case every_thread
	atf_add_test_case off
	atf_add_test_case bad_value
	atf_add_test_case cannot_install
	atf_add_test_case destroy_on_poweroff
}
