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

/*
 * A device thread with rules of its own: rules(filter, arg) adds them to
 * the libseccomp filter (a scmp_filter_ctx) with seccomp_rule_add and
 * returns 0 or a negative errno. The thread also gets what every device
 * thread has: futexes and exit, error lines on stdout and stderr, and the
 * interrupt ioctls. Returns as sandbox_io_thread.
 */
typedef int (*sandbox_rules_fn)(void *filter, void *arg);
int sandbox_thread(const char *name, sandbox_rules_fn rules, void *arg,
		   char *err, size_t errlen);

#endif
