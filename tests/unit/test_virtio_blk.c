/*
 * virtio-blk and the virtio core against the mock backend: a legacy driver
 * built here sets the device up through its I/O BAR, lays descriptor
 * tables and rings out in mock guest memory, and checks what the device
 * writes back (used ring, status bytes, data, interrupts) and what lands in
 * the image file. Bad chains of every kind must stop the queue cleanly.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#define QSZ 128
#define RING_GPA 0x10000ULL
#define HDR_GPA 0x20000ULL
#define STATUS_GPA 0x20100ULL
#define TABLE_GPA 0x28000ULL
#define DATA_GPA 0x30000ULL
#define DISK_SECTORS 2048 /* a 1 MiB image */
#define SLOT 4

/* Feature bits the tests look for. */
#define F_SEG_MAX (1u << 2)
#define F_RO (1u << 5)
#define F_BLK_SIZE (1u << 6)
#define F_FLUSH (1u << 9)
#define F_TOPOLOGY (1u << 10)
#define F_INDIRECT (1u << 28)
#define F_EVENT_IDX (1u << 29)

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2
#define NO_STATUS 0xee /* what the test puts in status bytes first */

static char err[512];

struct fx {
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
	char image[64];
	uint8_t *mem;
	int iobase;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;
	int irq;
};

/* ---- the fixture: an image file and a VM with the device in slot 4 ---- */

static void
make_image(struct fx *f)
{
	uint8_t sector[512];
	FILE *fp;

	strcpy(f->image, "/tmp/test_vblk.XXXXXX");
	int fd = mkstemp(f->image);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	for (int s = 0; s < DISK_SECTORS; s++) {
		memset(sector, (uint8_t)s, sizeof(sector));
		memcpy(sector, &s, sizeof(s));
		assert_int_equal(fwrite(sector, 1, sizeof(sector), fp), 512);
	}
	fclose(fp);
}

static void
set(struct fx *f, const char *k, const char *v)
{
	assert_int_equal(config_set(f->cfg, k, v, err, sizeof(err)), 0);
}

/* A VM with the device configured by opts ("key=value,..."); init's rc. */
static int
fx_init(struct fx *f, const char *opts)
{
	char path[512];

	f->cfg = config_create();
	set(f, "pci.0.0.0.device", "hostbridge");
	snprintf(path, sizeof(path), "%d,virtio-blk,%s%s%s", SLOT, f->image,
		 opts && *opts ? "," : "", opts ? opts : "");
	assert_int_equal(pci_parse_slot(f->cfg, path, err, sizeof(err)), 0);
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
	make_image(f);
	assert_int_equal(fx_init(f, opts), 0);
	f->iobase = (int)(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x10, 4) & ~3u);
	f->irq = (int)pci_cfg_read(f->ctx, 0, SLOT, 0, 0x3c, 1);
	return f;
}

static void
fx_free(struct fx *f)
{
	machine_free(f->m);
	vm_close(f->ctx);
	config_free(f->cfg);
	unlink(f->image);
	free(f);
}

