/*
 * virtio-rnd against the mock backend: a legacy driver built here posts
 * writable buffers in mock guest memory and checks what the device put
 * there (virtio 1.2 §5.4): random bytes, the used length, the 64 KiB bound
 * per request, and a chain with readable buffers stopping the queue.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "inout.h"
#include "machine.h"
#include "pci_emul.h"
#include "virtio.h"

#define MEMSIZE (16 << 20)
#define QSZ 64
#define RING_GPA 0x10000ULL
#define DATA_GPA 0x100000ULL
#define SLOT 6

static char err[512];

struct fx {
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
	uint8_t *mem;
	int iobase;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;
};

static int
fx_init(struct fx *f, const char *opts)
{
	char s[256];

	f->cfg = config_create();
	assert_int_equal(config_set(f->cfg, "pci.0.0.0.device", "hostbridge",
				    err, sizeof(err)),
			 0);
	snprintf(s, sizeof(s), "%d,virtio-rnd%s%s", SLOT, opts ? "," : "",
		 opts ? opts : "");
	assert_int_equal(pci_parse_slot(f->cfg, s, err, sizeof(err)), 0);
	f->ctx = vm_create_mock(MEMSIZE);
	assert_non_null(f->ctx);
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	f->mem = vm_map_gpa(f->ctx, 0, MEMSIZE);
	return init_pci(f->ctx);
}

static void
fx_free(struct fx *f)
{
	machine_free(f->m);
	vm_close(f->ctx);
	config_free(f->cfg);
	free(f);
}

static struct fx *
fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(fx_init(f, NULL), 0);
	f->iobase = (int)(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x10, 4) & ~3u);
	return f;
}

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
driver_init_features(struct fx *f, uint32_t features)
{
	uint64_t used_off = (16 * QSZ + 2 * (3 + QSZ) + 4095) & ~4095ULL;

	io_write(f, VIRTIO_PCI_STATUS, 1, 0);
	io_write(f, VIRTIO_PCI_STATUS, 1, 1 | 2);
	io_write(f, VIRTIO_PCI_GUEST_FEATURES, 4, features);
	io_write(f, VIRTIO_PCI_QUEUE_SEL, 2, 0);
	assert_int_equal(io_read(f, VIRTIO_PCI_QUEUE_NUM, 2), QSZ);
	memset(f->mem + RING_GPA, 0, 0x3000);
	f->desc = (struct vring_desc *)(f->mem + RING_GPA);
	f->avail = (struct vring_avail *)(f->mem + RING_GPA + 16 * QSZ);
	f->used = (struct vring_used *)(f->mem + RING_GPA + used_off);
	f->avail_idx = 0;
	io_write(f, VIRTIO_PCI_QUEUE_PFN, 4, RING_GPA >> 12);
	io_write(f, VIRTIO_PCI_STATUS, 1, 1 | 2 | 4);
}

static void
driver_init(struct fx *f)
{
	driver_init_features(f, 0);
}

/* A chain of n buffers of len bytes each from DATA_GPA; the used len. */
static uint32_t
request(struct fx *f, int n, uint32_t len, uint16_t flags)
{
	uint16_t u = f->used->idx;

	for (int i = 0; i < n; i++)
		f->desc[i] = (struct vring_desc){
		    DATA_GPA + (uint64_t)i * len, len,
		    (uint16_t)(flags | (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
		    (uint16_t)(i + 1)};
	f->avail->ring[f->avail_idx % QSZ] = 0;
	f->avail_idx++;
	__atomic_store_n(&f->avail->idx, f->avail_idx, __ATOMIC_RELEASE);
	io_write(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
	if (f->used->idx == u)
		return UINT32_MAX; /* not answered */
	assert_int_equal(f->used->ring[u % QSZ].id, 0);
	return f->used->ring[u % QSZ].len;
}

static void
test_identity(void **state)
{
	struct fx *f = fx_new();

	(void)state;
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0, 2), 0x1af4);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 2, 2), 0x1005);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x2e, 2), 4);
	/* Only the ring's own feature; no device config (§5.4.3, §5.4.4). */
	assert_int_equal(io_read(f, VIRTIO_PCI_HOST_FEATURES, 4), 1u << 29);
	assert_int_equal(io_read(f, 20, 1), 0xff);
	fx_free(f);
}

