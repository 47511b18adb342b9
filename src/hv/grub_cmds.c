/*
 * grub-bhyve's commands (the interpreter is grub_shell.c). Each takes
 * argc/argv as GRUB passes them, argv[0] the command's name, and returns a
 * gsh_status; failures print one GRUB-style error line.
 */
#include <stdlib.h>
#include <string.h>

#include "grub_shell_int.h"
#include "linux_boot.h"
#include "multiboot.h"

#define ERRLEN (GDEV_PATH_MAX + 512)
#define LOADER_NAME "grub-bhyve"
#define COM0_CONS "console=ttyS0" /* grub2-bhyve's insertion */

typedef int (*cmd_fn)(struct gsh *sh, int argc, char **argv);

static uint64_t
guest_mem(struct gsh *sh)
{
	return vm_get_lowmem_size(sh->cfg.ctx) +
	       vm_get_highmem_size(sh->cfg.ctx);
}

int
gsh_open_file(struct gsh *sh, const char *name, size_t head_max,
	      struct load_file *f, char *err, size_t errlen)
{
	gsh_charge(sh, GSH_STEPS_FILE);
	return gdev_open(sh->cfg.map, gsh_root(sh), name, guest_mem(sh),
			 head_max, f, err, errlen);
}

int
gsh_read_file(struct gsh *sh, const char *name, uint64_t max, uint8_t **data,
	      size_t *len, char *err, size_t errlen)
{
	gsh_charge(sh, GSH_STEPS_FILE);
	return gdev_read(sh->cfg.map, gsh_root(sh), name, max, data, len, err,
			 errlen);
}

static void
free_blobs(struct gsh_blob *v, int n)
{
	for (int i = 0; i < n; i++) {
		load_file_close(&v[i].file);
		free(v[i].cmdline);
	}
	free(v);
}

void
gsh_unload(struct gsh *sh)
{
	struct gsh_loaded *l = &sh->loaded;

	load_file_close(&l->image);
	free(l->cmdline);
	free_blobs(l->extra, l->nextra);
	*l = (struct gsh_loaded){.image = {.fd = -1}};
}

const char *
gsh_kernel_cmdline(struct gsh *sh)
{
	return sh->loaded.kind == GSH_NONE ? NULL : sh->loaded.cmdline;
}

/* Words joined by spaces; a word with blanks in double quotes (GRUB). */
static void
join_args(struct sbuf *b, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		bool quote = strpbrk(argv[i], " \t") && !strchr(argv[i], '"');

		if (b->n)
			sb_putc(b, ' ');
		if (quote)
			sb_putc(b, '"');
		sb_puts(b, argv[i]);
		if (quote)
			sb_putc(b, '"');
	}
}

/*
 * grub2-bhyve: "console=ttyS0 " goes first unless -n or an argument
 * already starts with it; then BOOT_IMAGE=PATH and the arguments.
 */
static char *
linux_cmdline(struct gsh *sh, int argc, char **argv)
{
	struct sbuf b = {0};
	bool cons = sh->cfg.no_console_insert;

	for (int i = 2; i < argc; i++)
		if (!strncmp(argv[i], COM0_CONS, strlen(COM0_CONS)))
			cons = true;
	if (!cons)
		sb_puts(&b, COM0_CONS " ");
	sb_puts(&b, "BOOT_IMAGE=");
	sb_puts(&b, argv[1]);
	join_args(&b, argc - 2, argv + 2);
	return b.s;
}

/* The test seam (grub_shell.h): the hook instead of the files. */
static int
hooked(struct gsh *sh, int argc, char **argv, enum gsh_kind kind)
{
	int r = sh->cfg.load_hook(sh->cfg.hook_arg, gsh_root(sh), argc, argv);

	if (r == GSH_OK)
		sh->loaded.kind = kind;
	else if (sh->loaded.kind != GSH_NONE)
		sh->loaded.broken = true;
	return r == GSH_OK ? GSH_OK : GSH_ERROR;
}

