/*
 * The virtio core: the legacy PCI transport (virtio 1.2 §4.1.4.8) and split
 * virtqueues (§2.7), after bhyve's virtio.c.
 *
 * The guest owns the rings and may rewrite them at any moment: each index
 * and descriptor is read once into a local copy and checked there, every
 * buffer goes through vm_map_gpa, and every walk is bounded by the queue
 * size (or the indirect table's size). A chain that breaks the rules stops
 * the queue until the driver resets the device (vi_error).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "virtio.h"

#define DESC_SIZE 16

uint64_t
vring_size(unsigned int qsize)
{
	/* desc[qsize], avail (flags, idx, ring, used_event), then aligned. */
	uint64_t avail_end = DESC_SIZE * qsize + 2 * (3 + qsize);
	uint64_t used_off = (avail_end + VIRTIO_PCI_VRING_ALIGN - 1) &
			    ~(uint64_t)(VIRTIO_PCI_VRING_ALIGN - 1);

	return used_off + 2 * 3 + 8 * qsize;
}

void
vi_softc_linkup(struct virtio_softc *vs, const struct virtio_consts *vc,
		void *sc, struct pci_devinst *pi, struct vqueue_info *queues)
{
	vs->vs_vc = vc;
	vs->vs_sc = sc;
	vs->vs_pi = pi;
	vs->vs_queues = queues;
	pi->pi_arg = vs;
	for (int i = 0; i < vc->vc_nvq; i++) {
		queues[i].vq_vs = vs;
		queues[i].vq_num = i;
		queues[i].vq_ev_fd = -1;
		queues[i].vq_ev_on = false;
	}
	vs->vs_ev_base = 0;
	vi_reset_dev(vs);
}

int
vi_intr_init(struct virtio_softc *vs, int msix_bar, bool use_msix)
{
	struct pci_devinst *pi = vs->vs_pi;

	if (use_msix &&
	    pci_emul_add_msixcap(pi, vs->vs_vc->vc_nvq + 1, msix_bar) < 0)
		return -1;
	/* One MSI vector, as bhyve; INTx is mandatory for virtio. */
	if (pci_emul_add_msicap(pi, 1) < 0)
		return -1;
	pci_lintr_request(pi);
	return 0;
}

/* Give the kernel queue q's doorbell (on), or take it back. */
static void
vi_doorbell(struct virtio_softc *vs, struct vqueue_info *vq, bool on)
{
	struct pci_devinst *pi = vs->vs_pi;
	uint64_t port = vs->vs_ev_base + VIRTIO_PCI_QUEUE_NOTIFY;

	if (on && !vq->vq_ev_on && vs->vs_ev_base && vq->vq_ev_fd >= 0) {
		/* Without it (no KVM, an old kernel) writes come to us. */
		if (vm_ioeventfd(pi->pi_vmctx, port, 2, true,
				 (uint64_t)vq->vq_num, vq->vq_ev_fd, true) == 0)
			vq->vq_ev_on = true;
	} else if (!on && vq->vq_ev_on) {
		(void)vm_ioeventfd(pi->pi_vmctx, port, 2, true,
				   (uint64_t)vq->vq_num, vq->vq_ev_fd, false);
		vq->vq_ev_on = false;
	}
}

void
vi_queue_eventfd(struct virtio_softc *vs, int qnum, int fd)
{
	struct vqueue_info *vq = &vs->vs_queues[qnum];

	vi_doorbell(vs, vq, false);
	vq->vq_ev_fd = fd;
	vi_doorbell(vs, vq, true);
}

void
vi_pci_baraddr(struct pci_devinst *pi, int baridx, bool enabled,
	       uint64_t address)
{
	struct virtio_softc *vs = pi->pi_arg;

	if (!vs || baridx != vs->vs_iobar)
		return;
	for (int i = 0; i < vs->vs_vc->vc_nvq; i++)
		vi_doorbell(vs, &vs->vs_queues[i], false);
	vs->vs_ev_base = enabled ? address : 0;
	for (int i = 0; i < vs->vs_vc->vc_nvq; i++)
		vi_doorbell(vs, &vs->vs_queues[i], true);
}

