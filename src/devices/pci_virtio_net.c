/*
 * virtio-net (virtio 1.2 §5.1) on the legacy PCI transport, as bhyve's
 * pci_virtio_net.c:
 *
 *   -s SLOT,virtio-net,BACKEND[,mac=xx:xx:xx:xx:xx:xx][,mtu=N]
 *   -s SLOT,virtio-net,backend=BACKEND,...
 *
 * or pci.B.S.F.{backend,mac,mtu} (bhyve_config(5)), and the backend's own
 * keys (slirp's hostfwd). BACKEND is tapN or slirp (net_backend.h).
 *
 * Queues: 0 receive, 1 transmit, 2 control. Receive runs on the event
 * loop thread when the backend has frames; transmit on a thread of its
 * own, woken by the driver's notification through an eventfd that KVM
 * signals itself (the notification costs the guest no exit to bhyve);
 * control commands at once.
 *
 * With vhost=on (a tap backend), the host kernel's vhost-net takes the
 * receive and transmit rings once the driver is ready (net_vhost.h) and
 * gives them back at a reset; frames then never pass through bhyve.
 *
 * Notifications (§2.7.7, §2.7.10): while the transmit thread works it asks
 * the driver not to notify, so a guest sending a burst exits once for it,
 * not once per frame; the receive queue's notifications are off while
 * there are buffers and on only when the device ran out and waits for
 * more. Each exit costs tens of microseconds under nested virtualization.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "mevent.h"
#include "net_backend.h"
#include "net_vhost.h"
#include "pci_emul.h"
#include "pci_virtio_net.h"
#include "virtio.h"
#include "sandbox.h"

#define VTNET_RINGSZ 1024
#define VTNET_CTRL_RINGSZ 64
#define VTNET_NQ 3
#define VTNET_RXQ 0
#define VTNET_TXQ 1
#define VTNET_CTLQ 2
/* Buffers per chain we take (transmit) or gather for one frame (receive). */
#define VTNET_MAXSEGS 256
#define VTNET_CTRL_SEGS 16
/*
 * Frames between interrupt checks on receive, frames sent per lock drop
 * on transmit; frames dropped per callback while the driver is not ready.
 */
#define VTNET_RX_BATCH 64
#define VTNET_TX_BATCH 16
#define VTNET_RX_DROP_MAX 4096
/* How long transmit waits for more frames before notifications go on. */
#define VTNET_TX_LINGER_NS 50000

#define ETHER_HDR_LEN 14
#define ETHER_VLAN_LEN 4
#define VTNET_MIN_MTU 68
#define VTNET_MAX_MTU 65535
/*
 * The longest frame a guest may send: without VIRTIO_NET_F_MTU Linux lets
 * it set any MTU up to 65535, and a TSO frame is at most as long.
 */
#define VTNET_MAX_FRAME (VTNET_MAX_MTU + ETHER_HDR_LEN + ETHER_VLAN_LEN)

/* The header without and with num_buffers (legacy, §5.1.6). */
#define VTNET_HDR_LEN 10
#define VTNET_MRG_HDR_LEN 12

_Static_assert(sizeof(struct virtio_net_rxhdr) == VTNET_MRG_HDR_LEN,
	       "net_backend.h's header is virtio's");
_Static_assert(VTNET_MAXSEGS <= VTNET_RINGSZ,
	       "a frame's buffers fit in the ring");

/* Feature bits (§5.1.3); the offloads are net_backend.h's NETBE_F_*. */
#define VTNET_F_MTU (1u << 3)
#define VTNET_F_MAC (1u << 5)
#define VTNET_F_MRG_RXBUF (1u << 15)
#define VTNET_F_STATUS (1u << 16)
#define VTNET_F_CTRL_VQ (1u << 17)
#define VTNET_F_CTRL_RX (1u << 18)
#define VTNET_F_CTRL_MAC_ADDR (1u << 23)
#define VTNET_F_HOST_TSO (NETBE_F_HOST_TSO4 | NETBE_F_HOST_TSO6)
/* What we pass through when the backend can (§5.1.3.1's dependencies). */
#define VTNET_OFFLOADS                                                         \
	(NETBE_F_CSUM | NETBE_F_GUEST_CSUM | NETBE_F_GUEST_TSO4 |              \
	 NETBE_F_GUEST_TSO6 | NETBE_F_HOST_TSO4 | NETBE_F_HOST_TSO6)

/*
 * Legacy framing (§2.6.4.3): we find the header wherever the driver puts
 * it, so it may put it in front of the frame, one descriptor fewer.
 */
#define VTNET_F_ANY_LAYOUT (1u << 27)

#define VTNET_S_HOSTCAPS                                                       \
	(VTNET_F_MAC | VTNET_F_STATUS | VTNET_F_MRG_RXBUF | VTNET_F_CTRL_VQ |  \
	 VTNET_F_CTRL_RX | VTNET_F_CTRL_MAC_ADDR | VTNET_F_ANY_LAYOUT |        \
	 VIRTIO_RING_F_INDIRECT_DESC | VIRTIO_RING_F_EVENT_IDX)

#define VTNET_S_LINK_UP 1

/* Control queue (§5.1.6.5). */
#define VTNET_CTRL_RX 0
#define VTNET_CTRL_RX_PROMISC 0
#define VTNET_CTRL_RX_ALLMULTI 1
#define VTNET_CTRL_MAC 1
#define VTNET_CTRL_MAC_TABLE_SET 0
#define VTNET_CTRL_MAC_ADDR_SET 1
#define VTNET_OK 0
#define VTNET_ERR 1

/* Device configuration layout (§5.1.4). */
struct vtnet_config {
	uint8_t mac[ETHER_ADDR_LEN];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));

/* A transmit chain between taking it and giving it back. */
struct vtnet_txslot {
	uint16_t idx;
	int n;
	struct iovec iov[VTNET_MAXSEGS];
	struct iovec data[VTNET_MAXSEGS];
};

