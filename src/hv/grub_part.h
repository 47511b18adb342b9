/*
 * Partition tables of grub-bhyve's disks, named as GRUB names them:
 * MBR primaries msdos1..4 and logical partitions from msdos5 on (the
 * extended partition's chain of EBRs), GPT entries gpt1..N by their
 * index in the entry array. 512-byte sectors for MBR; GPT at 512 or 4096.
 *
 * A hostile image is expected: every entry is checked against the disk,
 * the EBR chain is bounded and must not loop, the GPT header and entry
 * array must carry good CRC32s (the backup header is used when the
 * primary is bad), and entry counts and sizes are bounded before
 * anything is read or allocated.
 */
#ifndef GRUB_PART_H
#define GRUB_PART_H

#include <stddef.h>
#include <stdint.h>

#include "grub_blk.h"

#define GPART_MAX 128	   /* partitions per disk */
#define GPART_GPT_MAX 4096 /* GPT entries looked at */

struct gpart {
	char name[16];	     /* "msdos1", "gpt2" */
	int number;	     /* the N of the name */
	uint64_t start, len; /* bytes on the disk */
};

struct gpart_table {
	const char *scheme; /* "msdos", "gpt", or NULL: no partition table */
	struct gpart p[GPART_MAX];
	int n;
};

/*
 * The disk's partitions into t (t->n 0 without a table). -1 with err for
 * a broken table; t then holds the partitions found before the break.
 */
int gpart_scan(const struct gblk *disk, struct gpart_table *t, char *err,
	       size_t errlen);

/*
 * The partition a GRUB name means: "msdos5", "gpt2", or a bare number
 * ("1": the first partition whatever the scheme). NULL if none.
 */
const struct gpart *gpart_find(const struct gpart_table *t, const char *name);

/* CRC-32 (IEEE 802.3, as GPT and zlib use). */
uint32_t gpart_crc32(const void *data, size_t len);

#endif