/* Run init with stderr in a file; its first line in buf; init's rc. */
static int
init_capture(const char *opts, char *buf, size_t len)
{
	struct fx *f = calloc(1, sizeof(*f));
	char path[] = "/tmp/test_vblk_err.XXXXXX";
	int fd = mkstemp(path), saved = dup(2), rc;
	FILE *fp;

	assert_true(fd >= 0 && saved >= 0);
	make_image(f);
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
ring_at(struct fx *f, uint64_t gpa)
{
	uint64_t used_off = (16 * QSZ + 2 * (3 + QSZ) + 4095) & ~4095ULL;

	f->desc = (struct vring_desc *)(f->mem + gpa);
	f->avail = (struct vring_avail *)(f->mem + gpa + 16 * QSZ);
	f->used = (struct vring_used *)(f->mem + gpa + used_off);
}

/* The legacy driver's bring-up (§3.1.1, §4.1.4.8), with these features. */
static void
driver_init(struct fx *f, uint32_t features)
{
	io_write(f, VIRTIO_PCI_STATUS, 1, 0);
	io_write(f, VIRTIO_PCI_STATUS, 1, 1 | 2);
	io_write(f, VIRTIO_PCI_GUEST_FEATURES, 4,
		 features & io_read(f, VIRTIO_PCI_HOST_FEATURES, 4));
	io_write(f, VIRTIO_PCI_QUEUE_SEL, 2, 0);
	assert_int_equal(io_read(f, VIRTIO_PCI_QUEUE_NUM, 2), QSZ);
	memset(f->mem + RING_GPA, 0, 0x3000);
	ring_at(f, RING_GPA);
	f->avail_idx = 0;
	io_write(f, VIRTIO_PCI_QUEUE_PFN, 4, RING_GPA >> 12);
	io_write(f, VIRTIO_PCI_STATUS, 1, 1 | 2 | 4);
}

static void
desc_set(struct fx *f, int i, uint64_t addr, uint32_t len, uint16_t flags,
	 uint16_t next)
{
	f->desc[i] = (struct vring_desc){addr, len, flags, next};
}

static void
avail_push(struct fx *f, uint16_t head)
{
	f->avail->ring[f->avail_idx % QSZ] = head;
	f->avail_idx++;
	__atomic_store_n(&f->avail->idx, f->avail_idx, __ATOMIC_RELEASE);
}

static void
kick(struct fx *f)
{
	io_write(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
}

static uint16_t
used_idx(struct fx *f)
{
	return __atomic_load_n(&f->used->idx, __ATOMIC_ACQUIRE);
}

/*
 * Wait up to 5 s for the used index to reach want, then for the device to
 * finish the completion (a register read takes the device's lock).
 */
static bool
wait_used(struct fx *f, uint16_t want)
{
	struct timespec ts = {0, 1000000};

	for (int i = 0; i < 5000 && used_idx(f) != want; i++)
		nanosleep(&ts, NULL);
	(void)io_read(f, VIRTIO_PCI_QUEUE_SEL, 2);
	return used_idx(f) == want;
}

static void
put_hdr(struct fx *f, uint32_t type, uint64_t sector)
{
	uint32_t h[4] = {type, 0, (uint32_t)sector, (uint32_t)(sector >> 32)};

	memcpy(f->mem + HDR_GPA, h, sizeof(h));
	f->mem[STATUS_GPA] = NO_STATUS;
}

/*
 * One request in three descriptors (header, data, status) at descriptor
 * base; returns its status byte, the used length in *ulen.
 */
static uint8_t
submit(struct fx *f, uint32_t type, uint64_t sector, uint32_t len,
       uint32_t *ulen)
{
	uint16_t u = used_idx(f), b = (f->avail_idx * 3) % (QSZ - 2);
	bool in = type == T_IN || type == T_GET_ID;

	put_hdr(f, type, sector);
	desc_set(f, b, HDR_GPA, 16, VRING_DESC_F_NEXT, b + 1);
	desc_set(f, b + 1, DATA_GPA, len,
		 VRING_DESC_F_NEXT | (in ? VRING_DESC_F_WRITE : 0), b + 2);
	desc_set(f, b + 2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	avail_push(f, b);
	kick(f);
	assert_true(wait_used(f, (uint16_t)(u + 1)));
	assert_int_equal(f->used->ring[u % QSZ].id, b);
	if (ulen)
		*ulen = f->used->ring[u % QSZ].len;
	return f->mem[STATUS_GPA];
}

static void
read_image(struct fx *f, off_t off, void *buf, size_t len)
{
	FILE *fp = fopen(f->image, "r");

	assert_non_null(fp);
	assert_int_equal(fseeko(fp, off, SEEK_SET), 0);
	assert_int_equal(fread(buf, 1, len, fp), len);
	fclose(fp);
}

static uint8_t
status_reg(struct fx *f)
{
	return (uint8_t)io_read(f, VIRTIO_PCI_STATUS, 1);
}

/* ---- identity and registers ---- */

static void
test_identity(void **state)
{
	struct fx *f = fx_new(NULL);
	uint32_t feat;

	(void)state;
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0, 2), 0x1af4);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 2, 2), 0x1001);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 8, 1), 0);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x0b, 1), 0x01);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x2c, 2), 0x1af4);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x2e, 2), 2);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x10, 4) & 1, 1);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x3d, 1), 1);
	feat = io_read(f, VIRTIO_PCI_HOST_FEATURES, 4);
	assert_int_equal(feat, F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_TOPOLOGY |
				   F_INDIRECT | F_EVENT_IDX);
	/* Device config right after the registers while MSI-X is off. */
	assert_int_equal(io_read(f, 20, 4), DISK_SECTORS);
	assert_int_equal(io_read(f, 24, 4), 0);
	assert_int_equal(io_read(f, 20 + 12, 4), QSZ - 2); /* seg_max */
	assert_int_equal(io_read(f, 20 + 20, 4), 512);	   /* blk_size */
	assert_int_equal(io_read(f, 20 + 24, 1), 0);	   /* phys exp */
	assert_int_equal(io_read(f, 20 + 26, 2), 1);	   /* min_io */
	/* Past the config: all ones. Wrong widths: all ones, ignored. */
	assert_int_equal(io_read(f, 20 + 36, 1), 0xff);
	assert_int_equal(io_read(f, VIRTIO_PCI_STATUS, 4), 0xffffffff);
	io_write(f, VIRTIO_PCI_QUEUE_SEL, 4, 7);
	assert_int_equal(io_read(f, VIRTIO_PCI_QUEUE_SEL, 2), 0);
	/* A queue that does not exist reads as size 0. */
	io_write(f, VIRTIO_PCI_QUEUE_SEL, 2, 3);
	assert_int_equal(io_read(f, VIRTIO_PCI_QUEUE_NUM, 2), 0);
	io_write(f, VIRTIO_PCI_QUEUE_PFN, 4, 0x40);
	io_write(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, 3);
	/* Writes to the config are ignored. */
	io_write(f, 20, 4, 0);
	assert_int_equal(io_read(f, 20, 4), DISK_SECTORS);
	fx_free(f);
}

