/*
 * The gdb stub (bhyve -G). Facts from gdb's manual, appendix "Remote Serial
 * Protocol": a packet is $data#cs with cs the modulo-256 sum of data in two
 * hex digits, answered '+' (good) or '-' (send again); 0x03 outside a
 * packet asks to stop; an empty reply means "not supported".
 *
 * Threads: gdb thread ids are vCPU ids + 1 (0 and -1 mean any and all).
 * All-stop: the debugger sees every vCPU parked in gdb_vcpu_wait, where it
 * left a copy of its registers; a single step runs the one vCPU.
 *
 * Guest addresses are virtual: they are walked through the page tables of
 * the selected vCPU (vm_gla2gpa). Software breakpoints are INT3 bytes
 * written into guest memory, with KVM told to hand #BP to us.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gdb.h"
#include "sandbox.h"

/* The largest packet taken or sent (data only); what qSupported offers. */
#define GDB_PKT_MAX 4096
#define GDB_PKT_OFFER "fc0"
/* m and M move at most this much at once: the reply is hex. */
#define GDB_MEM_MAX (GDB_PKT_MAX / 2 - 16)
#define GDB_BP_MAX 64
#define GDB_SIGINT 2
#define GDB_SIGTRAP 5
#define GDB_KICK_MS 50
#define GDB_SEND_TIMEOUT_S 5
#define INT3 0xcc

_Static_assert(2 * GDB_MEM_MAX < GDB_PKT_MAX, "an m reply fits a packet");

struct gdb_bp {
	uint64_t gva, gpa;
	uint8_t orig;
};

struct gdb_vcpu {
	struct vcpu *vcpu;	   /* set by gdb_vcpu_start */
	struct vm_boot_state snap; /* valid while parked */
	bool parked, done;
	struct vm_debug cur; /* what vm_set_debug last set */
};

enum gdb_rx {
	RX_IDLE,
	RX_DATA,
	RX_SUM1,
	RX_SUM2,
};

struct gdb_stub {
	struct vmctx *ctx;
	int ncpus;
	bool threaded;

	/* Shared with the vCPU threads. */
	pthread_mutex_t lock;
	pthread_cond_t run_cv;	/* parked vCPUs wait here */
	pthread_cond_t park_cv; /* the stub waits here for them to park */
	bool running;		/* every vCPU may run */
	int step_id;		/* this one vCPU may run one step, or -1 */
	int nparked, ndone;
	int nbp;
	int nhw; /* hardware breakpoints (Z1): linear addresses */
	uint64_t hw[VM_DEBUG_HW_MAX];
	bool quit;
	bool stop_pending; /* a vCPU reported VM_EXIT_DEBUG */
	int stop_id;
	bool stop_step, stop_hw;

	/* The protocol engine's own (the stub thread only). */
	bool attached;
	bool resumed; /* c or s sent: a stop reply is owed */
	bool hangup;  /* D or k: close the connection */
	int sig, cur_id;
	const char *why; /* "swbreak:;", "hwbreak:;" or "" */
	int g_id, c_id;	 /* Hg and Hc: a vCPU, or -1 for "any" */
	struct gdb_bp bp[GDB_BP_MAX];
	enum gdb_rx rx;
	char pkt[GDB_PKT_MAX + 1];
	size_t pktlen;
	bool overflow;
	uint8_t sum;
	int sumhi;
	char last[GDB_PKT_MAX + 4]; /* the last reply, for a '-' */
	size_t lastlen;
	gdb_out_fn out;
	void *out_arg;
	gdb_kill_fn kill;
	void *kill_arg;

	/* The socket side. */
	int lfd, cfd, evfd;
	pthread_t tid;
	bool started;

	struct gdb_vcpu v[];
};

/* A reply under construction; too long and it becomes an error. */
struct rbuf {
	char d[GDB_PKT_MAX];
	size_t n;
	bool over;
};

static void
rb_puts(struct rbuf *b, const char *s)
{
	size_t l = strlen(s);

	if (b->n + l > sizeof(b->d)) {
		b->over = true;
		return;
	}
	memcpy(b->d + b->n, s, l);
	b->n += l;
}

