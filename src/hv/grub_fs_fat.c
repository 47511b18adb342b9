/*
 * FAT12/16/32 with long names (VFAT), read-only, written here: no Debian
 * library reads FAT from a byte range (mtools is a program, libfat is not
 * packaged), and the format is small (Microsoft's "FAT: General Overview
 * of On-Disk Format" 1.03, which the section numbers below cite).
 *
 * The BPB is checked before use: sector and cluster sizes, that the FATs,
 * root directory and clusters fit the volume and the volume fits the
 * partition, and that the FAT holds an entry for every cluster. Chains
 * are walked with a bound (the number of clusters): a loop is an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "grub_fs.h"

#define DIRENT 32
#define ATTR_VOLUME 0x08
#define ATTR_DIR 0x10
#define ATTR_LFN 0x0f
#define LFN_MAX 20 /* entries: 255 characters */
#define DIR_MAX_BYTES (65536u * DIRENT) /* §6: at most 65536 entries */

struct fatfs {
	const struct gblk *b;
	int bits; /* 12, 16, 32 */
	uint32_t bps, spc, clsize;
	uint64_t fat_off;		/* first FAT, bytes */
	uint64_t root_off, root_size;	/* FAT12/16 fixed root */
	uint64_t data_off;		/* cluster 2 */
	uint32_t clusters;		/* data clusters */
	uint32_t root_clus;		/* FAT32 */
	struct gfs_info info;
	/* One cached block of the FAT (reads of long chains). */
	uint64_t cache_off;
	bool cache_ok;
	uint8_t cache[4096];
};

static bool
pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* The FAT entry for cluster c, or 0xffffffff when unreadable. */
static uint32_t
fat_entry(struct fatfs *f, uint32_t c)
{
	uint64_t off = f->fat_off + (f->bits == 12	 ? c + c / 2
				     : f->bits == 16 ? (uint64_t)c * 2
						     : (uint64_t)c * 4);
	uint64_t blk = off & ~(uint64_t)(sizeof(f->cache) - 1);
	uint8_t e[4];

	if (off - blk + 4 <= sizeof(f->cache)) {
		if (!f->cache_ok || f->cache_off != blk) {
			uint64_t n = f->b->size - blk < sizeof(f->cache)
					 ? f->b->size - blk
					 : sizeof(f->cache);

			memset(f->cache, 0, sizeof(f->cache));
			if (blk >= f->b->size ||
			    gblk_read(f->b, blk, f->cache, n) < 0)
				return 0xffffffff;
			f->cache_off = blk;
			f->cache_ok = true;
		}
		memcpy(e, f->cache + (off - blk), 4);
	} else if (gblk_read(f->b, off, e, 4) < 0) {
		return 0xffffffff;
	}
	switch (f->bits) {
	case 12:
		return c & 1 ? le16_get(e) >> 4 : le16_get(e) & 0xfff;
	case 16:
		return le16_get(e);
	default:
		return le32_get(e) & 0x0fffffff;
	}
}

static bool
is_eoc(const struct fatfs *f, uint32_t v)
{
	return v >= (f->bits == 12 ? 0xff8u : f->bits == 16 ? 0xfff8u
							   : 0x0ffffff8u);
}

static bool
valid_cluster(const struct fatfs *f, uint32_t c)
{
	return c >= 2 && c - 2 < f->clusters;
}

/*
 * The next cluster of a chain: 1 and *c set, 0 at its end, -1 when the
 * chain is broken (a free, bad or out-of-range entry).
 */
static int
next_cluster(struct fatfs *f, uint32_t *c, char *err, size_t errlen)
{
	uint32_t v = fat_entry(f, *c);

	if (is_eoc(f, v))
		return 0;
	if (!valid_cluster(f, v)) {
		snprintf(err, errlen, "fat: broken cluster chain at cluster "
			 "%u (entry %#x)", *c, v);
		return -1;
	}
	*c = v;
	return 1;
}

