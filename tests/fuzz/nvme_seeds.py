#!/usr/bin/env python3
"""Seed inputs for fuzz_nvme: well-formed command sequences to mutate from.

usage: nvme_seeds.py OUTDIR

Each seed is the target's input format (see fuzz_nvme.c): flags, register
operations (doorbells, mostly), then guest memory from 0x10000: the admin
submission queue there, its completion queue at 0x11000, an I/O
submission queue at 0x12000 and its completion queue at 0x13000, a PRP list
at 0x14000 and data pages from 0x15000.
"""
import os
import struct
import sys

BASE = 0x10000
ASQ, ACQ, IOSQ, IOCQ, LIST, DATA = (0x10000, 0x11000, 0x12000, 0x13000,
                                    0x14000, 0x15000)
RUN = 0x8000  # operation: run the backend
READ = 0x2000  # operation: read a register


def sqe(opc, cid, nsid=0, prp1=0, prp2=0, cdw10=0, cdw11=0, cdw12=0,
        cdw13=0):
    return struct.pack("<IIIIQQQIIIIII", opc | cid << 16, nsid, 0, 0, 0,
                       prp1, prp2, cdw10, cdw11, cdw12, cdw13, 0, 0)


def op(off, val):
    return struct.pack("<HI", off, val & 0xFFFFFFFF)


def sq_db(q, tail):
    return op(0x1000 + 8 * q, tail)


def cq_db(q, head):
    return op(0x1000 + 8 * q + 4, head)


def seed(flags, ops, admin, io=(), extra=None, size=LIST + 0x1000):
    mem = bytearray(size - BASE)
    for i, c in enumerate(admin):
        mem[ASQ - BASE + 64 * i:ASQ - BASE + 64 * i + 64] = c
    for i, c in enumerate(io):
        mem[IOSQ - BASE + 64 * i:IOSQ - BASE + 64 * i + 64] = c
    for gpa, blob in (extra or {}).items():
        mem[gpa - BASE:gpa - BASE + len(blob)] = blob
    return bytes([flags, len(ops)]) + b"".join(ops) + bytes(mem)


def ioq(cid, qsize=16, iv=0, flags=3):
    """Create I/O CQ 1 and SQ 1 (two admin commands)."""
    return [sqe(0x05, cid, prp1=IOCQ, cdw10=1 | (qsize - 1) << 16,
                cdw11=flags | iv << 16),
            sqe(0x01, cid + 1, prp1=IOSQ, cdw10=1 | (qsize - 1) << 16,
                cdw11=1 | 1 << 16)]


def rw(opc, cid, slba, nlb, prp1, prp2=0, cdw12=0):
    return sqe(opc, cid, nsid=1, prp1=prp1, prp2=prp2, cdw10=slba & 0xFFFFFFFF,
               cdw11=slba >> 32, cdw12=(nlb - 1) | cdw12)


def prp_list(n, start=DATA + 0x1000):
    return b"".join(struct.pack("<Q", start + 0x1000 * i) for i in range(n))


