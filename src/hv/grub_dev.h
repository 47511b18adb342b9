/*
 * grub-bhyve's devices: the (host) device (the host's file system, as
 * grub2-bhyve's hostfs) and the disk images a device.map names:
 *
 *   # comment
 *   (hd0)   /images/disk.img
 *   (cd0)   /images/install.iso
 *
 * A GRUB file name is "(DEV)/path" or "/path" on the root device; DEV may
 * carry a partition ("hd0,msdos1"). Reading file systems inside disk
 * images is not supported yet: such reads fail with a clear error.
 *
 * Errors come back in err as GRUB words them, without the "error: "
 * prefix or the final period (the shell adds both):
 *   file '/x' not found
 *   disk 'hd9' not found
 *   invalid file name 'x'
 */
#ifndef GRUB_DEV_H
#define GRUB_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "load_file.h"

#define GDEV_MAX 32
#define GDEV_NAME_MAX 32
#define GDEV_PATH_MAX 1024

struct gdev {
	char name[GDEV_NAME_MAX]; /* "hd0" */
	char path[GDEV_PATH_MAX]; /* the host image */
};

struct gdev_map {
	struct gdev dev[GDEV_MAX];
	int n;
};

/*
 * One device.map line (without its newline) into m; blank lines and
 * '#' comments are fine. err gets what is wrong with a bad line.
 */
int gdev_map_add_line(struct gdev_map *m, const char *line, char *err,
		      size_t errlen);

/* A whole device.map; err names FILE:LINE of the first bad line. */
int gdev_map_load(struct gdev_map *m, const char *file, char *err,
		  size_t errlen);

/* The device for a name ("hd0" or "hd0,msdos1"), or NULL. */
const struct gdev *gdev_find(const struct gdev_map *m, const char *name);

/*
 * Split a GRUB file name into its device (root when there is none) and
 * its path ("" for a bare "(dev)").
 */
int gdev_split(const char *root, const char *name, char *dev, size_t devlen,
	       const char **path, char *err, size_t errlen);

/*
 * Open a file of at most max bytes to load: its first head_max bytes
 * read into f's head, the rest left to load_file_copy (load_file_close
 * frees it). A file that fits in head_max is not kept open.
 */
int gdev_open(const struct gdev_map *m, const char *root, const char *name,
	      uint64_t max, size_t head_max, struct load_file *f, char *err,
	      size_t errlen);

/* Read a whole file of at most max bytes into a malloc'ed buffer. */
int gdev_read(const struct gdev_map *m, const char *root, const char *name,
	      uint64_t max, uint8_t **data, size_t *len, char *err,
	      size_t errlen);

/* Does the file exist (search --file)? */
bool gdev_exists(const struct gdev_map *m, const char *dev, const char *path);

/*
 * ls: with no name the devices; "(dev)" the device; a directory its
 * entries (sorted, directories with a '/', dot files only with all); a
 * file its name. long_fmt prints one entry per line with its size.
 */
int gdev_ls(const struct gdev_map *m, const char *root, const char *name,
	    bool all, bool long_fmt, FILE *out, char *err, size_t errlen);

#endif
