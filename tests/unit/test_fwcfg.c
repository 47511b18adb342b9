/* fw_cfg: ports, the file directory, DMA into mock memory, and -f. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <endian.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "fwcfg.h"
#include "inout.h"
#include "machine.h"
#include "options.h"
#include "vmm.h"

#define MEMSIZE (16 << 20)
#define ACCESS_GPA 0x1000ULL
#define BUF_GPA 0x2000ULL

static char err[512];

struct fx {
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
	char tmp[64];
};

static void
set(struct fx *f, const char *k, const char *v)
{
	assert_int_equal(config_set(f->cfg, k, v, err, sizeof(err)), 0);
}

static int
setup_nodev(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->ctx = vm_create_mock(MEMSIZE);
	assert_non_null(f->ctx);
	assert_int_equal(vm_set_ncpus(f->ctx, 2), 0);
	f->cfg = config_create();
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	set(f, "lpc.fwcfg", "qemu");
	set(f, "fwcfg.files.0.name", "opt/test");
	set(f, "fwcfg.files.0.string", "hello");
	*state = f;
	return 0;
}

static int
fwcfg_up(struct fx *f)
{
	const struct lpc_dev *d = lpc_dev_find("fwcfg");

	assert_non_null(d);
	return d->init(f->ctx, d);
}

static int
setup(void **state)
{
	setup_nodev(state);
	assert_int_equal(fwcfg_up(*state), 0);
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	machine_free(f->m);
	config_free(f->cfg);
	vm_close(f->ctx);
	if (f->tmp[0])
		unlink(f->tmp);
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
select_key(struct fx *f, uint16_t key)
{
	out(f, FWCFG_PORT_SEL, 2, key);
}

static void
read_data(struct fx *f, void *buf, size_t len)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)in(f, FWCFG_PORT_DATA, 1);
}

static uint64_t
read_le(struct fx *f, uint16_t key, size_t len)
{
	uint64_t v = 0;

	select_key(f, key);
	read_data(f, &v, len);
	return le64toh(v);
}

static void
test_signature_ports(void **state)
{
	struct fx *f = *state;
	char sig[5] = {0};

	select_key(f, FWCFG_SIGNATURE);
	read_data(f, sig, 4);
	assert_string_equal(sig, "QEMU");
	/* Past the end: zeros. */
	assert_int_equal(in(f, FWCFG_PORT_DATA, 1), 0);
	/* Selecting again starts over; the write bit is ignored. */
	select_key(f, 0x4000 | FWCFG_SIGNATURE);
	assert_int_equal(in(f, FWCFG_PORT_DATA, 1), 'Q');
	/* No such item (an arch-specific key): zeros. */
	select_key(f, 0x8000);
	assert_int_equal(in(f, FWCFG_PORT_DATA, 1), 0);
	/* Writes to the data port are ignored. */
	select_key(f, FWCFG_SIGNATURE);
	out(f, FWCFG_PORT_DATA, 1, 'X');
	assert_int_equal(in(f, FWCFG_PORT_DATA, 1), 'Q');
}

static void
test_fixed_items(void **state)
{
	struct fx *f = *state;

	assert_int_equal(read_le(f, FWCFG_ID, 4),
			 FWCFG_ID_TRADITIONAL | FWCFG_ID_DMA);
	assert_int_equal(read_le(f, FWCFG_NB_CPUS, 2), 2);
	assert_int_equal(read_le(f, FWCFG_MAX_CPUS, 2), 2);
	assert_int_equal(read_le(f, FWCFG_RAM_SIZE, 8), MEMSIZE);
	/* No kernel configured: no kernel items. */
	assert_int_equal(read_le(f, FWCFG_KERNEL_SIZE, 4), 0);
}

struct dirent_fw {
	uint32_t size;
	uint16_t select;
	char name[FWCFG_NAME_MAX];
};

