/*
 * The PCI core against the mock backend: config mechanism #1 and ECAM,
 * BAR sizing and moves, decode enables, capabilities, MSI, MSI-X and INTx.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "inout.h"
#include "machine.h"
#include "mem.h"
#include "pci_emul.h"

/* A test device with one BAR of each kind, answering reads with offsets. */
struct testdev {
	uint64_t last_write_off;
	uint64_t last_write_val;
	int last_bar;
};

static int
testdev_init(struct pci_devinst *pi, struct config *node)
{
	struct testdev *t = calloc(1, sizeof(*t));

	(void)node;
	pi->pi_arg = t;
	pci_set_cfgdata16(pi, 0x00, 0x1af4);
	pci_set_cfgdata16(pi, 0x02, 0x1234);
	if (pci_emul_alloc_bar(pi, 0, PCIBAR_IO, 0x20) < 0 ||
	    pci_emul_alloc_bar(pi, 1, PCIBAR_MEM32, 0x1000) < 0 ||
	    pci_emul_alloc_bar(pi, 2, PCIBAR_MEM64, 0x100000) < 0 ||
	    pci_emul_add_msicap(pi, 4) < 0)
		return -1;
	pci_lintr_request(pi);
	return 0;
}

static uint64_t
testdev_barread(struct pci_devinst *pi, int bar, uint64_t off, int size)
{
	(void)pi;
	(void)size;
	return (uint64_t)bar << 16 | off;
}

static void
testdev_barwrite(struct pci_devinst *pi, int bar, uint64_t off, int size,
		 uint64_t val)
{
	struct testdev *t = pi->pi_arg;

	(void)size;
	t->last_bar = bar;
	t->last_write_off = off;
	t->last_write_val = val;
}

static const struct pci_devemu pci_de_testdev = {
	.pe_emu = "testdev",
	.pe_init = testdev_init,
	.pe_barread = testdev_barread,
	.pe_barwrite = testdev_barwrite,
};
PCI_EMUL_SET(pci_de_testdev);

/* A device with 4 MSI-X vectors in BAR 2 (and an INTx pin). */
static int
msixdev_init(struct pci_devinst *pi, struct config *node)
{
	(void)node;
	pci_set_cfgdata16(pi, 0x00, 0x1af4);
	pci_set_cfgdata16(pi, 0x02, 0x5678);
	if (pci_emul_add_msixcap(pi, 4, 2) < 0)
		return -1;
	pci_lintr_request(pi);
	return 0;
}

static uint64_t
msixdev_barread(struct pci_devinst *pi, int bar, uint64_t off, int size)
{
	(void)pi;
	(void)size;
	return 0xd0000000ULL | (uint64_t)bar << 16 | off;
}

static const struct pci_devemu pci_de_msixdev = {
    .pe_emu = "msixdev",
    .pe_init = msixdev_init,
    .pe_barread = msixdev_barread,
};
PCI_EMUL_SET(pci_de_msixdev);

struct fixture {
	struct vmctx *ctx;
	struct machine *m;
	struct config *cfg;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[128];

