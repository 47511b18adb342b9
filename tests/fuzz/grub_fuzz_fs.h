/*
 * Shared by the grub-bhyve file system fuzz targets: mount one reader on
 * the input as a disk, then walk it as grub-bhyve would (list the root
 * and each directory below it, two levels deep; look up paths with
 * symlinks and ".."; read every file listed, in pieces). Any crash,
 * sanitizer report or hang (libFuzzer's -timeout) is a finding.
 */
#ifndef GRUB_FUZZ_FS_H
#define GRUB_FUZZ_FS_H

#include <stdlib.h>
#include <string.h>

#include "grub_fs.h"

struct fz_walk {
	const struct gfs *fs;
	int depth, budget;
};

static int
fz_entry(void *arg, const char *name, const struct gfs_node *n)
{
	struct fz_walk *w = arg;
	struct gfs_node s = *n;
	char err[256], buf[4096];

	(void)name;
	if (--w->budget <= 0)
		return 1;
	if (gfs_stat(w->fs, &s, err, sizeof(err)) < 0)
		return 0;
	if (s.kind == GFS_FILE) {
		uint64_t len = s.size < 65536 ? s.size : 65536;

		for (uint64_t off = 0; off < len; off += sizeof(buf)) {
			size_t k = len - off < sizeof(buf) ? len - off
							   : sizeof(buf);

			if (gfs_read(w->fs, &s, off, buf, k, err,
				     sizeof(err)) < 0)
				break;
		}
	} else if (s.kind == GFS_DIR && w->depth < 2) {
		struct fz_walk sub = {w->fs, w->depth + 1, w->budget};

		gfs_readdir(w->fs, &s, fz_entry, &sub, err, sizeof(err));
		w->budget = sub.budget;
	} else if (s.kind == GFS_LINK && w->fs->ops->readlink) {
		w->fs->ops->readlink(w->fs->fs, &s, buf, sizeof(buf), err,
				     sizeof(err));
	}
	return 0;
}

static void
fz_fs(const struct gfs_ops *ops, const uint8_t *data, size_t size)
{
	static const char *const paths[] = {
	    "/", "/boot/vmlinuz", "/a/b/../c", "/boot/link", "/x/y/z/w",
	    "/isolinux/isolinux.cfg", "/EFI/BOOT/BOOTX64.EFI",
	};
	struct gblk b;
	struct gfs fs = {ops, NULL};
	struct fz_walk w = {&fs, 0, 2000};
	struct gfs_node root, n;
	char err[512];

	gblk_init_mem(&b, data, size);
	if (ops->mount(&b, &fs.fs, err, sizeof(err)) != 0)
		return;
	ops->root(fs.fs, &root);
	gfs_readdir(&fs, &root, fz_entry, &w, err, sizeof(err));
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (gfs_lookup(&fs, paths[i], &n, err, sizeof(err)) == 0 &&
		    n.kind == GFS_FILE && n.size) {
			char buf[512];
			size_t k = n.size < sizeof(buf) ? n.size : sizeof(buf);

			gfs_read(&fs, &n, n.size - k, buf, k, err,
				 sizeof(err));
		}
	gfs_umount(&fs);
}

#endif
