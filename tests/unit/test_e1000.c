/*
 * The e1000 (82545EM) against the mock backend: a driver written here
 * lays transmit and receive rings and packets out in mock guest memory,
 * drives the registers through BAR 0 and the I/O window, and checks what
 * the device wrote back and what reached the network. The network is a
 * fake backend of this file ("fakee1k"), which records the frames sent and
 * serves frames queued by the test. Every malformed descriptor and offload
 * context a hostile guest can send is dropped without a stray access; the
 * classes of bhyve's e1000 advisories (SA-19:21, SA-22:05) each have a
 * regression test.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "inout.h"
#include "machine.h"
#include "mem.h"
#include "mevent.h"
#include "net_backend.h"
#include "pci_emul.h"

#define MEMSIZE (16 << 20)
#define SLOT 3
#define TXR_GPA 0x10000ULL
#define RXR_GPA 0x11000ULL
#define PKT_GPA 0x100000ULL
#define RXBUF_GPA 0x200000ULL
#define NDESC 16

#define R_CTRL 0x0000
#define R_STATUS 0x0008
#define R_EECD 0x0010
#define R_EERD 0x0014
#define R_MDIC 0x0020
#define R_ICR 0x00c0
#define R_ITR 0x00c4
#define R_ICS 0x00c8
#define R_IMS 0x00d0
#define R_IMC 0x00d8
#define R_RCTL 0x0100
#define R_TCTL 0x0400
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
#define R_MPC 0x4010
#define R_GPRC 0x4074
#define R_GPTC 0x4080
#define R_ROC 0x40ac
#define R_RAL0 0x5400
#define R_RAH0 0x5404

#define ICR_TXDW 0x01
#define ICR_TXQE 0x02
#define ICR_LSC 0x04
#define ICR_RXDMT0 0x10
#define ICR_RXO 0x40
#define ICR_RXT0 0x80

#define CMD_EOP 0x01
#define CMD_IC 0x04
#define CMD_TSE 0x04
#define CMD_RS 0x08
#define CMD_DEXT 0x20
#define POPTS_IXSM 0x01
#define POPTS_TXSM 0x02
#define TUCMD_TCP 0x01
#define TUCMD_IP 0x02
#define TUCMD_TSE 0x04

/* ---- the fake network backend ---- */

#define FK_MAX 64

static struct {
	struct net_backend *be;
	uint8_t *sent[FK_MAX];
	size_t sent_len[FK_MAX];
	int nsent;
	uint8_t *q[FK_MAX];
	size_t qlen[FK_MAX];
	int qhead, qtail;
	int discarded;
	bool rx_on;
} fk;

static int
fk_init(struct net_backend *be, struct vmctx *ctx, const char *name,
	struct config *nic, char *err, size_t errlen)
{
	(void)ctx;
	(void)name;
	(void)nic;
	(void)err;
	(void)errlen;
	fk.be = be;
	return 0;
}

static void
fk_reset(void)
{
	for (int i = 0; i < fk.nsent; i++)
		free(fk.sent[i]);
	for (int i = fk.qhead; i < fk.qtail; i++)
		free(fk.q[i]);
	memset(&fk, 0, sizeof(fk));
}

/* Forget the frames sent so far. */
static void
fk_clear_sent(void)
{
	for (int i = 0; i < fk.nsent; i++)
		free(fk.sent[i]);
	fk.nsent = 0;
}

static void
fk_cleanup(struct net_backend *be)
{
	(void)be;
	fk_reset();
}

static ssize_t
fk_send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	size_t len = 0, off = 0;
	uint8_t *p;

	(void)be;
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	assert_true(fk.nsent < FK_MAX);
	p = malloc(len ? len : 1);
	for (int i = 0; i < iovcnt; i++) {
		memcpy(p + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	fk.sent[fk.nsent] = p;
	fk.sent_len[fk.nsent++] = len;
	return (ssize_t)len;
}

static ssize_t
fk_peek(struct net_backend *be)
{
	(void)be;
	return fk.qhead < fk.qtail ? (ssize_t)fk.qlen[fk.qhead] : 0;
}

static ssize_t
fk_recv(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	size_t len, off = 0;

	(void)be;
	if (fk.qhead == fk.qtail)
		return 0;
	len = fk.qlen[fk.qhead];
	for (int i = 0; i < iovcnt && off < len; i++) {
		size_t now =
		    len - off < iov[i].iov_len ? len - off : iov[i].iov_len;

		memcpy(iov[i].iov_base, fk.q[fk.qhead] + off, now);
		off += now;
	}
	free(fk.q[fk.qhead++]);
	return (ssize_t)off;
}

static ssize_t
fk_discard(struct net_backend *be)
{
	(void)be;
	if (fk.qhead == fk.qtail)
		return 0;
	fk.discarded++;
	free(fk.q[fk.qhead++]);
	return 1;
}

static void
fk_rx_enable(struct net_backend *be)
{
	(void)be;
	fk.rx_on = true;
}

static void
fk_rx_disable(struct net_backend *be)
{
	(void)be;
	fk.rx_on = false;
}

static const char *const fk_keys[] = {"fakeopt", NULL};

static const struct net_backend_ops fakee1k_backend = {
    .prefix = "fakee1k",
    .init = fk_init,
    .cleanup = fk_cleanup,
    .send = fk_send,
    .peek_recvlen = fk_peek,
    .recv = fk_recv,
    .recv_discard = fk_discard,
    .rx_disable = fk_rx_disable,
    .rx_enable = fk_rx_enable,
    .keys = fk_keys,
};
NET_BACKEND_SET(fakee1k_backend);

/* A frame for the device to receive, and the callback as the loop runs. */
static void
fk_queue(const uint8_t *p, size_t len)
{
	assert_true(fk.qtail < FK_MAX);
	fk.q[fk.qtail] = malloc(len);
	memcpy(fk.q[fk.qtail], p, len);
	fk.qlen[fk.qtail++] = len;
}

static void
fk_rx_event(void)
{
	fk.be->rx_cb(-1, fk.be->rx_arg);
}

/* ---- the fixture ---- */

struct fx {
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
	uint8_t *mem;
	uint64_t bar0;
	int iobase;
	int irq;
};

static char err[512];

static int
fx_init(struct fx *f, const char *opts)
{
	char slot[256];

	f->cfg = config_create();
	assert_int_equal(config_set(f->cfg, "pci.0.0.0.device", "hostbridge",
				    err, sizeof(err)),
			 0);
	assert_int_equal(config_set(f->cfg, "name", "vm1", err, sizeof(err)),
			 0);
	snprintf(slot, sizeof(slot), "%d,e1000%s%s", SLOT, *opts ? "," : "",
		 opts);
	assert_int_equal(pci_parse_slot(f->cfg, slot, err, sizeof(err)), 0);
	f->ctx = vm_create_mock(MEMSIZE);
	assert_non_null(f->ctx);
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	f->mem = vm_map_gpa(f->ctx, 0, MEMSIZE);
	return init_pci(f->ctx);
}

static void
fx_teardown(struct fx *f)
{
	machine_free(f->m);
	vm_close(f->ctx);
	config_free(f->cfg);
	fk_reset();
}

static struct fx *
fx_new(const char *opts)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(fx_init(f, opts), 0);
	f->bar0 = pci_cfg_read(f->ctx, 0, SLOT, 0, 0x10, 4) & ~0xfULL;
	f->iobase = (int)(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x18, 4) & ~3u);
	f->irq = pci_find_devinst(f->ctx, 0, SLOT, 0)->pi_lintr.irq;
	return f;
}

