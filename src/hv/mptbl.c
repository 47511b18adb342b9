/*
 * The MP table (Intel MultiProcessor Specification 1.4): the floating
 * pointer at MPTABLE_BASE, the configuration table right after it.
 *
 * Entries, in the order §4.3 asks (by type): one processor per vCPU (APIC
 * ID = vCPU index, vCPU 0 the BSP), the PCI buses that hold devices, then
 * the ISA bus, the IOAPIC (id = ncpus, as in the MADT), I/O interrupts
 * (the 16 ISA IRQs with the devices' overrides, as the MADT has them, then
 * each PCI INTx route the PCI bus reports, as the DSDT's _PRT has them),
 * and local interrupts (LINT0 ExtINT, LINT1 NMI on every CPU). The
 * devices' parts come from their descriptors (fwtab.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi.h"
#include "byteorder.h"
#include "fwtab.h"
#include "machine.h"
#include "mptbl.h"

#define MPFP_LEN 16
#define MPCH_LEN 44
#define MP_SPEC_REV 4 /* 1.4 */
#define MP_PROC_LEN 20
#define MP_ENTRY_LEN 8

enum { MP_PROC, MP_BUS, MP_IOAPIC, MP_IOINT, MP_LINT };
enum { INT_INT, INT_NMI, INT_SMI, INT_EXTINT };
/* I/O interrupt flags (§4.3.4): polarity 1:0, trigger 3:2; 0 conforms. */
#define MPF_HIGH 0x1
#define MPF_EDGE 0x4
#define MPF_LEVEL 0xc

#define MP_LAPIC_VERSION 0x14
#define MP_IOAPIC_VERSION 0x11
/* CPU signature (family 6) and features (FPU, APIC) for every entry. */
#define MP_CPU_SIGNATURE 0x0600
#define MP_CPU_FEATURES 0x0201

struct mp_buf {
	uint8_t *p;
	size_t len, cap;
	int count; /* entries */
};


/* The next entry's bytes, or NULL when the table would not fit. */
static uint8_t *
entry(struct mp_buf *b, size_t len)
{
	uint8_t *e;

	if (!b->p || b->len + len > b->cap) {
		b->p = NULL;
		return NULL;
	}
	e = b->p + b->len;
	b->len += len;
	b->count++;
	return e;
}

static void
intr(struct mp_buf *b, int type, int kind, uint16_t flags, int bus, int irq,
     int dst, int pin)
{
	uint8_t *e = entry(b, MP_ENTRY_LEN);

	if (!e)
		return;
	e[0] = (uint8_t)type;
	e[1] = (uint8_t)kind;
	le16_put(e + 2, flags);
	e[4] = (uint8_t)bus;
	e[5] = (uint8_t)irq;
	e[6] = (uint8_t)dst;
	e[7] = (uint8_t)pin;
}

static void
mp_buses(struct mp_buf *b, const bool *used, int isa)
{
	for (int bus = 0; bus <= isa; bus++) {
		uint8_t *e;

		if (bus < isa && !used[bus])
			continue;
		e = entry(b, MP_ENTRY_LEN);
		if (!e)
			return;
		e[0] = MP_BUS;
		e[1] = (uint8_t)bus;
		memcpy(e + 2, bus == isa ? "ISA   " : "PCI   ", 6);
	}
}

/* Whether another IRQ's override takes pin (IRQ 0 on pin 2, say). */
static bool
pin_taken(int pin)
{
	for (int irq = 0; irq < 16; irq++) {
		const struct fw_isa_irq *o = fw_isa_irq(irq);

		if (o && irq != pin && o->gsi == (uint32_t)pin)
			return true;
	}
	return false;
}

/*
 * The 16 ISA IRQs, as the MADT has them. Edge and active high is what ISA
 * means by conforming, so it is written as 0 (conforms to the bus).
 */
static void
mp_isa_ints(struct mp_buf *b, int isa, int ioapic)
{
	intr(b, MP_IOINT, INT_EXTINT, 0, isa, 0, ioapic, 0);
	for (int irq = 0; irq < 16; irq++) {
		const struct fw_isa_irq *o = fw_isa_irq(irq);
		uint16_t flags;

		if (!o) {
			if (!pin_taken(irq))
				intr(b, MP_IOINT, INT_INT, 0, isa, irq, ioapic,
				     irq);
			continue;
		}
		flags = o->flags == (MPF_HIGH | MPF_EDGE) ? 0 : o->flags;
		intr(b, MP_IOINT, INT_INT, flags, isa, irq, ioapic,
		     (int)o->gsi);
	}
}

