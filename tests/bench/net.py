#!/usr/bin/python3
"""Network benchmark: bhyve's virtio-net and e1000 against QEMU's, TCP
throughput between the guest and the host.

The default Linux guest (fixtures/linux) boots with one NIC under bhyve
and under QEMU with KVM (QEMU -M pc, its own user-space virtio-net, no
vhost), 512 MiB; and both with the kernel's vhost-net (bhyve's
vhost=on, QEMU's tap,vhost=on). The guest runs netbench (tests/bench/netbench.c, appended
to the initramfs): it connects to the host and sends NET_MIB MiB of zeros
(guest -> host), then connects again and reads NET_MIB MiB (host -> guest).
The host side, a Python socket server here, does the timing: from the
connection's accept to the last byte received (guest -> host), or to the
guest closing after it has read everything (host -> guest). During each
transfer, and only then, it counts
  - the inner guest's exits, by the outer kernel's kvm:kvm_exit tracepoint
    (boot.py's ExitCounter, the same for both VMMs), per MiB;
  - the VMM's CPU time per thread (/proc/PID/task/*/stat), per MiB: vCPU
    threads together, every other thread by name.
Backends: a tap (tapb0, 192.168.90.1/24 on the host, the guest
192.168.90.2/24 through ip= on its command line), and user-mode
networking (bhyve's slirp, QEMU's -netdev user: the guest reaches the
host's 127.0.0.1 as 10.0.2.2). Median of RUNS boots per case.

Needs root and /dev/kvm; run it nested with
  flock /tmp/bhyve-nested.lock harness/nested --timeout 2400 -- tests/bench/net.py
CASES="word ..." keeps the cases whose name contains one of the words,
CASES_RE=REGEX those whose name it matches.
NET_DEBUG=1 adds bhyve's -o debug.exit_stats=true, has the guest print
/proc/interrupts and /proc/softirqs after the transfers, and prints each
run's console and bhyve's exit report. NET_PERF=1 samples the whole
outer VM with perf during each transfer and prints where the time went.
Prints Markdown tables.
"""
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from boot import ExitCounter  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
B = os.path.join(ROOT, "build", "bin")
RUNS = int(os.environ.get("RUNS", "3"))
MIB = int(os.environ.get("NET_MIB", "64"))
RUN_TIMEOUT = 240
MEM = "512M"
VMM_DIR = "/tmp/bench-net-vmm"
TAP = "tapb0"
HOST_TAP, GUEST_TAP = "192.168.90.1", "192.168.90.2"
SINK_PORT, SOURCE_PORT = 5201, 5202
TICK = os.sysconf("SC_CLK_TCK")
DEBUG = os.environ.get("NET_DEBUG") == "1"
PERF = os.environ.get("NET_PERF") == "1"

# (name, vmm, nic, backend, vcpus)
CASES = [
    ("bhyve virtio-net tap, 1 vCPU", "bhyve", "virtio-net", "tap", 1),
    ("QEMU virtio-net tap, 1 vCPU", "qemu", "virtio-net", "tap", 1),
    ("bhyve virtio-net tap, 2 vCPUs", "bhyve", "virtio-net", "tap", 2),
    ("QEMU virtio-net tap, 2 vCPUs", "qemu", "virtio-net", "tap", 2),
    ("bhyve virtio-net tap vhost-net, 1 vCPU", "bhyve", "virtio-net",
     "vhost", 1),
    ("QEMU virtio-net tap vhost-net, 1 vCPU", "qemu", "virtio-net",
     "vhost", 1),
    ("bhyve virtio-net tap vhost-net, 2 vCPUs", "bhyve", "virtio-net",
     "vhost", 2),
    ("QEMU virtio-net tap vhost-net, 2 vCPUs", "qemu", "virtio-net",
     "vhost", 2),
    ("bhyve e1000 tap, 1 vCPU", "bhyve", "e1000", "tap", 1),
    ("QEMU e1000 tap, 1 vCPU", "qemu", "e1000", "tap", 1),
    ("bhyve virtio-net slirp, 1 vCPU", "bhyve", "virtio-net", "slirp", 1),
    ("QEMU virtio-net user, 1 vCPU", "qemu", "virtio-net", "slirp", 1),
]


