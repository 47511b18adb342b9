/*
 * bhyve: options -> config tree -> machine; one thread per vCPU, the event
 * loop on the main thread, and bhyve(8)'s exit status at the end:
 * 0 reset, 1 power-off, 2 halt, 3 triple fault, 4 error.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acpi.h"
#include "exitstats.h"
#include "gdb.h"
#include "inout.h"
#include "machine.h"
#include "mem.h"
#include "mevent.h"
#include "mptbl.h"
#include "options.h"
#include "smbiostbl.h"
#include "sandbox.h"

#define HALT_CHECK_MS 100
#define DRAIN_MS 20
#define VCPU_STACK_SIZE (1 << 20)

struct run_state;

struct vcpu_thread {
	struct run_state *rs;
	struct machine *m;
	struct vcpu *vcpu;
	pthread_t tid;
	int halted_gen;	 /* the last check generation it was halted in */
	int checked_gen; /* the last check generation it answered */
};

struct run_state {
	struct machine *m;
	struct exit_stats *stats; /* NULL unless debug.exit_stats */
	bool strictmsr;		  /* x86.strictmsr: unknown MSRs raise #GP */
	struct gdb_stub *gdb;	  /* -G, or NULL */
	struct vcpu_thread vt[VM_MAXCPU];
	pthread_mutex_t halt_lock;
	int halt_gen;
};

static void
coalesced_out(struct vmctx *ctx, uint16_t port, int bytes, uint32_t val)
{
	inout_dispatch(ctx, 0, port, bytes, &val);
}

static void
vcpu_error(struct vmctx *ctx, int id, const char *what)
{
	fprintf(stderr, "bhyve: vCPU %d: %s\n", id, what);
	machine_suspend(ctx, VM_SUSPEND_ERROR);
}

static void
handle_mmio(struct vmctx *ctx, struct vcpu *vcpu, struct vm_exit *x)
{
	uint64_t val = 0;
	int dir = x->u.mmio.write ? MEM_F_WRITE : MEM_F_READ;
	char msg[96];

	if (x->u.mmio.bytes > 8)
		return;
	if (dir == MEM_F_WRITE)
		memcpy(&val, x->u.mmio.data, x->u.mmio.bytes);
	if (emulate_mem(ctx, vcpu, x->u.mmio.gpa, dir, x->u.mmio.bytes, &val) <
	    0) {
		snprintf(msg, sizeof(msg),
			 "unhandled %s of %d bytes at 0x%" PRIx64
			 " (-e is set)",
			 dir == MEM_F_WRITE ? "write" : "read", x->u.mmio.bytes,
			 x->u.mmio.gpa);
		vcpu_error(ctx, vcpu_id(vcpu), msg);
		return;
	}
	if (dir == MEM_F_READ)
		memcpy(x->u.mmio.data, &val, x->u.mmio.bytes);
}

/* A kick from the halt checker: is this vCPU halted with IF clear? */
static void
halt_report(struct run_state *rs, struct vcpu_thread *vt)
{
	int n = 0;

	pthread_mutex_lock(&rs->halt_lock);
	if (vt->checked_gen == rs->halt_gen) {
		/* A kick for something else (suspend): nothing to check. */
		pthread_mutex_unlock(&rs->halt_lock);
		return;
	}
	vt->checked_gen = rs->halt_gen;
	if (vm_vcpu_halted_noint(vt->vcpu))
		vt->halted_gen = rs->halt_gen;
	for (int i = 0; i < rs->m->ncpus; i++)
		n += rs->vt[i].halted_gen == rs->halt_gen;
	pthread_mutex_unlock(&rs->halt_lock);
	if (n == rs->m->ncpus)
		machine_suspend(rs->m->ctx, VM_SUSPEND_HALT);
}

static void
handle_system_event(struct vmctx *ctx, int id, enum vm_system_event event)
{
	switch (event) {
	case VM_SYSTEM_SHUTDOWN:
		machine_suspend(ctx, VM_SUSPEND_POWEROFF);
		break;
	case VM_SYSTEM_RESET:
		machine_suspend(ctx, VM_SUSPEND_RESET);
		break;
	case VM_SYSTEM_OTHER:
		vcpu_error(ctx, id, "system event from the hypervisor");
	}
}

