/*
 * A file a loader copies into guest memory (a kernel, an initrd): its
 * first bytes in memory for the parsers, the rest read straight into
 * guest memory when loading, so a 35 MB vmlinux costs one copy and no
 * buffer of its size. A file wholly in memory (unit tests, fuzzing) has
 * fd -1. A file inside a disk image (grub-bhyve's devices) has fd -1 and
 * a reader instead: read() fetches what head lacks, release() frees src.
 */
#ifndef LOAD_FILE_H
#define LOAD_FILE_H

#include <stddef.h>
#include <stdint.h>

/* How much of a file the loaders' parsers see (headers live here). */
#define LOAD_FILE_HEAD (64 * 1024)

struct load_file {
	const uint8_t *head; /* the file's first head_len bytes */
	size_t head_len;
	uint64_t len;	  /* the whole file's length */
	int fd;		  /* where the rest is; -1 when head is all of it */
	const char *name; /* for errors */
	int (*read)(void *src, uint64_t off, void *dst, uint64_t n, char *err,
		    size_t errlen);
	void (*release)(void *src);
	void *src;
};

/* A file wholly in memory. */
static inline struct load_file
load_file_mem(const void *data, uint64_t len)
{
	return (struct load_file){.head = data,
				  .head_len = len,
				  .len = len,
				  .fd = -1,
				  .name = "image"};
}

/*
 * Copy n bytes at offset off of the file to dst (the caller checked
 * off + n <= len). A file that shrank since it was opened is an error.
 */
int load_file_copy(const struct load_file *f, uint64_t off, void *dst,
		   uint64_t n, char *err, size_t errlen);

/* Free the head, close the fd or release the reader of a file gdev_open
 * opened. */
void load_file_close(struct load_file *f);

#endif
