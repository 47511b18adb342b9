/* The MC146818 RTC/CMOS: time formats, setting, interrupts, NVRAM. */
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
#include "inout.h"
#include "machine.h"
#include "mevent.h"
#include "rtc.h"
#include "vmm.h"

struct fx {
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
	struct rtc *rtc;
	struct timespec now; /* the injected wall clock */
};

static void
fake_clock(void *arg, struct timespec *ts)
{
	*ts = ((struct fx *)arg)->now;
}

/* 2024-02-29 13:45:56 UTC, a Thursday. */
static time_t
t0(void)
{
	struct tm tm = {.tm_year = 124,
			.tm_mon = 1,
			.tm_mday = 29,
			.tm_hour = 13,
			.tm_min = 45,
			.tm_sec = 56};

	return timegm(&tm);
}

static struct fx *
fx_make(uint64_t memsize, int ncpus, bool localtime)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[128];

	assert_non_null(f);
	f->ctx = vm_create_mock(memsize);
	assert_non_null(f->ctx);
	assert_int_equal(vm_set_ncpus(f->ctx, ncpus), 0);
	f->cfg = config_create();
	assert_int_equal(config_set(f->cfg, "rtc.use_localtime",
				    localtime ? "true" : "false", err,
				    sizeof(err)),
			 0);
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	f->now.tv_sec = t0();
	f->rtc = rtc_create(f->ctx, fake_clock, f);
	assert_non_null(f->rtc);
	return f;
}

static int
setup(void **state)
{
	*state = fx_make(16 << 20, 1, false);
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	rtc_free(f->rtc);
	machine_free(f->m);
	config_free(f->cfg);
	vm_close(f->ctx);
	free(f);
	return 0;
}

static uint8_t
rd(struct fx *f, uint8_t i)
{
	return rtc_read(f->rtc, i);
}

static void
test_bcd_24h(void **state)
{
	struct fx *f = *state;

	assert_int_equal(rd(f, RTC_REG_A), 0x26);
	assert_int_equal(rd(f, RTC_REG_B), RTC_B_24H);
	assert_int_equal(rd(f, RTC_REG_D), RTC_D_VRT);
	assert_int_equal(rd(f, RTC_SEC), 0x56);
	assert_int_equal(rd(f, RTC_MIN), 0x45);
	assert_int_equal(rd(f, RTC_HOUR), 0x13);
	assert_int_equal(rd(f, RTC_DOW), 5);
	assert_int_equal(rd(f, RTC_DOM), 0x29);
	assert_int_equal(rd(f, RTC_MONTH), 0x02);
	assert_int_equal(rd(f, RTC_YEAR), 0x24);
	assert_int_equal(rd(f, RTC_CENTURY), 0x20);
	f->now.tv_sec += 5;
	assert_int_equal(rd(f, RTC_SEC), 0x01);
	assert_int_equal(rd(f, RTC_MIN), 0x46);
}

static void
test_binary_and_12h(void **state)
{
	struct fx *f = *state;

	rtc_write(f->rtc, RTC_REG_B, RTC_B_DM | RTC_B_24H);
	assert_int_equal(rd(f, RTC_SEC), 56);
	assert_int_equal(rd(f, RTC_HOUR), 13);
	assert_int_equal(rd(f, RTC_YEAR), 24);
	assert_int_equal(rd(f, RTC_CENTURY), 20);
	/* 12-hour binary: 1 PM. */
	rtc_write(f->rtc, RTC_REG_B, RTC_B_DM);
	assert_int_equal(rd(f, RTC_HOUR), 0x80 | 1);
	/* 12-hour BCD: noon is 12 PM, midnight 12 AM. */
	rtc_write(f->rtc, RTC_REG_B, 0);
	f->now.tv_sec = t0() - (13 * 3600 + 45 * 60 + 56) + 12 * 3600;
	assert_int_equal(rd(f, RTC_HOUR), 0x80 | 0x12);
	f->now.tv_sec -= 12 * 3600;
	assert_int_equal(rd(f, RTC_HOUR), 0x12);
	f->now.tv_sec += 11 * 3600;
	assert_int_equal(rd(f, RTC_HOUR), 0x11);
	f->now.tv_sec += 11 * 3600;
	assert_int_equal(rd(f, RTC_HOUR), 0x80 | 0x10); /* 10 PM */
}

