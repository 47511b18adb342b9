/* The HPET: registers, the counter, comparators and their interrupts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include <cmocka.h>

#include "config.h"
#include "hpet.h"
#include "machine.h"
#include "mem.h"
#include "mevent.h"
#include "vmm.h"

#define EDGE_PIN 11
#define LEVEL_PIN 10

struct fx {
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
};

static void
hpet_up(struct fx *f)
{
	const struct sysdev *d = sysdev_find("hpet");

	assert_non_null(d);
	assert_int_equal(d->init(f->ctx), 0);
}

static int
setup_nodev(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->ctx = vm_create_mock(16 << 20);
	f->cfg = config_create();
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	setup_nodev(state);
	hpet_up(*state);
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	machine_free(f->m);
	config_free(f->cfg);
	vm_close(f->ctx);
	free(f);
	return 0;
}

static uint64_t
rd(struct fx *f, uint64_t off, int size)
{
	uint64_t v = 0x5a5a5a5a5a5a5a5aULL;

	assert_int_equal(
	    emulate_mem(f->ctx, NULL, HPET_BASE + off, MEM_F_READ, size, &v),
	    0);
	return v;
}

static void
wr(struct fx *f, uint64_t off, int size, uint64_t v)
{
	assert_int_equal(
	    emulate_mem(f->ctx, NULL, HPET_BASE + off, MEM_F_WRITE, size, &v),
	    0);
}

static void
sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

static uint64_t
tconf(int n)
{
	return HPET_TIMER(n) + HPET_TN_CONFIG;
}

static uint64_t
tcmp(int n)
{
	return HPET_TIMER(n) + HPET_TN_CMP;
}

static void
test_capabilities(void **state)
{
	struct fx *f = *state;
	uint64_t cap = rd(f, HPET_CAP_ID, 8);

	assert_int_equal(cap & 0xff, 1);		       /* REV_ID */
	assert_int_equal((cap >> 8) & 0x1f, HPET_NTIMERS - 1); /* NUM_TIM */
	assert_true(cap & HPET_CAP_COUNT_SIZE);
	assert_false(cap & HPET_CAP_LEG_RT);
	assert_int_equal((cap >> 16) & 0xffff, 0x8086);
	assert_int_equal(cap >> 32, HPET_PERIOD_FS);
	assert_int_equal(cap >> 32, 1000000000000000ULL / HPET_FREQ);
	/* 32-bit halves, and the ACPI table's block ID. */
	assert_int_equal(rd(f, HPET_CAP_ID, 4), cap & 0xffffffff);
	assert_int_equal(rd(f, HPET_CAP_ID + 4, 4), cap >> 32);
	assert_int_equal(hpet_block_id(), (uint32_t)cap);
	/* Read-only. */
	wr(f, HPET_CAP_ID, 8, 0);
	wr(f, HPET_CAP_ID + 4, 4, 0);
	assert_int_equal(rd(f, HPET_CAP_ID, 8), cap);
	/* Timer 0 periodic and 64-bit; all route to the same pins. */
	for (int n = 0; n < HPET_NTIMERS; n++) {
		uint64_t c = rd(f, tconf(n), 8);

		assert_int_equal(c >> 32, HPET_ROUTE_CAP);
		assert_true(c & HPET_TN_SIZE_CAP);
		assert_true(c & HPET_TN_FSB_CAP);
		assert_int_equal(!!(c & HPET_TN_PER_CAP), n == 0);
		assert_int_equal(c & HPET_TN_INT_ENB, 0);
	}
	assert_int_equal(rd(f, HPET_CONFIG, 8), 0);
	assert_int_equal(rd(f, HPET_ISR, 8), 0);
}

