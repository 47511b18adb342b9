/*
 * A small AML encoder (ACPI 6.4 §20, §6.4 for resource descriptors).
 *
 * Constructs that carry a PkgLength are written body first: aml_*_begin
 * emits the opcode and records where the body starts, and aml_end measures
 * the body and inserts the PkgLength (and a Buffer's BufferSize) in front
 * of it. Tables are a few KiB, so the memmove is cheaper than two passes.
 */
#include <stdlib.h>
#include <string.h>

#include "acpi_aml.h"

/* Opcodes (§20.3). */
#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_NAME 0x08
#define AML_BYTE 0x0a
#define AML_WORD 0x0b
#define AML_DWORD 0x0c
#define AML_STRING 0x0d
#define AML_QWORD 0x0e
#define AML_SCOPE 0x10
#define AML_BUFFER 0x11
#define AML_PACKAGE 0x12
#define AML_METHOD 0x14
#define AML_DUAL_NAME 0x2e
#define AML_MULTI_NAME 0x2f
#define AML_EXT 0x5b
#define AML_EXT_DEVICE 0x82
#define AML_ROOT '\\'
#define AML_PARENT '^'
#define AML_ARG0 0x68
#define AML_STORE 0x70
#define AML_RETURN 0xa4
#define AML_ONES 0xff

/* Resource descriptor tags (§6.4.2, §6.4.3). */
#define RD_IRQ_NOFLAGS 0x22 /* small, type 4, length 2 */
#define RD_IO 0x47	    /* small, type 8, length 7 */
#define RD_END 0x79	    /* small, type 15, length 1 */
#define RD_MEM32_FIXED 0x86
#define RD_DWORD_ADDR 0x87
#define RD_WORD_ADDR 0x88
#define RD_QWORD_ADDR 0x8a
#define RD_SPACE_MEM 0
#define RD_SPACE_IO 1
#define RD_SPACE_BUS 2
/* General flags: MinFixed | MaxFixed, PosDecode, ResourceProducer. */
#define RD_GFLAGS_WINDOW 0x0c
#define RD_IO_ENTIRE_RANGE 0x03
#define RD_MEM_RW 0x01
#define RD_MEM_CACHEABLE 0x02

enum { FRAME_PKG, FRAME_BUFFER };

