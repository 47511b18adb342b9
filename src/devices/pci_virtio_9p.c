/*
 * virtio-9p on the legacy PCI transport, as bhyve's pci_virtio_9p.c. The
 * virtio spec assigns device ID 9 ("9P transport", 1.2 §5) but describes
 * no device; this is the one QEMU and bhyve share (transitional PCI ID
 * 0x1009) and Linux's 9pnet_virtio drives:
 *
 *   -s SLOT,virtio-9p,SHARENAME=/host/dir[,ro]
 *
 * or pci.B.S.F.{sharename,path,ro} (bhyve_config(5)). The guest mounts
 * it with "mount -t 9p -o trans=virtio SHARENAME /mnt".
 *
 * Feature VIRTIO_9P_MOUNT_TAG (bit 0): the config space is tag_len[2]
 * then the tag (the share name, not NUL-terminated). One request queue;
 * each chain is the T-message in readable buffers, then writable buffers
 * for the R-message (Linux's net/9p/trans_virtio.c; its zero-copy reads
 * and writes split the payload into further buffers, which concatenate to
 * the same message). The 9P2000.L server is ours (p9_server.c).
 *
 * Requests are served on a worker thread, so a slow host file system
 * stalls neither the vCPU that notified nor the event loop; the worker
 * runs under its own seccomp filter and, where the kernel has Landlock,
 * can reach no file outside the share whatever path it is handed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <pthread.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "p9_server.h"
#include "pci_emul.h"
#include "sandbox.h"
#include "virtio.h"

/* Transitional PCI device ID (§4.1.2.1) and virtio device ID of 9P. */
#define VIRTIO_DEV_9P 0x1009
#define VIRTIO_ID_9P 9

#define VT9P_RINGSZ 256
/* A chain's buffers: Linux's zero-copy requests carry one a page. */
#define VT9P_MAXIOV VT9P_RINGSZ
/* The msize offered: Linux's default since 5.15 (128 KiB). */
#define VT9P_MSIZE (128 * 1024)
/* bhyve's limit on a share name (its VT9P_MAXTAGLEN less the NUL). */
#define VT9P_MAX_TAGLEN 255
#define VT9P_F_MOUNT_TAG (1u << 0)
#define VT9P_S_HOSTCAPS (VT9P_F_MOUNT_TAG | VIRTIO_RING_F_INDIRECT_DESC)

_Static_assert(VT9P_MSIZE >= P9_MSIZE_MIN, "the server takes this msize");

struct vt9p_config {
	uint16_t tag_len;
	char tag[VT9P_MAX_TAGLEN];
} __attribute__((packed));

struct pci_vt9p_softc {
	struct virtio_softc vs; /* first: pi_arg points at both */
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	struct vqueue_info vq;
	struct virtio_consts consts;
	struct vt9p_config cfg;
	struct p9_server *srv; /* the worker's alone */
	int ruleset;	       /* Landlock: the share only, or -1 */
	pthread_t thr;
	bool thr_started;
	bool closing;
	unsigned int gen; /* bumped by each reset */
	uint8_t *req, *resp;
	struct iovec iov[VT9P_MAXIOV];
};

static void pci_vt9p_reset(void *vsc);
static void pci_vt9p_notify(void *vsc, struct vqueue_info *vq);
static int pci_vt9p_cfgread(void *vsc, int offset, int size, uint32_t *val);

static const struct virtio_consts vt9p_vi_consts = {
    .vc_name = "virtio-9p",
    .vc_nvq = 1,
    .vc_reset = pci_vt9p_reset,
    .vc_qnotify = pci_vt9p_notify,
    .vc_cfgread = pci_vt9p_cfgread,
    .vc_hv_caps = VT9P_S_HOSTCAPS,
};

/* ---- requests (on the worker) ---- */

/*
 * One chain: the T-message copied out of guest memory once (the guest
 * may rewrite it while we parse), the R-message copied back. The bytes
 * written, for the used ring.
 */
static uint32_t
vt9p_serve(struct pci_vt9p_softc *sc, const struct iovec *iov,
	   const struct vi_req *r)
{
	const struct iovec *wiov = iov + r->readable;
	size_t in = 0, room = 0, rlen, done = 0;

	for (int i = 0; i < r->readable && in < VT9P_MSIZE; i++) {
		size_t c = iov[i].iov_len < VT9P_MSIZE - in ? iov[i].iov_len
							    : VT9P_MSIZE - in;
		memcpy(sc->req + in, iov[i].iov_base, c);
		in += c;
	}
	for (int i = 0; i < r->writable; i++)
		room += wiov[i].iov_len;
	rlen = p9_server_handle(sc->srv, sc->req, in, sc->resp,
				room < VT9P_MSIZE ? room : VT9P_MSIZE);
	for (int i = 0; i < r->writable && done < rlen; i++) {
		size_t c = wiov[i].iov_len < rlen - done ? wiov[i].iov_len
							 : rlen - done;
		memcpy(wiov[i].iov_base, sc->resp + done, c);
		done += c;
	}
	return (uint32_t)done;
}

