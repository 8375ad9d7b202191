/* pit8254.c: the 8254 programmable interval timer (Intel 82C54 datasheet) at 0x40-0x43 and
 * system control port B at 0x61 (channel 2 gate, speaker data, refresh toggle, channel 2
 * OUT). Counters are not stepped: count and OUT are computed from CLOCK_MONOTONIC at
 * 1.193182 MHz since the count was loaded (as QEMU's hw/timer/i8254.c does), so they are right
 * in wall time. Modes 0-5 (6 and 7 alias 2 and 3), the gate as the datasheet describes it
 * (pauses modes 0/4, stops and reloads modes 2/3, triggers modes 1/5), latch and read-back
 * commands, LSB/MSB/both access. BCD counting is not modelled (binary is used).
 *
 * Channel 0 OUT drives GSI 0 with one pulse per rising edge: each period in modes 2 and 3,
 * once in modes 0 and 4; its gate is tied high, so modes 1 and 5 never start there. */
#define pr_fmt(fmt) "pit: " fmt
#include "intc_internal.h"

#include <string.h>

#include "util/log.h"
#include "util/util.h"

#define PIT_HZ 1193182ULL

/* Read/write states: which byte of the count an access moves next. */
#define RW_LSB	 1
#define RW_MSB	 2
#define RW_WORD0 3
#define RW_WORD1 4

#define NO_EDGE UINT64_MAX

static uint64_t ns_to_ticks(uint64_t ns)
{
	return ns / NSEC_PER_SEC * PIT_HZ + ns % NSEC_PER_SEC * PIT_HZ / NSEC_PER_SEC;
}

/* Rounded up: the first nanosecond at which (ticks) clocks have passed. */
static uint64_t ticks_to_ns(uint64_t ticks)
{
	return ticks / PIT_HZ * NSEC_PER_SEC +
	       (ticks % PIT_HZ * NSEC_PER_SEC + PIT_HZ - 1) / PIT_HZ;
}

static bool gate_pauses(const struct pit_channel *c)
{
	return c->mode == 0 || c->mode == 4 || c->mode == 2 || c->mode == 3;
}

/* Clocks counted since the count was loaded (or triggered). */
static uint64_t elapsed(const struct pit_channel *c, uint64_t now)
{
	uint64_t t = !c->gate && gate_pauses(c) ? c->gate_low_ns : now;

	if ((c->mode == 1 || c->mode == 5) && !c->triggered)
		return 0;
	return ns_to_ticks(t - c->load_ns);
}

static bool counting(const struct pit_channel *c)
{
	return c->loaded && (c->triggered || (c->mode != 1 && c->mode != 5));
}

static uint16_t channel_count(const struct pit_channel *c, uint64_t now)
{
	uint64_t d;

	if (!counting(c))
		return (uint16_t)c->count;
	d = elapsed(c, now);
	switch (c->mode) {
	case 2:
		return (uint16_t)(c->count - d % c->count);
	case 3:
		/* Counts down by two, twice per period (exact for even counts). */
		return (uint16_t)(c->count - (2 * d) % c->count);
	default: /* 0, 1, 4, 5: on past zero, wrapping */
		return (uint16_t)(c->count - d);
	}
}

static bool channel_out(const struct pit_channel *c, uint64_t now)
{
	uint64_t d;

	if (!c->loaded)
		return c->mode != 0; /* the state a control word sets */
	if (!counting(c))
		return true; /* modes 1 and 5 waiting for their trigger */
	d = elapsed(c, now);
	switch (c->mode) {
	case 0:
	case 1:
		return d >= c->count;
	case 2:
		/* Low for the one clock the counter holds 1. */
		return !c->gate || c->count == 1 || d % c->count != c->count - 1;
	case 3:
		return !c->gate || d % c->count < (c->count + 1) / 2;
	default: /* 4, 5: low for the one clock at terminal count */
		return d != c->count;
	}
}

/* Channel 0: the clock of the first OUT rising edge after loading. */
static uint64_t first_edge(const struct pit_channel *c)
{
	switch (c->mode) {
	case 0:
	case 2:
	case 3:
		return c->count;
	case 4:
		return c->count + 1;
	default:
		return NO_EDGE;
	}
}

static void ch0_arm(struct pit8254 *p, uint64_t not_before)
{
	struct pit_channel *c = &p->ch[0];

	if (p->next_irq_tick == NO_EDGE) {
		intc_timer_disarm(&p->timer);
		return;
	}
	intc_timer_arm(&p->timer, c->load_ns + ticks_to_ns(p->next_irq_tick), not_before);
}

