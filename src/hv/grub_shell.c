/*
 * grub-bhyve's shell: its life cycle, output, menus, the command line
 * and the root device's grub.cfg (see grub_shell.h). The interpreter is
 * grub_script.c; the commands are grub_cmds.c.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grub_shell_int.h"

#define MENU_CMDLINE (-2)
#define MAX_FALLBACKS 8

/* ---- output ---- */

/* Everything printed goes through here: at most GSH_MAX_OUTPUT a run. */
static ssize_t
out_write(void *cookie, const char *buf, size_t n)
{
	struct gsh *sh = cookie;
	size_t k = n < sh->out_left ? n : sh->out_left;

	fwrite(buf, 1, k, sh->cfg.out);
	sh->out_left -= k;
	if (k < n && !sh->out_cut) {
		sh->out_cut = true;
		fprintf(sh->cfg.out,
			"\nerror: more than %d KiB of output: the rest is "
			"not shown.\n",
			GSH_MAX_OUTPUT / 1024);
	}
	return (ssize_t)n;
}

static void
flush(struct gsh *sh)
{
	fflush(sh->out);
	fflush(sh->cfg.out);
}

int
gsh_error(struct gsh *sh, const char *fmt, ...)
{
	va_list ap;

	fputs("error: ", sh->out);
	va_start(ap, fmt);
	vfprintf(sh->out, fmt, ap);
	va_end(ap);
	fputs(".\n", sh->out);
	flush(sh);
	sh->errors++;
	return GSH_ERROR;
}

/* ---- input ---- */

enum { RD_LINE, RD_EOF, RD_TIMEOUT };

/* One line (without '\n' or '\r') into line; timeout_ms < 0 waits. */
static int
read_line(struct gsh_reader *in, struct sbuf *line, int timeout_ms)
{
	sb_reset(line);
	sb_putn(line, "", 0);
	for (;;) {
		char *nl = memchr(in->buf, '\n', in->len);
		size_t take = nl ? (size_t)(nl - in->buf) + 1 : in->len;
		ssize_t n;

		if (nl || (in->eof && in->len) || in->len == sizeof(in->buf)) {
			sb_putn(line, in->buf, nl ? take - 1 : take);
			memmove(in->buf, in->buf + take, in->len - take);
			in->len -= take;
			if (!nl && !in->eof)
				continue;
			if (line->n && line->s[line->n - 1] == '\r')
				line->s[--line->n] = '\0';
			return RD_LINE;
		}
		if (in->eof)
			return line->n ? RD_LINE : RD_EOF;
		if (timeout_ms >= 0) {
			struct pollfd p = {in->fd, POLLIN, 0};

			if (poll(&p, 1, timeout_ms) == 0)
				return RD_TIMEOUT;
		}
		n = read(in->fd, in->buf + in->len, sizeof(in->buf) - in->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			in->eof = true;
		else
			in->len += n;
	}
}

/* ---- menu entries ---- */

static void
entry_free(struct gsh_entry *e)
{
	free(e->title);
	free(e->id);
	free(e->body);
	for (int i = 0; i < e->nargs; i++)
		free(e->args[i]);
	free(e->args);
	*e = (struct gsh_entry){0};
}

static struct gsh_entry
entry_dup(const struct gsh_entry *e)
{
	struct gsh_entry d = {gsh_strdup(e->title),
			      e->id ? gsh_strdup(e->id) : NULL,
			      gsh_strdup(e->body),
			      calloc(e->nargs + 1, sizeof(char *)),
			      e->nargs,
			      e->submenu};

	if (!d.args)
		abort();
	for (int i = 0; i < e->nargs; i++)
		d.args[i] = gsh_strdup(e->args[i]);
	return d;
}

static void
menu_free(struct gsh_menu *m)
{
	for (int i = 0; i < m->n; i++)
		entry_free(&m->v[i]);
	free(m->v);
	*m = (struct gsh_menu){0};
}

/* menuentry/submenu options that take a value (GRUB's menuentry.c). */
static bool
option_with_value(const char *a)
{
	static const char *const opts[] = {"--class", "--users", "--hotkey",
					   "--id", "--source"};

	for (size_t i = 0; i < sizeof(opts) / sizeof(*opts); i++)
		if (!strcmp(a, opts[i]))
			return true;
	return false;
}

int
gsh_add_entry(struct gsh *sh, bool submenu, int argc, char **argv,
	      const char *body)
{
	struct gsh_entry e = {.submenu = submenu};
	bool options = true;

	e.args = calloc(argc + 1, sizeof(char *));
	if (!e.args)
		abort();
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (options && !strcmp(a, "--")) {
			options = false;
		} else if (options && !strncmp(a, "--id=", 5)) {
			free(e.id);
			e.id = gsh_strdup(a + 5);
		} else if (options && option_with_value(a)) {
			if (!strcmp(a, "--id") && i + 1 < argc) {
				free(e.id);
				e.id = gsh_strdup(argv[i + 1]);
			}
			i++;
		} else if (options && !strncmp(a, "--", 2)) {
			continue; /* --unrestricted, --class=C, ... */
		} else {
			e.args[e.nargs++] = gsh_strdup(a);
		}
	}
	if (e.nargs == 0) {
		entry_free(&e);
		return gsh_error(sh, "%s needs a title", argv[0]);
	}
	if (sh->menu->n >= GSH_MAX_ENTRIES) {
		entry_free(&e);
		return gsh_error(sh, "too many menu entries (at most %d)",
				 GSH_MAX_ENTRIES);
	}
	e.title = gsh_strdup(e.args[0]);
	e.body = gsh_strdup(body);
	sh->menu->v = gsh_grow(sh->menu->v, sh->menu->n, &sh->menu->cap,
			       sizeof(*sh->menu->v));
	sh->menu->v[sh->menu->n++] = e;
	return GSH_OK;
}

