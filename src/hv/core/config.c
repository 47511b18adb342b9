/*
 * The configuration tree of bhyve_config(5): nodes named by dotted paths,
 * leaves holding strings. A path never goes through a leaf.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define CONFIG_MAX_DEPTH 16
#define CONFIG_MAX_EXPAND 8

struct config {
	char *name;
	char *value; /* non-NULL for a leaf */
	struct config *parent;
	struct config *child, *last, *next;
	/* the expanded value, owned by the leaf, rebuilt on each read */
	char *expanded;
};

static struct config *
node_new(const char *name, size_t len, struct config *parent)
{
	struct config *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->name = strndup(name, len);
	if (!n->name) {
		free(n);
		return NULL;
	}
	n->parent = parent;
	if (parent) {
		if (parent->last)
			parent->last->next = n;
		else
			parent->child = n;
		parent->last = n;
	}
	return n;
}

struct config *
config_create(void)
{
	return node_new("", 0, NULL);
}

static void
node_free(struct config *n)
{
	struct config *c = n->child, *next;

	for (; c; c = next) {
		next = c->next;
		node_free(c);
	}
	free(n->name);
	free(n->value);
	free(n->expanded);
	free(n);
}

void
config_free(struct config *root)
{
	if (root)
		node_free(root);
}

static struct config *
child_find(const struct config *n, const char *name, size_t len)
{
	for (struct config *c = n->child; c; c = c->next)
		if (strlen(c->name) == len && !strncmp(c->name, name, len))
			return c;
	return NULL;
}

static bool
path_valid(const char *path)
{
	size_t n = strlen(path);

	if (n == 0 || path[0] == '.' || path[n - 1] == '.' ||
	    strstr(path, ".."))
		return false;
	for (const char *p = path; *p; p++)
		if (*p == '=' || *p == '\n' || *p == ' ' || *p == '\t')
			return false;
	return true;
}

/* Walk to PATH; with make, create missing nodes. */
static struct config *
walk(struct config *root, const char *path, bool make, char *err,
     size_t errlen)
{
	struct config *n = root;
	const char *p = path;
	int depth = 0;

	while (*p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		struct config *c = child_find(n, p, len);

		if (n->value) {
			if (err)
				snprintf(err, errlen,
					 "%s: '%s' is a value, not a group",
					 path, n->name);
			return NULL;
		}
		if (!c) {
			if (!make)
				return NULL;
			if (++depth > CONFIG_MAX_DEPTH) {
				if (err)
					snprintf(err, errlen,
						 "%s: path too deep", path);
				return NULL;
			}
			c = node_new(p, len, n);
			if (!c)
				return NULL;
		}
		n = c;
		p += len;
		if (*p == '.')
			p++;
	}
	return n;
}

int
config_set(struct config *root, const char *path, const char *value,
	   char *err, size_t errlen)
{
	struct config *n;
	char *v;

	if (!path_valid(path)) {
		snprintf(err, errlen, "bad configuration key '%s'", path);
		return -1;
	}
	n = walk(root, path, true, err, errlen);
	if (!n)
		return -1;
	if (n->child) {
		snprintf(err, errlen, "%s: is a group of settings, not a value",
			 path);
		return -1;
	}
	v = strdup(value);
	if (!v)
		return -1;
	free(n->value);
	n->value = v;
	return 0;
}

int
config_set_kv(struct config *root, const char *kv, char *err, size_t errlen)
{
	const char *eq = strchr(kv, '=');
	char key[256];

	if (!eq || eq == kv) {
		snprintf(err, errlen, "'%s': expected key=value", kv);
		return -1;
	}
	if ((size_t)(eq - kv) >= sizeof(key)) {
		snprintf(err, errlen, "'%.40s...': key too long", kv);
		return -1;
	}
	memcpy(key, kv, eq - kv);
	key[eq - kv] = '\0';
	return config_set(root, key, eq + 1, err, errlen);
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
			 e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int
config_load_file(struct config *root, const char *file, char *err,
		 size_t errlen)
{
	char line[4096], msg[256];
	FILE *f = fopen(file, "r");
	int lineno = 0;

	if (!f) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", file,
				 lineno);
			fclose(f);
			return -1;
		}
		s = trim(line);
		if (*s == '#' || *s == '\0')
			continue;
		if (config_set_kv(root, s, msg, sizeof(msg)) < 0) {
			snprintf(err, errlen, "%s:%d: %s", file, lineno, msg);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

struct config *
config_node(struct config *root, const char *path)
{
	if (!path || !*path)
		return root;
	return walk(root, path, false, NULL, 0);
}

struct config *
config_node_make(struct config *root, const char *path)
{
	return walk(root, path, true, NULL, 0);
}

struct strbuf {
	char *s;
	size_t len, cap;
};

static int
sb_add(struct strbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->s, cap);
		if (!p)
			return -1;
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
	return 0;
}