static int
cmd_linux(struct gsh *sh, int argc, char **argv)
{
	char err[ERRLEN];
	struct linux_layout l;
	struct gsh_loaded *ld = &sh->loaded;

	if (argc < 2)
		return gsh_error(sh, "filename expected");
	gsh_unload(sh);
	if (sh->cfg.load_hook)
		return hooked(sh, argc, argv, GSH_LINUX);
	/* Headers now; the kernel itself goes to guest memory at boot. */
	if (gsh_open_file(sh, argv[1], LOAD_FILE_HEAD, &ld->image, err,
			  sizeof(err)) < 0)
		return gsh_error(sh, "%s", err);
	ld->cmdline = linux_cmdline(sh, argc, argv);
	if (linux_parse(&ld->image, &ld->lk, err, sizeof(err)) < 0 ||
	    linux_check_cmdline(&ld->lk, ld->cmdline, err, sizeof(err)) < 0 ||
	    linux_place(&ld->lk, vm_get_lowmem_size(sh->cfg.ctx), 0, &l, err,
			sizeof(err)) < 0) {
		gsh_unload(sh);
		return gsh_error(sh, "%s: %s", argv[1], err);
	}
	ld->kind = GSH_LINUX;
	return GSH_OK;
}

static int
cmd_initrd(struct gsh *sh, int argc, char **argv)
{
	struct gsh_loaded *ld = &sh->loaded;
	struct load_file *v;
	struct gsh_blob *b;
	struct linux_layout l;
	char err[ERRLEN];
	int r = GSH_OK;

	if (argc < 2)
		return gsh_error(sh, "filename expected");
	if (ld->kind != GSH_LINUX)
		return gsh_error(sh, "you need to load the kernel first");
	if (sh->cfg.load_hook)
		return hooked(sh, argc, argv, GSH_LINUX);
	b = calloc(argc, sizeof(*b));
	v = calloc(argc, sizeof(*v));
	if (!b || !v)
		abort();
	for (int i = 0; i < argc - 1; i++)
		b[i].file.fd = -1;
	/* Opened now (a missing file is an error here, as in GRUB), read
	 * into guest memory at boot. */
	for (int i = 1; i < argc && r == GSH_OK; i++) {
		if (gsh_open_file(sh, argv[i], 0, &b[i - 1].file, err,
				  sizeof(err)) < 0)
			r = gsh_error(sh, "%s", err);
		v[i - 1] = b[i - 1].file;
	}
	if (r == GSH_OK && linux_place(&ld->lk, vm_get_lowmem_size(sh->cfg.ctx),
				       linux_initrd_size(v, argc - 1), &l, err,
				       sizeof(err)) < 0)
		r = gsh_error(sh, "%s", err);
	free(v);
	if (r != GSH_OK) {
		free_blobs(b, argc - 1);
		ld->broken = true;
		return r;
	}
	free_blobs(ld->extra, ld->nextra);
	ld->extra = b;
	ld->nextra = argc - 1;
	return GSH_OK;
}

static int
cmd_multiboot(struct gsh *sh, int argc, char **argv)
{
	struct gsh_loaded *ld = &sh->loaded;
	struct sbuf cl = {0};
	char err[ERRLEN];
	struct load_file f;

	if (argc < 2)
		return gsh_error(sh, "filename expected");
	gsh_unload(sh);
	if (sh->cfg.load_hook)
		return hooked(sh, argc, argv, GSH_MULTIBOOT);
	if (gsh_open_file(sh, argv[1], SIZE_MAX, &f, err, sizeof(err)) < 0)
		return gsh_error(sh, "%s", err);
	if (mb_check(sh->cfg.ctx, f.head, f.head_len, err, sizeof(err)) < 0) {
		load_file_close(&f);
		return gsh_error(sh, "%s: %s", argv[1], err);
	}
	/* GRUB 2 passes the kernel's file name as the first word. */
	join_args(&cl, argc - 1, argv + 1);
	*ld = (struct gsh_loaded){GSH_MULTIBOOT, f, cl.s};
	return GSH_OK;
}

