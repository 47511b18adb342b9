/*
 * ACPI tables (ACPI 6.4 §5.2) for bhyve's PC: RSDP, RSDT, XSDT, MADT,
 * FADT, HPET, MCFG, FACS and a DSDT encoded as AML by acpi_aml.c (bhyve
 * writes ASL and runs iasl; we write the bytes).
 *
 * Layout, from ACPI_BASE (0xF2400) up, each table 16-byte aligned and the
 * FACS 64-byte aligned (§5.2.10): RSDP, RSDT, XSDT, MADT, FADT, HPET,
 * MCFG, FACS, DSDT. The tables are built in a host buffer the size of the
 * region, so that a machine whose tables do not fit fails before anything
 * is written.
 *
 * Choices (see acpi.h for the platform constants):
 *  - FADT flags: WBINVD, PROC_C1 (HLT works), SLP_BUTTON (there is no
 *    sleep button), FIX_RTC (pm.c has no RTC_STS), TMR_VAL_EXT (32-bit
 *    PM timer), RESET_REG_SUP (0xCF9 <- 6), HEADLESS and
 *    FORCE_APIC_PHYSICAL_DESTINATION_MODE as bhyve. PWR_BUTTON is clear:
 *    pm.c raises the fixed power button's PWRBTN_STS.
 *  - IAPC_BOOT_ARCH: LEGACY_DEVICES (the LPC bridge's UARTs, RTC, PIT),
 *    VGA Not Present and PCIe ASPM Controls as bhyve; no 8042 (atkbdc.c
 *    is only the reset line, and Linux should not probe for a keyboard).
 *  - MADT overrides: ISA IRQ 0 -> GSI 2 edge, active high (KVM routes the
 *    PIT to IOAPIC pin 2); the SCI, IRQ 9 -> GSI 9 level, active high:
 *    pm.c holds the line asserted (high) while an enabled event is
 *    pending, and KVM's IOAPIC takes the level as given, so active high
 *    says what happens (QEMU describes its SCI the same way).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi.h"
#include "acpi_aml.h"
#include "hpet.h"
#include "machine.h"
#include "mptbl.h"
#include "pci_emul.h"
#include "pm.h"
#include "rtc.h"
#include "smbiostbl.h"

/* The three tables of the BIOS area never overlap. */
_Static_assert(MPTABLE_BASE >= BIOS_AREA_BASE, "MP table below the BIOS area");
_Static_assert(MPTABLE_BASE + MPTABLE_MAX <= SMBIOS_BASE,
	       "MP table and SMBIOS overlap");
_Static_assert(SMBIOS_BASE + SMBIOS_MAX <= ACPI_BASE,
	       "SMBIOS and ACPI overlap");
_Static_assert(ACPI_BASE + ACPI_MAX <= BIOS_AREA_END, "ACPI past 1 MiB");

#define HDR_LEN 36 /* the System Description Table Header (§5.2.6) */
#define RSDP_LEN 36
#define NXSDT 4 /* MADT, FADT, HPET, MCFG */
#define MADT_LEN(n) (44 + 8 * (n) + 12 + 2 * 10 + 6)
#define FADT_LEN 276
#define HPET_LEN 56
#define MCFG_LEN 60
#define FACS_LEN 64

/* FADT Fixed Feature Flags (§5.2.9, Table 5.10). */
#define FADT_WBINVD (1u << 0)
#define FADT_PROC_C1 (1u << 2)
#define FADT_SLP_BUTTON (1u << 5)
#define FADT_FIX_RTC (1u << 6)
#define FADT_TMR_VAL_EXT (1u << 8)
#define FADT_RESET_REG_SUP (1u << 10)
#define FADT_HEADLESS (1u << 12)
#define FADT_FORCE_APIC_PHYS (1u << 19)
#define FADT_FLAGS                                                             \
	(FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_FIX_RTC |         \
	 FADT_TMR_VAL_EXT | FADT_RESET_REG_SUP | FADT_HEADLESS |               \
	 FADT_FORCE_APIC_PHYS)
/* IA-PC Boot Architecture Flags (§5.2.9.3). */
#define BOOT_LEGACY_DEVICES (1u << 0)
#define BOOT_VGA_NOT_PRESENT (1u << 2)
#define BOOT_PCIE_ASPM_CONTROLS (1u << 4)
#define FADT_BOOT_ARCH                                                         \
	(BOOT_LEGACY_DEVICES | BOOT_VGA_NOT_PRESENT | BOOT_PCIE_ASPM_CONTROLS)

