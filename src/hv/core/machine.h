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
struct fw_ops;
struct snapshot_ops;

/*
 * A device instance the machine owns: registered by the init that made it,
 * found again by its descriptor (typed accessors wrap machine_dev in the
 * device's own file), undone by machine_free in reverse order.
 */
struct machine_dev {
	const void *desc; /* the device's descriptor: its key */
	void *state;
	void (*deinit)(void *state);
};

struct machine {
	struct vmctx *ctx;
	struct config *cfg;
	struct mevent *mev; /* the machine frees it, after its devices */
	struct inout_table *io;
	struct mem_table *mmio;
	struct pci_state *pci;
	int ncpus;
	bool strictio;
	/* An ISA bridge (the LPC bridge) claimed the legacy devices' bus. */
	bool isa_bridge;
	/* Set once, by the first machine_suspend. */
	pthread_mutex_t suspend_lock;
	bool suspended;
	enum vm_suspend_how how;
	int status; /* bhyve's exit status: 'how', or a device's own */
	struct machine_dev *devs;
	int ndevs, devs_cap;
};

struct machine *machine_create(struct vmctx *ctx, struct config *cfg);
/*
 * Undo everything the machine and its devices made: each registered
 * device's deinit, newest first (worker threads stop, fds close), then the
 * event loop and the port and MMIO maps. The vCPUs must have stopped. The
 * context and the config tree belong to the caller.
 */
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

/*
 * Register a device instance under its descriptor, with the function that
 * undoes it (NULL: nothing to undo). -1 when the descriptor already has an
 * instance or memory ran out; the caller still owns state then.
 */
int machine_add_dev(struct vmctx *ctx, const void *desc, void *state,
		    void (*deinit)(void *state));
/*
 * Undo one registered instance now (its deinit runs): a failed init that
 * registered early takes itself back, so that nothing of it remains.
 */
void machine_drop_dev(struct vmctx *ctx, const void *desc);
/* The instance registered under desc, or NULL. */
void *machine_dev(struct vmctx *ctx, const void *desc);
/*
 * The ISA bus has one bridge: the first claim wins, a second gets -1.
 * Firmware tables put the ISA devices under it, or in \_SB without one.
 */
int machine_claim_isa_bridge(struct vmctx *ctx);
bool machine_has_isa_bridge(struct vmctx *ctx);

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
 * controller's reset line, the PCI bus): init runs once at start-up, in
 * 'order', and registers what it made with machine_add_dev.
 */
struct sysdev {
	const char *name;
	int order;
	int (*init)(struct vmctx *ctx); /* NULL: nothing to set up */
	/* What the firmware tables say about it (fwtab.h); NULL: nothing. */
	const struct fw_ops *fw;
	/* Saving and restoring a running device (not yet: NULL). */
	const struct snapshot_ops *snapshot;
};
#define SYSDEV_SET(sym) DATA_SET(sysdev_set, sym)
SET_DECLARE(sysdev_set);
/* Every sysdev's init in ascending order; -1 at the first that fails. */
int sysdev_init_all(struct vmctx *ctx);
/* The sysdev of that name, or NULL (tests bring one up alone). */
const struct sysdev *sysdev_find(const char *name);
/* The sysdevs in init order, for walks that must follow it: the count. */
int sysdev_sorted(const struct sysdev **out, int max);

/*
 * Devices behind the LPC bridge, configured with -l NAME[,OPTIONS].
 * parse turns OPTIONS into config values under lpc.NAME (or lpc.NAME
 * itself); init runs when the lpc bridge comes up, for configured ones,
 * and registers what it made with machine_add_dev under the descriptor.
 */
struct lpc_dev {
	const char *name;
	const char *help;
	int (*parse)(struct config *cfg, const char *name, const char *opts,
		     char *err, size_t errlen);
	int (*init)(struct vmctx *ctx, const struct lpc_dev *d);
	/* What the firmware tables say about it (fwtab.h); NULL: nothing. */
	const struct fw_ops *fw;
	/* Saving and restoring a running device (not yet: NULL). */
	const struct snapshot_ops *snapshot;
};
#define LPC_DEV_SET(sym) DATA_SET(lpc_dev_set, sym)
SET_DECLARE(lpc_dev_set);
const struct lpc_dev *lpc_dev_find(const char *name);
/* The LPC devices sorted by name (help, firmware tables): the count. */
int lpc_dev_sorted(const struct lpc_dev **out, int max);
/* Whether -l configured it (an lpc.NAME node exists). */
bool lpc_dev_configured(struct vmctx *ctx, const struct lpc_dev *d);

/*
 * A device list as -s help and -l help print it: one name per line,
 * sorted, with the help text after a tab when there is one.
 */
void print_device_list(const char *const *names, const char *const *helps,
		       int n);

#endif