int
vi_set_io_bar(struct virtio_softc *vs, int barnum)
{
	vs->vs_iobar = barnum;
	return pci_emul_alloc_bar(vs->vs_pi, barnum, PCIBAR_IO,
				  VIRTIO_PCI_CONFIG_OFF(1) +
				      vs->vs_vc->vc_cfgsize);
}

/* With vs_mtx held (or before the guest runs). */
void
vi_reset_dev(struct virtio_softc *vs)
{
	for (int i = 0; i < vs->vs_vc->vc_nvq; i++) {
		struct vqueue_info *vq = &vs->vs_queues[i];

		vq->vq_flags = 0;
		vq->vq_last_avail = 0;
		vq->vq_next_used = 0;
		vq->vq_save_used = 0;
		vq->vq_pfn = 0;
		vq->vq_msix_idx = VIRTIO_MSI_NO_VECTOR;
		vq->vq_desc = NULL;
		vq->vq_avail = NULL;
		vq->vq_used = NULL;
	}
	vs->vs_negotiated_caps = 0;
	vs->vs_curq = 0;
	vs->vs_status = 0;
	vs->vs_msix_cfg_idx = VIRTIO_MSI_NO_VECTOR;
	if (vs->vs_isr)
		pci_lintr_deassert(vs->vs_pi);
	vs->vs_isr = 0;
}

int
vi_error(struct virtio_softc *vs, struct vqueue_info *vq, const char *fmt, ...)
{
	struct pci_devinst *pi = vs->vs_pi;
	va_list ap;

	vq->vq_flags |= VQ_BROKEN;
	vs->vs_status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	if (vs->vs_warned)
		return -1;
	vs->vs_warned = true;
	fprintf(stderr, "bhyve: %s at %d:%d:%d: queue %d: ", vs->vs_vc->vc_name,
		pi->pi_bus, pi->pi_slot, pi->pi_func, vq->vq_num);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; the queue stops until the guest resets the "
			"device\n");
	return -1;
}

/* A PFN written to QUEUE_PFN: map the ring there, or tear it down (0). */
static void
vi_vq_init(struct virtio_softc *vs, uint32_t pfn)
{
	struct vqueue_info *vq = &vs->vs_queues[vs->vs_curq];
	uint64_t gpa = (uint64_t)pfn << VIRTIO_PCI_QUEUE_ADDR_SHIFT;
	uint64_t avail_end = DESC_SIZE * vq->vq_qsize + 2 * (3 + vq->vq_qsize);
	uint8_t *base;

	vq->vq_pfn = pfn;
	vq->vq_flags &= ~VQ_ALLOC;
	vq->vq_desc = NULL;
	vq->vq_avail = NULL;
	vq->vq_used = NULL;
	vq->vq_last_avail = vq->vq_next_used = vq->vq_save_used = 0;
	if (pfn == 0)
		return;
	base = vm_map_gpa(vs->vs_pi->pi_vmctx, gpa, vring_size(vq->vq_qsize));
	if (!base) {
		vi_error(vs, vq, "ring at 0x%llx is outside guest memory",
			 (unsigned long long)gpa);
		return;
	}
	vq->vq_desc = (struct vring_desc *)base;
	vq->vq_avail = (struct vring_avail *)(base + DESC_SIZE * vq->vq_qsize);
	vq->vq_used =
	    (struct vring_used *)(base +
				  ((avail_end + VIRTIO_PCI_VRING_ALIGN - 1) &
				   ~(uint64_t)(VIRTIO_PCI_VRING_ALIGN - 1)));
	vq->vq_flags |= VQ_ALLOC;
}

static void
vi_notify(struct virtio_softc *vs, uint32_t qnum)
{
	struct vqueue_info *vq;

	if (qnum >= (uint32_t)vs->vs_vc->vc_nvq)
		return; /* no such queue: a stray write */
	vq = &vs->vs_queues[qnum];
	if (vq->vq_ev_fd >= 0) {
		uint64_t one = 1;

		/* As the kernel would; the device checks the ring. */
		(void)!write(vq->vq_ev_fd, &one, sizeof(one));
		return;
	}
	if (!vq_ring_ready(vq) || !vs->vs_vc->vc_qnotify)
		return;
	vs->vs_vc->vc_qnotify(vs->vs_sc, vq);
}