static int
read_dir(struct fx *f, struct dirent_fw *ents, int max)
{
	uint32_t count;
	uint8_t e[FWCFG_FILE_ENTRY];

	select_key(f, FWCFG_FILE_DIR);
	read_data(f, &count, 4);
	count = be32toh(count);
	assert_true(count <= (uint32_t)max);
	for (uint32_t i = 0; i < count; i++) {
		uint32_t size;
		uint16_t sel, rsvd;

		read_data(f, e, sizeof(e));
		memcpy(&size, e, 4);
		memcpy(&sel, e + 4, 2);
		memcpy(&rsvd, e + 6, 2);
		assert_int_equal(rsvd, 0);
		ents[i].size = be32toh(size);
		ents[i].select = be16toh(sel);
		memcpy(ents[i].name, e + 8, FWCFG_NAME_MAX);
		assert_int_equal(ents[i].name[FWCFG_NAME_MAX - 1], 0);
	}
	return (int)count;
}

static const struct dirent_fw *
find_file(const struct dirent_fw *ents, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(ents[i].name, name))
			return &ents[i];
	return NULL;
}

static void
test_file_directory(void **state)
{
	struct fx *f = *state;
	struct dirent_fw ents[16];
	int n = read_dir(f, ents, 16);
	const struct dirent_fw *t;
	char buf[8];

	assert_int_equal(n, 3);
	/* Sorted by name, selectors from 0x20 in that order. */
	assert_string_equal(ents[0].name, "bootorder");
	assert_string_equal(ents[1].name, "etc/e820");
	assert_string_equal(ents[2].name, "opt/test");
	for (int i = 0; i < n; i++)
		assert_int_equal(ents[i].select, FWCFG_FILE_FIRST + i);
	assert_int_equal(ents[0].size, 0);
	t = find_file(ents, n, "opt/test");
	assert_int_equal(t->size, 6); /* "hello" and its NUL, as bhyve */
	select_key(f, t->select);
	read_data(f, buf, 6);
	assert_memory_equal(buf, "hello", 6);
	assert_int_equal(in(f, FWCFG_PORT_DATA, 1), 0);
}

static void
test_e820_file(void **state)
{
	struct fx *f = *state;
	struct dirent_fw ents[16];
	int n = read_dir(f, ents, 16);
	const struct dirent_fw *e = find_file(ents, n, "etc/e820");
	uint8_t map[20 * 16];
	uint64_t addr, len, total = 0;
	uint32_t type;

	assert_non_null(e);
	assert_int_equal(e->size % 20, 0);
	assert_true(e->size >= 40 && e->size <= sizeof(map));
	select_key(f, e->select);
	read_data(f, map, e->size);
	for (uint32_t i = 0; i < e->size / 20; i++) {
		memcpy(&addr, map + 20 * i, 8);
		memcpy(&len, map + 20 * i + 8, 8);
		memcpy(&type, map + 20 * i + 16, 4);
		if (i == 0) {
			assert_int_equal(le64toh(addr), 0);
			assert_int_equal(le32toh(type), 1);
		}
		if (le32toh(type) == 1)
			total += le64toh(len);
	}
	assert_true(total > MEMSIZE / 2 && total <= MEMSIZE);
}

/* Put an FWCfgDmaAccess at ACCESS_GPA and start it; returns control. */
static uint32_t
dma(struct fx *f, uint32_t control, uint32_t len, uint64_t addr)
{
	uint8_t *p = vm_map_gpa(f->ctx, ACCESS_GPA, 16);
	uint32_t c = htobe32(control), l = htobe32(len);
	uint64_t a = htobe64(addr);

	memcpy(p, &c, 4);
	memcpy(p + 4, &l, 4);
	memcpy(p + 8, &a, 8);
	out(f, FWCFG_PORT_DMA, 4, htobe32((uint32_t)(ACCESS_GPA >> 32)));
	out(f, FWCFG_PORT_DMA + 4, 4, htobe32((uint32_t)ACCESS_GPA));
	memcpy(&c, p, 4);
	return be32toh(c);
}

static uint16_t
test_file_key(struct fx *f)
{
	struct dirent_fw ents[16];
	int n = read_dir(f, ents, 16);

	return find_file(ents, n, "opt/test")->select;
}

