/*
 * The Linux boot protocol loader (src/hv/linux_boot.c) and the e820 map,
 * on synthetic bzImages in mock guest memory: good 64-bit and 32-bit-only
 * kernels, then truncated and lying headers, which must fail with one line
 * and never read or write out of bounds (ASan watches). Also ELF vmlinux
 * files: segments at their physical addresses, a synthesized setup header,
 * and bad program headers rejected.
 */
#include <elf.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "e820.h"
#include "grub_x86.h"
#include "linux_boot.h"
#include "vmm.h"

#define MIB (1ULL << 20)
#define PAYLOAD 0x10000
#define SETUP_SECTS 4
#define IMG_LEN ((SETUP_SECTS + 1) * 512 + PAYLOAD)

static char err[512];

/* A bzImage with a protocol 2.15 header and a recognisable payload. */
static uint8_t *
make_bzimage(bool k64)
{
	uint8_t *b = calloc(1, IMG_LEN);

	assert_non_null(b);
	b[0x1f1] = SETUP_SECTS;
	le32_put(b + 0x1f4, PAYLOAD / 16);
	le16_put(b + 0x1fe, 0xaa55);
	b[0x200] = 0xeb;
	b[0x201] = 0x6a; /* header ends at 0x26c */
	memcpy(b + 0x202, "HdrS", 4);
	le16_put(b + 0x206, 0x020f);
	b[0x211] = 0x01; /* LOADED_HIGH */
	le32_put(b + 0x214, 0x100000);
	le32_put(b + 0x22c, 0x7fffffff);
	le32_put(b + 0x230, 0x200000);
	b[0x234] = 1;
	b[0x235] = 21;
	le16_put(b + 0x236, k64 ? 0x7f : 0x7e);
	le32_put(b + 0x238, 2047);
	le64_put(b + 0x258, 0x1000000);
	le32_put(b + 0x260, 4 * MIB);
	for (size_t i = 0; i < PAYLOAD; i++)
		b[(SETUP_SECTS + 1) * 512 + i] = (uint8_t)(i * 7 + 3);
	return b;
}

struct fx {
	struct vmctx *ctx;
	uint8_t *img;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->ctx = vm_create_mock(64 * MIB);
	assert_non_null(f->ctx);
	f->img = make_bzimage(true);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	vm_close(f->ctx);
	free(f->img);
	free(f);
	return 0;
}

static int
boot(struct fx *f, size_t len, const char *cmdline, const struct load_file *rd,
     int nrd, struct linux_layout *l)
{
	struct linux_boot_args a = {load_file_mem(f->img, len), cmdline, rd,
				    nrd, false};

	err[0] = '\0';
	return linux_boot(f->ctx, &a, l, err, sizeof(err));
}

static uint64_t
reg(struct vmctx *ctx, enum vm_reg_name r)
{
	uint64_t v;

	assert_int_equal(vm_get_register(vm_vcpu_open(ctx, 0), r, &v), 0);
	return v;
}

static struct seg_desc
desc(struct vmctx *ctx, enum vm_reg_name r)
{
	struct seg_desc d;

	assert_int_equal(vm_get_desc(vm_vcpu_open(ctx, 0), r, &d), 0);
	return d;
}

static uint8_t *
gpa(struct vmctx *ctx, uint64_t a, size_t len)
{
	uint8_t *p = vm_map_gpa(ctx, a, len);

	assert_non_null(p);
	return p;
}

/* Walk the guest's 4-level page tables (2 MiB / 1 GiB pages). */
static uint64_t
translate(struct vmctx *ctx, uint64_t cr3, uint64_t va)
{
	uint64_t e =
	    le64_get(gpa(ctx, (cr3 & ~0xfffULL) + ((va >> 39) & 511) * 8, 8));

	assert_true(e & 1);
	e = le64_get(gpa(ctx, (e & ~0xfffULL) + ((va >> 30) & 511) * 8, 8));
	assert_true(e & 1);
	if (e & 0x80)
		return (e & ~0x3fffffffULL & 0xffffffffff000ULL) +
		       (va & 0x3fffffff);
	e = le64_get(gpa(ctx, (e & ~0xfffULL) + ((va >> 21) & 511) * 8, 8));
	assert_true((e & 1) && (e & 0x80));
	return (e & ~0x1fffffULL & 0xffffffffff000ULL) + (va & 0x1fffff);
}

