"""Run one test: boot its VM with the console on pipes, play the steps,
give a verdict, and leave nothing running.

Every child (rawload, grub-bhyve, bhyve, the assembler) runs in a process
group of its own, so a timeout or an interrupt kills the whole group; the VM
instance lives in a private BHYVE_VMM_DIR under a unique name and is
destroyed with `bhyvectl --destroy` afterwards, whatever happened.
"""

import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

from . import console as con
from .host import REPO

STATUS_WORDS = {0: "rebooted", 1: "powered off", 2: "halted", 3: "triple fault", 4: "error"}
RC_MARKER = "hvtest-rc-{}-"
GUEST_STATUS = re.compile(r"hvtest: exit status (\d+)")
GRACE = 2.0  # seconds of console kept after a panic or forbidden line
TAIL_LINES = 20
KILL_WAIT = 30  # seconds a SIGKILLed child gets to go


class Outcome(Exception):
    """Ends a test early: verdict 'failed' or 'skipped', a one-line reason."""

    def __init__(self, verdict, reason, details=()):
        super().__init__(reason)
        self.verdict = verdict
        self.reason = reason
        self.details = list(details)


def fail(reason, details=()):
    return Outcome("failed", reason, details)


def skip(reason):
    return Outcome("skipped", reason)


def describe_status(status, err_text="", debug_exit=False):
    """bhyve's exit status in words (bhyve(8); debug-exit gives (v << 1) | 1)."""
    if status is None:
        return "no status"
    if status < 0:
        return f"killed by signal {-status}"
    if debug_exit and status & 1 and not (status == 3 and "triple fault" in err_text):
        return f"debug-exit value {status >> 1}" + (" or powered off" if status == 1 else "")
    if status in STATUS_WORDS:
        word = STATUS_WORDS[status]
        if status == 4:
            last = [ln for ln in err_text.splitlines() if ln.strip()]
            if last:
                word += ": " + last[-1].strip()
        return word
    if status & 1:
        return f"debug-exit value {status >> 1}"
    return f"status {status}"


@dataclass
class Result:
    test_id: str
    path: str
    verdict: str = "passed"  # passed, failed, skipped
    reason: str = ""
    details: list = field(default_factory=list)
    duration: float = 0.0
    milestones: list = field(default_factory=list)  # dicts: boot, name, t, source
    exits: list = field(default_factory=list)  # bhyve's status per boot
    tail: list = field(default_factory=list)
    result_dir: str = ""
    runs: list = field(default_factory=list)  # for --repeat: the verdict of each run
    flaky: bool = False

    def to_json(self):
        return {k: getattr(self, k) for k in (
            "test_id", "path", "verdict", "reason", "details", "duration",
            "milestones", "exits", "result_dir", "runs", "flaky")}


@dataclass
class Fixture:
    directory: str
    kernel: str
    initrd: str
    cmdline: str
    bhyve_args: list
    memory: str = "512M"


class Context:
    """What all tests of a run share: paths, options, caches, live processes."""

    def __init__(self, bin_dir=None, guests_dir=None, results=None, scale=1.0,
                 own_groups=True, env=None):
        self.bin_dir = bin_dir or os.environ.get("HVTEST_BIN") or os.path.join(REPO, "build", "bin")
        self.guests_dir = guests_dir or os.environ.get("HVTEST_GUESTS") or os.path.join(REPO, "build", "guests")
        self.results = results
        self.scale = scale
        self.own_groups = own_groups  # False under kyua: it kills our group
        self.env = dict(os.environ if env is None else env)
        self.abort = threading.Event()
        self.lock = threading.Lock()
        self.procs = set()
        self.seq = 0
        self.devices = None
        self.probe_lock = threading.Lock()
        self.tools_ok = {}
        self.fixtures = {}
        self.fixture_lock = threading.Lock()

    def tool(self, name):
        return os.path.join(self.bin_dir, name)

    def next_vm_name(self):
        with self.lock:
            self.seq += 1
            return f"hvt{os.getpid()}-{self.seq}"

    def register(self, proc):
        with self.lock:
            self.procs.add(proc)

    def unregister(self, proc):
        with self.lock:
            self.procs.discard(proc)

    def kill_all(self):
        """From a signal handler: kill every live child's group."""
        self.abort.set()
        with self.lock:
            procs = list(self.procs)
        for p in procs:
            kill_group(p, self.own_groups)

    def device_names(self):
        """Devices bhyve lists in -s help and -l help (first word of each
        line), probed once a run: -j N tests that start together wait for
        the first one's probe."""
        with self.probe_lock:
            if self.devices is None:
                self.devices = probe_devices(self.tool("bhyve"))
            return self.devices

    def tool_ok(self, name):
        """Is build/bin/NAME executable? Asked once a run (each check is a
        stat, several ms over the outer VM's 9p root)."""
        with self.lock:
            if name not in self.tools_ok:
                self.tools_ok[name] = os.access(self.tool(name), os.X_OK)
            return self.tools_ok[name]

    def fixture(self, name):
        with self.fixture_lock:
            if name not in self.fixtures:
                try:
                    self.fixtures[name] = resolve_fixture(name, self.env)
                except Outcome as e:
                    self.fixtures[name] = e
            got = self.fixtures[name]
        if isinstance(got, Outcome):
            raise got
        return got


