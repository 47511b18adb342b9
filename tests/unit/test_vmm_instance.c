/*
 * VM instances (src/kmod/vmm_instance.c) against a hostile local user,
 * without /dev/kvm (the store backend, what the loaders and bhyvectl use):
 *   - the instance directory is made 0700 and refused, with one line saying
 *     why, when it is a link, not a directory, another user's, or writable
 *     by group or others; per-user defaults (/tmp/vmm-UID) included;
 *   - an instance or instance file planted as a link is refused, never
 *     followed, and --destroy removes links without touching their targets;
 *   - --destroy kills the process holding the instance's lock, never the
 *     pid written in the lock file;
 *   - the boot state is good for one run: a rerun without a loader, after
 *     a clean end or a SIGKILL, is refused.
 * Each case plants its own files under a fresh directory and checks that
 * a "victim" directory beside it is left exactly as it was.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm.h"

#define NOBODY 65534

struct env {
	char top[64];	  /* everything this case makes */
	char vmm[128];	  /* BHYVE_VMM_DIR */
	char victim[128]; /* what a planted link points at */
};

static void
path(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < len);
}

static void
write_file(const char *p, const char *text)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static bool
file_is(const char *p, const char *text)
{
	char buf[64] = "";
	int fd = open(p, O_RDONLY | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n >= 0 && !strcmp(buf, text);
}

static bool
is_link(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0 && S_ISLNK(st.st_mode);
}

static bool
exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

static bool
says(const char *what)
{
	if (strstr(vm_strerror(), what))
		return true;
	fprintf(stderr, "# expected '%s' in: %s\n", what, vm_strerror());
	return false;
}

/*
 * The victim: victim/keep ("precious") and victim/vm0/mem ("guest"), and
 * nothing else.
 */
static void
victim_check(const struct env *e)
{
	char p[256];
	int n = 0;
	struct dirent *d;
	DIR *dir = opendir(e->victim);

	assert_non_null(dir);
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	assert_int_equal(n, 2);
	path(p, sizeof(p), "%s/keep", e->victim);
	assert_true(file_is(p, "precious"));
	path(p, sizeof(p), "%s/vm0/mem", e->victim);
	assert_true(file_is(p, "guest"));
	path(p, sizeof(p), "%s/vm0", e->victim);
	dir = opendir(p);
	assert_non_null(dir);
	n = 0;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	assert_int_equal(n, 1);
}

static int
setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char p[256];

	assert_non_null(e);
	snprintf(e->top, sizeof(e->top), "/tmp/test_vmm_instance.XXXXXX");
	assert_non_null(mkdtemp(e->top));
	path(e->vmm, sizeof(e->vmm), "%s/vmm", e->top);
	path(e->victim, sizeof(e->victim), "%s/victim", e->top);
	assert_int_equal(mkdir(e->victim, 0755), 0);
	path(p, sizeof(p), "%s/keep", e->victim);
	write_file(p, "precious");
	path(p, sizeof(p), "%s/vm0", e->victim);
	assert_int_equal(mkdir(p, 0755), 0);
	path(p, sizeof(p), "%s/vm0/mem", e->victim);
	write_file(p, "guest");
	setenv("BHYVE_VMM_DIR", e->vmm, 1);
	*state = e;
	return 0;
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p) < 0 ? -1 : 0;
}

