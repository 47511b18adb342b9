/*
 * virtio-console (virtio 1.2 §5.3) on the legacy PCI transport, with
 * bhyve(8)'s syntax:
 *
 *   -s SLOT,virtio-console,NAME=PATH[,NAME=PATH...]
 *
 * or pci.B.S.F.port.N.{name,path} (bhyve_config(5)); pci.B.S.F.port.NAME.path
 * is read too, the node's name then being the port's. Each port's PATH is a
 * Unix socket bhyve listens on (one client at a time, raw bytes) or, our
 * addition, "stdio": bhyve's own stdin/stdout, like -l com1,stdio (one user
 * of stdio per process). A port named "console" is the console port: the
 * guest's port 0, announced with CONSOLE_PORT, so Linux makes it hvc0:
 *
 *   -s 5,virtio-console,console=stdio     (guest: console=hvc0)
 *
 * Other ports get ids 1, 2, ... in their order and appear in a Linux guest
 * as /dev/virtio-ports/NAME.
 *
 * Threads: vCPUs notify queues; the event loop accepts clients, reads input
 * and writes buffered output. Everything runs under the device's mutex and
 * no host fd is ever waited on: output a host fd will not take now is
 * buffered (VTCON_OUTBUF per port), then dropped and counted, said once.
 * Input is read only while the guest has receive buffers posted; without
 * them the fd is left alone until the guest adds some (so a client that
 * hangs up then is noticed when they come; Linux keeps buffers posted).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "machine.h"
#include "mevent.h"
#include "pci_emul.h"
#include "virtio.h"
#include "sandbox.h"

#define VTCON_RINGSZ 64
#define VTCON_MAXPORTS 16 /* max_nr_ports, the console's port 0 included */
#define VTCON_MAXQ (2 * VTCON_MAXPORTS + 2)
#define VTCON_OUTBUF (64 * 1024) /* host output held per port */
#define VTCON_NAMEMAX 64	 /* a port's name, NUL included */
#define VTCON_CTRL_PENDING 128	 /* control messages waiting for buffers */
#define VTCON_WARN_NS (10LL * 1000000000) /* between guest-error messages */

_Static_assert(VTCON_CTRL_PENDING >= 4 * VTCON_MAXPORTS,
	       "a handshake's messages for every port fit");

/* Feature bits (§5.3.3). */
#define VTCON_F_SIZE (1u << 0)
#define VTCON_F_MULTIPORT (1u << 1)
#define VTCON_F_EMERG_WRITE (1u << 2)
#define VTCON_S_HOSTCAPS                                                       \
	(VTCON_F_SIZE | VTCON_F_MULTIPORT | VTCON_F_EMERG_WRITE |              \
	 VIRTIO_RING_F_EVENT_IDX)

/* Control events (§5.3.6.2). */
#define VTCON_DEVICE_READY 0
#define VTCON_DEVICE_ADD 1
#define VTCON_DEVICE_REMOVE 2
#define VTCON_PORT_READY 3
#define VTCON_CONSOLE_PORT 4
#define VTCON_RESIZE 5
#define VTCON_PORT_OPEN 6
#define VTCON_PORT_NAME 7

/* Device configuration (§5.3.4). */
struct vtcon_config {
	uint16_t cols;
	uint16_t rows;
	uint32_t max_nr_ports;
	uint32_t emerg_wr;
} __attribute__((packed));

/* A control message (§5.3.6.2); PORT_NAME's name and RESIZE's size follow. */
struct vtcon_ctrl {
	uint32_t id;
	uint16_t event;
	uint16_t value;
} __attribute__((packed));

struct vtcon_msg {
	struct vtcon_ctrl hdr;
	uint8_t extra_len;
	uint8_t extra[VTCON_NAMEMAX];
};

enum vtcon_kind { VTCON_NONE, VTCON_STDIO, VTCON_SOCK };

struct pci_vtcon_softc;

struct vtcon_port {
	struct pci_vtcon_softc *sc;
	int id;
	enum vtcon_kind kind;
	char name[VTCON_NAMEMAX];
	char *path; /* the socket's path, which we made and remove */
	int dirfd;  /* its directory: removed there (the sandbox: no paths) */
	int lfd;    /* the listening socket */
	int rfd;    /* input: stdin or the client; -1 when none */
	int wfd;    /* output: stdout or a dup of the client (epoll keys fds) */
	bool rsock, wsock; /* sockets: each call says it must not wait */
	struct mevent_ev *lev, *rev, *wev;
	bool rx_paused; /* no receive buffers: rfd is not being read */
	bool host_open; /* a client is connected (stdio: always) */
	bool guest_ready;
	bool guest_open;
	uint8_t *obuf;
	size_t olen;
	uint64_t dropped;
	bool drop_warned;
};

struct pci_vtcon_softc {
	struct virtio_softc vs; /* first: pi_arg points at both */
	pthread_mutex_t mtx;
	struct vqueue_info queues[VTCON_MAXQ];
	struct vtcon_config cfg;
	struct mevent *mev;
	int nports;
	struct vtcon_port ports[VTCON_MAXPORTS]; /* by guest id */
	bool ready;				 /* DEVICE_READY seen */
	struct vtcon_msg pending[VTCON_CTRL_PENDING];
	unsigned int phead, plen;
	/* Rate limiting of messages about the guest's control messages. */
	int64_t warn_ns;
	unsigned long held_back;
	unsigned long bad_ctrl;
};