/* Generic Address Structure (§5.2.3.2). */
#define GAS_MEM 0
#define GAS_IO 1
#define GAS_BYTE 1
#define GAS_WORD 2
#define GAS_DWORD 3

/* MADT flags (§5.2.12.5): polarity 1:0, trigger mode 3:2. */
#define MPS_HIGH 0x1
#define MPS_EDGE 0x4
#define MPS_LEVEL 0xc

static const struct {
	const char *name;
	uint16_t port;
	uint8_t irq;
} acpi_com[] = {
    {"com1", 0x3f8, 4},
    {"com2", 0x2f8, 3},
    {"com3", 0x3e8, 4},
    {"com4", 0x2e8, 3},
};

/* ---- byte helpers ---- */

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

uint8_t
acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += b[i];
	return (uint8_t)-sum;
}

static void
gas(uint8_t *p, uint8_t space, uint8_t width, uint8_t access, uint64_t addr)
{
	p[0] = space;
	p[1] = width;
	p[2] = 0; /* bit offset */
	p[3] = access;
	put64(p + 4, addr);
}

/* The header (§5.2.6); the checksum is set by finish(). */
static void
header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev,
       const char *table_id)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, ACPI_OEM_ID, 6);
	memcpy(t + 16, table_id, 8);
	put32(t + 24, ACPI_OEM_REVISION);
	memcpy(t + 28, "BHYV", 4); /* creator: us, not iasl */
	put32(t + 32, 1);
}

static void
finish(uint8_t *t)
{
	uint32_t len = (uint32_t)t[4] | (uint32_t)t[5] << 8 |
		       (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;

	t[9] = 0;
	t[9] = acpi_checksum(t, len);
}

/* ---- PCI interrupt routes ---- */

struct intx_walk {
	struct acpi_intx *v;
	int n, cap;
	bool nomem;
};

static void
intx_one(struct pci_devinst *pi, void *arg)
{
	struct intx_walk *w = arg;
	struct acpi_intx e;

	if (pi->pi_lintr.pin < 1 || pi->pi_lintr.pin > 4 || w->nomem)
		return;
	e.bus = pi->pi_bus;
	e.slot = pi->pi_slot;
	e.pin = (uint8_t)(pi->pi_lintr.pin - 1);
	e.irq = (uint8_t)pi->pi_lintr.irq;
	/* Functions of a slot come in a row: look back over them. */
	for (int i = w->n - 1; i >= 0; i--) {
		if (w->v[i].bus != e.bus || w->v[i].slot != e.slot)
			break;
		if (w->v[i].pin == e.pin)
			return;
	}
	if (w->n == w->cap) {
		int cap = w->cap ? 2 * w->cap : 16;
		struct acpi_intx *v = realloc(w->v, cap * sizeof(*v));

		if (!v) {
			w->nomem = true;
			return;
		}
		w->v = v;
		w->cap = cap;
	}
	w->v[w->n++] = e;
}

int
acpi_pci_intx(struct vmctx *ctx, struct acpi_intx **out)
{
	struct intx_walk w = {0};

	pci_foreach_devinst(ctx, intx_one, &w);
	if (w.nomem) {
		free(w.v);
		*out = NULL;
		return -1;
	}
	*out = w.v;
	return w.n;
}

/* ---- DSDT ---- */

static void
dsdt_crs_pci0(struct aml *a, int last_bus)
{
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_word_bus(a, 0, (uint16_t)last_bus);
	aml_rt_io(a, 0xcf8, 0xcf8, 1, 8); /* config mechanism #1 */
	aml_rt_word_io(a, 0, 0xcf7);
	aml_rt_word_io(a, 0xd00, 0xffff);
	aml_rt_dword_mem(a, false, (uint32_t)PCI_EMUL_MEMBASE32,
			 (uint32_t)(PCI_EMUL_MEMLIMIT32 - 1));
	aml_rt_qword_mem(a, true, PCI_EMUL_MEMBASE64, PCI_EMUL_MEMLIMIT64 - 1);
	aml_rt_end(a);
}

/* _PRT (§6.2.13): {Address (slot, any function), Pin, Source 0, GSI}. */
static int
dsdt_prt(struct aml *a, struct vmctx *ctx)
{
	struct acpi_intx *v;
	int n = acpi_pci_intx(ctx, &v), nbus0 = 0;

	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++)
		nbus0 += v[i].bus == 0;
	if (nbus0 > 255) {
		free(v);
		return -1;
	}
	aml_name(a, "_PRT");
	aml_package_begin(a, (uint8_t)nbus0);
	for (int i = 0; i < n; i++) {
		if (v[i].bus != 0)
			continue;
		aml_package_begin(a, 4);
		aml_integer(a, (uint32_t)v[i].slot << 16 | 0xffff);
		aml_integer(a, v[i].pin);
		aml_integer(a, 0);
		aml_integer(a, v[i].irq);
		aml_end(a);
	}
	aml_end(a);
	free(v);
	return 0;
}

