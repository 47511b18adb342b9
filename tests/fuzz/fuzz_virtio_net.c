/*
 * libFuzzer target: virtio-net and the virtio core with the three queues,
 * the vnet header and frames from the host all from the fuzzer.
 *
 * The machine has two virtio-net functions on a fake backend defined here
 * ("fuzznet", frames in memory): 0:4.0 whose backend has no offloads (the
 * device adds and strips the header) and 0:5.0 whose backend takes the
 * header as it is (offloads).
 *
 * Input:
 *   byte 0      flags: bit 0 INDIRECT_DESC, bit 1 EVENT_IDX, bit 2 MSI-X,
 *               bit 3 MRG_RXBUF, bit 4 the function with offloads, bit 5
 *               the control queue features, bit 6 the offload features,
 *               bit 7 the driver notifies receive before frames arrive
 *   byte 1      count of register accesses (4 bytes each, as
 *               fuzz_virtio_blk's: offset, size, 2-byte value)
 *   then        for each queue (receive, transmit, control): a byte of
 *               descriptor count (at most 32), the descriptors (16 bytes
 *               each), a byte of avail entry count (at most 32), the
 *               entries (2 bytes each), then 2 bytes of avail index and 2
 *               of used_event
 *   then        a byte of frame count (at most 8), each frame 2 bytes of
 *               length (at most 9000) then its bytes, for the backend to
 *               hand over
 *   the rest    guest memory at 0x40000 on, where the seeds' buffers are
 *
 * Each run resets the device, sets the rings up at 0x10000, 0x18000 and
 * 0x20000 as a driver would, applies the register accesses and the queue
 * contents, hands the frames over through the event loop's callback, runs
 * the control queue and the transmit queue and waits for the transmit
 * thread to finish. ASan and UBSan judge; the fake backend touches every
 * byte it is given.
 */
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "inout.h"
#include "machine.h"
#include "mem.h"
#include "net_backend.h"
#include "pci_emul.h"
#include "virtio.h"

#define MEMSIZE (1 << 20)
#define BUF_GPA 0x40000
#define NQ 3
#define MAXD 32
#define MAXFRAMES 8
#define MAXFRAME 9000

static const uint64_t ring_gpa[NQ] = {0x10000, 0x18000, 0x20000};

/* ---- the fake backend ---- */

static struct {
	struct net_backend *be[2];
	const uint8_t *frame[MAXFRAMES];
	size_t len[MAXFRAMES];
	int head, n;
	volatile uint8_t sink;
} fz;

static const char *const fz_keys[] = {"fzcaps", NULL};

static int
fz_init(struct net_backend *be, struct vmctx *ctx, const char *name,
	struct config *nic, char *err, size_t errlen)
{
	(void)ctx;
	(void)name;
	(void)err;
	(void)errlen;
	fz.be[config_get(nic, "fzcaps") ? 1 : 0] = be;
	return 0;
}

static void
fz_cleanup(struct net_backend *be)
{
	(void)be;
}

static ssize_t
fz_send(struct net_backend *be, const struct iovec *iov, int n)
{
	size_t len = 0;
	uint8_t x = 0;

	(void)be;
	for (int i = 0; i < n; i++) {
		const uint8_t *p = iov[i].iov_base;

		for (size_t j = 0; j < iov[i].iov_len; j++)
			x ^= p[j];
		len += iov[i].iov_len;
	}
	fz.sink = x;
	return (ssize_t)len;
}

static ssize_t
fz_peek(struct net_backend *be)
{
	(void)be;
	return fz.head < fz.n ? (ssize_t)fz.len[fz.head] : 0;
}

static ssize_t
fz_recv(struct net_backend *be, const struct iovec *iov, int n)
{
	size_t done = 0, len;

	(void)be;
	if (fz.head >= fz.n)
		return 0;
	len = fz.len[fz.head];
	for (int i = 0; i < n && done < len; i++) {
		size_t c =
		    iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
		memcpy(iov[i].iov_base, fz.frame[fz.head] + done, c);
		done += c;
	}
	fz.head++;
	return (ssize_t)done;
}

static ssize_t
fz_discard(struct net_backend *be)
{
	(void)be;
	if (fz.head >= fz.n)
		return 0;
	fz.head++;
	return 1;
}

static void
fz_rx_toggle(struct net_backend *be)
{
	(void)be;
}

static uint64_t
fz_get_cap(struct net_backend *be)
{
	return be == fz.be[1] ? NETBE_F_OFFLOADS : 0;
}

static int
fz_set_cap(struct net_backend *be, uint64_t features, unsigned int hdr)
{
	(void)features;
	if (be != fz.be[1] && hdr)
		abort(); /* the device asked a header of one without */
	return 0;
}

