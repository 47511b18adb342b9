/*
 * The ACPI fixed hardware of bhyve's platform (ACPI 6.4 §4.8), after
 * bhyve's pm.c: the SMI command port that hands the platform to the OS,
 * the PM1a event and control blocks, the PM timer, the 0xCF9 reset
 * register and the power button, which SIGTERM presses.
 *
 * The PM1 blocks take byte, word and dword accesses inside a block, as
 * ACPICA may use any of them; an access that runs off the end of a block
 * is not emulated.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fwtab.h"
#include "inout.h"
#include "machine.h"
#include "mevent.h"
#include "pm.h"

/* Bits that read as zero in PM1_CNT (bhyve's PM1_ALWAYS_ZERO). */
#define PM1_CNT_ALWAYS_ZERO 0xc003
/* The events we can raise; the others stay disabled. */
/*
 * RTC_EN (bit 10) is writable so that Linux can enable the RTC event (it
 * complains otherwise); RTC_STS is simply never raised.
 */
#define PM1_RTC_EN 0x0400
#define PM1_EN_MASK (PM1_PWRBTN_STS | PM1_GBL_STS | PM1_RTC_EN)
#define RESET_CPU 0x04	/* RST_CPU in 0xCF9 (PIIX4 datasheet 4.1.2) */
#define RESET_KEEP 0x0a /* SYS_RST and FULL_RST read back */

struct pm {
	pthread_mutex_t lock;
	struct vmctx *ctx;
	uint16_t sts, en, cnt;
	uint8_t smi, reset;
	bool sci;
	bool ports; /* registered, so pm_deinit releases them */
	struct mevent_ev *sigterm;
};

static const struct sysdev pm_sysdev;

static struct pm *
pm_of(struct vmctx *ctx)
{
	return machine_dev(ctx, &pm_sysdev);
}

/* The SCI is level: it stays asserted while an enabled event is pending. */
static void
update_sci(struct pm *pm)
{
	bool on = (pm->sts & pm->en) && (pm->cnt & PM1_SCI_EN);

	if (on == pm->sci)
		return;
	pm->sci = on;
	if (on)
		vm_irq_assert(pm->ctx, PM_SCI_IRQ);
	else
		vm_irq_deassert(pm->ctx, PM_SCI_IRQ);
}

/* A byte, word or dword inside a block of len bytes, or false. */
static bool
access_ok(int off, int bytes, int len)
{
	return (bytes == 1 || bytes == 2 || bytes == 4) && off >= 0 &&
	       off + bytes <= len;
}

static uint32_t
byte_mask(int off, int bytes)
{
	return (bytes == 4 ? 0xffffffffu : (1u << (bytes * 8)) - 1)
	       << (off * 8);
}

static uint32_t
pm_timer(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* 32 bits wide (TMR_VAL_EXT in the FADT), wrapping. */
	return (uint32_t)((uint64_t)ts.tv_sec * PM_TMR_FREQ +
			  (uint64_t)ts.tv_nsec * PM_TMR_FREQ / 1000000000u);
}

/*
 * PM1_CNT: SCI_EN belongs to the SMI command port, SLP_EN is write-only.
 * SLP_EN with SLP_TYP 5 (the DSDT's _S5) powers off; other sleep states
 * are not offered, so they are ignored.
 */
static void
cnt_write(struct pm *pm, uint16_t val, uint16_t mask)
{
	uint16_t v = (pm->cnt & ~mask) | (val & mask);

	pm->cnt =
	    (pm->cnt & PM1_SCI_EN) | (v & ~(PM1_SLP_EN | PM1_CNT_ALWAYS_ZERO));
	if ((val & mask & PM1_SLP_EN) &&
	    (pm->cnt & PM1_SLP_TYP) >> PM1_SLP_TYP_SHIFT == PM_SLP_TYP_S5)
		machine_suspend(pm->ctx, VM_SUSPEND_POWEROFF);
}

/* PM1a_EVT_BLK: STS (write 1 to clear) in the low word, EN in the high. */
static void
evt_write(struct pm *pm, uint32_t val, uint32_t mask)
{
	pm->sts &= ~(val & mask & 0xffff);
	pm->en = (pm->en & ~(mask >> 16)) | ((val & mask) >> 16);
	pm->en &= PM1_EN_MASK;
}

