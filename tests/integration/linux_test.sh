#! /usr/bin/env atf-sh
# The guest's commands are single-quoted: the guest expands them.
# shellcheck disable=SC2016
#
# Boot the default Linux guest (fixtures/linux: Debian's kernel with a
# busybox initramfs) through grub-bhyve and bhyve, the console on pipes,
# and check what it prints and how bhyve exits (bhyve(8): 0 rebooted,
# 1 powered off, 2 halted, 3 triple fault, 4 error).
#
# The guest runs the words after " -- " on its kernel command line, prints
# "hvtest: exit status N" and powers off; without them it starts a shell on
# ttyS0 ("/ # "). These need /dev/kvm that runs a stock kernel: `make
# check` runs them nested under QEMU where there is none. Nested, a boot
# takes 20-40 s: the timeouts are generous. Without KVM they fail, never
# skip.

# Seconds a bhyve run may take.
LINUX_TIMEOUT=300
. "$(atf_get_srcdir)/linux_lib.sh"


# load_linux VMNAME MEM CMDLINE: grub-bhyve loads the guest: the ELF
# vmlinux, or the bzImage when KERNEL=vmlinuz.
load_linux()
{
	printf 'linux (host)%s/%s %s\ninitrd (host)%s/initramfs.cpio\nboot\n' \
	    "$LINUX" "${KERNEL:-vmlinux}" "$(grub_escape "console=ttyS0 $3")" \
	    "$LINUX" |
	    "$BIN/grub-bhyve" -r host -M "$2" "$1" >grub.out 2>&1 ||
	    atf_fail "grub-bhyve $1: $(cat grub.out)"
}

# run_linux VMNAME CPUS MEM: bhyve (and $BHYVE_EXTRA's options) with the
# console to ./out, errors to ./err; its status (124 if it ran for LINUX_TIMEOUT s, 137 if it then
# ignored SIGTERM for 10 s: a hung guest). Callers take it
# with rc=$?: at the end of a pipeline this runs in a subshell.
run_linux()
{
	timeout -k 10 $LINUX_TIMEOUT "$BIN/bhyve" -c "$2" -m "$3" -A -H -P \
	    ${BHYVE_EXTRA:-} -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio "$1" >out 2>err
}

# boot_command VMNAME CPUS MEM CMDLINE: load, then run with no input.
boot_command()
{
	load_linux "$1" "$3" "$4"
	run_linux "$1" "$2" "$3" </dev/null
}

# The command ran and its status was 0; the guest powered off.
expect_command_ok()
{
	expect_exit 1 "powered off after the command"
	expect_console "userspace up"
	expect_console "hvtest: exit status 0"
}

# wait_for PATTERN FILE PID: up to LINUX_TIMEOUT s for a fixed string to
# appear; gives up early once PID (the bhyve run) has ended.
wait_for()
{
	i=0
	while ! grep -qF -- "$1" "$2" 2>/dev/null; do
		[ $i -lt $((LINUX_TIMEOUT * 10)) ] || return 1
		if ! kill -0 "$3" 2>/dev/null; then
			grep -qF -- "$1" "$2" 2>/dev/null
			return
		fi
		sleep 0.1
		i=$((i + 1))
	done
}

# The value of a "/proc/meminfo"-style "NAME: N kB" console line, in kB.
meminfo_kb()
{
	tr -d '\r' <out | sed -n "s/^$1: *\([0-9]*\) kB$/\1/p" | head -n 1
}

linux_head()
{
	atf_set timeout 900
}

atf_test_case shell
shell_head()
{
	atf_set descr "boots to the busybox shell on com1; a typed command" \
	    "runs and its output comes back; poweroff: exit 1"
	linux_head
}
shell_body()
{
	setup
	load_linux l-shell 512M "quiet"
	: >out
	mkfifo in
	run_linux l-shell 1 512M <in &
	pid=$!
	exec 3>in
	# Each step waits for the last: the tty drops input that comes
	# before the shell reads it.
	if wait_for "/ # " out $pid; then
		printf 'echo hv$((6 * 7)); uname -r\n' >&3
		if wait_for "hv42" out $pid; then
			printf 'poweroff\n' >&3
		fi
	fi
	exec 3>&-
	wait $pid
	rc=$?
	expect_exit 1 "powered off by the shell's poweroff"
	expect_console "userspace up"
	expect_console "hv42"
	expect_console "$(cat "$LINUX/version")"
}

