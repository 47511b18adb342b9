/*
 * NVMe controller (NVM Express Base Specification 1.4) with one namespace,
 * as bhyve's pci_nvme.c:
 *
 *   -s SLOT,nvme,PATH|ram=MiB[,maxq=N][,qsz=N][,ioslots=N]
 *      [,sectsz=512|4096|8192][,ser=SERIAL][,eui64=N]
 *      [,dsm=auto|enable|disable][,ro][,nocache][,direct][,nodelete]
 *
 * or pci.B.S.F.{path,ram,maxq,...} (bhyve_config(5)). maxq is how many I/O
 * queue pairs the guest may create (16), qsz the most entries in a queue
 * (2048), ioslots how many I/O commands the disk backend holds at once (8:
 * the rest wait in their submission queues), sectsz the LBA size (the
 * image's sector size; 4096 for a RAM namespace).
 *
 * BAR 0/1 (64-bit) holds the registers and doorbells, BAR 4 the MSI-X table
 * with a vector for every completion queue; INTx when MSI-X is off.
 *
 * Guest memory is hostile: every submission queue entry, PRP list entry
 * and DSM range is copied once into a local and checked, queues and data
 * buffers must lie in guest RAM, and each bad value ends as the status the
 * spec gives it (or as an asynchronous event for a bad doorbell write).
 *
 * Not here: SGLs, metadata and protection information, fused commands,
 * more than one namespace or its management, Format NVM, firmware
 * updates, a controller memory buffer (their commands and fields are
 * refused with Invalid Opcode or Invalid Field); interrupt coalescing
 * settings are kept but every completion interrupts.
 *
 * Locking: one mutex per controller covers registers, queues and requests.
 * vCPU threads take it for every BAR access; the block backend's workers
 * take it in the completion callback, where it posts the completion entry
 * and feeds the submission queues that waited for a free request slot or
 * for room in their completion queue.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "block_if.h"
#include "byteorder.h"
#include "pci_emul.h"

#define NVME_VENDOR 0xfb5d /* bhyve's IDs */
#define NVME_DEVICE 0x0a0a
#define NVME_MSIX_BAR 4

#define NVME_PAGE 4096u /* CAP.MPSMIN = CAP.MPSMAX: 4 KiB pages only */
#define NVME_PAGE_MASK (NVME_PAGE - 1)
#define NVME_MDTS 8 /* 2^8 pages: 1 MiB per command */
#define NVME_MAX_XFER ((size_t)NVME_PAGE << NVME_MDTS)
/* An unaligned PRP1 adds one segment to the transfer's pages. */
#define NVME_MAX_SEGS ((1 << NVME_MDTS) + 1)
#define NVME_SUBREQS ((NVME_MAX_SEGS + BLOCKIF_IOV_MAX - 1) / BLOCKIF_IOV_MAX)
#define NVME_DSM_RANGES 256
#define NVME_AERL 3 /* four Asynchronous Event Requests outstanding */
#define NVME_ACL 3
#define NVME_SQES 64
#define NVME_CQES 16
#define NVME_TEMP_K 296	    /* composite temperature: 23 C */
#define NVME_WCTEMP_K 0x157 /* 70 C */
#define NVME_CCTEMP_K 0x175 /* 100 C */

#define NVME_MAXQ_DEFAULT 16
#define NVME_MAXQ_MAX 2047 /* one MSI-X vector per queue, 2048 in all */
#define NVME_QSZ_DEFAULT 2048
#define NVME_QSZ_MAX 65536 /* CAP.MQES is 16 bits, 0's based */
#define NVME_IOSLOTS_DEFAULT 8
#define NVME_RAM_MAX_MIB (1u << 20)

_Static_assert((NVME_SUBREQS * BLOCKIF_IOV_MAX) >= NVME_MAX_SEGS,
	       "a command's segments fit its backend requests");
_Static_assert(NVME_DSM_RANGES * 16 == NVME_PAGE, "DSM ranges fill a page");

/* Controller registers (§3.1). */
enum {
	NVME_CAP = 0x00,
	NVME_VS = 0x08,
	NVME_INTMS = 0x0c,
	NVME_INTMC = 0x10,
	NVME_CC = 0x14,
	NVME_CSTS = 0x1c,
	NVME_NSSR = 0x20,
	NVME_AQA = 0x24,
	NVME_ASQ = 0x28,
	NVME_ACQ = 0x30,
	NVME_DOORBELL = 0x1000,
};

#define NVME_VS_1_4 0x00010400u
#define CC_EN 0x1u
#define CC_CSS(cc) (((cc) >> 4) & 7)
#define CC_MPS(cc) (((cc) >> 7) & 0xf)
#define CC_AMS(cc) (((cc) >> 11) & 7)
#define CC_SHN(cc) (((cc) >> 14) & 3)
#define CC_IOSQES(cc) (((cc) >> 16) & 0xf)
#define CC_IOCQES(cc) (((cc) >> 20) & 0xf)
#define CC_WRITABLE 0x00fffff1u
#define CC_EN_FIXED 0x00003ff0u /* CSS, MPS, AMS: only while disabled */
#define CSTS_RDY 0x1u
#define CSTS_CFS 0x2u
#define CSTS_SHST_MASK 0xcu
#define CSTS_SHST_BUSY 0x4u
#define CSTS_SHST_DONE 0x8u

/* Admin opcodes (§5). */
enum {
	ADM_DELETE_SQ = 0x00,
	ADM_CREATE_SQ = 0x01,
	ADM_GET_LOG = 0x02,
	ADM_DELETE_CQ = 0x04,
	ADM_CREATE_CQ = 0x05,
	ADM_IDENTIFY = 0x06,
	ADM_ABORT = 0x08,
	ADM_SET_FEATURES = 0x09,
	ADM_GET_FEATURES = 0x0a,
	ADM_AER = 0x0c,
};

/* NVM command set opcodes (§6). */
enum {
	IO_FLUSH = 0x00,
	IO_WRITE = 0x01,
	IO_READ = 0x02,
	IO_WRITE_ZEROES = 0x08,
	IO_DSM = 0x09,
};

/* Feature identifiers (§5.21.1). */
enum {
	FEAT_ARBITRATION = 0x01,
	FEAT_POWER_MGMT = 0x02,
	FEAT_TEMP_THRESHOLD = 0x04,
	FEAT_ERROR_RECOVERY = 0x05,
	FEAT_VOLATILE_WC = 0x06,
	FEAT_NUM_QUEUES = 0x07,
	FEAT_INT_COALESCING = 0x08,
	FEAT_INT_VECTOR = 0x09,
	FEAT_WRITE_ATOMICITY = 0x0a,
	FEAT_ASYNC_EVENT = 0x0b,
};

/* Log pages (§5.14.1). */
enum {
	LOG_ERROR = 0x01,
	LOG_SMART = 0x02,
	LOG_FIRMWARE = 0x03,
};

/*
 * Status fields as they sit in completion DW3 bits 31:17, shifted down by
 * 16 with the phase bit clear (§4.6.1): SC in bits 8:1, SCT in 11:9, DNR in
 * 15. Every error here is one a retry would meet again, so DNR is set.
 */
#define ST(sct, sc) ((uint16_t)(((sct) << 9) | ((sc) << 1) | 0x8000))
#define ST_OK ((uint16_t)0)
#define ST_PENDING ((uint16_t)0xffff) /* no completion yet */
/* Generic command status (§4.6.1.2.1). */
#define ST_INVALID_OPCODE ST(0, 0x01)
#define ST_INVALID_FIELD ST(0, 0x02)
#define ST_CID_CONFLICT ST(0, 0x03)
#define ST_DATA_XFER ST(0, 0x04)
#define ST_INTERNAL ST(0, 0x06)
#define ST_INVALID_NS ST(0, 0x0b)
#define ST_SEQUENCE ST(0, 0x0c)
#define ST_PRP_OFFSET ST(0, 0x13)
#define ST_WRITE_PROTECTED ST(0, 0x20)
#define ST_LBA_RANGE ST(0, 0x80)
/* Command specific status (§4.6.1.2.2). */
#define ST_INVALID_CQ ST(1, 0x00)
#define ST_INVALID_QID ST(1, 0x01)
#define ST_INVALID_QSIZE ST(1, 0x02)
#define ST_AER_LIMIT ST(1, 0x05)
#define ST_INVALID_IV ST(1, 0x08)
#define ST_INVALID_LOG ST(1, 0x09)
#define ST_QUEUE_DELETION ST(1, 0x0c)
#define ST_NOT_SAVEABLE ST(1, 0x0d)
/* Media and data integrity errors (§4.6.1.2.3). */
#define ST_WRITE_FAULT ST(2, 0x80)
#define ST_READ_ERROR ST(2, 0x81)

/* Asynchronous events (§5.2.1): types and the error-status information. */
enum { EV_ERROR = 0, EV_SMART = 1, EV_NTYPES = 2 };
#define EV_INFO_BAD_DB_REG 0x00
#define EV_INFO_BAD_DB_VALUE 0x01
#define EV_INFO_TEMPERATURE 0x01

/* A submission queue entry, decoded from its one copy (§4.2). */
struct nvme_cmd {
	uint8_t opc, fuse, psdt;
	uint16_t cid;
	uint32_t nsid;
	uint64_t prp1, prp2;
	uint32_t cdw10, cdw11, cdw12, cdw13;
};

struct nvme_sq {
	uint8_t *base; /* NULL: the queue does not exist */
	uint32_t size;
	uint32_t head; /* ours */
	uint32_t tail; /* the guest's, from its doorbell */
	uint16_t cqid;
	int inflight;  /* commands the backend has */
	bool starved;  /* stopped for a request slot or completion room */
	bool deleting; /* Delete I/O SQ waits for inflight to drain */
	uint16_t delete_cid;
};

struct nvme_cq {
	uint8_t *base;
	uint32_t size;
	uint32_t head;	   /* the guest's */
	uint32_t tail;	   /* ours */
	uint32_t reserved; /* entries promised to fetched commands */
	uint16_t phase;
	uint16_t iv;
	bool ien;
	bool irq_due;
	int nsq; /* submission queues that complete here */
};

enum nvme_op { OP_READ, OP_WRITE, OP_FLUSH, OP_ZERO, OP_DELETE };

/* A byte range of the namespace to deallocate. */
struct nvme_range {
	uint64_t off, len;
};

struct pci_nvme_softc;

/* A command the disk backend works on: one of ioslots. */
struct nvme_ioreq {
	struct pci_nvme_softc *sc;
	struct nvme_ioreq *next; /* free list */
	bool busy;
	unsigned int gen;
	uint16_t sqid, cid;
	enum nvme_op op;
	bool flush_after; /* FUA, or the write cache is off */
	int left;	  /* backend requests not yet called back */
	int err;
	uint64_t bytes;
	int nranges, range; /* DSM: deallocated one after another */
	struct nvme_range ranges[NVME_DSM_RANGES];
	struct blockif_req br[NVME_SUBREQS];
};

