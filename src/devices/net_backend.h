/*
 * Network backends: where a NIC's frames go on the host. A NIC model
 * (virtio-net, e1000) opens one from its config node and sends and receives
 * whole Ethernet frames through it; the backend knows nothing of the NIC.
 *
 *   tap      tapN, or backend=tapN: /dev/net/tun, an interface the user made
 *            beforehand (IFF_TAP | IFF_NO_PI, IFF_VNET_HDR for offloads)
 *   slirp    user-mode networking through libslirp, no root needed
 *
 * Each backend is one file that registers a struct net_backend_ops with
 * NET_BACKEND_SET, as devices register with PCI_EMUL_SET; the NIC models
 * and the front end name none of them.
 *
 * Threads: netbe_send may be called from any one thread at a time (a vCPU
 * thread or the NIC's own); the rx callback runs on the event loop thread,
 * where the NIC calls netbe_recv until it returns 0.
 */
#ifndef NET_BACKEND_H
#define NET_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "config.h"
#include "machine.h"

#define ETHER_ADDR_LEN 6
/* The largest frame a backend passes without offloads (MTU 1500 + header). */
#define NETBE_MAX_FRAME 1514
/* With TSO/GSO (a vnet header describing it): 64 KiB of payload. */
#define NETBE_MAX_GSO_FRAME 65562

/*
 * The virtio-net header (virtio 1.2 §5.1.6) that carries offloads between a
 * NIC model and a backend which supports them: the tap backend hands it to
 * the kernel (IFF_VNET_HDR) as it is. num_buffers is there with MRG_RXBUF.
 */
struct virtio_net_rxhdr {
	uint8_t vrh_flags;
	uint8_t vrh_gso_type;
	uint16_t vrh_hdr_len;
	uint16_t vrh_gso_size;
	uint16_t vrh_csum_start;
	uint16_t vrh_csum_offset;
	uint16_t vrh_bufs; /* only with VIRTIO_NET_F_MRG_RXBUF */
} __attribute__((packed));

/* Offload features, as virtio-net's feature bits (§5.1.3). */
#define NETBE_F_CSUM (1ull << 0)
#define NETBE_F_GUEST_CSUM (1ull << 1)
#define NETBE_F_GUEST_TSO4 (1ull << 7)
#define NETBE_F_GUEST_TSO6 (1ull << 8)
#define NETBE_F_GUEST_ECN (1ull << 9)
#define NETBE_F_GUEST_UFO (1ull << 10)
#define NETBE_F_HOST_TSO4 (1ull << 11)
#define NETBE_F_HOST_TSO6 (1ull << 12)
#define NETBE_F_HOST_ECN (1ull << 13)
#define NETBE_F_HOST_UFO (1ull << 14)
#define NETBE_F_OFFLOADS                                                       \
	(NETBE_F_CSUM | NETBE_F_GUEST_CSUM | NETBE_F_GUEST_TSO4 |              \
	 NETBE_F_GUEST_TSO6 | NETBE_F_GUEST_ECN | NETBE_F_GUEST_UFO |          \
	 NETBE_F_HOST_TSO4 | NETBE_F_HOST_TSO6 | NETBE_F_HOST_ECN |            \
	 NETBE_F_HOST_UFO)

struct net_backend;
/* Frames may be waiting: the NIC calls netbe_recv until it returns 0. */
typedef void (*netbe_rx_fn)(int fd, void *arg);