atf_test_case command
command_head()
{
	atf_set descr "runs the command after ' -- ' on the kernel command" \
	    "line, reports its status, powers off: exit 1"
	linux_head
}
command_body()
{
	setup
	boot_command l-cmd 1 512M 'quiet -- uname -r; echo "hv$((6 * 7))"; exit 3'
	rc=$?
	expect_exit 1 "powered off after the command"
	expect_console "$(cat "$LINUX/version")"
	expect_console "hv42"
	expect_console "hvtest: exit status 3"
}

atf_test_case bzimage
bzimage_head()
{
	atf_set descr "the compressed bzImage boots too (Linux boot protocol," \
	    "the kernel's own decompressor) and runs a command"
	linux_head
}
bzimage_body()
{
	setup
	KERNEL=vmlinuz boot_command l-bzimage 1 512M 'quiet -- echo "hv$((6 * 7))"'
	rc=$?
	expect_exit 1 "powered off after the command"
	expect_console "hv42"
	expect_console "hvtest: exit status 0"
}

atf_test_case milestone
milestone_head()
{
	atf_set descr "init reports 'userspace up' through -l milestone" \
	    "(fixtures/linux/milestone.c), and a command reports its own"
	linux_head
}
milestone_body()
{
	setup
	load_linux l-ms 512M 'quiet -- milestone tests ran; milestone -p 0x1e9 x; echo "post $?"'
	timeout -k 10 $LINUX_TIMEOUT "$BIN/bhyve" -c 1 -m 512M -A -H -P \
	    -s 0:0,hostbridge -s 1:0,lpc -l com1,stdio \
	    -l milestone,path="$PWD/ms.log" l-ms >out 2>err </dev/null
	rc=$?
	expect_exit 1 "powered off after the command"
	# No device at 0x1e9 (it reads 0xff): nothing is sent, status 1.
	expect_console "post 1"
	grep -Eq '^[0-9]+\.[0-9]{6} userspace up$' ms.log ||
	    fail_with_output "no 'userspace up' record in ms.log: $(cat ms.log)"
	grep -Eq '^[0-9]+\.[0-9]{6} tests ran$' ms.log ||
	    fail_with_output "no 'tests ran' record in ms.log: $(cat ms.log)"
	[ "$(wc -l <ms.log)" -eq 2 ] ||
	    fail_with_output "ms.log has other records: $(cat ms.log)"
}

atf_test_case poweroff
poweroff_head()
{
	atf_set descr "poweroff in the guest (ACPI S5): exit 1, at once"
	linux_head
}
poweroff_body()
{
	setup
	boot_command l-poweroff 1 512M 'quiet -- poweroff; echo hvtest: not powered off'
	rc=$?
	expect_exit 1 "powered off"
	expect_console "userspace up"
	if grep -q "not powered off" out; then
		fail_with_output "the guest ran on after poweroff"
	fi
}

atf_test_case reboot
reboot_head()
{
	atf_set descr "reboot in the guest: exit 0"
	linux_head
}
reboot_body()
{
	setup
	boot_command l-reboot 1 512M 'quiet -- reboot'
	rc=$?
	expect_exit 0 "rebooted"
	expect_console "userspace up"
}

atf_test_case halt
halt_head()
{
	atf_set descr "halt in the guest: exit 2"
	linux_head
}
halt_body()
{
	setup
	boot_command l-halt 1 512M 'quiet -- halt'
	rc=$?
	expect_exit 2 "halted"
	expect_console "userspace up"
}