static void
dsdt_isa_dev(struct aml *a, const char *name, const char *hid)
{
	aml_device_begin(a, name);
	aml_name_eisaid(a, "_HID", hid);
}

/* The PC's legacy devices: ISA-bus PnP nodes (§6.1.5 _HID). */
static void
dsdt_legacy(struct aml *a, struct vmctx *ctx, bool lpc)
{
	struct config *cfg = machine_config(ctx);

	dsdt_isa_dev(a, "PIC", "PNP0000");
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_io(a, 0x20, 0x20, 1, 2);
	aml_rt_io(a, 0xa0, 0xa0, 1, 2);
	aml_rt_io(a, 0x4d0, 0x4d0, 1, 2); /* ELCR */
	aml_rt_irq(a, 2);
	aml_rt_end(a);
	aml_end(a);

	dsdt_isa_dev(a, "PIT", "PNP0100");
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_io(a, 0x40, 0x40, 1, 4);
	aml_rt_irq(a, 0);
	aml_rt_end(a);
	aml_end(a);

	dsdt_isa_dev(a, "RTC", "PNP0B00");
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_io(a, RTC_PORT_INDEX, RTC_PORT_INDEX, 1, 2);
	aml_rt_irq(a, RTC_IRQ);
	aml_rt_end(a);
	aml_end(a);

	/* The UARTs that pci_lpc.c starts: those with an lpc.comN node. */
	for (size_t i = 0; lpc && i < sizeof(acpi_com) / sizeof(acpi_com[0]);
	     i++) {
		char key[16], name[5];

		snprintf(key, sizeof(key), "lpc.%s", acpi_com[i].name);
		if (!config_node(cfg, key))
			continue;
		snprintf(name, sizeof(name), "COM%zu", i + 1);
		dsdt_isa_dev(a, name, "PNP0501");
		aml_name_integer(a, "_UID", i + 1);
		aml_name(a, "_CRS");
		aml_rt_begin(a);
		aml_rt_io(a, acpi_com[i].port, acpi_com[i].port, 1, 8);
		aml_rt_irq(a, acpi_com[i].irq);
		aml_rt_end(a);
		aml_end(a);
	}
}

static int
dsdt_pci0(struct aml *a, struct vmctx *ctx)
{
	struct pci_devinst *lpc = machine_get_slot(ctx, "lpc");

	aml_device_begin(a, "PCI0");
	aml_name_eisaid(a, "_HID", "PNP0A08"); /* PCI Express root bridge */
	aml_name_eisaid(a, "_CID", "PNP0A03"); /* ... and PCI */
	aml_name_integer(a, "_UID", 0);
	aml_name_integer(a, "_SEG", 0);
	aml_name_integer(a, "_BBN", 0);
	dsdt_crs_pci0(a, pci_last_bus(ctx));
	if (dsdt_prt(a, ctx) < 0)
		return -1;
	if (lpc) {
		aml_device_begin(a, "ISA");
		aml_name_integer(a, "_ADR",
				 (uint32_t)lpc->pi_slot << 16 | lpc->pi_func);
		dsdt_legacy(a, ctx, true);
		aml_end(a);
	}
	aml_end(a);
	return 0;
}