/*
 * Brent's cycle detection over a chain: a loop is found within a few
 * times its length, not only once the walk passes the cluster count.
 */
struct cycle {
	uint32_t mark;
	uint64_t power, lam;
};

static bool
cycle_step(struct cycle *y, uint32_t c)
{
	if (c == y->mark)
		return true;
	if (++y->lam == y->power) {
		y->mark = c;
		y->power *= 2;
		y->lam = 0;
	}
	return false;
}

static uint64_t
cluster_off(const struct fatfs *f, uint32_t c)
{
	return f->data_off + (uint64_t)(c - 2) * f->clsize;
}

/*
 * Read n bytes at off of the chain starting at first. The walk is
 * bounded by the number of clusters: a longer chain loops.
 */
static int
chain_read(struct fatfs *f, uint32_t first, uint64_t off, uint8_t *buf,
	   size_t n, char *err, size_t errlen)
{
	uint32_t c = first;
	uint64_t steps = 0;
	struct cycle y = {first, 1, 0};

	if (!valid_cluster(f, c)) {
		snprintf(err, errlen, "fat: bad first cluster %u", c);
		return -1;
	}
	while (off >= f->clsize) {
		int r = next_cluster(f, &c, err, errlen);

		if (r <= 0 || ++steps > f->clusters || cycle_step(&y, c)) {
			if (r == 0)
				snprintf(err, errlen,
					 "fat: the cluster chain ends before "
					 "the file does");
			else if (r > 0)
				snprintf(err, errlen,
					 "fat: the cluster chain loops");
			return -1;
		}
		off -= f->clsize;
	}
	while (n > 0) {
		/* Contiguous clusters are read in one go. */
		uint32_t start = c;
		uint64_t run = f->clsize - off;
		int r = 1;

		while (run < n) {
			uint32_t prev = c;

			r = next_cluster(f, &c, err, errlen);
			if (r < 0)
				return -1;
			if (r > 0 &&
			    (++steps > f->clusters || cycle_step(&y, c))) {
				snprintf(err, errlen,
					 "fat: the cluster chain loops");
				return -1;
			}
			if (r == 0 || c != prev + 1)
				break;
			run += f->clsize;
		}
		if (run > n)
			run = n;
		if (gblk_read(f->b, cluster_off(f, start) + off, buf, run) < 0) {
			snprintf(err, errlen, "fat: cluster %u is past the end "
				 "of the partition", start);
			return -1;
		}
		buf += run;
		n -= run;
		off = 0;
		if (n > 0 && r == 0) {
			snprintf(err, errlen,
				 "fat: the cluster chain ends before the file "
				 "does");
			return -1;
		}
	}
	return 0;
}

/* ---- directories ---- */

/* The checksum of a short name that long-name entries carry (§7). */
static uint8_t
lfn_sum(const uint8_t *name)
{
	uint8_t s = 0;

	for (int i = 0; i < 11; i++)
		s = (uint8_t)(((s & 1) << 7) + (s >> 1) + name[i]);
	return s;
}

struct lfn {
	uint8_t units[LFN_MAX * 13 * 2];
	int expect; /* the next sequence number wanted, 0 when none */
	int count;
	uint8_t sum;
};

static void
lfn_entry(struct lfn *l, const uint8_t *e)
{
	int seq = e[0] & 0x3f;
	static const uint8_t pos[13] = {1,  3,	5,  7,	9,  14, 16,
					18, 20, 22, 24, 28, 30};

	if (e[0] & 0x40) {
		if (seq < 1 || seq > LFN_MAX) {
			l->expect = 0;
			return;
		}
		memset(l->units, 0xff, sizeof(l->units));
		l->count = seq;
		l->expect = seq;
		l->sum = e[13];
	}
	if (l->expect == 0 || seq != l->expect || e[13] != l->sum) {
		l->expect = 0;
		return;
	}
	for (int i = 0; i < 13; i++)
		memcpy(l->units + ((seq - 1) * 13 + i) * 2, e + pos[i], 2);
	l->expect--;
	if (l->expect == 0)
		l->expect = -1; /* complete */
}

