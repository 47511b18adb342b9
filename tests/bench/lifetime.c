/*
 * A timing stand-in for bhyve, rawload and bhyvectl, for the hvtest
 * overhead benchmark (tests/bench/hvtest_overhead.py). Installed as
 * DIR/bhyve etc. (symlinks to this program) with HVTEST_BIN=DIR, it becomes
 * $LIFETIME_BIN/<its name> (exec, same pid, arguments, stdio and
 * environment), and a forked watcher appends one line to $LIFETIME_LOG when
 * that process has exited:
 *
 *   NAME START_NS END_NS STATUS LAST_ARG
 *
 * START is taken first thing in main (the exec hvtest did is behind us);
 * END when the tool's pidfd turns readable (it has exited). Both are
 * CLOCK_MONOTONIC, the clock of Python's time.monotonic(). STATUS is always
 * 0: only the parent may reap the tool, and that is hvtest. The tool stays
 * hvtest's own child, so hvtest waits for it and reads its pipes exactly as
 * it does for the real one: the stand-in adds a fork, not a process hvtest
 * must wait for.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * The watcher: drop every inherited descriptor (hvtest reads the tool's
 * pipes to EOF), wait for the tool's exit on its pidfd, log it.
 */
static void
watch(int pidfd, const char *log, const char *name, const char *last,
      int64_t start)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	char line[PATH_MAX + 128];
	int fd, n;

	for (fd = 0; fd < 1024; fd++)
		if (fd != pidfd)
			close(fd);
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	n = snprintf(line, sizeof(line), "%s %lld %lld 0 %s\n", name,
		     (long long)start, (long long)now_ns(), last);
	fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd >= 0 && write(fd, line, (size_t)n) == n)
		_exit(0);
	_exit(1);
}

int
main(int argc, char **argv)
{
	const char *bin = getenv("LIFETIME_BIN"), *log = getenv("LIFETIME_LOG");
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1
						 : argv[0];
	int64_t start = now_ns();
	char real[PATH_MAX];
	int pidfd;
	pid_t pid;

	if (!bin || !log) {
		fprintf(stderr, "lifetime: set LIFETIME_BIN and LIFETIME_LOG\n");
		return 127;
	}
	snprintf(real, sizeof(real), "%s/%s", bin, name);
	pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (pidfd < 0) {
		perror("lifetime: pidfd_open");
		return 127;
	}
	fcntl(pidfd, F_SETFD, FD_CLOEXEC);
	pid = fork();
	if (pid < 0) {
		perror("lifetime: fork");
		return 127;
	}
	if (pid == 0)
		watch(pidfd, log, name, argc > 1 ? argv[argc - 1] : "-", start);
	close(pidfd);
	execv(real, argv);
	fprintf(stderr, "lifetime: %s: %s\n", real, strerror(errno));
	return 127;
}