def guest_initrd(kdir, work):
    """The fixture's initramfs with /bin/netbench appended."""
    root = os.path.join(work, "root")
    os.makedirs(os.path.join(root, "bin"))
    subprocess.run(["gcc", "-std=gnu11", "-D_GNU_SOURCE", "-O2", "-static",
                    "-Wall", "-Wextra", "-Werror",
                    "-o", os.path.join(root, "bin", "netbench"),
                    os.path.join(HERE, "netbench.c")], check=True)
    extra = subprocess.run("cd %s && find . | cpio --quiet -o -H newc" % root,
                           shell=True, check=True, capture_output=True).stdout
    out = os.path.join(work, "initramfs.cpio")
    with open(os.path.join(kdir, "initramfs.cpio"), "rb") as src, \
            open(out, "wb") as dst:
        dst.write(src.read())
        dst.write(extra)  # the kernel unpacks concatenated archives
    return out


def make_tap():
    subprocess.run(["ip", "link", "del", TAP], stderr=subprocess.DEVNULL)
    for cmd in (["ip", "tuntap", "add", TAP, "mode", "tap"],
                ["ip", "addr", "add", HOST_TAP + "/24", "dev", TAP],
                ["ip", "link", "set", TAP, "up"],
                ["ip", "link", "set", "lo", "up"]):
        subprocess.run(cmd, check=True)


def cmdline(backend):
    tap = backend in ("tap", "vhost")
    host = HOST_TAP if tap else "10.0.2.2"
    ip = "ip=%s/24 " % GUEST_TAP if tap else ""
    after = " && cat /proc/interrupts /proc/softirqs" if DEBUG else ""
    return ("console=ttyS0 panic=-1 quiet %s-- /bin/netbench send %s %d %d "
            "&& /bin/netbench recv %s %d%s && sleep 1" % (
                ip, host, SINK_PORT, MIB, host, SOURCE_PORT, after))


