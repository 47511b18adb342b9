#!/bin/sh
# Per-disk, per-tap and per-passthru variables are made with eval:
# shellcheck disable=SC2034,SC2154
#
# vmrun.sh: FreeBSD's share/examples/bhyve/vmrun.sh for bhyve on Linux.
#
# Creates the VM, loads its kernel with grub-bhyve, runs bhyve, and loops
# while the guest reboots (bhyve exits 0); stops when it powers off (1),
# halts (2), triple faults (3) or bhyve fails (4), then destroys the VM and
# exits with bhyve's status. The loader is grub-bhyve (not bhyveload):
#   - with -k KERNEL it boots a Linux kernel from the host directly, feeding
#     grub-bhyve "linux", "initrd" and "boot" commands;
#   - otherwise it boots the first disk (or the installation ISO) through
#     grub-bhyve with a device.map built from the -d disks: (hd0), (hd1)...
#     and (cd0), with the console on -C. The ISO boots with -r cd0 when
#     the first disk has no boot sector yet or -i says so (the Handbook's
#     install: vmrun.sh -c 1 -m 1024M -d linux.img -i -I install.iso NAME);
#     the disk boots with -r hd0, and grub-bhyve runs the grub.cfg of the
#     partition that holds one (/boot/grub, or /grub on a separate /boot).
# Differences from FreeBSD's: no root needed (VM instances of other users
# live in their runtime directory); no default tap device (-t adds one);
# no default disk when booting a kernel with -k; -r bounds the restarts.
set -u

PROG=vmrun.sh
HERE=$(cd "$(dirname "$0")" && pwd -P)

DEFAULT_MEMSIZE=512M
DEFAULT_CPUS=2
DEFAULT_CONSOLE=stdio
DEFAULT_NIC=virtio-net
DEFAULT_DISK=virtio-blk
DEFAULT_VIRTIO_DISK="./diskdev"
DEFAULT_ISOFILE="./release.iso"
DEFAULT_FIRMWARE=/usr/share/bhyve/BHYVE_UEFI.fd
DEFAULT_VNCHOST=127.0.0.1
DEFAULT_VNCPORT=5900
DEFAULT_VNCSIZE="w=1024,h=768"
DEFAULT_CMDLINE="console=ttyS0"

errmsg() {
	echo "$PROG: $*" >&2
}

usage() {
	cat <<EOF
Usage: vmrun.sh [-aAEhiTuvw] [-c <CPUs>] [-C <console>] [-d <disk file>]
                [-e <name=value>] [-f <path of firmware>] [-F <size>]
                [-g <gdbport>] [-G [w][address:]port] [-H <directory>]
                [-I <location of installation iso>] [-l <loader>]
                [-L <VNC IP for UEFI framebuffer>] [-m <memsize>]
                [-n <network adapter emulation type>] [-p <bus/slot/func>]
                [-P <port>] [-r <max restarts>] [-t <tapdev>] [-U <uuid>]
                [-k <kernel> [-K <initrd>]... [-B <kernel command line>]]
                <vmname>

       -h: display this help message
       -a: force memory mapped local APIC access
       -A: use AHCI disk emulation instead of ${DEFAULT_DISK}
       -B: kernel command line for -k (default: ${DEFAULT_CMDLINE})
       -c: number of virtual cpus, or bhyve's topology
           (cpus=n,sockets=n,cores=n,threads=n; default: ${DEFAULT_CPUS})
       -C: console device (default: ${DEFAULT_CONSOLE})
       -d: disk file, with ,options for the device (default without -k:
           ${DEFAULT_VIRTIO_DISK}, created with 8G when missing)
       -e: set a loader (grub) variable, with -k
       -E: use UEFI mode
       -f: use a specific UEFI firmware (default: ${DEFAULT_FIRMWARE})
       -F: use a custom UEFI GOP framebuffer size (default: ${DEFAULT_VNCSIZE})
       -g: listen for a connection from gdb at <gdbport> (bhyve -G)
       -G: bind the GDB stub to the specified address
       -H: host directory for the loader: relative -k and -K paths are
           in it; without -k, grub-bhyve reads its grub.cfg there
       -i: force boot of the Installation CDROM image
       -I: Installation CDROM image location (default: ${DEFAULT_ISOFILE})
       -k: boot this Linux kernel (bzImage) from the host, no disk needed
       -K: initrd for -k (repeatable)
       -l: the OS loader to use (default: grub-bhyve)
       -L: IP address for UEFI GOP VNC server (default: ${DEFAULT_VNCHOST})
       -m: memory size (default: ${DEFAULT_MEMSIZE})
       -n: network adapter emulation type (default: ${DEFAULT_NIC})
       -p: pass-through a host PCI device at bus/slot/func (e.g. 10/0/0)
       -P: UEFI GOP VNC port (default: ${DEFAULT_VNCPORT})
       -r: restart the guest at most this many times (default: no limit)
       -t: tap device for virtio-net (repeatable; default: none)
       -T: enable tablet device (for UEFI GOP)
       -u: RTC keeps UTC time
       -U: the guest's UUID
       -v: wait for VNC client connection before booting VM
       -w: ignore unimplemented MSRs

Exit status: bhyve's last one (1 powered off, 2 halted, 3 triple fault,
4 error; 0 when -r stopped a rebooting guest); 4 when the loader fails;
64 for a bad command line.
EOF
}

