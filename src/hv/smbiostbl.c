/*
 * SMBIOS 2.8 (DMTF DSP0134 2.8.0): the 32-bit entry point (§5.2.1) at
 * SMBIOS_BASE and, 16-byte aligned after it, the structures: BIOS (type
 * 0), System (1), Baseboard (2), Enclosure (3), one Processor (4) per
 * socket, Physical Memory Array (16), one Memory Device (17), a Memory
 * Array Mapped Address (19) for RAM below and above the PCI hole, System
 * Boot (32) and End-of-Table (127).
 *
 * Each structure is its formatted area followed by its strings, each
 * NUL-terminated, and one more NUL (two when there are none, §6.1.3).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi.h"
#include "byteorder.h"
#include "machine.h"
#include "smbiostbl.h"

#define EP_LEN 0x1f
#define TABLE_OFF 0x20 /* the structures, after the entry point */

#define T0_LEN 0x18
#define T1_LEN 0x1b
#define T2_LEN 0x0f
#define T3_LEN 0x16
#define T4_LEN 0x2a
#define T16_LEN 0x17
#define T17_LEN 0x28
#define T19_LEN 0x1f
#define T32_LEN 0x0b
#define T127_LEN 0x04

#define HANDLE_NONE 0xffff
#define HANDLE_NO_ERRINFO 0xfffe

struct sm_buf {
	uint8_t img[SMBIOS_MAX];
	size_t len;
	uint8_t *cur; /* the structure being written */
	int nstr;     /* its strings so far */
	uint16_t handle;
	int count;
	size_t max_struct;
	bool overflow;
	uint8_t sink[256]; /* where writes go once the table is full */
};


static uint8_t *
sm_room(struct sm_buf *b, size_t n)
{
	if (b->overflow || b->len + n > sizeof(b->img)) {
		b->overflow = true;
		return n <= sizeof(b->sink) ? b->sink : NULL;
	}
	b->len += n;
	return b->img + b->len - n;
}

/* Start a structure: its zeroed formatted area, header filled in. */
static uint8_t *
sm_begin(struct sm_buf *b, uint8_t type, uint8_t len)
{
	uint8_t *s = sm_room(b, len);

	memset(s, 0, len);
	s[0] = type;
	s[1] = len;
	le16_put(s + 2, b->handle);
	b->cur = s;
	b->nstr = 0;
	return s;
}

/* Append a string; its index for the formatted area (0: none). */
static uint8_t
sm_str(struct sm_buf *b, const char *s)
{
	size_t n;
	uint8_t *p;

	if (!s || !*s || b->nstr == 255)
		return 0;
	n = strlen(s) + 1;
	if (n > 255) /* keep strings reasonable; cut at 254 characters */
		n = 255;
	p = sm_room(b, n);
	if (!p)
		return 0;
	memcpy(p, s, n - 1);
	p[n - 1] = '\0';
	return (uint8_t)++b->nstr;
}

static uint16_t
sm_end(struct sm_buf *b)
{
	uint8_t *p = sm_room(b, b->nstr ? 1 : 2);
	size_t size;

	if (p)
		memset(p, 0, b->nstr ? 1 : 2);
	if (!b->overflow) {
		size = (size_t)(b->img + b->len - b->cur);
		if (size > b->max_struct)
			b->max_struct = size;
	}
	b->count++;
	return b->handle++;
}

static const char *
cfg(struct vmctx *ctx, const char *key, const char *def)
{
	return config_get_default(machine_config(ctx), key, def);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Swap the first three fields of an RFC 4122 UUID to little-endian. */
static void
uuid_to_smbios(uint8_t u[16])
{
	uint8_t t;

	for (int i = 0; i < 2; i++) {
		t = u[i];
		u[i] = u[3 - i];
		u[3 - i] = t;
	}
	t = u[4], u[4] = u[5], u[5] = t;
	t = u[6], u[6] = u[7], u[7] = t;
}

int
smbios_parse_uuid(const char *s, uint8_t out[16])
{
	int n = 0;

	if (strlen(s) != 36)
		return -1;
	for (int i = 0; i < 36; i++) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -1;
			continue;
		}
		hi = hexval(s[i]);
		lo = hexval(s[++i]);
		if (hi < 0 || lo < 0 || i == 8 || i == 13 || i == 18 || i == 23)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | lo);
	}
	uuid_to_smbios(out);
	return 0;
}