static int
cmd_module(struct gsh *sh, int argc, char **argv)
{
	struct gsh_loaded *ld = &sh->loaded;
	struct gsh_blob b = {.file = {.fd = -1}};
	struct sbuf cl = {0};
	char err[ERRLEN];

	if (argc > 1 && !strcmp(argv[1], "--nounzip")) {
		argc--;
		argv++;
	}
	if (argc < 2)
		return gsh_error(sh, "filename expected");
	if (ld->kind != GSH_MULTIBOOT)
		return gsh_error(sh, "you need to load the kernel first");
	if (sh->cfg.load_hook)
		return hooked(sh, argc, argv, GSH_MULTIBOOT);
	if (ld->nextra == MB_MAX_MODS) {
		ld->broken = true;
		return gsh_error(sh, "too many modules (at most %d)",
				 MB_MAX_MODS);
	}
	if (gsh_open_file(sh, argv[1], SIZE_MAX, &b.file, err, sizeof(err)) <
	    0) {
		ld->broken = true;
		return gsh_error(sh, "%s", err);
	}
	join_args(&cl, argc - 1, argv + 1);
	b.cmdline = cl.s;
	ld->extra = realloc(ld->extra, (ld->nextra + 1) * sizeof(*ld->extra));
	if (!ld->extra)
		abort();
	ld->extra[ld->nextra++] = b;
	return GSH_OK;
}

static int
boot_linux(struct gsh *sh, char *err, size_t errlen)
{
	struct gsh_loaded *ld = &sh->loaded;
	struct load_file v[ld->nextra + 1];
	struct linux_boot_args a = {
	    .image = ld->image,
	    .cmdline = ld->cmdline,
	    .initrds = v,
	    .ninitrds = ld->nextra,
	    .no_vga_info = sh->cfg.no_vga_info,
	};

	for (int i = 0; i < ld->nextra; i++)
		v[i] = ld->extra[i].file;
	return linux_boot(sh->cfg.ctx, &a, NULL, err, errlen);
}

static int
boot_multiboot(struct gsh *sh, char *err, size_t errlen)
{
	struct gsh_loaded *ld = &sh->loaded;
	struct mb_module v[ld->nextra + 1];
	struct mb_boot_args a = {
	    .image = ld->image.head,
	    .len = ld->image.head_len,
	    .cmdline = ld->cmdline,
	    .mods = v,
	    .nmods = ld->nextra,
	    .loader_name = LOADER_NAME,
	};

	for (int i = 0; i < ld->nextra; i++)
		v[i] = (struct mb_module){ld->extra[i].file.head,
					  ld->extra[i].file.head_len,
					  ld->extra[i].cmdline};
	return mb_boot(sh->cfg.ctx, &a, NULL, err, errlen);
}

int
gsh_boot(struct gsh *sh)
{
	char err[ERRLEN], *boot[] = {"boot", NULL};
	int r;

	if (sh->cfg.load_hook && sh->loaded.kind != GSH_NONE) {
		r = sh->cfg.load_hook(sh->cfg.hook_arg, gsh_root(sh), 1, boot);
		return r == GSH_OK ? GSH_BOOTED : r;
	}
	switch (sh->loaded.kind) {
	case GSH_LINUX:
		r = boot_linux(sh, err, sizeof(err));
		break;
	case GSH_MULTIBOOT:
		r = boot_multiboot(sh, err, sizeof(err));
		break;
	default:
		return gsh_error(sh, "you need to load the kernel first");
	}
	return r < 0 ? gsh_error(sh, "%s", err) : GSH_BOOTED;
}

static int
cmd_boot(struct gsh *sh, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return gsh_boot(sh);
}

static int
cmd_set(struct gsh *sh, int argc, char **argv)
{
	int r = GSH_OK;

	if (argc == 1) {
		for (int i = 0; i < sh->env->n; i++)
			fprintf(sh->out, "%s=%s\n", sh->env->v[i].name,
				sh->env->v[i].value);
		return GSH_OK;
	}
	for (int i = 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (eq)
			*eq = '\0';
		if (gsh_set(sh, argv[i], eq ? eq + 1 : "") != GSH_OK)
			r = GSH_ERROR;
	}
	return r;
}

static int
cmd_unset(struct gsh *sh, int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		gsh_unset(sh, argv[i]);
	return GSH_OK;
}

