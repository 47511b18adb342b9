#!/usr/bin/python3
"""Console benchmark (issue 12): 1 MiB through com1 and through hvc0.

The default Linux guest (fixtures/linux), 1 vCPU, 512 MiB, boots under
bhyve twice over:
  - com1: `-l com1,stdio`, guest `console=ttyS0` (the 16550, Linux's 8250
    driver);
  - hvc0: `-s 30:0,virtio-console,console=stdio` and no com1, guest
    `console=hvc0` (virtio_console), as hvtest's `console virtio` runs it.
Its command (conbench.sh, below, appended to the initramfs) writes a
1 MiB file of text (CON_KIB KiB: lines of 63 'x' and a newline) to tmpfs
first, then prints "conbench start", cats the file to the console (its
controlling tty, so the bytes go through the tty layer and the line
discipline as any program's output does: ONLCR makes each newline \\r\\n,
16 KiB more on the wire) and prints "conbench end T0 T1" with the guest's
/proc/uptime before and after the cat.

Measured per run:
  - guest seconds: T1 - T0 (10 ms steps; the cat's own time, with up to a
    tty buffer, a few KiB, still on its way);
  - host seconds: from the moment the "conbench start" line is in bhyve's
    stdout (a file, polled every 5 ms) to the moment the end line is
    (every byte through);
  - the bytes that arrived between the two lines (1 MiB plus the CRs when
    nothing was lost);
  - the inner guest's exits meanwhile, counted by the outer kernel's
    kvm:kvm_exit and kvm:kvm_pio tracepoints (boot.py's hist triggers, read
    at both lines): exits per KiB printed and bytes per exit.
Median of RUNS boots each (default 3).

Needs root and /dev/kvm; run it nested with
  flock /tmp/bhyve-nested.lock harness/nested --timeout 2400 -- tests/bench/console.py
(environment after `--`: `-- env RUNS=1 CASES=hvc0 tests/bench/console.py`;
CON_BHYVE=PATH runs another bhyve binary, CON_KIB the size in KiB).
Prints Markdown tables.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
B = os.path.join(ROOT, "build", "bin")
# CON_BHYVE: another bhyve binary to measure (an A/B of a change).
BHYVE = os.environ.get("CON_BHYVE", os.path.join(B, "bhyve"))
sys.path.insert(0, HERE)
from boot import SVM_EXITS, TRACING, ExitCounter  # noqa: E402

RUNS = int(os.environ.get("RUNS", "3"))
KIB = int(os.environ.get("CON_KIB", "1024"))
RUN_TIMEOUT = int(os.environ.get("CON_TIMEOUT", "900"))
MEM = "512M"
VMM_DIR = "/tmp/bench-console-vmm"
POLL_S = 0.005
VM = "bench-console"

BENCH_SH = r"""#!/bin/sh
# conbench.sh: tests/bench/console.py's guest side.
up() { cut -d' ' -f1 /proc/uptime; }
line=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
yes $line | head -n $((KIB * 16)) >/tmp/text
echo "conbench size $(wc -c </tmp/text)"
echo "conbench start"
t0=$(up)
cat /tmp/text
t1=$(up)
echo "conbench end $t0 $t1"
"""

ARGS = "panic=-1 quiet -- KIB=%d sh /bin/conbench.sh" % KIB

CASES = {
    "com1": (["-l", "com1,stdio"], "console=ttyS0"),
    "hvc0": (["-s", "30:0,virtio-console,console=stdio"], "console=hvc0"),
}


class Counter(ExitCounter):
    """ExitCounter whose histograms can be read while they count."""

    def read(self):
        """({exit kind: count}, {port: count}) so far."""
        result = []
        for event, _ in self.EVENTS:
            counts = {}
            if self.ok:
                with open("%s/events/%s/hist" % (TRACING, event)) as f:
                    text = f.read()
                for key, n in re.findall(
                        r"\{ \w+:\s*(\d+) \} hitcount:\s*(\d+)", text):
                    counts[int(key)] = int(n)
            result.append(counts)
        exits = {}
        for code, n in result[0].items():
            name = SVM_EXITS.get(code, "0x%x" % code)
            exits[name] = exits.get(name, 0) + n
        return exits, result[1]


def diff(after, before):
    return {k: v - before.get(k, 0) for k, v in after.items()
            if v - before.get(k, 0)}


def guest_initrd(kdir, work):
    """The fixture's initramfs with conbench.sh appended."""
    root = os.path.join(work, "root")
    os.makedirs(os.path.join(root, "bin"))
    with open(os.path.join(root, "bin", "conbench.sh"), "w") as f:
        f.write(BENCH_SH)
    extra = subprocess.run("cd %s && find . | cpio --quiet -o -H newc" % root,
                           shell=True, check=True, capture_output=True).stdout
    out = os.path.join(work, "initramfs.cpio")
    with open(os.path.join(kdir, "initramfs.cpio"), "rb") as src, \
            open(out, "wb") as dst:
        dst.write(src.read())
        dst.write(extra)  # the kernel unpacks concatenated archives
    return out


