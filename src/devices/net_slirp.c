/*
 * The slirp backend: user-mode networking through libslirp (QEMU's
 * "-netdev user"), so a guest reaches the host's network without root or
 * a host interface. The guest sits on 10.0.2.0/24 behind a NAT: the host
 * is 10.0.2.2, DNS 10.0.2.3, DHCP hands out 10.0.2.15 first; "hostfwd"
 * rules (net_slirp.h) forward host ports to the guest.
 *
 * Threads: libslirp is not thread-safe, and netbe_send comes from a vCPU
 * thread while the event loop polls slirp's sockets: every libslirp call
 * holds priv->lock. Frames slirp sends to the guest (send_packet, which
 * may run inside slirp_input on the vCPU thread) go into a bounded queue
 * (qlock) and an eventfd wakes the event loop, which calls the NIC's rx
 * callback there, as the backend interface promises.
 *
 * Polling joins bhyve's event loop rather than having a thread of its own:
 * a private epoll fd, itself watched by mevent, holds slirp's sockets (what
 * slirp_pollfds_fill asked for), a timerfd armed for slirp's timers and its
 * poll timeout, and a "kick" eventfd that a send writes to because a frame
 * from the guest may open a socket or start a timer. An idle guest leaves
 * every one of them quiet, and bhyve asleep.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <slirp/libslirp.h>

#include "mevent.h"
#include "net_backend.h"
#include "net_slirp.h"
#include "sandbox.h"

/* Frames waiting for the guest; beyond this they are dropped (TCP resends). */
#define SLIRP_QUEUE_MAX 512
/* A guest frame without offloads, with room for a VLAN tag. */
#define SLIRP_MAX_TX (NETBE_MAX_FRAME + 4)

struct slirp_timer {
	SlirpTimerCb cb;
	void *opaque;
	int64_t expire_ms; /* CLOCK_MONOTONIC milliseconds; -1: not armed */
	struct slirp_timer *next;
};

/* A socket in the private epoll set, with the events it was added with. */
struct slirp_watch {
	int fd;
	uint32_t events;
	bool seen;
};

struct slirp_frame {
	size_t len;
	uint8_t data[];
};

struct slirp_priv {
	struct net_backend *be;
	pthread_mutex_t lock; /* every libslirp call and the fields to qlock */
	Slirp *slirp;
	int epfd, kickfd, timerfd;
	bool kicked;	     /* a kick is on its way: no need for another */
	bool in_round;	     /* the loop's round re-arms and refills anyway */
	struct pollfd *pfds; /* slirp_pollfds_fill's last round */
	size_t npfds, pfds_cap;
	struct slirp_watch *watch; /* what epfd holds */
	size_t nwatch, watch_cap;
	struct slirp_timer *timers;
	uint8_t txbuf[SLIRP_MAX_TX];

	pthread_mutex_t qlock; /* the queue to the guest */
	struct slirp_frame *q[SLIRP_QUEUE_MAX];
	unsigned int qhead, qcount;
	bool rx_enabled, rx_signalled;
	uint64_t dropped;
	int rxfd;

	struct mevent_ev *poll_ev, *rx_ev;
};

/* ---- hostfwd rules ---- */

static int
parse_port(const char *s, in_port_t *port)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 5)
		return -1;
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9')
			return -1;
		v = v * 10 + (unsigned long)(*c - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port = htons((uint16_t)v);
	return 0;
}

/* "[ADDR]:PORT" of one side; what names the side in errors. */
static int
parse_side(const char *rule, char *s, const char *what, in_addr_t def,
	   struct sockaddr_in *sin, char *err, size_t errlen)
{
	char *colon = strchr(s, ':');

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	if (!colon) {
		snprintf(err, errlen,
			 "hostfwd '%s': %s side '%s' wants [ADDR]:PORT", rule,
			 what, s);
		return -1;
	}
	*colon = '\0';
	if (!*s) {
		sin->sin_addr.s_addr = htonl(def);
	} else if (inet_pton(AF_INET, s, &sin->sin_addr) != 1) {
		snprintf(err, errlen,
			 "hostfwd '%s': bad %s address '%s' (want IPv4 "
			 "a.b.c.d or nothing)",
			 rule, what, s);
		return -1;
	}
	if (parse_port(colon + 1, &sin->sin_port) < 0) {
		snprintf(err, errlen,
			 "hostfwd '%s': bad %s port '%s' (want 1-65535)", rule,
			 what, colon + 1);
		return -1;
	}
	return 0;
}

