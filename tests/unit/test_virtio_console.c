/*
 * virtio-console against the mock backend (virtio 1.2 §5.3): a legacy
 * driver built here sets up the queues in mock guest memory, runs the
 * multiport handshake on the control queues, and moves bytes both ways
 * through Unix socket ports and a stdio port (fds 0 and 1 are pipes during
 * those tests). The event loop runs on its own thread, as in bhyve. Output
 * the host does not take must never block a queue notify: it is buffered
 * up to 64 KiB, then dropped and counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "inout.h"
#include "machine.h"
#include "mevent.h"
#include "pci_emul.h"
#include "virtio.h"

#define MEMSIZE (16 << 20)
#define QSZ 64
#define NQ 34
#define RING_GPA(q) (0x100000ULL + (uint64_t)(q)*0x2000)
#define CTRL_RX_GPA 0x200000ULL /* 32 buffers of 128 bytes */
#define CTRL_TX_GPA 0x210000ULL
#define DATA_GPA 0x300000ULL
#define RX_GPA 0x400000ULL
#define SLOT 5

#define F_SIZE 1u
#define F_MULTIPORT 2u
#define F_EMERG 4u

#define DEVICE_READY 0
#define DEVICE_ADD 1
#define PORT_READY 3
#define CONSOLE_PORT 4
#define RESIZE 5
#define PORT_OPEN 6
#define PORT_NAME 7

static char err[512];

struct tq {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;
	uint16_t used_seen;
	uint16_t next_desc;
};

struct fx {
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
	uint8_t *mem;
	int iobase;
	struct tq q[NQ];
	pthread_t loop;
	bool looping;
	/* stdio tests: fds 0 and 1 are pipes; the test holds the far ends */
	int saved0, saved1, in_w, out_r, out_w;
	uint16_t ctrl_tx_n;
};

struct msg {
	uint32_t id;
	uint16_t event, value;
	char extra[128];
	uint32_t len;
};

/* ---- fixture ---- */

static void
sock_path(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/tmp/test_vcon.%d.%s", (int)getpid(), tag);
}

static void *
loop_main(void *arg)
{
	mevent_dispatch(arg);
	return NULL;
}

/* A VM with the device at SLOT, "-s 5,virtio-console,OPTS" plus kv; rc. */
static int
fx_init(struct fx *f, const char *opts, const char *kv)
{
	char s[2048];

	f->cfg = config_create();
	assert_int_equal(config_set(f->cfg, "pci.0.0.0.device", "hostbridge",
				    err, sizeof(err)),
			 0);
	snprintf(s, sizeof(s), "%d,virtio-console%s%s", SLOT, opts ? "," : "",
		 opts ? opts : "");
	assert_int_equal(pci_parse_slot(f->cfg, s, err, sizeof(err)), 0);
	if (kv) {
		char *dup = strdup(kv), *save = NULL;
		for (char *t = strtok_r(dup, " ", &save); t;
		     t = strtok_r(NULL, " ", &save))
			assert_int_equal(
			    config_set_kv(f->cfg, t, err, sizeof(err)), 0);
		free(dup);
	}
	f->ctx = vm_create_mock(MEMSIZE);
	assert_non_null(f->ctx);
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	f->m->mev = mevent_create(); /* bhyverun makes it; the machine frees */
	assert_non_null(f->m->mev);
	f->mem = vm_map_gpa(f->ctx, 0, MEMSIZE);
	return init_pci(f->ctx);
}

static void
fx_start(struct fx *f)
{
	f->iobase = (int)(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x10, 4) & ~3u);
	assert_int_equal(pthread_create(&f->loop, NULL, loop_main, f->m->mev),
			 0);
	f->looping = true;
}

static struct fx *
fx_alloc(void)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->saved0 = f->saved1 = -1;
	f->in_w = f->out_r = f->out_w = -1;
	return f;
}

static struct fx *
fx_new(const char *opts, const char *kv)
{
	struct fx *f = fx_alloc();

	assert_int_equal(fx_init(f, opts, kv), 0);
	fx_start(f);
	return f;
}

/* fds 0 and 1 become pipes (before the device opens stdio). */
static void
stdio_pipes(struct fx *f, int pipe_size)
{
	int in[2], out[2];

	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	if (pipe_size)
		assert_true(fcntl(out[1], F_SETPIPE_SZ, pipe_size) >= 0);
	fflush(stdout);
	f->saved0 = dup(0);
	f->saved1 = dup(1);
	dup2(in[0], 0);
	dup2(out[1], 1);
	close(in[0]);
	f->in_w = in[1];
	f->out_r = out[0];
	f->out_w = out[1];
	fcntl(f->out_w, F_SETFL, O_NONBLOCK);
}

