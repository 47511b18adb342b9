#!/usr/bin/env python3
"""Seed inputs for fuzz_gdb: gdb sessions as a client sends them.

usage: gdb_seeds.py OUTDIR

Each seed is the target's input (see fuzz_gdb.c): the client's bytes, with
0xfe N standing for "vCPU N stopped" (bit 1 of N: a single step).
"""
import os
import sys


def pkt(data):
    return b"$%s#%02x" % (data, sum(data) % 256)


def session(*cmds):
    out = b""
    for c in cmds:
        out += c if isinstance(c, bytes) and c[:1] in (b"\x03", b"\xfe", b"+", b"-") else pkt(c)
        out += b"+"
    return out


SEEDS = {
    "attach": session(b"qSupported:multiprocess+;swbreak+;hwbreak+",
                      b"vMustReplyEmpty", b"Hg0", b"qTStatus", b"?",
                      b"qfThreadInfo", b"qsThreadInfo", b"qAttached",
                      b"Hc-1", b"qC", b"qOffsets", b"g"),
    "memory": session(b"m1000,40", b"m7fffffffff000,10",
                      b"mffffffffc0000000,8", b"M5000,4:90909090",
                      b"m5000,4", b"m0,100000"),
    "breakpoint": session(b"Z0,5000,1", b"vCont?", b"vCont;c", b"\xfe\x00",
                          b"z0,5000,1", b"vCont;s:1;c", b"\xfe\x02",
                          b"Hg2", b"g", b"T2", b"c", b"\x03", b"Z1,5000,1",
                          b"Z1,6000,1", b"c", b"\xfe\x04", b"z1,5000,1",
                          b"D"),
    "step": session(b"Hc2", b"s", b"\xfe\x03", b"S05", b"\xfe\x02", b"k"),
    "noise": b"+-$#00\x03$m#zz$" + b"a" * 5000 + b"#00" + pkt(b"qAttached"),
}

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