def dsm_ranges(ranges):
    return b"".join(struct.pack("<IIQ", 0, n, s) for s, n in ranges)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    q = ioq(0)
    seeds = {
        "identify": seed(0, [sq_db(0, 4)],
                         [sqe(0x06, 0, prp1=DATA, cdw10=1),
                          sqe(0x06, 1, nsid=1, prp1=DATA + 0x800,
                              prp2=DATA + 0x2000, cdw10=0),
                          sqe(0x06, 2, prp1=DATA, cdw10=2),
                          sqe(0x06, 3, nsid=1, prp1=DATA, cdw10=3)]),
        "read-write": seed(0x11, [sq_db(0, 2), sq_db(1, 3), op(RUN, 0),
                                  cq_db(1, 3)], q,
                           [rw(2, 0, 0, 8, DATA),
                            rw(1, 1, 8, 64, DATA, LIST),
                            rw(2, 2, 100, 16, DATA + 0x800, LIST)],
                           {LIST: prp_list(8)}),
        "read-write-ram": seed(0x13, [sq_db(0, 2), sq_db(1, 2)], q,
                               [rw(1, 0, 3, 2, DATA, DATA + 0x1000),
                                rw(2, 1, 0, 9, DATA, LIST)],
                               {LIST: prp_list(8)}),
        "dsm-zeroes-flush": seed(0x20, [sq_db(0, 2), sq_db(1, 4)], q,
                                 [sqe(0x09, 0, nsid=1, prp1=DATA, cdw10=2,
                                      cdw11=4),
                                  sqe(0x08, 1, nsid=1, cdw10=50, cdw12=7),
                                  sqe(0x00, 2, nsid=0xFFFFFFFF),
                                  rw(1, 3, 9, 1, DATA, cdw12=1 << 30)],
                                 {DATA: dsm_ranges([(0, 8), (200, 16),
                                                    (2047, 1)])}),
        "log-features": seed(0, [sq_db(0, 8)],
                             [sqe(0x02, 0, nsid=0xFFFFFFFF, prp1=DATA,
                                  cdw10=2 | 127 << 16),
                              sqe(0x02, 1, prp1=DATA, cdw10=3 | 1 << 15 |
                                  3 << 16, cdw12=8),
                              sqe(0x02, 2, prp1=DATA, cdw10=1 | 15 << 16),
                              sqe(0x09, 3, cdw10=7, cdw11=3 | 3 << 16),
                              sqe(0x0A, 4, cdw10=4),
                              sqe(0x09, 5, cdw10=0x0B, cdw11=0xFF),
                              sqe(0x09, 6, cdw10=9, cdw11=2 | 1 << 16),
                              sqe(0x0A, 7, cdw10=6 | 3 << 8)]),
        "aer-doorbells": seed(0x01, [sq_db(0, 3), sq_db(1, 40), cq_db(3, 0),
                                     cq_db(0, 1)],
                              [sqe(0x0C, 0), sqe(0x0C, 1), sqe(0x0C, 2)]),
        "queues-delete": seed(0x10, [sq_db(0, 2), sq_db(1, 2), sq_db(0, 5),
                                     op(RUN, 0)],
                              q + [sqe(0x00, 2, cdw10=1),
                                   sqe(0x04, 3, cdw10=1),
                                   sqe(0x04, 4, cdw10=1)],
                              [rw(2, 0, 0, 64, DATA, LIST),
                               rw(2, 0, 64, 8, DATA)],
                              {LIST: prp_list(8)}),
        "cq-full": seed(0x08, [sq_db(0, 1), sq_db(0, 0), cq_db(0, 1),
                               sq_db(0, 1), cq_db(0, 0)],
                        [sqe(0x06, 0, prp1=DATA, cdw10=1),
                         sqe(0x06, 1, prp1=DATA, cdw10=1)]),
        "shutdown-reset": seed(0x10, [sq_db(0, 2), sq_db(1, 1),
                                      op(0x14, 1 | 6 << 16 | 4 << 20 | 1 << 14),
                                      op(0x14, 0), op(RUN, 0),
                                      op(0x14, 1 | 6 << 16 | 4 << 20)],
                               q, [rw(1, 0, 0, 8, DATA)]),
        "threaded": seed(0x40, [sq_db(0, 2), sq_db(1, 4), cq_db(1, 2),
                                sq_db(0, 3), op(RUN, 0), cq_db(1, 4)],
                         q + [sqe(0x00, 2, cdw10=1)],
                         [rw(2, 0, 0, 64, DATA, LIST),
                          rw(1, 1, 64, 64, DATA, LIST),
                          sqe(0x08, 2, nsid=1, cdw10=200, cdw12=63),
                          rw(2, 3, 8, 8, DATA)],
                         {LIST: prp_list(15)}),
        "read-only": seed(0x14, [sq_db(0, 2), sq_db(1, 3), op(RUN, 0)], q,
                          [rw(1, 0, 0, 8, DATA),
                           sqe(0x08, 1, nsid=1, cdw10=8, cdw12=7),
                           sqe(0x09, 2, nsid=1, prp1=DATA, cdw11=4)],
                          {DATA: dsm_ranges([(0, 8)])}),
        "ram-dsm-zeroes": seed(0x02, [sq_db(0, 2), sq_db(1, 3)], q,
                               [sqe(0x09, 0, nsid=1, prp1=DATA, cdw10=1,
                                    cdw11=4),
                                sqe(0x08, 1, nsid=1, cdw10=8, cdw12=7),
                                rw(2, 2, 0, 16, DATA, LIST)],
                               {DATA: dsm_ranges([(0, 8), (100, 16)]),
                                LIST: prp_list(15)}),
        "registers": seed(0, [op(READ | 0x00, 0), op(READ | 0x04, 0),
                              op(READ | 0x08, 0), op(READ | 0x14, 0),
                              op(READ | 0x1C, 0), op(READ | 0x24, 0),
                              op(READ | 0x2C, 0), op(0x0C, 1),
                              op(READ | 0x10, 0), op(0x10, 1),
                              op(0x4000 | 0x28, ASQ), op(0x20, 0x4E564D65),
                              sq_db(0, 4), sq_db(0, 0)],
                          [sqe(0x0C, 0), sqe(0x0C, 1), sqe(0x0C, 2),
                           sqe(0x0C, 3), sqe(0x0C, 4), sqe(0x09, 5, cdw10=7),
                           sqe(0x0C, 6)]),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
