/* Seccomp filters for device threads (sandbox.h), with libseccomp. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <termios.h>
#include <ucontext.h>
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
	char msg[240];
	int n;

	(void)sig;
	(void)ctx;
#if defined(__x86_64__)
	const greg_t *r = ((ucontext_t *)ctx)->uc_mcontext.gregs;

	n = snprintf(msg, sizeof(msg),
		     "bhyve: a sandboxed thread made system call %d (0x%llx, "
		     "0x%llx, ...), which its seccomp filter does not allow; "
		     "stopping (-o sandbox=off runs without filters)\n",
		     si->si_syscall, (unsigned long long)r[REG_RDI],
		     (unsigned long long)r[REG_RSI]);
#else
	n = snprintf(msg, sizeof(msg),
		     "bhyve: a sandboxed thread made system call %d, which "
		     "its seccomp filter does not allow; stopping "
		     "(-o sandbox=off runs without filters)\n",
		     si->si_syscall);
#endif
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

/*
 * What set-up registered for the run-time filters. Written by the main
 * thread before the first filter is built, read only after: no lock.
 */
#define SB_MAX_FDS (VM_MAXCPU + 32)
#define SB_MAX_IOCTLS 64
#define SB_MAX_DIRS 64
static struct {
	bool off;
	int anyioctl_fds[SB_MAX_FDS]; /* every ioctl */
	int nany;
	struct {
		int fd;
		unsigned long req;
	} ioctls[SB_MAX_IOCTLS];
	int nioctls;
	int dirfds[SB_MAX_DIRS]; /* unlinkat at teardown (event loop) */
	int ndirs;
	bool sockets;	/* a backend makes connections at run time */
	bool readfiles; /* a backend opens files read-only at run time */
	bool overflow;	/* a registration did not fit: refuse to run */
} sb;

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

/*
 * Build a filter (the device threads' common rules first when common is
 * set, then rules) and load it on the calling thread. 0, or -1 with err.
 */
static int
install(const char *name, bool common, sandbox_rules_fn rules, void *arg,
	char *err, size_t errlen)
{
	scmp_filter_ctx f;
	int rc;

	if (sb.off)
		return 0;
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
	rc = common ? common_rules(f) : 0;
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

int
sandbox_thread(const char *name, sandbox_rules_fn rules, void *arg, char *err,
	       size_t errlen)
{
	return install(name, true, rules, arg, err, errlen);
}

/*
 * The gate: bhyve (sandbox_set_enabled) holds device helper threads at
 * their filter until set-up has registered everything (sandbox_seal), so
 * a thread started early still gets the VM's descriptors. Without the
 * gate (unit tests) a helper installs what is registered at once.
 */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gated, sealed;

void
sandbox_set_enabled(bool on)
{
	sb.off = !on;
	gated = true;
}

void
sandbox_seal(void)
{
	pthread_mutex_lock(&gate_lock);
	sealed = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

static void
wait_sealed(void)
{
	if (!gated)
		return;
	pthread_mutex_lock(&gate_lock);
	while (!sealed)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
}

bool
sandbox_enabled(void)
{
	return !sb.off;
}

/*
 * A filter like the real ones (SCMP_ACT_TRAP for one call no thread
 * makes), loaded on a thread of its own that ends at once: what fails
 * there would fail in the first device thread, after set-up had begun.
 */
static void *
probe_thread(void *arg)
{
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
	int rc = -ENOMEM;

	if (f) {
		rc =
		    seccomp_rule_add(f, SCMP_ACT_TRAP, SCMP_SYS(kexec_load), 0);
		if (rc == 0)
			rc = seccomp_load(f);
		seccomp_release(f);
	}
	*(int *)arg = rc;
	return NULL;
}

int
sandbox_check(char *err, size_t errlen)
{
	pthread_t t;
	int rc = -EAGAIN;

	if (sb.off)
		return 0;
	if (pthread_create(&t, NULL, probe_thread, &rc) == 0)
		pthread_join(t, NULL);
	if (rc != 0) {
		/* libseccomp says ECANCELED for what the kernel refused. */
		snprintf(err, errlen,
			 "cannot install a seccomp filter here (%s); -o "
			 "sandbox=off runs bhyve without its sandbox",
			 rc == -ECANCELED ? "the kernel refused it"
					  : strerror(-rc));
		return -1;
	}
	return 0;
}

void
sandbox_allow_any_ioctl(int fd)
{
	if (fd < 0)
		return;
	if (sb.nany < SB_MAX_FDS)
		sb.anyioctl_fds[sb.nany++] = fd;
	else
		sb.overflow = true;
}

void
sandbox_allow_ioctl(int fd, unsigned long req)
{
	if (sb.nioctls >= SB_MAX_IOCTLS) {
		sb.overflow = true;
	} else {
		sb.ioctls[sb.nioctls].fd = fd;
		sb.ioctls[sb.nioctls].req = req;
		sb.nioctls++;
	}
}

void
sandbox_allow_unlinkat(int dirfd)
{
	if (dirfd < 0)
		return;
	if (sb.ndirs < SB_MAX_DIRS)
		sb.dirfds[sb.ndirs++] = dirfd;
	else
		sb.overflow = true;
}

void
sandbox_allow_sockets(void)
{
	sb.sockets = true;
}

void
sandbox_allow_reading_files(void)
{
	sb.readfiles = true;
}

/*
 * What every thread that runs the machine shares (vCPUs, the event loop, a
 * device's helper thread): memory for malloc (never executable), I/O on
 * descriptors it already holds, waiting on futexes, time, timers and
 * eventfds; no open, exec, fork, socket or connect. What only some roles
 * need is in the lists after it (sandbox.h has the table).
 */
static const int run_basics[] = {
    SCMP_SYS(brk),
    SCMP_SYS(mremap),
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),
    SCMP_SYS(pwritev),
    SCMP_SYS(sendto),
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvfrom),
    SCMP_SYS(recvmsg),
    SCMP_SYS(sendmmsg),
    SCMP_SYS(recvmmsg),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(close),
    SCMP_SYS(fcntl),
    SCMP_SYS(fstat),
    SCMP_SYS(lseek),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    SCMP_SYS(shutdown),
    SCMP_SYS(setsockopt),
    SCMP_SYS(getsockopt),
    SCMP_SYS(getsockname),
    SCMP_SYS(getpeername),
    SCMP_SYS(timerfd_settime),
    SCMP_SYS(timerfd_gettime),
    SCMP_SYS(getrandom),
    SCMP_SYS(getuid),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(clock_getres),
    SCMP_SYS(uname),
    /* Anonymous descriptors: the RTC's and e1000's timers start late. */
    SCMP_SYS(timerfd_create),
    SCMP_SYS(eventfd2),
};