static void
set_time_bcd(struct fx *f, const uint8_t v[8])
{
	static const uint8_t regs[8] = {RTC_SEC,  RTC_MIN,    RTC_HOUR,
					RTC_DOW,  RTC_DOM,    RTC_MONTH,
					RTC_YEAR, RTC_CENTURY};

	rtc_write(f->rtc, RTC_REG_B, rd(f, RTC_REG_B) | RTC_B_SET);
	for (int i = 0; i < 8; i++)
		rtc_write(f->rtc, regs[i], v[i]);
	rtc_write(f->rtc, RTC_REG_B, rd(f, RTC_REG_B) & ~RTC_B_SET);
}

static void
test_guest_sets_time(void **state)
{
	struct fx *f = *state;
	/* 2001-02-03 04:05:06, a Saturday */
	const uint8_t when[8] = {0x06, 0x05, 0x04, 0x07,
				 0x03, 0x02, 0x01, 0x20};
	const uint8_t bad[8] = {0x06, 0x05, 0x04, 0x07, 0x03, 0x13, 0x01, 0x20};
	struct tm tm = {.tm_year = 101,
			.tm_mon = 1,
			.tm_mday = 3,
			.tm_hour = 4,
			.tm_min = 5,
			.tm_sec = 6};

	set_time_bcd(f, when);
	assert_int_equal(rtc_time(f->rtc), timegm(&tm));
	assert_int_equal(rd(f, RTC_YEAR), 0x01);
	assert_int_equal(rd(f, RTC_MONTH), 0x02);
	assert_int_equal(rd(f, RTC_DOW), 7);
	/* The set clock runs on with the host's. */
	f->now.tv_sec += 10;
	assert_int_equal(rd(f, RTC_SEC), 0x16);
	/* A month 13 is refused: the clock keeps its time. */
	set_time_bcd(f, bad);
	assert_int_equal(rd(f, RTC_MONTH), 0x02);
	assert_int_equal(rd(f, RTC_SEC), 0x16);
	/* Outside SET a write takes effect at once. */
	rtc_write(f->rtc, RTC_MIN, 0x30);
	assert_int_equal(rd(f, RTC_MIN), 0x30);
	assert_int_equal(rd(f, RTC_SEC), 0x16);
	/* While SET is on, the registers hold still. */
	rtc_write(f->rtc, RTC_REG_B, RTC_B_24H | RTC_B_SET);
	f->now.tv_sec += 3;
	assert_int_equal(rd(f, RTC_SEC), 0x16);
	rtc_write(f->rtc, RTC_REG_B, RTC_B_24H);
	assert_int_equal(rd(f, RTC_SEC), 0x16);
}

static void
test_localtime(void **state)
{
	struct fx *f = *state;
	struct fx *l;
	char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;

	(void)f;
	setenv("TZ", "EST5", 1);
	tzset();
	l = fx_make(16 << 20, 1, true);
	assert_int_equal(rtc_read(l->rtc, RTC_HOUR), 0x08);
	teardown((void **)&l);
	if (old)
		setenv("TZ", old, 1);
	else
		unsetenv("TZ");
	free(old);
	tzset();
}

static void
test_uip(void **state)
{
	struct fx *f = *state;

	f->now.tv_nsec = 999900000;
	assert_true(rd(f, RTC_REG_A) & RTC_A_UIP);
	f->now.tv_nsec = 500000000;
	assert_false(rd(f, RTC_REG_A) & RTC_A_UIP);
	/* Read-only. */
	rtc_write(f->rtc, RTC_REG_A, 0xa6);
	assert_int_equal(rd(f, RTC_REG_A), 0x26);
}

