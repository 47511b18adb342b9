/*
 * ISO9660 (ECMA-119) with Rock Ridge (RRIP 1.12 over SUSP 1.12) and
 * Joliet, read-only, written here: libarchive reads an ISO as a stream
 * (no reading a file at an offset without walking the image) and
 * libiso9660 opens image files by name (not a partition's byte range),
 * so neither fits grub-bhyve's read-at-offset model (grub_blk.h).
 *
 * Names: Rock Ridge's when the root's "." record carries SUSP's SP entry
 * (ECMA-119's names otherwise), else Joliet's (UCS-2 in a supplementary
 * volume descriptor), else ECMA-119's with ";1" and a trailing '.'
 * dropped, in lower case (as GRUB shows them). Symlinks (SL), POSIX
 * modes (PX), relocated directories (CL, RE) and continuation areas (CE)
 * are followed; multi-extent files are not (no kernel is 4 GiB).
 *
 * Every record is checked against its sector and the image; SUSP walks
 * are bounded (continuation hops, bytes); directories are read a sector
 * at a time, never allocated by their recorded size.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "grub_fs.h"

#define ISO_SECTOR 2048
#define ISO_VD_FIRST 16
#define ISO_VD_MAX 64	    /* descriptors looked at */
#define ISO_DIR_MAX (64u << 20) /* bytes in one directory */
#define SUSP_HOPS_MAX 16    /* CE continuation areas per record */
#define LINK_MAX_LEN 1024

struct isofs {
	const struct gblk *b;
	uint64_t root_lba, root_size;
	bool rr;	/* Rock Ridge names */
	unsigned skip;	/* SUSP bytes to skip in each record (SP) */
	bool joliet;
	struct gfs_info info;
};

/* What a record's SUSP area says (RRIP). */
struct rr {
	char name[GFS_NAME_MAX];
	size_t nlen;
	bool nm, nm_bad;
	bool px;
	uint32_t mode;
	bool re;	/* a relocated directory's stand-in: hidden */
	bool cl;
	uint32_t cl_lba;
	char *link; /* only when asked for */
	size_t llen;
	bool sl_cont, sl_bad;
};

static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* A directory record's 7-byte time (ECMA-119 9.1.5). */
static int64_t
rec_time(const uint8_t *t)
{
	if (t[1] < 1 || t[1] > 12 || t[2] < 1 || t[2] > 31)
		return 0;
	return days_from_civil(1900 + t[0], t[1], t[2]) * 86400 +
	       t[3] * 3600 + t[4] * 60 + t[5] - (int8_t)t[6] * 15 * 60;
}

/* A volume descriptor's 17-byte time (ECMA-119 8.4.26.1), digits. */
static int64_t
vd_time(const uint8_t *t)
{
	int v[7];

	for (int i = 0; i < 16; i++)
		if (!isdigit(t[i]))
			return 0;
	for (int i = 0, k = 0; i < 7; i++) {
		int w = i == 0 ? 4 : 2;

		v[i] = 0;
		while (w--)
			v[i] = v[i] * 10 + (t[k++] - '0');
	}
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31)
		return 0;
	return days_from_civil(v[0], v[1], v[2]) * 86400 + v[3] * 3600 +
	       v[4] * 60 + v[5] - (int8_t)t[16] * 15 * 60;
}

/* Does a record's extent lie on the image? */
static bool
extent_ok(const struct isofs *f, uint64_t lba, uint64_t size)
{
	return lba <= f->b->size / ISO_SECTOR &&
	       size <= f->b->size - lba * ISO_SECTOR;
}

/* ---- SUSP / Rock Ridge ---- */

static void
nm_add(struct rr *rr, const uint8_t *p, size_t n)
{
	if (rr->nm_bad)
		return;
	if (rr->nlen + n >= sizeof(rr->name)) {
		rr->nm_bad = true;
		return;
	}
	memcpy(rr->name + rr->nlen, p, n);
	rr->nlen += n;
	rr->name[rr->nlen] = '\0';
}

static void
link_add(struct rr *rr, const char *s, size_t n)
{
	if (!rr->link || rr->sl_bad)
		return;
	if (rr->llen + n >= LINK_MAX_LEN) {
		rr->sl_bad = true;
		return;
	}
	memcpy(rr->link + rr->llen, s, n);
	rr->llen += n;
	rr->link[rr->llen] = '\0';
}

