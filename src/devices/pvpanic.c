/*
 * pvpanic: QEMU's paravirtual panic notifier at port 0x505, which Linux's
 * pvpanic driver finds through the ACPI device QEMU0001. A guest kernel
 * that panics writes PVPANIC_PANICKED here; bhyve then ends the run with
 * its reset status (0), as a guest booted with panic=-1 would, instead of
 * spinning in the panic loop until a harness times out. The console shows
 * the panic, so a harness tells it apart from a clean reboot.
 */
#include <stdio.h>

#include "inout.h"
#include "machine.h"

#define PVPANIC_PORT 0x505
#define PVPANIC_PANICKED (1u << 0)
#define PVPANIC_CRASH_LOADED (1u << 1)

static int
pvpanic_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax,
	   void *arg)
{
	(void)port;
	(void)arg;
	if (bytes != 1) {
		if (in)
			*eax = 0xffffffff;
		return -1;
	}
	if (in) {
		/* The events we understand. */
		*eax = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
		return 0;
	}
	if (*eax & PVPANIC_PANICKED) {
		fprintf(stderr, "bhyve: the guest kernel panicked (pvpanic): "
				"resetting\n");
		machine_suspend(ctx, VM_SUSPEND_RESET);
	}
	return 0;
}

static int
pvpanic_init(struct vmctx *ctx)
{
	struct inout_port iop = {"pvpanic", PVPANIC_PORT, 1, IOPORT_F_INOUT,
				 pvpanic_io, NULL};

	if (!config_get_bool(machine_config(ctx), "pvpanic", true))
		return 0;
	return register_inout(ctx, &iop);
}

static const struct sysdev sysdev_pvpanic = {"pvpanic", 50, pvpanic_init};
SYSDEV_SET(sysdev_pvpanic);
