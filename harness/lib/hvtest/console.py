"""The console: what the guest wrote, as a matchable text and a transcript.

Console keeps the decoded output (UTF-8, bad bytes replaced, every CR
dropped so patterns never see CRLF) and the expect cursor. Transcript
writes one line per console line with the time its first byte arrived,
interleaved with the harness's own events and what it typed:

    [    0.012] | hello from guest        console line
    [    0.013] > "quit\\n"                 sent to the guest
    [    0.020] # bhyve exited 1 (powered off)   harness event
"""

import codecs
import collections
import re

# Lines a guest kernel prints when it panics: Linux, FreeBSD.
PANIC = re.compile(r"Kernel panic - not syncing|^panic: ", re.MULTILINE)

# Console markers for milestones (docs/hvtest.md, "Milestones"): the same
# names the milestone port carries, for guests (and kernels) that cannot
# write to it.
PRINTK_TIME = re.compile(r"^\[\s*\d+\.\d+\]\s?")  # "[   10.652025] "
BUILTIN_MARKERS = (
    ("kernel started", re.compile(r"^(?:\[\s*\d+\.\d+\]\s?)?Linux version \S+")),
    ("userspace up", re.compile(r"userspace up")),
)
MARKER_LINE = re.compile(r"^hvtest-milestone: (.+?)\s*$")

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