static const struct net_backend_ops fuzz_backend = {
    .prefix = "fuzznet",
    .init = fz_init,
    .cleanup = fz_cleanup,
    .send = fz_send,
    .peek_recvlen = fz_peek,
    .recv = fz_recv,
    .recv_discard = fz_discard,
    .rx_disable = fz_rx_toggle,
    .rx_enable = fz_rx_toggle,
    .get_cap = fz_get_cap,
    .set_cap = fz_set_cap,
    .keys = fz_keys,
};
NET_BACKEND_SET(fuzz_backend);

/* ---- the machine ---- */

static struct vmctx *ctx;
static uint8_t *mem;
static int slot, iobase;

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_virtio_net: %s\n", what);
	abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config *cfg = config_create();
	char err[256];

	(void)argc;
	(void)argv;
	if (config_set(cfg, "pci.0.0.0.device", "hostbridge", err,
		       sizeof(err)) < 0 ||
	    pci_parse_slot(cfg, "4,virtio-net,fuzznet", err, sizeof(err)) < 0 ||
	    pci_parse_slot(cfg, "5,virtio-net,fuzznet,fzcaps=1", err,
			   sizeof(err)) < 0)
		die(err);
	ctx = vm_create_mock(MEMSIZE);
	if (!ctx || !machine_create(ctx, cfg) || init_pci(ctx) < 0)
		die("cannot make the VM");
	mem = vm_map_gpa(ctx, 0, MEMSIZE);
	return 0;
}

static uint32_t
io(int in, int off, int size, uint32_t v)
{
	inout_dispatch(ctx, in, iobase + off, size, &v);
	return v;
}

static int
cap_find(int id)
{
	for (int c = pci_cfg_read(ctx, 0, slot, 0, 0x34, 1), n = 0; c && n < 48;
	     c = pci_cfg_read(ctx, 0, slot, 0, c + 1, 1), n++)
		if ((int)pci_cfg_read(ctx, 0, slot, 0, c, 1) == id)
			return c;
	return 0;
}

static void
setup_msix(bool on)
{
	uint64_t bar = pci_cfg_read(ctx, 0, slot, 0, 0x14, 4) & ~0xfu, v;
	int cap = cap_find(0x11);

	if (!cap)
		die("no MSI-X capability");
	for (int i = 0; i < NQ + 1; i++) {
		v = 0xfee00000;
		emulate_mem(ctx, NULL, bar + 16 * i, MEM_F_WRITE, 4, &v);
		v = 0;
		emulate_mem(ctx, NULL, bar + 16 * i + 12, MEM_F_WRITE, 4, &v);
	}
	pci_cfg_write(ctx, 0, slot, 0, cap + 2, 2, on ? 0x8000 : 0);
}

static void
bringup(uint8_t flags)
{
	uint32_t f = (1u << 5) | (1u << 16); /* MAC, STATUS */

	if (flags & 1)
		f |= VIRTIO_RING_F_INDIRECT_DESC;
	if (flags & 2)
		f |= VIRTIO_RING_F_EVENT_IDX;
	if (flags & 8)
		f |= 1u << 15;
	if (flags & 0x20)
		f |= (1u << 17) | (1u << 18) | (1u << 23);
	if (flags & 0x40)
		f |= NETBE_F_OFFLOADS;
	setup_msix(flags & 4);
	io(0, VIRTIO_PCI_STATUS, 1, 0);
	io(0, VIRTIO_PCI_STATUS, 1, 3);
	io(0, VIRTIO_PCI_GUEST_FEATURES, 4, f);
	for (int q = 0; q < NQ; q++) {
		io(0, VIRTIO_PCI_QUEUE_SEL, 2, q);
		memset(mem + ring_gpa[q], 0,
		       vring_size(io(1, VIRTIO_PCI_QUEUE_NUM, 2, 0)));
		io(0, VIRTIO_PCI_QUEUE_PFN, 4, ring_gpa[q] >> 12);
		if (flags & 4)
			io(0, VIRTIO_MSI_QUEUE_VECTOR, 2, q + 1);
	}
	if (flags & 4)
		io(0, VIRTIO_MSI_CONFIG_VECTOR, 2, 0);
	io(0, VIRTIO_PCI_STATUS, 1, 7);
}

static void
accesses(const uint8_t **data, size_t *size, int n)
{
	for (int i = 0; i < n && *size >= 4; i++, *data += 4, *size -= 4) {
		const uint8_t *d = *data;
		int in = d[0] >> 7, off = d[0] & 63;
		int sz = (d[1] & 3) == 3 ? 4 : (d[1] & 3) + 1;
		uint32_t v = d[2] | (uint32_t)d[3] << 8;

		io(in, off, sz, v | v << 16);
	}
}

