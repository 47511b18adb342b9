/*
 * The slirp backend without a VM: its hostfwd parser fed every malformed
 * field, and the backend opened on a mock machine, with frames built here
 * standing in for a guest (DHCP, ARP) and a host connection through a
 * hostfwd rule coming out as a SYN towards 10.0.2.15.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "machine.h"
#include "mevent.h"
#include "net_backend.h"
#include "net_slirp.h"
#include "pci_emul.h"
#include "vmm.h"

static char err[256];
static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

/* ---- the parser ---- */

static void
parse_ok(const char *rule, bool udp, const char *haddr, int hport,
	 const char *gaddr, int gport)
{
	struct slirp_hostfwd f;
	char a[INET_ADDRSTRLEN];

	assert_int_equal(slirp_hostfwd_parse(rule, &f, err, sizeof(err)), 0);
	assert_int_equal(f.udp, udp);
	assert_string_equal(inet_ntop(AF_INET, &f.host.sin_addr, a, sizeof(a)),
			    haddr);
	assert_int_equal(ntohs(f.host.sin_port), hport);
	assert_string_equal(inet_ntop(AF_INET, &f.guest.sin_addr, a, sizeof(a)),
			    gaddr);
	assert_int_equal(ntohs(f.guest.sin_port), gport);
}

/* A bad rule: -1, and the one line names the rule and what is wrong. */
static void
parse_bad(const char *rule, const char *why)
{
	struct slirp_hostfwd f;

	err[0] = '\0';
	assert_int_equal(slirp_hostfwd_parse(rule, &f, err, sizeof(err)), -1);
	if (!strstr(err, why) || !strchr(err, '\'') || strchr(err, '\n'))
		fail_msg("rule '%s': error '%s' lacks '%s'", rule, err, why);
}

static void
test_parse_good(void **state)
{
	(void)state;
	parse_ok("tcp:127.0.0.1:2222-:22", false, "127.0.0.1", 2222,
		 "10.0.2.15", 22);
	parse_ok("udp::5353-10.0.2.20:53", true, "0.0.0.0", 5353, "10.0.2.20",
		 53);
	/* QEMU's forms: the protocol may be left out (tcp). */
	parse_ok("::8080-:80", false, "0.0.0.0", 8080, "10.0.2.15", 80);
	parse_ok("tcp:0.0.0.0:65535-10.0.2.254:1", false, "0.0.0.0", 65535,
		 "10.0.2.254", 1);
}

