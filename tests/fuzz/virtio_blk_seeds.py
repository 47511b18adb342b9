#!/usr/bin/env python3
"""Seed inputs for fuzz_virtio_blk: well-formed requests to mutate from.

usage: virtio_blk_seeds.py OUTDIR

Each seed is the target's input format (see fuzz_virtio_blk.c): flags,
no register accesses, then guest memory from the ring at 0x10000. The
requests' buffers sit in the unused end of the descriptor table so that a
seed stays about 2 KiB.
"""
import os
import struct
import sys

RING = 0x10000
HDR, STATUS, TABLE, DATA = RING + 0x400, RING + 0x500, RING + 0x300, RING + 0x600
NEXT, WRITE, INDIRECT = 1, 2, 4
QSZ = 128


def desc(addr, length, flags, nxt):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def seed(flags, descs, heads, hdr, table=b"", data=b""):
    mem = bytearray(0x800 + 4 + 2 * QSZ + 2)
    for i, d in enumerate(descs):
        mem[16 * i:16 * i + 16] = d
    mem[TABLE - RING:TABLE - RING + len(table)] = table
    mem[HDR - RING:HDR - RING + 16] = hdr
    mem[STATUS - RING] = 0xEE
    mem[DATA - RING:DATA - RING + len(data)] = data
    avail = 0x800
    struct.pack_into("<HH", mem, avail, 0, len(heads))
    for i, h in enumerate(heads):
        struct.pack_into("<H", mem, avail + 4 + 2 * i, h)
    return bytes([flags, 0]) + bytes(mem)


def hdr(kind, sector):
    return struct.pack("<IIQ", kind, 0, sector)


def three(write):
    return [desc(HDR, 16, NEXT, 1),
            desc(DATA, 512, NEXT | (WRITE if write else 0), 2),
            desc(STATUS, 1, WRITE, 0)]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = {
        "in": seed(0x03, three(True), [0], hdr(0, 5)),
        "out": seed(0x03, three(False), [0], hdr(1, 7), data=b"\xab" * 512),
        "out-ro": seed(0x0B, three(False), [0], hdr(1, 7)),
        "in-msix": seed(0x07, three(True), [0], hdr(0, 2047)),
        "flush": seed(0x00, [desc(HDR, 16, NEXT, 1), desc(STATUS, 1, WRITE, 0)],
                      [0], hdr(4, 0)),
        "get-id": seed(0x13, [desc(HDR, 16, NEXT, 1), desc(DATA, 20, NEXT | WRITE, 2),
                              desc(STATUS, 1, WRITE, 0)], [0], hdr(8, 0)),
        "indirect": seed(0x03, [desc(TABLE, 48, INDIRECT, 0)], [0], hdr(0, 1),
                         table=b"".join(three(True))),
        "two": seed(0x23, three(True) + [desc(HDR, 16, NEXT, 4), desc(STATUS, 1, WRITE, 0)],
                    [0, 3], hdr(0, 9)),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
