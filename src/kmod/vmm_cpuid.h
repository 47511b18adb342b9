/* The CPUID a vCPU sees: KVM's supported set, named as ours, with topology. */
#ifndef VMM_CPUID_H
#define VMM_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "vmm.h"

/* A new table (free() it), or NULL when out of memory. */
struct kvm_cpuid2 *vmm_cpuid_build(const struct kvm_cpuid2 *supported,
				   int vcpu_id, const struct vm_topology *t,
				   bool tsc_deadline);

/* The entry for function/index in a table, or NULL. */
struct kvm_cpuid_entry2 *vmm_cpuid_find(struct kvm_cpuid2 *c, uint32_t fn,
					uint32_t index);

#endif
