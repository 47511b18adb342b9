#!/usr/bin/env python3
"""Seed inputs for fuzz_ahci: well-formed commands to mutate from.

usage: ahci_seeds.py OUTDIR

Each seed is the target's input format (see fuzz_ahci.c): flags, register
writes, PxSACT/PxCI words, then guest memory from 0x10000. Port 0 is the
disk, port 1 the DVD. Command tables sit in the seed's memory (port 0's at
0x11000 + 0x100 * slot, port 1's at 0x13000 + 0x100 * slot); data buffers
at 0x20000 and up are outside the seed, in the rest of guest RAM.
"""
import os
import struct
import sys

BASE = 0x10000
CLB = (0x10000, 0x10400)
TABLES = (0x11000, 0x13000)
RANGES = 0x16000
DATA = 0x20000
MEM = 0x7000

START0, START1, MSI, RO = 1, 2, 4, 8
HDR_W, HDR_A = 1 << 6, 1 << 5


def h2d(cmd, lba=0, count=0, features=0, device=0x40, control=0, c=True):
    return struct.pack("<BBBBBBBBBBBBBBBB4x", 0x27, 0x80 if c else 0, cmd,
                       features & 0xFF, lba & 0xFF, (lba >> 8) & 0xFF,
                       (lba >> 16) & 0xFF, device, (lba >> 24) & 0xFF,
                       (lba >> 32) & 0xFF, (lba >> 40) & 0xFF,
                       (features >> 8) & 0xFF, count & 0xFF,
                       (count >> 8) & 0xFF, 0, control)


class Seed:
    def __init__(self, flags):
        self.flags = flags
        self.mem = bytearray(MEM)
        self.sact = 0
        self.ci = [0, 0]
        self.ops = b""

    def put(self, gpa, data):
        self.mem[gpa - BASE:gpa - BASE + len(data)] = data

    def cmd(self, port, slot, fis, prds=(), acmd=b"", hflags=0, ncq=False):
        table = TABLES[port] + 0x100 * slot
        self.put(CLB[port] + 32 * slot,
                 struct.pack("<IIQ16x", 5 | hflags | len(prds) << 16, 0,
                             table))
        self.put(table, fis)
        if acmd:
            self.put(table + 0x40, acmd.ljust(16, b"\0"))
        for i, (addr, length) in enumerate(prds):
            self.put(table + 0x80 + 16 * i,
                     struct.pack("<QII", addr, 0, length - 1))
        self.ci[port] |= 1 << slot
        if ncq:
            self.sact |= 1 << slot

    def reg(self, off, size, value, when=0):
        sz = {1: 0, 2: 1, 4: 2, 8: 3}[size]
        self.ops += struct.pack("<HBIB", off, sz, value & 0xFFFFFFFF, when)

    def bytes(self):
        nops = len(self.ops) // 8
        return (bytes([self.flags, nops]) + self.ops +
                struct.pack("<III", self.sact, self.ci[0], self.ci[1]) +
                bytes(self.mem))


def packet(seed, slot, cdb, length, dma=True):
    seed.cmd(1, slot, h2d(0xA0, features=1 if dma else 0),
             [(DATA + 0x1000 * slot, length)] if length else [], cdb,
             HDR_A)


