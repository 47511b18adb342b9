/*
 * The High Precision Event Timer (IA-PC HPET specification 1.0a), at
 * 0xFED00000 on every machine, as bhyve has it.
 *
 * The main counter runs at 10 MHz and is derived from CLOCK_MONOTONIC
 * while ENABLE_CNF is set, so reading it costs no host timer. Each timer
 * owns a one-shot timer in the event loop, armed only while the timer can
 * interrupt (HPET and timer enabled) for the moment the counter reaches the
 * comparator; periodic timers re-arm from the expiry.
 *
 * Interrupts go to an IOAPIC pin chosen from Tn_INT_ROUTE_CAP (edge: a
 * pulse; level: asserted while the timer's status bit is set) or, with
 * Tn_FSB_EN_CNF, as an MSI. Legacy replacement routing is not offered
 * (LEG_RT_CAP = 0): KVM's in-kernel PIT keeps IRQ0, and Linux uses the HPET
 * as a clocksource without it.
 *
 * Registers take aligned 4- and 8-byte accesses (32-bit halves of the
 * 64-bit registers included); other accesses read as all ones and are
 * dropped.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "byteorder.h"
#include "fwtab.h"
#include "hpet.h"
#include "machine.h"
#include "mem.h"
#include "mevent.h"

#define NS_PER_TICK (1000000000ULL / HPET_FREQ)
#define HPET_VENDOR 0x8086ULL
#define HPET_REV 1
/*
 * The shortest period a periodic timer runs at: 100 us (1000 ticks, 10 kHz).
 * The register takes any period, down to one tick (100 ns); run as written,
 * that had the event loop fire MSIs as fast as it could (185k in 3 s, a whole
 * host core). A host timerfd wakes up tens of microseconds late anyway, so a
 * shorter period is a busy loop rather than a timer, and no guest needs one:
 * Linux's periodic tick is at most 1000 Hz and its high-resolution timers use
 * one-shot mode. The comparator then advances by this much per interrupt.
 */
#define HPET_MIN_PERIOD (100000ULL / NS_PER_TICK)
/* Deadlines further out than this (about 14 years) are never armed. */
#define MAX_DELTA (1ULL << 52)

struct hpet_timer {
	uint64_t conf;	 /* Tn_CONF_CAP */
	uint64_t cmp;	 /* comparator (the accumulator when periodic) */
	uint64_t period; /* what a periodic timer adds to cmp */
	uint64_t fsb;	 /* FSB route: address << 32 | data */
	struct mevent_ev *ev; /* its one-shot timer, or NULL (no loop) */
	bool armed;
	uint64_t deadline; /* CLOCK_MONOTONIC ns at which cmp is reached */
	int line;	   /* the pin we hold asserted (level), or -1 */
};

struct hpet;
struct hpet_arg {
	struct hpet *h;
	int n;
};

struct hpet {
	pthread_mutex_t lock;
	struct vmctx *ctx;
	uint64_t config;
	uint64_t isr;
	uint64_t count_base; /* the counter at base_ns, or while halted */
	uint64_t base_ns;
	struct hpet_timer t[HPET_NTIMERS];
	struct hpet_arg args[HPET_NTIMERS]; /* the timers' callback args */
	bool mmio;
};

static const struct sysdev hpet_sysdev;

static struct hpet *
hpet_of(struct vmctx *ctx)
{
	return machine_dev(ctx, &hpet_sysdev);
}

static uint64_t
cap_id(void)
{
	return HPET_PERIOD_FS << 32 | HPET_VENDOR << 16 | HPET_CAP_COUNT_SIZE |
	       (HPET_NTIMERS - 1) << 8 | HPET_REV;
}

uint32_t
hpet_block_id(void)
{
	return (uint32_t)cap_id();
}

static bool
enabled(const struct hpet *h)
{
	return h->config & HPET_CNF_ENABLE;
}

static uint64_t
counter(const struct hpet *h, uint64_t ns)
{
	if (!enabled(h))
		return h->count_base;
	return h->count_base + (ns - h->base_ns) / NS_PER_TICK;
}

