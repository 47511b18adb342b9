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

#define MOCK_IOEVENTFDS 16

struct mock_vm {
	struct {
		uint64_t addr, datamatch;
		int fd; /* -1: a free entry */
	} ioev[MOCK_IOEVENTFDS];
	int level[MOCK_LINES];
	int pulses[MOCK_LINES];
	int msis;
	uint64_t msi_addr, msi_msg;
	struct vm_debug debug[VM_MAXCPU];
};

static int
mock_init(struct vmctx *ctx)
{
	struct mock_vm *m = calloc(1, sizeof(struct mock_vm));

	if (!m)
		return -1;
	for (int i = 0; i < MOCK_IOEVENTFDS; i++)
		m->ioev[i].fd = -1;
	ctx->backend = m;
	return 0;
}

/* As KVM: one assignment per (addr, datamatch), EEXIST/ENOENT else. */
static int
mock_ioeventfd(struct vmctx *ctx, uint64_t addr, int len, bool pio,
	       uint64_t datamatch, int fd, bool assign)
{
	struct mock_vm *m = ctx->backend;
	int i, free_slot = -1;

	(void)len;
	if (!pio) {
		errno = ENOTSUP;
		return -1;
	}
	for (i = 0; i < MOCK_IOEVENTFDS; i++) {
		if (m->ioev[i].fd < 0) {
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		if (m->ioev[i].addr == addr &&
		    m->ioev[i].datamatch == datamatch)
			break;
	}
	if (assign) {
		if (i < MOCK_IOEVENTFDS) {
			errno = EEXIST;
			return -1;
		}
		if (free_slot < 0) {
			errno = ENOSPC;
			return -1;
		}
		m->ioev[free_slot].addr = addr;
		m->ioev[free_slot].datamatch = datamatch;
		m->ioev[free_slot].fd = fd;
		return 0;
	}
	if (i == MOCK_IOEVENTFDS || m->ioev[i].fd != fd) {
		errno = ENOENT;
		return -1;
	}
	m->ioev[i].fd = -1;
	return 0;
}

int
vm_mock_ioeventfd(struct vmctx *ctx, uint64_t addr, uint64_t datamatch)
{
	struct mock_vm *m = ctx->backend;

	for (int i = 0; i < MOCK_IOEVENTFDS; i++)
		if (m->ioev[i].fd >= 0 && m->ioev[i].addr == addr &&
		    m->ioev[i].datamatch == datamatch)
			return m->ioev[i].fd;
	return -1;
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

static int
mock_set_debug(struct vcpu *vcpu, const struct vm_debug *d)
{
	struct mock_vm *m = vcpu->ctx->backend;

	m->debug[vcpu->id] = *d;
	return 0;
}

void
vm_mock_get_debug(struct vcpu *vcpu, struct vm_debug *d)
{
	struct mock_vm *m = vcpu->ctx->backend;

	*d = m->debug[vcpu->id];
}

const struct vmm_ops vmm_mock_ops = {
	.set_debug = mock_set_debug,
	.vm_init = mock_init,
	.vm_fini = mock_fini,
	.get_state = state_get,
	.set_state = state_set,
	.irq_line = mock_irq_line,
	.msi = mock_msi,
	.ioeventfd = mock_ioeventfd,
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
