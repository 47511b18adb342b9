/*
 * The 9P2000.L server (p9_server.h).
 *
 * Message layout (9P2000.L): size[4] type[1] tag[2] then the type's
 * fields, little-endian; a string is len[2] then len bytes, no NUL; a qid
 * is type[1] version[4] path[8]. Every failure is Rlerror ecode[4] with a
 * Linux errno, which is what the host's calls return: no translation.
 *
 * A fid names a path relative to the shared directory ("" is its root),
 * plus an open file descriptor once Tlopen or Tlcreate opened it, or the
 * bytes of an extended attribute after Txattrwalk. Each use resolves the
 * path again with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): a
 * symbolic link anywhere on the path, planted by the host or made by the
 * guest, is refused (ELOOP) instead of followed, and ".." never leaves
 * the share (Twalk handles ".." itself; at the root it stays there).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "p9_server.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452 /* Linux 6.6, x86-64 */
#endif

/* Message types (9P2000.L; R = T + 1). */
enum {
	P9_TLERROR = 6,
	P9_RLERROR = 7,
	P9_TSTATFS = 8,
	P9_TLOPEN = 12,
	P9_TLCREATE = 14,
	P9_TSYMLINK = 16,
	P9_TMKNOD = 18,
	P9_TRENAME = 20,
	P9_TREADLINK = 22,
	P9_TGETATTR = 24,
	P9_TSETATTR = 26,
	P9_TXATTRWALK = 30,
	P9_TXATTRCREATE = 32,
	P9_TREADDIR = 40,
	P9_TFSYNC = 50,
	P9_TLOCK = 52,
	P9_TGETLOCK = 54,
	P9_TLINK = 70,
	P9_TMKDIR = 72,
	P9_TRENAMEAT = 74,
	P9_TUNLINKAT = 76,
	P9_TVERSION = 100,
	P9_TAUTH = 102,
	P9_TATTACH = 104,
	P9_TFLUSH = 108,
	P9_TWALK = 110,
	P9_TREAD = 116,
	P9_TWRITE = 118,
	P9_TCLUNK = 120,
	P9_TREMOVE = 122,
};

#define P9_NOFID 0xffffffffu
#define P9_QTDIR 0x80
#define P9_QTSYMLINK 0x02
#define P9_QTFILE 0x00
#define P9_QID_SIZE 13
/* Tgetattr: the basic fields are valid (mode .. blocks). */
#define P9_GETATTR_BASIC 0x000007ffULL
/* Tsetattr's valid bits. */
#define P9_SETATTR_MODE 0x001
#define P9_SETATTR_UID 0x002
#define P9_SETATTR_GID 0x004
#define P9_SETATTR_SIZE 0x008
#define P9_SETATTR_ATIME 0x010
#define P9_SETATTR_MTIME 0x020
#define P9_SETATTR_ATIME_SET 0x080
#define P9_SETATTR_MTIME_SET 0x100
#define P9_SETATTR_CHANGES 0x1ff
/* Rlock status, Rgetlock type. */
#define P9_LOCK_SUCCESS 0
#define P9_LOCK_TYPE_UNLCK 2
/* Tunlinkat flags: Linux's AT_REMOVEDIR. */
#define P9_AT_REMOVEDIR 0x200
/*
 * Tlopen and Tlcreate flags (P9_DOTL_*, the values of Linux's generic
 * O_* flags): what the host open may keep. O_CREAT and O_EXCL belong to
 * Tlcreate; O_DIRECT, O_ASYNC, O_NOATIME, O_PATH and O_TMPFILE are the
 * server's business, not the guest's.
 */
#define P9_DOTL_ACCMODE 03
#define P9_DOTL_KEEP (03 | 01000 | 02000 | 010000 | 0200000 | 04000000)
#define P9_DOTL_EXCL 0200
/* Extended attributes: Linux's XATTR_SIZE_MAX, XATTR_NAME_MAX. */
#define P9_XATTR_MAX 65536
#define P9_XATTR_NAME_MAX 255

#define P9_FID_BUCKETS 1024

enum fid_kind { FID_PATH, FID_OPEN, FID_XATTR };

struct p9_fid {
	struct p9_fid *next; /* in its hash bucket */
	uint32_t num;
	enum fid_kind kind;
	char *path;    /* beneath the share: "" or "a/b" */
	int fd;	       /* FID_OPEN: the open file or directory */
	int oflags;    /* FID_OPEN: how it was opened */
	uint8_t *xbuf; /* FID_XATTR: the value or the name list */
	size_t xlen;
};

struct p9_server {
	int root;
	bool ro;
	bool versioned;
	uint32_t msize_max;
	uint32_t msize;
	unsigned int nfids;
	unsigned int nopen, max_open; /* fids holding a host fd */
	struct p9_fid *fids[P9_FID_BUCKETS];
};

/* ---- reading a T-message ---- */

struct p9_in {
	const uint8_t *p;
	size_t len, off;
	bool bad; /* a field ran past the message */
};

static const uint8_t *
in_take(struct p9_in *in, size_t n)
{
	const uint8_t *p;

	if (in->bad || n > in->len - in->off) {
		in->bad = true;
		return NULL;
	}
	p = in->p + in->off;
	in->off += n;
	return p;
}

