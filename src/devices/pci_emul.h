/*
 * The PCI core: config mechanism #1 (0xCF8/0xCFC) and ECAM, BAR sizing and
 * placement, INTx routed to IOAPIC pins 16-23, capability lists, MSI and
 * MSI-X. A device is a struct pci_devemu registered with PCI_EMUL_SET.
 */
#ifndef PCI_EMUL_H
#define PCI_EMUL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "acpi_aml.h"
#include "config.h"
#include "machine.h"
#include "vmm.h"

#define PCI_BARMAX 5
#define PCI_CFG_SIZE 4096 /* extended config space, reachable by ECAM */

/*
 * Where things go in the guest's physical and port spaces (as bhyve, but
 * for the I/O BARs' start). bhyve starts them at 0x2000, where pc-testdev's
 * IRQ ports (0x2000-0x2017, fixed by kvm-unit-tests) are: with both, the
 * first I/O BAR took them and -l pc-testdev failed. 0x2000-0x2fff is left to
 * LPC devices; the root bridge's _CRS still forwards 0x0d00-0xffff, as the
 * LPC devices behind it decode there too.
 */
#define PCI_EMUL_IOBASE 0x3000
#define PCI_EMUL_IOLIMIT 0x10000
#define PCI_EMUL_MEMBASE32 0xc0000000ULL
#define PCI_EMUL_ECFG_BASE 0xe0000000ULL
#define PCI_EMUL_ECFG_SIZE (256ULL << 20) /* buses 0-255 */
#define PCI_EMUL_MEMLIMIT32 PCI_EMUL_ECFG_BASE
#define PCI_EMUL_MEMBASE64 0xd000000000ULL
#define PCI_EMUL_MEMLIMIT64 0xfd00000000ULL
#define PCI_IRQ_BASE 16 /* IOAPIC pins for INTx */
#define PCI_IRQ_COUNT 8

enum pcibar_type {
	PCIBAR_NONE,
	PCIBAR_IO,
	PCIBAR_MEM32,
	PCIBAR_MEM64,
	PCIBAR_MEMHI64, /* upper half of a 64-bit BAR */
};

struct pcibar {
	enum pcibar_type type;
	uint64_t addr;
	uint64_t size;
	bool sizing; /* the guest wrote all ones and is reading the mask */
};

struct pci_devinst;

/* One MSI-X table entry as the guest sees it (PCI 3.0 §6.8.2.6-9). */
struct msix_table_entry {
	uint64_t addr;
	uint32_t msg_data;
	uint32_t vector_control; /* bit 0: masked */
};

struct pci_devemu {
	const char *pe_emu;
	/* Turn the -s options after the device name into config values. */
	int (*pe_legacy_config)(struct config *node, const char *opts,
				char *err, size_t errlen);
	/*
	 * Set the device up from its config node. On failure it prints its
	 * own one-line error (naming the device) and returns -1.
	 */
	int (*pe_init)(struct pci_devinst *pi, struct config *node);
	/*
	 * Stop worker threads and free the device's state: machine_free
	 * calls it, after the vCPUs stopped and before guest memory goes.
	 */
	void (*pe_deinit)(struct pci_devinst *pi);
	/* Optional: its ACPI objects, written inside PCI0 (\_SB.PCI0). */
	int (*pe_write_dsdt)(struct pci_devinst *pi, struct aml *a);
	/* Saving and restoring a running device (not yet: NULL). */
	const struct snapshot_ops *pe_snapshot;
	/* Return 0 when handled; non-zero lets the core do the access. */
	int (*pe_cfgwrite)(struct pci_devinst *pi, int offset, int bytes,
			   uint32_t val);
	int (*pe_cfgread)(struct pci_devinst *pi, int offset, int bytes,
			  uint32_t *val);
	void (*pe_barwrite)(struct pci_devinst *pi, int baridx,
			    uint64_t offset, int size, uint64_t value);
	uint64_t (*pe_barread)(struct pci_devinst *pi, int baridx,
			       uint64_t offset, int size);
	/*
	 * Optional: BAR baridx starts (enabled) or stops decoding at address,
	 * for devices that hand parts of it to the kernel (virtio's doorbell
	 * eventfds). Called after the core registered the BAR, before it
	 * unregisters it.
	 */
	void (*pe_baraddr)(struct pci_devinst *pi, int baridx, bool enabled,
			   uint64_t address);
};
#define PCI_EMUL_SET(sym) DATA_SET(pci_devemu_set, sym)
SET_DECLARE(pci_devemu_set);

