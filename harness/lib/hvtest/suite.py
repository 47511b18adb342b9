"""Suites: find test files, shard them, run them N at a time, show progress."""

import dataclasses
import json
import os
import queue
import re
import sys
import threading
import time

from . import report
from .runner import Result, run_test
from .testfile import ParseError, parse_file

EXTENSION = ".hvt"


class UsageError(Exception):
    pass


@dataclasses.dataclass
class Entry:
    test_id: str
    path: str
    spec: object = None  # a TestSpec, or None when error is set
    error: ParseError = None


def collect(paths):
    """Files as given and *.hvt files under directories; no duplicates."""
    files, seen = [], set()
    for p in paths:
        if os.path.isdir(p):
            found = []
            for root, dirs, names in os.walk(p):
                dirs.sort()
                found += [os.path.join(root, n) for n in sorted(names) if n.endswith(EXTENSION)]
            if not found:
                raise UsageError(f"no {EXTENSION} files under {p}")
        elif os.path.isfile(p):
            found = [p]
        else:
            raise UsageError(f"{p}: no such file or directory")
        for f in found:
            real = os.path.realpath(f)
            if real not in seen:
                seen.add(real)
                files.append(f)
    return files


def test_id(path, cwd=None):
    """The path relative to the current directory (absolute when outside
    it), without .hvt: names results directories and JUnit test cases."""
    cwd = cwd or os.getcwd()
    full = os.path.abspath(path)
    rel = os.path.relpath(full, cwd)
    name = full.lstrip("/") if rel.startswith("..") else rel
    if name.endswith(EXTENSION):
        name = name[:-len(EXTENSION)]
    return re.sub(r"[^\w./+-]", "_", name)


def load(paths):
    entries = []
    for f in collect(paths):
        e = Entry(test_id(f), f)
        try:
            e.spec = parse_file(f)
        except ParseError as err:
            e.error = err
        entries.append(e)
    entries.sort(key=lambda e: e.test_id)
    return entries


def parse_shard(text):
    m = re.fullmatch(r"(\d+)/(\d+)", text or "")
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise UsageError(f"--shard wants K/N with 1 <= K <= N, not '{text}'")
    return int(m.group(1)), int(m.group(2))


def shard(entries, k, n):
    """Shard K of N: every Nth test of the list sorted by id, from the Kth.
    The same list and N always give the same split, on any machine."""
    ordered = sorted(entries, key=lambda e: e.test_id)
    return [e for i, e in enumerate(ordered) if i % n == k - 1]


def parse_error_result(entry, results_root):
    return Result(test_id=entry.test_id, path=entry.path, verdict="failed",
                  reason=f"bad test file: {entry.error.first()}",
                  details=entry.error.format().splitlines(),
                  result_dir=os.path.join(results_root, entry.test_id))


def aggregate(runs):
    """--repeat: one result from several runs of a test; flaky when the
    verdicts differ."""
    verdicts = [r.verdict for r in runs]
    if len(runs) == 1:
        return runs[0]
    failed = [r for r in runs if r.verdict == "failed"]
    base = dataclasses.replace(failed[0] if failed else runs[-1])
    base.runs = verdicts
    base.duration = sum(r.duration for r in runs)
    base.result_dir = os.path.dirname(runs[0].result_dir)
    if len(set(verdicts)) > 1:
        k = runs.index(failed[0]) + 1 if failed else 1
        base.verdict, base.flaky = "failed", True
        base.reason = (f"flaky: {verdicts.count('passed')} of {len(runs)} runs passed; "
                       f"run {k}: {failed[0].reason if failed else runs[0].reason}")
        base.result_dir = runs[k - 1].result_dir
    return base


