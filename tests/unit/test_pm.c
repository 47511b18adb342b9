/* ACPI PM block, reset lines, the power button and the POST port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "inout.h"
#include "machine.h"
#include "mevent.h"
#include "pm.h"

#define POST_PORT 0x80 /* post.c */
#include "vmm.h"

struct fx {
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
};

static void
init_devs(struct fx *f)
{
	static const char *const names[] = {"pm", "atkbdc", "post"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct sysdev *d = sysdev_find(names[i]);

		assert_non_null(d);
		assert_int_equal(d->init(f->ctx), 0);
	}
}

static int
setup_nomev(void **state)
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
	setup_nomev(state);
	init_devs(*state);
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

static uint32_t
in(struct fx *f, int port, int bytes)
{
	uint32_t v = 0;

	assert_int_equal(inout_dispatch(f->ctx, 1, port, bytes, &v), 0);
	return v;
}

static void
out(struct fx *f, int port, int bytes, uint32_t v)
{
	assert_int_equal(inout_dispatch(f->ctx, 0, port, bytes, &v), 0);
}

static void
acpi_enable(struct fx *f)
{
	out(f, PM_SMI_CMD, 1, PM_ACPI_ENABLE);
	assert_int_equal(in(f, PM1A_CNT_BLK, 2) & PM1_SCI_EN, PM1_SCI_EN);
}

static void
test_s5_poweroff(void **state)
{
	struct fx *f = *state;

	acpi_enable(f);
	out(f, PM1A_CNT_BLK, 2, PM_SLP_TYP_S5 << PM1_SLP_TYP_SHIFT);
	assert_false(machine_suspended(f->ctx)); /* no SLP_EN yet */
	out(f, PM1A_CNT_BLK, 2,
	    PM1_SLP_EN | PM_SLP_TYP_S5 << PM1_SLP_TYP_SHIFT);
	assert_true(machine_suspended(f->ctx));
	assert_int_equal(f->m->how, VM_SUSPEND_POWEROFF);
	/* SLP_EN is write-only; SCI_EN survived the write. */
	assert_int_equal(in(f, PM1A_CNT_BLK, 2),
			 PM1_SCI_EN | PM_SLP_TYP_S5 << PM1_SLP_TYP_SHIFT);
}

static void
test_s5_byte_write(void **state)
{
	struct fx *f = *state;

	/* The high byte alone carries SLP_EN and SLP_TYP. */
	out(f, PM1A_CNT_BLK + 1, 1,
	    (PM1_SLP_EN | PM_SLP_TYP_S5 << PM1_SLP_TYP_SHIFT) >> 8);
	assert_true(machine_suspended(f->ctx));
	assert_int_equal(f->m->how, VM_SUSPEND_POWEROFF);
}

static void
test_other_sleep_ignored(void **state)
{
	struct fx *f = *state;

	out(f, PM1A_CNT_BLK, 2, PM1_SLP_EN | 3 << PM1_SLP_TYP_SHIFT);
	assert_false(machine_suspended(f->ctx));
	/* The guest cannot set SCI_EN through PM1_CNT. */
	out(f, PM1A_CNT_BLK, 2, PM1_SCI_EN);
	assert_int_equal(in(f, PM1A_CNT_BLK, 2) & PM1_SCI_EN, 0);
}

static void
test_cf9_reset(void **state)
{
	struct fx *f = *state;

	out(f, PM_RESET_PORT, 1, 0x02); /* SYS_RST alone: armed, no reset */
	assert_false(machine_suspended(f->ctx));
	assert_int_equal(in(f, PM_RESET_PORT, 1), 0x02);
	out(f, PM_RESET_PORT, 1, PM_RESET_VALUE);
	assert_true(machine_suspended(f->ctx));
	assert_int_equal(f->m->how, VM_SUSPEND_RESET);
	assert_int_equal(in(f, PM_RESET_PORT, 1), 0x02);
}