static int
mp_build(struct vmctx *ctx, int ncpus, struct mp_buf *b)
{
	struct fw_mp mp = {0};
	int isa = 0;
	uint8_t *e;

	mp.bus_used[0] = true;
	if (fw_mptable(ctx, &mp) < 0) {
		fprintf(stderr, "bhyve: MP table: out of memory\n");
		fw_mp_free(&mp);
		return -1;
	}
	for (int bus = 0; bus < 256; bus++)
		if (mp.bus_used[bus])
			isa = bus + 1;
	if (isa > 255) {
		fprintf(stderr, "bhyve: MP table: no bus id left for ISA (a "
				"device is on PCI bus 255)\n");
		fw_mp_free(&mp);
		return -1;
	}
	for (int i = 0; i < ncpus; i++) {
		e = entry(b, MP_PROC_LEN);
		if (!e)
			break;
		e[0] = MP_PROC;
		e[1] = (uint8_t)i; /* APIC ID */
		e[2] = MP_LAPIC_VERSION;
		e[3] = 0x01 | (i == 0 ? 0x02 : 0); /* enabled, BSP */
		le32_put(e + 4, MP_CPU_SIGNATURE);
		le32_put(e + 8, MP_CPU_FEATURES);
	}
	mp_buses(b, mp.bus_used, isa);
	e = entry(b, MP_ENTRY_LEN);
	if (e) {
		e[0] = MP_IOAPIC;
		e[1] = (uint8_t)ncpus;
		e[2] = MP_IOAPIC_VERSION;
		e[3] = 0x01; /* enabled */
		le32_put(e + 4, ACPI_IOAPIC_BASE);
	}
	mp_isa_ints(b, isa, ncpus);
	/* PCI source IRQ (§D.3): slot in bits 6:2, INTA-INTD in 1:0. */
	for (int i = 0; i < mp.nintx; i++)
		intr(b, MP_IOINT, INT_INT, 0, mp.intx[i].bus,
		     mp.intx[i].slot << 2 | mp.intx[i].pin, ncpus,
		     mp.intx[i].irq);
	fw_mp_free(&mp);
	intr(b, MP_LINT, INT_EXTINT, 0, 0, 0, 0xff, 0);
	intr(b, MP_LINT, INT_NMI, 0, 0, 0, 0xff, 1);
	if (!b->p) {
		fprintf(stderr,
			"bhyve: MP table: more than %u bytes; use -Y to "
			"go without it\n",
			MPTABLE_MAX);
		return -1;
	}
	return 0;
}

int
mptable_build(struct vmctx *ctx, int ncpus)
{
	uint8_t img[MPTABLE_MAX] = {0}, *fp = img, *ch = img + MPFP_LEN;
	struct mp_buf b = {ch, MPCH_LEN, MPTABLE_MAX - MPFP_LEN, 0};
	uint8_t *guest;

	if (!config_get_bool(machine_config(ctx), "x86.mptable", true))
		return 0;
	if (ncpus < 1 || ncpus > VM_MAXCPU) {
		fprintf(stderr, "bhyve: MP table: bad vCPU count %d\n", ncpus);
		return -1;
	}
	guest = vm_map_gpa(ctx, MPTABLE_BASE, MPTABLE_MAX);
	if (!guest) {
		fprintf(stderr, "bhyve: MP table: guest memory does not cover "
				"0xF0000 (-m too small?)\n");
		return -1;
	}
	if (mp_build(ctx, ncpus, &b) < 0)
		return -1;
	/* The configuration table header (§4.2). */
	memcpy(ch, "PCMP", 4);
	le16_put(ch + 4, (uint16_t)b.len);
	ch[6] = MP_SPEC_REV;
	memcpy(ch + 8, "BHyVe   ", 8);
	memcpy(ch + 16, "Hypervisor  ", 12);
	le16_put(ch + 34, (uint16_t)b.count);
	le32_put(ch + 36, ACPI_LAPIC_BASE);
	ch[7] = acpi_checksum(ch, b.len);
	/* The floating pointer (§4.1): length in 16-byte units. */
	memcpy(fp, "_MP_", 4);
	le32_put(fp + 4, MPTABLE_BASE + MPFP_LEN);
	fp[8] = 1;
	fp[9] = MP_SPEC_REV;
	fp[10] = acpi_checksum(fp, MPFP_LEN);
	memcpy(guest, img, MPFP_LEN + b.len);
	return 0;
}