static void
test_good_64(void **state)
{
	struct fx *f = *state;
	static uint8_t rd1[10001], rd2[5000];
	struct load_file rd[2] = {load_file_mem(rd1, sizeof(rd1)),
				  load_file_mem(rd2, sizeof(rd2))};
	const char *cl = "console=ttyS0 root=/dev/vda";
	struct linux_layout l;
	uint8_t *zp, *p;
	uint64_t rdsize = 10004 + 5000;

	memset(rd1, 0x11, sizeof(rd1));
	memset(rd2, 0x22, sizeof(rd2));
	assert_int_equal(boot(f, IMG_LEN, cl, rd, 2, &l), 0);
	assert_int_equal(l.kernel_addr, 0x1000000);
	assert_int_equal(l.entry, 0x1000200);
	/* The payload at the preferred address. */
	assert_memory_equal(gpa(f->ctx, 0x1000000, PAYLOAD),
			    f->img + (SETUP_SECTS + 1) * 512, PAYLOAD);
	/* Initrds: as high as possible under 64 MiB, page aligned, padded. */
	assert_int_equal(l.initrd_size, rdsize);
	assert_int_equal(l.initrd_addr, (64 * MIB - rdsize) & ~0xfffULL);
	p = gpa(f->ctx, l.initrd_addr, rdsize);
	assert_int_equal(p[0], 0x11);
	assert_int_equal(p[10000], 0x11);
	assert_int_equal(p[10001], 0);
	assert_int_equal(p[10004], 0x22);
	assert_int_equal(p[rdsize - 1], 0x22);

	zp = gpa(f->ctx, LINUX_ZERO_PAGE, 4096);
	assert_int_equal(le16_get(zp + 0x1fe), 0xaa55);
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_int_equal(le16_get(zp + 0x206), 0x020f);
	assert_int_equal(zp[0x210], 0xff); /* type_of_loader */
	assert_int_equal(le32_get(zp + 0x214), 0x1000000);
	assert_int_equal(le32_get(zp + 0x218), l.initrd_addr);
	assert_int_equal(le32_get(zp + 0x21c), rdsize);
	assert_int_equal(le32_get(zp + 0x228), LINUX_CMDLINE);
	assert_string_equal((char *)gpa(f->ctx, LINUX_CMDLINE, strlen(cl) + 1),
			    cl);
	/* Nothing past the header's end (0x26c) was copied. */
	assert_int_equal(zp[0x26c], 0);
	/* 80x25 text screen, as grub2-bhyve reports. */
	assert_int_equal(zp[0x07], 80);
	assert_int_equal(zp[0x0e], 25);
	/* e820: 640K, the BIOS hole, 1M-64M, ECAM, the APIC/ROM range. */
	assert_int_equal(zp[0x1e8], 5);
	assert_int_equal(le64_get(zp + 0x2d0), 0);
	assert_int_equal(le64_get(zp + 0x2d0 + 8), 0xa0000);
	assert_int_equal(le32_get(zp + 0x2d0 + 16), E820_RAM);
	assert_int_equal(le64_get(zp + 0x2d0 + 20), 0xa0000);
	assert_int_equal(le32_get(zp + 0x2d0 + 36), E820_RESERVED);
	assert_int_equal(le64_get(zp + 0x2d0 + 40), MIB);
	assert_int_equal(le64_get(zp + 0x2d0 + 48), 63 * MIB);
	assert_int_equal(le32_get(zp + 0x2d0 + 56), E820_RAM);
}

