/*
 * grub-bhyve's script interpreter: lexer, variables, blocks, menus and the
 * command line (see grub_shell.h). The commands are in grub_cmds.c.
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grub_shell_int.h"

#define MAX_DEPTH 16 /* configfile/source/function recursion */
#define MENU_CMDLINE (-2)

/* ---- strings ---- */

void
sb_putn(struct sbuf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *p;

		while (cap < b->n + n + 1)
			cap *= 2;
		p = realloc(b->s, cap);
		if (!p)
			abort();
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = '\0';
}

void
sb_putc(struct sbuf *b, char c)
{
	sb_putn(b, &c, 1);
}

void
sb_puts(struct sbuf *b, const char *s)
{
	sb_putn(b, s, strlen(s));
}

void
sb_reset(struct sbuf *b)
{
	b->n = 0;
	if (b->s)
		b->s[0] = '\0';
}

void
sb_free(struct sbuf *b)
{
	free(b->s);
	*b = (struct sbuf){0};
}

const char *
sb_str(struct sbuf *b)
{
	return b->s ? b->s : "";
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		abort();
	return p;
}

static char *
xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (!p)
		abort();
	return p;
}

/* Grow an array of n elements of size sz to hold one more. */
static void *
grow(void *v, int n, int *cap, size_t sz)
{
	if (n < *cap)
		return v;
	*cap = *cap ? *cap * 2 : 8;
	v = realloc(v, *cap * sz);
	if (!v)
		abort();
	return v;
}

/* ---- variables ---- */

static struct gsh_var *
find_var(struct gsh *sh, const char *name)
{
	for (int i = 0; i < sh->nvars; i++)
		if (!strcmp(sh->vars[i].name, name))
			return &sh->vars[i];
	return NULL;
}

const char *
gsh_get(struct gsh *sh, const char *name)
{
	struct gsh_var *v = find_var(sh, name);

	return v ? v->value : NULL;
}

