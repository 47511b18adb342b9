/*
 * netbench: the guest side of the network benchmark (tests/bench/net.py
 * puts it in the guest's initramfs). Static, no libraries. The guest
 * always connects out, so the same program works behind slirp's NAT and
 * on a tap; the host does the timing.
 *
 *   netbench send HOST PORT MIB   write MIB MiB of zeros, then wait for
 *                                 the host to close
 *   netbench recv HOST PORT       read until the host closes
 *
 * Connecting is retried for 30 s (the host's server may start late).
 * Prints "netbench send|recv: N bytes" or "netbench failed: WHY".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

static char buf[CHUNK];

static int
fail(const char *what)
{
	printf("netbench failed: %s: %s\n", what, strerror(errno));
	return 1;
}

static int
netbench_connect(const char *host, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port)};

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	for (int i = 0; i < 300; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		usleep(100000);
	}
	return -1;
}

/* Reads until the peer closes; returns the byte count or -1. */
static long long
netbench_drain(int fd)
{
	long long total = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		total += n;
	}
	return total;
}

int
main(int argc, char **argv)
{
	if (argc < 4 || (strcmp(argv[1], "send") && strcmp(argv[1], "recv")) ||
	    (!strcmp(argv[1], "send") && argc != 5)) {
		fprintf(stderr, "usage: netbench send HOST PORT MIB | "
				"netbench recv HOST PORT\n");
		return 2;
	}
	int fd = netbench_connect(argv[2], atoi(argv[3]));
	if (fd < 0)
		return fail("connect");
	if (!strcmp(argv[1], "recv")) {
		long long got = netbench_drain(fd);
		if (got < 0)
			return fail("read");
		printf("netbench recv: %lld bytes\n", got);
		return 0;
	}
	long long left = atoll(argv[4]) << 20, sent = 0;
	while (left > 0) {
		ssize_t n = write(fd, buf, left < CHUNK ? left : CHUNK);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fail("write");
		}
		left -= n;
		sent += n;
	}
	shutdown(fd, SHUT_WR);
	if (netbench_drain(fd) < 0)
		return fail("read");
	printf("netbench send: %lld bytes\n", sent);
	return 0;
}
