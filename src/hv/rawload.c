/*
 * rawload: load a flat binary into a VM instance and leave vCPU 0 as a boot
 * loader would, for bhyve to run. It plays the part bhyveload/grub-bhyve
 * play for real kernels, for our tiny test guests (fixtures/guests).
 *
 *   rawload -m MEMSIZE -b 16|32|64 [-a LOADADDR] [-e ENTRY] [-r REG=VALUE]...
 *           IMAGE VMNAME
 *
 * The state each mode leaves (the guest ABI):
 *
 *   16  real mode. CS = DS = ES = FS = GS = LOADADDR >> 4 (LOADADDR must be
 *       16-byte aligned and below 1 MiB), IP = ENTRY - (CS << 4), so a guest
 *       linked at 0 addresses its own code and data by offset. SS = 0,
 *       SP = min(LOADADDR, 0xfff0): the stack grows down below the image.
 *       Default LOADADDR 0x8000. IDTR is the real-mode IVT (0, 0x3ff).
 *
 *   32  protected mode, paging off. Flat 4 GiB segments from the GDT at
 *       GDT_ADDR: CS = 0x10 (32-bit code), DS = ES = FS = GS = SS = 0x18.
 *       EIP = ENTRY, ESP = min(LOADADDR, 0x80000), EFLAGS 0x2, IDTR limit 0
 *       (any exception before the guest loads an IDT is a triple fault).
 *       Default LOADADDR 0x100000.
 *
 *   64  long mode, as 32 but CS = 0x08 (64-bit code, L=1), CR0 PG|PE,
 *       CR4 PAE, EFER LME|LMA, CR3 = PML4_ADDR: the first 4 GiB identity
 *       mapped with 2 MiB pages (PML4 at 0x1000, PDPT at 0x2000, four page
 *       directories at 0x3000-0x6fff).
 *
 * The GDT (at 0x7000 for 32 and 64) holds: 0x00 null, 0x08 64-bit code,
 * 0x10 32-bit code, 0x18 data; all flat, DPL 0. In 32- and 64-bit modes
 * the loader owns 0x1000-0x7fff, so the image must start at 0x8000 or above.
 *
 * -r sets a general register (rax..r15, rsp, rbp; eax-style names too)
 * after the defaults above: guests read their parameters from them.
 *
 * An instance that already exists is re-initialised: its memory, layout
 * and boot state are replaced (refused while a bhyve runs it).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm.h"

#define PML4_ADDR 0x1000ULL
#define PDPT_ADDR 0x2000ULL
#define PD_ADDR 0x3000ULL /* four pages: 0x3000-0x6fff */
#define GDT_ADDR 0x7000ULL
#define LOADER_END 0x8000ULL /* first byte a 32/64-bit image may use */

#define SEL_CODE64 0x08
#define SEL_CODE32 0x10
#define SEL_DATA 0x18

/* VMX access rights (vmm.h): type | S | P, plus L, D/B and G. */
#define AR_CODE 0x9b /* execute/read, accessed, S, P */
#define AR_DATA 0x93 /* read/write, accessed, S, P */
#define AR_L (1u << 13)
#define AR_DB (1u << 14)
#define AR_G (1u << 15)

#define CR0_PE 0x1ULL
#define CR0_ET 0x10ULL
#define CR0_PG 0x80000000ULL
#define CR4_PAE 0x20ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

/* Page table entry bits (Intel SDM vol. 3 §4.5). */
#define PTE_P 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_PS 0x80ULL

struct opts {
	uint64_t memsize;
	int bits;
	uint64_t loadaddr;
	uint64_t entry;
	bool have_loadaddr, have_entry;
	struct {
		enum vm_reg_name reg;
		uint64_t val;
	} regs[32];
	int nregs;
	const char *image;
	const char *vmname;
};

static void
usage(FILE *f)
{
	fprintf(
	    f, "usage: rawload -m MEMSIZE -b 16|32|64 [-a LOADADDR] [-e ENTRY]"
	       "\n               [-r REG=VALUE]... IMAGE VMNAME\n"
	       "  -m  guest memory, as bhyve -m (K/M/G/T suffix; none = MiB)\n"
	       "  -b  CPU mode to hand off in: 16 real, 32 protected, 64 long\n"
	       "  -a  load address (default 0x8000 for 16, 0x100000 else)\n"
	       "  -e  entry point (default: the load address)\n"
	       "  -r  set a general register, e.g. -r rcx=1000 (repeatable)\n");
}

