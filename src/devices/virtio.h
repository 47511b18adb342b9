/*
 * The virtio core: the legacy PCI transport as bhyve exposes it (virtio 1.2
 * §4.1.4.8, "Legacy Interfaces: A Note on PCI Device Layout") and split
 * virtqueues (§2.7).
 *
 * A device embeds a struct virtio_softc as the first member of its own
 * state, points pi->pi_arg at it, fills a struct virtio_consts and uses
 * vi_pci_read/vi_pci_write as its BAR handlers. Every register access and
 * every vq_* call happens with the device's mutex (vs_mtx) held.
 *
 * Guest memory is little-endian as the host is (x86): ring fields are used
 * as they are.
 */
#ifndef VIRTIO_H
#define VIRTIO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "pci_emul.h"

#define VIRTIO_VENDOR 0x1af4
/* Transitional PCI device IDs (§4.1.2.1): 0x1000 + device ID - 1. */
#define VIRTIO_DEV_NET 0x1000
#define VIRTIO_DEV_BLOCK 0x1001
#define VIRTIO_DEV_CONSOLE 0x1003
#define VIRTIO_DEV_RANDOM 0x1005
/* Device IDs (§5): a transitional device's PCI subsystem device ID. */
#define VIRTIO_ID_NETWORK 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_ENTROPY 4

/* The legacy I/O BAR (§4.1.4.8), and each register's width. */
#define VIRTIO_PCI_HOST_FEATURES 0  /* 4 */
#define VIRTIO_PCI_GUEST_FEATURES 4 /* 4 */
#define VIRTIO_PCI_QUEUE_PFN 8	    /* 4 */
#define VIRTIO_PCI_QUEUE_NUM 12	    /* 2 */
#define VIRTIO_PCI_QUEUE_SEL 14	    /* 2 */
#define VIRTIO_PCI_QUEUE_NOTIFY 16  /* 2 */
#define VIRTIO_PCI_STATUS 18	    /* 1 */
#define VIRTIO_PCI_ISR 19	    /* 1 */
#define VIRTIO_MSI_CONFIG_VECTOR 20 /* 2, only while MSI-X is on */
#define VIRTIO_MSI_QUEUE_VECTOR 22  /* 2, only while MSI-X is on */
#define VIRTIO_PCI_CONFIG_OFF(msix) ((msix) ? 24 : 20)
#define VIRTIO_MSI_NO_VECTOR 0xffff
#define VIRTIO_PCI_QUEUE_ADDR_SHIFT 12 /* the PFN is in 4 KiB pages */
#define VIRTIO_PCI_VRING_ALIGN 4096    /* the used ring's alignment */

#define VIRTIO_PCI_ISR_INTR 0x1
#define VIRTIO_PCI_ISR_CONFIG 0x2

/* Device status (§2.1). */
#define VIRTIO_CONFIG_S_ACKNOWLEDGE 0x01
#define VIRTIO_CONFIG_S_DRIVER 0x02
#define VIRTIO_CONFIG_S_DRIVER_OK 0x04
#define VIRTIO_CONFIG_S_FEATURES_OK 0x08
#define VIRTIO_CONFIG_S_NEEDS_RESET 0x40
#define VIRTIO_CONFIG_S_FAILED 0x80

/* Transport feature bits (§6). */
#define VIRTIO_RING_F_INDIRECT_DESC (1u << 28)
#define VIRTIO_RING_F_EVENT_IDX (1u << 29)

/* Split virtqueue structures (§2.7.5, §2.7.6, §2.7.8). */
struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* [qsize], then used_event */
};
#define VRING_AVAIL_F_NO_INTERRUPT 1

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[]; /* [qsize], then avail_event */
};
#define VRING_USED_F_NO_NOTIFY 1

/* Bytes of guest memory a legacy ring of qsize entries takes (§2.7.2). */
uint64_t vring_size(unsigned int qsize);

struct virtio_softc;

#define VQ_ALLOC 0x01  /* the guest gave it a ring */
#define VQ_BROKEN 0x02 /* bad guest data: idle until the device is reset */

struct vqueue_info {
	uint16_t vq_qsize; /* entries, a power of 2 */
	uint16_t vq_num;   /* index in the device's queues */
	struct virtio_softc *vq_vs;
	int vq_flags;
	uint16_t vq_last_avail; /* the next avail entry we take */
	uint16_t vq_next_used;	/* the next used entry we fill */
	uint16_t vq_save_used;	/* vq_next_used at the last interrupt check */
	uint16_t vq_msix_idx;
	uint32_t vq_pfn;
	/* Its doorbell when an eventfd (vi_queue_eventfd), else -1. */
	int vq_ev_fd;
	bool vq_ev_on; /* the kernel signals vq_ev_fd itself */
	/* Host mappings of the guest's ring (valid while VQ_ALLOC). */
	struct vring_desc *vq_desc;
	struct vring_avail *vq_avail;
	struct vring_used *vq_used;
};

