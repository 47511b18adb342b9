/*
 * The tap backend (net_backend.h): -s N,virtio-net,tap0 sends the guest's
 * frames to the host's tap0 and back, through /dev/net/tun.
 *
 * The interface is the user's to make (ip tuntap add tap0 mode tap user
 * $USER): Linux's TUNSETIFF would quietly create a missing one for root,
 * which is not what bhyve(8) users expect, so a name that is not there is
 * an error that says how to make it.
 *
 * The fd is opened with IFF_VNET_HDR when the kernel has it: every frame
 * then carries a virtio-net header (virtio 1.2 §5.1.6), which is how a NIC
 * that negotiated checksum and segmentation offloads passes them through
 * (set_cap: TUNSETVNETHDRSZ, TUNSETOFFLOAD). A NIC without offloads sees
 * bare frames: the header is added and taken off here.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mevent.h"
#include "net_backend.h"
#include "sandbox.h"

/* The kernel's own header (no num_buffers), the default on a fresh fd. */
#define TAP_VNET_HDR_LEN 10
/* A frame as the kernel may hand it over with GSO on: 64 KiB and headers. */
#define TAP_STAGE_LEN (NETBE_MAX_GSO_FRAME + 256)
#define TAP_MAXIOV 1024 /* writev's limit (IOV_MAX) */

#define TAP_CAPS                                                               \
	(NETBE_F_CSUM | NETBE_F_GUEST_CSUM | NETBE_F_GUEST_TSO4 |              \
	 NETBE_F_GUEST_TSO6 | NETBE_F_HOST_TSO4 | NETBE_F_HOST_TSO6)

struct tap_priv {
	int fd;
	bool vnet;		 /* the fd carries a vnet header */
	unsigned int fd_hdr_len; /* its length on the fd (TUNSETVNETHDRSZ) */
	struct mevent *mev;
	struct mevent_ev *ev; /* NULL while rx is off */
	/*
	 * A frame already read (staged) leaves the fd quiet: rx_enable wakes
	 * the loop through this eventfd instead, so the frame is not stuck.
	 */
	int kickfd;
	struct mevent_ev *kick_ev;
	uint8_t *stage; /* a frame read by peek_recvlen */
	size_t staged;	/* its bytes, fd header included; 0: none */
};

static struct tap_priv *
tap_priv(struct net_backend *be)
{
	return (struct tap_priv *)be->priv;
}

/* Header bytes on the fd that the NIC does not see. */
static size_t
tap_strip(struct net_backend *be)
{
	struct tap_priv *p = tap_priv(be);

	return p->vnet && be->vnet_hdr_len == 0 ? p->fd_hdr_len : 0;
}

static void
tap_rx_event(int fd, enum ev_type type, void *arg)
{
	struct net_backend *be = arg;

	(void)type;
	be->rx_cb(fd, be->rx_arg);
}

static void
tap_kick_event(int fd, enum ev_type type, void *arg)
{
	struct net_backend *be = arg;
	uint64_t n;

	(void)type;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	/* The NIC looks whether it still wants frames (under its lock). */
	be->rx_cb(tap_priv(be)->fd, be->rx_arg);
}

/* An interface name we may put in a path: what Linux allows, no '/'. */
static bool
tap_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= IFNAMSIZ || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return false;
	for (const char *c = name; *c; c++)
		if (*c == '/' || *c == ':' || *c <= ' ' || *c == 0x7f)
			return false;
	return true;
}

/* TUNSETIFF's failures, each with what to do about it. */
static void
tap_attach_error(const char *name, int e, char *err, size_t errlen)
{
	switch (e) {
	case EBUSY:
		snprintf(err, errlen,
			 "%s: busy: another process (another bhyve?) has it "
			 "open; stop it or use another tap",
			 name);
		break;
	case EPERM:
	case EACCES:
		snprintf(err, errlen,
			 "%s: permission denied: make it yours (ip tuntap del "
			 "%s mode tap && ip tuntap add %s mode tap user $USER) "
			 "or run bhyve as root",
			 name, name, name);
		break;
	case EINVAL:
		snprintf(err, errlen,
			 "%s: not a tap interface: use one made with ip tuntap "
			 "add %s mode tap user $USER",
			 name, name);
		break;
	default:
		snprintf(err, errlen, "%s: cannot attach: %s", name,
			 strerror(e));
	}
}

