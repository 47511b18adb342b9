/*
 * The vmm layer: the only code that talks to the kernel's hypervisor.
 *
 * It plays the part of FreeBSD's vmm.ko and libvmmapi: a VM instance has a
 * name and outlives the process that made it (its guest memory and boot vCPU
 * state live in an instance directory), vCPUs run to their next exit and
 * hand back a decoded exit record, and interrupt lines and MSIs are raised
 * through the backend's interrupt controllers.
 *
 * Backends:
 *   VMM_BACKEND_STORE  the instance files only: what grub-bhyve and the raw
 *                      loader use to fill memory and set the boot registers.
 *   VMM_BACKEND_KVM    /dev/kvm with KVM's in-kernel LAPIC, IOAPIC, PIC, PIT.
 *   VMM_BACKEND_MOCK   plain memory and recorded interrupt lines, for unit
 *                      tests of device models.
 */
#ifndef VMM_H
#define VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmctx;
struct vcpu;

enum vmm_backend {
	VMM_BACKEND_STORE,
	VMM_BACKEND_KVM,
	VMM_BACKEND_MOCK,
};

/* Guest physical layout, as bhyve lays it out. */
#define VM_LOWMEM_LIMIT (3ULL << 30) /* RAM below the PCI hole */
#define VM_HIGHMEM_BASE (4ULL << 30) /* the rest of RAM */
#define VM_MAXCPU 64

/* Registers, named as libvmmapi names them. */
enum vm_reg_name {
	VM_REG_GUEST_RAX,
	VM_REG_GUEST_RBX,
	VM_REG_GUEST_RCX,
	VM_REG_GUEST_RDX,
	VM_REG_GUEST_RSI,
	VM_REG_GUEST_RDI,
	VM_REG_GUEST_RBP,
	VM_REG_GUEST_R8,
	VM_REG_GUEST_R9,
	VM_REG_GUEST_R10,
	VM_REG_GUEST_R11,
	VM_REG_GUEST_R12,
	VM_REG_GUEST_R13,
	VM_REG_GUEST_R14,
	VM_REG_GUEST_R15,
	VM_REG_GUEST_RSP,
	VM_REG_GUEST_RIP,
	VM_REG_GUEST_RFLAGS,
	VM_REG_GUEST_CR0,
	VM_REG_GUEST_CR2,
	VM_REG_GUEST_CR3,
	VM_REG_GUEST_CR4,
	VM_REG_GUEST_EFER,
	/* Segment and table registers: the value is the selector. */
	VM_REG_GUEST_ES,
	VM_REG_GUEST_CS,
	VM_REG_GUEST_SS,
	VM_REG_GUEST_DS,
	VM_REG_GUEST_FS,
	VM_REG_GUEST_GS,
	VM_REG_GUEST_LDTR,
	VM_REG_GUEST_TR,
	VM_REG_GUEST_GDTR,
	VM_REG_GUEST_IDTR,
	VM_REG_LAST
};

/*
 * A segment descriptor cache. access uses the VMX access-rights layout, as
 * bhyve does: type in bits 3:0, S 4, DPL 6:5, P 7, AVL 12, L 13, D/B 14,
 * G 15, and bit 16 set for an unusable segment.
 */
struct seg_desc {
	uint64_t base;
	uint32_t limit;
	uint32_t access;
};
#define SEG_ACCESS_UNUSABLE (1u << 16)

/* The state of one vCPU as a boot loader leaves it. */
struct vm_boot_state {
	uint64_t regs[VM_REG_LAST];
	struct seg_desc segs[VM_REG_LAST];
	bool valid;
};

