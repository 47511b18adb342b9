/*
 * ACPI tables (ACPI 6.4 §5.2), written into guest memory where bhyve puts
 * them: the RSDP at 0xF2400, the other tables after it below 1 MiB.
 *
 * bhyve(8)'s -A (acpi_tables) once chose whether to build them; like
 * bhyve on FreeBSD 15 we always build them on x86 (Linux needs the MADT
 * for more than one CPU and the FADT for power-off), and acpi_tables is
 * accepted and ignored.
 *
 * The BIOS area 0xF0000-0xFFFFF is shared, as in bhyve:
 *   0xF0000  MP table (mptbl.c)       up to 0xF1000
 *   0xF1000  SMBIOS (smbiostbl.c)     up to 0xF2400
 *   0xF2400  ACPI (acpi.c)            up to 0x100000
 */
#ifndef ACPI_H
#define ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "vmm.h"

#define BIOS_AREA_BASE 0xf0000u
#define BIOS_AREA_END 0x100000u
#define ACPI_BASE 0xf2400u /* the RSDP */
#define ACPI_MAX (BIOS_AREA_END - ACPI_BASE)

/* The platform the tables describe. */
#define ACPI_LAPIC_BASE 0xfee00000u
#define ACPI_IOAPIC_BASE 0xfec00000u
/* OEM fields as bhyve fills them. */
#define ACPI_OEM_ID "BHYVE "
#define ACPI_OEM_REVISION 1

/*
 * Build every table into guest memory for ncpus vCPUs, after the PCI
 * devices exist (the DSDT's _PRT lists their interrupts). 0, or -1 with a
 * message on stderr.
 */
int acpi_build(struct vmctx *ctx, int ncpus);

/*
 * One PCI INTx route: bus, slot and pin (0 = INTA .. 3 = INTD) to an IOAPIC
 * pin. Shared by the DSDT's _PRT and the MP table, which must agree; one
 * entry per (bus, slot, pin), the first function's route winning.
 */
struct acpi_intx {
	uint8_t bus, slot, pin;
	uint8_t irq;
};
/* The routes in bus, slot, pin order into *out (free it); the count or -1. */
int acpi_pci_intx(struct vmctx *ctx, struct acpi_intx **out);

/* The byte that makes a table's bytes sum to zero. */
uint8_t acpi_checksum(const void *p, size_t len);

#endif
