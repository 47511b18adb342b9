/* -l milestone: records of the guest's lines, and their cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "inout.h"
#include "machine.h"
#include "vmm.h"

struct fx {
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
	char dir[64], log[96], errlog[96];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	f->ctx = vm_create_mock(16 << 20);
	f->cfg = config_create();
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	strcpy(f->dir, "/tmp/test_milestone.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->log, sizeof(f->log), "%s/ms.log", f->dir);
	snprintf(f->errlog, sizeof(f->errlog), "%s/stderr", f->dir);
	assert_int_equal(
	    config_set(f->cfg, "lpc.milestone.path", f->log, err, sizeof(err)),
	    0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	machine_free(f->m);
	config_free(f->cfg);
	vm_close(f->ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
send_line(struct fx *f, const char *s)
{
	uint32_t v;

	for (; *s; s++) {
		v = (uint8_t)*s;
		assert_int_equal(inout_dispatch(f->ctx, 0, 0xe9, 1, &v), 0);
	}
	v = '\n';
	assert_int_equal(inout_dispatch(f->ctx, 0, 0xe9, 1, &v), 0);
}

static off_t
size_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static char *
slurp(const char *path)
{
	static char buf[4096];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static void
test_records(void **state)
{
	struct fx *f = *state;
	const struct lpc_dev *d = lpc_dev_find("milestone");

	assert_non_null(d);
	assert_int_equal(d->init(f->ctx, d), 0);
	send_line(f, "kernel started");
	send_line(f, "user\rspace\x01up");
	assert_non_null(strstr(slurp(f->log), " kernel started\n"));
	assert_non_null(strstr(slurp(f->log), " userspace?up\n"));
}

/* A guest that never stops sending: 1 MiB of records, then a line. */
static void
test_cap(void **state)
{
	struct fx *f = *state;
	const struct lpc_dev *d = lpc_dev_find("milestone");
	char line[201], *err;
	int saved, fd;

	memset(line, 'm', 200);
	line[200] = '\0';
	assert_int_equal(d->init(f->ctx, d), 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	fd = open(f->errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	for (int i = 0; i < 8000; i++) /* about 1.6 MiB */
		send_line(f, line);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);

	assert_true(size_of(f->log) <= 1 << 20);
	assert_true(size_of(f->log) > (1 << 20) - 300);
	err = slurp(f->errlog);
	assert_non_null(strstr(err, "1024 KiB of records written"));
	assert_null(strstr(strstr(err, "KiB of records") + 1,
			   "KiB of records")); /* said once */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_records, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cap, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
