/*
 * virtio-9p against the mock backend: a legacy driver built here reads
 * the mount tag from the device config, lays 9P requests out in mock
 * guest memory as Linux's trans_virtio does (the T-message readable, room
 * for the R-message writable, either split over several buffers) and
 * checks the replies the worker thread writes back, under its seccomp
 * filter. Bad chains stop the queue; bad settings stop bhyve with one
 * line.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "inout.h"
#include "machine.h"
#include "mem.h"
#include "pci_emul.h"
#include "virtio.h"

#define MEMSIZE (16 << 20)
#define QSZ 256
#define RING_GPA 0x10000ULL
#define TABLE_GPA 0x30000ULL
#define REQ_GPA 0x40000ULL
#define RESP_GPA 0x80000ULL
#define SLOT 5

#define TVERSION 100
#define TATTACH 104
#define TWALK 110
#define TLOPEN 12
#define TREAD 116
#define RLERROR 7

static char err[512];

struct fx {
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
	char dir[64];
	uint8_t *mem;
	int iobase;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;
};

/* ---- the fixture: a directory with one file, the device in slot 5 ---- */

static void
make_dir(struct fx *f)
{
	char p[128];
	FILE *fp;

	strcpy(f->dir, "/tmp/test_v9p.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(p, sizeof(p), "%s/hello", f->dir);
	fp = fopen(p, "w");
	assert_non_null(fp);
	fputs("hello, 9p", fp);
	fclose(fp);
}

/* A VM with "-s 5,virtio-9p,OPTS" (OPTS may name %s, the directory). */
static int
fx_init(struct fx *f, const char *opts)
{
	char slot[512], o[400];

	snprintf(o, sizeof(o), opts, f->dir);
	f->cfg = config_create();
	assert_int_equal(config_set(f->cfg, "pci.0.0.0.device", "hostbridge",
				    err, sizeof(err)),
			 0);
	snprintf(slot, sizeof(slot), "%d,virtio-9p,%s", SLOT, o);
	if (pci_parse_slot(f->cfg, slot, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -2;
	}
	f->ctx = vm_create_mock(MEMSIZE);
	assert_non_null(f->ctx);
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	f->mem = vm_map_gpa(f->ctx, 0, MEMSIZE);
	return init_pci(f->ctx);
}

static struct fx *
fx_new(const char *opts)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	make_dir(f);
	assert_int_equal(fx_init(f, opts), 0);
	f->iobase = (int)(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x10, 4) & ~3u);
	return f;
}