int
slirp_hostfwd_parse(const char *rule, struct slirp_hostfwd *fwd, char *err,
		    size_t errlen)
{
	char buf[128], *colon, *dash;
	in_addr_t guest;

	memset(fwd, 0, sizeof(*fwd));
	if (strlen(rule) >= sizeof(buf)) {
		snprintf(err, errlen, "hostfwd '%.40s...': too long", rule);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", rule);
	colon = strchr(buf, ':');
	if (!*buf || !colon) {
		snprintf(err, errlen,
			 "hostfwd '%s': want "
			 "tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT",
			 rule);
		return -1;
	}
	*colon = '\0';
	if (strcmp(buf, "udp") == 0) {
		fwd->udp = true;
	} else if (*buf && strcmp(buf, "tcp") != 0) {
		snprintf(err, errlen,
			 "hostfwd '%s': bad protocol '%s' (want tcp or udp)",
			 rule, buf);
		return -1;
	}
	dash = strchr(colon + 1, '-');
	if (!dash) {
		snprintf(err, errlen,
			 "hostfwd '%s': no '-' between the host side and the "
			 "guest side",
			 rule);
		return -1;
	}
	*dash = '\0';
	if (parse_side(rule, colon + 1, "host", INADDR_ANY, &fwd->host, err,
		       errlen) < 0 ||
	    parse_side(rule, dash + 1, "guest", SLIRP_GUEST, &fwd->guest, err,
		       errlen) < 0)
		return -1;
	guest = ntohl(fwd->guest.sin_addr.s_addr);
	/* slirp delivers only into its own network; not to itself either. */
	if ((guest & SLIRP_MASK) != SLIRP_NET || guest == SLIRP_NET ||
	    guest == (SLIRP_NET | ~SLIRP_MASK) || guest == SLIRP_HOST ||
	    guest == SLIRP_DNS) {
		snprintf(err, errlen,
			 "hostfwd '%s': guest address %s is not a guest's "
			 "address in 10.0.2.0/24",
			 rule, inet_ntoa(fwd->guest.sin_addr));
		return -1;
	}
	return 0;
}

/* Each ';'-separated rule of value, added to slirp. */
static int
slirp_add_rules(struct slirp_priv *p, const char *value, char *err,
		size_t errlen)
{
	char *copy = strdup(value), *save = NULL, *rule;
	int rc = 0;

	if (!copy) {
		snprintf(err, errlen, "slirp: out of memory");
		return -1;
	}
	if (!*copy || copy[strlen(copy) - 1] == ';' || copy[0] == ';' ||
	    strstr(copy, ";;")) {
		snprintf(err, errlen,
			 "hostfwd '%s': an empty rule (rules are separated by "
			 "one ';')",
			 value);
		free(copy);
		return -1;
	}
	for (rule = strtok_r(copy, ";", &save); rule && rc == 0;
	     rule = strtok_r(NULL, ";", &save)) {
		struct slirp_hostfwd f;
		char addr[INET_ADDRSTRLEN];

		rc = slirp_hostfwd_parse(rule, &f, err, errlen);
		if (rc < 0)
			break;
		if (slirp_add_hostxfwd(
			p->slirp, (struct sockaddr *)&f.host, sizeof(f.host),
			(struct sockaddr *)&f.guest, sizeof(f.guest),
			f.udp ? SLIRP_HOSTFWD_UDP : 0) < 0) {
			inet_ntop(AF_INET, &f.host.sin_addr, addr,
				  sizeof(addr));
			snprintf(err, errlen,
				 "hostfwd '%s': cannot listen on %s:%u: %s",
				 rule, addr, ntohs(f.host.sin_port),
				 strerror(errno));
			rc = -1;
		}
	}
	free(copy);
	return rc;
}

/* ---- slirp's callbacks ---- */

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t
cb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return now_ns();
}

static void
wake(int fd)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already non-zero: awake enough. */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		perror("slirp: eventfd");
}

