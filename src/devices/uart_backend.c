/*
 * UART backends: stdio, or a host path (terminal, pty, fifo, file).
 *
 * Locks: in_lock (the input side) is taken before the UART's lock, since
 * the read path hands bytes to uart_rx; out_lock (the output buffer) is
 * taken under the UART's lock, since THR writes land here. The two never
 * nest, so there is no cycle.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "mevent.h"
#include "uart_backend.h"
#include "uart_emul.h"

#define OUTBUF_SIZE 4096
#define FLUSH_MS 20   /* how long a partial line (a prompt) may wait */
#define INBUF_SIZE 64 /* > the FIFO; loopback drops input in chunks */

struct uart_backend {
	struct uart_softc *sc;
	struct mevent *mev;
	int rfd, wfd; /* -1 when absent; the same fd for a terminal */
	bool stdio;

	/* Saved terminal mode and stdin flags, restored on close. */
	int ttyfd;
	bool tty_saved;
	struct termios tio;
	int rflags;
	bool rflags_saved;

	pthread_mutex_t in_lock;
	struct mevent_ev *rev;
	bool paused; /* the FIFO was full: not reading until rx_ready */
	bool eof;

	pthread_mutex_t out_lock;
	struct mevent_ev *flush_ev;
	bool dead; /* the output side failed for good (EPIPE, EIO) */
	size_t olen;
	uint8_t obuf[OUTBUF_SIZE];
};

/*
 * The process has one stdin/stdout and one controlling terminal, whose
 * mode must be restored however the process exits; atexit() handlers take
 * no argument. So the one stdio backend is recorded here: process state,
 * not VM state.
 */
static struct {
	pthread_mutex_t lock;
	struct uart_backend *owner;
	bool atexit_set;
} stdio_claim = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void
write_all(struct uart_backend *be, const uint8_t *p, size_t n)
{
	while (n > 0 && !be->dead) {
		ssize_t w = write(be->wfd, p, n);
		struct pollfd pfd = {.fd = be->wfd, .events = POLLOUT};

		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && errno == EAGAIN) {
			/* Non-blocking (a shared tty, a pty): wait, don't drop.
			 */
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				be->dead = true;
		} else {
			be->dead = true;
		}
	}
}

static void
flush_locked(struct uart_backend *be)
{
	if (be->olen > 0 && be->wfd >= 0)
		write_all(be, be->obuf, be->olen);
	be->olen = 0;
}

void
uart_backend_flush(struct uart_backend *be)
{
	pthread_mutex_lock(&be->out_lock);
	flush_locked(be);
	pthread_mutex_unlock(&be->out_lock);
}

void
uart_backend_putc(struct uart_backend *be, uint8_t c)
{
	pthread_mutex_lock(&be->out_lock);
	be->obuf[be->olen++] = c;
	if (c == '\n' || be->olen == sizeof(be->obuf))
		flush_locked(be);
	pthread_mutex_unlock(&be->out_lock);
}

static void
flush_timer(int fd, enum ev_type type, void *arg)
{
	(void)fd;
	(void)type;
	uart_backend_flush(arg);
}

static void
term_raw(struct uart_backend *be, int fd)
{
	struct termios raw;

	if (tcgetattr(fd, &be->tio) < 0)
		return;
	raw = be->tio;
	cfmakeraw(&raw);
	if (tcsetattr(fd, TCSANOW, &raw) == 0) {
		be->ttyfd = fd;
		be->tty_saved = true;
	}
}

static void
term_restore(struct uart_backend *be)
{
	if (be->tty_saved)
		tcsetattr(be->ttyfd, TCSADRAIN, &be->tio);
	be->tty_saved = false;
	if (be->rflags_saved)
		fcntl(be->rfd, F_SETFL, be->rflags);
	be->rflags_saved = false;
}

static void
stdio_atexit(void)
{
	struct uart_backend *be;

	pthread_mutex_lock(&stdio_claim.lock);
	be = stdio_claim.owner;
	if (be) {
		/* A vCPU may still hold the buffer: don't wait for it. */
		if (pthread_mutex_trylock(&be->out_lock) == 0) {
			flush_locked(be);
			pthread_mutex_unlock(&be->out_lock);
		}
		term_restore(be);
	}
	pthread_mutex_unlock(&stdio_claim.lock);
}

