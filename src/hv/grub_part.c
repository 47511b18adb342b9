/*
 * MBR and GPT partition tables (grub_part.h). MBR layout: the classic PC
 * boot sector (entries at 446, 0x55AA at 510) and EBR chains; GPT: UEFI
 * 2.10 §5.3 (header at LBA 1, backup at the last LBA, CRC32s over the
 * header and the entry array).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "grub_part.h"

#define SECTOR 512
#define MBR_SIG 0xaa55
#define MBR_GPT_PROTECTIVE 0xee
#define EBR_MAX 256 /* EBRs followed before giving up */

uint32_t
gpart_crc32(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t c = 0xffffffff;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320 & -(c & 1));
	}
	return ~c;
}

static int
add_part(struct gpart_table *t, const char *scheme, int number,
	 uint64_t start, uint64_t len)
{
	struct gpart *p;

	if (t->n == GPART_MAX)
		return -1;
	p = &t->p[t->n++];
	p->number = number;
	p->start = start;
	p->len = len;
	snprintf(p->name, sizeof(p->name), "%s%d", scheme, number);
	return 0;
}

struct mbr_entry {
	uint8_t flag, type;
	uint64_t lba, count;
};

static void
mbr_entry(const uint8_t *sec, int i, struct mbr_entry *e)
{
	const uint8_t *p = sec + 446 + 16 * i;

	e->flag = p[0];
	e->type = p[4];
	e->lba = le32_get(p + 8);
	e->count = le32_get(p + 12);
}

static int
is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

/* Does [lba, lba+count) lie on the disk (and mean something)? */
static int
fits(const struct gblk *disk, uint64_t lba, uint64_t count)
{
	uint64_t sectors = disk->size / SECTOR;

	return count > 0 && lba > 0 && lba < sectors && count <= sectors - lba;
}

/* A sector that is an MBR: the signature and sane entry flags. */
static int
is_mbr(const uint8_t *sec)
{
	if (le16_get(sec + 510) != MBR_SIG)
		return 0;
	for (int i = 0; i < 4; i++) {
		struct mbr_entry e;

		mbr_entry(sec, i, &e);
		if (e.flag & 0x7f)
			return 0;
	}
	return 1;
}

/*
 * The logical partitions: a chain of EBRs, each with its partition
 * (relative to the EBR) and a link to the next (relative to the extended
 * partition). A link outside the extended partition, back to an EBR seen
 * before, or a chain longer than EBR_MAX, ends the walk with an error.
 */
static int
scan_ebrs(const struct gblk *disk, uint64_t ext_lba, uint64_t ext_count,
	  struct gpart_table *t, char *err, size_t errlen)
{
	uint64_t seen[EBR_MAX];
	uint64_t ebr = ext_lba;
	uint8_t sec[SECTOR];
	int nseen = 0, number = 5;

	for (;;) {
		uint64_t next = 0;

		for (int i = 0; i < nseen; i++) {
			if (seen[i] == ebr) {
				snprintf(err, errlen,
					 "the extended partition's chain of "
					 "EBRs loops at sector %llu",
					 (unsigned long long)ebr);
				return -1;
			}
		}
		if (nseen == EBR_MAX) {
			snprintf(err, errlen,
				 "more than %d logical partitions", EBR_MAX);
			return -1;
		}
		seen[nseen++] = ebr;
		if (gblk_read(disk, ebr * SECTOR, sec, SECTOR) < 0) {
			snprintf(err, errlen, "EBR at sector %llu is past the "
				 "end of the disk", (unsigned long long)ebr);
			return -1;
		}
		if (le16_get(sec + 510) != MBR_SIG)
			return 0; /* the chain ends (GRUB: no more EBRs) */
		for (int i = 0; i < 4; i++) {
			struct mbr_entry e;

			mbr_entry(sec, i, &e);
			if (e.type == 0)
				continue;
			if (is_extended(e.type)) {
				if (!next && e.lba && e.lba < ext_count)
					next = ext_lba + e.lba;
				continue;
			}
			if (e.lba > UINT64_MAX - ebr ||
			    !fits(disk, ebr + e.lba, e.count)) {
				number++; /* named, unusable */
				continue;
			}
			if (add_part(t, "msdos", number++, (ebr + e.lba) * SECTOR,
				     e.count * SECTOR) < 0) {
				snprintf(err, errlen,
					 "more than %d partitions", GPART_MAX);
				return -1;
			}
		}
		if (!next)
			return 0;
		ebr = next;
	}
}

static int
scan_mbr(const struct gblk *disk, const uint8_t *sec, struct gpart_table *t,
	 char *err, size_t errlen)
{
	struct mbr_entry ext = {0};

	t->scheme = "msdos";
	for (int i = 0; i < 4; i++) {
		struct mbr_entry e;

		mbr_entry(sec, i, &e);
		if (e.type == 0 || !fits(disk, e.lba, e.count))
			continue;
		if (is_extended(e.type)) {
			if (!ext.type)
				ext = e;
			continue;
		}
		add_part(t, "msdos", i + 1, e.lba * SECTOR, e.count * SECTOR);
	}
	if (ext.type)
		return scan_ebrs(disk, ext.lba, ext.count, t, err, errlen);
	return 0;
}