/* A frame for the guest (lock held, any thread): queue it, wake the loop. */
static ssize_t
cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct slirp_priv *p = opaque;
	struct slirp_frame *f;
	bool signal = false;

	pthread_mutex_lock(&p->qlock);
	if (p->qcount == SLIRP_QUEUE_MAX || !(f = malloc(sizeof(*f) + len))) {
		p->dropped++;
		pthread_mutex_unlock(&p->qlock);
		return (ssize_t)len; /* dropped, as a full wire would */
	}
	f->len = len;
	memcpy(f->data, buf, len);
	p->q[(p->qhead + p->qcount) % SLIRP_QUEUE_MAX] = f;
	p->qcount++;
	if (p->rx_enabled && !p->rx_signalled) {
		p->rx_signalled = true;
		signal = true;
	}
	pthread_mutex_unlock(&p->qlock);
	if (signal)
		wake(p->rxfd);
	return (ssize_t)len;
}

static void
cb_guest_error(const char *msg, void *opaque)
{
	struct slirp_priv *p = opaque;

	fprintf(stderr, "%s: guest error: %s\n", p->be->name, msg);
}

static void *
cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct slirp_priv *p = opaque;
	struct slirp_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->cb = cb;
	t->opaque = cb_opaque;
	t->expire_ms = -1;
	t->next = p->timers;
	p->timers = t;
	return t;
}

static void
cb_timer_free(void *timer, void *opaque)
{
	struct slirp_priv *p = opaque;

	for (struct slirp_timer **t = &p->timers; *t; t = &(*t)->next) {
		if (*t == timer) {
			*t = ((struct slirp_timer *)timer)->next;
			free(timer);
			return;
		}
	}
}

/* Lock held: make the event loop run a round soon (refill, re-arm). */
static void
kick(struct slirp_priv *p)
{
	if (!p->kicked && !p->in_round) {
		p->kicked = true;
		wake(p->kickfd);
	}
}

/* Re-arming waits for the next poll round, which a kick brings soon. */
static void
cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	((struct slirp_timer *)timer)->expire_ms = expire_ms;
	kick(opaque);
}

static void
cb_register_poll_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

/* Before slirp closes fd: forget it, or a reused number would be stale. */
static void
cb_unregister_poll_fd(int fd, void *opaque)
{
	struct slirp_priv *p = opaque;

	for (size_t i = 0; i < p->nwatch; i++) {
		if (p->watch[i].fd == fd) {
			epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
			p->watch[i] = p->watch[--p->nwatch];
			return;
		}
	}
}

static void
cb_notify(void *opaque)
{
	kick(opaque);
}

static const SlirpCb slirp_cbs = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_unregister_poll_fd,
    .notify = cb_notify,
};

/* ---- polling ---- */

static int
cb_add_poll(int fd, int events, void *opaque)
{
	struct slirp_priv *p = opaque;
	short ev = 0;

	if (p->npfds == p->pfds_cap) {
		size_t cap = p->pfds_cap ? p->pfds_cap * 2 : 16;
		struct pollfd *n = realloc(p->pfds, cap * sizeof(*n));

		if (!n)
			return -1; /* slirp then skips this socket a round */
		p->pfds = n;
		p->pfds_cap = cap;
	}
	ev |= events & SLIRP_POLL_IN ? POLLIN : 0;
	ev |= events & SLIRP_POLL_OUT ? POLLOUT : 0;
	ev |= events & SLIRP_POLL_PRI ? POLLPRI : 0;
	p->pfds[p->npfds] = (struct pollfd){.fd = fd, .events = ev};
	return (int)p->npfds++;
}

static int
cb_get_revents(int idx, void *opaque)
{
	struct slirp_priv *p = opaque;
	short re;
	int ev = 0;

	if (idx < 0 || (size_t)idx >= p->npfds)
		return 0;
	re = p->pfds[idx].revents;
	ev |= re & POLLIN ? SLIRP_POLL_IN : 0;
	ev |= re & POLLOUT ? SLIRP_POLL_OUT : 0;
	ev |= re & POLLPRI ? SLIRP_POLL_PRI : 0;
	ev |= re & POLLERR ? SLIRP_POLL_ERR : 0;
	ev |= re & POLLHUP ? SLIRP_POLL_HUP : 0;
	return ev;
}

static int
watch_ctl(struct slirp_priv *p, int op, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};
	int rc = epoll_ctl(p->epfd, op, fd, &ev);

	/* A number slirp closed and reused without our hearing of it. */
	if (rc < 0 && op == EPOLL_CTL_MOD && errno == ENOENT)
		rc = epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev);
	else if (rc < 0 && op == EPOLL_CTL_ADD && errno == EEXIST)
		rc = epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev);
	return rc;
}