/* ---- choosing an entry ---- */

/* The entry one part of $default names: a number, an --id or a title. */
static int
find_entry(const struct gsh_menu *m, const char *d, size_t n)
{
	if (n > 0 && n < 10 && strspn(d, "0123456789") >= n) {
		long v = strtol(d, NULL, 10);

		return v < m->n ? (int)v : -1;
	}
	for (int i = 0; i < m->n; i++)
		if (m->v[i].id && strlen(m->v[i].id) == n &&
		    !strncmp(m->v[i].id, d, n))
			return i;
	for (int i = 0; i < m->n; i++)
		if (strlen(m->v[i].title) == n && !strncmp(m->v[i].title, d, n))
			return i;
	return -1;
}

/*
 * The default entry; *rest (malloc'ed or NULL) is what $default says
 * after its first '>', for the submenu the entry opens.
 */
static int
menu_default(struct gsh *sh, const struct gsh_menu *m, char **rest)
{
	const char *d = gsh_get(sh, "default");
	size_t n;
	int i;

	*rest = NULL;
	/* GRUB_DEFAULT=saved: $saved_entry from load_env, if any. */
	if (d && !strcmp(d, "saved"))
		d = gsh_get(sh, "saved_entry");
	if (!d || !*d)
		return 0;
	n = strcspn(d, ">");
	i = find_entry(m, d, n);
	if (i < 0) {
		fprintf(sh->out, "No menu entry '%.*s': using entry 0.\n",
			(int)(n > 200 ? 200 : n), d);
		return 0;
	}
	if (d[n] == '>')
		*rest = gsh_strdup(d + n + 1);
	return i;
}

/* Seconds to wait; -1 for ever. */
static int
menu_timeout(struct gsh *sh)
{
	const char *t = gsh_get(sh, "timeout");
	char *end;
	long v;

	if (!t || !*t)
		return -1;
	v = strtol(t, &end, 10);
	if (*end || v < 0)
		return -1;
	return v > 86400 ? 86400 : (int)v;
}

