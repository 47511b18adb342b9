/* MMIO dispatch: guest-physical ranges outside RAM and their handlers. */
#ifndef MEM_H
#define MEM_H

#include <stdint.h>

#include "vmm.h"

#define MEM_F_READ 0x1
#define MEM_F_WRITE 0x2
#define MEM_F_RW (MEM_F_READ | MEM_F_WRITE)

/* dir is MEM_F_READ (store into *val) or MEM_F_WRITE (*val is the data). */
typedef int (*mem_func_t)(struct vcpu *vcpu, int dir, uint64_t addr, int size,
			  uint64_t *val, void *arg1, long arg2);

struct mem_range {
	const char *name;
	int flags;
	mem_func_t handler;
	void *arg1;
	long arg2;
	uint64_t base;
	uint64_t size;
};

struct mem_table;
struct mem_table *mem_table_create(void);
void mem_table_free(struct mem_table *t);

int register_mem(struct vmctx *ctx, const struct mem_range *mr);
/* Remove the range at mr's base and size; with a handler, only mr's own. */
int unregister_mem(struct vmctx *ctx, const struct mem_range *mr);
/* Unclaimed addresses read as all ones and drop writes (-1 when strict). */
int emulate_mem(struct vmctx *ctx, struct vcpu *vcpu, uint64_t gpa, int dir,
		int size, uint64_t *val);

#endif
