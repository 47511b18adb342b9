/*
 * Where a UART's bytes go and come from.
 *
 *   stdio   bhyve's own stdin/stdout (raw mode when stdin is a terminal,
 *           restored at exit); one UART at most.
 *   PATH    a terminal, pty or fifo: read and written; a regular file or
 *           a path that does not exist yet: output appended, no input.
 *
 * Output is buffered and written on a newline, when the buffer fills, on
 * uart_backend_flush, from a 20 ms timer on the event loop (partial lines
 * such as prompts), and at exit. Writes never drop bytes: a full pipe or
 * terminal is waited for. Input is read from the event loop only while the
 * UART has room, so bytes wait in the kernel rather than overrun the FIFO.
 */
#ifndef UART_BACKEND_H
#define UART_BACKEND_H

#include <stddef.h>
#include <stdint.h>

struct uart_backend;
struct uart_softc;
struct mevent;

/*
 * Open PATH ("stdio" or a file name) for sc. mev may be NULL (tests): no
 * input events and no flush timer then. On failure: NULL and a one-line
 * message naming the path in err.
 */
struct uart_backend *uart_backend_open(const char *path, struct uart_softc *sc,
				       struct mevent *mev, char *err,
				       size_t errlen);
/* Flush, stop reading, restore the terminal, close. After the loop stops. */
void uart_backend_close(struct uart_backend *be);

/* One transmitted byte (from the UART, under its lock). */
void uart_backend_putc(struct uart_backend *be, uint8_t c);
void uart_backend_flush(struct uart_backend *be);
/* The UART has room again: resume reading if input was paused. */
void uart_backend_rx_ready(struct uart_backend *be);
/* Read what input is ready into the UART (the event loop's callback). */
void uart_backend_rx_poll(struct uart_backend *be);

#endif