/* The user's choice at a terminal; *typed when it was not a timeout. */
static int
menu_choose(struct gsh *sh, const struct gsh_menu *m, int def, int timeout,
	    bool *typed)
{
	struct sbuf line = {0};
	int r, choice = def;
	char *end;
	long v;

	fprintf(sh->out,
		"Enter a number to boot that entry, Enter for entry %d, "
		"'c' for a command line",
		def);
	if (timeout > 0)
		fprintf(sh->out, " (entry %d boots in %d s)", def, timeout);
	fputs(".\n", sh->out);
	for (;;) {
		flush(sh);
		r = read_line(&sh->in, &line,
			      timeout > 0 ? timeout * 1000 : -1);
		if (r != RD_LINE)
			break;
		*typed = true;
		if (!line.n)
			break;
		if (!strcmp(line.s, "c")) {
			choice = MENU_CMDLINE;
			break;
		}
		v = strtol(line.s, &end, 10);
		if (*end == '\0' && v >= 0 && v < m->n) {
			choice = (int)v;
			break;
		}
		fprintf(sh->out, "No entry '%.40s': choose 0 to %d.\n", line.s,
			m->n - 1);
		timeout = -1;
	}
	sb_free(&line);
	return choice;
}

/* timeout_style=hidden or countdown: did a line come before the timeout? */
static bool
menu_wanted(struct gsh *sh, int timeout)
{
	struct sbuf line = {0};
	bool r;

	fprintf(sh->out, "Press Enter within %d s for the menu.\n", timeout);
	flush(sh);
	r = read_line(&sh->in, &line, timeout * 1000) == RD_LINE;
	sb_free(&line);
	return r;
}

static int run_entry(struct gsh *sh, const struct gsh_entry *e,
		     const char *rest, bool auto_boot);

/* Entries $fallback names, after entry failed: the first that boots. */
static int
run_fallbacks(struct gsh *sh, const struct gsh_menu *m, int failed, int r)
{
	const char *fb = gsh_get(sh, "fallback");
	char *list = gsh_strdup(fb ? fb : ""), *save = NULL, *w = list;

	for (int n = 0; n < MAX_FALLBACKS && sh->ctl == CTL_NONE; n++) {
		char *tok = strtok_r(w, " \t", &save);
		struct gsh_entry e;
		int i;

		w = NULL;
		if (!tok)
			break;
		i = find_entry(m, tok, strcspn(tok, ">"));
		if (i < 0 || i == failed)
			continue;
		fprintf(sh->out, "Falling back to '%s'\n\n", m->v[i].title);
		e = entry_dup(&m->v[i]);
		r = run_entry(sh, &e, NULL, true);
		entry_free(&e);
		if (r == GSH_BOOTED || r == GSH_EXIT)
			break;
	}
	free(list);
	return r;
}

static int
run_menu(struct gsh *sh, const struct gsh_menu *m)
{
	char *rest;
	int def = menu_default(sh, m, &rest), timeout = menu_timeout(sh);
	const char *style = gsh_get(sh, "timeout_style");
	bool hidden =
	    sh->quiet_menu || (style && (!strcmp(style, "hidden") ||
					 !strcmp(style, "countdown")));
	bool typed = false;
	int choice = def, r;
	struct gsh_entry e;

	sh->quiet_menu = false;
	if (hidden && sh->cfg.interactive && timeout != 0 &&
	    (timeout < 0 || menu_wanted(sh, timeout))) {
		hidden = false;
		timeout = -1;
	}
	if (!hidden) {
		fputs("\n    grub-bhyve menu\n\n", sh->out);
		for (int i = 0; i < m->n; i++)
			fprintf(sh->out, " %c %d  %s%s\n", i == def ? '*' : ' ',
				i, m->v[i].title, m->v[i].submenu ? " >" : "");
		fputc('\n', sh->out);
		if (sh->cfg.interactive && timeout != 0)
			choice = menu_choose(sh, m, def, timeout, &typed);
	}
	if (choice == MENU_CMDLINE) {
		free(rest);
		return GSH_OK;
	}
	fprintf(sh->out, "Booting '%s'\n\n", m->v[choice].title);
	flush(sh);
	/* The entry may add to the menu while it runs: run a copy. */
	e = entry_dup(&m->v[choice]);
	r = run_entry(sh, &e, typed ? NULL : rest, !typed);
	entry_free(&e);
	free(rest);
	if (!typed && r != GSH_BOOTED && r != GSH_EXIT)
		r = run_fallbacks(sh, m, choice, r);
	return r;
}

