/*
 * grub-bhyve's script interpreter (the language is in grub_shell.h):
 * variables and their contexts, the lexer, word expansion, and a parser
 * that runs commands as it parses them.
 *
 * Each top-level command (a whole if ... fi, a whole loop) is first parsed
 * without running anything, then parsed again running it, so a syntax
 * error anywhere in it runs none of it (GRUB parses a command before it
 * runs it). A branch not taken, a loop's last test and the commands after
 * a return or break are parsed without running. Loops rewind the lexer to
 * their start for each turn; function and menu entry bodies are kept as
 * text and parsed when they run.
 *
 * The language's semantics follow GRUB 2.06's grub-core/script: an
 * unquoted $VAR splits at blanks and vanishes when empty, a quoted one
 * is always one word; keywords count only unquoted and at a command's
 * start; a command name is first a builtin, then a function, then
 * NAME=VALUE.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grub_shell_int.h"

/* ---- strings and arrays ---- */

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

char *
gsh_strdup(const char *s)
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

void *
gsh_grow(void *v, int n, int *cap, size_t sz)
{
	if (n < *cap)
		return v;
	*cap = *cap ? *cap * 2 : 8;
	v = realloc(v, *cap * sz);
	if (!v)
		abort();
	return v;
}

/* An argument vector, NULL terminated. */
struct argv {
	char **v;
	int n, cap;
	size_t bytes;
};

static void
argv_push(struct argv *a, const char *s, size_t n)
{
	a->v = gsh_grow(a->v, a->n + 1, &a->cap, sizeof(*a->v));
	a->v[a->n++] = xstrndup(s, n);
	a->v[a->n] = NULL;
	a->bytes += n + 1;
}

static void
argv_free(struct argv *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	*a = (struct argv){0};
}

/* ---- variables ---- */

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

static struct gsh_var *
find_var(struct gsh_env *e, const char *name)
{
	for (int i = 0; i < e->n; i++)
		if (!strcmp(e->v[i].name, name))
			return &e->v[i];
	return NULL;
}

const char *
gsh_get(struct gsh *sh, const char *name)
{
	struct gsh_var *v = find_var(sh->env, name);

	return v ? v->value : NULL;
}

int
gsh_set(struct gsh *sh, const char *name, const char *value)
{
	struct gsh_env *e = sh->env;
	size_t n = strlen(value), old;
	struct gsh_var *v;
	char *copy;

	if (!valid_name(name, strlen(name)))
		return gsh_error(sh, "invalid variable name '%s'", name);
	/* As GRUB: root=(hd0,1) is stored as hd0,1. */
	if (!strcmp(name, "root") && value[0] == '(' && n > 1 &&
	    value[n - 1] == ')') {
		value++;
		n -= 2;
	}
	if (n > GSH_MAX_VALUE)
		return gsh_error(sh,
				 "the value for '%s' is %zu bytes: at most %d",
				 name, n, GSH_MAX_VALUE);
	v = find_var(e, name);
	old = v ? strlen(v->value) : 0;
	if (e->bytes - old + n > GSH_MAX_ENV)
		return gsh_error(sh,
				 "no room for '%s': variables hold at most %d "
				 "bytes",
				 name, GSH_MAX_ENV);
	if (!v && e->n >= GSH_MAX_VARS)
		return gsh_error(sh, "no room for '%s': at most %d variables",
				 name, GSH_MAX_VARS);
	copy = xstrndup(value, n); /* value may be v's own */
	if (!v) {
		e->v = gsh_grow(e->v, e->n, &e->cap, sizeof(*e->v));
		v = &e->v[e->n++];
		*v = (struct gsh_var){gsh_strdup(name), NULL, false};
	}
	free(v->value);
	v->value = copy;
	e->bytes = e->bytes - old + n;
	return GSH_OK;
}

int
gsh_export(struct gsh *sh, const char *name)
{
	struct gsh_var *v = find_var(sh->env, name);

	/* GRUB exports an unset name as an empty variable. */
	if (!v) {
		if (gsh_set(sh, name, "") != GSH_OK)
			return GSH_ERROR;
		v = find_var(sh->env, name);
	}
	v->exported = true;
	return GSH_OK;
}

void
gsh_unset(struct gsh *sh, const char *name)
{
	struct gsh_env *e = sh->env;
	struct gsh_var *v = find_var(e, name);

	if (!v)
		return;
	e->bytes -= strlen(v->value);
	free(v->name);
	free(v->value);
	*v = e->v[--e->n];
}

