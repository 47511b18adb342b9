/*
 * Guest memory as bhyve -S and -C leave it: wired (mlock, with
 * RLIMIT_MEMLOCK named when it is in the way), and left out of core dumps
 * (MADV_DONTDUMP) unless -C, which also has shared file mappings dumped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm.h"

#define MEM (1ULL << 20)

/* The VmFlags line of the mapping that holds p, from /proc/self/smaps. */
static bool
vmflags(const void *p, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false, found = false;

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out, len, "%s", line + 8);
			found = true;
		}
	}
	fclose(f);
	return found;
}

static bool
has_flag(const char *flags, const char *f)
{
	char pad[512];

	snprintf(pad, sizeof(pad), " %s", flags);
	for (char *p = pad; (p = strstr(p, f)); p++)
		if (p[-1] == ' ' && (p[2] == ' ' || p[2] == '\n'))
			return true;
	return false;
}

static void
test_dontdump_unless_in_core(void **state)
{
	struct vmctx *ctx = vm_create_mock(MEM);
	void *mem = vm_map_gpa(ctx, 0, 1);
	char flags[512];

	(void)state;
	assert_int_equal(vm_dump_memory(ctx, false), 0);
	assert_true(vmflags(mem, flags, sizeof(flags)));
	assert_true(has_flag(flags, "dd"));
	assert_int_equal(vm_dump_memory(ctx, true), 0);
	assert_true(vmflags(mem, flags, sizeof(flags)));
	assert_false(has_flag(flags, "dd"));
	vm_close(ctx);
}

/* An instance's memory is a shared file mapping: -C sets filter bit 3. */
static void
test_in_core_dumps_the_instance_file(void **state)
{
	char dir[] = "/tmp/test_vmm_mem_XXXXXX", cmd[64];
	struct vmctx *ctx;
	unsigned long filter = 0;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	setenv("BHYVE_VMM_DIR", dir, 1);
	ctx = vm_create("memtest", VMM_BACKEND_STORE);
	assert_non_null(ctx);
	assert_int_equal(vm_setup_memory(ctx, MEM), 0);
	assert_int_equal(vm_dump_memory(ctx, true), 0);
	f = fopen("/proc/self/coredump_filter", "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%lx", &filter), 1);
	fclose(f);
	assert_true(filter & 0x8); /* MMF_DUMP_MAPPED_SHARED, core(5) */
	vm_close(ctx);
	assert_int_equal(vm_destroy_instance("memtest"), 0);
	unsetenv("BHYVE_VMM_DIR");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void
test_wire(void **state)
{
	struct vmctx *ctx = vm_create_mock(MEM);
	char flags[512];

	(void)state;
	assert_int_equal(vm_wire_memory(ctx), 0);
	assert_true(vmflags(vm_map_gpa(ctx, 0, 1), flags, sizeof(flags)));
	assert_true(has_flag(flags, "lo")); /* VM_LOCKED */
	vm_close(ctx);
}

/*
 * Over RLIMIT_MEMLOCK the error names the limit. Root's CAP_IPC_LOCK
 * ignores the limit, so a child drops to nobody first.
 */
static void
test_wire_over_rlimit(void **state)
{
	int fds[2], status;
	char msg[256] = {0};
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = {0, 0};
		struct vmctx *ctx;
		const char *e;
		int rc;

		close(fds[0]);
		if (geteuid() == 0 && setresuid(65534, 65534, 65534) != 0)
			_exit(2);
		ctx = vm_create_mock(MEM);
		if (!ctx || setrlimit(RLIMIT_MEMLOCK, &rl) != 0)
			_exit(3);
		rc = vm_wire_memory(ctx);
		e = vm_strerror();
		if (write(fds[1], e, strlen(e)) < 0)
			_exit(4);
		vm_close(ctx);
		_exit(rc == -1 ? 0 : 1);
	}
	close(fds[1]);
	assert_true(read(fds[0], msg, sizeof(msg) - 1) >= 0);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_non_null(strstr(msg, "cannot wire 1 MiB of guest memory"));
	assert_non_null(strstr(msg, "RLIMIT_MEMLOCK is 0 KiB"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dontdump_unless_in_core),
	    cmocka_unit_test(test_in_core_dumps_the_instance_file),
	    cmocka_unit_test(test_wire),
	    cmocka_unit_test(test_wire_over_rlimit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