static uint64_t
in_le(struct p9_in *in, size_t n)
{
	const uint8_t *p = in_take(in, n);
	uint64_t v = 0;

	for (size_t i = 0; p && i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint8_t
get8(struct p9_in *in)
{
	return (uint8_t)in_le(in, 1);
}

static uint16_t
get16(struct p9_in *in)
{
	return (uint16_t)in_le(in, 2);
}

static uint32_t
get32(struct p9_in *in)
{
	return (uint32_t)in_le(in, 4);
}

static uint64_t
get64(struct p9_in *in)
{
	return in_le(in, 8);
}

/* A string's bytes, still in the message (not NUL-terminated). */
struct p9_str {
	const char *s;
	uint16_t len;
};

static struct p9_str
getstr(struct p9_in *in)
{
	struct p9_str str = {"", 0};
	uint16_t len = get16(in);
	const uint8_t *p = in_take(in, len);

	if (p) {
		str.s = (const char *)p;
		str.len = len;
	}
	return str;
}

/*
 * A string as a C string in buf (bufsz bytes): ENAMETOOLONG if it does
 * not fit, EINVAL if it holds a NUL (it would cut the name short).
 */
static int
str_copy(struct p9_str str, char *buf, size_t bufsz)
{
	if ((size_t)str.len >= bufsz)
		return ENAMETOOLONG;
	if (memchr(str.s, '\0', str.len))
		return EINVAL;
	memcpy(buf, str.s, str.len);
	buf[str.len] = '\0';
	return 0;
}

/*
 * A directory entry's name for a call that makes or removes one: one
 * component, so not empty, no '/', not "." or ".." (which name the
 * directory itself or its parent, never a new entry).
 */
static int
name_copy(struct p9_str str, char *buf)
{
	int err = str_copy(str, buf, NAME_MAX + 1);

	if (err)
		return err;
	if (!buf[0] || strchr(buf, '/'))
		return EINVAL;
	if (!strcmp(buf, ".") || !strcmp(buf, ".."))
		return EINVAL;
	return 0;
}

/* ---- writing an R-message ---- */

struct p9_out {
	uint8_t *p;
	size_t cap, off;
	bool over; /* did not fit */
};

static uint8_t *
out_take(struct p9_out *out, size_t n)
{
	uint8_t *p;

	if (out->over || n > out->cap - out->off) {
		out->over = true;
		return NULL;
	}
	p = out->p + out->off;
	out->off += n;
	return p;
}

static void
out_le(struct p9_out *out, uint64_t v, size_t n)
{
	uint8_t *p = out_take(out, n);

	for (size_t i = 0; p && i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
put8(struct p9_out *out, uint8_t v)
{
	out_le(out, v, 1);
}

static void
put32(struct p9_out *out, uint32_t v)
{
	out_le(out, v, 4);
}

static void
put64(struct p9_out *out, uint64_t v)
{
	out_le(out, v, 8);
}

static void
putstr(struct p9_out *out, const char *s, size_t len)
{
	uint8_t *p;

	if (len > UINT16_MAX) {
		out->over = true;
		return;
	}
	out_le(out, len, 2);
	p = out_take(out, len);
	if (p)
		memcpy(p, s, len);
}

static size_t
out_room(const struct p9_out *out)
{
	return out->over ? 0 : out->cap - out->off;
}

/*
 * A qid from what stat says: the inode, its kind and its mtime. The path
 * must name one file in the whole share, which can span file systems
 * (root=/ crosses into /proc, /sys, /tmp ...), where the same inode
 * number recurs: the roots of /proc and /sys are both 1, and a Linux
 * guest mounting with cache=loose takes one qid for one inode. So the
 * device is mixed into the top 16 bits (QEMU's multidevs=remap answers
 * the same problem): within one device the map stays one-to-one.
 */
static uint64_t
qid_path(const struct stat *st)
{
	uint64_t dev = (uint64_t)st->st_dev * 0x9e3779b97f4a7c15ull;

	return (uint64_t)st->st_ino ^ (dev & 0xffff000000000000ull);
}

static void
putqid(struct p9_out *out, const struct stat *st)
{
	uint8_t type = S_ISDIR(st->st_mode)   ? P9_QTDIR
		       : S_ISLNK(st->st_mode) ? P9_QTSYMLINK
					      : P9_QTFILE;

	put8(out, type);
	put32(out,
	      (uint32_t)st->st_mtim.tv_sec ^ (uint32_t)st->st_mtim.tv_nsec);
	put64(out, qid_path(st));
}

/* ---- fids ---- */

static struct p9_fid **
fid_slot(struct p9_server *s, uint32_t num)
{
	struct p9_fid **pp = &s->fids[num % P9_FID_BUCKETS];

	while (*pp && (*pp)->num != num)
		pp = &(*pp)->next;
	return pp;
}

static struct p9_fid *
fid_get(struct p9_server *s, uint32_t num)
{
	return *fid_slot(s, num);
}

/* A new fid num naming path (copied); NULL with *err set. */
static struct p9_fid *
fid_new(struct p9_server *s, uint32_t num, const char *path, int *err)
{
	struct p9_fid **pp = fid_slot(s, num), *f;

	if (num == P9_NOFID || *pp) {
		*err = EBADF;
		return NULL;
	}
	if (s->nfids >= P9_MAX_FIDS) {
		*err = ENFILE;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (f)
		f->path = strdup(path);
	if (!f || !f->path) {
		free(f);
		*err = ENOMEM;
		return NULL;
	}
	f->num = num;
	f->fd = -1;
	*pp = f;
	s->nfids++;
	return f;
}

static void
fid_release(struct p9_server *s, struct p9_fid *f)
{
	if (f->fd >= 0) {
		close(f->fd);
		s->nopen--;
	}
	free(f->xbuf);
	free(f->path);
	free(f);
}

static void
fid_clunk(struct p9_server *s, uint32_t num)
{
	struct p9_fid **pp = fid_slot(s, num), *f = *pp;

	if (!f)
		return;
	*pp = f->next;
	s->nfids--;
	fid_release(s, f);
}

static void
fid_clunk_all(struct p9_server *s)
{
	for (int b = 0; b < P9_FID_BUCKETS; b++) {
		while (s->fids[b]) {
			struct p9_fid *f = s->fids[b];

			s->fids[b] = f->next;
			fid_release(s, f);
		}
	}
	s->nfids = 0;
}

/* The fid num, which names a path (not an open file or xattr). */
static int
fid_path_only(struct p9_server *s, uint32_t num, struct p9_fid **fp)
{
	*fp = fid_get(s, num);
	if (!*fp)
		return EBADF;
	return (*fp)->kind == FID_PATH ? 0 : EBADF;
}

/*
 * The fid num, which names a file or directory, open or not: Linux's
 * client hands an inode's open fid for walks and as the directory of
 * mkdir and the like (v9fs_fid_find looks at the inode's open fids).
 */
static int
fid_named(struct p9_server *s, uint32_t num, struct p9_fid **fp)
{
	*fp = fid_get(s, num);
	if (!*fp)
		return EBADF;
	return (*fp)->kind == FID_XATTR ? EBADF : 0;
}

/* ---- paths beneath the share ---- */

/*
 * Open path beneath dirfd (a directory inside the share, or the share
 * itself) without following any symbolic link: not on the way
 * (RESOLVE_NO_SYMLINKS) and not the last component (O_NOFOLLOW; with
 * O_PATH that yields the link itself). An fd or -errno.
 */
static int
p9_openat(int dirfd, const char *path, uint64_t flags, uint64_t mode)
{
	struct open_how how = {
	    .flags = flags | O_CLOEXEC | O_NOFOLLOW,
	    .mode = mode,
	    .resolve =
		RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd =
	    syscall(SYS_openat2, dirfd, *path ? path : ".", &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

/* The fid's object as an O_PATH fd (-errno on failure). */
static int
fid_opath(struct p9_server *s, const struct p9_fid *f)
{
	return p9_openat(s->root, f->path, O_PATH, 0);
}

static int
fid_stat(struct p9_server *s, const struct p9_fid *f, struct stat *st)
{
	int fd = f->fd >= 0 ? f->fd : fid_opath(s, f), err = 0;

	if (fd < 0)
		return -fd;
	if (fstat(fd, st) < 0)
		err = errno;
	if (fd != f->fd)
		close(fd);
	return err;
}

/* The fid's directory as an O_PATH fd, for the *at calls on its entries. */
static int
fid_dir(struct p9_server *s, const struct p9_fid *f)
{
	return p9_openat(s->root, f->path, O_PATH | O_DIRECTORY, 0);
}

/*
 * The fid's parent directory as an O_PATH fd and its last component in
 * base; the share's root has none (EBUSY: it cannot move or go).
 */
static int
fid_parent(struct p9_server *s, const struct p9_fid *f, const char **base)
{
	const char *slash = strrchr(f->path, '/');
	char *parent;
	int fd;

	if (!*f->path)
		return -EBUSY;
	if (!slash) {
		*base = f->path;
		return p9_openat(s->root, "", O_PATH | O_DIRECTORY, 0);
	}
	*base = slash + 1;
	parent = strndup(f->path, (size_t)(slash - f->path));
	if (!parent)
		return -ENOMEM;
	fd = p9_openat(s->root, parent, O_PATH | O_DIRECTORY, 0);
	free(parent);
	return fd;
}

/* dir/name, or NULL (ENAMETOOLONG or ENOMEM in *err). */
static char *
path_join(const char *dir, const char *name, int *err)
{
	size_t dl = strlen(dir), nl = strlen(name);
	char *p;

	if (dl + 1 + nl >= PATH_MAX) {
		*err = ENAMETOOLONG;
		return NULL;
	}
	p = malloc(dl + 1 + nl + 1);
	if (!p) {
		*err = ENOMEM;
		return NULL;
	}
	memcpy(p, dir, dl);
	if (dl)
		p[dl++] = '/';
	memcpy(p + dl, name, nl + 1);
	return p;
}

/*
 * After a rename of from to to: every fid at or below from now names the
 * same object at its new place (Linux keeps fids across renames).
 */
static void
fids_renamed(struct p9_server *s, const char *from, const char *to)
{
	size_t fl = strlen(from);

	for (int b = 0; b < P9_FID_BUCKETS; b++) {
		for (struct p9_fid *f = s->fids[b]; f; f = f->next) {
			size_t nl;
			char *np;

			if (strncmp(f->path, from, fl) ||
			    (f->path[fl] && f->path[fl] != '/'))
				continue;
			nl = strlen(to) + strlen(f->path + fl);
			if (nl >= PATH_MAX)
				continue; /* stale: its uses fail (ENOENT) */
			np = malloc(nl + 1);
			if (!np)
				continue;
			memcpy(np, to, strlen(to));
			strcpy(np + strlen(to), f->path + fl);
			free(f->path);
			f->path = np;
		}
	}
}

/* ---- the messages ---- */

static int
p9_version(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t msize = get32(in);
	struct p9_str v = getstr(in);
	static const char dotl[] = "9P2000.L";

	if (in->bad)
		return EINVAL;
	/* A new session: every fid of the old one is gone (9P version). */
	fid_clunk_all(s);
	s->versioned = false;
	if (msize < P9_MSIZE_MIN)
		return EINVAL;
	s->msize = msize < s->msize_max ? msize : s->msize_max;
	/* Only 9P2000.L ("9P2000.L" or a ".L" dialect named after it). */
	if (v.len < sizeof(dotl) - 1 || memcmp(v.s, dotl, sizeof(dotl) - 1)) {
		put32(out, s->msize);
		putstr(out, "unknown", 7);
		return 0;
	}
	s->versioned = true;
	put32(out, s->msize);
	putstr(out, dotl, sizeof(dotl) - 1);
	return 0;
}

static int
p9_attach(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fid = get32(in);
	struct stat st;
	int err = 0;

	(void)get32(in);  /* afid: no authentication */
	(void)getstr(in); /* uname */
	(void)getstr(in); /* aname: one tree per share */
	(void)get32(in);  /* n_uname */
	if (in->bad)
		return EINVAL;
	if (fstat(s->root, &st) < 0)
		return errno;
	if (!fid_new(s, fid, "", &err))
		return err;
	putqid(out, &st);
	return 0;
}

/* One Twalk step from path (a directory, mode cur) by name, in place. */
static int
walk_step(char *path, mode_t cur, struct p9_str name)
{
	char comp[NAME_MAX + 1];
	size_t pl = strlen(path);
	char *slash;
	int err = str_copy(name, comp, sizeof(comp));

	if (err)
		return err;
	if (!comp[0] || strchr(comp, '/'))
		return EINVAL;
	if (!S_ISDIR(cur))
		return ENOTDIR;
	if (!strcmp(comp, "."))
		return 0;
	if (!strcmp(comp, "..")) {
		/* The share's root is its own parent. */
		slash = strrchr(path, '/');
		*(slash ? slash : path) = '\0';
		return 0;
	}
	if (pl + 1 + strlen(comp) >= PATH_MAX)
		return ENAMETOOLONG;
	if (pl)
		path[pl++] = '/';
	strcpy(path + pl, comp);
	return 0;
}

static int
p9_walk(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in), newfidn = get32(in);
	uint16_t nwname = get16(in), nwqid = 0;
	struct p9_str names[P9_MAXWELEM];
	char path[PATH_MAX];
	struct p9_fid *f, *nf;
	struct stat st = {0};
	uint8_t *nq;
	int err;

	if (in->bad || nwname > P9_MAXWELEM)
		return EINVAL;
	for (int i = 0; i < nwname; i++)
		names[i] = getstr(in);
	if (in->bad)
		return EINVAL;
	if ((err = fid_named(s, fidn, &f)))
		return err;
	if (newfidn == fidn ? f->kind != FID_PATH && nwname
			    : fid_get(s, newfidn) != NULL)
		return EBADF; /* an open fid cannot move; newfid is free */
	if (strlen(f->path) >= sizeof(path))
		return ENAMETOOLONG;
	strcpy(path, f->path);
	if (nwname && (err = fid_stat(s, f, &st)))
		return err;
	nq = out_take(out, 2);
	for (int i = 0; i < nwname; i++) {
		int fd;

		err = walk_step(path, st.st_mode, names[i]);
		if (!err) {
			fd = p9_openat(s->root, path, O_PATH, 0);
			err = fd < 0 ? -fd : 0;
			if (fd >= 0) {
				if (fstat(fd, &st) < 0)
					err = errno;
				close(fd);
			}
		}
		if (err) {
			/* The first name failing fails the walk (9P walk). */
			if (i == 0)
				return err;
			break;
		}
		putqid(out, &st);
		nwqid++;
	}
	if (nq) {
		nq[0] = (uint8_t)nwqid;
		nq[1] = (uint8_t)(nwqid >> 8);
	}
	if (nwqid < nwname)
		return 0; /* partial: newfid is not made */
	if (newfidn == fidn) {
		char *np = strdup(path);

		if (!np)
			return ENOMEM;
		free(f->path);
		f->path = np;
		return 0;
	}
	nf = fid_new(s, newfidn, path, &err);
	return nf ? 0 : err;
}

/* Tlopen/Tlcreate flags as host open flags; -1 if the access mode is bad. */
static int
open_flags(uint32_t flags)
{
	if ((flags & P9_DOTL_ACCMODE) == P9_DOTL_ACCMODE)
		return -1;
	return (int)(flags & P9_DOTL_KEEP);
}

static bool
open_writes(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY ||
	       (flags & (O_TRUNC | O_APPEND));
}

/*
 * Opened fds are regular files and directories only: O_NONBLOCK keeps
 * a FIFO from stalling the server on open, and a device node planted on
 * the host side is refused here, after the open that could not block.
 */
static int
open_checked(int dirfd, const char *path, int flags, mode_t mode,
	     struct stat *st)
{
	int fd = p9_openat(dirfd, path, (unsigned)flags | O_NONBLOCK, mode);

	if (fd < 0)
		return fd;
	if (fstat(fd, st) < 0 ||
	    !(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode))) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

static int
p9_lopen(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in);
	int flags = open_flags(get32(in)), fd, err;
	struct p9_fid *f;
	struct stat st;

	if (in->bad || flags < 0)
		return EINVAL;
	if ((err = fid_path_only(s, fidn, &f)))
		return err;
	if (s->ro && open_writes(flags))
		return EROFS;
	if (s->nopen >= s->max_open)
		return EMFILE;
	fd = open_checked(s->root, f->path, flags, 0, &st);
	if (fd < 0)
		return -fd;
	f->fd = fd;
	f->oflags = flags;
	f->kind = FID_OPEN;
	s->nopen++;
	putqid(out, &st);
	put32(out, 0); /* iounit: msize less the Rread header */
	return 0;
}

static int
p9_lcreate(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in);
	struct p9_str name = getstr(in);
	uint32_t rawflags = get32(in), mode = get32(in);
	int flags = open_flags(rawflags), dirfd, fd, err;
	char comp[NAME_MAX + 1], *np;
	struct p9_fid *f;
	struct stat st;

	(void)get32(in); /* gid: files belong to bhyve's user */
	if (in->bad || flags < 0)
		return EINVAL;
	if ((err = fid_path_only(s, fidn, &f)) || (err = name_copy(name, comp)))
		return err;
	if (s->ro)
		return EROFS;
	if (s->nopen >= s->max_open)
		return EMFILE;
	np = path_join(f->path, comp, &err);
	if (!np)
		return err;
	dirfd = fid_dir(s, f);
	if (dirfd < 0) {
		free(np);
		return -dirfd;
	}
	flags |= O_CREAT | (rawflags & P9_DOTL_EXCL ? O_EXCL : 0);
	fd = open_checked(dirfd, comp, flags, mode & 07777, &st);
	close(dirfd);
	if (fd < 0) {
		free(np);
		return -fd;
	}
	/* The fid is now the new file, open (9P2000.L lcreate). */
	free(f->path);
	f->path = np;
	f->fd = fd;
	f->oflags = flags;
	f->kind = FID_OPEN;
	s->nopen++;
	putqid(out, &st);
	put32(out, 0);
	return 0;
}

/* Stat dirfd/name (not following a link) and put its qid. */
static int
put_entry_qid(int dirfd, const char *name, struct p9_out *out)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno;
	putqid(out, &st);
	return 0;
}

/* The common start of the calls that make an entry in directory dfid. */
static int
make_start(struct p9_server *s, uint32_t dfid, struct p9_str name, char *comp,
	   int *dirfd)
{
	struct p9_fid *d;
	int err;

	if ((err = fid_named(s, dfid, &d)) || (err = name_copy(name, comp)))
		return err;
	if (s->ro)
		return EROFS;
	*dirfd = fid_dir(s, d);
	return *dirfd < 0 ? -*dirfd : 0;
}

static int
p9_mkdir(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t dfid = get32(in);
	struct p9_str name = getstr(in);
	uint32_t mode = get32(in);
	char comp[NAME_MAX + 1];
	int dirfd, err;

	(void)get32(in); /* gid */
	if (in->bad)
		return EINVAL;
	if ((err = make_start(s, dfid, name, comp, &dirfd)))
		return err;
	if (mkdirat(dirfd, comp, mode & 07777) < 0)
		err = errno;
	else
		err = put_entry_qid(dirfd, comp, out);
	close(dirfd);
	return err;
}

static int
p9_symlink(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t dfid = get32(in);
	struct p9_str name = getstr(in), target = getstr(in);
	char comp[NAME_MAX + 1], tgt[PATH_MAX];
	int dirfd, err;

	(void)get32(in); /* gid */
	if (in->bad)
		return EINVAL;
	/* Any target is fine: the server never follows a link. */
	if ((err = str_copy(target, tgt, sizeof(tgt))))
		return err;
	if (!tgt[0])
		return ENOENT;
	if ((err = make_start(s, dfid, name, comp, &dirfd)))
		return err;
	if (symlinkat(tgt, dirfd, comp) < 0)
		err = errno;
	else
		err = put_entry_qid(dirfd, comp, out);
	close(dirfd);
	return err;
}

static int
p9_mknod(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t dfid = get32(in);
	struct p9_str name = getstr(in);
	uint32_t mode = get32(in);
	char comp[NAME_MAX + 1];
	int dirfd, err;

	(void)get32(in); /* major */
	(void)get32(in); /* minor */
	(void)get32(in); /* gid */
	if (in->bad)
		return EINVAL;
	/* Regular files and FIFOs only: no device nodes on the host. */
	if ((mode & S_IFMT) != S_IFREG && (mode & S_IFMT) != S_IFIFO)
		return EPERM;
	if ((err = make_start(s, dfid, name, comp, &dirfd)))
		return err;
	if (mknodat(dirfd, comp, (mode & S_IFMT) | (mode & 07777), 0) < 0)
		err = errno;
	else
		err = put_entry_qid(dirfd, comp, out);
	close(dirfd);
	return err;
}

/* Rename dir1/name1 to dir2/name2 (fids) and move the fids beneath it. */
static int
rename_entry(struct p9_server *s, const struct p9_fid *d1, const char *name1,
	     const struct p9_fid *d2, const char *name2)
{
	char *from, *to;
	int fd1, fd2, err = 0;

	from = path_join(d1->path, name1, &err);
	to = from ? path_join(d2->path, name2, &err) : NULL;
	fd1 = to ? fid_dir(s, d1) : -err;
	fd2 = fd1 >= 0 ? fid_dir(s, d2) : fd1;
	if (fd1 < 0 || fd2 < 0)
		err = fd1 < 0 ? -fd1 : -fd2;
	else if (renameat2(fd1, name1, fd2, name2, 0) < 0)
		err = errno;
	else
		fids_renamed(s, from, to);
	if (fd1 >= 0)
		close(fd1);
	if (fd2 >= 0 && fd2 != fd1)
		close(fd2);
	free(from);
	free(to);
	return err;
}

static int
p9_renameat(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t odfid = get32(in);
	struct p9_str oname = getstr(in);
	uint32_t ndfid = get32(in);
	struct p9_str nname = getstr(in);
	char c1[NAME_MAX + 1], c2[NAME_MAX + 1];
	struct p9_fid *d1, *d2;
	int err;

	(void)out;
	if (in->bad)
		return EINVAL;
	if ((err = fid_named(s, odfid, &d1)) ||
	    (err = fid_named(s, ndfid, &d2)) || (err = name_copy(oname, c1)) ||
	    (err = name_copy(nname, c2)))
		return err;
	if (s->ro)
		return EROFS;
	return rename_entry(s, d1, c1, d2, c2);
}

/* A fid's parent as a fid-like path holder, for Trename and Tremove. */
static int
split_fid(const struct p9_fid *f, struct p9_fid *parent, const char **base)
{
	const char *slash = strrchr(f->path, '/');

	if (!*f->path)
		return EBUSY; /* the share's root */
	memset(parent, 0, sizeof(*parent));
	parent->fd = -1;
	parent->path =
	    slash ? strndup(f->path, (size_t)(slash - f->path)) : strdup("");
	if (!parent->path)
		return ENOMEM;
	*base = slash ? slash + 1 : f->path;
	return 0;
}

static int
p9_rename(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in), dfid = get32(in);
	struct p9_str name = getstr(in);
	struct p9_fid *f, *d, parent;
	char comp[NAME_MAX + 1], *base1;
	const char *base;
	int err;

	(void)out;
	if (in->bad)
		return EINVAL;
	if ((err = fid_named(s, fidn, &f)) || (err = fid_named(s, dfid, &d)) ||
	    (err = name_copy(name, comp)))
		return err;
	if (s->ro)
		return EROFS;
	if ((err = split_fid(f, &parent, &base)))
		return err;
	/* base points into f->path, which the rename rewrites. */
	base1 = strdup(base);
	err = base1 ? rename_entry(s, &parent, base1, d, comp) : ENOMEM;
	free(base1);
	free(parent.path);
	return err;
}

static int
p9_readlink(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in);
	char buf[PATH_MAX];
	struct p9_fid *f;
	struct stat st;
	ssize_t n;
	int fd, err = 0;

	if (in->bad)
		return EINVAL;
	f = fid_get(s, fidn);
	if (!f || f->kind == FID_XATTR)
		return EBADF;
	fd = fid_opath(s, f);
	if (fd < 0)
		return -fd;
	if (fstat(fd, &st) < 0)
		err = errno;
	else if (!S_ISLNK(st.st_mode))
		err = EINVAL;
	else if ((n = readlinkat(fd, "", buf, sizeof(buf))) < 0)
		err = errno;
	else if ((size_t)n >= sizeof(buf))
		err = ENAMETOOLONG;
	else
		putstr(out, buf, (size_t)n);
	close(fd);
	return err;
}

static int
p9_getattr(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in);
	struct p9_fid *f;
	struct stat st;
	int err;

	(void)get64(in); /* request_mask: the basic set is always there */
	if (in->bad)
		return EINVAL;
	f = fid_get(s, fidn);
	if (!f || f->kind == FID_XATTR)
		return EBADF;
	if ((err = fid_stat(s, f, &st)))
		return err;
	put64(out, P9_GETATTR_BASIC);
	putqid(out, &st);
	put32(out, st.st_mode);
	put32(out, st.st_uid);
	put32(out, st.st_gid);
	put64(out, st.st_nlink);
	put64(out, st.st_rdev);
	put64(out, (uint64_t)st.st_size);
	put64(out, (uint64_t)st.st_blksize);
	put64(out, (uint64_t)st.st_blocks);
	put64(out, (uint64_t)st.st_atim.tv_sec);
	put64(out, (uint64_t)st.st_atim.tv_nsec);
	put64(out, (uint64_t)st.st_mtim.tv_sec);
	put64(out, (uint64_t)st.st_mtim.tv_nsec);
	put64(out, (uint64_t)st.st_ctim.tv_sec);
	put64(out, (uint64_t)st.st_ctim.tv_nsec);
	for (int i = 0; i < 4; i++)
		put64(out, 0); /* btime (2), gen, data_version */
	return 0;
}

/*
 * chmod without following a link: fchmodat2 on the object's O_PATH fd
 * (AT_EMPTY_PATH), Linux 6.6; before it, fchmod on a read-only open.
 */
static int
set_mode(struct p9_server *s, const struct p9_fid *f, int fd, mode_t mode)
{
	struct stat st;
	int rfd, err = 0;

	if (fstat(fd, &st) < 0)
		return errno;
	if (S_ISLNK(st.st_mode))
		return EOPNOTSUPP; /* a link has no mode of its own */
	if (syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOSYS)
		return errno;
	rfd = open_checked(s->root, f->path, O_RDONLY, 0, &st);
	if (rfd < 0)
		return -rfd;
	if (fchmod(rfd, mode) < 0)
		err = errno;
	close(rfd);
	return err;
}

static int
set_size(struct p9_server *s, const struct p9_fid *f, uint64_t size)
{
	struct stat st;
	int fd, err = 0;

	if (size > INT64_MAX)
		return EFBIG;
	/* The guest's own open file when it can write (its mode may not). */
	if (f->kind == FID_OPEN && (f->oflags & O_ACCMODE) != O_RDONLY)
		return ftruncate(f->fd, (off_t)size) < 0 ? errno : 0;
	fd = open_checked(s->root, f->path, O_WRONLY, 0, &st);
	if (fd < 0)
		return -fd;
	if (!S_ISREG(st.st_mode))
		err = EINVAL;
	else if (ftruncate(fd, (off_t)size) < 0)
		err = errno;
	close(fd);
	return err;
}

static struct timespec
set_time(uint32_t valid, uint32_t bit, uint32_t setbit, uint64_t sec,
	 uint64_t nsec)
{
	struct timespec ts = {0, UTIME_OMIT};

	if (!(valid & bit))
		return ts;
	if (!(valid & setbit)) {
		ts.tv_nsec = UTIME_NOW;
		return ts;
	}
	ts.tv_sec = (time_t)sec;
	ts.tv_nsec = nsec < 1000000000 ? (long)nsec : 0;
	return ts;
}

static int
p9_setattr(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in), valid = get32(in), mode = get32(in);
	uint32_t uid = get32(in), gid = get32(in);
	uint64_t size = get64(in), as = get64(in), ans = get64(in);
	uint64_t ms = get64(in), mns = get64(in);
	struct timespec ts[2];
	struct p9_fid *f;
	int fd, err = 0;

	(void)out;
	if (in->bad)
		return EINVAL;
	f = fid_get(s, fidn);
	if (!f || f->kind == FID_XATTR)
		return EBADF;
	if (s->ro && (valid & P9_SETATTR_CHANGES))
		return EROFS;
	fd = fid_opath(s, f);
	if (fd < 0)
		return -fd;
	if (valid & P9_SETATTR_MODE)
		err = set_mode(s, f, fd, mode & 07777);
	if (!err && (valid & (P9_SETATTR_UID | P9_SETATTR_GID)) &&
	    fchownat(fd, "", valid & P9_SETATTR_UID ? uid : (uid_t)-1,
		     valid & P9_SETATTR_GID ? gid : (gid_t)-1,
		     AT_EMPTY_PATH) < 0)
		err = errno;
	if (!err && (valid & P9_SETATTR_SIZE))
		err = set_size(s, f, size);
	ts[0] =
	    set_time(valid, P9_SETATTR_ATIME, P9_SETATTR_ATIME_SET, as, ans);
	ts[1] =
	    set_time(valid, P9_SETATTR_MTIME, P9_SETATTR_MTIME_SET, ms, mns);
	if (!err && (valid & (P9_SETATTR_ATIME | P9_SETATTR_MTIME)) &&
	    utimensat(fd, "", ts, AT_EMPTY_PATH) < 0)
		err = errno;
	close(fd);
	return err;
}

