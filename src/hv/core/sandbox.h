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

#include <stdbool.h>
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

/*
 * Every thread, closed by default (README, "Sandbox"): the vCPU threads,
 * the event loop and device helper threads get a run-time filter;
 * -o sandbox=off (sandbox_set_enabled(false)) runs without any filter,
 * and then every sandbox_* call installs nothing and returns 0.
 *
 * What each role gets beyond the shared set (run_basics in sandbox.c: I/O
 * on descriptors it holds, futexes, time, timers, eventfds, memory that is
 * never executable, tgkill to bhyve's own threads, the terminal ioctls,
 * the registered (descriptor, request) pairs, and every ioctl on the VM's
 * descriptors but the one that runs a vCPU):
 *
 *   vCPU    KVM_RUN on its own vCPU's descriptor; rt_sigtimedwait (its kick)
 *   loop    epoll_wait, poll, accept (consoles, com tcp=); the teardown:
 *           unlinkat in the registered directories, getdents64, dup
 *   helper  with SANDBOX_ACCEPTS: poll and accept4 (the gdb stub)
 *   all     socket, connect, bind, listen only once a backend registered
 *           sockets (slirp), and read-only openat once one registered it
 *
 * So no thread but a vCPU's runs a vCPU, and none runs another's; a vCPU
 * never waits on the loop's descriptors or accepts a client; nothing but
 * the loop's teardown unlinks.
 */
void sandbox_set_enabled(bool on);
bool sandbox_enabled(void);
/*
 * Set-up is done: every registration below is made. Device helper
 * threads started before wait for it (with sandbox_set_enabled called);
 * bhyve calls it once the machine is built, or failed to be.
 */
void sandbox_seal(void);
/* Whether filters can be installed here: 0, or -1 with err (exit 4). */
int sandbox_check(char *err, size_t errlen);

/*
 * Set-up, before the first thread's filter: what the run-time threads may
 * do beyond the shared set (run_basics in sandbox.c). A VM or vCPU
 * descriptor takes every ioctl; other ioctls are allowed one request on one
 * descriptor at a time; unlinkat in a directory descriptor (the event
 * loop's teardown); and, for the backends that need them at run time,
 * sockets (socket, connect, bind, listen: slirp) and read-only opens
 * (slirp rereads /etc/resolv.conf for its DNS forwarder).
 */
/* Every ioctl on fd: the VM's and vCPUs' descriptors, /dev/vhost-net's. */
void sandbox_allow_any_ioctl(int fd);
void sandbox_allow_ioctl(int fd, unsigned long req);
void sandbox_allow_unlinkat(int dirfd);
void sandbox_allow_sockets(void);
void sandbox_allow_reading_files(void);

/*
 * The calling thread's run-time filter: a vCPU (before its first
 * KVM_RUN; run_fd is vm_vcpu_sandbox_fd()), a device's helper thread
 * (name names it; needs: SANDBOX_* or 0), the event loop (also the
 * teardown after it). 0, or -1 with err set.
 */
int sandbox_vcpu(int run_fd, char *err, size_t errlen);
#define SANDBOX_ACCEPTS 1u /* a helper with a listening socket of its own */
int sandbox_helper(const char *name, unsigned needs, char *err, size_t errlen);
int sandbox_loop(char *err, size_t errlen);
/* A thread whose filter failed: one line and exit status 4. */
void sandbox_fail(const char *err) __attribute__((noreturn));

#endif
