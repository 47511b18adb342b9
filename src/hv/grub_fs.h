/*
 * The file systems grub-bhyve reads in disk images, read-only: ext2/3/4
 * (grub_fs_ext.c, on libext2fs), ISO9660 with Rock Ridge and Joliet
 * (grub_fs_iso.c), FAT12/16/32 with long names (grub_fs_fat.c). Each is
 * a struct gfs_ops; gfs_mount tries them in turn on a byte range
 * (grub_blk.h), and path lookup (symlinks, "..", bounds) is shared here.
 *
 * A node is a file, directory or symlink as the file system knows it:
 * its kind, size, time and a reader-specific handle (an inode number, a
 * first cluster, an extent), copied by value.
 */
#ifndef GRUB_FS_H
#define GRUB_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grub_blk.h"

#define GFS_NAME_MAX 256   /* a name in a directory, UTF-8, with NUL */
#define GFS_DEPTH_MAX 64   /* directories in one path */
#define GFS_LINKS_MAX 8	   /* symlinks followed in one lookup (GRUB: 8) */
#define GFS_DIR_MAX 100000 /* entries listed from one directory */

enum gfs_kind { GFS_FILE, GFS_DIR, GFS_LINK };

struct gfs_node {
	enum gfs_kind kind;
	uint64_t size;
	int64_t mtime; /* Unix time, 0 when unknown */
	uint64_t a, b; /* the reader's own */
};

struct gfs_info {
	char type[16];	/* GRUB's name: "ext2", "fat", "iso9660" */
	char uuid[64];	/* as GRUB prints it; "" if none */
	char label[128];
	int64_t mtime; /* last modification, 0 when unknown */
};

/* Called for each entry of a directory; non-zero stops the listing. */
typedef int (*gfs_dir_fn)(void *arg, const char *name,
			  const struct gfs_node *n);

struct gfs_ops {
	const char *name;
	/*
	 * Recognise and open the file system on b (which must outlive it):
	 * 1 it is not this type, 0 mounted in *fs, -1 it is this type but
	 * broken (err says how).
	 */
	int (*mount)(const struct gblk *b, void **fs, char *err,
		     size_t errlen);
	void (*umount)(void *fs);
	void (*info)(void *fs, struct gfs_info *info);
	void (*root)(void *fs, struct gfs_node *n);
	int (*readdir)(void *fs, const struct gfs_node *dir, gfs_dir_fn fn,
		       void *arg, char *err, size_t errlen);
	/* Complete a node readdir left partial (NULL: readdir's are whole). */
	int (*stat)(void *fs, struct gfs_node *n, char *err, size_t errlen);
	/* A symlink's target, NUL-terminated, at most len - 1 bytes. */
	int (*readlink)(void *fs, const struct gfs_node *n, char *buf,
			size_t len, char *err, size_t errlen);
	/* n bytes at off of a file (off + n <= size). */
	int (*read)(void *fs, const struct gfs_node *f, uint64_t off,
		    void *buf, size_t n, char *err, size_t errlen);
};

extern const struct gfs_ops gfs_ext_ops, gfs_iso_ops, gfs_fat_ops;

/* A mounted file system. */
struct gfs {
	const struct gfs_ops *ops;
	void *fs;
};

/*
 * Mount whichever file system is on b. 1 when none is recognised, 0 when
 * mounted, -1 when one is recognised but broken (err).
 */
int gfs_mount(const struct gblk *b, struct gfs *fs, char *err, size_t errlen);
void gfs_umount(struct gfs *fs);

/*
 * The node at path ("/a/b", "" or "/" for the root), following symlinks
 * (at most GFS_LINKS_MAX) and "..": 0, or -1 with err ("file '/x' not
 * found" in GRUB's words when a component is missing).
 */
int gfs_lookup(const struct gfs *fs, const char *path, struct gfs_node *n,
	       char *err, size_t errlen);

/* The directory's entries (without "." and ".."). */
int gfs_readdir(const struct gfs *fs, const struct gfs_node *dir,
		gfs_dir_fn fn, void *arg, char *err, size_t errlen);

/* Complete a node from gfs_readdir (its size and time). */
int gfs_stat(const struct gfs *fs, struct gfs_node *n, char *err,
	     size_t errlen);

int gfs_read(const struct gfs *fs, const struct gfs_node *f, uint64_t off,
	     void *buf, size_t n, char *err, size_t errlen);

/*
 * What libblkid finds on b when no reader recognises it (xfs, btrfs,
 * swap, LVM2_member...): type, UUID and label in info. Only for a range
 * that is one piece of a host file; -1 when nothing is found.
 */
int gfs_probe_other(const struct gblk *b, struct gfs_info *info);

/*
 * Helpers for the readers: a UTF-8 encoding of a UCS-2/UTF-16 name
 * (big- or little-endian units), for Joliet and FAT long names. Returns
 * the bytes written (out is always NUL-terminated).
 */
size_t gfs_utf16_to_utf8(const uint8_t *in, size_t units, bool big_endian,
			 char *out, size_t outlen);

#endif
