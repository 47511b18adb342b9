/*
 * The MC146818A real-time clock and its CMOS NVRAM (Motorola MC146818A
 * datasheet), after bhyve's vrtc.
 *
 * Time is the host's wall clock (UTC, or local time unless -u) plus an
 * offset the guest sets by writing the time registers. The clock is only
 * computed when read; timers exist only while the guest enables periodic
 * (PIE), update-ended (UIE) or alarm (AIE) interrupts, because a timer
 * nobody listens to would still cost wake-ups.
 *
 * IRQ 8 follows the datasheet's IRQ pin: asserted while any flag in
 * register C is set together with its enable, so reading C (which clears
 * the flags) deasserts it.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inout.h"
#include "fwtab.h"
#include "machine.h"
#include "mevent.h"
#include "rtc.h"

#define DV_NORMAL 0x20	  /* 32.768 kHz time base, divider running */
#define UIP_NS 244000L	  /* UIP is set this long before each update */
#define UPDATE_POLL_MS 50 /* how late an update-ended interrupt may be */
#define NVRAM_FIRST 0x0e
#define ALARM_DONTCARE 0xc0 /* both top bits: matches any value */
#define ALARM_SCAN 4	    /* seconds looked back for an alarm match */

struct rtc {
	pthread_mutex_t lock;
	struct vmctx *ctx;
	struct mevent *mev;
	rtc_clock_fn clock;
	void *clock_arg;
	bool localtime;
	bool ports;	     /* registered at 0x70/0x71 by the sysdev */
	int64_t offset;	     /* guest seconds - host seconds */
	int64_t last_update; /* the second of the last update cycle */
	uint8_t index;
	uint8_t reg_a, reg_b, reg_c;
	bool irq;
	/* Time registers hold the latched time while SET is on; alarm and
	 * NVRAM bytes always live here. */
	uint8_t cmos[RTC_NREGS];
	struct mevent_ev *periodic, *update;
};

static void
host_clock(void *arg, struct timespec *ts)
{
	(void)arg;
	clock_gettime(CLOCK_REALTIME, ts);
}

/* The host's wall clock in the RTC's zone, as seconds since 1970. */
static int64_t
host_seconds(const struct rtc *r, long *nsec)
{
	struct timespec ts;
	struct tm tm;
	time_t t;

	r->clock(r->clock_arg, &ts);
	t = ts.tv_sec;
	if (nsec)
		*nsec = ts.tv_nsec;
	if (r->localtime && localtime_r(&t, &tm))
		return (int64_t)t + tm.tm_gmtoff;
	return t;
}

static int64_t
now_locked(const struct rtc *r)
{
	return host_seconds(r, NULL) + r->offset;
}

static bool
binary(const struct rtc *r)
{
	return r->reg_b & RTC_B_DM;
}

static uint8_t
enc(const struct rtc *r, int v)
{
	return binary(r) ? (uint8_t)v : (uint8_t)(((v / 10) << 4) | (v % 10));
}

/* -1 for a byte that is not a number in the current mode. */
static int
dec(const struct rtc *r, uint8_t v)
{
	if (binary(r))
		return v;
	if ((v >> 4) > 9 || (v & 0xf) > 9)
		return -1;
	return (v >> 4) * 10 + (v & 0xf);
}

static uint8_t
enc_hour(const struct rtc *r, int hour)
{
	int h12 = hour % 12 ? hour % 12 : 12;

	if (r->reg_b & RTC_B_24H)
		return enc(r, hour);
	/* 12-hour mode: 12 AM is midnight, PM in bit 7 (datasheet Table 3). */
	return enc(r, h12) | (hour >= 12 ? RTC_HOUR_PM : 0);
}

static int
dec_hour(const struct rtc *r, uint8_t v)
{
	int h;

	if (r->reg_b & RTC_B_24H)
		return dec(r, v);
	h = dec(r, v & ~RTC_HOUR_PM);
	if (h < 1 || h > 12)
		return -1;
	return h % 12 + ((v & RTC_HOUR_PM) ? 12 : 0);
}