def watch(p, out, counter):
    """Follow bhyve's output file until bhyve exits; the run's numbers.

    bhyve writes to a regular file (never held up by us) and we poll it
    every POLL_S: a reader on a pipe would read the 16550's output a byte
    at a time, and in the outer VM (TCG) that costs as much as the guest's
    own printing."""
    r = {"tail": b""}
    start = b"conbench start\r\n"
    end = re.compile(rb"conbench end ([\d.]+) ([\d.]+)\r?\n")
    buf = b""     # before the start line: everything; after: a tail
    counted = 0   # bytes after the start line
    with open(out, "rb") as f:
        while True:
            exited = p.poll() is not None
            chunk = f.read()
            now = time.monotonic()
            if not chunk:
                if exited:
                    break
                time.sleep(POLL_S)
                continue
            if "t0" not in r:
                buf += chunk
                i = buf.find(start)
                if i < 0:
                    continue
                r["t0"] = now
                r["before"] = counter.read()
                chunk = buf[i + len(start):]
                buf = b""
            if "t1" in r:
                buf = (buf + chunk)[-4096:]
                continue
            counted += len(chunk)
            buf = (buf + chunk)[-256:]
            m = end.search(buf)
            if m:
                r["t1"] = now
                r["after"] = counter.read()
                r["guest"] = float(m.group(2)) - float(m.group(1))
                # The end line and what follows it are not the text.
                counted -= len(buf) - buf.rfind(b"conbench end")
                r["bytes"] = counted
    r["tail"] = buf
    return r


def once(kdir, initrd, case, counter, work):
    env = dict(os.environ, BHYVE_VMM_DIR=VMM_DIR)
    dev, console = CASES[case]
    script = "linux (host)%s/vmlinux %s %s\ninitrd (host)%s\nboot\n" % (
        kdir, console, ARGS, initrd)
    subprocess.run([os.path.join(B, "grub-bhyve"), "-r", "host", "-M", MEM,
                    VM], input=script.encode(), env=env, check=True,
                   stdout=subprocess.DEVNULL)
    counter.start()
    try:
        out = os.path.join(work, "console.out")
        with open(out, "wb") as f:
            p = subprocess.Popen([BHYVE, "-c", "1", "-m", MEM, "-A", "-H",
                                  "-P", "-s", "0,hostbridge", "-s", "31,lpc"]
                                 + dev + [VM], env=env,
                                 stdin=subprocess.DEVNULL, stdout=f)
        watchdog = threading.Timer(RUN_TIMEOUT, p.kill)
        watchdog.start()
        r = watch(p, out, counter)
        p.wait()
        watchdog.cancel()
    finally:
        counter.stop()
        subprocess.run([os.path.join(B, "bhyvectl"), "--destroy",
                        "--vm=" + VM], env=env, check=False)
    if "bytes" not in r:
        sys.stderr.write("console.py: %s: no end line (bhyve exit %s); "
                         "last output:\n%s\n" % (
                             case, p.returncode,
                             r["tail"][-1500:].decode(errors="replace")))
        return None
    r["host"] = r["t1"] - r["t0"]
    r["exits"] = diff(r["after"][0], r["before"][0])
    r["pio"] = diff(r["after"][1], r["before"][1])
    return r


