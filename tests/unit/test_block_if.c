/*
 * The block backend on its own: opening images (files, a loop block device
 * when this host lets us make one), the sizes it reports, and requests
 * through its worker thread: reads, writes, flushes, ranges, read-only.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "block_if.h"
#include "config.h"

static char err[512];

struct waiter {
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	bool done;
	int err;
	pthread_t thread;
};

static void
done_cb(struct blockif_req *br, int e)
{
	struct waiter *w = br->br_param;

	pthread_mutex_lock(&w->mtx);
	w->done = true;
	w->err = e;
	w->thread = pthread_self();
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mtx);
}

/* Queue br with fn and wait for its callback; the error it got. */
static int
run(struct blockif_ctxt *bc, struct blockif_req *br,
    int (*fn)(struct blockif_ctxt *, struct blockif_req *))
{
	struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			   false, 0, 0};

	br->br_callback = done_cb;
	br->br_param = &w;
	assert_int_equal(fn(bc, br), 0);
	pthread_mutex_lock(&w.mtx);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.mtx);
	pthread_mutex_unlock(&w.mtx);
	/* Callbacks run on the worker, never on the caller's thread. */
	assert_false(pthread_equal(w.thread, pthread_self()));
	return w.err;
}

static void
make_file(char *path, size_t size)
{
	/* Not /tmp: where that is tmpfs, O_DIRECT does not open. */
	strcpy(path, "/var/tmp/test_blockif.XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_int_equal(pwrite(fd, "hello", 5, 4096), 5);
	close(fd);
}

static struct blockif_ctxt *
open_with(const char *path, const char *opts)
{
	struct config *node = config_create();
	struct blockif_ctxt *bc;
	char spec[512];

	snprintf(spec, sizeof(spec), "%s%s%s", path, opts ? "," : "",
		 opts ? opts : "");
	assert_int_equal(blockif_legacy_config(node, spec, err, sizeof(err)),
			 0);
	bc = blockif_open(node, err, sizeof(err));
	config_free(node);
	return bc;
}

static void
test_file_rw(void **state)
{
	char path[64], buf[1024] = {0}, buf2[512];
	struct blockif_ctxt *bc;
	struct blockif_req br = {0};

	(void)state;
	make_file(path, 1 << 20);
	bc = open_with(path, NULL);
	assert_non_null(bc);
	assert_int_equal(blockif_size(bc), 1 << 20);
	assert_int_equal(blockif_sectsz(bc), 512);
	assert_false(blockif_is_ro(bc));
	/* A read split over two iovecs. */
	br.br_iov[0] = (struct iovec){buf, 600};
	br.br_iov[1] = (struct iovec){buf2, 424};
	br.br_iovcnt = 2;
	br.br_offset = 4096;
	br.br_resid = 1024;
	assert_int_equal(run(bc, &br, blockif_read), 0);
	assert_int_equal(br.br_resid, 0);
	assert_memory_equal(buf, "hello", 5);
	/* A write, then read it back. */
	memset(buf, 0x5a, 512);
	br.br_iov[0] = (struct iovec){buf, 512};
	br.br_iovcnt = 1;
	br.br_offset = 8192;
	br.br_resid = 512;
	assert_int_equal(run(bc, &br, blockif_write), 0);
	assert_int_equal(run(bc, &br, blockif_flush), 0);
	memset(buf2, 0, 512);
	br.br_iov[0] = (struct iovec){buf2, 512};
	br.br_iovcnt = 1; /* the backend used up the last request's */
	br.br_offset = 8192;
	br.br_resid = 512;
	assert_int_equal(run(bc, &br, blockif_read), 0);
	assert_memory_equal(buf, buf2, 512);
	/* Past the end: EIO, nothing done. */
	br.br_iovcnt = 1;
	br.br_offset = (1 << 20) - 256;
	br.br_resid = 512;
	assert_int_equal(run(bc, &br, blockif_read), EIO);
	br.br_offset = -512;
	assert_int_equal(run(bc, &br, blockif_write), EIO);
	/* Buffers that do not hold br_resid bytes: EINVAL. */
	br.br_offset = 0;
	br.br_resid = 1024;
	assert_int_equal(run(bc, &br, blockif_read), EINVAL);
	/* Too many iovecs are refused when queued. */
	br.br_iovcnt = BLOCKIF_IOV_MAX + 1;
	assert_int_equal(blockif_read(bc, &br), EINVAL);
	blockif_close(bc);
	unlink(path);
}

static void
test_file_options(void **state)
{
	char path[64], buf[512];
	struct blockif_ctxt *bc;
	struct blockif_req br = {0};
	int psz, poff;

	(void)state;
	make_file(path, 1 << 20);
	bc = open_with(path, "ro,sectorsize=4096/16384");
	assert_non_null(bc);
	assert_true(blockif_is_ro(bc));
	assert_int_equal(blockif_sectsz(bc), 4096);
	blockif_psectsz(bc, &psz, &poff);
	assert_int_equal(psz, 16384);
	assert_int_equal(poff, 0);
	br.br_iov[0] = (struct iovec){buf, 512};
	br.br_iovcnt = 1;
	br.br_resid = 512;
	assert_int_equal(run(bc, &br, blockif_write), EROFS);
	assert_int_equal(run(bc, &br, blockif_read), 0);
	blockif_close(bc);

	/* O_SYNC and O_DIRECT (with aligned buffers) work on this file. */
	bc = open_with(path, "direct");
	assert_non_null(bc);
	blockif_close(bc);
	bc = open_with(path, "nocache");
	if (bc) {
		void *abuf = NULL;
		assert_int_equal(posix_memalign(&abuf, 4096, 4096), 0);
		br.br_iov[0] = (struct iovec){abuf, 4096};
		br.br_iovcnt = 1;
		br.br_offset = 4096;
		br.br_resid = 4096;
		assert_int_equal(run(bc, &br, blockif_read), 0);
		assert_memory_equal(abuf, "hello", 5);
		free(abuf);
		blockif_close(bc);
	} else {
		assert_non_null(strstr(err, "O_DIRECT"));
	}

	assert_null(open_with(path, "sectorsize=4096/2048"));
	assert_non_null(strstr(err, "bad sectorsize '4096/2048'"));
	assert_null(open_with(path, "sectorsize=0"));
	assert_null(open_with(path, "sectorsize=512/"));
	assert_null(open_with(path, "sectorsize=99999999999999999999"));
	assert_null(open_with(path, "ro=perhaps"));
	assert_non_null(strstr(err, "bad value 'perhaps' for ro"));
	assert_null(open_with("/nonexistent", NULL));
	assert_string_equal(err, "cannot open /nonexistent: No such file or "
				 "directory");
	assert_null(open_with("/dev/null", NULL));
	assert_non_null(strstr(err, "not a regular file or a block device"));
	unlink(path);
}

static blkcnt_t
blocks_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_blocks;
}

