/*
 * LVM2 physical volumes, metadata and linear logical volumes
 * (grub_lvm.h). Layout (lvm2's lib/format_text/layout.h and
 * lib/label/label.h): a 512-byte label sector within the first four,
 * {"LABELONE", sector, crc over bytes 20..511, offset of the PV header,
 * "LVM2 001"}; the PV header {uuid[32], size, data areas, 0, metadata
 * areas, 0}; each metadata area starts with a header {crc over bytes
 * 4..511, magic, version 1, start, size, raw locations {offset, size,
 * crc of the text, flags}} and holds the text in a ring after it.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "grub_lvm.h"

#define SECTOR 512
#define MDA_HEADER 512
#define MDA_MAGIC " LVM2 x[5A%r0N*>"
#define AREAS_MAX 8	     /* data/metadata areas looked at per PV */
#define PV_MAX 64	     /* PVs per scan */
#define CFG_DEPTH_MAX 16     /* nested sections */
#define CFG_NODES_MAX 100000 /* values in one metadata text */

uint32_t
glvm_crc(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t c = 0xf597a6cf;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320 & -(c & 1));
	}
	return c;
}

/* ---- the label and PV header ---- */

struct pv {
	char uuid[33];
	const struct gblk *b;
	uint64_t mda_off[AREAS_MAX], mda_size[AREAS_MAX];
	int nmda;
};

static int
read_label(const struct gblk *b, struct pv *pv)
{
	uint8_t sec[SECTOR];

	for (uint64_t s = 0; s < 4; s++) {
		uint32_t off;
		const uint8_t *h, *end;
		int areas = 0;

		if (gblk_read(b, s * SECTOR, sec, SECTOR) < 0)
			return 0;
		if (memcmp(sec, "LABELONE", 8) || le64_get(sec + 8) != s ||
		    memcmp(sec + 24, "LVM2 001", 8) ||
		    glvm_crc(sec + 20, SECTOR - 20) != le32_get(sec + 16))
			continue;
		off = le32_get(sec + 20);
		if (off < 32 || off > SECTOR - 32 - 8)
			return 0;
		h = sec + off;
		end = sec + SECTOR;
		memcpy(pv->uuid, h, 32);
		pv->uuid[32] = '\0';
		pv->b = b;
		pv->nmda = 0;
		/* Data areas, a zero entry, metadata areas, a zero entry. */
		for (h += 40; h + 16 <= end; h += 16) {
			uint64_t o = le64_get(h), sz = le64_get(h + 8);

			if (o == 0 && sz == 0) {
				if (++areas == 2)
					break;
				continue;
			}
			if (areas == 1 && pv->nmda < AREAS_MAX) {
				pv->mda_off[pv->nmda] = o;
				pv->mda_size[pv->nmda++] = sz;
			}
		}
		return 1;
	}
	return 0;
}

int
glvm_is_pv(const struct gblk *b, char uuid[33])
{
	struct pv pv;

	if (!read_label(b, &pv))
		return 0;
	memcpy(uuid, pv.uuid, 33);
	return 1;
}