/* A submenu: its entries in a new menu and context (GRUB's menu.c). */
static int
run_submenu(struct gsh *sh, const struct gsh_entry *e, const char *rest,
	    bool auto_boot)
{
	struct gsh_menu m = {0}, *saved = sh->menu;
	int r;

	if (sh->depth >= GSH_MAX_DEPTH)
		return gsh_error(sh, "too deeply nested");
	sh->depth++;
	gsh_env_open(sh);
	sh->menu = &m;
	if (rest)
		gsh_set(sh, "default", rest);
	if (auto_boot)
		gsh_set(sh, "timeout", "0");
	r = gsh_exec_scope(sh, e->body, e->nargs, e->args);
	/* Opened by $default, as GRUB: straight to its entry, unlisted. */
	sh->quiet_menu = auto_boot;
	if (sh->ctl == CTL_NONE && m.n > 0)
		r = run_menu(sh, &m);
	sh->quiet_menu = false;
	sh->menu = saved;
	gsh_env_close(sh);
	sh->depth--;
	menu_free(&m);
	return r;
}

/*
 * An entry boots what it loaded, as GRUB does; other errors on the way
 * (a search that found nothing) were printed and passed over, but not a
 * failed initrd or module: that kernel would not come up.
 */
static int
run_entry(struct gsh *sh, const struct gsh_entry *e, const char *rest,
	  bool auto_boot)
{
	int errors = sh->errors, r;

	gsh_set(sh, "chosen", e->title);
	if (e->submenu)
		return run_submenu(sh, e, rest, auto_boot);
	gsh_unload(sh);
	r = gsh_exec_scope(sh, e->body, e->nargs, e->args);
	if (sh->ctl == CTL_STOP)
		return r;
	if (sh->loaded.kind != GSH_NONE && !sh->loaded.broken)
		return gsh_boot(sh);
	if (sh->loaded.broken)
		return gsh_error(sh,
				 "not booting '%s': its initrd or module "
				 "did not load",
				 e->title);
	if (sh->errors == errors)
		return gsh_error(sh, "you need to load the kernel first");
	return GSH_ERROR;
}

int
gsh_config_menu(struct gsh *sh, const char *text, bool new_env)
{
	struct gsh_menu m = {0}, *saved = sh->menu;
	int r;

	if (sh->depth >= GSH_MAX_DEPTH)
		return gsh_error(sh, "too deeply nested");
	sh->depth++;
	if (new_env)
		gsh_env_open(sh);
	sh->menu = &m;
	r = gsh_exec_text(sh, text);
	/* A return at a config's top level ends the file, not the run. */
	if (sh->ctl != CTL_STOP)
		sh->ctl = CTL_NONE;
	if (sh->ctl == CTL_NONE && m.n > 0)
		r = run_menu(sh, &m);
	sh->menu = saved;
	if (new_env)
		gsh_env_close(sh);
	sh->depth--;
	menu_free(&m);
	return r;
}

int
gsh_run_config(struct gsh *sh, const char *script)
{
	gsh_budget_reset(sh);
	return gsh_config_menu(sh, script, false);
}

int
gsh_exec(struct gsh *sh, const char *script)
{
	gsh_budget_reset(sh);
	return gsh_exec_text(sh, script);
}

int
gsh_menu_size(struct gsh *sh)
{
	return sh->menu->n;
}

const char *
gsh_menu_title(struct gsh *sh, int i)
{
	return i >= 0 && i < sh->menu->n ? sh->menu->v[i].title : NULL;
}

const char *
gsh_menu_id(struct gsh *sh, int i)
{
	return i >= 0 && i < sh->menu->n ? sh->menu->v[i].id : NULL;
}

bool
gsh_menu_is_submenu(struct gsh *sh, int i)
{
	return i >= 0 && i < sh->menu->n && sh->menu->v[i].submenu;
}

/* ---- the command line ---- */