static void
fx_free(struct fx *f)
{
	char cmd[128];

	if (f->m)
		machine_free(f->m);
	if (f->ctx)
		vm_close(f->ctx);
	config_free(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
}

/* Init with stderr in a file: its first line in buf; init's rc. */
static int
init_capture(const char *opts, char *buf, size_t len)
{
	struct fx *f = calloc(1, sizeof(*f));
	char path[] = "/tmp/test_v9p_err.XXXXXX";
	int fd = mkstemp(path), saved = dup(2), rc;
	FILE *fp;

	assert_true(fd >= 0 && saved >= 0);
	make_dir(f);
	fflush(stderr);
	dup2(fd, 2);
	rc = fx_init(f, opts);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	fp = fopen(path, "r");
	assert_non_null(fp);
	if (!fgets(buf, (int)len, fp))
		buf[0] = '\0';
	fclose(fp);
	unlink(path);
	fx_free(f);
	return rc;
}

/* ---- the driver side ---- */

static uint32_t
io_read(struct fx *f, int off, int size)
{
	uint32_t v = 0;

	assert_int_equal(inout_dispatch(f->ctx, 1, f->iobase + off, size, &v),
			 0);
	return size == 4 ? v : v & ((1u << (8 * size)) - 1);
}

static void
io_write(struct fx *f, int off, int size, uint32_t v)
{
	assert_int_equal(inout_dispatch(f->ctx, 0, f->iobase + off, size, &v),
			 0);
}

static void
driver_init(struct fx *f, uint32_t features)
{
	uint64_t used_off = (16 * QSZ + 2 * (3 + QSZ) + 4095) & ~4095ULL;

	io_write(f, VIRTIO_PCI_STATUS, 1, 0);
	io_write(f, VIRTIO_PCI_STATUS, 1, 1 | 2);
	io_write(f, VIRTIO_PCI_GUEST_FEATURES, 4,
		 features & io_read(f, VIRTIO_PCI_HOST_FEATURES, 4));
	io_write(f, VIRTIO_PCI_QUEUE_SEL, 2, 0);
	assert_int_equal(io_read(f, VIRTIO_PCI_QUEUE_NUM, 2), QSZ);
	memset(f->mem + RING_GPA, 0, 0x8000);
	f->desc = (struct vring_desc *)(f->mem + RING_GPA);
	f->avail = (struct vring_avail *)(f->mem + RING_GPA + 16 * QSZ);
	f->used = (struct vring_used *)(f->mem + RING_GPA + used_off);
	f->avail_idx = 0;
	io_write(f, VIRTIO_PCI_QUEUE_PFN, 4, RING_GPA >> 12);
	io_write(f, VIRTIO_PCI_STATUS, 1, 1 | 2 | 4);
}

static uint16_t
used_idx(struct fx *f)
{
	return __atomic_load_n(&f->used->idx, __ATOMIC_ACQUIRE);
}

/* Wait up to 5 s for the used index to reach want. */
static bool
wait_used(struct fx *f, uint16_t want)
{
	struct timespec ts = {0, 1000000};

	for (int i = 0; i < 5000 && used_idx(f) != want; i++)
		nanosleep(&ts, NULL);
	(void)io_read(f, VIRTIO_PCI_QUEUE_SEL, 2); /* the device's lock */
	return used_idx(f) == want;
}

/* A 9P message at REQ_GPA from a format (1 2 4 8 integers, s string). */
static uint32_t
put_msg(struct fx *f, uint8_t type, const char *fmt, ...)
{
	uint8_t *b = f->mem + REQ_GPA;
	uint32_t n = 7;
	va_list ap;

	va_start(ap, fmt);
	for (const char *c = fmt; *c; c++) {
		uint64_t v;
		const char *s;

		switch (*c) {
		case 's':
			s = va_arg(ap, const char *);
			b[n++] = (uint8_t)strlen(s);
			b[n++] = 0;
			memcpy(b + n, s, strlen(s));
			n += (uint32_t)strlen(s);
			break;
		default:
			v = *c == '8' ? va_arg(ap, uint64_t)
				      : va_arg(ap, unsigned);
			for (int i = 0; i < *c - '0'; i++)
				b[n++] = (uint8_t)(v >> (8 * i));
		}
	}
	va_end(ap);
	memcpy(b, &n, 4);
	b[4] = type;
	b[5] = 0x11; /* tag */
	b[6] = 0;
	return n;
}

/*
 * Send the message at REQ_GPA (len bytes) split into rsplit readable
 * buffers, with resplen bytes of room at RESP_GPA in wsplit writable
 * ones; the used length back.
 */
static uint32_t
submit(struct fx *f, uint32_t len, int rsplit, uint32_t resplen, int wsplit)
{
	uint16_t u = used_idx(f), head = (uint16_t)((f->avail_idx * 8) % QSZ);
	int d = head;

	memset(f->mem + RESP_GPA, 0xee, resplen);
	for (int i = 0; i < rsplit + wsplit; i++, d++) {
		bool w = i >= rsplit;
		int k = w ? i - rsplit : i, n = w ? wsplit : rsplit;
		uint32_t total = w ? resplen : len;
		uint32_t piece = total / n, off = piece * k;
		uint64_t base = w ? RESP_GPA : REQ_GPA;

		if (k == n - 1)
			piece = total - off;
		f->desc[d] = (struct vring_desc){
		    base + off, piece,
		    (uint16_t)((i + 1 < rsplit + wsplit ? VRING_DESC_F_NEXT
							: 0) |
			       (w ? VRING_DESC_F_WRITE : 0)),
		    (uint16_t)(d + 1)};
	}
	f->avail->ring[f->avail_idx % QSZ] = head;
	f->avail_idx++;
	__atomic_store_n(&f->avail->idx, f->avail_idx, __ATOMIC_RELEASE);
	io_write(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
	assert_true(wait_used(f, (uint16_t)(u + 1)));
	assert_int_equal(f->used->ring[u % QSZ].id, head);
	return f->used->ring[u % QSZ].len;
}

static uint32_t
rle32(struct fx *f, int off)
{
	uint32_t v;

	memcpy(&v, f->mem + RESP_GPA + off, 4);
	return v;
}

/* Tversion and Tattach (fid 1), each in one buffer each way. */
static void
mount_9p(struct fx *f)
{
	uint32_t n = put_msg(f, TVERSION, "4s", 1 << 20, "9P2000.L");

	assert_int_equal(submit(f, n, 1, 4096, 1), 7 + 4 + 2 + 8);
	assert_int_equal(f->mem[RESP_GPA + 4], TVERSION + 1);
	assert_int_equal(f->mem[RESP_GPA + 5], 0x11);
	assert_int_equal(rle32(f, 7), 128 * 1024); /* the device's msize */
	n = put_msg(f, TATTACH, "44ss4", 1, ~0u, "root", "", 0);
	assert_int_equal(submit(f, n, 1, 4096, 1), 20);
	assert_int_equal(f->mem[RESP_GPA + 4], TATTACH + 1);
}

/* ---- tests ---- */

static void
test_identity_and_tag(void **state)
{
	struct fx *f = fx_new("hostshare=%s");
	char tag[16] = {0};

	(void)state;
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0, 2), 0x1af4);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 2, 2), 0x1009);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 8, 1), 0);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x2c, 2), 0x1af4);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x2e, 2), 9);
	/* VIRTIO_9P_MOUNT_TAG, and indirect descriptors. */
	assert_int_equal(io_read(f, VIRTIO_PCI_HOST_FEATURES, 4),
			 1u | VIRTIO_RING_F_INDIRECT_DESC);
	/* Config (MSI-X off: at 20): tag_len[2], then the tag. */
	assert_int_equal(io_read(f, 20, 2), 9);
	for (int i = 0; i < 9; i++)
		tag[i] = (char)io_read(f, 22 + i, 1);
	assert_string_equal(tag, "hostshare");
	/* Past the tag: nothing. */
	assert_int_equal(io_read(f, 22 + 9, 1), 0xff);
	/* The config tree has bhyve_config(5)'s keys. */
	assert_string_equal(config_get(f->cfg, "pci.0.5.0.sharename"),
			    "hostshare");
	assert_string_equal(config_get(f->cfg, "pci.0.5.0.path"), f->dir);
	fx_free(f);
}