/* Feature values (§5.21.1); the defaults are a second copy. */
struct nvme_features {
	uint32_t arbitration;
	uint32_t power_mgmt;
	uint16_t temp_over, temp_under;
	uint32_t error_recovery;
	uint32_t wce;
	uint32_t int_coalescing;
	uint32_t write_atomicity;
	uint32_t async_event;
};

enum nvme_dsm { DSM_AUTO, DSM_ENABLE, DSM_DISABLE };

struct pci_nvme_softc {
	struct pci_devinst *pi;
	pthread_mutex_t mtx;

	/* Settings. */
	uint32_t maxq, qsz, ioslots;
	char serial[21];
	uint64_t eui64;
	bool dsm;	 /* ONCS advertises Dataset Management */
	bool can_delete; /* deallocation really happens */
	bool vwc;	 /* a volatile write cache to flush */

	/* The namespace: a block backend or memory of our own. */
	struct blockif_ctxt *bc;
	uint8_t *ram;
	uint64_t nsze;
	uint32_t sectsz;
	int lbads;
	bool ro;

	/* Registers (§3.1). */
	uint64_t cap, asq, acq;
	uint32_t cc, csts, aqa, intms;

	/* Controller state, reset by CC.EN 1 -> 0. */
	bool ready;	/* queues run */
	bool resetting; /* CSTS.RDY clears when the old I/O drains */
	unsigned int gen;
	struct nvme_sq *sq; /* [0..maxq], 0 is the admin queue */
	struct nvme_cq *cq;
	uint32_t nsq_alloc, ncq_alloc; /* Number of Queues */
	bool ioq_made;
	bool admin_stalled; /* a Delete I/O SQ waits */
	int nstarved;
	uint32_t resume_from;
	uint16_t *due; /* completion queues with an interrupt to send */
	int ndue;
	bool intx;
	struct nvme_features feat, feat_default;
	uint8_t *iv_cd; /* Interrupt Vector Configuration: CD per vector */

	/* Asynchronous events (§5.2). */
	uint16_t aer_cid[NVME_AERL + 1];
	int naer;
	uint8_t ev_pending, ev_masked;
	uint8_t ev_info[EV_NTYPES], ev_lid[EV_NTYPES];

	/* Log data. */
	uint8_t error_log[64];
	uint64_t error_count;
	uint64_t read_bytes, write_bytes, reads, writes;

	/* I/O requests. */
	struct nvme_ioreq *reqs, *free;
	int inflight;
	struct blockif_req shutdown_req;
	bool shutdown_busy;
};

/* ---- guest memory ---- */

static uint8_t *
nvme_map(struct pci_nvme_softc *sc, uint64_t gpa, size_t len)
{
	return vm_map_gpa(sc->pi->pi_vmctx, gpa, len);
}

/* Host iovecs for guest buffers, adjacent ones merged. */
struct nvme_sg {
	struct iovec *iov;
	int n, max;
};

static uint16_t
sg_add(struct pci_nvme_softc *sc, struct nvme_sg *s, uint64_t gpa, size_t len)
{
	uint8_t *p = nvme_map(sc, gpa, len);
	struct iovec *last = s->n ? &s->iov[s->n - 1] : NULL;

	if (!p)
		return ST_DATA_XFER;
	if (last && (uint8_t *)last->iov_base + last->iov_len == p) {
		last->iov_len += len;
		return ST_OK;
	}
	if (s->n == s->max)
		return ST_DATA_XFER;
	s->iov[s->n++] = (struct iovec){p, len};
	return ST_OK;
}

/*
 * The rest of a transfer through a PRP list at list (§4.3): entries are
 * whole pages (offset 0), and when more are needed than the list's page
 * holds, its last entry points to the next list page. The walk ends with
 * the data, at most one list hop per page of it.
 */
static uint16_t
nvme_prp_list(struct pci_nvme_softc *sc, uint64_t list, size_t len,
	      struct nvme_sg *s)
{
	uint16_t st;

	if (list & 7)
		return ST_PRP_OFFSET;
	for (int hops = 0; len > 0; hops++) {
		size_t slots = (NVME_PAGE - (list & NVME_PAGE_MASK)) / 8;
		size_t need = (len + NVME_PAGE - 1) / NVME_PAGE;
		size_t use = need <= slots ? need : slots - 1;
		const uint8_t *lp = nvme_map(sc, list, slots * 8);

		if (!lp || hops > (1 << NVME_MDTS))
			return ST_DATA_XFER;
		for (size_t i = 0; i < use; i++) {
			uint64_t e = le64_get(lp + 8 * i); /* read once */
			size_t n = len < NVME_PAGE ? len : NVME_PAGE;

			if (e & NVME_PAGE_MASK)
				return ST_PRP_OFFSET;
			if ((st = sg_add(sc, s, e, n)) != ST_OK)
				return st;
			len -= n;
		}
		if (len == 0)
			break;
		list = le64_get(lp + 8 * (slots - 1));
		if (list & NVME_PAGE_MASK)
			return ST_PRP_OFFSET;
	}
	return ST_OK;
}

/*
 * A command's data pointer as iovecs (§4.3): PRP1 starts anywhere
 * dword-aligned and runs to its page's end; PRP2 is the second page when
 * the transfer ends there, a PRP list when it goes on.
 */
static uint16_t
nvme_prp_map(struct pci_nvme_softc *sc, const struct nvme_cmd *c, size_t len,
	     struct nvme_sg *s)
{
	size_t first = NVME_PAGE - (c->prp1 & NVME_PAGE_MASK);
	uint16_t st;

	if (c->prp1 & 3)
		return ST_PRP_OFFSET;
	if (first > len)
		first = len;
	if ((st = sg_add(sc, s, c->prp1, first)) != ST_OK)
		return st;
	len -= first;
	if (len == 0)
		return ST_OK;
	if (len <= NVME_PAGE) {
		if (c->prp2 & NVME_PAGE_MASK)
			return ST_PRP_OFFSET;
		return sg_add(sc, s, c->prp2, len);
	}
	return nvme_prp_list(sc, c->prp2, len, s);
}

