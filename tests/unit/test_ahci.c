/*
 * The AHCI controller against the mock backend: a driver built here sets
 * the HBA up through ABAR (BAR 5), lays command lists, command tables and
 * PRDTs out in mock guest memory, and checks what the device writes back
 * (received FISes, PxTFD, PxIS, PxCI, PxSACT, PRDBC, data, interrupts) and
 * what lands in the image files.
 *
 * The hostile-guest tests, one per class of bug AHCI emulations (bhyve's
 * among them) have had:
 *   command list outside RAM            test_bad_command_list
 *   command table / PRDT outside RAM    test_bad_command_table
 *   not a Register H2D FIS, short CFL   test_bad_fis
 *   PRD outside RAM, odd byte count     test_bad_prds
 *   PRDT shorter or longer than the data, PRDTL 0   test_prdt_sizes
 *   more PRDs than iovecs, tiny PRDs    test_prdt_fragmented
 *   LBA + count past the end (28, 48-bit, NCQ)      test_lba_range
 *   TRIM ranges past the end, count 0   test_dsm_hostile
 *   received-FIS area outside RAM       test_bad_fis_area
 *   ATAPI allocation and transfer lengths           test_atapi_lengths
 *   a slot issued again while it runs   test_slot_reissue
 *   ST cleared or HBA reset with I/O in flight      test_stop_in_flight
 *   sizes and alignments of register accesses, read-only registers,
 *   ports that do not exist             test_register_access,
 *                                       test_pci_identity
 */
#include <errno.h>
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

#include "byteorder.h"
#include "config.h"
#include "machine.h"
#include "mem.h"
#include "pci_emul.h"

#define MEMSIZE (64 << 20)
#define SLOT 4
#define DISK_SECTORS 2048 /* a 1 MiB disk image */
#define CD_BLOCKS 1000
#define CT_BASE 0x200000ULL /* command tables: 4 KiB a slot */
#define BIG_CT 0x300000ULL  /* a command table with a long PRDT */
#define DATA 0x1000000ULL   /* data buffers, up to 48 MiB */
#define DATA2 0x2800000ULL  /* a second buffer */
#define OUTSIDE (MEMSIZE + 0x1000ULL)

/* HBA and port registers, bits (AHCI 1.3.1 §3). */
#define CAP 0x00
#define GHC 0x04
#define HIS 0x08
#define PI 0x0c
#define VS 0x10
#define CAP2 0x24
#define P_CLB 0x00
#define P_CLBU 0x04
#define P_FB 0x08
#define P_FBU 0x0c
#define P_IS 0x10
#define P_IE 0x14
#define P_CMD 0x18
#define P_TFD 0x20
#define P_SIG 0x24
#define P_SSTS 0x28
#define P_SCTL 0x2c
#define P_SERR 0x30
#define P_SACT 0x34
#define P_CI 0x38
#define IS_DHRS (1u << 0)
#define IS_PSS (1u << 1)
#define IS_SDBS (1u << 3)
#define IS_DPS (1u << 5)
#define IS_IFS (1u << 27)
#define IS_HBFS (1u << 29)
#define IS_TFES (1u << 30)
#define IS_ERRS (IS_IFS | IS_HBFS | IS_TFES)
#define CMD_ST 0x0001
#define CMD_SUD 0x0002
#define CMD_POD 0x0004
#define CMD_CLO 0x0008
#define CMD_FRE 0x0010
#define CMD_FR 0x4000
#define CMD_CR 0x8000
#define HDR_A (1u << 5)
#define HDR_W (1u << 6)

/* ATA (ACS-3). */
#define READ_DMA 0xc8
#define WRITE_DMA 0xca
#define READ_DMA_EXT 0x25
#define WRITE_DMA_EXT 0x35
#define READ_SECTORS 0x20
#define WRITE_SECTORS_EXT 0x34
#define READ_MULTIPLE 0xc4
#define READ_FPDMA 0x60
#define WRITE_FPDMA 0x61
#define DSM 0x06
#define FLUSH_EXT 0xea
#define IDENTIFY 0xec
#define IDENTIFY_PACKET 0xa1
#define PACKET 0xa0
#define SET_FEATURES 0xef
#define SET_MULTIPLE 0xc6
#define READ_LOG_EXT 0x2f
#define READ_LOG_DMA_EXT 0x47
#define ABRT 0x04
#define IDNF 0x10

static char err[512];

struct fx {
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
	char image[64], image2[64];
	uint8_t *mem;
	uint64_t abar;
	int irq;
};

struct prd {
	uint64_t addr;
	uint32_t len;
};

/* ---- images ---- */

/* Blocks of blksz bytes: each filled with its number's low byte, the
 * number itself in its first 4 bytes. */
static void
make_image(char *path, const char *tmpl, int blocks, int blksz)
{
	uint8_t *b = malloc(blksz);
	FILE *fp;
	int fd;

	strcpy(path, tmpl);
	fd = mkstemp(path);
	assert_true(fd >= 0 && b);
	fp = fdopen(fd, "w");
	for (int s = 0; s < blocks; s++) {
		memset(b, (uint8_t)s, blksz);
		memcpy(b, &s, sizeof(s));
		assert_int_equal(fwrite(b, 1, blksz, fp), blksz);
	}
	fclose(fp);
	free(b);
}

static void
read_file(const char *path, off_t off, void *buf, size_t len)
{
	FILE *fp = fopen(path, "r");

	assert_non_null(fp);
	assert_int_equal(fseeko(fp, off, SEEK_SET), 0);
	assert_int_equal(fread(buf, 1, len, fp), len);
	fclose(fp);
}

/* ---- the machine ---- */

static void
set(struct config *cfg, const char *k, const char *v)
{
	assert_int_equal(config_set(cfg, k, v, err, sizeof(err)), 0);
}

static uint16_t
be16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static uint32_t
be32(const uint8_t *b)
{
	return (uint32_t)be16(b) << 16 | be16(b + 2);
}

/* "IMG" and "IMG2" in spec become the two images' paths. */
static void
expand(struct fx *f, const char *spec, char *out, size_t len)
{
	size_t o = 0;

	for (const char *s = spec; *s && o + 80 < len;) {
		if (!strncmp(s, "IMG2", 4)) {
			o += (size_t)sprintf(out + o, "%s", f->image2);
			s += 4;
		} else if (!strncmp(s, "IMG", 3)) {
			o += (size_t)sprintf(out + o, "%s", f->image);
			s += 3;
		} else {
			out[o++] = *s++;
		}
	}
	out[o] = '\0';
}

/* The VM around a configuration; init's return code. */
static int
fx_start(struct fx *f)
{
	f->ctx = vm_create_mock(MEMSIZE);
	assert_non_null(f->ctx);
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	f->mem = vm_map_gpa(f->ctx, 0, MEMSIZE);
	return init_pci(f->ctx);
}

/* A VM with "-s 4,SPEC"; init's return code. */
static int
fx_init(struct fx *f, const char *spec)
{
	char opt[4096], full[4200];

	expand(f, spec, opt, sizeof(opt));
	snprintf(full, sizeof(full), "%d,%s", SLOT, opt);
	f->cfg = config_create();
	set(f->cfg, "pci.0.0.0.device", "hostbridge");
	assert_int_equal(pci_parse_slot(f->cfg, full, err, sizeof(err)), 0);
	return fx_start(f);
}

/* A VM with the device configured by key=value lines (-o style). */
static int
fx_init_kv(struct fx *f, const char *kv)
{
	char buf[4096], line[4200];
	char *save = NULL;

	expand(f, kv, buf, sizeof(buf));
	f->cfg = config_create();
	set(f->cfg, "pci.0.0.0.device", "hostbridge");
	for (char *t = strtok_r(buf, " ", &save); t;
	     t = strtok_r(NULL, " ", &save)) {
		snprintf(line, sizeof(line), "pci.0.%d.0.%s", SLOT, t);
		assert_int_equal(config_set_kv(f->cfg, line, err, sizeof(err)),
				 0);
	}
	return fx_start(f);
}

static struct fx *
fx_alloc(void)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	make_image(f->image, "/tmp/test_ahci.XXXXXX", DISK_SECTORS, 512);
	make_image(f->image2, "/tmp/test_ahci_cd.XXXXXX", CD_BLOCKS, 2048);
	return f;
}

static void
fx_found(struct fx *f)
{
	f->abar = pci_cfg_read(f->ctx, 0, SLOT, 0, 0x24, 4) & ~0xfULL;
	f->irq = (int)pci_cfg_read(f->ctx, 0, SLOT, 0, 0x3c, 1);
}

static struct fx *
fx_new(const char *spec)
{
	struct fx *f = fx_alloc();

	assert_int_equal(fx_init(f, spec), 0);
	fx_found(f);
	return f;
}

/* The VM goes, the images stay. */
static void
fx_teardown(struct fx *f)
{
	if (f->m)
		machine_free(f->m);
	if (f->ctx)
		vm_close(f->ctx);
	config_free(f->cfg);
	f->m = NULL;
	f->ctx = NULL;
	f->cfg = NULL;
}

static void
fx_free(struct fx *f)
{
	fx_teardown(f);
	unlink(f->image);
	unlink(f->image2);
	free(f);
}

/*
 * Run init (fx_init, or fx_init_kv when kv) with stderr in a file: its
 * first line in buf, init's rc.
 */
static int
capture(struct fx *f, const char *spec, bool kv, char *buf, size_t len)
{
	char path[] = "/tmp/test_ahci_err.XXXXXX";
	int fd = mkstemp(path), saved = dup(2), rc;
	FILE *fp;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	rc = kv ? fx_init_kv(f, spec) : fx_init(f, spec);
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
	fx_teardown(f);
	return rc;
}

static int
init_capture(const char *spec, char *buf, size_t len)
{
	struct fx *f = fx_alloc();
	int rc = capture(f, spec, false, buf, len);

	fx_free(f);
	return rc;
}

/* ---- registers ---- */

static uint64_t
mmio(struct fx *f, uint64_t off, int size, int dir, uint64_t v)
{
	assert_int_equal(
	    emulate_mem(f->ctx, NULL, f->abar + off, dir, size, &v), 0);
	return v;
}

static uint32_t
rd(struct fx *f, uint64_t off)
{
	return (uint32_t)mmio(f, off, 4, MEM_F_READ, 0);
}

static void
wr(struct fx *f, uint64_t off, uint32_t v)
{
	mmio(f, off, 4, MEM_F_WRITE, v);
}

static uint64_t
preg(int port, uint64_t reg)
{
	return 0x100 + 0x80 * (uint64_t)port + reg;
}

static uint32_t
prd_reg(struct fx *f, int port, uint64_t reg)
{
	return rd(f, preg(port, reg));
}

static void
pwr(struct fx *f, int port, uint64_t reg, uint32_t v)
{
	wr(f, preg(port, reg), v);
}

static uint64_t
clb(int port)
{
	return 0x10000 + 0x2000 * (uint64_t)port;
}

static uint64_t
fb(int port)
{
	return clb(port) + 0x1000;
}

static uint8_t *
rfis(struct fx *f, int port, int off)
{
	return f->mem + fb(port) + off;
}

static uint64_t
ct(int port, int slot)
{
	return CT_BASE + 0x1000 * (uint64_t)(port * 32 + slot);
}

/* What a driver does to start a port: lists, FIS receive, interrupts. */
static void
port_start(struct fx *f, int port)
{
	memset(f->mem + clb(port), 0, 0x2000);
	pwr(f, port, P_CLB, (uint32_t)clb(port));
	pwr(f, port, P_CLBU, 0);
	pwr(f, port, P_FB, (uint32_t)fb(port));
	pwr(f, port, P_FBU, 0);
	pwr(f, port, P_SERR, ~0u);
	pwr(f, port, P_IS, ~0u);
	pwr(f, port, P_IE, ~0u);
	wr(f, GHC, rd(f, GHC) | 2);
	pwr(f, port, P_CMD, CMD_SUD | CMD_POD | CMD_FRE);
	pwr(f, port, P_CMD, CMD_SUD | CMD_POD | CMD_FRE | CMD_ST);
	assert_true(prd_reg(f, port, P_CMD) & CMD_CR);
}