enum vm_exitcode {
	VM_EXIT_INOUT,	     /* port I/O */
	VM_EXIT_MMIO,	     /* memory access outside RAM */
	VM_EXIT_HLT,	     /* every vCPU halted with interrupts disabled */
	VM_EXIT_TRIPLEFAULT, /* shutdown */
	VM_EXIT_SYSTEM,	     /* a system event from the kernel */
	VM_EXIT_INTR,	     /* interrupted by a signal (vm_vcpu_kick) */
	VM_EXIT_MSR,	     /* an MSR the hypervisor does not know */
	VM_EXIT_DEBUG,	     /* a breakpoint or single step (vm_set_debug) */
	VM_EXIT_ERROR,	     /* internal error or failed entry */
};

/* What a VM_EXIT_SYSTEM asks for (PSCI-like requests from the kernel). */
enum vm_system_event {
	VM_SYSTEM_SHUTDOWN,
	VM_SYSTEM_RESET,
	VM_SYSTEM_OTHER,
};

struct vm_exit {
	enum vm_exitcode code;
	uint64_t rip;
	union {
		struct {
			uint16_t port;
			uint8_t bytes; /* 1, 2 or 4 */
			bool in;
			uint32_t count; /* > 1 for rep string ops */
			/* count * bytes of data, in the backend's buffer */
			uint8_t *data;
		} inout;
		struct {
			uint64_t gpa;
			uint8_t bytes; /* 1..8 */
			bool write;
			uint8_t *data;
		} mmio;
		struct {
			enum vm_system_event event;
		} system;
		struct {
			uint32_t index; /* ECX of the RDMSR or WRMSR */
			bool write;
			uint64_t value; /* what a WRMSR writes */
		} msr;
		struct {
			bool step; /* a single step */
			bool hw;   /* a DR0-DR3 breakpoint; neither: INT3 */
		} debug;
		struct {
			uint32_t reason;
			uint64_t detail;
		} error;
		struct {
			/*
			 * The registers read as after a reset: KVM on AMD
			 * reinitialises the vCPU at a shutdown, so rip is
			 * the reset vector, not where the guest faulted.
			 */
			bool reset;
		} triple;
	} u;
};

/*
 * Instance management (vmm_instance.c). An instance's files are named
 * here only: callers ask for what they mean.
 */
/*
 * Where instances live (for messages). The directory is created 0700 and
 * refused when it is a link, belongs to another user or is writable by
 * group or others; instance files are never reached through a link.
 */
const char *vm_instance_dir(void);
bool vm_instance_exists(const char *name);
/*
 * Drop an instance's memory and boot state so that a loader starts it
 * clean: 0, or -1 with vm_strerror() saying why.
 */
int vm_reset_instance(struct vmctx *ctx);
/*
 * The ioctl request numbers a device thread issues on the VM to raise
 * interrupts (line and MSI), for its seccomp filter: the count in out.
 */
int vm_sandbox_ioctls(unsigned long *out, int max);
/*
 * The descriptors of a running VM (the VM's and each open vCPU's) on
 * which the vCPU and event-loop threads' filters allow every ioctl: the
 * count in out; 0 for backends without any.
 */
int vm_sandbox_fds(struct vmctx *ctx, int *out, int max);
/*
 * The request that runs a vCPU (KVM_RUN), which the filters allow only to
 * a vCPU's own thread on its own descriptor (vm_vcpu_sandbox_fd: -1 for
 * backends without one); 0 when the backend has no such request.
 */
unsigned long vm_sandbox_run_ioctl(void);
int vm_vcpu_sandbox_fd(struct vcpu *vcpu);
/*
 * The directory descriptors vm_remove() unlinks in (the instance
 * directory and the one holding it), for the event loop's filter.
 */
int vm_sandbox_dirfds(struct vmctx *ctx, int *out, int max);
/*
 * Remove a running VM's instance (bhyve's destroy on power-off) through
 * the descriptors it already holds: no path is opened, so the sandboxed
 * event loop can do it. 0, or -1 with vm_strerror().
 */
