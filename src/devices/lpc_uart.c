/*
 * com1..com4 behind the LPC bridge: a 16550 at the PC's legacy ports and
 * ISA interrupts, with a stdio or host-path backend.
 *
 *   -l com1,stdio            lpc.com1.path=stdio
 *   -l com2,/dev/pts/3       lpc.com2.path=/dev/pts/3
 *   -l com1,tcp=ADDR:PORT    lpc.com1.tcp=ADDR:PORT, or as bhyve_config(5)
 *                            spells it, lpc.com1.path=tcp=ADDR:PORT
 *   -l com1,stdio,key=value  lpc.com1.key=value as well
 *   -l com1                  a UART whose output goes nowhere (as bhyve)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwtab.h"
#include "inout.h"
#include "lpc_uart.h"
#include "machine.h"
#include "uart_backend.h"
#include "uart_emul.h"

struct com_port {
	const char *name;
	uint16_t base;
	int irq;
};

/* The PC/AT assignments, which guests probe without being told. */
static const struct com_port com_ports[] = {
    {"com1", 0x3f8, 4},
    {"com2", 0x2f8, 3},
    {"com3", 0x3e8, 4},
    {"com4", 0x2e8, 3},
};
#define NCOM (sizeof(com_ports) / sizeof(com_ports[0]))

struct lpc_uart {
	struct vmctx *ctx;
	const struct com_port *port;
	struct uart_softc *sc;
	struct uart_backend *be;
};

static const struct com_port *
com_find(const char *name)
{
	for (size_t i = 0; i < NCOM; i++)
		if (!strcmp(com_ports[i].name, name))
			return &com_ports[i];
	return NULL;
}

static void
com_intr_assert(void *arg)
{
	struct lpc_uart *u = arg;

	vm_irq_assert(u->ctx, u->port->irq);
}

static void
com_intr_deassert(void *arg)
{
	struct lpc_uart *u = arg;

	vm_irq_deassert(u->ctx, u->port->irq);
}

/*
 * THR writes with no visible side effect may be queued by KVM and handed
 * back at the next exit. Backends without coalescing (mock) refuse: fine.
 */
static void
com_coalesce(void *arg, bool on)
{
	struct lpc_uart *u = arg;

	(void)vm_coalesce_pio(u->ctx, u->port->base, 1, on);
}

/* The UART is byte-wide; wider accesses are not emulated (as bhyve). */
static int
com_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax, void *arg)
{
	struct lpc_uart *u = arg;
	int offset = port - u->port->base;

	(void)ctx;
	if (bytes != 1 || offset < 0 || offset >= UART_NREGS) {
		if (in)
			*eax = 0xffffffff;
		return -1;
	}
	if (in)
		*eax = uart_read(u->sc, offset);
	else
		uart_write(u->sc, offset, (uint8_t)*eax);
	return 0;
}

