/* Multiboot 1 (specification 0.6.96); see multiboot.h for the layout. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "e820.h"
#include "grub_x86.h"
#include "multiboot.h"

#define PAGE UINT64_C(0x1000)
#define KIB UINT64_C(1024)
#define FOUR_GIB (UINT64_C(1) << 32)

/* ELF32 (System V gABI), the fields we read. */
#define EI_CLASS 4
#define EI_DATA 5
#define ELFCLASS32 1
#define ELFCLASS64 2
#define ELFDATA2LSB 1
#define ET_EXEC 2
#define EM_386 3
#define PT_LOAD 1
#define EHDR32_SIZE 52
#define PHDR32_SIZE 32

#define MMAP_ENTRY_SIZE 24 /* the size field (20) plus the 20 it counts */
#define MOD_ENTRY_SIZE 16

static uint64_t
align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* The header's offset, or -1 (§3.1.1: 32-bit aligned, first 8 KiB). */
static long
find_header(const uint8_t *img, size_t len, char *err, size_t errlen)
{
	size_t end = len < MB_SEARCH ? len : MB_SEARCH;
	bool bad_sum = false;

	for (size_t off = 0; off + 12 <= end; off += 4) {
		uint32_t magic = le32_get(img + off);
		uint32_t flags = le32_get(img + off + 4);
		uint32_t sum = le32_get(img + off + 8);

		if (magic != MB_HEADER_MAGIC)
			continue;
		if ((uint32_t)(magic + flags + sum) == 0)
			return (long)off;
		bad_sum = true;
	}
	if (bad_sum)
		snprintf(err, errlen,
			 "the multiboot header's checksum is wrong "
			 "(magic + flags + checksum must be 0)");
	else
		snprintf(err, errlen,
			 "not a multiboot kernel: no multiboot "
			 "header in the first 8 KiB");
	return -1;
}

/* §3.1.3: load through header_addr, load_addr, load_end_addr, bss_end. */
static int
parse_aout(const uint8_t *img, size_t len, struct mb_image *m, char *err,
	   size_t errlen)
{
	const uint8_t *h = img + m->hdr_off;
	uint64_t header_addr, load, load_end, bss_end;
	struct mb_segment *s = &m->seg[0];

	if (m->hdr_off + 32 > len) {
		snprintf(err, errlen,
			 "truncated multiboot header: the address "
			 "fields run past the end of the file");
		return -1;
	}
	header_addr = le32_get(h + 12);
	load = le32_get(h + 16);
	load_end = le32_get(h + 20);
	bss_end = le32_get(h + 24);
	m->entry = le32_get(h + 28);
	if (header_addr < load || header_addr - load > m->hdr_off) {
		snprintf(err, errlen,
			 "bad multiboot header: header_addr 0x%" PRIx64
			 " and load_addr 0x%" PRIx64 " put the image before "
			 "the start of the file",
			 header_addr, load);
		return -1;
	}
	s->off = m->hdr_off - (header_addr - load);
	s->paddr = load;
	if (load_end == 0)
		s->filesz = len - s->off;
	else if (load_end < load || load_end - load > len - s->off) {
		snprintf(err, errlen,
			 "bad multiboot header: load_end_addr 0x%" PRIx64
			 " is before load_addr or past the end of the file",
			 load_end);
		return -1;
	} else
		s->filesz = load_end - load;
	s->memsz = s->filesz;
	if (bss_end) {
		if (bss_end < load + s->filesz) {
			snprintf(err, errlen,
				 "bad multiboot header: bss_end_addr 0x%" PRIx64
				 " is before the end of the loaded image",
				 bss_end);
			return -1;
		}
		s->memsz = bss_end - load;
	}
	m->nseg = 1;
	m->aout = true;
	return 0;
}

static int
check_ehdr(const uint8_t *img, size_t len, char *err, size_t errlen)
{
	if (len < EHDR32_SIZE || memcmp(img, "\177ELF", 4) != 0) {
		snprintf(err, errlen,
			 "not an ELF file and no a.out kludge (multiboot "
			 "header flag 16)");
		return -1;
	}
	if (img[EI_CLASS] == ELFCLASS64) {
		snprintf(err, errlen,
			 "64-bit ELF multiboot kernels are not "
			 "supported: use ELF32 or the a.out kludge");
		return -1;
	}
	if (img[EI_CLASS] != ELFCLASS32 || img[EI_DATA] != ELFDATA2LSB ||
	    le16_get(img + 16) != ET_EXEC || le16_get(img + 18) != EM_386) {
		snprintf(err, errlen,
			 "not an i386 ELF32 executable (class %u, type %u, "
			 "machine %u)",
			 img[EI_CLASS], le16_get(img + 16), le16_get(img + 18));
		return -1;
	}
	return 0;
}

