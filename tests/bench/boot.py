#!/usr/bin/python3
"""Boot-time benchmark (issue 3): bhyve against QEMU with KVM.

Boots the default Linux guest (fixtures/linux: Debian's kernel and our
busybox initramfs) with the command `true`, so init prints "userspace up",
runs it and powers off. For each VMM, median of RUNS: seconds from the
VMM's start to the "userspace up" line, and to the VMM's exit; bhyve's exit
counts come from -o debug.exit_stats. Run inside a machine with KVM
(tests/bench/run-boot.sh nests it). Prints a Markdown table.
"""
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
B = os.path.join(ROOT, "build", "bin")
RUNS = int(os.environ.get("RUNS", "5"))
MEM = "512M"
CMDLINE = "console=ttyS0 panic=-1 quiet -- true"


def timed(cmd, stdin=None):
    """Run cmd; return (seconds to 'userspace up', seconds to exit, output)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=stdin or subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    up = None
    out = []
    for raw in p.stdout:
        line = raw.decode(errors="replace")
        out.append(line)
        if up is None and "userspace up" in line:
            up = time.monotonic() - t0
    p.wait()
    return up, time.monotonic() - t0, "".join(out)


def bhyve_once(kdir):
    env = dict(os.environ, BHYVE_VMM_DIR="/tmp/bench-boot-vmm")
    script = "linux (host)%s/vmlinuz %s\ninitrd (host)%s/initramfs.cpio\nboot\n" % (
        kdir, CMDLINE.replace("console=ttyS0 ", ""), kdir)
    subprocess.run([os.path.join(B, "grub-bhyve"), "-r", "host", "-M", MEM,
                    "bench"], input=script.encode(), env=env, check=True,
                   stdout=subprocess.DEVNULL)
    os.environ["BHYVE_VMM_DIR"] = env["BHYVE_VMM_DIR"]
    r = timed([os.path.join(B, "bhyve"), "-o", "debug.exit_stats=true",
               "-m", MEM, "-s", "0,hostbridge", "-s", "31,lpc",
               "-l", "com1,stdio", "bench"])
    subprocess.run([os.path.join(B, "bhyvectl"), "--destroy", "--vm=bench"],
                   env=env)
    return r


def qemu_once(kdir, machine):
    return timed(["qemu-system-x86_64", "-enable-kvm", "-cpu", "host",
                  "-M", machine, "-m", MEM, "-nodefaults", "-no-user-config",
                  "-display", "none", "-serial", "stdio", "-no-reboot",
                  "-kernel", kdir + "/vmlinuz", "-initrd",
                  kdir + "/initramfs.cpio", "-append", CMDLINE])


def exits(output):
    m = re.search(r"^\s+exits\s+(\d+)", output, re.M)
    return int(m.group(1)) if m else None


def main():
    kdir = subprocess.run([os.path.join(ROOT, "fixtures/linux/build.sh")],
                          check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]
    cases = [("bhyve", lambda: bhyve_once(kdir)),
             ("QEMU -M pc", lambda: qemu_once(kdir, "pc")),
             ("QEMU -M microvm", lambda: qemu_once(kdir, "microvm"))]
    print("| VMM | to userspace (s) | to exit (s) | exits (bhyve's KVM count) |")
    print("| --- | --- | --- | --- |")
    for name, fn in cases:
        ups, ends, ex = [], [], []
        for _ in range(RUNS):
            up, end, out = fn()
            if up is None:
                sys.stderr.write("bench: %s never reached userspace:\n%s\n"
                                 % (name, out[-2000:]))
                break
            ups.append(up)
            ends.append(end)
            if exits(out):
                ex.append(exits(out))
        if not ups:
            print("| %s | failed | failed | |" % name)
            continue
        print("| %s | %.2f | %.2f | %s |" % (
            name, statistics.median(ups), statistics.median(ends),
            int(statistics.median(ex)) if ex else "n/a"))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