static void
test_state_64(void **state)
{
	struct fx *f = *state;
	struct seg_desc cs, ds, gdtr;
	uint64_t gdt[4];
	uint64_t cr3;

	assert_int_equal(boot(f, IMG_LEN, "x", NULL, 0, NULL), 0);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_RIP), 0x1000200);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_RSI), LINUX_ZERO_PAGE);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_RFLAGS), 0x2);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_RBX), 0);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_RDI), 0);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_RBP), 0);
	assert_true(reg(f->ctx, VM_REG_GUEST_CR0) & 0x80000001);
	assert_true(reg(f->ctx, VM_REG_GUEST_CR4) & 0x20);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_EFER) & 0x500, 0x500);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_CS), 0x10);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_DS), 0x18);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_SS), 0x18);
	cs = desc(f->ctx, VM_REG_GUEST_CS);
	ds = desc(f->ctx, VM_REG_GUEST_DS);
	assert_true(cs.access & (1u << 13)); /* L */
	assert_int_equal(ds.base, 0);
	assert_int_equal(ds.limit, 0xffffffff);
	/* The GDT in memory says the same. */
	gdtr = desc(f->ctx, VM_REG_GUEST_GDTR);
	assert_int_equal(gdtr.limit, 31);
	memcpy(gdt, gpa(f->ctx, gdtr.base, 32), 32);
	assert_int_equal(gdt[2], 0x00af9b000000ffffULL);
	assert_int_equal(gdt[3], 0x00cf93000000ffffULL);
	/* Identity mapped: the kernel, the zero page, up to 4 GiB. */
	cr3 = reg(f->ctx, VM_REG_GUEST_CR3);
	assert_int_equal(translate(f->ctx, cr3, 0x1000200), 0x1000200);
	assert_int_equal(translate(f->ctx, cr3, LINUX_ZERO_PAGE),
			 LINUX_ZERO_PAGE);
	assert_int_equal(translate(f->ctx, cr3, 0xfee00000), 0xfee00000);
	assert_int_equal(translate(f->ctx, cr3, 0xffffffff), 0xffffffff);
	/* The stack is in identity-mapped RAM. */
	assert_non_null(
	    vm_map_gpa(f->ctx, reg(f->ctx, VM_REG_GUEST_RSP) - 8, 8));
}

static void
test_highmem_mapped(void **state)
{
	struct vmctx *ctx = vm_create_mock(5ULL << 30);
	struct fx f = {ctx, ((struct fx *)*state)->img};
	struct e820_entry map[E820_MAX_ENTRIES];
	uint64_t cr3;

	assert_non_null(ctx);
	assert_int_equal(e820_build(ctx, map, E820_MAX_ENTRIES), 6);
	assert_int_equal(map[2].addr + map[2].len, 3ULL << 30);
	assert_int_equal(map[5].addr, 4ULL << 30);
	assert_int_equal(map[5].len, 2ULL << 30);
	assert_int_equal(map[5].type, E820_RAM);
	assert_int_equal(e820_build(ctx, map, 5), -1);
	assert_int_equal(boot(&f, IMG_LEN, "", NULL, 0, NULL), 0);
	cr3 = reg(ctx, VM_REG_GUEST_CR3);
	if (x86_host_has_1g_pages())
		assert_int_equal(translate(ctx, cr3, (6ULL << 30) - 8),
				 (6ULL << 30) - 8);
	vm_close(ctx);
}

static void
test_32bit_only(void **state)
{
	struct fx *f = *state;
	struct seg_desc cs;

	le16_put(f->img + 0x236, 0); /* no XLF_KERNEL_64 */
	assert_int_equal(boot(f, IMG_LEN, "", NULL, 0, NULL), 0);
	/* code32_start follows the kernel to its load address. */
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_RIP), 0x1000000);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_RSI), LINUX_ZERO_PAGE);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_CR0) & 0x80000001, 1);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_EFER), 0);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_CS), 0x10);
	cs = desc(f->ctx, VM_REG_GUEST_CS);
	assert_false(cs.access & (1u << 13));
	assert_true(cs.access & (1u << 14)); /* D: 32-bit */
	assert_int_equal(le32_get(gpa(f->ctx, LINUX_ZERO_PAGE + 0x214, 4)),
			 0x1000000);
}

static void
test_not_relocatable(void **state)
{
	struct fx *f = *state;
	struct linux_layout l;

	f->img[0x234] = 0;
	assert_int_equal(boot(f, IMG_LEN, "", NULL, 0, &l), 0);
	assert_int_equal(l.kernel_addr, 0x100000);
	assert_int_equal(l.entry, 0x100200);
}

static void
test_small_memory_lower_alignment(void **state)
{
	struct vmctx *ctx = vm_create_mock(16 * MIB);
	struct fx f = {ctx, ((struct fx *)*state)->img};
	struct linux_layout l;

	/* 16 MiB + 4 MiB does not fit: 2 MiB alignment does. */
	assert_int_equal(boot(&f, IMG_LEN, "", NULL, 0, &l), 0);
	assert_int_equal(l.kernel_addr, 2 * MIB);
	vm_close(ctx);
}