static void
stdio_restore(struct fx *f)
{
	if (f->saved0 < 0)
		return;
	dup2(f->saved0, 0);
	dup2(f->saved1, 1);
	close(f->saved0);
	close(f->saved1);
	close(f->in_w);
	close(f->out_r);
	if (f->out_w >= 0)
		close(f->out_w);
	f->saved0 = -1;
}

/* stderr into a file while capturing. */
struct cap {
	int saved;
	char file[64];
};

static void
capture_start(struct cap *c)
{
	int fd;

	strcpy(c->file, "/tmp/test_vcon_err.XXXXXX");
	fd = mkstemp(c->file);
	assert_true(fd >= 0);
	fflush(stderr);
	c->saved = dup(2);
	dup2(fd, 2);
	close(fd);
}

/* What went to stderr since capture_start, in buf. */
static void
capture_end(struct cap *c, char *buf, size_t len)
{
	FILE *fp;
	size_t n;

	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	fp = fopen(c->file, "r");
	assert_non_null(fp);
	n = fread(buf, 1, len - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	unlink(c->file);
}

static void
fx_free(struct fx *f)
{
	if (f->looping) {
		mevent_stop(f->m->mev);
		pthread_join(f->loop, NULL);
	}
	if (f->m)
		machine_free(f->m);
	if (f->ctx)
		vm_close(f->ctx);
	config_free(f->cfg);
	stdio_restore(f);
	free(f);
}

static int
count_lines(const char *s, const char *needle)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, needle)); p++)
		n++;
	return n;
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

/* The legacy bring-up (§3.1.1) with nq queues set up. */
static void
driver_init(struct fx *f, uint32_t features, int nq)
{
	uint64_t used_off = (16 * QSZ + 2 * (3 + QSZ) + 4095) & ~4095ULL;

	io_write(f, VIRTIO_PCI_STATUS, 1, 0);
	io_write(f, VIRTIO_PCI_STATUS, 1, 1 | 2);
	io_write(f, VIRTIO_PCI_GUEST_FEATURES, 4,
		 features & io_read(f, VIRTIO_PCI_HOST_FEATURES, 4));
	for (int i = 0; i < nq; i++) {
		uint8_t *base = f->mem + RING_GPA(i);

		io_write(f, VIRTIO_PCI_QUEUE_SEL, 2, (uint32_t)i);
		assert_int_equal(io_read(f, VIRTIO_PCI_QUEUE_NUM, 2), QSZ);
		memset(base, 0, 0x2000);
		f->q[i] = (struct tq){(struct vring_desc *)base,
				      (struct vring_avail *)(base + 16 * QSZ),
				      (struct vring_used *)(base + used_off)};
		io_write(f, VIRTIO_PCI_QUEUE_PFN, 4,
			 (uint32_t)(RING_GPA(i) >> 12));
	}
	io_write(f, VIRTIO_PCI_STATUS, 1, 1 | 2 | 4);
}

