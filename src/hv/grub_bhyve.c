/*
 * grub-bhyve: load a kernel into a VM instance the way grub2-bhyve does,
 * for bhyve to run.
 *
 *   grub-bhyve [-m DEVICE.MAP] [-r ROOT] [-H HOSTDIR] [-M SIZE] [-c CONS]
 *              [-d DIR] [-g CFG] [-n] [-S] [-e] [-h] VMNAME
 *
 * It (re-)creates instance VMNAME with SIZE of fresh memory (bhyve -m
 * syntax, default 256M; an existing instance gets new memory and loses its
 * boot state), runs ROOT's DIR/CFG (default: grub.cfg in /boot/grub,
 * /grub or /boot/grub2; with a whole disk as ROOT, on its first partition
 * that has one) if there is one, then reads GRUB commands from the
 * console (CONS: a terminal such as /dev/nmdm0A or /dev/pts/N, or
 * "stdio", the default),
 * with a "grub> " prompt on a terminal. `boot` leaves the loaded kernel in
 * the instance's memory and vCPU 0 at its entry, and grub-bhyve exits 0;
 * the end of the input (or exit) without a boot exits 1.
 *
 *   -m  device.map: "(hd0) /path/disk.img" lines (see grub_dev.h)
 *   -r  the root device for plain paths: host (the default), hd0,
 *       hd0,msdos1, hd0,gpt2, cd0, lvm/VG-LV
 *   -H  (host) is the host directory HOSTDIR and what lies beneath it.
 *       Without -H, (host) is the whole host file system when the root
 *       is host (as grub2-bhyve's -r host) and off when the root is a
 *       guest device: a guest's grub.cfg cannot read host files.
 *   -n  no "console=ttyS0" at the front of Linux command lines
 *   -e  no 80x25 VGA text screen in Linux's boot_params
 *   -S  wire guest memory (accepted; nothing to do on Linux)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "grub_dev.h"
#include "grub_shell.h"
#include "options.h"
#include "vmm.h"

#define DEFAULT_MEM "256M"

struct opts {
	const char *devmap, *root, *hostdir, *cons, *dir, *cfg, *vmname;
	uint64_t memsize;
	bool no_cons, no_vga;
};

static void
usage(FILE *f)
{
	fputs("usage: grub-bhyve [-m DEVICE.MAP] [-r ROOT] [-H HOSTDIR] "
	      "[-M SIZE] [-c CONS] [-d DIR]\n"
	      "                  [-g CFG] [-n] [-S] [-e] [-h] VMNAME\n"
	      "  -m  device map: lines like '(hd0) /path/disk.img'\n"
	      "  -r  root device for paths without one (default host): "
	      "hd0,msdos1, cd0, lvm/vg-root...\n"
	      "  -H  (host) is this host directory only (without -H: the "
	      "host's files with -r host, none with a guest root)\n"
	      "  -M  guest memory, as bhyve -m: K/M/G/T suffix, none = MiB "
	      "(default " DEFAULT_MEM ")\n"
	      "  -c  console for the shell: a tty path or stdio (default)\n"
	      "  -d  directory of grub.cfg on the root device (default: "
	      "/boot/grub, /grub, /boot/grub2)\n"
	      "  -g  name of grub.cfg (default grub.cfg)\n"
	      "  -n  no console=ttyS0 at the front of Linux command lines\n"
	      "  -e  no VGA text screen size in Linux's boot parameters\n"
	      "  -S  wire guest memory (accepted, nothing to do here)\n",
	      f);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
fail(const char *fmt, ...)
{
	va_list ap;

	fputs("grub-bhyve: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void
parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
	    {"device-map", required_argument, NULL, 'm'},
	    {"root", required_argument, NULL, 'r'},
	    {"hostdir", required_argument, NULL, 'H'},
	    {"memory", required_argument, NULL, 'M'},
	    {"cons-dev", required_argument, NULL, 'c'},
	    {"directory", required_argument, NULL, 'd'},
	    {"grub-cfg", required_argument, NULL, 'g'},
	    {"ncons", no_argument, NULL, 'n'},
	    {"evga", no_argument, NULL, 'e'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *mem = DEFAULT_MEM;
	int c;

	memset(o, 0, sizeof(*o));
	while ((c = getopt_long(argc, argv, "m:r:H:M:c:d:g:nSevh", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'm':
			o->devmap = optarg;
			break;
		case 'r':
			o->root = optarg;
			break;
		case 'H':
			o->hostdir = optarg;
			break;
		case 'M':
			mem = optarg;
			break;
		case 'c':
			o->cons = optarg;
			break;
		case 'd':
			o->dir = optarg;
			break;
		case 'g':
			o->cfg = optarg;
			break;
		case 'n':
			o->no_cons = true;
			break;
		case 'e':
			o->no_vga = true;
			break;
		case 'S':
		case 'v':
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(1);
		}
	}
	if (argc - optind != 1)
		fail("need exactly one VM name (see grub-bhyve -h)");
	o->vmname = argv[optind];
	if (parse_memsize(mem, &o->memsize) < 0 || o->memsize < (1ULL << 20) ||
	    (o->memsize & 0xfff))
		fail("bad memory size '%s': use e.g. 512M, 2G or 1024 (MiB), "
		     "at least 1 MiB",
		     mem);
	if (o->root && !*o->root)
		fail("empty root device: use e.g. -r host or -r hd0,msdos1");
}

/*
 * What (host) reaches: beneath -H DIR; all of the host with a host root
 * (-r host, or no -r); nothing when the root is a guest device.
 */
