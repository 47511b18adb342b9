"""hvtest as an ATF test program, so kyua runs a directory of test files.

`hvtest --kyua DIR` writes DIR/Kyuafile and DIR/hvtest_test, a two-line
program that calls `hvtest --atf DIR`. kyua then lists the cases (-l: one
per *.hvt file under DIR, with its description and timeout) and runs each
(`hvtest_test -r RESULTFILE CASE`), which writes "passed", "failed: REASON"
or "skipped: REASON" as the ATF interface wants; the transcript goes to
stdout, where `kyua report --verbose` shows it.
"""

import os
import pwd
import re
import subprocess
import sys

from . import host
from .runner import Context, run_test
from .suite import EXTENSION, parse_error_result, Entry
from .testfile import ParseError, parse_file

TIMEOUT_MARGIN = 120  # seconds kyua allows beyond the test's own timeout

WRAPPER = """#!/bin/sh
# ATF test program written by `harness/hvtest --kyua`: each *.hvt file in
# this directory is a test case (docs/hvtest.md).
dir=$(cd "$(dirname "$0")" && pwd -P)
exec "$dir/{rel}" --atf "$dir" "$@"
"""

KYUAFILE = """-- Written by `harness/hvtest --kyua`: each *.hvt file here is a test case
-- of hvtest_test, hvtest acting as an ATF test program (docs/hvtest.md).
syntax(2)
test_suite("bhyve")
atf_test_program{{name="hvtest_test"}}
"""


def write_kyua(directory):
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
        raise SystemExit(f"hvtest: --kyua {directory}: not a directory")
    rel = os.path.relpath(host.HVTEST, directory)
    wrapper = os.path.join(directory, "hvtest_test")
    with open(wrapper, "w") as f:
        f.write(WRAPPER.format(rel=rel))
    os.chmod(wrapper, 0o755)
    kyuafile = os.path.join(directory, "Kyuafile")
    with open(kyuafile, "w") as f:
        f.write(KYUAFILE.format())
    return [kyuafile, wrapper]


def ident(relpath):
    name = relpath[:-len(EXTENSION)] if relpath.endswith(EXTENSION) else relpath
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def cases(directory):
    """{ident: path} for every *.hvt under directory."""
    out = {}
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        for n in sorted(names):
            if n.endswith(EXTENSION):
                path = os.path.join(root, n)
                out[ident(os.path.relpath(path, directory))] = path
    return out


def scale():
    try:
        return float(os.environ.get("HVTEST_TIMEOUT_SCALE", "1") or 1)
    except ValueError:
        return 1.0


def list_cases(directory, out):
    out.write('Content-Type: application/X-atf-tp; version="1"\n')
    for name, path in cases(directory).items():
        try:
            spec = parse_file(path)
            descr = spec.description or os.path.basename(path)
            timeout = int(spec.timeout * scale()) + TIMEOUT_MARGIN
        except ParseError as e:
            descr, timeout = f"bad test file: {e.first()}", TIMEOUT_MARGIN
        out.write(f"\nident: {name}\ndescr: {descr}\ntimeout: {timeout}\n")
    return 0


def parse_args(argv):
    opts = {"r": None, "s": None, "v": [], "l": False}
    rest = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-l":
            opts["l"] = True
        elif a[:2] in ("-r", "-s", "-v"):
            value = a[2:] if len(a) > 2 else (argv[i + 1] if i + 1 < len(argv) else "")
            if len(a) == 2:
                i += 1
            if a[1] == "v":
                opts["v"].append(value)
            else:
                opts[a[1]] = value
        else:
            rest.append(a)
        i += 1
    return opts, rest


def write_result(path, text):
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


def real_home_cache(env):
    """kyua sets HOME to each case's work directory: keep the kernel and
    fixture caches in the real home (as tests/host/nested_test.sh does)."""
    if not env.get("BHYVE_CACHE"):
        try:
            home = pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:
            return
        env["BHYVE_CACHE"] = os.path.join(home, ".cache", "bhyve-linux")


def main(argv):
    if not argv:
        print("usage: hvtest --atf DIR [-l | [-r FILE] [-s DIR] [-v VAR=VALUE]... CASE]", file=sys.stderr)
        return 2
    directory, (opts, rest) = argv[0], parse_args(argv[1:])
    if opts["l"]:
        try:
            return list_cases(directory, sys.stdout)
        except BrokenPipeError:
            return 1
    if len(rest) != 1:
        print("hvtest --atf: give one test case", file=sys.stderr)
        return 2
    name, _, part = rest[0].partition(":")
    if part == "cleanup":
        return 0
    found = cases(directory)
    if name not in found:
        write_result(opts["r"], f"broken: no test case {name} in {directory}")
        return 1
    real_home_cache(os.environ)
    nest, why = host.decide()
    if nest:
        return run_nested_case(directory, name, opts["r"], why, found[name])
    return run_case(found[name], name, opts["r"])


def run_case(path, name, result_file):
    results = os.path.abspath(os.environ.get("HVTEST_RESULTS") or "hvtest-results")
    ctx = Context(results=results, scale=scale(), own_groups=False)
    try:
        spec = parse_file(path)
    except ParseError as e:
        r = parse_error_result(Entry(name, path, error=e), results)
    else:
        r = run_test(spec, ctx, name, os.path.join(results, name))
        try:
            with open(os.path.join(r.result_dir, "transcript.txt")) as f:
                sys.stdout.write(f.read())
        except OSError:
            pass
    if r.verdict == "passed":
        write_result(result_file, "passed")
        return 0
    reason = r.reason.replace("\n", " ")
    print(f"{r.verdict}: {reason}", file=sys.stderr)
    for line in r.details + r.tail:
        print(f"  {line}", file=sys.stderr)
    write_result(result_file, f"{r.verdict}: {reason}")
    return 0 if r.verdict == "skipped" else 1


def share_dirs(path):
    """The outer VM's --share directories for a test file's `share DIR`s
    that it would hide or make read-only."""
    try:
        spec = parse_file(path)
    except ParseError:
        return []
    here, out = os.path.dirname(os.path.abspath(path)), []
    for sh in spec.shares:
        d = None if sh.results else os.path.normpath(os.path.join(here, sh.path))
        if d and os.path.isdir(d) and (host.hidden_inside(d) or
                                       not (sh.ro or host.writable_inside(d))):
            out.append(d)
    return out


def run_nested_case(directory, name, result_file, why, path):
    """One case, nested: slow (an outer VM per case). `make check` avoids
    this by running kyua itself inside one outer VM."""
    print(f"hvtest: {why}: running this case nested under QEMU (harness/nested)", file=sys.stderr)
    work = os.getcwd()
    inner = os.path.join(work, "nested.result")
    cmd = [host.NESTED, "--share", work]
    if host.hidden_inside(directory):
        cmd += ["--share", os.path.abspath(directory)]
    for d in share_dirs(path):
        cmd += ["--share", d]
    cmd += ["--", sys.executable, host.HVTEST, "--atf", os.path.abspath(directory), "-r", inner, name]
    status = subprocess.call(cmd, stdin=subprocess.DEVNULL)
    try:
        with open(inner) as f:
            text = f.read().strip()
    except OSError:
        text = f"failed: harness/nested ended with status {status} and no result"
    write_result(result_file, text)
    return 0 if text.startswith(("passed", "skipped")) else 1