static void
test_parse_bad(void **state)
{
	(void)state;
	parse_bad("", "want tcp|udp:");
	parse_bad("tcp", "want tcp|udp:");
	parse_bad("icmp::2222-:22", "bad protocol 'icmp'");
	parse_bad("TCP::2222-:22", "bad protocol 'TCP'");
	parse_bad("tcp::2222", "no '-' between");
	parse_bad("tcp::2222:22", "no '-' between");
	parse_bad("tcp:2222-:22", "host side '2222' wants [ADDR]:PORT");
	parse_bad("tcp:1.2.3:2222-:22", "bad host address '1.2.3'");
	parse_bad("tcp:localhost:2222-:22", "bad host address 'localhost'");
	parse_bad("tcp:::1:2222-:22", "bad host port");
	parse_bad("tcp::-:22", "bad host port ''");
	parse_bad("tcp::0-:22", "bad host port '0'");
	parse_bad("tcp::65536-:22", "bad host port '65536'");
	parse_bad("tcp::22a-:22", "bad host port '22a'");
	parse_bad("tcp::+22-:22", "bad host port '+22'");
	parse_bad("tcp::0000022-:22", "bad host port");
	parse_bad("tcp::2222-22", "guest side '22' wants [ADDR]:PORT");
	parse_bad("tcp::2222-10.0.2:22", "bad guest address '10.0.2'");
	parse_bad("tcp::2222-:", "bad guest port ''");
	parse_bad("tcp::2222-:0", "bad guest port '0'");
	parse_bad("tcp::2222-:x", "bad guest port 'x'");
	parse_bad("tcp::2222-:99999", "bad guest port '99999'");
	parse_bad("tcp::2222-192.168.1.5:22", "guest address 192.168.1.5");
	parse_bad("tcp::2222-10.0.2.2:22", "guest address 10.0.2.2");
	parse_bad("tcp::2222-10.0.2.3:22", "guest address 10.0.2.3");
	parse_bad("tcp::2222-10.0.2.255:22", "guest address 10.0.2.255");
	parse_bad("tcp::2222-10.0.2.0:22", "guest address 10.0.2.0");
	parse_bad("tcp::2222-:22-:23", "bad guest port '22-:23'");
	parse_bad("tcp::2222-:22aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  "too long");
}

/* -s 2,virtio-net,slirp,hostfwd=A,hostfwd=B keeps both, as A;B. */
static void
test_repeated_key(void **state)
{
	struct config *c = config_create();

	(void)state;
	assert_int_equal(pci_parse_legacy_config(c,
						 "hostfwd=tcp::1-:1,mac=02:00:"
						 "00:00:00:01,hostfwd=udp::2-:"
						 "2",
						 err, sizeof(err)),
			 0);
	assert_string_equal(config_get(c, "hostfwd"), "tcp::1-:1;udp::2-:2");
	/* Other keys still take the last value. */
	assert_int_equal(pci_parse_legacy_config(c, "mac=02:00:00:00:00:02",
						 err, sizeof(err)),
			 0);
	assert_string_equal(config_get(c, "mac"), "02:00:00:00:00:02");
	config_free(c);
}

/* ---- the backend on a mock machine ---- */

struct fx {
	struct config *cfg, *nic;
	struct vmctx *ctx;
	struct machine *m;
	struct net_backend *be;
	pthread_t loop;
	bool looping;
	int rx_calls;
	pthread_mutex_t lock;
};

static void
rx_cb(int fd, void *arg)
{
	struct fx *f = arg;

	(void)fd;
	pthread_mutex_lock(&f->lock);
	f->rx_calls++;
	pthread_mutex_unlock(&f->lock);
}

static struct fx *
fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	pthread_mutex_init(&f->lock, NULL);
	f->cfg = config_create();
	f->nic = config_node_make(f->cfg, "pci.0.2.0");
	assert_non_null(f->nic);
	assert_int_equal(
	    config_set(f->nic, "backend", "slirp", err, sizeof(err)), 0);
	f->ctx = vm_create_mock(1 << 20);
	assert_non_null(f->ctx);
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	f->m->mev = mevent_create(); /* bhyverun makes it; the machine frees */
	assert_non_null(f->m->mev);
	return f;
}

static int
fx_open(struct fx *f, const char *hostfwd)
{
	if (hostfwd)
		assert_int_equal(
		    config_set(f->nic, "hostfwd", hostfwd, err, sizeof(err)),
		    0);
	err[0] = '\0';
	f->be = netbe_open(f->ctx, f->nic, rx_cb, f, err, sizeof(err));
	return f->be ? 0 : -1;
}

static void *
loop_main(void *arg)
{
	struct fx *f = arg;

	mevent_dispatch(f->m->mev);
	return NULL;
}

static void
fx_loop(struct fx *f)
{
	assert_int_equal(pthread_create(&f->loop, NULL, loop_main, f), 0);
	f->looping = true;
}