	f->cfg = config_create();
	config_set(f->cfg, "pci.0.0.0.device", "hostbridge", err, sizeof(err));
	config_set(f->cfg, "pci.0.4.0.device", "testdev", err, sizeof(err));
	config_set(f->cfg, "pci.0.5.0.device", "msixdev", err, sizeof(err));
	f->ctx = vm_create_mock(64 << 20);
	f->m = machine_create(f->ctx, f->cfg);
	assert_int_equal(init_pci(f->ctx), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	struct pci_devinst *pi = pci_find_devinst(f->ctx, 0, 4, 0);

	if (pi)
		free(pi->pi_arg);
	machine_free(f->m);
	vm_close(f->ctx);
	config_free(f->cfg);
	free(f);
	return 0;
}

static uint32_t
cf8(int slot, int func, int reg)
{
	return 0x80000000u | (slot << 11) | (func << 8) | (reg & 0xfc);
}

static uint32_t
cfg_read(struct vmctx *ctx, int slot, int reg, int bytes)
{
	uint32_t a = cf8(slot, 0, reg), v = 0;

	inout_dispatch(ctx, 0, 0xcf8, 4, &a);
	inout_dispatch(ctx, 1, 0xcfc + (reg & 3), bytes, &v);
	return v;
}

static void
cfg_write(struct vmctx *ctx, int slot, int reg, int bytes, uint32_t v)
{
	uint32_t a = cf8(slot, 0, reg);

	inout_dispatch(ctx, 0, 0xcf8, 4, &a);
	inout_dispatch(ctx, 0, 0xcfc + (reg & 3), bytes, &v);
}

static void
test_conf1_ids(void **state)
{
	struct fixture *f = *state;
	uint32_t a = 0;

	assert_int_equal(cfg_read(f->ctx, 0, 0, 4), 0x12751275);
	assert_int_equal(cfg_read(f->ctx, 0, 0x0a, 2), 0x0600);
	assert_int_equal(cfg_read(f->ctx, 4, 0, 2), 0x1af4);
	assert_int_equal(cfg_read(f->ctx, 4, 2, 2), 0x1234);
	/* Nothing in slot 7: all ones. */
	assert_int_equal(cfg_read(f->ctx, 7, 0, 4), 0xffffffff);
	/* The address latch reads back; the enable bit gates data. */
	a = cf8(4, 0, 0);
	inout_dispatch(f->ctx, 0, 0xcf8, 4, &a);
	a = 0;
	inout_dispatch(f->ctx, 1, 0xcf8, 4, &a);
	assert_int_equal(a, cf8(4, 0, 0));
	a = 0x00002000; /* enable clear */
	inout_dispatch(f->ctx, 0, 0xcf8, 4, &a);
	inout_dispatch(f->ctx, 1, 0xcfc, 4, &a);
	assert_int_equal(a, 0xffffffff);
}

static void
test_ecam(void **state)
{
	struct fixture *f = *state;
	uint64_t v = 0;
	uint64_t base = PCI_EMUL_ECFG_BASE + (4 << 15);

	assert_int_equal(emulate_mem(f->ctx, NULL, base, MEM_F_READ, 4, &v), 0);
	assert_int_equal(v, 0x12341af4);
	/* A bad size reads all ones rather than crash. */
	assert_int_equal(emulate_mem(f->ctx, NULL, base, MEM_F_READ, 8, &v), 0);
	assert_true(v == ~0ULL);
}

static void
test_bar_sizing(void **state)
{
	struct fixture *f = *state;
	uint32_t io = cfg_read(f->ctx, 4, 0x10, 4);

	assert_int_equal(io & 1, 1);
	cfg_write(f->ctx, 4, 0x10, 4, 0xffffffff);
	assert_int_equal(cfg_read(f->ctx, 4, 0x10, 4), 0xffffffe1);
	cfg_write(f->ctx, 4, 0x10, 4, io);
	assert_int_equal(cfg_read(f->ctx, 4, 0x10, 4), io);

	cfg_write(f->ctx, 4, 0x14, 4, 0xffffffff);
	assert_int_equal(cfg_read(f->ctx, 4, 0x14, 4), 0xfffff000);

	/* 64-bit: low half flags 64-bit prefetchable, high half all ones. */
	uint32_t lo = cfg_read(f->ctx, 4, 0x18, 4);
	uint32_t hi = cfg_read(f->ctx, 4, 0x1c, 4);
	assert_int_equal(lo & 0xf, 0xc);
	assert_true(hi != 0);
	cfg_write(f->ctx, 4, 0x18, 4, 0xffffffff);
	cfg_write(f->ctx, 4, 0x1c, 4, 0xffffffff);
	assert_int_equal(cfg_read(f->ctx, 4, 0x18, 4), 0xfff0000c);
	assert_int_equal(cfg_read(f->ctx, 4, 0x1c, 4), 0xffffffff);
}

static void
test_bar_io_dispatch_and_move(void **state)
{
	struct fixture *f = *state;
	struct pci_devinst *pi = pci_find_devinst(f->ctx, 0, 4, 0);
	struct testdev *t = pi->pi_arg;
	uint32_t io = cfg_read(f->ctx, 4, 0x10, 4) & ~3u, v = 0;

	assert_int_equal(inout_dispatch(f->ctx, 1, io + 4, 2, &v), 0);
	assert_int_equal(v, 4);
	v = 0xab;
	inout_dispatch(f->ctx, 0, io + 3, 1, &v);
	assert_int_equal(t->last_write_off, 3);
	assert_int_equal(t->last_write_val, 0xab);
	/* Move it: the old ports go quiet, the new ones answer. */
	cfg_write(f->ctx, 4, 0x10, 4, 0x6000);
	assert_int_equal(inout_dispatch(f->ctx, 1, io + 4, 2, &v), -1);
	assert_int_equal(inout_dispatch(f->ctx, 1, 0x6004, 2, &v), 0);
	assert_int_equal(v, 4);
	/* Port decode off: nothing answers. */
	uint16_t cmd = cfg_read(f->ctx, 4, 4, 2);
	cfg_write(f->ctx, 4, 4, 2, cmd & ~1u);
	assert_int_equal(inout_dispatch(f->ctx, 1, 0x6004, 2, &v), -1);
	cfg_write(f->ctx, 4, 4, 2, cmd);
	assert_int_equal(inout_dispatch(f->ctx, 1, 0x6004, 2, &v), 0);
}

static void
test_bar_mem_dispatch(void **state)
{
	struct fixture *f = *state;
	uint64_t base = cfg_read(f->ctx, 4, 0x14, 4) & ~0xfu, v = 0;

	assert_true(base >= PCI_EMUL_MEMBASE32 && base < PCI_EMUL_ECFG_BASE);
	assert_int_equal(emulate_mem(f->ctx, NULL, base + 0x10, MEM_F_READ, 4,
				     &v),
			 0);
	assert_int_equal(v, (1 << 16) | 0x10);
	uint64_t b64 = (cfg_read(f->ctx, 4, 0x18, 4) & ~0xfu) |
		       (uint64_t)cfg_read(f->ctx, 4, 0x1c, 4) << 32;
	assert_true(b64 >= PCI_EMUL_MEMBASE64);
	assert_int_equal(emulate_mem(f->ctx, NULL, b64 + 8, MEM_F_READ, 8, &v),
			 0);
	assert_int_equal(v, (2 << 16) | 8);
}

static void
test_capabilities_and_msi(void **state)
{
	struct fixture *f = *state;
	struct pci_devinst *pi = pci_find_devinst(f->ctx, 0, 4, 0);
	uint64_t addr, msg;

	assert_true(cfg_read(f->ctx, 4, 6, 2) & 0x10); /* cap list */
	int cap = cfg_read(f->ctx, 4, 0x34, 1);
	assert_int_equal(cfg_read(f->ctx, 4, cap, 1), 0x05);
	assert_int_equal(cfg_read(f->ctx, 4, cap + 1, 1), 0);
	/* Not enabled: no MSI goes out. */
	pci_generate_msi(pi, 0);
	assert_int_equal(vm_mock_msi_count(f->ctx, NULL, NULL), 0);
	cfg_write(f->ctx, 4, cap + 4, 4, 0xfee00000);
	cfg_write(f->ctx, 4, cap + 8, 4, 0);
	cfg_write(f->ctx, 4, cap + 12, 2, 0x41);
	/* Enable with 4 vectors (MME=2); MMC is read-only. */
	cfg_write(f->ctx, 4, cap + 2, 2, 0x0025 | 0x000e);
	assert_int_equal(cfg_read(f->ctx, 4, cap + 2, 2) & 0xe, 0x4);
	pci_generate_msi(pi, 3);
	assert_int_equal(vm_mock_msi_count(f->ctx, &addr, &msg), 1);
	assert_int_equal(addr, 0xfee00000);
	assert_int_equal(msg, 0x44);
	pci_generate_msi(pi, 4); /* beyond what was enabled */
	assert_int_equal(vm_mock_msi_count(f->ctx, NULL, NULL), 1);
}

static void
test_intx(void **state)
{
	struct fixture *f = *state;
	struct pci_devinst *pi = pci_find_devinst(f->ctx, 0, 4, 0);
	int irq = cfg_read(f->ctx, 4, 0x3c, 1);

	assert_int_equal(cfg_read(f->ctx, 4, 0x3d, 1), 1);
	assert_true(irq >= 16 && irq < 24);
	pci_lintr_assert(pi);
	assert_int_equal(vm_mock_irq_level(f->ctx, irq), 1);
	assert_true(cfg_read(f->ctx, 4, 6, 2) & 0x8);
	/* INTx disable masks it. */
	uint16_t cmd = cfg_read(f->ctx, 4, 4, 2);
	cfg_write(f->ctx, 4, 4, 2, cmd | 0x400);
	assert_int_equal(vm_mock_irq_level(f->ctx, irq), 0);
	cfg_write(f->ctx, 4, 4, 2, cmd);
	assert_int_equal(vm_mock_irq_level(f->ctx, irq), 1);
	pci_lintr_deassert(pi);
	assert_int_equal(vm_mock_irq_level(f->ctx, irq), 0);
}

static void
test_hostile_accesses(void **state)
{
	struct fixture *f = *state;
	uint32_t v;

	/* Unaligned, read-only and out-of-range accesses stay harmless. */
	cfg_write(f->ctx, 4, 0x00, 4, 0xdeadbeef);
	assert_int_equal(cfg_read(f->ctx, 4, 0, 2), 0x1af4);
	cfg_write(f->ctx, 4, 0x12, 2, 0xffff); /* half a BAR */
	v = pci_cfg_read(f->ctx, 0, 4, 0, 0xffe, 4);
	assert_int_equal(v, 0xffffffff);
	v = pci_cfg_read(f->ctx, 0, 4, 0, 0x1000, 1);
	assert_int_equal(v, 0xff);
	pci_cfg_write(f->ctx, 0, 4, 0, 4094, 4, 0);
	pci_cfg_write(f->ctx, 255, 31, 7, 0, 4, 0);
	assert_int_equal(pci_cfg_read(f->ctx, 255, 31, 7, 0, 4), 0xffffffff);
}

/*
 * A guest that moves an I/O BAR over and over (each move unregisters and
 * registers its ports) must not use up the port table's handler entries:
 * the device keeps answering at its latest address and nowhere else.
 */
static void
test_io_bar_moves(void **state)
{
	struct fixture *f = *state;
	uint32_t v = 0, cmd = cfg_read(f->ctx, 4, 0x04, 2);
	const uint32_t last = 0x3000 + 63 * 0x20;

	cfg_write(f->ctx, 4, 0x04, 2, cmd | 1); /* I/O decoding on */
	for (int i = 0; i < 5000; i++)
		cfg_write(f->ctx, 4, 0x10, 4, 0x3000 + (i % 64) * 0x20);
	cfg_write(f->ctx, 4, 0x10, 4, last);
	assert_int_equal(inout_dispatch(f->ctx, 1, last + 4, 2, &v), 0);
	assert_int_equal(v, 4); /* BAR 0, offset 4 */
	assert_int_equal(inout_dispatch(f->ctx, 1, 0x3000, 2, &v), -1);
	assert_null(inout_owner(f->ctx, last - 1));
	assert_non_null(inout_owner(f->ctx, last + 0x1f));
	assert_null(inout_owner(f->ctx, last + 0x20));
}

/*
 * A guest moving a BAR onto the config ports 10,000 times gets a line a
 * second on stderr, not 10,000; the device still follows each move.
 */
static void
test_overlap_warnings_limited(void **state)
{
	struct fixture *f = *state;
	char path[] = "/tmp/test_pci.XXXXXX", line[256];
	int fd = mkstemp(path), saved = dup(2), lines = 0;
	uint32_t v = 0, cmd = cfg_read(f->ctx, 4, 0x04, 2);
	time_t t0 = time(NULL), secs;
	FILE *fp;

	assert_true(fd >= 0 && saved >= 0);
	cfg_write(f->ctx, 4, 0x04, 2, cmd | 1); /* I/O decoding on */
	fflush(stderr);
	dup2(fd, 2);
	for (int i = 0; i < 10000; i++) {
		cfg_write(f->ctx, 4, 0x10, 4, 0xce0); /* over 0xcf8-0xcff */
		cfg_write(f->ctx, 4, 0x10, 4, 0x6000);
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	secs = time(NULL) - t0;
	fp = fopen(path, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		assert_non_null(strstr(line, "overlaps another device"));
		if (lines++)
			assert_non_null(strstr(line, "more like it not shown"));
	}
	fclose(fp);
	unlink(path);
	assert_true(lines >= 1);
	assert_true(lines <= secs + 2);
	assert_int_equal(inout_dispatch(f->ctx, 1, 0x6004, 2, &v), 0);
	assert_int_equal(v, 4);
}

/* The first capability with this ID in slot's list, or 0. */
static int
find_cap(struct vmctx *ctx, int slot, int id)
{
	int n = 0;

	for (int c = cfg_read(ctx, slot, 0x34, 1); c && n < 48;
	     c = cfg_read(ctx, slot, c + 1, 1), n++)
		if ((int)cfg_read(ctx, slot, c, 1) == id)
			return c;
	return 0;
}

static uint64_t
msix_bar(struct fixture *f)
{
	return cfg_read(f->ctx, 5, 0x18, 4) & ~0xfu;
}

static uint64_t
mmio_read(struct fixture *f, uint64_t addr, int size)
{
	uint64_t v = 0xdead;

	assert_int_equal(emulate_mem(f->ctx, NULL, addr, MEM_F_READ, size, &v),
			 0);
	return v;
}

static void
mmio_write(struct fixture *f, uint64_t addr, int size, uint64_t v)
{
	assert_int_equal(emulate_mem(f->ctx, NULL, addr, MEM_F_WRITE, size, &v),
			 0);
}

/* Enable MSI-X and memory decode; program vector i to data 0x40 + i. */
/*
 * A BAR moved onto another device's ports or memory does not get them; moved
 * on, it leaves them to that device (it used to free them: a guest could
 * take the config ports or another device's BAR away).
 */
static void
test_overlap_leaves_owner(void **state)
{
	struct fixture *f = *state;
	uint32_t cmd = cfg_read(f->ctx, 4, 0x04, 2);
	uint64_t mine = cfg_read(f->ctx, 4, 0x14, 4) & ~0xfu;
	uint64_t theirs = msix_bar(f);
	const char *conf1 = inout_owner(f->ctx, 0xcf8);

	assert_non_null(conf1);
	cfg_write(f->ctx, 4, 0x04, 2, cmd | 3); /* I/O and memory on */
	cfg_write(f->ctx, 4, 0x10, 4, 0xce0);	/* over 0xcf8-0xcff */
	cfg_write(f->ctx, 4, 0x10, 4, 0x6000);
	assert_ptr_equal(inout_owner(f->ctx, 0xcf8), conf1);
	assert_int_equal(cfg_read(f->ctx, 5, 0x02, 2), 0x5678);
	/* The same for memory: a 4 KiB BAR onto msixdev's 4 KiB BAR. */
	assert_int_equal(mmio_read(f, theirs + 0x1000 - 4, 4) >> 16, 0xd002);
	cfg_write(f->ctx, 4, 0x14, 4, (uint32_t)theirs);
	cfg_write(f->ctx, 4, 0x14, 4, (uint32_t)mine);
	assert_int_equal(mmio_read(f, theirs + 0x1000 - 4, 4) >> 16, 0xd002);
	assert_int_equal(mmio_read(f, mine + 0x10, 4), (1 << 16) | 0x10);
}

static void
msix_setup(struct fixture *f, int cap)
{
	uint64_t bar = msix_bar(f);

	cfg_write(f->ctx, 5, 4, 2, cfg_read(f->ctx, 5, 4, 2) | 0x2);
	for (int i = 0; i < 4; i++) {
		mmio_write(f, bar + 16 * i, 4, 0xfee00000 | (i << 12));
		mmio_write(f, bar + 16 * i + 4, 4, 0);
		mmio_write(f, bar + 16 * i + 8, 4, 0x40 + i);
	}
	cfg_write(f->ctx, 5, cap + 2, 2, 0x8000);
}

static void
test_msix_capability(void **state)
{
	struct fixture *f = *state;
	int cap = find_cap(f->ctx, 5, 0x11);

	assert_true(cap >= 0x40);
	/* Table size N - 1, disabled, unmasked. */
	assert_int_equal(cfg_read(f->ctx, 5, cap + 2, 2), 3);
	/* Table at offset 0 of BAR 2, PBA on the next page. */
	assert_int_equal(cfg_read(f->ctx, 5, cap + 4, 4), 2);
	assert_int_equal(cfg_read(f->ctx, 5, cap + 8, 4), 0x1000 | 2);
	/* The table size is read-only; enable and function mask are not. */
	cfg_write(f->ctx, 5, cap + 2, 2, 0xc000 | 0x7ff);
	assert_int_equal(cfg_read(f->ctx, 5, cap + 2, 2), 0xc003);
	cfg_write(f->ctx, 5, cap + 3, 1, 0x00);
	assert_int_equal(cfg_read(f->ctx, 5, cap + 2, 2), 0x0003);
	cfg_write(f->ctx, 5, cap + 4, 4, 0x12340000);
	assert_int_equal(cfg_read(f->ctx, 5, cap + 4, 4), 2);
	/* The BAR is 32-bit memory, at least the table and PBA pages. */
	cfg_write(f->ctx, 5, 0x18, 4, 0xffffffff);
	assert_int_equal(cfg_read(f->ctx, 5, 0x18, 4) & 0xffffe00f, 0xffffe000);
}

static void
test_msix_delivery_and_masks(void **state)
{
	struct fixture *f = *state;
	struct pci_devinst *pi = pci_find_devinst(f->ctx, 0, 5, 0);
	int cap = find_cap(f->ctx, 5, 0x11);
	uint64_t bar, addr, msg;

	/* Disabled: nothing goes out and nothing is pending. */
	pci_generate_msix(pi, 1);
	assert_int_equal(vm_mock_msi_count(f->ctx, NULL, NULL), 0);
	msix_setup(f, cap);
	assert_true(pci_msix_enabled(pi));
	bar = msix_bar(f);
	/* Vectors start masked: the event waits in the PBA. */
	assert_int_equal(mmio_read(f, bar + 12, 4), 1);
	pci_generate_msix(pi, 1);
	assert_int_equal(vm_mock_msi_count(f->ctx, NULL, NULL), 0);
	assert_int_equal(mmio_read(f, bar + 0x1000, 8), 0x2);
	assert_int_equal(mmio_read(f, bar + 0x1000, 4), 0x2);
	/* Unmasking vector 1 sends it and clears the pending bit. */
	mmio_write(f, bar + 16 + 12, 4, 0);
	assert_int_equal(vm_mock_msi_count(f->ctx, &addr, &msg), 1);
	assert_int_equal(addr, 0xfee01000);
	assert_int_equal(msg, 0x41);
	assert_int_equal(mmio_read(f, bar + 0x1000, 8), 0);
	/* Unmasked: straight out. */
	pci_generate_msix(pi, 1);
	assert_int_equal(vm_mock_msi_count(f->ctx, NULL, NULL), 2);
	/* The function mask holds every vector; clearing it sends them. */
	cfg_write(f->ctx, 5, cap + 2, 2, 0xc000);
	pci_generate_msix(pi, 1);
	assert_int_equal(vm_mock_msi_count(f->ctx, NULL, NULL), 2);
	assert_int_equal(mmio_read(f, bar + 0x1000, 8), 0x2);
	cfg_write(f->ctx, 5, cap + 2, 2, 0x8000);
	assert_int_equal(vm_mock_msi_count(f->ctx, NULL, NULL), 3);
	assert_int_equal(mmio_read(f, bar + 0x1000, 8), 0);
	/* A 64-bit write of data and control at once. */
	mmio_write(f, bar + 48 + 8, 8, 0x0000000000000077ULL);
	pci_generate_msix(pi, 3);
	assert_int_equal(vm_mock_msi_count(f->ctx, &addr, &msg), 4);
	assert_int_equal(msg, 0x77);
	assert_int_equal(mmio_read(f, bar + 48, 8), 0xfee03000);
	/* Out-of-range vectors are ignored. */
	pci_generate_msix(pi, 4);
	pci_generate_msix(pi, -1);
	assert_int_equal(vm_mock_msi_count(f->ctx, NULL, NULL), 4);
	/* Disabling MSI-X drops events (no pending bits). */
	cfg_write(f->ctx, 5, cap + 2, 2, 0);
	pci_generate_msix(pi, 1);
	assert_int_equal(mmio_read(f, bar + 0x1000, 8), 0);
	assert_int_equal(vm_mock_msi_count(f->ctx, NULL, NULL), 4);
}

static void
test_msix_hostile_accesses(void **state)
{
	struct fixture *f = *state;
	int cap = find_cap(f->ctx, 5, 0x11);
	uint64_t bar;

	msix_setup(f, cap);
	bar = msix_bar(f);
	/* Byte, word and unaligned accesses read zero and change nothing. */
	assert_int_equal(mmio_read(f, bar + 8, 1), 0);
	assert_int_equal(mmio_read(f, bar + 8, 2), 0);
	assert_int_equal(mmio_read(f, bar + 6, 4), 0);
	mmio_write(f, bar + 8, 1, 0xff);
	mmio_write(f, bar + 10, 4, 0xffffffff);
	assert_int_equal(mmio_read(f, bar + 8, 4), 0x40);
	/* Reserved vector control bits stay zero; the PBA is read-only. */
	mmio_write(f, bar + 12, 4, 0xfffffffe);
	assert_int_equal(mmio_read(f, bar + 12, 4), 0);
	mmio_write(f, bar + 0x1000, 8, ~0ULL);
	assert_int_equal(mmio_read(f, bar + 0x1000, 8), 0);
	/* Past the table and the PBA: the device's own registers. */
	assert_int_equal(mmio_read(f, bar + 0x800, 4), 0xd0020800);
	assert_int_equal(mmio_read(f, bar + 0x1008, 4), 0xd0021008);
}

static void
test_msix_no_intx(void **state)
{
	struct fixture *f = *state;
	struct pci_devinst *pi = pci_find_devinst(f->ctx, 0, 5, 0);
	int cap = find_cap(f->ctx, 5, 0x11);
	int irq = cfg_read(f->ctx, 5, 0x3c, 1);

	pci_lintr_assert(pi);
	assert_int_equal(vm_mock_irq_level(f->ctx, irq), 1);
	/* Enabling MSI-X drops the line; INTx stays quiet while it is on. */
	msix_setup(f, cap);
	assert_int_equal(vm_mock_irq_level(f->ctx, irq), 0);
	pci_lintr_assert(pi);
	assert_int_equal(vm_mock_irq_level(f->ctx, irq), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_io_bar_moves, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_conf1_ids, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ecam, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bar_sizing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bar_io_dispatch_and_move,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bar_mem_dispatch, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_capabilities_and_msi, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_intx, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_accesses, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_msix_capability, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_msix_delivery_and_masks, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_msix_hostile_accesses, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_msix_no_intx, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_overlap_warnings_limited,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_overlap_leaves_owner, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
