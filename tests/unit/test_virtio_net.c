/*
 * virtio-net against the mock backend and a fake network backend defined
 * here ("fakenet": it records what the device sends and serves frames the
 * test queues), so no tap is needed: a legacy driver built here sets up
 * the receive, transmit and control queues in mock guest memory and checks
 * what the device writes back and hands the backend. Also net_parsemac and
 * the tap backend's error lines (and, as root, a real tap).
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/capability.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <md5.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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
#include "pci_virtio_net.h"
#include "virtio.h"

#define MEMSIZE (16 << 20)
#define SLOT 4
#define NQ 3
#define RXQ 0
#define TXQ 1
#define CTLQ 2
#define BUF_GPA 0x100000ULL
#define BUF2_GPA 0x200000ULL
#define TABLE_GPA 0x300000ULL

/* Feature bits (virtio 1.2 §5.1.3). */
#define F_CSUM (1u << 0)
#define F_GUEST_CSUM (1u << 1)
#define F_MTU (1u << 3)
#define F_MAC (1u << 5)
#define F_GUEST_TSO4 (1u << 7)
#define F_GUEST_TSO6 (1u << 8)
#define F_HOST_TSO4 (1u << 11)
#define F_HOST_TSO6 (1u << 12)
#define F_MRG (1u << 15)
#define F_STATUS (1u << 16)
#define F_CTRL_VQ (1u << 17)
#define F_CTRL_RX (1u << 18)
#define F_CTRL_MAC_ADDR (1u << 23)
#define F_ANY_LAYOUT (1u << 27)
#define F_INDIRECT (1u << 28)
#define F_EVENT_IDX (1u << 29)
#define F_BASE                                                                 \
	(F_MAC | F_STATUS | F_MRG | F_CTRL_VQ | F_CTRL_RX | F_CTRL_MAC_ADDR |  \
	 F_ANY_LAYOUT | F_INDIRECT | F_EVENT_IDX)
#define F_OFFLOADS                                                             \
	(F_CSUM | F_GUEST_CSUM | F_GUEST_TSO4 | F_GUEST_TSO6 | F_HOST_TSO4 |   \
	 F_HOST_TSO6)

#define CFG 20 /* device config after the registers, MSI-X off */

static char err[512];

/* ---- the fake backend ---- */

#define FK_MAXFRAME 70000
#define FK_NSENT 8
#define FK_NRX 128

static struct {
	uint64_t caps;
	uint64_t set_features;
	unsigned int set_hdr;
	int set_calls;
	struct net_backend *be;
	bool rx_on;
	int rx_toggles;
	uint8_t *rx[FK_NRX];
	size_t rxlen[FK_NRX];
	int rxhead, rxn;
	uint8_t sent[FK_NSENT][FK_MAXFRAME];
	size_t sentlen[FK_NSENT];
	int nsent;
	int send_errno;
	/* A gate fk_send waits at while hold is set (test_tx_unlocked). */
	bool hold, held;
} fk;
static pthread_mutex_t fk_gate_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fk_gate = PTHREAD_COND_INITIALIZER;

static int
fk_init(struct net_backend *be, struct vmctx *ctx, const char *name,
	struct config *nic, char *e, size_t elen)
{
	(void)ctx;
	(void)name;
	if (config_get(nic, "fakefail")) {
		snprintf(e, elen, "%s: told to fail", name);
		return -1;
	}
	fk.be = be;
	fk.rx_on = true;
	return 0;
}

static void
fk_cleanup(struct net_backend *be)
{
	(void)be;
	for (int i = 0; i < fk.rxn; i++)
		free(fk.rx[(fk.rxhead + i) % FK_NRX]);
	fk.rxn = 0;
	fk.be = NULL;
}

static ssize_t
fk_send(struct net_backend *be, const struct iovec *iov, int n)
{
	size_t len = 0;
	uint8_t *out = fk.sent[fk.nsent % FK_NSENT];

	(void)be;
	pthread_mutex_lock(&fk_gate_mtx);
	fk.held = fk.hold;
	pthread_cond_broadcast(&fk_gate);
	while (fk.hold)
		pthread_cond_wait(&fk_gate, &fk_gate_mtx);
	pthread_mutex_unlock(&fk_gate_mtx);
	if (fk.send_errno) {
		errno = fk.send_errno;
		return -1;
	}
	for (int i = 0; i < n; i++) {
		assert_true(len + iov[i].iov_len <= FK_MAXFRAME);
		memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	fk.sentlen[fk.nsent % FK_NSENT] = len;
	fk.nsent++;
	return (ssize_t)len;
}

static ssize_t
fk_peek(struct net_backend *be)
{
	(void)be;
	return fk.rxn ? (ssize_t)fk.rxlen[fk.rxhead] : 0;
}

static void
fk_pop(void)
{
	free(fk.rx[fk.rxhead]);
	fk.rxhead = (fk.rxhead + 1) % FK_NRX;
	fk.rxn--;
}

static ssize_t
fk_recv(struct net_backend *be, const struct iovec *iov, int n)
{
	size_t done = 0, len;

	(void)be;
	if (!fk.rxn)
		return 0;
	len = fk.rxlen[fk.rxhead];
	for (int i = 0; i < n && done < len; i++) {
		size_t c =
		    iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
		memcpy(iov[i].iov_base, fk.rx[fk.rxhead] + done, c);
		done += c;
	}
	fk_pop();
	return (ssize_t)done;
}

static ssize_t
fk_discard(struct net_backend *be)
{
	(void)be;
	if (!fk.rxn)
		return 0;
	fk_pop();
	return 1;
}

static void
fk_rx_disable(struct net_backend *be)
{
	(void)be;
	fk.rx_on = false;
	fk.rx_toggles++;
}

static void
fk_rx_enable(struct net_backend *be)
{
	(void)be;
	fk.rx_on = true;
	fk.rx_toggles++;
}

static uint64_t
fk_get_cap(struct net_backend *be)
{
	(void)be;
	return fk.caps;
}

static int
fk_set_cap(struct net_backend *be, uint64_t features, unsigned int hdr)
{
	(void)be;
	fk.set_features = features;
	fk.set_hdr = hdr;
	fk.set_calls++;
	return 0;
}

static const char *const fk_keys[] = {"fakeopt", "fakefail", NULL};

static const struct net_backend_ops fake_backend = {
    .prefix = "fakenet",
    .init = fk_init,
    .cleanup = fk_cleanup,
    .send = fk_send,
    .peek_recvlen = fk_peek,
    .recv = fk_recv,
    .recv_discard = fk_discard,
    .rx_disable = fk_rx_disable,
    .rx_enable = fk_rx_enable,
    .get_cap = fk_get_cap,
    .set_cap = fk_set_cap,
    .keys = fk_keys,
};
NET_BACKEND_SET(fake_backend);

/* Queue a frame on the backend (with its vnet header when agreed). */
static void
fk_queue(const void *frame, size_t len)
{
	int t = (fk.rxhead + fk.rxn) % FK_NRX;

	assert_true(fk.rxn < FK_NRX);
	fk.rx[t] = malloc(len);
	assert_non_null(fk.rx[t]);
	memcpy(fk.rx[t], frame, len);
	fk.rxlen[t] = len;
	fk.rxn++;
}

/* What the event loop does when the backend has frames. */
static void
fk_deliver(void)
{
	assert_non_null(fk.be);
	fk.be->rx_cb(-1, fk.be->rx_arg);
}

/* ---- the fixture: a VM with virtio-net in slot 4 ---- */

struct vq {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t qsz, avail_idx, next_desc;
	uint64_t gpa;
};

struct fx {
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
	pthread_t loop; /* the event loop's thread, when there is one */
	bool looping;
	uint8_t *mem;
	int iobase;
	struct vq q[NQ];
};

static void
set(struct config *c, const char *k, const char *v)
{
	assert_int_equal(config_set(c, k, v, err, sizeof(err)), 0);
}

/* A VM with virtio-net,opts; init's rc. */
static int
fx_init(struct fx *f, const char *opts)
{
	char slot[512];

	f->cfg = config_create();
	set(f->cfg, "name", "testvm");
	set(f->cfg, "pci.0.0.0.device", "hostbridge");
	snprintf(slot, sizeof(slot), "%d,virtio-net,%s", SLOT, opts);
	assert_int_equal(pci_parse_slot(f->cfg, slot, err, sizeof(err)), 0);
	f->ctx = vm_create_mock(MEMSIZE);
	assert_non_null(f->ctx);
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	f->mem = vm_map_gpa(f->ctx, 0, MEMSIZE);
	return init_pci(f->ctx);
}

static struct fx *
fx_new(const char *opts)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(fx_init(f, opts), 0);
	f->iobase = (int)(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x10, 4) & ~3u);
	return f;
}

static void *
loop_main(void *arg)
{
	mevent_dispatch(arg);
	return NULL;
}

