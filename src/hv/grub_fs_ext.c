/*
 * ext2/3/4 in disk images, read-only, through libext2fs (e2fsprogs):
 * extents, 64-bit, flex_bg, htree directories (read as linear ones, as
 * GRUB does), inline data, metadata_csum, and whatever else the library
 * knows. The library reads through an io_manager of ours that sees only
 * the partition's byte range (grub_blk.h), so it never opens a file.
 *
 * The superblock is checked here first (ext4 disk layout, "The Super
 * Block"), so that nothing libext2fs allocates at open time (the group
 * descriptor table) is sized by a field that does not fit the partition.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ext2fs/ext2fs.h>

#include "byteorder.h"
#include "grub_fs.h"

#define SB_OFF 1024
#define SB_LEN 1024
#define EXT_MAGIC 0xef53
#define GDT_MAX (256u << 20) /* bytes of group descriptors at most */

struct extfs {
	ext2_filsys fs;
	const struct gblk *b; /* the partition: extents are read from it */
	struct gfs_info info;
};

/* ---- the io_manager: reads from a struct gblk, never writes ---- */

static struct struct_io_manager gblk_io_manager;

/*
 * libext2fs reads a file one block at a time, and between two data blocks
 * the extent tree block that maps them; a kernel is thousands of blocks,
 * mostly in a row. The channel keeps two windows of this size (the one
 * used last stays): a missed block loads the other with what follows it,
 * so a 35 MB kernel takes about 140 reads instead of 68,000.
 */
#define WINDOW (256u << 10)
#define NWIN 2

struct gio_win {
	uint64_t off, len; /* what buf holds */
	uint8_t buf[WINDOW];
};

struct gio {
	const struct gblk *b;
	struct gio_win w[NWIN];
	int last; /* the window used last */
};

static bool
win_has(const struct gio_win *w, uint64_t off, uint64_t len)
{
	return off >= w->off && off - w->off <= w->len &&
	       len <= w->len - (off - w->off);
}

/* len bytes at off, from a window when one holds them. */
static int
gio_fetch(struct gio *g, uint64_t off, uint8_t *data, uint64_t len)
{
	struct gio_win *w;
	uint64_t n;
	int i;

	if (len > WINDOW || off >= g->b->size)
		return gblk_read(g->b, off, data, (size_t)len);
	for (i = 0; i < NWIN && !win_has(&g->w[i], off, len); i++)
		;
	if (i == NWIN) {
		i = (g->last + 1) % NWIN; /* the other one */
		w = &g->w[i];
		n = g->b->size - off < WINDOW ? g->b->size - off : WINDOW;
		if (n < len || gblk_read(g->b, off, w->buf, (size_t)n) < 0) {
			w->len = 0;
			return gblk_read(g->b, off, data, (size_t)len);
		}
		w->off = off;
		w->len = n;
	}
	g->last = i;
	memcpy(data, g->w[i].buf + (off - g->w[i].off), (size_t)len);
	return 0;
}

static errcode_t
gio_open(const char *name, int flags, io_channel *channel)
{
	struct gio *g;
	io_channel io;
	void *p;

	if ((flags & IO_FLAG_RW) || sscanf(name, "gblk:%p", &p) != 1)
		return EXT2_ET_BAD_DEVICE_NAME;
	g = calloc(1, sizeof(*g));
	io = calloc(1, sizeof(*io));
	if (!io || !g) {
		free(io);
		free(g);
		return EXT2_ET_NO_MEMORY;
	}
	g->b = p;
	io->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	io->manager = &gblk_io_manager;
	io->name = strdup(name);
	io->block_size = 1024;
	io->refcount = 1;
	io->private_data = g;
	if (!io->name) {
		free(io);
		free(g);
		return EXT2_ET_NO_MEMORY;
	}
	*channel = io;
	return 0;
}

static errcode_t
gio_close(io_channel io)
{
	if (--io->refcount > 0)
		return 0;
	free(io->private_data);
	free(io->name);
	free(io);
	return 0;
}

static errcode_t
gio_set_blksize(io_channel io, int blksize)
{
	if (blksize <= 0 || blksize > 65536)
		return EXT2_ET_INVALID_ARGUMENT;
	io->block_size = blksize;
	return 0;
}

