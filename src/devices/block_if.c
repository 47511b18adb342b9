/*
 * The block backend (bhyve's block_if): one disk image, a few worker
 * threads.
 *
 * Requests queue in arrival order; each worker takes the oldest, carries
 * it out with preadv/pwritev/fdatasync/fallocate, then calls the
 * request's callback on its own thread. Several workers keep a guest's
 * queue depth at the host (4 KiB random reads at depth 32); like the
 * devices' own queues (virtio, NVMe, NCQ), requests in flight complete in
 * any order, and a flush covers the writes completed before it. Devices
 * range-check requests against blockif_size() before queueing them; the
 * backend still checks, and fails what runs past the end with EIO.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block_if.h"
#include "pci_emul.h"
#include "sandbox.h"

enum blockop { BOP_READ, BOP_WRITE, BOP_FLUSH, BOP_DELETE, BOP_ZERO };

/* Requests a device may have queued at once (its ring's worth). */
#define BLOCKIF_MAXREQ 256
/* Worker threads per disk (bhyve has 8). */
#define BLOCKIF_NUMTHR 8
/*
 * O_DIRECT (nocache) wants buffers aligned in memory; a guest's are not.
 * Such requests go through a bounce buffer per worker, this big, made
 * before the worker's sandbox closes (no allocation after).
 */
#define BOUNCE_ALIGN 4096
#define BOUNCE_SIZE (1 << 20)

#define SECTSZ_MAX_LOGICAL 4096 /* Linux guests take up to a page */
#define SECTSZ_MAX_PHYSICAL 65536

struct blockif_ctxt {
	int bc_fd;
	bool bc_rdonly;
	bool bc_isblk;
	bool bc_candelete;
	bool bc_odirect;
	off_t bc_size;
	int bc_sectsz;
	int bc_psectsz;
	int bc_psectoff;
	char *bc_path;
	pthread_t bc_thr[BLOCKIF_NUMTHR];
	int bc_nthr; /* started */
	pthread_mutex_t bc_mtx;
	pthread_cond_t bc_cond;
	bool bc_closing;
	struct blockif_req *bc_head, *bc_tail; /* pending, oldest first */
};

int
blockif_legacy_config(struct config *node, const char *opts, char *err,
		      size_t errlen)
{
	const char *comma = strchr(opts, ',');
	char *path;
	int rc;

	if (!comma)
		return config_set(node, "path", opts, err, errlen);
	path = strndup(opts, comma - opts);
	if (!path)
		return -1;
	rc = config_set(node, "path", path, err, errlen);
	free(path);
	if (rc < 0)
		return rc;
	return pci_parse_legacy_config(node, comma + 1, err, errlen);
}

bool
blockif_is_option(const char *key)
{
	static const char *const keys[] = {"path",	 "ro",	     "nocache",
					   "direct",	 "sectorsize", "nodelete"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(key, keys[i]))
			return true;
	return false;
}

static bool
is_pow2(long v)
{
	return v > 0 && (v & (v - 1)) == 0;
}

static int
parse_size(const char *s, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return errno || end == s || *end ? -1 : 0;
}

/* sectorsize=LOGICAL[/PHYSICAL] (bhyve(8)). */
static int
parse_sectorsize(const char *v, int *logical, int *physical, char *err,
		 size_t errlen)
{
	char buf[32], *slash;
	long l, p;

	if (strlen(v) >= sizeof(buf))
		goto bad;
	strcpy(buf, v);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (parse_size(buf, &l) < 0 ||
	    (slash ? parse_size(slash + 1, &p) : (p = l, 0)) < 0)
		goto bad;
	if (!is_pow2(l) || !is_pow2(p) || l < 512 || l > SECTSZ_MAX_LOGICAL ||
	    p < l || p > SECTSZ_MAX_PHYSICAL)
		goto bad;
	*logical = (int)l;
	*physical = (int)p;
	return 0;
bad:
	snprintf(err, errlen,
		 "bad sectorsize '%s' (LOGICAL[/PHYSICAL], powers of 2, "
		 "512 <= LOGICAL <= 4096, LOGICAL <= PHYSICAL <= 65536)",
		 v);
	return -1;
}

