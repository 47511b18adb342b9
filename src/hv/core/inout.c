/*
 * Port I/O dispatch: each of the 64K ports is owned by at most one handler.
 * A port holds a 16-bit index into a small table of registrations, so the
 * whole map is 128 KiB of mostly untouched pages (a table of 64K full
 * entries, 2 MiB, got a transparent huge page on hosts with THP "always":
 * 2 MiB resident for a few dozen ports). Registrations that repeat (a BAR
 * the guest moves back and forth) reuse their entry, so the table is
 * bounded by the distinct handlers, not by what the guest does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inout.h"
#include "machine.h"

#define INOUT_MAX_HANDLERS 1024

struct inout_entry {
	inout_func_t handler;
	void *arg;
	const char *name;
	int flags;
};

struct inout_table {
	uint16_t port[65536]; /* 0: free, else 1 + index into entry */
	int nentries;
	struct inout_entry entry[INOUT_MAX_HANDLERS];
};

struct inout_table *
inout_table_create(void)
{
	return calloc(1, sizeof(struct inout_table));
}

void
inout_table_free(struct inout_table *t)
{
	free(t);
}

static bool
range_ok(const struct inout_port *iop)
{
	return iop->port >= 0 && iop->size > 0 && iop->port + iop->size <= 65536;
}

/* The entry for this registration, reusing an identical one; 0 if full. */
static int
entry_index(struct inout_table *t, const struct inout_port *iop)
{
	struct inout_entry want = {iop->handler, iop->arg, iop->name,
				   iop->flags};

	for (int i = 0; i < t->nentries; i++) {
		const struct inout_entry *e = &t->entry[i];

		if (e->handler == want.handler && e->arg == want.arg &&
		    e->name == want.name && e->flags == want.flags)
			return i + 1;
	}
	if (t->nentries == INOUT_MAX_HANDLERS)
		return 0;
	t->entry[t->nentries] = want;
	return ++t->nentries;
}

static struct inout_entry *
port_entry(struct inout_table *t, int port)
{
	uint16_t i = t->port[port];

	return i ? &t->entry[i - 1] : NULL;
}

int
register_inout(struct vmctx *ctx, const struct inout_port *iop)
{
	struct inout_table *t = machine_of(ctx)->io;
	int idx;

	if (!range_ok(iop) || !iop->handler) {
		errno = EINVAL;
		return -1;
	}
	for (int p = iop->port; p < iop->port + iop->size; p++) {
		if (t->port[p]) {
			errno = EEXIST;
			return -1;
		}
	}
	idx = entry_index(t, iop);
	if (!idx) {
		errno = ENOSPC;
		return -1;
	}
	for (int p = iop->port; p < iop->port + iop->size; p++)
		t->port[p] = (uint16_t)idx;
	return 0;
}

int
unregister_inout(struct vmctx *ctx, const struct inout_port *iop)
{
	struct inout_table *t = machine_of(ctx)->io;

	if (!range_ok(iop)) {
		errno = EINVAL;
		return -1;
	}
	for (int p = iop->port; p < iop->port + iop->size; p++) {
		const struct inout_entry *e = port_entry(t, p);

		/*
		 * A BAR the guest moved onto another device's ports failed to
		 * register there; moving it on must not take them away.
		 */
		if (iop->handler && e &&
		    (e->handler != iop->handler || e->arg != iop->arg))
			continue;
		t->port[p] = 0;
	}
	return 0;
}

const char *
inout_owner(struct vmctx *ctx, int port)
{
	struct inout_entry *e;

	if (port < 0 || port > 0xffff)
		return NULL;
	e = port_entry(machine_of(ctx)->io, port);
	return e ? e->name : NULL;
}

/* -1: nobody owns the port (or not in that direction). */
int
inout_dispatch(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax)
{
	struct inout_entry *e;

	if (port < 0 || port > 0xffff)
		return -1;
	e = port_entry(machine_of(ctx)->io, port);
	if (!e || !(e->flags & (in ? IOPORT_F_IN : IOPORT_F_OUT))) {
		if (in)
			*eax = 0xffffffff;
		return -1;
	}
	return e->handler(ctx, in, port, bytes, eax, e->arg);
}

int
emulate_inout(struct vmctx *ctx, struct vcpu *vcpu, struct vm_exit *x,
	      bool strict)
{
	int bytes = x->u.inout.bytes;
	uint8_t *data = x->u.inout.data;
	uint32_t mask = bytes == 4 ? 0xffffffffu : (1u << (bytes * 8)) - 1;

	(void)vcpu;
	if (bytes != 1 && bytes != 2 && bytes != 4)
		return -1;
	/* String ops come as count elements in the backend's buffer. */
	for (uint32_t i = 0; i < x->u.inout.count; i++) {
		uint32_t val = 0;
		int rc;

		if (!x->u.inout.in)
			memcpy(&val, data + i * bytes, bytes);
		rc = inout_dispatch(ctx, x->u.inout.in, x->u.inout.port, bytes,
				    &val);
		if (rc < 0 && strict)
			return -1;
		if (x->u.inout.in) {
			val &= mask;
			memcpy(data + i * bytes, &val, bytes);
		}
	}
	return 0;
}
