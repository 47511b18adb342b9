/*
 * Intel 82545EM gigabit Ethernet (e1000), as bhyve's pci_e82545.c:
 *
 *   -s SLOT,e1000,BACKEND[,mac=xx:xx:xx:xx:xx:xx]
 *
 * or pci.B.S.F.{backend,mac} (bhyve_config(5)); keys the backend reads
 * (slirp's hostfwd) come from the same node and the backend checks them.
 * Facts from Intel's PCI/PCI-X Family of Gigabit Ethernet Controllers
 * Software Developer's Manual (8254x, rev. 4.0; "SDM" below).
 *
 * BAR 0 holds the registers (128 KiB), BAR 1 the flash window (reads as
 * zero), BAR 2 the I/O window (IOADDR/IODATA, SDM §13.2.2). One INTx pin,
 * and MSI with one message when the guest turns it on.
 *
 * Offloads are done here in software: checksum insertion from legacy
 * descriptors (CSO/CSS) and from context descriptors (IPCSS/IPCSO/IPCSE,
 * TUCSS/TUCSO/TUCSE), and TCP/UDP segmentation (TSO); every frame goes to
 * the backend whole, without a vnet header.
 *
 * The guest is hostile: descriptors are copied once into locals, packets
 * are gathered into a buffer of ours before any offset in them is used,
 * and every guest-given offset and length is checked against the packet
 * and the header. bhyve's e1000 advisories are the classes covered:
 * FreeBSD-SA-19:21.bhyve (CVE-2019-5609, a TSO header length beyond the
 * header buffer) and FreeBSD-SA-22:05.bhyve (CVE-2022-23087, checksum
 * offsets beyond the header). A malformed packet is dropped and counted,
 * its descriptors still complete; a bad ring is left alone until the guest
 * fixes it. Messages about the guest are rate-limited.
 *
 * Not here: flow control, VLAN filtering, multicast and unicast filtering
 * (every frame is accepted), receive checksum offload (IXSM tells the guest
 * to check), the receive and transmit delay timers (RDTR/RADV, TIDV/TADV:
 * only ITR spaces interrupts), wake-on-LAN, loopback modes.
 *
 * Locking: one mutex covers the device. vCPU threads take it for register
 * access, and transmit runs there when the guest writes TDT; the event
 * loop takes it to receive and for the interrupt throttling timer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "mevent.h"
#include "net_backend.h"
#include "pci_emul.h"

#define E1K_VENDOR 0x8086
#define E1K_DEVICE 0x100f /* 82545EM copper */
#define E1K_SUBDEV 0x1008 /* as bhyve */

#define E1K_BAR_REGS 0
#define E1K_BAR_REGS_LEN (128 * 1024)
#define E1K_BAR_FLASH 1
#define E1K_BAR_FLASH_LEN (64 * 1024)
#define E1K_BAR_IO 2
#define E1K_BAR_IO_LEN 8
#define E1K_NREGS (E1K_BAR_REGS_LEN / 4)

/* Registers (SDM §13.4, Table 13-2). */
#define R_CTRL 0x0000
#define R_STATUS 0x0008
#define R_EECD 0x0010
#define R_EERD 0x0014
#define R_MDIC 0x0020
#define R_VET 0x0038
#define R_ICR 0x00c0
#define R_ITR 0x00c4
#define R_ICS 0x00c8
#define R_IMS 0x00d0
#define R_IMC 0x00d8
#define R_RCTL 0x0100
#define R_TCTL 0x0400
#define R_LEDCTL 0x0e00
#define R_PBA 0x1000
#define R_RDBAL 0x2800
#define R_RDBAH 0x2804
#define R_RDLEN 0x2808
#define R_RDH 0x2810
#define R_RDT 0x2818
#define R_TDBAL 0x3800
#define R_TDBAH 0x3804
#define R_TDLEN 0x3808
#define R_TDH 0x3810
#define R_TDT 0x3818
#define R_STATS 0x4000 /* statistics, 0x4000-0x40fc, clear on read */
#define R_STATS_END 0x4100
#define R_MPC 0x4010
#define R_ROC 0x40ac
#define R_GPRC 0x4074
#define R_GPTC 0x4080
#define R_GORCL 0x4088
#define R_GOTCL 0x4090
#define R_TPR 0x40d0
#define R_TPT 0x40d4
#define R_TSCTC 0x40f8
#define R_RAL0 0x5400
#define R_RAH0 0x5404

#define CTRL_FD (1u << 0)
#define CTRL_SLU (1u << 6)
#define CTRL_SPEED_1000 (2u << 8)
#define CTRL_RST (1u << 26)
#define CTRL_VME (1u << 30)
#define CTRL_PHY_RST (1u << 31)

#define STATUS_FD (1u << 0)
#define STATUS_LU (1u << 1)
#define STATUS_SPEED_1000 (2u << 6)

/* EECD (SDM §13.4.4): Microwire pins, request/grant, present. */
#define EECD_SK (1u << 0)
#define EECD_CS (1u << 1)
#define EECD_DI (1u << 2)
#define EECD_DO (1u << 3)
#define EECD_FWE_EN (2u << 4)
#define EECD_REQ (1u << 6)
#define EECD_GNT (1u << 7)
#define EECD_PRES (1u << 8)

#define EERD_START (1u << 0)
#define EERD_DONE (1u << 4)

#define MDIC_OP_WRITE (1u << 26)
#define MDIC_OP_READ (2u << 26)
#define MDIC_READY (1u << 28)
#define MDIC_ERROR (1u << 30)

/* Interrupt causes (SDM §13.4.17). */
#define ICR_TXDW (1u << 0)
#define ICR_TXQE (1u << 1)
#define ICR_LSC (1u << 2)
#define ICR_RXDMT0 (1u << 4)
#define ICR_RXO (1u << 6)
#define ICR_RXT0 (1u << 7)
#define ICR_VALID 0x0001f6dfu

#define RCTL_EN (1u << 1)
#define RCTL_LPE (1u << 5)
#define RCTL_RDMTS_SHIFT 8
#define RCTL_BSIZE_SHIFT 16
#define RCTL_BSEX (1u << 25)
#define RCTL_SECRC (1u << 26)
#define TCTL_EN (1u << 1)

/* Transmit descriptors (SDM §3.3). */
#define TXD_CMD_EOP 0x01
#define TXD_CMD_IC 0x04	 /* legacy: insert checksum */
#define TXD_CMD_TSE 0x04 /* data: segmentation */
#define TXD_CMD_RS 0x08
#define TXD_CMD_DEXT 0x20
#define TXD_CMD_VLE 0x40
#define TXD_DTYP_CTX 0x0
#define TXD_DTYP_DATA 0x1
#define TXD_STAT_DD 0x01
#define TXD_POPTS_IXSM 0x01
#define TXD_POPTS_TXSM 0x02
#define TUCMD_TCP 0x01
#define TUCMD_IP 0x02 /* IPv4; IPv6 without */
#define TUCMD_TSE 0x04