static bool
wait_reg(struct fx *f, int port, uint64_t reg, uint32_t mask, uint32_t want)
{
	struct timespec ts = {0, 1000000};

	for (int i = 0; i < 5000; i++) {
		if ((prd_reg(f, port, reg) & mask) == want)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

/* Clear ST, wait for CR to drop, clear errors, start again. */
static void
port_restart(struct fx *f, int port)
{
	pwr(f, port, P_CMD, CMD_SUD | CMD_POD | CMD_FRE);
	assert_int_equal(prd_reg(f, port, P_CI), 0);
	assert_int_equal(prd_reg(f, port, P_SACT), 0);
	assert_true(wait_reg(f, port, P_CMD, CMD_CR, 0));
	pwr(f, port, P_IS, ~0u);
	wr(f, HIS, ~0u);
	pwr(f, port, P_CMD, CMD_SUD | CMD_POD | CMD_FRE | CMD_ST);
}

/* ---- commands ---- */

static void
fis_h2d(uint8_t *c, uint8_t cmd, uint64_t lba, uint32_t count,
	uint16_t features)
{
	memset(c, 0, 20);
	c[0] = 0x27;
	c[1] = 0x80;
	c[2] = cmd;
	c[3] = (uint8_t)features;
	c[4] = (uint8_t)lba;
	c[5] = (uint8_t)(lba >> 8);
	c[6] = (uint8_t)(lba >> 16);
	c[7] = 0x40;
	c[8] = (uint8_t)(lba >> 24);
	c[9] = (uint8_t)(lba >> 32);
	c[10] = (uint8_t)(lba >> 40);
	c[11] = (uint8_t)(features >> 8);
	c[12] = (uint8_t)count;
	c[13] = (uint8_t)(count >> 8);
}

/* A command header and table for slot at table address t. */
static void
put_cmd_at(struct fx *f, int port, int slot, uint64_t t, const uint8_t *cfis,
	   const uint8_t *acmd, const struct prd *prd, int nprd,
	   uint32_t hflags)
{
	uint8_t *h = f->mem + clb(port) + 32 * slot, *tb = f->mem + t;

	memset(h, 0, 32);
	le32_put(h, 5 | hflags | (uint32_t)nprd << 16);
	le64_put(h + 8, t);
	memset(tb, 0, 0x80);
	memcpy(tb, cfis, 20);
	if (acmd)
		memcpy(tb + 0x40, acmd, 16);
	for (int i = 0; i < nprd; i++) {
		le64_put(tb + 0x80 + 16 * i, prd[i].addr);
		le32_put(tb + 0x80 + 16 * i + 8, 0);
		le32_put(tb + 0x80 + 16 * i + 12, prd[i].len - 1);
	}
}

static void
put_cmd(struct fx *f, int port, int slot, const uint8_t *cfis,
	const uint8_t *acmd, const struct prd *prd, int nprd, uint32_t hflags)
{
	put_cmd_at(f, port, slot, ct(port, slot), cfis, acmd, prd, nprd,
		   hflags);
}

/* Issue slot (ncq: PxSACT first) and wait until it is done or failed. */
static uint32_t
issue(struct fx *f, int port, int slot, bool ncq)
{
	uint32_t bit = 1u << slot;
	struct timespec ts = {0, 1000000};

	if (ncq)
		pwr(f, port, P_SACT, bit);
	pwr(f, port, P_CI, bit);
	for (int i = 0; i < 5000; i++) {
		uint32_t is = prd_reg(f, port, P_IS);

		if (!((prd_reg(f, port, P_CI) | prd_reg(f, port, P_SACT)) &
		      bit) ||
		    (is & IS_ERRS))
			return is;
		nanosleep(&ts, NULL);
	}
	fail_msg("slot %d on port %d never finished", slot, port);
	return 0;
}

static uint32_t
prdbc(struct fx *f, int port, int slot)
{
	return le32_get(f->mem + clb(port) + 32 * slot + 4);
}

/* One ATA command with one buffer at DATA; PxIS after it. */
static uint32_t
ata(struct fx *f, int port, uint8_t cmd, uint64_t lba, uint32_t count,
    uint16_t features, uint32_t len)
{
	uint8_t c[20];
	struct prd p = {DATA, len};

	fis_h2d(c, cmd, lba, count, features);
	put_cmd(f, port, 0, c, NULL, &p, len ? 1 : 0, 0);
	pwr(f, port, P_IS, ~0u);
	return issue(f, port, 0, false);
}

static uint8_t
tfd_status(struct fx *f, int port)
{
	return (uint8_t)prd_reg(f, port, P_TFD);
}

static uint8_t
tfd_error(struct fx *f, int port)
{
	return (uint8_t)(prd_reg(f, port, P_TFD) >> 8);
}

/* The command failed with ERR and this error; the port is restarted. */
static void
expect_abort(struct fx *f, int port, uint32_t is, uint8_t error)
{
	assert_true(is & IS_TFES);
	assert_int_equal(tfd_status(f, port) & 0x01, 1);
	assert_int_equal(tfd_error(f, port), error);
	assert_int_equal(rfis(f, port, 0x40)[0], 0x34);
	assert_int_equal(rfis(f, port, 0x40)[3], error);
	/* The failed slot stays issued until software stops the port. */
	assert_int_equal(prd_reg(f, port, P_CI), 1);
	port_restart(f, port);
}

static void
expect_fatal(struct fx *f, int port, uint32_t is, uint32_t bit)
{
	assert_true(is & bit);
	assert_int_not_equal(prd_reg(f, port, P_CI), 0);
	port_restart(f, port);
}

static void
expect_ok(struct fx *f, int port, uint32_t is)
{
	if (is & IS_ERRS)
		fail_msg("PxIS %#x, PxTFD %#x", is, prd_reg(f, port, P_TFD));
	assert_int_equal(tfd_status(f, port) & 0x89, 0);
	assert_int_equal(prd_reg(f, port, P_CI), 0);
}

static int
sector_tag(struct fx *f, uint64_t gpa)
{
	int s;

	memcpy(&s, f->mem + gpa, sizeof(s));
	return s;
}

static uint16_t
word(struct fx *f, int i)
{
	return le16_get(f->mem + DATA + 2 * i);
}

/* An ATA string from IDENTIFY data words. */
static void
ident_str(struct fx *f, int w, int len, char *out)
{
	for (int i = 0; i < len; i++)
		out[i] = (char)(i & 1 ? word(f, w + i / 2)
				      : word(f, w + i / 2) >> 8);
	out[len] = '\0';
	for (int i = len - 1; i >= 0 && out[i] == ' '; i--)
		out[i] = '\0';
}

static void
identify(struct fx *f, int port)
{
	memset(f->mem + DATA, 0, 512);
	expect_ok(f, port, ata(f, port, IDENTIFY, 0, 0, 0, 512));
}

/* ---- identity and registers ---- */

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
test_pci_identity(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");
	uint32_t cap;

	(void)state;
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0, 2), 0x8086);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 2, 2), 0x2821);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 8, 4) >> 8, 0x010601);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x24, 4) & 0xf, 0);
	assert_true(f->abar != 0);
	pci_cfg_write(f->ctx, 0, SLOT, 0, 0x24, 4, ~0u);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x24, 4), ~8191u);
	pci_cfg_write(f->ctx, 0, SLOT, 0, 0x24, 4, (uint32_t)f->abar);
	assert_int_not_equal(cap_find(f, 0x05), 0); /* MSI */
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x3d, 1), 1);
	/* HBA: 64-bit, NCQ, SSS, CLO, Gen3, AHCI only, 32 slots, 6 ports. */
	cap = rd(f, CAP);
	assert_int_equal(cap & 0x1f, 5);
	assert_int_equal((cap >> 8) & 0x1f, 31);
	assert_int_equal(cap & 0xc9f40000u, 0xc9340000u);
	assert_int_equal(rd(f, GHC), 0x80000000u);
	assert_int_equal(rd(f, VS), 0x00010301);
	assert_int_equal(rd(f, PI), 1);
	assert_int_equal(rd(f, CAP2), 0);
	/* The disk after power-on: signature, link up, ready. */
	assert_int_equal(prd_reg(f, 0, P_SIG), 0x101);
	assert_int_equal(prd_reg(f, 0, P_SSTS), 0x133);
	assert_int_equal(prd_reg(f, 0, P_TFD), 0x150);
	assert_int_equal(prd_reg(f, 0, P_CMD), CMD_SUD | CMD_POD);
	/* Ports that do not exist read as zero and ignore writes. */
	assert_int_equal(prd_reg(f, 1, P_SIG), 0);
	pwr(f, 1, P_CLB, 0x1000);
	assert_int_equal(prd_reg(f, 1, P_CLB), 0);
	assert_int_equal(rd(f, 0x1ffc), 0);
	/* Read-only registers stay. */
	wr(f, CAP, 0);
	wr(f, PI, 0xff);
	wr(f, VS, 0);
	pwr(f, 0, P_SIG, 0);
	pwr(f, 0, P_SSTS, 0);
	pwr(f, 0, P_TFD, 0);
	assert_int_equal(rd(f, CAP), cap);
	assert_int_equal(rd(f, PI), 1);
	assert_int_equal(rd(f, VS), 0x00010301);
	assert_int_equal(prd_reg(f, 0, P_SIG), 0x101);
	assert_int_equal(prd_reg(f, 0, P_SSTS), 0x133);
	assert_int_equal(prd_reg(f, 0, P_TFD), 0x150);
	/* Reserved low bits of CLB and FB. */
	pwr(f, 0, P_CLB, 0x123fff);
	pwr(f, 0, P_FB, 0x1234ff);
	assert_int_equal(prd_reg(f, 0, P_CLB), 0x123c00);
	assert_int_equal(prd_reg(f, 0, P_FB), 0x123400);
	fx_free(f);
}

static void
test_register_access(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");

	(void)state;
	/* Byte and word writes merge with the rest of the register. */
	mmio(f, preg(0, P_IE), 1, MEM_F_WRITE, 0x01);
	mmio(f, preg(0, P_IE) + 3, 1, MEM_F_WRITE, 0x40);
	assert_int_equal(prd_reg(f, 0, P_IE), 0x40000001);
	mmio(f, preg(0, P_IE) + 2, 2, MEM_F_WRITE, 0x00c0);
	assert_int_equal(prd_reg(f, 0, P_IE), 0x00c00001);
	/* Byte reads. */
	assert_int_equal(mmio(f, preg(0, P_SIG), 1, MEM_F_READ, 0), 0x01);
	assert_int_equal(mmio(f, preg(0, P_SIG) + 1, 1, MEM_F_READ, 0), 0x01);
	assert_int_equal(mmio(f, VS + 2, 2, MEM_F_READ, 0), 0x0001);
	/* 8-byte accesses: CLB and CLBU together. */
	mmio(f, preg(0, P_CLB), 8, MEM_F_WRITE, 0x0000000100002000ULL);
	assert_int_equal(prd_reg(f, 0, P_CLB), 0x2000);
	assert_int_equal(prd_reg(f, 0, P_CLBU), 1);
	assert_int_equal(mmio(f, preg(0, P_CLB), 8, MEM_F_READ, 0),
			 0x0000000100002000ULL);
	/* Misaligned accesses are ignored and read as ones. */
	mmio(f, preg(0, P_CLB) + 2, 4, MEM_F_WRITE, 0xffffffff);
	assert_int_equal(prd_reg(f, 0, P_CLB), 0x2000);
	assert_int_equal(mmio(f, preg(0, P_CLB) + 1, 2, MEM_F_READ, 0), 0xffff);
	/* PxCI and PxSACT take nothing while ST is clear. */
	pwr(f, 0, P_CI, 1);
	pwr(f, 0, P_SACT, 1);
	assert_int_equal(prd_reg(f, 0, P_CI), 0);
	assert_int_equal(prd_reg(f, 0, P_SACT), 0);
	/* Byte writes to W1C registers clear only the bytes written. */
	port_start(f, 0);
	identify(f, 0);
	assert_int_equal(prd_reg(f, 0, P_IS) & 3, IS_DHRS | IS_PSS);
	mmio(f, preg(0, P_IS) + 1, 1, MEM_F_WRITE, 0);
	assert_int_equal(prd_reg(f, 0, P_IS) & 3, IS_DHRS | IS_PSS);
	mmio(f, preg(0, P_IS), 1, MEM_F_WRITE, IS_DHRS);
	assert_int_equal(prd_reg(f, 0, P_IS) & 3, IS_PSS);
	/* GHC.HR resets GHC and the ports (not CLB, FB). */
	wr(f, GHC, 1);
	assert_int_equal(rd(f, GHC), 0x80000000u);
	assert_int_equal(prd_reg(f, 0, P_CMD), CMD_SUD | CMD_POD);
	assert_int_equal(prd_reg(f, 0, P_IE), 0);
	assert_int_equal(prd_reg(f, 0, P_CLB), clb(0));
	/* CLO clears BSY and DRQ in PxTFD while stopped. */
	pwr(f, 0, P_SCTL, 1);
	assert_int_equal(prd_reg(f, 0, P_TFD) & 0x80, 0x80);
	pwr(f, 0, P_CMD, CMD_CLO);
	assert_int_equal(prd_reg(f, 0, P_TFD) & 0x88, 0);
	assert_int_equal(prd_reg(f, 0, P_CMD) & CMD_CLO, 0);
	fx_free(f);
}

/* ---- ATA ---- */