/* An SL entry's component records (RRIP 4.1.3.1). */
static void
sl_parse(struct rr *rr, const uint8_t *d, size_t n)
{
	size_t i = 0;

	while (i + 2 <= n) {
		uint8_t flags = d[i], len = d[i + 1];

		if (i + 2 + len > n) {
			rr->sl_bad = true;
			return;
		}
		if (!rr->sl_cont && rr->llen &&
		    rr->link[rr->llen - 1] != '/')
			link_add(rr, "/", 1);
		if (flags & 8)
			link_add(rr, "/", 1);
		else if (flags & 2)
			link_add(rr, ".", 1);
		else if (flags & 4)
			link_add(rr, "..", 2);
		else
			link_add(rr, (const char *)d + i + 2, len);
		rr->sl_cont = flags & 1;
		i += 2 + len;
	}
}

/*
 * One SUSP area: entries until ST or the end. A CE entry names the next
 * area, returned in *ce_lba etc.
 */
static void
susp_area(const uint8_t *p, size_t n, struct rr *rr, bool *ce,
	  uint64_t *ce_lba, uint32_t *ce_off, uint32_t *ce_len)
{
	size_t i = 0;

	while (i + 4 <= n) {
		const uint8_t *e = p + i;
		uint8_t len = e[2];

		if (len < 4 || i + len > n)
			return;
		if (!memcmp(e, "ST", 2))
			return;
		if (!memcmp(e, "NM", 2) && len >= 5) {
			if (!(e[4] & 6))
				nm_add(rr, e + 5, len - 5);
			rr->nm = true;
		} else if (!memcmp(e, "PX", 2) && len >= 12) {
			rr->px = true;
			rr->mode = le32_get(e + 4);
		} else if (!memcmp(e, "SL", 2) && len >= 5) {
			sl_parse(rr, e + 5, len - 5);
		} else if (!memcmp(e, "RE", 2)) {
			rr->re = true;
		} else if (!memcmp(e, "CL", 2) && len >= 12) {
			rr->cl = true;
			rr->cl_lba = le32_get(e + 4);
		} else if (!memcmp(e, "CE", 2) && len >= 28) {
			*ce = true;
			*ce_lba = le32_get(e + 4);
			*ce_off = le32_get(e + 12);
			*ce_len = le32_get(e + 20);
		}
		i += len;
	}
}

/* The Rock Ridge entries of a record, following CE areas (bounded). */
static void
rr_parse(const struct isofs *f, const uint8_t *rec, struct rr *rr)
{
	uint8_t rlen = rec[0], nlen = rec[32];
	size_t su = 33 + nlen + !(nlen & 1) + f->skip;
	uint8_t buf[ISO_SECTOR];
	bool ce = false;
	uint64_t lba = 0;
	uint32_t off = 0, len = 0;

	if (su >= rlen)
		return;
	susp_area(rec + su, rlen - su, rr, &ce, &lba, &off, &len);
	for (int hop = 0; ce && hop < SUSP_HOPS_MAX; hop++) {
		uint32_t n = len;

		/* A continuation area lies within one sector here. */
		if (n == 0 || off >= ISO_SECTOR || n > ISO_SECTOR - off ||
		    !extent_ok(f, lba, (uint64_t)off + n) ||
		    gblk_read(f->b, lba * ISO_SECTOR + off, buf, n) < 0)
			return;
		ce = false;
		susp_area(buf, n, rr, &ce, &lba, &off, &len);
	}
}

/* ---- directory records ---- */

/* A record's plain ECMA-119 name: no ";1", no trailing '.', lower case. */
static void
plain_name(const uint8_t *id, size_t n, char *out)
{
	size_t k = 0;

	for (size_t i = 0; i < n && id[i] != ';'; i++)
		out[k++] = (char)tolower(id[i]);
	if (k && out[k - 1] == '.')
		k--;
	out[k] = '\0';
}

static void
joliet_name(const uint8_t *id, size_t n, char *out)
{
	char *semi;

	gfs_utf16_to_utf8(id, n / 2, true, out, GFS_NAME_MAX);
	semi = strrchr(out, ';');
	if (semi)
		*semi = '\0';
}

/* The size of the directory at lba, from its "." record. */
static int
dot_size(const struct isofs *f, uint64_t lba, uint64_t *size)
{
	uint8_t rec[34];

	if (!extent_ok(f, lba, ISO_SECTOR) ||
	    gblk_read(f->b, lba * ISO_SECTOR, rec, sizeof(rec)) < 0 ||
	    rec[0] < 34 || le32_get(rec + 2) != lba)
		return -1;
	*size = le32_get(rec + 10);
	return 0;
}

/*
 * A directory record (at image offset pos) as a node and a name. 1 when
 * it is to be left out ("." and "..", hidden stand-ins, bad names).
 */