static void __attribute__((noreturn, format(printf, 1, 2)))
fail(const char *fmt, ...)
{
	va_list ap;

	fputs("rawload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* A number in C syntax (0x.., 0.., decimal); false if malformed. */
static bool
parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!*s || *s == '-')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno == 0 && *end == '\0';
}

/* bhyve -m syntax: a number with a K/M/G/T suffix; no suffix means MiB. */
static bool
parse_memsize(const char *s, uint64_t *out)
{
	uint64_t n;
	char *end;
	int shift;

	if (!*s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno)
		return false;
	switch (*end) {
	case '\0':
		shift = 20;
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	default:
		return false;
	}
	if (*end && end[1] != '\0' && strcasecmp(end + 1, "B") != 0)
		return false;
	if (n == 0 || n > (UINT64_MAX >> shift))
		return false;
	*out = n << shift;
	/* vm_setup_memory's rule, checked before the instance is touched. */
	return *out >= (1ULL << 20) && (*out & 0xfff) == 0;
}

static const struct {
	const char *name, *alias;
	enum vm_reg_name reg;
} gprs[] = {
    {"rax", "eax", VM_REG_GUEST_RAX}, {"rbx", "ebx", VM_REG_GUEST_RBX},
    {"rcx", "ecx", VM_REG_GUEST_RCX}, {"rdx", "edx", VM_REG_GUEST_RDX},
    {"rsi", "esi", VM_REG_GUEST_RSI}, {"rdi", "edi", VM_REG_GUEST_RDI},
    {"rbp", "ebp", VM_REG_GUEST_RBP}, {"rsp", "esp", VM_REG_GUEST_RSP},
    {"r8", NULL, VM_REG_GUEST_R8},    {"r9", NULL, VM_REG_GUEST_R9},
    {"r10", NULL, VM_REG_GUEST_R10},  {"r11", NULL, VM_REG_GUEST_R11},
    {"r12", NULL, VM_REG_GUEST_R12},  {"r13", NULL, VM_REG_GUEST_R13},
    {"r14", NULL, VM_REG_GUEST_R14},  {"r15", NULL, VM_REG_GUEST_R15},
};

static void
parse_reg(struct opts *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg) : 0;
	uint64_t val;

	if (!eq || !parse_u64(eq + 1, &val))
		fail("bad register setting '%s': use -r REG=VALUE, e.g. "
		     "-r rcx=1000",
		     arg);
	if (o->nregs == (int)(sizeof(o->regs) / sizeof(o->regs[0])))
		fail("too many -r options");
	for (size_t i = 0; i < sizeof(gprs) / sizeof(gprs[0]); i++) {
		if ((strlen(gprs[i].name) == n &&
		     !strncasecmp(arg, gprs[i].name, n)) ||
		    (gprs[i].alias && strlen(gprs[i].alias) == n &&
		     !strncasecmp(arg, gprs[i].alias, n))) {
			o->regs[o->nregs].reg = gprs[i].reg;
			o->regs[o->nregs++].val = val;
			return;
		}
	}
	fail("unknown register '%.*s' in -r %s: use rax..r15, rsp or rbp",
	     (int)n, arg, arg);
}

static void
parse_args(int argc, char **argv, struct opts *o)
{
	int c;

	memset(o, 0, sizeof(*o));
	while ((c = getopt(argc, argv, "hm:b:a:e:r:")) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			exit(0);
		case 'm':
			if (!parse_memsize(optarg, &o->memsize))
				fail("bad memory size '%s': use e.g. 32M, 1G "
				     "or 64 (MiB), at least 1 MiB",
				     optarg);
			break;
		case 'b':
			if (strcmp(optarg, "16") && strcmp(optarg, "32") &&
			    strcmp(optarg, "64"))
				fail("bad mode '%s': -b takes 16, 32 or 64",
				     optarg);
			o->bits = atoi(optarg);
			break;
		case 'a':
			if (!parse_u64(optarg, &o->loadaddr))
				fail("bad load address '%s'", optarg);
			o->have_loadaddr = true;
			break;
		case 'e':
			if (!parse_u64(optarg, &o->entry))
				fail("bad entry point '%s'", optarg);
			o->have_entry = true;
			break;
		case 'r':
			parse_reg(o, optarg);
			break;
		default:
			usage(stderr);
			exit(1);
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "rawload: need IMAGE and VMNAME (see "
				"rawload -h)\n");
		exit(1);
	}
	o->image = argv[optind];
	o->vmname = argv[optind + 1];
	if (!o->memsize)
		fail("no memory size: give -m, e.g. -m 32M");
	if (!o->bits)
		fail("no CPU mode: give -b 16, -b 32 or -b 64");
	if (!o->have_loadaddr)
		o->loadaddr = o->bits == 16 ? 0x8000 : 0x100000;
	if (!o->have_entry)
		o->entry = o->loadaddr;
}

