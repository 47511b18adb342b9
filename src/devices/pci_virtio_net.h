/*
 * virtio-net's counters (pci_virtio_net.c): what the device dropped or
 * could not do, kept instead of printing per packet.
 */
#ifndef PCI_VIRTIO_NET_H
#define PCI_VIRTIO_NET_H

#include <stdint.h>

#include "pci_emul.h"

struct vtnet_stats {
	uint64_t rx_packets;
	uint64_t rx_dropped; /* no guest buffer, or the driver not ready */
	uint64_t rx_errors;  /* too big for the guest's buffers, backend */
	uint64_t tx_packets;
	uint64_t tx_dropped;  /* the host could not take it now (EAGAIN) */
	uint64_t tx_errors;   /* shorter than a header, the backend refused */
	uint64_t ctrl_errors; /* control commands answered VIRTIO_NET_ERR */
};

/* A snapshot of a virtio-net function's counters; -1 if pi is not one. */
int pci_vtnet_stats(struct pci_devinst *pi, struct vtnet_stats *st);

#endif
