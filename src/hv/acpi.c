/*
 * ACPI tables (ACPI 6.4 §5.2) for bhyve's PC: RSDP, RSDT, XSDT, MADT,
 * FADT, FACS and a DSDT encoded as AML by acpi_aml.c (bhyve writes ASL and
 * runs iasl; we write the bytes), plus the tables devices bring (the
 * HPET's, the PCI bus's MCFG). What each device says about itself comes
 * from its descriptor (fwtab.h): DSDT objects, FADT fields, ISA interrupt
 * overrides. This file names no device.
 *
 * Layout, from ACPI_BASE (0xF2400) up, each table 16-byte aligned and the
 * FACS 64-byte aligned (§5.2.10): RSDP, RSDT, XSDT, MADT, FADT, the
 * devices' tables, FACS, DSDT. The tables are built in a host buffer the
 * size of the region, so that a machine whose tables do not fit fails
 * before anything is written.
 *
 * Choices (see acpi.h for the platform constants):
 *  - FADT flags: WBINVD, PROC_C1 (HLT works), SLP_BUTTON (there is no
 *    sleep button), FIX_RTC (pm.c has no RTC_STS), TMR_VAL_EXT (32-bit
 *    PM timer), RESET_REG_SUP (the PM block's reset register), HEADLESS
 *    and FORCE_APIC_PHYSICAL_DESTINATION_MODE as bhyve. PWR_BUTTON is
 *    clear: pm.c raises the fixed power button's PWRBTN_STS.
 *  - IAPC_BOOT_ARCH: LEGACY_DEVICES (the LPC bridge's UARTs, RTC, PIT),
 *    VGA Not Present and PCIe ASPM Controls as bhyve; no 8042 (atkbdc.c
 *    is only the reset line, and Linux should not probe for a keyboard).
 *  - MADT: one local APIC per vCPU, the IOAPIC, the devices' interrupt
 *    source overrides, LINT1 as NMI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi.h"
#include "acpi_aml.h"
#include "byteorder.h"
#include "fwtab.h"
#include "machine.h"
#include "mptbl.h"
#include "smbiostbl.h"

/* The three tables of the BIOS area never overlap. */
_Static_assert(MPTABLE_BASE >= BIOS_AREA_BASE, "MP table below the BIOS area");
_Static_assert(MPTABLE_BASE + MPTABLE_MAX <= SMBIOS_BASE,
	       "MP table and SMBIOS overlap");
_Static_assert(SMBIOS_BASE + SMBIOS_MAX <= ACPI_BASE,
	       "SMBIOS and ACPI overlap");
_Static_assert(ACPI_BASE + ACPI_MAX <= BIOS_AREA_END, "ACPI past 1 MiB");

#define HDR_LEN ACPI_HDR_LEN
#define RSDP_LEN 36
#define MAX_OVERRIDES 16
#define MADT_LEN(ncpus, novr) (44 + 8 * (ncpus) + 12 + 10 * (novr) + 6)
#define FADT_LEN 276
#define FACS_LEN 64
/* The tables devices add (HPET, MCFG): room in the XSDT for this many. */
#define MAX_DEV_TABLES 8

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

/* MADT flags (§5.2.12.5): polarity 1:0, trigger mode 3:2. */
#define MPS_HIGH 0x1
#define MPS_EDGE 0x4

#define header fw_acpi_header
#define finish fw_acpi_finish
#define gas fw_gas

/* ---- DSDT ---- */

/*
 * The DSDT is what the devices say (fwtab.h): objects at the root, in
 * \_SB, and the ISA devices, which the LPC bridge puts under its own node
 * in PCI0 and which go in \_SB when there is no bridge.
 */
static int
dsdt_body(struct aml *a, struct vmctx *ctx)
{
	if (fw_dsdt(ctx, FW_SCOPE_ROOT, a) < 0)
		return -1;
	/* \_PIC (§5.8.1): the OS says PIC or APIC mode; _PRT is APIC only. */
	aml_name_integer(a, "PICM", 0);
	aml_method_begin(a, "_PIC", 1, false);
	aml_store_arg(a, 0, "PICM");
	aml_end(a);

	aml_scope_begin(a, "\\_SB");
	if (fw_dsdt(ctx, FW_SCOPE_SB, a) < 0)
		return -1;
	if (!machine_has_isa_bridge(ctx) && fw_dsdt(ctx, FW_SCOPE_ISA, a) < 0)
		return -1;
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
	le32_put(t + 16, rsdt);
	le32_put(t + 20, RSDP_LEN);
	le64_put(t + 24, xsdt);
	t[8] = acpi_checksum(t, 20);	    /* the ACPI 1.0 part */
	t[32] = acpi_checksum(t, RSDP_LEN); /* the whole structure */
}