/* A vector for MSI-X; one the table does not have reads back as none. */
static uint16_t
vi_vector(struct virtio_softc *vs, uint32_t v)
{
	return v < (uint32_t)vs->vs_pi->pi_msix.table_count
		   ? (uint16_t)v
		   : VIRTIO_MSI_NO_VECTOR;
}

/* The width of the register at off (0: none there). */
static int
vi_reg_size(int off, bool msix)
{
	switch (off) {
	case VIRTIO_PCI_HOST_FEATURES:
	case VIRTIO_PCI_GUEST_FEATURES:
	case VIRTIO_PCI_QUEUE_PFN:
		return 4;
	case VIRTIO_PCI_QUEUE_NUM:
	case VIRTIO_PCI_QUEUE_SEL:
	case VIRTIO_PCI_QUEUE_NOTIFY:
		return 2;
	case VIRTIO_PCI_STATUS:
	case VIRTIO_PCI_ISR:
		return 1;
	case VIRTIO_MSI_CONFIG_VECTOR:
	case VIRTIO_MSI_QUEUE_VECTOR:
		return msix ? 2 : 0;
	}
	return 0;
}

static struct vqueue_info *
vi_curq(struct virtio_softc *vs)
{
	if (vs->vs_curq < 0 || vs->vs_curq >= vs->vs_vc->vc_nvq)
		return NULL;
	return &vs->vs_queues[vs->vs_curq];
}

static uint32_t
vi_reg_read(struct virtio_softc *vs, int off)
{
	struct vqueue_info *vq = vi_curq(vs);
	uint32_t v = 0;

	switch (off) {
	case VIRTIO_PCI_HOST_FEATURES:
		return (uint32_t)vs->vs_vc->vc_hv_caps;
	case VIRTIO_PCI_GUEST_FEATURES:
		return (uint32_t)vs->vs_negotiated_caps;
	case VIRTIO_PCI_QUEUE_PFN:
		return vq ? vq->vq_pfn : 0;
	case VIRTIO_PCI_QUEUE_NUM:
		return vq ? vq->vq_qsize : 0;
	case VIRTIO_PCI_QUEUE_SEL:
		return (uint32_t)vs->vs_curq;
	case VIRTIO_PCI_STATUS:
		return vs->vs_status;
	case VIRTIO_PCI_ISR:
		/* Read-to-clear, and it drops the INTx line (§4.1.4.5). */
		v = vs->vs_isr;
		vs->vs_isr = 0;
		if (v)
			pci_lintr_deassert(vs->vs_pi);
		return v;
	case VIRTIO_MSI_CONFIG_VECTOR:
		return vs->vs_msix_cfg_idx;
	case VIRTIO_MSI_QUEUE_VECTOR:
		return vq ? vq->vq_msix_idx : VIRTIO_MSI_NO_VECTOR;
	}
	return 0; /* QUEUE_NOTIFY reads as 0 */
}

static void
vi_reg_write(struct virtio_softc *vs, int off, uint32_t val)
{
	const struct virtio_consts *vc = vs->vs_vc;
	struct vqueue_info *vq = vi_curq(vs);

	switch (off) {
	case VIRTIO_PCI_GUEST_FEATURES:
		vs->vs_negotiated_caps = val & vc->vc_hv_caps;
		if (vc->vc_apply_features)
			vc->vc_apply_features(vs->vs_sc,
					      vs->vs_negotiated_caps);
		break;
	case VIRTIO_PCI_QUEUE_PFN:
		if (vq)
			vi_vq_init(vs, val);
		break;
	case VIRTIO_PCI_QUEUE_SEL:
		/* Out of range is allowed: the queue then reads as absent. */
		vs->vs_curq = (int)val;
		break;
	case VIRTIO_PCI_QUEUE_NOTIFY:
		vi_notify(vs, val);
		break;
	case VIRTIO_PCI_STATUS:
		if (val == 0) {
			/* §2.4: writing 0 resets the device. */
			if (vc->vc_reset)
				vc->vc_reset(vs->vs_sc);
			else
				vi_reset_dev(vs);
			break;
		}
		vs->vs_status = (uint8_t)val |
				(vs->vs_status & VIRTIO_CONFIG_S_NEEDS_RESET);
		if (vc->vc_status)
			vc->vc_status(vs->vs_sc, vs->vs_status);
		break;
	case VIRTIO_MSI_CONFIG_VECTOR:
		vs->vs_msix_cfg_idx = vi_vector(vs, val);
		break;
	case VIRTIO_MSI_QUEUE_VECTOR:
		if (vq)
			vq->vq_msix_idx = vi_vector(vs, val);
		break;
	}
}