static size_t
count_zero(const uint8_t *p, size_t n)
{
	size_t z = 0;

	for (size_t i = 0; i < n; i++)
		z += p[i] == 0;
	return z;
}

static void
test_fill(void **state)
{
	struct fx *f = fx_new();
	uint8_t *d;

	(void)state;
	driver_init(f);
	d = f->mem + DATA_GPA;
	memset(d, 0, 3 * 4096 + 16);
	/* Three writable buffers, filled whole; the byte after untouched. */
	assert_int_equal(request(f, 3, 4096, VRING_DESC_F_WRITE), 3 * 4096);
	assert_true(count_zero(d, 3 * 4096) < 3 * 4096 / 64);
	assert_int_equal(count_zero(d + 3 * 4096, 16), 16);
	/* Two requests differ. */
	uint8_t first[64];
	memcpy(first, d, sizeof(first));
	assert_int_equal(request(f, 1, 64, VRING_DESC_F_WRITE), 64);
	assert_memory_not_equal(first, d, sizeof(first));
	/* One byte; and a zero-length buffer gets nothing. */
	assert_int_equal(request(f, 1, 1, VRING_DESC_F_WRITE), 1);
	assert_int_equal(request(f, 1, 0, VRING_DESC_F_WRITE), 0);
	fx_free(f);
}

/*
 * With EVENT_IDX each request leaves avail_event at the driver's next index
 * (§2.7.10): Linux's virtio_rng posts one buffer per read and notifies only
 * when asked, so without it the second read of /dev/hwrng never ends.
 */
static void
test_event_idx(void **state)
{
	struct fx *f = fx_new();
	uint16_t *avail_event;

	(void)state;
	driver_init_features(f, 1u << 29);
	avail_event = (uint16_t *)&f->used->ring[QSZ];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(request(f, 1, 64, VRING_DESC_F_WRITE), 64);
		assert_int_equal(*avail_event, f->avail_idx);
	}
	fx_free(f);
}

static void
test_bound(void **state)
{
	struct fx *f = fx_new();
	uint8_t *d;

	(void)state;
	driver_init(f);
	d = f->mem + DATA_GPA;
	memset(d, 0, 4 * 32768);
	/* 128 KiB asked, 64 KiB given: the rest stays as it was. */
	assert_int_equal(request(f, 4, 32768, VRING_DESC_F_WRITE), 65536);
	assert_int_equal(count_zero(d + 65536, 65536), 65536);
	assert_true(count_zero(d, 65536) < 65536 / 64);
	fx_free(f);
}

static void
test_bad_chain(void **state)
{
	struct fx *f = fx_new();

	(void)state;
	driver_init(f);
	/* Readable only: a bad chain; the queue stops, the device says so. */
	assert_int_equal(request(f, 1, 64, 0), UINT32_MAX);
	assert_true(io_read(f, VIRTIO_PCI_STATUS, 1) & 0x40);
	assert_int_equal(request(f, 1, 64, VRING_DESC_F_WRITE), UINT32_MAX);
	/* A reset brings it back. */
	driver_init(f);
	assert_int_equal(request(f, 1, 64, VRING_DESC_F_WRITE), 64);
	/* Outside guest memory: bad too. */
	f->desc[0] =
	    (struct vring_desc){MEMSIZE - 8, 64, VRING_DESC_F_WRITE, 0};
	f->avail->ring[f->avail_idx++ % QSZ] = 0;
	f->avail->idx = f->avail_idx;
	io_write(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
	assert_true(io_read(f, VIRTIO_PCI_STATUS, 1) & 0x40);
	fx_free(f);
}

static void
test_options(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char path[] = "/tmp/test_vrnd_err.XXXXXX", line[256] = "";
	int fd = mkstemp(path), saved = dup(2);
	FILE *fp;

	(void)state;
	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	assert_int_equal(fx_init(f, "seed=4"), -1);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	fclose(fp);
	unlink(path);
	assert_non_null(strstr(line, "virtio-rnd at 0:6:0: takes no options: "
				     "remove seed"));
	fx_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_identity), cmocka_unit_test(test_fill),
	    cmocka_unit_test(test_bound),    cmocka_unit_test(test_bad_chain),
	    cmocka_unit_test(test_options),  cmocka_unit_test(test_event_idx),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
