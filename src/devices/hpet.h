/*
 * The HPET (IA-PC HPET specification 1.0a) at its usual place, for the
 * ACPI HPET table and for tests.
 */
#ifndef HPET_H
#define HPET_H

#include <stdint.h>

#include "vmm.h"

#define HPET_BASE 0xfed00000ULL
#define HPET_SIZE 0x400
#define HPET_NTIMERS 3
#define HPET_FREQ 10000000ULL	    /* 10 MHz */
#define HPET_PERIOD_FS 100000000ULL /* femtoseconds per tick */
#define HPET_MIN_TICK 0x80	    /* for the ACPI table's Minimum Tick */
/* IOAPIC pins a timer may be routed to (Tn_INT_ROUTE_CAP): ISA 10, 11. */
#define HPET_ROUTE_CAP ((1u << 10) | (1u << 11))

/* Registers (§2.3.1); timer N's at HPET_TIMER(N) + HPET_TN_*. */
#define HPET_CAP_ID 0x000
#define HPET_CONFIG 0x010
#define HPET_ISR 0x020
#define HPET_COUNTER 0x0f0
#define HPET_TIMER(n) (0x100 + 0x20 * (n))
#define HPET_TN_CONFIG 0x00
#define HPET_TN_CMP 0x08
#define HPET_TN_FSB 0x10

/* General capabilities (§2.3.4). */
#define HPET_CAP_COUNT_SIZE (1ULL << 13)
#define HPET_CAP_LEG_RT (1ULL << 15)
/* General configuration (§2.3.5). */
#define HPET_CNF_ENABLE 0x1ULL
#define HPET_CNF_LEG_RT 0x2ULL
/* Timer N configuration and capabilities (§2.3.8). */
#define HPET_TN_LEVEL (1ULL << 1)
#define HPET_TN_INT_ENB (1ULL << 2)
#define HPET_TN_PERIODIC (1ULL << 3)
#define HPET_TN_PER_CAP (1ULL << 4)
#define HPET_TN_SIZE_CAP (1ULL << 5)
#define HPET_TN_VAL_SET (1ULL << 6)
#define HPET_TN_32BIT (1ULL << 8)
#define HPET_TN_ROUTE_SHIFT 9
#define HPET_TN_ROUTE (0x1fULL << HPET_TN_ROUTE_SHIFT)
#define HPET_TN_FSB_EN (1ULL << 14)
#define HPET_TN_FSB_CAP (1ULL << 15)

/* The ACPI HPET table's Event Timer Block ID: the low half of CAP_ID. */
uint32_t hpet_block_id(void);

/*
 * Timer n's expiry, as its event-loop timer runs it: fires the timer if its
 * deadline has passed, then re-arms it (tests call it directly).
 */
void hpet_expire(struct vmctx *ctx, int n);
/* Whether timer n has a host timer armed (tests). */
int hpet_armed(struct vmctx *ctx, int n);

#endif
