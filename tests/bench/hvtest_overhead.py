#!/usr/bin/python3
"""hvtest's overhead (issue 4): what the harness adds to a guest's own run.

Per test: tests/bench/poweroff.hvt (the hello guest prints a line and
powers off at once; the test only waits for the exit). hvtest runs it with
HVTEST_BIN pointing at timing stand-ins for bhyve, rawload and bhyvectl
(tests/bench/lifetime.c: each becomes the real tool, same process, and a
forked watcher logs its lifetime, spawn to exit, CLOCK_MONOTONIC). For each
run:
  overhead = the test's duration (result.json: from the test's start to
             the VM instance destroyed) - bhyve's lifetime
  harness  = overhead - rawload's and bhyvectl's lifetimes (hvtest's own
             Python work, process spawns and waits)
  - in one hvtest process (--repeat RUNS): the cost of a test in a suite;
  - in RUNS hvtest processes: the cost of `hvtest TEST` as a command
    (wall time of the process - bhyve's lifetime), Python's start included.
The stand-ins' own cost is shown by the same --repeat run on the real tools.

Suites: wall time of `hvtest -j 1` and `-j 2` over the tiny-guest examples
(harness/examples/*.hvt), and with --linux also the Linux examples
(harness/examples/linux, which need a KVM that runs Linux: nested here).

Runs where hvtest would run guests (its own rule, ci/kvm.sh): directly with
BHYVE_DIRECT=1 or a usable /dev/kvm, else everything inside one outer VM:
  BHYVE_DIRECT=1 tests/bench/hvtest_overhead.py
  tests/bench/hvtest_overhead.py --nested     (harness/nested --timeout)
--phases test,command,suite picks what to measure (nested runs can be split;
an outer VM sometimes wedges: harness/nested --timeout ends it). With
--hvtest PATH it measures another hvtest against this tree's build, e.g.
an older commit's, for a before and after:
  git archive COMMIT harness ci fixtures/guests | tar -x -C build/hvtest-before
  tests/bench/hvtest_overhead.py --hvtest build/hvtest-before/harness/hvtest
Prints a Markdown section for BENCHMARKS.md on stdout, progress on stderr.
"""

import argparse
import glob
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "harness", "lib"))
sys.dont_write_bytecode = True
from hvtest import host  # noqa: E402

HVTEST = os.path.join(ROOT, "harness", "hvtest")
BIN = os.path.join(ROOT, "build", "bin")
TEST = os.path.join("tests", "bench", "poweroff.hvt")
TOOLS = ("bhyve", "rawload", "bhyvectl", "grub-bhyve")


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def ms(seconds):
    return f"{seconds * 1000:.1f}"


def spread(values):
    """'median (min-max)' in ms."""
    return f"{ms(statistics.median(values))} ({ms(min(values))}-{ms(max(values))})"


def build_standins(work):
    """DIR with bhyve, rawload, bhyvectl, grub-bhyve -> the lifetime stand-in."""
    exe = os.path.join(work, "lifetime")
    # Static: its own exec has no dynamic loader to run, which nested (libc
    # read over 9p) cost tens of ms, all of it counted against hvtest.
    subprocess.run(["cc", "-static", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", exe,
                    os.path.join(ROOT, "tests", "bench", "lifetime.c")], check=True)
    d = os.path.join(work, "bin")
    os.makedirs(d)
    for t in TOOLS:
        if os.path.exists(os.path.join(BIN, t)):
            os.symlink(exe, os.path.join(d, t))
    return d


def read_log(path, want):
    """Lifetime records: [(name, start_s, end_s, status, last_arg)]. The
    stand-ins' watchers write theirs when the tool has exited, which may be
    just after hvtest did: wait (up to 5 s) for WANT of them."""
    deadline = time.monotonic() + 5
    while True:
        out = []
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    name, start, end, status, last = line.split(maxsplit=4)
                    out.append((name, int(start) / 1e9, int(end) / 1e9, int(status), last.strip()))
        if len(out) >= want or time.monotonic() > deadline:
            return out
        time.sleep(0.01)