static bool
take(const uint8_t **data, size_t *size, void *out, size_t n)
{
	if (*size < n)
		return false;
	memcpy(out, *data, n);
	*data += n;
	*size -= n;
	return true;
}

/* One queue's descriptors and avail ring from the input. */
static void
queue_in(int q, const uint8_t **data, size_t *size)
{
	uint16_t qsz, idx, event;
	uint8_t nd = 0, na = 0;
	uint8_t *base = mem + ring_gpa[q];
	uint16_t *avail;

	io(0, VIRTIO_PCI_QUEUE_SEL, 2, q);
	qsz = (uint16_t)io(1, VIRTIO_PCI_QUEUE_NUM, 2, 0);
	if (!qsz)
		return;
	avail = (uint16_t *)(base + 16 * (size_t)qsz);
	take(data, size, &nd, 1);
	nd %= MAXD + 1;
	for (int i = 0; i < nd; i++)
		if (!take(data, size, base + 16 * i, 16))
			return;
	take(data, size, &na, 1);
	na %= MAXD + 1;
	for (int i = 0; i < na; i++)
		if (!take(data, size, &avail[2 + i], 2))
			return;
	idx = na;
	event = 0;
	take(data, size, &idx, 2);
	take(data, size, &event, 2);
	avail[2 + qsz] = event;
	__atomic_store_n(&avail[1], idx, __ATOMIC_RELEASE);
}

static void
frames_in(const uint8_t **data, size_t *size)
{
	uint8_t n = 0;

	fz.head = fz.n = 0;
	take(data, size, &n, 1);
	n %= MAXFRAMES + 1;
	for (int i = 0; i < n; i++) {
		uint16_t len;

		if (!take(data, size, &len, 2))
			return;
		len %= MAXFRAME + 1;
		if (len > *size)
			len = (uint16_t)*size;
		fz.frame[fz.n] = *data;
		fz.len[fz.n++] = len;
		*data += len;
		*size -= len;
	}
}

/*
 * Wait for the transmit thread: every chain it takes ends in the used
 * ring or stops the queue (NEEDS_RESET), so it is done when one holds.
 */
static void
tx_wait(void)
{
	uint64_t used_off = (16 * 1024 + 2 * (3 + 1024) + 4095) & ~4095ULL;
	const uint16_t *avail_idx =
	    (const uint16_t *)(mem + ring_gpa[1] + 16 * 1024 + 2);
	const uint16_t *used_idx =
	    (const uint16_t *)(mem + ring_gpa[1] + used_off + 2);

	io(0, VIRTIO_PCI_QUEUE_SEL, 2, 1);
	if (io(1, VIRTIO_PCI_QUEUE_PFN, 4, 0) != ring_gpa[1] >> 12)
		return;
	for (int i = 0; i < 100000; i++) {
		if (io(1, VIRTIO_PCI_STATUS, 1, 0) &
		    VIRTIO_CONFIG_S_NEEDS_RESET)
			return;
		if (__atomic_load_n(used_idx, __ATOMIC_ACQUIRE) ==
		    __atomic_load_n(avail_idx, __ATOMIC_ACQUIRE))
			return;
		sched_yield();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct net_backend *be;
	uint8_t flags, nops;

	if (size < 2)
		return 0;
	flags = data[0];
	nops = data[1];
	data += 2;
	size -= 2;
	slot = flags & 0x10 ? 5 : 4;
	be = fz.be[flags & 0x10 ? 1 : 0];
	iobase = (int)(pci_cfg_read(ctx, 0, slot, 0, 0x10, 4) & ~3u);
	bringup(flags);
	accesses(&data, &size, nops);
	for (int q = 0; q < NQ; q++)
		queue_in(q, &data, &size);
	frames_in(&data, &size);
	memcpy(mem + BUF_GPA, data,
	       size < MEMSIZE - BUF_GPA ? size : MEMSIZE - BUF_GPA);
	if (flags & 0x80)
		io(0, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
	be->rx_cb(-1, be->rx_arg);
	io(0, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
	be->rx_cb(-1, be->rx_arg);
	io(0, VIRTIO_PCI_QUEUE_NOTIFY, 2, 2);
	io(0, VIRTIO_PCI_QUEUE_NOTIFY, 2, 1);
	tx_wait();
	(void)io(1, VIRTIO_PCI_ISR, 1, 0);
	/* The next run's reset waits for the thread under the lock. */
	fz.n = fz.head = 0;
	return 0;
}
