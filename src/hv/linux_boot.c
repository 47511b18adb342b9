/*
 * The Linux x86 boot protocol 2.15 (see linux_boot.h for the layout).
 * Offsets below are those of struct boot_params and struct setup_header
 * (arch/x86/include/uapi/asm/bootparam.h, boot.rst "THE REAL-MODE KERNEL
 * HEADER" and zero-page.rst); the setup header sits at the same offset in
 * the image file and in boot_params.
 */
#include <elf.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "e820.h"
#include "grub_x86.h"
#include "linux_boot.h"
#include "load_file.h"

/* boot_params (zero-page.rst). */
#define BP_EXT_MEM_K 0x002    /* screen_info.ext_mem_k, u16 */
#define BP_VIDEO_COLS 0x007   /* screen_info.orig_video_cols */
#define BP_VIDEO_LINES 0x00e  /* screen_info.orig_video_lines */
#define BP_VIDEO_POINTS 0x010 /* screen_info.orig_video_points */
#define BP_ALT_MEM_K 0x1e0    /* u32 */
#define BP_E820_ENTRIES 0x1e8 /* u8 */
#define BP_E820_TABLE 0x2d0   /* 128 entries of 20 bytes */
#define BP_E820_MAX 128

/* The setup header (boot.rst). */
#define HDR_START 0x1f1
#define HDR_SETUP_SECTS 0x1f1	   /* u8 */
#define HDR_BOOT_FLAG 0x1fe	   /* u16, 0xAA55 */
#define HDR_JUMP_LEN 0x201	   /* header end = 0x202 + this byte */
#define HDR_MAGIC 0x202		   /* "HdrS" */
#define HDR_VERSION 0x206	   /* u16 */
#define HDR_TYPE_OF_LOADER 0x210   /* u8 */
#define HDR_LOADFLAGS 0x211	   /* u8 */
#define HDR_CODE32_START 0x214	   /* u32 */
#define HDR_RAMDISK_IMAGE 0x218	   /* u32 */
#define HDR_RAMDISK_SIZE 0x21c	   /* u32 */
#define HDR_CMD_LINE_PTR 0x228	   /* u32 (2.02+) */
#define HDR_INITRD_ADDR_MAX 0x22c  /* u32 (2.03+) */
#define HDR_KERNEL_ALIGNMENT 0x230 /* u32 (2.05+) */
#define HDR_RELOCATABLE 0x234	   /* u8 (2.05+) */
#define HDR_MIN_ALIGNMENT 0x235	   /* u8, log2 (2.10+) */
#define HDR_XLOADFLAGS 0x236	   /* u16 (2.12+) */
#define HDR_CMDLINE_SIZE 0x238	   /* u32 (2.06+) */
#define HDR_PREF_ADDRESS 0x258	   /* u64 (2.10+) */
#define HDR_INIT_SIZE 0x260	   /* u32 (2.10+) */
#define HDR_MAX_END 0x290	   /* end of struct setup_header's room */

#define LOADED_HIGH 0x01
#define KEEP_SEGMENTS 0x40
#define XLF_KERNEL_64 0x01
#define LOADER_UNDEFINED 0xff /* type_of_loader: no assigned ID */
#define BZIMAGE_ADDR UINT64_C(0x100000)
#define MIN_VERSION 0x0203
#define ELF_VERSION 0x020f	    /* what a vmlinux's synthesized header says */
#define ELF_CMDLINE_MAX 2047	    /* x86 COMMAND_LINE_SIZE, less the NUL */
#define ELF_INITRD_MAX 0x7fffffff   /* initrd_addr_max of 64-bit kernels */
#define ELF_ALIGN UINT64_C(0x200000) /* CONFIG_PHYSICAL_ALIGN's default */
#define ELF_MAX_PHDRS 64
#define LOW_4G (UINT64_C(1) << 32)

#define PAGE UINT64_C(0x1000)
#define MIB (UINT64_C(1) << 20)

