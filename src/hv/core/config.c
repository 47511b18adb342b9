/*
 * The configuration tree of bhyve_config(5): nodes named by dotted paths,
 * leaves holding strings. A path never goes through a leaf.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define CONFIG_MAX_DEPTH 16
/*
 * %(ref) expansion is bounded three ways, since -k files may come from
 * anywhere: references nest at most CONFIG_MAX_EXPAND deep, one expansion
 * follows at most CONFIG_MAX_REFS references, and its result is at most
 * CONFIG_MAX_VALUE bytes. A chain of values that each name the previous one
 * twice doubles per link; unbounded, 719 bytes of -k file took 15 s and
 * 1.2 GB. With these caps one expansion copies at most
 * CONFIG_MAX_EXPAND * CONFIG_MAX_VALUE bytes.
 */
#define CONFIG_MAX_EXPAND 16
#define CONFIG_MAX_REFS 4096
#define CONFIG_MAX_VALUE (64 * 1024)

/* A string a reader may still hold: kept until the tree is freed. */
struct retired {
	struct retired *next;
	char *s;
};

struct config {
	char *name;
	char *value; /* non-NULL for a leaf */
	struct config *parent;
	struct config *child, *last, *next;
	/*
	 * The expanded value, owned by the leaf. config_get hands out
	 * pointers that callers keep (the VM name, device paths), so a value
	 * that a later read or set replaces moves to old instead of being
	 * freed: every pointer config_get returned lives as long as the tree.
	 */
	char *expanded;
	struct retired *old;
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
	while (n->old) {
		struct retired *r = n->old;

		n->old = r->next;
		free(r->s);
		free(r);
	}
	free(n->name);
	free(n->value);
	free(n->expanded);
	free(n);
}

/* Keep s until the tree goes; free it at once if that fails. */
static void
retire(struct config *n, char *s)
{
	struct retired *r;

	if (!s)
		return;
	r = malloc(sizeof(*r));
	if (!r) {
		free(s);
		return;
	}
	r->s = s;
	r->next = n->old;
	n->old = r;
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
walk(struct config *root, const char *path, bool make, char *err, size_t errlen)
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
config_set(struct config *root, const char *path, const char *value, char *err,
	   size_t errlen)
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
	retire(n, n->value);
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

struct expander {
	const struct config *root;
	struct strbuf b;
	int refs;
	char *err;
	size_t errlen;
};

static int
expand_fail(struct expander *x, const char *fmt, const char *what)
{
	if (x->err)
		snprintf(x->err, x->errlen, fmt, what);
	return -1;
}

/* Append v with its %(path) references expanded, within the bounds above. */
static int
expand_into(struct expander *x, const char *v, int depth)
{
	while (*v) {
		const char *ref = strstr(v, "%(");
		const char *end = ref ? strchr(ref, ')') : NULL;
		size_t lit = ref && end ? (size_t)(ref - v) : strlen(v);
		struct config *n;
		char key[256];

		if (x->b.len + lit > CONFIG_MAX_VALUE)
			return expand_fail(x, "expands to more than 64 KiB%s",
					   "");
		if (sb_add(&x->b, v, lit) < 0)
			return expand_fail(x, "out of memory%s", "");
		if (!ref || !end)
			return 0;
		if ((size_t)(end - ref - 2) >= sizeof(key))
			return expand_fail(x, "a reference is too long%s", "");
		memcpy(key, ref + 2, end - ref - 2);
		key[end - ref - 2] = '\0';
		if (depth >= CONFIG_MAX_EXPAND)
			return expand_fail(
			    x, "%%(%s): references nest too deep (a loop?)",
			    key);
		if (++x->refs > CONFIG_MAX_REFS)
			return expand_fail(x, "%%(%s): too many references",
					   key);
		n = walk((struct config *)x->root, key, false, NULL, 0);
		if (!n || !n->value)
			return expand_fail(x, "%%(%s): no such value", key);
		if (expand_into(x, n->value, depth + 1) < 0)
			return -1;
		v = end + 1;
	}
	return 0;
}

/* The expansion of n's value, or NULL with err set. */
static char *
expand(const struct config *root, const struct config *n, char *err,
       size_t errlen)
{
	struct expander x = {.root = root, .err = err, .errlen = errlen};

	if (sb_add(&x.b, "", 0) < 0 || expand_into(&x, n->value, 0) < 0) {
		free(x.b.s);
		return NULL;
	}
	return x.b.s;
}

/* n's value expanded, cached in n; NULL with err set when it cannot be. */
static const char *
leaf_expanded(const struct config *root, struct config *n, char *err,
	      size_t errlen)
{
	char *e;

	if (!strstr(n->value, "%("))
		return n->value;
	e = expand(root, n, err, errlen);
	if (!e)
		return NULL;
	if (n->expanded && !strcmp(n->expanded, e)) {
		free(e);
		return n->expanded;
	}
	retire(n, n->expanded);
	n->expanded = e;
	return e;
}

const char *
config_get(const struct config *root, const char *path)
{
	struct config *n = walk((struct config *)root, path, false, NULL, 0);
	const char *v;

	if (!n || !n->value)
		return NULL;
	/* A value that cannot expand reads raw; config_check reports it. */
	v = leaf_expanded(root, n, NULL, 0);
	return v ? v : n->value;
}

static int
check_node(const struct config *root, struct config *n, char *prefix,
	   size_t plen, size_t cap, char *err, size_t errlen)
{
	for (struct config *c = n->child; c; c = c->next) {
		size_t nl = strlen(c->name);
		size_t need = plen + (plen ? 1 : 0) + nl;
		char why[200];
		int rc = 0;

		if (need + 1 > cap)
			continue;
		if (plen)
			prefix[plen] = '.';
		memcpy(prefix + plen + (plen ? 1 : 0), c->name, nl + 1);
		if (c->value) {
			if (!leaf_expanded(root, c, why, sizeof(why))) {
				snprintf(err, errlen, "%s=%.60s: %s", prefix,
					 c->value, why);
				rc = -1;
			}
		} else {
			rc =
			    check_node(root, c, prefix, need, cap, err, errlen);
		}
		prefix[plen] = '\0';
		if (rc)
			return rc;
	}
	return 0;
}

int
config_check(const struct config *root, char *err, size_t errlen)
{
	char prefix[1024] = "";

	return check_node(root, (struct config *)root, prefix, 0,
			  sizeof(prefix), err, errlen);
}

const char *
config_get_default(const struct config *root, const char *path, const char *def)
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

int
config_check_bool(const struct config *root, const char *path, char *err,
		  size_t errlen)
{
	const char *v = config_get(root, path);
	bool b;

	if (v && config_parse_bool(v, &b) < 0) {
		snprintf(err, errlen,
			 "invalid value '%s' for boolean %s (true/false, "
			 "yes/no, on/off, 1/0)",
			 v, path);
		return -1;
	}
	return 0;
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
