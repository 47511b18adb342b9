#!/usr/bin/python3
"""Stand-ins for bhyve, rawload, grub-bhyve and bhyvectl, so hvtest's own
tests run every verdict without KVM (tests/harness/test_hvtest.py).

The "guest" is a small script (a guests/NAME.bin or linux/vmlinuz file),
one command a line, that the fake bhyve plays on its stdout/stdin:

  print TEXT        a console line (CR LF); write TEXT: no line end
  sleep SECONDS     err TEXT: a line on bhyve's stderr
  exit N            end as bhyve would, with status N
  echo-until WORD   echo input lines until one is WORD
  shell PROMPT      a shell: run each input line with /bin/sh, then PROMPT;
                    'poweroff' exits 1, 'reboot' exits 0
  cmdline-command   the Linux fixture's ` -- COMMAND`: run it, print
                    'hvtest: exit status N' and power off
  if-cmdline WORD COMMAND...   only when WORD is on the kernel command line
  milestone TEXT    a record for -l milestone,path=FILE
  grandchild        leave a `sleep 1000` in bhyve's process group
  panic             print a Linux panic; pvpanic: say so on stderr, exit 0
  flaky FILE        exit 1 on odd runs, 0 on even (counts in FILE)
  disk-write TEXT / disk-read   write TEXT to the first -s ...,virtio-blk
                    disk, or print what is there
FAKE_LOG, when set, names a file that gets a line per start, destroy and
-s/-l help probe.
"""
import os
import shlex
import subprocess
import sys
import time


def log(line):
    if os.environ.get("FAKE_LOG"):
        with open(os.environ["FAKE_LOG"], "a") as f:
            f.write(line + "\n")


def vmm_dir():
    return os.environ.get("BHYVE_VMM_DIR") or "/tmp/vmm-fake-%d" % os.getuid()


def out(text):
    sys.stdout.buffer.write(text.encode())
    sys.stdout.buffer.flush()


def make_instance(vm, image, cmdline=""):
    d = os.path.join(vmm_dir(), vm)
    if os.path.exists(os.path.join(d, "lock")):
        sys.exit(f"fake: {vm} is running")
    os.makedirs(d, exist_ok=True)
    with open(image) as f, open(os.path.join(d, "guest"), "w") as g:
        g.write(f.read())
    with open(os.path.join(d, "cmdline"), "w") as f:
        f.write(cmdline)


def rawload(argv):
    if len(argv) < 2:
        sys.exit("usage: rawload ... IMAGE VMNAME")
    make_instance(argv[-1], argv[-2])


def grub_bhyve(argv):
    vm, kernel, cmdline = argv[-1], None, ""
    for line in sys.stdin:
        words = line.split(None, 2)
        if words and words[0] == "linux":
            kernel = words[1].replace("(host)", "", 1)
            cmdline = words[2].strip() if len(words) > 2 else ""
    if not kernel:
        sys.exit("grub-bhyve: no linux command")
    print(f"fake grub-bhyve: loaded {kernel}")
    print(f"fake grub-bhyve: command line {cmdline}")
    make_instance(vm, kernel, cmdline)


def bhyvectl(argv):
    vm = [a.split("=", 1)[1] for a in argv if a.startswith("--vm=")][0]
    d = os.path.join(vmm_dir(), vm)
    if not os.path.isdir(d):
        sys.exit(f"bhyvectl: no VM {vm}")
    for n in os.listdir(d):
        os.unlink(os.path.join(d, n))
    os.rmdir(d)
    log(f"destroy {vm}")


