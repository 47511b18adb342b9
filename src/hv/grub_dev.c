/*
 * grub-bhyve's devices (grub_dev.h): device.map, (host) files, disk
 * images (partitions, LVM volumes and the file systems on them), ls and
 * the device list behind search.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "grub_dev.h"
#include "grub_fs.h"
#include "grub_lvm.h"
#include "grub_part.h"

#define HOST_DEV "host"

static const char *
skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static int
check_name(const struct gdev_map *m, const char *name, size_t n, char *err,
	   size_t errlen)
{
	if (n == 0 || n >= GDEV_NAME_MAX || strcspn(name, ", \t") < n) {
		snprintf(err, errlen,
			 "bad device name '(%.*s)': use e.g. (hd0) or (cd0)",
			 (int)n, name);
		return -1;
	}
	if (n == strlen(HOST_DEV) && !strncmp(name, HOST_DEV, n)) {
		snprintf(err, errlen,
			 "(host) is built in and cannot be mapped");
		return -1;
	}
	for (int i = 0; i < m->n; i++) {
		if (strlen(m->dev[i].name) == n &&
		    !strncmp(m->dev[i].name, name, n)) {
			snprintf(err, errlen, "(%.*s) is mapped twice", (int)n,
				 name);
			return -1;
		}
	}
	return 0;
}

int
gdev_map_add_line(struct gdev_map *m, const char *line, char *err,
		  size_t errlen)
{
	const char *s = skip_space(line), *close, *path;
	size_t plen;
	struct stat st;
	struct gdev *d;

	if (*s == '\0' || *s == '#' || *s == '\n' || *s == '\r')
		return 0;
	if (*s != '(') {
		snprintf(err, errlen,
			 "no open parenthesis: expected a line "
			 "like '(hd0) /path/disk.img'");
		return -1;
	}
	close = strchr(s, ')');
	if (!close) {
		snprintf(err, errlen, "no close parenthesis");
		return -1;
	}
	if (check_name(m, s + 1, close - s - 1, err, errlen) < 0)
		return -1;
	path = skip_space(close + 1);
	plen = strlen(path);
	while (plen && isspace((unsigned char)path[plen - 1]))
		plen--;
	if (plen == 0 || plen >= GDEV_PATH_MAX) {
		snprintf(err, errlen, "no file name after (%.*s)",
			 (int)(close - s - 1), s + 1);
		return -1;
	}
	if (m->n == GDEV_MAX) {
		snprintf(err, errlen, "more than %d devices", GDEV_MAX);
		return -1;
	}
	d = &m->dev[m->n];
	snprintf(d->name, sizeof(d->name), "%.*s", (int)(close - s - 1), s + 1);
	snprintf(d->path, sizeof(d->path), "%.*s", (int)plen, path);
	if (stat(d->path, &st) < 0) {
		snprintf(err, errlen, "%s: %s", d->path, strerror(errno));
		return -1;
	}
	m->n++;
	return 0;
}

int
gdev_map_load(struct gdev_map *m, const char *file, char *err, size_t errlen)
{
	char line[GDEV_PATH_MAX + 64], why[GDEV_PATH_MAX + 64];
	FILE *f = fopen(file, "r");
	int lineno = 0;

	if (!f) {
		snprintf(err, errlen, "cannot open device map %s: %s", file,
			 strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (gdev_map_add_line(m, line, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%d: %s", file, lineno, why);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

const struct gdev *
gdev_find(const struct gdev_map *m, const char *name)
{
	size_t n = strcspn(name, ",");

	for (int i = 0; m && i < m->n; i++)
		if (strlen(m->dev[i].name) == n &&
		    !strncmp(m->dev[i].name, name, n))
			return &m->dev[i];
	return NULL;
}

int
gdev_split(const char *root, const char *name, char *dev, size_t devlen,
	   const char **path, char *err, size_t errlen)
{
	const char *close;
	size_t n;

	if (name[0] == '(' && (close = strchr(name, ')'))) {
		n = close - name - 1;
		*path = close + 1;
		name++;
	} else if (name[0] == '/') {
		if (root[0] == '(')
			root++;
		n = strcspn(root, ")");
		*path = name;
		name = root;
	} else {
		snprintf(err, errlen, "invalid file name '%s'", name);
		return -1;
	}
	if (n == 0 || n >= devlen || (**path && **path != '/')) {
		snprintf(err, errlen, "invalid file name '%s%s'", n ? "" : "()",
			 *path);
		return -1;
	}
	snprintf(dev, devlen, "%.*s", (int)n, name);
	return 0;
}

static bool
is_host(const char *dev)
{
	size_t n = strcspn(dev, ",");

	return n == strlen(HOST_DEV) && !strncmp(dev, HOST_DEV, n);
}

static int
open_error(const char *path, int e, char *err, size_t errlen)
{
	if (e == ENOENT || e == ENOTDIR)
		snprintf(err, errlen, "file '%s' not found", path);
	else if (e == EXDEV || e == ELOOP)
		snprintf(err, errlen,
			 "'%s' leads outside the host directory (-H)", path);
	else
		snprintf(err, errlen, "cannot open '%s': %s", path,
			 strerror(e));
	return -1;
}

/*
 * A (host) file as the map allows it: the path itself, a path beneath
 * host_dir (openat2, RESOLVE_BENEATH: no "..", absolute symlink or magic
 * link out of it), or nothing. -1 with errno set, or with err filled
 * when (host) is off.
 */
