#!/usr/bin/env python3
"""Seed inputs for fuzz_options: command lines and -k files bhyve takes.

usage: options_seeds.py OUTDIR

Each seed is the target's input (see fuzz_options.c): the -k file's text,
a 0xff byte, then argv[1..] as NUL-separated words.
"""
import os
import sys

KFILE = """# a -k file
name=vm1
memory.size=1G
cpus=2
pci.0.0.0.device=hostbridge
pci.0.4.0.device=virtio-net
pci.0.4.0.backend=tap0
pci.0.5.0.device=virtio-blk
pci.0.5.0.path=/var/vm/%(name).img
lpc.com1.path=stdio
x86.x2apic=false
  rtc.use_localtime = true
"""

SEEDS = {
    "basic": ("", "-c 2 -m 512M -s 0,hostbridge -s 31,lpc -l com1,stdio "
              "-s 4,virtio-blk,/tmp/disk.img vm0"),
    "kfile": (KFILE, "-k k -o config.dump=1 vm1"),
    "flags": ("", "-c cpus=4,sockets=2,cores=2,threads=1 -p 0:1 -p 1:0 -A -H "
              "-P -w -x -u -U 6ba7b810-9dad-11d1-80b4-00c04fd430c8 "
              "-o pci.0.5.0.device=e1000 -f opt/x,string=hi -l fwcfg,qemu "
              "-G w127.0.0.1:1234 -K us -e -S -W -Y -C -D vm2"),
    "devices": ("", "-s 3,ahci,hd:/a,cd:/b -s 5,nvme,/tmp/n,ser=abc "
                "-s 6,virtio-9p,share=/tmp -s 7,virtio-console,port1=/tmp/s "
                "-s 8,virtio-rnd -l milestone,port=0x80 -l pc-testdev "
                "-s 9:1,virtio-net,slirp,hostfwd=tcp:127.0.0.1:2222-:22 "
                "-s 10,e1000,tap1,mac=00:a0:98:12:34:56 -l com2,tcp=127.0.0.1:4444 "
                "-a -m 2G vm3"),
    "refs": ("a=%(b)\nb=%(c)\nc=1\nx86.strictmsr=maybe\n",
             "-kk -o memory.size=%(c)G -o foo.bar=%(a) vm4"),
    "errors": ("", "-c 0 -m 12Q -s 99,nothing -l bad -p x:y vm5 extra"),
}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, (kfile, args) in SEEDS.items():
        data = kfile.encode() + b"\xff" + b"\0".join(
            w.encode() for w in args.split())
        with open(os.path.join(sys.argv[1], "options-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
