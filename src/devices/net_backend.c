/*
 * Network backends: choosing one by name and calling it (net_backend.h),
 * and the MAC address a NIC gets.
 */
#include <errno.h>
#include <md5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_backend.h"

SET_DECLARE(net_backend_set);

/* "tap0" matches prefix "tap"; "slirp" matches "slirp" exactly. */
static const struct net_backend_ops *
netbe_find(const char *name)
{
	const void **p;

	SET_FOREACH(p, net_backend_set)
	{
		const struct net_backend_ops *ops = *p;
		size_t n = strlen(ops->prefix);

		if (strncmp(name, ops->prefix, n) == 0)
			return ops;
	}
	return NULL;
}

/* The registered backends, for the error that names none of them. */
static void
netbe_list(char *buf, size_t len)
{
	const void **p;
	size_t used = 0;

	buf[0] = '\0';
	SET_FOREACH(p, net_backend_set)
	{
		const struct net_backend_ops *ops = *p;
		int n = snprintf(buf + used, len - used, "%s%s",
				 used ? ", " : "", ops->prefix);

		if (n < 0 || (size_t)n >= len - used)
			break;
		used += n;
	}
}

/*
 * No backend: bhyve(8) lets a NIC be connected to nothing (-s 2,virtio-net).
 * The guest sees a NIC with its link up; what it sends goes nowhere and
 * nothing arrives. Not in the linker set: it has no name to give.
 */
static int
null_init(struct net_backend *be, struct vmctx *ctx, const char *name,
	  struct config *nic, char *err, size_t errlen)
{
	(void)be, (void)ctx, (void)name, (void)nic, (void)err, (void)errlen;
	return 0;
}

static void
null_cleanup(struct net_backend *be)
{
	(void)be;
}

static ssize_t
null_send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	ssize_t n = 0;

	(void)be;
	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

static ssize_t
null_peek(struct net_backend *be)
{
	(void)be;
	return 0;
}

static ssize_t
null_recv(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	(void)be, (void)iov, (void)iovcnt;
	return 0;
}

static void
null_rx(struct net_backend *be)
{
	(void)be;
}

static const struct net_backend_ops null_ops = {
    .prefix = "",
    .init = null_init,
    .cleanup = null_cleanup,
    .send = null_send,
    .peek_recvlen = null_peek,
    .recv = null_recv,
    .recv_discard = null_peek,
    .rx_disable = null_rx,
    .rx_enable = null_rx,
};

struct net_backend *
netbe_open(struct vmctx *ctx, struct config *nic, netbe_rx_fn rx_cb,
	   void *rx_arg, char *err, size_t errlen)
{
	const char *name = config_get(nic, "backend");
	const struct net_backend_ops *ops;
	struct net_backend *be;
	char known[128];

	if (!name || !*name) {
		ops = &null_ops;
		name = "none";
		goto open;
	}
	if (strlen(name) >= sizeof(be->name)) {
		snprintf(err, errlen,
			 "network backend name '%.40s...' is too "
			 "long",
			 name);
		return NULL;
	}
	ops = netbe_find(name);
	if (!ops) {
		netbe_list(known, sizeof(known));
		snprintf(err, errlen,
			 "unknown network backend '%s' (known: %s)", name,
			 known);
		return NULL;
	}
open:
	be = calloc(1, sizeof(*be) + ops->priv_size);
	if (!be) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	be->ops = ops;
	be->ctx = ctx;
	be->rx_cb = rx_cb;
	be->rx_arg = rx_arg;
	snprintf(be->name, sizeof(be->name), "%s", name);
	if (ops->init(be, ctx, name, nic, err, errlen) < 0) {
		free(be);
		return NULL;
	}
	return be;
}

bool
netbe_is_option(const struct config *nic, const char *key)
{
	const char *name = config_get(nic, "backend");
	const struct net_backend_ops *ops = name ? netbe_find(name) : NULL;

	if (!ops || !ops->keys)
		return false;
	for (const char *const *k = ops->keys; *k; k++)
		if (!strcmp(*k, key))
			return true;
	return false;
}