static void
expect_error(struct fx *f, size_t len, const char *cmdline,
	     const struct load_file *rd, int nrd, const char *word)
{
	assert_int_equal(boot(f, len, cmdline, rd, nrd, NULL), -1);
	if (!strstr(err, word))
		fail_msg("error '%s' lacks '%s'", err, word);
	assert_null(strchr(err, '\n'));
}

static void
test_truncated(void **state)
{
	struct fx *f = *state;

	/* The setup sectors run past the end of the file. */
	expect_error(f, (SETUP_SECTS + 1) * 512, "", NULL, 0, "truncated");
	/* Nothing was handed to vCPU 0. */
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_RIP), 0xfff0);
	expect_error(f, 0x200, "", NULL, 0, "too short");
	expect_error(f, 0, "", NULL, 0, "too short");
}

/*
 * syssize past the end of the file: GRUB and QEMU load the file's bytes
 * after the setup sectors and the kernel boots; so do we. Rounding (a
 * payload of 16n + 1 bytes says n + 1 paragraphs) and a file shorter
 * than the header says both load what the file has.
 */
static void
test_syssize_past_end(void **state)
{
	struct fx *f = *state;
	struct linux_layout l;
	size_t short_len = IMG_LEN - 100;

	le32_put(f->img + 0x1f4, (PAYLOAD + 4 + 15) / 16);
	assert_int_equal(boot(f, IMG_LEN, "", NULL, 0, &l), 0);
	assert_memory_equal(gpa(f->ctx, l.kernel_addr, PAYLOAD),
			    f->img + (SETUP_SECTS + 1) * 512, PAYLOAD);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_RIP), l.entry);
	le32_put(f->img + 0x1f4, PAYLOAD / 16);
	memset(gpa(f->ctx, l.kernel_addr, PAYLOAD), 0, PAYLOAD);
	assert_int_equal(boot(f, short_len, "", NULL, 0, &l), 0);
	assert_memory_equal(gpa(f->ctx, l.kernel_addr, PAYLOAD - 100),
			    f->img + (SETUP_SECTS + 1) * 512, PAYLOAD - 100);
	/* Nothing past the file's end was copied. */
	assert_int_equal(*gpa(f->ctx, l.kernel_addr + PAYLOAD - 100, 1), 0);
}

static void
test_lying_setup_sects(void **state)
{
	struct fx *f = *state;

	f->img[0x1f1] = 200;
	expect_error(f, IMG_LEN, "", NULL, 0, "setup_sects 200");
}

static void
test_huge_init_size(void **state)
{
	struct fx *f = *state;

	le32_put(f->img + 0x260, 0xfffff000);
	expect_error(f, IMG_LEN, "", NULL, 0, "raise the guest's memory");
}

static void
test_bad_magic(void **state)
{
	struct fx *f = *state;

	f->img[0x1fe] = 0;
	expect_error(f, IMG_LEN, "", NULL, 0, "0xAA55");
	f->img[0x1fe] = 0x55;
	f->img[0x203] = 'x';
	expect_error(f, IMG_LEN, "", NULL, 0, "HdrS");
}

static void
test_protocol_too_old(void **state)
{
	struct fx *f = *state;

	le16_put(f->img + 0x206, 0x0201);
	expect_error(f, IMG_LEN, "", NULL, 0, "2.01 is too old");
	le16_put(f->img + 0x206, 0x020f);
	f->img[0x211] = 0; /* a zImage */
	expect_error(f, IMG_LEN, "", NULL, 0, "zImage");
}

static void
test_cmdline_too_long(void **state)
{
	struct fx *f = *state;

	le32_put(f->img + 0x238, 10);
	assert_int_equal(boot(f, IMG_LEN, "0123456789", NULL, 0, NULL), 0);
	expect_error(f, IMG_LEN, "0123456789a", NULL, 0, "at most 10");
}