/* Encode time t into the time registers. */
static void
latch_time(struct rtc *r, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm))
		memset(&tm, 0, sizeof(tm));
	r->cmos[RTC_SEC] = enc(r, tm.tm_sec);
	r->cmos[RTC_MIN] = enc(r, tm.tm_min);
	r->cmos[RTC_HOUR] = enc_hour(r, tm.tm_hour);
	r->cmos[RTC_DOW] = enc(r, tm.tm_wday + 1); /* Sunday is 1 */
	r->cmos[RTC_DOM] = enc(r, tm.tm_mday);
	r->cmos[RTC_MONTH] = enc(r, tm.tm_mon + 1);
	r->cmos[RTC_YEAR] = enc(r, (tm.tm_year + 1900) % 100);
	r->cmos[RTC_CENTURY] = enc(r, (tm.tm_year + 1900) / 100);
}

static bool
in_range(int v, int lo, int hi)
{
	return v >= lo && v <= hi;
}

/*
 * Take the guest's time registers as the new time. A value that is not a
 * time (bad BCD, month 13...) leaves the clock as it was, as bhyve's vrtc
 * refuses a broken time.
 */
static void
commit_time(struct rtc *r)
{
	struct tm tm = {0};
	int cent = dec(r, r->cmos[RTC_CENTURY]);
	int year = dec(r, r->cmos[RTC_YEAR]);

	tm.tm_sec = dec(r, r->cmos[RTC_SEC]);
	tm.tm_min = dec(r, r->cmos[RTC_MIN]);
	tm.tm_hour = dec_hour(r, r->cmos[RTC_HOUR]);
	tm.tm_mday = dec(r, r->cmos[RTC_DOM]);
	tm.tm_mon = dec(r, r->cmos[RTC_MONTH]) - 1;
	if (!in_range(tm.tm_sec, 0, 59) || !in_range(tm.tm_min, 0, 59) ||
	    !in_range(tm.tm_hour, 0, 23) || !in_range(tm.tm_mday, 1, 31) ||
	    !in_range(tm.tm_mon, 0, 11) || !in_range(year, 0, 99) ||
	    !in_range(cent, 19, 99))
		return;
	tm.tm_year = cent * 100 + year - 1900;
	r->offset = (int64_t)timegm(&tm) - host_seconds(r, NULL);
	r->last_update = now_locked(r);
}

/* Drive IRQ 8 from the flags and enables (the datasheet's IRQ pin). */
static void
update_irq(struct rtc *r)
{
	uint8_t pending =
	    r->reg_c & r->reg_b & (RTC_C_PF | RTC_C_AF | RTC_C_UF);
	bool on = pending != 0;

	if (on)
		r->reg_c |= RTC_C_IRQF;
	else
		r->reg_c &= ~RTC_C_IRQF;
	if (on == r->irq)
		return;
	r->irq = on;
	if (on)
		vm_irq_assert(r->ctx, RTC_IRQ);
	else
		vm_irq_deassert(r->ctx, RTC_IRQ);
}

static bool
running(const struct rtc *r)
{
	return !(r->reg_b & RTC_B_SET) &&
	       (r->reg_a & RTC_A_DV_MASK) == DV_NORMAL;
}

/*
 * The shortest periodic interval: 1 ms. RS 3 to 5 ask for 8192, 4096 and
 * 2048 Hz (122 to 488 us); those run at 1 kHz, so that a guest cannot make
 * the event loop take thousands of timer wake-ups a second for it (a host
 * timer resolves tens of microseconds at best, and mevent counts whole
 * milliseconds). Guests do not use the fast rates: firmware leaves 1024 Hz
 * and Linux's rtc driver lets users ask for 64 Hz unless root raises it.
 */
#define RTC_MIN_PERIOD_MS 1

/* Periodic rate in ms (datasheet Table 5), at least RTC_MIN_PERIOD_MS. */
static int
periodic_ms(const struct rtc *r)
{
	int rs = r->reg_a & RTC_A_RS_MASK;
	long us, ms;

	if (rs == 0)
		return 0;
	/*
	 * RS 1 and 2 repeat 8 and 9's rates (3.90625 and 7.8125 ms) on a real
	 * MC146818 with a 32.768 kHz time base (datasheet Table 5 note).
	 */
	if (rs < 3)
		rs += 7;
	us = (1000000L << (rs - 1)) / 32768;
	ms = (us + 500) / 1000;
	return ms < RTC_MIN_PERIOD_MS ? RTC_MIN_PERIOD_MS : (int)ms;
}