static void
test_power_button_sci(void **state)
{
	struct fx *f = *state;

	acpi_enable(f);
	pm_power_button(f->ctx);
	/* Status without enable: no SCI. */
	assert_int_equal(in(f, PM1A_EVT_BLK, 2), PM1_PWRBTN_STS);
	assert_int_equal(vm_mock_irq_level(f->ctx, PM_SCI_IRQ), 0);
	out(f, PM1A_EVT_BLK + 2, 2, PM1_PWRBTN_STS); /* PWRBTN_EN */
	assert_int_equal(in(f, PM1A_EVT_BLK + 2, 2), PM1_PWRBTN_STS);
	assert_int_equal(vm_mock_irq_level(f->ctx, PM_SCI_IRQ), 1);
	/* Writing 0 leaves status; writing 1 clears it and the SCI. */
	out(f, PM1A_EVT_BLK, 2, 0);
	assert_int_equal(vm_mock_irq_level(f->ctx, PM_SCI_IRQ), 1);
	out(f, PM1A_EVT_BLK, 2, PM1_PWRBTN_STS);
	assert_int_equal(in(f, PM1A_EVT_BLK, 2), 0);
	assert_int_equal(vm_mock_irq_level(f->ctx, PM_SCI_IRQ), 0);
	/* Again, cleared with a dword write of the whole block. */
	pm_power_button(f->ctx);
	assert_int_equal(vm_mock_irq_level(f->ctx, PM_SCI_IRQ), 1);
	assert_int_equal(in(f, PM1A_EVT_BLK, 4),
			 PM1_PWRBTN_STS << 16 | PM1_PWRBTN_STS);
	out(f, PM1A_EVT_BLK, 4, PM1_PWRBTN_STS << 16 | PM1_PWRBTN_STS);
	assert_int_equal(vm_mock_irq_level(f->ctx, PM_SCI_IRQ), 0);
	/* ACPI disabled: a pending event no longer raises the SCI. */
	pm_power_button(f->ctx);
	assert_int_equal(vm_mock_irq_level(f->ctx, PM_SCI_IRQ), 1);
	out(f, PM_SMI_CMD, 1, PM_ACPI_DISABLE);
	assert_int_equal(vm_mock_irq_level(f->ctx, PM_SCI_IRQ), 0);
	assert_false(machine_suspended(f->ctx));
}

static void
test_power_button_before_acpi(void **state)
{
	struct fx *f = *state;

	pm_power_button(f->ctx);
	assert_true(machine_suspended(f->ctx));
	assert_int_equal(f->m->how, VM_SUSPEND_ERROR);
}

static void *
loop_thread(void *arg)
{
	mevent_dispatch(arg);
	return NULL;
}

/* SIGTERM through the event loop presses the button. */
static void
test_sigterm(void **state)
{
	struct fx *f = *state;
	struct timespec ms = {0, 1000000};
	pthread_t t;

	f->m->mev = mevent_create();
	assert_non_null(f->m->mev);
	init_devs(f); /* blocks SIGTERM and watches it */
	acpi_enable(f);
	out(f, PM1A_EVT_BLK + 2, 2, PM1_PWRBTN_STS);
	assert_int_equal(pthread_create(&t, NULL, loop_thread, f->m->mev), 0);
	assert_int_equal(kill(getpid(), SIGTERM), 0);
	for (int i = 0; i < 2000 && !vm_mock_irq_level(f->ctx, PM_SCI_IRQ); i++)
		nanosleep(&ms, NULL);
	assert_int_equal(vm_mock_irq_level(f->ctx, PM_SCI_IRQ), 1);
	assert_int_equal(in(f, PM1A_EVT_BLK, 2), PM1_PWRBTN_STS);
	assert_false(machine_suspended(f->ctx));
	mevent_stop(f->m->mev);
	pthread_join(t, NULL);
}

static void
test_pm_timer(void **state)
{
	struct fx *f = *state;
	struct timespec ms = {0, 2000000};
	uint32_t a, b, d;

	a = in(f, PM_TMR_BLK, 4);
	nanosleep(&ms, NULL);
	b = in(f, PM_TMR_BLK, 4);
	d = b - a; /* wraps like the guest's arithmetic */
	assert_true(d >= PM_TMR_FREQ / 500); /* at least 2 ms */
	assert_true(d < PM_TMR_FREQ);	     /* well under a second */
	/* Byte and word reads of the same counter; writes ignored. */
	a = in(f, PM_TMR_BLK + 2, 2);
	assert_true(a <= 0xffff);
	assert_true(in(f, PM_TMR_BLK + 3, 1) <= 0xff);
	out(f, PM_TMR_BLK, 4, 0);
	assert_true(in(f, PM_TMR_BLK, 4) - b < PM_TMR_FREQ);
}

