"""hvtest's runner, suites and reports against a stand-in VM (fake/): every
verdict kind, timeouts that leave nothing behind, -j without collisions,
--repeat, --shard, JUnit/TAP, kyua, and the decision to nest. No KVM needed:
fake/fakevm.py plays bhyve, rawload, grub-bhyve and bhyvectl."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.realpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "harness", "lib"))

from hvtest import host, report, suite  # noqa: E402
from hvtest.process import describe_status  # noqa: E402
from hvtest.runner import Context, run_test  # noqa: E402
from hvtest.testfile import parse_text  # noqa: E402

FAKE = os.path.join(HERE, "fake")
HVTEST = os.path.join(REPO, "harness", "hvtest")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class FakeVM(unittest.TestCase):
    """Each test gets a work directory, a FAKE_LOG and the fake binaries."""

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="hvtest-selftest-")
        self.log = os.path.join(self.work, "fake.log")
        self.env = dict(os.environ, FAKE_LOG=self.log, BHYVE_DIRECT="1",
                        HVTEST_BIN=os.path.join(FAKE, "bin"),
                        HVTEST_GUESTS=os.path.join(FAKE, "guests"),
                        HVTEST_FIXTURE_LINUX=os.path.join(FAKE, "linux"),
                        FAKE_STATE=os.path.join(self.work, "flaky.count"),
                        HVTEST_RESULTS=os.path.join(self.work, "results"),
                        FAKE_DEVICES="com1 debug-exit milestone hostbridge lpc virtio-blk")
        self.env.pop("BHYVE_NESTED_TESTS", None)
        self.env.pop("BHYVE_NESTED", None)
        self.saved_env = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)

    def tearDown(self):
        os.environ.clear()
        os.environ.update(self.saved_env)
        shutil.rmtree(self.work, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.work, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_text(self, text, name="t.hvt", scale=1.0):
        path = self.write(name, text)
        spec = parse_text(text, path)
        ctx = Context(results=os.path.join(self.work, "results"), scale=scale)
        return run_test(spec, ctx, name[:-4], os.path.join(self.work, "results", name[:-4]))

    def fake_log(self):
        try:
            with open(self.log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def assert_nothing_left(self):
        """No fake bhyve, grandchild or instance directory outlives a test."""
        lines = self.fake_log()
        started = [ln.split() for ln in lines if ln.startswith("start ")]
        destroyed = {ln.split()[1] for ln in lines if ln.startswith("destroy ")}
        for _, vm, vmm_dir, pid in started:
            self.assertFalse(alive(int(pid)), f"bhyve {vm} (pid {pid}) still runs")
            self.assertIn(vm, destroyed, f"{vm} was never destroyed")
            self.assertFalse(os.path.exists(vmm_dir), f"{vmm_dir} is still there")
        for ln in lines:
            if ln.startswith("grandchild "):
                self.assertFalse(alive(int(ln.split()[1])), "a process of bhyve's group survived")

    def hvtest(self, *args, cwd=None, env=None):
        p = subprocess.run([sys.executable, HVTEST] + list(args), capture_output=True, text=True,
                           cwd=cwd or self.work, env=env or self.env, timeout=120)
        return p.returncode, p.stdout, p.stderr


class Verdicts(FakeVM):
    def test_poweroff_passes(self):
        r = self.run_text("guest hello\nexpect 'hello from guest'\nwait-exit poweroff\n")
        self.assertEqual((r.verdict, r.exits), ("passed", [1]), r.reason)
        self.assert_nothing_left()

    def test_reboot_instead_of_poweroff(self):
        r = self.run_text("guest reset\nexpect resetting\nwait-exit poweroff\n")
        self.assertEqual(r.verdict, "failed")
        self.assertIn("rebooted (exit 0) instead of powering off (line 3", r.reason)

    def test_poweroff_instead_of_reboot(self):
        r = self.run_text("guest hello\nwait-exit reboot\n")
        self.assertIn("powered off (exit 1) instead of rebooting", r.reason)

    def test_every_exit_status(self):
        for guest, words, status in (("reset", "reboot", 0), ("hello", "poweroff", 1),
                                     ("halt", "halt", 2), ("triplefault", "triple-fault", 3),
                                     ("error", "error", 4), ("debugfail", "debug-exit 3", 7),
                                     ("debugfail", "7", 7)):
            with self.subTest(guest=guest):
                r = self.run_text(f"guest {guest}\nwait-exit {words}\n")
                self.assertEqual((r.verdict, r.exits), ("passed", [status]), r.reason)

    def test_wrong_status_is_named(self):
        r = self.run_text("guest halt\nwait-exit triple-fault\n")
        self.assertIn("bhyve exited 2 (halted), expected 3 (triple-fault)", r.reason)
        r = self.run_text("guest error\nwait-exit poweroff\n")
        self.assertIn("bhyve exited 4 (error: bhyve: unhandled port 0x1234)", r.reason)

    def test_debug_exit_words(self):
        r = self.run_text("guest debugfail\nbhyve -l debug-exit\nwait-exit debug-exit 0\n")
        self.assertIn("bhyve exited 7 (debug-exit value 3), expected 1 (debug-exit 0)", r.reason)
        self.assertEqual(describe_status(3, "bhyve: vCPU 0: triple fault at rip 0x1", True), "triple fault")
        self.assertEqual(describe_status(3, "", True), "debug-exit value 1")
        self.assertEqual(describe_status(-9), "killed by signal 9")

    def test_exit_before_expected_text(self):
        r = self.run_text("guest hello\nexpect 'never printed'\n")
        self.assertIn("bhyve exited 1 (powered off) before 'never printed' (line 2", r.reason)

    def test_hang_stopped_at_test_timeout(self):
        t0 = time.monotonic()
        r = self.run_text("guest spin\ntimeout 1s\nexpect spinning\nexpect never\n")
        took = time.monotonic() - t0
        self.assertEqual(r.verdict, "failed")
        self.assertIn("test timeout (1 s) reached waiting for 'never'", r.reason)
        self.assertIn("still running (hung?): stopped it", r.reason)
        self.assertLess(took, 5)
        self.assert_nothing_left()

    def test_hang_stopped_at_step_timeout(self):
        r = self.run_text("guest silent\ntimeout 60s\nexpect never 500ms\n")
        self.assertIn("no 'never' within 0.5 s (line 3", r.reason)
        self.assertLess(r.duration, 5)
        self.assert_nothing_left()

    def test_wait_exit_timeout(self):
        r = self.run_text("guest spin\nwait-exit poweroff 300ms\n")
        self.assertIn("no the VM to exit (poweroff) within 0.3 s", r.reason)
        self.assert_nothing_left()

    def test_timeout_scale(self):
        r = self.run_text("guest spin\nexpect never 200ms\n", scale=3)
        self.assertIn("within 0.6 s", r.reason)
        self.assertGreaterEqual(r.duration, 0.55)

    def test_panic_on_console(self):
        r = self.run_text("guest panic\ntimeout 30s\nexpect 'never'\n")
        self.assertEqual(r.verdict, "failed")
        self.assertTrue(r.reason.startswith("the guest kernel panicked: Kernel panic - not syncing"), r.reason)
        self.assertIn("Call Trace:", r.details)
        self.assertLess(r.duration, 10)  # the grace period, not the timeout
        self.assert_nothing_left()

    def test_pvpanic_exit_zero_is_a_panic_not_a_reboot(self):
        r = self.run_text("guest pvpanic\nwait-exit reboot\n")
        self.assertEqual(r.verdict, "failed")
        self.assertIn("panicked", r.reason)

    def test_allow_panic(self):
        r = self.run_text("guest pvpanic\nallow-panic\nexpect 'Kernel panic'\nwait-exit reboot\n")
        self.assertEqual(r.verdict, "passed", r.reason)

    def test_expect_not(self):
        r = self.run_text("guest bug\nexpect-not 'BUG:'\nwait-exit poweroff\n")
        self.assertIn("forbidden output: 'BUG:' (line 2) appeared: BUG: kernel NULL pointer", r.reason)
        self.assertIn("Call Trace:", r.details)

    def test_expect_not_applies_to_earlier_output(self):
        r = self.run_text("guest hello\nwait-exit poweroff\nexpect-not hello\n")
        self.assertIn("forbidden output", r.reason)

    def test_expect_not_on_a_partial_last_line(self):
        r = self.run_text("guest partial\nwait-exit poweroff\nexpect-not 'no newline'\n")
        self.assertIn("forbidden output", r.reason)

    def test_send_and_expect(self):
        r = self.run_text("guest echo\nexpect 'echo ready'\nsend 'abc\\n'\nexpect '^abc$'\n"
                          "send 'quit\\n'\nexpect bye\nwait-exit poweroff\n")
        self.assertEqual(r.verdict, "passed", r.reason)

    def test_expect_consumes_output(self):
        # The second 'ready' must come after the first match: it never does.
        r = self.run_text("guest echo\nexpect ready\nexpect ready 300ms\n")
        self.assertIn("no 'ready' within", r.reason)

    def test_sleep(self):
        r = self.run_text("guest spin\nsleep 300ms\nexpect spinning\n")
        self.assertEqual(r.verdict, "passed")
        self.assertGreaterEqual(r.duration, 0.3)

    def test_milestones_from_port_and_console(self):
        r = self.run_text("guest milestones\nmarker done 'all done'\nmilestone 'userspace up'\n"
                          "milestone 'custom one'\nmilestone done\nwait-exit poweroff\n")
        self.assertEqual(r.verdict, "passed", r.reason)
        got = {m["name"]: m["source"] for m in r.milestones}
        self.assertEqual(got, {"kernel started": "port", "userspace up": "port",
                               "custom one": "console", "done": "console"})
        times = [m["t"] for m in r.milestones]
        self.assertEqual(times, sorted(times))

    def test_port_record_replaces_console_marker(self):
        # The console line comes first; the port's record (exact) wins.
        r = self.run_text("guest milestone-late\nexpect 'all done'\nwait-exit poweroff\n")
        self.assertEqual(r.verdict, "passed", r.reason)
        ups = [m for m in r.milestones if m["name"] == "userspace up"]
        self.assertEqual(len(ups), 1)
        self.assertEqual(ups[0]["source"], "port")
        self.assertGreaterEqual(ups[0]["t"], 0.3)

    def test_missing_milestone_times_out(self):
        r = self.run_text("guest spin\nmilestone 'userspace up' 300ms\n")
        self.assertIn("no milestone 'userspace up' within 0.3 s", r.reason)

    def test_requires_missing_device_skips(self):
        r = self.run_text("guest hello\nrequires virtio-9p\nwait-exit poweroff\n")
        self.assertEqual(r.verdict, "skipped")
        self.assertIn("no virtio-9p device", r.reason)

    def test_guest_not_built(self):
        r = self.run_text("guest nosuchguest\nwait-exit poweroff\n")
        self.assertIn("guest nosuchguest is not built", r.reason)

    def test_guest_source_assembly_error(self):
        self.write("broken.S", "\t.include \"lib.S\"\n\tnot_an_instruction\n")
        r = self.run_text("guest-source broken.S\nwait-exit poweroff\n")
        self.assertIn("as broken.S failed", r.reason)

    def test_transcript_and_files(self):
        r = self.run_text("# described\nguest echo\nexpect ready\nsend 'hi\\n'\nexpect hi\n")
        with open(os.path.join(r.result_dir, "transcript.txt")) as f:
            lines = f.read().splitlines()
        self.assertTrue(all(re.match(r"\[ *\d+\.\d{3}\] [|>#] ", ln) for ln in lines), lines)
        self.assertIn("| echo ready", "\n".join(lines))
        self.assertIn('> "hi\\n"', "\n".join(lines))
        with open(os.path.join(r.result_dir, "console.raw"), "rb") as f:
            self.assertTrue(f.read().startswith(b"echo ready\r\n"))
        with open(os.path.join(r.result_dir, "result.json")) as f:
            self.assertEqual(json.load(f)["verdict"], "passed")


class HostSteps(FakeVM):
    """net user, forward and the host steps (the fake bhyve takes any -s)."""

    def transcript(self, name="t"):
        with open(os.path.join(self.work, "results", name, "transcript.txt")) as f:
            return f.read()

    def test_forward_gives_a_port_to_host_steps(self):
        os.environ["FAKE_DEVICES"] += " virtio-net e1000"
        r = self.run_text("guest spin\nnet user\nforward tcp 80\nforward udp 53 as DNS\n"
                          "expect spinning\nhost echo \"web=$PORT_TCP_80 dns=$DNS\"; echo second\n"
                          "host-expect 'web=(\\d+) dns=(\\d+)'\nhost-expect second\n")
        self.assertEqual(r.verdict, "passed", r.reason)
        tr = self.transcript()
        m = re.search(r"host\| web=(\d+) dns=(\d+)", tr)
        self.assertTrue(m, tr)
        web, dns = m.groups()
        self.assertIn(f"-s 2:0,virtio-net,slirp,hostfwd=tcp:127.0.0.1:{web}-:80,"
                      f"hostfwd=udp:127.0.0.1:{dns}-:53 ", tr)
        self.assert_nothing_left()

    def test_e1000_and_status(self):
        os.environ["FAKE_DEVICES"] += " virtio-net e1000"
        r = self.run_text("guest spin\nnet user e1000\nexpect spinning\nhost -s 3 exit 3\n"
                          "host -s any false\nhost echo out; exit 1\n")
        self.assertEqual(r.verdict, "failed")
        self.assertIn("host command 'echo out; exit 1' exited 1, expected 0 (line 6", r.reason)
        self.assertIn("out", r.details)
        self.assertIn("-s 2:0,e1000,slirp ", self.transcript())

    def test_host_expect_fails_naming_the_command(self):
        r = self.run_text("guest spin\nhost echo abc\nhost-expect abc\nhost-expect abc\n")
        self.assertEqual(r.verdict, "failed")
        self.assertIn("no 'abc' in the output of host command 'echo abc' (line 4", r.reason)

    def test_host_timeout_kills_it(self):
        t0 = time.monotonic()
        r = self.run_text("guest spin\nexpect spinning\nhost -t 500ms sleep 30\n")
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIn("host command 'sleep 30' did not finish within 0.5 s: stopped it", r.reason)
        self.assert_nothing_left()

    def test_no_nic_device_skips(self):
        r = self.run_text("guest spin\nnet user\nexpect spinning\n")
        self.assertEqual(r.verdict, "skipped")
        self.assertIn("no virtio-net device", r.reason)


class Shares(FakeVM):
    """share, share results and console virtio: bhyve's options, the kernel
    command line, the host directories (the fake bhyve takes any -s)."""

    def setUp(self):
        super().setUp()
        os.environ["FAKE_DEVICES"] += " virtio-9p virtio-console"

    def transcript(self, name="t"):
        with open(os.path.join(self.work, "results", name, "transcript.txt")) as f:
            return f.read()

    def test_shares_become_virtio_9p_devices(self):
        os.makedirs(os.path.join(self.work, "data"))
        os.makedirs(os.path.join(self.work, "sub", "ro-dir"))
        r = self.run_text("linux\nshare data\nshare sub/ro-dir ro as stuff\nshare results\n"
                          "expect 'userspace up'\nhost echo from-host >\"$SHARE_RESULTS/f\"; "
                          "echo \"$SHARE_DATA $SHARE_STUFF\"\n"
                          "host-expect '^(\\S+) (\\S+)$'\n")
        self.assertEqual(r.verdict, "passed", r.reason)
        tr = self.transcript()
        data = os.path.join(self.work, "data")
        stuff = os.path.join(self.work, "sub", "ro-dir")
        results = os.path.join(self.work, "results", "t", "results")
        self.assertIn(f"-s 20:0,virtio-9p,data={data} -s 21:0,virtio-9p,stuff={stuff},ro "
                      f"-s 22:0,virtio-9p,results={results} ", tr)
        self.assertIn(f"host| {data} {stuff}", tr)
        self.assertIn("-l com1,stdio", tr)
        # The results share is kept with the transcript.
        with open(os.path.join(results, "f")) as f:
            self.assertEqual(f.read(), "from-host\n")
        self.assert_nothing_left()

    def test_results_share_is_fresh_each_run(self):
        text = "linux\nshare results\nhost ls \"$SHARE_RESULTS\"; touch \"$SHARE_RESULTS/x\"\n"
        self.run_text(text)
        self.assertNotIn("host| x", self.transcript())
        self.run_text(text)
        self.assertNotIn("host| x", self.transcript())

    def test_missing_share_fails(self):
        r = self.run_text("linux\nshare nosuch\nexpect 'userspace up'\n")
        self.assertEqual(r.verdict, "failed")
        self.assertEqual(r.reason, f"share {os.path.join(self.work, 'nosuch')} is not a "
                                   "directory (line 2)")

    def test_no_9p_device_skips(self):
        os.environ["FAKE_DEVICES"] = "com1 hostbridge lpc virtio-console"
        r = self.run_text("linux\nshare results\nexpect 'userspace up'\n")
        self.assertEqual(r.verdict, "skipped")
        self.assertIn("no virtio-9p device", r.reason)

    def test_console_virtio(self):
        r = self.run_text("linux\nconsole virtio\ncommand echo on hvc0\nexpect '^on hvc0$'\n"
                          "guest-status 0\nwait-exit poweroff\n")
        self.assertEqual(r.verdict, "passed", r.reason)
        tr = self.transcript()
        self.assertIn("-s 30:0,virtio-console,console=stdio ", tr)
        self.assertNotIn("com1", tr)
        self.assertIn("command line console=ttyS0 console=hvc0 -- echo on hvc0", tr)

    def test_console_virtio_for_a_whole_run(self):
        self.write("suite/a.hvt", "linux\ncommand true\nguest-status 0\n")
        self.write("suite/b.hvt", "guest hello\nwait-exit poweroff\n")
        rc, out, err = self.hvtest("--console", "virtio", "suite", env=dict(os.environ))
        self.assertEqual(rc, 0, out + err)
        self.assertIn("virtio-console,console=stdio", self.transcript("suite/a"))
        self.assertIn("-l com1,stdio", self.transcript("suite/b"))  # tiny guests keep the UART

    def test_no_console_device_skips(self):
        os.environ["FAKE_DEVICES"] = "com1 hostbridge lpc"
        r = self.run_text("linux\nconsole virtio\nexpect 'userspace up'\n")
        self.assertEqual(r.verdict, "skipped")
        self.assertIn("no virtio-console device", r.reason)


class Shell(FakeVM):
    def test_run_checks_exit_status_and_output(self):
        r = self.run_text("linux\nexpect 'userspace up'\nrun echo hello there\nexpect '^hello there$'\n"
                          "run -s 1 false\nrun -s any sh -c 'exit 5'\nrun test -d /\n")
        self.assertEqual(r.verdict, "passed", r.reason)

    def test_run_failure_shows_output(self):
        r = self.run_text("linux\nrun sh -c 'echo oops; exit 3'\n")
        self.assertIn("'sh -c 'echo oops; exit 3'' exited 3, expected 0 (line 2", r.reason)
        self.assertIn("oops", r.details)

    def test_run_with_a_kernel_message_after_the_prompt(self):
        # "~ # [    7.668391] IPv6: ..." on one line: the prompt still counts
        r = self.run_text("linux\ncmdline fake.klog\nrun echo hi\nrun -s 1 false\nrun true\n")
        self.assertEqual(r.verdict, "passed", r.reason)
        r = self.run_text("linux\ncmdline fake.klog\nprompt '~ # $'\nrun true\nrun true\n")
        self.assertEqual(r.verdict, "passed", r.reason)

    def test_run_with_custom_prompt_on_a_tiny_guest(self):
        r = self.run_text("guest shell\nprompt '~ # $'\nrun true\nrun -s 2 sh -c 'exit 2'\n")
        self.assertEqual(r.verdict, "passed", r.reason)

    def test_linux_command_and_guest_status(self):
        r = self.run_text("linux\ncommand sh -c 'echo out; exit 3'\nexpect out\nguest-status 3\n"
                          "wait-exit poweroff\n")
        self.assertEqual(r.verdict, "passed", r.reason)
        self.assertEqual({m["name"] for m in r.milestones}, {"kernel started", "userspace up"})
        r = self.run_text("linux\ncommand false\nguest-status 0\n")
        self.assertIn("the guest's command exited 1, expected 0", r.reason)

    def test_linux_panic_reported(self):
        r = self.run_text("linux\ncmdline fake.panic\nexpect 'userspace up'\n")
        self.assertEqual(r.verdict, "failed")
        self.assertIn("panicked", r.reason)
        self.assertIn("Kernel panic - not syncing: Attempted to kill init!", "\n".join(r.details))

    def test_printk_times_are_not_in_the_reason(self):
        self.write("g/panic.bin", "print [   10.652025] Kernel panic - not syncing: sysrq triggered crash\n"
                                  "exit 0\n")
        self.write("g/panic.args", "-b 32\n")
        os.environ["HVTEST_GUESTS"] = os.path.join(self.work, "g")
        r = self.run_text("guest panic\nwait-exit reboot\n")
        self.assertEqual(r.reason, "the guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash")

    def test_linux_hang(self):
        r = self.run_text("linux\ncmdline fake.hang\ntimeout 1\nexpect 'userspace up'\n")
        self.assertIn("test timeout (1 s)", r.reason)
        self.assert_nothing_left()

    def test_two_boots_share_a_scratch_disk(self):
        r = self.run_text("linux\ndisk scratch 1M\ncmdline fake.disk\nexpect 'userspace up'\n"
                          "run echo"" hvtest-was-here | dd of=$(ls -d /proc/self/fd/1)\n"
                          "send reboot\\n\nwait-exit reboot\nboot\nexpect 'userspace up'\n")
        self.assertEqual(r.verdict, "passed", r.reason)
        self.assertEqual(r.exits, [0])
        self.assertEqual(sorted({m["boot"] for m in r.milestones}), [1, 2])

    def test_missing_fixture_skips(self):
        os.environ.pop("HVTEST_FIXTURE_LINUX")
        r = self.run_text("fixture nosuch\nexpect x\n")
        self.assertEqual(r.verdict, "skipped")
        self.assertIn("fixtures/nosuch/build.sh does not exist", r.reason)


class Suites(FakeVM):
    def make_suite(self, n, text="guest hello\nwait-exit poweroff\n"):
        for i in range(n):
            self.write(f"suite/t{i:02d}.hvt", text)
        return os.path.join(self.work, "suite")

    def test_summary_and_exit_status(self):
        d = self.make_suite(3)
        self.write("suite/zz-fail.hvt", "guest reset\nwait-exit poweroff\n")
        self.write("suite/zz-skip.hvt", "guest hello\nrequires nothing-like-it\nwait-exit poweroff\n")
        rc, out, err = self.hvtest(d)
        lines = out.splitlines()
        self.assertEqual(lines[0], "hvtest: running on /dev/kvm (BHYVE_DIRECT=1): 5 tests, -j 1")
        self.assertEqual(lines[-1], "3 passed, 1 failed, 1 skipped")
        self.assertEqual(rc, 1)
        self.assertRegex(out, r"\[4/5, 3 passed, 1 failed, [\d.]+s\] FAIL suite/zz-fail")
        self.assertIn("    last lines:", out)
        rc, out, _ = self.hvtest(os.path.join(d, "t00.hvt"), os.path.join(d, "t01.hvt"))
        self.assertEqual((rc, out.splitlines()[-1]), (0, "2 passed, 0 failed"))

    def test_parallel_runs_do_not_collide(self):
        d = self.make_suite(8, "guest echo\nexpect ready\nsleep 200ms\nsend 'quit\\n'\nwait-exit poweroff\n")
        t0 = time.monotonic()
        rc, out, err = self.hvtest("-j", "8", d)
        took = time.monotonic() - t0
        self.assertEqual((rc, out.splitlines()[-1]), (0, "8 passed, 0 failed"), out + err)
        starts = [ln.split() for ln in self.fake_log() if ln.startswith("start ")]
        self.assertEqual(len({s[1] for s in starts}), 8)  # VM names
        self.assertEqual(len({s[2] for s in starts}), 8)  # BHYVE_VMM_DIRs
        self.assertLess(took, 8 * 0.2 + 6)
        self.assert_nothing_left()

    def test_devices_probed_once_a_run(self):
        d = self.make_suite(4, "guest hello\nrequires debug-exit\nwait-exit poweroff\n")
        rc, out, err = self.hvtest("-j", "4", d)
        self.assertEqual((rc, out.splitlines()[-1]), (0, "4 passed, 0 failed"), out + err)
        probes = sorted(ln for ln in self.fake_log() if ln.startswith("probe "))
        self.assertEqual(probes, ["probe -l", "probe -s"])

    def test_no_strays_after_failures_and_timeouts(self):
        d = self.make_suite(2, "guest spin\ntimeout 1\nexpect never\n")
        self.write("suite/panic.hvt", "guest panic\nexpect never\n")
        self.write("suite/ok.hvt", "guest hello\nwait-exit poweroff\n")
        rc, out, _ = self.hvtest("-j", "4", d)
        self.assertEqual(out.splitlines()[-1], "1 passed, 3 failed")
        self.assert_nothing_left()

    def test_interrupt_cleans_up(self):
        d = self.make_suite(3, "guest spin\ntimeout 60\nexpect never\n")
        p = subprocess.Popen([sys.executable, HVTEST, "-j", "3", d], cwd=self.work, env=self.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while sum(ln.startswith("grandchild") for ln in self.fake_log()) < 3:
            self.assertLess(time.monotonic(), deadline, "the fake guests never started")
            time.sleep(0.05)
        p.send_signal(2)
        out, _ = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 130)
        self.assertEqual(out.splitlines()[-1], "0 passed, 3 failed")
        self.assert_nothing_left()

    def test_repeat_flags_flaky_tests(self):
        self.write("flaky.hvt", "guest flaky\nwait-exit poweroff\n")
        rc, out, _ = self.hvtest("--repeat", "4", "flaky.hvt")
        self.assertEqual(rc, 1)
        self.assertIn("FLAKY flaky", out)
        self.assertIn("flaky: 2 of 4 runs passed", out)
        self.assertEqual(out.splitlines()[-1], "0 passed, 1 failed (1 flaky)")
        shutil.copy(os.path.join(HERE, "cases", "reboot-not-poweroff.hvt"), self.work)
        rc, out, _ = self.hvtest("--repeat", "3", "reboot-not-poweroff.hvt")
        self.assertEqual(out.splitlines()[-1], "0 passed, 1 failed")
        for k in (1, 2, 3):
            self.assertTrue(os.path.isfile(os.path.join(self.work, "results", "reboot-not-poweroff",
                                                        f"run-{k}", "transcript.txt")))

    def test_shards_split_and_cover(self):
        d = self.make_suite(7)
        seen = []
        for k in (1, 2, 3):
            rc, out, _ = self.hvtest("--list", "--shard", f"{k}/3", d)
            seen.append(out.split())
        self.assertEqual(sorted(sum(seen, [])), [f"suite/t{i:02d}" for i in range(7)])
        self.assertEqual([len(s) for s in seen], [3, 2, 2])
        rc2, out2, _ = self.hvtest("--list", "--shard", "1/3", d)
        self.assertEqual(out2.split(), seen[0])  # deterministic
        rc, _, err = self.hvtest("--shard", "4/3", d)
        self.assertEqual(rc, 2)
        self.assertIn("--shard wants K/N", err)

    def test_junit_from_shards_merges(self):
        d = self.make_suite(4)
        self.write("suite/zz-fail.hvt", "guest halt\nwait-exit poweroff\n")
        files = []
        for k in (1, 2):
            j = os.path.join(self.work, f"junit-{k}.xml")
            self.hvtest("--shard", f"{k}/2", "--junit", j, d)
            files.append(j)
        merged = os.path.join(self.work, "junit.xml")
        rc, out, _ = self.hvtest("--merge-junit", merged, *files)
        self.assertEqual(rc, 0, out)
        root = ET.parse(merged).getroot()
        suite_el = root.find("testsuite")
        self.assertEqual((suite_el.get("tests"), suite_el.get("failures")), ("5", "1"))
        cases = suite_el.findall("testcase")
        self.assertEqual([c.get("name") for c in cases], ["t00", "t01", "t02", "t03", "zz-fail"])
        fail = cases[-1].find("failure")
        self.assertIn("bhyve exited 2 (halted)", fail.get("message"))
        self.assertIn("| halting", cases[-1].find("system-out").text)

    def test_tap(self):
        d = self.make_suite(1)
        self.write("suite/zz-fail.hvt", "guest halt\nwait-exit poweroff\n")
        self.write("suite/zz-skip.hvt", "guest hello\nrequires nothing\nwait-exit poweroff\n")
        tap = os.path.join(self.work, "out.tap")
        self.hvtest("--tap", tap, d)
        with open(tap) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[:3], ["TAP version 13", "1..3", "ok 1 - suite/t00"])
        self.assertEqual(lines[3], "not ok 2 - suite/zz-fail")
        self.assertIn('  message: "bhyve exited 2 (halted)', lines[5])
        self.assertTrue(lines[-1].startswith("ok 3 - suite/zz-skip # SKIP bhyve has no nothing"))

    def test_bad_file_fails_with_its_line(self):
        self.write("bad.hvt", "guest hello\n\nwait-exit poweroof\n")
        rc, out, _ = self.hvtest("bad.hvt")
        self.assertEqual(rc, 1)
        self.assertIn("FAIL bad (0.00s): bad test file: bad.hvt:3: unknown exit status 'poweroof' "
                      "(did you mean 'poweroff'?)", out)
        rc, out, _ = self.hvtest("--check", "bad.hvt")
        self.assertEqual((rc, out.splitlines()[0]), (1, "bad.hvt:3: unknown exit status 'poweroof' "
                                                        "(did you mean 'poweroff'?)"))

    def test_usage_errors(self):
        for args, words in ((["nonexistent.hvt"], "no such file"), ([], "no test files given"),
                            (["-j", "0", "x"], "must be positive")):
            rc, _, err = self.hvtest(*args)
            self.assertEqual(rc, 2, args)
            self.assertIn(words, err)

    def test_results_directory(self):
        self.write("a.hvt", "guest hello\nwait-exit poweroff\n")
        res = os.path.join(self.work, "res")
        self.hvtest("--results", res, "a.hvt")
        for f in ("summary.txt", "results.json", "a/transcript.txt", "a/console.raw", "a/bhyve.err",
                  "a/result.json"):
            self.assertTrue(os.path.exists(os.path.join(res, f)), f)
        with open(os.path.join(res, "summary.txt")) as f:
            self.assertEqual(f.read().splitlines()[-1], "1 passed, 0 failed")


class Nesting(FakeVM):
    def test_rule_matches_ci_kvm_sh(self):
        """host.kvm_rule is ci/kvm.sh's rule: compare them on every setting."""
        for env in ({}, {"BHYVE_NESTED_TESTS": "1"}, {"BHYVE_DIRECT": "1"},
                    {"BHYVE_NESTED_TESTS": "1", "BHYVE_DIRECT": "1"}):
            base = {k: v for k, v in self.env.items() if not k.startswith("BHYVE_")}
            base.update(env)
            with self.subTest(env=env):
                script = '. "$1"; if kvm_usable; then echo 1; else echo 0; fi; kvm_why_nested'
                out = subprocess.run(["bash", "-c", script, "t", host.KVM_SH], env=base,
                                     capture_output=True, text=True).stdout.split("\n", 1)
                usable, why = host._rule_here(base)
                self.assertEqual(usable, out[0] == "1")
                if not usable:
                    self.assertEqual(why, out[1].strip())
                self.assertEqual(host.decide(base)[0], not usable)

    def test_pure_rule(self):
        self.assertEqual(host.kvm_rule({}, True, False), (True, "/dev/kvm"))
        self.assertFalse(host.kvm_rule({}, True, True)[0])  # kvm_pvm
        self.assertFalse(host.kvm_rule({}, False, False)[0])
        self.assertEqual(host.kvm_rule({"BHYVE_DIRECT": "1"}, False, True), (True, "/dev/kvm (BHYVE_DIRECT=1)"))
        self.assertFalse(host.kvm_rule({"BHYVE_NESTED_TESTS": "1", "BHYVE_DIRECT": "1"}, True, False)[0])

    def test_inside_the_outer_vm_never_nests_again(self):
        self.assertEqual(host.decide({"BHYVE_NESTED": "1", "BHYVE_NESTED_TESTS": "1"})[0], False)

    def test_whole_suite_in_one_outer_vm(self):
        for i in range(3):
            self.write(f"suite/t{i}.hvt", "guest hello\nwait-exit poweroff\n")
        nested_log = os.path.join(self.work, "nested.log")
        env = dict(self.env, BHYVE_NESTED_TESTS="1", HVTEST_NESTED=os.path.join(FAKE, "nested"),
                   FAKE_NESTED_LOG=nested_log)
        env.pop("BHYVE_DIRECT")
        junit = os.path.join(self.work, "j.xml")
        rc, out, err = self.hvtest("-j", "2", "--junit", junit, "suite", env=env)
        lines = out.splitlines()
        self.assertEqual(lines[0], "hvtest: BHYVE_NESTED_TESTS=1: running the suite nested under QEMU "
                                   "(harness/nested), in one outer VM: 3 tests")
        self.assertEqual(lines[1], "hvtest: inside the outer VM (BHYVE_NESTED=1): 3 tests, -j 2")
        self.assertEqual((rc, lines[-1]), (0, "3 passed, 0 failed"), out + err)
        with open(nested_log) as f:
            calls = f.read().splitlines()
        self.assertEqual(len(calls), 1)
        # The work directory is under /tmp: hidden in the outer VM, so shared.
        self.assertIn(f"--share {os.path.realpath(self.work)}", calls[0])
        self.assertTrue(os.path.exists(junit))


    def test_share_dirs_go_into_the_outer_vm(self):
        # A share elsewhere under /tmp is hidden inside: hvtest shares it.
        other = tempfile.mkdtemp(prefix="hvtest-share-")
        self.addCleanup(shutil.rmtree, other, ignore_errors=True)
        self.write("suite/t.hvt", f"linux\nshare {other} ro as data\ncommand true\nguest-status 0\n")
        nested_log = os.path.join(self.work, "nested.log")
        env = dict(self.env, BHYVE_NESTED_TESTS="1", HVTEST_NESTED=os.path.join(FAKE, "nested"),
                   FAKE_NESTED_LOG=nested_log, FAKE_DEVICES=self.env["FAKE_DEVICES"] + " virtio-9p")
        env.pop("BHYVE_DIRECT")
        rc, out, err = self.hvtest("suite", env=env)
        self.assertEqual(rc, 0, out + err)
        with open(nested_log) as f:
            self.assertIn(f"--share {os.path.realpath(other)}", f.read())


    def test_named_files_go_into_the_outer_vm(self):
        # kernel, initrd and disk paths elsewhere under /tmp are hidden
        # inside: hvtest shares their directories (a disk's read-write).
        dirs = {}
        for what in ("kernel", "initrd", "disk"):
            dirs[what] = tempfile.mkdtemp(prefix=f"hvtest-{what}-")
            self.addCleanup(shutil.rmtree, dirs[what], ignore_errors=True)
        for what, name in (("kernel", "vmlinux"), ("initrd", "initramfs.cpio"), ("disk", "d.img")):
            with open(os.path.join(dirs[what], name), "wb") as f:
                f.write(b"\0" * 512)
        self.write("suite/t.hvt", f"kernel {dirs['kernel']}/vmlinux\n"
                   f"initrd {dirs['initrd']}/initramfs.cpio\ndisk {dirs['disk']}/d.img\n"
                   "expect 'userspace up'\n")
        nested_log = os.path.join(self.work, "nested.log")
        env = dict(self.env, BHYVE_NESTED_TESTS="1", HVTEST_NESTED=os.path.join(FAKE, "nested"),
                   FAKE_NESTED_LOG=nested_log)
        env.pop("BHYVE_DIRECT")
        self.hvtest("suite", env=env)
        with open(nested_log) as f:
            call = f.read()
        for d in dirs.values():
            self.assertIn(f"--share {os.path.realpath(d)} ", call)


