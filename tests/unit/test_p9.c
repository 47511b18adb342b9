/*
 * The 9P2000.L server (p9_server.c) on byte buffers over a temporary
 * directory: each message type, each malformed field, the ways out of
 * the share a guest could try (".." past the root, a symlink planted on
 * the host, one the guest makes pointing out), and a read-only share
 * refusing every change.
 *
 * Layout: TOP/share is shared and holds file ("hello"), dir/inner, abs
 * (-> /etc) and up (-> ../outside); TOP/outside is a directory beside
 * the share that must stay untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "p9_server.h"

#define MSIZE 8192
#define BUFSZ (MSIZE + 1024)

enum {
	TLERROR = 6,
	RLERROR = 7,
	TSTATFS = 8,
	TLOPEN = 12,
	TLCREATE = 14,
	TSYMLINK = 16,
	TMKNOD = 18,
	TRENAME = 20,
	TREADLINK = 22,
	TGETATTR = 24,
	TSETATTR = 26,
	TXATTRWALK = 30,
	TXATTRCREATE = 32,
	TREADDIR = 40,
	TFSYNC = 50,
	TLOCK = 52,
	TGETLOCK = 54,
	TLINK = 70,
	TMKDIR = 72,
	TRENAMEAT = 74,
	TUNLINKAT = 76,
	TVERSION = 100,
	TAUTH = 102,
	TATTACH = 104,
	TFLUSH = 108,
	TWALK = 110,
	TREAD = 116,
	TWRITE = 118,
	TCLUNK = 120,
	TREMOVE = 122,
};

#define ROOT 1 /* the fid each test attaches */

/* ---- messages ---- */

struct msg {
	uint8_t b[BUFSZ];
	size_t n;
};

static void
m_le(struct msg *m, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		m->b[m->n++] = (uint8_t)(v >> (8 * i));
}

static void
m_str(struct msg *m, const char *s)
{
	size_t l = strlen(s);

	m_le(m, l, 2);
	memcpy(m->b + m->n, s, l);
	m->n += l;
}

/* A message from a format: 1 2 4 8 (integers), s (string), b (count + bytes).
 */
static struct msg *
mk(uint8_t type, const char *fmt, ...)
{
	static struct msg m;
	va_list ap;

	m.n = 0;
	m_le(&m, 0, 4);
	m_le(&m, type, 1);
	m_le(&m, 0x1234, 2); /* tag */
	va_start(ap, fmt);
	for (const char *f = fmt; *f; f++) {
		switch (*f) {
		case '1':
		case '2':
		case '4':
			m_le(&m, va_arg(ap, unsigned), *f - '0');
			break;
		case '8':
			m_le(&m, va_arg(ap, uint64_t), 8);
			break;
		case 's':
			m_str(&m, va_arg(ap, const char *));
			break;
		}
	}
	va_end(ap);
	for (int i = 0; i < 4; i++)
		m.b[i] = (uint8_t)(m.n >> (8 * i));
	return &m;
}

struct fx {
	char top[64], share[96], outside[96];
	struct p9_server *s;
	uint8_t r[BUFSZ];
	size_t rlen;
};

