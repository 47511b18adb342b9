/*
 * Backends without a hypervisor.
 *
 * store: the instance files only. Register writes land in the vCPU's copy
 *        and vCPU 0's is saved as the instance's boot state on close, which
 *        is how a loader hands a booted kernel to bhyve.
 * mock:  plain memory and recorded interrupt lines, for device unit tests.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm_internal.h"

static int
state_get(struct vcpu *vcpu, struct vm_boot_state *bs)
{
	*bs = vcpu->state;
	return 0;
}

static int
state_set(struct vcpu *vcpu, const struct vm_boot_state *bs)
{
	vcpu->state = *bs;
	vcpu->state.valid = true;
	return 0;
}

static void
store_vcpu_fini(struct vcpu *vcpu)
{
	if (vcpu->id == 0 && vcpu->state.valid)
		vm_set_boot_state(vcpu->ctx, &vcpu->state);
}

const struct vmm_ops vmm_store_ops = {
	.get_state = state_get,
	.set_state = state_set,
	.vcpu_fini = store_vcpu_fini,
};

#define MOCK_LINES 24

struct mock_vm {
	int level[MOCK_LINES];
	int pulses[MOCK_LINES];
	int msis;
	uint64_t msi_addr, msi_msg;
};

static int
mock_init(struct vmctx *ctx)
{
	ctx->backend = calloc(1, sizeof(struct mock_vm));
	return ctx->backend ? 0 : -1;
}

static void
mock_fini(struct vmctx *ctx)
{
	free(ctx->backend);
}

static int
mock_irq_line(struct vmctx *ctx, int gsi, int level)
{
	struct mock_vm *m = ctx->backend;

	if (level && !m->level[gsi])
		m->pulses[gsi]++;
	m->level[gsi] = level;
	return 0;
}

static int
mock_msi(struct vmctx *ctx, uint64_t addr, uint64_t msg)
{
	struct mock_vm *m = ctx->backend;

	m->msis++;
	m->msi_addr = addr;
	m->msi_msg = msg;
	return 0;
}

const struct vmm_ops vmm_mock_ops = {
	.vm_init = mock_init,
	.vm_fini = mock_fini,
	.get_state = state_get,
	.set_state = state_set,
	.irq_line = mock_irq_line,
	.msi = mock_msi,
};

int
vm_mock_irq_level(struct vmctx *ctx, int gsi)
{
	struct mock_vm *m = ctx->backend;

	return (gsi >= 0 && gsi < MOCK_LINES) ? m->level[gsi] : -1;
}

/* Rising edges seen on a line since the mock was made. */
int
vm_mock_irq_pulses(struct vmctx *ctx, int gsi)
{
	struct mock_vm *m = ctx->backend;

	return (gsi >= 0 && gsi < MOCK_LINES) ? m->pulses[gsi] : -1;
}

int
vm_mock_msi_count(struct vmctx *ctx, uint64_t *addr, uint64_t *msg)
{
	struct mock_vm *m = ctx->backend;

	if (addr)
		*addr = m->msi_addr;
	if (msg)
		*msg = m->msi_msg;
	return m->msis;
}
