/* Seccomp filters for device threads (sandbox.h), with libseccomp. */
#include <errno.h>
#include <linux/fs.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "sandbox.h"
#include "vmm.h"

/* What any thread needs to block, wake, report a fault and exit. */
static const int thread_basics[] = {
    SCMP_SYS(futex),	       SCMP_SYS(exit),
    SCMP_SYS(exit_group),      SCMP_SYS(rt_sigreturn),
    SCMP_SYS(restart_syscall), SCMP_SYS(madvise),
    SCMP_SYS(munmap),	       SCMP_SYS(rseq),
    SCMP_SYS(sched_yield),     SCMP_SYS(nanosleep),
    SCMP_SYS(clock_nanosleep), SCMP_SYS(clock_gettime),
    SCMP_SYS(gettid),	       SCMP_SYS(getpid),
    SCMP_SYS(tgkill),	       SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(sigaltstack), /* ASan's thread exit drops its signal stack */
};

#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define SANDBOX_ASAN 1
#elif defined(__has_feature) /* clang */
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif

#ifdef SANDBOX_ASAN
/*
 * ASan builds only (make check's unit tests, the fuzz targets): its
 * runtime maps shadow memory and reads the thread's stack bounds when a
 * thread ends, and when it reports. Never in bhyve's own build.
 */
static const int sanitizer_extras[] = {
    SCMP_SYS(mmap),	 SCMP_SYS(mprotect),  SCMP_SYS(sched_getaffinity),
    SCMP_SYS(getrlimit), SCMP_SYS(prlimit64), SCMP_SYS(openat),
    SCMP_SYS(read),	 SCMP_SYS(close),     SCMP_SYS(readlink),
};
#endif

/*
 * SIGSYS from a filter: one line, then bhyve's error status. Only
 * async-signal-safe calls, and only ones every filter allows.
 */
static void
on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	char msg[160];
	int n;

	(void)sig;
	(void)ctx;
	n = snprintf(msg, sizeof(msg),
		     "bhyve: a sandboxed device thread made system call %d, "
		     "which its seccomp filter does not allow; stopping\n",
		     si->si_syscall);
	if (n > 0)
		(void)!write(STDERR_FILENO, msg,
			     (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg));
	_exit(4);
}

static int
catch_sigsys(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return -1;
	/* A blocked SIGSYS would be delivered with the default action. */
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	return pthread_sigmask(SIG_UNBLOCK, &set, NULL) ? -1 : 0;
}

static int
allow(scmp_filter_ctx f, int nr, unsigned n, const struct scmp_arg_cmp *cmp)
{
	return seccomp_rule_add_array(f, SCMP_ACT_ALLOW, nr, n, cmp);
}

/* Discard and zeroing on a block device image. */
static const unsigned long blk_ioctls[] = {BLKDISCARD, BLKZEROOUT};

/*
 * What every sandboxed device thread gets: the thread basics, the
 * sanitizers' extras, error lines on stdout and stderr, and the interrupt
 * ioctls the vmm layer names (a device's completion).
 */
static int
common_rules(scmp_filter_ctx f)
{
	const struct scmp_arg_cmp out = SCMP_A0(SCMP_CMP_EQ, STDOUT_FILENO);
	const struct scmp_arg_cmp errfd = SCMP_A0(SCMP_CMP_EQ, STDERR_FILENO);
	unsigned long reqs[4];
	int nreqs = vm_sandbox_ioctls(reqs, 4);
	int rc = 0;

	for (size_t i = 0; i < sizeof(thread_basics) / sizeof(int); i++)
		rc |= allow(f, thread_basics[i], 0, NULL);
#ifdef SANDBOX_ASAN
	for (size_t i = 0; i < sizeof(sanitizer_extras) / sizeof(int); i++)
		rc |= allow(f, sanitizer_extras[i], 0, NULL);
#endif
	rc |= allow(f, SCMP_SYS(write), 1, &out);
	rc |= allow(f, SCMP_SYS(write), 1, &errfd);
	for (int i = 0; i < nreqs; i++) {
		const struct scmp_arg_cmp req = SCMP_A1(SCMP_CMP_EQ, reqs[i]);

		rc |= allow(f, SCMP_SYS(ioctl), 1, &req);
	}
	return rc;
}

static int
io_rules(scmp_filter_ctx f, int fd)
{
	const struct scmp_arg_cmp on_fd = SCMP_A0(SCMP_CMP_EQ, (unsigned)fd);
	int rc = 0;

	rc |= allow(f, SCMP_SYS(preadv), 1, &on_fd);
	rc |= allow(f, SCMP_SYS(pwritev), 1, &on_fd);
	rc |= allow(f, SCMP_SYS(pread64), 1, &on_fd); /* bounced O_DIRECT */
	rc |= allow(f, SCMP_SYS(pwrite64), 1, &on_fd);
	rc |= allow(f, SCMP_SYS(fdatasync), 1, &on_fd);
	rc |= allow(f, SCMP_SYS(fallocate), 1, &on_fd); /* discard, zero */
	for (size_t i = 0; i < sizeof(blk_ioctls) / sizeof(blk_ioctls[0]);
	     i++) {
		const struct scmp_arg_cmp both[2] = {
		    on_fd, SCMP_A1(SCMP_CMP_EQ, blk_ioctls[i])};

		rc |= allow(f, SCMP_SYS(ioctl), 2, both);
	}
	return rc;
}

static int
blk_rules(void *f, void *arg)
{
	return io_rules(f, *(const int *)arg);
}

int
sandbox_io_thread(const char *name, int fd, char *err, size_t errlen)
{
	return sandbox_thread(name, blk_rules, &fd, err, errlen);
}

int
sandbox_thread(const char *name, sandbox_rules_fn rules, void *arg, char *err,
	       size_t errlen)
{
	scmp_filter_ctx f;
	int rc;

	if (catch_sigsys() < 0) {
		snprintf(err, errlen, "%s: cannot catch SIGSYS: %s", name,
			 strerror(errno));
		return -1;
	}
	f = seccomp_init(SCMP_ACT_TRAP);
	if (!f) {
		snprintf(err, errlen, "%s: seccomp_init failed", name);
		return -1;
	}
	rc = common_rules(f);
	if (rc == 0)
		rc = rules(f, arg);
	if (rc == 0)
		rc = seccomp_load(f);
	seccomp_release(f);
	if (rc != 0) {
		snprintf(err, errlen,
			 "%s: cannot install its seccomp filter: %s", name,
			 strerror(-rc));
		return -1;
	}
	return 0;
}