/* What a device model tells the core about itself. */
struct virtio_consts {
	const char *vc_name; /* for messages: "virtio-blk" */
	int vc_nvq;
	size_t vc_cfgsize; /* bytes of device config after the registers */
	void (*vc_reset)(void *sc);
	void (*vc_qnotify)(void *sc, struct vqueue_info *vq);
	int (*vc_cfgread)(void *sc, int offset, int size, uint32_t *val);
	int (*vc_cfgwrite)(void *sc, int offset, int size, uint32_t val);
	void (*vc_apply_features)(void *sc, uint64_t negotiated);
	/* After the driver wrote a status other than 0 (reset). */
	void (*vc_status)(void *sc, uint8_t status);
	uint64_t vc_hv_caps; /* features offered (the legacy BAR shows 32) */
};

struct virtio_softc {
	const struct virtio_consts *vs_vc;
	pthread_mutex_t *vs_mtx;
	struct pci_devinst *vs_pi;
	void *vs_sc; /* the device model's state */
	struct vqueue_info *vs_queues;
	uint64_t vs_negotiated_caps;
	int vs_curq;
	uint8_t vs_status;
	uint8_t vs_isr;
	uint16_t vs_msix_cfg_idx;
	int vs_iobar;
	bool vs_warned; /* one message per device about bad guest data */
	/* Where the I/O BAR decodes (the doorbells' ports), 0: nowhere. */
	uint64_t vs_ev_base;
};

/* What vq_getchain found: readable iovecs first, then writable ones. */
struct vi_req {
	int readable;
	int writable;
	uint16_t idx; /* the head descriptor, for vq_relchain */
};

void vi_softc_linkup(struct virtio_softc *vs, const struct virtio_consts *vc,
		     void *sc, struct pci_devinst *pi,
		     struct vqueue_info *queues);
/*
 * Interrupts: MSI-X with vc_nvq + 1 vectors in memory BAR msix_bar unless
 * use_msix is false (bhyve -W), one MSI vector, and INTx, which virtio
 * always has.
 */
int vi_intr_init(struct virtio_softc *vs, int msix_bar, bool use_msix);
/* The legacy register block and device config in I/O BAR barnum. */
int vi_set_io_bar(struct virtio_softc *vs, int barnum);
void vi_reset_dev(struct virtio_softc *vs);
/*
 * Queue qnum's notifications signal fd (an eventfd the device waits on)
 * instead of calling vc_qnotify. The kernel signals it itself where it
 * can (vm_ioeventfd on QUEUE_NOTIFY while the I/O BAR decodes: the
 * guest's notification then ends in the kernel, not in an exit to us);
 * a write that reaches us signals it here. Set before vi_set_io_bar, or
 * at run time (with vs_mtx held) to hand a queue to another consumer
 * (vhost); fd -1 gives its notifications back to vc_qnotify.
 */
void vi_queue_eventfd(struct virtio_softc *vs, int qnum, int fd);
/* The devices' pe_baraddr: moves the kernel's doorbell with the BAR. */
void vi_pci_baraddr(struct pci_devinst *pi, int baridx, bool enabled,
		    uint64_t address);
uint64_t vi_pci_read(struct pci_devinst *pi, int baridx, uint64_t offset,
		     int size);
void vi_pci_write(struct pci_devinst *pi, int baridx, uint64_t offset, int size,
		  uint64_t value);
/*
 * The guest broke the rules on vq: print why (once per device), set
 * NEEDS_RESET and stop using the queue until the driver resets the device.
 * Returns -1.
 */
int vi_error(struct virtio_softc *vs, struct vqueue_info *vq, const char *fmt,
	     ...) __attribute__((format(printf, 3, 4)));
/* Raise the interrupt for an event: ISR bits for INTx, a vector for MSI-X. */
void vi_interrupt(struct virtio_softc *vs, uint8_t isr, uint16_t msix_idx);

bool vq_ring_ready(struct vqueue_info *vq);
/* Is there an available chain we have not taken? */
bool vq_has_descs(struct vqueue_info *vq);
/*
 * Take the next available chain: its buffers as host iovecs (at most niov),
 * every descriptor checked. 0 when there is none, -1 when the chain is bad
 * (see vi_error), else the number of iovecs.
 */
int vq_getchain(struct vqueue_info *vq, struct iovec *iov, int niov,
		struct vi_req *reqp);
/*
 * Give back the last n chains taken and not released (a device that found
 * too few buffers for a frame takes them again later; they are walked and
 * checked again then).
 */
void vq_retchain(struct vqueue_info *vq, uint16_t n);
/* Hand a chain back: iolen bytes were written to its writable buffers. */
void vq_relchain(struct vqueue_info *vq, uint16_t idx, uint32_t iolen);
/* After vq_relchain(s): interrupt the driver unless it asked not to. */
void vq_endchains(struct vqueue_info *vq);
/*
 * Notification suppression (§2.7.7, §2.7.10). vq_kick_enable asks for a
 * notification at the next chain and is followed by a vq_has_descs check
 * (it orders the two); vq_kick_disable asks for none.
 */
void vq_kick_enable(struct vqueue_info *vq);
void vq_kick_disable(struct vqueue_info *vq);

#endif