struct vtnet_softc {
	struct virtio_softc vs; /* first: pi_arg points at both */
	pthread_mutex_t mtx;
	struct vqueue_info queues[VTNET_NQ];
	struct virtio_consts consts;
	struct vtnet_config cfg;
	uint8_t mac[ETHER_ADDR_LEN]; /* the configured one, for resets */
	struct net_backend *be;
	uint64_t be_caps;	 /* offloads the backend can pass */
	unsigned int hdr_len;	 /* the guest's header: 10, 12 with MRG */
	unsigned int be_hdr_len; /* the backend's: hdr_len or none */
	bool mrg;
	size_t tx_max; /* the longest frame the guest may send */
	bool rx_off;   /* backend rx stopped until the guest adds buffers */
	bool promisc, allmulti;
	bool warned_cap;
	/* The transmit thread. */
	pthread_t tx_tid;
	bool tx_started;
	int tx_efd; /* the transmit queue's doorbell (vi_queue_eventfd) */
	bool tx_stop;
	bool tx_busy;		/* a batch is out, the lock dropped */
	pthread_cond_t tx_idle; /* ...and back: a reset waits for it */
	struct vtnet_txslot tx_slots[VTNET_TX_BATCH];
	struct vtnet_stats st;
	/* Receive scratch: the event loop's, with the lock held. */
	struct iovec rx_iov[VTNET_MAXSEGS];
	struct iovec rx_data[VTNET_MAXSEGS];
	uint16_t rx_heads[VTNET_MAXSEGS];
	uint32_t rx_lens[VTNET_MAXSEGS];
	/* vhost=on: the kernel moves the frames while vhost_on. */
	struct vhost_net *vhost;
	bool vhost_on;
	int vh_kick[2], vh_call[2]; /* receive, transmit */
	struct mevent_ev *vh_call_ev[2]; /* the loop reads vh_call, or */
	int vh_gsi[2];			 /* KVM does (an irqfd), or -1 */
};

static void vtnet_reset(void *vsc);
static void vtnet_notify(void *vsc, struct vqueue_info *vq);
static int vtnet_cfgread(void *vsc, int offset, int size, uint32_t *val);
static int vtnet_cfgwrite(void *vsc, int offset, int size, uint32_t val);
static void vtnet_apply_features(void *vsc, uint64_t negotiated);
static void vtnet_status(void *vsc, uint8_t status);