static void
dsdt_hpet(struct aml *a)
{
	aml_device_begin(a, "HPET");
	aml_name_eisaid(a, "_HID", "PNP0103");
	aml_name_integer(a, "_UID", 0);
	aml_method_begin(a, "_STA", 0, false);
	aml_return(a);
	aml_integer(a, 0x0f); /* present, enabled, shown, functioning */
	aml_end(a);
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_mem32_fixed(a, true, (uint32_t)HPET_BASE, HPET_SIZE);
	aml_rt_end(a);
	aml_end(a);
}

/*
 * The pvpanic port (src/devices/pvpanic.c), as QEMU describes it: Linux's
 * pvpanic-mmio driver binds to QEMU0001 and takes its I/O resource.
 */
static void
dsdt_pvpanic(struct aml *a)
{
	aml_device_begin(a, "PEVT");
	aml_name_string(a, "_HID", "QEMU0001");
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_io(a, 0x505, 0x505, 1, 1);
	aml_rt_end(a);
	aml_method_begin(a, "_STA", 0, false);
	aml_return(a);
	aml_integer(a, 0x0f);
	aml_end(a);
	aml_end(a);
}

/*
 * ECAM reserved as a motherboard resource (PCI Firmware 3.2 §4.1.2):
 * without it Linux refuses the MCFG region.
 */
static void
dsdt_ecam(struct aml *a)
{
	aml_device_begin(a, "PCFG");
	aml_name_eisaid(a, "_HID", "PNP0C02");
	aml_name_string(a, "_UID", "ECAM");
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_mem32_fixed(a, true, (uint32_t)PCI_EMUL_ECFG_BASE,
			   (uint32_t)PCI_EMUL_ECFG_SIZE);
	aml_rt_end(a);
	aml_end(a);
}

static int
dsdt_body(struct aml *a, struct vmctx *ctx)
{
	/* \_S5: SLP_TYP for PM1a and PM1b (§7.4.2); pm.c powers off on 5. */
	aml_name(a, "_S5");
	aml_package_begin(a, 4);
	aml_integer(a, PM_SLP_TYP_S5);
	aml_integer(a, PM_SLP_TYP_S5);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a);
	/* \_PIC (§5.8.1): the OS says PIC or APIC mode; _PRT is APIC only. */
	aml_name_integer(a, "PICM", 0);
	aml_method_begin(a, "_PIC", 1, false);
	aml_store_arg(a, 0, "PICM");
	aml_end(a);

	aml_scope_begin(a, "\\_SB");
	if (dsdt_pci0(a, ctx) < 0)
		return -1;
	dsdt_hpet(a);
	if (config_get_bool(machine_config(ctx), "pvpanic", true))
		dsdt_pvpanic(a);
	dsdt_ecam(a);
	if (!machine_get_slot(ctx, "lpc"))
		dsdt_legacy(a, ctx, false);
	aml_end(a);
	return 0;
}

/* ---- the fixed tables ---- */

static void
build_rsdp(uint8_t *t, uint32_t rsdt, uint32_t xsdt)
{
	memcpy(t, "RSD PTR ", 8);
	memcpy(t + 9, ACPI_OEM_ID, 6);
	t[15] = 2; /* revision: ACPI 2.0+ */
	put32(t + 16, rsdt);
	put32(t + 20, RSDP_LEN);
	put64(t + 24, xsdt);
	t[8] = acpi_checksum(t, 20);	    /* the ACPI 1.0 part */
	t[32] = acpi_checksum(t, RSDP_LEN); /* the whole structure */
}

static void
build_rsdt_xsdt(uint8_t *rsdt, uint8_t *xsdt, const uint32_t *addr)
{
	header(rsdt, "RSDT", HDR_LEN + 4 * NXSDT, 1, "BVRSDT  ");
	header(xsdt, "XSDT", HDR_LEN + 8 * NXSDT, 1, "BVXSDT  ");
	for (int i = 0; i < NXSDT; i++) {
		put32(rsdt + HDR_LEN + 4 * i, addr[i]);
		put64(xsdt + HDR_LEN + 8 * i, addr[i]);
	}
	finish(rsdt);
	finish(xsdt);
}