static int
teardown(void **state)
{
	struct env *e = *state;

	unsetenv("BHYVE_VMM_DIR");
	nftw(e->top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(e);
	return 0;
}

/* A fresh directory and instance are 0700; destroy removes the instance. */
static void
test_made_private(void **state)
{
	struct env *e = *state;
	struct vmctx *ctx;
	struct stat st;
	char p[256];

	ctx = vm_create("vm0", VMM_BACKEND_STORE);
	assert_non_null(ctx);
	assert_int_equal(vm_claim(ctx), 0);
	assert_int_equal(vm_setup_memory(ctx, 1 << 20), 0);
	vm_close(ctx);
	assert_int_equal(stat(e->vmm, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	path(p, sizeof(p), "%s/vm0", e->vmm);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	path(p, sizeof(p), "%s/vm0/mem", e->vmm);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true(vm_instance_exists("vm0"));
	assert_int_equal(vm_destroy_instance("vm0"), 0);
	assert_false(vm_instance_exists("vm0"));
	path(p, sizeof(p), "%s/vm0", e->vmm);
	assert_false(exists(p));
}

/* Every entry point refuses the directory, and the victim is untouched. */
static void
refused_everywhere(const struct env *e, const char *why)
{
	assert_null(vm_create("vm0", VMM_BACKEND_STORE));
	assert_true(says(why));
	assert_true(says("refusing"));
	assert_null(strchr(vm_strerror(), '\n'));
	assert_null(vm_open("vm0", VMM_BACKEND_STORE));
	assert_true(says(why));
	assert_int_equal(vm_destroy_instance("vm0"), -1);
	assert_true(says(why));
	assert_int_equal(vm_list(NULL, NULL), -1);
	assert_true(says(why));
	assert_false(vm_instance_exists("vm0"));
	victim_check(e);
}

static void
test_dir_symlink(void **state)
{
	struct env *e = *state;

	assert_int_equal(symlink(e->victim, e->vmm), 0);
	refused_everywhere(e, "is a symbolic link");
	assert_true(is_link(e->vmm));
	/* "dir/" must not sneak past O_NOFOLLOW. */
	char slash[160];
	path(slash, sizeof(slash), "%s//", e->vmm);
	setenv("BHYVE_VMM_DIR", slash, 1);
	refused_everywhere(e, "is a symbolic link");
}

static void
test_dir_other_owner(void **state)
{
	struct env *e = *state;
	char p[256];

	if (geteuid() != 0) {
		/* Not root: / is another user's directory. */
		setenv("BHYVE_VMM_DIR", "/", 1);
		assert_null(vm_create("vm0", VMM_BACKEND_STORE));
		assert_true(says("belongs to uid 0, not to you"));
		assert_int_equal(vm_destroy_instance("vm0"), -1);
		assert_true(says("belongs to uid 0"));
		return;
	}
	/* The attacker's directory, with the victim's instance in it. */
	assert_int_equal(mkdir(e->vmm, 0700), 0);
	path(p, sizeof(p), "%s/vm0", e->vmm);
	assert_int_equal(symlink(e->victim, p), 0);
	assert_int_equal(lchown(p, NOBODY, NOBODY), 0);
	assert_int_equal(chown(e->vmm, NOBODY, NOBODY), 0);
	refused_everywhere(e, "belongs to uid 65534, not to you (uid 0)");
	assert_true(is_link(p));
}

static void
test_dir_group_writable(void **state)
{
	struct env *e = *state;

	assert_int_equal(mkdir(e->vmm, 0700), 0);
	assert_int_equal(chmod(e->vmm, 0770), 0);
	refused_everywhere(e, "is writable by its group (mode 770)");
}

static void
test_dir_world_writable(void **state)
{
	struct env *e = *state;

	assert_int_equal(mkdir(e->vmm, 0700), 0);
	/* Sticky, as /tmp is: still not a place for one user's VMs. */
	assert_int_equal(chmod(e->vmm, 01777), 0);
	refused_everywhere(e, "is writable by everyone (mode 1777)");
}

static void
test_dir_not_a_directory(void **state)
{
	struct env *e = *state;

	write_file(e->vmm, "junk");
	assert_null(vm_create("vm0", VMM_BACKEND_STORE));
	assert_true(says("is not a directory"));
	assert_true(file_is(e->vmm, "junk"));
	victim_check(e);
}

/* An instance planted as a link to someone's directory. */
static void
test_instance_symlink(void **state)
{
	struct env *e = *state;
	char p[256], t[256];

	assert_int_equal(mkdir(e->vmm, 0700), 0);
	path(p, sizeof(p), "%s/vm0", e->vmm);
	path(t, sizeof(t), "%s/vm0", e->victim);
	assert_int_equal(symlink(t, p), 0);
	assert_null(vm_create("vm0", VMM_BACKEND_STORE));
	assert_true(says("vm0 is a symbolic link: refusing"));
	assert_null(vm_open("vm0", VMM_BACKEND_STORE));
	assert_true(says("is a symbolic link"));
	assert_int_equal(vm_destroy_instance("vm0"), -1);
	assert_true(says("is a symbolic link"));
	assert_true(is_link(p));
	victim_check(e);
}

/* Instance files planted as links: refused, and destroy removes the links. */
static void
test_instance_file_symlinks(void **state)
{
	struct env *e = *state;
	static const char *const files[] = {"lock", "info", "mem", "boot"};
	struct vm_boot_state bs;
	struct vmctx *ctx;
	char p[256], t[256];

	ctx = vm_create("vm0", VMM_BACKEND_STORE);
	assert_non_null(ctx);
	path(t, sizeof(t), "%s/keep", e->victim);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		path(p, sizeof(p), "%s/vm0/%s", e->vmm, files[i]);
		assert_int_equal(symlink(t, p), 0);
	}
	assert_int_equal(vm_claim(ctx), -1);
	assert_true(says("vm0/lock is not a regular file"));
	assert_int_equal(vm_setup_memory(ctx, 1 << 20), -1);
	assert_true(says("vm0/info is not a regular file"));
	assert_int_equal(vm_get_boot_state(ctx, &bs), -1);
	assert_true(says("vm0/boot is not a regular file"));
	assert_int_equal(vm_take_boot_state(ctx, &bs), -1);
	path(p, sizeof(p), "%s/vm0/info", e->vmm);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(vm_setup_memory(ctx, 1 << 20), -1);
	assert_true(says("vm0/mem is not a regular file"));
	vm_close(ctx);
	assert_int_equal(vm_destroy_instance("vm0"), 0);
	path(p, sizeof(p), "%s/vm0", e->vmm);
	assert_false(exists(p));
	victim_check(e);
}

/* A FIFO planted as a file is refused at once, not waited on. */
static void
test_instance_fifo(void **state)
{
	struct env *e = *state;
	struct vm_boot_state bs;
	struct vmctx *ctx;
	char p[256];

	ctx = vm_create("vm0", VMM_BACKEND_STORE);
	assert_non_null(ctx);
	path(p, sizeof(p), "%s/vm0/boot", e->vmm);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(vm_get_boot_state(ctx, &bs), -1);
	assert_true(says("vm0/boot is not a regular file"));
	vm_close(ctx);
	assert_int_equal(vm_destroy_instance("vm0"), 0);
}

/*
 * The per-user default, /tmp/vmm-UID, as user nobody, in a private mount
 * namespace with its own /tmp: another user (uid 1) got there first, with
 * a directory of its own (link false) or a link to a directory of nobody's
 * (link true), and nobody's loaders and bhyvectl refuse it. Exits 0 when
 * every check holds, else the number of the check that failed (100 and
 * up: the scene could not be set).
 */
static int
per_user_child(bool link)
{
	const char *why = link ? "/tmp/vmm-65534 is a symbolic link"
			       : "/tmp/vmm-65534 belongs to uid 1, not to you "
				 "(uid 65534)";
	struct stat st;
	struct vmctx *ctx;

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777") < 0)
		return 100;
	unsetenv("BHYVE_VMM_DIR");
	unsetenv("XDG_RUNTIME_DIR");
	/* Nobody's own directory, which the attacker would have us fill. */
	if (mkdir("/tmp/own", 0700) < 0 || chown("/tmp/own", NOBODY, NOBODY))
		return 101;
	if (link ? symlink("/tmp/own", "/tmp/vmm-65534") < 0 ||
		       lchown("/tmp/vmm-65534", 1, 1) < 0
		 : mkdir("/tmp/vmm-65534", 0700) < 0 ||
		       chown("/tmp/vmm-65534", 1, 1) < 0 ||
		       chmod("/tmp/vmm-65534", 0777) < 0)
		return 102;
	if (setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) < 0)
		return 103;
	if (strcmp(vm_instance_dir(), "/tmp/vmm-65534"))
		return 1;
	if (vm_create("vm0", VMM_BACKEND_STORE) || !strstr(vm_strerror(), why))
		return 2;
	if (vm_destroy_instance("vm0") == 0 || !strstr(vm_strerror(), why))
		return 3;
	if (vm_list(NULL, NULL) == 0 || !strstr(vm_strerror(), why))
		return 4;
	if (stat("/tmp/own/vm0", &st) == 0 ||
	    stat("/tmp/vmm-65534/vm0", &st) == 0)
		return 5;
	/* With no one in the way: made 0700, and used. */
	if (mkdir("/tmp/xdg", 0700) < 0)
		return 6;
	setenv("XDG_RUNTIME_DIR", "/tmp/xdg", 1);
	if (strcmp(vm_instance_dir(), "/tmp/xdg/vmm"))
		return 7;
	ctx = vm_create("vm0", VMM_BACKEND_STORE);
	if (!ctx)
		return 8;
	vm_close(ctx);
	if (stat("/tmp/xdg/vmm", &st) < 0 || (st.st_mode & 07777) != 0700)
		return 9;
	/* An older bhyve's 0755 per-user directory is tightened to 0700. */
	if (chmod("/tmp/xdg/vmm", 0755) < 0 || !vm_instance_exists("vm0") ||
	    stat("/tmp/xdg/vmm", &st) < 0 || (st.st_mode & 07777) != 0700)
		return 10;
	if (vm_destroy_instance("vm0") < 0 ||
	    stat("/tmp/xdg/vmm/vm0", &st) == 0)
		return 11;
	return 0;
}

static void
per_user_default(bool link)
{
	int status;
	pid_t pid;

	if (geteuid() != 0) {
		/* No second user to be: the default's name, and that is all. */
		char want[64];

		unsetenv("BHYVE_VMM_DIR");
		unsetenv("XDG_RUNTIME_DIR");
		snprintf(want, sizeof(want), "/tmp/vmm-%u",
			 (unsigned)geteuid());
		assert_string_equal(vm_instance_dir(), want);
		return;
	}
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(per_user_child(link));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) >= 100)
		fprintf(stderr,
			"# cannot set the scene as root (%d): no "
			"private mount namespace here?\n",
			WEXITSTATUS(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_per_user_taken(void **state)
{
	(void)state;
	per_user_default(false);
}

static void
test_per_user_symlink(void **state)
{
	(void)state;
	per_user_default(true);
}

/* A child that holds vm0's lock until killed; returns its pid. */
static pid_t
spawn_holder(void)
{
	int pfd[2];
	char c;
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct vmctx *ctx = vm_open("vm0", VMM_BACKEND_STORE);

		close(pfd[0]);
		if (!ctx || vm_claim(ctx) < 0)
			_exit(1);
		if (write(pfd[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	return pid;
}

/* A bystander process that anyone with the lock file would like killed. */
static pid_t
spawn_bystander(void)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

static void
plant_pid(const struct env *e, pid_t pid)
{
	char p[256], text[32];

	path(p, sizeof(p), "%s/vm0/lock", e->vmm);
	snprintf(text, sizeof(text), "%d\n", (int)pid);
	write_file(p, text);
}

static void
list_cb(const char *name, bool running, void *arg)
{
	if (!strcmp(name, "vm0"))
		*(int *)arg = running ? 2 : 1;
}

static void
test_destroy_kills_lock_holder(void **state)
{
	struct env *e = *state;
	struct vmctx *ctx;
	pid_t holder, bystander;
	int status, seen = 0;

	ctx = vm_create("vm0", VMM_BACKEND_STORE);
	assert_non_null(ctx);
	vm_close(ctx);
	holder = spawn_holder();
	bystander = spawn_bystander();
	plant_pid(e, bystander);
	/* Busy for anyone else, and listed as running. */
	ctx = vm_open("vm0", VMM_BACKEND_STORE);
	assert_non_null(ctx);
	assert_int_equal(vm_claim(ctx), -1);
	assert_int_equal(errno, EBUSY);
	vm_close(ctx);
	assert_int_equal(vm_list(list_cb, &seen), 0);
	assert_int_equal(seen, 2);

	assert_int_equal(vm_destroy_instance("vm0"), 0);
	assert_int_equal(waitpid(holder, &status, 0), holder);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_int_equal(waitpid(bystander, &status, WNOHANG), 0);
	assert_int_equal(kill(bystander, SIGKILL), 0);
	assert_int_equal(waitpid(bystander, &status, 0), bystander);
	assert_false(vm_instance_exists("vm0"));
}

/* No holder: nothing is killed, whatever the lock file says. */
static void
test_destroy_ignores_pid_in_file(void **state)
{
	struct env *e = *state;
	struct vmctx *ctx;
	pid_t bystander;
	int status, seen = 0;

	ctx = vm_create("vm0", VMM_BACKEND_STORE);
	assert_non_null(ctx);
	assert_int_equal(vm_claim(ctx), 0);
	vm_close(ctx);
	bystander = spawn_bystander();
	plant_pid(e, bystander);
	assert_int_equal(vm_list(list_cb, &seen), 0);
	assert_int_equal(seen, 1);
	assert_int_equal(vm_destroy_instance("vm0"), 0);
	assert_int_equal(waitpid(bystander, &status, WNOHANG), 0);
	assert_int_equal(kill(bystander, SIGKILL), 0);
	assert_int_equal(waitpid(bystander, &status, 0), bystander);
}

static void
load(struct vmctx *ctx, uint64_t rip)
{
	struct vm_boot_state bs;

	vm_reset_state(&bs);
	bs.regs[VM_REG_GUEST_RIP] = rip;
	assert_int_equal(vm_set_boot_state(ctx, &bs), 0);
}

static void
test_boot_state_one_run(void **state)
{
	struct vm_boot_state bs;
	struct vmctx *ctx;
	int status;
	pid_t pid;

	(void)state;
	ctx = vm_create("vm0", VMM_BACKEND_STORE);
	assert_non_null(ctx);
	assert_int_equal(vm_take_boot_state(ctx, &bs), -1);
	assert_true(says("VM 'vm0' has nothing to boot"));

	load(ctx, 0x1234);
	assert_int_equal(vm_take_boot_state(ctx, &bs), 0);
	assert_true(bs.valid);
	assert_int_equal(bs.regs[VM_REG_GUEST_RIP], 0x1234);
	/* The run ended (cleanly or not): a rerun is refused. */
	assert_int_equal(vm_take_boot_state(ctx, &bs), -1);
	assert_int_equal(errno, ESTALE);
	assert_true(says("VM vm0's boot state is from a run that ended: run "
			 "grub-bhyve (or rawload) again"));
	/* A loader ran since: good for one more run. */
	load(ctx, 0x5678);
	assert_int_equal(vm_take_boot_state(ctx, &bs), 0);
	assert_int_equal(bs.regs[VM_REG_GUEST_RIP], 0x5678);

	/* A bhyve killed while it runs leaves no usable state either. */
	load(ctx, 0x9abc);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct vmctx *c = vm_open("vm0", VMM_BACKEND_STORE);

		if (c && vm_claim(c) == 0 && vm_take_boot_state(c, &bs) == 0)
			raise(SIGKILL);
		_exit(1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(vm_take_boot_state(ctx, &bs), -1);
	assert_true(says("from a run that ended"));
	/* A loader's reset starts the instance clean. */
	assert_int_equal(vm_reset_instance(ctx), 0);
	assert_int_equal(vm_take_boot_state(ctx, &bs), -1);
	assert_true(says("nothing to boot"));
	vm_close(ctx);
	assert_int_equal(vm_destroy_instance("vm0"), 0);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_made_private),
	    T(test_dir_symlink),
	    T(test_dir_other_owner),
	    T(test_dir_group_writable),
	    T(test_dir_world_writable),
	    T(test_dir_not_a_directory),
	    T(test_instance_symlink),
	    T(test_instance_file_symlinks),
	    T(test_instance_fifo),
	    T(test_per_user_taken),
	    T(test_per_user_symlink),
	    T(test_destroy_kills_lock_holder),
	    T(test_destroy_ignores_pid_in_file),
	    T(test_boot_state_one_run),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