static void
short_name(const uint8_t *e, char *out)
{
	int k = 0, n;
	bool lo_base = e[12] & 0x08, lo_ext = e[12] & 0x10;

	for (n = 8; n > 0 && e[n - 1] == ' '; n--)
		;
	for (int i = 0; i < n; i++) {
		uint8_t c = i == 0 && e[0] == 0x05 ? 0xe5 : e[i];

		out[k++] = lo_base && c >= 'A' && c <= 'Z' ? c + 32 : c;
	}
	for (n = 11; n > 8 && e[n - 1] == ' '; n--)
		;
	if (n > 8)
		out[k++] = '.';
	for (int i = 8; i < n; i++)
		out[k++] = lo_ext && e[i] >= 'A' && e[i] <= 'Z' ? e[i] + 32
								 : e[i];
	out[k] = '\0';
}

static int64_t
fat_time(uint16_t date, uint16_t time)
{
	int y = 1980 + (date >> 9), m = (date >> 5) & 15, d = date & 31;
	int64_t days;

	if (m < 1 || m > 12 || d < 1)
		return 0;
	/* days since 1970 (civil calendar, as in grub_fs_iso.c) */
	y -= m <= 2;
	days = (int64_t)(y / 400) * 146097;
	{
		int yoe = y % 400;
		int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;

		days += yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
	}
	return days * 86400 + (time >> 11) * 3600 + ((time >> 5) & 63) * 60 +
	       (time & 31) * 2;
}

struct dir_walk {
	gfs_dir_fn fn;
	void *arg;
	struct lfn lfn;
	bool stop;
	char *label; /* set: look for the volume label instead */
};

/* One 32-byte entry; returns 1 at the end of the directory. */
static int
dir_entry(struct fatfs *f, struct dir_walk *w, const uint8_t *e)
{
	char name[GFS_NAME_MAX];
	struct gfs_node n;
	uint8_t attr = e[11];

	if (e[0] == 0)
		return 1;
	if (e[0] == 0xe5) {
		w->lfn.expect = 0;
		return 0;
	}
	if ((attr & 0x3f) == ATTR_LFN) {
		lfn_entry(&w->lfn, e);
		return 0;
	}
	if (attr & ATTR_VOLUME) {
		if (w->label) {
			memcpy(w->label, e, 11);
			w->label[11] = '\0';
			w->stop = true;
		}
		w->lfn.expect = 0;
		return 0;
	}
	if (w->label)
		return 0;
	if (w->lfn.expect == -1 && w->lfn.sum == lfn_sum(e))
		gfs_utf16_to_utf8(w->lfn.units, (size_t)w->lfn.count * 13,
				  false, name, sizeof(name));
	else
		short_name(e, name);
	w->lfn.expect = 0;
	n = (struct gfs_node){
	    .kind = attr & ATTR_DIR ? GFS_DIR : GFS_FILE,
	    .size = attr & ATTR_DIR ? 0 : le32_get(e + 28),
	    .mtime = fat_time(le16_get(e + 24), le16_get(e + 22)),
	    .a = (f->bits == 32 ? (uint32_t)le16_get(e + 20) << 16 : 0) |
		 le16_get(e + 26),
	};
	/* ".." to the root says cluster 0. */
	if (n.kind == GFS_DIR && n.a == 0)
		n.a = f->bits == 32 ? f->root_clus : 0;
	if (!name[0] || strchr(name, '/'))
		return 0;
	w->stop = w->fn(w->arg, name, &n);
	return 0;
}