static void
test_kbd_reset(void **state)
{
	struct fx *f = *state;

	assert_int_equal(in(f, 0x64, 1), 0x1c);
	assert_int_equal(in(f, 0x60, 1), 0);
	out(f, 0x60, 1, 0xfe); /* data, not a command */
	out(f, 0x64, 1, 0xad); /* another command */
	assert_false(machine_suspended(f->ctx));
	out(f, 0x64, 1, 0xfe);
	assert_true(machine_suspended(f->ctx));
	assert_int_equal(f->m->how, VM_SUSPEND_RESET);
}

static void
test_port92_reset(void **state)
{
	struct fx *f = *state;

	assert_int_equal(in(f, 0x92, 1), 0x02);
	out(f, 0x92, 1, 0x02);
	assert_false(machine_suspended(f->ctx));
	out(f, 0x92, 1, 0x03);
	assert_true(machine_suspended(f->ctx));
	assert_int_equal(f->m->how, VM_SUSPEND_RESET);
}

static void
test_post(void **state)
{
	struct fx *f = *state;

	assert_int_equal(in(f, POST_PORT, 1), 0);
	out(f, POST_PORT, 1, 0x55);
	assert_int_equal(in(f, POST_PORT, 1), 0x55);
	out(f, POST_PORT, 1, 0xaa);
	assert_int_equal(in(f, POST_PORT, 1), 0xaa);
}

static void
expect_bad(struct fx *f, int port, int bytes)
{
	uint32_t v = 0;

	assert_int_equal(inout_dispatch(f->ctx, 1, port, bytes, &v), -1);
	assert_int_equal(v, 0xffffffff);
	v = 0xffffffff;
	assert_int_equal(inout_dispatch(f->ctx, 0, port, bytes, &v), -1);
}

static void
test_bad_sizes(void **state)
{
	struct fx *f = *state;

	expect_bad(f, PM_SMI_CMD, 4);
	expect_bad(f, PM_SMI_CMD, 2);
	expect_bad(f, PM1A_CNT_BLK, 4);	    /* runs off the block */
	expect_bad(f, PM1A_EVT_BLK + 3, 2); /* straddles STS/EN->CNT */
	expect_bad(f, PM1A_EVT_BLK + 2, 4);
	expect_bad(f, PM1A_CNT_BLK + 1, 2);
	expect_bad(f, PM_TMR_BLK + 1, 4);
	expect_bad(f, PM1A_EVT_BLK, 3);
	expect_bad(f, PM_RESET_PORT, 2);
	expect_bad(f, 0x64, 4);
	expect_bad(f, 0x60, 2);
	expect_bad(f, 0x92, 4);
	expect_bad(f, POST_PORT, 2);
	/* None of that reset, powered off or enabled anything. */
	assert_false(machine_suspended(f->ctx));
	assert_int_equal(in(f, PM1A_CNT_BLK, 2), 0);
	assert_int_equal(in(f, PM1A_EVT_BLK, 4), 0);
	/* Bits the platform lacks stay clear in PM1_EN. */
	out(f, PM1A_EVT_BLK + 2, 2, 0xffff);
	assert_int_equal(in(f, PM1A_EVT_BLK + 2, 2),
			 PM1_PWRBTN_STS | PM1_GBL_STS | 0x400 /* RTC_EN */);
	/* Byte reads inside the block are fine. */
	assert_int_equal(in(f, PM1A_EVT_BLK + 3, 1),
			 (PM1_PWRBTN_STS | 0x400) >> 8);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_s5_poweroff),
	    T(test_s5_byte_write),
	    T(test_other_sleep_ignored),
	    T(test_cf9_reset),
	    T(test_power_button_sci),
	    T(test_power_button_before_acpi),
	    cmocka_unit_test_setup_teardown(test_sigterm, setup_nomev,
					    teardown),
	    T(test_pm_timer),
	    T(test_kbd_reset),
	    T(test_port92_reset),
	    T(test_post),
	    T(test_bad_sizes),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
