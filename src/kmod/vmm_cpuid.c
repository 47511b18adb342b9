/*
 * CPUID for one vCPU. KVM says what it can virtualise
 * (KVM_GET_SUPPORTED_CPUID); we add what only the VMM knows: the APIC ID,
 * the -c sockets/cores/threads topology (Intel SDM vol. 2A "CPUID" leaves
 * 1, 4 and 0xB; AMD APM vol. 3 leaves 0x80000008 and 0x8000001E), the
 * hypervisor bit, TSC-deadline, and a vendor leaf naming us.
 *
 * APIC IDs are vCPU indexes (KVM uses the vCPU id as the initial APIC ID,
 * and the MADT lists them so); the topology fields use ceil(log2) widths,
 * exact for power-of-two counts, as bhyve does.
 */
#include <cpuid.h>
#include <stdlib.h>
#include <string.h>

#include "vmm_cpuid.h"

#define EXTRA_ENTRIES 8

static int
ceil_log2(int n)
{
	int b = 0;

	while ((1 << b) < n)
		b++;
	return b;
}

struct kvm_cpuid_entry2 *
vmm_cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		bool indexed = e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

		if (e->function == fn && (!indexed || e->index == index))
			return e;
	}
	return NULL;
}

static void
drop_function(struct kvm_cpuid2 *c, uint32_t fn)
{
	uint32_t j = 0;

	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function != fn)
			c->entries[j++] = c->entries[i];
	c->nent = j;
}

/* Leaf 0xB, x2APIC topology: level 0 SMT, level 1 core, then invalid. */
static void
add_leaf_b(struct kvm_cpuid2 *c, int apic, int tbits, int cbits,
	   const struct vm_topology *t)
{
	uint32_t flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

	drop_function(c, 0xb);
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){
		.function = 0xb, .index = 0, .flags = flags,
		.eax = tbits, .ebx = t->threads, .ecx = (1 << 8) | 0,
		.edx = apic};
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){
		.function = 0xb, .index = 1, .flags = flags,
		.eax = tbits + cbits, .ebx = t->threads * t->cores,
		.ecx = (2 << 8) | 1, .edx = apic};
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){
		.function = 0xb, .index = 2, .flags = flags,
		.ecx = 2, .edx = apic};
}

static void
patch_leaf(struct kvm_cpuid_entry2 *e, int apic, int tbits, int cbits,
	   const struct vm_topology *t, bool deadline)
{
	int per_pkg = t->cores * t->threads;

	switch (e->function) {
	case 1:
		e->ebx = (e->ebx & 0x0000ffff) | ((uint32_t)apic << 24) |
			 ((uint32_t)(1 << (tbits + cbits)) << 16);
		e->ecx |= 1u << 31; /* running under a hypervisor */
		if (deadline)
			e->ecx |= 1u << 24;
		e->edx |= 1u << 28; /* HTT: the count in EBX is valid */
		break;
	case 4: {
		/* Cores per package, and who shares each cache level. */
		int level = (e->eax >> 5) & 7;
		int share = level >= 3 ? (1 << (tbits + cbits)) : (1 << tbits);
		e->eax = (e->eax & 0x3fff) | ((uint32_t)(share - 1) << 14) |
			 ((uint32_t)((1 << cbits) - 1) << 26);
		break;
	}
	case 0x80000001:
		if (per_pkg > 1)
			e->ecx |= 1u << 1; /* CmpLegacy */
		break;
	case 0x80000008:
		e->ecx = (e->ecx & ~0xf0ffu) | (uint32_t)(per_pkg - 1) |
			 ((uint32_t)(tbits + cbits) << 12);
		break;
	case 0x8000001e:
		e->eax = apic;
		e->ebx = ((uint32_t)(t->threads - 1) << 8) |
			 ((apic >> tbits) & ((1 << cbits) - 1));
		e->ecx = (apic >> (tbits + cbits)) & 0xff;
		break;
	case 0x40000000:
		/*
		 * Our vendor leaf takes 0x40000000; KVM's paravirtual leaves
		 * move to 0x40000100, where Linux and KVM also look.
		 */
		e->function = 0x40000100;
		e->eax = 0x40000101;
		break;
	case 0x40000001:
		e->function = 0x40000101;
		break;
	}
}

unsigned
vmm_cpuid_host_quirks(void)
{
	unsigned a, b, c, d;
	char sig[13] = {0};

	__cpuid(0x40000000, a, b, c, d);
	memcpy(sig, &b, 4);
	memcpy(sig + 4, &c, 4);
	memcpy(sig + 8, &d, 4);
	(void)a;
	return strcmp(sig, "TCGTCGTCGTCG") == 0 ? VMM_QUIRK_NO_XSAVE : 0;
}

