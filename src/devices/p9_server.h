/*
 * A 9P2000.L file server over one host directory (the protocol as Linux's
 * net/9p client speaks it: Documentation/filesystems/9p.rst and the
 * 9p2000.L description kept with diod). It knows nothing of virtio: it
 * answers one T-message in a byte buffer with one R-message in another,
 * so the virtio-9p device, the unit tests and the fuzz target drive it
 * the same way.
 *
 * Every message field is checked against the message's own size and the
 * negotiated msize; every path resolves beneath the shared directory with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS),
 * so no symbolic link is ever followed on the host: the guest's kernel
 * reads links (Treadlink) and walks their targets itself, inside its own
 * view of the share. Not thread-safe: one caller at a time.
 */
#ifndef P9_SERVER_H
#define P9_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Linux's client wants at least 4 KiB; a header is 7 bytes. */
#define P9_MSIZE_MIN 4096
#define P9_HDRSZ 7
/* The Rlerror every failure becomes: size, type, tag, ecode. */
#define P9_RLERROR_SIZE 11
/* Names per Twalk (the protocol's MAXWELEM). */
#define P9_MAXWELEM 16
/*
 * Fids one session may hold at once (Linux holds one a dentry in use, and
 * with cache=loose one a cached dentry), and of those, open ones (each a
 * host fd): at most this, and half of RLIMIT_NOFILE.
 */
#define P9_MAX_FIDS 32768
#define P9_MAX_OPEN 4096

struct p9_server;

/*
 * A server over dirfd (a directory; the server owns it from here on and
 * closes it in p9_server_free), read-only if ro, offering msize_max bytes
 * per message at most (P9_MSIZE_MIN or more). NULL if out of memory.
 */
struct p9_server *p9_server_new(int dirfd, bool ro, uint32_t msize_max);
/* Close every fid and the directory. */
void p9_server_free(struct p9_server *s);

/*
 * Serve the T-message in req[0, reqlen): the R-message goes to resp (at
 * most resplen bytes) and its length is returned; 0 when no reply can be
 * made (fewer than 7 bytes of request or P9_RLERROR_SIZE of room).
 */
size_t p9_server_handle(struct p9_server *s, const uint8_t *req, size_t reqlen,
			uint8_t *resp, size_t resplen);

/* The msize Tversion settled on (msize_max before the first Tversion). */
uint32_t p9_server_msize(const struct p9_server *s);
/* Fids in use (tests). */
unsigned int p9_server_nfids(const struct p9_server *s);

#endif