/* What the worker may call, besides sandbox_thread's common set. */
static const int vt9p_syscalls[] = {
    SCMP_SYS(openat2),	  SCMP_SYS(close),	SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),	  SCMP_SYS(lseek),	SCMP_SYS(getdents64),
    SCMP_SYS(fstat),	  SCMP_SYS(newfstatat), SCMP_SYS(statx),
    SCMP_SYS(fstatfs),	  SCMP_SYS(mkdirat),	SCMP_SYS(mknodat),
    SCMP_SYS(unlinkat),	  SCMP_SYS(renameat),	SCMP_SYS(renameat2),
    SCMP_SYS(symlinkat),  SCMP_SYS(readlinkat), SCMP_SYS(linkat),
    SCMP_SYS(fchmod),	  SCMP_SYS(fchownat),	SCMP_SYS(utimensat),
    SCMP_SYS(ftruncate),  SCMP_SYS(fsync),	SCMP_SYS(fdatasync),
    SCMP_SYS(flistxattr), SCMP_SYS(fgetxattr),	SCMP_SYS(brk),
};
#define SYS_FCHMODAT2_X86_64 452 /* newer than libseccomp 2.5's table */

/*
 * The file system calls the server makes, each on fds it opened with
 * openat2(RESOLVE_BENEATH) (seccomp cannot see paths; the resolve flags
 * are what keep the worker in the share); no open(2), openat(2), exec or
 * sockets. malloc may map memory for the thread's arena, never
 * executable.
 */
static int
vt9p_rules(void *f, void *arg)
{
	const struct scmp_arg_cmp noexec =
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	int rc = 0;

	(void)arg;
	for (size_t i = 0; i < sizeof(vt9p_syscalls) / sizeof(int); i++)
		rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, vt9p_syscalls[i], 0);
	rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SYS_FCHMODAT2_X86_64, 0);
	rc |= seccomp_rule_add_array(f, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				     &noexec);
	rc |= seccomp_rule_add_array(f, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				     &noexec);
	return rc;
}

/* Landlock's file system rights by ABI version (landlock.h). */
#define LL_FS_ABI1 ((1ULL << 13) - 1)
#define LL_FS_REFER (1ULL << 13)     /* ABI 2: rename and link across dirs */
#define LL_FS_TRUNCATE (1ULL << 14)  /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */

/*
 * A Landlock ruleset allowing what the server does beneath dirfd and
 * nothing anywhere else; -1 without Landlock, or before ABI 2 (which
 * would forbid renames across directories). The worker enforces it on
 * itself. Never execute, never make device nodes or sockets.
 */
static int
vt9p_ruleset(int dirfd)
{
	struct landlock_ruleset_attr attr = {0};
	struct landlock_path_beneath_attr beneath = {0};
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
			   LANDLOCK_CREATE_RULESET_VERSION);
	long fd;

	if (abi < 2)
		return -1;
	attr.handled_access_fs = LL_FS_ABI1 | LL_FS_REFER |
				 (abi >= 3 ? LL_FS_TRUNCATE : 0) |
				 (abi >= 5 ? LL_FS_IOCTL_DEV : 0);
	fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (fd < 0)
		return -1;
	beneath.parent_fd = dirfd;
	beneath.allowed_access =
	    attr.handled_access_fs &
	    ~(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
	      LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SOCK |
	      (abi >= 5 ? LL_FS_IOCTL_DEV : 0));
	if (syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_PATH_BENEATH,
		    &beneath, 0) < 0) {
		close((int)fd);
		return -1;
	}
	return (int)fd;
}

/* Confine the calling thread (only it) to the share. */
static void
vt9p_landlock(struct pci_vt9p_softc *sc)
{
	if (sc->ruleset < 0)
		return;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_landlock_restrict_self, sc->ruleset, 0) < 0)
		fprintf(stderr,
			"bhyve: warning: virtio-9p: Landlock failed (%s); the "
			"9p thread relies on openat2 and seccomp alone\n",
			strerror(errno));
	close(sc->ruleset);
	sc->ruleset = -1;
}

