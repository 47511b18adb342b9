/*
 * The event loop: one thread waiting in epoll for file descriptors,
 * timers (timerfd) and signals (signalfd), as bhyve's mevent.
 */
#ifndef MEVENT_H
#define MEVENT_H

enum ev_type {
	EVF_READ,
	EVF_WRITE,
	EVF_TIMER,  /* fd is the period in milliseconds */
	EVF_SIGNAL, /* fd is the signal number */
};

struct mevent;
struct mevent_ev;
typedef void (*mevent_fn)(int fd, enum ev_type type, void *arg);

struct mevent *mevent_create(void);
void mevent_free(struct mevent *m);
struct mevent_ev *mevent_add(struct mevent *m, int fd, enum ev_type type,
			     mevent_fn fn, void *arg);
/* Remove an event; safe from its own callback. */
int mevent_delete(struct mevent_ev *ev);
/* Wait for and run events until mevent_stop; returns 0. */
int mevent_dispatch(struct mevent *m);
/* Make mevent_dispatch return; callable from any thread. */
void mevent_stop(struct mevent *m);

#endif
