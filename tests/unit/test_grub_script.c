/*
 * grub-bhyve's script interpreter (src/hv/grub_script.c, grub_shell.c's
 * menus, grub_cmd_test.c, grub_cmd_search.c): each construct of the GRUB
 * script language that grub-mkconfig writes, the config files Debian's
 * grub-mkconfig generated (fixtures/grub/debian-*.cfg) and an Ubuntu-style
 * one run through a test seam that records the linux/initrd/boot commands
 * instead of loading, and each bound on hostile scripts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "grub_dev.h"
#include "grub_shell.h"
#include "vmm.h"

#define MIB (1ULL << 20)
#define UUID "1c3a0f3e-5e5f-4b0e-9d63-2f1e2a6b8c01"

struct fx {
	struct vmctx *ctx;
	struct gdev_map map;
	struct gsh_config cfg;
	struct gsh *sh;
	char dir[64];
	char *buf;
	size_t size, mark;
	char loads[4096]; /* what the hook saw, one command a line */
	int hook_fail;	  /* the hook fails this command (1-based), 0 never */
	int hook_calls;
	int pipe[2];
};

/* The test seam: "ROOT| linux /boot/vmlinuz ..." per loader command. */
static int
hook(void *arg, const char *root, int argc, char **argv)
{
	struct fx *f = arg;
	size_t n = strlen(f->loads);

	n += snprintf(f->loads + n, sizeof(f->loads) - n, "%s|", root);
	for (int i = 0; i < argc && n < sizeof(f->loads); i++)
		n += snprintf(f->loads + n, sizeof(f->loads) - n, " %s",
			      argv[i]);
	if (n < sizeof(f->loads))
		snprintf(f->loads + n, sizeof(f->loads) - n, "\n");
	return ++f->hook_calls == f->hook_fail ? GSH_ERROR : GSH_OK;
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	fclose(fp);
}

static char *
tmp(struct fx *f, const char *name)
{
	static char path[8][160];
	static int next;
	char *p = path[next++ % 8];

	snprintf(p, sizeof(path[0]), "%s/%s", f->dir, name);
	return p;
}

