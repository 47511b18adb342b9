/*
 * vhost-net (/dev/vhost-net): the host kernel moves a virtio-net device's
 * frames between the guest's rings and a tap itself, with no copy or
 * system call in bhyve per frame. virtio-net hands its receive and transmit
 * rings over once the driver is ready (vhost=on) and takes them back at a
 * reset; the control queue stays in bhyve.
 *
 * The guest's notifications reach vhost through eventfds KVM signals
 * (ioeventfd on QUEUE_NOTIFY); vhost's "call" eventfds are read by bhyve's
 * event loop, which raises the queue's interrupt as virtio-net would.
 */
#ifndef NET_VHOST_H
#define NET_VHOST_H

#include <stdint.h>

#include "machine.h"

/* Feature bits vhost-net can take from a legacy virtio-net driver. */
#define VHOST_NET_GUEST_FEATURES                                               \
	((1ull << 15) /* MRG_RXBUF */ | (1ull << 28) /* INDIRECT_DESC */ |     \
	 (1ull << 29) /* EVENT_IDX */)

/* One of the rings handed over: host addresses of its parts. */
struct vhost_ring {
	unsigned int num;    /* entries */
	uint16_t last_avail; /* the next avail entry to take */
	void *desc, *avail, *used;
	int kickfd; /* the guest's notifications, from KVM */
	int callfd; /* vhost's interrupts, to bhyve's event loop */
};

struct vhost_net;

/*
 * Open /dev/vhost-net for this process (VHOST_SET_OWNER). NULL with one
 * line in err (naming the device and what to do) when it cannot be had.
 */
struct vhost_net *vhost_net_open(char *err, size_t errlen);
/* Its descriptor, for the sandbox's ioctl list. */
int vhost_net_fd(const struct vhost_net *v);
/*
 * Start moving frames: features are the driver's (VHOST_NET_GUEST_FEATURES
 * of them are passed on); hdr_by_vhost when the tap has no vnet header and
 * vhost adds and strips the guest's; rings[0] receive, rings[1] transmit;
 * tapfd the tap. 0, or -1 with err.
 */
int vhost_net_start(struct vhost_net *v, struct vmctx *ctx, uint64_t features,
		    bool hdr_by_vhost, const struct vhost_ring rings[2],
		    int tapfd, char *err, size_t errlen);
/*
 * Stop: vhost lets go of the tap and the rings; last_avail[i] is where it
 * stopped in ring i. Idempotent.
 */
void vhost_net_stop(struct vhost_net *v, uint16_t last_avail[2]);
void vhost_net_close(struct vhost_net *v);

#endif
