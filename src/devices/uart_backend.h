/*
 * Where a UART's bytes go and come from.
 *
 *   stdio           bhyve's own stdin/stdout (raw mode when stdin is a
 *                   terminal, restored at exit); one UART at most.
 *   PATH            a terminal, pty or fifo: read and written; a regular
 *                   file or a path that does not exist yet: output
 *                   appended (at most UART_FILE_CAP bytes a run), no input.
 *   tcp=ADDR:PORT   a TCP listener (bhyve's tcp backend; [V6ADDR]:PORT for
 *                   IPv6): one client at a time, raw bytes both ways; a
 *                   second client is told so and closed. Output while no
 *                   client is connected goes nowhere, as in bhyve.
 *
 * Output is buffered and written on a newline, past UART_FLUSH_AT bytes, on
 * uart_backend_flush, from a 20 ms timer on the event loop (partial lines
 * such as prompts), and at exit. No write ever waits: what the reader does
 * not take is kept (UART_OUTBUF bytes) and written by the event loop when
 * the fd can take more; beyond that it is dropped and counted, said once
 * on stderr, as a serial line with nobody listening would lose it. Input
 * is read from the event loop only while the UART has room, so bytes wait
 * in the kernel rather than overrun the FIFO.
 */
#ifndef UART_BACKEND_H
#define UART_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#define UART_OUTBUF (64 * 1024)	    /* output kept for a slow reader */
#define UART_FLUSH_AT 4096	    /* write without waiting for '\n' */
#define UART_FILE_CAP (64ULL << 20) /* bytes written to a file a run */

struct uart_backend;
struct uart_softc;
struct mevent;

/*
 * Open PATH ("stdio", "tcp=ADDR:PORT" or a file name) for the UART sc
 * called name (for messages: "com1"). mev may be NULL (tests): no input
 * events, no flush timer and no TCP clients then. On failure: NULL and a
 * one-line message naming the path in err.
 */
struct uart_backend *uart_backend_open(const char *name, const char *path,
				       struct uart_softc *sc,
				       struct mevent *mev, char *err,
				       size_t errlen);
/*
 * Flush what the reader takes within a short wait (bytes left then are
 * dropped and counted), report drops, stop reading, restore the terminal,
 * close. After the loop stops.
 */
void uart_backend_close(struct uart_backend *be);

/* One transmitted byte (from the UART, under its lock). Never waits. */
void uart_backend_putc(struct uart_backend *be, uint8_t c);
/* Write what the fd takes now; the event loop writes the rest. */
void uart_backend_flush(struct uart_backend *be);
/* The UART has room again: resume reading if input was paused. */
void uart_backend_rx_ready(struct uart_backend *be);
/* Read what input is ready into the UART (the event loop's callback). */
void uart_backend_rx_poll(struct uart_backend *be);

/* For tests: output held, bytes dropped so far, a TCP client connected. */
size_t uart_backend_pending(struct uart_backend *be);
uint64_t uart_backend_dropped(struct uart_backend *be);
int uart_backend_connected(struct uart_backend *be);
/* For tests: a regular file's cap other than UART_FILE_CAP. */
void uart_backend_set_file_cap(struct uart_backend *be, uint64_t bytes);

#endif