/*
 * The process has one stdin/stdout and one controlling terminal, whose
 * mode must be restored however the process exits (atexit handlers take no
 * argument): so the port on stdio is recorded here, as uart_backend.c does
 * for its UART. Process state, not VM state.
 */
static struct {
	pthread_mutex_t lock;
	struct vtcon_port *owner;
	bool atexit_set;
	bool tty_saved;
	struct termios tio;
	int flags[2]; /* of fds 0 and 1, when we had to set O_NONBLOCK */
	bool flags_saved[2];
} vtcon_stdio = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- messages ---- */

static void vtcon_msg(struct pci_vtcon_softc *sc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
vtcon_msg(struct pci_vtcon_softc *sc, const char *fmt, ...)
{
	struct pci_devinst *pi = sc->vs.vs_pi;
	va_list ap;

	fprintf(stderr, "bhyve: virtio-console at %d:%d:%d: ", pi->pi_bus,
		pi->pi_slot, pi->pi_func);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * A control message the guest should not have sent: ignored, and said at
 * most once per VTCON_WARN_NS so a hostile guest cannot flood stderr.
 */
static void
vtcon_bad_ctrl(struct pci_vtcon_softc *sc, const char *what, uint32_t id,
	       unsigned int event)
{
	int64_t t = now_ns();

	sc->bad_ctrl++;
	if (sc->warn_ns && t - sc->warn_ns < VTCON_WARN_NS) {
		sc->held_back++;
		return;
	}
	sc->warn_ns = t ? t : 1;
	vtcon_msg(sc,
		  "ignored a control message from the guest: %s (id %u, event "
		  "%u); %lu ignored so far, %lu not reported",
		  what, id, event, sc->bad_ctrl, sc->held_back);
	sc->held_back = 0;
}

/* ---- queues: port N's are 0/1 for N = 0, else 2N+2/2N+3 (§5.3.2) ---- */

static struct vqueue_info *
vtcon_rxq(struct pci_vtcon_softc *sc, int id)
{
	return &sc->queues[id == 0 ? 0 : 2 * id + 2];
}

static bool
vtcon_multiport(struct pci_vtcon_softc *sc)
{
	return sc->vs.vs_negotiated_caps & VTCON_F_MULTIPORT;
}

/* ---- iovecs ---- */

static size_t
iov_bytes(const struct iovec *iov, int n)
{
	size_t t = 0;

	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

static size_t
buf_to_iov(const void *buf, size_t len, const struct iovec *iov, int n)
{
	const uint8_t *p = buf;
	size_t done = 0;

	for (int i = 0; i < n && done < len; i++) {
		size_t c =
		    iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
		memcpy(iov[i].iov_base, p + done, c);
		done += c;
	}
	return done;
}

/*
 * Ask for the driver's next notification on vq, then look once more for a
 * chain that came before the store (vq_kick_enable orders the two). With
 * EVENT_IDX the driver notifies only when its index passes avail_event
 * (§2.7.10), which would otherwise stay where the first notification left
 * it: Linux's second control message then spun forever in
 * __send_control_msg (a soft lockup in the port handshake).
 */
static bool
vtcon_kick_again(struct vqueue_info *vq)
{
	vq_kick_enable(vq);
	return vq_has_descs(vq);
}

/* ---- the control queues (§5.3.6.2) ---- */

/* Hand pending messages to the guest while it has buffers for them. */
static void
vtcon_ctrl_flush(struct pci_vtcon_softc *sc)
{
	struct vqueue_info *vq = &sc->queues[2];
	struct iovec iov[VTCON_RINGSZ];
	struct vi_req req;
	uint8_t buf[sizeof(struct vtcon_ctrl) + VTCON_NAMEMAX];

	while (sc->plen > 0) {
		struct vtcon_msg *m = &sc->pending[sc->phead];
		size_t len = sizeof(m->hdr) + m->extra_len, put;
		int n = vq_getchain(vq, iov, VTCON_RINGSZ, &req);

		if (n < 0)
			break;
		if (n == 0) {
			/* Out of buffers: hear about the next one. */
			if (vtcon_kick_again(vq))
				continue;
			break;
		}
		memcpy(buf, &m->hdr, sizeof(m->hdr));
		memcpy(buf + sizeof(m->hdr), m->extra, m->extra_len);
		/* A buffer too small for the message gets what fits. */
		put = buf_to_iov(buf, len, iov + req.readable, req.writable);
		vq_relchain(vq, req.idx, (uint32_t)put);
		sc->phead = (sc->phead + 1) % VTCON_CTRL_PENDING;
		sc->plen--;
	}
	vq_endchains(vq);
}

static void
vtcon_ctrl_send(struct pci_vtcon_softc *sc, uint32_t id, uint16_t event,
		uint16_t value, const void *extra, size_t extra_len)
{
	struct vtcon_msg *m;

	if (!vtcon_multiport(sc))
		return;
	if (sc->plen == VTCON_CTRL_PENDING) {
		/* Only a guest that never reads its control queue gets here. */
		vtcon_bad_ctrl(sc, "too many unanswered, dropped a reply", id,
			       event);
		return;
	}
	m = &sc->pending[(sc->phead + sc->plen) % VTCON_CTRL_PENDING];
	sc->plen++;
	m->hdr = (struct vtcon_ctrl){id, event, value};
	m->extra_len = (uint8_t)extra_len;
	if (extra_len)
		memcpy(m->extra, extra, extra_len);
}

/* The terminal's size for RESIZE, when the console is on a terminal. */
static bool
vtcon_winsize(struct vtcon_port *p, uint16_t *rows, uint16_t *cols)
{
	struct winsize ws;

	if (p->kind != VTCON_STDIO ||
	    ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0 ||
	    ws.ws_col == 0)
		return false;
	*rows = ws.ws_row;
	*cols = ws.ws_col;
	return true;
}

/* The guest added port p (PORT_READY 1): tell it what the port is. */
static void
vtcon_port_ready(struct pci_vtcon_softc *sc, struct vtcon_port *p)
{
	uint16_t size[2];

	p->guest_ready = true;
	if (p->id == 0) {
		vtcon_ctrl_send(sc, 0, VTCON_CONSOLE_PORT, 1, NULL, 0);
		/*
		 * Linux reads RESIZE's payload as rows, then cols, though
		 * §5.3.6.2 lists cols first; Linux is what runs here.
		 */
		if (vtcon_winsize(p, &size[0], &size[1]))
			vtcon_ctrl_send(sc, 0, VTCON_RESIZE, 0, size,
					sizeof(size));
	}
	vtcon_ctrl_send(sc, (uint32_t)p->id, VTCON_PORT_NAME, 0, p->name,
			strlen(p->name));
	if (p->host_open)
		vtcon_ctrl_send(sc, (uint32_t)p->id, VTCON_PORT_OPEN, 1, NULL,
				0);
}

static void
vtcon_ctrl_handle(struct pci_vtcon_softc *sc, const struct vtcon_ctrl *c)
{
	struct vtcon_port *p = NULL;

	if (c->event == VTCON_DEVICE_READY) {
		if (c->value != 1 || sc->ready)
			return; /* the driver failed, or said it twice */
		sc->ready = true;
		for (int i = 0; i < VTCON_MAXPORTS; i++)
			if (sc->ports[i].kind != VTCON_NONE)
				vtcon_ctrl_send(sc, (uint32_t)i,
						VTCON_DEVICE_ADD, 0, NULL, 0);
		return;
	}
	if (c->id < VTCON_MAXPORTS && sc->ports[c->id].kind != VTCON_NONE)
		p = &sc->ports[c->id];
	switch (c->event) {
	case VTCON_PORT_READY:
		if (!p || !sc->ready)
			vtcon_bad_ctrl(sc, "PORT_READY for a port not added",
				       c->id, c->event);
		else if (c->value == 1 && !p->guest_ready)
			vtcon_port_ready(sc, p);
		else if (c->value != 1)
			p->guest_ready = false; /* the guest could not add it */
		break;
	case VTCON_PORT_OPEN:
		if (!p || !p->guest_ready)
			vtcon_bad_ctrl(sc, "PORT_OPEN for a port not ready",
				       c->id, c->event);
		else
			p->guest_open = c->value != 0;
		break;
	default:
		/* The other events go from device to driver only. */
		vtcon_bad_ctrl(sc, "an event the driver does not send", c->id,
			       c->event);
	}
}

/* The control transmit queue: messages from the driver. */
static void
vtcon_ctrl_tx(struct pci_vtcon_softc *sc, struct vqueue_info *vq)
{
	struct iovec iov[VTCON_RINGSZ];
	struct vi_req req;

again:
	for (int i = 0; i < vq->vq_qsize && vq_has_descs(vq); i++) {
		struct vtcon_ctrl c;
		uint8_t *p = (uint8_t *)&c;
		size_t got = 0;
		int n = vq_getchain(vq, iov, VTCON_RINGSZ, &req);

		if (n <= 0)
			break;
		/* Read once, into our copy, across however many buffers. */
		for (int k = 0; k < req.readable && got < sizeof(c); k++) {
			size_t l = iov[k].iov_len < sizeof(c) - got
				       ? iov[k].iov_len
				       : sizeof(c) - got;
			memcpy(p + got, iov[k].iov_base, l);
			got += l;
		}
		vq_relchain(vq, req.idx, 0);
		if (got < sizeof(c))
			vtcon_bad_ctrl(sc, "shorter than 8 bytes", 0, 0);
		else
			vtcon_ctrl_handle(sc, &c);
	}
	if (vtcon_kick_again(vq))
		goto again;
	vq_endchains(vq);
	vtcon_ctrl_flush(sc);
}

/* ---- output: guest -> host ---- */

static void vtcon_sock_close(struct vtcon_port *p);

static void vtcon_wev(int fd, enum ev_type type, void *arg);

/* write(2) that never waits; -1 with errno on failure. */
static ssize_t
vtcon_writev(struct vtcon_port *p, const struct iovec *iov, int n)
{
	struct msghdr mh = {.msg_iov = (struct iovec *)iov,
			    .msg_iovlen = (size_t)n};

	if (p->wsock)
		return sendmsg(p->wfd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	return writev(p->wfd, iov, n);
}

/* read(2) that never waits. */
static ssize_t
vtcon_readv(struct vtcon_port *p, const struct iovec *iov, int n)
{
	struct msghdr mh = {.msg_iov = (struct iovec *)iov,
			    .msg_iovlen = (size_t)n};

	if (p->rsock)
		return recvmsg(p->rfd, &mh, MSG_DONTWAIT);
	return readv(p->rfd, iov, n);
}

/* The output side failed for good (EPIPE, a closed terminal). */
static void
vtcon_out_dead(struct vtcon_port *p)
{
	if (p->kind == VTCON_SOCK) {
		vtcon_sock_close(p);
		return;
	}
	if (p->wev)
		mevent_delete(p->wev);
	p->wev = NULL;
	p->olen = 0;
	close(p->wfd);
	p->wfd = -1;
}

/* Write what is buffered; true when the buffer emptied. */
static bool
vtcon_out_flush(struct vtcon_port *p)
{
	while (p->olen > 0 && p->wfd >= 0) {
		struct iovec iov = {p->obuf, p->olen};
		ssize_t w = vtcon_writev(p, &iov, 1);

		if (w > 0) {
			memmove(p->obuf, p->obuf + w, p->olen - (size_t)w);
			p->olen -= (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && errno == EAGAIN) {
			return false;
		} else {
			vtcon_out_dead(p);
		}
	}
	return p->olen == 0;
}

/* Ask the event loop to call back when wfd takes bytes, or stop asking. */
static void
vtcon_out_arm(struct vtcon_port *p)
{
	if (p->olen > 0 && !p->wev && p->sc->mev && p->wfd >= 0)
		p->wev =
		    mevent_add(p->sc->mev, p->wfd, EVF_WRITE, vtcon_wev, p);
	else if (p->olen == 0 && p->wev) {
		mevent_delete(p->wev);
		p->wev = NULL;
	}
}

/* Bytes the host fd did not take: kept up to VTCON_OUTBUF, then dropped. */
static void
vtcon_out_keep(struct vtcon_port *p, const struct iovec *iov, int n,
	       size_t skip)
{
	for (int i = 0; i < n; i++) {
		size_t len = iov[i].iov_len, room, c;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		len -= skip;
		room = VTCON_OUTBUF - p->olen;
		c = len < room ? len : room;
		memcpy(p->obuf + p->olen, (uint8_t *)iov[i].iov_base + skip, c);
		p->olen += c;
		p->dropped += len - c;
		skip = 0;
	}
	if (p->dropped && !p->drop_warned) {
		p->drop_warned = true;
		vtcon_msg(p->sc,
			  "port %s: the host side is not reading: output "
			  "beyond %d KiB is dropped (said once)",
			  p->name, VTCON_OUTBUF / 1024);
	}
}

static void
vtcon_out(struct vtcon_port *p, const struct iovec *iov, int n)
{
	ssize_t w = 0;

	if (p->wfd < 0 || n == 0)
		return; /* no client: the bytes go nowhere, as in bhyve */
	if (vtcon_out_flush(p)) {
		do
			w = vtcon_writev(p, iov, n);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno != EAGAIN) {
			vtcon_out_dead(p);
			return;
		}
		if (w < 0)
			w = 0;
	}
	if ((size_t)w < iov_bytes(iov, n))
		vtcon_out_keep(p, iov, n, (size_t)w);
	vtcon_out_arm(p);
}

/* A port's transmit queue: every chain there, each written whole. */
static void
vtcon_tx(struct pci_vtcon_softc *sc, struct vtcon_port *p,
	 struct vqueue_info *vq)
{
	struct iovec iov[VTCON_RINGSZ];
	struct vi_req req;

again:
	for (int i = 0; i < vq->vq_qsize && vq_has_descs(vq); i++) {
		int n = vq_getchain(vq, iov, VTCON_RINGSZ, &req);

		if (n <= 0)
			break;
		/* Writable buffers in a transmit chain carry nothing. */
		if (p)
			vtcon_out(p, iov, req.readable);
		vq_relchain(vq, req.idx, 0);
	}
	if (vtcon_kick_again(vq))
		goto again;
	vq_endchains(vq);
	(void)sc;
}

static void
vtcon_wev(int fd, enum ev_type type, void *arg)
{
	struct vtcon_port *p = arg;

	(void)fd;
	(void)type;
	pthread_mutex_lock(&p->sc->mtx);
	vtcon_out_flush(p);
	vtcon_out_arm(p);
	pthread_mutex_unlock(&p->sc->mtx);
}

/* ---- input: host -> guest ---- */

static void vtcon_rev(int fd, enum ev_type type, void *arg);

static void
vtcon_rx_pause(struct vtcon_port *p)
{
	if (p->rev)
		mevent_delete(p->rev);
	p->rev = NULL;
	p->rx_paused = true;
}

static void
vtcon_rx_resume(struct vtcon_port *p)
{
	p->rx_paused = false;
	if (!p->rev && p->sc->mev && p->rfd >= 0)
		p->rev = mevent_add(p->sc->mev, p->rfd, EVF_READ, vtcon_rev, p);
	/* A regular file or /dev/null cannot be polled: no input then. */
}

/* The input side ended (EOF, a hung-up terminal, a client gone). */
static void
vtcon_in_eof(struct vtcon_port *p)
{
	if (p->kind == VTCON_SOCK) {
		vtcon_sock_close(p);
		return;
	}
	if (p->rev)
		mevent_delete(p->rev);
	p->rev = NULL;
	close(p->rfd);
	p->rfd = -1;
}

/* Read what the host fd has into the port's receive buffers. */
static void
vtcon_rx(struct pci_vtcon_softc *sc, struct vtcon_port *p)
{
	struct vqueue_info *vq = vtcon_rxq(sc, p->id);
	struct iovec iov[VTCON_RINGSZ];
	struct vi_req req;

	for (int i = 0; i < vq->vq_qsize && p->rfd >= 0; i++) {
		int n = vq_getchain(vq, iov, VTCON_RINGSZ, &req);
		ssize_t r;

		if (n < 0)
			break;
		if (n == 0) {
			/* Nowhere to put it: leave it in the kernel. */
			if (vtcon_kick_again(vq))
				continue;
			vtcon_rx_pause(p);
			break;
		}
		if (req.writable == 0) {
			vq_relchain(vq, req.idx, 0); /* nothing to fill */
			continue;
		}
		do
			r = vtcon_readv(p, iov + req.readable, req.writable);
		while (r < 0 && errno == EINTR);
		if (r > 0) {
			vq_relchain(vq, req.idx, (uint32_t)r);
			continue;
		}
		vq_retchain(vq, 1);
		if (r == 0 || errno != EAGAIN)
			vtcon_in_eof(p);
		break;
	}
	vq_endchains(vq);
}

static void
vtcon_rev(int fd, enum ev_type type, void *arg)
{
	struct vtcon_port *p = arg;

	(void)fd;
	(void)type;
	pthread_mutex_lock(&p->sc->mtx);
	if (!p->rx_paused)
		vtcon_rx(p->sc, p);
	pthread_mutex_unlock(&p->sc->mtx);
}

/* ---- Unix socket ports ---- */

static void
vtcon_sock_close(struct vtcon_port *p)
{
	struct pci_vtcon_softc *sc = p->sc;

	if (p->rev)
		mevent_delete(p->rev);
	if (p->wev)
		mevent_delete(p->wev);
	p->rev = p->wev = NULL;
	if (p->rfd >= 0)
		close(p->rfd);
	if (p->wfd >= 0)
		close(p->wfd);
	p->rfd = p->wfd = -1;
	p->olen = 0; /* for a client that is gone */
	if (p->host_open && p->guest_ready) {
		vtcon_ctrl_send(sc, (uint32_t)p->id, VTCON_PORT_OPEN, 0, NULL,
				0);
		vtcon_ctrl_flush(sc);
	}
	p->host_open = false;
}

static void
vtcon_accept(int fd, enum ev_type type, void *arg)
{
	struct vtcon_port *p = arg;
	struct pci_vtcon_softc *sc = p->sc;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)type;
	if (c < 0)
		return;
	pthread_mutex_lock(&sc->mtx);
	if (p->host_open) {
		/* One client at a time: the next one is turned away. */
		close(c);
		goto out;
	}
	p->rfd = c;
	p->wfd = fcntl(c, F_DUPFD_CLOEXEC, 0);
	p->rsock = p->wsock = true;
	if (p->wfd < 0) {
		close(c);
		p->rfd = -1;
		goto out;
	}
	p->host_open = true;
	p->rx_paused = false;
	vtcon_rx_resume(p);
	vtcon_rx(sc, p);
	if (p->guest_ready) {
		vtcon_ctrl_send(sc, (uint32_t)p->id, VTCON_PORT_OPEN, 1, NULL,
				0);
		vtcon_ctrl_flush(sc);
	}
out:
	pthread_mutex_unlock(&sc->mtx);
}

/* The directory path is in, as an O_PATH descriptor for unlinkat. */
static int
vtcon_dir_open(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];

	if (!slash)
		return open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	snprintf(dir, sizeof(dir), "%.*s",
		 slash == path ? 1 : (int)(slash - path), path);
	return open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/* The last part of path: the name in vtcon_dir_open's directory. */
static const char *
vtcon_base(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/*
 * Listen on path, which must not exist or be a socket nobody listens on
 * (what a bhyve that died leaves behind). -1 with a message in err.
 */
static int
vtcon_sock_open(struct vtcon_port *p, const char *path, char *err,
		size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path %s is longer than %zu bytes",
			 path, sizeof(sun.sun_path) - 1);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen,
				 "%s exists and is not a socket: give the "
				 "port a new path",
				 path);
			return -1;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 &&
		    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(fd);
			snprintf(err, errlen,
				 "%s is in use: another process listens "
				 "there",
				 path);
			return -1;
		}
		if (fd >= 0)
			close(fd);
		unlink(path); /* stale: nobody listens */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, 1) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", path,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	p->path = strdup(path);
	p->lfd = fd;
	if (!p->path) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->dirfd = vtcon_dir_open(path);
	if (p->dirfd < 0) {
		snprintf(err, errlen, "cannot open the directory of %s: %s",
			 path, strerror(errno));
		return -1;
	}
	sandbox_allow_unlinkat(p->dirfd);
	if (p->sc->mev)
		p->lev = mevent_add(p->sc->mev, fd, EVF_READ, vtcon_accept, p);
	return 0;
}

