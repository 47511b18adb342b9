/*
 * VM instances: named directories that outlive the process that made them.
 *
 *   DIR/NAME/mem       guest memory (lowmem, then highmem), a sparse file
 *   DIR/NAME/info      the memory layout ("lowmem N\nhighmem N\n")
 *   DIR/NAME/boot      the boot vCPU's registers as a loader left them
 *   DIR/NAME/boot.ran  boot renamed by the bhyve that started running it
 *   DIR/NAME/lock      POSIX-locked (F_SETLK) by the process that runs or
 *                      loads the instance
 *
 * DIR is $BHYVE_VMM_DIR, else /dev/vmm for root, else $XDG_RUNTIME_DIR/vmm
 * (or /tmp/vmm-UID).
 *
 * Another local user must not be able to hijack a VM: /tmp/vmm-UID can be
 * made by anyone before its owner first runs bhyve. So DIR is created 0700,
 * opened without following a link, and refused (one line saying why) when it
 * is a link, is not a directory, belongs to another user, or is writable by
 * group or others; an instance directory is checked the same way. From there
 * on every file is reached relative to those checked directory descriptors
 * (openat, unlinkat, renameat, never a path), and opened O_NOFOLLOW: a link
 * planted in place of an instance or one of its files is refused, never
 * followed, and never removed through.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm_internal.h"

static __thread char vmm_errbuf[256];

void
vm_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vmm_errbuf, sizeof(vmm_errbuf), fmt, ap);
	va_end(ap);
}

const char *
vm_strerror(void)
{
	return vmm_errbuf[0] ? vmm_errbuf : strerror(errno);
}

/* The instance directory's path in buf; true for a per-user default. */
static bool
base_path(char *buf, size_t len)
{
	const char *env = getenv("BHYVE_VMM_DIR");
	const char *rt;
	bool peruser = false;
	size_t n;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
	} else if (geteuid() == 0) {
		snprintf(buf, len, "/dev/vmm");
	} else if ((rt = getenv("XDG_RUNTIME_DIR")) && *rt) {
		snprintf(buf, len, "%s/vmm", rt);
		peruser = true;
	} else {
		snprintf(buf, len, "/tmp/vmm-%u", (unsigned)geteuid());
		peruser = true;
	}
	/* "dir/" would make O_NOFOLLOW follow a link named dir. */
	n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	return peruser;
}

const char *
vm_instance_dir(void)
{
	static __thread char dir[512];

	base_path(dir, sizeof(dir));
	return dir;
}

bool
vm_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= sizeof(((struct vmctx *)0)->name) || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!(c == '-' || c == '_' || c == '.' || (c >= '0' && c <= '9') ||
		      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return false;
	}
	return true;
}

/* The parents of path, as mkdir -p makes them (DIR itself is not made). */
static int
mkdir_parents(const char *path)
{
	char tmp[512];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

#define UNSAFE "another user could take over your VMs there"

/*
 * Is the directory behind st (named what) safe to keep instances in? Ours,
 * and writable by nobody else; 0, or -1 with the reason set.
 */
static int
check_dir(const char *what, const struct stat *st)
{
	if (!S_ISDIR(st->st_mode)) {
		vm_set_error("%s is not a directory: remove it or set "
			     "BHYVE_VMM_DIR",
			     what);
		return -1;
	}
	if (st->st_uid != geteuid()) {
		vm_set_error("%s belongs to uid %u, not to you (uid %u): "
			     "refusing it, " UNSAFE " (remove it or set "
			     "BHYVE_VMM_DIR)",
			     what, (unsigned)st->st_uid, (unsigned)geteuid());
		return -1;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		vm_set_error(
		    "%s is writable by %s (mode %03o): refusing it, " UNSAFE
		    " (chmod 700 it)",
		    what, (st->st_mode & S_IWOTH) ? "everyone" : "its group",
		    (unsigned)(st->st_mode & 07777));
		return -1;
	}
	return 0;
}

/*
 * Open dirfd/name (dirfd may be AT_FDCWD and name a path) as a checked
 * directory, never following a link in its last component; what names it
 * in messages. The descriptor, or -1 with the reason set (errno ENOENT
 * when there is nothing there).
 */
static int
open_checked_dir(int dirfd, const char *name, const char *what)
{
	struct stat st;
	int fd, err;

	fd = openat(dirfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st.st_mode))
			vm_set_error(
			    "%s is a symbolic link: refusing to follow "
			    "it, " UNSAFE " (remove it or set "
			    "BHYVE_VMM_DIR)",
			    what);
		else if (err == ENOTDIR)
			vm_set_error("%s is not a directory: remove it or set "
				     "BHYVE_VMM_DIR",
				     what);
		else
			vm_set_error("%s: %s", what, strerror(err));
		errno = err == ENOENT ? ENOENT : EPERM;
		return -1;
	}
	if (fstat(fd, &st) < 0 || check_dir(what, &st) < 0) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/*
 * The instance directory, checked; created 0700 (with its parents) when
 * create is set. A per-user default made by an older bhyve (0755) is
 * tightened to 0700. The descriptor, or -1 with the reason set.
 */
