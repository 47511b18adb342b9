/* debug-exit and pc-testdev: exit statuses, ports, IRQ lines, IOMEM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "inout.h"
#include "machine.h"
#include "mem.h"
#include "options.h"
#include "pci_emul.h"
#include "vmm.h"

/* pctestdev.c has no header of its own; this is its teardown. */

#define IOMEM 0xff000000ULL

static char err[256];

struct fx {
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
};

static struct fx *
fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->ctx = vm_create_mock(16 << 20);
	f->cfg = config_create();
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	return f;
}

static void
fx_free(struct fx *f)
{
	machine_free(f->m);
	config_free(f->cfg);
	vm_close(f->ctx);
	free(f);
}

/* -l NAME[,OPTS] through the option parser, then the device's init. */
static int
lpc_up(struct fx *f, const char *arg)
{
	char *argv[] = {"bhyve", "-l", (char *)arg, "vm0"};
	const char *comma = strchr(arg, ',');
	char name[32];
	const struct lpc_dev *d;

	assert_int_equal(
	    bhyve_parse_args(4, argv, f->cfg, stdout, err, sizeof(err)),
	    OPT_RUN);
	snprintf(name, sizeof(name), "%.*s",
		 (int)(comma ? (size_t)(comma - arg) : strlen(arg)), arg);
	d = lpc_dev_find(name);
	assert_non_null(d);
	return d->init(f->ctx, d);
}

static int
io(struct fx *f, int in, int port, int bytes, uint32_t *v)
{
	return inout_dispatch(f->ctx, in, port, bytes, v);
}

static uint32_t
in(struct fx *f, int port, int bytes)
{
	uint32_t v = 0;

	assert_int_equal(io(f, 1, port, bytes, &v), 0);
	return v;
}

static void
out(struct fx *f, int port, int bytes, uint32_t v)
{
	assert_int_equal(io(f, 0, port, bytes, &v), 0);
}