struct buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* One chain of n buffers on queue q, without a notify; its head. */
static uint16_t
post(struct fx *f, int q, const struct buf *b, int n)
{
	struct tq *t = &f->q[q];
	uint16_t head = t->next_desc;

	for (int i = 0; i < n; i++) {
		uint16_t d = (uint16_t)((head + i) % QSZ);
		t->desc[d] = (struct vring_desc){
		    b[i].gpa, b[i].len,
		    (uint16_t)((b[i].write ? VRING_DESC_F_WRITE : 0) |
			       (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
		    (uint16_t)((d + 1) % QSZ)};
	}
	t->next_desc = (uint16_t)((head + n) % QSZ);
	t->avail->ring[t->avail_idx % QSZ] = head;
	t->avail_idx++;
	__atomic_store_n(&t->avail->idx, t->avail_idx, __ATOMIC_RELEASE);
	return head;
}

static void
kick(struct fx *f, int q)
{
	io_write(f, VIRTIO_PCI_QUEUE_NOTIFY, 2, (uint32_t)q);
}

static uint16_t
used_idx(struct fx *f, int q)
{
	return __atomic_load_n(&f->q[q].used->idx, __ATOMIC_ACQUIRE);
}

/* Wait up to 5 s for queue q's used index to reach want. */
static bool
wait_used(struct fx *f, int q, uint16_t want)
{
	struct timespec ts = {0, 1000000};

	for (int i = 0; i < 5000 && used_idx(f, q) != want; i++)
		nanosleep(&ts, NULL);
	(void)io_read(f, VIRTIO_PCI_QUEUE_SEL, 2); /* the device's lock */
	return used_idx(f, q) == want;
}

/* n control receive buffers of 128 bytes, and a notify. */
static void
ctrl_rx_post(struct fx *f, int n)
{
	for (int i = 0; i < n; i++) {
		struct buf b = {CTRL_RX_GPA + 128 * (uint64_t)(i % 32), 128,
				true};
		post(f, 2, &b, 1);
	}
	kick(f, 2);
}

/* The next control message from the device, waiting up to 5 s. */
static bool
ctrl_next(struct fx *f, struct msg *m, int wait_ms)
{
	struct tq *t = &f->q[2];
	struct timespec ts = {0, 1000000};
	struct vring_used_elem e;
	const uint8_t *p;

	for (int i = 0; i < wait_ms && used_idx(f, 2) == t->used_seen; i++)
		nanosleep(&ts, NULL);
	if (used_idx(f, 2) == t->used_seen)
		return false;
	e = t->used->ring[t->used_seen % QSZ];
	t->used_seen++;
	assert_true(e.len >= 8 && e.len <= 128);
	p = f->mem + t->desc[e.id].addr;
	memset(m, 0, sizeof(*m));
	memcpy(&m->id, p, 4);
	memcpy(&m->event, p + 4, 2);
	memcpy(&m->value, p + 6, 2);
	m->len = e.len;
	memcpy(m->extra, p + 8, e.len - 8);
	return true;
}

static void
expect_msg_at(struct fx *f, uint32_t id, uint16_t event, uint16_t value,
	      const char *name, int line)
{
	struct msg m;

	if (!ctrl_next(f, &m, 5000))
		fail_msg("line %d: no control message (want event %u id %u)",
			 line, event, id);
	assert_int_equal(m.event, event);
	assert_int_equal(m.id, id);
	assert_int_equal(m.value, value);
	if (name)
		assert_string_equal(m.extra, name);
}

#define expect_msg(f, id, ev, val, name)                                       \
	expect_msg_at(f, id, ev, val, name, __LINE__)

static void
expect_no_msg(struct fx *f)
{
	struct msg m;

	assert_false(ctrl_next(f, &m, 50));
}

/* A control message from the driver, len bytes of it. */
static void
ctrl_send_len(struct fx *f, uint32_t id, uint16_t event, uint16_t value,
	      uint32_t len)
{
	uint64_t gpa = CTRL_TX_GPA + 16 * (uint64_t)(f->ctrl_tx_n++ % 512);
	uint8_t *p = f->mem + gpa;
	struct buf b = {gpa, len, false};
	uint16_t u = used_idx(f, 3);

	memcpy(p, &id, 4);
	memcpy(p + 4, &event, 2);
	memcpy(p + 6, &value, 2);
	post(f, 3, &b, 1);
	kick(f, 3);
	assert_int_equal(used_idx(f, 3), (uint16_t)(u + 1));
}

static void
ctrl_send(struct fx *f, uint32_t id, uint16_t event, uint16_t value)
{
	ctrl_send_len(f, id, event, value, 8);
}

/* Guest -> host on queue q: one chain of the given pieces. */
static void
tx(struct fx *f, int q, const char *const *pieces, int n)
{
	struct buf b[8];
	uint64_t gpa = DATA_GPA;
	uint16_t u = used_idx(f, q);

	for (int i = 0; i < n; i++) {
		size_t l = strlen(pieces[i]);
		memcpy(f->mem + gpa, pieces[i], l);
		b[i] = (struct buf){gpa, (uint32_t)l, false};
		gpa += 4096;
	}
	post(f, q, b, n);
	kick(f, q);
	/* Whole chains per notify, at once: the used entry is there now. */
	assert_int_equal(used_idx(f, q), (uint16_t)(u + 1));
	assert_int_equal(f->q[q].used->ring[u % QSZ].len, 0);
}

/* Read exactly len bytes from fd within 5 s. */
static void
read_exact(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;

		assert_int_equal(poll(&p, 1, 5000), 1);
		r = read(fd, (uint8_t *)buf + got, len - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
}

static bool
readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, ms) == 1;
}

static int
sock_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sun.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/* Post one receive buffer of len bytes on q at gpa; its head. */
static uint16_t
rx_post(struct fx *f, int q, uint64_t gpa, uint32_t len)
{
	struct buf b = {gpa, len, true};
	uint16_t head = post(f, q, &b, 1);

	kick(f, q);
	return head;
}

/* ---- identity and config ---- */

static void
test_identity(void **state)
{
	char a[108];
	char opts[160];
	struct fx *f;

	(void)state;
	sock_path(a, sizeof(a), "id");
	snprintf(opts, sizeof(opts), "console=%s", a);
	f = fx_new(opts, NULL);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0, 2), 0x1af4);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 2, 2), 0x1003);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 8, 1), 0);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x0b, 1), 0x07);
	assert_int_equal(pci_cfg_read(f->ctx, 0, SLOT, 0, 0x2e, 2), 3);
	assert_int_equal(io_read(f, VIRTIO_PCI_HOST_FEATURES, 4),
			 F_SIZE | F_MULTIPORT | F_EMERG | (1u << 29));
	/* §5.3.4: cols, rows, max_nr_ports, after the registers. */
	assert_int_equal(io_read(f, 20, 2), 80);
	assert_int_equal(io_read(f, 22, 2), 25);
	assert_int_equal(io_read(f, 24, 4), 16);
	assert_int_equal(io_read(f, 28, 4), 0);
	assert_int_equal(io_read(f, 32, 1), 0xff); /* past the config */
	/* 2 queues per port and 2 for control. */
	io_write(f, VIRTIO_PCI_QUEUE_SEL, 2, NQ - 1);
	assert_int_equal(io_read(f, VIRTIO_PCI_QUEUE_NUM, 2), QSZ);
	io_write(f, VIRTIO_PCI_QUEUE_SEL, 2, NQ);
	assert_int_equal(io_read(f, VIRTIO_PCI_QUEUE_NUM, 2), 0);
	/* The config is read-only but for emerg_wr. */
	io_write(f, 20, 2, 1);
	assert_int_equal(io_read(f, 20, 2), 80);
	fx_free(f);
	/* The socket is gone with the device. */
	assert_int_equal(access(a, F_OK), -1);
}

