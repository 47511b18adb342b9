/*
 * com1..com4 behind the LPC bridge (lpc_uart.c). They come and go with
 * the machine (machine_free flushes and closes them); tests look inside.
 */
#ifndef LPC_UART_H
#define LPC_UART_H

#include "vmm.h"

struct uart_softc;

/* The UART of a configured com port ("com1".."com4"), or NULL. */
struct uart_softc *lpc_uart_softc(struct vmctx *ctx, const char *name);
/* Push every configured port's buffered output to its backend. */
void lpc_uart_flush_all(struct vmctx *ctx);

#endif
