/*
 * The MP table (Intel MultiProcessor Specification 1.4, chapter 4) at the
 * start of the BIOS area, as bhyve builds it, for guests that look for it
 * before (or instead of) ACPI. Config x86.mptable=false (-Y) turns it off.
 */
#ifndef MPTBL_H
#define MPTBL_H

#include "vmm.h"

#define MPTABLE_BASE 0xf0000u
#define MPTABLE_MAX 0x1000u /* SMBIOS follows at 0xF1000 */

/* Build it for ncpus vCPUs after the PCI devices exist: 0, or -1 with a
 * message on stderr. */
int mptable_build(struct vmctx *ctx, int ncpus);

#endif
