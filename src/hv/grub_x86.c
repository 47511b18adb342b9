/* The x86 hand-off state shared by the loaders (see grub_x86.h). */
#include <cpuid.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "grub_x86.h"

#define GDT_OFF 0x0
#define PML4_OFF 0x1000
#define PDPT_OFF 0x2000
#define PD_OFF 0x3000 /* four pages */

/* VMX access rights (vmm.h): type | S | P, plus L, D/B and G. */
#define AR_CODE 0x9b
#define AR_DATA 0x93
#define AR_L (1u << 13)
#define AR_DB (1u << 14)
#define AR_G (1u << 15)

#define CR0_PE 0x1ULL
#define CR0_ET 0x10ULL
#define CR0_PG 0x80000000ULL
#define CR4_PAE 0x20ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

/* Page table entry bits (Intel SDM vol. 3 §4.5). */
#define PTE_P 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_PS 0x80ULL

#define GIB (1ULL << 30)

bool
x86_host_has_1g_pages(void)
{
	unsigned a, b, c, d;

	/* CPUID 8000_0001h EDX bit 26: Page1GB. */
	if (!__get_cpuid(0x80000001, &a, &b, &c, &d))
		return false;
	return (d >> 26) & 1;
}

static void
write_gdt(uint8_t *p, enum x86_mode mode)
{
	const uint64_t gdt[4] = {
	    0, 0,
	    mode == X86_MODE_LONG64 ? 0x00af9b000000ffffULL  /* 64-bit code */
				    : 0x00cf9b000000ffffULL, /* 32-bit code */
	    0x00cf93000000ffffULL,			     /* data */
	};

	memset(p, 0, 0x1000);
	memcpy(p, gdt, sizeof(gdt));
}

/* Identity map 0-4 GiB with 2 MiB pages, highmem with 1 GiB pages. */
static void
write_page_tables(struct vmctx *ctx, uint8_t *t, uint64_t base)
{
	uint64_t *pml4 = (uint64_t *)(t + PML4_OFF);
	uint64_t *pdpt = (uint64_t *)(t + PDPT_OFF);
	uint64_t *pd = (uint64_t *)(t + PD_OFF);
	uint64_t top = VM_HIGHMEM_BASE + vm_get_highmem_size(ctx);

	memset(t + PML4_OFF, 0, X86_TABLES_SIZE64 - PML4_OFF);
	pml4[0] = (base + PDPT_OFF) | PTE_P | PTE_RW;
	for (int i = 0; i < 4; i++)
		pdpt[i] = (base + PD_OFF + i * 0x1000ULL) | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | PTE_P | PTE_RW | PTE_PS;
	if (vm_get_highmem_size(ctx) == 0 || !x86_host_has_1g_pages())
		return;
	for (uint64_t i = 4; i < 512 && i * GIB < top; i++)
		pdpt[i] = (i * GIB) | PTE_P | PTE_RW | PTE_PS;
}

static void
set_segments(struct vm_boot_state *bs, enum x86_mode mode)
{
	const struct seg_desc data = {0, 0xffffffff, AR_DATA | AR_DB | AR_G};
	uint32_t cs_ar = mode == X86_MODE_LONG64 ? AR_CODE | AR_L | AR_G
						 : AR_CODE | AR_DB | AR_G;

	for (int r = VM_REG_GUEST_ES; r <= VM_REG_GUEST_GS; r++) {
		bs->regs[r] = X86_SEL_DATA;
		bs->segs[r] = data;
	}
	bs->regs[VM_REG_GUEST_CS] = X86_SEL_CODE;
	bs->segs[VM_REG_GUEST_CS] = (struct seg_desc){0, 0xffffffff, cs_ar};
	/* No IDT: an exception before the kernel loads one is a triple fault.
	 */
	bs->segs[VM_REG_GUEST_IDTR] = (struct seg_desc){0, 0, 0};
}

int
x86_handoff(struct vmctx *ctx, enum x86_mode mode, uint64_t base,
	    struct vm_boot_state *bs, char *err, size_t errlen)
{
	uint64_t size =
	    mode == X86_MODE_LONG64 ? X86_TABLES_SIZE64 : X86_TABLES_SIZE32;
	uint8_t *t = vm_map_gpa(ctx, base, size);

	if (!t || (base & 0xfff)) {
		snprintf(err, errlen,
			 "boot tables at 0x%" PRIx64 " are outside guest RAM",
			 base);
		return -1;
	}
	vm_reset_state(bs);
	write_gdt(t + GDT_OFF, mode);
	bs->segs[VM_REG_GUEST_GDTR] = (struct seg_desc){base + GDT_OFF, 31, 0};
	set_segments(bs, mode);
	bs->regs[VM_REG_GUEST_RFLAGS] = 0x2;
	bs->regs[VM_REG_GUEST_RDX] = 0;
	if (mode == X86_MODE_PROT32) {
		bs->regs[VM_REG_GUEST_CR0] = CR0_PE | CR0_ET;
		return 0;
	}
	write_page_tables(ctx, t, base);
	bs->regs[VM_REG_GUEST_CR0] = CR0_PG | CR0_PE | CR0_ET;
	bs->regs[VM_REG_GUEST_CR3] = base + PML4_OFF;
	bs->regs[VM_REG_GUEST_CR4] = CR4_PAE;
	bs->regs[VM_REG_GUEST_EFER] = EFER_LME | EFER_LMA;
	return 0;
}

int
x86_commit(struct vmctx *ctx, const struct vm_boot_state *bs, char *err,
	   size_t errlen)
{
	struct vcpu *vcpu = vm_vcpu_open(ctx, 0);

	if (!vcpu || vm_apply_state(vcpu, bs) < 0) {
		snprintf(err, errlen, "cannot set vCPU 0's state: %s",
			 vm_strerror());
		return -1;
	}
	return 0;
}