static void
test_periodic_irq_and_reg_c(void **state)
{
	struct fx *f = *state;

	/* PF without PIE: a flag, no interrupt. */
	rtc_periodic_tick(f->rtc);
	assert_int_equal(vm_mock_irq_level(f->ctx, RTC_IRQ), 0);
	assert_int_equal(rd(f, RTC_REG_C), RTC_C_PF);
	rtc_write(f->rtc, RTC_REG_B, RTC_B_24H | RTC_B_PIE);
	rtc_periodic_tick(f->rtc);
	assert_int_equal(vm_mock_irq_level(f->ctx, RTC_IRQ), 1);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, RTC_IRQ), 1);
	rtc_periodic_tick(f->rtc); /* still pending: no new edge */
	assert_int_equal(vm_mock_irq_pulses(f->ctx, RTC_IRQ), 1);
	assert_int_equal(rd(f, RTC_REG_C), RTC_C_IRQF | RTC_C_PF);
	assert_int_equal(vm_mock_irq_level(f->ctx, RTC_IRQ), 0);
	assert_int_equal(rd(f, RTC_REG_C), 0);
	rtc_periodic_tick(f->rtc);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, RTC_IRQ), 2);
	/* C is read-only. */
	rtc_write(f->rtc, RTC_REG_C, 0);
	assert_int_equal(vm_mock_irq_level(f->ctx, RTC_IRQ), 1);
	rd(f, RTC_REG_C);
}

static void
test_update_and_alarm(void **state)
{
	struct fx *f = *state;

	/* A poller sees UF once a second passed, without interrupts. */
	assert_int_equal(rd(f, RTC_REG_C), 0);
	f->now.tv_sec++;
	assert_int_equal(rd(f, RTC_REG_C), RTC_C_UF);
	assert_int_equal(rd(f, RTC_REG_C), 0);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, RTC_IRQ), 0);

	rtc_write(f->rtc, RTC_REG_B, RTC_B_24H | RTC_B_UIE);
	rtc_update_tick(f->rtc); /* same second: nothing */
	assert_int_equal(vm_mock_irq_level(f->ctx, RTC_IRQ), 0);
	f->now.tv_sec++;
	rtc_update_tick(f->rtc);
	assert_int_equal(vm_mock_irq_level(f->ctx, RTC_IRQ), 1);
	assert_int_equal(rd(f, RTC_REG_C), RTC_C_IRQF | RTC_C_UF);
	assert_int_equal(vm_mock_irq_level(f->ctx, RTC_IRQ), 0);

	/* Alarm at hh:mm:05 any hour and minute: 13:45:58 now. */
	rtc_write(f->rtc, RTC_REG_B, RTC_B_24H | RTC_B_AIE);
	rtc_write(f->rtc, RTC_SEC_ALARM, 0x05);
	rtc_write(f->rtc, RTC_MIN_ALARM, 0xc0);
	rtc_write(f->rtc, RTC_HOUR_ALARM, 0xff);
	f->now.tv_sec += 6; /* 13:46:04 */
	rtc_update_tick(f->rtc);
	assert_int_equal(vm_mock_irq_level(f->ctx, RTC_IRQ), 0);
	rd(f, RTC_REG_C);
	f->now.tv_sec++;
	rtc_update_tick(f->rtc);
	assert_int_equal(vm_mock_irq_level(f->ctx, RTC_IRQ), 1);
	assert_int_equal(rd(f, RTC_REG_C), RTC_C_IRQF | RTC_C_AF | RTC_C_UF);
	assert_int_equal(vm_mock_irq_level(f->ctx, RTC_IRQ), 0);
	/* Setting SET clears UIE (datasheet, register B). */
	rtc_write(f->rtc, RTC_REG_B, RTC_B_SET | RTC_B_UIE);
	assert_int_equal(rd(f, RTC_REG_B), RTC_B_SET);
}

static void
check_nvram16(struct rtc *r, int idx, unsigned int v)
{
	assert_int_equal(rtc_read(r, idx) | rtc_read(r, idx + 1) << 8, v);
}

