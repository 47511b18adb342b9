/* CPUID patching: APIC IDs, topology leaves, our vendor leaf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm_cpuid.h"

/* A small "supported" table like KVM's on an AMD host. */
static struct kvm_cpuid2 *
supported(void)
{
	static const struct kvm_cpuid_entry2 e[] = {
		{.function = 0, .eax = 0xd},
		{.function = 1, .eax = 0x800f12, .ebx = 0x00000800},
		{.function = 4, .index = 0, .flags = 1, .eax = 0x121},
		{.function = 4, .index = 1, .flags = 1, .eax = 0x163},
		{.function = 0x1f, .index = 0, .flags = 1, .ebx = 1},
		{.function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b},
		{.function = 0x40000001, .eax = 0x1234},
		{.function = 0x80000001, .ecx = 0},
		{.function = 0x80000008, .ecx = 0},
		{.function = 0x8000001e},
	};
	size_t n = sizeof(e) / sizeof(e[0]);
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + sizeof(e) + 4 * sizeof(e[0]));

	c->nent = n;
	memcpy(c->entries, e, sizeof(e));
	return c;
}

static void
test_apic_id_and_flags(void **state)
{
	struct kvm_cpuid2 *s = supported(), *c;
	struct vm_topology t = {4, 1, 1};

	(void)state;
	c = vmm_cpuid_build(s, 3, &t, true, 0);
	struct kvm_cpuid_entry2 *l1 = vmm_cpuid_find(c, 1, 0);
	assert_int_equal(l1->ebx >> 24, 3);
	assert_true(l1->ecx & (1u << 31)); /* hypervisor */
	assert_true(l1->ecx & (1u << 24)); /* TSC deadline */
	assert_true(l1->edx & (1u << 28));
	assert_int_equal(l1->eax, 0x800f12); /* family untouched */
	free(c);
	c = vmm_cpuid_build(s, 0, &t, false, 0);
	assert_false(vmm_cpuid_find(c, 1, 0)->ecx & (1u << 24));
	free(c);
	free(s);
}

/* -a hides x2APIC (CPUID.1:ECX[21]), -x offers it, unset leaves KVM's. */
static void
test_apic_mode(void **state)
{
	struct kvm_cpuid2 *s = supported(), *c;
	struct vm_topology t = {1, 1, 1};
	const uint32_t x2apic = 1u << 21;

	(void)state;
	vmm_cpuid_find(s, 1, 0)->ecx |= x2apic; /* KVM emulates x2APIC */
	c = vmm_cpuid_build(s, 0, &t, false, 0);
	vmm_cpuid_apic_mode(c, VM_APIC_DEFAULT);
	assert_true(vmm_cpuid_find(c, 1, 0)->ecx & x2apic);
	vmm_cpuid_apic_mode(c, VM_APIC_XAPIC);
	assert_false(vmm_cpuid_find(c, 1, 0)->ecx & x2apic);
	assert_true(vmm_cpuid_find(c, 1, 0)->ecx & (1u << 31)); /* rest kept */
	vmm_cpuid_apic_mode(c, VM_APIC_X2APIC);
	assert_true(vmm_cpuid_find(c, 1, 0)->ecx & x2apic);
	free(c);
	free(s);
}

static void
test_vendor_leaves(void **state)
{
	struct kvm_cpuid2 *s = supported(), *c;
	struct vm_topology t = {1, 1, 1};

	(void)state;
	c = vmm_cpuid_build(s, 0, &t, false, 0);
	struct kvm_cpuid_entry2 *v = vmm_cpuid_find(c, 0x40000000, 0);
	char sig[13] = {0};
	memcpy(sig, &v->ebx, 4);
	memcpy(sig + 4, &v->ecx, 4);
	memcpy(sig + 8, &v->edx, 4);
	assert_string_equal(sig, "bhyve bhyve ");
	/* KVM's own leaves moved up by 0x100, intact. */
	struct kvm_cpuid_entry2 *k = vmm_cpuid_find(c, 0x40000100, 0);
	assert_non_null(k);
	assert_int_equal(k->ebx, 0x4b4d564b);
	assert_int_equal(k->eax, 0x40000101);
	assert_int_equal(vmm_cpuid_find(c, 0x40000101, 0)->eax, 0x1234);
	free(c);
	free(s);
}

