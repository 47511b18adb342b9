"""The test's VM as child processes: its loader (rawload or grub-bhyve) and
helpers such as the assembler run to completion, then bhyve runs with its
console on pipes.

Every child runs in a process group of its own, so a timeout or an
interrupt kills the whole group; the VM instance lives in a private
BHYVE_VMM_DIR under a unique name and is destroyed with `bhyvectl
--destroy` afterwards, whatever happened.
"""

import os
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

from .outcome import fail

STATUS_WORDS = {0: "rebooted", 1: "powered off", 2: "halted", 3: "triple fault", 4: "error"}
KILL_WAIT = 30  # seconds a SIGKILLed child gets to go


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


def last_line(text):
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "(no output)"


class VM:
    """One test's VM instance: the children that load and run it, bhyve's
    console pipes and exit status, and the instance's teardown.
    vmconfig.prepare() sets its loader and bhyve's command line."""

    def __init__(self, ctx, name, result_dir, tr, result, deadline, clock):
        self.ctx = ctx
        self.name = name
        self.dir = result_dir
        self.tr = tr
        self.result = result  # gets bhyve's exit statuses and stuck children
        self.deadline = deadline  # the test's: helpers get what is left of it
        self.clock = clock
        self.vmm_dir = None
        self.env = None
        self.host_vars = {}  # forwarded ports, for the test's host steps
        self.loader = None  # how to load the VM: a function
        self.bhyve_base = []
        self.proc = None
        self.boots = 0
        self.boot_t0 = 0.0
        self.eof = False  # bhyve closed its console
        self.err_path = None
        self.err_start = 0  # where this boot's part of bhyve.err starts

    def make_vmm_dir(self):
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.vmm_dir = tempfile.mkdtemp(prefix=f"hvtest-{self.name}-", dir=shm)
        self.env = dict(self.ctx.env, BHYVE_VMM_DIR=self.vmm_dir)

    # --- helpers that run to completion ---------------------------------

    def tool_run(self, argv, what, stdin_data=None, timeout=None):
        """Run a helper to completion in its own group; log its output."""
        timeout = max(0.1, self.deadline - self.clock() if timeout is None else timeout)
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
        argv = [self.ctx.tool("rawload"), "-m", memory] + args + [image, self.name]
        status, out = self.tool_run(argv, "load")
        if status != 0:
            raise fail(f"rawload failed (status {status}): {last_line(out)}")

    def grub_load(self, kernel, initrd, cmdline, memory):
        script = f"linux (host){os.path.abspath(kernel)} {cmdline}\n"
        if initrd:
            script += f"initrd (host){os.path.abspath(initrd)}\n"
        script += "boot\n"
        argv = [self.ctx.tool("grub-bhyve"), "-r", "host", "-M", memory, self.name]
        status, out = self.tool_run(argv, "load", stdin_data=script)
        if status != 0:
            raise fail(f"grub-bhyve failed (status {status}): {last_line(out)}")

    def destroy(self):
        try:
            p = subprocess.run([self.ctx.tool("bhyvectl"), "--destroy", f"--vm={self.name}"],
                               capture_output=True, text=True, env=self.env, timeout=10)
            if p.returncode == 0:
                self.tr.event(f"destroyed VM instance {self.name}")
        except (OSError, subprocess.SubprocessError) as e:
            self.tr.event(f"bhyvectl --destroy --vm={self.name} failed: {e}")

    # --- bhyve ------------------------------------------------------------

    def boot(self):
        """Load the VM afresh and start bhyve on it."""
        if self.proc is not None:
            self.stop("boot again")
        if self.boots:
            self.destroy()
        self.boots += 1
        self.tr.event(f"boot {self.boots}")
        self.loader()
        self.tr.event("bhyve: " + " ".join(shlex.quote(a) for a in self.bhyve_base))
        self.proc = self.start_bhyve()
        self.ctx.register(self.proc)
        self.boot_t0 = self.clock()
        self.eof = False
        os.set_blocking(self.proc.stdout.fileno(), False)

    def start_bhyve(self):
        """bhyve, its stderr appended to bhyve.err (one file for all boots)."""
        self.err_path = os.path.join(self.dir, "bhyve.err")
        with open(self.err_path, "ab") as err:
            if self.boots > 1:
                err.write(f"--- boot {self.boots}\n".encode())
                err.flush()
            self.err_start = err.tell()
            try:
                return subprocess.Popen(self.bhyve_base, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=err, env=self.env, start_new_session=self.ctx.own_groups)
            except OSError as e:
                raise fail(f"cannot run bhyve: {e.strerror}")

    def stop(self, why):
        p, self.proc = self.proc, None
        if p.poll() is None:
            self.tr.event(f"stopping the VM: {why}")
            kill_group(p, self.ctx.own_groups)
        if wait_exit(p, KILL_WAIT) is None:
            # Stuck in the kernel (KVM_RUN on a wedged host): say so, go on.
            stuck = f"bhyve (pid {p.pid}) did not die {KILL_WAIT} s after SIGKILL"
            self.tr.event(stuck)
            self.result.details.append(stuck)
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.ctx.unregister(p)

    def cleanup(self, why):
        """Whatever happened: no bhyve left running, no VM instance left."""
        if self.proc is not None:
            self.stop(why)
        if self.vmm_dir:
            self.destroy()
            shutil.rmtree(self.vmm_dir, ignore_errors=True)

    def exited(self):
        return self.proc is None or (self.eof and self.proc.poll() is not None)

    def status_words(self, status):
        return describe_status(status, self.bhyve_err(), "debug-exit" in " ".join(self.bhyve_base))

    def bhyve_err(self):
        """What bhyve wrote to stderr since this boot started."""
        if self.err_path is None:
            return ""
        try:
            with open(self.err_path, "rb") as f:
                f.seek(self.err_start)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # --- the console's pipes ----------------------------------------------

    def read_console(self, timeout):
        """Up to TIMEOUT seconds for console output: bytes, b"" when bhyve
        closed its console (it is exiting), or None."""
        p = self.proc
        if p is None or self.eof:
            if p is not None and p.poll() is None:
                wait_exit(p, timeout)  # bhyve closed stdout, still running
            else:
                time.sleep(max(0, timeout))
            return None
        fd = p.stdout.fileno()
        if not select.select([fd], [], [], max(0, timeout))[0]:
            return None
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return None
        if data == b"":
            self.console_closed()
        return data

    def console_closed(self):
        p = self.proc
        self.eof = True
        # bhyve closes its console just before it exits: its status is
        # worth a short wait, never past the test's deadline.
        wait_exit(p, max(0.1, min(5.0, self.deadline - self.clock())))
        self.tr.event(f"bhyve exited {p.returncode} ({self.status_words(p.returncode)})"
                      if p.returncode is not None else "bhyve closed its console")
        if p.returncode is not None:
            self.result.exits.append(p.returncode)

    def send(self, data, where):
        """Type DATA on the console; WHERE (the step) goes in a failure."""
        p = self.proc
        if p is None or p.poll() is not None:
            raise fail(f"the VM has exited: cannot send ({where})")
        self.tr.sent(data)
        try:
            p.stdin.write(data)
            p.stdin.flush()
        except (BrokenPipeError, OSError):
            raise fail(f"bhyve stopped reading its console ({where})")
