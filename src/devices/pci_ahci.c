/*
 * AHCI host bus adapter (Serial ATA AHCI 1.3.1) with SATA disks and ATAPI
 * DVD-ROM drives on its ports, as bhyve's pci_ahci.c:
 *
 *   -s SLOT,ahci-hd,PATH[,opt...]    a controller with a disk on port 0
 *   -s SLOT,ahci-cd,PATH[,opt...]    a controller with a DVD-ROM on port 0
 *   -s SLOT,ahci,hd:PATH[,opt...],cd:PATH[,opt...],...   ports 0, 1, ...
 *
 * Settings live under pci.B.S.F.port.N (bhyve_config(5)): type (hd or cd),
 * path, the block backend's ro, nocache, direct, sectorsize and nodelete,
 * and nmrr (IDENTIFY word 217), ser, rev and model.
 *
 * The guest builds everything in its own memory: per port a list of 32
 * command headers and an area for received FISes; per command a table with
 * the command FIS, the ATAPI packet and the PRDT naming the data buffers.
 * Each of those is read once into a local copy and checked before use: a
 * structure outside guest RAM or a malformed PRD is a host bus fatal error
 * (PxIS.HBFS), a command FIS that is not a Register H2D FIS an interface
 * fatal error (PxIS.IFS), and a command the device refuses ends with ERR
 * in PxTFD and PxIS.TFES (AHCI 1.3.1 §6.1). Each stops the port with the
 * failed slot's PxCI bit still set (§5.3.16.5) until software clears
 * PxCMD.ST (§6.2.2); requests still in flight then finish unreported.
 *
 * Disk and DVD data go through the block backend (block_if.c, one worker
 * thread per port), straight between the image and the PRDT's buffers in
 * guest memory, at most BLOCKIF_IOV_MAX buffers per request: a longer PRDT
 * is done in several requests, one after the other.
 *
 * Locking: the vCPU threads (register accesses) and the ports' workers
 * (completions) take one mutex per controller, as bhyve does: the HBA's IS
 * register and its interrupt are shared by all ports. Completions run on
 * the worker under its seccomp filter, so that path makes no system calls
 * but futexes and the interrupt ioctls, and allocates nothing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block_if.h"
#include "byteorder.h"
#include "pci_emul.h"

#define AHCI_MAX_PORTS 32
#define AHCI_MIN_PORTS 6 /* CAP.NP as on an ICH8; PI says which exist */
#define AHCI_SLOTS 32
#define AHCI_BAR 5
#define AHCI_BAR_SIZE 8192 /* 0x100 + 32 ports * 0x80 */
#define AHCI_PORT_BASE 0x100
#define AHCI_PORT_STEP 0x80
#define AHCI_MULTI_MAX 16 /* sectors per DRQ block, READ/WRITE MULTIPLE */
#define DSM_MAX_BLOCKS 1  /* 512-byte blocks of TRIM ranges (word 105) */
#define ATAPI_BLKSZ 2048
#define ATAPI_CD_BLOCKS 360000 /* 80 minutes: larger media are DVDs */

_Static_assert(AHCI_PORT_BASE + AHCI_MAX_PORTS * AHCI_PORT_STEP <=
		   AHCI_BAR_SIZE,
	       "every port's registers fit in ABAR");
_Static_assert(AHCI_SLOTS <= 32, "PxCI and PxSACT have 32 bits");

/* Guest memory structures (AHCI 1.3.1 §4.2). */
#define CL_HDR_SIZE 32
#define HDR_CFL_MASK 0x1f
#define CT_ACMD 0x40
#define CT_PRDT 0x80
#define PRD_SIZE 16
#define PRD_DBC_MASK 0x3fffff /* byte count - 1: 22 bits, 4 MiB */
#define PRD_I (1u << 31)
#define RFIS_SIZE 256
#define RFIS_PSFIS 0x20
#define RFIS_RFIS 0x40
#define RFIS_SDBFIS 0x58

/* Generic host control (§3.1). */
#define HBA_CAP 0x00
#define HBA_GHC 0x04
#define HBA_IS 0x08
#define HBA_PI 0x0c
#define HBA_VS 0x10
#define HBA_CAP2 0x24
#define CAP_S64A (1u << 31)
#define CAP_SNCQ (1u << 30)
#define CAP_SSS (1u << 27)
#define CAP_SCLO (1u << 24)
#define CAP_ISS_GEN3 (3u << 20)
#define CAP_SAM (1u << 18)
#define CAP_NCS_SHIFT 8
#define GHC_AE (1u << 31)
#define GHC_IE (1u << 1)
#define GHC_HR (1u << 0)
#define AHCI_VERSION 0x00010301

/* Port registers (§3.3). */
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
#define P_SNTF 0x3c

#define IS_DHRS (1u << 0)
#define IS_PSS (1u << 1)
#define IS_SDBS (1u << 3)
#define IS_DPS (1u << 5)
#define IS_IFS (1u << 27)
#define IS_HBFS (1u << 29)
#define IS_TFES (1u << 30)
#define IS_W1C 0xfd8000bfu  /* all but PCS and PRCS, which mirror PxSERR */
#define IE_MASK 0xfdc000ffu /* every defined interrupt */

#define CMD_ST (1u << 0)
#define CMD_SUD (1u << 1)
#define CMD_POD (1u << 2)
#define CMD_CLO (1u << 3)
#define CMD_FRE (1u << 4)
#define CMD_CCS_SHIFT 8
#define CMD_CCS_MASK (0x1fu << CMD_CCS_SHIFT)
#define CMD_FR (1u << 14)
#define CMD_CR (1u << 15)
#define CMD_ATAPI (1u << 24)
#define CMD_DLAE (1u << 25)
#define CMD_RW                                                                 \
	(CMD_SUD | CMD_POD | CMD_ATAPI | CMD_DLAE) /* kept as written          \
						    */

#define SSTS_ONLINE 0x133 /* device present, Gen3 speed, interface active */
#define SCTL_DET_MASK 0xf
#define SCTL_DET_COMRESET 1
#define SCTL_DET_OFFLINE 4
#define SCTL_RW_MASK 0xfff /* IPM, SPD, DET */

#define SIG_ATA 0x00000101
#define SIG_ATAPI 0xeb140101

/* FIS types (SATA 3.x §10.5). */
#define FIS_H2D 0x27
#define FIS_D2H 0x34
#define FIS_SDB 0xa1
#define FIS_PIO_SETUP 0x5f
#define FIS_H2D_C 0x80 /* byte 1: a command, not a device control update */
#define FIS_I 0x40     /* byte 1 of device-to-host FISes: interrupt */
#define FIS_PIO_D 0x20 /* PIO Setup: data flows device to host */
#define CTL_SRST 0x04  /* H2D byte 15, device control: soft reset */

/* ATA status and error bits (ACS-3 §6.2, §6.3). */
#define ST_BSY 0x80
#define ST_DRDY 0x40
#define ST_DSC 0x10
#define ST_DRQ 0x08
#define ST_ERR 0x01
#define ST_OK (ST_DRDY | ST_DSC)
#define ER_UNC 0x40
#define ER_IDNF 0x10
#define ER_ABRT 0x04

/* ATA commands (ACS-3 §7). */
#define ATA_NOP 0x00
#define ATA_DSM 0x06
#define ATA_DEVICE_RESET 0x08
#define ATA_READ_LOG_EXT 0x2f
#define ATA_READ_VERIFY 0x40
#define ATA_READ_VERIFY_EXT 0x42
#define ATA_READ_LOG_DMA_EXT 0x47
#define ATA_SEEK 0x70
#define ATA_PACKET 0xa0
#define ATA_IDENTIFY_PACKET 0xa1
#define ATA_SET_MULTIPLE 0xc6
#define ATA_STANDBY_IMMEDIATE 0xe0
#define ATA_IDLE_IMMEDIATE 0xe1
#define ATA_STANDBY 0xe2
#define ATA_IDLE 0xe3
#define ATA_CHECK_POWER_MODE 0xe5
#define ATA_FLUSH_CACHE 0xe7
#define ATA_FLUSH_CACHE_EXT 0xea
#define ATA_IDENTIFY 0xec
#define ATA_SET_FEATURES 0xef

/* SET FEATURES subcommands (ACS-3 §7.45). */
#define SF_WCACHE_ON 0x02
#define SF_XFER_MODE 0x03
#define SF_RLA_OFF 0x55
#define SF_REVERT_OFF 0x66
#define SF_WCACHE_OFF 0x82
#define SF_RLA_ON 0xaa
#define SF_REVERT_ON 0xcc

/* General purpose logs (ACS-3 §9). */
#define LOG_DIRECTORY 0x00
#define LOG_NCQ_ERROR 0x10
#define LOG_IDENTIFY 0x30
#define LOG_IDENTIFY_PAGES 2 /* 00h: the list, 01h: IDENTIFY DEVICE data */

/* SCSI/MMC commands for ATAPI (SPC-3, MMC-6). */
#define SCSI_TEST_UNIT_READY 0x00
#define SCSI_REQUEST_SENSE 0x03
#define SCSI_INQUIRY 0x12
#define SCSI_MODE_SENSE_6 0x1a
#define SCSI_START_STOP 0x1b
#define SCSI_PREVENT_ALLOW 0x1e
#define SCSI_READ_CAPACITY 0x25
#define SCSI_READ_10 0x28
#define SCSI_WRITE_10 0x2a
#define SCSI_WRITE_VERIFY_10 0x2e
#define SCSI_READ_TOC 0x43
#define SCSI_GET_CONFIGURATION 0x46
#define SCSI_GET_EVENT_STATUS 0x4a
#define SCSI_MODE_SENSE_10 0x5a
#define SCSI_READ_12 0xa8
#define SCSI_WRITE_12 0xaa
#define SENSE_NONE 0x00
#define SENSE_MEDIUM_ERROR 0x03
#define SENSE_ILLEGAL_REQUEST 0x05
#define SENSE_DATA_PROTECT 0x07
#define SENSE_ABORTED 0x0b
#define ASC_INVALID_OPCODE 0x20
#define ASC_LBA_RANGE 0x21
#define ASC_INVALID_FIELD 0x24
#define ASC_WRITE_PROTECTED 0x27
#define ASC_NO_SAVING 0x39
#define ASC_REMOVAL_PREVENTED 0x53

/* How a command's data moves, decoded from its FIS. */
#define RW_WRITE 0x01
#define RW_LBA48 0x02
#define RW_NCQ 0x04
#define RW_PIO 0x08
#define RW_MULTI 0x10

struct ahci_rw_cmd {
	uint8_t cmd;
	uint8_t flags;
};

static const struct ahci_rw_cmd ahci_rw_cmds[] = {
    {0x20, RW_PIO},				     /* READ SECTORS */
    {0x24, RW_PIO | RW_LBA48},			     /* READ SECTORS EXT */
    {0x25, RW_LBA48},				     /* READ DMA EXT */
    {0x29, RW_PIO | RW_LBA48 | RW_MULTI},	     /* READ MULTIPLE EXT */
    {0x30, RW_WRITE | RW_PIO},			     /* WRITE SECTORS */
    {0x34, RW_WRITE | RW_PIO | RW_LBA48},	     /* WRITE SECTORS EXT */
    {0x35, RW_WRITE | RW_LBA48},		     /* WRITE DMA EXT */
    {0x39, RW_WRITE | RW_PIO | RW_LBA48 | RW_MULTI}, /* WRITE MULTIPLE EXT */
    {0x60, RW_NCQ | RW_LBA48},			     /* READ FPDMA QUEUED */
    {0x61, RW_WRITE | RW_NCQ | RW_LBA48},	     /* WRITE FPDMA QUEUED */
    {0xc4, RW_PIO | RW_MULTI},			     /* READ MULTIPLE */
    {0xc5, RW_WRITE | RW_PIO | RW_MULTI},	     /* WRITE MULTIPLE */
    {0xc8, 0},					     /* READ DMA */
    {0xca, RW_WRITE},				     /* WRITE DMA */
};

/* Where a command is in its PRDT (AHCI 1.3.1 §4.2.3.3). */
struct prd_cursor {
	uint64_t ctba;	/* the command table */
	uint32_t prdtl; /* its PRD count */
	uint32_t next;	/* the next PRD to read */
	uint64_t addr;	/* the current PRD: next guest address */
	uint32_t left;	/* the current PRD: bytes not used yet */
	bool dps;	/* a PRD used so far asked for PxIS.DPS */
};

enum ahci_op { OP_RW, OP_FLUSH, OP_DSM };

struct ahci_port;

