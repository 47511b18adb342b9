"""The console: what the guest wrote, as a matchable text and a transcript.

Console keeps the decoded output (UTF-8, bad bytes replaced, every CR
dropped so patterns never see CRLF) and the expect cursor. Transcript
writes one line per console line with the time its first byte arrived,
interleaved with the harness's own events and what it typed:

    [    0.012] | hello from guest        console line
    [    0.013] > "quit\\n"                 sent to the guest
    [    0.020] # bhyve exited 1 (powered off)   harness event

Reader reads the VM's console into both while a step waits for something
(pump), and watches every line: a kernel panic or forbidden output fails
the test, milestone markers go to the milestones.
"""

import codecs
import collections
import re

from .outcome import fail

# Lines a guest kernel prints when it panics: Linux, FreeBSD.
PANIC = re.compile(r"Kernel panic - not syncing|^panic: ", re.MULTILINE)

PRINTK_TIME = re.compile(r"^\[\s*\d+\.\d+\]\s?")  # "[   10.652025] "
GRACE = 2.0  # seconds of console kept after a panic or forbidden line

MAX_TEXT = 16 << 20  # keep at most this much console text in memory
SEARCH_BACK = 4096  # a pattern may start this far before new text


def visible(line):
    """A console line for the transcript: C0 controls shown as \\xNN."""
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", lambda m: "\\x%02x" % ord(m.group()), line)


class Transcript:
    def __init__(self, path, raw_path, t0, clock):
        self.f = open(path, "w", encoding="utf-8", errors="replace", buffering=1)
        self.raw = open(raw_path, "wb", buffering=0)
        self.t0 = t0
        self.clock = clock
        self.partial = ""
        self.partial_t = None
        self.tail = collections.deque(maxlen=400)

    def _write(self, t, mark, text):
        line = f"[{t - self.t0:10.3f}] {mark} {text}"
        self.tail.append(line)
        self.f.write(line + "\n")

    def console(self, raw, text):
        """raw: the bytes as they came; text: decoded, CRs dropped."""
        self.raw.write(raw)
        now = self.clock()
        if text and self.partial_t is None:
            self.partial_t = now
        parts = (self.partial + text).split("\n")
        for line in parts[:-1]:
            self._write(self.partial_t, "|", visible(line))
            self.partial_t = now
        self.partial = parts[-1]
        if not self.partial:
            self.partial_t = None

    def event(self, msg):
        self._write(self.clock(), "#", msg)

    def sent(self, data):
        text = data.decode("utf-8", "backslashreplace")
        shown = text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
        self._write(self.clock(), ">", f'"{shown}"')

    def close(self):
        if self.partial:
            self._write(self.partial_t, "|", visible(self.partial) + "   (no newline)")
            self.partial, self.partial_t = "", None
        self.f.close()
        self.raw.close()

    def last_lines(self, n):
        return list(self.tail)[-n:]


# Terminal control sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or
# ESC \\) and two-character escapes. busybox ash, for one, follows its
# prompt with ESC [ 6 n (where is the cursor?).
CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
UNFINISHED = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?)?\Z")


def strip_controls(pending, new, final=False):
    """-> (text without control sequences, unfinished sequence to keep)."""
    text = pending + new
    m = None if final else UNFINISHED.search(text)
    keep = ""
    if m and len(text) - m.start() < 256:
        text, keep = text[:m.start()], text[m.start():]
    return CONTROL.sub("", text), keep