/* Read the whole image; exits with a message on any error. */
static uint8_t *
read_image(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		fail("%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0)
		fail("%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		fail("%s: not a regular file", path);
	if (st.st_size == 0)
		fail("%s: empty image", path);
	buf = malloc(st.st_size);
	if (!buf)
		fail("%s: out of memory", path);
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, st.st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail("%s: %s", path,
			     n ? strerror(errno) : "short read");
		off += n;
	}
	close(fd);
	*len = off;
	return buf;
}

static void
check_layout(const struct opts *o, size_t len, uint64_t lowmem)
{
	uint64_t end = o->loadaddr + len;

	if (end < o->loadaddr || end > lowmem)
		fail("%s (%zu bytes) does not fit at 0x%" PRIx64 " in %" PRIu64
		     " MiB of low memory: raise -m or lower -a",
		     o->image, len, o->loadaddr, lowmem >> 20);
	if (o->entry < o->loadaddr || o->entry >= end)
		fail("entry 0x%" PRIx64 " is outside the image "
		     "[0x%" PRIx64 ", 0x%" PRIx64 ")",
		     o->entry, o->loadaddr, end);
	if (o->bits == 16) {
		if (o->loadaddr & 0xf)
			fail("16-bit load address 0x%" PRIx64
			     " must be 16-byte aligned (it becomes CS)",
			     o->loadaddr);
		if (end > 0x100000)
			fail("16-bit image must end below 1 MiB (ends at "
			     "0x%" PRIx64 ")",
			     end);
		if (o->entry - o->loadaddr > 0xffff)
			fail("16-bit entry 0x%" PRIx64 " is more than 64 KiB "
			     "past the load address",
			     o->entry);
	} else if (o->loadaddr < LOADER_END) {
		fail("%d-bit load address 0x%" PRIx64 " is below 0x%llx: "
		     "the loader's page tables and GDT live there",
		     o->bits, o->loadaddr, LOADER_END);
	}
}

static void *
guest_ptr(struct vmctx *ctx, uint64_t gpa, size_t len)
{
	void *p = vm_map_gpa(ctx, gpa, len);

	if (!p)
		fail("guest address 0x%" PRIx64 " (+%zu) is outside guest RAM",
		     gpa, len);
	return p;
}

static void
write_gdt(struct vmctx *ctx, struct vm_boot_state *bs)
{
	static const uint64_t gdt[] = {
	    0, 0x00af9b000000ffffULL, /* 0x08: 64-bit code, L=1 */
	    0x00cf9b000000ffffULL,    /* 0x10: 32-bit code, D=1 */
	    0x00cf93000000ffffULL,    /* 0x18: data, B=1 */
	};

	memcpy(guest_ptr(ctx, GDT_ADDR, sizeof(gdt)), gdt, sizeof(gdt));
	bs->segs[VM_REG_GUEST_GDTR] =
	    (struct seg_desc){GDT_ADDR, sizeof(gdt) - 1, 0};
}

/* Identity map 0-4 GiB with 2 MiB pages (no 1 GiB pages: not every CPU). */
static void
write_page_tables(struct vmctx *ctx)
{
	uint64_t *pml4 = guest_ptr(ctx, PML4_ADDR, 4096);
	uint64_t *pdpt = guest_ptr(ctx, PDPT_ADDR, 4096);
	uint64_t *pd = guest_ptr(ctx, PD_ADDR, 4 * 4096);

	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = PDPT_ADDR | PTE_P | PTE_RW;
	for (int i = 0; i < 4; i++)
		pdpt[i] = (PD_ADDR + i * 4096ULL) | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | PTE_P | PTE_RW | PTE_PS;
}

static void
set_flat_segs(struct vm_boot_state *bs, uint16_t cs, uint32_t cs_access)
{
	const struct seg_desc data = {0, 0xffffffff, AR_DATA | AR_DB | AR_G};

	for (int r = VM_REG_GUEST_ES; r <= VM_REG_GUEST_GS; r++) {
		bs->regs[r] = SEL_DATA;
		bs->segs[r] = data;
	}
	bs->regs[VM_REG_GUEST_CS] = cs;
	bs->segs[VM_REG_GUEST_CS] = (struct seg_desc){0, 0xffffffff, cs_access};
	/* No IDT yet: an early exception is a clean triple fault. */
	bs->segs[VM_REG_GUEST_IDTR] = (struct seg_desc){0, 0, 0};
}

static void
boot_state(struct vmctx *ctx, const struct opts *o, struct vm_boot_state *bs)
{
	vm_reset_state(bs);
	bs->regs[VM_REG_GUEST_RDX] = 0;
	bs->regs[VM_REG_GUEST_RFLAGS] = 0x2;
	if (o->bits == 16) {
		uint64_t seg = o->loadaddr >> 4;

		for (int r = VM_REG_GUEST_ES; r <= VM_REG_GUEST_GS; r++) {
			bs->regs[r] = seg;
			bs->segs[r] =
			    (struct seg_desc){seg << 4, 0xffff, AR_DATA};
		}
		bs->segs[VM_REG_GUEST_CS].access = AR_CODE;
		bs->regs[VM_REG_GUEST_SS] = 0;
		bs->segs[VM_REG_GUEST_SS].base = 0;
		bs->regs[VM_REG_GUEST_RIP] = o->entry - (seg << 4);
		bs->regs[VM_REG_GUEST_RSP] =
		    o->loadaddr < 0xfff0 ? o->loadaddr : 0xfff0;
		bs->regs[VM_REG_GUEST_CR0] = CR0_ET;
		bs->segs[VM_REG_GUEST_IDTR] = (struct seg_desc){0, 0x3ff, 0};
		return;
	}
	write_gdt(ctx, bs);
	bs->regs[VM_REG_GUEST_RIP] = o->entry;
	bs->regs[VM_REG_GUEST_RSP] =
	    o->loadaddr < 0x80000 ? o->loadaddr : 0x80000;
	if (o->bits == 32) {
		set_flat_segs(bs, SEL_CODE32, AR_CODE | AR_DB | AR_G);
		bs->regs[VM_REG_GUEST_CR0] = CR0_PE | CR0_ET;
		return;
	}
	write_page_tables(ctx);
	set_flat_segs(bs, SEL_CODE64, AR_CODE | AR_L | AR_G);
	bs->regs[VM_REG_GUEST_CR0] = CR0_PG | CR0_PE | CR0_ET;
	bs->regs[VM_REG_GUEST_CR3] = PML4_ADDR;
	bs->regs[VM_REG_GUEST_CR4] = CR4_PAE;
	bs->regs[VM_REG_GUEST_EFER] = EFER_LME | EFER_LMA;
}

/* Drop an old instance's memory and boot state so it starts clean. */
static void
reset_instance(struct vmctx *ctx)
{
	if (vm_reset_instance(ctx) < 0)
		fail("%s", vm_strerror());
}

int
main(int argc, char **argv)
{
	struct vm_boot_state bs;
	struct opts o;
	struct vmctx *ctx;
	struct vcpu *vcpu;
	uint8_t *image;
	size_t len;

	parse_args(argc, argv, &o);
	image = read_image(o.image, &len);
	check_layout(&o, len,
		     o.memsize < VM_LOWMEM_LIMIT ? o.memsize : VM_LOWMEM_LIMIT);
	ctx = vm_create(o.vmname, VMM_BACKEND_STORE);
	if (!ctx)
		fail("%s", vm_strerror());
	if (vm_claim(ctx) < 0) {
		if (errno != EBUSY)
			fail("%s", vm_strerror());
		fail("VM '%s' is in use by a running bhyve: stop it or "
		     "bhyvectl --destroy --vm=%s first",
		     o.vmname, o.vmname);
	}
	reset_instance(ctx);
	if (vm_setup_memory(ctx, o.memsize) < 0)
		fail("%s: %s", o.vmname, vm_strerror());
	memcpy(guest_ptr(ctx, o.loadaddr, len), image, len);
	free(image);

	boot_state(ctx, &o, &bs);
	for (int i = 0; i < o.nregs; i++)
		bs.regs[o.regs[i].reg] = o.regs[i].val;
	vcpu = vm_vcpu_open(ctx, 0);
	if (!vcpu || vm_apply_state(vcpu, &bs) < 0)
		fail("%s: cannot set vCPU 0 state: %s", o.vmname,
		     vm_strerror());
	vm_close(ctx);
	return 0;
}
