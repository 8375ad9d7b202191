/* pic8259.c: the two cascaded 8259A PICs of a PC (Intel 8259A datasheet) and the PIIX edge/level
 * control registers at 0x4d0/0x4d1. The logic follows QEMU's hw/intc/i8259.c and KVM's
 * arch/x86/kvm/i8259.c, which Linux has been run against for years: ICW1-ICW4, OCW1-OCW3,
 * fully nested priorities with rotation, auto-EOI, poll mode, special mask. The slave's output
 * pulses master IRQ 2 whenever it has a request, as KVM does. */
#define pr_fmt(fmt) "pic: " fmt
#include "intc_internal.h"

#include <string.h>

#include "util/log.h"

static bool level_triggered(const struct pic8259 *p, unsigned int irq)
{
	return p->elcr >> irq & 1;
}

/* The priority (0 highest) of the highest-priority bit in (mask), 8 for none. */
static unsigned int get_priority(const struct pic8259 *p, uint8_t mask)
{
	unsigned int prio = 0;

	if (!mask)
		return 8;
	while (!(mask & (1u << ((prio + p->priority_add) & 7))))
		prio++;
	return prio;
}

/* The IRQ the controller asks the CPU for, or -1. */
static int pic_get_irq(const struct pic8259 *p)
{
	unsigned int prio = get_priority(p, p->irr & ~p->imr), cur;
	uint8_t mask;

	if (prio == 8)
		return -1;
	/* In special fully nested mode the slave's in-service request does not block the
	 * slave's higher-priority requests. */
	mask = p->isr;
	if (p->special_mask)
		mask &= ~p->imr;
	if (p->sfnm && p->master)
		mask &= ~(1u << 2);
	cur = get_priority(p, mask);
	if (prio < cur)
		return (int)((prio + p->priority_add) & 7);
	return -1;
}

static void set_irq1(struct pic8259 *p, unsigned int irq, int level)
{
	uint8_t mask = (uint8_t)(1u << irq);

	if (level_triggered(p, irq)) {
		if (level) {
			p->irr |= mask;
			p->last_irr |= mask;
		} else {
			p->irr &= (uint8_t)~mask;
			p->last_irr &= (uint8_t)~mask;
		}
	} else {
		if (level) {
			if (!(p->last_irr & mask))
				p->irr |= mask;
			p->last_irr |= mask;
		} else {
			p->last_irr &= (uint8_t)~mask;
		}
	}
}

/* The slave's request reaches the master as an edge on IRQ 2. */
static void pic_update(struct pic_pair *pp)
{
	if (pic_get_irq(&pp->pic[1]) >= 0) {
		set_irq1(&pp->pic[0], 2, 1);
		set_irq1(&pp->pic[0], 2, 0);
	}
}

bool pic_output(const struct pic_pair *pp)
{
	return pic_get_irq(&pp->pic[0]) >= 0;
}

void pic_set_irq(struct pic_pair *pp, unsigned int irq, int level)
{
	if (irq >= 16)
		return;
	set_irq1(&pp->pic[irq >> 3], irq & 7, level);
	pic_update(pp);
}

static void intack(struct pic8259 *p, unsigned int irq)
{
	if (p->auto_eoi) {
		if (p->rotate_on_auto_eoi)
			p->priority_add = (uint8_t)((irq + 1) & 7);
	} else {
		p->isr |= (uint8_t)(1u << irq);
	}
	/* A level-triggered request stays until the device drops it. */
	if (!level_triggered(p, irq))
		p->irr &= (uint8_t) ~(1u << irq);
}

int pic_inta(struct pic_pair *pp)
{
	struct pic8259 *m = &pp->pic[0], *sl = &pp->pic[1];
	int irq = pic_get_irq(m), vector;

	if (irq < 0) {
		pp->spurious++;
		return m->irq_base + 7;
	}
	if (irq == 2) {
		int irq2 = pic_get_irq(sl);

		if (irq2 >= 0) {
			intack(sl, (unsigned int)irq2);
		} else {
			pp->spurious++;
			irq2 = 7;
		}
		vector = sl->irq_base + irq2;
	} else {
		vector = m->irq_base + irq;
	}
	intack(m, (unsigned int)irq);
	pic_update(pp);
	return vector;
}

/* ICW1 (and power-up): everything but the ELCR and level-triggered requests goes. */
static void init_reset(struct pic8259 *p)
{
	uint8_t elcr = p->elcr, elcr_mask = p->elcr_mask, irr = p->irr & p->elcr;
	bool master = p->master;

	memset(p, 0, sizeof(*p));
	p->elcr = elcr;
	p->elcr_mask = elcr_mask;
	p->irr = irr;
	p->master = master;
}

void pic_reset(struct pic_pair *pp)
{
	memset(pp, 0, sizeof(*pp));
	pp->pic[0].master = true;
	/* IRQ 0, 1, 2 (cascade), 8 (RTC) and 13 (FPU) are edge-only on the PIIX. */
	pp->pic[0].elcr_mask = 0xf8;
	pp->pic[1].elcr_mask = 0xde;
}