static uint8_t
cap_find(struct fx *f, int id)
{
	for (int c = pci_cfg_read(f->ctx, 0, SLOT, 0, 0x34, 1), n = 0;
	     c && n < 48; c = pci_cfg_read(f->ctx, 0, SLOT, 0, c + 1, 1), n++)
		if ((int)pci_cfg_read(f->ctx, 0, SLOT, 0, c, 1) == id)
			return (uint8_t)c;
	return 0;
}

static void
msix_enable(struct fx *f)
{
	uint8_t cap = cap_find(f, 0x11);
	uint64_t bar = pci_cfg_read(f->ctx, 0, SLOT, 0, 0x14, 4) & ~0xfu, v;

	assert_true(cap != 0);
	/* Two vectors: config and the request queue. */
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, cap + 2, 2), 1);
	for (int i = 0; i < 2; i++) {
		v = 0xfee00000;
		emulate_mem(f->ctx, NULL, bar + 16 * i, MEM_F_WRITE, 4, &v);
		v = 0x30 + i;
		emulate_mem(f->ctx, NULL, bar + 16 * i + 8, MEM_F_WRITE, 4, &v);
		v = 0;
		emulate_mem(f->ctx, NULL, bar + 16 * i + 12, MEM_F_WRITE, 4,
			    &v);
	}
	pci_cfg_write(f->ctx, 0, SLOT, 0, cap + 2, 2, 0x8000);
}

static void
test_msix(void **state)
{
	struct fx *f = fx_new(NULL);
	uint64_t addr, msg;

	(void)state;
	msix_enable(f);
	/* With MSI-X on, the vector registers appear and config moves. */
	assert_int_equal(io_read(f, 24, 4), DISK_SECTORS);
	assert_int_equal(io_read(f, VIRTIO_MSI_CONFIG_VECTOR, 2), 0xffff);
	io_write(f, VIRTIO_MSI_CONFIG_VECTOR, 2, 0);
	assert_int_equal(io_read(f, VIRTIO_MSI_CONFIG_VECTOR, 2), 0);
	driver_init(f, F_EVENT_IDX);
	io_write(f, VIRTIO_PCI_QUEUE_SEL, 2, 0);
	/* A vector the table lacks reads back as none (the driver checks). */
	io_write(f, VIRTIO_MSI_QUEUE_VECTOR, 2, 2);
	assert_int_equal(io_read(f, VIRTIO_MSI_QUEUE_VECTOR, 2), 0xffff);
	io_write(f, VIRTIO_MSI_QUEUE_VECTOR, 2, 1);
	assert_int_equal(io_read(f, VIRTIO_MSI_QUEUE_VECTOR, 2), 1);
	assert_int_equal(submit(f, T_IN, 0, 512, NULL), S_OK);
	assert_int_equal(vm_mock_msi_count(f->ctx, &addr, &msg), 1);
	assert_int_equal(addr, 0xfee00000);
	assert_int_equal(msg, 0x31);
	/* MSI-X, not INTx: the ISR stays clear and the line low. */
	assert_int_equal(vm_mock_irq_pulses(f->ctx, f->irq), 0);
	assert_int_equal(io_read(f, VIRTIO_PCI_ISR, 1), 0);
	fx_free(f);
}

/* ---- requests ---- */

static void
test_read_write(void **state)
{
	struct fx *f = fx_new(NULL);
	uint8_t buf[4096];
	uint32_t ulen;
	int s;

	(void)state;
	driver_init(f, 0);
	/* Read sectors 5-12: the image's pattern, used length data + 1. */
	assert_int_equal(submit(f, T_IN, 5, 4096, &ulen), S_OK);
	assert_int_equal(ulen, 4097);
	for (int i = 0; i < 8; i++) {
		memcpy(&s, f->mem + DATA_GPA + 512 * i, sizeof(s));
		assert_int_equal(s, 5 + i);
	}
	/* Write two sectors at 100 and find them in the file. */
	memset(f->mem + DATA_GPA, 0xab, 1024);
	assert_int_equal(submit(f, T_OUT, 100, 1024, &ulen), S_OK);
	assert_int_equal(ulen, 1);
	read_image(f, 100 * 512, buf, 1024);
	for (int i = 0; i < 1024; i++)
		assert_int_equal(buf[i], 0xab);
	read_image(f, 102 * 512, buf, 4);
	memcpy(&s, buf, sizeof(s));
	assert_int_equal(s, 102);
	/* The last sector is readable; flush succeeds. */
	assert_int_equal(submit(f, T_IN, DISK_SECTORS - 1, 512, NULL), S_OK);
	assert_int_equal(submit(f, T_FLUSH, 0, 0, &ulen), S_OK);
	assert_int_equal(ulen, 1);
	/* INTx without MSI-X: the ISR says why, reading it drops the line. */
	assert_true(vm_mock_irq_pulses(f->ctx, f->irq) >= 1);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 1);
	assert_int_equal(io_read(f, VIRTIO_PCI_ISR, 1), 1);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	assert_int_equal(io_read(f, VIRTIO_PCI_ISR, 1), 0);
	fx_free(f);
}