def thread_cpu(pid):
    """{thread group: CPU seconds} of pid's threads; vCPUs summed."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        secs = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
        if re.match(r"vcpu \d+$|CPU \d+/KVM$", name):
            name = "vCPUs"
        out[name] = out.get(name, 0) + secs
    return out


class Server:
    """The host's ends: a sink on SINK_PORT, a source on SOURCE_PORT, on
    every address (the tap's and 127.0.0.1 for user-mode networking)."""

    def __init__(self, counter):
        self.counter = counter
        self.socks = []
        for port in (SINK_PORT, SOURCE_PORT):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            s.listen(1)
            s.settimeout(1)
            self.socks.append(s)
        self.payload = bytes(1 << 20)

    def _accept(self, s, done):
        while not done.is_set():
            try:
                c, _ = s.accept()
                c.settimeout(60)
                return c
            except socket.timeout:
                continue
        return None

    def _measure(self, pid, conn, transfer):
        perf = None
        if PERF:
            data = "/tmp/net-perf-%d.data" % pid
            perf = subprocess.Popen(["perf", "record", "-q", "-a", "-g",
                                     "-F", "997", "-o", data],
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        cpu0 = thread_cpu(pid)
        self.counter.start()
        t0 = time.monotonic()
        nbytes = transfer(conn)
        t = time.monotonic() - t0
        cpu1 = thread_cpu(pid)  # first: the guest powers off soon after
        exits, _ = self.counter.stop()
        cpu = {k: v - cpu0.get(k, 0) for k, v in cpu1.items()}
        if perf:
            perf.send_signal(2)
            perf.wait()
            rep = subprocess.run(
                ["perf", "report", "-i", data, "--stdio", "--no-children",
                 "-g", "none", "--sort", "comm,dso,sym",
                 "--percent-limit", "0.7"],
                capture_output=True, text=True).stdout
            sys.stderr.write("net.py: perf, pid %d:\n%s\n" % (
                pid, "\n".join(l for l in rep.splitlines()
                               if l and not l.startswith("#"))))
        return {"secs": t, "bytes": nbytes, "exits": exits, "cpu": cpu}

    def _sink(self, conn):
        buf = bytearray(1 << 20)
        total, want = 0, MIB << 20
        while total < want:
            n = conn.recv_into(buf)
            if n == 0:
                break
            total += n
        return total

    def _source(self, conn):
        left = MIB << 20
        while left > 0:
            n = conn.send(memoryview(self.payload)[:min(left, 1 << 20)])
            left -= n
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(65536):  # the guest closes once it has read all
            pass
        return MIB << 20

    def serve(self, pid_box, done, result):
        for key, s, transfer in (("tx", self.socks[0], self._sink),
                                 ("rx", self.socks[1], self._source)):
            conn = self._accept(s, done)
            if conn is None:
                return
            try:
                result[key] = self._measure(pid_box[0], conn, transfer)
            except OSError as e:
                sys.stderr.write("net.py: %s: %s\n" % (key, e))
            finally:
                conn.close()


def vmm_cmd(vmm, nic, backend, cpus, kdir, initrd):
    if vmm == "bhyve":
        be = {"tap": TAP, "vhost": TAP + ",vhost=on"}.get(backend, "slirp")
        debug = ["-o", "debug.exit_stats=true"] if DEBUG else []
        return [os.path.join(B, "bhyve")] + debug + [
                "-c", str(cpus), "-m", MEM, "-A", "-H", "-P", "-s", "0,hostbridge", "-s", "31,lpc", "-l",
                "com1,stdio", "-s", "2,%s,%s" % (nic, be), "bench-net"]
    if backend in ("tap", "vhost"):
        netdev = "tap,id=n0,ifname=%s,script=no,downscript=no" % TAP
        if backend == "vhost":
            netdev += ",vhost=on"  # the kernel's vhost-net moves the frames
    else:
        netdev = "user,id=n0"
    # e1000-82545em: the model bhyve's e1000 is (8086:100f); QEMU's "e1000"
    # is the 82540EM (8086:100e), which the guest loads no driver for.
    dev = {"virtio-net": "virtio-net-pci", "e1000": "e1000-82545em"}[nic]
    # debug-threads names QEMU's vCPU threads "CPU N/KVM" (thread_cpu).
    return ["qemu-system-x86_64", "-name", "bench,debug-threads=on",
            "-accel", "kvm", "-cpu", "host", "-M", "pc",
            "-smp", str(cpus), "-m", MEM, "-nodefaults", "-no-user-config",
            "-display", "none", "-serial", "stdio", "-no-reboot",
            "-kernel", os.path.join(kdir, "vmlinuz"), "-initrd", initrd,
            "-append", cmdline(backend), "-netdev", netdev,
            "-device", "%s,netdev=n0" % dev]


def grub_load(kdir, initrd, backend):
    env = dict(os.environ, BHYVE_VMM_DIR=VMM_DIR)
    line = cmdline(backend).replace("&", "\\&")
    script = "linux (host)%s/vmlinux %s\ninitrd (host)%s\nboot\n" % (
        kdir, line, initrd)
    subprocess.run([os.path.join(B, "grub-bhyve"), "-r", "host", "-M", MEM,
                    "bench-net"], input=script.encode(), env=env, check=True,
                   stdout=subprocess.DEVNULL)


def run_once(server, case, kdir, initrd):
    _, vmm, nic, backend, cpus = case
    if vmm == "bhyve":
        grub_load(kdir, initrd, backend)
    env = dict(os.environ, BHYVE_VMM_DIR=VMM_DIR)
    done, result, pid_box = threading.Event(), {}, [0]
    p = subprocess.Popen(vmm_cmd(vmm, nic, backend, cpus, kdir, initrd),
                         env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    pid_box[0] = p.pid
    t = threading.Thread(target=server.serve, args=(pid_box, done, result))
    t.start()
    try:
        out, _ = p.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    done.set()
    t.join()
    if vmm == "bhyve":
        subprocess.run([os.path.join(B, "bhyvectl"), "--destroy",
                        "--vm=bench-net"], env=env, check=False)
    out = out.decode(errors="replace")
    if DEBUG:
        sys.stderr.write("net.py: %s: console and report:\n%s\n" % (
            case[0], out))
    if "hvtest: exit status 0" not in out or len(result) != 2:
        sys.stderr.write("net.py: %s: a run failed (status %s):\n%s\n" % (
            case[0], p.returncode, out[-1500:]))
        return None
    return result


def summary(runs, key):
    """Median and range of MiB/s, medians of exits and CPU per MiB."""
    rs = [r[key] for r in runs]
    rates = [r["bytes"] / (1 << 20) / r["secs"] for r in rs]
    per = [r["bytes"] / (1 << 20) for r in rs]
    exits = statistics.median(sum(r["exits"].values()) / m
                              for r, m in zip(rs, per))
    kinds = {}
    for k in {k for r in rs for k in r["exits"]}:
        kinds[k] = statistics.median(r["exits"].get(k, 0) / m
                                     for r, m in zip(rs, per))
    cpu = {}
    for k in {k for r in rs for k in r["cpu"]}:
        cpu[k] = statistics.median(r["cpu"].get(k, 0) * 1000 / m
                                   for r, m in zip(rs, per))
    return statistics.median(rates), min(rates), max(rates), exits, kinds, cpu


def table(rows, key, title):
    print("\n%s, %d MiB per run, median of the runs that worked:\n" % (
        title, MIB))
    print("| case | MiB/s | range | exits/MiB | busiest exits/MiB | "
          "VMM CPU ms/MiB by thread | runs |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, runs in rows:
        if not runs:
            print("| %s | failed | | | | | 0 |" % name)
            continue
        rate, lo, hi, exits, kinds, cpu = summary(runs, key)
        top = sorted(kinds.items(), key=lambda kv: -kv[1])[:4]
        cpus = sorted(((k, v) for k, v in cpu.items() if v >= 0.05),
                      key=lambda kv: -kv[1])
        print("| %s | %.1f | %.1f-%.1f | %.0f | %s | %s | %d |" % (
            name, rate, lo, hi, exits,
            ", ".join("%s %.0f" % kv for kv in top),
            ", ".join("%s %.1f" % kv for kv in cpus), len(runs)))


def main():
    kdir = subprocess.run([os.path.join(ROOT, "fixtures", "linux", "build.sh")],
                          check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]
    words = os.environ.get("CASES", "").split()
    cases = [c for c in CASES if not words or any(w in c[0] for w in words)]
    if os.environ.get("CASES_RE"):
        cases = [c for c in cases if re.search(os.environ["CASES_RE"], c[0])]
    make_tap()
    server = Server(ExitCounter())
    with tempfile.TemporaryDirectory(dir="/tmp") as work:
        initrd = guest_initrd(kdir, work)
        runs_of = {case[0]: [] for case in cases}
        # Round by round, so that the outer VM's drift (nested runs swing
        # by 2x and more) falls on every case alike.
        for i in range(RUNS):
            for case in cases:
                runs = runs_of[case[0]]
                r = run_once(server, case, kdir, initrd)
                if r:
                    runs.append(r)
                    sys.stderr.write("net.py: %s run %d: tx %.1f MiB/s, rx "
                                     "%.1f MiB/s\n" % (
                                         case[0], i + 1,
                                         MIB / r["tx"]["secs"],
                                         MIB / r["rx"]["secs"]))
                sys.stderr.flush()
        rows = [(case[0], runs_of[case[0]]) for case in cases]
    subprocess.run(["ip", "link", "del", TAP], check=False)
    table(rows, "tx", "Guest -> host")
    table(rows, "rx", "Host -> guest")


if __name__ == "__main__":
    main()