static void
test_initrd_too_big(void **state)
{
	struct fx *f = *state;
	/* never read */
	struct load_file rd = load_file_mem(f->img, 44 * MIB + 1);

	expect_error(f, IMG_LEN, "", &rd, 1, "initrd is too big");
	/* initrd_addr_max below the kernel's end: nowhere to go either. */
	rd = load_file_mem(f->img, 4096);
	le32_put(f->img + 0x22c, 0xffffff);
	expect_error(f, IMG_LEN, "", &rd, 1, "initrd is too big");
}

static void
test_bad_alignment_and_entry(void **state)
{
	struct fx *f = *state;

	le32_put(f->img + 0x230, 0x300000);
	expect_error(f, IMG_LEN, "", NULL, 0, "kernel_alignment");
	le32_put(f->img + 0x230, 0x200000);
	le16_put(f->img + 0x236, 0);
	le32_put(f->img + 0x214, 0x100000 + PAYLOAD);
	expect_error(f, IMG_LEN, "", NULL, 0, "code32_start");
}

static void
test_no_vga_info(void **state)
{
	struct fx *f = *state;
	struct linux_boot_args a = {load_file_mem(f->img, IMG_LEN), "", NULL, 0,
				    true};

	assert_int_equal(linux_boot(f->ctx, &a, NULL, err, sizeof(err)), 0);
	assert_int_equal(*gpa(f->ctx, LINUX_ZERO_PAGE + 7, 1), 0);
	assert_int_equal(*gpa(f->ctx, LINUX_ZERO_PAGE + 0x0e, 1), 0);
}

/* Random header bytes: errors or boots, never a crash (ASan/UBSan). */
static void
test_random_headers(void **state)
{
	struct fx *f = *state;
	uint8_t *good = make_bzimage(true);
	unsigned seed = 1;

	for (int i = 0; i < 3000; i++) {
		memcpy(f->img, good, IMG_LEN);
		for (int j = 0; j < 1 + i % 8; j++) {
			seed = seed * 1103515245 + 12345;
			f->img[0x1f1 + (seed >> 8) % (0x290 - 0x1f1)] =
			    (uint8_t)(seed >> 20);
		}
		seed = seed * 1103515245 + 12345;
		boot(f, IMG_LEN - (seed >> 16) % 64, "console=ttyS0", NULL, 0,
		     NULL);
	}
	free(good);
}

/*
 * An x86-64 vmlinux in miniature: text at 16 MiB (entry 0x40 into it),
 * data with a bss tail at 18 MiB, a PT_NOTE that is not loaded.
 */
#define ELF_LEN 0x3000
#define ELF_TEXT 0x1000000ULL
#define ELF_DATA 0x1200000ULL

static uint8_t *
make_vmlinux(void)
{
	uint8_t *b = calloc(1, ELF_LEN);
	Elf64_Ehdr eh = {
	    .e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64,
			ELFDATA2LSB, EV_CURRENT},
	    .e_type = ET_EXEC,
	    .e_machine = EM_X86_64,
	    .e_version = EV_CURRENT,
	    .e_entry = ELF_TEXT + 0x40,
	    .e_phoff = sizeof(Elf64_Ehdr),
	    .e_ehsize = sizeof(Elf64_Ehdr),
	    .e_phentsize = sizeof(Elf64_Phdr),
	    .e_phnum = 3,
	};
	Elf64_Phdr ph[3] = {
	    {.p_type = PT_LOAD, .p_offset = 0x1000,
	     .p_vaddr = 0xffffffff81000000ULL, .p_paddr = ELF_TEXT,
	     .p_filesz = 0x1000, .p_memsz = 0x1000},
	    {.p_type = PT_LOAD, .p_offset = 0x2000,
	     .p_vaddr = 0xffffffff81200000ULL, .p_paddr = ELF_DATA,
	     .p_filesz = 0x800, .p_memsz = 0x3000},
	    {.p_type = PT_NOTE, .p_offset = 0x2800, .p_paddr = 0x10,
	     .p_filesz = 0x10, .p_memsz = 0x10},
	};

	assert_non_null(b);
	memcpy(b, &eh, sizeof(eh));
	memcpy(b + sizeof(eh), ph, sizeof(ph));
	for (size_t i = 0x1000; i < ELF_LEN; i++)
		b[i] = (uint8_t)(i * 5 + 1);
	return b;
}