static int
host_open(const struct gdev_map *m, const char *path, int flags, char *err,
	  size_t errlen)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC),
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	const char *rel = path;
	int dfd, fd, e;

	switch (m ? m->host : GDEV_HOST_ALL) {
	case GDEV_HOST_ALL:
		return open(*path ? path : "/", flags | O_CLOEXEC);
	case GDEV_HOST_OFF:
		snprintf(err, errlen,
			 "(host) is off: the root is a guest device; give "
			 "grub-bhyve -H DIR to reach the host files beneath "
			 "DIR");
		errno = EPERM;
		return -2;
	default:
		break;
	}
	dfd = open(m->host_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	while (*rel == '/')
		rel++;
	fd = (int)syscall(SYS_openat2, dfd, *rel ? rel : ".", &how,
			  sizeof(how));
	e = errno;
	close(dfd);
	errno = e;
	return fd;
}

/* host_open's failure in GRUB's words. */
static int
host_error(int r, const char *path, char *err, size_t errlen)
{
	return r == -2 ? -1 : open_error(path, errno, err, errlen);
}

/* ---- disk images: devices, partitions, LVM volumes ---- */

/* A device opened for reading: the images it needs and its byte range. */
struct node {
	int fds[GDEV_MAX];
	int nfds;
	struct gblk blk;
	bool partition;
	uint64_t start;
};

static void
node_close(struct node *n)
{
	for (int i = 0; i < n->nfds; i++)
		close(n->fds[i]);
	n->nfds = 0;
}

