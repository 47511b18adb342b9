/*
 * libFuzzer target: the e1000 (82545EM) with guest memory, register
 * writes and received frames from the fuzzer.
 *
 * Input:
 *   byte 0      flags: bit 0 MSI on, bit 1 the I/O window for every
 *               register access, bit 2 receive with SECRC, bits 3-4 the
 *               receive buffer size (RCTL.BSIZE), bit 5 BSEX, bit 6 LPE
 *   byte 1      count of register operations that follow
 *   6 bytes     each operation: a 16-bit register index (offset / 4; bit
 *               15: deliver the queued frames instead, bit 14: a read)
 *               and a 32-bit value
 *   byte        count of frames to receive (at most 8), then each frame: a
 *               16-bit length (at most 20000) and its bytes
 *   the rest    guest memory from 0x10000 on: the transmit ring there (256
 *               descriptors), the receive ring at 0x11000, then whatever
 *               descriptors and contexts point at
 *
 * Each run resets the device, lays the memory out, points both rings at
 * it with transmit and receive on, applies the operations (TDT writes
 * send, the queued frames arrive when asked and at the end), then resets
 * again. The fake backend checks every frame it is handed lies in memory
 * it may read and has a sane length; ASan and UBSan do the rest.
 */
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

#define MEMSIZE (1 << 20)
#define MEM_GPA 0x10000
#define TXR_GPA 0x10000
#define RXR_GPA 0x11000
#define SLOT 3
#define MAX_RX 8
#define MAX_RX_LEN 20000
/* The most a segment or packet can be: 64 KiB, header and VLAN tag. */
#define MAX_TX_LEN (65536 + 256 + 4)

static struct vmctx *ctx;
static uint8_t *mem;
static uint64_t bar0;
static int iobase;
static bool use_io;

/* ---- the fake backend ---- */

static struct {
	struct net_backend *be;
	const uint8_t *q[MAX_RX];
	size_t qlen[MAX_RX];
	int qhead, qtail;
	volatile uint8_t sink;
} fz;

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_e1000: %s\n", what);
	abort();
}

static int
fz_init(struct net_backend *be, struct vmctx *c, const char *name,
	struct config *nic, char *err, size_t errlen)
{
	(void)c;
	(void)name;
	(void)nic;
	(void)err;
	(void)errlen;
	fz.be = be;
	return 0;
}

static void
fz_cleanup(struct net_backend *be)
{
	(void)be;
}

static ssize_t
fz_send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	size_t len = 0;

	(void)be;
	if (iovcnt < 1 || iovcnt > 3)
		die("a frame in an unexpected number of pieces");
	for (int i = 0; i < iovcnt; i++) {
		const uint8_t *p = iov[i].iov_base;

		/* Touch every byte: ASan checks the device's buffers. */
		for (size_t k = 0; k < iov[i].iov_len; k++)
			fz.sink ^= p[k];
		len += iov[i].iov_len;
	}
	if (len < 14 || len > MAX_TX_LEN)
		die("a frame of an impossible length");
	return (ssize_t)len;
}

static ssize_t
fz_peek(struct net_backend *be)
{
	(void)be;
	return fz.qhead < fz.qtail ? (ssize_t)fz.qlen[fz.qhead] : 0;
}

static ssize_t
fz_recv(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	size_t len, off = 0;

	(void)be;
	if (fz.qhead == fz.qtail)
		return 0;
	len = fz.qlen[fz.qhead];
	for (int i = 0; i < iovcnt && off < len; i++) {
		size_t now =
		    len - off < iov[i].iov_len ? len - off : iov[i].iov_len;

		memcpy(iov[i].iov_base, fz.q[fz.qhead] + off, now);
		off += now;
	}
	fz.qhead++;
	return (ssize_t)off;
}

static ssize_t
fz_discard(struct net_backend *be)
{
	(void)be;
	if (fz.qhead == fz.qtail)
		return 0;
	fz.qhead++;
	return 1;
}

static void
fz_rx_toggle(struct net_backend *be)
{
	(void)be;
}

static const struct net_backend_ops fuzzbe_backend = {
    .prefix = "fuzzbe",
    .init = fz_init,
    .cleanup = fz_cleanup,
    .send = fz_send,
    .peek_recvlen = fz_peek,
    .recv = fz_recv,
    .recv_discard = fz_discard,
    .rx_disable = fz_rx_toggle,
    .rx_enable = fz_rx_toggle,
};
NET_BACKEND_SET(fuzzbe_backend);