static void
build_madt(uint8_t *t, int ncpus)
{
	uint8_t *e = t + 44;

	header(t, "APIC", MADT_LEN(ncpus), 5, "BVMADT  ");
	put32(t + 36, ACPI_LAPIC_BASE);
	put32(t + 40, 1); /* PCAT_COMPAT: there are 8259s too */
	for (int i = 0; i < ncpus; i++, e += 8) {
		e[0] = 0; /* Processor Local APIC (§5.2.12.2) */
		e[1] = 8;
		e[2] = (uint8_t)i; /* ACPI processor UID */
		e[3] = (uint8_t)i; /* APIC ID */
		put32(e + 4, 1);   /* enabled */
	}
	e[0] = 1; /* I/O APIC (§5.2.12.3) */
	e[1] = 12;
	e[2] = (uint8_t)ncpus;
	e[3] = 0;
	put32(e + 4, ACPI_IOAPIC_BASE);
	put32(e + 8, 0); /* GSI base */
	e += 12;
	/* Interrupt Source Overrides (§5.2.12.5), bus 0 = ISA. */
	e[0] = 2;
	e[1] = 10;
	e[2] = 0;
	e[3] = 0; /* IRQ 0, the PIT */
	put32(e + 4, 2);
	put16(e + 8, MPS_HIGH | MPS_EDGE);
	e += 10;
	e[0] = 2;
	e[1] = 10;
	e[2] = 0;
	e[3] = PM_SCI_IRQ;
	put32(e + 4, PM_SCI_IRQ);
	put16(e + 8, MPS_HIGH | MPS_LEVEL);
	e += 10;
	/* Local APIC NMI (§5.2.12.7): LINT1 on every processor. */
	e[0] = 4;
	e[1] = 6;
	e[2] = 0xff;
	put16(e + 3, MPS_HIGH | MPS_EDGE);
	e[5] = 1;
	finish(t);
}

static void
build_fadt(uint8_t *t, uint32_t facs, uint32_t dsdt)
{
	header(t, "FACP", FADT_LEN, 6, "BVFACP  ");
	put32(t + 36, facs);
	put32(t + 40, dsdt);
	t[45] = 0; /* Preferred_PM_Profile: unspecified */
	put16(t + 46, PM_SCI_IRQ);
	put32(t + 48, PM_SMI_CMD);
	t[52] = PM_ACPI_ENABLE;
	t[53] = PM_ACPI_DISABLE;
	put32(t + 56, PM1A_EVT_BLK);
	put32(t + 64, PM1A_CNT_BLK);
	put32(t + 76, PM_TMR_BLK);
	t[88] = PM1A_EVT_LEN;
	t[89] = PM1A_CNT_LEN;
	t[91] = PM_TMR_LEN;
	put16(t + 96, 101);  /* P_LVL2_LAT > 100: no C2 */
	put16(t + 98, 1001); /* P_LVL3_LAT > 1000: no C3 */
	t[108] = RTC_CENTURY;
	put16(t + 109, FADT_BOOT_ARCH);
	put32(t + 112, FADT_FLAGS);
	gas(t + 116, GAS_IO, 8, GAS_BYTE, PM_RESET_PORT);
	t[128] = PM_RESET_VALUE;
	t[131] = 4; /* FADT minor version: ACPI 6.4 */
	put64(t + 132, facs);
	put64(t + 140, dsdt);
	gas(t + 148, GAS_IO, 8 * PM1A_EVT_LEN, GAS_WORD, PM1A_EVT_BLK);
	gas(t + 172, GAS_IO, 8 * PM1A_CNT_LEN, GAS_WORD, PM1A_CNT_BLK);
	gas(t + 208, GAS_IO, 8 * PM_TMR_LEN, GAS_DWORD, PM_TMR_BLK);
	memcpy(t + 268, "BHYVE   ", 8); /* hypervisor vendor identity */
	finish(t);
}

static void
build_hpet(uint8_t *t)
{
	header(t, "HPET", HPET_LEN, 1, "BVHPET  ");
	/* The model's own capabilities: vendor, comparators, widths. */
	put32(t + 36, hpet_block_id());
	gas(t + 40, GAS_MEM, 64, 0, HPET_BASE);
	t[52] = 0; /* HPET number */
	put16(t + 53, HPET_MIN_TICK);
	t[55] = 1; /* 4 KiB page protected */
	finish(t);
}

/*
 * One allocation (PCI Firmware 3.2 §4.1.2): segment 0, buses 0 to the last
 * bus with a device. Not 255: Linux takes the MCFG end bus as the last bus
 * and probes every slot of every bus up to it through config mechanism #1
 * (its "peer bridge fixup"): 8192 probes, 16k exits, for buses that are
 * empty.
 */