static int
open_disk(const struct gdev *d, struct node *n, struct gblk *b, char *err,
	  size_t errlen)
{
	uint64_t size;
	int fd = open(d->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || gblk_fd_size(fd, &size) < 0) {
		snprintf(err, errlen, "(%s): cannot read %s: %s", d->name,
			 d->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	n->fds[n->nfds++] = fd;
	gblk_init_fd(b, fd, size);
	return 0;
}

/* Every disk and partition, for the LVM scan (all images stay open). */
static struct gblk *
all_nodes(const struct gdev_map *m, struct node *n, int *count)
{
	int cap = GDEV_MAX * 4, k = 0;
	struct gblk *v = calloc(cap, sizeof(*v));
	struct gpart_table *t = malloc(sizeof(*t));
	char err[256];

	if (!v || !t) {
		free(v);
		free(t);
		return NULL;
	}
	for (int i = 0; i < m->n && k < cap; i++) {
		struct gblk disk;

		if (open_disk(&m->dev[i], n, &disk, err, sizeof(err)) < 0)
			continue;
		v[k++] = disk;
		gpart_scan(&disk, t, err, sizeof(err));
		for (int j = 0; j < t->n && k < cap; j++)
			if (gblk_sub(&disk, t->p[j].start, t->p[j].len,
				     &v[k]) == 0)
				k++;
	}
	free(t);
	*count = k;
	return v;
}

/* The logical volumes on the map's disks; n keeps their images open. */
static int
scan_lvm(const struct gdev_map *m, struct node *n, struct glvm_lv **lvs,
	 int *nlv)
{
	const struct gblk **pv;
	struct gblk *v;
	char err[256];
	int k = 0, r;

	v = all_nodes(m, n, &k);
	pv = calloc(k ? k : 1, sizeof(*pv));
	if (!v || !pv) {
		free(v);
		free(pv);
		return -1;
	}
	for (int i = 0; i < k; i++)
		pv[i] = &v[i];
	r = glvm_scan(pv, k, lvs, nlv, err, sizeof(err));
	free(pv);
	free(v);
	return r;
}

static int
open_lvm(const struct gdev_map *m, const char *dev, struct node *n, char *err,
	 size_t errlen)
{
	struct glvm_lv *lvs;
	int nlv, r = -1;

	if (scan_lvm(m, n, &lvs, &nlv) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(err, errlen, "disk '%s' not found", dev);
	for (int i = 0; i < nlv; i++) {
		if (strcmp(lvs[i].name, dev))
			continue;
		if (lvs[i].why[0]) {
			snprintf(err, errlen, "(%s): %s", dev, lvs[i].why);
			break;
		}
		n->blk = lvs[i].blk;
		r = 0;
		break;
	}
	free(lvs);
	if (r < 0)
		node_close(n);
	return r;
}

/* Open a device: "hd0", "hd0,msdos1", "hd0,gpt2", "lvm/vg-root". */
static int
node_open(const struct gdev_map *m, const char *dev, struct node *n,
	  char *err, size_t errlen)
{
	const char *comma = strchr(dev, ',');
	struct gpart_table *t;
	const struct gpart *p;
	const struct gdev *d;
	struct gblk disk;

	memset(n, 0, sizeof(*n));
	if (!strncmp(dev, "lvm/", 4))
		return open_lvm(m, dev, n, err, errlen);
	d = gdev_find(m, dev);
	if (!d) {
		snprintf(err, errlen, "disk '%s' not found", dev);
		return -1;
	}
	if (open_disk(d, n, &disk, err, errlen) < 0)
		return -1;
	if (!comma) {
		n->blk = disk;
		return 0;
	}
	t = malloc(sizeof(*t));
	if (!t) {
		node_close(n);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (gpart_scan(&disk, t, err, errlen) < 0 && t->n == 0) {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "(%s): %s", d->name, why);
		goto fail;
	}
	p = gpart_find(t, comma + 1);
	if (!p || gblk_sub(&disk, p->start, p->len, &n->blk) < 0) {
		snprintf(err, errlen, "disk '%s' not found", dev);
		goto fail;
	}
	n->partition = true;
	n->start = p->start;
	free(t);
	return 0;
fail:
	free(t);
	node_close(n);
	return -1;
}

/* A file system opened on a device, and a file in it. */
struct fsh {
	struct node node;
	struct gfs fs;
	struct gfs_node file;
};

static void
fsh_free(void *arg)
{
	struct fsh *h = arg;

	gfs_umount(&h->fs);
	node_close(&h->node);
	free(h);
}

static int
fsh_read(void *arg, uint64_t off, void *dst, uint64_t n, char *err,
	 size_t errlen)
{
	struct fsh *h = arg;

	if (n > SIZE_MAX)
		return -1;
	return gfs_read(&h->fs, &h->file, off, dst, (size_t)n, err, errlen);
}

/* Mount dev's file system; its type in words when it cannot be read. */
static struct fsh *
fsh_mount(const struct gdev_map *m, const char *dev, char *err, size_t errlen)
{
	struct fsh *h = calloc(1, sizeof(*h));
	char why[GDEV_PATH_MAX + 128];
	struct gfs_info other;
	int r;

	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (node_open(m, dev, &h->node, err, errlen) < 0) {
		free(h);
		return NULL;
	}
	r = gfs_mount(&h->node.blk, &h->fs, why, sizeof(why));
	if (r == 0)
		return h;
	if (r < 0)
		snprintf(err, errlen, "(%s): %s", dev, why);
	else if (gfs_probe_other(&h->node.blk, &other) == 0)
		snprintf(err, errlen,
			 "(%s): %s file systems are not supported: grub-bhyve "
			 "reads ext2/3/4, FAT and ISO9660",
			 dev, other.type);
	else
		snprintf(err, errlen, "unknown filesystem");
	fsh_free(h);
	return NULL;
}

/* Open path on dev's file system. */
static struct fsh *
fsh_open(const struct gdev_map *m, const char *dev, const char *path,
	 char *err, size_t errlen)
{
	struct fsh *h = fsh_mount(m, dev, err, errlen);

	if (h && gfs_lookup(&h->fs, path, &h->file, err, errlen) < 0) {
		fsh_free(h);
		return NULL;
	}
	return h;
}

/* ---- opening and reading files ---- */

static int
read_fd(int fd, const char *path, uint8_t *buf, size_t len, char *err,
	size_t errlen)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = read(fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "reading '%s': %s", path,
				 n ? strerror(errno) : "file shrank");
			return -1;
		}
		off += n;
	}
	return 0;
}