/* The current metadata text of a PV's first good metadata area. */
static char *
read_text(const struct pv *pv, char *err, size_t errlen)
{
	uint8_t h[MDA_HEADER];

	for (int i = 0; i < pv->nmda; i++) {
		uint64_t start = pv->mda_off[i], size = pv->mda_size[i];
		uint64_t off, len;
		char *text;

		if (size <= MDA_HEADER || start > pv->b->size ||
		    size > pv->b->size - start ||
		    gblk_read(pv->b, start, h, MDA_HEADER) < 0 ||
		    memcmp(h + 4, MDA_MAGIC, 16) || le32_get(h + 20) != 1 ||
		    le64_get(h + 24) != start ||
		    glvm_crc(h + 4, MDA_HEADER - 4) != le32_get(h)) {
			snprintf(err, errlen, "lvm: PV %s: bad metadata area "
				 "header", pv->uuid);
			continue;
		}
		off = le64_get(h + 40);
		len = le64_get(h + 48);
		if (off < MDA_HEADER || off >= size || len == 0 ||
		    len > size - MDA_HEADER || len > GLVM_TEXT_MAX) {
			snprintf(err, errlen, "lvm: PV %s: bad metadata "
				 "location", pv->uuid);
			continue;
		}
		text = malloc(len + 1);
		if (!text)
			return NULL;
		/* The text may wrap around the end of the ring. */
		{
			uint64_t first = size - off < len ? size - off : len;

			if (gblk_read(pv->b, start + off, text, first) < 0 ||
			    gblk_read(pv->b, start + MDA_HEADER, text + first,
				      len - first) < 0 ||
			    glvm_crc(text, len) != le32_get(h + 56)) {
				snprintf(err, errlen, "lvm: PV %s: bad "
					 "metadata text", pv->uuid);
				free(text);
				continue;
			}
		}
		text[len] = '\0';
		/* lvm2 counts the text's final NUL in its size. */
		while (len > 0 && text[len - 1] == '\0')
			len--;
		if (strlen(text) != len) {
			snprintf(err, errlen, "lvm: PV %s: NUL in the "
				 "metadata text", pv->uuid);
			free(text);
			continue;
		}
		return text;
	}
	return NULL;
}

/* ---- the metadata text: sections, NAME = VALUE, [lists] ---- */

enum cfg_type { CFG_SECTION, CFG_STR, CFG_NUM, CFG_LIST };

struct cfg {
	enum cfg_type type;
	char *key;   /* into the text (NUL-terminated in place) */
	char *str;   /* CFG_STR */
	int64_t num; /* CFG_NUM */
	struct cfg *child, *next;
};

struct parser {
	char *p;
	int nodes;
	bool bad;
};

static void
skip_ws(struct parser *ps)
{
	for (;;) {
		while (isspace((unsigned char)*ps->p))
			ps->p++;
		if (*ps->p != '#')
			return;
		while (*ps->p && *ps->p != '\n')
			ps->p++;
	}
}

