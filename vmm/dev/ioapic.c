/* ioapic.c: an 82093AA-style IOAPIC with 24 pins, version 0x11 (82093AA datasheet, section
 * 3.2): ID, version, arbitration ID and the redirection table behind IOREGSEL/IOWIN, plus the
 * EOI register at 0x40 that KVM's model also has. Edge pins deliver on a rising edge; level
 * pins deliver while asserted and Remote IRR is clear, Remote IRR set by the delivery and
 * cleared by the local APIC's EOI of that vector (or the EOI register). Masked edges are lost,
 * masked levels wait for the unmask, as on the chip and in KVM. */
#define pr_fmt(fmt) "ioapic: " fmt
#include "intc_internal.h"

#include <string.h>

#include "util/log.h"

#define IOAPIC_REG_SELECT 0x00
#define IOAPIC_REG_WINDOW 0x10
#define IOAPIC_REG_EOI	  0x40

#define IOAPIC_ID      0x00
#define IOAPIC_VER     0x01
#define IOAPIC_ARB     0x02
#define IOAPIC_REDTBL  0x10
#define IOAPIC_VERSION 0x11


void ioapic_reset(struct ioapic *io, uint32_t id)
{
	memset(io, 0, sizeof(*io));
	io->id = id & 0xf;
	for (unsigned int i = 0; i < IOAPIC_PINS; i++)
		io->redtbl[i] = RTE_MASKED;
}

/* Sends pin (pin)'s message if it may go now. */
static void service(struct intc_state *s, unsigned int pin, struct intc_notify *n)
{
	struct ioapic *io = &s->ioapic;
	uint64_t e = io->redtbl[pin];
	struct apic_msg m = {
		.vector = (uint8_t)(e & RTE_VECTOR),
		.mode = (uint8_t)((e >> RTE_DELMODE_SHIFT) & 7),
		.dest = (uint8_t)(e >> RTE_DEST_SHIFT),
		.logical = e & RTE_DESTMODE,
		.level = e & RTE_LEVEL,
	};

	if ((e & RTE_MASKED) || (m.level && (e & RTE_REMOTE_IRR)))
		return;
	if (m.mode == APIC_DM_EXTINT || m.mode == APIC_DM_INIT || m.mode == APIC_DM_SMI ||
	    m.mode == 3 || m.mode == APIC_DM_STARTUP) {
		pr_warn_once("pin %u: delivery mode %u not supported: dropped", pin, m.mode);
		return;
	}
	if (apic_deliver(s, &m, n) && m.level && m.mode != APIC_DM_NMI)
		io->redtbl[pin] |= RTE_REMOTE_IRR;
}

void ioapic_set_irq(struct intc_state *s, unsigned int pin, int level, struct intc_notify *n)
{
	struct ioapic *io = &s->ioapic;
	uint32_t mask;
	bool was;
	uint64_t e;

	if (pin >= IOAPIC_PINS)
		return;
	mask = 1u << pin;
	was = io->irr & mask;
	if (!level) {
		io->irr &= ~mask;
		return;
	}
	io->irr |= mask;
	e = io->redtbl[pin];
	if (!(e & RTE_LEVEL) && was)
		return; /* no edge */
	service(s, pin, n);
}

void ioapic_eoi(struct intc_state *s, uint8_t vector, struct intc_notify *n)
{
	struct ioapic *io = &s->ioapic;

	for (unsigned int pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t e = io->redtbl[pin];

		if ((e & RTE_VECTOR) != vector || !(e & RTE_LEVEL) || !(e & RTE_REMOTE_IRR))
			continue;
		io->redtbl[pin] = e & ~RTE_REMOTE_IRR;
		/* A line still asserted interrupts again. */
		if (io->irr & (1u << pin))
			service(s, pin, n);
	}
}

static uint32_t read_indirect(const struct ioapic *io)
{
	uint32_t reg = io->ioregsel & 0xff, pin;

	switch (reg) {
	case IOAPIC_ID:
	case IOAPIC_ARB:
		return io->id << 24;
	case IOAPIC_VER:
		return (uint32_t)(IOAPIC_PINS - 1) << 16 | IOAPIC_VERSION;
	default:
		if (reg < IOAPIC_REDTBL)
			return 0;
		pin = (reg - IOAPIC_REDTBL) / 2;
		if (pin >= IOAPIC_PINS)
			return 0;
		return (uint32_t)(io->redtbl[pin] >> (reg & 1 ? 32 : 0));
	}
}

static void write_indirect(struct intc_state *s, uint32_t val, struct intc_notify *n)
{
	struct ioapic *io = &s->ioapic;
	uint32_t reg = io->ioregsel & 0xff, pin;
	uint64_t e;

	if (reg == IOAPIC_ID) {
		io->id = (val >> 24) & 0xf;
		return;
	}
	if (reg < IOAPIC_REDTBL)
		return; /* version and arbitration ID are read-only */
	pin = (reg - IOAPIC_REDTBL) / 2;
	if (pin >= IOAPIC_PINS) {
		pr_warn_once("write to register 0x%x beyond the %u pins: dropped", reg,
			     IOAPIC_PINS);
		return;
	}
	e = io->redtbl[pin];
	if (reg & 1) {
		e = (e & ~RTE_HIGH_WRITABLE) | ((uint64_t)val << 32 & RTE_HIGH_WRITABLE);
	} else {
		e = (e & ~RTE_LOW_WRITABLE) | (val & RTE_LOW_WRITABLE);
		/* Linux (and Xen) expect an entry switched to edge to lose its Remote IRR: it is
		 * how they EOI an IOAPIC without an EOI register (KVM does the same). */
		if (!(e & RTE_LEVEL))
			e &= ~RTE_REMOTE_IRR;
	}
	io->redtbl[pin] = e;
	/* An unmasked level entry whose line is asserted interrupts now. */
	if ((e & RTE_LEVEL) && (io->irr & (1u << pin)))
		service(s, pin, n);
}

static uint64_t ioapic_bus_read(void *dev, uint64_t off, unsigned int size)
{
	struct intc_state *s = dev;
	uint32_t v = 0;

	intc_lock(s);
	switch (off) {
	case IOAPIC_REG_SELECT:
		v = s->ioapic.ioregsel;
		break;
	case IOAPIC_REG_WINDOW:
		v = read_indirect(&s->ioapic);
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&s->lock);
	if (size < 4)
		v &= (1u << (8 * size)) - 1;
	return v;
}

static void ioapic_bus_write(void *dev, uint64_t off, uint64_t val, unsigned int size)
{
	struct intc_state *s = dev;
	struct intc_notify n = {0};

	/* As KVM: 32- and 64-bit writes, of which the low 32 bits count. */
	if (size != 4 && size != 8) {
		pr_warn_once("%u-byte write at 0x%llx: dropped", size, (unsigned long long)off);
		return;
	}
	intc_lock(s);
	switch (off) {
	case IOAPIC_REG_SELECT:
		s->ioapic.ioregsel = (uint32_t)val & 0xff;
		break;
	case IOAPIC_REG_WINDOW:
		write_indirect(s, (uint32_t)val, &n);
		break;
	case IOAPIC_REG_EOI:
		ioapic_eoi(s, (uint8_t)val, &n);
		break;
	default:
		break;
	}
	intc_unlock(s, &n);
}

const struct bus_ops ioapic_ops = {.read = ioapic_bus_read, .write = ioapic_bus_write};
