/*
 * grub-bhyve's command shell: a small GRUB 2 script interpreter.
 *
 * Syntax: words separated by blanks; 'single' and "double" quotes;
 * backslash escapes; $VAR and ${VAR} expansion (not inside single quotes);
 * '#' comments; commands end at a newline or ';'. Blocks:
 *
 *   menuentry "TITLE" [--class C]... [--id I] { COMMANDS }
 *   submenu "TITLE" { MENUENTRIES }
 *   function NAME { COMMANDS }
 *
 * may span lines. NAME=VALUE alone is `set NAME=VALUE`.
 *
 * Commands: ls, cat, linux, initrd, multiboot, module, boot, set, unset,
 * echo, configfile, source, search, insmod (and other display and module
 * commands: accepted, nothing to do), help, exit (also quit, reboot, halt).
 *
 * Menus: a config file (grub.cfg, configfile) that defines entries ends in
 * its menu: the entries are listed and, after $timeout seconds (at once
 * when 0 or when the input is not a terminal; never on a terminal when
 * unset), entry $default (a number or a title) runs. An entry that loaded
 * a kernel without errors boots it, as GRUB does.
 *
 * Errors print one GRUB-style line on the output and the shell goes on:
 *   error: file '/x' not found.
 *   error: can't find command 'foo'.
 */
#ifndef GRUB_SHELL_H
#define GRUB_SHELL_H

#include <stdbool.h>
#include <stdio.h>

#include "grub_dev.h"
#include "vmm.h"

enum gsh_status {
	GSH_ERROR = -1, /* a command failed (its error line is printed) */
	GSH_OK = 0,
	GSH_BOOTED = 1, /* boot worked: vCPU 0 holds the kernel's entry */
	GSH_EXIT = 2,	/* exit, reboot or halt: leave without booting */
	GSH_EOF = 3,	/* the input ended without a boot */
};

struct gsh_config {
	struct vmctx *ctx;
	const struct gdev_map *map;
	const char *root;	/* -r: the root device ("host" if NULL) */
	const char *cfg_dir;	/* -d: where grub.cfg is (/boot/grub) */
	const char *cfg_name;	/* -g: its name (grub.cfg) */
	bool no_console_insert; /* -n: no "console=ttyS0" for Linux */
	bool no_vga_info;	/* -e: no 80x25 screen info for Linux */
	int in_fd;		/* commands and menu choices */
	FILE *out;		/* prompts, listings and error lines */
	bool interactive;	/* in_fd is a terminal */
};

struct gsh;

struct gsh *gsh_create(const struct gsh_config *c);
void gsh_free(struct gsh *sh);

/* The loader's life: the root's grub.cfg if any, then the command line. */
int gsh_main(struct gsh *sh);

/* Run commands from the input until boot, exit or its end. */
int gsh_repl(struct gsh *sh);

/* Run a script; its menu entries join the current menu. */
int gsh_exec(struct gsh *sh, const char *script);

/* Run a config file's text in a new menu, then that menu. */
int gsh_run_config(struct gsh *sh, const char *script);

/* An unclosed quote or block: more lines are needed. */
bool gsh_incomplete(const char *text);

const char *gsh_get(struct gsh *sh, const char *name);
int gsh_set(struct gsh *sh, const char *name, const char *value);

/* The current menu, and the loaded kernel's command line (or NULL). */
int gsh_menu_size(struct gsh *sh);
const char *gsh_menu_title(struct gsh *sh, int i);
const char *gsh_kernel_cmdline(struct gsh *sh);

#endif