static Elf64_Phdr *
vmlinux_phdr(uint8_t *b, int i)
{
	return (Elf64_Phdr *)(b + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}

static void
use_vmlinux(struct fx *f)
{
	free(f->img);
	f->img = make_vmlinux();
}

static void
test_vmlinux(void **state)
{
	struct fx *f = *state;
	struct load_file rd = load_file_mem("initrd!", 7);
	struct linux_layout l;
	uint8_t *zp;

	use_vmlinux(f);
	/* Stale bytes where the bss goes: the loader must clear them. */
	memset(gpa(f->ctx, ELF_DATA, 0x3000), 0xee, 0x3000);
	assert_int_equal(boot(f, ELF_LEN, "console=ttyS0", &rd, 1, &l), 0);
	assert_memory_equal(gpa(f->ctx, ELF_TEXT, 0x1000), f->img + 0x1000,
			    0x1000);
	assert_memory_equal(gpa(f->ctx, ELF_DATA, 0x800), f->img + 0x2000,
			    0x800);
	for (int i = 0x800; i < 0x3000; i++)
		assert_int_equal(*gpa(f->ctx, ELF_DATA + i, 1), 0);
	assert_int_equal(l.kernel_addr, ELF_TEXT);
	assert_int_equal(l.kernel_end, ELF_DATA + 0x3000);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_RIP), ELF_TEXT + 0x40);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_RSI), LINUX_ZERO_PAGE);
	assert_true(reg(f->ctx, VM_REG_GUEST_EFER) & 0x400); /* LMA */
	/* The synthesized setup header a 64-bit kernel reads. */
	zp = gpa(f->ctx, LINUX_ZERO_PAGE, 0x1000);
	assert_int_equal(le16_get(zp + 0x1fe), 0xaa55);
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_int_equal(le16_get(zp + 0x206), 0x020f);
	assert_int_equal(zp[0x210], 0xff);
	assert_true(zp[0x211] & 0x01);
	assert_int_equal(le32_get(zp + 0x228), LINUX_CMDLINE);
	assert_int_equal(le32_get(zp + 0x218), l.initrd_addr);
	assert_int_equal(le32_get(zp + 0x21c), 8);
	assert_true(l.initrd_addr >= l.kernel_end);
	assert_memory_equal(gpa(f->ctx, l.initrd_addr, 7), "initrd!", 7);
	assert_string_equal((char *)gpa(f->ctx, LINUX_CMDLINE, 14),
			    "console=ttyS0");
	assert_true(zp[0x1e8] > 0); /* e820 entries */
}

static void
expect_vmlinux_error(struct fx *f, size_t len, const char *word)
{
	expect_error(f, len, "", NULL, 0, word);
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_RIP), 0xfff0);
}

static void
test_vmlinux_bad(void **state)
{
	struct fx *f = *state;
	Elf64_Ehdr *eh;

	use_vmlinux(f);
	eh = (Elf64_Ehdr *)f->img;
	expect_vmlinux_error(f, 40, "truncated ELF");
	eh->e_machine = EM_386;
	expect_vmlinux_error(f, ELF_LEN, "not an x86-64 vmlinux");
	eh->e_machine = EM_X86_64;
	eh->e_phnum = 65;
	expect_vmlinux_error(f, ELF_LEN, "program headers");
	eh->e_phnum = 3;
	eh->e_phoff = UINT64_MAX - 8;
	expect_vmlinux_error(f, ELF_LEN, "program headers");
	eh->e_phoff = sizeof(Elf64_Ehdr);
	expect_vmlinux_error(f, 0x2400, "segment 1");
	vmlinux_phdr(f->img, 0)->p_offset = UINT64_MAX - 0x10;
	expect_vmlinux_error(f, ELF_LEN, "segment 0");
	vmlinux_phdr(f->img, 0)->p_offset = 0x1000;
	vmlinux_phdr(f->img, 1)->p_memsz = 0x10; /* below filesz */
	expect_vmlinux_error(f, ELF_LEN, "segment 1");
	vmlinux_phdr(f->img, 1)->p_memsz = 0x3000;
	vmlinux_phdr(f->img, 1)->p_paddr = 0xfffff000;
	expect_vmlinux_error(f, ELF_LEN, "4 GiB");
	vmlinux_phdr(f->img, 1)->p_paddr = 0x1000; /* over the loader's pages */
	expect_vmlinux_error(f, ELF_LEN, "1 MiB");
	vmlinux_phdr(f->img, 1)->p_paddr = 0x8000000; /* past 64 MiB of RAM */
	expect_vmlinux_error(f, ELF_LEN, "raise the guest's memory");
	vmlinux_phdr(f->img, 1)->p_paddr = ELF_DATA;
	eh->e_entry = 0x500000;
	expect_vmlinux_error(f, ELF_LEN, "entry");
	eh->e_entry = ELF_TEXT;
	vmlinux_phdr(f->img, 0)->p_type = PT_NULL;
	vmlinux_phdr(f->img, 1)->p_type = PT_NULL;
	expect_vmlinux_error(f, ELF_LEN, "nothing to load");
}