static int
too_big(const char *path, uint64_t size, uint64_t max, char *err,
	size_t errlen)
{
	if (size <= max)
		return 0;
	snprintf(err, errlen,
		 "file '%s' (%" PRIu64 " MiB) is bigger than the guest's memory",
		 path, size >> 20);
	return -1;
}

static int
open_host_file(const struct gdev_map *m, const char *path, uint64_t max,
	       size_t head_max, struct load_file *f, char *err, size_t errlen)
{
	struct stat st;
	uint8_t *head;
	size_t n;
	int fd = host_open(m, path, O_RDONLY, err, errlen);

	if (fd < 0)
		return host_error(fd, path, err, errlen);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "'%s' is not a regular file", path);
		close(fd);
		return -1;
	}
	if (too_big(path, (uint64_t)st.st_size, max, err, errlen) < 0) {
		close(fd);
		return -1;
	}
	n = (uint64_t)st.st_size < head_max ? (size_t)st.st_size : head_max;
	head = malloc(n ? n : 1);
	if (!head || read_fd(fd, path, head, n, err, errlen) < 0) {
		if (!head)
			snprintf(err, errlen, "out of memory reading '%s'",
				 path);
		free(head);
		close(fd);
		return -1;
	}
	/* All of it in memory: nothing left to read later. */
	if (n == (uint64_t)st.st_size) {
		close(fd);
		fd = -1;
	}
	*f = (struct load_file){.head = head,
				.head_len = n,
				.len = st.st_size,
				.fd = fd,
				.name = strdup(path)};
	if (!f->name)
		abort();
	return 0;
}

static int
open_image_file(const struct gdev_map *m, const char *dev, const char *path,
		uint64_t max, size_t head_max, struct load_file *f, char *err,
		size_t errlen)
{
	struct fsh *h = fsh_open(m, dev, *path ? path : "/", err, errlen);
	uint8_t *head;
	size_t n;

	if (!h)
		return -1;
	if (h->file.kind != GFS_FILE) {
		snprintf(err, errlen, "'%s' is not a regular file", path);
		fsh_free(h);
		return -1;
	}
	if (too_big(path, h->file.size, max, err, errlen) < 0) {
		fsh_free(h);
		return -1;
	}
	n = h->file.size < head_max ? (size_t)h->file.size : head_max;
	head = malloc(n ? n : 1);
	if (!head) {
		snprintf(err, errlen, "out of memory reading '%s'", path);
		fsh_free(h);
		return -1;
	}
	if (gfs_read(&h->fs, &h->file, 0, head, n, err, errlen) < 0) {
		free(head);
		fsh_free(h);
		return -1;
	}
	*f = (struct load_file){.head = head,
				.head_len = n,
				.len = h->file.size,
				.fd = -1,
				.name = strdup(path)};
	if (!f->name)
		abort();
	/* The rest is read at boot, straight into guest memory. */
	if (n < h->file.size) {
		f->read = fsh_read;
		f->release = fsh_free;
		f->src = h;
	} else {
		fsh_free(h);
	}
	return 0;
}

int
gdev_open(const struct gdev_map *m, const char *root, const char *name,
	  uint64_t max, size_t head_max, struct load_file *f, char *err,
	  size_t errlen)
{
	char dev[GDEV_NAME_MAX + 160];
	const char *path;

	if (gdev_split(root, name, dev, sizeof(dev), &path, err, errlen) < 0)
		return -1;
	if (is_host(dev))
		return open_host_file(m, path, max, head_max, f, err, errlen);
	return open_image_file(m, dev, path, max, head_max, f, err, errlen);
}

int
gdev_read(const struct gdev_map *m, const char *root, const char *name,
	  uint64_t max, uint8_t **data, size_t *len, char *err, size_t errlen)
{
	struct load_file f;

	if (gdev_open(m, root, name, max, SIZE_MAX, &f, err, errlen) < 0)
		return -1;
	*data = (uint8_t *)f.head;
	*len = f.head_len;
	f.head = NULL;
	load_file_close(&f);
	return 0;
}

