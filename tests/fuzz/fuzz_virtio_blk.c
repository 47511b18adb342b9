/*
 * libFuzzer target: virtio-blk and the virtio core with guest memory and
 * queue state from the fuzzer.
 *
 * Input:
 *   byte 0      flags: bit 0 INDIRECT_DESC, bit 1 EVENT_IDX, bit 2 MSI-X
 *               on, bit 3 read-only disk, bits 4-5 extra kicks (0-3)
 *   byte 1      count of register accesses that follow
 *   4 bytes     each access: offset (0-63), size (1, 2, 4), value (2 bytes,
 *               repeated to 4), in/out in offset's top bits
 *   the rest    guest memory from the ring (gpa 0x10000) on: descriptor
 *               table, avail ring, used ring, then buffers
 *
 * Each run resets the device, sets a ring up at 0x10000 as a driver would,
 * applies the register accesses, kicks, completes whatever reached the
 * (fake, synchronous) backend, and kicks again as asked. The fake backend
 * aborts on any buffer outside guest memory; ASan and UBSan do the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fake_block_if.h"
#include "inout.h"
#include "machine.h"
#include "mem.h"
#include "pci_emul.h"
#include "virtio.h"

#define MEMSIZE (1 << 20)
#define RING_GPA 0x10000
#define SLOT 4

static struct vmctx *ctx;
static uint8_t *mem;
static int iobase;
static int msix_cap;

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_virtio_blk: %s\n", what);
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
	    pci_parse_slot(cfg, "4,virtio-blk,fake", err, sizeof(err)) < 0)
		die(err);
	ctx = vm_create_mock(MEMSIZE);
	if (!ctx || !machine_create(ctx, cfg) || init_pci(ctx) < 0)
		die("cannot make the VM");
	mem = vm_map_gpa(ctx, 0, MEMSIZE);
	fake_blockif_set_memory(mem, MEMSIZE);
	iobase = (int)(pci_cfg_read(ctx, 0, SLOT, 0, 0x10, 4) & ~3u);
	for (int c = pci_cfg_read(ctx, 0, SLOT, 0, 0x34, 1), n = 0; c && n < 48;
	     c = pci_cfg_read(ctx, 0, SLOT, 0, c + 1, 1), n++)
		if (pci_cfg_read(ctx, 0, SLOT, 0, c, 1) == 0x11)
			msix_cap = c;
	if (!msix_cap)
		die("no MSI-X capability");
	return 0;
}

static uint32_t
io(int in, int off, int size, uint32_t v)
{
	inout_dispatch(ctx, in, iobase + off, size, &v);
	return v;
}

static void
setup_msix(bool on)
{
	uint64_t bar = pci_cfg_read(ctx, 0, SLOT, 0, 0x14, 4) & ~0xfu, v = 0;

	for (int i = 0; i < 2; i++) {
		v = 0xfee00000;
		emulate_mem(ctx, NULL, bar + 16 * i, MEM_F_WRITE, 4, &v);
		v = 0;
		emulate_mem(ctx, NULL, bar + 16 * i + 12, MEM_F_WRITE, 4, &v);
	}
	pci_cfg_write(ctx, 0, SLOT, 0, msix_cap + 2, 2, on ? 0x8000 : 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t flags, nops;
	uint32_t features = 0;
	size_t room = MEMSIZE - RING_GPA;

	if (size < 2)
		return 0;
	flags = data[0];
	nops = data[1];
	data += 2;
	size -= 2;
	if (flags & 1)
		features |= VIRTIO_RING_F_INDIRECT_DESC;
	if (flags & 2)
		features |= VIRTIO_RING_F_EVENT_IDX;
	setup_msix(flags & 4);
	fake_blockif_set_ro(flags & 8);

	/* A driver's bring-up (§3.1.1), then the guest's memory. */
	io(0, VIRTIO_PCI_STATUS, 1, 0);
	io(0, VIRTIO_PCI_STATUS, 1, 3);
	io(0, VIRTIO_PCI_GUEST_FEATURES, 4, features);
	io(0, VIRTIO_PCI_QUEUE_SEL, 2, 0);
	memset(mem + RING_GPA, 0, 0x4000);
	io(0, VIRTIO_PCI_QUEUE_PFN, 4, RING_GPA >> 12);
	if (flags & 4) {
		io(0, VIRTIO_MSI_CONFIG_VECTOR, 2, 0);
		io(0, VIRTIO_MSI_QUEUE_VECTOR, 2, 1);
	}
	io(0, VIRTIO_PCI_STATUS, 1, 7);

	for (int i = 0; i < nops && size >= 4; i++, data += 4, size -= 4) {
		int in = data[0] >> 7, off = data[0] & 63;
		int sz = (data[1] & 3) == 3 ? 4 : (data[1] & 3) + 1;
		uint32_t v = data[2] | (uint32_t)data[3] << 8;
		io(in, off, sz, v | v << 16);
	}
	memcpy(mem + RING_GPA, data, size < room ? size : room);

	for (int k = 0; k <= ((flags >> 4) & 3); k++) {
		io(0, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
		fake_blockif_run();
	}
	(void)io(1, VIRTIO_PCI_ISR, 1, 0);
	return 0;
}
