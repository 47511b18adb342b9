/*
 * The event loop: one thread waiting in epoll for file descriptors,
 * timers (timerfd) and signals (signalfd), as bhyve's mevent.
 */
#ifndef MEVENT_H
#define MEVENT_H

#include <stdint.h>

enum ev_type {
	EVF_READ,
	EVF_WRITE,
	EVF_TIMER,   /* fd is the period in milliseconds */
	EVF_SIGNAL,  /* fd is the signal number */
	EVF_ONESHOT, /* fd is unused: a timer armed by mevent_arm */
};

struct mevent;
struct mevent_ev;
typedef void (*mevent_fn)(int fd, enum ev_type type, void *arg);

struct mevent *mevent_create(void);
void mevent_free(struct mevent *m);
struct mevent_ev *mevent_add(struct mevent *m, int fd, enum ev_type type,
			     mevent_fn fn, void *arg);
/*
 * An EVF_ONESHOT timer is made disarmed. mevent_arm sets the moment it
 * fires, in CLOCK_MONOTONIC nanoseconds (a moment already past fires at
 * once); arming again moves it, mevent_disarm cancels it. The callback
 * runs only for a timer that expired since it was last armed: one
 * disarmed or moved later after it became due does not run. mevent owns
 * the timerfd. Both are callable from any thread; 0, or -1 for an event
 * that is not a one-shot timer.
 */
int mevent_arm(struct mevent_ev *ev, uint64_t deadline_ns);
int mevent_disarm(struct mevent_ev *ev);
/* Now, on the clock one-shot timers are armed in (CLOCK_MONOTONIC ns). */
uint64_t mevent_now_ns(void);
/* Remove an event; safe from its own callback. */
int mevent_delete(struct mevent_ev *ev);
/*
 * Wait for and run events until mevent_stop (which may come before it
 * starts); returns 0, or -1 if epoll fails. Each stop ends one dispatch.
 */
int mevent_dispatch(struct mevent *m);
/* Make mevent_dispatch return; callable from any thread. */
void mevent_stop(struct mevent *m);

#endif