static void
test_identify(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG,ser=SER-1,model=Test Disk,rev=R7,"
			      "nmrr=1");
	char s[41];
	uint8_t sum = 0;

	(void)state;
	port_start(f, 0);
	identify(f, 0);
	ident_str(f, 10, 20, s);
	assert_string_equal(s, "SER-1");
	ident_str(f, 27, 40, s);
	assert_string_equal(s, "Test Disk");
	ident_str(f, 23, 8, s);
	assert_string_equal(s, "R7");
	assert_int_equal(word(f, 0), 0x0040);
	assert_int_equal(word(f, 60) | word(f, 61) << 16, DISK_SECTORS);
	assert_int_equal(word(f, 100) | word(f, 101) << 16, DISK_SECTORS);
	assert_int_equal(word(f, 102) | word(f, 103), 0);
	assert_int_equal(word(f, 75), 31);	/* NCQ depth 32 */
	assert_true(word(f, 76) & 0x100);	/* NCQ */
	assert_true(word(f, 83) & 0x400);	/* 48-bit */
	assert_true(word(f, 84) & 0x20);	/* GPL */
	assert_int_equal(word(f, 169) & 1, 1);	/* TRIM */
	assert_int_equal(word(f, 105), 1);	/* one block of ranges */
	assert_int_equal(word(f, 106), 0x4000); /* 512/512 */
	assert_int_equal(word(f, 217), 1);	/* solid state */
	assert_int_equal(word(f, 255) & 0xff, 0xa5);
	for (int i = 0; i < 512; i++)
		sum += f->mem[DATA + i];
	assert_int_equal(sum, 0);
	/* PIO data-in: a PIO Setup FIS (E_Status), then a D2H FIS. */
	assert_int_equal(rfis(f, 0, 0x20)[0], 0x5f);
	assert_int_equal(rfis(f, 0, 0x20)[1] & 0x20, 0x20);
	assert_int_equal(rfis(f, 0, 0x20)[15], 0x50);
	assert_int_equal(rfis(f, 0, 0x40)[0], 0x34);
	assert_int_equal(rfis(f, 0, 0x40)[2], 0x50);
	assert_int_equal(prdbc(f, 0, 0), 512);
	assert_true(prd_reg(f, 0, P_IS) & (IS_DHRS | IS_PSS));
	fx_free(f);

	/* 4 KiB logical sectors in 16 KiB physical ones. */
	f = fx_new("ahci-hd,IMG,sectorsize=4096/16384,nodelete");
	port_start(f, 0);
	identify(f, 0);
	assert_int_equal(word(f, 100), DISK_SECTORS / 8);
	assert_int_equal(word(f, 106), 0x4000 | 0x2000 | 0x1000 | 2);
	assert_int_equal(word(f, 117) | word(f, 118) << 16, 2048);
	assert_int_equal(word(f, 209), 0x4000);
	assert_int_equal(word(f, 169), 0); /* nodelete: no TRIM */
	assert_int_equal(word(f, 217), 0);
	ident_str(f, 27, 40, s);
	assert_string_equal(s, "BHYVE SATA DISK");
	ident_str(f, 23, 8, s);
	assert_string_equal(s, "001");
	/* 8 logical sectors = 32 KiB. */
	memset(f->mem + DATA, 0, 32768);
	expect_ok(f, 0, ata(f, 0, READ_DMA_EXT, 1, 2, 0, 8192));
	assert_int_equal(sector_tag(f, DATA), 8);
	assert_int_equal(sector_tag(f, DATA + 4096), 16);
	fx_free(f);
}

static void
test_read_write(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");
	uint8_t buf[1024];

	(void)state;
	port_start(f, 0);
	/* READ DMA EXT of sectors 5-12. */
	expect_ok(f, 0, ata(f, 0, READ_DMA_EXT, 5, 8, 0, 4096));
	for (int i = 0; i < 8; i++)
		assert_int_equal(sector_tag(f, DATA + 512 * i), 5 + i);
	assert_int_equal(prdbc(f, 0, 0), 4096);
	assert_int_equal(rfis(f, 0, 0x40)[2], 0x50);
	assert_int_equal(rfis(f, 0, 0x40)[1] & 0x40, 0x40);
	/* WRITE DMA EXT of two sectors at 100. */
	memset(f->mem + DATA, 0xab, 1024);
	expect_ok(f, 0, ata(f, 0, WRITE_DMA_EXT, 100, 2, 0, 1024));
	read_file(f->image, 100 * 512, buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xab);
	/* 28-bit READ DMA and WRITE DMA. */
	expect_ok(f, 0, ata(f, 0, READ_DMA, 3, 1, 0, 512));
	assert_int_equal(sector_tag(f, DATA), 3);
	memset(f->mem + DATA, 0xcd, 512);
	expect_ok(f, 0, ata(f, 0, WRITE_DMA, 200, 1, 0, 512));
	read_file(f->image, 200 * 512, buf, 512);
	assert_int_equal(buf[0], 0xcd);
	/* Count 0: 256 sectors (28-bit). */
	expect_ok(f, 0, ata(f, 0, READ_DMA, 0, 0, 0, 256 * 512));
	assert_int_equal(sector_tag(f, DATA + 255 * 512), 255);
	/* PIO READ SECTORS: a PIO Setup FIS too; WRITE SECTORS EXT. */
	memset(rfis(f, 0, 0x20), 0, 20);
	expect_ok(f, 0, ata(f, 0, READ_SECTORS, DISK_SECTORS - 1, 1, 0, 512));
	assert_int_equal(sector_tag(f, DATA), DISK_SECTORS - 1);
	assert_int_equal(rfis(f, 0, 0x20)[0], 0x5f);
	memset(f->mem + DATA, 0x5a, 512);
	expect_ok(f, 0, ata(f, 0, WRITE_SECTORS_EXT, 300, 1, 0, 512));
	assert_int_equal(rfis(f, 0, 0x20)[1] & 0x20, 0); /* host to device */
	read_file(f->image, 300 * 512, buf, 512);
	assert_int_equal(buf[511], 0x5a);
	/* READ MULTIPLE needs SET MULTIPLE first. */
	expect_abort(f, 0, ata(f, 0, READ_MULTIPLE, 0, 1, 0, 512), ABRT);
	expect_ok(f, 0, ata(f, 0, SET_MULTIPLE, 0, 8, 0, 0));
	expect_ok(f, 0, ata(f, 0, READ_MULTIPLE, 9, 1, 0, 512));
	assert_int_equal(sector_tag(f, DATA), 9);
	expect_abort(f, 0, ata(f, 0, SET_MULTIPLE, 0, 3, 0, 0), ABRT);
	expect_abort(f, 0, ata(f, 0, SET_MULTIPLE, 0, 32, 0, 0), ABRT);
	fx_free(f);
}

/* nocache (O_DIRECT) and direct images: odd buffers, many pieces. */
static void
test_nocache(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG,nocache,direct");
	struct prd p[300];
	uint8_t c[20];

	(void)state;
	port_start(f, 0);
	/* 8 sectors from two buffers at odd (word) addresses. */
	for (int i = 0; i < 4096; i++)
		f->mem[DATA + 0x206 + i] = (uint8_t)(i * 7);
	p[0] = (struct prd){DATA + 0x206, 1000};
	p[1] = (struct prd){DATA + 0x206 + 1000, 3096};
	fis_h2d(c, WRITE_DMA_EXT, 33, 8, 0);
	put_cmd(f, 0, 0, c, NULL, p, 2, HDR_W);
	expect_ok(f, 0, issue(f, 0, 0, false));
	p[0] = (struct prd){DATA2 + 0x12, 4096};
	fis_h2d(c, READ_DMA_EXT, 33, 8, 0);
	put_cmd(f, 0, 0, c, NULL, p, 1, 0);
	expect_ok(f, 0, issue(f, 0, 0, false));
	assert_memory_equal(f->mem + DATA2 + 0x12, f->mem + DATA + 0x206, 4096);
	/* 300 sectors in 300 page-aligned buffers: three requests. */
	for (int i = 0; i < 300; i++)
		p[i] = (struct prd){DATA + 0x1000 * (uint64_t)i, 512};
	fis_h2d(c, READ_DMA_EXT, 600, 300, 0);
	put_cmd_at(f, 0, 0, BIG_CT, c, NULL, p, 300, 0);
	expect_ok(f, 0, issue(f, 0, 0, false));
	for (int i = 0; i < 300; i++)
		assert_int_equal(sector_tag(f, DATA + 0x1000 * (uint64_t)i),
				 600 + i);
	fx_free(f);
}

/* An NCQ command in slot (the tag is the slot). */
static void
put_ncq(struct fx *f, int port, int slot, bool write, uint64_t lba,
	uint16_t count, uint64_t buf)
{
	uint8_t c[20];
	struct prd p = {buf, count * 512u};

	fis_h2d(c, write ? WRITE_FPDMA : READ_FPDMA, lba, (uint32_t)slot << 3,
		count);
	put_cmd(f, port, slot, c, NULL, &p, 1, write ? HDR_W : 0);
}

static void
test_ncq(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");
	uint32_t all = 0;
	uint8_t buf[512];

	(void)state;
	port_start(f, 0);
	for (int s = 0; s < 32; s++) {
		put_ncq(f, 0, s, false, 10 * (uint64_t)s, 2, DATA + 0x1000 * s);
		all |= 1u << s;
	}
	pwr(f, 0, P_SACT, all);
	pwr(f, 0, P_CI, all);
	assert_true(wait_reg(f, 0, P_SACT, ~0u, 0));
	assert_int_equal(prd_reg(f, 0, P_CI), 0);
	assert_int_equal(prd_reg(f, 0, P_IS) & IS_ERRS, 0);
	assert_true(prd_reg(f, 0, P_IS) & IS_SDBS);
	for (int s = 0; s < 32; s++) {
		assert_int_equal(sector_tag(f, DATA + 0x1000 * s), 10 * s);
		assert_int_equal(sector_tag(f, DATA + 0x1000 * s + 512),
				 10 * s + 1);
	}
	/* The last completion's Set Device Bits FIS. */
	assert_int_equal(rfis(f, 0, 0x58)[0], 0xa1);
	assert_int_equal(rfis(f, 0, 0x58)[1] & 0x40, 0x40);
	assert_int_not_equal(le32_get(rfis(f, 0, 0x58) + 4), 0);
	/* A queued write, read back. */
	memset(f->mem + DATA, 0x77, 512);
	put_ncq(f, 0, 3, true, 400, 1, DATA);
	expect_ok(f, 0, issue(f, 0, 3, true));
	read_file(f->image, 400 * 512, buf, 512);
	assert_int_equal(buf[100], 0x77);
	/* Count in FEATURES: 0 means 65536, past the end. */
	put_ncq(f, 0, 5, false, 0, 0, DATA);
	pwr(f, 0, P_IS, ~0u);
	assert_true(issue(f, 0, 5, true) & IS_TFES);
	assert_int_equal(prd_reg(f, 0, P_SACT), 1u << 5);
	assert_int_equal(prd_reg(f, 0, P_CI), 0);
	assert_int_equal(rfis(f, 0, 0x58)[2] & 0x01, 1);
	assert_int_equal(rfis(f, 0, 0x58)[3], IDNF | ABRT);
	port_restart(f, 0);
	/* The error log names the tag, then says there is none (NQ). */
	memset(f->mem + DATA, 0xee, 512);
	expect_ok(f, 0, ata(f, 0, READ_LOG_EXT, 0x10, 1, 0, 512));
	assert_int_equal(f->mem[DATA], 5);
	assert_int_equal(f->mem[DATA + 2], 0x41);
	assert_int_equal(f->mem[DATA + 3], IDNF | ABRT);
	{
		uint8_t sum = 0;

		for (int i = 0; i < 512; i++)
			sum += f->mem[DATA + i];
		assert_int_equal(sum, 0);
	}
	expect_ok(f, 0, ata(f, 0, READ_LOG_EXT, 0x10, 1, 0, 512));
	assert_int_equal(f->mem[DATA], 0x80);
	fx_free(f);
}

/* DSM TRIM ranges in the first 512 bytes at DATA. */
static void
put_range(struct fx *f, int i, uint64_t lba, uint16_t count)
{
	le64_put(f->mem + DATA + 8 * i, lba | (uint64_t)count << 48);
}

static bool
sectors_zero(struct fx *f, int first, int n)
{
	uint8_t buf[512];

	for (int s = first; s < first + n; s++) {
		read_file(f->image, (off_t)s * 512, buf, sizeof(buf));
		for (size_t i = 0; i < sizeof(buf); i++)
			if (buf[i])
				return false;
	}
	return true;
}

static void
test_flush_trim(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");

	(void)state;
	port_start(f, 0);
	expect_ok(f, 0, ata(f, 0, FLUSH_EXT, 0, 0, 0, 0));
	expect_ok(f, 0, ata(f, 0, 0xe7, 0, 0, 0, 0));
	/* Ranges 16-23 and 24-31 (joined), 40-47; unused entries skipped. */
	memset(f->mem + DATA, 0, 512);
	put_range(f, 0, 16, 8);
	put_range(f, 1, 24, 8);
	put_range(f, 2, 0, 0);
	put_range(f, 3, 40, 8);
	expect_ok(f, 0, ata(f, 0, DSM, 0, 1, 1, 512));
	assert_true(sectors_zero(f, 16, 16));
	assert_true(sectors_zero(f, 40, 8));
	assert_false(sectors_zero(f, 15, 1));
	assert_false(sectors_zero(f, 32, 1));
	assert_false(sectors_zero(f, 48, 1));
	/* Not TRIM, no blocks, too many blocks: aborted. */
	expect_abort(f, 0, ata(f, 0, DSM, 0, 1, 0, 512), ABRT);
	expect_abort(f, 0, ata(f, 0, DSM, 0, 0, 1, 512), ABRT);
	expect_abort(f, 0, ata(f, 0, DSM, 0, 2, 1, 1024), ABRT);
	fx_free(f);

	f = fx_new("ahci-hd,IMG,nodelete");
	port_start(f, 0);
	memset(f->mem + DATA, 0, 512);
	put_range(f, 0, 16, 8);
	expect_abort(f, 0, ata(f, 0, DSM, 0, 1, 1, 512), ABRT);
	assert_false(sectors_zero(f, 16, 1));
	fx_free(f);
}

