/*
 * The virtio-blk fuzz targets' machine (rig_virtio_blk.c): a mock VM with
 * a hostbridge and virtio-blk at 0:4.0 on the fake block backend, and the
 * driver-side steps every run takes.
 */
#ifndef RIG_VIRTIO_BLK_H
#define RIG_VIRTIO_BLK_H

#include <stddef.h>
#include <stdint.h>

#define RIG_MEMSIZE (1 << 20)
#define RIG_RING_GPA 0x10000

/* Guest memory, once vblk_rig_init has run. */
extern uint8_t *vblk_rig_mem;

/* Make the machine (LLVMFuzzerInitialize); aborts when it cannot. */
void vblk_rig_init(const char *target);
/* An access to the device's legacy I/O BAR (offset 0-63). */
uint32_t vblk_rig_io(int in, int off, int size, uint32_t v);
/*
 * A driver's bring-up (virtio 1.2 §3.1.1) with the flags' features
 * (bit 0 INDIRECT_DESC, bit 1 EVENT_IDX, bit 2 MSI-X, bit 3 read-only):
 * the ring at RIG_RING_GPA, zeroed, DRIVER_OK set.
 */
void vblk_rig_bringup(uint8_t flags);
/* n register accesses of 4 input bytes each (offset, size, value). */
void vblk_rig_accesses(const uint8_t **data, size_t *size, int n);

#endif
