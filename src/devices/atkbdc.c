/*
 * What a guest needs of the PC's keyboard controller without a keyboard:
 * its reset line. Port 0x64 command 0xFE pulses the CPU reset (the last
 * resort of Linux's reboot and of many boot loaders); the controller
 * always looks idle, with no data for the guest. Port 0x92 (System
 * Control Port A) is the other legacy reset: bit 0 written as 1 resets;
 * A20 (bit 1) always reads as enabled, since KVM never masks it.
 */
#include <stdint.h>
#include <stdio.h>

#include "inout.h"
#include "machine.h"

#define KBD_DATA_PORT 0x60
#define KBD_STS_PORT 0x64
#define KBD_CMD_RESET 0xfe
/* SYS (self-test passed), A2 (last write a command), not inhibited;
 * OBF and IBF clear: nothing to read, ready for a command. */
#define KBD_STATUS 0x1c
#define PORT92 0x92
#define PORT92_RESET 0x01
#define PORT92_A20 0x02

static int
bad_size(int in, uint32_t *eax)
{
	if (in)
		*eax = 0xffffffff;
	return -1;
}

static int
kbd_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax, void *arg)
{
	(void)arg;
	if (bytes != 1)
		return bad_size(in, eax);
	if (in)
		*eax = port == KBD_STS_PORT ? KBD_STATUS : 0;
	else if (port == KBD_STS_PORT && (*eax & 0xff) == KBD_CMD_RESET)
		machine_suspend(ctx, VM_SUSPEND_RESET);
	return 0;
}

static int
port92_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax,
	  void *arg)
{
	(void)port;
	(void)arg;
	if (bytes != 1)
		return bad_size(in, eax);
	if (in)
		*eax = PORT92_A20;
	else if (*eax & PORT92_RESET)
		machine_suspend(ctx, VM_SUSPEND_RESET);
	return 0;
}

static const struct inout_port atkbdc_ports[] = {
    {"atkbdc", KBD_DATA_PORT, 1, IOPORT_F_INOUT, kbd_io, NULL},
    {"atkbdc", KBD_STS_PORT, 1, IOPORT_F_INOUT, kbd_io, NULL},
    {"port92", PORT92, 1, IOPORT_F_INOUT, port92_io, NULL},
};
#define NPORTS (sizeof(atkbdc_ports) / sizeof(atkbdc_ports[0]))

static const struct sysdev atkbdc_sysdev;

/* The ports go back; registered only once all of them were taken. */
static void
atkbdc_deinit(void *arg)
{
	for (size_t i = 0; i < NPORTS; i++)
		unregister_inout(arg, &atkbdc_ports[i]);
}

static int
atkbdc_init(struct vmctx *ctx)
{
	for (size_t i = 0; i < NPORTS; i++) {
		if (register_inout(ctx, &atkbdc_ports[i]) < 0) {
			fprintf(stderr, "bhyve: atkbdc: port 0x%x is taken\n",
				atkbdc_ports[i].port);
			while (i-- > 0)
				unregister_inout(ctx, &atkbdc_ports[i]);
			return -1;
		}
	}
	if (machine_add_dev(ctx, &atkbdc_sysdev, ctx, atkbdc_deinit) < 0) {
		atkbdc_deinit(ctx);
		return -1;
	}
	return 0;
}

static const struct sysdev atkbdc_sysdev = {
    .name = "atkbdc",
    .order = 40,
    .init = atkbdc_init,
};
SYSDEV_SET(atkbdc_sysdev);