/* A command slot: what was read from guest memory and how far it got. */
struct ahci_ioreq {
	struct blockif_req br;
	struct ahci_port *p;
	unsigned int gen; /* the port's generation when it started */
	int slot;
	uint8_t cfis[20]; /* the Register H2D FIS (copied once) */
	uint8_t acmd[16]; /* the ATAPI packet (copied once) */
	uint64_t hdr_gpa; /* its command header, for PRDBC */
	struct prd_cursor prd;
	bool ncq, pio, write, atapi;
	uint16_t count_out; /* the Count field the ending FIS reports */
	enum ahci_op op;
	int pieces;	/* requests queued so far */
	off_t offset;	/* the next image byte */
	uint64_t resid; /* bytes still to move */
	uint64_t chunk; /* bytes of the request in flight */
	uint64_t done;	/* bytes moved (PRDBC) */
	int blksz;	/* the command's block size */
	int dsm_next;	/* the next TRIM range entry */
	uint8_t dsm[DSM_MAX_BLOCKS * 512];
};

struct ahci_softc;

struct ahci_port {
	struct ahci_softc *sc;
	struct blockif_ctxt *bc;
	int num;
	bool atapi;
	/* Registers (AHCI 1.3.1 §3.3). */
	uint64_t clb, fb;
	uint32_t is, ie, cmd, tfd, sig, ssts, sctl, serr, sact, ci;
	/* Command processing. */
	uint32_t busy;	  /* slots whose requests the backend holds */
	unsigned int gen; /* bumped when PxCMD.ST clears or the port resets */
	bool halted;	  /* an error stopped the port until ST clears */
	bool srst;	  /* a soft reset's first FIS came (SRST set) */
	int last_slot;	  /* where the search for issued slots resumes */
	/* The device. */
	uint64_t blocks; /* capacity in logical sectors (hd), 2048 B (cd) */
	int sectsz;
	bool trim;
	uint16_t ident[256];	   /* IDENTIFY (PACKET) DEVICE data */
	uint16_t ident_reset[256]; /* the same after power-on or a reset */
	uint8_t ncq_log[512];
	bool ncq_err; /* ncq_log holds an unread error */
	uint8_t sense_key, asc;
	bool prevent; /* PREVENT ALLOW MEDIUM REMOVAL */
	struct ahci_ioreq io[AHCI_SLOTS];
};

struct ahci_softc {
	struct pci_devinst *pi;
	pthread_mutex_t mtx;
	uint32_t cap, ghc, is, ports_impl;
	bool lintr;
	struct ahci_port *port[AHCI_MAX_PORTS];
};

static const struct pci_devemu pci_de_ahci;

static void ahci_port_run(struct ahci_port *p);

static struct vmctx *
ahci_ctx(struct ahci_port *p)
{
	return p->sc->pi->pi_vmctx;
}

