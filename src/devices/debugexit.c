/*
 * QEMU's isa-debug-exit: a write of v to its port ends the run, and bhyve
 * exits with status (v << 1) | 1, cut to 8 bits as exit(3) cuts it. Test
 * guests (kvm-unit-tests among them) report pass or fail this way; an odd
 * status can never be mistaken for bhyve's own 0, 2 or 4.
 *
 *   -l debug-exit[,port=N][,size=N]   lpc.debug-exit.port (default 0xf4),
 *                                     lpc.debug-exit.size (1, 2 or 4;
 *                                     default 4)
 *
 * Any write of 1, 2 or 4 bytes inside the range counts; reads return 0.
 * pc-testdev has the same exit at 0xf4: configuring both on one port is
 * refused at start-up, naming the port's owner.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inout.h"
#include "machine.h"

#define DEBUGEXIT_PORT 0xf4
#define DEBUGEXIT_SIZE 4

static int
debugexit_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax,
	     void *arg)
{
	/* arg carries the first port past the range: no state to free. */
	int end = (int)(uintptr_t)arg;

	if ((bytes != 1 && bytes != 2 && bytes != 4) || port + bytes > end) {
		if (in)
			*eax = 0xffffffff;
		return -1;
	}
	if (in) {
		*eax = 0;
		return 0;
	}
	machine_suspend_status(ctx, (int)(((*eax << 1) | 1) & 0xff));
	return 0;
}

/* port: 0..0xffff (any base strtoul takes); size: 1, 2 or 4. */
static int
parse_num(const char *key, const char *s, unsigned long max, unsigned long *out,
	  char *err, size_t errlen)
{
	char *end;

	errno = 0;
	*out = s ? strtoul(s, &end, 0) : 0;
	if (!s || !*s || errno || *end || *out > max) {
		snprintf(err, errlen, "debug-exit: bad %s '%s'", key,
			 s ? s : "");
		return -1;
	}
	return 0;
}

static int
settings(struct config *cfg, int *port, int *size, char *err, size_t errlen)
{
	const char *p = config_get(cfg, "lpc.debug-exit.port");
	const char *s = config_get(cfg, "lpc.debug-exit.size");
	unsigned long pv = DEBUGEXIT_PORT, sv = DEBUGEXIT_SIZE;

	if ((p && parse_num("port", p, 0xffff, &pv, err, errlen) < 0) ||
	    (s && parse_num("size", s, 4, &sv, err, errlen) < 0))
		return -1;
	if ((sv != 1 && sv != 2 && sv != 4) || pv + sv > 0x10000) {
		snprintf(err, errlen,
			 "debug-exit: size %lu at port 0x%lx: "
			 "use size 1, 2 or 4 below port 0x10000",
			 sv, pv);
		return -1;
	}
	*port = (int)pv;
	*size = (int)sv;
	return 0;
}

struct debugexit {
	struct vmctx *ctx;
	struct inout_port iop;
};

static void
debugexit_deinit(void *arg)
{
	struct debugexit *de = arg;

	unregister_inout(de->ctx, &de->iop);
	free(de);
}

/* The ports are taken: register the device with the machine, or undo. */
static int
debugexit_keep(struct vmctx *ctx, const struct lpc_dev *d,
	       const struct inout_port *iop)
{
	struct debugexit *de = malloc(sizeof(*de));

	if (!de) {
		unregister_inout(ctx, iop);
		return -1;
	}
	*de = (struct debugexit){ctx, *iop};
	if (machine_add_dev(ctx, d, de, debugexit_deinit) < 0) {
		debugexit_deinit(de);
		return -1;
	}
	return 0;
}

static int
debugexit_init(struct vmctx *ctx, const struct lpc_dev *d)
{
	struct config *cfg = machine_config(ctx);
	struct inout_port iop;
	char err[128];
	int port, size;

	if (settings(cfg, &port, &size, err, sizeof(err)) < 0) {
		fprintf(stderr, "bhyve: %s\n", err);
		return -1;
	}
	iop = (struct inout_port){
	    "debug-exit",   port,	  size,
	    IOPORT_F_INOUT, debugexit_io, (void *)(uintptr_t)(port + size)};
	if (register_inout(ctx, &iop) == 0)
		return debugexit_keep(ctx, d, &iop);
	for (int p = port; p < port + size; p++) {
		const char *owner = inout_owner(ctx, p);

		if (owner) {
			fprintf(stderr,
				"bhyve: debug-exit: port 0x%x is "
				"taken by %s\n",
				p, owner);
			return -1;
		}
	}
	fprintf(stderr, "bhyve: debug-exit: cannot use port 0x%x\n", port);
	return -1;
}

/* "port=N,size=N", either or both. */
static int
debugexit_parse(struct config *cfg, const char *name, const char *opts,
		char *err, size_t errlen)
{
	char *dup = strdup(opts), *save = NULL, *tok;
	char key[64];
	int port, size, rc = 0;

	if (!dup || !config_node_make(cfg, "lpc.debug-exit")) {
		free(dup);
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	for (tok = strtok_r(dup, ",", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq ||
		    (strncmp(tok, "port=", 5) && strncmp(tok, "size=", 5))) {
			snprintf(err, errlen,
				 "-l debug-exit,%s: expected "
				 "port=N and/or size=1|2|4",
				 opts);
			rc = -1;
			break;
		}
		*eq = '\0';
		snprintf(key, sizeof(key), "lpc.debug-exit.%s", tok);
		rc = config_set(cfg, key, eq + 1, err, errlen);
	}
	free(dup);
	if (rc == 0)
		rc = settings(cfg, &port, &size, err, errlen);
	return rc;
}

static const struct lpc_dev lpc_debugexit = {
    .name = "debug-exit",
    .help = "QEMU isa-debug-exit: -l debug-exit[,port=0xf4][,size=4]",
    .parse = debugexit_parse,
    .init = debugexit_init,
};
LPC_DEV_SET(lpc_debugexit);
