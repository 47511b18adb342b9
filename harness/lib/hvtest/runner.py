"""Run one test: boot its VM with the console on pipes, play the steps,
give a verdict, and leave nothing running.

TestRun puts together one test's parts, all writing to its transcript:
vmconfig.prepare (what to boot), process.VM (the loader and bhyve, killed
and destroyed whatever happens), console.Reader (the console, watched for
panics and forbidden output), milestones.Milestones and steps.Steps (the
test file's steps). Context holds what all tests of a run share.
"""

import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field

from . import console as con
from . import vmconfig
from .host import REPO
from .milestones import Milestones
from .outcome import Outcome
from .process import VM, kill_group
from .steps import Steps

TAIL_LINES = 20


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


class Context:
    """What all tests of a run share: paths, options, caches, live processes."""

    def __init__(self, bin_dir=None, guests_dir=None, results=None, scale=1.0,
                 own_groups=True, env=None, console=None):
        self.bin_dir = bin_dir or os.environ.get("HVTEST_BIN") or os.path.join(REPO, "build", "bin")
        self.guests_dir = guests_dir or os.environ.get("HVTEST_GUESTS") or os.path.join(REPO, "build", "guests")
        self.results = results
        self.scale = scale
        self.own_groups = own_groups  # False under kyua: it kills our group
        self.env = dict(os.environ if env is None else env)
        # --console / HVTEST_CONSOLE: every Linux guest's console (com1 or virtio)
        self.console = console or self.env.get("HVTEST_CONSOLE") or None
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
                    self.fixtures[name] = vmconfig.resolve_fixture(name, self.env)
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


class TestRun:
    def __init__(self, spec, ctx, test_id, result_dir):
        self.spec = spec
        self.ctx = ctx
        self.result = Result(test_id=test_id, path=spec.path, result_dir=result_dir)
        self.dir = result_dir
        self.clock = time.monotonic
        self.vm_name = ctx.next_vm_name()

    def run(self):
        self.start()
        try:
            self.milestones.port_log = vmconfig.prepare(self.vm, self.spec, self.ctx)
            self.steps.play()
            self.reader.finish()
        except Outcome as e:
            self.result.verdict, self.result.reason, self.result.details = e.verdict, e.reason, e.details
        except Exception as e:  # a harness bug must still clean up and say so
            self.result.verdict = "failed"
            self.result.reason = f"hvtest internal error: {type(e).__name__}: {e}"
        finally:
            self.vm.cleanup("the test is over" if self.result.verdict == "passed" else "test failed")
        return self.finish()

    def start(self):
        """A fresh result directory, the test's clock started, its
        transcript opened and its parts made."""
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
        deadline = self.t0 + self.spec.timeout * self.ctx.scale
        self.tr = con.Transcript(os.path.join(self.dir, "transcript.txt"),
                                 os.path.join(self.dir, "console.raw"), self.t0, self.clock)
        self.tr.event(f"test {self.spec.path}: {self.spec.description}".rstrip(": "))
        self.vm = VM(self.ctx, self.vm_name, self.dir, self.tr, self.result, deadline, self.clock)
        self.milestones = Milestones(self.result.milestones, self.spec.markers, self.tr)
        self.reader = con.Reader(self.vm, self.tr, self.milestones, self.spec, self.ctx.abort,
                                 self.clock)
        self.steps = Steps(self.spec, self.ctx.scale, self.vm, self.reader, self.milestones,
                           self.tr, self.clock, deadline)

    def finish(self):
        """The result completed, in the transcript and in result.json."""
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


def run_test(spec, ctx, test_id, result_dir):
    return TestRun(spec, ctx, test_id, result_dir).run()