static void
set_host_access(const struct opts *o, struct gdev_map *map)
{
	struct stat st;
	const char *root = o->root ? o->root : "host";

	if (root[0] == '(')
		root++;
	if (o->hostdir) {
		if (stat(o->hostdir, &st) < 0 || !S_ISDIR(st.st_mode))
			fail("-H %s: not a directory: give the host directory "
			     "that (host) may read",
			     o->hostdir);
		if (strlen(o->hostdir) >= sizeof(map->host_dir))
			fail("-H %s: the path is too long", o->hostdir);
		map->host = GDEV_HOST_DIR;
		snprintf(map->host_dir, sizeof(map->host_dir), "%s",
			 o->hostdir);
	} else if (!strncmp(root, "host", 4) &&
		   (root[4] == '\0' || root[4] == ')' || root[4] == ',')) {
		map->host = GDEV_HOST_ALL;
	} else {
		map->host = GDEV_HOST_OFF;
	}
}

/* Drop an old instance's memory and boot state so it starts clean. */
static void
reset_instance(struct vmctx *ctx)
{
	if (vm_reset_instance(ctx) < 0)
		fail("%s", vm_strerror());
}

static struct vmctx *
make_instance(const struct opts *o)
{
	struct vmctx *ctx = vm_create(o->vmname, VMM_BACKEND_STORE);

	if (!ctx)
		fail("%s", vm_strerror());
	if (vm_claim(ctx) < 0) {
		if (errno != EBUSY)
			fail("%s", vm_strerror());
		fail("VM '%s' is in use by a running bhyve: stop it or "
		     "bhyvectl --destroy --vm=%s first",
		     o->vmname, o->vmname);
	}
	reset_instance(ctx);
	if (vm_setup_memory(ctx, o->memsize) < 0)
		fail("%s: %s", o->vmname, vm_strerror());
	return ctx;
}

/* The shell's console: stdin/stdout, or a terminal device (-c). */
static void
open_console(const char *cons, int *in_fd, FILE **out)
{
	int fd;

	if (!cons || !strcmp(cons, "stdio")) {
		*in_fd = STDIN_FILENO;
		*out = stdout;
	} else {
		fd = open(cons, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			fail("console %s: %s", cons, strerror(errno));
		*in_fd = fd;
		*out = fdopen(dup(fd), "w");
		if (!*out)
			fail("console %s: %s", cons, strerror(errno));
	}
	setvbuf(*out, NULL, _IOLBF, 0);
}

int
main(int argc, char **argv)
{
	static struct gdev_map map;
	char err[GDEV_PATH_MAX + 128];
	struct gsh_config gc = {0};
	struct vmctx *ctx;
	struct opts o;
	struct gsh *sh;
	int r;

	parse_args(argc, argv, &o);
	if (o.devmap && gdev_map_load(&map, o.devmap, err, sizeof(err)) < 0)
		fail("%s", err);
	set_host_access(&o, &map);
	open_console(o.cons, &gc.in_fd, &gc.out);
	ctx = make_instance(&o);
	gc.ctx = ctx;
	gc.map = &map;
	gc.root = o.root;
	gc.cfg_dir = o.dir;
	gc.cfg_name = o.cfg;
	gc.no_console_insert = o.no_cons;
	gc.no_vga_info = o.no_vga;
	gc.interactive = isatty(gc.in_fd);
	sh = gsh_create(&gc);
	if (!sh)
		fail("out of memory");
	r = gsh_main(sh);
	gsh_free(sh);
	fflush(gc.out);
	/* Closing saves vCPU 0's state as the instance's boot state. */
	vm_close(ctx);
	if (r == GSH_BOOTED)
		return 0;
	fprintf(stderr, "grub-bhyve: %s: no kernel was booted\n", o.vmname);
	return 1;
}
