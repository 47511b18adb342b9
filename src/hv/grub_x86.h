/*
 * The x86 hand-off shared by grub-bhyve's loaders (linux_boot.c,
 * multiboot.c): a flat GDT, identity-mapped page tables for long mode, and
 * the boot vCPU's registers for 32-bit protected mode or 64-bit mode.
 *
 * The GDT holds 0x00 null, 0x08 null, 0x10 code, 0x18 data, all flat 4 GiB
 * and DPL 0: the Linux boot protocol's __BOOT_CS and __BOOT_DS (Linux boot
 * protocol 2.15, "32-bit boot protocol" and "64-bit boot protocol"), which
 * multiboot kernels accept as well (they load their own GDT). The code
 * segment is 32-bit in X86_MODE_PROT32 and 64-bit (L=1) in X86_MODE_LONG64.
 *
 * Long mode tables: PML4 at base + 0x1000, one PDPT at + 0x2000, four page
 * directories at + 0x3000 .. + 0x6fff identity-mapping 0-4 GiB with 2 MiB
 * pages. RAM above 4 GiB is mapped too, with 1 GiB pages, when the host CPU
 * has them (the guest's CPUID is KVM's supported set, which follows the
 * host), up to 512 GiB.
 */
#ifndef GRUB_X86_H
#define GRUB_X86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "byteorder.h"
#include "vmm.h"

#define X86_SEL_CODE 0x10
#define X86_SEL_DATA 0x18

/* Bytes x86_handoff writes at base (page aligned). */
#define X86_TABLES_SIZE32 0x1000ULL
#define X86_TABLES_SIZE64 0x7000ULL

enum x86_mode {
	X86_MODE_PROT32, /* protected mode, paging off */
	X86_MODE_LONG64, /* long mode, identity paging */
};

/*
 * Write the GDT (and page tables) at base and set *bs to the mode's flat
 * state: segments loaded, CR0/CR4/EFER, RFLAGS 0x2 (interrupts off), an
 * empty IDT. The caller sets RIP, RSP and the argument registers.
 */
int x86_handoff(struct vmctx *ctx, enum x86_mode mode, uint64_t base,
		struct vm_boot_state *bs, char *err, size_t errlen);

/* Make *bs vCPU 0's state (saved as the instance's boot state on close). */
int x86_commit(struct vmctx *ctx, const struct vm_boot_state *bs, char *err,
	       size_t errlen);

/* The host CPU (and so KVM's guest CPUID) has 1 GiB pages. */
bool x86_host_has_1g_pages(void);

#endif