static uint32_t
le(const uint8_t *p, int n)
{
	uint32_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static uint64_t
le64(const uint8_t *p)
{
	return le(p, 4) | (uint64_t)le(p + 4, 4) << 32;
}

/* Send m; the errno of an Rlerror, else 0 (and the reply checked). */
static int
rpc(struct fx *f, const struct msg *m)
{
	f->rlen = p9_server_handle(f->s, m->b, m->n, f->r, sizeof(f->r));
	assert_true(f->rlen >= 7);
	assert_int_equal(le(f->r, 4), f->rlen);
	assert_int_equal(le(f->r + 5, 2), 0x1234);
	if (f->r[4] == RLERROR) {
		assert_int_equal(f->rlen, 11);
		return (int)le(f->r + 7, 4);
	}
	assert_int_equal(f->r[4], m->b[4] + 1);
	return 0;
}

#define OK(f, m) assert_int_equal(rpc(f, m), 0)
#define FAILS(f, m, e) assert_int_equal(rpc(f, m), e)

static void
put_file(const char *dir, const char *name, const char *text)
{
	char p[256];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static struct fx *
fx_new(bool ro)
{
	struct fx *f = calloc(1, sizeof(*f));
	char p[256];
	int fd;

	assert_non_null(f);
	strcpy(f->top, "/tmp/test_p9.XXXXXX");
	assert_non_null(mkdtemp(f->top));
	snprintf(f->share, sizeof(f->share), "%s/share", f->top);
	snprintf(f->outside, sizeof(f->outside), "%s/outside", f->top);
	assert_int_equal(mkdir(f->share, 0755), 0);
	assert_int_equal(mkdir(f->outside, 0755), 0);
	put_file(f->top, "secret", "secret");
	put_file(f->share, "file", "hello");
	snprintf(p, sizeof(p), "%s/dir", f->share);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/dir", f->share);
	put_file(p, "inner", "inner");
	snprintf(p, sizeof(p), "%s/abs", f->share);
	assert_int_equal(symlink("/etc", p), 0);
	snprintf(p, sizeof(p), "%s/up", f->share);
	assert_int_equal(symlink("../outside", p), 0);
	fd = open(f->share, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	f->s = p9_server_new(fd, ro, MSIZE);
	assert_non_null(f->s);
	return f;
}

/* Tversion and Tattach of fid ROOT. */
static struct fx *
fx_attached(bool ro)
{
	struct fx *f = fx_new(ro);

	OK(f, mk(TVERSION, "4s", 65536, "9P2000.L"));
	OK(f, mk(TATTACH, "44ss4", ROOT, ~0u, "root", "", 0));
	return f;
}

static void
fx_free(struct fx *f)
{
	char cmd[160];

	p9_server_free(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->top);
	assert_int_equal(system(cmd), 0);
	free(f);
}

/* user.a = "xyz" on the host file, if its file system takes it. */
static bool
setxattr_ok(const char *path)
{
	return setxattr(path, "user.a", "xyz", 3, 0) == 0;
}

static bool
host_exists(struct fx *f, const char *rel)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", f->share, rel);
	return lstat(p, &st) == 0;
}

/* fid newfid = walk from fid by up to 4 names; nwqid, or -errno. */
static int
walk(struct fx *f, uint32_t fid, uint32_t newfid, int n, const char *a,
     const char *b, const char *c, const char *d)
{
	struct msg *m = mk(TWALK, "442", fid, newfid, n);
	const char *names[4] = {a, b, c, d};
	int err;

	for (int i = 0; i < n; i++)
		m_str(m, names[i]);
	for (int i = 0; i < 4; i++)
		m->b[i] = (uint8_t)(m->n >> (8 * i));
	err = rpc(f, m);
	if (err)
		return -err;
	return (int)le(f->r + 7, 2);
}

/* The qid path of fid (Tgetattr). */
static uint64_t
qid_path(struct fx *f, uint32_t fid)
{
	OK(f, mk(TGETATTR, "48", fid, (uint64_t)0x7ff));
	return le64(f->r + 7 + 8 + 5);
}

/* ---- version and attach ---- */

static void
test_version(void **state)
{
	struct fx *f = fx_new(false);

	(void)state;
	/* Nothing before Tversion. */
	FAILS(f, mk(TATTACH, "44ss4", ROOT, ~0u, "", "", 0), EPROTO);
	/* The smaller msize wins; the server's is the bound. */
	OK(f, mk(TVERSION, "4s", 1 << 20, "9P2000.L"));
	assert_int_equal(le(f->r + 7, 4), MSIZE);
	assert_int_equal(le(f->r + 11, 2), 8);
	assert_memory_equal(f->r + 13, "9P2000.L", 8);
	OK(f, mk(TVERSION, "4s", 4096, "9P2000.L"));
	assert_int_equal(p9_server_msize(f->s), 4096);
	FAILS(f, mk(TVERSION, "4s", 100, "9P2000.L"), EINVAL);
	/* Another dialect: "unknown", and no session. */
	OK(f, mk(TVERSION, "4s", 8192, "9P2000.u"));
	assert_memory_equal(f->r + 13, "unknown", 7);
	FAILS(f, mk(TATTACH, "44ss4", ROOT, ~0u, "", "", 0), EPROTO);
	/* A new Tversion ends the session: its fids go. */
	OK(f, mk(TVERSION, "4s", 8192, "9P2000.L"));
	OK(f, mk(TATTACH, "44ss4", ROOT, ~0u, "", "", 0));
	FAILS(f, mk(TATTACH, "44ss4", ROOT, ~0u, "", "", 0), EBADF);
	FAILS(f, mk(TATTACH, "44ss4", ~0u, ~0u, "", "", 0), EBADF);
	assert_int_equal(p9_server_nfids(f->s), 1);
	OK(f, mk(TVERSION, "4s", 8192, "9P2000.L"));
	assert_int_equal(p9_server_nfids(f->s), 0);
	/* Tauth: no authentication. */
	FAILS(f, mk(TAUTH, "4ss4", 5, "", "", 0), EOPNOTSUPP);
	fx_free(f);
}

/* ---- walk ---- */

/*
 * A share of / spans file systems whose inode numbers recur (the roots of
 * /proc and /sys are both 1): their qids still differ, and readdir's
 * qid for an entry is getattr's.
 */
static void
test_qid_across_devices(void **state)
{
	struct stat a, b;
	struct fx *f;
	int fd;

	(void)state;
	if (stat("/proc", &a) < 0 || stat("/sys", &b) < 0 ||
	    a.st_ino != b.st_ino || a.st_dev == b.st_dev)
		skip(); /* no two mounts with one inode number here */
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	f->s = p9_server_new(fd, true, MSIZE);
	assert_non_null(f->s);
	OK(f, mk(TVERSION, "4s", 65536, "9P2000.L"));
	OK(f, mk(TATTACH, "44ss4", ROOT, ~0u, "root", "", 0));
	assert_int_equal(walk(f, ROOT, 2, 1, "proc", NULL, NULL, NULL), 1);
	assert_int_equal(walk(f, ROOT, 3, 1, "sys", NULL, NULL, NULL), 1);
	assert_int_not_equal(qid_path(f, 2), qid_path(f, 3));
	p9_server_free(f->s);
	free(f);
}

static void
test_walk(void **state)
{
	struct fx *f = fx_attached(false);
	uint64_t root = qid_path(f, ROOT);

	(void)state;
	assert_int_equal(walk(f, ROOT, 2, 2, "dir", "inner", 0, 0), 2);
	assert_int_equal(f->r[9], 0x80); /* dir's qid is a directory's */
	assert_int_equal(f->r[9 + 13], 0);
	/* The first name failing fails the walk. */
	assert_int_equal(walk(f, ROOT, 3, 1, "nope", 0, 0, 0), -ENOENT);
	/* A later one: the qids so far, and no new fid. */
	assert_int_equal(walk(f, ROOT, 3, 2, "dir", "nope", 0, 0), 1);
	FAILS(f, mk(TCLUNK, "4", 3), EBADF);
	/* Through a file. */
	assert_int_equal(walk(f, ROOT, 3, 2, "file", "x", 0, 0), 1);
	assert_int_equal(walk(f, 2, 3, 1, "..", 0, 0, 0), -ENOTDIR);
	/* Clone (no names) and walk in place (newfid == fid). */
	assert_int_equal(walk(f, ROOT, 3, 0, 0, 0, 0, 0), 0);
	assert_int_equal(qid_path(f, 3), root);
	assert_int_equal(walk(f, 3, 3, 1, "dir", 0, 0, 0), 1);
	assert_int_not_equal(qid_path(f, 3), root);
	/* newfid in use. */
	assert_int_equal(walk(f, ROOT, 2, 1, "dir", 0, 0, 0), -EBADF);
	/* Unknown fid. */
	assert_int_equal(walk(f, 99, 100, 1, "dir", 0, 0, 0), -EBADF);
	/* Names with '/', empty, or with a NUL. */
	assert_int_equal(walk(f, ROOT, 4, 1, "dir/inner", 0, 0, 0), -EINVAL);
	assert_int_equal(walk(f, ROOT, 4, 1, "", 0, 0, 0), -EINVAL);
	{
		struct msg *m = mk(TWALK, "4428", ROOT, 4, 1, (uint64_t)0);

		m->n -= 8;
		m_le(m, 5, 2);
		memcpy(m->b + m->n, "di\0r!", 5);
		m->n += 5;
		m->b[0] = (uint8_t)m->n;
		FAILS(f, m, EINVAL);
	}
	/* More than 16 names. */
	{
		struct msg *m = mk(TWALK, "442", ROOT, 4, 17);

		for (int i = 0; i < 17; i++)
			m_str(m, "dir");
		m->b[0] = (uint8_t)m->n;
		m->b[1] = (uint8_t)(m->n >> 8);
		FAILS(f, m, EINVAL);
		m = mk(TWALK, "442", ROOT, 4, 16);
		for (int i = 0; i < 16; i++)
			m_str(m, i % 2 ? ".." : "dir");
		m->b[0] = (uint8_t)m->n;
		m->b[1] = (uint8_t)(m->n >> 8);
		OK(f, m);
		assert_int_equal(le(f->r + 7, 2), 16);
		assert_int_equal(qid_path(f, 4), root);
	}
	fx_free(f);
}

/* ".." at the root stays there; nothing beside the share is reachable. */
static void
test_dotdot_stays_inside(void **state)
{
	struct fx *f = fx_attached(false);
	uint64_t root = qid_path(f, ROOT);

	(void)state;
	assert_int_equal(walk(f, ROOT, 2, 3, "..", "..", "..", 0), 3);
	assert_int_equal(qid_path(f, 2), root);
	assert_int_equal(walk(f, ROOT, 3, 2, "..", "secret", 0, 0), 1);
	assert_int_equal(walk(f, ROOT, 3, 2, "..", "outside", 0, 0), 1);
	assert_int_equal(walk(f, ROOT, 3, 4, "dir", "..", "..", "file"), 4);
	OK(f, mk(TLOPEN, "44", 3, O_RDONLY));
	OK(f, mk(TREAD, "484", 3, (uint64_t)0, 100));
	assert_int_equal(le(f->r + 7, 4), 5);
	assert_memory_equal(f->r + 11, "hello", 5);
	fx_free(f);
}

/* A symlink on the host (absolute, or relative going up) is never followed. */
static void
test_host_symlinks(void **state)
{
	struct fx *f = fx_attached(false);

	(void)state;
	/* The link itself can be walked to and read: it is the guest's to
	 * follow. */
	assert_int_equal(walk(f, ROOT, 2, 1, "abs", 0, 0, 0), 1);
	assert_int_equal(f->r[9], 0x02);
	OK(f, mk(TREADLINK, "4", 2));
	assert_int_equal(le(f->r + 7, 2), 4);
	assert_memory_equal(f->r + 9, "/etc", 4);
	/*
	 * Through it: no. Used as a directory it is not one (ENOTDIR); opened
	 * as a file, a link (ELOOP).
	 */
	assert_int_equal(walk(f, ROOT, 3, 2, "abs", "passwd", 0, 0), 1);
	assert_int_equal(walk(f, 2, 3, 1, "passwd", 0, 0, 0), -ENOTDIR);
	FAILS(f, mk(TLOPEN, "44", 2, O_RDONLY), ELOOP);
	FAILS(f, mk(TLOPEN, "44", 2, O_RDONLY | O_DIRECTORY), ENOTDIR);
	FAILS(f, mk(TMKDIR, "4s44", 2, "x", 0755, 0), ENOTDIR);
	FAILS(f, mk(TLCREATE, "4s444", 2, "x", O_RDWR, 0644, 0), ENOTDIR);
	FAILS(f, mk(TXATTRWALK, "44s", 2, 9, "user.x"), ENODATA);
	/* A mode change on a link would change its target: refused. */
	FAILS(f,
	      mk(TSETATTR, "4444488888", 2, 1, 0777, 0, 0, (uint64_t)0,
		 (uint64_t)0, (uint64_t)0, (uint64_t)0, (uint64_t)0),
	      EOPNOTSUPP);
	/* up -> ../outside */
	assert_int_equal(walk(f, ROOT, 4, 1, "up", 0, 0, 0), 1);
	FAILS(f, mk(TMKDIR, "4s44", 4, "x", 0755, 0), ENOTDIR);
	FAILS(f,
	      mk(TSETATTR, "4444488888", 4, 8, 0, 0, 0, (uint64_t)0,
		 (uint64_t)0, (uint64_t)0, (uint64_t)0, (uint64_t)0),
	      ELOOP);
	fx_free(f);
}

/* The guest makes a link to /etc and to the directory beside the share. */
static void
test_guest_symlink_out(void **state)
{
	struct fx *f = fx_attached(false);
	char out[128];
	struct stat st;

	(void)state;
	OK(f, mk(TSYMLINK, "4ss4", ROOT, "g", "/etc", 0));
	assert_int_equal(f->r[7], 0x02);
	snprintf(out, sizeof(out), "%s", f->outside);
	OK(f, mk(TSYMLINK, "4ss4", ROOT, "o", out, 0));
	OK(f, mk(TSYMLINK, "4ss4", ROOT, "r", "../../../../../../tmp", 0));
	assert_int_equal(walk(f, ROOT, 2, 2, "g", "passwd", 0, 0), 1);
	assert_int_equal(walk(f, ROOT, 2, 2, "o", "x", 0, 0), 1);
	assert_int_equal(walk(f, ROOT, 2, 1, "o", 0, 0, 0), 1);
	FAILS(f, mk(TMKDIR, "4s44", 2, "x", 0755, 0), ENOTDIR);
	FAILS(f, mk(TLCREATE, "4s444", 2, "x", O_RDWR, 0644, 0), ENOTDIR);
	FAILS(f, mk(TSYMLINK, "4ss4", 2, "x", "y", 0), ENOTDIR);
	FAILS(f, mk(TMKNOD, "4s4444", 2, "x", S_IFREG | 0644, 0, 0, 0),
	      ENOTDIR);
	FAILS(f, mk(TUNLINKAT, "4s4", 2, "x", 0), ENOTDIR);
	FAILS(f, mk(TLOPEN, "44", 2, O_RDONLY), ELOOP);
	OK(f, mk(TSTATFS, "4", 2)); /* the share's file system: fine */
	assert_int_equal(walk(f, ROOT, 3, 1, "r", 0, 0, 0), 1);
	FAILS(f, mk(TREADDIR, "484", 3, (uint64_t)0, 1000), EBADF);
	FAILS(f, mk(TLOPEN, "44", 3, O_RDONLY | O_DIRECTORY), ENOTDIR);
	/* A hard link of the link is a link too; rename of it moves it only. */
	OK(f, mk(TRENAMEAT, "4s4s", ROOT, "o", ROOT, "o2"));
	assert_int_equal(lstat(f->outside, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* Nothing appeared beside the share. */
	snprintf(out, sizeof(out), "%s/x", f->outside);
	assert_int_not_equal(lstat(out, &st), 0);
	fx_free(f);
}

/* ---- files ---- */

static void
test_read_write(void **state)
{
	struct fx *f = fx_attached(false);
	char big[MSIZE * 2];
	FILE *fp;
	char p[256];

	(void)state;
	assert_int_equal(walk(f, ROOT, 2, 1, "file", 0, 0, 0), 1);
	FAILS(f, mk(TREAD, "484", 2, (uint64_t)0, 10), EBADF); /* not open */
	OK(f, mk(TLOPEN, "44", 2, O_RDWR));
	assert_int_equal(le(f->r + 7 + 13, 4), 0);    /* iounit */
	FAILS(f, mk(TLOPEN, "44", 2, O_RDWR), EBADF); /* already */
	/* An open fid can be cloned (Linux does) but not walked in place. */
	OK(f, mk(TWALK, "442", 2, 9, 0));
	OK(f, mk(TCLUNK, "4", 9));
	FAILS(f, mk(TWALK, "442s", 2, 2, 1, ".."), EBADF);
	OK(f, mk(TREAD, "484", 2, (uint64_t)1, 3));
	assert_int_equal(le(f->r + 7, 4), 3);
	assert_memory_equal(f->r + 11, "ell", 3);
	OK(f, mk(TREAD, "484", 2, (uint64_t)100, 3));
	assert_int_equal(le(f->r + 7, 4), 0);
	FAILS(f, mk(TREAD, "484", 2, (uint64_t)1 << 63, 3), EINVAL);
	/* Twrite: the data is in the message, count says how much. */
	{
		struct msg *m = mk(TWRITE, "484", 2, (uint64_t)5, 6);

		memcpy(m->b + m->n, " world", 6);
		m->n += 6;
		m->b[0] = (uint8_t)m->n;
		OK(f, m);
		assert_int_equal(le(f->r + 7, 4), 6);
		/* A count past the message's end. */
		m = mk(TWRITE, "484", 2, (uint64_t)0, 7);
		memcpy(m->b + m->n, "abc", 3);
		m->n += 3;
		m->b[0] = (uint8_t)m->n;
		FAILS(f, m, EINVAL);
		m = mk(TWRITE, "484", 2, (uint64_t)0, 0xffffffffu);
		FAILS(f, m, EINVAL);
	}
	OK(f, mk(TFSYNC, "44", 2, 0));
	OK(f, mk(TFSYNC, "44", 2, 1));
	FAILS(f, mk(TFSYNC, "44", ROOT, 0), EBADF);
	OK(f, mk(TREAD, "484", 2, (uint64_t)0, 100));
	assert_int_equal(le(f->r + 7, 4), 11);
	assert_memory_equal(f->r + 11, "hello world", 11);
	/* A read as big as asked, up to msize less the Rread header. */
	memset(big, 'b', sizeof(big));
	snprintf(p, sizeof(p), "%s/big", f->share);
	fp = fopen(p, "w");
	fwrite(big, 1, sizeof(big), fp);
	fclose(fp);
	assert_int_equal(walk(f, ROOT, 3, 1, "big", 0, 0, 0), 1);
	OK(f, mk(TLOPEN, "44", 3, O_RDONLY));
	OK(f, mk(TREAD, "484", 3, (uint64_t)0, 0xffffffffu));
	assert_int_equal(le(f->r + 7, 4), MSIZE - 11);
	assert_int_equal(f->rlen, MSIZE);
	/* A smaller reply buffer bounds it too. */
	{
		struct msg *m = mk(TREAD, "484", 3, (uint64_t)0, 0xffffffffu);
		uint8_t small[100];

		assert_int_equal(
		    p9_server_handle(f->s, m->b, m->n, small, sizeof(small)),
		    100);
		assert_int_equal(le(small + 7, 4), 89);
		assert_int_equal(p9_server_handle(f->s, m->b, m->n, small, 10),
				 0);
	}
	/* Written to a read-only open: the host says EBADF. */
	{
		struct msg *m = mk(TWRITE, "484", 3, (uint64_t)0, 1);

		m->b[m->n++] = 'x';
		m->b[0] = (uint8_t)m->n;
		FAILS(f, m, EBADF);
	}
	OK(f, mk(TCLUNK, "4", 3));
	FAILS(f, mk(TCLUNK, "4", 3), EBADF);
	fx_free(f);
}

static void
test_create_and_remove(void **state)
{
	struct fx *f = fx_attached(false);
	struct stat st;
	char p[256];

	(void)state;
	assert_int_equal(walk(f, ROOT, 2, 1, "dir", 0, 0, 0), 1);
	OK(f, mk(TLCREATE, "4s444", 2, "new", O_RDWR | 0200, 0640, 0));
	assert_int_equal(f->r[7], 0);
	assert_true(host_exists(f, "dir/new"));
	snprintf(p, sizeof(p), "%s/dir/new", f->share);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640 & ~umask(022));
	/* fid 2 is the new file, open. */
	{
		struct msg *m = mk(TWRITE, "484", 2, (uint64_t)0, 2);

		m->b[m->n++] = 'h';
		m->b[m->n++] = 'i';
		m->b[0] = (uint8_t)m->n;
		OK(f, m);
	}
	assert_int_equal(walk(f, ROOT, 3, 1, "dir", 0, 0, 0), 1);
	FAILS(f, mk(TLCREATE, "4s444", 3, "new", O_RDWR | 0200, 0640, 0),
	      EEXIST);
	FAILS(f, mk(TLCREATE, "4s444", 3, "..", O_RDWR, 0640, 0), EINVAL);
	FAILS(f, mk(TLCREATE, "4s444", 3, ".", O_RDWR, 0640, 0), EINVAL);
	FAILS(f, mk(TLCREATE, "4s444", 3, "a/b", O_RDWR, 0640, 0), EINVAL);
	FAILS(f, mk(TLCREATE, "4s444", 3, "", O_RDWR, 0640, 0), EINVAL);
	FAILS(f, mk(TLCREATE, "4s444", 3, "x", 3, 0640, 0), EINVAL);
	/* mkdir, mknod (regular and FIFO only), symlink, link. */
	OK(f, mk(TMKDIR, "4s44", 3, "sub", 0755, 0));
	assert_int_equal(f->r[7], 0x80);
	FAILS(f, mk(TMKDIR, "4s44", 3, "sub", 0755, 0), EEXIST);
	OK(f, mk(TMKNOD, "4s4444", 3, "fifo", S_IFIFO | 0600, 0, 0, 0));
	OK(f, mk(TMKNOD, "4s4444", 3, "reg", S_IFREG | 0600, 0, 0, 0));
	FAILS(f, mk(TMKNOD, "4s4444", 3, "chr", S_IFCHR | 0600, 1, 3, 0),
	      EPERM);
	FAILS(f, mk(TMKNOD, "4s4444", 3, "blk", S_IFBLK | 0600, 8, 0, 0),
	      EPERM);
	FAILS(f, mk(TMKNOD, "4s4444", 3, "sock", S_IFSOCK | 0600, 0, 0, 0),
	      EPERM);
	assert_false(host_exists(f, "dir/chr"));
	/* A FIFO is never opened (it could stall the server). */
	assert_int_equal(walk(f, 3, 4, 1, "fifo", 0, 0, 0), 1);
	FAILS(f, mk(TLOPEN, "44", 4, O_RDONLY), EPERM);
	FAILS(f, mk(TLOPEN, "44", 4, O_WRONLY), ENXIO);
	OK(f, mk(TCLUNK, "4", 4));
	OK(f, mk(TSYMLINK, "4ss4", 3, "ln", "new", 0));
	FAILS(f, mk(TSYMLINK, "4ss4", 3, "ln2", "", 0), ENOENT);
	assert_int_equal(walk(f, 3, 4, 1, "new", 0, 0, 0), 1);
	OK(f, mk(TLINK, "44s", 3, 4, "hard"));
	snprintf(p, sizeof(p), "%s/dir/hard", f->share);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_nlink, 2);
	FAILS(f, mk(TLINK, "44s", 3, ROOT, "rootlink"), EBUSY);
	/* unlinkat, and remove (which clunks even on failure). */
	OK(f, mk(TUNLINKAT, "4s4", 3, "hard", 0));
	FAILS(f, mk(TUNLINKAT, "4s4", 3, "sub", 0), EISDIR);
	FAILS(f, mk(TUNLINKAT, "4s4", 3, "sub", 1), EINVAL);
	FAILS(f, mk(TUNLINKAT, "4s4", 3, "..", 0x200), EINVAL);
	OK(f, mk(TUNLINKAT, "4s4", 3, "sub", 0x200));
	assert_false(host_exists(f, "dir/sub"));
	OK(f, mk(TREMOVE, "4", 4));
	assert_false(host_exists(f, "dir/new"));
	FAILS(f, mk(TCLUNK, "4", 4), EBADF);
	assert_int_equal(walk(f, ROOT, 4, 0, 0, 0, 0, 0), 0);
	FAILS(f, mk(TREMOVE, "4", 4), EBUSY); /* the share's root */
	FAILS(f, mk(TCLUNK, "4", 4), EBADF);
	assert_int_equal(walk(f, ROOT, 4, 1, "dir", 0, 0, 0), 1);
	FAILS(f, mk(TREMOVE, "4", 4), ENOTEMPTY);
	fx_free(f);
}

static void
test_rename(void **state)
{
	struct fx *f = fx_attached(false);

	(void)state;
	assert_int_equal(walk(f, ROOT, 2, 2, "dir", "inner", 0, 0), 2);
	assert_int_equal(walk(f, ROOT, 3, 1, "dir", 0, 0, 0), 1);
	/* Renaming dir moves the fids beneath it along. */
	OK(f, mk(TRENAMEAT, "4s4s", ROOT, "dir", ROOT, "dir2"));
	assert_true(host_exists(f, "dir2/inner"));
	OK(f, mk(TLOPEN, "44", 2, O_RDONLY));
	OK(f, mk(TREAD, "484", 2, (uint64_t)0, 100));
	assert_memory_equal(f->r + 11, "inner", 5);
	/* Trename: the fid's object into dfid as name. */
	OK(f, mk(TRENAME, "44s", 3, ROOT, "dir3"));
	assert_true(host_exists(f, "dir3/inner"));
	assert_int_equal(walk(f, 3, 4, 1, "inner", 0, 0, 0), 1);
	FAILS(f, mk(TRENAME, "44s", ROOT, ROOT, "x"), EBUSY);
	FAILS(f, mk(TRENAME, "44s", 4, ROOT, ".."), EINVAL);
	FAILS(f, mk(TRENAMEAT, "4s4s", ROOT, "file", ROOT, "../x"), EINVAL);
	FAILS(f, mk(TRENAMEAT, "4s4s", ROOT, "..", ROOT, "x"), EINVAL);
	FAILS(f, mk(TRENAMEAT, "4s4s", ROOT, "nope", ROOT, "x"), ENOENT);
	FAILS(f, mk(TRENAMEAT, "4s4s", ROOT, "file", 99, "x"), EBADF);
	fx_free(f);
}

static void
test_attrs(void **state)
{
	struct fx *f = fx_attached(false);
	struct stat st;
	char p[256];

	(void)state;
	assert_int_equal(walk(f, ROOT, 2, 1, "file", 0, 0, 0), 1);
	OK(f, mk(TGETATTR, "48", 2, (uint64_t)0x3fff));
	assert_int_equal(f->rlen, 7 + 8 + 13 + 3 * 4 + 15 * 8);
	assert_int_equal(le64(f->r + 7), 0x7ff);
	assert_int_equal(le(f->r + 7 + 8 + 13, 4) & S_IFMT, S_IFREG);
	assert_int_equal(le64(f->r + 7 + 8 + 13 + 12 + 16), 5); /* size */
	/* mode, size, mtime, in one Tsetattr. */
	OK(f, mk(TSETATTR, "4444488888", 2, 0x1 | 0x8 | 0x20 | 0x100, 0600, 0,
		 0, (uint64_t)2, (uint64_t)0, (uint64_t)0, (uint64_t)1000000,
		 (uint64_t)5));
	snprintf(p, sizeof(p), "%s/file", f->share);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 2);
	assert_int_equal(st.st_mtim.tv_sec, 1000000);
	assert_int_equal(st.st_mtim.tv_nsec, 5);
	/* atime now; ownership to what it is (allowed for anyone). */
	OK(f, mk(TSETATTR, "4444488888", 2, 0x10 | 0x2 | 0x4, 0, st.st_uid,
		 st.st_gid, (uint64_t)0, (uint64_t)0, (uint64_t)0, (uint64_t)0,
		 (uint64_t)0));
	FAILS(f,
	      mk(TSETATTR, "4444488888", 2, 0x8, 0, 0, 0, (uint64_t)1 << 63,
		 (uint64_t)0, (uint64_t)0, (uint64_t)0, (uint64_t)0),
	      EFBIG);
	/* Size on a directory. */
	FAILS(f,
	      mk(TSETATTR, "4444488888", ROOT, 0x8, 0, 0, 0, (uint64_t)0,
		 (uint64_t)0, (uint64_t)0, (uint64_t)0, (uint64_t)0),
	      EISDIR);
	OK(f, mk(TSTATFS, "4", ROOT));
	assert_int_equal(f->rlen, 7 + 4 + 4 + 5 * 8 + 8 + 4);
	FAILS(f, mk(TSTATFS, "4", 77), EBADF);
	/* Locks: granted; getlock says unlocked. */
	OK(f, mk(TLOCK, "414884s", 2, 1, 0, (uint64_t)0, (uint64_t)10, 42,
		 "client"));
	FAILS(
	    f,
	    mk(TLOCK, "414884s", 77, 1, 0, (uint64_t)0, (uint64_t)10, 42, "c"),
	    EBADF);
	OK(f, mk(TGETLOCK, "41884s", 2, 1, (uint64_t)3, (uint64_t)10, 42,
		 "client"));
	assert_int_equal(f->r[7], 2);
	assert_int_equal(le64(f->r + 8), 3);
	assert_int_equal(le(f->r + 24, 4), 42);
	assert_int_equal(le(f->r + 28, 2), 6);
	/* Tflush: nothing is ever pending. */
	OK(f, mk(TFLUSH, "2", 7));
	fx_free(f);
}

static void
test_xattrs(void **state)
{
	struct fx *f = fx_attached(false);
	char p[256];
	bool have_user_xattr;

	(void)state;
	snprintf(p, sizeof(p), "%s/file", f->share);
	have_user_xattr = setxattr_ok(p);
	assert_int_equal(walk(f, ROOT, 2, 1, "file", 0, 0, 0), 1);
	/* The list. */
	OK(f, mk(TXATTRWALK, "44s", 2, 3, ""));
	if (have_user_xattr) {
		assert_int_equal(le64(f->r + 7), 7);
		OK(f, mk(TREAD, "484", 3, (uint64_t)0, 100));
		assert_int_equal(le(f->r + 7, 4), 7);
		assert_memory_equal(f->r + 11, "user.a", 7);
		OK(f, mk(TXATTRWALK, "44s", 2, 4, "user.a"));
		assert_int_equal(le64(f->r + 7), 3);
		OK(f, mk(TREAD, "484", 4, (uint64_t)1, 100));
		assert_int_equal(le(f->r + 7, 4), 2);
		assert_memory_equal(f->r + 11, "yz", 2);
		OK(f, mk(TREAD, "484", 4, (uint64_t)1 << 40, 100));
		assert_int_equal(le(f->r + 7, 4), 0);
		OK(f, mk(TCLUNK, "4", 4));
	}
	OK(f, mk(TCLUNK, "4", 3));
	FAILS(f, mk(TXATTRWALK, "44s", 2, 3, "user.none"), ENODATA);
	FAILS(f, mk(TXATTRWALK, "44s", 2, 2, "user.none"), EBADF);
	/* Read-only: no Txattrcreate. */
	FAILS(f, mk(TXATTRCREATE, "4s84", 2, "user.b", (uint64_t)1, 0),
	      EOPNOTSUPP);
	fx_free(f);
}

static void
test_readdir(void **state)
{
	struct fx *f = fx_attached(false);
	char seen[64][64];
	int nseen = 0, calls = 0;
	uint64_t off = 0;
	char p[256];

	(void)state;
	for (int i = 0; i < 30; i++) {
		char name[16];

		snprintf(name, sizeof(name), "f%02d", i);
		put_file(f->share, name, "x");
	}
	snprintf(p, sizeof(p), "%s", f->share);
	assert_int_equal(walk(f, ROOT, 2, 0, 0, 0, 0, 0), 0);
	FAILS(f, mk(TREADDIR, "484", 2, (uint64_t)0, 1000), EBADF);
	OK(f, mk(TLOPEN, "44", 2, O_RDONLY | O_DIRECTORY));
	/* Small counts: a few entries a call, resumed at the last offset. */
	for (;;) {
		uint32_t n;
		size_t o;

		OK(f, mk(TREADDIR, "484", 2, off, 100));
		calls++;
		n = le(f->r + 7, 4);
		assert_true(n <= 100);
		assert_int_equal(f->rlen, 11 + n);
		if (n == 0)
			break;
		for (o = 11; o < 11 + n;) {
			uint16_t nl = (uint16_t)le(f->r + o + 22, 2);

			off = le64(f->r + o + 13);
			assert_true(nl < 64 && nseen < 64);
			memcpy(seen[nseen], f->r + o + 24, nl);
			seen[nseen++][nl] = '\0';
			o += 24 + nl;
		}
		assert_int_equal(o, 11 + n);
	}
	/* 30 + file dir abs up + . .. , each once. */
	assert_int_equal(nseen, 36);
	assert_true(calls > 3);
	for (int i = 0; i < nseen; i++)
		for (int j = i + 1; j < nseen; j++)
			assert_string_not_equal(seen[i], seen[j]);
	FAILS(f, mk(TREADDIR, "484", 2, (uint64_t)1 << 63, 100), EINVAL);
	/* A count too small for one entry: none. */
	OK(f, mk(TREADDIR, "484", 2, (uint64_t)0, 10));
	assert_int_equal(le(f->r + 7, 4), 0);
	fx_free(f);
}

/* ---- read-only ---- */

static void
test_read_only(void **state)
{
	struct fx *f = fx_attached(true);

	(void)state;
	assert_int_equal(walk(f, ROOT, 2, 1, "file", 0, 0, 0), 1);
	FAILS(f, mk(TLOPEN, "44", 2, O_RDWR), EROFS);
	FAILS(f, mk(TLOPEN, "44", 2, O_WRONLY), EROFS);
	FAILS(f, mk(TLOPEN, "44", 2, O_RDONLY | O_TRUNC), EROFS);
	FAILS(f, mk(TLOPEN, "44", 2, O_RDONLY | O_APPEND), EROFS);
	FAILS(f,
	      mk(TSETATTR, "4444488888", 2, 0x8, 0, 0, 0, (uint64_t)0,
		 (uint64_t)0, (uint64_t)0, (uint64_t)0, (uint64_t)0),
	      EROFS);
	FAILS(f,
	      mk(TSETATTR, "4444488888", 2, 0x1, 0777, 0, 0, (uint64_t)0,
		 (uint64_t)0, (uint64_t)0, (uint64_t)0, (uint64_t)0),
	      EROFS);
	FAILS(f, mk(TLCREATE, "4s444", ROOT, "n", O_RDWR, 0644, 0), EROFS);
	FAILS(f, mk(TMKDIR, "4s44", ROOT, "n", 0755, 0), EROFS);
	FAILS(f, mk(TMKNOD, "4s4444", ROOT, "n", S_IFREG | 0644, 0, 0, 0),
	      EROFS);
	FAILS(f, mk(TSYMLINK, "4ss4", ROOT, "n", "file", 0), EROFS);
	FAILS(f, mk(TLINK, "44s", ROOT, 2, "n"), EROFS);
	FAILS(f, mk(TRENAMEAT, "4s4s", ROOT, "file", ROOT, "n"), EROFS);
	FAILS(f, mk(TRENAME, "44s", 2, ROOT, "n"), EROFS);
	FAILS(f, mk(TUNLINKAT, "4s4", ROOT, "file", 0), EROFS);
	FAILS(f, mk(TXATTRCREATE, "4s84", 2, "user.b", (uint64_t)1, 0),
	      EOPNOTSUPP);
	assert_int_equal(walk(f, ROOT, 3, 1, "file", 0, 0, 0), 1);
	FAILS(f, mk(TREMOVE, "4", 3), EROFS);
	assert_true(host_exists(f, "file"));
	assert_false(host_exists(f, "n"));
	/* Reading is fine. */
	OK(f, mk(TLOPEN, "44", 2, O_RDONLY));
	OK(f, mk(TREAD, "484", 2, (uint64_t)0, 5));
	assert_memory_equal(f->r + 11, "hello", 5);
	{
		struct msg *m = mk(TWRITE, "484", 2, (uint64_t)0, 1);

		m->b[m->n++] = 'x';
		m->b[0] = (uint8_t)m->n;
		FAILS(f, m, EROFS);
	}
	OK(f, mk(TSETATTR, "4444488888", 2, 0, 0, 0, 0, (uint64_t)0,
		 (uint64_t)0, (uint64_t)0, (uint64_t)0, (uint64_t)0));
	fx_free(f);
}

/* ---- hostile framing ---- */

static void
test_bad_framing(void **state)
{
	struct fx *f = fx_attached(false);
	struct msg *m;
	uint8_t r[64];

	(void)state;
	/* Too short for a header: no reply at all. */
	m = mk(TCLUNK, "4", ROOT);
	assert_int_equal(p9_server_handle(f->s, m->b, 6, r, sizeof(r)), 0);
	assert_int_equal(p9_server_handle(f->s, m->b, m->n, r, 10), 0);
	/* A size field below 7, above what was sent, or above msize. */
	m->b[0] = 3;
	FAILS(f, m, EINVAL);
	m->b[0] = (uint8_t)(m->n + 1);
	FAILS(f, m, EINVAL);
	m = mk(TCLUNK, "4", ROOT);
	m->b[0] = 0;
	m->b[1] = 0x40; /* 16 KiB > msize */
	{
		static uint8_t big[0x4000];

		memcpy(big, m->b, m->n);
		f->rlen = p9_server_handle(f->s, big, sizeof(big), f->r,
					   sizeof(f->r));
		assert_int_equal(f->r[4], RLERROR);
		assert_int_equal(le(f->r + 7, 4), EMSGSIZE);
	}
	/* More bytes than the size says: the size rules. */
	m = mk(TCLUNK, "4", 99);
	m->n += 10;
	FAILS(f, m, EBADF);
	/* Unknown and 9P2000-only types, Tlerror from the guest. */
	FAILS(f, mk(0, ""), EOPNOTSUPP);
	FAILS(f, mk(255, ""), EOPNOTSUPP);
	FAILS(f, mk(112, "41", ROOT, 0), EOPNOTSUPP); /* Topen */
	FAILS(f, mk(TLERROR, "4", 5), EOPNOTSUPP);
	/* A string longer than the message. */
	m = mk(TWALK, "442", ROOT, 2, 1);
	m_le(m, 200, 2);
	memcpy(m->b + m->n, "dir", 3);
	m->n += 3;
	m->b[0] = (uint8_t)m->n;
	FAILS(f, m, EINVAL);
	assert_int_equal(p9_server_nfids(f->s), 1);
	fx_free(f);
}

/*
 * Every message type cut short at every length: EINVAL each time, and
 * nothing happened (no fid made, nothing on the host).
 */
static void
test_truncated_fields(void **state)
{
	struct fx *f = fx_attached(false);
	struct msg all[40];
	int n = 0;

	(void)state;
	assert_int_equal(walk(f, ROOT, 2, 1, "file", 0, 0, 0), 1);
	OK(f, mk(TLOPEN, "44", 2, O_RDWR));
#define ADD(...) all[n++] = *mk(__VA_ARGS__)
	ADD(TVERSION, "4s", 8192, "9P2000.L");
	ADD(TATTACH, "44ss4", 9, ~0u, "u", "a", 0);
	ADD(TWALK, "442ss", ROOT, 9, 2, "dir", "inner");
	ADD(TLOPEN, "44", ROOT, 0);
	ADD(TLCREATE, "4s444", ROOT, "nf", 2, 0644, 0);
	ADD(TSYMLINK, "4ss4", ROOT, "ns", "t", 0);
	ADD(TMKNOD, "4s4444", ROOT, "nn", S_IFREG, 0, 0, 0);
	ADD(TRENAME, "44s", 2, ROOT, "nr");
	ADD(TREADLINK, "4", ROOT);
	ADD(TGETATTR, "48", ROOT, (uint64_t)0x7ff);
	ADD(TSETATTR, "4444488888", 2, 1, 0600, 0, 0, (uint64_t)0, (uint64_t)0,
	    (uint64_t)0, (uint64_t)0, (uint64_t)0);
	ADD(TXATTRWALK, "44s", ROOT, 9, "");
	ADD(TREADDIR, "484", 2, (uint64_t)0, 100);
	ADD(TFSYNC, "44", 2, 0);
	ADD(TLOCK, "414884s", 2, 1, 0, (uint64_t)0, (uint64_t)1, 1, "c");
	ADD(TGETLOCK, "41884s", 2, 1, (uint64_t)0, (uint64_t)1, 1, "c");
	ADD(TLINK, "44s", ROOT, 2, "nl");
	ADD(TMKDIR, "4s44", ROOT, "nd", 0755, 0);
	ADD(TRENAMEAT, "4s4s", ROOT, "file", ROOT, "nr");
	ADD(TUNLINKAT, "4s4", ROOT, "file", 0);
	ADD(TFLUSH, "2", 1);
	ADD(TREAD, "484", 2, (uint64_t)0, 5);
	ADD(TWRITE, "4844", 2, (uint64_t)0, 4, 0x41414141);
	ADD(TCLUNK, "4", 2);
	ADD(TREMOVE, "4", 2);
	ADD(TSTATFS, "4", ROOT);
#undef ADD
	for (int i = 0; i < n; i++) {
		struct msg *m = &all[i];

		for (size_t len = 7; len < m->n; len++) {
			struct msg cut = *m;

			cut.n = len;
			for (int b = 0; b < 4; b++)
				cut.b[b] = (uint8_t)(len >> (8 * b));
			assert_int_equal(rpc(f, &cut), EINVAL);
		}
	}
	assert_int_equal(p9_server_nfids(f->s), 2);
	assert_true(host_exists(f, "file"));
	assert_false(host_exists(f, "nf") || host_exists(f, "ns") ||
		     host_exists(f, "nn") || host_exists(f, "nr") ||
		     host_exists(f, "nl") || host_exists(f, "nd"));
	/* The whole messages still work after all that. */
	OK(f, mk(TREAD, "484", 2, (uint64_t)0, 5));
	assert_memory_equal(f->r + 11, "hello", 5);
	fx_free(f);
}

/* Open fids (host fds) are bounded by half of RLIMIT_NOFILE. */
static void
test_open_limit(void **state)
{
	struct rlimit old, low;
	struct fx *f;
	uint32_t n;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 128;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	f = fx_attached(false);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	for (n = 2; n < 100; n++) {
		assert_int_equal(walk(f, ROOT, n, 1, "file", 0, 0, 0), 1);
		if (rpc(f, mk(TLOPEN, "44", n, O_RDONLY)))
			break;
	}
	assert_int_equal(n, 2 + 64);
	assert_int_equal(le(f->r + 7, 4), EMFILE);
	FAILS(f, mk(TLCREATE, "4s444", n, "x", O_RDWR, 0644, 0), EMFILE);
	OK(f, mk(TCLUNK, "4", 2));
	OK(f, mk(TLOPEN, "44", n, O_RDONLY));
	/* An open directory serves as the directory of a mkdir. */
	assert_int_equal(walk(f, ROOT, 200, 0, 0, 0, 0, 0), 0);
	FAILS(f, mk(TLOPEN, "44", 200, O_RDONLY | O_DIRECTORY), EMFILE);
	OK(f, mk(TCLUNK, "4", 3));
	OK(f, mk(TLOPEN, "44", 200, O_RDONLY | O_DIRECTORY));
	OK(f, mk(TMKDIR, "4s44", 200, "viaopen", 0755, 0));
	assert_true(host_exists(f, "viaopen"));
	fx_free(f);
}

/* The fid table has a bound; past it, ENFILE, and clunks make room. */
static void
test_fid_limit(void **state)
{
	struct fx *f = fx_attached(false);
	uint32_t n;

	(void)state;
	for (n = 2; n < P9_MAX_FIDS + 10; n++)
		if (rpc(f, mk(TWALK, "442", ROOT, n, 0)))
			break;
	assert_int_equal(le(f->r + 7, 4), ENFILE);
	assert_int_equal(p9_server_nfids(f->s), P9_MAX_FIDS);
	OK(f, mk(TCLUNK, "4", 2));
	OK(f, mk(TWALK, "442", ROOT, n, 0));
	fx_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_version),
	    cmocka_unit_test(test_walk),
	    cmocka_unit_test(test_qid_across_devices),
	    cmocka_unit_test(test_dotdot_stays_inside),
	    cmocka_unit_test(test_host_symlinks),
	    cmocka_unit_test(test_guest_symlink_out),
	    cmocka_unit_test(test_read_write),
	    cmocka_unit_test(test_create_and_remove),
	    cmocka_unit_test(test_rename),
	    cmocka_unit_test(test_attrs),
	    cmocka_unit_test(test_xattrs),
	    cmocka_unit_test(test_readdir),
	    cmocka_unit_test(test_read_only),
	    cmocka_unit_test(test_bad_framing),
	    cmocka_unit_test(test_truncated_fields),
	    cmocka_unit_test(test_open_limit),
	    cmocka_unit_test(test_fid_limit),
	};

	umask(022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
