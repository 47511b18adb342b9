/*
 * pvpanic: QEMU's paravirtual panic notifier at port 0x505, which Linux's
 * pvpanic driver finds through the ACPI device QEMU0001. A guest kernel
 * that panics writes PVPANIC_PANICKED here; bhyve then ends the run with
 * its reset status (0), as a guest booted with panic=-1 would, instead of
 * spinning in the panic loop until a harness times out. The console shows
 * the panic, so a harness tells it apart from a clean reboot.
 */
#include <stdio.h>

#include "fwtab.h"
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

static const struct sysdev sysdev_pvpanic;

static void
pvpanic_deinit(void *arg)
{
	struct inout_port iop = {.port = PVPANIC_PORT, .size = 1};

	unregister_inout(arg, &iop);
}

static int
pvpanic_init(struct vmctx *ctx)
{
	struct inout_port iop = {"pvpanic", PVPANIC_PORT, 1, IOPORT_F_INOUT,
				 pvpanic_io, NULL};

	if (!config_get_bool(machine_config(ctx), "pvpanic", true))
		return 0;
	if (register_inout(ctx, &iop) < 0)
		return -1;
	if (machine_add_dev(ctx, &sysdev_pvpanic, ctx, pvpanic_deinit) < 0) {
		pvpanic_deinit(ctx);
		return -1;
	}
	return 0;
}

/*
 * As QEMU describes it: Linux's pvpanic-mmio driver binds to QEMU0001 and
 * takes its I/O resource.
 */
static int
pvpanic_dsdt(struct vmctx *ctx, const void *desc, struct aml *a)
{
	(void)desc;
	if (!config_get_bool(machine_config(ctx), "pvpanic", true))
		return 0;
	aml_device_begin(a, "PEVT");
	aml_name_string(a, "_HID", "QEMU0001");
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_io(a, PVPANIC_PORT, PVPANIC_PORT, 1, 1);
	aml_rt_end(a);
	aml_method_begin(a, "_STA", 0, false);
	aml_return(a);
	aml_integer(a, 0x0f);
	aml_end(a);
	aml_end(a);
	return 0;
}

static const struct fw_ops pvpanic_fw = {
    .dsdt_scope = FW_SCOPE_SB,
    .dsdt = pvpanic_dsdt,
};

static const struct sysdev sysdev_pvpanic = {
    .name = "pvpanic",
    .order = 50,
    .init = pvpanic_init,
    .fw = &pvpanic_fw,
};
SYSDEV_SET(sysdev_pvpanic);
