/* The CPUID a vCPU sees: KVM's supported set, named as ours, with topology. */
#ifndef VMM_CPUID_H
#define VMM_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "vmm.h"

/* Work-arounds for the hypervisor we run under, when nested. */
enum vmm_cpuid_quirks {
	/*
	 * QEMU TCG's nested SVM lets an L2 guest's XSETBV through without
	 * the intercept, so KVM never learns the guest's XCR0 and reports
	 * XSAVE sizes for XCR0=3: Linux WARNs at boot. Hide XSAVE.
	 */
	VMM_QUIRK_NO_XSAVE = 1 << 0,
};

/* What the machine we run on needs (CPUID leaf 0x40000000 of our host). */
unsigned vmm_cpuid_host_quirks(void);

/* A new table (free() it), or NULL when out of memory. */
struct kvm_cpuid2 *vmm_cpuid_build(const struct kvm_cpuid2 *supported,
				   int vcpu_id, const struct vm_topology *t,
				   bool tsc_deadline, unsigned quirks);

/*
 * The x2APIC feature flag (leaf 1 ECX bit 21) for the APIC mode: hidden
 * for VM_APIC_XAPIC, set for VM_APIC_X2APIC, as KVM offers it otherwise.
 */
void vmm_cpuid_apic_mode(struct kvm_cpuid2 *c, enum vm_apic_mode mode);

/* The entry for function/index in a table, or NULL. */
struct kvm_cpuid_entry2 *vmm_cpuid_find(struct kvm_cpuid2 *c, uint32_t fn,
					uint32_t index);

#endif