static void *
vt9p_thr(void *arg)
{
	struct pci_vt9p_softc *sc = arg;
	struct vqueue_info *vq = &sc->vq;
	char err[256];

	pthread_setname_np(pthread_self(), "9p");
	vt9p_landlock(sc);
	if (sandbox_thread("virtio-9p", vt9p_rules, NULL, err, sizeof(err)) < 0)
		sandbox_fail(err);
	pthread_mutex_lock(&sc->mtx);
	while (!sc->closing) {
		struct vi_req r;
		unsigned int gen;
		uint32_t len;
		int n;

		/* Idle: ask for a notification, then look once more. */
		if (!vq_has_descs(vq)) {
			vq_kick_enable(vq);
			if (!vq_has_descs(vq)) {
				pthread_cond_wait(&sc->cond, &sc->mtx);
				continue;
			}
		}
		vq_kick_disable(vq); /* busy: we come back for the rest */
		n = vq_getchain(vq, sc->iov, VT9P_MAXIOV, &r);
		if (n <= 0)
			continue; /* a bad chain stopped the queue */
		gen = sc->gen;
		pthread_mutex_unlock(&sc->mtx);
		len = vt9p_serve(sc, sc->iov, &r);
		pthread_mutex_lock(&sc->mtx);
		/* After a reset the chain is no longer ours to complete. */
		if (gen == sc->gen) {
			vq_relchain(vq, r.idx, len);
			vq_endchains(vq);
		}
	}
	pthread_mutex_unlock(&sc->mtx);
	return NULL;
}

/* ---- the virtio core's callbacks (lock held) ---- */

static void
pci_vt9p_notify(void *vsc, struct vqueue_info *vq)
{
	struct pci_vt9p_softc *sc = vsc;

	(void)vq;
	pthread_cond_signal(&sc->cond);
}

static void
pci_vt9p_reset(void *vsc)
{
	struct pci_vt9p_softc *sc = vsc;

	/* A request being served finishes into the void (vt9p_thr). */
	sc->gen++;
	vi_reset_dev(&sc->vs);
}

static int
pci_vt9p_cfgread(void *vsc, int offset, int size, uint32_t *val)
{
	struct pci_vt9p_softc *sc = vsc;

	/* The core checked offset + size against vc_cfgsize. */
	*val = 0;
	memcpy(val, (uint8_t *)&sc->cfg + offset, size);
	return 0;
}

/* ---- set-up ---- */

/* bhyve's spelling: the first option is SHARENAME=PATH. */
static int
vt9p_legacy_config(struct config *node, const char *opts, char *err,
		   size_t errlen)
{
	const char *comma = strchr(opts, ','), *eq = strchr(opts, '=');
	char *first;
	int rc;

	if (!eq || (comma && eq > comma)) {
		snprintf(err, errlen,
			 "virtio-9p: expected SHARENAME=/path[,ro], not '%s'",
			 opts);
		return -1;
	}
	first = strndup(opts, comma ? (size_t)(comma - opts) : strlen(opts));
	if (!first)
		return -1;
	first[eq - opts] = '\0';
	rc = config_set(node, "sharename", first, err, errlen);
	if (rc == 0)
		rc = config_set(node, "path", first + (eq - opts) + 1, err,
				errlen);
	free(first);
	if (rc == 0 && comma)
		rc = pci_parse_legacy_config(node, comma + 1, err, errlen);
	return rc;
}

static const char *const vt9p_keys[] = {"device", "sharename", "path", "ro"};

static int
vt9p_check_key(const struct config *c, void *arg)
{
	const char *name = config_node_name(c);

	for (size_t i = 0; i < sizeof(vt9p_keys) / sizeof(vt9p_keys[0]); i++)
		if (config_is_leaf(c) && !strcmp(name, vt9p_keys[i]))
			return 0;
	*(const char **)arg = name;
	return 1;
}

static int
vt9p_fail(struct pci_devinst *pi, const char *msg)
{
	fprintf(stderr, "bhyve: virtio-9p at %d:%d:%d: %s\n", pi->pi_bus,
		pi->pi_slot, pi->pi_func, msg);
	return -1;
}

/* The share's settings, checked; its directory opened in *dirfd. */
static int
vt9p_settings(struct pci_devinst *pi, struct config *node, const char **tag,
	      bool *ro, int *dirfd)
{
	const char *path = config_get(node, "path"), *bad = NULL;
	const char *rov = config_get(node, "ro");
	char msg[512];

	*tag = config_get(node, "sharename");
	if (config_foreach(node, vt9p_check_key, &bad)) {
		snprintf(msg, sizeof(msg),
			 "unknown option '%s' (SHARENAME=/path, ro)", bad);
		return vt9p_fail(pi, msg);
	}
	if (!*tag || !**tag || !path || !*path)
		return vt9p_fail(pi, "needs a share name and a directory: "
				     "-s SLOT,virtio-9p,SHARENAME=/path[,ro]");
	if (strlen(*tag) > VT9P_MAX_TAGLEN) {
		snprintf(msg, sizeof(msg),
			 "share name '%.40s...' is longer than %d bytes", *tag,
			 VT9P_MAX_TAGLEN);
		return vt9p_fail(pi, msg);
	}
	*ro = false;
	if (rov && config_parse_bool(rov, ro) < 0) {
		snprintf(msg, sizeof(msg),
			 "invalid value '%s' for ro (true or false)", rov);
		return vt9p_fail(pi, msg);
	}
	*dirfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*dirfd < 0) {
		snprintf(msg, sizeof(msg), "cannot share %s: %s", path,
			 errno == ENOTDIR ? "not a directory"
					  : strerror(errno));
		return vt9p_fail(pi, msg);
	}
	return 0;
}