void
gsh_env_open(struct gsh *sh)
{
	struct gsh_env *e = calloc(1, sizeof(*e)), *up = sh->env;

	if (!e)
		abort();
	for (int i = 0; i < up->n; i++) {
		if (!up->v[i].exported)
			continue;
		e->v = gsh_grow(e->v, e->n, &e->cap, sizeof(*e->v));
		e->v[e->n++] =
		    (struct gsh_var){gsh_strdup(up->v[i].name),
				     gsh_strdup(up->v[i].value), true};
		e->bytes += strlen(up->v[i].value);
	}
	e->up = up;
	sh->env = e;
}

void
gsh_env_free(struct gsh_env *e)
{
	for (int i = 0; i < e->n; i++) {
		free(e->v[i].name);
		free(e->v[i].value);
	}
	free(e->v);
	free(e);
}

void
gsh_env_close(struct gsh *sh)
{
	struct gsh_env *e = sh->env;

	if (!e->up)
		return;
	sh->env = e->up;
	gsh_env_free(e);
}

/* ---- budgets and control ---- */

void
gsh_budget_reset(struct gsh *sh)
{
	sh->steps_left = GSH_MAX_STEPS;
	sh->out_left = GSH_MAX_OUTPUT;
	sh->out_cut = false;
	sh->ctl = CTL_NONE;
}

void
gsh_charge(struct gsh *sh, long n)
{
	sh->steps_left = sh->steps_left > n ? sh->steps_left - n : 0;
}

static void
stop(struct gsh *sh, int status)
{
	sh->ctl = CTL_STOP;
	sh->stop_status = status;
}

/* One more command or loop turn, if the run's budget allows. */
static bool
step(struct gsh *sh)
{
	if (sh->steps_left > 0) {
		sh->steps_left--;
		return true;
	}
	if (sh->ctl != CTL_STOP) {
		gsh_error(sh,
			  "the script ran too long (%d commands, a file "
			  "access counting %d): stopped",
			  GSH_MAX_STEPS, GSH_STEPS_FILE);
		stop(sh, GSH_ERROR);
	}
	return false;
}

/* After a loop's turn: go on (true) or leave the loop. */
static bool
loop_next(struct gsh *sh)
{
	if (sh->ctl == CTL_BREAK) {
		if (--sh->ctl_n <= 0)
			sh->ctl = CTL_NONE;
		return false;
	}
	if (sh->ctl == CTL_CONTINUE) {
		if (--sh->ctl_n > 0)
			return false;
		sh->ctl = CTL_NONE;
	}
	return sh->ctl == CTL_NONE;
}

/* A count argument of return, break, continue and shift. */
static int
count_arg(struct gsh *sh, int argc, char **argv, long dflt, long *v)
{
	char *end;

	*v = dflt;
	if (argc < 2)
		return GSH_OK;
	*v = strtol(argv[1], &end, 10);
	if (*end || end == argv[1] || *v < 0 || *v > 1000000)
		return gsh_error(sh, "unrecognized number");
	return GSH_OK;
}

int
gsh_cmd_return(struct gsh *sh, int argc, char **argv)
{
	long v;

	if (count_arg(sh, argc, argv, sh->status, &v) != GSH_OK)
		return GSH_ERROR;
	sh->ctl = CTL_RETURN;
	sh->status = (int)v;
	return v ? GSH_FALSE : GSH_OK;
}

int
gsh_cmd_break(struct gsh *sh, int argc, char **argv)
{
	long v;

	if (count_arg(sh, argc, argv, 1, &v) != GSH_OK)
		return GSH_ERROR;
	if (v == 0)
		return gsh_error(sh, "%s: the count must be 1 or more",
				 argv[0]);
	/* Outside a loop, or more loops than there are: GRUB's counts. */
	if (sh->loops == 0)
		return GSH_OK;
	sh->ctl = strcmp(argv[0], "break") ? CTL_CONTINUE : CTL_BREAK;
	sh->ctl_n = v > sh->loops ? sh->loops : (int)v;
	return GSH_OK;
}

int
gsh_cmd_shift(struct gsh *sh, int argc, char **argv)
{
	long v;

	if (count_arg(sh, argc, argv, 1, &v) != GSH_OK)
		return GSH_ERROR;
	if (v > sh->nargs)
		return GSH_FALSE;
	sh->args += v;
	sh->nargs -= (int)v;
	return GSH_OK;
}

int
gsh_cmd_export(struct gsh *sh, int argc, char **argv)
{
	int r = GSH_OK;

	if (argc < 2)
		return gsh_error(sh, "one argument expected");
	for (int i = 1; i < argc; i++)
		if (gsh_export(sh, argv[i]) != GSH_OK)
			r = GSH_ERROR;
	return r;
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
	const char *s;
	size_t i;	   /* the next character */
	size_t start, end; /* the last token's text */
};

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool
ends_word(char c)
{
	return c == '\0' || is_blank(c) || c == '\n' || c == ';';
}

