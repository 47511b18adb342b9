"""What a test boots: the checks it needs first (tools, devices), its
loader (rawload for the tiny guests, grub-bhyve for Linux kernels and
fixtures), its disks and bhyve's command line."""

import os
import re
import shlex
import socket
import subprocess
from dataclasses import dataclass

from .host import REPO
from .outcome import fail, skip
from .process import last_line

LINUX_CMDLINE = "console=ttyS0"
LINUX_BHYVE_ARGS = ("-A", "-H", "-P")
# The NIC of `net user`: bhyve(8)'s usual slot (disks go from 4 up).
NET_SLOT = 2
# virtio-9p shares from slot 20 up (testfile.MAX_SHARES of them), the
# virtio-console of `console virtio` in slot 30: clear of the disks.
SHARE_SLOT = 20
CONSOLE_SLOT = 30
# `share results`: this directory in the test's results directory.
RESULTS_SHARE = "results"


@dataclass
class Fixture:
    directory: str
    kernel: str
    initrd: str
    cmdline: str
    bhyve_args: list
    memory: str = "512M"


def fixture_dir(name, env):
    """The directory a named fixture's recipe prints (cached by the recipe)."""
    override = env.get("HVTEST_FIXTURE_" + re.sub(r"\W", "_", name).upper())
    if override:
        return override
    script = os.path.join(REPO, "fixtures", name, "build.sh")
    if not os.path.isfile(script):
        raise skip(f"fixture {name}: fixtures/{name}/build.sh does not exist (not in this tree yet)")
    try:
        p = subprocess.run([script], capture_output=True, text=True, timeout=3600,
                           start_new_session=True, env=env, stdin=subprocess.DEVNULL)
    except OSError as e:
        raise fail(f"fixture {name}: cannot run fixtures/{name}/build.sh: {e.strerror}")
    except subprocess.TimeoutExpired:
        raise fail(f"fixture {name}: fixtures/{name}/build.sh ran over an hour")
    lines = [ln.strip() for ln in p.stdout.splitlines() if ln.strip()]
    if p.returncode != 0 or not lines:
        err = [ln for ln in p.stderr.splitlines() if ln.strip()]
        raise fail(f"fixture {name}: fixtures/{name}/build.sh failed (status {p.returncode})"
                   + (f": {err[-1]}" if err else ""), err[-20:])
    return lines[-1]


def resolve_fixture(name, env):
    """A fixture directory holds a kernel (an ELF vmlinux, booted without
    the kernel's decompressor, or a vmlinuz/bzImage) and an initramfs; optionally
    'cmdline' (the kernel command line) and 'bhyve-args' (extra options)."""
    d = fixture_dir(name, env)
    if not os.path.isdir(d):
        raise fail(f"fixture {name}: '{d}' (printed by its build.sh) is not a directory")

    def first(*names):
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p):
                return p
        return None

    kernel = first("vmlinux", "vmlinuz", "bzImage", "kernel")
    initrd = first("initramfs.cpio.gz", "initramfs.cpio", "initramfs.gz", "initramfs.img",
                   "initramfs", "initrd.img", "initrd")
    if not kernel:
        raise fail(f"fixture {name}: no vmlinux or vmlinuz in {d}")
    cmdline, bhyve_args = LINUX_CMDLINE, list(LINUX_BHYVE_ARGS)
    if os.path.isfile(os.path.join(d, "cmdline")):
        with open(os.path.join(d, "cmdline")) as f:
            cmdline = " ".join(f.read().split())
    if os.path.isfile(os.path.join(d, "bhyve-args")):
        with open(os.path.join(d, "bhyve-args")) as f:
            bhyve_args = shlex.split(f.read())
    return Fixture(d, kernel, initrd, cmdline, bhyve_args)