static int
add_phdr(const uint8_t *ph, size_t len, struct mb_image *m, char *err,
	 size_t errlen)
{
	struct mb_segment s = {
	    .off = le32_get(ph + 4),
	    .paddr = le32_get(ph + 12),
	    .filesz = le32_get(ph + 16),
	    .memsz = le32_get(ph + 20),
	};
	uint64_t vaddr = le32_get(ph + 8);

	if (le32_get(ph) != PT_LOAD || s.memsz == 0)
		return 0;
	if (s.filesz > s.memsz || s.off > len || s.filesz > len - s.off) {
		snprintf(err, errlen,
			 "bad ELF segment at 0x%" PRIx64 ": its %" PRIu64
			 " bytes at file offset %zu are not all in the file "
			 "(or exceed its memory size)",
			 s.paddr, s.filesz, s.off);
		return -1;
	}
	if (m->nseg == MB_MAX_SEGS) {
		snprintf(err, errlen, "more than %d ELF segments", MB_MAX_SEGS);
		return -1;
	}
	/* The entry is virtual: run it at its physical twin (as GRUB). */
	if (m->entry >= vaddr && m->entry - vaddr < s.memsz)
		m->entry = s.paddr + (m->entry - vaddr);
	m->seg[m->nseg++] = s;
	return 0;
}

static int
parse_elf(const uint8_t *img, size_t len, struct mb_image *m, char *err,
	  size_t errlen)
{
	uint64_t phoff, phentsize, phnum;

	if (check_ehdr(img, len, err, errlen) < 0)
		return -1;
	m->entry = le32_get(img + 24);
	phoff = le32_get(img + 28);
	phentsize = le16_get(img + 42);
	phnum = le16_get(img + 44);
	if (phentsize < PHDR32_SIZE || phoff > len ||
	    phnum * phentsize > len - phoff) {
		snprintf(err, errlen,
			 "bad ELF file: program headers past the end of the "
			 "file");
		return -1;
	}
	for (uint64_t i = 0; i < phnum; i++) {
		if (add_phdr(img + phoff + i * phentsize, len, m, err, errlen) <
		    0)
			return -1;
	}
	if (m->nseg == 0) {
		snprintf(err, errlen, "the ELF file has nothing to load");
		return -1;
	}
	return 0;
}

int
mb_parse(const uint8_t *img, size_t len, struct mb_image *m, char *err,
	 size_t errlen)
{
	long off;
	uint32_t unknown;

	memset(m, 0, sizeof(*m));
	off = find_header(img, len, err, errlen);
	if (off < 0)
		return -1;
	m->hdr_off = (size_t)off;
	m->flags = le32_get(img + off + 4);
	/* Bits 0-15 are requirements: refuse the ones we cannot meet. */
	unknown = m->flags & 0xffff &
		  ~(MB_PAGE_ALIGN | MB_MEMORY_INFO | MB_VIDEO_MODE);
	if (unknown) {
		snprintf(err, errlen,
			 "the kernel requires multiboot features we lack "
			 "(header flags 0x%x)",
			 unknown);
		return -1;
	}
	if (m->flags & MB_AOUT_KLUDGE)
		return parse_aout(img, len, m, err, errlen);
	return parse_elf(img, len, m, err, errlen);
}

/* The image against the guest's memory map; sets l's kernel range. */
static int
check_segments(const struct mb_image *m, const struct e820_entry *map, int n,
	       struct mb_layout *l, char *err, size_t errlen)
{
	bool entry_ok = false;

	l->kernel_start = UINT64_MAX;
	l->kernel_end = 0;
	for (int i = 0; i < m->nseg; i++) {
		const struct mb_segment *s = &m->seg[i];

		if (!e820_is_ram(map, n, s->paddr, s->memsz)) {
			snprintf(err, errlen,
				 "the kernel's segment at 0x%" PRIx64
				 "-0x%" PRIx64 " is not in guest RAM "
				 "(raise -M if it is above the top of memory)",
				 s->paddr, s->paddr + s->memsz - 1);
			return -1;
		}
		if (s->paddr < l->kernel_start)
			l->kernel_start = s->paddr;
		if (s->paddr + s->memsz > l->kernel_end)
			l->kernel_end = s->paddr + s->memsz;
		if (m->entry >= s->paddr && m->entry - s->paddr < s->memsz)
			entry_ok = true;
	}
	if (!entry_ok) {
		snprintf(err, errlen,
			 "the entry point 0x%" PRIx64 " is outside the loaded "
			 "kernel",
			 m->entry);
		return -1;
	}
	l->entry = m->entry;
	return 0;
}