static struct cfg *
new_node(struct parser *ps, enum cfg_type t)
{
	struct cfg *c;

	if (++ps->nodes > CFG_NODES_MAX) {
		ps->bad = true;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		ps->bad = true;
	else
		c->type = t;
	return c;
}

static void
cfg_free(struct cfg *c)
{
	while (c) {
		struct cfg *n = c->next;

		cfg_free(c->child);
		free(c);
		c = n;
	}
}

static bool
is_name_char(char c)
{
	return isalnum((unsigned char)c) || strchr("._+-", c);
}

/* A name, NUL-terminated in place once the caller has looked past it. */
static char *
parse_name(struct parser *ps)
{
	char *s = ps->p;

	while (is_name_char(*ps->p))
		ps->p++;
	if (ps->p == s) {
		ps->bad = true;
		return NULL;
	}
	return s;
}

/* A "string" (backslash escapes), unescaped in place. */
static char *
parse_string(struct parser *ps)
{
	char *s = ++ps->p, *o = s;

	while (*ps->p && *ps->p != '"') {
		if (*ps->p == '\\' && ps->p[1])
			ps->p++;
		*o++ = *ps->p++;
	}
	if (*ps->p != '"') {
		ps->bad = true;
		return NULL;
	}
	ps->p++;
	*o = '\0';
	return s;
}

static struct cfg *
parse_value(struct parser *ps)
{
	struct cfg *c;

	skip_ws(ps);
	if (*ps->p == '"') {
		char *s = parse_string(ps);

		c = s ? new_node(ps, CFG_STR) : NULL;
		if (c)
			c->str = s;
		return c;
	}
	if (*ps->p == '-' || isdigit((unsigned char)*ps->p)) {
		char *end;
		long long v = strtoll(ps->p, &end, 10);

		if (end == ps->p) {
			ps->bad = true;
			return NULL;
		}
		/* a float such as 1.5: the integer part is enough here */
		while (isdigit((unsigned char)*end) || *end == '.')
			end++;
		ps->p = end;
		c = new_node(ps, CFG_NUM);
		if (c)
			c->num = v;
		return c;
	}
	ps->bad = true;
	return NULL;
}

static struct cfg *parse_block(struct parser *ps, int depth, bool top);

static struct cfg *
parse_list(struct parser *ps)
{
	struct cfg *l = new_node(ps, CFG_LIST), **tail;

	if (!l)
		return NULL;
	tail = &l->child;
	ps->p++;
	for (;;) {
		skip_ws(ps);
		if (*ps->p == ']') {
			ps->p++;
			return l;
		}
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		*tail = parse_value(ps);
		if (!*tail) {
			cfg_free(l);
			return NULL;
		}
		tail = &(*tail)->next;
	}
}

/* NAME = VALUE and NAME { ... } until '}' (or the end at the top). */
static struct cfg *
parse_block(struct parser *ps, int depth, bool top)
{
	struct cfg *head = NULL, **tail = &head;

	if (depth > CFG_DEPTH_MAX) {
		ps->bad = true;
		return NULL;
	}
	for (;;) {
		char *name, *name_end;
		struct cfg *c;

		skip_ws(ps);
		if (!*ps->p || *ps->p == '}') {
			if ((*ps->p == '}') == top)
				ps->bad = true;
			else if (*ps->p)
				ps->p++;
			return head;
		}
		name = parse_name(ps);
		if (!name)
			return head;
		name_end = ps->p;
		skip_ws(ps);
		if (*ps->p == '{') {
			ps->p++;
			*name_end = '\0';
			c = new_node(ps, CFG_SECTION);
			if (!c)
				return head;
			c->key = name;
			*tail = c;
			tail = &c->next;
			c->child = parse_block(ps, depth + 1, false);
		} else if (*ps->p == '=') {
			ps->p++;
			*name_end = '\0';
			skip_ws(ps);
			c = *ps->p == '[' ? parse_list(ps) : parse_value(ps);
			if (!c)
				return head;
			c->key = name;
			*tail = c;
			tail = &c->next;
		} else {
			ps->bad = true;
			return head;
		}
		if (ps->bad)
			return head;
	}
}

static const struct cfg *
cfg_get(const struct cfg *c, const char *key, enum cfg_type t)
{
	for (; c; c = c->next)
		if (c->key && !strcmp(c->key, key) && c->type == t)
			return c;
	return NULL;
}

static bool
cfg_num(const struct cfg *c, const char *key, int64_t *v)
{
	const struct cfg *n = cfg_get(c, key, CFG_NUM);

	if (!n || n->num < 0)
		return false;
	*v = n->num;
	return true;
}

static bool
cfg_has_flag(const struct cfg *c, const char *key, const char *flag)
{
	const struct cfg *l = cfg_get(c, key, CFG_LIST);

	for (l = l ? l->child : NULL; l; l = l->next)
		if (l->type == CFG_STR && !strcmp(l->str, flag))
			return true;
	return false;
}

/* ---- volume groups to logical volumes ---- */

/* "a-b" -> "a--b" (GRUB's and device-mapper's names). */
static void
put_escaped(char *out, size_t *o, size_t cap, const char *s)
{
	for (; *s && *o + 2 < cap; s++) {
		out[(*o)++] = *s;
		if (*s == '-')
			out[(*o)++] = '-';
	}
	out[*o] = '\0';
}

static void
lv_name(char *out, size_t cap, const char *vg, const char *lv)
{
	size_t o = 0;

	snprintf(out, cap, "lvm/");
	o = strlen(out);
	put_escaped(out, &o, cap, vg);
	if (o + 1 < cap) {
		out[o++] = '-';
		out[o] = '\0';
	}
	put_escaped(out, &o, cap, lv);
}

/* UUIDs in the text carry dashes; labels do not. */
static bool
same_uuid(const char *text_id, const char *label_id)
{
	size_t k = 0;

	for (; *text_id; text_id++) {
		if (*text_id == '-')
			continue;
		if (k >= 32 || *text_id != label_id[k++])
			return false;
	}
	return k == 32;
}

static const struct pv *
find_pv(const struct cfg *pvs, const char *pvname, const struct pv *v, int n,
	uint64_t *pe_start)
{
	const struct cfg *sec = cfg_get(pvs, pvname, CFG_SECTION);
	const struct cfg *id;
	int64_t pe;

	if (!sec || !(id = cfg_get(sec->child, "id", CFG_STR)) ||
	    !cfg_num(sec->child, "pe_start", &pe))
		return NULL;
	for (int i = 0; i < n; i++) {
		if (same_uuid(id->str, v[i].uuid)) {
			*pe_start = (uint64_t)pe;
			return &v[i];
		}
	}
	return NULL;
}

/* One LV's segments, in order, as a byte range over its PVs. */
static void
build_lv(const struct cfg *lv, const struct cfg *pvs, int64_t extent,
	 const struct pv *v, int n, struct glvm_lv *out)
{
	int64_t count, next = 0;

	memset(&out->blk, 0, sizeof(out->blk));
	if (!cfg_num(lv->child, "segment_count", &count) || count < 1 ||
	    count > GBLK_MAX_SEGS) {
		snprintf(out->why, sizeof(out->why), "bad segment count");
		return;
	}
	for (int64_t i = 1; i <= count; i++) {
		char key[32];
		const struct cfg *seg, *type, *stripes, *pvname, *pe;
		int64_t start, ext, nstripes;
		uint64_t pe_start, off, len;
		const struct pv *pv;

		snprintf(key, sizeof(key), "segment%lld", (long long)i);
		seg = cfg_get(lv->child, key, CFG_SECTION);
		if (!seg || !cfg_num(seg->child, "start_extent", &start) ||
		    !cfg_num(seg->child, "extent_count", &ext) ||
		    start != next || ext < 1) {
			snprintf(out->why, sizeof(out->why),
				 "segment %lld is missing or out of order",
				 (long long)i);
			return;
		}
		type = cfg_get(seg->child, "type", CFG_STR);
		if (!type || strcmp(type->str, "striped") ||
		    !cfg_num(seg->child, "stripe_count", &nstripes) ||
		    nstripes != 1) {
			snprintf(out->why, sizeof(out->why),
				 "segment type '%s' is not supported (linear "
				 "volumes only)",
				 type ? type->str : "?");
			return;
		}
		stripes = cfg_get(seg->child, "stripes", CFG_LIST);
		pvname = stripes ? stripes->child : NULL;
		pe = pvname ? pvname->next : NULL;
		if (!pvname || pvname->type != CFG_STR || !pe ||
		    pe->type != CFG_NUM || pe->num < 0) {
			snprintf(out->why, sizeof(out->why),
				 "segment %lld: bad stripes", (long long)i);
			return;
		}
		pv = find_pv(pvs, pvname->str, v, n, &pe_start);
		if (!pv) {
			snprintf(out->why, sizeof(out->why),
				 "physical volume %s is missing", pvname->str);
			return;
		}
		/* Sectors; each product checked against the PV's size. */
		if ((uint64_t)pe->num > UINT64_MAX / 512 / (uint64_t)extent ||
		    (uint64_t)ext > UINT64_MAX / 512 / (uint64_t)extent ||
		    pe_start > UINT64_MAX / 512) {
			snprintf(out->why, sizeof(out->why), "segment %lld is "
				 "out of range", (long long)i);
			return;
		}
		off = pe_start * 512;
		len = (uint64_t)ext * (uint64_t)extent * 512;
		if (off > pv->b->size ||
		    (uint64_t)pe->num * (uint64_t)extent * 512 >
			pv->b->size - off ||
		    gblk_append(&out->blk, pv->b,
				off + (uint64_t)pe->num * (uint64_t)extent * 512,
				len) < 0) {
			snprintf(out->why, sizeof(out->why),
				 "segment %lld lies past the end of physical "
				 "volume %s",
				 (long long)i, pvname->str);
			memset(&out->blk, 0, sizeof(out->blk));
			return;
		}
		next += ext;
	}
}

static int
add_vg(const struct cfg *vg, const struct pv *v, int n, struct glvm_lv **lvs,
       int *nlv, char *err, size_t errlen)
{
	const struct cfg *pvs = cfg_get(vg->child, "physical_volumes",
					CFG_SECTION);
	const struct cfg *lvsec = cfg_get(vg->child, "logical_volumes",
					  CFG_SECTION);
	int64_t extent;

	if (!pvs || !cfg_num(vg->child, "extent_size", &extent) ||
	    extent < 1) {
		snprintf(err, errlen, "lvm: volume group %s: bad metadata",
			 vg->key);
		return 0;
	}
	for (const struct cfg *lv = lvsec ? lvsec->child : NULL; lv;
	     lv = lv->next) {
		struct glvm_lv *l;

		if (lv->type != CFG_SECTION ||
		    !cfg_has_flag(lv->child, "status", "VISIBLE"))
			continue;
		if (*nlv == GLVM_MAX_LV) {
			snprintf(err, errlen, "lvm: more than %d logical "
				 "volumes", GLVM_MAX_LV);
			return 0;
		}
		l = &(*lvs)[(*nlv)++];
		memset(l, 0, sizeof(*l));
		lv_name(l->name, sizeof(l->name), vg->key, lv->key);
		build_lv(lv, pvs->child, extent, v, n, l);
	}
	return 0;
}

static bool
vg_seen(char (*seen)[GLVM_NAME_MAX], int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(seen[i], name))
			return true;
	return false;
}

