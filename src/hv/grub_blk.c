/* Checked byte ranges of disk images (grub_blk.h). */
#include <errno.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "grub_blk.h"

void
gblk_init_fd(struct gblk *b, int fd, uint64_t size)
{
	memset(b, 0, sizeof(*b));
	b->seg[0] = (struct gblk_seg){.len = size, .fd = fd};
	b->nseg = size ? 1 : 0;
	b->size = size;
}

void
gblk_init_mem(struct gblk *b, const void *mem, uint64_t size)
{
	memset(b, 0, sizeof(*b));
	b->seg[0] = (struct gblk_seg){.len = size, .fd = -1, .mem = mem};
	b->nseg = size ? 1 : 0;
	b->size = size;
}

static int
seg_read(const struct gblk_seg *s, uint64_t off, uint8_t *p, size_t n)
{
	if (s->fd < 0) {
		memcpy(p, s->mem + s->base + off, n);
		return 0;
	}
	while (n > 0) {
		ssize_t r = pread(s->fd, p, n, (off_t)(s->base + off));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			errno = r ? errno : EIO;
			return -1;
		}
		p += r;
		off += (uint64_t)r;
		n -= (size_t)r;
	}
	return 0;
}

int
gblk_read(const struct gblk *b, uint64_t off, void *buf, size_t n)
{
	uint8_t *p = buf;

	if (off > b->size || n > b->size - off) {
		errno = EIO;
		return -1;
	}
	for (int i = 0; i < b->nseg && n > 0; i++) {
		const struct gblk_seg *s = &b->seg[i];
		uint64_t k;

		if (off >= s->start + s->len || off < s->start)
			continue;
		k = s->start + s->len - off;
		if (k > n)
			k = n;
		if (seg_read(s, off - s->start, p, k) < 0)
			return -1;
		p += k;
		off += k;
		n -= k;
	}
	if (n > 0) {
		errno = EIO;
		return -1;
	}
	return 0;
}

int
gblk_sub(const struct gblk *b, uint64_t off, uint64_t len, struct gblk *out)
{
	struct gblk r;

	if (off > b->size || len > b->size - off)
		return -1;
	memset(&r, 0, sizeof(r));
	if (len && gblk_append(&r, b, off, len) < 0)
		return -1;
	*out = r;
	return 0;
}

int
gblk_append(struct gblk *b, const struct gblk *src, uint64_t src_off,
	    uint64_t len)
{
	if (src_off > src->size || len > src->size - src_off ||
	    len > UINT64_MAX - b->size)
		return -1;
	for (int i = 0; i < src->nseg && len > 0; i++) {
		const struct gblk_seg *s = &src->seg[i];
		uint64_t skip, k;

		if (src_off >= s->start + s->len || src_off < s->start)
			continue;
		if (b->nseg == GBLK_MAX_SEGS)
			return -1;
		skip = src_off - s->start;
		k = s->len - skip < len ? s->len - skip : len;
		b->seg[b->nseg++] = (struct gblk_seg){.start = b->size,
						      .len = k,
						      .fd = s->fd,
						      .mem = s->mem,
						      .base = s->base + skip};
		b->size += k;
		src_off += k;
		len -= k;
	}
	return len ? -1 : 0;
}

int
gblk_fd_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -1;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size);
	*size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	return 0;
}
