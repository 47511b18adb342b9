/*
 * A 16550A UART, independent of ports and of KVM: the owner feeds it
 * register accesses by offset (0-7) and gets its interrupt line back
 * through callbacks. Output goes to a uart_backend (uart_backend.h).
 */
#ifndef UART_EMUL_H
#define UART_EMUL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct uart_softc;
struct uart_backend;
struct vmctx;

#define UART_NREGS 8

/* Register offsets (PC16550D datasheet, Table II). */
#define UART_REG_DATA 0 /* RBR read, THR write; DLL with DLAB */
#define UART_REG_IER 1	/* DLM with DLAB */
#define UART_REG_IIR 2	/* IIR read, FCR write */
#define UART_REG_LCR 3
#define UART_REG_MCR 4
#define UART_REG_LSR 5
#define UART_REG_MSR 6
#define UART_REG_SCR 7

#define UART_IER_ERBFI 0x01 /* received data available */
#define UART_IER_ETBEI 0x02 /* THR empty */
#define UART_IER_ELSI 0x04  /* receiver line status */
#define UART_IER_EDSSI 0x08 /* modem status */

#define UART_IIR_NOPEND 0x01
#define UART_IIR_MLSC 0x00  /* modem status */
#define UART_IIR_TXRDY 0x02 /* THR empty */
#define UART_IIR_RXRDY 0x04 /* received data at the trigger level */
#define UART_IIR_RLS 0x06   /* receiver line status */
#define UART_IIR_RXTOUT 0x0c
#define UART_IIR_FIFO 0xc0 /* FIFOs enabled */

#define UART_FCR_ENABLE 0x01
#define UART_FCR_RX_RST 0x02
#define UART_FCR_TX_RST 0x04
#define UART_FCR_DMA 0x08
#define UART_FCR_TRIGGER 0xc0

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10

#define UART_LSR_DR 0x01
#define UART_LSR_OE 0x02
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40

#define UART_MSR_DCTS 0x01
#define UART_MSR_DDSR 0x02
#define UART_MSR_TERI 0x04
#define UART_MSR_DDCD 0x08
#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80

#define UART_FIFO_SIZE 16

typedef void (*uart_intr_fn)(void *arg);
/*
 * Called with on == true while THR writes have no side effect the guest
 * could see at once (ETBEI clear, no loopback, DLAB clear), so the owner
 * may let the hypervisor queue them without an exit; false otherwise.
 */
typedef void (*uart_coalesce_fn)(void *arg, bool on);

struct uart_softc *uart_init(uart_intr_fn intr_assert,
			     uart_intr_fn intr_deassert, void *arg);
void uart_free(struct uart_softc *sc);
/* Install the coalesce hook; it is called at once with the current state. */
void uart_set_coalesce(struct uart_softc *sc, uart_coalesce_fn fn);
/* Where THR writes go (NULL drops them, as bhyve without a backend). */
void uart_set_backend(struct uart_softc *sc, struct uart_backend *be);

uint8_t uart_read(struct uart_softc *sc, int offset);
void uart_write(struct uart_softc *sc, int offset, uint8_t value);

/*
 * The receive side: bytes from the backend. Returns how many were taken;
 * bytes beyond the free FIFO space are lost and set LSR.OE, as a real
 * overrun. In loopback mode the line is disconnected and input is dropped
 * (all of it counts as taken).
 */
size_t uart_rx(struct uart_softc *sc, const uint8_t *buf, size_t n);
/* Free receive FIFO space (SIZE_MAX in loopback, where input is dropped). */
size_t uart_rx_room(struct uart_softc *sc);

/* Push buffered output to the backend. */
void uart_flush(struct uart_softc *sc);

#endif