static void
fx_free(struct fx *f)
{
	fx_teardown(f);
	free(f);
}

/* Init with stderr in a file: its first line in buf, init's rc. */
static int
init_capture(const char *opts, char *buf, size_t len)
{
	char path[] = "/tmp/test_e1000_err.XXXXXX";
	int fd = mkstemp(path), saved = dup(2), rc;
	struct fx f = {0};
	FILE *fp;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	rc = fx_init(&f, opts);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	fp = fopen(path, "r");
	assert_non_null(fp);
	if (!fgets(buf, (int)len, fp))
		buf[0] = '\0';
	fclose(fp);
	unlink(path);
	fx_teardown(&f);
	return rc;
}

static void
wr(struct fx *f, uint32_t off, uint32_t v)
{
	uint64_t x = v;

	emulate_mem(f->ctx, NULL, f->bar0 + off, MEM_F_WRITE, 4, &x);
}

static uint32_t
rd(struct fx *f, uint32_t off)
{
	uint64_t v = 0;

	emulate_mem(f->ctx, NULL, f->bar0 + off, MEM_F_READ, 4, &v);
	return (uint32_t)v;
}

static uint16_t
be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)be16(p) << 16 | be16(p + 2);
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t
sum16(uint32_t s, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i += 2)
		s += (uint32_t)p[i] << 8 | (i + 1 < len ? p[i + 1] : 0);
	return s;
}

static uint16_t
fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* ---- packets ---- */

#define ETH 14
#define IPH 20
#define TCPH 20
#define HDR (ETH + IPH + TCPH)

/* Ethernet, IPv4 (10.0.0.1 -> 10.0.0.2, ID 0x1234), TCP seq 1000. */
static size_t
make_tcp(uint8_t *p, size_t payload, uint8_t flags)
{
	size_t len = HDR + payload;

	memset(p, 0, HDR);
	memcpy(p, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	put16(p + 12, 0x0800);
	p[ETH] = 0x45;
	put16(p + ETH + 2, (uint16_t)(IPH + TCPH + payload));
	put16(p + ETH + 4, 0x1234);
	put16(p + ETH + 6, 0x4000);
	p[ETH + 8] = 64;
	p[ETH + 9] = 6;
	memcpy(p + ETH + 12, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
	put16(p + ETH + IPH, 1234);
	put16(p + ETH + IPH + 2, 80);
	put16(p + ETH + IPH + 4, 0);
	put16(p + ETH + IPH + 6, 1000);
	p[ETH + IPH + 12] = 0x50;
	p[ETH + IPH + 13] = flags;
	put16(p + ETH + IPH + 14, 0xffff);
	for (size_t i = 0; i < payload; i++)
		p[HDR + i] = (uint8_t)(i * 7 + 1);
	return len;
}

/* The TCP pseudo-header sum (RFC 793), with or without the length. */
static uint16_t
pseudo(const uint8_t *p, size_t l4len)
{
	uint32_t s = sum16(0, p + ETH + 12, 8) + 6 + (uint32_t)l4len;

	return fold(s);
}

static void
check_ip_tcp_csum(const uint8_t *p, size_t len)
{
	size_t l4 = len - ETH - IPH;

	assert_int_equal(fold(sum16(0, p + ETH, IPH)), 0xffff);
	assert_int_equal(fold(sum16(pseudo(p, l4), p + ETH + IPH, l4)), 0xffff);
}

/* ---- descriptors ---- */

static void
txd(struct fx *f, int i, uint64_t addr, uint32_t lower, uint32_t upper)
{
	uint8_t *d = f->mem + TXR_GPA + 16 * i;

	memcpy(d, &addr, 8);
	memcpy(d + 8, &lower, 4);
	memcpy(d + 12, &upper, 4);
}

static void
txd_legacy(struct fx *f, int i, uint64_t addr, uint16_t len, uint8_t cmd,
	   uint8_t cso, uint8_t css)
{
	txd(f, i, addr, len | (uint32_t)cso << 16 | (uint32_t)cmd << 24,
	    (uint32_t)css << 8);
}

static void
txd_ctx(struct fx *f, int i, const uint8_t ip[4], const uint8_t tu[4],
	uint32_t paylen, uint8_t tucmd, uint8_t hdrlen, uint16_t mss)
{
	uint64_t a =
	    ip[0] | ip[1] << 8 | (uint64_t)(ip[2] | ip[3] << 8) << 16 |
	    (uint64_t)(tu[0] | tu[1] << 8 | tu[2] << 16 | (uint32_t)tu[3] << 24)
		<< 32;

	txd(f, i, a, paylen | (uint32_t)(tucmd | CMD_DEXT | CMD_RS) << 24,
	    (uint32_t)hdrlen << 8 | (uint32_t)mss << 16);
}

static void
txd_data(struct fx *f, int i, uint64_t addr, uint32_t len, uint8_t cmd,
	 uint8_t popts)
{
	txd(f, i, addr, len | 1u << 20 | (uint32_t)(cmd | CMD_DEXT) << 24,
	    (uint32_t)popts << 8);
}

static uint8_t
txd_status(struct fx *f, int i)
{
	return f->mem[TXR_GPA + 16 * i + 12];
}

static void
tx_setup(struct fx *f)
{
	memset(f->mem + TXR_GPA, 0, 16 * NDESC);
	wr(f, R_TDBAL, (uint32_t)TXR_GPA);
	wr(f, R_TDBAH, 0);
	wr(f, R_TDLEN, 16 * NDESC);
	wr(f, R_TDH, 0);
	wr(f, R_TDT, 0);
	wr(f, R_TCTL, 0x2);
}

/* The checksum context for Ethernet/IPv4/TCP. */
static const uint8_t ctx_ip[4] = {ETH, ETH + 10, ETH + IPH - 1, 0};
static const uint8_t ctx_tcp[4] = {ETH + IPH, ETH + IPH + 16, 0, 0};

/* ---- tests ---- */

static void
test_ids_eeprom(void **state)
{
	struct fx *f = fx_new("fakee1k0,mac=02:11:22:33:44:55");
	uint16_t w[64], sum = 0;

	(void)state;
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0, 4), 0x100f8086);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x2c, 4), 0x10088086);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x0b, 1), 0x02);
	/* EERD: every word, the MAC first, summing to 0xbaba. */
	for (int i = 0; i < 64; i++) {
		wr(f, R_EERD, (uint32_t)i << 8 | 1);
		uint32_t v = rd(f, R_EERD);

		assert_true(v & 0x10);
		w[i] = (uint16_t)(v >> 16);
		sum += w[i];
	}
	assert_int_equal(w[0], 0x1102);
	assert_int_equal(w[1], 0x3322);
	assert_int_equal(w[2], 0x5544);
	assert_int_equal(sum, 0xbaba);
	/* RAL0/RAH0 hold it too, valid. */
	assert_int_equal(rd(f, R_RAL0), 0x33221102);
	assert_int_equal(rd(f, R_RAH0), 0x80005544);
	fx_free(f);
}

