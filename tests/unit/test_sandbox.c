/*
 * The device-thread seccomp filter (src/hv/sandbox.c), in child processes
 * (a filter cannot be taken off again): a sandboxed I/O thread does its
 * I/O on its own file; any other call, or its I/O on another file, stops
 * the process with exit status 4 and one line naming the system call.
 */
#include <fcntl.h>
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
	snprintf(want, sizeof(want), "system call %ld,", nr);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_allowed_io),
	    cmocka_unit_test(test_other_call_stops),
	    cmocka_unit_test(test_io_on_other_fd_stops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