/* Read len bytes at off through the backend into buf. */
static int
read_at(struct blockif_ctxt *bc, void *buf, size_t len, off_t off)
{
	struct blockif_req br = {0};

	br.br_iov[0] = (struct iovec){buf, len};
	br.br_iovcnt = 1;
	br.br_offset = off;
	br.br_resid = (ssize_t)len;
	return run(bc, &br, blockif_read);
}

/* Discard punches a hole (zeros, fewer blocks); zero writes zeros. */
static void
test_discard_and_zero(void **state)
{
	char path[64], buf[65536], zeros[65536] = {0};
	struct blockif_req br = {0};
	struct blockif_ctxt *bc;
	blkcnt_t before;
	int fd;

	(void)state;
	make_file(path, 1 << 20);
	fd = open(path, O_WRONLY);
	memset(buf, 0xa5, sizeof(buf));
	for (off_t o = 0; o < (1 << 20); o += sizeof(buf))
		assert_int_equal(pwrite(fd, buf, sizeof(buf), o), sizeof(buf));
	fsync(fd);
	close(fd);
	before = blocks_of(path);
	bc = open_with(path, NULL);
	assert_non_null(bc);
	assert_true(blockif_candelete(bc));
	assert_true(blockif_queuesz(bc) >= 32);
	br.br_offset = 65536;
	br.br_resid = 65536;
	assert_int_equal(run(bc, &br, blockif_delete), 0);
	assert_int_equal(br.br_resid, 0);
	assert_true(blocks_of(path) < before);
	assert_int_equal(read_at(bc, buf, sizeof(buf), 65536), 0);
	assert_memory_equal(buf, zeros, sizeof(buf));
	/* Zeroing: zeros, the neighbours untouched. */
	br.br_offset = 4096;
	br.br_resid = 8192;
	assert_int_equal(run(bc, &br, blockif_zero), 0);
	assert_int_equal(read_at(bc, buf, 16384, 0), 0);
	assert_int_equal((unsigned char)buf[4095], 0xa5);
	assert_memory_equal(buf + 4096, zeros, 8192);
	assert_int_equal((unsigned char)buf[12288], 0xa5);
	/* Ranges past the end fail alone. */
	br.br_offset = (1 << 20) - 512;
	br.br_resid = 1024;
	assert_int_equal(run(bc, &br, blockif_delete), EIO);
	br.br_resid = 1024;
	assert_int_equal(run(bc, &br, blockif_zero), EIO);
	blockif_close(bc);

	/* nodelete: discard is refused, zeroing still works. */
	bc = open_with(path, "nodelete");
	assert_non_null(bc);
	assert_false(blockif_candelete(bc));
	br.br_offset = 0;
	br.br_resid = 4096;
	assert_int_equal(run(bc, &br, blockif_delete), EOPNOTSUPP);
	br.br_resid = 4096;
	assert_int_equal(run(bc, &br, blockif_zero), 0);
	blockif_close(bc);
	/* Read-only: neither. */
	bc = open_with(path, "ro");
	assert_non_null(bc);
	assert_false(blockif_candelete(bc));
	br.br_resid = 4096;
	assert_int_equal(run(bc, &br, blockif_delete), EROFS);
	br.br_resid = 4096;
	assert_int_equal(run(bc, &br, blockif_zero), EROFS);
	blockif_close(bc);
	assert_null(open_with(path, "nodelete=sometimes"));
	assert_non_null(strstr(err, "bad value 'sometimes' for nodelete"));
	unlink(path);
}