def prepare(vm, spec, ctx):
    """Check what SPEC needs, then set VM up: its private VMM directory, its
    loader and bhyve's command line. -> the milestone device's log file, or
    None when bhyve has no milestone device."""
    check_needs(spec, ctx)
    vm.make_vmm_dir()
    here = os.path.dirname(os.path.abspath(spec.path))
    memory, extra = set_loader(vm, spec, ctx, here)
    extra += disk_args(spec.disks, vm.vmm_dir, here)
    extra += net_args(spec, vm.host_vars)
    extra += share_args(spec.shares, here, vm.dir, vm.host_vars)
    milestone_log = None
    if "milestone" in ctx.device_names():
        milestone_log = os.path.join(vm.dir, "milestones.log")
        extra += ["-l", f"milestone,path={milestone_log}"]
    if console_of(spec, ctx) == "virtio":
        console = ["-s", f"{CONSOLE_SLOT}:0,virtio-console,console=stdio"]
    else:
        console = ["-l", "com1,stdio"]
    vm.bhyve_base = ([ctx.tool("bhyve"), "-c", str(spec.cpus or 1), "-m", memory,
                      "-s", "0:0,hostbridge", "-s", "1:0,lpc"] + console
                     + extra + spec.bhyve_args + [vm.name])
    return milestone_log


def console_of(spec, ctx):
    """com1 or virtio: the test's `console`, unless the run chose one for
    every Linux guest (hvtest --console; tiny guests talk to the UART)."""
    if ctx.console and spec.is_linux:
        return ctx.console
    return spec.console


def check_needs(spec, ctx):
    for b in ("bhyve", "bhyvectl"):
        if not ctx.tool_ok(b):
            raise fail(f"{ctx.tool(b)} is missing: run make")
    needed = spec.requires + ([spec.net] if spec.net else [])
    needed += ["virtio-9p"] if spec.shares else []
    needed += ["virtio-console"] if console_of(spec, ctx) == "virtio" else []
    if needed:
        missing = [d for d in needed if d not in ctx.device_names()]
        if missing:
            raise skip(f"bhyve has no {', '.join(missing)} device (not in bhyve -s help / -l help)")


def set_loader(vm, spec, ctx, here):
    """Set vm.loader for the test's kind of VM. -> (its memory, the bhyve
    options it needs)."""
    if spec.vm_kind in ("guest", "guest-source"):
        if spec.vm_kind == "guest":
            image, args = built_guest(spec.guest, ctx.guests_dir)
        else:
            image, args = assemble(vm, os.path.join(here, spec.source), spec.source_mode, spec.vm_line)
        args = args + spec.rawload_args
        vm.loader = lambda: vm.rawload(image, args)
        return spec.memory or "32M", []
    if not ctx.tool_ok("grub-bhyve"):
        raise skip(f"{ctx.tool('grub-bhyve')} is not built (yet)")
    fx = linux_kernel(spec, ctx, here)
    cmdline, memory = fx.cmdline, spec.memory or fx.memory
    if spec.cmdline:
        cmdline += " " + spec.cmdline
    if console_of(spec, ctx) == "virtio":
        cmdline += " console=hvc0"  # the last console= is /dev/console
    if spec.command:
        cmdline += " -- " + spec.command
    vm.loader = lambda: vm.grub_load(fx.kernel, fx.initrd, cmdline, memory)
    return memory, list(fx.bhyve_args)


def built_guest(name, guests_dir):
    """A tiny guest `make guests` built: its image and rawload's options."""
    image = os.path.join(guests_dir, name + ".bin")
    args_file = os.path.join(guests_dir, name + ".args")
    if not (os.path.isfile(image) and os.path.isfile(args_file)):
        raise fail(f"guest {name} is not built ({image}): run make guests")
    with open(args_file) as f:
        return image, f.read().split()


def assemble(vm, source, mode, line):
    """Build a tiny guest from source as guests.mk does: its image and
    rawload's options."""
    if not os.path.isfile(source):
        raise fail(f"guest source {source} does not exist (line {line})")
    out = os.path.join(vm.dir, "guest")
    link, load = ("0", "0x8000") if mode == 16 else ("0x100000", "0x100000")
    as_mode, ld_mode = ("--64", "elf_x86_64") if mode == 64 else ("--32", "elf_i386")
    steps = [
        ["as", as_mode, "--defsym", f"MODE={mode}", "-I", os.path.join(REPO, "fixtures", "guests"),
         "-I", os.path.dirname(source), source, "-o", out + ".o"],
        ["ld", "-m", ld_mode, "-N", "-e", "_start", f"-Ttext={link}",
         "--no-warn-rwx-segments", out + ".o", "-o", out + ".elf"],
        ["objcopy", "-O", "binary", "-j", ".text", out + ".elf", out + ".bin"],
    ]
    for argv in steps:
        status, output = vm.tool_run(argv, "assembler")
        if status != 0:
            raise fail(f"{argv[0]} {os.path.basename(source)} failed: {last_line(output)}",
                       output.splitlines()[-10:])
    return out + ".bin", ["-b", str(mode), "-a", load]


