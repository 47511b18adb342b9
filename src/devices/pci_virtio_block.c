/*
 * virtio-blk (virtio 1.2 §5.2) on the legacy PCI transport, as bhyve's
 * pci_virtio_block.c:
 *
 *   -s SLOT,virtio-blk,PATH[,nocache][,direct][,ro]
 *      [,sectorsize=LOGICAL[/PHYSICAL]][,ser=SERIAL]
 *
 * or pci.B.S.F.{path,ro,nocache,direct,sectorsize,ser} (bhyve_config(5)).
 * One request queue. Reads, writes and flushes go to the block backend's
 * worker thread (block_if.c); GET_ID and requests that fail their checks
 * are answered at once.
 *
 * Notifications: while requests are in flight, the completion path takes
 * new chains itself, so the driver is asked not to notify (§2.7.10) and
 * only does when the device goes idle. That saves an exit per request under
 * load, and exits are what a nested guest pays for most.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block_if.h"
#include "pci_emul.h"
#include "virtio.h"

#define VTBLK_RINGSZ 128
/* iovecs per chain (header and status included) and data buffers. */
#define VTBLK_MAXSEGS VTBLK_RINGSZ
#define VTBLK_SEG_MAX (VTBLK_MAXSEGS - 2)
#define VTBLK_BLK_ID_BYTES 20
#define VTBLK_SECTOR 512 /* request sectors and capacity are in these */

/* Feature bits (§5.2.3). */
#define VTBLK_F_SEG_MAX (1u << 2)
#define VTBLK_F_RO (1u << 5)
#define VTBLK_F_BLK_SIZE (1u << 6)
#define VTBLK_F_FLUSH (1u << 9)
#define VTBLK_F_TOPOLOGY (1u << 10)

#define VTBLK_S_HOSTCAPS                                                       \
	(VTBLK_F_SEG_MAX | VTBLK_F_BLK_SIZE | VTBLK_F_FLUSH |                  \
	 VTBLK_F_TOPOLOGY | VIRTIO_RING_F_INDIRECT_DESC |                      \
	 VIRTIO_RING_F_EVENT_IDX)

/* Request types and status values (§5.2.6). */
#define VTBLK_T_IN 0
#define VTBLK_T_OUT 1
#define VTBLK_T_FLUSH 4
#define VTBLK_T_GET_ID 8
#define VTBLK_S_OK 0
#define VTBLK_S_IOERR 1
#define VTBLK_S_UNSUPP 2