/* ---- stdio ports ---- */

static void
vtcon_tty_restore(void)
{
	if (vtcon_stdio.tty_saved)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &vtcon_stdio.tio);
	vtcon_stdio.tty_saved = false;
	for (int fd = 0; fd < 2; fd++)
		if (vtcon_stdio.flags_saved[fd])
			fcntl(fd, F_SETFL, vtcon_stdio.flags[fd]);
	vtcon_stdio.flags_saved[0] = vtcon_stdio.flags_saved[1] = false;
}

static void
vtcon_stdio_atexit(void)
{
	pthread_mutex_lock(&vtcon_stdio.lock);
	vtcon_tty_restore();
	pthread_mutex_unlock(&vtcon_stdio.lock);
}

/*
 * Our own non-blocking descriptions of stdin/stdout (through /proc), so
 * that O_NONBLOCK does not leak to the shell or to stderr that shares the
 * terminal. A regular file is used as it is (it never makes us wait, and
 * its offset is shared with the shell's redirection).
 */
static int
vtcon_reopen(int fd, int flags, bool *sock)
{
	char path[32];
	struct stat st;
	int r, fl;

	if (fstat(fd, &st) < 0)
		return -1;
	*sock = S_ISSOCK(st.st_mode);
	/* A socket cannot be reopened: each call gets MSG_DONTWAIT. */
	if (S_ISREG(st.st_mode) || *sock)
		return fcntl(fd, F_DUPFD_CLOEXEC, 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = open(path, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (r >= 0)
		return r;
	/* No /proc: the shared description, non-blocking until exit. */
	r = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	fl = fcntl(fd, F_GETFL);
	if (r >= 0 && fl >= 0 && !(fl & O_NONBLOCK) &&
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0) {
		vtcon_stdio.flags[fd] = fl;
		vtcon_stdio.flags_saved[fd] = true;
	}
	return r;
}

static int
vtcon_stdio_open(struct vtcon_port *p, char *err, size_t errlen)
{
	struct termios raw;

	pthread_mutex_lock(&vtcon_stdio.lock);
	if (vtcon_stdio.owner) {
		pthread_mutex_unlock(&vtcon_stdio.lock);
		snprintf(err, errlen,
			 "port %s: stdio is used by another virtio-console "
			 "port: give this one a socket path",
			 p->name);
		return -1;
	}
	vtcon_stdio.owner = p;
	if (!vtcon_stdio.atexit_set)
		vtcon_stdio.atexit_set = atexit(vtcon_stdio_atexit) == 0;
	p->wfd = vtcon_reopen(STDOUT_FILENO, O_WRONLY, &p->wsock);
	p->rfd = vtcon_reopen(STDIN_FILENO, O_RDONLY, &p->rsock);
	if (p->rfd >= 0 && isatty(p->rfd) &&
	    tcgetattr(STDIN_FILENO, &vtcon_stdio.tio) == 0) {
		/* Keys go to the guest as they are typed, ^C included. */
		raw = vtcon_stdio.tio;
		cfmakeraw(&raw);
		vtcon_stdio.tty_saved =
		    tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
	}
	pthread_mutex_unlock(&vtcon_stdio.lock);
	p->host_open = true;
	return 0;
}

static void
vtcon_stdio_close(struct vtcon_port *p)
{
	pthread_mutex_lock(&vtcon_stdio.lock);
	if (vtcon_stdio.owner == p) {
		vtcon_tty_restore();
		vtcon_stdio.owner = NULL;
	}
	pthread_mutex_unlock(&vtcon_stdio.lock);
}

/* ---- virtio callbacks ---- */

static void
pci_vtcon_notify(void *vsc, struct vqueue_info *vq)
{
	struct pci_vtcon_softc *sc = vsc;
	int q = vq->vq_num, id;
	struct vtcon_port *p;

	if (q == 2) {
		vtcon_ctrl_flush(sc); /* buffers for messages */
		return;
	}
	if (q == 3) {
		vtcon_ctrl_tx(sc, vq);
		return;
	}
	id = q < 2 ? 0 : (q - 2) / 2;
	p = sc->ports[id].kind != VTCON_NONE ? &sc->ports[id] : NULL;
	/* Without MULTIPORT only port 0's queues exist (§5.3.2). */
	if (id != 0 && !vtcon_multiport(sc))
		p = NULL;
	if (q % 2 == 1) {
		vtcon_tx(sc, p, vq);
		return;
	}
	/* New receive buffers: read what waits, and listen again. */
	if (p && p->rfd >= 0) {
		if (p->rx_paused)
			vtcon_rx_resume(p);
		vtcon_rx(sc, p);
	}
}

static void
pci_vtcon_reset(void *vsc)
{
	struct pci_vtcon_softc *sc = vsc;

	/* The guest's view starts over; host connections stay. */
	sc->ready = false;
	sc->phead = sc->plen = 0;
	for (int i = 0; i < VTCON_MAXPORTS; i++)
		sc->ports[i].guest_ready = sc->ports[i].guest_open = false;
	vi_reset_dev(&sc->vs);
}

static int
pci_vtcon_cfgread(void *vsc, int offset, int size, uint32_t *val)
{
	struct pci_vtcon_softc *sc = vsc;

	/* The core checked offset + size against the config's size. */
	*val = 0;
	memcpy(val, (uint8_t *)&sc->cfg + offset, size);
	return 0;
}

/* emerg_wr (§5.3.4): one character for the console, even before rings. */
static int
pci_vtcon_cfgwrite(void *vsc, int offset, int size, uint32_t val)
{
	struct pci_vtcon_softc *sc = vsc;
	struct vtcon_port *p = &sc->ports[0];
	uint8_t c = (uint8_t)val;
	struct iovec iov = {&c, 1};

	if (offset != offsetof(struct vtcon_config, emerg_wr) ||
	    !(sc->vs.vs_negotiated_caps & VTCON_F_EMERG_WRITE) ||
	    p->kind == VTCON_NONE)
		return 0;
	(void)size;
	vtcon_out(p, &iov, 1);
	return 0;
}

static const struct virtio_consts vtcon_vi_consts = {
    .vc_name = "virtio-console",
    .vc_nvq = VTCON_MAXQ,
    .vc_cfgsize = sizeof(struct vtcon_config),
    .vc_reset = pci_vtcon_reset,
    .vc_qnotify = pci_vtcon_notify,
    .vc_cfgread = pci_vtcon_cfgread,
    .vc_cfgwrite = pci_vtcon_cfgwrite,
    .vc_hv_caps = VTCON_S_HOSTCAPS,
};

/* ---- set-up ---- */

#define VTCON_USAGE                                                            \
	"virtio-console,NAME=PATH[,NAME=PATH...], PATH a socket or stdio"

/* bhyve's: each NAME=PATH becomes port.N.name and port.N.path, N from 0. */
static int
pci_vtcon_legacy_config(struct config *node, const char *opts, char *err,
			size_t errlen)
{
	char *copy = strdup(opts), *save = NULL, key[64];
	int rc = 0, n = 0;

	if (!copy)
		return -1;
	for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save), n++) {
		char *eq = strchr(tok, '=');

		if (!eq || eq == tok || !eq[1]) {
			snprintf(err, errlen,
				 "virtio-console: '%s' is not NAME=PATH "
				 "(" VTCON_USAGE ")",
				 tok);
			rc = -1;
			break;
		}
		*eq = '\0';
		snprintf(key, sizeof(key), "port.%d.name", n);
		rc = config_set(node, key, tok, err, errlen);
		snprintf(key, sizeof(key), "port.%d.path", n);
		if (rc == 0)
			rc = config_set(node, key, eq + 1, err, errlen);
	}
	free(copy);
	return rc;
}