static void
test_debugexit_status(void **state)
{
	static const struct {
		uint32_t v;
		int bytes;
		int status;
	} cases[] = {
	    {0x00, 1, 1},   {0x01, 1, 3},	   {0x10, 1, 33},
	    {0x10, 4, 33},  {0x7f, 1, 255},	   {0x80, 1, 1},
	    {0xff, 2, 255}, {0x12345678, 4, 0xf1}, {0x0100, 2, 1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fx *f = fx_new();

		assert_int_equal(lpc_up(f, "debug-exit"), 0);
		assert_int_equal(in(f, 0xf4, 1), 0); /* reads: nothing */
		assert_false(machine_suspended(f->ctx));
		out(f, 0xf4, cases[i].bytes, cases[i].v);
		assert_true(machine_suspended(f->ctx));
		assert_int_equal(f->m->status, cases[i].status);
		assert_int_equal(f->m->how, VM_SUSPEND_POWEROFF);
		fx_free(f);
	}
}

static void
test_debugexit_port_size(void **state)
{
	struct fx *f = fx_new();
	uint32_t v = 7;

	(void)state;
	assert_int_equal(lpc_up(f, "debug-exit,port=0x501,size=2"), 0);
	assert_string_equal(config_get(f->cfg, "lpc.debug-exit.port"), "0x501");
	assert_string_equal(inout_owner(f->ctx, 0x502), "debug-exit");
	assert_null(inout_owner(f->ctx, 0x503));
	assert_null(inout_owner(f->ctx, 0xf4));
	/* Running off the range is not emulated and does not exit. */
	assert_int_equal(io(f, 0, 0x502, 2, &v), -1);
	assert_int_equal(io(f, 0, 0x501, 4, &v), -1);
	assert_false(machine_suspended(f->ctx));
	out(f, 0x502, 1, 2);
	assert_int_equal(f->m->status, 5);
	fx_free(f);
}

static void
expect_parse_error(const char *arg, const char *needle)
{
	struct config *c = config_create();
	char *argv[] = {"bhyve", "-l", (char *)arg, "vm0"};

	assert_int_equal(bhyve_parse_args(4, argv, c, stdout, err, sizeof(err)),
			 OPT_ERROR);
	assert_non_null(strstr(err, needle));
	config_free(c);
}

static void
test_parse_errors(void **state)
{
	(void)state;
	expect_parse_error("debug-exit,port=0x10000", "bad port");
	expect_parse_error("debug-exit,port=ten", "bad port");
	expect_parse_error("debug-exit,size=3", "size 3");
	expect_parse_error("debug-exit,port=0xfffe,size=4", "size 4");
	expect_parse_error("debug-exit,iobase=1", "expected port=N");
	expect_parse_error("debug-exit,0xf4", "expected port=N");
	expect_parse_error("pc-testdev,x", "takes no options");
}

/* Run init with stderr in a file; returns its first line in buf. */
static int
init_capture(struct fx *f, const char *arg, char *buf, size_t len)
{
	char path[] = "/tmp/test_testdev.XXXXXX";
	int fd = mkstemp(path), saved = dup(2), rc;
	FILE *fp;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	rc = lpc_up(f, arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	fp = fopen(path, "r");
	assert_non_null(fp);
	buf[0] = '\0';
	if (!fgets(buf, (int)len, fp))
		buf[0] = '\0';
	fclose(fp);
	unlink(path);
	return rc;
}

static void
test_conflict_names_owner(void **state)
{
	struct fx *f = fx_new();
	char line[256];

	(void)state;
	assert_int_equal(lpc_up(f, "debug-exit"), 0);
	assert_int_equal(init_capture(f, "pc-testdev", line, sizeof(line)), -1);
	assert_non_null(strstr(line, "port 0xf4 is taken by debug-exit"));
	/* pc-testdev left nothing behind. */
	assert_null(inout_owner(f->ctx, 0xe0));
	assert_null(inout_owner(f->ctx, 0x2000));
	fx_free(f);

	f = fx_new();
	assert_int_equal(lpc_up(f, "pc-testdev"), 0);
	assert_int_equal(init_capture(f, "debug-exit", line, sizeof(line)), -1);
	assert_non_null(strstr(line, "port 0xf4 is taken by pc-testdev"));
	fx_free(f);
}

static void
test_pctestdev_ports(void **state)
{
	struct fx *f = fx_new();
	uint32_t v = 0;

	(void)state;
	assert_int_equal(lpc_up(f, "pc-testdev"), 0);
	assert_true(config_get_bool(f->cfg, "lpc.pc-testdev", false));
	/* The scratch register, in pieces. */
	out(f, 0xe0, 4, 0x11223344);
	assert_int_equal(in(f, 0xe0, 4), 0x11223344);
	assert_int_equal(in(f, 0xe2, 1), 0x22);
	assert_int_equal(in(f, 0xe2, 2), 0x1122);
	out(f, 0xe1, 2, 0xbbaa);
	assert_int_equal(in(f, 0xe0, 4), 0x11bbaa44);
	out(f, 0xe3, 1, 0x99);
	assert_int_equal(in(f, 0xe0, 4), 0x99bbaa44);
	assert_int_equal(io(f, 1, 0xe2, 4, &v), -1); /* runs off */
	assert_int_equal(v, 0xffffffff);
	/* IRQ lines: non-zero asserts, zero deasserts. */
	out(f, 0x2005, 1, 1);
	assert_int_equal(vm_mock_irq_level(f->ctx, 5), 1);
	out(f, 0x2005, 1, 0);
	assert_int_equal(vm_mock_irq_level(f->ctx, 5), 0);
	out(f, 0x2000 + 23, 1, 0xff);
	assert_int_equal(vm_mock_irq_level(f->ctx, 23), 1);
	assert_int_equal(in(f, 0x2000 + 23, 1), 0);
	assert_int_equal(io(f, 0, 0x2005, 2, &v), -1);
	assert_null(inout_owner(f->ctx, 0x2000 + 24));
	/* Its debug exit. */
	out(f, 0xf7, 1, 0x10);
	assert_int_equal(f->m->status, 33);
	fx_free(f);
}

static void
test_pctestdev_iomem(void **state)
{
	struct fx *f = fx_new();
	uint64_t v = 0x0123456789abcdefULL;

	(void)state;
	assert_int_equal(lpc_up(f, "pc-testdev"), 0);
	assert_int_equal(
	    emulate_mem(f->ctx, NULL, IOMEM + 8, MEM_F_WRITE, 8, &v), 0);
	v = 0;
	assert_int_equal(
	    emulate_mem(f->ctx, NULL, IOMEM + 12, MEM_F_READ, 4, &v), 0);
	assert_int_equal(v, 0x01234567);
	assert_int_equal(
	    emulate_mem(f->ctx, NULL, IOMEM + 9, MEM_F_READ, 1, &v), 0);
	assert_int_equal(v, 0xcd);
	/* The last bytes are there; past them is all ones. */
	v = 0xaa;
	assert_int_equal(
	    emulate_mem(f->ctx, NULL, IOMEM + 0xffff, MEM_F_WRITE, 1, &v), 0);
	assert_int_equal(
	    emulate_mem(f->ctx, NULL, IOMEM + 0xffff, MEM_F_READ, 1, &v), 0);
	assert_int_equal(v, 0xaa);
	assert_int_equal(
	    emulate_mem(f->ctx, NULL, IOMEM + 0xfffc, MEM_F_READ, 8, &v), 0);
	assert_int_equal(v, ~0ULL);
	fx_free(f);
}

/*
 * bhyve -s 4,virtio-rnd -s 31,lpc -l pc-testdev, and with the LPC bridge
 * first: the first I/O BAR used to take 0x2000, pc-testdev's IRQ ports.
 */
static void
test_pctestdev_with_pci_io_bar(void **state)
{
	static const char *const lpc_slot[] = {"31,lpc", "1,lpc"};

	(void)state;
	for (int i = 0; i < 2; i++) {
		char *argv[] = {"bhyve",	"-s", "0,hostbridge",	   "-s",
				"4,virtio-rnd", "-s", (char *)lpc_slot[i], "-l",
				"pc-testdev",	"vm0"};
		struct fx *f = fx_new();
		struct pci_devinst *pi;
		uint32_t bar;

		assert_int_equal(bhyve_parse_args(10, argv, f->cfg, stdout, err,
						  sizeof(err)),
				 OPT_RUN);
		assert_int_equal(init_pci(f->ctx), 0);
		pi = pci_find_devinst(f->ctx, 0, 4, 0);
		assert_non_null(pi);
		bar = pci_get_cfgdata32(pi, 0x10) & ~3u; /* BAR 0 */
		assert_true(bar >= PCI_EMUL_IOBASE);
		assert_string_equal(inout_owner(f->ctx, (int)bar), pi->pi_name);
		for (int port = 0x2000; port < 0x2018; port++)
			assert_string_equal(inout_owner(f->ctx, port),
					    "pc-testdev");
		out(f, 0x2005, 1, 1);
		assert_int_equal(vm_mock_irq_level(f->ctx, 5), 1);
		fx_free(f);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_debugexit_status),
	    cmocka_unit_test(test_debugexit_port_size),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_conflict_names_owner),
	    cmocka_unit_test(test_pctestdev_ports),
	    cmocka_unit_test(test_pctestdev_with_pci_io_bar),
	    cmocka_unit_test(test_pctestdev_iomem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