static void
fx_free(struct fx *f)
{
	if (f->looping) {
		mevent_stop(f->m->mev);
		pthread_join(f->loop, NULL);
	}
	netbe_close(f->be);
	machine_free(f->m);
	vm_close(f->ctx);
	config_free(f->cfg);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static void
send_frame(struct fx *f, const uint8_t *frame, size_t len)
{
	/* Two pieces, as a NIC gathering a descriptor chain would give. */
	struct iovec iov[2] = {{(void *)frame, 14},
			       {(void *)(frame + 14), len - 14}};

	assert_int_equal(netbe_send(f->be, iov, 2), (ssize_t)len);
}

/* The next frame for the guest, waiting up to 5 s for the event loop. */
static ssize_t
recv_frame(struct fx *f, uint8_t *buf, size_t size)
{
	struct iovec iov = {buf, size};

	for (int i = 0; i < 500; i++) {
		ssize_t want = netbe_peek_recvlen(f->be);

		if (want > 0) {
			ssize_t n = netbe_recv(f->be, &iov, 1);
			assert_int_equal(n, want);
			return n;
		}
		usleep(10000);
	}
	return 0;
}

static uint16_t
ip_csum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/*
 * A DHCPDISCOVER (RFC 2131 §4.1) as a client without an address sends it:
 * from 0.0.0.0:68 to 255.255.255.255:67, broadcast Ethernet. The BOOTP
 * part is its full 548 bytes (236 + 312 of options), as slirp wants.
 */
static size_t
build_discover(uint8_t *fr)
{
	uint8_t *ip = fr + 14, *udp = ip + 20, *bp = udp + 8;
	size_t bootp = 548, iplen = 20 + 8 + bootp;

	memset(fr, 0, 14 + iplen);
	memset(fr, 0xff, 6);
	memcpy(fr + 6, guest_mac, 6);
	put16(fr + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)iplen);
	ip[8] = 64;
	ip[9] = 17;
	memset(ip + 16, 0xff, 4);
	put16(ip + 10, ip_csum(ip, 20));
	put16(udp, 68);
	put16(udp + 2, 67);
	put16(udp + 4, (uint16_t)(8 + bootp));
	bp[0] = 1; /* BOOTREQUEST */
	bp[1] = 1; /* Ethernet */
	bp[2] = 6;
	memcpy(bp + 4, "\x12\x34\x56\x78", 4); /* xid */
	memcpy(bp + 28, guest_mac, 6);
	memcpy(bp + 236, "\x63\x82\x53\x63", 4); /* the magic cookie */
	memcpy(bp + 240, "\x35\x01\x01\xff", 4); /* DHCPDISCOVER, end */
	return 14 + iplen;
}

/* An option's value in a BOOTP reply's options, or NULL. */
static const uint8_t *
dhcp_option(const uint8_t *bp, size_t len, uint8_t code)
{
	for (size_t i = 240; i + 1 < len && bp[i] != 0xff;) {
		if (bp[i] == 0) {
			i++;
			continue;
		}
		if (bp[i] == code)
			return bp + i + 2;
		i += 2 + bp[i + 1];
	}
	return NULL;
}

static void
dhcp_discover(struct fx *f)
{
	uint8_t fr[1600], in[2048];
	size_t len = build_discover(fr);
	ssize_t n;
	const uint8_t *ip = in + 14, *bp = in + 14 + 20 + 8, *opt;

	send_frame(f, fr, len);
	n = recv_frame(f, in, sizeof(in));
	assert_true(n > 14 + 20 + 8 + 240);
	/* To the client's MAC or broadcast: it has no address yet. */
	if (memcmp(in, guest_mac, 6) != 0)
		assert_memory_equal(in, "\xff\xff\xff\xff\xff\xff", 6);
	assert_int_equal(get16(in + 12), 0x0800);
	assert_int_equal(ip[9], 17);
	assert_int_equal(get16(ip + 20), 67);
	assert_int_equal(get16(ip + 22), 68);
	assert_int_equal(bp[0], 2); /* BOOTREPLY */
	assert_memory_equal(bp + 4, "\x12\x34\x56\x78", 4);
	assert_memory_equal(bp + 16, "\x0a\x00\x02\x0f", 4); /* 10.0.2.15 */
	opt = dhcp_option(bp, (size_t)n - 42, 53);
	assert_non_null(opt);
	assert_int_equal(opt[0], 2);		  /* DHCPOFFER */
	opt = dhcp_option(bp, (size_t)n - 42, 3); /* router */
	assert_non_null(opt);
	assert_memory_equal(opt, "\x0a\x00\x02\x02", 4);
	opt = dhcp_option(bp, (size_t)n - 42, 6); /* DNS */
	assert_non_null(opt);
	assert_memory_equal(opt, "\x0a\x00\x02\x03", 4);
}