uint64_t
vi_pci_read(struct pci_devinst *pi, int baridx, uint64_t offset, int size)
{
	struct virtio_softc *vs = pi->pi_arg;
	uint32_t mask = size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
	uint32_t val = mask; /* what a bad access reads */
	uint64_t cfg;

	if (baridx != vs->vs_iobar || size < 1 || size > 4)
		return ~0ULL;
	pthread_mutex_lock(vs->vs_mtx);
	cfg = VIRTIO_PCI_CONFIG_OFF(pci_msix_enabled(pi));
	if (offset >= cfg) {
		uint64_t o = offset - cfg;
		if (o + size <= vs->vs_vc->vc_cfgsize &&
		    vs->vs_vc->vc_cfgread &&
		    vs->vs_vc->vc_cfgread(vs->vs_sc, (int)o, size, &val) == 0)
			val &= mask;
		else
			val = mask;
	} else if (vi_reg_size((int)offset, cfg == 24) == size) {
		val = vi_reg_read(vs, (int)offset) & mask;
	}
	pthread_mutex_unlock(vs->vs_mtx);
	return val;
}

void
vi_pci_write(struct pci_devinst *pi, int baridx, uint64_t offset, int size,
	     uint64_t value)
{
	struct virtio_softc *vs = pi->pi_arg;
	uint32_t mask = size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
	uint64_t cfg;

	if (baridx != vs->vs_iobar || size < 1 || size > 4)
		return;
	pthread_mutex_lock(vs->vs_mtx);
	cfg = VIRTIO_PCI_CONFIG_OFF(pci_msix_enabled(pi));
	if (offset >= cfg) {
		uint64_t o = offset - cfg;
		if (o + size <= vs->vs_vc->vc_cfgsize && vs->vs_vc->vc_cfgwrite)
			vs->vs_vc->vc_cfgwrite(vs->vs_sc, (int)o, size,
					       (uint32_t)value & mask);
	} else if (vi_reg_size((int)offset, cfg == 24) == size) {
		vi_reg_write(vs, (int)offset, (uint32_t)value & mask);
	}
	pthread_mutex_unlock(vs->vs_mtx);
}

void
vi_interrupt(struct virtio_softc *vs, uint8_t isr, uint16_t msix_idx)
{
	struct pci_devinst *pi = vs->vs_pi;

	if (pci_msix_enabled(pi)) {
		if (msix_idx != VIRTIO_MSI_NO_VECTOR)
			pci_generate_msix(pi, msix_idx);
		return;
	}
	vs->vs_isr |= isr;
	if (pci_msi_enabled(pi))
		pci_generate_msi(pi, 0);
	else
		pci_lintr_assert(pi);
}

/* ---- split virtqueues (§2.7) ---- */

bool
vq_ring_ready(struct vqueue_info *vq)
{
	return (vq->vq_flags & (VQ_ALLOC | VQ_BROKEN)) == VQ_ALLOC;
}

static uint16_t
vq_avail_idx(struct vqueue_info *vq)
{
	/* Acquire: the ring entries it covers are read after it (§2.7.13). */
	return __atomic_load_n(&vq->vq_avail->idx, __ATOMIC_ACQUIRE);
}

bool
vq_has_descs(struct vqueue_info *vq)
{
	return vq_ring_ready(vq) && vq_avail_idx(vq) != vq->vq_last_avail;
}

/*
 * Copy a descriptor out of guest memory (possibly unaligned, in an indirect
 * table). The barrier keeps the compiler from reading the guest's copy
 * again in place of ours: what we check is what we use.
 */