/* ---- the multiport handshake, and a socket port ---- */

static void
test_handshake(void **state)
{
	char a[108], b[108], opts[300], buf[64];
	const char *hello[] = {"hello, ", "wor", "ld"};
	struct fx *f;
	int c, c2;
	uint16_t u;

	(void)state;
	sock_path(a, sizeof(a), "con");
	sock_path(b, sizeof(b), "agent");
	snprintf(opts, sizeof(opts), "agent=%s,console=%s", b, a);
	f = fx_new(opts, NULL);
	driver_init(f, F_MULTIPORT, 6);
	ctrl_rx_post(f, 32);
	expect_no_msg(f);
	/* §5.3.6.1: DEVICE_READY, then a DEVICE_ADD per port. */
	ctrl_send(f, 0, DEVICE_READY, 1);
	expect_msg(f, 0, DEVICE_ADD, 0, NULL);
	expect_msg(f, 1, DEVICE_ADD, 0, NULL);
	expect_no_msg(f);
	/* Port 0 is the console port: Linux makes it hvc0. */
	ctrl_send(f, 0, PORT_READY, 1);
	expect_msg(f, 0, CONSOLE_PORT, 1, NULL);
	expect_msg(f, 0, PORT_NAME, 0, "console");
	expect_no_msg(f); /* nobody connected: not open */
	ctrl_send(f, 1, PORT_READY, 1);
	expect_msg(f, 1, PORT_NAME, 0, "agent");
	expect_no_msg(f);
	ctrl_send(f, 1, PORT_OPEN, 1);

	/* A client: the guest hears the port opened. */
	c = sock_connect(b);
	expect_msg(f, 1, PORT_OPEN, 1, NULL);
	/* A second client at the same time is turned away. */
	c2 = sock_connect(b);
	assert_true(readable(c2, 5000));
	assert_int_equal(read(c2, buf, sizeof(buf)), 0);
	close(c2);

	/* Guest -> host: a chain of three buffers, in one piece. */
	tx(f, 5, hello, 3);
	read_exact(c, buf, 12);
	assert_memory_equal(buf, "hello, world", 12);
	/* Host -> guest, into the port's receive buffer. */
	u = used_idx(f, 4);
	rx_post(f, 4, RX_GPA, 64);
	assert_int_equal(write(c, "ping", 4), 4);
	assert_true(wait_used(f, 4, (uint16_t)(u + 1)));
	assert_int_equal(f->q[4].used->ring[u % QSZ].len, 4);
	assert_memory_equal(f->mem + RX_GPA, "ping", 4);
	/* Data first, buffers later: it waits in the socket. */
	assert_int_equal(write(c, "pong!", 5), 5);
	usleep(50000);
	assert_int_equal(used_idx(f, 4), (uint16_t)(u + 1));
	rx_post(f, 4, RX_GPA + 64, 64);
	assert_true(wait_used(f, 4, (uint16_t)(u + 2)));
	assert_int_equal(f->q[4].used->ring[(u + 1) % QSZ].len, 5);
	assert_memory_equal(f->mem + RX_GPA + 64, "pong!", 5);
	/*
	 * The client leaves: the guest hears it (a departure is read like
	 * data, so with a receive buffer posted); a new one may come.
	 */
	rx_post(f, 4, RX_GPA + 128, 64);
	close(c);
	expect_msg(f, 1, PORT_OPEN, 0, NULL);
	c = sock_connect(b);
	expect_msg(f, 1, PORT_OPEN, 1, NULL);
	tx(f, 5, hello, 1);
	read_exact(c, buf, 7);
	assert_memory_equal(buf, "hello, ", 7);
	close(c);
	expect_msg(f, 1, PORT_OPEN, 0, NULL);
	/* Output with no client goes nowhere, at once. */
	tx(f, 5, hello, 2);

	/* A reset starts the guest's side over. */
	driver_init(f, F_MULTIPORT, 6);
	ctrl_rx_post(f, 8);
	f->q[2].used_seen = 0;
	ctrl_send(f, 0, DEVICE_READY, 1);
	expect_msg(f, 0, DEVICE_ADD, 0, NULL);
	expect_msg(f, 1, DEVICE_ADD, 0, NULL);
	fx_free(f);
}