#define RXD_STAT_DD 0x01
#define RXD_STAT_EOP 0x02
#define RXD_STAT_IXSM 0x04

/*
 * Bounds. A packet is at most E1K_TX_MAXDESC descriptors (there is no
 * limit on the chip; Linux uses at most MAX_SKB_FRAGS + 2) and its bytes
 * fit the buffer: a TSO packet is a header and 64 KiB of payload.
 * E1K_TSO_HDR_MAX is the header cap bhyve chose after SA-19:21.
 */
#define E1K_TX_MAXDESC 64
#define E1K_TX_BUF (65536 + 256)
#define E1K_TSO_HDR_MAX 240
_Static_assert(E1K_TSO_HDR_MAX + 65535 <= E1K_TX_BUF,
	       "a segment (header and MSS bytes) fits the segment buffer");
#define E1K_MAX_FRAME 16384		/* with LPE; 1522 without */
#define E1K_RX_BUF (E1K_MAX_FRAME + 64) /* room for the pad and FCS */
#define ETHER_HDR_LEN 14
#define ETHER_MIN_FRAME 60 /* without the FCS */
#define ETHER_FCS 4
#define VLAN_TAG_LEN 4

/* EEPROM (SDM §5.6): 64 words, Microwire with 3 opcode and 6 address bits. */
#define EE_WORDS 64
#define EE_CHECKSUM_WORD 0x3f
#define EE_SUM 0xbaba
#define EE_OP_READ 0x6
#define EE_OP_WRITE 0x5
#define EE_OPADDR_BITS 9

/* PHY: a Marvell 88E1011 as on the 82545EM (SDM §13.5). */
#define PHY_ADDR 1
#define PHY_BMCR 0
#define PHY_BMSR 1
#define PHY_ID1 2
#define PHY_ID2 3
#define PHY_SPEC_STATUS 17
#define BMCR_RESET 0x8000
#define BMCR_ANRESTART 0x0200

struct e1k_ctx {
	uint8_t ipcss, ipcso, tucss, tucso;
	uint16_t ipcse, tucse;
	uint32_t paylen;
	uint8_t tucmd;
	uint8_t hdrlen;
	uint16_t mss;
};

struct e1k_softc {
	struct pci_devinst *pi;
	pthread_mutex_t mtx;
	struct net_backend *be;
	uint8_t mac[ETHER_ADDR_LEN];
	uint32_t *regs; /* the register file, indexed by offset / 4 */
	uint32_t io_addr;

	/* EEPROM and its Microwire state. */
	uint16_t eeprom[EE_WORDS];
	uint16_t ee_opaddr, ee_data;
	uint8_t ee_bits; /* still to shift in (opcode/address, data) */
	enum { EE_OPADDR, EE_DATAOUT, EE_DATAIN } ee_mode;
	uint16_t phy[32];

	/* Interrupts. */
	bool irq_raised; /* INTx asserted or MSI sent since ICR last cleared */
	bool intx;	 /* the raise was INTx */
	uint64_t last_irq;	  /* CLOCK_MONOTONIC ns of the last raise */
	struct mevent_ev *itr_ev; /* the ITR interval's one-shot timer */
	bool itr_armed;		  /* a throttled cause waits for it */

	/* Transmit. */
	struct e1k_ctx txctx;
	bool tx_skip; /* dropping the rest of an overlong packet, to EOP */
	uint8_t *txbuf;
	uint8_t *segbuf;

	/* Receive. */
	uint8_t *rxbuf;

	/*
	 * What was dropped: malformed by the guest (each message gives the
	 * totals), and frames the backend would not take (EAGAIN: a busy
	 * host, not worth a line).
	 */
	uint64_t tx_bad, rx_bad, tx_lost;
	struct timespec last_warn;
	unsigned int warn_quiet;
};

/* ---- messages the guest can cause: at most one a second ---- */

static double
ts_diff(const struct timespec *a, const struct timespec *b)
{
	return (double)(a->tv_sec - b->tv_sec) +
	       (double)(a->tv_nsec - b->tv_nsec) / 1e9;
}

static void __attribute__((format(printf, 2, 3)))
e1k_warn(struct e1k_softc *sc, const char *fmt, ...)
{
	struct timespec now;
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (sc->last_warn.tv_sec && ts_diff(&now, &sc->last_warn) < 1.0) {
		sc->warn_quiet++;
		return;
	}
	sc->last_warn = now;
	fprintf(stderr, "bhyve: e1000 at %d:%d:%d: ", sc->pi->pi_bus,
		sc->pi->pi_slot, sc->pi->pi_func);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (dropped so far: %llu to send, %llu received",
		(unsigned long long)sc->tx_bad, (unsigned long long)sc->rx_bad);
	if (sc->warn_quiet)
		fprintf(stderr, "; %u more messages not shown", sc->warn_quiet);
	fputs(")\n", stderr);
	sc->warn_quiet = 0;
}

static uint32_t *
reg(struct e1k_softc *sc, uint32_t off)
{
	return &sc->regs[off / 4];
}

static void
stat_add(struct e1k_softc *sc, uint32_t off, uint32_t n)
{
	uint32_t *r = reg(sc, off);

	*r = *r + n < *r ? UINT32_MAX : *r + n; /* they saturate */
}

static void
stat_add64(struct e1k_softc *sc, uint32_t off, uint64_t n)
{
	uint64_t v = *reg(sc, off) | (uint64_t)*reg(sc, off + 4) << 32;

	v += n;
	*reg(sc, off) = (uint32_t)v;
	*reg(sc, off + 4) = (uint32_t)(v >> 32);
}

/* ---- guest memory ---- */

static void *
e1k_map(struct e1k_softc *sc, uint64_t gpa, size_t len)
{
	if (len == 0 || gpa + len < gpa)
		return NULL;
	return vm_map_gpa(sc->pi->pi_vmctx, gpa, len);
}

/* ---- interrupts (SDM §7.4) ---- */

static void e1k_intr_update(struct e1k_softc *sc);

static void
itr_timer(int fd, enum ev_type type, void *arg)
{
	struct e1k_softc *sc = arg;

	(void)fd;
	(void)type;
	pthread_mutex_lock(&sc->mtx);
	sc->itr_armed = false;
	e1k_intr_update(sc);
	pthread_mutex_unlock(&sc->mtx);
}

/*
 * ITR (SDM §13.4.18) is the least time between interrupts, in 256 ns
 * units. Returns true when an interrupt may go now; otherwise arms the
 * device's one-shot timer for when it may, to the nanosecond: the
 * driver's usual 8000 interrupts a second are 125 us apart, well under
 * the event loop's millisecond periodic timers. The timer is added on the
 * first throttled interrupt and kept until deinit.
 */
