"""Milestones (docs/hvtest.md, "Milestones"): named moments of each boot,
timed from bhyve's start. A guest reports one through bhyve's milestone
device, whose log has exact times, or on its console."""

import os
import re

# Console markers: the same names the milestone port carries, for guests
# (and kernels) that cannot write to it.
BUILTIN_MARKERS = (
    ("kernel started", re.compile(r"^(?:\[\s*\d+\.\d+\]\s?)?Linux version \S+")),
    ("userspace up", re.compile(r"userspace up")),
)
MARKER_LINE = re.compile(r"^hvtest-milestone: (.+?)\s*$")


class Milestones:
    """One test's milestones, recorded in RECORDS (the result's list: dicts
    boot, name, t, source) as the console and the device's log report them."""

    def __init__(self, records, markers, tr):
        self.records = records
        self.markers = BUILTIN_MARKERS + tuple(markers)  # and the test file's
        self.tr = tr
        self.port_log = None  # the milestone device's log, if bhyve has one
        self.port_pos = 0
        self.boot = 0
        self.boot_t0 = 0.0

    def new_boot(self, boot, t0):
        """Boot number BOOT's bhyve started at T0: the log's records from
        here on are its."""
        self.boot, self.boot_t0 = boot, t0
        if self.port_log:
            self.port_pos = os.path.getsize(self.port_log) if os.path.exists(self.port_log) else 0

    def console_line(self, line, now):
        for name, pattern in self.markers:
            if pattern.search(line):
                self.record(name, now, "console")
        m = MARKER_LINE.match(line)
        if m:
            self.record(m.group(1), now, "console")

    def poll(self):
        """The milestone device's records: 'SECONDS TEXT' lines, SECONDS
        since bhyve started."""
        if not self.port_log:
            return
        try:
            with open(self.port_log, "rb") as f:
                f.seek(self.port_pos)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1
        self.port_pos += end
        for raw in data[:end].decode("utf-8", "replace").splitlines():
            t, _, name = raw.partition(" ")
            try:
                at = float(t)
            except ValueError:
                continue
            if name:
                self.record(name.strip(), self.boot_t0 + at, "port")

    def record(self, name, t, source):
        rel = t - self.boot_t0
        m = self.reached(name)
        if m is None:
            self.records.append({"boot": self.boot, "name": name, "t": round(rel, 6), "source": source})
        elif source == "port" and m["source"] != "port":
            # The first report counts, but the port's time is exact: it
            # replaces a console line's (which lags by the console's
            # latency and by when hvtest read it).
            m.update(t=round(rel, 6), source=source)
        else:
            return
        self.tr.event(f"milestone: {name} at {rel:.3f} s ({source})")

    def reached(self, name):
        """This boot's record of milestone NAME, or None."""
        for m in self.records:
            if m["boot"] == self.boot and m["name"] == name:
                return m
        return None
