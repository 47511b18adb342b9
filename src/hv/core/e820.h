/*
 * The guest physical memory map (the BIOS INT 15h E820 view, ACPI 6.4
 * §15), as every loader hands it to its kernel (Linux boot_params, the
 * multiboot mmap) and as fw_cfg's etc/e820 will.
 *
 *   0           - 0x9FFFF      RAM (640 KiB of conventional memory)
 *   0xA0000     - 0xFFFFF      reserved: VGA window, option ROMs, and
 *                              bhyve's ACPI/MP/SMBIOS tables at 0xF0000
 *   0x100000    - lowmem       RAM
 *   0xE0000000  - 0xEFFFFFFF   reserved: PCIe ECAM (the PCI bus's own
 *                              fw_ops: devices reserve what they need)
 *   0xFEC00000  - 0xFFFFFFFF   reserved: IOAPIC, HPET, LAPIC, boot ROM
 *   4 GiB       - 4 GiB + highmem   RAM
 *
 * The 32-bit PCI BAR window (lowmem .. ECAM) is left out on purpose: an
 * OS places BARs in gaps of the map, not in reserved ranges.
 */
#ifndef E820_H
#define E820_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm.h"

enum e820_type {
	E820_RAM = 1,
	E820_RESERVED = 2,
	E820_ACPI = 3,
	E820_NVS = 4,
};

struct e820_entry {
	uint64_t addr;
	uint64_t len;
	uint32_t type;
};

/* Enough for the map above; callers may pass more. */
#define E820_MAX_ENTRIES 16

/* Conventional memory: RAM below the VGA window. */
#define E820_LOWMEM_END 0xA0000ULL
#define E820_HIMEM_START 0x100000ULL

/*
 * Fill out[] with the map of ctx's memory, sorted by address. Returns the
 * number of entries, or -1 when max is too small.
 */
int e820_build(struct vmctx *ctx, struct e820_entry *out, int max);

/* True when [addr, addr + len) lies entirely inside one RAM entry. */
bool e820_is_ram(const struct e820_entry *map, int n, uint64_t addr,
		 uint64_t len);

const char *e820_type_name(uint32_t type);

#endif