int
mb_check(struct vmctx *ctx, const uint8_t *img, size_t len, char *err,
	 size_t errlen)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = e820_build(ctx, map, E820_MAX_ENTRIES);
	struct mb_layout l;
	struct mb_image m;

	if (mb_parse(img, len, &m, err, errlen) < 0)
		return -1;
	return check_segments(&m, map, n, &l, err, errlen);
}

/* The first page-aligned address >= from where len bytes of RAM start. */
static uint64_t
fit_ram(const struct e820_entry *map, int n, uint64_t from, uint64_t len)
{
	for (int i = 0; i < n; i++) {
		uint64_t a =
		    align_up(from > map[i].addr ? from : map[i].addr, PAGE);

		if (map[i].type == E820_RAM && a + len <= FOUR_GIB &&
		    e820_is_ram(map, n, a, len))
			return a;
	}
	return 0;
}

static uint64_t
strings_size(const struct mb_boot_args *a)
{
	uint64_t n = strlen(a->cmdline) + 1 + strlen(a->loader_name) + 1;

	for (int i = 0; i < a->nmods; i++)
		n += strlen(a->mods[i].cmdline) + 1;
	return n;
}

/* Modules after the kernel, then the information block. */
static int
place(const struct mb_boot_args *a, const struct e820_entry *map, int n,
      struct mb_layout *l, uint64_t *mods, uint64_t info_size, char *err,
      size_t errlen)
{
	uint64_t at = l->kernel_end;

	for (int i = 0; i < a->nmods; i++) {
		uint64_t len = a->mods[i].len ? a->mods[i].len : 1;

		mods[i] = fit_ram(map, n, at, len);
		if (!mods[i]) {
			snprintf(err, errlen,
				 "module %d (%zu KiB) does not fit in guest "
				 "RAM above the kernel: raise -M",
				 i, a->mods[i].len / 1024);
			return -1;
		}
		at = mods[i] + a->mods[i].len;
	}
	l->mods_start = a->nmods ? mods[0] : 0;
	l->info = fit_ram(map, n, at, info_size);
	if (!l->info) {
		snprintf(err, errlen,
			 "no room in guest RAM for the multiboot "
			 "information: raise -M");
		return -1;
	}
	return 0;
}

static uint32_t
put_string(uint8_t *base, uint64_t gpa, uint64_t *off, const char *s)
{
	uint32_t at = (uint32_t)(gpa + *off);

	strcpy((char *)base + *off, s);
	*off += strlen(s) + 1;
	return at;
}

/* The information block: GDT page, then mbi, mmap, modules, strings. */
static void
build_info(struct vmctx *ctx, const struct mb_boot_args *a,
	   const struct e820_entry *map, int n, const uint64_t *mods,
	   uint64_t gpa, uint8_t *p)
{
	uint8_t *mbi = p + PAGE;
	uint64_t mmap = PAGE + MBI_SIZE;
	uint64_t modl = mmap + (uint64_t)n * MMAP_ENTRY_SIZE;
	uint64_t str = modl + (uint64_t)a->nmods * MOD_ENTRY_SIZE;

	le32_put(mbi + MBI_FLAGS, MBI_MEMORY | MBI_CMDLINE | MBI_MODS |
				      MBI_MMAP | MBI_LOADER_NAME);
	le32_put(mbi + MBI_MEM_LOWER, E820_LOWMEM_END / KIB);
	le32_put(mbi + MBI_MEM_UPPER,
		 (vm_get_lowmem_size(ctx) - E820_HIMEM_START) / KIB);
	for (int i = 0; i < n; i++) {
		uint8_t *e = p + mmap + (uint64_t)i * MMAP_ENTRY_SIZE;

		le32_put(e, MMAP_ENTRY_SIZE - 4);
		le64_put(e + 4, map[i].addr);
		le64_put(e + 12, map[i].len);
		le32_put(e + 20, map[i].type);
	}
	le32_put(mbi + MBI_MMAP_LENGTH, n * MMAP_ENTRY_SIZE);
	le32_put(mbi + MBI_MMAP_ADDR, gpa + mmap);
	le32_put(mbi + MBI_CMDLINE_PTR, put_string(p, gpa, &str, a->cmdline));
	le32_put(mbi + MBI_LOADER_NAME_PTR,
		 put_string(p, gpa, &str, a->loader_name));
	for (int i = 0; i < a->nmods; i++) {
		uint8_t *e = p + modl + (uint64_t)i * MOD_ENTRY_SIZE;

		le32_put(e, mods[i]);
		le32_put(e + 4, mods[i] + a->mods[i].len);
		le32_put(e + 8, put_string(p, gpa, &str, a->mods[i].cmdline));
	}
	le32_put(mbi + MBI_MODS_COUNT, a->nmods);
	le32_put(mbi + MBI_MODS_ADDR, gpa + modl);
}