static int vtcon_fail(struct pci_devinst *pi, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
vtcon_fail(struct pci_devinst *pi, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bhyve: virtio-console at %d:%d:%d: ", pi->pi_bus,
		pi->pi_slot, pi->pi_func);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* Names become /dev/virtio-ports/NAME in a Linux guest: keep them tame. */
static bool
vtcon_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= VTCON_NAMEMAX || s[0] == '.')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' ||
		      *s == '_'))
			return false;
	return true;
}

static struct vtcon_port *
vtcon_find(struct pci_vtcon_softc *sc, const char *name)
{
	for (int i = 0; i < VTCON_MAXPORTS; i++)
		if (sc->ports[i].kind != VTCON_NONE &&
		    !strcmp(sc->ports[i].name, name))
			return &sc->ports[i];
	return NULL;
}

/* Is stdio another device's (a com port's, bhyve -l comN,stdio)? */
static int
vtcon_lpc_stdio(const struct config *c, void *arg)
{
	const char *path;

	if (config_is_leaf(c))
		return 0;
	path = config_get(c, "path");
	if (path && !strcmp(path, "stdio")) {
		*(const char **)arg = config_node_name(c);
		return 1;
	}
	return 0;
}

struct vtcon_walk {
	struct pci_vtcon_softc *sc;
	struct pci_devinst *pi;
	int next_id;
};