static void pic_write(struct pic_pair *pp, struct pic8259 *p, unsigned int port, uint8_t val)
{
	unsigned int prio, irq;

	if (port == 0) {
		if (val & 0x10) { /* ICW1 */
			init_reset(p);
			p->init_state = 1;
			p->init4 = val & 1;
			p->single_mode = val & 2;
			if (val & 0x08)
				pr_warn_once(
					"ICW1 level-triggered mode: ignored, the ELCR decides");
		} else if (val & 0x08) { /* OCW3 */
			if (val & 0x04)
				p->poll = true;
			if (val & 0x02)
				p->read_reg_select = val & 1;
			if (val & 0x40)
				p->special_mask = (val >> 5) & 1;
		} else { /* OCW2 */
			switch (val >> 5) {
			case 0: /* rotate in auto-EOI mode: clear */
			case 4: /* set */
				p->rotate_on_auto_eoi = val >> 7;
				break;
			case 1: /* non-specific EOI */
			case 5: /* rotate on non-specific EOI */
				prio = get_priority(p, p->isr);
				if (prio != 8) {
					irq = (prio + p->priority_add) & 7;
					p->isr &= (uint8_t) ~(1u << irq);
					if (val >> 5 == 5)
						p->priority_add = (uint8_t)((irq + 1) & 7);
				}
				break;
			case 3: /* specific EOI */
				p->isr &= (uint8_t) ~(1u << (val & 7));
				break;
			case 6: /* set priority */
				p->priority_add = (uint8_t)((val + 1) & 7);
				break;
			case 7: /* rotate on specific EOI */
				irq = val & 7;
				p->isr &= (uint8_t) ~(1u << irq);
				p->priority_add = (uint8_t)((irq + 1) & 7);
				break;
			default: /* 2: no operation */
				break;
			}
		}
	} else {
		switch (p->init_state) {
		case 0: /* OCW1 */
			p->imr = val;
			break;
		case 1: /* ICW2 */
			p->irq_base = val & 0xf8;
			p->init_state = p->single_mode ? (p->init4 ? 3 : 0) : 2;
			break;
		case 2: /* ICW3: the cascade wiring is fixed */
			p->init_state = p->init4 ? 3 : 0;
			break;
		default: /* ICW4 */
			p->sfnm = (val >> 4) & 1;
			p->auto_eoi = (val >> 1) & 1;
			if (!(val & 1))
				pr_warn_once("ICW4 MCS-80/85 mode: treated as 8086 mode");
			p->init_state = 0;
			break;
		}
	}
	pic_update(pp);
}

static uint8_t pic_read(struct pic_pair *pp, struct pic8259 *p, unsigned int port)
{
	int irq;

	if (p->poll) {
		/* Poll mode: the read is the acknowledge. */
		p->poll = false;
		irq = pic_get_irq(p);
		if (irq < 0)
			return 0;
		intack(p, (unsigned int)irq);
		pic_update(pp);
		return (uint8_t)(0x80 | irq);
	}
	if (port == 0)
		return p->read_reg_select ? p->isr : p->irr;
	return p->imr;
}

/* Bus glue: every access may move the output that reaches CPU 0. */

static uint8_t master_read(struct intc_state *s, unsigned int port, struct intc_notify *n)
{
	uint8_t v = pic_read(&s->pic, &s->pic.pic[0], port & 1);

	lapic_update_pending(s, 0, false, n);
	return v;
}

static uint8_t slave_read(struct intc_state *s, unsigned int port, struct intc_notify *n)
{
	uint8_t v = pic_read(&s->pic, &s->pic.pic[1], port & 1);

	lapic_update_pending(s, 0, false, n);
	return v;
}

static void master_write(struct intc_state *s, unsigned int port, uint8_t val,
			 struct intc_notify *n)
{
	bool before = pic_output(&s->pic);

	pic_write(&s->pic, &s->pic.pic[0], port & 1, val);
	lapic_update_pending(s, 0, !before && pic_output(&s->pic), n);
}

static void slave_write(struct intc_state *s, unsigned int port, uint8_t val, struct intc_notify *n)
{
	bool before = pic_output(&s->pic);

	pic_write(&s->pic, &s->pic.pic[1], port & 1, val);
	lapic_update_pending(s, 0, !before && pic_output(&s->pic), n);
}

static uint8_t elcr_read(struct intc_state *s, unsigned int port, struct intc_notify *n)
{
	return s->pic.pic[port & 1].elcr;
}

static void elcr_write(struct intc_state *s, unsigned int port, uint8_t val, struct intc_notify *n)
{
	struct pic8259 *p = &s->pic.pic[port & 1];

	p->elcr = val & p->elcr_mask;
}

static uint64_t pic_master_bus_read(void *dev, uint64_t off, unsigned int size)
{
	return intc_pio_read(dev, master_read, off, size);
}

static void pic_master_bus_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	intc_pio_write(dev, master_write, off, val, size);
}

static uint64_t pic_slave_bus_read(void *dev, uint64_t off, unsigned int size)
{
	return intc_pio_read(dev, slave_read, off, size);
}

static void pic_slave_bus_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	intc_pio_write(dev, slave_write, off, val, size);
}

static uint64_t elcr_bus_read(void *dev, uint64_t off, unsigned int size)
{
	return intc_pio_read(dev, elcr_read, off, size);
}

static void elcr_bus_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	intc_pio_write(dev, elcr_write, off, val, size);
}

const struct bus_ops pic_master_ops = {.read = pic_master_bus_read, .write = pic_master_bus_write};
const struct bus_ops pic_slave_ops = {.read = pic_slave_bus_read, .write = pic_slave_bus_write};
const struct bus_ops pic_elcr_ops = {.read = elcr_bus_read, .write = elcr_bus_write};