/*
 * nocache (O_DIRECT) with a guest's buffers, which are not aligned: the
 * backend bounces them, reads and writes come out right, on 512-byte and
 * 4 KiB sectors, across the bounce buffer's size.
 */
static void
test_nocache_unaligned(void **state)
{
	static const char *const opts[] = {"nocache", "nocache,sectorsize=4096"};
	size_t big = (3 << 20) / 2; /* more than one bounce buffer */
	char path[64], *buf = malloc(big + 3), *back = malloc(big + 7);
	struct blockif_req br = {0};

	(void)state;
	assert_non_null(buf);
	assert_non_null(back);
	make_file(path, 4 << 20);
	for (size_t k = 0; k < 2; k++) {
		struct blockif_ctxt *bc = open_with(path, opts[k]);

		if (!bc) { /* this file system has no O_DIRECT: say so */
			assert_non_null(strstr(err, "O_DIRECT"));
			break;
		}
		for (size_t i = 0; i < big; i++)
			buf[1 + i] = (char)(i * 7 + k);
		/* Odd addresses, an odd split between two iovecs. */
		br.br_iov[0] = (struct iovec){buf + 1, 1000};
		br.br_iov[1] = (struct iovec){buf + 1001, big - 1000};
		br.br_iovcnt = 2;
		br.br_offset = 8192;
		br.br_resid = (ssize_t)big;
		assert_int_equal(run(bc, &br, blockif_write), 0);
		assert_int_equal(br.br_resid, 0);
		br.br_iov[0] = (struct iovec){back + 7, 4096 + 100};
		br.br_iov[1] = (struct iovec){back + 7 + 4196, big - 4196};
		br.br_iovcnt = 2;
		br.br_offset = 8192;
		br.br_resid = (ssize_t)big;
		assert_int_equal(run(bc, &br, blockif_read), 0);
		assert_memory_equal(back + 7, buf + 1, big);
		blockif_close(bc);
	}
	free(buf);
	free(back);
	unlink(path);
}

/* A loop device over a file, with 4 KiB sectors; NULL if we cannot. */
static char *
make_loop(const char *file)
{
	char cmd[256], *dev = calloc(1, 64);
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "losetup -f --show --sector-size 4096 %s 2>/dev/null", file);
	p = popen(cmd, "r");
	if (!p || !fgets(dev, 64, p) || strncmp(dev, "/dev/loop", 9)) {
		if (p)
			pclose(p);
		free(dev);
		return NULL;
	}
	pclose(p);
	dev[strcspn(dev, "\n")] = '\0';
	return dev;
}

static void
test_block_device(void **state)
{
	char path[64], cmd[128], buf[4096];
	struct blockif_ctxt *bc;
	struct blockif_req br = {0};
	int psz, poff;
	char *dev;

	(void)state;
	make_file(path, 4 << 20);
	dev = make_loop(path);
	if (!dev) {
		unlink(path);
		skip(); /* no loop devices for us (not root, or none) */
	}
	bc = open_with(dev, NULL);
	assert_non_null(bc);
	assert_int_equal(blockif_size(bc), 4 << 20);
	assert_int_equal(blockif_sectsz(bc), 4096);
	br.br_iov[0] = (struct iovec){buf, sizeof(buf)};
	br.br_iovcnt = 1;
	br.br_offset = 4096;
	br.br_resid = sizeof(buf);
	assert_int_equal(run(bc, &br, blockif_read), 0);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(run(bc, &br, blockif_flush), 0);
	blockif_close(bc);
	/* The guest's sectors cannot be smaller than the device's. */
	assert_null(open_with(dev, "sectorsize=512"));
	assert_non_null(strstr(err, "sectors are 4096 bytes"));
	bc = open_with(dev, "sectorsize=4096/8192");
	assert_non_null(bc);
	assert_int_equal(blockif_sectsz(bc), 4096);
	blockif_psectsz(bc, &psz, &poff);
	assert_int_equal(psz, 8192);
	blockif_close(bc);
	snprintf(cmd, sizeof(cmd), "losetup -d %s", dev);
	assert_int_equal(system(cmd), 0);
	free(dev);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_file_rw),
	    cmocka_unit_test(test_file_options),
	    cmocka_unit_test(test_discard_and_zero),
	    cmocka_unit_test(test_nocache_unaligned),
	    cmocka_unit_test(test_block_device),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
