/*
 * libFuzzer target: the AHCI controller (-s 4,ahci,hd:...,cd:...) with
 * guest memory and register writes from the fuzzer.
 *
 * Input:
 *   byte 0      flags: bit 0 start port 0 (the disk), bit 1 start port 1
 *               (the DVD), bit 2 MSI on, bit 3 read-only disk, bits 4-5
 *               extra rounds (0-3), bit 6 FIS reception off
 *   byte 1      count of register writes that follow
 *   8 bytes     each write: offset (2 bytes, into ABAR), size (1, 2, 4,
 *               8 from the low 2 bits), value (4 bytes, repeated for 8),
 *               when (0: before the commands are issued, k: in round k,
 *               after the issue and before the backend completes anything:
 *               a stop, reset or new pointer with requests in flight)
 *   12 bytes    PxSACT for port 0, then PxCI for ports 0 and 1
 *   the rest    guest memory from 0x10000 on (up to 32 KiB): command
 *               lists at 0x10000 (port 0) and 0x10400 (port 1), received
 *               FISes at 0x10800 and 0x10900, then command tables and
 *               data, wherever the headers and PRDs point
 *
 * Each run resets the HBA, starts the ports as a driver would, applies
 * the register writes for round 0, then for each round issues the
 * commands, applies that round's writes and completes what reached the
 * (fake, synchronous) backend; later rounds issue the same slots again. The
 * fake backend aborts on any buffer outside guest memory or request past the
 * disk; ASan and UBSan do the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "config.h"
#include "fake_block_if.h"
#include "machine.h"
#include "mem.h"
#include "pci_emul.h"

#define MEMSIZE (1 << 20)
#define MEM_BASE 0x10000
#define MEM_MAX 0x8000
#define SLOT 4

static struct vmctx *ctx;
static uint8_t *mem;
static uint64_t abar;
static int msi_cap;

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_ahci: %s\n", what);
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
	    pci_parse_slot(cfg, "4,ahci,hd:fake,cd:fake", err, sizeof(err)) < 0)
		die(err);
	ctx = vm_create_mock(MEMSIZE);
	if (!ctx || !machine_create(ctx, cfg) || init_pci(ctx) < 0)
		die("cannot make the VM");
	mem = vm_map_gpa(ctx, 0, MEMSIZE);
	fake_blockif_set_memory(mem, MEMSIZE);
	abar = pci_cfg_read(ctx, 0, SLOT, 0, 0x24, 4) & ~0xfULL;
	for (int c = pci_cfg_read(ctx, 0, SLOT, 0, 0x34, 1), n = 0; c && n < 48;
	     c = pci_cfg_read(ctx, 0, SLOT, 0, c + 1, 1), n++)
		if (pci_cfg_read(ctx, 0, SLOT, 0, c, 1) == 0x05)
			msi_cap = c;
	if (!msi_cap)
		die("no MSI capability");
	return 0;
}

static void
wr(uint64_t off, int size, uint64_t v)
{
	emulate_mem(ctx, NULL, abar + off, MEM_F_WRITE, size, &v);
}

static uint64_t
rd(uint64_t off)
{
	uint64_t v = 0;

	emulate_mem(ctx, NULL, abar + off, MEM_F_READ, 4, &v);
	return v;
}

static void
port_wr(int port, uint64_t reg, uint32_t v)
{
	wr(0x100 + 0x80 * (uint64_t)port + reg, 4, v);
}

static void
setup_msi(bool on)
{
	pci_cfg_write(ctx, 0, SLOT, 0, msi_cap + 4, 4, 0xfee00000);
	pci_cfg_write(ctx, 0, SLOT, 0, msi_cap + 12, 2, 0x30);
	pci_cfg_write(ctx, 0, SLOT, 0, msi_cap + 2, 2, on ? 1 : 0);
}

/* What a driver does to bring a port up. */
static void
port_start(int port, bool fre)
{
	port_wr(port, 0x00, MEM_BASE + 0x400 * port); /* PxCLB */
	port_wr(port, 0x04, 0);
	port_wr(port, 0x08, MEM_BASE + 0x800 + 0x100 * port); /* PxFB */
	port_wr(port, 0x0c, 0);
	port_wr(port, 0x14, ~0u); /* PxIE */
	port_wr(port, 0x18, fre ? 0x16 : 0x06);
	port_wr(port, 0x18, fre ? 0x17 : 0x07);
}

static void
issue(const uint8_t *ci)
{
	port_wr(0, 0x34, le32_get(ci));	    /* PxSACT */
	port_wr(0, 0x38, le32_get(ci + 4)); /* PxCI */
	port_wr(1, 0x38, le32_get(ci + 8));
}

/* The writes for round k (each write: 8 bytes, see above). */
static void
apply_writes(const uint8_t *ops, int nops, int k)
{
	for (int i = 0; i < nops; i++, ops += 8) {
		uint64_t off = le16_get(ops) & 0x1fff;
		uint64_t v = le32_get(ops + 3);

		if ((ops[7] & 3) == k)
			wr(off, 1 << (ops[2] & 3), v | v << 32);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t flags, nops, ci[12] = {0};
	const uint8_t *ops;
	size_t n;

	if (size < 2)
		return 0;
	flags = data[0];
	nops = data[1];
	data += 2;
	size -= 2;

	wr(0x04, 4, 1); /* GHC.HR: every port back to its reset state */
	fake_blockif_set_ro(flags & 8);
	setup_msi(flags & 4);
	memset(mem + MEM_BASE, 0, MEM_MAX);
	wr(0x04, 4, 2); /* GHC.IE */
	for (int p = 0; p < 2; p++)
		if (flags & (1 << p))
			port_start(p, !(flags & 0x40));

	if (nops > size / 8)
		nops = (uint8_t)(size / 8);
	ops = data;
	data += 8 * (size_t)nops;
	size -= 8 * (size_t)nops;
	n = size < sizeof(ci) ? size : sizeof(ci);
	memcpy(ci, data, n);
	data += n;
	size -= n;
	memcpy(mem + MEM_BASE, data, size < MEM_MAX ? size : MEM_MAX);

	apply_writes(ops, nops, 0);
	for (int k = 0; k <= ((flags >> 4) & 3); k++) {
		issue(ci);
		if (k)
			apply_writes(ops, nops, k);
		fake_blockif_run();
	}
	for (uint64_t off = 0; off < 0x200; off += 4)
		(void)rd(off); /* what a driver reads back */
	wr(0x08, 4, ~0u);      /* HBA IS: drops INTx */
	return 0;
}
