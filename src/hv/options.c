/*
 * bhyve(8)'s options, each turned into bhyve_config(5) variables, so that
 * the command line, -o key=value and -k FILE are one thing.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fwcfg.h"
#include "options.h"
#include "pci_emul.h"
#include "pci_lpc.h"
#include "vmm.h"

void
bhyve_usage(FILE *f)
{
	fprintf(f, "Usage: bhyve [-aCDeHhPSuWwxY]\n"
		   "       [-c [[cpus=]numcpus][,sockets=n][,cores=n]"
		   "[,threads=n]]\n"
		   "       [-f name,(string|file)=value] [-G [w][address:]port]\n"
		   "       [-k config_file]\n"
		   "       [-l lpc] [-m mem] [-o var=value]\n"
		   "       [-p vcpu:hostcpu] [-s pci] [-U uuid] vmname\n"
		   "  -a: local APIC in xAPIC mode, x2APIC hidden\n"
		   "  -A: accepted; ACPI tables are always built\n"
		   "  -c: number of CPUs and/or topology specification\n"
		   "  -C: include guest memory in core file\n"
		   "  -D: destroy on power-off\n"
		   "  -e: exit on unhandled I/O access\n"
		   "  -f: fw_cfg file for the guest (with -l fwcfg,qemu)\n"
		   "  -G: gdb stub on address:port (127.0.0.1); w: wait for it\n"
		   "  -H: vmexit from the guest on HLT (always, on KVM)\n"
		   "  -h: help\n"
		   "  -k: key=value flat config file\n"
		   "  -K: keyboard layout (ignored: no VNC framebuffer yet)\n"
		   "  -l: LPC device configuration (-l help lists them)\n"
		   "  -m: memory size (K/M/G/T suffix; MiB when none)\n"
		   "  -o: set config 'var' to 'value'\n"
		   "  -P: vmexit from the guest on pause loops (always, on KVM)\n"
		   "  -p: pin 'vcpu' to 'hostcpu'\n"
		   "  -S: wire guest memory (mlock; mind ulimit -l)\n"
		   "  -s: <slot,driver,configinfo> PCI slot config (-s help)\n"
		   "  -U: UUID\n"
		   "  -u: RTC keeps UTC time\n"
		   "  -W: force virtio to use single-vector MSI\n"
		   "  -w: ignore unimplemented MSRs (read 0, writes dropped)\n"
		   "  -x: local APIC is in x2APIC mode\n"
		   "  -Y: disable MPtable generation\n");
}

void
bhyve_set_defaults(struct config *cfg)
{
	char err[128];

	config_set(cfg, "memory.size", "256M", err, sizeof(err));
	config_set(cfg, "x86.strictmsr", "true", err, sizeof(err));
	config_set(cfg, "x86.mptable", "true", err, sizeof(err));
	config_set(cfg, "rtc.use_localtime", "true", err, sizeof(err));
}

int
parse_memsize(const char *s, uint64_t *out)
{
	char *end;
	uint64_t v, mult;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case '\0':
		mult = 1ULL << 20; /* bhyve(8): no suffix means megabytes */
		break;
	case 'k':
	case 'K':
		mult = 1ULL << 10;
		break;
	case 'm':
	case 'M':
		mult = 1ULL << 20;
		break;
	case 'g':
	case 'G':
		mult = 1ULL << 30;
		break;
	case 't':
	case 'T':
		mult = 1ULL << 40;
		break;
	default:
		return -1;
	}
	if (*end && end[1] != '\0' && strcasecmp(end + 1, "b") != 0)
		return -1;
	if (v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

static int
topo_num(const char *key, const char *v, int *out, char *err, size_t errlen)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < 1 || n > VM_MAXCPU) {
		snprintf(err, errlen, "-c: bad %s '%s' (1..%d)", key, v,
			 VM_MAXCPU);
		return -1;
	}
	*out = (int)n;
	return 0;
}