void pit_timer_expire(struct intc_timer *t, uint64_t now, struct intc_notify *n)
{
	struct pit8254 *p = container_of(t, struct pit8254, timer);
	struct pit_channel *c = &p->ch[0];
	uint64_t d, period_ns, not_before = 0;

	if (!c->loaded || p->next_irq_tick == NO_EDGE) {
		intc_timer_disarm(t);
		return;
	}
	d = elapsed(c, now);
	if (d >= p->next_irq_tick) {
		intc_set_gsi_locked(t->s, 0, 1, n);
		intc_set_gsi_locked(t->s, 0, 0, n);
		p->irqs++;
		if (c->mode == 2 || c->mode == 3) {
			/* The next period from the load time: no drift; missed ones coalesce. */
			p->next_irq_tick = (d / c->count + 1) * c->count;
			period_ns = ticks_to_ns(c->count);
			if (period_ns < INTC_MIN_PERIOD_NS) {
				pr_warn_once(
					"channel 0 period of %llu ns: interrupts every %llu ns",
					(unsigned long long)period_ns, INTC_MIN_PERIOD_NS);
				not_before = now + INTC_MIN_PERIOD_NS;
			}
		} else {
			p->next_irq_tick = NO_EDGE;
		}
	}
	ch0_arm(p, not_before);
}

void pit_restart(struct pit8254 *p)
{
	if (p->ch[0].loaded)
		ch0_arm(p, 0);
	else
		intc_timer_disarm(&p->timer);
}

void pit_reset(struct pit8254 *p)
{
	struct intc_timer timer = p->timer;

	memset(p, 0, sizeof(*p));
	p->timer = timer;
	p->next_irq_tick = NO_EDGE;
	for (unsigned int i = 0; i < 3; i++) {
		p->ch[i].count = 0x10000;
		p->ch[i].gate = i != 2; /* channel 2's gate is port 0x61 bit 0, low at reset */
	}
}

static void load_count(struct pit8254 *p, unsigned int ch, uint32_t val, uint64_t now)
{
	struct pit_channel *c = &p->ch[ch];

	if (c->bcd)
		pr_warn_once("BCD counting is not modelled: the count is taken as binary");
	c->count = val ? val : 0x10000;
	c->loaded = true;
	c->triggered = false;
	c->load_ns = now;
	if (!c->gate)
		c->gate_low_ns = now; /* paused from the start */
	if (ch == 0) {
		p->next_irq_tick = first_edge(c);
		ch0_arm(p, 0);
	}
}

static void latch_count(struct pit_channel *c, uint64_t now)
{
	if (c->count_latched)
		return; /* a latch holds until read */
	c->latched_count = channel_count(c, now);
	c->count_latched = c->rw_mode;
}

static void latch_status(struct pit_channel *c, uint64_t now)
{
	if (c->status_latched)
		return;
	c->status = (uint8_t)(channel_out(c, now) << 7 | !c->loaded << 6 | c->rw_mode << 4 |
			      c->mode << 1 | c->bcd);
	c->status_latched = true;
}

static void control_write(struct pit8254 *p, uint8_t val, uint64_t now)
{
	unsigned int ch = val >> 6, access = (val >> 4) & 3;
	struct pit_channel *c;

	if (ch == 3) { /* read-back: bits 1-3 select channels, 0 in bit 5/4 latches count/status */
		for (ch = 0; ch < 3; ch++) {
			if (!(val & (2u << ch)))
				continue;
			if (!(val & 0x20))
				latch_count(&p->ch[ch], now);
			if (!(val & 0x10))
				latch_status(&p->ch[ch], now);
		}
		return;
	}
	c = &p->ch[ch];
	if (access == 0) {
		latch_count(c, now);
		return;
	}
	/* A control word resets the counter's logic: it stops and waits for a count. */
	c->rw_mode = (uint8_t)access;
	c->read_state = (uint8_t)access;
	c->write_state = (uint8_t)access;
	c->mode = (val >> 1) & 7;
	if (c->mode > 5)
		c->mode -= 4; /* 6 and 7 are 2 and 3 */
	c->bcd = val & 1;
	c->loaded = false;
	c->triggered = false;
	c->count_latched = 0;
	c->status_latched = false;
	if (ch == 0) {
		p->next_irq_tick = NO_EDGE;
		intc_timer_disarm(&p->timer);
	}
}

