#!/usr/bin/env python3
"""Seed inputs for fuzz_virtio_console: a driver's handshake and traffic.

usage: virtio_console_seeds.py OUTDIR

Each seed is the target's input format (see fuzz_virtio_console.c): flags,
operations, then guest memory from 0x10000: six rings 0x2000 apart (port 0
rx/tx, control rx/tx, port 1 rx/tx). Buffers sit in the unused end of each
ring's second page.
"""
import os
import struct
import sys

RING = 0x10000
QSZ = 64
NEXT, WRITE = 1, 2
MULTIPORT, EVENT_IDX, EMERG = 1, 2, 4
DEVICE_READY, PORT_READY, PORT_OPEN = 0, 3, 6


def ring(q):
    return RING + 0x2000 * q


def buf(q, off=0):
    """A buffer area of about 2 KiB after ring q's used ring."""
    return ring(q) + 0x1400 + off


class Mem:
    def __init__(self, nq):
        self.b = bytearray(0x2000 * nq)

    def put(self, gpa, data):
        o = gpa - RING
        self.b[o:o + len(data)] = data

    def chain(self, q, head, bufs):
        """bufs: (gpa, len, writable); descriptors head.. in a row."""
        for i, (gpa, length, w) in enumerate(bufs):
            flags = (WRITE if w else 0) | (NEXT if i + 1 < len(bufs) else 0)
            self.put(ring(q) + 16 * (head + i),
                     struct.pack("<QIHH", gpa, length, flags, head + i + 1))

    def avail(self, q, heads):
        a = ring(q) + 16 * QSZ
        self.put(a, struct.pack("<HH", 0, len(heads)))
        for i, h in enumerate(heads):
            self.put(a + 4 + 2 * i, struct.pack("<H", h))


def ctrl(id_, event, value):
    return struct.pack("<IHH", id_, event, value)


def handshake(mem, msgs):
    heads = []
    for i in range(8):
        mem.chain(2, i, [(buf(2, 128 * i), 128, True)])
        heads.append(i)
    mem.avail(2, heads)
    heads = []
    for i, m in enumerate(msgs):
        mem.put(buf(3, 16 * i), m)
        mem.chain(3, i, [(buf(3, 16 * i), len(m), False)])
        heads.append(i)
    mem.avail(3, heads)


def traffic(mem, txq, rxq):
    mem.put(buf(txq), b"hello, ")
    mem.put(buf(txq, 64), b"world\r\n")
    mem.chain(txq, 0, [(buf(txq), 7, False), (buf(txq, 64), 7, False)])
    mem.chain(txq, 2, [(buf(txq, 128), 1024, False)])
    mem.avail(txq, [0, 2])
    mem.chain(rxq, 0, [(buf(rxq), 16, True)])
    mem.chain(rxq, 1, [(buf(rxq, 64), 64, True), (buf(rxq, 256), 64, True)])
    mem.avail(rxq, [0, 1])


def seed(flags, ops, mem):
    return bytes([flags, len(ops)]) + bytes(ops) + bytes(mem.b)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = {}
    # No MULTIPORT: port 0 alone, output and input.
    m = Mem(2)
    traffic(m, 1, 0)
    seeds["port0"] = seed(EMERG, [1, 0 | (19 << 3), 6, 0, 7, 1], m)
    # The multiport handshake, then traffic on both ports.
    m = Mem(6)
    handshake(m, [ctrl(0, DEVICE_READY, 1), ctrl(0, PORT_READY, 1),
                  ctrl(1, PORT_READY, 1), ctrl(0, PORT_OPEN, 1),
                  ctrl(1, PORT_OPEN, 1), ctrl(7, PORT_READY, 1)])
    traffic(m, 1, 0)
    traffic(m, 5, 4)
    seeds["multiport"] = seed(MULTIPORT | EVENT_IDX,
                              [2, 3, 1, 0 | (8 << 3), 5, 4, 2, 7], m)
    # Control only, with a short and an unknown message.
    m = Mem(4)
    handshake(m, [ctrl(0, DEVICE_READY, 1), b"\x01\x00",
                  ctrl(0, 42, 1), ctrl(0, PORT_READY, 1)])
    seeds["control"] = seed(MULTIPORT, [3, 2, 3], m)
    # Output past what the pipe and the device's 64 KiB buffer take.
    m = Mem(2)
    m.chain(1, 0, [(0x20000, 0x30000, False), (0x60000, 0x10000, False)])
    m.avail(1, [0])
    seeds["flood"] = seed(0, [1, 1], m)
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