/* A VM whose backends have bhyve's event loop, running on its thread. */
static struct fx *
fx_new_loop(const char *opts)
{
	struct fx *f = calloc(1, sizeof(*f));
	char slot[512];

	assert_non_null(f);
	f->cfg = config_create();
	set(f->cfg, "name", "testvm");
	set(f->cfg, "pci.0.0.0.device", "hostbridge");
	snprintf(slot, sizeof(slot), "%d,virtio-net,%s", SLOT, opts);
	assert_int_equal(pci_parse_slot(f->cfg, slot, err, sizeof(err)), 0);
	f->ctx = vm_create_mock(MEMSIZE);
	assert_non_null(f->ctx);
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	f->m->mev = mevent_create();
	assert_non_null(f->m->mev);
	f->mem = vm_map_gpa(f->ctx, 0, MEMSIZE);
	assert_int_equal(init_pci(f->ctx), 0);
	f->iobase = (int)(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x10, 4) & ~3u);
	assert_int_equal(pthread_create(&f->loop, NULL, loop_main, f->m->mev),
			 0);
	f->looping = true;
	return f;
}

static void
fx_free(struct fx *f)
{
	if (f->looping) {
		mevent_stop(f->m->mev);
		pthread_join(f->loop, NULL);
	}
	machine_free(f->m);
	vm_close(f->ctx);
	config_free(f->cfg);
	free(f);
}

/* Run init with stderr in a file; its first line in buf; init's rc. */
static int
init_capture(const char *opts, char *buf, size_t len)
{
	struct fx *f = calloc(1, sizeof(*f));
	char path[] = "/tmp/test_vnet_err.XXXXXX";
	int fd = mkstemp(path), saved = dup(2), rc;
	FILE *fp;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	rc = fx_init(f, opts);
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
	fx_free(f);
	return rc;
}

static void
expect_init_error(const char *opts, const char *want)
{
	char line[512];

	assert_int_equal(init_capture(opts, line, sizeof(line)), -1);
	if (!strstr(line, want))
		fail_msg("%s: got '%s', want '%s'", opts, line, want);
	assert_non_null(strstr(line, "virtio-net at 0:4:0"));
	assert_null(strchr(line, '\n') ? strchr(strchr(line, '\n') + 1, '\n')
				       : NULL);
}

static struct vtnet_stats
stats(struct fx *f)
{
	struct vtnet_stats st;

	assert_int_equal(
	    pci_vtnet_stats(pci_find_devinst(f->ctx, 0, SLOT, 0), &st), 0);
	return st;
}

/* ---- the driver side ---- */

static uint32_t
io_read(struct fx *f, int off, int size)
{
	uint32_t v = 0;

	assert_int_equal(inout_dispatch(f->ctx, 1, f->iobase + off, size, &v),
			 0);
	return size == 4 ? v : v & ((1u << (8 * size)) - 1);
}

static void
io_write(struct fx *f, int off, int size, uint32_t v)
{
	assert_int_equal(inout_dispatch(f->ctx, 0, f->iobase + off, size, &v),
			 0);
}

static uint8_t
status_reg(struct fx *f)
{
	return (uint8_t)io_read(f, VIRTIO_PCI_STATUS, 1);
}

static void
q_setup(struct fx *f, int i, uint64_t gpa)
{
	struct vq *q = &f->q[i];
	uint64_t used_off;

	io_write(f, VIRTIO_PCI_QUEUE_SEL, 2, i);
	q->qsz = (uint16_t)io_read(f, VIRTIO_PCI_QUEUE_NUM, 2);
	assert_true(q->qsz >= 64);
	used_off = (16ULL * q->qsz + 2 * (3 + q->qsz) + 4095) & ~4095ULL;
	memset(f->mem + gpa, 0, vring_size(q->qsz));
	q->gpa = gpa;
	q->desc = (struct vring_desc *)(f->mem + gpa);
	q->avail = (struct vring_avail *)(f->mem + gpa + 16ULL * q->qsz);
	q->used = (struct vring_used *)(f->mem + gpa + used_off);
	q->avail_idx = 0;
	q->next_desc = 0;
	io_write(f, VIRTIO_PCI_QUEUE_PFN, 4, (uint32_t)(gpa >> 12));
}

/* The legacy driver's bring-up (§3.1.1, §4.1.4.8), with these features. */
static uint32_t
driver_init(struct fx *f, uint32_t features)
{
	uint32_t neg = features & io_read(f, VIRTIO_PCI_HOST_FEATURES, 4);

	io_write(f, VIRTIO_PCI_STATUS, 1, 0);
	io_write(f, VIRTIO_PCI_STATUS, 1, 1 | 2);
	io_write(f, VIRTIO_PCI_GUEST_FEATURES, 4, neg);
	q_setup(f, RXQ, 0x10000);
	q_setup(f, TXQ, 0x20000);
	q_setup(f, CTLQ, 0x30000);
	io_write(f, VIRTIO_PCI_STATUS, 1, 1 | 2 | 4);
	return neg;
}

static uint16_t
desc_add(struct fx *f, int qi, uint64_t addr, uint32_t len, uint16_t flags)
{
	struct vq *q = &f->q[qi];
	uint16_t i = q->next_desc;

	q->next_desc = (uint16_t)((i + 1) % q->qsz);
	q->desc[i] = (struct vring_desc){addr, len, flags, 0};
	return i;
}

/* A chain of n buffers (addr, len, writable) in consecutive descriptors. */
static uint16_t
chain(struct fx *f, int qi, int n, const uint64_t *addr, const uint32_t *len,
      bool writable)
{
	uint16_t head = 0, prev = 0;

	for (int i = 0; i < n; i++) {
		uint16_t d = desc_add(f, qi, addr[i], len[i],
				      writable ? VRING_DESC_F_WRITE : 0);
		if (i == 0)
			head = d;
		else {
			f->q[qi].desc[prev].flags |= VRING_DESC_F_NEXT;
			f->q[qi].desc[prev].next = d;
		}
		prev = d;
	}
	return head;
}

static void
avail_push(struct fx *f, int qi, uint16_t head)
{
	struct vq *q = &f->q[qi];

	q->avail->ring[q->avail_idx % q->qsz] = head;
	q->avail_idx++;
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
}

static void
kick(struct fx *f, int qi)
{
	io_write(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, qi);
}

static uint16_t
used_idx(struct fx *f, int qi)
{
	return __atomic_load_n(&f->q[qi].used->idx, __ATOMIC_ACQUIRE);
}

/* Wait up to 5 s for the transmit thread to get the used index to want. */
static bool
wait_used(struct fx *f, int qi, uint16_t want)
{
	struct timespec ts = {0, 1000000};

	for (int i = 0; i < 5000 && used_idx(f, qi) != want; i++)
		nanosleep(&ts, NULL);
	(void)io_read(f, VIRTIO_PCI_QUEUE_SEL, 2); /* its lock: it is done */
	return used_idx(f, qi) == want;
}

/*
 * Wait up to 5 s for the transmit thread to ask for the next notification
 * (avail_event at the driver's index): it does so after lingering, so
 * after the used index moved and without holding the lock meanwhile.
 */
static bool
wait_kick_asked(struct fx *f, int qi)
{
	volatile uint16_t *ev =
	    (volatile uint16_t *)&f->q[qi].used->ring[f->q[qi].qsz];
	struct timespec ts = {0, 1000000};

	for (int i = 0; i < 5000 && *ev != f->q[qi].avail_idx; i++)
		nanosleep(&ts, NULL);
	return *ev == f->q[qi].avail_idx;
}

