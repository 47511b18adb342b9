/*
 * The multiboot 1 loader (src/hv/multiboot.c) on synthetic ELF32 and
 * a.out-kludge kernels in mock guest memory: the loaded image, bss, the
 * modules, the multiboot information and vCPU 0's state; then bad images,
 * which fail with one line and never touch memory out of bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "grub_x86.h"
#include "multiboot.h"
#include "vmm.h"

#define MIB (1ULL << 20)
#define ELF_LEN 0x3100
#define SEG_OFF 0x1000
#define AOUT_LEN 0x1000

static char err[512];

static void
put_mb_header(uint8_t *p, uint32_t flags)
{
	le32_put(p, MB_HEADER_MAGIC);
	le32_put(p + 4, flags);
	le32_put(p + 8, -(MB_HEADER_MAGIC + flags));
}

static void
put_phdr(uint8_t *ph, uint32_t off, uint32_t vaddr, uint32_t paddr,
	 uint32_t filesz, uint32_t memsz)
{
	le32_put(ph, 1); /* PT_LOAD */
	le32_put(ph + 4, off);
	le32_put(ph + 8, vaddr);
	le32_put(ph + 12, paddr);
	le32_put(ph + 16, filesz);
	le32_put(ph + 20, memsz);
	le32_put(ph + 24, 7);
	le32_put(ph + 28, 0x1000);
}

/*
 * An ELF32 kernel linked in the higher half (vaddr 0xC0100000) and loaded
 * at 1 MiB: 0x2000 bytes plus 0x1000 of bss, then 0x100 bytes at 2 MiB.
 */
static uint8_t *
make_elf(void)
{
	uint8_t *b = calloc(1, ELF_LEN);

	assert_non_null(b);
	memcpy(b, "\177ELF\1\1\1", 7);
	le16_put(b + 16, 2); /* ET_EXEC */
	le16_put(b + 18, 3); /* EM_386 */
	le32_put(b + 20, 1);
	le32_put(b + 24, 0xc0100010);
	le32_put(b + 28, 52);
	le16_put(b + 40, 52);
	le16_put(b + 42, 32);
	le16_put(b + 44, 2);
	put_phdr(b + 52, SEG_OFF, 0xc0100000, 0x100000, 0x2000, 0x3000);
	put_phdr(b + 84, SEG_OFF + 0x2000, 0x200000, 0x200000, 0x100, 0x100);
	for (size_t i = SEG_OFF; i < ELF_LEN; i++)
		b[i] = (uint8_t)(i * 13 + 1);
	put_mb_header(b + SEG_OFF, MB_PAGE_ALIGN | MB_MEMORY_INFO);
	return b;
}

/* A flat image loaded through the a.out kludge's address fields. */
static uint8_t *
make_aout(void)
{
	uint8_t *b = calloc(1, AOUT_LEN);

	assert_non_null(b);
	for (size_t i = 0; i < AOUT_LEN; i++)
		b[i] = (uint8_t)(i * 5 + 2);
	put_mb_header(b + 0x40, MB_AOUT_KLUDGE | MB_MEMORY_INFO);
	le32_put(b + 0x40 + 12, 0x100040); /* header_addr */
	le32_put(b + 0x40 + 16, 0x100000); /* load_addr */
	le32_put(b + 0x40 + 20, 0);	   /* load_end_addr: whole file */
	le32_put(b + 0x40 + 24, 0x102000); /* bss_end_addr */
	le32_put(b + 0x40 + 28, 0x100080); /* entry_addr */
	return b;
}

struct fx {
	struct vmctx *ctx;
	uint8_t *elf, *aout;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->ctx = vm_create_mock(32 * MIB);
	assert_non_null(f->ctx);
	f->elf = make_elf();
	f->aout = make_aout();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	vm_close(f->ctx);
	free(f->elf);
	free(f->aout);
	free(f);
	return 0;
}

static uint8_t *
gpa(struct vmctx *ctx, uint64_t a, size_t len)
{
	uint8_t *p = vm_map_gpa(ctx, a, len);

	assert_non_null(p);
	return p;
}

static uint64_t
reg(struct vmctx *ctx, enum vm_reg_name r)
{
	uint64_t v;

	assert_int_equal(vm_get_register(vm_vcpu_open(ctx, 0), r, &v), 0);
	return v;
}

static int
boot(struct fx *f, const uint8_t *img, size_t len, const struct mb_module *mods,
     int n, struct mb_layout *l)
{
	struct mb_boot_args a = {img,  len, "/boot/kernel arg1 arg2",
				 mods, n,   "grub-bhyve"};

	err[0] = '\0';
	return mb_boot(f->ctx, &a, l, err, sizeof(err));
}