/* Timer 0 is periodic-capable; all are 64-bit and can use the FSB. */
static uint64_t
timer_caps(int n)
{
	return (uint64_t)HPET_ROUTE_CAP << 32 | HPET_TN_FSB_CAP |
	       HPET_TN_SIZE_CAP | (n == 0 ? HPET_TN_PER_CAP : 0);
}

static uint64_t
width_mask(const struct hpet_timer *t)
{
	return (t->conf & HPET_TN_32BIT) ? 0xffffffffULL : ~0ULL;
}

static bool
periodic(const struct hpet_timer *t)
{
	return t->conf & HPET_TN_PERIODIC;
}

/* The IOAPIC pin the timer is routed to, or -1 when not a valid one. */
static int
route(const struct hpet_timer *t)
{
	int pin = (int)((t->conf & HPET_TN_ROUTE) >> HPET_TN_ROUTE_SHIFT);

	return (t->conf >> 32) & (1ULL << pin) ? pin : -1;
}

/*
 * A level-triggered timer holds its pin while its status bit is set and
 * it may interrupt; anything else holds nothing.
 */
static void
update_line(struct hpet *h, int n)
{
	struct hpet_timer *t = &h->t[n];
	int want = -1;

	if ((t->conf & HPET_TN_LEVEL) && (h->isr & (1ULL << n)) &&
	    (t->conf & HPET_TN_INT_ENB) && !(t->conf & HPET_TN_FSB_EN) &&
	    enabled(h))
		want = route(t);
	if (want == t->line)
		return;
	if (t->line >= 0)
		vm_irq_deassert(h->ctx, t->line);
	if (want >= 0)
		vm_irq_assert(h->ctx, want);
	t->line = want;
}

static void
fire(struct hpet *h, int n)
{
	struct hpet_timer *t = &h->t[n];
	int pin = route(t);

	if (t->conf & HPET_TN_FSB_EN) {
		vm_lapic_msi(h->ctx, t->fsb >> 32, t->fsb & 0xffffffff);
	} else if (t->conf & HPET_TN_LEVEL) {
		h->isr |= 1ULL << n;
		update_line(h, n);
	} else if (pin >= 0) {
		vm_irq_pulse(h->ctx, pin);
	}
}

static void
disarm(struct hpet_timer *t)
{
	if (t->armed)
		mevent_disarm(t->ev);
	t->armed = false;
}

/*
 * Arm the host timer for the tick at which the counter next equals the
 * comparator (modulo 2^32 in 32-bit mode). A comparator equal to the
 * counter matches now, unless the timer just fired on it: then the next
 * match is a whole wrap away.
 */
static void
arm(struct hpet *h, int n, uint64_t ns, bool just_fired)
{
	struct hpet_timer *t = &h->t[n];
	uint64_t mask = width_mask(t), delta, elapsed;

	if (!enabled(h) || !(t->conf & HPET_TN_INT_ENB)) {
		disarm(t);
		return;
	}
	delta = (t->cmp - counter(h, ns)) & mask;
	if (delta == 0 && just_fired)
		delta = mask + 1; /* 2^32; 0 (never) for 64 bits */
	if ((delta == 0 && just_fired) || delta > MAX_DELTA) {
		disarm(t);
		return;
	}
	elapsed = (ns - h->base_ns) / NS_PER_TICK;
	t->deadline = h->base_ns + (elapsed + delta) * NS_PER_TICK;
	t->armed = true;
	mevent_arm(t->ev, t->deadline);
}

static void
rearm_all(struct hpet *h, uint64_t ns)
{
	for (int n = 0; n < HPET_NTIMERS; n++) {
		arm(h, n, ns, false);
		update_line(h, n);
	}
}

/* A periodic timer's next comparator: the first period after 'now'. */
static void
advance(struct hpet_timer *t, uint64_t cnt)
{
	uint64_t mask = width_mask(t);
	uint64_t behind = (cnt - t->cmp) & mask;
	uint64_t period = t->period;

	if (!period)
		return;
	if (period < HPET_MIN_PERIOD)
		period = HPET_MIN_PERIOD;
	t->cmp = (t->cmp + (behind / period + 1) * period) & mask;
}

