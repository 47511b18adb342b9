/*
 * The ACPI PM block (pm.c): where its registers are, and the power button.
 * It describes itself to the firmware tables (the FADT, \_S5, the SCI).
 */
#ifndef PM_H
#define PM_H

#include "vmm.h"

/* Where bhyve puts them; the FADT (ACPI 6.4 §5.2.9) points here. */
#define PM_SMI_CMD 0xb2
#define PM_ACPI_ENABLE 0xa0
#define PM_ACPI_DISABLE 0xa1
#define PM1A_EVT_BLK 0x400
#define PM1A_EVT_LEN 4
#define PM1A_CNT_BLK 0x404
#define PM1A_CNT_LEN 2
#define PM_TMR_BLK 0x408
#define PM_TMR_LEN 4
#define PM_RESET_PORT 0xcf9
#define PM_RESET_VALUE 0x06 /* the FADT's RESET_VALUE */
#define PM_SCI_IRQ 9
#define PM_SLP_TYP_S5 5 /* what the DSDT's _S5 package must say */
#define PM_TMR_FREQ 3579545

/* PM1 status and enable bits (ACPI 6.4 §4.8.3.1). */
#define PM1_TMR_STS 0x0001
#define PM1_GBL_STS 0x0020
#define PM1_PWRBTN_STS 0x0100
#define PM1_SLPBTN_STS 0x0200
#define PM1_WAK_STS 0x8000
/* PM1 control bits (ACPI 6.4 §4.8.3.2.1). */
#define PM1_SCI_EN 0x0001
#define PM1_SLP_TYP_SHIFT 10
#define PM1_SLP_TYP 0x1c00
#define PM1_SLP_EN 0x2000

/*
 * Press the power button (what SIGTERM does): with ACPI enabled by the
 * guest, PWRBTN_STS and an SCI; before that, stop the VM with status 4.
 */
void pm_power_button(struct vmctx *ctx);

#endif
