"""The test file format (docs/hvtest.md): one test per file, a line each.

A file names its VM first (guest, fixture, kernel ... settings), then lists
steps. Every line is `keyword arguments`; arguments split on blanks, with
shell-like quoting: '...' is literal, "..." keeps backslashes except in \\"
and \\\\. A few keywords take the rest of the line verbatim (run, cmdline,
command, bhyve, rawload). Lines whose first non-blank character is '#' are
comments; the first comment line is the test's description.

parse_file() returns a TestSpec or raises ParseError, whose errors are
(line, message) pairs: every message is tied to a line of the file.
"""

import difflib
import re
import shlex
from dataclasses import dataclass, field

DEFAULT_TIMEOUT = 120.0
DEFAULT_PROMPT = r"[#$] $"

# bhyve(8) exit statuses, by the names wait-exit accepts.
EXIT_NAMES = {
    "reboot": 0,
    "reset": 0,
    "poweroff": 1,
    "halt": 2,
    "triple-fault": 3,
    "error": 4,
}

# Keywords whose argument is the rest of the line, verbatim.
VERBATIM = {"run", "cmdline", "command", "bhyve", "rawload", "host"}

VM_KINDS = ("guest", "guest-source", "fixture", "kernel")
SETTINGS = {
    "guest", "guest-source", "fixture", "linux", "kernel", "initrd",
    "cmdline", "command", "disk", "memory", "cpus", "bhyve", "rawload",
    "requires", "prompt", "marker", "timeout", "allow-panic", "net", "forward",
    "share", "console",
}
STEPS = {
    "expect", "expect-not", "send", "run", "wait-exit", "sleep",
    "milestone", "guest-status", "boot", "host", "host-expect",
}
# Steps that run on the host: they neither need nor boot the VM.
HOST_STEPS = {"host", "host-expect"}
# `net user [MODEL]`: the NIC models, by the names a test may use.
NET_MODELS = {"virtio": "virtio-net", "virtio-net": "virtio-net", "e1000": "e1000"}
KEYWORDS = sorted(SETTINGS | STEPS)
# `share`: at most this many virtio-9p devices (one PCI slot each), and the
# tags Linux mounts at /mnt/TAG.
MAX_SHARES = 8
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


class ParseError(Exception):
    """A bad test file: errors is a list of (line, message)."""

    def __init__(self, path, errors):
        self.path = path
        self.errors = errors
        super().__init__(self.format())

    def format(self):
        return "\n".join(f"{self.path}:{line}: {msg}" for line, msg in self.errors)

    def first(self):
        line, msg = self.errors[0]
        return f"{self.path}:{line}: {msg}"


class LineError(Exception):
    """Raised while parsing one line; becomes one entry of ParseError."""


@dataclass
class ExitSpec:
    """What wait-exit expects: a status, and the words the user wrote."""

    status: int
    words: str


@dataclass
class Step:
    kind: str
    line: int
    source: str
    pattern: re.Pattern = None
    data: bytes = b""
    command: str = ""
    status: object = 0  # run: an int or "any"; guest-status: an int
    exit: ExitSpec = None
    timeout: float = None
    name: str = ""
    seconds: float = 0.0

    def describe(self):
        return f"line {self.line}: {self.source}"


@dataclass
class Disk:
    line: int
    path: str = None  # an existing image, relative to the test file
    scratch_size: str = None  # or a fresh zeroed image of this size


@dataclass
class Forward:
    """`forward tcp 80 [as NAME]`: a free host port on 127.0.0.1 forwarded
    to the guest's port, its number in the variable NAME for host steps."""

    line: int
    proto: str  # tcp or udp
    guest_port: int
    name: str


@dataclass
class Share:
    """`share DIR [ro] [as TAG]` or `share results`: a host directory the
    guest sees over virtio-9p, the Linux guest at /mnt/TAG."""

    line: int
    tag: str
    path: str = None  # relative to the test file; None for `share results`
    ro: bool = False

    @property
    def results(self):
        return self.path is None