def lifetimes(records, vm):
    """Seconds each tool ran for one VM instance (name -> sum)."""
    got = {}
    for name, start, end, _, last in records:
        if last in (vm, "--vm=" + vm):
            got[name] = got.get(name, 0.0) + end - start
    return got


STUCK = 900  # seconds: beyond any test's own timeout (the Linux examples': 300-600 s)


def hvtest(args, env, capture=True):
    """Run hvtest; -> (wall seconds, CompletedProcess). Fails loudly; a
    stuck run is shown (processes, hvtest's Python stacks) and stopped."""
    t0 = time.monotonic()
    proc = subprocess.Popen([env["BENCH_HVTEST"]] + args, env=dict(env, PYTHONFAULTHANDLER="1"), cwd=ROOT,
                            stdin=subprocess.DEVNULL, text=True,
                            stdout=subprocess.PIPE if capture else None,
                            stderr=subprocess.PIPE if capture else None)
    try:
        out, err = proc.communicate(timeout=STUCK)
    except subprocess.TimeoutExpired:
        ps = subprocess.run(["ps", "-eo", "pid,ppid,stat,wchan:24,pcpu,etime,args"],
                            capture_output=True, text=True).stdout
        proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        sys.exit(f"bench: hvtest {' '.join(args)} is still running after {STUCK} s:\n"
                 f"{ps}\n{out or ''}{err or ''}")
    p = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    wall = time.monotonic() - t0
    # A skip exits 1 too (the Linux examples' disk-reboot skips without
    # virtio-blk); only failures spoil a number.
    last = (p.stdout or "").strip().splitlines()[-1:] if capture else []
    skipped_only = p.returncode == 1 and last and ", 0 failed, " in last[0]
    if p.returncode != 0 and not skipped_only:
        sys.exit(f"bench: hvtest {' '.join(args)} exited {p.returncode}:\n"
                 f"{p.stdout or ''}{p.stderr or ''}")
    return wall, p


def run_results(results, test_id):
    """[(vm name, duration)] of each run-K of a --repeat run, in order."""
    out = []
    for d in sorted(glob.glob(os.path.join(results, test_id, "run-*")),
                    key=lambda d: int(d.rsplit("-", 1)[1])):
        with open(os.path.join(d, "result.json")) as f:
            r = json.load(f)
        with open(os.path.join(d, "transcript.txt")) as f:
            vm = next(ln.split()[-1] for ln in f if "# bhyve: " in ln)
        out.append((vm, r["duration"]))
    return out


def per_test(work, standins, runs, env):
    """One hvtest process, --repeat RUNS: a test's cost inside a suite."""
    log = os.path.join(work, "repeat.log")
    env = dict(env, HVTEST_BIN=standins, LIFETIME_BIN=BIN, LIFETIME_LOG=log)
    res = os.path.join(work, "repeat")
    wall, _ = hvtest(["--results", res, "--repeat", str(runs), TEST], env)
    say(f"per test: {runs} runs in {wall:.2f} s")
    runs_done = run_results(res, "tests/bench/poweroff")
    records = read_log(log, 3 * len(runs_done))  # rawload, bhyve, bhyvectl each
    rows = []
    for vm, duration in runs_done:
        life = lifetimes(records, vm)
        rows.append(dict(duration=duration, bhyve=life["bhyve"], rawload=life.get("rawload", 0.0),
                         bhyvectl=life.get("bhyvectl", 0.0)))
    probes = [r for r in records if r[4] == "help"]
    return rows, probes


def per_test_real(work, runs, env):
    """The same on the real tools: the stand-ins' cost is the difference."""
    res = os.path.join(work, "repeat-real")
    hvtest(["--results", res, "--repeat", str(runs), TEST], dict(env, HVTEST_BIN=BIN))
    return [d for _, d in run_results(res, "tests/bench/poweroff")]


