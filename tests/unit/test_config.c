/* The config tree and bhyve's option parser, bad input included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "options.h"

static char err[256];

static enum opt_result parse(struct config **out, ...);

static void
test_set_get(void **state)
{
	struct config *c = config_create();

	(void)state;
	assert_int_equal(
	    config_set(c, "pci.0.3.0.path", "/x.img", err, sizeof(err)), 0);
	assert_string_equal(config_get(c, "pci.0.3.0.path"), "/x.img");
	assert_null(config_get(c, "pci.0.3.0"));
	assert_null(config_get(c, "pci.0.4.0.path"));
	assert_non_null(config_node(c, "pci.0.3"));
	/* Overwrite keeps one value. */
	config_set(c, "pci.0.3.0.path", "/y.img", err, sizeof(err));
	assert_string_equal(config_get(c, "pci.0.3.0.path"), "/y.img");
	config_free(c);
}

static void
test_leaf_and_group_conflict(void **state)
{
	struct config *c = config_create();

	(void)state;
	config_set(c, "memory.size", "1G", err, sizeof(err));
	assert_int_equal(config_set(c, "memory.size.x", "1", err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "memory.size"));
	assert_int_equal(config_set(c, "memory", "2", err, sizeof(err)), -1);
	config_free(c);
}

static void
test_bad_keys(void **state)
{
	struct config *c = config_create();
	static const char *const bad[] = {"", ".a", "a.", "a..b", "a b", "a=b"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(config_set(c, bad[i], "v", err, sizeof(err)),
				 -1);
	assert_int_equal(config_set_kv(c, "novalue", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "key=value"));
	assert_int_equal(config_set_kv(c, "=v", err, sizeof(err)), -1);
	config_free(c);
}

static void
test_bool_and_expand(void **state)
{
	struct config *c = config_create();

	(void)state;
	config_set(c, "a", "yes", err, sizeof(err));
	config_set(c, "b", "off", err, sizeof(err));
	config_set(c, "c", "maybe", err, sizeof(err));
	assert_true(config_get_bool(c, "a", false));
	assert_false(config_get_bool(c, "b", true));
	assert_true(config_get_bool(c, "c", true)); /* bad: the default */
	config_set(c, "name", "vm1", err, sizeof(err));
	config_set(c, "path", "/vms/%(name).img", err, sizeof(err));
	assert_string_equal(config_get(c, "path"), "/vms/vm1.img");
	/* A self-reference ends, bounded: it reads raw and is an error. */
	config_set(c, "loop", "x%(loop)", err, sizeof(err));
	assert_string_equal(config_get(c, "loop"), "x%(loop)");
	assert_int_equal(config_check(c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "loop"));
	assert_non_null(strstr(err, "too deep"));
	config_free(c);
}

/* Two reads, a set in between: every pointer stays good (ASan checks). */
static void
test_values_stay(void **state)
{
	struct config *c = config_create();
	const char *a, *b, *plain;

	(void)state;
	config_set(c, "base", "vm1", err, sizeof(err));
	config_set(c, "name", "%(base)-x", err, sizeof(err));
	config_set(c, "plain", "p1", err, sizeof(err));
	a = config_get(c, "name");
	b = config_get(c, "name");
	plain = config_get(c, "plain");
	assert_string_equal(a, "vm1-x");
	assert_string_equal(b, "vm1-x");
	config_set(c, "base", "vm2", err, sizeof(err));
	config_set(c, "plain", "p2", err, sizeof(err));
	assert_string_equal(config_get(c, "name"), "vm2-x");
	assert_string_equal(config_get(c, "plain"), "p2");
	assert_string_equal(a, "vm1-x");
	assert_string_equal(b, "vm1-x");
	assert_string_equal(plain, "p1");
	config_free(c);
}

/*
 * bhyve -o base=vm1 '%(base)': options.c keeps the VM name, smbiostbl.c
 * reads "name" again; the first pointer must survive the second read.
 */
static void
test_name_by_reference(void **state)
{
	struct config *c;
	struct bhyve_settings s;

	(void)state;
	assert_int_equal(parse(&c, "-o", "base=vm1", "%(base)", NULL), OPT_RUN);
	assert_int_equal(bhyve_check_config(c, stderr, err, sizeof(err)), 0);
	assert_int_equal(bhyve_settings(c, &s, err, sizeof(err)), 0);
	assert_string_equal(config_get(c, "name"), "vm1");
	assert_string_equal(config_get(c, "name"), "vm1");
	assert_string_equal(s.name, "vm1");
	config_free(c);
}

/* A chain where each value names the one before twice doubles per link. */
static void
test_expansion_bounded(void **state)
{
	struct config *c = config_create();
	char key[16], prev[16], val[128];
	clock_t t0 = clock();

	(void)state;
	config_set(c, "a0",
		   "0123456789abcdef0123456789abcdef"
		   "0123456789abcdef0123456789abcdef",
		   err, sizeof(err));
	for (int i = 1; i <= 60; i++) {
		snprintf(key, sizeof(key), "a%d", i);
		snprintf(prev, sizeof(prev), "a%d", i - 1);
		snprintf(val, sizeof(val), "%%(%s)%%(%s)", prev, prev);
		assert_int_equal(config_set(c, key, val, err, sizeof(err)), 0);
	}
	/* 2^10 copies of 64 bytes is exactly 64 KiB: still fine. */
	assert_int_equal(strlen(config_get(c, "a10")), 64 * 1024);
	assert_string_equal(config_get(c, "a60"), "%(a59)%(a59)");
	assert_int_equal(config_check(c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "a11="));
	assert_non_null(strstr(err, "64 KiB"));
	assert_null(strchr(err, '\n'));
	/* A wide fan-out stays small but has too many references. */
	config_set(c, "z", "", err, sizeof(err));
	config_unset(c, "a0");
	for (int i = 1; i <= 60; i++) {
		snprintf(key, sizeof(key), "a%d", i);
		config_unset(c, key);
	}
	config_set(c, "b0", "%(z)%(z)%(z)%(z)%(z)%(z)%(z)%(z)", err,
		   sizeof(err));
	for (int i = 1; i <= 8; i++) {
		snprintf(key, sizeof(key), "b%d", i);
		snprintf(prev, sizeof(prev), "b%d", i - 1);
		snprintf(val, sizeof(val), "%%(%s)%%(%s)%%(%s)%%(%s)", prev,
			 prev, prev, prev);
		config_set(c, key, val, err, sizeof(err));
	}
	assert_int_equal(config_check(c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too many references"));
	/* Bounded work: well under a second, not 15 s. */
	assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 1.0);
	config_free(c);
}

static void
test_bad_bool_and_ref(void **state)
{
	struct config *c;

	(void)state;
	assert_int_equal(parse(&c, "-o", "x86.strictmsr=flase", "vm", NULL),
			 OPT_RUN);
	assert_int_equal(bhyve_check_config(c, stderr, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'flase'"));
	assert_non_null(strstr(err, "x86.strictmsr"));
	config_free(c);
	/* A bad boolean reached through a reference names its value too. */
	assert_int_equal(
	    parse(&c, "-o", "v=maybe", "-o", "virtio_msix=%(v)", "vm", NULL),
	    OPT_RUN);
	assert_int_equal(bhyve_check_config(c, stderr, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'maybe'"));
	assert_non_null(strstr(err, "virtio_msix"));
	config_free(c);
	assert_int_equal(parse(&c, "-o", "x86.strictio=yes", "vm", NULL),
			 OPT_RUN);
	assert_int_equal(bhyve_check_config(c, stderr, err, sizeof(err)), 0);
	config_free(c);
	assert_int_equal(parse(&c, "-o", "memory.size=%(nosuch)", "vm", NULL),
			 OPT_RUN);
	assert_int_equal(bhyve_check_config(c, stderr, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "memory.size"));
	assert_non_null(strstr(err, "%(nosuch): no such value"));
	config_free(c);
}

static void
test_unknown_top_key(void **state)
{
	struct config *c;
	char line[256];
	FILE *w = tmpfile();
	int lines = 0;

	(void)state;
	assert_int_equal(parse(&c, "-o", "x86strictmsr=false", "-o",
			       "x86.strictmsr=false", "-o", "dir=/vms", "-o",
			       "lpc.com1.path=%(dir)/c1", "-s", "0,hostbridge",
			       "-l", "com2,stdio", "-c", "2", "vm", NULL),
			 OPT_RUN);
	/* Unknown, but a variable: dir is named by %(dir), so no warning. */
	assert_int_equal(bhyve_check_config(c, w, err, sizeof(err)), 0);
	rewind(w);
	while (fgets(line, sizeof(line), w)) {
		lines++;
		assert_non_null(strstr(line, "'x86strictmsr'"));
	}
	assert_int_equal(lines, 1);
	fclose(w);
	config_free(c);
}

/* -w, -x, -a, -S, -C into the settings bhyverun applies. */
static void
test_cpu_and_memory_options(void **state)
{
	struct config *c;
	struct bhyve_settings s;

	(void)state;
	/* Unset: #GP on unknown MSRs, CPUID as KVM has it, memory as is. */
	assert_int_equal(parse(&c, "vm", NULL), OPT_RUN);
	assert_int_equal(bhyve_settings(c, &s, err, sizeof(err)), 0);
	assert_true(s.strictmsr);
	assert_int_equal(s.apic_mode, VM_APIC_DEFAULT);
	assert_false(s.wired);
	assert_false(s.guest_in_core);
	config_free(c);

	assert_int_equal(parse(&c, "-w", "-x", "-S", "-C", "vm", NULL),
			 OPT_RUN);
	assert_string_equal(config_get(c, "x86.strictmsr"), "false");
	assert_int_equal(bhyve_settings(c, &s, err, sizeof(err)), 0);
	assert_false(s.strictmsr);
	assert_int_equal(s.apic_mode, VM_APIC_X2APIC);
	assert_true(s.wired);
	assert_true(s.guest_in_core);
	config_free(c);

	/* -a and -x set one key: the last one counts, as in bhyve. */
	assert_int_equal(parse(&c, "-x", "-a", "vm", NULL), OPT_RUN);
	assert_int_equal(bhyve_settings(c, &s, err, sizeof(err)), 0);
	assert_int_equal(s.apic_mode, VM_APIC_XAPIC);
	config_free(c);
	assert_int_equal(parse(&c, "-o", "x86.x2apic=on", "-o",
			       "memory.wired=yes", "vm", NULL),
			 OPT_RUN);
	assert_int_equal(bhyve_settings(c, &s, err, sizeof(err)), 0);
	assert_int_equal(s.apic_mode, VM_APIC_X2APIC);
	assert_true(s.wired);
	config_free(c);

	/* A misspelt value is an error naming the key, not a default. */
	assert_int_equal(parse(&c, "-o", "x86.x2apic=ture", "vm", NULL),
			 OPT_RUN);
	assert_int_equal(bhyve_check_config(c, stderr, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "x86.x2apic"));
	config_free(c);
}

/* The lines bhyve_warn_inert prints for this command line. */
static int
inert_lines(char *out, size_t len, ...)
{
	char *argv[16] = {"bhyve"}, line[256];
	int argc = 1, n = 0;
	const char *a;
	struct config *c = config_create();
	FILE *devnull = fopen("/dev/null", "w"), *w = tmpfile();
	va_list ap;

	va_start(ap, len);
	while ((a = va_arg(ap, const char *)) && argc < 15)
		argv[argc++] = (char *)a;
	va_end(ap);
	bhyve_set_defaults(c);
	assert_int_equal(
	    bhyve_parse_args(argc, argv, c, devnull, err, sizeof(err)),
	    OPT_RUN);
	bhyve_warn_inert(c, w);
	rewind(w);
	out[0] = '\0';
	while (fgets(line, sizeof(line), w)) {
		n++;
		strncat(out, line, len - strlen(out) - 1);
	}
	fclose(w);
	fclose(devnull);
	config_free(c);
	return n;
}

/*
 * -H and -P are what KVM does anyway (the Handbook's and vmrun.sh's
 * command lines pass them): silent. What KVM cannot do says so once.
 */
static void
test_inert_options_warn(void **state)
{
	char out[1024];

	(void)state;
	assert_int_equal(
	    inert_lines(out, sizeof(out), "-A", "-H", "-P", "vm", NULL), 0);
	assert_int_equal(inert_lines(out, sizeof(out), "-o",
				     "x86.vmexit_on_hlt=false", "vm", NULL),
			 1);
	assert_non_null(strstr(out, "x86.vmexit_on_hlt=false is ignored"));
	assert_int_equal(inert_lines(out, sizeof(out), "-o",
				     "x86.vmexit_on_pause=off", "vm", NULL),
			 1);
	assert_non_null(strstr(out, "x86.vmexit_on_pause=false is ignored"));
	assert_int_equal(inert_lines(out, sizeof(out), "-K", "de", "vm", NULL),
			 1);
	assert_non_null(strstr(out, "-K de (keyboard.layout) is ignored"));
}

static void
test_dump_roundtrip(void **state)
{
	struct config *c = config_create(), *d = config_create();
	char path[] = "/tmp/test_config_XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	(void)state;
	config_set(c, "memory.size", "512M", err, sizeof(err));
	config_set(c, "pci.0.1.0.device", "lpc", err, sizeof(err));
	config_set(c, "lpc.com1.path", "stdio", err, sizeof(err));
	config_dump(c, f);
	fclose(f);
	assert_int_equal(config_load_file(d, path, err, sizeof(err)), 0);
	assert_string_equal(config_get(d, "memory.size"), "512M");
	assert_string_equal(config_get(d, "lpc.com1.path"), "stdio");
	assert_string_equal(config_get(d, "pci.0.1.0.device"), "lpc");
	unlink(path);
	config_free(c);
	config_free(d);
}

static void
test_load_file_errors(void **state)
{
	struct config *c = config_create();
	char path[] = "/tmp/test_config_XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	assert_int_equal(write(fd, "# comment\n\na=1\nbroken line\n", 27), 27);
	close(fd);
	assert_int_equal(config_load_file(c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":4:"));
	assert_string_equal(config_get(c, "a"), "1");
	unlink(path);
	assert_int_equal(
	    config_load_file(c, "/nonexistent/x", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/x"));
	config_free(c);
}

static void
test_memsize(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(parse_memsize("512M", &v), 0);
	assert_int_equal(v, 512ULL << 20);
	assert_int_equal(parse_memsize("2G", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(parse_memsize("5g", &v), 0);
	assert_int_equal(v, 5ULL << 30);
	assert_int_equal(parse_memsize("1024", &v), 0);
	assert_int_equal(v, 1024ULL << 20);
	assert_int_equal(parse_memsize("65536k", &v), 0);
	assert_int_equal(v, 64ULL << 20);
	assert_int_equal(parse_memsize("1T", &v), 0);
	assert_int_equal(v, 1ULL << 40);
	assert_int_equal(parse_memsize("12Q", &v), -1);
	assert_int_equal(parse_memsize("", &v), -1);
	assert_int_equal(parse_memsize("-1G", &v), -1);
	assert_int_equal(parse_memsize("G", &v), -1);
	assert_int_equal(parse_memsize("99999999999999999999", &v), -1);
	assert_int_equal(parse_memsize("20000000000T", &v), -1);
	assert_int_equal(parse_memsize("1GX", &v), -1);
}

/* Parse a command line; returns the result and leaves the tree in *out. */
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
	bhyve_set_defaults(*out);
	err[0] = '\0';
	r = bhyve_parse_args(argc, argv, *out, devnull, err, sizeof(err));
	fclose(devnull);
	return r;
}

/* bhyve(8) -G [w][address:]port into gdb.wait, gdb.address, gdb.port. */
static void
test_gdb_option(void **state)
{
	struct config *c;

	(void)state;
	assert_int_equal(parse(&c, "-G", "1234", "vm", NULL), OPT_RUN);
	assert_string_equal(config_get(c, "gdb.port"), "1234");
	assert_null(config_get(c, "gdb.address"));
	assert_false(config_get_bool(c, "gdb.wait", false));
	config_free(c);
	assert_int_equal(parse(&c, "-G", "w0.0.0.0:99", "vm", NULL), OPT_RUN);
	assert_string_equal(config_get(c, "gdb.port"), "99");
	assert_string_equal(config_get(c, "gdb.address"), "0.0.0.0");
	assert_true(config_get_bool(c, "gdb.wait", false));
	config_free(c);
	/* An IPv6 address: the port follows the last ':'. */
	assert_int_equal(parse(&c, "-G", "::1:5000", "vm", NULL), OPT_RUN);
	assert_string_equal(config_get(c, "gdb.address"), "::1");
	assert_string_equal(config_get(c, "gdb.port"), "5000");
	config_free(c);
}

static void
test_handbook_command_line(void **state)
{
	struct config *c;
	struct bhyve_settings s;

	(void)state;
	assert_int_equal(parse(&c, "-A", "-H", "-P", "-s", "0:0,hostbridge",
			       "-s", "1:0,lpc", "-l", "com1,stdio", "-c", "4",
			       "-m", "1024M", "vm0", NULL),
			 OPT_RUN);
	assert_string_equal(config_get(c, "pci.0.0.0.device"), "hostbridge");
	assert_string_equal(config_get(c, "pci.0.1.0.device"), "lpc");
	assert_string_equal(config_get(c, "lpc.com1.path"), "stdio");
	assert_string_equal(config_get(c, "name"), "vm0");
	assert_null(config_get(c, "acpi_tables")); /* -A: always built */
	assert_true(config_get_bool(c, "x86.vmexit_on_hlt", false));
	assert_int_equal(bhyve_settings(c, &s, err, sizeof(err)), 0);
	assert_int_equal(s.cpus, 4);
	assert_int_equal(s.sockets, 4);
	assert_int_equal(s.memsize, 1024ULL << 20);
	config_free(c);
}

static void
test_topology(void **state)
{
	struct config *c;
	struct bhyve_settings s;

	(void)state;
	parse(&c, "-c", "cpus=4,sockets=1,cores=2,threads=2", "vm", NULL);
	assert_int_equal(bhyve_settings(c, &s, err, sizeof(err)), 0);
	assert_int_equal(s.cpus, 4);
	assert_int_equal(s.cores, 2);
	assert_int_equal(s.threads, 2);
	config_free(c);
	parse(&c, "-c", "sockets=2,cores=3", "vm", NULL);
	assert_int_equal(bhyve_settings(c, &s, err, sizeof(err)), 0);
	assert_int_equal(s.cpus, 6);
	config_free(c);
	parse(&c, "-c", "cpus=5,sockets=2,cores=2", "vm", NULL);
	assert_int_equal(bhyve_settings(c, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "5 CPUs"));
	config_free(c);
	assert_int_equal(parse(&c, "-c", "0", "vm", NULL), OPT_ERROR);
	config_free(c);
	assert_int_equal(parse(&c, "-c", "cpus=x", "vm", NULL), OPT_ERROR);
	assert_non_null(strstr(err, "cpus"));
	config_free(c);
	assert_int_equal(parse(&c, "-c", "sockets=2,bogus=1", "vm", NULL),
			 OPT_ERROR);
	assert_non_null(strstr(err, "bogus"));
	config_free(c);
	assert_int_equal(parse(&c, "-c", "1000", "vm", NULL), OPT_ERROR);
	config_free(c);
}

static void
test_bad_command_lines(void **state)
{
	struct config *c;
	struct bhyve_settings s;

	(void)state;
	assert_int_equal(parse(&c, "-s", "3:0,nosuch", "vm", NULL), OPT_ERROR);
	assert_non_null(strstr(err, "nosuch"));
	config_free(c);
	assert_int_equal(parse(&c, "-s", "3:0,hostbridge", "-s",
			       "3:0,hostbridge", "vm", NULL),
			 OPT_ERROR);
	assert_non_null(strstr(err, "already in use"));
	config_free(c);
	assert_int_equal(parse(&c, "-s", "32,hostbridge", "vm", NULL),
			 OPT_ERROR);
	assert_non_null(strstr(err, "bad slot"));
	config_free(c);
	assert_int_equal(parse(&c, "-s", "hostbridge", "vm", NULL), OPT_ERROR);
	config_free(c);
	assert_int_equal(parse(&c, "-l", "com9,stdio", "vm", NULL), OPT_ERROR);
	assert_non_null(strstr(err, "com9"));
	config_free(c);
	assert_int_equal(parse(&c, "-o", "foo", "vm", NULL), OPT_ERROR);
	assert_non_null(strstr(err, "foo"));
	config_free(c);
	assert_int_equal(parse(&c, "-Z", "vm", NULL), OPT_ERROR);
	assert_non_null(strstr(err, "-Z"));
	config_free(c);
	assert_int_equal(parse(&c, "-m", NULL), OPT_ERROR);
	assert_non_null(strstr(err, "-m"));
	config_free(c);
	assert_int_equal(parse(&c, "vm1", "vm2", NULL), OPT_ERROR);
	config_free(c);
	/* Caught when the settings are checked. */
	parse(&c, "-m", "12Q", "vm", NULL);
	assert_int_equal(bhyve_settings(c, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "12Q"));
	config_free(c);
	parse(&c, "-m", "100K", "vm", NULL);
	assert_int_equal(bhyve_settings(c, &s, err, sizeof(err)), -1);
	config_free(c);
	parse(&c, "-m", "1G", NULL);
	assert_int_equal(bhyve_settings(c, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "name"));
	config_free(c);
	parse(&c, "../etc", NULL);
	assert_int_equal(bhyve_settings(c, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad VM name"));
	config_free(c);
}

static void
test_o_and_k_agree(void **state)
{
	struct config *a, *b;
	char path[] = "/tmp/test_config_XXXXXX";
	int fd = mkstemp(path);
	const char *text = "memory.size=2G\nname=vmk\n";

	(void)state;
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	parse(&a, "-o", "memory.size=2G", "-o", "name=vmk", NULL);
	parse(&b, "-k", path, NULL);
	assert_string_equal(config_get(a, "memory.size"),
			    config_get(b, "memory.size"));
	assert_string_equal(config_get(a, "name"), config_get(b, "name"));
	unlink(path);
	config_free(a);
	config_free(b);
}

static void
test_help_listings(void **state)
{
	struct config *c;

	(void)state;
	assert_int_equal(parse(&c, "-s", "help", NULL), OPT_EXIT);
	config_free(c);
	assert_int_equal(parse(&c, "-l", "help", NULL), OPT_EXIT);
	config_free(c);
	assert_int_equal(parse(&c, "-h", NULL), OPT_EXIT);
	config_free(c);
}

static void
test_cpuset(void **state)
{
	cpu_set_t set;
	struct config *c;
	struct bhyve_settings s;

	(void)state;
	assert_int_equal(parse_cpuset("0,2-3", 8, &set, err, sizeof(err)), 0);
	assert_int_equal(CPU_COUNT(&set), 3);
	assert_true(CPU_ISSET(0, &set) && CPU_ISSET(2, &set) &&
		    CPU_ISSET(3, &set));
	assert_int_equal(parse_cpuset("7", 8, &set, err, sizeof(err)), 0);
	assert_true(CPU_ISSET(7, &set));
	assert_int_equal(parse_cpuset("8", 8, &set, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "host CPU 8 does not exist"));
	for (const char **b = (const char *[]){"", "x", "1,", "3-1", "-1", "1-",
					       "1;2", "99999999999", NULL};
	     *b; b++) {
		assert_int_equal(parse_cpuset(*b, 8, &set, err, sizeof(err)),
				 -1);
		assert_non_null(strstr(err, "CPU"));
	}
	/* -p adds CPUs to a vCPU's set; bhyve_settings checks them. */
	parse(&c, "-c", "2", "-p", "1:0", "-p", "1:1", "vm", NULL);
	assert_string_equal(config_get(c, "vcpu.1.cpuset"), "0,1");
	assert_int_equal(bhyve_settings(c, &s, err, sizeof(err)), 0);
	assert_false(s.pinned[0]);
	assert_true(s.pinned[1]);
	assert_int_equal(CPU_COUNT(&s.cpuset[1]), 2);
	config_free(c);
	assert_int_equal(parse(&c, "-c", "2", "-p", "0:1000", "vm", NULL),
			 OPT_RUN);
	assert_int_equal(bhyve_settings(c, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "vcpu.0.cpuset: host CPU 1000"));
	config_free(c);
	assert_int_equal(parse(&c, "-p", "0", "vm", NULL), OPT_ERROR);
	assert_non_null(strstr(err, "vcpu:hostcpu"));
	config_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_set_get),
	    cmocka_unit_test(test_leaf_and_group_conflict),
	    cmocka_unit_test(test_bad_keys),
	    cmocka_unit_test(test_bool_and_expand),
	    cmocka_unit_test(test_dump_roundtrip),
	    cmocka_unit_test(test_load_file_errors),
	    cmocka_unit_test(test_memsize),
	    cmocka_unit_test(test_handbook_command_line),
	    cmocka_unit_test(test_gdb_option),
	    cmocka_unit_test(test_topology),
	    cmocka_unit_test(test_cpuset),
	    cmocka_unit_test(test_bad_command_lines),
	    cmocka_unit_test(test_o_and_k_agree),
	    cmocka_unit_test(test_help_listings),
	    cmocka_unit_test(test_values_stay),
	    cmocka_unit_test(test_name_by_reference),
	    cmocka_unit_test(test_expansion_bounded),
	    cmocka_unit_test(test_bad_bool_and_ref),
	    cmocka_unit_test(test_unknown_top_key),
	    cmocka_unit_test(test_cpu_and_memory_options),
	    cmocka_unit_test(test_inert_options_warn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