static void
test_set_features(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");

	(void)state;
	port_start(f, 0);
	identify(f, 0);
	assert_int_equal(word(f, 88), 0x407f);
	assert_true(word(f, 85) & 0x20);
	expect_ok(f, 0, ata(f, 0, SET_FEATURES, 0, 0x45, 0x03, 0)); /* UDMA5 */
	identify(f, 0);
	assert_int_equal(word(f, 88), 0x207f);
	expect_ok(f, 0, ata(f, 0, SET_FEATURES, 0, 0x22, 0x03, 0)); /* MWDMA2 */
	identify(f, 0);
	assert_int_equal(word(f, 88), 0x007f);
	assert_int_equal(word(f, 63), 0x0407);
	expect_ok(f, 0, ata(f, 0, SET_FEATURES, 0, 0x0c, 0x03, 0)); /* PIO4 */
	expect_abort(f, 0, ata(f, 0, SET_FEATURES, 0, 0x50, 0x03, 0), ABRT);
	expect_ok(f, 0, ata(f, 0, SET_FEATURES, 0, 0, 0x82, 0));
	identify(f, 0);
	assert_int_equal(word(f, 85) & 0x20, 0);
	expect_ok(f, 0, ata(f, 0, SET_FEATURES, 0, 0, 0x02, 0));
	expect_ok(f, 0, ata(f, 0, SET_FEATURES, 0, 0, 0x55, 0));
	expect_ok(f, 0, ata(f, 0, SET_FEATURES, 0, 0, 0xaa, 0));
	identify(f, 0);
	assert_int_equal(word(f, 85) & 0x60, 0x60);
	/* Enable SATA feature: none offered. */
	expect_abort(f, 0, ata(f, 0, SET_FEATURES, 0, 0x02, 0x10, 0), ABRT);
	fx_free(f);
}

static void
test_read_log(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");

	(void)state;
	port_start(f, 0);
	expect_ok(f, 0, ata(f, 0, READ_LOG_EXT, 0x00, 1, 0, 512));
	assert_int_equal(word(f, 0), 1);
	assert_int_equal(word(f, 0x10), 1);
	assert_int_equal(word(f, 0x30), 2);
	assert_int_equal(word(f, 0x13), 0);
	/* Identify device data log: the page list, then a copy. */
	expect_ok(f, 0, ata(f, 0, READ_LOG_EXT, 0x30, 1, 0, 512));
	assert_int_equal(f->mem[DATA + 2], 0);
	assert_int_equal(f->mem[DATA + 8], 2);
	assert_int_equal(f->mem[DATA + 9], 0);
	assert_int_equal(f->mem[DATA + 10], 1);
	expect_ok(f, 0, ata(f, 0, READ_LOG_DMA_EXT, 0x30 | 1 << 8, 1, 0, 512));
	assert_int_equal(word(f, 0), 0x0040);
	assert_int_equal(word(f, 100), DISK_SECTORS);
	/* Both pages at once. */
	expect_ok(f, 0, ata(f, 0, READ_LOG_EXT, 0x30, 2, 0, 1024));
	assert_int_equal(le16_get(f->mem + DATA + 512 + 200), DISK_SECTORS);
	/* No such page, log, or count. */
	expect_abort(f, 0, ata(f, 0, READ_LOG_EXT, 0x30 | 2 << 8, 1, 0, 512),
		     ABRT);
	expect_abort(
	    f, 0, ata(f, 0, READ_LOG_EXT, 0x30 | 1ULL << 32, 1, 0, 512), ABRT);
	expect_abort(f, 0, ata(f, 0, READ_LOG_EXT, 0x13, 1, 0, 512), ABRT);
	expect_abort(f, 0, ata(f, 0, READ_LOG_EXT, 0x00, 0, 0, 512), ABRT);
	expect_abort(f, 0, ata(f, 0, READ_LOG_EXT, 0x00, 2, 0, 1024), ABRT);
	expect_abort(f, 0,
		     ata(f, 0, READ_LOG_EXT,
			 0x30 | 0xffULL << 8 | 0xffULL << 32, 2, 0, 1024),
		     ABRT);
	fx_free(f);
}

static void
test_misc_commands(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");

	(void)state;
	port_start(f, 0);
	expect_ok(f, 0, ata(f, 0, 0x42, DISK_SECTORS - 8, 8, 0, 0));
	expect_abort(f, 0, ata(f, 0, 0x42, DISK_SECTORS - 8, 9, 0, 0),
		     IDNF | ABRT);
	expect_ok(f, 0, ata(f, 0, 0x40, 0, 1, 0, 0));
	expect_ok(f, 0, ata(f, 0, 0x70, 77, 0, 0, 0));
	expect_ok(f, 0, ata(f, 0, 0xe5, 0, 0, 0, 0));
	assert_int_equal(rfis(f, 0, 0x40)[12], 0xff); /* active or idle */
	expect_ok(f, 0, ata(f, 0, 0xe0, 0, 0, 0, 0));
	expect_ok(f, 0, ata(f, 0, 0xe1, 0, 0, 0, 0));
	expect_ok(f, 0, ata(f, 0, 0xe2, 0, 0, 0, 0));
	expect_ok(f, 0, ata(f, 0, 0xe3, 0, 0, 0, 0));
	expect_abort(f, 0, ata(f, 0, 0x00, 0, 0, 0, 0), ABRT);	    /* NOP */
	expect_abort(f, 0, ata(f, 0, 0xb0, 0, 0, 0xd0, 512), ABRT); /* SMART */
	expect_abort(f, 0, ata(f, 0, PACKET, 0, 0, 0, 512), ABRT);
	expect_abort(f, 0, ata(f, 0, IDENTIFY_PACKET, 0, 0, 0, 512), ABRT);
	expect_abort(f, 0, ata(f, 0, 0x08, 0, 0, 0, 0), ABRT);
	expect_ok(f, 0, ata(f, 0, READ_DMA_EXT, 0, 1, 0, 512));
	fx_free(f);
}

/* ---- ATAPI ---- */

/* One ATAPI packet with a buffer at DATA; dma selects DMA over PIO. */
static uint32_t
packet(struct fx *f, int port, const uint8_t *cdb, uint32_t len, bool dma)
{
	uint8_t c[20], a[16] = {0};
	struct prd p = {DATA, len};

	memcpy(a, cdb, 12);
	fis_h2d(c, PACKET, 0, 0, dma ? 1 : 0);
	put_cmd(f, port, 0, c, a, &p, len ? 1 : 0, HDR_A);
	pwr(f, port, P_IS, ~0u);
	return issue(f, port, 0, false);
}

static void
expect_good(struct fx *f, int port, uint32_t is)
{
	expect_ok(f, port, is);
	assert_int_equal(rfis(f, port, 0x40)[12], 0x03); /* I/O, C/D */
}

/* CHECK CONDITION with this sense, which REQUEST SENSE then returns. */
static void
expect_sense(struct fx *f, int port, uint32_t is, uint8_t key, uint8_t asc)
{
	const uint8_t rs[12] = {0x03, 0, 0, 0, 18};

	assert_true(is & IS_TFES);
	assert_int_equal(tfd_status(f, port) & 0x01, 1);
	assert_int_equal(tfd_error(f, port) >> 4, key);
	port_restart(f, port);
	memset(f->mem + DATA, 0xee, 64);
	expect_good(f, port, packet(f, port, rs, 64, false));
	assert_int_equal(f->mem[DATA] & 0x7f, 0x70);
	assert_int_equal(f->mem[DATA + 2], key);
	assert_int_equal(f->mem[DATA + 12], asc);
	assert_int_equal(f->mem[DATA + 18], 0xee); /* 18 bytes, no more */
	assert_int_equal(prdbc(f, port, 0), 18);
	/* Reading the sense cleared it. */
	expect_good(f, port, packet(f, port, rs, 64, false));
	assert_int_equal(f->mem[DATA + 2], 0);
}

static void
test_atapi_identify(void **state)
{
	struct fx *f = fx_new("ahci-cd,IMG2");
	const uint8_t inq[12] = {0x12, 0, 0, 0, 96};
	char s[41];

	(void)state;
	assert_int_equal(prd_reg(f, 0, P_SIG), 0xeb140101);
	assert_int_equal(prd_reg(f, 0, P_TFD), 0x100);
	port_start(f, 0);
	expect_ok(f, 0, ata(f, 0, IDENTIFY_PACKET, 0, 0, 0, 512));
	assert_int_equal(word(f, 0), 0x85c0);
	ident_str(f, 27, 40, s);
	assert_string_equal(s, "BHYVE SATA DVD ROM");
	ident_str(f, 10, 20, s);
	assert_memory_equal(s, "BHYVE-", 6);
	/* IDENTIFY DEVICE: aborted, with the packet signature. */
	pwr(f, 0, P_IS, ~0u);
	{
		uint32_t is = ata(f, 0, IDENTIFY, 0, 0, 0, 512);

		assert_int_equal(rfis(f, 0, 0x40)[5], 0x14);
		assert_int_equal(rfis(f, 0, 0x40)[6], 0xeb);
		expect_abort(f, 0, is, ABRT);
	}
	/* ATA reads and writes are not for a packet device. */
	expect_abort(f, 0, ata(f, 0, READ_DMA_EXT, 0, 1, 0, 512), ABRT);
	expect_abort(f, 0, ata(f, 0, WRITE_DMA_EXT, 0, 1, 0, 512), ABRT);
	expect_abort(f, 0, ata(f, 0, DSM, 0, 1, 1, 512), ABRT);
	/* INQUIRY: a removable CD/DVD device. */
	memset(f->mem + DATA, 0xee, 128);
	expect_good(f, 0, packet(f, 0, inq, 96, false));
	assert_int_equal(f->mem[DATA], 0x05);
	assert_int_equal(f->mem[DATA + 1], 0x80);
	assert_int_equal(f->mem[DATA + 4], 31);
	assert_memory_equal(f->mem + DATA + 8, "BHYVE   ", 8);
	assert_memory_equal(f->mem + DATA + 16, "BHYVE SATA DVD R", 16);
	assert_int_equal(f->mem[DATA + 36], 0xee);
	assert_int_equal(prdbc(f, 0, 0), 36);
	assert_int_equal(rfis(f, 0, 0x20)[0], 0x5f); /* PIO */
	/* Vital product data: only the list of pages. */
	{
		const uint8_t vpd0[12] = {0x12, 1, 0, 0, 0xff};
		const uint8_t vpd83[12] = {0x12, 1, 0x83, 0, 0xff};
		const uint8_t bad[12] = {0x12, 0, 0x83, 0, 0xff};

		expect_good(f, 0, packet(f, 0, vpd0, 256, false));
		assert_int_equal(prdbc(f, 0, 0), 5);
		assert_int_equal(f->mem[DATA + 3], 1);
		expect_sense(f, 0, packet(f, 0, vpd83, 256, false), 0x05, 0x24);
		expect_sense(f, 0, packet(f, 0, bad, 256, false), 0x05, 0x24);
	}
	/* DEVICE RESET: the signature again. */
	expect_ok(f, 0, ata(f, 0, 0x08, 0, 0, 0, 0));
	assert_int_equal(prd_reg(f, 0, P_SIG), 0xeb140101);
	fx_free(f);
}

static void
test_atapi_read(void **state)
{
	struct fx *f = fx_new("ahci-cd,IMG2");
	const uint8_t cap[12] = {0x25};
	uint8_t rd10[12] = {0x28, 0, 0, 0, 0, 7, 0, 0, 3};
	uint8_t rd12[12] = {0xa8, 0, 0, 0, 0x03, 0xe5, 0, 0, 0, 3};
	const uint8_t tur[12] = {0x00};

	(void)state;
	port_start(f, 0);
	expect_good(f, 0, packet(f, 0, tur, 0, false));
	expect_good(f, 0, packet(f, 0, cap, 8, false));
	assert_int_equal(be32(f->mem + DATA), CD_BLOCKS - 1);
	assert_int_equal(be32(f->mem + DATA + 4), 2048);
	/* READ(10): blocks 7-9 by DMA. */
	expect_good(f, 0, packet(f, 0, rd10, 3 * 2048, true));
	for (int i = 0; i < 3; i++)
		assert_int_equal(sector_tag(f, DATA + 2048 * i), 7 + i);
	assert_int_equal(prdbc(f, 0, 0), 3 * 2048);
	/* READ(12): the last three blocks (997-999) by PIO. */
	expect_good(f, 0, packet(f, 0, rd12, 3 * 2048, false));
	assert_int_equal(sector_tag(f, DATA + 2 * 2048), CD_BLOCKS - 1);
	/* One past the end. */
	rd12[5] = 0xe6;
	expect_sense(f, 0, packet(f, 0, rd12, 3 * 2048, true), 0x05, 0x21);
	fx_free(f);
}