int
parse_topology(struct config *cfg, const char *s, char *err, size_t errlen)
{
	static const char *const keys[] = {"cpus", "sockets", "cores",
					   "threads"};
	char *copy = strdup(s), *save = NULL;
	int val[4] = {0}, rc = 0;
	char num[16];

	if (!copy)
		return -1;
	for (char *tok = strtok_r(copy, ",", &save); tok && !rc;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		int k = -1;

		if (!eq) {
			/* A bare number is the CPU count, first only. */
			if (tok != copy) {
				snprintf(err, errlen, "-c %s: bad '%s'", s,
					 tok);
				rc = -1;
				break;
			}
			rc = topo_num("cpus", tok, &val[0], err, errlen);
			continue;
		}
		*eq = '\0';
		for (int i = 0; i < 4; i++)
			if (!strcmp(tok, keys[i]))
				k = i;
		if (k < 0) {
			snprintf(err, errlen, "-c %s: unknown key '%s'", s,
				 tok);
			rc = -1;
			break;
		}
		rc = topo_num(keys[k], eq + 1, &val[k], err, errlen);
	}
	free(copy);
	if (rc)
		return rc;
	if (!val[0] && !val[1] && !val[2] && !val[3]) {
		snprintf(err, errlen, "-c %s: no CPU count", s);
		return -1;
	}
	for (int i = 0; i < 4; i++) {
		if (!val[i])
			continue;
		snprintf(num, sizeof(num), "%d", val[i]);
		if (config_set(cfg, keys[i], num, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int
set(struct config *cfg, const char *k, const char *v, char *err, size_t errlen)
{
	return config_set(cfg, k, v, err, errlen);
}

/*
 * bhyve(8) -G [w][address:]port: a leading 'w' is gdb.wait (the guest
 * waits for the debugger), what comes before the last ':' gdb.address.
 */
static int
parse_gdb(struct config *cfg, const char *arg, char *err, size_t errlen)
{
	char addr[256];
	const char *colon;
	int rc = 0;

	if (arg[0] == 'w') {
		rc = set(cfg, "gdb.wait", "true", err, errlen);
		arg++;
	}
	colon = strrchr(arg, ':');
	if (rc == 0 && colon) {
		if ((size_t)(colon - arg) >= sizeof(addr)) {
			snprintf(err, errlen, "-G: address too long");
			return -1;
		}
		memcpy(addr, arg, colon - arg);
		addr[colon - arg] = '\0';
		rc = set(cfg, "gdb.address", addr, err, errlen);
		arg = colon + 1;
	}
	if (rc == 0)
		rc = set(cfg, "gdb.port", arg, err, errlen);
	return rc;
}

/* -p vcpu:hostcpu -> vcpu.N.cpuset; each -p for a vCPU adds a CPU. */
static int
parse_pin(struct config *cfg, const char *s, char *err, size_t errlen)
{
	int vcpu, host;
	char key[32], val[512], extra;
	const char *old;

	if (sscanf(s, "%d:%d%c", &vcpu, &host, &extra) != 2 || vcpu < 0 ||
	    vcpu >= VM_MAXCPU || host < 0 || host >= CPU_SETSIZE) {
		snprintf(err, errlen, "-p %s: expected vcpu:hostcpu", s);
		return -1;
	}
	snprintf(key, sizeof(key), "vcpu.%d.cpuset", vcpu);
	old = config_get(cfg, key);
	if (old && strlen(old) + 16 < sizeof(val))
		snprintf(val, sizeof(val), "%s,%d", old, host);
	else
		snprintf(val, sizeof(val), "%d", host);
	return set(cfg, key, val, err, errlen);
}

/* One "N" or "N-M" of a CPU list; *end gets what follows it. */
static int
cpu_range(const char *p, long nhost, long *lo, long *hi, char **end)
{
	errno = 0;
	if (!isdigit((unsigned char)*p))
		return -1;
	*lo = *hi = strtol(p, end, 10);
	if (**end == '-') {
		p = *end + 1;
		if (!isdigit((unsigned char)*p))
			return -1;
		*hi = strtol(p, end, 10);
	}
	return errno || *hi < *lo || *hi >= CPU_SETSIZE ? -1
	       : *hi >= nhost				? -2
							: 0;
}

int
parse_cpuset(const char *s, long nhost, cpu_set_t *set, char *err,
	     size_t errlen)
{
	const char *p = s;

	CPU_ZERO(set);
	for (;;) {
		long lo, hi;
		char *end;
		int rc = cpu_range(p, nhost, &lo, &hi, &end);

		if (rc == -2) {
			snprintf(err, errlen,
				 "host CPU %ld does not exist (this host has "
				 "%ld: 0-%ld)",
				 hi, nhost, nhost - 1);
			return -1;
		}
		if (rc < 0 || (*end != ',' && *end != '\0')) {
			snprintf(err, errlen,
				 "bad CPU list '%s' (e.g. 2, 0-3, 0,2-3)", s);
			return -1;
		}
		for (long c = lo; c <= hi; c++)
			CPU_SET(c, set);
		if (*end == '\0')
			return 0;
		p = end + 1;
	}
}

/* vcpu.N.cpuset for every vCPU that has one. */
static int
vcpu_cpusets(struct config *cfg, struct bhyve_settings *s, char *err,
	     size_t errlen)
{
	long nhost = sysconf(_SC_NPROCESSORS_CONF);
	char key[32], why[160];

	for (int i = 0; i < s->cpus; i++) {
		const char *v;

		snprintf(key, sizeof(key), "vcpu.%d.cpuset", i);
		v = config_get(cfg, key);
		if (!v)
			continue;
		if (parse_cpuset(v, nhost, &s->cpuset[i], why, sizeof(why)) <
		    0) {
			snprintf(err, errlen, "%s: %s", key, why);
			return -1;
		}
		s->pinned[i] = true;
	}
	return 0;
}

static enum opt_result
one_option(int c, const char *arg, struct config *cfg, FILE *out, char *err,
	   size_t errlen)
{
	int rc = 0;

	switch (c) {
	case 'a':
		rc = set(cfg, "x86.x2apic", "false", err, errlen);
		break;
	case 'A':
		break; /* ACPI tables are always built (acpi.h), as in bhyve */
	case 'c':
		rc = parse_topology(cfg, arg, err, errlen);
		break;
	case 'C':
		rc = set(cfg, "memory.guest_in_core", "true", err, errlen);
		break;
	case 'D':
		rc = set(cfg, "destroy_on_poweroff", "true", err, errlen);
		break;
	case 'e':
		rc = set(cfg, "x86.strictio", "true", err, errlen);
		break;
	case 'f':
		rc = fwcfg_parse_file(cfg, arg, err, errlen);
		break;
	case 'G':
		rc = parse_gdb(cfg, arg, err, errlen);
		break;
	case 'H':
		rc = set(cfg, "x86.vmexit_on_hlt", "true", err, errlen);
		break;
	case 'I':
		break; /* the IOAPIC is always there; bhyve ignores -I too */
	case 'k':
		rc = config_load_file(cfg, arg, err, errlen);
		break;
	case 'K':
		rc = set(cfg, "keyboard.layout", arg, err, errlen);
		break;
	case 'l':
		if (!strcmp(arg, "help")) {
			lpc_print_supported_devices();
			return OPT_EXIT;
		}
		rc = lpc_parse(cfg, arg, err, errlen);
		break;
	case 'm':
		rc = set(cfg, "memory.size", arg, err, errlen);
		break;
	case 'o':
		rc = config_set_kv(cfg, arg, err, errlen);
		break;
	case 'p':
		rc = parse_pin(cfg, arg, err, errlen);
		break;
	case 'P':
		rc = set(cfg, "x86.vmexit_on_pause", "true", err, errlen);
		break;
	case 's':
		if (!strcmp(arg, "help")) {
			pci_print_supported_devices();
			return OPT_EXIT;
		}
		rc = pci_parse_slot(cfg, arg, err, errlen);
		break;
	case 'S':
		rc = set(cfg, "memory.wired", "true", err, errlen);
		break;
	case 'u':
		rc = set(cfg, "rtc.use_localtime", "false", err, errlen);
		break;
	case 'U':
		rc = set(cfg, "uuid", arg, err, errlen);
		break;
	case 'w':
		rc = set(cfg, "x86.strictmsr", "false", err, errlen);
		break;
	case 'W':
		rc = set(cfg, "virtio_msix", "false", err, errlen);
		break;
	case 'x':
		rc = set(cfg, "x86.x2apic", "true", err, errlen);
		break;
	case 'Y':
		rc = set(cfg, "x86.mptable", "false", err, errlen);
		break;
	case 'h':
		bhyve_usage(out);
		return OPT_EXIT;
	default:
		snprintf(err, errlen, "unknown option (bhyve -h lists them)");
		return OPT_ERROR;
	}
	return rc < 0 ? OPT_ERROR : OPT_RUN;
}

enum opt_result
bhyve_parse_args(int argc, char **argv, struct config *cfg, FILE *out,
		 char *err, size_t errlen)
{
	static const char optstr[] = ":aehuwxACDHIPSWYf:k:o:p:G:c:s:m:l:K:U:";
	int c;

	optind = 0; /* glibc: start afresh (tests parse many times) */
	opterr = 0;
	while ((c = getopt(argc, argv, optstr)) != -1) {
		enum opt_result r;

		if (c == ':') {
			snprintf(err, errlen, "-%c needs an argument", optopt);
			return OPT_ERROR;
		}
		if (c == '?') {
			snprintf(err, errlen,
				 "unknown option -%c (bhyve -h lists them)",
				 isprint(optopt) ? optopt : '?');
			return OPT_ERROR;
		}
		r = one_option(c, optarg, cfg, out, err, errlen);
		if (r != OPT_RUN)
			return r;
	}
	if (argc - optind > 1) {
		snprintf(err, errlen, "one VM name expected, got '%s' and '%s'",
			 argv[optind], argv[optind + 1]);
		return OPT_ERROR;
	}
	if (argc - optind == 1 &&
	    config_set(cfg, "name", argv[optind], err, errlen) < 0)
		return OPT_ERROR;
	return OPT_RUN;
}

/*
 * The top-level keys bhyve reads or bhyve(8)'s options set, in one list: any
 * other is most likely a typo (-o x86strictmsr=false), worth one line.
 */
static const char *const top_keys[] = {
    "acpi_tables", "config",	  "cores",
    "cpus",	   "debug",	  "destroy_on_poweroff",
    "fwcfg",	   "gdb",	  "keyboard",
    "lpc",	   "memory",	  "name",
    "pci",	   "pvpanic",	  "rtc",	 "sandbox",
    "sockets",	   "threads",	  "uuid",
    "vcpu",	   "virtio_msix", "x86",
};

/*
 * Every boolean bhyve reads from the tree outside a device's own node. They
 * are checked once here, so a misspelt value (strictmsr=flase) stops bhyve
 * at start-up instead of reading as the default (bhyve's config.c does the
 * same, exit 4).
 */
static const char *const bool_keys[] = {
    "acpi_tables",
    "config.dump",
    "debug.exit_stats",
    "destroy_on_poweroff",
    "gdb.wait",
    "lpc.com1.coalesce",
    "lpc.com2.coalesce",
    "lpc.com3.coalesce",
    "lpc.com4.coalesce",
    "lpc.pc-testdev",
    "memory.guest_in_core",
    "memory.wired",
    "pvpanic",
    "rtc.use_localtime",
    "sandbox",
    "virtio_msix",
    "x86.mptable",
    "x86.strictio",
    "x86.strictmsr",
    "x86.vmexit_on_hlt",
    "x86.vmexit_on_pause",
    "x86.x2apic",
};

struct top_check {
	FILE *warn;
	char *dump; /* the whole tree as text, to find %(references) */
};

/* Whether some value names key as %(key) or %(key.sub): a variable. */
static bool
referenced(const char *dump, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = dump; p && (p = strstr(p, "%(")); p += 2)
		if (!strncmp(p + 2, key, n) &&
		    (p[2 + n] == ')' || p[2 + n] == '.'))
			return true;
	return false;
}

static int
warn_unknown_top(const struct config *node, void *arg)
{
	struct top_check *t = arg;
	const char *name = config_node_name(node);

	for (size_t i = 0; i < sizeof(top_keys) / sizeof(top_keys[0]); i++)
		if (!strcmp(name, top_keys[i]))
			return 0;
	/* bhyve_config(5): variables of one's own, for %(name), are fine. */
	if (t->dump && referenced(t->dump, name))
		return 0;
	fprintf(t->warn,
		"bhyve: warning: unknown configuration key '%s' (ignored)\n",
		name);
	return 0;
}

int
bhyve_check_config(struct config *cfg, FILE *warn, char *err, size_t errlen)
{
	struct top_check t = {warn, NULL};
	size_t len;
	FILE *f;

	if (config_check(cfg, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(bool_keys) / sizeof(bool_keys[0]); i++)
		if (config_check_bool(cfg, bool_keys[i], err, errlen) < 0)
			return -1;
	f = open_memstream(&t.dump, &len);
	if (f) {
		config_dump(cfg, f);
		fclose(f);
	}
	config_foreach(cfg, warn_unknown_top, &t);
	free(t.dump);
	return 0;
}

void
bhyve_warn_inert(struct config *cfg, FILE *warn)
{
	const char *layout = config_get(cfg, "keyboard.layout");

	/*
	 * -H is what KVM always does: HLT exits to the kernel, which blocks
	 * the vCPU thread until an interrupt (and bhyve's halt detection
	 * relies on it). Only asking for the opposite needs a word.
	 */
	if (!config_get_bool(cfg, "x86.vmexit_on_hlt", true))
		fprintf(warn, "bhyve: warning: x86.vmexit_on_hlt=false is "
			      "ignored: on KVM a halted vCPU always yields its "
			      "host CPU\n");
	/*
	 * -P: KVM exits on PAUSE loops (pause-loop exiting, on where the CPU
	 * has it), not on every PAUSE; spinning vCPUs yield either way.
	 */
	if (!config_get_bool(cfg, "x86.vmexit_on_pause", true))
		fprintf(warn, "bhyve: warning: x86.vmexit_on_pause=false is "
			      "ignored: KVM's pause-loop exiting stays on\n");
	if (layout)
		fprintf(warn,
			"bhyve: warning: -K %s (keyboard.layout) is "
			"ignored: there is no VNC framebuffer (fbuf) yet\n",
			layout);
}

static int
cfg_int(struct config *cfg, const char *key, int def, int *out, char *err,
	size_t errlen)
{
	const char *v = config_get(cfg, key);

	*out = def;
	if (!v)
		return 0;
	return topo_num(key, v, out, err, errlen);
}

int
bhyve_settings(struct config *cfg, struct bhyve_settings *s, char *err,
	       size_t errlen)
{
	const char *mem = config_get(cfg, "memory.size");
	int cpus;

	memset(s, 0, sizeof(*s));
	s->name = config_get(cfg, "name");
	if (!s->name) {
		snprintf(err, errlen,
			 "no VM name given (bhyve [options] "
			 "vmname)");
		return -1;
	}
	if (!vm_name_valid(s->name)) {
		snprintf(err, errlen,
			 "bad VM name '%s': use letters, digits, "
			 "'-', '_' and '.'",
			 s->name);
		return -1;
	}
	if (parse_memsize(mem, &s->memsize) < 0 || s->memsize < (1ULL << 20) ||
	    (s->memsize & 0xfff)) {
		snprintf(err, errlen,
			 "bad memory size '%s' (e.g. -m 512M, -m "
			 "2G)",
			 mem ? mem : "");
		return -1;
	}
	if (cfg_int(cfg, "sockets", 1, &s->sockets, err, errlen) ||
	    cfg_int(cfg, "cores", 1, &s->cores, err, errlen) ||
	    cfg_int(cfg, "threads", 1, &s->threads, err, errlen) ||
	    cfg_int(cfg, "cpus", 0, &cpus, err, errlen))
		return -1;
	if (cpus == 0) {
		cpus = s->sockets * s->cores * s->threads;
	} else if (!config_get(cfg, "sockets") && !config_get(cfg, "cores") &&
		   !config_get(cfg, "threads")) {
		s->sockets = cpus; /* bhyve: plain -c N means N sockets */
	}
	if (s->sockets * s->cores * s->threads != cpus) {
		snprintf(err, errlen,
			 "-c: %d CPUs is not sockets (%d) x cores (%d) x "
			 "threads (%d)",
			 cpus, s->sockets, s->cores, s->threads);
		return -1;
	}
	if (cpus > VM_MAXCPU) {
		snprintf(err, errlen, "-c: at most %d CPUs", VM_MAXCPU);
		return -1;
	}
	s->cpus = cpus;
	s->strictio = config_get_bool(cfg, "x86.strictio", false);
	s->strictmsr = config_get_bool(cfg, "x86.strictmsr", true);
	s->wired = config_get_bool(cfg, "memory.wired", false);
	s->guest_in_core = config_get_bool(cfg, "memory.guest_in_core", false);
	/* Unset: as KVM offers it; -a hides x2APIC; -x starts in it. */
	if (!config_get(cfg, "x86.x2apic"))
		s->apic_mode = VM_APIC_DEFAULT;
	else if (config_get_bool(cfg, "x86.x2apic", false))
		s->apic_mode = VM_APIC_X2APIC;
	else
		s->apic_mode = VM_APIC_XAPIC;
	s->destroy_on_poweroff =
	    config_get_bool(cfg, "destroy_on_poweroff", false);
	return vcpu_cpusets(cfg, s, err, errlen);
}
