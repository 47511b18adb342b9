/*
 * Firmware tables against a mock VM: the AML encoder byte by byte, then
 * the ACPI tables (checksums, lengths, pointers, MADT/FADT/HPET/MCFG
 * fields, the DSDT through iasl), the MP table and SMBIOS.
 *
 * iasl (Debian package acpica-tools) must be installed: the DSDT test
 * disassembles our AML and compiles the result again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "acpi.h"
#include "acpi_aml.h"
#include "fwtab.h"
#include "hpet.h"
#include "machine.h"
#include "mptbl.h"
#include "pci_emul.h"
#include "smbiostbl.h"
#include "uart_emul.h"

/* ---- a PCI device with an INTx line ---- */

static int
intxdev_init(struct pci_devinst *pi, struct config *node)
{
	(void)node;
	pci_set_cfgdata16(pi, 0x00, 0x1af4);
	pci_set_cfgdata16(pi, 0x02, 0x7777);
	pci_lintr_request(pi);
	return 0;
}

static const struct pci_devemu pci_de_intxdev = {
    .pe_emu = "intxdev",
    .pe_init = intxdev_init,
};
PCI_EMUL_SET(pci_de_intxdev);

/* ---- helpers ---- */

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t
get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint8_t
sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

static bool
has_bytes(const uint8_t *p, size_t n, const void *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (!memcmp(p + i, needle, m))
			return true;
	return false;
}

struct fx {
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
};

static void
set(struct config *cfg, const char *k, const char *v)
{
	char err[128];

	assert_int_equal(config_set(cfg, k, v, err, sizeof(err)), 0);
}

/* hostbridge, INTx devices at 0:3.0, 0:4.0, 0:4.1, lpc at 0:31 with com1. */
static struct fx *
fx_new(int ncpus, uint64_t mem, void (*more)(struct config *))
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->cfg = config_create();
	set(f->cfg, "name", "acpitest");
	set(f->cfg, "pci.0.0.0.device", "hostbridge");
	set(f->cfg, "pci.0.3.0.device", "intxdev");
	set(f->cfg, "pci.0.4.0.device", "intxdev");
	set(f->cfg, "pci.0.4.1.device", "intxdev");
	set(f->cfg, "pci.0.31.0.device", "lpc");
	assert_non_null(config_node_make(f->cfg, "lpc.com1"));
	if (more)
		more(f->cfg);
	f->ctx = vm_create_mock(mem);
	assert_non_null(f->ctx);
	assert_int_equal(vm_set_ncpus(f->ctx, ncpus), 0);
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	assert_int_equal(init_pci(f->ctx), 0);
	return f;
}

static void
fx_free(struct fx *f)
{
	machine_free(f->m);
	vm_close(f->ctx);
	config_free(f->cfg);
	free(f);
}

static uint8_t *
gpa(struct fx *f, uint64_t addr, size_t len)
{
	uint8_t *p = vm_map_gpa(f->ctx, addr, len);

	assert_non_null(p);
	return p;
}

/* ---- AML encoder ---- */

static void
check_pkglen(uint32_t len, int n, const uint8_t *want)
{
	uint8_t out[4];

	assert_int_equal(aml_pkglen_encode(len, out), n);
	assert_memory_equal(out, want, (size_t)n);
}

static void
test_aml_pkglen_forms(void **state)
{
	(void)state;
	check_pkglen(1, 1, (const uint8_t[]){0x01});
	check_pkglen(63, 1, (const uint8_t[]){0x3f});
	check_pkglen(64, 2, (const uint8_t[]){0x40, 0x04});
	check_pkglen(4095, 2, (const uint8_t[]){0x4f, 0xff});
	check_pkglen(4096, 3, (const uint8_t[]){0x80, 0x00, 0x01});
	check_pkglen(0xfffff, 3, (const uint8_t[]){0x8f, 0xff, 0xff});
	check_pkglen(0x100000, 4, (const uint8_t[]){0xc0, 0x00, 0x00, 0x01});
	check_pkglen(0xfffffff, 4, (const uint8_t[]){0xcf, 0xff, 0xff, 0xff});
	uint8_t out[4];
	assert_int_equal(aml_pkglen_encode(0x10000000, out), 0);
	assert_int_equal(aml_pkglen_encode(0, out), 0);
}

static uint32_t
decode_pkglen(const uint8_t *p, int *n)
{
	int follow = p[0] >> 6;
	uint32_t v;

	*n = 1 + follow;
	if (!follow)
		return p[0] & 0x3f;
	v = p[0] & 0x0f;
	for (int i = 0; i < follow; i++)
		v |= (uint32_t)p[1 + i] << (4 + 8 * i);
	return v;
}

/* A Package whose body is 'body' bytes: its PkgLength counts itself. */
static void
check_backpatch(size_t body, int want_n)
{
	struct aml a;
	uint8_t *fill = calloc(1, body);
	int n;

	assert_non_null(fill);
	aml_init(&a);
	aml_package_begin(&a, 0); /* NumElements is one body byte */
	aml_bytes(&a, fill, body - 1);
	aml_end(&a);
	assert_true(aml_ok(&a));
	assert_int_equal(a.buf[0], 0x12);
	assert_int_equal(decode_pkglen(a.buf + 1, &n), a.len - 1);
	assert_int_equal(n, want_n);
	assert_int_equal(a.len, 1 + n + body);
	aml_free(&a);
	free(fill);
}

