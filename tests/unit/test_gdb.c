/*
 * The gdb stub's protocol engine against the mock backend: packet framing
 * and checksums, hostile packets, the register layout gdb expects for
 * i386:x86-64, guest-virtual memory through a 4-level page table built in
 * mock memory, INT3 breakpoints and the debug flags a step or a
 * breakpoint asks of the vCPU.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "gdb.h"
#include "vmm.h"

#define MEM (4ULL << 20)
#define PML4 0x1000
#define CODE_GVA 0x00007fff00001000ULL
#define CODE_GPA 0x9000
#define BIG_GVA 0xffff800000200000ULL /* a 2 MiB page */
#define BIG_GPA 0x200000

struct fx {
	struct vmctx *ctx;
	struct vcpu *vcpu;
	struct gdb_stub *g;
	char out[16384];
	size_t n;
	uint64_t next_table;
};

static void
collect(void *arg, const char *buf, size_t len)
{
	struct fx *f = arg;

	assert_true(f->n + len < sizeof(f->out));
	memcpy(f->out + f->n, buf, len);
	f->n += len;
	f->out[f->n] = '\0';
}

static uint64_t *
table(struct fx *f, uint64_t gpa)
{
	return vm_map_gpa(f->ctx, gpa, 4096);
}

/* Map gva to gpa: 4 KiB, or 2 MiB when big, tables allocated as needed. */
static void
map(struct fx *f, uint64_t gva, uint64_t gpa, bool big)
{
	uint64_t t = PML4;
	int last = big ? 1 : 0;

	for (int l = 3; l > last; l--) {
		uint64_t *e = &table(f, t)[(gva >> (12 + 9 * l)) & 511];

		if (!(*e & 1)) {
			*e = f->next_table | 3;
			f->next_table += 4096;
		}
		t = *e & ~0xfffULL;
	}
	table(f, t)[(gva >> (12 + 9 * last)) & 511] =
	    gpa | 3 | (big ? 0x80 : 0);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct vm_boot_state bs;

	f->ctx = vm_create_mock(MEM);
	assert_non_null(f->ctx);
	assert_int_equal(vm_set_ncpus(f->ctx, 2), 0);
	f->vcpu = vm_vcpu_open(f->ctx, 0);
	assert_non_null(vm_vcpu_open(f->ctx, 1));
	f->next_table = PML4 + 4096;
	map(f, CODE_GVA, CODE_GPA, false);
	map(f, BIG_GVA, BIG_GPA, true);
	vm_reset_state(&bs);
	bs.regs[VM_REG_GUEST_CR0] = 0x80000011;
	bs.regs[VM_REG_GUEST_CR4] = 0x20;
	bs.regs[VM_REG_GUEST_EFER] = 0x500;
	bs.regs[VM_REG_GUEST_CR3] = PML4;
	bs.regs[VM_REG_GUEST_RAX] = 0x1122334455667788ULL;
	bs.regs[VM_REG_GUEST_R15] = 0xf15;
	bs.regs[VM_REG_GUEST_RIP] = CODE_GVA;
	bs.regs[VM_REG_GUEST_RFLAGS] = 0x246;
	bs.regs[VM_REG_GUEST_CS] = 0x8;
	bs.regs[VM_REG_GUEST_GS] = 0x2b;
	assert_int_equal(vm_apply_state(f->vcpu, &bs), 0);
	f->g = gdb_create(f->ctx, 2, false, true);
	assert_non_null(f->g);
	gdb_set_output(f->g, collect, f);
	gdb_attach(f->g);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	gdb_free(f->g);
	vm_close(f->ctx);
	free(f);
	return 0;
}

static void
feed(struct fx *f, const char *s)
{
	f->n = 0;
	f->out[0] = '\0';
	gdb_input(f->g, (const uint8_t *)s, strlen(s));
}

/* Send one well-formed packet; the stub's answer (ack and reply). */
static const char *
cmd(struct fx *f, const char *data)
{
	char buf[8192];
	uint8_t sum = 0;

	for (const char *p = data; *p; p++)
		sum += (uint8_t)*p;
	snprintf(buf, sizeof(buf), "$%s#%02x", data, sum);
	feed(f, buf);
	return f->out;
}