static void
test_counter_runs_only_enabled(void **state)
{
	struct fx *f = *state;
	uint64_t a, b, d;

	a = rd(f, HPET_COUNTER, 8);
	sleep_us(2000);
	assert_int_equal(rd(f, HPET_COUNTER, 8), a); /* halted */
	wr(f, HPET_CONFIG, 4, HPET_CNF_ENABLE);
	a = rd(f, HPET_COUNTER, 8);
	sleep_us(2000);
	b = rd(f, HPET_COUNTER, 8);
	d = b - a;
	assert_true(d >= HPET_FREQ / 500); /* at least 2 ms */
	assert_true(d < HPET_FREQ);	   /* well under a second */
	wr(f, HPET_CONFIG, 4, 0);
	a = rd(f, HPET_COUNTER, 8);
	assert_true(a >= b);
	sleep_us(2000);
	assert_int_equal(rd(f, HPET_COUNTER, 8), a);
	/* Written while halted, it restarts from there. */
	wr(f, HPET_COUNTER, 8, 0x123456789ULL);
	assert_int_equal(rd(f, HPET_COUNTER, 8), 0x123456789ULL);
	wr(f, HPET_COUNTER + 4, 4, 0x42);
	assert_int_equal(rd(f, HPET_COUNTER, 8), 0x4223456789ULL);
	assert_int_equal(rd(f, HPET_COUNTER + 4, 4), 0x42);
	assert_int_equal(rd(f, HPET_COUNTER, 4), 0x23456789);
	wr(f, HPET_CONFIG, 4, HPET_CNF_ENABLE);
	sleep_us(1000);
	assert_true(rd(f, HPET_COUNTER, 8) > 0x4223456789ULL);
	/* LEG_RT_CNF is not offered: it stays clear. */
	wr(f, HPET_CONFIG, 8, ~0ULL);
	assert_int_equal(rd(f, HPET_CONFIG, 8), HPET_CNF_ENABLE);
}

static void
test_register_halves(void **state)
{
	struct fx *f = *state;

	wr(f, tcmp(1), 4, 0x89abcdef);
	wr(f, tcmp(1) + 4, 4, 0x01234567);
	assert_int_equal(rd(f, tcmp(1), 8), 0x0123456789abcdefULL);
	assert_int_equal(rd(f, tcmp(1) + 4, 4), 0x01234567);
	wr(f, tcmp(1), 8, 0xfedcba9876543210ULL);
	assert_int_equal(rd(f, tcmp(1), 4), 0x76543210);
	assert_int_equal(rd(f, tcmp(1) + 4, 4), 0xfedcba98);
	/* FSB route: data low, address high. */
	wr(f, HPET_TIMER(2) + HPET_TN_FSB + 4, 4, 0xfee00000);
	wr(f, HPET_TIMER(2) + HPET_TN_FSB, 4, 0x4041);
	assert_int_equal(rd(f, HPET_TIMER(2) + HPET_TN_FSB, 8),
			 0xfee0000000004041ULL);
	/* 32-bit mode keeps the low half only. */
	wr(f, tconf(0), 4, HPET_TN_32BIT);
	assert_int_equal(rd(f, tcmp(0), 8), 0);
	wr(f, tcmp(0), 8, 0x1111111122222222ULL);
	assert_int_equal(rd(f, tcmp(0), 8), 0x22222222);
	wr(f, tcmp(0) + 4, 4, 0x33);
	assert_int_equal(rd(f, tcmp(0) + 4, 4), 0);
}

static void
test_read_only_bits(void **state)
{
	struct fx *f = *state;
	uint64_t caps1 = rd(f, tconf(1), 8);

	/* Timer 1: no periodic mode, no VAL_SET; caps stay. */
	wr(f, tconf(1), 8, ~0ULL);
	assert_int_equal(rd(f, tconf(1), 8) &
			     ~(uint64_t)(HPET_TN_LEVEL | HPET_TN_INT_ENB |
					 HPET_TN_32BIT | HPET_TN_FSB_EN),
			 caps1);
	/* Route 31 is not in the capability: the old route (0) stays. */
	assert_int_equal(rd(f, tconf(1), 8) & HPET_TN_ROUTE, 0);
	wr(f, tconf(1), 4, EDGE_PIN << HPET_TN_ROUTE_SHIFT);
	assert_int_equal(rd(f, tconf(1), 4) & HPET_TN_ROUTE,
			 EDGE_PIN << HPET_TN_ROUTE_SHIFT);
	wr(f, tconf(1), 4, 3 << HPET_TN_ROUTE_SHIFT);
	assert_int_equal(rd(f, tconf(1), 4) & HPET_TN_ROUTE,
			 EDGE_PIN << HPET_TN_ROUTE_SHIFT);
	/* The upper half (route capability) ignores writes. */
	wr(f, tconf(1) + 4, 4, 0);
	assert_int_equal(rd(f, tconf(1) + 4, 4), HPET_ROUTE_CAP);
	/* Timer 0 does take periodic mode. */
	wr(f, tconf(0), 4, HPET_TN_PERIODIC);
	assert_true(rd(f, tconf(0), 4) & HPET_TN_PERIODIC);
	/* The ISR ignores writes of 0 and bits of no timer. */
	wr(f, HPET_ISR, 8, ~0ULL);
	assert_int_equal(rd(f, HPET_ISR, 8), 0);
	/* Reserved space reads 0. */
	assert_int_equal(rd(f, 0x08, 8), 0);
	assert_int_equal(rd(f, 0x3f8, 8), 0);
	wr(f, 0x3f8, 8, ~0ULL);
	assert_int_equal(rd(f, 0x3f8, 8), 0);
}

