#!/usr/bin/python3
"""Disk benchmark (issue 9): bhyve's disks against QEMU's, inside the guest.

The default Linux guest (fixtures/linux) boots with one 1 GiB raw image
(a file in the outer VM's /tmp, written in full first) attached as
virtio-blk, AHCI or NVMe, under bhyve and under QEMU with KVM, 1 vCPU and
512 MiB each, default cache modes on both sides (the host's page cache:
bhyve without nocache, QEMU's cache=writeback). The guest runs diskbench
(tests/bench/diskbench.c, appended to the initramfs) on the raw device with
O_DIRECT: sequential read and write with 1 MiB requests at depth 1, 4 KiB
random read and write at depth 1 and 32, SECONDS each. Median of RUNS boots
per configuration.

Needs root and /dev/kvm; run it nested with
  harness/nested --timeout 3600 -- env RUNS=5 tests/bench/disk.py
ENGINES="..." adds bhyve columns run with other disk settings (e.g.
ENGINES="sectorsize=4096" to compare). Prints a Markdown table.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
B = os.path.join(ROOT, "build", "bin")
RUNS = int(os.environ.get("RUNS", "5"))
SECONDS = os.environ.get("SECONDS_PER_TEST", "3")
DEVICES = os.environ.get("DEVICES", "virtio-blk ahci nvme").split()
RUN_TIMEOUT = 300
MEM = "512M"
IMAGE_MIB = 1024
VMM_DIR = "/tmp/bench-disk-vmm"

TESTS = [("read", 1048576, 1), ("write", 1048576, 1),
         ("randread", 4096, 1), ("randwrite", 4096, 1),
         ("randread", 4096, 32), ("randwrite", 4096, 32)]
GUEST_DEV = {"virtio-blk": "vda", "ahci": "sda", "nvme": "nvme0n1"}

BENCH_SH = """#!/bin/sh
# bench.sh DEVICE SECONDS: every test of tests/bench/disk.py, in order.
for t in %s; do
	set -- $(echo "$t" | tr : ' ')
	/bin/diskbench /dev/$DEV $1 $2 $3 $SECS || echo "diskbench failed: $t"
done
""" % " ".join("%s:%d:%d" % t for t in TESTS)


def guest_files(kdir, work):
    """The fixture's initramfs with diskbench and bench.sh appended."""
    root = os.path.join(work, "root")
    os.makedirs(os.path.join(root, "bin"))
    subprocess.run(["gcc", "-std=gnu11", "-D_GNU_SOURCE", "-O2", "-static",
                    "-o", os.path.join(root, "bin", "diskbench"),
                    os.path.join(ROOT, "tests", "bench", "diskbench.c")],
                   check=True)
    with open(os.path.join(root, "bin", "bench.sh"), "w") as f:
        f.write(BENCH_SH)
    extra = subprocess.run("cd %s && find . | cpio --quiet -o -H newc" % root,
                           shell=True, check=True, capture_output=True).stdout
    out = os.path.join(work, "initramfs.cpio")
    with open(os.path.join(kdir, "initramfs.cpio"), "rb") as src, \
            open(out, "wb") as dst:
        dst.write(src.read())
        dst.write(extra)  # the kernel unpacks concatenated archives
    return out


def make_image(path):
    subprocess.run(["dd", "if=/dev/zero", "of=" + path, "bs=1M",
                    "count=%d" % IMAGE_MIB, "status=none"], check=True)


def cmdline(device):
    return "panic=-1 quiet -- DEV=%s SECS=%s sh /bin/bench.sh" % (
        GUEST_DEV[device], SECONDS)


def parse(out):
    """{(mode, block, depth): (MiB/s, IOPS)} from diskbench's lines."""
    r = {}
    for m in re.finditer(r"diskbench (\w+) (\d+) (\d+): \d+ ios in [\d.]+ s: "
                         r"([\d.]+) MiB/s, (\d+) IOPS", out):
        r[(m.group(1), int(m.group(2)), int(m.group(3)))] = (
            float(m.group(4)), float(m.group(5)))
    return r