int vm_remove(struct vmctx *ctx);
bool vm_name_valid(const char *name);
struct vmctx *vm_create(const char *name, enum vmm_backend backend);
struct vmctx *vm_open(const char *name, enum vmm_backend backend);
int vm_destroy_instance(const char *name);
void vm_close(struct vmctx *ctx);
int vm_list(void (*cb)(const char *name, bool running, void *arg), void *arg);
/*
 * Lock the instance for one running bhyve (or loader); -1 with errno EBUSY
 * if another process holds it, other errors with vm_strerror() saying why.
 * vm_destroy_instance finds the running bhyve from this lock, never from a
 * pid written in a file.
 */
int vm_claim(struct vmctx *ctx);
const char *vm_name(struct vmctx *ctx);
/* A pointer for the machine that runs on this context (hv's business). */
void vm_set_cookie(struct vmctx *ctx, void *cookie);
void *vm_get_cookie(struct vmctx *ctx);

/* Guest memory. */
int vm_setup_memory(struct vmctx *ctx, uint64_t len);
/*
 * bhyve -S (memory.wired): lock guest memory in RAM, every page faulted in
 * now, never swapped. -1 with vm_strerror() naming RLIMIT_MEMLOCK when the
 * limit is what stood in the way.
 */
int vm_wire_memory(struct vmctx *ctx);
/*
 * bhyve -C (memory.guest_in_core): whether a core dump of this process holds
 * guest memory. Without it the memory is MADV_DONTDUMP; with it the memory
 * is dumped, shared file mappings included (coredump_filter bit 3, which the
 * default filter leaves out). -1 with vm_strerror() set on failure.
 */
int vm_dump_memory(struct vmctx *ctx, bool in_core);
uint64_t vm_get_lowmem_size(struct vmctx *ctx);
uint64_t vm_get_highmem_size(struct vmctx *ctx);
void *vm_map_gpa(struct vmctx *ctx, uint64_t gpa, size_t len);
/*
 * Zero [gpa, gpa + len) of guest RAM: 0, or -1 when any of it is not RAM.
 * Whole 2 MiB blocks of an instance's memory file are punched out rather
 * than written, so they read back as zero and take no memory until the
 * guest touches them (a loader clearing a kernel's 20 MB of bss writes
 * little); the rest is cleared with memset.
 */
int vm_zero_gpa(struct vmctx *ctx, uint64_t gpa, size_t len);

/* vCPUs. */
int vm_set_ncpus(struct vmctx *ctx, int ncpus);
/* -c sockets/cores/threads: what CPUID tells the guest. */
struct vm_topology {
	int sockets, cores, threads;
};
int vm_set_topology(struct vmctx *ctx, const struct vm_topology *t);
void vm_get_topology(struct vmctx *ctx, struct vm_topology *t);
int vm_get_ncpus(struct vmctx *ctx);
/*
 * The local APIC mode the vCPUs start in (bhyve -a/-x, x86.x2apic), set
 * before they open. DEFAULT: x2APIC offered in CPUID, the APIC starts in
 * xAPIC mode and the guest may switch (as on hardware). XAPIC: x2APIC
 * hidden from CPUID (bhyve's xAPIC mode). X2APIC: offered and already
 * enabled (IA32_APIC_BASE EXTD) when the vCPU starts.
 */
enum vm_apic_mode {
	VM_APIC_DEFAULT,
	VM_APIC_XAPIC,
	VM_APIC_X2APIC,
};
void vm_set_apic_mode(struct vmctx *ctx, enum vm_apic_mode mode);
enum vm_apic_mode vm_get_apic_mode(struct vmctx *ctx);
/*
 * bhyve -w (x86.strictmsr=false): accesses to MSRs the hypervisor does not
 * implement come to vm_run as VM_EXIT_MSR, to be answered with
 * vm_complete_msr, instead of raising #GP in the kernel. -1 with
 * vm_strerror() set when the hypervisor cannot hand them over.
 */
int vm_unknown_msr_exits(struct vmctx *ctx);
/*
 * Whether an unknown MSR access raises #GP when it stays in the kernel:
 * false when the host hypervisor ignores them for every VM (KVM's
 * ignore_msrs module parameter), so x86.strictmsr cannot hold.
 */
