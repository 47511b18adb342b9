/* Exit statistics: counters and the report printed when bhyve exits. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "exitstats.h"
#include "inout.h"

#define TOP_PORTS 12
#define MAX_KVM_STATS 128

struct exit_stats {
	uint64_t by_code[VM_EXIT_DEBUG + 1];
	uint64_t port[65536];
};

struct kvm_sum {
	char name[MAX_KVM_STATS][64];
	uint64_t value[MAX_KVM_STATS];
	int n;
};

struct exit_stats *
exit_stats_create(void)
{
	return calloc(1, sizeof(struct exit_stats));
}

void
exit_stats_free(struct exit_stats *s)
{
	free(s);
}

void
exit_stats_count(struct exit_stats *s, const struct vm_exit *x)
{
	__atomic_fetch_add(&s->by_code[x->code], 1, __ATOMIC_RELAXED);
	if (x->code == VM_EXIT_INOUT)
		__atomic_fetch_add(&s->port[x->u.inout.port], 1,
				   __ATOMIC_RELAXED);
}

static void
sum_stat(const char *name, uint64_t value, void *arg)
{
	struct kvm_sum *k = arg;
	int i;

	for (i = 0; i < k->n; i++)
		if (!strcmp(k->name[i], name))
			break;
	if (i == k->n) {
		if (k->n == MAX_KVM_STATS)
			return;
		snprintf(k->name[k->n++], sizeof(k->name[0]), "%s", name);
	}
	k->value[i] += value;
}

static void
print_kvm(struct vmctx *ctx, int ncpus, FILE *f)
{
	struct kvm_sum *k = calloc(1, sizeof(*k));

	if (!k)
		return;
	for (int i = 0; i < ncpus; i++) {
		struct vcpu *v = vm_vcpu_get(ctx, i);
		if (v)
			vm_vcpu_stats(v, sum_stat, k);
	}
	fprintf(f, "exit stats: KVM counters, all %d vCPUs (non-zero):\n",
		ncpus);
	for (int i = 0; i < k->n; i++)
		if (k->value[i] && strstr(k->name[i], "exits"))
			fprintf(f, "  %-28s %12llu\n", k->name[i],
				(unsigned long long)k->value[i]);
	free(k);
}

static void
print_ports(struct exit_stats *s, struct vmctx *ctx, FILE *f)
{
	int top[TOP_PORTS];
	int n = 0;

	/* Selection of the busiest ports; the table is small enough. */
	for (int k = 0; k < TOP_PORTS; k++) {
		int best = -1;
		for (int p = 0; p < 65536; p++) {
			bool taken = false;
			if (!s->port[p])
				continue;
			for (int j = 0; j < n; j++)
				taken |= top[j] == p;
			if (!taken && (best < 0 || s->port[p] > s->port[best]))
				best = p;
		}
		if (best < 0)
			break;
		top[n++] = best;
	}
	fprintf(f, "exit stats: port exits to bhyve, busiest ports:\n");
	for (int j = 0; j < n; j++) {
		const char *owner = inout_owner(ctx, top[j]);
		fprintf(f, "  0x%04x %-20s %12llu\n", top[j],
			owner ? owner : "(unemulated)",
			(unsigned long long)s->port[top[j]]);
	}
}

void
exit_stats_print(struct exit_stats *s, struct vmctx *ctx, int ncpus, FILE *f)
{
	static const char *const names[] = {
		[VM_EXIT_INOUT] = "port I/O",	 [VM_EXIT_MMIO] = "MMIO",
		[VM_EXIT_HLT] = "HLT",		 [VM_EXIT_TRIPLEFAULT] = "shutdown",
		[VM_EXIT_SYSTEM] = "system event", [VM_EXIT_INTR] = "kicks",
		[VM_EXIT_MSR] = "unknown MSR",	 [VM_EXIT_ERROR] = "error",
		[VM_EXIT_DEBUG] = "debugger",
	};

	print_kvm(ctx, ncpus, f);
	fprintf(f, "exit stats: exits that reached bhyve:\n");
	for (int c = 0; c <= VM_EXIT_DEBUG; c++)
		if (s->by_code[c])
			fprintf(f, "  %-28s %12llu\n", names[c],
				(unsigned long long)s->by_code[c]);
	print_ports(s, ctx, f);
}
