/*
 * libFuzzer target: the NVMe controller with guest memory and register
 * writes from the fuzzer.
 *
 * Input:
 *   byte 0      flags: bit 0 MSI-X on, bit 1 the RAM namespace (slot 5)
 *               instead of the disk (slot 4), bit 2 read-only disk,
 *               bit 3 two-entry admin queues, bits 4-5 extra backend runs,
 *               bit 6 a completer thread finishes requests as they come
 *               (as block_if's workers), racing the register writes
 *   byte 1      count of register operations that follow
 *   6 bytes     each operation: a 16-bit offset into BAR 0 (bit 15: run
 *               the backend instead, bit 14: an 8-byte write, bit 13: a
 *               read) and a 32-bit value (repeated for 8 bytes)
 *   the rest    guest memory from 0x10000 on: the admin submission queue
 *               there, its completion queue at 0x11000, then whatever the
 *               commands point at
 *
 * Each run disables the controller, lays the memory out, enables it with
 * the admin queues above, applies the operations, then completes whatever
 * reached the (fake, synchronous) backend and disables it again, so the
 * next run starts from a reset controller. Runs with the completer thread
 * are not repeatable; they look for what the device's lock misses. The
 * fake backend aborts on any buffer outside guest memory or range outside
 * the disk; ASan and UBSan do the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fake_block_if.h"
#include "machine.h"
#include "mem.h"
#include "pci_emul.h"

#define MEMSIZE (1 << 20)
#define MEM_GPA 0x10000
#define ASQ_GPA 0x10000
#define ACQ_GPA 0x11000
#define CC_ENABLE (1u | 6u << 16 | 4u << 20)

static struct vmctx *ctx;
static uint8_t *mem;
static struct {
	int slot;
	uint64_t bar0;
	int msix_cap;
} devs[2] = {{4, 0, 0}, {5, 0, 0}};

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_nvme: %s\n", what);
	abort();
}

static int
find_msix(int slot)
{
	for (int c = pci_cfg_read(ctx, 0, slot, 0, 0x34, 1), n = 0; c && n < 48;
	     c = pci_cfg_read(ctx, 0, slot, 0, c + 1, 1), n++)
		if (pci_cfg_read(ctx, 0, slot, 0, c, 1) == 0x11)
			return c;
	die("no MSI-X capability");
	return 0;
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
	    pci_parse_slot(cfg, "4,nvme,fake", err, sizeof(err)) < 0 ||
	    pci_parse_slot(cfg, "5,nvme,ram=1,maxq=4,qsz=64", err,
			   sizeof(err)) < 0)
		die(err);
	ctx = vm_create_mock(MEMSIZE);
	if (!ctx || !machine_create(ctx, cfg) || init_pci(ctx) < 0)
		die("cannot make the VM");
	mem = vm_map_gpa(ctx, 0, MEMSIZE);
	fake_blockif_set_memory(mem, MEMSIZE);
	for (int i = 0; i < 2; i++) {
		int s = devs[i].slot;

		devs[i].bar0 = (pci_cfg_read(ctx, 0, s, 0, 0x10, 4) & ~0xfULL) |
			       (uint64_t)pci_cfg_read(ctx, 0, s, 0, 0x14, 4)
				   << 32;
		devs[i].msix_cap = find_msix(s);
	}
	return 0;
}

static void
wr(uint64_t bar0, uint64_t off, int size, uint64_t v)
{
	emulate_mem(ctx, NULL, bar0 + off, MEM_F_WRITE, size, &v);
}

static uint64_t
rd(uint64_t bar0, uint64_t off)
{
	uint64_t v = 0;

	emulate_mem(ctx, NULL, bar0 + off, MEM_F_READ, 4, &v);
	return v;
}

static void
setup_msix(int d, bool on)
{
	int s = devs[d].slot;
	uint64_t bar = pci_cfg_read(ctx, 0, s, 0, 0x20, 4) & ~0xfu, v;

	for (int i = 0; i < 17; i++) {
		v = 0xfee00000;
		emulate_mem(ctx, NULL, bar + 16 * i, MEM_F_WRITE, 4, &v);
		v = 0;
		emulate_mem(ctx, NULL, bar + 16 * i + 12, MEM_F_WRITE, 4, &v);
	}
	pci_cfg_write(ctx, 0, s, 0, devs[d].msix_cap + 2, 2, on ? 0x8000 : 0);
}

/* Complete everything the backend holds, then disable the controller. */
static void
quiesce(uint64_t bar0)
{
	fake_blockif_threaded(false); /* drains, then stops the thread */
	fake_blockif_run();
	wr(bar0, 0x14, 4, 0);
	fake_blockif_run();
	if (rd(bar0, 0x1c) & 1)
		die("CSTS.RDY stays set after a reset with nothing in flight");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t flags, nops;
	size_t room = MEMSIZE - MEM_GPA;
	uint64_t bar0;
	int d;

	if (size < 2)
		return 0;
	flags = data[0];
	nops = data[1];
	data += 2;
	size -= 2;
	d = (flags >> 1) & 1;
	bar0 = devs[d].bar0;
	quiesce(bar0);
	setup_msix(d, flags & 1);
	fake_blockif_set_ro(flags & 4);
	fake_blockif_threaded(flags & 0x40);

	/* Operations first (they lead the input), then the memory. */
	const uint8_t *ops = data;
	size_t nbytes =
	    (size_t)nops * 6 < size ? (size_t)nops * 6 : size - size % 6;
	data += nbytes;
	size -= nbytes;
	memset(mem + MEM_GPA, 0, room);
	memcpy(mem + MEM_GPA, data, size < room ? size : room);

	wr(bar0, 0x24, 4, flags & 8 ? 0x00010001 : 0x001f001f);
	wr(bar0, 0x28, 8, ASQ_GPA);
	wr(bar0, 0x30, 8, ACQ_GPA);
	wr(bar0, 0x14, 4, CC_ENABLE);
	for (size_t i = 0; i + 6 <= nbytes; i += 6) {
		uint16_t off = (uint16_t)(ops[i] | ops[i + 1] << 8);
		uint32_t v = (uint32_t)ops[i + 2] | (uint32_t)ops[i + 3] << 8 |
			     (uint32_t)ops[i + 4] << 16 |
			     (uint32_t)ops[i + 5] << 24;

		if (off & 0x8000)
			fake_blockif_run();
		else if (off & 0x4000)
			wr(bar0, off & 0x1ff8, 8, v | (uint64_t)v << 32);
		else if (off & 0x2000)
			(void)rd(bar0, off & 0x1fff);
		else
			wr(bar0, off & 0x1fff, 4, v);
	}
	for (int k = 0; k < ((flags >> 4) & 3); k++)
		fake_blockif_run();
	(void)rd(bar0, 0x1c);
	quiesce(bar0);
	return 0;
}