/* Linux's e1000_read_eeprom for the 82545: Microwire, bit by bit. */
static uint16_t
microwire_read(struct fx *f, int addr)
{
	uint32_t eecd = rd(f, R_EECD);
	uint32_t bits = 0x6u << 6 | (uint32_t)addr; /* READ, 6 address bits */
	uint16_t data = 0;

	wr(f, R_EECD, eecd | 0x40); /* request */
	assert_true(rd(f, R_EECD) & 0x80);
	eecd = (rd(f, R_EECD) & ~0x5u) | 0x2; /* CS, SK and DI low */
	wr(f, R_EECD, eecd);
	for (int i = 8; i >= 0; i--) {
		eecd = (eecd & ~0x4u) | ((bits >> i & 1) ? 0x4 : 0);
		wr(f, R_EECD, eecd);
		wr(f, R_EECD, eecd | 1);
		wr(f, R_EECD, eecd);
	}
	for (int i = 0; i < 16; i++) {
		wr(f, R_EECD, eecd | 1);
		data = (uint16_t)(data << 1 | ((rd(f, R_EECD) & 0x8) ? 1 : 0));
		wr(f, R_EECD, eecd);
	}
	wr(f, R_EECD, eecd & ~0x42u); /* deselect, release */
	return data;
}

static void
test_eeprom_microwire(void **state)
{
	struct fx *f = fx_new("fakee1k0,mac=02:11:22:33:44:55");
	uint16_t sum = 0;

	(void)state;
	assert_true(rd(f, R_EECD) & 0x100); /* present */
	assert_int_equal(microwire_read(f, 0), 0x1102);
	assert_int_equal(microwire_read(f, 2), 0x5544);
	for (int i = 0; i < 64; i++)
		sum += microwire_read(f, i);
	assert_int_equal(sum, 0xbaba);
	fx_free(f);
}

static uint16_t
mdic_read(struct fx *f, int phy, int regno)
{
	uint32_t v;

	wr(f, R_MDIC, 2u << 26 | (uint32_t)phy << 21 | (uint32_t)regno << 16);
	v = rd(f, R_MDIC);
	assert_true(v & (1u << 28)); /* ready */
	if (v & (1u << 30))
		return 0xffff;
	return (uint16_t)v;
}

static void
test_phy_link(void **state)
{
	struct fx *f = fx_new("fakee1k0");
	uint32_t st = rd(f, R_STATUS);

	(void)state;
	/* Full duplex, link up, 1000 Mb/s (SDM §13.4.2). */
	assert_int_equal(st & 0xc3, 0x83);
	assert_int_equal(mdic_read(f, 1, 2), 0x0141);
	assert_int_equal(mdic_read(f, 1, 3) & 0xfff0, 0x0c20);
	/* Link up, autonegotiation complete. */
	assert_int_equal(mdic_read(f, 1, 1) & 0x24, 0x24);
	assert_int_equal(mdic_read(f, 2, 1), 0xffff); /* no PHY 2 */
	/* Restart autonegotiation: still up; reset: back to defaults. */
	wr(f, R_MDIC, 1u << 26 | 1u << 21 | 0u << 16 | 0x1340);
	assert_int_equal(mdic_read(f, 1, 0) & 0x0200, 0);
	wr(f, R_MDIC, 1u << 26 | 1u << 21 | 4u << 16 | 0x01e1);
	assert_int_equal(mdic_read(f, 1, 4), 0x01e1);
	wr(f, R_MDIC, 1u << 26 | 1u << 21 | 0u << 16 | 0x8000);
	assert_int_equal(mdic_read(f, 1, 4), 0x0de1);
	assert_int_equal(mdic_read(f, 1, 1) & 0x24, 0x24);
	/* CTRL.PHY_RST, as Linux's e1000_phy_hw_reset: defaults again. */
	wr(f, R_MDIC, 1u << 26 | 1u << 21 | 4u << 16 | 0x01e1);
	wr(f, R_CTRL, rd(f, R_CTRL) | 1u << 31);
	wr(f, R_CTRL, rd(f, R_CTRL) & ~(1u << 31));
	assert_int_equal(mdic_read(f, 1, 4), 0x0de1);
	assert_int_equal(rd(f, R_STATUS) & 0x2, 0x2);
	fx_free(f);
}

static void
test_icr_intx(void **state)
{
	struct fx *f = fx_new("fakee1k0");

	(void)state;
	/* LSC waits from the start, masked: no interrupt yet. */
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	wr(f, R_IMS, ICR_LSC | ICR_RXT0 | ICR_TXDW);
	assert_int_equal(rd(f, R_IMS), ICR_LSC | ICR_RXT0 | ICR_TXDW);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 1);
	/* Reading ICR returns the causes, clears them and the line. */
	assert_int_equal(rd(f, R_ICR), ICR_LSC);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	assert_int_equal(rd(f, R_ICR), 0);
	/* ICS sets causes; a masked one stays pending without a line. */
	wr(f, R_ICS, ICR_RXO);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	wr(f, R_ICS, ICR_RXT0);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 1);
	/* Writing ICR clears the bits written. */
	wr(f, R_ICR, ICR_RXT0);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	assert_int_equal(rd(f, R_ICR), ICR_RXO);
	/* IMC masks: a cause then raises nothing. */
	wr(f, R_IMC, ICR_RXT0);
	wr(f, R_ICS, ICR_RXT0);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	wr(f, R_IMS, ICR_RXT0); /* unmasking a pending cause raises it */
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 1);
	/* A device reset drops everything but LSC, and the line. */
	wr(f, R_CTRL, 1u << 26);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	assert_int_equal(rd(f, R_IMS), 0);
	assert_int_equal(rd(f, R_ICR), ICR_LSC);
	fx_free(f);
}

static int
msi_setup(struct fx *f)
{
	int cap = pci_cfg_read(f->ctx, 0, SLOT, 0, 0x34, 1);

	while (cap && pci_cfg_read(f->ctx, 0, SLOT, 0, cap, 1) != 0x05)
		cap = pci_cfg_read(f->ctx, 0, SLOT, 0, cap + 1, 1);
	assert_true(cap != 0);
	pci_cfg_write(f->ctx, 0, SLOT, 0, cap + 4, 4, 0xfee00000);
	pci_cfg_write(f->ctx, 0, SLOT, 0, cap + 8, 4, 0);
	pci_cfg_write(f->ctx, 0, SLOT, 0, cap + 12, 2, 0x41);
	pci_cfg_write(f->ctx, 0, SLOT, 0, cap + 2, 2, 1);
	return cap;
}