/* Walk the entries of a buffer; 1 at the end of the directory. */
static int
dir_block(struct fatfs *f, struct dir_walk *w, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + DIRENT <= n && !w->stop; i += DIRENT)
		if (dir_entry(f, w, p + i))
			return 1;
	return w->stop;
}

static int
walk_dir(struct fatfs *f, const struct gfs_node *dir, struct dir_walk *w,
	 char *err, size_t errlen)
{
	uint8_t *buf;
	uint32_t c;
	uint64_t bytes = 0, steps = 0;
	struct cycle y = {(uint32_t)dir->a, 1, 0};
	int r = 0;

	if (f->bits != 32 && dir->a == 0) {
		/* FAT12/16's fixed root directory (§6). */
		buf = malloc(f->root_size ? f->root_size : 1);
		if (!buf || gblk_read(f->b, f->root_off, buf, f->root_size) < 0) {
			free(buf);
			snprintf(err, errlen, "fat: cannot read the root "
				 "directory");
			return -1;
		}
		dir_block(f, w, buf, f->root_size);
		free(buf);
		return 0;
	}
	buf = malloc(f->clsize);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c = (uint32_t)dir->a;
	if (!valid_cluster(f, c)) {
		snprintf(err, errlen, "fat: bad directory cluster %u", c);
		free(buf);
		return -1;
	}
	for (;;) {
		if (gblk_read(f->b, cluster_off(f, c), buf, f->clsize) < 0) {
			snprintf(err, errlen, "fat: cluster %u is past the end "
				 "of the partition", c);
			r = -1;
			break;
		}
		if (dir_block(f, w, buf, f->clsize))
			break;
		bytes += f->clsize;
		r = next_cluster(f, &c, err, errlen);
		if (r <= 0)
			break;
		if (++steps > f->clusters || bytes >= DIR_MAX_BYTES ||
		    cycle_step(&y, c)) {
			snprintf(err, errlen, "fat: the directory's cluster "
				 "chain loops or is too long");
			r = -1;
			break;
		}
	}
	free(buf);
	return r < 0 ? -1 : 0;
}

static int
fat_readdir(void *fs, const struct gfs_node *dir, gfs_dir_fn fn, void *arg,
	    char *err, size_t errlen)
{
	struct dir_walk w = {.fn = fn, .arg = arg};

	return walk_dir(fs, dir, &w, err, errlen);
}

static int
fat_read(void *fs, const struct gfs_node *n, uint64_t off, void *buf,
	 size_t len, char *err, size_t errlen)
{
	return chain_read(fs, (uint32_t)n->a, off, buf, len, err, errlen);
}

static int
fat_readlink(void *fs, const struct gfs_node *n, char *buf, size_t len,
	     char *err, size_t errlen)
{
	(void)fs;
	(void)n;
	(void)buf;
	(void)len;
	snprintf(err, errlen, "fat: no symlinks");
	return -1;
}

static void
fat_root(void *fs, struct gfs_node *n)
{
	struct fatfs *f = fs;

	*n = (struct gfs_node){.kind = GFS_DIR,
			       .a = f->bits == 32 ? f->root_clus : 0};
}

static void
fat_info(void *fs, struct gfs_info *info)
{
	*info = ((struct fatfs *)fs)->info;
}

static void
fat_umount(void *fs)
{
	free(fs);
}

static void
trim(char *s)
{
	size_t n = strlen(s);

	while (n && s[n - 1] == ' ')
		s[--n] = '\0';
}

/* UUID from the volume serial, label from the root (else the BPB). */
static void
set_info(struct fatfs *f, const uint8_t *bs)
{
	const uint8_t *ext = bs + (f->bits == 32 ? 64 : 36);
	char label[12] = "", err[128];
	struct gfs_node root;
	struct dir_walk w = {.label = label};

	snprintf(f->info.type, sizeof(f->info.type), "fat");
	if (ext[2] == 0x29) {
		uint32_t id = le32_get(ext + 3);

		snprintf(f->info.uuid, sizeof(f->info.uuid), "%04x-%04x",
			 id >> 16, id & 0xffff);
		memcpy(label, ext + 7, 11);
		label[11] = '\0';
	}
	fat_root(f, &root);
	walk_dir(f, &root, &w, err, sizeof(err));
	trim(label);
	if (strcmp(label, "NO NAME"))
		snprintf(f->info.label, sizeof(f->info.label), "%s", label);
}