/* A word's extent: quotes must close; expansion comes later. */
static enum tok
scan_word(struct lexer *lx)
{
	const char *s = lx->s;

	while (!ends_word(s[lx->i])) {
		const char *q;
		size_t j;

		switch (s[lx->i]) {
		case '\\':
			lx->i += s[lx->i + 1] ? 2 : 1;
			break;
		case '\'':
			q = strchr(s + lx->i + 1, '\'');
			if (!q)
				return T_BADQUOTE;
			lx->i = q - s + 1;
			break;
		case '"':
			for (j = lx->i + 1; s[j] && s[j] != '"';)
				j += s[j] == '\\' && s[j + 1] ? 2 : 1;
			if (!s[j])
				return T_BADQUOTE;
			lx->i = j + 1;
			break;
		default:
			lx->i++;
		}
	}
	return T_WORD;
}

static enum tok
lex_next(struct lexer *lx)
{
	const char *s = lx->s;
	enum tok t;

	for (;;) {
		while (is_blank(s[lx->i]))
			lx->i++;
		if (s[lx->i] == '\\' && s[lx->i + 1] == '\n') {
			lx->i += 2;
			continue;
		}
		if (s[lx->i] != '#')
			break;
		lx->i += strcspn(s + lx->i, "\n");
	}
	lx->start = lx->i;
	switch (s[lx->i]) {
	case '\0':
		t = T_EOF;
		break;
	case '\n':
	case ';':
		lx->i++;
		t = T_SEP;
		break;
	case '{':
	case '}':
		/* A brace alone is a token; "{x" is a word. */
		if (ends_word(s[lx->i + 1])) {
			t = s[lx->i++] == '{' ? T_LBRACE : T_RBRACE;
			break;
		}
		t = scan_word(lx);
		break;
	default:
		t = scan_word(lx);
	}
	lx->end = lx->i;
	return t;
}

/*
 * After a '{': up to its matching '}' (the body is [*start, *end)), or
 * T_EOF / T_BADQUOTE when it never closes.
 */
static enum tok
lex_block(struct lexer *lx, size_t *start, size_t *end)
{
	int depth = 1;
	enum tok t;

	*start = lx->i;
	while ((t = lex_next(lx)) != T_EOF && t != T_BADQUOTE) {
		if (t == T_LBRACE)
			depth++;
		else if (t == T_RBRACE && --depth == 0) {
			*end = lx->start;
			return T_RBRACE;
		}
	}
	return t;
}

enum {
	K_IF = 1 << 0,
	K_THEN = 1 << 1,
	K_ELIF = 1 << 2,
	K_ELSE = 1 << 3,
	K_FI = 1 << 4,
	K_WHILE = 1 << 5,
	K_UNTIL = 1 << 6,
	K_DO = 1 << 7,
	K_DONE = 1 << 8,
	K_FOR = 1 << 9,
	K_FUNCTION = 1 << 10,
	K_MENUENTRY = 1 << 11,
	K_SUBMENU = 1 << 12,
};
/* Keywords that only continue a compound command. */
#define K_RESERVED (K_THEN | K_ELIF | K_ELSE | K_FI | K_DO | K_DONE)
#define K_DEFINE (K_FUNCTION | K_MENUENTRY | K_SUBMENU)

static const struct {
	const char *word;
	unsigned k;
} keywords[] = {
    {"if", K_IF},
    {"then", K_THEN},
    {"elif", K_ELIF},
    {"else", K_ELSE},
    {"fi", K_FI},
    {"while", K_WHILE},
    {"until", K_UNTIL},
    {"do", K_DO},
    {"done", K_DONE},
    {"for", K_FOR},
    {"function", K_FUNCTION},
    {"menuentry", K_MENUENTRY},
    {"submenu", K_SUBMENU},
};

static bool
tok_is(const struct lexer *lx, const char *w)
{
	size_t n = lx->end - lx->start;

	return strlen(w) == n && !memcmp(lx->s + lx->start, w, n);
}

/* The last token as a keyword (unquoted, so its text is the word). */
static unsigned
keyword(const struct lexer *lx)
{
	for (size_t i = 0; i < sizeof(keywords) / sizeof(*keywords); i++)
		if (tok_is(lx, keywords[i].word))
			return keywords[i].k;
	return 0;
}

/* ---- expansion ---- */

/* A command's words as the lexer found them, not yet expanded. */
struct words {
	struct {
		size_t start, len;
	} * v;
	int n, cap;
	bool over; /* more than GSH_MAX_ARGS */
};