static void
vt9p_pci_ids(struct pci_devinst *pi)
{
	/* A transitional device (§4.1.2.1): revision 0 for legacy drivers. */
	pci_set_cfgdata16(pi, 0x00, VIRTIO_VENDOR);
	pci_set_cfgdata16(pi, 0x02, VIRTIO_DEV_9P);
	pci_set_cfgdata8(pi, 0x08, 0);	  /* revision */
	pci_set_cfgdata8(pi, 0x0a, 0x80); /* other mass storage, as QEMU */
	pci_set_cfgdata8(pi, 0x0b, 0x01);
	pci_set_cfgdata16(pi, 0x2c, VIRTIO_VENDOR);
	pci_set_cfgdata16(pi, 0x2e, VIRTIO_ID_9P);
}

static void pci_vt9p_deinit(struct pci_devinst *pi);

static int
pci_vt9p_init(struct pci_devinst *pi, struct config *node)
{
	struct config *cfg = machine_config(pi->pi_vmctx);
	struct pci_vt9p_softc *sc;
	const char *tag;
	bool ro;
	int dirfd;

	if (vt9p_settings(pi, node, &tag, &ro, &dirfd) < 0)
		return -1;
	sc = calloc(1, sizeof(*sc));
	if (sc) {
		sc->req = malloc(VT9P_MSIZE);
		sc->resp = malloc(VT9P_MSIZE);
		sc->srv = p9_server_new(dirfd, ro, VT9P_MSIZE);
	}
	if (!sc || !sc->req || !sc->resp || !sc->srv) {
		if (!sc || !sc->srv)
			close(dirfd);
		if (sc) {
			p9_server_free(sc->srv);
			free(sc->req);
			free(sc->resp);
		}
		free(sc);
		return vt9p_fail(pi, "out of memory");
	}
	pthread_mutex_init(&sc->mtx, NULL);
	pthread_cond_init(&sc->cond, NULL);
	sc->ruleset = vt9p_ruleset(dirfd);
	sc->cfg.tag_len = (uint16_t)strlen(tag);
	memcpy(sc->cfg.tag, tag, sc->cfg.tag_len);
	sc->consts = vt9p_vi_consts;
	sc->consts.vc_cfgsize = sizeof(sc->cfg.tag_len) + sc->cfg.tag_len;
	sc->vq.vq_qsize = VT9P_RINGSZ;
	sc->vs.vs_mtx = &sc->mtx;
	vi_softc_linkup(&sc->vs, &sc->consts, sc, pi, &sc->vq);
	vt9p_pci_ids(pi);
	if (vi_intr_init(&sc->vs, 1,
			 config_get_bool(cfg, "virtio_msix", true)) < 0 ||
	    vi_set_io_bar(&sc->vs, 0) < 0) {
		pci_vt9p_deinit(pi);
		return vt9p_fail(pi, "cannot set up its BARs and interrupts");
	}
	if (pthread_create(&sc->thr, NULL, vt9p_thr, sc) != 0) {
		pci_vt9p_deinit(pi);
		return vt9p_fail(pi, "cannot start its worker thread");
	}
	sc->thr_started = true;
	return 0;
}

static void
pci_vt9p_deinit(struct pci_devinst *pi)
{
	struct pci_vt9p_softc *sc = pi->pi_arg;

	if (!sc)
		return;
	if (sc->thr_started) {
		pthread_mutex_lock(&sc->mtx);
		sc->closing = true;
		pthread_cond_signal(&sc->cond);
		pthread_mutex_unlock(&sc->mtx);
		pthread_join(sc->thr, NULL);
	}
	if (sc->ruleset >= 0)
		close(sc->ruleset); /* the worker never started */
	p9_server_free(sc->srv);
	free(sc->req);
	free(sc->resp);
	pthread_cond_destroy(&sc->cond);
	pthread_mutex_destroy(&sc->mtx);
	free(sc);
	pi->pi_arg = NULL;
}

static const struct pci_devemu pci_de_v9p = {
    .pe_emu = "virtio-9p",
    .pe_legacy_config = vt9p_legacy_config,
    .pe_init = pci_vt9p_init,
    .pe_deinit = pci_vt9p_deinit,
    .pe_barwrite = vi_pci_write,
    .pe_barread = vi_pci_read,
};
PCI_EMUL_SET(pci_de_v9p);