static bool
itr_allows(struct e1k_softc *sc, uint64_t now)
{
	uint64_t gap = (uint64_t)(*reg(sc, R_ITR) & 0xffff) * 256;
	uint64_t next = sc->last_irq + gap;
	struct mevent *mev = machine_of(sc->pi->pi_vmctx)->mev;

	/* Without an event loop to wait on, throttling would lose it. */
	if (gap == 0 || now >= next || !mev)
		return true;
	if (sc->itr_armed)
		return false;
	if (!sc->itr_ev)
		sc->itr_ev = mevent_add(mev, 0, EVF_ONESHOT, itr_timer, sc);
	if (!sc->itr_ev || mevent_arm(sc->itr_ev, next) < 0)
		return true;
	sc->itr_armed = true;
	return false;
}

/*
 * The line follows ICR & IMS: INTx is a level, MSI is sent on the rising
 * edge. Reading ICR clears it and lowers the line, so a cause that comes
 * after the guest's read raises it again.
 */
static void
e1k_intr_update(struct e1k_softc *sc)
{
	bool want = (*reg(sc, R_ICR) & *reg(sc, R_IMS)) != 0;
	uint64_t now;

	if (!want) {
		if (sc->irq_raised && sc->intx)
			pci_lintr_deassert(sc->pi);
		sc->irq_raised = false;
		return;
	}
	if (sc->irq_raised)
		return;
	now = mevent_now_ns();
	if (!itr_allows(sc, now))
		return;
	sc->irq_raised = true;
	sc->last_irq = now;
	sc->intx = !pci_msi_enabled(sc->pi);
	if (sc->intx)
		pci_lintr_assert(sc->pi);
	else
		pci_generate_msi(sc->pi, 0);
}

static void
e1k_icr_set(struct e1k_softc *sc, uint32_t bits)
{
	*reg(sc, R_ICR) |= bits & ICR_VALID;
	e1k_intr_update(sc);
}

/* ---- EEPROM (SDM §5.6) and PHY (§13.5) ---- */

static void
eeprom_init(struct e1k_softc *sc)
{
	uint16_t sum = 0;

	memset(sc->eeprom, 0, sizeof(sc->eeprom));
	for (int i = 0; i < 3; i++)
		sc->eeprom[i] = sc->mac[2 * i] | sc->mac[2 * i + 1] << 8;
	/* Words 0x0b-0x0e: subsystem and device IDs (SDM Table 5-2). */
	sc->eeprom[0x0b] = E1K_SUBDEV;
	sc->eeprom[0x0c] = E1K_VENDOR;
	sc->eeprom[0x0d] = E1K_DEVICE;
	sc->eeprom[0x0e] = E1K_VENDOR;
	for (int i = 0; i < EE_CHECKSUM_WORD; i++)
		sum += sc->eeprom[i];
	/* The words sum to 0xbaba (SDM §5.6.1.12). */
	sc->eeprom[EE_CHECKSUM_WORD] = (uint16_t)(EE_SUM - sum);
}

static void
ee_opaddr_mode(struct e1k_softc *sc)
{
	sc->ee_mode = EE_OPADDR;
	sc->ee_bits = EE_OPADDR_BITS;
	sc->ee_opaddr = 0;
}

/* One rising SK edge with CS high: a bit in or out (SDM §5.6.2). */
static void
ee_clock(struct e1k_softc *sc, uint32_t eecd)
{
	unsigned int di = (eecd & EECD_DI) ? 1 : 0;
	uint16_t addr;

	switch (sc->ee_mode) {
	case EE_OPADDR:
		sc->ee_opaddr = (uint16_t)(sc->ee_opaddr << 1 | di);
		if (--sc->ee_bits)
			return;
		addr = sc->ee_opaddr & (EE_WORDS - 1);
		if (sc->ee_opaddr >> 6 == EE_OP_READ) {
			sc->ee_mode = EE_DATAOUT;
			sc->ee_bits = 16;
			sc->ee_data = sc->eeprom[addr];
		} else if (sc->ee_opaddr >> 6 == EE_OP_WRITE) {
			sc->ee_mode = EE_DATAIN;
			sc->ee_bits = 16;
			sc->ee_data = 0;
		} else {
			ee_opaddr_mode(sc); /* erase, enable: nothing to do */
		}
		return;
	case EE_DATAOUT:
		*reg(sc, R_EECD) &= ~EECD_DO;
		if (sc->ee_data & 0x8000)
			*reg(sc, R_EECD) |= EECD_DO;
		sc->ee_data <<= 1;
		if (--sc->ee_bits == 0)
			ee_opaddr_mode(sc);
		return;
	case EE_DATAIN:
		sc->ee_data = (uint16_t)(sc->ee_data << 1 | di);
		if (--sc->ee_bits)
			return;
		/* Writes are kept until reset: the MAC stays the given one. */
		sc->eeprom[sc->ee_opaddr & (EE_WORDS - 1)] = sc->ee_data;
		ee_opaddr_mode(sc);
		return;
	}
}

static void
eecd_write(struct e1k_softc *sc, uint32_t v)
{
	uint32_t old = *reg(sc, R_EECD);
	uint32_t pins = EECD_SK | EECD_CS | EECD_DI | EECD_REQ;
	uint32_t eecd = (old & ~(pins | EECD_GNT)) | (v & pins);

	/* The device never uses the EEPROM itself: grant at once. */
	if (eecd & EECD_REQ)
		eecd |= EECD_GNT;
	*reg(sc, R_EECD) = eecd;
	if (!(eecd & EECD_CS))
		ee_opaddr_mode(sc); /* deselect ends any command */
	else if ((eecd & EECD_SK) && !(old & EECD_SK))
		ee_clock(sc, eecd);
}

static uint32_t
eerd_read(struct e1k_softc *sc, uint32_t v)
{
	uint32_t addr = (v >> 8) & 0xff;

	if (!(v & EERD_START))
		return v;
	return (uint32_t)(addr < EE_WORDS ? sc->eeprom[addr] : 0) << 16 |
	       addr << 8 | EERD_DONE;
}

static void
phy_reset(struct e1k_softc *sc)
{
	memset(sc->phy, 0, sizeof(sc->phy));
	sc->phy[PHY_BMCR] = 0x1140; /* autoneg on, full duplex, 1000 */
	/* Link up, autonegotiation complete, 10/100/1000 capable. */
	sc->phy[PHY_BMSR] = 0x796d;
	sc->phy[PHY_ID1] = 0x0141; /* M88E1011: 0x01410c20 */
	sc->phy[PHY_ID2] = 0x0c20 | 4;
	sc->phy[4] = 0x0de1;  /* our advertisement */
	sc->phy[5] = 0x45e1;  /* the partner's: 10/100, FD, ack */
	sc->phy[6] = 0x0001;  /* partner can autonegotiate */
	sc->phy[9] = 0x0e00;  /* 1000BASE-T advertised */
	sc->phy[10] = 0x3c00; /* partner 1000 FD, receivers OK */
	sc->phy[15] = 0x3000; /* extended status: 1000BASE-T */
	/* 88E1011 specific status: 1000 Mb/s, full duplex, resolved, up. */
	sc->phy[PHY_SPEC_STATUS] = 0xac00;
}