/* A port that cannot be set up: say why; 1 stops the walk. */
static int vtcon_port_fail(struct vtcon_walk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
vtcon_port_fail(struct vtcon_walk *w, const char *fmt, ...)
{
	struct pci_devinst *pi = w->pi;
	va_list ap;

	fprintf(stderr, "bhyve: virtio-console at %d:%d:%d: ", pi->pi_bus,
		pi->pi_slot, pi->pi_func);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static int
vtcon_open_backend(struct vtcon_walk *w, struct vtcon_port *p, const char *path)
{
	struct config *cfg = machine_config(w->pi->pi_vmctx);
	struct config *lpc = config_node(cfg, "lpc");
	const char *other = NULL;
	char err[256];

	if (strcmp(path, "stdio")) {
		p->kind = VTCON_SOCK;
		if (vtcon_sock_open(p, path, err, sizeof(err)) == 0)
			return 0;
		p->kind = VTCON_NONE;
		return vtcon_port_fail(w, "port %s: %s", p->name, err);
	}
	/* Checked in the config, so it holds whichever comes up first. */
	if (lpc && config_foreach(lpc, vtcon_lpc_stdio, &other))
		return vtcon_port_fail(w,
				       "port %s: stdio is already lpc.%s's "
				       "(-l %s,stdio): give one of them "
				       "another path",
				       p->name, other, other);
	p->kind = VTCON_STDIO;
	if (vtcon_stdio_open(p, err, sizeof(err)) == 0)
		return 0;
	p->kind = VTCON_NONE;
	return vtcon_port_fail(w, "%s", err);
}

/* One port node: port.N.{name,path} or port.NAME.path. */
static int
vtcon_add_port(const struct config *c, void *arg)
{
	struct vtcon_walk *w = arg;
	struct pci_vtcon_softc *sc = w->sc;
	const char *node = config_node_name(c), *name = NULL, *path = NULL;
	struct vtcon_port *p;
	int id;

	if (!config_is_leaf(c)) {
		name = config_get(c, "name");
		path = config_get(c, "path");
	}
	/* port.NAME.path: a node name that is not a number is the name. */
	if (!name && node[strspn(node, "0123456789")])
		name = node;
	if (!name || !path)
		return vtcon_port_fail(w,
				       "port.%s needs a name and a path (%s)",
				       node, VTCON_USAGE);
	if (!vtcon_name_ok(name))
		return vtcon_port_fail(w,
				       "port name '%s': use up to %d letters, "
				       "digits, '.', '-' or '_'",
				       name, VTCON_NAMEMAX - 1);
	if (vtcon_find(sc, name))
		return vtcon_port_fail(w, "two ports are named '%s'", name);
	id = !strcmp(name, "console") ? 0 : w->next_id;
	if (id >= VTCON_MAXPORTS)
		return vtcon_port_fail(w, "more than %d ports besides console",
				       VTCON_MAXPORTS - 1);
	if (id)
		w->next_id++;
	p = &sc->ports[id];
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->obuf = malloc(VTCON_OUTBUF);
	if (!p->obuf)
		return vtcon_port_fail(w, "out of memory");
	if (vtcon_open_backend(w, p, path))
		return 1;
	sc->nports++;
	return 0;
}

static int
vtcon_check_key(const struct config *c, void *arg)
{
	const char *name = config_node_name(c);

	if ((config_is_leaf(c) && !strcmp(name, "device")) ||
	    (!config_is_leaf(c) && !strcmp(name, "port")))
		return 0;
	*(const char **)arg = name;
	return 1;
}

static void
vtcon_port_free(struct vtcon_port *p)
{
	if (p->kind == VTCON_SOCK) {
		vtcon_sock_close(p);
		if (p->lev)
			mevent_delete(p->lev);
		if (p->lfd >= 0)
			close(p->lfd);
		if (p->path && p->dirfd >= 0)
			unlinkat(p->dirfd, vtcon_base(p->path), 0);
		if (p->dirfd >= 0)
			close(p->dirfd);
	} else if (p->kind == VTCON_STDIO) {
		/* The last output, if the terminal takes it now. */
		vtcon_out_flush(p);
		if (p->rev)
			mevent_delete(p->rev);
		if (p->wev)
			mevent_delete(p->wev);
		if (p->rfd >= 0)
			close(p->rfd);
		if (p->wfd >= 0)
			close(p->wfd);
		vtcon_stdio_close(p);
	}
	free(p->path);
	free(p->obuf);
	p->kind = VTCON_NONE;
}

static void
pci_vtcon_deinit(struct pci_devinst *pi)
{
	struct pci_vtcon_softc *sc = pi->pi_arg;

	if (!sc)
		return;
	for (int i = 0; i < VTCON_MAXPORTS; i++) {
		if (sc->ports[i].dropped)
			fprintf(stderr,
				"bhyve: virtio-console at %d:%d:%d: port %s: "
				"%llu bytes of output were dropped\n",
				pi->pi_bus, pi->pi_slot, pi->pi_func,
				sc->ports[i].name,
				(unsigned long long)sc->ports[i].dropped);
		vtcon_port_free(&sc->ports[i]);
	}
	pthread_mutex_destroy(&sc->mtx);
	free(sc);
	pi->pi_arg = NULL;
}

static void
vtcon_pci_ids(struct pci_devinst *pi)
{
	/* A transitional device (§4.1.2.1): revision 0 for legacy drivers. */
	pci_set_cfgdata16(pi, 0x00, VIRTIO_VENDOR);
	pci_set_cfgdata16(pi, 0x02, VIRTIO_DEV_CONSOLE);
	pci_set_cfgdata8(pi, 0x08, 0);	  /* revision */
	pci_set_cfgdata8(pi, 0x0a, 0x80); /* other communications device */
	pci_set_cfgdata8(pi, 0x0b, 0x07); /* simple communications */
	pci_set_cfgdata16(pi, 0x2c, VIRTIO_VENDOR);
	pci_set_cfgdata16(pi, 0x2e, VIRTIO_ID_CONSOLE);
}

static int
pci_vtcon_init(struct pci_devinst *pi, struct config *node)
{
	struct config *cfg = machine_config(pi->pi_vmctx);
	struct pci_vtcon_softc *sc;
	struct vtcon_walk w;
	struct config *ports = config_node(node, "port");
	const char *bad = NULL;

	if (config_foreach(node, vtcon_check_key, &bad))
		return vtcon_fail(pi, "unknown option '%s' (%s)", bad,
				  VTCON_USAGE);
	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return vtcon_fail(pi, "out of memory");
	pthread_mutex_init(&sc->mtx, NULL);
	sc->mev = machine_of(pi->pi_vmctx)->mev;
	for (int i = 0; i < VTCON_MAXPORTS; i++) {
		sc->ports[i] = (struct vtcon_port){.sc = sc,
						   .id = i,
						   .lfd = -1,
						   .dirfd = -1,
						   .rfd = -1,
						   .wfd = -1,
						   .rx_paused = true};
	}
	for (int i = 0; i < VTCON_MAXQ; i++)
		sc->queues[i].vq_qsize = VTCON_RINGSZ;
	sc->vs.vs_mtx = &sc->mtx;
	vi_softc_linkup(&sc->vs, &vtcon_vi_consts, sc, pi, sc->queues);
	w = (struct vtcon_walk){sc, pi, 1};
	if (ports && config_foreach(ports, vtcon_add_port, &w)) {
		pci_vtcon_deinit(pi);
		return -1;
	}
	/* A terminal's size is RESIZE's job; the config is for the rest. */
	sc->cfg.cols = 80;
	sc->cfg.rows = 25;
	sc->cfg.max_nr_ports = VTCON_MAXPORTS;
	vtcon_pci_ids(pi);
	if (vi_intr_init(&sc->vs, 1,
			 config_get_bool(cfg, "virtio_msix", true)) < 0 ||
	    vi_set_io_bar(&sc->vs, 0) < 0) {
		pci_vtcon_deinit(pi);
		return vtcon_fail(pi, "cannot set up its BARs and interrupts");
	}
	return 0;
}

static const struct pci_devemu pci_de_vcon = {
    .pe_emu = "virtio-console",
    .pe_legacy_config = pci_vtcon_legacy_config,
    .pe_init = pci_vtcon_init,
    .pe_deinit = pci_vtcon_deinit,
    .pe_barwrite = vi_pci_write,
    .pe_barread = vi_pci_read,
};
PCI_EMUL_SET(pci_de_vcon);
