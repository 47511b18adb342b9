/*
 * The MC146818 RTC/CMOS at ports 0x70 (index) and 0x71 (data), IRQ 8.
 * The sysdev (rtc.c) creates one with the host clock; tests create their
 * own with an injected clock and drive the timer events by hand.
 */
#ifndef RTC_H
#define RTC_H

#include <stdint.h>
#include <time.h>

#include "vmm.h"

#define RTC_IRQ 8
#define RTC_PORT_INDEX 0x70
#define RTC_PORT_DATA 0x71
#define RTC_NREGS 128

/* Register indexes (MC146818A datasheet, Figure 3). */
#define RTC_SEC 0x00
#define RTC_SEC_ALARM 0x01
#define RTC_MIN 0x02
#define RTC_MIN_ALARM 0x03
#define RTC_HOUR 0x04
#define RTC_HOUR_ALARM 0x05
#define RTC_DOW 0x06
#define RTC_DOM 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_REG_C 0x0c
#define RTC_REG_D 0x0d
#define RTC_CENTURY 0x32 /* the ACPI FADT's CENTURY field names it */

#define RTC_A_UIP 0x80
#define RTC_A_DV_MASK 0x70
#define RTC_A_RS_MASK 0x0f
#define RTC_B_SET 0x80
#define RTC_B_PIE 0x40
#define RTC_B_AIE 0x20
#define RTC_B_UIE 0x10
#define RTC_B_DM 0x04 /* binary, not BCD */
#define RTC_B_24H 0x02
#define RTC_C_IRQF 0x80
#define RTC_C_PF 0x40
#define RTC_C_AF 0x20
#define RTC_C_UF 0x10
#define RTC_D_VRT 0x80
#define RTC_HOUR_PM 0x80 /* in 12-hour mode */

struct rtc;
/* The wall clock the RTC follows (CLOCK_REALTIME in bhyve). */
typedef void (*rtc_clock_fn)(void *arg, struct timespec *ts);

/*
 * An RTC for ctx (its machine's config: rtc.use_localtime, default true;
 * its memory sizes and vCPU count go into the NVRAM). clock NULL: the host
 * clock. Timers run on the machine's event loop when it has one.
 */
struct rtc *rtc_create(struct vmctx *ctx, rtc_clock_fn clock, void *arg);
/* Once the event loop has stopped (its timers point here). */
void rtc_free(struct rtc *rtc);
/* The machine's own RTC (the sysdev's), or NULL before it is up. */
struct rtc *rtc_of(struct vmctx *ctx);

/* A CMOS register by index (0-127), as port 0x71 reads and writes it. */
uint8_t rtc_read(struct rtc *rtc, uint8_t index);
void rtc_write(struct rtc *rtc, uint8_t index, uint8_t val);

/* The timer events (what the event loop calls), for tests. */
void rtc_periodic_tick(struct rtc *rtc);
void rtc_update_tick(struct rtc *rtc);

/* The RTC's time: seconds since 1970 of its (UTC or local) wall clock. */
int64_t rtc_time(struct rtc *rtc);

#endif