static void
words_add(struct words *w, const struct lexer *lx)
{
	if (w->n >= GSH_MAX_ARGS) {
		w->over = true;
		return;
	}
	w->v = gsh_grow(w->v, w->n, &w->cap, sizeof(*w->v));
	w->v[w->n].start = lx->start;
	w->v[w->n++].len = lx->end - lx->start;
}

struct expander {
	struct gsh *sh;
	struct argv *out;
	struct sbuf cur;
	bool present; /* cur is a word, even if empty ("" or '') */
	bool over;    /* past GSH_MAX_ARGS or GSH_MAX_LINE */
};

static void
ex_put(struct expander *x, const char *s, size_t n)
{
	if (x->out->bytes + x->cur.n + n > GSH_MAX_LINE) {
		x->over = true;
		return;
	}
	sb_putn(&x->cur, s, n);
	x->present = true;
}

/* End the word being built. */
static void
ex_push(struct expander *x)
{
	if (!x->present)
		return;
	if (x->out->n >= GSH_MAX_ARGS ||
	    x->out->bytes + x->cur.n + 1 > GSH_MAX_LINE)
		x->over = true;
	else
		argv_push(x->out, sb_str(&x->cur), x->cur.n);
	sb_reset(&x->cur);
	x->present = false;
}

/* An unquoted value: its blank-separated fields are words. */
static void
ex_split(struct expander *x, const char *v)
{
	static const char blanks[] = " \t\r\n";
	bool first = true;

	v += strspn(v, blanks);
	while (*v && !x->over) {
		size_t n = strcspn(v, blanks);

		if (!first)
			ex_push(x);
		ex_put(x, v, n);
		first = false;
		v += n;
		v += strspn(v, blanks);
	}
}

/* $NAME's value: special parameters, positional ones, variables. */
static const char *
var_value(struct gsh *sh, const char *name, size_t n, char *buf, size_t len)
{
	char key[64];

	if (n == 1 && *name == '?') {
		snprintf(buf, len, "%d", sh->status);
		return buf;
	}
	if (n == 1 && *name == '#') {
		snprintf(buf, len, "%d", sh->nargs);
		return buf;
	}
	if (isdigit((unsigned char)*name)) {
		unsigned long k = n < 8 ? strtoul(name, NULL, 10) : 0;

		return k >= 1 && k <= (unsigned long)sh->nargs ? sh->args[k - 1]
							       : NULL;
	}
	/* No variable has a longer name (gsh_set takes the whole name,
	 * but a value this long would not fit GSH_MAX_VALUE's purpose). */
	if (n >= sizeof(key)) {
		char *k = xstrndup(name, n);
		const char *v = gsh_get(sh, k);

		free(k);
		return v;
	}
	memcpy(key, name, n);
	key[n] = '\0';
	return gsh_get(sh, key);
}

static void
ex_var(struct expander *x, const char *name, size_t n, bool quoted)
{
	struct gsh *sh = x->sh;
	char buf[24];
	const char *v;

	if (n == 1 && (*name == '@' || *name == '*')) {
		for (int i = 0; i < sh->nargs && !x->over; i++) {
			if (i > 0 && quoted && *name == '*')
				ex_put(x, " ", 1);
			else if (i > 0)
				ex_push(x);
			if (quoted)
				ex_put(x, sh->args[i], strlen(sh->args[i]));
			else
				ex_split(x, sh->args[i]);
		}
		return;
	}
	v = var_value(sh, name, n, buf, sizeof(buf));
	if (!v)
		return;
	if (quoted)
		ex_put(x, v, strlen(v));
	else
		ex_split(x, v);
}

/*
 * At s[0] == '$' (n bytes in all): the length of a variable reference
 * ($NAME, ${NAME}, $1, $?, ...) and its name at s + *name, *len bytes;
 * 0 when the '$' is just a character.
 */
static size_t
dollar_ref(const char *s, size_t n, size_t *name, size_t *len)
{
	bool brace = n > 1 && s[1] == '{';
	size_t i = 1 + brace, k = 0;
	unsigned char c = i < n ? s[i] : 0;

	if (isalpha(c) || c == '_')
		while (i + k < n &&
		       (isalnum((unsigned char)s[i + k]) || s[i + k] == '_'))
			k++;
	else if (isdigit(c))
		while (i + k < n && isdigit((unsigned char)s[i + k]))
			k++;
	else if (c && strchr("?#*@", c))
		k = 1;
	if (k == 0)
		return 0;
	*name = i;
	*len = k;
	if (!brace)
		return i + k;
	return i + k < n && s[i + k] == '}' ? i + k + 1 : 0;
}

