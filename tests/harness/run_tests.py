#!/usr/bin/python3
"""Run hvtest's own unit tests (tests/harness/test_*.py: the parser, and the
runner against a stand-in VM, no KVM needed) and print TAP, one line per
test: "ok N - name" or "not ok N - name", then the failures' tracebacks as
TAP comments. Exit status 0 only when every test passed. For make check:

    python3 tests/harness/run_tests.py        # or: -v for timings
"""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep the tree clean


class TapResult(unittest.TestResult):
    def __init__(self, verbose):
        super().__init__()
        self.n = 0
        self.verbose = verbose
        self.notes = []

    def startTest(self, test):
        super().startTest(test)
        self.t0 = time.monotonic()
        self.bad = None

    def _bad(self, test, err, what):
        self.bad = what
        self.notes.append((test, self._exc_info_to_string(err, test)))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._bad(test, err, "failed")

    def addError(self, test, err):
        super().addError(test, err)
        self._bad(test, err, "error")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._bad(subtest, err, "failed")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.bad = f"# SKIP {reason}"

    def stopTest(self, test):
        super().stopTest(test)
        self.n += 1
        name = test.id().replace("__main__.", "")
        took = f" ({time.monotonic() - self.t0:.2f}s)" if self.verbose else ""
        if self.bad is None:
            print(f"ok {self.n} - {name}{took}")
        elif self.bad.startswith("# SKIP"):
            print(f"ok {self.n} - {name} {self.bad}")
        else:
            print(f"not ok {self.n} - {name}{took}")
        sys.stdout.flush()


def main():
    verbose = "-v" in sys.argv[1:]
    suite = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    print("TAP version 13")
    print(f"1..{suite.countTestCases()}")
    result = TapResult(verbose)
    suite.run(result)
    for test, text in result.notes:
        print(f"# {test.id()}")
        for line in text.rstrip().splitlines():
            print(f"#   {line}")
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