/* The BPB (§3): 0 and f filled, 1 not FAT, -1 FAT but broken. */
static int
parse_bpb(const struct gblk *b, const uint8_t *bs, struct fatfs *f, char *err,
	  size_t errlen)
{
	uint32_t bps = le16_get(bs + 11), spc = bs[13], rsvd = le16_get(bs + 14);
	uint32_t nfats = bs[16], rootents = le16_get(bs + 17);
	uint64_t tot = le16_get(bs + 19) ? le16_get(bs + 19) : le32_get(bs + 32);
	uint64_t fatsz = le16_get(bs + 22) ? le16_get(bs + 22)
					   : le32_get(bs + 36);
	uint64_t rootsec, meta, clusters, need;

	if ((bs[0] != 0xeb && bs[0] != 0xe9) || le16_get(bs + 510) != 0xaa55 ||
	    bps < 512 || bps > 4096 || !pow2(bps) || !pow2(spc) ||
	    rsvd == 0 || nfats == 0 || fatsz == 0 || tot == 0)
		return 1;
	rootsec = ((uint64_t)rootents * DIRENT + bps - 1) / bps;
	meta = rsvd + nfats * fatsz + rootsec;
	if (meta >= tot || tot > b->size / bps) {
		snprintf(err, errlen,
			 "fat: the volume (%llu sectors) does not fit the "
			 "partition or holds no clusters",
			 (unsigned long long)tot);
		return -1;
	}
	clusters = (tot - meta) / spc;
	f->bits = clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32;
	need = f->bits == 12 ? (clusters + 2) * 3 / 2 + 1
			     : (clusters + 2) * (uint64_t)(f->bits / 8);
	if (need > fatsz * bps || clusters > 0x0ffffff5 ||
	    (f->bits == 32 && rootents != 0) ||
	    (f->bits != 32 && rootents == 0)) {
		snprintf(err, errlen, "fat: inconsistent BPB (%llu clusters, "
			 "FAT of %llu sectors)",
			 (unsigned long long)clusters,
			 (unsigned long long)fatsz);
		return -1;
	}
	f->b = b;
	f->bps = bps;
	f->spc = spc;
	f->clsize = bps * spc;
	f->clusters = (uint32_t)clusters;
	f->fat_off = (uint64_t)rsvd * bps;
	f->root_off = (rsvd + nfats * fatsz) * bps;
	f->root_size = rootsec * bps;
	f->data_off = meta * bps;
	f->root_clus = f->bits == 32 ? le32_get(bs + 44) : 0;
	if (f->bits == 32 && !valid_cluster(f, f->root_clus)) {
		snprintf(err, errlen, "fat: bad root cluster %u",
			 f->root_clus);
		return -1;
	}
	return 0;
}

static int
fat_mount(const struct gblk *b, void **out, char *err, size_t errlen)
{
	uint8_t bs[512];
	struct fatfs *f;
	int r;

	if (gblk_read(b, 0, bs, sizeof(bs)) < 0)
		return 1;
	f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r = parse_bpb(b, bs, f, err, errlen);
	if (r != 0) {
		free(f);
		return r;
	}
	set_info(f, bs);
	*out = f;
	return 0;
}

const struct gfs_ops gfs_fat_ops = {
    .name = "fat",
    .mount = fat_mount,
    .umount = fat_umount,
    .info = fat_info,
    .root = fat_root,
    .readdir = fat_readdir,
    .readlink = fat_readlink,
    .read = fat_read,
};