/*
 * The fid's extended attribute name (or the name list when name is
 * empty) into a buffer. Read-only: values come with an open of the file
 * (flistxattr and fgetxattr want a real fd, not O_PATH); a link or a
 * special file has none we show.
 */
static int
xattr_fetch(struct p9_server *s, const struct p9_fid *f, const char *name,
	    uint8_t **buf, size_t *len)
{
	struct stat st;
	ssize_t n;
	int fd, err = 0;

	*buf = NULL;
	*len = 0;
	fd = f->fd >= 0 ? f->fd
			: open_checked(s->root, f->path, O_RDONLY, 0, &st);
	/*
	 * Links, special files and files bhyve cannot read show none: the
	 * guest asks for security.capability before each write, and a
	 * write-only file must not fail that way.
	 */
	if (fd == -EPERM || fd == -ELOOP || fd == -EACCES)
		return *name ? ENODATA : 0;
	if (fd < 0)
		return -fd;
	*buf = malloc(P9_XATTR_MAX);
	if (!*buf)
		err = ENOMEM;
	else if ((n = *name ? fgetxattr(fd, name, *buf, P9_XATTR_MAX)
			    : flistxattr(fd, (char *)*buf, P9_XATTR_MAX)) < 0)
		err = errno;
	else
		*len = (size_t)n;
	if (fd != f->fd)
		close(fd);
	if (err) {
		free(*buf);
		*buf = NULL;
	}
	return err;
}

