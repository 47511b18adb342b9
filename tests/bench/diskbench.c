/*
 * diskbench: the disk benchmark that runs inside the guest (make bench;
 * tests/bench/disk.py puts it in the guest's initramfs). A small fio of
 * our own: static, no libraries, so it boots in the default guest.
 *
 *   diskbench DEVICE MODE BLOCK DEPTH SECONDS
 *
 * MODE is read, write, randread or randwrite; BLOCK the request size in
 * bytes; DEPTH how many requests are in flight (Linux AIO with O_DIRECT,
 * as fio's libaio engine); SECONDS how long to run. Sequential modes walk
 * the device from the start and wrap; random ones pick BLOCK-aligned
 * offsets uniformly (xorshift, a fixed seed: every run the same). Prints
 *
 *   diskbench MODE BLOCK DEPTH: N ios in T s: X MiB/s, Y IOPS
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPTH 256

struct bench {
	int fd;
	uint64_t size; /* bytes, a multiple of block */
	size_t block;
	int depth;
	int write, random;
	uint64_t next;	/* sequential position */
	uint64_t rng;	/* xorshift64 state */
	long ios;
};

static int
die(const char *what)
{
	fprintf(stderr, "diskbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
next_offset(struct bench *b)
{
	uint64_t blocks = b->size / b->block, off;

	if (b->random) {
		b->rng ^= b->rng << 13;
		b->rng ^= b->rng >> 7;
		b->rng ^= b->rng << 17;
		return (b->rng % blocks) * b->block;
	}
	off = b->next;
	b->next = (b->next + b->block) % (blocks * b->block);
	return off;
}

static void
prep(struct bench *b, struct iocb *cb, void *buf)
{
	memset(cb, 0, sizeof(*cb));
	cb->aio_fildes = (uint32_t)b->fd;
	cb->aio_lio_opcode = b->write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
	cb->aio_buf = (uint64_t)(uintptr_t)buf;
	cb->aio_nbytes = b->block;
	cb->aio_offset = (int64_t)next_offset(b);
	cb->aio_data = (uint64_t)(uintptr_t)cb;
}

static uint64_t
device_size(int fd)
{
	struct stat st;
	uint64_t bytes;

	if (fstat(fd, &st) < 0)
		die("fstat");
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
			die("BLKGETSIZE64");
		return bytes;
	}
	return (uint64_t)st.st_size;
}

/* Keep depth requests in flight for the given time. */
static double
run(struct bench *b, double seconds)
{
	static struct iocb cbs[MAX_DEPTH];
	struct iocb *list[MAX_DEPTH];
	struct io_event ev[MAX_DEPTH];
	aio_context_t ctx = 0;
	char *mem;
	double t0, end;
	int inflight;

	if (posix_memalign((void **)&mem, 4096, b->block * b->depth))
		die("posix_memalign");
	memset(mem, 0x5a, b->block * b->depth);
	if (syscall(SYS_io_setup, b->depth, &ctx) < 0)
		die("io_setup");
	for (int i = 0; i < b->depth; i++) {
		prep(b, &cbs[i], mem + (size_t)i * b->block);
		list[i] = &cbs[i];
	}
	t0 = now();
	end = t0 + seconds;
	if (syscall(SYS_io_submit, ctx, b->depth, list) != b->depth)
		die("io_submit");
	inflight = b->depth;
	while (inflight > 0) {
		long n = syscall(SYS_io_getevents, ctx, 1, b->depth, ev, NULL);
		int again = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("io_getevents");
		for (long i = 0; i < n; i++) {
			struct iocb *cb = (struct iocb *)(uintptr_t)ev[i].data;

			if (ev[i].res != (int64_t)b->block) {
				errno = ev[i].res < 0 ? (int)-ev[i].res : EIO;
				die("I/O");
			}
			b->ios++;
			inflight--;
			if (now() < end) {
				prep(b, cb, (void *)(uintptr_t)cb->aio_buf);
				list[again++] = cb;
			}
		}
		if (again > 0) {
			if (syscall(SYS_io_submit, ctx, again, list) != again)
				die("io_submit");
			inflight += again;
		}
	}
	syscall(SYS_io_destroy, ctx);
	free(mem);
	return now() - t0;
}

int
main(int argc, char **argv)
{
	struct bench b = {.rng = 0x9e3779b97f4a7c15ULL};
	double secs, t;

	if (argc != 6) {
		fprintf(stderr, "usage: diskbench DEVICE read|write|randread|"
				"randwrite BLOCK DEPTH SECONDS\n");
		return 2;
	}
	b.write = strstr(argv[2], "write") != NULL;
	b.random = strncmp(argv[2], "rand", 4) == 0;
	b.block = (size_t)strtoul(argv[3], NULL, 0);
	b.depth = atoi(argv[4]);
	secs = atof(argv[5]);
	if (b.block < 512 || b.block % 512 || b.depth < 1 ||
	    b.depth > MAX_DEPTH || secs <= 0) {
		fprintf(stderr, "diskbench: bad block size, depth or time\n");
		return 2;
	}
	b.fd = open(argv[1], (b.write ? O_RDWR : O_RDONLY) | O_DIRECT);
	if (b.fd < 0)
		die(argv[1]);
	b.size = device_size(b.fd) / b.block * b.block;
	if (b.size < b.block * (uint64_t)b.depth) {
		fprintf(stderr, "diskbench: %s is too small\n", argv[1]);
		return 1;
	}
	t = run(&b, secs);
	printf("diskbench %s %zu %d: %ld ios in %.2f s: %.1f MiB/s, %.0f IOPS\n",
	       argv[2], b.block, b.depth, b.ios, t,
	       (double)b.ios * (double)b.block / t / 1048576.0,
	       (double)b.ios / t);
	return 0;
}
