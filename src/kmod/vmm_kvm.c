/*
 * The KVM backend: /dev/kvm with the in-kernel LAPIC, IOAPIC, PIC
 * (KVM_CREATE_IRQCHIP) and PIT (KVM_CREATE_PIT2).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm_cpuid.h"
#include "vmm_internal.h"

#define KVM_TSS_ADDR 0xfffbd000UL
#define KVM_IDMAP_ADDR 0xfffbc000UL
#define KICK_SIGNAL (SIGRTMIN + 1)
#define CPUID_MAX_ENTRIES 256
#define KVM_MSI_ROUTES 16
#define KVM_MSI_GSI0 24 /* after the IOAPIC's pins */

struct kvm_vm {
	int kvm_fd;
	int vm_fd;
	int run_size;
	int ring_pages; /* page offset of the coalesced ring, 0 if none */
	bool immediate_exit; /* KVM_CAP_IMMEDIATE_EXIT */
	int debug_caps;	     /* KVM_CAP_SET_GUEST_DEBUG2: flags it takes */
	long page_size;
	struct kvm_cpuid2 *cpuid;
	pthread_mutex_t ring_lock;
	/* MSI routes for irqfds: GSI KVM_MSI_GSI0 + i (kvm_msi_irqfd). */
	pthread_mutex_t route_lock;
	struct {
		bool used;
		uint64_t addr;
		uint32_t data;
	} msi[KVM_MSI_ROUTES];
};

struct kvm_vcpu {
	int fd;
	int stats_fd;
	uint64_t blocking_off; /* offset of the "blocking" stat, 0 = none */
	struct kvm_stats_header stats_hdr;
	char *stats_descs;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_set;
};

/* The run page of the vCPU this thread runs, for the kick handler. */
static __thread struct kvm_run *this_run;

/*
 * With KVM_CAP_IMMEDIATE_EXIT the kick signal is never blocked: landing in
 * KVM_RUN it ends the run with EINTR; landing outside, it makes the next
 * KVM_RUN return at once. No signal mask swap on every KVM_RUN.
 */
static void
kick_handler(int sig)
{
	(void)sig;
	if (this_run)
		this_run->immediate_exit = 1;
}

/* BHYVE_KVM_DEV names another device node (tests of the error paths). */
static int
kvm_open_dev(void)
{
	const char *dev = getenv("BHYVE_KVM_DEV");
	int fd;

	if (!dev || !*dev)
		dev = "/dev/kvm";
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	if (errno == ENOENT || errno == ENXIO || errno == ENODEV)
		vm_set_error("%s not found: load the KVM module "
			     "(modprobe kvm_intel or kvm_amd), or run nested "
			     "(harness/nested -- bhyve ...)",
			     dev);
	else if (errno == EACCES || errno == EPERM)
		vm_set_error("%s: permission denied: join group kvm "
			     "(usermod -aG kvm $USER), run as root, or run "
			     "nested (harness/nested -- bhyve ...)",
			     dev);
	else
		vm_set_error("%s: %s", dev, strerror(errno));
	return -1;
}

/*
 * KVM's default routing, with GSI 0 on IOAPIC pin 2 as PC firmware has it,
 * and the irqfds' MSI routes (msi: NULL before there are any). KVM takes
 * the whole table each time.
 */
static int
kvm_setup_routing(int vm_fd, const struct kvm_vm *k)
{
	struct {
		struct kvm_irq_routing r;
		struct kvm_irq_routing_entry e[48 + KVM_MSI_ROUTES];
	} rt;
	int n = 0;

	memset(&rt, 0, sizeof(rt));
	for (int gsi = 0; gsi < 16; gsi++) {
		if (gsi == 2)
			continue;
		rt.e[n].gsi = gsi;
		rt.e[n].type = KVM_IRQ_ROUTING_IRQCHIP;
		rt.e[n].u.irqchip.irqchip =
			gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
		rt.e[n].u.irqchip.pin = gsi % 8;
		n++;
	}
	for (int gsi = 0; gsi < 24; gsi++) {
		if (gsi == 2)
			continue;
		rt.e[n].gsi = gsi;
		rt.e[n].type = KVM_IRQ_ROUTING_IRQCHIP;
		rt.e[n].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		rt.e[n].u.irqchip.pin = gsi == 0 ? 2 : gsi;
		n++;
	}
	for (int i = 0; k && i < KVM_MSI_ROUTES; i++) {
		if (!k->msi[i].used)
			continue;
		rt.e[n].gsi = KVM_MSI_GSI0 + i;
		rt.e[n].type = KVM_IRQ_ROUTING_MSI;
		rt.e[n].u.msi.address_lo = (uint32_t)k->msi[i].addr;
		rt.e[n].u.msi.address_hi = (uint32_t)(k->msi[i].addr >> 32);
		rt.e[n].u.msi.data = k->msi[i].data;
		n++;
	}
	rt.r.nr = n;
	return ioctl(vm_fd, KVM_SET_GSI_ROUTING, &rt.r);
}