/* "path[,key=value...]": the first bare word is the path. */
static int
com_parse(struct config *cfg, const char *name, const char *opts, char *err,
	  size_t errlen)
{
	char *dup = strdup(opts), *save = NULL, *tok;
	char key[256];
	int rc = 0;

	/* The node itself, so that a bare "-l com1" is configured too. */
	snprintf(key, sizeof(key), "lpc.%s", name);
	if (!dup || !config_node_make(cfg, key)) {
		snprintf(err, errlen, "%s: out of memory", name);
		free(dup);
		return -1;
	}
	for (tok = strtok_r(dup, ",", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (eq) {
			*eq = '\0';
			snprintf(key, sizeof(key), "lpc.%s.%s", name, tok);
			rc = config_set(cfg, key, eq + 1, err, errlen);
		} else {
			snprintf(key, sizeof(key), "lpc.%s.path", name);
			rc = config_set(cfg, key, tok, err, errlen);
		}
	}
	free(dup);
	return rc;
}

static void
com_free(struct lpc_uart *u)
{
	uart_backend_close(u->be);
	uart_free(u->sc);
	free(u);
}

/*
 * lpc.NAME.path (stdio, a host path, or bhyve's "tcp=ADDR:PORT") or
 * lpc.NAME.tcp (what "-l com1,tcp=ADDR:PORT" sets); not both.
 */
static int
com_open_backend(struct lpc_uart *u, const char *name)
{
	struct config *cfg = machine_config(u->ctx);
	char key[64], err[512], *spec = NULL;
	const char *path, *tcp;

	snprintf(key, sizeof(key), "lpc.%s.path", name);
	path = config_get(cfg, key);
	snprintf(key, sizeof(key), "lpc.%s.tcp", name);
	tcp = config_get(cfg, key);
	if (path && tcp) {
		fprintf(stderr,
			"bhyve: %s: both a path (%s) and tcp=%s: give one\n",
			name, path, tcp);
		return -1;
	}
	if (tcp && asprintf(&spec, "tcp=%s", tcp) < 0)
		return -1;
	if (tcp)
		path = spec;
	if (!path)
		return 0;
	u->be = uart_backend_open(name, path, u->sc, machine_of(u->ctx)->mev,
				  err, sizeof(err));
	free(spec);
	if (!u->be) {
		fprintf(stderr, "bhyve: %s: %s\n", name, err);
		return -1;
	}
	uart_set_backend(u->sc, u->be);
	return 0;
}

/* machine_free: the last output out, the ports back, the UART gone. */
static void
com_deinit(void *arg)
{
	struct lpc_uart *u = arg;
	struct inout_port iop = {.port = u->port->base, .size = UART_NREGS};

	uart_flush(u->sc);
	uart_set_coalesce(u->sc, NULL);
	(void)vm_coalesce_pio(u->ctx, u->port->base, 1, false);
	unregister_inout(u->ctx, &iop);
	com_free(u);
}

static int
com_init(struct vmctx *ctx, const struct lpc_dev *d)
{
	const char *name = d->name;
	const struct com_port *cp = com_find(name);
	struct lpc_uart *u = calloc(1, sizeof(*u));
	struct inout_port iop;
	char key[32];

	if (!cp || !u ||
	    !(u->sc = uart_init(com_intr_assert, com_intr_deassert, u))) {
		fprintf(stderr, "bhyve: %s: cannot create the UART\n", name);
		free(u);
		return -1;
	}
	u->ctx = ctx;
	u->port = cp;
	if (com_open_backend(u, name) < 0) {
		com_free(u);
		return -1;
	}
	iop = (struct inout_port){cp->name,	  cp->base, UART_NREGS,
				  IOPORT_F_INOUT, com_io,   u};
	if (register_inout(ctx, &iop) < 0) {
		fprintf(stderr, "bhyve: %s: ports 0x%x-0x%x are taken\n", name,
			cp->base, cp->base + UART_NREGS - 1);
		com_free(u);
		return -1;
	}
	if (machine_add_dev(ctx, d, u, com_deinit) < 0) {
		fprintf(stderr, "bhyve: %s: already configured\n", name);
		com_deinit(u);
		return -1;
	}
	/* lpc.comN.coalesce=false keeps every THR write an exit (bench). */
	snprintf(key, sizeof(key), "lpc.%s.coalesce", cp->name);
	if (config_get_bool(machine_config(ctx), key, true))
		uart_set_coalesce(u->sc, com_coalesce);
	return 0;
}

/* A PNP0501 node per configured port, with its ports and IRQ. */
static int
com_dsdt(struct vmctx *ctx, const void *desc, struct aml *a)
{
	const struct com_port *cp =
	    com_find(((const struct lpc_dev *)desc)->name);
	char name[5] = "COM1";

	(void)ctx;
	if (!cp)
		return -1;
	name[3] = (char)('1' + (cp - com_ports));
	aml_device_begin(a, name);
	aml_name_eisaid(a, "_HID", "PNP0501");
	aml_name_integer(a, "_UID", (uint64_t)(cp - com_ports) + 1);
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_io(a, cp->base, cp->base, 1, UART_NREGS);
	aml_rt_irq(a, (uint8_t)cp->irq);
	aml_rt_end(a);
	aml_end(a);
	return 0;
}

static const struct fw_ops com_fw = {
    .dsdt_scope = FW_SCOPE_ISA,
    .dsdt = com_dsdt,
};

#define COM_HELP                                                               \
	"16550 UART: -l NAME,stdio, -l NAME,/dev/pts/N or "                    \
	"-l NAME,tcp=ADDR:PORT"
#define COM_DEV(n)                                                             \
	static const struct lpc_dev lpc_com##n = {                             \
	    .name = "com" #n,                                                  \
	    .help = COM_HELP,                                                  \
	    .parse = com_parse,                                                \
	    .init = com_init,                                                  \
	    .fw = &com_fw,                                                     \
	};                                                                     \
	LPC_DEV_SET(lpc_com##n)
COM_DEV(1);
COM_DEV(2);
COM_DEV(3);
COM_DEV(4);

struct uart_softc *
lpc_uart_softc(struct vmctx *ctx, const char *name)
{
	const struct lpc_dev *d = lpc_dev_find(name);
	struct lpc_uart *u = d ? machine_dev(ctx, d) : NULL;

	return u ? u->sc : NULL;
}

void
lpc_uart_flush_all(struct vmctx *ctx)
{
	for (size_t i = 0; i < NCOM; i++) {
		struct uart_softc *sc = lpc_uart_softc(ctx, com_ports[i].name);

		if (sc)
			uart_flush(sc);
	}
}