static void
test_round_trip(void **state)
{
	struct fx *f = fx_new("share=%s");
	uint32_t n;

	(void)state;
	driver_init(f, 1);
	mount_9p(f);
	n = put_msg(f, TWALK, "442s", 1, 2, 1, "hello");
	assert_int_equal(submit(f, n, 1, 4096, 1), 7 + 2 + 13);
	n = put_msg(f, TLOPEN, "44", 2, 0);
	assert_int_equal(submit(f, n, 1, 4096, 1), 7 + 13 + 4);
	/*
	 * Tread as Linux's zero-copy path sends it: the request in two
	 * readable pieces, the reply's header and data in separate ones.
	 */
	n = put_msg(f, TREAD, "484", 2, (uint64_t)0, 4096);
	assert_int_equal(submit(f, n, 2, 11 + 4096, 3), 11 + 9);
	assert_int_equal(f->mem[RESP_GPA + 4], TREAD + 1);
	assert_int_equal(rle32(f, 7), 9);
	assert_memory_equal(f->mem + RESP_GPA + 11, "hello, 9p", 9);
	/* Room for less than the data: the read is cut to fit. */
	assert_int_equal(submit(f, n, 1, 16, 2), 16);
	assert_int_equal(rle32(f, 7), 5);
	/* An error comes back as Rlerror. */
	n = put_msg(f, TWALK, "442s", 1, 3, 1, "nope");
	assert_int_equal(submit(f, n, 1, 4096, 1), 11);
	assert_int_equal(f->mem[RESP_GPA + 4], RLERROR);
	assert_int_equal(rle32(f, 7), ENOENT);
	fx_free(f);
}