/* "+$DATA#cs" -> DATA, checking the reply's checksum on the way. */
static const char *
body(const char *reply)
{
	static char d[16384];
	const char *hash = strrchr(reply, '#');
	uint8_t sum = 0;
	unsigned cs;

	if (reply[0] == '+')
		reply++;
	if (reply[0] != '$')
		fail_msg("not a packet: '%s'", reply);
	assert_non_null(hash);
	memcpy(d, reply + 1, hash - reply - 1);
	d[hash - reply - 1] = '\0';
	for (const char *p = d; *p; p++)
		sum += (uint8_t)*p;
	assert_int_equal(sscanf(hash + 1, "%2x", &cs), 1);
	assert_int_equal(cs, sum);
	return d;
}

static void
test_framing(void **state)
{
	struct fx *f = *state;

	assert_string_equal(body(cmd(f, "qSupported:multiprocess+;swbreak+")),
			    "PacketSize=fc0;swbreak+;hwbreak+");
	/* A bad checksum is refused with '-' and nothing else. */
	feed(f, "$qAttached#00");
	assert_string_equal(f->out, "-");
	/* '-' from the client: the last reply again. */
	assert_string_equal(body(cmd(f, "qAttached")), "1");
	feed(f, "-");
	assert_string_equal(f->out, "$1#31");
	assert_string_equal(body(f->out), "1");
	/* Noise and '+' between packets are ignored. */
	feed(f, "+++garbage");
	assert_string_equal(f->out, "");
	/* A packet split over several reads. */
	feed(f, "$qfThrea");
	assert_string_equal(f->out, "");
	feed(f, "dInfo#bb");
	if (f->out[0] == '-')
		fail_msg("qfThreadInfo checksum: %s", f->out);
	assert_string_equal(body(f->out), "m1,2");
	assert_string_equal(body(cmd(f, "qsThreadInfo")), "l");
	assert_string_equal(body(cmd(f, "?")), "T05thread:1;");
}

static void
test_malformed(void **state)
{
	struct fx *f = *state;
	char *big = malloc(6000);

	assert_string_equal(body(cmd(f, "vMustReplyEmpty")), "");
	assert_string_equal(body(cmd(f, "X1000,4:abcd")), "");
	assert_string_equal(body(cmd(f, "Z2,1000,1")), ""); /* watchpoint */
	assert_string_equal(body(cmd(f, "mzz,4")), "E01");
	assert_string_equal(body(cmd(f, "m1000")), "E01");
	assert_string_equal(body(cmd(f, "m11111111111111111,4")), "E01");
	assert_string_equal(body(cmd(f, "M1000,2:zz00")), "E01");
	assert_string_equal(body(cmd(f, "M1000,2:00")), "E01");
	assert_string_equal(body(cmd(f, "Hg99")), "E01");
	assert_string_equal(body(cmd(f, "Hx1")), "E01");
	assert_string_equal(body(cmd(f, "T3")), "E01");
	assert_string_equal(body(cmd(f, "T2")), "OK");
	assert_string_equal(body(cmd(f, "vCont;x")), "E01");
	assert_string_equal(body(cmd(f, "")), "");
	/* Longer than any packet the stub takes: an error, not a crash. */
	memset(big, 'm', 5999);
	big[5999] = '\0';
	assert_string_equal(body(cmd(f, big)), "E01");
	free(big);
	/* A '$' inside a packet starts a new one. */
	feed(f, "$qAtt$qAttached#8f");
	assert_string_equal(body(f->out), "1");
	/* And the stub still answers. */
	assert_string_equal(body(cmd(f, "qC")), "QC1");
}

