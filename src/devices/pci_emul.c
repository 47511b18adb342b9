/*
 * The PCI core (PCI Local Bus 3.0, PCI Firmware 3.2 for ECAM).
 *
 * Devices are found in the config tree as pci.BUS.SLOT.FUNC.device and
 * created by name from the PCI_EMUL_SET linker set. The guest reaches
 * config space through mechanism #1 (0xCF8 address, 0xCFC-0xCFF data) or
 * ECAM at PCI_EMUL_ECFG_BASE. BARs are placed at start-up and move when the
 * guest reprograms them; their handlers are registered while decoding is
 * enabled in the command register. The MSI-X table and PBA are served here,
 * in whichever memory BAR the device put them.
 *
 * The bus is a sysdev: it comes up after the platform devices, describes
 * itself in the firmware tables (PCI0 with its _CRS and _PRT, the ECAM
 * reservation, MCFG, the MP table's buses and routes) and is undone by
 * machine_free, each function's pe_deinit first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "fwtab.h"
#include "inout.h"
#include "mem.h"
#include "pci_emul.h"
#include "ratelimit.h"

#define PCIR_VENDOR 0x00
#define PCIR_COMMAND 0x04
#define PCIM_CMD_PORTEN 0x0001
#define PCIM_CMD_MEMEN 0x0002
#define PCIM_CMD_INTxDIS 0x0400
#define PCIR_STATUS 0x06
#define PCIM_STATUS_CAPPRESENT 0x0010
#define PCIM_STATUS_INTxSTATE 0x0008
#define PCIR_HDRTYPE 0x0e
#define PCIM_MFDEV 0x80
#define PCIR_BAR0 0x10
#define PCIR_CAP_PTR 0x34
#define PCIR_INTLINE 0x3c
#define PCIR_INTPIN 0x3d
#define PCIY_MSI 0x05
#define PCIY_MSIX 0x11
#define PCIM_MSIXCTRL_ENABLE 0x8000
#define PCIM_MSIXCTRL_FUNCMASK 0x4000
#define PCI_MSIX_CAPLEN 12
#define MSIX_ENTRY_SIZE 16
#define MSIX_MAX_VECTORS 2048
#define MSIX_VCTRL_MASK 0x1
#define PCI_CAP_START 0x40
#define PCI_CAP_END 0x100

#define CONF1_ADDR_PORT 0xcf8
#define CONF1_DATA_PORT 0xcfc
#define CONF1_ENABLE 0x80000000u

#define MAXBUSES 256
#define MAXSLOTS 32
#define MAXFUNCS 8

struct pci_state {
	struct vmctx *ctx;
	pthread_mutex_t lock; /* the 0xCF8 latch and config accesses */
	uint32_t cf8;
	struct pci_devinst *dev[MAXBUSES][MAXSLOTS][MAXFUNCS];
	uint64_t iobase, membase32, membase64;
	int next_irq;
	/* A slot's INTA line, shared by its functions (0: none yet). */
	uint8_t slot_irq[MAXBUSES][MAXSLOTS];
	/* A guest can move BARs onto other devices as often as it likes. */
	struct ratelimit overlap_warn;
};

static const struct sysdev pci_sysdev;
static void pci_state_free(void *arg);

/* ---- config space accessors ---- */

static bool
cfg_in_range(int off, int bytes)
{
	return off >= 0 && bytes > 0 && off + bytes <= PCI_CFG_SIZE;
}

uint8_t
pci_get_cfgdata8(struct pci_devinst *pi, int off)
{
	return cfg_in_range(off, 1) ? pi->pi_cfgdata[off] : 0xff;
}

uint16_t
pci_get_cfgdata16(struct pci_devinst *pi, int off)
{
	uint16_t v;

	if (!cfg_in_range(off, 2))
		return 0xffff;
	memcpy(&v, pi->pi_cfgdata + off, 2);
	return v;
}

uint32_t
pci_get_cfgdata32(struct pci_devinst *pi, int off)
{
	uint32_t v;

	if (!cfg_in_range(off, 4))
		return 0xffffffff;
	memcpy(&v, pi->pi_cfgdata + off, 4);
	return v;
}

void
pci_set_cfgdata8(struct pci_devinst *pi, int off, uint8_t v)
{
	if (cfg_in_range(off, 1))
		pi->pi_cfgdata[off] = v;
}

void
pci_set_cfgdata16(struct pci_devinst *pi, int off, uint16_t v)
{
	if (cfg_in_range(off, 2))
		memcpy(pi->pi_cfgdata + off, &v, 2);
}

void
pci_set_cfgdata32(struct pci_devinst *pi, int off, uint32_t v)
{
	if (cfg_in_range(off, 4))
		memcpy(pi->pi_cfgdata + off, &v, 4);
}

/* ---- the device linker set and the -s option ---- */

const struct pci_devemu *
pci_emul_finddev(const char *name)
{
	const void **p;

	SET_FOREACH(p, pci_devemu_set)
	{
		const struct pci_devemu *pe = *p;
		if (!strcmp(pe->pe_emu, name))
			return pe;
	}
	return NULL;
}

/* -s help: the registered devices, sorted (link order is arbitrary). */
void
pci_print_supported_devices(void)
{
	const char *names[64];
	const void **p;
	int n = 0;

	SET_FOREACH(p, pci_devemu_set)
	{
		if (n < 64)
			names[n++] = ((const struct pci_devemu *)*p)->pe_emu;
	}
	print_device_list(names, NULL, n);
}

static int
parse_num(const char *s, int max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

/* "slot", "slot:func" or "bus:slot:func" */
static int
parse_bsf(const char *s, int *bus, int *slot, int *func)
{
	char buf[32], *parts[3];
	int n = 0;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (char *tok = strtok(buf, ":"); tok; tok = strtok(NULL, ":")) {
		if (n == 3)
			return -1;
		parts[n++] = tok;
	}
	*bus = *func = 0;
	if (n == 1)
		return parse_num(parts[0], MAXSLOTS - 1, slot);
	if (n == 2)
		return parse_num(parts[0], MAXSLOTS - 1, slot) ||
				       parse_num(parts[1], MAXFUNCS - 1, func)
			       ? -1
			       : 0;
	if (n == 3)
		return parse_num(parts[0], MAXBUSES - 1, bus) ||
				       parse_num(parts[1], MAXSLOTS - 1, slot) ||
				       parse_num(parts[2], MAXFUNCS - 1, func)
			       ? -1
			       : 0;
	return -1;
}

/*
 * A key that may be given more than once in one -s: the values are joined
 * with ';', the list form its node holds (a NIC's hostfwd=RULE;RULE).
 */
static int
set_repeatable(struct config *node, const char *key, const char *value,
	       char *err, size_t errlen)
{
	const char *old = config_get(node, key);
	char *both;
	int rc;

	if (strcmp(key, "hostfwd") != 0 || !old)
		return config_set(node, key, value, err, errlen);
	if (asprintf(&both, "%s;%s", old, value) < 0)
		return -1;
	rc = config_set(node, key, both, err, errlen);
	free(both);
	return rc;
}

/* The generic legacy config: key=value pairs, a bare word is key=true. */
int
pci_parse_legacy_config(struct config *node, const char *opts, char *err,
			size_t errlen)
{
	char *copy = strdup(opts), *save = NULL;
	int rc = 0;

	if (!copy)
		return -1;
	for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (eq) {
			*eq = '\0';
			rc = set_repeatable(node, tok, eq + 1, err, errlen);
		} else {
			rc = config_set(node, tok, "true", err, errlen);
		}
	}
	free(copy);
	return rc;
}

