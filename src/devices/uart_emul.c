/*
 * A 16550A UART (National PC16550D datasheet, June 1995), after bhyve's
 * uart_emul.c. Transmission is instant: THR and the transmitter are always
 * empty again by the time the guest looks, so LSR.THRE/TEMT stay set and a
 * THR write re-arms the THR-empty interrupt at once.
 *
 * The receive FIFO holds 16 bytes (1 in 16450 mode). The backend only
 * offers what fits (uart_rx_room), so overruns come from loopback or from
 * a caller that ignores the room; the backend is told to read again when
 * the guest makes room.
 *
 * Locking: one mutex per UART. The interrupt and coalesce callbacks run
 * under it; the backend's rx_ready runs after it is dropped, because the
 * backend's input path calls uart_rx with its own lock held.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "uart_backend.h"
#include "uart_emul.h"

#define MSR_DELTA_MASK 0x0f
#define IER_MASK 0x0f /* bits 7:4 are always 0 */
#define MCR_MASK 0x1f /* bits 7:5 are always 0 */
/* 1.8432 MHz / 16 / 115200 baud: what firmware leaves set. */
#define DEFAULT_DIVISOR 1

struct uart_fifo {
	uint8_t buf[UART_FIFO_SIZE];
	unsigned int rindex; /* next byte to read */
	unsigned int num;    /* bytes held */
	unsigned int size;   /* 16, or 1 in 16450 mode */
};

struct uart_softc {
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, lsr, msr, fcr, scr;
	uint8_t dll, dlm;
	uint8_t rbr; /* the last byte read, returned again when empty */
	struct uart_fifo rx;
	bool thre_pending; /* the THR-empty interrupt source */
	bool line;	   /* the interrupt line as last driven */
	bool coalescing;   /* as last reported to the coalesce hook */
	uart_intr_fn intr_assert, intr_deassert;
	uart_coalesce_fn coalesce;
	void *arg;
	struct uart_backend *be;
};

static void
fifo_reset(struct uart_fifo *f, unsigned int size)
{
	f->rindex = 0;
	f->num = 0;
	f->size = size;
}

static bool
fifo_put(struct uart_fifo *f, uint8_t c)
{
	if (f->num >= f->size)
		return false;
	f->buf[(f->rindex + f->num) % f->size] = c;
	f->num++;
	return true;
}

static bool
fifo_get(struct uart_fifo *f, uint8_t *c)
{
	if (f->num == 0)
		return false;
	*c = f->buf[f->rindex];
	f->rindex = (f->rindex + 1) % f->size;
	f->num--;
	return true;
}

static bool
loopback(const struct uart_softc *sc)
{
	return sc->mcr & UART_MCR_LOOP;
}

static size_t
room_locked(const struct uart_softc *sc)
{
	return loopback(sc) ? SIZE_MAX : sc->rx.size - sc->rx.num;
}

/*
 * In loopback the modem outputs drive the inputs (datasheet, MCR bit 4):
 * RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD. Otherwise the peer is a null
 * modem that is always there: DCD, DSR and CTS asserted, so that a guest's
 * tty open never waits for carrier (bhyve asserts DCD and DSR likewise).
 */
static uint8_t
modem_status(uint8_t mcr)
{
	uint8_t msr = 0;

	if (!(mcr & UART_MCR_LOOP))
		return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	if (mcr & UART_MCR_RTS)
		msr |= UART_MSR_CTS;
	if (mcr & UART_MCR_DTR)
		msr |= UART_MSR_DSR;
	if (mcr & UART_MCR_OUT1)
		msr |= UART_MSR_RI;
	if (mcr & UART_MCR_OUT2)
		msr |= UART_MSR_DCD;
	return msr;
}

static unsigned int
rx_trigger(const struct uart_softc *sc)
{
	static const unsigned int level[4] = {1, 4, 8, 14};

	if (!(sc->fcr & UART_FCR_ENABLE))
		return 1;
	return level[(sc->fcr & UART_FCR_TRIGGER) >> 6];
}

/*
 * The highest-priority pending source (datasheet Table IV): line status,
 * then received data, then THR empty, then modem status. Data below the
 * trigger level reports a character timeout at once: a backend delivers
 * what it has in one go, so waiting four character times for more would
 * only delay the guest.
 */
static uint8_t
intr_reason(const struct uart_softc *sc)
{
	if ((sc->lsr & UART_LSR_OE) && (sc->ier & UART_IER_ELSI))
		return UART_IIR_RLS;
	if (sc->rx.num > 0 && (sc->ier & UART_IER_ERBFI))
		return sc->rx.num >= rx_trigger(sc) ? UART_IIR_RXRDY
						    : UART_IIR_RXTOUT;
	if (sc->thre_pending && (sc->ier & UART_IER_ETBEI))
		return UART_IIR_TXRDY;
	if ((sc->msr & MSR_DELTA_MASK) && (sc->ier & UART_IER_EDSSI))
		return UART_IIR_MLSC;
	return UART_IIR_NOPEND;
}

