/* Copying a loader's file into guest memory (load_file.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "load_file.h"

int
load_file_copy(const struct load_file *f, uint64_t off, void *dst, uint64_t n,
	       char *err, size_t errlen)
{
	uint8_t *p = dst;

	if (off < f->head_len) {
		uint64_t k = f->head_len - off < n ? f->head_len - off : n;

		memcpy(p, f->head + off, k);
		p += k;
		off += k;
		n -= k;
	}
	if (n > 0 && f->read)
		return f->read(f->src, off, p, n, err, errlen);
	while (n > 0) {
		ssize_t r = f->fd < 0 ? 0 : pread(f->fd, p, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "reading '%s': %s", f->name,
				 r ? strerror(errno)
				   : "the file shrank since it was opened");
			return -1;
		}
		p += r;
		off += (uint64_t)r;
		n -= (uint64_t)r;
	}
	return 0;
}

void
load_file_close(struct load_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->release)
		f->release(f->src);
	free((void *)f->head);
	free((void *)f->name);
	*f = (struct load_file){.fd = -1};
}
