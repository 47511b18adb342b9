/*
 * Port I/O dispatch: a table of 64K ports, each owned by at most one
 * handler. The table is sparse in practice (untouched pages stay unmapped).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inout.h"
#include "machine.h"

struct inout_entry {
	inout_func_t handler;
	void *arg;
	const char *name;
	int flags;
};

struct inout_table {
	struct inout_entry port[65536];
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

int
register_inout(struct vmctx *ctx, const struct inout_port *iop)
{
	struct inout_table *t = machine_of(ctx)->io;

	if (!range_ok(iop) || !iop->handler) {
		errno = EINVAL;
		return -1;
	}
	for (int p = iop->port; p < iop->port + iop->size; p++) {
		if (t->port[p].handler) {
			errno = EEXIST;
			return -1;
		}
	}
	for (int p = iop->port; p < iop->port + iop->size; p++)
		t->port[p] = (struct inout_entry){iop->handler, iop->arg,
						  iop->name, iop->flags};
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
	for (int p = iop->port; p < iop->port + iop->size; p++)
		memset(&t->port[p], 0, sizeof(t->port[p]));
	return 0;
}

const char *
inout_owner(struct vmctx *ctx, int port)
{
	if (port < 0 || port > 0xffff)
		return NULL;
	return machine_of(ctx)->io->port[port].name;
}

/* -1: nobody owns the port (or not in that direction). */
int
inout_dispatch(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax)
{
	struct inout_entry *e;

	if (port < 0 || port > 0xffff)
		return -1;
	e = &machine_of(ctx)->io->port[port];
	if (!e->handler || !(e->flags & (in ? IOPORT_F_IN : IOPORT_F_OUT))) {
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