static void
test_aml_pkglen_backpatch(void **state)
{
	(void)state;
	check_backpatch(1, 1);
	check_backpatch(62, 1);	  /* 63 with its byte */
	check_backpatch(63, 2);	  /* 64 would not fit one byte */
	check_backpatch(4093, 2); /* 4095 */
	check_backpatch(4094, 3); /* 4096 */
	check_backpatch(0xffffc, 3);
	check_backpatch(0xffffd, 4);
}

static void
check_int(uint64_t v, size_t n, const uint8_t *want)
{
	struct aml a;

	aml_init(&a);
	aml_integer(&a, v);
	assert_true(aml_ok(&a));
	assert_int_equal(a.len, n);
	assert_memory_equal(a.buf, want, n);
	aml_free(&a);
}

static void
test_aml_integers(void **state)
{
	(void)state;
	check_int(0, 1, (const uint8_t[]){0x00});
	check_int(1, 1, (const uint8_t[]){0x01});
	check_int(2, 2, (const uint8_t[]){0x0a, 0x02});
	check_int(0xff, 2, (const uint8_t[]){0x0a, 0xff});
	check_int(0x100, 3, (const uint8_t[]){0x0b, 0x00, 0x01});
	check_int(0xffff, 3, (const uint8_t[]){0x0b, 0xff, 0xff});
	check_int(0x10000, 5, (const uint8_t[]){0x0c, 0x00, 0x00, 0x01, 0x00});
	check_int(0xfed00000, 5,
		  (const uint8_t[]){0x0c, 0x00, 0x00, 0xd0, 0xfe});
	check_int(0x100000000ULL, 9,
		  (const uint8_t[]){0x0e, 0, 0, 0, 0, 1, 0, 0, 0});
	check_int(0xd000000000ULL, 9,
		  (const uint8_t[]){0x0e, 0, 0, 0, 0, 0xd0, 0, 0, 0});
	check_int(UINT64_MAX, 1, (const uint8_t[]){0xff});
}

static void
check_name(const char *path, size_t n, const void *want)
{
	struct aml a;

	aml_init(&a);
	aml_namestring(&a, path);
	assert_true(aml_ok(&a));
	assert_int_equal(a.len, n);
	assert_memory_equal(a.buf, want, n);
	aml_free(&a);
}

static void
check_bad_name(const char *path)
{
	struct aml a;

	aml_init(&a);
	aml_namestring(&a, path);
	assert_false(aml_ok(&a));
	aml_free(&a);
}

static void
test_aml_names(void **state)
{
	(void)state;
	check_name("_SB", 4, "_SB_");
	check_name("S5", 4, "S5__");
	check_name("PCI0", 4, "PCI0");
	check_name("\\_SB", 5, "\\_SB_");
	check_name("\\_SB.PCI0", 10, "\\\x2e_SB_PCI0");
	check_name("\\_SB.PCI0.ISA", 15, "\\\x2f\x03_SB_PCI0ISA_");
	check_name("^FOO", 5, "^FOO_");
	check_name("\\", 2, "\\\x00");
	check_bad_name("1ABC");
	check_bad_name("ABCDE");
	check_bad_name("pci0");
	check_bad_name("\\_SB.");
	check_bad_name("\\_SB..PCI0");
}

static void
test_aml_eisaid(void **state)
{
	(void)state;
	assert_int_equal(aml_eisaid("PNP0A08"), 0x080ad041);
	assert_int_equal(aml_eisaid("PNP0A03"), 0x030ad041);
	assert_int_equal(aml_eisaid("PNP0501"), 0x0105d041);
	assert_int_equal(aml_eisaid("PNP0a03"), 0);
	assert_int_equal(aml_eisaid("PNP0A0"), 0);
	assert_int_equal(aml_eisaid("pNP0A03"), 0);
}

static void
test_aml_objects(void **state)
{
	static const uint8_t method[] = {0x14, 0x09, '_',  'S',	 'T',
					 'A',  0x00, 0xa4, 0x0a, 0x0f};
	static const uint8_t rt[] = {0x11, 0x0d, 0x0a, 0x0a, 0x47, 0x01, 0xf8,
				     0x03, 0xf8, 0x03, 0x01, 0x08, 0x79, 0x00};
	static const uint8_t hid[] = {0x08, '_',  'H',	'I',  'D',
				      0x0c, 0x41, 0xd0, 0x0a, 0x08};
	static const uint8_t str[] = {0x08, '_', 'U', 'I', 'D',
				      0x0d, 'a', 'b', 0x00};
	static const uint8_t dev[] = {0x5b, 0x82, 0x0b, 'D', 'E', 'V', '_',
				      0x08, '_',  'A',	'D', 'R', 0x00};
	struct aml a;

	(void)state;
	aml_init(&a);
	aml_method_begin(&a, "_STA", 0, false);
	aml_return(&a);
	aml_integer(&a, 0x0f);
	aml_end(&a);
	assert_true(aml_ok(&a));
	assert_int_equal(a.len, sizeof(method));
	assert_memory_equal(a.buf, method, sizeof(method));
	aml_free(&a);

	aml_init(&a);
	aml_rt_begin(&a);
	aml_rt_io(&a, 0x3f8, 0x3f8, 1, 8);
	aml_rt_end(&a);
	assert_true(aml_ok(&a));
	assert_int_equal(a.len, sizeof(rt));
	assert_memory_equal(a.buf, rt, sizeof(rt));
	aml_free(&a);

	aml_init(&a);
	aml_name_eisaid(&a, "_HID", "PNP0A08");
	assert_int_equal(a.len, sizeof(hid));
	assert_memory_equal(a.buf, hid, sizeof(hid));
	aml_free(&a);

	aml_init(&a);
	aml_name_string(&a, "_UID", "ab");
	assert_int_equal(a.len, sizeof(str));
	assert_memory_equal(a.buf, str, sizeof(str));
	aml_free(&a);

	aml_init(&a);
	aml_device_begin(&a, "DEV");
	aml_name_integer(&a, "_ADR", 0);
	aml_end(&a);
	assert_true(aml_ok(&a));
	assert_int_equal(a.len, sizeof(dev));
	assert_memory_equal(a.buf, dev, sizeof(dev));
	aml_free(&a);
}

