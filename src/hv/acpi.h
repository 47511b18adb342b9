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

#include "fwtab.h" /* ACPI_OEM_ID, acpi_checksum */
#include "vmm.h"

#define BIOS_AREA_BASE 0xf0000u
#define BIOS_AREA_END 0x100000u
#define ACPI_BASE 0xf2400u /* the RSDP */
#define ACPI_MAX (BIOS_AREA_END - ACPI_BASE)

/* The platform the tables describe. */
#define ACPI_LAPIC_BASE 0xfee00000u
#define ACPI_IOAPIC_BASE 0xfec00000u

/*
 * Build every table into guest memory for ncpus vCPUs, after the PCI
 * devices exist (the DSDT's _PRT lists their interrupts). 0, or -1 with a
 * message on stderr.
 */
int acpi_build(struct vmctx *ctx, int ncpus);

#endif