struct net_backend_ops {
	/* Its name on the command line: "tap" matches tap0, tap1, ... */
	const char *prefix;
	/*
	 * Open the backend for the NIC whose config node is nic (name: the
	 * word the user gave, e.g. "tap0"; the node holds the NIC's keys,
	 * hostfwd and the like). On failure print nothing, fill err with one
	 * line (what failed and what to do) and return -1.
	 */
	int (*init)(struct net_backend *be, struct vmctx *ctx, const char *name,
		    struct config *nic, char *err, size_t errlen);
	void (*cleanup)(struct net_backend *be);
	/*
	 * Send one frame (the vnet header first when one was set with
	 * set_cap). Returns the bytes taken, or -1 with errno: EAGAIN when
	 * the host cannot take it now (the frame is dropped and counted).
	 */
	ssize_t (*send)(struct net_backend *be, const struct iovec *iov,
			int iovcnt);
	/* Bytes of the next waiting frame (vnet header included), 0: none. */
	ssize_t (*peek_recvlen)(struct net_backend *be);
	/*
	 * Receive one frame into iov (vnet header first when set). Returns its
	 * length, 0 when none waits, -1 on error. A frame longer than iov is
	 * truncated to it and counted as an error by the NIC.
	 */
	ssize_t (*recv)(struct net_backend *be, const struct iovec *iov,
			int iovcnt);
	/* Drop the next waiting frame (the guest had no buffer for it). */
	ssize_t (*recv_discard)(struct net_backend *be);
	/* Stop and restart rx callbacks (the guest has no buffers). */
	void (*rx_disable)(struct net_backend *be);
	void (*rx_enable)(struct net_backend *be);
	/* Offloads the backend can do (NETBE_F_*), and turning them on. */
	uint64_t (*get_cap)(struct net_backend *be);
	int (*set_cap)(struct net_backend *be, uint64_t features,
		       unsigned int vnet_hdr_len);
	/*
	 * The keys the backend reads from the NIC's node (slirp: hostfwd),
	 * NULL-terminated; NULL for none. A NIC accepts these besides its
	 * own (netbe_is_option) and rejects any other key.
	 */
	const char *const *keys;
	/* The descriptor frames pass through (a tap's, for vhost), or NULL. */
	int (*get_fd)(struct net_backend *be);
	size_t priv_size; /* bytes of backend state after struct net_backend */
};

#define NET_BACKEND_SET(sym) DATA_SET(net_backend_set, sym)
SET_DECLARE(net_backend_set);

struct net_backend {
	const struct net_backend_ops *ops;
	struct vmctx *ctx;
	netbe_rx_fn rx_cb;
	void *rx_arg;
	unsigned int vnet_hdr_len; /* what the NIC and the backend agreed */
	char name[32];
	unsigned char priv[] __attribute__((aligned(16)));
};

/*
 * Open the backend the NIC's config node names ("backend", e.g. tap0 or
 * slirp); without one, a backend connected to nothing (as bhyve's NIC
 * without a backend: the guest's frames are dropped, none arrive). rx_cb runs on the event loop when frames may be waiting. On
 * failure: one line in err naming the backend, NULL.
 */
struct net_backend *netbe_open(struct vmctx *ctx, struct config *nic,
			       netbe_rx_fn rx_cb, void *rx_arg, char *err,
			       size_t errlen);
void netbe_close(struct net_backend *be);
/*
 * Is key one the backend named by the node's "backend" reads? For a NIC's
 * check of its node: false when the backend is unknown (netbe_open says
 * so).
 */
bool netbe_is_option(const struct config *nic, const char *key);
ssize_t netbe_send(struct net_backend *be, const struct iovec *iov, int iovcnt);
ssize_t netbe_peek_recvlen(struct net_backend *be);
ssize_t netbe_recv(struct net_backend *be, const struct iovec *iov, int iovcnt);
ssize_t netbe_rx_discard(struct net_backend *be);
void netbe_rx_disable(struct net_backend *be);
void netbe_rx_enable(struct net_backend *be);
uint64_t netbe_get_cap(struct net_backend *be);
int netbe_set_cap(struct net_backend *be, uint64_t features,
		  unsigned int vnet_hdr_len);
size_t netbe_get_vnet_hdr_len(struct net_backend *be);
/* The backend's descriptor for vhost (a tap's), -1 when it has none. */
int netbe_get_fd(struct net_backend *be);

/* "xx:xx:xx:xx:xx:xx" -> mac; -1 for anything else, multicast or zero. */
int net_parsemac(const char *s, uint8_t mac[ETHER_ADDR_LEN]);
/*
 * The NIC's MAC: the node's "mac" key when given (one line in err when it
 * is bad), else bhyve's: derived from the VM's name and the PCI slot and
 * function, the same every run and the same as FreeBSD's bhyve gives.
 */
int net_nic_mac(struct config *nic, const char *vmname, int slot, int func,
		uint8_t mac[ETHER_ADDR_LEN], char *err, size_t errlen);

#endif
