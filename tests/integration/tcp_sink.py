#!/usr/bin/env python3
"""tcp_sink.py ADDR PORT [READY]: a TCP sink. Reads each connection's
bytes to EOF, prints "posted SHA256" and answers with that SHA-256 (busybox
nc sends its stdin, shuts down its side, prints the answer). Creates the
file READY once it listens."""
import hashlib
import socket
import sys

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
if len(sys.argv) > 3:
    open(sys.argv[3], "w").close()
while True:
    c, _ = s.accept()
    h = hashlib.sha256()
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        h.update(b)
    print("posted", h.hexdigest(), flush=True)
    c.sendall(h.hexdigest().encode())
    c.close()
