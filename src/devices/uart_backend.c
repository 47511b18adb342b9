/*
 * UART backends: stdio, a host path (terminal, pty, fifo, file) or a TCP
 * listener.
 *
 * Locks: in_lock (the input side, and which TCP client is connected) is
 * taken before the UART's lock, since the read path hands bytes to
 * uart_rx; out_lock (the output buffer and fd) is taken under the UART's
 * lock, since THR writes land here. So the order is in_lock, the UART's
 * lock, out_lock: a client's arrival and departure take in_lock, then
 * out_lock; nothing takes in_lock under out_lock.
 *
 * Nothing here waits for a reader: every output fd is non-blocking (stdout
 * through a private open file description when it is a pipe, so that
 * bhyve's stderr on the same pipe keeps blocking), sockets are written
 * with MSG_DONTWAIT. A vCPU stuck behind a full pipe would hold the UART's
 * lock, and the event loop (signals, timers, every device) would wait for
 * it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "mevent.h"
#include "uart_backend.h"
#include "uart_emul.h"

#define FLUSH_MS 20	  /* how long a partial line (a prompt) may wait */
#define INBUF_SIZE 64	  /* > the FIFO; loopback drops input in chunks */
#define CLOSE_WAIT_MS 500 /* at exit: how long a stalled reader is given */
#define NAME_MAX_LEN 16

_Static_assert(UART_FLUSH_AT < UART_OUTBUF,
	       "a line is written before the buffer fills");

static const char tcp_busy_msg[] = "Socket already connected\n";

struct uart_backend {
	struct uart_softc *sc;
	struct mevent *mev;
	char name[NAME_MAX_LEN];
	bool stdio;

	/* Saved terminal mode and stdin/stdout flags, restored on close. */
	int ttyfd;
	bool tty_saved;
	struct termios tio;
	int rflags, wflags;
	bool rflags_saved, wflags_saved;

	/* TCP: the listener; a client is rfd (read) and wfd (its dup). */
	bool tcp;
	int lfd;
	struct mevent_ev *lev;

	pthread_mutex_t in_lock;
	int rfd; /* -1 when absent */
	struct mevent_ev *rev;
	bool paused; /* the FIFO was full: not reading until rx_ready */
	bool eof;