void
aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void
aml_free(struct aml *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

bool
aml_ok(const struct aml *a)
{
	return !a->error && a->depth == 0;
}

static bool
reserve(struct aml *a, size_t n)
{
	size_t cap = a->cap ? a->cap : 256;
	uint8_t *p;

	if (a->error)
		return false;
	if (n > AML_PKGLEN_MAX || a->len > AML_PKGLEN_MAX - n) {
		a->error = true;
		return false;
	}
	if (a->len + n <= a->cap)
		return true;
	while (cap < a->len + n)
		cap *= 2;
	p = realloc(a->buf, cap);
	if (!p) {
		a->error = true;
		return false;
	}
	a->buf = p;
	a->cap = cap;
	return true;
}

void
aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (!reserve(a, n))
		return;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void
aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void
le(struct aml *a, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		aml_byte(a, (uint8_t)(v >> (8 * i)));
}

static void
insert(struct aml *a, size_t at, const uint8_t *p, size_t n)
{
	if (!reserve(a, n))
		return;
	memmove(a->buf + at + n, a->buf + at, a->len - at);
	memcpy(a->buf + at, p, n);
	a->len += n;
}

/*
 * §20.2.4: one byte holds 0-63 in bits 5:0; otherwise bits 7:6 count the
 * bytes that follow (1-3), bits 3:0 hold the low nibble and each following
 * byte the next eight bits.
 */
int
aml_pkglen_encode(uint32_t len, uint8_t out[4])
{
	int n;

	if (len < 1 || len > AML_PKGLEN_MAX)
		return 0;
	if (len <= 0x3f) {
		out[0] = (uint8_t)len;
		return 1;
	}
	n = len <= 0xfff ? 2 : len <= 0xfffff ? 3 : 4;
	out[0] = (uint8_t)(((n - 1) << 6) | (len & 0xf));
	for (int i = 1; i < n; i++)
		out[i] = (uint8_t)(len >> (4 + 8 * (i - 1)));
	return n;
}

/* A PkgLength for a body of 'body' bytes: its size counts itself. */
static int
pkglen_for_body(size_t body, uint8_t out[4])
{
	for (int n = 1; n <= 4; n++) {
		uint8_t tmp[4];

		if (body + n > AML_PKGLEN_MAX)
			return 0;
		if (aml_pkglen_encode((uint32_t)(body + n), tmp) == n) {
			memcpy(out, tmp, 4);
			return n;
		}
	}
	return 0;
}

static void
push(struct aml *a, int kind)
{
	if (a->depth >= AML_MAX_DEPTH) {
		a->error = true;
		return;
	}
	a->stack[a->depth].start = a->len;
	a->stack[a->depth].kind = kind;
	a->depth++;
}

/* The shortest encoding of an integer (§20.2.3), into out. */
static size_t
encode_integer(uint64_t v, uint8_t out[9])
{
	int bytes;

	if (v == 0 || v == 1) {
		out[0] = v ? AML_ONE : AML_ZERO;
		return 1;
	}
	if (v == UINT64_MAX) { /* Ones: all bits set in a revision-2 table */
		out[0] = AML_ONES;
		return 1;
	}
	if (v <= 0xff) {
		out[0] = AML_BYTE;
		bytes = 1;
	} else if (v <= 0xffff) {
		out[0] = AML_WORD;
		bytes = 2;
	} else if (v <= 0xffffffff) {
		out[0] = AML_DWORD;
		bytes = 4;
	} else {
		out[0] = AML_QWORD;
		bytes = 8;
	}
	for (int i = 0; i < bytes; i++)
		out[1 + i] = (uint8_t)(v >> (8 * i));
	return 1 + (size_t)bytes;
}

void
aml_end(struct aml *a)
{
	struct aml_frame *f;
	uint8_t hdr[4 + 9];
	size_t body, n = 0;
	int pl;

	if (a->error)
		return;
	if (a->depth == 0) {
		a->error = true;
		return;
	}
	f = &a->stack[--a->depth];
	body = a->len - f->start;
	if (f->kind == FRAME_BUFFER) {
		/* BufferSize (a TermArg) counts the bytes that follow it. */
		uint8_t size[9];
		size_t sn = encode_integer(body, size);

		pl = pkglen_for_body(body + sn, hdr);
		memcpy(hdr + pl, size, sn);
		n = (size_t)pl + sn;
	} else {
		pl = pkglen_for_body(body, hdr);
		n = (size_t)pl;
	}
	if (pl == 0) {
		a->error = true;
		return;
	}
	insert(a, f->start, hdr, n);
}

void
aml_integer(struct aml *a, uint64_t v)
{
	uint8_t b[9];

	aml_bytes(a, b, encode_integer(v, b));
}

void
aml_string(struct aml *a, const char *s)
{
	for (const char *p = s; *p; p++) {
		/* §20.2.3: AsciiCharList is 0x01-0x7F. */
		if ((unsigned char)*p > 0x7f) {
			a->error = true;
			return;
		}
	}
	aml_byte(a, AML_STRING);
	aml_bytes(a, s, strlen(s) + 1);
}

static bool
lead_char(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
name_char(char c)
{
	return lead_char(c) || (c >= '0' && c <= '9');
}

/* One NameSeg of 1-4 characters, padded with '_'; false if malformed. */
static bool
nameseg(const char *s, size_t n, uint8_t out[4])
{
	if (n < 1 || n > 4 || !lead_char(s[0]))
		return false;
	for (size_t i = 0; i < 4; i++) {
		if (i < n && !name_char(s[i]))
			return false;
		out[i] = i < n ? (uint8_t)s[i] : '_';
	}
	return true;
}

void
aml_namestring(struct aml *a, const char *path)
{
	uint8_t segs[255][4];
	size_t nseg = 0;
	const char *p = path;

	if (*p == AML_ROOT) {
		aml_byte(a, AML_ROOT);
		p++;
	} else {
		while (*p == AML_PARENT) {
			aml_byte(a, AML_PARENT);
			p++;
		}
	}
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (nseg == 255 || !nameseg(p, n, segs[nseg])) {
			a->error = true;
			return;
		}
		nseg++;
		p += n;
		if (*p == '.' && !*++p) { /* a trailing dot */
			a->error = true;
			return;
		}
	}
	if (nseg == 0) {
		aml_byte(a, 0x00); /* NullName */
		return;
	}
	if (nseg == 2) {
		aml_byte(a, AML_DUAL_NAME);
	} else if (nseg > 2) {
		aml_byte(a, AML_MULTI_NAME);
		aml_byte(a, (uint8_t)nseg);
	}
	aml_bytes(a, segs, nseg * 4);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * EISAID (§19.6.35): three letters of five bits each ('A' = 1) and four hex
 * digits, stored big-endian: "PNP0A08" is the bytes 41 D0 0A 08.
 */
uint32_t
aml_eisaid(const char *id)
{
	uint32_t v = 0;

	if (strlen(id) != 7)
		return 0;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return 0;
		v = (v << 5) | (uint32_t)(id[i] - 'A' + 1);
	}
	for (int i = 3; i < 7; i++) {
		int h = hexval(id[i]);

		if (h < 0)
			return 0;
		v = (v << 4) | (uint32_t)h;
	}
	/* Big-endian bytes, read back as a little-endian DWord. */
	return __builtin_bswap32(v);
}

void
aml_name(struct aml *a, const char *name)
{
	aml_byte(a, AML_NAME);
	aml_namestring(a, name);
}

void
aml_name_integer(struct aml *a, const char *name, uint64_t v)
{
	aml_name(a, name);
	aml_integer(a, v);
}

void
aml_name_string(struct aml *a, const char *name, const char *s)
{
	aml_name(a, name);
	aml_string(a, s);
}

void
aml_name_eisaid(struct aml *a, const char *name, const char *id)
{
	uint32_t v = aml_eisaid(id);

	if (!v)
		a->error = true;
	aml_name(a, name);
	aml_byte(a, AML_DWORD); /* always a DWord, as iasl writes EisaId */
	le(a, v, 4);
}

void
aml_scope_begin(struct aml *a, const char *path)
{
	aml_byte(a, AML_SCOPE);
	push(a, FRAME_PKG);
	aml_namestring(a, path);
}

void
aml_device_begin(struct aml *a, const char *name)
{
	aml_byte(a, AML_EXT);
	aml_byte(a, AML_EXT_DEVICE);
	push(a, FRAME_PKG);
	aml_namestring(a, name);
}

void
aml_method_begin(struct aml *a, const char *name, int nargs, bool serialized)
{
	if (nargs < 0 || nargs > 7)
		a->error = true;
	aml_byte(a, AML_METHOD);
	push(a, FRAME_PKG);
	aml_namestring(a, name);
	/* MethodFlags: ArgCount 2:0, SerializeFlag 3, SyncLevel 7:4 = 0. */
	aml_byte(a, (uint8_t)((nargs & 7) | (serialized ? 0x08 : 0)));
}

void
aml_package_begin(struct aml *a, uint8_t nelems)
{
	aml_byte(a, AML_PACKAGE);
	push(a, FRAME_PKG);
	aml_byte(a, nelems);
}

void
aml_buffer_begin(struct aml *a)
{
	aml_byte(a, AML_BUFFER);
	push(a, FRAME_BUFFER);
}

void
aml_return(struct aml *a)
{
	aml_byte(a, AML_RETURN);
}

void
aml_store_arg(struct aml *a, int arg, const char *name)
{
	if (arg < 0 || arg > 6)
		a->error = true;
	aml_byte(a, AML_STORE);
	aml_byte(a, (uint8_t)(AML_ARG0 + (arg & 7)));
	aml_namestring(a, name);
}

void
aml_rt_begin(struct aml *a)
{
	aml_buffer_begin(a);
}

void
aml_rt_end(struct aml *a)
{
	/* The End Tag; a checksum of 0 means "treated as correct". */
	aml_byte(a, RD_END);
	aml_byte(a, 0);
	if (!a->error &&
	    (a->depth == 0 || a->stack[a->depth - 1].kind != FRAME_BUFFER))
		a->error = true;
	aml_end(a);
}

void
aml_rt_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	aml_byte(a, RD_IO);
	aml_byte(a, 0x01); /* Decode16 */
	le(a, min, 2);
	le(a, max, 2);
	aml_byte(a, align);
	aml_byte(a, len);
}