static int
open_base(bool create)
{
	char path[512];
	bool peruser = base_path(path, sizeof(path));
	struct stat st;
	int fd;

	if (create && ((mkdir_parents(path) < 0) ||
		       (mkdir(path, 0700) < 0 && errno != EEXIST))) {
		vm_set_error("cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	fd = open_checked_dir(AT_FDCWD, path, path);
	if (fd >= 0 && peruser && fstat(fd, &st) == 0 && (st.st_mode & 077))
		(void)fchmod(fd, 0700);
	return fd;
}

/* The instance NAME in the checked base directory, checked too. */
static int
open_instance(int basefd, const char *name, bool create)
{
	char what[600];
	int fd;

	snprintf(what, sizeof(what), "%s/%s", vm_instance_dir(), name);
	if (create && mkdirat(basefd, name, 0700) < 0 && errno != EEXIST) {
		vm_set_error("cannot create %s: %s", what, strerror(errno));
		return -1;
	}
	fd = open_checked_dir(basefd, name, what);
	if (fd < 0 && errno == ENOENT)
		vm_set_error("no VM instance named '%s' in %s", name,
			     vm_instance_dir());
	return fd;
}

/*
 * One of an instance's files, never through a link and only if it is a
 * regular file (O_NONBLOCK: a FIFO planted there must not hang us before
 * fstat can refuse it). The descriptor, or -1 with the reason set.
 */
static int
inst_open(struct vmctx *ctx, const char *file, int flags, mode_t mode)
{
	struct stat st;
	int fd, err;

	fd = openat(ctx->dirfd, file,
		    flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		return fd;
	err = fd < 0 ? errno : EINVAL;
	if (fd >= 0)
		close(fd);
	if (err == ELOOP || err == EINVAL)
		vm_set_error("%s/%s/%s is not a regular file (a symbolic "
			     "link?): refusing it; bhyvectl --destroy --vm=%s "
			     "removes the instance",
			     vm_instance_dir(), ctx->name, file, ctx->name);
	else if (err != ENOENT)
		vm_set_error("%s/%s/%s: %s", vm_instance_dir(), ctx->name, file,
			     strerror(err));
	errno = err;
	return -1;
}

bool
vm_instance_exists(const char *name)
{
	struct stat st;
	int basefd = open_base(false);
	bool found;

	if (basefd < 0)
		return false;
	found = vm_name_valid(name) &&
		fstatat(basefd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	close(basefd);
	return found;
}

static int
remove_file(struct vmctx *ctx, const char *file)
{
	if (ctx->dirfd < 0)
		return 0;
	if (unlinkat(ctx->dirfd, file, 0) < 0 && errno != ENOENT) {
		vm_set_error("cannot remove %s/%s/%s: %s", vm_instance_dir(),
			     ctx->name, file, strerror(errno));
		return -1;
	}
	return 0;
}

int
vm_reset_instance(struct vmctx *ctx)
{
	static const char *const files[] = {"mem", "info", "boot", "boot.ran",
					    "boot.tmp"};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (remove_file(ctx, files[i]) < 0)
			return -1;
	return 0;
}

static const struct vmm_ops *
backend_ops(enum vmm_backend b)
{
	switch (b) {
	case VMM_BACKEND_KVM:
		return &vmm_kvm_ops;
	case VMM_BACKEND_MOCK:
		return &vmm_mock_ops;
	default:
		return &vmm_store_ops;
	}
}

static struct vmctx *
ctx_alloc(const char *name, enum vmm_backend backend)
{
	struct vmctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return NULL;
	snprintf(ctx->name, sizeof(ctx->name), "%s", name);
	ctx->kind = backend;
	ctx->ops = backend_ops(backend);
	ctx->dirfd = ctx->basefd = ctx->lockfd = ctx->memfd = -1;
	ctx->ncpus = 1;
	pthread_mutex_init(&ctx->lock, NULL);
	return ctx;
}

static bool
check_name(const char *name)
{
	if (vm_name_valid(name))
		return true;
	vm_set_error("bad VM name '%s': use letters, digits, '-', '_' and "
		     "'.' (at most 63)",
		     name);
	errno = EINVAL;
	return false;
}

static struct vmctx *
ctx_attach(const char *name, enum vmm_backend backend, bool create)
{
	struct vmctx *ctx;
	int basefd, fd;

	vmm_errbuf[0] = '\0';
	if (!check_name(name))
		return NULL;
	basefd = open_base(create);
	if (basefd < 0) {
		if (errno == ENOENT)
			vm_set_error("no VM instance named '%s' in %s", name,
				     vm_instance_dir());
		return NULL;
	}
	fd = open_instance(basefd, name, create);
	if (fd < 0) {
		close(basefd);
		return NULL;
	}
	ctx = ctx_alloc(name, backend);
	if (!ctx) {
		close(fd);
		close(basefd);
		return NULL;
	}
	ctx->dirfd = fd;
	ctx->basefd = basefd; /* vm_remove, without opening a path */
	if (ctx->ops->vm_init && ctx->ops->vm_init(ctx) < 0) {
		close(ctx->dirfd);
		close(ctx->basefd);
		free(ctx);
		return NULL;
	}
	return ctx;
}

struct vmctx *
vm_create(const char *name, enum vmm_backend backend)
{
	return ctx_attach(name, backend, true);
}

struct vmctx *
vm_open(const char *name, enum vmm_backend backend)
{
	return ctx_attach(name, backend, false);
}

struct vmctx *
vm_create_mock(uint64_t memsize)
{
	struct vmctx *ctx = ctx_alloc("mock", VMM_BACKEND_MOCK);

	if (!ctx)
		return NULL;
	if (ctx->ops->vm_init(ctx) < 0 || vm_setup_memory(ctx, memsize) < 0) {
		vm_close(ctx);
		return NULL;
	}
	return ctx;
}

const char *
vm_name(struct vmctx *ctx)
{
	return ctx->name;
}

void
vm_set_cookie(struct vmctx *ctx, void *cookie)
{
	ctx->cookie = cookie;
}

void *
vm_get_cookie(struct vmctx *ctx)
{
	return ctx->cookie;
}

/*
 * The lock: a classic POSIX record lock (F_SETLK on the whole file), chosen
 * for what a query of it returns. bhyvectl --destroy must find the process
 * that runs the instance, and the kernel is the only honest witness: a pid
 * written into the file is whatever anyone able to write the file chose.
 *   - F_GETLK reports the pid of the process holding a POSIX lock (as seen
 *     from the caller's pid namespace; 0 if it is not visible there).
 *   - F_OFD_GETLK reports l_pid = -1 for an OFD lock: no pid to be had.
 *   - flock() locks cannot be queried at all, only read from /proc/locks.
 * The cost of POSIX locks: a process drops its lock when it closes any
 * descriptor of the file, so nothing in a process that holds an instance's
 * lock opens that lock file again (lock_holder runs in bhyvectl, and in
 * bhyve only after vm_close). They are not inherited by fork, which is
 * what we want: a child never keeps an instance "running".
 */
int
vm_claim(struct vmctx *ctx)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int fd;

	if (ctx->dirfd < 0)
		return 0;
	fd = inst_open(ctx, "lock", O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		return -1;
	if (fcntl(fd, F_SETLK, &fl) < 0) {
		int err = errno;

		close(fd);
		if (err == EACCES || err == EAGAIN) {
			vm_set_error("VM '%s' is in use by another process",
				     ctx->name);
			err = EBUSY;
		}
		errno = err;
		return -1;
	}
	ctx->lockfd = fd;
	return 0;
}

/*
 * Who holds the lock of the instance behind dirfd: its pid, 0 if nobody,
 * -1 if someone does whose pid we cannot see (another pid namespace).
 */
static pid_t
lock_holder(int dirfd)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int fd = openat(dirfd, "lock",
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return 0;
	rc = fcntl(fd, F_GETLK, &fl);
	close(fd);
	if (rc < 0 || fl.l_type == F_UNLCK)
		return 0;
	return fl.l_pid > 0 ? fl.l_pid : -1;
}

static bool
instance_running(int dirfd)
{
	return lock_holder(dirfd) != 0;
}

/*
 * SIGKILL the lock's holder. Through a pidfd where the kernel has them:
 * once the pid is pinned, ask the lock again, so that a bhyve that exited
 * meanwhile (and a new process that got its pid) is never the one killed.
 */
static int
kill_holder(int dirfd, pid_t pid)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int rc = 0;

	if (pfd < 0)
		return errno == ESRCH ? 0 : kill(pid, SIGKILL);
	if (lock_holder(dirfd) == pid)
		rc = (int)syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
	close(pfd);
	return rc;
}

/* Remove the files of an instance directory; links are removed, not followed.
 */
static int
remove_tree_at(int dirfd)
{
	DIR *d;
	struct dirent *e;
	int fd = dup(dirfd), rc = 0;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(dirfd, e->d_name, 0) < 0 && errno != ENOENT)
			rc = -1;
	}
	closedir(d);
	return rc;
}

/* As on FreeBSD, destroying a running VM ends its bhyve. */
static int
stop_instance(const char *name, int fd)
{
	pid_t pid = lock_holder(fd);

	if (pid < 0) {
		vm_set_error("VM '%s' is running, but its process is not "
			     "visible here (another pid namespace): stop it "
			     "there",
			     name);
		return -1;
	}
	if (pid == 0)
		return 0;
	if (kill_holder(fd, pid) < 0) {
		vm_set_error("cannot stop VM '%s' (pid %d): %s", name, (int)pid,
			     strerror(errno));
		return -1;
	}
	for (int i = 0; i < 500 && instance_running(fd); i++)
		usleep(10000);
	return 0;
}

int
vm_destroy_instance(const char *name)
{
	int basefd, fd, rc = -1;

	vmm_errbuf[0] = '\0';
	if (!check_name(name))
		return -1;
	basefd = open_base(false);
	if (basefd < 0) {
		if (errno == ENOENT)
			vm_set_error("no VM instance named '%s' in %s", name,
				     vm_instance_dir());
		return -1;
	}
	fd = open_instance(basefd, name, false);
	if (fd >= 0 && stop_instance(name, fd) == 0) {
		remove_tree_at(fd);
		if (unlinkat(basefd, name, AT_REMOVEDIR) == 0)
			rc = 0;
		else
			vm_set_error("cannot remove %s/%s: %s",
				     vm_instance_dir(), name, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	close(basefd);
	return rc;
}

int
vm_remove(struct vmctx *ctx)
{
	vmm_errbuf[0] = '\0';
	if (ctx->dirfd < 0 || ctx->basefd < 0) {
		vm_set_error("VM '%s' has no instance directory", ctx->name);
		return -1;
	}
	remove_tree_at(ctx->dirfd);
	if (unlinkat(ctx->basefd, ctx->name, AT_REMOVEDIR) == 0)
		return 0;
	vm_set_error("cannot remove %s/%s: %s", vm_instance_dir(), ctx->name,
		     strerror(errno));
	return -1;
}

int
vm_sandbox_dirfds(struct vmctx *ctx, int *out, int max)
{
	int n = 0;

	if (ctx->dirfd >= 0 && n < max)
		out[n++] = ctx->dirfd;
	if (ctx->basefd >= 0 && n < max)
		out[n++] = ctx->basefd;
	return n;
}

int
vm_list(void (*cb)(const char *name, bool running, void *arg), void *arg)
{
	int basefd, dupfd;
	struct dirent *e;
	DIR *d;

	vmm_errbuf[0] = '\0';
	basefd = open_base(false);
	if (basefd < 0)
		return errno == ENOENT ? 0 : -1;
	dupfd = dup(basefd);
	d = dupfd >= 0 ? fdopendir(dupfd) : NULL;
	if (!d) {
		if (dupfd >= 0)
			close(dupfd);
		close(basefd);
		return -1;
	}
	while ((e = readdir(d))) {
		int fd;

		if (e->d_name[0] == '.' || !vm_name_valid(e->d_name))
			continue;
		fd = openat(basefd, e->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		cb(e->d_name, instance_running(fd), arg);
		close(fd);
	}
	closedir(d);
	close(basefd);
	return 0;
}

/* ---- memory ---- */

static int
read_info(struct vmctx *ctx, uint64_t *low, uint64_t *high)
{
	char buf[128] = "";
	int fd = inst_open(ctx, "info", O_RDONLY, 0);
	ssize_t n;

	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 ||
	    sscanf(buf, "lowmem %" SCNu64 " highmem %" SCNu64, low, high) != 2)
		return 1; /* unreadable: written again below */
	return 0;
}

static int
write_info(struct vmctx *ctx)
{
	char buf[128];
	int fd, n;

	n = snprintf(buf, sizeof(buf), "lowmem %" PRIu64 "\nhighmem %" PRIu64
		     "\n", ctx->lowmem, ctx->highmem);
	fd = inst_open(ctx, "info", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, buf, n) != n) {
		vm_set_error("cannot write instance info: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return close(fd);
}

static int
map_memory(struct vmctx *ctx)
{
	uint64_t total = ctx->lowmem + ctx->highmem;
	void *p;

	if (ctx->dirfd >= 0) {
		vmm_errbuf[0] = '\0';
		ctx->memfd = inst_open(ctx, "mem", O_RDWR | O_CREAT, 0600);
		if (ctx->memfd < 0 && !vmm_errbuf[0])
			vm_set_error("guest memory file: %s", strerror(errno));
		if (ctx->memfd < 0)
			return -1;
		if (ftruncate(ctx->memfd, total) < 0) {
			vm_set_error("guest memory file: %s", strerror(errno));
			return -1;
		}
		p = mmap(NULL, total, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_NORESERVE, ctx->memfd, 0);
	} else {
		p = mmap(NULL, total, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	}
	if (p == MAP_FAILED) {
		vm_set_error("cannot map %" PRIu64 " MiB of guest memory: %s",
			     total >> 20, strerror(errno));
		return -1;
	}
	ctx->mem = p;
	return 0;
}

int
vm_setup_memory(struct vmctx *ctx, uint64_t len)
{
	uint64_t low, high;
	int known = 1;

	if (len < (1ULL << 20) || (len & 0xfff)) {
		vm_set_error("memory size must be at least 1 MiB and a "
			     "multiple of 4 KiB");
		errno = EINVAL;
		return -1;
	}
	ctx->lowmem = len > VM_LOWMEM_LIMIT ? VM_LOWMEM_LIMIT : len;
	ctx->highmem = len - ctx->lowmem;
	if (ctx->dirfd >= 0 && (known = read_info(ctx, &low, &high)) < 0)
		return -1;
	if (known == 0 && (low != ctx->lowmem || high != ctx->highmem)) {
		vm_set_error("instance '%s' already has %" PRIu64
			     " MiB of memory, not %" PRIu64
			     " MiB: use the same -m, or bhyvectl --destroy "
			     "--vm=%s first",
			     ctx->name, (low + high) >> 20, len >> 20,
			     ctx->name);
		errno = EEXIST;
		return -1;
	}
	if (map_memory(ctx) < 0)
		return -1;
	if (ctx->dirfd >= 0 && write_info(ctx) < 0)
		return -1;
	if (ctx->ops->map_mem && ctx->ops->map_mem(ctx) < 0)
		return -1;
	return 0;
}

int
vm_wire_memory(struct vmctx *ctx)
{
	uint64_t total = ctx->lowmem + ctx->highmem;
	struct rlimit rl;
	int e;

	if (!ctx->mem) {
		vm_set_error("no guest memory to wire");
		return -1;
	}
	/* mlock2, not mlock: ASan makes mlock a no-op, hiding a failure. */
	if (mlock2(ctx->mem, total, 0) == 0)
		return 0;
	e = errno;
	/* EPERM: a limit of 0; ENOMEM/EAGAIN: over it (mlock(2)). */
	if ((e == EPERM || e == ENOMEM || e == EAGAIN) &&
	    getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		vm_set_error("cannot wire %" PRIu64 " MiB of guest memory: "
			     "RLIMIT_MEMLOCK is %" PRIu64 " KiB (raise it with "
			     "ulimit -l or memlock in limits.conf, or run as "
			     "root)",
			     total >> 20, (uint64_t)rl.rlim_cur >> 10);
	else
		vm_set_error("cannot wire %" PRIu64 " MiB of guest memory: %s",
			     total >> 20, strerror(e));
	return -1;
}

/* Core dumps include shared file mappings (core(5), coredump_filter). */
#define COREDUMP_MAPPED_SHARED 0x8

static int
coredump_filter_add(unsigned long bits)
{
	unsigned long cur;
	FILE *f = fopen("/proc/self/coredump_filter", "r+");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%lx", &cur) == 1;
	if (ok && (cur & bits) != bits) {
		rewind(f);
		/* The kernel parses it with base 0: hex needs its 0x. */
		ok = fprintf(f, "0x%lx\n", cur | bits) > 0;
	}
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

int
vm_dump_memory(struct vmctx *ctx, bool in_core)
{
	uint64_t total = ctx->lowmem + ctx->highmem;

	if (!ctx->mem) {
		vm_set_error("no guest memory");
		return -1;
	}
	if (madvise(ctx->mem, total, in_core ? MADV_DODUMP : MADV_DONTDUMP) <
	    0) {
		vm_set_error("madvise on guest memory: %s", strerror(errno));
		return -1;
	}
	/* The instance's memory file is a shared mapping with a name. */
	if (in_core && ctx->memfd >= 0 &&
	    coredump_filter_add(COREDUMP_MAPPED_SHARED) < 0) {
		vm_set_error("/proc/self/coredump_filter: %s", strerror(errno));
		return -1;
	}
	return 0;
}

uint64_t
vm_get_lowmem_size(struct vmctx *ctx)
{
	return ctx->lowmem;
}

uint64_t
vm_get_highmem_size(struct vmctx *ctx)
{
	return ctx->highmem;
}

void *
vm_map_gpa(struct vmctx *ctx, uint64_t gpa, size_t len)
{
	if (!ctx->mem)
		return NULL;
	if (gpa < ctx->lowmem) {
		if (len <= ctx->lowmem - gpa)
			return ctx->mem + gpa;
		return NULL;
	}
	if (gpa >= VM_HIGHMEM_BASE && gpa - VM_HIGHMEM_BASE < ctx->highmem) {
		uint64_t off = gpa - VM_HIGHMEM_BASE;
		if (len <= ctx->highmem - off)
			return ctx->mem + ctx->lowmem + off;
	}
	return NULL;
}

#define ZERO_BLOCK (UINT64_C(2) << 20)

int
vm_zero_gpa(struct vmctx *ctx, uint64_t gpa, size_t len)
{
	uint8_t *p = vm_map_gpa(ctx, gpa, len);
	uint64_t off, start, end;

	if (!p)
		return -1;
	/*
	 * Whole 2 MiB blocks only: a hole inside a huge page would split it,
	 * and the guest would then fault its neighbours in 4 KiB at a time
	 * (an NPT exit each); a punched 2 MiB block comes back as one huge
	 * page on the guest's first touch.
	 */
	off = (uint64_t)(p - ctx->mem);
	start = (off + ZERO_BLOCK - 1) & ~(ZERO_BLOCK - 1);
	end = (off + len) & ~(ZERO_BLOCK - 1);
	if (ctx->memfd >= 0 && end > start &&
	    fallocate(ctx->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)start, (off_t)(end - start)) == 0) {
		memset(p, 0, start - off);
		memset(ctx->mem + end, 0, off + len - end);
		return 0;
	}
	memset(p, 0, len);
	return 0;
}

/* ---- vCPUs and registers ---- */

int
vm_set_ncpus(struct vmctx *ctx, int ncpus)
{
	if (ncpus < 1 || ncpus > VM_MAXCPU) {
		vm_set_error("vCPU count %d out of range 1..%d", ncpus,
			     VM_MAXCPU);
		return -1;
	}
	ctx->ncpus = ncpus;
	return 0;
}

int
vm_set_topology(struct vmctx *ctx, const struct vm_topology *t)
{
	if (t->sockets < 1 || t->cores < 1 || t->threads < 1 ||
	    t->sockets * t->cores * t->threads != ctx->ncpus) {
		vm_set_error("topology %dx%dx%d does not make %d vCPUs",
			     t->sockets, t->cores, t->threads, ctx->ncpus);
		return -1;
	}
	ctx->topo = *t;
	return 0;
}

/* Without a topology, every vCPU is a socket of its own (bhyve's -c N). */
void
vm_get_topology(struct vmctx *ctx, struct vm_topology *t)
{
	if (ctx->topo.sockets)
		*t = ctx->topo;
	else
		*t = (struct vm_topology){ctx->ncpus, 1, 1};
}

void
vm_set_apic_mode(struct vmctx *ctx, enum vm_apic_mode mode)
{
	ctx->apic_mode = mode;
}

enum vm_apic_mode
vm_get_apic_mode(struct vmctx *ctx)
{
	return ctx->apic_mode;
}

int
vm_unknown_msr_exits(struct vmctx *ctx)
{
	if (!ctx->ops->unknown_msr_exits) {
		vm_set_error("this backend cannot hand unknown MSRs over");
		return -1;
	}
	return ctx->ops->unknown_msr_exits(ctx);
}

bool
vm_unknown_msrs_fault(struct vmctx *ctx)
{
	return !ctx->ops->unknown_msrs_fault ||
	       ctx->ops->unknown_msrs_fault(ctx);
}

int
vm_get_ncpus(struct vmctx *ctx)
{
	return ctx->ncpus;
}

struct vcpu *
vm_vcpu_open(struct vmctx *ctx, int id)
{
	struct vcpu *v;

	if (id < 0 || id >= VM_MAXCPU) {
		errno = EINVAL;
		return NULL;
	}
	pthread_mutex_lock(&ctx->lock);
	v = ctx->vcpus[id];
	if (!v) {
		v = calloc(1, sizeof(*v));
		if (v) {
			v->ctx = ctx;
			v->id = id;
			vm_reset_state(&v->state);
			if (id == 0 && ctx->dirfd >= 0 &&
			    ctx->kind == VMM_BACKEND_STORE)
				vm_get_boot_state(ctx, &v->state);
			if (ctx->ops->vcpu_init && ctx->ops->vcpu_init(v) < 0) {
				free(v);
				v = NULL;
			} else {
				ctx->vcpus[id] = v;
			}
		}
	}
	pthread_mutex_unlock(&ctx->lock);
	return v;
}

struct vcpu *
vm_vcpu_get(struct vmctx *ctx, int id)
{
	struct vcpu *v;

	if (id < 0 || id >= VM_MAXCPU)
		return NULL;
	pthread_mutex_lock(&ctx->lock);
	v = ctx->vcpus[id];
	pthread_mutex_unlock(&ctx->lock);
	return v;
}

int
vcpu_id(struct vcpu *vcpu)
{
	return vcpu->id;
}

struct vmctx *
vcpu_ctx(struct vcpu *vcpu)
{
	return vcpu->ctx;
}

static bool
is_seg(enum vm_reg_name r)
{
	return r >= VM_REG_GUEST_ES && r <= VM_REG_GUEST_IDTR;
}

int
vm_get_register(struct vcpu *vcpu, enum vm_reg_name reg, uint64_t *val)
{
	struct vm_boot_state bs;

	if (reg < 0 || reg >= VM_REG_LAST)
		return -1;
	if (vcpu->ctx->ops->get_state(vcpu, &bs) < 0)
		return -1;
	*val = bs.regs[reg];
	return 0;
}

int
vm_set_register(struct vcpu *vcpu, enum vm_reg_name reg, uint64_t val)
{
	struct vm_boot_state bs;

	if (reg < 0 || reg >= VM_REG_LAST)
		return -1;
	if (vcpu->ctx->ops->get_state(vcpu, &bs) < 0)
		return -1;
	bs.regs[reg] = val;
	return vcpu->ctx->ops->set_state(vcpu, &bs);
}

int
vm_get_desc(struct vcpu *vcpu, enum vm_reg_name reg, struct seg_desc *d)
{
	struct vm_boot_state bs;

	if (!is_seg(reg) || vcpu->ctx->ops->get_state(vcpu, &bs) < 0)
		return -1;
	*d = bs.segs[reg];
	return 0;
}

int
vm_set_desc(struct vcpu *vcpu, enum vm_reg_name reg, const struct seg_desc *d)
{
	struct vm_boot_state bs;

	if (!is_seg(reg) || vcpu->ctx->ops->get_state(vcpu, &bs) < 0)
		return -1;
	bs.segs[reg] = *d;
	return vcpu->ctx->ops->set_state(vcpu, &bs);
}

int
vm_get_msr(struct vcpu *vcpu, uint32_t msr, uint64_t *val)
{
	if (!vcpu->ctx->ops->get_msr)
		return -1;
	return vcpu->ctx->ops->get_msr(vcpu, msr, val);
}

int
vm_set_msr(struct vcpu *vcpu, uint32_t msr, uint64_t val)
{
	if (!vcpu->ctx->ops->set_msr)
		return -1;
	return vcpu->ctx->ops->set_msr(vcpu, msr, val);
}

int
vm_apply_state(struct vcpu *vcpu, const struct vm_boot_state *bs)
{
	return vcpu->ctx->ops->set_state(vcpu, bs);
}

int
vm_get_state(struct vcpu *vcpu, struct vm_boot_state *bs)
{
	return vcpu->ctx->ops->get_state(vcpu, bs);
}

int
vm_set_debug(struct vcpu *vcpu, const struct vm_debug *d)
{
	if (d->nhw < 0 || d->nhw > VM_DEBUG_HW_MAX) {
		vm_set_error("at most %d hardware breakpoints", VM_DEBUG_HW_MAX);
		return -1;
	}
	if (!vcpu->ctx->ops->set_debug) {
		vm_set_error("this backend cannot debug vCPUs");
		return -1;
	}
	return vcpu->ctx->ops->set_debug(vcpu, d);
}

#define PTE_P (1ULL << 0)
#define PTE_PS (1ULL << 7)
#define PTE_ADDR 0x000ffffffffff000ULL
#define CR0_PG (1ULL << 31)
#define CR4_PSE (1ULL << 4)
#define CR4_PAE (1ULL << 5)
#define CR4_LA57 (1ULL << 12)
#define EFER_LMA (1ULL << 10)

/* One table entry, 4 or 8 bytes, read from guest RAM. */
static int
read_pte(struct vmctx *ctx, uint64_t gpa, int size, uint64_t *pte)
{
	const uint8_t *p = vm_map_gpa(ctx, gpa, size);
	uint32_t v32;

	if (!p)
		return -1;
	if (size == 4) {
		memcpy(&v32, p, 4);
		*pte = v32;
	} else {
		memcpy(pte, p, 8);
	}
	return (*pte & PTE_P) ? 0 : -1;
}

/*
 * Intel SDM vol. 3 §4.3 (32-bit), §4.4 (PAE) and §4.5 (4-level paging):
 * each level takes 9 (or 10) bits of the address; a PS bit at a level
 * above the page table ends the walk with a large page.
 */
int
vm_gla2gpa(struct vmctx *ctx, const struct vm_boot_state *bs, uint64_t gla,
	   uint64_t *gpa)
{
	uint64_t cr0 = bs->regs[VM_REG_GUEST_CR0];
	uint64_t cr4 = bs->regs[VM_REG_GUEST_CR4];
	uint64_t table = bs->regs[VM_REG_GUEST_CR3], pte, idx;
	int levels, bits, size, shift;

	if (!(cr0 & CR0_PG)) {
		*gpa = gla;
		return 0;
	}
	if (bs->regs[VM_REG_GUEST_EFER] & EFER_LMA) {
		if (cr4 & CR4_LA57)
			return -1;
		/* Canonical: bits 63:47 all equal. */
		if ((uint64_t)((int64_t)(gla << 16) >> 16) != gla)
			return -1;
		levels = 4, bits = 9, size = 8;
		table &= PTE_ADDR;
	} else if (cr4 & CR4_PAE) {
		gla &= 0xffffffffULL;
		/* The PDPT: four entries at CR3 bits 31:5. */
		table = (table & 0xffffffe0ULL) + ((gla >> 30) & 3) * 8;
		if (read_pte(ctx, table, 8, &pte) < 0)
			return -1;
		table = pte & PTE_ADDR;
		levels = 2, bits = 9, size = 8;
	} else {
		gla &= 0xffffffffULL;
		levels = 2, bits = 10, size = 4;
		table &= 0xfffff000ULL;
	}
	for (int l = levels; l > 0; l--) {
		shift = 12 + (l - 1) * bits;
		idx = (gla >> shift) & ((1u << bits) - 1);
		if (read_pte(ctx, table + idx * size, size, &pte) < 0)
			return -1;
		if (l > 1 && (pte & PTE_PS)) {
			if (l > 3 || (size == 4 && !(cr4 & CR4_PSE)))
				return -1;
			if (size == 4) /* a 4 MiB page: bits 39:32 in 20:13 */
				pte = (pte & 0xffc00000ULL) |
				      ((pte & 0x1fe000ULL) << 19);
			*gpa = (pte & PTE_ADDR & ~((1ULL << shift) - 1)) |
			       (gla & ((1ULL << shift) - 1));
			return 0;
		}
		table = pte & (size == 4 ? 0xfffff000ULL : PTE_ADDR);
	}
	*gpa = table | (gla & 0xfff);
	return 0;
}

void
vm_reset_state(struct vm_boot_state *bs)
{
	memset(bs, 0, sizeof(*bs));
	bs->regs[VM_REG_GUEST_RIP] = 0xfff0;
	bs->regs[VM_REG_GUEST_RFLAGS] = 0x2;
	bs->regs[VM_REG_GUEST_CR0] = 0x60000010;
	bs->regs[VM_REG_GUEST_RDX] = 0x600; /* family 6 */
	for (int r = VM_REG_GUEST_ES; r <= VM_REG_GUEST_GS; r++)
		bs->segs[r] = (struct seg_desc){0, 0xffff, 0x93};
	bs->regs[VM_REG_GUEST_CS] = 0xf000;
	bs->segs[VM_REG_GUEST_CS] = (struct seg_desc){0xffff0000, 0xffff, 0x9b};
	bs->segs[VM_REG_GUEST_LDTR] = (struct seg_desc){0, 0xffff, 0x82};
	bs->segs[VM_REG_GUEST_TR] = (struct seg_desc){0, 0xffff, 0x8b};
	bs->segs[VM_REG_GUEST_GDTR] = (struct seg_desc){0, 0xffff, 0};
	bs->segs[VM_REG_GUEST_IDTR] = (struct seg_desc){0, 0xffff, 0};
}

/* ---- boot state file ---- */

static const char *const reg_names[VM_REG_LAST] = {
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10",
	"r11", "r12", "r13", "r14", "r15", "rsp", "rip", "rflags", "cr0",
	"cr2", "cr3", "cr4", "efer", "es", "cs", "ss", "ds", "fs", "gs",
	"ldtr", "tr", "gdtr", "idtr",
};

int
vm_set_boot_state(struct vmctx *ctx, const struct vm_boot_state *bs)
{
	FILE *f;
	int fd;

	if (ctx->dirfd < 0)
		return 0;
	fd = inst_open(ctx, "boot.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (int r = 0; r < VM_REG_LAST; r++) {
		fprintf(f, "%s 0x%" PRIx64, reg_names[r], bs->regs[r]);
		if (is_seg(r))
			fprintf(f, " 0x%" PRIx64 " 0x%x 0x%x", bs->segs[r].base,
				bs->segs[r].limit, bs->segs[r].access);
		fputc('\n', f);
	}
	if (fclose(f) != 0)
		return -1;
	/* A loader has run: what an ended run left behind no longer counts. */
	if (remove_file(ctx, "boot.ran") < 0)
		return -1;
	return renameat(ctx->dirfd, "boot.tmp", ctx->dirfd, "boot");
}

int
vm_get_boot_state(struct vmctx *ctx, struct vm_boot_state *bs)
{
	char line[256], name[16];
	uint64_t val, base;
	unsigned limit, access;
	FILE *f;
	int fd;

	vm_reset_state(bs);
	if (ctx->dirfd < 0)
		return 0;
	fd = inst_open(ctx, "boot", O_RDONLY, 0);
	if (fd < 0 || !(f = fdopen(fd, "r"))) {
		if (fd >= 0)
			close(fd);
		return errno == ENOENT ? 0 : -1;
	}
	while (fgets(line, sizeof(line), f)) {
		int n = sscanf(line, "%15s %" SCNx64 " %" SCNx64 " %x %x", name,
			       &val, &base, &limit, &access);
		if (n < 2)
			continue;
		for (int r = 0; r < VM_REG_LAST; r++) {
			if (strcmp(name, reg_names[r]))
				continue;
			bs->regs[r] = val;
			if (is_seg(r) && n == 5)
				bs->segs[r] = (struct seg_desc){base, limit,
								access};
		}
	}
	fclose(f);
	bs->valid = true;
	return 0;
}

/*
 * The boot state is good for one run, as a loaded kernel is: the bhyve
 * that takes it renames boot to boot.ran before any vCPU runs, so a run
 * that ends in any way, SIGKILL included, leaves no registers behind for
 * the next bhyve to start over memory its guest has since used. (FreeBSD's
 * bhyve cannot rerun such a VM either: its vCPUs stay suspended until a
 * loader or a bootrom reinitializes them.) A loader's vm_set_boot_state
 * removes boot.ran again.
 */
int
vm_take_boot_state(struct vmctx *ctx, struct vm_boot_state *bs)
{
	struct stat st;

	vmm_errbuf[0] = '\0';
	if (vm_get_boot_state(ctx, bs) < 0)
		return -1;
	if (ctx->dirfd < 0)
		return 0;
	if (!bs->valid) {
		if (fstatat(ctx->dirfd, "boot.ran", &st, AT_SYMLINK_NOFOLLOW) ==
		    0) {
			vm_set_error("VM %s's boot state is from a run that "
				     "ended: run grub-bhyve (or rawload) again",
				     ctx->name);
			errno = ESTALE;
		} else {
			vm_set_error(
			    "VM '%s' has nothing to boot: load a "
			    "kernel with grub-bhyve (or rawload) first",
			    ctx->name);
			errno = ENOENT;
		}
		return -1;
	}
	if (renameat(ctx->dirfd, "boot", ctx->dirfd, "boot.ran") < 0) {
		vm_set_error("cannot mark VM %s's boot state as used: %s",
			     ctx->name, strerror(errno));
		return -1;
	}
	return 0;
}

void
vm_close(struct vmctx *ctx)
{
	if (!ctx)
		return;
	for (int i = 0; i < VM_MAXCPU; i++) {
		struct vcpu *v = ctx->vcpus[i];
		if (!v)
			continue;
		if (ctx->ops->vcpu_fini)
			ctx->ops->vcpu_fini(v);
		free(v);
	}
	if (ctx->ops->vm_fini)
		ctx->ops->vm_fini(ctx);
	if (ctx->mem)
		munmap(ctx->mem, ctx->lowmem + ctx->highmem);
	if (ctx->memfd >= 0)
		close(ctx->memfd);
	if (ctx->lockfd >= 0)
		close(ctx->lockfd);
	if (ctx->dirfd >= 0)
		close(ctx->dirfd);
	if (ctx->basefd >= 0)
		close(ctx->basefd);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
}

/* ---- run and interrupts: straight to the backend ---- */

int
vm_run(struct vcpu *vcpu, struct vm_exit *exit)
{
	if (!vcpu->ctx->ops->run) {
		vm_set_error("this backend cannot run vCPUs");
		return -1;
	}
	return vcpu->ctx->ops->run(vcpu, exit);
}

void
vm_complete_read(struct vcpu *vcpu, struct vm_exit *exit)
{
	if (vcpu->ctx->ops->complete_read)
		vcpu->ctx->ops->complete_read(vcpu, exit);
}

void
vm_complete_msr(struct vcpu *vcpu, bool fault, uint64_t value)
{
	if (vcpu->ctx->ops->complete_msr)
		vcpu->ctx->ops->complete_msr(vcpu, fault, value);
}

void
vm_vcpu_settle(struct vcpu *vcpu)
{
	if (vcpu->ctx->ops->settle)
		vcpu->ctx->ops->settle(vcpu);
}

void
vm_vcpu_kick(struct vcpu *vcpu)
{
	if (vcpu->ctx->ops->kick)
		vcpu->ctx->ops->kick(vcpu);
}

int
vm_vcpu_stats(struct vcpu *vcpu, vm_stat_fn fn, void *arg)
{
	if (!vcpu->ctx->ops->stats)
		return -1;
	return vcpu->ctx->ops->stats(vcpu, fn, arg);
}

bool
vm_vcpu_maybe_halted(struct vcpu *vcpu)
{
	return !vcpu->ctx->ops->maybe_halted ||
	       vcpu->ctx->ops->maybe_halted(vcpu);
}

bool
vm_vcpu_halted_noint(struct vcpu *vcpu)
{
	return vcpu->ctx->ops->halted_noint &&
	       vcpu->ctx->ops->halted_noint(vcpu);
}

static int
irq_line(struct vmctx *ctx, int gsi, int level)
{
	if (gsi < 0 || gsi > 23 || !ctx->ops->irq_line) {
		errno = EINVAL;
		return -1;
	}
	return ctx->ops->irq_line(ctx, gsi, level);
}

int
vm_irq_assert(struct vmctx *ctx, int gsi)
{
	return irq_line(ctx, gsi, 1);
}

int
vm_irq_deassert(struct vmctx *ctx, int gsi)
{
	return irq_line(ctx, gsi, 0);
}

int
vm_irq_pulse(struct vmctx *ctx, int gsi)
{
	if (irq_line(ctx, gsi, 1) < 0)
		return -1;
	return irq_line(ctx, gsi, 0);
}

int
vm_lapic_msi(struct vmctx *ctx, uint64_t addr, uint64_t msg)
{
	if (!ctx->ops->msi)
		return -1;
	return ctx->ops->msi(ctx, addr, msg);
}

int
vm_coalesce_pio(struct vmctx *ctx, uint16_t port, uint16_t len, bool on)
{
	if (!ctx->ops->coalesce_pio)
		return -1;
	return ctx->ops->coalesce_pio(ctx, port, len, on);
}

int
vm_ioeventfd(struct vmctx *ctx, uint64_t addr, int len, bool pio,
	     uint64_t datamatch, int fd, bool assign)
{
	if (!ctx->ops->ioeventfd) {
		errno = ENOTSUP;
		return -1;
	}
	return ctx->ops->ioeventfd(ctx, addr, len, pio, datamatch, fd, assign);
}

int
vm_msi_irqfd(struct vmctx *ctx, int fd, uint64_t addr, uint32_t data)
{
	if (!ctx->ops->msi_irqfd) {
		errno = ENOTSUP;
		return -1;
	}
	return ctx->ops->msi_irqfd(ctx, fd, addr, data);
}

int
vm_msi_irqfd_update(struct vmctx *ctx, int gsi, uint64_t addr, uint32_t data)
{
	if (!ctx->ops->msi_irqfd_update) {
		errno = ENOTSUP;
		return -1;
	}
	return ctx->ops->msi_irqfd_update(ctx, gsi, addr, data);
}

void
vm_msi_irqfd_release(struct vmctx *ctx, int gsi, int fd)
{
	if (ctx->ops->msi_irqfd_release && gsi >= 0)
		ctx->ops->msi_irqfd_release(ctx, gsi, fd);
}

void
vm_drain_coalesced(struct vmctx *ctx)
{
	if (ctx->ops->drain_coalesced)
		ctx->ops->drain_coalesced(ctx);
}

void
vm_set_coalesced_handler(struct vmctx *ctx, vm_coalesced_fn fn)
{
	ctx->coalesced_fn = fn;
}