int
gsh_repl(struct gsh *sh)
{
	struct sbuf text = {0}, line = {0};
	int r = GSH_EOF;

	for (;;) {
		if (sh->cfg.interactive) {
			fputs(text.n ? "> " : "grub> ", sh->out);
			flush(sh);
		}
		gsh_budget_reset(sh);
		if (read_line(&sh->in, &line, -1) != RD_LINE) {
			/* A block left open at the end: say so. */
			if (text.n &&
			    gsh_exec_text(sh, sb_str(&text)) == GSH_BOOTED)
				r = GSH_BOOTED;
			break;
		}
		sb_puts(&text, sb_str(&line));
		sb_putc(&text, '\n');
		if (text.n > GSH_MAX_TYPED) {
			gsh_error(sh,
				  "more than %d KiB typed without the end "
				  "of a command: dropped",
				  GSH_MAX_TYPED / 1024);
			sb_reset(&text);
			continue;
		}
		if (gsh_incomplete(text.s))
			continue;
		r = gsh_exec_text(sh, text.s);
		flush(sh);
		sb_reset(&text);
		if (r == GSH_BOOTED || r == GSH_EXIT)
			break;
		r = GSH_EOF;
	}
	sb_free(&text);
	sb_free(&line);
	return r;
}

const char *
gsh_root(struct gsh *sh)
{
	const char *r = gsh_get(sh, "root");

	return r && *r ? r : "host";
}

/* "(DEV)DIR" without a trailing '/'. */
static void
dev_dir(const char *dev, const char *dir, struct sbuf *b)
{
	sb_reset(b);
	sb_puts(b, "(");
	sb_puts(b, dev);
	sb_puts(b, ")");
	if (dir[0] != '/')
		sb_putc(b, '/');
	sb_puts(b, dir);
	while (b->n > 1 && b->s[b->n - 1] == '/' && b->s[b->n - 2] != ')')
		b->s[--b->n] = '\0';
}

static bool
is_missing(const char *err)
{
	return !strncmp(err, "file '", 6) && strstr(err, "' not found");
}

/*
 * dev's grub.cfg: in -d's directory, else the first of the places
 * distributions put it (a separate /boot partition has it in /grub). 1
 * with its text and directory, 0 when there is none, -1 with why the
 * device cannot be read in err.
 */
static int
find_config(struct gsh *sh, const char *dev, char **text, struct sbuf *dir,
	    char *err, size_t errlen)
{
	static const char *const dirs[] = {"/boot/grub", "/grub",
					   "/boot/grub2"};
	const char *name = sh->cfg.cfg_name ? sh->cfg.cfg_name : "grub.cfg";
	int ndirs = sh->cfg.cfg_dir ? 1 : 3, r = 0;
	struct sbuf path = {0};
	uint8_t *data;
	size_t len;

	for (int i = 0; i < ndirs && r == 0; i++) {
		dev_dir(dev, sh->cfg.cfg_dir ? sh->cfg.cfg_dir : dirs[i], dir);
		sb_reset(&path);
		sb_puts(&path, dir->s);
		sb_putc(&path, '/');
		sb_puts(&path, name);
		if (gsh_read_file(sh, path.s, GSH_MAX_SCRIPT, &data, &len, err,
				  errlen) == 0) {
			*text = strndup((char *)data, len);
			free(data);
			if (!*text)
				abort();
			r = 1;
		} else if (!is_missing(err)) {
			r = -1;
		}
	}
	sb_free(&path);
	return r;
}

/*
 * A whole disk as the root (-r hd0): the first of its partitions that
 * holds a grub.cfg, as the disk's own boot loader would know it.
 */
static bool
find_partition_config(struct gsh *sh, const char *disk, char **text,
		      struct sbuf *dir)
{
	char err[GDEV_PATH_MAX + 256];
	struct gdev_fsinfo *v;
	int n = gdev_list(sh->cfg.map, &v);
	size_t len = strlen(disk);
	bool found = false;

	for (int i = 0; i < n && !found; i++) {
		if (!v[i].partition || !v[i].readable ||
		    strncmp(v[i].dev, disk, len) || v[i].dev[len] != ',')
			continue;
		found =
		    find_config(sh, v[i].dev, text, dir, err, sizeof(err)) == 1;
		if (found)
			gsh_set(sh, "root", v[i].dev);
	}
	free(v);
	return found;
}

/*
 * The root device's grub.cfg, run with its menu. $prefix and
 * $config_directory name its directory, as in GRUB.
 */