static void
vq_read_desc(const uint8_t *src, struct vring_desc *d)
{
	memcpy(d, src, sizeof(*d));
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

struct vq_walk {
	struct vqueue_info *vq;
	struct iovec *iov;
	int niov;
	int n;
	struct vi_req *req;
};

/* One direct descriptor into the next iovec. */
static int
vq_add_desc(struct vq_walk *w, const struct vring_desc *d)
{
	struct virtio_softc *vs = w->vq->vq_vs;
	void *p;

	if (w->n >= w->niov)
		return vi_error(vs, w->vq, "chain %u has more than %d buffers",
				w->req->idx, w->niov);
	/* §2.7.4.2: device-writable buffers come after the readable ones. */
	if (d->flags & VRING_DESC_F_WRITE)
		w->req->writable++;
	else if (w->req->writable)
		return vi_error(vs, w->vq,
				"chain %u has a readable buffer after a "
				"writable one",
				w->req->idx);
	else
		w->req->readable++;
	p = vm_map_gpa(vs->vs_pi->pi_vmctx, d->addr, d->len);
	if (!p)
		return vi_error(vs, w->vq,
				"chain %u: buffer 0x%llx+%u is outside guest "
				"memory",
				w->req->idx, (unsigned long long)d->addr,
				d->len);
	w->iov[w->n].iov_base = p;
	w->iov[w->n].iov_len = d->len;
	w->n++;
	return 0;
}

/* An indirect table (§2.7.5.3): its own chain, bounded by its size. */
static int
vq_walk_indirect(struct vq_walk *w, const struct vring_desc *ind)
{
	struct vqueue_info *vq = w->vq;
	struct virtio_softc *vs = vq->vq_vs;
	struct vring_desc d;
	const uint8_t *tbl;
	uint32_t count, i = 0;

	if (!(vs->vs_negotiated_caps & VIRTIO_RING_F_INDIRECT_DESC))
		return vi_error(vs, vq,
				"chain %u uses an indirect table, which was "
				"not negotiated",
				w->req->idx);
	/* §2.7.5.3.1: not both INDIRECT and NEXT; whole descriptors. */
	if ((ind->flags & VRING_DESC_F_NEXT) || ind->len == 0 ||
	    ind->len % DESC_SIZE)
		return vi_error(
		    vs, vq,
		    "chain %u: bad indirect descriptor (flags 0x%x, "
		    "%u bytes)",
		    w->req->idx, ind->flags, ind->len);
	count = ind->len / DESC_SIZE;
	tbl = vm_map_gpa(vs->vs_pi->pi_vmctx, ind->addr, ind->len);
	if (!tbl)
		return vi_error(vs, vq,
				"chain %u: indirect table 0x%llx+%u is outside "
				"guest memory",
				w->req->idx, (unsigned long long)ind->addr,
				ind->len);
	for (uint32_t steps = 1;; steps++) {
		if (steps > count)
			return vi_error(vs, vq,
					"chain %u: indirect table loops",
					w->req->idx);
		vq_read_desc(tbl + (size_t)i * DESC_SIZE, &d);
		if (d.flags & VRING_DESC_F_INDIRECT)
			return vi_error(vs, vq,
					"chain %u: indirect table inside an "
					"indirect table",
					w->req->idx);
		if (vq_add_desc(w, &d) < 0)
			return -1;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		i = d.next;
		if (i >= count)
			return vi_error(vs, vq,
					"chain %u: indirect next %u is past "
					"the table's %u entries",
					w->req->idx, i, count);
	}
}

int
vq_getchain(struct vqueue_info *vq, struct iovec *iov, int niov,
	    struct vi_req *reqp)
{
	struct virtio_softc *vs = vq->vq_vs;
	struct vq_walk w = {vq, iov, niov, 0, reqp};
	uint16_t qsz = vq->vq_qsize, avail, head, next;
	struct vring_desc d;

	memset(reqp, 0, sizeof(*reqp));
	if (!vq_ring_ready(vq))
		return 0;
	avail = vq_avail_idx(vq);
	if (avail == vq->vq_last_avail)
		return 0;
	/* §2.7.6: the driver can be at most a whole ring ahead. */
	if ((uint16_t)(avail - vq->vq_last_avail) > qsz)
		return vi_error(vs, vq,
				"avail index %u is more than %u past ours (%u)",
				avail, qsz, vq->vq_last_avail);
	head = __atomic_load_n(&vq->vq_avail->ring[vq->vq_last_avail % qsz],
			       __ATOMIC_RELAXED);
	vq->vq_last_avail++;
	if (head >= qsz)
		return vi_error(vs, vq, "avail entry %u is past the ring (%u)",
				head, qsz);
	reqp->idx = head;
	next = head;
	/* A chain visits each ring descriptor at most once: qsz bounds it. */
	for (int steps = 1;; steps++) {
		if (steps > qsz)
			return vi_error(vs, vq, "chain %u loops", head);
		vq_read_desc((const uint8_t *)&vq->vq_desc[next], &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (vq_walk_indirect(&w, &d) < 0)
				return -1;
			break;
		}
		if (vq_add_desc(&w, &d) < 0)
			return -1;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		next = d.next;
		if (next >= qsz)
			return vi_error(vs, vq,
					"chain %u: next %u is past the ring",
					head, next);
	}
	return w.n;
}

void
vq_retchain(struct vqueue_info *vq, uint16_t n)
{
	vq->vq_last_avail -= n;
}

void
vq_relchain(struct vqueue_info *vq, uint16_t idx, uint32_t iolen)
{
	struct vring_used_elem *ue;
	uint16_t uidx = vq->vq_next_used;

	if (!vq_ring_ready(vq))
		return;
	ue = &vq->vq_used->ring[uidx % vq->vq_qsize];
	__atomic_store_n(&ue->id, idx, __ATOMIC_RELAXED);
	__atomic_store_n(&ue->len, iolen, __ATOMIC_RELAXED);
	vq->vq_next_used = ++uidx;
	/* §2.7.8.2: the element is visible before the index that covers it. */
	__atomic_store_n(&vq->vq_used->idx, uidx, __ATOMIC_RELEASE);
}

void
vq_endchains(struct vqueue_info *vq)
{
	struct virtio_softc *vs = vq->vq_vs;
	uint16_t old = vq->vq_save_used, new = vq->vq_next_used, event;
	bool intr;

	if (!vq_ring_ready(vq) || old == new)
		return;
	vq->vq_save_used = new;
	/*
	 * The used index store before the load of the driver's wishes
	 * (§2.7.7.2, §2.7.10): else both sides can miss each other's update.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vs->vs_negotiated_caps & VIRTIO_RING_F_EVENT_IDX) {
		/* used_event follows the avail ring. */
		event = __atomic_load_n(&vq->vq_avail->ring[vq->vq_qsize],
					__ATOMIC_RELAXED);
		intr = (uint16_t)(new - event - 1) < (uint16_t)(new - old);
	} else {
		intr =
		    !(__atomic_load_n(&vq->vq_avail->flags, __ATOMIC_RELAXED) &
		      VRING_AVAIL_F_NO_INTERRUPT);
	}
	if (intr)
		vi_interrupt(vs, VIRTIO_PCI_ISR_INTR, vq->vq_msix_idx);
}