/*
 * EVENT_IDX (§2.7.10): the driver notifies a queue only when its index
 * passes avail_event, so the device leaves avail_event at the driver's
 * index after each batch, and on a receive queue when it runs out of
 * buffers with something to deliver. Linux's second control message (the
 * console port's PORT_READY) otherwise spun forever in __send_control_msg.
 */
static uint16_t
avail_event(struct fx *f, int q)
{
	return __atomic_load_n((uint16_t *)&f->q[q].used->ring[QSZ],
			       __ATOMIC_ACQUIRE);
}

static void
test_event_idx(void **state)
{
	char a[108], b[108], opts[300];
	const char *hello[] = {"hello"};
	struct fx *f;

	(void)state;
	sock_path(a, sizeof(a), "eicon");
	sock_path(b, sizeof(b), "eiagent");
	snprintf(opts, sizeof(opts), "agent=%s,console=%s", b, a);
	f = fx_new(opts, NULL);
	driver_init(f, F_MULTIPORT | VIRTIO_RING_F_EVENT_IDX, 6);
	/* One buffer for two DEVICE_ADDs: the device waits for the next. */
	ctrl_rx_post(f, 1);
	ctrl_send(f, 0, DEVICE_READY, 1);
	assert_int_equal(avail_event(f, 3), f->q[3].avail_idx);
	expect_msg(f, 0, DEVICE_ADD, 0, NULL);
	assert_int_equal(avail_event(f, 2), f->q[2].avail_idx);
	ctrl_rx_post(f, 8);
	expect_msg(f, 1, DEVICE_ADD, 0, NULL);
	ctrl_send(f, 0, PORT_READY, 1);
	assert_int_equal(avail_event(f, 3), f->q[3].avail_idx);
	expect_msg(f, 0, CONSOLE_PORT, 1, NULL);
	ctrl_send(f, 1, PORT_READY, 1);
	assert_int_equal(avail_event(f, 3), f->q[3].avail_idx);
	/* A port's transmit queue, twice. */
	tx(f, 5, hello, 1);
	assert_int_equal(avail_event(f, 5), f->q[5].avail_idx);
	tx(f, 5, hello, 1);
	assert_int_equal(avail_event(f, 5), f->q[5].avail_idx);
	fx_free(f);
}

/* ---- stdio ---- */

