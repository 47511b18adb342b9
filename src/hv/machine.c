/* The machine around one VM context, and the device linker sets. */
#include <stdlib.h>
#include <string.h>

#include "inout.h"
#include "machine.h"
#include "mem.h"
#include "mevent.h"

struct machine *
machine_create(struct vmctx *ctx, struct config *cfg)
{
	struct machine *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->ctx = ctx;
	m->cfg = cfg;
	m->ncpus = vm_get_ncpus(ctx);
	m->io = inout_table_create();
	m->mmio = mem_table_create();
	pthread_mutex_init(&m->suspend_lock, NULL);
	if (!m->io || !m->mmio) {
		machine_free(m);
		return NULL;
	}
	vm_set_cookie(ctx, m);
	return m;
}

void
machine_free(struct machine *m)
{
	if (!m)
		return;
	inout_table_free(m->io);
	mem_table_free(m->mmio);
	pthread_mutex_destroy(&m->suspend_lock);
	free(m);
}

static void suspend(struct vmctx *ctx, enum vm_suspend_how how, int status);

void
machine_suspend(struct vmctx *ctx, enum vm_suspend_how how)
{
	suspend(ctx, how, (int)how);
}

void
machine_suspend_status(struct vmctx *ctx, int status)
{
	suspend(ctx, VM_SUSPEND_POWEROFF, status & 0xff);
}

static void
suspend(struct vmctx *ctx, enum vm_suspend_how how, int status)
{
	struct machine *m = machine_of(ctx);
	bool first;

	pthread_mutex_lock(&m->suspend_lock);
	first = !m->suspended;
	if (first) {
		m->how = how;
		m->status = status;
		__atomic_store_n(&m->suspended, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&m->suspend_lock);
	if (!first)
		return;
	/* Get every vCPU out of the guest, and the event loop out of epoll. */
	for (int i = 0; i < m->ncpus; i++) {
		struct vcpu *v = vm_vcpu_get(ctx, i);
		if (v)
			vm_vcpu_kick(v);
	}
	if (m->mev)
		mevent_stop(m->mev);
}

/* On every exit of every vCPU: a plain atomic load, no lock. */
bool
machine_suspended(struct vmctx *ctx)
{
	return __atomic_load_n(&machine_of(ctx)->suspended, __ATOMIC_ACQUIRE);
}

int
machine_set_slot(struct vmctx *ctx, const char *name, void *ptr)
{
	struct machine *m = machine_of(ctx);

	for (size_t i = 0; i < sizeof(m->slots) / sizeof(m->slots[0]); i++) {
		if (!m->slots[i].name || !strcmp(m->slots[i].name, name)) {
			m->slots[i].name = name;
			m->slots[i].ptr = ptr;
			return 0;
		}
	}
	return -1;
}

void *
machine_get_slot(struct vmctx *ctx, const char *name)
{
	struct machine *m = machine_of(ctx);

	for (size_t i = 0; i < sizeof(m->slots) / sizeof(m->slots[0]); i++)
		if (m->slots[i].name && !strcmp(m->slots[i].name, name))
			return m->slots[i].ptr;
	return NULL;
}

int
sysdev_init_all(struct vmctx *ctx)
{
	const void **p;
	int lo = -1;

	/* Ascending 'order'; ties in link order. Sets are tiny. */
	for (;;) {
		int next = -1;
		SET_FOREACH(p, sysdev_set)
		{
			const struct sysdev *d = *p;
			if (d->order > lo && (next < 0 || d->order < next))
				next = d->order;
		}
		if (next < 0)
			return 0;
		SET_FOREACH(p, sysdev_set)
		{
			const struct sysdev *d = *p;
			if (d->order == next && d->init(ctx) < 0)
				return -1;
		}
		lo = next;
	}
}

const struct lpc_dev *
lpc_dev_find(const char *name)
{
	const void **p;

	SET_FOREACH(p, lpc_dev_set)
	{
		const struct lpc_dev *d = *p;
		if (!strcmp(d->name, name))
			return d;
	}
	return NULL;
}