/* avail_event follows the used ring. */
static uint16_t *
vq_avail_event(struct vqueue_info *vq)
{
	return (uint16_t *)&vq->vq_used->ring[vq->vq_qsize];
}

void
vq_kick_enable(struct vqueue_info *vq)
{
	if (!vq_ring_ready(vq))
		return;
	if (vq->vq_vs->vs_negotiated_caps & VIRTIO_RING_F_EVENT_IDX)
		__atomic_store_n(vq_avail_event(vq), vq->vq_last_avail,
				 __ATOMIC_RELAXED);
	else
		__atomic_store_n(&vq->vq_used->flags, 0, __ATOMIC_RELAXED);
	/* This store before the caller's next load of avail->idx. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void
vq_kick_disable(struct vqueue_info *vq)
{
	if (!vq_ring_ready(vq))
		return;
	/*
	 * With EVENT_IDX an index the driver has already passed means "no
	 * notification" (it is at most a ring ahead of us, never 64K).
	 */
	if (vq->vq_vs->vs_negotiated_caps & VIRTIO_RING_F_EVENT_IDX)
		__atomic_store_n(vq_avail_event(vq),
				 (uint16_t)(vq->vq_last_avail - 1),
				 __ATOMIC_RELAXED);
	else
		__atomic_store_n(&vq->vq_used->flags, VRING_USED_F_NO_NOTIFY,
				 __ATOMIC_RELAXED);
}