static void
test_stdio(void **state)
{
	const char *pieces[] = {"Linux ", "version ", "6.1\r\n"};
	struct fx *f = fx_alloc();
	char buf[64];
	uint16_t u;

	(void)state;
	stdio_pipes(f, 0);
	assert_int_equal(fx_init(f, "console=stdio", NULL), 0);
	fx_start(f);
	/* No MULTIPORT: port 0 alone, the console (§5.3.6). */
	driver_init(f, 0, 2);
	tx(f, 1, pieces, 3);
	read_exact(f->out_r, buf, 19);
	assert_memory_equal(buf, "Linux version 6.1\r\n", 19);
	/* Keys typed before the guest has buffers wait; then arrive. */
	assert_int_equal(write(f->in_w, "root\r", 5), 5);
	u = used_idx(f, 0);
	rx_post(f, 0, RX_GPA, 3);
	assert_true(wait_used(f, 0, (uint16_t)(u + 1)));
	assert_int_equal(f->q[0].used->ring[u % QSZ].len, 3);
	rx_post(f, 0, RX_GPA + 64, 64);
	assert_true(wait_used(f, 0, (uint16_t)(u + 2)));
	assert_int_equal(f->q[0].used->ring[(u + 1) % QSZ].len, 2);
	assert_memory_equal(f->mem + RX_GPA, "roo", 3);
	assert_memory_equal(f->mem + RX_GPA + 64, "t\r", 2);
	/* With a buffer posted, the event loop delivers by itself. */
	rx_post(f, 0, RX_GPA + 128, 64);
	assert_int_equal(write(f->in_w, "ls\r", 3), 3);
	assert_true(wait_used(f, 0, (uint16_t)(u + 3)));
	assert_memory_equal(f->mem + RX_GPA + 128, "ls\r", 3);
	/* emerg_wr (§5.3.4) needs its feature. */
	io_write(f, 28, 4, 'Z');
	assert_false(readable(f->out_r, 50));
	driver_init(f, F_EMERG, 2);
	io_write(f, 28, 4, 'Z');
	read_exact(f->out_r, buf, 1);
	assert_int_equal(buf[0], 'Z');
	fx_free(f);
}

/* stdio on a socket (bhyve run by a supervisor over a socketpair). */
static void
test_stdio_socket(void **state)
{
	const char *hi[] = {"hi\r\n"};
	struct fx *f = fx_alloc();
	char buf[16];
	int sv[2];
	uint16_t u;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fflush(stdout);
	f->saved0 = dup(0);
	f->saved1 = dup(1);
	dup2(sv[1], 0);
	dup2(sv[1], 1);
	close(sv[1]);
	f->in_w = sv[0];
	f->out_r = dup(sv[0]);
	f->out_w = -1;
	assert_int_equal(fx_init(f, "console=stdio", NULL), 0);
	fx_start(f);
	driver_init(f, 0, 2);
	tx(f, 1, hi, 1);
	read_exact(sv[0], buf, 4);
	assert_memory_equal(buf, "hi\r\n", 4);
	/* A buffer and nothing to read: the notify returns at once. */
	u = used_idx(f, 0);
	rx_post(f, 0, RX_GPA, 16);
	assert_int_equal(write(sv[0], "ok", 2), 2);
	assert_true(wait_used(f, 0, (uint16_t)(u + 1)));
	assert_memory_equal(f->mem + RX_GPA, "ok", 2);
	fx_free(f);
}

/* A pipe nobody reads: buffered to 64 KiB, then dropped, never waited on. */
static void
test_stdio_full(void **state)
{
	struct fx *f = fx_alloc();
	static uint8_t big[3 * 40000], got[65536];
	char filler[4096], log[4096];
	struct cap cap;
	struct buf b[3];
	uint16_t u;
	ssize_t w;
	size_t fill = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + i / 251);
	stdio_pipes(f, 4096);
	while ((w = write(f->out_w, filler, sizeof(filler))) > 0)
		fill += (size_t)w;
	assert_true(fill > 0);
	capture_start(&cap);
	assert_int_equal(fx_init(f, "console=stdio", NULL), 0);
	fx_start(f);
	driver_init(f, 0, 2);
	alarm(20); /* a notify that blocks fails the test, not hangs it */
	memcpy(f->mem + DATA_GPA, big, sizeof(big));
	for (int i = 0; i < 3; i++)
		b[i] =
		    (struct buf){DATA_GPA + 40000 * (uint64_t)i, 40000, false};
	u = used_idx(f, 1);
	post(f, 1, b, 3);
	kick(f, 1);
	assert_int_equal(used_idx(f, 1), (uint16_t)(u + 1));
	/* And more, dropped whole, said no second time. */
	post(f, 1, b, 1);
	kick(f, 1);
	assert_int_equal(used_idx(f, 1), (uint16_t)(u + 2));
	alarm(0);
	/* The reader comes back: the filler, then the first 64 KiB. */
	for (size_t done = 0; done < fill; done += sizeof(filler) < fill - done
						       ? sizeof(filler)
						       : fill - done)
		read_exact(f->out_r, filler,
			   sizeof(filler) < fill - done ? sizeof(filler)
							: fill - done);
	read_exact(f->out_r, got, sizeof(got));
	assert_memory_equal(got, big, sizeof(got));
	assert_false(readable(f->out_r, 100));
	/* Later output flows again. */
	const char *after[] = {"after"};
	tx(f, 1, after, 1);
	read_exact(f->out_r, got, 5);
	assert_memory_equal(got, "after", 5);
	fx_free(f);
	capture_end(&cap, log, sizeof(log));
	assert_int_equal(count_lines(log, "is dropped (said once)"), 1);
	assert_non_null(strstr(log,
			       "port console: the host side is not "
			       "reading: output beyond 64 KiB is dropped"));
	assert_non_null(
	    strstr(log, "port console: 94464 bytes of output were dropped"));
}