static void
test_aml_errors(void **state)
{
	struct aml a;

	(void)state;
	aml_init(&a);
	aml_end(&a); /* nothing open */
	assert_false(aml_ok(&a));
	aml_free(&a);

	aml_init(&a);
	aml_device_begin(&a, "DEV"); /* never closed */
	assert_false(aml_ok(&a));
	aml_free(&a);

	aml_init(&a);
	aml_package_begin(&a, 0);
	aml_rt_end(&a); /* an End Tag outside a buffer */
	assert_false(aml_ok(&a));
	aml_free(&a);

	aml_init(&a);
	aml_rt_begin(&a);
	aml_rt_word_io(&a, 0, 0xffff); /* length 0x10000 is not a Word */
	aml_rt_end(&a);
	assert_false(aml_ok(&a));
	aml_free(&a);

	aml_init(&a);
	aml_name_eisaid(&a, "_HID", "PNP0A0G");
	assert_false(aml_ok(&a));
	aml_free(&a);
}

/* ---- ACPI tables ---- */

struct tables {
	const uint8_t *rsdp, *rsdt, *xsdt, *madt, *fadt, *hpet, *mcfg, *facs,
	    *dsdt;
};

/* A table at addr: its signature, a sane length, a zero checksum. */
static const uint8_t *
table_at(struct fx *f, uint64_t addr, const char *sig)
{
	const uint8_t *t;
	uint32_t len;

	assert_true(addr >= ACPI_BASE && addr + 36 <= BIOS_AREA_END);
	t = gpa(f, addr, 36);
	assert_memory_equal(t, sig, 4);
	len = get32(t + 4);
	assert_true(len >= 36 && addr + len <= BIOS_AREA_END);
	t = gpa(f, addr, len);
	assert_int_equal(sum(t, len), 0);
	assert_memory_equal(t + 10, "BHYVE ", 6);
	return t;
}

static void
find_tables(struct fx *f, struct tables *t)
{
	int n;

	memset(t, 0, sizeof(*t));
	t->rsdp = gpa(f, ACPI_BASE, 36);
	assert_memory_equal(t->rsdp, "RSD PTR ", 8);
	assert_int_equal(sum(t->rsdp, 20), 0);
	assert_int_equal(sum(t->rsdp, 36), 0);
	assert_int_equal(t->rsdp[15], 2);
	assert_int_equal(get32(t->rsdp + 20), 36);
	t->rsdt = table_at(f, get32(t->rsdp + 16), "RSDT");
	t->xsdt = table_at(f, get64(t->rsdp + 24), "XSDT");
	assert_memory_equal(t->xsdt + 16, "BVXSDT  ", 8);
	n = (int)(get32(t->xsdt + 4) - 36) / 8;
	assert_int_equal(n, 4);
	assert_int_equal((get32(t->rsdt + 4) - 36) / 4, (uint32_t)n);
	for (int i = 0; i < n; i++) {
		uint64_t addr = get64(t->xsdt + 36 + 8 * i);
		const uint8_t *p = gpa(f, addr, 4);

		assert_int_equal(get32(t->rsdt + 36 + 4 * i), addr);
		assert_int_equal(addr % 8, 0);
		if (!memcmp(p, "APIC", 4))
			t->madt = table_at(f, addr, "APIC");
		else if (!memcmp(p, "FACP", 4))
			t->fadt = table_at(f, addr, "FACP");
		else if (!memcmp(p, "HPET", 4))
			t->hpet = table_at(f, addr, "HPET");
		else if (!memcmp(p, "MCFG", 4))
			t->mcfg = table_at(f, addr, "MCFG");
		else
			fail_msg("unexpected table %.4s", (const char *)p);
	}
	assert_non_null(t->madt);
	assert_non_null(t->fadt);
	assert_non_null(t->hpet);
	assert_non_null(t->mcfg);
	/* FACS: no checksum, 64-byte aligned (ACPI 6.4 §5.2.10). */
	assert_int_equal(get32(t->fadt + 36), get64(t->fadt + 132));
	assert_int_equal(get32(t->fadt + 36) % 64, 0);
	t->facs = gpa(f, get32(t->fadt + 36), 64);
	assert_memory_equal(t->facs, "FACS", 4);
	assert_int_equal(get32(t->facs + 4), 64);
	assert_int_equal(get32(t->fadt + 40), get64(t->fadt + 140));
	t->dsdt = table_at(f, get32(t->fadt + 40), "DSDT");
	assert_int_equal(t->dsdt[8], 2); /* 64-bit integers */
}