class Kyua(FakeVM):
    def test_atf_list_and_run(self):
        d = os.path.join(self.work, "suite")
        self.write("suite/hello.hvt", "# The hello guest\nguest hello\ntimeout 30\nwait-exit poweroff\n")
        self.write("suite/sub/re-boot.hvt", "guest reset\nwait-exit poweroff\n")
        p = subprocess.run([HVTEST, "--atf", d, "-l"], capture_output=True, text=True, env=self.env)
        self.assertEqual(p.stdout, 'Content-Type: application/X-atf-tp; version="1"\n\n'
                                   "ident: hello\ndescr: The hello guest\ntimeout: 150\n\n"
                                   "ident: sub_re_boot\ndescr: re-boot.hvt\ntimeout: 240\n")
        res = os.path.join(self.work, "r")
        p = subprocess.run([HVTEST, "--atf", d, "-r", res, "-s", d, "sub_re_boot"], capture_output=True,
                           text=True, env=self.env, cwd=self.work)
        with open(res) as f:
            self.assertTrue(f.read().startswith("failed: the guest rebooted (exit 0) instead of powering off"))
        p = subprocess.run([HVTEST, "--atf", d, "-r" + res, "hello"], capture_output=True, text=True,
                           env=self.env, cwd=self.work)
        with open(res) as f:
            self.assertEqual(f.read(), "passed\n")
        self.assertIn("# verdict: passed", p.stdout)

    @unittest.skipUnless(shutil.which("kyua"), "kyua is not installed")
    def test_kyua_runs_a_generated_program(self):
        d = os.path.join(self.work, "suite")
        self.write("suite/hello.hvt", "guest hello\nwait-exit poweroff\n")
        self.write("suite/halt.hvt", "guest halt\nwait-exit poweroff\n")
        rc, out, _ = self.hvtest("--kyua", d)
        self.assertEqual(rc, 0)
        db = os.path.join(self.work, "k.db")
        subprocess.run(["kyua", "test", "-k", os.path.join(d, "Kyuafile"), "--results-file", db],
                       capture_output=True, text=True, env=self.env, cwd=self.work)
        rep = subprocess.run(["kyua", "report", "--results-file", db, "--results-filter=passed,failed"],
                             capture_output=True,
                             text=True).stdout
        self.assertIn("hvtest_test:hello  ->  passed", rep)
        self.assertIn("hvtest_test:halt  ->  failed: bhyve exited 2 (halted)", rep)
        junit = os.path.join(self.work, "k.xml")
        subprocess.run(["kyua", "report-junit", "--results-file", db, "--output", junit], check=True)
        self.assertEqual(len(ET.parse(junit).getroot().findall("testcase")), 2)