/* Expand %(path) references, bounded in depth; unknown ones become "". */
static char *
expand(const struct config *root, const char *v, int depth)
{
	struct strbuf b = {0};

	if (sb_add(&b, "", 0) < 0)
		return NULL;
	while (*v) {
		const char *ref = strstr(v, "%(");
		const char *end = ref ? strchr(ref, ')') : NULL;
		char key[256];

		if (!ref || !end || depth >= CONFIG_MAX_EXPAND ||
		    (size_t)(end - ref - 2) >= sizeof(key)) {
			sb_add(&b, v, strlen(v));
			break;
		}
		sb_add(&b, v, ref - v);
		memcpy(key, ref + 2, end - ref - 2);
		key[end - ref - 2] = '\0';
		struct config *n = walk((struct config *)root, key, false,
					NULL, 0);
		if (n && n->value) {
			char *sub = expand(root, n->value, depth + 1);
			if (sub)
				sb_add(&b, sub, strlen(sub));
			free(sub);
		}
		v = end + 1;
	}
	return b.s;
}

const char *
config_get(const struct config *root, const char *path)
{
	struct config *n = walk((struct config *)root, path, false, NULL, 0);

	if (!n || !n->value)
		return NULL;
	if (!strstr(n->value, "%("))
		return n->value;
	free(n->expanded);
	n->expanded = expand(root, n->value, 0);
	return n->expanded ? n->expanded : n->value;
}

const char *
config_get_default(const struct config *root, const char *path,
		   const char *def)
{
	const char *v = config_get(root, path);

	return v ? v : def;
}

int
config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

bool
config_get_bool(const struct config *root, const char *path, bool def)
{
	const char *v = config_get(root, path);
	bool b;

	if (!v || config_parse_bool(v, &b) < 0)
		return def;
	return b;
}

void
config_unset(struct config *root, const char *path)
{
	struct config *n = walk(root, path, false, NULL, 0);
	struct config **pp;

	if (!n || !n->parent)
		return;
	for (pp = &n->parent->child; *pp; pp = &(*pp)->next) {
		if (*pp != n)
			continue;
		*pp = n->next;
		break;
	}
	n->parent->last = NULL;
	for (struct config *c = n->parent->child; c; c = c->next)
		n->parent->last = c;
	node_free(n);
}

const char *
config_node_name(const struct config *node)
{
	return node->name;
}

int
config_foreach(const struct config *node,
	       int (*fn)(const struct config *child, void *arg), void *arg)
{
	for (struct config *c = node->child; c; c = c->next) {
		int r = fn(c, arg);
		if (r)
			return r;
	}
	return 0;
}

bool
config_is_leaf(const struct config *node)
{
	return node->value != NULL;
}

const char *
config_leaf_value(const struct config *node)
{
	return node->value;
}

static void
dump_node(const struct config *n, char *prefix, size_t plen, size_t cap,
	  FILE *f)
{
	for (struct config *c = n->child; c; c = c->next) {
		size_t nl = strlen(c->name);
		size_t need = plen + (plen ? 1 : 0) + nl;

		if (need + 1 > cap)
			continue;
		if (plen)
			prefix[plen] = '.';
		memcpy(prefix + plen + (plen ? 1 : 0), c->name, nl + 1);
		if (c->value)
			fprintf(f, "%s=%s\n", prefix, c->value);
		else
			dump_node(c, prefix, need, cap, f);
		prefix[plen] = '\0';
	}
}

void
config_dump(const struct config *root, FILE *f)
{
	char prefix[1024] = "";

	dump_node(root, prefix, 0, sizeof(prefix), f);
}
