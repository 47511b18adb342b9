/* One line a second per call site for guest-triggered warnings. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "ratelimit.h"

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void
ratelimit_warn(struct ratelimit *rl, const char *fmt, ...)
{
	int64_t now = mono_ns(), next = atomic_load(&rl->next_ns);
	char msg[256];
	unsigned left_out;
	va_list ap;

	/* vCPU threads race here: one of them wins the second's line. */
	if (now < next ||
	    !atomic_compare_exchange_strong(&rl->next_ns, &next,
					    now + RATELIMIT_INTERVAL_NS)) {
		atomic_fetch_add(&rl->suppressed, 1);
		return;
	}
	left_out = atomic_exchange(&rl->suppressed, 0);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One write, so that lines from several threads do not interleave. */
	if (left_out)
		fprintf(stderr, "bhyve: %s (%u more like it not shown)\n", msg,
			left_out);
	else
		fprintf(stderr, "bhyve: %s\n", msg);
}
