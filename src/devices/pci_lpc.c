/*
 * The LPC (PCI-ISA) bridge, and the -l option for the devices behind it.
 * Each LPC device (com1..com4, bootrom, fwcfg, pc-testdev...) registers an
 * lpc_dev in its own file; the bridge starts the configured ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwtab.h"
#include "pci_emul.h"
#include "pci_lpc.h"

#define MAX_LPC_DEVS 64

static int
lpc_init(struct pci_devinst *pi, struct config *node)
{
	struct vmctx *ctx = pi->pi_vmctx;
	const struct lpc_dev *d[MAX_LPC_DEVS];
	int n = lpc_dev_sorted(d, MAX_LPC_DEVS);

	(void)node;
	if (pi->pi_bus != 0) {
		fprintf(stderr, "bhyve: lpc: the LPC bridge must be on bus 0\n");
		return -1;
	}
	if (machine_claim_isa_bridge(ctx) < 0) {
		fprintf(stderr, "bhyve: lpc: only one LPC bridge is allowed\n");
		return -1;
	}
	/* PIIX3's ISA bridge, which every PC OS knows. */
	pci_set_cfgdata16(pi, 0x00, 0x8086);
	pci_set_cfgdata16(pi, 0x02, 0x7000);
	pci_set_cfgdata8(pi, 0x0b, 0x06); /* bridge */
	pci_set_cfgdata8(pi, 0x0a, 0x01); /* ISA */
	/* Each registers itself with the machine, which undoes it. */
	for (int i = 0; i < n; i++)
		if (lpc_dev_configured(ctx, d[i]) && d[i]->init &&
		    d[i]->init(ctx, d[i]) < 0)
			return -1;
	return 0;
}

/* The ISA bus under PCI0, holding every ISA device's objects. */
static int
lpc_write_dsdt(struct pci_devinst *pi, struct aml *a)
{
	aml_device_begin(a, "ISA");
	aml_name_integer(a, "_ADR", (uint32_t)pi->pi_slot << 16 | pi->pi_func);
	if (fw_dsdt(pi->pi_vmctx, FW_SCOPE_ISA, a) < 0)
		return -1;
	aml_end(a);
	return 0;
}

static const struct pci_devemu pci_de_lpc = {
    .pe_emu = "lpc",
    .pe_init = lpc_init,
    .pe_write_dsdt = lpc_write_dsdt,
};
PCI_EMUL_SET(pci_de_lpc);

/* -l devices live behind the LPC bridge: after PCI, one must be there. */
static int
lpc_check(struct vmctx *ctx)
{
	struct config *lpc = config_node(machine_config(ctx), "lpc");

	if (!lpc || config_is_leaf(lpc) || machine_has_isa_bridge(ctx))
		return 0;
	fprintf(stderr, "bhyve: -l devices need the LPC bridge: add -s "
			"31,lpc (or -s 1,lpc)\n");
	return -1;
}

static const struct sysdev lpc_check_sysdev = {
    .name = "lpc-check",
    .order = 90,
    .init = lpc_check,
};
SYSDEV_SET(lpc_check_sysdev);

/* -l help: the registered devices, sorted (link order is arbitrary). */
void
lpc_print_supported_devices(void)
{
	const struct lpc_dev *d[MAX_LPC_DEVS];
	const char *names[MAX_LPC_DEVS], *helps[MAX_LPC_DEVS];
	int n = lpc_dev_sorted(d, MAX_LPC_DEVS);

	for (int i = 0; i < n; i++) {
		names[i] = d[i]->name;
		helps[i] = d[i]->help;
	}
	print_device_list(names, helps, n);
}
/* -l NAME[,OPTIONS] */
int
lpc_parse(struct config *cfg, const char *opt, char *err, size_t errlen)
{
	char name[32];
	const char *comma = strchr(opt, ',');
	size_t n = comma ? (size_t)(comma - opt) : strlen(opt);
	const struct lpc_dev *d;
	char path[64];

	if (n == 0 || n >= sizeof(name)) {
		snprintf(err, errlen, "-l %s: expected device[,options]", opt);
		return -1;
	}
	memcpy(name, opt, n);
	name[n] = '\0';
	d = lpc_dev_find(name);
	if (!d) {
		snprintf(err, errlen, "-l %s: unknown LPC device '%s' (see -l "
				      "help)",
			 opt, name);
		return -1;
	}
	snprintf(path, sizeof(path), "lpc.%s", name);
	if (config_node(cfg, path)) {
		snprintf(err, errlen, "-l %s: %s is already configured", opt,
			 name);
		return -1;
	}
	if (d->parse)
		return d->parse(cfg, name, comma ? comma + 1 : "", err, errlen);
	return config_set(cfg, path, "true", err, errlen);
}