static void rb_printf(struct rbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
rb_printf(struct rbuf *b, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	rb_puts(b, tmp);
}

static void
rb_hex(struct rbuf *b, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	if (b->n + 2 * n > sizeof(b->d)) {
		b->over = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		b->d[b->n++] = digits[p[i] >> 4];
		b->d[b->n++] = digits[p[i] & 15];
	}
}

/* Little-endian, as gdb wants x86 registers. */
static void
rb_le(struct rbuf *b, uint64_t v, int bytes)
{
	uint8_t p[8];

	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	rb_hex(b, p, bytes);
}

static void
send_raw(struct gdb_stub *g, const char *s, size_t n)
{
	if (g->out)
		g->out(g->out_arg, s, n);
}

static void
reply(struct gdb_stub *g, const struct rbuf *b)
{
	static const char digits[] = "0123456789abcdef";
	const char *d = b->over ? "E01" : b->d;
	size_t n = b->over ? 3 : b->n;
	uint8_t sum = 0;

	g->last[0] = '$';
	memcpy(g->last + 1, d, n);
	for (size_t i = 0; i < n; i++)
		sum += (uint8_t)d[i];
	g->last[n + 1] = '#';
	g->last[n + 2] = digits[sum >> 4];
	g->last[n + 3] = digits[sum & 15];
	g->lastlen = n + 4;
	send_raw(g, g->last, g->lastlen);
}

static void
reply_str(struct gdb_stub *g, const char *s)
{
	struct rbuf b = {.n = 0};

	rb_puts(&b, s);
	reply(g, &b);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One to 16 hex digits at *p; -1 when there are none or too many. */
static int
parse_hex(const char **p, uint64_t *v)
{
	int n = 0, d;

	*v = 0;
	while ((d = hexval((unsigned char)**p)) >= 0) {
		if (++n > 16)
			return -1;
		*v = (*v << 4) | (uint64_t)d;
		(*p)++;
	}
	return n ? 0 : -1;
}

/* A thread id: "-1" (all), "0" (any) or a vCPU's id + 1. */
static int
parse_tid(const char **p, int *id, int ncpus)
{
	uint64_t v;

	if ((*p)[0] == '-' && (*p)[1] == '1') {
		*p += 2;
		*id = -1;
		return 0;
	}
	if (parse_hex(p, &v) < 0 || v > (uint64_t)ncpus)
		return -1;
	*id = (int)v - 1; /* 0, any, becomes -1 too */
	return 0;
}

/* The vCPU threads: whether and how to run. */

static void
wake_stub(struct gdb_stub *g)
{
	uint64_t one = 1;

	/* A full counter fails: a wake-up is pending anyway. */
	if (g->evfd >= 0 && write(g->evfd, &one, sizeof(one)) < 0)
		return;
}

void
gdb_vcpu_start(struct gdb_stub *g, struct vcpu *vcpu)
{
	pthread_mutex_lock(&g->lock);
	g->v[vcpu_id(vcpu)].vcpu = vcpu;
	pthread_mutex_unlock(&g->lock);
}

void
gdb_vcpu_done(struct gdb_stub *g, struct vcpu *vcpu)
{
	struct gdb_vcpu *v = &g->v[vcpu_id(vcpu)];

	pthread_mutex_lock(&g->lock);
	if (v->parked) {
		v->parked = false;
		g->nparked--;
	}
	v->done = true;
	g->ndone++;
	pthread_cond_broadcast(&g->park_cv);
	pthread_mutex_unlock(&g->lock);
}

bool
gdb_vcpu_wait(struct gdb_stub *g, struct vcpu *vcpu)
{
	int id = vcpu_id(vcpu);
	struct gdb_vcpu *v = &g->v[id];
	struct vm_debug d;
	bool quit;

	pthread_mutex_lock(&g->lock);
	while (!g->quit && !g->running && g->step_id != id) {
		if (!v->parked) {
			/* The debugger reads registers from this copy. */
			vm_vcpu_settle(vcpu);
			if (vm_get_state(vcpu, &v->snap) < 0)
				memset(&v->snap, 0, sizeof(v->snap));
			v->parked = true;
			g->nparked++;
			pthread_cond_broadcast(&g->park_cv);
		}
		pthread_cond_wait(&g->run_cv, &g->lock);
	}
	if (v->parked) {
		v->parked = false;
		g->nparked--;
	}
	quit = g->quit;
	memset(&d, 0, sizeof(d));
	d.step = g->step_id == id;
	d.sw_bp = g->nbp > 0;
	d.nhw = g->nhw;
	memcpy(d.hw, g->hw, sizeof(d.hw));
	pthread_mutex_unlock(&g->lock);
	if (quit || !memcmp(&d, &v->cur, sizeof(d)))
		return quit;
	if (vm_set_debug(vcpu, &d) < 0) {
		fprintf(stderr, "bhyve: gdb: vCPU %d: %s\n", id, vm_strerror());
		return false;
	}
	v->cur = d;
	return false;
}

void
gdb_vcpu_debug(struct gdb_stub *g, struct vcpu *vcpu, const struct vm_exit *x)
{
	pthread_mutex_lock(&g->lock);
	if (!g->stop_pending) {
		g->stop_pending = true;
		g->stop_id = vcpu_id(vcpu);
		g->stop_step = x->u.debug.step;
		g->stop_hw = x->u.debug.hw;
	}
	g->running = false;
	g->step_id = -1;
	pthread_mutex_unlock(&g->lock);
	wake_stub(g);
}

/* Stop every vCPU and wait until each is parked (or gone). */
static void
stop_all(struct gdb_stub *g)
{
	struct timespec ts;

	pthread_mutex_lock(&g->lock);
	g->running = false;
	g->step_id = -1;
	while (g->threaded && !g->quit && g->nparked + g->ndone < g->ncpus) {
		/*
		 * Kick again until it parks: a kick that comes before the
		 * vCPU's first vm_run bound its thread would be lost.
		 */
		for (int i = 0; i < g->ncpus; i++)
			if (g->v[i].vcpu && !g->v[i].parked && !g->v[i].done)
				vm_vcpu_kick(g->v[i].vcpu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += GDB_KICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&g->park_cv, &g->lock, &ts);
	}
	pthread_mutex_unlock(&g->lock);
}

static void
resume(struct gdb_stub *g, int step_id)
{
	pthread_mutex_lock(&g->lock);
	g->stop_pending = false;
	g->step_id = step_id;
	g->running = step_id < 0;
	pthread_cond_broadcast(&g->run_cv);
	pthread_mutex_unlock(&g->lock);
	g->resumed = true;
}

/* A vCPU's registers: the copy it left when it parked, or asked now. */
static int
get_state(struct gdb_stub *g, int id, struct vm_boot_state *bs)
{
	struct vcpu *vcpu;
	bool have = false;

	pthread_mutex_lock(&g->lock);
	if (g->v[id].parked) {
		*bs = g->v[id].snap;
		have = true;
	}
	pthread_mutex_unlock(&g->lock);
	if (have)
		return 0;
	vcpu = vm_vcpu_get(g->ctx, id);
	return vcpu ? vm_get_state(vcpu, bs) : -1;
}

/* Guest memory by virtual address: how many bytes could be moved. */
static size_t
mem_access(struct gdb_stub *g, int id, uint64_t gva, uint8_t *buf, size_t len,
	   bool write)
{
	struct vm_boot_state bs;
	size_t done = 0, n;
	uint64_t gpa;
	uint8_t *p;

	if (get_state(g, id, &bs) < 0)
		return 0;
	while (done < len) {
		if (vm_gla2gpa(g->ctx, &bs, gva + done, &gpa) < 0)
			break;
		n = 4096 - (gpa & 4095);
		if (n > len - done)
			n = len - done;
		p = vm_map_gpa(g->ctx, gpa, n);
		if (!p)
			break;
		if (write)
			memcpy(p, buf + done, n);
		else
			memcpy(buf + done, p, n);
		done += n;
	}
	return done;
}

static int
cur_g(struct gdb_stub *g)
{
	return g->g_id >= 0 ? g->g_id : g->cur_id;
}

static void
stop_reply(struct gdb_stub *g)
{
	struct rbuf b = {.n = 0};

	rb_printf(&b, "T%02x", g->sig);
	rb_puts(&b, g->why);
	rb_printf(&b, "thread:%x;", g->cur_id + 1);
	reply(g, &b);
}

/*
 * 'g' without a target description: gdb's amd64 layout, rax rbx rcx rdx
 * rsi rdi rbp rsp r8-r15 rip (8 bytes each), then eflags cs ss ds es fs
 * gs (4 bytes each). gdb takes a shorter reply than its whole register
 * file and shows the rest (x87, SSE) as unavailable.
 */
static const enum vm_reg_name gdb_gprs[] = {
    VM_REG_GUEST_RAX, VM_REG_GUEST_RBX, VM_REG_GUEST_RCX, VM_REG_GUEST_RDX,
    VM_REG_GUEST_RSI, VM_REG_GUEST_RDI, VM_REG_GUEST_RBP, VM_REG_GUEST_RSP,
    VM_REG_GUEST_R8,  VM_REG_GUEST_R9,	VM_REG_GUEST_R10, VM_REG_GUEST_R11,
    VM_REG_GUEST_R12, VM_REG_GUEST_R13, VM_REG_GUEST_R14, VM_REG_GUEST_R15,
    VM_REG_GUEST_RIP,
};
static const enum vm_reg_name gdb_regs32[] = {
    VM_REG_GUEST_RFLAGS, VM_REG_GUEST_CS, VM_REG_GUEST_SS, VM_REG_GUEST_DS,
    VM_REG_GUEST_ES,	 VM_REG_GUEST_FS, VM_REG_GUEST_GS,
};

static void
cmd_regs(struct gdb_stub *g)
{
	struct vm_boot_state bs;
	struct rbuf b = {.n = 0};

	if (get_state(g, cur_g(g), &bs) < 0) {
		reply_str(g, "E01");
		return;
	}
	for (size_t i = 0; i < sizeof(gdb_gprs) / sizeof(gdb_gprs[0]); i++)
		rb_le(&b, bs.regs[gdb_gprs[i]], 8);
	for (size_t i = 0; i < sizeof(gdb_regs32) / sizeof(gdb_regs32[0]); i++)
		rb_le(&b, bs.regs[gdb_regs32[i]], 4);
	reply(g, &b);
}

/* m addr,len */
static void
cmd_read_mem(struct gdb_stub *g, const char *p)
{
	uint8_t buf[GDB_MEM_MAX];
	struct rbuf b = {.n = 0};
	uint64_t addr, len;
	size_t n;

	if (parse_hex(&p, &addr) < 0 || *p++ != ',' ||
	    parse_hex(&p, &len) < 0 || *p) {
		reply_str(g, "E01");
		return;
	}
	if (len > GDB_MEM_MAX) /* a shorter reply is allowed */
		len = GDB_MEM_MAX;
	n = mem_access(g, cur_g(g), addr, buf, len, false);
	if (n == 0 && len > 0) {
		reply_str(g, "E14");
		return;
	}
	rb_hex(&b, buf, n);
	reply(g, &b);
}

/* M addr,len:XX... */
static void
cmd_write_mem(struct gdb_stub *g, const char *p)
{
	uint8_t buf[GDB_MEM_MAX];
	uint64_t addr, len;
	int hi, lo;

	if (parse_hex(&p, &addr) < 0 || *p++ != ',' ||
	    parse_hex(&p, &len) < 0 || *p++ != ':' || len > GDB_MEM_MAX ||
	    strlen(p) != 2 * len) {
		reply_str(g, "E01");
		return;
	}
	for (uint64_t i = 0; i < len; i++) {
		hi = hexval((unsigned char)p[2 * i]);
		lo = hexval((unsigned char)p[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			reply_str(g, "E01");
			return;
		}
		buf[i] = (uint8_t)(hi << 4 | lo);
	}
	if (mem_access(g, cur_g(g), addr, buf, len, true) != len) {
		reply_str(g, "E14");
		return;
	}
	reply_str(g, "OK");
}

static int
bp_find(struct gdb_stub *g, uint64_t gva)
{
	for (int i = 0; i < g->nbp; i++)
		if (g->bp[i].gva == gva)
			return i;
	return -1;
}

static int
bp_insert(struct gdb_stub *g, uint64_t gva)
{
	struct vm_boot_state bs;
	struct gdb_bp *bp;
	uint8_t *p;
	uint64_t gpa;

	if (bp_find(g, gva) >= 0)
		return 0;
	if (g->nbp == GDB_BP_MAX || get_state(g, cur_g(g), &bs) < 0 ||
	    vm_gla2gpa(g->ctx, &bs, gva, &gpa) < 0)
		return -1;
	p = vm_map_gpa(g->ctx, gpa, 1);
	if (!p)
		return -1;
	bp = &g->bp[g->nbp];
	bp->gva = gva;
	bp->gpa = gpa;
	bp->orig = *p;
	*p = INT3;
	pthread_mutex_lock(&g->lock);
	g->nbp++;
	pthread_mutex_unlock(&g->lock);
	return 0;
}

static void
bp_remove_at(struct gdb_stub *g, int i)
{
	uint8_t *p = vm_map_gpa(g->ctx, g->bp[i].gpa, 1);

	if (p)
		*p = g->bp[i].orig;
	pthread_mutex_lock(&g->lock);
	g->bp[i] = g->bp[--g->nbp];
	pthread_mutex_unlock(&g->lock);
}

/* Z1: an execution breakpoint in the debug registers, by linear address. */
static int
hw_set(struct gdb_stub *g, uint64_t gva, bool insert)
{
	int i, rc = 0;

	pthread_mutex_lock(&g->lock);
	for (i = 0; i < g->nhw && g->hw[i] != gva; i++)
		;
	if (insert && i == g->nhw) {
		if (g->nhw < VM_DEBUG_HW_MAX)
			g->hw[g->nhw++] = gva;
		else
			rc = -1;
	} else if (!insert) {
		if (i < g->nhw)
			g->hw[i] = g->hw[--g->nhw];
		else
			rc = -1;
	}
	pthread_mutex_unlock(&g->lock);
	return rc;
}

/* Z0/Z1,addr,kind and z0/z1; watchpoints are not supported. */
static void
cmd_breakpoint(struct gdb_stub *g, const char *p, bool insert)
{
	uint64_t type, addr, kind;
	int i;

	if (parse_hex(&p, &type) < 0 || *p++ != ',' ||
	    parse_hex(&p, &addr) < 0 || *p++ != ',' ||
	    parse_hex(&p, &kind) < 0 || (*p && *p != ';')) {
		reply_str(g, "E01");
		return;
	}
	if (type == 1) {
		reply_str(g, hw_set(g, addr, insert) < 0 ? "E0e" : "OK");
		return;
	}
	if (type != 0) {
		reply_str(g, "");
		return;
	}
	if (insert) {
		reply_str(g, bp_insert(g, addr) < 0 ? "E0e" : "OK");
		return;
	}
	i = bp_find(g, addr);
	if (i >= 0)
		bp_remove_at(g, i);
	reply_str(g, i >= 0 ? "OK" : "E01");
}

static void
cmd_thread_info(struct gdb_stub *g)
{
	struct rbuf b = {.n = 0};

	rb_puts(&b, "m");
	for (int i = 0; i < g->ncpus; i++)
		rb_printf(&b, "%s%x", i ? "," : "", i + 1);
	reply(g, &b);
}

/* H g TID / H c TID */
static void
cmd_set_thread(struct gdb_stub *g, const char *p)
{
	char op = *p++;
	int id;

	if ((op != 'g' && op != 'c') || parse_tid(&p, &id, g->ncpus) < 0 ||
	    *p) {
		reply_str(g, "E01");
		return;
	}
	if (op == 'g')
		g->g_id = id;
	else
		g->c_id = id;
	reply_str(g, "OK");
}

static void
cmd_query(struct gdb_stub *g, const char *p)
{
	struct rbuf b = {.n = 0};

	if (!strncmp(p, "Supported", 9)) {
		reply_str(g, "PacketSize=" GDB_PKT_OFFER ";swbreak+;hwbreak+");
	} else if (!strcmp(p, "Attached")) {
		reply_str(g, "1"); /* detaching leaves the guest running */
	} else if (!strcmp(p, "C")) {
		rb_printf(&b, "QC%x", g->cur_id + 1);
		reply(g, &b);
	} else if (!strcmp(p, "fThreadInfo")) {
		cmd_thread_info(g);
	} else if (!strcmp(p, "sThreadInfo")) {
		reply_str(g, "l");
	} else if (!strcmp(p, "Symbol::")) {
		reply_str(g, "OK");
	} else {
		reply_str(g, "");
	}
}

static void
step_or_continue(struct gdb_stub *g, int step_id)
{
	if (step_id >= 0 && step_id >= g->ncpus)
		step_id = g->cur_id;
	resume(g, step_id);
}

/* vCont;ACTION[:TID]...: a step wins; the others stay parked meanwhile. */
static void
cmd_vcont(struct gdb_stub *g, const char *p)
{
	int step = -2, id;
	bool cont = false;

	while (*p == ';') {
		char a = *++p;

		p++;
		if (a == 'C' || a == 'S') {
			uint64_t sig;

			if (parse_hex(&p, &sig) < 0)
				goto bad;
			a = (char)(a - 'A' + 'a');
		}
		if (a != 'c' && a != 's')
			goto bad;
		id = g->cur_id;
		if (*p == ':') {
			p++;
			if (parse_tid(&p, &id, g->ncpus) < 0)
				goto bad;
			if (id < 0)
				id = g->cur_id;
		}
		if (a == 's' && step == -2)
			step = id;
		else if (a == 'c')
			cont = true;
	}
	if (*p || (step == -2 && !cont))
		goto bad;
	step_or_continue(g, step >= 0 ? step : -1);
	return;
bad:
	reply_str(g, "E01");
}

/*
 * The debugger leaves (D, k, or its connection ends, perhaps while the
 * guest runs): every vCPU stops before the INT3 bytes go, then all run on
 * without debug flags, whatever stop was still on its way.
 */
static void
release(struct gdb_stub *g)
{
	stop_all(g);
	while (g->nbp > 0)
		bp_remove_at(g, g->nbp - 1);
	pthread_mutex_lock(&g->lock);
	g->nhw = 0;
	pthread_mutex_unlock(&g->lock);
	resume(g, -1);
	g->resumed = false;
	g->attached = false;
}

static void
dispatch(struct gdb_stub *g)
{
	const char *p = g->pkt + 1;
	int id;

	switch (g->pkt[0]) {
	case '?':
		stop_reply(g);
		break;
	case 'g':
		cmd_regs(g);
		break;
	case 'm':
		cmd_read_mem(g, p);
		break;
	case 'M':
		cmd_write_mem(g, p);
		break;
	case 'Z':
	case 'z':
		cmd_breakpoint(g, p, g->pkt[0] == 'Z');
		break;
	case 'c':
	case 'C':
		step_or_continue(g, -1);
		break;
	case 's':
	case 'S':
		step_or_continue(g, g->c_id >= 0 ? g->c_id : g->cur_id);
		break;
	case 'H':
		cmd_set_thread(g, p);
		break;
	case 'T':
		if (parse_tid(&p, &id, g->ncpus) < 0 || *p || id < 0)
			reply_str(g, "E01");
		else
			reply_str(g, "OK");
		break;
	case 'q':
		cmd_query(g, p);
		break;
	case 'v':
		if (!strcmp(p, "Cont?"))
			reply_str(g, "vCont;c;C;s;S");
		else if (!strncmp(p, "Cont;", 5))
			cmd_vcont(g, p + 4);
		else
			reply_str(g, "");
		break;
	case 'D':
		release(g);
		reply_str(g, "OK");
		g->hangup = true;
		break;
	case 'k':
		if (g->kill)
			g->kill(g->kill_arg);
		release(g);
		g->hangup = true;
		break;
	default:
		reply_str(g, "");
	}
}

static void
interrupt(struct gdb_stub *g)
{
	if (!g->attached || !g->resumed)
		return;
	stop_all(g);
	g->resumed = false;
	g->sig = GDB_SIGINT;
	g->why = "";
	stop_reply(g);
}

static void
input_byte(struct gdb_stub *g, uint8_t c)
{
	int v;

	switch (g->rx) {
	case RX_IDLE:
		if (c == '$') {
			g->rx = RX_DATA;
			g->pktlen = 0;
			g->overflow = false;
			g->sum = 0;
		} else if (c == 0x03) {
			interrupt(g);
		} else if (c == '-' && g->lastlen) {
			send_raw(g, g->last, g->lastlen);
		}
		break; /* '+' and noise between packets */
	case RX_DATA:
		if (c == '#') {
			g->rx = RX_SUM1;
		} else if (c == '$') {
			g->pktlen = 0; /* a new packet begins: drop this one */
			g->overflow = false;
			g->sum = 0;
		} else {
			g->sum += c;
			if (g->pktlen < GDB_PKT_MAX)
				g->pkt[g->pktlen++] = (char)c;
			else
				g->overflow = true;
		}
		break;
	case RX_SUM1:
		g->sumhi = hexval(c);
		g->rx = RX_SUM2;
		break;
	case RX_SUM2:
		g->rx = RX_IDLE;
		v = hexval(c);
		if (g->sumhi < 0 || v < 0 || (g->sumhi << 4 | v) != g->sum) {
			send_raw(g, "-", 1);
			break;
		}
		send_raw(g, "+", 1);
		if (g->overflow || g->pktlen == 0) {
			reply_str(g, g->overflow ? "E01" : "");
			break;
		}
		g->pkt[g->pktlen] = '\0';
		dispatch(g);
		break;
	}
}

void
gdb_input(struct gdb_stub *g, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len && !g->hangup; i++)
		input_byte(g, buf[i]);
}

void
gdb_attach(struct gdb_stub *g)
{
	stop_all(g);
	g->attached = true;
	g->resumed = false;
	g->hangup = false;
	g->rx = RX_IDLE;
	g->lastlen = 0;
	g->sig = GDB_SIGTRAP;
	g->why = "";
	g->cur_id = 0;
	g->g_id = g->c_id = -1;
}

void
gdb_detach(struct gdb_stub *g)
{
	if (g->attached)
		release(g);
}

void
gdb_check_stop(struct gdb_stub *g)
{
	bool pending, step, hw;
	int id;

	pthread_mutex_lock(&g->lock);
	pending = g->stop_pending;
	id = g->stop_id;
	step = g->stop_step;
	hw = g->stop_hw;
	g->stop_pending = false;
	pthread_mutex_unlock(&g->lock);
	if (!pending)
		return;
	if (!g->attached) {
		resume(g, -1); /* a stop that came after the debugger left */
		g->resumed = false;
		return;
	}
	if (!g->resumed)
		return; /* stopped already (0x03): an INT3 hits again later */
	stop_all(g);
	g->resumed = false;
	g->cur_id = id;
	g->g_id = g->c_id = -1;
	g->sig = GDB_SIGTRAP;
	g->why = step ? "" : hw ? "hwbreak:;" : "swbreak:;";
	stop_reply(g);
}

struct gdb_stub *
gdb_create(struct vmctx *ctx, int ncpus, bool threaded, bool wait)
{
	struct gdb_stub *g;

	if (ncpus < 1 || ncpus > VM_MAXCPU)
		return NULL;
	g = calloc(1, sizeof(*g) + ncpus * sizeof(g->v[0]));
	if (!g)
		return NULL;
	g->ctx = ctx;
	g->ncpus = ncpus;
	g->threaded = threaded;
	g->running = !wait;
	g->step_id = -1;
	g->g_id = g->c_id = -1;
	g->sig = GDB_SIGTRAP;
	g->why = "";
	g->lfd = g->cfd = g->evfd = -1;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->run_cv, NULL);
	pthread_cond_init(&g->park_cv, NULL);
	return g;
}

void
gdb_set_output(struct gdb_stub *g, gdb_out_fn fn, void *arg)
{
	g->out = fn;
	g->out_arg = arg;
}

void
gdb_set_kill(struct gdb_stub *g, gdb_kill_fn fn, void *arg)
{
	g->kill = fn;
	g->kill_arg = arg;
}

void
gdb_free(struct gdb_stub *g)
{
	if (!g)
		return;
	gdb_stop(g);
	if (g->lfd >= 0)
		close(g->lfd);
	if (g->evfd >= 0)
		close(g->evfd);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->run_cv);
	pthread_cond_destroy(&g->park_cv);
	free(g);
}