/* ---- a hostile driver's control messages ---- */

static void
test_bad_control(void **state)
{
	char a[108], b[108], opts[300], log[8192];
	struct cap cap;
	struct fx *f;
	struct msg m;
	int n = 0;

	(void)state;
	sock_path(a, sizeof(a), "bc0");
	sock_path(b, sizeof(b), "bc1");
	snprintf(opts, sizeof(opts), "console=%s,agent=%s", a, b);
	f = fx_new(opts, NULL);
	driver_init(f, F_MULTIPORT, 6);
	ctrl_rx_post(f, 32);
	capture_start(&cap);
	/* Before DEVICE_READY, a port is not there to be ready. */
	ctrl_send(f, 1, PORT_READY, 1);
	ctrl_send(f, 0, DEVICE_READY, 1);
	expect_msg(f, 0, DEVICE_ADD, 0, NULL);
	expect_msg(f, 1, DEVICE_ADD, 0, NULL);
	/* Said twice: no second round of DEVICE_ADDs. */
	ctrl_send(f, 0, DEVICE_READY, 1);
	/* Short, unknown ids, unknown events, device-only events, open
	 * before ready, a readable-and-writable chain: none answered. */
	for (int i = 0; i < 100; i++) {
		ctrl_send_len(f, 1, PORT_READY, 1, (uint32_t)(i % 8));
		ctrl_send(f, 99 + (uint32_t)i, PORT_READY, 1);
		ctrl_send(f, 0xffffffffu, PORT_OPEN, 1);
		ctrl_send(f, 1, (uint16_t)(42 + i), 1);
		ctrl_send(f, 1, PORT_NAME, 1);
		ctrl_send(f, 1, PORT_OPEN, 1);
	}
	expect_no_msg(f);
	capture_end(&cap, log, sizeof(log));
	/* One line for all of them (rate-limited), the queue alive. */
	assert_int_equal(count_lines(log, "ignored a control message"), 1);
	assert_int_equal(count_lines(log, "\n"), 1);
	assert_false(io_read(f, VIRTIO_PCI_STATUS, 1) & 0x40);
	/* The handshake still works. */
	ctrl_send(f, 1, PORT_READY, 1);
	expect_msg(f, 1, PORT_NAME, 0, "agent");
	/* A driver that never reads its control queue: the replies are
	 * bounded (128 kept), the rest dropped, no crash. */
	for (int i = 0; i < 300; i++) {
		ctrl_send(f, 1, PORT_READY, 0);
		ctrl_send(f, 1, PORT_READY, 1);
	}
	capture_start(&cap);
	ctrl_rx_post(f, 32);
	while (ctrl_next(f, &m, 20)) {
		assert_int_equal(m.event, PORT_NAME);
		n++;
		if (n % 32 == 0)
			ctrl_rx_post(f, 32);
	}
	capture_end(&cap, log, sizeof(log));
	/* 29 buffers were still posted; then the 128 kept. */
	assert_int_equal(n, 29 + 128);
	fx_free(f);
}

/* ---- options ---- */

/* Init with stderr captured: rc, and the first line in line. */
static int
init_capture(const char *opts, const char *kv, char *line, size_t len)
{
	struct fx *f = fx_alloc();
	struct cap cap;
	char *nl;
	int rc;

	capture_start(&cap);
	rc = fx_init(f, opts, kv);
	fx_free(f);
	capture_end(&cap, line, len);
	nl = strchr(line, '\n');
	if (nl)
		nl[1] = '\0';
	return rc;
}

static void
expect_init_error(const char *opts, const char *kv, const char *want)
{
	char line[512];

	if (init_capture(opts, kv, line, sizeof(line)) != -1)
		fail_msg("'%s' was accepted", opts ? opts : kv);
	if (!strstr(line, want))
		fail_msg("'%s': got '%s', want '%s'", opts ? opts : kv, line,
			 want);
	assert_int_equal(count_lines(line, "\n"), 1);
	assert_non_null(strstr(line, "virtio-console at 0:5:0: "));
}

