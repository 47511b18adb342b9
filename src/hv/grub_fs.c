/*
 * Mounting and path lookup shared by grub-bhyve's file system readers
 * (grub_fs.h): one walk for all of them, with its bounds (path depth,
 * symlinks followed, entries per directory).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <blkid/blkid.h>

#include "grub_fs.h"

static const struct gfs_ops *const readers[] = {
    &gfs_ext_ops,
    &gfs_iso_ops,
    &gfs_fat_ops,
};

int
gfs_mount(const struct gblk *b, struct gfs *fs, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
		int r = readers[i]->mount(b, &fs->fs, err, errlen);

		if (r == 1)
			continue;
		fs->ops = r == 0 ? readers[i] : NULL;
		return r;
	}
	fs->ops = NULL;
	fs->fs = NULL;
	return 1;
}

void
gfs_umount(struct gfs *fs)
{
	if (fs->ops)
		fs->ops->umount(fs->fs);
	fs->ops = NULL;
	fs->fs = NULL;
}

struct dir_filter {
	gfs_dir_fn fn;
	void *arg;
	long n;
	bool too_many;
};

static int
filter_entry(void *arg, const char *name, const struct gfs_node *n)
{
	struct dir_filter *f = arg;

	if (!strcmp(name, ".") || !strcmp(name, "..") || !name[0])
		return 0;
	if (++f->n > GFS_DIR_MAX) {
		f->too_many = true;
		return 1;
	}
	return f->fn(f->arg, name, n);
}

int
gfs_readdir(const struct gfs *fs, const struct gfs_node *dir, gfs_dir_fn fn,
	    void *arg, char *err, size_t errlen)
{
	struct dir_filter f = {fn, arg, 0, false};

	if (dir->kind != GFS_DIR) {
		snprintf(err, errlen, "not a directory");
		return -1;
	}
	if (fs->ops->readdir(fs->fs, dir, filter_entry, &f, err, errlen) < 0)
		return -1;
	if (f.too_many) {
		snprintf(err, errlen, "a directory with more than %d entries",
			 GFS_DIR_MAX);
		return -1;
	}
	return 0;
}

int
gfs_stat(const struct gfs *fs, struct gfs_node *n, char *err, size_t errlen)
{
	return fs->ops->stat ? fs->ops->stat(fs->fs, n, err, errlen) : 0;
}

int
gfs_read(const struct gfs *fs, const struct gfs_node *f, uint64_t off,
	 void *buf, size_t n, char *err, size_t errlen)
{
	if (off > f->size || n > f->size - off) {
		snprintf(err, errlen, "read past the end of the file");
		return -1;
	}
	if (n == 0)
		return 0;
	return fs->ops->read(fs->fs, f, off, buf, n, err, errlen);
}

struct find {
	const char *name;
	size_t len;
	bool icase;
	bool hit;
	struct gfs_node node;
};

static int
find_entry(void *arg, const char *name, const struct gfs_node *n)
{
	struct find *f = arg;

	if (strlen(name) != f->len ||
	    (f->icase ? strncasecmp(name, f->name, f->len)
		      : memcmp(name, f->name, f->len)))
		return 0;
	f->hit = true;
	f->node = *n;
	return 1;
}

/* FAT and plain ISO9660 names match without regard to case (GRUB). */
static bool
icase(const struct gfs *fs)
{
	return fs->ops == &gfs_fat_ops || fs->ops == &gfs_iso_ops;
}

/* rest = target + "/" + rest, in a fresh buffer. */
static char *
splice_link(const char *target, const char *rest)
{
	size_t a = strlen(target), b = strlen(rest);
	char *s = malloc(a + b + 2);

	if (!s)
		return NULL;
	memcpy(s, target, a);
	s[a] = '/';
	memcpy(s + a + 1, rest, b + 1);
	return s;
}