static void
test_msi(void **state)
{
	struct fx *f = fx_new("fakee1k0");
	uint64_t addr, msg;

	(void)state;
	msi_setup(f);
	assert_int_equal(vm_mock_msi_count(f->ctx, &addr, &msg), 0);
	wr(f, R_IMS, ICR_RXT0 | ICR_LSC);
	assert_int_equal(vm_mock_msi_count(f->ctx, &addr, &msg), 1);
	assert_int_equal(addr, 0xfee00000);
	assert_int_equal(msg & 0xffff, 0x41);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	/* No second message until the guest has read ICR. */
	wr(f, R_ICS, ICR_RXT0);
	assert_int_equal(vm_mock_msi_count(f->ctx, &addr, &msg), 1);
	assert_int_equal(rd(f, R_ICR), ICR_LSC | ICR_RXT0);
	wr(f, R_ICS, ICR_RXT0);
	assert_int_equal(vm_mock_msi_count(f->ctx, &addr, &msg), 2);
	fx_free(f);
}

static void *
loop_thread(void *arg)
{
	mevent_dispatch(arg);
	return NULL;
}

static void
test_itr(void **state)
{
	struct fx *f = fx_new("fakee1k0");
	struct timespec t = {0, 60 * 1000 * 1000};
	pthread_t th;

	(void)state;
	f->m->mev = mevent_create(); /* bhyverun makes it; the machine frees */
	/* 65535 * 256 ns: about 16.8 ms between interrupts. */
	wr(f, R_ITR, 65535);
	assert_int_equal(rd(f, R_ITR), 65535);
	wr(f, R_IMS, ICR_RXT0);
	wr(f, R_ICS, ICR_RXT0);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 1);
	assert_int_equal(rd(f, R_ICR), ICR_LSC | ICR_RXT0);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	/* Too soon: the cause waits for the interval. */
	wr(f, R_ICS, ICR_RXT0);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	assert_int_equal(pthread_create(&th, NULL, loop_thread, f->m->mev), 0);
	nanosleep(&t, NULL);
	mevent_stop(f->m->mev);
	pthread_join(th, NULL);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 1);
	/* ITR 0: no throttling. */
	wr(f, R_ITR, 0);
	assert_int_equal(rd(f, R_ICR), ICR_RXT0);
	wr(f, R_ICS, ICR_RXT0);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 1);
	fx_free(f);
}

static void
test_io_window(void **state)
{
	struct fx *f = fx_new("fakee1k0");
	uint32_t v = R_STATUS;

	(void)state;
	assert_int_equal(inout_dispatch(f->ctx, 0, f->iobase, 4, &v), 0);
	v = 0;
	assert_int_equal(inout_dispatch(f->ctx, 1, f->iobase + 4, 4, &v), 0);
	assert_int_equal(v & 0xc3, 0x83);
	v = R_IMS;
	inout_dispatch(f->ctx, 0, f->iobase, 4, &v);
	v = ICR_TXDW;
	inout_dispatch(f->ctx, 0, f->iobase + 4, 4, &v);
	assert_int_equal(rd(f, R_IMS), ICR_TXDW);
	/* Past the registers: nothing. */
	v = 0x80000;
	inout_dispatch(f->ctx, 0, f->iobase, 4, &v);
	v = 0;
	inout_dispatch(f->ctx, 1, f->iobase + 4, 4, &v);
	assert_int_equal(v, 0);
	fx_free(f);
}

static void
test_tx_legacy(void **state)
{
	struct fx *f = fx_new("fakee1k0");
	uint8_t *p = f->mem + PKT_GPA;

	(void)state;
	tx_setup(f);
	for (int i = 0; i < 100; i++)
		p[i] = (uint8_t)i;
	/* One packet in two descriptors, then one in one. */
	txd_legacy(f, 0, PKT_GPA, 40, CMD_RS, 0, 0);
	txd_legacy(f, 1, PKT_GPA + 40, 60, CMD_EOP | CMD_RS, 0, 0);
	txd_legacy(f, 2, PKT_GPA, 64, CMD_EOP, 0, 0);
	wr(f, R_IMS, ICR_TXDW);
	rd(f, R_ICR);
	wr(f, R_TDT, 3);
	assert_int_equal(fk.nsent, 2);
	assert_int_equal(fk.sent_len[0], 100);
	assert_memory_equal(fk.sent[0], p, 100);
	assert_int_equal(fk.sent_len[1], 64);
	assert_int_equal(rd(f, R_TDH), 3);
	assert_int_equal(txd_status(f, 0) & 1, 1);
	assert_int_equal(txd_status(f, 1) & 1, 1);
	assert_int_equal(txd_status(f, 2) & 1, 0); /* no RS: no write-back */
	assert_int_equal(rd(f, R_ICR), ICR_TXDW | ICR_TXQE);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 0);
	assert_int_equal(rd(f, R_GPTC), 2);
	assert_int_equal(rd(f, R_GPTC), 0); /* statistics clear on read */
	/* Legacy checksum insertion: CSS to the end, at CSO. */
	make_tcp(p, 10, 0x18);
	put16(p + ETH + IPH + 16, pseudo(p, TCPH + 10));
	txd_legacy(f, 3, PKT_GPA, HDR + 10, CMD_EOP | CMD_IC, ETH + IPH + 16,
		   ETH + IPH);
	/* Transmit is off: nothing goes until TCTL.EN. */
	wr(f, R_TCTL, 0);
	wr(f, R_TDT, 4);
	assert_int_equal(fk.nsent, 2);
	wr(f, R_TCTL, 2);
	assert_int_equal(fk.nsent, 3);
	assert_int_equal(fold(sum16(pseudo(fk.sent[2], TCPH + 10),
				    fk.sent[2] + ETH + IPH, TCPH + 10)),
			 0xffff);
	fx_free(f);
}

