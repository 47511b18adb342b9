/*
 * What a device says about itself in the firmware tables, as bhyve's
 * pe_write_dsdt does: a device's descriptor (struct sysdev, struct lpc_dev)
 * points at a struct fw_ops, and the table builders (acpi.c, mptbl.c,
 * e820.c) walk the registered devices instead of naming them. A device
 * with ACPI presence needs no edit outside its own file.
 *
 * PCI devices describe themselves through struct pci_devemu's
 * pe_write_dsdt, which the PCI bus (itself a sysdev) calls inside PCI0.
 */
#ifndef FWTAB_H
#define FWTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acpi_aml.h"
#include "e820.h"
#include "vmm.h"

/* Where a device's DSDT objects go. */
enum fw_scope {
	FW_SCOPE_ROOT, /* \ : \_S5 and the like */
	FW_SCOPE_SB,   /* \_SB: platform devices */
	FW_SCOPE_ISA,  /* the ISA bus: under the LPC bridge, else \_SB */
};

/*
 * An ISA IRQ that is not identity-mapped, edge-triggered and active high
 * on the IOAPIC: an Interrupt Source Override (ACPI 6.4 §5.2.12.5) and the
 * MP table's I/O interrupt entry for it (MP 1.4 §4.3.4). flags are the
 * MPS INTI flags both tables use: polarity in 1:0, trigger mode in 3:2.
 */
struct fw_isa_irq {
	uint8_t irq;
	uint32_t gsi;
	uint16_t flags;
};
#define FW_IRQ_HIGH 0x1
#define FW_IRQ_EDGE 0x4
#define FW_IRQ_LEVEL 0xc

/* The FADT's fields that describe devices (ACPI 6.4 §5.2.9). */
struct fw_fadt {
	uint16_t sci_irq;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable;
	uint32_t pm1a_evt_blk, pm1a_cnt_blk, pm_tmr_blk;
	uint8_t pm1a_evt_len, pm1a_cnt_len, pm_tmr_len;
	uint16_t reset_port; /* 0: no reset register */
	uint8_t reset_value;
	uint8_t century; /* the RTC's CMOS index of the century, or 0 */
};

/* A PCI INTx route: bus, slot, pin (0 = INTA .. 3 = INTD), IOAPIC pin. */
struct fw_intx {
	uint8_t bus, slot, pin;
	uint8_t irq;
};

/* What the MP table learns from devices: PCI buses in use, INTx routes. */
struct fw_mp {
	bool bus_used[256];
	struct fw_intx *intx;
	int nintx, cap;
	bool nomem;
};
void fw_mp_bus(struct fw_mp *mp, int bus);
void fw_mp_intx(struct fw_mp *mp, const struct fw_intx *e);
void fw_mp_free(struct fw_mp *mp);

struct fw_ops {
	/* DSDT objects in dsdt_scope; 0, or -1 when they cannot be written. */
	enum fw_scope dsdt_scope;
	int (*dsdt)(struct vmctx *ctx, const void *desc, struct aml *a);
	/*
	 * A whole ACPI table of the device's own (HPET, MCFG) into buf, which
	 * holds cap bytes: its length, 0 for none, -1 when it does not fit.
	 * fw_acpi_header() and fw_acpi_finish() write the common parts.
	 */
	int (*acpi_table)(struct vmctx *ctx, const void *desc, uint8_t *buf,
			  size_t cap);
	/* FADT fields the device owns (the PM block, the RTC's century). */
	void (*fadt)(struct vmctx *ctx, const void *desc, struct fw_fadt *f);
	/* MP table entries (PCI buses, INTx routes); 0 or -1. */
	int (*mptable)(struct vmctx *ctx, const void *desc, struct fw_mp *mp);
	const struct fw_isa_irq *isa_irqs;
	int nisa_irqs;
	/* Address ranges the e820 map reserves for it (always: loaders too). */
	const struct e820_entry *reserved;
	int nreserved;
};

/*
 * The walks: sysdevs in init order, then the -l configured LPC devices by
 * name. fw_dsdt writes every device's objects for one scope.
 */
int fw_dsdt(struct vmctx *ctx, enum fw_scope scope, struct aml *a);
/* Call fn for each device table; stops at and returns fn's first -1. */
int fw_acpi_tables(struct vmctx *ctx,
		   int (*fn)(const uint8_t *t, size_t len, void *arg),
		   void *arg);
void fw_fadt(struct vmctx *ctx, struct fw_fadt *f);
int fw_mptable(struct vmctx *ctx, struct fw_mp *mp);
/* The override for ISA irq, or NULL (registered descriptors: no ctx). */
const struct fw_isa_irq *fw_isa_irq(int irq);
/* Every override, in device order, into out (up to max): the count. */
int fw_isa_irqs(struct fw_isa_irq *out, int max);
/* Every reserved range of every registered device: the count. */
int fw_reserved(struct e820_entry *out, int max);

/* ACPI's common table parts (ACPI 6.4 §5.2.6). */
#define ACPI_HDR_LEN 36
#define ACPI_OEM_ID "BHYVE "
#define ACPI_OEM_REVISION 1
void fw_acpi_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev,
		    const char *table_id);
/* Set the checksum of the table at t (its length from the header). */
void fw_acpi_finish(uint8_t *t);
/* The byte that makes a table's bytes sum to zero. */
uint8_t acpi_checksum(const void *p, size_t len);
/* A Generic Address Structure (§5.2.3.2) at p. */
#define GAS_MEM 0
#define GAS_IO 1
#define GAS_BYTE 1
#define GAS_WORD 2
#define GAS_DWORD 3
void fw_gas(uint8_t *p, uint8_t space, uint8_t width, uint8_t access,
	    uint64_t addr);

#endif
