#!/usr/bin/env python3
"""Seed inputs for fuzz_e1000: well-formed transmit and receive cases.

usage: e1000_seeds.py OUTDIR

Each seed is the target's input format (see fuzz_e1000.c): flags, register
operations (TDT writes, mostly), frames to receive, then guest memory from
0x10000: the transmit ring there, the receive ring at 0x11000 (receive
buffers from 0x20000), packets from 0x30000.
"""
import os
import struct
import sys

BASE = 0x10000
TXR, RXR, RXBUF, PKT = 0x10000, 0x11000, 0x20000, 0x30000
DELIVER = 0x8000  # operation: deliver the queued frames
TDT = 0x3818 >> 2
EOP, IC, TSE, RS, DEXT = 0x01, 0x04, 0x04, 0x08, 0x20
IXSM, TXSM = 0x01, 0x02
TCP, IP = 0x01, 0x02


def op(idx, val):
    return struct.pack("<HI", idx, val & 0xFFFFFFFF)


def legacy(addr, length, cmd, cso=0, css=0):
    return struct.pack("<QHBBBBH", addr, length, cso, cmd, 0, css, 0)


def ctx(ipcss, ipcso, ipcse, tucss, tucso, tucse, paylen, tucmd, hdrlen,
        mss):
    return struct.pack("<BBHBBHIBBH", ipcss, ipcso, ipcse, tucss, tucso,
                       tucse, paylen | (tucmd | DEXT | RS) << 24, 0, hdrlen,
                       mss)


def data(addr, length, cmd, popts):
    return struct.pack("<QIBBH", addr, length | 1 << 20 | (cmd | DEXT) << 24,
                       0, popts, 0)


def tcp_packet(payload):
    eth = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + 20 + payload, 0x1234,
                     0x4000, 64, 6, 0, bytes([10, 0, 0, 1]),
                     bytes([10, 0, 0, 2]))
    tcp = struct.pack(">HHIIBBHHH", 1234, 80, 1000, 0, 0x50, 0x19, 0xFFFF,
                      0, 0)
    return eth + ip + tcp + bytes((i * 7) & 0xFF for i in range(payload))


def memory(ring, packet, rx=True):
    m = bytearray(PKT - BASE + len(packet))
    m[0:len(ring)] = ring
    if rx:
        for i in range(256):
            struct.pack_into("<Q", m, RXR - BASE + 16 * i, RXBUF + 256 * i)
    m[PKT - BASE:] = packet
    return bytes(m)


def seed(flags, ops, frames, mem):
    out = bytes([flags, len(ops)]) + b"".join(ops) + bytes([len(frames)])
    for f in frames:
        out += struct.pack("<H", len(f)) + f
    return out + mem


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    pkt = tcp_packet(3000)
    seeds = {
        "legacy": seed(0, [op(TDT, 2)], [], memory(
            legacy(PKT, 60, RS) + legacy(PKT + 60, 40, EOP | RS), pkt)),
        "legacy_csum": seed(0, [op(TDT, 1)], [], memory(
            legacy(PKT, 100, EOP | IC | RS, 50, 34), pkt)),
        "ctx_csum": seed(1, [op(TDT, 2)], [], memory(
            ctx(14, 24, 33, 34, 50, 0, 0, IP | TCP, 0, 0) +
            data(PKT, 200, EOP | RS, IXSM | TXSM), pkt)),
        "tso": seed(2, [op(TDT, 3)], [], memory(
            ctx(14, 24, 33, 34, 50, 0, 3000, IP | TCP | TSE, 54, 1460) +
            data(PKT, 54, TSE, IXSM | TXSM) +
            data(PKT + 54, 3000, TSE | EOP | RS, IXSM | TXSM), pkt)),
        "tso_udp6": seed(0, [op(TDT, 2)], [], memory(
            ctx(14, 0, 0, 54, 60, 0, 1000, TSE, 62, 500) +
            data(PKT, 1062, TSE | EOP | RS, TXSM), pkt)),
        "rx": seed(4 | 3 << 3, [op(DELIVER, 0)],
                   [tcp_packet(100), tcp_packet(1400), b"\xff" * 20],
                   memory(b"", b"")),
        "rx_lpe": seed(0x40 | 0x20 | 3 << 3, [], [tcp_packet(9000)],
                       memory(b"", b"")),
    }
    for name, s in seeds.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(s)


if __name__ == "__main__":
    main()