/* Enable the HPET and timer n on pin with 'flags'; cmp = now + ticks. */
static uint64_t
arm_timer(struct fx *f, int n, int pin, uint64_t flags, uint64_t ticks)
{
	uint64_t now;

	wr(f, HPET_CONFIG, 4, HPET_CNF_ENABLE);
	wr(f, tconf(n), 4,
	   (uint64_t)pin << HPET_TN_ROUTE_SHIFT | HPET_TN_INT_ENB | flags);
	now = rd(f, HPET_COUNTER, 8);
	wr(f, tcmp(n), 8, now + ticks);
	return now + ticks;
}

static void
test_no_host_timer_unless_armed(void **state)
{
	struct fx *f = *state;

	for (int n = 0; n < HPET_NTIMERS; n++)
		assert_int_equal(hpet_armed(f->ctx, n), 0);
	/* Counting alone, or a timer enabled in a halted HPET: nothing. */
	wr(f, HPET_CONFIG, 4, HPET_CNF_ENABLE);
	wr(f, tcmp(0), 8, rd(f, HPET_COUNTER, 8) + 10 * HPET_FREQ);
	assert_int_equal(hpet_armed(f->ctx, 0), 0);
	wr(f, HPET_CONFIG, 4, 0);
	wr(f, tconf(0), 4, HPET_TN_INT_ENB | EDGE_PIN << HPET_TN_ROUTE_SHIFT);
	assert_int_equal(hpet_armed(f->ctx, 0), 0);
	wr(f, HPET_CONFIG, 4, HPET_CNF_ENABLE);
	assert_int_equal(hpet_armed(f->ctx, 0), 1);
	wr(f, HPET_CONFIG, 4, 0);
	assert_int_equal(hpet_armed(f->ctx, 0), 0);
}

static void
test_oneshot_edge(void **state)
{
	struct fx *f = *state;

	arm_timer(f, 1, EDGE_PIN, 0, 10); /* 1 us */
	assert_int_equal(hpet_armed(f->ctx, 1), 1);
	sleep_us(1000);
	hpet_expire(f->ctx, 1);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, EDGE_PIN), 1);
	assert_int_equal(vm_mock_irq_level(f->ctx, EDGE_PIN), 0);
	assert_int_equal(rd(f, HPET_ISR, 8), 0); /* edge: no status */
	/* 64-bit one-shot: the next match is a wrap away, never armed. */
	assert_int_equal(hpet_armed(f->ctx, 1), 0);
	hpet_expire(f->ctx, 1);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, EDGE_PIN), 1);
}

static void
test_early_expiry_is_ignored(void **state)
{
	struct fx *f = *state;

	arm_timer(f, 2, EDGE_PIN, 0, 10 * HPET_FREQ); /* 10 s away */
	hpet_expire(f->ctx, 2);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, EDGE_PIN), 0);
	assert_int_equal(hpet_armed(f->ctx, 2), 1);
	/* Interrupts disabled: disarmed, and a late expiry does nothing. */
	wr(f, tconf(2), 4, EDGE_PIN << HPET_TN_ROUTE_SHIFT);
	assert_int_equal(hpet_armed(f->ctx, 2), 0);
	hpet_expire(f->ctx, 2);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, EDGE_PIN), 0);
}

static void
test_oneshot_32bit_rearms_for_wrap(void **state)
{
	struct fx *f = *state;

	arm_timer(f, 1, EDGE_PIN, HPET_TN_32BIT, 10);
	sleep_us(1000);
	hpet_expire(f->ctx, 1);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, EDGE_PIN), 1);
	/* The low 32 bits match again after 2^32 ticks. */
	assert_int_equal(hpet_armed(f->ctx, 1), 1);
}

