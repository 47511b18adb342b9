/* Shared between the vmm layer's instance code and its backends. */
#ifndef VMM_INTERNAL_H
#define VMM_INTERNAL_H

#include <pthread.h>

#include "vmm.h"

struct vmm_ops {
	int (*vm_init)(struct vmctx *ctx);
	int (*map_mem)(struct vmctx *ctx);
	void (*vm_fini)(struct vmctx *ctx);
	int (*vcpu_init)(struct vcpu *vcpu);
	void (*vcpu_fini)(struct vcpu *vcpu);
	int (*get_state)(struct vcpu *vcpu, struct vm_boot_state *bs);
	int (*set_state)(struct vcpu *vcpu, const struct vm_boot_state *bs);
	int (*get_msr)(struct vcpu *vcpu, uint32_t msr, uint64_t *val);
	int (*set_msr)(struct vcpu *vcpu, uint32_t msr, uint64_t val);
	int (*run)(struct vcpu *vcpu, struct vm_exit *exit);
	void (*complete_read)(struct vcpu *vcpu, struct vm_exit *exit);
	int (*unknown_msr_exits)(struct vmctx *ctx);
	bool (*unknown_msrs_fault)(struct vmctx *ctx);
	void (*complete_msr)(struct vcpu *vcpu, bool fault, uint64_t value);
	void (*kick)(struct vcpu *vcpu);
	void (*settle)(struct vcpu *vcpu);
	int (*set_debug)(struct vcpu *vcpu, const struct vm_debug *d);
	bool (*halted_noint)(struct vcpu *vcpu);
	bool (*maybe_halted)(struct vcpu *vcpu);
	int (*stats)(struct vcpu *vcpu, vm_stat_fn fn, void *arg);
	int (*irq_line)(struct vmctx *ctx, int gsi, int level);
	int (*msi)(struct vmctx *ctx, uint64_t addr, uint64_t msg);
	int (*coalesce_pio)(struct vmctx *ctx, uint16_t port, uint16_t len,
			    bool on);
	void (*drain_coalesced)(struct vmctx *ctx);
	int (*ioeventfd)(struct vmctx *ctx, uint64_t addr, int len, bool pio,
			 uint64_t datamatch, int fd, bool assign);
	int (*msi_irqfd)(struct vmctx *ctx, int fd, uint64_t addr,
			 uint32_t data);
	int (*msi_irqfd_update)(struct vmctx *ctx, int gsi, uint64_t addr,
				uint32_t data);
	void (*msi_irqfd_release)(struct vmctx *ctx, int gsi, int fd);
};

struct vcpu {
	struct vmctx *ctx;
	int id;
	/* STORE and MOCK backends keep register state here. */
	struct vm_boot_state state;
	void *backend;
};

struct vmctx {
	char name[64];
	enum vmm_backend kind;
	const struct vmm_ops *ops;
	int dirfd;	/* the instance directory, -1 for mock */
	int basefd;	/* the directory holding it, -1 for mock */
	int lockfd;	/* held while this process runs the instance */
	int memfd;
	uint8_t *mem;	/* lowmem then highmem, contiguous in the file */
	uint64_t lowmem, highmem;
	int ncpus;
	struct vm_topology topo;
	enum vm_apic_mode apic_mode;
	struct vcpu *vcpus[VM_MAXCPU];
	pthread_mutex_t lock;
	vm_coalesced_fn coalesced_fn;
	void *cookie;
	void *backend;
};

extern const struct vmm_ops vmm_kvm_ops;
extern const struct vmm_ops vmm_mock_ops;
extern const struct vmm_ops vmm_store_ops;

void vm_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