static uint32_t
epoll_events(short ev)
{
	return (ev & POLLIN ? EPOLLIN : 0) | (ev & POLLOUT ? EPOLLOUT : 0) |
	       (ev & POLLPRI ? EPOLLPRI : 0);
}

static struct slirp_watch *
watch_find(struct slirp_priv *p, int fd)
{
	for (size_t i = 0; i < p->nwatch; i++)
		if (p->watch[i].fd == fd)
			return &p->watch[i];
	return NULL;
}

/*
 * Make epfd hold what the last fill asked for. A socket with no events is
 * left out: epoll would still report its hangup, over and over, to a slirp
 * that did not ask.
 */
static void
watch_sync(struct slirp_priv *p)
{
	for (size_t i = 0; i < p->nwatch; i++)
		p->watch[i].seen = false;
	for (size_t i = 0; i < p->npfds; i++) {
		uint32_t ev = epoll_events(p->pfds[i].events);
		struct slirp_watch *w = watch_find(p, p->pfds[i].fd);

		if (!ev)
			continue;
		if (w) {
			ev |= w->seen ? w->events : 0;
			if (ev != w->events || !w->seen)
				watch_ctl(p, EPOLL_CTL_MOD, w->fd, ev);
			w->events = ev;
			w->seen = true;
			continue;
		}
		if (p->nwatch == p->watch_cap) {
			size_t cap = p->watch_cap ? p->watch_cap * 2 : 16;
			struct slirp_watch *n =
			    realloc(p->watch, cap * sizeof(*n));

			if (!n)
				continue;
			p->watch = n;
			p->watch_cap = cap;
		}
		if (watch_ctl(p, EPOLL_CTL_ADD, p->pfds[i].fd, ev) == 0)
			p->watch[p->nwatch++] = (struct slirp_watch){
			    .fd = p->pfds[i].fd, .events = ev, .seen = true};
	}
	for (size_t i = 0; i < p->nwatch;) {
		if (p->watch[i].seen) {
			i++;
			continue;
		}
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->watch[i].fd, NULL);
		p->watch[i] = p->watch[--p->nwatch];
	}
}

/* Run the timers that are due; each may free or re-arm any timer. */
static void
run_timers(struct slirp_priv *p)
{
	int64_t now = now_ns() / 1000000;
	bool again = true;

	while (again) {
		again = false;
		for (struct slirp_timer *t = p->timers; t; t = t->next) {
			if (t->expire_ms >= 0 && t->expire_ms <= now) {
				t->expire_ms = -1;
				t->cb(t->opaque);
				again = true;
				break;
			}
		}
	}
}

/* The timerfd for the earliest of slirp's timers and its poll timeout. */
static void
arm_timer(struct slirp_priv *p, uint32_t timeout_ms)
{
	int64_t now = now_ns() / 1000000, ms = -1;
	struct itimerspec its = {0};

	if (timeout_ms != UINT32_MAX)
		ms = timeout_ms;
	for (struct slirp_timer *t = p->timers; t; t = t->next) {
		if (t->expire_ms < 0)
			continue;
		int64_t left = t->expire_ms > now ? t->expire_ms - now : 0;
		if (ms < 0 || left < ms)
			ms = left;
	}
	if (ms >= 0) {
		/* A zero it_value disarms: due now becomes 1 ns. */
		its.it_value.tv_sec = ms / 1000;
		its.it_value.tv_nsec = ms ? (ms % 1000) * 1000000 : 1;
	}
	timerfd_settime(p->timerfd, 0, &its, NULL);
}

/* One round (lock held): slirp serves what is ready, then says what next. */
static void
slirp_round(struct slirp_priv *p)
{
	uint32_t timeout = UINT32_MAX;
	int n = 0;

	p->in_round = true;
	if (p->npfds)
		n = poll(p->pfds, p->npfds, 0);
	slirp_pollfds_poll(p->slirp, n < 0, cb_get_revents, p);
	run_timers(p);
	p->npfds = 0;
	slirp_pollfds_fill(p->slirp, &timeout, cb_add_poll, p);
	watch_sync(p);
	arm_timer(p, timeout);
	p->in_round = false;
}

static void
drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) > 0)
		;
}

/* epfd is readable: a socket, the timer or a kick. */
static void
slirp_poll_ev(int fd, enum ev_type type, void *arg)
{
	struct slirp_priv *p = arg;

	(void)fd;
	(void)type;
	drain(p->kickfd);
	drain(p->timerfd);
	pthread_mutex_lock(&p->lock);
	p->kicked = false;
	slirp_round(p);
	pthread_mutex_unlock(&p->lock);
}

