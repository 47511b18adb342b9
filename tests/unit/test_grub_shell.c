/*
 * grub-bhyve's shell (src/hv/grub_shell.c, grub_cmds.c, grub_dev.c): the
 * script syntax (quotes, $VAR, blocks over several lines), GRUB's error
 * texts, menus and their default, the Linux command line as grub2-bhyve
 * builds it, loading and booting through the shell into mock memory, the
 * device map and ls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "grub_dev.h"
#include "grub_shell.h"
#include "grub_x86.h"
#include "multiboot.h"
#include "vmm.h"

#define MIB (1ULL << 20)

struct fx {
	struct vmctx *ctx;
	struct gdev_map map;
	struct gsh_config cfg;
	struct gsh *sh;
	char dir[64];
	char *buf;
	size_t size, mark;
	int pipe[2];
};

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* A minimal protocol 2.15 bzImage with the 64-bit entry. */
static void
write_bzimage(const char *path)
{
	size_t len = 5 * 512 + 4096;
	uint8_t *b = calloc(1, len);

	assert_non_null(b);
	b[0x1f1] = 4;
	le32_put(b + 0x1f4, 4096 / 16);
	le16_put(b + 0x1fe, 0xaa55);
	b[0x201] = 0x6a;
	memcpy(b + 0x202, "HdrS", 4);
	le16_put(b + 0x206, 0x020f);
	b[0x211] = 1;
	le32_put(b + 0x214, 0x100000);
	le32_put(b + 0x22c, 0x7fffffff);
	le32_put(b + 0x230, 0x200000);
	b[0x234] = 1;
	b[0x235] = 21;
	le16_put(b + 0x236, 1);
	le32_put(b + 0x238, 2047);
	le64_put(b + 0x258, 0x1000000);
	le32_put(b + 0x260, 1 * MIB);
	write_file(path, b, len);
	free(b);
}

/* A multiboot a.out-kludge kernel: 4 KiB at 1 MiB, entry at +0x80. */
static void
write_mbkernel(const char *path)
{
	uint8_t b[4096] = {0};
	uint32_t flags = MB_AOUT_KLUDGE;

	le32_put(b + 0x40, MB_HEADER_MAGIC);
	le32_put(b + 0x44, flags);
	le32_put(b + 0x48, -(MB_HEADER_MAGIC + flags));
	le32_put(b + 0x4c, 0x100040);
	le32_put(b + 0x50, 0x100000);
	le32_put(b + 0x5c, 0x100080);
	write_file(path, b, sizeof(b));
}