static int
p9_xattrwalk(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in), newfidn = get32(in);
	struct p9_str name = getstr(in);
	char xname[P9_XATTR_NAME_MAX + 1];
	struct p9_fid *f, *nf;
	uint8_t *buf;
	size_t len;
	int err;

	if (in->bad)
		return EINVAL;
	f = fid_get(s, fidn);
	if (!f || f->kind == FID_XATTR)
		return EBADF;
	if ((err = str_copy(name, xname, sizeof(xname))))
		return err == ENAMETOOLONG ? ERANGE : err;
	if (fid_get(s, newfidn) || newfidn == P9_NOFID)
		return EBADF;
	if ((err = xattr_fetch(s, f, xname, &buf, &len)))
		return err;
	nf = fid_new(s, newfidn, f->path, &err);
	if (!nf) {
		free(buf);
		return err;
	}
	nf->kind = FID_XATTR;
	nf->xbuf = buf;
	nf->xlen = len;
	put64(out, len);
	return 0;
}

static int
p9_readdir(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in);
	uint64_t offset = get64(in);
	uint32_t count = get32(in);
	char buf[8192];
	struct p9_fid *f;
	struct stat dst, est = {0};
	uint8_t *cnt;
	size_t room, used = 0;
	ssize_t n;

	if (in->bad || offset > INT64_MAX)
		return EINVAL;
	f = fid_get(s, fidn);
	if (!f || f->kind != FID_OPEN)
		return EBADF;
	cnt = out_take(out, 4);
	room = out_room(out);
	if (count < room)
		room = count;
	/* The offset is a cookie from an earlier entry's d_off (or 0). */
	if (lseek(f->fd, (off_t)offset, SEEK_SET) < 0)
		return errno;
	/* Entries' qids as getattr's: on the directory's device. */
	if (fstat(f->fd, &dst) < 0)
		return errno;
	est.st_dev = dst.st_dev;
	for (;;) {
		n = getdents64(f->fd, buf, sizeof(buf));
		if (n < 0)
			return errno;
		if (n == 0)
			break;
		for (ssize_t o = 0; o < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + o);
			size_t nl = strlen(d->d_name);
			size_t need = P9_QID_SIZE + 8 + 1 + 2 + nl;

			if (used + need > room)
				goto full;
			put8(out, d->d_type == DT_DIR	? P9_QTDIR
				  : d->d_type == DT_LNK ? P9_QTSYMLINK
							: P9_QTFILE);
			put32(out, 0);
			est.st_ino = d->d_ino;
			put64(out, qid_path(&est));
			put64(out, (uint64_t)d->d_off);
			put8(out, d->d_type);
			putstr(out, d->d_name, nl);
			used += need;
			o += d->d_reclen;
		}
	}
