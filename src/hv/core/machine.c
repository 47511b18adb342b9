/* The machine around one VM context, and the device linker sets. */
#include <stdio.h>
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
	while (m->ndevs > 0) {
		struct machine_dev *d = &m->devs[--m->ndevs];

		if (d->deinit)
			d->deinit(d->state);
	}
	free(m->devs);
	if (m->mev)
		mevent_free(m->mev);
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
machine_add_dev(struct vmctx *ctx, const void *desc, void *state,
		void (*deinit)(void *state))
{
	struct machine *m = machine_of(ctx);

	if (machine_dev(ctx, desc))
		return -1;
	if (m->ndevs == m->devs_cap) {
		int cap = m->devs_cap ? 2 * m->devs_cap : 16;
		struct machine_dev *v = realloc(m->devs, cap * sizeof(*v));

		if (!v)
			return -1;
		m->devs = v;
		m->devs_cap = cap;
	}
	m->devs[m->ndevs++] = (struct machine_dev){desc, state, deinit};
	return 0;
}

void
machine_drop_dev(struct vmctx *ctx, const void *desc)
{
	struct machine *m = machine_of(ctx);

	for (int i = 0; i < m->ndevs; i++) {
		struct machine_dev d = m->devs[i];

		if (d.desc != desc)
			continue;
		memmove(&m->devs[i], &m->devs[i + 1],
			(m->ndevs - i - 1) * sizeof(m->devs[0]));
		m->ndevs--;
		if (d.deinit)
			d.deinit(d.state);
		return;
	}
}

void *
machine_dev(struct vmctx *ctx, const void *desc)
{
	struct machine *m = machine_of(ctx);

	for (int i = 0; i < m->ndevs; i++)
		if (m->devs[i].desc == desc)
			return m->devs[i].state;
	return NULL;
}

int
machine_claim_isa_bridge(struct vmctx *ctx)
{
	struct machine *m = machine_of(ctx);

	if (m->isa_bridge)
		return -1;
	m->isa_bridge = true;
	return 0;
}

bool
machine_has_isa_bridge(struct vmctx *ctx)
{
	return machine_of(ctx)->isa_bridge;
}

static int
sysdev_cmp(const void *a, const void *b)
{
	const struct sysdev *x = *(const struct sysdev *const *)a;
	const struct sysdev *y = *(const struct sysdev *const *)b;

	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return strcmp(x->name, y->name);
}

int
sysdev_sorted(const struct sysdev **out, int max)
{
	const void **p;
	int n = 0;

	SET_FOREACH(p, sysdev_set)
	{
		if (n < max)
			out[n++] = *p;
	}
	qsort(out, n, sizeof(out[0]), sysdev_cmp);
	return n;
}

int
sysdev_init_all(struct vmctx *ctx)
{
	const struct sysdev *d[64];
	int n = sysdev_sorted(d, 64);

	for (int i = 0; i < n; i++)
		if (d[i]->init && d[i]->init(ctx) < 0)
			return -1;
	return 0;
}

static int
lpc_dev_cmp(const void *a, const void *b)
{
	const struct lpc_dev *x = *(const struct lpc_dev *const *)a;
	const struct lpc_dev *y = *(const struct lpc_dev *const *)b;

	return strcmp(x->name, y->name);
}

int
lpc_dev_sorted(const struct lpc_dev **out, int max)
{
	const void **p;
	int n = 0;

	SET_FOREACH(p, lpc_dev_set)
	{
		if (n < max)
			out[n++] = *p;
	}
	qsort(out, n, sizeof(out[0]), lpc_dev_cmp);
	return n;
}

bool
lpc_dev_configured(struct vmctx *ctx, const struct lpc_dev *d)
{
	char path[64];

	snprintf(path, sizeof(path), "lpc.%s", d->name);
	return config_node(machine_config(ctx), path) != NULL;
}

const struct sysdev *
sysdev_find(const char *name)
{
	const void **p;

	SET_FOREACH(p, sysdev_set)
	{
		const struct sysdev *d = *p;
		if (!strcmp(d->name, name))
			return d;
	}
	return NULL;
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

struct named {
	const char *name, *help;
};

static int
named_cmp(const void *a, const void *b)
{
	return strcmp(((const struct named *)a)->name,
		      ((const struct named *)b)->name);
}

void
print_device_list(const char *const *names, const char *const *helps, int n)
{
	struct named *v = calloc(n > 0 ? n : 1, sizeof(*v));

	if (!v)
		return;
	for (int i = 0; i < n; i++)
		v[i] = (struct named){names[i], helps ? helps[i] : NULL};
	qsort(v, n, sizeof(v[0]), named_cmp);
	for (int i = 0; i < n; i++)
		printf("%s%s%s\n", v[i].name, v[i].help ? "\t" : "",
		       v[i].help ? v[i].help : "");
	free(v);
}
