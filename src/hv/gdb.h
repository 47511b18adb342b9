/*
 * bhyve -G: a gdb remote serial protocol stub (gdb's "Remote Protocol"
 * appendix) for the guest, one gdb thread per vCPU.
 *
 * All-stop: when the debugger has control every vCPU is parked between two
 * vm_run in gdb_vcpu_wait. The stub's socket is served by its own thread;
 * the protocol engine (gdb_input) is separate from the socket so that unit
 * tests and the fuzzer drive it against the mock backend.
 */
#ifndef GDB_H
#define GDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm.h"

struct gdb_stub;

/* Where replies go (the client socket; a buffer in tests). */
typedef void (*gdb_out_fn)(void *arg, const char *buf, size_t len);
/* 'k': end the guest. */
typedef void (*gdb_kill_fn)(void *arg);

/*
 * A stub for ncpus vCPUs of ctx. threaded: vCPU threads will call
 * gdb_vcpu_wait (bhyve); false: nothing runs the vCPUs (tests), stopping
 * is immediate. wait: the vCPUs stay parked until a debugger attaches.
 */
struct gdb_stub *gdb_create(struct vmctx *ctx, int ncpus, bool threaded,
			    bool wait);
void gdb_set_output(struct gdb_stub *g, gdb_out_fn fn, void *arg);
void gdb_set_kill(struct gdb_stub *g, gdb_kill_fn fn, void *arg);
void gdb_free(struct gdb_stub *g);

/* The protocol engine: a client connected, sent bytes, went away. */
void gdb_attach(struct gdb_stub *g);
void gdb_input(struct gdb_stub *g, const uint8_t *buf, size_t len);
void gdb_detach(struct gdb_stub *g);
/* A vCPU stopped (gdb_vcpu_debug): stop the rest and tell the client. */
void gdb_check_stop(struct gdb_stub *g);

/*
 * bhyve: listen on addr:port (gdb.address, gdb.port) and serve one client
 * at a time from a thread of its own. -1 with err set on failure.
 */
int gdb_listen(struct gdb_stub *g, const char *addr, const char *port,
	       char *err, size_t errlen);
int gdb_start(struct gdb_stub *g);
/* The run is over: release parked vCPUs and end the stub's thread. */
void gdb_stop(struct gdb_stub *g);

/*
 * The vCPU thread's side. gdb_vcpu_wait is called before every vm_run: it
 * parks while the debugger has control and applies the debug flags; true
 * means the run is over. gdb_vcpu_debug takes a VM_EXIT_DEBUG.
 */
void gdb_vcpu_start(struct gdb_stub *g, struct vcpu *vcpu);
bool gdb_vcpu_wait(struct gdb_stub *g, struct vcpu *vcpu);
void gdb_vcpu_debug(struct gdb_stub *g, struct vcpu *vcpu,
		    const struct vm_exit *x);
void gdb_vcpu_done(struct gdb_stub *g, struct vcpu *vcpu);

#endif
