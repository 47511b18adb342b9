/* The LPC bridge (pci_lpc.c) and the -l option for the devices behind it. */
#ifndef PCI_LPC_H
#define PCI_LPC_H

#include <stddef.h>

#include "config.h"

/* -l NAME[,OPTIONS] into lpc.NAME...; -1 with err set. */
int lpc_parse(struct config *cfg, const char *opt, char *err, size_t errlen);
/* -l help */
void lpc_print_supported_devices(void);

#endif
