#!/usr/bin/env python3
"""Seed inputs for fuzz_virtio_net: well-formed traffic to mutate from.

usage: virtio_net_seeds.py OUTDIR

Each seed is the target's input format (see fuzz_virtio_net.c): flags, no
register accesses, the three queues' descriptors and avail rings, frames
for the backend, then guest memory from 0x40000 (the buffers).
"""
import os
import struct
import sys

BUF = 0x40000
NEXT, WRITE, INDIRECT = 1, 2, 4
INDIRECT_F, EVENT_IDX, MSIX, MRG, OFFL_FN, CTRL, OFFL, RXFIRST = (
    1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80)


def desc(addr, length, flags, nxt):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def queue(descs=(), heads=(), idx=None, event=0):
    out = bytes([len(descs)]) + b"".join(descs)
    out += bytes([len(heads)]) + b"".join(struct.pack("<H", h) for h in heads)
    return out + struct.pack("<HH", len(heads) if idx is None else idx, event)


def frames(*fs):
    return bytes([len(fs)]) + b"".join(struct.pack("<H", len(f)) + f for f in fs)


def seed(flags, rx=queue(), tx=queue(), ctl=queue(), fr=frames(), mem=b""):
    return bytes([flags, 0]) + rx + tx + ctl + fr + mem


def ether(n, seed=1):
    return (b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x0f" + b"\x08\x00" +
            bytes((seed + i * 7) & 0xff for i in range(n - 14)))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    hdr10, hdr12 = b"\x00" * 10, b"\x00" * 12
    f60 = ether(60)
    rx4 = queue([desc(BUF + 0x1000 * i, 2048, WRITE, 0) for i in range(4)],
                [0, 1, 2, 3])
    rx_small = queue([desc(BUF + 0x1000 * i, 100, WRITE, 0) for i in range(4)],
                     [0, 1, 2, 3])
    seeds = {
        "tx": seed(EVENT_IDX, tx=queue([desc(BUF, 10, NEXT, 1),
                                        desc(BUF + 0x10, 60, 0, 0)], [0]),
                   mem=hdr10 + b"\x00" * 6 + f60),
        "tx-mrg": seed(EVENT_IDX | MRG, tx=queue([desc(BUF, 72, 0, 0)], [0]),
                       mem=hdr12 + f60),
        "tx-offload": seed(OFFL_FN | OFFL | MRG,
                           tx=queue([desc(BUF, 12 + 1514, 0, 0)], [0]),
                           mem=b"\x01\x00\x36\x00\x00\x00\x22\x00\x10\x00\x00\x00"
                           + ether(1514)),
        "tx-indirect": seed(INDIRECT_F | MRG,
                            tx=queue([desc(BUF + 0x100, 32, INDIRECT, 0)], [0]),
                            mem=hdr12 + b"\x00" * 0xf4 +
                            desc(BUF, 12, NEXT, 1) + desc(BUF + 0x200, 60, 0, 0)
                            + b"\x00" * 0xe0 + f60),
        "rx": seed(EVENT_IDX, rx=rx4, fr=frames(f60, ether(1514, 3))),
        "rx-mrg": seed(MRG | EVENT_IDX | MSIX, rx=rx_small,
                       fr=frames(ether(250, 4))),
        "rx-offload": seed(OFFL_FN | OFFL | MRG, rx=rx4,
                           fr=frames(b"\x01" + b"\x00" * 11 + ether(3000, 5))),
        "rx-first": seed(RXFIRST | MRG, rx=rx4, fr=frames(f60)),
        "ctrl-promisc": seed(CTRL, ctl=queue([desc(BUF, 2, NEXT, 1),
                                              desc(BUF + 2, 1, NEXT, 2),
                                              desc(BUF + 0x10, 1, WRITE, 0)],
                                             [0]),
                             mem=b"\x00\x00\x01"),
        "ctrl-mactable": seed(CTRL, ctl=queue([desc(BUF, 28, NEXT, 1),
                                               desc(BUF + 0x40, 1, WRITE, 0)],
                                              [0]),
                              mem=b"\x01\x00" + struct.pack("<I", 2) +
                              b"\x02" * 12 + struct.pack("<I", 1) + b"\x01" * 6),
        "ctrl-macaddr": seed(CTRL, ctl=queue([desc(BUF, 8, NEXT, 1),
                                              desc(BUF + 0x40, 1, WRITE, 0)],
                                             [0]),
                             mem=b"\x01\x01\x02\x0a\x0b\x0c\x0d\x0e"),
        "all": seed(CTRL | MRG | EVENT_IDX | INDIRECT_F, rx=rx4,
                    tx=queue([desc(BUF + 0x8000, 72, 0, 0)], [0]),
                    ctl=queue([desc(BUF + 0x9000, 3, NEXT, 1),
                               desc(BUF + 0x9010, 1, WRITE, 0)], [0]),
                    fr=frames(f60),
                    mem=b"\x00" * 0x8000 + hdr12 + f60 +
                    b"\x00" * (0x1000 - 72) + b"\x00\x01\x01"),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