static errcode_t
gio_read_blk64(io_channel io, unsigned long long block, int count, void *data)
{
	struct gio *g = io->private_data;
	uint64_t len, off;

	/* A negative count is a byte count (ext2_io.h). */
	len = count < 0 ? (uint64_t)-(int64_t)count
			: (uint64_t)count * (uint64_t)io->block_size;
	if (block > UINT64_MAX / (uint64_t)io->block_size)
		return EXT2_ET_SHORT_READ;
	off = block * (uint64_t)io->block_size;
	if (len > SIZE_MAX || gio_fetch(g, off, data, len) < 0)
		return EXT2_ET_SHORT_READ;
	return 0;
}

static errcode_t
gio_read_blk(io_channel io, unsigned long block, int count, void *data)
{
	return gio_read_blk64(io, block, count, data);
}

static errcode_t
gio_write_blk64(io_channel io, unsigned long long block, int count,
		const void *data)
{
	(void)io;
	(void)block;
	(void)count;
	(void)data;
	return EXT2_ET_RO_FILSYS;
}

static errcode_t
gio_write_blk(io_channel io, unsigned long block, int count, const void *data)
{
	return gio_write_blk64(io, block, count, data);
}

static errcode_t
gio_write_byte(io_channel io, unsigned long off, int count, const void *data)
{
	return gio_write_blk64(io, off, count, data);
}

static errcode_t
gio_flush(io_channel io)
{
	(void)io;
	return 0;
}

static errcode_t
gio_set_option(io_channel io, const char *option, const char *arg)
{
	(void)io;
	(void)option;
	(void)arg;
	return EXT2_ET_INVALID_ARGUMENT;
}

static struct struct_io_manager gblk_io_manager = {
    .magic = EXT2_ET_MAGIC_IO_MANAGER,
    .name = "grub-bhyve gblk",
    .open = gio_open,
    .close = gio_close,
    .set_blksize = gio_set_blksize,
    .read_blk = gio_read_blk,
    .write_blk = gio_write_blk,
    .flush = gio_flush,
    .write_byte = gio_write_byte,
    .set_option = gio_set_option,
    .read_blk64 = gio_read_blk64,
    .write_blk64 = gio_write_blk64,
};

/* ---- the superblock, checked before libext2fs sees it ---- */

static int
is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static int
check_super(const struct gblk *b, const uint8_t *sb, char *err, size_t errlen)
{
	uint32_t log_bs = le32_get(sb + 24), bpg = le32_get(sb + 32);
	uint32_t ipg = le32_get(sb + 40), first = le32_get(sb + 20);
	uint32_t incompat = le32_get(sb + 0x60), rev = le32_get(sb + 0x4c);
	uint64_t bs, blocks, groups, desc = 32;
	uint16_t isize = rev ? le16_get(sb + 0x58) : 128;

	if (log_bs > 6) {
		snprintf(err, errlen, "ext2: bad block size (log %u)", log_bs);
		return -1;
	}
	bs = 1024ull << log_bs;
	blocks = le32_get(sb + 4);
	if (incompat & EXT4_FEATURE_INCOMPAT_64BIT) {
		blocks |= (uint64_t)le32_get(sb + 0x150) << 32;
		desc = le16_get(sb + 0xfe);
		if (desc < 32 || desc > 1024 || !is_pow2(desc)) {
			snprintf(err, errlen, "ext2: bad descriptor size %llu",
				 (unsigned long long)desc);
			return -1;
		}
	}
	if (blocks == 0 || blocks > b->size / bs) {
		snprintf(err, errlen,
			 "ext2: the superblock's %llu blocks of %llu bytes do "
			 "not fit the partition (%llu bytes)",
			 (unsigned long long)blocks, (unsigned long long)bs,
			 (unsigned long long)b->size);
		return -1;
	}
	if (bpg < 8 || bpg > 8 * bs || ipg == 0 || ipg > 8 * bs ||
	    first >= blocks) {
		snprintf(err, errlen, "ext2: bad group geometry (%u blocks, %u "
			 "inodes per group)", bpg, ipg);
		return -1;
	}
	if (isize < 128 || isize > bs || !is_pow2(isize)) {
		snprintf(err, errlen, "ext2: bad inode size %u", isize);
		return -1;
	}
	groups = (blocks - first + bpg - 1) / bpg;
	if (groups * desc > b->size || groups * desc > GDT_MAX) {
		snprintf(err, errlen, "ext2: %llu block groups do not fit the "
			 "partition", (unsigned long long)groups);
		return -1;
	}
	return 0;
}

