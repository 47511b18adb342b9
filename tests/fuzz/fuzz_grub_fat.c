/*
 * libFuzzer target: grub-bhyve's FAT12/16/32 and long names (grub_fs_fat.c) on an input that is the whole
 * partition; see grub_fuzz_fs.h for the walk. Seeds: tests/fuzz/grub_seeds.sh.
 */
#include <stddef.h>
#include <stdint.h>

#include "grub_fuzz_fs.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_fs(&gfs_fat_ops, data, size);
	return 0;
}
