/* The host bridge at 0:0: a bridge class device with nothing to do. */
#include <stdlib.h>

#include "pci_emul.h"

static int
hostbridge_init(struct pci_devinst *pi, struct config *node)
{
	const char *vendor = config_get(node, "vendor");
	const char *devid = config_get(node, "devid");

	/* bhyve's ids (NetApp); -s 0,amd_hostbridge gives AMD's. */
	uint16_t v = pi->pi_d->pe_emu[0] == 'a' ? 0x1022 : 0x1275;
	uint16_t d = pi->pi_d->pe_emu[0] == 'a' ? 0x7432 : 0x1275;
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

static const struct pci_devemu pci_de_hostbridge = {
	.pe_emu = "hostbridge",
	.pe_init = hostbridge_init,
};
PCI_EMUL_SET(pci_de_hostbridge);

static const struct pci_devemu pci_de_amd_hostbridge = {
	.pe_emu = "amd_hostbridge",
	.pe_init = hostbridge_init,
};
PCI_EMUL_SET(pci_de_amd_hostbridge);