/* The same through an indirect table (Linux uses one when it can). */
static void
test_indirect(void **state)
{
	struct fx *f = fx_new("share=%s");
	struct vring_desc *t = (struct vring_desc *)(f->mem + TABLE_GPA);
	uint16_t u;
	uint32_t n;

	(void)state;
	driver_init(f, 1 | VIRTIO_RING_F_INDIRECT_DESC);
	mount_9p(f);
	n = put_msg(f, TWALK, "442s", 1, 2, 1, "hello");
	t[0] = (struct vring_desc){REQ_GPA, n, VRING_DESC_F_NEXT, 1};
	t[1] = (struct vring_desc){RESP_GPA, 100, VRING_DESC_F_WRITE, 0};
	f->desc[100] =
	    (struct vring_desc){TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0};
	u = used_idx(f);
	f->avail->ring[f->avail_idx % QSZ] = 100;
	f->avail_idx++;
	__atomic_store_n(&f->avail->idx, f->avail_idx, __ATOMIC_RELEASE);
	io_write(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
	assert_true(wait_used(f, (uint16_t)(u + 1)));
	assert_int_equal(f->used->ring[u % QSZ].len, 7 + 2 + 13);
	assert_int_equal(f->mem[RESP_GPA + 4], TWALK + 1);
	fx_free(f);
}

/* Chains the server cannot answer, and chains that break the rules. */
static void
test_bad_chains(void **state)
{
	struct fx *f = fx_new("share=%s");
	uint32_t n;

	(void)state;
	driver_init(f, 1);
	mount_9p(f);
	/* No room for a reply, or a request shorter than a header: 0. */
	n = put_msg(f, TWALK, "442s", 1, 2, 1, "hello");
	assert_int_equal(submit(f, n, 1, 10, 1), 0);
	assert_int_equal(submit(f, 6, 1, 4096, 1), 0);
	/* A size field larger than the request: Rlerror. */
	f->mem[REQ_GPA] = 200;
	assert_int_equal(submit(f, n, 1, 4096, 1), 11);
	assert_int_equal(rle32(f, 7), EINVAL);
	/* Still serving. */
	n = put_msg(f, TWALK, "442s", 1, 2, 1, "hello");
	assert_int_equal(submit(f, n, 1, 4096, 1), 7 + 2 + 13);
	/* A readable buffer after a writable one: the queue stops. */
	f->desc[0] = (struct vring_desc){
	    RESP_GPA, 100, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1};
	f->desc[1] = (struct vring_desc){REQ_GPA, n, 0, 0};
	f->avail->ring[f->avail_idx % QSZ] = 0;
	f->avail_idx++;
	__atomic_store_n(&f->avail->idx, f->avail_idx, __ATOMIC_RELEASE);
	io_write(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
	for (int i = 0; i < 5000 && !(io_read(f, VIRTIO_PCI_STATUS, 1) &
				      VIRTIO_CONFIG_S_NEEDS_RESET);
	     i++)
		usleep(1000);
	assert_true(io_read(f, VIRTIO_PCI_STATUS, 1) &
		    VIRTIO_CONFIG_S_NEEDS_RESET);
	/* A reset brings it back; the 9P session is new. */
	driver_init(f, 1);
	mount_9p(f);
	fx_free(f);
}

/* The worker serves under its own seccomp filter (Seccomp: 2). */
static void
test_worker_sandboxed(void **state)
{
	struct fx *f = fx_new("share=%s");
	char path[300], line[128], comm[32];
	bool found = false;
	struct dirent *de;
	DIR *d;

	(void)state;
	driver_init(f, 1);
	mount_9p(f); /* served by the worker */
	d = opendir("/proc/self/task");
	assert_non_null(d);
	while ((de = readdir(d))) {
		FILE *fp;

		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 de->d_name);
		fp = fopen(path, "r");
		if (!fp)
			continue;
		if (!fgets(comm, sizeof(comm), fp) || strcmp(comm, "9p\n")) {
			fclose(fp);
			continue;
		}
		fclose(fp);
		snprintf(path, sizeof(path), "/proc/self/task/%s/status",
			 de->d_name);
		fp = fopen(path, "r");
		assert_non_null(fp);
		while (fgets(line, sizeof(line), fp))
			if (!strncmp(line, "Seccomp:", 8))
				found = strtol(line + 8, NULL, 10) == 2;
		fclose(fp);
	}
	closedir(d);
	assert_true(found);
	/* And it still does file work there: mkdir, read, readdir. */
	{
		uint32_t n = put_msg(f, 72, "4s44", 1, "made", 0755, 0);
		struct stat st;
		char p[128];

		assert_int_equal(submit(f, n, 1, 4096, 1), 7 + 13);
		snprintf(p, sizeof(p), "%s/made", f->dir);
		assert_int_equal(stat(p, &st), 0);
		n = put_msg(f, TWALK, "442", 1, 2, 0);
		assert_int_equal(submit(f, n, 1, 4096, 1), 9);
		n = put_msg(f, TLOPEN, "44", 2, O_RDONLY | O_DIRECTORY);
		assert_int_equal(submit(f, n, 1, 4096, 1), 7 + 13 + 4);
		n = put_msg(f, 40, "484", 2, (uint64_t)0, 4000);
		assert_true(submit(f, n, 1, 4096, 1) > 11 + 4 * 24);
		assert_int_equal(f->mem[RESP_GPA + 4], 41);
	}
	fx_free(f);
}

/* Send the message at REQ_GPA; its reply's type (Rlerror's ecode in *e). */
static uint8_t
rpc(struct fx *f, uint32_t n, uint32_t *e)
{
	submit(f, n, 1, 8192, 1);
	*e = f->mem[RESP_GPA + 4] == RLERROR ? rle32(f, 7) : 0;
	return f->mem[RESP_GPA + 4];
}

#define RPC_OK(f, ...)                                                         \
	do {                                                                   \
		uint32_t e_;                                                   \
		uint32_t n_ = put_msg(f, __VA_ARGS__);                         \
		uint8_t t_ = rpc(f, n_, &e_);                                  \
		if (e_)                                                        \
			fail_msg("message type %u: Rlerror %u (%s)",           \
				 (unsigned)f->mem[REQ_GPA + 4], e_,            \
				 strerror((int)e_));                           \
		assert_int_equal(t_, f->mem[REQ_GPA + 4] + 1);                 \
	} while (0)

/*
 * Every kind of request through the worker, under its filter: a system
 * call the filter lacks would end the process (SIGSYS, exit 4).
 */
static void
test_every_request_sandboxed(void **state)
{
	struct fx *f = fx_new("share=%s");
	char p[128];
	struct stat st;

	(void)state;
	driver_init(f, 1);
	mount_9p(f);
	RPC_OK(f, 8, "4", 1);			 /* statfs */
	RPC_OK(f, 24, "48", 1, (uint64_t)0x7ff); /* getattr */
	RPC_OK(f, 72, "4s44", 1, "d", 0755, 0);	 /* mkdir */
	RPC_OK(f, TWALK, "442s", 1, 2, 1, "d");
	RPC_OK(f, 14, "4s444", 2, "f", O_RDWR, 0644, 0); /* lcreate */
	RPC_OK(f, 118, "48414", 2, (uint64_t)0, 5, 0x6c6c6568, 'o'); /* write */
	RPC_OK(f, 50, "44", 2, 0);				     /* fsync */
	RPC_OK(f, 50, "44", 2, 1); /* fdatasync */
	RPC_OK(f, TREAD, "484", 2, (uint64_t)0, 100);
	RPC_OK(f, 52, "414884s", 2, 1, 0, (uint64_t)0, (uint64_t)1, 1, "c");
	RPC_OK(f, 54, "41884s", 2, 1, (uint64_t)0, (uint64_t)1, 1, "c");
	/* setattr: mode, owner, size, both times */
	RPC_OK(f, 26, "4444488888", 2, 0x1ff & ~0x40, 0600, getuid(), getgid(),
	       (uint64_t)3, (uint64_t)1, (uint64_t)0, (uint64_t)2, (uint64_t)0);
	RPC_OK(f, 30, "44s", 2, 3, ""); /* xattrwalk: list */
	RPC_OK(f, TREAD, "484", 3, (uint64_t)0, 100);
	RPC_OK(f, 120, "4", 3); /* clunk */
	RPC_OK(f, TWALK, "442s", 1, 4, 1, "d");
	RPC_OK(f, 16, "4ss4", 4, "l", "f", 0); /* symlink */
	RPC_OK(f, TWALK, "442s", 4, 5, 1, "l");
	RPC_OK(f, 22, "4", 5);					  /* readlink */
	RPC_OK(f, 18, "4s4444", 4, "p", S_IFIFO | 0600, 0, 0, 0); /* mknod */
	RPC_OK(f, TWALK, "442s", 4, 6, 1, "f");
	RPC_OK(f, 70, "44s", 4, 6, "h");	/* link */
	RPC_OK(f, 74, "4s4s", 4, "h", 1, "h2"); /* renameat */
	RPC_OK(f, 20, "44s", 6, 1, "f2");	/* rename */
	RPC_OK(f, 76, "4s4", 4, "p", 0);	/* unlinkat */
	RPC_OK(f, TWALK, "442", 4, 7, 0);
	RPC_OK(f, TLOPEN, "44", 7, O_RDONLY | O_DIRECTORY);
	RPC_OK(f, 40, "484", 7, (uint64_t)0, 4000); /* readdir */
	RPC_OK(f, 122, "4", 5);			    /* remove */
	RPC_OK(f, 108, "2", 1);			    /* flush */
	snprintf(p, sizeof(p), "%s/f2", f->dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 3);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_mtim.tv_sec, 2);
	snprintf(p, sizeof(p), "%s/h2", f->dir);
	assert_int_equal(stat(p, &st), 0);
	snprintf(p, sizeof(p), "%s/d/l", f->dir);
	assert_int_not_equal(lstat(p, &st), 0);
	fx_free(f);
}