static void *
vcpu_loop(void *arg)
{
	struct vcpu_thread *vt = arg;
	struct run_state *rs = vt->rs;
	struct vmctx *ctx = vt->m->ctx;
	int id = vcpu_id(vt->vcpu);
	struct vm_exit x;
	char msg[128];

	snprintf(msg, sizeof(msg), "vcpu %d", id); /* top -H, ps -L */
	pthread_setname_np(pthread_self(), msg);
	/* Before the first KVM_RUN: the guest never runs unfiltered. */
	if (sandbox_vcpu(vm_vcpu_sandbox_fd(vt->vcpu), msg, sizeof(msg)) < 0)
		sandbox_fail(msg);
	if (rs->gdb)
		gdb_vcpu_start(rs->gdb, vt->vcpu);
	while (!machine_suspended(ctx)) {
		/* -G: parked here while the debugger has the guest. */
		if (rs->gdb &&
		    (gdb_vcpu_wait(rs->gdb, vt->vcpu) || machine_suspended(ctx)))
			break;
		if (vm_run(vt->vcpu, &x) < 0) {
			vcpu_error(ctx, id, vm_strerror());
			break;
		}
		if (rs->stats)
			exit_stats_count(rs->stats, &x);
		switch (x.code) {
		case VM_EXIT_INOUT:
			if (emulate_inout(ctx, vt->vcpu, &x, vt->m->strictio) <
			    0) {
				snprintf(
				    msg, sizeof(msg),
				    "unhandled %s of port 0x%x (-e is set)",
				    x.u.inout.in ? "read" : "write",
				    x.u.inout.port);
				vcpu_error(ctx, id, msg);
			}
			break;
		case VM_EXIT_MMIO:
			handle_mmio(ctx, vt->vcpu, &x);
			break;
		case VM_EXIT_HLT:
			break;
		case VM_EXIT_TRIPLEFAULT:
			if (x.u.triple.reset)
				fprintf(stderr,
					"bhyve: vCPU %d: triple fault (KVM "
					"reset the vCPU, as on AMD: where it "
					"faulted is not known)\n",
					id);
			else
				fprintf(stderr,
					"bhyve: vCPU %d: triple fault at rip "
					"0x%" PRIx64 "\n",
					id, x.rip);
			machine_suspend(ctx, VM_SUSPEND_TRIPLEFAULT);
			break;
		case VM_EXIT_SYSTEM:
			handle_system_event(ctx, id, x.u.system.event);
			break;
		case VM_EXIT_INTR:
			halt_report(rs, vt);
			break;
		case VM_EXIT_MSR:
			/*
			 * bhyve_config(5) x86.strictmsr=false: an MSR nobody
			 * emulates reads 0 and takes writes without effect.
			 */
			vm_complete_msr(vt->vcpu, rs->strictmsr, 0);
			break;
		case VM_EXIT_DEBUG:
			if (rs->gdb)
				gdb_vcpu_debug(rs->gdb, vt->vcpu, &x);
			break;
		case VM_EXIT_ERROR:
			snprintf(msg, sizeof(msg),
				 "the hypervisor failed to run the guest "
				 "(exit %u, detail 0x%" PRIx64
				 ") at rip 0x%" PRIx64,
				 x.u.error.reason, x.u.error.detail, x.rip);
			vcpu_error(ctx, id, msg);
			break;
		}
	}
	if (rs->gdb)
		gdb_vcpu_done(rs->gdb, vt->vcpu);
	return NULL;
}

/*
 * With KVM's in-kernel LAPIC a HLT never leaves the kernel, so "every vCPU
 * halted with interrupts off" is found by looking: when KVM's statistics
 * say every vCPU is blocked, kick them and have each check its state.
 */