static void
build_rsdt_xsdt(uint8_t *rsdt, uint8_t *xsdt, const uint32_t *addr, int n)
{
	header(rsdt, "RSDT", HDR_LEN + 4 * n, 1, "BVRSDT  ");
	header(xsdt, "XSDT", HDR_LEN + 8 * n, 1, "BVXSDT  ");
	for (int i = 0; i < n; i++) {
		le32_put(rsdt + HDR_LEN + 4 * i, addr[i]);
		le64_put(xsdt + HDR_LEN + 8 * i, addr[i]);
	}
	finish(rsdt);
	finish(xsdt);
}

static void
build_madt(uint8_t *t, int ncpus, const struct fw_isa_irq *ovr, int novr)
{
	uint8_t *e = t + 44;

	header(t, "APIC", MADT_LEN(ncpus, novr), 5, "BVMADT  ");
	le32_put(t + 36, ACPI_LAPIC_BASE);
	le32_put(t + 40, 1); /* PCAT_COMPAT: there are 8259s too */
	for (int i = 0; i < ncpus; i++, e += 8) {
		e[0] = 0; /* Processor Local APIC (§5.2.12.2) */
		e[1] = 8;
		e[2] = (uint8_t)i; /* ACPI processor UID */
		e[3] = (uint8_t)i; /* APIC ID */
		le32_put(e + 4, 1); /* enabled */
	}
	e[0] = 1; /* I/O APIC (§5.2.12.3) */
	e[1] = 12;
	e[2] = (uint8_t)ncpus;
	e[3] = 0;
	le32_put(e + 4, ACPI_IOAPIC_BASE);
	le32_put(e + 8, 0); /* GSI base */
	e += 12;
	/* Interrupt Source Overrides (§5.2.12.5), bus 0 = ISA: the devices'. */
	for (int i = 0; i < novr; i++, e += 10) {
		e[0] = 2;
		e[1] = 10;
		e[2] = 0;
		e[3] = ovr[i].irq;
		le32_put(e + 4, ovr[i].gsi);
		le16_put(e + 8, ovr[i].flags);
	}
	/* Local APIC NMI (§5.2.12.7): LINT1 on every processor. */
	e[0] = 4;
	e[1] = 6;
	e[2] = 0xff;
	le16_put(e + 3, MPS_HIGH | MPS_EDGE);
	e[5] = 1;
	finish(t);
}

static void
build_fadt(uint8_t *t, const struct fw_fadt *f, uint32_t facs, uint32_t dsdt)
{
	header(t, "FACP", FADT_LEN, 6, "BVFACP  ");
	le32_put(t + 36, facs);
	le32_put(t + 40, dsdt);
	t[45] = 0; /* Preferred_PM_Profile: unspecified */
	le16_put(t + 46, f->sci_irq);
	le32_put(t + 48, f->smi_cmd);
	t[52] = f->acpi_enable;
	t[53] = f->acpi_disable;
	le32_put(t + 56, f->pm1a_evt_blk);
	le32_put(t + 64, f->pm1a_cnt_blk);
	le32_put(t + 76, f->pm_tmr_blk);
	t[88] = f->pm1a_evt_len;
	t[89] = f->pm1a_cnt_len;
	t[91] = f->pm_tmr_len;
	le16_put(t + 96, 101);	/* P_LVL2_LAT > 100: no C2 */
	le16_put(t + 98, 1001); /* P_LVL3_LAT > 1000: no C3 */
	t[108] = f->century;
	le16_put(t + 109, FADT_BOOT_ARCH);
	le32_put(t + 112, FADT_FLAGS);
	gas(t + 116, GAS_IO, 8, GAS_BYTE, f->reset_port);
	t[128] = f->reset_value;
	t[131] = 4; /* FADT minor version: ACPI 6.4 */
	le64_put(t + 132, facs);
	le64_put(t + 140, dsdt);
	gas(t + 148, GAS_IO, 8 * f->pm1a_evt_len, GAS_WORD, f->pm1a_evt_blk);
	gas(t + 172, GAS_IO, 8 * f->pm1a_cnt_len, GAS_WORD, f->pm1a_cnt_blk);
	gas(t + 208, GAS_IO, 8 * f->pm_tmr_len, GAS_DWORD, f->pm_tmr_blk);
	memcpy(t + 268, "BHYVE   ", 8); /* hypervisor vendor identity */
	finish(t);
}

static void
build_facs(uint8_t *t)
{
	memcpy(t, "FACS", 4);
	le32_put(t + 4, FACS_LEN);
	t[32] = 2; /* version */
}

/* ---- the devices' own tables (HPET, MCFG) ---- */

struct dev_tables {
	uint8_t *t[MAX_DEV_TABLES];
	size_t len[MAX_DEV_TABLES];
	int n;
};

static int
keep_table(const uint8_t *t, size_t len, void *arg)
{
	struct dev_tables *d = arg;

	if (d->n == MAX_DEV_TABLES) {
		fprintf(stderr, "bhyve: ACPI: more than %d device tables\n",
			MAX_DEV_TABLES);
		return -1;
	}
	d->t[d->n] = malloc(len);
	if (!d->t[d->n])
		return -1;
	memcpy(d->t[d->n], t, len);
	d->len[d->n++] = len;
	return 0;
}

