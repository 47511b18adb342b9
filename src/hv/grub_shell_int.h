/*
 * Internals shared by the script interpreter (grub_shell.c) and the
 * commands (grub_cmds.c).
 */
#ifndef GRUB_SHELL_INT_H
#define GRUB_SHELL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "grub_shell.h"
#include "linux_boot.h"

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

struct gsh_var {
	char *name, *value;
};

struct gsh_entry {
	char *title;
	char *body; /* the commands between the braces, unexpanded */
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
};

/* Buffered input with timeouts (menus wait on it). */
struct gsh_reader {
	int fd;
	char buf[4096];
	size_t len;
	bool eof;
};

struct gsh {
	struct gsh_config cfg;
	struct gsh_var *vars;
	int nvars, capvars;
	struct gsh_func *funcs;
	int nfuncs, capfuncs;
	struct gsh_menu top;
	struct gsh_menu *menu; /* where menuentry adds */
	int errors;	       /* failed commands so far */
	int depth;	       /* configfile/source/function nesting */
	struct gsh_loaded loaded;
	struct gsh_reader in;
};

/* Print "error: MSG." and count it; returns GSH_ERROR. */
int gsh_error(struct gsh *sh, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The command named argv[0]; GSH_ERROR with its error line when unknown. */
int gsh_command(struct gsh *sh, int argc, char **argv);

/* Is this a builtin command? */
bool gsh_is_builtin(const char *name);

/* Boot what is loaded. */
int gsh_boot(struct gsh *sh);

/* Read a file through the devices (at most the guest's memory size). */
int gsh_read_file(struct gsh *sh, const char *name, uint8_t **data, size_t *len,
		  char *err, size_t errlen);

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