	pthread_mutex_t out_lock;
	int wfd;    /* -1 when absent, no client, or failed for good */
	bool wown;  /* wfd is ours to close (not bhyve's stdout) */
	bool wsock; /* send(MSG_DONTWAIT), not write */
	bool wfile; /* a regular file: capped at filecap bytes a run */
	uint64_t filecap;
	bool closing; /* no more write events: the loop has stopped */
	struct mevent_ev *flush_ev, *wev;
	uint8_t *obuf; /* a ring of UART_OUTBUF bytes */
	size_t ohead, olen;
	uint64_t written;
	uint64_t dropped;
	bool drop_said, cap_said;
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

/* ---- output ---- */

/* Ask the event loop to write when wfd takes bytes, or stop asking. */
static void out_arm(struct uart_backend *be);

/* The output side failed for good (EPIPE, EIO, a client gone). */
static void
out_dead(struct uart_backend *be)
{
	if (be->wev)
		mevent_delete(be->wev);
	be->wev = NULL;
	be->olen = 0;
	if (be->wfd >= 0 && be->tcp) {
		/* The input side sees EOF and lets the next client in. */
		shutdown(be->wfd, SHUT_RDWR);
	}
	if (be->wfd >= 0 && be->wown)
		close(be->wfd);
	be->wfd = -1;
}

/* Write what wfd takes now; true when the buffer emptied. Under out_lock. */
static bool
out_write(struct uart_backend *be)
{
	while (be->olen > 0 && be->wfd >= 0) {
		size_t n = UART_OUTBUF - be->ohead;
		const uint8_t *p = be->obuf + be->ohead;
		ssize_t w;

		if (n > be->olen)
			n = be->olen;
		if (be->wsock)
			w = send(be->wfd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			w = write(be->wfd, p, n);
		if (w > 0) {
			be->ohead = (be->ohead + (size_t)w) % UART_OUTBUF;
			be->olen -= (size_t)w;
			be->written += (uint64_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && errno == EAGAIN) {
			return false;
		} else {
			out_dead(be);
		}
	}
	if (be->olen == 0)
		be->ohead = 0;
	return be->olen == 0;
}

static void
tx_event(int fd, enum ev_type type, void *arg)
{
	struct uart_backend *be = arg;

	(void)fd;
	(void)type;
	pthread_mutex_lock(&be->out_lock);
	out_write(be);
	out_arm(be);
	pthread_mutex_unlock(&be->out_lock);
}

static void
out_arm(struct uart_backend *be)
{
	if (be->olen > 0 && !be->wev && be->mev && be->wfd >= 0 && !be->closing)
		be->wev = mevent_add(be->mev, be->wfd, EVF_WRITE, tx_event, be);
	else if (be->olen == 0 && be->wev) {
		mevent_delete(be->wev);
		be->wev = NULL;
	}
}

/* Under out_lock: write now, and leave the rest to the event loop. */
static void
out_flush(struct uart_backend *be)
{
	out_write(be);
	out_arm(be);
}

static void
out_drop(struct uart_backend *be, uint64_t n)
{
	be->dropped += n;
	if (be->drop_said)
		return;
	be->drop_said = true;
	fprintf(stderr,
		"bhyve: %s: the console's reader is not reading: output "
		"beyond %d KiB is dropped (said once)\n",
		be->name, UART_OUTBUF / 1024);
}

/* Keep one byte for the reader, or drop it. Under out_lock. */
static void
out_put(struct uart_backend *be, uint8_t c)
{
	if (be->wfd < 0)
		return; /* nobody there (no TCP client): gone, as in bhyve */
	if (be->wfile && be->written + be->olen >= be->filecap) {
		if (!be->cap_said)
			fprintf(stderr,
				"bhyve: %s: the console file reached its cap "
				"of %llu %s this run: further output is "
				"dropped\n",
				be->name,
				(unsigned long long)(be->filecap % (1 << 20)
							 ? be->filecap
							 : be->filecap >> 20),
				be->filecap % (1 << 20) ? "bytes" : "MiB");
		be->cap_said = true;
		return;
	}
	if (be->olen == UART_OUTBUF) {
		/* Perhaps the reader came back since the last look. */
		out_write(be);
		if (be->olen == UART_OUTBUF) {
			out_drop(be, 1);
			return;
		}
	}
	be->obuf[(be->ohead + be->olen) % UART_OUTBUF] = c;
	be->olen++;
}

void
uart_backend_flush(struct uart_backend *be)
{
	pthread_mutex_lock(&be->out_lock);
	out_flush(be);
	pthread_mutex_unlock(&be->out_lock);
}

void
uart_backend_putc(struct uart_backend *be, uint8_t c)
{
	pthread_mutex_lock(&be->out_lock);
	out_put(be, c);
	if ((c == '\n' || be->olen >= UART_FLUSH_AT) && !be->wev)
		out_flush(be); /* with a write event armed, the loop writes */
	pthread_mutex_unlock(&be->out_lock);
}

static void
flush_timer(int fd, enum ev_type type, void *arg)
{
	(void)fd;
	(void)type;
	uart_backend_flush(arg);
}

/*
 * At close: give the reader CLOSE_WAIT_MS to take each next piece (the
 * harness reads to the end), then drop what is left. Under out_lock.
 */
static void
out_drain(struct uart_backend *be)
{
	while (!out_write(be) && be->wfd >= 0) {
		struct pollfd pfd = {.fd = be->wfd, .events = POLLOUT};
		int n = poll(&pfd, 1, CLOSE_WAIT_MS);

		if (n == 0) {
			out_drop(be, be->olen);
			be->olen = 0;
		} else if (n < 0 && errno != EINTR) {
			out_dead(be);
		}
	}
}

/* ---- terminals and stdio ---- */

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
		fcntl(STDIN_FILENO, F_SETFL, be->rflags);
	be->rflags_saved = false;
	if (be->wflags_saved)
		fcntl(STDOUT_FILENO, F_SETFL, be->wflags);
	be->wflags_saved = false;
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
			out_write(be);
			pthread_mutex_unlock(&be->out_lock);
		}
		term_restore(be);
	}
	pthread_mutex_unlock(&stdio_claim.lock);
}

/* Set O_NONBLOCK on fd, keeping the old flags in *saved. */
static bool
set_nonblock(int fd, int *saved)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || (flags & O_NONBLOCK))
		return false;
	if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return false;
	*saved = flags;
	return true;
}

