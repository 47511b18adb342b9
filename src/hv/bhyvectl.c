/*
 * bhyvectl(8): manage VM instances. --create and --destroy as FreeBSD has
 * them; --list shows the instances (FreeBSD users run ls /dev/vmm).
 * --destroy ends the bhyve that holds the instance's lock (the kernel names
 * it; no pid is read from a file) and removes the instance's files without
 * following links (vmm_instance.c).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "vmm.h"

static void
usage(FILE *f)
{
	fprintf(f, "Usage: bhyvectl --vm=NAME [--create] [--destroy]\n"
		   "       bhyvectl --list\n");
}

static void
print_vm(const char *name, bool running, void *arg)
{
	(void)arg;
	printf("%s%s\n", name, running ? "\trunning" : "");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"vm", required_argument, NULL, 'v'},
		{"create", no_argument, NULL, 'c'},
		{"destroy", no_argument, NULL, 'd'},
		{"list", no_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *vm = NULL;
	bool create = false, destroy = false, list = false;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
			vm = optarg;
			break;
		case 'c':
			create = true;
			break;
		case 'd':
			destroy = true;
			break;
		case 'l':
			list = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bhyvectl: unexpected argument '%s'\n",
			argv[optind]);
		return 1;
	}
	if (list) {
		if (vm_list(print_vm, NULL) == 0)
			return 0;
		fprintf(stderr, "bhyvectl: %s\n", vm_strerror());
		return 1;
	}
	if (!vm || (!create && !destroy)) {
		usage(stderr);
		return 1;
	}
	if (create) {
		struct vmctx *ctx = vm_create(vm, VMM_BACKEND_STORE);
		if (!ctx) {
			fprintf(stderr, "bhyvectl: %s\n", vm_strerror());
			return 1;
		}
		vm_close(ctx);
	}
	if (destroy && vm_destroy_instance(vm) < 0) {
		fprintf(stderr, "bhyvectl: %s\n", vm_strerror());
		return 1;
	}
	return 0;
}
