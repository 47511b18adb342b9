#!/usr/bin/env python3
"""Seed inputs for fuzz_p9: well-formed 9P2000.L conversations to mutate.

usage: p9_seeds.py OUTDIR

Each seed is the target's input format (see fuzz_p9.c): a flags byte,
then frames of len[2] type[1] body, after the target's own Tversion and
Tattach of fid 0 over a share holding a, d/b, abs -> /etc, up ->
../outside and a FIFO p.
"""
import os
import struct
import sys


def s(text):
    b = text.encode()
    return struct.pack("<H", len(b)) + b


def frame(mtype, body):
    # The last byte of a frame sets the reply's room; end with 0 (msize).
    data = bytes([mtype]) + body + b"\0"
    return struct.pack("<H", len(data)) + data


def walk(fid, newfid, *names):
    return frame(110, struct.pack("<IIH", fid, newfid, len(names)) + b"".join(s(n) for n in names))


def lopen(fid, flags):
    return frame(12, struct.pack("<II", fid, flags))


def read(fid, off, count):
    return frame(116, struct.pack("<IQI", fid, off, count))


def write(fid, off, data):
    return frame(118, struct.pack("<IQI", fid, off, len(data)) + data)


SEEDS = {
    "read": [walk(0, 1, "a"), lopen(1, 0), read(1, 0, 100), frame(120, struct.pack("<I", 1))],
    "dotdot": [walk(0, 1, "..", "d", "..", "..", "a"), lopen(1, 0), read(1, 0, 10)],
    "links": [walk(0, 1, "abs", "passwd"), walk(0, 2, "up"), frame(22, struct.pack("<I", 2)),
              lopen(2, 0), frame(72, struct.pack("<I", 2) + s("x") + struct.pack("<II", 0o755, 0))],
    "create": [walk(0, 1, "d"), frame(14, struct.pack("<I", 1) + s("n") + struct.pack("<III", 2, 0o644, 0)),
               write(1, 0, b"data"), read(1, 0, 4), frame(50, struct.pack("<II", 1, 0))],
    "readdir": [walk(0, 1), lopen(1, 0o200000), frame(40, struct.pack("<IQI", 1, 0, 200)),
                frame(40, struct.pack("<IQI", 1, 3, 8000))],
    "tree": [frame(72, struct.pack("<I", 0) + s("m") + struct.pack("<II", 0o755, 0)),
             frame(16, struct.pack("<I", 0) + s("sl") + s("/etc") + struct.pack("<I", 0)),
             walk(0, 1, "sl", "passwd"),
             frame(74, struct.pack("<I", 0) + s("a") + struct.pack("<I", 0) + s("m2")),
             walk(0, 2, "d"), frame(20, struct.pack("<II", 2, 0) + s("d2")),
             walk(0, 3, "d2", "b"), frame(70, struct.pack("<II", 0, 3) + s("hl")),
             frame(76, struct.pack("<I", 0) + s("hl") + struct.pack("<I", 0)),
             frame(122, struct.pack("<I", 3))],
    "attrs": [walk(0, 1, "a"), frame(24, struct.pack("<IQ", 1, 0x7FF)),
              frame(26, struct.pack("<IIIIIQQQQQ", 1, 0x1FF, 0o600, 0, 0, 3, 1, 0, 2, 0)),
              frame(8, struct.pack("<I", 1)), frame(30, struct.pack("<II", 1, 5) + s("")),
              read(5, 0, 100), frame(30, struct.pack("<II", 1, 6) + s("user.x")),
              frame(52, struct.pack("<IBIQQI", 1, 1, 0, 0, 1, 1) + s("c")),
              frame(54, struct.pack("<IBQQI", 1, 1, 0, 1, 1) + s("c"))],
    "mknod": [frame(18, struct.pack("<I", 0) + s("f") + struct.pack("<IIII", 0o10644, 0, 0, 0)),
              walk(0, 1, "p"), lopen(1, 0), frame(108, struct.pack("<H", 1))],
}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, frames in SEEDS.items():
        for flags in (0, 1):
            with open(os.path.join(sys.argv[1], f"{name}-{flags}"), "wb") as f:
                f.write(bytes([flags]) + b"".join(frames))


if __name__ == "__main__":
    main()
