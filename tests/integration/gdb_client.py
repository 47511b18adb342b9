#!/usr/bin/env python3
"""A minimal gdb remote-protocol client for gdb_test.sh's interrupt case.

usage: gdb_client.py PORT

gdb in batch mode cannot wait for the stop that its `interrupt` command
asks for, so this speaks the protocol itself: attach (the stub stops the
guest), read the stop reason and rip, continue, send Ctrl-C (0x03) a
second later, expect a SIGINT stop reply, kill. Prints one line per step.
"""
import socket
import sys
import time


def packet(data):
    return b"$%s#%02x" % (data, sum(data) % 256)


class Client:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""

    def reply(self):
        """The next packet's data, acked; '+' acks are skipped."""
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start + 1) if start >= 0 else -1
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                data = self.buf[start + 1:end]
                if int(self.buf[end + 1:end + 3], 16) != sum(data) % 256:
                    sys.exit("bad checksum from the stub: %r" % self.buf)
                self.buf = self.buf[end + 3:]
                self.s.sendall(b"+")
                return data
            more = self.s.recv(4096)
            if not more:
                sys.exit("the stub closed the connection")
            self.buf += more

    def cmd(self, data):
        self.s.sendall(packet(data))
        return self.reply()


def main():
    c = Client(int(sys.argv[1]))
    print("stop:", c.cmd(b"?").decode())
    regs = c.cmd(b"g")
    rip = int.from_bytes(bytes.fromhex(regs[16 * 16:17 * 16].decode()),
                         "little")
    print("rip: 0x%x" % rip)
    c.s.sendall(packet(b"c"))
    time.sleep(1)
    c.s.sendall(b"\x03")
    print("interrupt:", c.reply().decode())
    regs = c.cmd(b"g")
    rip = int.from_bytes(bytes.fromhex(regs[16 * 16:17 * 16].decode()),
                         "little")
    print("rip: 0x%x" % rip)
    c.s.sendall(packet(b"k"))
    time.sleep(0.5)


main()
