/*
 * The block backend, as bhyve's block_if: a disk image (regular file or
 * block device) and worker threads that carry out read, write and flush
 * requests and call back when each is done.
 *
 * Settings come from the device's config node (bhyve_config(5)):
 *   path        the image (required)
 *   ro          open read-only; writes fail with EROFS
 *   nocache     O_DIRECT: bypass the host's page cache
 *   direct      O_SYNC: every write is on stable storage when it completes
 *   sectorsize  LOGICAL[/PHYSICAL] sector sizes the guest sees
 *   nodelete    refuse discard (TRIM, DSM deallocate): blockif_candelete
 *               is false and blockif_delete fails with EOPNOTSUPP
 *
 * Every disk device (virtio-blk, ahci, nvme) uses it. Requests carry
 * byte offsets and lengths; devices check them against blockif_size()
 * before queueing, and the backend checks again.
 */
#ifndef BLOCK_IF_H
#define BLOCK_IF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "config.h"

#define BLOCKIF_IOV_MAX 128

struct blockif_req {
	int br_iovcnt;
	off_t br_offset;
	ssize_t br_resid;
	/* Called on a worker thread; err is 0 or an errno value. */
	void (*br_callback)(struct blockif_req *req, int err);
	void *br_param;
	struct iovec br_iov[BLOCKIF_IOV_MAX];
	/* The backend's own. */
	int br_op;
	struct blockif_req *br_next;
};

struct blockif_ctxt;

/*
 * Whether key is one of the settings above: every disk device accepts
 * them all, besides its own (its unknown-option check asks here).
 */
bool blockif_is_option(const char *key);
/* The settings, for a device's "unknown option" line. */
#define BLOCKIF_OPTIONS_HELP                                                   \
	"path, ro, nocache, direct, sectorsize=L[/P], nodelete"

/*
 * -s SLOT,EMUL,PATH[,opt...]: the first word is the path, the rest are
 * key=value settings or bare flags (bhyve's blockif_legacy_config).
 */
int blockif_legacy_config(struct config *node, const char *opts, char *err,
			  size_t errlen);
/* Open the image and start the workers; NULL with a one-line message in err. */
struct blockif_ctxt *blockif_open(const struct config *node, char *err,
				  size_t errlen);
/* Stop the workers (queued requests are dropped) and close the image. */
void blockif_close(struct blockif_ctxt *bc);

off_t blockif_size(struct blockif_ctxt *bc);
int blockif_sectsz(struct blockif_ctxt *bc);
/* The physical sector size and the offset of the first aligned sector. */
void blockif_psectsz(struct blockif_ctxt *bc, int *size, int *off);
bool blockif_is_ro(struct blockif_ctxt *bc);
const char *blockif_path(struct blockif_ctxt *bc);

/* Queue a request; 0, or an errno value when it cannot be queued. */
int blockif_read(struct blockif_ctxt *bc, struct blockif_req *breq);
int blockif_write(struct blockif_ctxt *bc, struct blockif_req *breq);
/* Flush: fdatasync, so what was written survives the host. */
int blockif_flush(struct blockif_ctxt *bc, struct blockif_req *breq);
/*
 * Discard br_resid bytes at br_offset (no iovecs): a hole punched in a
 * file, BLKDISCARD on a block device. Reads of the range then return
 * zeros. EOPNOTSUPP with nodelete, EROFS on a read-only disk.
 */
int blockif_delete(struct blockif_ctxt *bc, struct blockif_req *breq);
/*
 * Write zeros over br_resid bytes at br_offset (no iovecs): a zeroed
 * range in a file (allocated), BLKZEROOUT on a block device, or plain
 * writes of zeros where neither works.
 */
int blockif_zero(struct blockif_ctxt *bc, struct blockif_req *breq);
/* Whether discard is on (not nodelete, not read-only). */
bool blockif_candelete(struct blockif_ctxt *bc);
/* How many requests the backend works on at once (queue depth it serves). */
int blockif_queuesz(struct blockif_ctxt *bc);

#endif
