/*
 * libFuzzer target: the kernel loaders grub-bhyve and bhyveload use on a
 * guest's files (a hostile guest owns its /boot): the Linux boot protocol
 * (bzImage, linux_boot.c), ELF vmlinux, and multiboot 1 (ELF and the a.out
 * kludge, multiboot.c), each parsed, placed and loaded into a mock VM.
 *
 * Input:
 *   byte 0      bit 0: multiboot (else Linux); bit 1: an initrd / module
 *               (the last 64 bytes of the input); bit 2: an empty command line
 *   the rest    the kernel image
 *
 * What must hold: no read outside the image, no write outside guest
 * memory, no sanitizer report; a bad image is an error with a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linux_boot.h"
#include "load_file.h"
#include "multiboot.h"
#include "vmm.h"

#define MIB (1ULL << 20)
#define EXTRA 64

static struct vmctx *ctx;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ctx = vm_create_mock(64 * MIB);
	if (!ctx) {
		fprintf(stderr, "fuzz_loaders: cannot make the VM\n");
		abort();
	}
	return 0;
}

static void
boot_linux(const uint8_t *img, size_t len, const struct load_file *rd,
	   const char *cmdline)
{
	struct load_file f = load_file_mem(img, len);
	struct linux_boot_args a = {f, cmdline, rd, rd ? 1 : 0, false};
	struct linux_kernel k;
	struct linux_layout l;
	char err[256];

	if (linux_parse(&f, &k, err, sizeof(err)) == 0)
		(void)linux_check_cmdline(&k, cmdline, err, sizeof(err));
	(void)linux_boot(ctx, &a, &l, err, sizeof(err));
}

static void
boot_multiboot(const uint8_t *img, size_t len, const uint8_t *mod,
	       const char *cmdline)
{
	struct mb_module m = {mod, EXTRA, "/boot/module arg"};
	struct mb_boot_args a = {
	    img, len, cmdline, mod ? &m : NULL, mod ? 1 : 0, "grub-bhyve"};
	struct mb_image mi;
	struct mb_layout l;
	char err[256];

	(void)mb_parse(img, len, &mi, err, sizeof(err));
	if (mb_check(ctx, img, len, err, sizeof(err)) == 0)
		(void)mb_boot(ctx, &a, &l, err, sizeof(err));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *extra = NULL;
	const char *cmdline = "console=ttyS0 root=/dev/vda1";
	struct load_file rd;
	uint8_t flags;
	uint8_t *img;

	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	if ((flags & 2) && size >= EXTRA) {
		extra = data + size - EXTRA;
		size -= EXTRA;
	}
	if (flags & 4)
		cmdline = "";
	/* A copy of the exact size, so ASan sees any read past the image. */
	img = malloc(size ? size : 1);
	if (!img)
		return 0;
	memcpy(img, data, size);
	if (flags & 1) {
		boot_multiboot(img, size, extra, cmdline);
	} else {
		rd = load_file_mem(extra, EXTRA);
		boot_linux(img, size, extra ? &rd : NULL, cmdline);
	}
	free(img);
	return 0;
}