static bool
valid_name(const char *s, size_t n)
{
	if (n == 0 || isdigit((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

int
gsh_set(struct gsh *sh, const char *name, const char *value)
{
	struct gsh_var *v;
	size_t n = strlen(value);

	if (!valid_name(name, strlen(name)))
		return gsh_error(sh, "invalid variable name '%s'", name);
	/* As GRUB: root=(hd0,1) is stored as hd0,1. */
	if (!strcmp(name, "root") && value[0] == '(' && n > 1 &&
	    value[n - 1] == ')') {
		value++;
		n -= 2;
	}
	v = find_var(sh, name);
	if (!v) {
		sh->vars =
		    grow(sh->vars, sh->nvars, &sh->capvars, sizeof(*sh->vars));
		v = &sh->vars[sh->nvars++];
		v->name = xstrdup(name);
	} else {
		free(v->value);
	}
	v->value = xstrndup(value, n);
	return GSH_OK;
}

/* ---- lexer ---- */

enum tok {
	T_EOF,
	T_WORD,
	T_SEP, /* newline or ';' */
	T_LBRACE,
	T_RBRACE,
	T_BADQUOTE,
};

struct lexer {
	struct gsh *sh; /* NULL: scan only, no expansion */
	const char *s;
	size_t i;
	size_t tok_start;
	struct sbuf w;
};

static bool
ends_word(char c)
{
	return c == '\0' || c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
	       c == ';';
}

/* $NAME or ${NAME} at s[i] == '$'. */
static void
lex_dollar(struct lexer *lx)
{
	const char *s = lx->s + lx->i + 1;
	const char *name = s, *val;
	bool brace = *s == '{';
	char *key;
	size_t n;

	if (brace) {
		name = s + 1;
		n = strcspn(name, "}\n");
		if (name[n] != '}') {
			sb_putc(&lx->w, '$');
			lx->i++;
			return;
		}
	} else {
		for (n = 0; isalnum((unsigned char)name[n]) || name[n] == '_';)
			n++;
		if (n == 0 && (name[0] == '?' || name[0] == '#'))
			n = 1;
	}
	if (n == 0) {
		sb_putc(&lx->w, '$');
		lx->i++;
		return;
	}
	lx->i += 1 + n + (brace ? 2 : 0);
	if (!lx->sh)
		return;
	key = xstrndup(name, n);
	val = gsh_get(lx->sh, key);
	free(key);
	if (val)
		sb_puts(&lx->w, val);
}

/* Inside "...": $ expands, \ escapes " \ $ and newline. */
static bool
lex_dquote(struct lexer *lx)
{
	const char *s = lx->s;

	lx->i++;
	while (s[lx->i] && s[lx->i] != '"') {
		if (s[lx->i] == '\\' && s[lx->i + 1] &&
		    strchr("\"\\$\n", s[lx->i + 1])) {
			if (s[lx->i + 1] != '\n')
				sb_putc(&lx->w, s[lx->i + 1]);
			lx->i += 2;
		} else if (s[lx->i] == '$') {
			lex_dollar(lx);
		} else {
			sb_putc(&lx->w, s[lx->i++]);
		}
	}
	if (!s[lx->i])
		return false;
	lx->i++;
	return true;
}

static enum tok
lex_word(struct lexer *lx)
{
	const char *s = lx->s;

	sb_reset(&lx->w);
	sb_putn(&lx->w, "", 0);
	while (!ends_word(s[lx->i])) {
		char c = s[lx->i];

		if (c == '\\') {
			if (s[lx->i + 1] && s[lx->i + 1] != '\n')
				sb_putc(&lx->w, s[lx->i + 1]);
			lx->i += s[lx->i + 1] ? 2 : 1;
		} else if (c == '\'') {
			size_t n = strcspn(s + lx->i + 1, "'");

			if (!s[lx->i + 1 + n])
				return T_BADQUOTE;
			sb_putn(&lx->w, s + lx->i + 1, n);
			lx->i += n + 2;
		} else if (c == '"') {
			if (!lex_dquote(lx))
				return T_BADQUOTE;
		} else if (c == '$') {
			lex_dollar(lx);
		} else {
			sb_putc(&lx->w, c);
			lx->i++;
		}
	}
	return T_WORD;
}

static enum tok
lex_next(struct lexer *lx)
{
	const char *s = lx->s;

	for (;;) {
		while (s[lx->i] == ' ' || s[lx->i] == '\t' || s[lx->i] == '\r')
			lx->i++;
		if (s[lx->i] == '\\' && s[lx->i + 1] == '\n') {
			lx->i += 2;
			continue;
		}
		if (s[lx->i] != '#')
			break;
		lx->i += strcspn(s + lx->i, "\n");
	}
	lx->tok_start = lx->i;
	switch (s[lx->i]) {
	case '\0':
		return T_EOF;
	case '\n':
	case ';':
		lx->i++;
		return T_SEP;
	case '{':
	case '}':
		if (ends_word(s[lx->i + 1]))
			return s[lx->i++] == '{' ? T_LBRACE : T_RBRACE;
		break;
	}
	return lex_word(lx);
}

/*
 * After a '{': the block's text up to its matching '}' (in *body), or
 * T_EOF / T_BADQUOTE when it never closes.
 */
static enum tok
lex_block(struct lexer *lx, char **body)
{
	struct lexer scan = {NULL, lx->s, lx->i, 0, {0}};
	size_t start = lx->i;
	int depth = 1;
	enum tok t;

	while ((t = lex_next(&scan)) != T_EOF && t != T_BADQUOTE) {
		if (t == T_LBRACE)
			depth++;
		if (t == T_RBRACE && --depth == 0)
			break;
	}
	sb_free(&scan.w);
	if (depth)
		return t == T_BADQUOTE ? T_BADQUOTE : T_EOF;
	*body = xstrndup(lx->s + start, scan.tok_start - start);
	lx->i = scan.i;
	return T_RBRACE;
}

static bool
is_block_word(const char *w)
{
	return !strcmp(w, "menuentry") || !strcmp(w, "submenu") ||
	       !strcmp(w, "function");
}

bool
gsh_incomplete(const char *text)
{
	struct lexer lx = {NULL, text, 0, 0, {0}};
	bool start = true, header = false;
	int depth = 0;
	enum tok t;

	while ((t = lex_next(&lx)) != T_EOF && t != T_BADQUOTE) {
		if (t == T_WORD && start && is_block_word(sb_str(&lx.w)))
			header = true;
		if (t == T_LBRACE) {
			depth++;
			header = false;
		} else if (t == T_RBRACE && depth > 0) {
			depth--;
		}
		start = t == T_SEP || t == T_LBRACE || t == T_RBRACE;
		if (t == T_SEP && lx.s[lx.tok_start] == ';')
			header = false;
	}
	sb_free(&lx.w);
	return t == T_BADQUOTE || depth > 0 || header;
}

/* ---- blocks ---- */

struct argv {
	char **v;
	int n, cap;
};

static void
argv_push(struct argv *a, const char *s)
{
	a->v = grow(a->v, a->n + 1, &a->cap, sizeof(*a->v));
	a->v[a->n++] = xstrdup(s);
	a->v[a->n] = NULL;
}

static void
argv_clear(struct argv *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->v[i]);
	a->n = 0;
}

/* menuentry's title: the first argument that is not an option. */
static const char *
entry_title(int argc, char **argv)
{
	static const char *const with_arg[] = {"--class", "--users", "--hotkey",
					       "--id"};

	for (int i = 1; i < argc; i++) {
		bool skip = false;

		if (strncmp(argv[i], "--", 2)) {
			return argv[i];
		}
		for (size_t j = 0; j < sizeof(with_arg) / sizeof(*with_arg);
		     j++)
			if (!strcmp(argv[i], with_arg[j]))
				skip = true;
		i += skip;
	}
	return NULL;
}

static int
define_block(struct gsh *sh, int argc, char **argv, char *body)
{
	const char *title;

	if (!strcmp(argv[0], "function")) {
		if (argc != 2 || !valid_name(argv[1], strlen(argv[1]))) {
			free(body);
			return gsh_error(sh, "syntax error: function NAME { "
					     "... }");
		}
		sh->funcs = grow(sh->funcs, sh->nfuncs, &sh->capfuncs,
				 sizeof(*sh->funcs));
		sh->funcs[sh->nfuncs++] =
		    (struct gsh_func){xstrdup(argv[1]), body};
		return GSH_OK;
	}
	title = entry_title(argc, argv);
	if (!title) {
		free(body);
		return gsh_error(sh, "%s needs a title", argv[0]);
	}
	sh->menu->v = grow(sh->menu->v, sh->menu->n, &sh->menu->cap,
			   sizeof(*sh->menu->v));
	sh->menu->v[sh->menu->n++] = (struct gsh_entry){
	    xstrdup(title), body, !strcmp(argv[0], "submenu")};
	return GSH_OK;
}

/* ---- execution ---- */

static int exec_text(struct gsh *sh, const char *text);

static int
call_function(struct gsh *sh, const char *name, bool *found)
{
	int r;

	*found = false;
	for (int i = 0; i < sh->nfuncs; i++) {
		if (strcmp(sh->funcs[i].name, name))
			continue;
		*found = true;
		if (sh->depth >= MAX_DEPTH)
			return gsh_error(sh, "too deeply nested");
		sh->depth++;
		r = exec_text(sh, sh->funcs[i].body);
		sh->depth--;
		return r;
	}
	return GSH_OK;
}

static int
run(struct gsh *sh, struct argv *a)
{
	const char *eq = strchr(a->v[0], '=');
	bool found;
	int r;

	if (a->n == 1 && eq && valid_name(a->v[0], eq - a->v[0])) {
		char *name = xstrndup(a->v[0], eq - a->v[0]);

		r = gsh_set(sh, name, eq + 1);
		free(name);
		return r;
	}
	if (!gsh_is_builtin(a->v[0])) {
		r = call_function(sh, a->v[0], &found);
		if (found)
			return r;
	}
	return gsh_command(sh, a->n, a->v);
}

/* A '{' after words: a block definition (or a syntax error). */
static int
exec_block(struct gsh *sh, struct lexer *lx, struct argv *a)
{
	char *body = NULL;
	enum tok t = lex_block(lx, &body);

	if (t != T_RBRACE) {
		/* The rest of the text is inside the broken block. */
		lx->i += strlen(lx->s + lx->i);
		return gsh_error(sh, "syntax error: %s",
				 t == T_BADQUOTE ? "unterminated quote"
						 : "missing '}'");
	}
	if (a->n == 0 || !is_block_word(a->v[0])) {
		free(body);
		return gsh_error(sh, "syntax error: unexpected '{'");
	}
	return define_block(sh, a->n, a->v, body);
}

/* A block's header may end its line: "menuentry 'x'\n{" (GRUB too). */
static bool
in_block_header(const struct lexer *lx, const struct argv *a)
{
	return a->n && is_block_word(a->v[0]) && lx->s[lx->tok_start] == '\n';
}

static int
exec_text(struct gsh *sh, const char *text)
{
	struct lexer lx = {sh, text, 0, 0, {0}};
	struct argv a = {0};
	int r = GSH_OK;

	for (;;) {
		enum tok t = lex_next(&lx);

		if (t == T_WORD) {
			argv_push(&a, sb_str(&lx.w));
			continue;
		}
		if (t == T_SEP && in_block_header(&lx, &a))
			continue;
		if (t == T_LBRACE) {
			r = exec_block(sh, &lx, &a);
			argv_clear(&a);
		} else if (t == T_RBRACE) {
			r = gsh_error(sh, "syntax error: unexpected '}'");
			argv_clear(&a);
		} else if (t == T_BADQUOTE) {
			r = gsh_error(sh, "syntax error: unterminated quote");
			break;
		} else if (t == T_EOF && a.n && is_block_word(a.v[0])) {
			r = gsh_error(sh, "syntax error: missing '{'");
		} else if (a.n) {
			r = run(sh, &a);
			argv_clear(&a);
		}
		if (r == GSH_BOOTED || r == GSH_EXIT || t == T_EOF)
			break;
	}
	argv_clear(&a);
	free(a.v);
	sb_free(&lx.w);
	return r;
}

int
gsh_exec(struct gsh *sh, const char *script)
{
	return exec_text(sh, script);
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

/* ---- menus ---- */

static int
menu_default(struct gsh *sh, const struct gsh_menu *m)
{
	const char *d = gsh_get(sh, "default");
	char *end;
	long v;

	if (!d || !*d)
		return 0;
	v = strtol(d, &end, 10);
	if (*end == '\0' && v >= 0 && v < m->n)
		return (int)v;
	for (int i = 0; i < m->n; i++)
		if (!strcmp(m->v[i].title, d))
			return i;
	fprintf(sh->cfg.out, "No menu entry '%s': using entry 0.\n", d);
	return 0;
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

static int
menu_choose(struct gsh *sh, const struct gsh_menu *m, int def, int timeout)
{
	FILE *out = sh->cfg.out;
	struct sbuf line = {0};
	int r, choice = def;
	char *end;
	long v;

	fprintf(out,
		"Enter a number to boot that entry, Enter for entry %d, "
		"'c' for a command line",
		def);
	if (timeout > 0)
		fprintf(out, " (entry %d boots in %d s)", def, timeout);
	fputs(".\n", out);
	for (;;) {
		fflush(out);
		r = read_line(&sh->in, &line,
			      timeout > 0 ? timeout * 1000 : -1);
		if (r != RD_LINE || !line.n)
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
		fprintf(out, "No entry '%s': choose 0 to %d.\n", line.s,
			m->n - 1);
		timeout = -1;
	}
	sb_free(&line);
	return choice;
}

static int run_config_menu(struct gsh *sh, const char *text);

static int
run_entry(struct gsh *sh, const struct gsh_entry *e)
{
	int errors = sh->errors, r;

	if (e->submenu)
		return run_config_menu(sh, e->body);
	r = exec_text(sh, e->body);
	if (r == GSH_BOOTED || r == GSH_EXIT)
		return r;
	/* GRUB boots what an entry loaded, if nothing went wrong. */
	if (sh->errors == errors && sh->loaded.kind != GSH_NONE)
		return gsh_boot(sh);
	if (sh->errors == errors)
		return gsh_error(sh, "you need to load the kernel first");
	return GSH_ERROR;
}

static int
run_menu(struct gsh *sh, const struct gsh_menu *m)
{
	int def = menu_default(sh, m), timeout = menu_timeout(sh), choice;
	FILE *out = sh->cfg.out;

	fputs("\n    grub-bhyve menu\n\n", out);
	for (int i = 0; i < m->n; i++)
		fprintf(out, " %c %d  %s%s\n", i == def ? '*' : ' ', i,
			m->v[i].title, m->v[i].submenu ? " >" : "");
	fputc('\n', out);
	choice = def;
	if (sh->cfg.interactive && timeout != 0)
		choice = menu_choose(sh, m, def, timeout);
	if (choice == MENU_CMDLINE)
		return GSH_OK;
	fprintf(out, "Booting '%s'\n\n", m->v[choice].title);
	fflush(out);
	return run_entry(sh, &m->v[choice]);
}

static void
menu_free(struct gsh_menu *m)
{
	for (int i = 0; i < m->n; i++) {
		free(m->v[i].title);
		free(m->v[i].body);
	}
	free(m->v);
	*m = (struct gsh_menu){0};
}

static int
run_config_menu(struct gsh *sh, const char *text)
{
	struct gsh_menu m = {0}, *saved = sh->menu;
	int r;

	if (sh->depth >= MAX_DEPTH)
		return gsh_error(sh, "too deeply nested");
	sh->depth++;
	sh->menu = &m;
	r = exec_text(sh, text);
	if (r != GSH_BOOTED && r != GSH_EXIT && m.n > 0)
		r = run_menu(sh, &m);
	sh->menu = saved;
	sh->depth--;
	menu_free(&m);
	return r;
}

int
gsh_run_config(struct gsh *sh, const char *script)
{
	return run_config_menu(sh, script);
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

/* ---- the command line ---- */

int
gsh_repl(struct gsh *sh)
{
	struct sbuf text = {0}, line = {0};
	int r = GSH_EOF;

	for (;;) {
		if (sh->cfg.interactive) {
			fputs(text.n ? "> " : "grub> ", sh->cfg.out);
			fflush(sh->cfg.out);
		}
		if (read_line(&sh->in, &line, -1) != RD_LINE) {
			/* A block left open at the end: say so. */
			if (text.n &&
			    exec_text(sh, sb_str(&text)) == GSH_BOOTED)
				r = GSH_BOOTED;
			break;
		}
		sb_puts(&text, sb_str(&line));
		sb_putc(&text, '\n');
		if (gsh_incomplete(text.s))
			continue;
		r = exec_text(sh, text.s);
		fflush(sh->cfg.out);
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

/* The root device's grub.cfg, if there is one. */
static int
run_root_config(struct gsh *sh)
{
	const char *dir = sh->cfg.cfg_dir ? sh->cfg.cfg_dir : "/boot/grub";
	const char *name = sh->cfg.cfg_name ? sh->cfg.cfg_name : "grub.cfg";
	struct sbuf path = {0};
	char err[GDEV_PATH_MAX + 256];
	uint8_t *data;
	size_t len;
	int r = GSH_OK;

	sb_puts(&path, "(");
	sb_puts(&path, gsh_root(sh));
	sb_puts(&path, ")");
	if (dir[0] != '/')
		sb_putc(&path, '/');
	sb_puts(&path, dir);
	if (path.s[path.n - 1] != '/')
		sb_putc(&path, '/');
	sb_puts(&path, name);
	if (gsh_read_file(sh, path.s, &data, &len, err, sizeof(err)) == 0) {
		char *text = xstrndup((char *)data, len);

		free(data);
		r = gsh_run_config(sh, text);
		free(text);
	} else if (!strstr(err, "not found")) {
		/* Not a missing file: say why the menu cannot be read. */
		gsh_error(sh, "%s", err);
	}
	sb_free(&path);
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
		      sh->cfg.out);
	return gsh_repl(sh);
}

/* ---- life cycle ---- */

struct gsh *
gsh_create(const struct gsh_config *c)
{
	struct gsh *sh = calloc(1, sizeof(*sh));
	struct sbuf prefix = {0};

	if (!sh)
		return NULL;
	sh->cfg = *c;
	sh->menu = &sh->top;
	sh->loaded.image.fd = -1; /* nothing loaded */
	sh->in.fd = c->in_fd;
	gsh_set(sh, "root", c->root ? c->root : "host");
	sb_puts(&prefix, "(");
	sb_puts(&prefix, gsh_root(sh));
	sb_puts(&prefix, ")");
	sb_puts(&prefix, c->cfg_dir ? c->cfg_dir : "/boot/grub");
	gsh_set(sh, "prefix", prefix.s);
	sb_free(&prefix);
	return sh;
}

void
gsh_free(struct gsh *sh)
{
	if (!sh)
		return;
	gsh_unload(sh);
	for (int i = 0; i < sh->nvars; i++) {
		free(sh->vars[i].name);
		free(sh->vars[i].value);
	}
	free(sh->vars);
	for (int i = 0; i < sh->nfuncs; i++) {
		free(sh->funcs[i].name);
		free(sh->funcs[i].body);
	}
	free(sh->funcs);
	menu_free(&sh->top);
	free(sh);
}

int
gsh_error(struct gsh *sh, const char *fmt, ...)
{
	va_list ap;

	fputs("error: ", sh->cfg.out);
	va_start(ap, fmt);
	vfprintf(sh->cfg.out, fmt, ap);
	va_end(ap);
	fputs(".\n", sh->cfg.out);
	fflush(sh->cfg.out);
	sh->errors++;
	return GSH_ERROR;
}