atf_test_case vmrun_reboot
vmrun_reboot_head()
{
	atf_set descr "vmrun.sh restarts a guest that reboots (bounded" \
	    "by -r 1: two boots, then exit 0) and stops on poweroff (exit 1)"
	linux_head
}
vmrun_reboot_body()
{
	setup
	vmrun=$BIN/vmrun.sh
	[ -x "$vmrun" ] || vmrun=$top/src/hv/vmrun.sh
	BHYVE=$BIN/bhyve BHYVECTL=$BIN/bhyvectl \
	    timeout -k 10 $((2 * LINUX_TIMEOUT)) "$vmrun" -l "$BIN/grub-bhyve" \
	    -c 1 -m 512M -r 1 -k "$LINUX/vmlinux" -K "$LINUX/initramfs.cpio" \
	    -B "console=ttyS0 quiet -- reboot" l-vmrun </dev/null >out 2>err
	rc=$?
	expect_exit 0 "rebooted twice; -r 1 stops the loop"
	boots=$(grep -c "userspace up" out)
	[ "$boots" -eq 2 ] ||
	    fail_with_output "the guest booted $boots times, expected 2"
	grep -q "restarting it (restart 1)" err ||
	    fail_with_output "vmrun.sh did not say it restarted the guest"
	"$BIN/bhyvectl" --vm=l-vmrun --destroy >/dev/null 2>&1 &&
	    fail_with_output "vmrun.sh left the VM instance behind"

	BHYVE=$BIN/bhyve BHYVECTL=$BIN/bhyvectl \
	    timeout -k 10 $LINUX_TIMEOUT "$vmrun" -l "$BIN/grub-bhyve" \
	    -c 1 -m 512M -k "$LINUX/vmlinux" -K "$LINUX/initramfs.cpio" \
	    -B "console=ttyS0 quiet -- poweroff" l-vmrun </dev/null >out 2>err
	rc=$?
	expect_exit 1 "powered off: no restart"
	boots=$(grep -c "userspace up" out)
	[ "$boots" -eq 1 ] ||
	    fail_with_output "the guest booted $boots times, expected 1"
}

# cpus_case NAME CPUS EXPECTED-ONLINE EXPECTED-NPROC
cpus_case()
{
	setup
	boot_command "$1" "$2" 512M \
	    'quiet -- echo "hvcpus online=$(cat /sys/devices/system/cpu/online) nproc=$(nproc)"'
	rc=$?
	expect_command_ok
	expect_console "hvcpus online=$3 nproc=$4"
}

atf_test_case cpus2
cpus2_head()
{
	atf_set descr "-c 2: two CPUs online"
	linux_head
}
cpus2_body()
{
	cpus_case l-cpus2 2 0-1 2
}

# apic_case VMNAME OPTION: two vCPUs with -x or -a; what Linux says. (The
# [S] keeps grep from counting the kernel command line dmesg shows.)
apic_case()
{
	setup
	BHYVE_EXTRA=$2 boot_command "$1" 2 512M \
	    'quiet -- echo "hvapic online=$(cat /sys/devices/system/cpu/online) flag=$(grep -c x2apic /proc/cpuinfo) bios=$(dmesg | grep -c "x2apic: enabled by BIO[S]")"'
	rc=$?
	expect_command_ok
	[ ! -s err ] || fail_with_output "bhyve wrote to stderr"
}

atf_test_case x2apic
x2apic_head()
{
	atf_set descr "-x -c 2: Linux finds x2APIC on from the start, both" \
	    "CPUs (the AP keeps the mode across INIT)"
	linux_head
}
x2apic_body()
{
	apic_case l-x2apic -x
	expect_console "hvapic online=0-1 flag=2 bios=1"
}

atf_test_case xapic
xapic_head()
{
	atf_set descr "-a -c 2: no x2APIC in /proc/cpuinfo, both CPUs up"
	linux_head
}
xapic_body()
{
	apic_case l-xapic -a
	expect_console "hvapic online=0-1 flag=0 bios=0"
}

atf_test_case cpus4
cpus4_head()
{
	atf_set descr "-c 4: four CPUs online"
	linux_head
}
cpus4_body()
{
	cpus_case l-cpus4 4 0-3 4
}

atf_test_case topology
topology_head()
{
	atf_set descr "-c sockets=1,cores=2,threads=2: one package of two" \
	    "cores with two threads each, as /proc/cpuinfo and sysfs see it"
	linux_head
}
topology_body()
{
	setup
	boot_command l-topo sockets=1,cores=2,threads=2 512M \
	    'quiet -- grep -E "^(physical id|siblings|core id|cpu cores)" /proc/cpuinfo | sort | uniq -c; cat /sys/devices/system/cpu/cpu0/topology/thread_siblings_list'
	rc=$?
	expect_command_ok
	expect_line '^ +4 physical id[[:space:]]*: 0$'
	expect_line '^ +4 siblings[[:space:]]*: 4$'
	expect_line '^ +4 cpu cores[[:space:]]*: 2$'
	expect_line '^ +2 core id[[:space:]]*: 0$'
	expect_line '^ +2 core id[[:space:]]*: 1$'
	expect_line '^0-1$'
}