static uint64_t
align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static bool
is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* The header's magic, version and sizes against the file's length. */
static int
parse_basics(const uint8_t *img, size_t len, struct linux_kernel *k, char *err,
	     size_t errlen)
{
	if (len < HDR_MAX_END) {
		snprintf(err, errlen,
			 "not a Linux kernel: %zu bytes is too short for a "
			 "bzImage",
			 len);
		return -1;
	}
	if (le16_get(img + HDR_BOOT_FLAG) != 0xaa55) {
		snprintf(err, errlen,
			 "not a Linux kernel: no boot flag 0xAA55 "
			 "at offset 0x1fe");
		return -1;
	}
	if (memcmp(img + HDR_MAGIC, "HdrS", 4) != 0) {
		snprintf(err, errlen,
			 "not a bzImage: no \"HdrS\" header at offset 0x202 "
			 "(kernels before 1.3.73 are not supported)");
		return -1;
	}
	k->version = le16_get(img + HDR_VERSION);
	if (k->version < MIN_VERSION) {
		snprintf(err, errlen,
			 "boot protocol %u.%02u is too old: 2.03 or later is "
			 "needed",
			 k->version >> 8, k->version & 0xff);
		return -1;
	}
	if (!(img[HDR_LOADFLAGS] & LOADED_HIGH)) {
		snprintf(err, errlen,
			 "zImage kernels (not LOADED_HIGH) are not supported");
		return -1;
	}
	k->setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	k->payload_off = (k->setup_sects + 1) * 512;
	if (k->payload_off >= len) {
		snprintf(err, errlen,
			 "truncated kernel: setup_sects %u puts the kernel at "
			 "offset %zu, past the end of the %zu-byte file",
			 k->setup_sects, k->payload_off, len);
		return -1;
	}
	k->payload_len = len - k->payload_off;
	k->hdr_end = 0x202 + img[HDR_JUMP_LEN];
	if (k->hdr_end > HDR_MAX_END)
		k->hdr_end = HDR_MAX_END;
	/* syssize is not checked: GRUB (loader/i386/linux.c) and QEMU load
	 * the file's bytes after the setup sectors, whatever it says, and
	 * kernels whose syssize rounds past the end of the file (16-byte
	 * paragraphs, the CRC's 4 bytes) boot that way; init_size, not the
	 * file, says how much memory the kernel needs. */
	return 0;
}

/* Alignment, relocation and memory needs (fields by protocol version). */
static int
parse_layout(const uint8_t *img, struct linux_kernel *k, char *err,
	     size_t errlen)
{
	k->alignment = 0;
	k->relocatable = false;
	if (k->version >= 0x0205) {
		k->alignment = le32_get(img + HDR_KERNEL_ALIGNMENT);
		k->relocatable = img[HDR_RELOCATABLE] != 0;
	}
	if (k->relocatable && (!is_pow2(k->alignment) || k->alignment < PAGE)) {
		snprintf(err, errlen,
			 "bad header: kernel_alignment 0x%x is not a power "
			 "of two of at least 4 KiB",
			 k->alignment);
		return -1;
	}
	k->min_alignment = k->alignment;
	k->init_size = k->payload_len;
	k->pref_address = BZIMAGE_ADDR;
	if (k->version >= 0x020a) {
		unsigned log2 = img[HDR_MIN_ALIGNMENT];

		if (k->relocatable && log2 >= 12 && log2 < 32 &&
		    (1u << log2) <= k->alignment)
			k->min_alignment = 1u << log2;
		k->pref_address = le64_get(img + HDR_PREF_ADDRESS);
		if (le32_get(img + HDR_INIT_SIZE) > k->init_size)
			k->init_size = le32_get(img + HDR_INIT_SIZE);
	}
	k->entry64 = k->version >= 0x020c &&
		     (le16_get(img + HDR_XLOADFLAGS) & XLF_KERNEL_64);
	k->code32_start = le32_get(img + HDR_CODE32_START);
	/* The 32-bit entry must land inside the kernel we load. */
	if (!k->entry64 && (k->code32_start < BZIMAGE_ADDR ||
			    k->code32_start - BZIMAGE_ADDR >= k->payload_len)) {
		snprintf(err, errlen,
			 "bad header: code32_start 0x%x is outside the "
			 "kernel's %zu bytes at 0x100000",
			 k->code32_start, k->payload_len);
		return -1;
	}
	k->cmdline_max =
	    k->version >= 0x0206 ? le32_get(img + HDR_CMDLINE_SIZE) : 255;
	k->initrd_addr_max = le32_get(img + HDR_INITRD_ADDR_MAX);
	return 0;
}

static bool
is_elf(const uint8_t *img, size_t len)
{
	return len >= SELFMAG && memcmp(img, ELFMAG, SELFMAG) == 0;
}