static uint64_t
fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/*
 * No -U: a UUID that stays the same for a VM name (bhyve hashes the host
 * name and the VM name). RFC 9562 version 8 (custom), variant 10.
 */
static void
uuid_from_name(const char *name, uint8_t out[16])
{
	uint64_t h1 = fnv1a(0xcbf29ce484222325ULL, name);
	uint64_t h2 = fnv1a(fnv1a(h1, "bhyve-smbios-uuid"), name);

	for (int i = 0; i < 8; i++) {
		out[i] = (uint8_t)(h1 >> (56 - 8 * i));
		out[8 + i] = (uint8_t)(h2 >> (56 - 8 * i));
	}
	out[6] = (uint8_t)((out[6] & 0x0f) | 0x80);
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
	uuid_to_smbios(out);
}

/* "14.0" -> 14, 0; 0xff for what is not a number (§7.1: not supported). */
static void
bios_release(const char *v, uint8_t *major, uint8_t *minor)
{
	unsigned a, b;

	if (sscanf(v, "%u.%u", &a, &b) == 2 && a < 255 && b < 255) {
		*major = (uint8_t)a;
		*minor = (uint8_t)b;
	} else {
		*major = *minor = 0xff;
	}
}

static void
type0(struct sm_buf *b, struct vmctx *ctx)
{
	const char *ver = cfg(ctx, "bios.version", "14.0");
	uint8_t *s = sm_begin(b, 0, T0_LEN);

	s[4] = sm_str(b, cfg(ctx, "bios.vendor", "BHYVE"));
	s[5] = sm_str(b, ver);
	le16_put(s + 6, 0xf000); /* starting segment */
	s[8] = sm_str(b, cfg(ctx, "bios.release_date", "10/17/2021"));
	s[9] = 0;			    /* ROM size: 64 KiB */
	le64_put(s + 0x0a, 1u << 4 | 1u << 7); /* ISA, PCI */
	s[0x12] = 0x01;			    /* ACPI */
	s[0x13] = 0x10;			    /* a virtual machine */
	bios_release(ver, &s[0x14], &s[0x15]);
	s[0x16] = s[0x17] = 0xff; /* no embedded controller */
	sm_end(b);
}

static int
type1(struct sm_buf *b, struct vmctx *ctx)
{
	const char *u = config_get(machine_config(ctx), "uuid");
	const char *name = config_get(machine_config(ctx), "name");
	uint8_t *s = sm_begin(b, 1, T1_LEN);

	s[4] = sm_str(b, cfg(ctx, "system.manufacturer", "FreeBSD"));
	s[5] = sm_str(b, cfg(ctx, "system.product_name", "BHYVE"));
	s[6] = sm_str(b, cfg(ctx, "system.version", "1.0"));
	s[7] = sm_str(b, cfg(ctx, "system.serial_number", "None"));
	if (u && smbios_parse_uuid(u, s + 8) < 0) {
		fprintf(stderr,
			"bhyve: bad uuid '%s' (-U): expected "
			"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx\n",
			u);
		return -1;
	}
	if (!u)
		uuid_from_name(name ? name : vm_name(ctx), s + 8);
	s[0x18] = 0x06; /* woken by the power switch */
	s[0x19] = sm_str(b, cfg(ctx, "system.sku", "None"));
	s[0x1a] = sm_str(b, cfg(ctx, "system.family_name", "Virtual Machine"));
	sm_end(b);
	return 0;
}