static const struct virtio_consts vtnet_vi_consts = {
    .vc_name = "virtio-net",
    .vc_nvq = VTNET_NQ,
    .vc_cfgsize = sizeof(struct vtnet_config),
    .vc_reset = vtnet_reset,
    .vc_qnotify = vtnet_notify,
    .vc_cfgread = vtnet_cfgread,
    .vc_cfgwrite = vtnet_cfgwrite,
    .vc_apply_features = vtnet_apply_features,
    .vc_status = vtnet_status,
    .vc_hv_caps = VTNET_S_HOSTCAPS,
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

/* Bytes [skip, skip + len) of src as iovecs in dst; their count, -1. */
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

/* Copy len bytes at offset off of the buffers to or from buf. */
static size_t
iov_copy(const struct iovec *iov, int n, size_t off, void *buf, size_t len,
	 bool to_iov)
{
	uint8_t *p = buf;
	size_t done = 0;

	for (int i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len, c;

		if (off >= l) {
			off -= l;
			continue;
		}
		c = l - off < len - done ? l - off : len - done;
		if (to_iov)
			memcpy((uint8_t *)iov[i].iov_base + off, p + done, c);
		else
			memcpy(p + done, (uint8_t *)iov[i].iov_base + off, c);
		done += c;
		off = 0;
	}
	return done;
}

/* ---- receive (event loop thread) ---- */

/* Drop what waits: the driver has no receive queue to take it. */
static void
vtnet_rx_drop_all(struct vtnet_softc *sc)
{
	for (int i = 0; i < VTNET_RX_DROP_MAX; i++) {
		if (netbe_rx_discard(sc->be) <= 0)
			return;
		sc->st.rx_dropped++;
	}
}

/*
 * A frame went in (or was dropped); no buffers; the queue broke; the
 * backend failed us (we try again at its next callback).
 */
enum vtnet_rx { RX_DONE, RX_NOBUF, RX_BROKEN, RX_STOP };

/*
 * Gather chains until they hold need bytes: one chain, or several with
 * VIRTIO_NET_F_MRG_RXBUF (§5.1.6.4). Returns the number of chains, 0 when
 * the frame cannot fit (the chains are given back), -1 out of buffers
 * (given back too), -2 a bad chain.
 */
static int
vtnet_rx_gather(struct vtnet_softc *sc, size_t need, int *niov)
{
	struct vqueue_info *vq = &sc->queues[VTNET_RXQ];
	struct iovec iov[VTNET_MAXSEGS];
	size_t have = 0, bytes;
	int nch = 0, n;
	struct vi_req req;

	*niov = 0;
	while (have < need) {
		if (nch > 0 && !sc->mrg)
			break;
		n = vq_getchain(vq, iov, VTNET_MAXSEGS, &req);
		if (n == 0) {
			/*
			 * Out of buffers: ask for a notification past the
			 * ones we took (before giving them back, so that
			 * avail_event is past them) and look once more
			 * (§2.7.10); the frame waits on the host till then.
			 */
			vq_kick_enable(vq);
			if (vq_has_descs(vq)) {
				vq_kick_disable(vq);
				continue;
			}
			vq_retchain(vq, (uint16_t)nch);
			return -1;
		}
		if (n < 0)
			return -2;
		if (req.readable) {
			vi_error(&sc->vs, vq,
				 "receive chain %u has a device-readable "
				 "buffer",
				 req.idx);
			return -2;
		}
		bytes = iov_bytes(iov, n);
		/* §5.1.6.3.1: every buffer holds at least the header. */
		if (bytes < sc->hdr_len) {
			vi_error(&sc->vs, vq,
				 "receive chain %u is %zu bytes, shorter than "
				 "the %u-byte header",
				 req.idx, bytes, sc->hdr_len);
			return -2;
		}
		if (n > VTNET_MAXSEGS - *niov) {
			nch++; /* no room for its buffers: give it back */
			break;
		}
		memcpy(sc->rx_iov + *niov, iov, sizeof(*iov) * (size_t)n);
		sc->rx_heads[nch] = req.idx;
		sc->rx_lens[nch] =
		    bytes < UINT32_MAX ? (uint32_t)bytes : UINT32_MAX;
		nch++;
		*niov += n;
		have += bytes;
	}
	if (have < need) {
		vq_retchain(vq, (uint16_t)nch);
		return 0;
	}
	return nch;
}

/* The next frame, plen bytes as the backend gives it, into the guest. */
static enum vtnet_rx
vtnet_rx_frame(struct vtnet_softc *sc, size_t plen)
{
	struct vqueue_info *vq = &sc->queues[VTNET_RXQ];
	size_t need = sc->be_hdr_len ? plen : plen + sc->hdr_len, left;
	struct virtio_net_rxhdr hdr = {0};
	int nch, niov, k;
	ssize_t got;

	nch = vtnet_rx_gather(sc, need, &niov);
	if (nch == -1)
		return RX_NOBUF;
	if (nch == -2)
		return RX_BROKEN;
	if (nch == 0) {
		/* Larger than the guest's buffers can be: not a guest bug. */
		netbe_rx_discard(sc->be);
		sc->st.rx_errors++;
		return RX_DONE;
	}
	hdr.vrh_bufs = (uint16_t)nch;
	if (sc->be_hdr_len) {
		got = netbe_recv(sc->be, sc->rx_iov, niov);
		/* num_buffers is ours to fill (§5.1.6.4). */
		if (got > 0 && sc->mrg)
			iov_copy(sc->rx_iov, niov, VTNET_HDR_LEN, &hdr.vrh_bufs,
				 sizeof(hdr.vrh_bufs), true);
	} else {
		iov_copy(sc->rx_iov, niov, 0, &hdr, sc->hdr_len, true);
		k = iov_carve(sc->rx_iov, niov, sc->hdr_len, need - sc->hdr_len,
			      sc->rx_data, VTNET_MAXSEGS);
		got = netbe_recv(sc->be, sc->rx_data, k);
		if (got > 0)
			got += sc->hdr_len;
	}
	if (got <= 0) {
		vq_retchain(vq, (uint16_t)nch);
		sc->st.rx_errors++;
		return RX_STOP;
	}
	left = (size_t)got;
	for (int i = 0; i < nch; i++) {
		uint32_t l =
		    left < sc->rx_lens[i] ? (uint32_t)left : sc->rx_lens[i];

		vq_relchain(vq, sc->rx_heads[i], l);
		left -= l;
	}
	sc->st.rx_packets++;
	return RX_DONE;
}

/* Frames may wait (lock held). */
static void
vtnet_rx(struct vtnet_softc *sc)
{
	struct vqueue_info *vq = &sc->queues[VTNET_RXQ];

	if (sc->vhost_on)
		return; /* a frame the tap backend staged before: vhost's now */
	if (!(sc->vs.vs_status & VIRTIO_CONFIG_S_DRIVER_OK) ||
	    !vq_ring_ready(vq)) {
		vtnet_rx_drop_all(sc);
		return;
	}
	/*
	 * Until the backend has no more (net_backend.h: it need not call
	 * again for frames we leave); the guest's buffers bound it.
	 */
	for (int i = 1;; i++) {
		ssize_t len = netbe_peek_recvlen(sc->be);
		enum vtnet_rx r;

		if (len <= 0)
			break;
		/* The guest may start on the first frames meanwhile. */
		if (i % VTNET_RX_BATCH == 0)
			vq_endchains(vq);
		r = vtnet_rx_frame(sc, (size_t)len);
		if (r == RX_BROKEN) {
			vtnet_rx_drop_all(sc);
			return;
		}
		if (r == RX_STOP)
			break;
		if (r == RX_NOBUF) {
			/* Until the driver notifies; bhyve does the same. */
			vq_endchains(vq);
			netbe_rx_disable(sc->be);
			sc->rx_off = true;
			return;
		}
	}
	vq_endchains(vq);
}

static void
vtnet_rx_callback(int fd, void *arg)
{
	struct vtnet_softc *sc = arg;

	(void)fd;
	pthread_mutex_lock(&sc->mtx);
	vtnet_rx(sc);
	pthread_mutex_unlock(&sc->mtx);
}

/* The driver added receive buffers (vCPU thread, lock held). */
static void
vtnet_rx_notify(struct vtnet_softc *sc)
{
	/* Buffers are there: no more notifications until we run out. */
	vq_kick_disable(&sc->queues[VTNET_RXQ]);
	if (sc->rx_off) {
		sc->rx_off = false;
		netbe_rx_enable(sc->be); /* the loop calls us if frames wait */
	}
}

/* ---- transmit (its own thread) ---- */

/*
 * Take the next chain for slot (lock held): 1 taken, 2 handled here
 * (nothing to send), 0 none there, -1 the queue broke.
 */
static int
vtnet_tx_take(struct vtnet_softc *sc, struct vtnet_txslot *slot)
{
	struct vqueue_info *vq = &sc->queues[VTNET_TXQ];
	struct vi_req req;
	size_t len;
	int n, k;

	n = vq_getchain(vq, slot->iov, VTNET_MAXSEGS, &req);
	if (n <= 0)
		return n;
	if (req.writable)
		return vi_error(&sc->vs, vq,
				"transmit chain %u has a device-writable "
				"buffer",
				req.idx);
	len = iov_bytes(slot->iov, n);
	if (len > sc->hdr_len + sc->tx_max)
		return vi_error(&sc->vs, vq,
				"transmit chain %u is %zu bytes, more than a "
				"frame (%zu) and its header",
				req.idx, len, sc->tx_max);
	if (len <= sc->hdr_len) {
		sc->st.tx_errors++; /* a header and no frame */
		vq_relchain(vq, req.idx, 0);
		return 2;
	}
	slot->idx = req.idx;
	/* The header goes to a backend that agreed to take it (set_cap). */
	if (sc->be_hdr_len) {
		slot->n = n;
	} else {
		k = iov_carve(slot->iov, n, sc->hdr_len, len - sc->hdr_len,
			      slot->data, VTNET_MAXSEGS);
		slot->n = k;
		memcpy(slot->iov, slot->data, (size_t)k * sizeof(slot->iov[0]));
	}
	return 1;
}

/*
 * Send what the driver queued. Chains are taken and given back with the
 * lock held, a batch at a time, and sent without it: a backend's send (a
 * tap's write runs the host's receive path for the frame) then holds up
 * neither the vCPUs' register accesses nor receive on the event loop. A
 * reset waits for the batch in flight (tx_busy). Notifications stay off
 * while there is work; then on, and one more look (§2.7.10).
 */
static void
vtnet_tx_drain(struct vtnet_softc *sc)
{
	struct vqueue_info *vq = &sc->queues[VTNET_TXQ];
	ssize_t rc[VTNET_TX_BATCH];
	bool lingered = false;
	int k, r;

	for (;;) {
		for (;;) {
			for (k = 0, r = 0;
			     k < VTNET_TX_BATCH && vq_has_descs(vq);) {
				r = vtnet_tx_take(sc, &sc->tx_slots[k]);
				if (r < 0)
					break;
				if (r == 1)
					k++;
			}
			if (k > 0) {
				sc->tx_busy = true;
				pthread_mutex_unlock(&sc->mtx);
				for (int i = 0; i < k; i++) {
					rc[i] = netbe_send(sc->be,
							   sc->tx_slots[i].iov,
							   sc->tx_slots[i].n);
					if (rc[i] < 0)
						rc[i] = -errno;
				}
				pthread_mutex_lock(&sc->mtx);
				sc->tx_busy = false;
				pthread_cond_broadcast(&sc->tx_idle);
				for (int i = 0; i < k; i++) {
					if (rc[i] >= 0)
						sc->st.tx_packets++;
					else if (rc[i] == -EAGAIN ||
						 rc[i] == -EWOULDBLOCK ||
						 rc[i] == -ENOBUFS)
						sc->st.tx_dropped++;
					else
						sc->st.tx_errors++;
					vq_relchain(vq, sc->tx_slots[i].idx, 0);
				}
			}
			vq_endchains(vq);
			if (r < 0)
				return;
			if (k == 0 || !vq_has_descs(vq))
				break;
		}
		if (!vq_ring_ready(vq))
			return;
		if (!lingered) {
			/*
			 * A sender that just queued frames queues more soon:
			 * look again after a moment before asking for a
			 * notification, which costs the guest an exit.
			 */
			struct timespec ts = {0, VTNET_TX_LINGER_NS};

			lingered = true;
			pthread_mutex_unlock(&sc->mtx);
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&sc->mtx);
			if (vq_ring_ready(vq) && vq_has_descs(vq))
				continue;
			if (!vq_ring_ready(vq))
				return;
		}
		vq_kick_enable(vq);
		if (!vq_has_descs(vq))
			return;
		vq_kick_disable(vq);
	}
}

