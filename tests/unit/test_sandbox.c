/*
 * The seccomp filters (src/hv/core/sandbox.c), in child processes (a
 * filter cannot be taken off again): a sandboxed I/O thread does its I/O
 * on its own file; any other call, or its I/O on another file, stops the
 * process with exit status 4 and one line naming the system call. The
 * run-time filter (vCPUs, event loop, helper threads) allows I/O on what
 * it holds, malloc's memory and the ioctls set-up registered, and stops
 * an open, a socket, executable memory, an ioctl on another descriptor and
 * a signal to another process; -o sandbox=off installs nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox.h"
#include "vmm.h"

/* A non-blocking TCP listener on 127.0.0.1, before the filter. */
static int
listener(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, 1) < 0)
		return -1;
	return fd;
}

enum misstep { NONE, OTHER_CALL, OTHER_FD };

struct job {
	int fd, other_fd;
	enum misstep misstep;
	int rc; /* 0: the allowed I/O worked */
};

static void *
io_thread(void *arg)
{
	struct job *j = arg;
	char err[256], buf[16] = "sandboxed";
	struct iovec iov = {buf, sizeof(buf)};

	if (sandbox_io_thread("test disk", j->fd, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		j->rc = 10;
		return NULL;
	}
	if (pwritev(j->fd, &iov, 1, 0) != sizeof(buf) || fdatasync(j->fd) < 0 ||
	    preadv(j->fd, &iov, 1, 0) != sizeof(buf))
		j->rc = 11;
	if (j->misstep == OTHER_CALL)
		syscall(SYS_getppid);
	if (j->misstep == OTHER_FD)
		(void)!preadv(j->other_fd, &iov, 1, 0);
	return NULL;
}

/* Run a sandboxed thread in a child; its exit status and stderr. */
static int
run_child(enum misstep m, char *out, size_t outlen)
{
	char path[] = "/tmp/test_sandbox.XXXXXX";
	int fd = mkstemp(path), pipefd[2], status;
	ssize_t n;
	pid_t pid;

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct job j = {fd, open("/dev/null", O_RDONLY), m, 0};
		pthread_t t;

		dup2(pipefd[1], STDERR_FILENO);
		pthread_create(&t, NULL, io_thread, &j);
		pthread_join(t, NULL);
		_exit(j.rc);
	}
	close(pipefd[1]);
	n = read(pipefd[0], out, outlen - 1);
	out[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	close(fd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
test_allowed_io(void **state)
{
	char out[512];

	(void)state;
	assert_int_equal(run_child(NONE, out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

/* The misstep stops the child: exit 4, one line naming system call nr. */
static void
expect_stopped(enum misstep m, long nr)
{
	char out[512], want[64];

	assert_int_equal(run_child(m, out, sizeof(out)), 4);
	snprintf(want, sizeof(want), "system call %ld (", nr);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "seccomp filter does not allow"));
}

static void
test_other_call_stops(void **state)
{
	(void)state;
	expect_stopped(OTHER_CALL, SYS_getppid);
}

static void
test_io_on_other_fd_stops(void **state)
{
	(void)state;
	expect_stopped(OTHER_FD, SYS_preadv);
}

/* ---- the run-time filter ---- */

enum run_step {
	RUN_ALLOWED,	 /* everything it may do: exit 0 */
	RUN_OPEN,	 /* open */
	RUN_SOCKET,	 /* socket */
	RUN_SOCKET_OK,	 /* socket after sandbox_allow_sockets: exit 0 */
	RUN_EXEC_MEM,	 /* mmap PROT_EXEC */
	RUN_IOCTL_OTHER, /* an unregistered request on another descriptor */
	RUN_PAIR_OTHER,	 /* a registered request on the wrong descriptor */
	RUN_KILL_OTHER,	 /* tgkill to another process */
	RUN_UNLINK_CWD,	 /* unlinkat outside the registered directory */
	RUN_UNLINK_DIR,	 /* unlinkat in the registered directory */
	RUN_OFF_OPEN,	 /* open with the sandbox off: exit 0 */
	RUN_OVERFLOW,	 /* more registrations than fit: no filter, exit 10 */
	RUN_VM_RUN,	 /* the vCPU-run request on the first VM descriptor */
	RUN_VM_RUN_2ND,	 /* the same on the second one */
	RUN_ACCEPT,	 /* accept4 on a listening socket */
	RUN_POLL,	 /* poll */
	RUN_EPOLL_WAIT,	 /* epoll_wait */
	RUN_SIGWAIT,	 /* rt_sigtimedwait */
};

/* Which run-time filter the thread installs. */
enum role { HELPER, LOOP, VCPU, ACCEPTING_HELPER };

struct run_job {
	enum run_step step;
	int kvmfd, tapfd, dirfd, pipefd, kvmfd2;
	enum role role;
	int rc;
};

static int
install_role(const struct run_job *j, char *err, size_t errlen)
{
	switch (j->role) {
	case LOOP:
		return sandbox_loop(err, errlen);
	case VCPU: /* its own vCPU's descriptor is the first one */
		return sandbox_vcpu(j->kvmfd, err, errlen);
	case ACCEPTING_HELPER:
		return sandbox_helper("test helper", SANDBOX_ACCEPTS, err,
				      errlen);
	case HELPER:
		break;
	}
	return sandbox_helper("test helper", 0, err, errlen);
}

static void *
run_thread(void *arg)
{
	struct run_job *j = arg;
	char err[256], c = 'x';
	void *p;
	int rc = install_role(j, err, sizeof(err));

	if (rc < 0) {
		fprintf(stderr, "%s\n", err);
		j->rc = 10;
		return NULL;
	}
	switch (j->step) {
	case RUN_ALLOWED:
		p = malloc(1 << 20); /* an mmap of its own */
		if (!p || write(j->pipefd, &c, 1) != 1)
			j->rc = 11;
		free(p);
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			j->rc = 12;
		else
			munmap(p, 4096);
		/* Any request on a VM descriptor: the kernel answers. */
		if (ioctl(j->kvmfd, 0x1234, 0) == 0 || errno != ENOTTY)
			j->rc = 13;
		/* A registered request on its descriptor: ENOTTY, not SIGSYS.
		 */
		(void)!ioctl(j->tapfd, TUNSETOFFLOAD, 0);
		if (j->role == LOOP && unlinkat(j->dirfd, "victim", 0) < 0)
			j->rc = 14;
		break;
	case RUN_OPEN:
	case RUN_OFF_OPEN: {
		/* open(2) itself: ASan builds allow openat for the runtime. */
		int fd = (int)syscall(SYS_open, "/dev/null", O_RDONLY);

		if (fd < 0)
			j->rc = 15;
		else
			close(fd);
		break;
	}
	case RUN_SOCKET:
	case RUN_SOCKET_OK: {
		int fd = socket(AF_INET, SOCK_DGRAM, 0);

		if (fd < 0)
			j->rc = 16;
		else
			close(fd);
		break;
	}
	case RUN_EXEC_MEM:
		p = mmap(NULL, 4096, PROT_READ | PROT_EXEC,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		break;
	case RUN_IOCTL_OTHER:
		(void)!ioctl(j->tapfd, 0x1234, 0);
		break;
	case RUN_PAIR_OTHER:
		(void)!ioctl(j->kvmfd + 100, TUNSETOFFLOAD, 0);
		break;
	case RUN_KILL_OTHER:
		syscall(SYS_tgkill, 1, 1, 0);
		break;
	case RUN_UNLINK_CWD:
		unlinkat(AT_FDCWD, "victim", 0);
		break;
	case RUN_UNLINK_DIR:
		if (unlinkat(j->dirfd, "victim", 0) < 0)
			j->rc = 20;
		break;
	case RUN_OVERFLOW:
		break; /* never reached: the filter is refused */
	case RUN_VM_RUN:
	case RUN_VM_RUN_2ND:
		/* Allowed: the kernel answers (ENOTTY on /dev/null). */
		if (ioctl(j->step == RUN_VM_RUN ? j->kvmfd : j->kvmfd2,
			  vm_sandbox_run_ioctl(), 0) == 0 ||
		    errno != ENOTTY)
			j->rc = 17;
		break;
	case RUN_ACCEPT:
		/* Allowed: nothing waits, the socket is non-blocking. */
		if (accept4(j->pipefd, NULL, NULL, 0) >= 0)
			j->rc = 18;
		break;
	case RUN_POLL: {
		struct pollfd pfd = {j->pipefd, POLLOUT, 0};

		if (poll(&pfd, 1, 0) < 0)
			j->rc = 19;
		break;
	}
	case RUN_EPOLL_WAIT: {
		struct epoll_event ev;

		(void)!epoll_wait(j->pipefd, &ev, 1, 0);
		break;
	}
	case RUN_SIGWAIT: {
		sigset_t set;
		struct timespec zero = {0, 0};

		sigemptyset(&set);
		sigaddset(&set, SIGUSR2);
		(void)!sigtimedwait(&set, NULL, &zero);
		break;
	}
	}
	return NULL;
}

/* A child with the run-time filter on a thread; exit status, stderr. */
static int
run_filtered(enum run_step step, enum role role, char *out, size_t outlen)
{
	char dir[] = "/tmp/test_sandbox_dir.XXXXXX";
	int pipefd[2], datafd[2], status;
	ssize_t n;
	pid_t pid;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(pipe(datafd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct run_job j = {step,
				    open("/dev/null", O_RDONLY),
				    open("/dev/zero", O_RDONLY),
				    open(dir, O_PATH | O_DIRECTORY),
				    datafd[1],
				    open("/dev/null", O_RDONLY),
				    role,
				    0};
		pthread_t t;

		dup2(pipefd[1], STDERR_FILENO);
		close(openat(j.dirfd, "victim", O_CREAT | O_WRONLY, 0600));
		sandbox_set_enabled(step != RUN_OFF_OPEN);
		if (step == RUN_ACCEPT)
			j.pipefd = listener();
		sandbox_allow_any_ioctl(j.kvmfd);
		sandbox_allow_any_ioctl(j.kvmfd2);
		sandbox_allow_ioctl(j.tapfd, TUNSETOFFLOAD);
		sandbox_allow_unlinkat(j.dirfd);
		if (step == RUN_SOCKET_OK)
			sandbox_allow_sockets();
		for (int i = 0; step == RUN_OVERFLOW && i < 1000; i++)
			sandbox_allow_unlinkat(j.dirfd);
		sandbox_seal(); /* as bhyve once set-up is done */
		pthread_create(&t, NULL, run_thread, &j);
		pthread_join(t, NULL);
		_exit(j.rc);
	}
	close(pipefd[1]);
	close(datafd[1]);
	n = read(pipefd[0], out, outlen - 1);
	out[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	close(datafd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	{
		char victim[64];

		snprintf(victim, sizeof(victim), "%s/victim", dir);
		unlink(victim);
		rmdir(dir);
	}
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
run_expect_stopped(enum run_step step, enum role role, long nr)
{
	char out[512], want[64];

	assert_int_equal(run_filtered(step, role, out, sizeof(out)), 4);
	snprintf(want, sizeof(want), "system call %ld (", nr);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "-o sandbox=off"));
}

static void
test_run_allowed(void **state)
{
	char out[512];

	(void)state;
	assert_int_equal(run_filtered(RUN_ALLOWED, HELPER, out, sizeof(out)),
			 0);
	assert_string_equal(out, "");
	/* The event loop: the same, and unlinkat in its directory. */
	assert_int_equal(run_filtered(RUN_ALLOWED, LOOP, out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

static void
test_run_stops(void **state)
{
	(void)state;
	run_expect_stopped(RUN_OPEN, HELPER, SYS_open);
	run_expect_stopped(RUN_SOCKET, HELPER, SYS_socket);
	run_expect_stopped(RUN_EXEC_MEM, HELPER, SYS_mmap);
	run_expect_stopped(RUN_IOCTL_OTHER, HELPER, SYS_ioctl);
	run_expect_stopped(RUN_PAIR_OTHER, HELPER, SYS_ioctl);
	run_expect_stopped(RUN_KILL_OTHER, HELPER, SYS_tgkill);
	/* A helper never unlinks; the loop only in its directories. */
	run_expect_stopped(RUN_UNLINK_CWD, LOOP, SYS_unlinkat);
}

/*
 * Each role gets what it needs and no more (sandbox.h's table): a step,
 * the role that takes it, and the system call that stops it (0: allowed).
 */
static const struct {
	enum run_step step;
	enum role role;
	long stopped_by;
} role_cases[] = {
    /* A vCPU runs its own vCPU, and no other; nothing else runs one. */
    {RUN_VM_RUN, VCPU, 0},
    {RUN_VM_RUN_2ND, VCPU, SYS_ioctl},
    {RUN_VM_RUN, LOOP, SYS_ioctl},
    {RUN_VM_RUN, HELPER, SYS_ioctl},
    /* Everything else on a VM descriptor is any thread's. */
    {RUN_ALLOWED, VCPU, 0},
    /* Only a vCPU takes its kick. */
    {RUN_SIGWAIT, VCPU, 0},
    {RUN_SIGWAIT, LOOP, SYS_rt_sigtimedwait},
    {RUN_SIGWAIT, HELPER, SYS_rt_sigtimedwait},
    /* The loop waits and accepts; an accepting helper polls, accepts. */
    {RUN_EPOLL_WAIT, LOOP, 0},
    {RUN_EPOLL_WAIT, VCPU, SYS_epoll_wait},
    {RUN_EPOLL_WAIT, ACCEPTING_HELPER, SYS_epoll_wait},
    {RUN_ACCEPT, LOOP, 0},
    {RUN_ACCEPT, ACCEPTING_HELPER, 0},
    {RUN_POLL, ACCEPTING_HELPER, 0},
    {RUN_ACCEPT, VCPU, SYS_accept4},
    {RUN_ACCEPT, HELPER, SYS_accept4},
    {RUN_POLL, VCPU, SYS_poll},
    {RUN_POLL, HELPER, SYS_poll},
    /* Only the loop's teardown unlinks, even in its directory. */
    {RUN_UNLINK_DIR, LOOP, 0},
    {RUN_UNLINK_DIR, VCPU, SYS_unlinkat},
    {RUN_UNLINK_DIR, ACCEPTING_HELPER, SYS_unlinkat},
};

static void
test_run_roles(void **state)
{
	char out[512];

	(void)state;
	for (size_t i = 0; i < sizeof(role_cases) / sizeof(role_cases[0]);
	     i++) {
		if (role_cases[i].stopped_by) {
			run_expect_stopped(role_cases[i].step,
					   role_cases[i].role,
					   role_cases[i].stopped_by);
			continue;
		}
		assert_int_equal(run_filtered(role_cases[i].step,
					      role_cases[i].role, out,
					      sizeof(out)),
				 0);
		assert_string_equal(out, "");
	}
}

static void
test_run_sockets_when_registered(void **state)
{
	char out[512];

	(void)state;
	assert_int_equal(run_filtered(RUN_SOCKET_OK, HELPER, out, sizeof(out)),
			 0);
	assert_string_equal(out, "");
}

static void
test_run_off(void **state)
{
	char out[512];

	(void)state;
	assert_int_equal(run_filtered(RUN_OFF_OPEN, HELPER, out, sizeof(out)),
			 0);
	assert_string_equal(out, "");
}

/* A registration that did not fit refuses the filter, not a later call. */
static void
test_run_overflow(void **state)
{
	char out[512];

	(void)state;
	assert_int_equal(run_filtered(RUN_OVERFLOW, LOOP, out, sizeof(out)),
			 10);
	assert_non_null(strstr(out, "more descriptors than the sandbox"));
}

static void
test_check(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(sandbox_check(err, sizeof(err)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_allowed_io),
	    cmocka_unit_test(test_other_call_stops),
	    cmocka_unit_test(test_io_on_other_fd_stops),
	    cmocka_unit_test(test_run_allowed),
	    cmocka_unit_test(test_run_stops),
	    cmocka_unit_test(test_run_roles),
	    cmocka_unit_test(test_run_sockets_when_registered),
	    cmocka_unit_test(test_run_off),
	    cmocka_unit_test(test_run_overflow),
	    cmocka_unit_test(test_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