static void
test_out_of_range(void **state)
{
	struct fx *f = fx_new(NULL);
	uint8_t before[512], after[512];

	(void)state;
	driver_init(f, 0);
	read_image(f, (DISK_SECTORS - 1) * 512, before, 512);
	assert_int_equal(submit(f, T_IN, DISK_SECTORS, 512, NULL), S_IOERR);
	assert_int_equal(submit(f, T_OUT, DISK_SECTORS - 1, 1024, NULL),
			 S_IOERR);
	assert_int_equal(submit(f, T_IN, ~0ULL, 512, NULL), S_IOERR);
	assert_int_equal(submit(f, T_IN, ~0ULL / 512 + 1, 512, NULL), S_IOERR);
	/* Not a whole number of sectors. */
	assert_int_equal(submit(f, T_IN, 0, 100, NULL), S_IOERR);
	/* Unknown types are unsupported. */
	assert_int_equal(submit(f, 2, 0, 512, NULL), S_UNSUPP);
	assert_int_equal(submit(f, 11, 0, 512, NULL), S_UNSUPP);
	read_image(f, (DISK_SECTORS - 1) * 512, after, 512);
	assert_memory_equal(before, after, 512);
	/* Data in the wrong direction: a read with readable data. */
	assert_int_equal(submit(f, T_IN, 0, 0, NULL), S_OK);
	put_hdr(f, T_IN, 0);
	uint16_t u = used_idx(f);
	desc_set(f, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(f, 1, DATA_GPA, 512, VRING_DESC_F_NEXT, 2);
	desc_set(f, 2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	avail_push(f, 0);
	kick(f);
	assert_true(wait_used(f, u + 1));
	assert_int_equal(f->mem[STATUS_GPA], S_IOERR);
	/* The queue still works. */
	assert_int_equal(submit(f, T_IN, 1, 512, NULL), S_OK);
	assert_int_equal(status_reg(f), 7);
	fx_free(f);
}

static void
test_get_id(void **state)
{
	struct fx *f = fx_new("ser=SERIAL-42");
	uint32_t ulen;

	(void)state;
	driver_init(f, 0);
	memset(f->mem + DATA_GPA, 'x', 32);
	assert_int_equal(submit(f, T_GET_ID, 0, 20, &ulen), S_OK);
	assert_int_equal(ulen, 21);
	assert_memory_equal(f->mem + DATA_GPA,
			    "SERIAL-42\0\0\0\0\0\0\0\0\0\0\0", 20);
	assert_int_equal(f->mem[DATA_GPA + 20], 'x');
	/* A short buffer gets what fits. */
	assert_int_equal(submit(f, T_GET_ID, 0, 4, &ulen), S_OK);
	assert_int_equal(ulen, 5);
	fx_free(f);

	f = fx_new(NULL);
	driver_init(f, 0);
	assert_int_equal(submit(f, T_GET_ID, 0, 20, NULL), S_OK);
	assert_memory_equal(f->mem + DATA_GPA, "BHYVE-", 6);
	assert_int_equal(strlen((char *)f->mem + DATA_GPA), 20);
	fx_free(f);
}

static void
test_read_only(void **state)
{
	struct fx *f = fx_new("ro");
	uint8_t before[1024], after[1024];

	(void)state;
	assert_true(io_read(f, VIRTIO_PCI_HOST_FEATURES, 4) & F_RO);
	driver_init(f, F_RO);
	read_image(f, 0, before, sizeof(before));
	memset(f->mem + DATA_GPA, 0x55, 1024);
	assert_int_equal(submit(f, T_OUT, 0, 1024, NULL), S_IOERR);
	read_image(f, 0, after, sizeof(after));
	assert_memory_equal(before, after, sizeof(before));
	assert_int_equal(submit(f, T_IN, 0, 1024, NULL), S_OK);
	assert_memory_equal(f->mem + DATA_GPA, before, 1024);
	assert_int_equal(submit(f, T_FLUSH, 0, 0, NULL), S_OK);
	fx_free(f);
}

/* Legacy framing is free (§5.2.6.3): header split, status with the data. */
static void
test_any_layout(void **state)
{
	struct fx *f = fx_new(NULL);
	uint16_t u;
	int s;

	(void)state;
	driver_init(f, 0);
	put_hdr(f, T_IN, 7);
	desc_set(f, 0, HDR_GPA, 5, VRING_DESC_F_NEXT, 3);
	desc_set(f, 3, HDR_GPA + 5, 11, VRING_DESC_F_NEXT, 9);
	/* 512 bytes of data and the status byte in one buffer. */
	desc_set(f, 9, DATA_GPA, 513, VRING_DESC_F_WRITE, 0);
	f->mem[DATA_GPA + 512] = NO_STATUS;
	u = used_idx(f);
	avail_push(f, 0);
	kick(f);
	assert_true(wait_used(f, u + 1));
	assert_int_equal(f->mem[DATA_GPA + 512], S_OK);
	assert_int_equal(f->used->ring[u % QSZ].len, 513);
	memcpy(&s, f->mem + DATA_GPA, sizeof(s));
	assert_int_equal(s, 7);
	/* No writable byte at all: handed back untouched, length 0. */
	desc_set(f, 0, HDR_GPA, 16, 0, 0);
	u = used_idx(f);
	avail_push(f, 0);
	kick(f);
	assert_true(wait_used(f, u + 1));
	assert_int_equal(f->used->ring[u % QSZ].len, 0);
	assert_int_equal(submit(f, T_IN, 1, 512, NULL), S_OK);
	fx_free(f);
}

static void
test_indirect(void **state)
{
	struct fx *f = fx_new(NULL);
	struct vring_desc *t = (struct vring_desc *)(f->mem + TABLE_GPA);
	uint16_t u;
	int s;

	(void)state;
	driver_init(f, F_INDIRECT);
	/* Header, two data buffers and status through a 4-entry table. */
	put_hdr(f, T_IN, 40);
	t[0] = (struct vring_desc){HDR_GPA, 16, VRING_DESC_F_NEXT, 2};
	t[2] = (struct vring_desc){DATA_GPA, 512,
				   VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1};
	t[1] = (struct vring_desc){DATA_GPA + 4096, 512,
				   VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 3};
	t[3] = (struct vring_desc){STATUS_GPA, 1, VRING_DESC_F_WRITE, 0};
	desc_set(f, 5, TABLE_GPA, 64, VRING_DESC_F_INDIRECT, 0);
	u = used_idx(f);
	avail_push(f, 5);
	kick(f);
	assert_true(wait_used(f, u + 1));
	assert_int_equal(f->mem[STATUS_GPA], S_OK);
	assert_int_equal(f->used->ring[u % QSZ].id, 5);
	memcpy(&s, f->mem + DATA_GPA, sizeof(s));
	assert_int_equal(s, 40);
	memcpy(&s, f->mem + DATA_GPA + 4096, sizeof(s));
	assert_int_equal(s, 41);
	/* A direct descriptor may come first, then the table. */
	desc_set(f, 6, HDR_GPA, 16, VRING_DESC_F_NEXT, 7);
	t[0] = (struct vring_desc){DATA_GPA, 512,
				   VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1};
	t[1] = (struct vring_desc){STATUS_GPA, 1, VRING_DESC_F_WRITE, 0};
	desc_set(f, 7, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	put_hdr(f, T_IN, 3);
	u = used_idx(f);
	avail_push(f, 6);
	kick(f);
	assert_true(wait_used(f, u + 1));
	assert_int_equal(f->mem[STATUS_GPA], S_OK);
	memcpy(&s, f->mem + DATA_GPA, sizeof(s));
	assert_int_equal(s, 3);
	fx_free(f);
}

/* ---- bad chains: the queue stops, NEEDS_RESET is set, nothing breaks ---- */

typedef void (*chain_fn)(struct fx *f);

/* Lay out a bad chain at head 0 (after fn), kick, expect a stopped queue. */
static void
expect_broken(uint32_t features, chain_fn fn)
{
	struct fx *f = fx_new(NULL);
	char path[] = "/tmp/test_vblk_err.XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	uint16_t u;

	driver_init(f, features);
	assert_int_equal(submit(f, T_IN, 0, 512, NULL), S_OK);
	u = used_idx(f);
	put_hdr(f, T_IN, 0);
	fn(f);
	fflush(stderr);
	dup2(fd, 2); /* the one-line complaint goes here */
	kick(f);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	unlink(path);
	assert_true(wait_used(f, u));
	assert_int_equal(used_idx(f), u);
	assert_int_equal(f->mem[STATUS_GPA], NO_STATUS);
	assert_true(status_reg(f) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* Nothing more is taken until a reset... */
	desc_set(f, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(f, 1, DATA_GPA, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
		 2);
	desc_set(f, 2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	f->avail_idx = f->avail->idx;
	avail_push(f, 0);
	kick(f);
	assert_true(wait_used(f, u));
	/* ...after which the device works again. */
	driver_init(f, features);
	assert_int_equal(status_reg(f), 7);
	assert_int_equal(submit(f, T_IN, 0, 512, NULL), S_OK);
	fx_free(f);
}

static void
chain_head_past_ring(struct fx *f)
{
	avail_push(f, QSZ);
}

static void
chain_next_past_ring(struct fx *f)
{
	desc_set(f, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, QSZ + 5);
	avail_push(f, 0);
}

static void
chain_loop(struct fx *f)
{
	desc_set(f, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(f, 1, DATA_GPA, 16, VRING_DESC_F_NEXT, 0);
	avail_push(f, 0);
}

static void
chain_self_loop_writable(struct fx *f)
{
	desc_set(f, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(f, 1, DATA_GPA, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	avail_push(f, 0);
}

static void
chain_outside_memory(struct fx *f)
{
	desc_set(f, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(f, 1, MEMSIZE - 256, 512,
		 VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	desc_set(f, 2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	avail_push(f, 0);
}

static void
chain_huge_address(struct fx *f)
{
	desc_set(f, 0, ~0ULL - 8, 16, 0, 0);
	avail_push(f, 0);
}

static void
chain_readable_after_writable(struct fx *f)
{
	desc_set(f, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(f, 1, STATUS_GPA, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
		 2);
	desc_set(f, 2, DATA_GPA, 512, 0, 0);
	avail_push(f, 0);
}

static void
chain_avail_leap(struct fx *f)
{
	/* The driver claims more chains than the ring holds. */
	f->avail_idx += QSZ + 1;
	avail_push(f, 0);
}

static void
chain_indirect_unnegotiated(struct fx *f)
{
	desc_set(f, 0, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	avail_push(f, 0);
}

static void
chain_indirect_bad_len(struct fx *f)
{
	desc_set(f, 0, TABLE_GPA, 24, VRING_DESC_F_INDIRECT, 0);
	avail_push(f, 0);
}

static void
chain_indirect_with_next(struct fx *f)
{
	struct vring_desc *t = (struct vring_desc *)(f->mem + TABLE_GPA);

	t[0] = (struct vring_desc){HDR_GPA, 16, 0, 0};
	desc_set(f, 0, TABLE_GPA, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT,
		 1);
	desc_set(f, 1, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	avail_push(f, 0);
}

static void
chain_indirect_nested(struct fx *f)
{
	struct vring_desc *t = (struct vring_desc *)(f->mem + TABLE_GPA);

	t[0] = (struct vring_desc){TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0};
	desc_set(f, 0, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	avail_push(f, 0);
}

static void
chain_indirect_loop(struct fx *f)
{
	struct vring_desc *t = (struct vring_desc *)(f->mem + TABLE_GPA);

	t[0] = (struct vring_desc){HDR_GPA, 16, VRING_DESC_F_NEXT, 1};
	t[1] = (struct vring_desc){DATA_GPA, 16, VRING_DESC_F_NEXT, 0};
	desc_set(f, 0, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	avail_push(f, 0);
}

static void
chain_indirect_next_past_table(struct fx *f)
{
	struct vring_desc *t = (struct vring_desc *)(f->mem + TABLE_GPA);

	t[0] = (struct vring_desc){HDR_GPA, 16, VRING_DESC_F_NEXT, 2};
	desc_set(f, 0, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	avail_push(f, 0);
}

static void
chain_indirect_table_outside(struct fx *f)
{
	desc_set(f, 0, MEMSIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
	avail_push(f, 0);
}

static void
chain_too_many_buffers(struct fx *f)
{
	/* 200 one-sector buffers in a table: more than seg_max + 2. */
	struct vring_desc *t = (struct vring_desc *)(f->mem + TABLE_GPA);

	for (int i = 0; i < 200; i++)
		t[i] = (struct vring_desc){
		    DATA_GPA + 512 * i, 512,
		    VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, (uint16_t)(i + 1)};
	t[0] = (struct vring_desc){HDR_GPA, 16, VRING_DESC_F_NEXT, 1};
	t[199].flags = VRING_DESC_F_WRITE;
	desc_set(f, 0, TABLE_GPA, 200 * 16, VRING_DESC_F_INDIRECT, 0);
	avail_push(f, 0);
}

static void
test_bad_chains(void **state)
{
	(void)state;
	expect_broken(0, chain_head_past_ring);
	expect_broken(0, chain_next_past_ring);
	expect_broken(0, chain_loop);
	expect_broken(0, chain_self_loop_writable);
	expect_broken(0, chain_outside_memory);
	expect_broken(0, chain_huge_address);
	expect_broken(0, chain_readable_after_writable);
	expect_broken(0, chain_avail_leap);
	expect_broken(0, chain_indirect_unnegotiated);
	expect_broken(F_INDIRECT, chain_indirect_bad_len);
	expect_broken(F_INDIRECT, chain_indirect_with_next);
	expect_broken(F_INDIRECT, chain_indirect_nested);
	expect_broken(F_INDIRECT, chain_indirect_loop);
	expect_broken(F_INDIRECT, chain_indirect_next_past_table);
	expect_broken(F_INDIRECT, chain_indirect_table_outside);
	expect_broken(F_INDIRECT, chain_too_many_buffers);
}

static void
test_ring_outside_memory(void **state)
{
	struct fx *f = fx_new(NULL);
	char path[] = "/tmp/test_vblk_err.XXXXXX";
	int fd = mkstemp(path), saved = dup(2);

	(void)state;
	io_write(f, VIRTIO_PCI_STATUS, 1, 3);
	fflush(stderr);
	dup2(fd, 2);
	io_write(f, VIRTIO_PCI_QUEUE_PFN, 4, (MEMSIZE >> 12) - 1);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	unlink(path);
	assert_true(status_reg(f) & VIRTIO_CONFIG_S_NEEDS_RESET);
	kick(f); /* nothing to do, nothing to crash */
	/* The driver's status writes keep NEEDS_RESET until a reset. */
	io_write(f, VIRTIO_PCI_STATUS, 1, 7);
	assert_int_equal(status_reg(f), 7 | VIRTIO_CONFIG_S_NEEDS_RESET);
	driver_init(f, 0);
	assert_int_equal(status_reg(f), 7);
	assert_int_equal(submit(f, T_IN, 0, 512, NULL), S_OK);
	fx_free(f);
}

/* ---- notification and interrupt suppression ---- */

static uint16_t *
avail_event(struct fx *f)
{
	return (uint16_t *)&f->used->ring[QSZ];
}

static uint16_t *
used_event(struct fx *f)
{
	return &f->avail->ring[QSZ];
}

static void
test_event_idx(void **state)
{
	struct fx *f = fx_new(NULL);
	int pulses;

	(void)state;
	driver_init(f, F_EVENT_IDX);
	assert_int_equal(io_read(f, VIRTIO_PCI_GUEST_FEATURES, 4), F_EVENT_IDX);
	/* used_event 0: interrupt on the first completion. */
	assert_int_equal(submit(f, T_IN, 0, 512, NULL), S_OK);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, f->irq), 1);
	/* Idle: it asks to be notified of the next chain. */
	assert_int_equal(*avail_event(f), f->avail_idx);
	/* The driver wants no interrupt before used index 10. */
	io_read(f, VIRTIO_PCI_ISR, 1);
	*used_event(f) = 10;
	for (int i = 0; i < 5; i++)
		assert_int_equal(submit(f, T_IN, i, 512, NULL), S_OK);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, f->irq), 1);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	/* used_event 6: the completion that makes used idx 7 interrupts. */
	*used_event(f) = 6;
	assert_int_equal(submit(f, T_IN, 0, 512, NULL), S_OK);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, f->irq), 2);
	assert_int_equal(*avail_event(f), f->avail_idx);
	fx_free(f);

	/* Without EVENT_IDX: NO_INTERRUPT holds interrupts back. */
	f = fx_new(NULL);
	driver_init(f, 0);
	f->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	assert_int_equal(submit(f, T_IN, 0, 512, NULL), S_OK);
	pulses = vm_mock_irq_pulses(f->ctx, f->irq);
	assert_int_equal(pulses, 0);
	f->avail->flags = 0;
	assert_int_equal(submit(f, T_IN, 0, 512, NULL), S_OK);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, f->irq), 1);
	/* Idle, so notifications are wanted. */
	assert_int_equal(f->used->flags, 0);
	fx_free(f);
}

/* Many chains in one kick: all done, in any order, each once. */
static void
test_batch(void **state)
{
	struct fx *f = fx_new(NULL);
	uint16_t u;
	bool seen[QSZ] = {false};

	(void)state;
	driver_init(f, F_EVENT_IDX | F_INDIRECT);
	u = used_idx(f);
	for (int i = 0; i < 40; i++) {
		uint64_t hdr = HDR_GPA + 32 * i, st = TABLE_GPA + i;
		uint32_t h[4] = {T_IN, 0, (uint32_t)i, 0};

		memcpy(f->mem + hdr, h, sizeof(h));
		f->mem[st] = NO_STATUS;
		desc_set(f, 3 * i, hdr, 16, VRING_DESC_F_NEXT, 3 * i + 1);
		desc_set(f, 3 * i + 1, DATA_GPA + 512 * i, 512,
			 VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 3 * i + 2);
		desc_set(f, 3 * i + 2, st, 1, VRING_DESC_F_WRITE, 0);
		avail_push(f, 3 * i);
	}
	kick(f);
	assert_true(wait_used(f, u + 40));
	for (int i = 0; i < 40; i++) {
		int s, id = f->used->ring[(u + i) % QSZ].id;
		assert_true(id % 3 == 0 && id / 3 < 40 && !seen[id]);
		seen[id] = true;
		assert_int_equal(f->mem[TABLE_GPA + i], S_OK);
		memcpy(&s, f->mem + DATA_GPA + 512 * i, sizeof(s));
		assert_int_equal(s, i);
	}
	fx_free(f);
}

static void
test_reset(void **state)
{
	struct fx *f = fx_new(NULL);

	(void)state;
	driver_init(f, F_EVENT_IDX);
	io_write(f, VIRTIO_PCI_QUEUE_SEL, 2, 0);
	assert_int_equal(io_read(f, VIRTIO_PCI_QUEUE_PFN, 4), RING_GPA >> 12);
	assert_int_equal(submit(f, T_IN, 0, 512, NULL), S_OK);
	io_write(f, VIRTIO_PCI_STATUS, 1, 0);
	assert_int_equal(status_reg(f), 0);
	assert_int_equal(io_read(f, VIRTIO_PCI_QUEUE_PFN, 4), 0);
	assert_int_equal(io_read(f, VIRTIO_PCI_GUEST_FEATURES, 4), 0);
	assert_int_equal(io_read(f, VIRTIO_PCI_ISR, 1), 0);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	/* A kick with no ring does nothing. */
	kick(f);
	driver_init(f, 0);
	assert_int_equal(submit(f, T_IN, 3, 512, NULL), S_OK);
	fx_free(f);
}

/* ---- options ---- */

static void
expect_init_error(const char *opts, const char *words)
{
	char line[512];

	assert_int_equal(init_capture(opts, line, sizeof(line)), -1);
	if (!strstr(line, words) || !strstr(line, "virtio-blk at 0:4:0"))
		fail_msg("error line '%s' lacks '%s'", line, words);
}

static void
test_options(void **state)
{
	struct fx *f;
	struct config *cfg = config_create();
	char line[512];

	(void)state;
	/* The legacy -s syntax into bhyve_config(5) variables. */
	assert_int_equal(pci_parse_slot(cfg,
					"4:0,virtio-blk,/x/disk.img,ro,nocache,"
					"sectorsize=4096/8192,ser=ABC",
					err, sizeof(err)),
			 0);
	assert_string_equal(config_get(cfg, "pci.0.4.0.path"), "/x/disk.img");
	assert_string_equal(config_get(cfg, "pci.0.4.0.ro"), "true");
	assert_string_equal(config_get(cfg, "pci.0.4.0.nocache"), "true");
	assert_string_equal(config_get(cfg, "pci.0.4.0.sectorsize"),
			    "4096/8192");
	assert_string_equal(config_get(cfg, "pci.0.4.0.ser"), "ABC");
	config_free(cfg);

	f = fx_new("sectorsize=4096/16384,direct");
	assert_int_equal(io_read(f, 20 + 20, 4), 4096);
	assert_int_equal(io_read(f, 20 + 24, 1), 2); /* 4 logical per phys */
	assert_int_equal(io_read(f, 20 + 26, 2), 4);
	assert_int_equal(io_read(f, 20, 4), DISK_SECTORS);
	driver_init(f, 0);
	assert_int_equal(submit(f, T_OUT, 8, 4096, NULL), S_OK);
	fx_free(f);

	expect_init_error("sectorsize=1000", "bad sectorsize '1000'");
	expect_init_error("sectorsize=4096/512", "bad sectorsize");
	expect_init_error("sectorsize=8192", "bad sectorsize");
	expect_init_error("sectorsize=256", "bad sectorsize");
	expect_init_error("sectorsize=512/x", "bad sectorsize");
	expect_init_error("bogus=1", "unknown option 'bogus'");
	expect_init_error("ser=123456789012345678901", "longer than 20");
	expect_init_error("ro=maybe", "bad value 'maybe' for ro");

	/* Images that cannot be used. */
	assert_int_equal(
	    init_capture("path=/nonexistent/disk.img", line, sizeof(line)), -1);
	assert_non_null(strstr(line, "cannot open /nonexistent/disk.img: No "
				     "such file or directory"));
	assert_int_equal(init_capture("path=/tmp", line, sizeof(line)), -1);
	assert_non_null(strstr(line, "cannot open /tmp: Is a directory"));
	assert_int_equal(init_capture("path=/tmp,ro", line, sizeof(line)), -1);
	assert_non_null(strstr(line, "not a regular file or a block device"));
	assert_int_equal(init_capture("path=", line, sizeof(line)), -1);
	assert_non_null(strstr(line, "no disk image"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_identity),
	    cmocka_unit_test(test_msix),
	    cmocka_unit_test(test_read_write),
	    cmocka_unit_test(test_out_of_range),
	    cmocka_unit_test(test_get_id),
	    cmocka_unit_test(test_read_only),
	    cmocka_unit_test(test_any_layout),
	    cmocka_unit_test(test_indirect),
	    cmocka_unit_test(test_bad_chains),
	    cmocka_unit_test(test_ring_outside_memory),
	    cmocka_unit_test(test_event_idx),
	    cmocka_unit_test(test_batch),
	    cmocka_unit_test(test_reset),
	    cmocka_unit_test(test_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