bool vm_unknown_msrs_fault(struct vmctx *ctx);
struct vcpu *vm_vcpu_open(struct vmctx *ctx, int id);
/* An already opened vCPU, or NULL. */
struct vcpu *vm_vcpu_get(struct vmctx *ctx, int id);
int vcpu_id(struct vcpu *vcpu);
struct vmctx *vcpu_ctx(struct vcpu *vcpu);
int vm_get_register(struct vcpu *vcpu, enum vm_reg_name reg, uint64_t *val);
int vm_set_register(struct vcpu *vcpu, enum vm_reg_name reg, uint64_t val);
int vm_get_desc(struct vcpu *vcpu, enum vm_reg_name reg, struct seg_desc *d);
int vm_set_desc(struct vcpu *vcpu, enum vm_reg_name reg,
		const struct seg_desc *d);
int vm_get_msr(struct vcpu *vcpu, uint32_t msr, uint64_t *val);
int vm_set_msr(struct vcpu *vcpu, uint32_t msr, uint64_t val);
/* Boot state as left in the instance by a loader (valid == false if none). */
int vm_get_boot_state(struct vmctx *ctx, struct vm_boot_state *bs);
int vm_set_boot_state(struct vmctx *ctx, const struct vm_boot_state *bs);
/*
 * What bhyve calls: the boot state, used up by this call, so that a later
 * bhyve needs a loader to run again (even if this one is killed). -1 with
 * vm_strerror() saying why when there is none: nothing was ever loaded, or
 * the state is from a run that ended.
 */
int vm_take_boot_state(struct vmctx *ctx, struct vm_boot_state *bs);
/* Put a vCPU in the architectural reset state (real mode, F000:FFF0). */
void vm_reset_state(struct vm_boot_state *bs);
/* Apply a boot state to a vCPU. */
int vm_apply_state(struct vcpu *vcpu, const struct vm_boot_state *bs);

/* The whole register state of a vCPU (the twin of vm_apply_state). */
int vm_get_state(struct vcpu *vcpu, struct vm_boot_state *bs);
/*
 * The gdb stub. step: the next vm_run stops after one instruction
 * (VM_EXIT_DEBUG, u.debug.step). sw_bp: an INT3 in the guest ends vm_run
 * with VM_EXIT_DEBUG instead of raising #BP. hw: execution breakpoints at
 * these linear addresses in the debug registers (u.debug.hw). Called by
 * the thread that runs the vCPU, between two vm_run. -1 with
 * vm_strerror() set when the backend cannot debug.
 */
#define VM_DEBUG_HW_MAX 4
struct vm_debug {
	bool step;
	bool sw_bp;
	int nhw;
	uint64_t hw[VM_DEBUG_HW_MAX];
};
int vm_set_debug(struct vcpu *vcpu, const struct vm_debug *d);
/* Mock backend: what the last vm_set_debug asked for. */
void vm_mock_get_debug(struct vcpu *vcpu, struct vm_debug *d);
/*
 * Translate a guest linear address with the paging mode of bs (CR0.PG,
 * CR4.PAE, EFER.LMA, CR4.LA57 is refused): 0 and *gpa, or -1 when the
 * address is not mapped or a table is outside guest RAM.
 */
int vm_gla2gpa(struct vmctx *ctx, const struct vm_boot_state *bs,
	       uint64_t gla, uint64_t *gpa);

/* Run to the next exit; *exit is valid until the next vm_run. */
int vm_run(struct vcpu *vcpu, struct vm_exit *exit);
/* Complete a port or MMIO read: the data the guest sees. */
void vm_complete_read(struct vcpu *vcpu, struct vm_exit *exit);
/*
 * Answer a VM_EXIT_MSR before the next vm_run: fault raises #GP in the
 * guest; otherwise a RDMSR reads value and a WRMSR is done (dropped).
 * Unanswered, the access faults.
 */