bool
gdev_exists(const struct gdev_map *m, const char *dev, const char *path)
{
	char err[GDEV_PATH_MAX + 256];
	struct fsh *h;
	int fd;

	if (is_host(dev)) {
		fd = host_open(m, path, O_PATH, err, sizeof(err));
		if (fd >= 0)
			close(fd);
		return fd >= 0;
	}
	h = fsh_open(m, dev, path, err, sizeof(err));
	if (h)
		fsh_free(h);
	return h != NULL;
}

/* ---- listing ---- */

struct ls_entry {
	char *name;
	bool dir;
	uint64_t size;
};

struct ls_list {
	struct ls_entry *v;
	size_t n, cap;
	bool all;
};

static int
cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct ls_entry *)a)->name,
		      ((const struct ls_entry *)b)->name);
}

static void
print_entries(struct ls_list *l, bool long_fmt, FILE *out)
{
	qsort(l->v, l->n, sizeof(*l->v), cmp_entry);
	for (size_t i = 0; i < l->n; i++) {
		struct ls_entry *e = &l->v[i];

		if (long_fmt && e->dir)
			fprintf(out, "DIR          %s/\n", e->name);
		else if (long_fmt)
			fprintf(out, "%-12" PRIu64 " %s\n", e->size, e->name);
		else
			fprintf(out, "%s%s ", e->name, e->dir ? "/" : "");
	}
	if (!long_fmt)
		fputc('\n', out);
}

static void
free_entries(struct ls_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
}

static int
add_entry(struct ls_list *l, const char *name, bool dir, uint64_t size)
{
	if (name[0] == '.' && !l->all)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct ls_entry *nv = realloc(l->v, cap * sizeof(*nv));

		if (!nv)
			return -1;
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n].name = strdup(name);
	if (!l->v[l->n].name)
		return -1;
	l->v[l->n].dir = dir;
	l->v[l->n++].size = size;
	return 0;
}

static int
ls_host_dir(const struct gdev_map *m, int fd, bool all, bool long_fmt,
	    FILE *out)
{
	struct ls_list l = {.all = all};
	/* Beneath -H DIR, a symlink is not followed even to stat it. */
	int nofollow = m && m->host == GDEV_HOST_DIR ? AT_SYMLINK_NOFOLLOW : 0;
	DIR *d = fdopendir(fd);
	struct dirent *e;

	if (!d) {
		close(fd);
		return -1;
	}
	while ((e = readdir(d))) {
		struct stat st;
		bool dir;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		dir = fstatat(dirfd(d), e->d_name, &st, nofollow) == 0 &&
		      S_ISDIR(st.st_mode);
		if (add_entry(&l, e->d_name, dir,
			      dir ? 0 : (uint64_t)st.st_size) < 0)
			break;
	}
	closedir(d);
	print_entries(&l, long_fmt, out);
	free_entries(&l);
	return 0;
}

static int
ls_host(const struct gdev_map *m, const char *path, bool all, bool long_fmt,
	FILE *out, char *err, size_t errlen)
{
	struct stat st;
	const char *base;
	int fd = host_open(m, path, O_RDONLY, err, errlen);

	if (fd < 0)
		return host_error(fd, path, err, errlen);
	if (fstat(fd, &st) < 0) {
		close(fd);
		return open_error(path, errno, err, errlen);
	}
	if (S_ISDIR(st.st_mode)) {
		if (ls_host_dir(m, fd, all, long_fmt, out) < 0)
			return open_error(path, errno, err, errlen);
		return 0;
	}
	close(fd);
	base = strrchr(path, '/');
	fprintf(out, "%s\n", base ? base + 1 : path);
	return 0;
}

struct image_ls {
	struct ls_list l;
	const struct gfs *fs;
	bool long_fmt;
};

static int
image_entry(void *arg, const char *name, const struct gfs_node *n)
{
	struct image_ls *x = arg;
	struct gfs_node s = *n;
	char err[256];

	if (x->long_fmt && s.kind != GFS_DIR)
		gfs_stat(x->fs, &s, err, sizeof(err));
	return add_entry(&x->l, name, s.kind == GFS_DIR, s.size) < 0;
}