def run(cmd, env=None, stdin=None):
    p = subprocess.run(cmd, input=stdin, env=env, capture_output=True,
                       timeout=RUN_TIMEOUT)
    out = p.stdout.decode(errors="replace")
    if "diskbench failed" in out or p.returncode not in (0, 1):
        sys.stderr.write("disk.py: %s exited %d:\n%s%s\n" % (
            cmd[0], p.returncode, out[-2000:],
            p.stderr.decode(errors="replace")[-1000:]))
    return parse(out)


def bhyve_once(kdir, initrd, image, device, extra):
    env = dict(os.environ, BHYVE_VMM_DIR=VMM_DIR)
    script = "linux (host)%s/vmlinux console=ttyS0 %s\ninitrd (host)%s\nboot\n" % (
        kdir, cmdline(device), initrd)
    subprocess.run([os.path.join(B, "grub-bhyve"), "-r", "host", "-M", MEM,
                    "diskbench"], input=script.encode(), env=env, check=True,
                   stdout=subprocess.DEVNULL)
    emul = {"ahci": "ahci-hd"}.get(device, device)
    disk = "4,%s,%s%s" % (emul, image, "," + extra if extra else "")
    try:
        return run([os.path.join(B, "bhyve"), "-c", "1", "-m", MEM, "-s",
                    "0,hostbridge", "-s", "31,lpc", "-l", "com1,stdio",
                    "-s", disk, "diskbench"], env=env)
    finally:
        subprocess.run([os.path.join(B, "bhyvectl"), "--destroy",
                        "--vm=diskbench"], env=env, check=False)


def qemu_once(kdir, initrd, image, device):
    drive = ["-drive", "file=%s,if=none,id=d0,format=raw" % image]
    dev = {"virtio-blk": ["-device", "virtio-blk-pci,drive=d0"],
           "ahci": ["-device", "ahci,id=ahci", "-device",
                    "ide-hd,drive=d0,bus=ahci.0"],
           "nvme": ["-device", "nvme,drive=d0,serial=bench"]}[device]
    return run(["qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-M",
                "pc", "-smp", "1", "-m", MEM, "-nodefaults",
                "-no-user-config", "-display", "none", "-serial", "stdio",
                "-no-reboot", "-kernel", os.path.join(kdir, "vmlinuz"),
                "-initrd", initrd, "-append",
                "console=ttyS0 " + cmdline(device)] + drive + dev)


def median_of(runs, key):
    vals = [r[key] for r in runs if key in r]
    if not vals:
        return None
    return (statistics.median(v[0] for v in vals),
            statistics.median(v[1] for v in vals))


def cell(v, key):
    if v is None:
        return "failed"
    return "%.1f MiB/s" % v[0] if key[1] >= 1048576 else "%.0f" % v[1]


def main():
    kdir = subprocess.run([os.path.join(ROOT, "fixtures", "linux", "build.sh")],
                          check=True, capture_output=True,
                          text=True).stdout.strip()
    engines = [e for e in os.environ.get("ENGINES", "").split() if e]
    with tempfile.TemporaryDirectory(dir="/tmp") as work:
        initrd = guest_files(kdir, work)
        image = os.path.join(work, "disk.img")
        make_image(image)
        columns = []
        for device in DEVICES:
            cols = [("bhyve " + device, lambda d=device: bhyve_once(
                kdir, initrd, image, d, ""))]
            cols += [("bhyve %s (%s)" % (device, e),
                      lambda d=device, e=e: bhyve_once(kdir, initrd, image,
                                                       d, e))
                     for e in engines]
            cols.append(("QEMU " + device, lambda d=device: qemu_once(
                kdir, initrd, image, d)))
            for name, once in cols:
                runs = []
                for i in range(RUNS):
                    runs.append(once())
                    print("%s run %d: %d results" % (name, i + 1,
                                                      len(runs[-1])),
                          file=sys.stderr, flush=True)
                columns.append((name, runs))
    print("| test | " + " | ".join(n for n, _ in columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    for t in TESTS:
        label = "%s %s depth %d" % (t[0], "1 MiB" if t[1] >= 1048576
                                    else "4 KiB", t[2])
        print("| %s | %s |" % (label, " | ".join(
            cell(median_of(runs, t), t) for _, runs in columns)))


if __name__ == "__main__":
    main()