/* ---- the machine ---- */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config *cfg = config_create();
	char err[256];

	(void)argc;
	(void)argv;
	if (config_set(cfg, "pci.0.0.0.device", "hostbridge", err,
		       sizeof(err)) < 0 ||
	    pci_parse_slot(cfg, "3,e1000,fuzzbe0", err, sizeof(err)) < 0)
		die(err);
	ctx = vm_create_mock(MEMSIZE);
	if (!ctx || !machine_create(ctx, cfg) || init_pci(ctx) < 0)
		die("cannot make the VM");
	mem = vm_map_gpa(ctx, 0, MEMSIZE);
	bar0 = pci_cfg_read(ctx, 0, SLOT, 0, 0x10, 4) & ~0xfULL;
	iobase = (int)(pci_cfg_read(ctx, 0, SLOT, 0, 0x18, 4) & ~3u);
	return 0;
}

static void
wr(uint32_t off, uint32_t v)
{
	uint64_t x = v;

	if (use_io) {
		inout_dispatch(ctx, 0, iobase, 4, &off);
		inout_dispatch(ctx, 0, iobase + 4, 4, &v);
		return;
	}
	emulate_mem(ctx, NULL, bar0 + off, MEM_F_WRITE, 4, &x);
}

static uint32_t
rd(uint32_t off)
{
	uint64_t v = 0;
	uint32_t x = 0;

	if (use_io) {
		inout_dispatch(ctx, 0, iobase, 4, &off);
		inout_dispatch(ctx, 1, iobase + 4, 4, &x);
		return x;
	}
	emulate_mem(ctx, NULL, bar0 + off, MEM_F_READ, 4, &v);
	return (uint32_t)v;
}

static void
rx_deliver(void)
{
	fz.be->rx_cb(-1, fz.be->rx_arg);
	if (fz.qhead != fz.qtail)
		die("frames left waiting after the rx callback");
}

static void
msi(bool on)
{
	int cap = pci_cfg_read(ctx, 0, SLOT, 0, 0x34, 1);

	while (cap && pci_cfg_read(ctx, 0, SLOT, 0, cap, 1) != 0x05)
		cap = pci_cfg_read(ctx, 0, SLOT, 0, cap + 1, 1);
	if (!cap)
		die("no MSI capability");
	pci_cfg_write(ctx, 0, SLOT, 0, cap + 4, 4, 0xfee00000);
	pci_cfg_write(ctx, 0, SLOT, 0, cap + 2, 2, on ? 1 : 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t room = MEMSIZE - MEM_GPA, nbytes;
	const uint8_t *ops;
	uint8_t flags, nops, nrx;
	uint32_t rctl;

	if (size < 3)
		return 0;
	flags = data[0];
	nops = data[1];
	data += 2;
	size -= 2;
	ops = data;
	nbytes = (size_t)nops * 6 < size ? (size_t)nops * 6 : size - size % 6;
	data += nbytes;
	size -= nbytes;
	fz.qhead = fz.qtail = 0;
	if (size) {
		nrx = data[0] % (MAX_RX + 1);
		data++;
		size--;
		for (int i = 0; i < nrx && size >= 2; i++) {
			size_t len =
			    (size_t)(data[0] | data[1] << 8) % MAX_RX_LEN;

			data += 2;
			size -= 2;
			if (len > size)
				len = size;
			if (len == 0)
				continue;
			fz.q[fz.qtail] = data;
			fz.qlen[fz.qtail++] = len;
			data += len;
			size -= len;
		}
	}
	memset(mem + MEM_GPA, 0, room);
	memcpy(mem + MEM_GPA, data, size < room ? size : room);

	use_io = false;
	wr(0x0000, 1u << 26); /* CTRL.RST */
	msi(flags & 1);
	use_io = flags & 2;
	wr(0x3800, TXR_GPA);
	wr(0x3808, 4096);
	wr(0x2800, RXR_GPA);
	wr(0x2808, 4096);
	wr(0x2818, 255);
	wr(0x00d0, 0xffff); /* IMS */
	rctl = 0x2 | (flags & 4 ? 1u << 26 : 0) |
	       (uint32_t)((flags >> 3) & 3) << 16 |
	       (flags & 0x20 ? 1u << 25 : 0) | (flags & 0x40 ? 1u << 5 : 0);
	wr(0x0100, rctl);
	wr(0x0400, 0x2); /* TCTL.EN */
	for (size_t i = 0; i + 6 <= nbytes; i += 6) {
		uint16_t off = (uint16_t)(ops[i] | ops[i + 1] << 8);
		uint32_t v = (uint32_t)ops[i + 2] | (uint32_t)ops[i + 3] << 8 |
			     (uint32_t)ops[i + 4] << 16 |
			     (uint32_t)ops[i + 5] << 24;

		if (off & 0x8000)
			rx_deliver();
		else if (off & 0x4000)
			(void)rd((uint32_t)(off & 0x3fff) << 2);
		else
			wr((uint32_t)(off & 0x3fff) << 2, v);
	}
	rx_deliver();
	(void)rd(0x00c0); /* ICR */
	use_io = false;
	wr(0x0000, 1u << 26);
	return 0;
}