static void
test_tx_csum_context(void **state)
{
	struct fx *f = fx_new("fakee1k0");
	uint8_t *p = f->mem + PKT_GPA;
	size_t len = make_tcp(p, 301, 0x18);

	(void)state;
	tx_setup(f);
	/* As Linux: the pseudo-header sum in the TCP checksum, IP's zero. */
	put16(p + ETH + IPH + 16, pseudo(p, TCPH + 301));
	txd_ctx(f, 0, ctx_ip, ctx_tcp, 0, TUCMD_IP | TUCMD_TCP, 0, 0);
	txd_data(f, 1, PKT_GPA, 30, 0, POPTS_IXSM | POPTS_TXSM);
	txd_data(f, 2, PKT_GPA + 30, (uint32_t)len - 30, CMD_EOP | CMD_RS,
		 POPTS_IXSM | POPTS_TXSM);
	wr(f, R_TDT, 3);
	assert_int_equal(fk.nsent, 1);
	assert_int_equal(fk.sent_len[0], len);
	check_ip_tcp_csum(fk.sent[0], len);
	assert_int_not_equal(be16(fk.sent[0] + ETH + 10), 0);
	/* The context holds for the next packet; TXSM alone leaves IP. */
	put16(p + ETH + 10, 0xbeef);
	txd_data(f, 3, PKT_GPA, (uint32_t)len, CMD_EOP, POPTS_TXSM);
	wr(f, R_TDT, 4);
	assert_int_equal(fk.nsent, 2);
	assert_int_equal(be16(fk.sent[1] + ETH + 10), 0xbeef);
	assert_int_equal(fold(sum16(pseudo(p, TCPH + 301),
				    fk.sent[1] + ETH + IPH, TCPH + 301)),
			 0xffff);
	fx_free(f);
}

/* A TSO packet: context, then the header and payload in two buffers. */
static size_t
tso_packet(struct fx *f, int i, size_t payload, uint16_t mss, uint8_t hdrlen,
	   uint32_t paylen)
{
	uint8_t *p = f->mem + PKT_GPA;
	size_t len = make_tcp(p, payload, 0x19); /* FIN, PSH, ACK */

	/* Linux primes the TCP checksum without the length; IP's is 0. */
	put16(p + ETH + IPH + 16, pseudo(p, 0));
	put16(p + ETH + 2, 0);
	txd_ctx(f, i, ctx_ip, ctx_tcp, paylen, TUCMD_IP | TUCMD_TCP | TUCMD_TSE,
		hdrlen, mss);
	txd_data(f, i + 1, PKT_GPA, HDR, CMD_TSE, POPTS_IXSM | POPTS_TXSM);
	txd_data(f, i + 2, PKT_GPA + HDR, (uint32_t)payload,
		 CMD_TSE | CMD_EOP | CMD_RS, POPTS_IXSM | POPTS_TXSM);
	return len;
}

static void
test_tso(void **state)
{
	struct fx *f = fx_new("fakee1k0");
	size_t sizes[3] = {1460, 1460, 1080};
	uint32_t seq = 1000;

	(void)state;
	tx_setup(f);
	tso_packet(f, 0, 4000, 1460, HDR, 4000);
	wr(f, R_TDT, 3);
	assert_int_equal(fk.nsent, 3);
	for (int i = 0; i < 3; i++) {
		const uint8_t *s = fk.sent[i];
		uint8_t flags = s[ETH + IPH + 13];

		assert_int_equal(fk.sent_len[i], HDR + sizes[i]);
		assert_int_equal(be16(s + ETH + 2), IPH + TCPH + sizes[i]);
		assert_int_equal(be16(s + ETH + 4), 0x1234 + i);
		assert_int_equal(be32(s + ETH + IPH + 4), seq);
		/* FIN and PSH only on the last segment. */
		assert_int_equal(flags & 0x09, i == 2 ? 0x09 : 0);
		assert_int_equal(flags & 0x10, 0x10);
		check_ip_tcp_csum(s, fk.sent_len[i]);
		assert_memory_equal(
		    s + HDR, f->mem + PKT_GPA + HDR + (seq - 1000), sizes[i]);
		seq += (uint32_t)sizes[i];
	}
	assert_int_equal(txd_status(f, 2) & 1, 1);
	assert_int_equal(rd(f, R_TDH), 3);
	/* One segment when it all fits in the MSS. */
	tso_packet(f, 3, 100, 1460, HDR, 100);
	wr(f, R_TDT, 6);
	assert_int_equal(fk.nsent, 4);
	assert_int_equal(fk.sent_len[3], HDR + 100);
	check_ip_tcp_csum(fk.sent[3], HDR + 100);
	fx_free(f);
}

/*
 * SA-19:21 and SA-22:05: TSO header lengths and checksum offsets the
 * packet or the header buffer cannot hold. Each is dropped: nothing sent,
 * the descriptors completed, the ring moves on.
 */
static void
test_tso_malformed(void **state)
{
	struct fx *f = fx_new("fakee1k0");
	struct {
		const char *what;
		size_t payload;
		uint8_t hdrlen;
		uint16_t mss;
		uint32_t paylen;
		uint8_t ip[4], tcp[4];
	} bad[] = {
	    {"hdrlen past the header cap", 400, 250, 1460, 100, {0}, {0}},
	    {"hdrlen past the packet", 10, 200, 1460, 10, {0}, {0}},
	    {"mss 0", 400, HDR, 0, 400, {0}, {0}},
	    {"hdrlen 0", 400, 0, 1460, 400, {0}, {0}},
	    {"paylen past the data", 400, HDR, 1460, 5000, {0}, {0}},
	    {"paylen 0", 400, HDR, 1460, 0, {0}, {0}},
	    {"IP checksum offset past hdrlen",
	     400,
	     HDR,
	     1460,
	     400,
	     {ETH, 250, ETH + IPH - 1, 0},
	     {0}},
	    {"IP header past hdrlen",
	     400,
	     HDR,
	     1460,
	     400,
	     {50, ETH + 10, 0, 0},
	     {0}},
	    {"TCP checksum offset past hdrlen",
	     400,
	     HDR,
	     1460,
	     400,
	     {0},
	     {ETH + IPH, 200, 0, 0}},
	    {"TCP header past hdrlen",
	     400,
	     HDR,
	     1460,
	     400,
	     {0},
	     {ETH + IPH + 10, ETH + IPH + 16, 0, 0}},
	    {"TCP checksum offset at hdrlen-1",
	     400,
	     HDR,
	     1460,
	     400,
	     {0},
	     {ETH + IPH, HDR - 1, 0, 0}},
	};

	(void)state;
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		const uint8_t *ip = bad[k].ip[0] ? bad[k].ip : ctx_ip;
		const uint8_t *tcp = bad[k].tcp[0] ? bad[k].tcp : ctx_tcp;

		tx_setup(f);
		tso_packet(f, 0, bad[k].payload, bad[k].mss, bad[k].hdrlen,
			   bad[k].paylen);
		txd_ctx(f, 0, ip, tcp, bad[k].paylen,
			TUCMD_IP | TUCMD_TCP | TUCMD_TSE, bad[k].hdrlen,
			bad[k].mss);
		wr(f, R_TDT, 3);
		if (fk.nsent)
			fail_msg("%s: sent a frame", bad[k].what);
		assert_int_equal(rd(f, R_TDH), 3);
		assert_int_equal(txd_status(f, 2) & 1, 1);
	}
	/* The device still works. */
	tx_setup(f);
	tso_packet(f, 0, 100, 1460, HDR, 100);
	wr(f, R_TDT, 3);
	assert_int_equal(fk.nsent, 1);
	fx_free(f);
}