void
netbe_close(struct net_backend *be)
{
	if (!be)
		return;
	be->ops->cleanup(be);
	free(be);
}

ssize_t
netbe_send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	return be->ops->send(be, iov, iovcnt);
}

ssize_t
netbe_peek_recvlen(struct net_backend *be)
{
	return be->ops->peek_recvlen(be);
}

ssize_t
netbe_recv(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	return be->ops->recv(be, iov, iovcnt);
}

ssize_t
netbe_rx_discard(struct net_backend *be)
{
	return be->ops->recv_discard(be);
}

void
netbe_rx_disable(struct net_backend *be)
{
	be->ops->rx_disable(be);
}

void
netbe_rx_enable(struct net_backend *be)
{
	be->ops->rx_enable(be);
}

uint64_t
netbe_get_cap(struct net_backend *be)
{
	return be->ops->get_cap ? be->ops->get_cap(be) : 0;
}

int
netbe_set_cap(struct net_backend *be, uint64_t features,
	      unsigned int vnet_hdr_len)
{
	int rc;

	if (!be->ops->set_cap) {
		if (features & NETBE_F_OFFLOADS || vnet_hdr_len) {
			errno = ENOTSUP;
			return -1;
		}
		return 0;
	}
	rc = be->ops->set_cap(be, features, vnet_hdr_len);
	if (rc == 0)
		be->vnet_hdr_len = vnet_hdr_len;
	return rc;
}

int
netbe_get_fd(struct net_backend *be)
{
	return be && be->ops->get_fd ? be->ops->get_fd(be) : -1;
}

size_t
netbe_get_vnet_hdr_len(struct net_backend *be)
{
	return be->vnet_hdr_len;
}

/* A hex digit's value, -1 for anything else. */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
net_parsemac(const char *s, uint8_t mac[ETHER_ADDR_LEN])
{
	uint8_t m[ETHER_ADDR_LEN];
	bool zero = true;

	/* Exactly xx:xx:xx:xx:xx:xx, two hex digits each (no 0x, signs). */
	if (strlen(s) != 3 * ETHER_ADDR_LEN - 1)
		return -1;
	for (int i = 0; i < ETHER_ADDR_LEN; i++) {
		int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);

		if (hi < 0 || lo < 0 ||
		    (i < ETHER_ADDR_LEN - 1 && s[3 * i + 2] != ':'))
			return -1;
		m[i] = (uint8_t)(hi << 4 | lo);
		zero = zero && m[i] == 0;
	}
	/* The group bit: a NIC's own address is unicast (IEEE 802 §8.2). */
	if (zero || (m[0] & 1))
		return -1;
	memcpy(mac, m, ETHER_ADDR_LEN);
	return 0;
}

int
net_nic_mac(struct config *nic, const char *vmname, int slot, int func,
	    uint8_t mac[ETHER_ADDR_LEN], char *err, size_t errlen)
{
	const char *given = config_get(nic, "mac");
	uint8_t digest[MD5_DIGEST_LENGTH];
	char seed[128];
	MD5_CTX md5;

	if (given) {
		if (net_parsemac(given, mac) == 0)
			return 0;
		snprintf(err, errlen,
			 "bad mac '%s': want six hex bytes as "
			 "xx:xx:xx:xx:xx:xx, unicast and not all zero",
			 given);
		return -1;
	}
	/*
	 * bhyve's rule (net_utils.c), so that a VM keeps its MAC when it
	 * moves between FreeBSD and here: MD5 of "slot-func-name", the
	 * first three digest bytes after NetApp's OUI 00:a0:98.
	 */
	snprintf(seed, sizeof(seed), "%d-%d-%s", slot, func,
		 vmname ? vmname : "");
	MD5Init(&md5);
	MD5Update(&md5, (const uint8_t *)seed, strlen(seed));
	MD5Final(digest, &md5);
	mac[0] = 0x00;
	mac[1] = 0xa0;
	mac[2] = 0x98;
	mac[3] = digest[0];
	mac[4] = digest[1];
	mac[5] = digest[2];
	return 0;
}
