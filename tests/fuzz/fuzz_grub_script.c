/*
 * libFuzzer target: grub-bhyve's script interpreter (grub_script.c,
 * grub_shell.c's menus, grub_cmds.c, grub_cmd_test.c, grub_cmd_search.c)
 * on arbitrary grub.cfg text, as a guest's disk may hold.
 *
 * Input: the text of a config file (NUL bytes end it, as when grub-bhyve
 * reads one). Each run makes a fresh shell whose (host) is a fixture
 * directory only (GDEV_HOST_DIR: a grubenv, an included config, an empty
 * file), with a (hd0) of /dev/null, no terminal (menus boot their default
 * at once) and a loader hook instead of files (linux, initrd, boot... are
 * recorded, never loaded; every third one fails). It checks the syntax
 * (gsh_incomplete), runs the text as a config with its menu, then once
 * more as commands in the same shell. Bounds (nesting, commands per run,
 * output, variables) keep each run short; ASan and UBSan do the rest.
 *
 * Seeds: tests/fuzz/grub_script_seeds.sh CORPUS.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grub_dev.h"
#include "grub_shell.h"
#include "vmm.h"

static struct vmctx *ctx;
static struct gdev_map map;
static char dir[64];
static FILE *null_out;
static int null_in;
static unsigned hook_calls;

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_grub_script: %s\n", what);
	abort();
}

static void
put_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f))
		die(path);
}

static int
hook(void *arg, const char *root, int argc, char **argv)
{
	(void)arg;
	(void)root;
	(void)argc;
	(void)argv;
	return ++hook_calls % 3 ? GSH_OK : GSH_ERROR;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/fuzz_grub_scriptXXXXXX");
	if (!mkdtemp(dir))
		die("mkdtemp");
	put_file("grubenv", "# GRUB Environment Block\nsaved_entry=1>0\n"
			    "next_entry=\nx=a\\\\b\n#####\n");
	put_file("custom.cfg", "menuentry custom { linux /vmlinuz }\n");
	put_file("empty", "");
	ctx = vm_create_mock(64 << 20);
	null_out = fopen("/dev/null", "w");
	null_in = open("/dev/null", O_RDONLY);
	if (!ctx || !null_out || null_in < 0)
		die("set-up");
	if (gdev_map_add_line(&map, "(hd0) /dev/null", err, sizeof(err)) < 0)
		die(err);
	map.host = GDEV_HOST_DIR;
	snprintf(map.host_dir, sizeof(map.host_dir), "%s", dir);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gsh_config c = {
	    .ctx = ctx,
	    .map = &map,
	    .root = "host",
	    .cfg_dir = "/",
	    .in_fd = null_in,
	    .out = null_out,
	    .load_hook = hook,
	};
	char *text = strndup((const char *)data, size);
	struct gsh *sh;

	if (!text)
		die("out of memory");
	sh = gsh_create(&c);
	if (!sh)
		die("gsh_create");
	gsh_incomplete(text);
	gsh_run_config(sh, text);
	gsh_exec(sh, text);
	gsh_free(sh);
	free(text);
	return 0;
}