static int
pm1_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax, void *arg)
{
	struct pm *pm = arg;
	int base = port < PM1A_CNT_BLK ? PM1A_EVT_BLK
		   : port < PM_TMR_BLK ? PM1A_CNT_BLK
				       : PM_TMR_BLK;
	int len = base == PM1A_CNT_BLK ? PM1A_CNT_LEN : 4;
	int off = port - base;
	uint32_t mask, reg;

	(void)ctx;
	if (!access_ok(off, bytes, len)) {
		if (in)
			*eax = 0xffffffff;
		return -1;
	}
	mask = byte_mask(off, bytes);
	pthread_mutex_lock(&pm->lock);
	if (base == PM1A_EVT_BLK)
		reg = pm->sts | (uint32_t)pm->en << 16;
	else if (base == PM1A_CNT_BLK)
		reg = pm->cnt;
	else
		reg = pm_timer();
	if (in)
		*eax = (reg & mask) >> (off * 8);
	else if (base == PM1A_EVT_BLK)
		evt_write(pm, *eax << (off * 8), mask);
	else if (base == PM1A_CNT_BLK)
		cnt_write(pm, (uint16_t)(*eax << (off * 8)), (uint16_t)mask);
	/* The timer is read-only. */
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	return 0;
}

/* The OS asks for the platform with ACPI_ENABLE (ACPI 6.4 §4.8.2.1). */
static int
smi_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax, void *arg)
{
	struct pm *pm = arg;

	(void)ctx;
	(void)port;
	if (bytes != 1) {
		if (in)
			*eax = 0xffffffff;
		return -1;
	}
	pthread_mutex_lock(&pm->lock);
	if (in) {
		*eax = pm->smi;
	} else {
		pm->smi = (uint8_t)*eax;
		if (pm->smi == PM_ACPI_ENABLE)
			pm->cnt |= PM1_SCI_EN;
		else if (pm->smi == PM_ACPI_DISABLE)
			pm->cnt &= ~PM1_SCI_EN;
		update_sci(pm);
	}
	pthread_mutex_unlock(&pm->lock);
	return 0;
}

/* 0xCF9: hard and soft resets are the same here, as in bhyve. */
static int
reset_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax,
	 void *arg)
{
	struct pm *pm = arg;

	(void)port;
	if (bytes != 1) {
		if (in)
			*eax = 0xffffffff;
		return -1;
	}
	pthread_mutex_lock(&pm->lock);
	if (in)
		*eax = pm->reset;
	else
		pm->reset = *eax & RESET_KEEP;
	pthread_mutex_unlock(&pm->lock);
	if (!in && (*eax & RESET_CPU))
		machine_suspend(ctx, VM_SUSPEND_RESET);
	return 0;
}

void
pm_power_button(struct vmctx *ctx)
{
	struct pm *pm = pm_of(ctx);
	bool acpi;

	if (!pm)
		return;
	pthread_mutex_lock(&pm->lock);
	acpi = pm->cnt & PM1_SCI_EN;
	if (acpi) {
		pm->sts |= PM1_PWRBTN_STS;
		update_sci(pm);
	}
	pthread_mutex_unlock(&pm->lock);
	if (acpi)
		return;
	/* Nobody in the guest would hear the button: stop it ourselves. */
	fprintf(stderr, "bhyve: SIGTERM before the guest enabled ACPI: "
			"stopping\n");
	machine_suspend(ctx, VM_SUSPEND_ERROR);
}

static void
sigterm_event(int sig, enum ev_type type, void *arg)
{
	(void)sig;
	(void)type;
	pm_power_button(arg);
}

#define NPORTS 4

static void
pm_ports(struct pm *pm, struct inout_port ports[NPORTS])
{
	ports[0] = (struct inout_port){"smi_cmd",      PM_SMI_CMD, 1,
				       IOPORT_F_INOUT, smi_io,	   pm};
	ports[1] = (struct inout_port){
	    "pm1a",	    PM1A_EVT_BLK, PM1A_EVT_LEN + PM1A_CNT_LEN,
	    IOPORT_F_INOUT, pm1_io,	  pm};
	ports[2] = (struct inout_port){"pm_tmr",       PM_TMR_BLK, PM_TMR_LEN,
				       IOPORT_F_INOUT, pm1_io,	   pm};
	ports[3] = (struct inout_port){"reset",	       PM_RESET_PORT, 1,
				       IOPORT_F_INOUT, reset_io,      pm};
}