def med(runs, fn):
    vals = [fn(r) for r in runs]
    return statistics.median(vals), min(vals), max(vals)


def main():
    kdir = subprocess.run([os.path.join(ROOT, "fixtures", "linux", "build.sh")],
                          check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]
    words = os.environ.get("CASES", "com1 hvc0").split()
    counter = Counter()
    if not counter.ok:
        sys.stderr.write("console.py: no kvm tracepoints: exits not counted\n")
    columns = []
    with tempfile.TemporaryDirectory(dir="/tmp") as work:
        initrd = guest_initrd(kdir, work)
        for case in words:
            runs = []
            for i in range(RUNS):
                r = once(kdir, initrd, case, counter, work)
                if r:
                    runs.append(r)
                    sys.stderr.write(
                        "console.py: %s run %d: guest %.2f s, host %.2f s, "
                        "%d bytes, %d exits (%s)\n" % (
                            case, i + 1, r["guest"], r["host"], r["bytes"],
                            sum(r["exits"].values()), ", ".join(
                                "%s %d" % kv for kv in sorted(
                                    r["exits"].items(), key=lambda kv: -kv[1])
                                [:5])))
                sys.stderr.flush()
            columns.append((case, runs))

    print("%d KiB of text (lines of 64 bytes), 1 vCPU; median "
          "(fastest-slowest) of the runs that worked\n" % KIB)
    print("| console | runs | guest (s) | host (s) | KiB/s (host) "
          "| bytes arrived | exits | exits per KiB | bytes per exit |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for case, runs in columns:
        if not runs:
            print("| %s | 0 of %d | | | | | | | |" % (case, RUNS))
            continue
        nex = lambda r: sum(r["exits"].values())  # noqa: E731
        print("| %s | %d of %d | %.2f (%.2f-%.2f) | %.2f (%.2f-%.2f) "
              "| %.0f | %d | %d | %.2f | %.1f |" % (
                  case, len(runs), RUNS, *med(runs, lambda r: r["guest"]),
                  *med(runs, lambda r: r["host"]),
                  KIB / med(runs, lambda r: r["host"])[0],
                  med(runs, lambda r: r["bytes"])[0],
                  med(runs, nex)[0], med(runs, nex)[0] / KIB,
                  med(runs, lambda r: r["bytes"] / max(1, nex(r)))[0]))
    if len(columns) == 2 and all(runs for _, runs in columns):
        a = statistics.median(r["host"] for r in columns[0][1])
        b = statistics.median(r["host"] for r in columns[1][1])
        print("\n%s / %s (host time): %.1fx" % (columns[0][0], columns[1][0],
                                                a / b))

    print("\nExits while printing by kind, and the busiest ports "
          "(the median run by exit count):\n")
    kinds = sorted({k for _, runs in columns for r in runs for k in r["exits"]},
                   key=lambda k: -max(r["exits"].get(k, 0)
                                      for _, runs in columns for r in runs))
    print("| console | " + " | ".join(kinds) + " | top ports |")
    print("| --- |" + " --- |" * (len(kinds) + 1))
    for case, runs in columns:
        if not runs:
            continue
        runs = sorted(runs, key=lambda r: sum(r["exits"].values()))
        r = runs[len(runs) // 2]
        top = sorted(r["pio"].items(), key=lambda kv: -kv[1])[:4]
        print("| %s | %s | %s |" % (
            case, " | ".join(str(r["exits"].get(k, 0)) for k in kinds),
            ", ".join("0x%x: %d" % kv for kv in top)))


if __name__ == "__main__":
    main()