static void
echo_escaped(FILE *out, const char *s, bool *stop)
{
	for (; *s && !*stop; s++) {
		if (*s != '\\' || !s[1]) {
			fputc(*s, out);
			continue;
		}
		switch (*++s) {
		case 'n':
			fputc('\n', out);
			break;
		case 't':
			fputc('\t', out);
			break;
		case 'a':
			fputc('\a', out);
			break;
		case 'e':
			fputc('\033', out);
			break;
		case 'c':
			*stop = true;
			break;
		default:
			fputc(*s, out);
		}
	}
}

static int
cmd_echo(struct gsh *sh, int argc, char **argv)
{
	bool newline = true, escapes = false, stop = false;
	int i = 1;

	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (strspn(argv[i] + 1, "ne") != strlen(argv[i] + 1))
			break;
		newline &= !strchr(argv[i], 'n');
		escapes |= strchr(argv[i], 'e') != NULL;
	}
	for (int first = i; i < argc && !stop; i++) {
		if (i > first)
			fputc(' ', sh->out);
		if (escapes)
			echo_escaped(sh->out, argv[i], &stop);
		else
			fputs(argv[i], sh->out);
	}
	if (newline && !stop)
		fputc('\n', sh->out);
	return GSH_OK;
}

char *
gsh_read_script(struct gsh *sh, const char *name)
{
	char err[ERRLEN];
	uint8_t *data;
	size_t len;
	char *text;

	if (gsh_read_file(sh, name, GSH_MAX_SCRIPT, &data, &len, err,
			  sizeof(err)) < 0) {
		gsh_error(sh, "%s", err);
		return NULL;
	}
	text = strndup((char *)data, len);
	free(data);
	if (!text)
		abort();
	return text;
}

/* configfile: a new context and menu (GRUB's normal/main.c). */
static int
cmd_configfile(struct gsh *sh, int argc, char **argv)
{
	char *text;
	int r;

	if (argc != 2)
		return gsh_error(sh, "filename expected");
	text = gsh_read_script(sh, argv[1]);
	if (!text)
		return GSH_ERROR;
	r = gsh_config_menu(sh, text, true);
	free(text);
	return r;
}

/* source: this context, this menu; $1... are its arguments. */
static int
cmd_source(struct gsh *sh, int argc, char **argv)
{
	char *text;
	int r;

	if (argc < 2)
		return gsh_error(sh, "filename expected");
	text = gsh_read_script(sh, argv[1]);
	if (!text)
		return GSH_ERROR;
	r = gsh_exec_scope(sh, text, argc - 2, argv + 2);
	free(text);
	return r;
}

static int
cmd_cat(struct gsh *sh, int argc, char **argv)
{
	char err[ERRLEN];
	uint8_t *data;
	size_t len;

	if (argc != 2)
		return gsh_error(sh, "filename expected");
	if (gsh_read_file(sh, argv[1], guest_mem(sh), &data, &len, err,
			  sizeof(err)) < 0)
		return gsh_error(sh, "%s", err);
	fwrite(data, 1, len, sh->out);
	if (len && data[len - 1] != '\n')
		fputc('\n', sh->out);
	free(data);
	return GSH_OK;
}

static int
cmd_ls(struct gsh *sh, int argc, char **argv)
{
	bool all = false, long_fmt = false;
	char err[ERRLEN];
	int i = 1, r = GSH_OK;

	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (strspn(argv[i] + 1, "lah") != strlen(argv[i] + 1))
			return gsh_error(sh, "unknown argument '%s'", argv[i]);
		all |= strchr(argv[i], 'a') != NULL;
		long_fmt |= strchr(argv[i], 'l') != NULL;
	}
	gsh_charge(sh, GSH_STEPS_PROBE);
	if (i == argc)
		return gdev_ls(sh->cfg.map, gsh_root(sh), NULL, all, long_fmt,
			       sh->out, err, sizeof(err));
	for (; i < argc; i++)
		if (gdev_ls(sh->cfg.map, gsh_root(sh), argv[i], all, long_fmt,
			    sh->out, err, sizeof(err)) < 0)
			r = gsh_error(sh, "%s", err);
	return r;
}

/*
 * A grubenv file (GRUB's lib/envblk.c): "# GRUB Environment Block", then
 * NAME=VALUE lines ('\' escapes the next character), '#' padding.
 */
