/*
 * Warnings a guest can trigger over and over (a BAR moved onto another
 * device, 10,000 times) print at most one line a second per call site; the
 * next line that prints says how many were left out. The state lives with
 * whatever owns the call site (the PCI bus, a device), zeroed to start.
 */
#ifndef RATELIMIT_H
#define RATELIMIT_H

#include <stdatomic.h>
#include <stdint.h>

#define RATELIMIT_INTERVAL_NS 1000000000LL /* one line a second */

struct ratelimit {
	_Atomic int64_t next_ns;     /* CLOCK_MONOTONIC: when one may print */
	_Atomic unsigned suppressed; /* left out since the last line */
};

/* "bhyve: " fmt "\n" on stderr, unless one printed less than 1 s ago. */
void ratelimit_warn(struct ratelimit *rl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