static int
ls_image(const struct gdev_map *m, const char *dev, const char *path, bool all,
	 bool long_fmt, FILE *out, char *err, size_t errlen)
{
	struct fsh *h = fsh_open(m, dev, path, err, errlen);
	struct image_ls x = {.l = {.all = all}, .long_fmt = long_fmt};
	const char *base;
	int r = 0;

	if (!h)
		return -1;
	x.fs = &h->fs;
	if (h->file.kind == GFS_DIR) {
		r = gfs_readdir(&h->fs, &h->file, image_entry, &x, err, errlen);
		if (r == 0)
			print_entries(&x.l, long_fmt, out);
		free_entries(&x.l);
	} else {
		base = strrchr(path, '/');
		fprintf(out, "%s\n", base ? base + 1 : path);
	}
	fsh_free(h);
	return r;
}

/* ---- the device list ---- */

/* Called with each device's name and range; non-zero stops. */
typedef int (*dev_fn)(void *arg, const char *name, const struct gblk *b,
		      bool partition, uint64_t start);

/* (host) aside: each disk, its partitions, then the LVM volumes. */
static void
each_device(const struct gdev_map *m, dev_fn fn, void *arg)
{
	struct gpart_table *t = malloc(sizeof(*t));
	struct node n = {0};
	struct glvm_lv *lvs;
	char err[256], name[GDEV_NAME_MAX + 32];
	int nlv;

	if (!t)
		return;
	for (int i = 0; m && i < m->n; i++) {
		struct gblk disk;
		struct node dn = {0};

		if (open_disk(&m->dev[i], &dn, &disk, err, sizeof(err)) < 0)
			continue;
		fn(arg, m->dev[i].name, &disk, false, 0);
		gpart_scan(&disk, t, err, sizeof(err));
		for (int j = 0; j < t->n; j++) {
			struct gblk p;

			if (gblk_sub(&disk, t->p[j].start, t->p[j].len, &p) < 0)
				continue;
			snprintf(name, sizeof(name), "%s,%s", m->dev[i].name,
				 t->p[j].name);
			fn(arg, name, &p, true, t->p[j].start);
		}
		node_close(&dn);
	}
	free(t);
	if (!m || m->n == 0 || scan_lvm(m, &n, &lvs, &nlv) < 0)
		return;
	for (int i = 0; i < nlv; i++)
		fn(arg, lvs[i].name, &lvs[i].blk, false, 0);
	free(lvs);
	node_close(&n);
}

static void
probe(const struct gblk *b, struct gdev_fsinfo *fi)
{
	struct gfs_info info = {0};
	struct gfs fs;
	char err[256];

	if (gfs_mount(b, &fs, err, sizeof(err)) == 0) {
		fs.ops->info(fs.fs, &info);
		gfs_umount(&fs);
		fi->readable = true;
	} else if (gfs_probe_other(b, &info) < 0) {
		return;
	}
	snprintf(fi->type, sizeof(fi->type), "%s", info.type);
	snprintf(fi->uuid, sizeof(fi->uuid), "%s", info.uuid);
	snprintf(fi->label, sizeof(fi->label), "%s", info.label);
}

struct list_ctx {
	struct gdev_fsinfo *v;
	int n, cap;
};

static int
list_dev(void *arg, const char *name, const struct gblk *b, bool partition,
	 uint64_t start)
{
	struct list_ctx *c = arg;
	struct gdev_fsinfo *fi;

	if (c->n == c->cap) {
		int cap = c->cap ? c->cap * 2 : 16;
		struct gdev_fsinfo *nv = realloc(c->v, cap * sizeof(*nv));

		if (!nv)
			return 1;
		c->v = nv;
		c->cap = cap;
	}
	fi = &c->v[c->n++];
	memset(fi, 0, sizeof(*fi));
	snprintf(fi->dev, sizeof(fi->dev), "%s", name);
	fi->partition = partition;
	fi->start = start;
	fi->size = b->size;
	probe(b, fi);
	return 0;
}

int
gdev_list(const struct gdev_map *m, struct gdev_fsinfo **v)
{
	struct list_ctx c = {0};

	if (!m || m->host != GDEV_HOST_OFF) {
		c.v = calloc(1, sizeof(*c.v));
		if (!c.v)
			return 0;
		c.cap = c.n = 1;
		snprintf(c.v[0].dev, sizeof(c.v[0].dev), "%s", HOST_DEV);
		snprintf(c.v[0].type, sizeof(c.v[0].type), "hostfs");
		c.v[0].readable = true;
	}
	each_device(m, list_dev, &c);
	*v = c.v;
	return c.n;
}