static void
test_atapi_toc(void **state)
{
	struct fx *f = fx_new("ahci-cd,IMG2");
	uint8_t toc[12] = {0x43, 0, 0, 0, 0, 0, 0, 0, 64};
	uint8_t *d = f->mem + DATA;

	(void)state;
	port_start(f, 0);
	/* Format 0, LBA: track 1 at 0, lead-out at the capacity. */
	expect_good(f, 0, packet(f, 0, toc, 64, false));
	assert_int_equal(be16(d), 18);
	assert_int_equal(d[2], 1);
	assert_int_equal(d[3], 1);
	assert_int_equal(d[5], 0x14);
	assert_int_equal(d[6], 1);
	assert_int_equal(be32(d + 8), 0);
	assert_int_equal(d[14], 0xaa);
	assert_int_equal(be32(d + 16), CD_BLOCKS);
	/* MSF: lead-out at 1150 frames = 00:15:25. */
	toc[1] = 0x02;
	expect_good(f, 0, packet(f, 0, toc, 64, false));
	assert_int_equal(d[9], 0);
	assert_int_equal(d[10], 2);
	assert_int_equal(d[11], 0);
	assert_int_equal(d[17], 0);
	assert_int_equal(d[18], 15);
	assert_int_equal(d[19], 25);
	/* Starting at the lead-out: only it. */
	toc[1] = 0;
	toc[6] = 0xaa;
	expect_good(f, 0, packet(f, 0, toc, 64, false));
	assert_int_equal(be16(d), 10);
	assert_int_equal(d[6], 0xaa);
	/* Format 1: session info. */
	toc[6] = 0;
	toc[2] = 1;
	expect_good(f, 0, packet(f, 0, toc, 64, false));
	assert_int_equal(be16(d), 10);
	assert_int_equal(d[6], 1);
	/* Format 2: raw TOC, four 11-byte descriptors, MSF. */
	toc[2] = 2;
	expect_good(f, 0, packet(f, 0, toc, 64, false));
	assert_int_equal(be16(d), 46);
	assert_int_equal(d[4 + 3], 0xa0);
	assert_int_equal(d[4 + 8], 1);
	assert_int_equal(d[15 + 3], 0xa1);
	assert_int_equal(d[26 + 3], 0xa2);
	assert_int_equal(d[26 + 8], 0);
	assert_int_equal(d[26 + 9], 15);
	assert_int_equal(d[26 + 10], 25);
	assert_int_equal(d[37 + 3], 1);
	assert_int_equal(d[37 + 9], 2);
	/* The older place for the format: byte 9, bits 7:6. */
	toc[2] = 0;
	toc[9] = 0x40;
	expect_good(f, 0, packet(f, 0, toc, 64, false));
	assert_int_equal(be16(d), 10);
	/* Unknown format, bad track. */
	toc[9] = 0;
	toc[2] = 5;
	expect_sense(f, 0, packet(f, 0, toc, 64, false), 0x05, 0x24);
	toc[2] = 0;
	toc[6] = 2;
	expect_sense(f, 0, packet(f, 0, toc, 64, false), 0x05, 0x24);
	fx_free(f);
}

static void
test_atapi_mmc(void **state)
{
	struct fx *f = fx_new("ahci-cd,IMG2");
	uint8_t gc[12] = {0x46, 0, 0, 0, 0, 0, 0, 0, 64};
	uint8_t gesn[12] = {0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8};
	uint8_t ms10[12] = {0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 64};
	uint8_t ms6[12] = {0x1a, 0, 0x2a, 0, 64};
	uint8_t ssu[12] = {0x1b, 0, 0, 0, 0x02};
	uint8_t pa[12] = {0x1e, 0, 0, 0, 1};
	uint8_t w10[12] = {0x2a, 0, 0, 0, 0, 0, 0, 0, 1};
	uint8_t *d = f->mem + DATA;

	(void)state;
	port_start(f, 0);
	/* GET CONFIGURATION: CD-ROM profile current; all features. */
	expect_good(f, 0, packet(f, 0, gc, 64, false));
	assert_int_equal(be16(d + 6), 0x0008);
	assert_int_equal(be32(d), 4 + 12 + 12 + 8 + 12);
	assert_int_equal(be16(d + 8), 0x0000);
	assert_int_equal(be16(d + 20), 0x0001);
	/* RT 2: one feature. */
	gc[1] = 2;
	gc[3] = 0x10;
	expect_good(f, 0, packet(f, 0, gc, 64, false));
	assert_int_equal(be32(d), 4 + 12);
	assert_int_equal(be16(d + 8), 0x0010);
	assert_int_equal(be32(d + 12), 2048);
	gc[1] = 3;
	expect_sense(f, 0, packet(f, 0, gc, 64, false), 0x05, 0x24);
	/* GET EVENT STATUS NOTIFICATION: media present, no event. */
	expect_good(f, 0, packet(f, 0, gesn, 8, false));
	assert_int_equal(be16(d), 6);
	assert_int_equal(d[2], 0x04);
	assert_int_equal(d[5], 0x02);
	gesn[4] = 0x02; /* not media: no event available */
	expect_good(f, 0, packet(f, 0, gesn, 8, false));
	assert_int_equal(d[2], 0x80);
	gesn[1] = 0; /* asynchronous: not supported */
	expect_sense(f, 0, packet(f, 0, gesn, 8, false), 0x05, 0x24);
	/* MODE SENSE (10) and (6) of the capabilities page. */
	expect_good(f, 0, packet(f, 0, ms10, 64, false));
	assert_int_equal(be16(d), 8 + 20 - 2);
	assert_int_equal(d[8], 0x2a);
	assert_int_equal(d[9], 18);
	expect_good(f, 0, packet(f, 0, ms6, 64, false));
	assert_int_equal(d[0], 4 + 20 - 1);
	assert_int_equal(d[4], 0x2a);
	ms10[2] = 0x3f; /* all pages */
	expect_good(f, 0, packet(f, 0, ms10, 64, false));
	assert_int_equal(be16(d), 8 + 12 + 20 - 2);
	ms10[2] = 0x40 | 0x2a; /* changeable values: none */
	expect_good(f, 0, packet(f, 0, ms10, 64, false));
	assert_int_equal(d[8], 0x2a);
	assert_int_equal(d[10], 0);
	assert_int_equal(d[14], 0);
	ms10[2] = 0xc0 | 0x2a; /* saved values */
	expect_sense(f, 0, packet(f, 0, ms10, 64, false), 0x05, 0x39);
	ms10[2] = 0x05; /* no such page */
	expect_sense(f, 0, packet(f, 0, ms10, 64, false), 0x05, 0x24);
	/* Locked: eject refused; unlocked: fine. */
	expect_good(f, 0, packet(f, 0, pa, 0, false));
	expect_sense(f, 0, packet(f, 0, ssu, 0, false), 0x05, 0x53);
	pa[4] = 0;
	expect_good(f, 0, packet(f, 0, pa, 0, false));
	expect_good(f, 0, packet(f, 0, ssu, 0, false));
	/* Writes are refused; unknown commands are illegal requests. */
	expect_sense(f, 0, packet(f, 0, w10, 2048, true), 0x07, 0x27);
	w10[0] = 0xff;
	expect_sense(f, 0, packet(f, 0, w10, 0, true), 0x05, 0x20);
	fx_free(f);
}

/* bhyve once let ATAPI allocation lengths run past its buffers. */
static void
test_atapi_lengths(void **state)
{
	struct fx *f = fx_new("ahci-cd,IMG2");
	uint8_t inq[12] = {0x12, 0, 0, 0xff, 0xff};
	uint8_t rd10[12] = {0x28, 0, 0, 0, 0, 7};
	uint8_t rd12[12] = {0xa8, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff};
	uint8_t toc[12] = {0x43, 0, 2, 0, 0, 0, 0, 0xff, 0xff};
	uint8_t ms[12] = {0x5a, 0, 0x3f};
	uint8_t *d = f->mem + DATA;

	(void)state;
	port_start(f, 0);
	memset(d, 0xee, 8192);
	expect_good(f, 0, packet(f, 0, inq, 4096, false));
	assert_int_equal(prdbc(f, 0, 0), 36);
	assert_int_equal(d[36], 0xee);
	inq[3] = 0;
	inq[4] = 5;
	memset(d, 0xee, 64);
	expect_good(f, 0, packet(f, 0, inq, 4096, false));
	assert_int_equal(prdbc(f, 0, 0), 5);
	assert_int_equal(d[5], 0xee);
	/* A PRDT smaller than the answer takes what fits. */
	inq[4] = 96;
	memset(d, 0xee, 64);
	expect_good(f, 0, packet(f, 0, inq, 8, false));
	assert_int_equal(prdbc(f, 0, 0), 8);
	assert_int_equal(d[8], 0xee);
	/* A zero-length READ ends once, with nothing moved. */
	memset(d, 0xee, 64);
	expect_good(f, 0, packet(f, 0, rd10, 4096, true));
	assert_int_equal(prdbc(f, 0, 0), 0);
	assert_int_equal(d[0], 0xee);
	expect_good(f, 0, packet(f, 0, inq, 64, false));
	/* READ(12) of 4G blocks: out of range, nothing done. */
	expect_sense(f, 0, packet(f, 0, rd12, 4096, true), 0x05, 0x21);
	rd12[2] = 0xff;
	expect_sense(f, 0, packet(f, 0, rd12, 4096, true), 0x05, 0x21);
	/* Raw TOC with a 64 KiB allocation: 48 bytes. */
	memset(d, 0xee, 128);
	expect_good(f, 0, packet(f, 0, toc, 8192, false));
	assert_int_equal(prdbc(f, 0, 0), 48);
	assert_int_equal(d[48], 0xee);
	/* Allocation length 0: nothing. */
	memset(d, 0xee, 128);
	expect_good(f, 0, packet(f, 0, ms, 4096, false));
	assert_int_equal(prdbc(f, 0, 0), 0);
	assert_int_equal(d[0], 0xee);
	/* A READ whose PRDT is too short: ABORTED COMMAND. */
	rd10[8] = 2;
	expect_sense(f, 0, packet(f, 0, rd10, 2048, true), 0x0b, 0);
	fx_free(f);
}

/* ---- several ports ---- */

static void
test_multiport(void **state)
{
	struct fx *f = fx_new("ahci,hd:IMG,ser=DISK0,cd:IMG2,model=My DVD");
	const uint8_t rd10[12] = {0x28, 0, 0, 0, 0, 9, 0, 0, 1};
	char s[41];

	(void)state;
	assert_int_equal(rd(f, PI), 3);
	assert_int_equal(rd(f, CAP) & 0x1f, 5);
	assert_int_equal(prd_reg(f, 0, P_SIG), 0x101);
	assert_int_equal(prd_reg(f, 1, P_SIG), 0xeb140101);
	port_start(f, 0);
	port_start(f, 1);
	expect_ok(f, 0, ata(f, 0, READ_DMA_EXT, 44, 1, 0, 512));
	assert_int_equal(sector_tag(f, DATA), 44);
	expect_good(f, 1, packet(f, 1, rd10, 2048, true));
	assert_int_equal(sector_tag(f, DATA), 9);
	identify(f, 0);
	ident_str(f, 10, 20, s);
	assert_string_equal(s, "DISK0");
	expect_ok(f, 1, ata(f, 1, IDENTIFY_PACKET, 0, 0, 0, 512));
	ident_str(f, 27, 40, s);
	assert_string_equal(s, "My DVD");
	/* An error on one port leaves the other running. */
	expect_abort(f, 0, ata(f, 0, 0x00, 0, 0, 0, 0), ABRT);
	expect_good(f, 1, packet(f, 1, rd10, 2048, true));
	fx_free(f);

	/* Thirty-two ports. */
	{
		char spec[600] = "ahci";

		for (int i = 0; i < 32; i++)
			strcat(spec, i % 2 ? ",cd:IMG2" : ",hd:IMG");
		f = fx_new(spec);
		assert_int_equal(rd(f, PI), 0xffffffffu);
		assert_int_equal(rd(f, CAP) & 0x1f, 31);
		port_start(f, 31);
		expect_good(f, 31, packet(f, 31, rd10, 2048, true));
		port_start(f, 30);
		expect_ok(f, 30, ata(f, 30, READ_DMA_EXT, 44, 1, 0, 512));
		fx_free(f);
	}
	/* An empty controller. */
	f = fx_new("ahci");
	assert_int_equal(rd(f, PI), 0);
	fx_free(f);
}

/* ---- interrupts ---- */