static void
mdic_write(struct e1k_softc *sc, uint32_t v)
{
	unsigned int regno = (v >> 16) & 0x1f, phy = (v >> 21) & 0x1f;
	uint32_t op = v & (3u << 26);
	uint16_t data = v & 0xffff;

	v &= ~(MDIC_READY | MDIC_ERROR);
	if (phy != PHY_ADDR) {
		v |= MDIC_ERROR; /* no PHY there */
	} else if (op == MDIC_OP_READ) {
		v = (v & ~0xffffu) | sc->phy[regno];
	} else if (op == MDIC_OP_WRITE) {
		if (regno == PHY_BMCR && (data & BMCR_RESET))
			phy_reset(sc);
		else if (regno == PHY_BMCR)
			sc->phy[regno] = data & ~BMCR_ANRESTART;
		else if (regno != PHY_BMSR && regno != PHY_ID1 &&
			 regno != PHY_ID2 && regno != PHY_SPEC_STATUS)
			sc->phy[regno] = data;
	}
	/* Done at once; MDIC.I would ask for an interrupt (none needed). */
	*reg(sc, R_MDIC) = v | MDIC_READY;
}

/* ---- reset ---- */

static void
e1k_reset(struct e1k_softc *sc)
{
	memset(sc->regs, 0, E1K_BAR_REGS_LEN);
	*reg(sc, R_CTRL) = CTRL_FD | CTRL_SLU | CTRL_SPEED_1000;
	*reg(sc, R_EECD) = EECD_PRES | EECD_FWE_EN;
	*reg(sc, R_VET) = 0x8100; /* 802.1Q (SDM §13.4.7) */
	*reg(sc, R_LEDCTL) = 0x07068302;
	*reg(sc, R_PBA) = 0x00100030;
	*reg(sc, R_RAL0) = sc->mac[0] | sc->mac[1] << 8 | sc->mac[2] << 16 |
			   (uint32_t)sc->mac[3] << 24;
	*reg(sc, R_RAH0) = sc->mac[4] | sc->mac[5] << 8 | 1u << 31;
	eeprom_init(sc);
	ee_opaddr_mode(sc);
	phy_reset(sc);
	memset(&sc->txctx, 0, sizeof(sc->txctx));
	sc->tx_skip = false;
	if (sc->irq_raised && sc->intx)
		pci_lintr_deassert(sc->pi);
	sc->irq_raised = false;
	if (sc->itr_armed)
		mevent_disarm(sc->itr_ev);
	sc->itr_armed = false;
	/* The link comes up: tell the driver (IMS is 0, so it waits). */
	*reg(sc, R_ICR) = ICR_LSC;
}

/* ---- checksums (RFC 1071) ---- */

static uint32_t
csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (i < len)
		sum += (uint32_t)p[i] << 8;
	return sum;
}

static uint16_t
csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/*
 * Insert the checksum of pkt[start..end] (end inclusive; 0: to the end of
 * the packet) at pkt[off]. The guest's value there is part of the sum (a
 * TCP pseudo-header sum, or zero for IP). False when start or off lie
 * outside the packet: the class of SA-22:05.
 */
static bool
csum_insert(uint8_t *pkt, size_t len, unsigned int start, unsigned int off,
	    unsigned int end)
{
	size_t stop = end ? (size_t)end + 1 : len;

	if (start >= len || (size_t)off + 2 > len || stop <= start)
		return false;
	if (stop > len)
		stop = len; /* an end past the packet: to its end */
	put16(pkt + off,
	      (uint16_t)~csum_fold(csum_add(0, pkt + start, stop - start)));
	return true;
}

/* ---- transmit (SDM §3.3) ---- */

struct txdesc {
	uint64_t addr;
	uint32_t lower, upper;
};

static bool
txd_is_ctx(const struct txdesc *d)
{
	return (d->lower >> 24 & TXD_CMD_DEXT) &&
	       ((d->lower >> 20) & 0xf) == TXD_DTYP_CTX;
}

static bool
txd_is_data(const struct txdesc *d)
{
	return (d->lower >> 24 & TXD_CMD_DEXT) &&
	       ((d->lower >> 20) & 0xf) == TXD_DTYP_DATA;
}

/* What the offloads of one packet need, from its first descriptor. */
struct txpkt {
	bool legacy;
	uint8_t cmd, popts, css, cso;
	uint16_t vlan;
	size_t len;
};

static void
e1k_emit(struct e1k_softc *sc, const struct txpkt *p, uint8_t *frame,
	 size_t len)
{
	struct iovec iov[3];
	uint8_t tag[VLAN_TAG_LEN];
	int n = 1;

	iov[0] = (struct iovec){frame, len};
	/* VLAN insertion (SDM §3.3.3.1): after the two addresses. */
	if ((*reg(sc, R_CTRL) & CTRL_VME) && (p->cmd & TXD_CMD_VLE)) {
		if (len < 2 * ETHER_ADDR_LEN) {
			sc->tx_bad++;
			return;
		}
		put16(tag, (uint16_t)*reg(sc, R_VET));
		put16(tag + 2, p->vlan);
		iov[0].iov_len = 2 * ETHER_ADDR_LEN;
		iov[1] = (struct iovec){tag, sizeof(tag)};
		iov[2] = (struct iovec){frame + 2 * ETHER_ADDR_LEN,
					len - 2 * ETHER_ADDR_LEN};
		n = 3;
		len += VLAN_TAG_LEN;
	}
	if (netbe_send(sc->be, iov, n) < 0) {
		sc->tx_lost++; /* the host could not take it */
		return;
	}
	stat_add(sc, R_GPTC, 1);
	stat_add(sc, R_TPT, 1);
	stat_add64(sc, R_GOTCL, len);
}

/* Checksums from a legacy descriptor or the context, no segmentation. */
static bool
tx_csum(struct e1k_softc *sc, const struct txpkt *p, uint8_t *pkt)
{
	const struct e1k_ctx *c = &sc->txctx;

	if (p->legacy)
		return !(p->cmd & TXD_CMD_IC) ||
		       csum_insert(pkt, p->len, p->css, p->cso, 0);
	if ((p->popts & TXD_POPTS_IXSM) &&
	    !csum_insert(pkt, p->len, c->ipcss, c->ipcso, c->ipcse))
		return false;
	if ((p->popts & TXD_POPTS_TXSM) &&
	    !csum_insert(pkt, p->len, c->tucss, c->tucso, c->tucse))
		return false;
	return true;
}

/*
 * Whether the TSO context fits the packet: every field segmentation
 * writes lies inside the header, the header inside the packet and the
 * header buffer, and the segments make progress (SA-19:21, SA-22:05).
 */