static int
kvm_vm_init(struct vmctx *ctx)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	struct kvm_vm *k = calloc(1, sizeof(*k));
	struct sigaction sa = {.sa_handler = kick_handler};
	int ret;

	if (!k)
		return -1;
	k->vm_fd = -1;
	pthread_mutex_init(&k->ring_lock, NULL);
	pthread_mutex_init(&k->route_lock, NULL);
	ctx->backend = k;
	k->kvm_fd = kvm_open_dev();
	if (k->kvm_fd < 0)
		goto fail;
	if (ioctl(k->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		vm_set_error("%s is not a KVM device (or an unsupported KVM "
			     "API version)",
			     getenv("BHYVE_KVM_DEV") ? getenv("BHYVE_KVM_DEV")
						     : "/dev/kvm");
		goto fail;
	}
	k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0) {
		vm_set_error("KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	k->run_size = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	k->page_size = sysconf(_SC_PAGESIZE);
	k->immediate_exit = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION,
				  KVM_CAP_IMMEDIATE_EXIT) > 0;
#ifdef KVM_CAP_SET_GUEST_DEBUG2
	k->debug_caps = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION,
			      KVM_CAP_SET_GUEST_DEBUG2);
#endif
	ret = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_PIO);
	if (ret > 0)
		k->ring_pages = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION,
				      KVM_CAP_COALESCED_MMIO);
	uint64_t idmap = KVM_IDMAP_ADDR;
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0 ||
	    ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0 ||
	    ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0 ||
	    ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit) < 0 ||
	    kvm_setup_routing(k->vm_fd, NULL) < 0) {
		vm_set_error("KVM VM set-up (irqchip, PIT): %s",
			     strerror(errno));
		goto fail;
	}
	k->cpuid = calloc(1, sizeof(*k->cpuid) +
				     CPUID_MAX_ENTRIES *
					     sizeof(struct kvm_cpuid_entry2));
	if (!k->cpuid)
		goto fail;
	k->cpuid->nent = CPUID_MAX_ENTRIES;
	if (ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, k->cpuid) < 0) {
		vm_set_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		goto fail;
	}
	sigaction(KICK_SIGNAL, &sa, NULL);
	return 0;
fail:
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->kvm_fd >= 0)
		close(k->kvm_fd);
	free(k->cpuid);
	free(k);
	ctx->backend = NULL;
	return -1;
}

static void
kvm_vm_fini(struct vmctx *ctx)
{
	struct kvm_vm *k = ctx->backend;

	if (!k)
		return;
	close(k->vm_fd);
	close(k->kvm_fd);
	free(k->cpuid);
	free(k);
}

static int
kvm_set_slot(struct vmctx *ctx, int slot, uint64_t gpa, uint64_t len,
	     void *host, uint32_t flags)
{
	struct kvm_vm *k = ctx->backend;
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = len,
		.userspace_addr = (uintptr_t)host,
	};

	if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		vm_set_error("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int
kvm_map_mem(struct vmctx *ctx)
{
	if (kvm_set_slot(ctx, 0, 0, ctx->lowmem, ctx->mem, 0) < 0)
		return -1;
	if (ctx->highmem &&
	    kvm_set_slot(ctx, 1, VM_HIGHMEM_BASE, ctx->highmem,
			 ctx->mem + ctx->lowmem, 0) < 0)
		return -1;
	return 0;
}

/* CPUID for one vCPU: KVM's supported set, patched (vmm_cpuid.c). */
static int
kvm_set_cpuid(struct vcpu *vcpu, int fd)
{
	struct kvm_vm *k = vcpu->ctx->backend;
	struct kvm_cpuid2 *c;
	struct vm_topology t;
	int ret;

	vm_get_topology(vcpu->ctx, &t);
	c = vmm_cpuid_build(k->cpuid, vcpu->id, &t,
			    ioctl(k->kvm_fd, KVM_CHECK_EXTENSION,
				  KVM_CAP_TSC_DEADLINE_TIMER) > 0,
			    vmm_cpuid_host_quirks());
	if (!c)
		return -1;
	vmm_cpuid_apic_mode(c, vm_get_apic_mode(vcpu->ctx));
	ret = ioctl(fd, KVM_SET_CPUID2, c);
	if (ret < 0)
		vm_set_error("KVM_SET_CPUID2: %s", strerror(errno));
	free(c);
	return ret;
}

/*
 * KVM's binary statistics (Documentation/virt/kvm/api.rst, KVM_GET_STATS_FD):
 * the descriptors are read once; values are read with pread when wanted.
 */
static void
kvm_stats_open(struct kvm_vcpu *kv)
{
	struct kvm_stats_header *h = &kv->stats_hdr;
	size_t dsz;

	kv->stats_fd = ioctl(kv->fd, KVM_GET_STATS_FD, NULL);
	if (kv->stats_fd < 0)
		return;
	if (pread(kv->stats_fd, h, sizeof(*h), 0) != sizeof(*h) ||
	    h->num_desc > 4096 || h->name_size > 256)
		return;
	dsz = sizeof(struct kvm_stats_desc) + h->name_size;
	kv->stats_descs = calloc(h->num_desc, dsz);
	if (!kv->stats_descs)
		return;
	if (pread(kv->stats_fd, kv->stats_descs, h->num_desc * dsz,
		  h->desc_offset) != (ssize_t)(h->num_desc * dsz)) {
		free(kv->stats_descs);
		kv->stats_descs = NULL;
		return;
	}
	for (uint32_t i = 0; i < h->num_desc; i++) {
		struct kvm_stats_desc *d =
			(struct kvm_stats_desc *)(kv->stats_descs + i * dsz);
		/* "blocking" says the vCPU is halted in the kernel. */
		if (!strncmp(d->name, "blocking", h->name_size))
			kv->blocking_off = h->data_offset + d->offset;
	}
}

static int
kvm_stats(struct vcpu *vcpu, vm_stat_fn fn, void *arg)
{
	struct kvm_vcpu *kv = vcpu->backend;
	struct kvm_stats_header *h = &kv->stats_hdr;
	size_t dsz = sizeof(struct kvm_stats_desc) + h->name_size;
	char name[257];

	if (!kv->stats_descs)
		return -1;
	for (uint32_t i = 0; i < h->num_desc; i++) {
		struct kvm_stats_desc *d =
			(struct kvm_stats_desc *)(kv->stats_descs + i * dsz);
		uint32_t type = d->flags & KVM_STATS_TYPE_MASK;
		uint64_t v;

		/* Plain counters only, not histograms. */
		if (d->size != 1 || (type != KVM_STATS_TYPE_CUMULATIVE &&
				     type != KVM_STATS_TYPE_INSTANT))
			continue;
		if (pread(kv->stats_fd, &v, sizeof(v),
			  h->data_offset + d->offset) != sizeof(v))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)h->name_size,
			 d->name);
		fn(name, v, arg);
	}
	return 0;
}