# mem_case NAME SIZE MIB: the kernel sees all of SIZE (its "Memory: A/B
# available" line: B within 1% below), and MemTotal, what is left after
# the kernel's own reservation, is most of it.
mem_case()
{
	setup
	boot_command "$1" 1 "$2" \
	    'quiet -- dmesg | grep -E "BIOS-e820|Memory:"; grep MemTotal /proc/meminfo'
	rc=$?
	expect_command_ok
	want=$(($3 * 1024))
	seen=$(tr -d '\r' <out |
	    sed -n 's/.*Memory: [0-9]*K\/\([0-9]*\)K available.*/\1/p')
	[ -n "$seen" ] || fail_with_output "no 'Memory: ...K/...K available' line"
	if [ "$seen" -gt "$want" ] || [ "$seen" -lt $((want - want / 100)) ]; then
		fail_with_output "the kernel sees ${seen} kB of RAM, expected" \
		    "$want kB less at most 1%"
	fi
	total=$(meminfo_kb MemTotal)
	[ -n "$total" ] || fail_with_output "no MemTotal line"
	# The kernel keeps its image, page structures (1.6%) and tables.
	[ "$total" -ge $((want * 88 / 100)) ] ||
	    fail_with_output "MemTotal is $total kB, less than 88% of $want kB"
}

atf_test_case mem512m
mem512m_head()
{
	atf_set descr "-m 512M: the guest has 512 MiB"
	linux_head
}
mem512m_body()
{
	mem_case l-mem512 512M 512
}

atf_test_case mem2g
mem2g_head()
{
	atf_set descr "-m 2G: the guest has 2 GiB"
	linux_head
}
mem2g_body()
{
	mem_case l-mem2g 2G 2048
}

atf_test_case mem5g
mem5g_head()
{
	atf_set descr "-m 5G: the guest has 5 GiB, part of it above 4 GiB" \
	    "in the e820 map"
	linux_head
}
mem5g_body()
{
	mem_case l-mem5g 5G 5120
	expect_line 'BIOS-e820: \[mem 0x0000000100000000-0x[0-9a-f]{16}\] usable$'
}

atf_test_case acpi_clean
acpi_clean_head()
{
	atf_set descr "the kernel log has no ACPI errors or warnings and" \
	    "no firmware bug reports"
	linux_head
}
acpi_clean_body()
{
	setup
	boot_command l-acpi 2 512M 'quiet -- dmesg'
	rc=$?
	expect_command_ok
	expect_console "ACPI: "
	if tr -d '\r' <out |
	    grep -E "ACPI Error|ACPI BIOS Error|ACPI Warning|\[Firmware Bug\]" >bad; then
		fail_with_output "the kernel log reports firmware problems:" \
		    "$(head -5 bad)"
	fi
}

# panic_case NAME EXTRA-CMDLINE
panic_case()
{
	setup
	boot_command "$1" 1 512M "quiet $2 -- echo c >/proc/sysrq-trigger"
	rc=$?
	expect_exit 0 "reset after the panic"
	expect_console "Kernel panic - not syncing"
}

atf_test_case panic
panic_head()
{
	atf_set descr "a panicking guest (no panic=) tells bhyve through" \
	    "pvpanic, which ends the run: exit 0, the panic on the console"
	linux_head
}
panic_body()
{
	panic_case l-panic ""
	grep -q pvpanic err ||
	    fail_with_output "bhyve did not report the pvpanic event"
}

atf_test_case panic_reboot
panic_reboot_head()
{
	atf_set descr "a panicking guest with panic=-1 resets at once: exit 0"
	linux_head
}
panic_reboot_body()
{
	panic_case l-panic-1 "panic=-1"
}

atf_init_test_cases()
{
	atf_add_test_case shell
	atf_add_test_case command
	atf_add_test_case bzimage
	atf_add_test_case milestone
	atf_add_test_case poweroff
	atf_add_test_case reboot
	atf_add_test_case halt
	atf_add_test_case vmrun_reboot
	atf_add_test_case cpus2
	atf_add_test_case cpus4
	atf_add_test_case x2apic
	atf_add_test_case xapic
	atf_add_test_case topology
	atf_add_test_case mem512m
	atf_add_test_case mem2g
	atf_add_test_case mem5g
	atf_add_test_case acpi_clean
	atf_add_test_case panic
	atf_add_test_case panic_reboot
}
