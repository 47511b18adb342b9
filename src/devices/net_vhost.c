/* vhost-net for virtio-net (net_vhost.h): /dev/vhost-net's ioctls. */
#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "net_vhost.h"

#define VHOST_NQ 2
#define GIB4 (1ull << 32)

struct vhost_net {
	int fd;
	uint64_t features; /* what the kernel offers */
	bool running;
};

struct vhost_net *
vhost_net_open(char *err, size_t errlen)
{
	struct vhost_net *v = calloc(1, sizeof(*v));

	if (!v) {
		snprintf(err, errlen, "vhost=on: out of memory");
		return NULL;
	}
	v->fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
	if (v->fd < 0) {
		snprintf(err, errlen,
			 "vhost=on: cannot open /dev/vhost-net: %s (modprobe "
			 "vhost_net, and give this user access to it)",
			 strerror(errno));
		free(v);
		return NULL;
	}
	if (ioctl(v->fd, VHOST_SET_OWNER, NULL) < 0 ||
	    ioctl(v->fd, VHOST_GET_FEATURES, &v->features) < 0) {
		snprintf(err, errlen, "vhost=on: /dev/vhost-net: %s",
			 strerror(errno));
		close(v->fd);
		free(v);
		return NULL;
	}
	return v;
}

int
vhost_net_fd(const struct vhost_net *v)
{
	return v->fd;
}

/* Guest memory as vhost sees it: low memory at 0, high memory at 4 GiB. */
static int
set_mem_table(struct vhost_net *v, struct vmctx *ctx)
{
	struct {
		struct vhost_memory m;
		struct vhost_memory_region r[2];
	} t;
	uint64_t low = vm_get_lowmem_size(ctx), high = vm_get_highmem_size(ctx);
	uint32_t n = 0;
	void *p;

	memset(&t, 0, sizeof(t));
	if (low && (p = vm_map_gpa(ctx, 0, low))) {
		t.r[n].guest_phys_addr = 0;
		t.r[n].memory_size = low;
		t.r[n].userspace_addr = (uint64_t)(uintptr_t)p;
		n++;
	}
	if (high && (p = vm_map_gpa(ctx, GIB4, high))) {
		t.r[n].guest_phys_addr = GIB4;
		t.r[n].memory_size = high;
		t.r[n].userspace_addr = (uint64_t)(uintptr_t)p;
		n++;
	}
	t.m.nregions = n;
	return ioctl(v->fd, VHOST_SET_MEM_TABLE, &t.m);
}

static int
set_ring(struct vhost_net *v, unsigned int i, const struct vhost_ring *r)
{
	struct vhost_vring_state num = {.index = i, .num = r->num};
	struct vhost_vring_state base = {.index = i, .num = r->last_avail};
	struct vhost_vring_addr addr = {
	    .index = i,
	    .desc_user_addr = (uint64_t)(uintptr_t)r->desc,
	    .avail_user_addr = (uint64_t)(uintptr_t)r->avail,
	    .used_user_addr = (uint64_t)(uintptr_t)r->used,
	};
	struct vhost_vring_file kick = {.index = i, .fd = r->kickfd};
	struct vhost_vring_file call = {.index = i, .fd = r->callfd};

	if (ioctl(v->fd, VHOST_SET_VRING_NUM, &num) < 0 ||
	    ioctl(v->fd, VHOST_SET_VRING_BASE, &base) < 0 ||
	    ioctl(v->fd, VHOST_SET_VRING_ADDR, &addr) < 0 ||
	    ioctl(v->fd, VHOST_SET_VRING_KICK, &kick) < 0 ||
	    ioctl(v->fd, VHOST_SET_VRING_CALL, &call) < 0)
		return -1;
	return 0;
}

static void
set_backend(struct vhost_net *v, int fd)
{
	for (unsigned int i = 0; i < VHOST_NQ; i++) {
		struct vhost_vring_file b = {.index = i, .fd = fd};

		(void)ioctl(v->fd, VHOST_NET_SET_BACKEND, &b);
	}
}

int
vhost_net_start(struct vhost_net *v, struct vmctx *ctx, uint64_t features,
		bool hdr_by_vhost, const struct vhost_ring rings[2], int tapfd,
		char *err, size_t errlen)
{
	uint64_t f = features & VHOST_NET_GUEST_FEATURES;
	const char *what = "VHOST_SET_FEATURES";

	if (hdr_by_vhost)
		f |= 1ull << VHOST_NET_F_VIRTIO_NET_HDR;
	if ((f & v->features) != f) {
		snprintf(err, errlen,
			 "vhost-net lacks features 0x%llx the guest chose",
			 (unsigned long long)(f & ~v->features));
		return -1;
	}
	if (ioctl(v->fd, VHOST_SET_FEATURES, &f) < 0)
		goto fail;
	what = "VHOST_SET_MEM_TABLE";
	if (set_mem_table(v, ctx) < 0)
		goto fail;
	what = "a ring";
	for (unsigned int i = 0; i < VHOST_NQ; i++)
		if (set_ring(v, i, &rings[i]) < 0)
			goto fail;
	what = "VHOST_NET_SET_BACKEND";
	for (unsigned int i = 0; i < VHOST_NQ; i++) {
		struct vhost_vring_file b = {.index = i, .fd = tapfd};

		if (ioctl(v->fd, VHOST_NET_SET_BACKEND, &b) < 0) {
			int e = errno;

			set_backend(v, -1);
			errno = e;
			goto fail;
		}
	}
	v->running = true;
	return 0;
fail:
	snprintf(err, errlen, "vhost-net: %s: %s", what, strerror(errno));
	return -1;
}

void
vhost_net_stop(struct vhost_net *v, uint16_t last_avail[2])
{
	if (!v->running)
		return;
	set_backend(v, -1);
	for (unsigned int i = 0; i < VHOST_NQ; i++) {
		struct vhost_vring_state s = {.index = i};

		if (ioctl(v->fd, VHOST_GET_VRING_BASE, &s) == 0)
			last_avail[i] = (uint16_t)s.num;
	}
	v->running = false;
}

void
vhost_net_close(struct vhost_net *v)
{
	if (!v)
		return;
	close(v->fd);
	free(v);
}