static int
record_node(const struct isofs *f, const uint8_t *rec, uint64_t pos,
	    char *name, struct gfs_node *n)
{
	uint8_t nlen = rec[32], flags = rec[25];
	struct rr rr = {0};

	if (nlen == 0 || 33 + nlen > rec[0])
		return 1;
	if (nlen == 1 && (rec[33] == 0 || rec[33] == 1))
		return 1; /* "." and ".." */
	*n = (struct gfs_node){
	    .kind = flags & 2 ? GFS_DIR : GFS_FILE,
	    .size = le32_get(rec + 10),
	    .mtime = rec_time(rec + 18),
	    .a = le32_get(rec + 2),
	    .b = pos,
	};
	if (f->rr) {
		rr_parse(f, rec, &rr);
		if (rr.re)
			return 1;
		if (rr.px && (rr.mode & 0170000) == 0120000) {
			n->kind = GFS_LINK;
			n->size = 0;
		}
		if (rr.cl) {
			n->kind = GFS_DIR;
			n->a = rr.cl_lba;
			if (dot_size(f, rr.cl_lba, &n->size) < 0)
				return 1;
		}
	}
	if (f->rr && rr.nm) {
		if (rr.nm_bad || rr.nlen == 0 || memchr(rr.name, '/', rr.nlen))
			return 1;
		memcpy(name, rr.name, rr.nlen + 1);
	} else if (f->joliet) {
		joliet_name(rec + 33, nlen, name);
	} else {
		plain_name(rec + 33, nlen, name);
	}
	if (!name[0] || strchr(name, '/'))
		return 1;
	if (n->kind != GFS_LINK && !extent_ok(f, n->a, n->size))
		return 1; /* points past the image: not listed */
	return 0;
}

static int
iso_readdir(void *fs, const struct gfs_node *dir, gfs_dir_fn fn, void *arg,
	    char *err, size_t errlen)
{
	struct isofs *f = fs;
	uint8_t sec[ISO_SECTOR];
	uint64_t base = dir->a * ISO_SECTOR;

	if (dir->size > ISO_DIR_MAX || !extent_ok(f, dir->a, dir->size)) {
		snprintf(err, errlen,
			 "iso9660: directory at sector %llu does not fit the "
			 "image",
			 (unsigned long long)dir->a);
		return -1;
	}
	for (uint64_t s = 0; s < dir->size; s += ISO_SECTOR) {
		uint64_t n = dir->size - s < ISO_SECTOR ? dir->size - s
							: ISO_SECTOR;

		if (gblk_read(f->b, base + s, sec, n) < 0) {
			snprintf(err, errlen, "iso9660: reading a directory "
				 "failed");
			return -1;
		}
		for (uint64_t i = 0; i < n;) {
			char name[GFS_NAME_MAX];
			struct gfs_node node;
			uint8_t len = sec[i];

			if (len == 0)
				break; /* the rest of the sector is padding */
			if (len < 34 || i + len > n) {
				snprintf(err, errlen,
					 "iso9660: bad directory record at "
					 "byte %llu",
					 (unsigned long long)(base + s + i));
				return -1;
			}
			if (record_node(f, sec + i, base + s + i, name,
					&node) == 0 &&
			    fn(arg, name, &node))
				return 0;
			i += len;
		}
	}
	return 0;
}

static int
iso_readlink(void *fs, const struct gfs_node *n, char *buf, size_t len,
	     char *err, size_t errlen)
{
	struct isofs *f = fs;
	uint8_t rec[256];
	char link[LINK_MAX_LEN];
	struct rr rr = {.link = link};

	link[0] = '\0';
	if (gblk_read(f->b, n->b, rec, 1) < 0 || rec[0] < 34 ||
	    gblk_read(f->b, n->b, rec, rec[0]) < 0 ||
	    33 + rec[32] > rec[0]) {
		snprintf(err, errlen, "iso9660: bad symlink record");
		return -1;
	}
	rr_parse(f, rec, &rr);
	if (rr.sl_bad || rr.llen == 0 || rr.llen >= len) {
		snprintf(err, errlen, "iso9660: bad symlink");
		return -1;
	}
	memcpy(buf, link, rr.llen + 1);
	return 0;
}

static int
iso_read(void *fs, const struct gfs_node *n, uint64_t off, void *buf,
	 size_t len, char *err, size_t errlen)
{
	struct isofs *f = fs;

	if (!extent_ok(f, n->a, n->size) ||
	    gblk_read(f->b, n->a * ISO_SECTOR + off, buf, len) < 0) {
		snprintf(err, errlen, "iso9660: file extent at sector %llu "
			 "is past the end of the image",
			 (unsigned long long)n->a);
		return -1;
	}
	return 0;
}