static void
test_options(void **state)
{
	struct config *cfg = config_create();
	char a[108], b[108], opts[300], kv[400], many[1024];
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct fx *f;
	int fd;

	(void)state;
	sock_path(a, sizeof(a), "oa");
	sock_path(b, sizeof(b), "ob");
	/* bhyve's -s syntax into bhyve_config(5)'s port.N.{name,path}. */
	assert_int_equal(
	    pci_parse_slot(cfg, "5,virtio-console,console=stdio,org.x=/s", err,
			   sizeof(err)),
	    0);
	assert_string_equal(config_get(cfg, "pci.0.5.0.port.0.name"),
			    "console");
	assert_string_equal(config_get(cfg, "pci.0.5.0.port.0.path"), "stdio");
	assert_string_equal(config_get(cfg, "pci.0.5.0.port.1.name"), "org.x");
	assert_string_equal(config_get(cfg, "pci.0.5.0.port.1.path"), "/s");
	assert_int_equal(
	    pci_parse_slot(cfg, "6,virtio-console,port1", err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "'port1' is not NAME=PATH"));
	config_free(cfg);

	/* The config file's spellings: port.N.{name,path}, port.NAME.path. */
	snprintf(kv, sizeof(kv),
		 "pci.0.5.0.port.agent.path=%s pci.0.5.0.port.7.name=console "
		 "pci.0.5.0.port.7.path=%s",
		 a, b);
	f = fx_new(NULL, kv);
	driver_init(f, F_MULTIPORT, 4);
	ctrl_rx_post(f, 8);
	ctrl_send(f, 0, DEVICE_READY, 1);
	expect_msg(f, 0, DEVICE_ADD, 0, NULL);
	expect_msg(f, 1, DEVICE_ADD, 0, NULL);
	ctrl_send(f, 1, PORT_READY, 1);
	expect_msg(f, 1, PORT_NAME, 0, "agent");
	fx_free(f);

	/* A stale socket (nobody listens) is replaced. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sun.sun_path, a);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	snprintf(opts, sizeof(opts), "p=%s", a);
	f = fx_new(opts, NULL);
	fx_free(f);
	/* One that is in use is not. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 1), 0);
	expect_init_error(opts, NULL,
			  "port p: "
			  "/tmp/test_vcon.");
	expect_init_error(opts, NULL, "is in use: another process listens");
	close(fd);
	unlink(a);
	/* Neither is a file. */
	fd = open(a, O_CREAT | O_WRONLY, 0600);
	close(fd);
	expect_init_error(opts, NULL, "exists and is not a socket");
	unlink(a);
	expect_init_error("p=/nonexistent/dir/sock", NULL,
			  "cannot listen on /nonexistent/dir/sock");

	/* stdio has one owner: a second port, or a com port. */
	expect_init_error("console=stdio,other=stdio", NULL,
			  "port other: stdio is used by another "
			  "virtio-console port");
	expect_init_error("console=stdio", "lpc.com1.path=stdio",
			  "port console: stdio is already lpc.com1's (-l "
			  "com1,stdio)");
	snprintf(opts, sizeof(opts), "a=%s,a=%s", a, b);
	expect_init_error(opts, NULL, "two ports are named 'a'");
	unlink(a);
	expect_init_error("a/b=/tmp/x", NULL, "port name 'a/b'");
	expect_init_error(NULL, "pci.0.5.0.bogus=1", "unknown option 'bogus'");
	expect_init_error(NULL, "pci.0.5.0.port.3.name=x",
			  "port.3 needs a name and a path");
	/* 16 ports: the console and 15 more. */
	many[0] = '\0';
	for (int i = 0; i < 16; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
			 "%sp%d=/tmp/test_vcon.%d.m%d", i ? "," : "", i,
			 (int)getpid(), i);
	expect_init_error(many, NULL, "more than 15 ports besides console");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_identity),
	    cmocka_unit_test(test_handshake),
	    cmocka_unit_test(test_event_idx),
	    cmocka_unit_test(test_stdio),
	    cmocka_unit_test(test_stdio_socket),
	    cmocka_unit_test(test_stdio_full),
	    cmocka_unit_test(test_bad_control),
	    cmocka_unit_test(test_options),
	};

	signal(SIGPIPE, SIG_IGN); /* as bhyve */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