/* The i-th program header, copied out (the file may be unaligned). */
static Elf64_Phdr
elf_phdr(const uint8_t *img, const Elf64_Ehdr *eh, int i)
{
	Elf64_Phdr ph;

	memcpy(&ph, img + eh->e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
	return ph;
}

static int
check_elf_header(const uint8_t *img, size_t len, Elf64_Ehdr *eh, char *err,
		 size_t errlen)
{
	if (len < sizeof(*eh)) {
		snprintf(err, errlen, "truncated ELF kernel: %zu bytes", len);
		return -1;
	}
	memcpy(eh, img, sizeof(*eh));
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64 || eh->e_type != ET_EXEC) {
		snprintf(err, errlen,
			 "not an x86-64 vmlinux: an ELF kernel must be a "
			 "64-bit little-endian x86-64 executable");
		return -1;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    eh->e_phnum > ELF_MAX_PHDRS || eh->e_phoff > len ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff) {
		snprintf(err, errlen,
			 "bad ELF kernel: its %u program headers at offset "
			 "%" PRIu64 " are not inside the %zu-byte file",
			 eh->e_phnum, (uint64_t)eh->e_phoff, len);
		return -1;
	}
	return 0;
}

/* One PT_LOAD: inside the file, and its memory below 4 GiB. */
static int
check_elf_segment(const Elf64_Phdr *ph, size_t len, int i, char *err,
		  size_t errlen)
{
	if (ph->p_offset > len || ph->p_filesz > len - ph->p_offset ||
	    ph->p_filesz > ph->p_memsz) {
		snprintf(err, errlen,
			 "bad ELF kernel: segment %d's %" PRIu64
			 " bytes at offset %" PRIu64
			 " are not inside the %zu-byte file",
			 i, (uint64_t)ph->p_filesz, (uint64_t)ph->p_offset, len);
		return -1;
	}
	if (ph->p_paddr < BZIMAGE_ADDR || ph->p_paddr >= LOW_4G ||
	    ph->p_memsz > LOW_4G - ph->p_paddr) {
		snprintf(err, errlen,
			 "bad ELF kernel: segment %d (0x%" PRIx64 "+0x%" PRIx64
			 ") is not between 1 MiB and 4 GiB",
			 i, (uint64_t)ph->p_paddr, (uint64_t)ph->p_memsz);
		return -1;
	}
	return 0;
}

/*
 * An ELF vmlinux: its loaded span [pref_address, pref_address + init_size)
 * from the PT_LOAD segments' physical addresses, and the header fields a
 * 64-bit kernel would have had in its bzImage.
 */
static int
parse_elf(const struct load_file *f, struct linux_kernel *k, char *err,
	  size_t errlen)
{
	const uint8_t *img = f->head;
	size_t len = f->len;
	uint64_t lo = UINT64_MAX, hi = 0;
	Elf64_Ehdr eh;

	if (check_elf_header(img, len, &eh, err, errlen) < 0)
		return -1;
	/* The parser reads them from the file's head (as every vmlinux has). */
	if (eh.e_phoff + (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) >
	    f->head_len) {
		snprintf(err, errlen,
			 "unsupported ELF kernel: its program headers at "
			 "offset %" PRIu64 " are not in its first %d KiB",
			 (uint64_t)eh.e_phoff, LOAD_FILE_HEAD / 1024);
		return -1;
	}
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph = elf_phdr(img, &eh, i);

		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (check_elf_segment(&ph, len, i, err, errlen) < 0)
			return -1;
		if (ph.p_paddr < lo)
			lo = ph.p_paddr;
		if (ph.p_paddr + ph.p_memsz > hi)
			hi = ph.p_paddr + ph.p_memsz;
	}
	if (hi == 0) {
		snprintf(err, errlen, "bad ELF kernel: nothing to load");
		return -1;
	}
	if (eh.e_entry < lo || eh.e_entry >= hi) {
		snprintf(err, errlen,
			 "bad ELF kernel: entry 0x%" PRIx64
			 " is outside its segments (0x%" PRIx64 "-0x%" PRIx64
			 ")",
			 (uint64_t)eh.e_entry, lo, hi);
		return -1;
	}
	k->elf = true;
	k->elf_entry = eh.e_entry;
	k->version = ELF_VERSION;
	k->payload_off = 0;
	k->payload_len = len;
	k->pref_address = lo;
	k->init_size = hi - lo;
	k->alignment = k->min_alignment = ELF_ALIGN;
	k->entry64 = true;
	k->code32_start = lo;
	k->cmdline_max = ELF_CMDLINE_MAX;
	k->initrd_addr_max = ELF_INITRD_MAX;
	return 0;
}