def linux_kernel(spec, ctx, here):
    """The Linux kernel to boot: the fixture's, or the test file's own with
    the options a fixture has by default."""
    if spec.vm_kind == "fixture":
        return ctx.fixture(spec.fixture)
    kernel = os.path.join(here, spec.kernel)
    initrd = os.path.join(here, spec.initrd) if spec.initrd else None
    for p in filter(None, (kernel, initrd)):
        if not os.path.isfile(p):
            raise fail(f"{p} does not exist (line {spec.vm_line})")
    return Fixture(here, kernel, initrd, LINUX_CMDLINE, list(LINUX_BHYVE_ARGS))


def disk_args(disks, vmm_dir, here):
    """bhyve options for the test's disks, virtio-blk from slot 4 up: its
    own images, or scratch ones made empty in the VMM directory (gone with
    it)."""
    args = []
    for slot, disk in enumerate(disks, start=4):
        if disk.scratch_size:
            path = os.path.join(vmm_dir, f"scratch{slot}.img")
            with open(path, "wb") as f:
                f.truncate(size_bytes(disk.scratch_size))
        else:
            path = os.path.join(here, disk.path)
            if not os.path.exists(path):
                raise fail(f"disk image {path} does not exist (line {disk.line})")
        args += ["-s", f"{slot}:0,virtio-blk,{path}"]
    return args


def share_dir(share, here, result_dir):
    """The host directory of a share: `share results` makes a fresh one in
    the test's results directory (kept with its transcript, and the same
    for every boot of the test)."""
    if share.results:
        path = os.path.join(result_dir, RESULTS_SHARE)
        os.makedirs(path, exist_ok=True)
        return path
    return os.path.normpath(os.path.join(here, share.path))


def share_var(tag):
    """The host steps' variable that holds a share's host directory."""
    return "SHARE_" + re.sub(r"\W", "_", tag).upper()


def share_args(shares, here, result_dir, host_vars):
    """bhyve options for the test's shares: a virtio-9p device each, from
    SHARE_SLOT up, its tag the guest's mount tag (the Linux fixture mounts
    it at /mnt/TAG). Host steps find each directory in $SHARE_TAG."""
    args = []
    for slot, share in enumerate(shares, start=SHARE_SLOT):
        path = share_dir(share, here, result_dir)
        if not os.path.isdir(path):
            raise fail(f"share {path} is not a directory (line {share.line})")
        if "," in path:
            raise fail(f"share {path}: bhyve's options cannot hold a ',' (line {share.line})")
        host_vars[share_var(share.tag)] = path
        args += ["-s", f"{slot}:0,virtio-9p,{share.tag}={path}" + (",ro" if share.ro else "")]
    return args


def free_port(proto):
    """A port on 127.0.0.1 that nothing uses now: the kernel's pick. bhyve
    binds it a moment later (another program taking it first is unlikely,
    and bhyve then exits 4 naming the rule)."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def net_args(spec, host_vars):
    """bhyve options for `net user`: the NIC on the slirp backend, with a
    hostfwd rule per `forward`, whose host ports go into HOST_VARS (the
    environment of the test's host steps)."""
    if not spec.net:
        return []
    opts = [f"{NET_SLOT}:0", spec.net, "slirp"]
    for f in spec.forwards:
        port = free_port(f.proto)
        host_vars[f.name] = str(port)
        opts.append(f"hostfwd={f.proto}:127.0.0.1:{port}-:{f.guest_port}")
    return ["-s", ",".join(opts)]


def size_bytes(size):
    n, unit = re.fullmatch(r"(\d+)([KMGTkmgt]?)", size).groups()
    return int(n) << {"": 20, "k": 10, "m": 20, "g": 30, "t": 40}[unit.lower()]