static void
check_gas(const uint8_t *g, uint8_t space, uint8_t width, uint8_t access,
	  uint64_t addr)
{
	assert_int_equal(g[0], space);
	assert_int_equal(g[1], width);
	assert_int_equal(g[2], 0);
	assert_int_equal(g[3], access);
	assert_int_equal(get64(g + 4), addr);
}

static void
test_acpi_fadt(void **state)
{
	struct fx *f = fx_new(1, 64 << 20, NULL);
	struct tables t;
	const uint8_t *p;
	uint32_t flags;

	(void)state;
	assert_int_equal(acpi_build(f->ctx, 1), 0);
	find_tables(f, &t);
	p = t.fadt;
	assert_int_equal(get32(p + 4), 276);
	assert_int_equal(p[8], 6);
	assert_int_equal(get16(p + 46), 9);    /* SCI_INT */
	assert_int_equal(get32(p + 48), 0xb2); /* SMI_CMD */
	assert_int_equal(p[52], 0xa0);
	assert_int_equal(p[53], 0xa1);
	assert_int_equal(get32(p + 56), 0x400);
	assert_int_equal(get32(p + 64), 0x404);
	assert_int_equal(get32(p + 76), 0x408);
	assert_int_equal(p[88], 4);
	assert_int_equal(p[89], 2);
	assert_int_equal(p[91], 4);
	assert_int_equal(get32(p + 60), 0); /* no PM1b, PM2, GPEs */
	assert_int_equal(get32(p + 68), 0);
	assert_int_equal(get32(p + 80), 0);
	assert_int_equal(p[108], 0x32);		       /* century */
	assert_int_equal(get16(p + 109) & 0x2, 0);     /* no 8042 */
	assert_int_not_equal(get16(p + 109) & 0x4, 0); /* no VGA */
	assert_int_equal(get16(p + 109) & 0x8, 0);     /* MSI works */
	flags = get32(p + 112);
	assert_int_not_equal(flags & (1u << 0), 0);  /* WBINVD */
	assert_int_not_equal(flags & (1u << 2), 0);  /* PROC_C1 */
	assert_int_equal(flags & (1u << 4), 0);	     /* fixed power button */
	assert_int_not_equal(flags & (1u << 5), 0);  /* no sleep button */
	assert_int_not_equal(flags & (1u << 8), 0);  /* TMR_VAL_EXT */
	assert_int_not_equal(flags & (1u << 10), 0); /* RESET_REG_SUP */
	assert_int_equal(flags & (1u << 20), 0);     /* not HW_REDUCED */
	check_gas(p + 116, 1, 8, 1, 0xcf9);
	assert_int_equal(p[128], 6);
	check_gas(p + 148, 1, 32, 2, 0x400);
	check_gas(p + 160, 0, 0, 0, 0);
	check_gas(p + 172, 1, 16, 2, 0x404);
	check_gas(p + 208, 1, 32, 3, 0x408);
	fx_free(f);
}

static void
check_madt(int ncpus)
{
	struct fx *f = fx_new(ncpus, 64 << 20, NULL);
	struct tables t;
	const uint8_t *e, *end;
	int lapics = 0, ioapics = 0, isos = 0, nmis = 0;

	assert_int_equal(acpi_build(f->ctx, ncpus), 0);
	find_tables(f, &t);
	assert_int_equal(t.madt[8], 5);
	assert_int_equal(get32(t.madt + 36), 0xfee00000);
	assert_int_equal(get32(t.madt + 40), 1);
	e = t.madt + 44;
	end = t.madt + get32(t.madt + 4);
	while (e < end) {
		assert_true(e[1] >= 2 && e + e[1] <= end);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], lapics);
			assert_int_equal(e[3], lapics);
			assert_int_equal(get32(e + 4), 1);
			lapics++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], ncpus);
			assert_int_equal(get32(e + 4), 0xfec00000);
			assert_int_equal(get32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0);
			if (e[3] == 0) {
				assert_int_equal(get32(e + 4), 2);
				assert_int_equal(get16(e + 8), 0x5);
			} else {
				assert_int_equal(e[3], 9);
				assert_int_equal(get32(e + 4), 9);
				assert_int_equal(get16(e + 8), 0xd);
			}
			isos++;
			break;
		case 4:
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1);
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %d", e[0]);
		}
		e += e[1];
	}
	assert_ptr_equal(e, end);
	assert_int_equal(lapics, ncpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 2);
	assert_int_equal(nmis, 1);
	fx_free(f);
}

static void
test_acpi_madt(void **state)
{
	(void)state;
	check_madt(1);
	check_madt(2);
	check_madt(4);
	check_madt(16);
	check_madt(VM_MAXCPU);
}