static int kvm_get_msr(struct vcpu *vcpu, uint32_t msr, uint64_t *val);
static void kvm_vcpu_fini(struct vcpu *vcpu);
static int kvm_set_msr(struct vcpu *vcpu, uint32_t msr, uint64_t val);

#define MSR_IA32_APIC_BASE 0x1b
/* IA32_APIC_BASE bits (Intel SDM vol. 3A §11.12.1): x2APIC mode, enable. */
#define APIC_BASE_EXTD (1u << 10)
#define APIC_BASE_EN (1u << 11)

/*
 * bhyve -x: the vCPU starts with its local APIC in x2APIC mode, as
 * FreeBSD's vlapic does with X2APIC_ENABLED. KVM keeps the mode across
 * INIT, so the APs stay in it when the guest starts them. CPUID must
 * offer x2APIC first (KVM refuses EXTD otherwise).
 */
static int
kvm_enable_x2apic(struct vcpu *vcpu)
{
	uint64_t base;

	if (kvm_get_msr(vcpu, MSR_IA32_APIC_BASE, &base) < 0 ||
	    kvm_set_msr(vcpu, MSR_IA32_APIC_BASE,
			base | APIC_BASE_EN | APIC_BASE_EXTD) < 0) {
		vm_set_error("vCPU %d: KVM refused x2APIC mode (-x)", vcpu->id);
		return -1;
	}
	return 0;
}

static int
kvm_vcpu_init(struct vcpu *vcpu)
{
	struct kvm_vm *k = vcpu->ctx->backend;
	struct kvm_vcpu *kv = calloc(1, sizeof(*kv));

	if (!kv)
		return -1;
	kv->stats_fd = -1;
	kv->fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, vcpu->id);
	if (kv->fd < 0) {
		vm_set_error("KVM_CREATE_VCPU %d: %s", vcpu->id,
			     strerror(errno));
		free(kv);
		return -1;
	}
	kv->run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       kv->fd, 0);
	if (kv->run == MAP_FAILED || kvm_set_cpuid(vcpu, kv->fd) < 0) {
		if (kv->run == MAP_FAILED)
			vm_set_error("vCPU mmap: %s", strerror(errno));
		close(kv->fd);
		free(kv);
		return -1;
	}
	kvm_stats_open(kv);
	vcpu->backend = kv;
	if (vm_get_apic_mode(vcpu->ctx) == VM_APIC_X2APIC &&
	    kvm_enable_x2apic(vcpu) < 0) {
		kvm_vcpu_fini(vcpu);
		vcpu->backend = NULL;
		return -1;
	}
	return 0;
}

static void
kvm_vcpu_fini(struct vcpu *vcpu)
{
	struct kvm_vcpu *kv = vcpu->backend;
	struct kvm_vm *k = vcpu->ctx->backend;

	if (!kv)
		return;
	munmap(kv->run, k->run_size);
	if (kv->stats_fd >= 0)
		close(kv->stats_fd);
	free(kv->stats_descs);
	close(kv->fd);
	free(kv);
}

/* ---- register state ---- */

static void
seg_from_kvm(const struct kvm_segment *s, uint64_t *sel, struct seg_desc *d)
{
	*sel = s->selector;
	d->base = s->base;
	d->limit = s->limit;
	d->access = s->type | (s->s << 4) | (s->dpl << 5) | (s->present << 7) |
		    (s->avl << 12) | (s->l << 13) | (s->db << 14) |
		    (s->g << 15) | (s->unusable ? SEG_ACCESS_UNUSABLE : 0);
}