static void
test_dma_read(void **state)
{
	struct fx *f = *state;
	uint16_t key = test_file_key(f);
	uint8_t *buf = vm_map_gpa(f->ctx, BUF_GPA, 16);

	memset(buf, 0xaa, 16);
	assert_int_equal(
	    dma(f, (uint32_t)key << 16 | FWCFG_DMA_SELECT | FWCFG_DMA_READ, 3,
		BUF_GPA),
	    0);
	assert_memory_equal(buf, "hel", 3);
	assert_int_equal(buf[3], 0xaa);
	/* Carries on from the offset; past the end, zeros. */
	assert_int_equal(dma(f, FWCFG_DMA_READ, 10, BUF_GPA), 0);
	assert_memory_equal(buf, "lo\0\0\0\0\0\0\0\0", 10);
	assert_int_equal(buf[10], 0xaa);
	/* Skip, then read. */
	memset(buf, 0xaa, 16);
	assert_int_equal(
	    dma(f, (uint32_t)key << 16 | FWCFG_DMA_SELECT | FWCFG_DMA_SKIP, 2,
		0),
	    0);
	assert_int_equal(dma(f, FWCFG_DMA_READ, 4, BUF_GPA), 0);
	assert_memory_equal(buf, "llo", 4);
	/* The port interface sees the same offset. */
	select_key(f, FWCFG_SIGNATURE);
	assert_int_equal(dma(f, FWCFG_DMA_READ, 2, BUF_GPA), 0);
	assert_int_equal(in(f, FWCFG_PORT_DATA, 1), 'M');
}

static void
test_dma_errors(void **state)
{
	struct fx *f = *state;
	uint16_t key = test_file_key(f);
	uint32_t sel = (uint32_t)key << 16 | FWCFG_DMA_SELECT;
	uint8_t *buf = vm_map_gpa(f->ctx, BUF_GPA, 16);

	/* Outside RAM, running off its end, or wrapping: the error bit. */
	assert_int_equal(dma(f, sel | FWCFG_DMA_READ, 6, 0xf0000000ULL),
			 FWCFG_DMA_ERROR);
	assert_int_equal(dma(f, sel | FWCFG_DMA_READ, 0x7fffffff, BUF_GPA),
			 FWCFG_DMA_ERROR);
	assert_int_equal(dma(f, sel | FWCFG_DMA_READ, 16, MEMSIZE - 8),
			 FWCFG_DMA_ERROR);
	assert_int_equal(dma(f, sel | FWCFG_DMA_READ, 16, ~0ULL - 4),
			 FWCFG_DMA_ERROR);
	/* Items are read-only. */
	assert_int_equal(dma(f, sel | FWCFG_DMA_WRITE, 6, BUF_GPA),
			 FWCFG_DMA_ERROR);
	/* Nothing was copied and the offset did not move. */
	memset(buf, 0xaa, 16);
	assert_int_equal(dma(f, FWCFG_DMA_READ, 6, BUF_GPA), 0);
	assert_memory_equal(buf, "hello", 6);
	/* A zero-length read is fine. */
	assert_int_equal(dma(f, sel | FWCFG_DMA_READ, 0, 0xf0000000ULL), 0);
	/* An access structure outside RAM: nothing to do, nothing breaks. */
	out(f, FWCFG_PORT_DMA, 4, htobe32(0x1));
	out(f, FWCFG_PORT_DMA + 4, 4, htobe32(0));
	out(f, FWCFG_PORT_DMA + 4, 4, htobe32(MEMSIZE - 8));
}

static void
test_dma_register(void **state)
{
	struct fx *f = *state;
	uint32_t v;
	uint32_t bad = 0;

	v = in(f, FWCFG_PORT_DMA, 4);
	assert_memory_equal(&v, "QEMU", 4);
	v = in(f, FWCFG_PORT_DMA + 4, 4);
	assert_memory_equal(&v, " CFG", 4);
	assert_int_equal(in(f, FWCFG_PORT_DMA + 1, 1), 'E');
	/* Accesses the device does not take. */
	assert_int_equal(inout_dispatch(f->ctx, 0, FWCFG_PORT_DMA, 2, &bad),
			 -1);
	assert_int_equal(inout_dispatch(f->ctx, 0, FWCFG_PORT_DMA + 2, 4, &bad),
			 -1);
	assert_int_equal(inout_dispatch(f->ctx, 1, FWCFG_PORT_DMA + 6, 4, &bad),
			 -1);
	assert_int_equal(bad, 0xffffffff);
	assert_int_equal(inout_dispatch(f->ctx, 1, FWCFG_PORT_DATA, 2, &bad),
			 -1);
	assert_int_equal(inout_dispatch(f->ctx, 0, FWCFG_PORT_SEL, 1, &bad),
			 -1);
}