int
glvm_scan(const struct gblk *const *devs, int n, struct glvm_lv **lvs,
	  int *nlv, char *err, size_t errlen)
{
	struct pv *v = calloc(PV_MAX, sizeof(*v));
	char(*seen)[GLVM_NAME_MAX] = calloc(PV_MAX, GLVM_NAME_MAX);
	int npv = 0, nseen = 0;

	*nlv = 0;
	*lvs = calloc(GLVM_MAX_LV, sizeof(**lvs));
	if (!v || !seen || !*lvs) {
		free(v);
		free(seen);
		free(*lvs);
		*lvs = NULL;
		return -1;
	}
	for (int i = 0; i < n && npv < PV_MAX; i++)
		if (read_label(devs[i], &v[npv]))
			npv++;
	for (int i = 0; i < npv; i++) {
		char *text = read_text(&v[i], err, errlen);
		struct parser ps;
		struct cfg *top;

		if (!text)
			continue;
		ps = (struct parser){.p = text};
		top = parse_block(&ps, 0, true);
		if (ps.bad) {
			snprintf(err, errlen, "lvm: PV %s: cannot parse the "
				 "metadata text", v[i].uuid);
		} else {
			for (const struct cfg *vg = top; vg; vg = vg->next) {
				if (vg->type != CFG_SECTION ||
				    vg_seen(seen, nseen, vg->key) ||
				    nseen == PV_MAX)
					continue;
				snprintf(seen[nseen++], GLVM_NAME_MAX, "%s",
					 vg->key);
				add_vg(vg, v, npv, lvs, nlv, err, errlen);
			}
		}
		cfg_free(top);
		free(text);
	}
	free(v);
	free(seen);
	return 0;
}