int
linux_parse(const struct load_file *f, struct linux_kernel *k, char *err,
	    size_t errlen)
{
	/* Every header field read below is in the first HDR_MAX_END bytes. */
	if (f->head_len < f->len && f->head_len < HDR_MAX_END) {
		snprintf(err, errlen, "reading '%s': its header was not read",
			 f->name);
		return -1;
	}
	memset(k, 0, sizeof(*k));
	if (is_elf(f->head, f->head_len))
		return parse_elf(f, k, err, errlen);
	if (parse_basics(f->head, f->len, k, err, errlen) < 0)
		return -1;
	return parse_layout(f->head, k, err, errlen);
}

uint64_t
linux_initrd_size(const struct load_file *v, int n)
{
	uint64_t total = 0;

	for (int i = 0; i < n; i++)
		total += align_up(v[i].len, 4);
	return total;
}

/* code32_start relative to the load address (0 if the header's is bogus). */
static uint64_t
code32_offset(const struct linux_kernel *k)
{
	if (k->elf)
		return 0;
	if (k->code32_start < BZIMAGE_ADDR ||
	    k->code32_start - BZIMAGE_ADDR >= k->payload_len)
		return 0;
	return k->code32_start - BZIMAGE_ADDR;
}

static bool
fits(uint64_t addr, uint64_t need, uint64_t lowmem)
{
	return addr >= BZIMAGE_ADDR && addr <= lowmem && need <= lowmem - addr;
}

/* The kernel's load address, or 0 if it fits nowhere. */
static uint64_t
place_kernel(const struct linux_kernel *k, uint64_t need, uint64_t lowmem)
{
	if (k->elf)
		return fits(k->pref_address, need, lowmem) ? k->pref_address
							   : 0;
	if (!k->relocatable)
		return fits(BZIMAGE_ADDR, need, lowmem) ? BZIMAGE_ADDR : 0;
	if (k->version >= 0x020a &&
	    (k->pref_address & (k->alignment - 1)) == 0 &&
	    fits(k->pref_address, need, lowmem))
		return k->pref_address;
	for (uint64_t a = k->alignment; a >= k->min_alignment; a >>= 1) {
		uint64_t addr = align_up(BZIMAGE_ADDR, a);

		if (fits(addr, need, lowmem))
			return addr;
	}
	return 0;
}

static int
place_initrd(const struct linux_kernel *k, uint64_t lowmem,
	     struct linux_layout *l, char *err, size_t errlen)
{
	uint64_t top = (uint64_t)k->initrd_addr_max + 1;

	if (l->initrd_size == 0)
		return 0;
	if (top > lowmem)
		top = lowmem;
	if (l->initrd_size <= top &&
	    ((top - l->initrd_size) & ~(PAGE - 1)) >= l->kernel_end) {
		l->initrd_addr = (top - l->initrd_size) & ~(PAGE - 1);
		return 0;
	}
	snprintf(err, errlen,
		 "the initrd is too big: %" PRIu64 " KiB do not fit between "
		 "the kernel's end (0x%" PRIx64 ") and 0x%" PRIx64
		 ": raise the guest's memory (-M)",
		 l->initrd_size >> 10, l->kernel_end, top);
	return -1;
}

int
linux_place(const struct linux_kernel *k, uint64_t lowmem, uint64_t initrd_size,
	    struct linux_layout *l, char *err, size_t errlen)
{
	uint64_t need = align_up(k->init_size, PAGE);

	memset(l, 0, sizeof(*l));
	l->kernel_addr = place_kernel(k, need, lowmem);
	if (!l->kernel_addr) {
		snprintf(err, errlen,
			 "the kernel needs %" PRIu64
			 " MiB of memory from 0x%" PRIx64
			 " but the guest has %" PRIu64
			 " MiB below 4 GiB: raise the guest's memory (-M)",
			 (need + MIB - 1) / MIB,
			 k->relocatable || k->elf ? k->pref_address
						  : BZIMAGE_ADDR,
			 lowmem / MIB);
		return -1;
	}
	l->kernel_end = l->kernel_addr + need;
	if (k->elf)
		l->entry = k->elf_entry;
	else if (k->entry64)
		l->entry = l->kernel_addr + 0x200;
	else
		l->entry = l->kernel_addr + code32_offset(k);
	l->zero_page = LINUX_ZERO_PAGE;
	l->cmdline = LINUX_CMDLINE;
	l->initrd_size = initrd_size;
	return place_initrd(k, lowmem, l, err, errlen);
}