int
gfs_lookup(const struct gfs *fs, const char *path, struct gfs_node *n,
	   char *err, size_t errlen)
{
	struct gfs_node stack[GFS_DEPTH_MAX + 1];
	char *buf = strdup(path), *p, target[1024];
	int depth = 0, links = 0, r = -1;

	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	fs->ops->root(fs->fs, &stack[0]);
	p = buf;
	for (;;) {
		struct find f = {.icase = icase(fs)};
		char *next;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		f.name = p;
		f.len = strcspn(p, "/");
		next = p + f.len;
		if (f.len == 1 && p[0] == '.') {
			p = next;
			continue;
		}
		if (f.len == 2 && p[0] == '.' && p[1] == '.') {
			depth -= depth > 0;
			p = next;
			continue;
		}
		if (stack[depth].kind != GFS_DIR) {
			snprintf(err, errlen, "file '%s' not found", path);
			goto out;
		}
		if (f.len >= GFS_NAME_MAX ||
		    gfs_readdir(fs, &stack[depth], find_entry, &f, err,
				errlen) < 0 ||
		    !f.hit) {
			if (f.len >= GFS_NAME_MAX || !f.hit)
				snprintf(err, errlen, "file '%s' not found",
					 path);
			goto out;
		}
		if (gfs_stat(fs, &f.node, err, errlen) < 0)
			goto out;
		if (f.node.kind == GFS_LINK) {
			char *s;

			if (++links > GFS_LINKS_MAX) {
				snprintf(err, errlen,
					 "too deep nesting of symlinks in "
					 "'%s'",
					 path);
				goto out;
			}
			if (fs->ops->readlink(fs->fs, &f.node, target,
					      sizeof(target), err,
					      errlen) < 0)
				goto out;
			if (target[0] == '/')
				depth = 0;
			s = splice_link(target, next);
			if (!s) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			free(buf);
			buf = p = s;
			continue;
		}
		if (depth == GFS_DEPTH_MAX) {
			snprintf(err, errlen,
				 "too deep (over %d directories): '%s'",
				 GFS_DEPTH_MAX, path);
			goto out;
		}
		stack[++depth] = f.node;
		p = next;
	}
	*n = stack[depth];
	r = 0;
out:
	free(buf);
	return r;
}

static size_t
put_utf8(uint32_t c, char *out, size_t room)
{
	uint8_t b[4];
	size_t n;

	if (c < 0x80) {
		b[0] = c;
		n = 1;
	} else if (c < 0x800) {
		b[0] = 0xc0 | c >> 6;
		b[1] = 0x80 | (c & 0x3f);
		n = 2;
	} else if (c < 0x10000) {
		b[0] = 0xe0 | c >> 12;
		b[1] = 0x80 | ((c >> 6) & 0x3f);
		b[2] = 0x80 | (c & 0x3f);
		n = 3;
	} else {
		b[0] = 0xf0 | c >> 18;
		b[1] = 0x80 | ((c >> 12) & 0x3f);
		b[2] = 0x80 | ((c >> 6) & 0x3f);
		b[3] = 0x80 | (c & 0x3f);
		n = 4;
	}
	if (n > room)
		return 0;
	memcpy(out, b, n);
	return n;
}

size_t
gfs_utf16_to_utf8(const uint8_t *in, size_t units, bool big_endian,
		  char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen == 0)
		return 0;
	for (size_t i = 0; i < units; i++) {
		uint32_t c = big_endian ? (in[2 * i] << 8 | in[2 * i + 1])
					: (in[2 * i] | in[2 * i + 1] << 8);
		size_t k;

		if (c >= 0xd800 && c < 0xdc00 && i + 1 < units) {
			uint32_t d = big_endian
					 ? (in[2 * i + 2] << 8 | in[2 * i + 3])
					 : (in[2 * i + 2] | in[2 * i + 3] << 8);

			if (d >= 0xdc00 && d < 0xe000) {
				c = 0x10000 + ((c - 0xd800) << 10) +
				    (d - 0xdc00);
				i++;
			}
		}
		if (c == 0)
			break;
		if (c >= 0xd800 && c < 0xe000)
			c = 0xfffd; /* a lone surrogate */
		k = put_utf8(c, out + o, outlen - 1 - o);
		if (k == 0)
			break;
		o += k;
	}
	out[o] = '\0';
	return o;
}

static void
blkid_copy(blkid_probe pr, const char *key, char *out, size_t len)
{
	const char *v;

	if (blkid_probe_lookup_value(pr, key, &v, NULL) == 0)
		snprintf(out, len, "%s", v);
}

int
gfs_probe_other(const struct gblk *b, struct gfs_info *info)
{
	blkid_probe pr;
	int r = -1;

	memset(info, 0, sizeof(*info));
	if (b->nseg != 1 || b->seg[0].fd < 0)
		return -1;
	pr = blkid_new_probe();
	if (!pr)
		return -1;
	if (blkid_probe_set_device(pr, b->seg[0].fd, (blkid_loff_t)b->seg[0].base,
				   (blkid_loff_t)b->seg[0].len) == 0 &&
	    blkid_probe_enable_superblocks(pr, 1) == 0 &&
	    blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE |
						      BLKID_SUBLKS_UUID |
						      BLKID_SUBLKS_LABEL) == 0 &&
	    blkid_do_safeprobe(pr) == 0) {
		blkid_copy(pr, "TYPE", info->type, sizeof(info->type));
		blkid_copy(pr, "UUID", info->uuid, sizeof(info->uuid));
		blkid_copy(pr, "LABEL", info->label, sizeof(info->label));
		r = info->type[0] ? 0 : -1;
	}
	blkid_free_probe(pr);
	return r;
}