static void
seg_to_kvm(uint64_t sel, const struct seg_desc *d, struct kvm_segment *s)
{
	s->selector = sel;
	s->base = d->base;
	s->limit = d->limit;
	s->type = d->access & 0xf;
	s->s = (d->access >> 4) & 1;
	s->dpl = (d->access >> 5) & 3;
	s->present = (d->access >> 7) & 1;
	s->avl = (d->access >> 12) & 1;
	s->l = (d->access >> 13) & 1;
	s->db = (d->access >> 14) & 1;
	s->g = (d->access >> 15) & 1;
	s->unusable = (d->access & SEG_ACCESS_UNUSABLE) ? 1 : 0;
}

#define GPR_MAP(X)                                                             \
	X(RAX, rax) X(RBX, rbx) X(RCX, rcx) X(RDX, rdx) X(RSI, rsi)            \
	X(RDI, rdi) X(RBP, rbp) X(R8, r8) X(R9, r9) X(R10, r10) X(R11, r11)    \
	X(R12, r12) X(R13, r13) X(R14, r14) X(R15, r15) X(RSP, rsp)            \
	X(RIP, rip) X(RFLAGS, rflags)

static struct kvm_segment *
sreg_seg(struct kvm_sregs *s, int r)
{
	switch (r) {
	case VM_REG_GUEST_ES:
		return &s->es;
	case VM_REG_GUEST_CS:
		return &s->cs;
	case VM_REG_GUEST_SS:
		return &s->ss;
	case VM_REG_GUEST_DS:
		return &s->ds;
	case VM_REG_GUEST_FS:
		return &s->fs;
	case VM_REG_GUEST_GS:
		return &s->gs;
	case VM_REG_GUEST_LDTR:
		return &s->ldt;
	case VM_REG_GUEST_TR:
		return &s->tr;
	}
	return NULL;
}

static int
kvm_get_state(struct vcpu *vcpu, struct vm_boot_state *bs)
{
	struct kvm_vcpu *kv = vcpu->backend;
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(kv->fd, KVM_GET_REGS, &r) < 0 ||
	    ioctl(kv->fd, KVM_GET_SREGS, &s) < 0)
		return -1;
	memset(bs, 0, sizeof(*bs));
#define GET(n, f) bs->regs[VM_REG_GUEST_##n] = r.f;
	GPR_MAP(GET)
#undef GET
	bs->regs[VM_REG_GUEST_CR0] = s.cr0;
	bs->regs[VM_REG_GUEST_CR2] = s.cr2;
	bs->regs[VM_REG_GUEST_CR3] = s.cr3;
	bs->regs[VM_REG_GUEST_CR4] = s.cr4;
	bs->regs[VM_REG_GUEST_EFER] = s.efer;
	for (int i = VM_REG_GUEST_ES; i <= VM_REG_GUEST_TR; i++)
		seg_from_kvm(sreg_seg(&s, i), &bs->regs[i], &bs->segs[i]);
	bs->segs[VM_REG_GUEST_GDTR] =
		(struct seg_desc){s.gdt.base, s.gdt.limit, 0};
	bs->segs[VM_REG_GUEST_IDTR] =
		(struct seg_desc){s.idt.base, s.idt.limit, 0};
	bs->valid = true;
	return 0;
}

static int
kvm_set_state(struct vcpu *vcpu, const struct vm_boot_state *bs)
{
	struct kvm_vcpu *kv = vcpu->backend;
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(kv->fd, KVM_GET_SREGS, &s) < 0)
		return -1;
	memset(&r, 0, sizeof(r));
#define SET(n, f) r.f = bs->regs[VM_REG_GUEST_##n];
	GPR_MAP(SET)
#undef SET
	s.cr0 = bs->regs[VM_REG_GUEST_CR0];
	s.cr2 = bs->regs[VM_REG_GUEST_CR2];
	s.cr3 = bs->regs[VM_REG_GUEST_CR3];
	s.cr4 = bs->regs[VM_REG_GUEST_CR4];
	s.efer = bs->regs[VM_REG_GUEST_EFER];
	for (int i = VM_REG_GUEST_ES; i <= VM_REG_GUEST_TR; i++)
		seg_to_kvm(bs->regs[i], &bs->segs[i], sreg_seg(&s, i));
	s.gdt.base = bs->segs[VM_REG_GUEST_GDTR].base;
	s.gdt.limit = bs->segs[VM_REG_GUEST_GDTR].limit;
	s.idt.base = bs->segs[VM_REG_GUEST_IDTR].base;
	s.idt.limit = bs->segs[VM_REG_GUEST_IDTR].limit;
	if (ioctl(kv->fd, KVM_SET_SREGS, &s) < 0 ||
	    ioctl(kv->fd, KVM_SET_REGS, &r) < 0) {
		vm_set_error("setting vCPU %d registers: %s", vcpu->id,
			     strerror(errno));
		return -1;
	}
	return 0;
}

static int
kvm_get_msr(struct vcpu *vcpu, uint32_t msr, uint64_t *val)
{
	struct kvm_vcpu *kv = vcpu->backend;
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} m = {.h.nmsrs = 1, .e.index = msr};

	if (ioctl(kv->fd, KVM_GET_MSRS, &m) != 1)
		return -1;
	*val = m.e.data;
	return 0;
}