struct gpt_hdr {
	uint64_t my_lba, alt_lba, first_usable, last_usable, entries_lba;
	uint32_t nentries, entry_size, entries_crc;
};

/* The GPT header at lba, checked (signature, size, CRC, own LBA). */
static int
read_gpt_hdr(const struct gblk *disk, unsigned ss, uint64_t lba,
	     struct gpt_hdr *h)
{
	uint8_t sec[4096];
	uint32_t hsize, crc;

	if (lba == 0 || lba > disk->size / ss - 1 ||
	    gblk_read(disk, lba * ss, sec, ss) < 0 ||
	    memcmp(sec, "EFI PART", 8) != 0)
		return -1;
	hsize = le32_get(sec + 12);
	if (hsize < 92 || hsize > ss)
		return -1;
	crc = le32_get(sec + 16);
	memset(sec + 16, 0, 4);
	if (gpart_crc32(sec, hsize) != crc)
		return -1;
	h->my_lba = le64_get(sec + 24);
	h->alt_lba = le64_get(sec + 32);
	h->first_usable = le64_get(sec + 40);
	h->last_usable = le64_get(sec + 48);
	h->entries_lba = le64_get(sec + 72);
	h->nentries = le32_get(sec + 80);
	h->entry_size = le32_get(sec + 84);
	h->entries_crc = le32_get(sec + 88);
	if (h->my_lba != lba || h->entry_size < 128 || h->entry_size > 4096 ||
	    (h->entry_size & (h->entry_size - 1)) || h->nentries == 0 ||
	    h->nentries > GPART_GPT_MAX)
		return -1;
	return 0;
}

/* The entry array, read whole (at most 4096 x 4 KiB) and CRC-checked. */
static uint8_t *
read_gpt_entries(const struct gblk *disk, unsigned ss, const struct gpt_hdr *h)
{
	size_t n = (size_t)h->nentries * h->entry_size;
	uint8_t *v;

	if (h->entries_lba == 0 || h->entries_lba > disk->size / ss ||
	    n > disk->size - h->entries_lba * ss)
		return NULL;
	v = malloc(n);
	if (!v)
		return NULL;
	if (gblk_read(disk, h->entries_lba * ss, v, n) < 0 ||
	    gpart_crc32(v, n) != h->entries_crc) {
		free(v);
		return NULL;
	}
	return v;
}

static int
scan_gpt(const struct gblk *disk, unsigned ss, struct gpart_table *t,
	 char *err, size_t errlen)
{
	uint64_t sectors = disk->size / ss;
	struct gpt_hdr h;
	uint8_t *v = NULL;
	static const uint8_t zero[16];

	/* The primary; if it or its entries are bad, the backup. */
	if (read_gpt_hdr(disk, ss, 1, &h) == 0)
		v = read_gpt_entries(disk, ss, &h);
	if (!v && sectors > 1 &&
	    read_gpt_hdr(disk, ss, sectors - 1, &h) == 0)
		v = read_gpt_entries(disk, ss, &h);
	if (!v) {
		snprintf(err, errlen,
			 "bad GPT: neither the primary nor the backup header "
			 "and partition entries pass their checks");
		return -1;
	}
	t->scheme = "gpt";
	for (uint32_t i = 0; i < h.nentries; i++) {
		const uint8_t *e = v + (size_t)i * h.entry_size;
		uint64_t first = le64_get(e + 32), last = le64_get(e + 40);

		if (!memcmp(e, zero, 16) || first == 0 || first > last ||
		    last >= sectors)
			continue;
		if (add_part(t, "gpt", (int)i + 1, first * ss,
			     (last - first + 1) * ss) < 0) {
			snprintf(err, errlen, "more than %d partitions",
				 GPART_MAX);
			free(v);
			return -1;
		}
	}
	free(v);
	return 0;
}

int
gpart_scan(const struct gblk *disk, struct gpart_table *t, char *err,
	   size_t errlen)
{
	uint8_t sec[SECTOR];

	memset(t, 0, sizeof(*t));
	if (gblk_read(disk, 0, sec, SECTOR) < 0 || !is_mbr(sec))
		return 0;
	for (int i = 0; i < 4; i++) {
		struct mbr_entry e;

		mbr_entry(sec, i, &e);
		if (e.type != MBR_GPT_PROTECTIVE)
			continue;
		/* 512-byte sectors, else 4 KiB ones (native 4Kn disks). */
		if (scan_gpt(disk, 512, t, err, errlen) == 0)
			return 0;
		memset(t, 0, sizeof(*t));
		if (scan_gpt(disk, 4096, t, err, errlen) == 0)
			return 0;
		return -1;
	}
	return scan_mbr(disk, sec, t, err, errlen);
}

const struct gpart *
gpart_find(const struct gpart_table *t, const char *name)
{
	char *end;
	long n;

	if (t->scheme && !strncmp(name, t->scheme, strlen(t->scheme)))
		name += strlen(t->scheme);
	else if (name[0] < '0' || name[0] > '9')
		return NULL;
	n = strtol(name, &end, 10);
	if (*end || end == name)
		return NULL;
	for (int i = 0; i < t->n; i++)
		if (t->p[i].number == n)
			return &t->p[i];
	return NULL;
}