static void
dev_tables_free(struct dev_tables *d)
{
	for (int i = 0; i < d->n; i++)
		free(d->t[i]);
}

/* ---- layout ---- */

static size_t
align(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

enum { T_RSDP, T_RSDT, T_XSDT, T_MADT, T_FADT, T_FACS, T_DSDT, T_COUNT };

/*
 * Offsets from ACPI_BASE: the fixed tables, the devices' tables between
 * the FADT and the FACS, 16-byte aligned, the FACS 64 (§5.2.10).
 */
struct layout {
	size_t off[T_COUNT];
	size_t dev_off[MAX_DEV_TABLES];
	size_t total;
};

static int
layout(struct layout *l, size_t dsdt_len, int ncpus, int novr,
       const struct dev_tables *d)
{
	int nx = 2 + d->n; /* MADT, FADT, the devices' */
	size_t at = 0;
	const size_t len[T_COUNT] = {
	    RSDP_LEN,	       HDR_LEN + 4 * nx, HDR_LEN + 8 * nx,
	    MADT_LEN(ncpus, novr), FADT_LEN,	 FACS_LEN,
	    dsdt_len,
	};

	for (int i = 0; i < T_COUNT; i++) {
		if (i == T_FACS)
			for (int j = 0; j < d->n; j++) {
				at = align(at, 16);
				l->dev_off[j] = at;
				at += d->len[j];
			}
		at = align(at, i == T_FACS ? 64 : 16);
		l->off[i] = at;
		at += len[i];
	}
	if (at > ACPI_MAX) {
		fprintf(stderr,
			"bhyve: ACPI tables need %zu bytes, more than the %u "
			"at 0x%x below 1 MiB: use fewer devices\n",
			at, ACPI_MAX, ACPI_BASE);
		return -1;
	}
	l->total = at;
	return 0;
}

static void
place(uint8_t *img, const struct layout *l, const struct aml *a,
      const struct dev_tables *d, int ncpus, const struct fw_isa_irq *ovr,
      int novr, const struct fw_fadt *f)
{
	uint32_t xsdt[2 + MAX_DEV_TABLES];
	uint8_t *t = img + l->off[T_DSDT];

#define ADDR(o) ((uint32_t)(ACPI_BASE + (o)))
	header(t, "DSDT", (uint32_t)(HDR_LEN + a->len), 2, "BVDSDT  ");
	memcpy(t + HDR_LEN, a->buf, a->len);
	finish(t);
	build_facs(img + l->off[T_FACS]);
	build_fadt(img + l->off[T_FADT], f, ADDR(l->off[T_FACS]),
		   ADDR(l->off[T_DSDT]));
	build_madt(img + l->off[T_MADT], ncpus, ovr, novr);
	xsdt[0] = ADDR(l->off[T_MADT]);
	xsdt[1] = ADDR(l->off[T_FADT]);
	for (int i = 0; i < d->n; i++) {
		memcpy(img + l->dev_off[i], d->t[i], d->len[i]);
		xsdt[2 + i] = ADDR(l->dev_off[i]);
	}
	build_rsdt_xsdt(img + l->off[T_RSDT], img + l->off[T_XSDT], xsdt,
			2 + d->n);
	build_rsdp(img + l->off[T_RSDP], ADDR(l->off[T_RSDT]),
		   ADDR(l->off[T_XSDT]));
#undef ADDR
}

int
acpi_build(struct vmctx *ctx, int ncpus)
{
	struct fw_isa_irq ovr[MAX_OVERRIDES];
	struct dev_tables d = {0};
	struct fw_fadt f;
	struct layout l;
	struct aml a;
	uint8_t *img = NULL, *guest = NULL;
	int novr = fw_isa_irqs(ovr, MAX_OVERRIDES), rc = -1;

	if (ncpus < 1 || ncpus > VM_MAXCPU) {
		fprintf(stderr, "bhyve: ACPI: bad vCPU count %d\n", ncpus);
		return -1;
	}
	aml_init(&a);
	if (dsdt_body(&a, ctx) < 0 || !aml_ok(&a)) {
		fprintf(stderr, "bhyve: ACPI: could not encode the DSDT\n");
		goto out;
	}
	if (fw_acpi_tables(ctx, keep_table, &d) < 0) {
		fprintf(stderr, "bhyve: ACPI: a device's table failed\n");
		goto out;
	}
	if (layout(&l, HDR_LEN + a.len, ncpus, novr, &d) < 0)
		goto out;
	img = calloc(1, l.total);
	guest = vm_map_gpa(ctx, ACPI_BASE, l.total);
	if (!img || !guest) {
		fprintf(stderr, "bhyve: ACPI: %s\n",
			img ? "guest memory does not cover 0xF2400 "
			      "(-m too small?)"
			    : "out of memory");
		goto out;
	}
	fw_fadt(ctx, &f);
	place(img, &l, &a, &d, ncpus, ovr, novr, &f);
	memcpy(guest, img, l.total);
	rc = 0;
out:
	free(img);
	dev_tables_free(&d);
	aml_free(&a);
	return rc;
}