/* Checksum offsets past the packet without TSO (SA-22:05's class). */
static void
test_csum_malformed(void **state)
{
	struct fx *f = fx_new("fakee1k0");
	uint8_t *p = f->mem + PKT_GPA;
	size_t len = make_tcp(p, 10, 0x18);
	const uint8_t tu_far[4] = {ETH + IPH, 255, 0, 0};
	const uint8_t tu_start[4] = {200, ETH + IPH + 16, 0, 0};
	const uint8_t ip_back[4] = {ETH + 10, ETH + 10, ETH, 0};

	(void)state;
	tx_setup(f);
	/* Legacy: CSO past the packet; CSS past the packet. */
	txd_legacy(f, 0, PKT_GPA, (uint16_t)len, CMD_EOP | CMD_IC, 255, 0);
	txd_legacy(f, 1, PKT_GPA, (uint16_t)len, CMD_EOP | CMD_IC, 10, 200);
	txd_legacy(f, 2, PKT_GPA, 20, CMD_EOP | CMD_IC, 19, 0);
	/* Context: TUCSO past the packet, TUCSS past it, IPCSE < IPCSS. */
	txd_ctx(f, 3, ctx_ip, tu_far, 0, TUCMD_IP | TUCMD_TCP, 0, 0);
	txd_data(f, 4, PKT_GPA, (uint32_t)len, CMD_EOP, POPTS_TXSM);
	txd_ctx(f, 5, ctx_ip, tu_start, 0, TUCMD_IP | TUCMD_TCP, 0, 0);
	txd_data(f, 6, PKT_GPA, (uint32_t)len, CMD_EOP, POPTS_TXSM);
	txd_ctx(f, 7, ip_back, ctx_tcp, 0, TUCMD_IP | TUCMD_TCP, 0, 0);
	txd_data(f, 8, PKT_GPA, (uint32_t)len, CMD_EOP, POPTS_IXSM);
	wr(f, R_TDT, 9);
	assert_int_equal(fk.nsent, 0);
	assert_int_equal(rd(f, R_TDH), 9);
	/* A checksum ending past the packet ends at its end: sent. */
	const uint8_t tu_end[4] = {ETH + IPH, ETH + IPH + 16, 0xff, 0x0f};
	put16(p + ETH + IPH + 16, pseudo(p, TCPH + 10));
	txd_ctx(f, 9, ctx_ip, tu_end, 0, TUCMD_IP | TUCMD_TCP, 0, 0);
	txd_data(f, 10, PKT_GPA, (uint32_t)len, CMD_EOP, POPTS_TXSM);
	wr(f, R_TDT, 11);
	assert_int_equal(fk.nsent, 1);
	assert_int_equal(fold(sum16(pseudo(p, TCPH + 10),
				    fk.sent[0] + ETH + IPH, TCPH + 10)),
			 0xffff);
	fx_free(f);
}

/* Rings and descriptors the device cannot use: never a stray access. */
static void
test_tx_ring_bounds(void **state)
{
	struct fx *f = fx_new("fakee1k0");

	(void)state;
	tx_setup(f);
	txd_legacy(f, 0, PKT_GPA, 60, CMD_EOP | CMD_RS, 0, 0);
	/* TDT past the ring: nothing happens. */
	wr(f, R_TDT, NDESC + 5);
	assert_int_equal(fk.nsent, 0);
	assert_int_equal(rd(f, R_TDH), 0);
	/* TDH past the ring. */
	wr(f, R_TDH, 300);
	wr(f, R_TDT, 1);
	assert_int_equal(fk.nsent, 0);
	assert_int_equal(rd(f, R_TDH), 300);
	/* An empty ring. */
	wr(f, R_TDH, 0);
	wr(f, R_TDLEN, 0);
	wr(f, R_TDT, 1);
	assert_int_equal(fk.nsent, 0);
	/* TDLEN keeps multiples of 128 bytes only. */
	wr(f, R_TDLEN, 16 * NDESC + 5);
	assert_int_equal(rd(f, 0x3808), 16 * NDESC);
	/* The ring outside guest RAM: each descriptor dropped. */
	wr(f, R_TDT, 0);
	wr(f, R_TDBAL, 0xfffff000);
	wr(f, R_TDBAH, 0x7);
	wr(f, R_TDT, 4);
	assert_int_equal(fk.nsent, 0);
	assert_int_equal(rd(f, R_TDH), 4);
	tx_setup(f);
	/* A buffer outside guest RAM, one straddling its end. */
	txd_legacy(f, 0, 0x7fff00000000ULL, 60, CMD_EOP | CMD_RS, 0, 0);
	txd_legacy(f, 1, MEMSIZE - 10, 60, CMD_EOP | CMD_RS, 0, 0);
	txd_legacy(f, 2, PKT_GPA, 60, CMD_EOP | CMD_RS, 0, 0);
	wr(f, R_TDT, 3);
	assert_int_equal(fk.nsent, 1);
	assert_int_equal(txd_status(f, 0) & 1, 1);
	assert_int_equal(txd_status(f, 1) & 1, 1);
	/* A packet with no EOP before TDT waits for the rest. */
	txd_legacy(f, 3, PKT_GPA, 60, 0, 0, 0);
	wr(f, R_TDT, 4);
	assert_int_equal(rd(f, R_TDH), 3);
	txd_legacy(f, 4, PKT_GPA, 60, CMD_EOP, 0, 0);
	wr(f, R_TDT, 5);
	assert_int_equal(fk.nsent, 2);
	assert_int_equal(fk.sent_len[1], 120);
	/* A reserved descriptor type, legacy and extended mixed. */
	txd(f, 5, PKT_GPA, 60 | 7u << 20 | (CMD_DEXT | CMD_EOP) << 24, 0);
	txd_legacy(f, 6, PKT_GPA, 60, 0, 0, 0);
	txd_data(f, 7, PKT_GPA, 60, CMD_EOP, 0);
	/* VLAN insertion with CTRL.VME: the tag after the addresses. */
	wr(f, R_CTRL, rd(f, R_CTRL) | 1u << 30);
	txd(f, 11, PKT_GPA, 60 | (uint32_t)(CMD_EOP | 0x40) << 24,
	    0x0123u << 16);
	/* Empty and shorter than an Ethernet header. */
	txd_legacy(f, 9, PKT_GPA, 0, CMD_EOP, 0, 0);
	txd_legacy(f, 10, PKT_GPA, 13, CMD_EOP, 0, 0);
	/* A 1 MiB data descriptor: more than any packet. */
	txd_data(f, 8, PKT_GPA, 0xfffff, CMD_EOP, 0);
	wr(f, R_TDT, 12);
	assert_int_equal(fk.nsent, 3);
	assert_int_equal(rd(f, R_TDH), 12);
	assert_int_equal(fk.sent_len[2], 64);
	assert_memory_equal(fk.sent[2], f->mem + PKT_GPA, 12);
	assert_memory_equal(fk.sent[2] + 12, "\x81\x00\x01\x23", 4);
	assert_memory_equal(fk.sent[2] + 16, f->mem + PKT_GPA + 12, 48);
	fx_free(f);
}

