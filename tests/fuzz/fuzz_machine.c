/*
 * libFuzzer target: the whole machine's port and MMIO surface, as a guest
 * sees it. Each run builds a mock VM as bhyverun does (config, machine,
 * event loop, every sysdev) with hostbridge at 0:0.0, virtio-blk (fake
 * backend, MSI-X) at 0:4.0, virtio-rnd at 0:5.0 and the LPC bridge at
 * 0:31.0 with com1, com2, fw_cfg (QEMU's, DMA on), pc-testdev and
 * milestone; HPET, RTC, PM, the keyboard controller, pvpanic and POST are
 * there as sysdevs. The PICs and PIT are KVM's (in the kernel): their
 * ports reach the unclaimed-port path here. It tears everything down
 * after each run.
 *
 * Input: a sequence of 8-byte operations
 *   byte 0      bits 0-2 kind, bit 3 read (else write), bits 4-5 size
 *               (1, 2, 4, 8 bytes; ports take at most 4)
 *   byte 1      sel: which port, region or device (per kind)
 *   bytes 2-3   addr (little-endian)
 *   bytes 4-7   value (little-endian)
 * kinds
 *   0, 7        port I/O: sel < NPORTS picks a device's port (+ addr & 7),
 *               sel 0xf0-0xff a virtio BAR 0 (+ addr & 63), else port addr
 *   1           MMIO: sel & 7 picks HPET, ECAM (bus 0-1: offset
 *               (sel >> 3) << 16 | addr), pc-testdev's iomem, or a memory
 *               BAR of 0:4.0 or 0:5.0 (BAR (sel >> 3) % 6) where it now is
 *   2           config mechanism #1: 0xcf8 gets bus (sel >> 5), slot
 *               (sel & 31), function (addr >> 12 & 7) and register
 *               (addr & 0xfff, bits 8-11 in 0xcf8's 24-27), then 0xcfc+
 *   3           guest memory: value stored at (sel << 16 | addr)
 *   4           fw_cfg DMA: a descriptor at 0x1000 (control = value,
 *               length = addr, buffer 0x2000 + sel * 256, or past the end
 *               of memory when sel is 0xff), its address written to 0x514
 *   5           complete the block requests the fake backend holds
 *   6           capability control: the capability of ID (addr & 0xff)
 *               of 0:4.0 (sel even) or 0:5.0, found by walking the list
 *               as a driver does, gets value at +2 (MSI-X 0x11: enable
 *               0x8000, function mask 0x4000; MSI 0x05: enable 1)
 */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fake_block_if.h"
#include "hpet.h"
#include "inout.h"
#include "machine.h"
#include "mem.h"
#include "mevent.h"
#include "pci_emul.h"
#include "pci_lpc.h"
#include "pm.h"
#include "rtc.h"

#define MEMSIZE (2 << 20)
#define DMA_DESC 0x1000
#define DMA_BUF 0x2000
#define MAX_OPS 512

/* Ports with a device behind them: kind 0's sel < NPORTS, + (addr & 7). */
static const uint16_t ports[] = {
    0x20,	0x21,		0xa0,	       0xa1,	     0x4d0,
    0x40,	0x43,		0x61,	       0x60,	     0x64,
    0x92,	RTC_PORT_INDEX, RTC_PORT_DATA, 0x80,	     0x3f8,
    0x2f8,	0x510,		0x511,	       0x514,	     0x518,
    0x505,	0xe0,		0xe9,	       0xf4,	     0xcf8,
    0xcfc,	PM_RESET_PORT,	PM_SMI_CMD,    PM1A_EVT_BLK, PM1A_CNT_BLK,
    PM_TMR_BLK, 0x2000,
};
#define NPORTS (sizeof(ports) / sizeof(ports[0]))

static struct config *cfg;

static void
die(const char *what, const char *err)
{
	fprintf(stderr, "fuzz_machine: %s%s%s\n", what, err ? ": " : "",
		err ? err : "");
	abort();
}

static void
set(const char *k, const char *v)
{
	char err[256];

	if (config_set(cfg, k, v, err, sizeof(err)) < 0)
		die(k, err);
}

static void
slot(const char *opt)
{
	char err[256];

	if (pci_parse_slot(cfg, opt, err, sizeof(err)) < 0)
		die(opt, err);
}

static void
lpc(const char *opt)
{
	char err[256];

	if (lpc_parse(cfg, opt, err, sizeof(err)) < 0)
		die(opt, err);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cfg = config_create();
	set("pci.0.0.0.device", "hostbridge");
	slot("4,virtio-blk,fake");
	slot("5,virtio-rnd");
	slot("31,lpc");
	lpc("com1");
	lpc("com2");
	lpc("fwcfg,qemu");
	lpc("pc-testdev");
	lpc("milestone,path=/dev/null");
	set("fwcfg.files.0.name", "opt/fuzz");
	set("fwcfg.files.0.string", "hello fuzzer");
	return 0;
}

/* Where BAR n of 0:s.0 is now (the guest may have moved it). */
static uint64_t
bar_base(struct vmctx *ctx, int s, int n)
{
	uint32_t lo = pci_cfg_read(ctx, 0, s, 0, 0x10 + 4 * n, 4);

	if (lo & 1)
		return lo & ~3u;
	if ((lo & 6) == 4 && n < 5)
		return (uint64_t)pci_cfg_read(ctx, 0, s, 0, 0x14 + 4 * n, 4)
			   << 32 |
		       (lo & ~0xfu);
	return lo & ~0xfu;
}

