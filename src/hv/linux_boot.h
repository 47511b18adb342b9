/*
 * The Linux x86 boot protocol (Documentation/arch/x86/boot.rst, protocol
 * 2.15): load a bzImage's protected-mode kernel, its initrds and command
 * line into guest memory, build boot_params (the zero page) and leave vCPU
 * 0 at the kernel's 64-bit entry (XLF_KERNEL_64) or its 32-bit entry.
 *
 * Guest memory the loader owns, all in conventional memory (e820.h):
 *
 *   0x01000 - 0x07fff   GDT and identity page tables (grub_x86.h)
 *   0x08000 - 0x08fff   boot_params
 *   0x09000 - 0x0ffff   a stack for the entry code (RSP = 0x10000)
 *   0x20000 - 0x7ffff   the command line
 *
 * The kernel goes at pref_address when relocatable (else the lowest
 * address >= 1 MiB at kernel_alignment, halving down to min_alignment), or
 * at 1 MiB when not; it needs init_size bytes from there. The initrds,
 * concatenated (each padded to 4 bytes, as GRUB does), go as high as they
 * can below min(initrd_addr_max + 1, top of low memory), page aligned.
 *
 * An uncompressed ELF vmlinux (as Firecracker boots, and as
 * fixtures/linux/build.sh extracts from Debian's bzImage) is accepted too:
 * its PT_LOAD segments go to their physical addresses (p_paddr), vCPU 0
 * starts at e_entry (startup_64) in long mode with RSI at a boot_params
 * whose setup header the loader writes itself. This skips the kernel's own
 * decompressor, which under nested TCG costs seconds per boot; the kernel
 * then runs at its link address (no KASLR, as with any vmlinux boot).
 *
 * Every function checks the image before trusting it: a truncated or lying
 * header gives a one-line error in err, never an out-of-bounds access. As
 * GRUB's linux command, the protected-mode kernel is the file's bytes
 * after the setup sectors: the header's syssize is not held against the
 * file's length (it may round past the end), only setup_sects is.
 */
#ifndef LINUX_BOOT_H
#define LINUX_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "load_file.h"
#include "vmm.h"

#define LINUX_TABLES UINT64_C(0x1000)
#define LINUX_ZERO_PAGE UINT64_C(0x8000)
#define LINUX_STACK_TOP UINT64_C(0x10000)
#define LINUX_CMDLINE UINT64_C(0x20000)
#define LINUX_CMDLINE_END UINT64_C(0x80000)

/* What linux_parse found in a bzImage's setup header. */
struct linux_kernel {
	uint16_t version; /* boot protocol, e.g. 0x020f */
	unsigned setup_sects;
	size_t hdr_end;	    /* the setup header is [0x1f1, hdr_end) */
	size_t payload_off; /* the protected-mode kernel in the file */
	size_t payload_len;
	uint64_t init_size; /* memory it needs from its load address */
	uint64_t pref_address;
	uint32_t alignment; /* kernel_alignment (power of two) */
	uint32_t min_alignment;
	bool relocatable;
	bool entry64; /* XLF_KERNEL_64: 64-bit entry at +0x200 */
	uint32_t code32_start;
	uint32_t cmdline_max; /* cmdline_size: bytes, NUL excluded */
	uint32_t initrd_addr_max;
	bool elf;	    /* an ELF vmlinux rather than a bzImage */
	uint64_t elf_entry; /* e_entry: startup_64's physical address */
};

/* Where linux_place put things (guest physical addresses). */
struct linux_layout {
	uint64_t kernel_addr, kernel_end;
	uint64_t initrd_addr, initrd_size;
	uint64_t entry;
	uint64_t zero_page, cmdline;
};

struct linux_boot_args {
	struct load_file image; /* a bzImage or an ELF vmlinux */
	const char *cmdline;
	const struct load_file *initrds;
	int ninitrds;
	bool no_vga_info; /* grub-bhyve -e: no 80x25 text screen info */
};

/* Parse a kernel's headers (in f's head; LOAD_FILE_HEAD is enough). */
int linux_parse(const struct load_file *f, struct linux_kernel *k, char *err,
		size_t errlen);

/* Initrds concatenated the way linux_boot loads them. */
uint64_t linux_initrd_size(const struct load_file *v, int n);

/* Choose the load addresses in lowmem bytes of low memory. */
int linux_place(const struct linux_kernel *k, uint64_t lowmem,
		uint64_t initrd_size, struct linux_layout *l, char *err,
		size_t errlen);

/* Is cmdline acceptable to this kernel? */
int linux_check_cmdline(const struct linux_kernel *k, const char *cmdline,
			char *err, size_t errlen);

/*
 * Load everything into ctx's memory and set vCPU 0's state; *out (if not
 * NULL) tells where things went.
 */
int linux_boot(struct vmctx *ctx, const struct linux_boot_args *a,
	       struct linux_layout *out, char *err, size_t errlen);

#endif