/* More descriptors in a packet than the bound: dropped, in bounded work. */
static void
test_tx_too_many_descriptors(void **state)
{
	struct fx *f = fx_new("fakee1k0");
	int n = 256;

	(void)state;
	memset(f->mem + TXR_GPA, 0, 16 * n);
	wr(f, R_TDBAL, (uint32_t)TXR_GPA);
	wr(f, R_TDLEN, 16 * n);
	wr(f, R_TCTL, 2);
	for (int i = 0; i < 100; i++)
		txd_legacy(f, i, PKT_GPA, 10, i == 99 ? CMD_EOP : 0, 0, 0);
	txd_legacy(f, 100, PKT_GPA, 60, CMD_EOP, 0, 0);
	wr(f, R_TDT, 101);
	/* The first 64 dropped, the rest up to its EOP with them. */
	assert_int_equal(rd(f, R_TDH), 101);
	assert_int_equal(fk.nsent, 1);
	assert_int_equal(fk.sent_len[0], 60);
	/* A ring of descriptors all without EOP: dropped up to TDT. */
	for (int i = 0; i < n; i++)
		txd_legacy(f, i, PKT_GPA, 10, 0, 0, 0);
	fk_clear_sent();
	wr(f, R_TDH, 0);
	wr(f, R_TDT, (uint32_t)n - 1);
	assert_int_equal(fk.nsent, 0);
	assert_int_equal(rd(f, R_TDH), n - 1);
	/* ...and what follows, up to an EOP, belongs to the dropped one. */
	txd_legacy(f, n - 1, PKT_GPA, 10, CMD_EOP, 0, 0);
	txd_legacy(f, 0, PKT_GPA, 60, CMD_EOP, 0, 0);
	wr(f, R_TDT, 1);
	assert_int_equal(fk.nsent, 1);
	assert_int_equal(fk.sent_len[0], 60);
	fx_free(f);
}

/* A hostile guest's errors come to stderr at most once a second. */
static void
test_messages_rate_limited(void **state)
{
	struct fx *f = fx_new("fakee1k0");
	char path[] = "/tmp/test_e1000_log.XXXXXX", line[512];
	int fd = mkstemp(path), saved = dup(2), lines = 0;
	FILE *fp;

	(void)state;
	assert_true(fd >= 0 && saved >= 0);
	tx_setup(f);
	fflush(stderr);
	dup2(fd, 2);
	for (int i = 0; i < 100; i++) {
		/* CSO past the packet, again and again. */
		txd_legacy(f, i % NDESC, PKT_GPA, 60, CMD_EOP | CMD_IC, 200, 0);
		wr(f, R_TDT, (uint32_t)(i + 1) % NDESC);
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	fp = fopen(path, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp))
		lines++;
	fclose(fp);
	unlink(path);
	assert_int_equal(fk.nsent, 0);
	assert_int_equal(lines, 1); /* the first, then quiet */
	fx_free(f);
}

static void
rxd_init(struct fx *f, int n, uint32_t bufsz)
{
	uint8_t *r = f->mem + RXR_GPA;

	memset(r, 0, 16 * n);
	for (int i = 0; i < n; i++) {
		uint64_t a = RXBUF_GPA + (uint64_t)i * bufsz;

		memcpy(r + 16 * i, &a, 8);
	}
}

static uint16_t
rxd_len(struct fx *f, int i)
{
	uint16_t l;

	memcpy(&l, f->mem + RXR_GPA + 16 * i + 8, 2);
	return l;
}

static uint8_t
rxd_status(struct fx *f, int i)
{
	return f->mem[RXR_GPA + 16 * i + 12];
}

static void
rx_setup(struct fx *f, uint32_t rctl, uint32_t bufsz, uint32_t tail)
{
	rxd_init(f, NDESC, bufsz);
	wr(f, R_RDBAL, (uint32_t)RXR_GPA);
	wr(f, R_RDBAH, 0);
	wr(f, R_RDLEN, 16 * NDESC);
	wr(f, R_RDH, 0);
	wr(f, R_RDT, tail);
	wr(f, R_RCTL, rctl);
}

static void
test_rx(void **state)
{
	struct fx *f = fx_new("fakee1k0");
	uint8_t frame[1514];

	(void)state;
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 3);
	assert_true(fk.rx_on);
	/* 2048-byte buffers, the CRC stripped (SECRC). */
	rx_setup(f, 0x2 | 1u << 26, 2048, NDESC - 1);
	wr(f, R_IMS, ICR_RXT0);
	rd(f, R_ICR);
	fk_queue(frame, 100);
	fk_queue(frame, 1514);
	fk_rx_event();
	assert_int_equal(rd(f, R_RDH), 2);
	assert_int_equal(rxd_len(f, 0), 100);
	assert_int_equal(rxd_status(f, 0) & 3, 3); /* DD, EOP */
	assert_memory_equal(f->mem + RXBUF_GPA, frame, 100);
	assert_int_equal(rxd_len(f, 1), 1514);
	assert_memory_equal(f->mem + RXBUF_GPA + 2048, frame, 1514);
	assert_int_equal(vm_mock_irq_level(f->ctx, f->irq), 1);
	assert_int_equal(rd(f, R_ICR) & ICR_RXT0, ICR_RXT0);
	assert_int_equal(rd(f, R_GPRC), 2);
	/* A short frame is padded to 60 bytes; without SECRC, the FCS. */
	rx_setup(f, 0x2, 2048, NDESC - 1);
	fk_queue(frame, 20);
	fk_rx_event();
	assert_int_equal(rxd_len(f, 0), 64);
	assert_memory_equal(f->mem + RXBUF_GPA, frame, 20);
	assert_int_equal(f->mem[RXBUF_GPA + 59], 0);
	fx_free(f);
}

