/*
 * Exit statistics (-o debug.exit_stats=true): nested, exits are what a boot
 * costs, so bhyve can say where they went: KVM's own counters per kind, and
 * the port and MMIO exits that reached bhyve, by port and by device.
 */
#ifndef EXITSTATS_H
#define EXITSTATS_H

#include <stdio.h>

#include "vmm.h"

struct exit_stats;

struct exit_stats *exit_stats_create(void);
void exit_stats_free(struct exit_stats *s);
/* From a vCPU thread, for every exit that reached bhyve. */
void exit_stats_count(struct exit_stats *s, const struct vm_exit *x);
void exit_stats_print(struct exit_stats *s, struct vmctx *ctx, int ncpus,
		      FILE *f);

#endif