int
linux_check_cmdline(const struct linux_kernel *k, const char *cmdline,
		    char *err, size_t errlen)
{
	uint64_t max = LINUX_CMDLINE_END - LINUX_CMDLINE - 1;
	size_t n = strlen(cmdline);

	if (k->cmdline_max < max)
		max = k->cmdline_max;
	if (n > max) {
		snprintf(err, errlen,
			 "the command line is %zu bytes; this kernel takes at "
			 "most %" PRIu64,
			 n, max);
		return -1;
	}
	return 0;
}

static int
write_e820(struct vmctx *ctx, uint8_t *zp, char *err, size_t errlen)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = e820_build(ctx, map, E820_MAX_ENTRIES);

	if (n < 0 || n > BP_E820_MAX) {
		snprintf(err, errlen,
			 "the memory map does not fit boot_params");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		uint8_t *e = zp + BP_E820_TABLE + i * 20;

		le64_put(e, map[i].addr);
		le64_put(e + 8, map[i].len);
		le32_put(e + 16, map[i].type);
	}
	zp[BP_E820_ENTRIES] = n;
	return 0;
}

/*
 * A vmlinux has no setup header: write the one its bzImage would have had,
 * as far as a 64-bit kernel reads it after the decompressor (boot.rst:
 * magic and version for the fields below, LOADED_HIGH, 64-bit entry).
 */
static void
synthesize_header(const struct linux_kernel *k, uint8_t *zp)
{
	le16_put(zp + HDR_BOOT_FLAG, 0xaa55);
	zp[HDR_JUMP_LEN] = HDR_MAX_END - 0x202;
	memcpy(zp + HDR_MAGIC, "HdrS", 4);
	le16_put(zp + HDR_VERSION, k->version);
	zp[HDR_LOADFLAGS] = LOADED_HIGH;
	le32_put(zp + HDR_INITRD_ADDR_MAX, k->initrd_addr_max);
	le32_put(zp + HDR_KERNEL_ALIGNMENT, k->alignment);
	le16_put(zp + HDR_XLOADFLAGS, XLF_KERNEL_64);
	le32_put(zp + HDR_CMDLINE_SIZE, k->cmdline_max);
	le64_put(zp + HDR_PREF_ADDRESS, k->pref_address);
	le32_put(zp + HDR_INIT_SIZE, k->init_size);
}

/* boot_params: the image's setup header plus what a loader fills in. */
static int
build_zero_page(struct vmctx *ctx, const struct linux_boot_args *a,
		const struct linux_kernel *k, const struct linux_layout *l,
		uint8_t *zp, char *err, size_t errlen)
{
	uint64_t ext_k = (vm_get_lowmem_size(ctx) - MIB) >> 10;

	memset(zp, 0, PAGE);
	if (k->elf)
		synthesize_header(k, zp);
	else
		memcpy(zp + HDR_START, a->image.head + HDR_START,
		       k->hdr_end - HDR_START);
	zp[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	zp[HDR_LOADFLAGS] &= ~KEEP_SEGMENTS;
	le32_put(zp + HDR_CODE32_START, l->kernel_addr + code32_offset(k));
	le32_put(zp + HDR_CMD_LINE_PTR, l->cmdline);
	le32_put(zp + HDR_RAMDISK_IMAGE, l->initrd_addr);
	le32_put(zp + HDR_RAMDISK_SIZE, l->initrd_size);
	le16_put(zp + BP_EXT_MEM_K, ext_k > 0xffff ? 0xffff : ext_k);
	le32_put(zp + BP_ALT_MEM_K, ext_k > 0xffffffff ? 0xffffffff : ext_k);
	/* grub2-bhyve: an 80x25 text screen unless -e (old kernels need it). */
	if (!a->no_vga_info) {
		zp[BP_VIDEO_COLS] = 80;
		zp[BP_VIDEO_LINES] = 25;
	}
	le16_put(zp + BP_VIDEO_POINTS, 16);
	return write_e820(ctx, zp, err, errlen);
}

static void *
guest(struct vmctx *ctx, uint64_t gpa, uint64_t len, char *err, size_t errlen)
{
	void *p = vm_map_gpa(ctx, gpa, len);

	if (!p)
		snprintf(err, errlen,
			 "0x%" PRIx64 "+0x%" PRIx64 " is outside guest RAM",
			 gpa, len);
	return p;
}

/*
 * Each PT_LOAD at p_paddr: its file bytes (read straight into guest
 * memory), then zeros up to p_memsz.
 */
static int
load_elf_segments(struct vmctx *ctx, const struct load_file *f, char *err,
		  size_t errlen)
{
	Elf64_Ehdr eh;

	memcpy(&eh, f->head, sizeof(eh)); /* checked by parse_elf */
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph = elf_phdr(f->head, &eh, i);
		uint8_t *p;

		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		p = guest(ctx, ph.p_paddr, ph.p_memsz, err, errlen);
		if (!p || load_file_copy(f, ph.p_offset, p, ph.p_filesz, err,
					 errlen) < 0)
			return -1;
		/* The bss (and a compacted vmlinux's zero tails): no writes.
		 * guest() checked the range is RAM. */
		if (vm_zero_gpa(ctx, ph.p_paddr + ph.p_filesz,
				ph.p_memsz - ph.p_filesz) < 0) {
			snprintf(err, errlen, "cannot clear segment %d's bss",
				 i);
			return -1;
		}
	}
	return 0;
}

