/*
 * grub-bhyve's devices: the (host) device (the host's file system, as
 * grub2-bhyve's hostfs) and the disk images a device.map names:
 *
 *   # comment
 *   (hd0)   /images/disk.img
 *   (cd0)   /images/install.iso
 *
 * A GRUB file name is "(DEV)/path" or "/path" on the root device. DEV is
 * a mapped disk ("hd0", "cd0"), one of its partitions ("hd0,msdos1",
 * "hd0,msdos5", "hd0,gpt2", "hd0,1": grub_part.h), an LVM logical volume
 * on them ("lvm/VG-LV": grub_lvm.h) or (host). Files are read from the
 * file system found on the device: ext2/3/4, FAT, ISO9660 (grub_fs.h);
 * anything else is named (libblkid) and refused. Disk images are opened
 * read-only for each call and closed again (a file opened for loading
 * keeps its image open until load_file_close).
 *
 * (host) is the host's file system. Its reach is the map's host field:
 * all of it (GDEV_HOST_ALL, the zero value: -r host, grub2-bhyve's way),
 * nothing (GDEV_HOST_OFF: grub-bhyve's default when the root is a guest
 * device, so a guest's grub.cfg cannot read host files), or only what
 * lies beneath host_dir (GDEV_HOST_DIR: -H DIR; openat2 with
 * RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, so neither "..", an absolute
 * symlink nor /proc's magic links lead out of it).
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

enum gdev_host {
	GDEV_HOST_ALL = 0, /* the whole host file system */
	GDEV_HOST_OFF,	   /* (host) is not there */
	GDEV_HOST_DIR,	   /* beneath host_dir only */
};

struct gdev_map {
	struct gdev dev[GDEV_MAX];
	int n;
	enum gdev_host host;
	char host_dir[GDEV_PATH_MAX];
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

/* Does the file exist on dev ("hd0,msdos1", no parentheses)? */
bool gdev_exists(const struct gdev_map *m, const char *dev, const char *path);

/*
 * What search --fs-uuid / --label / --file and grub.cfg discovery need:
 * every device grub-bhyve can read, in ls order ((host) when it is on,
 * then each mapped disk followed by its partitions, then LVM volumes),
 * with what is on it. Usage:
 *
 *	struct gdev_fsinfo *v;
 *	int n = gdev_list(map, &v);
 *	for (int i = 0; i < n; i++)
 *		if (v[i].uuid[0] && !strcasecmp(v[i].uuid, want))
 *			... gsh_set(sh, "root", v[i].dev) ...
 *	free(v);
 *
 * and for --file or a grub.cfg, gdev_exists(map, v[i].dev, "/boot/grub/
 * grub.cfg") on each. UUIDs and labels read as GRUB prints them (ext2:
 * the superblock's UUID; FAT: "abcd-1234"; ISO9660: the modification
 * date "2024-01-31-12-00-00-00"), so compare UUIDs without regard to
 * case, as GRUB's search does. Returns the count (0 on an error).
 */
struct gdev_fsinfo {
	char dev[GDEV_NAME_MAX + 160]; /* "hd0,msdos1", "lvm/vg-root", "host" */
	char type[32];  /* "ext2", "fat", "iso9660", "hostfs"; what libblkid
			   names when grub-bhyve cannot read it ("xfs");
			   "" when nothing was found */
	bool readable;  /* grub-bhyve can read files on it */
	char uuid[64];  /* "" when none */
	char label[128];
	uint64_t start, size; /* bytes: the partition on its disk */
	bool partition;
};

int gdev_list(const struct gdev_map *m, struct gdev_fsinfo **v);

/*
 * ls: with no name the devices; "(dev)" the device; a directory its
 * entries (sorted, directories with a '/', dot files only with all); a
 * file its name. long_fmt prints one entry per line with its size.
 */
int gdev_ls(const struct gdev_map *m, const char *root, const char *name,
	    bool all, bool long_fmt, FILE *out, char *err, size_t errlen);

#endif
