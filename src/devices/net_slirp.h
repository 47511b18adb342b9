/*
 * The slirp backend's port forwarding rules, parsed apart from the backend
 * so that the unit tests can feed it every malformed form.
 *
 * A NIC's "hostfwd" key holds one or more rules separated by ';' (FreeBSD
 * bhyve's form), each as QEMU's -netdev user,hostfwd= spells it:
 *
 *   [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT
 *
 * An empty protocol is tcp, an empty HOSTADDR is every address (0.0.0.0),
 * an empty GUESTADDR is 10.0.2.15, the address the guest's DHCP gets.
 */
#ifndef NET_SLIRP_H
#define NET_SLIRP_H

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>

/* The guest's network (QEMU's defaults, as FreeBSD's bhyve). */
#define SLIRP_NET 0x0a000200u /* 10.0.2.0/24 */
#define SLIRP_MASK 0xffffff00u
#define SLIRP_HOST 0x0a000202u	/* 10.0.2.2: the host, as the guest sees it */
#define SLIRP_DNS 0x0a000203u	/* 10.0.2.3 */
#define SLIRP_GUEST 0x0a00020fu /* 10.0.2.15: the first DHCP address */

struct slirp_hostfwd {
	bool udp;
	struct sockaddr_in host, guest;
};

/* One rule; -1 with one line in err naming the rule and its bad field. */
int slirp_hostfwd_parse(const char *rule, struct slirp_hostfwd *fwd, char *err,
			size_t errlen);

#endif