def probe_devices(bhyve):
    """The first words of `bhyve -s help` and `bhyve -l help`, both run at
    once (each is a bhyve start: tens of ms nested)."""
    procs = []
    for opt in ("-s", "-l"):
        try:
            procs.append(subprocess.Popen([bhyve, opt, "help"], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          text=True))
        except OSError:
            pass
    names = set()
    for p in procs:
        try:
            out = p.communicate(timeout=10)[0]
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            out = ""
        names.update(ln.split()[0] for ln in out.splitlines() if ln.split())
    return names


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
    cmdline, bhyve_args = "console=ttyS0", ["-A", "-H", "-P"]
    if os.path.isfile(os.path.join(d, "cmdline")):
        with open(os.path.join(d, "cmdline")) as f:
            cmdline = " ".join(f.read().split())
    if os.path.isfile(os.path.join(d, "bhyve-args")):
        with open(os.path.join(d, "bhyve-args")) as f:
            bhyve_args = shlex.split(f.read())
    return Fixture(d, kernel, initrd, cmdline, bhyve_args)


def wait_exit(proc, timeout):
    """Wait up to TIMEOUT seconds for PROC to exit: its status, or None.
    Popen.wait(timeout) polls with sleeps that double up to 50 ms, and bhyve
    closes its console before it exits (the kernel then tears its VM down,
    tens of ms): that polling added up to as much again to every test. A
    pidfd (Linux 5.3) wakes us when the process has exited."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        fd = os.pidfd_open(proc.pid)
    except OSError:
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
    try:
        select.select([fd], [], [], max(0, timeout))
    finally:
        os.close(fd)
    return proc.poll()


def kill_group(proc, own_group):
    try:
        if own_group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


class TestRun:
    def __init__(self, spec, ctx, test_id, result_dir):
        self.spec = spec
        self.ctx = ctx
        self.result = Result(test_id=test_id, path=spec.path, result_dir=result_dir)
        self.dir = result_dir
        self.clock = time.monotonic
        self.proc = None
        self.boots = 0
        self.vm = ctx.next_vm_name()
        self.vmm_dir = None
        self.env = None
        self.eof = False
        self.panic = None  # (absolute offset, time seen)
        self.forbidden = None  # (step, absolute offset, time seen)
        self.milestone_file = None
        self.milestone_pos = 0
        self.boot_t0 = 0.0
        self.run_id = 0
        self.loader = None  # how to load the VM: a function
        self.bhyve_base = []

    # --- the whole test -------------------------------------------------

    def run(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir, exist_ok=True)
        if self.spec.vm_kind == "fixture":
            # Building a fixture (once a run, maybe a download) is not the
            # test's time; its errors are reported by prepare().
            try:
                self.ctx.fixture(self.spec.fixture)
            except Outcome:
                pass
        self.t0 = self.clock()
        self.test_deadline = self.t0 + self.spec.timeout * self.ctx.scale
        self.tr = con.Transcript(os.path.join(self.dir, "transcript.txt"),
                                 os.path.join(self.dir, "console.raw"), self.t0, self.clock)
        self.console = con.Console()
        self.tr.event(f"test {self.spec.path}: {self.spec.description}".rstrip(": "))
        try:
            self.prepare()
            self.play()
            self.finish_checks()
        except Outcome as e:
            self.result.verdict, self.result.reason, self.result.details = e.verdict, e.reason, e.details
        except Exception as e:  # a harness bug must still clean up and say so
            self.result.verdict = "failed"
            self.result.reason = f"hvtest internal error: {type(e).__name__}: {e}"
        finally:
            self.cleanup()
        r = self.result
        r.duration = self.clock() - self.t0
        r.milestones.sort(key=lambda m: (m["boot"], m["t"]))
        while r.details and not r.details[-1].strip():
            r.details.pop()
        r.tail = self.tr.last_lines(TAIL_LINES)
        self.tr.event(f"verdict: {r.verdict}" + (f": {r.reason}" if r.reason else ""))
        for line in r.details:
            self.tr.event("  " + line)
        self.tr.close()
        with open(os.path.join(self.dir, "result.json"), "w") as f:
            json.dump(r.to_json(), f, indent=1)
        return r

    def finish_checks(self):
        self.check_grace(force=True)
        partial = self.console.partial_line()
        for step in self.spec.expect_not:
            if step.pattern.search(partial):
                raise fail(f"forbidden output: '{step.pattern.pattern}' (line {step.line}) "
                           f"appeared: {partial.strip()}")

    def cleanup(self):
        if self.proc is not None:
            self.stop_vm("the test is over" if self.result.verdict == "passed" else "test failed")
        if self.vmm_dir:
            self.destroy()
            shutil.rmtree(self.vmm_dir, ignore_errors=True)

    # --- preparation ----------------------------------------------------

    def prepare(self):
        s, ctx = self.spec, self.ctx
        for b in ("bhyve", "bhyvectl"):
            if not ctx.tool_ok(b):
                raise fail(f"{ctx.tool(b)} is missing: run make")
        if s.requires:
            missing = [d for d in s.requires if d not in ctx.device_names()]
            if missing:
                raise skip(f"bhyve has no {', '.join(missing)} device (not in bhyve -s help / -l help)")
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.vmm_dir = tempfile.mkdtemp(prefix=f"hvtest-{self.vm}-", dir=shm)
        self.env = dict(ctx.env, BHYVE_VMM_DIR=self.vmm_dir)
        here = os.path.dirname(os.path.abspath(s.path))
        memory, cpus, extra = s.memory, s.cpus or 1, []
        if s.vm_kind == "guest":
            image = os.path.join(ctx.guests_dir, s.guest + ".bin")
            args_file = os.path.join(ctx.guests_dir, s.guest + ".args")
            if not (os.path.isfile(image) and os.path.isfile(args_file)):
                raise fail(f"guest {s.guest} is not built ({image}): run make guests")
            with open(args_file) as f:
                args = f.read().split()
            self.loader = lambda: self.rawload(image, args)
            memory = memory or "32M"
        elif s.vm_kind == "guest-source":
            image, args = self.assemble(os.path.join(here, s.source), s.source_mode)
            self.loader = lambda: self.rawload(image, args)
            memory = memory or "32M"
        else:
            if not ctx.tool_ok("grub-bhyve"):
                raise skip(f"{ctx.tool('grub-bhyve')} is not built (yet)")
            if s.vm_kind == "fixture":
                fx = ctx.fixture(s.fixture)
                kernel, initrd, cmdline = fx.kernel, fx.initrd, fx.cmdline
                extra, memory = list(fx.bhyve_args), memory or fx.memory
            else:
                kernel = os.path.join(here, s.kernel)
                initrd = os.path.join(here, s.initrd) if s.initrd else None
                cmdline, extra, memory = "console=ttyS0", ["-A", "-H", "-P"], memory or "512M"
                for p in filter(None, (kernel, initrd)):
                    if not os.path.isfile(p):
                        raise fail(f"{p} does not exist (line {s.vm_line})")
            if s.cmdline:
                cmdline += " " + s.cmdline
            if s.command:
                cmdline += " -- " + s.command
            self.loader = lambda: self.grub_load(kernel, initrd, cmdline, memory)
        slot = 4
        for disk in s.disks:
            if disk.scratch_size:
                path = os.path.join(self.vmm_dir, f"scratch{slot}.img")
                with open(path, "wb") as f:
                    f.truncate(size_bytes(disk.scratch_size))
            else:
                path = os.path.join(here, disk.path)
                if not os.path.exists(path):
                    raise fail(f"disk image {path} does not exist (line {disk.line})")
            extra += ["-s", f"{slot}:0,virtio-blk,{path}"]
            slot += 1
        if "milestone" in ctx.device_names():
            self.milestone_file = os.path.join(self.dir, "milestones.log")
            extra += ["-l", f"milestone,path={self.milestone_file}"]
        self.bhyve_base = ([ctx.tool("bhyve"), "-c", str(cpus), "-m", memory,
                            "-s", "0:0,hostbridge", "-s", "1:0,lpc", "-l", "com1,stdio"]
                           + extra + s.bhyve_args + [self.vm])

    def assemble(self, source, mode):
        """Build a tiny guest from source as guests.mk does."""
        if not os.path.isfile(source):
            raise fail(f"guest source {source} does not exist (line {self.spec.vm_line})")
        out = os.path.join(self.dir, "guest")
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
            status, output = self.tool_run(argv, "assembler")
            if status != 0:
                raise fail(f"{argv[0]} {os.path.basename(source)} failed: {last_line(output)}",
                           output.splitlines()[-10:])
        return out + ".bin", ["-b", str(mode), "-a", load]

    # --- child processes --------------------------------------------------

    def remaining(self):
        return self.test_deadline - self.clock()

    def tool_run(self, argv, what, stdin_data=None, timeout=None):
        """Run a helper to completion in its own group; log its output."""
        timeout = max(0.1, self.remaining() if timeout is None else timeout)
        self.tr.event(f"{what}: {' '.join(shlex.quote(a) for a in argv)}")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_data else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env,
                                 start_new_session=self.ctx.own_groups)
        except OSError as e:
            raise fail(f"cannot run {argv[0]}: {e.strerror}")
        self.ctx.register(p)
        try:
            out, _ = p.communicate(stdin_data.encode() if stdin_data else None, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(p, self.ctx.own_groups)
            try:
                out, _ = p.communicate(timeout=KILL_WAIT)
            except subprocess.TimeoutExpired:
                out = b"(it did not die after SIGKILL)\n"
            self.log_tool(what, out)
            raise fail(f"{what} {os.path.basename(argv[0])} did not finish in {timeout:.0f} s: stopped it")
        finally:
            self.ctx.unregister(p)
        if self.ctx.abort.is_set():
            raise fail("interrupted")
        self.log_tool(what, out)
        return p.returncode, out.decode("utf-8", "replace")

    def log_tool(self, what, out):
        text = out.decode("utf-8", "replace")
        with open(os.path.join(self.dir, "loader.log"), "a") as f:
            f.write(text)
        for line in text.splitlines():
            self.tr.event(f"{what}: {line}")

    def rawload(self, image, args):
        memory = self.bhyve_base[self.bhyve_base.index("-m") + 1]
        argv = [self.ctx.tool("rawload"), "-m", memory] + args + self.spec.rawload_args + [image, self.vm]
        status, out = self.tool_run(argv, "load")
        if status != 0:
            raise fail(f"rawload failed (status {status}): {last_line(out)}")

    def grub_load(self, kernel, initrd, cmdline, memory):
        script = f"linux (host){os.path.abspath(kernel)} {cmdline}\n"
        if initrd:
            script += f"initrd (host){os.path.abspath(initrd)}\n"
        script += "boot\n"
        argv = [self.ctx.tool("grub-bhyve"), "-r", "host", "-M", memory, self.vm]
        status, out = self.tool_run(argv, "load", stdin_data=script)
        if status != 0:
            raise fail(f"grub-bhyve failed (status {status}): {last_line(out)}")

    def destroy(self):
        try:
            p = subprocess.run([self.ctx.tool("bhyvectl"), "--destroy", f"--vm={self.vm}"],
                               capture_output=True, text=True, env=self.env, timeout=10)
            if p.returncode == 0:
                self.tr.event(f"destroyed VM instance {self.vm}")
        except (OSError, subprocess.SubprocessError) as e:
            self.tr.event(f"bhyvectl --destroy --vm={self.vm} failed: {e}")

    def boot(self):
        if self.proc is not None:
            self.stop_vm("boot again")
        if self.boots:
            self.destroy()
        self.boots += 1
        self.tr.event(f"boot {self.boots}")
        self.loader()
        self.tr.event("bhyve: " + " ".join(shlex.quote(a) for a in self.bhyve_base))
        self.err_path = os.path.join(self.dir, "bhyve.err")
        err = open(self.err_path, "ab")
        if self.boots > 1:
            err.write(f"--- boot {self.boots}\n".encode())
            err.flush()
        self.err_start = err.tell()
        try:
            self.proc = subprocess.Popen(self.bhyve_base, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, env=self.env, start_new_session=self.ctx.own_groups)
        except OSError as e:
            raise fail(f"cannot run bhyve: {e.strerror}")
        finally:
            err.close()
        self.ctx.register(self.proc)
        self.boot_t0 = self.clock()
        self.eof = False
        os.set_blocking(self.proc.stdout.fileno(), False)
        if self.milestone_file:
            self.milestone_pos = os.path.getsize(self.milestone_file) if os.path.exists(self.milestone_file) else 0

    def stop_vm(self, why):
        p, self.proc = self.proc, None
        if p.poll() is None:
            self.tr.event(f"stopping the VM: {why}")
            kill_group(p, self.ctx.own_groups)
        if wait_exit(p, KILL_WAIT) is None:
            # Stuck in the kernel (KVM_RUN on a wedged host): say so, go on.
            self.tr.event(f"bhyve (pid {p.pid}) did not die {KILL_WAIT} s after SIGKILL")
            self.result.details.append(f"bhyve (pid {p.pid}) did not die {KILL_WAIT} s after SIGKILL")
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.ctx.unregister(p)

    def status_words(self, status):
        return describe_status(status, self.bhyve_err(), "debug-exit" in " ".join(self.bhyve_base))

    def bhyve_err(self):
        try:
            with open(self.err_path, "rb") as f:
                f.seek(self.err_start)
                return f.read().decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    # --- the console pump -------------------------------------------------

    def exited(self):
        return self.proc is None or (self.eof and self.proc.poll() is not None)

    def pump(self, deadline, want=None, until_exit=True):
        """Read the console until want() gives a value, the VM exits, or the
        deadline: ('match', value), ('exit', status) or ('timeout', None)."""
        while True:
            if want is not None:
                v = want()
                if v is not None:
                    return "match", v
            self.check_grace()
            if until_exit and self.exited():
                return "exit", self.proc.returncode if self.proc else None
            now = self.clock()
            if now >= deadline:
                return "timeout", None
            if self.ctx.abort.is_set():
                raise fail("interrupted")
            self.read_once(min(deadline - now, 0.1))

    def read_once(self, timeout):
        p = self.proc
        if p is None or self.eof:
            if p is not None and p.poll() is None:
                wait_exit(p, timeout)  # bhyve closed stdout, still running
            else:
                time.sleep(max(0, timeout))
            self.poll_milestones()
            return
        fd = p.stdout.fileno()
        r, _, _ = select.select([fd], [], [], max(0, timeout))
        if r:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                data = None
            if data == b"":
                self.eof = True
                wait_exit(p, max(0.1, min(5.0, self.test_deadline - self.clock())))
                self.tr.event(f"bhyve exited {p.returncode} ({self.status_words(p.returncode)})"
                              if p.returncode is not None else "bhyve closed its console")
                if p.returncode is not None:
                    self.result.exits.append(p.returncode)
                self.feed(b"", final=True)
            elif data:
                self.feed(data)
        self.poll_milestones()

    def feed(self, data, final=False):
        text = self.console.feed(data, final)
        self.tr.console(data, text)
        for start, line in self.console.new_lines():
            self.scan_line(start, line)

    def scan_line(self, start, line):
        now = self.clock()
        if self.panic is None and not self.spec.allow_panic and con.PANIC.search(line):
            self.panic = (start, now)
            self.tr.event("the guest kernel panicked")
        if self.forbidden is None:
            for step in self.spec.expect_not:
                if step.pattern.search(line):
                    self.forbidden = (step, start, now)
                    break
        for name, pattern in con.BUILTIN_MARKERS + tuple(self.spec.markers):
            if pattern.search(line):
                self.milestone(name, now, "console")
        m = con.MARKER_LINE.match(line)
        if m:
            self.milestone(m.group(1), now, "console")

    def check_grace(self, force=False):
        """A panic or forbidden line fails the test once GRACE seconds of what
        follows are in (the trace), or at once when the VM has gone."""
        now = self.clock()
        if self.panic:
            start, seen = self.panic
            if force or self.exited() or now - seen >= GRACE:
                lines = self.console.lines_from(start, 40)
                first = con.PRINTK_TIME.sub("", lines[0].strip())
                raise fail(f"the guest kernel panicked: {first}", lines)
        if self.forbidden:
            step, start, seen = self.forbidden
            if force or self.exited() or now - seen >= GRACE:
                lines = self.console.lines_from(start, 30)
                raise fail(f"forbidden output: '{step.pattern.pattern}' (line {step.line}) "
                           f"appeared: {lines[0].strip()}", lines)

    def milestone(self, name, t, source):
        rel = t - self.boot_t0
        for m in self.result.milestones:
            if m["boot"] == self.boots and m["name"] == name:
                # The first report counts, but the port's time is exact: it
                # replaces a console line's (which lags by the console's
                # latency and by when hvtest read it).
                if source != "port" or m["source"] == "port":
                    return
                m.update(t=round(rel, 6), source=source)
                self.tr.event(f"milestone: {name} at {rel:.3f} s ({source})")
                return
        self.result.milestones.append({"boot": self.boots, "name": name,
                                       "t": round(rel, 6), "source": source})
        self.tr.event(f"milestone: {name} at {rel:.3f} s ({source})")

    def poll_milestones(self):
        """The milestone device's records: 'SECONDS TEXT' lines, SECONDS
        since bhyve started (docs/hvtest.md, "Milestones")."""
        if not self.milestone_file:
            return
        try:
            with open(self.milestone_file, "rb") as f:
                f.seek(self.milestone_pos)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1
        self.milestone_pos += end
        for raw in data[:end].decode("utf-8", "replace").splitlines():
            t, _, name = raw.partition(" ")
            try:
                at = float(t)
            except ValueError:
                continue
            if name:
                self.milestone(name.strip(), self.boot_t0 + at, "port")

    # --- steps ----------------------------------------------------------

    def play(self):
        for step in self.spec.steps:
            if step.kind == "expect-not":
                continue
            if step.kind != "sleep" and step.kind != "boot" and self.boots == 0:
                self.boot()
            getattr(self, "do_" + step.kind.replace("-", "_"))(step)

    def deadline(self, step):
        if step.timeout is None:
            return self.test_deadline
        return min(self.test_deadline, self.clock() + step.timeout * self.ctx.scale)

    def no_luck(self, kind, value, step, deadline, waiting_for):
        """The failure for a pump that gave no match."""
        if kind == "exit":
            raise fail(f"bhyve exited {value} ({self.status_words(value)}) "
                       f"before {waiting_for} ({step.describe()})")
        if deadline >= self.test_deadline:
            raise fail(f"test timeout ({self.spec.timeout * self.ctx.scale:g} s) reached waiting for "
                       f"{waiting_for} ({step.describe()}); the guest was still running "
                       f"(hung?): stopped it")
        raise fail(f"no {waiting_for} within {step.timeout * self.ctx.scale:g} s ({step.describe()}); "
                   f"the guest was still running (hung?): stopped it")

    def do_boot(self, step):
        self.boot()

    def do_expect(self, step):
        deadline = self.deadline(step)
        kind, m = self.pump(deadline, self.console.searcher(step.pattern))
        if kind != "match":
            self.no_luck(kind, m, step, deadline, f"'{step.pattern.pattern}'")
        self.console.cursor = self.console.base + m.end()
        self.tr.event(f"matched '{step.pattern.pattern}' (line {step.line})")

    def send(self, data, step):
        p = self.proc
        if p is None or p.poll() is not None:
            raise fail(f"the VM has exited: cannot send ({step.describe()})")
        self.tr.sent(data)
        try:
            p.stdin.write(data)
            p.stdin.flush()
        except (BrokenPipeError, OSError):
            raise fail(f"bhyve stopped reading its console ({step.describe()})")

    def do_send(self, step):
        self.send(step.data, step)

    def do_sleep(self, step):
        self.pump(min(self.test_deadline, self.clock() + step.seconds), until_exit=False)

    def prompt(self):
        return self.spec.prompt or re.compile(r"[#$] $", re.MULTILINE)

    def do_run(self, step):
        deadline = self.deadline(step)
        prompt = self.prompt()
        kind, m = self.pump(deadline, self.console.searcher(prompt))
        if kind != "match":
            self.no_luck(kind, m, step, deadline, f"a shell prompt '{prompt.pattern}'")
        self.run_id += 1
        marker = RC_MARKER.format(self.run_id)
        sent_at = self.console.end
        self.send(f'{step.command}; echo "{marker}$?"\n'.encode(), step)
        kind, m = self.pump(deadline, self.console.searcher(re.compile(re.escape(marker) + r"(\d+)"),
                                                             sent_at))
        if kind != "match":
            self.no_luck(kind, m, step, deadline, "the command's exit status")
        status, m_start, m_end = int(m.group(1)), self.console.base + m.start(), self.console.base + m.end()
        # The command's output starts after the echoed command line.
        nl = self.console.text.find("\n", self.console.rel(sent_at))
        out_start = min(self.console.base + nl + 1, m_start) if nl >= 0 else m_start
        output = self.console.text[self.console.rel(out_start):self.console.rel(m_start)]
        kind, p = self.pump(deadline, self.console.searcher(prompt, m_end))
        if kind != "match":
            self.no_luck(kind, p, step, deadline, "the shell prompt after the command")
        self.console.cursor = out_start
        self.tr.event(f"run: exit status {status} (line {step.line})")
        if step.status != "any" and status != step.status:
            lines = output.rstrip("\n").split("\n")[-15:]
            raise fail(f"'{step.command}' exited {status}, expected {step.status} "
                       f"({step.describe()})", lines)

    def do_wait_exit(self, step):
        deadline = self.deadline(step)
        kind, status = self.pump(deadline)
        if kind == "timeout":
            what = f"the VM to exit ({step.exit.words})"
            self.no_luck(kind, status, step, deadline, what)
        self.check_grace(force=True)
        err = self.bhyve_err()
        if "panicked" in err and not self.spec.allow_panic:
            raise fail("the guest kernel panicked (bhyve: pvpanic)",
                       [ln for ln in err.splitlines() if ln.strip()][-5:])
        self.stop_vm("it exited")
        want = step.exit.status
        if status == want:
            return
        got = self.status_words(status)
        if want == 1 and status == 0:
            raise fail(f"the guest rebooted (exit 0) instead of powering off ({step.describe()})")
        if want == 0 and status == 1:
            raise fail(f"the guest powered off (exit 1) instead of rebooting ({step.describe()})")
        raise fail(f"bhyve exited {status} ({got}), expected {want} "
                   f"({step.exit.words}) ({step.describe()})")

    def do_milestone(self, step):
        deadline = self.deadline(step)

        def reached():
            for m in self.result.milestones:
                if m["boot"] == self.boots and m["name"] == step.name:
                    return m
            return None

        kind, v = self.pump(deadline, reached)
        if kind != "match":
            self.no_luck(kind, v, step, deadline, f"milestone '{step.name}'")

    def do_guest_status(self, step):
        deadline = self.deadline(step)
        kind, m = self.pump(deadline, self.console.searcher(GUEST_STATUS))
        if kind != "match":
            self.no_luck(kind, m, step, deadline, "'hvtest: exit status N' from the guest")
        self.console.cursor = self.console.base + m.end()
        status = int(m.group(1))
        if status != step.status:
            raise fail(f"the guest's command exited {status}, expected {step.status} "
                       f"({step.describe()})")


def size_bytes(size):
    n, unit = re.fullmatch(r"(\d+)([KMGTkmgt]?)", size).groups()
    return int(n) << {"": 20, "k": 10, "m": 20, "g": 30, "t": 40}[unit.lower()]


def last_line(text):
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "(no output)"


def run_test(spec, ctx, test_id, result_dir):
    return TestRun(spec, ctx, test_id, result_dir).run()