@dataclass
class TestSpec:
    path: str
    description: str = ""
    vm_kind: str = None  # one of VM_KINDS
    vm_line: int = 0
    guest: str = None
    source: str = None
    source_mode: int = 32
    fixture: str = None
    kernel: str = None
    initrd: str = None
    cmdline: str = None
    command: str = None
    disks: list = field(default_factory=list)
    memory: str = None
    cpus: int = None
    bhyve_args: list = field(default_factory=list)
    rawload_args: list = field(default_factory=list)
    requires: list = field(default_factory=list)
    prompt: re.Pattern = None
    markers: list = field(default_factory=list)  # (name, pattern)
    timeout: float = DEFAULT_TIMEOUT
    allow_panic: bool = False
    net: str = None  # the NIC model of `net user`: virtio-net or e1000
    net_line: int = 0
    forwards: list = field(default_factory=list)  # Forward
    shares: list = field(default_factory=list)  # Share
    console: str = "com1"  # or "virtio": hvc0 on virtio-console
    steps: list = field(default_factory=list)
    expect_not: list = field(default_factory=list)  # Steps, kind expect-not

    @property
    def is_linux(self):
        return self.vm_kind in ("fixture", "kernel")


# --- lexical helpers ----------------------------------------------------------


def split_words(text):
    """Split on blanks with the quoting described above."""
    words, cur, i, n, have = [], [], 0, len(text), False
    while i < n:
        c = text[i]
        if c in " \t":
            if have:
                words.append("".join(cur))
                cur, have = [], False
            i += 1
        elif c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise LineError(f"unterminated ' quote (column {i + 1})")
            cur.append(text[i + 1:end])
            have, i = True, end + 1
        elif c == '"':
            j = i + 1
            while True:
                if j >= n:
                    raise LineError(f'unterminated " quote (column {i + 1})')
                if text[j] == '"':
                    break
                if text[j] == "\\" and j + 1 < n and text[j + 1] in '"\\':
                    cur.append(text[j + 1])
                    j += 2
                    continue
                cur.append(text[j])
                j += 1
            have, i = True, j + 1
        else:
            cur.append(c)
            have, i = True, i + 1
    if have:
        words.append("".join(cur))
    return words


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def parse_duration(word):
    """'10', '10s', '1.5s', '500ms', '2m', '1h' -> seconds."""
    m = _DURATION.match(word)
    if not m:
        raise LineError(f"bad duration '{word}' (use e.g. 30, 30s, 500ms, 2m)")
    value = float(m.group(1))
    scale = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]
    return value * scale


def looks_like_duration(word):
    return bool(_DURATION.match(word))


_SIMPLE_ESCAPES = {
    "n": "\n", "r": "\r", "t": "\t", "e": "\x1b", "a": "\x07", "b": "\b",
    "f": "\f", "v": "\v", "0": "\0", "\\": "\\", '"': '"', "'": "'",
}