static int
load_envblk(struct gsh *sh, const char *text, size_t len, int nwanted,
	    char **wanted)
{
	static const char sig[] = "# GRUB Environment Block\n";
	const char *p = text + strlen(sig), *end = text + len;
	struct sbuf name = {0}, value = {0};
	int r = GSH_OK;

	if (len < strlen(sig) || memcmp(text, sig, strlen(sig)))
		return gsh_error(sh, "invalid environment block");
	while (p < end) {
		bool want = nwanted == 0;
		const char *eq;

		if (*p == '#' || *p == '\n' ||
		    !(eq = memchr(p, '=', end - p)) ||
		    memchr(p, '\n', eq - p)) {
			const char *nl = memchr(p, '\n', end - p);

			p = nl ? nl + 1 : end;
			continue;
		}
		sb_reset(&name);
		sb_putn(&name, p, eq - p);
		sb_reset(&value);
		sb_putn(&value, "", 0);
		/* The value: to an unescaped newline. */
		for (p = eq + 1; p < end && *p != '\n'; p++)
			sb_putc(&value, *p == '\\' && p + 1 < end ? *++p : *p);
		p++;
		for (int i = 0; i < nwanted; i++)
			want |= !strcmp(wanted[i], name.s);
		if (want && gsh_set(sh, name.s, value.s) != GSH_OK)
			r = GSH_ERROR;
	}
	sb_free(&name);
	sb_free(&value);
	return r;
}

/* load_env [-f FILE] [--skip-sig] [NAME...]: $prefix/grubenv by default. */
static int
cmd_load_env(struct gsh *sh, int argc, char **argv)
{
	const char *file = NULL, *prefix = gsh_get(sh, "prefix");
	struct sbuf path = {0};
	char err[ERRLEN];
	uint8_t *data;
	size_t len;
	int i = 1, r;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if ((!strcmp(argv[i], "-f") || !strcmp(argv[i], "--file")) &&
		    i + 1 < argc)
			file = argv[++i];
		else if (!strncmp(argv[i], "--file=", 7))
			file = argv[i] + 7;
		else if (strcmp(argv[i], "-s") && strcmp(argv[i], "--skip-sig"))
			return gsh_error(sh, "unknown argument '%s'", argv[i]);
	}
	if (!file) {
		sb_puts(&path, prefix ? prefix : "");
		sb_puts(&path, "/grubenv");
		file = path.s;
	}
	r = gsh_read_file(sh, file, 64 * 1024, &data, &len, err, sizeof(err));
	sb_free(&path);
	if (r < 0)
		return gsh_error(sh, "%s", err);
	r = load_envblk(sh, (char *)data, len, argc - i, argv + i);
	free(data);
	return r;
}

static int
cmd_exit(struct gsh *sh, int argc, char **argv)
{
	(void)sh;
	(void)argc;
	(void)argv;
	return GSH_EXIT;
}

/* Module loading, display and terminal set-up, sleep: nothing to do. */
static int
cmd_nop(struct gsh *sh, int argc, char **argv)
{
	(void)sh;
	(void)argc;
	(void)argv;
	return GSH_OK;
}

/* false, keystatus (no key is down), hwmatch (nothing matches). */
static int
cmd_false(struct gsh *sh, int argc, char **argv)
{
	(void)sh;
	(void)argc;
	(void)argv;
	return GSH_FALSE;
}

static int
cmd_unsupported(struct gsh *sh, int argc, char **argv)
{
	(void)argc;
	return gsh_error(sh, "%s is not supported by grub-bhyve", argv[0]);
}

static int cmd_help(struct gsh *sh, int argc, char **argv);

