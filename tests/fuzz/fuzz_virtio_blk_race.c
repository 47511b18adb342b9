/*
 * libFuzzer target: virtio-blk while the guest changes its memory under
 * requests in flight, as a hostile guest's other vCPUs can.
 *
 * Input: as fuzz_virtio_blk's (flags, register accesses, guest memory
 * from the ring at 0x10000 on), where the memory part is split in two:
 * its first half is the ring and buffers the device starts on; the second
 * half is a list of 4-byte writes (race_write: a 14-bit offset into the
 * ring's first 16 KiB and a byte value) that a second thread applies over
 * and over while the device walks chains and a completer thread (the
 * fake backend's, as block_if's workers) finishes requests and writes
 * used entries. What must hold: no crash, no access outside guest memory (the
 * fake backend aborts on one), no sanitizer report; the device reads each
 * guest field once, so changed memory can only make a request fail.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fake_block_if.h"
#include "rig_virtio_blk.h"
#include "virtio.h"

#define RACE_SPAN 0x4000 /* the ring and the buffers the seeds use */

struct race {
	const uint8_t *writes;
	size_t n; /* 4-byte writes */
	atomic_bool stop;
};

/* One write: a 14-bit offset into the span and a byte to put there. */
static void
race_write(const uint8_t *w)
{
	size_t off = ((size_t)w[0] | (size_t)(w[1] & 0x3f) << 8) % RACE_SPAN;

	__atomic_store_n(&vblk_rig_mem[RIG_RING_GPA + off], w[2] ^ w[3],
			 __ATOMIC_RELAXED);
}

static void *
mutator(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop))
		for (size_t i = 0; i < r->n && !atomic_load(&r->stop); i++)
			race_write(r->writes + 4 * i);
	return NULL;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vblk_rig_init("fuzz_virtio_blk_race");
	fake_blockif_threaded(true);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct race r = {0};
	pthread_t t;
	uint8_t flags, nops;
	size_t half;

	if (size < 2)
		return 0;
	flags = data[0];
	nops = data[1];
	data += 2;
	size -= 2;
	vblk_rig_bringup(flags);
	vblk_rig_accesses(&data, &size, nops);
	half = size / 2;
	memcpy(vblk_rig_mem + RIG_RING_GPA, data,
	       half < RACE_SPAN ? half : RACE_SPAN);
	r.writes = data + half;
	r.n = (size - half) / 4;
	if (r.n > 0 && pthread_create(&t, NULL, mutator, &r) != 0)
		r.n = 0;
	for (int k = 0; k <= ((flags >> 4) & 3); k++)
		vblk_rig_io(0, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
	fake_blockif_drain();
	if (r.n > 0) {
		atomic_store(&r.stop, true);
		pthread_join(t, NULL);
	}
	/* Nothing of this run is left in flight for the next one. */
	vblk_rig_io(0, VIRTIO_PCI_STATUS, 1, 0);
	fake_blockif_drain();
	return 0;
}
