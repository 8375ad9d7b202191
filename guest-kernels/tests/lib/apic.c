/* apic.c: the local APIC in xAPIC mode (MMIO at 0xfee00000, SDM vol. 3 chapter 11) and the
 * IOAPIC (82093AA datasheet: IOREGSEL at +0x00, IOWIN at +0x10). */
#include "guest.h"

#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN    0x10
#define IOAPIC_VER    0x01
#define IOAPIC_REDTBL 0x10
#define RTE_MASKED    (1u << 16)
#define RTE_LEVEL     (1u << 15)
#define RTE_LOW	      (1u << 13)
#define ICR_BUSY      (1u << 12)
#define IPI_POLLS     100000

uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(LAPIC_BASE + reg);
}

void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(LAPIC_BASE + reg, v);
}

void lapic_init(void)
{
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_LVT_LINT0, LAPIC_LVT_MASKED);
	lapic_write(LAPIC_LVT_LINT1, LAPIC_LVT_MASKED);
	lapic_write(LAPIC_LVT_ERROR, VEC_LAPIC_ERROR);
	lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS); /* APIC software enable */
}

unsigned int lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

void lapic_timer_start(unsigned int vector, unsigned int divide, uint32_t count, bool periodic)
{
	/* Divide configuration register: bits 0,1,3 encode 2^(n+1); 0b1011 is divide by 1. */
	static const uint8_t div_code[8] = {0xb, 0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xa};
	unsigned int log2 = 0;

	while ((1u << log2) < divide && log2 < 7)
		log2++;
	lapic_write(LAPIC_TIMER_INIT, 0);
	lapic_write(LAPIC_TIMER_DIV, div_code[log2]);
	lapic_write(LAPIC_LVT_TIMER, vector | (periodic ? LAPIC_TIMER_PERIODIC : 0));
	lapic_write(LAPIC_TIMER_INIT, count);
}

void lapic_timer_stop(void)
{
	lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED);
	lapic_write(LAPIC_TIMER_INIT, 0);
}

bool lapic_send_ipi(unsigned int apic_id, uint32_t icr_low)
{
	lapic_write(LAPIC_ICR_HIGH, apic_id << 24);
	lapic_write(LAPIC_ICR_LOW, icr_low);
	for (int i = 0; i < IPI_POLLS; i++) {
		if (!(lapic_read(LAPIC_ICR_LOW) & ICR_BUSY))
			return true;
		cpu_relax();
	}
	return false;
}

uint32_t ioapic_read(uint32_t reg)
{
	mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
	return mmio_read32(IOAPIC_BASE + IOAPIC_WIN);
}

void ioapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
	mmio_write32(IOAPIC_BASE + IOAPIC_WIN, v);
}

unsigned int ioapic_pins(void)
{
	return ((ioapic_read(IOAPIC_VER) >> 16) & 0xff) + 1;
}

void ioapic_route(unsigned int pin, unsigned int vector, unsigned int apic_id, bool level_low)
{
	uint32_t lo = vector | (level_low ? RTE_LEVEL | RTE_LOW : 0);

	/* Mask while the halves are inconsistent. */
	ioapic_write(IOAPIC_REDTBL + 2 * pin, RTE_MASKED);
	ioapic_write(IOAPIC_REDTBL + 2 * pin + 1, apic_id << 24);
	ioapic_write(IOAPIC_REDTBL + 2 * pin, lo);
}

void ioapic_mask(unsigned int pin)
{
	ioapic_write(IOAPIC_REDTBL + 2 * pin, RTE_MASKED);
}

void ioapic_mask_all(void)
{
	unsigned int n = ioapic_pins();

	for (unsigned int pin = 0; pin < n && pin < 64; pin++)
		ioapic_mask(pin);
}
