/*
 * The NVMe controller against the mock backend: a driver written here
 * enables the controller through BAR 0, lays admin and I/O queues, PRP
 * lists and data out in mock guest memory, rings doorbells and checks the
 * completion entries, the data and the image file. Every malformed field a
 * hostile guest can send gets its status and never a stray access; the
 * classes of bhyve's own NVMe bugs each have a regression test.
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
#include "machine.h"
#include "mem.h"
#include "pci_emul.h"

#define MEMSIZE (16 << 20)
#define SLOT 4
#define DISK_SECTORS 2048 /* a 1 MiB image */
#define PAGE 4096

#define ASQ_GPA 0x10000ULL
#define ACQ_GPA 0x11000ULL
#define BUF_GPA 0x12000ULL  /* identify and log pages: two pages */
#define BUF2_GPA 0x15000ULL /* a page apart from BUF_GPA */
#define IOQ_GPA 0x20000ULL  /* I/O queue qid: SQ at +0x2000 * qid */
#define LIST_GPA 0x40000ULL /* PRP lists */
#define DATA_GPA 0x100000ULL
#define AQ_SIZE 32

/* Registers. */
#define R_CAP 0x00
#define R_VS 0x08
#define R_INTMS 0x0c
#define R_INTMC 0x10
#define R_CC 0x14
#define R_CSTS 0x1c
#define R_AQA 0x24
#define R_ASQ 0x28
#define R_ACQ 0x30
#define DB_SQ(q) (0x1000 + 8 * (q))
#define DB_CQ(q) (0x1000 + 8 * (q) + 4)
#define CC_ENABLE (1u | 6u << 16 | 4u << 20)

/* Status as (SCT << 8) | SC, from completion DW3. */
#define S(sct, sc) ((sct) << 8 | (sc))
#define S_OK 0
#define S_INVALID_OPCODE S(0, 0x01)
#define S_INVALID_FIELD S(0, 0x02)
#define S_CID_CONFLICT S(0, 0x03)
#define S_DATA_XFER S(0, 0x04)
#define S_INVALID_NS S(0, 0x0b)
#define S_SEQUENCE S(0, 0x0c)
#define S_PRP_OFFSET S(0, 0x13)
#define S_WRITE_PROTECTED S(0, 0x20)
#define S_LBA_RANGE S(0, 0x80)
#define S_INVALID_CQ S(1, 0x00)
#define S_INVALID_QID S(1, 0x01)
#define S_INVALID_QSIZE S(1, 0x02)
#define S_AER_LIMIT S(1, 0x05)
#define S_INVALID_IV S(1, 0x08)
#define S_INVALID_LOG S(1, 0x09)
#define S_QUEUE_DELETION S(1, 0x0c)
#define S_NOT_SAVEABLE S(1, 0x0d)

struct sqe {
	uint32_t cdw0, nsid, rsvd2, rsvd3;
	uint64_t mptr, prp1, prp2;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

struct cqe {
	uint32_t dw0, dw1;
	uint16_t sqhd, sqid, cid, status;
};

_Static_assert(sizeof(struct sqe) == 64, "SQE");
_Static_assert(sizeof(struct cqe) == 16, "CQE");

/* The driver's side of a queue pair. */
struct q {
	uint64_t sq_gpa, cq_gpa;
	uint32_t sq_size, cq_size;
	uint32_t tail, head;
	uint16_t phase, cid;
};

struct fx {
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
	char image[64];
	uint8_t *mem;
	uint64_t bar0;
	struct q q[8];
};

static char err[512];

/* ---- the fixture ---- */

static void
make_image(struct fx *f, size_t bytes)
{
	uint8_t sector[512];
	FILE *fp;
	int fd;

	strcpy(f->image, "/tmp/test_nvme.XXXXXX");
	fd = mkstemp(f->image);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	for (size_t s = 0; s < bytes / 512; s++) {
		memset(sector, (uint8_t)s, sizeof(sector));
		memcpy(sector, &s, 4);
		assert_int_equal(fwrite(sector, 1, sizeof(sector), fp), 512);
	}
	if (bytes % 512)
		assert_int_equal(fwrite(sector, 1, bytes % 512, fp),
				 bytes % 512);
	fclose(fp);
}

/* A VM with "SLOT,nvme,DEV" where DEV is "IMAGE[,opts]" or opts alone. */
static int
fx_init(struct fx *f, const char *opts, bool ram)
{
	char slot[512];

	f->cfg = config_create();
	assert_int_equal(config_set(f->cfg, "pci.0.0.0.device", "hostbridge",
				    err, sizeof(err)),
			 0);
	if (ram)
		snprintf(slot, sizeof(slot), "%d,nvme,%s", SLOT, opts);
	else
		snprintf(slot, sizeof(slot), "%d,nvme,%s%s%s", SLOT, f->image,
			 opts && *opts ? "," : "", opts ? opts : "");
	assert_int_equal(pci_parse_slot(f->cfg, slot, err, sizeof(err)), 0);
	f->ctx = vm_create_mock(MEMSIZE);
	assert_non_null(f->ctx);
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	f->mem = vm_map_gpa(f->ctx, 0, MEMSIZE);
	return init_pci(f->ctx);
}

static struct fx *
fx_alloc(void)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	return f;
}

static void
fx_bars(struct fx *f)
{
	f->bar0 = (pci_cfg_read(f->ctx, 0, SLOT, 0, 0x10, 4) & ~0xfULL) |
		  (uint64_t)pci_cfg_read(f->ctx, 0, SLOT, 0, 0x14, 4) << 32;
}

static struct fx *
fx_new(const char *opts)
{
	struct fx *f = fx_alloc();

	make_image(f, DISK_SECTORS * 512);
	assert_int_equal(fx_init(f, opts, false), 0);
	fx_bars(f);
	return f;
}

static struct fx *
fx_new_ram(const char *opts)
{
	struct fx *f = fx_alloc();

	assert_int_equal(fx_init(f, opts, true), 0);
	fx_bars(f);
	return f;
}

static void
fx_free(struct fx *f)
{
	machine_free(f->m);
	vm_close(f->ctx);
	config_free(f->cfg);
	if (f->image[0])
		unlink(f->image);
	free(f);
}

/* ---- registers ---- */

static uint32_t
rd(struct fx *f, uint64_t off)
{
	uint64_t v = 0;

	assert_int_equal(
	    emulate_mem(f->ctx, NULL, f->bar0 + off, MEM_F_READ, 4, &v), 0);
	return (uint32_t)v;
}

static uint64_t
rd64(struct fx *f, uint64_t off)
{
	uint64_t v = 0;

	assert_int_equal(
	    emulate_mem(f->ctx, NULL, f->bar0 + off, MEM_F_READ, 8, &v), 0);
	return v;
}

static void
wr(struct fx *f, uint64_t off, uint32_t val)
{
	uint64_t v = val;

	assert_int_equal(
	    emulate_mem(f->ctx, NULL, f->bar0 + off, MEM_F_WRITE, 4, &v), 0);
}

static void
wr64(struct fx *f, uint64_t off, uint64_t v)
{
	assert_int_equal(
	    emulate_mem(f->ctx, NULL, f->bar0 + off, MEM_F_WRITE, 8, &v), 0);
}

