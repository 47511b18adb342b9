/*
 * Port 0x80, where firmware writes POST codes and Linux's outb_p writes
 * for a delay. Writes are kept; reads return the last code written (0
 * before any), as a POST card shows it. The writes have no other effect,
 * so KVM may queue them without an exit (where it can).
 */
#include <stdint.h>
#include <stdlib.h>

#include "inout.h"
#include "machine.h"

#define POST_PORT 0x80

struct post {
	struct vmctx *ctx;
	uint8_t code;
};

static const struct sysdev post_sysdev;

static int
post_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax,
	void *arg)
{
	struct post *p = arg;

	(void)ctx;
	(void)port;
	if (bytes != 1) {
		if (in)
			*eax = 0xffffffff;
		return -1;
	}
	if (in)
		*eax = __atomic_load_n(&p->code, __ATOMIC_RELAXED);
	else
		__atomic_store_n(&p->code, (uint8_t)*eax, __ATOMIC_RELAXED);
	return 0;
}

static void
post_deinit(void *arg)
{
	struct post *p = arg;
	struct inout_port iop = {.port = POST_PORT, .size = 1};

	(void)vm_coalesce_pio(p->ctx, POST_PORT, 1, false);
	unregister_inout(p->ctx, &iop);
	free(p);
}

static int
post_init(struct vmctx *ctx)
{
	struct post *p = calloc(1, sizeof(*p));
	struct inout_port iop = {"post",	 POST_PORT, 1,
				 IOPORT_F_INOUT, post_io,   p};

	if (!p)
		return -1;
	p->ctx = ctx;
	if (register_inout(ctx, &iop) < 0) {
		free(p);
		return 0; /* someone else (a debug port) has it: fine */
	}
	if (machine_add_dev(ctx, &post_sysdev, p, post_deinit) < 0) {
		post_deinit(p);
		return -1;
	}
	(void)vm_coalesce_pio(ctx, POST_PORT, 1, true);
	return 0;
}

static const struct sysdev post_sysdev = {
    .name = "post",
    .order = 30,
    .init = post_init,
};
SYSDEV_SET(post_sysdev);