static void
test_acpi_hpet_mcfg(void **state)
{
	struct fx *f = fx_new(2, 64 << 20, NULL);
	struct tables t;
	uint32_t id;

	(void)state;
	assert_int_equal(acpi_build(f->ctx, 2), 0);
	find_tables(f, &t);
	assert_int_equal(get32(t.hpet + 4), 56);
	id = get32(t.hpet + 36);
	assert_int_equal(id, hpet_block_id());
	assert_int_equal(id >> 16, 0x8086);	   /* vendor */
	assert_int_equal((id >> 8 & 0x1f) + 1, 3); /* comparators */
	assert_int_not_equal(id & (1u << 13), 0);  /* 64-bit counter */
	check_gas(t.hpet + 40, 0, 64, 0, 0xfed00000);
	assert_int_equal(get16(t.hpet + 53), HPET_MIN_TICK);

	assert_int_equal(get32(t.mcfg + 4), 60);
	assert_int_equal(get64(t.mcfg + 44), PCI_EMUL_ECFG_BASE);
	assert_int_equal(get16(t.mcfg + 52), 0);
	assert_int_equal(t.mcfg[54], 0);
	/* End bus: the last bus with a device (all on bus 0 here). */
	assert_int_equal(t.mcfg[55], 0);
	fx_free(f);
}

/* The DSDT has what the machine has: the _PRT, COM1 only, the bridge. */
static void
test_acpi_dsdt_content(void **state)
{
	struct fx *f = fx_new(1, 64 << 20, NULL);
	struct pci_devinst *d3 = pci_find_devinst(f->ctx, 0, 3, 0);
	struct pci_devinst *d4 = pci_find_devinst(f->ctx, 0, 4, 0);
	struct tables t;
	uint32_t len;
	uint8_t prt3[] = {0x12, 0x0b, 0x04, 0x0c, 0xff, 0xff,
			  0x03, 0x00, 0x00, 0x00, 0x0a, 0x00};
	uint8_t prt4[sizeof(prt3)];
	struct fw_mp mp = {0};

	(void)state;
	assert_int_equal(acpi_build(f->ctx, 1), 0);
	find_tables(f, &t);
	len = get32(t.dsdt + 4);
	assert_true(has_bytes(t.dsdt, len, "\x0c\x41\xd0\x0a\x08", 5));
	assert_true(has_bytes(t.dsdt, len, "\x0c\x41\xd0\x0a\x03", 5));
	assert_true(has_bytes(t.dsdt, len, "COM1", 4));
	assert_false(has_bytes(t.dsdt, len, "COM2", 4));
	assert_true(has_bytes(t.dsdt, len, "_S5_", 4));
	assert_true(has_bytes(t.dsdt, len, "_PIC", 4));
	/* _PRT entries: Package(4) {0x0003FFFF, 0, 0, irq}. */
	prt3[11] = (uint8_t)d3->pi_lintr.irq;
	assert_true(has_bytes(t.dsdt, len, prt3, sizeof(prt3)));
	memcpy(prt4, prt3, sizeof(prt3));
	prt4[6] = 0x04;
	prt4[11] = (uint8_t)d4->pi_lintr.irq;
	assert_true(has_bytes(t.dsdt, len, prt4, sizeof(prt4)));
	/* 0:4.1 shares slot 4's INTA entry: one route per slot and pin. */
	assert_int_equal(fw_mptable(f->ctx, &mp), 0);
	assert_int_equal(mp.nintx, 2);
	fw_mp_free(&mp);
	fx_free(f);
}

static bool
have_iasl(void)
{
	return system("command -v iasl >/dev/null 2>&1") == 0;
}

static void
write_file(const char *path, const void *p, size_t n)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

/* Run cmd; fail the test with its output when it fails or says Error. */
static void
run_clean(const char *cmd, const char *log)
{
	char line[512], full[1024];
	int rc;
	FILE *fp;

	snprintf(full, sizeof(full), "%s >%s 2>&1", cmd, log);
	rc = system(full);
	fp = fopen(log, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		bool bad =
		    (strstr(line, "Error") && !strstr(line, " 0 Errors")) ||
		    strstr(line, "Exception") || strstr(line, "AE_");

		if (rc != 0 || bad)
			fprintf(stderr, "iasl: %s", line);
		assert_false(bad);
	}
	fclose(fp);
	if (rc != 0)
		fail_msg("'%s' failed (%d)", cmd, rc);
}

static bool
file_has(const char *path, const char *s)
{
	char line[512];
	bool found = false;
	FILE *fp = fopen(path, "r");

	assert_non_null(fp);
	while (!found && fgets(line, sizeof(line), fp))
		found = strstr(line, s) != NULL;
	fclose(fp);
	return found;
}

/*
 * iasl -d takes our DSDT apart without complaint, and what it writes
 * compiles again: the AML is well formed and means what we meant.
 */