/* Copy between buf and the command's data buffer (at most a page or two). */
static uint16_t
nvme_copy(struct pci_nvme_softc *sc, const struct nvme_cmd *c, void *buf,
	  size_t len, bool to_guest)
{
	struct iovec iov[3];
	struct nvme_sg s = {iov, 0, 3};
	uint8_t *p = buf;
	uint16_t st;

	if (len == 0)
		return ST_OK;
	if ((st = nvme_prp_map(sc, c, len, &s)) != ST_OK)
		return st;
	for (int i = 0; i < s.n; i++) {
		if (to_guest)
			memcpy(iov[i].iov_base, p, iov[i].iov_len);
		else
			memcpy(p, iov[i].iov_base, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	return ST_OK;
}

/* ---- interrupts ---- */

/* INTx is a level: up while an enabled queue holds unread entries. */
static void
nvme_intx_update(struct pci_nvme_softc *sc)
{
	bool want = false;

	if (!pci_msix_enabled(sc->pi) && !(sc->intms & 1))
		for (uint32_t q = 0; q <= sc->maxq && !want; q++)
			want = sc->cq[q].base && sc->cq[q].ien &&
			       sc->cq[q].head != sc->cq[q].tail;
	if (want == sc->intx)
		return;
	sc->intx = want;
	if (want)
		pci_lintr_assert(sc->pi);
	else
		pci_lintr_deassert(sc->pi);
}

/* Send the interrupts of every queue that got entries (lock held). */
static void
nvme_irqs_flush(struct pci_nvme_softc *sc)
{
	bool msix = pci_msix_enabled(sc->pi);

	for (int i = 0; i < sc->ndue; i++) {
		struct nvme_cq *cq = &sc->cq[sc->due[i]];

		cq->irq_due = false;
		if (msix && cq->base && cq->ien)
			pci_generate_msix(sc->pi, cq->iv);
	}
	sc->ndue = 0;
	nvme_intx_update(sc);
}

/* ---- completion queues ---- */

static uint32_t
cq_used(const struct nvme_cq *cq)
{
	return (cq->tail + cq->size - cq->head) % cq->size;
}

/* Room for one more command's completion, counting those promised. */
static bool
cq_has_room(const struct nvme_cq *cq)
{
	return cq_used(cq) + cq->reserved < cq->size - 1;
}

/*
 * Post a completion for command cid of submission queue sqid into the room
 * reserved when it was fetched (§4.6). The status word, with the phase
 * tag, goes last so the guest never sees a half-written entry.
 */
static void
nvme_post(struct pci_nvme_softc *sc, uint16_t sqid, uint16_t cid, uint32_t dw0,
	  uint16_t status)
{
	struct nvme_sq *sq = &sc->sq[sqid];
	struct nvme_cq *cq = &sc->cq[sq->cqid];
	uint8_t *e = cq->base + (size_t)cq->tail * NVME_CQES;

	le32_put(e, dw0);
	le32_put(e + 4, 0);
	le16_put(e + 8, (uint16_t)sq->head);
	le16_put(e + 10, sqid);
	le16_put(e + 12, cid);
	__atomic_store_n((uint16_t *)(e + 14), (uint16_t)(status | cq->phase),
			 __ATOMIC_RELEASE);
	if (++cq->tail == cq->size) {
		cq->tail = 0;
		cq->phase ^= 1;
	}
	cq->reserved--;
	if (!cq->irq_due) {
		cq->irq_due = true;
		sc->due[sc->ndue++] = sq->cqid;
	}
}

/* ---- asynchronous events (§5.2) ---- */

/* Complete outstanding AERs with events not masked (lock held). */
static void
nvme_events_deliver(struct pci_nvme_softc *sc)
{
	for (int t = 0; t < EV_NTYPES && sc->naer > 0; t++) {
		uint8_t bit = (uint8_t)(1u << t);

		if (!(sc->ev_pending & bit) || (sc->ev_masked & bit))
			continue;
		sc->ev_pending &= ~bit;
		/* Masked until the host reads the log page (§5.2). */
		sc->ev_masked |= bit;
		nvme_post(sc, 0, sc->aer_cid[--sc->naer],
			  (uint32_t)t | (uint32_t)sc->ev_info[t] << 8 |
			      (uint32_t)sc->ev_lid[t] << 16,
			  ST_OK);
	}
}

/*
 * Note an event; it goes out with the next delivery (after the admin
 * command that raised it, or at once for a doorbell error).
 */
static void
nvme_event(struct pci_nvme_softc *sc, int type, uint8_t info, uint8_t lid)
{
	uint8_t bit = (uint8_t)(1u << type);

	if (!sc->ready || (sc->ev_pending & bit))
		return; /* one of a type waits at a time */
	sc->ev_pending |= bit;
	sc->ev_info[type] = info;
	sc->ev_lid[type] = lid;
}

/* A bad doorbell write: logged, reported as an error event (§4.1). */
static void
nvme_doorbell_error(struct pci_nvme_softc *sc, uint16_t qid, uint8_t info)
{
	memset(sc->error_log, 0, sizeof(sc->error_log));
	le64_put(sc->error_log, ++sc->error_count);
	le16_put(sc->error_log + 8, qid);
	le16_put(sc->error_log + 10, 0xffff); /* no command */
	le16_put(sc->error_log + 14, 0xffff); /* no parameter */
	nvme_event(sc, EV_ERROR, info, LOG_ERROR);
	nvme_events_deliver(sc);
}

/* Temperature over or under its thresholds: SMART critical warning bit 1. */
static uint8_t
nvme_critical_warning(const struct pci_nvme_softc *sc)
{
	bool hot = NVME_TEMP_K >= sc->feat.temp_over;
	bool cold = sc->feat.temp_under && NVME_TEMP_K <= sc->feat.temp_under;

	return hot || cold ? 0x02 : 0;
}

/* ---- I/O requests ---- */

static struct nvme_ioreq *
nvme_io_get(struct pci_nvme_softc *sc, uint16_t sqid, const struct nvme_cmd *c,
	    enum nvme_op op)
{
	struct nvme_ioreq *io = sc->free;

	sc->free = io->next;
	io->busy = true;
	io->gen = sc->gen;
	io->sqid = sqid;
	io->cid = c->cid;
	io->op = op;
	io->flush_after = false;
	io->err = 0;
	io->bytes = 0;
	io->nranges = io->range = 0;
	sc->inflight++;
	sc->sq[sqid].inflight++;
	return io;
}

static void nvme_reset_finish(struct pci_nvme_softc *sc);
static void nvme_enable(struct pci_nvme_softc *sc);
static void nvme_sq_run(struct pci_nvme_softc *sc, uint16_t qid);

/* The last of a Delete I/O SQ's commands is done: delete it now. */
static void
nvme_sq_free(struct pci_nvme_softc *sc, uint16_t qid)
{
	struct nvme_sq *sq = &sc->sq[qid];

	sc->cq[sq->cqid].nsq--;
	if (sq->starved)
		sc->nstarved--;
	*sq = (struct nvme_sq){0};
}

static void
nvme_sq_delete_finish(struct pci_nvme_softc *sc, uint16_t qid)
{
	uint16_t cid = sc->sq[qid].delete_cid;

	nvme_sq_free(sc, qid);
	nvme_post(sc, 0, cid, 0, ST_OK);
	sc->admin_stalled = false;
	nvme_sq_run(sc, 0);
}

static uint16_t
nvme_errno_status(enum nvme_op op, int err)
{
	if (err == 0)
		return ST_OK;
	if (err == EROFS)
		return ST_WRITE_PROTECTED;
	if (op == OP_READ)
		return ST_READ_ERROR;
	if (op == OP_WRITE || op == OP_ZERO)
		return ST_WRITE_FAULT;
	return ST_INTERNAL;
}

static void
nvme_account(struct pci_nvme_softc *sc, enum nvme_op op, uint64_t bytes)
{
	if (op == OP_READ) {
		sc->reads++;
		sc->read_bytes += bytes;
	} else if (op == OP_WRITE) {
		sc->writes++;
		sc->write_bytes += bytes;
	}
}

/*
 * A backend command is done: post its completion unless a reset came in
 * between (its queues are gone), free its slot, and finish the reset or
 * the queue deletion that waited for it.
 */
static void
nvme_io_finish(struct pci_nvme_softc *sc, struct nvme_ioreq *io)
{
	if (io->gen == sc->gen) {
		struct nvme_sq *sq = &sc->sq[io->sqid];

		if (!io->err)
			nvme_account(sc, io->op, io->bytes);
		nvme_post(sc, io->sqid, io->cid, 0,
			  nvme_errno_status(io->op, io->err));
		if (--sq->inflight == 0 && sq->deleting)
			nvme_sq_delete_finish(sc, io->sqid);
	}
	io->busy = false;
	io->next = sc->free;
	sc->free = io;
	if (--sc->inflight == 0 && sc->resetting)
		nvme_reset_finish(sc);
}

static int
nvme_bop(struct pci_nvme_softc *sc, struct blockif_req *br, enum nvme_op op)
{
	switch (op) {
	case OP_READ:
		return blockif_read(sc->bc, br);
	case OP_WRITE:
		return blockif_write(sc->bc, br);
	case OP_FLUSH:
		return blockif_flush(sc->bc, br);
	case OP_ZERO:
		return blockif_zero(sc->bc, br);
	case OP_DELETE:
		return blockif_delete(sc->bc, br);
	}
	return EINVAL;
}

/* Queue one range request (no data) on the first backend request. */
static int
nvme_io_range(struct pci_nvme_softc *sc, struct nvme_ioreq *io, enum nvme_op op,
	      uint64_t off, uint64_t len)
{
	struct blockif_req *br = &io->br[0];

	br->br_iovcnt = 0;
	br->br_offset = (off_t)off;
	br->br_resid = (ssize_t)len;
	io->left = 1;
	return nvme_bop(sc, br, op);
}

/* More backend work for the same command; true when it was queued. */
static bool
nvme_io_next(struct pci_nvme_softc *sc, struct nvme_ioreq *io)
{
	if (io->err || io->gen != sc->gen)
		return false;
	if (io->op == OP_DELETE && ++io->range < io->nranges) {
		io->err =
		    nvme_io_range(sc, io, OP_DELETE, io->ranges[io->range].off,
				  io->ranges[io->range].len);
		return io->err == 0;
	}
	if (io->flush_after) {
		io->flush_after = false;
		io->err = nvme_io_range(sc, io, OP_FLUSH, 0, 0);
		return io->err == 0;
	}
	return false;
}

static void nvme_resume(struct pci_nvme_softc *sc);

/* The backend's callback, on its worker thread. */
static void
nvme_io_done(struct blockif_req *br, int err)
{
	struct nvme_ioreq *io = br->br_param;
	struct pci_nvme_softc *sc = io->sc;

	pthread_mutex_lock(&sc->mtx);
	if (err && !io->err)
		io->err = err;
	if (--io->left == 0 && !nvme_io_next(sc, io)) {
		nvme_io_finish(sc, io);
		nvme_resume(sc);
	}
	nvme_irqs_flush(sc);
	pthread_mutex_unlock(&sc->mtx);
}

/*
 * Hand a read or write of iov (n segments, len bytes at off) to the
 * backend, split into requests of at most BLOCKIF_IOV_MAX segments.
 */
static uint16_t
nvme_io_rw_submit(struct pci_nvme_softc *sc, struct nvme_ioreq *io,
		  const struct iovec *iov, int n, uint64_t off)
{
	int nsub = (n + BLOCKIF_IOV_MAX - 1) / BLOCKIF_IOV_MAX;

	io->left = nsub;
	for (int k = 0; k < nsub; k++) {
		struct blockif_req *br = &io->br[k];
		int cnt = n - k * BLOCKIF_IOV_MAX;
		ssize_t bytes = 0;

		br->br_iovcnt = cnt < BLOCKIF_IOV_MAX ? cnt : BLOCKIF_IOV_MAX;
		for (int i = 0; i < br->br_iovcnt; i++) {
			br->br_iov[i] = iov[k * BLOCKIF_IOV_MAX + i];
			bytes += (ssize_t)br->br_iov[i].iov_len;
		}
		br->br_offset = (off_t)off;
		br->br_resid = bytes;
		off += (uint64_t)bytes;
		if (nvme_bop(sc, br, io->op) != 0) {
			/* Those queued finish the command, with an error. */
			io->err = EIO;
			io->left -= nsub - k;
			return io->left ? ST_PENDING : ST_INTERNAL;
		}
	}
	return ST_PENDING;
}

/* Undo nvme_io_get for a command that never reached the backend. */
static void
nvme_io_put(struct pci_nvme_softc *sc, struct nvme_ioreq *io)
{
	sc->sq[io->sqid].inflight--;
	io->gen = sc->gen - 1; /* no completion from nvme_io_finish */
	nvme_io_finish(sc, io);
}

/* ---- NVM commands (§6) ---- */

/* Is [slba, slba + nlb) on the namespace? Its byte range if so. */
static uint16_t
nvme_lba_range(const struct pci_nvme_softc *sc, uint64_t slba, uint64_t nlb,
	       uint64_t *off, uint64_t *len)
{
	if (slba > sc->nsze || nlb > sc->nsze - slba)
		return ST_LBA_RANGE;
	*off = slba << sc->lbads;
	*len = nlb << sc->lbads;
	return ST_OK;
}

static void
nvme_ram_rw(struct pci_nvme_softc *sc, const struct iovec *iov, int n,
	    uint64_t off, bool write)
{
	for (int i = 0; i < n; i++) {
		if (write)
			memcpy(sc->ram + off, iov[i].iov_base, iov[i].iov_len);
		else
			memcpy(iov[i].iov_base, sc->ram + off, iov[i].iov_len);
		off += iov[i].iov_len;
	}
}

/* Writes the host must find on stable storage before completion. */
static bool
nvme_needs_flush(const struct pci_nvme_softc *sc, uint32_t cdw12)
{
	return sc->vwc && ((cdw12 & (1u << 30)) || !sc->feat.wce);
}

/* Read and Write: SLBA in CDW10-11, NLB (0's based) in CDW12 15:0. */
static uint16_t
nvme_rw(struct pci_nvme_softc *sc, uint16_t sqid, const struct nvme_cmd *c)
{
	bool write = c->opc == IO_WRITE;
	uint64_t slba = c->cdw10 | (uint64_t)c->cdw11 << 32, off, len;
	struct iovec iov[NVME_MAX_SEGS];
	struct nvme_sg s = {iov, 0, NVME_MAX_SEGS};
	struct nvme_ioreq *io;
	uint16_t st;

	if (write && sc->ro)
		return ST_WRITE_PROTECTED;
	st = nvme_lba_range(sc, slba, (c->cdw12 & 0xffff) + 1u, &off, &len);
	if (st != ST_OK)
		return st;
	if (len > NVME_MAX_XFER) /* MDTS */
		return ST_INVALID_FIELD;
	if ((st = nvme_prp_map(sc, c, len, &s)) != ST_OK)
		return st;
	if (sc->ram) {
		nvme_ram_rw(sc, iov, s.n, off, write);
		nvme_account(sc, write ? OP_WRITE : OP_READ, len);
		return ST_OK;
	}
	io = nvme_io_get(sc, sqid, c, write ? OP_WRITE : OP_READ);
	io->bytes = len;
	io->flush_after = write && nvme_needs_flush(sc, c->cdw12);
	st = nvme_io_rw_submit(sc, io, iov, s.n, off);
	if (st != ST_PENDING)
		nvme_io_put(sc, io);
	return st;
}

/* Queue a single range operation for a command; its status. */
static uint16_t
nvme_io_single(struct pci_nvme_softc *sc, uint16_t sqid,
	       const struct nvme_cmd *c, enum nvme_op op, uint64_t off,
	       uint64_t len, bool flush_after)
{
	struct nvme_ioreq *io = nvme_io_get(sc, sqid, c, op);

	io->flush_after = flush_after;
	if (nvme_io_range(sc, io, op, off, len) != 0) {
		nvme_io_put(sc, io);
		return ST_INTERNAL;
	}
	return ST_PENDING;
}

static uint16_t
nvme_flush(struct pci_nvme_softc *sc, uint16_t sqid, const struct nvme_cmd *c)
{
	if (sc->ram)
		return ST_OK;
	return nvme_io_single(sc, sqid, c, OP_FLUSH, 0, 0, false);
}

/* Write Zeroes: SLBA, NLB as for a write; no data moves (§6.17). */
static uint16_t
nvme_write_zeroes(struct pci_nvme_softc *sc, uint16_t sqid,
		  const struct nvme_cmd *c)
{
	uint64_t slba = c->cdw10 | (uint64_t)c->cdw11 << 32, off, len;
	uint16_t st;

	if (sc->ro)
		return ST_WRITE_PROTECTED;
	st = nvme_lba_range(sc, slba, (c->cdw12 & 0xffff) + 1u, &off, &len);
	if (st != ST_OK)
		return st;
	if (sc->ram) {
		memset(sc->ram + off, 0, len);
		return ST_OK;
	}
	return nvme_io_single(sc, sqid, c, OP_ZERO, off, len,
			      nvme_needs_flush(sc, c->cdw12));
}

/*
 * The ranges of a DSM deallocate, copied once from the guest and checked
 * (16 bytes each: attributes, length in LBAs, starting LBA); the byte
 * ranges to discard in out, empty ones left out.
 */
static uint16_t
nvme_dsm_ranges(struct pci_nvme_softc *sc, const struct nvme_cmd *c,
		struct nvme_range *out, int *count)
{
	uint8_t buf[NVME_DSM_RANGES * 16];
	int nr = (int)(c->cdw10 & 0xff) + 1, k = 0;
	uint16_t st;

	if ((st = nvme_copy(sc, c, buf, (size_t)nr * 16, false)) != ST_OK)
		return st;
	for (int i = 0; i < nr; i++) {
		uint32_t nlb = le32_get(buf + 16 * i + 4);
		uint64_t slba = le64_get(buf + 16 * i + 8), off, len;

		if ((st = nvme_lba_range(sc, slba, nlb, &off, &len)) != ST_OK)
			return st;
		if (len)
			out[k++] = (struct nvme_range){off, len};
	}
	*count = k;
	return ST_OK;
}

/* Dataset Management: NR in CDW10 7:0, AD (deallocate) in CDW11 bit 2. */
static uint16_t
nvme_dsm(struct pci_nvme_softc *sc, uint16_t sqid, const struct nvme_cmd *c)
{
	struct nvme_range ranges[NVME_DSM_RANGES];
	struct nvme_ioreq *io;
	uint16_t st;
	int n;

	if (!sc->dsm)
		return ST_INVALID_OPCODE;
	if (!(c->cdw11 & 4))
		return ST_OK; /* only hints */
	if (sc->ro)
		return ST_WRITE_PROTECTED;
	if (sc->ram) {
		if ((st = nvme_dsm_ranges(sc, c, ranges, &n)) != ST_OK)
			return st;
		for (int i = 0; i < n; i++)
			memset(sc->ram + ranges[i].off, 0, ranges[i].len);
		return ST_OK;
	}
	io = nvme_io_get(sc, sqid, c, OP_DELETE);
	st = nvme_dsm_ranges(sc, c, io->ranges, &n);
	if (st != ST_OK || n == 0 || !sc->can_delete) {
		/* Deallocation is advisory: without it, success (§6.7). */
		nvme_io_put(sc, io);
		return st;
	}
	io->nranges = n;
	if (nvme_io_range(sc, io, OP_DELETE, io->ranges[0].off,
			  io->ranges[0].len) != 0) {
		nvme_io_put(sc, io);
		return ST_INTERNAL;
	}
	return ST_PENDING;
}

/* Is a command with this CID still in the works on the queue? */
static bool
nvme_cid_busy(const struct pci_nvme_softc *sc, uint16_t sqid, uint16_t cid)
{
	if (!sc->bc)
		return false; /* a RAM namespace finishes every command */
	for (uint32_t i = 0; i < sc->ioslots; i++) {
		const struct nvme_ioreq *io = &sc->reqs[i];

		if (io->busy && io->gen == sc->gen && io->sqid == sqid &&
		    io->cid == cid)
			return true;
	}
	return false;
}

static uint16_t
nvme_io_cmd(struct pci_nvme_softc *sc, uint16_t sqid, const struct nvme_cmd *c)
{
	bool any_ns = c->opc == IO_FLUSH && c->nsid == 0xffffffffu;

	if (c->fuse || c->psdt) /* no fused commands, no SGLs */
		return ST_INVALID_FIELD;
	if (nvme_cid_busy(sc, sqid, c->cid))
		return ST_CID_CONFLICT;
	if (c->opc != IO_FLUSH && c->opc != IO_WRITE && c->opc != IO_READ &&
	    c->opc != IO_WRITE_ZEROES && c->opc != IO_DSM)
		return ST_INVALID_OPCODE;
	if (c->nsid != 1 && !any_ns)
		return ST_INVALID_NS;
	switch (c->opc) {
	case IO_FLUSH:
		return nvme_flush(sc, sqid, c);
	case IO_WRITE:
	case IO_READ:
		return nvme_rw(sc, sqid, c);
	case IO_WRITE_ZEROES:
		return nvme_write_zeroes(sc, sqid, c);
	default:
		return nvme_dsm(sc, sqid, c);
	}
}

/* ---- Identify (§5.15) ---- */

/* An ASCII field padded with spaces. */
static void
put_ascii(uint8_t *dst, size_t len, const char *s)
{
	size_t n = strlen(s);

	memset(dst, ' ', len);
	memcpy(dst, s, n < len ? n : len);
}

static void
nvme_identify_ctrl(struct pci_nvme_softc *sc, uint8_t *d)
{
	char nqn[256];

	le16_put(d + 0, NVME_VENDOR);
	le16_put(d + 2, NVME_VENDOR);
	put_ascii(d + 4, 20, sc->serial);
	put_ascii(d + 24, 40, "bhyve-NVMe");
	put_ascii(d + 64, 8, "1.0");
	d[72] = 4;    /* RAB */
	d[73] = 0xfc; /* IEEE OUI 58-9C-FC, least significant first */
	d[74] = 0x9c;
	d[75] = 0x58;
	d[77] = NVME_MDTS;
	le32_put(d + 80, NVME_VS_1_4);
	d[111] = 1; /* CNTRLTYPE: I/O controller */
	d[258] = NVME_ACL;
	d[259] = NVME_AERL;
	d[260] = 0x03; /* FRMW: one slot, read-only */
	d[261] = 0x04; /* LPA: log page offsets */
	le16_put(d + 266, NVME_WCTEMP_K);
	le16_put(d + 268, NVME_CCTEMP_K);
	le32_put(d + 328, 2u << 30); /* SANICAP: media not modified */
	d[512] = 0x66;		     /* SQES: 64 bytes */
	d[513] = 0x44;		     /* CQES: 16 bytes */
	le32_put(d + 516, 1);	     /* NN */
	le16_put(d + 520, (sc->dsm ? 0x04 : 0) | 0x08); /* ONCS: DSM, WZ */
	d[525] = (sc->vwc ? 0x01 : 0) | 0x06; /* VWC, flush all NSIDs */
	snprintf(nqn, sizeof(nqn), "nqn.2014-08.org.nvmexpress:%04x%04x%s%s",
		 NVME_VENDOR, NVME_VENDOR, sc->serial, "bhyve-NVMe");
	memcpy(d + 768, nqn, strlen(nqn)); /* SUBNQN, one per serial */
}

static void
nvme_identify_ns(struct pci_nvme_softc *sc, uint8_t *d)
{
	le64_put(d + 0, sc->nsze);  /* NSZE */
	le64_put(d + 8, sc->nsze);  /* NCAP */
	le64_put(d + 16, sc->nsze); /* NUSE */
	d[99] = sc->ro ? 1 : 0;	    /* NSATTR: write protected */
	for (int i = 0; i < 8; i++) /* EUI64, big-endian */
		d[120 + i] = (uint8_t)(sc->eui64 >> (56 - 8 * i));
	le32_put(d + 128, (uint32_t)sc->lbads << 16); /* LBAF0 */
}

static uint16_t
nvme_identify(struct pci_nvme_softc *sc, const struct nvme_cmd *c)
{
	uint8_t d[NVME_PAGE] = {0};

	switch (c->cdw10 & 0xff) {
	case 0x00: /* the namespace */
		if (c->nsid != 1)
			return ST_INVALID_NS;
		nvme_identify_ns(sc, d);
		break;
	case 0x01: /* the controller */
		nvme_identify_ctrl(sc, d);
		break;
	case 0x02: /* active namespaces above NSID */
		if (c->nsid >= 0xfffffffeu)
			return ST_INVALID_NS;
		if (c->nsid < 1)
			le32_put(d, 1);
		break;
	case 0x03: /* the namespace's identifiers: its EUI-64 */
		if (c->nsid != 1)
			return ST_INVALID_NS;
		d[0] = 1; /* NIDT: EUI-64 */
		d[1] = 8; /* NIDL */
		for (int i = 0; i < 8; i++)
			d[4 + i] = (uint8_t)(sc->eui64 >> (56 - 8 * i));
		break;
	default:
		return ST_INVALID_FIELD;
	}
	return nvme_copy(sc, c, d, sizeof(d), true);
}

/* ---- Get Log Page (§5.14) ---- */

static void
put_u128(uint8_t *p, uint64_t v)
{
	le64_put(p, v);
	le64_put(p + 8, 0);
}

/* SMART / Health Information (§5.14.1.2); data units are 512,000 bytes. */
static void
nvme_log_smart(struct pci_nvme_softc *sc, uint8_t *d)
{
	d[0] = nvme_critical_warning(sc);
	le16_put(d + 1, NVME_TEMP_K);
	d[3] = 100; /* available spare */
	d[4] = 10;  /* its threshold */
	put_u128(d + 32, (sc->read_bytes / 512 + 999) / 1000);
	put_u128(d + 48, (sc->write_bytes / 512 + 999) / 1000);
	put_u128(d + 64, sc->reads);
	put_u128(d + 80, sc->writes);
	put_u128(d + 112, 1); /* power cycles */
	put_u128(d + 176, sc->error_count);
}

/*
 * LID in CDW10 7:0, RAE in bit 15, the dword count (0's based) in NUMDL
 * (CDW10 31:16) and NUMDU (CDW11 15:0), the byte offset in CDW12-13.
 * Only what the log holds past the offset is transferred.
 */
static uint16_t
nvme_get_log(struct pci_nvme_softc *sc, const struct nvme_cmd *c)
{
	uint64_t len =
	    (((uint64_t)(c->cdw11 & 0xffff) << 16 | c->cdw10 >> 16) + 1) * 4;
	uint64_t off = c->cdw12 | (uint64_t)c->cdw13 << 32;
	uint8_t d[512] = {0};
	size_t size = sizeof(d);
	int lid = c->cdw10 & 0xff, ev = -1;
	uint16_t st;

	if (len > NVME_MAX_XFER || (off & 3))
		return ST_INVALID_FIELD;
	switch (lid) {
	case LOG_ERROR:
		memcpy(d, sc->error_log, sizeof(sc->error_log));
		size = sizeof(sc->error_log); /* ELPE 0: one entry */
		ev = EV_ERROR;
		break;
	case LOG_SMART:
		if (c->nsid != 0 && c->nsid != 1 && c->nsid != 0xffffffffu)
			return ST_INVALID_NS;
		nvme_log_smart(sc, d);
		ev = EV_SMART;
		break;
	case LOG_FIRMWARE:
		d[0] = 1; /* slot 1 active */
		put_ascii(d + 8, 8, "1.0");
		break;
	default:
		return ST_INVALID_LOG;
	}
	if (off > size)
		return ST_INVALID_FIELD;
	if (len > size - off)
		len = size - off;
	st = nvme_copy(sc, c, d + off, len, true);
	/* Read without RAE: events of its type come again (§5.2). */
	if (st == ST_OK && ev >= 0 && !(c->cdw10 & (1u << 15)))
		sc->ev_masked &= (uint8_t) ~(1u << ev);
	return st;
}

/* ---- Get and Set Features (§5.13, §5.21) ---- */

static uint16_t
nvme_feat_queues(struct pci_nvme_softc *sc, uint32_t cdw11, uint32_t *dw0)
{
	uint32_t nsqr = cdw11 & 0xffff, ncqr = cdw11 >> 16;

	if (nsqr == 0xffff || ncqr == 0xffff)
		return ST_INVALID_FIELD;
	if (sc->ioq_made)
		return ST_SEQUENCE; /* only before any I/O queue exists */
	sc->nsq_alloc = nsqr + 1 < sc->maxq ? nsqr + 1 : sc->maxq;
	sc->ncq_alloc = ncqr + 1 < sc->maxq ? ncqr + 1 : sc->maxq;
	*dw0 = (sc->nsq_alloc - 1) | (sc->ncq_alloc - 1) << 16;
	return ST_OK;
}

/* TMPTH in 15:0, TMPSEL 19:16 (0: composite, 15: all), THSEL 21:20. */
static uint16_t
nvme_feat_temp(struct pci_nvme_softc *sc, uint32_t cdw11, bool set,
	       struct nvme_features *f, uint32_t *dw0)
{
	uint32_t sel = (cdw11 >> 16) & 0xf, th = (cdw11 >> 20) & 3;
	uint16_t *v = th == 0 ? &f->temp_over : &f->temp_under;
	uint8_t before = nvme_critical_warning(sc);

	if (th > 1 || (sel != 0 && !(set && sel == 0xf)))
		return ST_INVALID_FIELD;
	if (!set) {
		*dw0 = *v;
		return ST_OK;
	}
	*v = (uint16_t)cdw11;
	/* A threshold crossed now raises a SMART event (§5.14.1.2). */
	if (!before && nvme_critical_warning(sc) && (f->async_event & 0x02))
		nvme_event(sc, EV_SMART, EV_INFO_TEMPERATURE, LOG_SMART);
	return ST_OK;
}

/* Interrupt Vector Configuration: IV in 15:0, CD (no coalescing) bit 16. */
static uint16_t
nvme_feat_iv(struct pci_nvme_softc *sc, uint32_t cdw11, bool set, uint32_t *dw0)
{
	uint32_t iv = cdw11 & 0xffff;
	bool cd = cdw11 & 0x10000;

	if (iv > sc->maxq)
		return ST_INVALID_FIELD;
	if (!set) {
		*dw0 = iv | (sc->iv_cd[iv] ? 0x10000u : 0);
		return ST_OK;
	}
	if (iv == 0 && !cd) /* no coalescing on the admin queue */
		return ST_INVALID_FIELD;
	sc->iv_cd[iv] = cd;
	return ST_OK;
}

/* A feature's value in f (current or default), or set it from cdw11. */
static uint16_t
nvme_feature(struct pci_nvme_softc *sc, const struct nvme_cmd *c, bool set,
	     struct nvme_features *f, uint32_t *dw0)
{
	uint32_t v = c->cdw11, *slot;

	switch (c->cdw10 & 0xff) {
	case FEAT_ARBITRATION:
		slot = &f->arbitration, v &= 0xffffff07;
		break;
	case FEAT_POWER_MGMT:
		if (set && (v & 0x1f) != 0) /* NPSS 0: state 0 only */
			return ST_INVALID_FIELD;
		slot = &f->power_mgmt, v &= 0xff;
		break;
	case FEAT_TEMP_THRESHOLD:
		return nvme_feat_temp(sc, v, set, f, dw0);
	case FEAT_ERROR_RECOVERY:
		if (set && (v & 0x10000)) /* no DULBE */
			return ST_INVALID_FIELD;
		slot = &f->error_recovery, v &= 0xffff;
		break;
	case FEAT_VOLATILE_WC:
		if (!sc->vwc)
			return ST_INVALID_FIELD;
		slot = &f->wce, v &= 1;
		break;
	case FEAT_NUM_QUEUES:
		if (set)
			return nvme_feat_queues(sc, v, dw0);
		*dw0 = (sc->nsq_alloc - 1) | (sc->ncq_alloc - 1) << 16;
		return ST_OK;
	case FEAT_INT_COALESCING:
		slot = &f->int_coalescing, v &= 0xffff;
		break;
	case FEAT_INT_VECTOR:
		return nvme_feat_iv(sc, v, set, dw0);
	case FEAT_WRITE_ATOMICITY:
		slot = &f->write_atomicity, v &= 1;
		break;
	case FEAT_ASYNC_EVENT:
		slot = &f->async_event, v &= 0xff; /* SMART warnings */
		break;
	default:
		return ST_INVALID_FIELD;
	}
	if (set)
		*slot = v;
	else
		*dw0 = *slot;
	return ST_OK;
}

/* SEL in CDW10 10:8: current, default, saved (= default), capabilities. */
static uint16_t
nvme_get_features(struct pci_nvme_softc *sc, const struct nvme_cmd *c,
		  uint32_t *dw0)
{
	struct nvme_features def = sc->feat_default;
	uint32_t sel = (c->cdw10 >> 8) & 7;
	uint32_t dummy;
	uint16_t st;

	switch (sel) {
	case 0:
		return nvme_feature(sc, c, false, &sc->feat, dw0);
	case 1:
	case 2:
		return nvme_feature(sc, c, false, &def, dw0);
	case 3:
		/* Supported and changeable; error recovery per namespace. */
		st = nvme_feature(sc, c, false, &def, &dummy);
		*dw0 =
		    0x4 | ((c->cdw10 & 0xff) == FEAT_ERROR_RECOVERY ? 0x2 : 0);
		return st;
	default:
		return ST_INVALID_FIELD;
	}
}

static uint16_t
nvme_set_features(struct pci_nvme_softc *sc, const struct nvme_cmd *c,
		  uint32_t *dw0)
{
	if (c->cdw10 & (1u << 31)) /* SV: nothing is saveable */
		return ST_NOT_SAVEABLE;
	return nvme_feature(sc, c, true, &sc->feat, dw0);
}

/* ---- queue management (§5.3 - §5.6) ---- */

/* A queue's memory: PC set, page aligned, all of it in guest RAM. */
static uint16_t
nvme_queue_mem(struct pci_nvme_softc *sc, const struct nvme_cmd *c,
	       size_t bytes, uint8_t **base)
{
	if (!(c->cdw11 & 1)) /* CAP.CQR: contiguous queues only */
		return ST_INVALID_FIELD;
	if (c->prp1 & NVME_PAGE_MASK)
		return ST_PRP_OFFSET;
	*base = nvme_map(sc, c->prp1, bytes);
	return *base ? ST_OK : ST_INVALID_FIELD;
}

/* QID in CDW10 15:0, QSIZE (0's based) 31:16, IV in CDW11 31:16. */
static uint16_t
nvme_create_cq(struct pci_nvme_softc *sc, const struct nvme_cmd *c)
{
	uint32_t qid = c->cdw10 & 0xffff, size = (c->cdw10 >> 16) + 1;
	uint16_t iv = (uint16_t)(c->cdw11 >> 16);
	bool msix = pci_msix_enabled(sc->pi);
	struct nvme_cq *cq;
	uint8_t *base;
	uint16_t st;

	if (qid == 0 || qid > sc->ncq_alloc || sc->cq[qid].base)
		return ST_INVALID_QID;
	if (size < 2 || size > sc->qsz)
		return ST_INVALID_QSIZE;
	/* Without MSI-X, vector 0 (INTx) is the only one. */
	if ((c->cdw11 & 2) && ((msix && iv > sc->maxq) || (!msix && iv != 0)))
		return ST_INVALID_IV;
	if (CC_IOCQES(sc->cc) != 4)
		return ST_INVALID_FIELD;
	if ((st = nvme_queue_mem(sc, c, (size_t)size * NVME_CQES, &base)))
		return st;
	cq = &sc->cq[qid];
	*cq = (struct nvme_cq){.base = base,
			       .size = size,
			       .phase = 1,
			       .iv = iv,
			       .ien = c->cdw11 & 2};
	sc->ioq_made = true;
	return ST_OK;
}

/* QID in CDW10 15:0, QSIZE 31:16, CQID in CDW11 31:16. */
static uint16_t
nvme_create_sq(struct pci_nvme_softc *sc, const struct nvme_cmd *c)
{
	uint32_t qid = c->cdw10 & 0xffff, size = (c->cdw10 >> 16) + 1;
	uint32_t cqid = c->cdw11 >> 16;
	uint8_t *base;
	uint16_t st;

	if (qid == 0 || qid > sc->nsq_alloc || sc->sq[qid].base)
		return ST_INVALID_QID;
	if (cqid == 0 || cqid > sc->maxq || !sc->cq[cqid].base)
		return ST_INVALID_CQ;
	if (size < 2 || size > sc->qsz)
		return ST_INVALID_QSIZE;
	if (CC_IOSQES(sc->cc) != 6)
		return ST_INVALID_FIELD;
	if ((st = nvme_queue_mem(sc, c, (size_t)size * NVME_SQES, &base)))
		return st;
	sc->sq[qid] = (struct nvme_sq){
	    .base = base, .size = size, .cqid = (uint16_t)cqid};
	sc->cq[cqid].nsq++;
	sc->ioq_made = true;
	return ST_OK;
}

/* Its commands in the backend finish first, then the deletion (§5.6). */
static uint16_t
nvme_delete_sq(struct pci_nvme_softc *sc, const struct nvme_cmd *c)
{
	uint32_t qid = c->cdw10 & 0xffff;
	struct nvme_sq *sq = &sc->sq[qid];

	if (qid == 0 || qid > sc->maxq || !sq->base || sq->deleting)
		return ST_INVALID_QID;
	if (sq->inflight == 0) {
		nvme_sq_free(sc, (uint16_t)qid);
		return ST_OK;
	}
	sq->deleting = true;
	sq->delete_cid = c->cid;
	sc->admin_stalled = true;
	return ST_PENDING;
}

static uint16_t
nvme_delete_cq(struct pci_nvme_softc *sc, const struct nvme_cmd *c)
{
	uint32_t qid = c->cdw10 & 0xffff;

	if (qid == 0 || qid > sc->maxq || !sc->cq[qid].base)
		return ST_INVALID_QID;
	if (sc->cq[qid].nsq > 0)
		return ST_QUEUE_DELETION;
	/* Off the interrupt list too: a new queue of this id starts clean. */
	for (int i = 0; i < sc->ndue; i++)
		if (sc->due[i] == qid)
			sc->due[i] = sc->due[--sc->ndue];
	sc->cq[qid] = (struct nvme_cq){0};
	return ST_OK;
}

/* ---- other admin commands ---- */

static uint16_t
nvme_aer(struct pci_nvme_softc *sc, const struct nvme_cmd *c)
{
	if (sc->naer > NVME_AERL)
		return ST_AER_LIMIT;
	sc->aer_cid[sc->naer++] = c->cid;
	return ST_PENDING; /* its completion room stays reserved */
}

/* Admin commands still outstanding with this CID. */
static bool
nvme_admin_cid_busy(const struct pci_nvme_softc *sc, uint16_t cid)
{
	for (int i = 0; i < sc->naer; i++)
		if (sc->aer_cid[i] == cid)
			return true;
	return false;
}

static uint16_t
nvme_admin_cmd(struct pci_nvme_softc *sc, const struct nvme_cmd *c,
	       uint32_t *dw0)
{
	if (c->fuse || c->psdt) /* admin commands take PRPs only */
		return ST_INVALID_FIELD;
	if (nvme_admin_cid_busy(sc, c->cid))
		return ST_CID_CONFLICT;
	switch (c->opc) {
	case ADM_DELETE_SQ:
		return nvme_delete_sq(sc, c);
	case ADM_CREATE_SQ:
		return nvme_create_sq(sc, c);
	case ADM_GET_LOG:
		return nvme_get_log(sc, c);
	case ADM_DELETE_CQ:
		return nvme_delete_cq(sc, c);
	case ADM_CREATE_CQ:
		return nvme_create_cq(sc, c);
	case ADM_IDENTIFY:
		return nvme_identify(sc, c);
	case ADM_ABORT:
		*dw0 = 1; /* not aborted: nothing waits long enough */
		return ST_OK;
	case ADM_SET_FEATURES:
		return nvme_set_features(sc, c, dw0);
	case ADM_GET_FEATURES:
		return nvme_get_features(sc, c, dw0);
	case ADM_AER:
		return nvme_aer(sc, c);
	default: /* Format NVM, namespace management, firmware, ... */
		return ST_INVALID_OPCODE;
	}
}

/* ---- submission queues ---- */

static void
nvme_cmd_decode(const uint8_t *e, struct nvme_cmd *c)
{
	uint32_t cdw0 = le32_get(e);

	c->opc = (uint8_t)cdw0;
	c->fuse = (cdw0 >> 8) & 3;
	c->psdt = (cdw0 >> 14) & 3;
	c->cid = (uint16_t)(cdw0 >> 16);
	c->nsid = le32_get(e + 4);
	c->prp1 = le64_get(e + 24);
	c->prp2 = le64_get(e + 32);
	c->cdw10 = le32_get(e + 40);
	c->cdw11 = le32_get(e + 44);
	c->cdw12 = le32_get(e + 48);
	c->cdw13 = le32_get(e + 52);
}

static void
nvme_starve(struct pci_nvme_softc *sc, struct nvme_sq *sq)
{
	if (!sq->starved) {
		sq->starved = true;
		sc->nstarved++;
	}
}

/*
 * Fetch and carry out the queue's commands up to its tail (lock held).
 * A command is only fetched with room in its completion queue reserved and,
 * for the disk backend, a request slot free; without them the queue waits
 * (starved) until a completion or a completion queue doorbell frees some.
 */
static void
nvme_sq_run(struct pci_nvme_softc *sc, uint16_t qid)
{
	struct nvme_sq *sq = &sc->sq[qid];
	struct nvme_cq *cq = &sc->cq[sq->cqid];
	uint8_t e[NVME_SQES];
	struct nvme_cmd c;

	while (sc->ready && sq->base && !sq->deleting && sq->head != sq->tail &&
	       !(qid == 0 && sc->admin_stalled)) {
		uint32_t dw0 = 0;
		uint16_t st;

		if (!cq_has_room(cq) || (qid && sc->bc && !sc->free)) {
			nvme_starve(sc, sq);
			return;
		}
		memcpy(e, sq->base + (size_t)sq->head * NVME_SQES, sizeof(e));
		sq->head = (sq->head + 1) % sq->size;
		nvme_cmd_decode(e, &c);
		cq->reserved++;
		st = qid ? nvme_io_cmd(sc, qid, &c)
			 : nvme_admin_cmd(sc, &c, &dw0);
		if (st != ST_PENDING)
			nvme_post(sc, qid, c.cid, dw0, st);
		if (qid == 0) /* an event the command raised or unmasked */
			nvme_events_deliver(sc);
	}
}

/* Run the queues that waited, starting after the last one served. */
static void
nvme_resume(struct pci_nvme_softc *sc)
{
	uint32_t n = sc->maxq + 1;

	for (uint32_t i = 0; i < n && sc->nstarved > 0; i++) {
		uint32_t q = (sc->resume_from + i) % n;

		if (!sc->sq[q].starved)
			continue;
		sc->sq[q].starved = false;
		sc->nstarved--;
		nvme_sq_run(sc, (uint16_t)q);
		sc->resume_from = (q + 1) % n;
	}
}

/* ---- doorbells (§3.1.24, §3.1.25) ---- */

static void
nvme_sq_doorbell(struct pci_nvme_softc *sc, uint16_t qid, uint32_t val)
{
	struct nvme_sq *sq = &sc->sq[qid];

	if (!sq->base) {
		nvme_doorbell_error(sc, qid, EV_INFO_BAD_DB_REG);
		return;
	}
	if (val >= sq->size) {
		nvme_doorbell_error(sc, qid, EV_INFO_BAD_DB_VALUE);
		return;
	}
	sq->tail = val;
	nvme_sq_run(sc, qid);
}

/* The new head may only consume entries we posted. */
static void
nvme_cq_doorbell(struct pci_nvme_softc *sc, uint16_t qid, uint32_t val)
{
	struct nvme_cq *cq = &sc->cq[qid];

	if (!cq->base) {
		nvme_doorbell_error(sc, qid, EV_INFO_BAD_DB_REG);
		return;
	}
	if (val >= cq->size ||
	    (val + cq->size - cq->head) % cq->size > cq_used(cq)) {
		nvme_doorbell_error(sc, qid, EV_INFO_BAD_DB_VALUE);
		return;
	}
	cq->head = val;
	nvme_resume(sc);
}

static void
nvme_doorbell(struct pci_nvme_softc *sc, uint64_t off, uint32_t val)
{
	uint64_t idx = (off - NVME_DOORBELL) / 4; /* CAP.DSTRD 0 */

	if (!sc->ready || idx / 2 > sc->maxq)
		return; /* nothing runs; past the doorbells: reserved */
	if (idx & 1)
		nvme_cq_doorbell(sc, (uint16_t)(idx / 2), val);
	else
		nvme_sq_doorbell(sc, (uint16_t)(idx / 2), val);
}

/* ---- controller state (§7.6) ---- */

static void
nvme_queues_clear(struct pci_nvme_softc *sc)
{
	memset(sc->sq, 0, (sc->maxq + 1) * sizeof(*sc->sq));
	memset(sc->cq, 0, (sc->maxq + 1) * sizeof(*sc->cq));
	memset(sc->iv_cd, 1, sc->maxq + 1);
	sc->ndue = 0;
	sc->nstarved = 0;
	sc->admin_stalled = false;
	sc->ioq_made = false;
	sc->nsq_alloc = sc->ncq_alloc = sc->maxq;
}

/* The reset proper, once no old command is with the backend. */
static void
nvme_reset_finish(struct pci_nvme_softc *sc)
{
	sc->resetting = false;
	nvme_queues_clear(sc);
	sc->naer = 0;
	sc->ev_pending = sc->ev_masked = 0;
	sc->feat = sc->feat_default;
	sc->csts &= ~(CSTS_RDY | CSTS_CFS);
	nvme_intx_update(sc);
	if (sc->cc & CC_EN) /* enabled again before RDY cleared */
		nvme_enable(sc);
}

/*
 * CC.EN 1 -> 0: queues stop now; commands the backend still has complete
 * into nothing (the generation changed), and CSTS.RDY clears after the
 * last of them, so the guest may reuse their buffers then.
 */
static void
nvme_reset_begin(struct pci_nvme_softc *sc)
{
	sc->ready = false;
	sc->gen++;
	if (sc->inflight > 0)
		sc->resetting = true;
	else
		nvme_reset_finish(sc);
}

/*
 * CC.EN 0 -> 1 (§7.6.1): NVM command set, 4 KiB pages, round robin, and
 * admin queues of 2 to 4096 entries in guest RAM; anything else is fatal.
 */
static void
nvme_enable(struct pci_nvme_softc *sc)
{
	uint32_t sqs = (sc->aqa & 0xfff) + 1,
		 cqs = ((sc->aqa >> 16) & 0xfff) + 1;
	uint8_t *sq, *cq;

	if (sc->csts & CSTS_CFS)
		return;
	if (sc->resetting) {
		/*
		 * Set before RDY cleared (§3.1.6 asks the host to wait):
		 * RDY reads 0 now and 1 once the reset and this enable are
		 * done, so a host polling for RDY sees when that is.
		 */
		sc->csts &= ~CSTS_RDY;
		return;
	}
	sq = nvme_map(sc, sc->asq, (size_t)sqs * NVME_SQES);
	cq = nvme_map(sc, sc->acq, (size_t)cqs * NVME_CQES);
	if (CC_CSS(sc->cc) != 0 || CC_MPS(sc->cc) != 0 || CC_AMS(sc->cc) != 0 ||
	    sqs < 2 || cqs < 2 || !sq || !cq) {
		sc->csts |= CSTS_CFS;
		return;
	}
	sc->sq[0] = (struct nvme_sq){.base = sq, .size = sqs, .cqid = 0};
	sc->cq[0] = (struct nvme_cq){.base = cq,
				     .size = cqs,
				     .phase = 1,
				     .ien = true,
				     .iv = 0,
				     .nsq = 1};
	sc->ready = true;
	sc->csts |= CSTS_RDY;
}

static void
nvme_shutdown_done(struct blockif_req *br, int err)
{
	struct pci_nvme_softc *sc = br->br_param;

	(void)err;
	pthread_mutex_lock(&sc->mtx);
	sc->shutdown_busy = false;
	sc->csts &= ~CSTS_SHST_MASK;
	if (CC_SHN(sc->cc)) /* still asked for */
		sc->csts |= CSTS_SHST_DONE;
	pthread_mutex_unlock(&sc->mtx);
}

/* CC.SHN: flush what was written, then report it done (§7.6.2). */
static void
nvme_shutdown(struct pci_nvme_softc *sc)
{
	sc->csts = (sc->csts & ~CSTS_SHST_MASK) | CSTS_SHST_BUSY;
	if (sc->bc && !sc->shutdown_busy) {
		sc->shutdown_req.br_iovcnt = 0;
		sc->shutdown_req.br_offset = 0;
		sc->shutdown_req.br_resid = 0;
		if (blockif_flush(sc->bc, &sc->shutdown_req) == 0) {
			sc->shutdown_busy = true;
			return;
		}
	}
	if (!sc->shutdown_busy)
		sc->csts = (sc->csts & ~CSTS_SHST_MASK) | CSTS_SHST_DONE;
}

static void
nvme_cc_write(struct pci_nvme_softc *sc, uint32_t val)
{
	uint32_t old = sc->cc;

	val &= CC_WRITABLE;
	if (old & CC_EN)
		val = (val & ~CC_EN_FIXED) | (old & CC_EN_FIXED);
	sc->cc = val;
	if ((old & CC_EN) && !(val & CC_EN))
		nvme_reset_begin(sc);
	else if (!(old & CC_EN) && (val & CC_EN))
		nvme_enable(sc);
	if (CC_SHN(val) && !CC_SHN(old))
		nvme_shutdown(sc);
	else if (!CC_SHN(val) && !sc->shutdown_busy)
		sc->csts &= ~CSTS_SHST_MASK;
}

/* ---- registers ---- */

static uint32_t
nvme_reg_read(struct pci_nvme_softc *sc, uint64_t off)
{
	switch (off) {
	case NVME_CAP:
		return (uint32_t)sc->cap;
	case NVME_CAP + 4:
		return (uint32_t)(sc->cap >> 32);
	case NVME_VS:
		return NVME_VS_1_4;
	case NVME_INTMS:
	case NVME_INTMC:
		return sc->intms;
	case NVME_CC:
		return sc->cc;
	case NVME_CSTS:
		return sc->csts;
	case NVME_AQA:
		return sc->aqa;
	case NVME_ASQ:
		return (uint32_t)sc->asq;
	case NVME_ASQ + 4:
		return (uint32_t)(sc->asq >> 32);
	case NVME_ACQ:
		return (uint32_t)sc->acq;
	case NVME_ACQ + 4:
		return (uint32_t)(sc->acq >> 32);
	default: /* reserved, NSSR, doorbells */
		return 0;
	}
}

static void
set_lo(uint64_t *r, uint32_t v)
{
	*r = (*r & ~0xffffffffULL) | v;
}

static void
set_hi(uint64_t *r, uint32_t v)
{
	*r = (*r & 0xffffffffULL) | (uint64_t)v << 32;
}

static void
nvme_reg_write(struct pci_nvme_softc *sc, uint64_t off, uint32_t val)
{
	if (off >= NVME_DOORBELL) {
		nvme_doorbell(sc, off, val);
		return;
	}
	switch (off) {
	case NVME_INTMS: /* pin-based and MSI only (§3.1.3) */
		if (!pci_msix_enabled(sc->pi))
			sc->intms |= val;
		nvme_intx_update(sc);
		break;
	case NVME_INTMC:
		if (!pci_msix_enabled(sc->pi))
			sc->intms &= ~val;
		nvme_intx_update(sc);
		break;
	case NVME_CC:
		nvme_cc_write(sc, val);
		break;
	case NVME_AQA:
		sc->aqa = val & 0x0fff0fff;
		break;
	case NVME_ASQ:
		set_lo(&sc->asq, val & ~NVME_PAGE_MASK);
		break;
	case NVME_ASQ + 4:
		set_hi(&sc->asq, val);
		break;
	case NVME_ACQ:
		set_lo(&sc->acq, val & ~NVME_PAGE_MASK);
		break;
	case NVME_ACQ + 4:
		set_hi(&sc->acq, val);
		break;
	default: /* read-only or reserved; NSSR: no subsystem reset */
		break;
	}
}

/* Registers are dwords; a qword access is two of them (§3.1). */
static void
pci_nvme_write(struct pci_devinst *pi, int baridx, uint64_t offset, int size,
	       uint64_t value)
{
	struct pci_nvme_softc *sc = pi->pi_arg;

	if (baridx != 0 || (size != 4 && size != 8) || (offset & 3))
		return;
	pthread_mutex_lock(&sc->mtx);
	nvme_reg_write(sc, offset, (uint32_t)value);
	if (size == 8)
		nvme_reg_write(sc, offset + 4, (uint32_t)(value >> 32));
	nvme_irqs_flush(sc);
	pthread_mutex_unlock(&sc->mtx);
}

static uint64_t
pci_nvme_read(struct pci_devinst *pi, int baridx, uint64_t offset, int size)
{
	struct pci_nvme_softc *sc = pi->pi_arg;
	uint64_t aligned = offset & ~3ULL, v;

	if (baridx != 0)
		return 0;
	pthread_mutex_lock(&sc->mtx);
	v = nvme_reg_read(sc, aligned) |
	    (uint64_t)nvme_reg_read(sc, aligned + 4) << 32;
	pthread_mutex_unlock(&sc->mtx);
	v >>= 8 * (offset & 3);
	return size == 8 ? v : v & ((1ULL << (8 * size)) - 1);
}

/* ---- set-up ---- */

/* Its own keys; block_if's (blockif_is_option) besides. */
static const char *const nvme_keys[] = {
    "device", "ram", "maxq", "qsz", "ioslots", "sectsz", "ser", "eui64", "dsm",
};

static int
nvme_check_key(const struct config *c, void *arg)
{
	const char *name = config_node_name(c);

	if (config_is_leaf(c) && blockif_is_option(name))
		return 0;
	for (size_t i = 0; i < sizeof(nvme_keys) / sizeof(nvme_keys[0]); i++)
		if (config_is_leaf(c) && !strcmp(name, nvme_keys[i]))
			return 0;
	*(const char **)arg = name;
	return 1;
}

static int
nvme_fail(struct pci_devinst *pi, const char *msg)
{
	fprintf(stderr, "bhyve: nvme at %d:%d:%d: %s\n", pi->pi_bus,
		pi->pi_slot, pi->pi_func, msg);
	return -1;
}

/* A decimal in [min, max]; the default when unset. */
static int
nvme_opt_uint(const struct config *node, const char *key, uint32_t min,
	      uint32_t max, uint32_t def, uint32_t *out, char *err,
	      size_t errlen)
{
	const char *v = config_get(node, key);
	unsigned long long n;
	char *end;

	*out = def;
	if (!v)
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *v < '0' || *v > '9' || *end || n < min || n > max) {
		snprintf(err, errlen, "bad %s '%s' (%u to %u)", key, v, min,
			 max);
		return -1;
	}
	*out = (uint32_t)n;
	return 0;
}

static int
nvme_opt_dsm(const struct config *node, enum nvme_dsm *out, char *err,
	     size_t errlen)
{
	const char *v = config_get(node, "dsm");

	*out = DSM_AUTO;
	if (!v || !strcmp(v, "auto"))
		return 0;
	if (!strcmp(v, "enable"))
		*out = DSM_ENABLE;
	else if (!strcmp(v, "disable"))
		*out = DSM_DISABLE;
	else {
		snprintf(err, errlen, "bad dsm '%s' (auto, enable, disable)",
			 v);
		return -1;
	}
	return 0;
}

/* ser: up to 20 printable ASCII characters (Identify SN). */
static int
nvme_opt_serial(struct pci_nvme_softc *sc, const struct config *node, char *err,
		size_t errlen)
{
	const char *v = config_get(node, "ser");

	if (!v && sc->pi->pi_bus == 0) { /* bhyve's */
		snprintf(sc->serial, sizeof(sc->serial), "NVME-%d-%d",
			 sc->pi->pi_slot, sc->pi->pi_func);
		return 0;
	}
	if (!v) { /* the serial names the subsystem (SUBNQN): unique */
		snprintf(sc->serial, sizeof(sc->serial), "NVME-%d-%d-%d",
			 sc->pi->pi_bus, sc->pi->pi_slot, sc->pi->pi_func);
		return 0;
	}
	for (const char *p = v; *p; p++)
		if (*p < 0x20 || *p > 0x7e || p - v >= 20) {
			snprintf(err, errlen,
				 "bad ser '%s' (up to 20 printable ASCII "
				 "characters)",
				 v);
			return -1;
		}
	snprintf(sc->serial, sizeof(sc->serial), "%s", v);
	return 0;
}

/* eui64: any number strtoull takes; 0 or unset makes one up. */
static int
nvme_opt_eui64(struct pci_nvme_softc *sc, const struct config *node, char *err,
	       size_t errlen)
{
	const char *v = config_get(node, "eui64");
	const char *name = vm_name(sc->pi->pi_vmctx);
	uint64_t h = 0xcbf29ce484222325ULL;
	char key[128];
	char *end;

	if (v) {
		errno = 0;
		sc->eui64 = strtoull(v, &end, 0);
		if (errno || end == v || *end || *v == '-') {
			snprintf(err, errlen, "bad eui64 '%s' (a number)", v);
			return -1;
		}
	}
	if (sc->eui64)
		return 0;
	/* FreeBSD's OUI as bhyve, then a hash of the VM and the slot. */
	snprintf(key, sizeof(key), "%s:%d:%d:%d", name ? name : "",
		 sc->pi->pi_bus, sc->pi->pi_slot, sc->pi->pi_func);
	for (const char *p = key; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	sc->eui64 = 0x589cfcULL << 40 | (h & 0xffffff) << 16 | 1;
	return 0;
}

static int
nvme_parse(struct pci_nvme_softc *sc, const struct config *node,
	   uint32_t *sectsz, enum nvme_dsm *dsm, char *err, size_t errlen)
{
	const char *bad = NULL;

	if (config_foreach(node, nvme_check_key, &bad)) {
		snprintf(err, errlen,
			 "unknown option '%s' (ram=MiB, maxq, qsz, ioslots, "
			 "sectsz, ser, eui64, dsm, " BLOCKIF_OPTIONS_HELP ")",
			 bad);
		return -1;
	}
	if (nvme_opt_uint(node, "maxq", 1, NVME_MAXQ_MAX, NVME_MAXQ_DEFAULT,
			  &sc->maxq, err, errlen) < 0 ||
	    nvme_opt_uint(node, "qsz", 2, NVME_QSZ_MAX, NVME_QSZ_DEFAULT,
			  &sc->qsz, err, errlen) < 0 ||
	    nvme_opt_uint(node, "ioslots", 1, 4096, NVME_IOSLOTS_DEFAULT,
			  &sc->ioslots, err, errlen) < 0 ||
	    nvme_opt_dsm(node, dsm, err, errlen) < 0 ||
	    nvme_opt_serial(sc, node, err, errlen) < 0 ||
	    nvme_opt_eui64(sc, node, err, errlen) < 0)
		return -1;
	*sectsz = 0;
	if (config_get(node, "sectsz") &&
	    (nvme_opt_uint(node, "sectsz", 512, 8192, 0, sectsz, err, errlen) <
		 0 ||
	     (*sectsz != 512 && *sectsz != 4096 && *sectsz != 8192))) {
		snprintf(err, errlen, "bad sectsz '%s' (512, 4096 or 8192)",
			 config_get(node, "sectsz"));
		return -1;
	}
	return 0;
}

/* ram=MiB: the namespace in memory of our own; no disk options. */
static int
nvme_open_ram(struct pci_nvme_softc *sc, const struct config *node,
	      uint64_t *size, char *err, size_t errlen)
{
	static const char *const disk_only[] = {
	    "path", "ro", "nocache", "direct", "nodelete", "sectorsize"};
	uint32_t mib;

	for (size_t i = 0; i < sizeof(disk_only) / sizeof(disk_only[0]); i++)
		if (config_get(node, disk_only[i])) {
			snprintf(
			    err, errlen,
			    "'%s' needs a disk image, not ram=", disk_only[i]);
			return -1;
		}
	if (nvme_opt_uint(node, "ram", 1, NVME_RAM_MAX_MIB, 0, &mib, err,
			  errlen) < 0)
		return -1;
	*size = (uint64_t)mib << 20;
	sc->ram = calloc(1, *size);
	if (!sc->ram) {
		snprintf(err, errlen, "cannot allocate ram=%u MiB", mib);
		return -1;
	}
	return 0;
}

/* The namespace: its size, LBA size and what the backend can do. */
static int
nvme_open_store(struct pci_nvme_softc *sc, const struct config *node,
		uint32_t sectsz, enum nvme_dsm dsm, char *err, size_t errlen)
{
	uint64_t size;
	uint32_t native = 4096;

	if (config_get(node, "ram")) {
		if (nvme_open_ram(sc, node, &size, err, errlen) < 0)
			return -1;
		sc->can_delete = true;
	} else {
		sc->bc = blockif_open(node, err, errlen);
		if (!sc->bc)
			return -1;
		size = (uint64_t)blockif_size(sc->bc);
		native = (uint32_t)blockif_sectsz(sc->bc);
		sc->ro = blockif_is_ro(sc->bc);
		sc->can_delete = blockif_candelete(sc->bc);
		sc->vwc = !config_get_bool(node, "direct", false);
	}
	if (sectsz && sc->bc && (sectsz < native || sectsz % native)) {
		snprintf(err, errlen,
			 "sectsz %u does not suit %s, whose sectors are %u "
			 "bytes",
			 sectsz, blockif_path(sc->bc), native);
		return -1;
	}
	sc->sectsz = sectsz ? sectsz : native;
	for (sc->lbads = 9; (1u << sc->lbads) < sc->sectsz; sc->lbads++)
		;
	if (size < sc->sectsz || size % sc->sectsz) {
		snprintf(err, errlen,
			 "the image's %llu bytes are not a whole number of "
			 "%u-byte sectors (sectsz)",
			 (unsigned long long)size, sc->sectsz);
		return -1;
	}
	sc->nsze = size >> sc->lbads;
	sc->dsm = dsm == DSM_ENABLE || (dsm == DSM_AUTO && sc->can_delete);
	if (dsm == DSM_DISABLE)
		sc->can_delete = false;
	return 0;
}

static int
nvme_alloc(struct pci_nvme_softc *sc)
{
	uint32_t n = sc->maxq + 1;

	sc->sq = calloc(n, sizeof(*sc->sq));
	sc->cq = calloc(n, sizeof(*sc->cq));
	sc->due = calloc(n, sizeof(*sc->due));
	sc->iv_cd = calloc(n, 1);
	sc->reqs = sc->bc ? calloc(sc->ioslots, sizeof(*sc->reqs)) : NULL;
	if (!sc->sq || !sc->cq || !sc->due || !sc->iv_cd ||
	    (sc->bc && !sc->reqs))
		return -1;
	for (uint32_t i = 0; sc->bc && i < sc->ioslots; i++) {
		struct nvme_ioreq *io = &sc->reqs[i];

		io->sc = sc;
		for (int k = 0; k < NVME_SUBREQS; k++) {
			io->br[k].br_param = io;
			io->br[k].br_callback = nvme_io_done;
		}
		io->next = sc->free;
		sc->free = io;
	}
	sc->shutdown_req.br_param = sc;
	sc->shutdown_req.br_callback = nvme_shutdown_done;
	return 0;
}

static void
nvme_defaults(struct pci_nvme_softc *sc)
{
	/* MQES, CQR, TO 30 s, DSTRD 0, CSS NVM, MPSMIN = MPSMAX = 4 KiB. */
	sc->cap =
	    (uint64_t)(sc->qsz - 1) | 1ULL << 16 | 60ULL << 24 | 1ULL << 37;
	sc->feat_default = (struct nvme_features){
	    .temp_over = NVME_WCTEMP_K,
	    .wce = sc->vwc ? 1 : 0,
	};
	sc->feat = sc->feat_default;
	nvme_queues_clear(sc);
}

/* PCI Express capability: a root complex integrated endpoint (as bhyve). */
static int
nvme_pci_setup(struct pci_devinst *pi, struct pci_nvme_softc *sc)
{
	uint8_t pcie[0x3c] = {0x10, 0, 0x92, 0x00};
	uint64_t bar0 = NVME_DOORBELL + 8ULL * (sc->maxq + 1);

	pci_set_cfgdata16(pi, 0x00, NVME_VENDOR);
	pci_set_cfgdata16(pi, 0x02, NVME_DEVICE);
	pci_set_cfgdata8(pi, 0x09, 0x02); /* NVM Express */
	pci_set_cfgdata8(pi, 0x0a, 0x08); /* non-volatile memory */
	pci_set_cfgdata8(pi, 0x0b, 0x01); /* mass storage */
	pci_set_cfgdata16(pi, 0x2c, NVME_VENDOR);
	pci_set_cfgdata16(pi, 0x2e, NVME_DEVICE);
	/* At least 16 KiB: drivers map that much (bhyve, Windows). */
	if (pci_emul_alloc_bar(pi, 0, PCIBAR_MEM64,
			       bar0 < 16384 ? 16384 : bar0) < 0 ||
	    pci_emul_add_msixcap(pi, (int)sc->maxq + 1, NVME_MSIX_BAR) < 0 ||
	    pci_emul_add_capability(pi, pcie, sizeof(pcie)) < 0)
		return -1;
	pci_lintr_request(pi);
	return 0;
}

static void pci_nvme_deinit(struct pci_devinst *pi);

static int
pci_nvme_init(struct pci_devinst *pi, struct config *node)
{
	struct pci_nvme_softc *sc = calloc(1, sizeof(*sc));
	enum nvme_dsm dsm;
	uint32_t sectsz;
	char err[512];

	if (!sc)
		return nvme_fail(pi, "out of memory");
	sc->pi = pi;
	pi->pi_arg = sc;
	pthread_mutex_init(&sc->mtx, NULL);
	if (nvme_parse(sc, node, &sectsz, &dsm, err, sizeof(err)) < 0 ||
	    nvme_open_store(sc, node, sectsz, dsm, err, sizeof(err)) < 0) {
		pci_nvme_deinit(pi);
		return nvme_fail(pi, err);
	}
	if (sc->bc && sc->ioslots > (uint32_t)blockif_queuesz(sc->bc)) {
		snprintf(err, sizeof(err),
			 "bad ioslots %u (the disk backend queues at most %d)",
			 sc->ioslots, blockif_queuesz(sc->bc));
		pci_nvme_deinit(pi);
		return nvme_fail(pi, err);
	}
	if (nvme_alloc(sc) < 0 || nvme_pci_setup(pi, sc) < 0) {
		pci_nvme_deinit(pi);
		return nvme_fail(pi, "cannot set up its memory, BARs or "
				     "interrupts");
	}
	nvme_defaults(sc);
	return 0;
}

static void
pci_nvme_deinit(struct pci_devinst *pi)
{
	struct pci_nvme_softc *sc = pi->pi_arg;

	if (!sc)
		return;
	blockif_close(sc->bc); /* no callbacks after this */
	pthread_mutex_destroy(&sc->mtx);
	free(sc->reqs);
	free(sc->iv_cd);
	free(sc->due);
	free(sc->cq);
	free(sc->sq);
	free(sc->ram);
	free(sc);
	pi->pi_arg = NULL;
}

/* -s SLOT,nvme,ram=MiB,... has no path first; anything else is a disk. */
static int
pci_nvme_legacy_config(struct config *node, const char *opts, char *err,
		       size_t errlen)
{
	if (!strncmp(opts, "ram=", 4))
		return pci_parse_legacy_config(node, opts, err, errlen);
	return blockif_legacy_config(node, opts, err, errlen);
}

static const struct pci_devemu pci_de_nvme = {
    .pe_emu = "nvme",
    .pe_legacy_config = pci_nvme_legacy_config,
    .pe_init = pci_nvme_init,
    .pe_deinit = pci_nvme_deinit,
    .pe_barwrite = pci_nvme_write,
    .pe_barread = pci_nvme_read,
};
PCI_EMUL_SET(pci_de_nvme);