def unescape(text):
    """C-style escapes for send: \\n \\r \\t \\e \\xHH \\cX (control-X) ..."""
    out, i, n = bytearray(), 0, len(text)
    while i < n:
        c = text[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        if i + 1 >= n:
            raise LineError("a lone backslash ends the text (write \\\\)")
        e = text[i + 1]
        if e in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[e].encode()
            i += 2
        elif e == "x":
            hexdigits = text[i + 2:i + 4]
            if not re.fullmatch(r"[0-9a-fA-F]{2}", hexdigits):
                raise LineError(f"\\x needs two hex digits, got '{hexdigits}'")
            out.append(int(hexdigits, 16))
            i += 4
        elif e == "c":
            if i + 2 >= n or not ("@" <= text[i + 2].upper() <= "_"):
                raise LineError("\\c needs a letter (\\cC is control-C)")
            out.append(ord(text[i + 2].upper()) & 0x1F)
            i += 3
        else:
            raise LineError(f"unknown escape \\{e} in send text")
    return bytes(out)


def compile_regex(pattern):
    if pattern == "":
        raise LineError("empty pattern")
    try:
        return re.compile(pattern, re.MULTILINE)
    except re.error as e:
        raise LineError(f"bad regular expression '{pattern}': {e}")


def parse_exit(words):
    """wait-exit's words (minus a trailing timeout) -> ExitSpec."""
    if not words:
        raise LineError("wait-exit needs a status: poweroff, reboot, halt, "
                        "triple-fault, error, debug-exit V or a number")
    w = words[0]
    if w in EXIT_NAMES:
        if len(words) > 1:
            raise LineError(f"unexpected '{words[1]}' after {w}")
        return ExitSpec(EXIT_NAMES[w], w)
    if w == "debug-exit":
        if len(words) != 2 or not re.fullmatch(r"(0x[0-9a-fA-F]+|\d+)", words[1]):
            raise LineError("debug-exit needs the value the guest writes, e.g. debug-exit 0")
        value = int(words[1], 0)
        return ExitSpec(((value << 1) | 1) & 0xFF, f"debug-exit {words[1]}")
    if re.fullmatch(r"\d+", w):
        if int(w) > 255 or len(words) > 1:
            raise LineError(f"exit status {' '.join(words)} is not 0..255")
        return ExitSpec(int(w), w)
    hint = difflib.get_close_matches(w, list(EXIT_NAMES) + ["debug-exit"], 1)
    raise LineError(f"unknown exit status '{w}'" +
                    (f" (did you mean '{hint[0]}'?)" if hint else ""))


def split_timeout(words, what):
    """Peel an optional trailing duration off an argument list."""
    if len(words) >= 2 and looks_like_duration(words[-1]):
        return words[:-1], parse_duration(words[-1])
    return words, None


# --- the parser ---------------------------------------------------------------


class _Parser:
    def __init__(self, path):
        self.path = path
        self.spec = TestSpec(path=path)
        self.errors = []
        self.seen = {}  # single-use settings -> line
        self.in_steps = False
        self.vm_running = False  # after boot (implicit or explicit)
        self.vm_exited_line = 0  # line of the wait-exit that ended the VM

    def parse(self, text):
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        describing = None  # the first comment block is the description
        for number, raw in enumerate(lines, 1):
            line = raw.rstrip("\r")
            stripped = line.strip()
            if not stripped:
                describing = False if describing else describing
                continue
            if stripped.startswith("#"):
                if describing is None:
                    describing = True
                if describing:
                    text = stripped.lstrip("#").strip()
                    self.spec.description = (self.spec.description + " " + text).strip()
                continue
            describing = False
            try:
                self.line(number, stripped)
            except LineError as e:
                self.errors.append((number, str(e)))
        self.finish(len(lines))
        if self.errors:
            raise ParseError(self.path, self.errors)
        return self.spec

    def line(self, number, text):
        keyword, _, rest = text.partition(" ")
        if "\t" in keyword:
            keyword, _, more = keyword.partition("\t")
            rest = more + " " + rest
        rest = rest.strip()
        if keyword not in SETTINGS and keyword not in STEPS:
            hint = difflib.get_close_matches(keyword, KEYWORDS, 1)
            raise LineError(f"unknown keyword '{keyword}'" +
                            (f" (did you mean '{hint[0]}'?)" if hint else ""))
        if keyword in VERBATIM:
            args = rest
        else:
            args = split_words(rest)
        if keyword in SETTINGS:
            if self.in_steps:
                raise LineError(f"'{keyword}' is a VM setting: put it before the first step")
            getattr(self, "set_" + keyword.replace("-", "_"))(number, args)
        else:
            self.in_steps = True
            step = getattr(self, "step_" + keyword.replace("-", "_"))(number, args)
            step.source = text
            if step.kind == "expect-not":
                self.spec.expect_not.append(step)
            self.check_order(step)
            self.spec.steps.append(step)

    def once(self, number, keyword):
        if keyword in self.seen:
            raise LineError(f"'{keyword}' given twice (first on line {self.seen[keyword]})")
        self.seen[keyword] = number

    def set_vm(self, number, kind):
        if self.spec.vm_kind:
            raise LineError(f"a second VM ('{kind}'): the VM is already "
                            f"'{self.spec.vm_kind}' (line {self.spec.vm_line})")
        self.spec.vm_kind, self.spec.vm_line = kind, number

    @staticmethod
    def nargs(keyword, args, lo, hi=None, usage=""):
        hi = lo if hi is None else hi
        if not lo <= len(args) <= hi:
            raise LineError(f"{keyword} takes {usage}" if usage else
                            f"{keyword} takes {lo} argument{'s' if lo != 1 else ''}")

    # settings

    def set_guest(self, number, args):
        self.nargs("guest", args, 1, usage="a guest name, e.g. guest hello")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", args[0]):
            raise LineError(f"bad guest name '{args[0]}'")
        self.set_vm(number, "guest")
        self.spec.guest = args[0]

    def set_guest_source(self, number, args):
        self.nargs("guest-source", args, 1, 2, "FILE.S [16|32|64]")
        mode = 32
        if len(args) == 2:
            if args[1] not in ("16", "32", "64"):
                raise LineError(f"guest-source mode must be 16, 32 or 64, not '{args[1]}'")
            mode = int(args[1])
        self.set_vm(number, "guest-source")
        self.spec.source, self.spec.source_mode = args[0], mode

    def set_fixture(self, number, args):
        self.nargs("fixture", args, 1, usage="a fixture name, e.g. fixture linux")
        if not re.fullmatch(r"[a-z0-9_-]+", args[0]):
            raise LineError(f"bad fixture name '{args[0]}'")
        self.set_vm(number, "fixture")
        self.spec.fixture = args[0]

    def set_linux(self, number, args):
        self.nargs("linux", args, 0, usage="no arguments (it means: fixture linux)")
        self.set_fixture(number, ["linux"])

    def set_kernel(self, number, args):
        self.nargs("kernel", args, 1, usage="a path to a kernel (bzImage)")
        self.set_vm(number, "kernel")
        self.spec.kernel = args[0]

    def set_initrd(self, number, args):
        self.once(number, "initrd")
        self.nargs("initrd", args, 1, usage="a path to an initramfs")
        self.spec.initrd = args[0]

    def set_cmdline(self, number, args):
        self.once(number, "cmdline")
        self.spec.cmdline = args

    def set_command(self, number, args):
        self.once(number, "command")
        if not args:
            raise LineError("command needs the command line the guest runs")
        self.spec.command = args

    def set_disk(self, number, args):
        if len(args) == 2 and args[0] == "scratch":
            if not re.fullmatch(r"[1-9]\d*[KMGkmg]?", args[1]):
                raise LineError(f"bad disk size '{args[1]}' (e.g. 64M)")
            self.spec.disks.append(Disk(number, scratch_size=args[1]))
        elif len(args) == 1 and args[0] != "scratch":
            self.spec.disks.append(Disk(number, path=args[0]))
        else:
            raise LineError("disk takes an image path, or scratch SIZE")

    def set_memory(self, number, args):
        self.once(number, "memory")
        self.nargs("memory", args, 1, usage="a size, e.g. 512M")
        if not re.fullmatch(r"[1-9]\d*[KMGTkmgt]?", args[0]):
            raise LineError(f"bad memory size '{args[0]}' (e.g. 32M, 1G)")
        self.spec.memory = args[0]

    def set_cpus(self, number, args):
        self.once(number, "cpus")
        self.nargs("cpus", args, 1, usage="a number")
        if not re.fullmatch(r"[1-9]\d*", args[0]):
            raise LineError(f"cpus: not a positive number: '{args[0]}'")
        self.spec.cpus = int(args[0])

    def _shell_words(self, keyword, args):
        try:
            return shlex.split(args)
        except ValueError as e:
            raise LineError(f"{keyword}: {e}")

    def set_bhyve(self, number, args):
        words = self._shell_words("bhyve", args)
        if not words:
            raise LineError("bhyve needs options, e.g. bhyve -s 3:0,virtio-rnd")
        self.spec.bhyve_args += words

    def set_rawload(self, number, args):
        words = self._shell_words("rawload", args)
        if not words:
            raise LineError("rawload needs options, e.g. rawload -r rcx=1")
        self.spec.rawload_args += words

    def set_requires(self, number, args):
        if not args:
            raise LineError("requires needs device names (as bhyve -s help / -l help list them)")
        self.spec.requires += args

    def set_prompt(self, number, args):
        self.once(number, "prompt")
        self.nargs("prompt", args, 1, usage="one pattern (quote it)")
        self.spec.prompt = compile_regex(args[0])

    def set_marker(self, number, args):
        self.nargs("marker", args, 2, usage="a name and a pattern: marker NAME REGEX")
        self.spec.markers.append((args[0], compile_regex(args[1])))

    def set_timeout(self, number, args):
        self.once(number, "timeout")
        self.nargs("timeout", args, 1, usage="a duration, e.g. timeout 60s")
        self.spec.timeout = parse_duration(args[0])
        if self.spec.timeout <= 0:
            raise LineError("timeout must be more than 0")

    def set_allow_panic(self, number, args):
        self.nargs("allow-panic", args, 0)
        self.spec.allow_panic = True

    def set_net(self, number, args):
        self.once(number, "net")
        if not args or args[0] != "user" or len(args) > 2:
            raise LineError("net takes 'user' and an optional NIC model: net user "
                            "[virtio|e1000]")
        model = args[1] if len(args) == 2 else "virtio"
        if model not in NET_MODELS:
            hint = difflib.get_close_matches(model, list(NET_MODELS), 1)
            raise LineError(f"unknown NIC model '{model}' (virtio or e1000)" +
                            (f"; did you mean '{hint[0]}'?" if hint else ""))
        self.spec.net, self.spec.net_line = NET_MODELS[model], number

    def set_forward(self, number, args):
        usage = "forward takes tcp|udp GUESTPORT [as NAME], e.g. forward tcp 80 as WEB"
        if len(args) not in (2, 4) or (len(args) == 4 and args[2] != "as"):
            raise LineError(usage)
        proto, port = args[0], args[1]
        if proto not in ("tcp", "udp"):
            raise LineError(f"forward: protocol '{proto}' is not tcp or udp")
        if not re.fullmatch(r"[1-9]\d{0,4}", port) or int(port) > 65535:
            raise LineError(f"forward: guest port '{port}' is not 1..65535")
        name = args[3] if len(args) == 4 else f"PORT_{proto.upper()}_{port}"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise LineError(f"forward: '{name}' is not a variable name (letters, digits, _)")
        for f in self.spec.forwards:
            if f.name == name:
                raise LineError(f"forward: {name} is already the port of line {f.line}")
        self.spec.forwards.append(Forward(number, proto, int(port), name))

    def set_share(self, number, args):
        usage = "share takes DIR [ro] [as TAG], or 'results'"
        if args == ["results"]:
            share = Share(number, "results")
        elif args[:1] == ["results"]:
            raise LineError("share results takes nothing more (a directory named results: "
                            "share ./results)")
        else:
            words, tag = list(args), None
            if len(words) >= 2 and words[-2] == "as":
                tag, words = words[-1], words[:-2]
            ro = words[1:] == ["ro"]
            if len(words) != (2 if ro else 1):
                raise LineError(usage)
            if tag is None:
                tag = share_tag(words[0])
            elif not _TAG.fullmatch(tag):
                raise LineError(f"share: bad tag '{tag}' (letters, digits, _ . -; at most 64)")
            share = Share(number, tag, path=words[0], ro=ro)
        for other in self.spec.shares:
            if other.tag == share.tag:
                raise LineError(f"share: tag '{share.tag}' is already the share of line "
                                f"{other.line} (give another with 'as TAG')")
        if len(self.spec.shares) == MAX_SHARES:
            raise LineError(f"share: at most {MAX_SHARES} shares")
        self.spec.shares.append(share)

    def set_console(self, number, args):
        self.once(number, "console")
        if len(args) != 1 or args[0] not in ("virtio", "com1"):
            raise LineError("console takes virtio (hvc0 on virtio-console) or com1 (the default)")
        self.spec.console = args[0]

    # steps

    def step_host(self, number, args):
        status, timeout, rest = 0, None, args
        while True:
            m = re.match(r"-([st])\s+(\S+)\s*(.*)$", rest)
            if not m:
                break
            opt, value, rest = m.groups()
            if opt == "s":
                if value == "any":
                    status = "any"
                elif re.fullmatch(r"\d+", value) and int(value) <= 255:
                    status = int(value)
                else:
                    raise LineError(f"host -s: not a status 0..255 or 'any': '{value}'")
            else:
                timeout = parse_duration(value)
        if not rest:
            raise LineError("host needs a shell command (run on this machine with sh -c)")
        return Step("host", number, "", command=rest, status=status, timeout=timeout)

    def step_host_expect(self, number, args):
        self.nargs("host-expect", args, 1,
                   usage="one pattern (quote a pattern with blanks)")
        if not any(st.kind == "host" for st in self.spec.steps):
            raise LineError("host-expect checks a host command's output: put a 'host' "
                            "step before it")
        return Step("host-expect", number, "", pattern=compile_regex(args[0]))

    def step_expect(self, number, args):
        words, timeout = split_timeout(args, "expect")
        self.nargs("expect", words, 1,
                   usage="a pattern and an optional timeout (quote a pattern with blanks)")
        return Step("expect", number, "", pattern=compile_regex(words[0]), timeout=timeout)

    def step_expect_not(self, number, args):
        self.nargs("expect-not", args, 1, usage="one pattern (quote a pattern with blanks)")
        return Step("expect-not", number, "", pattern=compile_regex(args[0]))

    def step_send(self, number, args):
        self.nargs("send", args, 1, usage="one text argument (quote text with blanks)")
        return Step("send", number, "", data=unescape(args[0]))

    def step_run(self, number, args):
        status, timeout, rest = 0, None, args
        while True:
            m = re.match(r"-([st])\s+(\S+)\s*(.*)$", rest)
            if not m:
                break
            opt, value, rest = m.groups()
            if opt == "s":
                if value == "any":
                    status = "any"
                elif re.fullmatch(r"\d+", value) and int(value) <= 255:
                    status = int(value)
                else:
                    raise LineError(f"run -s: not a status 0..255 or 'any': '{value}'")
            else:
                timeout = parse_duration(value)
        if not rest:
            raise LineError("run needs a shell command")
        if "\n" in rest:
            raise LineError("run takes one line")
        return Step("run", number, "", command=rest, status=status, timeout=timeout)

    def step_wait_exit(self, number, args):
        words, timeout = split_timeout(args, "wait-exit")
        if len(words) == 1 and words[0] == "debug-exit" and timeout is not None:
            # "wait-exit debug-exit 3": 3 is the value, not a timeout
            words, timeout = args, None
        return Step("wait-exit", number, "", exit=parse_exit(words), timeout=timeout)

    def step_sleep(self, number, args):
        self.nargs("sleep", args, 1, usage="a duration, e.g. sleep 2s")
        return Step("sleep", number, "", seconds=parse_duration(args[0]))

    def step_milestone(self, number, args):
        words, timeout = split_timeout(args, "milestone")
        self.nargs("milestone", words, 1,
                   usage="a milestone name and an optional timeout (quote names with blanks)")
        return Step("milestone", number, "", name=words[0], timeout=timeout)

    def step_guest_status(self, number, args):
        words, timeout = split_timeout(args, "guest-status")
        if len(words) != 1 or not re.fullmatch(r"\d+", words[0]):
            raise LineError("guest-status takes the status the guest command "
                            "must exit with, and an optional timeout")
        return Step("guest-status", number, "", status=int(words[0]), timeout=timeout)

    def step_boot(self, number, args):
        self.nargs("boot", args, 0)
        return Step("boot", number, "")

    # ordering rules: what may follow what

    def check_order(self, step):
        if step.kind == "boot":
            if self.vm_running:
                raise LineError("boot: the VM is still running (wait-exit first)")
            self.vm_running = True
            return
        if step.kind in ("expect-not", "sleep") or step.kind in HOST_STEPS:
            return
        if not self.vm_running:
            if self.vm_exited_line:
                raise LineError(f"'{step.kind}' after the VM exited (wait-exit on line "
                                f"{self.vm_exited_line}): add 'boot' to start it again")
            self.vm_running = True  # the implicit first boot
        if step.kind == "run" and not self.spec.is_linux and self.spec.prompt is None:
            raise LineError("run needs a shell prompt: give 'prompt REGEX' for this guest")
        if step.kind == "wait-exit":
            self.vm_running = False
            self.vm_exited_line = step.line

    def finish(self, nlines):
        s = self.spec
        if not s.vm_kind:
            line = s.steps[0].line if s.steps else max(nlines, 1)
            self.errors.append((line, "no VM: name one before the steps (guest NAME, "
                                      "guest-source FILE.S, fixture linux or kernel PATH)"))
        if s.initrd and s.vm_kind != "kernel":
            self.errors.append((self.seen["initrd"], "initrd goes with 'kernel PATH'"))
        for kw in ("cmdline", "command"):
            if kw in self.seen and s.vm_kind in ("guest", "guest-source"):
                self.errors.append((self.seen[kw], f"{kw} is for Linux guests "
                                                   "(fixture linux or kernel PATH)"))
        if s.forwards and not s.net:
            self.errors.append((s.forwards[0].line, "forward needs a NIC: add 'net user' "
                                                    "before it"))
        if s.shares and s.vm_kind in ("guest", "guest-source"):
            self.errors.append((s.shares[0].line, "share is for Linux guests (fixture linux "
                                                  "or kernel PATH): tiny guests have no 9P"))
        if "console" in self.seen and s.console == "virtio" and s.vm_kind in ("guest", "guest-source"):
            self.errors.append((self.seen["console"], "console virtio is for Linux guests "
                                                      "(fixture linux or kernel PATH)"))
        if s.rawload_args and s.vm_kind in ("fixture", "kernel"):
            self.errors.append((s.vm_line, "rawload options are for tiny guests; "
                                           "this VM boots through grub-bhyve"))
        if not [st for st in s.steps if st.kind != "expect-not"] and not self.errors:
            self.errors.append((max(nlines, 1), "no steps: add at least one (expect, "
                                                "wait-exit, run ...)"))
        self.errors.sort(key=lambda e: e[0])


def share_tag(path):
    """`share DIR`'s default tag: the directory's name, or "share"."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name if _TAG.fullmatch(name) and name not in (".", "..") else "share"


def parse_text(text, path="<test>"):
    return _Parser(path).parse(text)


def parse_file(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ParseError(path, [(1, f"not UTF-8 text: {e}")])
    except OSError as e:
        raise ParseError(path, [(0, f"cannot read: {e.strerror}")])
    return parse_text(text, path)