static bool
alarm_match(const struct rtc *r, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	uint8_t a;

	if (!gmtime_r(&tt, &tm))
		return false;
	a = r->cmos[RTC_SEC_ALARM];
	if ((a & ALARM_DONTCARE) != ALARM_DONTCARE && a != enc(r, tm.tm_sec))
		return false;
	a = r->cmos[RTC_MIN_ALARM];
	if ((a & ALARM_DONTCARE) != ALARM_DONTCARE && a != enc(r, tm.tm_min))
		return false;
	a = r->cmos[RTC_HOUR_ALARM];
	return (a & ALARM_DONTCARE) == ALARM_DONTCARE ||
	       a == enc_hour(r, tm.tm_hour);
}

/* An update cycle for each second that began since the last one. */
static void
update_locked(struct rtc *r)
{
	int64_t now, from;

	if (!running(r))
		return;
	now = now_locked(r);
	if (now == r->last_update)
		return;
	r->reg_c |= RTC_C_UF;
	from = now - r->last_update > ALARM_SCAN ? now - ALARM_SCAN + 1
						 : r->last_update + 1;
	for (int64_t t = from; t <= now; t++)
		if (alarm_match(r, t))
			r->reg_c |= RTC_C_AF;
	r->last_update = now;
}

static void
periodic_event(int fd, enum ev_type type, void *arg)
{
	(void)fd;
	(void)type;
	rtc_periodic_tick(arg);
}

static void
update_event(int fd, enum ev_type type, void *arg)
{
	(void)fd;
	(void)type;
	rtc_update_tick(arg);
}

static void
timer_set(struct rtc *r, struct mevent_ev **ev, int ms, mevent_fn fn)
{
	if (*ev)
		mevent_delete(*ev);
	*ev = NULL;
	if (ms > 0 && r->mev)
		*ev = mevent_add(r->mev, ms, EVF_TIMER, fn, r);
}

/* Start or stop the timers after A or B changed. */
static void
timers_update(struct rtc *r, uint8_t old_a)
{
	bool pie = (r->reg_b & RTC_B_PIE) && running(r);
	bool upd = r->reg_b & (RTC_B_UIE | RTC_B_AIE);

	if (pie != (r->periodic != NULL) || (pie && old_a != r->reg_a))
		timer_set(r, &r->periodic, pie ? periodic_ms(r) : 0,
			  periodic_event);
	if (upd != (r->update != NULL))
		timer_set(r, &r->update, upd ? UPDATE_POLL_MS : 0,
			  update_event);
}

static void
write_reg_b(struct rtc *r, uint8_t val)
{
	uint8_t old = r->reg_b;

	/* Setting SET stops the clock and clears UIE (datasheet, reg B). */
	if (val & RTC_B_SET)
		val &= ~RTC_B_UIE;
	if ((val & RTC_B_SET) && !(old & RTC_B_SET))
		latch_time(r, now_locked(r));
	r->reg_b = val;
	if (!(val & RTC_B_SET) && (old & RTC_B_SET))
		commit_time(r);
	timers_update(r, r->reg_a);
	update_irq(r);
}

static bool
is_time_reg(uint8_t index)
{
	return index == RTC_SEC || index == RTC_MIN || index == RTC_HOUR ||
	       (index >= RTC_DOW && index <= RTC_YEAR) || index == RTC_CENTURY;
}

