/* The host bridge at 0:0: a bridge class device with nothing to do. */
#include <stdlib.h>

#include "pci_emul.h"

/* The ids a bridge reports unless vendor= and devid= say otherwise. */
static int
bridge_init(struct pci_devinst *pi, struct config *node, uint16_t v,
	    uint16_t d)
{
	const char *vendor = config_get(node, "vendor");
	const char *devid = config_get(node, "devid");

	if (vendor)
		v = (uint16_t)strtoul(vendor, NULL, 0);
	if (devid)
		d = (uint16_t)strtoul(devid, NULL, 0);
	pci_set_cfgdata16(pi, 0x00, v);
	pci_set_cfgdata16(pi, 0x02, d);
	pci_set_cfgdata8(pi, 0x0b, 0x06); /* class: bridge */
	pci_set_cfgdata8(pi, 0x0a, 0x00); /* subclass: host */
	pci_set_cfgdata8(pi, 0x0e, 0x00); /* header type 0 */
	return 0;
}

/* bhyve's ids (NetApp). */
static int
hostbridge_init(struct pci_devinst *pi, struct config *node)
{
	return bridge_init(pi, node, 0x1275, 0x1275);
}

/* -s 0,amd_hostbridge: AMD's. */
static int
amd_hostbridge_init(struct pci_devinst *pi, struct config *node)
{
	return bridge_init(pi, node, 0x1022, 0x7432);
}

static const struct pci_devemu pci_de_hostbridge = {
	.pe_emu = "hostbridge",
	.pe_init = hostbridge_init,
};
PCI_EMUL_SET(pci_de_hostbridge);

static const struct pci_devemu pci_de_amd_hostbridge = {
	.pe_emu = "amd_hostbridge",
	.pe_init = amd_hostbridge_init,
};
PCI_EMUL_SET(pci_de_amd_hostbridge);