static uint64_t
min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static void
be16_put(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static void
be32_put(uint8_t *b, uint32_t v)
{
	be16_put(b, (uint16_t)(v >> 16));
	be16_put(b + 2, (uint16_t)v);
}

static uint16_t
be16_get(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static uint32_t
be32_get(const uint8_t *b)
{
	return (uint32_t)be16_get(b) << 16 | be16_get(b + 2);
}

/* ---- interrupts (AHCI 1.3.1 §10.6) ---- */

/* INTx follows IS while GHC.IE is set and MSI is off (level-triggered). */
static void
ahci_intx_update(struct ahci_softc *sc)
{
	bool level = (sc->ghc & GHC_IE) && sc->is && !pci_msi_enabled(sc->pi);

	if (level == sc->lintr)
		return;
	sc->lintr = level;
	if (level)
		pci_lintr_assert(sc->pi);
	else
		pci_lintr_deassert(sc->pi);
}

/* The port has an enabled interrupt pending: IS.IPS, then MSI or INTx. */
static void
ahci_port_signal(struct ahci_port *p)
{
	struct ahci_softc *sc = p->sc;

	sc->is |= 1u << p->num;
	if ((sc->ghc & GHC_IE) && pci_msi_enabled(sc->pi))
		pci_generate_msi(sc->pi, 0); /* one message per event */
	ahci_intx_update(sc);
}

/* Set PxIS bits; an enabled one interrupts. */
static void
ahci_raise(struct ahci_port *p, uint32_t bits)
{
	p->is |= bits;
	if (bits & p->ie)
		ahci_port_signal(p);
}

/* ---- received FISes (AHCI 1.3.1 §4.2.1, SATA 3.x §10.5) ---- */

/*
 * Copy a FIS into the received-FIS area while FIS reception is on; false
 * when PxFB is outside RAM, a bad software pointer (§6.1.2): the port
 * stops and the command stays issued.
 */
static bool
ahci_post_fis(struct ahci_port *p, unsigned int off, const uint8_t *fis,
	      size_t len)
{
	uint8_t *rf;

	if (!(p->cmd & CMD_FRE))
		return true;
	rf = vm_map_gpa(ahci_ctx(p), p->fb, RFIS_SIZE);
	if (!rf) {
		p->halted = true;
		ahci_raise(p, IS_HBFS);
		return false;
	}
	memcpy(rf + off, fis, len);
	return true;
}

/* LBA, device and count of a device-to-host FIS from the command's. */
static void
fis_echo(uint8_t *fis, const uint8_t *cfis, uint16_t count)
{
	memcpy(fis + 4, cfis + 4, 7); /* LBA 23:0, device, LBA 47:24 */
	le16_put(fis + 12, count);
}

/* A Register D2H FIS: PxTFD takes its status and error. */
static bool
ahci_d2h(struct ahci_port *p, const uint8_t *cfis, uint8_t status,
	 uint8_t error, uint16_t count, bool irq)
{
	uint8_t fis[20] = {FIS_D2H, irq ? FIS_I : 0, status, error};

	fis_echo(fis, cfis, count);
	p->tfd = (uint32_t)error << 8 | status;
	return ahci_post_fis(p, RFIS_RFIS, fis, sizeof(fis));
}

/* A PIO Setup FIS ending a PIO command; E_Status is its final status. */
static bool
ahci_pio_setup(struct ahci_port *p, const struct ahci_ioreq *io, uint8_t status)
{
	uint8_t fis[20] = {FIS_PIO_SETUP, FIS_I | (io->write ? 0 : FIS_PIO_D),
			   status | ST_DRQ};

	fis_echo(fis, io->cfis, io->count_out);
	fis[15] = status;
	le16_put(fis + 16, (uint16_t)min_u64(io->done, 0xfffe));
	return ahci_post_fis(p, RFIS_PSFIS, fis, sizeof(fis));
}

/*
 * A Set Device Bits FIS for a queued command (SATA 3.x §13.6.4): status
 * bits 6:4 and 2:0 and the error go to PxTFD; on success the SActive bit
 * clears the slot's PxSACT bit.
 */
static bool
ahci_sdb(struct ahci_port *p, int slot, uint8_t status, uint8_t error)
{
	uint8_t fis[8] = {FIS_SDB, FIS_I, status & 0x77, error};

	if (!(status & ST_ERR))
		le32_put(fis + 4, 1u << slot);
	p->tfd = (uint32_t)error << 8 | (p->tfd & 0x88) | (status & 0x77);
	if (!ahci_post_fis(p, RFIS_SDBFIS, fis, sizeof(fis)))
		return false;
	if (!(status & ST_ERR))
		p->sact &= ~(1u << slot);
	return true;
}

/* The device's signature after a reset (SATA 3.x §11.3, ACS-3 §9.12). */
static bool
ahci_signature(struct ahci_port *p)
{
	uint8_t status = p->atapi ? 0 : ST_OK;
	uint8_t fis[20] = {FIS_D2H, 0, status, 0x01, 0x01};

	p->sig = p->atapi ? SIG_ATAPI : SIG_ATA;
	fis[5] = (uint8_t)(p->sig >> 16);
	fis[6] = (uint8_t)(p->sig >> 24);
	fis[12] = 0x01;
	p->tfd = 0x0100 | status;
	return ahci_post_fis(p, RFIS_RFIS, fis, sizeof(fis));
}

/* ---- the PRDT ---- */

enum { PRD_OK, PRD_END, PRD_BAD };

/* Read the next PRD once and check it (AHCI 1.3.1 §4.2.3.3). */
static int
prd_load(struct vmctx *ctx, struct prd_cursor *c)
{
	uint8_t prd[PRD_SIZE];
	const uint8_t *g;
	uint32_t dw3;

	if (c->next >= c->prdtl)
		return PRD_END;
	g = vm_map_gpa(ctx, c->ctba + CT_PRDT + (uint64_t)c->next * PRD_SIZE,
		       PRD_SIZE);
	if (!g)
		return PRD_BAD;
	memcpy(prd, g, sizeof(prd));
	c->next++;
	dw3 = le32_get(prd + 12);
	/* DBC is the count minus one and bit 0 must be set: even counts. */
	if (!(dw3 & 1))
		return PRD_BAD;
	c->addr = le64_get(prd) & ~1ULL; /* DBA bit 0 is reserved */
	c->left = (dw3 & PRD_DBC_MASK) + 1;
	c->dps |= (dw3 & PRD_I) != 0;
	return PRD_OK;
}

static int
prd_ready(struct vmctx *ctx, struct prd_cursor *c)
{
	return c->left ? PRD_OK : prd_load(ctx, c);
}

/* The next n bytes of the current PRD as host memory (n <= c->left). */
static int
prd_map(struct vmctx *ctx, struct prd_cursor *c, size_t n, struct iovec *iov)
{
	void *h = vm_map_gpa(ctx, c->addr, n);

	if (!h)
		return PRD_BAD;
	iov->iov_base = h;
	iov->iov_len = n;
	c->addr += n;
	c->left -= (uint32_t)n;
	return PRD_OK;
}

/*
 * Move up to len bytes between buf and the command's buffers; the bytes
 * moved (fewer when the PRDT ends first), or -1 for a bad PRD.
 */
static ssize_t
prdt_copy(struct ahci_port *p, struct ahci_ioreq *io, void *buf, size_t len,
	  bool to_guest)
{
	struct vmctx *ctx = ahci_ctx(p);
	uint8_t *b = buf;
	struct iovec iov;
	size_t done = 0;
	int rc;

	while (done < len) {
		rc = prd_ready(ctx, &io->prd);
		if (rc == PRD_END)
			break;
		if (rc != PRD_OK ||
		    prd_map(ctx, &io->prd, min_u64(io->prd.left, len - done),
			    &iov) != PRD_OK)
			return -1;
		if (to_guest)
			memcpy(iov.iov_base, b + done, iov.iov_len);
		else
			memcpy(b + done, iov.iov_base, iov.iov_len);
		done += iov.iov_len;
	}
	return (ssize_t)done;
}

/* ---- ending commands ---- */

/* PxCMD.CCS: the slot being processed, or the one that failed (§3.3.7). */
static void
ahci_set_ccs(struct ahci_port *p, int slot)
{
	p->cmd = (p->cmd & ~CMD_CCS_MASK) | (uint32_t)slot << CMD_CCS_SHIFT;
}

static void
ahci_set_prdbc(struct ahci_port *p, struct ahci_ioreq *io)
{
	uint8_t *h = vm_map_gpa(ahci_ctx(p), io->hdr_gpa + 4, 4);

	/* Mapped when the header was read: guest RAM does not move. */
	if (h)
		le32_put(h, (uint32_t)io->done);
}

/* Interrupt bits for the end of a command (DPS if a PRD asked). */
static uint32_t
ahci_dps(const struct ahci_ioreq *io)
{
	return io->prd.dps ? IS_DPS : 0;
}

/*
 * A non-queued command ends: its status in a Register D2H FIS. Success
 * clears the slot's PxCI bit; ERR leaves it set and stops the port
 * (AHCI 1.3.1 §5.3.8 RegFIS:ClearCI, §5.3.16.5 ERR:FatalTaskfile).
 */
static void
ahci_finish(struct ahci_port *p, struct ahci_ioreq *io, uint8_t status,
	    uint8_t error)
{
	uint32_t irq = IS_DHRS | ahci_dps(io);

	ahci_set_prdbc(p, io);
	if (io->pio && !(status & ST_ERR)) {
		if (!ahci_pio_setup(p, io, status))
			return;
		irq |= IS_PSS;
	}
	if (!ahci_d2h(p, io->cfis, status, error, io->count_out, true))
		return;
	if (status & ST_ERR) {
		ahci_set_ccs(p, io->slot);
		p->halted = true;
		irq |= IS_TFES;
	} else {
		p->ci &= ~(1u << io->slot);
	}
	ahci_raise(p, irq);
}

/* Record a failed queued command in the NCQ Command Error log (10h). */
static void
ahci_ncq_log(struct ahci_port *p, const struct ahci_ioreq *io, uint8_t error)
{
	uint8_t *l = p->ncq_log, sum = 0;

	memset(l, 0, sizeof(p->ncq_log));
	l[0] = (uint8_t)io->slot; /* NQ clear: a queued command's tag */
	l[2] = ST_DRDY | ST_ERR;
	l[3] = error;
	memcpy(l + 4, io->cfis + 4, 7);
	memcpy(l + 12, io->cfis + 12, 2);
	for (int i = 0; i < 511; i++)
		sum += l[i];
	l[511] = (uint8_t)-sum;
	p->ncq_err = true;
}

/*
 * A queued command ends (SATA 3.x §13.6.4): a Set Device Bits FIS; on an
 * error the port stops and the error log says which tag failed.
 */
static void
ahci_ncq_finish(struct ahci_port *p, struct ahci_ioreq *io, uint8_t status,
		uint8_t error)
{
	uint32_t irq = IS_SDBS | ahci_dps(io);

	if (!ahci_sdb(p, io->slot, status, error))
		return;
	if (status & ST_ERR) {
		ahci_ncq_log(p, io, error);
		p->halted = true;
		irq |= IS_TFES;
	}
	ahci_raise(p, irq);
}

/* The device refused or failed an ATA command. */
static void
ahci_fail(struct ahci_port *p, struct ahci_ioreq *io, uint8_t error)
{
	if (io->ncq)
		ahci_ncq_finish(p, io, ST_DRDY | ST_ERR, error);
	else
		ahci_finish(p, io, ST_DRDY | ST_ERR, error);
}

static void
ahci_ok(struct ahci_port *p, struct ahci_ioreq *io)
{
	if (io->ncq)
		ahci_ncq_finish(p, io, ST_OK, 0);
	else
		ahci_finish(p, io, ST_OK, 0);
}

/*
 * The HBA cannot go on with the command (HBFS: a structure outside RAM or
 * a malformed PRD; IFS: a bad command FIS): the port stops with PxCI set
 * and PxCMD.CCS naming the slot (AHCI 1.3.1 §6.1.2).
 */
static void
ahci_fatal(struct ahci_port *p, const struct ahci_ioreq *io, uint32_t bit)
{
	ahci_set_ccs(p, io->slot);
	p->halted = true;
	ahci_raise(p, bit);
}

/* ---- ATAPI endings (ATA8-ACS PACKET, SPC-3 sense) ---- */

static void
atapi_good(struct ahci_port *p, struct ahci_ioreq *io)
{
	p->sense_key = SENSE_NONE;
	p->asc = 0;
	io->count_out = 0x03; /* interrupt reason: I/O and C/D */
	ahci_finish(p, io, ST_OK, 0);
}

/* CHECK CONDITION: the sense key in the error register's top nibble. */
static void
atapi_check(struct ahci_port *p, struct ahci_ioreq *io, uint8_t key,
	    uint8_t asc)
{
	p->sense_key = key;
	p->asc = asc;
	io->count_out = 0x03;
	ahci_finish(p, io, ST_DRDY | ST_ERR, (uint8_t)(key << 4));
}

/* ---- requests to the block backend ---- */

enum { Q_DONE = 0, Q_QUEUED = 1, Q_FAILED = -1 };

/* A request failed in the backend (err is an errno value). */
static void
ahci_io_error(struct ahci_port *p, struct ahci_ioreq *io, int err)
{
	if (io->atapi)
		atapi_check(p, io, SENSE_MEDIUM_ERROR, 0x11);
	else if (io->write || io->op != OP_RW || err == EROFS)
		ahci_fail(p, io, ER_ABRT);
	else
		ahci_fail(p, io, ER_UNC);
}

/* The PRDT holds less than the transfer: the command is aborted. */
static void
ahci_short_prdt(struct ahci_port *p, struct ahci_ioreq *io)
{
	if (io->atapi)
		atapi_check(p, io, SENSE_ABORTED, 0);
	else
		ahci_fail(p, io, ER_ABRT);
}

/*
 * The next piece of a read or write: up to BLOCKIF_IOV_MAX buffers from
 * the PRDT. When more pieces follow, the last buffer is cut so the piece
 * ends on a sector boundary where it can: an O_DIRECT (nocache) image
 * takes whole sectors at sector offsets only, and a PRDT too fragmented
 * for that fails there (EINVAL, an aborted command) rather than here.
 */
static int
ahci_rw_queue(struct ahci_port *p, struct ahci_ioreq *io)
{
	struct blockif_req *br = &io->br;
	struct vmctx *ctx = ahci_ctx(p);
	uint64_t total = 0, n, r;
	int k = 0, rc = PRD_OK;

	while (total < io->resid && k < BLOCKIF_IOV_MAX) {
		rc = prd_ready(ctx, &io->prd);
		if (rc != PRD_OK)
			break;
		n = min_u64(io->prd.left, io->resid - total);
		if (k == BLOCKIF_IOV_MAX - 1 && total + n < io->resid) {
			r = (total + n) % (uint64_t)io->blksz;
			if (r < n)
				n -= r;
		}
		rc = prd_map(ctx, &io->prd, n, &br->br_iov[k]);
		if (rc != PRD_OK)
			break;
		total += n;
		k++;
	}
	if (rc == PRD_BAD) {
		ahci_fatal(p, io, IS_HBFS);
		return Q_FAILED;
	}
	if (rc == PRD_END) {
		ahci_short_prdt(p, io);
		return Q_FAILED;
	}
	br->br_iovcnt = k;
	br->br_offset = io->offset;
	br->br_resid = (ssize_t)total;
	io->chunk = total;
	rc = io->write ? blockif_write(p->bc, br) : blockif_read(p->bc, br);
	if (rc) {
		ahci_io_error(p, io, rc);
		return Q_FAILED;
	}
	return Q_QUEUED;
}

static uint64_t
dsm_entry(const struct ahci_ioreq *io, int i, uint64_t *count)
{
	uint64_t e = le64_get(io->dsm + 8 * i);

	*count = e >> 48;
	return e & 0xffffffffffffULL;
}

/* The next TRIM range, joined with the contiguous ones after it. */
static int
ahci_dsm_queue(struct ahci_port *p, struct ahci_ioreq *io)
{
	int nent = (int)sizeof(io->dsm) / 8, rc;
	uint64_t lba = 0, count = 0, l, c;

	while (io->dsm_next < nent && count == 0)
		lba = dsm_entry(io, io->dsm_next++, &count);
	if (count == 0)
		return Q_DONE;
	while (io->dsm_next < nent &&
	       (l = dsm_entry(io, io->dsm_next, &c)) == lba + count && c) {
		count += c;
		io->dsm_next++;
	}
	io->br.br_iovcnt = 0;
	io->br.br_offset = (off_t)(lba * (uint64_t)p->sectsz);
	io->br.br_resid = (ssize_t)(count * (uint64_t)p->sectsz);
	io->chunk = 0;
	rc = blockif_delete(p->bc, &io->br);
	if (rc) {
		ahci_io_error(p, io, rc);
		return Q_FAILED;
	}
	return Q_QUEUED;
}

static int
ahci_flush_queue(struct ahci_port *p, struct ahci_ioreq *io)
{
	int rc;

	if (io->pieces)
		return Q_DONE;
	io->br.br_iovcnt = 0;
	io->br.br_offset = 0;
	io->br.br_resid = 0;
	io->chunk = 0;
	rc = blockif_flush(p->bc, &io->br);
	if (rc) {
		ahci_io_error(p, io, rc);
		return Q_FAILED;
	}
	return Q_QUEUED;
}

/* Queue the command's next request, or report it done. */
static int
ahci_io_queue(struct ahci_port *p, struct ahci_ioreq *io)
{
	int rc;

	switch (io->op) {
	case OP_RW:
		rc = io->resid ? ahci_rw_queue(p, io) : Q_DONE;
		break;
	case OP_FLUSH:
		rc = ahci_flush_queue(p, io);
		break;
	default:
		rc = ahci_dsm_queue(p, io);
		break;
	}
	if (rc == Q_QUEUED)
		io->pieces++;
	else if (rc == Q_DONE && io->atapi)
		atapi_good(p, io);
	else if (rc == Q_DONE)
		ahci_ok(p, io);
	return rc;
}

/* Hand a command to the backend; the slot is busy until it comes back. */
static void
ahci_io_start(struct ahci_port *p, struct ahci_ioreq *io, enum ahci_op op)
{
	io->op = op;
	io->pieces = 0;
	io->chunk = 0;
	p->busy |= 1u << io->slot;
	if (ahci_io_queue(p, io) != Q_QUEUED)
		p->busy &= ~(1u << io->slot);
}

/* PxCMD.CR stays set while requests are in flight after ST clears. */
static void
ahci_check_stopped(struct ahci_port *p)
{
	if (!(p->cmd & CMD_ST) && !p->busy)
		p->cmd &= ~CMD_CR;
}

/*
 * The backend finished a request (on its worker thread). A command from
 * before a reset or ST clearing, or from a port an error stopped, ends
 * unreported: the guest has given up on it (AHCI 1.3.1 §6.2.2).
 */
static void
ahci_io_done(struct blockif_req *br, int err)
{
	struct ahci_ioreq *io = br->br_param;
	struct ahci_port *p = io->p;
	int rc = Q_FAILED;

	pthread_mutex_lock(&p->sc->mtx);
	if (io->gen == p->gen && !p->halted) {
		if (err) {
			ahci_io_error(p, io, err);
		} else {
			io->done += io->chunk;
			io->offset += (off_t)io->chunk;
			io->resid -= io->chunk;
			rc = ahci_io_queue(p, io);
		}
	}
	if (rc != Q_QUEUED) {
		p->busy &= ~(1u << io->slot);
		ahci_check_stopped(p);
		ahci_port_run(p);
	}
	pthread_mutex_unlock(&p->sc->mtx);
}

/* ---- ATA commands (ACS-3 §7) ---- */

/* Fill in word 255: signature A5h and a checksum (ACS-3 §7.12.7.91). */
static void
ident_checksum(uint16_t *w)
{
	uint8_t sum = 0xa5;

	for (int i = 0; i < 255; i++)
		sum += (uint8_t)w[i] + (uint8_t)(w[i] >> 8);
	w[255] = (uint16_t)(0xa5 | (uint8_t)-sum << 8);
}

static void
ident_bytes(struct ahci_port *p, uint8_t *buf)
{
	ident_checksum(p->ident);
	for (int i = 0; i < 256; i++)
		le16_put(buf + 2 * i, p->ident[i]);
}

/* A data-in command's data (at most 1 KiB): all of it or an abort. */
static void
ata_data_in(struct ahci_port *p, struct ahci_ioreq *io, const void *buf,
	    size_t len)
{
	ssize_t n = prdt_copy(p, io, (void *)buf, len, true);

	if (n < 0) {
		ahci_fatal(p, io, IS_HBFS);
		return;
	}
	io->done = (uint64_t)n;
	if ((size_t)n < len) {
		ahci_short_prdt(p, io);
		return;
	}
	ahci_ok(p, io);
}

static void
ata_identify(struct ahci_port *p, struct ahci_ioreq *io)
{
	uint8_t buf[512];

	io->pio = true;
	ident_bytes(p, buf);
	ata_data_in(p, io, buf, sizeof(buf));
}

/* An ATAPI device aborts IDENTIFY DEVICE with its signature (ACS-3). */
static void
atapi_abort_identify(struct ahci_port *p, struct ahci_ioreq *io)
{
	io->cfis[4] = 0x01;
	io->cfis[5] = (uint8_t)(SIG_ATAPI >> 16);
	io->cfis[6] = (uint8_t)(SIG_ATAPI >> 24);
	io->count_out = 0x01;
	ahci_fail(p, io, ER_ABRT);
}

static uint64_t
cfis_lba48(const uint8_t *c)
{
	return (uint64_t)c[4] | (uint64_t)c[5] << 8 | (uint64_t)c[6] << 16 |
	       (uint64_t)c[8] << 24 | (uint64_t)c[9] << 32 |
	       (uint64_t)c[10] << 40;
}

static uint64_t
cfis_lba28(const uint8_t *c)
{
	return (uint64_t)c[4] | (uint64_t)c[5] << 8 | (uint64_t)c[6] << 16 |
	       (uint64_t)(c[7] & 0x0f) << 24;
}

/* Sector count: 0 means 256 (28-bit) or 65536 (48-bit, NCQ). */
static uint32_t
ata_count(const uint8_t *c, uint8_t flags)
{
	uint32_t n;

	if (flags & RW_NCQ)
		n = c[3] | (uint32_t)c[11] << 8;
	else if (flags & RW_LBA48)
		n = c[12] | (uint32_t)c[13] << 8;
	else
		n = c[12];
	if (n == 0)
		n = flags & (RW_NCQ | RW_LBA48) ? 65536 : 256;
	return n;
}

static bool
ata_range_ok(struct ahci_port *p, uint64_t lba, uint64_t count)
{
	return lba <= p->blocks && count <= p->blocks - lba;
}

static const struct ahci_rw_cmd *
ata_rw_find(uint8_t cmd)
{
	for (size_t i = 0; i < sizeof(ahci_rw_cmds) / sizeof(ahci_rw_cmds[0]);
	     i++)
		if (ahci_rw_cmds[i].cmd == cmd)
			return &ahci_rw_cmds[i];
	return NULL;
}

/*
 * A queued command is accepted at once: a Register D2H FIS without an
 * interrupt clears its PxCI bit; it ends later with a Set Device Bits FIS
 * (SATA 3.x §13.6.2; AHCI 1.3.1 §5.3.8). The FIS's tag is the slot: AHCI
 * requires software to use the slot number as the tag.
 */
static bool
ata_ncq_accept(struct ahci_port *p, struct ahci_ioreq *io)
{
	io->ncq = true;
	if (!ahci_d2h(p, io->cfis, ST_OK, 0, io->count_out, false))
		return false;
	p->ci &= ~(1u << io->slot);
	return true;
}

/* READ/WRITE DMA, SECTORS, MULTIPLE (28 and 48-bit) and FPDMA QUEUED. */
static void
ata_rw(struct ahci_port *p, struct ahci_ioreq *io, uint8_t flags)
{
	uint64_t lba =
	    flags & RW_LBA48 ? cfis_lba48(io->cfis) : cfis_lba28(io->cfis);
	uint32_t count = ata_count(io->cfis, flags);

	if ((flags & RW_NCQ) && !ata_ncq_accept(p, io))
		return;
	io->write = flags & RW_WRITE;
	io->pio = flags & RW_PIO;
	if ((flags & RW_MULTI) && !(p->ident[59] & 0x100)) {
		ahci_fail(p, io, ER_ABRT); /* no SET MULTIPLE yet */
		return;
	}
	if (io->write && blockif_is_ro(p->bc)) {
		ahci_fail(p, io, ER_ABRT);
		return;
	}
	if (!ata_range_ok(p, lba, count)) {
		ahci_fail(p, io, ER_IDNF | ER_ABRT);
		return;
	}
	io->blksz = p->sectsz;
	io->offset = (off_t)(lba * (uint64_t)p->sectsz);
	io->resid = (uint64_t)count * (uint64_t)p->sectsz;
	io->done = 0;
	ahci_io_start(p, io, OP_RW);
}

static void
ata_flush(struct ahci_port *p, struct ahci_ioreq *io)
{
	ahci_io_start(p, io, OP_FLUSH);
}

/*
 * DATA SET MANAGEMENT with TRIM (ACS-3 §7.5): the ranges come in the data,
 * 8 bytes each (LBA 47:0, count 63:48; count 0 is an unused entry). Every
 * range is checked before any is discarded.
 */
static void
ata_dsm(struct ahci_port *p, struct ahci_ioreq *io)
{
	uint32_t blocks = io->cfis[12] | (uint32_t)io->cfis[13] << 8;
	uint64_t lba, count;
	ssize_t n;

	if (!p->trim || !(io->cfis[3] & 0x01) || blocks == 0 ||
	    blocks > DSM_MAX_BLOCKS) {
		ahci_fail(p, io, ER_ABRT);
		return;
	}
	memset(io->dsm, 0, sizeof(io->dsm));
	n = prdt_copy(p, io, io->dsm, blocks * 512u, false);
	if (n < 0) {
		ahci_fatal(p, io, IS_HBFS);
		return;
	}
	io->done = (uint64_t)n;
	if ((size_t)n < blocks * 512u) {
		ahci_short_prdt(p, io);
		return;
	}
	for (int i = 0; i < (int)(blocks * 512 / 8); i++) {
		lba = dsm_entry(io, i, &count);
		if (count && !ata_range_ok(p, lba, count)) {
			ahci_fail(p, io, ER_IDNF | ER_ABRT);
			return;
		}
	}
	io->dsm_next = 0;
	ahci_io_start(p, io, OP_DSM);
}

/* SET FEATURES: transfer mode selects a mode in words 63 and 88. */
static bool
ata_set_xfer(struct ahci_port *p, uint8_t mode)
{
	uint16_t *w = p->ident;

	if (mode <= 0x01 || (mode >= 0x08 && mode <= 0x0c))
		return true; /* PIO default, PIO 0-4 */
	if (mode >= 0x20 && mode <= 0x22) {
		w[63] = (uint16_t)((w[63] & 0xff) | 0x100 << (mode & 7));
		w[88] &= 0xff;
		return true;
	}
	if (mode >= 0x40 && mode <= 0x46) {
		w[88] = (uint16_t)((w[88] & 0xff) | 0x100 << (mode & 7));
		w[63] &= 0xff;
		return true;
	}
	return false;
}

/*
 * SET FEATURES (ACS-3 §7.45). The write cache bit is reported only:
 * writes go to the host's page cache either way, and the image's 'direct'
 * option makes them write-through.
 */
static void
ata_set_features(struct ahci_port *p, struct ahci_ioreq *io)
{
	uint16_t *w = p->ident;
	bool ok = true;

	switch (io->cfis[3]) {
	case SF_WCACHE_ON:
	case SF_WCACHE_OFF:
		if (p->atapi)
			ok = false;
		else if (io->cfis[3] == SF_WCACHE_ON)
			w[85] |= 1 << 5;
		else
			w[85] &= ~(1 << 5);
		break;
	case SF_RLA_ON:
	case SF_RLA_OFF:
		if (p->atapi)
			ok = false;
		else if (io->cfis[3] == SF_RLA_ON)
			w[85] |= 1 << 6;
		else
			w[85] &= ~(1 << 6);
		break;
	case SF_XFER_MODE:
		ok = ata_set_xfer(p, io->cfis[12]);
		break;
	case SF_REVERT_OFF:
	case SF_REVERT_ON:
		break;
	default:
		ok = false;
		break;
	}
	if (ok)
		ahci_ok(p, io);
	else
		ahci_fail(p, io, ER_ABRT);
}

/* SET MULTIPLE MODE: 0 turns it off, else a power of 2 up to word 47's. */
static void
ata_set_multiple(struct ahci_port *p, struct ahci_ioreq *io)
{
	uint8_t n = io->cfis[12];

	if (n > AHCI_MULTI_MAX || (n & (n - 1))) {
		ahci_fail(p, io, ER_ABRT);
		return;
	}
	p->ident[59] = n ? (uint16_t)(0x100 | n) : 0;
	ahci_ok(p, io);
}

static void
log_page_header(uint8_t *pg, uint8_t page)
{
	/* Revision 0001h, the page number (ACS-3 §9.10). */
	le64_put(pg, 0x0001 | (uint64_t)page << 16 | 1ULL << 63);
}

/* One page of a log into pg (512 bytes); false if there is no such page. */
static bool
ata_log_page(struct ahci_port *p, uint8_t log, uint16_t page, uint8_t *pg)
{
	memset(pg, 0, 512);
	switch (log) {
	case LOG_DIRECTORY:
		if (page)
			return false;
		le16_put(pg, 0x0001); /* General Purpose Logging version */
		le16_put(pg + 2 * LOG_NCQ_ERROR, 1);
		le16_put(pg + 2 * LOG_IDENTIFY, LOG_IDENTIFY_PAGES);
		return true;
	case LOG_NCQ_ERROR:
		if (page || p->atapi)
			return false;
		if (p->ncq_err) {
			memcpy(pg, p->ncq_log, 512);
		} else {
			pg[0] = 0x80; /* NQ: no queued command failed */
			pg[511] = 0x80;
		}
		p->ncq_err = false;
		return true;
	case LOG_IDENTIFY:
		if (page == 0) {
			log_page_header(pg, 0);
			pg[8] = LOG_IDENTIFY_PAGES; /* the list of pages */
			pg[9] = 0x00;
			pg[10] = 0x01;
			return true;
		}
		if (page == 1 && !p->atapi) {
			ident_bytes(p, pg); /* a copy of IDENTIFY DEVICE */
			return true;
		}
		return false;
	default:
		return false;
	}
}

/*
 * READ LOG EXT and READ LOG DMA EXT (ACS-3 §7.24): log address in LBA
 * 7:0, first page in LBA 15:8 and 39:32, page count in Count.
 */
static void
ata_read_log(struct ahci_port *p, struct ahci_ioreq *io)
{
	uint8_t buf[2 * 512], log = io->cfis[4];
	uint16_t page = (uint16_t)(io->cfis[5] | io->cfis[9] << 8);
	uint32_t count = io->cfis[12] | (uint32_t)io->cfis[13] << 8;

	io->pio = io->cfis[2] == ATA_READ_LOG_EXT;
	if (count == 0 || count > 2) {
		ahci_fail(p, io, ER_ABRT);
		return;
	}
	for (uint32_t i = 0; i < count; i++)
		if (page + i > 0xffff ||
		    !ata_log_page(p, log, (uint16_t)(page + i),
				  buf + 512 * i)) {
			ahci_fail(p, io, ER_ABRT);
			return;
		}
	ata_data_in(p, io, buf, 512 * count);
}

/* READ VERIFY SECTORS (EXT): nothing to verify, only the range. */
static void
ata_read_verify(struct ahci_port *p, struct ahci_ioreq *io)
{
	uint8_t flags = io->cfis[2] == ATA_READ_VERIFY_EXT ? RW_LBA48 : 0;
	uint64_t lba = flags ? cfis_lba48(io->cfis) : cfis_lba28(io->cfis);

	if (!ata_range_ok(p, lba, ata_count(io->cfis, flags))) {
		ahci_fail(p, io, ER_IDNF | ER_ABRT);
		return;
	}
	ahci_ok(p, io);
}

static void atapi_packet(struct ahci_port *p, struct ahci_ioreq *io);

/* Commands both kinds of device take (ACS-3 §4.2, §4.3). */
static bool
ata_common(struct ahci_port *p, struct ahci_ioreq *io)
{
	switch (io->cfis[2]) {
	case ATA_SET_FEATURES:
		ata_set_features(p, io);
		return true;
	case ATA_CHECK_POWER_MODE:
		io->count_out = 0xff; /* active or idle */
		ahci_ok(p, io);
		return true;
	case ATA_STANDBY_IMMEDIATE:
	case ATA_IDLE_IMMEDIATE:
	case ATA_STANDBY:
	case ATA_IDLE:
		ahci_ok(p, io);
		return true;
	case ATA_READ_LOG_EXT:
	case ATA_READ_LOG_DMA_EXT:
		ata_read_log(p, io);
		return true;
	default:
		return false;
	}
}

static void
ata_disk_cmd(struct ahci_port *p, struct ahci_ioreq *io)
{
	const struct ahci_rw_cmd *rw = ata_rw_find(io->cfis[2]);

	if (rw) {
		ata_rw(p, io, rw->flags);
		return;
	}
	switch (io->cfis[2]) {
	case ATA_IDENTIFY:
		ata_identify(p, io);
		return;
	case ATA_FLUSH_CACHE:
	case ATA_FLUSH_CACHE_EXT:
		ata_flush(p, io);
		return;
	case ATA_DSM:
		ata_dsm(p, io);
		return;
	case ATA_SET_MULTIPLE:
		ata_set_multiple(p, io);
		return;
	case ATA_READ_VERIFY:
	case ATA_READ_VERIFY_EXT:
		ata_read_verify(p, io);
		return;
	case ATA_SEEK:
		ahci_ok(p, io);
		return;
	default:
		if (!ata_common(p, io))
			ahci_fail(p, io, ER_ABRT); /* NOP included */
	}
}

static void
atapi_device_reset(struct ahci_port *p, struct ahci_ioreq *io)
{
	p->sense_key = SENSE_NONE;
	p->asc = 0;
	if (ahci_signature(p))
		p->ci &= ~(1u << io->slot);
}

/* What an ATAPI device takes besides PACKET (ACS-3 §4.3). */
static void
ata_atapi_cmd(struct ahci_port *p, struct ahci_ioreq *io)
{
	switch (io->cfis[2]) {
	case ATA_PACKET:
		atapi_packet(p, io);
		return;
	case ATA_IDENTIFY_PACKET:
		ata_identify(p, io);
		return;
	case ATA_IDENTIFY:
		atapi_abort_identify(p, io);
		return;
	case ATA_DEVICE_RESET:
		atapi_device_reset(p, io);
		return;
	case ATA_FLUSH_CACHE:
		ahci_ok(p, io);
		return;
	default:
		if (!ata_common(p, io))
			ahci_fail(p, io, ER_ABRT);
	}
}

/* ---- ATAPI packets (MMC-6, SPC-3) ---- */

/* Small responses: the shorter of the data and the allocation length. */
static void
atapi_data_in(struct ahci_port *p, struct ahci_ioreq *io, const uint8_t *buf,
	      size_t len, size_t alloc)
{
	ssize_t n =
	    prdt_copy(p, io, (void *)buf, len < alloc ? len : alloc, true);

	if (n < 0) {
		ahci_fatal(p, io, IS_HBFS);
		return;
	}
	io->done = (uint64_t)n; /* a shorter PRDT takes what fits */
	atapi_good(p, io);
}

static void
atapi_string(uint8_t *dst, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = *s ? (uint8_t)*s++ : ' ';
}

/* The model, revision strings from IDENTIFY PACKET DEVICE data. */
static void
ident_string_get(const uint16_t *w, int word, int len, char *out)
{
	for (int i = 0; i < len; i++)
		out[i] = (char)(i & 1 ? w[word + i / 2] : w[word + i / 2] >> 8);
	out[len] = '\0';
}

static void
atapi_inquiry(struct ahci_port *p, struct ahci_ioreq *io)
{
	const uint8_t *a = io->acmd;
	uint8_t buf[36] = {0x05, 0x80, 0x05, 0x02, 31};
	char model[41], rev[9];

	if (a[1] & 0x01) { /* EVPD: only the list of VPD pages */
		uint8_t vpd[5] = {0x05, 0x00, 0x00, 1, 0x00};

		if (a[2] != 0x00) {
			atapi_check(p, io, SENSE_ILLEGAL_REQUEST,
				    ASC_INVALID_FIELD);
			return;
		}
		atapi_data_in(p, io, vpd, sizeof(vpd), be16_get(a + 3));
		return;
	}
	if (a[2] != 0) {
		atapi_check(p, io, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
		return;
	}
	ident_string_get(p->ident, 27, 40, model);
	ident_string_get(p->ident, 23, 8, rev);
	atapi_string(buf + 8, "BHYVE", 8);
	atapi_string(buf + 16, model, 16);
	atapi_string(buf + 32, rev, 4);
	atapi_data_in(p, io, buf, sizeof(buf), be16_get(a + 3));
}

static void
atapi_request_sense(struct ahci_port *p, struct ahci_ioreq *io)
{
	uint8_t buf[18] = {0x70, 0, p->sense_key};

	buf[7] = 10; /* additional length */
	buf[12] = p->asc;
	atapi_data_in(p, io, buf, sizeof(buf), io->acmd[4]);
}

static void
atapi_read_capacity(struct ahci_port *p, struct ahci_ioreq *io)
{
	uint8_t buf[8];

	be32_put(buf, (uint32_t)(p->blocks ? min_u64(p->blocks - 1, UINT32_MAX)
					   : 0));
	be32_put(buf + 4, ATAPI_BLKSZ);
	atapi_data_in(p, io, buf, sizeof(buf), sizeof(buf));
}

/* READ(10), READ(12): 2048-byte blocks through the backend. */
static void
atapi_read(struct ahci_port *p, struct ahci_ioreq *io)
{
	const uint8_t *a = io->acmd;
	uint64_t lba = be32_get(a + 2);
	uint64_t n = a[0] == SCSI_READ_10 ? be16_get(a + 7) : be32_get(a + 6);

	if (lba > p->blocks || n > p->blocks - lba) {
		atapi_check(p, io, SENSE_ILLEGAL_REQUEST, ASC_LBA_RANGE);
		return;
	}
	if (n == 0) {
		atapi_good(p, io);
		return;
	}
	io->write = false;
	io->blksz = ATAPI_BLKSZ;
	io->offset = (off_t)(lba * ATAPI_BLKSZ);
	io->resid = n * ATAPI_BLKSZ;
	io->done = 0;
	ahci_io_start(p, io, OP_RW);
}

/* Block address to minutes, seconds, frames (MMC-6 §4.2.3.5). */
static void
lba_to_msf(uint8_t *b, uint64_t lba)
{
	lba += 150;
	if (lba >= 256 * 4500)
		lba = 256 * 4500 - 1; /* no MSF beyond 255:59:74 */
	b[0] = 0;
	b[1] = (uint8_t)(lba / 4500);
	b[2] = (uint8_t)(lba / 75 % 60);
	b[3] = (uint8_t)(lba % 75);
}

static void
toc_addr(uint8_t *b, uint64_t lba, bool msf)
{
	if (msf)
		lba_to_msf(b, lba);
	else
		be32_put(b, (uint32_t)lba);
}

/* Format 0: the track 1 and lead-out descriptors. */
static size_t
atapi_toc_tracks(struct ahci_port *p, uint8_t *buf, uint8_t start, bool msf)
{
	uint8_t *d = buf + 4;

	buf[2] = 1; /* first track */
	buf[3] = 1; /* last track */
	if (start <= 1) {
		d[1] = 0x14; /* ADR 1, data track */
		d[2] = 1;
		toc_addr(d + 4, 0, msf);
		d += 8;
	}
	d[1] = 0x14;
	d[2] = 0xaa; /* lead-out */
	toc_addr(d + 4, p->blocks, msf);
	return (size_t)(d + 8 - buf);
}

/* Format 2: raw TOC, points A0, A1, A2 and track 1, always MSF. */
static size_t
atapi_toc_raw(struct ahci_port *p, uint8_t *buf)
{
	static const uint8_t points[] = {0xa0, 0xa1, 0xa2, 0x01};
	uint8_t *d = buf + 4;

	buf[2] = 1; /* first and last session */
	buf[3] = 1;
	for (size_t i = 0; i < sizeof(points); i++, d += 11) {
		d[0] = 1; /* session */
		d[1] = 0x14;
		d[3] = points[i];
		if (points[i] == 0xa0 || points[i] == 0xa1)
			d[8] = 1; /* first, last track */
		else
			lba_to_msf(d + 7, points[i] == 0xa2 ? p->blocks : 0);
	}
	return (size_t)(d - buf);
}

/* READ TOC/PMA/ATIP (MMC-6 §6.40), formats 0, 1 and 2. */
static void
atapi_read_toc(struct ahci_port *p, struct ahci_ioreq *io)
{
	const uint8_t *a = io->acmd;
	uint8_t buf[64] = {0}, format = a[2] & 0x0f;
	bool msf = a[1] & 0x02;
	size_t len;

	if (format == 0)
		format = a[9] >> 6; /* the older place for it */
	if (format == 0 && a[6] > 1 && a[6] != 0xaa) {
		atapi_check(p, io, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
		return;
	}
	if (format == 0) {
		len = atapi_toc_tracks(p, buf, a[6], msf);
	} else if (format == 1) {
		buf[2] = buf[3] = 1; /* one session, starting at track 1 */
		buf[5] = 0x14;
		buf[6] = 1;
		toc_addr(buf + 8, 0, msf);
		len = 12;
	} else if (format == 2) {
		len = atapi_toc_raw(p, buf);
	} else {
		atapi_check(p, io, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
		return;
	}
	be16_put(buf, (uint16_t)(len - 2));
	atapi_data_in(p, io, buf, len, be16_get(a + 7));
}

static uint16_t
atapi_profile(struct ahci_port *p)
{
	return p->blocks > ATAPI_CD_BLOCKS ? 0x0010 : 0x0008; /* DVD, CD */
}

/* One feature descriptor (MMC-6 §5.3); its length. */
static size_t
atapi_feature(struct ahci_port *p, uint16_t code, uint8_t *d)
{
	uint16_t cur = atapi_profile(p);

	be16_put(d, code);
	switch (code) {
	case 0x0000: /* Profile List */
		d[2] = 0x03;
		d[3] = 8;
		be16_put(d + 4, 0x0010);
		d[6] = cur == 0x0010;
		be16_put(d + 8, 0x0008);
		d[10] = cur == 0x0008;
		return 12;
	case 0x0001: /* Core: ATAPI */
		d[2] = 0x0b;
		d[3] = 8;
		be32_put(d + 4, 0x00000002);
		return 12;
	case 0x0003: /* Removable Medium: tray, eject, lock */
		d[2] = 0x03;
		d[3] = 4;
		d[4] = 0x29;
		return 8;
	case 0x0010: /* Random Readable */
		d[2] = 0x01;
		d[3] = 8;
		be32_put(d + 4, ATAPI_BLKSZ);
		be16_put(d + 8, cur == 0x0010 ? 16 : 1);
		return 12;
	default:
		return 0;
	}
}

/* GET CONFIGURATION (MMC-6 §6.6): RT 0 all, 1 current, 2 one feature. */
static void
atapi_get_configuration(struct ahci_port *p, struct ahci_ioreq *io)
{
	static const uint16_t features[] = {0x0000, 0x0001, 0x0003, 0x0010};
	const uint8_t *a = io->acmd;
	uint8_t buf[64] = {0}, rt = a[1] & 0x03;
	uint16_t start = be16_get(a + 2);
	size_t len = 8;

	if (rt == 3) {
		atapi_check(p, io, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
		return;
	}
	be16_put(buf + 6, atapi_profile(p));
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		if (features[i] < start || (rt == 2 && features[i] != start))
			continue;
		len += atapi_feature(p, features[i], buf + len);
	}
	be32_put(buf, (uint32_t)(len - 4));
	atapi_data_in(p, io, buf, len, be16_get(a + 7));
}

/* GET EVENT STATUS NOTIFICATION (MMC-6 §6.8), polled, media class only. */
static void
atapi_get_event_status(struct ahci_port *p, struct ahci_ioreq *io)
{
	const uint8_t *a = io->acmd;
	uint8_t buf[8] = {0};
	size_t len = 4;

	if (!(a[1] & 0x01)) {
		atapi_check(p, io, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
		return;
	}
	buf[3] = 0x10; /* supported: media */
	if (a[4] & 0x10) {
		buf[2] = 0x04; /* media class */
		buf[5] = 0x02; /* present, tray closed; no event */
		len = 8;
	} else {
		buf[2] = 0x80; /* NEA: no event available */
	}
	be16_put(buf, (uint16_t)(len - 2));
	atapi_data_in(p, io, buf, len, be16_get(a + 7));
}

/* A mode page (MMC-6 §7); its length, 0 if unknown. */
static size_t
atapi_mode_page(struct ahci_port *p, uint8_t page, bool changeable, uint8_t *d)
{
	switch (page) {
	case 0x01: /* Read/Write Error Recovery */
		d[0] = 0x01;
		d[1] = 10;
		if (!changeable)
			d[3] = 5; /* read retry count */
		return 12;
	case 0x2a: /* Capabilities and Mechanical Status */
		d[0] = 0x2a;
		d[1] = 18;
		if (changeable)
			return 20;
		d[2] = 0x0f; /* reads CD-R, CD-RW, method 2, DVD-ROM */
		d[4] = 0x70; /* mode 2 forms 1 and 2, multi-session */
		d[6] = (uint8_t)(0x29 | (p->prevent ? 0x02 : 0));
		be16_put(d + 12, 512); /* buffer, KiB */
		return 20;
	default:
		return 0;
	}
}

/* MODE SENSE (6) and (10) (SPC-3 §6.9, §6.10): pages 01h, 2Ah, 3Fh. */
static void
atapi_mode_sense(struct ahci_port *p, struct ahci_ioreq *io)
{
	const uint8_t *a = io->acmd;
	bool ten = a[0] == SCSI_MODE_SENSE_10;
	uint8_t buf[64] = {0}, pc = a[2] >> 6, page = a[2] & 0x3f;
	size_t hdr = ten ? 8 : 4, len = hdr;

	if (pc == 3) {
		atapi_check(p, io, SENSE_ILLEGAL_REQUEST, ASC_NO_SAVING);
		return;
	}
	if (page == 0x3f) {
		len += atapi_mode_page(p, 0x01, pc == 1, buf + len);
		len += atapi_mode_page(p, 0x2a, pc == 1, buf + len);
	} else {
		len += atapi_mode_page(p, page, pc == 1, buf + len);
	}
	if (len == hdr || a[3] != 0) {
		atapi_check(p, io, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
		return;
	}
	if (ten)
		be16_put(buf, (uint16_t)(len - 2));
	else
		buf[0] = (uint8_t)(len - 1);
	atapi_data_in(p, io, buf, len, ten ? be16_get(a + 7) : a[4]);
}

/* START STOP UNIT: no tray to move; ejecting a locked medium is refused. */
static void
atapi_start_stop(struct ahci_port *p, struct ahci_ioreq *io)
{
	bool eject = (io->acmd[4] & 0x03) == 0x02;

	if (eject && p->prevent) {
		atapi_check(p, io, SENSE_ILLEGAL_REQUEST,
			    ASC_REMOVAL_PREVENTED);
		return;
	}
	atapi_good(p, io);
}

static void
atapi_packet(struct ahci_port *p, struct ahci_ioreq *io)
{
	io->atapi = true;
	io->pio = !(io->cfis[3] & 0x01); /* features bit 0: DMA */
	switch (io->acmd[0]) {
	case SCSI_TEST_UNIT_READY:
		atapi_good(p, io);
		return;
	case SCSI_REQUEST_SENSE:
		atapi_request_sense(p, io);
		return;
	case SCSI_INQUIRY:
		atapi_inquiry(p, io);
		return;
	case SCSI_READ_CAPACITY:
		atapi_read_capacity(p, io);
		return;
	case SCSI_READ_10:
	case SCSI_READ_12:
		atapi_read(p, io);
		return;
	case SCSI_READ_TOC:
		atapi_read_toc(p, io);
		return;
	case SCSI_GET_CONFIGURATION:
		atapi_get_configuration(p, io);
		return;
	case SCSI_GET_EVENT_STATUS:
		atapi_get_event_status(p, io);
		return;
	case SCSI_MODE_SENSE_6:
	case SCSI_MODE_SENSE_10:
		atapi_mode_sense(p, io);
		return;
	case SCSI_START_STOP:
		atapi_start_stop(p, io);
		return;
	case SCSI_PREVENT_ALLOW:
		p->prevent = io->acmd[4] & 0x01;
		atapi_good(p, io);
		return;
	case SCSI_WRITE_10:
	case SCSI_WRITE_12:
	case SCSI_WRITE_VERIFY_10:
		atapi_check(p, io, SENSE_DATA_PROTECT, ASC_WRITE_PROTECTED);
		return;
	default:
		atapi_check(p, io, SENSE_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return;
	}
}

/* ---- command slots (AHCI 1.3.1 §5.3) ---- */

/*
 * Read the slot's command header and the start of its command table once
 * (§4.2.2, §4.2.3). 0, or the PxIS bit of the fatal error.
 */
static uint32_t
ahci_fetch(struct ahci_port *p, struct ahci_ioreq *io)
{
	struct vmctx *ctx = ahci_ctx(p);
	uint8_t hdr[CL_HDR_SIZE];
	const uint8_t *g;
	uint32_t dw0;

	io->hdr_gpa = p->clb + (uint64_t)io->slot * CL_HDR_SIZE;
	g = vm_map_gpa(ctx, io->hdr_gpa, CL_HDR_SIZE);
	if (!g)
		return IS_HBFS;
	memcpy(hdr, g, sizeof(hdr));
	dw0 = le32_get(hdr);
	io->prd = (struct prd_cursor){
	    .ctba = le64_get(hdr + 8) & ~0x7fULL, /* 128-byte aligned */
	    .prdtl = dw0 >> 16,
	};
	/* The table and its whole PRDT must be guest RAM. */
	g = vm_map_gpa(ctx, io->prd.ctba,
		       CT_PRDT + (size_t)io->prd.prdtl * PRD_SIZE);
	if (!g)
		return IS_HBFS;
	memcpy(io->cfis, g, sizeof(io->cfis));
	memcpy(io->acmd, g + CT_ACMD, sizeof(io->acmd));
	if ((dw0 & HDR_CFL_MASK) < 5 || io->cfis[0] != FIS_H2D)
		return IS_IFS;
	return 0;
}

/*
 * A Register H2D FIS with C clear updates the device control register:
 * SRST set, then cleared, is a soft reset, after which the device sends
 * its signature (SATA 3.x §11.4). Neither FIS raises an interrupt.
 */
static void
ahci_control_fis(struct ahci_port *p, struct ahci_ioreq *io)
{
	if (io->cfis[15] & CTL_SRST) {
		p->srst = true;
	} else if (p->srst) {
		p->srst = false;
		p->sense_key = SENSE_NONE;
		if (!ahci_signature(p))
			return;
	}
	p->ci &= ~(1u << io->slot);
}

static void
ahci_slot_start(struct ahci_port *p, int slot)
{
	struct ahci_ioreq *io = &p->io[slot];
	uint32_t err;

	ahci_set_ccs(p, slot);
	io->gen = p->gen;
	io->ncq = io->pio = io->write = io->atapi = false;
	io->done = 0;
	err = ahci_fetch(p, io);
	if (err) {
		ahci_fatal(p, io, err);
		return;
	}
	io->count_out = le16_get(io->cfis + 12);
	if (!(io->cfis[1] & FIS_H2D_C)) {
		ahci_control_fis(p, io);
		return;
	}
	if (p->atapi)
		ata_atapi_cmd(p, io);
	else
		ata_disk_cmd(p, io);
}

/* The next issued slot after 'after', round-robin; -1 if none. */
static int
ahci_next_slot(uint32_t todo, int after)
{
	for (int i = 1; i <= AHCI_SLOTS; i++) {
		int s = (after + i) % AHCI_SLOTS;

		if (todo & (1u << s))
			return s;
	}
	return -1;
}

/*
 * Start every issued command not already running. A slot the guest
 * issues again while its old request is in flight waits for it: the
 * slot's state is not reused until the backend gives it back.
 */
static void
ahci_port_run(struct ahci_port *p)
{
	for (int n = 0; n < AHCI_SLOTS; n++) {
		int slot;

		if (!(p->cmd & CMD_ST) || p->halted)
			return;
		slot = ahci_next_slot(p->ci & ~p->busy, p->last_slot);
		if (slot < 0)
			return;
		p->last_slot = slot;
		ahci_slot_start(p, slot);
	}
}

/* ---- resets (AHCI 1.3.1 §10.4) ---- */

/*
 * The device after COMRESET: link up, signature, idle, its SET FEATURES
 * and SET MULTIPLE settings back to their defaults (no Software Settings
 * Preservation is offered: SATA 3.x §13.3.3).
 */
static void
ahci_port_online(struct ahci_port *p)
{
	p->ssts = SSTS_ONLINE;
	p->serr = 0;
	p->srst = false;
	p->sense_key = SENSE_NONE;
	p->asc = 0;
	p->prevent = false;
	p->ncq_err = false;
	memcpy(p->ident, p->ident_reset, sizeof(p->ident));
	ahci_signature(p);
}

/* GHC.HR: every port back to its power-on state but CLB and FB (§3.1.2). */
static void
ahci_port_reset(struct ahci_port *p)
{
	p->gen++;
	p->is = p->ie = 0;
	p->cmd = CMD_SUD | CMD_POD | (p->busy ? CMD_CR : 0);
	p->ci = p->sact = 0;
	p->sctl = 0;
	p->halted = false;
	p->last_slot = AHCI_SLOTS - 1;
	ahci_port_online(p);
}

static void
ahci_hba_reset(struct ahci_softc *sc)
{
	sc->ghc = GHC_AE;
	sc->is = 0;
	ahci_intx_update(sc);
	for (int i = 0; i < AHCI_MAX_PORTS; i++)
		if (sc->port[i])
			ahci_port_reset(sc->port[i]);
}

/* ---- registers ---- */

static uint32_t
ahci_port_read(struct ahci_port *p, uint64_t reg)
{
	switch (reg) {
	case P_CLB:
		return (uint32_t)p->clb;
	case P_CLBU:
		return (uint32_t)(p->clb >> 32);
	case P_FB:
		return (uint32_t)p->fb;
	case P_FBU:
		return (uint32_t)(p->fb >> 32);
	case P_IS:
		return p->is;
	case P_IE:
		return p->ie;
	case P_CMD:
		return p->cmd;
	case P_TFD:
		return p->tfd;
	case P_SIG:
		return p->sig;
	case P_SSTS:
		return p->ssts;
	case P_SCTL:
		return p->sctl;
	case P_SERR:
		return p->serr;
	case P_SACT:
		return p->sact;
	case P_CI:
		return p->ci;
	default:
		return 0; /* SNTF, FBS, DEVSLP, vendor: nothing */
	}
}

/* PxCMD.ST cleared: PxCI, PxSACT and CCS clear, errors are forgotten. */
static void
ahci_port_stop(struct ahci_port *p)
{
	p->cmd &= ~(CMD_ST | CMD_CCS_MASK);
	p->ci = p->sact = 0;
	p->halted = false;
	p->gen++;
	ahci_check_stopped(p);
}

/* PxCMD (§3.3.7): ST, FRE and CLO act; CR, FR and CCS are the HBA's. */
static void
ahci_cmd_write(struct ahci_port *p, uint32_t v)
{
	p->cmd = (p->cmd & ~CMD_RW) | (v & CMD_RW);
	if (v & CMD_FRE)
		p->cmd |= CMD_FRE | CMD_FR;
	else
		p->cmd &= ~(CMD_FRE | CMD_FR);
	if ((v & CMD_CLO) && !(p->cmd & CMD_ST))
		p->tfd &= ~(uint32_t)(ST_BSY | ST_DRQ);
	if ((v & CMD_ST) && !(p->cmd & CMD_ST)) {
		p->cmd |= CMD_ST | CMD_CR;
		p->halted = false; /* e.g. a bad PxFB met by a COMRESET */
		p->last_slot = AHCI_SLOTS - 1;
	} else if (!(v & CMD_ST) && (p->cmd & CMD_ST)) {
		ahci_port_stop(p);
	}
	ahci_port_run(p);
}

/* PxSCTL.DET (§3.3.11): 1 holds COMRESET, back to 0 the link comes up. */
static void
ahci_sctl_write(struct ahci_port *p, uint32_t v)
{
	uint32_t old = p->sctl & SCTL_DET_MASK, det = v & SCTL_DET_MASK;

	p->sctl = v & SCTL_RW_MASK;
	if (p->cmd & CMD_ST)
		return; /* software may reset only a stopped port */
	if (det == SCTL_DET_COMRESET) {
		p->ssts = 0;
		p->tfd = ST_BSY;
	} else if (det == SCTL_DET_OFFLINE) {
		p->ssts = SCTL_DET_OFFLINE;
	} else if (old == SCTL_DET_COMRESET || old == SCTL_DET_OFFLINE) {
		p->gen++;
		ahci_port_online(p);
	}
}

static void
ahci_ie_write(struct ahci_port *p, uint32_t v)
{
	bool was = p->is & p->ie;

	p->ie = v & IE_MASK;
	if (!was && (p->is & p->ie))
		ahci_port_signal(p);
}

static void
ahci_port_write(struct ahci_port *p, uint64_t reg, uint32_t v)
{
	switch (reg) {
	case P_CLB:
		p->clb = (p->clb & ~0xffffffffULL) | (v & ~0x3ffu);
		break;
	case P_CLBU:
		p->clb = (uint32_t)p->clb | (uint64_t)v << 32;
		break;
	case P_FB:
		p->fb = (p->fb & ~0xffffffffULL) | (v & ~0xffu);
		break;
	case P_FBU:
		p->fb = (uint32_t)p->fb | (uint64_t)v << 32;
		break;
	case P_IS:
		p->is &= ~(v & IS_W1C);
		break;
	case P_IE:
		ahci_ie_write(p, v);
		break;
	case P_CMD:
		ahci_cmd_write(p, v);
		break;
	case P_SCTL:
		ahci_sctl_write(p, v);
		break;
	case P_SERR:
		p->serr &= ~v;
		break;
	case P_SACT:
		if (p->cmd & CMD_ST)
			p->sact |= v;
		break;
	case P_CI:
		if (p->cmd & CMD_ST) {
			p->ci |= v;
			ahci_port_run(p);
		}
		break;
	default:
		break; /* TFD, SIG, SSTS and the rest are read-only */
	}
}

static uint32_t
ahci_host_read(struct ahci_softc *sc, uint64_t reg)
{
	switch (reg) {
	case HBA_CAP:
		return sc->cap;
	case HBA_GHC:
		return sc->ghc;
	case HBA_IS:
		return sc->is;
	case HBA_PI:
		return sc->ports_impl;
	case HBA_VS:
		return AHCI_VERSION;
	default:
		return 0; /* CCC, enclosure management, CAP2, BOHC: none */
	}
}

/* IS.IPS stays set for a port that still has an enabled interrupt. */
static void
ahci_is_write(struct ahci_softc *sc, uint32_t v)
{
	sc->is &= ~v;
	for (int i = 0; i < AHCI_MAX_PORTS; i++) {
		struct ahci_port *p = sc->port[i];

		if (p && (p->is & p->ie))
			sc->is |= 1u << i;
	}
	ahci_intx_update(sc);
}

static void
ahci_host_write(struct ahci_softc *sc, uint64_t reg, uint32_t v)
{
	bool ie;

	if (reg == HBA_IS) {
		ahci_is_write(sc, v);
		return;
	}
	if (reg != HBA_GHC)
		return; /* CAP, PI, VS and CAP2 are read-only */
	if (v & GHC_HR) {
		ahci_hba_reset(sc);
		return;
	}
	ie = !(sc->ghc & GHC_IE) && (v & GHC_IE);
	sc->ghc = GHC_AE | (v & GHC_IE);
	if (ie && sc->is && pci_msi_enabled(sc->pi))
		pci_generate_msi(sc->pi, 0);
	ahci_intx_update(sc);
}

static struct ahci_port *
ahci_port_at(struct ahci_softc *sc, uint64_t off)
{
	uint64_t n = (off - AHCI_PORT_BASE) / AHCI_PORT_STEP;

	return off >= AHCI_PORT_BASE && n < AHCI_MAX_PORTS ? sc->port[n] : NULL;
}

static uint32_t
ahci_reg_read(struct ahci_softc *sc, uint64_t off)
{
	struct ahci_port *p;

	if (off < AHCI_PORT_BASE)
		return ahci_host_read(sc, off);
	p = ahci_port_at(sc, off);
	return p ? ahci_port_read(p, (off - AHCI_PORT_BASE) % AHCI_PORT_STEP)
		 : 0;
}

static void
ahci_reg_write(struct ahci_softc *sc, uint64_t off, uint32_t v)
{
	struct ahci_port *p;

	if (off < AHCI_PORT_BASE) {
		ahci_host_write(sc, off, v);
		return;
	}
	p = ahci_port_at(sc, off);
	if (p)
		ahci_port_write(p, (off - AHCI_PORT_BASE) % AHCI_PORT_STEP, v);
}

/* Registers where writing 0 changes nothing: W1C, or PxCI and PxSACT. */
static bool
ahci_reg_is_w1(uint64_t off)
{
	uint64_t r = (off - AHCI_PORT_BASE) % AHCI_PORT_STEP;

	if (off < AHCI_PORT_BASE)
		return off == HBA_IS;
	return r == P_IS || r == P_SERR || r == P_SACT || r == P_CI ||
	       r == P_SNTF;
}

/*
 * A byte or word write into a register: the other bytes keep their value,
 * or are written as zeros where zeros do nothing.
 */
static void
ahci_reg_write_part(struct ahci_softc *sc, uint64_t off, int size, uint32_t v)
{
	uint64_t reg = off & ~3ULL;
	unsigned int shift = 8 * (unsigned int)(off & 3);
	uint32_t mask = (size == 1 ? 0xffu : 0xffffu) << shift;
	uint32_t cur = ahci_reg_is_w1(reg) ? 0 : ahci_reg_read(sc, reg);

	ahci_reg_write(sc, reg, (cur & ~mask) | ((v << shift) & mask));
}

static void
pci_ahci_write(struct pci_devinst *pi, int baridx, uint64_t off, int size,
	       uint64_t value)
{
	struct ahci_softc *sc = pi->pi_arg;

	if (baridx != AHCI_BAR || off >= AHCI_BAR_SIZE || (off & (size - 1)))
		return; /* misaligned: ignored */
	pthread_mutex_lock(&sc->mtx);
	if (size == 8) {
		ahci_reg_write(sc, off, (uint32_t)value);
		ahci_reg_write(sc, off + 4, (uint32_t)(value >> 32));
	} else if (size == 4) {
		ahci_reg_write(sc, off, (uint32_t)value);
	} else {
		ahci_reg_write_part(sc, off, size, (uint32_t)value);
	}
	pthread_mutex_unlock(&sc->mtx);
}

static uint64_t
pci_ahci_read(struct pci_devinst *pi, int baridx, uint64_t off, int size)
{
	struct ahci_softc *sc = pi->pi_arg;
	uint64_t mask = size == 8 ? ~0ULL : (1ULL << (8 * size)) - 1, v;

	if (baridx != AHCI_BAR || off >= AHCI_BAR_SIZE || (off & (size - 1)))
		return mask; /* misaligned: all ones */
	pthread_mutex_lock(&sc->mtx);
	v = ahci_reg_read(sc, off & ~3ULL) |
	    (uint64_t)ahci_reg_read(sc, (off & ~3ULL) + 4) << 32;
	pthread_mutex_unlock(&sc->mtx);
	return (v >> 8 * (off & 3)) & mask;
}

/* ---- IDENTIFY data (ACS-3 §7.12.7, §7.13.6) ---- */

struct ahci_port_opts {
	const char *ser, *rev, *model;
	uint16_t nmrr;
};

/* ATA strings: two characters a word, the first in the high byte. */
static void
ident_string(uint16_t *w, int word, const char *s, int len)
{
	for (int i = 0; i < len; i++) {
		uint8_t c = *s ? (uint8_t)*s++ : ' ';

		if (i & 1)
			w[word + i / 2] |= c;
		else
			w[word + i / 2] = (uint16_t)(c << 8);
	}
}

static void
ident_strings(struct ahci_port *p, const struct ahci_port_opts *o)
{
	ident_string(p->ident, 10, o->ser, 20);
	ident_string(p->ident, 23, o->rev, 8);
	ident_string(p->ident, 27, o->model, 40);
}

static void
ident_common(uint16_t *w)
{
	w[49] = 0x0b00; /* IORDY, LBA, DMA */
	w[50] = 0x4000;
	w[53] = 0x0006; /* words 64-70 and 88 valid */
	w[63] = 0x0007; /* multiword DMA 0-2 */
	w[64] = 0x0003; /* PIO 3-4 */
	w[65] = w[66] = w[67] = w[68] = 120;
	w[77] = 3 << 1;		       /* current speed: Gen3 */
	w[80] = 0x07f0;		       /* ATA/ATAPI-4 to ACS-3 */
	w[88] = 0x007f | 1 << (8 + 6); /* UDMA 0-6, UDMA 6 selected */
	w[222] = 0x103f;	       /* SATA 1.0a to 3.1 */
}

/* Sector size words 106, 117-118 and alignment word 209. */
static void
ident_sectors(struct ahci_port *p)
{
	uint16_t *w = p->ident;
	int lss = p->sectsz, pss, poff, exp = 0, per, align;

	blockif_psectsz(p->bc, &pss, &poff);
	while ((lss << exp) < pss && exp < 15)
		exp++;
	per = 1 << exp;
	w[106] = (uint16_t)(0x4000 | (exp ? 0x2000 | exp : 0));
	if (lss > 512) {
		w[106] |= 0x1000;
		w[117] = (uint16_t)(lss / 2);
		w[118] = (uint16_t)((lss / 2) >> 16);
	}
	align = (poff / lss) % per;
	w[209] = (uint16_t)(0x4000 | ((per - align) % per));
}

static void
ident_disk(struct ahci_port *p, const struct ahci_port_opts *o)
{
	uint16_t *w = p->ident;
	uint64_t n = p->blocks, cyl = min_u64(n / (16 * 63), 16383);

	ident_common(w);
	w[0] = 0x0040; /* fixed device */
	w[1] = w[54] = (uint16_t)cyl;
	w[3] = w[55] = 16;
	w[6] = w[56] = 63;
	w[57] = (uint16_t)(cyl * 16 * 63);
	w[58] = (uint16_t)(cyl * 16 * 63 >> 16);
	ident_strings(p, o);
	w[47] = 0x8000 | AHCI_MULTI_MAX;
	w[60] = (uint16_t)min_u64(n, 0x0fffffff);
	w[61] = (uint16_t)(min_u64(n, 0x0fffffff) >> 16);
	w[75] = AHCI_SLOTS - 1; /* queue depth - 1 */
	w[76] = 0x010e;		/* NCQ, Gen1-3 */
	w[82] = 0x0068;		/* look-ahead, write cache, power mgmt */
	w[83] = 0x7400;		/* FLUSH CACHE (EXT), 48-bit */
	w[84] = 0x4020;		/* general purpose logging */
	w[85] = 0x0068;
	w[86] = 0xb400; /* as 83; words 119-120 valid */
	w[87] = 0x4020;
	for (int i = 0; i < 4; i++)
		w[100 + i] = (uint16_t)(n >> (16 * i));
	w[119] = w[120] = 0x4000;
	if (p->trim) {
		w[69] = 1 << 14 | 1 << 5; /* deterministic zeros after TRIM */
		w[105] = DSM_MAX_BLOCKS;
		w[169] = 0x0001; /* DSM TRIM */
	}
	ident_sectors(p);
	w[217] = o->nmrr;
}

static void
ident_atapi(struct ahci_port *p, const struct ahci_port_opts *o)
{
	uint16_t *w = p->ident;

	ident_common(w);
	/* ATAPI, CD/DVD, removable, DRQ in 50 us, 12-byte packets. */
	w[0] = 0x85c0;
	ident_strings(p, o);
	w[49] = 0x0300; /* LBA, DMA */
	w[76] = 0x000e;
	w[82] = 0x0018; /* PACKET, power management */
	w[83] = w[84] = w[87] = 0x4000;
	w[85] = 0x0018;
	w[217] = o->nmrr;
}

/* ---- configuration ---- */

/* A port's own keys; block_if's (blockif_is_option) besides. */
static const char *const ahci_port_keys[] = {"type", "nmrr", "ser", "rev",
					     "model"};

static int
ahci_fail_msg(struct pci_devinst *pi, const char *msg)
{
	fprintf(stderr, "bhyve: %s at %d:%d:%d: %s\n", pi->pi_d->pe_emu,
		pi->pi_bus, pi->pi_slot, pi->pi_func, msg);
	return -1;
}

static int
ahci_check_port_key(const struct config *c, void *arg)
{
	const char *name = config_node_name(c);

	if (config_is_leaf(c) && blockif_is_option(name))
		return 0;
	for (size_t i = 0;
	     i < sizeof(ahci_port_keys) / sizeof(ahci_port_keys[0]); i++)
		if (config_is_leaf(c) && !strcmp(name, ahci_port_keys[i]))
			return 0;
	*(const char **)arg = name;
	return 1;
}

/* A string option of at most max characters (ser, rev, model). */
static int
ahci_opt_string(const struct config *node, const char *key, size_t max,
		const char *def, const char **out, char *err, size_t errlen)
{
	const char *v = config_get(node, key);

	*out = v ? v : def;
	if (v && strlen(v) > max) {
		snprintf(err, errlen, "%s '%s' is longer than %zu characters",
			 key, v, max);
		return -1;
	}
	return 0;
}

/* nmrr (ACS-3 word 217): 0 unknown, 1 solid state, 1025-65534 rpm. */
static int
ahci_opt_nmrr(const struct config *node, uint16_t *out, char *err,
	      size_t errlen)
{
	const char *v = config_get(node, "nmrr");
	unsigned long n;
	char *end;

	*out = 0;
	if (!v)
		return 0;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || *v == '-' ||
	    (n > 1 && (n < 0x401 || n > 0xfffe))) {
		snprintf(err, errlen,
			 "bad nmrr '%s' (0 unknown, 1 non-rotating, or "
			 "1025-65534 rpm)",
			 v);
		return -1;
	}
	*out = (uint16_t)n;
	return 0;
}

/*
 * The default serial: a stable one from the image path and the port's
 * place (bus, slot, function, port), FNV-1a hashed into bhyve's
 * BHYVE-XXXX-XXXX-XXXX form (bhyve takes an MD5 of the path alone).
 */
static void
ahci_default_serial(struct pci_devinst *pi, int port, const char *path,
		    char *ser, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	char where[32];

	snprintf(where, sizeof(where), "%d.%d.%d.%d", pi->pi_bus, pi->pi_slot,
		 pi->pi_func, port);
	for (const char *s = path; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	for (const char *s = where; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	snprintf(ser, len, "BHYVE-%04X-%04X-%04X", (unsigned)(h >> 32) & 0xffff,
		 (unsigned)(h >> 16) & 0xffff, (unsigned)h & 0xffff);
}

struct ahci_copy {
	const struct config *src;
	struct config *dst;
	char *err;
	size_t errlen;
};

/* A block_if setting other than ro into the copy. */
static int
ahci_copy_key(const struct config *c, void *arg)
{
	struct ahci_copy *cp = arg;
	const char *name = config_node_name(c);

	if (!config_is_leaf(c) || !blockif_is_option(name) ||
	    !strcmp(name, "ro"))
		return 0;
	return config_set(cp->dst, name, config_get(cp->src, name), cp->err,
			  cp->errlen) < 0;
}

/*
 * The block backend for a port. A DVD is read-only whatever ro says:
 * the backend gets a copy of the port's settings with ro=true.
 */
static struct blockif_ctxt *
ahci_open_image(const struct config *node, bool atapi, char *err, size_t errlen)
{
	const char *ro = config_get(node, "ro");
	struct ahci_copy cp = {node, NULL, err, errlen};
	struct blockif_ctxt *bc = NULL;
	bool b;

	if (!atapi)
		return blockif_open(node, err, errlen);
	if (ro && config_parse_bool(ro, &b) < 0) {
		snprintf(err, errlen, "bad value '%s' for ro (true or false)",
			 ro);
		return NULL;
	}
	cp.dst = config_create();
	if (!cp.dst)
		snprintf(err, errlen, "out of memory");
	else if (config_set(cp.dst, "ro", "true", err, errlen) == 0 &&
		 !config_foreach(node, ahci_copy_key, &cp))
		bc = blockif_open(cp.dst, err, errlen);
	config_free(cp.dst);
	return bc;
}

/* The port's type and its options, before the image is opened. */
static int
ahci_port_opts(int n, const struct config *node, bool *atapi,
	       struct ahci_port_opts *o, char *err, size_t errlen)
{
	const char *type = config_get(node, "type"), *bad = NULL;

	if (config_is_leaf(node)) {
		snprintf(err, errlen,
			 "port %d: a value, where port.%d.type, port.%d.path "
			 "and other settings belong",
			 n, n, n);
		return -1;
	}
	if (config_foreach(node, ahci_check_port_key, &bad)) {
		snprintf(
		    err, errlen,
		    "port %d: unknown option '%s' (type, " BLOCKIF_OPTIONS_HELP
		    ", nmrr, ser, rev, model)",
		    n, bad);
		return -1;
	}
	if (!type || (strcmp(type, "hd") && strcmp(type, "cd"))) {
		snprintf(err, errlen, "port %d: type '%s' (hd or cd)", n,
			 type ? type : "");
		return -1;
	}
	*atapi = !strcmp(type, "cd");
	if (ahci_opt_string(node, "ser", 20, NULL, &o->ser, err, errlen) < 0 ||
	    ahci_opt_string(node, "rev", 8, "001", &o->rev, err, errlen) < 0 ||
	    ahci_opt_string(node, "model", 40,
			    *atapi ? "BHYVE SATA DVD ROM" : "BHYVE SATA DISK",
			    &o->model, err, errlen) < 0 ||
	    ahci_opt_nmrr(node, &o->nmrr, err, errlen) < 0)
		return -1;
	return 0;
}

/* Capacity and sector size; an image must hold whole sectors (disks). */
static int
ahci_port_geometry(struct ahci_port *p, char *err, size_t errlen)
{
	uint64_t size = (uint64_t)blockif_size(p->bc);

	if (p->atapi) {
		p->sectsz = ATAPI_BLKSZ;
		p->blocks = size / ATAPI_BLKSZ; /* a partial last block: gone */
		return 0;
	}
	p->sectsz = blockif_sectsz(p->bc);
	if (size % (uint64_t)p->sectsz) {
		snprintf(err, errlen,
			 "%s: its size, %llu bytes, is not a whole number of "
			 "%d-byte sectors",
			 blockif_path(p->bc), (unsigned long long)size,
			 p->sectsz);
		return -1;
	}
	p->blocks = size / (uint64_t)p->sectsz;
	p->trim = blockif_candelete(p->bc);
	return 0;
}

static int
ahci_port_init(struct ahci_softc *sc, int n, const struct config *node,
	       char *err, size_t errlen)
{
	struct ahci_port_opts o;
	struct ahci_port *p;
	char ser[32], msg[512];
	bool atapi;

	if (ahci_port_opts(n, node, &atapi, &o, err, errlen) < 0)
		return -1;
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	sc->port[n] = p;
	p->sc = sc;
	p->num = n;
	p->atapi = atapi;
	p->bc = ahci_open_image(node, atapi, msg, sizeof(msg));
	if (!p->bc) {
		snprintf(err, errlen, "port %d: %s", n, msg);
		return -1;
	}
	if (ahci_port_geometry(p, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "port %d: %s", n, msg);
		return -1;
	}
	if (!o.ser) {
		ahci_default_serial(sc->pi, n, blockif_path(p->bc), ser,
				    sizeof(ser));
		o.ser = ser;
	}
	if (atapi)
		ident_atapi(p, &o);
	else
		ident_disk(p, &o);
	memcpy(p->ident_reset, p->ident, sizeof(p->ident));
	for (int s = 0; s < AHCI_SLOTS; s++) {
		p->io[s].p = p;
		p->io[s].slot = s;
		p->io[s].br.br_param = &p->io[s];
		p->io[s].br.br_callback = ahci_io_done;
	}
	sc->ports_impl |= 1u << n;
	return 0;
}

/* Port node names: 0 to 31, no leading zeros. */
static int
ahci_port_number(const char *name)
{
	char *end;
	long v;

	if (!*name || (name[0] == '0' && name[1]) || *name == '-' ||
	    *name == '+')
		return -1;
	v = strtol(name, &end, 10);
	return *end || v < 0 || v >= AHCI_MAX_PORTS ? -1 : (int)v;
}

struct ahci_walk {
	struct ahci_softc *sc;
	char *err;
	size_t errlen;
};

static int
ahci_walk_port(const struct config *c, void *arg)
{
	struct ahci_walk *w = arg;
	int n = ahci_port_number(config_node_name(c));

	if (n < 0) {
		snprintf(w->err, w->errlen, "bad port '%s' (0 to %d)",
			 config_node_name(c), AHCI_MAX_PORTS - 1);
		return 1;
	}
	return ahci_port_init(w->sc, n, c, w->err, w->errlen) < 0;
}

static int
ahci_check_key(const struct config *c, void *arg)
{
	const char *name = config_node_name(c);

	if ((config_is_leaf(c) && !strcmp(name, "device")) ||
	    (!config_is_leaf(c) && !strcmp(name, "port")))
		return 0;
	*(const char **)arg = name;
	return 1;
}

/* Every port under node.port; 0, or -1 with err set. */
static int
ahci_ports_init(struct ahci_softc *sc, const struct config *node, char *err,
		size_t errlen)
{
	const struct config *ports = config_node((struct config *)node, "port");
	struct ahci_walk w = {sc, err, errlen};
	const char *bad = NULL;

	if (config_foreach(node, ahci_check_key, &bad)) {
		snprintf(err, errlen,
			 "unknown option '%s' (ports take their settings "
			 "under port.N, e.g. port.0.path)",
			 bad);
		return -1;
	}
	if (ports && config_foreach(ports, ahci_walk_port, &w))
		return -1;
	if (!sc->ports_impl && strcmp(sc->pi->pi_d->pe_emu, "ahci")) {
		snprintf(err, errlen, "no disk image (-s SLOT,%s,PATH)",
			 sc->pi->pi_d->pe_emu);
		return -1;
	}
	return 0;
}

/* CAP (AHCI 1.3.1 §3.1.1): 64-bit, NCQ, 32 slots, SSS, CLO, Gen3. */
static uint32_t
ahci_cap(struct ahci_softc *sc)
{
	int np = AHCI_MIN_PORTS;

	for (int i = 0; i < AHCI_MAX_PORTS; i++)
		if (sc->port[i] && i + 1 > np)
			np = i + 1;
	return CAP_S64A | CAP_SNCQ | CAP_SSS | CAP_SCLO | CAP_ISS_GEN3 |
	       CAP_SAM | (uint32_t)(AHCI_SLOTS - 1) << CAP_NCS_SHIFT |
	       (uint32_t)(np - 1);
}

static void
ahci_pci_ids(struct pci_devinst *pi)
{
	pci_set_cfgdata16(pi, 0x00, 0x8086); /* Intel */
	pci_set_cfgdata16(pi, 0x02, 0x2821); /* ICH8 AHCI */
	pci_set_cfgdata8(pi, 0x09, 0x01);    /* AHCI 1.0 */
	pci_set_cfgdata8(pi, 0x0a, 0x06);    /* SATA */
	pci_set_cfgdata8(pi, 0x0b, 0x01);    /* mass storage */
}

static void pci_ahci_deinit(struct pci_devinst *pi);

static int
pci_ahci_init(struct pci_devinst *pi, struct config *node)
{
	struct ahci_softc *sc = calloc(1, sizeof(*sc));
	char err[640];

	if (!sc)
		return ahci_fail_msg(pi, "out of memory");
	sc->pi = pi;
	pi->pi_arg = sc;
	pthread_mutex_init(&sc->mtx, NULL);
	if (ahci_ports_init(sc, node, err, sizeof(err)) < 0) {
		pci_ahci_deinit(pi);
		return ahci_fail_msg(pi, err);
	}
	sc->cap = ahci_cap(sc);
	ahci_pci_ids(pi);
	if (pci_emul_add_msicap(pi, 1) < 0 ||
	    pci_emul_alloc_bar(pi, AHCI_BAR, PCIBAR_MEM32, AHCI_BAR_SIZE) < 0) {
		pci_ahci_deinit(pi);
		return ahci_fail_msg(pi, "cannot set up its BAR and MSI");
	}
	pci_lintr_request(pi);
	ahci_hba_reset(sc);
	return 0;
}

static void
pci_ahci_deinit(struct pci_devinst *pi)
{
	struct ahci_softc *sc = pi->pi_arg;

	if (!sc)
		return;
	/* Each worker is gone once its backend is closed. */
	for (int i = 0; i < AHCI_MAX_PORTS; i++)
		if (sc->port[i])
			blockif_close(sc->port[i]->bc);
	for (int i = 0; i < AHCI_MAX_PORTS; i++)
		free(sc->port[i]);
	pthread_mutex_destroy(&sc->mtx);
	free(sc);
	pi->pi_arg = NULL;
}

/* ---- -s options into config variables (bhyve_config(5)) ---- */

static int
ahci_legacy_port(struct config *node, int n, const char *type, const char *opts,
		 char *err, size_t errlen)
{
	char path[32];
	struct config *port;

	snprintf(path, sizeof(path), "port.%d", n);
	port = config_node_make(node, path);
	if (!port) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (config_set(port, "type", type, err, errlen) < 0)
		return -1;
	return blockif_legacy_config(port, opts, err, errlen);
}

/* The start of the next port's options (",hd:" or ",cd:"), or NULL. */
static char *
ahci_legacy_next(char *s)
{
	char *hd = strstr(s, ",hd:"), *cd = strstr(s, ",cd:");

	if (!hd || (cd && cd < hd))
		return cd;
	return hd;
}

/* -s SLOT,ahci,hd:PATH[,opt...],cd:PATH[,opt...],...: ports 0, 1, ... */
static int
ahci_legacy_config(struct config *node, const char *opts, char *err,
		   size_t errlen)
{
	char *copy = strdup(opts), *s = copy, *next;
	int n = 0, rc = 0;

	if (!copy)
		return -1;
	for (; s && rc == 0; s = next, n++) {
		next = ahci_legacy_next(s);
		if (next)
			*next++ = '\0';
		if (n == AHCI_MAX_PORTS) {
			snprintf(err, errlen, "more than %d ports",
				 AHCI_MAX_PORTS);
			rc = -1;
		} else if (strncmp(s, "hd:", 3) && strncmp(s, "cd:", 3)) {
			snprintf(err, errlen,
				 "port %d: '%s' (hd:PATH or cd:PATH)", n, s);
			rc = -1;
		} else {
			s[2] = '\0';
			rc = ahci_legacy_port(node, n, s, s + 3, err, errlen);
		}
	}
	free(copy);
	return rc;
}

static int
ahci_hd_legacy_config(struct config *node, const char *opts, char *err,
		      size_t errlen)
{
	return ahci_legacy_port(node, 0, "hd", opts, err, errlen);
}

static int
ahci_cd_legacy_config(struct config *node, const char *opts, char *err,
		      size_t errlen)
{
	return ahci_legacy_port(node, 0, "cd", opts, err, errlen);
}

static const struct pci_devemu pci_de_ahci = {
    .pe_emu = "ahci",
    .pe_legacy_config = ahci_legacy_config,
    .pe_init = pci_ahci_init,
    .pe_deinit = pci_ahci_deinit,
    .pe_barwrite = pci_ahci_write,
    .pe_barread = pci_ahci_read,
};
PCI_EMUL_SET(pci_de_ahci);

static const struct pci_devemu pci_de_ahci_hd = {
    .pe_emu = "ahci-hd",
    .pe_legacy_config = ahci_hd_legacy_config,
    .pe_init = pci_ahci_init,
    .pe_deinit = pci_ahci_deinit,
    .pe_barwrite = pci_ahci_write,
    .pe_barread = pci_ahci_read,
};
PCI_EMUL_SET(pci_de_ahci_hd);

static const struct pci_devemu pci_de_ahci_cd = {
    .pe_emu = "ahci-cd",
    .pe_legacy_config = ahci_cd_legacy_config,
    .pe_init = pci_ahci_init,
    .pe_deinit = pci_ahci_deinit,
    .pe_barwrite = pci_ahci_write,
    .pe_barread = pci_ahci_read,
};
PCI_EMUL_SET(pci_de_ahci_cd);