/* Frames for the guest are queued: the NIC takes them with netbe_recv. */
static void
slirp_rx_ev(int fd, enum ev_type type, void *arg)
{
	struct slirp_priv *p = arg;
	bool call;

	(void)type;
	drain(fd);
	pthread_mutex_lock(&p->qlock);
	p->rx_signalled = false;
	call = p->rx_enabled && p->qcount > 0;
	pthread_mutex_unlock(&p->qlock);
	if (call)
		p->be->rx_cb(fd, p->be->rx_arg);
}

/* ---- the backend ---- */

static struct slirp_priv *
priv_of(struct net_backend *be)
{
	return (struct slirp_priv *)be->priv;
}

static void slirp_be_cleanup(struct net_backend *be);

static int
slirp_open_fds(struct slirp_priv *p)
{
	struct epoll_event ev = {.events = EPOLLIN};

	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->rxfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->timerfd =
	    timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (p->epfd < 0 || p->kickfd < 0 || p->rxfd < 0 || p->timerfd < 0)
		return -1;
	ev.data.fd = p->kickfd;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->kickfd, &ev) < 0)
		return -1;
	ev.data.fd = p->timerfd;
	return epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->timerfd, &ev);
}

static int
slirp_be_init(struct net_backend *be, struct vmctx *ctx, const char *name,
	      struct config *nic, char *err, size_t errlen)
{
	struct slirp_priv *p = priv_of(be);
	const char *hostfwd = config_get(nic, "hostfwd");
	struct mevent *mev = machine_of(ctx)->mev;
	SlirpConfig cfg = {
	    .version = 4,
	    .in_enabled = true,
	    .vnetwork.s_addr = htonl(SLIRP_NET),
	    .vnetmask.s_addr = htonl(SLIRP_MASK),
	    .vhost.s_addr = htonl(SLIRP_HOST),
	    .vdhcp_start.s_addr = htonl(SLIRP_GUEST),
	    .vnameserver.s_addr = htonl(SLIRP_DNS),
	    .if_mtu = 1500,
	    .if_mru = 1500,
	};

	if (strcmp(name, "slirp") != 0) {
		snprintf(err, errlen,
			 "unknown network backend '%s' (did you "
			 "mean slirp?)",
			 name);
		return -1;
	}
	p->be = be;
	p->epfd = p->kickfd = p->rxfd = p->timerfd = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->qlock, NULL);
	p->rx_enabled = true;
	if (slirp_open_fds(p) < 0) {
		snprintf(err, errlen, "slirp: %s", strerror(errno));
		goto fail;
	}
	p->slirp = slirp_new(&cfg, &slirp_cbs, p);
	if (!p->slirp) {
		snprintf(err, errlen, "slirp: libslirp would not start");
		goto fail;
	}
	if (hostfwd && slirp_add_rules(p, hostfwd, err, errlen) < 0)
		goto fail;
	/*
	 * The guest's connections are libslirp's sockets, made when it
	 * makes them; its DNS forwarder rereads /etc/resolv.conf.
	 */
	sandbox_allow_sockets();
	sandbox_allow_reading_files();
	pthread_mutex_lock(&p->lock);
	slirp_round(p); /* the hostfwd listeners into epfd */
	pthread_mutex_unlock(&p->lock);
	p->poll_ev = mevent_add(mev, p->epfd, EVF_READ, slirp_poll_ev, p);
	p->rx_ev = mevent_add(mev, p->rxfd, EVF_READ, slirp_rx_ev, p);
	if (!p->poll_ev || !p->rx_ev) {
		snprintf(err, errlen, "slirp: cannot join the event loop");
		goto fail;
	}
	return 0;
fail:
	slirp_be_cleanup(be);
	return -1;
}

static void
close_fd(int fd)
{
	if (fd >= 0)
		close(fd);
}

static void
slirp_be_cleanup(struct net_backend *be)
{
	struct slirp_priv *p = priv_of(be);

	if (p->poll_ev)
		mevent_delete(p->poll_ev);
	if (p->rx_ev)
		mevent_delete(p->rx_ev);
	if (p->slirp)
		slirp_cleanup(p->slirp);
	while (p->timers) {
		struct slirp_timer *t = p->timers;

		p->timers = t->next;
		free(t);
	}
	for (unsigned int i = 0; i < p->qcount; i++)
		free(p->q[(p->qhead + i) % SLIRP_QUEUE_MAX]);
	free(p->pfds);
	free(p->watch);
	close_fd(p->epfd);
	close_fd(p->kickfd);
	close_fd(p->rxfd);
	close_fd(p->timerfd);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->qlock);
	memset(p, 0, sizeof(*p));
}

