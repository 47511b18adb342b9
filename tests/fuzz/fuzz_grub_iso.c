/*
 * libFuzzer target: grub-bhyve's ISO9660, Rock Ridge and Joliet (grub_fs_iso.c) on an input that is the whole
 * partition; see grub_fuzz_fs.h for the walk. Seeds: tests/fuzz/grub_seeds.sh.
 */
#include <stddef.h>
#include <stdint.h>

#include "grub_fuzz_fs.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_fs(&gfs_iso_ops, data, size);
	return 0;
}
