/*
 * pc-testdev, as bhyve's pctestdev.c offers it to kvm-unit-tests
 * (-l pc-testdev, lpc.pc-testdev=true):
 *
 *   0xf4-0xf7       isa-debug-exit: a write of v exits with (v << 1) | 1
 *   0xe0-0xe3       a 32-bit scratch register, any access size
 *   0x2000-0x2017   IRQ lines, one port per IOAPIC pin: a byte write of
 *                   non-zero asserts the line, zero deasserts it
 *   0xff000000      64 KiB of scratch memory behind MMIO exits
 *
 * Accesses that run off a range read as all ones and are dropped.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inout.h"
#include "machine.h"
#include "mem.h"
#include "pci_emul.h"

#define TESTDEV_EXIT 0xf4
#define TESTDEV_EXIT_LEN 4
#define TESTDEV_IOPORT 0xe0
#define TESTDEV_IOPORT_LEN 4
#define TESTDEV_IRQ 0x2000
#define TESTDEV_IRQ_PINS 24 /* KVM's IOAPIC */
_Static_assert(TESTDEV_IRQ + TESTDEV_IRQ_PINS <= PCI_EMUL_IOBASE,
	       "PCI I/O BARs start above the IRQ ports");
#define TESTDEV_IOMEM 0xff000000ULL
#define TESTDEV_IOMEM_LEN 0x10000

struct pctestdev {
	pthread_mutex_t lock;
	struct vmctx *ctx;
	uint32_t scratch;
	bool registered;
	uint8_t iomem[TESTDEV_IOMEM_LEN];
};

static bool
in_range(int port, int bytes, int base, int len)
{
	return (bytes == 1 || bytes == 2 || bytes == 4) &&
	       port + bytes <= base + len;
}

static int
exit_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax,
	void *arg)
{
	(void)arg;
	if (!in_range(port, bytes, TESTDEV_EXIT, TESTDEV_EXIT_LEN)) {
		if (in)
			*eax = 0xffffffff;
		return -1;
	}
	if (in)
		*eax = 0;
	else
		machine_suspend_status(ctx, (int)(((*eax << 1) | 1) & 0xff));
	return 0;
}

static int
scratch_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax,
	   void *arg)
{
	struct pctestdev *t = arg;
	int shift = (port - TESTDEV_IOPORT) * 8;
	uint32_t mask;

	(void)ctx;
	if (!in_range(port, bytes, TESTDEV_IOPORT, TESTDEV_IOPORT_LEN)) {
		if (in)
			*eax = 0xffffffff;
		return -1;
	}
	mask = (bytes == 4 ? 0xffffffffu : (1u << (bytes * 8)) - 1) << shift;
	pthread_mutex_lock(&t->lock);
	if (in)
		*eax = (t->scratch & mask) >> shift;
	else
		t->scratch = (t->scratch & ~mask) | ((*eax << shift) & mask);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static int
irq_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax, void *arg)
{
	int pin = port - TESTDEV_IRQ;

	(void)arg;
	if (bytes != 1) {
		if (in)
			*eax = 0xffffffff;
		return -1;
	}
	if (in) {
		*eax = 0;
		return 0;
	}
	if (*eax & 0xff)
		vm_irq_assert(ctx, pin);
	else
		vm_irq_deassert(ctx, pin);
	return 0;
}