static void
test_dhcp(void **state)
{
	struct fx *f = fx_new();

	(void)state;
	assert_int_equal(fx_open(f, NULL), 0);
	assert_int_equal(netbe_get_cap(f->be), 0);
	assert_int_equal(netbe_peek_recvlen(f->be), 0);
	dhcp_discover(f);
	assert_int_equal(netbe_peek_recvlen(f->be), 0);
	fx_free(f);
}

static void
test_arp(void **state)
{
	struct fx *f = fx_new();
	uint8_t fr[60] = {0}, in[2048], *a = fr + 14;
	const uint8_t *r = in + 14;
	ssize_t n;

	(void)state;
	assert_int_equal(fx_open(f, NULL), 0);
	fx_loop(f);
	memset(fr, 0xff, 6);
	memcpy(fr + 6, guest_mac, 6);
	put16(fr + 12, 0x0806);
	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, 1); /* request */
	memcpy(a + 8, guest_mac, 6);
	memcpy(a + 14, "\x0a\x00\x02\x0f", 4);
	memcpy(a + 24, "\x0a\x00\x02\x02", 4); /* who has 10.0.2.2? */
	send_frame(f, fr, sizeof(fr));
	/* The event loop is told and calls the NIC's rx callback. */
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&f->lock);
		n = f->rx_calls;
		pthread_mutex_unlock(&f->lock);
		if (n)
			break;
		usleep(10000);
	}
	assert_int_equal(n, 1);
	n = recv_frame(f, in, sizeof(in));
	assert_true(n >= 42);
	assert_memory_equal(in, guest_mac, 6);
	assert_int_equal(get16(in + 12), 0x0806);
	assert_int_equal(get16(r + 6), 2); /* reply */
	assert_memory_equal(r + 14, "\x0a\x00\x02\x02", 4);
	assert_memory_equal(r + 18, guest_mac, 6);
	assert_memory_equal(r + 24, "\x0a\x00\x02\x0f", 4);
	fx_free(f);
}

/* A port nothing listens on now (the kernel's pick, then let go). */
static int
free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);
	int s = socket(AF_INET, SOCK_STREAM, 0), port;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &sl), 0);
	port = ntohs(sin.sin_port);
	close(s);
	return port;
}

static void
test_hostfwd_syn(void **state)
{
	struct fx *f = fx_new();
	char rule[128];
	struct sockaddr_in sin = {.sin_family = AF_INET};
	uint8_t in[2048];
	const uint8_t *ip = in + 14, *tcp = in + 14 + 20;
	int port = free_port(), s;
	ssize_t n;

	(void)state;
	snprintf(rule, sizeof(rule), "tcp:127.0.0.1:%d-:8080;udp::%d-:53", port,
		 port);
	assert_int_equal(fx_open(f, rule), 0);
	/* The DHCP exchange tells slirp the guest's MAC for 10.0.2.15. */
	dhcp_discover(f);
	fx_loop(f);
	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	assert_true(connect(s, (struct sockaddr *)&sin, sizeof(sin)) == 0 ||
		    errno == EINPROGRESS);
	n = recv_frame(f, in, sizeof(in));
	assert_true(n >= 14 + 20 + 20);
	assert_memory_equal(in, guest_mac, 6);
	assert_int_equal(get16(in + 12), 0x0800);
	assert_int_equal(ip[9], 6);
	assert_memory_equal(ip + 16, "\x0a\x00\x02\x0f", 4);
	assert_int_equal(get16(tcp + 2), 8080);
	assert_int_equal(tcp[13] & 0x12, 0x02); /* SYN, no ACK */
	close(s);
	fx_free(f);
}