static int
print_name(void *arg, const char *name, const struct gblk *b, bool partition,
	   uint64_t start)
{
	(void)b;
	(void)partition;
	(void)start;
	fprintf(arg, " (%s)", name);
	return 0;
}

static void
print_kib(FILE *out, const char *what, uint64_t bytes)
{
	uint64_t sectors = bytes / 512;

	fprintf(out, " - %s %" PRIu64 "%sKiB", what, sectors >> 1,
		sectors & 1 ? ".5" : "");
}

/* GRUB's line for "ls (dev)" (grub_normal_print_device_info). */
static void
print_info(FILE *out, const struct gdev_fsinfo *fi, int64_t mtime)
{
	if (fi->partition)
		fprintf(out, "\tPartition %s: ", fi->dev);
	else
		fprintf(out, "Device %s: ", fi->dev);
	if (fi->readable) {
		fprintf(out, "Filesystem type %s",
			strcmp(fi->type, "ext2") ? fi->type : "ext*");
		if (fi->label[0])
			fprintf(out, " - Label `%s'", fi->label);
		if (mtime > 0) {
			time_t t = (time_t)mtime;
			struct tm tm;
			char buf[64];

			gmtime_r(&t, &tm);
			strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S %A", &tm);
			fprintf(out, " - Last modification time %s", buf);
		}
	} else if (fi->type[0]) {
		fprintf(out, "Filesystem type %s (not supported by grub-bhyve)",
			fi->type);
	} else {
		fputs("No known filesystem detected", out);
	}
	if (fi->uuid[0])
		fprintf(out, ", UUID %s", fi->uuid);
	if (fi->partition)
		print_kib(out, "Partition start at", fi->start);
	else
		fputs(" - Sector size 512B", out);
	print_kib(out, "Total size", fi->size);
	fputc('\n', out);
}

static int
ls_device(const struct gdev_map *m, const char *dev, FILE *out, char *err,
	  size_t errlen)
{
	struct gdev_fsinfo fi = {0};
	struct gfs_info info = {0};
	struct node n;
	struct gfs fs;
	char why[256];

	if (is_host(dev)) {
		if (m && m->host == GDEV_HOST_OFF)
			return host_error(host_open(m, "/", O_PATH, err,
						    errlen),
					  "/", err, errlen);
		fprintf(out,
			"Device %s: Filesystem type hostfs (the host's "
			"files%s%s).\n",
			dev, m && m->host == GDEV_HOST_DIR ? " beneath " : "",
			m && m->host == GDEV_HOST_DIR ? m->host_dir : "");
		return 0;
	}
	if (node_open(m, dev, &n, err, errlen) < 0)
		return -1;
	snprintf(fi.dev, sizeof(fi.dev), "%s", dev);
	fi.partition = n.partition;
	fi.start = n.start;
	fi.size = n.blk.size;
	probe(&n.blk, &fi);
	if (fi.readable && gfs_mount(&n.blk, &fs, why, sizeof(why)) == 0) {
		fs.ops->info(fs.fs, &info);
		gfs_umount(&fs);
	}
	print_info(out, &fi, info.mtime);
	node_close(&n);
	return 0;
}

int
gdev_ls(const struct gdev_map *m, const char *root, const char *name, bool all,
	bool long_fmt, FILE *out, char *err, size_t errlen)
{
	char dev[GDEV_NAME_MAX + 160];
	const char *path;

	if (!name || !*name) {
		bool first = true;

		if (!m || m->host != GDEV_HOST_OFF) {
			fprintf(out, "(%s)", HOST_DEV);
			first = false;
		}
		/* print_name puts a blank before each name */
		if (first && m && m->n) {
			char *buf = NULL;
			size_t len = 0;
			FILE *mem = open_memstream(&buf, &len);

			if (mem) {
				each_device(m, print_name, mem);
				fclose(mem);
				fputs(buf[0] == ' ' ? buf + 1 : buf, out);
				free(buf);
			}
		} else {
			each_device(m, print_name, out);
		}
		fputc('\n', out);
		return 0;
	}
	if (gdev_split(root, name, dev, sizeof(dev), &path, err, errlen) < 0)
		return -1;
	if (name[0] == '(' && *path == '\0')
		return ls_device(m, dev, out, err, errlen);
	if (is_host(dev))
		return ls_host(m, path, all, long_fmt, out, err, errlen);
	return ls_image(m, dev, *path ? path : "/", all, long_fmt, out, err,
			errlen);
}