/* The socket side: one thread, one client. */

static void
sock_out(void *arg, const char *buf, size_t len)
{
	struct gdb_stub *g = arg;
	ssize_t n;

	while (len > 0 && g->cfd >= 0) {
		n = send(g->cfd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* the client is gone or stuck: recv sees it */
		buf += n;
		len -= (size_t)n;
	}
}

int
gdb_listen(struct gdb_stub *g, const char *addr, const char *port, char *err,
	   size_t errlen)
{
	struct addrinfo hints = {0}, *ai;
	int one = 1, rc;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(addr, port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "gdb.address %s, gdb.port %s: %s", addr,
			 port, gai_strerror(rc));
		return -1;
	}
	g->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (g->lfd < 0 ||
	    setsockopt(g->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) <
		0 ||
	    bind(g->lfd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(g->lfd, 1) < 0) {
		snprintf(err, errlen, "gdb: cannot listen on %s port %s: %s",
			 addr, port, strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	g->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (g->evfd < 0) {
		snprintf(err, errlen, "gdb: eventfd: %s", strerror(errno));
		return -1;
	}
	gdb_set_output(g, sock_out, g);
	return 0;
}

static void
sock_accept(struct gdb_stub *g)
{
	struct timeval tv = {GDB_SEND_TIMEOUT_S, 0};
	int one = 1;
	int fd = accept4(g->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (g->cfd >= 0) {
		close(fd); /* one debugger at a time */
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	g->cfd = fd;
	gdb_attach(g);
}

static void
sock_close(struct gdb_stub *g)
{
	gdb_detach(g);
	close(g->cfd);
	g->cfd = -1;
}

static void *
gdb_thread(void *arg)
{
	struct gdb_stub *g = arg;
	uint8_t buf[GDB_PKT_MAX];
	struct pollfd p[3];
	char err[256];
	uint64_t cnt;
	ssize_t n;
	bool quit;

	pthread_setname_np(pthread_self(), "gdb");
	if (sandbox_helper("gdb", SANDBOX_ACCEPTS, err, sizeof(err)) < 0)
		sandbox_fail(err);
	for (;;) {
		p[0] = (struct pollfd){.fd = g->evfd, .events = POLLIN};
		p[1] = (struct pollfd){.fd = g->lfd, .events = POLLIN};
		p[2] = (struct pollfd){.fd = g->cfd, .events = POLLIN};
		if (poll(p, g->cfd >= 0 ? 3 : 2, -1) < 0 && errno != EINTR)
			break;
		pthread_mutex_lock(&g->lock);
		quit = g->quit;
		pthread_mutex_unlock(&g->lock);
		if (quit)
			break;
		if (p[0].revents & POLLIN) {
			if (read(g->evfd, &cnt, sizeof(cnt)) < 0)
				cnt = 0;
			gdb_check_stop(g);
		}
		if (p[1].revents & POLLIN)
			sock_accept(g);
		if (g->cfd >= 0 && p[2].revents) {
			n = recv(g->cfd, buf, sizeof(buf), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				sock_close(g);
				continue;
			}
			gdb_input(g, buf, (size_t)n);
			if (g->hangup)
				sock_close(g);
		}
	}
	if (g->cfd >= 0) {
		close(g->cfd);
		g->cfd = -1;
	}
	return NULL;
}

int
gdb_start(struct gdb_stub *g)
{
	int rc = pthread_create(&g->tid, NULL, gdb_thread, g);

	if (rc) {
		fprintf(stderr, "bhyve: gdb: cannot start its thread: %s\n",
			strerror(rc));
		return -1;
	}
	g->started = true;
	return 0;
}

void
gdb_stop(struct gdb_stub *g)
{
	pthread_mutex_lock(&g->lock);
	g->quit = true;
	pthread_cond_broadcast(&g->run_cv);
	pthread_cond_broadcast(&g->park_cv);
	pthread_mutex_unlock(&g->lock);
	if (g->started) {
		wake_stub(g);
		pthread_join(g->tid, NULL);
		g->started = false;
	}
}