static void
expire(struct hpet *h, int n)
{
	struct hpet_timer *t = &h->t[n];
	uint64_t ns;

	pthread_mutex_lock(&h->lock);
	ns = mevent_now_ns();
	/* Stale: the guest moved or stopped the timer since it was armed. */
	if (!t->armed || ns < t->deadline) {
		pthread_mutex_unlock(&h->lock);
		return;
	}
	fire(h, n);
	if (periodic(t))
		advance(t, counter(h, ns));
	arm(h, n, ns, true);
	pthread_mutex_unlock(&h->lock);
}

void
hpet_expire(struct vmctx *ctx, int n)
{
	struct hpet *h = hpet_of(ctx);

	if (h && n >= 0 && n < HPET_NTIMERS)
		expire(h, n);
}

int
hpet_armed(struct vmctx *ctx, int n)
{
	struct hpet *h = hpet_of(ctx);
	int armed;

	if (!h || n < 0 || n >= HPET_NTIMERS)
		return -1;
	pthread_mutex_lock(&h->lock);
	armed = h->t[n].armed;
	pthread_mutex_unlock(&h->lock);
	return armed;
}

static void
timer_event(int fd, enum ev_type type, void *arg)
{
	struct hpet_arg *a = arg;

	(void)fd;
	(void)type;
	expire(a->h, a->n);
}

static uint64_t
timer_read(const struct hpet *h, int n, int reg)
{
	const struct hpet_timer *t = &h->t[n];

	switch (reg) {
	case HPET_TN_CONFIG:
		return t->conf;
	case HPET_TN_CMP:
		return t->cmp & width_mask(t);
	case HPET_TN_FSB:
		return t->fsb;
	}
	return 0;
}

static uint64_t
reg_read(const struct hpet *h, uint64_t off, uint64_t ns)
{
	switch (off) {
	case HPET_CAP_ID:
		return cap_id();
	case HPET_CONFIG:
		return h->config;
	case HPET_ISR:
		return h->isr;
	case HPET_COUNTER:
		return counter(h, ns);
	}
	if (off >= HPET_TIMER(0) && off < HPET_TIMER(HPET_NTIMERS))
		return timer_read(h, (int)((off - HPET_TIMER(0)) / 0x20),
				  (int)((off - HPET_TIMER(0)) % 0x20));
	return 0; /* reserved */
}

static uint64_t
merge(uint64_t old, uint64_t val, uint64_t mask)
{
	return (old & ~mask) | (val & mask);
}

/* ENABLE_CNF halts or restarts the counter where it stands (§2.3.5). */
static void
config_write(struct hpet *h, uint64_t val, uint64_t mask, uint64_t ns)
{
	uint64_t cfg = merge(h->config, val, mask) & HPET_CNF_ENABLE;

	if ((cfg ^ h->config) & HPET_CNF_ENABLE) {
		if (cfg & HPET_CNF_ENABLE)
			h->base_ns = ns;
		else
			h->count_base = counter(h, ns);
	}
	h->config = cfg;
	rearm_all(h, ns);
}

/* Writing 1 clears a level-triggered timer's status (§2.3.6). */
static void
isr_write(struct hpet *h, uint64_t val, uint64_t mask, uint64_t ns)
{
	h->isr &= ~(val & mask);
	rearm_all(h, ns);
}

static void
counter_write(struct hpet *h, uint64_t val, uint64_t mask, uint64_t ns)
{
	h->count_base = merge(counter(h, ns), val, mask);
	h->base_ns = ns;
	rearm_all(h, ns);
}

