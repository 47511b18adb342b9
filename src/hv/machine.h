/*
 * The machine: everything bhyve builds around one VM context. Devices reach
 * it through machine_of(ctx); there is no other global state.
 */
#ifndef MACHINE_H
#define MACHINE_H

#include <pthread.h>
#include <stdbool.h>

#include "config.h"
#include "vmm.h"

/* How a run ends, and bhyve(8)'s exit status for each. */
enum vm_suspend_how {
	VM_SUSPEND_RESET = 0,
	VM_SUSPEND_POWEROFF = 1,
	VM_SUSPEND_HALT = 2,
	VM_SUSPEND_TRIPLEFAULT = 3,
	VM_SUSPEND_ERROR = 4,
};

struct mevent;
struct inout_table;
struct mem_table;
struct pci_state;

struct machine {
	struct vmctx *ctx;
	struct config *cfg;
	struct mevent *mev;
	struct inout_table *io;
	struct mem_table *mmio;
	struct pci_state *pci;
	int ncpus;
	bool strictio;
	/* Set once, by the first machine_suspend. */
	pthread_mutex_t suspend_lock;
	bool suspended;
	enum vm_suspend_how how;
	int status; /* bhyve's exit status: 'how', or a device's own */
	/* Device-private state that other devices look up by name. */
	struct machine_slot {
		const char *name;
		void *ptr;
	} slots[32];
};

struct machine *machine_create(struct vmctx *ctx, struct config *cfg);
void machine_free(struct machine *m);
static inline struct machine *
machine_of(struct vmctx *ctx)
{
	return vm_get_cookie(ctx);
}
static inline struct config *
machine_config(struct vmctx *ctx)
{
	return machine_of(ctx)->cfg;
}

/* End the run with bhyve's status for 'how' (the first call wins). */
void machine_suspend(struct vmctx *ctx, enum vm_suspend_how how);
bool machine_suspended(struct vmctx *ctx);
/*
 * End the run with an exit status of a device's choosing (debug-exit:
 * (v << 1) | 1); 'how' is recorded as VM_SUSPEND_POWEROFF.
 */
void machine_suspend_status(struct vmctx *ctx, int status);

/* A named pointer shared between devices (e.g. "pm" for the power button). */
int machine_set_slot(struct vmctx *ctx, const char *name, void *ptr);
void *machine_get_slot(struct vmctx *ctx, const char *name);

/*
 * Linker sets, as bhyve's: a device declares a descriptor in its own file
 * and start-up finds them all between __start_ and __stop_ symbols.
 */
#define DATA_SET(set, sym)                                                     \
	static const void *__##set##_##sym                                     \
		__attribute__((section(#set), used)) = &(sym)
#define SET_DECLARE(set)                                                       \
	extern const void *__start_##set[] __attribute__((weak));             \
	extern const void *__stop_##set[] __attribute__((weak))
#define SET_FOREACH(p, set) for (p = __start_##set; p < __stop_##set; p++)

/*
 * Platform devices that are always there (rtc, pm, post, the keyboard
 * controller's reset line): init runs once at start-up, in 'order'.
 */
struct sysdev {
	const char *name;
	int order;
	int (*init)(struct vmctx *ctx);
};
#define SYSDEV_SET(sym) DATA_SET(sysdev_set, sym)
SET_DECLARE(sysdev_set);
int sysdev_init_all(struct vmctx *ctx);

/*
 * Devices behind the LPC bridge, configured with -l NAME[,OPTIONS].
 * parse turns OPTIONS into config values under lpc.NAME (or lpc.NAME
 * itself); init runs when the lpc bridge comes up, for configured ones.
 */
struct lpc_dev {
	const char *name;
	const char *help;
	int (*parse)(struct config *cfg, const char *name, const char *opts,
		     char *err, size_t errlen);
	int (*init)(struct vmctx *ctx, const char *name);
};
#define LPC_DEV_SET(sym) DATA_SET(lpc_dev_set, sym)
SET_DECLARE(lpc_dev_set);
const struct lpc_dev *lpc_dev_find(const char *name);

#endif