static uint8_t
read_locked(struct rtc *r, uint8_t index)
{
	long nsec;
	uint8_t v;

	index &= RTC_NREGS - 1;
	switch (index) {
	case RTC_REG_A:
		host_seconds(r, &nsec);
		v = r->reg_a;
		if (running(r) && nsec >= 1000000000L - UIP_NS)
			v |= RTC_A_UIP;
		return v;
	case RTC_REG_B:
		return r->reg_b;
	case RTC_REG_C:
		/* Pollers see UF without UIE; the read clears every flag. */
		update_locked(r);
		v = r->reg_c & ~RTC_C_IRQF;
		if (v & r->reg_b & (RTC_C_PF | RTC_C_AF | RTC_C_UF))
			v |= RTC_C_IRQF;
		r->reg_c = 0;
		update_irq(r);
		return v;
	case RTC_REG_D:
		return RTC_D_VRT; /* the battery is fine */
	}
	if (is_time_reg(index) && !(r->reg_b & RTC_B_SET))
		latch_time(r, now_locked(r));
	return r->cmos[index];
}

static void
write_locked(struct rtc *r, uint8_t index, uint8_t val)
{
	uint8_t old_a = r->reg_a;

	index &= RTC_NREGS - 1;
	switch (index) {
	case RTC_REG_A:
		r->reg_a = val & ~RTC_A_UIP; /* UIP is read-only */
		timers_update(r, old_a);
		return;
	case RTC_REG_B:
		write_reg_b(r, val);
		return;
	case RTC_REG_C:
	case RTC_REG_D:
		return; /* read-only */
	}
	/* Outside SET a time write takes effect at once. */
	if (is_time_reg(index) && !(r->reg_b & RTC_B_SET))
		latch_time(r, now_locked(r));
	r->cmos[index] = val;
	if (is_time_reg(index) && !(r->reg_b & RTC_B_SET))
		commit_time(r);
}

static void
set16(struct rtc *r, int index, uint64_t v, uint64_t max)
{
	if (v > max)
		v = max;
	r->cmos[index] = v & 0xff;
	r->cmos[index + 1] = (v >> 8) & 0xff;
}

/*
 * Memory sizes where PC firmware (SeaBIOS's CMOS_MEM_* and QEMU's
 * pc_cmos_init) expects them, and the standard checksum over 0x10-0x2d.
 */
static void
nvram_init(struct rtc *r)
{
	uint64_t low = vm_get_lowmem_size(r->ctx);
	uint64_t high = vm_get_highmem_size(r->ctx) >> 16;
	uint64_t ext = low > (1 << 20) ? (low - (1 << 20)) >> 10 : 0;
	uint64_t above16 = low > (16 << 20) ? (low - (16 << 20)) >> 16 : 0;
	int ncpus = vm_get_ncpus(r->ctx);
	unsigned int sum = 0;

	set16(r, 0x15, (low >> 10) < 640 ? low >> 10 : 640, 0xffff);
	set16(r, 0x17, ext, 0xffff);
	set16(r, 0x30, ext, 0xffff);
	set16(r, 0x34, above16, 0xffff);
	if (high > 0xffffff)
		high = 0xffffff;
	r->cmos[0x5b] = high & 0xff;
	r->cmos[0x5c] = (high >> 8) & 0xff;
	r->cmos[0x5d] = (high >> 16) & 0xff;
	r->cmos[0x5f] = ncpus > 0 && ncpus <= 256 ? ncpus - 1 : 0;
	for (int i = 0x10; i <= 0x2d; i++)
		sum += r->cmos[i];
	r->cmos[0x2e] = (sum >> 8) & 0xff;
	r->cmos[0x2f] = sum & 0xff;
}

struct rtc *
rtc_create(struct vmctx *ctx, rtc_clock_fn clock, void *arg)
{
	struct machine *m = machine_of(ctx);
	struct rtc *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	r->ctx = ctx;
	r->mev = m ? m->mev : NULL;
	r->clock = clock ? clock : host_clock;
	r->clock_arg = arg;
	r->localtime = !m || config_get_bool(m->cfg, "rtc.use_localtime", true);
	/* What firmware leaves: 32.768 kHz, 1024 Hz rate, 24h BCD. */
	r->reg_a = DV_NORMAL | 0x06;
	r->reg_b = RTC_B_24H;
	r->last_update = now_locked(r);
	nvram_init(r);
	return r;
}

