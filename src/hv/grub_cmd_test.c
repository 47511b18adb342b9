/*
 * GRUB's test command, also spelled [ ... ] (GRUB 2.06's
 * grub-core/commands/test.c semantics, written anew):
 *
 *   A = B, A == B, A != B, A < B, A <= B, A > B, A >= B   strings
 *   A -eq B, -ne, -lt, -le, -gt, -ge                      integers
 *   A -pgt B, A -plt B          integers after a common prefix (vmlinuz-9
 *                               -plt vmlinuz-10)
 *   -d F, -e F, -f F, -s F      a directory, anything, a file, a file
 *                               that is not empty (GRUB file names)
 *   -n S, -z S                  S is not empty, is empty
 *   S                           S is not empty
 *   ! EXPR, EXPR -a EXPR, EXPR -o EXPR, ( EXPR )
 *
 * Like GRUB's, the parser reads left to right: three-word tests first,
 * then two-word ones, then the modifiers, and -a/-o have no precedence
 * (-a drops what follows when the value so far is false, -o when it is
 * true). A trailing "]" is dropped. True is GSH_OK, false GSH_FALSE
 * (no error line, $? 1).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "grub_shell_int.h"

struct test {
	struct gsh *sh;
	char **args;
	int argc, next;
	int depth;
	bool too_deep;
};

/* What the tests ask of a file: does it exist, a directory, its size. */
static void
file_info(struct gsh *sh, const char *name, bool *exists, bool *dir,
	  uint64_t *size)
{
	char err[GDEV_PATH_MAX + 256], dev[GDEV_NAME_MAX + 160];
	struct load_file f;
	const char *path;

	*exists = *dir = false;
	*size = 0;
	gsh_charge(sh, GSH_STEPS_FILE);
	if (gdev_open(sh->cfg.map, gsh_root(sh), name, UINT64_MAX, 0, &f, err,
		      sizeof(err)) == 0) {
		*exists = true;
		*size = f.len;
		load_file_close(&f);
		return;
	}
	/* There but not a file to open: a directory. */
	if (gdev_split(gsh_root(sh), name, dev, sizeof(dev), &path, err,
		       sizeof(err)) == 0 &&
	    gdev_exists(sh->cfg.map, dev, path))
		*exists = *dir = true;
}

static long long
number(const char *s)
{
	return strtoll(s, NULL, 0);
}

/* -pgt/-plt: the numbers after the words' common prefix. */
static int
prefixed_cmp(const char *a, const char *b)
{
	size_t i = 0;
	unsigned long long x, y;

	while (a[i] && a[i] == b[i])
		i++;
	/* Back to the start of the number the prefix may have cut. */
	while (i > 0 && isdigit((unsigned char)a[i - 1]))
		i--;
	x = strtoull(a + i, NULL, 10);
	y = strtoull(b + i, NULL, 10);
	return x < y ? -1 : x > y;
}

/* A three-word test a[0] OP a[2]; false when a[1] is no operator. */
static bool
binary(const char *const *a, bool *val)
{
	const char *op = a[1];
	int c = strcmp(a[0], a[2]);

	if (!strcmp(op, "=") || !strcmp(op, "=="))
		*val = c == 0;
	else if (!strcmp(op, "!="))
		*val = c != 0;
	else if (!strcmp(op, "<"))
		*val = c < 0;
	else if (!strcmp(op, "<="))
		*val = c <= 0;
	else if (!strcmp(op, ">"))
		*val = c > 0;
	else if (!strcmp(op, ">="))
		*val = c >= 0;
	else if (!strcmp(op, "-eq"))
		*val = number(a[0]) == number(a[2]);
	else if (!strcmp(op, "-ne"))
		*val = number(a[0]) != number(a[2]);
	else if (!strcmp(op, "-lt"))
		*val = number(a[0]) < number(a[2]);
	else if (!strcmp(op, "-le"))
		*val = number(a[0]) <= number(a[2]);
	else if (!strcmp(op, "-gt"))
		*val = number(a[0]) > number(a[2]);
	else if (!strcmp(op, "-ge"))
		*val = number(a[0]) >= number(a[2]);
	else if (!strcmp(op, "-pgt"))
		*val = prefixed_cmp(a[0], a[2]) > 0;
	else if (!strcmp(op, "-plt"))
		*val = prefixed_cmp(a[0], a[2]) < 0;
	else if (!strcmp(op, "-nt") || !strcmp(op, "-ot"))
		*val = false; /* no file times here */
	else
		return false;
	return true;
}

/* A two-word test a[0] a[1]; false when a[0] is no operator. */
static bool
unary(struct test *t, const char *const *a, bool *val)
{
	bool exists, dir;
	uint64_t size;

	if (!strcmp(a[0], "-n")) {
		*val = a[1][0] != '\0';
		return true;
	}
	if (!strcmp(a[0], "-z")) {
		*val = a[1][0] == '\0';
		return true;
	}
	if (strcmp(a[0], "-d") && strcmp(a[0], "-e") && strcmp(a[0], "-f") &&
	    strcmp(a[0], "-s"))
		return false;
	file_info(t->sh, a[1], &exists, &dir, &size);
	switch (a[0][1]) {
	case 'd':
		*val = dir;
		break;
	case 'e':
		*val = exists;
		break;
	case 'f':
		*val = exists && !dir;
		break;
	default:
		*val = exists && !dir && size > 0;
	}
	return true;
}

struct value {
	bool ret, discard, invert;
};

static void
update(struct value *v, bool val)
{
	if (!v->discard)
		v->ret = v->invert ? !val : val;
	v->invert = v->discard = false;
}

static bool
parse(struct test *t)
{
	struct value v = {false, false, false};
	bool val;

	while (t->next < t->argc && !t->too_deep) {
		const char *const *a = (const char *const *)t->args + t->next;
		int left = t->argc - t->next;

		if (left >= 3 && binary(a, &val)) {
			update(&v, val);
			t->next += 3;
		} else if (left >= 2 && unary(t, a, &val)) {
			update(&v, val);
			t->next += 2;
		} else if (!strcmp(a[0], ")")) {
			t->next++;
			break;
		} else if (!strcmp(a[0], "(")) {
			t->next++;
			if (++t->depth > GSH_MAX_NEST) {
				t->too_deep = true;
				break;
			}
			update(&v, parse(t));
			t->depth--;
		} else if (!strcmp(a[0], "!")) {
			v.invert = !v.invert;
			t->next++;
		} else if (!strcmp(a[0], "-a")) {
			v.discard = !v.ret;
			t->next++;
		} else if (!strcmp(a[0], "-o")) {
			v.discard = v.ret;
			t->next++;
		} else {
			update(&v, a[0][0] != '\0');
			t->next++;
		}
	}
	return v.ret;
}

int
gsh_cmd_test(struct gsh *sh, int argc, char **argv)
{
	struct test t = {sh, argv + 1, argc - 1, 0, 0, false};
	bool r;

	if (t.argc > 0 && !strcmp(t.args[t.argc - 1], "]"))
		t.argc--;
	r = parse(&t);
	if (t.too_deep)
		return gsh_error(sh, "%s: more than %d nested parentheses",
				 argv[0], GSH_MAX_NEST);
	return r ? GSH_OK : GSH_FALSE;
}
