#!/usr/bin/env python3
"""Seed inputs for fuzz_machine: what a guest's drivers do first.

usage: machine_seeds.py OUTDIR

Each seed is a list of the target's 8-byte operations (see fuzz_machine.c):
kind | read << 3 | log2(size) << 4, sel, addr (LE16), value (LE32).
"""
import os
import struct
import sys

PORT, MMIO, CONF1, MEM, DMA, BLKRUN, CAP = 0, 1, 2, 3, 4, 5, 6
SIZES = {1: 0, 2: 1, 4: 2, 8: 3}
# fuzz_machine.c's ports[]: the index is kind 0's sel.
PORTS = [0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x40, 0x43, 0x61, 0x60, 0x64,
         0x92, 0x70, 0x71, 0x80, 0x3f8, 0x2f8, 0x510, 0x511, 0x514, 0x518,
         0x505, 0xe0, 0xe9, 0xf4, 0xcf8, 0xcfc, 0xcf9, 0xb2, 0x400, 0x404,
         0x408, 0x2000]
VBLK_BAR0, VRND_BAR0 = 0xf0, 0xf1


def op(kind, sel=0, addr=0, value=0, read=False, size=1):
    return struct.pack("<BBHI", kind | read << 3 | SIZES[size] << 4, sel,
                       addr, value & 0xffffffff)


def outp(port, value, size=1, off=0):
    return op(PORT, PORTS.index(port), off, value, size=size)


def inp(port, size=1, off=0):
    return op(PORT, PORTS.index(port), off, read=True, size=size)


def cfg(slot, reg, value=None, size=4, func=0):
    addr = func << 12 | reg
    if value is None:
        return op(CONF1, slot, addr, read=True, size=size)
    return op(CONF1, slot, addr, value, size=size)


def mmio(sel, addr, value=None, size=4):
    if value is None:
        return op(MMIO, sel, addr, read=True, size=size)
    return op(MMIO, sel, addr, value, size=size)


def bar_sel(slot, bar):
    """kind 1's sel for BAR bar of 0:slot.0 (3-7: slot 5 when odd)."""
    return bar << 3 | (5 if slot == 5 else 4)


