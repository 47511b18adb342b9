/*
 * libFuzzer target: the gdb stub's packet parser and dispatcher (gdb.c)
 * against a mock machine of two vCPUs in long mode, with a small page
 * table so that m, M, Z0 and z0 reach guest memory.
 *
 * Input: what a hostile client sends, byte for byte. A 0xfe byte is not
 * sent: it stands for "a vCPU stopped" (the next byte's low bit picks it,
 * bit 1 says single step, bit 2 a debug-register breakpoint), as a
 * VM_EXIT_DEBUG would, so stop replies and the resume paths are reached too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gdb.h"
#include "vmm.h"

#define MEM (1ULL << 20)
#define PML4 0x1000

static struct vmctx *ctx;
static struct vcpu *vcpus[2];
static size_t out_bytes;

static void
sink(void *arg, const char *buf, size_t len)
{
	(void)arg;
	(void)buf;
	out_bytes += len;
}

/* Identity-map the first 2 MiB with one large page, and 0x7000 at 4 KiB. */
static void
reset_memory(void)
{
	uint8_t *m = vm_map_gpa(ctx, 0, MEM);
	uint64_t e[4] = {0x2000 | 3, 0x3000 | 3, 0x83, 0x4000 | 3};
	struct vm_boot_state bs;

	memset(m, 0, MEM);
	memcpy(m + PML4, &e[0], 8);		/* PML4[0] -> PDPT */
	memcpy(m + 0x2000, &e[1], 8);		/* PDPT[0] -> PD */
	memcpy(m + 0x3000, &e[2], 8);		/* PD[0]: 2 MiB at 0 */
	memcpy(m + 0x2000 + 8 * 511, &e[3], 8); /* PDPT[511] -> PT */
	e[0] = 0x7000 | 3;
	memcpy(m + 0x4000, &e[0], 8);
	for (int i = 0; i < 2; i++) {
		vm_reset_state(&bs);
		bs.regs[VM_REG_GUEST_CR0] = 0x80000011;
		bs.regs[VM_REG_GUEST_CR4] = 0x20;
		bs.regs[VM_REG_GUEST_EFER] = 0x500;
		bs.regs[VM_REG_GUEST_CR3] = PML4;
		bs.regs[VM_REG_GUEST_RIP] = 0x1000 * (i + 5);
		vm_apply_state(vcpus[i], &bs);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ctx = vm_create_mock(MEM);
	if (!ctx || vm_set_ncpus(ctx, 2) < 0)
		abort();
	for (int i = 0; i < 2; i++)
		if (!(vcpus[i] = vm_vcpu_open(ctx, i)))
			abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gdb_stub *g = gdb_create(ctx, 2, false, true);
	size_t start = 0;

	if (!g)
		abort();
	reset_memory();
	gdb_set_output(g, sink, NULL);
	gdb_attach(g);
	for (size_t i = 0; i <= size; i++) {
		if (i < size && data[i] != 0xfe)
			continue;
		gdb_input(g, data + start, i - start);
		if (i + 1 < size) {
			struct vm_exit x = {.code = VM_EXIT_DEBUG};

			x.u.debug.step = data[i + 1] & 2;
			x.u.debug.hw = data[i + 1] & 4;
			gdb_vcpu_debug(g, vcpus[data[i + 1] & 1], &x);
			gdb_check_stop(g);
			i++;
		}
		start = i + 1;
	}
	gdb_detach(g);
	gdb_free(g);
	return 0;
}