static size_t
ex_dollar(struct expander *x, const char *s, size_t n, bool quoted)
{
	size_t name, len, k = dollar_ref(s, n, &name, &len);

	if (!k) {
		ex_put(x, "$", 1);
		return 1;
	}
	ex_var(x, s + name, len, quoted);
	return k;
}

/* Inside "...": $ expands, \ escapes " \ $ and newline. */
static size_t
ex_dquote(struct expander *x, const char *s, size_t n, size_t i)
{
	x->present = true;
	while (i < n && s[i] != '"' && !x->over) {
		size_t j;

		if (s[i] == '\\' && i + 1 < n && s[i + 1] &&
		    strchr("\"\\$\n", s[i + 1])) {
			if (s[i + 1] != '\n')
				ex_put(x, s + i + 1, 1);
			i += 2;
		} else if (s[i] == '$') {
			i += ex_dollar(x, s + i, n - i, true);
		} else {
			for (j = i + 1; j < n && !strchr("\"\\$", s[j]); j++)
				;
			ex_put(x, s + i, j - i);
			i = j;
		}
	}
	return i + 1;
}

static void
ex_word(struct expander *x, const char *s, size_t n)
{
	size_t i = 0, j;

	while (i < n && !x->over) {
		switch (s[i]) {
		case '\\':
			if (i + 1 < n && s[i + 1] != '\n')
				ex_put(x, s + i + 1, 1);
			i += i + 1 < n ? 2 : 1;
			break;
		case '\'':
			for (j = i + 1; j < n && s[j] != '\''; j++)
				;
			x->present = true;
			ex_put(x, s + i + 1, j - i - 1);
			i = j + 1;
			break;
		case '"':
			i = ex_dquote(x, s, n, i + 1);
			break;
		case '$':
			i += ex_dollar(x, s + i, n - i, false);
			break;
		default:
			for (j = i + 1; j < n && !strchr("\\'\"$", s[j]); j++)
				;
			ex_put(x, s + i, j - i);
			i = j;
		}
	}
}

static int
expand(struct gsh *sh, const char *text, const struct words *w,
       struct argv *out)
{
	struct expander x = {sh, out, {0}, false, w->over};

	for (int i = 0; i < w->n && !x.over; i++) {
		ex_word(&x, text + w->v[i].start, w->v[i].len);
		ex_push(&x);
	}
	sb_free(&x.cur);
	if (x.over)
		return gsh_error(sh,
				 "a command is more than %d words or %d KiB "
				 "long",
				 GSH_MAX_ARGS, GSH_MAX_LINE / 1024);
	return GSH_OK;
}

/* ---- running commands ---- */

static struct gsh_func *
find_func(struct gsh *sh, const char *name)
{
	for (int i = 0; i < sh->nfuncs; i++)
		if (!strcmp(sh->funcs[i].name, name))
			return &sh->funcs[i];
	return NULL;
}

static int
define_func(struct gsh *sh, int argc, char **argv, const char *body)
{
	struct gsh_func *f;

	if (argc != 2 || !valid_name(argv[1], strlen(argv[1])))
		return gsh_error(sh, "syntax error: function NAME { ... }");
	f = find_func(sh, argv[1]);
	if (f) {
		free(f->body);
		f->body = gsh_strdup(body);
		return GSH_OK;
	}
	if (sh->nfuncs >= GSH_MAX_FUNCS)
		return gsh_error(sh, "too many functions (at most %d)",
				 GSH_MAX_FUNCS);
	sh->funcs =
	    gsh_grow(sh->funcs, sh->nfuncs, &sh->capfuncs, sizeof(*sh->funcs));
	sh->funcs[sh->nfuncs++] =
	    (struct gsh_func){gsh_strdup(argv[1]), gsh_strdup(body)};
	return GSH_OK;
}

int
gsh_exec_scope(struct gsh *sh, const char *text, int nargs, char **args)
{
	char **saved_args = sh->args;
	int saved_nargs = sh->nargs, saved_loops = sh->loops, r;

	if (sh->depth >= GSH_MAX_DEPTH)
		return gsh_error(sh, "too deeply nested");
	sh->depth++;
	sh->args = args;
	sh->nargs = nargs;
	sh->loops = 0;
	r = gsh_exec_text(sh, text);
	if (sh->ctl == CTL_RETURN) {
		sh->ctl = CTL_NONE;
		r = sh->status ? GSH_FALSE : GSH_OK;
		sh->status_set = true;
	} else if (sh->ctl == CTL_BREAK || sh->ctl == CTL_CONTINUE) {
		sh->ctl = CTL_NONE;
	}
	sh->args = saved_args;
	sh->nargs = saved_nargs;
	sh->loops = saved_loops;
	sh->depth--;
	return r;
}