class WaitExit(unittest.TestCase):
    """process.wait_exit: the status as soon as the process is gone (bhyve
    closes its console first, then exits), None when it outlives the wait."""

    def test_exit_after_closing_stdout(self):
        from hvtest.process import wait_exit
        p = subprocess.Popen(["sh", "-c", "exec >&-; sleep 0.3; exit 3"], stdout=subprocess.PIPE)
        self.assertEqual(p.stdout.read(), b"")
        t0 = time.monotonic()
        self.assertEqual(wait_exit(p, 10), 3)
        self.assertLess(time.monotonic() - t0, 5)
        p.stdout.close()

    def test_still_running(self):
        from hvtest.process import wait_exit
        p = subprocess.Popen(["sleep", "10"])
        t0 = time.monotonic()
        self.assertIsNone(wait_exit(p, 0.2))
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)
        p.kill()
        self.assertEqual(wait_exit(p, 10), -9)
        self.assertEqual(wait_exit(p, 10), -9)  # reaped: asked again, same answer


class ConsoleText(unittest.TestCase):
    def test_control_sequences_are_dropped_across_chunks(self):
        from hvtest.console import Console
        c = Console()
        for chunk in (b"/ # \x1b", b"[6", b"n", b"ls\r\n\x1b[1;32mgreen\x1b[0m\n",
                      b"\x1b]0;title\x07x\xc3", b"\xa9\n"):
            c.feed(chunk)
        self.assertEqual(c.text, "/ # ls\ngreen\nx\u00e9\n")

    def test_a_lone_escape_is_not_held_forever(self):
        from hvtest.console import Console
        c = Console()
        c.feed(b"a\x1b")
        c.feed(b"", final=True)
        self.assertEqual(c.text, "a\x1b")