void vm_complete_msr(struct vcpu *vcpu, bool fault, uint64_t value);
/*
 * From the vCPU's thread, between two vm_run: finish what the last exit
 * left pending (an OUT to skip, an IN's data to load) without running the
 * guest, so that its registers read as the guest will see them. A no-op
 * where the backend cannot.
 */
void vm_vcpu_settle(struct vcpu *vcpu);
/* Make a running vm_run return VM_EXIT_INTR soon (from another thread). */
void vm_vcpu_kick(struct vcpu *vcpu);
/* False when the vCPU is surely running; true when it may be halted. */
bool vm_vcpu_maybe_halted(struct vcpu *vcpu);
/* True when the vCPU is halted with interrupts disabled (after a kick). */
bool vm_vcpu_halted_noint(struct vcpu *vcpu);

/* The hypervisor's counters for a vCPU (KVM: exits, io_exits, ...). */
typedef void (*vm_stat_fn)(const char *name, uint64_t value, void *arg);
int vm_vcpu_stats(struct vcpu *vcpu, vm_stat_fn fn, void *arg);

/* Interrupts. */
int vm_irq_assert(struct vmctx *ctx, int gsi);
int vm_irq_deassert(struct vmctx *ctx, int gsi);
int vm_irq_pulse(struct vmctx *ctx, int gsi);
int vm_lapic_msi(struct vmctx *ctx, uint64_t addr, uint64_t msg);

/*
 * Coalesced port writes: writes to [port, port + len) are queued by the
 * kernel without an exit and handed back, in order, at the next exit.
 */
int vm_coalesce_pio(struct vmctx *ctx, uint16_t port, uint16_t len, bool on);
typedef void (*vm_coalesced_fn)(struct vmctx *ctx, uint16_t port, int bytes,
				uint32_t val);
void vm_set_coalesced_handler(struct vmctx *ctx, vm_coalesced_fn fn);
/*
 * Hand queued writes to the handler now. vCPUs drain at every exit; a guest
 * that writes and then idles in the kernel needs this from a timer.
 */
void vm_drain_coalesced(struct vmctx *ctx);

/*
 * An eventfd for a doorbell register: a guest write of datamatch, len bytes
 * wide, to addr (a port when pio) signals fd in the kernel, without an exit
 * to us; other writes there still come to the handler. assign false takes
 * it away again. -1 with errno ENOTSUP when the backend has none.
 */
int vm_ioeventfd(struct vmctx *ctx, uint64_t addr, int len, bool pio,
		 uint64_t datamatch, int fd, bool assign);

/*
 * An MSI the kernel raises itself each time fd (an eventfd) is signalled:
 * KVM_IRQFD on a GSI routed to addr/data. The GSI (the handle) >= 0, or -1
 * with errno (ENOTSUP: the backend has none; ENOSPC: all in use).
 * vm_msi_irqfd_update moves it to another message; release ends it.
 */
int vm_msi_irqfd(struct vmctx *ctx, int fd, uint64_t addr, uint32_t data);
int vm_msi_irqfd_update(struct vmctx *ctx, int gsi, uint64_t addr,
			uint32_t data);
void vm_msi_irqfd_release(struct vmctx *ctx, int gsi, int fd);

/* Mock backend inspection (unit tests). */
int vm_mock_irq_level(struct vmctx *ctx, int gsi);
int vm_mock_irq_pulses(struct vmctx *ctx, int gsi);
int vm_mock_msi_count(struct vmctx *ctx, uint64_t *addr, uint64_t *msg);
/* The fd assigned to the port doorbell at addr for datamatch, or -1. */
int vm_mock_ioeventfd(struct vmctx *ctx, uint64_t addr, uint64_t datamatch);
struct vmctx *vm_create_mock(uint64_t memsize);

/* One-line error for the last failure, e.g. why /dev/kvm can't be used. */
const char *vm_strerror(void);

#endif
