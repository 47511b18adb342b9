#!/usr/bin/python3
"""Boot-time benchmark (issue 3): bhyve against QEMU with KVM.

Boots the default Linux guest (fixtures/linux: Debian's kernel and our
busybox initramfs) with the command `true`, so init prints "userspace up",
runs it and powers off. For each VMM, median of RUNS:
  - seconds from the VMM's start to the "userspace up" line, and to its exit
    (for bhyve, from grub-bhyve's start: loading the kernel is part of the
    boot, as it is inside QEMU's numbers; grub-bhyve's share is shown too);
  - the inner guest's exits by kind, counted by the kernel that runs KVM
    (tracefs hist triggers on kvm:kvm_exit and kvm:kvm_pio), the same way for
    every VMM;
  - VMM memory: the process's resident memory minus the resident part of its
    guest-RAM mapping (the one mapping at least as large as the guest's RAM),
    sampled when the guest reaches userspace.
Needs root and /dev/kvm; run it nested with
  harness/nested --timeout 1800 -- env RUNS=5 tests/bench/boot.py
Prints Markdown tables.
"""
import os
import re
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
B = os.path.join(ROOT, "build", "bin")
RUNS = int(os.environ.get("RUNS", "5"))
RUN_TIMEOUT = 120  # seconds
MEM = "512M"
MEM_BYTES = 512 << 20
ARGS = "panic=-1 quiet -- true"
CMDLINE = "console=ttyS0 " + ARGS
TRACING = "/sys/kernel/tracing"
VMM_DIR = "/tmp/bench-boot-vmm"

# AMD SVM exit codes (APM vol. 2, appendix C) as the outer kernel logs them.
SVM_EXITS = {0x60: "intr", 0x61: "nmi", 0x64: "vintr", 0x6e: "rdtsc",
             0x72: "cpuid", 0x77: "pause", 0x78: "hlt", 0x7b: "io",
             0x7c: "msr", 0x7f: "shutdown", 0x81: "vmmcall",
             0x8d: "xsetbv", 0x400: "npf"}


class ExitCounter:
    """Counts KVM exits by reason and port I/O by port while active."""

    EVENTS = (("kvm/kvm_exit", "hist:keys=exit_reason:sort=hitcount"),
              ("kvm/kvm_pio", "hist:keys=port:sort=hitcount"))

    def __init__(self):
        if not os.path.isdir(TRACING + "/events"):
            subprocess.run(["mount", "-t", "tracefs", "nodev", TRACING],
                           check=False)
        self.ok = os.path.exists(TRACING + "/events/kvm/kvm_exit/trigger")

    def _trigger(self, event, spec):
        with open("%s/events/%s/trigger" % (TRACING, event), "w") as f:
            f.write(spec)

    def start(self):
        if self.ok:
            for event, spec in self.EVENTS:
                self._trigger(event, spec)

    def stop(self):
        """Return ({exit kind: count}, {port: count}) and remove triggers."""
        result = []
        for event, spec in self.EVENTS:
            counts = {}
            if self.ok:
                with open("%s/events/%s/hist" % (TRACING, event)) as f:
                    text = f.read()
                self._trigger(event, "!" + spec)
                for key, n in re.findall(
                        r"\{ \w+:\s*(\d+) \} hitcount:\s*(\d+)", text):
                    counts[int(key)] = int(n)
            result.append(counts)
        exits = {}
        for code, n in result[0].items():
            name = SVM_EXITS.get(code, "0x%x" % code)
            exits[name] = exits.get(name, 0) + n
        return exits, result[1]


def vmm_overhead_kib(pid):
    """Resident KiB of pid outside its guest-RAM mapping(s)."""
    total = guest = 0
    size = 0
    try:
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
                if m:
                    size = int(m.group(2), 16) - int(m.group(1), 16)
                    continue
                if line.startswith("Rss:"):
                    kib = int(line.split()[1])
                    total += kib
                    if size >= MEM_BYTES:
                        guest += kib
    except OSError:
        return None
    return total - guest


def timed(cmd, counter):
    """Run cmd; return a dict of its times, exits and memory."""
    counter.start()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    r = {"up": None, "mem": None, "out": []}
    # A run that hangs is killed and reported, not waited for.
    watchdog = threading.Timer(RUN_TIMEOUT, p.kill)
    watchdog.start()
    for raw in p.stdout:
        line = raw.decode(errors="replace")
        r["out"].append(line)
        if r["up"] is None and "userspace up" in line:
            r["up"] = time.monotonic() - t0
            r["mem"] = vmm_overhead_kib(p.pid)
    p.wait()
    watchdog.cancel()
    r["end"] = time.monotonic() - t0
    r["status"] = p.returncode
    r["exits"], r["pio"] = counter.stop()
    r["out"] = "".join(r["out"])
    return r


