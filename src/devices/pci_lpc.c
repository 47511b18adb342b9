/*
 * The LPC (PCI-ISA) bridge, and the -l option for the devices behind it.
 * Each LPC device (com1..com4, bootrom, fwcfg, pc-testdev...) registers an
 * lpc_dev in its own file; the bridge starts the configured ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pci_emul.h"

static int
lpc_init(struct pci_devinst *pi, struct config *node)
{
	struct vmctx *ctx = pi->pi_vmctx;
	struct config *lpc = config_node(machine_config(ctx), "lpc");
	const void **p;

	(void)node;
	if (pi->pi_bus != 0) {
		fprintf(stderr, "bhyve: lpc: the LPC bridge must be on bus 0\n");
		return -1;
	}
	if (machine_get_slot(ctx, "lpc")) {
		fprintf(stderr, "bhyve: lpc: only one LPC bridge is allowed\n");
		return -1;
	}
	machine_set_slot(ctx, "lpc", pi);
	/* PIIX3's ISA bridge, which every PC OS knows. */
	pci_set_cfgdata16(pi, 0x00, 0x8086);
	pci_set_cfgdata16(pi, 0x02, 0x7000);
	pci_set_cfgdata8(pi, 0x0b, 0x06); /* bridge */
	pci_set_cfgdata8(pi, 0x0a, 0x01); /* ISA */
	if (!lpc)
		return 0;
	SET_FOREACH(p, lpc_dev_set)
	{
		const struct lpc_dev *d = *p;
		if (config_node(lpc, d->name) && d->init &&
		    d->init(ctx, d->name) < 0)
			return -1;
	}
	return 0;
}

static const struct pci_devemu pci_de_lpc = {
	.pe_emu = "lpc",
	.pe_init = lpc_init,
};
PCI_EMUL_SET(pci_de_lpc);

static int
lpc_dev_cmp(const void *a, const void *b)
{
	const struct lpc_dev *x = *(const struct lpc_dev *const *)a;
	const struct lpc_dev *y = *(const struct lpc_dev *const *)b;

	return strcmp(x->name, y->name);
}

/* -l help: the registered devices, sorted (link order is arbitrary). */
void
lpc_print_supported_devices(void)
{
	const struct lpc_dev *list[64];
	const void **p;
	size_t n = 0;

	SET_FOREACH(p, lpc_dev_set)
	{
		if (n < sizeof(list) / sizeof(list[0]))
			list[n++] = *p;
	}
	qsort(list, n, sizeof(list[0]), lpc_dev_cmp);
	for (size_t i = 0; i < n; i++)
		printf("%s%s%s\n", list[i]->name, list[i]->help ? "\t" : "",
		       list[i]->help ? list[i]->help : "");
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