static void
test_interrupts(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");
	uint64_t addr, msg;
	uint8_t cap;

	(void)state;
	port_start(f, 0);
	/* INTx: asserted while PxIS and then IS hold an enabled bit. */
	expect_ok(f, 0, ata(f, 0, READ_DMA_EXT, 0, 1, 0, 512));
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 1);
	assert_int_equal(rd(f, HIS), 1);
	pwr(f, 0, P_IS, ~0u);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 1);
	wr(f, HIS, 1);
	assert_int_equal(rd(f, HIS), 0);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	/* IS stays set while the port still has an enabled bit. */
	expect_ok(f, 0, ata(f, 0, READ_DMA_EXT, 0, 1, 0, 512));
	wr(f, HIS, 1);
	assert_int_equal(rd(f, HIS), 1);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 1);
	/* GHC.IE off: no line. */
	wr(f, GHC, 0);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	wr(f, GHC, 2);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 1);
	pwr(f, 0, P_IS, ~0u);
	wr(f, HIS, 1);
	/* Masked in PxIE: nothing, until unmasked. */
	pwr(f, 0, P_IE, 0);
	expect_ok(f, 0, ata(f, 0, READ_DMA_EXT, 0, 1, 0, 512));
	assert_int_equal(rd(f, HIS), 0);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	pwr(f, 0, P_IE, IS_DHRS);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 1);
	pwr(f, 0, P_IS, ~0u);
	wr(f, HIS, 1);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	/* MSI: a message per completion, no INTx. */
	cap = cap_find(f, 0x05);
	pci_cfg_write(f->ctx, 0, SLOT, 0, cap + 4, 4, 0xfee00000);
	pci_cfg_write(f->ctx, 0, SLOT, 0, cap + 12, 2, 0x41);
	pci_cfg_write(f->ctx, 0, SLOT, 0, cap + 2, 2, 1);
	pwr(f, 0, P_IE, ~0u);
	{
		int before = vm_mock_msi_count(f->ctx, &addr, &msg);

		expect_ok(f, 0, ata(f, 0, READ_DMA_EXT, 0, 1, 0, 512));
		assert_true(vm_mock_msi_count(f->ctx, &addr, &msg) > before);
		assert_int_equal(addr, 0xfee00000);
		assert_int_equal(msg, 0x41);
		assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	}
	fx_free(f);
}

/* ---- resets ---- */

static void
test_resets(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");
	uint8_t c[20];

	(void)state;
	port_start(f, 0);
	/* COMRESET only on a stopped port. */
	pwr(f, 0, P_SCTL, 1);
	assert_int_equal(prd_reg(f, 0, P_SSTS), 0x133);
	pwr(f, 0, P_CMD, CMD_FRE);
	assert_true(wait_reg(f, 0, P_CMD, CMD_CR, 0));
	memset(rfis(f, 0, 0x40), 0, 20);
	pwr(f, 0, P_SCTL, 0x301);
	assert_int_equal(prd_reg(f, 0, P_SSTS), 0);
	assert_int_equal(prd_reg(f, 0, P_TFD) & 0x80, 0x80);
	pwr(f, 0, P_SCTL, 0x300);
	assert_int_equal(prd_reg(f, 0, P_SSTS), 0x133);
	assert_int_equal(prd_reg(f, 0, P_TFD), 0x150);
	assert_int_equal(prd_reg(f, 0, P_SIG), 0x101);
	/* The signature FIS, FIS reception being on. */
	assert_int_equal(rfis(f, 0, 0x40)[0], 0x34);
	assert_int_equal(rfis(f, 0, 0x40)[4], 1);
	assert_int_equal(rfis(f, 0, 0x40)[12], 1);
	assert_int_equal(prd_reg(f, 0, P_SCTL), 0x300);
	/* The device's settings went back to their defaults. */
	pwr(f, 0, P_CMD, CMD_FRE | CMD_ST);
	expect_ok(f, 0, ata(f, 0, SET_MULTIPLE, 0, 8, 0, 0));
	expect_ok(f, 0, ata(f, 0, SET_FEATURES, 0, 0x42, 0x03, 0));
	identify(f, 0);
	assert_int_equal(word(f, 59), 0x108);
	assert_int_equal(word(f, 88), 0x047f);
	pwr(f, 0, P_CMD, CMD_FRE);
	assert_true(wait_reg(f, 0, P_CMD, CMD_CR, 0));
	pwr(f, 0, P_SCTL, 1);
	pwr(f, 0, P_SCTL, 0);
	pwr(f, 0, P_CMD, CMD_FRE | CMD_ST);
	identify(f, 0);
	assert_int_equal(word(f, 59), 0);
	assert_int_equal(word(f, 88), 0x407f);
	pwr(f, 0, P_CMD, CMD_FRE);
	assert_true(wait_reg(f, 0, P_CMD, CMD_CR, 0));
	/* DET 4: offline, then back. */
	pwr(f, 0, P_SCTL, 4);
	assert_int_equal(prd_reg(f, 0, P_SSTS), 4);
	pwr(f, 0, P_SCTL, 0);
	assert_int_equal(prd_reg(f, 0, P_SSTS), 0x133);
	/* A soft reset: two control FISes (SRST set, then clear). */
	pwr(f, 0, P_CMD, CMD_FRE | CMD_ST);
	fis_h2d(c, 0, 0, 0, 0);
	c[1] = 0;
	c[15] = 0x04;
	put_cmd(f, 0, 0, c, NULL, NULL, 0, 1u << 8 | 1u << 10);
	pwr(f, 0, P_IS, ~0u);
	expect_ok(f, 0, issue(f, 0, 0, false));
	memset(rfis(f, 0, 0x40), 0, 20);
	c[15] = 0;
	put_cmd(f, 0, 1, c, NULL, NULL, 0, 0);
	expect_ok(f, 0, issue(f, 0, 1, false));
	assert_int_equal(rfis(f, 0, 0x40)[0], 0x34);
	assert_int_equal(prd_reg(f, 0, P_SIG), 0x101);
	assert_int_equal(prd_reg(f, 0, P_IS) & IS_DHRS, 0);
	expect_ok(f, 0, ata(f, 0, READ_DMA_EXT, 0, 1, 0, 512));
	fx_free(f);
}

/* ---- options ---- */

static void
expect_init_error(const char *spec, const char *words)
{
	char line[512];

	assert_int_equal(init_capture(spec, line, sizeof(line)), -1);
	if (!strstr(line, words) || !strstr(line, " at 0:4:0: "))
		fail_msg("error line '%s' lacks '%s'", line, words);
}

static void
test_legacy_config(void **state)
{
	struct config *cfg = config_create();

	(void)state;
	assert_int_equal(pci_parse_slot(cfg,
					"4,ahci-hd,/x/disk.img,ro,nmrr=1,"
					"ser=ABC",
					err, sizeof(err)),
			 0);
	assert_string_equal(config_get(cfg, "pci.0.4.0.device"), "ahci-hd");
	assert_string_equal(config_get(cfg, "pci.0.4.0.port.0.type"), "hd");
	assert_string_equal(config_get(cfg, "pci.0.4.0.port.0.path"),
			    "/x/disk.img");
	assert_string_equal(config_get(cfg, "pci.0.4.0.port.0.ro"), "true");
	assert_string_equal(config_get(cfg, "pci.0.4.0.port.0.nmrr"), "1");
	assert_string_equal(config_get(cfg, "pci.0.4.0.port.0.ser"), "ABC");
	assert_int_equal(
	    pci_parse_slot(cfg, "5,ahci-cd,/x/a.iso", err, sizeof(err)), 0);
	assert_string_equal(config_get(cfg, "pci.0.5.0.port.0.type"), "cd");
	assert_string_equal(config_get(cfg, "pci.0.5.0.port.0.path"),
			    "/x/a.iso");
	assert_int_equal(
	    pci_parse_slot(cfg,
			   "6,ahci,hd:/x/a.img,nocache,cd:/x/b.iso,"
			   "hd:/x/c.img,sectorsize=4096",
			   err, sizeof(err)),
	    0);
	assert_string_equal(config_get(cfg, "pci.0.6.0.port.0.path"),
			    "/x/a.img");
	assert_string_equal(config_get(cfg, "pci.0.6.0.port.0.nocache"),
			    "true");
	assert_string_equal(config_get(cfg, "pci.0.6.0.port.1.type"), "cd");
	assert_string_equal(config_get(cfg, "pci.0.6.0.port.1.path"),
			    "/x/b.iso");
	assert_string_equal(config_get(cfg, "pci.0.6.0.port.2.type"), "hd");
	assert_string_equal(config_get(cfg, "pci.0.6.0.port.2.sectorsize"),
			    "4096");
	assert_int_equal(
	    pci_parse_slot(cfg, "7,ahci,xx:/x/a.img", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "hd:PATH or cd:PATH"));
	{
		char many[700] = "8,ahci";

		for (int i = 0; i < 33; i++)
			strcat(many, ",hd:/x/a.img");
		assert_int_equal(pci_parse_slot(cfg, many, err, sizeof(err)),
				 -1);
		assert_non_null(strstr(err, "more than 32 ports"));
	}
	config_free(cfg);
}

static void
expect_kv_error(const char *kv, const char *words)
{
	struct fx *f = fx_alloc();
	char line[512];

	assert_int_equal(capture(f, kv, true, line, sizeof(line)), -1);
	if (!strstr(line, words) || !strstr(line, " at 0:4:0: "))
		fail_msg("error line '%s' lacks '%s'", line, words);
	fx_free(f);
}

static void
test_options(void **state)
{
	(void)state;
	expect_init_error("ahci-hd,IMG,bogus=1",
			  "port 0: unknown option 'bogus'");
	expect_init_error("ahci,hd:IMG,cd:IMG2,hd:IMG,xx=1",
			  "port 2: unknown option 'xx'");
	expect_init_error("ahci-hd,IMG,nmrr=2", "bad nmrr '2'");
	expect_init_error("ahci-hd,IMG,nmrr=x", "bad nmrr 'x'");
	expect_init_error("ahci-hd,IMG,nmrr=65535", "bad nmrr");
	expect_init_error("ahci-hd,IMG,nmrr=-1", "bad nmrr");
	expect_init_error("ahci-hd,IMG,ser=123456789012345678901",
			  "ser '123456789012345678901' is longer than 20");
	expect_init_error("ahci-hd,IMG,rev=123456789", "longer than 8");
	expect_init_error("ahci-hd,IMG,model=12345678901234567890123456789012"
			  "345678901",
			  "longer than 40");
	expect_init_error("ahci-hd,IMG,sectorsize=1000", "bad sectorsize");
	expect_init_error("ahci-hd,IMG,ro=maybe", "bad value 'maybe' for ro");
	expect_init_error("ahci-cd,IMG2,ro=maybe", "bad value 'maybe' for ro");
	expect_init_error("ahci-cd,IMG2,sectorsize=1000", "bad sectorsize");
	expect_init_error("ahci-hd,/nonexistent/x.img",
			  "port 0: cannot open /nonexistent/x.img");
	expect_init_error("ahci,hd:IMG,cd:/nonexistent/y.iso",
			  "port 1: cannot open /nonexistent/y.iso");
	expect_init_error("ahci-hd", "no disk image");
	expect_init_error("ahci-cd", "no disk image");
	expect_init_error("ahci-hd,IMG,path=", "no disk image");
	/* The config tree itself (-o, -k). */
	expect_kv_error("device=ahci port.40.type=hd port.40.path=IMG",
			"bad port '40'");
	expect_kv_error("device=ahci port.01.type=hd port.01.path=IMG",
			"bad port '01'");
	expect_kv_error("device=ahci port.0.path=IMG", "port 0: type ''");
	expect_kv_error("device=ahci port.0.type=zip port.0.path=IMG",
			"port 0: type 'zip' (hd or cd)");
	expect_kv_error("device=ahci-hd path=IMG", "unknown option 'path'");
	expect_kv_error("device=ahci port=1", "unknown option 'port'");
	expect_kv_error("device=ahci port.3=x", "port 3: a value, where");
	expect_kv_error("device=ahci port.0.type=hd port.0.path=IMG "
			"port.0.x.y=1",
			"port 0: unknown option 'x'");
}

/* An image that is not a whole number of sectors. */
static void
test_image_size(void **state)
{
	struct fx *f = fx_alloc();
	char line[512];

	(void)state;
	assert_int_equal(truncate(f->image, 1000), 0);
	assert_int_equal(capture(f, "ahci-hd,IMG", false, line, sizeof(line)),
			 -1);
	assert_non_null(strstr(line, "not a whole number of 512-byte"));
	assert_int_equal(truncate(f->image, 4096 * 3 + 512), 0);
	assert_int_equal(capture(f, "ahci-hd,IMG,sectorsize=4096", false, line,
				 sizeof(line)),
			 -1);
	assert_non_null(strstr(line, "not a whole number of 4096-byte"));
	assert_int_equal(capture(f, "ahci-hd,IMG", false, line, sizeof(line)),
			 0);
	/* A DVD image's partial last block is not read. */
	assert_int_equal(truncate(f->image2, 2048 * 10 + 100), 0);
	assert_int_equal(fx_init(f, "ahci-cd,IMG2"), 0);
	fx_found(f);
	port_start(f, 0);
	{
		const uint8_t cap[12] = {0x25};

		expect_good(f, 0, packet(f, 0, cap, 8, false));
		assert_int_equal(be32(f->mem + DATA), 9);
	}
	fx_free(f);
}

static void
ident_serial(struct fx *f, int port, char *s)
{
	identify(f, port);
	ident_str(f, 10, 20, s);
}