static const struct {
	const char *name;
	cmd_fn fn;
	const char *help;
} cmds[] = {
    {"[", gsh_cmd_test, "EXPRESSION ]: as test"},
    {"background_color", cmd_nop, NULL},
    {"background_image", cmd_nop, NULL},
    {"boot", cmd_boot, "boot what linux/multiboot loaded"},
    {"break", gsh_cmd_break, "[N]: leave N loops"},
    {"cat", cmd_cat, "FILE: print a file"},
    {"configfile", cmd_configfile, "FILE: run a config file and its menu"},
    {"continue", gsh_cmd_break, "[N]: the next turn of the Nth loop"},
    {"cryptomount", cmd_unsupported, NULL},
    {"echo", cmd_echo, "[-n] [-e] ARGS: print the arguments"},
    {"exit", cmd_exit, "leave without booting"},
    {"export", gsh_cmd_export, "NAME...: pass variables to submenus"},
    {"false", cmd_false, "fail"},
    {"fwsetup", cmd_unsupported, NULL},
    {"halt", cmd_exit, NULL},
    {"help", cmd_help, "list the commands"},
    {"hwmatch", cmd_false, NULL},
    {"initrd", cmd_initrd, "FILE...: initrds for the Linux kernel"},
    {"initrd16", cmd_initrd, NULL},
    {"initrdefi", cmd_initrd, NULL},
    {"insmod", cmd_nop, "MODULE: accepted (everything is built in)"},
    {"keystatus", cmd_false, NULL},
    {"linux", cmd_linux, "FILE [ARGS...]: load a Linux kernel"},
    {"linux16", cmd_linux, NULL},
    {"linuxefi", cmd_linux, NULL},
    {"load_env", cmd_load_env, "[-f FILE] [NAME...]: read a grubenv"},
    {"loadfont", cmd_nop, NULL},
    {"ls", cmd_ls, "[-l] [-a] [DEV|FILE]...: list devices or files"},
    {"module", cmd_module, "FILE [ARGS...]: a multiboot module"},
    {"multiboot", cmd_multiboot, "FILE [ARGS...]: load a multiboot kernel"},
    {"play", cmd_nop, NULL},
    {"quit", cmd_exit, NULL},
    {"reboot", cmd_exit, NULL},
    {"return", gsh_cmd_return, "[N]: leave a function"},
    {"rmmod", cmd_nop, NULL},
    {"save_env", cmd_nop, "NAME...: accepted (the disk stays as it is)"},
    {"search", gsh_cmd_search,
     "--file|--label|--fs-uuid [--set=VAR] NAME: find a device"},
    {"search.file", gsh_cmd_search, NULL},
    {"search.fs_label", gsh_cmd_search, NULL},
    {"search.fs_uuid", gsh_cmd_search, NULL},
    {"serial", cmd_nop, NULL},
    {"set", cmd_set, "[NAME=VALUE]...: set variables, or list them"},
    {"shift", gsh_cmd_shift, "[N]: drop the first N of $1..."},
    {"sleep", cmd_nop, NULL},
    {"source", cmd_source, "FILE: run a script in this context"},
    {"terminal", cmd_nop, NULL},
    {"terminal_input", cmd_nop, NULL},
    {"terminal_output", cmd_nop, NULL},
    {"test", gsh_cmd_test, "EXPRESSION: GRUB's test"},
    {"true", cmd_nop, "succeed"},
    {"unset", cmd_unset, "NAME...: remove variables"},
};

/*
 * What grub-mkconfig's scripts define as functions: a config that calls
 * one it never defined gets a no-op, not an error (a defined function of
 * the name runs instead; builtins come first, as in GRUB).
 */
static bool
is_mkconfig_function(const char *name)
{
	static const char *const names[] = {
	    "gfxmode", "initrdfail", "load_video", "recordfail", "savedefault"};

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

static int
cmd_help(struct gsh *sh, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (cmds[i].help)
			fprintf(sh->out, "  %-11s %s\n", cmds[i].name,
				cmds[i].help);
	fputs("  if/elif/else/fi, while/until/for ... do/done, function NAME "
	      "{ ... },\n  menuentry \"TITLE\" { COMMANDS }, submenu; "
	      "NAME=VALUE; $NAME\n",
	      sh->out);
	return GSH_OK;
}

bool
gsh_is_builtin(const char *name)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmds[i].name, name))
			return true;
	return false;
}

int
gsh_command(struct gsh *sh, int argc, char **argv)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmds[i].name, argv[0]))
			return cmds[i].fn(sh, argc, argv);
	if (is_mkconfig_function(argv[0]))
		return GSH_OK;
	return gsh_error(sh, "can't find command '%.200s'", argv[0]);
}