static int
get_flag(const struct config *node, const char *key, bool *out, char *err,
	 size_t errlen)
{
	const char *v = config_get(node, key);

	*out = false;
	if (!v)
		return 0;
	if (config_parse_bool(v, out) < 0) {
		snprintf(err, errlen, "bad value '%s' for %s (true or false)",
			 v, key);
		return -1;
	}
	return 0;
}

/* Size and sector sizes of what fd is: a regular file or a block device. */
static int
probe_image(struct blockif_ctxt *bc, const char *path, char *err, size_t errlen)
{
	struct stat st;
	uint64_t bytes;
	int ssz, pssz, align;

	if (fstat(bc->bc_fd, &st) < 0) {
		snprintf(err, errlen, "cannot stat %s: %s", path,
			 strerror(errno));
		return -1;
	}
	bc->bc_sectsz = bc->bc_psectsz = 512;
	bc->bc_psectoff = 0;
	if (S_ISREG(st.st_mode)) {
		bc->bc_size = st.st_size;
		return 0;
	}
	bc->bc_isblk = true;
	if (!S_ISBLK(st.st_mode)) {
		snprintf(err, errlen,
			 "%s is not a regular file or a block device", path);
		return -1;
	}
	if (ioctl(bc->bc_fd, BLKGETSIZE64, &bytes) < 0 ||
	    ioctl(bc->bc_fd, BLKSSZGET, &ssz) < 0 ||
	    ioctl(bc->bc_fd, BLKPBSZGET, &pssz) < 0) {
		snprintf(err, errlen, "cannot get the size of %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (ioctl(bc->bc_fd, BLKALIGNOFF, &align) < 0 || align < 0)
		align = 0;
	bc->bc_size = (off_t)bytes;
	bc->bc_sectsz = ssz;
	bc->bc_psectsz = pssz;
	bc->bc_psectoff = align;
	return 0;
}

static int
apply_sectorsize(struct blockif_ctxt *bc, const char *v, char *err,
		 size_t errlen)
{
	int l, p;

	if (parse_sectorsize(v, &l, &p, err, errlen) < 0)
		return -1;
	/* A block device takes I/O in multiples of its own sectors. */
	if (l < bc->bc_sectsz || l % bc->bc_sectsz) {
		snprintf(err, errlen,
			 "sectorsize %d does not suit %s, whose sectors are "
			 "%d bytes",
			 l, bc->bc_path, bc->bc_sectsz);
		return -1;
	}
	bc->bc_sectsz = l;
	bc->bc_psectsz = p;
	bc->bc_psectoff = 0;
	return 0;
}

static void *blockif_thr(void *arg);

/* Workers take no process signals: the event loop has them. */
static int
start_workers(struct blockif_ctxt *bc)
{
	sigset_t all, old;
	int rc = 0;

	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	while (bc->bc_nthr < BLOCKIF_NUMTHR && rc == 0) {
		rc = pthread_create(&bc->bc_thr[bc->bc_nthr], NULL, blockif_thr,
				    bc);
		if (rc == 0)
			bc->bc_nthr++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static void
stop_workers(struct blockif_ctxt *bc)
{
	pthread_mutex_lock(&bc->bc_mtx);
	bc->bc_closing = true;
	pthread_cond_broadcast(&bc->bc_cond);
	pthread_mutex_unlock(&bc->bc_mtx);
	for (int i = 0; i < bc->bc_nthr; i++)
		pthread_join(bc->bc_thr[i], NULL);
	bc->bc_nthr = 0;
}

static struct blockif_ctxt *
open_fail(struct blockif_ctxt *bc)
{
	if (bc->bc_fd >= 0)
		close(bc->bc_fd);
	free(bc->bc_path);
	free(bc);
	return NULL;
}

struct blockif_ctxt *
blockif_open(const struct config *node, char *err, size_t errlen)
{
	const char *path = config_get(node, "path");
	const char *ss = config_get(node, "sectorsize");
	struct blockif_ctxt *bc;
	bool ro, nocache, direct, nodelete;
	int flags = O_CLOEXEC;

	if (!path || !*path) {
		snprintf(err, errlen,
			 "no disk image (-s SLOT,EMUL,PATH or "
			 "pci.B.S.F.path)");
		return NULL;
	}
	if (get_flag(node, "ro", &ro, err, errlen) < 0 ||
	    get_flag(node, "nocache", &nocache, err, errlen) < 0 ||
	    get_flag(node, "direct", &direct, err, errlen) < 0 ||
	    get_flag(node, "nodelete", &nodelete, err, errlen) < 0)
		return NULL;
	bc = calloc(1, sizeof(*bc));
	if (!bc || !(bc->bc_path = strdup(path))) {
		free(bc);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	bc->bc_fd = -1;
	if (nocache)
		flags |= O_DIRECT;
	if (direct)
		flags |= O_SYNC;
	bc->bc_fd = open(path, (ro ? O_RDONLY : O_RDWR) | flags);
	if (bc->bc_fd < 0 && !ro && (errno == EACCES || errno == EROFS)) {
		/* As bhyve: an image we may only read is a read-only disk. */
		bc->bc_fd = open(path, O_RDONLY | flags);
		ro = bc->bc_fd >= 0;
	}
	if (bc->bc_fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s%s", path,
			 strerror(errno),
			 nocache && errno == EINVAL
			     ? " (nocache needs O_DIRECT, which this "
			       "file system lacks)"
			     : "");
		return open_fail(bc);
	}
	bc->bc_rdonly = ro;
	bc->bc_candelete = !ro && !nodelete;
	bc->bc_odirect = nocache;
	if (probe_image(bc, path, err, errlen) < 0 ||
	    (ss && apply_sectorsize(bc, ss, err, errlen) < 0))
		return open_fail(bc);
	pthread_mutex_init(&bc->bc_mtx, NULL);
	pthread_cond_init(&bc->bc_cond, NULL);
	if (start_workers(bc) != 0) {
		stop_workers(bc);
		pthread_mutex_destroy(&bc->bc_mtx);
		pthread_cond_destroy(&bc->bc_cond);
		snprintf(err, errlen, "cannot start the I/O threads");
		return open_fail(bc);
	}
	return bc;
}

void
blockif_close(struct blockif_ctxt *bc)
{
	if (!bc)
		return;
	stop_workers(bc);
	pthread_mutex_destroy(&bc->bc_mtx);
	pthread_cond_destroy(&bc->bc_cond);
	close(bc->bc_fd);
	free(bc->bc_path);
	free(bc);
}

off_t
blockif_size(struct blockif_ctxt *bc)
{
	return bc->bc_size;
}

int
blockif_sectsz(struct blockif_ctxt *bc)
{
	return bc->bc_sectsz;
}

void
blockif_psectsz(struct blockif_ctxt *bc, int *size, int *off)
{
	*size = bc->bc_psectsz;
	*off = bc->bc_psectoff;
}

bool
blockif_is_ro(struct blockif_ctxt *bc)
{
	return bc->bc_rdonly;
}

const char *
blockif_path(struct blockif_ctxt *bc)
{
	return bc->bc_path;
}

bool
blockif_candelete(struct blockif_ctxt *bc)
{
	return bc->bc_candelete;
}

int
blockif_queuesz(struct blockif_ctxt *bc)
{
	(void)bc;
	return BLOCKIF_MAXREQ;
}

static int
blockif_enqueue(struct blockif_ctxt *bc, struct blockif_req *br, int op)
{
	if (br->br_iovcnt < 0 || br->br_iovcnt > BLOCKIF_IOV_MAX)
		return EINVAL;
	br->br_op = op;
	br->br_next = NULL;
	pthread_mutex_lock(&bc->bc_mtx);
	if (bc->bc_tail)
		bc->bc_tail->br_next = br;
	else
		bc->bc_head = br;
	bc->bc_tail = br;
	pthread_cond_signal(&bc->bc_cond);
	pthread_mutex_unlock(&bc->bc_mtx);
	return 0;
}

int
blockif_read(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	return blockif_enqueue(bc, breq, BOP_READ);
}

int
blockif_write(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	return blockif_enqueue(bc, breq, BOP_WRITE);
}

int
blockif_flush(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	return blockif_enqueue(bc, breq, BOP_FLUSH);
}

int
blockif_delete(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	breq->br_iovcnt = 0;
	return blockif_enqueue(bc, breq, BOP_DELETE);
}

int
blockif_zero(struct blockif_ctxt *bc, struct blockif_req *breq)
{
	breq->br_iovcnt = 0;
	return blockif_enqueue(bc, breq, BOP_ZERO);
}

/* Drop n bytes from the front of the request's iovecs (a short transfer). */
static void
iov_advance(struct blockif_req *br, size_t n)
{
	int i = 0;

	while (i < br->br_iovcnt && n >= br->br_iov[i].iov_len)
		n -= br->br_iov[i++].iov_len;
	memmove(br->br_iov, br->br_iov + i,
		(br->br_iovcnt - i) * sizeof(br->br_iov[0]));
	br->br_iovcnt -= i;
	if (br->br_iovcnt > 0) {
		br->br_iov[0].iov_base = (char *)br->br_iov[0].iov_base + n;
		br->br_iov[0].iov_len -= n;
	}
}

/* Whether O_DIRECT can take the request's buffers as they are. */
static bool
aligned(const struct blockif_req *br)
{
	for (int i = 0; i < br->br_iovcnt; i++)
		if ((uintptr_t)br->br_iov[i].iov_base % BOUNCE_ALIGN ||
		    br->br_iov[i].iov_len % 512)
			return false;
	return true;
}

/* Copy n bytes between the request's iovecs (from byte off) and buf. */
static void
iov_copy(struct blockif_req *br, size_t off, char *buf, size_t n, bool to_iov)
{
	for (int i = 0; i < br->br_iovcnt && n > 0; i++) {
		size_t len = br->br_iov[i].iov_len, c;
		char *p = br->br_iov[i].iov_base;

		if (off >= len) {
			off -= len;
			continue;
		}
		c = len - off < n ? len - off : n;
		if (to_iov)
			memcpy(p + off, buf, c);
		else
			memcpy(buf, p + off, c);
		buf += c;
		n -= c;
		off = 0;
	}
}

/* One pread or pwrite of the whole of buf, retried until done. */
static int
io_full(struct blockif_ctxt *bc, bool wr, char *buf, size_t n, off_t off)
{
	while (n > 0) {
		ssize_t r = wr ? pwrite(bc->bc_fd, buf, n, off)
			       : pread(bc->bc_fd, buf, n, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno;
		if (r == 0)
			return EIO; /* the image shrank under us */
		buf += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

/* O_DIRECT with unaligned buffers: through the bounce buffer, in pieces. */
static int
blockif_bounce(struct blockif_ctxt *bc, struct blockif_req *br, char *bounce)
{
	bool wr = br->br_op == BOP_WRITE;
	size_t done = 0;

	while (br->br_resid > 0) {
		size_t n = br->br_resid < BOUNCE_SIZE ? (size_t)br->br_resid
						      : BOUNCE_SIZE;
		int rc;

		if (wr)
			iov_copy(br, done, bounce, n, false);
		rc = io_full(bc, wr, bounce, n, br->br_offset);
		if (rc)
			return rc;
		if (!wr)
			iov_copy(br, done, bounce, n, true);
		done += n;
		br->br_resid -= (ssize_t)n;
		br->br_offset += (off_t)n;
	}
	return 0;
}

static int
blockif_rw(struct blockif_ctxt *bc, struct blockif_req *br, char *bounce)
{
	bool wr = br->br_op == BOP_WRITE;

	size_t total = 0;

	if (wr && bc->bc_rdonly)
		return EROFS;
	/* The buffers hold exactly br_resid bytes: the range check holds. */
	for (int i = 0; i < br->br_iovcnt; i++)
		total += br->br_iov[i].iov_len;
	if (total != (size_t)br->br_resid)
		return EINVAL;
	if (br->br_offset < 0 || br->br_resid < 0 ||
	    br->br_offset > bc->bc_size ||
	    br->br_resid > bc->bc_size - br->br_offset)
		return EIO;
	if (bc->bc_odirect && !aligned(br))
		return bounce ? blockif_bounce(bc, br, bounce) : ENOMEM;
	while (br->br_resid > 0) {
		ssize_t n = wr ? pwritev(bc->bc_fd, br->br_iov, br->br_iovcnt,
					 br->br_offset)
			       : preadv(bc->bc_fd, br->br_iov, br->br_iovcnt,
					br->br_offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return EIO; /* the image shrank under us */
		br->br_resid -= n;
		br->br_offset += n;
		iov_advance(br, (size_t)n);
	}
	return 0;
}

/* A range request (discard, zero) inside the disk and writable. */
static int
range_ok(struct blockif_ctxt *bc, struct blockif_req *br)
{
	if (bc->bc_rdonly)
		return EROFS;
	if (br->br_offset < 0 || br->br_resid < 0 ||
	    br->br_offset > bc->bc_size ||
	    br->br_resid > bc->bc_size - br->br_offset)
		return EIO;
	return 0;
}

static int
blockif_discard(struct blockif_ctxt *bc, struct blockif_req *br)
{
	uint64_t r[2] = {(uint64_t)br->br_offset, (uint64_t)br->br_resid};
	int rc = range_ok(bc, br);

	if (rc)
		return rc;
	if (!bc->bc_candelete)
		return EOPNOTSUPP;
	if (br->br_resid == 0)
		return 0;
	if (bc->bc_isblk)
		rc = ioctl(bc->bc_fd, BLKDISCARD, r);
	else
		rc = fallocate(bc->bc_fd,
			       FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       br->br_offset, br->br_resid);
	if (rc < 0)
		return errno;
	br->br_resid = 0;
	return 0;
}

/* Zeros written by hand, 64 KiB at a time (no fallocate mode works). */
static int
write_zeros(struct blockif_ctxt *bc, off_t off, off_t len)
{
	static const char zeros[65536] __attribute__((aligned(4096)));

	while (len > 0) {
		size_t n = len < (off_t)sizeof(zeros) ? (size_t)len
						      : sizeof(zeros);
		ssize_t w = pwrite(bc->bc_fd, zeros, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : EIO;
		off += w;
		len -= w;
	}
	return 0;
}

static int
blockif_zerorange(struct blockif_ctxt *bc, struct blockif_req *br)
{
	uint64_t r[2] = {(uint64_t)br->br_offset, (uint64_t)br->br_resid};
	int rc = range_ok(bc, br);

	if (rc)
		return rc;
	if (br->br_resid == 0)
		return 0;
	if (bc->bc_isblk)
		rc = ioctl(bc->bc_fd, BLKZEROOUT, r);
	else
		rc = fallocate(bc->bc_fd,
			       FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
			       br->br_offset, br->br_resid);
	if (rc < 0 && (errno == EOPNOTSUPP || errno == EINVAL))
		rc = write_zeros(bc, br->br_offset, br->br_resid);
	else if (rc < 0)
		rc = errno;
	if (rc == 0)
		br->br_resid = 0;
	return rc;
}

static int
blockif_proc(struct blockif_ctxt *bc, struct blockif_req *br, char *bounce)
{
	switch (br->br_op) {
	case BOP_READ:
	case BOP_WRITE:
		return blockif_rw(bc, br, bounce);
	case BOP_FLUSH:
		return fdatasync(bc->bc_fd) < 0 ? errno : 0;
	case BOP_DELETE:
		return blockif_discard(bc, br);
	case BOP_ZERO:
		return blockif_zerorange(bc, br);
	}
	return EINVAL;
}

static void *
blockif_thr(void *arg)
{
	struct blockif_ctxt *bc = arg;
	struct blockif_req *br;
	char err[256], *bounce = NULL;

	pthread_setname_np(pthread_self(), "blk");
	if (bc->bc_odirect &&
	    posix_memalign((void **)&bounce, BOUNCE_ALIGN, BOUNCE_SIZE) != 0)
		bounce = NULL; /* unaligned requests then fail with ENOMEM */
	/* From here on: I/O on the image, the queue and interrupts only. */
	if (sandbox_io_thread(bc->bc_path, bc->bc_fd, err, sizeof(err)) < 0)
		sandbox_fail(err);
	pthread_mutex_lock(&bc->bc_mtx);
	while (!bc->bc_closing) {
		br = bc->bc_head;
		if (!br) {
			pthread_cond_wait(&bc->bc_cond, &bc->bc_mtx);
			continue;
		}
		bc->bc_head = br->br_next;
		if (!bc->bc_head)
			bc->bc_tail = NULL;
		pthread_mutex_unlock(&bc->bc_mtx);
		br->br_callback(br, blockif_proc(bc, br, bounce));
		pthread_mutex_lock(&bc->bc_mtx);
	}
	pthread_mutex_unlock(&bc->bc_mtx);
	free(bounce);
	return NULL;
}