/*
 * stdout, made non-blocking. A pipe (the harness's) is opened again
 * through /proc: a file description of our own, so that O_NONBLOCK does
 * not reach bhyve's stderr or whoever else shares the pipe. A socket is
 * written with MSG_DONTWAIT; a terminal or anything else gets O_NONBLOCK,
 * undone at exit. Regular files and /dev/null never make a writer wait.
 */
static void
stdio_out(struct uart_backend *be)
{
	struct stat st;
	int fd;

	be->wfd = STDOUT_FILENO;
	if (fstat(STDOUT_FILENO, &st) < 0 || S_ISREG(st.st_mode))
		return;
	if (S_ISSOCK(st.st_mode)) {
		be->wsock = true;
		return;
	}
	if (S_ISFIFO(st.st_mode)) {
		fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			be->wfd = fd;
			be->wown = true;
			return;
		}
	}
	be->wflags_saved = set_nonblock(STDOUT_FILENO, &be->wflags);
}

static int
open_stdio(struct uart_backend *be, char *err, size_t errlen)
{
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
	if (fcntl(STDIN_FILENO, F_GETFL) >= 0) {
		be->rfd = STDIN_FILENO;
		if (isatty(be->rfd))
			term_raw(be, be->rfd);
		/* The loop must never block in read(): another reader of
		 * the same terminal may have taken the bytes. */
		be->rflags_saved = set_nonblock(be->rfd, &be->rflags);
	}
	stdio_out(be);
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
		/* Its own fd number for writing: epoll keys events by fd. */
		be->wfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (be->wfd < 0) {
			close(fd);
			goto fail;
		}
		be->rfd = fd;
		be->wown = true;
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
	be->wown = true;
	be->wfile = true;
	return 0;
fail:
	snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
	return -1;
}

/* ---- input ---- */

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

/* The TCP client left (or its socket failed): ready for the next one. */
static void
tcp_disconnect(struct uart_backend *be)
{
	rx_stop(be);
	if (be->rfd >= 0)
		close(be->rfd);
	be->rfd = -1;
	be->paused = false;
	pthread_mutex_lock(&be->out_lock);
	out_dead(be);
	pthread_mutex_unlock(&be->out_lock);
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
		if (be->tcp) {
			tcp_disconnect(be);
		} else {
			/* EOF (or a hung-up terminal): stop reading, keep
			 * writing. */
			rx_stop(be);
			be->eof = true;
		}
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

/* ---- TCP ---- */

/* One client at a time, as bhyve: the next one is told so and closed. */
static void
tcp_accept(int fd, enum ev_type type, void *arg)
{
	struct uart_backend *be = arg;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), w;

	(void)type;
	if (c < 0)
		return;
	pthread_mutex_lock(&be->in_lock);
	if (be->rfd >= 0 || be->eof) {
		(void)send(c, tcp_busy_msg, sizeof(tcp_busy_msg) - 1,
			   MSG_DONTWAIT | MSG_NOSIGNAL);
		close(c);
		goto out;
	}
	w = fcntl(c, F_DUPFD_CLOEXEC, 0);
	if (w < 0) {
		close(c);
		goto out;
	}
	be->rfd = c;
	be->paused = false;
	rx_start(be);
	pthread_mutex_lock(&be->out_lock);
	be->wfd = w;
	be->wown = true;
	be->wsock = true;
	be->olen = be->ohead = 0;
	pthread_mutex_unlock(&be->out_lock);
out:
	pthread_mutex_unlock(&be->in_lock);
}

/*
 * "ADDR:PORT" or "[V6ADDR]:PORT", numeric both (bhyve's syntax). The
 * listener is made at once so that a taken port is an error at start-up.
 */