/*
 * Drive the ISA line on changes only (it is an edge to the PIC/IOAPIC).
 * On PCs OUT2 gates the UART's interrupt onto the bus.
 */
static void
update_intr(struct uart_softc *sc)
{
	bool on =
	    intr_reason(sc) != UART_IIR_NOPEND && (sc->mcr & UART_MCR_OUT2);

	if (on == sc->line)
		return;
	sc->line = on;
	if (on)
		sc->intr_assert(sc->arg);
	else
		sc->intr_deassert(sc->arg);
}

static bool
coalesce_state(const struct uart_softc *sc)
{
	return !(sc->ier & UART_IER_ETBEI) && !loopback(sc) &&
	       !(sc->lcr & UART_LCR_DLAB);
}

static void
update_coalesce(struct uart_softc *sc)
{
	bool on = coalesce_state(sc);

	if (!sc->coalesce || on == sc->coalescing)
		return;
	sc->coalescing = on;
	sc->coalesce(sc->arg, on);
}

struct uart_softc *
uart_init(uart_intr_fn intr_assert, uart_intr_fn intr_deassert, void *arg)
{
	struct uart_softc *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return NULL;
	pthread_mutex_init(&sc->lock, NULL);
	sc->intr_assert = intr_assert;
	sc->intr_deassert = intr_deassert;
	sc->arg = arg;
	sc->dll = DEFAULT_DIVISOR;
	sc->msr = modem_status(0);
	sc->lsr = UART_LSR_THRE | UART_LSR_TEMT;
	fifo_reset(&sc->rx, 1); /* 16450 mode until FCR enables the FIFOs */
	return sc;
}

void
uart_free(struct uart_softc *sc)
{
	if (!sc)
		return;
	pthread_mutex_destroy(&sc->lock);
	free(sc);
}

void
uart_set_coalesce(struct uart_softc *sc, uart_coalesce_fn fn)
{
	pthread_mutex_lock(&sc->lock);
	sc->coalesce = fn;
	if (fn) {
		sc->coalescing = coalesce_state(sc);
		fn(sc->arg, sc->coalescing);
	}
	pthread_mutex_unlock(&sc->lock);
}

void
uart_set_backend(struct uart_softc *sc, struct uart_backend *be)
{
	pthread_mutex_lock(&sc->lock);
	sc->be = be;
	pthread_mutex_unlock(&sc->lock);
}

static uint8_t
read_iir(struct uart_softc *sc)
{
	uint8_t reason = intr_reason(sc);

	/* Reading an IIR that reports THR empty clears it (Table IV). */
	if (reason == UART_IIR_TXRDY)
		sc->thre_pending = false;
	return reason | ((sc->fcr & UART_FCR_ENABLE) ? UART_IIR_FIFO : 0);
}

static uint8_t
read_lsr(struct uart_softc *sc)
{
	uint8_t lsr = sc->lsr | UART_LSR_THRE | UART_LSR_TEMT;

	if (sc->rx.num > 0)
		lsr |= UART_LSR_DR;
	/* OE is cleared by the read that reports it. */
	sc->lsr &= ~UART_LSR_OE;
	return lsr;
}

static uint8_t
read_reg(struct uart_softc *sc, int offset)
{
	uint8_t v;

	if (sc->lcr & UART_LCR_DLAB) {
		if (offset == UART_REG_DATA)
			return sc->dll;
		if (offset == UART_REG_IER)
			return sc->dlm;
	}
	switch (offset) {
	case UART_REG_DATA:
		if (fifo_get(&sc->rx, &v))
			sc->rbr = v;
		return sc->rbr;
	case UART_REG_IER:
		return sc->ier;
	case UART_REG_IIR:
		return read_iir(sc);
	case UART_REG_LCR:
		return sc->lcr;
	case UART_REG_MCR:
		return sc->mcr;
	case UART_REG_LSR:
		return read_lsr(sc);
	case UART_REG_MSR:
		v = sc->msr;
		sc->msr &= ~MSR_DELTA_MASK; /* deltas clear on read */
		return v;
	case UART_REG_SCR:
		return sc->scr;
	default:
		return 0xff;
	}
}

/*
 * Run an access under the lock, then settle the interrupt line and the
 * coalesce state, and tell the backend when the guest made room.
 */
static void
access_done(struct uart_softc *sc, bool was_full)
{
	bool resume = was_full && room_locked(sc) > 0;
	struct uart_backend *be = sc->be;

	update_intr(sc);
	update_coalesce(sc);
	pthread_mutex_unlock(&sc->lock);
	if (resume && be)
		uart_backend_rx_ready(be);
}

