/*
 * Boot milestones: a guest writes text lines, a byte at a time, to an I/O
 * port (default 0xe9, the Bochs/QEMU debug-console port), and bhyve records
 * each line with the time since start-up, for hvtest's report
 * (docs/hvtest.md): "kernel started", "userspace up", or the guest's own.
 *
 *   -l milestone[,port=N][,path=FILE]   lpc.milestone.port, .path
 *
 * Only 1-byte OUTs count; '\n' ends a record, '\r' is dropped, control and
 * non-ASCII bytes become '?', and a record stops at 200 bytes (the rest, up
 * to the next '\n', is dropped). A 1-byte IN returns 0xe9 so a guest can
 * see the device is there. Records go to FILE as "SECONDS TEXT\n", one
 * write(2) each, or to stderr as "bhyve: milestone SECONDS TEXT".
 *
 * A guest decides how many lines it sends: after MILESTONE_CAP bytes of
 * records in a run, the rest are dropped, said once, so that a guest
 * cannot fill the host's disk (or flood stderr) through this port.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "inout.h"
#include "machine.h"
#include "ratelimit.h"

#define MILESTONE_PORT 0xe9
#define MILESTONE_MAX 200
#define MILESTONE_CAP (1 << 20) /* bytes of records a run */

struct milestone {
	pthread_mutex_t lock;
	struct vmctx *ctx;
	int port;
	int fd; /* -1: stderr */
	struct timespec start;
	char line[MILESTONE_MAX + 1];
	size_t len;
	bool overflow;
	size_t written; /* bytes of records so far, against MILESTONE_CAP */
	bool capped;
	struct ratelimit werr; /* a failing FILE: one line a second */
};

static double
since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	       (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Room for n more bytes of records? Says once when there is none. */
static bool
milestone_room(struct milestone *ms, size_t n)
{
	if (ms->written + n <= MILESTONE_CAP) {
		ms->written += n;
		return true;
	}
	if (!ms->capped)
		fprintf(stderr,
			"bhyve: milestone: %d KiB of records written this "
			"run: the guest's further records are dropped\n",
			MILESTONE_CAP / 1024);
	ms->capped = true;
	return false;
}

static void
milestone_emit(struct milestone *ms)
{
	char out[MILESTONE_MAX + 64];
	int n;

	ms->line[ms->len] = '\0';
	if (ms->fd >= 0) {
		n = snprintf(out, sizeof(out), "%.6f %s\n", since(&ms->start),
			     ms->line);
		if (milestone_room(ms, (size_t)n) &&
		    write(ms->fd, out, (size_t)n) != n)
			ratelimit_warn(&ms->werr, "milestone: write: %s",
				       strerror(errno));
	} else {
		n = snprintf(out, sizeof(out), "bhyve: milestone %.6f %s\n",
			     since(&ms->start), ms->line);
		if (milestone_room(ms, (size_t)n))
			fputs(out, stderr);
	}
	ms->len = 0;
	ms->overflow = false;
}

static int
milestone_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax,
	     void *arg)
{
	struct milestone *ms = arg;
	uint8_t c = (uint8_t)*eax;

	(void)ctx;
	(void)port;
	if (bytes != 1) {
		if (in)
			*eax = 0xffffffff;
		return -1;
	}
	if (in) {
		*eax = MILESTONE_PORT;
		return 0;
	}
	pthread_mutex_lock(&ms->lock);
	if (c == '\n')
		milestone_emit(ms);
	else if (c != '\r' && !ms->overflow) {
		if (ms->len == MILESTONE_MAX)
			ms->overflow = true;
		else
			ms->line[ms->len++] = (c < 0x20 || c > 0x7e) ? '?' : c;
	}
	pthread_mutex_unlock(&ms->lock);
	return 0;
}

static void
milestone_free(struct milestone *ms)
{
	if (ms->fd >= 0)
		close(ms->fd);
	pthread_mutex_destroy(&ms->lock);
	free(ms);
}

static void
milestone_deinit(void *arg)
{
	struct milestone *ms = arg;
	struct inout_port iop = {.port = ms->port, .size = 1};

	unregister_inout(ms->ctx, &iop);
	milestone_free(ms);
}

static int
milestone_init(struct vmctx *ctx, const struct lpc_dev *d)
{
	struct config *cfg = machine_config(ctx);
	const char *p = config_get(cfg, "lpc.milestone.port");
	const char *path = config_get(cfg, "lpc.milestone.path");
	struct milestone *ms;
	struct inout_port iop;
	unsigned long port = MILESTONE_PORT;
	char *end;

	if (p) {
		errno = 0;
		port = strtoul(p, &end, 0);
		if (errno || *end || !*p || port > 0xffff) {
			fprintf(stderr, "bhyve: milestone: bad port '%s'\n", p);
			return -1;
		}
	}
	ms = calloc(1, sizeof(*ms));
	if (!ms)
		return -1;
	pthread_mutex_init(&ms->lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &ms->start);
	ms->ctx = ctx;
	ms->port = (int)port;
	ms->fd = -1;
	if (path && *path) {
		ms->fd =
		    open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (ms->fd < 0) {
			fprintf(stderr, "bhyve: milestone: %s: %s\n", path,
				strerror(errno));
			milestone_free(ms);
			return -1;
		}
	}
	iop = (struct inout_port){"milestone",	  (int)port,	1,
				  IOPORT_F_INOUT, milestone_io, ms};
	if (register_inout(ctx, &iop) < 0) {
		const char *owner = inout_owner(ctx, (int)port);
		fprintf(stderr, "bhyve: milestone: port 0x%lx is taken%s%s\n",
			port, owner ? " by " : "", owner ? owner : "");
		milestone_free(ms);
		return -1;
	}
	if (machine_add_dev(ctx, d, ms, milestone_deinit) < 0) {
		milestone_deinit(ms);
		return -1;
	}
	return 0;
}

/* "port=N,path=FILE", either or both, as lpc.milestone.* values. */
static int
milestone_parse(struct config *cfg, const char *name, const char *opts,
		char *err, size_t errlen)
{
	char *dup = strdup(opts), *save = NULL;
	int rc = 0;

	if (!dup || !config_node_make(cfg, "lpc.milestone")) {
		free(dup);
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	for (char *tok = strtok_r(dup, ",", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		char key[64];

		if (strncmp(tok, "port=", 5) && strncmp(tok, "path=", 5)) {
			snprintf(err, errlen,
				 "-l milestone,%s: expected port=N or "
				 "path=FILE",
				 tok);
			rc = -1;
			break;
		}
		snprintf(key, sizeof(key), "lpc.milestone.%.4s", tok);
		rc = config_set(cfg, key, tok + 5, err, errlen);
	}
	free(dup);
	return rc;
}

static const struct lpc_dev lpc_milestone = {
    .name = "milestone",
    .help = "boot milestones: -l milestone[,port=N][,path=FILE]",
    .parse = milestone_parse,
    .init = milestone_init,
};
LPC_DEV_SET(lpc_milestone);
