/* pit.c: the 8254 programmable interval timer (ports 0x40-0x43). Channel 0 drives ISA IRQ 0. */
#include "guest.h"

#define PIT_CH0	 0x40
#define PIT_CMD	 0x43
#define CMD_CH0	 0x00
#define CMD_LOHI 0x30
#define CMD_MODE0 0x00	/* interrupt on terminal count */
#define CMD_MODE2 0x04	/* rate generator */

void pit_periodic(unsigned int hz)
{
	uint32_t div = hz ? PIT_HZ / hz : 0;

	if (div == 0 || div > 0xffff)
		div = 0;	/* 0 means 65536 */
	outb(PIT_CMD, CMD_CH0 | CMD_LOHI | CMD_MODE2);
	outb(PIT_CH0, (uint8_t)div);
	outb(PIT_CH0, (uint8_t)(div >> 8));
}

void pit_stop(void)
{
	/* Mode 0 with no count written yet: the output stays low, so no more edges. */
	outb(PIT_CMD, CMD_CH0 | CMD_LOHI | CMD_MODE0);
}

uint16_t pit_read_counter(unsigned int channel)
{
	uint8_t lo, hi;

	outb(PIT_CMD, (uint8_t)(channel << 6));	/* counter latch */
	lo = inb((uint16_t)(PIT_CH0 + channel));
	hi = inb((uint16_t)(PIT_CH0 + channel));
	return (uint16_t)(lo | hi << 8);
}