uint8_t
uart_read(struct uart_softc *sc, int offset)
{
	bool was_full;
	uint8_t v;

	pthread_mutex_lock(&sc->lock);
	was_full = room_locked(sc) == 0;
	v = read_reg(sc, offset);
	access_done(sc, was_full);
	return v;
}

static void
write_thr(struct uart_softc *sc, uint8_t value)
{
	if (loopback(sc)) {
		if (!fifo_put(&sc->rx, value))
			sc->lsr |= UART_LSR_OE;
	} else if (sc->be) {
		uart_backend_putc(sc->be, value);
	}
	/* Transmitted at once: THR is empty again and raises its interrupt. */
	sc->thre_pending = true;
}

static void
write_fcr(struct uart_softc *sc, uint8_t value)
{
	/* Switching between FIFO and 16450 mode empties the FIFOs. */
	if ((sc->fcr ^ value) & UART_FCR_ENABLE)
		fifo_reset(&sc->rx,
			   (value & UART_FCR_ENABLE) ? UART_FIFO_SIZE : 1);
	/* The other bits only take effect with FCR0 set (datasheet 8.5). */
	if (!(value & UART_FCR_ENABLE)) {
		sc->fcr = 0;
		return;
	}
	if (value & UART_FCR_RX_RST)
		fifo_reset(&sc->rx, UART_FIFO_SIZE);
	sc->fcr = value & (UART_FCR_ENABLE | UART_FCR_DMA | UART_FCR_TRIGGER);
}

static void
write_mcr(struct uart_softc *sc, uint8_t value)
{
	uint8_t msr;

	sc->mcr = value & MCR_MASK;
	msr = modem_status(sc->mcr);
	if ((msr ^ sc->msr) & UART_MSR_CTS)
		sc->msr |= UART_MSR_DCTS;
	if ((msr ^ sc->msr) & UART_MSR_DSR)
		sc->msr |= UART_MSR_DDSR;
	if ((msr ^ sc->msr) & UART_MSR_DCD)
		sc->msr |= UART_MSR_DDCD;
	/* TERI is the trailing edge of RI only. */
	if ((sc->msr & UART_MSR_RI) && !(msr & UART_MSR_RI))
		sc->msr |= UART_MSR_TERI;
	sc->msr = (sc->msr & MSR_DELTA_MASK) | msr;
}

static void
write_reg(struct uart_softc *sc, int offset, uint8_t value)
{
	if (sc->lcr & UART_LCR_DLAB) {
		if (offset == UART_REG_DATA) {
			sc->dll = value;
			return;
		}
		if (offset == UART_REG_IER) {
			sc->dlm = value;
			return;
		}
	}
	switch (offset) {
	case UART_REG_DATA:
		write_thr(sc, value);
		break;
	case UART_REG_IER:
		/* Enabling ETBEI while THR is empty raises it (it is). */
		if (!(sc->ier & UART_IER_ETBEI) && (value & UART_IER_ETBEI))
			sc->thre_pending = true;
		sc->ier = value & IER_MASK;
		break;
	case UART_REG_IIR:
		write_fcr(sc, value);
		break;
	case UART_REG_LCR:
		sc->lcr = value;
		break;
	case UART_REG_MCR:
		write_mcr(sc, value);
		break;
	case UART_REG_SCR:
		sc->scr = value;
		break;
	default:
		/* LSR and MSR writes are factory test modes: ignored. */
		break;
	}
}

void
uart_write(struct uart_softc *sc, int offset, uint8_t value)
{
	bool was_full;

	pthread_mutex_lock(&sc->lock);
	was_full = room_locked(sc) == 0;
	write_reg(sc, offset, value);
	access_done(sc, was_full);
}

size_t
uart_rx(struct uart_softc *sc, const uint8_t *buf, size_t n)
{
	size_t taken = 0;

	pthread_mutex_lock(&sc->lock);
	if (loopback(sc)) {
		taken = n; /* the line is disconnected from the receiver */
	} else {
		for (size_t i = 0; i < n; i++) {
			if (fifo_put(&sc->rx, buf[i]))
				taken++;
			else
				sc->lsr |= UART_LSR_OE;
		}
	}
	update_intr(sc);
	pthread_mutex_unlock(&sc->lock);
	return taken;
}

size_t
uart_rx_room(struct uart_softc *sc)
{
	size_t room;

	pthread_mutex_lock(&sc->lock);
	room = room_locked(sc);
	pthread_mutex_unlock(&sc->lock);
	return room;
}

void
uart_flush(struct uart_softc *sc)
{
	struct uart_backend *be;

	pthread_mutex_lock(&sc->lock);
	be = sc->be;
	pthread_mutex_unlock(&sc->lock);
	if (be)
		uart_backend_flush(be);
}
