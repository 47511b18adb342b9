/*
 * grub-bhyve's command shell: a GRUB 2 script interpreter, enough of it to
 * run what Debian's and Ubuntu's grub-mkconfig write.
 *
 * Syntax (GRUB manual, "Shell-like scripting"): words separated by blanks;
 * 'single' and "double" quotes; backslash escapes; $VAR and ${VAR}
 * expansion (an unquoted expansion splits into words at blanks; an empty
 * one is no word at all); $1..., $#, $*, $@, $?; '#' comments; commands
 * end at a newline or ';'. Compound commands:
 *
 *   if LIST; then LIST; [elif LIST; then LIST;]... [else LIST;] fi
 *   while LIST; do LIST; done         until LIST; do LIST; done
 *   for NAME in WORDS; do LIST; done
 *   function NAME { COMMANDS }        (called as NAME ARGS: $1...)
 *   menuentry "TITLE" [--class C]... [--id I] [ARGS] { COMMANDS }
 *   submenu "TITLE" ... { MENUENTRIES }
 *
 * '! CMD' inverts CMD's status; NAME=VALUE alone is `set NAME=VALUE`.
 * Builtins are listed by `help` (grub_cmds.c); [ ... ] and test are
 * GRUB's test command (-n -z = != < > -eq ... -d -e -f -s ! -a -o ( )).
 *
 * Menus: a config file (grub.cfg, configfile) that defines entries ends in
 * its menu: the entries are listed and, after $timeout seconds (at once
 * when 0 or when the input is not a terminal; never on a terminal when
 * unset or -1), entry $default runs: a number, an --id or a title, with
 * '>' for an entry inside a submenu ("1>2", "gnulinux-advanced-ID>..."),
 * "saved" for $saved_entry. $timeout_style hidden or countdown shows the
 * list only when a line is typed before the timeout. An entry that loaded
 * a kernel without errors boots it, as GRUB does; if it did not, the
 * entries in $fallback are tried.
 *
 * Variables live in contexts: configfile and submenu start a new one with
 * the exported variables only (export NAME), as GRUB does.
 *
 * Every script byte is hostile: nesting, variables, words, output and the
 * number of commands a run may execute are bounded (grub_shell_int.h);
 * past a bound a command fails with one error line.
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
	GSH_FALSE = 4,	/* a test was false (no error line): $? is 1 */
};

/*
 * A test seam: when set, the loader commands (linux, linux16, initrd,
 * initrd16, multiboot, module, boot) call it with their arguments and the
 * current root instead of reading files; it returns GSH_OK or GSH_ERROR
 * (after printing its own error line). A hooked linux or multiboot counts
 * as loaded, so an entry "boots" through the hook's boot call.
 */
typedef int (*gsh_load_hook)(void *arg, const char *root, int argc,
			     char **argv);

struct gsh_config {
	struct vmctx *ctx;
	const struct gdev_map *map;
	const char *root;	 /* -r: the root device ("host" if NULL) */
	const char *cfg_dir;	 /* -d: where grub.cfg is on the root (default:
				    the first of /boot/grub, /grub and
				    /boot/grub2 that holds one) */
	const char *cfg_name;	 /* -g: its name (grub.cfg) */
	bool no_console_insert;	 /* -n: no "console=ttyS0" for Linux */
	bool no_vga_info;	 /* -e: no 80x25 screen info for Linux */
	int in_fd;		 /* commands and menu choices */
	FILE *out;		 /* prompts, listings and error lines */
	bool interactive;	 /* in_fd is a terminal */
	gsh_load_hook load_hook; /* tests and fuzzing: see above */
	void *hook_arg;
};

struct gsh;

struct gsh *gsh_create(const struct gsh_config *c);
void gsh_free(struct gsh *sh);

/* The loader's life: the root's grub.cfg if any, then the command line. */
int gsh_main(struct gsh *sh);

/* Run commands from the input until boot, exit or its end. */
int gsh_repl(struct gsh *sh);

/* Run a script; its menu entries join the current menu. Its status. */
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
const char *gsh_menu_id(struct gsh *sh, int i);
bool gsh_menu_is_submenu(struct gsh *sh, int i);
const char *gsh_kernel_cmdline(struct gsh *sh);

#endif