/* The default serial: stable, and different on another port. */
static void
test_default_serial(void **state)
{
	struct fx *f = fx_alloc();
	char s0[41], s1[41], again[41];

	(void)state;
	assert_int_equal(fx_init(f, "ahci,hd:IMG,hd:IMG"), 0);
	fx_found(f);
	port_start(f, 0);
	port_start(f, 1);
	ident_serial(f, 0, s0);
	ident_serial(f, 1, s1);
	assert_int_equal(strlen(s0), 20);
	assert_memory_equal(s0, "BHYVE-", 6);
	assert_string_not_equal(s0, s1);
	fx_teardown(f);
	assert_int_equal(fx_init(f, "ahci,hd:IMG,hd:IMG"), 0);
	fx_found(f);
	port_start(f, 0);
	ident_serial(f, 0, again);
	assert_string_equal(s0, again);
	fx_free(f);
}

static void
test_read_only(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG,ro");
	uint8_t b[512];

	(void)state;
	port_start(f, 0);
	identify(f, 0);
	assert_int_equal(word(f, 169), 0); /* no TRIM */
	memset(f->mem + DATA, 0x99, 512);
	expect_abort(f, 0, ata(f, 0, WRITE_DMA_EXT, 0, 1, 0, 512), ABRT);
	put_ncq(f, 0, 2, true, 0, 1, DATA);
	assert_true(issue(f, 0, 2, true) & IS_TFES);
	port_restart(f, 0);
	read_file(f->image, 0, b, sizeof(b));
	assert_int_not_equal(b[100], 0x99);
	expect_ok(f, 0, ata(f, 0, READ_DMA_EXT, 0, 1, 0, 512));
	fx_free(f);

	/* A file we may only read is a read-only disk (not as root). */
	if (geteuid() != 0) {
		f = fx_alloc();
		assert_int_equal(chmod(f->image, 0444), 0);
		assert_int_equal(fx_init(f, "ahci-hd,IMG"), 0);
		fx_found(f);
		port_start(f, 0);
		expect_abort(f, 0, ata(f, 0, WRITE_DMA_EXT, 0, 1, 0, 512),
			     ABRT);
		fx_free(f);
	}
}

/* The backend fails: an image cut short under the disk (EIO). */
static void
test_io_errors(void **state)
{
	struct fx *f = fx_new("ahci,hd:IMG,cd:IMG2");
	const uint8_t rd10[12] = {0x28, 0, 0, 0, 0x03, 0xe0, 0, 0, 1};
	uint8_t c[20];
	struct prd p = {DATA, 512};

	(void)state;
	port_start(f, 0);
	port_start(f, 1);
	assert_int_equal(truncate(f->image, 512 * 1024), 0);
	assert_int_equal(truncate(f->image2, 2048 * 900), 0);
	expect_ok(f, 0, ata(f, 0, READ_DMA_EXT, 1023, 1, 0, 512));
	expect_abort(f, 0, ata(f, 0, READ_DMA_EXT, 1024, 1, 0, 512), 0x40);
	/* Queued: the error log names the slot. */
	fis_h2d(c, READ_FPDMA, 1500, 7 << 3, 1);
	put_cmd(f, 0, 7, c, NULL, &p, 1, 0);
	pwr(f, 0, P_IS, ~0u);
	assert_true(issue(f, 0, 7, true) & IS_TFES);
	assert_int_equal(rfis(f, 0, 0x58)[3], 0x40);
	port_restart(f, 0);
	expect_ok(f, 0, ata(f, 0, READ_LOG_EXT, 0x10, 1, 0, 512));
	assert_int_equal(f->mem[DATA], 7);
	/* ATAPI: MEDIUM ERROR, UNRECOVERED READ ERROR. */
	expect_sense(f, 1, packet(f, 1, rd10, 2048, true), 0x03, 0x11);
	fx_free(f);
}

/* ---- a hostile guest ---- */

static void
test_bad_command_list(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");

	(void)state;
	port_start(f, 0);
	/* PxCLB outside guest RAM. */
	pwr(f, 0, P_CMD, CMD_FRE);
	pwr(f, 0, P_CLB, (uint32_t)MEMSIZE);
	pwr(f, 0, P_CMD, CMD_FRE | CMD_ST);
	pwr(f, 0, P_CI, 1u << 31);
	assert_true(prd_reg(f, 0, P_IS) & IS_HBFS);
	assert_int_equal(prd_reg(f, 0, P_CMD) >> 8 & 0x1f, 31); /* CCS */
	/* Stopped: nothing more is taken until ST clears. */
	pwr(f, 0, P_CI, 1);
	assert_int_equal(prd_reg(f, 0, P_CI), 1u << 31 | 1);
	pwr(f, 0, P_CMD, CMD_FRE);
	pwr(f, 0, P_CLBU, 1); /* 4 GiB up: no RAM there either */
	pwr(f, 0, P_CLB, 0);
	pwr(f, 0, P_IS, ~0u);
	pwr(f, 0, P_CMD, CMD_FRE | CMD_ST);
	pwr(f, 0, P_CI, 1);
	expect_fatal(f, 0, prd_reg(f, 0, P_IS), IS_HBFS);
	/* The last slot's header straddling the end of RAM. */
	pwr(f, 0, P_CMD, CMD_FRE);
	pwr(f, 0, P_CLBU, 0);
	pwr(f, 0, P_CLB, (uint32_t)(MEMSIZE - 1024));
	pwr(f, 0, P_IS, ~0u);
	pwr(f, 0, P_CMD, CMD_FRE | CMD_ST);
	memset(f->mem + MEMSIZE - 1024, 0, 1024);
	pwr(f, 0, P_CI, 1u << 31);
	/* The header is in RAM; its table at 0 holds no command FIS. */
	assert_true(prd_reg(f, 0, P_IS) & IS_IFS);
	port_restart(f, 0);
	/* Back to a good list: it works. */
	pwr(f, 0, P_CMD, CMD_FRE);
	pwr(f, 0, P_CLB, (uint32_t)clb(0));
	pwr(f, 0, P_CMD, CMD_FRE | CMD_ST);
	expect_ok(f, 0, ata(f, 0, READ_DMA_EXT, 1, 1, 0, 512));
	fx_free(f);
}

static void
test_bad_command_table(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");
	struct prd p = {DATA, 512};
	uint8_t c[20], before[512], after[512];

	(void)state;
	port_start(f, 0);
	read_file(f->image, 0, before, sizeof(before));
	fis_h2d(c, WRITE_DMA_EXT, 0, 1, 0);
	/* CTBA outside RAM. */
	put_cmd(f, 0, 0, c, NULL, &p, 1, HDR_W);
	le64_put(f->mem + clb(0) + 8, OUTSIDE);
	expect_fatal(f, 0, issue(f, 0, 0, false), IS_HBFS);
	/* A PRDT running off the end of RAM (PRDTL 65535): nothing done. */
	put_cmd_at(f, 0, 0, MEMSIZE - 0x1000, c, NULL, &p, 1, HDR_W);
	le32_put(f->mem + clb(0), 5 | HDR_W | 0xffffu << 16);
	memset(f->mem + DATA, 0x11, 512);
	expect_fatal(f, 0, issue(f, 0, 0, false), IS_HBFS);
	read_file(f->image, 0, after, sizeof(after));
	assert_memory_equal(before, after, sizeof(before));
	/* The same table with PRDTL 1 is fine. */
	le32_put(f->mem + clb(0), 5 | HDR_W | 1u << 16);
	expect_ok(f, 0, issue(f, 0, 0, false));
	read_file(f->image, 0, after, sizeof(after));
	assert_int_equal(after[0], 0x11);
	fx_free(f);
}

static void
test_bad_fis(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");
	struct prd p = {DATA, 512};
	uint8_t c[20];

	(void)state;
	port_start(f, 0);
	fis_h2d(c, READ_DMA_EXT, 0, 1, 0);
	c[0] = 0x34; /* a D2H FIS as a command */
	put_cmd(f, 0, 0, c, NULL, &p, 1, 0);
	expect_fatal(f, 0, issue(f, 0, 0, false), IS_IFS);
	/* CFL shorter than a Register H2D FIS. */
	c[0] = 0x27;
	put_cmd(f, 0, 0, c, NULL, &p, 1, 0);
	le32_put(f->mem + clb(0), 2 | 1u << 16);
	expect_fatal(f, 0, issue(f, 0, 0, false), IS_IFS);
	/* Port multiplier field: ignored (no port multiplier). */
	put_cmd(f, 0, 0, c, NULL, &p, 1, 0xf000);
	expect_ok(f, 0, issue(f, 0, 0, false));
	fx_free(f);
}

static void
test_bad_prds(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");
	struct prd p[2] = {{DATA, 512}, {OUTSIDE, 512}};
	uint8_t c[20], before[1024], after[1024];

	(void)state;
	port_start(f, 0);
	read_file(f->image, 0, before, sizeof(before));
	/* A write whose second buffer is outside RAM. */
	fis_h2d(c, WRITE_DMA_EXT, 0, 2, 0);
	put_cmd(f, 0, 0, c, NULL, p, 2, HDR_W);
	expect_fatal(f, 0, issue(f, 0, 0, false), IS_HBFS);
	read_file(f->image, 0, after, sizeof(after));
	assert_memory_equal(before, after, sizeof(before));
	/* A buffer straddling the end of RAM (read). */
	p[1].addr = MEMSIZE - 256;
	fis_h2d(c, READ_DMA_EXT, 0, 2, 0);
	put_cmd(f, 0, 0, c, NULL, p, 2, 0);
	expect_fatal(f, 0, issue(f, 0, 0, false), IS_HBFS);
	/* DBC with bit 0 clear: an odd byte count. */
	put_cmd(f, 0, 0, c, NULL, p, 1, 0);
	le32_put(f->mem + ct(0, 0) + 0x80 + 12, 1022);
	expect_fatal(f, 0, issue(f, 0, 0, false), IS_HBFS);
	/* IDENTIFY into a buffer outside RAM. */
	fis_h2d(c, IDENTIFY, 0, 0, 0);
	p[0].addr = OUTSIDE;
	put_cmd(f, 0, 0, c, NULL, p, 1, 0);
	expect_fatal(f, 0, issue(f, 0, 0, false), IS_HBFS);
	/* DBA bit 0 is reserved: ignored. DBC's upper bits too; I bit: DPS. */
	fis_h2d(c, READ_DMA_EXT, 3, 1, 0);
	p[0].addr = DATA + 1;
	put_cmd(f, 0, 0, c, NULL, p, 1, 0);
	le32_put(f->mem + ct(0, 0) + 0x80 + 12, 511 | 0x7fc00000u | 1u << 31);
	pwr(f, 0, P_IS, ~0u);
	expect_ok(f, 0, issue(f, 0, 0, false));
	assert_int_equal(sector_tag(f, DATA), 3);
	assert_true(prd_reg(f, 0, P_IS) & IS_DPS);
	fx_free(f);
}

static void
test_prdt_sizes(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");
	struct prd p[2] = {{DATA, 2048}, {DATA2, 65536}};
	uint8_t c[20];

	(void)state;
	port_start(f, 0);
	/* Shorter than the transfer: aborted; nothing past the buffer. */
	memset(f->mem + DATA, 0xee, 8192);
	expect_abort(f, 0, ata(f, 0, READ_DMA_EXT, 0, 8, 0, 2048), ABRT);
	assert_int_equal(f->mem[DATA + 2048], 0xee);
	expect_abort(f, 0, ata(f, 0, IDENTIFY, 0, 0, 0, 256), ABRT);
	assert_int_equal(f->mem[DATA + 256], 0xee);
	expect_abort(f, 0, ata(f, 0, READ_DMA_EXT, 0, 1, 0, 0), ABRT);
	expect_abort(f, 0, ata(f, 0, IDENTIFY, 0, 0, 0, 0), ABRT);
	expect_abort(f, 0, ata(f, 0, WRITE_DMA, 0, 2, 0, 512), ABRT);
	/* Longer than the transfer: only the transfer moves. */
	memset(f->mem + DATA2, 0xee, 65536);
	fis_h2d(c, READ_DMA_EXT, 9, 1, 0);
	put_cmd(f, 0, 0, c, NULL, p + 1, 1, 0);
	expect_ok(f, 0, issue(f, 0, 0, false));
	assert_int_equal(prdbc(f, 0, 0), 512);
	assert_int_equal(sector_tag(f, DATA2), 9);
	assert_int_equal(f->mem[DATA2 + 512], 0xee);
	/* A 4 MiB PRD (the largest) for the whole disk. */
	p[1].len = 4 << 20;
	fis_h2d(c, READ_DMA_EXT, 0, DISK_SECTORS, 0);
	put_cmd(f, 0, 0, c, NULL, p + 1, 1, 0);
	expect_ok(f, 0, issue(f, 0, 0, false));
	assert_int_equal(prdbc(f, 0, 0), DISK_SECTORS * 512);
	assert_int_equal(sector_tag(f, DATA2 + 512 * (DISK_SECTORS - 1)),
			 DISK_SECTORS - 1);
	fx_free(f);
}

