/* rtc.c: the CMOS clock (MC146818 RTC behind ports 0x70/0x71) as a PC guest reads it.
 *
 * 1. Status B says 24-hour BCD (bit 1 set, DM bit 2 clear); status D says the time is valid
 *    (VRT, bit 7).
 * 2. The date and time: read until two reads in a row agree, outside an update (UIP, status A
 *    bit 7), as Linux's mc146818_get_time() does. Every register is BCD and in range, the
 *    century (register 0x32) is 20, and the weekday (register 6, Sunday = 1) is the one the
 *    date falls on.
 * 3. The clock ticks: the seconds change within 1.5 s of PIT time, twice. Each change is
 *    printed as it is seen, so the host can compare it with its own UTC time and the two
 *    changes with each other.
 * 4. CMOS RAM (register 0x40) keeps a byte the guest writes.
 *
 * Prints: "STATUS-B <hex>", "PASS rtc-24h-bcd", "PASS rtc-valid", "RTC <date> <time>",
 * "PASS rtc-bcd-ranges", "PASS rtc-century", "PASS rtc-weekday",
 * "RTC-TICK <n> <YYYY-MM-DD HH:MM:SS>" (n = 1, 2, each right after the second changed),
 * "PASS rtc-ticks", "PASS cmos-ram", "RESULT PASS"; exits 0.
 * Host side: exit status 0, RESULT PASS, each RTC-TICK within a second or two of the host's UTC
 * time when the line arrives, the two ticks about a second apart (tests/e2e/test_guests.py). */
#include "guest.h"

#define CMOS_INDEX    0x70
#define CMOS_DATA     0x71
#define REG_SECONDS   0x00
#define REG_MINUTES   0x02
#define REG_HOURS     0x04
#define REG_WEEKDAY   0x06
#define REG_DAY	      0x07
#define REG_MONTH     0x08
#define REG_YEAR      0x09
#define REG_STATUS_A  0x0a
#define REG_STATUS_B  0x0b
#define REG_STATUS_D  0x0d
#define REG_CENTURY   0x32
#define REG_SCRATCH   0x40
#define STATUS_A_UIP  0x80
#define STATUS_B_24H  0x02
#define STATUS_B_DM   0x04
#define STATUS_D_VRT  0x80
#define TICK_WAIT_MS  1500

struct rtc_time {
	uint8_t sec, min, hour, wday, day, mon, year, century; /* raw BCD */
};

static uint8_t cmos_read(uint8_t reg)
{
	outb(CMOS_INDEX, reg); /* bit 7 clear: NMIs stay enabled */
	return inb(CMOS_DATA);
}

static void cmos_write(uint8_t reg, uint8_t v)
{
	outb(CMOS_INDEX, reg);
	outb(CMOS_DATA, v);
}

static void read_once(struct rtc_time *t)
{
	while (cmos_read(REG_STATUS_A) & STATUS_A_UIP)
		cpu_relax();
	t->sec = cmos_read(REG_SECONDS);
	t->min = cmos_read(REG_MINUTES);
	t->hour = cmos_read(REG_HOURS);
	t->wday = cmos_read(REG_WEEKDAY);
	t->day = cmos_read(REG_DAY);
	t->mon = cmos_read(REG_MONTH);
	t->year = cmos_read(REG_YEAR);
	t->century = cmos_read(REG_CENTURY);
}

/* Two reads in a row that agree: no update came between the registers. */
static void rtc_read(struct rtc_time *t)
{
	struct rtc_time again;

	read_once(t);
	for (;;) {
		read_once(&again);
		if (!memcmp(t, &again, sizeof(again)))
			return;
		*t = again;
	}
}

static bool is_bcd(uint8_t v)
{
	return (v & 0x0f) <= 9 && (v >> 4) <= 9;
}

static unsigned int from_bcd(uint8_t v)
{
	return (v >> 4) * 10u + (v & 0x0f);
}

/* Day of the week, Sunday = 0 (Sakamoto's method). */
static unsigned int weekday(unsigned int y, unsigned int m, unsigned int d)
{
	static const unsigned int k[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};

	if (m < 3)
		y--;
	return (y + y / 4 - y / 100 + y / 400 + k[m - 1] + d) % 7;
}

static void print_time(const char *prefix, const struct rtc_time *t)
{
	printf("%s%02x%02x-%02x-%02x %02x:%02x:%02x\n", prefix, t->century, t->year, t->mon,
	       t->day, t->hour, t->min, t->sec);
}

/* Waits up to TICK_WAIT_MS of PIT time for the seconds to move on from (t), which it
 * updates. Returns false if they did not. */
static bool wait_tick(struct rtc_time *t)
{
	struct pit_clock c;
	struct rtc_time now;

	pit_clock_start(&c);
	while (pit_clock_ms(&c) < TICK_WAIT_MS) {
		rtc_read(&now);
		if (now.sec != t->sec) {
			*t = now;
			return true;
		}
	}
	return false;
}

void guest_main(const struct hvm_start_info *si)
{
	struct rtc_time t;
	uint8_t b = cmos_read(REG_STATUS_B);
	bool ticks = true;

	(void)si;
	printf("STATUS-B %02x\n", b);
	report("rtc-24h-bcd", (b & STATUS_B_24H) && !(b & STATUS_B_DM));
	report("rtc-valid", cmos_read(REG_STATUS_D) & STATUS_D_VRT);

	rtc_read(&t);
	print_time("RTC ", &t);
	reportf(is_bcd(t.sec) && from_bcd(t.sec) < 60 && is_bcd(t.min) && from_bcd(t.min) < 60 &&
			is_bcd(t.hour) && from_bcd(t.hour) < 24 && is_bcd(t.day) &&
			from_bcd(t.day) >= 1 && from_bcd(t.day) <= 31 && is_bcd(t.mon) &&
			from_bcd(t.mon) >= 1 && from_bcd(t.mon) <= 12 && is_bcd(t.year) &&
			is_bcd(t.wday) && from_bcd(t.wday) >= 1 && from_bcd(t.wday) <= 7,
		"rtc-bcd-ranges");
	report("rtc-century", t.century == 0x20);
	printf("WEEKDAY %u\n", from_bcd(t.wday));
	report("rtc-weekday",
	       from_bcd(t.wday) == 1 + weekday(2000 + from_bcd(t.year), from_bcd(t.mon),
					       from_bcd(t.day)));

	/* The first change may come at once (the read above was late in a second): it is
	 * the second change that lies a full second after the first. */
	for (int i = 1; i <= 2; i++) {
		if (!wait_tick(&t)) {
			printf("NO-TICK %d within %u ms\n", i, TICK_WAIT_MS);
			ticks = false;
			break;
		}
		printf("RTC-TICK %d ", i);
		print_time("", &t);
	}
	report("rtc-ticks", ticks);

	cmos_write(REG_SCRATCH, 0x5a);
	b = cmos_read(REG_SCRATCH);
	cmos_write(REG_SCRATCH, 0xa5);
	report("cmos-ram", b == 0x5a && cmos_read(REG_SCRATCH) == 0xa5);
	finish();
}