full:
	if (cnt) {
		for (int i = 0; i < 4; i++)
			cnt[i] = (uint8_t)(used >> (8 * i));
	}
	return 0;
}

static int
p9_fsync(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in), datasync = get32(in);
	struct p9_fid *f;

	(void)out;
	if (in->bad)
		return EINVAL;
	f = fid_get(s, fidn);
	if (!f || f->kind != FID_OPEN)
		return EBADF;
	if ((datasync ? fdatasync(f->fd) : fsync(f->fd)) < 0)
		return errno;
	return 0;
}

/*
 * Tlock and Tgetlock: advisory locks granted as asked. The guest's
 * kernel keeps its own lock table (v9fs takes the lock locally too), so
 * its processes still exclude each other; the host's do not see them.
 */
static int
p9_lock(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in);

	(void)get8(in);	  /* type */
	(void)get32(in);  /* flags */
	(void)get64(in);  /* start */
	(void)get64(in);  /* length */
	(void)get32(in);  /* proc_id */
	(void)getstr(in); /* client_id */
	if (in->bad)
		return EINVAL;
	if (!fid_get(s, fidn))
		return EBADF;
	put8(out, P9_LOCK_SUCCESS);
	return 0;
}

static int
p9_getlock(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in);
	uint64_t start, length;
	uint32_t proc;
	struct p9_str client;

	(void)get8(in); /* type */
	start = get64(in);
	length = get64(in);
	proc = get32(in);
	client = getstr(in);
	if (in->bad)
		return EINVAL;
	if (!fid_get(s, fidn))
		return EBADF;
	/* Nothing conflicts: the range comes back unlocked. */
	put8(out, P9_LOCK_TYPE_UNLCK);
	put64(out, start);
	put64(out, length);
	put32(out, proc);
	putstr(out, client.s, client.len);
	return 0;
}