usage_error() {
	usage >&2
	[ -n "${1:-}" ] && errmsg "$1"
	exit 64
}

# A tool from our build directory (beside this script), else from PATH.
tool() {
	if [ -x "$HERE/$1" ]; then
		echo "$HERE/$1"
	else
		command -v "$1" || echo "$1"
	fi
}

BHYVE=${BHYVE:-$(tool bhyve)}
BHYVECTL=${BHYVECTL:-$(tool bhyvectl)}
LOADER=$(tool grub-bhyve)

force_install=0
isofile=${DEFAULT_ISOFILE}
memsize=${DEFAULT_MEMSIZE}
console=${DEFAULT_CONSOLE}
cpus=${DEFAULT_CPUS}
nic=${DEFAULT_NIC}
tap_total=0
disk_total=0
disk_emulation=${DEFAULT_DISK}
loader_vars=""
bhyverun_opt="-H -A -P"
pass_total=0
host_base=""
kernel=""
initrds=""
cmdline=${DEFAULT_CMDLINE}
max_restarts=""

efi_mode=0
efi_firmware=${DEFAULT_FIRMWARE}
vncwait=""
vnchost=${DEFAULT_VNCHOST}
vncport=${DEFAULT_VNCPORT}
vncsize=${DEFAULT_VNCSIZE}
tablet=""

nl='
'