class Progress:
    """One line per finished test with done/total, passed, failed and the
    elapsed time; on a terminal, also a live status line on stderr."""

    def __init__(self, total, out=sys.stdout, err=sys.stderr, verbose=False):
        self.total, self.out, self.err, self.verbose = total, out, err, verbose
        self.done, self.passed, self.failed, self.skipped = 0, 0, 0, 0
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.running = {}
        # Inside the outer VM stderr is a serial tty whatever the host has:
        # the outer hvtest says in HVTEST_LIVE whether its own is a terminal.
        self.live = err.isatty() and os.environ.get("HVTEST_LIVE", "1") != "0"
        self.stop = threading.Event()
        self.ticker = None
        if self.live:
            self.ticker = threading.Thread(target=self.tick, daemon=True)
            self.ticker.start()

    def status(self):
        return (f"{self.done}/{self.total}, {self.passed} passed, {self.failed} failed, "
                f"{time.monotonic() - self.t0:.1f}s")

    def tick(self):
        while not self.stop.wait(0.5):
            with self.lock:
                names = ", ".join(sorted(self.running))
                self.err.write(f"\r\x1b[K[{self.status()}] running: {names}"[:200])
                self.err.flush()

    def started(self, test_id):
        with self.lock:
            self.running[test_id] = time.monotonic()

    def finished(self, r):
        with self.lock:
            self.running.pop(r.test_id, None)
            self.done += 1
            if r.verdict == "passed":
                self.passed += 1
            elif r.verdict == "failed":
                self.failed += 1
            else:
                self.skipped += 1
            if self.live:
                self.err.write("\r\x1b[K")
                self.err.flush()
            word = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[r.verdict]
            if r.flaky:
                word = "FLAKY"
            line = f"[{self.status()}] {word} {r.test_id} ({r.duration:.2f}s)"
            if r.milestones:
                line += f" [{report.milestone_text(r)}]"
            if r.reason:
                line += f": {r.reason}"
            self.out.write(line + "\n")
            if r.verdict == "failed" or self.verbose:
                for d in r.details[:40]:
                    self.out.write(f"    {d}\n")
                if r.tail:
                    self.out.write("    last lines:\n")
                    for t in r.tail:
                        self.out.write(f"      {t}\n")
                if os.path.exists(os.path.join(r.result_dir, "transcript.txt")):
                    self.out.write(f"    transcript: {os.path.join(r.result_dir, 'transcript.txt')}\n")
            self.out.flush()

    def close(self):
        self.stop.set()
        if self.live:
            with self.lock:
                self.err.write("\r\x1b[K")
                self.err.flush()


def run_entries(entries, ctx, jobs=1, repeat=1, progress=None):
    """Run every entry (repeat times each), jobs at a time; results in the
    order of entries."""
    root = ctx.results

    def one(entry):
        if entry.error is not None:
            return parse_error_result(entry, root)
        if progress:
            progress.started(entry.test_id)
        runs = []
        for k in range(1, repeat + 1):
            if ctx.abort.is_set():
                break
            d = os.path.join(root, entry.test_id)
            if repeat > 1:
                d = os.path.join(d, f"run-{k}")
            runs.append(run_test(entry.spec, ctx, entry.test_id, d))
        if not runs:
            return Result(entry.test_id, entry.path, "failed", "interrupted before it ran")
        return aggregate(runs)

    # N worker threads take entries in order; this thread reports each
    # result as it comes. (Plain threads: concurrent.futures, with the
    # logging it imports, cost every hvtest start about 3 ms.)
    todo, done = queue.SimpleQueue(), queue.SimpleQueue()
    for i in range(len(entries)):
        todo.put(i)

    def worker():
        while True:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            try:
                done.put((i, one(entries[i]), None))
            except BaseException as e:  # a harness bug: raised below, as fut.result() did
                done.put((i, None, e))

    workers = [threading.Thread(target=worker, daemon=True)
               for _ in range(min(max(1, jobs), len(entries)))]
    for w in workers:
        w.start()
    results, error = [None] * len(entries), None
    for _ in entries:
        i, r, e = done.get()
        if e is not None:
            error = error or e
            continue
        results[i] = r
        if progress:
            progress.finished(r)
    for w in workers:
        w.join()
    if error is not None:
        raise error
    return results


def write_results(results, root):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "results.json"), "w") as f:
        json.dump([r.to_json() for r in results], f, indent=1)
    with open(os.path.join(root, "summary.txt"), "w") as f:
        for r in results:
            word = "FLAKY" if r.flaky else r.verdict.upper()
            f.write(f"{word} {r.test_id} {r.duration:.2f}s"
                    + (f" [{report.milestone_text(r)}]" if r.milestones else "")
                    + (f": {r.reason}" if r.reason else "") + "\n")
        f.write(report.summary_line(results) + "\n")