static int
p9_link(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t dfid = get32(in), fidn = get32(in);
	struct p9_str name = getstr(in);
	char comp[NAME_MAX + 1];
	const char *base;
	struct p9_fid *f;
	int dirfd, pfd, err = 0;

	(void)out;
	if (in->bad)
		return EINVAL;
	f = fid_get(s, fidn);
	if (!f || f->kind == FID_XATTR)
		return EBADF;
	if ((err = make_start(s, dfid, name, comp, &dirfd)))
		return err;
	pfd = fid_parent(s, f, &base);
	if (pfd < 0)
		err = -pfd;
	else if (linkat(pfd, base, dirfd, comp, 0) < 0) /* no link followed */
		err = errno;
	if (pfd >= 0)
		close(pfd);
	close(dirfd);
	return err;
}

static int
p9_unlinkat(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t dfid = get32(in);
	struct p9_str name = getstr(in);
	uint32_t flags = get32(in);
	char comp[NAME_MAX + 1];
	int dirfd, err;

	(void)out;
	if (in->bad || (flags & ~P9_AT_REMOVEDIR))
		return EINVAL;
	if ((err = make_start(s, dfid, name, comp, &dirfd)))
		return err;
	if (unlinkat(dirfd, comp, flags ? AT_REMOVEDIR : 0) < 0)
		err = errno;
	close(dirfd);
	return err;
}