static int
open_stdio(struct uart_backend *be, char *err, size_t errlen)
{
	int flags;

	pthread_mutex_lock(&stdio_claim.lock);
	if (stdio_claim.owner) {
		pthread_mutex_unlock(&stdio_claim.lock);
		snprintf(err, errlen,
			 "stdio is already used by another UART: "
			 "give this one a path");
		return -1;
	}
	stdio_claim.owner = be;
	if (!stdio_claim.atexit_set)
		stdio_claim.atexit_set = atexit(stdio_atexit) == 0;
	be->stdio = true;
	be->wfd = STDOUT_FILENO;
	flags = fcntl(STDIN_FILENO, F_GETFL);
	if (flags >= 0) {
		be->rfd = STDIN_FILENO;
		if (isatty(be->rfd))
			term_raw(be, be->rfd);
		/* The loop must never block in read(): another reader of
		 * the same terminal may have taken the bytes. */
		if (!(flags & O_NONBLOCK) &&
		    fcntl(be->rfd, F_SETFL, flags | O_NONBLOCK) == 0) {
			be->rflags = flags;
			be->rflags_saved = true;
		}
	}
	pthread_mutex_unlock(&stdio_claim.lock);
	return 0;
}

static int
open_path(struct uart_backend *be, const char *path, char *err, size_t errlen)
{
	struct stat st;
	bool exists = stat(path, &st) == 0;
	int fd;

	if (!exists && errno != ENOENT)
		goto fail;
	if (exists && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
		fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			goto fail;
		be->rfd = be->wfd = fd;
		if (isatty(fd))
			term_raw(be, fd);
		return 0;
	}
	if (exists && !S_ISREG(st.st_mode)) {
		snprintf(err, errlen,
			 "cannot use %s: not a terminal, fifo "
			 "or regular file",
			 path);
		return -1;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail;
	be->wfd = fd;
	return 0;
fail:
	snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
	return -1;
}

static void
rx_event(int fd, enum ev_type type, void *arg)
{
	(void)fd;
	(void)type;
	uart_backend_rx_poll(arg);
}

/* Under in_lock. */
static void
rx_start(struct uart_backend *be)
{
	if (be->mev && be->rfd >= 0 && !be->rev)
		be->rev = mevent_add(be->mev, be->rfd, EVF_READ, rx_event, be);
	/* Failure (a regular file or /dev/null can't be polled): no input. */
}

static void
rx_stop(struct uart_backend *be)
{
	if (be->rev)
		mevent_delete(be->rev);
	be->rev = NULL;
}

void
uart_backend_rx_poll(struct uart_backend *be)
{
	uint8_t buf[INBUF_SIZE];
	size_t room;
	ssize_t n;

	pthread_mutex_lock(&be->in_lock);
	if (be->rfd < 0 || be->eof || be->paused)
		goto out;
	room = uart_rx_room(be->sc);
	if (room == 0) {
		/* Leave the bytes in the kernel until the guest reads. */
		rx_stop(be);
		be->paused = true;
		goto out;
	}
	n = read(be->rfd, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (n > 0) {
		uart_rx(be->sc, buf, (size_t)n);
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		/* EOF (or a hung-up terminal): stop reading, keep writing. */
		rx_stop(be);
		be->eof = true;
	}
out:
	pthread_mutex_unlock(&be->in_lock);
}

void
uart_backend_rx_ready(struct uart_backend *be)
{
	pthread_mutex_lock(&be->in_lock);
	if (be->paused && !be->eof) {
		be->paused = false;
		rx_start(be);
	}
	pthread_mutex_unlock(&be->in_lock);
}

struct uart_backend *
uart_backend_open(const char *path, struct uart_softc *sc, struct mevent *mev,
		  char *err, size_t errlen)
{
	struct uart_backend *be = calloc(1, sizeof(*be));
	int rc;

	if (!be) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	be->sc = sc;
	be->mev = mev;
	be->rfd = be->wfd = be->ttyfd = -1;
	pthread_mutex_init(&be->in_lock, NULL);
	pthread_mutex_init(&be->out_lock, NULL);
	if (!strcmp(path, "stdio"))
		rc = open_stdio(be, err, errlen);
	else
		rc = open_path(be, path, err, errlen);
	if (rc < 0) {
		pthread_mutex_destroy(&be->in_lock);
		pthread_mutex_destroy(&be->out_lock);
		free(be);
		return NULL;
	}
	pthread_mutex_lock(&be->in_lock);
	rx_start(be);
	pthread_mutex_unlock(&be->in_lock);
	if (mev)
		be->flush_ev =
		    mevent_add(mev, FLUSH_MS, EVF_TIMER, flush_timer, be);
	return be;
}

void
uart_backend_close(struct uart_backend *be)
{
	if (!be)
		return;
	pthread_mutex_lock(&be->in_lock);
	rx_stop(be);
	be->eof = true;
	pthread_mutex_unlock(&be->in_lock);
	if (be->flush_ev)
		mevent_delete(be->flush_ev);
	uart_backend_flush(be);
	if (be->stdio) {
		pthread_mutex_lock(&stdio_claim.lock);
		term_restore(be);
		stdio_claim.owner = NULL;
		pthread_mutex_unlock(&stdio_claim.lock);
	} else {
		term_restore(be);
		if (be->wfd >= 0)
			close(be->wfd);
	}
	pthread_mutex_destroy(&be->in_lock);
	pthread_mutex_destroy(&be->out_lock);
	free(be);
}
