#!/usr/bin/python3
"""virtio-9p benchmark: bhyve's 9P server against QEMU's (hw/9pfs).

The default Linux guest (fixtures/linux) boots with a directory of the
host (a fresh one in /tmp, the outer VM's tmpfs nested) shared over
virtio-9p, under bhyve (-s 5,virtio-9p,share=DIR) and under QEMU with KVM
(-M pc, -virtfs local,...,security_model=none), 1 vCPU, 512 MiB each. The
guest mounts it itself (9p2000.L, msize P9_MSIZE, default 131072, the same
on both sides; no cache= option: Linux's default, every read and write
goes to the server) and runs p9bench.sh (below):
  - write: dd of P9_MIB MiB (default 256) from /dev/zero to a file in the
    share, bs=1M, then sync;
  - read: drop the guest's caches, dd the file back to /dev/null, bs=1M;
  - small files, by fsbench (tests/bench/fsbench.c): P9_FILES files
    (default 1000) each created, stat'ed and unlinked, one after another;
  - the same as a busybox shell loop (touch, stat, rm): what a script
    sees, process starts included.
Times come from the guest's /proc/uptime (10 ms steps; every phase takes
seconds nested) and fsbench's CLOCK_MONOTONIC. Median of RUNS boots.

Needs root and /dev/kvm; run it nested with
  flock /tmp/bhyve-nested.lock harness/nested --timeout 2400 -- tests/bench/p9.py
Prints a Markdown table.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
B = os.path.join(ROOT, "build", "bin")
RUNS = int(os.environ.get("RUNS", "3"))
MIB = int(os.environ.get("P9_MIB", "256"))
FILES = int(os.environ.get("P9_FILES", "1000"))
MSIZE = int(os.environ.get("P9_MSIZE", "131072"))
RUN_TIMEOUT = 600
MEM = "512M"
VMM_DIR = "/tmp/bench-p9-vmm"

BENCH_SH = r"""#!/bin/sh
# p9bench.sh: every phase of tests/bench/p9.py, in order.
up() { cut -d' ' -f1 /proc/uptime; }
# init mounts every share at /mnt/TAG itself (msize 131072): ours is mounted
# again with P9_MSIZE, as a tag serves one mount at a time.
umount /mnt/share 2>/dev/null
mkdir -p /mnt/share
mount -t 9p -o trans=virtio,version=9p2000.L,msize=$MSIZE share /mnt/share ||
	{ echo "p9bench failed: mount"; exit 1; }
t0=$(up)
dd if=/dev/zero of=/mnt/share/big bs=1M count=$MIB 2>/dev/null && sync ||
	echo "p9bench failed: write"
echo "p9bench write $t0 $(up)"
echo 3 >/proc/sys/vm/drop_caches
t0=$(up)
dd if=/mnt/share/big of=/dev/null bs=1M 2>/dev/null ||
	echo "p9bench failed: read"
echo "p9bench read $t0 $(up)"
rm /mnt/share/big
mkdir /mnt/share/d
/bin/fsbench /mnt/share/d $FILES
t0=$(up)
i=0
while [ $i -lt $FILES ]; do
	f=/mnt/share/d/s$i
	touch $f && stat $f >/dev/null && rm $f || echo "p9bench failed: shell $f"
	i=$((i + 1))
done
echo "p9bench shell $t0 $(up)"
umount /mnt/share
"""

ARGS = "panic=-1 quiet -- MIB=%d FILES=%d MSIZE=%d sh /bin/p9bench.sh" % (
    MIB, FILES, MSIZE)


def guest_initrd(kdir, work):
    """The fixture's initramfs with fsbench and p9bench.sh appended."""
    root = os.path.join(work, "root")
    os.makedirs(os.path.join(root, "bin"))
    subprocess.run(["gcc", "-std=gnu11", "-D_GNU_SOURCE", "-O2", "-static",
                    "-Wall", "-Wextra", "-Werror",
                    "-o", os.path.join(root, "bin", "fsbench"),
                    os.path.join(HERE, "fsbench.c")], check=True)
    with open(os.path.join(root, "bin", "p9bench.sh"), "w") as f:
        f.write(BENCH_SH)
    extra = subprocess.run("cd %s && find . | cpio --quiet -o -H newc" % root,
                           shell=True, check=True, capture_output=True).stdout
    out = os.path.join(work, "initramfs.cpio")
    with open(os.path.join(kdir, "initramfs.cpio"), "rb") as src, \
            open(out, "wb") as dst:
        dst.write(src.read())
        dst.write(extra)  # the kernel unpacks concatenated archives
    return out


