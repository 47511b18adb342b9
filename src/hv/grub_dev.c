/* grub-bhyve's devices: device.map, (host) files, ls (see grub_dev.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "grub_dev.h"

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

/* The host path behind dev + path, or -1 with GRUB's words in err. */
static int
host_path(const struct gdev_map *m, const char *dev, const char *path,
	  const char **out, char *err, size_t errlen)
{
	const struct gdev *d;

	if (is_host(dev)) {
		*out = *path ? path : "/";
		return 0;
	}
	d = gdev_find(m, dev);
	if (!d) {
		snprintf(err, errlen, "disk '%s' not found", dev);
		return -1;
	}
	snprintf(err, errlen,
		 "(%s): reading file systems in disk images (%s) is not "
		 "supported yet",
		 dev, d->path);
	return -1;
}

static int
open_error(const char *path, int e, char *err, size_t errlen)
{
	if (e == ENOENT || e == ENOTDIR)
		snprintf(err, errlen, "file '%s' not found", path);
	else
		snprintf(err, errlen, "cannot open '%s': %s", path,
			 strerror(e));
	return -1;
}

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

int
gdev_open(const struct gdev_map *m, const char *root, const char *name,
	  uint64_t max, size_t head_max, struct load_file *f, char *err,
	  size_t errlen)
{
	char dev[GDEV_NAME_MAX + 16];
	const char *path, *hp;
	struct stat st;
	uint8_t *head;
	size_t n;
	int fd;

	if (gdev_split(root, name, dev, sizeof(dev), &path, err, errlen) < 0 ||
	    host_path(m, dev, path, &hp, err, errlen) < 0)
		return -1;
	fd = open(hp, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return open_error(path, errno, err, errlen);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "'%s' is not a regular file", path);
		close(fd);
		return -1;
	}
	if ((uint64_t)st.st_size > max) {
		snprintf(err, errlen,
			 "file '%s' (%" PRIu64 " MiB) is bigger than the "
			 "guest's memory",
			 path, (uint64_t)st.st_size >> 20);
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
	char err[GDEV_PATH_MAX + 128];
	const char *hp;
	struct stat st;

	return host_path(m, dev, path, &hp, err, sizeof(err)) == 0 &&
	       stat(hp, &st) == 0;
}

struct ls_entry {
	char *name;
	bool dir;
	uint64_t size;
};

static int
cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct ls_entry *)a)->name,
		      ((const struct ls_entry *)b)->name);
}

static void
print_entries(struct ls_entry *v, size_t n, bool long_fmt, FILE *out)
{
	qsort(v, n, sizeof(*v), cmp_entry);
	for (size_t i = 0; i < n; i++) {
		if (long_fmt && v[i].dir)
			fprintf(out, "DIR          %s/\n", v[i].name);
		else if (long_fmt)
			fprintf(out, "%-12" PRIu64 " %s\n", v[i].size,
				v[i].name);
		else
			fprintf(out, "%s%s ", v[i].name, v[i].dir ? "/" : "");
	}
	if (!long_fmt)
		fputc('\n', out);
}

static int
ls_dir(const char *hp, bool all, bool long_fmt, FILE *out)
{
	DIR *d = opendir(hp);
	struct ls_entry *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    (e->d_name[0] == '.' && !all))
			continue;
		if (n == cap) {
			struct ls_entry *nv;

			cap = cap ? cap * 2 : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		v[n].name = strdup(e->d_name);
		if (!v[n].name)
			break;
		v[n].dir = fstatat(dirfd(d), e->d_name, &st, 0) == 0 &&
			   S_ISDIR(st.st_mode);
		v[n].size = v[n].dir ? 0 : (uint64_t)st.st_size;
		n++;
	}
	closedir(d);
	print_entries(v, n, long_fmt, out);
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	return 0;
}

static int
ls_device(const struct gdev_map *m, const char *dev, FILE *out, char *err,
	  size_t errlen)
{
	const struct gdev *d;

	if (is_host(dev)) {
		fprintf(out,
			"Device %s: Filesystem type hostfs (the host's "
			"files).\n",
			dev);
		return 0;
	}
	d = gdev_find(m, dev);
	if (!d) {
		snprintf(err, errlen, "disk '%s' not found", dev);
		return -1;
	}
	fprintf(out,
		"Device %s: %s - Filesystem type unknown (reading disk images "
		"is not supported yet).\n",
		dev, d->path);
	return 0;
}

int
gdev_ls(const struct gdev_map *m, const char *root, const char *name, bool all,
	bool long_fmt, FILE *out, char *err, size_t errlen)
{
	char dev[GDEV_NAME_MAX + 16];
	const char *path, *hp, *base;
	struct stat st;

	if (!name || !*name) {
		fprintf(out, "(%s)", HOST_DEV);
		for (int i = 0; m && i < m->n; i++)
			fprintf(out, " (%s)", m->dev[i].name);
		fputc('\n', out);
		return 0;
	}
	if (gdev_split(root, name, dev, sizeof(dev), &path, err, errlen) < 0)
		return -1;
	if (name[0] == '(' && *path == '\0')
		return ls_device(m, dev, out, err, errlen);
	if (host_path(m, dev, path, &hp, err, errlen) < 0)
		return -1;
	if (stat(hp, &st) < 0)
		return open_error(path, errno, err, errlen);
	if (S_ISDIR(st.st_mode)) {
		if (ls_dir(hp, all, long_fmt, out) < 0)
			return open_error(path, errno, err, errlen);
		return 0;
	}
	base = strrchr(path, '/');
	fprintf(out, "%s\n", base ? base + 1 : path);
	return 0;
}