def per_command(work, standins, runs, env):
    """RUNS hvtest processes of one test: the cost of the command."""
    rows = []
    for k in range(runs):
        log = os.path.join(work, f"cmd-{k}.log")
        e = dict(env, HVTEST_BIN=standins, LIFETIME_BIN=BIN, LIFETIME_LOG=log)
        wall, _ = hvtest(["--results", os.path.join(work, f"cmd-{k}"), TEST], e)
        bhyve = [r for r in read_log(log, 5) if r[0] == "bhyve" and r[4] != "help"]
        rows.append(dict(wall=wall, bhyve=bhyve[0][2] - bhyve[0][1]))
        say(f"per command run {k + 1}: {ms(wall)} ms, bhyve {ms(rows[-1]['bhyve'])} ms")
    return rows


def startup(work, runs, env):
    """hvtest --list TEST: Python's start, imports and parsing, no VM."""
    walls = []
    for k in range(runs):
        walls.append(hvtest(["--list", TEST], env)[0])
        say(f"hvtest --list run {k + 1}: {ms(walls[-1])} ms")
    return walls


def suite(files, jobs, runs, work, env):
    walls = []
    for k in range(runs):
        wall, p = hvtest(["-j", str(jobs), "--results", os.path.join(work, f"suite-j{jobs}-{k}")]
                         + files, dict(env, HVTEST_BIN=BIN))
        walls.append(wall)
        say(f"suite -j {jobs} run {k + 1}: {wall:.2f} s: {p.stdout.strip().splitlines()[-1]}")
    return walls


def where():
    if os.environ.get("BHYVE_NESTED") == "1":
        return "nested (inside harness/nested: QEMU TCG outer VM, kvm-amd)"
    nest, why = host.decide()
    return f"direct ({why})"


def section_per_test(w, rows, probes, real):
    w("")
    w("| per test, in one hvtest process (`hvtest --repeat N tests/bench/poweroff.hvt`) | ms |")
    w("|---|---|")
    w(f"| the test's duration (result.json) | {spread([r['duration'] for r in rows])} |")
    w(f"| bhyve's lifetime (spawn to exit) | {spread([r['bhyve'] for r in rows])} |")
    w(f"| rawload's lifetime | {spread([r['rawload'] for r in rows])} |")
    w(f"| bhyvectl --destroy's lifetime | {spread([r['bhyvectl'] for r in rows])} |")
    w(f"| **overhead**: duration - bhyve | **{spread([r['duration'] - r['bhyve'] for r in rows])}** |")
    w(f"| hvtest alone: duration - bhyve - rawload - bhyvectl "
      f"| {spread([r['duration'] - r['bhyve'] - r['rawload'] - r['bhyvectl'] for r in rows])} |")
    w(f"| the test's duration on the real tools (no stand-ins) | {spread(real)} |")
    if probes:
        span = max(p[2] for p in probes) - min(p[1] for p in probes)
        w(f"| once a run, in its first test: the {len(probes)} `bhyve -s help` / `-l help` probes, "
          f"first start to last exit | {ms(span)} |")