static int
kvm_set_msr(struct vcpu *vcpu, uint32_t msr, uint64_t val)
{
	struct kvm_vcpu *kv = vcpu->backend;
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} m = {.h.nmsrs = 1, .e.index = msr, .e.data = val};

	return ioctl(kv->fd, KVM_SET_MSRS, &m) == 1 ? 0 : -1;
}

/* ---- running ---- */

/*
 * Without KVM_CAP_IMMEDIATE_EXIT the kick signal stays blocked in the vCPU
 * thread except inside KVM_RUN, so a kick that lands between two runs makes
 * the next one return at once.
 */
static int
kvm_block_kick(struct kvm_vcpu *kv)
{
	union {
		struct kvm_signal_mask h;
		uint8_t buf[sizeof(struct kvm_signal_mask) + 8];
	} m;
	sigset_t block, during;

	sigemptyset(&block);
	sigaddset(&block, KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	pthread_sigmask(SIG_BLOCK, NULL, &during);
	sigdelset(&during, KICK_SIGNAL);
	m.h.len = 8; /* the kernel's sigset_t is 64 bits */
	memcpy(m.buf + sizeof(struct kvm_signal_mask), &during, 8);
	if (ioctl(kv->fd, KVM_SET_SIGNAL_MASK, &m.h) < 0) {
		vm_set_error("KVM_SET_SIGNAL_MASK: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int
kvm_bind_thread(struct vcpu *vcpu, struct kvm_vcpu *kv)
{
	struct kvm_vm *k = vcpu->ctx->backend;
	sigset_t unblock;

	if (k->immediate_exit) {
		sigemptyset(&unblock);
		sigaddset(&unblock, KICK_SIGNAL);
		pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
		this_run = kv->run;
	} else if (kvm_block_kick(kv) < 0) {
		return -1;
	}
	kv->thread = pthread_self();
	__atomic_store_n(&kv->thread_set, true, __ATOMIC_RELEASE);
	return 0;
}

static void
kvm_drain_ring(struct vmctx *ctx, struct kvm_run *run)
{
	struct kvm_vm *k = ctx->backend;
	struct kvm_coalesced_mmio_ring *ring;
	uint32_t max;

	if (!k->ring_pages)
		return;
	ring = (void *)((char *)run + k->ring_pages * k->page_size);
	if (__atomic_load_n(&ring->first, __ATOMIC_ACQUIRE) == ring->last)
		return;
	max = (k->page_size - sizeof(*ring)) /
	      sizeof(struct kvm_coalesced_mmio);
	pthread_mutex_lock(&k->ring_lock);
	while (ring->first != __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE)) {
		struct kvm_coalesced_mmio e = ring->coalesced_mmio[ring->first];
		uint32_t v = 0;

		if (e.len <= 4)
			memcpy(&v, e.data, e.len);
		if (ctx->coalesced_fn && e.pio)
			ctx->coalesced_fn(ctx, e.phys_addr, e.len, v);
		__atomic_store_n(&ring->first, (ring->first + 1) % max,
				 __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&k->ring_lock);
}

/*
 * A kick that ended KVM_RUN is still pending once the thread's mask is back
 * (it was only unblocked inside KVM_RUN): take it, or every later KVM_RUN
 * would return at once without running the guest.
 */
static void
kvm_eat_kick(void)
{
	static const struct timespec zero = {0, 0};
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, KICK_SIGNAL);
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
}

/*
 * KVM_SET_GUEST_DEBUG: INT3 and single steps exit to us. BLOCKIRQ (Linux
 * 5.16) keeps a step from landing in an interrupt handler.
 */
static int
kvm_set_debug(struct vcpu *vcpu, const struct vm_debug *d)
{
	struct kvm_vcpu *kv = vcpu->backend;
	struct kvm_guest_debug dbg;
	bool step = d->step;

	memset(&dbg, 0, sizeof(dbg));
	if (step || d->sw_bp || d->nhw)
		dbg.control = KVM_GUESTDBG_ENABLE;
	if (d->sw_bp)
		dbg.control |= KVM_GUESTDBG_USE_SW_BP;
	if (step)
		dbg.control |= KVM_GUESTDBG_SINGLESTEP;
	/* SDM vol. 3 §18.2.4: DR7 L0-L3 enable; R/W 00, LEN 00 = execute. */
	if (d->nhw) {
		dbg.control |= KVM_GUESTDBG_USE_HW_BP;
		for (int i = 0; i < d->nhw; i++) {
			dbg.arch.debugreg[i] = d->hw[i];
			dbg.arch.debugreg[7] |= 1ULL << (2 * i);
		}
	}
#ifdef KVM_GUESTDBG_BLOCKIRQ
	struct kvm_vm *k = vcpu->ctx->backend;

	if (step && k->debug_caps > 0 &&
	    (k->debug_caps & KVM_GUESTDBG_BLOCKIRQ))
		dbg.control |= KVM_GUESTDBG_BLOCKIRQ;
#endif
	if (ioctl(kv->fd, KVM_SET_GUEST_DEBUG, &dbg) < 0) {
		vm_set_error("KVM_SET_GUEST_DEBUG: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * KVM's api.txt (KVM_RUN, immediate_exit): re-entering with immediate_exit
 * set completes the pending I/O or MSR operation and returns EINTR before
 * any guest instruction runs.
 */
static void
kvm_settle(struct vcpu *vcpu)
{
	struct kvm_vm *k = vcpu->ctx->backend;
	struct kvm_vcpu *kv = vcpu->backend;

	if (!k->immediate_exit || !kv->thread_set)
		return;
	kv->run->immediate_exit = 1;
	if (ioctl(kv->fd, KVM_RUN, 0) == 0)
		vm_set_error("KVM_RUN ran with immediate_exit set");
	kv->run->immediate_exit = 0;
	kvm_drain_ring(vcpu->ctx, kv->run);
}

static int
kvm_run(struct vcpu *vcpu, struct vm_exit *x)
{
	struct kvm_vcpu *kv = vcpu->backend;
	struct kvm_run *run = kv->run;
	int ret;

	if (!kv->thread_set && kvm_bind_thread(vcpu, kv) < 0)
		return -1;
	ret = ioctl(kv->fd, KVM_RUN, 0);
	kvm_drain_ring(vcpu->ctx, run);
	memset(x, 0, sizeof(*x));
	if (ret < 0) {
		if (errno == EINTR || errno == EAGAIN) {
			if (run->immediate_exit)
				run->immediate_exit = 0;
			else
				kvm_eat_kick();
			x->code = VM_EXIT_INTR;
			return 0;
		}
		vm_set_error("KVM_RUN: %s", strerror(errno));
		return -1;
	}
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		x->code = VM_EXIT_INOUT;
		x->u.inout.port = run->io.port;
		x->u.inout.bytes = run->io.size;
		x->u.inout.in = run->io.direction == KVM_EXIT_IO_IN;
		x->u.inout.count = run->io.count;
		x->u.inout.data = (uint8_t *)run + run->io.data_offset;
		break;
	case KVM_EXIT_MMIO:
		x->code = VM_EXIT_MMIO;
		x->u.mmio.gpa = run->mmio.phys_addr;
		x->u.mmio.bytes = run->mmio.len;
		x->u.mmio.write = run->mmio.is_write;
		x->u.mmio.data = run->mmio.data;
		break;
	case KVM_EXIT_HLT:
		x->code = VM_EXIT_HLT;
		break;
	case KVM_EXIT_SHUTDOWN:
		x->code = VM_EXIT_TRIPLEFAULT;
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		x->code = VM_EXIT_SYSTEM;
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			x->u.system.event = VM_SYSTEM_SHUTDOWN;
			break;
		case KVM_SYSTEM_EVENT_RESET:
			x->u.system.event = VM_SYSTEM_RESET;
			break;
		default:
			x->u.system.event = VM_SYSTEM_OTHER;
		}
		break;
	case KVM_EXIT_INTR:
		x->code = VM_EXIT_INTR;
		break;
	case KVM_EXIT_DEBUG:
		/* #DB with DR6.BS (bit 14): a step; B0-B3: a DR breakpoint. */
		x->code = VM_EXIT_DEBUG;
		if (run->debug.arch.exception == 1) {
			x->u.debug.step = run->debug.arch.dr6 & (1u << 14);
			x->u.debug.hw = run->debug.arch.dr6 & 0xf;
		}
		x->rip = run->debug.arch.pc;
		break;
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
		x->code = VM_EXIT_MSR;
		x->u.msr.index = run->msr.index;
		x->u.msr.write = run->exit_reason == KVM_EXIT_X86_WRMSR;
		x->u.msr.value = run->msr.data;
		run->msr.error = 1; /* #GP unless vm_complete_msr says not */
		break;
	case KVM_EXIT_FAIL_ENTRY:
		x->code = VM_EXIT_ERROR;
		x->u.error.reason = run->exit_reason;
		x->u.error.detail =
			run->fail_entry.hardware_entry_failure_reason;
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		x->code = VM_EXIT_ERROR;
		x->u.error.reason = run->exit_reason;
		x->u.error.detail = run->internal.suberror;
		break;
	default:
		x->code = VM_EXIT_ERROR;
		x->u.error.reason = run->exit_reason;
		break;
	}
	if (x->code == VM_EXIT_ERROR || x->code == VM_EXIT_TRIPLEFAULT) {
		struct kvm_regs r;
		if (ioctl(kv->fd, KVM_GET_REGS, &r) == 0)
			x->rip = r.rip;
	}
	if (x->code == VM_EXIT_TRIPLEFAULT && x->rip == 0xfff0) {
		struct kvm_sregs sr;

		x->u.triple.reset = ioctl(kv->fd, KVM_GET_SREGS, &sr) == 0 &&
				    sr.cs.base == 0xffff0000;
	}
	return 0;
}

/* The answer KVM completes the RDMSR or WRMSR with at the next KVM_RUN. */
static void
kvm_complete_msr(struct vcpu *vcpu, bool fault, uint64_t value)
{
	struct kvm_run *run = ((struct kvm_vcpu *)vcpu->backend)->run;

	if (run->exit_reason != KVM_EXIT_X86_RDMSR &&
	    run->exit_reason != KVM_EXIT_X86_WRMSR)
		return;
	run->msr.error = fault;
	if (!fault && run->exit_reason == KVM_EXIT_X86_RDMSR)
		run->msr.data = value;
}

/*
 * KVM_CAP_X86_USER_SPACE_MSR (Linux 5.10, Documentation/virt/kvm/api.rst
 * §7.21) with KVM_MSR_EXIT_REASON_UNKNOWN: an access to an MSR KVM does not
 * implement exits to user space instead of raising #GP. Per VM, unlike the
 * kvm module's ignore_msrs, which holds for every VM on the host.
 */
static int
kvm_unknown_msr_exits(struct vmctx *ctx)
{
	struct kvm_vm *k = ctx->backend;
	struct kvm_enable_cap cap = {
	    .cap = KVM_CAP_X86_USER_SPACE_MSR,
	    .args[0] = KVM_MSR_EXIT_REASON_UNKNOWN,
	};
	int have = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION,
			 KVM_CAP_X86_USER_SPACE_MSR);

	if (have <= 0) {
		vm_set_error("this kernel's KVM cannot hand unknown MSRs to "
			     "user space (KVM_CAP_X86_USER_SPACE_MSR, Linux "
			     "5.10)");
		return -1;
	}
	if (ioctl(k->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
		vm_set_error("KVM_CAP_X86_USER_SPACE_MSR: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* kvm.ignore_msrs=Y: KVM ignores unknown MSRs itself, for every VM. */
static bool
kvm_unknown_msrs_fault(struct vmctx *ctx)
{
	FILE *f = fopen("/sys/module/kvm/parameters/ignore_msrs", "r");
	int c = f ? fgetc(f) : 'N';

	(void)ctx;
	if (f)
		fclose(f);
	return c != 'Y' && c != 'y' && c != '1';
}

static void
kvm_kick(struct vcpu *vcpu)
{
	struct kvm_vcpu *kv = vcpu->backend;

	if (kv && __atomic_load_n(&kv->thread_set, __ATOMIC_ACQUIRE))
		pthread_kill(kv->thread, KICK_SIGNAL);
}

static bool
kvm_maybe_halted(struct vcpu *vcpu)
{
	struct kvm_vcpu *kv = vcpu->backend;
	uint64_t v;

	if (!kv->blocking_off)
		return true;
	if (pread(kv->stats_fd, &v, sizeof(v), kv->blocking_off) != sizeof(v))
		return true;
	return v != 0;
}

static bool
kvm_halted_noint(struct vcpu *vcpu)
{
	struct kvm_vcpu *kv = vcpu->backend;
	struct kvm_mp_state mp;
	struct kvm_regs r;

	if (ioctl(kv->fd, KVM_GET_MP_STATE, &mp) < 0 ||
	    mp.mp_state != KVM_MP_STATE_HALTED)
		return false;
	if (ioctl(kv->fd, KVM_GET_REGS, &r) < 0)
		return false;
	return !(r.rflags & (1u << 9));
}

static int
kvm_irq_line(struct vmctx *ctx, int gsi, int level)
{
	struct kvm_vm *k = ctx->backend;
	struct kvm_irq_level l = {.irq = gsi, .level = level};

	return ioctl(k->vm_fd, KVM_IRQ_LINE, &l);
}

static int
kvm_msi(struct vmctx *ctx, uint64_t addr, uint64_t msg)
{
	struct kvm_vm *k = ctx->backend;
	struct kvm_msi m = {
		.address_lo = (uint32_t)addr,
		.address_hi = (uint32_t)(addr >> 32),
		.data = (uint32_t)msg,
	};

	return ioctl(k->vm_fd, KVM_SIGNAL_MSI, &m) < 0 ? -1 : 0;
}

static int
kvm_msi_irqfd(struct vmctx *ctx, int fd, uint64_t addr, uint32_t data)
{
	struct kvm_vm *k = ctx->backend;
	struct kvm_irqfd irqfd = {.fd = (uint32_t)fd};
	int i, e;

	pthread_mutex_lock(&k->route_lock);
	for (i = 0; i < KVM_MSI_ROUTES && k->msi[i].used; i++)
		;
	if (i == KVM_MSI_ROUTES) {
		pthread_mutex_unlock(&k->route_lock);
		errno = ENOSPC;
		return -1;
	}
	k->msi[i].used = true;
	k->msi[i].addr = addr;
	k->msi[i].data = data;
	irqfd.gsi = KVM_MSI_GSI0 + i;
	if (kvm_setup_routing(k->vm_fd, k) < 0 ||
	    ioctl(k->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		e = errno;
		k->msi[i].used = false;
		(void)kvm_setup_routing(k->vm_fd, k);
		pthread_mutex_unlock(&k->route_lock);
		errno = e;
		return -1;
	}
	pthread_mutex_unlock(&k->route_lock);
	return KVM_MSI_GSI0 + i;
}

static int
kvm_msi_irqfd_update(struct vmctx *ctx, int gsi, uint64_t addr, uint32_t data)
{
	struct kvm_vm *k = ctx->backend;
	int i = gsi - KVM_MSI_GSI0, rc = 0;

	if (i < 0 || i >= KVM_MSI_ROUTES) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&k->route_lock);
	if (k->msi[i].addr != addr || k->msi[i].data != data) {
		k->msi[i].addr = addr;
		k->msi[i].data = data;
		rc = kvm_setup_routing(k->vm_fd, k);
	}
	pthread_mutex_unlock(&k->route_lock);
	return rc;
}

static void
kvm_msi_irqfd_release(struct vmctx *ctx, int gsi, int fd)
{
	struct kvm_vm *k = ctx->backend;
	struct kvm_irqfd irqfd = {.fd = (uint32_t)fd,
				  .gsi = (uint32_t)gsi,
				  .flags = KVM_IRQFD_FLAG_DEASSIGN};
	int i = gsi - KVM_MSI_GSI0;

	if (i < 0 || i >= KVM_MSI_ROUTES)
		return;
	pthread_mutex_lock(&k->route_lock);
	(void)ioctl(k->vm_fd, KVM_IRQFD, &irqfd);
	k->msi[i].used = false;
	(void)kvm_setup_routing(k->vm_fd, k);
	pthread_mutex_unlock(&k->route_lock);
}

static void
kvm_drain_coalesced(struct vmctx *ctx)
{
	struct vcpu *v = vm_vcpu_get(ctx, 0);
	struct kvm_vcpu *kv = v ? v->backend : NULL;

	/* Every vCPU's run page maps the same ring. */
	if (kv)
		kvm_drain_ring(ctx, kv->run);
}

static int
kvm_coalesce_pio(struct vmctx *ctx, uint16_t port, uint16_t len, bool on)
{
	struct kvm_vm *k = ctx->backend;
	struct kvm_coalesced_mmio_zone z = {.addr = port, .size = len,
					    .pio = 1};

	if (!k->ring_pages) {
		errno = ENOTSUP;
		return -1;
	}
	return ioctl(k->vm_fd,
		     on ? KVM_REGISTER_COALESCED_MMIO
			: KVM_UNREGISTER_COALESCED_MMIO,
		     &z);
}

static int
kvm_ioeventfd(struct vmctx *ctx, uint64_t addr, int len, bool pio,
	      uint64_t datamatch, int fd, bool assign)
{
	struct kvm_vm *k = ctx->backend;
	struct kvm_ioeventfd e = {
	    .datamatch = datamatch,
	    .addr = addr,
	    .len = (uint32_t)len,
	    .fd = fd,
	    .flags = KVM_IOEVENTFD_FLAG_DATAMATCH |
		     (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
		     (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(k->vm_fd, KVM_IOEVENTFD, &e);
}

const struct vmm_ops vmm_kvm_ops = {
	.vm_init = kvm_vm_init,
	.map_mem = kvm_map_mem,
	.vm_fini = kvm_vm_fini,
	.vcpu_init = kvm_vcpu_init,
	.vcpu_fini = kvm_vcpu_fini,
	.get_state = kvm_get_state,
	.set_state = kvm_set_state,
	.get_msr = kvm_get_msr,
	.set_msr = kvm_set_msr,
	.unknown_msr_exits = kvm_unknown_msr_exits,
	.unknown_msrs_fault = kvm_unknown_msrs_fault,
	.complete_msr = kvm_complete_msr,
	.run = kvm_run,
	.kick = kvm_kick,
	.set_debug = kvm_set_debug,
	.settle = kvm_settle,
	.maybe_halted = kvm_maybe_halted,
	.stats = kvm_stats,
	.halted_noint = kvm_halted_noint,
	.irq_line = kvm_irq_line,
	.msi = kvm_msi,
	.coalesce_pio = kvm_coalesce_pio,
	.drain_coalesced = kvm_drain_coalesced,
	.ioeventfd = kvm_ioeventfd,
	.msi_irqfd = kvm_msi_irqfd,
	.msi_irqfd_update = kvm_msi_irqfd_update,
	.msi_irqfd_release = kvm_msi_irqfd_release,
};

int
vm_sandbox_fds(struct vmctx *ctx, int *out, int max)
{
	struct kvm_vm *k = ctx->backend;
	int n = 0;

	if (ctx->kind != VMM_BACKEND_KVM || !k)
		return 0;
	if (n < max)
		out[n++] = k->vm_fd;
	for (int i = 0; i < VM_MAXCPU && n < max; i++) {
		struct kvm_vcpu *kv =
		    ctx->vcpus[i] ? ctx->vcpus[i]->backend : NULL;

		if (kv)
			out[n++] = kv->fd;
	}
	return n;
}

unsigned long
vm_sandbox_run_ioctl(void)
{
	return KVM_RUN;
}

int
vm_vcpu_sandbox_fd(struct vcpu *vcpu)
{
	struct kvm_vcpu *kv = vcpu->backend;

	if (vcpu->ctx->kind != VMM_BACKEND_KVM || !kv)
		return -1;
	return kv->fd;
}

int
vm_sandbox_ioctls(unsigned long *out, int max)
{
	static const unsigned long reqs[] = {KVM_IRQ_LINE, KVM_SIGNAL_MSI};
	int n = 0;

	for (; n < max && n < (int)(sizeof(reqs) / sizeof(reqs[0])); n++)
		out[n] = reqs[n];
	return n;
}
