/*
 * MMIO dispatch: a sorted array of non-overlapping ranges. BARs move while
 * vCPUs run, so lookups take a read lock and changes a write lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "machine.h"
#include "mem.h"

#define MEM_MAX_RANGES 256

struct mem_table {
	pthread_rwlock_t lock;
	int n;
	struct mem_range r[MEM_MAX_RANGES];
};

struct mem_table *
mem_table_create(void)
{
	struct mem_table *t = calloc(1, sizeof(*t));

	if (t)
		pthread_rwlock_init(&t->lock, NULL);
	return t;
}

void
mem_table_free(struct mem_table *t)
{
	if (t)
		pthread_rwlock_destroy(&t->lock);
	free(t);
}

static bool
overlaps(const struct mem_range *a, const struct mem_range *b)
{
	return a->base < b->base + b->size && b->base < a->base + a->size;
}

int
register_mem(struct vmctx *ctx, const struct mem_range *mr)
{
	struct mem_table *t = machine_of(ctx)->mmio;
	int i, rc = 0;

	if (mr->size == 0 || mr->base + mr->size < mr->base || !mr->handler) {
		errno = EINVAL;
		return -1;
	}
	pthread_rwlock_wrlock(&t->lock);
	for (i = 0; i < t->n; i++) {
		if (overlaps(&t->r[i], mr)) {
			errno = EEXIST;
			rc = -1;
			goto out;
		}
	}
	if (t->n == MEM_MAX_RANGES) {
		errno = ENOSPC;
		rc = -1;
		goto out;
	}
	for (i = t->n; i > 0 && t->r[i - 1].base > mr->base; i--)
		t->r[i] = t->r[i - 1];
	t->r[i] = *mr;
	t->n++;
out:
	pthread_rwlock_unlock(&t->lock);
	return rc;
}

int
unregister_mem(struct vmctx *ctx, const struct mem_range *mr)
{
	struct mem_table *t = machine_of(ctx)->mmio;
	int rc = -1;

	pthread_rwlock_wrlock(&t->lock);
	for (int i = 0; i < t->n; i++) {
		const struct mem_range *r = &t->r[i];

		if (r->base != mr->base || r->size != mr->size)
			continue;
		/* Not another device's range that mr failed to take. */
		if (mr->handler && (r->handler != mr->handler ||
				    r->arg1 != mr->arg1 || r->arg2 != mr->arg2))
			break;
		memmove(&t->r[i], &t->r[i + 1],
			(t->n - i - 1) * sizeof(t->r[0]));
		t->n--;
		rc = 0;
		break;
	}
	pthread_rwlock_unlock(&t->lock);
	if (rc < 0)
		errno = ENOENT;
	return rc;
}

static const struct mem_range *
lookup(const struct mem_table *t, uint64_t gpa)
{
	int lo = 0, hi = t->n - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		const struct mem_range *r = &t->r[mid];

		if (gpa < r->base)
			hi = mid - 1;
		else if (gpa - r->base >= r->size)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

int
emulate_mem(struct vmctx *ctx, struct vcpu *vcpu, uint64_t gpa, int dir,
	    int size, uint64_t *val)
{
	struct machine *m = machine_of(ctx);
	struct mem_table *t = m->mmio;
	const struct mem_range *r;
	struct mem_range copy;

	pthread_rwlock_rdlock(&t->lock);
	r = lookup(t, gpa);
	if (r)
		copy = *r;
	pthread_rwlock_unlock(&t->lock);
	if (!r || !(copy.flags & dir)) {
		if (dir == MEM_F_READ)
			*val = ~0ULL;
		return m->strictio ? -1 : 0;
	}
	return copy.handler(vcpu, dir, gpa, size, val, copy.arg1, copy.arg2);
}