static int
open_tcp(struct uart_backend *be, const char *spec, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV |
					     AI_PASSIVE};
	struct addrinfo *ai = NULL;
	char addr[256], port[8], tail;
	int fd = -1, one = 1, rc;

	if (sscanf(spec, "[%255[^]]]:%7[0-9]%c", addr, port, &tail) != 2 &&
	    sscanf(spec, "%255[^:[]:%7[0-9]%c", addr, port, &tail) != 2) {
		snprintf(err, errlen,
			 "tcp=%s: expected tcp=ADDR:PORT (127.0.0.1:4321, "
			 "[::1]:4321)",
			 spec);
		return -1;
	}
	rc = getaddrinfo(addr, port, &hints, &ai);
	if (rc != 0 || atoi(port) < 1 || atoi(port) > 65535) {
		snprintf(err, errlen, "tcp=%s: bad address or port: %s", spec,
			 rc ? gai_strerror(rc) : "want 1-65535");
		if (ai)
			freeaddrinfo(ai);
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	/* A previous run's TIME_WAIT connections must not hold the port. */
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", spec,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	be->tcp = true;
	be->lfd = fd;
	if (be->mev) {
		be->lev = mevent_add(be->mev, fd, EVF_READ, tcp_accept, be);
		if (!be->lev) {
			snprintf(err, errlen, "%s: cannot watch the listener",
				 spec);
			close(fd);
			be->lfd = -1;
			return -1;
		}
	}
	return 0;
}

/* ---- open and close ---- */

static void
be_free(struct uart_backend *be)
{
	pthread_mutex_destroy(&be->in_lock);
	pthread_mutex_destroy(&be->out_lock);
	free(be->obuf);
	free(be);
}

struct uart_backend *
uart_backend_open(const char *name, const char *path, struct uart_softc *sc,
		  struct mevent *mev, char *err, size_t errlen)
{
	struct uart_backend *be = calloc(1, sizeof(*be));
	int rc;

	if (!be || !(be->obuf = malloc(UART_OUTBUF))) {
		snprintf(err, errlen, "out of memory");
		free(be);
		return NULL;
	}
	snprintf(be->name, sizeof(be->name), "%s", name);
	be->sc = sc;
	be->mev = mev;
	be->rfd = be->wfd = be->ttyfd = be->lfd = -1;
	be->filecap = UART_FILE_CAP;
	pthread_mutex_init(&be->in_lock, NULL);
	pthread_mutex_init(&be->out_lock, NULL);
	if (!strcmp(path, "stdio"))
		rc = open_stdio(be, err, errlen);
	else if (!strncmp(path, "tcp=", 4))
		rc = open_tcp(be, path + 4, err, errlen);
	else
		rc = open_path(be, path, err, errlen);
	if (rc < 0) {
		be_free(be);
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
	if (be->lev)
		mevent_delete(be->lev);
	if (be->lfd >= 0)
		close(be->lfd);
	if (be->flush_ev)
		mevent_delete(be->flush_ev);
	pthread_mutex_lock(&be->in_lock);
	rx_stop(be);
	be->eof = true;
	pthread_mutex_unlock(&be->in_lock);

	pthread_mutex_lock(&be->out_lock);
	be->closing = true;
	if (be->wev)
		mevent_delete(be->wev);
	be->wev = NULL;
	out_drain(be);
	if (be->dropped)
		fprintf(stderr,
			"bhyve: %s: %llu bytes of console output were "
			"dropped\n",
			be->name, (unsigned long long)be->dropped);
	if (be->wfd >= 0 && be->wown)
		close(be->wfd);
	be->wfd = -1;
	pthread_mutex_unlock(&be->out_lock);

	if (be->tcp && be->rfd >= 0)
		close(be->rfd);
	if (be->stdio) {
		pthread_mutex_lock(&stdio_claim.lock);
		term_restore(be);
		stdio_claim.owner = NULL;
		pthread_mutex_unlock(&stdio_claim.lock);
	} else {
		term_restore(be);
		if (be->rfd >= 0 && !be->tcp)
			close(be->rfd);
	}
	be_free(be);
}

size_t
uart_backend_pending(struct uart_backend *be)
{
	size_t n;

	pthread_mutex_lock(&be->out_lock);
	n = be->olen;
	pthread_mutex_unlock(&be->out_lock);
	return n;
}

uint64_t
uart_backend_dropped(struct uart_backend *be)
{
	uint64_t n;

	pthread_mutex_lock(&be->out_lock);
	n = be->dropped;
	pthread_mutex_unlock(&be->out_lock);
	return n;
}

int
uart_backend_connected(struct uart_backend *be)
{
	int on;

	pthread_mutex_lock(&be->in_lock);
	on = be->tcp && be->rfd >= 0;
	pthread_mutex_unlock(&be->in_lock);
	return on;
}

void
uart_backend_set_file_cap(struct uart_backend *be, uint64_t bytes)
{
	pthread_mutex_lock(&be->out_lock);
	be->filecap = bytes;
	pthread_mutex_unlock(&be->out_lock);
}
