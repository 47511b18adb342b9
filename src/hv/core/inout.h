/* Port I/O dispatch: each port owned by at most one handler. */
#ifndef INOUT_H
#define INOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm.h"

#define IOPORT_F_IN 0x1
#define IOPORT_F_OUT 0x2
#define IOPORT_F_INOUT (IOPORT_F_IN | IOPORT_F_OUT)

/*
 * in: 1 for a read, where the handler stores the value in *eax (its low
 * 'bytes' bytes); 0 for a write of *eax. Returns 0, or -1 when the access
 * is not emulated (a bad size, say), which strict mode (-e) treats as fatal.
 */
typedef int (*inout_func_t)(struct vmctx *ctx, int in, int port, int bytes,
			    uint32_t *eax, void *arg);

struct inout_port {
	const char *name;
	int port;
	int size;
	int flags;
	inout_func_t handler;
	void *arg;
};

struct inout_table;
struct inout_table *inout_table_create(void);
void inout_table_free(struct inout_table *t);

/* -1 with errno EEXIST if any port in the range already has a handler. */
int register_inout(struct vmctx *ctx, const struct inout_port *iop);
/*
 * Free the range's ports. With a handler, only those that handler and arg
 * own (what a BAR that failed to register over another device leaves is
 * that device's); without one, whoever owns them (a device's teardown).
 */
int unregister_inout(struct vmctx *ctx, const struct inout_port *iop);

/*
 * Carry out one port exit (string ops included). Unclaimed ports read as
 * all ones and drop writes, unless strict, where they return -1.
 */
int emulate_inout(struct vmctx *ctx, struct vcpu *vcpu, struct vm_exit *x,
		  bool strict);
/* Dispatch one access to a port's handler (for tests and coalesced I/O). */
int inout_dispatch(struct vmctx *ctx, int in, int port, int bytes,
		   uint32_t *eax);
/* The name of a port's owner, or NULL. */
const char *inout_owner(struct vmctx *ctx, int port);

#endif