static void
test_acpi_dsdt_iasl(void **state)
{
	struct fx *f = fx_new(4, 64 << 20, NULL);
	struct tables t;
	char dir[] = "/tmp/test_acpi.XXXXXX", path[128], cmd[512];
	static const char *const want[] = {
	    "PNP0A08",	  "PNP0A03",	"PNP0501",
	    "PNP0B00",	  "PNP0100",	"PNP0000",
	    "PNP0103",	  "PNP0C02",	"_S5_",
	    "_PRT",	  "_PIC",	"0x0003FFFF",
	    "0x0004FFFF", "0xFED00000", "0x000000D000000000",
	    "_BBN",
	};
	const struct {
		const char *sig;
		const uint8_t *const *p;
	} others[] = {
	    {"facp", &t.fadt},
	    {"apic", &t.madt},
	    {"hpet", &t.hpet},
	    {"mcfg", &t.mcfg},
	};

	(void)state;
	if (!have_iasl())
		fail_msg("iasl not found: install acpica-tools "
			 "(apt-get install acpica-tools) to test the DSDT");
	assert_int_equal(acpi_build(f->ctx, 4), 0);
	find_tables(f, &t);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/dsdt.dat", dir);
	write_file(path, t.dsdt, get32(t.dsdt + 4));
	snprintf(cmd, sizeof(cmd), "cd %s && iasl -d dsdt.dat", dir);
	snprintf(path, sizeof(path), "%s/disasm.log", dir);
	run_clean(cmd, path);
	snprintf(path, sizeof(path), "%s/dsdt.dsl", dir);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!file_has(path, want[i]))
			fail_msg("the disassembled DSDT has no %s", want[i]);
	snprintf(cmd, sizeof(cmd), "cd %s && iasl -p again dsdt.dsl", dir);
	snprintf(path, sizeof(path), "%s/compile.log", dir);
	run_clean(cmd, path);
	/* ACPICA's interpreter loads it and runs what Linux runs. */
	snprintf(cmd, sizeof(cmd),
		 "cd %s && acpiexec -b 'evaluate \\_SB.PCI0._PRT; evaluate "
		 "\\_SB.PCI0._CRS; evaluate \\_S5; evaluate \\_PIC 1; "
		 "evaluate \\PICM; evaluate \\_SB.HPET._STA; evaluate "
		 "\\_SB.PCI0.ISA.COM1._CRS' dsdt.dat",
		 dir);
	snprintf(path, sizeof(path), "%s/exec.log", dir);
	run_clean(cmd, path);
	if (!file_has(path, "_PRT") || !file_has(path, "Contains 2 Elements") ||
	    !file_has(path, "[Integer] = 000000000004FFFF") ||
	    !file_has(path, "[Integer] = 0000000000000001") ||
	    !file_has(path, "[Integer] = 000000000000000F"))
		fail_msg("acpiexec did not evaluate the DSDT as expected: see "
			 "%s",
			 path);
	/* The data tables disassemble too (iasl checks their layouts). */
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		const uint8_t *p = *others[i].p;

		snprintf(path, sizeof(path), "%s/%s.dat", dir, others[i].sig);
		write_file(path, p, get32(p + 4));
		snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s.dat", dir,
			 others[i].sig);
		snprintf(path, sizeof(path), "%s/%s.log", dir, others[i].sig);
		run_clean(cmd, path);
		snprintf(path, sizeof(path), "%s/%s.dsl", dir, others[i].sig);
		if (file_has(path, "Invalid") || file_has(path, "**** "))
			fail_msg("iasl found a problem in %s: see %s",
				 others[i].sig, path);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	fx_free(f);
}

static void
test_acpi_bad_ncpus(void **state)
{
	struct fx *f = fx_new(1, 64 << 20, NULL);

	(void)state;
	assert_int_equal(acpi_build(f->ctx, 0), -1);
	assert_int_equal(acpi_build(f->ctx, VM_MAXCPU + 1), -1);
	assert_int_equal(mptable_build(f->ctx, 0), -1);
	fx_free(f);
}

/* ---- MP table ---- */

static void
test_mptable(void **state)
{
	struct fx *f = fx_new(4, 64 << 20, NULL);
	const uint8_t *fp, *ch, *e;
	int count, procs = 0, buses = 0, ioapics = 0, ioints = 0, lints = 0;
	int last_type = 0, pci_ints = 0;

	(void)state;
	assert_int_equal(mptable_build(f->ctx, 4), 0);
	fp = gpa(f, MPTABLE_BASE, 16);
	assert_memory_equal(fp, "_MP_", 4);
	assert_int_equal(fp[8], 1);
	assert_int_equal(fp[9], 4);
	assert_int_equal(sum(fp, 16), 0);
	assert_int_equal(fp[11], 0); /* a configuration table follows */
	ch = gpa(f, get32(fp + 4), 44);
	assert_memory_equal(ch, "PCMP", 4);
	assert_true(get32(fp + 4) + get16(ch + 4) <=
		    MPTABLE_BASE + MPTABLE_MAX);
	ch = gpa(f, get32(fp + 4), get16(ch + 4));
	assert_int_equal(sum(ch, get16(ch + 4)), 0);
	assert_int_equal(get32(ch + 36), 0xfee00000);
	count = get16(ch + 34);
	e = ch + 44;
	for (int i = 0; i < count; i++) {
		assert_true(e[0] >= last_type); /* sorted by type */
		last_type = e[0];
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], procs);
			assert_int_equal(e[3], procs == 0 ? 3 : 1);
			procs++;
			e += 20;
			continue;
		case 1:
			buses++;
			break;
		case 2:
			assert_int_equal(e[1], 4);
			assert_int_equal(get32(e + 4), 0xfec00000);
			ioapics++;
			break;
		case 3:
			if (e[4] == 0) { /* PCI bus 0 */
				pci_ints++;
				assert_int_equal(e[5] & 3, 0); /* INTA */
			}
			ioints++;
			break;
		case 4:
			lints++;
			break;
		default:
			fail_msg("bad MP entry type %d", e[0]);
		}
		e += 8;
	}
	assert_ptr_equal(e, ch + get16(ch + 4));
	assert_int_equal(procs, 4);
	assert_int_equal(buses, 2); /* PCI 0, ISA 1 */
	assert_int_equal(ioapics, 1);
	assert_int_equal(pci_ints, 2);	  /* slots 3 and 4 */
	assert_int_equal(ioints, 16 + 2); /* 15 ISA IRQs + ExtINT + PCI */
	assert_int_equal(lints, 2);
	fx_free(f);
}