static ssize_t
slirp_be_send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	struct slirp_priv *p = priv_of(be);
	const uint8_t *frame = iov[0].iov_base;
	size_t len = 0;

	pthread_mutex_lock(&p->lock);
	if (iovcnt == 1) {
		len = iov[0].iov_len;
	} else {
		for (int i = 0; i < iovcnt; i++) {
			if (len + iov[i].iov_len > sizeof(p->txbuf)) {
				len = sizeof(p->txbuf) + 1;
				break;
			}
			memcpy(p->txbuf + len, iov[i].iov_base, iov[i].iov_len);
			len += iov[i].iov_len;
		}
		frame = p->txbuf;
	}
	/* Bigger than any frame without offloads: a guest's error, dropped. */
	if (len <= SLIRP_MAX_TX) {
		slirp_input(p->slirp, frame, (int)len);
		kick(p);
	}
	pthread_mutex_unlock(&p->lock);
	return (ssize_t)len;
}

static ssize_t
slirp_be_peek_recvlen(struct net_backend *be)
{
	struct slirp_priv *p = priv_of(be);
	ssize_t n = 0;

	pthread_mutex_lock(&p->qlock);
	if (p->qcount)
		n = (ssize_t)p->q[p->qhead]->len;
	pthread_mutex_unlock(&p->qlock);
	return n;
}

static struct slirp_frame *
dequeue(struct slirp_priv *p)
{
	struct slirp_frame *f = NULL;

	pthread_mutex_lock(&p->qlock);
	if (p->qcount) {
		f = p->q[p->qhead];
		p->qhead = (p->qhead + 1) % SLIRP_QUEUE_MAX;
		p->qcount--;
	}
	pthread_mutex_unlock(&p->qlock);
	return f;
}

static ssize_t
slirp_be_recv(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	struct slirp_frame *f = dequeue(priv_of(be));
	size_t done = 0;

	if (!f)
		return 0;
	for (int i = 0; i < iovcnt && done < f->len; i++) {
		size_t n = f->len - done < iov[i].iov_len ? f->len - done
							  : iov[i].iov_len;
		memcpy(iov[i].iov_base, f->data + done, n);
		done += n;
	}
	free(f);
	return (ssize_t)done;
}

static ssize_t
slirp_be_recv_discard(struct net_backend *be)
{
	struct slirp_frame *f = dequeue(priv_of(be));
	ssize_t n = f ? (ssize_t)f->len : 0;

	free(f);
	return n;
}

static void
slirp_be_rx_disable(struct net_backend *be)
{
	struct slirp_priv *p = priv_of(be);

	pthread_mutex_lock(&p->qlock);
	p->rx_enabled = false;
	pthread_mutex_unlock(&p->qlock);
}

/* The guest has buffers again: what waits is delivered at once. */
static void
slirp_be_rx_enable(struct net_backend *be)
{
	struct slirp_priv *p = priv_of(be);
	bool signal;

	pthread_mutex_lock(&p->qlock);
	p->rx_enabled = true;
	signal = p->qcount > 0 && !p->rx_signalled;
	if (signal)
		p->rx_signalled = true;
	pthread_mutex_unlock(&p->qlock);
	if (signal)
		wake(p->rxfd);
}

/* Whole frames only: slirp neither takes nor gives a vnet header. */
static uint64_t
slirp_be_get_cap(struct net_backend *be)
{
	(void)be;
	return 0;
}

static const char *const slirp_keys[] = {"hostfwd", NULL};

static const struct net_backend_ops slirp_backend = {
    .prefix = "slirp",
    .keys = slirp_keys,
    .init = slirp_be_init,
    .cleanup = slirp_be_cleanup,
    .send = slirp_be_send,
    .peek_recvlen = slirp_be_peek_recvlen,
    .recv = slirp_be_recv,
    .recv_discard = slirp_be_recv_discard,
    .rx_disable = slirp_be_rx_disable,
    .rx_enable = slirp_be_rx_enable,
    .get_cap = slirp_be_get_cap,
    .priv_size = sizeof(struct slirp_priv),
};
NET_BACKEND_SET(slirp_backend);