/* Wait up to 5 s for CSTS & mask == want. */
static bool
wait_csts(struct fx *f, uint32_t mask, uint32_t want)
{
	struct timespec ts = {0, 1000000};

	for (int i = 0; i < 5000; i++) {
		if ((rd(f, R_CSTS) & mask) == want)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

/* The admin queues at ASQ_GPA/ACQ_GPA with AQ_SIZE entries, then CC.EN. */
static void
enable(struct fx *f)
{
	wr(f, R_CC, 0);
	assert_true(wait_csts(f, 1, 0));
	memset(f->mem + ASQ_GPA, 0, 0x2000);
	memset(f->q, 0, sizeof(f->q));
	f->q[0] = (struct q){ASQ_GPA, ACQ_GPA, AQ_SIZE, AQ_SIZE, 0, 0, 1, 0};
	wr(f, R_AQA, (AQ_SIZE - 1) << 16 | (AQ_SIZE - 1));
	wr64(f, R_ASQ, ASQ_GPA);
	wr64(f, R_ACQ, ACQ_GPA);
	wr(f, R_CC, CC_ENABLE);
	assert_int_equal(rd(f, R_CSTS) & 3, 1);
}

/* ---- queues ---- */

static void
push(struct fx *f, int qid, struct sqe *c)
{
	struct q *q = &f->q[qid];

	c->cdw0 = (c->cdw0 & 0xffff) | (uint32_t)q->cid++ << 16;
	memcpy(f->mem + q->sq_gpa + 64 * q->tail, c, 64);
	q->tail = (q->tail + 1) % q->sq_size;
}

static void
ring(struct fx *f, int qid)
{
	wr(f, DB_SQ(qid), f->q[qid].tail);
}

static bool
cqe_ready(struct fx *f, int cqid)
{
	struct q *q = &f->q[cqid];
	struct cqe *e = (struct cqe *)(f->mem + q->cq_gpa) + q->head;

	return (__atomic_load_n(&e->status, __ATOMIC_ACQUIRE) & 1) == q->phase;
}

/* The next completion on cqid within 5 s; its head doorbell written. */
static bool
take(struct fx *f, int cqid, struct cqe *out)
{
	struct q *q = &f->q[cqid];
	struct timespec ts = {0, 100000};

	for (int i = 0; i < 50000 && !cqe_ready(f, cqid); i++)
		nanosleep(&ts, NULL);
	if (!cqe_ready(f, cqid))
		return false;
	*out = ((struct cqe *)(f->mem + q->cq_gpa))[q->head];
	if (++q->head == q->cq_size) {
		q->head = 0;
		q->phase ^= 1;
	}
	wr(f, DB_CQ(cqid), q->head);
	return true;
}

static int
status_of(const struct cqe *e)
{
	return (e->status >> 1) & 0x7ff;
}

/* Submit one command on qid (completing on the same id), wait, status. */
static int
run(struct fx *f, int qid, struct sqe *c, struct cqe *out)
{
	struct cqe e;
	uint16_t cid = f->q[qid].cid;

	push(f, qid, c);
	ring(f, qid);
	assert_true(take(f, qid, &e));
	assert_int_equal(e.cid, cid);
	assert_int_equal(e.sqid, qid);
	assert_int_equal(e.sqhd, f->q[qid].tail);
	if (status_of(&e))
		assert_true(e.status & 0x8000); /* DNR on every error */
	if (out)
		*out = e;
	return status_of(&e);
}

static int
adm(struct fx *f, struct sqe *c)
{
	return run(f, 0, c, NULL);
}

static struct sqe
cmd(uint8_t opc, uint32_t nsid)
{
	return (struct sqe){.cdw0 = opc, .nsid = nsid};
}

static int
create_cq(struct fx *f, uint16_t qid, uint32_t size, uint64_t gpa, uint16_t iv,
	  uint32_t flags)
{
	struct sqe c = cmd(0x05, 0);

	c.prp1 = gpa;
	c.cdw10 = qid | (size - 1) << 16;
	c.cdw11 = flags | (uint32_t)iv << 16;
	return adm(f, &c);
}

static int
create_sq(struct fx *f, uint16_t qid, uint32_t size, uint64_t gpa,
	  uint16_t cqid, uint32_t flags)
{
	struct sqe c = cmd(0x01, 0);

	c.prp1 = gpa;
	c.cdw10 = qid | (size - 1) << 16;
	c.cdw11 = flags | (uint32_t)cqid << 16;
	return adm(f, &c);
}

static int
delete_q(struct fx *f, uint8_t opc, uint16_t qid)
{
	struct sqe c = cmd(opc, 0);

	c.cdw10 = qid;
	return adm(f, &c);
}

/* I/O queue pair qid: CQ then SQ, size entries each, IEN on vector qid. */
static void
ioq(struct fx *f, uint16_t qid, uint32_t size)
{
	uint64_t sq = IOQ_GPA + 0x4000ULL * qid, cq = sq + 0x2000;

	memset(f->mem + sq, 0, 0x4000);
	assert_int_equal(create_cq(f, qid, size, cq, 0, 3), S_OK);
	assert_int_equal(create_sq(f, qid, size, sq, qid, 1), S_OK);
	f->q[qid] = (struct q){sq, cq, size, size, 0, 0, 1, 0};
}

/* ---- commands ---- */

static struct sqe
rw(bool write, uint64_t slba, uint32_t nlb, uint64_t prp1, uint64_t prp2)
{
	struct sqe c = cmd(write ? 0x01 : 0x02, 1);

	c.prp1 = prp1;
	c.prp2 = prp2;
	c.cdw10 = (uint32_t)slba;
	c.cdw11 = (uint32_t)(slba >> 32);
	c.cdw12 = nlb - 1;
	return c;
}

static int
io_rw(struct fx *f, bool write, uint64_t slba, uint32_t nlb, uint64_t prp1,
      uint64_t prp2)
{
	struct sqe c = rw(write, slba, nlb, prp1, prp2);

	return run(f, 1, &c, NULL);
}

static int
identify(struct fx *f, uint32_t cns, uint32_t nsid, uint64_t prp1,
	 uint64_t prp2)
{
	struct sqe c = cmd(0x06, nsid);

	c.prp1 = prp1;
	c.prp2 = prp2;
	c.cdw10 = cns;
	return adm(f, &c);
}

static int
get_log(struct fx *f, uint8_t lid, uint32_t bytes, uint64_t off, uint32_t nsid,
	bool rae)
{
	struct sqe c = cmd(0x02, nsid);
	uint32_t numd = bytes / 4 - 1;

	c.prp1 = BUF_GPA;
	c.prp2 = BUF_GPA + PAGE;
	c.cdw10 = lid | (rae ? 1u << 15 : 0) | (numd & 0xffff) << 16;
	c.cdw11 = numd >> 16;
	c.cdw12 = (uint32_t)off;
	c.cdw13 = (uint32_t)(off >> 32);
	return adm(f, &c);
}

static int
feature(struct fx *f, bool set, uint32_t cdw10, uint32_t cdw11, uint32_t *dw0)
{
	struct sqe c = cmd(set ? 0x09 : 0x0a, 0);
	struct cqe e;
	int st;

	c.cdw10 = cdw10;
	c.cdw11 = cdw11;
	st = run(f, 0, &c, &e);
	if (dw0)
		*dw0 = e.dw0;
	return st;
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

/* Sector s of the original image, as make_image wrote it. */
static void
expect_sector(const uint8_t *p, uint32_t s)
{
	uint8_t want[512];

	memset(want, (uint8_t)s, sizeof(want));
	memcpy(want, &s, 4);
	assert_memory_equal(p, want, 512);
}

static bool
all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* No completion arrives on cqid within 50 ms. */
static bool
quiet(struct fx *f, int cqid)
{
	struct timespec ts = {0, 50000000};

	nanosleep(&ts, NULL);
	(void)rd(f, R_CSTS);
	return !cqe_ready(f, cqid);
}

/* ---- identity, registers, controller state ---- */

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
test_identity(void **state)
{
	struct fx *f = fx_new(NULL);
	uint64_t cap = rd64(f, R_CAP);
	uint8_t msix = cap_find(f, 0x11), pcie = cap_find(f, 0x10);

	(void)state;
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0, 2), 0xfb5d);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 2, 2), 0x0a0a);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 8, 4) >> 8, 0x010802);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x2c, 2), 0xfb5d);
	/* BAR 0: 64-bit memory, at least 16 KiB. */
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x10, 4) & 0x7, 4);
	pci_cfg_write(f->ctx, 0, SLOT, 0, 0x10, 4, 0xffffffff);
	assert_true((~(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x10, 4) & ~0xfu) +
		     1) >= 16384);
	pci_cfg_write(f->ctx, 0, SLOT, 0, 0x10, 4, (uint32_t)f->bar0);
	assert_true(msix && pcie);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, msix + 2, 2), 16);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, msix + 4, 4), 4);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, pcie + 2, 1), 0x92);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x3d, 1), 1);
	/* CAP: MQES 2047, CQR, TO, DSTRD 0, CSS NVM, MPSMIN = MPSMAX = 0. */
	assert_int_equal(cap & 0xffff, 2047);
	assert_true(cap & (1 << 16));
	assert_int_equal((cap >> 24) & 0xff, 60);
	assert_int_equal((cap >> 32) & 0xf, 0);
	assert_int_equal((cap >> 37) & 0xff, 1);
	assert_int_equal((cap >> 48) & 0xff, 0);
	assert_int_equal(rd(f, R_VS), 0x00010400);
	assert_int_equal(rd(f, R_CSTS), 0);
	/* Byte reads see the dword; odd sizes are ignored on write. */
	uint64_t v = 0;
	emulate_mem(f->ctx, NULL, f->bar0 + R_VS + 2, MEM_F_READ, 1, &v);
	assert_int_equal(v, 1);
	v = 1;
	emulate_mem(f->ctx, NULL, f->bar0 + R_CC, MEM_F_WRITE, 1, &v);
	assert_int_equal(rd(f, R_CC), 0);
	fx_free(f);
}

static void
test_enable_reset_shutdown(void **state)
{
	struct fx *f = fx_new(NULL);

	(void)state;
	enable(f);
	assert_int_equal(rd(f, R_AQA), (AQ_SIZE - 1) << 16 | (AQ_SIZE - 1));
	assert_int_equal(rd64(f, R_ASQ), ASQ_GPA);
	/* CSS, MPS, AMS are fixed while enabled. */
	wr(f, R_CC, CC_ENABLE | 1u << 7);
	assert_int_equal(rd(f, R_CC), CC_ENABLE);
	/* Disable, then a normal shutdown: SHST complete after the flush. */
	wr(f, R_CC, 0);
	assert_int_equal(rd(f, R_CSTS) & 1, 0);
	enable(f);
	wr(f, R_CC, CC_ENABLE | 1u << 14);
	assert_true(wait_csts(f, 0xc, 0x8));
	wr(f, R_CC, 0);
	assert_int_equal(rd(f, R_CSTS), 0);
	/* Bad set-ups are fatal until the next reset (CSTS.CFS). */
	wr(f, R_AQA, 0); /* one-entry queues */
	wr(f, R_CC, CC_ENABLE);
	assert_int_equal(rd(f, R_CSTS) & 3, 2);
	wr(f, R_CC, 0);
	assert_int_equal(rd(f, R_CSTS) & 3, 0);
	wr(f, R_AQA, 0x001f001f);
	wr(f, R_CC, CC_ENABLE | 1u << 7); /* 8 KiB pages */
	assert_int_equal(rd(f, R_CSTS) & 3, 2);
	wr(f, R_CC, 0);
	wr(f, R_CC, CC_ENABLE | 1u << 4); /* another command set */
	assert_int_equal(rd(f, R_CSTS) & 3, 2);
	wr(f, R_CC, 0);
	wr(f, R_AQA, 0x001f007f);	     /* 128 entries: 8 KiB */
	wr64(f, R_ASQ, MEMSIZE - 0x1000ULL); /* runs past RAM */
	wr(f, R_CC, CC_ENABLE);
	assert_int_equal(rd(f, R_CSTS) & 3, 2);
	wr(f, R_CC, 0);
	wr(f, R_AQA, 0x001f001f);
	wr64(f, R_ACQ, 0xfee00000ULL); /* not RAM at all */
	wr64(f, R_ASQ, ASQ_GPA);
	wr(f, R_CC, CC_ENABLE);
	assert_int_equal(rd(f, R_CSTS) & 3, 2);
	/* Doorbells of a controller that is not ready do nothing. */
	wr(f, DB_SQ(0), 1);
	enable(f);
	fx_free(f);
}

/* ---- admin commands ---- */

static void
test_identify(void **state)
{
	struct fx *f = fx_new(NULL);
	uint8_t *d = f->mem + BUF_GPA;
	char sn[21] = {0};

	(void)state;
	enable(f);
	assert_int_equal(identify(f, 1, 0, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint16_t *)d, 0xfb5d);
	memcpy(sn, d + 4, 20);
	assert_string_equal(sn, "NVME-4-0            ");
	assert_memory_equal(d + 24, "bhyve-NVMe ", 11);
	assert_int_equal(d[77], 8); /* MDTS: 1 MiB */
	assert_int_equal(*(uint32_t *)(d + 80), 0x00010400);
	assert_int_equal(d[111], 1);
	assert_int_equal(*(uint16_t *)(d + 256), 0); /* OACS */
	assert_int_equal(d[259], 3);		     /* AERL */
	assert_int_equal(d[512], 0x66);
	assert_int_equal(d[513], 0x44);
	assert_int_equal(*(uint32_t *)(d + 516), 1);	/* NN */
	assert_int_equal(*(uint16_t *)(d + 520), 0x0c); /* DSM, WZ */
	assert_int_equal(d[525], 0x07);			/* VWC */
	assert_int_equal(*(uint32_t *)(d + 536), 0);	/* no SGLs */
	assert_memory_equal(d + 768, "nqn.2014-08.org.nvmexpress:", 27);

	assert_int_equal(identify(f, 0, 1, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint64_t *)d, DISK_SECTORS);
	assert_int_equal(*(uint64_t *)(d + 8), DISK_SECTORS);
	assert_int_equal(d[25], 0);			   /* NLBAF */
	assert_int_equal(*(uint32_t *)(d + 128), 9 << 16); /* 512 B */
	assert_int_equal(d[99], 0);
	assert_int_equal(d[120], 0x58); /* EUI-64 with FreeBSD's OUI */
	uint8_t eui[8];
	memcpy(eui, d + 120, 8);

	assert_int_equal(identify(f, 2, 0, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint32_t *)d, 1);
	assert_int_equal(*(uint32_t *)(d + 4), 0);
	assert_int_equal(identify(f, 2, 1, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint32_t *)d, 0);
	assert_int_equal(identify(f, 3, 1, BUF_GPA, 0), S_OK);
	assert_int_equal(d[0], 1);
	assert_int_equal(d[1], 8);
	assert_memory_equal(d + 4, eui, 8);
	assert_int_equal(d[12], 0);

	assert_int_equal(identify(f, 0, 0, BUF_GPA, 0), S_INVALID_NS);
	assert_int_equal(identify(f, 0, 2, BUF_GPA, 0), S_INVALID_NS);
	assert_int_equal(identify(f, 0, 0xffffffff, BUF_GPA, 0), S_INVALID_NS);
	assert_int_equal(identify(f, 3, 0, BUF_GPA, 0), S_INVALID_NS);
	assert_int_equal(identify(f, 2, 0xfffffffe, BUF_GPA, 0), S_INVALID_NS);
	assert_int_equal(identify(f, 4, 0, BUF_GPA, 0), S_INVALID_FIELD);
	assert_int_equal(identify(f, 0x10, 0, BUF_GPA, 0), S_INVALID_FIELD);
	fx_free(f);
}

/*
 * bhyve copied Identify data past the end of PRP1's page instead of
 * continuing at PRP2 (D19695): the second part must land at PRP2 and
 * nothing after PRP1's page may change.
 */
static void
test_regress_identify_prp2(void **state)
{
	struct fx *f = fx_new(NULL);
	uint8_t *p1 = f->mem + BUF_GPA, *p2 = f->mem + BUF2_GPA;

	(void)state;
	enable(f);
	memset(p1, 0xee, 3 * PAGE);
	memset(p2, 0xee, PAGE);
	assert_int_equal(identify(f, 1, 0, BUF_GPA + 0x800, BUF2_GPA), S_OK);
	assert_int_equal(*(uint16_t *)(p1 + 0x800), 0xfb5d);
	assert_true(all_bytes(p1, 0x800, 0xee));
	assert_true(all_bytes(p1 + PAGE, 2 * PAGE, 0xee));
	/* Controller bytes 2048.. went to PRP2: PSD0 is zero, the rest too. */
	assert_true(all_bytes(p2, 0x800, 0));
	assert_true(all_bytes(p2 + 0x800, 0x800, 0xee));
	/* Bytes 0x300.. of the data hold SUBNQN: at PRP1 + 0x800 + 0x300. */
	assert_memory_equal(p1 + 0x800 + 768, "nqn.", 4);
	fx_free(f);
}

