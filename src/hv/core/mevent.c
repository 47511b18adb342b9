/*
 * The event loop: epoll over file descriptors, timerfds and a signalfd.
 * Callbacks run on the loop's thread; adds and deletes may come from any
 * thread (a deleted event is freed only by the loop, after its batch).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "mevent.h"

#define MEVENT_BATCH 32

struct mevent_ev {
	struct mevent *m;
	int fd;	     /* the fd epoll watches */
	int arg_fd;  /* what the callback is given: fd, period or signal */
	enum ev_type type;
	mevent_fn fn;
	void *arg;
	bool deleted;
	struct mevent_ev *next; /* on the deleted list */
};

struct mevent {
	int epfd;
	int stopfd;
	pthread_mutex_t lock;
	struct mevent_ev *graveyard;
	bool stop;
};

struct mevent *
mevent_create(void)
{
	struct mevent *m = calloc(1, sizeof(*m));
	struct epoll_event ev = {.events = EPOLLIN};

	if (!m)
		return NULL;
	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	m->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->epfd < 0 || m->stopfd < 0) {
		mevent_free(m);
		return NULL;
	}
	ev.data.ptr = NULL; /* the stop event */
	epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->stopfd, &ev);
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

static void
reap(struct mevent *m)
{
	struct mevent_ev *e, *next;

	pthread_mutex_lock(&m->lock);
	e = m->graveyard;
	m->graveyard = NULL;
	pthread_mutex_unlock(&m->lock);
	for (; e; e = next) {
		next = e->next;
		free(e);
	}
}

void
mevent_free(struct mevent *m)
{
	if (!m)
		return;
	reap(m);
	if (m->epfd >= 0)
		close(m->epfd);
	if (m->stopfd >= 0)
		close(m->stopfd);
	free(m);
}

static int
timer_fd(int ms)
{
	struct itimerspec its = {
		.it_interval = {ms / 1000, (ms % 1000) * 1000000L},
		.it_value = {ms / 1000, (ms % 1000) * 1000000L},
	};
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);

	if (fd >= 0 && timerfd_settime(fd, 0, &its, NULL) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
signal_fd(int sig)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	/* Block it everywhere: threads made later inherit the mask. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* The events whose descriptor mevent made, and closes. */
static bool
owns_fd(enum ev_type type)
{
	return type == EVF_TIMER || type == EVF_SIGNAL || type == EVF_ONESHOT;
}

struct mevent_ev *
mevent_add(struct mevent *m, int fd, enum ev_type type, mevent_fn fn,
	   void *arg)
{
	struct mevent_ev *e = calloc(1, sizeof(*e));
	struct epoll_event ev = {0};

	if (!e)
		return NULL;
	e->m = m;
	e->arg_fd = fd;
	e->type = type;
	e->fn = fn;
	e->arg = arg;
	switch (type) {
	case EVF_TIMER:
		if (fd <= 0)
			goto fail;
		e->fd = timer_fd(fd);
		break;
	case EVF_SIGNAL:
		e->fd = signal_fd(fd);
		break;
	case EVF_ONESHOT:
		e->fd =
		    timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		break;
	default:
		e->fd = fd;
	}
	if (e->fd < 0)
		goto fail;
	ev.events = type == EVF_WRITE ? EPOLLOUT : EPOLLIN;
	ev.data.ptr = e;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, e->fd, &ev) < 0) {
		if (owns_fd(type))
			close(e->fd);
		goto fail;
	}
	return e;
fail:
	free(e);
	return NULL;
}

int
mevent_delete(struct mevent_ev *e)
{
	struct mevent *m;

	if (!e)
		return -1;
	m = e->m;
	epoll_ctl(m->epfd, EPOLL_CTL_DEL, e->fd, NULL);
	if (owns_fd(e->type))
		close(e->fd);
	pthread_mutex_lock(&m->lock);
	e->deleted = true;
	e->next = m->graveyard;
	m->graveyard = e;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int
oneshot_set(struct mevent_ev *e, int flags, uint64_t ns)
{
	struct itimerspec its = {
		.it_value = {(time_t)(ns / 1000000000ULL),
			     (long)(ns % 1000000000ULL)},
	};

	if (!e || e->type != EVF_ONESHOT)
		return -1;
	return timerfd_settime(e->fd, flags, &its, NULL);
}

uint64_t
mevent_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int
mevent_arm(struct mevent_ev *e, uint64_t deadline_ns)
{
	/* An all-zero it_value would disarm it: the epoch is 1 ns. */
	return oneshot_set(e, TFD_TIMER_ABSTIME, deadline_ns ? deadline_ns : 1);
}

int
mevent_disarm(struct mevent_ev *e)
{
	return oneshot_set(e, 0, 0);
}

/*
 * Consume what made a timer or signal fd readable before the callback.
 * False when a one-shot timer has nothing to consume: it was disarmed or
 * moved after epoll saw it due, so its callback must not run.
 */
static bool
drain(struct mevent_ev *e)
{
	uint64_t ticks;
	struct signalfd_siginfo si;

	switch (e->type) {
	case EVF_TIMER: /* periodic: runs whatever the read says */
		(void)!read(e->fd, &ticks, sizeof(ticks));
		return true;
	case EVF_ONESHOT:
		return read(e->fd, &ticks, sizeof(ticks)) == sizeof(ticks);
	case EVF_SIGNAL:
		while (read(e->fd, &si, sizeof(si)) == sizeof(si))
			;
		return true;
	default:
		return true;
	}
}

int
mevent_dispatch(struct mevent *m)
{
	struct epoll_event evs[MEVENT_BATCH];
	uint64_t one;

	while (!__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(m->epfd, evs, MEVENT_BATCH, -1);

		if (n < 0 && errno != EINTR)
			return -1;
		for (int i = 0; i < n; i++) {
			struct mevent_ev *e = evs[i].data.ptr;

			if (!e)
				continue; /* stop event */
			if (__atomic_load_n(&e->deleted, __ATOMIC_ACQUIRE))
				continue;
			if (drain(e))
				e->fn(e->arg_fd, e->type, e->arg);
		}
		reap(m);
	}
	/* The stop is consumed: a later dispatch waits again. */
	(void)!read(m->stopfd, &one, sizeof(one));
	__atomic_store_n(&m->stop, false, __ATOMIC_RELEASE);
	return 0;
}

void
mevent_stop(struct mevent *m)
{
	uint64_t one = 1;

	__atomic_store_n(&m->stop, true, __ATOMIC_RELEASE);
	if (write(m->stopfd, &one, sizeof(one)) < 0)
		return;
}