static int
call_function(struct gsh *sh, const struct gsh_func *f, int argc, char **argv)
{
	/* The function may redefine itself while it runs. */
	char *body = gsh_strdup(f->body);
	int r = gsh_exec_scope(sh, body, argc - 1, argv + 1);

	free(body);
	return r;
}

/* A builtin, a function, NAME=VALUE, or GRUB's complaint. */
static int
dispatch(struct gsh *sh, int argc, char **argv)
{
	const char *eq = strchr(argv[0], '=');
	struct gsh_func *f;

	if (gsh_is_builtin(argv[0]))
		return gsh_command(sh, argc, argv);
	f = find_func(sh, argv[0]);
	if (f)
		return call_function(sh, f, argc, argv);
	if (eq && valid_name(argv[0], eq - argv[0])) {
		char *name = xstrndup(argv[0], eq - argv[0]);
		int r = gsh_set(sh, name, eq + 1);

		free(name);
		return r;
	}
	return gsh_command(sh, argc, argv);
}

static int
run_argv(struct gsh *sh, int argc, char **argv)
{
	int r;

	if (strcmp(argv[0], "!"))
		return dispatch(sh, argc, argv);
	/* "! CMD": CMD's status inverted; an error (already printed)
	 * counts as false, as in GRUB. */
	if (argc < 2)
		return gsh_error(sh, "no command is specified");
	r = dispatch(sh, argc - 1, argv + 1);
	if (r == GSH_OK)
		return GSH_FALSE;
	return r == GSH_FALSE || r == GSH_ERROR ? GSH_OK : r;
}

static int
run_words(struct gsh *sh, const char *text, const struct words *w)
{
	struct argv a = {0};
	int r;

	if (!step(sh))
		return GSH_ERROR;
	sh->status_set = false;
	r = expand(sh, text, w, &a);
	if (r == GSH_OK && a.n > 0)
		r = run_argv(sh, a.n, a.v);
	argv_free(&a);
	if (r == GSH_BOOTED || r == GSH_EXIT)
		stop(sh, r);
	/* return N, and a function that ended in one, set $? to N */
	if (sh->ctl != CTL_RETURN && !sh->status_set)
		sh->status = r == GSH_OK ? 0 : 1;
	sh->status_set = false;
	return r;
}

/* ---- the parser ---- */

enum perr {
	PE_NONE,
	PE_TOKEN, /* an unexpected token: skip its line, go on */
	PE_EOF,	  /* the text ends inside a command: more lines needed */
	PE_DEEP,  /* nested past GSH_MAX_NEST */
};

struct parser {
	struct gsh *sh; /* NULL when only checking the syntax */
	struct lexer lx;
	int nest;
	enum perr err;
	char msg[96];
};

static void __attribute__((format(printf, 3, 4)))
perr(struct parser *p, enum perr e, const char *fmt, ...)
{
	va_list ap;

	if (p->err)
		return;
	p->err = e;
	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
}

/* The error for token t where something else was needed. */
static void
unexpected(struct parser *p, enum tok t, const char *wanted)
{
	const struct lexer *lx = &p->lx;

	if (t == T_EOF)
		perr(p, PE_EOF, "missing '%s'", wanted);
	else if (t == T_BADQUOTE)
		perr(p, PE_EOF, "unterminated quote");
	else if (t == T_SEP)
		perr(p, PE_TOKEN, "missing '%s'", wanted);
	else
		perr(p, PE_TOKEN, "unexpected '%.*s'",
		     (int)(lx->end - lx->start > 32 ? 32 : lx->end - lx->start),
		     lx->s + lx->start);
}

static bool
expect(struct parser *p, const char *kw)
{
	enum tok t;

	if (p->err)
		return false;
	t = lex_next(&p->lx);
	if (t == T_WORD && tok_is(&p->lx, kw))
		return true;
	unexpected(p, t, kw);
	return false;
}

static int parse_command(struct parser *p, bool exec);

/*
 * Commands up to a keyword in stops (at a command's start), a '}' or the
 * end; none of those is consumed. The status of the last command run.
 */
static int
parse_list(struct parser *p, bool exec, unsigned stops)
{
	int r = GSH_OK;

	while (!p->err) {
		size_t save = p->lx.i;
		enum tok t = lex_next(&p->lx);
		unsigned k = t == T_WORD ? keyword(&p->lx) : 0;
		bool run;
		int c;

		if (t == T_SEP)
			continue;
		if (t == T_EOF || t == T_RBRACE || (k & stops)) {
			p->lx.i = save;
			break;
		}
		if (k & K_RESERVED) {
			unexpected(p, t, "");
			break;
		}
		p->lx.i = save;
		run = exec && p->sh->ctl == CTL_NONE;
		c = parse_command(p, run);
		if (run)
			r = c;
	}
	return r;
}