static void
test_features(void **state)
{
	struct fx *f = fx_new(NULL);
	uint32_t v;

	(void)state;
	enable(f);
	/* Number of Queues: up to maxq (16) of each. */
	assert_int_equal(feature(f, false, 7, 0, &v), S_OK);
	assert_int_equal(v, 15 | 15 << 16);
	assert_int_equal(feature(f, true, 7, 63 | 63 << 16, &v), S_OK);
	assert_int_equal(v, 15 | 15 << 16);
	assert_int_equal(feature(f, true, 7, 1 | 3 << 16, &v), S_OK);
	assert_int_equal(v, 1 | 3 << 16);
	assert_int_equal(feature(f, false, 7, 0, &v), S_OK);
	assert_int_equal(v, 1 | 3 << 16);
	assert_int_equal(feature(f, true, 7, 0xffff, &v), S_INVALID_FIELD);
	assert_int_equal(feature(f, true, 7, 0xffffu << 16, &v),
			 S_INVALID_FIELD);
	/* Plain values. */
	assert_int_equal(feature(f, true, 1, 0x01020303, NULL), S_OK);
	assert_int_equal(feature(f, false, 1, 0, &v), S_OK);
	assert_int_equal(v, 0x01020303);
	assert_int_equal(feature(f, false, 1 | 1 << 8, 0, &v), S_OK);
	assert_int_equal(v, 0); /* SEL: the default */
	assert_int_equal(feature(f, false, 1 | 3 << 8, 0, &v), S_OK);
	assert_int_equal(v, 4); /* changeable */
	assert_int_equal(feature(f, true, 2, 1, NULL), S_INVALID_FIELD);
	assert_int_equal(feature(f, true, 2, 0xe0, NULL), S_OK);
	assert_int_equal(feature(f, true, 5, 1 << 16, NULL), S_INVALID_FIELD);
	assert_int_equal(feature(f, true, 5, 100, NULL), S_OK);
	assert_int_equal(feature(f, false, 5 | 3 << 8, 0, &v), S_OK);
	assert_int_equal(v, 6); /* per namespace */
	assert_int_equal(feature(f, false, 6, 0, &v), S_OK);
	assert_int_equal(v, 1); /* write cache on */
	assert_int_equal(feature(f, true, 6, 0, NULL), S_OK);
	assert_int_equal(feature(f, false, 6, 0, &v), S_OK);
	assert_int_equal(v, 0);
	assert_int_equal(feature(f, true, 8, 0x0a05, NULL), S_OK);
	assert_int_equal(feature(f, false, 8, 0, &v), S_OK);
	assert_int_equal(v, 0x0a05);
	assert_int_equal(feature(f, true, 9, 3, NULL), S_OK);
	assert_int_equal(feature(f, false, 9, 3, &v), S_OK);
	assert_int_equal(v, 3);
	assert_int_equal(feature(f, true, 9, 3 | 1 << 16, NULL), S_OK);
	assert_int_equal(feature(f, false, 9, 3, &v), S_OK);
	assert_int_equal(v, 3 | 1 << 16);
	assert_int_equal(feature(f, true, 9, 0, NULL), S_INVALID_FIELD);
	assert_int_equal(feature(f, false, 9, 17, NULL), S_INVALID_FIELD);
	assert_int_equal(feature(f, false, 9, 0xffff, NULL), S_INVALID_FIELD);
	assert_int_equal(feature(f, true, 10, 1, NULL), S_OK);
	assert_int_equal(feature(f, true, 11, 0x2ff, NULL), S_OK);
	assert_int_equal(feature(f, false, 11, 0, &v), S_OK);
	assert_int_equal(v, 0xff);
	/* Temperature threshold: the over one defaults to WCTEMP. */
	assert_int_equal(feature(f, false, 4, 0, &v), S_OK);
	assert_int_equal(v, 0x157);
	assert_int_equal(feature(f, false, 4, 1 << 20, &v), S_OK);
	assert_int_equal(v, 0);
	assert_int_equal(feature(f, false, 4, 2 << 20, &v), S_INVALID_FIELD);
	assert_int_equal(feature(f, false, 4, 1 << 16, &v), S_INVALID_FIELD);
	/* Not here, not saveable. */
	assert_int_equal(feature(f, true, 0x0c, 1, NULL), S_INVALID_FIELD);
	assert_int_equal(feature(f, false, 0x03, 0, NULL), S_INVALID_FIELD);
	assert_int_equal(feature(f, false, 0x80, 0, NULL), S_INVALID_FIELD);
	assert_int_equal(feature(f, true, 1 | 1u << 31, 0, NULL),
			 S_NOT_SAVEABLE);
	assert_int_equal(feature(f, false, 1 | 4 << 8, 0, NULL),
			 S_INVALID_FIELD);
	/* A reset brings the defaults back. */
	enable(f);
	assert_int_equal(feature(f, false, 1, 0, &v), S_OK);
	assert_int_equal(v, 0);
	assert_int_equal(feature(f, false, 7, 0, &v), S_OK);
	assert_int_equal(v, 15 | 15 << 16);
	fx_free(f);
}

static void
test_queue_management(void **state)
{
	struct fx *f = fx_new("maxq=4,qsz=64");
	uint64_t sq = IOQ_GPA, cq = IOQ_GPA + 0x2000;

	(void)state;
	enable(f);
	assert_int_equal(rd64(f, R_CAP) & 0xffff, 63);
	assert_int_equal(feature(f, true, 7, 1 | 1 << 16, NULL), S_OK);
	/* Create CQ: every field checked. */
	assert_int_equal(create_cq(f, 0, 16, cq, 0, 3), S_INVALID_QID);
	assert_int_equal(create_cq(f, 3, 16, cq, 0, 3), S_INVALID_QID);
	assert_int_equal(create_cq(f, 0xffff, 16, cq, 0, 3), S_INVALID_QID);
	assert_int_equal(create_cq(f, 1, 1, cq, 0, 3), S_INVALID_QSIZE);
	assert_int_equal(create_cq(f, 1, 65, cq, 0, 3), S_INVALID_QSIZE);
	assert_int_equal(create_cq(f, 1, 65536, cq, 0, 3), S_INVALID_QSIZE);
	assert_int_equal(create_cq(f, 1, 16, cq, 0, 2), S_INVALID_FIELD);
	assert_int_equal(create_cq(f, 1, 16, cq + 8, 0, 3), S_PRP_OFFSET);
	assert_int_equal(create_cq(f, 1, 16, MEMSIZE - 0x80ULL, 0, 3),
			 S_PRP_OFFSET);
	assert_int_equal(create_cq(f, 1, 16, MEMSIZE - 0x1000ULL, 0, 3), S_OK);
	assert_int_equal(delete_q(f, 0x04, 1), S_OK);
	assert_int_equal(create_cq(f, 1, 64, MEMSIZE - 0x0ULL, 0, 3),
			 S_INVALID_FIELD);
	assert_int_equal(create_cq(f, 1, 16, 0xfee00000ULL, 0, 3),
			 S_INVALID_FIELD);
	/* Without MSI-X only vector 0 exists. */
	assert_int_equal(create_cq(f, 1, 16, cq, 1, 3), S_INVALID_IV);
	assert_int_equal(create_cq(f, 1, 16, cq, 0, 3), S_OK);
	assert_int_equal(create_cq(f, 1, 16, cq, 0, 3), S_INVALID_QID);
	/* Create SQ. */
	assert_int_equal(create_sq(f, 1, 16, sq, 0, 1), S_INVALID_CQ);
	assert_int_equal(create_sq(f, 1, 16, sq, 2, 1), S_INVALID_CQ);
	assert_int_equal(create_sq(f, 1, 16, sq, 0xffff, 1), S_INVALID_CQ);
	assert_int_equal(create_sq(f, 0, 16, sq, 1, 1), S_INVALID_QID);
	assert_int_equal(create_sq(f, 3, 16, sq, 1, 1), S_INVALID_QID);
	assert_int_equal(create_sq(f, 1, 1, sq, 1, 1), S_INVALID_QSIZE);
	assert_int_equal(create_sq(f, 1, 65, sq, 1, 1), S_INVALID_QSIZE);
	assert_int_equal(create_sq(f, 1, 16, sq, 1, 0), S_INVALID_FIELD);
	assert_int_equal(create_sq(f, 1, 16, sq + 0x40, 1, 1), S_PRP_OFFSET);
	assert_int_equal(create_sq(f, 1, 16, sq, 1, 1), S_OK);
	assert_int_equal(create_sq(f, 1, 16, sq, 1, 1), S_INVALID_QID);
	assert_int_equal(create_sq(f, 2, 16, sq + 0x1000, 1, 1), S_OK);
	/* Number of Queues is fixed once queues exist. */
	assert_int_equal(feature(f, true, 7, 0, NULL), S_SEQUENCE);
	/* Delete: the CQ only after its SQs. */
	assert_int_equal(delete_q(f, 0x04, 1), S_QUEUE_DELETION);
	assert_int_equal(delete_q(f, 0x00, 0), S_INVALID_QID);
	assert_int_equal(delete_q(f, 0x00, 3), S_INVALID_QID);
	assert_int_equal(delete_q(f, 0x00, 0xffff), S_INVALID_QID);
	assert_int_equal(delete_q(f, 0x00, 1), S_OK);
	assert_int_equal(delete_q(f, 0x00, 1), S_INVALID_QID);
	assert_int_equal(delete_q(f, 0x04, 1), S_QUEUE_DELETION);
	assert_int_equal(delete_q(f, 0x00, 2), S_OK);
	assert_int_equal(delete_q(f, 0x04, 0), S_INVALID_QID);
	assert_int_equal(delete_q(f, 0x04, 0xffff), S_INVALID_QID);
	assert_int_equal(delete_q(f, 0x04, 1), S_OK);
	assert_int_equal(delete_q(f, 0x04, 1), S_INVALID_QID);
	/* Queue entry sizes other than 64/16 bytes. */
	wr(f, R_CC, 1 | 7u << 16 | 4u << 20);
	assert_int_equal(create_cq(f, 1, 16, cq, 0, 3), S_OK);
	assert_int_equal(create_sq(f, 1, 16, sq, 1, 1), S_INVALID_FIELD);
	wr(f, R_CC, 1 | 6u << 16 | 5u << 20);
	assert_int_equal(create_cq(f, 2, 16, cq + 0x1000, 0, 3),
			 S_INVALID_FIELD);
	fx_free(f);
}

static void
test_unsupported_admin(void **state)
{
	static const uint8_t ops[] = {0x0d, 0x10, 0x11, 0x14, 0x15, 0x18, 0x19,
				      0x1a, 0x7c, 0x80, 0x81, 0x82, 0x84, 0xff};
	struct fx *f = fx_new(NULL);
	struct sqe c;
	struct cqe e;

	(void)state;
	enable(f);
	for (size_t i = 0; i < sizeof(ops); i++) {
		c = cmd(ops[i], 1);
		assert_int_equal(adm(f, &c), S_INVALID_OPCODE);
	}
	/* SGLs and fused commands are not taken. */
	c = cmd(0x06, 0);
	c.cdw0 |= 1 << 14;
	c.cdw10 = 1;
	assert_int_equal(adm(f, &c), S_INVALID_FIELD);
	c = cmd(0x06, 0);
	c.cdw0 |= 1 << 8;
	assert_int_equal(adm(f, &c), S_INVALID_FIELD);
	/* Abort: nothing is ever aborted (DW0 bit 0). */
	c = cmd(0x08, 0);
	c.cdw10 = 1 | 5 << 16;
	assert_int_equal(run(f, 0, &c, &e), S_OK);
	assert_int_equal(e.dw0, 1);
	fx_free(f);
}