class Console:
    """Decoded console text with absolute offsets (the front may be trimmed):
    CRs and terminal control sequences are dropped, so patterns match what a
    person would read. console.raw keeps the bytes."""

    def __init__(self):
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.pending = ""
        self.text = ""
        self.base = 0  # absolute offset of text[0]
        self.cursor = 0  # absolute offset: expect searches from here
        self.scanned = 0  # absolute offset: complete lines before it were scanned

    def feed(self, data, final=False):
        new, self.pending = strip_controls(self.pending, self.decoder.decode(data, final), final)
        new = new.replace("\r", "")
        self.text += new
        if len(self.text) > MAX_TEXT:
            keep_from = min(self.cursor, self.scanned, self.end - MAX_TEXT // 2)
            cut = max(0, keep_from - self.base)
            self.text = self.text[cut:]
            self.base += cut
        return new

    @property
    def end(self):
        return self.base + len(self.text)

    def rel(self, absolute):
        return max(0, absolute - self.base)

    def new_lines(self):
        """Complete lines not yet scanned: [(absolute start, line)]."""
        out = []
        pos = self.scanned
        while True:
            nl = self.text.find("\n", self.rel(pos))
            if nl < 0:
                break
            out.append((pos, self.text[self.rel(pos):nl]))
            pos = self.base + nl + 1
        self.scanned = pos
        return out

    def partial_line(self):
        return self.text[self.rel(self.scanned):]

    def searcher(self, pattern, start=None):
        """A function that finds pattern from start (default: the cursor),
        looking at each text only once (up to SEARCH_BACK before new text)."""
        state = {"from": self.cursor if start is None else start, "done": None}

        def search():
            lo = state["from"]
            if state["done"] is not None:
                lo = max(lo, state["done"] - SEARCH_BACK)
            m = pattern.search(self.text, self.rel(lo))
            state["done"] = self.end
            return m

        return search

    def lines_from(self, absolute, n):
        """Up to n lines of text from an absolute offset."""
        return self.text[self.rel(absolute):].split("\n")[:n]


class Reader:
    """Reads VM's console into a Console and the transcript, watching each
    line for a kernel panic, forbidden output (SPEC's expect-not steps) and
    MILESTONES' markers."""

    def __init__(self, vm, tr, milestones, spec, abort, clock):
        self.vm = vm
        self.tr = tr
        self.milestones = milestones
        self.allow_panic = spec.allow_panic
        self.expect_not = spec.expect_not
        self.abort = abort  # set on an interrupt: stop waiting
        self.clock = clock
        self.console = Console()
        self.panic = None  # (absolute offset, time seen)
        self.forbidden = None  # (step, absolute offset, time seen)

    def pump(self, deadline, want=None, until_exit=True):
        """Read the console until want() gives a value, the VM exits, or the
        deadline: ('match', value), ('exit', status) or ('timeout', None)."""
        while True:
            if want is not None:
                v = want()
                if v is not None:
                    return "match", v
            self.check_grace()
            if until_exit and self.vm.exited():
                p = self.vm.proc
                return "exit", p.returncode if p else None
            now = self.clock()
            if now >= deadline:
                return "timeout", None
            if self.abort.is_set():
                raise fail("interrupted")
            self.read_once(min(deadline - now, 0.1))

    def read_once(self, timeout):
        data = self.vm.read_console(timeout)
        if data == b"":
            self.feed(b"", final=True)
        elif data:
            self.feed(data)
        self.milestones.poll()

    def feed(self, data, final=False):
        text = self.console.feed(data, final)
        self.tr.console(data, text)
        for start, line in self.console.new_lines():
            self.scan_line(start, line)

    def scan_line(self, start, line):
        now = self.clock()
        if self.panic is None and not self.allow_panic and PANIC.search(line):
            self.panic = (start, now)
            self.tr.event("the guest kernel panicked")
        if self.forbidden is None:
            for step in self.expect_not:
                if step.pattern.search(line):
                    self.forbidden = (step, start, now)
                    break
        self.milestones.console_line(line, now)

    def check_grace(self, force=False):
        """A panic or forbidden line fails the test once GRACE seconds of what
        follows are in (the trace), or at once when the VM has gone."""
        now = self.clock()
        if self.panic:
            start, seen = self.panic
            if force or self.vm.exited() or now - seen >= GRACE:
                lines = self.console.lines_from(start, 40)
                first = PRINTK_TIME.sub("", lines[0].strip())
                raise fail(f"the guest kernel panicked: {first}", lines)
        if self.forbidden:
            step, start, seen = self.forbidden
            if force or self.vm.exited() or now - seen >= GRACE:
                lines = self.console.lines_from(start, 30)
                raise fail(f"forbidden output: '{step.pattern.pattern}' (line {step.line}) "
                           f"appeared: {lines[0].strip()}", lines)

    def finish(self):
        """After the last step: a panic or forbidden line fails the test now,
        and so does forbidden output in an unfinished last line."""
        self.check_grace(force=True)
        partial = self.console.partial_line()
        for step in self.expect_not:
            if step.pattern.search(partial):
                raise fail(f"forbidden output: '{step.pattern.pattern}' (line {step.line}) "
                           f"appeared: {partial.strip()}")