static const char *
gstr(struct vmctx *ctx, uint32_t addr)
{
	const char *s = (const char *)gpa(ctx, addr, 1);

	assert_non_null(memchr(s, 0, 256));
	return s;
}

static void
check_mbi(struct vmctx *ctx, const struct mb_layout *l)
{
	uint8_t *mbi = gpa(ctx, l->info + 0x1000, MBI_SIZE);
	uint8_t *mm;

	assert_int_equal(reg(ctx, VM_REG_GUEST_RBX), l->info + 0x1000);
	assert_int_equal(le32_get(mbi), MBI_MEMORY | MBI_CMDLINE | MBI_MODS |
					    MBI_MMAP | MBI_LOADER_NAME);
	assert_int_equal(le32_get(mbi + MBI_MEM_LOWER), 640);
	assert_int_equal(le32_get(mbi + MBI_MEM_UPPER), 31 * 1024);
	assert_string_equal(gstr(ctx, le32_get(mbi + MBI_CMDLINE_PTR)),
			    "/boot/kernel arg1 arg2");
	assert_string_equal(gstr(ctx, le32_get(mbi + MBI_LOADER_NAME_PTR)),
			    "grub-bhyve");
	/* mmap: 5 entries of size 20 (+4), the first is 640 KiB of RAM. */
	assert_int_equal(le32_get(mbi + MBI_MMAP_LENGTH), 5 * 24);
	mm = gpa(ctx, le32_get(mbi + MBI_MMAP_ADDR), 5 * 24);
	assert_int_equal(le32_get(mm), 20);
	assert_int_equal(le64_get(mm + 4), 0);
	assert_int_equal(le64_get(mm + 12), 0xa0000);
	assert_int_equal(le32_get(mm + 20), 1);
	assert_int_equal(le32_get(mm + 24 + 20), 2);
	assert_int_equal(le64_get(mm + 48 + 4), MIB);
	assert_int_equal(le64_get(mm + 48 + 12), 31 * MIB);
}

static void
check_cpu(struct vmctx *ctx, uint64_t entry)
{
	struct seg_desc cs;

	assert_int_equal(reg(ctx, VM_REG_GUEST_RAX), MB_BOOTLOADER_MAGIC);
	assert_int_equal(reg(ctx, VM_REG_GUEST_RIP), entry);
	assert_int_equal(reg(ctx, VM_REG_GUEST_RFLAGS), 0x2);
	assert_int_equal(reg(ctx, VM_REG_GUEST_CR0) & 0x80000001, 1);
	assert_int_equal(reg(ctx, VM_REG_GUEST_EFER), 0);
	assert_int_equal(
	    vm_get_desc(vm_vcpu_open(ctx, 0), VM_REG_GUEST_CS, &cs), 0);
	assert_int_equal(cs.base, 0);
	assert_int_equal(cs.limit, 0xffffffff);
	assert_true(cs.access & (1u << 14)); /* 32-bit */
	assert_false(cs.access & (1u << 13));
}

static void
test_elf(void **state)
{
	struct fx *f = *state;
	static uint8_t big[5000];
	struct mb_module mods[2] = {{"hello module", 12, "/mod1 a=1"},
				    {big, sizeof(big), "/mod2"}};
	struct mb_layout l;
	uint8_t *mbi, *ml;

	memset(big, 0x5a, sizeof(big));
	memset(gpa(f->ctx, 0x102000, 0x1000), 0xff, 0x1000);
	assert_int_equal(boot(f, f->elf, ELF_LEN, mods, 2, &l), 0);
	/* Segments at their physical addresses, bss zeroed. */
	assert_memory_equal(gpa(f->ctx, 0x100000, 0x2000), f->elf + SEG_OFF,
			    0x2000);
	for (int i = 0; i < 0x1000; i++)
		assert_int_equal(gpa(f->ctx, 0x102000, 0x1000)[i], 0);
	assert_memory_equal(gpa(f->ctx, 0x200000, 0x100),
			    f->elf + SEG_OFF + 0x2000, 0x100);
	assert_int_equal(l.kernel_start, 0x100000);
	assert_int_equal(l.kernel_end, 0x200100);
	/* The virtual entry runs at its physical address. */
	check_cpu(f->ctx, 0x100010);
	check_mbi(f->ctx, &l);
	/* Modules page aligned above the kernel, in order. */
	assert_int_equal(l.mods_start, 0x201000);
	mbi = gpa(f->ctx, l.info + 0x1000, MBI_SIZE);
	assert_int_equal(le32_get(mbi + MBI_MODS_COUNT), 2);
	ml = gpa(f->ctx, le32_get(mbi + MBI_MODS_ADDR), 32);
	assert_int_equal(le32_get(ml), 0x201000);
	assert_int_equal(le32_get(ml + 4), 0x201000 + 12);
	assert_string_equal(gstr(f->ctx, le32_get(ml + 8)), "/mod1 a=1");
	assert_memory_equal(gpa(f->ctx, 0x201000, 12), "hello module", 12);
	assert_int_equal(le32_get(ml + 16), 0x202000);
	assert_int_equal(le32_get(ml + 20), 0x202000 + sizeof(big));
	assert_string_equal(gstr(f->ctx, le32_get(ml + 24)), "/mod2");
	assert_memory_equal(gpa(f->ctx, 0x202000, sizeof(big)), big,
			    sizeof(big));
	assert_true(l.info >= 0x202000 + sizeof(big));
	assert_int_equal(l.info & 0xfff, 0);
}