static bool
tso_valid(struct e1k_softc *sc, const struct txpkt *p)
{
	const struct e1k_ctx *c = &sc->txctx;
	unsigned int h = c->hdrlen;
	bool v4 = c->tucmd & TUCMD_IP, tcp = c->tucmd & TUCMD_TCP;

	if (c->mss == 0 || h == 0 || h > E1K_TSO_HDR_MAX || h > p->len ||
	    c->paylen == 0 || c->paylen > p->len - h)
		return false;
	/* IPv4 total length, ID and checksum; IPv6 payload length. */
	if (v4 && (c->ipcss + 20u > h || c->ipcso + 2u > h))
		return false;
	if (!v4 && c->ipcss + 40u > h)
		return false;
	/* TCP sequence and flags, or the UDP length; the L4 checksum. */
	if (c->tucss + (tcp ? 20u : 8u) > h || c->tucso + 2u > h ||
	    c->tucss < c->ipcss)
		return false;
	return true;
}

static void
tso_segment(struct e1k_softc *sc, const struct txpkt *p, const uint8_t *pkt)
{
	const struct e1k_ctx *c = &sc->txctx;
	unsigned int h = c->hdrlen;
	bool v4 = c->tucmd & TUCMD_IP, tcp = c->tucmd & TUCMD_TCP;
	uint16_t ipid = get16(pkt + c->ipcss + 4);
	uint32_t seq = (uint32_t)get16(pkt + c->tucss + 4) << 16 |
		       get16(pkt + c->tucss + 6);
	uint16_t pseudo = get16(pkt + c->tucso); /* without the length */
	uint8_t *s = sc->segbuf;
	size_t done = 0;
	/* The IP header ends at IPCSE, or where TCP/UDP starts. */
	unsigned int ip_end = c->ipcse && c->ipcse < h ? c->ipcse
			      : c->tucss > c->ipcss    ? c->tucss - 1u
						       : h - 1u;

	for (unsigned int i = 0; done < c->paylen; i++) {
		size_t now =
		    c->paylen - done < c->mss ? c->paylen - done : c->mss;
		bool last = done + now == c->paylen;
		uint16_t l4len = (uint16_t)(h - c->tucss + now);

		memcpy(s, pkt, h);
		memcpy(s + h, pkt + h + done, now);
		if (v4) {
			put16(s + c->ipcss + 2, (uint16_t)(h - c->ipcss + now));
			put16(s + c->ipcss + 4, (uint16_t)(ipid + i));
		} else {
			put16(s + c->ipcss + 4,
			      (uint16_t)(h - c->ipcss - 40 + now));
		}
		if (tcp) {
			uint32_t sn = seq + (uint32_t)done;

			put16(s + c->tucss + 4, (uint16_t)(sn >> 16));
			put16(s + c->tucss + 6, (uint16_t)sn);
			if (!last) /* FIN and PSH only on the last */
				s[c->tucss + 13] &= (uint8_t)~0x09;
		} else {
			put16(s + c->tucss + 4, l4len);
		}
		if (v4 && (p->popts & TXD_POPTS_IXSM)) {
			put16(s + c->ipcso, 0);
			csum_insert(s, h + now, c->ipcss, c->ipcso, ip_end);
		}
		if (p->popts & TXD_POPTS_TXSM) {
			/* The guest's pseudo-header sum plus this length. */
			put16(s + c->tucso,
			      csum_fold((uint32_t)pseudo + l4len));
			csum_insert(s, h + now, c->tucss, c->tucso, 0);
		}
		e1k_emit(sc, p, s, h + now);
		done += now;
	}
	stat_add(sc, R_TSCTC, 1);
}

static void
tx_packet(struct e1k_softc *sc, const struct txpkt *p)
{
	bool tso = !p->legacy && (p->cmd & TXD_CMD_TSE) &&
		   (sc->txctx.tucmd & TUCMD_TSE);

	if (p->len < ETHER_HDR_LEN) {
		sc->tx_bad++; /* not even an Ethernet header */
		return;
	}
	if (tso) {
		if (!tso_valid(sc, p)) {
			sc->tx_bad++;
			e1k_warn(sc,
				 "TSO context does not fit the packet "
				 "(hdrlen %u, mss %u, paylen %u, %zu "
				 "bytes): dropped",
				 sc->txctx.hdrlen, sc->txctx.mss,
				 sc->txctx.paylen, p->len);
			return;
		}
		tso_segment(sc, p, sc->txbuf);
		return;
	}
	if (!tx_csum(sc, p, sc->txbuf)) {
		sc->tx_bad++;
		e1k_warn(sc,
			 "checksum offsets past the %zu-byte packet: "
			 "dropped",
			 p->len);
		return;
	}
	e1k_emit(sc, p, sc->txbuf, p->len);
}

static bool
txd_read(struct e1k_softc *sc, uint64_t base, uint32_t i, struct txdesc *d)
{
	uint8_t *m = e1k_map(sc, base + 16ull * i, 16);

	if (!m)
		return false;
	memcpy(&d->addr, m, 8);
	memcpy(&d->lower, m + 8, 4);
	memcpy(&d->upper, m + 12, 4);
	return true;
}

/* Descriptor done: DD in its status byte when the guest asked (RS). */
static bool
txd_done(struct e1k_softc *sc, uint64_t base, uint32_t i,
	 const struct txdesc *d)
{
	uint8_t *m;

	if (!(d->lower >> 24 & TXD_CMD_RS))
		return false;
	m = e1k_map(sc, base + 16ull * i + 12, 1);
	if (m)
		__atomic_store_n(m, (uint8_t)(d->upper | TXD_STAT_DD),
				 __ATOMIC_RELEASE);
	return true;
}

/* Append a descriptor's buffer to the packet; false: drop the packet. */
static bool
tx_gather(struct e1k_softc *sc, struct txpkt *p, const struct txdesc *d)
{
	size_t len = p->legacy ? (d->lower & 0xffff) : (d->lower & 0xfffff);
	const uint8_t *src;

	if (len == 0)
		return true;
	if (len > E1K_TX_BUF - p->len)
		return false;
	src = e1k_map(sc, d->addr, len);
	if (!src)
		return false;
	memcpy(sc->txbuf + p->len, src, len);
	p->len += len;
	return true;
}

static void
txpkt_start(struct txpkt *p, const struct txdesc *d)
{
	*p = (struct txpkt){
	    .legacy = !txd_is_data(d),
	    .cmd = (uint8_t)(d->lower >> 24),
	    .popts = (uint8_t)(d->upper >> 8),
	    .css = (uint8_t)(d->upper >> 8),
	    .cso = (uint8_t)(d->lower >> 16),
	    .vlan = (uint16_t)(d->upper >> 16),
	};
}

static void
ctx_load(struct e1k_softc *sc, const struct txdesc *d)
{
	uint32_t lo = (uint32_t)d->addr, hi = (uint32_t)(d->addr >> 32);

	sc->txctx = (struct e1k_ctx){
	    .ipcss = (uint8_t)lo,
	    .ipcso = (uint8_t)(lo >> 8),
	    .ipcse = (uint16_t)(lo >> 16),
	    .tucss = (uint8_t)hi,
	    .tucso = (uint8_t)(hi >> 8),
	    .tucse = (uint16_t)(hi >> 16),
	    .paylen = d->lower & 0xfffff,
	    .tucmd = (uint8_t)(d->lower >> 24),
	    .hdrlen = (uint8_t)(d->upper >> 8),
	    .mss = (uint16_t)(d->upper >> 16),
	};
}