/* Wait up to 5 s for the device to want a reset (a broken queue). */
static bool
wait_broken(struct fx *f)
{
	struct timespec ts = {0, 1000000};

	for (int i = 0; i < 5000; i++) {
		if (status_reg(f) & VIRTIO_CONFIG_S_NEEDS_RESET)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

static void
frame_fill(uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* Send one frame as one chain: header then data in two buffers. */
static uint16_t
tx_frame(struct fx *f, unsigned int hdr_len, size_t len, uint8_t seed)
{
	uint64_t addr[2] = {BUF_GPA, BUF_GPA + 0x1000};
	uint32_t lens[2] = {hdr_len, (uint32_t)len};
	uint16_t u = used_idx(f, TXQ);

	memset(f->mem + BUF_GPA, 0, hdr_len);
	f->mem[BUF_GPA] = 0x5a; /* flags, to see whether it was kept */
	frame_fill(f->mem + BUF_GPA + 0x1000, len, seed);
	avail_push(f, TXQ, chain(f, TXQ, 2, addr, lens, false));
	kick(f, TXQ);
	return u;
}

/* ---- identity, features, config ---- */

static void
test_identity(void **state)
{
	struct fx *f;

	(void)state;
	fk = (typeof(fk)){0};
	f = fx_new("fakenet,mac=02:11:22:33:44:55");
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0, 2), 0x1af4);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 2, 2), 0x1000);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 8, 1), 0);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x0b, 1), 0x02);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x0a, 1), 0x00);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x2e, 2), 1);
	/* No offloads from a backend without them, no MTU unless given. */
	assert_int_equal(io_read(f, VIRTIO_PCI_HOST_FEATURES, 4), F_BASE);
	assert_int_equal(io_read(f, CFG, 4), 0x33221102);
	assert_int_equal(io_read(f, CFG + 4, 2), 0x5544);
	assert_int_equal(io_read(f, CFG + 6, 2), 1); /* link up */
	assert_int_equal(io_read(f, CFG + 8, 2), 1); /* one queue pair */
	assert_int_equal(io_read(f, CFG + 10, 2), 0);
	/* Past the config: all ones. */
	assert_int_equal(io_read(f, CFG + 12, 1), 0xff);
	/* Three queues: receive and transmit 1024, control 64. */
	io_write(f, VIRTIO_PCI_QUEUE_SEL, 2, 0);
	assert_int_equal(io_read(f, VIRTIO_PCI_QUEUE_NUM, 2), 1024);
	io_write(f, VIRTIO_PCI_QUEUE_SEL, 2, 1);
	assert_int_equal(io_read(f, VIRTIO_PCI_QUEUE_NUM, 2), 1024);
	io_write(f, VIRTIO_PCI_QUEUE_SEL, 2, 2);
	assert_int_equal(io_read(f, VIRTIO_PCI_QUEUE_NUM, 2), 64);
	io_write(f, VIRTIO_PCI_QUEUE_SEL, 2, 3);
	assert_int_equal(io_read(f, VIRTIO_PCI_QUEUE_NUM, 2), 0);
	/* A backend without offloads was told: no header. */
	assert_int_equal(fk.set_hdr, 0);
	assert_int_equal(fk.set_features, 0);
	fx_free(f);
	assert_null(fk.be); /* teardown closed it */

	/* mtu= offers VIRTIO_NET_F_MTU; offloads when the backend has them. */
	fk.caps = NETBE_F_OFFLOADS;
	f = fx_new("backend=fakenet,mtu=9000");
	assert_int_equal(io_read(f, VIRTIO_PCI_HOST_FEATURES, 4),
			 F_BASE | F_MTU | F_OFFLOADS);
	assert_int_equal(io_read(f, CFG + 10, 2), 9000);
	/* The guest's choice reaches the backend, with the header's size. */
	driver_init(f, F_MRG | F_CSUM | F_HOST_TSO4 | F_GUEST_CSUM);
	assert_int_equal(fk.set_features, F_CSUM | F_HOST_TSO4 | F_GUEST_CSUM);
	assert_int_equal(fk.set_hdr, 12);
	driver_init(f, F_CSUM);
	assert_int_equal(fk.set_features, F_CSUM);
	assert_int_equal(fk.set_hdr, 10);
	fx_free(f);
	fk.caps = 0;
}

static void
md5_mac(const char *seed, uint8_t mac[6])
{
	uint8_t d[MD5_DIGEST_LENGTH];
	MD5_CTX c;

	MD5Init(&c);
	MD5Update(&c, (const uint8_t *)seed, strlen(seed));
	MD5Final(d, &c);
	mac[0] = 0x00;
	mac[1] = 0xa0;
	mac[2] = 0x98;
	memcpy(mac + 3, d, 3);
}

static void
read_mac(struct fx *f, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)io_read(f, CFG + i, 1);
}

static void
test_mac(void **state)
{
	uint8_t want[6], got[6];
	struct fx *f;

	(void)state;
	fk = (typeof(fk)){0};
	/* bhyve's rule: MD5 of "slot-func-vmname" after 00:a0:98. */
	f = fx_new("fakenet");
	md5_mac("4-0-testvm", want);
	read_mac(f, got);
	assert_memory_equal(got, want, 6);
	/* A legacy driver may write its MAC; a reset brings ours back. */
	io_write(f, CFG, 2, 0x0202);
	read_mac(f, got);
	assert_int_equal(got[0], 2);
	assert_int_equal(got[1], 2);
	io_write(f, CFG + 6, 2, 0); /* status is not writable */
	assert_int_equal(io_read(f, CFG + 6, 2), 1);
	io_write(f, VIRTIO_PCI_STATUS, 1, 0);
	read_mac(f, got);
	assert_memory_equal(got, want, 6);
	fx_free(f);

	f = fx_new("fakenet,mac=00:a0:98:01:02:03");
	read_mac(f, got);
	assert_memory_equal(got, "\x00\xa0\x98\x01\x02\x03", 6);
	fx_free(f);
}

static void
test_parsemac(void **state)
{
	static const char *const bad[] = {
	    "",
	    "00:11:22:33:44",
	    "00:11:22:33:44:55:66",
	    "00:11:22:33:44:5",
	    "00:11:22:33:44:555",
	    "0:11:22:33:44:55:",
	    "00-11-22-33-44-55",
	    "00:11:22:33:44:gg",
	    "0x:11:22:33:44:55",
	    " 0:11:22:33:44:55",
	    "+0:11:22:33:44:55",
	    "-0:11:22:33:44:55",
	    "00:11:22:33:44:55 ",
	    "00:00:00:00:00:00", /* zero */
	    "01:00:5e:00:00:01", /* multicast */
	    "ff:ff:ff:ff:ff:ff", /* broadcast */
	    "00:11:22:33:44::5",
	    "0011:22:33:44:55:",
	};
	uint8_t mac[6];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (net_parsemac(bad[i], mac) == 0)
			fail_msg("net_parsemac accepted '%s'", bad[i]);
	assert_int_equal(net_parsemac("02:aB:cd:EF:00:9f", mac), 0);
	assert_memory_equal(mac, "\x02\xab\xcd\xef\x00\x9f", 6);
}

static void
test_options(void **state)
{
	struct config *cfg = config_create();

	(void)state;
	fk = (typeof(fk)){0};
	/* The legacy syntax: the first bare word is the backend. */
	assert_int_equal(pci_parse_slot(cfg,
					"4:0,virtio-net,tap0,mac=02:00:00:"
					"00:00:01,mtu=1400",
					err, sizeof(err)),
			 0);
	assert_string_equal(config_get(cfg, "pci.0.4.0.backend"), "tap0");
	assert_string_equal(config_get(cfg, "pci.0.4.0.mac"),
			    "02:00:00:00:00:01");
	assert_string_equal(config_get(cfg, "pci.0.4.0.mtu"), "1400");
	assert_int_equal(pci_parse_slot(cfg,
					"5,virtio-net,slirp,hostfwd=tcp:127.0."
					"0.1:2222-:22",
					err, sizeof(err)),
			 0);
	assert_string_equal(config_get(cfg, "pci.0.5.0.backend"), "slirp");
	assert_string_equal(config_get(cfg, "pci.0.5.0.hostfwd"),
			    "tcp:127.0.0.1:2222-:22");
	assert_int_equal(
	    pci_parse_slot(cfg, "6,virtio-net,backend=tap1", err, sizeof(err)),
	    0);
	assert_string_equal(config_get(cfg, "pci.0.6.0.backend"), "tap1");
	config_free(cfg);

	expect_init_error("fakenet,mac=00:11:22:33:44",
			  "bad mac '00:11:22:33:44'");
	expect_init_error("fakenet,mac=01:11:22:33:44:55", "bad mac");
	expect_init_error("fakenet,mtu=67", "bad mtu '67'");
	expect_init_error("fakenet,mtu=65536", "bad mtu '65536'");
	expect_init_error("fakenet,mtu=-1500", "bad mtu");
	expect_init_error("fakenet,mtu=15x", "bad mtu");
	expect_init_error("fakenet,mtu=", "bad mtu");
	expect_init_error("fakenet,bogus=1", "unknown option 'bogus'");
	expect_init_error("fakenet,ro", "unknown option 'ro'");
	/* A backend's own keys only with that backend. */
	expect_init_error("tap0,fakeopt=1", "unknown option 'fakeopt'");
	expect_init_error("tap0,hostfwd=tcp::2222-:22",
			  "unknown option 'hostfwd'");
	/* No backend: a NIC connected to nothing, as bhyve(8) allows. */
	{
		char line[512];

		assert_int_equal(
		    init_capture("mac=02:00:00:00:00:01", line, sizeof(line)),
		    0);
	}
	expect_init_error("nosuchnet0", "unknown network backend 'nosuchnet0'");
	expect_init_error("fakenet,fakefail=1", "fakenet: told to fail");
	expect_init_error("slirp,fakeopt=1", "unknown option 'fakeopt'");
	/* vhost: a boolean, and only where the backend has a descriptor. */
	expect_init_error("fakenet,vhost=maybe", "vhost");
	expect_init_error("fakenet,vhost=maybe", "maybe");
	expect_init_error("fakenet,vhost=on", "vhost=on needs a tap backend");
	{
		char line[512];

		assert_int_equal(init_capture("fakenet,vhost=off", line,
					      sizeof(line)),
				 0);
	}
	/* Backend keys pass through to a backend that reads them. */
	struct fx *f = fx_new("fakenet,fakeopt=yes,mtu=68");
	fx_free(f);
}

/* ---- transmit ---- */