static void
check_checksum(struct rtc *r)
{
	unsigned int sum = 0;

	for (int i = 0x10; i <= 0x2d; i++)
		sum += rtc_read(r, i);
	check_nvram16(r, 0x2e, ((sum & 0xff) << 8) | (sum >> 8));
}

static void
test_nvram_512m(void **state)
{
	struct fx *f = fx_make(512ULL << 20, 1, false);

	(void)state;
	check_nvram16(f->rtc, 0x15, 640);
	check_nvram16(f->rtc, 0x17, 0xffff); /* 511 MiB in KiB, capped */
	check_nvram16(f->rtc, 0x30, 0xffff);
	check_nvram16(f->rtc, 0x34, (512 - 16) * 16);
	assert_int_equal(rtc_read(f->rtc, 0x5b), 0);
	assert_int_equal(rtc_read(f->rtc, 0x5c), 0);
	assert_int_equal(rtc_read(f->rtc, 0x5d), 0);
	assert_int_equal(rtc_read(f->rtc, 0x5f), 0);
	assert_int_equal(rtc_read(f->rtc, 0x2e), 0x02); /* 0x80+0x02+2*0xff */
	assert_int_equal(rtc_read(f->rtc, 0x2f), 0x80);
	check_checksum(f->rtc);
	teardown((void **)&f);
}

static void
test_nvram_5g(void **state)
{
	struct fx *f = fx_make(5ULL << 30, 4, false);

	(void)state;
	check_nvram16(f->rtc, 0x15, 640);
	check_nvram16(f->rtc, 0x17, 0xffff);
	check_nvram16(f->rtc, 0x34, (3072 - 16) * 16); /* below 4 GiB */
	/* 2 GiB above 4 GiB in 64 KiB units: 0x008000. */
	assert_int_equal(rtc_read(f->rtc, 0x5b), 0x00);
	assert_int_equal(rtc_read(f->rtc, 0x5c), 0x80);
	assert_int_equal(rtc_read(f->rtc, 0x5d), 0x00);
	assert_int_equal(rtc_read(f->rtc, 0x5f), 3);
	check_checksum(f->rtc);
	teardown((void **)&f);
}

static void
test_nvram_rw_and_range(void **state)
{
	struct fx *f = *state;

	rtc_write(f->rtc, 0x40, 0x5a);
	assert_int_equal(rd(f, 0x40), 0x5a);
	rtc_write(f->rtc, 0x7f, 0xa5);
	assert_int_equal(rd(f, 0x7f), 0xa5);
	/* Indexes wrap at 128 (bit 7 is the NMI mask on the port). */
	assert_int_equal(rd(f, 0xff), 0xa5);
	rtc_write(f->rtc, RTC_REG_D, 0);
	assert_int_equal(rd(f, RTC_REG_D), RTC_D_VRT);
}

static void
test_ports(void **state)
{
	struct fx *f = *state;
	const struct sysdev *d = sysdev_find("rtc");
	uint32_t v;

	assert_non_null(d);
	assert_int_equal(d->init(f->ctx), 0);
	assert_non_null(rtc_of(f->ctx));
	v = 0x80 | 0x0e; /* NMI masked: ignored */
	assert_int_equal(inout_dispatch(f->ctx, 0, 0x70, 1, &v), 0);
	v = 0x33;
	assert_int_equal(inout_dispatch(f->ctx, 0, 0x71, 1, &v), 0);
	assert_int_equal(inout_dispatch(f->ctx, 1, 0x71, 1, &v), 0);
	assert_int_equal(v, 0x33);
	v = RTC_REG_D;
	inout_dispatch(f->ctx, 0, 0x70, 1, &v);
	inout_dispatch(f->ctx, 1, 0x71, 1, &v);
	assert_int_equal(v, RTC_D_VRT);
	assert_int_equal(inout_dispatch(f->ctx, 1, 0x70, 1, &v), 0);
	assert_int_equal(v, 0xff);
	/* Odd sizes: not emulated, defined result. */
	v = 0;
	assert_int_equal(inout_dispatch(f->ctx, 1, 0x71, 4, &v), -1);
	assert_int_equal(v, 0xffffffff);
	v = 0x1234;
	assert_int_equal(inout_dispatch(f->ctx, 0, 0x70, 2, &v), -1);
	v = RTC_REG_D;
	inout_dispatch(f->ctx, 0, 0x70, 1, &v);
	inout_dispatch(f->ctx, 1, 0x71, 1, &v);
	assert_int_equal(v, RTC_D_VRT);
	/* A second RTC cannot take the ports. */
	assert_int_equal(d->init(f->ctx), -1);
}

