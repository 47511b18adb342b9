"""The step interpreter: plays a test file's steps (testfile.py) on the VM.
Each step waits on the console until the step's timeout or the test's,
whichever comes first; a step that does not get what it waits for fails
the test and says what it was waiting for."""

import re
import subprocess
import tempfile

from .outcome import fail
from .process import kill_group

RC_MARKER = "hvtest-rc-{}-"
GUEST_STATUS = re.compile(r"hvtest: exit status (\d+)")
DEFAULT_PROMPT = re.compile(r"[#$] $", re.MULTILINE)
# Where a kernel log line starts ("[    7.668391] ..."): a guest's printk
# can land right after its prompt, on the prompt's line.
KLOG_START = r"(?=\[\s*\d+\.\d+\] )"


def shell_prompt(pattern):
    """PATTERN, where its end-of-line anchor also matches where a kernel
    log line starts, so that "/ # [    7.66] eth0: ..." shows a prompt."""
    src = pattern.pattern
    if not src.endswith("$") or src.endswith("\\$"):
        return pattern
    return re.compile(src[:-1] + "(?:$|" + KLOG_START + ")", pattern.flags | re.MULTILINE)


class Steps:
    def __init__(self, spec, scale, vm, reader, milestones, tr, clock, test_deadline):
        self.spec = spec
        self.scale = scale  # every timeout is multiplied by it
        self.vm = vm
        self.reader = reader
        self.console = reader.console
        self.milestones = milestones
        self.tr = tr
        self.clock = clock
        self.test_deadline = test_deadline
        self.run_id = 0  # numbers each run step's exit-status marker
        self.host_output = ""  # the last host step's output, for host-expect
        self.host_cursor = 0
        self.host_source = ""

    def play(self):
        for step in self.spec.steps:
            if step.kind == "expect-not":
                continue
            if (step.kind not in ("sleep", "boot", "host", "host-expect")
                    and self.vm.boots == 0):
                self.boot()
            getattr(self, "do_" + step.kind.replace("-", "_"))(step)

    def boot(self):
        self.vm.boot()
        self.milestones.new_boot(self.vm.boots, self.vm.boot_t0)

    def deadline(self, step):
        if step.timeout is None:
            return self.test_deadline
        return min(self.test_deadline, self.clock() + step.timeout * self.scale)

    def no_luck(self, kind, value, step, deadline, waiting_for):
        """The failure for a pump that gave no match."""
        if kind == "exit":
            raise fail(f"bhyve exited {value} ({self.vm.status_words(value)}) "
                       f"before {waiting_for} ({step.describe()})")
        if deadline >= self.test_deadline:
            raise fail(f"test timeout ({self.spec.timeout * self.scale:g} s) reached waiting for "
                       f"{waiting_for} ({step.describe()}); the guest was still running "
                       f"(hung?): stopped it")
        raise fail(f"no {waiting_for} within {step.timeout * self.scale:g} s ({step.describe()}); "
                   f"the guest was still running (hung?): stopped it")

    def wait_for(self, pattern, step, deadline, waiting_for, start=None):
        """PATTERN's match on the console from START (default: the cursor)."""
        kind, m = self.reader.pump(deadline, self.console.searcher(pattern, start))
        if kind != "match":
            self.no_luck(kind, m, step, deadline, waiting_for)
        return m

    def do_boot(self, step):
        self.boot()

    def do_expect(self, step):
        m = self.wait_for(step.pattern, step, self.deadline(step), f"'{step.pattern.pattern}'")
        self.console.cursor = self.console.base + m.end()
        self.tr.event(f"matched '{step.pattern.pattern}' (line {step.line})")

    def do_send(self, step):
        self.vm.send(step.data, step.describe())

    def do_sleep(self, step):
        self.reader.pump(min(self.test_deadline, self.clock() + step.seconds), until_exit=False)

    def do_run(self, step):
        deadline = self.deadline(step)
        shown = self.spec.prompt or DEFAULT_PROMPT
        prompt = shell_prompt(shown)
        self.wait_for(prompt, step, deadline, f"a shell prompt '{shown.pattern}'")
        status, output, out_start, status_end = self.run_command(step, deadline)
        self.wait_for(prompt, step, deadline, "the shell prompt after the command", status_end)
        self.console.cursor = out_start
        self.tr.event(f"run: exit status {status} (line {step.line})")
        if step.status != "any" and status != step.status:
            lines = output.rstrip("\n").split("\n")[-15:]
            raise fail(f"'{step.command}' exited {status}, expected {step.status} "
                       f"({step.describe()})", lines)

    def run_command(self, step, deadline):
        """Type the step's command and an echo of its status after a marker
        no output has; wait for the status. -> (status, the command's output,
        the output's absolute offset, where the status ends)."""
        self.run_id += 1
        marker = RC_MARKER.format(self.run_id)
        c = self.console
        sent_at = c.end
        self.vm.send(f'{step.command}; echo "{marker}$?"\n'.encode(), step.describe())
        m = self.wait_for(re.compile(re.escape(marker) + r"(\d+)"), step, deadline,
                          "the command's exit status", sent_at)
        m_start, m_end = c.base + m.start(), c.base + m.end()
        # The command's output starts after the echoed command line.
        nl = c.text.find("\n", c.rel(sent_at))
        out_start = min(c.base + nl + 1, m_start) if nl >= 0 else m_start
        return int(m.group(1)), c.text[c.rel(out_start):c.rel(m_start)], out_start, m_end

    def do_wait_exit(self, step):
        deadline = self.deadline(step)
        kind, status = self.reader.pump(deadline)
        if kind == "timeout":
            self.no_luck(kind, status, step, deadline, f"the VM to exit ({step.exit.words})")
        self.reader.check_grace(force=True)
        err = self.vm.bhyve_err()
        if "panicked" in err and not self.spec.allow_panic:
            raise fail("the guest kernel panicked (bhyve: pvpanic)",
                       [ln for ln in err.splitlines() if ln.strip()][-5:])
        self.vm.stop("it exited")
        self.check_exit(step, status)

    def check_exit(self, step, status):
        want = step.exit.status
        if status == want:
            return
        if want == 1 and status == 0:
            raise fail(f"the guest rebooted (exit 0) instead of powering off ({step.describe()})")
        if want == 0 and status == 1:
            raise fail(f"the guest powered off (exit 1) instead of rebooting ({step.describe()})")
        raise fail(f"bhyve exited {status} ({self.vm.status_words(status)}), expected {want} "
                   f"({step.exit.words}) ({step.describe()})")

    def do_milestone(self, step):
        deadline = self.deadline(step)
        kind, v = self.reader.pump(deadline, lambda: self.milestones.reached(step.name))
        if kind != "match":
            self.no_luck(kind, v, step, deadline, f"milestone '{step.name}'")

    def do_guest_status(self, step):
        m = self.wait_for(GUEST_STATUS, step, self.deadline(step),
                          "'hvtest: exit status N' from the guest")
        self.console.cursor = self.console.base + m.end()
        status = int(m.group(1))
        if status != step.status:
            raise fail(f"the guest's command exited {status}, expected {step.status} "
                       f"({step.describe()})")

    def do_host(self, step):
        """Run the step's command on this machine (sh -c) with the test's
        forwarded ports in its environment, reading the console meanwhile;
        check its status and keep its output for host-expect."""
        deadline = self.deadline(step)
        env = dict(self.vm.env or self.vm.ctx.env, **self.vm.host_vars)
        self.tr.event(f"host: {step.command} (line {step.line})")
        with tempfile.TemporaryFile() as out:
            try:
                p = subprocess.Popen(["sh", "-c", step.command], stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=self.vm.ctx.own_groups)
            except OSError as e:
                raise fail(f"cannot run sh: {e.strerror} ({step.describe()})")
            self.vm.ctx.register(p)
            try:
                kind, _ = self.reader.pump(deadline, p.poll, until_exit=False)
            finally:
                if p.poll() is None:
                    kill_group(p, self.vm.ctx.own_groups)
                    p.wait()
                self.vm.ctx.unregister(p)
            out.seek(0)
            output = out.read().decode("utf-8", "replace")
        for line in output.splitlines():
            self.tr.event(f"host| {line}")
        self.host_output, self.host_cursor, self.host_source = output, 0, step.command
        lines = output.rstrip("\n").split("\n")[-15:]
        if kind != "match":
            what = (f"{step.timeout * self.scale:g} s" if deadline < self.test_deadline
                    else f"the test timeout ({self.spec.timeout * self.scale:g} s)")
            raise fail(f"host command '{step.command}' did not finish within {what}: "
                       f"stopped it ({step.describe()})", lines)
        self.tr.event(f"host: exit status {p.returncode} (line {step.line})")
        if step.status != "any" and p.returncode != step.status:
            raise fail(f"host command '{step.command}' exited {p.returncode}, expected "
                       f"{step.status} ({step.describe()})", lines)

    def do_host_expect(self, step):
        m = step.pattern.search(self.host_output, self.host_cursor)
        if not m:
            lines = self.host_output.rstrip("\n").split("\n")[-15:]
            raise fail(f"no '{step.pattern.pattern}' in the output of host command "
                       f"'{self.host_source}' ({step.describe()})", lines)
        self.host_cursor = m.end()
        self.tr.event(f"matched '{step.pattern.pattern}' in the host output (line {step.line})")
