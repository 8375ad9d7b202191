/* cmos.c: the MC146818 RTC and CMOS RAM behind ports 0x70 (index) and 0x71 (data). */
#include "dev/legacy.h"

#include <string.h>
#include <time.h>

#define CMOS_SECONDS	0x00
#define CMOS_MINUTES	0x02
#define CMOS_HOURS	0x04
#define CMOS_WEEKDAY	0x06
#define CMOS_DAY	0x07
#define CMOS_MONTH	0x08
#define CMOS_YEAR	0x09
#define CMOS_STATUS_A	0x0a
#define CMOS_STATUS_B	0x0b
#define CMOS_STATUS_D	0x0d
#define CMOS_CENTURY	0x32

#define STATUS_B_24H	0x02 /* 24-hour mode; DM (bit 2) clear: BCD */
#define STATUS_D_VRT	0x80 /* valid RAM and time */

static uint8_t bcd(int v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

void cmos_init(struct cmos *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->ram[CMOS_STATUS_A] = 0x26; /* 32.768 kHz base, 1024 Hz rate; UIP clear */
	c->ram[CMOS_STATUS_B] = STATUS_B_24H;
	c->ram[CMOS_STATUS_D] = STATUS_D_VRT;
}

static uint8_t clock_register(uint8_t index)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	switch (index) {
	case CMOS_SECONDS: return bcd(tm.tm_sec);
	case CMOS_MINUTES: return bcd(tm.tm_min);
	case CMOS_HOURS: return bcd(tm.tm_hour);
	case CMOS_WEEKDAY: return bcd(tm.tm_wday + 1);
	case CMOS_DAY: return bcd(tm.tm_mday);
	case CMOS_MONTH: return bcd(tm.tm_mon + 1);
	case CMOS_YEAR: return bcd(tm.tm_year % 100);
	case CMOS_CENTURY: return bcd((tm.tm_year + 1900) / 100);
	}
	return 0;
}

static bool is_clock_register(uint8_t index)
{
	return (index <= CMOS_YEAR && !(index & 1)) || index == CMOS_WEEKDAY ||
	       index == CMOS_DAY || index == CMOS_YEAR || index == CMOS_CENTURY;
}

static uint64_t cmos_read(void *dev, uint64_t off, unsigned int size)
{
	struct cmos *c = dev;
	uint8_t v;

	if (off == 0)
		return 0xff; /* the index port is write-only */
	pthread_mutex_lock(&c->lock);
	v = is_clock_register(c->index) ? clock_register(c->index) : c->ram[c->index];
	pthread_mutex_unlock(&c->lock);
	return v;
}

static void cmos_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	struct cmos *c = dev;

	pthread_mutex_lock(&c->lock);
	if (off == 0) {
		c->index = val & 0x7f; /* bit 7 is the NMI mask */
	} else if (!is_clock_register(c->index) && c->index != CMOS_STATUS_A &&
		   c->index != CMOS_STATUS_D) {
		/* The guest may keep bytes in CMOS RAM; the clock itself follows the host. */
		c->ram[c->index] = val;
	}
	pthread_mutex_unlock(&c->lock);
}

const struct bus_ops cmos_ops = {.read = cmos_read, .write = cmos_write};