static void
test_aout(void **state)
{
	struct fx *f = *state;
	struct mb_layout l;

	memset(gpa(f->ctx, 0x101000, 0x1000), 0xff, 0x1000);
	assert_int_equal(boot(f, f->aout, AOUT_LEN, NULL, 0, &l), 0);
	assert_memory_equal(gpa(f->ctx, 0x100000, AOUT_LEN), f->aout, AOUT_LEN);
	for (int i = 0; i < 0x1000; i++)
		assert_int_equal(gpa(f->ctx, 0x101000, 0x1000)[i], 0);
	assert_int_equal(l.kernel_end, 0x102000);
	check_cpu(f->ctx, 0x100080);
	check_mbi(f->ctx, &l);
	assert_int_equal(
	    le32_get(gpa(f->ctx, l.info + 0x1000 + MBI_MODS_COUNT, 4)), 0);
}

static void
test_aout_load_end(void **state)
{
	struct fx *f = *state;
	struct mb_layout l;

	le32_put(f->aout + 0x40 + 20, 0x100100); /* load 0x100 bytes */
	memset(gpa(f->ctx, 0x100100, 0x10), 0xff, 0x10);
	assert_int_equal(boot(f, f->aout, AOUT_LEN, NULL, 0, &l), 0);
	assert_memory_equal(gpa(f->ctx, 0x100000, 0x100), f->aout, 0x100);
	assert_int_equal(*gpa(f->ctx, 0x100100, 1), 0); /* bss */
}

static void
expect_error(struct fx *f, const uint8_t *img, size_t len, const char *word)
{
	assert_int_equal(boot(f, img, len, NULL, 0, NULL), -1);
	if (!strstr(err, word))
		fail_msg("error '%s' lacks '%s'", err, word);
	assert_null(strchr(err, '\n'));
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_RIP), 0xfff0);
}

static void
test_bad_checksum(void **state)
{
	struct fx *f = *state;

	f->elf[SEG_OFF + 8] ^= 1;
	expect_error(f, f->elf, ELF_LEN, "checksum");
}

static void
test_header_past_8k(void **state)
{
	struct fx *f = *state;
	uint8_t *b = calloc(1, 0x3000);

	assert_non_null(b);
	put_mb_header(b + 8192, MB_AOUT_KLUDGE);
	expect_error(f, b, 0x3000, "first 8 KiB");
	/* Straddling the 8 KiB mark is past it too. */
	memset(b, 0, 0x3000);
	put_mb_header(b + 8184, MB_AOUT_KLUDGE);
	expect_error(f, b, 0x3000, "first 8 KiB");
	expect_error(f, b, 0, "first 8 KiB");
	free(b);
}

static void
test_segments_outside_ram(void **state)
{
	struct fx *f = *state;

	/* In the 640 KiB - 1 MiB hole. */
	put_phdr(f->elf + 84, SEG_OFF, 0xa0000, 0xa0000, 0x100, 0x100);
	expect_error(f, f->elf, ELF_LEN, "not in guest RAM");
	/* Past the top of 32 MiB. */
	put_phdr(f->elf + 84, SEG_OFF, 0x1ff0000, 0x1ff0000, 0x100, 0x20000);
	expect_error(f, f->elf, ELF_LEN, "not in guest RAM");
	/* The a.out kludge's bss past the top. */
	le32_put(f->aout + 0x40 + 24, 0xfffff000);
	expect_error(f, f->aout, AOUT_LEN, "not in guest RAM");
}