/* More PRDs than the backend takes iovecs: several requests. */
static void
test_prdt_fragmented(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");
	struct prd *p = calloc(1024, sizeof(*p));
	uint8_t c[20], buf[512];

	(void)state;
	port_start(f, 0);
	/* 200 sectors into 400 buffers of 256 bytes, scattered. */
	for (int i = 0; i < 400; i++)
		p[i] = (struct prd){DATA + 1024 * (uint64_t)i, 256};
	fis_h2d(c, READ_DMA_EXT, 100, 200, 0);
	put_cmd_at(f, 0, 0, BIG_CT, c, NULL, p, 400, 0);
	expect_ok(f, 0, issue(f, 0, 0, false));
	for (int s = 0; s < 200; s++)
		assert_int_equal(sector_tag(f, DATA + 2048 * (uint64_t)s),
				 100 + s);
	assert_int_equal(f->mem[DATA + 1024 + 255], (uint8_t)100);
	assert_int_equal(prdbc(f, 0, 0), 200 * 512);
	/* One sector written from 256 buffers of 2 bytes. */
	for (int i = 0; i < 256; i++) {
		p[i] = (struct prd){DATA + 16 * (uint64_t)i, 2};
		f->mem[DATA + 16 * i] = (uint8_t)i;
		f->mem[DATA + 16 * i + 1] = (uint8_t)~i;
	}
	fis_h2d(c, WRITE_DMA_EXT, 500, 1, 0);
	put_cmd_at(f, 0, 0, BIG_CT, c, NULL, p, 256, HDR_W);
	expect_ok(f, 0, issue(f, 0, 0, false));
	read_file(f->image, 500 * 512, buf, sizeof(buf));
	for (int i = 0; i < 256; i++) {
		assert_int_equal(buf[2 * i], (uint8_t)i);
		assert_int_equal(buf[2 * i + 1], (uint8_t)~i);
	}
	/* 1024 pieces of 6 bytes: 12 sectors exactly, then one short. */
	for (int i = 0; i < 1024; i++)
		p[i] = (struct prd){DATA + 8 * (uint64_t)i, 6};
	fis_h2d(c, READ_DMA_EXT, 20, 12, 0);
	put_cmd_at(f, 0, 0, BIG_CT, c, NULL, p, 1024, 0);
	memset(f->mem + DATA, 0, 8 * 1024);
	expect_ok(f, 0, issue(f, 0, 0, false));
	assert_int_equal(prdbc(f, 0, 0), 12 * 512);
	assert_int_equal(f->mem[DATA + 8 * 85 + 2], 21);   /* byte 512 */
	assert_int_equal(f->mem[DATA + 8 * 1023 + 5], 31); /* the last */
	fis_h2d(c, READ_DMA_EXT, 20, 13, 0);
	put_cmd_at(f, 0, 0, BIG_CT, c, NULL, p, 1024, 0);
	pwr(f, 0, P_IS, ~0u);
	expect_abort(f, 0, issue(f, 0, 0, false), ABRT);
	free(p);
	fx_free(f);
}

static void
test_lba_range(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");

	(void)state;
	port_start(f, 0);
	expect_ok(f, 0, ata(f, 0, READ_DMA_EXT, DISK_SECTORS - 1, 1, 0, 512));
	expect_abort(f, 0, ata(f, 0, READ_DMA_EXT, DISK_SECTORS, 1, 0, 512),
		     IDNF | ABRT);
	expect_abort(f, 0,
		     ata(f, 0, WRITE_DMA_EXT, DISK_SECTORS - 1, 2, 0, 1024),
		     IDNF | ABRT);
	expect_abort(f, 0,
		     ata(f, 0, READ_DMA_EXT, 0xffffffffffffULL, 0, 0, 512),
		     IDNF | ABRT);
	expect_abort(f, 0, ata(f, 0, READ_DMA, 0x0fffffff, 1, 0, 512),
		     IDNF | ABRT);
	expect_abort(f, 0, ata(f, 0, 0x40, DISK_SECTORS, 1, 0, 0), IDNF | ABRT);
	/* PxCMD.CCS names the failed slot. */
	{
		uint8_t c[20];
		struct prd p = {DATA, 1024};

		fis_h2d(c, READ_DMA_EXT, DISK_SECTORS - 1, 2, 0);
		put_cmd(f, 0, 6, c, NULL, &p, 1, 0);
		assert_true(issue(f, 0, 6, false) & IS_TFES);
		assert_int_equal(prd_reg(f, 0, P_CMD) >> 8 & 0x1f, 6);
		assert_int_equal(prd_reg(f, 0, P_CI), 1u << 6);
		port_restart(f, 0);
	}
	/* Queued: a Set Device Bits FIS with ERR; the slot stays active. */
	put_ncq(f, 0, 9, false, DISK_SECTORS - 1, 2, DATA);
	pwr(f, 0, P_IS, ~0u);
	assert_true(issue(f, 0, 9, true) & IS_TFES);
	assert_int_equal(prd_reg(f, 0, P_SACT), 1u << 9);
	port_restart(f, 0);
	expect_ok(f, 0, ata(f, 0, READ_DMA_EXT, 0, 1, 0, 512));
	fx_free(f);
}

static void
test_dsm_hostile(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");

	(void)state;
	port_start(f, 0);
	/* One range past the end: nothing is discarded, not even the
	 * good one before it. */
	memset(f->mem + DATA, 0, 512);
	put_range(f, 0, 16, 8);
	put_range(f, 1, DISK_SECTORS - 4, 5);
	expect_abort(f, 0, ata(f, 0, DSM, 0, 1, 1, 512), IDNF | ABRT);
	assert_false(sectors_zero(f, 16, 1));
	put_range(f, 1, 0xffffffffffffULL, 0xffff);
	expect_abort(f, 0, ata(f, 0, DSM, 0, 1, 1, 512), IDNF | ABRT);
	/* Ranges in a PRDT shorter than the block count says. */
	expect_abort(f, 0, ata(f, 0, DSM, 0, 1, 1, 256), ABRT);
	/* Count 0 entries only: nothing to do. */
	memset(f->mem + DATA, 0, 512);
	put_range(f, 5, 100, 0);
	expect_ok(f, 0, ata(f, 0, DSM, 0, 1, 1, 512));
	/* The last sector, exactly. */
	put_range(f, 6, DISK_SECTORS - 1, 1);
	expect_ok(f, 0, ata(f, 0, DSM, 0, 1, 1, 512));
	assert_true(sectors_zero(f, DISK_SECTORS - 1, 1));
	fx_free(f);
}

static void
test_bad_fis_area(void **state)
{
	struct fx *f = fx_new("ahci-hd,IMG");

	(void)state;
	port_start(f, 0);
	pwr(f, 0, P_CMD, CMD_SUD);
	pwr(f, 0, P_FB,
	    (uint32_t)MEMSIZE); /* 256-byte aligned: just past RAM */
	pwr(f, 0, P_CMD, CMD_FRE | CMD_ST);
	pwr(f, 0, P_IS, ~0u);
	expect_fatal(f, 0, ata(f, 0, READ_DMA_EXT, 0, 1, 0, 512), IS_HBFS);
	/* Without FIS reception nothing is written, and all works. */
	pwr(f, 0, P_CMD, CMD_ST);
	expect_ok(f, 0, ata(f, 0, READ_DMA_EXT, 0, 1, 0, 512));
	assert_int_equal(prd_reg(f, 0, P_CMD) & CMD_FR, 0);
	fx_free(f);
}

/* A 16 MiB image with a tag at each sector (only where looked at). */
static void
big_image(struct fx *f)
{
	FILE *fp = fopen(f->image, "r+");

	assert_non_null(fp);
	assert_int_equal(ftruncate(fileno(fp), 16 << 20), 0);
	for (int s = 0; s < 32768; s += 4096) {
		fseek(fp, (long)s * 512, SEEK_SET);
		fwrite(&s, sizeof(s), 1, fp);
	}
	fclose(fp);
}

/* A slot issued again while its request is in flight waits for it. */
static void
test_slot_reissue(void **state)
{
	struct fx *f = fx_alloc();
	struct prd p[4];
	uint8_t c[20];

	(void)state;
	big_image(f);
	assert_int_equal(fx_init(f, "ahci-hd,IMG"), 0);
	fx_found(f);
	port_start(f, 0);
	for (int r = 0; r < 3; r++) {
		for (int i = 0; i < 4; i++)
			p[i] =
			    (struct prd){DATA + ((uint64_t)i << 22), 4 << 20};
		fis_h2d(c, READ_FPDMA, 0, 0, 32768);
		put_cmd(f, 0, 0, c, NULL, p, 4, 0);
		memset(f->mem + DATA, 0, 16 << 20);
		pwr(f, 0, P_SACT, 1);
		pwr(f, 0, P_CI, 1);
		/* Slot 0 again at once, now reading sector 7 elsewhere. */
		put_ncq(f, 0, 0, false, 4096 * 3, 1, DATA2);
		memset(f->mem + DATA2, 0, 512);
		pwr(f, 0, P_SACT, 1);
		pwr(f, 0, P_CI, 1);
		assert_true(wait_reg(f, 0, P_SACT, 1, 0));
		assert_true(wait_reg(f, 0, P_CI, 1, 0));
		assert_true(wait_reg(f, 0, P_SACT, 1, 0));
		assert_int_equal(prd_reg(f, 0, P_IS) & IS_ERRS, 0);
		/* Give the second one time to land if the first was slow. */
		for (int i = 0; i < 5000 && sector_tag(f, DATA2) != 4096 * 3;
		     i++)
			usleep(1000);
		assert_int_equal(sector_tag(f, DATA2), 4096 * 3);
		assert_int_equal(sector_tag(f, DATA + 4096 * 512 * 7),
				 4096 * 7);
		/* Idle again (CR drops once nothing is in flight) before
		 * the next round rewrites slot 0. */
		port_restart(f, 0);
	}
	fx_free(f);
}

/* ST cleared or the HBA reset while a request is in flight. */
static void
test_stop_in_flight(void **state)
{
	struct fx *f = fx_alloc();
	struct prd p[4], q = {DATA2, 512};
	uint8_t c[20];

	(void)state;
	big_image(f);
	assert_int_equal(fx_init(f, "ahci-hd,IMG"), 0);
	fx_found(f);
	for (int i = 0; i < 4; i++)
		p[i] = (struct prd){DATA + ((uint64_t)i << 22), 4 << 20};
	for (int r = 0; r < 4; r++) {
		port_start(f, 0);
		fis_h2d(c, READ_DMA_EXT, 0, 32768, 0);
		put_cmd(f, 0, 0, c, NULL, p, 4, 0);
		pwr(f, 0, P_CI, 1);
		if (r % 2 == 0)
			pwr(f, 0, P_CMD, CMD_FRE); /* ST off */
		else
			wr(f, GHC, 1); /* HBA reset */
		assert_int_equal(prd_reg(f, 0, P_CI), 0);
		assert_true(wait_reg(f, 0, P_CMD, CMD_CR, 0));
		/* The old command ends unreported. */
		assert_int_equal(prd_reg(f, 0, P_IS) & IS_DHRS, 0);
		assert_int_equal(prdbc(f, 0, 0), 0);
		port_start(f, 0);
		memset(f->mem + DATA2, 0, 512);
		fis_h2d(c, READ_DMA_EXT, 4096, 1, 0);
		put_cmd(f, 0, 1, c, NULL, &q, 1, 0);
		expect_ok(f, 0, issue(f, 0, 1, false));
		assert_int_equal(sector_tag(f, DATA2), 4096);
	}
	fx_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pci_identity),
	    cmocka_unit_test(test_register_access),
	    cmocka_unit_test(test_identify),
	    cmocka_unit_test(test_read_write),
	    cmocka_unit_test(test_nocache),
	    cmocka_unit_test(test_ncq),
	    cmocka_unit_test(test_flush_trim),
	    cmocka_unit_test(test_set_features),
	    cmocka_unit_test(test_read_log),
	    cmocka_unit_test(test_misc_commands),
	    cmocka_unit_test(test_atapi_identify),
	    cmocka_unit_test(test_atapi_read),
	    cmocka_unit_test(test_atapi_toc),
	    cmocka_unit_test(test_atapi_mmc),
	    cmocka_unit_test(test_atapi_lengths),
	    cmocka_unit_test(test_multiport),
	    cmocka_unit_test(test_interrupts),
	    cmocka_unit_test(test_resets),
	    cmocka_unit_test(test_legacy_config),
	    cmocka_unit_test(test_options),
	    cmocka_unit_test(test_image_size),
	    cmocka_unit_test(test_default_serial),
	    cmocka_unit_test(test_read_only),
	    cmocka_unit_test(test_io_errors),
	    cmocka_unit_test(test_bad_command_list),
	    cmocka_unit_test(test_bad_command_table),
	    cmocka_unit_test(test_bad_fis),
	    cmocka_unit_test(test_bad_prds),
	    cmocka_unit_test(test_prdt_sizes),
	    cmocka_unit_test(test_prdt_fragmented),
	    cmocka_unit_test(test_lba_range),
	    cmocka_unit_test(test_dsm_hostile),
	    cmocka_unit_test(test_bad_fis_area),
	    cmocka_unit_test(test_slot_reissue),
	    cmocka_unit_test(test_stop_in_flight),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
