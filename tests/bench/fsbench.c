/*
 * fsbench: the small-file part of the virtio-9p benchmark, inside the
 * guest (tests/bench/p9.py puts it in the initramfs). Static, no
 * libraries.
 *
 *   fsbench DIR N
 *
 * Creates, stats and unlinks N files in DIR one after another (each a
 * round trip to the file server per call, the cost p9.py measures) and
 * prints "fsbench: N files in T s: X files/s" or "fsbench failed: WHY".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: fsbench DIR N\n");
		return 2;
	}
	int n = atoi(argv[2]);
	char path[4096];
	struct stat st;
	double t0 = now();

	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%d", argv[1], i);
		int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0 || close(fd) < 0 || stat(path, &st) < 0 ||
		    unlink(path) < 0) {
			printf("fsbench failed: %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	double t = now() - t0;
	printf("fsbench: %d files in %.3f s: %.0f files/s\n", n, t, n / t);
	return 0;
}