static int
iomem_mmio(struct vcpu *vcpu, int dir, uint64_t addr, int size, uint64_t *val,
	   void *arg1, long arg2)
{
	struct pctestdev *t = arg1;
	uint64_t off = addr - TESTDEV_IOMEM;

	(void)vcpu;
	(void)arg2;
	if (size < 1 || size > 8 || off + (uint64_t)size > TESTDEV_IOMEM_LEN) {
		if (dir == MEM_F_READ)
			*val = ~0ULL;
		return 0;
	}
	pthread_mutex_lock(&t->lock);
	if (dir == MEM_F_READ) {
		*val = 0;
		memcpy(val, t->iomem + off, (size_t)size);
	} else {
		memcpy(t->iomem + off, val, (size_t)size);
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

#define NPORTS 3

static void
testdev_ports(struct pctestdev *t, struct inout_port ports[NPORTS])
{
	ports[0] =
	    (struct inout_port){"pc-testdev",	TESTDEV_EXIT, TESTDEV_EXIT_LEN,
				IOPORT_F_INOUT, exit_io,      t};
	ports[1] = (struct inout_port){"pc-testdev",	   TESTDEV_IOPORT,
				       TESTDEV_IOPORT_LEN, IOPORT_F_INOUT,
				       scratch_io,	   t};
	ports[2] =
	    (struct inout_port){"pc-testdev",	TESTDEV_IRQ, TESTDEV_IRQ_PINS,
				IOPORT_F_INOUT, irq_io,	     t};
}

static struct mem_range
testdev_iomem(struct pctestdev *t)
{
	return (struct mem_range){
	    "pc-testdev",  MEM_F_RW,	     iomem_mmio, t, 0,
	    TESTDEV_IOMEM, TESTDEV_IOMEM_LEN};
}

static void
pctestdev_deinit(void *arg)
{
	struct pctestdev *t = arg;
	struct vmctx *ctx = t->ctx;
	struct inout_port ports[NPORTS];
	struct mem_range mr;

	if (t->registered) {
		testdev_ports(t, ports);
		for (int i = 0; i < NPORTS; i++)
			unregister_inout(ctx, &ports[i]);
		mr = testdev_iomem(t);
		unregister_mem(ctx, &mr);
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static void
port_taken(struct vmctx *ctx, const struct inout_port *iop)
{
	for (int p = iop->port; p < iop->port + iop->size; p++) {
		const char *owner = inout_owner(ctx, p);

		if (owner) {
			fprintf(stderr,
				"bhyve: pc-testdev: port 0x%x is "
				"taken by %s\n",
				p, owner);
			return;
		}
	}
	fprintf(stderr, "bhyve: pc-testdev: cannot use ports 0x%x-0x%x\n",
		iop->port, iop->port + iop->size - 1);
}

static int
testdev_register(struct vmctx *ctx, struct pctestdev *t)
{
	struct inout_port ports[NPORTS];
	struct mem_range mr = testdev_iomem(t);
	int i;

	testdev_ports(t, ports);
	for (i = 0; i < NPORTS; i++) {
		if (register_inout(ctx, &ports[i]) < 0) {
			port_taken(ctx, &ports[i]);
			goto fail;
		}
	}
	if (register_mem(ctx, &mr) < 0) {
		fprintf(stderr,
			"bhyve: pc-testdev: memory 0x%llx-0x%llx is "
			"taken\n",
			TESTDEV_IOMEM, TESTDEV_IOMEM + TESTDEV_IOMEM_LEN - 1);
		goto fail;
	}
	t->registered = true;
	return 0;
fail:
	while (--i >= 0)
		unregister_inout(ctx, &ports[i]);
	return -1;
}

static int
testdev_init(struct vmctx *ctx, const struct lpc_dev *d)
{
	struct pctestdev *t;

	if (!config_get_bool(machine_config(ctx), "lpc.pc-testdev", true))
		return 0;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	pthread_mutex_init(&t->lock, NULL);
	t->ctx = ctx;
	if (testdev_register(ctx, t) < 0 ||
	    machine_add_dev(ctx, d, t, pctestdev_deinit) < 0) {
		pctestdev_deinit(t);
		return -1;
	}
	return 0;
}

static int
testdev_parse(struct config *cfg, const char *name, const char *opts, char *err,
	      size_t errlen)
{
	if (*opts) {
		snprintf(err, errlen, "-l %s,%s: pc-testdev takes no options",
			 name, opts);
		return -1;
	}
	return config_set(cfg, "lpc.pc-testdev", "true", err, errlen);
}

static const struct lpc_dev lpc_pctestdev = {
    .name = "pc-testdev",
    .help = "kvm-unit-tests' test device: debug-exit at 0xf4, IRQ lines "
	    "at 0x2000",
    .parse = testdev_parse,
    .init = testdev_init,
};
LPC_DEV_SET(lpc_pctestdev);