def seeds():
    s = {}
    s["pci-scan"] = b"".join(cfg(d, 0) + cfg(d, 8) + cfg(d, 0x34, size=1)
                             for d in (0, 4, 5, 31, 7))
    # BAR sizing, a move, decode on, then an access at the new place.
    s["bar-move"] = (cfg(4, 0x14, 0xffffffff) + cfg(4, 0x14) +
                     cfg(4, 0x14, 0xc0000000) + cfg(4, 4, 0x7, size=2) +
                     mmio(bar_sel(4, 1), 0) + mmio(bar_sel(4, 1), 0xc, 0) +
                     cfg(4, 0x10, 0xffffffff) + cfg(4, 0x10) +
                     cfg(4, 0x10, 0x6000) + op(PORT, VBLK_BAR0, 0x12,
                                               read=True))
    # MSI-X: table entries in BAR 1, the capability's enable bit, a
    # function mask and back.
    msix = b""
    for e in range(2):
        msix += (mmio(bar_sel(4, 1), 16 * e, 0xfee00000) +
                 mmio(bar_sel(4, 1), 16 * e + 4, 0) +
                 mmio(bar_sel(4, 1), 16 * e + 8, 0x40 + e) +
                 mmio(bar_sel(4, 1), 16 * e + 12, 0))
    msix += op(CAP, 0, 0x11, 0x8000) + op(CAP, 0, 0x11, 0xc000)
    msix += op(CAP, 0, 0x11, 0x8000) + op(CAP, 1, 0x11, 0x8000)
    s["msix"] = msix + mmio(bar_sel(4, 1), 0x800, size=8)
    # virtio legacy bring-up, a ring at page 0x10, a kick.
    vb = b"".join(op(PORT, VBLK_BAR0, 0x12, v) for v in (0, 1, 3))
    vb += op(PORT, VBLK_BAR0, 0x4, 0x10000030, size=4)
    vb += op(PORT, VBLK_BAR0, 0xe, 0, size=2)
    vb += op(PORT, VBLK_BAR0, 0x8, 0x10, size=4)
    vb += op(PORT, VBLK_BAR0, 0x14, 0, size=2)
    vb += op(PORT, VBLK_BAR0, 0x16, 1, size=2)
    vb += op(PORT, VBLK_BAR0, 0x12, 7)
    vb += op(MEM, 1, 0x0000, 0x10000) + op(MEM, 1, 0x0008, 0x00010010)
    vb += op(MEM, 1, 0x1000, 0x00010000)
    vb += op(PORT, VBLK_BAR0, 0x10, 0, size=2) + op(BLKRUN)
    vb += op(PORT, VBLK_BAR0, 0x13, read=True)
    s["virtio-blk"] = vb
    s["virtio-rnd"] = (b"".join(op(PORT, VRND_BAR0, 0x12, v)
                                for v in (0, 1, 3, 7)) +
                       op(PORT, VRND_BAR0, 0x8, 0x20, size=4) +
                       op(PORT, VRND_BAR0, 0x10, 0, size=2))
    # fw_cfg: the signature by port, then the file directory by DMA
    # (control: select 0x19, read; 64 bytes to 0x2000).
    fw = outp(0x510, 0, size=2) + b"".join(inp(0x511) for _ in range(4))
    fw += inp(0x514, size=4) + outp(0x510, 1, size=2) + inp(0x511)
    fw += op(DMA, 0, 64, 0x19 << 16 | 0x08 | 0x02)
    fw += op(DMA, 1, 16, 0x20 << 16 | 0x08 | 0x04)
    fw += op(DMA, 0xff, 8, 0x02)
    s["fwcfg"] = fw
    hp = mmio(0, 0, size=8) + mmio(0, 0x10, 1) + mmio(0, 0xf0, size=8)
    for t in range(3):
        hp += mmio(0, 0x100 + 0x20 * t, 0x4c | t << 9)
        hp += mmio(0, 0x108 + 0x20 * t, 0x1000)
    hp += mmio(0, 0x20, 0) + mmio(0, 0x20, 7) + mmio(0, 0x10, 3)
    s["hpet"] = hp
    rtc = b""
    for reg in list(range(10)) + [0x0a, 0x0b, 0x0c, 0x0d, 0x32]:
        rtc += outp(0x70, reg) + inp(0x71)
    rtc += outp(0x70, 0x0b) + outp(0x71, 0x86) + outp(0x70, 0) + outp(0x71, 0x59)
    rtc += outp(0x70, 0x0a) + outp(0x71, 0x26) + outp(0x70, 0x0b) + outp(0x71, 0x46)
    s["rtc"] = rtc
    s["pm"] = (outp(0xb2, 0xa0) + inp(0x400, size=4) + outp(0x400, 0x01000000, size=4) +
               inp(0x404, size=2) + outp(0x404, 0x1, size=2) + inp(0x408, size=4) +
               outp(0xb2, 0xa1) + outp(0x404, 0x3400, size=2) + outp(0xcf9, 0x6))
    s["kbd"] = (outp(0x64, 0xaa) + inp(0x60) + outp(0x64, 0x20) + inp(0x60) +
                outp(0x64, 0x60) + outp(0x60, 0x47) + outp(0x64, 0xd1) +
                outp(0x60, 0xdf) + inp(0x64) + outp(0x60, 0xff) + inp(0x60) +
                inp(0x92) + outp(0x92, 0x2) + outp(0x64, 0xfe))
    uart = b""
    for port in (0x3f8, 0x2f8):
        uart += (outp(port, 0x80, off=3) + outp(port, 1) + outp(port, 0, off=1) +
                 outp(port, 3, off=3) + outp(port, 0xc7, off=2) + outp(port, 0x0b, off=4) +
                 outp(port, 0x0f, off=1) + outp(port, ord("A")) + inp(port, off=5) +
                 inp(port, off=2) + outp(port, 0x1b, off=4) + outp(port, ord("B")) +
                 inp(port) + inp(port, off=6) + outp(port, 0x55, off=7) + inp(port, off=7))
    s["uart"] = uart
    s["ecam"] = (mmio(0 << 3 | 1, 0) + mmio(2 << 3 | 1, 0) + mmio(2 << 3 | 1, 0x100) +
                 mmio(2 << 3 | 1, 0x14, 0xffffffff) + mmio(2 << 3 | 1, 0x14) +
                 mmio(2 << 3 | 1, 0x4, 0x6, size=2) + mmio(15 << 3 | 1, 0x8000) +
                 mmio(16 << 3 | 1, 0))
    s["testdev"] = (outp(0xe0, 0x12345678, size=4) + inp(0xe0, size=4) +
                    mmio(2, 0x10, 0xdeadbeef) + mmio(2, 0x10, size=8) +
                    outp(0x2000, 1, off=4) + outp(0x2000, 0, off=4) +
                    outp(0x505, 1) + inp(0x505) + outp(0xe9, ord("m")) +
                    outp(0x80, 0x42) + outp(0xf4, 0, size=4))
    pic = (outp(0x20, 0x11) + outp(0x21, 0x20) + outp(0x21, 4) + outp(0x21, 1) +
           outp(0xa0, 0x11) + outp(0xa1, 0x28) + outp(0xa1, 2) + outp(0xa1, 1) +
           outp(0x21, 0xfb) + outp(0x20, 0x0b) + inp(0x20) + outp(0x4d0, 0x20, off=1) +
           outp(0x43, 0x34) + outp(0x40, 0x9b) + outp(0x40, 0x2e) + outp(0x43, 0) +
           inp(0x40) + inp(0x40) + outp(0x61, 1) + inp(0x61))
    s["pic-pit"] = pic
    return s


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(sys.argv[1], "machine-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