static void
test_registers(void **state)
{
	struct fx *f = *state;
	const char *r = body(cmd(f, "g"));

	/* 17 8-byte registers, then 7 4-byte ones, all little-endian. */
	assert_int_equal(strlen(r), 17 * 16 + 7 * 8);
	assert_memory_equal(r, "8877665544332211", 16);		  /* rax */
	assert_memory_equal(r + 15 * 16, "150f000000000000", 16); /* r15 */
	assert_memory_equal(r + 16 * 16, "0010000000000000", 8);  /* rip */
	assert_memory_equal(r + 16 * 16 + 8, "ff7f0000", 8);
	assert_memory_equal(r + 17 * 16, "46020000", 8);      /* eflags */
	assert_memory_equal(r + 17 * 16 + 8, "08000000", 8);  /* cs */
	assert_memory_equal(r + 17 * 16 + 48, "2b000000", 8); /* gs */
	/* vCPU 1 is in its reset state: rip 0xfff0. */
	assert_string_equal(body(cmd(f, "Hg2")), "OK");
	r = body(cmd(f, "g"));
	assert_memory_equal(r + 16 * 16, "f0ff000000000000", 16);
}

static void
test_memory(void **state)
{
	struct fx *f = *state;
	uint8_t *p = vm_map_gpa(f->ctx, CODE_GPA, 4);
	uint8_t *q = vm_map_gpa(f->ctx, BIG_GPA + 0x1234, 2);
	char m[64];

	memcpy(p, "\x90\x0f\x0b\xf4", 4);
	snprintf(m, sizeof(m), "m%llx,4", (unsigned long long)CODE_GVA);
	assert_string_equal(body(cmd(f, m)), "900f0bf4");
	q[0] = 0xab;
	q[1] = 0xcd;
	snprintf(m, sizeof(m), "m%llx,2", (unsigned long long)BIG_GVA + 0x1234);
	assert_string_equal(body(cmd(f, m)), "abcd");
	/* The page after CODE_GVA is not mapped: a short read, then E14. */
	snprintf(m, sizeof(m), "m%llx,8", (unsigned long long)CODE_GVA + 0xffc);
	assert_string_equal(body(cmd(f, m)), "00000000");
	snprintf(m, sizeof(m), "m%llx,1",
		 (unsigned long long)CODE_GVA + 0x1000);
	assert_string_equal(body(cmd(f, m)), "E14");
	/* Not canonical. */
	assert_string_equal(body(cmd(f, "m800000000000,1")), "E14");
	snprintf(m, sizeof(m), "M%llx,2:c3c3", (unsigned long long)CODE_GVA);
	assert_string_equal(body(cmd(f, m)), "OK");
	assert_int_equal(p[0], 0xc3);
	assert_int_equal(p[1], 0xc3);
	/* A huge length is cut to what fits a packet. */
	snprintf(m, sizeof(m), "m%llx,100000", (unsigned long long)BIG_GVA);
	assert_true(strlen(body(cmd(f, m))) < 4096);
}

static void
test_breakpoint(void **state)
{
	struct fx *f = *state;
	uint8_t *p = vm_map_gpa(f->ctx, CODE_GPA + 3, 1);
	struct vm_exit x = {.code = VM_EXIT_DEBUG};
	struct vm_debug d;
	char z[64];

	*p = 0x55;
	snprintf(z, sizeof(z), "Z0,%llx,1", (unsigned long long)CODE_GVA + 3);
	assert_string_equal(body(cmd(f, z)), "OK");
	assert_int_equal(*p, 0xcc);
	assert_string_equal(body(cmd(f, z)), "OK"); /* twice is once */
	/* Continue: the vCPU runs with INT3 handed to us, no step. */
	assert_string_equal(cmd(f, "c"), "+");
	assert_false(gdb_vcpu_wait(f->g, f->vcpu));
	vm_mock_get_debug(f->vcpu, &d);
	assert_false(d.step);
	assert_true(d.sw_bp);
	assert_int_equal(d.nhw, 0);
	/* It hits the breakpoint: a stop reply that says swbreak. */
	f->n = 0;
	gdb_vcpu_debug(f->g, f->vcpu, &x);
	gdb_check_stop(f->g);
	assert_string_equal(body(f->out), "T05swbreak:;thread:1;");
	z[0] = 'z';
	assert_string_equal(body(cmd(f, z)), "OK");
	assert_int_equal(*p, 0x55);
	assert_string_equal(body(cmd(f, z)), "E01"); /* not there */
	/* Unmapped: refused, nothing written. */
	assert_string_equal(body(cmd(f, "Z0,1000000,1")), "E0e");
}