/*
 * Woken by the doorbell: the driver's notifications of the transmit queue
 * (signalled by the kernel, not through an exit to us, where it can).
 */
static void *
vtnet_tx_thread(void *arg)
{
	struct vtnet_softc *sc = arg;
	struct vqueue_info *vq = &sc->queues[VTNET_TXQ];
	char err[256];
	uint64_t n;

	if (sandbox_helper("vtnet-tx", 0, err, sizeof(err)) < 0)
		sandbox_fail(err);
	for (;;) {
		if (read(sc->tx_efd, &n, sizeof(n)) < 0 && errno != EINTR &&
		    errno != EAGAIN)
			break;
		pthread_mutex_lock(&sc->mtx);
		if (sc->tx_stop) {
			pthread_mutex_unlock(&sc->mtx);
			break;
		}
		/* A doorbell read just before vhost took the ring: not ours. */
		if (vq_ring_ready(vq) && !sc->vhost_on) {
			vq_kick_disable(vq); /* on again when drained */
			vtnet_tx_drain(sc);
		}
		pthread_mutex_unlock(&sc->mtx);
	}
	return NULL;
}

/* ---- control queue (§5.1.6.5) ---- */

/* VIRTIO_NET_CTRL_MAC_TABLE_SET: two tables, each le32 n, then n MACs. */
static uint8_t
vtnet_ctrl_mac_table(const struct iovec *iov, int n, size_t len)
{
	size_t off = 2;

	for (int t = 0; t < 2; t++) {
		uint32_t entries;

		if (len - off < sizeof(entries))
			return VTNET_ERR;
		iov_copy(iov, n, off, &entries, sizeof(entries), false);
		off += sizeof(entries);
		if (entries > (len - off) / ETHER_ADDR_LEN)
			return VTNET_ERR;
		off += (size_t)entries * ETHER_ADDR_LEN;
	}
	/* We do not filter (all frames reach the guest): nothing to keep. */
	return off == len ? VTNET_OK : VTNET_ERR;
}