static void
test_log_pages(void **state)
{
	struct fx *f = fx_new(NULL);
	uint8_t *d = f->mem + BUF_GPA;

	(void)state;
	enable(f);
	ioq(f, 1, 16);
	for (int i = 0; i < 3; i++)
		assert_int_equal(io_rw(f, true, i, 8, DATA_GPA, 0), S_OK);
	assert_int_equal(io_rw(f, false, 0, 1, DATA_GPA, 0), S_OK);
	memset(d, 0xee, 2 * PAGE);
	assert_int_equal(get_log(f, 2, 512, 0, 0xffffffff, false), S_OK);
	assert_int_equal(d[0], 0);
	assert_int_equal(d[1] | d[2] << 8, 296);
	assert_int_equal(d[3], 100);
	assert_int_equal(*(uint64_t *)(d + 32), 1);  /* units read */
	assert_int_equal(*(uint64_t *)(d + 48), 1);  /* units written */
	assert_int_equal(*(uint64_t *)(d + 64), 1);  /* reads */
	assert_int_equal(*(uint64_t *)(d + 80), 3);  /* writes */
	assert_int_equal(*(uint64_t *)(d + 112), 1); /* power cycles */
	assert_int_equal(d[512], 0xee);
	assert_int_equal(get_log(f, 2, 512, 0, 1, false), S_OK);
	assert_int_equal(get_log(f, 2, 512, 0, 2, false), S_INVALID_NS);
	/* Firmware slot: slot 1 active, revision "1.0". */
	assert_int_equal(get_log(f, 3, 512, 0, 0, false), S_OK);
	assert_int_equal(d[0], 1);
	assert_memory_equal(d + 8, "1.0     ", 8);
	/* An offset reads the rest, only what the page holds. */
	memset(d, 0xee, 2 * PAGE);
	assert_int_equal(get_log(f, 3, 4096, 8, 0, false), S_OK);
	assert_memory_equal(d, "1.0     ", 8);
	assert_true(all_bytes(d + 504, PAGE - 504, 0xee));
	memset(d, 0xee, 2 * PAGE);
	assert_int_equal(get_log(f, 3, 4, 512, 0, false), S_OK);
	assert_true(all_bytes(d, 8, 0xee));
	/* Error information: one entry, empty until a bad doorbell. */
	assert_int_equal(get_log(f, 1, 64, 0, 0, false), S_OK);
	assert_int_equal(*(uint64_t *)d, 0);
	assert_int_equal(get_log(f, 4, 512, 0, 0, false), S_INVALID_LOG);
	assert_int_equal(get_log(f, 0xc0, 512, 0, 0, false), S_INVALID_LOG);
	fx_free(f);
}

/*
 * Log page offsets and lengths from the guest (bhyve's D33568 added the
 * offset): past the page, unaligned, huge, more than MDTS.
 */
static void
test_regress_log_page_bounds(void **state)
{
	struct fx *f = fx_new(NULL);
	uint8_t *d = f->mem + BUF_GPA;
	struct sqe c;

	(void)state;
	enable(f);
	memset(d, 0xee, 2 * PAGE);
	assert_int_equal(get_log(f, 2, 512, 516, 0, false), S_INVALID_FIELD);
	assert_int_equal(get_log(f, 2, 512, 2, 0, false), S_INVALID_FIELD);
	assert_int_equal(get_log(f, 2, 512, 0xfffffffffffffffcULL, 0, false),
			 S_INVALID_FIELD);
	assert_int_equal(get_log(f, 1, 512, 64 + 4, 0, false), S_INVALID_FIELD);
	assert_int_equal(get_log(f, 1, 512, 0x100000000ULL, 0, false),
			 S_INVALID_FIELD);
	/* NUMD of 2^32 dwords: far more than MDTS. */
	c = cmd(0x02, 0);
	c.prp1 = BUF_GPA;
	c.cdw10 = 2 | 0xffffu << 16;
	c.cdw11 = 0xffff;
	assert_int_equal(adm(f, &c), S_INVALID_FIELD);
	assert_int_equal(get_log(f, 2, (1 << 20) + 4, 0, 0, false),
			 S_INVALID_FIELD);
	assert_int_equal(get_log(f, 2, 1 << 20, 0, 0, false), S_OK);
	assert_true(all_bytes(d + 512, 2 * PAGE - 512, 0xee));
	/* The data pointer outside RAM. */
	c = cmd(0x02, 0);
	c.prp1 = MEMSIZE;
	c.cdw10 = 2 | 127u << 16;
	assert_int_equal(adm(f, &c), S_DATA_XFER);
	fx_free(f);
}

/* ---- asynchronous events ---- */

static void
aer(struct fx *f)
{
	struct sqe c = cmd(0x0c, 0);

	push(f, 0, &c);
	ring(f, 0);
}

static void
test_aer_and_doorbell_errors(void **state)
{
	struct fx *f = fx_new(NULL);
	struct cqe e;
	struct sqe c;

	(void)state;
	enable(f);
	ioq(f, 1, 16);
	for (int i = 0; i < 4; i++)
		aer(f);
	assert_true(quiet(f, 0));
	/* A fifth: over AERL. Its CID clash with an outstanding one too. */
	c = cmd(0x0c, 0);
	assert_int_equal(adm(f, &c), S_AER_LIMIT);
	c = cmd(0x06, 0);
	c.cdw10 = 1;
	c.prp1 = BUF_GPA;
	f->q[0].cid = 2; /* outstanding AER */
	assert_int_equal(adm(f, &c), S_CID_CONFLICT);
	f->q[0].cid = 100;
	/* SQ tail past the queue: Invalid Doorbell Write Value. */
	wr(f, DB_SQ(1), 16);
	assert_true(take(f, 0, &e));
	assert_int_equal(status_of(&e), S_OK);
	assert_int_equal(e.dw0, 0 | 1 << 8 | 1 << 16);
	assert_true(e.cid >= 2 && e.cid <= 5);
	/* Masked until the error log is read. */
	wr(f, DB_SQ(1), 17);
	assert_true(quiet(f, 0));
	assert_int_equal(get_log(f, 1, 64, 0, 0, true), S_OK); /* RAE */
	assert_true(quiet(f, 0));
	assert_int_equal(get_log(f, 1, 64, 0, 0, false), S_OK);
	assert_int_equal(*(uint64_t *)(f->mem + BUF_GPA), 2);
	assert_int_equal(*(uint16_t *)(f->mem + BUF_GPA + 8), 1); /* SQID */
	/* The event that waited comes now. */
	assert_true(take(f, 0, &e));
	assert_int_equal(e.dw0, 0 | 1 << 8 | 1 << 16);
	assert_int_equal(get_log(f, 1, 64, 0, 0, false), S_OK);
	/* A doorbell of a queue that does not exist. */
	wr(f, DB_SQ(5), 0);
	assert_true(take(f, 0, &e));
	assert_int_equal(e.dw0, 0 | 0 << 8 | 1 << 16);
	assert_int_equal(get_log(f, 1, 64, 0, 0, false), S_OK);
	/* A CQ head past what was posted. */
	wr(f, DB_CQ(1), 3);
	assert_true(take(f, 0, &e));
	assert_int_equal(e.dw0, 0 | 1 << 8 | 1 << 16);
	assert_int_equal(get_log(f, 1, 64, 0, 0, false), S_OK);
	assert_int_equal(*(uint64_t *)(f->mem + BUF_GPA), 4);
	/* The queue still works. */
	assert_int_equal(io_rw(f, false, 0, 1, DATA_GPA, 0), S_OK);
	/*
	 * All four AERs are used: a SMART event (a temperature threshold
	 * crossed, enabled) waits for the next one.
	 */
	assert_int_equal(feature(f, true, 0x0b, 0x02, NULL), S_OK);
	assert_int_equal(feature(f, true, 4, 290, NULL), S_OK);
	assert_true(quiet(f, 0));
	aer(f);
	assert_true(take(f, 0, &e));
	assert_int_equal(e.dw0, 1 | 1 << 8 | 2 << 16);
	assert_int_equal(get_log(f, 2, 512, 0, 0, false), S_OK);
	assert_int_equal(f->mem[BUF_GPA], 0x02);
	assert_int_equal(feature(f, true, 4, 0x157, NULL), S_OK);
	assert_int_equal(get_log(f, 2, 512, 0, 0, false), S_OK);
	assert_int_equal(f->mem[BUF_GPA], 0);
	wr(f, DB_CQ(7), 0);
	assert_true(quiet(f, 0));
	aer(f);
	assert_true(take(f, 0, &e));
	assert_int_equal(e.dw0, 0 | 0 << 8 | 1 << 16);
	/* A reset drops AERs: after it, four fit again. */
	enable(f);
	for (int i = 0; i < 4; i++)
		aer(f);
	assert_true(quiet(f, 0));
	fx_free(f);
}

/* ---- I/O ---- */

static void
fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 7 + i * 13 + (i >> 9));
}

static void
test_read_write(void **state)
{
	struct fx *f = fx_new(NULL);
	static uint8_t buf[512 * 64];
	uint8_t *data = f->mem + DATA_GPA;
	uint64_t *list = (uint64_t *)(f->mem + LIST_GPA);

	(void)state;
	enable(f);
	ioq(f, 1, 64);
	/* One sector in PRP1. */
	assert_int_equal(io_rw(f, false, 5, 1, DATA_GPA, 0), S_OK);
	expect_sector(data, 5);
	fill(data, 512, 1);
	assert_int_equal(io_rw(f, true, 10, 1, DATA_GPA, 0), S_OK);
	read_image(f, 10 * 512, buf, 512);
	assert_memory_equal(buf, data, 512);
	/* Two pages: PRP1 at an offset, PRP2 the next (separate) page. */
	assert_int_equal(
	    io_rw(f, false, 100, 8, DATA_GPA + 0x800, DATA_GPA + 0x10000),
	    S_OK);
	for (int s = 0; s < 4; s++)
		expect_sector(data + 0x800 + 512 * s, 100 + s);
	for (int s = 4; s < 8; s++)
		expect_sector(data + 0x10000 + 512 * (s - 4), 100 + s);
	/* A PRP list: 16 pages scattered backwards. */
	for (int i = 0; i < 15; i++)
		list[i] = DATA_GPA + 0x40000 - 0x2000ULL * i;
	assert_int_equal(io_rw(f, false, 200, 128, DATA_GPA, LIST_GPA), S_OK);
	for (int s = 0; s < 128; s++)
		expect_sector(s < 8 ? data + 512 * s
				    : f->mem + list[s / 8 - 1] + 512 * (s % 8),
			      200 + s);
	fill(data, 4096, 2);
	for (int i = 0; i < 15; i++)
		fill(f->mem + list[i], 4096, 3 + i);
	assert_int_equal(io_rw(f, true, 300, 128, DATA_GPA, LIST_GPA), S_OK);
	read_image(f, 300 * 512, buf, 4096);
	assert_memory_equal(buf, data, 4096);
	for (int i = 0; i < 15; i++) {
		read_image(f, 300 * 512 + 4096 * (i + 1), buf, 4096);
		assert_memory_equal(buf, f->mem + list[i], 4096);
	}
	/* The largest transfer, 1 MiB (MDTS): the whole disk. */
	for (int i = 0; i < 255; i++)
		list[i] = DATA_GPA + 0x1000ULL * (i + 1);
	assert_int_equal(io_rw(f, false, 0, 2048, DATA_GPA, LIST_GPA), S_OK);
	for (int s = 0; s < 2048; s += 64) {
		read_image(f, 512 * s, buf, 512 * 64);
		assert_memory_equal(data + 512 * s, buf, 512 * 64);
	}
	assert_int_equal(io_rw(f, false, 0, 2049, DATA_GPA, LIST_GPA),
			 S_LBA_RANGE);
	fx_free(f);
}

/*
 * bhyve treated the last entry of a PRP list page as a pointer to the next
 * list even when the data ended there (PR 256422), and merged an initial
 * PRP of address 0 with a previous segment that did not exist (PR 264177).
 */