static void
test_topology_leaves(void **state)
{
	struct kvm_cpuid2 *s = supported(), *c;
	struct vm_topology t = {2, 4, 2};

	(void)state;
	/* vCPU 13 = socket 1, core 2, thread 1 -> APIC ID 13 = 0b1101. */
	c = vmm_cpuid_build(s, 13, &t, false, 0);
	assert_int_equal((vmm_cpuid_find(c, 1, 0)->ebx >> 16) & 0xff, 8);
	struct kvm_cpuid_entry2 *b0 = vmm_cpuid_find(c, 0xb, 0);
	struct kvm_cpuid_entry2 *b1 = vmm_cpuid_find(c, 0xb, 1);
	struct kvm_cpuid_entry2 *b2 = vmm_cpuid_find(c, 0xb, 2);
	assert_int_equal(b0->eax, 1);
	assert_int_equal(b0->ebx, 2);
	assert_int_equal(b0->ecx >> 8, 1);
	assert_int_equal(b1->eax, 3);
	assert_int_equal(b1->ebx, 8);
	assert_int_equal(b1->ecx >> 8, 2);
	assert_int_equal(b1->edx, 13);
	assert_int_equal(b2->ebx, 0);
	assert_null(vmm_cpuid_find(c, 0x1f, 0));
	/* Leaf 4: cores per package - 1, threads sharing L1. */
	struct kvm_cpuid_entry2 *l4 = vmm_cpuid_find(c, 4, 0);
	assert_int_equal(l4->eax >> 26, 3);
	assert_int_equal((l4->eax >> 14) & 0xfff, 1);
	assert_int_equal(l4->eax & 0x3fff, 0x121);
	/* AMD: NC and ApicIdSize; 0x8000001E core and node. */
	struct kvm_cpuid_entry2 *a8 = vmm_cpuid_find(c, 0x80000008, 0);
	assert_int_equal(a8->ecx & 0xff, 7);
	assert_int_equal((a8->ecx >> 12) & 0xf, 3);
	struct kvm_cpuid_entry2 *ae = vmm_cpuid_find(c, 0x8000001e, 0);
	assert_int_equal(ae->eax, 13);
	assert_int_equal(ae->ebx & 0xff, 2);
	assert_int_equal((ae->ebx >> 8) & 0xff, 1);
	assert_int_equal(ae->ecx & 0xff, 1);
	assert_true(vmm_cpuid_find(c, 0x80000001, 0)->ecx & 2);
	free(c);
	free(s);
}

static void
test_no_xsave_quirk(void **state)
{
	struct kvm_cpuid2 *s = supported(), *c;
	struct vm_topology t = {1, 1, 1};

	(void)state;
	s->entries[1].ecx = (1u << 26) | (1u << 28) | (1u << 0);
	s->entries[s->nent++] = (struct kvm_cpuid_entry2){
		.function = 0xd, .index = 0, .flags = 1, .eax = 7};
	c = vmm_cpuid_build(s, 0, &t, false, VMM_QUIRK_NO_XSAVE);
	assert_int_equal(vmm_cpuid_find(c, 1, 0)->ecx & ~(1u << 31), 1);
	assert_null(vmm_cpuid_find(c, 0xd, 0));
	free(c);
	c = vmm_cpuid_build(s, 0, &t, false, 0);
	assert_non_null(vmm_cpuid_find(c, 0xd, 0));
	free(c);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apic_id_and_flags),
		cmocka_unit_test(test_apic_mode),
		cmocka_unit_test(test_vendor_leaves),
		cmocka_unit_test(test_topology_leaves),
		cmocka_unit_test(test_no_xsave_quirk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