/* Linux's periodic set-up: VAL_SET, comparator, then the period. */
static void
test_periodic(void **state)
{
	struct fx *f = *state;
	const uint64_t period = 1000; /* 100 us */
	uint64_t first, cmp, cnt;

	wr(f, HPET_CONFIG, 4, HPET_CNF_ENABLE);
	wr(f, tconf(0), 4,
	   HPET_TN_INT_ENB | HPET_TN_PERIODIC | HPET_TN_VAL_SET |
	       EDGE_PIN << HPET_TN_ROUTE_SHIFT);
	first = rd(f, HPET_COUNTER, 8) + period;
	wr(f, tcmp(0), 8, first);
	assert_int_equal(rd(f, tconf(0), 4) & HPET_TN_VAL_SET, 0);
	wr(f, tcmp(0), 8, period); /* the period only */
	assert_int_equal(rd(f, tcmp(0), 8), first);
	sleep_us(1000);
	cnt = rd(f, HPET_COUNTER, 8);
	hpet_expire(f->ctx, 0);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, EDGE_PIN), 1);
	/* Reloaded by whole periods, past the counter. */
	cmp = rd(f, tcmp(0), 8);
	assert_true(cmp > cnt);
	assert_int_equal((cmp - first) % period, 0);
	assert_int_equal(hpet_armed(f->ctx, 0), 1);
	sleep_us(1000);
	hpet_expire(f->ctx, 0);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, EDGE_PIN), 2);
	assert_true(rd(f, tcmp(0), 8) > cmp);
}

/*
 * A period of one tick runs at the 100 us floor: expiring as fast as we
 * can for 20 ms fires at most 20 ms / 100 us of MSIs, not one per call.
 */
static void
test_min_period(void **state)
{
	struct fx *f = *state;
	struct timespec t0, t;
	uint64_t addr, msg, cmp, last = 0;
	long calls = 0, ms = 0;
	int fires;

	wr(f, HPET_TIMER(0) + HPET_TN_FSB, 8, 0xfee00000ULL << 32 | 0x41);
	wr(f, HPET_CONFIG, 4, HPET_CNF_ENABLE);
	wr(f, tconf(0), 4,
	   HPET_TN_INT_ENB | HPET_TN_PERIODIC | HPET_TN_VAL_SET |
	       HPET_TN_FSB_EN);
	wr(f, tcmp(0), 8, rd(f, HPET_COUNTER, 8) + 1000);
	wr(f, tcmp(0), 8, 1); /* the period: one tick */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (ms < 20) {
		hpet_expire(f->ctx, 0);
		calls++;
		cmp = rd(f, tcmp(0), 8);
		/* Each reload moves the comparator by whole 100 us periods. */
		if (last && cmp != last)
			assert_true(cmp - last >= 1000);
		last = cmp;
		clock_gettime(CLOCK_MONOTONIC, &t);
		ms = (t.tv_sec - t0.tv_sec) * 1000 +
		     (t.tv_nsec - t0.tv_nsec) / 1000000;
	}
	fires = vm_mock_msi_count(f->ctx, &addr, &msg);
	assert_true(fires >= 1);
	assert_true(fires <= ms * 10 + 2);
	assert_true(calls > fires); /* expiries came faster than the floor */
	assert_int_equal(hpet_armed(f->ctx, 0), 1);
}

static void
test_level_and_status(void **state)
{
	struct fx *f = *state;

	arm_timer(f, 1, LEVEL_PIN, HPET_TN_LEVEL, 10);
	sleep_us(1000);
	hpet_expire(f->ctx, 1);
	assert_int_equal(vm_mock_irq_level(f->ctx, LEVEL_PIN), 1);
	assert_int_equal(rd(f, HPET_ISR, 8), 1u << 1);
	/* Writing 0, or another timer's bit, leaves it. */
	wr(f, HPET_ISR, 4, 0);
	wr(f, HPET_ISR, 4, 1u << 0);
	assert_int_equal(vm_mock_irq_level(f->ctx, LEVEL_PIN), 1);
	wr(f, HPET_ISR, 4, 1u << 1);
	assert_int_equal(rd(f, HPET_ISR, 8), 0);
	assert_int_equal(vm_mock_irq_level(f->ctx, LEVEL_PIN), 0);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, LEVEL_PIN), 1);

	/* Again; this time disabling the interrupt drops the line. */
	arm_timer(f, 1, LEVEL_PIN, HPET_TN_LEVEL, 10);
	sleep_us(1000);
	hpet_expire(f->ctx, 1);
	assert_int_equal(vm_mock_irq_level(f->ctx, LEVEL_PIN), 1);
	wr(f, tconf(1), 4, HPET_TN_LEVEL | LEVEL_PIN << HPET_TN_ROUTE_SHIFT);
	assert_int_equal(vm_mock_irq_level(f->ctx, LEVEL_PIN), 0);
	assert_int_equal(rd(f, HPET_ISR, 8), 1u << 1); /* status stays */
	/* Switching to edge clears the status. */
	wr(f, tconf(1), 4, LEVEL_PIN << HPET_TN_ROUTE_SHIFT);
	assert_int_equal(rd(f, HPET_ISR, 8), 0);
	assert_int_equal(vm_mock_irq_level(f->ctx, LEVEL_PIN), 0);
	/* A halted HPET holds no line. */
	arm_timer(f, 1, LEVEL_PIN, HPET_TN_LEVEL, 10);
	sleep_us(1000);
	hpet_expire(f->ctx, 1);
	assert_int_equal(vm_mock_irq_level(f->ctx, LEVEL_PIN), 1);
	wr(f, HPET_CONFIG, 4, 0);
	assert_int_equal(vm_mock_irq_level(f->ctx, LEVEL_PIN), 0);
}