int
pci_parse_slot(struct config *cfg, const char *opt, char *err, size_t errlen)
{
	char where[32], path[64], emul[64];
	const char *comma = strchr(opt, ',');
	const char *opts = NULL;
	const struct pci_devemu *pe;
	struct config *node;
	int bus, slot, func;
	size_t wl;

	if (!comma) {
		snprintf(err, errlen,
			 "-s %s: expected slot[:func],emulation[,config]", opt);
		return -1;
	}
	wl = comma - opt;
	if (wl < sizeof(where)) {
		memcpy(where, opt, wl);
		where[wl] = '\0';
	}
	if (wl >= sizeof(where) || parse_bsf(where, &bus, &slot, &func) < 0) {
		snprintf(err, errlen, "-s %s: bad slot '%.*s'", opt, (int)wl,
			 opt);
		return -1;
	}
	snprintf(emul, sizeof(emul), "%s", comma + 1);
	char *c2 = strchr(emul, ',');
	if (c2) {
		*c2 = '\0';
		opts = comma + 1 + (c2 - emul) + 1;
	}
	pe = pci_emul_finddev(emul);
	if (!pe) {
		snprintf(err, errlen,
			 "-s %s: unknown device '%s' (see -s help)", opt, emul);
		return -1;
	}
	snprintf(path, sizeof(path), "pci.%d.%d.%d", bus, slot, func);
	if (config_node(cfg, path)) {
		snprintf(err, errlen, "-s %s: slot %d:%d:%d is already in use",
			 opt, bus, slot, func);
		return -1;
	}
	node = config_node_make(cfg, path);
	if (!node || config_set(node, "device", emul, err, errlen) < 0)
		return -1;
	if (!opts || !*opts)
		return 0;
	if (pe->pe_legacy_config)
		return pe->pe_legacy_config(node, opts, err, errlen);
	return pci_parse_legacy_config(node, opts, err, errlen);
}

/* ---- BARs ---- */

static int
bar_io_handler(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax,
	       void *arg)
{
	struct pci_devinst *pi = arg;

	(void)ctx;
	for (int i = 0; i <= PCI_BARMAX; i++) {
		struct pcibar *b = &pi->pi_bar[i];
		uint64_t off;

		if (b->type != PCIBAR_IO || (uint64_t)port < b->addr ||
		    (uint64_t)port + bytes > b->addr + b->size)
			continue;
		off = port - b->addr;
		if (in)
			*eax = pi->pi_d->pe_barread
				       ? pi->pi_d->pe_barread(pi, i, off, bytes)
				       : 0xffffffff;
		else if (pi->pi_d->pe_barwrite)
			pi->pi_d->pe_barwrite(pi, i, off, bytes, *eax);
		return 0;
	}
	return -1;
}

static bool msix_bar_access(struct pci_devinst *pi, int dir, uint64_t off,
			    int size, uint64_t *val);

static int
bar_mem_handler(struct vcpu *vcpu, int dir, uint64_t addr, int size,
		uint64_t *val, void *arg1, long arg2)
{
	struct pci_devinst *pi = arg1;
	struct pcibar *b = &pi->pi_bar[arg2];
	uint64_t off = addr - b->addr;

	(void)vcpu;
	if (size != 1 && size != 2 && size != 4 && size != 8)
		return -1;
	if (pi->pi_msix.capoff && arg2 == pi->pi_msix.table_bar &&
	    msix_bar_access(pi, dir, off, size, val))
		return 0;
	if (dir == MEM_F_READ)
		*val = pi->pi_d->pe_barread
			       ? pi->pi_d->pe_barread(pi, arg2, off, size)
			       : ~0ULL;
	else if (pi->pi_d->pe_barwrite)
		pi->pi_d->pe_barwrite(pi, arg2, off, size, *val);
	return 0;
}

static bool
bar_decoding(struct pci_devinst *pi, int idx)
{
	uint16_t cmd = pci_get_cfgdata16(pi, PCIR_COMMAND);

	if (pi->pi_bar[idx].type == PCIBAR_IO)
		return cmd & PCIM_CMD_PORTEN;
	return cmd & PCIM_CMD_MEMEN;
}

static void
bar_register(struct pci_devinst *pi, int idx, bool on)
{
	struct pcibar *b = &pi->pi_bar[idx];
	struct vmctx *ctx = pi->pi_vmctx;
	int rc;

	if (b->type == PCIBAR_IO) {
		struct inout_port iop = {pi->pi_name, (int)b->addr,
					 (int)b->size, IOPORT_F_INOUT,
					 bar_io_handler, pi};
		if (b->addr == 0 || b->addr + b->size > PCI_EMUL_IOLIMIT)
			return;
		if (!on && pi->pi_d->pe_baraddr)
			pi->pi_d->pe_baraddr(pi, idx, false, b->addr);
		rc = on ? register_inout(ctx, &iop)
			: unregister_inout(ctx, &iop);
		if (on && rc == 0 && pi->pi_d->pe_baraddr)
			pi->pi_d->pe_baraddr(pi, idx, true, b->addr);
	} else if (b->type == PCIBAR_MEM32 || b->type == PCIBAR_MEM64) {
		struct mem_range mr = {pi->pi_name, MEM_F_RW, bar_mem_handler,
				       pi, idx, b->addr, b->size};
		if (b->addr == 0)
			return;
		rc = on ? register_mem(ctx, &mr) : unregister_mem(ctx, &mr);
	} else {
		return;
	}
	if (rc < 0 && on)
		ratelimit_warn(&machine_of(ctx)->pci->overlap_warn,
			       "%s: BAR %d at 0x%llx overlaps another device; "
			       "not decoded",
			       pi->pi_name, idx, (unsigned long long)b->addr);
}

