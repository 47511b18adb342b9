/* The virtio-blk fuzz targets' machine: see rig_virtio_blk.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fake_block_if.h"
#include "inout.h"
#include "machine.h"
#include "mem.h"
#include "pci_emul.h"
#include "rig_virtio_blk.h"
#include "virtio.h"

#define SLOT 4

uint8_t *vblk_rig_mem;
static struct vmctx *ctx;
static int iobase;
static int msix_cap;

static void
die(const char *target, const char *what)
{
	fprintf(stderr, "%s: %s\n", target, what);
	abort();
}

void
vblk_rig_init(const char *target)
{
	struct config *cfg = config_create();
	char err[256];

	if (config_set(cfg, "pci.0.0.0.device", "hostbridge", err,
		       sizeof(err)) < 0 ||
	    pci_parse_slot(cfg, "4,virtio-blk,fake", err, sizeof(err)) < 0)
		die(target, err);
	ctx = vm_create_mock(RIG_MEMSIZE);
	if (!ctx || !machine_create(ctx, cfg) || init_pci(ctx) < 0)
		die(target, "cannot make the VM");
	vblk_rig_mem = vm_map_gpa(ctx, 0, RIG_MEMSIZE);
	fake_blockif_set_memory(vblk_rig_mem, RIG_MEMSIZE);
	iobase = (int)(pci_cfg_read(ctx, 0, SLOT, 0, 0x10, 4) & ~3u);
	for (int c = pci_cfg_read(ctx, 0, SLOT, 0, 0x34, 1), n = 0; c && n < 48;
	     c = pci_cfg_read(ctx, 0, SLOT, 0, c + 1, 1), n++)
		if (pci_cfg_read(ctx, 0, SLOT, 0, c, 1) == 0x11)
			msix_cap = c;
	if (!msix_cap)
		die(target, "no MSI-X capability");
}

uint32_t
vblk_rig_io(int in, int off, int size, uint32_t v)
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

void
vblk_rig_bringup(uint8_t flags)
{
	uint32_t features = 0;

	if (flags & 1)
		features |= VIRTIO_RING_F_INDIRECT_DESC;
	if (flags & 2)
		features |= VIRTIO_RING_F_EVENT_IDX;
	setup_msix(flags & 4);
	fake_blockif_set_ro(flags & 8);
	vblk_rig_io(0, VIRTIO_PCI_STATUS, 1, 0);
	vblk_rig_io(0, VIRTIO_PCI_STATUS, 1, 3);
	vblk_rig_io(0, VIRTIO_PCI_GUEST_FEATURES, 4, features);
	vblk_rig_io(0, VIRTIO_PCI_QUEUE_SEL, 2, 0);
	memset(vblk_rig_mem + RIG_RING_GPA, 0, 0x4000);
	vblk_rig_io(0, VIRTIO_PCI_QUEUE_PFN, 4, RIG_RING_GPA >> 12);
	if (flags & 4) {
		vblk_rig_io(0, VIRTIO_MSI_CONFIG_VECTOR, 2, 0);
		vblk_rig_io(0, VIRTIO_MSI_QUEUE_VECTOR, 2, 1);
	}
	vblk_rig_io(0, VIRTIO_PCI_STATUS, 1, 7);
}

void
vblk_rig_accesses(const uint8_t **data, size_t *size, int n)
{
	for (int i = 0; i < n && *size >= 4; i++, *data += 4, *size -= 4) {
		const uint8_t *d = *data;
		int in = d[0] >> 7, off = d[0] & 63;
		int sz = (d[1] & 3) == 3 ? 4 : (d[1] & 3) + 1;
		uint32_t v = d[2] | (uint32_t)d[3] << 8;

		vblk_rig_io(in, off, sz, v | v << 16);
	}
}
