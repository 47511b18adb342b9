/*
 * Multiboot 1 (Multiboot Specification 0.6.96): find a kernel's multiboot
 * header, load its ELF32 program segments or its a.out-kludge image (header
 * flag 16: header_addr, load_addr, load_end_addr, bss_end_addr,
 * entry_addr), load modules page aligned above the kernel, build the
 * multiboot information structure and leave vCPU 0 as §3.2 says: EAX =
 * 0x2BADB002, EBX = the information's address, 32-bit protected mode with
 * flat 4 GiB segments, paging off, EFLAGS 0x2 (interrupts off).
 *
 * Layout, all in RAM below 4 GiB (e820.h):
 *
 *   kernel segments       where the image says (checked against the map)
 *   modules               page aligned, in order, from the kernel's end
 *   the information block one page for the GDT (ESP starts at its top),
 *                         then the multiboot info, the memory map, the
 *                         module list and the strings
 *
 * A bad image (no header in the first 8 KiB, a bad checksum, required
 * features we lack, segments outside the file or outside RAM) gives a
 * one-line error in err, never an out-of-bounds access.
 */
#ifndef MULTIBOOT_H
#define MULTIBOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm.h"

#define MB_HEADER_MAGIC 0x1BADB002u
#define MB_BOOTLOADER_MAGIC 0x2BADB002u
#define MB_SEARCH 8192 /* the header lies within the first 8 KiB */
#define MB_MAX_SEGS 32
#define MB_MAX_MODS 64

/* Header flags (§3.1.2). */
#define MB_PAGE_ALIGN (1u << 0)
#define MB_MEMORY_INFO (1u << 1)
#define MB_VIDEO_MODE (1u << 2)
#define MB_AOUT_KLUDGE (1u << 16)

/* multiboot_info flags (§3.3). */
#define MBI_MEMORY (1u << 0)
#define MBI_CMDLINE (1u << 2)
#define MBI_MODS (1u << 3)
#define MBI_MMAP (1u << 6)
#define MBI_LOADER_NAME (1u << 9)

/* multiboot_info field offsets (§3.3). */
#define MBI_FLAGS 0
#define MBI_MEM_LOWER 4
#define MBI_MEM_UPPER 8
#define MBI_CMDLINE_PTR 16
#define MBI_MODS_COUNT 20
#define MBI_MODS_ADDR 24
#define MBI_MMAP_LENGTH 44
#define MBI_MMAP_ADDR 48
#define MBI_LOADER_NAME_PTR 64
#define MBI_SIZE 116

struct mb_segment {
	uint64_t paddr, filesz, memsz;
	size_t off; /* in the file */
};

struct mb_image {
	size_t hdr_off;
	uint32_t flags;
	bool aout; /* loaded through the a.out kludge's address fields */
	uint64_t entry;
	struct mb_segment seg[MB_MAX_SEGS];
	int nseg;
};

struct mb_module {
	const void *data;
	size_t len;
	const char *cmdline;
};

struct mb_boot_args {
	const uint8_t *image;
	size_t len;
	const char *cmdline;
	const struct mb_module *mods;
	int nmods;
	const char *loader_name;
};

/* Where mb_boot put things. */
struct mb_layout {
	uint64_t entry;
	uint64_t kernel_start, kernel_end;
	uint64_t mods_start; /* the first module */
	uint64_t info;	     /* the multiboot_info structure */
};

int mb_parse(const uint8_t *img, size_t len, struct mb_image *m, char *err,
	     size_t errlen);

/* mb_parse, then the segments and entry against ctx's memory map. */
int mb_check(struct vmctx *ctx, const uint8_t *img, size_t len, char *err,
	     size_t errlen);

int mb_boot(struct vmctx *ctx, const struct mb_boot_args *a,
	    struct mb_layout *out, char *err, size_t errlen);

#endif
