"""hvtest's command line (docs/hvtest.md)."""

import argparse
import os
import re
import signal
import subprocess
import sys

from . import atf, host, report, suite
from .outcome import Outcome
from .runner import Context

USAGE = """\
hvtest [-j N] [--results DIR] [--junit FILE] [--tap FILE] [--shard K/N]
              [--repeat N] [--timeout-scale F] [--bin DIR] [--guests DIR]
              [--console com1|virtio] [--list | --check] [-v] PATH...
       hvtest --merge-junit OUT FILE...
       hvtest --kyua DIR
       hvtest --atf DIR [-l | [-r FILE] [-s DIR] [-v VAR=VALUE]... CASE]"""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NESTED, EXIT_INTERRUPTED = 0, 1, 2, 125, 130
EXIT_NESTED_FROZE = 123  # harness/nested stopped a frozen outer VM


def parser():
    p = argparse.ArgumentParser(
        prog="hvtest", usage=USAGE,
        description="Boot guests headless in bhyve, drive their console from test files "
                    "(*.hvt), give verdicts. Nests the whole suite under QEMU "
                    "(harness/nested) when this host has no usable /dev/kvm.",
        epilog="Exit status: 0 when every test passed; 1 when any failed or was skipped; "
               "2 for bad usage; 125 when the outer VM ended without a status; 130 when "
               "interrupted. See docs/hvtest.md.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="test files and directories of *.hvt files")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N", help="run N tests at a time")
    p.add_argument("--results", metavar="DIR", help="results directory (default: build/hvtest-results "
                   "in the repository, or $HVTEST_RESULTS)")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    p.add_argument("--tap", metavar="FILE", help="write a TAP report")
    p.add_argument("--shard", metavar="K/N", help="run only shard K of N (deterministic)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run each test N times; differing verdicts make it flaky")
    p.add_argument("--timeout-scale", type=float, metavar="F",
                   default=float(os.environ.get("HVTEST_TIMEOUT_SCALE", "1") or 1),
                   help="multiply every timeout by F (default $HVTEST_TIMEOUT_SCALE or 1)")
    p.add_argument("--bin", metavar="DIR", help="where bhyve, bhyvectl, rawload, grub-bhyve are "
                   "(default: build/bin, or $HVTEST_BIN)")
    p.add_argument("--guests", metavar="DIR", help="where tiny guests are (default: build/guests, "
                   "or $HVTEST_GUESTS)")
    p.add_argument("--console", choices=("com1", "virtio"),
                   help="every Linux guest's console: com1 or virtio (hvc0 on virtio-console); "
                   "default: each test's own `console`, or $HVTEST_CONSOLE")
    p.add_argument("--list", action="store_true", help="list the tests (after --shard) and exit")
    p.add_argument("--check", action="store_true", help="only parse the files; report errors")
    p.add_argument("-v", "--verbose", action="store_true", help="show the last lines of passing tests too")
    p.add_argument("--merge-junit", nargs="+", metavar="FILE", help=argparse.SUPPRESS)
    p.add_argument("--kyua", metavar="DIR", help=argparse.SUPPRESS)
    return p


def main(argv):
    if argv[:1] == ["--atf"]:
        return atf.main(argv[1:])
    args = parser().parse_args(argv)
    try:
        return run(args, argv)
    except suite.UsageError as e:
        print(f"hvtest: {e}", file=sys.stderr)
        return EXIT_USAGE


def run(args, argv):
    if args.merge_junit:
        if len(args.merge_junit) < 2:
            raise suite.UsageError("--merge-junit OUT FILE...: give the output and at least one input")
        n, failed, skipped = report.merge_junit(args.merge_junit[1:], args.merge_junit[0])
        print(f"hvtest: merged {len(args.merge_junit) - 1} files into {args.merge_junit[0]}: "
              f"{n} tests, {failed} failed, {skipped} skipped")
        return EXIT_OK
    if args.kyua:
        for path in atf.write_kyua(args.kyua):
            print(f"hvtest: wrote {path}")
        return EXIT_OK
    if not args.paths:
        raise suite.UsageError("no test files given (hvtest PATH...; see hvtest --help)")
    if args.jobs < 1 or args.repeat < 1 or args.timeout_scale <= 0:
        raise suite.UsageError("-j, --repeat and --timeout-scale must be positive")
    entries = suite.load(args.paths)
    total_files = len(entries)
    if args.shard:
        k, n = suite.parse_shard(args.shard)
        entries = suite.shard(entries, k, n)
    if args.check:
        bad = [e for e in entries if e.error]
        for e in bad:
            print(e.error.format())
        print(f"hvtest: {len(entries) - len(bad)} good, {len(bad)} bad test files")
        return EXIT_FAILED if bad else EXIT_OK
    if args.list:
        for e in entries:
            print(e.test_id)
        return EXIT_OK
    results_root = os.path.abspath(args.results or os.environ.get("HVTEST_RESULTS")
                                   or os.path.join(host.REPO, "build", "hvtest-results"))
    ctx = Context(bin_dir=args.bin and os.path.abspath(args.bin),
                  guests_dir=args.guests and os.path.abspath(args.guests),
                  results=results_root, scale=args.timeout_scale, console=args.console)
    nest, why = host.decide()
    shard_note = f" (shard {args.shard} of {total_files})" if args.shard else ""
    if nest:
        print(f"hvtest: {why}: running the suite nested under QEMU (harness/nested), "
              f"in one outer VM: {len(entries)} tests{shard_note}", flush=True)
        return run_nested(args, argv, entries, ctx)
    where = why if why.startswith("inside") else f"running on {why}"
    print(f"hvtest: {where}: {len(entries)} tests{shard_note}, -j {args.jobs}", flush=True)
    if not entries:
        print(report.summary_line([]) + (" (this shard is empty)" if args.shard else ""))
        return EXIT_OK
    return run_here(args, entries, ctx)


