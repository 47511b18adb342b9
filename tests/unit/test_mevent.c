/* The event loop's one-shot timers: armed, moved, disarmed, owned. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mevent.h"

#define MS 1000000ULL

struct fx {
	struct mevent *m;
	int fired[2];		 /* runs of timers a and b */
	struct mevent_ev *ev[2]; /* a and b */
	int disarm_other;	 /* a's or b's callback disarms the other */
};

static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void
on_a(int fd, enum ev_type type, void *arg)
{
	struct fx *f = arg;

	assert_int_equal(type, EVF_ONESHOT);
	(void)fd;
	f->fired[0]++;
	if (f->disarm_other)
		assert_int_equal(mevent_disarm(f->ev[1]), 0);
}

static void
on_b(int fd, enum ev_type type, void *arg)
{
	struct fx *f = arg;

	(void)fd;
	(void)type;
	f->fired[1]++;
	if (f->disarm_other)
		assert_int_equal(mevent_disarm(f->ev[0]), 0);
}

static void
on_stop(int fd, enum ev_type type, void *arg)
{
	(void)fd;
	(void)type;
	mevent_stop(arg);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->m = mevent_create();
	assert_non_null(f->m);
	f->ev[0] = mevent_add(f->m, 0, EVF_ONESHOT, on_a, f);
	f->ev[1] = mevent_add(f->m, 0, EVF_ONESHOT, on_b, f);
	assert_non_null(f->ev[0]);
	assert_non_null(f->ev[1]);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	mevent_delete(f->ev[0]);
	mevent_delete(f->ev[1]);
	mevent_free(f->m);
	free(f);
	return 0;
}

/* Run the loop until a stopping timer 'ms' from now. */
static void
run_for(struct fx *f, uint64_t ms)
{
	struct mevent_ev *stop =
	    mevent_add(f->m, 0, EVF_ONESHOT, on_stop, f->m);

	assert_non_null(stop);
	assert_int_equal(mevent_arm(stop, mevent_now_ns() + ms * MS), 0);
	assert_int_equal(mevent_dispatch(f->m), 0);
	mevent_delete(stop);
}

/* A timer added and never armed does not fire. */
static void
test_made_disarmed(void **state)
{
	struct fx *f = *state;

	run_for(f, 20);
	assert_int_equal(f->fired[0], 0);
	assert_int_equal(f->fired[1], 0);
}

/* It fires once, not before its moment, and not again until re-armed. */
static void
test_fires_once(void **state)
{
	struct fx *f = *state;
	uint64_t at = mevent_now_ns() + 5 * MS;

	assert_int_equal(mevent_arm(f->ev[0], at), 0);
	run_for(f, 60);
	assert_int_equal(f->fired[0], 1);
	assert_true(mevent_now_ns() >= at);
	run_for(f, 20);
	assert_int_equal(f->fired[0], 1);
	/* A moment already past (0, the epoch, too) fires at once. */
	assert_int_equal(mevent_arm(f->ev[0], 0), 0);
	assert_int_equal(mevent_arm(f->ev[1], mevent_now_ns() - MS), 0);
	run_for(f, 20);
	assert_int_equal(f->fired[0], 2);
	assert_int_equal(f->fired[1], 1);
}

/* Arming again moves it: later, so it has not fired; earlier, so it has. */
static void
test_rearm_moves(void **state)
{
	struct fx *f = *state;

	assert_int_equal(mevent_arm(f->ev[0], mevent_now_ns() + 2 * MS), 0);
	assert_int_equal(mevent_arm(f->ev[0], mevent_now_ns() + 10000 * MS), 0);
	assert_int_equal(mevent_arm(f->ev[1], mevent_now_ns() + 10000 * MS), 0);
	assert_int_equal(mevent_arm(f->ev[1], mevent_now_ns() + 2 * MS), 0);
	run_for(f, 60);
	assert_int_equal(f->fired[0], 0);
	assert_int_equal(f->fired[1], 1);
	/* Disarmed before it was due: it does not fire. */
	assert_int_equal(mevent_disarm(f->ev[0]), 0);
	run_for(f, 20);
	assert_int_equal(f->fired[0], 0);
}

/*
 * Both due, so one epoll batch reports both; whichever runs first disarms
 * the other, whose callback then must not run (it is no longer due).
 */
static void
test_disarmed_in_batch(void **state)
{
	struct fx *f = *state;

	f->disarm_other = 1;
	assert_int_equal(mevent_arm(f->ev[0], 1), 0);
	assert_int_equal(mevent_arm(f->ev[1], 1), 0);
	usleep(2000);
	run_for(f, 20);
	assert_int_equal(f->fired[0] + f->fired[1], 1);
}

/* Only one-shot timers arm; mevent closes the timerfd it made. */
static void
test_misuse_and_fds(void **state)
{
	struct fx *f = *state;
	int fds[2], before;
	struct mevent_ev *rd, *t;

	assert_int_equal(pipe(fds), 0);
	rd = mevent_add(f->m, fds[0], EVF_READ, on_a, f);
	assert_non_null(rd);
	assert_int_equal(mevent_arm(rd, mevent_now_ns()), -1);
	assert_int_equal(mevent_disarm(rd), -1);
	assert_int_equal(mevent_arm(NULL, 1), -1);
	assert_int_equal(mevent_disarm(NULL), -1);
	mevent_delete(rd);
	close(fds[0]);
	close(fds[1]);

	before = open_fds();
	t = mevent_add(f->m, 0, EVF_ONESHOT, on_a, f);
	assert_non_null(t);
	assert_int_equal(open_fds(), before + 1);
	assert_int_equal(mevent_arm(t, mevent_now_ns() + 1000 * MS), 0);
	mevent_delete(t);
	assert_int_equal(open_fds(), before);
	run_for(f, 5); /* reaps it */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_made_disarmed, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_fires_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rearm_moves, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_disarmed_in_batch, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_misuse_and_fds, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