class Guest:
    def __init__(self, argv):
        self.vm = argv[-1]
        self.dir = os.path.join(vmm_dir(), self.vm)
        self.milestones = None
        self.disk = None
        for i, a in enumerate(argv):
            if a == "-l" and argv[i + 1].startswith("milestone,path="):
                self.milestones = argv[i + 1].split("=", 1)[1]
            if a == "-s" and ",virtio-blk," in argv[i + 1] and not self.disk:
                self.disk = argv[i + 1].split(",virtio-blk,", 1)[1]
        self.t0 = time.monotonic()
        with open(os.path.join(self.dir, "cmdline")) as f:
            self.cmdline = f.read()

    def play(self, lines):
        for line in lines:
            self.do(line.rstrip("\n"))
        sys.exit(1)  # a script that ends powers off

    def do(self, line):
        cmd, _, arg = line.strip().partition(" ")
        arg = os.path.expandvars(arg)
        if not cmd or cmd.startswith("#"):
            return
        if cmd == "print":
            out(arg + "\r\n")
        elif cmd == "write":
            out(arg)
        elif cmd == "err":
            sys.stderr.write(arg + "\n")
        elif cmd == "sleep":
            time.sleep(float(arg))
        elif cmd == "exit":
            sys.exit(int(arg))
        elif cmd == "echo-until":
            for ln in sys.stdin:
                out(ln.replace("\n", "\r\n"))
                if ln.strip() == arg:
                    return
        elif cmd == "shell":
            self.shell(shlex.split(arg)[0] if arg else "# ")
        elif cmd == "cmdline-command":
            if " -- " in self.cmdline:
                c = self.cmdline.split(" -- ", 1)[1]
                p = subprocess.run(["/bin/sh", "-c", c], capture_output=True)
                out(p.stdout.decode().replace("\n", "\r\n"))
                out(f"hvtest: exit status {p.returncode}\r\n")
                sys.exit(1)
        elif cmd == "if-cmdline":
            word, _, rest = arg.partition(" ")
            if word in self.cmdline.split():
                self.do(rest)
        elif cmd == "milestone":
            if self.milestones:
                with open(self.milestones, "a") as f:
                    f.write(f"{time.monotonic() - self.t0:.6f} {arg}\n")
        elif cmd == "grandchild":
            p = subprocess.Popen(["sleep", "1000"])
            log(f"grandchild {p.pid}")
        elif cmd == "panic":
            out("Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\r\n")
            out("CPU: 0 PID: 1 Comm: init Not tainted 6.1.0-fake #1\r\n")
            out("Call Trace:\r\n <TASK>\r\n dump_stack_lvl+0x44/0x5c\r\n")
            if arg == "pvpanic":
                sys.stderr.write("bhyve: the guest kernel panicked (pvpanic): resetting\n")
                sys.exit(0)
            time.sleep(1000)
        elif cmd == "flaky":
            n = int(open(arg).read() or 0) + 1 if os.path.exists(arg) else 1
            with open(arg, "w") as f:
                f.write(str(n))
            sys.exit(1 if n % 2 else 0)
        elif cmd == "disk-write":
            with open(self.disk, "r+b") as f:
                f.write(arg.encode() + b"\0")
        elif cmd == "disk-read":
            with open(self.disk, "rb") as f:
                out(f.read(512).split(b"\0")[0].decode() + "\r\n")
        else:
            sys.exit(f"fake bhyve: bad guest line: {line}")

    def shell(self, prompt):
        # busybox ash asks where the cursor is after each prompt: ESC [ 6 n
        prompt += "\x1b[6n"
        out(prompt)
        for ln in sys.stdin:
            ln = ln.rstrip("\n")
            out(ln + "\r\n")  # the tty's echo
            if ln.strip() == "poweroff":
                sys.exit(1)
            if ln.strip() == "reboot":
                sys.exit(0)
            if ln.strip() == "panic":
                self.do("panic")
            p = subprocess.run(["/bin/sh", "-c", ln], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            out(p.stdout.decode().replace("\n", "\r\n"))
            out(prompt)
            if "fake.klog" in self.cmdline.split():
                # printk lands on the prompt's line, as a guest's does
                out("[    7.668391] IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready\r\n")
        time.sleep(1000)


def bhyve(argv):
    if argv[-2:] in (["-l", "help"], ["-s", "help"]):
        log(f"probe {argv[-2]}")
        devices = os.environ.get("FAKE_DEVICES", "com1 hostbridge lpc")
        print("\n".join(devices.split()))
        return
    vm = argv[-1]
    d = os.path.join(vmm_dir(), vm)
    if not os.path.isdir(d):
        sys.stderr.write(f"bhyve: no VM {vm}\n")
        sys.exit(4)
    lock = os.path.join(d, "lock")
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        sys.stderr.write(f"bhyve: {vm} is already running\n")
        sys.exit(4)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    log(f"start {vm} {vmm_dir()} {os.getpid()}")
    guest = Guest(argv)
    try:
        with open(os.path.join(d, "guest")) as f:
            guest.play(f.readlines())
    finally:
        try:
            os.unlink(lock)
        except OSError:
            pass


def main():
    name = os.path.basename(sys.argv[0])
    {"bhyve": bhyve, "rawload": rawload, "grub-bhyve": grub_bhyve,
     "bhyvectl": bhyvectl}[name](sys.argv[1:])


if __name__ == "__main__":
    main()