static int
tap_open(const char *name, bool *vnet, char *err, size_t errlen)
{
	struct ifreq ifr;
	int fd, e;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "%s: cannot open /dev/net/tun: %s%s",
			 name, strerror(e),
			 e == ENOENT ? " (modprobe tun)"
			 : e == EACCES || e == EPERM
			     ? " (run bhyve as root or give this user the "
			       "device)"
			     : "");
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	*vnet = true;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		e = errno;
		/* A kernel without vnet headers: bare frames, no offloads. */
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
		*vnet = false;
		if (e != EINVAL || ioctl(fd, TUNSETIFF, &ifr) < 0) {
			tap_attach_error(name, e == EINVAL ? errno : e, err,
					 errlen);
			close(fd);
			return -1;
		}
	}
	return fd;
}

static int
tap_init(struct net_backend *be, struct vmctx *ctx, const char *name,
	 struct config *nic, char *err, size_t errlen)
{
	struct tap_priv *p = tap_priv(be);
	char path[64];
	struct stat st;
	int hdr = TAP_VNET_HDR_LEN;

	(void)nic;
	p->fd = p->kickfd = -1;
	if (!tap_name_ok(name)) {
		snprintf(err, errlen,
			 "%.40s: not an interface name (at most %d characters, "
			 "no '/', ':' or spaces)",
			 name, IFNAMSIZ - 1);
		return -1;
	}
	snprintf(path, sizeof(path), "/sys/class/net/%s", name);
	if (stat(path, &st) < 0) {
		snprintf(
		    err, errlen,
		    "%s: no such interface: create it first: ip tuntap add "
		    "%s mode tap user $USER && ip link set %s up",
		    name, name, name);
		return -1;
	}
	p->mev = machine_of(ctx)->mev;
	if (!p->mev) {
		snprintf(err, errlen, "%s: no event loop to serve it", name);
		return -1;
	}
	p->stage = malloc(TAP_STAGE_LEN);
	if (!p->stage) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	p->fd = tap_open(name, &p->vnet, err, errlen);
	if (p->fd < 0)
		goto fail;
	if (p->vnet && ioctl(p->fd, TUNSETVNETHDRSZ, &hdr) < 0)
		p->vnet = false;
	/* The guest's feature choice sets offloads at run time. */
	sandbox_allow_ioctl(p->fd, TUNSETVNETHDRSZ);
	sandbox_allow_ioctl(p->fd, TUNSETOFFLOAD);
	p->fd_hdr_len = p->vnet ? TAP_VNET_HDR_LEN : 0;
	p->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->kickfd < 0) {
		snprintf(err, errlen, "%s: eventfd: %s", name, strerror(errno));
		goto fail;
	}
	p->kick_ev =
	    mevent_add(p->mev, p->kickfd, EVF_READ, tap_kick_event, be);
	p->ev = mevent_add(p->mev, p->fd, EVF_READ, tap_rx_event, be);
	if (!p->ev || !p->kick_ev) {
		snprintf(err, errlen, "%s: cannot add it to the event loop",
			 name);
		goto fail;
	}
	return 0;
fail:
	if (p->ev)
		mevent_delete(p->ev);
	if (p->kick_ev)
		mevent_delete(p->kick_ev);
	if (p->kickfd >= 0)
		close(p->kickfd);
	if (p->fd >= 0)
		close(p->fd);
	free(p->stage);
	return -1;
}

static void
tap_cleanup(struct net_backend *be)
{
	struct tap_priv *p = tap_priv(be);

	if (p->ev)
		mevent_delete(p->ev);
	mevent_delete(p->kick_ev);
	close(p->kickfd);
	close(p->fd);
	free(p->stage);
}

static ssize_t
tap_send(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	size_t strip = tap_strip(be);
	uint8_t zero[16] = {0}; /* a header that asks for nothing */
	struct iovec v[TAP_MAXIOV];
	ssize_t n;

	if (strip == 0)
		return writev(tap_priv(be)->fd, iov, iovcnt);
	if (iovcnt < 0 || iovcnt >= TAP_MAXIOV) {
		errno = EMSGSIZE;
		return -1;
	}
	v[0].iov_base = zero;
	v[0].iov_len = strip;
	memcpy(v + 1, iov, sizeof(*iov) * (size_t)iovcnt);
	n = writev(tap_priv(be)->fd, v, iovcnt + 1);
	return n < 0 ? n : n - (ssize_t)strip;
}

/* Read the next frame into the stage: its length, 0 when none, -1. */
static ssize_t
tap_stage(struct tap_priv *p)
{
	ssize_t n;

	if (p->staged)
		return (ssize_t)p->staged;
	n = read(p->fd, p->stage, TAP_STAGE_LEN);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	p->staged = (size_t)n;
	return n;
}

