#!/usr/bin/env python3
"""noseccomp.py PROGRAM ARGS...: run PROGRAM where no seccomp filter can be
installed, as on a kernel without CONFIG_SECCOMP_FILTER: a filter of our
own (classic BPF, x86-64) makes seccomp(2) fail with ENOSYS and
prctl(PR_SET_SECCOMP) with EINVAL, and lets everything else through.
sandbox_test.sh's cannot_install case uses it."""
import ctypes
import os
import struct
import sys

NR_SECCOMP, NR_PRCTL = 317, 157
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
ENOSYS, EINVAL = 38, 22
LD_ABS_W, JEQ_K, RET_K = 0x20, 0x15, 0x06


def ins(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: noseccomp.py PROGRAM ARGS...")
    prog = b"".join([
        ins(LD_ABS_W, 0, 0, 0),  # 0: the system call number
        ins(JEQ_K, 0, 1, NR_SECCOMP),  # 1: seccomp?
        ins(RET_K, 0, 0, RET_ERRNO | ENOSYS),  # 2
        ins(JEQ_K, 0, 3, NR_PRCTL),  # 3: prctl?
        ins(LD_ABS_W, 0, 0, 16),  # 4: its first argument (low half)
        ins(JEQ_K, 0, 1, PR_SET_SECCOMP),  # 5
        ins(RET_K, 0, 0, RET_ERRNO | EINVAL),  # 6
        ins(RET_K, 0, 0, RET_ALLOW),  # 7
    ])
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = struct.pack("HxxxxxxQ", len(prog) // 8, ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p,
                           ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER,
                       ctypes.addressof(fbuf), 0, 0) != 0:
        sys.exit("noseccomp.py: cannot install the filter: " +
                 os.strerror(ctypes.get_errno()))
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
