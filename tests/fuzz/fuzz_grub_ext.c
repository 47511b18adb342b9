/*
 * libFuzzer target: grub-bhyve's ext2/3/4 through libext2fs and our io_manager (libext2fs itself is not instrumented: ASan sees our side only) on an input that is the whole
 * partition; see grub_fuzz_fs.h for the walk. Seeds: tests/fuzz/grub_seeds.sh.
 */
#include <stddef.h>
#include <stdint.h>

#include "grub_fuzz_fs.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_fs(&gfs_ext_ops, data, size);
	return 0;
}