static void
new_shell(struct fx *f)
{
	gsh_free(f->sh);
	f->sh = gsh_create(&f->cfg);
	assert_non_null(f->sh);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];
	FILE *out;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/gscripttestXXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->ctx = vm_create_mock(64 * MIB);
	assert_non_null(f->ctx);
	out = open_memstream(&f->buf, &f->size);
	assert_non_null(out);
	assert_int_equal(pipe(f->pipe), 0);
	assert_int_equal(
	    gdev_map_add_line(&f->map, "(hd0) /dev/null", err, sizeof(err)), 0);
	f->cfg = (struct gsh_config){
	    .ctx = f->ctx,
	    .map = &f->map,
	    .cfg_dir = f->dir,
	    .in_fd = f->pipe[0],
	    .out = out,
	    .load_hook = hook,
	    .hook_arg = f,
	};
	new_shell(f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	gsh_free(f->sh);
	fclose(f->cfg.out);
	free(f->buf);
	close(f->pipe[0]);
	close(f->pipe[1]);
	vm_close(f->ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static const char *
output(struct fx *f)
{
	const char *s;

	fflush(f->cfg.out);
	s = f->buf + f->mark;
	f->mark = f->size;
	return s;
}

/* What the hook saw since the last call. */
static const char *
loads(struct fx *f)
{
	static char last[sizeof(f->loads)];

	memcpy(last, f->loads, sizeof(last));
	f->loads[0] = '\0';
	return last;
}

static void
expect_out(struct fx *f, const char *script, int status, const char *want)
{
	int r = gsh_exec(f->sh, script);
	const char *got = output(f);

	if (strcmp(got, want) || r != status)
		fail_msg("script '%s' printed '%s' (status %d), expected '%s' "
			 "(status %d)",
			 script, got, r, want, status);
}

static void
expect_has(const char *got, const char *want)
{
	if (!strstr(got, want))
		fail_msg("'%s' lacks '%s'", got, want);
}

static char *
read_fixture(const char *name)
{
	char path[256];
	FILE *fp;
	char *text;
	long n;

	snprintf(path, sizeof(path), "fixtures/grub/%s", name);
	fp = fopen(path, "r");
	if (!fp)
		fail_msg("%s: run the unit tests from the top directory", path);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	text = calloc(1, n + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, n, fp), n);
	fclose(fp);
	return text;
}

/* ---- the language ---- */

static void
test_if(void **state)
{
	struct fx *f = *state;

	expect_out(f, "if true; then echo yes; fi\n", GSH_OK, "yes\n");
	expect_out(f, "if false; then echo yes; else echo no; fi\n", GSH_OK,
		   "no\n");
	expect_out(f,
		   "x=2\nif [ $x = 1 ]; then echo one\nelif [ $x = 2 ]\n"
		   "then\n  echo two\nelif true; then echo never\nelse\n"
		   "  echo else\nfi\n",
		   GSH_OK, "two\n");
	/* Nested, on one line, with the branches not taken not run. */
	expect_out(f,
		   "if true; then if false; then echo a; else echo b; fi; "
		   "echo c; fi; echo d\n",
		   GSH_OK, "b\nc\nd\n");
	expect_out(f, "if false; then nosuchcommand; fi\n", GSH_OK, "");
	/* Keywords count only at a command's start and unquoted. */
	expect_out(f, "echo if then fi; if true; then echo 'fi'; fi\n", GSH_OK,
		   "if then fi\nfi\n");
	/* An error in the condition is printed; the condition is false. */
	expect_out(f, "if nosuch; then echo a; else echo b; fi\n", GSH_OK,
		   "error: can't find command 'nosuch'.\nb\n");
	expect_out(f, "if ! false; then echo inverted; fi\n", GSH_OK,
		   "inverted\n");
	expect_out(f, "false; echo $?; true; echo $?; ! true; echo $?\n",
		   GSH_OK, "1\n0\n1\n");
}

static void
test_syntax(void **state)
{
	struct fx *f = *state;

	/* A broken command runs none of itself; the next line runs. */
	expect_out(f, "if true; then echo a; done\necho b\n", GSH_OK,
		   "error: syntax error: unexpected 'done'.\nb\n");
	expect_out(f, "fi\n", GSH_ERROR,
		   "error: syntax error: unexpected 'fi'.\n");
	expect_out(f, "if true; then echo a\n", GSH_ERROR,
		   "error: syntax error: missing 'fi'.\n");
	expect_out(f, "if true\necho a\nfi\n", GSH_ERROR,
		   "error: syntax error: unexpected 'fi'.\n");
	expect_out(f, "while true; echo a; done\n", GSH_ERROR,
		   "error: syntax error: unexpected 'done'.\n");
	expect_out(f, "for 1 in a; do echo; done\n", GSH_ERROR,
		   "error: syntax error: unexpected '1'.\n");
	expect_out(f, "menuentry x\necho a\n", GSH_ERROR,
		   "error: syntax error: unexpected 'echo'.\n");
	/* More lines needed at grub>: */
	assert_true(gsh_incomplete("if true; then\n"));
	assert_true(gsh_incomplete("if true; then echo; else\n"));
	assert_true(gsh_incomplete("while true\n"));
	assert_true(gsh_incomplete("for x in a b; do\n"));
	assert_true(gsh_incomplete("function f {\n if true; then\n"));
	assert_false(gsh_incomplete("if true; then echo; fi\n"));
	assert_false(gsh_incomplete("fi\n"));
	assert_false(gsh_incomplete("echo if\n"));
}

static void
test_expansion(void **state)
{
	struct fx *f = *state;

	/* Unquoted: split at blanks, gone when empty; quoted: one word. */
	expect_out(f,
		   "function n { echo $#; }\n"
		   "a=\"x  y\"; n $a; n \"$a\"; n $none; n \"$none\"; n ''\n"
		   "n x$none; n ${a}z\n",
		   GSH_OK, "2\n1\n0\n1\n1\n1\n2\n");
	expect_out(f, "a='x  y'; echo $a; echo \"$a\"\n", GSH_OK,
		   "x y\nx  y\n");
	expect_out(f, "echo \\$a '$a' \"\\$a\" $ ${ ${}\n", GSH_OK,
		   "$a $a $a $ ${ ${}\n");
	expect_out(f, "b=1; echo x${b}x$b.\n", GSH_OK, "x1x1.\n");
	/* The idioms grub-mkconfig writes. */
	expect_out(f,
		   "if [ x\"${feature_menuentry_id}\" = xy ]; then echo id; "
		   "fi\nif [ x$feature_platform_search_hint = xy ]; then "
		   "echo hint; fi\nif [ \"${next_entry}\" ] ; then echo "
		   "no; fi\nif [ x$none = x ]; then echo empty; fi\n",
		   GSH_OK, "id\nhint\nempty\n");
}

static void
test_functions(void **state)
{
	struct fx *f = *state;

	expect_out(f,
		   "function f { echo $# \"$1\" $2; }\nf a 'b c' d\n"
		   "function all { echo \"$*\"; for i in \"$@\"; do echo "
		   "[$i]; done; }\nall 1 '2 3'\n",
		   GSH_OK, "3 a b c\n1 2 3\n[1]\n[2 3]\n");
	/* return N: the function's status; the rest is not run. */
	expect_out(f,
		   "function t { return 0; echo no; }\n"
		   "function u { if true; then return 3; fi; echo no; }\n"
		   "if t; then echo t ok; fi; u; echo $?\n",
		   GSH_OK, "t ok\n3\n");
	expect_out(f, "function s { shift; echo $1; }\ns a b\n", GSH_OK, "b\n");
	/* A function may redefine itself while it runs. */
	expect_out(f,
		   "function g { function g { echo new; }; echo old; }\n"
		   "g; g\n",
		   GSH_OK, "old\nnew\n");
	/* Builtins come first; functions of mkconfig's names replace the
	 * no-ops. */
	expect_out(f, "recordfail; gfxmode keep; load_video\n", GSH_OK, "");
	expect_out(f,
		   "function gfxmode { set gfxpayload=\"${1}\"; }\n"
		   "gfxmode keep; echo $gfxpayload\n",
		   GSH_OK, "keep\n");
}

static void
test_loops(void **state)
{
	struct fx *f = *state;

	expect_out(f, "for x in a b c; do echo $x; done\n", GSH_OK,
		   "a\nb\nc\n");
	expect_out(f,
		   "i=0; while [ $i -lt 3 ]; do echo $i; "
		   "if [ $i = 0 ]; then i=1; elif [ $i = 1 ]; then i=2; "
		   "else i=3; fi; done\n",
		   GSH_OK, "0\n1\n2\n");
	expect_out(f, "until true; do echo no; done; echo done\n", GSH_OK,
		   "done\n");
	expect_out(f,
		   "for x in 1 2 3; do if [ $x = 2 ]; then continue; fi; "
		   "echo $x; done\n",
		   GSH_OK, "1\n3\n");
	expect_out(f,
		   "for x in 1 2; do for y in a b; do "
		   "if [ $y = b ]; then break 2; fi; echo $x$y; done; done\n",
		   GSH_OK, "1a\n");
	expect_out(f, "break; echo after\n", GSH_OK, "after\n");
}

static void
test_test_command(void **state)
{
	struct fx *f = *state;
	char script[1024];
	static const struct {
		const char *expr;
		bool val;
	} cases[] = {
	    {"-n a", true},
	    {"-n ''", false},
	    {"-z ''", true},
	    {"a = a", true},
	    {"a == b", false},
	    {"a != b", true},
	    {"a < b", true},
	    {"b <= a", false},
	    {"b > a", true},
	    {"1 -eq 1", true},
	    {"0x10 -eq 16", true},
	    {"2 -ne 2", false},
	    {"1 -lt 2", true},
	    {"2 -le 1", false},
	    {"3 -gt 2", true},
	    {"3 -ge 4", false},
	    {"abc", true},
	    {"''", false},
	    {"! a = a", false},
	    {"! -z x", true},
	    {"a -a ''", false},
	    {"'' -o b", true},
	    {"a = b -o c = c", true},
	    {"( a = a ) -a ( b = b )", true},
	    {"vmlinuz-9 -plt vmlinuz-10", true},
	    {"vmlinuz-9 -pgt vmlinuz-10", false},
	    {"", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		snprintf(script, sizeof(script),
			 "if [ %s ]; then echo t; else echo f; fi\n"
			 "if test %s; then echo t; else echo f; fi\n",
			 cases[i].expr, cases[i].expr);
		expect_out(f, script, GSH_OK,
			   cases[i].val ? "t\nt\n" : "f\nf\n");
	}
	/* Files: GRUB file names on the root device. */
	write_file(tmp(f, "empty"), "", 0);
	write_file(tmp(f, "full"), "x", 1);
	snprintf(script, sizeof(script),
		 "d=%s\n"
		 "if [ -f $d/full ]; then echo -n 1; else echo -n 0; fi\n"
		 "if [ -f $d/empty ]; then echo -n 1; else echo -n 0; fi\n"
		 "if [ -s $d/full ]; then echo -n 1; else echo -n 0; fi\n"
		 "if [ -s $d/empty ]; then echo -n 1; else echo -n 0; fi\n"
		 "if [ -d $d ]; then echo -n 1; else echo -n 0; fi\n"
		 "if [ -e $d ]; then echo -n 1; else echo -n 0; fi\n"
		 "if [ -f $d ]; then echo -n 1; else echo -n 0; fi\n"
		 "if [ -e $d/none ]; then echo -n 1; else echo -n 0; fi\n"
		 "if [ -s $prefix/grubenv ]; then echo 1; else echo 0; fi\n",
		 f->dir);
	expect_out(f, script, GSH_OK, "111011000\n");
	/* Parentheses nest only so deep. */
	{
		char deep[512] = "[ ";

		for (int i = 0; i < 40; i++)
			strcat(deep, "( ");
		strcat(deep, "a ]\n");
		expect_out(f, deep, GSH_ERROR,
			   "error: [: more than 32 nested parentheses.\n");
	}
}

static void
test_contexts(void **state)
{
	struct fx *f = *state;
	char cfg[256];

	/* A submenu sees exported variables only; its changes stay in it. */
	gsh_run_config(f->sh, "a=plain; b=exported; export b\n"
			      "submenu s {\n echo in:$a:$b; b=changed; c=new\n"
			      " menuentry e { echo entry }\n}\n");
	expect_has(output(f), "in::exported\n");
	expect_out(f, "echo $a $b $c.\n", GSH_OK, "plain exported .\n");
	/* configfile: a new context too; source: this one. */
	snprintf(cfg, sizeof(cfg), "echo [$a][$b]; a=cf\n");
	write_file(tmp(f, "sub.cfg"), cfg, strlen(cfg));
	snprintf(cfg, sizeof(cfg),
		 "configfile %s/sub.cfg; echo $a\n"
		 "source %s/sub.cfg; echo $a\n",
		 f->dir, f->dir);
	expect_out(f, cfg, GSH_OK,
		   "[][exported]\nplain\n[plain][exported]\ncf\n");
}

/* ---- menus ---- */

static const char *menu_cfg =
    "menuentry_id_option=--id\n"
    "menuentry 'First' --class os --id first { linux /k1 one }\n"
    "submenu 'More' $menuentry_id_option more {\n"
    "  menuentry 'Inner A' --id inner-a { linux /ka a }\n"
    "  menuentry 'Inner B' --id=inner-b { linux /kb b; initrd /r1 /r2 }\n"
    "}\n"
    "menuentry \"Third\" --unrestricted { linux /k3 three }\n";

/* Run menu_cfg after prelude; the hook's record of what booted. */
static const char *
boot_with(struct fx *f, const char *prelude)
{
	char *text = malloc(strlen(prelude) + strlen(menu_cfg) + 1);
	int r;

	assert_non_null(text);
	strcpy(text, prelude);
	strcat(text, menu_cfg);
	loads(f);
	r = gsh_run_config(f->sh, text);
	free(text);
	if (r != GSH_BOOTED)
		fail_msg("'%s' did not boot: %s", prelude, output(f));
	new_shell(f);
	return loads(f);
}

static void
test_menu_defaults(void **state)
{
	struct fx *f = *state;

	assert_int_equal(gsh_exec(f->sh, menu_cfg), GSH_OK);
	assert_int_equal(gsh_menu_size(f->sh), 3);
	assert_string_equal(gsh_menu_id(f->sh, 0), "first");
	assert_string_equal(gsh_menu_id(f->sh, 1), "more");
	assert_true(gsh_menu_is_submenu(f->sh, 1));
	assert_null(gsh_menu_id(f->sh, 2));
	new_shell(f);
	output(f);

	assert_string_equal(boot_with(f, ""),
			    "host| linux /k1 one\nhost| boot\n");
	assert_string_equal(boot_with(f, "default=2\n"),
			    "host| linux /k3 three\nhost| boot\n");
	assert_string_equal(boot_with(f, "default=Third\n"),
			    "host| linux /k3 three\nhost| boot\n");
	assert_string_equal(boot_with(f, "default=first\n"),
			    "host| linux /k1 one\nhost| boot\n");
	/* Into the submenu: by numbers, ids, titles, mixed. */
	assert_string_equal(boot_with(f, "default='1>1'\n"),
			    "host| linux /kb b\nhost| initrd /r1 /r2\n"
			    "host| boot\n");
	assert_string_equal(boot_with(f, "default='more>inner-a'\n"),
			    "host| linux /ka a\nhost| boot\n");
	assert_string_equal(boot_with(f, "default='More>Inner B'\n"),
			    "host| linux /kb b\nhost| initrd /r1 /r2\n"
			    "host| boot\n");
	/* A submenu without a path: its first entry. */
	assert_string_equal(boot_with(f, "default=1\n"),
			    "host| linux /ka a\nhost| boot\n");
	/* default=saved: $saved_entry, or entry 0 without one. */
	assert_string_equal(boot_with(f, "default=saved\n"),
			    "host| linux /k1 one\nhost| boot\n");
	assert_string_equal(boot_with(f, "default=saved; saved_entry=2\n"),
			    "host| linux /k3 three\nhost| boot\n");
	assert_string_equal(boot_with(f, "default=nosuch\n"),
			    "host| linux /k1 one\nhost| boot\n");
	/* A failing entry: $fallback's. */
	f->hook_fail = 1;
	f->hook_calls = 0;
	assert_string_equal(boot_with(f, "fallback='9 2'\n"),
			    "host| linux /k1 one\nhost| linux /k3 three\n"
			    "host| boot\n");
	f->hook_fail = 0;
}

static void
test_menu_display(void **state)
{
	struct fx *f = *state;
	const char *got;

	gsh_run_config(f->sh, "timeout=5\n");
	assert_string_equal(output(f), "");
	assert_int_equal(gsh_run_config(f->sh, menu_cfg), GSH_BOOTED);
	got = output(f);
	expect_has(got, " * 0  First\n   1  More >\n   2  Third\n");
	expect_has(got, "Booting 'First'\n");
	/* hidden and countdown: no list when nobody types. */
	assert_int_equal(gsh_exec(f->sh, "timeout_style=hidden\n"), GSH_OK);
	assert_int_equal(gsh_run_config(f->sh, menu_cfg), GSH_BOOTED);
	got = output(f);
	assert_null(strstr(got, "First\n"));
	expect_has(got, "Booting 'First'\n");
	/* chosen: the entry's title. */
	assert_string_equal(gsh_get(f->sh, "chosen"), "First");
	/* An initrd that failed: no boot. */
	new_shell(f);
	output(f);
	f->hook_fail = 2;
	f->hook_calls = 0;
	assert_int_equal(gsh_run_config(f->sh, "default='1>1'\n"
					       "x=1\n"),
			 GSH_OK);
	assert_int_equal(gsh_run_config(f->sh, menu_cfg), GSH_ERROR);
	expect_has(output(f), "error: not booting 'Inner B': its initrd or "
			      "module did not load.\n");
}

static void
test_load_env(void **state)
{
	struct fx *f = *state;
	static const char env[] =
	    "# GRUB Environment Block\n"
	    "saved_entry=More>Inner A\n"
	    "next_entry=\n"
	    "odd=a\\\\b\\\nc\n"
	    "##################################################";
	char script[256];

	write_file(tmp(f, "grubenv"), env, sizeof(env) - 1);
	expect_out(f,
		   "if [ -s $prefix/grubenv ]; then load_env; fi\n"
		   "echo $saved_entry; echo \"$odd\"\n",
		   GSH_OK, "More>Inner A\na\\b\nc\n");
	snprintf(script, sizeof(script),
		 "unset saved_entry odd\nload_env -f %s/grubenv odd\n"
		 "echo [$saved_entry]\nsave_env odd\n",
		 f->dir);
	expect_out(f, script, GSH_OK, "[]\n");
	write_file(tmp(f, "badenv"), "saved_entry=1\n", 14);
	snprintf(script, sizeof(script), "load_env --file=%s/badenv\n", f->dir);
	expect_out(f, script, GSH_ERROR, "error: invalid environment block.\n");
	/* default=saved with the saved entry: into the submenu. */
	assert_int_equal(gsh_exec(f->sh, "load_env; default=saved\n"), GSH_OK);
	loads(f);
	assert_int_equal(gsh_run_config(f->sh, menu_cfg), GSH_BOOTED);
	assert_string_equal(loads(f), "host| linux /ka a\nhost| boot\n");
}

static void
test_search(void **state)
{
	struct fx *f = *state;
	char script[256];

	write_file(tmp(f, "marker"), "", 0);
	snprintf(script, sizeof(script),
		 "set root=hd0\nsearch --no-floppy --file --set=root "
		 "--hint=hd0 %s/marker\necho $root\n",
		 f->dir);
	expect_out(f, script, GSH_OK, "host\n");
	snprintf(script, sizeof(script), "search.file %s/marker r2\necho $r2\n",
		 f->dir);
	expect_out(f, script, GSH_OK, "host\n");
	/* Nothing found: root keeps what grub-mkconfig set before. */
	expect_out(
	    f,
	    "set root='hd0,msdos1'\nsearch --no-floppy --fs-uuid "
	    "--set=root --hint-bios=hd0,msdos1 --hint-efi=hd0,msdos1 " UUID
	    "\necho $root\n",
	    GSH_OK, "error: no such device: " UUID ".\nhd0,msdos1\n");
	expect_out(f, "search.fs_label nolabel\n", GSH_ERROR,
		   "error: no such device: nolabel.\n");
	expect_out(f, "search foo\n", GSH_ERROR,
		   "error: unspecified search type.\n");
	expect_out(f, "search --bogus x\n", GSH_ERROR,
		   "error: unknown argument '--bogus'.\n");
}

/* ---- grub-mkconfig's configs ---- */

static void
run_fixture(struct fx *f, const char *name, const char *want_loads)
{
	char *text = read_fixture(name);
	const char *got;

	loads(f);
	assert_int_equal(gsh_run_config(f->sh, text), GSH_BOOTED);
	got = output(f);
	if (strcmp(loads(f), want_loads))
		fail_msg("%s loaded something else; it printed:\n%s", name,
			 got);
	free(text);
}

static void
test_debian_config(void **state)
{
	struct fx *f = *state;
	static const char env_next[] =
	    "# GRUB Environment Block\n"
	    "next_entry=gnulinux-advanced-" UUID
	    ">gnulinux-6.1.0-17-amd64-recovery-" UUID "\n";
	const char *got;
	char *text = read_fixture("debian-grub.cfg");

	/* The menu GRUB would show, entry 0 by default. */
	run_fixture(f, "debian-grub.cfg",
		    "hd0,msdos1| linux /boot/vmlinuz-6.1.0-18-amd64 "
		    "root=/dev/vda1 ro quiet\n"
		    "hd0,msdos1| initrd /boot/intel-ucode.img "
		    "/boot/initrd.img-6.1.0-18-amd64\n"
		    "hd0,msdos1| boot\n");
	new_shell(f);
	assert_int_equal(gsh_exec(f->sh, text), GSH_OK);
	got = output(f);
	assert_int_equal(gsh_menu_size(f->sh), 2);
	assert_string_equal(gsh_menu_title(f->sh, 0), "Debian GNU/Linux");
	assert_string_equal(gsh_menu_id(f->sh, 0), "gnulinux-simple-" UUID);
	assert_string_equal(gsh_menu_title(f->sh, 1),
			    "Advanced options for Debian GNU/Linux");
	assert_string_equal(gsh_menu_id(f->sh, 1), "gnulinux-advanced-" UUID);
	assert_true(gsh_menu_is_submenu(f->sh, 1));
	/* What the header set: timeout, style, the default. */
	assert_string_equal(gsh_get(f->sh, "timeout"), "5");
	assert_string_equal(gsh_get(f->sh, "timeout_style"), "menu");
	assert_string_equal(gsh_get(f->sh, "default"), "0");
	assert_string_equal(gsh_get(f->sh, "menuentry_id_option"), "--id");
	assert_null(strstr(got, "error"));

	/* grub-reboot's next_entry (in $prefix/grubenv): a submenu path. */
	new_shell(f);
	write_file(tmp(f, "grubenv"), env_next, sizeof(env_next) - 1);
	run_fixture(f, "debian-grub.cfg",
		    "hd0,msdos1| linux /boot/vmlinuz-6.1.0-17-amd64 "
		    "root=/dev/vda1 ro single\n"
		    "hd0,msdos1| initrd /boot/intel-ucode.img "
		    "/boot/initrd.img-6.1.0-17-amd64\n"
		    "hd0,msdos1| boot\n");
	free(text);
}

static void
test_debian_saved_config(void **state)
{
	struct fx *f = *state;
	static const char env[] =
	    "# GRUB Environment Block\n"
	    "saved_entry=gnulinux-advanced-" UUID
	    ">gnulinux-6.1.0-17-amd64-advanced-" UUID "\n";

	/* GRUB_DEFAULT=saved without a grubenv: entry 0. */
	run_fixture(f, "debian-saved-grub.cfg",
		    "hd0,msdos1| linux /boot/vmlinuz-6.1.0-18-amd64 "
		    "root=/dev/vda1 ro console=ttyS0,115200\n"
		    "hd0,msdos1| initrd /boot/initrd.img-6.1.0-18-amd64\n"
		    "hd0,msdos1| boot\n");
	/* With the entry grub-set-default saved. */
	new_shell(f);
	write_file(tmp(f, "grubenv"), env, sizeof(env) - 1);
	run_fixture(f, "debian-saved-grub.cfg",
		    "hd0,msdos1| linux /boot/vmlinuz-6.1.0-17-amd64 "
		    "root=/dev/vda1 ro console=ttyS0,115200\n"
		    "hd0,msdos1| initrd /boot/initrd.img-6.1.0-17-amd64\n"
		    "hd0,msdos1| boot\n");
	/* timeout_style=hidden: no menu listed. */
	assert_null(strstr(f->buf, "grub-bhyve menu"));
}

static void
test_ubuntu_config(void **state)
{
	struct fx *f = *state;
	char *text = read_fixture("ubuntu-grub.cfg");

	run_fixture(f, "ubuntu-grub.cfg",
		    "hd0,gpt2| linux /boot/vmlinuz-5.15.0-91-generic "
		    "root=UUID=" UUID " ro quiet splash vt.handoff=7\n"
		    "hd0,gpt2| initrd /boot/initrd.img-5.15.0-91-generic\n"
		    "hd0,gpt2| boot\n");
	new_shell(f);
	assert_int_equal(gsh_exec(f->sh, text), GSH_OK);
	assert_int_equal(gsh_menu_size(f->sh), 4);
	assert_string_equal(gsh_menu_title(f->sh, 2),
			    "Memory test (memtest86+.bin)");
	assert_string_equal(gsh_get(f->sh, "timeout_style"), "hidden");
	assert_string_equal(gsh_get(f->sh, "linux_gfx_mode"), "keep");
	free(text);
	/* The memtest entry: linux16. */
	new_shell(f);
	text = read_fixture("ubuntu-grub.cfg");
	{
		char *t = malloc(strlen(text) + 32);

		assert_non_null(t);
		strcpy(t, text);
		strcat(t, "default=2\n");
		loads(f);
		assert_int_equal(gsh_run_config(f->sh, t), GSH_BOOTED);
		assert_string_equal(loads(f), "hd0,gpt2| linux16 "
					      "/boot/memtest86+.bin\n"
					      "hd0,gpt2| boot\n");
		free(t);
	}
	free(text);
}

/*
 * A disk image: an MBR whose first partition (from 1 MiB) is an ext4 file
 * system made from dir/fs (mkfs.ext4 -d, as e2fsprogs makes images
 * without root), with the given UUID.
 */
static void
make_disk(struct fx *f, const char *uuid)
{
	char cmd[512];
	uint8_t mbr[512] = {0};
	struct stat st;

	snprintf(cmd, sizeof(cmd),
		 "mkfs.ext4 -q -F -U %s -d %s/fs %s/fs.img 4M >/dev/null 2>&1",
		 uuid, f->dir, f->dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(stat(tmp(f, "fs.img"), &st), 0);
	/* Partition 1: type 0x83 at LBA 2048, the file system's size. */
	mbr[0x1be + 4] = 0x83;
	mbr[0x1be + 8] = 0x00;
	mbr[0x1be + 9] = 0x08;
	mbr[0x1be + 12] = (uint8_t)(st.st_size / 512);
	mbr[0x1be + 13] = (uint8_t)(st.st_size / 512 >> 8);
	mbr[0x1be + 14] = (uint8_t)(st.st_size / 512 >> 16);
	mbr[510] = 0x55;
	mbr[511] = 0xaa;
	write_file(tmp(f, "disk.img"), mbr, sizeof(mbr));
	snprintf(cmd, sizeof(cmd),
		 "dd if=%s/fs.img of=%s/disk.img bs=1M seek=1 conv=notrunc "
		 "status=none",
		 f->dir, f->dir);
	assert_int_equal(system(cmd), 0);
}

/* grub-bhyve -m MAP -r ROOT: gsh_main on a disk image, as a new user. */
static int
main_on_disk(struct fx *f, const char *root)
{
	char line[256], err[256];
	struct gsh_config c = f->cfg;
	struct gsh *sh;
	int r;

	memset(&f->map, 0, sizeof(f->map));
	snprintf(line, sizeof(line), "(hd0) %s/disk.img", f->dir);
	assert_int_equal(gdev_map_add_line(&f->map, line, err, sizeof(err)), 0);
	f->map.host = GDEV_HOST_OFF;
	c.root = root;
	c.cfg_dir = NULL;
	c.in_fd = -1;
	sh = gsh_create(&c);
	assert_non_null(sh);
	r = gsh_main(sh);
	gsh_free(sh);
	return r;
}

static void
test_guest_disk_config(void **state)
{
	struct fx *f = *state;
	char *text = read_fixture("debian-grub.cfg");
	const char *got;

	mkdir(tmp(f, "fs"), 0755);
	mkdir(tmp(f, "fs/boot"), 0755);
	mkdir(tmp(f, "fs/boot/grub"), 0755);
	write_file(tmp(f, "fs/boot/grub/grub.cfg"), text, strlen(text));
	make_disk(f, UUID);
	/* -r hd0,msdos1: the search by UUID finds the partition too. */
	loads(f);
	if (main_on_disk(f, "hd0,msdos1") != GSH_BOOTED)
		fail_msg("no boot: %s", output(f));
	got = output(f);
	assert_null(strstr(got, "error"));
	expect_has(got, "Booting 'Debian GNU/Linux'\n");
	assert_string_equal(loads(f),
			    "hd0,msdos1| linux /boot/vmlinuz-6.1.0-18-amd64 "
			    "root=/dev/vda1 ro quiet\n"
			    "hd0,msdos1| initrd /boot/intel-ucode.img "
			    "/boot/initrd.img-6.1.0-18-amd64\n"
			    "hd0,msdos1| boot\n");
	/* -r hd0: the partition holding a grub.cfg is found. */
	assert_int_equal(main_on_disk(f, "hd0"), GSH_BOOTED);
	assert_null(strstr(output(f), "error"));
	expect_has(loads(f), "hd0,msdos1| boot\n");
	/* A separate /boot: its grub.cfg is /grub/grub.cfg; a UUID that is
	 * not there leaves the root grub-mkconfig set. */
	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "rm -rf %s/fs/* && mkdir %s/fs/grub",
			 f->dir, f->dir);
		assert_int_equal(system(cmd), 0);
	}
	write_file(tmp(f, "fs/grub/grub.cfg"), text, strlen(text));
	make_disk(f, "0badc0de-5e5f-4b0e-9d63-2f1e2a6b8c01");
	assert_int_equal(main_on_disk(f, "hd0"), GSH_BOOTED);
	expect_has(output(f), "error: no such device: " UUID ".\n");
	expect_has(loads(f), "hd0,msdos1| linux /boot/vmlinuz-6.1.0-18");
	free(text);
}

/* ---- bounds on hostile scripts ---- */

static void
test_limits(void **state)
{
	struct fx *f = *state;
	char *s = malloc(64 * 1024);
	const char *got;

	assert_non_null(s);
	/* Nested ifs: 33 levels. */
	s[0] = '\0';
	for (int i = 0; i < 33; i++)
		strcat(s, "if true; then ");
	strcat(s, "echo deep");
	for (int i = 0; i < 33; i++)
		strcat(s, "; fi");
	strcat(s, "\n");
	expect_out(f, s, GSH_ERROR,
		   "error: syntax error: too deeply nested.\n");
	/* Recursion: functions, source and configfile loops. */
	expect_out(f, "function r { r; }\nr\n", GSH_ERROR,
		   "error: too deeply nested.\n");
	snprintf(s, 1024, "source %s/loop.cfg\n", f->dir);
	write_file(tmp(f, "loop.cfg"), s, strlen(s));
	assert_int_equal(gsh_exec(f->sh, s), GSH_ERROR);
	expect_has(output(f), "error: too deeply nested.\n");
	snprintf(s, 1024, "configfile %s/cf.cfg\n", f->dir);
	write_file(tmp(f, "cf.cfg"), s, strlen(s));
	assert_int_equal(gsh_exec(f->sh, s), GSH_ERROR);
	expect_has(output(f), "error: too deeply nested.\n");
	/* An endless loop stops after GSH_MAX_STEPS commands. */
	expect_out(f, "while true; do x=1; done; echo not reached\n", GSH_ERROR,
		   "error: the script ran too long (20000 commands, a file "
		   "access counting 10): stopped.\n");
	/* The fuzzer's slow input: file tests in an endless loop cost
	 * more. */
	expect_out(f, "while [ -d / -a -e / ]; do i=3; done\n", GSH_ERROR,
		   "error: the script ran too long (20000 commands, a file "
		   "access counting 10): stopped.\n");
	/* Values double until they are too long. */
	assert_int_equal(gsh_exec(f->sh,
				  "a=0123456789abcdef\n"
				  "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13; "
				  "do a=$a$a; done\n"),
			 GSH_ERROR);
	expect_has(output(f), "error: the value for 'a' is 131072 bytes: at "
			      "most 65536.\n");
	/* Too many variables, too many bytes in them. */
	assert_int_equal(
	    gsh_exec(f->sh,
		     "unset a\nfor a in 1 2 3 4 5 6 7 8; "
		     "do for b in 1 2 3 4 5 6 7 8; do "
		     "for c in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17; do "
		     "set v$a$b$c=x; done; done; done\n"),
	    GSH_ERROR);
	expect_has(output(f), "no room for 'v");
	new_shell(f);
	output(f);
	assert_int_equal(
	    gsh_exec(f->sh, "a=0123456789abcdef; for i in 1 2 3 4 5 6 7 "
			    "8 9 10 11 12; do a=$a$a; done\n"
			    "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 "
			    "16 17; do set b$i=$a; done\n"),
	    GSH_ERROR);
	expect_has(output(f),
		   "error: no room for 'b15': variables hold at most 1048576 "
		   "bytes.\n");
	/* Words: a command expands to at most so many. */
	new_shell(f);
	output(f);
	expect_out(f,
		   "a='x x x x x x x x x x x x x x x x'\n"
		   "b=\"$a $a $a $a $a $a $a $a $a $a $a $a $a $a $a $a\"\n"
		   "c=\"$b $b $b $b $b $b $b $b $b $b $b $b $b $b $b $b\"\n"
		   "echo $c $c\n",
		   GSH_ERROR,
		   "error: a command is more than 4096 words or 256 KiB "
		   "long.\n");
	/* Output: 1 MiB a run, then one line. */
	assert_int_equal(
	    gsh_exec(f->sh, "n='1 2 3 4 5 6 7 8 9 10 11 12 13'\n"
			    "for i in $n; do for j in $n; do echo \"$c\"; "
			    "done; done\n"),
	    GSH_OK);
	got = output(f);
	expect_has(got, "error: more than 1024 KiB of output: the rest is not "
			"shown.\n");
	assert_true(strlen(got) < 1024 * 1024 + 100);
	free(s);
	/* Menu entries and functions. */
	assert_int_equal(
	    gsh_exec(f->sh,
		     "for a in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do "
		     "for b in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17; do "
		     "menuentry x$a$b { true; }; done; done\n"),
	    GSH_ERROR);
	expect_has(output(f), "error: too many menu entries (at most 256).\n");
	assert_int_equal(gsh_menu_size(f->sh), 256);
}

static void
test_limits_functions(void **state)
{
	struct fx *f = *state;
	char s[256];
	int r = GSH_OK;

	for (int i = 0; i < 257 && r == GSH_OK; i++) {
		snprintf(s, sizeof(s), "function f%d { true; }\n", i);
		r = gsh_exec(f->sh, s);
	}
	assert_int_equal(r, GSH_ERROR);
	expect_has(output(f), "error: too many functions (at most 256).\n");
}

/* Random scripts from grub-mkconfig's words: lines, never a crash. */
static void
test_random_scripts(void **state)
{
	static const char *const atoms[] = {
	    " ",      "\n",	";",	    "{",	   "}",
	    "'",      "\"",	"\\",	    "$",	   "${",
	    "$1",     "$@",	"if",	    "then",	   "elif",
	    "else",   "fi",	"while",    "until",	   "do",
	    "done",   "for",	"in",	    "[",	   "]",
	    "-n",     "-z",	"=",	    "!",	   "-a",
	    "-o",     "(",	")",	    "x",	   "f",
	    "echo",   "set",	"function", "menuentry",   "submenu",
	    "return", "break",	"continue", "true",	   "false",
	    "shift",  "export", "x=1",	    "$x",	   "test",
	    "-eq",    "search", "--file",   "linux",	   "initrd",
	    "boot",   "source", "load_env", "default=1>0", "timeout=0",
	};
	struct fx *f = *state;
	unsigned seed = 7;
	char text[512];

	for (int i = 0; i < 4000; i++) {
		size_t n = 0;

		while (n < sizeof(text) - 32) {
			const char *a;

			seed = seed * 1103515245 + 12345;
			if ((seed >> 16) % 60 == 0)
				break;
			a = atoms[(seed >> 8) %
				  (sizeof(atoms) / sizeof(*atoms))];
			memcpy(text + n, a, strlen(a));
			n += strlen(a);
		}
		text[n] = '\0';
		gsh_incomplete(text);
		gsh_exec(f->sh, text);
		gsh_run_config(f->sh, text);
		output(f);
		loads(f);
		if (i % 100 == 0)
			new_shell(f);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_if, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syntax, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expansion, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_functions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_loops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_test_command, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_contexts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_menu_defaults, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_menu_display, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_load_env, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_search, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_debian_config, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_debian_saved_config, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_ubuntu_config, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_guest_disk_config, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limits_functions, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_random_scripts, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
