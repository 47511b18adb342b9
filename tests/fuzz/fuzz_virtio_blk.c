/*
 * libFuzzer target: virtio-blk and the virtio core with guest memory and
 * queue state from the fuzzer.
 *
 * Input:
 *   byte 0      flags: bit 0 INDIRECT_DESC, bit 1 EVENT_IDX, bit 2 MSI-X
 *               on, bit 3 read-only disk, bits 4-5 extra kicks (0-3)
 *   byte 1      count of register accesses that follow
 *   4 bytes     each access: offset (0-63), size (1, 2, 4), value (2 bytes,
 *               repeated to 4), in/out in offset's top bits
 *   the rest    guest memory from the ring (gpa 0x10000) on: descriptor
 *               table, avail ring, used ring, then buffers
 *
 * Each run resets the device, sets a ring up at 0x10000 as a driver would,
 * applies the register accesses, kicks, completes whatever reached the
 * (fake, synchronous) backend, and kicks again as asked. The fake backend
 * aborts on any buffer outside guest memory; ASan and UBSan do the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fake_block_if.h"
#include "rig_virtio_blk.h"
#include "virtio.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vblk_rig_init("fuzz_virtio_blk");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t room = RIG_MEMSIZE - RIG_RING_GPA;
	uint8_t flags, nops;

	if (size < 2)
		return 0;
	flags = data[0];
	nops = data[1];
	data += 2;
	size -= 2;
	vblk_rig_bringup(flags);
	vblk_rig_accesses(&data, &size, nops);
	memcpy(vblk_rig_mem + RIG_RING_GPA, data, size < room ? size : room);
	for (int k = 0; k <= ((flags >> 4) & 3); k++) {
		vblk_rig_io(0, VIRTIO_PCI_QUEUE_NOTIFY, 2, 0);
		fake_blockif_run();
	}
	(void)vblk_rig_io(1, VIRTIO_PCI_ISR, 1, 0);
	return 0;
}