static void
port_op(struct vmctx *ctx, int in, int port, int size, uint32_t v)
{
	if (size > 4)
		size = 4;
	(void)inout_dispatch(ctx, in, port & 0xffff, size, &v);
}

static void
port_kind(struct vmctx *ctx, int in, int sel, int addr, int size, uint32_t v)
{
	int port = addr;

	if ((unsigned)sel < NPORTS)
		port = ports[sel] + (addr & 7);
	else if (sel >= 0xf0)
		port = (int)bar_base(ctx, sel & 1 ? 5 : 4, 0) + (addr & 63);
	port_op(ctx, in, port, size, v);
}

static void
mmio_kind(struct vmctx *ctx, int in, int sel, int addr, int size, uint64_t v)
{
	uint64_t gpa;

	switch (sel & 7) {
	case 0:
		gpa = HPET_BASE + (addr & 0x3ff);
		break;
	case 1:
		gpa = PCI_EMUL_ECFG_BASE + ((uint64_t)(sel >> 3) << 16 | addr);
		break;
	case 2:
		gpa = 0xff000000ULL + addr;
		break;
	default:
		gpa = bar_base(ctx, sel & 1 ? 5 : 4, (sel >> 3) % 6) + addr;
		break;
	}
	(void)emulate_mem(ctx, NULL, gpa, in ? MEM_F_READ : MEM_F_WRITE, size,
			  &v);
}

static void
conf1_kind(struct vmctx *ctx, int in, int sel, int addr, int size, uint32_t v)
{
	uint32_t a = 0x80000000u | (uint32_t)(sel >> 5) << 16 |
		     (uint32_t)(sel & 31) << 11 |
		     (uint32_t)(addr >> 12 & 7) << 8 | (addr & 0xfc) |
		     (uint32_t)(addr >> 8 & 0xf) << 24;

	port_op(ctx, 0, 0xcf8, 4, a);
	port_op(ctx, in, 0xcfc + (addr & 3), size, v);
}

static void
dma_kind(struct vmctx *ctx, uint8_t *mem, int sel, int addr, uint32_t v)
{
	uint64_t buf = sel == 0xff ? MEMSIZE - 8 + ((uint64_t)v << 32)
				   : DMA_BUF + (uint64_t)sel * 256;
	uint32_t be;

	be = htobe32(v);
	memcpy(mem + DMA_DESC, &be, 4);
	be = htobe32((uint32_t)addr);
	memcpy(mem + DMA_DESC + 4, &be, 4);
	buf = htobe64(buf);
	memcpy(mem + DMA_DESC + 8, &buf, 8);
	port_op(ctx, 0, 0x514, 4, 0);
	port_op(ctx, 0, 0x518, 4, htobe32(DMA_DESC));
}

static void
cap_kind(struct vmctx *ctx, int sel, int addr, uint32_t v)
{
	int s = sel & 1 ? 5 : 4, n = 0;

	for (int c = pci_cfg_read(ctx, 0, s, 0, 0x34, 1); c && n < 48;
	     c = pci_cfg_read(ctx, 0, s, 0, c + 1, 1), n++)
		if (pci_cfg_read(ctx, 0, s, 0, c, 1) ==
		    (uint32_t)(addr & 0xff)) {
			pci_cfg_write(ctx, 0, s, 0, c + 2, 2, v & 0xffff);
			return;
		}
}

static void
run_op(struct vmctx *ctx, uint8_t *mem, const uint8_t *d)
{
	int kind = d[0] & 7, in = d[0] >> 3 & 1, size = 1 << (d[0] >> 4 & 3);
	int sel = d[1], addr = d[2] | d[3] << 8;
	uint32_t v = d[4] | d[5] << 8 | d[6] << 16 | (uint32_t)d[7] << 24;
	uint64_t off;

	switch (kind) {
	case 1:
		mmio_kind(ctx, in, sel, addr, size, (uint64_t)v << 32 | v);
		break;
	case 2:
		conf1_kind(ctx, in, sel, addr, size, v);
		break;
	case 3:
		off = ((uint64_t)sel << 16 | addr) % (MEMSIZE - 4);
		memcpy(mem + off, &v, 4);
		break;
	case 4:
		dma_kind(ctx, mem, sel, addr, v);
		break;
	case 5:
		fake_blockif_run();
		break;
	case 6:
		cap_kind(ctx, sel, addr, v);
		break;
	default:
		port_kind(ctx, in, sel, addr, size, v);
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmctx *ctx = vm_create_mock(MEMSIZE);
	struct machine *m;
	uint8_t *mem;

	if (!ctx)
		die("cannot make the VM", NULL);
	m = machine_create(ctx, cfg);
	if (!m || !(m->mev = mevent_create()) || sysdev_init_all(ctx) < 0)
		die("cannot bring the machine up", NULL);
	mem = vm_map_gpa(ctx, 0, MEMSIZE);
	fake_blockif_set_memory(mem, MEMSIZE);
	for (int n = 0; size >= 8 && n < MAX_OPS; n++, data += 8, size -= 8)
		run_op(ctx, mem, data);
	fake_blockif_run();
	machine_free(m);
	vm_close(ctx);
	return 0;
}