#define RTC_MIN_MS 1 /* rtc.c's RTC_MIN_PERIOD_MS */

static void *
loop_thread(void *arg)
{
	mevent_dispatch(arg);
	return NULL;
}

/* PIE starts a real timer on the event loop; clearing PIE stops it. */
static void
test_periodic_timer(void **state)
{
	struct fx *f = *state;
	struct timespec ms = {0, 1000000};
	struct rtc *r;
	pthread_t t;
	int tries;

	f->m->mev = mevent_create();
	assert_non_null(f->m->mev);
	r = rtc_create(f->ctx, fake_clock, f);
	assert_int_equal(pthread_create(&t, NULL, loop_thread, f->m->mev), 0);
	rtc_write(r, RTC_REG_A, 0x26); /* 1024 Hz: 1 ms */
	rtc_write(r, RTC_REG_B, RTC_B_24H | RTC_B_PIE);
	for (tries = 0; tries < 2000; tries++) {
		if (vm_mock_irq_level(f->ctx, RTC_IRQ))
			break;
		nanosleep(&ms, NULL);
	}
	assert_int_equal(vm_mock_irq_level(f->ctx, RTC_IRQ), 1);
	rtc_write(r, RTC_REG_B, RTC_B_24H);
	assert_true(rtc_read(r, RTC_REG_C) & RTC_C_PF);
	mevent_stop(f->m->mev);
	pthread_join(t, NULL);
	rtc_free(r);
	mevent_free(f->m->mev);
	f->m->mev = NULL;
}

/*
 * RS 3 asks for 8192 Hz; it runs at the 1 ms floor. A reader that clears
 * PF as fast as it can sees at most one periodic flag per millisecond.
 */
static void
test_periodic_rate_floor(void **state)
{
	struct fx *f = *state;
	struct timespec t0, t;
	struct rtc *r;
	pthread_t th;
	long ms = 0;
	int flags = 0;

	f->m->mev = mevent_create();
	assert_non_null(f->m->mev);
	r = rtc_create(f->ctx, fake_clock, f);
	assert_int_equal(pthread_create(&th, NULL, loop_thread, f->m->mev), 0);
	rtc_write(r, RTC_REG_A, 0x23); /* RS 3: 8192 Hz asked */
	rtc_write(r, RTC_REG_B, RTC_B_24H | RTC_B_PIE);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (ms < 100) {
		if (rtc_read(r, RTC_REG_C) & RTC_C_PF)
			flags++;
		clock_gettime(CLOCK_MONOTONIC, &t);
		ms = (t.tv_sec - t0.tv_sec) * 1000 +
		     (t.tv_nsec - t0.tv_nsec) / 1000000;
	}
	rtc_write(r, RTC_REG_B, RTC_B_24H);
	mevent_stop(f->m->mev);
	pthread_join(th, NULL);
	assert_true(flags >= 1);
	assert_true(flags <= ms / RTC_MIN_MS + 2);
	rtc_free(r);
	mevent_free(f->m->mev);
	f->m->mev = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_bcd_24h),
	    T(test_binary_and_12h),
	    T(test_guest_sets_time),
	    T(test_localtime),
	    T(test_uip),
	    T(test_periodic_irq_and_reg_c),
	    T(test_update_and_alarm),
	    T(test_nvram_512m),
	    T(test_nvram_5g),
	    T(test_nvram_rw_and_range),
	    T(test_ports),
	    T(test_periodic_timer),
	    T(test_periodic_rate_floor),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
