/*
 * A byte range that grub-bhyve reads a partition table or a file system
 * from: a whole disk image, a partition of it, or an LVM logical volume
 * (one segment per run of physical extents, possibly on several images).
 * Segments live in a host file (fd, base) or in memory (tests, fuzzing).
 * Every read is checked against the range: a structure that points past
 * it fails to read instead of reaching the rest of the image.
 */
#ifndef GRUB_BLK_H
#define GRUB_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An LVM volume has at most this many segments here. */
#define GBLK_MAX_SEGS 32

struct gblk_seg {
	uint64_t start, len;  /* within the range */
	int fd;		      /* the host file, or -1 for mem */
	const uint8_t *mem;   /* in-memory backing (fd -1) */
	uint64_t base;	      /* where start lies in fd or mem */
};

struct gblk {
	struct gblk_seg seg[GBLK_MAX_SEGS];
	int nseg;
	uint64_t size;
};

/* The whole of a host file or block device (borrowing fd). */
void gblk_init_fd(struct gblk *b, int fd, uint64_t size);

/* The whole of a buffer (borrowed). */
void gblk_init_mem(struct gblk *b, const void *mem, uint64_t size);

/*
 * Read n bytes at off; 0, or -1 with errno EIO when the range ends
 * before off + n (or the host read failed).
 */
int gblk_read(const struct gblk *b, uint64_t off, void *buf, size_t n);

/* off..off+len of b as a range of its own; -1 if it does not fit. */
int gblk_sub(const struct gblk *b, uint64_t off, uint64_t len,
	     struct gblk *out);

/* Append len bytes of src at src_off to the end of b (LVM segments). */
int gblk_append(struct gblk *b, const struct gblk *src, uint64_t src_off,
		uint64_t len);

/* The size of a host file or block device open as fd. */
int gblk_fd_size(int fd, uint64_t *size);

#endif
