/* bhyve's command line (bhyve(8)) into the config tree (bhyve_config(5)). */
#ifndef OPTIONS_H
#define OPTIONS_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "vmm.h"

enum opt_result {
	OPT_RUN = 0,   /* go on and run the VM */
	OPT_EXIT = 1,  /* a listing or usage was printed: exit 0 */
	OPT_ERROR = -1 /* err holds a one-line message: exit 4 */
};

/* The settings the machine is built from, checked. */
struct bhyve_settings {
	const char *name;
	uint64_t memsize;
	int cpus, sockets, cores, threads;
	bool strictio;
	bool strictmsr;	    /* x86.strictmsr: unknown MSRs raise #GP */
	bool wired;	    /* memory.wired (-S): guest memory locked */
	bool guest_in_core; /* memory.guest_in_core (-C) */
	enum vm_apic_mode apic_mode; /* x86.x2apic: unset, -a or -x */
	bool destroy_on_poweroff;
	/* vcpu.N.cpuset (-p N:HOSTCPU): the host CPUs vCPU N may run on. */
	bool pinned[VM_MAXCPU];
	cpu_set_t cpuset[VM_MAXCPU];
};

void bhyve_set_defaults(struct config *cfg);
enum opt_result bhyve_parse_args(int argc, char **argv, struct config *cfg,
				 FILE *out, char *err, size_t errlen);
/*
 * Once the options are in: every %(ref) expands (an unknown one or a runaway
 * expansion is an error), every boolean key holds a boolean; an unknown
 * top-level key is one line on warn. -1 with err set: exit 4.
 */
int bhyve_check_config(struct config *cfg, FILE *warn, char *err,
		       size_t errlen);
int bhyve_settings(struct config *cfg, struct bhyve_settings *s, char *err,
		   size_t errlen);
/*
 * Settings KVM cannot honour (x86.vmexit_on_hlt or x86.vmexit_on_pause set
 * to false) or that need a device we do not have (-K: no VNC framebuffer):
 * one line each on warn.
 */
void bhyve_warn_inert(struct config *cfg, FILE *warn);
void bhyve_usage(FILE *f);

/* "512M", "2G", "1024" (MiB when no suffix), K/M/G/T in either case. */
int parse_memsize(const char *s, uint64_t *out);
/*
 * A host CPU list as cpuset(1) -l takes it ("2", "0-3", "0,2-3") into
 * set; every CPU must be below nhost. -1 with err set otherwise.
 */
int parse_cpuset(const char *s, long nhost, cpu_set_t *set, char *err,
		 size_t errlen);
/* -c [[cpus=]N][,sockets=N][,cores=N][,threads=N] */
int parse_topology(struct config *cfg, const char *s, char *err, size_t errlen);

#endif