/* The event loop: waiting on its descriptors, and clients it accepts. */
static const int loop_calls[] = {
    SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(poll),
    SCMP_SYS(ppoll),	  SCMP_SYS(pselect6),	 SCMP_SYS(accept),
    SCMP_SYS(accept4),
};

/* A helper thread serving a listening socket of its own (the gdb stub). */
static const int accepting_calls[] = {
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(accept4),
};

/* Terminal and socket ioctls on any descriptor (stdio, a com port's tty). */
static const unsigned long any_fd_ioctls[] = {
    TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ, FIONREAD, FIONBIO,
};

/* What slirp makes at run time: its guest's connections and listeners. */
static const int socket_calls[] = {
    SCMP_SYS(socket),
    SCMP_SYS(connect),
    SCMP_SYS(bind),
    SCMP_SYS(listen),
};

enum role { ROLE_VCPU, ROLE_LOOP, ROLE_HELPER };

struct run_role {
	enum role role;
	int run_fd;	/* ROLE_VCPU: the descriptor it may run its vCPU on */
	unsigned needs; /* ROLE_HELPER: SANDBOX_* */
};

static int
allow_list(scmp_filter_ctx f, const int *calls, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		rc |= allow(f, calls[i], 0, NULL);
	return rc;
}

#define ALLOW_LIST(f, a) allow_list(f, a, sizeof(a) / sizeof(a[0]))

/*
 * The VM's descriptors take every ioctl but the one that runs a vCPU,
 * which only a vCPU thread may issue, on its own vCPU's descriptor.
 */
static int
vm_ioctl_rules(scmp_filter_ctx f, const struct run_role *r)
{
	unsigned long run = vm_sandbox_run_ioctl();
	int rc = 0;

	for (int i = 0; i < sb.nany; i++) {
		const struct scmp_arg_cmp fd_not_run[2] = {
		    SCMP_A0(SCMP_CMP_EQ, (unsigned)sb.anyioctl_fds[i]),
		    SCMP_A1(SCMP_CMP_NE, run)};

		rc |= allow(f, SCMP_SYS(ioctl), run ? 2 : 1, fd_not_run);
	}
	if (r->role == ROLE_VCPU && run && r->run_fd >= 0) {
		const struct scmp_arg_cmp own[2] = {
		    SCMP_A0(SCMP_CMP_EQ, (unsigned)r->run_fd),
		    SCMP_A1(SCMP_CMP_EQ, run)};

		rc |= allow(f, SCMP_SYS(ioctl), 2, own);
	}
	return rc;
}