struct pci_devinst {
	const struct pci_devemu *pi_d;
	struct vmctx *pi_vmctx;
	uint8_t pi_bus, pi_slot, pi_func;
	char pi_name[48];
	struct {
		int pin; /* 1 = INTA .. 4 = INTD, 0 = none */
		int irq; /* IOAPIC pin */
		bool asserted;
	} pi_lintr;
	struct {
		bool enabled;
		uint64_t addr;
		uint32_t data;
		int maxmsgnum;
		int capoff;
	} pi_msi;
	/*
	 * MSI-X: the table and PBA live in a memory BAR that the core serves
	 * itself; the device's pe_barread/pe_barwrite see the rest of it.
	 */
	struct {
		pthread_mutex_t lock; /* table, PBA, enable and mask bits */
		bool enabled;
		bool function_mask;
		int capoff; /* 0: no MSI-X capability */
		int table_bar;
		uint32_t table_offset;
		int table_count;
		uint32_t pba_offset;
		uint32_t pba_size;
		struct msix_table_entry *table;
		uint64_t *pba; /* pending bits, one per vector */
		/*
		 * The device's, or NULL: called after the guest wrote the
		 * table or the enable and mask bits (the lock not held),
		 * for vectors the kernel raises itself (vm_msi_irqfd).
		 */
		void (*changed)(struct pci_devinst *pi);
	} pi_msix;
	int pi_prevcap, pi_capend;
	struct pcibar pi_bar[PCI_BARMAX + 1];
	uint8_t pi_cfgdata[PCI_CFG_SIZE];
	void *pi_arg; /* the device model's state */
};

/* Config space accessors (little-endian, bounds-checked). */
uint8_t pci_get_cfgdata8(struct pci_devinst *pi, int off);
uint16_t pci_get_cfgdata16(struct pci_devinst *pi, int off);
uint32_t pci_get_cfgdata32(struct pci_devinst *pi, int off);
void pci_set_cfgdata8(struct pci_devinst *pi, int off, uint8_t v);
void pci_set_cfgdata16(struct pci_devinst *pi, int off, uint16_t v);
void pci_set_cfgdata32(struct pci_devinst *pi, int off, uint32_t v);

/* Device model helpers. */
int pci_emul_alloc_bar(struct pci_devinst *pi, int idx, enum pcibar_type type,
		       uint64_t size);
int pci_emul_add_capability(struct pci_devinst *pi, const uint8_t *cap,
			    int caplen);
int pci_emul_add_msicap(struct pci_devinst *pi, int msgnum);
bool pci_msi_enabled(struct pci_devinst *pi);
void pci_generate_msi(struct pci_devinst *pi, int index);
/*
 * An MSI-X capability with msgnum vectors (1..2048), the table at offset 0
 * of memory BAR barnum and the PBA after it; allocates the BAR.
 */
int pci_emul_add_msixcap(struct pci_devinst *pi, int msgnum, int barnum);
bool pci_msix_enabled(struct pci_devinst *pi);
/*
 * Deliver MSI-X vector index, or set its pending bit while it or the
 * function is masked; nothing while MSI-X is disabled. Thread-safe.
 */
void pci_generate_msix(struct pci_devinst *pi, int index);
/*
 * Vector index's message, and whether it would be delivered now (MSI-X on,
 * neither the function nor the vector masked).
 */
bool pci_msix_vector(struct pci_devinst *pi, int index, uint64_t *addr,
		     uint32_t *data);
void pci_lintr_request(struct pci_devinst *pi);
void pci_lintr_assert(struct pci_devinst *pi);
void pci_lintr_deassert(struct pci_devinst *pi);

/* Machine assembly (bhyverun) and the option parser. */
struct pci_state;
/* -s [bus:]slot[:func],emul[,conf] into pci.B.S.F.device and friends. */
int pci_parse_slot(struct config *cfg, const char *opt, char *err,
		   size_t errlen);
/* "key=value,flag,..." into node (a bare flag is flag=true). */
int pci_parse_legacy_config(struct config *node, const char *opts, char *err,
			    size_t errlen);
void pci_print_supported_devices(void);
const struct pci_devemu *pci_emul_finddev(const char *name);
/*
 * Bring the bus up and create every configured device (the "pci" sysdev
 * does it at start-up; tests call it alone): -1 with a message on
 * stderr. machine_free undoes it.
 */
int init_pci(struct vmctx *ctx);
/* Config space access as the guest makes it (tests use these). */
uint32_t pci_cfg_read(struct vmctx *ctx, int bus, int slot, int func,
		      int off, int bytes);
void pci_cfg_write(struct vmctx *ctx, int bus, int slot, int func, int off,
		   int bytes, uint32_t val);
struct pci_devinst *pci_find_devinst(struct vmctx *ctx, int bus, int slot,
				     int func);
/* The highest bus number with a device on it (0 when none). */
int pci_last_bus(struct vmctx *ctx);
/* Iterate over every device, in bus, slot, function order. */
void pci_foreach_devinst(struct vmctx *ctx,
			 void (*fn)(struct pci_devinst *pi, void *arg),
			 void *arg);

#endif