static void
halt_check(int fd, enum ev_type type, void *arg)
{
	struct run_state *rs = arg;

	(void)fd;
	(void)type;
	for (int i = 0; i < rs->m->ncpus; i++)
		if (!vm_vcpu_maybe_halted(rs->vt[i].vcpu))
			return;
	pthread_mutex_lock(&rs->halt_lock);
	rs->halt_gen++;
	pthread_mutex_unlock(&rs->halt_lock);
	for (int i = 0; i < rs->m->ncpus; i++)
		vm_vcpu_kick(rs->vt[i].vcpu);
}

/* Writes KVM queued (coalesced THR and POST writes) reach their devices. */
static void
drain_tick(int fd, enum ev_type type, void *arg)
{
	struct run_state *rs = arg;

	(void)fd;
	(void)type;
	vm_drain_coalesced(rs->m->ctx);
}

static int
die(int status, const char *fmt, const char *arg)
{
	fprintf(stderr, "bhyve: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return status;
}

static int
boot_vcpu0(struct vmctx *ctx, struct vcpu *vcpu)
{
	struct vm_boot_state bs;

	/* Used up from here: a rerun needs a loader to run again. */
	if (vm_take_boot_state(ctx, &bs) < 0 || vm_apply_state(vcpu, &bs) < 0) {
		fprintf(stderr, "bhyve: %s\n", vm_strerror());
		return -1;
	}
	return 0;
}

/*
 * -w, -x/-a, -S and -C: how the vCPUs treat unknown MSRs and their APIC, and
 * how guest memory sits in this process. A failed -S is an error; the rest
 * say in one line what they could not do.
 */
static int
apply_cpu_and_memory(struct run_state *rs, struct vmctx *ctx,
		     const struct bhyve_settings *s)
{
	rs->strictmsr = s->strictmsr;
	if (!s->strictmsr && vm_unknown_msr_exits(ctx) < 0)
		fprintf(stderr,
			"bhyve: warning: -w (x86.strictmsr=false): %s; unknown "
			"MSRs raise #GP\n",
			vm_strerror());
	if (s->strictmsr && !vm_unknown_msrs_fault(ctx))
		fprintf(stderr, "bhyve: warning: x86.strictmsr: this host's "
				"KVM ignores unknown MSRs for every VM "
				"(kvm.ignore_msrs=Y): they read 0, no #GP\n");
	vm_set_apic_mode(ctx, s->apic_mode);
	if (vm_dump_memory(ctx, s->guest_in_core) < 0)
		fprintf(stderr, "bhyve: warning: %s%s\n",
			s->guest_in_core ? "-C: " : "", vm_strerror());
	if (s->wired && vm_wire_memory(ctx) < 0) {
		fprintf(stderr, "bhyve: -S: %s\n", vm_strerror());
		return -1;
	}
	return 0;
}

static void
gdb_kill(void *arg)
{
	machine_suspend(arg, VM_SUSPEND_POWEROFF);
}

/*
 * -G [w][address:]port (gdb.port, gdb.address, gdb.wait): a gdb stub on
 * its own thread; with gdb.wait the vCPUs wait for the debugger.
 */
static int
gdb_setup(struct run_state *rs, struct vmctx *ctx, struct config *cfg,
	  int ncpus)
{
	const char *port = config_get(cfg, "gdb.port");
	const char *addr = config_get_default(cfg, "gdb.address", "127.0.0.1");
	bool wait = config_get_bool(cfg, "gdb.wait", false);
	char err[256];

	if (!port)
		return 0;
	rs->gdb = gdb_create(ctx, ncpus, true, wait);
	if (!rs->gdb) {
		fprintf(stderr, "bhyve: gdb: out of memory\n");
		return -1;
	}
	gdb_set_kill(rs->gdb, gdb_kill, ctx);
	if (gdb_listen(rs->gdb, addr, port, err, sizeof(err)) < 0) {
		fprintf(stderr, "bhyve: %s\n", err);
		return -1;
	}
	if (wait)
		fprintf(stderr,
			"bhyve: waiting for gdb on %s port %s (target remote "
			"%s:%s)\n",
			addr, port, addr, port);
	return 0;
}

/* The VM's descriptors, for the run-time filters (sandbox.h). */
static void
sandbox_allow_vm(struct vmctx *ctx)
{
	int fds[VM_MAXCPU + 8];
	int n = vm_sandbox_fds(ctx, fds, VM_MAXCPU + 8);

	for (int i = 0; i < n; i++)
		sandbox_allow_any_ioctl(fds[i]);
	n = vm_sandbox_dirfds(ctx, fds, VM_MAXCPU + 8);
	for (int i = 0; i < n; i++)
		sandbox_allow_unlinkat(fds[i]);
}

static int
build_machine(struct run_state *rs, struct vmctx *ctx, struct config *cfg,
	      const struct bhyve_settings *s)
{
	struct machine *m;

	struct vm_topology topo = {s->sockets, s->cores, s->threads};

	if (vm_set_ncpus(ctx, s->cpus) < 0 || vm_set_topology(ctx, &topo) < 0 ||
	    vm_setup_memory(ctx, s->memsize) < 0) {
		fprintf(stderr, "bhyve: %s\n", vm_strerror());
		return -1;
	}
	if (apply_cpu_and_memory(rs, ctx, s) < 0)
		return -1;
	m = machine_create(ctx, cfg);
	if (!m)
		return -1;
	rs->m = m;
	m->strictio = s->strictio;
	m->mev = mevent_create();
	if (!m->mev)
		return -1;
	vm_set_coalesced_handler(ctx, coalesced_out);
	if (config_get_bool(cfg, "debug.exit_stats", false))
		rs->stats = exit_stats_create();
	/* Every device: the platform's, then the PCI bus and its functions. */
	if (sysdev_init_all(ctx) < 0)
		return -1;
	/* Firmware tables in the BIOS area, after the devices they describe. */
	if (acpi_build(ctx, s->cpus) < 0 || mptable_build(ctx, s->cpus) < 0 ||
	    smbios_build(ctx) < 0)
		return -1;
	for (int i = 0; i < s->cpus; i++) {
		rs->vt[i].rs = rs;
		rs->vt[i].m = m;
		rs->vt[i].halted_gen = -1;
		rs->vt[i].checked_gen = 0;
		rs->vt[i].vcpu = vm_vcpu_open(ctx, i);
		if (!rs->vt[i].vcpu) {
			fprintf(stderr, "bhyve: %s\n", vm_strerror());
			return -1;
		}
	}
	if (gdb_setup(rs, ctx, cfg, s->cpus) < 0)
		return -1;
	sandbox_allow_vm(ctx);
	return boot_vcpu0(ctx, rs->vt[0].vcpu);
}

static int
run_machine(struct run_state *rs, const struct bhyve_settings *s)
{
	struct machine *m = rs->m;
	pthread_attr_t attr;
	sigset_t all, old;
	int rc = 0;

	pthread_mutex_init(&rs->halt_lock, NULL);
	if (!mevent_add(m->mev, HALT_CHECK_MS, EVF_TIMER, halt_check, rs) ||
	    !mevent_add(m->mev, DRAIN_MS, EVF_TIMER, drain_tick, rs))
		return -1;
	/* vCPU threads take no process signals; the event loop has them. */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (rs->gdb && gdb_start(rs->gdb) < 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return -1;
	}
	/*
	 * 1 MiB stacks, not glibc's 8 MiB: a VMA under 2 MiB never gets a
	 * transparent huge page, which on THP "always" hosts made each vCPU's
	 * stack 2 MiB resident (BENCHMARKS.md, VMM memory).
	 */
	int started = 0;

	for (; started < m->ncpus; started++) {
		int i = started;

		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, VCPU_STACK_SIZE);
		/* -p / vcpu.N.cpuset: the vCPU runs only on those host CPUs. */
		if (s->pinned[i])
			pthread_attr_setaffinity_np(&attr, sizeof(cpu_set_t),
						    &s->cpuset[i]);
		rc = pthread_create(&rs->vt[i].tid, &attr, vcpu_loop,
				    &rs->vt[i]);
		pthread_attr_destroy(&attr);
		if (rc) {
			fprintf(stderr, "bhyve: cannot start vCPU %d%s: %s\n",
				i, s->pinned[i] ? " on its vcpu.N.cpuset" : "",
				strerror(rc));
			machine_suspend(m->ctx, VM_SUSPEND_POWEROFF);
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started == m->ncpus) {
		char err[256];

		/* Every thread is started: this one's filter comes last. */
		if (sandbox_loop(err, sizeof(err)) < 0)
			sandbox_fail(err);
		mevent_dispatch(m->mev);
	}
	/* Parked vCPUs and the stub's thread let go before the joins. */
	if (rs->gdb)
		gdb_stop(rs->gdb);
	for (int i = 0; i < started; i++) {
		vm_vcpu_kick(rs->vt[i].vcpu);
		pthread_join(rs->vt[i].tid, NULL);
	}
	return rc ? -1 : 0;
}

int
main(int argc, char **argv)
{
	struct run_state rs = {0};
	struct bhyve_settings s;
	struct config *cfg = config_create();
	struct vmctx *ctx;
	char err[256];
	bool created, destroy, built;
	int status;

	signal(SIGPIPE, SIG_IGN);
	bhyve_set_defaults(cfg);
	switch (bhyve_parse_args(argc, argv, cfg, stdout, err, sizeof(err))) {
	case OPT_EXIT:
		return 0;
	case OPT_ERROR:
		return die(4, "%s", err);
	case OPT_RUN:
		break;
	}
	if (bhyve_check_config(cfg, stderr, err, sizeof(err)) < 0)
		return die(4, "%s", err);
	if (config_get_bool(cfg, "config.dump", false)) {
		config_dump(cfg, stdout);
		return 0;
	}
	if (bhyve_settings(cfg, &s, err, sizeof(err)) < 0)
		return die(4, "%s", err);
	bhyve_warn_inert(cfg, stderr);
	sandbox_set_enabled(config_get_bool(cfg, "sandbox", true));
	tzset(); /* the RTC's localtime_r never reads the zone file later */
	if (sandbox_check(err, sizeof(err)) < 0)
		return die(4, "%s", err);
	created = !vm_instance_exists(s.name);
	ctx = vm_create(s.name, VMM_BACKEND_KVM);
	if (!ctx)
		return die(4, "%s", vm_strerror());
	if (vm_claim(ctx) < 0) {
		if (errno != EBUSY)
			return die(4, "%s", vm_strerror());
		return die(4,
			   "VM '%s' is in use by another bhyve: one bhyve "
			   "per VM (bhyvectl --destroy --vm=NAME stops it)",
			   s.name);
	}
	built = build_machine(&rs, ctx, cfg, &s) == 0;
	sandbox_seal(); /* helper threads install their filters now */
	if (!built || run_machine(&rs, &s) < 0) {
		gdb_free(rs.gdb);
		machine_free(rs.m);
		exit_stats_free(rs.stats);
		/* Leave no empty instance behind for a run that never began. */
		vm_close(ctx);
		if (created)
			vm_destroy_instance(s.name);
		config_free(cfg);
		return 4;
	}
	vm_drain_coalesced(ctx);
	if (rs.stats)
		exit_stats_print(rs.stats, ctx, rs.m->ncpus, stderr);
	exit_stats_free(rs.stats);
	gdb_free(rs.gdb);
	status = rs.m->status;
	destroy = s.destroy_on_poweroff && rs.m->how == VM_SUSPEND_POWEROFF;
	/* Devices stop (block I/O threads, com output) before memory goes. */
	machine_free(rs.m);
	/* Through the descriptors it holds: the event loop's filter. */
	if (destroy && vm_remove(ctx) < 0)
		fprintf(stderr, "bhyve: %s\n", vm_strerror());
	vm_close(ctx);
	config_free(cfg);
	return status;
}