/*
 * On AMD, Linux takes threads per core from leaf 0x8000001E, and reads leaf
 * 0xB at all, only with TOPOEXT (0x80000001 ECX bit 22). When KVM's set
 * lacks them (QEMU TCG's outer CPU does), add them so -c cores/threads
 * show in the guest.
 */
static void
amd_topoext(struct kvm_cpuid2 *c, int apic, int tbits, int cbits,
	    const struct vm_topology *t)
{
	struct kvm_cpuid_entry2 *l0 = vmm_cpuid_find(c, 0, 0);
	struct kvm_cpuid_entry2 *ext = vmm_cpuid_find(c, 0x80000000, 0);
	struct kvm_cpuid_entry2 *e1 = vmm_cpuid_find(c, 0x80000001, 0);
	struct kvm_cpuid_entry2 e = {.function = 0x8000001e};

	if (!l0 || l0->ebx != 0x68747541 /* "Auth" */ || !ext || !e1 ||
	    vmm_cpuid_find(c, 0x8000001e, 0))
		return;
	e1->ecx |= 1u << 22;
	if (ext->eax < 0x8000001e)
		ext->eax = 0x8000001e;
	patch_leaf(&e, apic, tbits, cbits, t, false);
	c->entries[c->nent++] = e;
}

/* XSAVE and what needs it (Intel SDM vol. 1 §13.2): FMA, AVX, F16C, ... */
static void
hide_xsave(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *l1 = vmm_cpuid_find(c, 1, 0);
	struct kvm_cpuid_entry2 *l7 = vmm_cpuid_find(c, 7, 0);

	if (l1)
		l1->ecx &= ~((1u << 12) | (1u << 26) | (1u << 27) |
			     (1u << 28) | (1u << 29));
	if (l7) {
		/* AVX2, AVX-512 (F, DQ, IFMA, PF, ER, CD, BW, VL), MPX */
		l7->ebx &= ~((1u << 5) | (1u << 14) | (1u << 16) | (1u << 17) |
			     (1u << 21) | (1u << 26) | (1u << 27) |
			     (1u << 28) | (1u << 30) | (1u << 31));
		/* AVX-512 VBMI/VBMI2/VNNI/BITALG/VPOPCNTDQ, PKU, OSPKE */
		l7->ecx &= ~((1u << 1) | (1u << 3) | (1u << 4) | (1u << 6) |
			     (1u << 11) | (1u << 12) | (1u << 14));
	}
	drop_function(c, 0xd);
}

struct kvm_cpuid2 *
vmm_cpuid_build(const struct kvm_cpuid2 *supported, int vcpu_id,
		const struct vm_topology *t, bool tsc_deadline,
		unsigned quirks)
{
	size_t n = supported->nent + EXTRA_ENTRIES;
	struct kvm_cpuid2 *c =
		calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
	int tbits = ceil_log2(t->threads), cbits = ceil_log2(t->cores);
	struct kvm_cpuid_entry2 *leaf0;

	if (!c)
		return NULL;
	c->nent = supported->nent;
	memcpy(c->entries, supported->entries,
	       supported->nent * sizeof(struct kvm_cpuid_entry2));
	/* Leaf 0x1F would contradict 0xB; without it Linux reads 0xB. */
	drop_function(c, 0x1f);
	for (uint32_t i = 0; i < c->nent; i++)
		patch_leaf(&c->entries[i], vcpu_id, tbits, cbits, t,
			   tsc_deadline);
	add_leaf_b(c, vcpu_id, tbits, cbits, t);
	amd_topoext(c, vcpu_id, tbits, cbits, t);
	if (quirks & VMM_QUIRK_NO_XSAVE)
		hide_xsave(c);
	leaf0 = vmm_cpuid_find(c, 0, 0);
	if (leaf0 && leaf0->eax < 0xb)
		leaf0->eax = 0xb;
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){
		.function = 0x40000000,
		.eax = 0x40000000,
		.ebx = 0x76796862, /* "bhyv" */
		.ecx = 0x68622065, /* "e bh" */
		.edx = 0x20657679, /* "yve " */
	};
	return c;
}

#define CPUID1_ECX_X2APIC (1u << 21)

void
vmm_cpuid_apic_mode(struct kvm_cpuid2 *c, enum vm_apic_mode mode)
{
	struct kvm_cpuid_entry2 *l1 = vmm_cpuid_find(c, 1, 0);

	if (!l1)
		return;
	if (mode == VM_APIC_XAPIC)
		l1->ecx &= ~CPUID1_ECX_X2APIC;
	else if (mode == VM_APIC_X2APIC)
		l1->ecx |= CPUID1_ECX_X2APIC;
}
