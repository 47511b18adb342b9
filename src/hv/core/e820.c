/* The guest physical memory map (see e820.h for the layout and why). */
#include <stdbool.h>
#include <stdlib.h>

#include "e820.h"
#include "fwtab.h"

#define ROM_AREA_START 0xFEC00000ULL /* IOAPIC, HPET, LAPIC, boot ROM */
#define FOUR_GIB (1ULL << 32)

static bool
add(struct e820_entry *out, int max, int *n, uint64_t addr, uint64_t len,
    uint32_t type)
{
	if (len == 0)
		return true;
	if (*n >= max)
		return false;
	out[(*n)++] = (struct e820_entry){addr, len, type};
	return true;
}

static int
by_addr(const void *a, const void *b)
{
	const struct e820_entry *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* What devices reserve (the PCI bus's ECAM, say), from their descriptors. */
static bool
add_devices(struct e820_entry *out, int max, int *n)
{
	struct e820_entry r[E820_MAX_ENTRIES];
	int k = fw_reserved(r, E820_MAX_ENTRIES);

	if (k < 0)
		return false;
	for (int i = 0; i < k; i++)
		if (!add(out, max, n, r[i].addr, r[i].len, r[i].type))
			return false;
	return true;
}

int
e820_build(struct vmctx *ctx, struct e820_entry *out, int max)
{
	uint64_t low = vm_get_lowmem_size(ctx);
	uint64_t high = vm_get_highmem_size(ctx);
	int n = 0;
	bool ok;

	/* vm_setup_memory guarantees at least 1 MiB of lowmem. */
	ok = add(out, max, &n, 0, E820_LOWMEM_END, E820_RAM) &&
	     add(out, max, &n, E820_LOWMEM_END,
		 E820_HIMEM_START - E820_LOWMEM_END, E820_RESERVED) &&
	     add(out, max, &n, E820_HIMEM_START,
		 low > E820_HIMEM_START ? low - E820_HIMEM_START : 0,
		 E820_RAM) &&
	     add_devices(out, max, &n) &&
	     add(out, max, &n, ROM_AREA_START, FOUR_GIB - ROM_AREA_START,
		 E820_RESERVED) &&
	     add(out, max, &n, VM_HIGHMEM_BASE, high, E820_RAM);
	if (!ok)
		return -1;
	qsort(out, n, sizeof(out[0]), by_addr);
	return n;
}

bool
e820_is_ram(const struct e820_entry *map, int n, uint64_t addr, uint64_t len)
{
	for (int i = 0; i < n; i++) {
		if (map[i].type != E820_RAM)
			continue;
		if (addr >= map[i].addr && addr - map[i].addr <= map[i].len &&
		    len <= map[i].len - (addr - map[i].addr))
			return true;
	}
	return false;
}

const char *
e820_type_name(uint32_t type)
{
	switch (type) {
	case E820_RAM:
		return "usable";
	case E820_RESERVED:
		return "reserved";
	case E820_ACPI:
		return "ACPI data";
	case E820_NVS:
		return "ACPI NVS";
	}
	return "unknown";
}