def report(args, rows, probes, real, cmd, start, suites):
    out = []
    w = out.append
    invocation = "tests/bench/hvtest_overhead.py " + " ".join(shlex.quote(a) for a in args.argv)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    w(f"Where: {where()}, {os.cpu_count()} CPUs, {os.uname().release}, load average at the end "
      f"{load}. "
      f"Command: `{invocation}`. Times in ms, median (min-max) of {args.runs} runs.")
    if rows:
        section_per_test(w, rows, probes, real)
    if cmd:
        w("")
        w("| per command (`hvtest tests/bench/poweroff.hvt`, one process each) | ms |")
        w("|---|---|")
        w(f"| wall time | {spread([r['wall'] for r in cmd])} |")
        w(f"| **overhead**: wall - bhyve's lifetime | **{spread([r['wall'] - r['bhyve'] for r in cmd])}** |")
        w(f"| `hvtest --list tests/bench/poweroff.hvt` (start, imports, parsing; no VM) "
          f"| {spread(start)} |")
    for paths, title, n, per_jobs in suites:
        w("")
        w(f"| suite: {title}, {n} tests | wall s, median (min-max) of {len(per_jobs[0][1])} |")
        w("|---|---|")
        for jobs, walls in per_jobs:
            cmd_text = f"harness/hvtest -j {jobs} {paths}"
            w(f"| `{cmd_text}` | {statistics.median(walls):.2f} ({min(walls):.2f}-{max(walls):.2f}) |")
    print("\n".join(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", "20")),
                   help="runs per per-test number (default 20, or $RUNS)")
    p.add_argument("--suite-runs", type=int, default=3, help="runs per suite number (default 3)")
    p.add_argument("--linux-runs", type=int, default=1,
                   help="runs per Linux suite number (default 1)")
    p.add_argument("--phases", default="test,command,suite",
                   help="what to measure: test (per test), command (per hvtest command), "
                        "suite (the tiny examples); default all three")
    p.add_argument("--hvtest", default=HVTEST, metavar="PATH",
                   help="the hvtest to measure (default: this tree's harness/hvtest)")
    p.add_argument("--linux", action="store_true",
                   help="also time harness/examples/linux (needs a KVM that runs Linux)")
    p.add_argument("--nested", action="store_true",
                   help="run inside one outer VM (harness/nested) even where /dev/kvm works")
    p.add_argument("--timeout", type=int, default=int(os.environ.get("BENCH_NESTED_TIMEOUT", "3600")),
                   help="harness/nested --timeout, seconds (default 3600)")
    argv = sys.argv[1:]
    args = p.parse_args(argv)
    args.argv = argv
    args.phases = set(args.phases.split(","))
    if os.environ.get("BHYVE_NESTED") != "1":
        nest, why = host.decide()
        if args.nested or nest:
            say(f"running nested under QEMU (harness/nested): {why if nest else '--nested'}")
            inner = [a for a in argv if a != "--nested"]
            env = dict(os.environ)
            if args.linux and not env.get("HVTEST_FIXTURE_LINUX"):
                # Built here, as hvtest does before nesting (inside, HOME is
                # read-only); HVTEST_* passes through.
                out = subprocess.run([os.path.join(ROOT, "fixtures", "linux", "build.sh")],
                                     check=True, capture_output=True, text=True).stdout
                env["HVTEST_FIXTURE_LINUX"] = out.split()[-1]
            cmd = [host.NESTED, "--timeout", str(args.timeout), "--",
                   os.path.abspath(__file__)] + inner
            return subprocess.call(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
    for t in ("bhyve", "rawload", "bhyvectl"):
        if not os.access(os.path.join(BIN, t), os.X_OK):
            sys.exit(f"bench: {os.path.join(BIN, t)} is missing: run make")
    # --hvtest: another hvtest gets this tree's build through HVTEST_BIN/GUESTS.
    env = dict(os.environ, HVTEST_LIVE="0", HVTEST_GUESTS=os.path.join(ROOT, "build", "guests"),
               BENCH_HVTEST=os.path.abspath(args.hvtest))
    env.pop("HVTEST_RESULTS", None)
    # As in a default shell: Python may cache hvtest's compiled modules.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    work = tempfile.mkdtemp(prefix="hvtest-bench-")
    try:
        standins = build_standins(work)
        rows = probes = real = cmd = start = None
        if "test" in args.phases:
            say(f"per test: --repeat {args.runs}")
            rows, probes = per_test(work, standins, args.runs, env)
            real = per_test_real(work, args.runs, env)
        if "command" in args.phases:
            say(f"per command: {args.runs} hvtest processes")
            cmd = per_command(work, standins, args.runs, env)
            start = startup(work, args.runs, env)
        suites = []
        if "suite" in args.phases:
            tiny = sorted(os.path.relpath(f, ROOT)
                          for f in glob.glob(os.path.join(ROOT, "harness", "examples", "*.hvt")))
            suites.append(("harness/examples/*.hvt", "the tiny-guest examples", len(tiny),
                           [(j, suite(tiny, j, args.suite_runs, work, env)) for j in (1, 2)]))
        if args.linux:
            linux = ["harness/examples/linux"]
            n = len(glob.glob(os.path.join(ROOT, "harness", "examples", "linux", "*.hvt")))
            suites.append(("harness/examples/linux", "the Linux-guest examples", n,
                           [(j, suite(linux, j, args.linux_runs, work, env)) for j in (1, 2)]))
        report(args, rows, probes, real, cmd, start, suites)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