static void
test_regress_prp_list_edges(void **state)
{
	struct fx *f = fx_new(NULL);
	uint8_t *data = f->mem + DATA_GPA;
	uint64_t *list = (uint64_t *)(f->mem + LIST_GPA);
	uint64_t *tail4 = (uint64_t *)(f->mem + LIST_GPA + PAGE - 32);

	(void)state;
	enable(f);
	ioq(f, 1, 64);
	/* 5 pages: PRP1 plus a list of 4 that exactly fills its page. */
	for (int i = 0; i < 4; i++)
		tail4[i] = DATA_GPA + 0x10000ULL * (i + 1);
	assert_int_equal(io_rw(f, false, 0, 40, DATA_GPA, LIST_GPA + PAGE - 32),
			 S_OK);
	for (int i = 0; i < 4; i++)
		expect_sector(data + 0x10000 * (i + 1), 8 * (i + 1));
	/* 6 pages: the fourth slot chains to a list page of its own. */
	tail4[3] = LIST_GPA + 2 * PAGE;
	list[2 * PAGE / 8] = DATA_GPA + 0x40000;
	list[2 * PAGE / 8 + 1] = DATA_GPA + 0x50000;
	assert_int_equal(io_rw(f, false, 0, 48, DATA_GPA, LIST_GPA + PAGE - 32),
			 S_OK);
	expect_sector(data + 0x40000, 32);
	expect_sector(data + 0x50000, 40);
	/* A list starting in its page's last slot chains at once. */
	list[PAGE / 8 - 1] = LIST_GPA + 3 * PAGE;
	list[3 * PAGE / 8] = DATA_GPA + 0x60000;
	list[3 * PAGE / 8 + 1] = DATA_GPA + 0x70000;
	assert_int_equal(io_rw(f, false, 16, 24, DATA_GPA, LIST_GPA + PAGE - 8),
			 S_OK);
	expect_sector(data + 0x60000, 24);
	expect_sector(data + 0x70000, 32);
	/* Guest address 0 is RAM like any other. */
	memset(f->mem, 0, PAGE);
	assert_int_equal(io_rw(f, false, 7, 16, 0, DATA_GPA + 0x80000), S_OK);
	expect_sector(f->mem, 7);
	expect_sector(f->mem + 0x200 * 7, 14);
	expect_sector(data + 0x80000, 15);
	assert_int_equal(io_rw(f, false, 7, 16, 0x800, 0), S_PRP_OFFSET);
	fx_free(f);
}

static void
test_regress_prp_hostile(void **state)
{
	struct fx *f = fx_new(NULL);
	uint64_t *list = (uint64_t *)(f->mem + LIST_GPA);
	uint8_t before[4096], after[4096];

	(void)state;
	enable(f);
	ioq(f, 1, 64);
	read_image(f, 0, before, sizeof(before));
	fill(f->mem + DATA_GPA, 0x10000, 9);
	/* PRP1 not dword aligned; PRP2 data pointer with an offset. */
	assert_int_equal(io_rw(f, true, 0, 1, DATA_GPA + 2, 0), S_PRP_OFFSET);
	assert_int_equal(io_rw(f, true, 0, 16, DATA_GPA, DATA_GPA + 0x1200),
			 S_PRP_OFFSET);
	/* A list pointer not qword aligned; an entry with an offset. */
	assert_int_equal(io_rw(f, true, 0, 24, DATA_GPA, LIST_GPA + 4),
			 S_PRP_OFFSET);
	list[0] = DATA_GPA + 0x1000;
	list[1] = DATA_GPA + 0x2010;
	assert_int_equal(io_rw(f, true, 0, 24, DATA_GPA, LIST_GPA),
			 S_PRP_OFFSET);
	/* Outside RAM: PRP1, PRP2, a list entry, the list itself. */
	assert_int_equal(io_rw(f, true, 0, 1, MEMSIZE, 0), S_DATA_XFER);
	assert_int_equal(io_rw(f, true, 0, 8, MEMSIZE - 0x200ULL, MEMSIZE),
			 S_DATA_XFER);
	assert_int_equal(io_rw(f, true, 0, 16, DATA_GPA, 0xfee00000ULL),
			 S_DATA_XFER);
	list[1] = 0xffffffffffff000ULL;
	assert_int_equal(io_rw(f, true, 0, 24, DATA_GPA, LIST_GPA),
			 S_DATA_XFER);
	assert_int_equal(io_rw(f, true, 0, 24, DATA_GPA, MEMSIZE), S_DATA_XFER);
	/* A list in RAM's last slot chaining out of it. */
	*(uint64_t *)(f->mem + MEMSIZE - 8) = 0xfee00000ULL;
	assert_int_equal(io_rw(f, true, 0, 24, DATA_GPA, MEMSIZE - 8ULL),
			 S_DATA_XFER);
	/* A chain pointer with an offset; a list that chains to itself. */
	for (int i = 0; i < 511; i++)
		list[i] = DATA_GPA;
	list[511] = LIST_GPA + 8;
	assert_int_equal(
	    io_rw(f, true, 0, 2048, DATA_GPA, LIST_GPA + PAGE - 16),
	    S_PRP_OFFSET);
	list[511] = LIST_GPA;
	assert_int_equal(
	    io_rw(f, false, 0, 2048, DATA_GPA, LIST_GPA + PAGE - 16), S_OK);
	/* Nothing of the failed writes reached the image. */
	read_image(f, 0, after, sizeof(after));
	assert_memory_equal(before, after, sizeof(before));
	fx_free(f);
}

static void
test_io_fields(void **state)
{
	struct fx *f = fx_new(NULL);
	struct sqe c;

	(void)state;
	enable(f);
	ioq(f, 1, 64);
	/* LBA Out of Range, the end exactly, overflow of SLBA + NLB. */
	assert_int_equal(io_rw(f, false, DISK_SECTORS - 1, 1, DATA_GPA, 0),
			 S_OK);
	assert_int_equal(io_rw(f, false, DISK_SECTORS, 1, DATA_GPA, 0),
			 S_LBA_RANGE);
	assert_int_equal(io_rw(f, false, DISK_SECTORS - 1, 2, DATA_GPA, 0),
			 S_LBA_RANGE);
	assert_int_equal(io_rw(f, true, ~0ULL, 2, DATA_GPA, 0), S_LBA_RANGE);
	assert_int_equal(io_rw(f, true, 1ULL << 55, 1, DATA_GPA, 0),
			 S_LBA_RANGE);
	/* Namespaces, opcodes, SGLs, fused. */
	c = rw(false, 0, 1, DATA_GPA, 0);
	c.nsid = 0;
	assert_int_equal(run(f, 1, &c, NULL), S_INVALID_NS);
	c.nsid = 2;
	assert_int_equal(run(f, 1, &c, NULL), S_INVALID_NS);
	c.nsid = 0xffffffff;
	assert_int_equal(run(f, 1, &c, NULL), S_INVALID_NS);
	c = rw(false, 0, 1, DATA_GPA, 0);
	c.cdw0 |= 1 << 14;
	assert_int_equal(run(f, 1, &c, NULL), S_INVALID_FIELD);
	c = rw(false, 0, 1, DATA_GPA, 0);
	c.cdw0 |= 2 << 8;
	assert_int_equal(run(f, 1, &c, NULL), S_INVALID_FIELD);
	for (int op = 3; op < 0x100; op++) {
		if (op == 8 || op == 9)
			continue;
		c = cmd((uint8_t)op, 1);
		assert_int_equal(run(f, 1, &c, NULL), S_INVALID_OPCODE);
	}
	/* Admin opcodes mean nothing on an I/O queue. */
	c = cmd(0x06, 1);
	c.cdw10 = 1;
	c.prp1 = BUF_GPA;
	assert_int_equal(run(f, 1, &c, NULL), S_INVALID_OPCODE);
	/* Flush: namespace 1 or all. */
	c = cmd(0x00, 1);
	assert_int_equal(run(f, 1, &c, NULL), S_OK);
	c = cmd(0x00, 0xffffffff);
	assert_int_equal(run(f, 1, &c, NULL), S_OK);
	c = cmd(0x00, 0);
	assert_int_equal(run(f, 1, &c, NULL), S_INVALID_NS);
	/* FUA and with the write cache off: flushed before completion. */
	c = rw(true, 3, 1, DATA_GPA, 0);
	c.cdw12 |= 1u << 30;
	assert_int_equal(run(f, 1, &c, NULL), S_OK);
	assert_int_equal(feature(f, true, 6, 0, NULL), S_OK);
	assert_int_equal(io_rw(f, true, 3, 1, DATA_GPA, 0), S_OK);
	fx_free(f);
}

static struct sqe
zeroes(uint64_t slba, uint32_t nlb)
{
	struct sqe c = cmd(0x08, 1);

	c.cdw10 = (uint32_t)slba;
	c.cdw11 = (uint32_t)(slba >> 32);
	c.cdw12 = nlb - 1;
	return c;
}

static struct sqe
dsm(int nr, uint32_t attr)
{
	struct sqe c = cmd(0x09, 1);

	c.prp1 = BUF_GPA;
	c.prp2 = BUF_GPA + PAGE;
	c.cdw10 = (uint32_t)(nr - 1);
	c.cdw11 = attr;
	return c;
}

static void
dsm_range(struct fx *f, int i, uint64_t slba, uint32_t nlb)
{
	uint8_t *r = f->mem + BUF_GPA + 16 * i;

	memset(r, 0, 16);
	memcpy(r + 4, &nlb, 4);
	memcpy(r + 8, &slba, 8);
}

static void
test_zeroes_and_dsm(void **state)
{
	struct fx *f = fx_new(NULL);
	uint8_t buf[18 * 512];
	struct sqe c;

	(void)state;
	enable(f);
	ioq(f, 1, 64);
	c = zeroes(40, 16);
	assert_int_equal(run(f, 1, &c, NULL), S_OK);
	read_image(f, 39 * 512, buf, 18 * 512);
	expect_sector(buf, 39);
	assert_true(all_bytes(buf + 512, 16 * 512, 0));
	expect_sector(buf + 17 * 512, 56);
	c = zeroes(DISK_SECTORS - 8, 9);
	assert_int_equal(run(f, 1, &c, NULL), S_LBA_RANGE);
	c = zeroes(0, 65536); /* NLB at its largest */
	assert_int_equal(run(f, 1, &c, NULL), S_LBA_RANGE);
	/* Deallocate two ranges (and an empty one): they read as zeros. */
	dsm_range(f, 0, 100, 8);
	dsm_range(f, 1, 0, 0);
	dsm_range(f, 2, 300, 16);
	c = dsm(3, 4);
	assert_int_equal(run(f, 1, &c, NULL), S_OK);
	read_image(f, 100 * 512, buf, 9 * 512);
	assert_true(all_bytes(buf, 8 * 512, 0));
	expect_sector(buf + 8 * 512, 108);
	read_image(f, 300 * 512, buf, 16 * 512);
	assert_true(all_bytes(buf, 16 * 512, 0));
	/* Only attributes (no AD): nothing happens. */
	dsm_range(f, 0, 400, 8);
	c = dsm(1, 3);
	assert_int_equal(run(f, 1, &c, NULL), S_OK);
	read_image(f, 400 * 512, buf, 512);
	expect_sector(buf, 400);
	fx_free(f);
}

/*
 * DSM with every range count (bhyve's DSM parsing overflowed its array):
 * 256 ranges across two pages, a bad one last, none done.
 */