static void
type2_3(struct sm_buf *b, struct vmctx *ctx)
{
	uint8_t *s = sm_begin(b, 2, T2_LEN);

	s[4] = sm_str(b, cfg(ctx, "board.manufacturer", "FreeBSD"));
	s[5] = sm_str(b, cfg(ctx, "board.product_name", "BHYVE"));
	s[6] = sm_str(b, cfg(ctx, "board.version", "1.0"));
	s[7] = sm_str(b, cfg(ctx, "board.serial_number", "None"));
	s[8] = sm_str(b, cfg(ctx, "board.asset_tag", "None"));
	s[9] = 0x01; /* a hosting board */
	s[0x0a] = sm_str(b, cfg(ctx, "board.location", "None"));
	le16_put(s + 0x0b, b->handle + 1); /* the enclosure, next */
	s[0x0d] = 0x0a;			/* motherboard */
	sm_end(b);

	s = sm_begin(b, 3, T3_LEN);
	s[4] = sm_str(b, cfg(ctx, "chassis.manufacturer", "FreeBSD"));
	s[5] = 0x01; /* other */
	s[6] = sm_str(b, cfg(ctx, "chassis.version", "1.0"));
	s[7] = sm_str(b, cfg(ctx, "chassis.serial_number", "None"));
	s[8] = sm_str(b, cfg(ctx, "chassis.asset_tag", "None"));
	s[9] = s[0x0a] = s[0x0b] = 0x03; /* boot-up, power, thermal: safe */
	s[0x0c] = 0x03;			 /* security: none */
	s[0x15] = sm_str(b, cfg(ctx, "chassis.sku", "None"));
	sm_end(b);
}

/* One per socket of -c's topology (what CPUID tells the guest too). */
static void
type4(struct sm_buf *b, struct vmctx *ctx)
{
	struct vm_topology t;
	int cores, per;

	vm_get_topology(ctx, &t);
	cores = t.cores;
	per = t.cores * t.threads;
	for (int i = 0; i < t.sockets; i++) {
		char name[24];
		uint8_t *s = sm_begin(b, 4, T4_LEN);

		snprintf(name, sizeof(name), "CPU #%d", i);
		s[4] = sm_str(b, name);
		s[5] = 0x03;		      /* central processor */
		s[6] = 0x01;		      /* family: other */
		s[0x18] = 0x41;		      /* populated, enabled */
		s[0x19] = 0x01;		      /* upgrade: other */
		le16_put(s + 0x1a, HANDLE_NONE); /* no cache structures */
		le16_put(s + 0x1c, HANDLE_NONE);
		le16_put(s + 0x1e, HANDLE_NONE);
		s[0x23] = (uint8_t)(cores > 255 ? 255 : cores);
		s[0x24] = s[0x23];
		s[0x25] = (uint8_t)(per > 255 ? 255 : per);
		le16_put(s + 0x26, 0x0004); /* 64-bit capable */
		le16_put(s + 0x28, 0x0001); /* family 2: other */
		sm_end(b);
	}
}

static void
mapped(struct sm_buf *b, uint16_t array, uint64_t start, uint64_t len)
{
	uint64_t end = start + len - 1;
	uint8_t *s = sm_begin(b, 19, T19_LEN);

	/* KiB in 32 bits, or all ones and the extended byte addresses. */
	if ((end >> 10) < 0xffffffffULL) {
		le32_put(s + 4, (uint32_t)(start >> 10));
		le32_put(s + 8, (uint32_t)(end >> 10));
	} else {
		le32_put(s + 4, 0xffffffff);
		le32_put(s + 8, 0xffffffff);
		le64_put(s + 0x0f, start);
		le64_put(s + 0x17, end);
	}
	le16_put(s + 0x0c, array);
	s[0x0e] = 1; /* partition width */
	sm_end(b);
}

