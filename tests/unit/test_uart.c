/* The 16550 model, its backends and the com1..com4 glue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <time.h>

#include <cmocka.h>

#include "config.h"
#include "inout.h"
#include "machine.h"
#include "mevent.h"
#include "uart_backend.h"
#include "lpc_uart.h"
#include "uart_emul.h"
#include "vmm.h"

/* What the UART told its owner. */
struct rec {
	int level;
	int asserts, deasserts;
	bool coalesce;
	int coalesce_calls;
};

static void
rec_assert(void *arg)
{
	struct rec *r = arg;

	r->level = 1;
	r->asserts++;
}

static void
rec_deassert(void *arg)
{
	struct rec *r = arg;

	r->level = 0;
	r->deasserts++;
}

static void
rec_coalesce(void *arg, bool on)
{
	struct rec *r = arg;

	r->coalesce = on;
	r->coalesce_calls++;
}

struct fx {
	struct rec rec;
	struct uart_softc *sc;
	struct vmctx *ctx;
	struct config *cfg;
	struct machine *m;
	char dir[64];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->sc = uart_init(rec_assert, rec_deassert, &f->rec);
	assert_non_null(f->sc);
	f->ctx = vm_create_mock(16 << 20);
	assert_non_null(f->ctx);
	f->cfg = config_create();
	f->m = machine_create(f->ctx, f->cfg);
	assert_non_null(f->m);
	strcpy(f->dir, "/tmp/test_uart.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	uart_free(f->sc);
	machine_free(f->m);
	config_free(f->cfg);
	vm_close(f->ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
path_in(struct fx *f, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", f->dir, name);
}

static size_t
slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, len - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return (size_t)n;
}

static void
test_reset_values(void **state)
{
	struct fx *f = *state;

	assert_int_equal(uart_read(f->sc, UART_REG_IER), 0);
	assert_int_equal(uart_read(f->sc, UART_REG_IIR), UART_IIR_NOPEND);
	assert_int_equal(uart_read(f->sc, UART_REG_LCR), 0);
	assert_int_equal(uart_read(f->sc, UART_REG_MCR), 0);
	assert_int_equal(uart_read(f->sc, UART_REG_LSR),
			 UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(uart_read(f->sc, UART_REG_MSR),
			 UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
	assert_int_equal(uart_read(f->sc, UART_REG_SCR), 0);
	assert_int_equal(f->rec.asserts, 0);
}

static void
test_scratch(void **state)
{
	struct fx *f = *state;

	uart_write(f->sc, UART_REG_SCR, 0x5a);
	assert_int_equal(uart_read(f->sc, UART_REG_SCR), 0x5a);
	uart_write(f->sc, UART_REG_SCR, 0xa5);
	assert_int_equal(uart_read(f->sc, UART_REG_SCR), 0xa5);
}

static void
test_dlab_divisor(void **state)
{
	struct fx *f = *state;

	uart_write(f->sc, UART_REG_LCR, UART_LCR_DLAB | 0x03);
	assert_int_equal(uart_read(f->sc, UART_REG_DATA), 1); /* 115200 */
	assert_int_equal(uart_read(f->sc, UART_REG_IER), 0);
	uart_write(f->sc, UART_REG_DATA, 0x0c);
	uart_write(f->sc, UART_REG_IER, 0x01);
	assert_int_equal(uart_read(f->sc, UART_REG_DATA), 0x0c);
	assert_int_equal(uart_read(f->sc, UART_REG_IER), 0x01);
	uart_write(f->sc, UART_REG_LCR, 0x03);
	/* The divisor writes touched neither IER nor the receiver. */
	assert_int_equal(uart_read(f->sc, UART_REG_IER), 0);
	assert_int_equal(uart_read(f->sc, UART_REG_LSR) & UART_LSR_DR, 0);
	assert_int_equal(uart_read(f->sc, UART_REG_LCR), 0x03);
	uart_write(f->sc, UART_REG_LCR, UART_LCR_DLAB);
	assert_int_equal(uart_read(f->sc, UART_REG_DATA), 0x0c);
	assert_int_equal(uart_read(f->sc, UART_REG_IER), 0x01);
}

static void
test_fifo_fill_overflow(void **state)
{
	struct fx *f = *state;
	uint8_t buf[20];

	for (int i = 0; i < 20; i++)
		buf[i] = 'a' + i;
	uart_write(f->sc, UART_REG_IIR, UART_FCR_ENABLE);
	assert_int_equal(uart_read(f->sc, UART_REG_IIR) & UART_IIR_FIFO,
			 UART_IIR_FIFO);
	assert_int_equal(uart_rx_room(f->sc), UART_FIFO_SIZE);
	assert_int_equal(uart_rx(f->sc, buf, 20), UART_FIFO_SIZE);
	assert_int_equal(uart_rx_room(f->sc), 0);
	assert_int_equal(uart_read(f->sc, UART_REG_LSR),
			 UART_LSR_THRE | UART_LSR_TEMT | UART_LSR_DR |
			     UART_LSR_OE);
	/* OE is cleared by the read that reported it. */
	assert_int_equal(uart_read(f->sc, UART_REG_LSR) & UART_LSR_OE, 0);
	for (int i = 0; i < UART_FIFO_SIZE; i++)
		assert_int_equal(uart_read(f->sc, UART_REG_DATA), 'a' + i);
	assert_int_equal(uart_read(f->sc, UART_REG_LSR) & UART_LSR_DR, 0);
	/* Empty: RBR repeats the last byte, a defined value. */
	assert_int_equal(uart_read(f->sc, UART_REG_DATA), 'a' + 15);
}

static void
test_fifo_reset_and_16450(void **state)
{
	struct fx *f = *state;
	const uint8_t two[2] = {'x', 'y'};

	/* 16450 mode: a one-byte holding register. */
	assert_int_equal(uart_rx_room(f->sc), 1);
	assert_int_equal(uart_rx(f->sc, two, 2), 1);
	assert_true(uart_read(f->sc, UART_REG_LSR) & UART_LSR_OE);
	assert_int_equal(uart_read(f->sc, UART_REG_DATA), 'x');
	/* Enabling the FIFOs empties them; so does RX reset. */
	uart_rx(f->sc, two, 1);
	uart_write(f->sc, UART_REG_IIR, UART_FCR_ENABLE);
	assert_int_equal(uart_read(f->sc, UART_REG_LSR) & UART_LSR_DR, 0);
	uart_rx(f->sc, two, 2);
	uart_write(f->sc, UART_REG_IIR, UART_FCR_ENABLE | UART_FCR_RX_RST);
	assert_int_equal(uart_read(f->sc, UART_REG_LSR) & UART_LSR_DR, 0);
	assert_int_equal(uart_rx_room(f->sc), UART_FIFO_SIZE);
	/* FCR bits other than enable are ignored without it. */
	uart_write(f->sc, UART_REG_IIR, 0xc0);
	assert_int_equal(uart_read(f->sc, UART_REG_IIR), UART_IIR_NOPEND);
	assert_int_equal(uart_rx_room(f->sc), 1);
}

static void
test_trigger_level(void **state)
{
	struct fx *f = *state;
	uint8_t buf[14] = {0};

	uart_write(f->sc, UART_REG_IER, UART_IER_ERBFI);
	uart_write(f->sc, UART_REG_IIR, UART_FCR_ENABLE | 0xc0); /* 14 */
	uart_rx(f->sc, buf, 4);
	assert_int_equal(uart_read(f->sc, UART_REG_IIR),
			 UART_IIR_FIFO | UART_IIR_RXTOUT);
	uart_rx(f->sc, buf, 10);
	assert_int_equal(uart_read(f->sc, UART_REG_IIR),
			 UART_IIR_FIFO | UART_IIR_RXRDY);
	uart_write(f->sc, UART_REG_IIR, UART_FCR_ENABLE | 0x40); /* 4 */
	assert_int_equal(uart_read(f->sc, UART_REG_IIR),
			 UART_IIR_FIFO | UART_IIR_RXRDY);
}

static void
test_iir_priority(void **state)
{
	struct fx *f = *state;
	uint8_t buf[17] = {0};

	uart_write(f->sc, UART_REG_IIR, UART_FCR_ENABLE);
	/* A modem status change: into loopback and out again. */
	uart_write(f->sc, UART_REG_MCR, UART_MCR_LOOP);
	uart_write(f->sc, UART_REG_MCR, UART_MCR_OUT2);
	uart_rx(f->sc, buf, 17); /* data and an overrun */
	uart_write(f->sc, UART_REG_IER, 0x0f);
	assert_int_equal(f->rec.level, 1);

	assert_int_equal(uart_read(f->sc, UART_REG_IIR) & 0x0f, UART_IIR_RLS);
	uart_read(f->sc, UART_REG_LSR);
	assert_int_equal(uart_read(f->sc, UART_REG_IIR) & 0x0f, UART_IIR_RXRDY);
	for (int i = 0; i < 16; i++)
		uart_read(f->sc, UART_REG_DATA);
	assert_int_equal(uart_read(f->sc, UART_REG_IIR) & 0x0f, UART_IIR_TXRDY);
	/* That read cleared THR empty: modem status is next. */
	assert_int_equal(uart_read(f->sc, UART_REG_IIR) & 0x0f, UART_IIR_MLSC);
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(uart_read(f->sc, UART_REG_MSR) & 0x0f,
			 UART_MSR_DCTS | UART_MSR_DDSR | UART_MSR_DDCD);
	assert_int_equal(uart_read(f->sc, UART_REG_IIR),
			 UART_IIR_FIFO | UART_IIR_NOPEND);
	assert_int_equal(f->rec.level, 0);
	/* One rising edge for the whole episode: the line never dropped. */
	assert_int_equal(f->rec.asserts, 1);
	assert_int_equal(f->rec.deasserts, 1);
}

static void
test_thre_interrupt(void **state)
{
	struct fx *f = *state;

	uart_write(f->sc, UART_REG_MCR, UART_MCR_OUT2);
	assert_int_equal(f->rec.asserts, 0);
	/* Enabling ETBEI with THR empty raises it. */
	uart_write(f->sc, UART_REG_IER, UART_IER_ETBEI);
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(f->rec.asserts, 1);
	/* The IIR read that reports it clears it. */
	assert_int_equal(uart_read(f->sc, UART_REG_IIR), UART_IIR_TXRDY);
	assert_int_equal(f->rec.level, 0);
	assert_int_equal(uart_read(f->sc, UART_REG_IIR), UART_IIR_NOPEND);
	/* A THR write empties at once and raises it again: a new edge. */
	uart_write(f->sc, UART_REG_DATA, 'z');
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(f->rec.asserts, 2);
	/* Writing IER with ETBEI already set does not re-raise. */
	assert_int_equal(uart_read(f->sc, UART_REG_IIR), UART_IIR_TXRDY);
	uart_write(f->sc, UART_REG_IER, UART_IER_ETBEI);
	assert_int_equal(f->rec.level, 0);
	/* Cleared again by clearing and setting ETBEI. */
	uart_write(f->sc, UART_REG_IER, 0);
	uart_write(f->sc, UART_REG_IER, UART_IER_ETBEI);
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(f->rec.asserts, 3);
	/* OUT2 clear: the IIR still reports, the line stays low. */
	uart_write(f->sc, UART_REG_MCR, 0);
	assert_int_equal(f->rec.level, 0);
	assert_int_equal(uart_read(f->sc, UART_REG_IIR), UART_IIR_TXRDY);
}

static void
test_loopback(void **state)
{
	struct fx *f = *state;
	char path[128], out[64];
	char err[256];
	struct uart_backend *be;
	const uint8_t in = 'q';

	path_in(f, "out", path, sizeof(path));
	be = uart_backend_open("com1", path, f->sc, NULL, err, sizeof(err));
	assert_non_null(be);
	uart_set_backend(f->sc, be);

	uart_write(f->sc, UART_REG_MCR, UART_MCR_LOOP);
	uart_write(f->sc, UART_REG_DATA, 'A');
	assert_true(uart_read(f->sc, UART_REG_LSR) & UART_LSR_DR);
	assert_int_equal(uart_read(f->sc, UART_REG_DATA), 'A');
	/* A second byte without reading overruns the 16450 holding reg. */
	uart_write(f->sc, UART_REG_DATA, 'B');
	uart_write(f->sc, UART_REG_DATA, 'C');
	assert_true(uart_read(f->sc, UART_REG_LSR) & UART_LSR_OE);
	assert_int_equal(uart_read(f->sc, UART_REG_DATA), 'B');
	/* The line is disconnected: input is dropped, room unbounded. */
	assert_int_equal(uart_rx(f->sc, &in, 1), 1);
	assert_int_equal(uart_read(f->sc, UART_REG_LSR) & UART_LSR_DR, 0);
	assert_true(uart_rx_room(f->sc) > UART_FIFO_SIZE);

	/* Modem outputs loop to the inputs. */
	uart_read(f->sc, UART_REG_MSR);
	uart_write(f->sc, UART_REG_MCR,
		   UART_MCR_LOOP | UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT1 |
		       UART_MCR_OUT2);
	assert_int_equal(uart_read(f->sc, UART_REG_MSR),
			 UART_MSR_CTS | UART_MSR_DSR | UART_MSR_RI |
			     UART_MSR_DCD | UART_MSR_DCTS | UART_MSR_DDSR |
			     UART_MSR_DDCD);
	/* Deltas are gone after the read; RI falling sets TERI only. */
	uart_write(f->sc, UART_REG_MCR,
		   UART_MCR_LOOP | UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
	assert_int_equal(uart_read(f->sc, UART_REG_MSR),
			 UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD |
			     UART_MSR_TERI);
	assert_int_equal(uart_read(f->sc, UART_REG_MSR) & 0x0f, 0);

	/* Nothing reached the backend. */
	uart_flush(f->sc);
	assert_int_equal(slurp(path, out, sizeof(out)), 0);
	uart_set_backend(f->sc, NULL);
	uart_backend_close(be);
}

static void
test_coalesce_hook(void **state)
{
	struct fx *f = *state;

	uart_set_coalesce(f->sc, rec_coalesce);
	assert_int_equal(f->rec.coalesce_calls, 1);
	assert_true(f->rec.coalesce);
	uart_write(f->sc, UART_REG_IER, UART_IER_ETBEI);
	assert_false(f->rec.coalesce);
	uart_write(f->sc, UART_REG_IER, UART_IER_ERBFI);
	assert_true(f->rec.coalesce);
	uart_write(f->sc, UART_REG_LCR, UART_LCR_DLAB);
	assert_false(f->rec.coalesce);
	uart_write(f->sc, UART_REG_LCR, 0x03);
	assert_true(f->rec.coalesce);
	uart_write(f->sc, UART_REG_MCR, UART_MCR_LOOP);
	assert_false(f->rec.coalesce);
	uart_write(f->sc, UART_REG_MCR, 0);
	assert_true(f->rec.coalesce);
	/* Only changes are reported. */
	uart_write(f->sc, UART_REG_SCR, 1);
	assert_int_equal(f->rec.coalesce_calls, 7);
}

static void
test_bad_offsets(void **state)
{
	struct fx *f = *state;

	assert_int_equal(uart_read(f->sc, 8), 0xff);
	assert_int_equal(uart_read(f->sc, -1), 0xff);
	assert_int_equal(uart_read(f->sc, 1000), 0xff);
	uart_write(f->sc, 8, 0x12);
	uart_write(f->sc, -5, 0x12);
	/* Read-only registers ignore writes. */
	uart_write(f->sc, UART_REG_LSR, 0xff);
	uart_write(f->sc, UART_REG_MSR, 0x00);
	assert_int_equal(uart_read(f->sc, UART_REG_LSR),
			 UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(uart_read(f->sc, UART_REG_MSR), 0xb0);
	/* Reserved bits of IER and MCR read as zero. */
	uart_write(f->sc, UART_REG_IER, 0xff);
	assert_int_equal(uart_read(f->sc, UART_REG_IER), 0x0f);
	uart_write(f->sc, UART_REG_MCR, 0xe0);
	assert_int_equal(uart_read(f->sc, UART_REG_MCR), 0);
}

static void
test_output_file(void **state)
{
	struct fx *f = *state;
	char path[128], out[8192], err[256];
	struct uart_backend *be;

	path_in(f, "console", path, sizeof(path));
	be = uart_backend_open("com1", path, f->sc, NULL, err, sizeof(err));
	assert_non_null(be);
	uart_set_backend(f->sc, be);
	uart_write(f->sc, UART_REG_DATA, 'h');
	uart_write(f->sc, UART_REG_DATA, 'i');
	/* Buffered until a newline... */
	assert_int_equal(slurp(path, out, sizeof(out)), 0);
	uart_write(f->sc, UART_REG_DATA, '\n');
	assert_int_equal(slurp(path, out, sizeof(out)), 3);
	assert_string_equal(out, "hi\n");
	/* ...or a flush (a prompt), or a full buffer. */
	uart_write(f->sc, UART_REG_DATA, '#');
	uart_flush(f->sc);
	assert_string_equal(out, "hi\n");
	slurp(path, out, sizeof(out));
	assert_string_equal(out, "hi\n#");
	for (int i = 0; i < 5000; i++)
		uart_write(f->sc, UART_REG_DATA, 'x');
	assert_true(slurp(path, out, sizeof(out)) >= 4096);
	uart_set_backend(f->sc, NULL);
	uart_backend_close(be); /* flushes the rest */
	assert_int_equal(slurp(path, out, sizeof(out)), 5004);
}

static void
test_input_fifo_flow_control(void **state)
{
	struct fx *f = *state;
	char path[128], err[256];
	struct uart_backend *be;
	int wfd;

	path_in(f, "fifo", path, sizeof(path));
	assert_int_equal(mkfifo(path, 0600), 0);
	be = uart_backend_open("com1", path, f->sc, NULL, err, sizeof(err));
	assert_non_null(be);
	uart_set_backend(f->sc, be);
	wfd = open(path, O_WRONLY | O_NONBLOCK);
	assert_true(wfd >= 0);
	assert_int_equal(write(wfd, "xyz", 3), 3);

	/* 16450 mode: one byte fits; the backend then waits. */
	uart_backend_rx_poll(be);
	assert_int_equal(uart_rx_room(f->sc), 0);
	uart_backend_rx_poll(be); /* pauses, reads nothing */
	assert_false(uart_read(f->sc, UART_REG_LSR) & UART_LSR_OE);
	assert_int_equal(uart_read(f->sc, UART_REG_DATA), 'x');
	uart_backend_rx_poll(be); /* resumed by the read */
	assert_int_equal(uart_read(f->sc, UART_REG_DATA), 'y');
	uart_write(f->sc, UART_REG_IIR, UART_FCR_ENABLE);
	uart_backend_rx_poll(be);
	assert_int_equal(uart_read(f->sc, UART_REG_DATA), 'z');
	/* Nothing more: EAGAIN, not EOF. */
	uart_backend_rx_poll(be);
	assert_int_equal(uart_read(f->sc, UART_REG_LSR) & UART_LSR_DR, 0);
	close(wfd);
	uart_set_backend(f->sc, NULL);
	uart_backend_close(be);
}

static void *
loop_thread(void *arg)
{
	mevent_dispatch(arg);
	return NULL;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {0, ms * 1000000L};

	nanosleep(&ts, NULL);
}

/* Input through the real event loop: 40 bytes through a 1-byte FIFO. */
static void
test_input_event_loop(void **state)
{
	struct fx *f = *state;
	struct mevent *mev = mevent_create();
	char path[128], err[256], got[41] = {0};
	const char *msg = "the quick brown fox jumps over the lazy!";
	struct uart_backend *be;
	pthread_t t;
	int wfd, n = 0;

	assert_non_null(mev);
	path_in(f, "fifo", path, sizeof(path));
	assert_int_equal(mkfifo(path, 0600), 0);
	be = uart_backend_open("com1", path, f->sc, mev, err, sizeof(err));
	assert_non_null(be);
	uart_set_backend(f->sc, be);
	wfd = open(path, O_WRONLY | O_NONBLOCK);
	assert_true(wfd >= 0);
	assert_int_equal(write(wfd, msg, 40), 40);
	assert_int_equal(pthread_create(&t, NULL, loop_thread, mev), 0);
	for (int tries = 0; n < 40 && tries < 5000; tries++) {
		if (uart_read(f->sc, UART_REG_LSR) & UART_LSR_DR)
			got[n++] = (char)uart_read(f->sc, UART_REG_DATA);
		else
			sleep_ms(1);
	}
	assert_string_equal(got, msg);
	assert_false(uart_read(f->sc, UART_REG_LSR) & UART_LSR_OE);
	mevent_stop(mev);
	pthread_join(t, NULL);
	close(wfd);
	uart_set_backend(f->sc, NULL);
	uart_backend_close(be);
	mevent_free(mev);
}

/* A partial line (a prompt) reaches the file from the flush timer. */
static void
test_flush_timer(void **state)
{
	struct fx *f = *state;
	struct mevent *mev = mevent_create();
	char path[128], err[256], out[16] = "";
	struct uart_backend *be;
	pthread_t t;

	assert_non_null(mev);
	path_in(f, "prompt", path, sizeof(path));
	be = uart_backend_open("com1", path, f->sc, mev, err, sizeof(err));
	assert_non_null(be);
	uart_set_backend(f->sc, be);
	assert_int_equal(pthread_create(&t, NULL, loop_thread, mev), 0);
	uart_write(f->sc, UART_REG_DATA, '#');
	uart_write(f->sc, UART_REG_DATA, ' ');
	for (int tries = 0; tries < 1000 && !out[0]; tries++) {
		sleep_ms(1);
		slurp(path, out, sizeof(out));
	}
	assert_string_equal(out, "# ");
	mevent_stop(mev);
	pthread_join(t, NULL);
	uart_set_backend(f->sc, NULL);
	uart_backend_close(be);
	mevent_free(mev);
}

static void
test_backend_errors(void **state)
{
	struct fx *f = *state;
	struct uart_softc *sc2 = uart_init(rec_assert, rec_deassert, &f->rec);
	struct uart_backend *be, *be2;
	char err[256];

	be = uart_backend_open("com1", "/nonexistent/dir/tty", f->sc, NULL, err,
			       sizeof(err));
	assert_null(be);
	assert_non_null(strstr(err, "/nonexistent/dir/tty"));
	be = uart_backend_open("com1", f->dir, f->sc, NULL, err, sizeof(err));
	assert_null(be);
	assert_non_null(strstr(err, f->dir));

	be = uart_backend_open("com1", "stdio", f->sc, NULL, err, sizeof(err));
	assert_non_null(be);
	be2 = uart_backend_open("com2", "stdio", sc2, NULL, err, sizeof(err));
	assert_null(be2);
	assert_non_null(strstr(err, "stdio"));
	assert_null(strchr(err, '\n'));
	uart_backend_close(be);
	/* Free again once released. */
	be2 = uart_backend_open("com2", "stdio", sc2, NULL, err, sizeof(err));
	assert_non_null(be2);
	uart_backend_close(be2);
	uart_free(sc2);
}

static void
test_lpc_com1(void **state)
{
	struct fx *f = *state;
	const struct lpc_dev *d = lpc_dev_find("com1");
	char path[128], opts[160], out[64], err[256];
	uint32_t v;

	assert_non_null(d);
	path_in(f, "com1.log", path, sizeof(path));
	snprintf(opts, sizeof(opts), "%s,foo=bar", path);
	assert_int_equal(d->parse(f->cfg, "com1", opts, err, sizeof(err)), 0);
	assert_string_equal(config_get(f->cfg, "lpc.com1.path"), path);
	assert_string_equal(config_get(f->cfg, "lpc.com1.foo"), "bar");
	assert_int_equal(d->init(f->ctx, d), 0);
	assert_non_null(lpc_uart_softc(f->ctx, "com1"));
	assert_string_equal(inout_owner(f->ctx, 0x3ff), "com1");

	v = 0x07;
	assert_int_equal(inout_dispatch(f->ctx, 0, 0x3fc, 1, &v), 0);
	assert_int_equal(inout_dispatch(f->ctx, 1, 0x3fc, 1, &v), 0);
	assert_int_equal(v, 0x07);
	v = UART_MCR_OUT2;
	inout_dispatch(f->ctx, 0, 0x3fc, 1, &v);
	v = UART_IER_ETBEI;
	inout_dispatch(f->ctx, 0, 0x3f9, 1, &v);
	assert_int_equal(vm_mock_irq_level(f->ctx, 4), 1);
	assert_int_equal(vm_mock_irq_pulses(f->ctx, 4), 1);
	inout_dispatch(f->ctx, 1, 0x3fa, 1, &v);
	assert_int_equal(v, UART_IIR_TXRDY);
	assert_int_equal(vm_mock_irq_level(f->ctx, 4), 0);

	v = 'o';
	inout_dispatch(f->ctx, 0, 0x3f8, 1, &v);
	v = 'k';
	inout_dispatch(f->ctx, 0, 0x3f8, 1, &v);
	lpc_uart_flush_all(f->ctx);
	slurp(path, out, sizeof(out));
	assert_string_equal(out, "ok");

	/* Wider accesses are not emulated: defined all-ones, -1. */
	v = 0;
	assert_int_equal(inout_dispatch(f->ctx, 1, 0x3f8, 4, &v), -1);
	assert_int_equal(v, 0xffffffff);
	v = 0x41414141;
	assert_int_equal(inout_dispatch(f->ctx, 0, 0x3f8, 2, &v), -1);
	lpc_uart_flush_all(f->ctx);
	slurp(path, out, sizeof(out));
	assert_string_equal(out, "ok");
}

static void
test_lpc_com2_nopath_and_errors(void **state)
{
	struct fx *f = *state;
	const struct lpc_dev *d2 = lpc_dev_find("com2");
	const struct lpc_dev *d3 = lpc_dev_find("com3");
	char err[256];
	uint32_t v;

	assert_non_null(d2);
	assert_non_null(d3);
	assert_int_equal(d2->parse(f->cfg, "com2", "", err, sizeof(err)), 0);
	assert_non_null(config_node(f->cfg, "lpc.com2"));
	assert_int_equal(d2->init(f->ctx, d2), 0);
	/* No backend: output is dropped, registers still work. */
	v = 'x';
	assert_int_equal(inout_dispatch(f->ctx, 0, 0x2f8, 1, &v), 0);
	v = UART_MCR_OUT2;
	inout_dispatch(f->ctx, 0, 0x2fc, 1, &v);
	v = UART_IER_ETBEI;
	inout_dispatch(f->ctx, 0, 0x2f9, 1, &v);
	assert_int_equal(vm_mock_irq_level(f->ctx, 3), 1);
	lpc_uart_flush_all(f->ctx);

	assert_int_equal(config_set(f->cfg, "lpc.com3.path", "/nonexistent/x",
				    err, sizeof(err)),
			 0);
	assert_int_equal(d3->init(f->ctx, d3), -1);
	assert_null(lpc_uart_softc(f->ctx, "com3"));
	assert_null(inout_owner(f->ctx, 0x3e8));
}

/* ---- output that nobody reads: the bound, the drop count, no waiting ---- */

/* Send stderr to a file while a test looks at bhyve's messages. */
static int
stderr_to(const char *path)
{
	int saved, fd;

	fflush(stderr);
	saved = dup(STDERR_FILENO);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	return saved;
}

static void
stderr_back(int saved)
{
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
}

static int
count_of(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The byte the guest sends i-th: a pattern a gap or a reorder breaks. */
static uint8_t
seq(size_t i)
{
	return (uint8_t)(i % 251);
}

/* Read what the pipe holds now; check it continues the pattern at *at. */
static size_t
drain_pipe(int fd, size_t *at)
{
	uint8_t buf[8192];
	size_t got = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal(buf[i], seq(*at + (size_t)i));
		*at += (size_t)n;
		got += (size_t)n;
	}
	return got;
}

/*
 * bhyve's stdout is the harness's pipe (as hvtest runs it), and its reader
 * stops reading: THR writes still return at once, 64 KiB are kept, the
 * rest is counted and said once; when the reader comes back it gets the
 * kept bytes in order, and close reports the total once.
 */
struct stdio_pipe {
	int p[2];
	int saved_in, saved_out, saved_err;
};

static void
stdio_pipe_begin(struct fx *f, struct stdio_pipe *sp)
{
	char errpath[128];
	int nul = open("/dev/null", O_RDONLY);

	assert_int_equal(pipe(sp->p), 0);
	assert_int_equal(fcntl(sp->p[0], F_SETFL, O_NONBLOCK), 0);
	fflush(stdout);
	sp->saved_in = dup(STDIN_FILENO);
	sp->saved_out = dup(STDOUT_FILENO);
	assert_true(nul >= 0 && sp->saved_in >= 0 && sp->saved_out >= 0);
	dup2(nul, STDIN_FILENO);
	close(nul);
	dup2(sp->p[1], STDOUT_FILENO);
	path_in(f, "stderr", errpath, sizeof(errpath));
	sp->saved_err = stderr_to(errpath);
}

static void
stdio_pipe_end(struct fx *f, struct stdio_pipe *sp, char *err, size_t len)
{
	char errpath[128];

	stderr_back(sp->saved_err);
	dup2(sp->saved_out, STDOUT_FILENO);
	dup2(sp->saved_in, STDIN_FILENO);
	close(sp->saved_out);
	close(sp->saved_in);
	close(sp->p[0]);
	close(sp->p[1]);
	path_in(f, "stderr", errpath, sizeof(errpath));
	slurp(errpath, err, len);
}

static void
test_stalled_reader_bound(void **state)
{
	struct fx *f = *state;
	const size_t total = 256 * 1024;
	struct stdio_pipe sp;
	struct uart_backend *be;
	char err[4096], msg[256];
	size_t at = 0, first, second;
	uint64_t dropped;
	double t0, took;

	stdio_pipe_begin(f, &sp);
	be = uart_backend_open("com1", "stdio", f->sc, NULL, msg, sizeof(msg));
	assert_non_null(be);
	uart_set_backend(f->sc, be);
	/* The stdio backend has its own description of the pipe: ours (and
	 * stderr, were it this pipe) stay blocking. */
	assert_false(fcntl(STDOUT_FILENO, F_GETFL) & O_NONBLOCK);

	t0 = now_s();
	for (size_t i = 0; i < total; i++)
		uart_write(f->sc, UART_REG_DATA, seq(i));
	took = now_s() - t0;
	assert_true(took < 5.0); /* never waited for the reader */
	assert_int_equal(uart_backend_pending(be), UART_OUTBUF);
	dropped = uart_backend_dropped(be);
	assert_true(dropped > 0);
	/* The guest saw an empty transmitter all along. */
	assert_int_equal(uart_read(f->sc, UART_REG_LSR),
			 UART_LSR_THRE | UART_LSR_TEMT);

	/* The reader comes back: the pipe, then the kept 64 KiB, in order. */
	first = drain_pipe(sp.p[0], &at);
	assert_true(first > 0);
	uart_backend_flush(be);
	second = drain_pipe(sp.p[0], &at);
	assert_true(second > 0);
	for (int i = 0; i < 20 && uart_backend_pending(be) > 0; i++) {
		uart_backend_flush(be);
		second += drain_pipe(sp.p[0], &at);
	}
	assert_int_equal(uart_backend_pending(be), 0);
	assert_int_equal(second, UART_OUTBUF);
	assert_int_equal(first + second + dropped, total);

	/* Stalled again at close: what is left is dropped, not waited for. */
	for (size_t i = 0; i < total; i++)
		uart_write(f->sc, UART_REG_DATA, 'z');
	assert_int_equal(uart_backend_pending(be), UART_OUTBUF);
	dropped = uart_backend_dropped(be) + UART_OUTBUF;
	t0 = now_s();
	uart_set_backend(f->sc, NULL);
	uart_backend_close(be);
	assert_true(now_s() - t0 < 3.0);
	stdio_pipe_end(f, &sp, err, sizeof(err));

	assert_int_equal(count_of(err, "is not reading"), 1);
	assert_int_equal(count_of(err, "were dropped"), 1);
	assert_non_null(strstr(err, "com1"));
	snprintf(msg, sizeof(msg), "%llu bytes", (unsigned long long)dropped);
	assert_non_null(strstr(err, msg));
}

/*
 * The same with the event loop running: its timers keep firing while the
 * pipe is full, and when the reader drains the pipe the loop writes the
 * kept bytes by itself (an EVF_WRITE event), none lost.
 */
static int timer_ticks;

static void
tick(int fd, enum ev_type type, void *arg)
{
	(void)fd;
	(void)type;
	(void)arg;
	__atomic_add_fetch(&timer_ticks, 1, __ATOMIC_RELAXED);
}

static void
test_stalled_reader_event_loop(void **state)
{
	struct fx *f = *state;
	const size_t total = 200 * 1024;
	struct mevent *mev = mevent_create();
	struct stdio_pipe sp;
	struct uart_backend *be;
	char err[4096], msg[256];
	size_t at = 0;
	uint64_t dropped;
	struct mevent_ev *tev;
	pthread_t t;
	int ticks;

	assert_non_null(mev);
	stdio_pipe_begin(f, &sp);
	be = uart_backend_open("com1", "stdio", f->sc, mev, msg, sizeof(msg));
	assert_non_null(be);
	uart_set_backend(f->sc, be);
	tev = mevent_add(mev, 5, EVF_TIMER, tick, NULL);
	assert_non_null(tev);
	assert_int_equal(pthread_create(&t, NULL, loop_thread, mev), 0);

	for (size_t i = 0; i < total; i++)
		uart_write(f->sc, UART_REG_DATA, seq(i));
	dropped = uart_backend_dropped(be);
	assert_true(dropped > 0);
	ticks = __atomic_load_n(&timer_ticks, __ATOMIC_RELAXED);
	sleep_ms(100);
	assert_true(__atomic_load_n(&timer_ticks, __ATOMIC_RELAXED) > ticks);

	/* Read as a harness does; the loop refills the pipe. */
	for (int tries = 0; tries < 5000 && at < total - dropped; tries++) {
		if (!drain_pipe(sp.p[0], &at))
			sleep_ms(1);
	}
	assert_int_equal(at, total - dropped);
	assert_int_equal(uart_backend_pending(be), 0);

	mevent_stop(mev);
	pthread_join(t, NULL);
	mevent_delete(tev);
	uart_set_backend(f->sc, NULL);
	uart_backend_close(be);
	mevent_free(mev);
	stdio_pipe_end(f, &sp, err, sizeof(err));
	assert_int_equal(count_of(err, "is not reading"), 1);
	assert_int_equal(count_of(err, "were dropped"), 1);
}

/* A reader that keeps up loses nothing, however much the guest sends. */
static void
test_reader_keeps_up(void **state)
{
	struct fx *f = *state;
	const size_t total = 1024 * 1024;
	struct mevent *mev = mevent_create();
	struct stdio_pipe sp;
	struct uart_backend *be;
	char err[4096] = "", msg[256];
	size_t at = 0;
	pthread_t t;

	assert_non_null(mev);
	stdio_pipe_begin(f, &sp);
	be = uart_backend_open("com1", "stdio", f->sc, mev, msg, sizeof(msg));
	assert_non_null(be);
	uart_set_backend(f->sc, be);
	assert_int_equal(pthread_create(&t, NULL, loop_thread, mev), 0);
	for (size_t i = 0; i < total; i++) {
		uart_write(f->sc, UART_REG_DATA, seq(i));
		if (i % 4096 == 0)
			drain_pipe(sp.p[0], &at);
	}
	for (int tries = 0; tries < 5000 && at < total; tries++) {
		if (!drain_pipe(sp.p[0], &at))
			sleep_ms(1);
	}
	assert_int_equal(at, total);
	assert_int_equal(uart_backend_dropped(be), 0);
	mevent_stop(mev);
	pthread_join(t, NULL);
	uart_set_backend(f->sc, NULL);
	uart_backend_close(be);
	mevent_free(mev);
	stdio_pipe_end(f, &sp, err, sizeof(err));
	assert_null(strstr(err, "dropped"));
}

/* A console file stops at its cap, and says so once. */
static void
test_output_file_cap(void **state)
{
	struct fx *f = *state;
	char path[128], out[8192], err[1024], errpath[128];
	struct uart_backend *be;
	int saved;

	path_in(f, "capped", path, sizeof(path));
	path_in(f, "stderr", errpath, sizeof(errpath));
	be = uart_backend_open("com2", path, f->sc, NULL, err, sizeof(err));
	assert_non_null(be);
	uart_backend_set_file_cap(be, 1000);
	uart_set_backend(f->sc, be);
	saved = stderr_to(errpath);
	for (int i = 0; i < 5000; i++)
		uart_write(f->sc, UART_REG_DATA, i % 50 == 49 ? '\n' : 'c');
	uart_set_backend(f->sc, NULL);
	uart_backend_close(be);
	stderr_back(saved);
	assert_int_equal(slurp(path, out, sizeof(out)), 1000);
	slurp(errpath, err, sizeof(err));
	assert_int_equal(count_of(err, "reached its cap of 1000 bytes"), 1);
	assert_non_null(strstr(err, "com2"));
}

/* ---- tcp=ADDR:PORT ---- */

/* A port that was free a moment ago. */
static int
free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static int
tcp_connect(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* Up to 5 s for n bytes (or EOF) from fd; NUL-terminated. */
static size_t
tcp_read(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (poll(&pfd, 1, 5000) <= 0)
			break;
		r = read(fd, buf + got, n - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	return got;
}

static void
wait_connected(struct uart_backend *be, int want)
{
	for (int i = 0; i < 5000 && uart_backend_connected(be) != want; i++)
		sleep_ms(1);
	assert_int_equal(uart_backend_connected(be), want);
}

static void
uart_puts(struct uart_softc *sc, const char *s)
{
	while (*s)
		uart_write(sc, UART_REG_DATA, (uint8_t)*s++);
}

static void
test_tcp_backend(void **state)
{
	struct fx *f = *state;
	struct mevent *mev = mevent_create();
	struct uart_backend *be;
	char spec[64], err[256], buf[128];
	int port = free_port(), c1, c2, c3;
	pthread_t t;

	assert_non_null(mev);
	snprintf(spec, sizeof(spec), "tcp=127.0.0.1:%d", port);
	be = uart_backend_open("com1", spec, f->sc, mev, err, sizeof(err));
	assert_non_null(be);
	uart_set_backend(f->sc, be);
	assert_int_equal(pthread_create(&t, NULL, loop_thread, mev), 0);

	/* Nobody connected: the bytes go nowhere, uncounted (as bhyve). */
	uart_puts(f->sc, "lost\n");
	assert_int_equal(uart_backend_dropped(be), 0);

	c1 = tcp_connect(port);
	wait_connected(be, 1);
	uart_puts(f->sc, "hello\n");
	assert_int_equal(tcp_read(c1, buf, 6), 6);
	assert_string_equal(buf, "hello\n");
	/* Raw bytes in: the guest reads what the client typed. */
	assert_int_equal(write(c1, "k", 1), 1);
	for (int i = 0;
	     i < 5000 && !(uart_read(f->sc, UART_REG_LSR) & UART_LSR_DR); i++)
		sleep_ms(1);
	assert_int_equal(uart_read(f->sc, UART_REG_DATA), 'k');

	/* One client at a time: a second is told so and closed. */
	c2 = tcp_connect(port);
	assert_int_equal(tcp_read(c2, buf, sizeof(buf) - 1),
			 strlen("Socket already connected\n"));
	assert_string_equal(buf, "Socket already connected\n");
	close(c2);
	assert_int_equal(uart_backend_connected(be), 1);

	/* The first leaves; the next one is served. */
	close(c1);
	wait_connected(be, 0);
	c3 = tcp_connect(port);
	wait_connected(be, 1);
	uart_puts(f->sc, "again\n");
	assert_int_equal(tcp_read(c3, buf, 6), 6);
	assert_string_equal(buf, "again\n");

	mevent_stop(mev);
	pthread_join(t, NULL);
	uart_set_backend(f->sc, NULL);
	uart_backend_close(be);
	mevent_free(mev);
	/* Closed with bhyve: the client sees EOF. */
	assert_int_equal(tcp_read(c3, buf, sizeof(buf) - 1), 0);
	close(c3);
}

static void
test_tcp_errors(void **state)
{
	struct fx *f = *state;
	static const char *bad[] = {
	    "tcp=",
	    "tcp=127.0.0.1",
	    "tcp=127.0.0.1:",
	    "tcp=127.0.0.1:0",
	    "tcp=127.0.0.1:65536",
	    "tcp=localhost:22x",
	    "tcp=::1:4000",
	    "tcp=[::1]:",
	    "tcp=1.2.3.400:4000",
	};
	struct uart_backend *be, *be2;
	char spec[64], err[256];
	int port = free_port();

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		be = uart_backend_open("com1", bad[i], f->sc, NULL, err,
				       sizeof(err));
		assert_null(be);
		assert_non_null(strstr(err, bad[i] + 4));
		assert_null(strchr(err, '\n'));
	}
	/* A port that is taken is an error at start-up, naming it. */
	snprintf(spec, sizeof(spec), "tcp=127.0.0.1:%d", port);
	be = uart_backend_open("com1", spec, f->sc, NULL, err, sizeof(err));
	assert_non_null(be);
	be2 = uart_backend_open("com2", spec, f->sc, NULL, err, sizeof(err));
	assert_null(be2);
	assert_non_null(strstr(err, "cannot listen on"));
	assert_non_null(strstr(err, spec + 4));
	uart_backend_close(be);
}

/* -l com1,tcp=ADDR:PORT: lpc.com1.tcp, which com1 now uses. */
static void
test_lpc_com1_tcp(void **state)
{
	struct fx *f = *state;
	const struct lpc_dev *d = lpc_dev_find("com1");
	const struct lpc_dev *d2 = lpc_dev_find("com2");
	char opts[64], err[256], key[64];
	int port = free_port(), fd;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);

	snprintf(opts, sizeof(opts), "tcp=127.0.0.1:%d", port);
	assert_int_equal(d->parse(f->cfg, "com1", opts, err, sizeof(err)), 0);
	assert_string_equal(config_get(f->cfg, "lpc.com1.tcp"), opts + 4);
	assert_int_equal(d->init(f->ctx, d), 0);
	/* Listening now: a second listener on the port fails. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(bind(fd, (struct sockaddr *)&sin, len) < 0);
	close(fd);

	/* bhyve_config(5)'s spelling: lpc.com2.path=tcp=ADDR:PORT. */
	snprintf(key, sizeof(key), "tcp=127.0.0.1:%d", free_port());
	assert_int_equal(
	    config_set(f->cfg, "lpc.com2.path", key, err, sizeof(err)), 0);
	assert_int_equal(d2->init(f->ctx, d2), 0);
	assert_non_null(lpc_uart_softc(f->ctx, "com2"));
}

static void
test_lpc_com_path_and_tcp(void **state)
{
	struct fx *f = *state;
	const struct lpc_dev *d = lpc_dev_find("com3");
	char err[256];

	assert_int_equal(
	    d->parse(f->cfg, "com3", "stdio,tcp=127.0.0.1:1", err, sizeof(err)),
	    0);
	assert_int_equal(d->init(f->ctx, d), -1);
	assert_null(lpc_uart_softc(f->ctx, "com3"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_reset_values),
	    T(test_scratch),
	    T(test_dlab_divisor),
	    T(test_fifo_fill_overflow),
	    T(test_fifo_reset_and_16450),
	    T(test_trigger_level),
	    T(test_iir_priority),
	    T(test_thre_interrupt),
	    T(test_loopback),
	    T(test_coalesce_hook),
	    T(test_bad_offsets),
	    T(test_output_file),
	    T(test_input_fifo_flow_control),
	    T(test_input_event_loop),
	    T(test_flush_timer),
	    T(test_backend_errors),
	    T(test_lpc_com1),
	    T(test_lpc_com2_nopath_and_errors),
	    T(test_stalled_reader_bound),
	    T(test_stalled_reader_event_loop),
	    T(test_reader_keeps_up),
	    T(test_output_file_cap),
	    T(test_tcp_backend),
	    T(test_tcp_errors),
	    T(test_lpc_com1_tcp),
	    T(test_lpc_com_path_and_tcp),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