static char *
tmp(struct fx *f, const char *name)
{
	static char path[8][128];
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
	snprintf(f->dir, sizeof(f->dir), "/tmp/gshtestXXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->ctx = vm_create_mock(64 * MIB);
	assert_non_null(f->ctx);
	out = open_memstream(&f->buf, &f->size);
	assert_non_null(out);
	assert_int_equal(pipe(f->pipe), 0);
	write_file(tmp(f, "disk.img"), "x", 1);
	assert_int_equal(
	    gdev_map_add_line(&f->map, "(hd0) /dev/null", err, sizeof(err)), 0);
	f->cfg = (struct gsh_config){
	    .ctx = f->ctx,
	    .map = &f->map,
	    .cfg_dir = f->dir,
	    .in_fd = f->pipe[0],
	    .out = out,
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
	if (f->pipe[1] >= 0)
		close(f->pipe[1]);
	vm_close(f->ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* What the shell printed since the last call. */
static const char *
output(struct fx *f)
{
	const char *s;

	fflush(f->cfg.out);
	s = f->buf + f->mark;
	f->mark = f->size;
	return s;
}

static void
expect_out(struct fx *f, const char *script, int status, const char *want)
{
	const char *got;

	assert_int_equal(gsh_exec(f->sh, script), status);
	got = output(f);
	if (strcmp(got, want))
		fail_msg("script '%s' printed '%s', expected '%s'", script, got,
			 want);
}

static void
test_error_texts(void **state)
{
	struct fx *f = *state;

	expect_out(f, "foo bar\n", GSH_ERROR,
		   "error: can't find command 'foo'.\n");
	expect_out(f, "linux /nonexistent/x\n", GSH_ERROR,
		   "error: file '/nonexistent/x' not found.\n");
	expect_out(f, "linux (host)/nonexistent/x\n", GSH_ERROR,
		   "error: file '/nonexistent/x' not found.\n");
	expect_out(f, "linux (nodev)/x\n", GSH_ERROR,
		   "error: disk 'nodev' not found.\n");
	expect_out(f, "linux vmlinuz\n", GSH_ERROR,
		   "error: invalid file name 'vmlinuz'.\n");
	expect_out(f, "linux\n", GSH_ERROR, "error: filename expected.\n");
	expect_out(f, "initrd /x\n", GSH_ERROR,
		   "error: you need to load the kernel first.\n");
	expect_out(f, "module /x\n", GSH_ERROR,
		   "error: you need to load the kernel first.\n");
	expect_out(f, "boot\n", GSH_ERROR,
		   "error: you need to load the kernel first.\n");
	/* The shell goes on after an error. */
	expect_out(f, "nope\necho still here\n", GSH_OK,
		   "error: can't find command 'nope'.\nstill here\n");
	expect_out(f, "linux /dev/null\n", GSH_ERROR,
		   "error: '/dev/null' is not a regular file.\n");
}

static void
test_set_and_expansion(void **state)
{
	struct fx *f = *state;

	expect_out(f,
		   "set a=hello\nb=world; echo $a ${b}! \"$a  $b\" '$a' "
		   "\\$a x\\\n y\n",
		   GSH_OK, "hello world! hello  world $a $a x y\n");
	expect_out(f, "unset a; echo x${a}x$undefined.\n", GSH_OK, "xx.\n");
	expect_out(f, "echo -n a; echo b\n", GSH_OK, "ab\n");
	expect_out(f, "echo -e 'a\\tb\\n'\n", GSH_OK, "a\tb\n\n");
	expect_out(f, "# a comment\n  echo one # two\n", GSH_OK, "one\n");
	expect_out(f, "set root=(hd0,msdos1)\n", GSH_OK, "");
	assert_string_equal(gsh_get(f->sh, "root"), "hd0,msdos1");
	expect_out(f, "set root=host; set 1x=2\n", GSH_ERROR,
		   "error: invalid variable name '1x'.\n");
	assert_string_equal(gsh_get(f->sh, "root"), "host");
}

static void
test_set_listing(void **state)
{
	struct fx *f = *state;
	char want[256];
	const char *got;

	assert_int_equal(gsh_exec(f->sh, "z=1; set\n"), GSH_OK);
	got = output(f);
	snprintf(want, sizeof(want), "root=host\nprefix=(host)%s\n", f->dir);
	assert_true(!strncmp(got, want, strlen(want)));
	/* What GRUB sets for grub-mkconfig's scripts, then ours. */
	assert_non_null(strstr(got, "\ngrub_platform=pc\n"));
	assert_non_null(strstr(got, "\nfeature_menuentry_id=y\n"));
	assert_non_null(strstr(got, "\nz=1\n"));
}

static void
test_menuentry_blocks(void **state)
{
	struct fx *f = *state;
	const char *script =
	    "set t=Third\n"
	    "menuentry \"First one\" --class debian --class gnu-linux {\n"
	    "\techo first\n"
	    "}\n"
	    "menuentry 'Second' --id second\n"
	    "{\n"
	    "\techo \"sec } ond\"\n"
	    "}\n"
	    "menuentry \"$t\" { echo third; }\n"
	    "submenu 'More' {\n menuentry Inner { echo inner }\n}\n";

	expect_out(f, script, GSH_OK, "");
	assert_int_equal(gsh_menu_size(f->sh), 4);
	assert_string_equal(gsh_menu_title(f->sh, 0), "First one");
	assert_string_equal(gsh_menu_title(f->sh, 1), "Second");
	assert_string_equal(gsh_menu_title(f->sh, 2), "Third");
	assert_string_equal(gsh_menu_title(f->sh, 3), "More");
	assert_null(gsh_menu_title(f->sh, 4));

	assert_true(gsh_incomplete("menuentry x {\n"));
	assert_true(gsh_incomplete("menuentry x {\n echo '}'\n"));
	assert_false(gsh_incomplete("menuentry x {\n}\n"));
	assert_true(gsh_incomplete("echo 'abc\n"));
	assert_true(gsh_incomplete("echo \"abc\n"));
	assert_false(gsh_incomplete("echo abc\n"));
	assert_false(gsh_incomplete("echo ${a}\n"));
	/* The header may end its line; the '{' comes on the next one. */
	assert_true(gsh_incomplete("menuentry x\n"));
	assert_false(gsh_incomplete("menuentry x\n{\n}\n"));
	assert_false(gsh_incomplete("echo menuentry\n"));
}

static void
test_syntax_errors(void **state)
{
	struct fx *f = *state;

	expect_out(f, "}\n", GSH_ERROR,
		   "error: syntax error: unexpected '}'.\n");
	expect_out(f, "echo 'abc\n", GSH_ERROR,
		   "error: syntax error: unterminated quote.\n");
	expect_out(f, "menuentry x {\n echo a\n", GSH_ERROR,
		   "error: syntax error: missing '}'.\n");
	expect_out(f, "echo { a }\n", GSH_ERROR,
		   "error: syntax error: unexpected '{'.\n");
	expect_out(f, "menuentry --class x { echo }\n", GSH_ERROR,
		   "error: menuentry needs a title.\n");
}

static void
test_functions(void **state)
{
	struct fx *f = *state;

	expect_out(f, "function f {\n echo in f $x\n}\nx=1; f; f\n", GSH_OK,
		   "in f 1\nin f 1\n");
	expect_out(f, "function r { r; }\nr\n", GSH_ERROR,
		   "error: too deeply nested.\n");
}

static void
test_menu_default(void **state)
{
	struct fx *f = *state;
	const char *got;

	assert_int_equal(gsh_run_config(f->sh,
					"default=1\ntimeout=0\n"
					"menuentry First { echo one }\n"
					"menuentry Second { echo two }\n"),
			 GSH_ERROR);
	got = output(f);
	assert_non_null(strstr(got, " * 1  Second\n"));
	assert_non_null(strstr(got, "Booting 'Second'\n\ntwo\n"));
	assert_null(strstr(got, "one\n"));
	/* Entries load nothing: GRUB's complaint. */
	assert_non_null(
	    strstr(got, "error: you need to load the kernel first.\n"));
	/* The config's menu is gone again. */
	assert_int_equal(gsh_menu_size(f->sh), 0);
	/* A default by title; an unknown one falls back to entry 0. */
	gsh_run_config(f->sh, "default=Second\nmenuentry First { echo one }\n"
			      "menuentry Second { echo two }\n");
	assert_non_null(strstr(output(f), "two\n"));
	gsh_run_config(f->sh, "default=9\nmenuentry First { echo one }\n");
	got = output(f);
	assert_non_null(strstr(got, "No menu entry '9'"));
	assert_non_null(strstr(got, "one\n"));
}

static void
test_linux_cmdline(void **state)
{
	struct fx *f = *state;
	char script[256], want[256];
	const char *k = tmp(f, "vmlinuz");

	write_bzimage(k);
	snprintf(script, sizeof(script), "linux %s root=/dev/vda quiet\n", k);
	expect_out(f, script, GSH_OK, "");
	snprintf(want, sizeof(want),
		 "console=ttyS0 BOOT_IMAGE=%s root=/dev/vda quiet", k);
	assert_string_equal(gsh_kernel_cmdline(f->sh), want);
	/* A console=ttyS0 of the user's own: nothing inserted. */
	snprintf(script, sizeof(script),
		 "linux (host)%s console=ttyS0,115200 'a b'\n", k);
	expect_out(f, script, GSH_OK, "");
	snprintf(want, sizeof(want),
		 "BOOT_IMAGE=(host)%s console=ttyS0,115200 \"a b\"", k);
	assert_string_equal(gsh_kernel_cmdline(f->sh), want);
	/* -n: no insertion. */
	f->cfg.no_console_insert = true;
	new_shell(f);
	snprintf(script, sizeof(script), "linux %s\n", k);
	expect_out(f, script, GSH_OK, "");
	snprintf(want, sizeof(want), "BOOT_IMAGE=%s", k);
	assert_string_equal(gsh_kernel_cmdline(f->sh), want);
	/* A bad kernel: the error names the file, nothing stays loaded. */
	snprintf(script, sizeof(script), "linux %s\n", tmp(f, "disk.img"));
	assert_int_equal(gsh_exec(f->sh, script), GSH_ERROR);
	assert_non_null(strstr(output(f), "too short"));
	assert_null(gsh_kernel_cmdline(f->sh));
}

static void
test_linux_boot(void **state)
{
	struct fx *f = *state;
	char script[512];
	uint64_t rip, rsi;
	struct vcpu *v;
	const char *k = tmp(f, "vmlinuz"), *r1 = tmp(f, "rd1"),
		   *r2 = tmp(f, "rd2");

	write_bzimage(k);
	write_file(r1, "0123", 4);
	write_file(r2, "abc", 3);
	snprintf(script, sizeof(script),
		 "linux %s root=/dev/vda\ninitrd %s %s\nboot\necho not here\n",
		 k, r1, r2);
	expect_out(f, script, GSH_BOOTED, "");
	v = vm_vcpu_open(f->ctx, 0);
	assert_int_equal(vm_get_register(v, VM_REG_GUEST_RIP, &rip), 0);
	assert_int_equal(vm_get_register(v, VM_REG_GUEST_RSI, &rsi), 0);
	assert_int_equal(rip, 0x1000200);
	assert_int_equal(rsi, 0x8000);
	assert_int_equal(le32_get(vm_map_gpa(f->ctx, 0x8000 + 0x21c, 4)),
			 7 + 1);
	assert_memory_equal(vm_map_gpa(f->ctx, (64 * MIB - 8) & ~0xfffULL, 7),
			    "0123abc", 7);
	assert_string_equal((char *)vm_map_gpa(f->ctx, 0x20000, 1),
			    gsh_kernel_cmdline(f->sh));
}

static void
test_initrd_errors(void **state)
{
	struct fx *f = *state;
	char script[256];
	const char *k = tmp(f, "vmlinuz");

	write_bzimage(k);
	snprintf(script, sizeof(script), "linux %s\ninitrd %s/none\n", k,
		 f->dir);
	assert_int_equal(gsh_exec(f->sh, script), GSH_ERROR);
	assert_non_null(strstr(output(f), "/none' not found.\n"));
	expect_out(f, "initrd\n", GSH_ERROR, "error: filename expected.\n");
}

static void
test_multiboot_boot(void **state)
{
	struct fx *f = *state;
	char script[512], want[256];
	const char *k = tmp(f, "mb.bin"), *m = tmp(f, "mod");
	uint64_t rax, rbx;
	uint8_t *mbi, *mods;
	struct vcpu *v;

	write_mbkernel(k);
	write_file(m, "module data", 11);
	snprintf(script, sizeof(script),
		 "multiboot %s arg1\nmodule --nounzip %s modarg\nboot\n", k, m);
	expect_out(f, script, GSH_BOOTED, "");
	v = vm_vcpu_open(f->ctx, 0);
	assert_int_equal(vm_get_register(v, VM_REG_GUEST_RAX, &rax), 0);
	assert_int_equal(vm_get_register(v, VM_REG_GUEST_RBX, &rbx), 0);
	assert_int_equal(rax, MB_BOOTLOADER_MAGIC);
	mbi = vm_map_gpa(f->ctx, rbx, MBI_SIZE);
	assert_non_null(mbi);
	snprintf(want, sizeof(want), "%s arg1", k);
	assert_string_equal(
	    (char *)vm_map_gpa(f->ctx, le32_get(mbi + MBI_CMDLINE_PTR), 1),
	    want);
	assert_int_equal(le32_get(mbi + MBI_MODS_COUNT), 1);
	mods = vm_map_gpa(f->ctx, le32_get(mbi + MBI_MODS_ADDR), 16);
	snprintf(want, sizeof(want), "%s modarg", m);
	assert_string_equal((char *)vm_map_gpa(f->ctx, le32_get(mods + 8), 1),
			    want);
	assert_memory_equal(vm_map_gpa(f->ctx, le32_get(mods), 11),
			    "module data", 11);
	/* Not a multiboot kernel: a one-line error naming the file. */
	snprintf(script, sizeof(script), "multiboot %s\n", m);
	assert_int_equal(gsh_exec(f->sh, script), GSH_ERROR);
	assert_non_null(strstr(output(f), "no multiboot header"));
}

static void
test_device_map(void **state)
{
	struct fx *f = *state;
	struct gdev_map m = {0};
	char err[1200], path[200];
	FILE *fp;

	assert_int_equal(gdev_map_add_line(&m, "# comment", err, 0), 0);
	assert_int_equal(gdev_map_add_line(&m, "   ", err, 0), 0);
	assert_int_equal(
	    gdev_map_add_line(&m, "(hd0)\t/dev/null  ", err, sizeof(err)), 0);
	assert_string_equal(m.dev[0].name, "hd0");
	assert_string_equal(m.dev[0].path, "/dev/null");
	assert_int_equal(gdev_map_add_line(&m, "hd1 /x", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no open parenthesis"));
	assert_int_equal(gdev_map_add_line(&m, "(hd1 /x", err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "no close parenthesis"));
	assert_int_equal(gdev_map_add_line(&m, "(hd1)", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no file name"));
	assert_int_equal(
	    gdev_map_add_line(&m, "(hd1) /no/such.img", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(
	    gdev_map_add_line(&m, "(hd0) /dev/zero", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "twice"));
	assert_int_equal(
	    gdev_map_add_line(&m, "(host) /dev/zero", err, sizeof(err)), -1);
	assert_int_equal(
	    gdev_map_add_line(&m, "() /dev/zero", err, sizeof(err)), -1);
	assert_non_null(gdev_find(&m, "hd0,msdos1"));
	assert_null(gdev_find(&m, "hd1"));

	snprintf(path, sizeof(path), "%s/device.map", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("(hd0) /dev/null\n(cd0) /dev/zero\n(hd1 /dev/null\n", fp);
	fclose(fp);
	memset(&m, 0, sizeof(m));
	assert_int_equal(gdev_map_load(&m, path, err, sizeof(err)), -1);
	assert_true(!strncmp(err, path, strlen(path)));
	assert_non_null(strstr(err, ":3: no close parenthesis"));
	assert_int_equal(gdev_map_load(&m, "/no/map", err, sizeof(err)), -1);
}

static void
test_ls(void **state)
{
	struct fx *f = *state;
	char script[256], want[256];

	expect_out(f, "ls\n", GSH_OK, "(host) (hd0)\n");
	assert_int_equal(gsh_exec(f->sh, "ls (hd0)\n"), GSH_OK);
	assert_non_null(strstr(output(f), "No known filesystem detected"));
	/* An empty disk: GRUB's words for a device with no file system. */
	expect_out(f, "ls (hd0)/boot\n", GSH_ERROR,
		   "error: unknown filesystem.\n");
	expect_out(f, "set root=hd0; cat /x\n", GSH_ERROR,
		   "error: unknown filesystem.\n");
	gsh_set(f->sh, "root", "host");
	mkdir(tmp(f, "sub"), 0755);
	write_file(tmp(f, ".hidden"), "", 0);
	snprintf(script, sizeof(script), "ls %s\n", f->dir);
	expect_out(f, script, GSH_OK, "disk.img sub/ \n");
	snprintf(script, sizeof(script), "ls -a %s/\n", f->dir);
	expect_out(f, script, GSH_OK, ".hidden disk.img sub/ \n");
	snprintf(script, sizeof(script), "ls %s/disk.img\n", f->dir);
	expect_out(f, script, GSH_OK, "disk.img\n");
	snprintf(script, sizeof(script), "ls %s/nothing\n", f->dir);
	snprintf(want, sizeof(want), "error: file '%s/nothing' not found.\n",
		 f->dir);
	expect_out(f, script, GSH_ERROR, want);
	snprintf(script, sizeof(script), "cat %s/disk.img\n", f->dir);
	expect_out(f, script, GSH_OK, "x\n");
}

static void
test_search(void **state)
{
	struct fx *f = *state;
	char script[256];

	snprintf(
	    script, sizeof(script),
	    "set root=hd0\nsearch --no-floppy --file --set=root %s/disk.img"
	    "\necho $root\n",
	    f->dir);
	expect_out(f, script, GSH_OK, "host\n");
	expect_out(f, "search --label foo\n", GSH_ERROR,
		   "error: no such device: foo.\n");
	expect_out(f, "search foo\n", GSH_ERROR,
		   "error: unspecified search type.\n");
	expect_out(f, "insmod part_msdos; insmod ext2\n", GSH_OK, "");
}

static void
test_repl(void **state)
{
	struct fx *f = *state;
	char script[512];
	const char *k = tmp(f, "vmlinuz");

	write_bzimage(k);
	snprintf(script, sizeof(script),
		 "echo hi\nmenuentry x {\n echo in\n}\nlinux %s\nboot\n"
		 "echo after boot\n",
		 k);
	assert_int_equal(write(f->pipe[1], script, strlen(script)),
			 (ssize_t)strlen(script));
	close(f->pipe[1]);
	f->pipe[1] = -1;
	assert_int_equal(gsh_repl(f->sh), GSH_BOOTED);
	assert_string_equal(output(f), "hi\n");
	assert_int_equal(gsh_menu_size(f->sh), 1);
}

static void
test_repl_eof_and_exit(void **state)
{
	struct fx *f = *state;
	const char *s = "echo a\nmenuentry open {\necho b\n";

	assert_int_equal(write(f->pipe[1], s, strlen(s)), (ssize_t)strlen(s));
	close(f->pipe[1]);
	f->pipe[1] = -1;
	assert_int_equal(gsh_repl(f->sh), GSH_EOF);
	assert_string_equal(output(f),
			    "a\nerror: syntax error: missing '}'.\n");
	assert_int_equal(gsh_exec(f->sh, "exit\necho no\n"), GSH_EXIT);
	assert_string_equal(output(f), "");
}

static void
test_root_grub_cfg(void **state)
{
	struct fx *f = *state;
	char cfg[512];
	const char *k = tmp(f, "mb.bin");

	write_mbkernel(k);
	snprintf(cfg, sizeof(cfg),
		 "set default=1\nset timeout=3\n"
		 "menuentry 'wrong' { echo wrong; multiboot %s wrong }\n"
		 "menuentry 'right' {\n echo right\n multiboot (host)%s right\n"
		 "}\n",
		 k, k);
	write_file(tmp(f, "grub.cfg"), cfg, strlen(cfg));
	close(f->pipe[1]);
	f->pipe[1] = -1;
	assert_int_equal(gsh_main(f->sh), GSH_BOOTED);
	assert_non_null(strstr(output(f), "Booting 'right'\n\nright\n"));
	assert_null(strstr(f->buf, "\nwrong\n"));
}

/* Random scripts: error lines or output, never a crash (ASan/UBSan). */
static void
test_random_scripts(void **state)
{
	static const char *const atoms[] = {
	    " ",	"\t", "\n",	 ";",	   "{",	  "}",
	    "'",	"\"", "\\",	 "$",	   "${",  "#",
	    "=",	"a",  "x=1",	 "echo",   "set", "menuentry",
	    "function", "f",  "submenu", "-e",	   "-n",  "unset",
	    "boot",	"ls", "search",	 "--file",
	};
	struct fx *f = *state;
	unsigned seed = 3;
	char text[256];

	for (int i = 0; i < 3000; i++) {
		size_t n = 0;

		while (n < sizeof(text) - 16) {
			const char *a;

			seed = seed * 1103515245 + 12345;
			if ((seed >> 16) % 40 == 0)
				break;
			a = atoms[(seed >> 8) %
				  (sizeof(atoms) / sizeof(*atoms))];
			memcpy(text + n, a, strlen(a));
			n += strlen(a);
		}
		text[n] = '\0';
		gsh_incomplete(text);
		assert_int_not_equal(gsh_exec(f->sh, text), GSH_BOOTED);
		output(f);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_error_texts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_and_expansion, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_set_listing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_menuentry_blocks, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_syntax_errors, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_functions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_menu_default, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_linux_cmdline, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_linux_boot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_initrd_errors, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_multiboot_boot, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_device_map, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ls, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_search, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_repl, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_repl_eof_and_exit, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_root_grub_cfg, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_random_scripts, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