/* Random bytes in the ELF and program headers: never a crash. */
static void
test_vmlinux_random(void **state)
{
	struct fx *f = *state;
	uint8_t *good = make_vmlinux();
	size_t hdrs = sizeof(Elf64_Ehdr) + 3 * sizeof(Elf64_Phdr);
	unsigned seed = 7;

	use_vmlinux(f);
	for (int i = 0; i < 3000; i++) {
		memcpy(f->img, good, ELF_LEN);
		for (int j = 0; j < 1 + i % 6; j++) {
			seed = seed * 1103515245 + 12345;
			f->img[SELFMAG + (seed >> 8) % (hdrs - SELFMAG)] =
			    (uint8_t)(seed >> 20);
		}
		boot(f, ELF_LEN, "console=ttyS0", NULL, 0, NULL);
	}
	free(good);
}

/*
 * A file loaded from disk as grub-bhyve does it: only its first head_len
 * bytes in memory, the rest read straight into guest memory at boot.
 */
static struct load_file
file_of(const char *path, const void *data, size_t len, size_t head_len)
{
	FILE *fp = fopen(path, "wb");
	uint8_t *head = malloc(head_len);
	int fd;

	assert_non_null(fp);
	assert_non_null(head);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, head, head_len, 0), (ssize_t)head_len);
	return (struct load_file){head, head_len, len, fd, strdup(path)};
}