def bhyve_once(kdir, kernel, counter):
    env = dict(os.environ, BHYVE_VMM_DIR=VMM_DIR)
    script = "linux (host)%s/%s %s\ninitrd (host)%s/initramfs.cpio\nboot\n" % (
        kdir, kernel, ARGS, kdir)
    t0 = time.monotonic()
    subprocess.run([os.path.join(B, "grub-bhyve"), "-r", "host", "-M", MEM,
                    "bench"], input=script.encode(), env=env, check=True,
                   stdout=subprocess.DEVNULL)
    loader = time.monotonic() - t0
    os.environ["BHYVE_VMM_DIR"] = VMM_DIR
    try:
        r = timed([os.path.join(B, "bhyve"), "-m", MEM, "-s",
                   "0,hostbridge", "-s", "31,lpc", "-l", "com1,stdio",
                   "bench"], counter)
        r["loader"] = loader
        if r["up"] is not None:
            r["up"] += loader
        r["end"] += loader
        return r
    finally:
        subprocess.run([os.path.join(B, "bhyvectl"), "--destroy",
                        "--vm=bench"], env=env, check=False)


def qemu_once(kdir, kernel, machine, counter):
    """QEMU boots a bzImage with its Linux loader, an ELF vmlinux through
    the kernel's PVH entry note."""
    return timed(["qemu-system-x86_64", "-enable-kvm", "-cpu", "host",
                  "-M", machine, "-m", MEM, "-nodefaults", "-no-user-config",
                  "-display", "none", "-serial", "stdio", "-no-reboot",
                  "-kernel", os.path.join(kdir, kernel), "-initrd",
                  kdir + "/initramfs.cpio", "-append", CMDLINE], counter)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec):
    return "n/a" if v is None else spec % v


def main():
    kdir = subprocess.run([os.path.join(ROOT, "fixtures/linux/build.sh")],
                          check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]
    counter = ExitCounter()
    kernels = os.environ.get("KERNELS", "vmlinuz vmlinux").split()
    cases = []
    for kernel in kernels:
        cases.append(("bhyve, %s" % kernel,
                      lambda k=kernel: bhyve_once(kdir, k, counter)))
        for machine in ("pc", "microvm", "microvm,rtc=on"):
            cases.append(("QEMU -M %s, %s" % (machine, kernel),
                          lambda k=kernel, m=machine:
                          qemu_once(kdir, k, m, counter)))
    rows = []
    failed = {}
    for name, fn in cases:
        runs = []
        for _ in range(RUNS):
            r = fn()
            if r["up"] is None or r["status"] < 0:
                sys.stderr.write("bench: %s: a run failed (status %s):\n%s\n"
                                 % (name, r["status"], r["out"][-2000:]))
                failed[name] = failed.get(name, 0) + 1
                continue
            runs.append(r)
            sys.stderr.write("bench: %s: up %.2f s, exit %.2f s%s\n" % (
                name, r["up"], r["end"],
                ", loader %.2f s" % r["loader"] if "loader" in r else ""))
        rows.append((name, runs))
        sys.stderr.write("bench: %s done\n" % name)

    print("Median of %d runs; exits counted by the outer kernel's kvm_exit "
          "tracepoint.\n" % RUNS)
    for name, n in failed.items():
        print("%s: %d of %d runs failed or hung (killed after %d s)\n"
              % (name, n, RUNS, RUN_TIMEOUT))
    print("| VMM, kernel | to userspace (s) | fastest-slowest (s) | to exit (s) "
          "| of which loader (s) | exits | port I/O exits | VMM memory (KiB) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, runs in rows:
        if not runs:
            print("| %s | failed | | | | | | |" % name)
            continue
        ups = [r["up"] for r in runs]
        print("| %s | %s | %.2f-%.2f | %s | %s | %s | %s | %s |" % (
            name, fmt(median(ups), "%.2f"), min(ups), max(ups),
            fmt(median([r["end"] for r in runs]), "%.2f"),
            fmt(median([r.get("loader") for r in runs]), "%.2f"),
            fmt(median([sum(r["exits"].values()) for r in runs]), "%d"),
            fmt(median([r["exits"].get("io", 0) for r in runs]), "%d"),
            fmt(median([r["mem"] for r in runs]), "%d")))

    print("\nExits by kind (the median run by exit count):\n")
    kinds = sorted({k for _, runs in rows for r in runs for k in r["exits"]},
                   key=lambda k: -max(r["exits"].get(k, 0)
                                      for _, runs in rows for r in runs))
    print("| VMM | " + " | ".join(kinds) + " | top ports |")
    print("| --- |" + " --- |" * (len(kinds) + 1))
    for name, runs in rows:
        if not runs:
            continue
        runs = sorted(runs, key=lambda r: sum(r["exits"].values()))
        r = runs[len(runs) // 2]
        top = sorted(r["pio"].items(), key=lambda kv: -kv[1])[:4]
        print("| %s | %s | %s |" % (
            name, " | ".join(str(r["exits"].get(k, 0)) for k in kinds),
            ", ".join("0x%x: %d" % kv for kv in top)))


if __name__ == "__main__":
    main()
