/*
 * libFuzzer target: bhyve's command line and config tree (options.c,
 * config.c, every device's option parser): what bhyverun does with argv
 * before a machine exists, and the -k file.
 *
 * Input: the -k file's text, a 0xff byte, then argv[1..] as NUL-separated
 * words (no 0xff byte: all argv, an empty file). Each run parses argv into
 * a fresh tree with bhyve's defaults, then checks it (%(ref) expansion,
 * booleans), turns it into settings, warns and dumps it, as bhyverun does.
 *
 * -k's argument is always the input's file (a memfd), whatever the input
 * names: the fuzzer must not read host files (/dev/zero would never end).
 * Output (-h, and -l help and -s help, which print on stdout) goes to
 * /dev/null.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "options.h"

#define MAX_ARGS 64

static int kfd = -1;
static char kpath[64];
static FILE *devnull;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	kfd = memfd_create("fuzz-k", 0);
	devnull = fopen("/dev/null", "w");
	if (kfd < 0 || !devnull || !freopen("/dev/null", "w", stdout)) {
		fprintf(stderr, "fuzz_options: cannot set up\n");
		abort();
	}
	snprintf(kpath, sizeof(kpath), "/proc/self/fd/%d", kfd);
	return 0;
}

/*
 * Point every -k at the input's file, following getopt: in an option word,
 * letters up to the first that takes an argument are flags; that one takes
 * the rest of the word, or the next word.
 */
static void
redirect_k(char **av, int ac)
{
	static const char with_arg[] = "fkopGcsmlKU";

	for (int i = 1; i < ac; i++) {
		char *w = av[i];

		if (!strcmp(w, "--"))
			return;
		if (w[0] != '-' || !w[1])
			continue;
		for (char *c = w + 1; *c; c++) {
			if (!strchr(with_arg, *c))
				continue;
			if (*c == 'k') {
				c[1] = '\0';
				if (i + 1 < ac)
					av[i + 1] = kpath;
			}
			if (!c[1])
				i++; /* the next word is the argument */
			break;
		}
	}
}

static void
parse(char **av, int ac)
{
	struct config *cfg = config_create();
	struct bhyve_settings s;
	char err[512];

	bhyve_set_defaults(cfg);
	if (bhyve_parse_args(ac, av, cfg, devnull, err, sizeof(err)) ==
		OPT_RUN &&
	    bhyve_check_config(cfg, devnull, err, sizeof(err)) == 0) {
		(void)bhyve_settings(cfg, &s, err, sizeof(err));
		bhyve_warn_inert(cfg, devnull);
		config_dump(cfg, devnull);
	}
	config_free(cfg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memchr(data, 0xff, size);
	size_t klen = sep ? (size_t)(sep - data) : 0;
	char *words, *av[MAX_ARGS + 2];
	int ac = 0;

	if (ftruncate(kfd, 0) < 0 ||
	    pwrite(kfd, data, klen, 0) != (ssize_t)klen)
		abort();
	if (sep) {
		size -= klen + 1;
		data = sep + 1;
	}
	/* A copy that ends in NUL, so the last word ends. */
	words = malloc(size + 1);
	if (!words)
		return 0;
	memcpy(words, data, size);
	words[size] = '\0';
	av[ac++] = "bhyve";
	for (size_t i = 0; i <= size && ac <= MAX_ARGS;
	     i += strlen(words + i) + 1)
		av[ac++] = words + i;
	av[ac] = NULL;
	redirect_k(av, ac);
	parse(av, ac);
	free(words);
	return 0;
}