void
aml_rt_irq(struct aml *a, uint8_t irq)
{
	if (irq > 15)
		a->error = true;
	aml_byte(a, RD_IRQ_NOFLAGS);
	le(a, 1u << (irq & 15), 2);
}

void
aml_rt_mem32_fixed(struct aml *a, bool rw, uint32_t base, uint32_t len)
{
	aml_byte(a, RD_MEM32_FIXED);
	le(a, 9, 2);
	aml_byte(a, rw ? RD_MEM_RW : 0);
	le(a, base, 4);
	le(a, len, 4);
}

/*
 * Address space descriptors (§6.4.3.5): type, general and type-specific
 * flags, then granularity, minimum, maximum, translation offset and
 * length, each 'w' bytes wide.
 */
static void
addr_desc(struct aml *a, uint8_t tag, int w, uint8_t space, uint8_t tflags,
	  uint64_t min, uint64_t max)
{
	uint64_t len = max - min + 1;

	/* The length must fit the descriptor's width too (0-0xFFFF does not
	 * fit a Word descriptor). */
	if (max < min || (w < 8 && (len >> (8 * w)) != 0))
		a->error = true;
	aml_byte(a, tag);
	le(a, 3 + 5 * (uint64_t)w, 2);
	aml_byte(a, space);
	aml_byte(a, RD_GFLAGS_WINDOW);
	aml_byte(a, tflags);
	le(a, 0, w); /* granularity */
	le(a, min, w);
	le(a, max, w);
	le(a, 0, w); /* translation offset */
	le(a, len, w);
}

void
aml_rt_word_bus(struct aml *a, uint16_t min, uint16_t max)
{
	addr_desc(a, RD_WORD_ADDR, 2, RD_SPACE_BUS, 0, min, max);
}

void
aml_rt_word_io(struct aml *a, uint16_t min, uint16_t max)
{
	addr_desc(a, RD_WORD_ADDR, 2, RD_SPACE_IO, RD_IO_ENTIRE_RANGE, min,
		  max);
}

void
aml_rt_dword_mem(struct aml *a, bool cacheable, uint32_t min, uint32_t max)
{
	addr_desc(a, RD_DWORD_ADDR, 4, RD_SPACE_MEM,
		  RD_MEM_RW | (cacheable ? RD_MEM_CACHEABLE : 0), min, max);
}

void
aml_rt_qword_mem(struct aml *a, bool cacheable, uint64_t min, uint64_t max)
{
	addr_desc(a, RD_QWORD_ADDR, 8, RD_SPACE_MEM,
		  RD_MEM_RW | (cacheable ? RD_MEM_CACHEABLE : 0), min, max);
}