static void
test_regress_dsm_ranges(void **state)
{
	struct fx *f = fx_new(NULL);
	uint8_t buf[512];
	struct sqe c;

	(void)state;
	enable(f);
	ioq(f, 1, 64);
	for (int i = 0; i < 255; i++)
		dsm_range(f, i, (uint64_t)i * 8, 1);
	dsm_range(f, 255, DISK_SECTORS - 1, 2);
	c = dsm(256, 4);
	assert_int_equal(run(f, 1, &c, NULL), S_LBA_RANGE);
	read_image(f, 0, buf, 512);
	expect_sector(buf, 0);
	dsm_range(f, 255, ~0ULL - 1, 4);
	assert_int_equal(run(f, 1, &c, NULL), S_LBA_RANGE);
	dsm_range(f, 255, 0, 0xffffffff);
	assert_int_equal(run(f, 1, &c, NULL), S_LBA_RANGE);
	/* All good: 256 ranges deallocated. */
	dsm_range(f, 255, DISK_SECTORS - 1, 1);
	assert_int_equal(run(f, 1, &c, NULL), S_OK);
	read_image(f, 8 * 254 * 512, buf, 512);
	assert_true(all_bytes(buf, 512, 0));
	read_image(f, (8 * 254 + 1) * 512, buf, 512);
	expect_sector(buf, 8 * 254 + 1);
	/* The range list itself outside RAM. */
	c = dsm(2, 4);
	c.prp1 = MEMSIZE - 16ULL;
	c.prp2 = MEMSIZE;
	assert_int_equal(run(f, 1, &c, NULL), S_DATA_XFER);
	fx_free(f);
}

static void
test_dsm_options(void **state)
{
	struct fx *f;
	uint8_t buf[512];
	struct sqe c;

	(void)state;
	/* nodelete: auto leaves DSM out; enable takes it and keeps data. */
	f = fx_new("nodelete");
	enable(f);
	assert_int_equal(identify(f, 1, 0, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint16_t *)(f->mem + BUF_GPA + 520), 0x08);
	ioq(f, 1, 16);
	c = dsm(1, 4);
	assert_int_equal(run(f, 1, &c, NULL), S_INVALID_OPCODE);
	fx_free(f);

	f = fx_new("nodelete,dsm=enable");
	enable(f);
	assert_int_equal(identify(f, 1, 0, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint16_t *)(f->mem + BUF_GPA + 520), 0x0c);
	ioq(f, 1, 16);
	dsm_range(f, 0, 8, 1);
	c = dsm(1, 4);
	assert_int_equal(run(f, 1, &c, NULL), S_OK);
	read_image(f, 8 * 512, buf, 512);
	expect_sector(buf, 8);
	fx_free(f);

	f = fx_new("dsm=disable");
	enable(f);
	assert_int_equal(identify(f, 1, 0, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint16_t *)(f->mem + BUF_GPA + 520), 0x08);
	ioq(f, 1, 16);
	c = dsm(1, 4);
	assert_int_equal(run(f, 1, &c, NULL), S_INVALID_OPCODE);
	fx_free(f);
}

static void
test_read_only(void **state)
{
	struct fx *f = fx_new("ro");
	uint8_t buf[512];
	struct sqe c;

	(void)state;
	enable(f);
	assert_int_equal(identify(f, 0, 1, BUF_GPA, 0), S_OK);
	assert_int_equal(f->mem[BUF_GPA + 99], 1); /* NSATTR */
	assert_int_equal(identify(f, 1, 0, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint16_t *)(f->mem + BUF_GPA + 520), 0x08);
	ioq(f, 1, 16);
	assert_int_equal(io_rw(f, true, 0, 1, DATA_GPA, 0), S_WRITE_PROTECTED);
	c = zeroes(0, 1);
	assert_int_equal(run(f, 1, &c, NULL), S_WRITE_PROTECTED);
	assert_int_equal(io_rw(f, false, 1, 1, DATA_GPA, 0), S_OK);
	expect_sector(f->mem + DATA_GPA, 1);
	read_image(f, 0, buf, 512);
	expect_sector(buf, 0);
	fx_free(f);

	f = fx_new("ro,dsm=enable");
	enable(f);
	ioq(f, 1, 16);
	dsm_range(f, 0, 0, 1);
	c = dsm(1, 4);
	assert_int_equal(run(f, 1, &c, NULL), S_WRITE_PROTECTED);
	fx_free(f);
}

/* ---- interrupts ---- */

static void
msix_on(struct fx *f, int n)
{
	uint8_t cap = cap_find(f, 0x11);
	uint64_t bar = pci_cfg_read(f->ctx, 0, SLOT, 0, 0x20, 4) & ~0xfu, v;

	for (int i = 0; i < n; i++) {
		v = 0xfee00000;
		emulate_mem(f->ctx, NULL, bar + 16 * i, MEM_F_WRITE, 4, &v);
		v = 0x40 + i;
		emulate_mem(f->ctx, NULL, bar + 16 * i + 8, MEM_F_WRITE, 4, &v);
		v = 0;
		emulate_mem(f->ctx, NULL, bar + 16 * i + 12, MEM_F_WRITE, 4,
			    &v);
	}
	pci_cfg_write(f->ctx, 0, SLOT, 0, cap + 2, 2, 0x8000);
}

static void
test_interrupts(void **state)
{
	struct fx *f = fx_new(NULL);
	int irq = (int)pci_cfg_read(f->ctx, 0, SLOT, 0, 0x3c, 1);
	uint64_t msg;
	struct cqe e;
	struct sqe c;

	(void)state;
	/* INTx: up with an unread entry, down when the head catches up. */
	enable(f);
	c = cmd(0x06, 0);
	c.cdw10 = 1;
	c.prp1 = BUF_GPA;
	push(f, 0, &c);
	ring(f, 0);
	assert_true(cqe_ready(f, 0));
	assert_int_equal(vm_mock_irq_level(f->ctx, irq), 1);
	/* INTMS masks it, INTMC unmasks. */
	wr(f, R_INTMS, 1);
	assert_int_equal(rd(f, R_INTMS), 1);
	assert_int_equal(vm_mock_irq_level(f->ctx, irq), 0);
	wr(f, R_INTMC, 1);
	assert_int_equal(rd(f, R_INTMC), 0);
	assert_int_equal(vm_mock_irq_level(f->ctx, irq), 1);
	assert_true(take(f, 0, &e));
	assert_int_equal(vm_mock_irq_level(f->ctx, irq), 0);
	/* A queue without IEN raises nothing. */
	assert_int_equal(create_cq(f, 2, 16, IOQ_GPA + 0x6000, 0, 1), S_OK);
	assert_int_equal(create_sq(f, 2, 16, IOQ_GPA + 0x4000, 2, 1), S_OK);
	f->q[2] =
	    (struct q){IOQ_GPA + 0x4000, IOQ_GPA + 0x6000, 16, 16, 0, 0, 1, 0};
	int pulses = vm_mock_irq_pulses(f->ctx, irq);
	c = rw(false, 0, 1, DATA_GPA, 0);
	assert_int_equal(run(f, 2, &c, NULL), S_OK);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, irq), pulses);

	/* MSI-X: each queue's own vector. */
	enable(f);
	msix_on(f, 17);
	memset(f->mem + IOQ_GPA + 0x4000, 0, 0x4000);
	assert_int_equal(create_cq(f, 1, 16, IOQ_GPA + 0x6000, 17, 3),
			 S_INVALID_IV);
	assert_int_equal(create_cq(f, 1, 16, IOQ_GPA + 0x6000, 5, 3), S_OK);
	assert_int_equal(create_sq(f, 1, 16, IOQ_GPA + 0x4000, 1, 1), S_OK);
	f->q[1] =
	    (struct q){IOQ_GPA + 0x4000, IOQ_GPA + 0x6000, 16, 16, 0, 0, 1, 0};
	int before = vm_mock_msi_count(f->ctx, NULL, NULL);
	assert_int_equal(io_rw(f, false, 0, 1, DATA_GPA, 0), S_OK);
	assert_true(vm_mock_msi_count(f->ctx, NULL, &msg) > before);
	assert_int_equal(msg, 0x45);
	assert_int_equal(vm_mock_irq_level(f->ctx, irq), 0);
	assert_int_equal(identify(f, 1, 0, BUF_GPA, 0), S_OK);
	assert_true(vm_mock_msi_count(f->ctx, NULL, &msg) > before + 1);
	assert_int_equal(msg, 0x40);
	/* INTMS is not for MSI-X. */
	wr(f, R_INTMS, 1);
	assert_int_equal(rd(f, R_INTMS), 0);
	fx_free(f);
}

/* ---- flow control ---- */

/*
 * A completion queue with room for one entry: commands wait in their
 * submission queue until the host frees completion entries, and no entry
 * is ever overwritten.
 */
static void
test_cq_full(void **state)
{
	struct fx *f = fx_new("ioslots=2");
	struct cqe e;
	struct sqe c;

	(void)state;
	enable(f);
	assert_int_equal(create_cq(f, 1, 2, IOQ_GPA + 0x6000, 0, 3), S_OK);
	assert_int_equal(create_sq(f, 1, 16, IOQ_GPA + 0x4000, 1, 1), S_OK);
	f->q[1] =
	    (struct q){IOQ_GPA + 0x4000, IOQ_GPA + 0x6000, 16, 2, 0, 0, 1, 0};
	for (int i = 0; i < 6; i++) {
		c = rw(false, (uint64_t)i, 1, DATA_GPA + 0x1000ULL * i, 0);
		push(f, 1, &c);
	}
	ring(f, 1);
	for (int i = 0; i < 6; i++) {
		struct cqe *ring1 = (struct cqe *)(f->mem + IOQ_GPA + 0x6000);
		struct timespec ts = {0, 20000000};
		uint32_t slot = f->q[1].head;
		uint16_t phase = f->q[1].phase;

		assert_true(take(f, 1, &e));
		assert_int_equal(e.cid, i);
		assert_int_equal(status_of(&e), S_OK);
		expect_sector(f->mem + DATA_GPA + 0x1000 * i, (uint32_t)i);
		/* The entry just read is not written again before the next
		 * one is: one free slot always. */
		nanosleep(&ts, NULL);
		(void)rd(f, R_CSTS);
		assert_int_equal(ring1[slot].status & 1, phase);
		assert_int_equal(ring1[slot].cid, i);
	}
	fx_free(f);
}

/* Many commands, few slots, several queues: all complete, in order per
 * queue. */
static void
test_ioslots(void **state)
{
	struct fx *f = fx_new("ioslots=1");
	int seen[3] = {0};
	struct cqe e;
	struct sqe c;

	(void)state;
	enable(f);
	ioq(f, 1, 64);
	ioq(f, 2, 64);
	for (int i = 0; i < 40; i++) {
		int q = 1 + i % 2;
		c = rw(i % 3 == 0, (uint64_t)i * 4, 4, DATA_GPA + 0x1000ULL * i,
		       0);
		push(f, q, &c);
	}
	ring(f, 1);
	ring(f, 2);
	for (int i = 0; i < 40; i++) {
		int q = 1 + i % 2;
		assert_true(take(f, q, &e));
		assert_int_equal(status_of(&e), S_OK);
		assert_int_equal(e.cid, seen[q]++);
	}
	for (int i = 1; i < 40; i += 3)
		expect_sector(f->mem + DATA_GPA + 0x1000 * i, (uint32_t)i * 4);
	fx_free(f);
}

/*
 * Delete an I/O SQ and reset the controller while the backend has its
 * commands: every command completes (or, after a reset, is dropped)
 * before the deletion or CSTS.RDY = 0 is reported.
 */
static void
test_delete_and_reset_in_flight(void **state)
{
	struct fx *f = fx_new("ioslots=16");
	struct cqe e;
	struct sqe c;

	(void)state;
	for (int round = 0; round < 20; round++) {
		int done = 0;

		enable(f);
		ioq(f, 1, 64);
		for (int i = 0; i < 16; i++) {
			c = zeroes((uint64_t)i * 64, 64);
			push(f, 1, &c);
		}
		ring(f, 1);
		c = cmd(0x00, 0);
		c.cdw10 = 1;
		push(f, 0, &c);
		ring(f, 0);
		assert_true(take(f, 0, &e));
		assert_int_equal(status_of(&e), S_OK);
		/* The I/O completions were all posted before it. */
		while (cqe_ready(f, 1)) {
			assert_true(take(f, 1, &e));
			assert_int_equal(status_of(&e), S_OK);
			done++;
		}
		assert_int_equal(done, 16);
		assert_int_equal(delete_q(f, 0x04, 1), S_OK);

		/* A reset with commands in flight. */
		ioq(f, 1, 64);
		for (int i = 0; i < 16; i++) {
			c = rw(false, (uint64_t)i * 64, 64,
			       DATA_GPA + 0x8000ULL * i,
			       DATA_GPA + 0x8000ULL * i + 0x1000);
			c.prp2 = LIST_GPA;
			push(f, 1, &c);
		}
		for (int i = 0; i < 7; i++)
			((uint64_t *)(f->mem + LIST_GPA))[i] =
			    DATA_GPA + 0x200000 + 0x1000ULL * i;
		ring(f, 1);
		wr(f, R_CC, 0);
		assert_true(wait_csts(f, 1, 0));
	}
	enable(f);
	ioq(f, 1, 64);
	assert_int_equal(io_rw(f, false, 2000, 1, DATA_GPA, 0), S_OK);
	expect_sector(f->mem + DATA_GPA, 2000);
	fx_free(f);
}