/*
 * Copy the next packet's descriptors from head (its EOP included) into
 * ds: how many, 0 when it is not all there yet. A packet longer than
 * E1K_TX_MAXDESC is taken as that many, to be dropped with the rest of
 * it; an unreadable descriptor ends the copy (readable false: drop).
 */
static uint32_t
tx_packet_read(struct e1k_softc *sc, uint64_t base, uint32_t n, uint32_t head,
	       uint32_t tail, struct txdesc ds[E1K_TX_MAXDESC], bool *whole,
	       bool *readable)
{
	uint32_t k = 0;

	*whole = false;
	*readable = true;
	for (uint32_t i = head; i != tail; i = (i + 1) % n) {
		struct txdesc *d = &ds[k];

		if (!txd_read(sc, base, i, d)) {
			*readable = false;
			return k + 1;
		}
		k++;
		if (txd_is_ctx(d) && k == 1)
			return 1;
		if (!txd_is_ctx(d) && (d->lower >> 24 & TXD_CMD_EOP)) {
			*whole = true;
			return k;
		}
		if (k == E1K_TX_MAXDESC) {
			sc->tx_skip = true; /* its remainder goes too */
			return k;
		}
	}
	return 0;
}

/* Drop descriptors to the EOP that ends an overlong packet. */
static bool
tx_skip_rest(struct e1k_softc *sc, uint64_t base, uint32_t n, uint32_t *head,
	     uint32_t tail, bool *wb)
{
	struct txdesc d;
	uint32_t i = *head;

	if (i == tail)
		return false;
	while (i != tail && sc->tx_skip) {
		if (txd_read(sc, base, i, &d)) {
			*wb |= txd_done(sc, base, i, &d);
			if (!txd_is_ctx(&d) && (d.lower >> 24 & TXD_CMD_EOP))
				sc->tx_skip = false;
		}
		i = (i + 1) % n;
	}
	*head = i;
	return true;
}

/* Process the descriptors of one packet (or one context descriptor). */
static bool
tx_one(struct e1k_softc *sc, uint64_t base, uint32_t n, uint32_t *head,
       uint32_t tail, bool *wb)
{
	struct txdesc ds[E1K_TX_MAXDESC];
	struct txpkt p;
	bool whole, readable, started = false;
	uint32_t k =
	    tx_packet_read(sc, base, n, *head, tail, ds, &whole, &readable);
	/* The descriptors we hold: an unreadable one ends the copy. */
	uint32_t nd = readable ? k : k - 1;
	bool ok = readable;

	if (k == 0)
		return false;
	for (uint32_t j = 0; j < nd && ok; j++) {
		const struct txdesc *d = &ds[j];

		if (txd_is_ctx(d)) {
			ctx_load(sc, d); /* for this packet and the next */
		} else if (!txd_is_data(d) && (d->lower >> 24 & TXD_CMD_DEXT)) {
			ok = false; /* a reserved descriptor type */
		} else if (!started) {
			txpkt_start(&p, d);
			started = true;
			ok = tx_gather(sc, &p, d);
		} else if (p.legacy != !txd_is_data(d)) {
			ok = false; /* legacy and extended mixed */
		} else {
			ok = tx_gather(sc, &p, d);
		}
	}
	/* Every descriptor taken completes, sent or dropped. */
	for (uint32_t j = 0; j < nd; j++)
		*wb |= txd_done(sc, base, (*head + j) % n, &ds[j]);
	if (k == 1 && !whole && ok && !started) {
		*head = (*head + 1) % n; /* a context descriptor alone */
		return true;
	}
	if (ok && whole && started) {
		tx_packet(sc, &p);
	} else {
		sc->tx_bad++;
		e1k_warn(sc,
			 "malformed transmit packet at descriptor %u (%u "
			 "descriptors): dropped",
			 *head, k);
	}
	*head = (*head + k) % n;
	return true;
}

/*
 * The guest moved TDT: send what lies between TDH and TDT. A ring the
 * device cannot use (empty, indexes past its end, not in guest RAM) is
 * left alone; the work is bounded by the ring's size.
 */
static void
e1k_tx(struct e1k_softc *sc)
{
	uint64_t base = (uint64_t)*reg(sc, R_TDBAH) << 32 | *reg(sc, R_TDBAL);
	uint32_t n = *reg(sc, R_TDLEN) / 16;
	uint32_t head = *reg(sc, R_TDH), tail = *reg(sc, R_TDT);
	bool wb = false, any = false;

	if (!(*reg(sc, R_TCTL) & TCTL_EN) || head == tail)
		return;
	if (n == 0 || head >= n || tail >= n) {
		sc->tx_bad++;
		e1k_warn(sc,
			 "transmit ring of %u descriptors with head %u "
			 "and tail %u: not used",
			 n, head, tail);
		return;
	}
	while (head != tail &&
	       (sc->tx_skip ? tx_skip_rest(sc, base, n, &head, tail, &wb)
			    : tx_one(sc, base, n, &head, tail, &wb)))
		any = true;
	*reg(sc, R_TDH) = head;
	if (any)
		e1k_icr_set(sc, (wb ? ICR_TXDW : 0) |
				    (head == tail ? ICR_TXQE : 0));
}

/* ---- receive (SDM §3.2) ---- */

static uint32_t
rx_bufsize(uint32_t rctl)
{
	static const uint32_t sz[2][4] = {{2048, 1024, 512, 256},
					  {0, 16384, 8192, 4096}};
	uint32_t s = sz[!!(rctl & RCTL_BSEX)][(rctl >> RCTL_BSIZE_SHIFT) & 3];

	return s ? s : 2048; /* BSEX with 00 is reserved */
}

static uint32_t
crc32_le(const uint8_t *p, size_t len)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & -(c & 1));
	}
	return ~c;
}

/* Copy a frame into descriptors from head; false when one is unusable. */
static bool
rx_store(struct e1k_softc *sc, uint64_t base, uint32_t n, uint32_t head,
	 uint32_t bufsz, size_t len)
{
	size_t off = 0;

	for (uint32_t i = head; off < len; i = (i + 1) % n) {
		uint8_t *d = e1k_map(sc, base + 16ull * i, 16);
		size_t now = len - off < bufsz ? len - off : bufsz;
		uint64_t addr;
		uint8_t *buf;
		uint16_t l16 = (uint16_t)now;

		if (!d)
			return false;
		memcpy(&addr, d, 8);
		buf = e1k_map(sc, addr, now);
		if (!buf)
			return false;
		memcpy(buf, sc->rxbuf + off, now);
		off += now;
		memcpy(d + 8, &l16, 2);
		memset(d + 10, 0, 2); /* checksum */
		d[13] = 0;	      /* errors */
		memset(d + 14, 0, 2); /* special */
		/* Status last: the guest polls DD. */
		__atomic_store_n(d + 12,
				 (uint8_t)(RXD_STAT_DD | RXD_STAT_IXSM |
					   (off == len ? RXD_STAT_EOP : 0)),
				 __ATOMIC_RELEASE);
	}
	return true;
}