static uint64_t
roundup_pow2(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

int
pci_emul_alloc_bar(struct pci_devinst *pi, int idx, enum pcibar_type type,
		   uint64_t size)
{
	struct pci_state *ps = machine_of(pi->pi_vmctx)->pci;
	uint64_t *base, limit, addr;
	uint32_t lobits;

	if (idx < 0 || idx > PCI_BARMAX ||
	    (type == PCIBAR_MEM64 && idx == PCI_BARMAX))
		return -1;
	size = roundup_pow2(size < (type == PCIBAR_IO ? 4 : 4096)
				    ? (type == PCIBAR_IO ? 4 : 4096)
				    : size);
	switch (type) {
	case PCIBAR_IO:
		base = &ps->iobase;
		limit = PCI_EMUL_IOLIMIT;
		lobits = 0x1;
		break;
	case PCIBAR_MEM32:
		base = &ps->membase32;
		limit = PCI_EMUL_MEMLIMIT32;
		lobits = 0x0;
		break;
	case PCIBAR_MEM64:
		base = &ps->membase64;
		limit = PCI_EMUL_MEMLIMIT64;
		lobits = 0x4 | 0x8; /* 64-bit, prefetchable */
		break;
	default:
		return -1;
	}
	addr = (*base + size - 1) & ~(size - 1);
	if (addr + size > limit) {
		fprintf(stderr, "bhyve: %s: no room for a %llu-byte BAR\n",
			pi->pi_name, (unsigned long long)size);
		return -1;
	}
	*base = addr + size;
	pi->pi_bar[idx] = (struct pcibar){type, addr, size, false};
	pci_set_cfgdata32(pi, PCIR_BAR0 + idx * 4, (uint32_t)addr | lobits);
	if (type == PCIBAR_MEM64) {
		pi->pi_bar[idx + 1] = (struct pcibar){PCIBAR_MEMHI64, 0, 0,
						      false};
		pci_set_cfgdata32(pi, PCIR_BAR0 + (idx + 1) * 4,
				  (uint32_t)(addr >> 32));
	}
	/* Decoding on from the start, as firmware would leave it. */
	pci_set_cfgdata16(pi, PCIR_COMMAND,
			  pci_get_cfgdata16(pi, PCIR_COMMAND) |
				  (type == PCIBAR_IO ? PCIM_CMD_PORTEN
						     : PCIM_CMD_MEMEN));
	bar_register(pi, idx, true);
	return 0;
}

/* A guest write to a BAR register: sizing, or a move. */
static void
bar_write(struct pci_devinst *pi, int idx, uint32_t val)
{
	struct pcibar *b = &pi->pi_bar[idx];
	int reg = PCIR_BAR0 + idx * 4;
	bool decoding;
	uint64_t addr;
	uint32_t low;

	if (b->type == PCIBAR_NONE)
		return;
	if (b->type == PCIBAR_MEMHI64) {
		struct pcibar *lo = &pi->pi_bar[idx - 1];
		decoding = bar_decoding(pi, idx - 1);
		if (decoding)
			bar_register(pi, idx - 1, false);
		/* The mask's upper half for a sizing write of all ones. */
		uint32_t hmask = (uint32_t)(~(lo->size - 1) >> 32);
		lo->addr = (lo->addr & 0xffffffffULL) |
			   ((uint64_t)(val & hmask) << 32);
		pci_set_cfgdata32(pi, reg, val & hmask);
		if (decoding)
			bar_register(pi, idx - 1, true);
		return;
	}
	decoding = bar_decoding(pi, idx);
	if (decoding)
		bar_register(pi, idx, false);
	low = pci_get_cfgdata32(pi, reg);
	if (b->type == PCIBAR_IO) {
		addr = val & ~(b->size - 1) & 0xfffc;
		low = (uint32_t)addr | 0x1;
	} else {
		addr = (b->addr & ~0xffffffffULL) |
		       (val & ~(uint32_t)(b->size - 1) & ~0xfu);
		low = (uint32_t)addr | (low & 0xf);
	}
	b->addr = addr;
	pci_set_cfgdata32(pi, reg, low);
	if (decoding)
		bar_register(pi, idx, true);
}

static void
command_write(struct pci_devinst *pi, uint16_t new)
{
	uint16_t old = pci_get_cfgdata16(pi, PCIR_COMMAND);

	for (int i = 0; i <= PCI_BARMAX; i++) {
		struct pcibar *b = &pi->pi_bar[i];
		uint16_t bit;

		if (b->type == PCIBAR_NONE || b->type == PCIBAR_MEMHI64)
			continue;
		bit = b->type == PCIBAR_IO ? PCIM_CMD_PORTEN : PCIM_CMD_MEMEN;
		if ((old ^ new) & bit)
			bar_register(pi, i, new & bit);
	}
	pci_set_cfgdata16(pi, PCIR_COMMAND, new);
	/* INTx disable masks a pending interrupt (PCI 3.0 §6.2.2). */
	if (pi->pi_lintr.asserted) {
		if (new & PCIM_CMD_INTxDIS)
			vm_irq_deassert(pi->pi_vmctx, pi->pi_lintr.irq);
		else
			vm_irq_assert(pi->pi_vmctx, pi->pi_lintr.irq);
	}
}

/* ---- capabilities and MSI ---- */

int
pci_emul_add_capability(struct pci_devinst *pi, const uint8_t *cap, int caplen)
{
	int off;

	if (caplen < 2)
		return -1;
	off = pi->pi_capend ? (pi->pi_capend + 3) & ~3 : PCI_CAP_START;
	if (off + caplen > PCI_CAP_END)
		return -1;
	memcpy(pi->pi_cfgdata + off, cap, caplen);
	pi->pi_cfgdata[off + 1] = 0; /* end of list */
	if (pi->pi_prevcap)
		pi->pi_cfgdata[pi->pi_prevcap + 1] = off;
	else
		pci_set_cfgdata8(pi, PCIR_CAP_PTR, off);
	pci_set_cfgdata16(pi, PCIR_STATUS,
			  pci_get_cfgdata16(pi, PCIR_STATUS) |
				  PCIM_STATUS_CAPPRESENT);
	pi->pi_prevcap = off;
	pi->pi_capend = off + caplen;
	return off;
}

int
pci_emul_add_msicap(struct pci_devinst *pi, int msgnum)
{
	uint8_t cap[14] = {PCIY_MSI, 0};
	int mmc = 0, off;

	if (msgnum < 1 || msgnum > 32 || (msgnum & (msgnum - 1)))
		return -1;
	while ((1 << mmc) < msgnum)
		mmc++;
	/* 64-bit address capable; multiple message capable = log2(n). */
	uint16_t ctrl = (uint16_t)(0x80 | (mmc << 1));
	memcpy(cap + 2, &ctrl, 2);
	off = pci_emul_add_capability(pi, cap, sizeof(cap));
	if (off < 0)
		return -1;
	pi->pi_msi.capoff = off;
	pi->pi_msi.maxmsgnum = msgnum;
	return 0;
}

static void
msicap_write(struct pci_devinst *pi, int off, int bytes, uint32_t val)
{
	int cap = pi->pi_msi.capoff;
	uint16_t ctrl;

	/* Write the bytes, then keep the read-only control bits. */
	uint16_t old = pci_get_cfgdata16(pi, cap + 2);
	for (int i = 0; i < bytes; i++)
		pci_set_cfgdata8(pi, off + i, (uint8_t)(val >> (8 * i)));
	ctrl = pci_get_cfgdata16(pi, cap + 2);
	ctrl = (ctrl & 0x0071) | (old & ~0x0071);
	pci_set_cfgdata16(pi, cap + 2, ctrl);
	pi->pi_msi.enabled = ctrl & 0x1;
	pi->pi_msi.addr = pci_get_cfgdata32(pi, cap + 4) |
			  ((uint64_t)pci_get_cfgdata32(pi, cap + 8) << 32);
	pi->pi_msi.data = pci_get_cfgdata16(pi, cap + 12);
}

bool
pci_msi_enabled(struct pci_devinst *pi)
{
	return pi->pi_msi.enabled;
}

void
pci_generate_msi(struct pci_devinst *pi, int index)
{
	int enabled = 1 << ((pci_get_cfgdata16(pi, pi->pi_msi.capoff + 2) >>
			     4) & 7);

	if (!pi->pi_msi.enabled || index < 0 || index >= enabled)
		return;
	vm_lapic_msi(pi->pi_vmctx, pi->pi_msi.addr, pi->pi_msi.data + index);
}

/* ---- MSI-X (PCI 3.0 §6.8.2) ---- */

int
pci_emul_add_msixcap(struct pci_devinst *pi, int msgnum, int barnum)
{
	uint8_t cap[PCI_MSIX_CAPLEN] = {PCIY_MSIX, 0};
	uint32_t table_size, pba_off, pba_size, word;
	uint16_t ctrl;
	int off;

	if (msgnum < 1 || msgnum > MSIX_MAX_VECTORS || barnum < 0 ||
	    barnum > PCI_BARMAX || pi->pi_msix.capoff)
		return -1;
	/* Table at 0, PBA on the next page: a guest maps them apart. */
	table_size = (uint32_t)msgnum * MSIX_ENTRY_SIZE;
	pba_off = (table_size + 4095) & ~4095u;
	pba_size = ((uint32_t)msgnum + 63) / 64 * 8;
	pi->pi_msix.table = calloc(msgnum, sizeof(*pi->pi_msix.table));
	pi->pi_msix.pba = calloc(pba_size / 8, sizeof(uint64_t));
	if (!pi->pi_msix.table || !pi->pi_msix.pba)
		return -1;
	/* Every vector starts masked (§6.8.2.9). */
	for (int i = 0; i < msgnum; i++)
		pi->pi_msix.table[i].vector_control = MSIX_VCTRL_MASK;
	if (pci_emul_alloc_bar(pi, barnum, PCIBAR_MEM32,
			       pba_off + ((pba_size + 4095) & ~4095u)) < 0)
		return -1;
	ctrl = (uint16_t)(msgnum - 1); /* table size is N - 1 */
	memcpy(cap + 2, &ctrl, 2);
	word = 0 | (uint32_t)barnum; /* offset 0, BIR */
	memcpy(cap + 4, &word, 4);
	word = pba_off | (uint32_t)barnum;
	memcpy(cap + 8, &word, 4);
	off = pci_emul_add_capability(pi, cap, sizeof(cap));
	if (off < 0)
		return -1;
	pi->pi_msix.capoff = off;
	pi->pi_msix.table_bar = barnum;
	pi->pi_msix.table_offset = 0;
	pi->pi_msix.table_count = msgnum;
	pi->pi_msix.pba_offset = pba_off;
	pi->pi_msix.pba_size = pba_size;
	return 0;
}

bool
pci_msix_enabled(struct pci_devinst *pi)
{
	return __atomic_load_n(&pi->pi_msix.enabled, __ATOMIC_ACQUIRE);
}

/* With the MSI-X lock held. */
static bool
msix_deliverable(struct pci_devinst *pi, int i)
{
	return pi->pi_msix.enabled && !pi->pi_msix.function_mask &&
	       !(pi->pi_msix.table[i].vector_control & MSIX_VCTRL_MASK);
}

static void
msix_deliver(struct pci_devinst *pi, int i)
{
	struct msix_table_entry *e = &pi->pi_msix.table[i];

	vm_lapic_msi(pi->pi_vmctx, e->addr, e->msg_data);
}

/* Send what became deliverable (an unmask, an enable); lock held. */
static void
msix_flush_pending(struct pci_devinst *pi)
{
	for (int i = 0; i < pi->pi_msix.table_count; i++) {
		uint64_t bit = 1ULL << (i % 64);

		if ((pi->pi_msix.pba[i / 64] & bit) &&
		    msix_deliverable(pi, i)) {
			pi->pi_msix.pba[i / 64] &= ~bit;
			msix_deliver(pi, i);
		}
	}
}

void
pci_generate_msix(struct pci_devinst *pi, int index)
{
	if (!pi->pi_msix.capoff || index < 0 ||
	    index >= pi->pi_msix.table_count)
		return;
	pthread_mutex_lock(&pi->pi_msix.lock);
	if (!pi->pi_msix.enabled) {
		/* Disabled: the event is lost, as on hardware. */
	} else if (msix_deliverable(pi, index)) {
		msix_deliver(pi, index);
	} else {
		/* Masked: remember it for the unmask (§6.8.2.10). */
		pi->pi_msix.pba[index / 64] |= 1ULL << (index % 64);
	}
	pthread_mutex_unlock(&pi->pi_msix.lock);
}

bool
pci_msix_vector(struct pci_devinst *pi, int index, uint64_t *addr,
		uint32_t *data)
{
	bool ok;

	if (!pi->pi_msix.capoff || index < 0 ||
	    index >= pi->pi_msix.table_count)
		return false;
	pthread_mutex_lock(&pi->pi_msix.lock);
	ok = msix_deliverable(pi, index);
	*addr = pi->pi_msix.table[index].addr;
	*data = pi->pi_msix.table[index].msg_data;
	pthread_mutex_unlock(&pi->pi_msix.lock);
	return ok;
}

/* Message Control: only the enable and function mask bits are writable. */
static void
msixcap_write(struct pci_devinst *pi, int off, int bytes, uint32_t val)
{
	int cap = pi->pi_msix.capoff;
	uint16_t old = pci_get_cfgdata16(pi, cap + 2), ctrl;
	const uint16_t rw = PCIM_MSIXCTRL_ENABLE | PCIM_MSIXCTRL_FUNCMASK;

	for (int i = 0; i < bytes; i++) {
		int o = off + i;
		if (o == cap + 2 || o == cap + 3)
			pci_set_cfgdata8(pi, o, (uint8_t)(val >> (8 * i)));
	}
	ctrl = pci_get_cfgdata16(pi, cap + 2);
	ctrl = (ctrl & rw) | (old & ~rw);
	pci_set_cfgdata16(pi, cap + 2, ctrl);
	pthread_mutex_lock(&pi->pi_msix.lock);
	__atomic_store_n(&pi->pi_msix.enabled,
			 (ctrl & PCIM_MSIXCTRL_ENABLE) != 0, __ATOMIC_RELEASE);
	pi->pi_msix.function_mask = ctrl & PCIM_MSIXCTRL_FUNCMASK;
	msix_flush_pending(pi);
	pthread_mutex_unlock(&pi->pi_msix.lock);
	if (pi->pi_msix.changed)
		pi->pi_msix.changed(pi);
	/* While MSI-X is on, the function must not use INTx (§6.8.2). */
	if ((ctrl & PCIM_MSIXCTRL_ENABLE) && pi->pi_lintr.asserted)
		pci_lintr_deassert(pi);
}

static uint64_t
msix_table_read(struct pci_devinst *pi, uint64_t off, int size)
{
	struct msix_table_entry *e = &pi->pi_msix.table[off / MSIX_ENTRY_SIZE];
	uint32_t dw[4] = {(uint32_t)e->addr, (uint32_t)(e->addr >> 32),
			  e->msg_data, e->vector_control};
	int f = (off % MSIX_ENTRY_SIZE) / 4;

	if (size == 8)
		return dw[f] | (uint64_t)dw[f + 1] << 32;
	return dw[f];
}

static void
msix_table_write(struct pci_devinst *pi, uint64_t off, int size, uint64_t val)
{
	int i = off / MSIX_ENTRY_SIZE;
	struct msix_table_entry *e = &pi->pi_msix.table[i];
	int f = (off % MSIX_ENTRY_SIZE) / 4;

	for (int k = 0; k < size / 4; k++, f++, val >>= 32) {
		uint32_t v = (uint32_t)val;
		switch (f) {
		case 0:
			e->addr = (e->addr & ~0xffffffffULL) | v;
			break;
		case 1:
			e->addr = (e->addr & 0xffffffffULL) | (uint64_t)v << 32;
			break;
		case 2:
			e->msg_data = v;
			break;
		case 3: /* only the mask bit is defined */
			e->vector_control = v & MSIX_VCTRL_MASK;
			break;
		}
	}
	msix_flush_pending(pi);
}

/*
 * An access to the MSI-X BAR: true when it fell in the table or the PBA
 * and was served. Software uses aligned dwords or qwords (§6.8.2); other
 * accesses to the structures read as zero and are dropped.
 */
static bool
msix_bar_access(struct pci_devinst *pi, int dir, uint64_t off, int size,
		uint64_t *val)
{
	uint64_t tab_end = pi->pi_msix.table_offset +
			   (uint64_t)pi->pi_msix.table_count * MSIX_ENTRY_SIZE;
	uint64_t pba_end = pi->pi_msix.pba_offset + pi->pi_msix.pba_size;
	bool in_tab = off >= pi->pi_msix.table_offset && off < tab_end;
	bool in_pba = off >= pi->pi_msix.pba_offset && off < pba_end;
	bool ok = (size == 4 || size == 8) && (off % size) == 0;

	if (!in_tab && !in_pba)
		return false;
	pthread_mutex_lock(&pi->pi_msix.lock);
	if (dir == MEM_F_READ)
		*val = 0;
	if (!ok) {
		/* nothing */
	} else if (in_tab) {
		off -= pi->pi_msix.table_offset;
		if (dir == MEM_F_READ)
			*val = msix_table_read(pi, off, size);
		else
			msix_table_write(pi, off, size, *val);
	} else if (dir == MEM_F_READ) {
		/* The PBA is read-only; its qwords hold 64 vectors each. */
		off -= pi->pi_msix.pba_offset;
		uint64_t q = pi->pi_msix.pba[off / 8];
		*val = size == 8 ? q : (uint32_t)(q >> (8 * (off % 8)));
	}
	pthread_mutex_unlock(&pi->pi_msix.lock);
	if (in_tab && ok && dir != MEM_F_READ && pi->pi_msix.changed)
		pi->pi_msix.changed(pi);
	return true;
}

/* ---- INTx ---- */

void
pci_lintr_request(struct pci_devinst *pi)
{
	struct pci_state *ps = machine_of(pi->pi_vmctx)->pci;

	uint8_t *irq = &ps->slot_irq[pi->pi_bus][pi->pi_slot];

	/*
	 * INTA on every device; pins 16-23 handed out in turn, one per slot,
	 * so that the slot's _PRT entry holds for all its functions.
	 */
	if (!*irq) {
		*irq = PCI_IRQ_BASE + ps->next_irq;
		ps->next_irq = (ps->next_irq + 1) % PCI_IRQ_COUNT;
	}
	pi->pi_lintr.pin = 1;
	pi->pi_lintr.irq = *irq;
	pci_set_cfgdata8(pi, PCIR_INTPIN, 1);
	pci_set_cfgdata8(pi, PCIR_INTLINE, pi->pi_lintr.irq);
}

void
pci_lintr_assert(struct pci_devinst *pi)
{
	/* A function with MSI or MSI-X on does not use INTx (PCI 3.0 §6.8). */
	if (!pi->pi_lintr.pin || pci_msi_enabled(pi) || pci_msix_enabled(pi))
		return;
	pi->pi_lintr.asserted = true;
	pci_set_cfgdata16(pi, PCIR_STATUS,
			  pci_get_cfgdata16(pi, PCIR_STATUS) |
				  PCIM_STATUS_INTxSTATE);
	if (!(pci_get_cfgdata16(pi, PCIR_COMMAND) & PCIM_CMD_INTxDIS))
		vm_irq_assert(pi->pi_vmctx, pi->pi_lintr.irq);
}

void
pci_lintr_deassert(struct pci_devinst *pi)
{
	if (!pi->pi_lintr.pin)
		return;
	pi->pi_lintr.asserted = false;
	pci_set_cfgdata16(pi, PCIR_STATUS,
			  pci_get_cfgdata16(pi, PCIR_STATUS) &
				  ~PCIM_STATUS_INTxSTATE);
	vm_irq_deassert(pi->pi_vmctx, pi->pi_lintr.irq);
}

/* ---- config space access from the guest ---- */

struct pci_devinst *
pci_find_devinst(struct vmctx *ctx, int bus, int slot, int func)
{
	struct pci_state *ps = machine_of(ctx)->pci;

	if (!ps || bus < 0 || bus >= MAXBUSES || slot < 0 ||
	    slot >= MAXSLOTS || func < 0 || func >= MAXFUNCS)
		return NULL;
	return ps->dev[bus][slot][func];
}

static bool
in_bar_regs(int off, int bytes)
{
	return off < PCIR_BAR0 + 4 * (PCI_BARMAX + 1) &&
	       off + bytes > PCIR_BAR0;
}

uint32_t
pci_cfg_read(struct vmctx *ctx, int bus, int slot, int func, int off,
	     int bytes)
{
	struct pci_devinst *pi = pci_find_devinst(ctx, bus, slot, func);
	uint32_t val = 0;
	int bar;

	if (!pi || !cfg_in_range(off, bytes) || (off & (bytes - 1)))
		return bytes == 4 ? 0xffffffff : (1u << (bytes * 8)) - 1;
	if (pi->pi_d->pe_cfgread &&
	    pi->pi_d->pe_cfgread(pi, off, bytes, &val) == 0)
		return val;
	bar = (off - PCIR_BAR0) / 4;
	if (in_bar_regs(off, bytes) && pi->pi_bar[bar].sizing) {
		/* Report the size mask until the next write. */
		struct pcibar *b = &pi->pi_bar[bar];
		uint64_t mask;
		if (b->type == PCIBAR_MEMHI64)
			mask = ~(pi->pi_bar[bar - 1].size - 1) >> 32;
		else
			mask = (~(b->size - 1) & 0xffffffffULL) |
			       (pci_get_cfgdata32(pi, PCIR_BAR0 + bar * 4) &
				(b->type == PCIBAR_IO ? 0x3 : 0xf));
		val = (uint32_t)mask >> (8 * (off & 3));
		return bytes == 4 ? val : val & ((1u << (bytes * 8)) - 1);
	}
	for (int i = 0; i < bytes; i++)
		val |= (uint32_t)pci_get_cfgdata8(pi, off + i) << (8 * i);
	return val;
}

void
pci_cfg_write(struct vmctx *ctx, int bus, int slot, int func, int off,
	      int bytes, uint32_t val)
{
	struct pci_devinst *pi = pci_find_devinst(ctx, bus, slot, func);
	int cap = pi ? pi->pi_msi.capoff : 0;

	if (!pi || !cfg_in_range(off, bytes) || (off & (bytes - 1)))
		return;
	if (pi->pi_d->pe_cfgwrite &&
	    pi->pi_d->pe_cfgwrite(pi, off, bytes, val) == 0)
		return;
	if (in_bar_regs(off, bytes)) {
		int bar = (off - PCIR_BAR0) / 4;
		/* Only whole-register writes move or size a BAR. */
		if (bytes != 4 || pi->pi_bar[bar].type == PCIBAR_NONE)
			return;
		pi->pi_bar[bar].sizing = val == 0xffffffff;
		if (!pi->pi_bar[bar].sizing)
			bar_write(pi, bar, val);
		return;
	}
	if (off == PCIR_COMMAND && bytes >= 2) {
		command_write(pi, (uint16_t)val);
		return;
	}
	if (cap && off >= cap && off < cap + 14) {
		msicap_write(pi, off, bytes, val);
		return;
	}
	cap = pi->pi_msix.capoff;
	if (cap && off >= cap && off < cap + PCI_MSIX_CAPLEN) {
		msixcap_write(pi, off, bytes, val);
		return;
	}
	/* Writable: the interrupt line register and device-specific space. */
	if (off == PCIR_INTLINE && bytes == 1) {
		pci_set_cfgdata8(pi, off, (uint8_t)val);
		return;
	}
	if (off >= PCI_CAP_END) {
		for (int i = 0; i < bytes; i++)
			pci_set_cfgdata8(pi, off + i, (uint8_t)(val >> (8 * i)));
	}
}

static int
conf1_addr_handler(struct vmctx *ctx, int in, int port, int bytes,
		   uint32_t *eax, void *arg)
{
	struct pci_state *ps = arg;

	(void)ctx;
	if (bytes != 4) {
		/* Byte access to 0xCF8..0xCFB is not config address. */
		if (in)
			*eax = 0xffffffff;
		return 0;
	}
	(void)port;
	pthread_mutex_lock(&ps->lock);
	if (in)
		*eax = ps->cf8;
	else
		ps->cf8 = *eax & 0x80fffffc;
	pthread_mutex_unlock(&ps->lock);
	return 0;
}

static int
conf1_data_handler(struct vmctx *ctx, int in, int port, int bytes,
		   uint32_t *eax, void *arg)
{
	struct pci_state *ps = arg;
	int off = port - CONF1_DATA_PORT;
	uint32_t cf8;

	pthread_mutex_lock(&ps->lock);
	cf8 = ps->cf8;
	if (!(cf8 & CONF1_ENABLE) || off + bytes > 4) {
		if (in)
			*eax = 0xffffffff;
	} else {
		int bus = (cf8 >> 16) & 0xff, slot = (cf8 >> 11) & 0x1f;
		int func = (cf8 >> 8) & 0x7;
		/* Bits 27:24 give extended registers (AMD's CF8 extension). */
		int reg = (cf8 & 0xfc) | ((cf8 >> 16) & 0xf00);
		if (in)
			*eax = pci_cfg_read(ctx, bus, slot, func, reg + off,
					    bytes);
		else
			pci_cfg_write(ctx, bus, slot, func, reg + off, bytes,
				      *eax);
	}
	pthread_mutex_unlock(&ps->lock);
	return 0;
}

static int
ecam_handler(struct vcpu *vcpu, int dir, uint64_t addr, int size,
	     uint64_t *val, void *arg1, long arg2)
{
	struct pci_state *ps = arg1;
	uint64_t off = addr - PCI_EMUL_ECFG_BASE;
	int bus = (off >> 20) & 0xff, slot = (off >> 15) & 0x1f;
	int func = (off >> 12) & 0x7, reg = off & 0xfff;

	(void)vcpu;
	(void)arg2;
	if (size != 1 && size != 2 && size != 4) {
		if (dir == MEM_F_READ)
			*val = ~0ULL;
		return 0;
	}
	pthread_mutex_lock(&ps->lock);
	if (dir == MEM_F_READ)
		*val = pci_cfg_read(ps->ctx, bus, slot, func, reg, size);
	else
		pci_cfg_write(ps->ctx, bus, slot, func, reg, size,
			      (uint32_t)*val);
	pthread_mutex_unlock(&ps->lock);
	return 0;
}

/* ---- start-up ---- */

struct init_walk {
	struct vmctx *ctx;
	struct pci_state *ps;
	int bus, slot;
	int rc;
};

static int
init_one(struct vmctx *ctx, struct pci_state *ps, int bus, int slot, int func,
	 struct config *node)
{
	const char *emul = config_get(node, "device");
	const struct pci_devemu *pe;
	struct pci_devinst *pi;

	if (!emul) {
		fprintf(stderr, "bhyve: pci.%d.%d.%d: no 'device' set\n", bus,
			slot, func);
		return -1;
	}
	pe = pci_emul_finddev(emul);
	if (!pe) {
		fprintf(stderr, "bhyve: pci.%d.%d.%d: unknown device '%s'\n",
			bus, slot, func, emul);
		return -1;
	}
	pi = calloc(1, sizeof(*pi));
	if (!pi)
		return -1;
	pi->pi_d = pe;
	pi->pi_vmctx = ctx;
	pi->pi_bus = bus;
	pi->pi_slot = slot;
	pi->pi_func = func;
	pthread_mutex_init(&pi->pi_msix.lock, NULL);
	snprintf(pi->pi_name, sizeof(pi->pi_name), "%s-pci-%d", pe->pe_emu,
		 slot);
	ps->dev[bus][slot][func] = pi;
	/* A device that fails says why itself, in one line. */
	if (pe->pe_init(pi, node) < 0)
		return -1;
	return 0;
}

static int
num_child(const struct config *c, int max)
{
	int v;

	return parse_num(config_node_name(c), max, &v) < 0 ? -1 : v;
}

static int
walk_func(const struct config *c, void *arg)
{
	struct init_walk *w = arg;
	int func = num_child(c, MAXFUNCS - 1);

	if (func < 0 || config_is_leaf(c)) {
		fprintf(stderr, "bhyve: pci.%d.%d.%s: not a function number\n",
			w->bus, w->slot, config_node_name(c));
		return -1;
	}
	return init_one(w->ctx, w->ps, w->bus, w->slot, func,
			(struct config *)c);
}

static int
walk_slot(const struct config *c, void *arg)
{
	struct init_walk *w = arg;

	w->slot = num_child(c, MAXSLOTS - 1);
	if (w->slot < 0 || config_is_leaf(c)) {
		fprintf(stderr, "bhyve: pci.%d.%s: not a slot number\n", w->bus,
			config_node_name(c));
		return -1;
	}
	return config_foreach(c, walk_func, w);
}

static int
walk_bus(const struct config *c, void *arg)
{
	struct init_walk *w = arg;

	w->bus = num_child(c, MAXBUSES - 1);
	if (w->bus < 0 || config_is_leaf(c)) {
		fprintf(stderr, "bhyve: pci.%s: not a bus number\n",
			config_node_name(c));
		return -1;
	}
	return config_foreach(c, walk_slot, w);
}

/* Functions other than 0 make their slot a multi-function device. */
static void
mark_multifunction(struct pci_state *ps)
{
	for (int b = 0; b < MAXBUSES; b++) {
		for (int s = 0; s < MAXSLOTS; s++) {
			int n = 0;
			for (int f = 0; f < MAXFUNCS; f++)
				n += ps->dev[b][s][f] != NULL;
			if (n > 1 && ps->dev[b][s][0]) {
				struct pci_devinst *pi = ps->dev[b][s][0];
				pci_set_cfgdata8(
					pi, PCIR_HDRTYPE,
					pci_get_cfgdata8(pi, PCIR_HDRTYPE) |
						PCIM_MFDEV);
			}
		}
	}
}

int
init_pci(struct vmctx *ctx)
{
	struct machine *m = machine_of(ctx);
	struct pci_state *ps = calloc(1, sizeof(*ps));
	struct config *pci;
	struct inout_port a = {"pci-conf1-addr", CONF1_ADDR_PORT, 1,
			       IOPORT_F_INOUT, conf1_addr_handler, ps};
	struct inout_port d = {"pci-conf1-data", CONF1_DATA_PORT, 4,
			       IOPORT_F_INOUT, conf1_data_handler, ps};
	struct mem_range ecam = {"pci-ecam", MEM_F_RW, ecam_handler, ps, 0,
				 PCI_EMUL_ECFG_BASE, PCI_EMUL_ECFG_SIZE};
	struct init_walk w = {ctx, ps, 0, 0, 0};
	uint64_t top64;

	if (!ps)
		return -1;
	ps->ctx = ctx;
	pthread_mutex_init(&ps->lock, NULL);
	if (machine_add_dev(ctx, &pci_sysdev, ps, pci_state_free) < 0) {
		fprintf(stderr, "bhyve: PCI: the bus is already up\n");
		free(ps);
		return -1;
	}
	ps->iobase = PCI_EMUL_IOBASE;
	ps->membase32 = PCI_EMUL_MEMBASE32;
	top64 = VM_HIGHMEM_BASE + vm_get_highmem_size(ctx);
	ps->membase64 = top64 > PCI_EMUL_MEMBASE64 ? top64 : PCI_EMUL_MEMBASE64;
	m->pci = ps;
	/*
	 * 0xCF8 is a 32-bit register, but 0xCF9 is the reset control
	 * register (pm.c): only 0xCF8 itself is claimed here.
	 */
	if (register_inout(ctx, &a) < 0 || register_inout(ctx, &d) < 0 ||
	    register_mem(ctx, &ecam) < 0) {
		fprintf(stderr, "bhyve: PCI config ports are taken\n");
		return -1;
	}
	/*
	 * A config access is a write of 0xCF8 and an access to 0xCFC: let
	 * KVM queue the address writes, which have no effect until the data
	 * access (whose exit hands the queue over first, in order). Halves
	 * the cost of Linux's probes of every bus and slot at boot. A byte
	 * write to 0xCF9 (reset) lands in the same zone; it is handed over
	 * at the next exit or drain tick (20 ms), which is soon enough.
	 */
	(void)vm_coalesce_pio(ctx, CONF1_ADDR_PORT, 4, true);
	pci = config_node(m->cfg, "pci");
	if (pci && config_foreach(pci, walk_bus, &w) != 0)
		return -1;
	mark_multifunction(ps);
	return 0;
}

void
pci_foreach_devinst(struct vmctx *ctx,
		    void (*fn)(struct pci_devinst *pi, void *arg), void *arg)
{
	struct pci_state *ps = machine_of(ctx)->pci;

	if (!ps)
		return;
	for (int b = 0; b < MAXBUSES; b++)
		for (int s = 0; s < MAXSLOTS; s++)
			for (int f = 0; f < MAXFUNCS; f++)
				if (ps->dev[b][s][f])
					fn(ps->dev[b][s][f], arg);
}

int
pci_last_bus(struct vmctx *ctx)
{
	struct pci_state *ps = machine_of(ctx)->pci;

	if (!ps)
		return 0;
	for (int b = MAXBUSES - 1; b > 0; b--)
		for (int s = 0; s < MAXSLOTS; s++)
			for (int f = 0; f < MAXFUNCS; f++)
				if (ps->dev[b][s][f])
					return b;
	return 0;
}

static void
devinst_free(struct pci_devinst *pi)
{
	if (!pi)
		return;
	if (pi->pi_d->pe_deinit)
		pi->pi_d->pe_deinit(pi);
	free(pi->pi_msix.table);
	free(pi->pi_msix.pba);
	free(pi);
}

/* machine_free: stop every function's threads, then free them. */
static void
pci_state_free(void *arg)
{
	struct pci_state *ps = arg;

	for (int b = 0; b < MAXBUSES; b++)
		for (int s = 0; s < MAXSLOTS; s++)
			for (int f = 0; f < MAXFUNCS; f++)
				devinst_free(ps->dev[b][s][f]);
	machine_of(ps->ctx)->pci = NULL;
	pthread_mutex_destroy(&ps->lock);
	free(ps);
}

/* ---- firmware tables ---- */

static void
intx_one(struct pci_devinst *pi, void *arg)
{
	struct fw_mp *mp = arg;
	struct fw_intx e;

	fw_mp_bus(mp, pi->pi_bus);
	if (pi->pi_lintr.pin < 1 || pi->pi_lintr.pin > 4)
		return;
	e.bus = pi->pi_bus;
	e.slot = pi->pi_slot;
	e.pin = (uint8_t)(pi->pi_lintr.pin - 1);
	e.irq = (uint8_t)pi->pi_lintr.irq;
	/* Functions of a slot come in a row: look back over them. */
	for (int i = mp->nintx - 1; i >= 0; i--) {
		if (mp->intx[i].bus != e.bus || mp->intx[i].slot != e.slot)
			break;
		if (mp->intx[i].pin == e.pin)
			return;
	}
	fw_mp_intx(mp, &e);
}

/*
 * The buses in use and one INTx route per (bus, slot, pin), the first
 * function's route winning: the MP table's and the DSDT's _PRT, which
 * must agree.
 */
static int
pci_mptable(struct vmctx *ctx, const void *desc, struct fw_mp *mp)
{
	(void)desc;
	pci_foreach_devinst(ctx, intx_one, mp);
	return mp->nomem ? -1 : 0;
}

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

/* _PRT (ACPI 6.4 §6.2.13): {Address (slot, any function), Pin, 0, GSI}. */
static int
dsdt_prt(struct aml *a, struct vmctx *ctx)
{
	struct fw_mp mp = {0};
	int nbus0 = 0;

	if (pci_mptable(ctx, NULL, &mp) < 0) {
		fw_mp_free(&mp);
		return -1;
	}
	for (int i = 0; i < mp.nintx; i++)
		nbus0 += mp.intx[i].bus == 0;
	if (nbus0 > 255) {
		fw_mp_free(&mp);
		return -1;
	}
	aml_name(a, "_PRT");
	aml_package_begin(a, (uint8_t)nbus0);
	for (int i = 0; i < mp.nintx; i++) {
		if (mp.intx[i].bus != 0)
			continue;
		aml_package_begin(a, 4);
		aml_integer(a, (uint32_t)mp.intx[i].slot << 16 | 0xffff);
		aml_integer(a, mp.intx[i].pin);
		aml_integer(a, 0);
		aml_integer(a, mp.intx[i].irq);
		aml_end(a);
	}
	aml_end(a);
	fw_mp_free(&mp);
	return 0;
}

struct dsdt_walk {
	struct aml *a;
	int rc;
};

static void
devinst_dsdt(struct pci_devinst *pi, void *arg)
{
	struct dsdt_walk *w = arg;

	if (w->rc == 0 && pi->pi_d->pe_write_dsdt)
		w->rc = pi->pi_d->pe_write_dsdt(pi, w->a);
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

/* PCI0, the root bridge, with what its functions say inside it. */
static int
pci_dsdt(struct vmctx *ctx, const void *desc, struct aml *a)
{
	struct dsdt_walk w = {a, 0};

	(void)desc;
	aml_device_begin(a, "PCI0");
	aml_name_eisaid(a, "_HID", "PNP0A08"); /* PCI Express root bridge */
	aml_name_eisaid(a, "_CID", "PNP0A03"); /* ... and PCI */
	aml_name_integer(a, "_UID", 0);
	aml_name_integer(a, "_SEG", 0);
	aml_name_integer(a, "_BBN", 0);
	dsdt_crs_pci0(a, pci_last_bus(ctx));
	if (dsdt_prt(a, ctx) < 0)
		return -1;
	pci_foreach_devinst(ctx, devinst_dsdt, &w);
	aml_end(a);
	dsdt_ecam(a);
	return w.rc;
}

#define MCFG_LEN 60

/*
 * One allocation (PCI Firmware 3.2 §4.1.2): segment 0, buses 0 to the last
 * bus with a device. Not 255: Linux takes the MCFG end bus as the last bus
 * and probes every slot of every bus up to it through config mechanism #1
 * (its "peer bridge fixup"): 8192 probes, 16k exits, for buses that are
 * empty.
 */
static int
pci_mcfg(struct vmctx *ctx, const void *desc, uint8_t *t, size_t cap)
{
	(void)desc;
	if (cap < MCFG_LEN)
		return -1;
	fw_acpi_header(t, "MCFG", MCFG_LEN, 1, "BVMCFG  ");
	le64_put(t + 44, PCI_EMUL_ECFG_BASE);
	le16_put(t + 52, 0);
	t[54] = 0;
	t[55] = (uint8_t)pci_last_bus(ctx);
	fw_acpi_finish(t);
	return MCFG_LEN;
}

static const struct e820_entry pci_reserved[] = {
    {PCI_EMUL_ECFG_BASE, PCI_EMUL_ECFG_SIZE, E820_RESERVED},
};

static const struct fw_ops pci_fw = {
    .dsdt_scope = FW_SCOPE_SB,
    .dsdt = pci_dsdt,
    .acpi_table = pci_mcfg,
    .mptable = pci_mptable,
    .reserved = pci_reserved,
    .nreserved = 1,
};

/* After the platform devices (order < 80): LPC devices may need them. */
static const struct sysdev pci_sysdev = {
    .name = "pci",
    .order = 80,
    .init = init_pci,
    .fw = &pci_fw,
};
SYSDEV_SET(pci_sysdev);