static void
timer_config_write(struct hpet *h, int n, uint64_t val, uint64_t mask,
		   uint64_t ns)
{
	struct hpet_timer *t = &h->t[n];
	uint64_t rw = HPET_TN_LEVEL | HPET_TN_INT_ENB | HPET_TN_32BIT |
		      HPET_TN_ROUTE | HPET_TN_FSB_EN;
	uint64_t old = t->conf, conf;

	if (t->conf & HPET_TN_PER_CAP)
		rw |= HPET_TN_PERIODIC | HPET_TN_VAL_SET;
	conf = merge(old, val, mask & rw);
	t->conf = conf;
	/* A pin outside Tn_INT_ROUTE_CAP does not take (§2.3.8). */
	if (route(t) < 0 && (conf & HPET_TN_ROUTE) != 0)
		t->conf = (conf & ~HPET_TN_ROUTE) | (old & HPET_TN_ROUTE);
	if (!(t->conf & HPET_TN_LEVEL))
		h->isr &= ~(1ULL << n); /* status means nothing for edge */
	if ((t->conf & ~old) & HPET_TN_32BIT) {
		t->cmp &= 0xffffffff;
		t->period &= 0xffffffff;
	}
	arm(h, n, ns, false);
	update_line(h, n);
}

/*
 * A periodic timer takes a write as its period, and as its comparator
 * too only with Tn_VAL_SET_CNF, which the write clears (§2.3.9.2.2).
 */
static void
cmp_write(struct hpet *h, int n, uint64_t val, uint64_t mask, uint64_t ns)
{
	struct hpet_timer *t = &h->t[n];

	mask &= width_mask(t);
	if (!periodic(t) || (t->conf & HPET_TN_VAL_SET))
		t->cmp = merge(t->cmp, val, mask);
	t->period = merge(t->period, val, mask);
	t->conf &= ~(uint64_t)HPET_TN_VAL_SET;
	arm(h, n, ns, false);
}

static void
timer_write(struct hpet *h, int n, int reg, uint64_t val, uint64_t mask,
	    uint64_t ns)
{
	switch (reg) {
	case HPET_TN_CONFIG:
		timer_config_write(h, n, val, mask, ns);
		break;
	case HPET_TN_CMP:
		cmp_write(h, n, val, mask, ns);
		break;
	case HPET_TN_FSB:
		h->t[n].fsb = merge(h->t[n].fsb, val, mask);
		break;
	}
}

static void
reg_write(struct hpet *h, uint64_t off, uint64_t val, uint64_t mask,
	  uint64_t ns)
{
	switch (off) {
	case HPET_CONFIG:
		config_write(h, val, mask, ns);
		return;
	case HPET_ISR:
		isr_write(h, val, mask, ns);
		return;
	case HPET_COUNTER:
		counter_write(h, val, mask, ns);
		return;
	}
	if (off >= HPET_TIMER(0) && off < HPET_TIMER(HPET_NTIMERS))
		timer_write(h, (int)((off - HPET_TIMER(0)) / 0x20),
			    (int)((off - HPET_TIMER(0)) % 0x20), val, mask, ns);
	/* CAP_ID and reserved space are read-only. */
}

