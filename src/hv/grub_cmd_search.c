/*
 * GRUB's search command (grub-core/commands/search.c and its
 * search.file / search.fs_uuid / search.fs_label forms):
 *
 *   search [--file|-f|--fs-uuid|-u|--label|-l] [--set[=VAR]|-s]
 *          [--no-floppy|-n] [--hint=DEV|--hint-bios=DEV]... NAME
 *   search.fs_uuid UUID [VAR] [HINT...]   (also search.file, search.fs_label)
 *
 * finds the devices whose file system has that UUID (any case) or label,
 * or that hold that file, trying the hints first, then every device
 * grub-bhyve can read in ls order (gdev_list). With --set it sets VAR
 * (root by default) to the first; without, it prints them all. Hints for
 * other platforms (--hint-efi, --hint-baremetal, ...) are passed over, as
 * GRUB on a PC does. Nothing found: "error: no such device: NAME.", and
 * VAR keeps its value (grub-mkconfig sets root before its search for this).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grub_shell_int.h"

#define MAX_HINTS 16

enum search_by { BY_NONE, BY_FILE, BY_UUID, BY_LABEL };

struct search {
	enum search_by by;
	const char *name, *var;
	const char *hints[MAX_HINTS];
	int nhints;
};

static void
add_hint(struct search *s, const char *dev)
{
	if (dev[0] == '(')
		dev++;
	if (s->nhints < MAX_HINTS && *dev)
		s->hints[s->nhints++] = dev;
}

/* search.fs_uuid NAME [VAR] [HINT...] and friends. */
static int
parse_short(struct gsh *sh, int argc, char **argv, struct search *s)
{
	const char *kind = argv[0] + strlen("search.");

	s->by = !strcmp(kind, "file")	   ? BY_FILE
		: !strcmp(kind, "fs_uuid") ? BY_UUID
					   : BY_LABEL;
	if (argc < 2)
		return gsh_error(sh, "one argument expected");
	s->name = argv[1];
	s->var = argc > 2 ? argv[2] : NULL;
	for (int i = 3; i < argc; i++)
		add_hint(s, argv[i]);
	return GSH_OK;
}

static int
parse_long(struct gsh *sh, int argc, char **argv, struct search *s)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-f") || !strcmp(a, "--file"))
			s->by = BY_FILE;
		else if (!strcmp(a, "-l") || !strcmp(a, "--label"))
			s->by = BY_LABEL;
		else if (!strcmp(a, "-u") || !strcmp(a, "--fs-uuid"))
			s->by = BY_UUID;
		else if (!strcmp(a, "-s") || !strcmp(a, "--set"))
			s->var = "root";
		else if (!strncmp(a, "--set=", 6))
			s->var = a + 6;
		else if (!strncmp(a, "--hint=", 7))
			add_hint(s, a + 7);
		else if (!strncmp(a, "--hint-bios=", 12))
			add_hint(s, a + 12);
		else if (!strcmp(a, "-n") || !strcmp(a, "--no-floppy") ||
			 !strncmp(a, "--hint-", 7))
			continue;
		else if (a[0] == '-' && a[1])
			return gsh_error(sh, "unknown argument '%s'", a);
		else
			s->name = a;
	}
	if (!s->name)
		return gsh_error(sh, "one argument expected");
	if (s->by == BY_NONE)
		return gsh_error(sh, "unspecified search type");
	return GSH_OK;
}

/* Hints name devices as GRUB does: "hd0,msdos1)" or "hd0,msdos1". */
static bool
same_dev(const char *hint, const char *dev)
{
	size_t n = strcspn(hint, ")");

	return strlen(dev) == n && !strncmp(hint, dev, n);
}

static bool
matches(struct gsh *sh, const struct search *s, const struct gdev_fsinfo *d)
{
	switch (s->by) {
	case BY_FILE:
		return d->readable && gdev_exists(sh->cfg.map, d->dev, s->name);
	case BY_UUID:
		return d->uuid[0] && !strcasecmp(d->uuid, s->name);
	case BY_LABEL:
		return d->label[0] && !strcmp(d->label, s->name);
	default:
		return false;
	}
}

/* The devices in search order: hinted ones first. */
static int
order(const struct search *s, const struct gdev_fsinfo *v, int n, int *idx)
{
	int k = 0;

	for (int h = 0; h < s->nhints; h++)
		for (int i = 0; i < n; i++)
			if (same_dev(s->hints[h], v[i].dev))
				idx[k++] = i;
	for (int i = 0; i < n; i++) {
		bool hinted = false;

		for (int h = 0; h < s->nhints; h++)
			hinted |= same_dev(s->hints[h], v[i].dev);
		if (!hinted)
			idx[k++] = i;
	}
	return k;
}

int
gsh_cmd_search(struct gsh *sh, int argc, char **argv)
{
	struct search s = {BY_NONE, NULL, NULL, {NULL}, 0};
	struct gdev_fsinfo *v = NULL;
	int r, n, *idx, found = 0;

	r = strncmp(argv[0], "search.", 7) ? parse_long(sh, argc, argv, &s)
					   : parse_short(sh, argc, argv, &s);
	if (r != GSH_OK)
		return r;
	if (s.by == BY_FILE && s.name[0] != '/')
		return gsh_error(sh, "invalid file name '%s'", s.name);
	gsh_charge(sh, GSH_STEPS_PROBE);
	n = gdev_list(sh->cfg.map, &v);
	/* Each hint may name a device once more. */
	idx = calloc((size_t)n * (MAX_HINTS + 1) + 1, sizeof(*idx));
	if (!idx)
		abort();
	n = order(&s, v, n, idx);
	for (int i = 0; i < n && (!found || !s.var); i++) {
		const struct gdev_fsinfo *d = &v[idx[i]];

		if (!matches(sh, &s, d))
			continue;
		found++;
		if (s.var)
			r = gsh_set(sh, s.var, d->dev);
		else
			fprintf(sh->out, " %s", d->dev);
	}
	if (found && !s.var)
		fputc('\n', sh->out);
	free(idx);
	free(v);
	if (!found)
		return gsh_error(sh, "no such device: %s", s.name);
	return r;
}