/* Teardown with a request queued and the worker busy: no leak, no hang. */
static void
test_teardown_busy(void **state)
{
	struct fx *f = fx_new("share=%s,ro");
	uint32_t n;

	(void)state;
	driver_init(f, 1);
	mount_9p(f);
	n = put_msg(f, 72, "4s44", 1, "made", 0755, 0);
	assert_int_equal(submit(f, n, 1, 4096, 1), 11);
	assert_int_equal(rle32(f, 7), EROFS);
	for (int i = 0; i < 20; i++) {
		f->desc[i] = (struct vring_desc){REQ_GPA, n, VRING_DESC_F_NEXT,
						 (uint16_t)(i + 100)};
		f->desc[i + 100] =
		    (struct vring_desc){RESP_GPA, 4096, VRING_DESC_F_WRITE, 0};
		f->avail->ring[f->avail_idx % QSZ] = (uint16_t)i;
		f->avail_idx++;
	}
	__atomic_store_n(&f->avail->idx, f->avail_idx, __ATOMIC_RELEASE);
	io_write(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
	fx_free(f);
}

static void
test_config_errors(void **state)
{
	char line[512];

	(void)state;
	assert_int_equal(
	    init_capture("share=/nonexistent/x", line, sizeof(line)), -1);
	assert_non_null(strstr(line, "virtio-9p at 0:5:0: cannot share "
				     "/nonexistent/x: No such file"));
	assert_int_equal(init_capture("share=%s/hello", line, sizeof(line)),
			 -1);
	assert_non_null(strstr(line, "not a directory"));
	assert_int_equal(init_capture("share=%s,bogus=1", line, sizeof(line)),
			 -1);
	assert_non_null(strstr(line, "unknown option 'bogus'"));
	assert_int_equal(init_capture("share=%s,ro=maybe", line, sizeof(line)),
			 -1);
	assert_non_null(strstr(line, "invalid value 'maybe' for ro"));
	{
		char opts[400];

		memset(opts, 'n', 256);
		strcpy(opts + 256, "=%s");
		assert_int_equal(init_capture(opts, line, sizeof(line)), -1);
		assert_non_null(strstr(line, "longer than 255 bytes"));
		memset(opts, 'n', 255);
		strcpy(opts + 255, "=%s");
		assert_int_equal(init_capture(opts, line, sizeof(line)), 0);
	}
	assert_int_equal(init_capture("=%s", line, sizeof(line)), -1);
	assert_non_null(strstr(line, "needs a share name"));
	/* The legacy syntax wants NAME=PATH first. */
	assert_int_equal(init_capture("%s", line, sizeof(line)), -2);
	assert_non_null(strstr(line, "expected SHARENAME=/path"));
	assert_int_equal(init_capture("ro,share=%s", line, sizeof(line)), -2);
	/* One line each. */
	assert_int_equal(init_capture("share=%s", line, sizeof(line)), 0);
	assert_string_equal(line, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_identity_and_tag),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_indirect),
	    cmocka_unit_test(test_bad_chains),
	    cmocka_unit_test(test_worker_sandboxed),
	    cmocka_unit_test(test_every_request_sandboxed),
	    cmocka_unit_test(test_teardown_busy),
	    cmocka_unit_test(test_config_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
