/*
 * The PC's 8259 PICs and 8254 PIT. KVM emulates both in the kernel (the
 * vmm layer creates them with the VM), so there is nothing to set up here:
 * this file only says what the firmware tables tell the guest about them.
 */
#include "fwtab.h"
#include "machine.h"

static int
pic_pit_dsdt(struct vmctx *ctx, const void *desc, struct aml *a)
{
	(void)ctx;
	(void)desc;
	aml_device_begin(a, "PIC");
	aml_name_eisaid(a, "_HID", "PNP0000");
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_io(a, 0x20, 0x20, 1, 2);
	aml_rt_io(a, 0xa0, 0xa0, 1, 2);
	aml_rt_io(a, 0x4d0, 0x4d0, 1, 2); /* ELCR */
	aml_rt_irq(a, 2);
	aml_rt_end(a);
	aml_end(a);

	aml_device_begin(a, "PIT");
	aml_name_eisaid(a, "_HID", "PNP0100");
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_io(a, 0x40, 0x40, 1, 4);
	aml_rt_irq(a, 0);
	aml_rt_end(a);
	aml_end(a);
	return 0;
}

/* KVM routes the PIT (ISA IRQ 0) to IOAPIC pin 2, edge, active high. */
static const struct fw_isa_irq pit_irq[] = {
    {0, 2, FW_IRQ_HIGH | FW_IRQ_EDGE},
};

static const struct fw_ops pic_pit_fw = {
    .dsdt_scope = FW_SCOPE_ISA,
    .dsdt = pic_pit_dsdt,
    .isa_irqs = pit_irq,
    .nisa_irqs = 1,
};

/* First in every walk: the DSDT lists PIC and PIT before the RTC. */
static const struct sysdev atpic_atpit_sysdev = {
    .name = "atpic-atpit",
    .order = 0,
    .fw = &pic_pit_fw,
};
SYSDEV_SET(atpic_atpit_sysdev);