void
rtc_free(struct rtc *r)
{
	struct inout_port iop = {.port = RTC_PORT_INDEX, .size = 2};

	if (!r)
		return;
	if (r->periodic)
		mevent_delete(r->periodic);
	if (r->update)
		mevent_delete(r->update);
	if (r->ports)
		unregister_inout(r->ctx, &iop);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

uint8_t
rtc_read(struct rtc *r, uint8_t index)
{
	uint8_t v;

	pthread_mutex_lock(&r->lock);
	v = read_locked(r, index);
	pthread_mutex_unlock(&r->lock);
	return v;
}

void
rtc_write(struct rtc *r, uint8_t index, uint8_t val)
{
	pthread_mutex_lock(&r->lock);
	write_locked(r, index, val);
	pthread_mutex_unlock(&r->lock);
}

void
rtc_periodic_tick(struct rtc *r)
{
	pthread_mutex_lock(&r->lock);
	r->reg_c |= RTC_C_PF;
	update_irq(r);
	pthread_mutex_unlock(&r->lock);
}

void
rtc_update_tick(struct rtc *r)
{
	pthread_mutex_lock(&r->lock);
	update_locked(r);
	update_irq(r);
	pthread_mutex_unlock(&r->lock);
}

int64_t
rtc_time(struct rtc *r)
{
	int64_t t;

	pthread_mutex_lock(&r->lock);
	t = now_locked(r);
	pthread_mutex_unlock(&r->lock);
	return t;
}

/* 0x70: the index (bit 7 masks NMI: ignored); 0x71: the register. */
static int
rtc_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax, void *arg)
{
	struct rtc *r = arg;

	(void)ctx;
	if (bytes != 1) {
		if (in)
			*eax = 0xffffffff;
		return -1;
	}
	pthread_mutex_lock(&r->lock);
	if (port == RTC_PORT_INDEX && in)
		*eax = 0xff; /* the index latch is write-only */
	else if (port == RTC_PORT_INDEX)
		r->index = *eax & (RTC_NREGS - 1);
	else if (in)
		*eax = read_locked(r, r->index);
	else
		write_locked(r, r->index, (uint8_t)*eax);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static const struct sysdev rtc_sysdev;

static void
rtc_deinit(void *arg)
{
	rtc_free(arg);
}

struct rtc *
rtc_of(struct vmctx *ctx)
{
	return machine_dev(ctx, &rtc_sysdev);
}

static int
rtc_sysdev_init(struct vmctx *ctx)
{
	struct rtc *r = rtc_create(ctx, NULL, NULL);
	struct inout_port iop = {"rtc",		 RTC_PORT_INDEX, 2,
				 IOPORT_F_INOUT, rtc_io,	 r};

	if (!r || register_inout(ctx, &iop) < 0) {
		fprintf(stderr, "bhyve: rtc: ports 0x70-0x71 are taken\n");
		rtc_free(r);
		return -1;
	}
	r->ports = true;
	if (machine_add_dev(ctx, &rtc_sysdev, r, rtc_deinit) < 0) {
		rtc_free(r);
		return -1;
	}
	return 0;
}

static int
rtc_dsdt(struct vmctx *ctx, const void *desc, struct aml *a)
{
	(void)ctx;
	(void)desc;
	aml_device_begin(a, "RTC");
	aml_name_eisaid(a, "_HID", "PNP0B00");
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_io(a, RTC_PORT_INDEX, RTC_PORT_INDEX, 1, 2);
	aml_rt_irq(a, RTC_IRQ);
	aml_rt_end(a);
	aml_end(a);
	return 0;
}

/* The FADT's CENTURY names the CMOS byte that holds it (§5.2.9). */
static void
rtc_fadt(struct vmctx *ctx, const void *desc, struct fw_fadt *f)
{
	(void)ctx;
	(void)desc;
	f->century = RTC_CENTURY;
}

static const struct fw_ops rtc_fw = {
    .dsdt_scope = FW_SCOPE_ISA,
    .dsdt = rtc_dsdt,
    .fadt = rtc_fadt,
};

static const struct sysdev rtc_sysdev = {
    .name = "rtc",
    .order = 10,
    .init = rtc_sysdev_init,
    .fw = &rtc_fw,
};
SYSDEV_SET(rtc_sysdev);