static int
run_rules(scmp_filter_ctx f, const struct run_role *r)
{
	const struct scmp_arg_cmp self = SCMP_A0(SCMP_CMP_EQ, getpid());
	const struct scmp_arg_cmp noexec =
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	const struct scmp_arg_cmp emptypath =
	    SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH);
	int rc = 0;

	for (size_t i = 0; i < sizeof(thread_basics) / sizeof(int); i++)
		if (thread_basics[i] != SCMP_SYS(tgkill))
			rc |= allow(f, thread_basics[i], 0, NULL);
	rc |= allow(f, SCMP_SYS(tgkill), 1, &self); /* our own threads */
#ifdef SANDBOX_ASAN
	/* Never executable memory, even for the sanitizers. */
	for (size_t i = 0; i < sizeof(sanitizer_extras) / sizeof(int); i++)
		if (sanitizer_extras[i] != SCMP_SYS(mmap) &&
		    sanitizer_extras[i] != SCMP_SYS(mprotect))
			rc |= allow(f, sanitizer_extras[i], 0, NULL);
#endif
	rc |= ALLOW_LIST(f, run_basics);
	rc |= allow(f, SCMP_SYS(mmap), 1, &noexec);
	rc |= allow(f, SCMP_SYS(mprotect), 1, &noexec);
	rc |= allow(f, SCMP_SYS(newfstatat), 1, &emptypath); /* fstat */
	rc |= vm_ioctl_rules(f, r);
	for (size_t i = 0; i < sizeof(any_fd_ioctls) / sizeof(any_fd_ioctls[0]);
	     i++) {
		const struct scmp_arg_cmp req =
		    SCMP_A1(SCMP_CMP_EQ, any_fd_ioctls[i]);

		rc |= allow(f, SCMP_SYS(ioctl), 1, &req);
	}
	for (int i = 0; i < sb.nioctls; i++) {
		const struct scmp_arg_cmp both[2] = {
		    SCMP_A0(SCMP_CMP_EQ, (unsigned)sb.ioctls[i].fd),
		    SCMP_A1(SCMP_CMP_EQ, sb.ioctls[i].req)};

		rc |= allow(f, SCMP_SYS(ioctl), 2, both);
	}
	/* slirp's sockets: made wherever a frame reaches it, any thread. */
	if (sb.sockets)
		rc |= ALLOW_LIST(f, socket_calls);
	if (sb.readfiles) {
		const struct scmp_arg_cmp rdonly =
		    SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC,
			    O_RDONLY);

		rc |= allow(f, SCMP_SYS(openat), 1, &rdonly);
		rc |= allow(f, SCMP_SYS(newfstatat), 0, NULL); /* stat */
	}
	switch (r->role) {
	case ROLE_VCPU:
		/* It takes the kick that ended its KVM_RUN (vmm_kvm.c). */
		rc |= allow(f, SCMP_SYS(rt_sigtimedwait), 0, NULL);
		break;
	case ROLE_HELPER:
		if (r->needs & SANDBOX_ACCEPTS)
			rc |= ALLOW_LIST(f, accepting_calls);
		break;
	case ROLE_LOOP:
		rc |= ALLOW_LIST(f, loop_calls);
		/* Teardown: the instance's files, and a console's socket. */
		rc |= allow(f, SCMP_SYS(getdents64), 0, NULL);
		rc |= allow(f, SCMP_SYS(dup), 0, NULL);
		for (int i = 0; i < sb.ndirs; i++) {
			const struct scmp_arg_cmp dir =
			    SCMP_A0(SCMP_CMP_EQ, (unsigned)sb.dirfds[i]);

			rc |= allow(f, SCMP_SYS(unlinkat), 1, &dir);
		}
		break;
	}
	return rc;
}

static int
run_rules_fn(void *f, void *arg)
{
	return run_rules(f, arg);
}

static int
install_run(const char *name, const struct run_role *r, char *err,
	    size_t errlen)
{
	wait_sealed();
	/* A dropped registration would stop bhyve later, mid-run. */
	if (sb.overflow && !sb.off) {
		snprintf(err, errlen,
			 "%s: more descriptors than the sandbox's lists hold "
			 "(too many devices)",
			 name);
		return -1;
	}
	return install(name, false, run_rules_fn, (void *)r, err, errlen);
}

int
sandbox_vcpu(int run_fd, char *err, size_t errlen)
{
	const struct run_role r = {ROLE_VCPU, run_fd, 0};

	return install_run("vcpu", &r, err, errlen);
}

int
sandbox_helper(const char *name, unsigned needs, char *err, size_t errlen)
{
	const struct run_role r = {ROLE_HELPER, -1, needs};

	return install_run(name, &r, err, errlen);
}

int
sandbox_loop(char *err, size_t errlen)
{
	const struct run_role r = {ROLE_LOOP, -1, 0};

	return install_run("event loop", &r, err, errlen);
}

void
sandbox_fail(const char *err)
{
	fprintf(stderr,
		"bhyve: %s; stopping (-o sandbox=off runs without filters)\n",
		err);
	_exit(4);
}