static void
test_tx(void **state)
{
	uint8_t want[2000];
	struct fx *f;
	uint16_t u;

	(void)state;
	fk = (typeof(fk)){0};
	f = fx_new("fakenet");
	/* No MRG_RXBUF: a 10-byte header, taken off here. */
	driver_init(f, F_BASE & ~F_MRG);
	u = tx_frame(f, 10, 1514, 1);
	assert_true(wait_used(f, TXQ, u + 1));
	assert_int_equal(fk.nsent, 1);
	assert_int_equal(fk.sentlen[0], 1514);
	frame_fill(want, 1514, 1);
	assert_memory_equal(fk.sent[0], want, 1514);
	assert_int_equal(f->q[TXQ].used->ring[u].len, 0);
	/* MRG_RXBUF: 12 bytes. */
	driver_init(f, F_BASE);
	u = tx_frame(f, 12, 60, 2);
	assert_true(wait_used(f, TXQ, u + 1));
	assert_int_equal(fk.sentlen[1], 60);
	frame_fill(want, 60, 2);
	assert_memory_equal(fk.sent[1], want, 60);
	/* ANY_LAYOUT: the header in front of the frame, one buffer. */
	{
		uint64_t a = BUF2_GPA;
		uint32_t l = 12 + 80;

		u = used_idx(f, TXQ);
		memset(f->mem + a, 0, 12);
		frame_fill(f->mem + a + 12, 80, 6);
		avail_push(f, TXQ, chain(f, TXQ, 1, &a, &l, false));
		kick(f, TXQ);
		assert_true(wait_used(f, TXQ, u + 1));
		assert_int_equal(fk.sentlen[2], 80);
		frame_fill(want, 80, 6);
		assert_memory_equal(fk.sent[2], want, 80);
		fk.nsent = 2;
	}
	/* A header and no frame: counted, the queue goes on. */
	u = tx_frame(f, 12, 0, 3);
	assert_true(wait_used(f, TXQ, u + 1));
	assert_int_equal(fk.nsent, 2);
	assert_int_equal(stats(f).tx_errors, 1);
	/* The host cannot take it now: dropped and counted. */
	fk.send_errno = EAGAIN;
	u = tx_frame(f, 12, 100, 4);
	assert_true(wait_used(f, TXQ, u + 1));
	fk.send_errno = 0;
	assert_int_equal(stats(f).tx_dropped, 1);
	assert_int_equal(stats(f).tx_packets, 3);
	/* A burst: every frame goes, in order. */
	u = used_idx(f, TXQ);
	for (int i = 0; i < 5; i++) {
		uint64_t a = BUF2_GPA + 0x1000 * (uint64_t)i;
		uint32_t l = 12 + 64;

		memset(f->mem + a, 0, 12);
		frame_fill(f->mem + a + 12, 64, (uint8_t)(10 + i));
		avail_push(f, TXQ, chain(f, TXQ, 1, &a, &l, false));
	}
	kick(f, TXQ);
	assert_true(wait_used(f, TXQ, u + 5));
	assert_int_equal(fk.nsent, 7);
	frame_fill(want, 64, 14);
	assert_memory_equal(fk.sent[6 % FK_NSENT], want, 64);
	/* Idle again: the thread asks for the next notification. */
	assert_true(wait_kick_asked(f, TXQ));
	fx_free(f);

	/* A backend with offloads takes the guest's header as it is. */
	fk = (typeof(fk)){0};
	fk.caps = NETBE_F_OFFLOADS;
	f = fx_new("fakenet");
	driver_init(f, F_BASE | F_CSUM | F_HOST_TSO4);
	u = tx_frame(f, 12, 3000, 5);
	assert_true(wait_used(f, TXQ, u + 1));
	assert_int_equal(fk.sentlen[0], 12 + 3000);
	assert_int_equal(fk.sent[0][0], 0x5a);
	frame_fill(want, 1000, 5);
	assert_memory_equal(fk.sent[0] + 12, want, 1000);
	fx_free(f);
}

/* Indirect descriptors carry a frame too (§2.7.5.3). */
/* Wait until fk_send sits at the gate (up to 5 s). */
static bool
fk_wait_held(void)
{
	struct timespec ts;
	bool held;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&fk_gate_mtx);
	while (!fk.held &&
	       pthread_cond_timedwait(&fk_gate, &fk_gate_mtx, &ts) == 0)
		;
	held = fk.held;
	pthread_mutex_unlock(&fk_gate_mtx);
	return held;
}

static void
fk_open_gate(void)
{
	pthread_mutex_lock(&fk_gate_mtx);
	fk.hold = false;
	pthread_cond_broadcast(&fk_gate);
	pthread_mutex_unlock(&fk_gate_mtx);
}

struct reset_arg {
	struct fx *f;
	bool done;
};