static void
write_tmp(struct fx *f, const void *data, size_t len)
{
	int fd;

	snprintf(f->tmp, sizeof(f->tmp), "/tmp/test_fwcfg.XXXXXX");
	fd = mkstemp(f->tmp);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void
test_host_file_and_kernel(void **state)
{
	struct fx *f = *state;
	static uint8_t img[4096];
	struct dirent_fw ents[16];
	const struct dirent_fw *e;
	uint8_t b[4];
	int n;

	/* A bzImage: "HdrS" at 0x202, one setup sector besides the boot one. */
	memcpy(img + 0x202, "HdrS", 4);
	img[0x1f1] = 1;
	img[1024] = 0x5c;
	write_tmp(f, img, sizeof(img));
	set(f, "fwcfg.files.1.name", "opt/blob");
	set(f, "fwcfg.files.1.file", f->tmp);
	set(f, "fwcfg.kernel", f->tmp);
	set(f, "fwcfg.cmdline", "console=ttyS0");
	assert_int_equal(fwcfg_up(f), 0);
	n = read_dir(f, ents, 16);
	e = find_file(ents, n, "opt/blob");
	assert_non_null(e);
	assert_int_equal(e->size, sizeof(img));
	assert_int_equal(read_le(f, FWCFG_SETUP_SIZE, 4), 1024);
	assert_int_equal(read_le(f, FWCFG_KERNEL_SIZE, 4), 3072);
	select_key(f, FWCFG_KERNEL_DATA);
	read_data(f, b, 1);
	assert_int_equal(b[0], 0x5c);
	assert_int_equal(read_le(f, FWCFG_CMDLINE_SIZE, 4), 14);
	select_key(f, FWCFG_CMDLINE_DATA);
	read_data(f, b, 4);
	assert_memory_equal(b, "cons", 4);
}

static int
other_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax,
	 void *arg)
{
	(void)ctx;
	(void)in;
	(void)port;
	(void)bytes;
	(void)eax;
	(void)arg;
	return 0;
}

/* Start-up errors: each refuses the device (with a one-line message). */
static void
test_startup_errors(void **state)
{
	struct fx *f = *state;

	set(f, "fwcfg.files.1.name", "opt/missing");
	set(f, "fwcfg.files.1.file", "/nonexistent/fwcfg-file");
	assert_int_equal(fwcfg_up(f), -1);
	assert_null(inout_owner(f->ctx, FWCFG_PORT_SEL));
	config_unset(f->cfg, "fwcfg.files.1");

	set(f, "fwcfg.files.1.name", "opt/test"); /* a duplicate */
	set(f, "fwcfg.files.1.string", "again");
	assert_int_equal(fwcfg_up(f), -1);
	config_unset(f->cfg, "fwcfg.files.1");

	set(f, "fwcfg.files.1.name",
	    "opt/0123456789012345678901234567890123456789012345678901");
	set(f, "fwcfg.files.1.string", "x");
	assert_int_equal(fwcfg_up(f), -1);
	config_unset(f->cfg, "fwcfg.files.1");

	set(f, "fwcfg.files.1.name", "opt/both");
	set(f, "fwcfg.files.1.string", "x");
	set(f, "fwcfg.files.1.file", "/etc/hostname");
	assert_int_equal(fwcfg_up(f), -1);
	config_unset(f->cfg, "fwcfg.files.1");

	set(f, "lpc.fwcfg", "bhyve");
	assert_int_equal(fwcfg_up(f), -1);
	set(f, "lpc.fwcfg", "qemu");

	/* Someone else on the DMA ports: refused, the others released. */
	struct inout_port iop = {"other",	 FWCFG_PORT_DMA + 4, 1,
				 IOPORT_F_INOUT, other_io,	     NULL};
	assert_int_equal(register_inout(f->ctx, &iop), 0);
	assert_int_equal(fwcfg_up(f), -1);
	assert_null(inout_owner(f->ctx, FWCFG_PORT_SEL));
	unregister_inout(f->ctx, &iop);
	assert_int_equal(fwcfg_up(f), 0);
}