class Reports(unittest.TestCase):
    def result(self, verdict, flaky=False, test_id="a/b"):
        from hvtest.runner import Result
        return Result(test_id=test_id, path=test_id + ".hvt", verdict=verdict, flaky=flaky,
                      reason="" if verdict == "passed" else "why")

    def test_summary_line(self):
        rs = [self.result("passed"), self.result("failed"), self.result("failed", True),
              self.result("skipped")]
        self.assertEqual(report.summary_line(rs), "1 passed, 2 failed (1 flaky), 1 skipped")
        self.assertEqual(report.summary_line(rs[:1]), "1 passed, 0 failed")
        self.assertFalse(report.all_passed(rs))
        self.assertFalse(report.all_passed([self.result("skipped")]))
        self.assertTrue(report.all_passed(rs[:1]))

    def test_aggregate(self):
        ok, bad = self.result("passed"), self.result("failed")
        agg = suite.aggregate([ok, bad, ok])
        self.assertEqual((agg.verdict, agg.flaky, agg.runs), ("failed", True, ["passed", "failed", "passed"]))
        self.assertIn("flaky: 2 of 3 runs passed; run 2: why", agg.reason)
        agg = suite.aggregate([bad, bad])
        self.assertEqual((agg.verdict, agg.flaky), ("failed", False))
        agg = suite.aggregate([ok, ok])
        self.assertEqual((agg.verdict, agg.flaky), ("passed", False))

    def test_test_ids(self):
        self.assertEqual(suite.test_id("/x/y/z.hvt", "/x"), "y/z")
        self.assertEqual(suite.test_id("/elsewhere/z.hvt", "/x"), "elsewhere/z")
        self.assertEqual(report.split_id("harness/examples/hello"), ("harness.examples", "hello"))
        self.assertEqual(report.split_id("hello"), ("hvtest", "hello"))

    def test_xml_survives_control_characters(self):
        r = self.result("failed")
        r.reason = "bad \x1b[0m byte \x00"
        el = report.junit_element([r])
        ET.fromstring(ET.tostring(el))


if __name__ == "__main__":
    unittest.main()
