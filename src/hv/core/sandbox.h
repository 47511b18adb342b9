/*
 * Seccomp filters for device threads (STYLE.md: after set-up a device
 * thread needs few system calls; a filter per thread allows only those).
 *
 * A thread calls sandbox_io_thread() on itself once its set-up is done.
 * A system call outside the list then stops bhyve with one line naming
 * the thread and the call (SIGSYS from SECCOMP_RET_TRAP, caught), instead
 * of letting a compromised device thread do it.
 */
#ifndef SANDBOX_H
#define SANDBOX_H

#include <stddef.h>

/*
 * An I/O worker (block_if): preadv, pwritev, pread, pwrite, fdatasync,
 * fallocate and the discard and zeroing ioctls on fd only;
 * futexes (its queue's lock and condition); the interrupt ioctls the
 * completion path uses (vm_sandbox_ioctls: the vmm layer names them);
 * writes to stdout
 * and stderr (error lines); and what a thread needs to exit. name names
 * the thread in the error line. Returns 0, or -1 with err set (seccomp
 * unavailable): the caller decides whether to run unfiltered.
 */
int sandbox_io_thread(const char *name, int fd, char *err, size_t errlen);

#endif
