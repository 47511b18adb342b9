/*
 * SMBIOS 2.8 tables (DMTF DSP0134 2.8.0) in the BIOS area, as bhyve puts
 * them: the 32-bit entry point at 0xF1000, the structures right after.
 * The strings come from bhyve_config(5)'s bios.*, system.*, board.* and
 * chassis.* keys, the UUID from uuid (-U) or a hash of the VM name.
 */
#ifndef SMBIOSTBL_H
#define SMBIOSTBL_H

#include <stdint.h>

#include "vmm.h"

#define SMBIOS_BASE 0xf1000u
#define SMBIOS_MAX 0x1400u /* ACPI follows at 0xF2400 */

/* Build them once the machine exists: 0, or -1 with a message on stderr. */
int smbios_build(struct vmctx *ctx);

/*
 * "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into the byte order SMBIOS 2.6+
 * uses (§7.2.1: the first three fields little-endian). 0, or -1.
 */
int smbios_parse_uuid(const char *s, uint8_t out[16]);

#endif