static int
load_images(struct vmctx *ctx, const struct linux_boot_args *a,
	    const struct linux_kernel *k, const struct linux_layout *l,
	    char *err, size_t errlen)
{
	uint8_t *p;
	char *cl;

	if (k->elf) {
		if (load_elf_segments(ctx, &a->image, err, errlen) < 0)
			return -1;
	} else {
		p = guest(ctx, l->kernel_addr, k->payload_len, err, errlen);
		if (!p || load_file_copy(&a->image, k->payload_off, p,
					 k->payload_len, err, errlen) < 0)
			return -1;
	}
	if (l->initrd_size) {
		p = guest(ctx, l->initrd_addr, l->initrd_size, err, errlen);
		if (!p)
			return -1;
		/* Each initrd, then zeros to its 4-byte boundary. */
		for (int i = 0; i < a->ninitrds; i++) {
			uint64_t n = a->initrds[i].len;

			if (load_file_copy(&a->initrds[i], 0, p, n, err,
					   errlen) < 0)
				return -1;
			memset(p + n, 0, align_up(n, 4) - n);
			p += align_up(n, 4);
		}
	}
	cl = guest(ctx, l->cmdline, strlen(a->cmdline) + 1, err, errlen);
	if (!cl)
		return -1;
	strcpy(cl, a->cmdline);
	return 0;
}

static int
set_entry_state(struct vmctx *ctx, const struct linux_kernel *k,
		const struct linux_layout *l, char *err, size_t errlen)
{
	struct vm_boot_state bs;

	if (x86_handoff(ctx, k->entry64 ? X86_MODE_LONG64 : X86_MODE_PROT32,
			LINUX_TABLES, &bs, err, errlen) < 0)
		return -1;
	/* "%esi must hold the base address of the struct boot_params;
	 * %ebp, %edi and %ebx must be zero" (32-bit and 64-bit protocols). */
	bs.regs[VM_REG_GUEST_RIP] = l->entry;
	bs.regs[VM_REG_GUEST_RSI] = l->zero_page;
	bs.regs[VM_REG_GUEST_RSP] = LINUX_STACK_TOP;
	return x86_commit(ctx, &bs, err, errlen);
}

int
linux_boot(struct vmctx *ctx, const struct linux_boot_args *a,
	   struct linux_layout *out, char *err, size_t errlen)
{
	struct linux_kernel k;
	struct linux_layout l;
	uint8_t *zp;

	if (linux_parse(&a->image, &k, err, errlen) < 0 ||
	    linux_check_cmdline(&k, a->cmdline, err, errlen) < 0 ||
	    linux_place(&k, vm_get_lowmem_size(ctx),
			linux_initrd_size(a->initrds, a->ninitrds), &l, err,
			errlen) < 0)
		return -1;
	zp = guest(ctx, l.zero_page, PAGE, err, errlen);
	if (!zp || build_zero_page(ctx, a, &k, &l, zp, err, errlen) < 0 ||
	    load_images(ctx, a, &k, &l, err, errlen) < 0 ||
	    set_entry_state(ctx, &k, &l, err, errlen) < 0)
		return -1;
	if (out)
		*out = l;
	return 0;
}