static void
pm_deinit(void *arg)
{
	struct pm *pm = arg;
	struct inout_port ports[NPORTS];

	if (pm->sigterm)
		mevent_delete(pm->sigterm);
	pm_ports(pm, ports);
	for (int i = 0; pm->ports && i < NPORTS; i++)
		unregister_inout(pm->ctx, &ports[i]);
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

static int
pm_register(struct vmctx *ctx, struct pm *pm)
{
	struct inout_port ports[NPORTS];

	pm_ports(pm, ports);
	for (int i = 0; i < NPORTS; i++) {
		if (register_inout(ctx, &ports[i]) == 0)
			continue;
		fprintf(stderr, "bhyve: pm: port 0x%x is taken\n",
			ports[i].port);
		while (--i >= 0)
			unregister_inout(ctx, &ports[i]);
		return -1;
	}
	pm->ports = true;
	return 0;
}

static int
pm_init(struct vmctx *ctx)
{
	struct machine *m = machine_of(ctx);
	struct pm *pm = calloc(1, sizeof(*pm));

	if (!pm)
		return -1;
	pthread_mutex_init(&pm->lock, NULL);
	pm->ctx = ctx;
	if (machine_add_dev(ctx, &pm_sysdev, pm, pm_deinit) < 0) {
		pm_deinit(pm);
		return -1;
	}
	if (pm_register(ctx, pm) < 0) {
		machine_drop_dev(ctx, &pm_sysdev);
		return -1;
	}
	if (m->mev)
		pm->sigterm =
		    mevent_add(m->mev, SIGTERM, EVF_SIGNAL, sigterm_event, ctx);
	return 0;
}

/* \_S5 (ACPI 6.4 §7.4.2): SLP_TYP for PM1a and PM1b; S5 powers off. */
static int
pm_dsdt(struct vmctx *ctx, const void *desc, struct aml *a)
{
	(void)ctx;
	(void)desc;
	aml_name(a, "_S5");
	aml_package_begin(a, 4);
	aml_integer(a, PM_SLP_TYP_S5);
	aml_integer(a, PM_SLP_TYP_S5);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a);
	return 0;
}

/* The FADT points the OS at every block (§5.2.9). */
static void
pm_fadt(struct vmctx *ctx, const void *desc, struct fw_fadt *f)
{
	(void)ctx;
	(void)desc;
	f->sci_irq = PM_SCI_IRQ;
	f->smi_cmd = PM_SMI_CMD;
	f->acpi_enable = PM_ACPI_ENABLE;
	f->acpi_disable = PM_ACPI_DISABLE;
	f->pm1a_evt_blk = PM1A_EVT_BLK;
	f->pm1a_evt_len = PM1A_EVT_LEN;
	f->pm1a_cnt_blk = PM1A_CNT_BLK;
	f->pm1a_cnt_len = PM1A_CNT_LEN;
	f->pm_tmr_blk = PM_TMR_BLK;
	f->pm_tmr_len = PM_TMR_LEN;
	f->reset_port = PM_RESET_PORT;
	f->reset_value = PM_RESET_VALUE;
}

/*
 * The SCI, IRQ 9 -> GSI 9, level, active high: the line is held asserted
 * (high) while an enabled event is pending, and KVM's IOAPIC takes the
 * level as given, so active high says what happens (QEMU describes its
 * SCI the same way).
 */
static const struct fw_isa_irq pm_sci[] = {
    {PM_SCI_IRQ, PM_SCI_IRQ, FW_IRQ_HIGH | FW_IRQ_LEVEL},
};

static const struct fw_ops pm_fw = {
    .dsdt_scope = FW_SCOPE_ROOT,
    .dsdt = pm_dsdt,
    .fadt = pm_fadt,
    .isa_irqs = pm_sci,
    .nisa_irqs = 1,
};

static const struct sysdev pm_sysdev = {
    .name = "pm",
    .order = 20,
    .init = pm_init,
    .fw = &pm_fw,
};
SYSDEV_SET(pm_sysdev);