static void
build_mcfg(uint8_t *t, int last_bus)
{
	header(t, "MCFG", MCFG_LEN, 1, "BVMCFG  ");
	put64(t + 44, PCI_EMUL_ECFG_BASE);
	put16(t + 52, 0);
	t[54] = 0;
	t[55] = (uint8_t)last_bus;
	finish(t);
}

static void
build_facs(uint8_t *t)
{
	memcpy(t, "FACS", 4);
	put32(t + 4, FACS_LEN);
	t[32] = 2; /* version */
}

/* ---- layout ---- */

static size_t
align(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

enum {
	T_RSDP,
	T_RSDT,
	T_XSDT,
	T_MADT,
	T_FADT,
	T_HPET,
	T_MCFG,
	T_FACS,
	T_DSDT,
	T_COUNT
};

static int
layout(size_t *off, size_t dsdt_len, int ncpus)
{
	const size_t len[T_COUNT] = {
	    RSDP_LEN,
	    HDR_LEN + 4 * NXSDT,
	    HDR_LEN + 8 * NXSDT,
	    MADT_LEN(ncpus),
	    FADT_LEN,
	    HPET_LEN,
	    MCFG_LEN,
	    FACS_LEN,
	    dsdt_len,
	};
	size_t at = 0;

	for (int i = 0; i < T_COUNT; i++) {
		at = align(at, i == T_FACS ? 64 : 16);
		off[i] = at;
		at += len[i];
	}
	if (at > ACPI_MAX) {
		fprintf(stderr,
			"bhyve: ACPI tables need %zu bytes, more than the %u "
			"at 0x%x below 1 MiB: use fewer devices\n",
			at, ACPI_MAX, ACPI_BASE);
		return -1;
	}
	return (int)at;
}

int
acpi_build(struct vmctx *ctx, int ncpus)
{
	size_t off[T_COUNT];
	uint32_t xsdt_tables[NXSDT];
	struct aml a;
	uint8_t *img, *t, *guest;
	int total;

	if (ncpus < 1 || ncpus > VM_MAXCPU) {
		fprintf(stderr, "bhyve: ACPI: bad vCPU count %d\n", ncpus);
		return -1;
	}
	aml_init(&a);
	if (dsdt_body(&a, ctx) < 0 || !aml_ok(&a)) {
		fprintf(stderr, "bhyve: ACPI: could not encode the DSDT\n");
		aml_free(&a);
		return -1;
	}
	total = layout(off, HDR_LEN + a.len, ncpus);
	img = total < 0 ? NULL : calloc(1, (size_t)total);
	guest = total < 0 ? NULL : vm_map_gpa(ctx, ACPI_BASE, (size_t)total);
	if (!img || !guest) {
		if (total >= 0)
			fprintf(stderr, "bhyve: ACPI: %s\n",
				img ? "guest memory does not cover 0xF2400 "
				      "(-m too small?)"
				    : "out of memory");
		free(img);
		aml_free(&a);
		return -1;
	}
#define ADDR(i) ((uint32_t)(ACPI_BASE + off[i]))
	t = img + off[T_DSDT];
	header(t, "DSDT", (uint32_t)(HDR_LEN + a.len), 2, "BVDSDT  ");
	memcpy(t + HDR_LEN, a.buf, a.len);
	finish(t);
	aml_free(&a);
	build_facs(img + off[T_FACS]);
	build_mcfg(img + off[T_MCFG], pci_last_bus(ctx));
	build_hpet(img + off[T_HPET]);
	build_fadt(img + off[T_FADT], ADDR(T_FACS), ADDR(T_DSDT));
	build_madt(img + off[T_MADT], ncpus);
	xsdt_tables[0] = ADDR(T_MADT);
	xsdt_tables[1] = ADDR(T_FADT);
	xsdt_tables[2] = ADDR(T_HPET);
	xsdt_tables[3] = ADDR(T_MCFG);
	build_rsdt_xsdt(img + off[T_RSDT], img + off[T_XSDT], xsdt_tables);
	build_rsdp(img + off[T_RSDP], ADDR(T_RSDT), ADDR(T_XSDT));
#undef ADDR
	memcpy(guest, img, (size_t)total);
	free(img);
	return 0;
}