static void
no_mptable(struct config *cfg)
{
	set(cfg, "x86.mptable", "false");
}

static void
test_mptable_off(void **state)
{
	struct fx *f = fx_new(1, 64 << 20, no_mptable);

	(void)state;
	assert_int_equal(mptable_build(f->ctx, 1), 0);
	assert_false(
	    has_bytes(gpa(f, BIOS_AREA_BASE, 0x10000), 0x10000, "_MP_", 4));
	fx_free(f);
}

/* ---- SMBIOS ---- */

struct smb {
	const uint8_t *s[128];
	int n;
};

/* Check the entry point and walk the structures. */
static void
smbios_walk(struct fx *f, struct smb *out)
{
	const uint8_t *ep = gpa(f, SMBIOS_BASE, 0x1f), *p, *end;
	uint32_t addr;
	uint16_t len, count;
	size_t maxsz = 0;

	assert_memory_equal(ep, "_SM_", 4);
	assert_int_equal(ep[5], 0x1f);
	assert_int_equal(sum(ep, 0x1f), 0);
	assert_memory_equal(ep + 0x10, "_DMI_", 5);
	assert_int_equal(sum(ep + 0x10, 0x0f), 0);
	assert_int_equal(ep[6], 2);
	assert_int_equal(ep[7], 8);
	addr = get32(ep + 0x18);
	len = get16(ep + 0x16);
	count = get16(ep + 0x1c);
	assert_true(addr >= SMBIOS_BASE + 0x1f &&
		    addr + len <= SMBIOS_BASE + SMBIOS_MAX);
	p = gpa(f, addr, len);
	end = p + len;
	out->n = 0;
	for (int i = 0; i < count; i++) {
		const uint8_t *start = p;

		assert_true(p + 4 <= end && p[1] >= 4 && p + p[1] + 2 <= end);
		assert_true(out->n < 128);
		out->s[out->n++] = p;
		assert_int_equal(get16(p + 2), i); /* handles in order */
		p += p[1];
		/* Strings, then one more NUL (two NULs with none). */
		if (!p[0]) {
			assert_int_equal(p[1], 0);
			p += 2;
		} else {
			while (p < end && *p) {
				p += strnlen((const char *)p, end - p) + 1;
			}
			assert_true(p < end);
			p++;
		}
		if ((size_t)(p - start) > maxsz)
			maxsz = (size_t)(p - start);
	}
	assert_ptr_equal(p, end);
	assert_int_equal(out->s[out->n - 1][0], 127);
	assert_int_equal(get16(ep + 8), maxsz);
}

/* String number idx of structure s, or NULL. */
static const char *
smb_str(const uint8_t *s, int idx)
{
	const char *p = (const char *)s + s[1];

	if (idx == 0)
		return NULL;
	while (--idx > 0 && *p)
		p += strlen(p) + 1;
	return *p ? p : NULL;
}

static const uint8_t *
smb_type(const struct smb *m, int type, int nth)
{
	for (int i = 0; i < m->n; i++)
		if (m->s[i][0] == type && nth-- == 0)
			return m->s[i];
	return NULL;
}

static void
smbios_keys(struct config *cfg)
{
	set(cfg, "bios.vendor", "TestBIOS");
	set(cfg, "bios.version", "2.5");
	set(cfg, "system.manufacturer", "Maker");
	set(cfg, "system.serial_number", "SN-42");
	set(cfg, "system.family_name", "Fam");
	set(cfg, "board.asset_tag", "BA-1");
	set(cfg, "chassis.sku", "CSKU");
	set(cfg, "uuid", "01234567-89ab-cdef-0123-456789ABCDEF");
}