static void
test_bad_elf(void **state)
{
	struct fx *f = *state;
	uint8_t *good = make_elf();

	f->elf[4] = 2;
	expect_error(f, f->elf, ELF_LEN, "64-bit ELF");
	memcpy(f->elf, good, ELF_LEN);
	le16_put(f->elf + 18, 62);
	expect_error(f, f->elf, ELF_LEN, "i386 ELF32");
	memcpy(f->elf, good, ELF_LEN);
	le16_put(f->elf + 44, 600);
	expect_error(f, f->elf, ELF_LEN, "program headers");
	memcpy(f->elf, good, ELF_LEN);
	put_phdr(f->elf + 52, SEG_OFF, 0x100000, 0x100000, 0x4000, 0x4000);
	expect_error(f, f->elf, ELF_LEN, "not all in the file");
	memcpy(f->elf, good, ELF_LEN);
	put_phdr(f->elf + 52, SEG_OFF, 0x100000, 0x100000, 0x2000, 0x1000);
	expect_error(f, f->elf, ELF_LEN, "memory size");
	memcpy(f->elf, good, ELF_LEN);
	le32_put(f->elf + 24, 0x500000);
	expect_error(f, f->elf, ELF_LEN, "entry point");
	memcpy(f->elf, good, ELF_LEN);
	memset(f->elf, 0, 4);
	expect_error(f, f->elf, ELF_LEN, "not an ELF");
	free(good);
}

static void
test_unsupported_flags(void **state)
{
	struct fx *f = *state;

	put_mb_header(f->elf + SEG_OFF, MB_PAGE_ALIGN | (1u << 3));
	expect_error(f, f->elf, ELF_LEN, "features");
}

static void
test_bad_aout(void **state)
{
	struct fx *f = *state;
	uint8_t *good = make_aout();

	le32_put(f->aout + 0x40 + 16, 0x100080); /* load_addr > header_addr */
	expect_error(f, f->aout, AOUT_LEN, "header_addr");
	memcpy(f->aout, good, AOUT_LEN);
	le32_put(f->aout + 0x40 + 12, 0x200000); /* before the file's start */
	expect_error(f, f->aout, AOUT_LEN, "before the start");
	memcpy(f->aout, good, AOUT_LEN);
	le32_put(f->aout + 0x40 + 20, 0x100000 + AOUT_LEN + 1);
	expect_error(f, f->aout, AOUT_LEN, "load_end_addr");
	memcpy(f->aout, good, AOUT_LEN);
	le32_put(f->aout + 0x40 + 24, 0x100010);
	expect_error(f, f->aout, AOUT_LEN, "bss_end_addr");
	memcpy(f->aout, good, AOUT_LEN);
	le32_put(f->aout + 0x40 + 28, 0x300000);
	expect_error(f, f->aout, AOUT_LEN, "entry point");
	/* The address fields cut off by the end of the file. */
	expect_error(f, f->aout, 0x40 + 20, "truncated");
	free(good);
}

static void
test_modules_too_big(void **state)
{
	struct fx *f = *state;
	struct mb_module m = {f->elf, 31 * MIB, "/huge"}; /* never read */

	assert_int_equal(boot(f, f->elf, ELF_LEN, &m, 1, NULL), -1);
	assert_non_null(strstr(err, "does not fit"));
}

/* Random bytes over the headers: errors or boots, never a crash. */
static void
test_random_images(void **state)
{
	struct fx *f = *state;
	uint8_t *good[2] = {make_elf(), make_aout()};
	size_t len[2] = {ELF_LEN, AOUT_LEN};
	unsigned seed = 7;

	for (int i = 0; i < 4000; i++) {
		int k = i & 1;
		uint8_t *img = k ? f->aout : f->elf;
		size_t hdr = k ? 0x40 : SEG_OFF;

		memcpy(img, good[k], len[k]);
		for (int j = 0; j < 1 + i % 6; j++) {
			seed = seed * 1103515245 + 12345;
			if (seed & 0x10000)
				img[(seed >> 17) % 116] = (uint8_t)(seed >> 8);
			else
				img[hdr + (seed >> 17) % 32] =
				    (uint8_t)(seed >> 8);
		}
		/* Keep the checksum right so the loaders go deeper. */
		if (i % 3)
			le32_put(img + hdr + 8, -(le32_get(img + hdr) +
						  le32_get(img + hdr + 4)));
		boot(f, img, len[k], NULL, 0, NULL);
	}
	free(good[0]);
	free(good[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_elf, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_aout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_aout_load_end, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_checksum, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_header_past_8k, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_segments_outside_ram, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_elf, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unsupported_flags, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_aout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_modules_too_big, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_random_images, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