static void counter_write(struct pit8254 *p, unsigned int ch, uint8_t val, uint64_t now)
{
	struct pit_channel *c = &p->ch[ch];

	switch (c->write_state) {
	case RW_LSB:
		load_count(p, ch, val, now);
		break;
	case RW_MSB:
		load_count(p, ch, (uint32_t)val << 8, now);
		break;
	case RW_WORD0:
		c->write_latch = val;
		c->write_state = RW_WORD1;
		break;
	case RW_WORD1:
		load_count(p, ch, c->write_latch | (uint32_t)val << 8, now);
		c->write_state = RW_WORD0;
		break;
	default:
		pr_warn_once("channel %u: count written before any control word: dropped", ch);
		break;
	}
}

static uint8_t counter_read(struct pit_channel *c, uint64_t now)
{
	uint16_t count;
	uint8_t v;

	if (c->status_latched) {
		c->status_latched = false;
		return c->status;
	}
	if (c->count_latched) {
		switch (c->count_latched) {
		case RW_MSB:
			c->count_latched = 0;
			return (uint8_t)(c->latched_count >> 8);
		case RW_WORD0:
			c->count_latched = RW_MSB;
			return (uint8_t)c->latched_count;
		default:
			c->count_latched = 0;
			return (uint8_t)c->latched_count;
		}
	}
	count = channel_count(c, now);
	switch (c->read_state) {
	case RW_MSB:
		return (uint8_t)(count >> 8);
	case RW_WORD0:
		c->read_state = RW_WORD1;
		return (uint8_t)count;
	case RW_WORD1:
		c->read_state = RW_WORD0;
		return (uint8_t)(count >> 8);
	default:
		v = (uint8_t)count;
		return v;
	}
}

static void set_gate(struct pit_channel *c, bool gate, uint64_t now)
{
	if (gate == c->gate)
		return;
	switch (c->mode) {
	case 0:
	case 4: /* the gate pauses counting */
		if (gate)
			c->load_ns += now - c->gate_low_ns;
		break;
	case 1:
	case 5: /* a rising edge (re)starts the count */
		if (gate) {
			c->load_ns = now;
			c->triggered = c->loaded;
		}
		break;
	default: /* 2, 3: low stops counting, a rising edge reloads */
		if (gate)
			c->load_ns = now;
		break;
	}
	if (!gate)
		c->gate_low_ns = now;
	c->gate = gate;
}

static uint8_t pit_port_read(struct intc_state *s, unsigned int port, struct intc_notify *n)
{
	if (port >= 3)
		return 0; /* the control word register is write-only */
	return counter_read(&s->pit.ch[port], intc_now());
}

static void pit_port_write(struct intc_state *s, unsigned int port, uint8_t val,
			   struct intc_notify *n)
{
	if (port >= 3)
		control_write(&s->pit, val, intc_now());
	else
		counter_write(&s->pit, port, val, intc_now());
}

/* Port 0x61: bit 0 channel 2 gate, bit 1 speaker data, bit 4 refresh toggle, bit 5 channel 2
 * OUT (what Linux's pit_calibrate_tsc() polls). */
static uint8_t port61_read(struct intc_state *s, unsigned int port, struct intc_notify *n)
{
	struct pit8254 *p = &s->pit;
	uint8_t v;

	/* NOTE: toggled per read rather than every 15 us: code that waits for a toggle always
	 * sees one. */
	p->refresh = !p->refresh;
	v = (uint8_t)(p->ch[2].gate | p->speaker_data << 1 | p->refresh << 4 |
		      channel_out(&p->ch[2], intc_now()) << 5);
	return v;
}

static void port61_write(struct intc_state *s, unsigned int port, uint8_t val,
			 struct intc_notify *n)
{
	s->pit.speaker_data = val & 2;
	set_gate(&s->pit.ch[2], val & 1, intc_now());
}

static uint64_t pit_bus_read(void *dev, uint64_t off, unsigned int size)
{
	return intc_pio_read(dev, pit_port_read, off, size);
}

static void pit_bus_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	intc_pio_write(dev, pit_port_write, off, val, size);
}

static uint64_t port61_bus_read(void *dev, uint64_t off, unsigned int size)
{
	return intc_pio_read(dev, port61_read, off, size);
}

static void port61_bus_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	intc_pio_write(dev, port61_write, off, val, size);
}

const struct bus_ops pit_ops = {.read = pit_bus_read, .write = pit_bus_write};
const struct bus_ops port61_ops = {.read = port61_bus_read, .write = port61_bus_write};