static void
rx_drop(struct e1k_softc *sc, uint32_t stat)
{
	netbe_rx_discard(sc->be);
	stat_add(sc, stat, 1);
	stat_add(sc, R_TPR, 1);
}

/* Bytes a frame of len takes in the ring: padded, with its FCS. */
static size_t
rx_frame_len(uint32_t rctl, size_t len)
{
	if (len < ETHER_MIN_FRAME)
		len = ETHER_MIN_FRAME;
	return (rctl & RCTL_SECRC) ? len : len + ETHER_FCS;
}

/* One waiting frame into the ring; false when none waits. */
static bool
rx_one(struct e1k_softc *sc, uint32_t *cause)
{
	uint32_t rctl = *reg(sc, R_RCTL), bufsz = rx_bufsize(rctl);
	uint64_t base = (uint64_t)*reg(sc, R_RDBAH) << 32 | *reg(sc, R_RDBAL);
	uint32_t n = *reg(sc, R_RDLEN) / 16;
	uint32_t head = *reg(sc, R_RDH), tail = *reg(sc, R_RDT);
	size_t max = (rctl & RCTL_LPE) ? E1K_MAX_FRAME : 1522, flen;
	ssize_t len = netbe_peek_recvlen(sc->be);
	uint32_t free, need;
	struct iovec iov;

	if (len <= 0)
		return false;
	if (!(rctl & RCTL_EN) || n == 0 || head >= n || tail >= n) {
		rx_drop(sc, R_MPC);
		return true;
	}
	if ((size_t)len > max) {
		rx_drop(sc, R_ROC); /* oversize (SDM §13.7.43) */
		return true;
	}
	/* Hardware owns head up to tail - 1 (SDM §3.2.6). */
	free = (tail + n - head) % n;
	need =
	    (uint32_t)((rx_frame_len(rctl, (size_t)len) + bufsz - 1) / bufsz);
	if (need > free) {
		rx_drop(sc, R_MPC);
		*cause |= ICR_RXO;
		return true;
	}
	iov = (struct iovec){sc->rxbuf, max};
	len = netbe_recv(sc->be, &iov, 1);
	if (len <= 0)
		return false;
	flen = rx_frame_len(rctl, (size_t)len);
	if (flen > (size_t)need * bufsz) { /* longer than it said */
		sc->rx_bad++;
		stat_add(sc, R_MPC, 1);
		return true;
	}
	memset(sc->rxbuf + len, 0,
	       E1K_RX_BUF - (size_t)len < 64 ? E1K_RX_BUF - (size_t)len : 64);
	if (!(rctl & RCTL_SECRC)) { /* the FCS stays unless stripped */
		uint32_t crc = crc32_le(sc->rxbuf, flen - ETHER_FCS);

		memcpy(sc->rxbuf + flen - ETHER_FCS, &crc, ETHER_FCS);
	}
	if (!rx_store(sc, base, n, head, bufsz, flen)) {
		sc->rx_bad++;
		stat_add(sc, R_MPC, 1);
		e1k_warn(sc, "receive descriptor or buffer outside guest "
			     "memory: frame dropped");
		return true;
	}
	*reg(sc, R_RDH) = (head + need) % n;
	stat_add(sc, R_GPRC, 1);
	stat_add(sc, R_TPR, 1);
	stat_add64(sc, R_GORCL, flen);
	*cause |= ICR_RXT0;
	/* RXDMT0: free descriptors fell to RCTL.RDMTS of the ring. */
	if (free - need <= n >> (((rctl >> RCTL_RDMTS_SHIFT) & 3) + 1))
		*cause |= ICR_RXDMT0;
	return true;
}

/* The backend has frames: on the event loop. */
static void
e1k_rx(int fd, void *arg)
{
	struct e1k_softc *sc = arg;
	uint32_t cause = 0;

	(void)fd;
	pthread_mutex_lock(&sc->mtx);
	while (rx_one(sc, &cause))
		;
	if (cause)
		e1k_icr_set(sc, cause);
	pthread_mutex_unlock(&sc->mtx);
}

/* ---- registers ---- */

static uint32_t
e1k_read(struct e1k_softc *sc, uint32_t off)
{
	uint32_t v;

	if (off & 3 || off >= E1K_BAR_REGS_LEN)
		return 0;
	v = *reg(sc, off);
	switch (off) {
	case R_STATUS:
		return STATUS_FD | STATUS_LU | STATUS_SPEED_1000;
	case R_ICR: /* read to clear (SDM §13.4.17) */
		*reg(sc, R_ICR) = 0;
		e1k_intr_update(sc);
		return v;
	case R_ICS:
	case R_IMC:
		return 0; /* write-only */
	default:
		if (off >= R_STATS && off < R_STATS_END)
			*reg(sc, off) = 0; /* statistics clear on read */
		return v;
	}
}

static void
e1k_write(struct e1k_softc *sc, uint32_t off, uint32_t v)
{
	if (off & 3 || off >= E1K_BAR_REGS_LEN)
		return;
	switch (off) {
	case R_CTRL:
		if (v & CTRL_RST) {
			e1k_reset(sc);
			return;
		}
		if (v & CTRL_PHY_RST) /* SDM §13.4.1: the PHY resets */
			phy_reset(sc);
		*reg(sc, off) = v & ~CTRL_PHY_RST;
		return;
	case R_STATUS:
		return;
	case R_EECD:
		eecd_write(sc, v);
		return;
	case R_EERD:
		*reg(sc, off) = eerd_read(sc, v);
		return;
	case R_MDIC:
		mdic_write(sc, v);
		return;
	case R_ICR: /* write 1 to clear */
		*reg(sc, off) &= ~v;
		e1k_intr_update(sc);
		return;
	case R_ICS:
		e1k_icr_set(sc, v);
		return;
	case R_IMS:
		*reg(sc, R_IMS) |= v & ICR_VALID;
		e1k_intr_update(sc);
		return;
	case R_IMC:
		*reg(sc, R_IMS) &= ~v;
		e1k_intr_update(sc);
		return;
	case R_RDBAL:
	case R_TDBAL:
		*reg(sc, off) = v & ~0xfu; /* 16-byte aligned */
		return;
	case R_RDLEN:
	case R_TDLEN:
		*reg(sc, off) = v & 0xfff80; /* multiples of 128 bytes */
		return;
	case R_TDH:
		sc->tx_skip = false; /* the driver starts the ring afresh */
		*reg(sc, off) = v & 0xffff;
		return;
	case R_RDH:
	case R_RDT:
		*reg(sc, off) = v & 0xffff;
		return;
	case R_TDT:
		*reg(sc, off) = v & 0xffff;
		e1k_tx(sc);
		return;
	case R_TCTL:
		*reg(sc, off) = v;
		e1k_tx(sc); /* descriptors may already wait */
		return;
	default:
		if (off >= R_STATS && off < R_STATS_END)
			return; /* read-only counters */
		*reg(sc, off) = v;
	}
}