def seeds():
    out = {}

    s = Seed(START0)
    s.cmd(0, 0, h2d(0xEC), [(DATA, 512)])
    out["identify"] = s

    s = Seed(START0)
    s.cmd(0, 0, h2d(0x25, lba=5, count=8), [(DATA, 4096)])
    s.cmd(0, 1, h2d(0xCA, lba=7, count=2), [(DATA + 0x2000, 1024)], hflags=HDR_W)
    s.cmd(0, 2, h2d(0x20, lba=9, count=1), [(DATA + 0x3000, 512)])
    s.cmd(0, 3, h2d(0x34, lba=11, count=1), [(DATA + 0x4000, 512)], hflags=HDR_W)
    out["rw"] = s

    s = Seed(START0 | MSI | 0x10)
    for slot in range(6):
        write = slot % 2
        s.cmd(0, slot, h2d(0x61 if write else 0x60, lba=16 * slot,
                           count=slot << 3, features=2),
              [(DATA + 0x1000 * slot, 1024)], hflags=HDR_W if write else 0,
              ncq=True)
    out["ncq"] = s

    s = Seed(START0)
    s.put(RANGES, struct.pack("<QQQ", 16 | 8 << 48, 24 | 8 << 48, 0))
    s.cmd(0, 0, h2d(0x06, count=1, features=1), [(RANGES, 512)], hflags=HDR_W)
    s.cmd(0, 1, h2d(0xEA))
    out["dsm-flush"] = s

    s = Seed(START0)
    s.cmd(0, 0, h2d(0x2F, lba=0x00, count=1), [(DATA, 512)])
    s.cmd(0, 1, h2d(0x2F, lba=0x30, count=2), [(DATA + 0x1000, 1024)])
    s.cmd(0, 2, h2d(0x47, lba=0x10, count=1), [(DATA + 0x2000, 512)])
    out["logs"] = s

    s = Seed(START0)
    s.cmd(0, 0, h2d(0xEF, count=0x46, features=0x03))
    s.cmd(0, 1, h2d(0xC6, count=8))
    s.cmd(0, 2, h2d(0xC4, lba=3, count=4), [(DATA, 2048)])
    s.cmd(0, 3, h2d(0xE5))
    s.cmd(0, 4, h2d(0x42, lba=100, count=10))
    out["features"] = s

    s = Seed(START0)
    s.cmd(0, 0, h2d(0x25, lba=40, count=4),
          [(DATA + 0x400 * i, 256) for i in range(8)])
    out["fragmented"] = s

    # More PRDs than a backend request takes iovecs: several requests.
    s = Seed(START0)
    s.cmd(0, 0, h2d(0x25, lba=40, count=200),
          [(DATA + 0x200 * i, 512) for i in range(200)])
    out["many-prds"] = s
    s = Seed(START0)
    s.cmd(0, 0, h2d(0x35, lba=80, count=2),
          [(DATA + 8 * i, 6) for i in range(170)] + [(DATA, 4)],
          hflags=HDR_W)
    out["tiny-prds"] = s

    s = Seed(START0)
    s.cmd(0, 0, h2d(0, control=4, c=False), hflags=1 << 8 | 1 << 10)
    s.cmd(0, 1, h2d(0, c=False))
    out["softreset"] = s

    s = Seed(START1)
    s.cmd(1, 0, h2d(0xA1), [(DATA, 512)])
    packet(s, 1, b"\x12\0\0\0\x60", 96, dma=False)
    packet(s, 2, b"\x25", 8)
    packet(s, 3, b"\x28\0\0\0\0\x07\0\0\x02", 4096)
    packet(s, 4, b"\xa8\0\0\0\0\x01\0\0\0\x01", 2048)
    packet(s, 5, b"\x00", 0)
    out["atapi"] = s

    s = Seed(START1)
    packet(s, 0, b"\x43\x02\0\0\0\0\0\0\x40", 64)
    packet(s, 1, b"\x43\0\x01\0\0\0\0\0\x40", 64)
    packet(s, 2, b"\x43\0\x02\0\0\0\0\0\x40", 64)
    packet(s, 3, b"\x46\0\0\0\0\0\0\0\x40", 64)
    packet(s, 4, b"\x4a\x01\0\0\x10\0\0\0\x08", 8)
    packet(s, 5, b"\x5a\0\x3f\0\0\0\0\0\x40", 64)
    packet(s, 6, b"\x1a\0\x2a\0\x40", 64, dma=False)
    packet(s, 7, b"\x1e\0\0\0\x01", 0)
    packet(s, 8, b"\x1b\0\0\0\x02", 0)
    out["atapi-mmc"] = s

    s = Seed(START1)
    packet(s, 0, b"\x2a\0\0\0\0\0\0\0\x01", 2048)
    packet(s, 1, b"\x03\0\0\0\x12", 18, dma=False)
    out["atapi-sense"] = s

    s = Seed(START1)
    packet(s, 0, b"\x03\0\0\0\x12", 18, dma=False)
    s.cmd(1, 1, h2d(0xEC), [(DATA + 0x1000, 512)])
    out["atapi-request-sense"] = s

    s = Seed(START1)
    s.cmd(1, 0, h2d(0x08))
    s.cmd(1, 1, h2d(0xEF, count=0x22, features=0x03))
    s.cmd(1, 2, h2d(0xE5))
    s.cmd(1, 3, h2d(0xE7))
    out["atapi-ata"] = s

    s = Seed(START0)
    for slot, (sub, count) in enumerate([(0x02, 0), (0x82, 0), (0xAA, 0),
                                         (0x55, 0), (0x66, 0), (0xCC, 0),
                                         (0x03, 0x0C), (0x03, 0x01)]):
        s.cmd(0, slot, h2d(0xEF, count=count, features=sub))
    s.cmd(0, 8, h2d(0xE0))
    s.cmd(0, 9, h2d(0xE1))
    s.cmd(0, 10, h2d(0x70, lba=5))
    s.cmd(0, 11, h2d(0x40, lba=5, count=3))
    out["ata-misc"] = s

    s = Seed(START0 | RO)
    s.put(RANGES, struct.pack("<Q", 16 | 8 << 48))
    s.cmd(0, 0, h2d(0x06, count=1, features=1), [(RANGES, 512)], hflags=HDR_W)
    out["dsm-ro"] = s

    s = Seed(START0 | START1 | MSI | 0x30)
    s.cmd(0, 0, h2d(0x25, lba=1, count=1), [(DATA, 512)])
    packet(s, 0, b"\x28\0\0\0\0\x02\0\0\x01", 2048)
    out["both"] = s

    s = Seed(START0)
    s.reg(0x118, 4, 0x10)       # PxCMD: ST off
    s.reg(0x12C, 4, 0x301)      # PxSCTL: COMRESET
    s.reg(0x12C, 4, 0x300)
    s.reg(0x118, 4, 0x17)       # ST on again
    s.reg(0x114, 2, 0xFFFF)     # a word write to PxIE
    s.cmd(0, 0, h2d(0x25, lba=1, count=1), [(DATA, 512)])
    out["registers"] = s

    # Requests in flight when ST clears (round 1), the HBA resets (2) or
    # PxCLB moves (3); each round issues the slots again.
    s = Seed(START0 | 0x30)
    s.cmd(0, 0, h2d(0x25, lba=8, count=16), [(DATA, 8192)])
    s.cmd(0, 1, h2d(0x60, lba=64, count=1 << 3, features=4),
          [(DATA + 0x4000, 2048)], ncq=True)
    s.reg(0x118, 4, 0x16, when=1)
    s.reg(0x118, 4, 0x17, when=1)
    s.reg(0x004, 4, 0x01, when=2)
    s.reg(0x100, 4, 0x100000, when=3)
    out["in-flight"] = s
    return out


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, seed in seeds().items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(seed.bytes())


if __name__ == "__main__":
    main()