/*
 * Two commands with one CID in one doorbell: the first is still with the
 * backend (its callback waits for the lock the fetch holds), so the second
 * is a Command ID Conflict.
 */
static void
test_io_cid_conflict(void **state)
{
	struct fx *f = fx_new(NULL);
	struct cqe e;
	struct sqe c;

	(void)state;
	enable(f);
	ioq(f, 1, 16);
	c = rw(false, 0, 8, DATA_GPA, 0);
	push(f, 1, &c);
	c = rw(false, 8, 8, DATA_GPA + PAGE, 0);
	push(f, 1, &c);
	((struct sqe *)(f->mem + f->q[1].sq_gpa))[1].cdw0 = 0x02 | 0 << 16;
	ring(f, 1);
	assert_true(take(f, 1, &e));
	assert_int_equal(e.cid, 0);
	assert_int_equal(status_of(&e), S_CID_CONFLICT);
	assert_int_equal(e.sqhd, 2);
	assert_true(take(f, 1, &e));
	assert_int_equal(e.cid, 0);
	assert_int_equal(status_of(&e), S_OK);
	expect_sector(f->mem + DATA_GPA, 0);
	fx_free(f);
}

/* The backend fails: an image that shrank under the disk. */
static void
test_backend_errors(void **state)
{
	struct fx *f = fx_new(NULL);

	(void)state;
	enable(f);
	ioq(f, 1, 16);
	assert_int_equal(truncate(f->image, 512 * 100), 0);
	assert_int_equal(io_rw(f, false, 99, 1, DATA_GPA, 0), S_OK);
	assert_int_equal(io_rw(f, false, 100, 1, DATA_GPA, 0), S(2, 0x81));
	assert_int_equal(io_rw(f, true, 2000, 1, DATA_GPA, 0), S_OK);
	fx_free(f);
}

/* CC.EN set again before a reset with commands in flight finished. */
static void
test_reenable_during_reset(void **state)
{
	struct fx *f = fx_new("ioslots=16");
	uint64_t *list = (uint64_t *)(f->mem + LIST_GPA);
	struct sqe c;

	(void)state;
	for (int i = 0; i < 255; i++)
		list[i] = DATA_GPA + 0x1000ULL * (i + 1);
	for (int round = 0; round < 10; round++) {
		enable(f);
		ioq(f, 1, 64);
		for (int i = 0; i < 16; i++) {
			c = rw(i & 1, 0, 2048, DATA_GPA, LIST_GPA);
			push(f, 1, &c);
		}
		ring(f, 1);
		wr(f, R_CC, 0);
		wr(f, R_CC, CC_ENABLE);
		assert_true(wait_csts(f, 3, 1));
		f->q[0].tail = f->q[0].head = 0;
		f->q[0].phase = 1;
		f->q[0].cid = 0;
		memset(f->mem + ACQ_GPA, 0, 0x1000);
		assert_int_equal(identify(f, 1, 0, BUF_GPA, 0), S_OK);
	}
	fx_free(f);
}

/* ---- hostile doorbells and queues (bhyve's D35453 and friends) ---- */

static void
test_regress_doorbells(void **state)
{
	struct fx *f = fx_new("maxq=2");
	uint64_t v;

	(void)state;
	/* Before the controller is ready: nothing happens. */
	for (int q = 0; q < 8; q++) {
		wr(f, DB_SQ(q), 0xffffffff);
		wr(f, DB_CQ(q), 0xffffffff);
	}
	enable(f);
	/* Past the doorbells of maxq + 1 queues, to the BAR's end. */
	for (uint64_t off = 0x1000; off < 0x4000; off += 4)
		wr(f, off, 0x7fffffff);
	v = 0xffffffffffffffffULL;
	emulate_mem(f->ctx, NULL, f->bar0 + 0x3ff8, MEM_F_WRITE, 8, &v);
	/* Admin SQ tail and CQ head past their sizes. */
	wr(f, DB_SQ(0), AQ_SIZE);
	wr(f, DB_CQ(0), AQ_SIZE);
	wr(f, DB_CQ(0), 1); /* nothing posted yet */
	assert_int_equal(identify(f, 1, 0, BUF_GPA, 0), S_OK);
	assert_int_equal(rd(f, R_CSTS) & 3, 1);
	fx_free(f);
}

/*
 * Queue ids and sizes straight from the guest into array indexes were
 * bhyve's classic NVMe hole: every id at the edges, for every queue
 * command and the features that take a vector or queue counts.
 */
static void
test_regress_queue_ids(void **state)
{
	static const uint32_t ids[] = {0,      3,      4,      5,
				       0x7fff, 0x8000, 0xfffe, 0xffff};
	struct fx *f = fx_new("maxq=3");

	(void)state;
	enable(f);
	msix_on(f, 4);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		uint16_t id = (uint16_t)ids[i];
		int want = id == 3 ? S_OK : S_INVALID_QID;

		assert_int_equal(create_cq(f, id, 2, IOQ_GPA, 0, 3), want);
		assert_int_equal(create_sq(f, 1, 2, IOQ_GPA + 0x1000, id, 1),
				 id == 3 ? S_OK : S_INVALID_CQ);
		if (id == 3) {
			assert_int_equal(delete_q(f, 0x00, 1), S_OK);
			assert_int_equal(delete_q(f, 0x04, 3), S_OK);
		}
		assert_int_equal(delete_q(f, 0x00, id), S_INVALID_QID);
		assert_int_equal(delete_q(f, 0x04, id), S_INVALID_QID);
		assert_int_equal(create_cq(f, 1, 2, IOQ_GPA, id, 3),
				 id <= 3 ? S_OK : S_INVALID_IV);
		if (id <= 3)
			assert_int_equal(delete_q(f, 0x04, 1), S_OK);
		assert_int_equal(feature(f, false, 9, id, NULL),
				 id <= 3 ? S_OK : S_INVALID_FIELD);
	}
	/* Sizes: 1 (QSIZE 0), MQES + 2, the largest fields. */
	static const uint32_t sizes[] = {1, 2049, 0x8000, 0xffff, 0x10000};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(create_cq(f, 1, sizes[i], IOQ_GPA, 0, 3),
				 S_INVALID_QSIZE);
		assert_int_equal(create_cq(f, 1, 2, IOQ_GPA, 0, 3), S_OK);
		assert_int_equal(
		    create_sq(f, 1, sizes[i], IOQ_GPA + 0x1000, 1, 1),
		    S_INVALID_QSIZE);
		assert_int_equal(delete_q(f, 0x04, 1), S_OK);
	}
	fx_free(f);
}

/*
 * What Linux's nvme driver does at probe and shutdown (drivers/nvme/host
 * pci.c and core.c), for a 4-vCPU guest: the controller must come up with
 * one I/O queue pair per CPU, each on its own MSI-X vector, and shut down
 * cleanly.
 */
static void
test_linux_probe(void **state)
{
	struct fx *f = fx_new(NULL);
	uint8_t *d = f->mem + BUF_GPA;
	uint64_t msg;
	uint32_t v;
	struct sqe c;

	(void)state;
	/* nvme_pci_enable: CAP as two dwords; CSTS not all ones. */
	v = rd(f, R_CAP);
	assert_int_equal(v & 0xffff, 2047);
	assert_int_equal(rd(f, R_CAP + 4) & 0xf, 0); /* DSTRD */
	assert_true(rd(f, R_CSTS) != 0xffffffff);
	msix_on(f, 17);
	/* nvme_pci_configure_admin_queue: disable, queues, enable. */
	wr(f, R_CC, 0);
	assert_true(wait_csts(f, 1, 0));
	memset(f->mem + ASQ_GPA, 0, 0x2000);
	f->q[0] = (struct q){ASQ_GPA, ACQ_GPA, AQ_SIZE, AQ_SIZE, 0, 0, 1, 0};
	wr(f, R_AQA, (AQ_SIZE - 1) << 16 | (AQ_SIZE - 1));
	wr(f, R_ASQ, (uint32_t)ASQ_GPA);
	wr(f, R_ASQ + 4, 0);
	wr(f, R_ACQ, (uint32_t)ACQ_GPA);
	wr(f, R_ACQ + 4, 0);
	wr(f, R_CC, 6u << 16 | 4u << 20);
	wr(f, R_CC, CC_ENABLE);
	assert_true(wait_csts(f, 1, 1));
	/* nvme_init_identify. */
	assert_int_equal(identify(f, 1, 0, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint32_t *)(d + 80), 0x00010400);
	c = cmd(0x06, 0);
	c.prp1 = BUF_GPA;
	c.cdw10 = 0x06; /* CNS 06h, CSI 0: a 2.0 structure, refused */
	assert_int_equal(adm(f, &c), S_INVALID_FIELD);
	/* nvme_setup_io_queues: 4 CPUs, 4 queue pairs. */
	assert_int_equal(feature(f, true, 7, 3 | 3 << 16, &v), S_OK);
	assert_int_equal(v, 3 | 3 << 16);
	for (int q = 1; q <= 4; q++) {
		uint64_t sq = IOQ_GPA + 0x4000ULL * q, cq = sq + 0x2000;

		memset(f->mem + sq, 0, 0x4000);
		assert_int_equal(
		    create_cq(f, (uint16_t)q, 64, cq, (uint16_t)q, 3), S_OK);
		assert_int_equal(
		    create_sq(f, (uint16_t)q, 64, sq, (uint16_t)q, 1 | 2 << 1),
		    S_OK);
		f->q[q] = (struct q){sq, cq, 64, 64, 0, 0, 1, 0};
	}
	/* nvme_scan_ns_list, nvme_identify_ns_descs, nvme_identify_ns. */
	assert_int_equal(identify(f, 2, 0, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint32_t *)d, 1);
	assert_int_equal(identify(f, 3, 1, BUF_GPA, 0), S_OK);
	assert_int_equal(identify(f, 0, 1, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint64_t *)d, DISK_SECTORS);
	/* nvme_start_ctrl: one AER outstanding. */
	aer(f);
	assert_true(quiet(f, 0));
	/* Reads on every queue, each completing on its own vector. */
	for (int q = 1; q <= 4; q++) {
		c = cmd(0x00, 1);
		assert_int_equal(run(f, q, &c, NULL), S_OK);
		c = rw(false, (uint64_t)q, 1, DATA_GPA, 0);
		assert_int_equal(run(f, q, &c, NULL), S_OK);
		vm_mock_msi_count(f->ctx, NULL, &msg);
		assert_int_equal(msg, 0x40 + q);
		expect_sector(f->mem + DATA_GPA, (uint32_t)q);
	}
	/* nvme_dev_disable: delete the queues, then a normal shutdown. */
	for (int q = 1; q <= 4; q++)
		assert_int_equal(delete_q(f, 0x00, (uint16_t)q), S_OK);
	for (int q = 1; q <= 4; q++)
		assert_int_equal(delete_q(f, 0x04, (uint16_t)q), S_OK);
	wr(f, R_CC, CC_ENABLE | 1u << 14);
	assert_true(wait_csts(f, 0xc, 0x8));
	fx_free(f);
}

/* ---- namespaces in memory ---- */