static void
iso_root(void *fs, struct gfs_node *n)
{
	struct isofs *f = fs;

	*n = (struct gfs_node){.kind = GFS_DIR, .a = f->root_lba,
			       .size = f->root_size};
}

static void
iso_info(void *fs, struct gfs_info *info)
{
	*info = ((struct isofs *)fs)->info;
}

static void
iso_umount(void *fs)
{
	free(fs);
}

/* Rock Ridge: the root's "." record starts its SUSP area with SP. */
static void
detect_rr(struct isofs *f)
{
	uint8_t rec[256];
	size_t su;

	if (gblk_read(f->b, f->root_lba * ISO_SECTOR, rec, sizeof(rec)) < 0 ||
	    rec[0] < 34 || rec[32] != 1)
		return;
	su = 34;
	if (su + 7 <= rec[0] && !memcmp(rec + su, "SP", 2) && rec[su + 2] >= 7 &&
	    rec[su + 4] == 0xbe && rec[su + 5] == 0xef) {
		f->rr = true;
		f->skip = rec[su + 6];
	}
}

static void
trim(char *s)
{
	size_t n = strlen(s);

	while (n && s[n - 1] == ' ')
		s[--n] = '\0';
}

static void
set_info(struct isofs *f, const uint8_t *pvd, const uint8_t *svd)
{
	const uint8_t *m = pvd + 830; /* modification date */

	snprintf(f->info.type, sizeof(f->info.type), "iso9660");
	if (svd)
		gfs_utf16_to_utf8(svd + 40, 16, true, f->info.label,
				  sizeof(f->info.label));
	else
		snprintf(f->info.label, sizeof(f->info.label), "%.32s",
			 (const char *)pvd + 40);
	trim(f->info.label);
	/* GRUB's UUID: the modification date's digits (else creation's). */
	if (!isdigit(m[0]))
		m = pvd + 813; /* creation date */
	if (isdigit(m[0]))
		snprintf(f->info.uuid, sizeof(f->info.uuid),
			 "%.4s-%.2s-%.2s-%.2s-%.2s-%.2s-%.2s", m, m + 4, m + 6,
			 m + 8, m + 10, m + 12, m + 14);
	f->info.mtime = vd_time(pvd + 830);
}

static int
iso_mount(const struct gblk *b, void **out, char *err, size_t errlen)
{
	uint8_t vd[ISO_SECTOR], pvd[ISO_SECTOR], svd[ISO_SECTOR];
	bool have_pvd = false, have_svd = false;
	struct isofs *f;

	for (int i = 0; i < ISO_VD_MAX; i++) {
		if (gblk_read(b, (uint64_t)(ISO_VD_FIRST + i) * ISO_SECTOR, vd,
			      ISO_SECTOR) < 0 ||
		    memcmp(vd + 1, "CD001", 5))
			break;
		if (vd[0] == 255)
			break;
		if (vd[0] == 1 && !have_pvd) {
			memcpy(pvd, vd, ISO_SECTOR);
			have_pvd = true;
		}
		/* Joliet: escape sequences %/@, %/C or %/E (UCS-2). */
		if (vd[0] == 2 && !have_svd && vd[88] == '%' && vd[89] == '/' &&
		    (vd[90] == '@' || vd[90] == 'C' || vd[90] == 'E')) {
			memcpy(svd, vd, ISO_SECTOR);
			have_svd = true;
		}
	}
	if (!have_pvd)
		return 1;
	if (le16_get(pvd + 128) != ISO_SECTOR) {
		snprintf(err, errlen, "iso9660: logical block size %u is not "
			 "2048", le16_get(pvd + 128));
		return -1;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	f->b = b;
	f->root_lba = le32_get(pvd + 156 + 2);
	f->root_size = le32_get(pvd + 156 + 10);
	if (!extent_ok(f, f->root_lba, f->root_size) || f->root_size == 0) {
		snprintf(err, errlen, "iso9660: the root directory is past "
			 "the end of the image");
		free(f);
		return -1;
	}
	detect_rr(f);
	if (!f->rr && have_svd) {
		uint64_t lba = le32_get(svd + 156 + 2);
		uint64_t size = le32_get(svd + 156 + 10);

		if (size && extent_ok(f, lba, size)) {
			f->joliet = true;
			f->root_lba = lba;
			f->root_size = size;
		}
	}
	set_info(f, pvd, f->joliet ? svd : NULL);
	*out = f;
	return 0;
}

const struct gfs_ops gfs_iso_ops = {
    .name = "iso9660",
    .mount = iso_mount,
    .umount = iso_umount,
    .info = iso_info,
    .root = iso_root,
    .readdir = iso_readdir,
    .readlink = iso_readlink,
    .read = iso_read,
};
