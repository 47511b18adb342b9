/*
 * virtio-rnd, the entropy device (virtio 1.2 §5.4), on the legacy PCI
 * transport, as bhyve's pci_virtio_rnd.c:
 *
 *   -s SLOT,virtio-rnd
 *
 * No options. One request queue: the driver posts device-writable buffers
 * and the device fills them with bytes from the host's getrandom(2), at
 * most VTRND_MAXREQ per request so that one exit does a bounded amount of
 * work. A chain with nothing writable breaks the rules (§5.4.6.1).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "machine.h"
#include "pci_emul.h"
#include "virtio.h"

#define VTRND_RINGSZ 64
#define VTRND_MAXREQ (64 * 1024) /* bytes filled per request at most */

struct pci_vtrnd_softc {
	struct virtio_softc vrsc_vs; /* first: pi_arg points at both */
	pthread_mutex_t vrsc_mtx;
	struct vqueue_info vrsc_vq;
};

/* Fill up to VTRND_MAXREQ bytes of the writable buffers; bytes filled. */
static uint32_t
vtrnd_fill(const struct iovec *iov, int n)
{
	uint32_t done = 0;

	for (int i = 0; i < n && done < VTRND_MAXREQ; i++) {
		uint8_t *p = iov[i].iov_base;
		size_t want = iov[i].iov_len;

		if (want > VTRND_MAXREQ - done)
			want = VTRND_MAXREQ - done;
		while (want > 0) {
			/* The host's pool is long initialized: never waits. */
			ssize_t r = getrandom(p, want, GRND_NONBLOCK);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return done; /* what we have, possibly none */
			p += r;
			want -= (size_t)r;
			done += (uint32_t)r;
		}
	}
	return done;
}

static void
pci_vtrnd_notify(void *vsc, struct vqueue_info *vq)
{
	struct pci_vtrnd_softc *sc = vsc;
	struct iovec iov[VTRND_RINGSZ];
	struct vi_req req;

again:
	for (int i = 0; i < vq->vq_qsize && vq_has_descs(vq); i++) {
		int n = vq_getchain(vq, iov, VTRND_RINGSZ, &req);

		if (n <= 0)
			break;
		if (req.readable > 0 || req.writable == 0) {
			vi_error(&sc->vrsc_vs, vq,
				 "chain %u has %d device-readable buffers and "
				 "%d writable; entropy requests are writable "
				 "only",
				 req.idx, req.readable, req.writable);
			vq_endchains(vq);
			return;
		}
		vq_relchain(vq, req.idx, vtrnd_fill(iov, req.writable));
	}
	/*
	 * Ask for the next request's notification, then look once more (with
	 * EVENT_IDX the driver notifies only past avail_event, §2.7.10:
	 * Linux's virtio_rng posts one buffer per request, and its second
	 * would never be heard of).
	 */
	vq_kick_enable(vq);
	if (vq_has_descs(vq))
		goto again;
	vq_endchains(vq);
}

static const struct virtio_consts vtrnd_vi_consts = {
    .vc_name = "virtio-rnd",
    .vc_nvq = 1,
    .vc_cfgsize = 0, /* §5.4.4: no configuration */
    .vc_qnotify = pci_vtrnd_notify,
    .vc_hv_caps = VIRTIO_RING_F_EVENT_IDX,
};

static void
pci_vtrnd_deinit(struct pci_devinst *pi)
{
	struct pci_vtrnd_softc *sc = pi->pi_arg;

	if (!sc)
		return;
	pthread_mutex_destroy(&sc->vrsc_mtx);
	free(sc);
	pi->pi_arg = NULL;
}

static int
vtrnd_fail(struct pci_devinst *pi, const char *msg, const char *arg)
{
	fprintf(stderr, "bhyve: virtio-rnd at %d:%d:%d: %s%s\n", pi->pi_bus,
		pi->pi_slot, pi->pi_func, msg, arg);
	return -1;
}

static int
vtrnd_check_key(const struct config *c, void *arg)
{
	if (config_is_leaf(c) && !strcmp(config_node_name(c), "device"))
		return 0;
	*(const char **)arg = config_node_name(c);
	return 1;
}

static int
pci_vtrnd_init(struct pci_devinst *pi, struct config *node)
{
	struct config *cfg = machine_config(pi->pi_vmctx);
	struct pci_vtrnd_softc *sc;
	const char *bad = NULL;
	uint8_t probe;

	if (config_foreach(node, vtrnd_check_key, &bad))
		return vtrnd_fail(pi, "takes no options: remove ", bad);
	/* As bhyve: a host without a source of randomness gets no device. */
	if (getrandom(&probe, 1, GRND_NONBLOCK) != 1)
		return vtrnd_fail(
		    pi, "the host's getrandom(2) fails: ", strerror(errno));
	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return vtrnd_fail(pi, "out of memory", "");
	pthread_mutex_init(&sc->vrsc_mtx, NULL);
	sc->vrsc_vq.vq_qsize = VTRND_RINGSZ;
	sc->vrsc_vs.vs_mtx = &sc->vrsc_mtx;
	vi_softc_linkup(&sc->vrsc_vs, &vtrnd_vi_consts, sc, pi, &sc->vrsc_vq);
	/* A transitional device (§4.1.2.1): revision 0 for legacy drivers. */
	pci_set_cfgdata16(pi, 0x00, VIRTIO_VENDOR);
	pci_set_cfgdata16(pi, 0x02, VIRTIO_DEV_RANDOM);
	pci_set_cfgdata8(pi, 0x08, 0);
	pci_set_cfgdata8(pi, 0x0a, 0x00); /* other crypto controller */
	pci_set_cfgdata8(pi, 0x0b, 0x10); /* encryption/decryption */
	pci_set_cfgdata16(pi, 0x2c, VIRTIO_VENDOR);
	pci_set_cfgdata16(pi, 0x2e, VIRTIO_ID_ENTROPY);
	if (vi_intr_init(&sc->vrsc_vs, 1,
			 config_get_bool(cfg, "virtio_msix", true)) < 0 ||
	    vi_set_io_bar(&sc->vrsc_vs, 0) < 0) {
		pci_vtrnd_deinit(pi);
		return vtrnd_fail(pi, "cannot set up its BARs and interrupts",
				  "");
	}
	return 0;
}

static const struct pci_devemu pci_de_vrnd = {
    .pe_emu = "virtio-rnd",
    .pe_init = pci_vtrnd_init,
    .pe_deinit = pci_vtrnd_deinit,
    .pe_barwrite = vi_pci_write,
    .pe_barread = vi_pci_read,
};
PCI_EMUL_SET(pci_de_vrnd);