static void
fill_info(struct extfs *e, const uint8_t *sb)
{
	const uint8_t *u = sb + 0x68;

	snprintf(e->info.type, sizeof(e->info.type), "ext2");
	snprintf(e->info.uuid, sizeof(e->info.uuid),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
	snprintf(e->info.label, sizeof(e->info.label), "%.16s",
		 (const char *)sb + 0x78);
	e->info.mtime = le32_get(sb + 0x30);
}

static int
ext_mount(const struct gblk *b, void **out, char *err, size_t errlen)
{
	uint8_t sb[SB_LEN];
	char name[64];
	struct extfs *e;
	errcode_t rc;

	if (gblk_read(b, SB_OFF, sb, SB_LEN) < 0 ||
	    le16_get(sb + 56) != EXT_MAGIC)
		return 1;
	if (check_super(b, sb, err, errlen) < 0)
		return -1;
	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(name, sizeof(name), "gblk:%p", (const void *)b);
	rc = ext2fs_open2(name, NULL,
			  EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP |
			      EXT2_FLAG_IGNORE_CSUM_ERRORS,
			  0, 0, &gblk_io_manager, &e->fs);
	if (rc) {
		snprintf(err, errlen, "ext2: %s", error_message(rc));
		free(e);
		return -1;
	}
	e->b = b;
	fill_info(e, sb);
	*out = e;
	return 0;
}

static void
ext_umount(void *fs)
{
	struct extfs *e = fs;

	ext2fs_close_free(&e->fs);
	free(e);
}

static void
ext_info(void *fs, struct gfs_info *info)
{
	*info = ((struct extfs *)fs)->info;
}

static void
node_of(ext2_ino_t ino, const struct ext2_inode *in, struct gfs_node *n)
{
	*n = (struct gfs_node){.a = ino, .size = EXT2_I_SIZE(in),
			       .mtime = in->i_mtime};
	if (LINUX_S_ISDIR(in->i_mode))
		n->kind = GFS_DIR;
	else if (LINUX_S_ISLNK(in->i_mode))
		n->kind = GFS_LINK;
	else
		n->kind = GFS_FILE;
	if (n->kind != GFS_FILE || !LINUX_S_ISREG(in->i_mode))
		n->size = n->kind == GFS_LINK ? n->size : 0;
}

static int
read_node(struct extfs *e, ext2_ino_t ino, struct gfs_node *n,
	  struct ext2_inode *in, char *err, size_t errlen)
{
	errcode_t rc = ext2fs_read_inode(e->fs, ino, in);

	if (rc) {
		snprintf(err, errlen, "ext2: inode %u: %s", ino,
			 error_message(rc));
		return -1;
	}
	node_of(ino, in, n);
	return 0;
}

static void
ext_root(void *fs, struct gfs_node *n)
{
	*n = (struct gfs_node){.kind = GFS_DIR, .a = EXT2_ROOT_INO};
	(void)fs;
}

struct ext_dir {
	struct extfs *e;
	gfs_dir_fn fn;
	void *arg;
	int stop;
	char *err;
	size_t errlen;
};

static int
ext_dirent(ext2_ino_t dir, int entry, struct ext2_dir_entry *d, int offset,
	   int blocksize, char *buf, void *priv)
{
	struct ext_dir *x = priv;
	char name[GFS_NAME_MAX];
	int len = ext2fs_dirent_name_len(d);
	struct gfs_node n = {.a = d->inode};
	struct ext2_inode in;

	(void)dir;
	(void)entry;
	(void)buf;
	/* libext2fs checked rec_len; the name must lie inside it too. */
	if (d->inode == 0 || len <= 0 || offset < 0 ||
	    len > d->rec_len - 8 || offset + 8 + len > blocksize)
		return 0;
	memcpy(name, d->name, len);
	name[len] = '\0';
	/* The type from the entry, the rest (size, time) when someone
	 * asks (gfs_stat); the inode now only when the entry has no type. */
	switch (ext2fs_dirent_file_type(d)) {
	case EXT2_FT_UNKNOWN:
		if (read_node(x->e, d->inode, &n, &in, x->err, x->errlen) < 0)
			return 0; /* an unreadable entry is left out */
		break;
	case EXT2_FT_DIR:
		n.kind = GFS_DIR;
		n.b = 1;
		break;
	case EXT2_FT_SYMLINK:
		n.kind = GFS_LINK;
		n.b = 1;
		break;
	default:
		n.kind = GFS_FILE;
		n.b = 1;
	}
	x->stop = x->fn(x->arg, name, &n);
	return x->stop ? DIRENT_ABORT : 0;
}

static int
ext_readdir(void *fs, const struct gfs_node *dir, gfs_dir_fn fn, void *arg,
	    char *err, size_t errlen)
{
	struct ext_dir x = {fs, fn, arg, 0, err, errlen};
	errcode_t rc;

	rc = ext2fs_dir_iterate2(x.e->fs, (ext2_ino_t)dir->a,
				 0, NULL,
				 ext_dirent, &x);
	if (rc) {
		snprintf(err, errlen, "ext2: directory inode %llu: %s",
			 (unsigned long long)dir->a, error_message(rc));
		return -1;
	}
	return 0;
}

static int
ext_stat(void *fs, struct gfs_node *n, char *err, size_t errlen)
{
	struct ext2_inode in;

	if (!n->b)
		return 0;
	return read_node(fs, (ext2_ino_t)n->a, n, &in, err, errlen);
}

/* Read n bytes at off through libext2fs's file layer. */
static int read_ino_blocks(struct extfs *e, ext2_ino_t ino, uint64_t off,
			   void *buf, size_t n, char *err, size_t errlen);

/*
 * The part of one extent inside [off, off + n) of the file, straight from
 * the partition into buf: one read for a run of blocks. What lies between
 * *done and the extent (a hole) is zeroed first; an uninitialized extent
 * reads as zeros too (ext4 disk layout, "Extent Tree"). *done moves to
 * the extent's end.
 */
static int
extent_copy(struct extfs *e, const struct ext2fs_extent *x, uint64_t off,
	    uint8_t *buf, size_t n, uint64_t *done)
{
	uint64_t bs = e->fs->blocksize, lo = x->e_lblk * bs;
	uint64_t hi = lo + (uint64_t)x->e_len * bs, a, z;

	if (hi <= *done || lo >= off + n)
		return 0;
	/* A run past the file system's end is a corrupt image, not data. */
	if (x->e_pblk >= ext2fs_blocks_count(e->fs->super) ||
	    x->e_len > ext2fs_blocks_count(e->fs->super) - x->e_pblk)
		return -1;
	a = lo > *done ? lo : *done;
	z = hi < off + n ? hi : off + n;
	memset(buf + (*done - off), 0, a - *done);
	*done = z;
	if (x->e_flags & EXT2_EXTENT_FLAGS_UNINIT) {
		memset(buf + (a - off), 0, z - a);
		return 0;
	}
	return gblk_read(e->b, x->e_pblk * bs + (a - lo), buf + (a - off),
			 (size_t)(z - a));
}

/*
 * A file with an extent tree: its leaf extents in order, each copied in
 * one read, holes zeroed. libext2fs walks the tree (and checks it); the
 * walk is bounded by the file's blocks.
 */
static int
read_extents(struct extfs *e, ext2_ino_t ino, uint64_t off, uint8_t *buf,
	     size_t n)
{
	uint64_t budget = n / e->fs->blocksize + 4096, done = off;
	ext2_extent_handle_t h;
	struct ext2fs_extent x;
	errcode_t rc;
	int op = EXT2_EXTENT_ROOT;

	if (ext2fs_extent_open(e->fs, ino, &h))
		return -1;
	for (; budget > 0; budget--, op = EXT2_EXTENT_NEXT_LEAF) {
		rc = ext2fs_extent_get(h, op, &x);
		if (rc == EXT2_ET_EXTENT_NO_NEXT)
			break;
		if (rc)
			goto fail;
		if (!(x.e_flags & EXT2_EXTENT_FLAGS_LEAF))
			continue;
		if (x.e_lblk * (uint64_t)e->fs->blocksize >= off + n)
			break;
		if (extent_copy(e, &x, off, buf, n, &done) < 0)
			goto fail;
	}
	ext2fs_extent_free(h);
	if (budget == 0)
		return -1;
	memset(buf + (done - off), 0, off + n - done);
	return 0;
fail:
	ext2fs_extent_free(h);
	return -1;
}

static int
read_ino(struct extfs *e, ext2_ino_t ino, uint64_t off, void *buf, size_t n,
	 char *err, size_t errlen)
{
	struct ext2_inode in;

	/* Large reads of extent files (kernels, initrds) go by extent. */
	if (n >= 65536 && ext2fs_read_inode(e->fs, ino, &in) == 0 &&
	    (in.i_flags & EXT4_EXTENTS_FL) &&
	    !(in.i_flags & EXT4_INLINE_DATA_FL) &&
	    off <= EXT2_I_SIZE(&in) && n <= EXT2_I_SIZE(&in) - off)
		return read_extents(e, ino, off, buf, n) == 0
			   ? 0
			   : read_ino_blocks(e, ino, off, buf, n, err, errlen);
	return read_ino_blocks(e, ino, off, buf, n, err, errlen);
}

/* Through libext2fs's file reads, a block at a time. */
static int
read_ino_blocks(struct extfs *e, ext2_ino_t ino, uint64_t off, void *buf,
		size_t n, char *err, size_t errlen)
{
	ext2_file_t f = NULL;
	errcode_t rc;
	uint8_t *p = buf;

	rc = ext2fs_file_open(e->fs, ino, 0, &f);
	if (!rc)
		rc = ext2fs_file_llseek(f, off, EXT2_SEEK_SET, NULL);
	while (!rc && n > 0) {
		unsigned int want = n > (1u << 30) ? 1u << 30 : (unsigned)n;
		unsigned int got = 0;

		rc = ext2fs_file_read(f, p, want, &got);
		if (!rc && got == 0)
			rc = EXT2_ET_SHORT_READ;
		p += got;
		n -= got;
	}
	if (rc) {
		snprintf(err, errlen, "ext2: reading inode %u: %s", ino,
			 error_message(rc));
	}
	if (f)
		ext2fs_file_close(f);
	return rc ? -1 : 0;
}

static int
ext_readlink(void *fs, const struct gfs_node *n, char *buf, size_t len,
	     char *err, size_t errlen)
{
	struct extfs *e = fs;
	struct ext2_inode in;
	struct gfs_node node;
	uint64_t size;

	if (read_node(e, (ext2_ino_t)n->a, &node, &in, err, errlen) < 0)
		return -1;
	size = EXT2_I_SIZE(&in);
	if (size == 0 || size >= len) {
		snprintf(err, errlen, "ext2: symlink inode %llu: bad length "
			 "%llu", (unsigned long long)n->a,
			 (unsigned long long)size);
		return -1;
	}
	if (ext2fs_is_fast_symlink(&in)) {
		if (size > sizeof(in.i_block)) {
			snprintf(err, errlen, "ext2: bad fast symlink");
			return -1;
		}
		memcpy(buf, in.i_block, size);
	} else if (read_ino(e, (ext2_ino_t)n->a, 0, buf, size, err,
			    errlen) < 0) {
		return -1;
	}
	buf[size] = '\0';
	return 0;
}

static int
ext_read(void *fs, const struct gfs_node *f, uint64_t off, void *buf,
	 size_t n, char *err, size_t errlen)
{
	return read_ino(fs, (ext2_ino_t)f->a, off, buf, n, err, errlen);
}

const struct gfs_ops gfs_ext_ops = {
    .name = "ext2",
    .mount = ext_mount,
    .umount = ext_umount,
    .info = ext_info,
    .root = ext_root,
    .readdir = ext_readdir,
    .stat = ext_stat,
    .readlink = ext_readlink,
    .read = ext_read,
};