static uint8_t
vtnet_ctrl_cmd(struct vtnet_softc *sc, const struct iovec *iov, int n)
{
	uint64_t neg = sc->vs.vs_negotiated_caps;
	size_t len = iov_bytes(iov, n);
	uint8_t h[2], on;

	if (len < sizeof(h))
		return VTNET_ERR;
	iov_copy(iov, n, 0, h, sizeof(h), false);
	switch (h[0]) {
	case VTNET_CTRL_RX:
		if (!(neg & VTNET_F_CTRL_RX) || len != sizeof(h) + 1 ||
		    h[1] > VTNET_CTRL_RX_ALLMULTI)
			return VTNET_ERR;
		iov_copy(iov, n, sizeof(h), &on, 1, false);
		/* Accepted; every frame reaches the guest either way. */
		if (h[1] == VTNET_CTRL_RX_PROMISC)
			sc->promisc = on != 0;
		else
			sc->allmulti = on != 0;
		return VTNET_OK;
	case VTNET_CTRL_MAC:
		if (h[1] == VTNET_CTRL_MAC_TABLE_SET && (neg & VTNET_F_CTRL_RX))
			return vtnet_ctrl_mac_table(iov, n, len);
		if (h[1] == VTNET_CTRL_MAC_ADDR_SET &&
		    (neg & VTNET_F_CTRL_MAC_ADDR) &&
		    len == sizeof(h) + ETHER_ADDR_LEN) {
			iov_copy(iov, n, sizeof(h), sc->cfg.mac, ETHER_ADDR_LEN,
				 false);
			return VTNET_OK;
		}
		return VTNET_ERR;
	}
	return VTNET_ERR;
}

static void
vtnet_ctrl(struct vtnet_softc *sc)
{
	struct vqueue_info *vq = &sc->queues[VTNET_CTLQ];
	struct iovec iov[VTNET_CTRL_SEGS];
	struct vi_req req;
	uint8_t ack;
	int n;

	for (;;) {
		while ((n = vq_getchain(vq, iov, VTNET_CTRL_SEGS, &req)) > 0) {
			/* The ack goes in the first writable byte (§5.1.6.5).
			 */
			if (iov_bytes(iov + req.readable, req.writable) == 0) {
				sc->st.ctrl_errors++;
				vq_relchain(vq, req.idx, 0);
				continue;
			}
			ack = vtnet_ctrl_cmd(sc, iov, req.readable);
			if (ack != VTNET_OK)
				sc->st.ctrl_errors++;
			iov_copy(iov + req.readable, req.writable, 0, &ack, 1,
				 true);
			vq_relchain(vq, req.idx, 1);
		}
		/*
		 * Ask for the next command's notification (with EVENT_IDX the
		 * driver notifies only past avail_event, §2.7.10) and look
		 * once more for one that came in before the store.
		 */
		if (n < 0)
			break;
		vq_kick_enable(vq);
		if (!vq_has_descs(vq))
			break;
	}
	vq_endchains(vq);
}

/* ---- the transport's hooks (lock held) ---- */

static void
vtnet_notify(void *vsc, struct vqueue_info *vq)
{
	struct vtnet_softc *sc = vsc;

	switch (vq->vq_num) {
	case VTNET_RXQ:
		vtnet_rx_notify(sc);
		break;
	case VTNET_TXQ: /* the doorbell's, vi_queue_eventfd */
		break;
	case VTNET_CTLQ:
		vtnet_ctrl(sc);
		break;
	}
}

/*
 * The header's length and who handles it follow the features: with
 * MRG_RXBUF it has num_buffers (12 bytes, §5.1.6); a backend that passes
 * offloads takes and gives the guest's header as it is, else the header
 * is added and taken off here.
 */
static void
vtnet_apply_features(void *vsc, uint64_t negotiated)
{
	struct vtnet_softc *sc = vsc;
	uint64_t offloads = negotiated & sc->be_caps;
	int rc;

	sc->mrg = (negotiated & VTNET_F_MRG_RXBUF) != 0;
	sc->hdr_len = sc->mrg ? VTNET_MRG_HDR_LEN : VTNET_HDR_LEN;
	if ((negotiated & VTNET_F_MTU) && !(negotiated & VTNET_F_HOST_TSO))
		sc->tx_max = sc->cfg.mtu + ETHER_HDR_LEN + ETHER_VLAN_LEN;
	else
		sc->tx_max = VTNET_MAX_FRAME;
	rc = sc->be_caps ? netbe_set_cap(sc->be, offloads, sc->hdr_len)
			 : netbe_set_cap(sc->be, 0, 0);
	if (rc < 0 && sc->be_caps) {
		/* Offloads the guest may now use go unfinished: say so. */
		if (!sc->warned_cap)
			fprintf(stderr,
				"bhyve: virtio-net at %d:%d:%d: %s cannot "
				"take the vnet header: %s; offloads will not "
				"work\n",
				sc->vs.vs_pi->pi_bus, sc->vs.vs_pi->pi_slot,
				sc->vs.vs_pi->pi_func, sc->be->name,
				strerror(errno));
		sc->warned_cap = true;
		netbe_set_cap(sc->be, 0, 0);
	}
	sc->be_hdr_len = (unsigned int)netbe_get_vnet_hdr_len(sc->be);
}

/* ---- vhost=on ---- */