def parse(out):
    """{phase: seconds} from the guest's lines."""
    r = {}
    for m in re.finditer(r"p9bench (\w+) ([\d.]+) ([\d.]+)", out):
        r[m.group(1)] = float(m.group(3)) - float(m.group(2))
    m = re.search(r"fsbench: \d+ files in ([\d.]+) s", out)
    if m:
        r["files"] = float(m.group(1))
    return r


def run(cmd, env=None):
    try:
        p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        sys.stderr.write("p9.py: %s timed out\n%s\n" % (
            cmd[0], (e.stdout or b"").decode(errors="replace")[-1500:]))
        return {}
    out = p.stdout.decode(errors="replace")
    if "failed" in out or "hvtest: exit status 0" not in out:
        sys.stderr.write("p9.py: %s exited %d:\n%s%s\n" % (
            cmd[0], p.returncode, out[-1500:],
            p.stderr.decode(errors="replace")[-500:]))
        return {}
    return parse(out)


def bhyve_once(kdir, initrd, share):
    env = dict(os.environ, BHYVE_VMM_DIR=VMM_DIR)
    script = "linux (host)%s/vmlinux console=ttyS0 %s\ninitrd (host)%s\nboot\n" % (
        kdir, ARGS, initrd)
    subprocess.run([os.path.join(B, "grub-bhyve"), "-r", "host", "-M", MEM,
                    "bench-p9"], input=script.encode(), env=env, check=True,
                   stdout=subprocess.DEVNULL)
    try:
        return run([os.path.join(B, "bhyve"), "-c", "1", "-m", MEM, "-A",
                    "-H", "-P", "-s", "0,hostbridge", "-s", "31,lpc", "-l",
                    "com1,stdio", "-s", "5,virtio-9p,share=" + share,
                    "bench-p9"], env=env)
    finally:
        subprocess.run([os.path.join(B, "bhyvectl"), "--destroy",
                        "--vm=bench-p9"], env=env, check=False)


def qemu_once(kdir, initrd, share):
    return run(["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-M",
                "pc", "-smp", "1", "-m", MEM, "-nodefaults",
                "-no-user-config", "-display", "none", "-serial", "stdio",
                "-no-reboot", "-kernel", os.path.join(kdir, "vmlinuz"),
                "-initrd", initrd, "-append", "console=ttyS0 " + ARGS,
                "-virtfs", "local,path=%s,mount_tag=share,"
                "security_model=none,id=share" % share])


def cell(runs, key, scale, spec):
    vals = [scale / r[key] for r in runs if r.get(key)]
    if not vals:
        return "failed"
    return (spec + " (" + spec + "-" + spec + ")") % (
        statistics.median(vals), min(vals), max(vals))


def main():
    kdir = subprocess.run([os.path.join(ROOT, "fixtures", "linux", "build.sh")],
                          check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]
    words = os.environ.get("CASES", "").split()
    cases = [("bhyve virtio-9p", bhyve_once), ("QEMU virtio-9p", qemu_once)]
    cases = [c for c in cases if not words or any(w in c[0] for w in words)]
    columns = []
    with tempfile.TemporaryDirectory(dir="/tmp") as work:
        initrd = guest_initrd(kdir, work)
        share = os.path.join(work, "share")
        for name, once in cases:
            runs = []
            for i in range(RUNS):
                os.mkdir(share)
                r = once(kdir, initrd, share)
                subprocess.run(["rm", "-rf", share], check=True)
                sys.stderr.write("p9.py: %s run %d: %s\n" % (
                    name, i + 1, ", ".join("%s %.2f s" % kv
                                           for kv in sorted(r.items()))))
                sys.stderr.flush()
                if r:
                    runs.append(r)
            columns.append((name, runs))
    print("msize %d; median (slowest-fastest) of the runs that worked\n"
          % MSIZE)
    print("| test | " + " | ".join(n for n, _ in columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    for label, key, scale, spec in (
            ("write %d MiB, bs=1M (MiB/s)" % MIB, "write", MIB, "%.1f"),
            ("read %d MiB, bs=1M (MiB/s)" % MIB, "read", MIB, "%.1f"),
            ("create+stat+unlink, fsbench (files/s)", "files", FILES, "%.0f"),
            ("touch+stat+rm, shell loop (files/s)", "shell", FILES, "%.0f")):
        print("| %s | %s |" % (label, " | ".join(
            cell(runs, key, scale, spec) for _, runs in columns)))
    print("| runs that worked | %s |" % " | ".join(
        "%d of %d" % (len(runs), RUNS) for _, runs in columns))


if __name__ == "__main__":
    main()