/* Bad rules and a port in use: one line naming the rule, nothing opened. */
static void
test_open_errors(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	char rule[64], want[160];
	int port = free_port(), s;
	struct fx *f;

	(void)state;
	f = fx_new();
	assert_int_equal(fx_open(f, "tcp::2222-:22;"), -1);
	assert_non_null(strstr(err, "an empty rule"));
	fx_free(f);

	f = fx_new();
	assert_int_equal(fx_open(f, "tcp::2222-:22;;udp::1-:1"), -1);
	assert_non_null(strstr(err, "an empty rule"));
	fx_free(f);

	f = fx_new();
	assert_int_equal(fx_open(f, "tcp::2222-:22;udp::x-:1"), -1);
	assert_non_null(strstr(err, "hostfwd 'udp::x-:1': bad host port"));
	fx_free(f);

	s = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s, 1), 0);
	f = fx_new();
	snprintf(rule, sizeof(rule), "tcp:127.0.0.1:%d-:22", port);
	assert_int_equal(fx_open(f, rule), -1);
	snprintf(want, sizeof(want),
		 "hostfwd '%s': cannot listen on 127.0.0.1:%d: ", rule, port);
	if (!strstr(err, want) || !strstr(err, strerror(EADDRINUSE)))
		fail_msg("'%s' is not '%s%s'", err, want, strerror(EADDRINUSE));
	assert_null(strchr(err, '\n'));
	fx_free(f);
	close(s);

	/* "slirp" only: slirp0 would match the prefix. */
	f = fx_new();
	assert_int_equal(
	    config_set(f->nic, "backend", "slirpx", err, sizeof(err)), 0);
	assert_int_equal(fx_open(f, NULL), -1);
	assert_non_null(strstr(err, "slirpx"));
	fx_free(f);
}

/* Frames wait while rx is off, and rx_enable hands them on. */
static void
test_rx_disable(void **state)
{
	struct fx *f = fx_new();
	uint8_t fr[1600];
	size_t len = build_discover(fr);
	int calls;

	(void)state;
	assert_int_equal(fx_open(f, NULL), 0);
	fx_loop(f);
	netbe_rx_disable(f->be);
	send_frame(f, fr, len);
	usleep(100000);
	pthread_mutex_lock(&f->lock);
	calls = f->rx_calls;
	pthread_mutex_unlock(&f->lock);
	assert_int_equal(calls, 0);
	assert_true(netbe_peek_recvlen(f->be) > 0);
	netbe_rx_enable(f->be);
	for (int i = 0; i < 200 && !calls; i++) {
		usleep(10000);
		pthread_mutex_lock(&f->lock);
		calls = f->rx_calls;
		pthread_mutex_unlock(&f->lock);
	}
	assert_int_equal(calls, 1);
	assert_true(netbe_rx_discard(f->be) > 0);
	assert_int_equal(netbe_peek_recvlen(f->be), 0);
	assert_int_equal(netbe_rx_discard(f->be), 0);
	fx_free(f);
}

static double
cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Idle, with a listener and after a DHCP exchange: the loop sleeps. */
static void
test_idle_sleeps(void **state)
{
	struct fx *f = fx_new();
	char rule[64];
	double t0;

	(void)state;
	snprintf(rule, sizeof(rule), "tcp:127.0.0.1:%d-:22", free_port());
	assert_int_equal(fx_open(f, rule), 0);
	dhcp_discover(f);
	fx_loop(f);
	usleep(200000);
	t0 = cpu_seconds();
	sleep(2);
	/* A busy loop would burn about 2 s here; slirp's timers a few ms. */
	if (cpu_seconds() - t0 > 0.1)
		fail_msg("an idle backend used %.3f s of CPU in 2 s",
			 cpu_seconds() - t0);
	fx_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_good),
	    cmocka_unit_test(test_parse_bad),
	    cmocka_unit_test(test_repeated_key),
	    cmocka_unit_test(test_dhcp),
	    cmocka_unit_test(test_arp),
	    cmocka_unit_test(test_hostfwd_syn),
	    cmocka_unit_test(test_open_errors),
	    cmocka_unit_test(test_rx_disable),
	    cmocka_unit_test(test_idle_sleeps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