/* vhost raised a queue's interrupt (event loop). */
static void
vtnet_vhost_call(int fd, enum ev_type type, void *arg)
{
	struct vqueue_info *vq = arg;
	struct vtnet_softc *sc = (struct vtnet_softc *)vq->vq_vs;
	uint64_t n;

	(void)type;
	if (read(fd, &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&sc->mtx);
	if (sc->vhost_on)
		vi_interrupt(&sc->vs, VIRTIO_PCI_ISR_INTR, vq->vq_msix_idx);
	pthread_mutex_unlock(&sc->mtx);
}

/*
 * Where vhost's interrupts go (lock held): while vhost runs and a queue's
 * MSI-X vector is deliverable, KVM raises it from the call eventfd itself
 * (an irqfd routed to the vector's message, no hop through bhyve);
 * otherwise the event loop reads the eventfd and raises it as the device
 * would (INTx, MSI, a masked vector's pending bit).
 */
static void
vtnet_vhost_irq_sync(struct vtnet_softc *sc)
{
	struct pci_devinst *pi = sc->vs.vs_pi;
	struct mevent *mev = machine_of(pi->pi_vmctx)->mev;

	for (int i = 0; i < 2; i++) {
		uint16_t idx = sc->queues[i].vq_msix_idx;
		uint64_t addr = 0;
		uint32_t data = 0;
		bool direct = sc->vhost_on && idx != VIRTIO_MSI_NO_VECTOR &&
			      pci_msix_vector(pi, idx, &addr, &data);

		if (direct && sc->vh_gsi[i] >= 0) {
			if (vm_msi_irqfd_update(pi->pi_vmctx, sc->vh_gsi[i],
						addr, data) == 0)
				continue;
			direct = false; /* back to the loop */
		}
		if (direct) {
			sc->vh_gsi[i] = vm_msi_irqfd(pi->pi_vmctx,
						     sc->vh_call[i], addr, data);
			if (sc->vh_gsi[i] >= 0 && sc->vh_call_ev[i]) {
				mevent_delete(sc->vh_call_ev[i]);
				sc->vh_call_ev[i] = NULL;
			}
		} else if (sc->vh_gsi[i] >= 0) {
			vm_msi_irqfd_release(pi->pi_vmctx, sc->vh_gsi[i],
					     sc->vh_call[i]);
			sc->vh_gsi[i] = -1;
		}
		if (sc->vh_gsi[i] < 0 && !sc->vh_call_ev[i] && mev)
			sc->vh_call_ev[i] =
			    mevent_add(mev, sc->vh_call[i], EVF_READ,
				       vtnet_vhost_call, &sc->queues[i]);
	}
}

/* The guest changed the MSI-X table or its enable and mask bits. */
static void
vtnet_msix_changed(struct pci_devinst *pi)
{
	struct vtnet_softc *sc = pi->pi_arg;

	pthread_mutex_lock(&sc->mtx);
	if (sc->vhost_on)
		vtnet_vhost_irq_sync(sc);
	pthread_mutex_unlock(&sc->mtx);
}

/*
 * The driver is ready: hand vhost the receive and transmit rings, the tap
 * and the doorbells (lock held). If vhost refuses, say why once and go on
 * moving frames here.
 */
static void
vtnet_vhost_start(struct vtnet_softc *sc)
{
	struct pci_devinst *pi = sc->vs.vs_pi;
	struct vhost_ring r[2];
	char err[256];
	uint64_t one = 1;

	if (!sc->vhost || sc->vhost_on ||
	    !vq_ring_ready(&sc->queues[VTNET_RXQ]) ||
	    !vq_ring_ready(&sc->queues[VTNET_TXQ]))
		return;
	while (sc->tx_busy)
		pthread_cond_wait(&sc->tx_idle, &sc->mtx);
	for (int i = 0; i < 2; i++) {
		struct vqueue_info *vq = &sc->queues[i];

		r[i] = (struct vhost_ring){
		    .num = vq->vq_qsize,
		    .last_avail = vq->vq_last_avail,
		    .desc = vq->vq_desc,
		    .avail = vq->vq_avail,
		    .used = vq->vq_used,
		    .kickfd = sc->vh_kick[i],
		    .callfd = sc->vh_call[i],
		};
	}
	if (vhost_net_start(sc->vhost, pi->pi_vmctx, sc->vs.vs_negotiated_caps,
			    netbe_get_vnet_hdr_len(sc->be) == 0, r,
			    netbe_get_fd(sc->be), err, sizeof(err)) < 0) {
		fprintf(stderr,
			"bhyve: virtio-net at %d:%d:%d: %s; frames go "
			"through bhyve instead\n",
			pi->pi_bus, pi->pi_slot, pi->pi_func, err);
		return;
	}
	sc->vhost_on = true;
	netbe_rx_disable(sc->be);
	sc->rx_off = false;
	vi_queue_eventfd(&sc->vs, VTNET_RXQ, sc->vh_kick[0]);
	vi_queue_eventfd(&sc->vs, VTNET_TXQ, sc->vh_kick[1]);
	vtnet_vhost_irq_sync(sc);
	/* What the driver queued before is vhost's to look at now. */
	for (int i = 0; i < 2; i++)
		(void)!write(sc->vh_kick[i], &one, sizeof(one));
}

/* Take the rings and the tap back from vhost (lock held). */
static void
vtnet_vhost_stop(struct vtnet_softc *sc)
{
	uint16_t last[2] = {sc->queues[VTNET_RXQ].vq_last_avail,
			    sc->queues[VTNET_TXQ].vq_last_avail};

	if (!sc->vhost_on)
		return;
	vhost_net_stop(sc->vhost, last);
	sc->queues[VTNET_RXQ].vq_last_avail = last[0];
	sc->queues[VTNET_TXQ].vq_last_avail = last[1];
	vi_queue_eventfd(&sc->vs, VTNET_RXQ, -1);
	vi_queue_eventfd(&sc->vs, VTNET_TXQ, sc->tx_efd);
	sc->vhost_on = false;
	vtnet_vhost_irq_sync(sc); /* the irqfds go */
	netbe_rx_enable(sc->be);
}

static void
vtnet_status(void *vsc, uint8_t status)
{
	struct vtnet_softc *sc = vsc;

	if (status & VIRTIO_CONFIG_S_DRIVER_OK)
		vtnet_vhost_start(sc);
}

/*
 * vhost=on at set-up: /dev/vhost-net, its doorbells and interrupt
 * eventfds, and its descriptor in the sandbox's list. 0, or -1 with err.
 */
static int
vtnet_vhost_init(struct vtnet_softc *sc, struct vmctx *ctx, char *err,
		 size_t errlen)
{
	struct mevent *mev = machine_of(ctx)->mev;

	if (netbe_get_fd(sc->be) < 0) {
		snprintf(err, errlen,
			 "vhost=on needs a tap backend (%s has no descriptor "
			 "vhost could use)",
			 sc->be->name);
		return -1;
	}
	sc->vhost = vhost_net_open(err, errlen);
	if (!sc->vhost)
		return -1;
	sc->vs.vs_pi->pi_msix.changed = vtnet_msix_changed;
	sandbox_allow_any_ioctl(vhost_net_fd(sc->vhost));
	for (int i = 0; i < 2; i++) {
		sc->vh_kick[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		sc->vh_call[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (sc->vh_kick[i] < 0 || sc->vh_call[i] < 0 || !mev) {
			snprintf(err, errlen, "vhost=on: eventfd: %s",
				 strerror(errno));
			return -1;
		}
		sc->vh_call_ev[i] = mevent_add(mev, sc->vh_call[i], EVF_READ,
					       vtnet_vhost_call,
					       &sc->queues[i]);
		if (!sc->vh_call_ev[i]) {
			snprintf(err, errlen,
				 "vhost=on: cannot add it to the event loop");
			return -1;
		}
	}
	return 0;
}

static void
vtnet_vhost_free(struct vtnet_softc *sc)
{
	for (int i = 0; i < 2; i++) {
		if (sc->vh_call_ev[i])
			mevent_delete(sc->vh_call_ev[i]);
		if (sc->vh_kick[i] >= 0)
			close(sc->vh_kick[i]);
		if (sc->vh_call[i] >= 0)
			close(sc->vh_call[i]);
	}
	vhost_net_close(sc->vhost);
}

static void
vtnet_reset(void *vsc)
{
	struct vtnet_softc *sc = vsc;

	/* The chains of a batch in flight go back to the old rings first. */
	while (sc->tx_busy)
		pthread_cond_wait(&sc->tx_idle, &sc->mtx);
	vtnet_vhost_stop(sc);
	vi_reset_dev(&sc->vs);
	memcpy(sc->cfg.mac, sc->mac, ETHER_ADDR_LEN);
	sc->promisc = sc->allmulti = false;
	vtnet_apply_features(sc, 0);
	/* Frames that come before the driver is back are dropped, not held. */
	if (sc->rx_off) {
		sc->rx_off = false;
		netbe_rx_enable(sc->be);
	}
}

static int
vtnet_cfgread(void *vsc, int offset, int size, uint32_t *val)
{
	struct vtnet_softc *sc = vsc;

	/* The core checked offset + size against the config's size. */
	*val = 0;
	memcpy(val, (uint8_t *)&sc->cfg + offset, size);
	return 0;
}

static int
vtnet_cfgwrite(void *vsc, int offset, int size, uint32_t val)
{
	struct vtnet_softc *sc = vsc;

	/*
	 * A legacy driver without CTRL_MAC_ADDR sets its address by writing
	 * mac (§5.1.4.2's legacy note); nothing else is writable.
	 */
	if (offset + size <= ETHER_ADDR_LEN)
		memcpy(sc->cfg.mac + offset, &val, size);
	return 0;
}

/* ---- set-up ---- */

static const char *const vtnet_keys[] = {"device", "backend", "mac", "mtu",
					 "vhost"};

static int
vtnet_check_key(const struct config *c, void *arg)
{
	const struct config *node = ((const struct config **)arg)[0];
	const char *name = config_node_name(c);

	if (!config_is_leaf(c))
		goto bad;
	for (size_t i = 0; i < sizeof(vtnet_keys) / sizeof(vtnet_keys[0]); i++)
		if (!strcmp(name, vtnet_keys[i]))
			return 0;
	if (netbe_is_option(node, name))
		return 0;
bad:
	((const char **)arg)[1] = name;
	return 1;
}

/* -s N,virtio-net,tap0,...: a first word without '=' is the backend. */
static int
vtnet_legacy_config(struct config *node, const char *opts, char *err,
		    size_t errlen)
{
	size_t n = strcspn(opts, ",");
	char *word;
	int rc;

	if (memchr(opts, '=', n) || n == 0)
		return pci_parse_legacy_config(node, opts, err, errlen);
	word = strndup(opts, n);
	if (!word)
		return -1;
	rc = config_set(node, "backend", word, err, errlen);
	free(word);
	if (rc < 0 || !opts[n])
		return rc;
	return pci_parse_legacy_config(node, opts + n + 1, err, errlen);
}

static int
vtnet_fail(struct pci_devinst *pi, const char *msg)
{
	fprintf(stderr, "bhyve: virtio-net at %d:%d:%d: %s\n", pi->pi_bus,
		pi->pi_slot, pi->pi_func, msg);
	return -1;
}

/* The node's keys, mtu and MAC; 0, or -1 with one line in err. */
static int
vtnet_parse(struct pci_devinst *pi, struct config *node, uint16_t *mtu,
	    uint8_t mac[ETHER_ADDR_LEN], char *err, size_t errlen)
{
	const struct config *args[2] = {node, NULL};
	const char *s = config_get(node, "mtu");
	const char *vmname = config_get(machine_config(pi->pi_vmctx), "name");
	char *end;
	unsigned long v;

	if (config_foreach(node, vtnet_check_key, args)) {
		snprintf(err, errlen,
			 "unknown option '%s' (backend, "
			 "mac=xx:xx:xx:xx:xx:xx, mtu=N, vhost=on|off, or the "
			 "backend's own)",
			 (const char *)args[1]);
		return -1;
	}
	*mtu = 0;
	if (s) {
		errno = 0;
		v = strtoul(s, &end, 10);
		if (errno || end == s || *end || *s == '-' ||
		    v < VTNET_MIN_MTU || v > VTNET_MAX_MTU) {
			snprintf(err, errlen,
				 "bad mtu '%s': want a number from %d to %d", s,
				 VTNET_MIN_MTU, VTNET_MAX_MTU);
			return -1;
		}
		*mtu = (uint16_t)v;
	}
	return net_nic_mac(node, vmname, pi->pi_slot, pi->pi_func, mac, err,
			   errlen);
}

static void
vtnet_pci_ids(struct pci_devinst *pi)
{
	/* A transitional device (§4.1.2.1): revision 0 for legacy drivers. */
	pci_set_cfgdata16(pi, 0x00, VIRTIO_VENDOR);
	pci_set_cfgdata16(pi, 0x02, VIRTIO_DEV_NET);
	pci_set_cfgdata8(pi, 0x08, 0);	  /* revision */
	pci_set_cfgdata8(pi, 0x0a, 0x00); /* Ethernet */
	pci_set_cfgdata8(pi, 0x0b, 0x02); /* network */
	pci_set_cfgdata16(pi, 0x2c, VIRTIO_VENDOR);
	pci_set_cfgdata16(pi, 0x2e, VIRTIO_ID_NETWORK);
}

static void vtnet_deinit(struct pci_devinst *pi);

static int
vtnet_init(struct pci_devinst *pi, struct config *node)
{
	struct config *cfg = machine_config(pi->pi_vmctx);
	struct vtnet_softc *sc;
	uint8_t mac[ETHER_ADDR_LEN];
	uint16_t mtu;
	char err[512];
	bool vhost;

	if (vtnet_parse(pi, node, &mtu, mac, err, sizeof(err)) < 0)
		return vtnet_fail(pi, err);
	if (config_check_bool(node, "vhost", err, sizeof(err)) < 0)
		return vtnet_fail(pi, err);
	vhost = config_get_bool(node, "vhost", false);
	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return vtnet_fail(pi, "out of memory");
	pthread_mutex_init(&sc->mtx, NULL);
	pthread_cond_init(&sc->tx_idle, NULL);
	sc->vh_kick[0] = sc->vh_kick[1] = sc->vh_call[0] = sc->vh_call[1] = -1;
	sc->vh_gsi[0] = sc->vh_gsi[1] = -1;
	sc->tx_efd = eventfd(0, EFD_CLOEXEC);
	if (sc->tx_efd < 0) {
		pthread_cond_destroy(&sc->tx_idle);
		pthread_mutex_destroy(&sc->mtx);
		free(sc);
		return vtnet_fail(pi, "cannot make its transmit doorbell");
	}
	sc->consts = vtnet_vi_consts;
	sc->queues[VTNET_RXQ].vq_qsize = VTNET_RINGSZ;
	sc->queues[VTNET_TXQ].vq_qsize = VTNET_RINGSZ;
	sc->queues[VTNET_CTLQ].vq_qsize = VTNET_CTRL_RINGSZ;
	sc->vs.vs_mtx = &sc->mtx;
	vi_softc_linkup(&sc->vs, &sc->consts, sc, pi, sc->queues);
	vi_queue_eventfd(&sc->vs, VTNET_TXQ, sc->tx_efd);
	memcpy(sc->mac, mac, ETHER_ADDR_LEN);
	memcpy(sc->cfg.mac, mac, ETHER_ADDR_LEN);
	sc->cfg.status = VTNET_S_LINK_UP;
	sc->cfg.max_virtqueue_pairs = 1;
	sc->cfg.mtu = mtu;
	if (mtu)
		sc->consts.vc_hv_caps |= VTNET_F_MTU;
	sc->be = netbe_open(pi->pi_vmctx, node, vtnet_rx_callback, sc, err,
			    sizeof(err));
	if (!sc->be) {
		vtnet_deinit(pi);
		return vtnet_fail(pi, err);
	}
	if (vhost && vtnet_vhost_init(sc, pi->pi_vmctx, err, sizeof(err)) < 0) {
		vtnet_deinit(pi);
		return vtnet_fail(pi, err);
	}
	sc->be_caps = netbe_get_cap(sc->be) & VTNET_OFFLOADS;
	sc->consts.vc_hv_caps |= sc->be_caps;
	vtnet_apply_features(sc, 0);
	vtnet_pci_ids(pi);
	if (vi_intr_init(&sc->vs, 1,
			 config_get_bool(cfg, "virtio_msix", true)) < 0 ||
	    vi_set_io_bar(&sc->vs, 0) < 0) {
		vtnet_deinit(pi);
		return vtnet_fail(pi, "cannot set up its BARs and interrupts");
	}
	if (pthread_create(&sc->tx_tid, NULL, vtnet_tx_thread, sc) != 0) {
		vtnet_deinit(pi);
		return vtnet_fail(pi, "cannot start its transmit thread");
	}
	sc->tx_started = true;
	pthread_setname_np(sc->tx_tid, "vtnet-tx");
	return 0;
}

static void
vtnet_deinit(struct pci_devinst *pi)
{
	struct vtnet_softc *sc = pi->pi_arg;

	if (!sc)
		return;
	if (sc->tx_started) {
		uint64_t one = 1;

		pthread_mutex_lock(&sc->mtx);
		sc->tx_stop = true;
		pthread_mutex_unlock(&sc->mtx);
		(void)!write(sc->tx_efd, &one, sizeof(one));
		pthread_join(sc->tx_tid, NULL);
	}
	pthread_mutex_lock(&sc->mtx);
	vtnet_vhost_stop(sc);
	pthread_mutex_unlock(&sc->mtx);
	vtnet_vhost_free(sc);
	netbe_close(sc->be);
	close(sc->tx_efd);
	pthread_cond_destroy(&sc->tx_idle);
	pthread_mutex_destroy(&sc->mtx);
	free(sc);
	pi->pi_arg = NULL;
}

static const struct pci_devemu pci_de_vnet;

int
pci_vtnet_stats(struct pci_devinst *pi, struct vtnet_stats *st)
{
	struct vtnet_softc *sc;

	if (!pi || pi->pi_d != &pci_de_vnet || !pi->pi_arg)
		return -1;
	sc = pi->pi_arg;
	pthread_mutex_lock(&sc->mtx);
	*st = sc->st;
	pthread_mutex_unlock(&sc->mtx);
	return 0;
}

static const struct pci_devemu pci_de_vnet = {
    .pe_emu = "virtio-net",
    .pe_legacy_config = vtnet_legacy_config,
    .pe_init = vtnet_init,
    .pe_deinit = vtnet_deinit,
    .pe_barwrite = vi_pci_write,
    .pe_barread = vi_pci_read,
    .pe_baraddr = vi_pci_baraddr,
};
PCI_EMUL_SET(pci_de_vnet);