while getopts aAB:c:C:d:e:Ef:F:g:G:hH:iI:k:K:l:L:m:n:p:P:r:t:TuU:vw c; do
	case $c in
	a) bhyverun_opt="${bhyverun_opt} -a" ;;
	A) disk_emulation="ahci-hd" ;;
	B) cmdline=${OPTARG} ;;
	c) cpus=${OPTARG} ;;
	C) console=${OPTARG} ;;
	d)
		disk_dev=${OPTARG%%,*}
		disk_opts=${OPTARG#"${disk_dev}"}
		eval "disk_dev${disk_total}=\${disk_dev}"
		eval "disk_opts${disk_total}=\${disk_opts}"
		disk_total=$((disk_total + 1))
		;;
	e)
		case ${OPTARG} in
		[A-Za-z_]*=*) ;;
		*) usage_error "-e: expected name=value, got '${OPTARG}'" ;;
		esac
		loader_vars="${loader_vars}set ${OPTARG}${nl}"
		;;
	E) efi_mode=1 ;;
	f) efi_firmware=${OPTARG} ;;
	F) vncsize=${OPTARG} ;;
	g) bhyverun_opt="${bhyverun_opt} -G ${OPTARG}" ;;
	G) bhyverun_opt="${bhyverun_opt} -G ${OPTARG}" ;;
	H)
		host_base=$(cd "${OPTARG}" 2>/dev/null && pwd -P) ||
			usage_error "-H: not a directory: ${OPTARG}"
		;;
	i) force_install=1 ;;
	I) isofile=${OPTARG} ;;
	k) kernel=${OPTARG} ;;
	K) initrds="${initrds}${initrds:+${nl}}${OPTARG}" ;;
	l) LOADER=${OPTARG} ;;
	L) vnchost=${OPTARG} ;;
	m) memsize=${OPTARG} ;;
	n) nic=${OPTARG} ;;
	p)
		eval "pass_dev${pass_total}=\${OPTARG}"
		pass_total=$((pass_total + 1))
		;;
	P) vncport=${OPTARG} ;;
	r)
		case ${OPTARG} in
		'' | *[!0-9]*) usage_error "-r: not a number: ${OPTARG}" ;;
		esac
		max_restarts=${OPTARG}
		;;
	t)
		eval "tap_dev${tap_total}=\${OPTARG}"
		tap_total=$((tap_total + 1))
		;;
	T) tablet="-s 30,xhci,tablet" ;;
	u) bhyverun_opt="${bhyverun_opt} -u" ;;
	U) bhyverun_opt="${bhyverun_opt} -U ${OPTARG}" ;;
	v) vncwait=",wait" ;;
	w) bhyverun_opt="${bhyverun_opt} -w" ;;
	h) usage; exit 0 ;;
	*) usage_error ;;
	esac
done
shift $((OPTIND - 1))

