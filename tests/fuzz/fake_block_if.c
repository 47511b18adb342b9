/*
 * A block backend for the fuzz targets: no thread, no file. Requests wait
 * in a list until the target completes them (fake_blockif_run), so a run
 * is deterministic; every buffer a request names must lie inside the guest
 * memory the target registered, and each is touched in full, so a bad
 * iovec from the device is caught here or by ASan.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block_if.h"
#include "fake_block_if.h"

#define FAKE_DISK_SIZE (1 << 20)

struct blockif_ctxt {
	int dummy;
};

static struct blockif_ctxt the_disk;
/* The queue; a completer thread, when on, shares it with the device. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct blockif_req *pending[4096];
static int npending, busy;
static pthread_t completer;
static bool threaded, stopping;
static const uint8_t *mem_lo, *mem_hi;
static bool read_only;
static uint8_t scratch[64 << 10];

void
fake_blockif_set_memory(const void *base, size_t len)
{
	mem_lo = base;
	mem_hi = mem_lo + len;
}

void
fake_blockif_set_ro(bool ro)
{
	read_only = ro;
}

int
blockif_legacy_config(struct config *node, const char *opts, char *err,
		      size_t errlen)
{
	return config_set(node, "path", opts, err, errlen);
}

bool
blockif_is_option(const char *key)
{
	static const char *const keys[] = {"path",   "ro",	   "nocache",
					   "direct", "sectorsize", "nodelete"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(key, keys[i]))
			return true;
	return false;
}

struct blockif_ctxt *
blockif_open(const struct config *node, char *err, size_t errlen)
{
	(void)node;
	(void)err;
	(void)errlen;
	return &the_disk;
}

void
blockif_close(struct blockif_ctxt *bc)
{
	(void)bc;
}

off_t
blockif_size(struct blockif_ctxt *bc)
{
	(void)bc;
	return FAKE_DISK_SIZE;
}

int
blockif_sectsz(struct blockif_ctxt *bc)
{
	(void)bc;
	return 512;
}

void
blockif_psectsz(struct blockif_ctxt *bc, int *size, int *off)
{
	(void)bc;
	*size = 4096;
	*off = 0;
}

bool
blockif_is_ro(struct blockif_ctxt *bc)
{
	(void)bc;
	return read_only;
}

const char *
blockif_path(struct blockif_ctxt *bc)
{
	(void)bc;
	return "fake";
}

static int
enqueue(struct blockif_req *br, int op)
{
	if (br->br_iovcnt < 0 || br->br_iovcnt > BLOCKIF_IOV_MAX) {
		fprintf(stderr, "fake_blockif: %d iovecs\n", br->br_iovcnt);
		abort();
	}
	pthread_mutex_lock(&lock);
	if (npending == (int)(sizeof(pending) / sizeof(pending[0])))
		abort(); /* the device queued more than it has requests */
	br->br_op = op;
	pending[npending++] = br;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
	return 0;
}

int
blockif_read(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	(void)bc;
	return enqueue(breq, 0);
}

int
blockif_write(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	(void)bc;
	return enqueue(breq, 1);
}

int
blockif_flush(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	(void)bc;
	return enqueue(breq, 2);
}

int
blockif_delete(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	(void)bc;
	breq->br_iovcnt = 0;
	return enqueue(breq, 3);
}

int
blockif_zero(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	(void)bc;
	breq->br_iovcnt = 0;
	return enqueue(breq, 4);
}

bool
blockif_candelete(struct blockif_ctxt *bc)
{
	(void)bc;
	return !read_only;
}

int
blockif_queuesz(struct blockif_ctxt *bc)
{
	(void)bc;
	return 256;
}

/* Check and touch every byte of a request's buffers. */
static int
fake_io(struct blockif_req *br)
{
	ssize_t total = 0;

	if (br->br_op == 2)
		return 0;
	if (br->br_offset < 0 || br->br_resid < 0 ||
	    br->br_offset + br->br_resid > FAKE_DISK_SIZE) {
		fprintf(stderr, "fake_blockif: %zd bytes at %lld\n",
			br->br_resid, (long long)br->br_offset);
		abort();
	}
	/* Discard and write-zeroes name a range and carry no buffers. */
	if (br->br_op == 3 || br->br_op == 4) {
		if (br->br_iovcnt != 0)
			abort();
		return read_only ? EROFS : 0;
	}
	for (int i = 0; i < br->br_iovcnt; i++) {
		const uint8_t *p = br->br_iov[i].iov_base;
		size_t n = br->br_iov[i].iov_len;

		if (p < mem_lo || p > mem_hi || n > (size_t)(mem_hi - p)) {
			fprintf(stderr,
				"fake_blockif: iovec %p+%zu is outside "
				"guest memory\n",
				(const void *)p, n);
			abort();
		}
		for (size_t o = 0; o < n; o += sizeof(scratch)) {
			size_t c =
			    n - o < sizeof(scratch) ? n - o : sizeof(scratch);
			if (br->br_op == 0)
				memcpy((uint8_t *)p + o, scratch, c);
			else
				memcpy(scratch, p + o, c);
		}
		total += (ssize_t)n;
	}
	if (total != br->br_resid) {
		fprintf(stderr,
			"fake_blockif: iovecs hold %zd bytes, resid "
			"%zd\n",
			total, br->br_resid);
		abort();
	}
	return br->br_op != 0 && read_only ? EROFS : 0;
}

/* The oldest queued request, or NULL (lock held). */
static struct blockif_req *
take(void)
{
	struct blockif_req *br;

	if (npending == 0)
		return NULL;
	br = pending[0];
	memmove(pending, pending + 1, --npending * sizeof(pending[0]));
	busy++;
	return br;
}

static void
complete(struct blockif_req *br)
{
	br->br_callback(br, fake_io(br));
	pthread_mutex_lock(&lock);
	busy--;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

int
fake_blockif_run(void)
{
	struct blockif_req *br;
	int done = 0;

	/* Completions may queue more (the device drains in its callback). */
	for (;;) {
		pthread_mutex_lock(&lock);
		br = take();
		pthread_mutex_unlock(&lock);
		if (!br)
			return done;
		complete(br);
		done++;
	}
}

/* A worker thread's life, as block_if's: completions race the guest. */
static void *
completer_main(void *arg)
{
	struct blockif_req *br;

	(void)arg;
	pthread_mutex_lock(&lock);
	while (!stopping) {
		br = take();
		if (!br) {
			pthread_cond_wait(&cond, &lock);
			continue;
		}
		pthread_mutex_unlock(&lock);
		complete(br);
		pthread_mutex_lock(&lock);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

void
fake_blockif_threaded(bool on)
{
	if (on == threaded)
		return;
	if (on) {
		stopping = false;
		if (pthread_create(&completer, NULL, completer_main, NULL))
			abort();
	} else {
		fake_blockif_drain();
		pthread_mutex_lock(&lock);
		stopping = true;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		pthread_join(completer, NULL);
	}
	threaded = on;
}

void
fake_blockif_drain(void)
{
	if (!threaded) {
		fake_blockif_run();
		return;
	}
	pthread_mutex_lock(&lock);
	while (npending > 0 || busy > 0)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
}