static void
test_step(void **state)
{
	struct fx *f = *state;
	struct vcpu *v1 = vm_vcpu_get(f->ctx, 1);
	struct vm_exit x = {.code = VM_EXIT_DEBUG, .u.debug.step = true};
	struct vm_debug d;

	assert_string_equal(body(cmd(f, "vCont?")), "vCont;c;C;s;S");
	/* Step thread 2 (vCPU 1): only it may run, one instruction. */
	assert_string_equal(cmd(f, "vCont;s:2;c"), "+");
	assert_false(gdb_vcpu_wait(f->g, v1));
	vm_mock_get_debug(v1, &d);
	assert_true(d.step);
	assert_false(d.sw_bp);
	f->n = 0;
	gdb_vcpu_debug(f->g, v1, &x);
	gdb_check_stop(f->g);
	assert_string_equal(body(f->out), "T05thread:2;");
	/* A plain 's' steps the thread that stopped. */
	assert_string_equal(cmd(f, "s"), "+");
	assert_false(gdb_vcpu_wait(f->g, v1));
	/* Ctrl-C while it runs: SIGINT. */
	feed(f, "\x03");
	assert_string_equal(body(f->out), "T02thread:2;");
	/* Detach: the vCPUs run again without debug flags. */
	assert_string_equal(body(cmd(f, "D")), "OK");
	assert_false(gdb_vcpu_wait(f->g, v1));
	/* A stop on its way when the debugger left: the vCPUs run on. */
	f->n = 0;
	gdb_vcpu_debug(f->g, v1, &x);
	gdb_check_stop(f->g);
	assert_int_equal(f->n, 0);
	assert_false(gdb_vcpu_wait(f->g, v1)); /* would block if stopped */
	vm_mock_get_debug(v1, &d);
	assert_false(d.step);
	assert_false(d.sw_bp);
	assert_int_equal(d.nhw, 0);
}

static void
test_hw_breakpoint(void **state)
{
	struct fx *f = *state;
	struct vm_exit x = {.code = VM_EXIT_DEBUG, .u.debug.hw = true};
	struct vm_debug d;

	for (int i = 0; i < 4; i++) {
		char z[64];

		snprintf(z, sizeof(z), "Z1,%x,1", 0x1000 + i);
		assert_string_equal(body(cmd(f, z)), "OK");
	}
	assert_string_equal(body(cmd(f, "Z1,2000,1")), "E0e"); /* DR0-DR3 */
	assert_string_equal(body(cmd(f, "z1,1001,1")), "OK");
	assert_string_equal(body(cmd(f, "z1,1001,1")), "E0e");
	assert_string_equal(cmd(f, "c"), "+");
	assert_false(gdb_vcpu_wait(f->g, f->vcpu));
	vm_mock_get_debug(f->vcpu, &d);
	assert_int_equal(d.nhw, 3);
	assert_false(d.sw_bp);
	f->n = 0;
	gdb_vcpu_debug(f->g, f->vcpu, &x);
	gdb_check_stop(f->g);
	assert_string_equal(body(f->out), "T05hwbreak:;thread:1;");
}

static void
kill_cb(void *arg)
{
	*(int *)arg += 1;
}

static void
test_kill(void **state)
{
	struct fx *f = *state;
	uint8_t *p = vm_map_gpa(f->ctx, CODE_GPA, 1);
	int killed = 0;
	char z[64];

	*p = 0x90;
	gdb_set_kill(f->g, kill_cb, &killed);
	snprintf(z, sizeof(z), "Z0,%llx,1", (unsigned long long)CODE_GVA);
	assert_string_equal(body(cmd(f, z)), "OK");
	assert_string_equal(cmd(f, "k"), "+");
	assert_int_equal(killed, 1);
	assert_int_equal(*p, 0x90); /* the breakpoint went with it */
}