static ssize_t
tap_peek_recvlen(struct net_backend *be)
{
	size_t strip = tap_strip(be);
	ssize_t n = tap_stage(tap_priv(be));

	if (n <= 0)
		return n;
	return (size_t)n > strip ? n - (ssize_t)strip : 0;
}

static ssize_t
tap_recv(struct net_backend *be, const struct iovec *iov, int iovcnt)
{
	struct tap_priv *p = tap_priv(be);
	size_t strip = tap_strip(be), len, done = 0;
	ssize_t n = tap_stage(p);

	if (n <= 0)
		return n;
	/* A frame shorter than the kernel's header is none at all. */
	len = p->staged > strip ? p->staged - strip : 0;
	for (int i = 0; i < iovcnt && done < len; i++) {
		size_t c =
		    iov[i].iov_len < len - done ? iov[i].iov_len : len - done;

		memcpy(iov[i].iov_base, p->stage + strip + done, c);
		done += c;
	}
	p->staged = 0;
	return (ssize_t)done;
}

static ssize_t
tap_recv_discard(struct net_backend *be)
{
	struct tap_priv *p = tap_priv(be);
	ssize_t n = tap_stage(p);

	p->staged = 0;
	return n;
}

static void
tap_rx_disable(struct net_backend *be)
{
	struct tap_priv *p = tap_priv(be);

	if (p->ev) {
		mevent_delete(p->ev);
		p->ev = NULL;
	}
}

static void
tap_rx_enable(struct net_backend *be)
{
	struct tap_priv *p = tap_priv(be);

	uint64_t one = 1;

	if (!p->ev)
		p->ev = mevent_add(p->mev, p->fd, EVF_READ, tap_rx_event, be);
	if (p->staged && write(p->kickfd, &one, sizeof(one)) < 0)
		return; /* the counter is full: a wake-up is pending anyway */
}

static uint64_t
tap_get_cap(struct net_backend *be)
{
	return tap_priv(be)->vnet ? TAP_CAPS : 0;
}

/*
 * The offloads the guest takes (GUEST_*) are what the kernel may hand us
 * unfinished (TUN_F_*); what it sends (CSUM, HOST_TSO*) the kernel takes
 * with any header. TSO needs checksum offload under it (§5.1.3.1).
 */
static unsigned int
tap_offloads(uint64_t f)
{
	unsigned int o = 0;

	if (!(f & NETBE_F_GUEST_CSUM))
		return 0;
	o |= TUN_F_CSUM;
	if (f & NETBE_F_GUEST_TSO4)
		o |= TUN_F_TSO4;
	if (f & NETBE_F_GUEST_TSO6)
		o |= TUN_F_TSO6;
	return o;
}

static int
tap_set_cap(struct net_backend *be, uint64_t features,
	    unsigned int vnet_hdr_len)
{
	struct tap_priv *p = tap_priv(be);
	int hdr = vnet_hdr_len ? (int)vnet_hdr_len : TAP_VNET_HDR_LEN;

	if ((features & ~TAP_CAPS) ||
	    (!p->vnet && (features || vnet_hdr_len)) ||
	    (vnet_hdr_len == 0 && features) ||
	    (vnet_hdr_len && vnet_hdr_len != 10 && vnet_hdr_len != 12)) {
		errno = EINVAL;
		return -1;
	}
	if (!p->vnet)
		return 0;
	if (ioctl(p->fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    ioctl(p->fd, TUNSETOFFLOAD, tap_offloads(features)) < 0)
		return -1;
	p->fd_hdr_len = (unsigned int)hdr;
	p->staged = 0; /* read with the old header length */
	return 0;
}

static int
tap_get_fd(struct net_backend *be)
{
	return tap_priv(be)->fd;
}

static const struct net_backend_ops tap_backend = {
    .prefix = "tap",
    .init = tap_init,
    .cleanup = tap_cleanup,
    .send = tap_send,
    .peek_recvlen = tap_peek_recvlen,
    .recv = tap_recv,
    .recv_discard = tap_recv_discard,
    .rx_disable = tap_rx_disable,
    .rx_enable = tap_rx_enable,
    .get_cap = tap_get_cap,
    .set_cap = tap_set_cap,
    .get_fd = tap_get_fd,
    .priv_size = sizeof(struct tap_priv),
};
NET_BACKEND_SET(tap_backend);