static void
test_smbios_tables(void **state)
{
	struct fx *f = fx_new(4, 64 << 20, smbios_keys);
	struct vm_topology topo = {2, 2, 1};
	static const uint8_t uuid[16] = {0x67, 0x45, 0x23, 0x01, 0xab, 0x89,
					 0xef, 0xcd, 0x01, 0x23, 0x45, 0x67,
					 0x89, 0xab, 0xcd, 0xef};
	const uint8_t *s;
	struct smb m;

	(void)state;
	assert_int_equal(vm_set_topology(f->ctx, &topo), 0);
	assert_int_equal(smbios_build(f->ctx), 0);
	smbios_walk(f, &m);
	s = smb_type(&m, 0, 0);
	assert_non_null(s);
	assert_string_equal(smb_str(s, s[4]), "TestBIOS");
	assert_string_equal(smb_str(s, s[5]), "2.5");
	assert_string_equal(smb_str(s, s[8]), "10/17/2021");
	assert_int_equal(s[0x14], 2);
	assert_int_equal(s[0x15], 5);
	s = smb_type(&m, 1, 0);
	assert_non_null(s);
	assert_string_equal(smb_str(s, s[4]), "Maker");
	assert_string_equal(smb_str(s, s[5]), "BHYVE");
	assert_string_equal(smb_str(s, s[7]), "SN-42");
	assert_string_equal(smb_str(s, s[0x19]), "None");
	assert_string_equal(smb_str(s, s[0x1a]), "Fam");
	assert_memory_equal(s + 8, uuid, 16);
	s = smb_type(&m, 2, 0);
	assert_non_null(s);
	assert_string_equal(smb_str(s, s[8]), "BA-1");
	assert_int_equal(get16(s + 0x0b), get16(smb_type(&m, 3, 0) + 2));
	s = smb_type(&m, 3, 0);
	assert_string_equal(smb_str(s, s[0x15]), "CSKU");
	assert_string_equal(smb_str(s, s[4]), "FreeBSD");
	/* One processor per socket, two cores each. */
	assert_non_null(smb_type(&m, 4, 1));
	assert_null(smb_type(&m, 4, 2));
	s = smb_type(&m, 4, 1);
	assert_string_equal(smb_str(s, s[4]), "CPU #1");
	assert_int_equal(s[0x23], 2);
	assert_int_equal(s[0x25], 2);
	/* 64 MiB of RAM, all below the hole. */
	s = smb_type(&m, 16, 0);
	assert_int_equal(get32(s + 7), 64 << 10);
	s = smb_type(&m, 17, 0);
	assert_int_equal(get16(s + 4), get16(smb_type(&m, 16, 0) + 2));
	assert_int_equal(get16(s + 0x0c), 64);
	s = smb_type(&m, 19, 0);
	assert_int_equal(get32(s + 4), 0);
	assert_int_equal(get32(s + 8), (64 << 10) - 1);
	assert_null(smb_type(&m, 19, 1));
	assert_non_null(smb_type(&m, 32, 0));
	fx_free(f);
}

static void
uuid_of(const char *name, uint8_t out[16])
{
	struct fx *f = fx_new(1, 64 << 20, NULL);
	struct smb m;

	set(f->cfg, "name", name);
	assert_int_equal(smbios_build(f->ctx), 0);
	smbios_walk(f, &m);
	memcpy(out, smb_type(&m, 1, 0) + 8, 16);
	fx_free(f);
}

static void
test_smbios_uuid(void **state)
{
	uint8_t a[16], b[16], c[16], u[16];
	struct fx *f;

	(void)state;
	uuid_of("vm-a", a);
	uuid_of("vm-a", b);
	uuid_of("vm-b", c);
	assert_memory_equal(a, b, 16);
	assert_memory_not_equal(a, c, 16);
	assert_int_equal(a[7] >> 4, 8);	     /* version 8, stored LE */
	assert_int_equal(a[8] & 0xc0, 0x80); /* variant 10 */
	assert_int_equal(
	    smbios_parse_uuid("0123456789ab-cdef-0123-456789abcdef", u), -1);
	assert_int_equal(
	    smbios_parse_uuid("01234567-89ab-cdef-0123-456789abcdeg", u), -1);
	f = fx_new(1, 64 << 20, NULL);
	set(f->cfg, "uuid", "not-a-uuid");
	assert_int_equal(smbios_build(f->ctx), -1);
	fx_free(f);
}

/* All three in the BIOS area together: none overwrites another. */
static void
test_bios_area(void **state)
{
	struct fx *f = fx_new(VM_MAXCPU, 5ULL << 30, smbios_keys);
	struct vm_topology topo = {VM_MAXCPU, 1, 1};
	struct tables t;
	struct smb m;

	(void)state;
	assert_int_equal(vm_set_topology(f->ctx, &topo), 0);
	assert_int_equal(acpi_build(f->ctx, VM_MAXCPU), 0);
	assert_int_equal(mptable_build(f->ctx, VM_MAXCPU), 0);
	assert_int_equal(smbios_build(f->ctx), 0);
	find_tables(f, &t);
	smbios_walk(f, &m);
	assert_non_null(smb_type(&m, 4, VM_MAXCPU - 1));
	assert_non_null(smb_type(&m, 19, 1)); /* RAM above 4 GiB */
	assert_int_equal(sum(gpa(f, MPTABLE_BASE, 16), 16), 0);
	assert_true(get16(gpa(f, MPTABLE_BASE + 16, 44) + 4) + 16u <=
		    MPTABLE_MAX);
	fx_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_aml_pkglen_forms),
	    cmocka_unit_test(test_aml_pkglen_backpatch),
	    cmocka_unit_test(test_aml_integers),
	    cmocka_unit_test(test_aml_names),
	    cmocka_unit_test(test_aml_eisaid),
	    cmocka_unit_test(test_aml_objects),
	    cmocka_unit_test(test_aml_errors),
	    cmocka_unit_test(test_acpi_fadt),
	    cmocka_unit_test(test_acpi_madt),
	    cmocka_unit_test(test_acpi_hpet_mcfg),
	    cmocka_unit_test(test_acpi_dsdt_content),
	    cmocka_unit_test(test_acpi_dsdt_iasl),
	    cmocka_unit_test(test_acpi_bad_ncpus),
	    cmocka_unit_test(test_mptable),
	    cmocka_unit_test(test_mptable_off),
	    cmocka_unit_test(test_smbios_tables),
	    cmocka_unit_test(test_smbios_uuid),
	    cmocka_unit_test(test_bios_area),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