static void
load_kernel(const struct mb_image *m, const uint8_t *img, uint8_t **host)
{
	for (int i = 0; i < m->nseg; i++) {
		const struct mb_segment *s = &m->seg[i];

		memcpy(host[i], img + s->off, s->filesz);
		memset(host[i] + s->filesz, 0, s->memsz - s->filesz);
	}
}

static int
set_entry_state(struct vmctx *ctx, const struct mb_layout *l, char *err,
		size_t errlen)
{
	struct vm_boot_state bs;

	if (x86_handoff(ctx, X86_MODE_PROT32, l->info, &bs, err, errlen) < 0)
		return -1;
	bs.regs[VM_REG_GUEST_RAX] = MB_BOOTLOADER_MAGIC;
	bs.regs[VM_REG_GUEST_RBX] = l->info + PAGE;
	bs.regs[VM_REG_GUEST_RIP] = l->entry;
	/* ESP is undefined (§3.2): give the top of the GDT's page. */
	bs.regs[VM_REG_GUEST_RSP] = l->info + PAGE;
	return x86_commit(ctx, &bs, err, errlen);
}

/* Host pointers for every guest range, checked before anything is written. */
static int
map_all(struct vmctx *ctx, const struct mb_image *m,
	const struct mb_boot_args *a, const uint64_t *mods, uint64_t info,
	uint64_t info_size, uint8_t **seg, uint8_t **mod, uint8_t **inf)
{
	for (int i = 0; i < m->nseg; i++)
		if (!(seg[i] =
			  vm_map_gpa(ctx, m->seg[i].paddr, m->seg[i].memsz)))
			return -1;
	for (int i = 0; i < a->nmods; i++)
		if (!(mod[i] = vm_map_gpa(ctx, mods[i], a->mods[i].len)))
			return -1;
	*inf = vm_map_gpa(ctx, info, info_size);
	return *inf ? 0 : -1;
}

int
mb_boot(struct vmctx *ctx, const struct mb_boot_args *a, struct mb_layout *out,
	char *err, size_t errlen)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	uint64_t mods[MB_MAX_MODS];
	uint8_t *mod_host[MB_MAX_MODS];
	uint8_t *seg_host[MB_MAX_SEGS], *info_host;
	struct mb_image m;
	struct mb_layout l = {0};
	uint64_t info_size;
	int n = e820_build(ctx, map, E820_MAX_ENTRIES);

	if (a->nmods < 0 || a->nmods > MB_MAX_MODS) {
		snprintf(err, errlen, "too many modules: at most %d",
			 MB_MAX_MODS);
		return -1;
	}
	if (mb_parse(a->image, a->len, &m, err, errlen) < 0 ||
	    check_segments(&m, map, n, &l, err, errlen) < 0)
		return -1;
	info_size = PAGE + MBI_SIZE + (uint64_t)n * MMAP_ENTRY_SIZE +
		    (uint64_t)a->nmods * MOD_ENTRY_SIZE + strings_size(a);
	if (place(a, map, n, &l, mods, info_size, err, errlen) < 0)
		return -1;
	if (map_all(ctx, &m, a, mods, l.info, info_size, seg_host, mod_host,
		    &info_host) < 0) {
		snprintf(err, errlen,
			 "the kernel or its modules fall outside "
			 "guest RAM");
		return -1;
	}
	load_kernel(&m, a->image, seg_host);
	for (int i = 0; i < a->nmods; i++)
		if (a->mods[i].len)
			memcpy(mod_host[i], a->mods[i].data, a->mods[i].len);
	memset(info_host, 0, info_size);
	build_info(ctx, a, map, n, mods, l.info, info_host);
	if (set_entry_state(ctx, &l, err, errlen) < 0)
		return -1;
	if (out)
		*out = l;
	return 0;
}
