"""How a test ends early: every part of a test run raises an Outcome, and
runner.TestRun turns it into the test's verdict."""


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