static void
memory(struct sm_buf *b, struct vmctx *ctx)
{
	uint64_t low = vm_get_lowmem_size(ctx), high = vm_get_highmem_size(ctx);
	uint64_t total = low + high, kib = total >> 10, mib = total >> 20;
	uint16_t array;
	uint8_t *s = sm_begin(b, 16, T16_LEN);

	s[4] = 0x03; /* on the system board */
	s[5] = 0x03; /* system memory */
	s[6] = 0x03; /* no error correction */
	if (kib < 0x80000000ULL) {
		le32_put(s + 7, (uint32_t)kib);
	} else {
		le32_put(s + 7, 0x80000000u);
		le64_put(s + 0x0f, total);
	}
	le16_put(s + 0x0b, HANDLE_NO_ERRINFO);
	le16_put(s + 0x0d, 1);
	array = sm_end(b);

	s = sm_begin(b, 17, T17_LEN);
	le16_put(s + 4, array);
	le16_put(s + 6, HANDLE_NO_ERRINFO);
	le16_put(s + 8, 64);
	le16_put(s + 0x0a, 64);
	if (mib < 0x7fff) {
		le16_put(s + 0x0c, (uint16_t)mib);
	} else {
		le16_put(s + 0x0c, 0x7fff);
		le32_put(s + 0x1c, (uint32_t)(mib & 0x7fffffff));
	}
	s[0x0e] = 0x02; /* form factor: unknown */
	s[0x10] = sm_str(b, "DIMM 0");
	s[0x11] = sm_str(b, "Bank 0");
	s[0x12] = 0x02;		 /* type: unknown */
	le16_put(s + 0x13, 0x0004); /* type detail: unknown */
	sm_end(b);

	if (low)
		mapped(b, array, 0, low);
	if (high)
		mapped(b, array, VM_HIGHMEM_BASE, high);
}

static void
entry_point(struct sm_buf *b)
{
	uint8_t *ep = b->img;

	memcpy(ep, "_SM_", 4);
	ep[5] = EP_LEN;
	ep[6] = 2;
	ep[7] = 8;
	le16_put(ep + 8, (uint16_t)b->max_struct);
	memcpy(ep + 0x10, "_DMI_", 5);
	le16_put(ep + 0x16, (uint16_t)(b->len - TABLE_OFF));
	le32_put(ep + 0x18, SMBIOS_BASE + TABLE_OFF);
	le16_put(ep + 0x1c, (uint16_t)b->count);
	ep[0x1e] = 0x28; /* BCD revision 2.8 */
	/* The intermediate checksum covers 0x10-0x1E, then the whole. */
	ep[0x15] = acpi_checksum(ep + 0x10, EP_LEN - 0x10);
	ep[4] = acpi_checksum(ep, EP_LEN);
}

int
smbios_build(struct vmctx *ctx)
{
	struct sm_buf *b = calloc(1, sizeof(*b));
	uint8_t *guest = vm_map_gpa(ctx, SMBIOS_BASE, SMBIOS_MAX);
	int rc = -1;

	if (!b || !guest) {
		fprintf(stderr, "bhyve: SMBIOS: %s\n",
			b ? "guest memory does not cover 0xF1000 (-m too "
			    "small?)"
			  : "out of memory");
		free(b);
		return -1;
	}
	b->len = TABLE_OFF;
	type0(b, ctx);
	if (type1(b, ctx) < 0)
		goto out;
	type2_3(b, ctx);
	type4(b, ctx);
	memory(b, ctx);
	sm_begin(b, 32, T32_LEN); /* boot status 0: no errors */
	sm_end(b);
	sm_begin(b, 127, T127_LEN);
	sm_end(b);
	if (b->overflow) {
		fprintf(stderr,
			"bhyve: SMBIOS: the tables need more than %u "
			"bytes at 0x%x; use shorter bios.*/system.* "
			"strings or fewer sockets\n",
			SMBIOS_MAX, SMBIOS_BASE);
		goto out;
	}
	entry_point(b);
	memcpy(guest, b->img, b->len);
	rc = 0;
out:
	free(b);
	return rc;
}