static int
p9_statfs(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in);
	struct statfs sf;
	struct p9_fid *f;
	int fd, err = 0;

	if (in->bad)
		return EINVAL;
	f = fid_get(s, fidn);
	if (!f)
		return EBADF;
	fd = f->fd >= 0 ? f->fd : fid_opath(s, f);
	if (fd < 0)
		return -fd;
	if (fstatfs(fd, &sf) < 0)
		err = errno;
	if (fd != f->fd)
		close(fd);
	if (err)
		return err;
	put32(out, (uint32_t)sf.f_type);
	put32(out, (uint32_t)sf.f_bsize);
	put64(out, sf.f_blocks);
	put64(out, sf.f_bfree);
	put64(out, sf.f_bavail);
	put64(out, sf.f_files);
	put64(out, sf.f_ffree);
	put64(out, (uint64_t)(uint32_t)sf.f_fsid.__val[0] |
		       (uint64_t)(uint32_t)sf.f_fsid.__val[1] << 32);
	put32(out, (uint32_t)sf.f_namelen);
	return 0;
}

static int
p9_read(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in), count;
	uint64_t offset = get64(in);
	struct p9_fid *f;
	uint8_t *cnt, *data;
	size_t room;
	ssize_t n;

	count = get32(in);
	if (in->bad || offset > INT64_MAX)
		return EINVAL;
	f = fid_get(s, fidn);
	if (!f || f->kind == FID_PATH)
		return EBADF;
	cnt = out_take(out, 4);
	room = out_room(out);
	/* count is bounded by msize and the reply buffer (out's cap). */
	if (count < room)
		room = count;
	data = out_take(out, room);
	if (!cnt || !data)
		return EMSGSIZE;
	if (f->kind == FID_XATTR) {
		n = offset < f->xlen ? (ssize_t)(f->xlen - offset) : 0;
		if ((size_t)n > room)
			n = (ssize_t)room;
		if (n)
			memcpy(data, f->xbuf + offset, (size_t)n);
	} else {
		n = pread(f->fd, data, room, (off_t)offset);
		if (n < 0)
			return errno;
	}
	out->off -= room - (size_t)n;
	for (int i = 0; i < 4; i++)
		cnt[i] = (uint8_t)((size_t)n >> (8 * i));
	return 0;
}