static int
run_root_config(struct gsh *sh)
{
	char err[GDEV_PATH_MAX + 256], *text = NULL;
	char *root = gsh_strdup(gsh_root(sh));
	struct sbuf dir = {0};
	int found = find_config(sh, root, &text, &dir, err, sizeof(err));
	int r = GSH_OK;

	if (found < 1 && !strchr(root, ',') && strcmp(root, "host") &&
	    find_partition_config(sh, root, &text, &dir))
		found = 1;
	if (found < 0)
		gsh_error(sh, "%s", err); /* why there is no menu */
	if (found == 1) {
		gsh_set(sh, "prefix", dir.s);
		gsh_set(sh, "config_directory", dir.s);
		gsh_export(sh, "config_directory");
		sb_putc(&dir, '/');
		sb_puts(&dir, sh->cfg.cfg_name ? sh->cfg.cfg_name : "grub.cfg");
		gsh_set(sh, "config_file", dir.s);
		gsh_export(sh, "config_file");
		r = gsh_run_config(sh, text);
	}
	free(text);
	free(root);
	sb_free(&dir);
	return r;
}

int
gsh_main(struct gsh *sh)
{
	int r = run_root_config(sh);

	if (r == GSH_BOOTED || r == GSH_EXIT)
		return r;
	if (sh->cfg.interactive)
		fputs("\ngrub-bhyve: load a kernel (linux/initrd, multiboot/"
		      "module), then boot; 'help' lists the commands.\n\n",
		      sh->out);
	return gsh_repl(sh);
}

/* ---- life cycle ---- */

/*
 * What GRUB 2.06's normal mode sets before it reads grub.cfg: the
 * platform, and the features grub-mkconfig's scripts test for.
 */
static void
set_grub_vars(struct gsh *sh)
{
	static const char *const features[] = {
	    "feature_200_final",
	    "feature_all_video_module",
	    "feature_chainloader_bpb",
	    "feature_default_font_path",
	    "feature_menuentry_id",
	    "feature_menuentry_options",
	    "feature_nativedisk_cmd",
	    "feature_ntldr",
	    "feature_platform_search_hint",
	    "feature_timeout_style",
	};

	gsh_set(sh, "grub_platform", "pc");
	gsh_set(sh, "grub_cpu", "i386");
	gsh_export(sh, "grub_platform");
	gsh_export(sh, "grub_cpu");
	for (size_t i = 0; i < sizeof(features) / sizeof(*features); i++) {
		gsh_set(sh, features[i], "y");
		gsh_export(sh, features[i]);
	}
}

struct gsh *
gsh_create(const struct gsh_config *c)
{
	struct gsh *sh = calloc(1, sizeof(*sh));
	cookie_io_functions_t io = {.write = out_write};
	struct sbuf prefix = {0};

	if (!sh)
		return NULL;
	sh->cfg = *c;
	sh->env = calloc(1, sizeof(*sh->env));
	sh->out = fopencookie(sh, "w", io);
	if (!sh->env || !sh->out) {
		free(sh->env);
		free(sh);
		return NULL;
	}
	setvbuf(sh->out, NULL, _IONBF, 0);
	sh->menu = &sh->top;
	sh->loaded.image.fd = -1; /* nothing loaded */
	sh->in.fd = c->in_fd;
	gsh_budget_reset(sh);
	gsh_set(sh, "root", c->root ? c->root : "host");
	dev_dir(gsh_root(sh), c->cfg_dir ? c->cfg_dir : "/boot/grub", &prefix);
	gsh_set(sh, "prefix", prefix.s);
	gsh_export(sh, "root");
	gsh_export(sh, "prefix");
	sb_free(&prefix);
	set_grub_vars(sh);
	return sh;
}

void
gsh_free(struct gsh *sh)
{
	if (!sh)
		return;
	gsh_unload(sh);
	while (sh->env->up)
		gsh_env_close(sh);
	gsh_env_free(sh->env);
	for (int i = 0; i < sh->nfuncs; i++) {
		free(sh->funcs[i].name);
		free(sh->funcs[i].body);
	}
	free(sh->funcs);
	menu_free(&sh->top);
	fclose(sh->out);
	free(sh);
}