static int
parse_if(struct parser *p, bool exec)
{
	bool done = false;
	int r = GSH_OK;

	for (;;) { /* after "if" or "elif" */
		bool test = exec && !done, take;
		int c = parse_list(p, test, K_THEN), b;
		enum tok t;

		if (!expect(p, "then"))
			return GSH_ERROR;
		take = test && c == GSH_OK && p->sh->ctl == CTL_NONE;
		b = parse_list(p, take, K_ELIF | K_ELSE | K_FI);
		if (take) {
			r = b;
			done = true;
		}
		if (p->err)
			return GSH_ERROR;
		t = lex_next(&p->lx);
		if (t == T_WORD && tok_is(&p->lx, "elif"))
			continue;
		if (t == T_WORD && tok_is(&p->lx, "else")) {
			take = exec && !done;
			b = parse_list(p, take, K_FI);
			if (take)
				r = b;
			expect(p, "fi");
		} else if (!(t == T_WORD && tok_is(&p->lx, "fi"))) {
			unexpected(p, t, "fi");
		}
		return p->err ? GSH_ERROR : r;
	}
}

static int
parse_while(struct parser *p, bool exec, bool until)
{
	size_t start = p->lx.i;
	int r = GSH_OK;

	if (exec)
		p->sh->loops++;
	for (;;) {
		bool run = exec && p->sh->ctl == CTL_NONE, go;
		int c, b;

		p->lx.i = start;
		c = parse_list(p, run, K_DO);
		if (!expect(p, "do"))
			break;
		go = run && p->sh->ctl == CTL_NONE && (c == GSH_OK) != until &&
		     step(p->sh);
		b = parse_list(p, go, K_DONE);
		if (!expect(p, "done") || !go)
			break;
		r = b;
		if (!loop_next(p->sh))
			break;
	}
	if (exec)
		p->sh->loops--;
	return p->err ? GSH_ERROR : r;
}

/* for NAME in WORDS; do LIST; done */
static int
parse_for(struct parser *p, bool exec)
{
	struct words w = {0};
	struct argv vals = {0};
	char *name = NULL;
	size_t body;
	enum tok t;
	int r = GSH_OK;

	t = lex_next(&p->lx);
	if (t != T_WORD ||
	    !valid_name(p->lx.s + p->lx.start, p->lx.end - p->lx.start)) {
		unexpected(p, t, "a variable name");
		return GSH_ERROR;
	}
	name = xstrndup(p->lx.s + p->lx.start, p->lx.end - p->lx.start);
	if (!expect(p, "in"))
		goto out;
	while ((t = lex_next(&p->lx)) == T_WORD)
		words_add(&w, &p->lx);
	if (t != T_SEP) {
		unexpected(p, t, "do");
		goto out;
	}
	do {
		body = p->lx.i;
	} while (lex_next(&p->lx) == T_SEP);
	p->lx.i = body;
	if (!expect(p, "do"))
		goto out;
	if (exec && expand(p->sh, p->lx.s, &w, &vals) != GSH_OK) {
		r = GSH_ERROR;
		exec = false;
	}
	body = p->lx.i;
	if (exec)
		p->sh->loops++;
	for (int i = 0;; i++) {
		bool go = exec && i < vals.n && p->sh->ctl == CTL_NONE &&
			  step(p->sh) &&
			  gsh_set(p->sh, name, vals.v[i]) == GSH_OK;
		int b;

		p->lx.i = body;
		b = parse_list(p, go, K_DONE);
		if (!expect(p, "done") || !go)
			break;
		r = b;
		if (!loop_next(p->sh))
			break;
	}
	if (exec)
		p->sh->loops--;
out:
	free(name);
	free(w.v);
	argv_free(&vals);
	return p->err ? GSH_ERROR : r;
}