static void *
reset_main(void *arg)
{
	struct reset_arg *r = arg;

	io_write(r->f, VIRTIO_PCI_STATUS, 1, 0);
	__atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * The backend's send runs without the device's lock: registers answer
 * while a send is stuck, and a reset waits for the chain to come back.
 */
static void
test_tx_unlocked(void **state)
{
	struct timespec ts = {0, 50000000};
	struct reset_arg r = {0};
	pthread_t t;
	struct fx *f;
	uint16_t u;

	(void)state;
	fk = (typeof(fk)){0};
	fk.hold = true;
	f = fx_new("fakenet");
	driver_init(f, F_BASE);
	u = tx_frame(f, 12, 60, 1);
	assert_true(fk_wait_held());
	/* The lock is free: a register read does not wait for the send. */
	assert_int_equal(io_read(f, CFG + 6, 2), 1);
	assert_int_equal(used_idx(f, TXQ), u);
	/* A reset waits for the batch in flight... */
	r.f = f;
	assert_int_equal(pthread_create(&t, NULL, reset_main, &r), 0);
	nanosleep(&ts, NULL);
	assert_false(__atomic_load_n(&r.done, __ATOMIC_ACQUIRE));
	/* ...which goes back to the guest's ring before the reset. */
	fk_open_gate();
	pthread_join(t, NULL);
	assert_true(r.done);
	assert_int_equal(used_idx(f, TXQ), (uint16_t)(u + 1));
	assert_int_equal(fk.nsent, 1);
	assert_int_equal(stats(f).tx_packets, 1);
	assert_int_equal(status_reg(f), 0);
	fx_free(f);
}

/*
 * The transmit doorbell is an eventfd the kernel signals (vm_ioeventfd on
 * QUEUE_NOTIFY, datamatch 1): signalling it sends; it follows the BAR
 * when the guest moves it and goes when decoding is turned off.
 */
static void
test_tx_doorbell(void **state)
{
	uint64_t addr = BUF_GPA, one = 1;
	uint32_t len = 12 + 60;
	struct fx *f;
	uint16_t cmd, u;
	int fd;

	(void)state;
	fk = (typeof(fk)){0};
	f = fx_new("fakenet");
	driver_init(f, F_BASE);
	fd = vm_mock_ioeventfd(f->ctx, (uint64_t)f->iobase + 16, 1);
	assert_true(fd >= 0);
	/* Only the transmit queue's: receive and control still exit. */
	assert_int_equal(vm_mock_ioeventfd(f->ctx, (uint64_t)f->iobase + 16, 0),
			 -1);
	assert_int_equal(vm_mock_ioeventfd(f->ctx, (uint64_t)f->iobase + 16, 2),
			 -1);
	/* A frame and the kernel's signal, no register write. */
	u = used_idx(f, TXQ);
	memset(f->mem + addr, 0, 12);
	frame_fill(f->mem + addr + 12, 60, 3);
	avail_push(f, TXQ, chain(f, TXQ, 1, &addr, &len, false));
	assert_int_equal(write(fd, &one, sizeof(one)), (ssize_t)sizeof(one));
	assert_true(wait_used(f, TXQ, u + 1));
	assert_int_equal(fk.nsent, 1);
	/* The guest moves the BAR: the doorbell moves with it. */
	pci_cfg_write(f->ctx, 0, SLOT, 0, 0x10, 4, 0x6000);
	assert_int_equal(vm_mock_ioeventfd(f->ctx, (uint64_t)f->iobase + 16, 1),
			 -1);
	assert_int_equal(vm_mock_ioeventfd(f->ctx, 0x6010, 1), fd);
	/* Port decoding off: gone; on: back. */
	cmd = (uint16_t)pci_cfg_read(f->ctx, 0, SLOT, 0, 0x04, 2);
	pci_cfg_write(f->ctx, 0, SLOT, 0, 0x04, 2, cmd & ~1u);
	assert_int_equal(vm_mock_ioeventfd(f->ctx, 0x6010, 1), -1);
	pci_cfg_write(f->ctx, 0, SLOT, 0, 0x04, 2, cmd);
	assert_int_equal(vm_mock_ioeventfd(f->ctx, 0x6010, 1), fd);
	fx_free(f);
}

static void
test_tx_indirect(void **state)
{
	struct vring_desc *t;
	struct fx *f;
	uint16_t u, d;
	uint8_t want[100];

	(void)state;
	fk = (typeof(fk)){0};
	f = fx_new("fakenet");
	driver_init(f, F_BASE);
	t = (struct vring_desc *)(f->mem + TABLE_GPA);
	t[0] = (struct vring_desc){BUF_GPA, 12, VRING_DESC_F_NEXT, 1};
	t[1] = (struct vring_desc){BUF_GPA + 0x1000, 100, 0, 0};
	memset(f->mem + BUF_GPA, 0, 12);
	frame_fill(f->mem + BUF_GPA + 0x1000, 100, 9);
	d = desc_add(f, TXQ, TABLE_GPA, 32, VRING_DESC_F_INDIRECT);
	u = used_idx(f, TXQ);
	avail_push(f, TXQ, d);
	kick(f, TXQ);
	assert_true(wait_used(f, TXQ, u + 1));
	frame_fill(want, 100, 9);
	assert_int_equal(fk.sentlen[0], 100);
	assert_memory_equal(fk.sent[0], want, 100);
	fx_free(f);
}

/* Bad transmit chains: the queue stops, nothing is sent, no crash. */
static void
bad_tx(const char *what, uint32_t features, const char *opts,
       void (*make)(struct fx *))
{
	bool broke;

	char path[] = "/tmp/test_vnet_bad.XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	struct fx *f;
	uint16_t u;

	fk = (typeof(fk)){0};
	f = fx_new(opts);
	driver_init(f, features);
	fflush(stderr);
	dup2(fd, 2);
	u = used_idx(f, TXQ);
	make(f);
	kick(f, TXQ);
	broke = wait_broken(f);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	unlink(path);
	if (!broke)
		fail_msg("%s: the queue did not stop", what);
	assert_int_equal(used_idx(f, TXQ), u);
	assert_int_equal(fk.nsent, 0);
	/* Nothing more is taken until a reset... */
	tx_frame(f, 12, 60, 1);
	assert_true(wait_used(f, TXQ, u));
	assert_int_equal(fk.nsent, 0);
	/* ...after which the device works again. */
	driver_init(f, F_BASE);
	u = tx_frame(f, 12, 60, 1);
	assert_true(wait_used(f, TXQ, u + 1));
	assert_int_equal(fk.nsent, 1);
	fx_free(f);
}

static void
tx_writable(struct fx *f)
{
	uint64_t a[2] = {BUF_GPA, BUF_GPA + 0x1000};
	uint32_t l[2] = {12, 60};
	uint16_t h = chain(f, TXQ, 2, a, l, false);

	f->q[TXQ].desc[f->q[TXQ].desc[h].next].flags |= VRING_DESC_F_WRITE;
	avail_push(f, TXQ, h);
}

static void
tx_too_long(struct fx *f)
{
	uint64_t a[2] = {BUF_GPA, BUF_GPA + 0x1000};
	uint32_t l[2] = {12, 65535 + 18 + 1};

	avail_push(f, TXQ, chain(f, TXQ, 2, a, l, false));
}

/* With mtu=1500 negotiated (no TSO), 1518 + header is the most. */
static void
tx_past_mtu(struct fx *f)
{
	uint64_t a[2] = {BUF_GPA, BUF_GPA + 0x1000};
	uint32_t l[2] = {12, 1519};

	avail_push(f, TXQ, chain(f, TXQ, 2, a, l, false));
}

static void
tx_loop(struct fx *f)
{
	uint64_t a[2] = {BUF_GPA, BUF_GPA + 0x1000};
	uint32_t l[2] = {12, 60};
	uint16_t h = chain(f, TXQ, 2, a, l, false);
	uint16_t n = f->q[TXQ].desc[h].next;

	f->q[TXQ].desc[n].flags |= VRING_DESC_F_NEXT;
	f->q[TXQ].desc[n].next = h;
	avail_push(f, TXQ, h);
}

static void
tx_outside_ram(struct fx *f)
{
	uint64_t a[2] = {BUF_GPA, MEMSIZE - 30};
	uint32_t l[2] = {12, 60};

	avail_push(f, TXQ, chain(f, TXQ, 2, a, l, false));
}

static void
tx_huge_address(struct fx *f)
{
	uint64_t a[1] = {~0ULL - 8};
	uint32_t l[1] = {72};

	avail_push(f, TXQ, chain(f, TXQ, 1, a, l, false));
}

static void
tx_head_past_ring(struct fx *f)
{
	avail_push(f, TXQ, f->q[TXQ].qsz + 1);
}

static void
tx_avail_too_far(struct fx *f)
{
	f->q[TXQ].avail_idx = (uint16_t)(f->q[TXQ].qsz + 5);
	avail_push(f, TXQ, 0);
}

static void
tx_indirect_loop(struct fx *f)
{
	struct vring_desc *t = (struct vring_desc *)(f->mem + TABLE_GPA);

	t[0] = (struct vring_desc){BUF_GPA, 12, VRING_DESC_F_NEXT, 1};
	t[1] = (struct vring_desc){BUF_GPA, 60, VRING_DESC_F_NEXT, 0};
	avail_push(f, TXQ,
		   desc_add(f, TXQ, TABLE_GPA, 32, VRING_DESC_F_INDIRECT));
}

static void
test_tx_bad_chains(void **state)
{
	(void)state;
	bad_tx("tx_writable", F_BASE, "fakenet", tx_writable);
	bad_tx("tx_too_long", F_BASE, "fakenet", tx_too_long);
	bad_tx("tx_past_mtu", F_BASE | F_MTU, "fakenet,mtu=1500", tx_past_mtu);
	bad_tx("tx_loop", F_BASE, "fakenet", tx_loop);
	bad_tx("tx_outside_ram", F_BASE, "fakenet", tx_outside_ram);
	bad_tx("tx_huge_address", F_BASE, "fakenet", tx_huge_address);
	bad_tx("tx_head_past_ring", F_BASE, "fakenet", tx_head_past_ring);
	bad_tx("tx_avail_too_far", F_BASE, "fakenet", tx_avail_too_far);
	bad_tx("tx_indirect_loop", F_BASE, "fakenet", tx_indirect_loop);
	/* Indirect without the feature. */
	bad_tx("tx_indirect_loop", F_BASE & ~F_INDIRECT, "fakenet",
	       tx_indirect_loop);
}

/* ---- receive ---- */

/* Post n receive buffers of len bytes each, one per chain, at gpa. */
static void
rx_post(struct fx *f, int n, uint64_t gpa, uint32_t len)
{
	for (int i = 0; i < n; i++) {
		uint64_t a = gpa + (uint64_t)i * 0x1000;

		memset(f->mem + a, 0xee, len);
		avail_push(f, RXQ, chain(f, RXQ, 1, &a, &len, true));
	}
	kick(f, RXQ);
}

static void
test_rx(void **state)
{
	uint8_t frame[4000], hdr[12] = {0};
	struct vring_used_elem *ue;
	struct fx *f;
	uint64_t a[2] = {BUF_GPA, BUF_GPA + 0x1000};
	uint32_t l[2] = {10, 1600};

	(void)state;
	fk = (typeof(fk)){0};
	f = fx_new("fakenet");
	/* One chain (header, then data), no MRG_RXBUF: 10-byte header. */
	driver_init(f, F_BASE & ~F_MRG);
	avail_push(f, RXQ, chain(f, RXQ, 2, a, l, true));
	kick(f, RXQ);
	frame_fill(frame, 1514, 3);
	fk_queue(frame, 1514);
	fk_deliver();
	assert_int_equal(used_idx(f, RXQ), 1);
	ue = &f->q[RXQ].used->ring[0];
	assert_int_equal(ue->len, 10 + 1514);
	assert_memory_equal(f->mem + BUF_GPA, hdr, 10);
	assert_memory_equal(f->mem + BUF_GPA + 0x1000, frame, 1514);
	assert_int_equal(stats(f).rx_packets, 1);
	assert_int_equal(fk.rxn, 0);

	/* MRG_RXBUF: 100-byte buffers, 12 + 250 bytes in three of them. */
	driver_init(f, F_BASE);
	rx_post(f, 4, BUF_GPA, 100);
	frame_fill(frame, 250, 4);
	fk_queue(frame, 250);
	fk_deliver();
	assert_int_equal(used_idx(f, RXQ), 3);
	ue = f->q[RXQ].used->ring;
	assert_int_equal(ue[0].len, 100);
	assert_int_equal(ue[1].len, 100);
	assert_int_equal(ue[2].len, 62);
	assert_int_equal(ue[0].id, 0);
	assert_int_equal(ue[2].id, 2);
	assert_int_equal(f->mem[BUF_GPA + 10], 3); /* num_buffers */
	assert_int_equal(f->mem[BUF_GPA + 11], 0);
	assert_memory_equal(f->mem + BUF_GPA + 12, frame, 88);
	assert_memory_equal(f->mem + BUF_GPA + 0x1000, frame + 88, 100);
	assert_memory_equal(f->mem + BUF_GPA + 0x2000, frame + 188, 62);
	/* The fourth buffer takes the next frame; interrupts were raised. */
	fk_queue(frame, 60);
	fk_deliver();
	assert_int_equal(used_idx(f, RXQ), 4);
	assert_int_equal(ue[3].len, 72);
	assert_int_equal(f->mem[BUF_GPA + 0x3000 + 10], 1);
	fx_free(f);

	/* A backend with offloads gives the header; num_buffers is ours. */
	fk = (typeof(fk)){0};
	fk.caps = NETBE_F_OFFLOADS;
	f = fx_new("fakenet");
	driver_init(f, F_BASE | F_GUEST_CSUM);
	rx_post(f, 2, BUF_GPA, 2048);
	memset(frame, 0, 12);
	frame[0] = 1; /* NEEDS_CSUM */
	frame_fill(frame + 12, 3000, 5);
	fk_queue(frame, 12 + 3000);
	fk_deliver();
	assert_int_equal(used_idx(f, RXQ), 2);
	assert_int_equal(f->mem[BUF_GPA], 1);
	assert_int_equal(f->mem[BUF_GPA + 10], 2);
	assert_memory_equal(f->mem + BUF_GPA + 12, frame + 12, 2036);
	assert_int_equal(f->q[RXQ].used->ring[1].len, 3012 - 2048);
	fx_free(f);
}

static void
test_rx_no_buffers(void **state)
{
	uint8_t frame[2000];
	struct fx *f;

	(void)state;
	fk = (typeof(fk)){0};
	f = fx_new("fakenet");
	frame_fill(frame, sizeof(frame), 1);
	/* Before the driver is ready: dropped and counted. */
	fk_queue(frame, 100);
	fk_queue(frame, 100);
	fk_deliver();
	assert_int_equal(fk.rxn, 0);
	assert_int_equal(stats(f).rx_dropped, 2);
	/* Ready, no buffers: the frame waits, rx stops, notify asked for. */
	driver_init(f, F_BASE & ~(F_EVENT_IDX | F_MRG));
	fk_queue(frame, 100);
	fk_deliver();
	assert_int_equal(fk.rxn, 1);
	assert_false(fk.rx_on);
	assert_int_equal(f->q[RXQ].used->flags, 0);
	/* Buffers come: rx starts again and the frame arrives. */
	rx_post(f, 2, BUF_GPA, 1600);
	assert_true(fk.rx_on);
	assert_int_equal(f->q[RXQ].used->flags, VRING_USED_F_NO_NOTIFY);
	fk_deliver();
	assert_int_equal(used_idx(f, RXQ), 1);
	assert_int_equal(f->q[RXQ].used->ring[0].len, 110);
	/* Larger than the chain without MRG_RXBUF: dropped, chain kept. */
	fk_queue(frame, 2000);
	fk_queue(frame, 50);
	fk_deliver();
	assert_int_equal(stats(f).rx_errors, 1);
	assert_int_equal(used_idx(f, RXQ), 2);
	assert_int_equal(f->q[RXQ].used->ring[1].len, 60);
	assert_int_equal(f->q[RXQ].used->ring[1].id, 1);
	/* A readable receive buffer breaks the queue; rx drops until reset. */
	{
		char path[] = "/tmp/test_vnet_rx.XXXXXX";
		int fd = mkstemp(path), saved = dup(2);
		uint64_t a = BUF_GPA;
		uint32_t l = 1600;

		fflush(stderr);
		dup2(fd, 2);
		avail_push(f, RXQ, chain(f, RXQ, 1, &a, &l, false));
		fk_queue(frame, 50);
		fk_deliver();
		fflush(stderr);
		dup2(saved, 2);
		close(saved);
		close(fd);
		unlink(path);
	}
	assert_true(status_reg(f) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(fk.rxn, 0);
	/* Reset while stopped: rx runs again (and drops until ready). */
	driver_init(f, F_BASE & ~F_EVENT_IDX);
	fk_queue(frame, 50);
	fk_deliver();
	assert_int_equal(fk.rxn, 1);
	io_write(f, VIRTIO_PCI_STATUS, 1, 0);
	assert_true(fk.rx_on);
	fk_deliver();
	assert_int_equal(fk.rxn, 0);
	fx_free(f);
}

/* One callback takes every frame there is (the backend need not call again). */
static void
test_rx_many(void **state)
{
	uint8_t frame[60];
	struct fx *f;

	(void)state;
	fk = (typeof(fk)){0};
	f = fx_new("fakenet");
	driver_init(f, F_BASE);
	rx_post(f, 120, BUF_GPA, 128);
	for (int i = 0; i < 100; i++) {
		frame_fill(frame, sizeof(frame), (uint8_t)i);
		fk_queue(frame, sizeof(frame));
	}
	fk_deliver();
	assert_int_equal(fk.rxn, 0);
	assert_int_equal(used_idx(f, RXQ), 100);
	frame_fill(frame, sizeof(frame), 99);
	assert_memory_equal(f->mem + BUF_GPA + 99 * 0x1000 + 12, frame, 60);
	assert_int_equal(stats(f).rx_packets, 100);
	fx_free(f);
}

/* MRG_RXBUF with too few buffers for the frame: given back, then used. */
static void
test_rx_mrg_short(void **state)
{
	uint8_t frame[400];
	struct fx *f;

	(void)state;
	fk = (typeof(fk)){0};
	f = fx_new("fakenet");
	driver_init(f, F_BASE);
	rx_post(f, 2, BUF_GPA, 100);
	frame_fill(frame, sizeof(frame), 7);
	fk_queue(frame, 300); /* 312 bytes: needs 4 */
	fk_deliver();
	assert_int_equal(used_idx(f, RXQ), 0);
	assert_int_equal(fk.rxn, 1);
	assert_false(fk.rx_on);
	rx_post(f, 2, BUF_GPA + 0x10000, 100);
	fk_deliver();
	assert_int_equal(used_idx(f, RXQ), 4);
	assert_int_equal(f->mem[BUF_GPA + 10], 4);
	assert_memory_equal(f->mem + BUF_GPA + 0x10000 + 0x1000, frame + 288,
			    12);
	fx_free(f);
}

/* ---- control queue ---- */

/* One command: readable bytes cmd[0..len), an ack byte; returns the ack. */
static uint8_t
ctrl(struct fx *f, const void *cmd, uint32_t len)
{
	uint64_t a[2] = {BUF_GPA, BUF_GPA + 0x1000};
	uint32_t l[2] = {len, 1};
	uint16_t h, u = used_idx(f, CTLQ);

	memcpy(f->mem + BUF_GPA, cmd, len);
	f->mem[BUF_GPA + 0x1000] = 0xee;
	h = chain(f, CTLQ, 1, a, l, false);
	f->q[CTLQ].desc[h].flags |= VRING_DESC_F_NEXT;
	f->q[CTLQ].desc[h].next = chain(f, CTLQ, 1, a + 1, l + 1, true);
	avail_push(f, CTLQ, h);
	kick(f, CTLQ);
	assert_int_equal(used_idx(f, CTLQ), u + 1);
	assert_int_equal(f->q[CTLQ].used->ring[u % 64].len, 1);
	return f->mem[BUF_GPA + 0x1000];
}

static void
test_ctrl(void **state)
{
	uint8_t cmd[64], got[6];
	struct fx *f;
	uint32_t n;

	(void)state;
	fk = (typeof(fk)){0};
	f = fx_new("fakenet");
	driver_init(f, F_BASE);
	assert_int_equal(ctrl(f, "\x00\x00\x01", 3), 0); /* promisc on */
	/*
	 * Each command leaves avail_event at the driver's next index
	 * (EVENT_IDX, §2.7.10): Linux notifies the control queue only when
	 * asked, so without it the second command waits forever.
	 */
	assert_int_equal(*(uint16_t *)&f->q[CTLQ].used->ring[f->q[CTLQ].qsz],
			 f->q[CTLQ].avail_idx);
	assert_int_equal(ctrl(f, "\x00\x01\x00", 3), 0); /* allmulti off */
	assert_int_equal(*(uint16_t *)&f->q[CTLQ].used->ring[f->q[CTLQ].qsz],
			 f->q[CTLQ].avail_idx);
	assert_int_equal(ctrl(f, "\x00\x02\x01", 3), 1); /* no RX_EXTRA */
	assert_int_equal(ctrl(f, "\x00\x00\x01\x01", 4), 1);
	assert_int_equal(ctrl(f, "\x00\x00", 2), 1);
	assert_int_equal(ctrl(f, "\x00", 1), 1);	     /* short header */
	assert_int_equal(ctrl(f, "\x07\x00\x00", 3), 1);     /* bad class */
	assert_int_equal(ctrl(f, "\x04\x00\x01\x00", 4), 1); /* MQ: none */
	/* MAC_TABLE_SET: two unicast, one multicast. */
	memcpy(cmd, "\x01\x00", 2);
	n = 2;
	memcpy(cmd + 2, &n, 4);
	memset(cmd + 6, 0x02, 12);
	n = 1;
	memcpy(cmd + 18, &n, 4);
	memset(cmd + 22, 0x01, 6);
	assert_int_equal(ctrl(f, cmd, 28), 0);
	assert_int_equal(ctrl(f, cmd, 29), 1); /* a byte too many */
	assert_int_equal(ctrl(f, cmd, 27), 1); /* a byte short */
	assert_int_equal(ctrl(f, cmd, 20), 1); /* no second count */
	n = 0xffffffff;			       /* counts past the buffer */
	memcpy(cmd + 2, &n, 4);
	assert_int_equal(ctrl(f, cmd, 28), 1);
	n = 4;
	memcpy(cmd + 2, &n, 4);
	assert_int_equal(ctrl(f, cmd, 28), 1);
	n = 0;
	memcpy(cmd + 2, &n, 4);
	memcpy(cmd + 6, &n, 4);
	assert_int_equal(ctrl(f, cmd, 10), 0); /* two empty tables */
	/* MAC_ADDR_SET: the config follows. */
	assert_int_equal(ctrl(f, "\x01\x01\x02\x0a\x0b\x0c\x0d\x0e", 8), 0);
	read_mac(f, got);
	assert_memory_equal(got, "\x02\x0a\x0b\x0c\x0d\x0e", 6);
	assert_int_equal(ctrl(f, "\x01\x01\x02\x0a\x0b", 5), 1);
	assert_int_equal(ctrl(f, "\x01\x05", 2), 1); /* bad command */
	assert_int_equal(stats(f).ctrl_errors, 13);
	/* No room for the ack: handed back untouched, the queue goes on. */
	{
		uint64_t a = BUF_GPA;
		uint32_t l = 3;
		uint16_t u = used_idx(f, CTLQ);

		avail_push(f, CTLQ, chain(f, CTLQ, 1, &a, &l, false));
		kick(f, CTLQ);
		assert_int_equal(used_idx(f, CTLQ), u + 1);
		assert_int_equal(f->q[CTLQ].used->ring[u].len, 0);
	}
	assert_false(status_reg(f) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(ctrl(f, "\x00\x00\x00", 3), 0);
	/* Without CTRL_RX and CTRL_MAC_ADDR their commands fail. */
	driver_init(f, F_CTRL_VQ);
	assert_int_equal(ctrl(f, "\x00\x00\x01", 3), 1);
	assert_int_equal(ctrl(f, "\x01\x01\x02\x0a\x0b\x0c\x0d\x0e", 8), 1);
	assert_int_equal(
	    ctrl(f, "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", 10), 1);
	fx_free(f);
}

static void
test_reset(void **state)
{
	uint8_t frame[100];
	struct fx *f;
	uint16_t u;

	(void)state;
	fk = (typeof(fk)){0};
	f = fx_new("fakenet");
	driver_init(f, F_BASE);
	u = tx_frame(f, 12, 60, 1);
	assert_true(wait_used(f, TXQ, u + 1));
	io_write(f, VIRTIO_PCI_STATUS, 1, 0);
	assert_int_equal(status_reg(f), 0);
	assert_int_equal(io_read(f, VIRTIO_PCI_GUEST_FEATURES, 4), 0);
	io_write(f, VIRTIO_PCI_QUEUE_SEL, 2, TXQ);
	assert_int_equal(io_read(f, VIRTIO_PCI_QUEUE_PFN, 4), 0);
	/* A notification after the reset finds no queue. */
	kick(f, TXQ);
	kick(f, RXQ);
	kick(f, CTLQ);
	kick(f, 7);
	/* And the device comes back as new. */
	driver_init(f, F_BASE & ~F_MRG);
	u = tx_frame(f, 10, 60, 2);
	assert_true(wait_used(f, TXQ, u + 1));
	assert_int_equal(fk.nsent, 2);
	assert_int_equal(fk.sentlen[1], 60);
	rx_post(f, 1, BUF_GPA, 200);
	frame_fill(frame, 100, 1);
	fk_queue(frame, 100);
	fk_deliver();
	assert_int_equal(f->q[RXQ].used->ring[0].len, 110);
	fx_free(f);
}

/* ---- the tap backend ---- */

static void
test_tap_errors(void **state)
{
	(void)state;
	/* A name no interface has: no root needed to get the line. */
	expect_init_error("tapnoexist9876",
			  "tapnoexist9876: no such interface: create it "
			  "first: ip tuntap add tapnoexist9876 mode tap user "
			  "$USER && ip link set tapnoexist9876 up");
	expect_init_error("tap0123456789abcdef", "not an interface name");
	expect_init_error("tap/../lo", "not an interface name");
}

/* Root with /dev/net/tun: a tap someone else holds is busy. */
static void
test_tap_busy(void **state)
{
	struct ifreq ifr = {0};
	char name[IFNAMSIZ], want[128];
	int fd;

	(void)state;
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0 || geteuid() != 0) {
		if (fd >= 0)
			close(fd);
		skip();
	}
	snprintf(name, sizeof(name), "tapvn%d", (int)getpid() % 100000);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		close(fd);
		skip();
	}
	/* It goes away with our fd: nothing is left on the host. */
	snprintf(want, sizeof(want), "%s: busy: another process", name);
	struct fx *f = calloc(1, sizeof(*f));
	char line[512], path[] = "/tmp/test_vnet_tap.XXXXXX";
	int efd = mkstemp(path), saved = dup(2), rc;
	FILE *fp;

	fflush(stderr);
	dup2(efd, 2);
	/* The tap backend needs an event loop, as bhyve's run has. */
	f->cfg = config_create();
	set(f->cfg, "pci.0.0.0.device", "hostbridge");
	snprintf(line, sizeof(line), "%d,virtio-net,%s", SLOT, name);
	assert_int_equal(pci_parse_slot(f->cfg, line, err, sizeof(err)), 0);
	f->ctx = vm_create_mock(MEMSIZE);
	f->m = machine_create(f->ctx, f->cfg);
	f->m->mev = mevent_create();
	rc = init_pci(f->ctx);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(efd);
	fp = fopen(path, "r");
	if (!fgets(line, sizeof(line), fp))
		line[0] = '\0';
	fclose(fp);
	unlink(path);
	fx_free(f);
	close(fd);
	assert_int_equal(rc, -1);
	if (!strstr(line, want))
		fail_msg("got '%s', want '%s'", line, want);
}

/*
 * Through slirp (no root): the guest asks who 10.0.2.2 is and slirp's
 * answer comes back into a receive buffer by way of the event loop.
 */
static void
test_slirp_arp(void **state)
{
	static const uint8_t guest[6] = {0x02, 0, 0, 0, 0, 0x0f};
	uint8_t *p, *r;
	struct fx *f;
	uint16_t u;
	char opts[128];

	(void)state;
	snprintf(opts, sizeof(opts),
		 "slirp,mac=02:00:00:00:00:0f,hostfwd=tcp:127.0.0.1:%d-:22",
		 20000 + (int)getpid() % 20000);
	f = fx_new_loop(opts);
	driver_init(f, F_BASE);
	rx_post(f, 4, BUF2_GPA, 2048);
	/* An ARP request from 10.0.2.15 for 10.0.2.2 (RFC 826). */
	p = f->mem + BUF_GPA + 0x1000;
	memset(f->mem + BUF_GPA, 0, 12);
	memset(p, 0xff, 6);
	memcpy(p + 6, guest, 6);
	memcpy(p + 12, "\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01", 10);
	memcpy(p + 22, guest, 6);
	memcpy(p + 28, "\x0a\x00\x02\x0f", 4);
	memset(p + 32, 0, 6);
	memcpy(p + 38, "\x0a\x00\x02\x02", 4);
	memset(p + 42, 0, 18);
	{
		uint64_t a[2] = {BUF_GPA, BUF_GPA + 0x1000};
		uint32_t l[2] = {12, 60};

		u = used_idx(f, TXQ);
		avail_push(f, TXQ, chain(f, TXQ, 2, a, l, false));
		kick(f, TXQ);
	}
	assert_true(wait_used(f, TXQ, u + 1));
	assert_true(wait_used(f, RXQ, 1));
	r = f->mem + BUF2_GPA + 12;
	assert_memory_equal(r, guest, 6);		    /* to us */
	assert_memory_equal(r + 12, "\x08\x06", 2);	    /* ARP */
	assert_memory_equal(r + 20, "\x00\x02", 2);	    /* a reply */
	assert_memory_equal(r + 28, "\x0a\x00\x02\x02", 4); /* from .2 */
	assert_int_equal(f->mem[BUF2_GPA + 10], 1);
	assert_int_equal(stats(f).tx_packets, 1);
	assert_int_equal(stats(f).rx_packets, 1);
	fx_free(f);
}

/*
 * A persistent tap of our own (root): made, or deleted with on false;
 * owned by uid owner unless it is -1.
 */
static bool
tap_persist_owned(const char *name, bool on, long owner)
{
	struct ifreq ifr = {0};
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), ok;

	if (fd < 0)
		return false;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	ok = ioctl(fd, TUNSETIFF, &ifr) == 0 &&
	     (owner < 0 || ioctl(fd, TUNSETOWNER, owner) == 0) &&
	     ioctl(fd, TUNSETPERSIST, on ? 1 : 0) == 0;
	close(fd);
	return ok;
}