static void
test_fsb_msi(void **state)
{
	struct fx *f = *state;
	uint64_t addr, msg;

	wr(f, HPET_TIMER(2) + HPET_TN_FSB, 8, 0xfee00000ULL << 32 | 0x41);
	arm_timer(f, 2, EDGE_PIN, HPET_TN_FSB_EN, 10);
	sleep_us(1000);
	hpet_expire(f->ctx, 2);
	assert_int_equal(vm_mock_msi_count(f->ctx, &addr, &msg), 1);
	assert_int_equal(addr, 0xfee00000);
	assert_int_equal(msg, 0x41);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, EDGE_PIN), 0);
}

static void
expect_bad(struct fx *f, uint64_t off, int size)
{
	uint64_t v = 0;

	assert_int_equal(
	    emulate_mem(f->ctx, NULL, HPET_BASE + off, MEM_F_READ, size, &v),
	    0);
	assert_int_equal(v, ~0ULL);
	v = ~0ULL;
	assert_int_equal(
	    emulate_mem(f->ctx, NULL, HPET_BASE + off, MEM_F_WRITE, size, &v),
	    0);
}

static void
test_bad_sizes(void **state)
{
	struct fx *f = *state;

	expect_bad(f, HPET_CONFIG, 1);
	expect_bad(f, HPET_CONFIG, 2);
	expect_bad(f, HPET_CONFIG + 2, 4); /* misaligned */
	expect_bad(f, HPET_CONFIG + 4, 8);
	expect_bad(f, tconf(0), 1);
	expect_bad(f, HPET_ISR, 2);
	expect_bad(f, HPET_COUNTER + 1, 1);
	/* None of it enabled anything. */
	assert_int_equal(rd(f, HPET_CONFIG, 8), 0);
	assert_int_equal(rd(f, tconf(0), 8) & HPET_TN_INT_ENB, 0);
	assert_int_equal(rd(f, HPET_ISR, 8), 0);
}

static void *
loop_thread(void *arg)
{
	mevent_dispatch(arg);
	return NULL;
}

/* The real path: a timerfd in the event loop fires the comparator. */
static void
test_event_loop_timer(void **state)
{
	struct fx *f = *state;
	pthread_t t;

	f->m->mev = mevent_create();
	assert_non_null(f->m->mev);
	hpet_up(f);
	assert_int_equal(pthread_create(&t, NULL, loop_thread, f->m->mev), 0);
	arm_timer(f, 0, EDGE_PIN, 0, HPET_FREQ / 1000); /* 1 ms */
	for (int i = 0; i < 5000 && !vm_mock_irq_pulses(f->ctx, EDGE_PIN); i++)
		sleep_us(1000);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, EDGE_PIN), 1);
	mevent_stop(f->m->mev);
	pthread_join(t, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_capabilities),
	    T(test_counter_runs_only_enabled),
	    T(test_register_halves),
	    T(test_read_only_bits),
	    T(test_no_host_timer_unless_armed),
	    T(test_oneshot_edge),
	    T(test_early_expiry_is_ignored),
	    T(test_oneshot_32bit_rearms_for_wrap),
	    T(test_periodic),
	    T(test_min_period),
	    T(test_level_and_status),
	    T(test_fsb_msi),
	    T(test_bad_sizes),
	    cmocka_unit_test_setup_teardown(test_event_loop_timer, setup_nodev,
					    teardown),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