/* function NAME { ... }, menuentry ... { ... }, submenu ... { ... } */
static int
parse_define(struct parser *p, bool exec, unsigned k)
{
	struct words w = {0};
	struct argv a = {0};
	bool after_sep = false;
	size_t start, end;
	enum tok t;
	int r = GSH_OK;

	/* The keyword is the first word (argv[0]); the header may end its
	 * line, with the '{' on a later one. */
	while ((t = lex_next(&p->lx)) != T_LBRACE) {
		if (t == T_WORD && !after_sep) {
			words_add(&w, &p->lx);
		} else if (t == T_SEP) {
			after_sep = true;
		} else {
			unexpected(p, t, "{");
			goto out;
		}
	}
	t = lex_block(&p->lx, &start, &end);
	if (t != T_RBRACE) {
		perr(p, PE_EOF,
		     t == T_BADQUOTE ? "unterminated quote" : "missing '}'");
		goto out;
	}
	if (!exec)
		goto out;
	r = expand(p->sh, p->lx.s, &w, &a);
	if (r == GSH_OK) {
		char *body = xstrndup(p->lx.s + start, end - start);

		if (k == K_FUNCTION)
			r = define_func(p->sh, a.n, a.v, body);
		else
			r = gsh_add_entry(p->sh, k == K_SUBMENU, a.n, a.v,
					  body);
		free(body);
	}
out:
	free(w.v);
	argv_free(&a);
	return p->err ? GSH_ERROR : r;
}

static int
parse_simple(struct parser *p, bool exec)
{
	struct words w = {0};
	size_t start, end;
	int r = GSH_OK;

	for (;;) {
		size_t save = p->lx.i;
		enum tok t = lex_next(&p->lx);

		if (t == T_WORD) {
			words_add(&w, &p->lx);
			continue;
		}
		if (t == T_BADQUOTE) {
			perr(p, PE_EOF, "unterminated quote");
		} else if (t == T_LBRACE) {
			/* No block here: skip it whole. */
			if (lex_block(&p->lx, &start, &end) == T_RBRACE)
				perr(p, PE_TOKEN, "unexpected '{'");
			else
				perr(p, PE_EOF, "missing '}'");
		} else {
			/* The end and a '}' end the command for the caller. */
			if (t != T_SEP)
				p->lx.i = save;
			if (exec && w.n)
				r = run_words(p->sh, p->lx.s, &w);
		}
		break;
	}
	free(w.v);
	return p->err ? GSH_ERROR : r;
}

static int
parse_command(struct parser *p, bool exec)
{
	size_t save = p->lx.i;
	unsigned k = lex_next(&p->lx) == T_WORD ? keyword(&p->lx) : 0;
	int r;

	if (k & K_DEFINE) {
		p->lx.i = save;
		return parse_define(p, exec, k);
	}
	if (!(k & (K_IF | K_WHILE | K_UNTIL | K_FOR))) {
		p->lx.i = save;
		return parse_simple(p, exec);
	}
	if (++p->nest > GSH_MAX_NEST) {
		perr(p, PE_DEEP, "too deeply nested");
		r = GSH_ERROR;
	} else if (k == K_IF) {
		r = parse_if(p, exec);
	} else if (k == K_FOR) {
		r = parse_for(p, exec);
	} else {
		r = parse_while(p, exec, k == K_UNTIL);
	}
	p->nest--;
	return r;
}

/*
 * The next top-level command: checked for syntax, then run (if run) with
 * its status in *status; p->err says what was wrong. False at the end.
 */
static bool
next_command(struct parser *p, bool run, int *status)
{
	size_t start = p->lx.i;
	enum tok t;

	p->err = PE_NONE;
	do {
		start = p->lx.i;
		t = lex_next(&p->lx);
	} while (t == T_SEP);
	if (t == T_EOF)
		return false;
	if (t == T_RBRACE || (t == T_WORD && (keyword(&p->lx) & K_RESERVED))) {
		unexpected(p, t, "");
		return true;
	}
	p->lx.i = start;
	if (run) {
		struct parser check = {NULL, p->lx, 0, PE_NONE, ""};

		parse_command(&check, false);
		if (check.err) {
			*p = (struct parser){p->sh, check.lx, 0, check.err, ""};
			memcpy(p->msg, check.msg, sizeof(p->msg));
			return true;
		}
	}
	*status = parse_command(p, run);
	return true;
}

int
gsh_exec_text(struct gsh *sh, const char *text)
{
	struct parser p = {sh, {text, 0, 0, 0}, 0, PE_NONE, ""};
	int r = GSH_OK;

	while (sh->ctl == CTL_NONE && next_command(&p, true, &r)) {
		if (!p.err)
			continue;
		r = gsh_error(sh, "syntax error: %s", p.msg);
		if (p.err != PE_TOKEN)
			break;
		/* GRUB drops the broken command: go on at the next line. */
		p.lx.i += strcspn(text + p.lx.i, "\n");
	}
	return sh->ctl == CTL_STOP ? sh->stop_status : r;
}

bool
gsh_incomplete(const char *text)
{
	struct parser p = {NULL, {text, 0, 0, 0}, 0, PE_NONE, ""};
	int r;

	while (next_command(&p, false, &r)) {
		if (p.err == PE_EOF)
			return true;
		if (p.err)
			p.lx.i += strcspn(text + p.lx.i, "\n");
	}
	return false;
}
