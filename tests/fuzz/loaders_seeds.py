#!/usr/bin/env python3
"""Seed inputs for fuzz_loaders: small well-formed kernels to mutate from.

usage: loaders_seeds.py OUTDIR

Each seed is the target's input (see fuzz_loaders.c): a flags byte (bit 0
multiboot, bit 1 an initrd or module in the last 64 bytes), then the image:
the same shapes as tests/unit/test_bzimage.c and test_multiboot.c build,
with small payloads.
"""
import os
import struct
import sys

MB_MAGIC = 0x1BADB002
MB_PAGE_ALIGN, MB_MEMORY_INFO, MB_AOUT_KLUDGE = 1, 2, 0x10000


def put(b, off, fmt, *v):
    struct.pack_into("<" + fmt, b, off, *v)


def bzimage(k64=True, setup_sects=4, payload=0x400):
    """A Linux boot protocol 2.15 header (bzImage)."""
    b = bytearray((setup_sects + 1) * 512 + payload)
    b[0x1f1] = setup_sects
    put(b, 0x1f4, "I", payload // 16)
    put(b, 0x1fe, "H", 0xaa55)
    b[0x200:0x202] = b"\xeb\x6a"
    b[0x202:0x206] = b"HdrS"
    put(b, 0x206, "H", 0x020f)
    b[0x211] = 0x01  # LOADED_HIGH
    put(b, 0x214, "I", 0x100000)
    put(b, 0x22c, "I", 0x7fffffff)
    put(b, 0x230, "I", 0x200000)
    b[0x234], b[0x235] = 1, 21
    put(b, 0x236, "H", 0x7f if k64 else 0x7e)
    put(b, 0x238, "I", 2047)
    put(b, 0x258, "Q", 0x1000000)
    put(b, 0x260, "I", 4 << 20)
    for i in range(payload):
        b[(setup_sects + 1) * 512 + i] = (i * 7 + 3) & 0xff
    return bytes(b)


def vmlinux():
    """An ELF64 vmlinux: text at 16 MiB, data with bss, a note."""
    b = bytearray(0x1a00)
    b[0:7] = b"\x7fELF\x02\x01\x01"
    put(b, 16, "HHIQQQIHHHHHH", 2, 62, 1, 0x1000040, 64, 0, 0, 64, 56, 3,
        0, 0, 0)
    phdrs = [(1, 7, 0x1000, 0xffffffff81000000, 0x1000000, 0x400, 0x400),
             (1, 6, 0x1400, 0xffffffff81200000, 0x1200000, 0x400, 0x3000),
             (4, 4, 0x1800, 0, 0x10, 0x10, 0x10)]
    for i, (t, fl, off, va, pa, fsz, msz) in enumerate(phdrs):
        put(b, 64 + 56 * i, "IIQQQQQQ", t, fl, off, va, pa, fsz, msz, 0x1000)
    for i in range(0x1000, len(b)):
        b[i] = (i * 5 + 1) & 0xff
    return bytes(b)


def mb_header(flags):
    return struct.pack("<III", MB_MAGIC, flags, -(MB_MAGIC + flags) & 0xffffffff)


def mb_elf():
    """An ELF32 multiboot kernel linked high, loaded at 1 MiB."""
    seg = 0x200
    b = bytearray(seg + 0x300)
    b[0:7] = b"\x7fELF\x01\x01\x01"
    put(b, 16, "HHIIIIIHHHHHH", 2, 3, 1, 0xc0100010, 52, 0, 0, 52, 32, 2,
        0, 0, 0)
    put(b, 52, "8I", 1, seg, 0xc0100000, 0x100000, 0x200, 0x1000, 7, 0x1000)
    put(b, 84, "8I", 1, seg + 0x200, 0x200000, 0x200000, 0x100, 0x100, 7,
        0x1000)
    for i in range(seg, len(b)):
        b[i] = (i * 13 + 1) & 0xff
    b[seg:seg + 12] = mb_header(MB_PAGE_ALIGN | MB_MEMORY_INFO)
    return bytes(b)


def mb_aout():
    """A flat image loaded through the a.out kludge's address fields."""
    b = bytearray((i * 5 + 2) & 0xff for i in range(0x400))
    b[0x40:0x4c] = mb_header(MB_AOUT_KLUDGE | MB_MEMORY_INFO)
    put(b, 0x4c, "5I", 0x100040, 0x100000, 0, 0x102000, 0x100080)
    return bytes(b)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rd = bytes(range(64))
    seeds = {
        "bzimage": b"\x00" + bzimage(),
        "bzimage-initrd": b"\x02" + bzimage() + rd,
        "bzimage-32": b"\x04" + bzimage(k64=False, setup_sects=1),
        "vmlinux": b"\x00" + vmlinux(),
        "vmlinux-initrd": b"\x02" + vmlinux() + rd,
        "mb-elf": b"\x01" + mb_elf(),
        "mb-elf-module": b"\x03" + mb_elf() + rd,
        "mb-aout": b"\x01" + mb_aout(),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
