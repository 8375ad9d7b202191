/* pit.c: the 8254 programmable interval timer (ports 0x40-0x43). Channel 0 drives ISA IRQ 0,
 * and its counter doubles as the guests' wall clock (no TSC calibration needed). */
#include "guest.h"

#define PIT_CH0	  0x40
#define PIT_CMD	  0x43
#define CMD_CH0	  0x00
#define CMD_LOHI  0x30
#define CMD_MODE0 0x00 /* interrupt on terminal count */
#define CMD_MODE2 0x04 /* rate generator */

/* Identical consecutive counter reads before the clock is declared stuck: a running counter
 * changes every 0.84 us, far faster than one read (a port exit) completes. */
#define PIT_STUCK_READS 100000

static uint32_t pit_reload; /* channel 0 reload value, 1..65536; 0: not running */

void pit_periodic(unsigned int hz)
{
	uint32_t div = hz ? PIT_HZ / hz : 0;

	if (div == 0 || div > 0xffff)
		div = 0; /* 0 means 65536 */
	outb(PIT_CMD, CMD_CH0 | CMD_LOHI | CMD_MODE2);
	outb(PIT_CH0, (uint8_t)div);
	outb(PIT_CH0, (uint8_t)(div >> 8));
	pit_reload = div ? div : 0x10000;
}

void pit_stop(void)
{
	/* Mode 0 with no count written yet: the output stays low, so no more edges. */
	outb(PIT_CMD, CMD_CH0 | CMD_LOHI | CMD_MODE0);
	pit_reload = 0;
}

uint16_t pit_read_counter(unsigned int channel)
{
	uint8_t lo, hi;

	outb(PIT_CMD, (uint8_t)(channel << 6)); /* counter latch */
	lo = inb((uint16_t)(PIT_CH0 + channel));
	hi = inb((uint16_t)(PIT_CH0 + channel));
	return (uint16_t)(lo | hi << 8);
}

void pit_clock_start(struct pit_clock *c)
{
	if (!pit_reload)
		pit_periodic(PIT_CLOCK_HZ);
	c->last = pit_read_counter(0);
	c->clocks = 0;
	c->same = 0;
}

uint64_t pit_clock_ms(struct pit_clock *c)
{
	uint16_t now = pit_read_counter(0);
	uint32_t last = c->last ? c->last : pit_reload; /* a count of 0 means 65536 */
	uint32_t cur = now ? now : pit_reload;

	/* A counter that never moves (no PIT) must not turn bounded waits into hangs. */
	if (c->same > PIT_STUCK_READS)
		return c->clocks * 1000 / PIT_HZ;
	if (now == c->last && ++c->same > PIT_STUCK_READS) {
		printf("PIT channel 0 counter stuck at %u: treating time as expired\n", now);
		c->clocks = (uint64_t)PIT_HZ * 3600; /* an hour: past every deadline */
		return c->clocks * 1000 / PIT_HZ;
	}
	if (now != c->last)
		c->same = 0;

	/* Mode 2 counts down from the reload value to 1; a larger reading means a reload. */
	c->clocks += cur <= last ? last - cur : last + pit_reload - cur;
	c->last = now;
	return c->clocks * 1000 / PIT_HZ;
}