static int
p9_write(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in);
	uint64_t offset = get64(in);
	uint32_t count = get32(in);
	const uint8_t *data = in_take(in, count); /* all in the message */
	struct p9_fid *f;
	ssize_t n;

	if (in->bad || offset > INT64_MAX)
		return EINVAL;
	f = fid_get(s, fidn);
	if (!f || f->kind != FID_OPEN)
		return EBADF;
	if (s->ro)
		return EROFS;
	n = pwrite(f->fd, data, count, (off_t)offset);
	if (n < 0)
		return errno;
	put32(out, (uint32_t)n);
	return 0;
}

static int
p9_clunk(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in);

	(void)out;
	if (in->bad)
		return EINVAL;
	if (!fid_get(s, fidn))
		return EBADF;
	fid_clunk(s, fidn);
	return 0;
}

static int
p9_remove(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	uint32_t fidn = get32(in);
	const char *base;
	struct p9_fid *f;
	struct stat st;
	int pfd, err = 0;

	(void)out;
	if (in->bad)
		return EINVAL;
	f = fid_get(s, fidn);
	if (!f)
		return EBADF;
	if (s->ro)
		err = EROFS;
	else if ((pfd = fid_parent(s, f, &base)) < 0)
		err = -pfd;
	else {
		if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    unlinkat(pfd, base,
			     S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
			err = errno;
		close(pfd);
	}
	/* The fid goes even when the remove fails (9P remove). */
	fid_clunk(s, fidn);
	return err;
}

static int
p9_flush(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	(void)s;
	(void)out;
	(void)get16(in); /* oldtag: requests finish before the next starts */
	return in->bad ? EINVAL : 0;
}

static int
p9_refuse(struct p9_server *s, struct p9_in *in, struct p9_out *out)
{
	(void)s;
	(void)in;
	(void)out;
	return EOPNOTSUPP;
}

typedef int (*p9_handler)(struct p9_server *, struct p9_in *, struct p9_out *);

static p9_handler
p9_lookup(uint8_t type)
{
	switch (type) {
	case P9_TSTATFS:
		return p9_statfs;
	case P9_TLOPEN:
		return p9_lopen;
	case P9_TLCREATE:
		return p9_lcreate;
	case P9_TSYMLINK:
		return p9_symlink;
	case P9_TMKNOD:
		return p9_mknod;
	case P9_TRENAME:
		return p9_rename;
	case P9_TREADLINK:
		return p9_readlink;
	case P9_TGETATTR:
		return p9_getattr;
	case P9_TSETATTR:
		return p9_setattr;
	case P9_TXATTRWALK:
		return p9_xattrwalk;
	case P9_TREADDIR:
		return p9_readdir;
	case P9_TFSYNC:
		return p9_fsync;
	case P9_TLOCK:
		return p9_lock;
	case P9_TGETLOCK:
		return p9_getlock;
	case P9_TLINK:
		return p9_link;
	case P9_TMKDIR:
		return p9_mkdir;
	case P9_TRENAMEAT:
		return p9_renameat;
	case P9_TUNLINKAT:
		return p9_unlinkat;
	case P9_TATTACH:
		return p9_attach;
	case P9_TFLUSH:
		return p9_flush;
	case P9_TWALK:
		return p9_walk;
	case P9_TREAD:
		return p9_read;
	case P9_TWRITE:
		return p9_write;
	case P9_TCLUNK:
		return p9_clunk;
	case P9_TREMOVE:
		return p9_remove;
	}
	/* Tauth, Txattrcreate (xattrs are read-only), 9P2000's own. */
	return p9_refuse;
}

static void
put_header(uint8_t *p, size_t size, uint8_t type, uint16_t tag)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(size >> (8 * i));
	p[4] = type;
	p[5] = (uint8_t)tag;
	p[6] = (uint8_t)(tag >> 8);
}

size_t
p9_server_handle(struct p9_server *s, const uint8_t *req, size_t reqlen,
		 uint8_t *resp, size_t resplen)
{
	struct p9_in in = {req, reqlen < 4 ? reqlen : 4, 0, false};
	uint32_t size = get32(&in);
	uint8_t type;
	uint16_t tag;
	struct p9_out out = {resp, resplen < s->msize ? resplen : s->msize,
			     P9_HDRSZ, false};
	int err;

	if (reqlen < P9_HDRSZ || resplen < P9_RLERROR_SIZE)
		return 0;
	type = req[4];
	tag = (uint16_t)(req[5] | req[6] << 8);
	/* The message is what its size says, never more than it has. */
	if (size < P9_HDRSZ || size > reqlen)
		err = EINVAL;
	else if (size > s->msize)
		err = EMSGSIZE;
	else if (type == P9_TVERSION) {
		in = (struct p9_in){req + P9_HDRSZ, size - P9_HDRSZ, 0, false};
		err = p9_version(s, &in, &out);
	} else if (!s->versioned)
		err = EPROTO; /* Tversion comes first */
	else {
		in = (struct p9_in){req + P9_HDRSZ, size - P9_HDRSZ, 0, false};
		err = p9_lookup(type)(s, &in, &out);
	}
	if (!err && out.over)
		err = EMSGSIZE;
	if (err) {
		put_header(resp, P9_RLERROR_SIZE, P9_RLERROR, tag);
		for (int i = 0; i < 4; i++)
			resp[7 + i] = (uint8_t)((uint32_t)err >> (8 * i));
		return P9_RLERROR_SIZE;
	}
	put_header(resp, out.off, (uint8_t)(type + 1), tag);
	return out.off;
}

struct p9_server *
p9_server_new(int dirfd, bool ro, uint32_t msize_max)
{
	struct p9_server *s = calloc(1, sizeof(*s));
	struct rlimit rl;

	if (!s)
		return NULL;
	s->root = dirfd;
	s->ro = ro;
	s->msize_max = msize_max < P9_MSIZE_MIN ? P9_MSIZE_MIN : msize_max;
	s->msize = s->msize_max;
	/* Half the descriptors bhyve may have: the rest stay for the others. */
	s->max_open =
	    getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
		? (unsigned int)(rl.rlim_cur / 2)
		: P9_MAX_OPEN;
	if (s->max_open > P9_MAX_OPEN)
		s->max_open = P9_MAX_OPEN;
	return s;
}

void
p9_server_free(struct p9_server *s)
{
	if (!s)
		return;
	fid_clunk_all(s);
	close(s->root);
	free(s);
}

uint32_t
p9_server_msize(const struct p9_server *s)
{
	return s->msize;
}

unsigned int
p9_server_nfids(const struct p9_server *s)
{
	return s->nfids;
}