/* Device configuration layout (§5.2.4). */
struct vtblk_config {
	uint64_t capacity; /* in 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads;
		uint8_t sectors;
	} geometry;
	uint32_t blk_size;
	struct {
		uint8_t physical_block_exp;
		uint8_t alignment_offset;
		uint16_t min_io_size;
		uint32_t opt_io_size;
	} topology;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
} __attribute__((packed));

/* The request header the driver puts first (§5.2.6). */
struct vtblk_hdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

struct pci_vtblk_softc;

struct vtblk_ioreq {
	struct blockif_req io_req;
	struct pci_vtblk_softc *io_sc;
	uint8_t *io_status; /* the status byte, in guest memory */
	uint32_t io_used;   /* bytes written to the guest on success */
	uint16_t io_idx;    /* the chain's head */
	unsigned int io_gen;
	struct vtblk_ioreq *io_next; /* on the free list */
};

struct pci_vtblk_softc {
	struct virtio_softc vbsc_vs; /* first: pi_arg points at both */
	pthread_mutex_t vsc_mtx;
	struct vqueue_info vbsc_vq;
	struct virtio_consts vbsc_consts;
	struct vtblk_config vbsc_cfg;
	struct blockif_ctxt *vbsc_bc;
	char vbsc_ident[VTBLK_BLK_ID_BYTES];
	unsigned int vbsc_gen; /* bumped by each reset */
	int vbsc_inflight;     /* requests the backend has */
	struct vtblk_ioreq *vbsc_free;
	struct vtblk_ioreq vbsc_ios[VTBLK_RINGSZ];
};

static void pci_vtblk_reset(void *vsc);
static void pci_vtblk_notify(void *vsc, struct vqueue_info *vq);
static int pci_vtblk_cfgread(void *vsc, int offset, int size, uint32_t *val);
static int pci_vtblk_cfgwrite(void *vsc, int offset, int size, uint32_t val);

static const struct virtio_consts vtblk_vi_consts = {
    .vc_name = "virtio-blk",
    .vc_nvq = 1,
    .vc_cfgsize = sizeof(struct vtblk_config),
    .vc_reset = pci_vtblk_reset,
    .vc_qnotify = pci_vtblk_notify,
    .vc_cfgread = pci_vtblk_cfgread,
    .vc_cfgwrite = pci_vtblk_cfgwrite,
    .vc_hv_caps = VTBLK_S_HOSTCAPS,
};

/* ---- iovec helpers (buffers in guest memory) ---- */

static size_t
iov_bytes(const struct iovec *iov, int n)
{
	size_t t = 0;

	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* The last byte of the last non-empty buffer, or NULL. */
static uint8_t *
iov_last_byte(const struct iovec *iov, int n)
{
	for (int i = n - 1; i >= 0; i--)
		if (iov[i].iov_len)
			return (uint8_t *)iov[i].iov_base + iov[i].iov_len - 1;
	return NULL;
}

static void
iov_to_buf(const struct iovec *iov, int n, void *buf, size_t len)
{
	uint8_t *p = buf;

	for (int i = 0; i < n && len; i++) {
		size_t c = iov[i].iov_len < len ? iov[i].iov_len : len;
		memcpy(p, iov[i].iov_base, c);
		p += c;
		len -= c;
	}
}

static size_t
buf_to_iov(const void *buf, size_t len, const struct iovec *iov, int n)
{
	const uint8_t *p = buf;
	size_t done = 0;

	for (int i = 0; i < n && done < len; i++) {
		size_t c =
		    iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
		memcpy(iov[i].iov_base, p + done, c);
		done += c;
	}
	return done;
}

/* Bytes [skip, skip + len) of src as iovecs in dst; their count. */
static int
iov_carve(const struct iovec *src, int n, size_t skip, size_t len,
	  struct iovec *dst, int max)
{
	int k = 0;

	for (int i = 0; i < n && len; i++) {
		size_t l = src[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		if (k == max)
			return -1;
		dst[k].iov_base = (uint8_t *)src[i].iov_base + skip;
		dst[k].iov_len = l - skip < len ? l - skip : len;
		len -= dst[k].iov_len;
		skip = 0;
		k++;
	}
	return k;
}

/* ---- requests ---- */

static void
vtblk_set_status(uint8_t *status, uint8_t s)
{
	__atomic_store_n(status, s, __ATOMIC_RELAXED);
}

static void vtblk_drain(struct pci_vtblk_softc *sc);

/* The backend finished a request (on its worker thread). */
static void
vtblk_done(struct blockif_req *br, int err)
{
	struct vtblk_ioreq *io = br->br_param;
	struct pci_vtblk_softc *sc = io->io_sc;
	struct vqueue_info *vq = &sc->vbsc_vq;

	pthread_mutex_lock(&sc->vsc_mtx);
	/* After a reset the chain is no longer ours to complete. */
	if (io->io_gen == sc->vbsc_gen) {
		vtblk_set_status(io->io_status, err == 0 ? VTBLK_S_OK
						: err == EOPNOTSUPP
						    ? VTBLK_S_UNSUPP
						    : VTBLK_S_IOERR);
		vq_relchain(vq, io->io_idx, err == 0 ? io->io_used : 1);
		vq_endchains(vq);
	}
	io->io_next = sc->vbsc_free;
	sc->vbsc_free = io;
	sc->vbsc_inflight--;
	vtblk_drain(sc);
	pthread_mutex_unlock(&sc->vsc_mtx);
}

/* Is [sector, sector + len) on the disk, len whole sectors? */
static bool
vtblk_range_ok(struct pci_vtblk_softc *sc, uint64_t sector, size_t len,
	       off_t *offset)
{
	uint64_t size = (uint64_t)blockif_size(sc->vbsc_bc);

	if (len % VTBLK_SECTOR || sector > size / VTBLK_SECTOR ||
	    len > size - sector * VTBLK_SECTOR)
		return false;
	*offset = (off_t)(sector * VTBLK_SECTOR);
	return true;
}

/*
 * Set up a read or write of bytes [skip, skip + len) of the chain's
 * buffers (iov, n) at the header's sector; the status byte if it fails.
 */
static uint8_t
vtblk_rw(struct pci_vtblk_softc *sc, struct vtblk_ioreq *io,
	 const struct vtblk_hdr *hdr, const struct iovec *iov, int n,
	 size_t skip, size_t len)
{
	struct blockif_req *br = &io->io_req;
	bool write = hdr->type == VTBLK_T_OUT;
	int rc;

	if (write && blockif_is_ro(sc->vbsc_bc))
		return VTBLK_S_IOERR;
	if (!vtblk_range_ok(sc, hdr->sector, len, &br->br_offset))
		return VTBLK_S_IOERR;
	br->br_iovcnt =
	    iov_carve(iov, n, skip, len, br->br_iov, BLOCKIF_IOV_MAX);
	if (br->br_iovcnt < 0)
		return VTBLK_S_IOERR;
	br->br_resid = (ssize_t)len;
	/* The used length is 32 bits; a longer read reports as much. */
	io->io_used = write		 ? 1
		      : len < UINT32_MAX ? (uint32_t)len + 1
					 : UINT32_MAX;
	rc = write ? blockif_write(sc->vbsc_bc, br)
		   : blockif_read(sc->vbsc_bc, br);
	return rc == 0 ? VTBLK_S_OK : VTBLK_S_IOERR;
}

/*
 * One request: its header from the first 16 readable bytes, its status in
 * the last writable byte, its data between (§5.2.6; a legacy driver may
 * frame these as it likes). Returns true when the backend has it.
 */
static bool
vtblk_start(struct pci_vtblk_softc *sc, struct vtblk_ioreq *io,
	    const struct iovec *iov, const struct vi_req *req)
{
	const struct iovec *wiov = iov + req->readable;
	size_t rbytes = iov_bytes(iov, req->readable);
	size_t wbytes = iov_bytes(wiov, req->writable);
	struct vtblk_hdr hdr;
	uint8_t s = VTBLK_S_IOERR;
	size_t copied;

	if (rbytes < sizeof(hdr))
		goto done;
	iov_to_buf(iov, req->readable, &hdr, sizeof(hdr)); /* read once */
	switch (hdr.type) {
	case VTBLK_T_IN:
		if (rbytes != sizeof(hdr))
			break;
		s = vtblk_rw(sc, io, &hdr, wiov, req->writable, 0, wbytes - 1);
		break;
	case VTBLK_T_OUT:
		if (wbytes != 1)
			break;
		s = vtblk_rw(sc, io, &hdr, iov, req->readable, sizeof(hdr),
			     rbytes - sizeof(hdr));
		break;
	case VTBLK_T_FLUSH:
		io->io_req.br_iovcnt = 0;
		io->io_req.br_resid = 0;
		io->io_used = 1;
		s = blockif_flush(sc->vbsc_bc, &io->io_req) == 0
			? VTBLK_S_OK
			: VTBLK_S_IOERR;
		break;
	case VTBLK_T_GET_ID: {
		/* A NUL-padded string of up to 20 bytes (§5.2.6). */
		size_t room = wbytes - 1;
		copied = buf_to_iov(
		    sc->vbsc_ident,
		    room < VTBLK_BLK_ID_BYTES ? room : VTBLK_BLK_ID_BYTES, wiov,
		    req->writable);
		vtblk_set_status(io->io_status, VTBLK_S_OK);
		vq_relchain(&sc->vbsc_vq, io->io_idx, (uint32_t)copied + 1);
		return false;
	}
	default:
		s = VTBLK_S_UNSUPP;
		goto done;
	}
	if (s == VTBLK_S_OK)
		return true;
done:
	vtblk_set_status(io->io_status, s);
	vq_relchain(&sc->vbsc_vq, io->io_idx, 1);
	return false;
}

/* Take one chain off the queue; -1 when the queue broke. */
static int
vtblk_proc(struct pci_vtblk_softc *sc)
{
	struct vqueue_info *vq = &sc->vbsc_vq;
	struct iovec iov[VTBLK_MAXSEGS];
	struct vtblk_ioreq *io;
	struct vi_req req;
	int n;

	n = vq_getchain(vq, iov, VTBLK_MAXSEGS, &req);
	if (n <= 0)
		return n;
	io = sc->vbsc_free;
	io->io_idx = req.idx;
	io->io_gen = sc->vbsc_gen;
	io->io_status = iov_last_byte(iov + req.readable, req.writable);
	if (!io->io_status) {
		/* Nowhere to say how it went: hand it back untouched. */
		vq_relchain(vq, req.idx, 0);
		return 0;
	}
	if (vtblk_start(sc, io, iov, &req)) {
		sc->vbsc_free = io->io_next;
		sc->vbsc_inflight++;
	}
	return 0;
}

/*
 * Take every available chain we have room for (lock held). With requests
 * in flight the completion comes back here, so the driver need not notify;
 * when idle, ask it to, then look once more (the fence in vq_kick_enable
 * orders that against the driver's index update).
 */
static void
vtblk_drain(struct pci_vtblk_softc *sc)
{
	struct vqueue_info *vq = &sc->vbsc_vq;

	for (;;) {
		while (sc->vbsc_free && vq_has_descs(vq))
			if (vtblk_proc(sc) < 0)
				return;
		vq_endchains(vq);
		if (!vq_ring_ready(vq))
			return;
		if (sc->vbsc_inflight > 0) {
			vq_kick_disable(vq);
			return;
		}
		vq_kick_enable(vq);
		if (!vq_has_descs(vq))
			return;
	}
}

static void
pci_vtblk_notify(void *vsc, struct vqueue_info *vq)
{
	(void)vq;
	vtblk_drain(vsc);
}

static void
pci_vtblk_reset(void *vsc)
{
	struct pci_vtblk_softc *sc = vsc;

	/* Requests still in flight finish into the void (vtblk_done). */
	sc->vbsc_gen++;
	vi_reset_dev(&sc->vbsc_vs);
}

static int
pci_vtblk_cfgread(void *vsc, int offset, int size, uint32_t *val)
{
	struct pci_vtblk_softc *sc = vsc;

	/* The core checked offset + size against the config's size. */
	*val = 0;
	memcpy(val, (uint8_t *)&sc->vbsc_cfg + offset, size);
	return 0;
}

static int
pci_vtblk_cfgwrite(void *vsc, int offset, int size, uint32_t val)
{
	/* Nothing is writable without VIRTIO_BLK_F_CONFIG_WCE. */
	(void)vsc;
	(void)offset;
	(void)size;
	(void)val;
	return 0;
}

/* ---- set-up ---- */

/* Its own keys; block_if's (blockif_is_option) besides. */
static const char *const vtblk_keys[] = {"device", "ser"};

static int
vtblk_check_key(const struct config *c, void *arg)
{
	const char *name = config_node_name(c);

	if (config_is_leaf(c) && blockif_is_option(name))
		return 0;
	for (size_t i = 0; i < sizeof(vtblk_keys) / sizeof(vtblk_keys[0]); i++)
		if (config_is_leaf(c) && !strcmp(name, vtblk_keys[i]))
			return 0;
	*(const char **)arg = name;
	return 1;
}

/* bhyve's default serial comes from the path; ours from its FNV-1a hash. */
static void
vtblk_default_ident(char *ident, const char *path)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	char buf[VTBLK_BLK_ID_BYTES + 1];

	for (const char *p = path; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	snprintf(buf, sizeof(buf), "BHYVE-%04X-%04X-%04X",
		 (unsigned)(h >> 32) & 0xffff, (unsigned)(h >> 16) & 0xffff,
		 (unsigned)h & 0xffff);
	memcpy(ident, buf, VTBLK_BLK_ID_BYTES);
}

static void
vtblk_setup_config(struct pci_vtblk_softc *sc)
{
	struct blockif_ctxt *bc = sc->vbsc_bc;
	int sectsz = blockif_sectsz(bc), psectsz, psectoff, exp = 0;

	blockif_psectsz(bc, &psectsz, &psectoff);
	while ((sectsz << exp) < psectsz)
		exp++;
	sc->vbsc_cfg = (struct vtblk_config){0};
	sc->vbsc_cfg.capacity = (uint64_t)blockif_size(bc) / VTBLK_SECTOR;
	sc->vbsc_cfg.seg_max = VTBLK_SEG_MAX;
	sc->vbsc_cfg.blk_size = (uint32_t)sectsz;
	/* Topology in logical blocks (§5.2.4). */
	sc->vbsc_cfg.topology.physical_block_exp = (uint8_t)exp;
	sc->vbsc_cfg.topology.alignment_offset =
	    (uint8_t)((psectoff / sectsz) & ((1 << exp) - 1));
	sc->vbsc_cfg.topology.min_io_size = (uint16_t)(1 << exp);
	sc->vbsc_cfg.num_queues = 1;
}

static void
vtblk_pci_ids(struct pci_devinst *pi)
{
	/* A transitional device (§4.1.2.1): revision 0 for legacy drivers. */
	pci_set_cfgdata16(pi, 0x00, VIRTIO_VENDOR);
	pci_set_cfgdata16(pi, 0x02, VIRTIO_DEV_BLOCK);
	pci_set_cfgdata8(pi, 0x08, 0);	  /* revision */
	pci_set_cfgdata8(pi, 0x0a, 0x80); /* other mass storage */
	pci_set_cfgdata8(pi, 0x0b, 0x01); /* mass storage */
	pci_set_cfgdata16(pi, 0x2c, VIRTIO_VENDOR);
	pci_set_cfgdata16(pi, 0x2e, VIRTIO_ID_BLOCK);
}

static int
vtblk_fail(struct pci_devinst *pi, const char *msg)
{
	fprintf(stderr, "bhyve: virtio-blk at %d:%d:%d: %s\n", pi->pi_bus,
		pi->pi_slot, pi->pi_func, msg);
	return -1;
}

static void pci_vtblk_deinit(struct pci_devinst *pi);

static int
pci_vtblk_init(struct pci_devinst *pi, struct config *node)
{
	struct config *cfg = machine_config(pi->pi_vmctx);
	const char *ser = config_get(node, "ser"), *bad = NULL;
	struct pci_vtblk_softc *sc;
	char err[512];

	if (config_foreach(node, vtblk_check_key, &bad)) {
		snprintf(err, sizeof(err),
			 "unknown option '%s' (" BLOCKIF_OPTIONS_HELP
			 ", ser=S)",
			 bad);
		return vtblk_fail(pi, err);
	}
	if (ser && strlen(ser) > VTBLK_BLK_ID_BYTES) {
		snprintf(err, sizeof(err),
			 "serial '%s' is longer than %d characters", ser,
			 VTBLK_BLK_ID_BYTES);
		return vtblk_fail(pi, err);
	}
	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return vtblk_fail(pi, "out of memory");
	sc->vbsc_bc = blockif_open(node, err, sizeof(err));
	if (!sc->vbsc_bc) {
		free(sc);
		return vtblk_fail(pi, err);
	}
	/* Accepted as bhyve(8) spells it, but there is nothing to refuse. */
	if (config_get(node, "nodelete"))
		fprintf(stderr,
			"bhyve: virtio-blk at %d:%d:%d: warning: nodelete has no "
			"effect: this device offers the guest no discard\n",
			pi->pi_bus, pi->pi_slot, pi->pi_func);
	pthread_mutex_init(&sc->vsc_mtx, NULL);
	for (int i = 0; i < VTBLK_RINGSZ; i++) {
		struct vtblk_ioreq *io = &sc->vbsc_ios[i];
		io->io_sc = sc;
		io->io_req.br_param = io;
		io->io_req.br_callback = vtblk_done;
		io->io_next = sc->vbsc_free;
		sc->vbsc_free = io;
	}
	if (ser)
		memcpy(sc->vbsc_ident, ser, strlen(ser)); /* NUL-padded */
	else
		vtblk_default_ident(sc->vbsc_ident, blockif_path(sc->vbsc_bc));
	sc->vbsc_consts = vtblk_vi_consts;
	if (blockif_is_ro(sc->vbsc_bc))
		sc->vbsc_consts.vc_hv_caps |= VTBLK_F_RO;
	sc->vbsc_vq.vq_qsize = VTBLK_RINGSZ;
	sc->vbsc_vs.vs_mtx = &sc->vsc_mtx;
	vi_softc_linkup(&sc->vbsc_vs, &sc->vbsc_consts, sc, pi, &sc->vbsc_vq);
	vtblk_setup_config(sc);
	vtblk_pci_ids(pi);
	if (vi_intr_init(&sc->vbsc_vs, 1,
			 config_get_bool(cfg, "virtio_msix", true)) < 0 ||
	    vi_set_io_bar(&sc->vbsc_vs, 0) < 0) {
		pci_vtblk_deinit(pi);
		return vtblk_fail(pi, "cannot set up its BARs and interrupts");
	}
	return 0;
}

static void
pci_vtblk_deinit(struct pci_devinst *pi)
{
	struct pci_vtblk_softc *sc = pi->pi_arg;

	if (!sc)
		return;
	blockif_close(sc->vbsc_bc); /* the worker is gone after this */
	pthread_mutex_destroy(&sc->vsc_mtx);
	free(sc);
	pi->pi_arg = NULL;
}

static const struct pci_devemu pci_de_vblk = {
    .pe_emu = "virtio-blk",
    .pe_legacy_config = blockif_legacy_config,
    .pe_init = pci_vtblk_init,
    .pe_deinit = pci_vtblk_deinit,
    .pe_barwrite = vi_pci_write,
    .pe_barread = vi_pci_read,
};
PCI_EMUL_SET(pci_de_vblk);