static int
hpet_mmio(struct vcpu *vcpu, int dir, uint64_t addr, int size, uint64_t *val,
	  void *arg1, long arg2)
{
	struct hpet *h = arg1;
	uint64_t off = addr - HPET_BASE, reg, shift, mask, ns;

	(void)vcpu;
	(void)arg2;
	if ((size != 4 && size != 8) || off % (uint64_t)size ||
	    off + (uint64_t)size > HPET_SIZE) {
		if (dir == MEM_F_READ)
			*val = ~0ULL;
		return 0;
	}
	shift = (off & 4) * 8;
	mask = size == 8 ? ~0ULL : 0xffffffffULL << shift;
	pthread_mutex_lock(&h->lock);
	ns = mevent_now_ns();
	if (dir == MEM_F_READ) {
		reg = reg_read(h, off & ~7ULL, ns);
		*val = size == 8 ? reg : (reg >> shift) & 0xffffffff;
	} else {
		reg_write(h, off & ~7ULL, *val << shift, mask, ns);
	}
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static const struct mem_range hpet_range = {
    .name = "hpet",
    .flags = MEM_F_RW,
    .handler = hpet_mmio,
    .base = HPET_BASE,
    .size = HPET_SIZE,
};

static void
hpet_deinit(void *arg)
{
	struct hpet *h = arg;
	struct vmctx *ctx = h->ctx;

	if (h->mmio)
		unregister_mem(ctx, &hpet_range);
	for (int n = 0; n < HPET_NTIMERS; n++) {
		struct hpet_timer *t = &h->t[n];

		mevent_delete(t->ev);
		if (t->line >= 0)
			vm_irq_deassert(ctx, t->line);
	}
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* A one-shot timer per timer, in the event loop when there is one. */
static int
timers_init(struct hpet *h, struct mevent *mev)
{
	for (int n = 0; n < HPET_NTIMERS; n++) {
		struct hpet_timer *t = &h->t[n];

		t->conf = timer_caps(n);
		h->args[n] = (struct hpet_arg){h, n};
		if (!mev)
			continue;
		t->ev = mevent_add(mev, 0, EVF_ONESHOT, timer_event,
				   &h->args[n]);
		if (!t->ev)
			return -1;
	}
	return 0;
}

static int
hpet_init(struct vmctx *ctx)
{
	struct hpet *h = calloc(1, sizeof(*h));
	struct mem_range mr = hpet_range;

	if (!h)
		return -1;
	pthread_mutex_init(&h->lock, NULL);
	h->ctx = ctx;
	for (int n = 0; n < HPET_NTIMERS; n++)
		h->t[n].line = -1;
	if (machine_add_dev(ctx, &hpet_sysdev, h, hpet_deinit) < 0) {
		hpet_deinit(h);
		return -1;
	}
	if (timers_init(h, machine_of(ctx)->mev) < 0) {
		fprintf(stderr, "bhyve: hpet: cannot create its timers\n");
		machine_drop_dev(ctx, &hpet_sysdev);
		return -1;
	}
	mr.arg1 = h;
	if (register_mem(ctx, &mr) < 0) {
		fprintf(stderr, "bhyve: hpet: 0x%llx-0x%llx is taken\n",
			HPET_BASE, HPET_BASE + HPET_SIZE - 1);
		machine_drop_dev(ctx, &hpet_sysdev);
		return -1;
	}
	h->mmio = true;
	return 0;
}

static int
hpet_dsdt(struct vmctx *ctx, const void *desc, struct aml *a)
{
	(void)ctx;
	(void)desc;
	aml_device_begin(a, "HPET");
	aml_name_eisaid(a, "_HID", "PNP0103");
	aml_name_integer(a, "_UID", 0);
	aml_method_begin(a, "_STA", 0, false);
	aml_return(a);
	aml_integer(a, 0x0f); /* present, enabled, shown, functioning */
	aml_end(a);
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_mem32_fixed(a, true, (uint32_t)HPET_BASE, HPET_SIZE);
	aml_rt_end(a);
	aml_end(a);
	return 0;
}

#define HPET_TABLE_LEN 56

/* The ACPI HPET table (IA-PC HPET 1.0a §3.2.4): the model's own caps. */
static int
hpet_table(struct vmctx *ctx, const void *desc, uint8_t *t, size_t cap)
{
	(void)ctx;
	(void)desc;
	if (cap < HPET_TABLE_LEN)
		return -1;
	fw_acpi_header(t, "HPET", HPET_TABLE_LEN, 1, "BVHPET  ");
	le32_put(t + 36, hpet_block_id()); /* vendor, comparators, widths */
	fw_gas(t + 40, GAS_MEM, 64, 0, HPET_BASE);
	t[52] = 0; /* HPET number */
	le16_put(t + 53, HPET_MIN_TICK);
	t[55] = 1; /* 4 KiB page protected */
	fw_acpi_finish(t);
	return HPET_TABLE_LEN;
}

static const struct fw_ops hpet_fw = {
    .dsdt_scope = FW_SCOPE_SB,
    .dsdt = hpet_dsdt,
    .acpi_table = hpet_table,
};

static const struct sysdev hpet_sysdev = {
    .name = "hpet",
    .order = 40,
    .init = hpet_init,
    .fw = &hpet_fw,
};
SYSDEV_SET(hpet_sysdev);