/* -f without -l fwcfg,qemu is an error at start-up. */
static void
test_files_need_fwcfg(void **state)
{
	struct fx *f = *state;
	const struct sysdev *check = sysdev_find("fwcfg-check");

	assert_non_null(check);
	assert_int_equal(check->init(f->ctx), 0);
	config_unset(f->cfg, "lpc.fwcfg");
	assert_int_equal(check->init(f->ctx), -1);
	config_unset(f->cfg, "fwcfg");
	assert_int_equal(check->init(f->ctx), 0);
}

/* Parse a command line into a fresh tree. */
static enum opt_result
parse(struct config **out, ...)
{
	char *argv[32] = {"bhyve"};
	int argc = 1;
	va_list ap;
	const char *a;
	FILE *devnull = fopen("/dev/null", "w");
	enum opt_result r;

	va_start(ap, out);
	while ((a = va_arg(ap, const char *)) && argc < 31)
		argv[argc++] = (char *)a;
	va_end(ap);
	*out = config_create();
	err[0] = '\0';
	r = bhyve_parse_args(argc, argv, *out, devnull, err, sizeof(err));
	fclose(devnull);
	return r;
}

static void
test_f_option(void **state)
{
	struct config *c;

	(void)state;
	assert_int_equal(parse(&c, "-f", "opt/a,string=x,y=z", "-f",
			       "name=opt/b,file=/tmp/b.bin", "-l", "fwcfg,qemu",
			       "vm0", NULL),
			 OPT_RUN);
	assert_string_equal(config_get(c, "fwcfg.files.0.name"), "opt/a");
	assert_string_equal(config_get(c, "fwcfg.files.0.string"), "x,y=z");
	assert_string_equal(config_get(c, "fwcfg.files.1.name"), "opt/b");
	assert_string_equal(config_get(c, "fwcfg.files.1.file"), "/tmp/b.bin");
	assert_string_equal(config_get(c, "lpc.fwcfg"), "qemu");
	config_free(c);
}

static void
expect_parse_error(const char *opt, const char *arg, const char *needle)
{
	struct config *c;

	assert_int_equal(parse(&c, opt, arg, "vm0", NULL), OPT_ERROR);
	assert_non_null(strstr(err, needle));
	assert_null(strchr(err, '\n'));
	config_free(c);
}

static void
test_f_option_errors(void **state)
{
	struct config *c;

	(void)state;
	expect_parse_error("-f", "opt/a", "-f opt/a: expected");
	expect_parse_error("-f", ",string=x", "-f ,string=x");
	expect_parse_error("-f", "opt/a,bogus=1", "string=VALUE or file=PATH");
	expect_parse_error("-f", "opt/a,file=", "-f opt/a,file=");
	expect_parse_error(
	    "-f",
	    "opt/0123456789012345678901234567890123456789012345678901,"
	    "string=x",
	    "longer than 55");
	expect_parse_error("-l", "fwcfg,bhyve", "-l fwcfg,qemu");
	expect_parse_error("-l", "fwcfg", "expected -l fwcfg,qemu");
	expect_parse_error("-l", "fwcfg,foo", "-l fwcfg,foo");
	/* 55 characters is fine; the same name twice is not. */
	assert_int_equal(
	    parse(&c, "-f",
		  "opt/012345678901234567890123456789012345678901234567890,"
		  "string=x",
		  "vm0", NULL),
	    OPT_RUN);
	config_free(c);
	assert_int_equal(parse(&c, "-f", "opt/a,string=x", "-f",
			       "opt/a,string=y", "vm0", NULL),
			 OPT_ERROR);
	assert_non_null(strstr(err, "'opt/a' is already given"));
	config_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define N(fn) cmocka_unit_test_setup_teardown(fn, setup_nodev, teardown)
	    T(test_signature_ports),
	    T(test_fixed_items),
	    T(test_file_directory),
	    T(test_e820_file),
	    T(test_dma_read),
	    T(test_dma_errors),
	    T(test_dma_register),
	    N(test_host_file_and_kernel),
	    N(test_startup_errors),
	    N(test_files_need_fwcfg),
	    cmocka_unit_test(test_f_option),
	    cmocka_unit_test(test_f_option_errors),
#undef T
#undef N
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