def run_here(args, entries, ctx):
    os.makedirs(ctx.results, exist_ok=True)
    progress = suite.Progress(len(entries), verbose=args.verbose)
    interrupted = []

    def on_signal(signum, frame):
        interrupted.append(signum)
        ctx.kill_all()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        results = suite.run_entries(entries, ctx, args.jobs, args.repeat, progress)
    finally:
        progress.close()
        for s, h in old.items():
            signal.signal(s, h)
    suite.write_results(results, ctx.results)
    if args.junit:
        report.write_junit(results, args.junit)
    if args.tap:
        report.write_tap(results, args.tap)
    print(report.summary_line(results), flush=True)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if report.all_passed(results) else EXIT_FAILED


def run_nested(args, argv, entries, ctx):
    """Run this same command inside one outer VM. Fixtures are built here,
    on the host (inside, HOME is read-only), and handed in by path."""
    env = dict(os.environ)
    read_dirs = [os.getcwd(), ctx.bin_dir, ctx.guests_dir]
    rw_shares = []  # `share DIR` (read-write): writable inside only if shared
    for e in entries:
        here = os.path.dirname(os.path.abspath(e.path))
        read_dirs.append(here)
        spec = e.spec
        for sh in (spec.shares if spec else []):
            if not sh.results:
                path = os.path.normpath(os.path.join(here, sh.path))
                (read_dirs if sh.ro else rw_shares).append(path)
        # Files the test names: the outer VM sees them only through a
        # share of their directory (a disk's read-write: the guest writes it).
        for name in (spec.kernel, spec.initrd, spec.source) if spec else ():
            if name:
                read_dirs.append(os.path.dirname(os.path.join(here, name)))
        for disk in (spec.disks if spec else []):
            if disk.path:
                rw_shares.append(os.path.dirname(os.path.join(here, disk.path)))
        if spec and spec.vm_kind == "fixture":
            try:
                fx = ctx.fixture(spec.fixture)
            except Outcome:
                continue  # the inner run reports it
            env["HVTEST_FIXTURE_" + re.sub(r"\W", "_", spec.fixture).upper()] = fx.directory
            read_dirs.append(fx.directory)
    write_dirs = [ctx.results] + [os.path.dirname(os.path.abspath(f)) for f in (args.junit, args.tap) if f]
    for d in write_dirs:
        os.makedirs(d, exist_ok=True)
    shares = [d for d in write_dirs if not host.writable_inside(d)]
    shares += [d for d in rw_shares if os.path.isdir(d) and not host.writable_inside(d)]
    shares += [d for d in read_dirs if os.path.isdir(d) and host.hidden_inside(d)]
    cmd = [host.NESTED]
    for d in host.minimal_shares(shares):
        cmd += ["--share", d]
    # One outer vCPU, whatever -j says: with more, QEMU 7.2's TCG now and
    # then breaks a nested guest or the outer kernel (docs/nested.md, "One
    # outer vCPU"); -j N's guests then share it.
    cmd += ["--cpus", "1", "--", sys.executable, host.HVTEST] + argv + ["--results", ctx.results]
    env["HVTEST_NESTED_CHILD"] = "1"
    env["HVTEST_LIVE"] = "1" if sys.stderr.isatty() else "0"
    try:
        status = subprocess.call(cmd, env=env, stdin=subprocess.DEVNULL)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if status == EXIT_NESTED:
        print("hvtest: the outer VM ended without the suite's exit status (see harness/nested's "
              "message above)", file=sys.stderr)
    return status