static void
test_rx_multi_descriptor(void **state)
{
	struct fx *f = fx_new("fakee1k0");
	uint8_t frame[600];

	(void)state;
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i ^ 0x5a);
	/* 256-byte buffers (BSIZE 11, no BSEX), SECRC. */
	rx_setup(f, 0x2 | 3u << 16 | 1u << 26, 256, NDESC - 1);
	fk_queue(frame, sizeof(frame));
	fk_rx_event();
	assert_int_equal(rd(f, R_RDH), 3);
	assert_int_equal(rxd_len(f, 0), 256);
	assert_int_equal(rxd_status(f, 0) & 3, 1); /* DD, no EOP */
	assert_int_equal(rxd_len(f, 1), 256);
	assert_int_equal(rxd_len(f, 2), 88);
	assert_int_equal(rxd_status(f, 2) & 3, 3);
	assert_memory_equal(f->mem + RXBUF_GPA, frame, 256);
	assert_memory_equal(f->mem + RXBUF_GPA + 512, frame + 512, 88);
	/* A frame over 1522 bytes without LPE: dropped as oversize. */
	uint8_t big[4000] = {0};
	fk_queue(big, sizeof(big));
	fk_rx_event();
	assert_int_equal(fk.discarded, 1);
	assert_int_equal(rd(f, R_ROC), 1);
	/* With LPE it spans 16 buffers, more than the ring has free. */
	wr(f, R_RCTL, 0x2 | 3u << 16 | 1u << 26 | 1u << 5);
	fk_queue(big, sizeof(big));
	fk_rx_event();
	assert_int_equal(fk.discarded, 2);
	assert_int_equal(rd(f, R_MPC), 1);
	/* 4096-byte buffers (BSEX): one descriptor. */
	rx_setup(f, 0x2 | 3u << 16 | 1u << 25 | 1u << 26 | 1u << 5, 4096,
		 NDESC - 1);
	fk_queue(big, sizeof(big));
	fk_rx_event();
	assert_int_equal(rd(f, R_RDH), 1);
	assert_int_equal(rxd_len(f, 0), 4000);
	fx_free(f);
}

static void
test_rx_no_descriptor(void **state)
{
	struct fx *f = fx_new("fakee1k0");
	uint8_t frame[100] = {1, 2, 3};

	(void)state;
	/* Receive off: dropped and counted. */
	fk_queue(frame, sizeof(frame));
	fk_rx_event();
	assert_int_equal(fk.discarded, 1);
	assert_int_equal(rd(f, R_MPC), 1);
	/* RDH == RDT: the guest gave no buffers. */
	rx_setup(f, 0x2 | 1u << 26, 2048, 0);
	wr(f, R_IMS, ICR_RXO);
	rd(f, R_ICR);
	fk_queue(frame, sizeof(frame));
	fk_queue(frame, sizeof(frame));
	fk_rx_event();
	assert_int_equal(fk.discarded, 3);
	assert_int_equal(rd(f, R_MPC), 2);
	assert_int_equal(rd(f, R_ICR) & ICR_RXO, ICR_RXO);
	assert_int_equal(rd(f, R_RDH), 0);
	/* Two buffers: two frames fit, the third is dropped; RXDMT0. */
	wr(f, R_RDT, 2);
	wr(f, R_IMS, ICR_RXT0 | ICR_RXDMT0);
	fk_queue(frame, sizeof(frame));
	fk_queue(frame, sizeof(frame));
	fk_queue(frame, sizeof(frame));
	fk_rx_event();
	assert_int_equal(rd(f, R_RDH), 2);
	assert_int_equal(fk.discarded, 4);
	assert_int_equal(rd(f, R_ICR) & (ICR_RXT0 | ICR_RXDMT0),
			 ICR_RXT0 | ICR_RXDMT0);
	/* Indexes past the ring; a buffer outside guest RAM. */
	wr(f, R_RDT, 100);
	fk_queue(frame, sizeof(frame));
	fk_rx_event();
	assert_int_equal(fk.discarded, 5);
	rx_setup(f, 0x2 | 1u << 26, 2048, 4);
	uint64_t far = 0x7fff00000000ULL;
	memcpy(f->mem + RXR_GPA, &far, 8);
	fk_queue(frame, sizeof(frame));
	fk_rx_event();
	assert_int_equal(rd(f, R_RDH), 0);
	assert_int_equal(rxd_status(f, 0), 0);
	fx_free(f);
}

static void
test_options(void **state)
{
	struct config *cfg = config_create();
	char line[512];
	struct fx *f;
	uint8_t mac[6];

	(void)state;
	/* bhyve(8)'s -s syntax into bhyve_config(5) keys. */
	assert_int_equal(pci_parse_slot(cfg,
					"3,e1000,tap0,mac=02:00:00:00:00:09",
					err, sizeof(err)),
			 0);
	assert_string_equal(config_get(cfg, "pci.0.3.0.backend"), "tap0");
	assert_string_equal(config_get(cfg, "pci.0.3.0.mac"),
			    "02:00:00:00:00:09");
	assert_int_equal(
	    pci_parse_slot(cfg, "4,e1000,backend=slirp", err, sizeof(err)), 0);
	assert_string_equal(config_get(cfg, "pci.0.4.0.backend"), "slirp");
	config_free(cfg);

	/* The MAC without mac=: bhyve's, from the VM name and the slot. */
	f = fx_new("fakee1k0");
	assert_int_equal(net_nic_mac(config_node(f->cfg, "pci.0.3.0"), "vm1",
				     SLOT, 0, mac, err, sizeof(err)),
			 0);
	assert_int_equal(rd(f, R_RAL0), mac[0] | mac[1] << 8 | mac[2] << 16 |
					    (uint32_t)mac[3] << 24);
	assert_int_equal(mac[1], 0xa0);
	fx_free(f);
	/* A key the backend reads is its business, not an unknown one. */
	f = fx_new("fakee1k0,fakeopt=1");
	fx_free(f);

	assert_int_equal(
	    init_capture("fakee1k0,mac=01:00:00:00:00:01", line, sizeof(line)),
	    -1);
	assert_non_null(strstr(line, "e1000 at 0:3:0"));
	assert_non_null(strstr(line, "bad mac"));
	assert_int_equal(init_capture("fakee1k0,bogus=1", line, sizeof(line)),
			 -1);
	assert_non_null(strstr(line, "e1000 at 0:3:0: unknown option 'bogus'"));
	/* No backend: a NIC connected to nothing, as bhyve(8) allows. */
	assert_int_equal(
	    init_capture("mac=02:00:00:00:00:01", line, sizeof(line)), 0);
	assert_int_equal(init_capture("", line, sizeof(line)), 0);
	assert_int_equal(init_capture("nosuchnet0", line, sizeof(line)), -1);
	assert_non_null(strstr(line, "unknown network backend"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ids_eeprom),
	    cmocka_unit_test(test_eeprom_microwire),
	    cmocka_unit_test(test_phy_link),
	    cmocka_unit_test(test_icr_intx),
	    cmocka_unit_test(test_msi),
	    cmocka_unit_test(test_itr),
	    cmocka_unit_test(test_io_window),
	    cmocka_unit_test(test_tx_legacy),
	    cmocka_unit_test(test_tx_csum_context),
	    cmocka_unit_test(test_tso),
	    cmocka_unit_test(test_tso_malformed),
	    cmocka_unit_test(test_csum_malformed),
	    cmocka_unit_test(test_tx_ring_bounds),
	    cmocka_unit_test(test_tx_too_many_descriptors),
	    cmocka_unit_test(test_messages_rate_limited),
	    cmocka_unit_test(test_rx),
	    cmocka_unit_test(test_rx_multi_descriptor),
	    cmocka_unit_test(test_rx_no_descriptor),
	    cmocka_unit_test(test_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