static void
test_vmlinux_from_files(void **state)
{
	struct fx *f = *state;
	char dpath[] = "/tmp/test_bzimage.XXXXXX", kpath[64], rpath[64];
	static uint8_t rd[9000], moved[ELF_LEN];
	struct load_file rdf, kf;
	struct linux_layout l;
	int dir;

	use_vmlinux(f);
	for (size_t i = 0; i < sizeof(rd); i++)
		rd[i] = (uint8_t)(i * 7);
	assert_non_null(mkdtemp(dpath));
	dir = open(dpath, O_RDONLY | O_DIRECTORY);
	snprintf(kpath, sizeof(kpath), "%s/k", dpath);
	snprintf(rpath, sizeof(rpath), "%s/r", dpath);
	/* Program headers in the head, the segments past it. */
	kf = file_of(kpath, f->img, ELF_LEN, 0x300);
	rdf = file_of(rpath, rd, sizeof(rd), 0);
	memset(gpa(f->ctx, ELF_DATA, 0x3000), 0xee, 0x3000);
	struct linux_boot_args a = {kf, "console=ttyS0", &rdf, 1, false};
	assert_int_equal(linux_boot(f->ctx, &a, &l, err, sizeof(err)), 0);
	assert_memory_equal(gpa(f->ctx, ELF_TEXT, 0x1000), f->img + 0x1000,
			    0x1000);
	assert_memory_equal(gpa(f->ctx, ELF_DATA, 0x800), f->img + 0x2000,
			    0x800);
	assert_int_equal(*gpa(f->ctx, ELF_DATA + 0x800, 1), 0);
	assert_memory_equal(gpa(f->ctx, l.initrd_addr, sizeof(rd)), rd,
			    sizeof(rd));
	assert_int_equal(reg(f->ctx, VM_REG_GUEST_RIP), ELF_TEXT + 0x40);

	/* A copy that starts in the head and ends past it. */
	assert_int_equal(
	    load_file_copy(&kf, 0x200, moved, 0x400, err, sizeof(err)), 0);
	assert_memory_equal(moved, f->img + 0x200, 0x400);

	/* Program headers past the head: a clear error. */
	memcpy(moved, f->img, ELF_LEN);
	memcpy(moved + 0x2f00, moved + 64, 3 * sizeof(Elf64_Phdr));
	((Elf64_Ehdr *)moved)->e_phoff = 0x2f00;
	a.image = (struct load_file){moved, 0x300, ELF_LEN, -1, "k"};
	assert_int_equal(linux_boot(f->ctx, &a, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not in its first 64 KiB"));
	a.image = kf;

	/* The file shrank between opening and booting. */
	assert_int_equal(truncate(kpath, 0x1800), 0);
	assert_int_equal(linux_boot(f->ctx, &a, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "shrank"));
	load_file_close(&kf);
	load_file_close(&rdf);
	unlinkat(dir, "k", 0);
	unlinkat(dir, "r", 0);
	assert_int_equal(rmdir(dpath), 0);
	close(dir);
}

/*
 * vm_zero_gpa on an instance's memory file (the store backend, what
 * grub-bhyve uses): whole 2 MiB blocks are punched out, the edges cleared,
 * the bytes around left alone, and ranges outside RAM refused.
 */
static void
test_zero_gpa_store(void **state)
{
	char dir[] = "/tmp/test_bzimage.XXXXXX";
	struct vmctx *ctx;
	uint8_t *p;

	(void)state;
	assert_non_null(mkdtemp(dir));
	setenv("BHYVE_VMM_DIR", dir, 1);
	ctx = vm_create("zero", VMM_BACKEND_STORE);
	assert_non_null(ctx);
	assert_int_equal(vm_setup_memory(ctx, 16 * MIB), 0);
	p = gpa(ctx, 0x100000, 0x10000);
	memset(p, 0xab, 0x10000);
	assert_int_equal(vm_zero_gpa(ctx, 0x100000 + 0x800, 0x3000), 0);
	assert_int_equal(p[0x7ff], 0xab);
	for (int i = 0x800; i < 0x3800; i++)
		assert_int_equal(p[i], 0);
	assert_int_equal(p[0x3800], 0xab);
	/* Less than a page, and page-aligned whole pages. */
	assert_int_equal(vm_zero_gpa(ctx, 0x100000 + 0x5010, 0x20), 0);
	assert_int_equal(p[0x500f], 0xab);
	assert_int_equal(p[0x5010], 0);
	assert_int_equal(p[0x5030], 0xab);
	assert_int_equal(vm_zero_gpa(ctx, 0x100000 + 0x8000, 0x2000), 0);
	assert_int_equal(p[0x7fff], 0xab);
	assert_int_equal(p[0x8000], 0);
	assert_int_equal(p[0x9fff], 0);
	assert_int_equal(p[0xa000], 0xab);
	/* Across whole 2 MiB blocks. */
	p = gpa(ctx, 0x100000, 8 * MIB);
	memset(p, 0xcd, 8 * MIB);
	assert_int_equal(vm_zero_gpa(ctx, 0x100000 + 0x10, 6 * MIB), 0);
	assert_int_equal(p[0xf], 0xcd);
	for (uint64_t i = 0x10; i < 6 * MIB + 0x10; i += 509)
		assert_int_equal(p[i], 0);
	assert_int_equal(p[6 * MIB + 0xf], 0);
	assert_int_equal(p[6 * MIB + 0x10], 0xcd);
	assert_int_equal(vm_zero_gpa(ctx, 16 * MIB - 0x10, 0x20), -1);
	vm_close(ctx);
	assert_int_equal(vm_destroy_instance("zero"), 0);
	rmdir(dir);
	unsetenv("BHYVE_VMM_DIR");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_good_64, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_64, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_highmem_mapped, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_32bit_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_relocatable, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_small_memory_lower_alignment,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syssize_past_end, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_lying_setup_sects, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_huge_init_size, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_magic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_protocol_too_old, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_cmdline_too_long, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_initrd_too_big, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_alignment_and_entry, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_no_vga_info, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_headers, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_vmlinux, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vmlinux_from_files, setup,
					    teardown),
	    cmocka_unit_test(test_zero_gpa_store),
	    cmocka_unit_test_setup_teardown(test_vmlinux_bad, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vmlinux_random, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