static void
test_gla2gpa_modes(void **state)
{
	struct fx *f = *state;
	struct vm_boot_state bs;
	uint32_t *pd = vm_map_gpa(f->ctx, 0x20000, 4096);
	uint32_t *pt = vm_map_gpa(f->ctx, 0x21000, 4096);
	uint64_t gpa;

	(void)state;
	memset(&bs, 0, sizeof(bs));
	/* Real mode and protected mode without paging: linear is physical. */
	assert_int_equal(vm_gla2gpa(f->ctx, &bs, 0x1234, &gpa), 0);
	assert_int_equal(gpa, 0x1234);
	/* 32-bit paging: a 4 KiB page and a 4 MiB page (CR4.PSE). */
	bs.regs[VM_REG_GUEST_CR0] = 0x80000001;
	bs.regs[VM_REG_GUEST_CR3] = 0x20000;
	pd[0] = 0x21000 | 3;
	pt[5] = 0x7000 | 3;
	pd[2] = 0x00c00000 | 0x83;
	assert_int_equal(vm_gla2gpa(f->ctx, &bs, 0x5abc, &gpa), 0);
	assert_int_equal(gpa, 0x7abc);
	assert_int_equal(vm_gla2gpa(f->ctx, &bs, 0x800123, &gpa), -1);
	bs.regs[VM_REG_GUEST_CR4] = 0x10;
	assert_int_equal(vm_gla2gpa(f->ctx, &bs, 0x800123, &gpa), 0);
	assert_int_equal(gpa, 0xc00123);
	assert_int_equal(vm_gla2gpa(f->ctx, &bs, 0x6000, &gpa), -1);
	/* A table outside guest RAM fails, never reads past it. */
	bs.regs[VM_REG_GUEST_CR3] = 0xfffff000;
	assert_int_equal(vm_gla2gpa(f->ctx, &bs, 0x5abc, &gpa), -1);
}

static int
connect_to(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Up to len bytes within 5 s: what arrived, 0 at end of stream. */
static ssize_t
recv_some(int fd, char *buf, size_t len)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;

	assert_int_equal(poll(&p, 1, 5000), 1);
	n = recv(fd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

/* The socket side: one client served, a second one refused, D ends it. */
static void
test_socket(void **state)
{
	struct fx *f = *state;
	char err[256], port[16], buf[256];
	int a, b, p = 30000 + getpid() % 20000;
	ssize_t n;
	size_t got = 0;

	snprintf(port, sizeof(port), "%d", p);
	gdb_free(f->g);
	f->g = gdb_create(f->ctx, 2, false, true);
	assert_int_equal(gdb_listen(f->g, "127.0.0.1", port, err, sizeof(err)),
			 0);
	assert_int_equal(gdb_start(f->g), 0);
	a = connect_to(p);
	assert_int_equal(send(a, "$?#3f", 5, 0), 5);
	while (got < 2 || !strchr(buf, '#') || strlen(strchr(buf, '#')) < 3) {
		n = recv_some(a, buf + got, sizeof(buf) - got);
		assert_true(n > 0);
		got += n;
	}
	assert_string_equal(body(buf), "T05thread:1;");
	b = connect_to(p);
	assert_int_equal(recv_some(b, buf, sizeof(buf)), 0); /* refused */
	close(b);
	assert_int_equal(send(a, "$D#44", 5, 0), 5);
	got = 0;
	do {
		n = recv_some(a, buf + got, sizeof(buf) - got);
		got += n > 0 ? n : 0;
	} while (n > 0);
	assert_string_equal(body(buf), "OK");
	close(a);
	/* A new client is served after the first left. */
	a = connect_to(p);
	assert_int_equal(send(a, "$qAttached#8f", 13, 0), 13);
	got = 0;
	while (got < 6) {
		n = recv_some(a, buf + got, sizeof(buf) - got);
		assert_true(n > 0);
		got += n;
	}
	assert_string_equal(body(buf), "1");
	close(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_registers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_memory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_breakpoint, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_step, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hw_breakpoint, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_kill, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_socket, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gla2gpa_modes, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
