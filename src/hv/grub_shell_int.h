/*
 * Internals shared by the menus and life cycle (grub_shell.c), the script
 * interpreter (grub_script.c) and the commands (grub_cmds.c).
 */
#ifndef GRUB_SHELL_INT_H
#define GRUB_SHELL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "grub_shell.h"
#include "linux_boot.h"

/*
 * Bounds on what a script may make the loader do. Every script byte is
 * hostile (a grub.cfg comes from the guest's disk): past a bound a
 * command fails with one error line, and the run budgets (commands,
 * output) stop or silence the rest of a run.
 */
#define GSH_MAX_DEPTH 16	     /* function/source/configfile/submenu */
#define GSH_MAX_NEST 32		     /* if/while/for/test ( ) in one text */
#define GSH_MAX_VARS 1024	     /* variables in one context */
#define GSH_MAX_VALUE (64 * 1024)    /* one variable's value */
#define GSH_MAX_ENV (1024 * 1024)    /* all values of one context */
#define GSH_MAX_ARGS 4096	     /* words of one command */
#define GSH_MAX_LINE (256 * 1024)    /* one command's expanded words */
#define GSH_MAX_FUNCS 256	     /* function definitions */
#define GSH_MAX_ENTRIES 256	     /* menu entries in one menu */
#define GSH_MAX_STEPS 20000	     /* commands and loop turns per run */
#define GSH_STEPS_FILE 10	     /* what a file access costs of them */
#define GSH_STEPS_PROBE 100	     /* what probing every device costs */
#define GSH_MAX_OUTPUT (1024 * 1024) /* bytes printed per run */
#define GSH_MAX_SCRIPT (1024 * 1024) /* grub.cfg, configfile, source */
#define GSH_MAX_TYPED (64 * 1024)    /* an unfinished block at grub> */

_Static_assert(GSH_MAX_VALUE <= GSH_MAX_ENV,
	       "a context holds at least one value of the largest size");
_Static_assert(GSH_MAX_VALUE <= GSH_MAX_LINE,
	       "a variable's value fits one command line");

/* A growing string. */
struct sbuf {
	char *s;
	size_t n, cap;
};

void sb_putc(struct sbuf *b, char c);
void sb_puts(struct sbuf *b, const char *s);
void sb_putn(struct sbuf *b, const char *s, size_t n);
void sb_reset(struct sbuf *b);
void sb_free(struct sbuf *b);
/* The string so far ("" when empty); stays owned by b. */
const char *sb_str(struct sbuf *b);

char *gsh_strdup(const char *s);
/* Grow an array of n elements of size sz to hold one more. */
void *gsh_grow(void *v, int n, int *cap, size_t sz);

struct gsh_var {
	char *name, *value;
	bool exported;
};

/*
 * A variable context. configfile and submenus open a new one that starts
 * with copies of the exported variables and is dropped on return (GRUB's
 * grub_env_context_open/close).
 */
struct gsh_env {
	struct gsh_var *v;
	int n, cap;
	size_t bytes; /* sum of the values' lengths */
	struct gsh_env *up;
};

struct gsh_entry {
	char *title;
	char *id;    /* --id, or NULL */
	char *body;  /* the commands between the braces, unexpanded */
	char **args; /* the title and the other arguments: $1, $2, ... */
	int nargs;
	bool submenu;
};

struct gsh_menu {
	struct gsh_entry *v;
	int n, cap;
};

struct gsh_func {
	char *name, *body;
};

/* A file opened for the kernel: an initrd or a module. */
struct gsh_blob {
	struct load_file file;
	char *cmdline; /* modules only */
};

enum gsh_kind {
	GSH_NONE,
	GSH_LINUX,
	GSH_MULTIBOOT,
};

struct gsh_loaded {
	enum gsh_kind kind;
	struct load_file image; /* Linux: its head; multiboot: all of it */
	char *cmdline;
	struct linux_kernel lk;
	struct gsh_blob *extra; /* initrds (Linux) or modules (multiboot) */
	int nextra;
	bool broken; /* an initrd or module failed after the kernel loaded */
};

/* Buffered input with timeouts (menus wait on it). */
struct gsh_reader {
	int fd;
	char buf[4096];
	size_t len;
	bool eof;
};