static bool
tap_persist(const char *name, bool on)
{
	return tap_persist_owned(name, on, -1);
}

static void
link_up(const char *name)
{
	struct ifreq ifr = {0};
	char path[128];
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	FILE *fp;

	/* No IPv6 chatter on it: the test's frames are the only ones. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6",
		 name);
	fp = fopen(path, "w");
	if (fp) {
		fputs("1\n", fp);
		fclose(fp);
	}
	assert_true(s >= 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
}

#define TEST_ETHERTYPE 0x88b5 /* IEEE 802 local experimental */

/* One exchange each way between the guest and a packet socket on the tap. */
static void
tap_exchange(struct fx *f, int ps, int ifindex, unsigned int hdr_len)
{
	struct sockaddr_ll to = {
	    .sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6};
	uint8_t frame[200], got[2048], *p = f->mem + BUF_GPA + 0x1000;
	uint16_t u = used_idx(f, TXQ), r = used_idx(f, RXQ);
	struct timespec ts = {0, 1000000};
	ssize_t n;

	/* Guest to host. */
	memset(p, 0xff, 6);
	memcpy(p + 6, "\x02\x00\x00\x00\x00\x01\x88\xb5", 8);
	frame_fill(p + 14, 100, 0x42);
	{
		uint64_t a[2] = {BUF_GPA, BUF_GPA + 0x1000};
		uint32_t l[2] = {hdr_len, 114};

		memset(f->mem + BUF_GPA, 0, hdr_len);
		avail_push(f, TXQ, chain(f, TXQ, 2, a, l, false));
		kick(f, TXQ);
	}
	assert_true(wait_used(f, TXQ, u + 1));
	n = recv(ps, got, sizeof(got), 0);
	assert_int_equal(n, 114);
	assert_memory_equal(got, p, 114);
	/* Host to guest, through the event loop. */
	memcpy(frame,
	       "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"
	       "\x88\xb5",
	       14);
	frame_fill(frame + 14, 150, 0x17);
	memcpy(to.sll_addr, frame, 6);
	to.sll_protocol = htons(TEST_ETHERTYPE);
	assert_int_equal(
	    sendto(ps, frame, 164, 0, (struct sockaddr *)&to, sizeof(to)), 164);
	for (int i = 0; i < 5000 && used_idx(f, RXQ) == r; i++)
		nanosleep(&ts, NULL);
	assert_int_equal(used_idx(f, RXQ), r + 1);
	{
		struct vring_used_elem *e = &f->q[RXQ].used->ring[r];
		uint64_t at = BUF2_GPA + 0x1000ULL * e->id;

		assert_int_equal(e->len, hdr_len + 164);
		assert_memory_equal(f->mem + at + hdr_len, frame, 164);
	}
}

/* Root with /dev/net/tun: frames through a real tap, both ways. */
static void
test_tap_io(void **state)
{
	struct timeval tv = {2, 0};
	struct sockaddr_ll sll = {.sll_family = AF_PACKET};
	char name[IFNAMSIZ];
	struct fx *f;
	int ps;

	(void)state;
	snprintf(name, sizeof(name), "tapvnio%d", (int)getpid() % 100000);
	if (geteuid() != 0 || !tap_persist(name, true))
		skip();
	fk = (typeof(fk)){0};
	f = fx_new_loop(name);
	link_up(name);
	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(TEST_ETHERTYPE));
	assert_true(ps >= 0);
	sll.sll_protocol = htons(TEST_ETHERTYPE);
	sll.sll_ifindex = (int)if_nametoindex(name);
	assert_int_equal(bind(ps, (struct sockaddr *)&sll, sizeof(sll)), 0);
	setsockopt(ps, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* The tap's kernel has vnet headers: offloads are offered. */
	assert_int_equal(io_read(f, VIRTIO_PCI_HOST_FEATURES, 4) & F_OFFLOADS,
			 F_OFFLOADS);
	/* Without offloads: the header is ours to add and strip. */
	driver_init(f, F_BASE & ~F_MRG);
	rx_post(f, 8, BUF2_GPA, 2048);
	tap_exchange(f, ps, sll.sll_ifindex, 10);
	/* With them and MRG_RXBUF: the kernel takes a 12-byte header. */
	driver_init(f, F_BASE | F_OFFLOADS);
	rx_post(f, 8, BUF2_GPA, 2048);
	tap_exchange(f, ps, sll.sll_ifindex, 12);
	/*
	 * A frame that comes while the guest has no buffers waits (the tap
	 * backend has already read it) and arrives when buffers do.
	 */
	driver_init(f, F_BASE);
	{
		struct sockaddr_ll to = sll;
		uint8_t frame[64] = {0x02, 0, 0, 0, 0, 1,    0x02,
				     0,	   0, 0, 0, 2, 0x88, 0xb5};
		struct timespec ts = {0, 1000000};

		to.sll_halen = 6;
		memcpy(to.sll_addr, frame, 6);
		assert_int_equal(sendto(ps, frame, sizeof(frame), 0,
					(struct sockaddr *)&to, sizeof(to)),
				 sizeof(frame));
		for (int i = 0; i < 200 && fk.rx_toggles == 0; i++)
			nanosleep(&ts, NULL);
		nanosleep(&(struct timespec){0, 50000000}, NULL);
		assert_int_equal(used_idx(f, RXQ), 0);
		rx_post(f, 1, BUF2_GPA, 2048);
		for (int i = 0; i < 2000 && used_idx(f, RXQ) == 0; i++)
			nanosleep(&ts, NULL);
		assert_int_equal(used_idx(f, RXQ), 1);
		assert_int_equal(f->q[RXQ].used->ring[0].len, 12 + 64);
	}
	assert_int_equal(stats(f).tx_errors, 0);
	close(ps);
	fx_free(f);
	assert_true(tap_persist(name, false));
}

/* Stay root for files, lose CAP_NET_ADMIN: what a tap's non-owner has. */
static int
drop_net_admin(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	d[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
	d[CAP_NET_ADMIN / 32].permitted &= ~(1u << (CAP_NET_ADMIN % 32));
	return (int)syscall(SYS_capset, &h, d);
}

/*
 * Root with /dev/net/tun: a tap another user owns is refused to a process
 * without CAP_NET_ADMIN (a child that drops it), with what to do.
 */
static void
test_tap_eperm(void **state)
{
	char name[IFNAMSIZ], line[512], want[64];
	int pfd[2], status;
	pid_t pid;
	FILE *fp;

	(void)state;
	snprintf(name, sizeof(name), "tapvnp%d", (int)getpid() % 100000);
	if (geteuid() != 0 || !tap_persist_owned(name, true, 12345))
		skip();
	assert_int_equal(pipe(pfd), 0);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct config *cfg = config_create();
		struct vmctx *ctx;
		struct machine *m;

		dup2(pfd[1], 2);
		if (drop_net_admin() < 0)
			_exit(2);
		snprintf(line, sizeof(line), "%d,virtio-net,%s", SLOT, name);
		if (pci_parse_slot(cfg, line, err, sizeof(err)) < 0)
			_exit(3);
		ctx = vm_create_mock(MEMSIZE);
		m = machine_create(ctx, cfg);
		m->mev = mevent_create();
		_exit(init_pci(ctx) < 0 ? 0 : 1);
	}
	close(pfd[1]);
	fp = fdopen(pfd[0], "r");
	if (!fgets(line, sizeof(line), fp))
		line[0] = '\0';
	fclose(fp);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(tap_persist(name, false));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	snprintf(want, sizeof(want), "%s: permission denied", name);
	if (!strstr(line, want) || !strstr(line, "user $USER"))
		fail_msg("got '%s'", line);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_identity),
	    cmocka_unit_test(test_mac),
	    cmocka_unit_test(test_parsemac),
	    cmocka_unit_test(test_options),
	    cmocka_unit_test(test_tx),
	    cmocka_unit_test(test_tx_indirect),
	    cmocka_unit_test(test_tx_unlocked),
	    cmocka_unit_test(test_tx_doorbell),
	    cmocka_unit_test(test_tx_bad_chains),
	    cmocka_unit_test(test_rx),
	    cmocka_unit_test(test_rx_no_buffers),
	    cmocka_unit_test(test_rx_mrg_short),
	    cmocka_unit_test(test_rx_many),
	    cmocka_unit_test(test_ctrl),
	    cmocka_unit_test(test_reset),
	    cmocka_unit_test(test_tap_errors),
	    cmocka_unit_test(test_tap_busy),
	    cmocka_unit_test(test_slirp_arp),
	    cmocka_unit_test(test_tap_io),
	    cmocka_unit_test(test_tap_eperm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