static void
test_ram(void **state)
{
	struct fx *f = fx_new_ram("ram=2,sectsz=512");
	uint8_t *d = f->mem + BUF_GPA, *data = f->mem + DATA_GPA;
	uint64_t *list = (uint64_t *)(f->mem + LIST_GPA);
	struct sqe c;

	(void)state;
	enable(f);
	assert_int_equal(identify(f, 0, 1, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint64_t *)d, 4096);
	assert_int_equal(*(uint32_t *)(d + 128), 9 << 16);
	assert_int_equal(identify(f, 1, 0, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint16_t *)(d + 520), 0x0c);
	assert_int_equal(d[525], 0x06); /* nothing to flush */
	ioq(f, 1, 64);
	assert_int_equal(io_rw(f, false, 0, 1, DATA_GPA, 0), S_OK);
	assert_true(all_bytes(data, 512, 0));
	for (int i = 0; i < 7; i++)
		list[i] = DATA_GPA + 0x10000ULL * (i + 1);
	fill(data, 4096, 5);
	for (int i = 0; i < 7; i++)
		fill(data + 0x10000 * (i + 1), 4096, 6 + i);
	assert_int_equal(io_rw(f, true, 64, 64, DATA_GPA, LIST_GPA), S_OK);
	memcpy(f->mem + 0x300000, data, 4096);
	memset(data, 0, 4096);
	assert_int_equal(io_rw(f, false, 64, 8, DATA_GPA, 0), S_OK);
	assert_memory_equal(data, f->mem + 0x300000, 4096);
	/* Zeroes and deallocation clear; flush is nothing to do. */
	c = zeroes(64, 1);
	assert_int_equal(run(f, 1, &c, NULL), S_OK);
	dsm_range(f, 0, 66, 2);
	c = dsm(1, 4);
	assert_int_equal(run(f, 1, &c, NULL), S_OK);
	assert_int_equal(io_rw(f, false, 64, 8, DATA_GPA, 0), S_OK);
	assert_true(all_bytes(data, 512, 0));
	assert_memory_equal(data + 512, f->mem + 0x300000 + 512, 512);
	assert_true(all_bytes(data + 1024, 1024, 0));
	c = cmd(0x00, 1);
	assert_int_equal(run(f, 1, &c, NULL), S_OK);
	assert_int_equal(io_rw(f, false, 4095, 2, DATA_GPA, 0), S_LBA_RANGE);
	/* MDTS: 1 MiB, one block more is refused. */
	for (int i = 0; i < 256; i++)
		list[i] = DATA_GPA + 0x1000ULL * (i + 1);
	assert_int_equal(io_rw(f, false, 0, 2048, DATA_GPA, LIST_GPA), S_OK);
	assert_int_equal(io_rw(f, false, 0, 2049, DATA_GPA, LIST_GPA),
			 S_INVALID_FIELD);
	assert_int_equal(feature(f, false, 6, 0, NULL), S_INVALID_FIELD);
	fx_free(f);

	f = fx_new_ram("ram=1");
	enable(f);
	assert_int_equal(identify(f, 0, 1, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint64_t *)(f->mem + BUF_GPA), 256);
	assert_int_equal(*(uint32_t *)(f->mem + BUF_GPA + 128), 12 << 16);
	fx_free(f);
}

/* ---- options ---- */

/* Run init with stderr in a file; its first line in buf; init's rc. */
static int
init_capture(const char *opts, bool ram, size_t image, char *buf, size_t len)
{
	struct fx *f = fx_alloc();
	char path[] = "/tmp/test_nvme_err.XXXXXX";
	int fd = mkstemp(path), saved = dup(2), rc;
	FILE *fp;

	assert_true(fd >= 0 && saved >= 0);
	if (!ram)
		make_image(f, image);
	fflush(stderr);
	dup2(fd, 2);
	rc = fx_init(f, opts, ram);
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

static void
expect_error(const char *opts, bool ram, size_t image, const char *words)
{
	char line[512];

	assert_int_equal(init_capture(opts, ram, image, line, sizeof(line)),
			 -1);
	if (!strstr(line, words) || !strstr(line, "nvme at 0:4:0"))
		fail_msg("error line '%s' lacks '%s'", line, words);
}

static void
test_options(void **state)
{
	struct config *cfg = config_create();
	struct fx *f;
	uint8_t *d;

	(void)state;
	/* bhyve(8)'s -s syntax into bhyve_config(5) keys. */
	assert_int_equal(pci_parse_slot(cfg,
					"4,nvme,/x/disk.img,maxq=4,qsz=128,"
					"ioslots=4,sectsz=4096,ser=ABC,"
					"eui64=0x1122,dsm=enable,ro,nocache",
					err, sizeof(err)),
			 0);
	assert_string_equal(config_get(cfg, "pci.0.4.0.path"), "/x/disk.img");
	assert_string_equal(config_get(cfg, "pci.0.4.0.maxq"), "4");
	assert_string_equal(config_get(cfg, "pci.0.4.0.sectsz"), "4096");
	assert_string_equal(config_get(cfg, "pci.0.4.0.dsm"), "enable");
	assert_string_equal(config_get(cfg, "pci.0.4.0.ro"), "true");
	assert_int_equal(
	    pci_parse_slot(cfg, "5,nvme,ram=64,maxq=2", err, sizeof(err)), 0);
	assert_string_equal(config_get(cfg, "pci.0.5.0.ram"), "64");
	assert_null(config_get(cfg, "pci.0.5.0.path"));
	config_free(cfg);

	f = fx_new("maxq=4,qsz=128,ioslots=4,sectsz=4096,ser=ABC,"
		   "eui64=0x1122334455667788");
	d = f->mem + BUF_GPA;
	assert_int_equal(rd64(f, R_CAP) & 0xffff, 127);
	assert_int_equal(
	    pci_cfg_read(f->ctx, 0, SLOT, 0, cap_find(f, 0x11) + 2, 2), 4);
	enable(f);
	assert_int_equal(identify(f, 1, 0, BUF_GPA, 0), S_OK);
	assert_memory_equal(d + 4, "ABC                 ", 20);
	assert_int_equal(identify(f, 0, 1, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint64_t *)d, DISK_SECTORS / 8);
	assert_int_equal(*(uint32_t *)(d + 128), 12 << 16);
	assert_memory_equal(d + 120, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	assert_int_equal(feature(f, true, 7, 9 | 9 << 16, NULL), S_OK);
	assert_int_equal(create_cq(f, 4, 2, IOQ_GPA, 0, 3), S_OK);
	assert_int_equal(create_cq(f, 5, 2, IOQ_GPA, 0, 3), S_INVALID_QID);
	assert_int_equal(create_cq(f, 1, 129, IOQ_GPA, 0, 3), S_INVALID_QSIZE);
	assert_int_equal(delete_q(f, 0x04, 4), S_OK);
	ioq(f, 1, 128);
	assert_int_equal(io_rw(f, false, 3, 1, DATA_GPA, 0), S_OK);
	expect_sector(f->mem + DATA_GPA, 24);
	fx_free(f);

	/* nocache: O_DIRECT, even for buffers at odd (dword) offsets. */
	f = fx_new("nocache");
	enable(f);
	ioq(f, 1, 16);
	fill(f->mem + DATA_GPA + 0x204, 4096, 7);
	assert_int_equal(
	    io_rw(f, true, 33, 8, DATA_GPA + 0x204, DATA_GPA + 0x3000), S_OK);
	assert_int_equal(
	    io_rw(f, false, 33, 8, DATA_GPA + 0x10204, DATA_GPA + 0x13000),
	    S_OK);
	assert_memory_equal(f->mem + DATA_GPA + 0x10204,
			    f->mem + DATA_GPA + 0x204, 4096 - 0x204);
	assert_memory_equal(f->mem + DATA_GPA + 0x13000,
			    f->mem + DATA_GPA + 0x3000, 0x204);
	fx_free(f);

	f = fx_new("direct,sectorsize=4096");
	enable(f);
	assert_int_equal(identify(f, 1, 0, BUF_GPA, 0), S_OK);
	assert_int_equal(f->mem[BUF_GPA + 525], 0x06); /* no cache */
	assert_int_equal(identify(f, 0, 1, BUF_GPA, 0), S_OK);
	assert_int_equal(*(uint32_t *)(f->mem + BUF_GPA + 128), 12 << 16);
	fx_free(f);

	expect_error("bogus=1", false, 1 << 20, "unknown option 'bogus'");
	expect_error("maxq=0", false, 1 << 20, "bad maxq '0'");
	expect_error("maxq=2048", false, 1 << 20, "bad maxq '2048'");
	expect_error("maxq=x", false, 1 << 20, "bad maxq 'x'");
	expect_error("maxq=-1", false, 1 << 20, "bad maxq '-1'");
	expect_error("qsz=1", false, 1 << 20, "bad qsz '1'");
	expect_error("qsz=65537", false, 1 << 20, "bad qsz '65537'");
	expect_error("ioslots=0", false, 1 << 20, "bad ioslots '0'");
	expect_error("ioslots=257", false, 1 << 20, "bad ioslots 257");
	expect_error("sectsz=1024", false, 1 << 20, "bad sectsz '1024'");
	expect_error("sectsz=4k", false, 1 << 20, "bad sectsz '4k'");
	expect_error("sectsz=4096", false, (1 << 20) + 512, "sectsz");
	expect_error(NULL, false, 100, "not a whole number");
	expect_error("sectorsize=4096,sectsz=512", false, 1 << 20,
		     "sectsz 512 does not suit");
	expect_error("dsm=maybe", false, 1 << 20, "bad dsm 'maybe'");
	expect_error("ser=123456789012345678901", false, 1 << 20, "bad ser");
	expect_error("ser=a\tb", false, 1 << 20, "bad ser");
	expect_error("eui64=xyz", false, 1 << 20, "bad eui64 'xyz'");
	expect_error("ro=maybe", false, 1 << 20, "bad value 'maybe' for ro");
	expect_error("path=/nonexistent/disk.img", false, 1 << 20,
		     "cannot open /nonexistent/disk.img");
	expect_error("ram=0", true, 0, "bad ram '0'");
	expect_error("ram=1x", true, 0, "bad ram '1x'");
	expect_error("ram=4,ro", true, 0, "'ro' needs a disk image");
	expect_error("ram=4,path=/tmp/x", true, 0, "'path' needs a disk");
	expect_error("ram=4,maxq=0", true, 0, "bad maxq");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_identity),
	    cmocka_unit_test(test_enable_reset_shutdown),
	    cmocka_unit_test(test_identify),
	    cmocka_unit_test(test_regress_identify_prp2),
	    cmocka_unit_test(test_features),
	    cmocka_unit_test(test_queue_management),
	    cmocka_unit_test(test_unsupported_admin),
	    cmocka_unit_test(test_log_pages),
	    cmocka_unit_test(test_regress_log_page_bounds),
	    cmocka_unit_test(test_aer_and_doorbell_errors),
	    cmocka_unit_test(test_read_write),
	    cmocka_unit_test(test_regress_prp_list_edges),
	    cmocka_unit_test(test_regress_prp_hostile),
	    cmocka_unit_test(test_io_fields),
	    cmocka_unit_test(test_zeroes_and_dsm),
	    cmocka_unit_test(test_regress_dsm_ranges),
	    cmocka_unit_test(test_dsm_options),
	    cmocka_unit_test(test_read_only),
	    cmocka_unit_test(test_interrupts),
	    cmocka_unit_test(test_cq_full),
	    cmocka_unit_test(test_ioslots),
	    cmocka_unit_test(test_delete_and_reset_in_flight),
	    cmocka_unit_test(test_io_cid_conflict),
	    cmocka_unit_test(test_backend_errors),
	    cmocka_unit_test(test_reenable_during_reset),
	    cmocka_unit_test(test_regress_doorbells),
	    cmocka_unit_test(test_regress_queue_ids),
	    cmocka_unit_test(test_linux_probe),
	    cmocka_unit_test(test_ram),
	    cmocka_unit_test(test_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