static void
pci_e1000_write(struct pci_devinst *pi, int baridx, uint64_t offset, int size,
		uint64_t value)
{
	struct e1k_softc *sc = pi->pi_arg;

	if (size != 4)
		return; /* registers are 32-bit (SDM §13.3) */
	pthread_mutex_lock(&sc->mtx);
	if (baridx == E1K_BAR_REGS)
		e1k_write(sc, (uint32_t)offset, (uint32_t)value);
	else if (baridx == E1K_BAR_IO && offset == 0)
		sc->io_addr = (uint32_t)value;
	else if (baridx == E1K_BAR_IO && offset == 4)
		e1k_write(sc, sc->io_addr, (uint32_t)value);
	pthread_mutex_unlock(&sc->mtx);
}

static uint64_t
pci_e1000_read(struct pci_devinst *pi, int baridx, uint64_t offset, int size)
{
	struct e1k_softc *sc = pi->pi_arg;
	uint32_t v = 0;

	if (size != 4)
		return 0;
	pthread_mutex_lock(&sc->mtx);
	if (baridx == E1K_BAR_REGS)
		v = e1k_read(sc, (uint32_t)offset);
	else if (baridx == E1K_BAR_IO && offset == 0)
		v = sc->io_addr;
	else if (baridx == E1K_BAR_IO && offset == 4)
		v = e1k_read(sc, sc->io_addr);
	pthread_mutex_unlock(&sc->mtx);
	return v;
}

/* ---- set-up and teardown ---- */

static int
e1k_fail(struct pci_devinst *pi, const char *msg)
{
	fprintf(stderr, "bhyve: e1000 at %d:%d:%d: %s\n", pi->pi_bus,
		pi->pi_slot, pi->pi_func, msg);
	return -1;
}

struct key_check {
	const struct config *node;
	const char *bad;
};

static int
e1k_check_key(const struct config *c, void *arg)
{
	struct key_check *k = arg;
	const char *name = config_node_name(c);

	if (config_is_leaf(c) &&
	    (!strcmp(name, "device") || !strcmp(name, "backend") ||
	     !strcmp(name, "mac") || netbe_is_option(k->node, name)))
		return 0;
	k->bad = name;
	return 1;
}

static void pci_e1000_deinit(struct pci_devinst *pi);

static int
e1k_setup(struct e1k_softc *sc, struct config *node, char *err, size_t errlen)
{
	struct pci_devinst *pi = sc->pi;
	struct machine *m = machine_of(pi->pi_vmctx);
	struct key_check k = {node, NULL};

	if (config_foreach(node, e1k_check_key, &k)) {
		snprintf(err, errlen, "unknown option '%s' (backend, mac)",
			 k.bad);
		return -1;
	}
	if (net_nic_mac(node, config_get(m->cfg, "name"), pi->pi_slot,
			pi->pi_func, sc->mac, err, errlen) < 0)
		return -1;
	sc->regs = calloc(1, E1K_BAR_REGS_LEN);
	sc->txbuf = malloc(E1K_TX_BUF);
	sc->segbuf = malloc(E1K_TX_BUF);
	sc->rxbuf = malloc(E1K_RX_BUF);
	if (!sc->regs || !sc->txbuf || !sc->segbuf || !sc->rxbuf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	sc->be = netbe_open(pi->pi_vmctx, node, e1k_rx, sc, err, errlen);
	if (!sc->be)
		return -1;
	pci_set_cfgdata16(pi, 0x00, E1K_VENDOR);
	pci_set_cfgdata16(pi, 0x02, E1K_DEVICE);
	pci_set_cfgdata8(pi, 0x0b, 0x02); /* network controller */
	pci_set_cfgdata8(pi, 0x0a, 0x00); /* Ethernet */
	pci_set_cfgdata16(pi, 0x2c, E1K_VENDOR);
	pci_set_cfgdata16(pi, 0x2e, E1K_SUBDEV);
	if (pci_emul_alloc_bar(pi, E1K_BAR_REGS, PCIBAR_MEM32,
			       E1K_BAR_REGS_LEN) < 0 ||
	    pci_emul_alloc_bar(pi, E1K_BAR_FLASH, PCIBAR_MEM32,
			       E1K_BAR_FLASH_LEN) < 0 ||
	    pci_emul_alloc_bar(pi, E1K_BAR_IO, PCIBAR_IO, E1K_BAR_IO_LEN) < 0 ||
	    pci_emul_add_msicap(pi, 1) < 0) {
		snprintf(err, errlen, "cannot set up its BARs or MSI");
		return -1;
	}
	pci_lintr_request(pi);
	return 0;
}

static int
pci_e1000_init(struct pci_devinst *pi, struct config *node)
{
	struct e1k_softc *sc = calloc(1, sizeof(*sc));
	char err[256];

	if (!sc)
		return e1k_fail(pi, "out of memory");
	sc->pi = pi;
	pi->pi_arg = sc;
	pthread_mutex_init(&sc->mtx, NULL);
	if (e1k_setup(sc, node, err, sizeof(err)) < 0) {
		pci_e1000_deinit(pi);
		return e1k_fail(pi, err);
	}
	pthread_mutex_lock(&sc->mtx);
	e1k_reset(sc);
	pthread_mutex_unlock(&sc->mtx);
	netbe_rx_enable(sc->be);
	return 0;
}

static void
pci_e1000_deinit(struct pci_devinst *pi)
{
	struct e1k_softc *sc = pi->pi_arg;

	if (!sc)
		return;
	netbe_close(sc->be); /* no rx callbacks after this */
	mevent_delete(sc->itr_ev);
	pthread_mutex_destroy(&sc->mtx);
	free(sc->rxbuf);
	free(sc->segbuf);
	free(sc->txbuf);
	free(sc->regs);
	free(sc);
	pi->pi_arg = NULL;
}

/* -s SLOT,e1000,tap0[,mac=...]: the first word without '=' is the backend. */
static int
pci_e1000_legacy_config(struct config *node, const char *opts, char *err,
			size_t errlen)
{
	size_t n = strcspn(opts, ",");
	char *be;
	int rc;

	if (memchr(opts, '=', n))
		return pci_parse_legacy_config(node, opts, err, errlen);
	be = strndup(opts, n);
	if (!be)
		return -1;
	rc = config_set(node, "backend", be, err, errlen);
	free(be);
	if (rc < 0 || !opts[n])
		return rc;
	return pci_parse_legacy_config(node, opts + n + 1, err, errlen);
}

static const struct pci_devemu pci_de_e1000 = {
    .pe_emu = "e1000",
    .pe_legacy_config = pci_e1000_legacy_config,
    .pe_init = pci_e1000_init,
    .pe_deinit = pci_e1000_deinit,
    .pe_barwrite = pci_e1000_write,
    .pe_barread = pci_e1000_read,
};
PCI_EMUL_SET(pci_de_e1000);