[ $# -eq 1 ] || usage_error "virtual machine name not specified"
vmname=$1

if [ -n "${initrds}" ] && [ -z "${kernel}" ]; then
	usage_error "-K needs -k"
fi
if [ -z "${kernel}" ] && [ "${efi_mode}" -eq 0 ] && [ "${disk_total}" -eq 0 ]; then
	disk_total=1
	disk_dev0=${DEFAULT_VIRTIO_DISK}
	disk_opts0=""
fi

# If PCI passthru devices are configured then guest memory must be wired.
if [ "${pass_total}" -gt 0 ]; then
	bhyverun_opt="${bhyverun_opt} -S"
fi

if [ "${efi_mode}" -gt 0 ] && [ ! -f "${efi_firmware}" ]; then
	errmsg "EFI firmware ${efi_firmware} doesn't exist: give one with -f"
	exit 64
fi

# A host file for the loader's (host) device: absolute, relative paths
# taken in -H's directory (or the current one); grub's words have no
# spaces, so neither may the path.
host_path() {
	case $1 in
	/*) p=$1 ;;
	*) p=${host_base:-$(pwd -P)}/$1 ;;
	esac
	[ -r "$p" ] || { errmsg "cannot read $p"; exit 64; }
	case $p in
	*[[:space:]]*) errmsg "grub-bhyve cannot take a path with spaces: $p"; exit 64 ;;
	esac
	echo "$p"
}

# The kernel command line as grub words: GRUB splits on spaces and reads
# quotes, $ and ; itself, so every other character goes backslashed.
grub_escape() {
	printf '%s' "$1" | tr '\n' ' ' | sed 's/[^A-Za-z0-9 _.,:=\/+-]/\\&/g'
}

if [ -n "${kernel}" ]; then
	kernel=$(host_path "${kernel}") || exit 64
	cmdline=$(grub_escape "${cmdline}")
	old_ifs=$IFS
	IFS=$nl
	k_initrds=""
	for f in ${initrds}; do
		f=$(host_path "$f") || exit 64
		k_initrds="${k_initrds} (host)$f"
	done
	IFS=$old_ifs
fi

make_and_check_diskdev() {
	virtio_diskdev=$1
	# Create the virtio diskdev file if needed
	if [ ! -e "${virtio_diskdev}" ]; then
		echo "virtio disk device file \"${virtio_diskdev}\" does not exist." >&2
		echo "Creating it ..." >&2
		truncate -s 8G "${virtio_diskdev}" >/dev/null
	fi
	if [ ! -r "${virtio_diskdev}" ]; then
		errmsg "virtio disk device file \"${virtio_diskdev}\" is not readable"
		exit 64
	fi
	if [ ! -w "${virtio_diskdev}" ]; then
		errmsg "virtio disk device file \"${virtio_diskdev}\" is not writable"
		exit 64
	fi
}

# A disk anything can boot from has an MBR (or GPT's protective MBR):
# the 0x55 0xaa signature at offset 510.
has_boot_sector() {
	[ -r "$1" ] || return 1
	[ "$(od -An -tx1 -j510 -N2 "$1" 2>/dev/null | tr -d ' \n')" = 55aa ]
}

workdir=$(mktemp -d "${TMPDIR:-/tmp}/vmrun.XXXXXX") || exit 4
# shellcheck disable=SC2317 # the EXIT trap calls it
cleanup() {
	"${BHYVECTL}" --vm="${vmname}" --destroy >/dev/null 2>&1
	rm -rf "${workdir}"
}
trap cleanup EXIT
# A signal (bhyve gets it too: SIGTERM presses the guest's power button)
# stops the loop once bhyve has exited, with bhyve's status.
stopping=0
trap 'stopping=1' HUP INT TERM

# grub-bhyve's device map: (hdN) for each disk, (cd0) for the ISO.
write_device_map() { # install?
	: >"${workdir}/device.map"
	i=0
	while [ $i -lt "${disk_total}" ]; do
		eval "disk=\${disk_dev${i}}"
		if [ -r "${disk}" ]; then
			echo "(hd$i) $(cd "$(dirname "${disk}")" && pwd -P)/$(basename "${disk}")" \
				>>"${workdir}/device.map"
		fi
		i=$((i + 1))
	done
	if [ "$1" -eq 1 ]; then
		echo "(cd0) $(cd "$(dirname "${isofile}")" && pwd -P)/$(basename "${isofile}")" \
			>>"${workdir}/device.map"
	fi
}

# Load the guest into the VM; grub-bhyve creates it.
run_loader() {
	mapopt=""
	if [ "${disk_total}" -gt 0 ] || [ "${need_install}" -eq 1 ]; then
		write_device_map "${need_install}"
		mapopt="-m ${workdir}/device.map"
	fi
	if [ -n "${kernel}" ]; then
		# The commands come from us; grub's console output still goes
		# to -C when that is not stdio.
		consopt=""
		[ "${console}" = stdio ] || consopt="-c ${console}"
		# shellcheck disable=SC2086 # options are lists of words
		printf '%slinux (host)%s %s\n%sboot\n' "${loader_vars}" "${kernel}" "${cmdline}" \
			"${k_initrds:+initrd${k_initrds}${nl}}" |
			"${LOADER}" ${consopt} ${mapopt} -r host -M "${memsize}" "${vmname}"
		return
	fi
	if [ -n "${loader_vars}" ]; then
		errmsg "-e is for -k boots; ignored"
	fi
	# The installed disk: grub-bhyve finds the partition with grub.cfg.
	if [ "${need_install}" -eq 1 ]; then
		root=cd0
	else
		root=hd0
	fi
	dopt=""
	if [ -n "${host_base}" ] && [ "${disk_total}" -eq 0 ]; then
		root=host
		dopt="-d ${host_base}"
	fi
	consopt=""
	[ "${console}" = stdio ] || consopt="-c ${console}"
	# shellcheck disable=SC2086
	"${LOADER}" ${consopt} ${mapopt} ${dopt} -r "${root}" -M "${memsize}" "${vmname}"
}

# bhyve's device arguments: taps and disks from slot 2, passthru after.
device_args() {
	nextslot=2 # slot 0 is hostbridge, slot 1 is lpc
	devargs=""
	i=0
	while [ $i -lt "${tap_total}" ]; do
		eval "tapname=\${tap_dev${i}}"
		devargs="${devargs} -s ${nextslot}:0,${nic},${tapname}"
		nextslot=$((nextslot + 1))
		i=$((i + 1))
	done
	i=0
	while [ $i -lt "${disk_total}" ]; do
		eval "disk=\${disk_dev${i}}"
		eval "opts=\${disk_opts${i}}"
		make_and_check_diskdev "${disk}"
		devargs="${devargs} -s ${nextslot}:0,${disk_emulation},${disk}${opts}"
		nextslot=$((nextslot + 1))
		i=$((i + 1))
	done
	i=0
	while [ $i -lt "${pass_total}" ]; do
		eval "pass=\${pass_dev${i}}"
		case ${pass} in
		*/*/*) ;;
		*) errmsg "-p ${pass}: give the device as bus/slot/func"; exit 64 ;;
		esac
		devargs="${devargs} -s ${nextslot}:0,passthru,${pass}"
		nextslot=$((nextslot + 1))
		i=$((i + 1))
	done
	echo "${devargs}"
}

echo "Launching virtual machine \"${vmname}\" ..." >&2

"${BHYVECTL}" --vm="${vmname}" --destroy >/dev/null 2>&1

restarts=0
need_install=0
while :; do
	need_install=0
	if [ -z "${kernel}" ] && [ "${efi_mode}" -eq 0 ]; then
		if [ "${force_install}" -eq 1 ] || ! has_boot_sector "${disk_dev0}"; then
			need_install=1
		fi
	fi
	installer_opt=""
	if [ "${need_install}" -eq 1 ]; then
		if [ ! -r "${isofile}" ]; then
			errmsg "Installation CDROM image \"${isofile}\" is not readable"
			exit 64
		fi
		installer_opt="-s 31:0,ahci-cd,${isofile}"
	fi

	devargs=$(device_args) || exit $?

	if [ "${efi_mode}" -eq 0 ]; then
		run_loader
		loader_exit=$?
		if [ "${stopping}" -eq 1 ]; then
			exit 4
		fi
		if [ "${loader_exit}" -ne 0 ]; then
			errmsg "the loader ${LOADER} failed (exit ${loader_exit})"
			exit 4
		fi
	fi

	efiargs=""
	if [ "${efi_mode}" -gt 0 ]; then
		efiargs="-s 29,fbuf,tcp=${vnchost}:${vncport},${vncsize}${vncwait}"
		efiargs="${efiargs} -l bootrom,${efi_firmware} ${tablet}"
	fi

	# shellcheck disable=SC2086 # option lists are words
	"${BHYVE}" -c "${cpus}" -m "${memsize}" ${bhyverun_opt} \
		-s 0:0,hostbridge \
		-s 1:0,lpc \
		${efiargs} \
		${devargs} \
		-l "com1,${console}" \
		${installer_opt} \
		"${vmname}"
	bhyve_exit=$?
	# bhyve returns the following status codes:
	#  0 - VM has been reset
	#  1 - VM has been powered off
	#  2 - VM has been halted
	#  3 - VM generated a triple fault
	#  all other non-zero status codes are errors
	[ "${bhyve_exit}" -eq 0 ] || break
	if [ "${stopping}" -eq 1 ]; then
		errmsg "\"${vmname}\" rebooted; stopping on a signal"
		break
	fi
	if [ -n "${max_restarts}" ] && [ "${restarts}" -ge "${max_restarts}" ]; then
		errmsg "\"${vmname}\" rebooted; not restarting it again (-r ${max_restarts})"
		break
	fi
	restarts=$((restarts + 1))
	errmsg "\"${vmname}\" rebooted; restarting it (restart ${restarts})"
	"${BHYVECTL}" --vm="${vmname}" --destroy >/dev/null 2>&1
done

case ${bhyve_exit} in
0 | 1 | 2) ;;
3) errmsg "\"${vmname}\" stopped: the guest triple faulted (exit 3)" ;;
*) errmsg "\"${vmname}\" stopped: bhyve failed (exit ${bhyve_exit})" ;;
esac
exit "${bhyve_exit}"