/* What stops the commands that follow (return, break, ...). */
enum gsh_ctl {
	CTL_NONE,
	CTL_BREAK,
	CTL_CONTINUE,
	CTL_RETURN,
	CTL_STOP, /* boot, exit, or a run budget spent: stop everything */
};

struct gsh {
	struct gsh_config cfg;
	FILE *out; /* cfg.out through the output budget */
	struct gsh_env *env;
	struct gsh_func *funcs;
	int nfuncs, capfuncs;
	struct gsh_menu top;
	struct gsh_menu *menu; /* where menuentry adds */
	int errors;	       /* failed commands so far */
	int depth;	       /* function/source/configfile/submenu nesting */
	struct gsh_loaded loaded;
	struct gsh_reader in;

	/* The interpreter's state. */
	int status;	 /* $? */
	bool status_set; /* a function's return set $? itself */
	bool quiet_menu; /* the next menu opened by itself: no list */
	char **args;	 /* $1 ... of the running function or entry */
	int nargs;
	int loops; /* loops around the running command */
	enum gsh_ctl ctl;
	int ctl_n;	 /* break/continue: loops still to leave */
	int stop_status; /* CTL_STOP: what the run returns */
	long steps_left; /* this run's command budget */
	size_t out_left; /* this run's output budget */
	bool out_cut;	 /* the output budget ran out */
};

/* Print "error: MSG." and count it; returns GSH_ERROR. */
int gsh_error(struct gsh *sh, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- grub_script.c: the interpreter ---- */

/* Run a script's text in the current context and menu; its status. */
int gsh_exec_text(struct gsh *sh, const char *text);

/* Run a function or a menu entry's body with $1... = args. */
int gsh_exec_scope(struct gsh *sh, const char *text, int nargs, char **args);

/* Start a run's budgets (commands and output) afresh. */
void gsh_budget_reset(struct gsh *sh);

/* Take n more steps from the run's budget (file access, probing). */
void gsh_charge(struct gsh *sh, long n);

/* Variables: set (checked against the bounds), export, remove. */
int gsh_export(struct gsh *sh, const char *name);
void gsh_unset(struct gsh *sh, const char *name);
void gsh_env_open(struct gsh *sh);
void gsh_env_close(struct gsh *sh);
void gsh_env_free(struct gsh_env *e);

/* Interpreter builtins (in the command table): return, break, ... */
int gsh_cmd_return(struct gsh *sh, int argc, char **argv);
int gsh_cmd_break(struct gsh *sh, int argc, char **argv);
int gsh_cmd_shift(struct gsh *sh, int argc, char **argv);
int gsh_cmd_export(struct gsh *sh, int argc, char **argv);

/* ---- grub_shell.c: menus ---- */

/* A menuentry or submenu command: add it to the current menu. */
int gsh_add_entry(struct gsh *sh, bool submenu, int argc, char **argv,
		  const char *body);

/* A config file's text in a new menu (and a new context if asked). */
int gsh_config_menu(struct gsh *sh, const char *text, bool new_env);

/* ---- grub_cmds.c: the commands ---- */

/*
 * The builtin named argv[0], else (once the interpreter found no function
 * and no NAME=VALUE) a no-op for the names grub-mkconfig's scripts define
 * as functions, else GSH_ERROR with GRUB's "can't find command" line.
 */
int gsh_command(struct gsh *sh, int argc, char **argv);

/* test and [ (grub_cmd_test.c), search (grub_cmd_search.c). */
int gsh_cmd_test(struct gsh *sh, int argc, char **argv);
int gsh_cmd_search(struct gsh *sh, int argc, char **argv);

/* Is this a builtin command? */
bool gsh_is_builtin(const char *name);

/* Boot what is loaded. */
int gsh_boot(struct gsh *sh);

/* Read a file through the devices (at most max bytes). */
int gsh_read_file(struct gsh *sh, const char *name, uint64_t max,
		  uint8_t **data, size_t *len, char *err, size_t errlen);

/* A script file's text, NUL terminated (NULL after its error line). */
char *gsh_read_script(struct gsh *sh, const char *name);

/*
 * Open a file through the devices (at most the guest's memory size) with
 * its first head_max bytes read (SIZE_MAX: all of it).
 */
int gsh_open_file(struct gsh *sh, const char *name, size_t head_max,
		  struct load_file *f, char *err, size_t errlen);

void gsh_unload(struct gsh *sh);

/* The current root device, without parentheses. */
const char *gsh_root(struct gsh *sh);

#endif
