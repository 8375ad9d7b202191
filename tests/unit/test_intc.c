/* test_intc.c: the user-space interrupt controllers (vmm/dev/intc) as a CPU engine and a guest
 * drive them: the guest's port and MMIO accesses go through real buses, timers run on a real
 * io_uring loop on its own thread, and this thread plays the engine (intc_pending, intc_ack,
 * EOI). Timing checks have generous upper bounds; lower bounds only where the models must
 * never fire early. */
#include "dev/intc.h"

#include <errno.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "core/layout.h"
#include "test.h"

#define NCPUS 4

/* The fake engine: counts what intc asks of it. */
struct engine {
	_Atomic unsigned int kicks[NCPUS];
	_Atomic unsigned int inits[NCPUS];
	_Atomic unsigned int sipis[NCPUS];
	_Atomic unsigned int nmis[NCPUS];
	_Atomic int sipi_vector[NCPUS];
};

static void eng_kick(void *ctx, unsigned int cpu)
{
	struct engine *e = ctx;

	if (cpu < NCPUS)
		e->kicks[cpu]++;
}

static void eng_init(void *ctx, unsigned int cpu)
{
	struct engine *e = ctx;

	if (cpu < NCPUS)
		e->inits[cpu]++;
}

static void eng_sipi(void *ctx, unsigned int cpu, uint8_t vector)
{
	struct engine *e = ctx;

	if (cpu < NCPUS) {
		e->sipis[cpu]++;
		e->sipi_vector[cpu] = vector;
	}
}

static void eng_nmi(void *ctx, unsigned int cpu)
{
	struct engine *e = ctx;

	if (cpu < NCPUS)
		e->nmis[cpu]++;
}

static const struct intc_ops eng_ops = {
	.kick = eng_kick, .init = eng_init, .sipi = eng_sipi, .nmi = eng_nmi};

struct fx {
	struct loop loop;
	struct intc ic;
	struct bus pio, mmio;
	struct engine eng;
	bool ok;
};

static struct fx fx;

static bool fx_setup(unsigned int ncpus)
{
	memset(&fx, 0, sizeof(fx));
	if (loop_init(&fx.loop, 64)) {
		CHECK(!"loop_init");
		return false;
	}
	if (intc_init(&fx.ic, ncpus, &fx.loop, &eng_ops, &fx.eng)) {
		CHECK(!"intc_init");
		loop_fini(&fx.loop);
		return false;
	}
	bus_init(&fx.pio, "pio");
	bus_init(&fx.mmio, "mmio");
	CHECK_EQ(intc_attach(&fx.ic, &fx.pio, &fx.mmio), 0);
	CHECK_EQ(loop_start(&fx.loop), 0);
	fx.ok = true;
	return true;
}

static void fx_teardown(void)
{
	loop_join(&fx.loop);
	intc_fini(&fx.ic);
	loop_fini(&fx.loop);
	fx.ok = false;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void outb(uint16_t port, uint8_t v)
{
	CHECK(bus_dispatch(&fx.pio, port, &v, 1, true));
}

static uint8_t inb(uint16_t port)
{
	uint8_t v = 0;

	CHECK(bus_dispatch(&fx.pio, port, &v, 1, false));
	return v;
}

static void io_write(uint32_t reg, uint32_t v)
{
	CHECK(bus_dispatch(&fx.mmio, LAYOUT_IOAPIC, &reg, 4, true));
	CHECK(bus_dispatch(&fx.mmio, LAYOUT_IOAPIC + 0x10, &v, 4, true));
}

static uint32_t io_read(uint32_t reg)
{
	uint32_t v = 0;

	CHECK(bus_dispatch(&fx.mmio, LAYOUT_IOAPIC, &reg, 4, true));
	CHECK(bus_dispatch(&fx.mmio, LAYOUT_IOAPIC + 0x10, &v, 4, false));
	return v;
}

static void io_route(unsigned int pin, uint32_t lo, uint8_t dest)
{
	io_write(0x10 + 2 * pin, 1u << 16);
	io_write(0x11 + 2 * pin, (uint32_t)dest << 24);
	io_write(0x10 + 2 * pin, lo);
}

static void la_write(unsigned int cpu, uint32_t reg, uint32_t v)
{
	intc_lapic_write(&fx.ic, cpu, reg, v, 4);
}

static uint32_t la_read(unsigned int cpu, uint32_t reg)
{
	return (uint32_t)intc_lapic_read(&fx.ic, cpu, reg, 4);
}

static void gsi(unsigned int n, int level)
{
	struct irq_chip *chip = intc_irq_chip(&fx.ic);

	chip->set_level(chip, n, level);
}

static void pulse(unsigned int n)
{
	gsi(n, 1);
	gsi(n, 0);
}

/* What lapic_init() in guest-kernels/tests/lib/apic.c programs. */
static void lapic_enable(unsigned int cpu)
{
	la_write(cpu, 0x80, 0);
	la_write(cpu, 0x350, 1u << 16);
	la_write(cpu, 0x360, 1u << 16);
	la_write(cpu, 0x370, 0xfe);
	la_write(cpu, 0xf0, 0x1ff);
}

static void eoi(unsigned int cpu)
{
	la_write(cpu, 0xb0, 0);
}

/* Bit (v) of the ISR/TMR/IRR register group at (base). */
static bool vec_bit(unsigned int cpu, uint32_t base, unsigned int v)
{
	return la_read(cpu, base + 0x10 * (v / 32)) >> (v % 32) & 1;
}

/* Waits up to (ms) for intc_pending(cpu). */
static bool wait_pending(unsigned int cpu, unsigned int ms)
{
	uint64_t end = now_ns() + ms * 1000000ULL;

	while (!intc_pending(&fx.ic, cpu)) {
		if (now_ns() > end)
			return false;
		usleep(200);
	}
	return true;
}

/* ---- 8259A ---- */

static void pic_init(uint8_t icw4)
{
	outb(0x20, 0x11);
	outb(0xa0, 0x11);
	outb(0x21, 0x30);
	outb(0xa1, 0x38);
	outb(0x21, 0x04);
	outb(0xa1, 0x02);
	outb(0x21, icw4);
	outb(0xa1, icw4);
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

static void test_pic(void)
{
	if (!fx_setup(2))
		return;
	pic_init(0x01);
	CHECK_EQ(inb(0x21), 0xff);

	/* Reset state: LINT0 masked, so the PIC does not reach CPU 0... */
	outb(0x21, 0xfb); /* IRQ 2 (cascade) open */
	outb(0x21, 0xef); /* IRQ 4 only */
	pulse(4);
	CHECK(!intc_pending(&fx.ic, 0));
	CHECK_EQ(intc_ack(&fx.ic, 0), -1);
	/* ...until LINT0 is ExtINT (Linux's virtual wire mode). */
	lapic_enable(0);
	la_write(0, 0x350, 0x700);
	CHECK(intc_pending(&fx.ic, 0));
	CHECK(!intc_pending(&fx.ic, 1)); /* only CPU 0 has the wire */
	CHECK(fx.eng.kicks[0] >= 1);
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x34);
	CHECK(!intc_pending(&fx.ic, 0));
	outb(0x20, 0x0b); /* OCW3: read ISR */
	CHECK_EQ(inb(0x20), 0x10);
	outb(0x20, 0x0a); /* OCW3: read IRR */
	CHECK_EQ(inb(0x20), 0x00);

	/* A masked request is held in IRR and delivered once unmasked. */
	pulse(5);
	CHECK(!intc_pending(&fx.ic, 0));
	CHECK_EQ(inb(0x20), 0x20);
	outb(0x21, 0xc9);		 /* IRQ 1, 2, 4, 5 open */
	CHECK(!intc_pending(&fx.ic, 0)); /* 5 waits behind 4 in service */
	pulse(1);
	CHECK(intc_pending(&fx.ic, 0)); /* 1 beats 4 */
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x31);
	CHECK(!intc_pending(&fx.ic, 0));
	outb(0x20, 0x20);		 /* non-specific EOI: IRQ 1 */
	CHECK(!intc_pending(&fx.ic, 0)); /* 4 still in service */
	outb(0x20, 0x0b);
	CHECK_EQ(inb(0x20), 0x10);
	outb(0x20, 0x64); /* specific EOI of IRQ 4 */
	CHECK(intc_pending(&fx.ic, 0));
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x35);
	outb(0x20, 0x20);
	CHECK_EQ(inb(0x20), 0x00); /* ISR empty */

	/* The slave through the cascade: vector of the slave, both ISRs set. */
	outb(0xa1, 0xfb); /* IRQ 10 */
	pulse(10);
	CHECK(intc_pending(&fx.ic, 0));
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x3a);
	outb(0xa0, 0x0b);
	CHECK_EQ(inb(0xa0), 0x04);
	CHECK_EQ(inb(0x20), 0x04);
	outb(0xa0, 0x20);
	outb(0x20, 0x20);
	CHECK_EQ(inb(0xa0), 0x00);
	CHECK_EQ(inb(0x20), 0x00);

	/* A request that vanishes from the slave after reaching the master: spurious IRQ 15. */
	pulse(10);
	outb(0xa1, 0xff);
	CHECK(intc_pending(&fx.ic, 0));
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x3f);
	outb(0xa0, 0x0b);
	CHECK_EQ(inb(0xa0), 0x00); /* nothing in service on the slave */
	outb(0x20, 0x20);

	/* Level-triggered through the ELCR: stays requested until the line drops. */
	outb(0x4d1, 0x02); /* IRQ 9 level */
	CHECK_EQ(inb(0x4d1), 0x02);
	outb(0x4d0, 0xff);
	CHECK_EQ(inb(0x4d0), 0xf8); /* IRQ 0-2 are edge-only */
	outb(0x4d0, 0x00);
	outb(0xa1, 0xfd);
	gsi(9, 1);
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x39);
	outb(0xa0, 0x20);
	outb(0x20, 0x20);
	CHECK(intc_pending(&fx.ic, 0)); /* still asserted */
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x39);
	gsi(9, 0);
	outb(0xa0, 0x20);
	outb(0x20, 0x20);
	CHECK(!intc_pending(&fx.ic, 0));
	outb(0xa1, 0xff);

	/* Auto-EOI (what Linux's check_timer() sets): nothing stays in service. */
	pic_init(0x03);
	outb(0x21, 0xf7); /* IRQ 3 */
	pulse(3);
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x33);
	outb(0x20, 0x0b);
	CHECK_EQ(inb(0x20), 0x00);
	pulse(3);
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x33);

	/* Poll mode (OCW3 bit 2): the read is the acknowledge. */
	pulse(3);
	outb(0x20, 0x0c);
	CHECK_EQ(inb(0x20), 0x83);
	CHECK(!intc_pending(&fx.ic, 0));

	/* With the APIC globally disabled the PIC reaches CPU 0 whatever LINT0 says. */
	la_write(0, 0x350, 1u << 16);
	pulse(3);
	CHECK(!intc_pending(&fx.ic, 0));
	CHECK_EQ(intc_set_apic_base(&fx.ic, 0, 0xfee00100), 0);
	CHECK(intc_pending(&fx.ic, 0));
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x33);
	CHECK_EQ(intc_lapic_read(&fx.ic, 0, 0x30, 4), 0xffffffffu); /* window not decoded */
	CHECK_EQ(intc_set_apic_base(&fx.ic, 0, 0xfee00900), 0);
	CHECK_EQ(la_read(0, 0x350), 1u << 16); /* came back reset */
	CHECK_EQ(la_read(0, 0xf0), 0xff);
	fx_teardown();
}

/* ---- IOAPIC ---- */

static void test_ioapic(void)
{
	uint32_t lo;

	if (!fx_setup(NCPUS))
		return;
	CHECK_EQ(io_read(0x01), 0x170011);
	CHECK_EQ(io_read(0x10) & (1u << 16), 1u << 16); /* masked at reset */
	io_write(0x00, 0x0e000000);
	CHECK_EQ(io_read(0x00), 0x0e000000);
	CHECK_EQ(io_read(0x02), 0x0e000000);
	for (unsigned int c = 0; c < NCPUS; c++)
		lapic_enable(c);

	/* Edge, fixed, physical destination 1. */
	io_route(5, 0x45, 1);
	CHECK_EQ(io_read(0x10 + 10), 0x45);
	CHECK_EQ(io_read(0x11 + 10), 1u << 24);
	unsigned int kicks = fx.eng.kicks[1];
	pulse(5);
	CHECK(intc_pending(&fx.ic, 1));
	CHECK(!intc_pending(&fx.ic, 0));
	CHECK(!intc_pending(&fx.ic, 2));
	CHECK(fx.eng.kicks[1] > kicks);
	CHECK(vec_bit(1, 0x200, 0x45));
	CHECK_EQ(intc_ack(&fx.ic, 1), 0x45);
	CHECK(!vec_bit(1, 0x200, 0x45));
	CHECK(vec_bit(1, 0x100, 0x45));
	CHECK(!vec_bit(1, 0x180, 0x45)); /* edge: TMR clear */
	CHECK_EQ(intc_ack(&fx.ic, 1), -1);
	eoi(1);
	CHECK(!vec_bit(1, 0x100, 0x45));

	/* A held line gives one edge only; a masked edge is lost. */
	gsi(5, 1);
	gsi(5, 1);
	CHECK_EQ(intc_ack(&fx.ic, 1), 0x45);
	CHECK_EQ(intc_ack(&fx.ic, 1), -1);
	eoi(1);
	gsi(5, 0);
	io_write(0x10 + 10, 0x45 | 1u << 16);
	pulse(5);
	io_write(0x10 + 10, 0x45);
	CHECK(!intc_pending(&fx.ic, 1));

	/* Flat logical destinations. */
	for (unsigned int c = 0; c < NCPUS; c++) {
		la_write(c, 0xe0, 0xffffffff);
		la_write(c, 0xd0, (1u << c) << 24);
	}
	CHECK_EQ(la_read(2, 0xd0), 0x04000000);
	io_route(6, 0x46 | 1u << 11, 0x04); /* logical, CPU 2's bit */
	pulse(6);
	CHECK(intc_pending(&fx.ic, 2));
	CHECK(!intc_pending(&fx.ic, 1));
	CHECK_EQ(intc_ack(&fx.ic, 2), 0x46);
	eoi(2);

	/* Lowest priority among CPUs 0 and 1: the one with the lower TPR takes it. */
	la_write(0, 0x80, 0x80);
	io_route(8, 0x48 | 1u << 8 | 1u << 11, 0x03);
	pulse(8);
	CHECK(intc_pending(&fx.ic, 1));
	CHECK(!vec_bit(0, 0x200, 0x48));
	CHECK_EQ(intc_ack(&fx.ic, 1), 0x48);
	eoi(1);
	la_write(0, 0x80, 0);

	/* Level-triggered: Remote IRR holds the pin until the EOI; an asserted line comes back. */
	io_route(7, 0x57 | 1u << 15 | 1u << 13, 0);
	gsi(7, 1);
	CHECK(intc_pending(&fx.ic, 0));
	lo = io_read(0x10 + 14);
	CHECK(lo & (1u << 14));
	CHECK(vec_bit(0, 0x180, 0x57)); /* TMR */
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x57);
	gsi(7, 0);
	gsi(7, 1); /* re-asserted while Remote IRR is set: no new message */
	CHECK(!vec_bit(0, 0x200, 0x57));
	io_write(0x10 + 14, 0x57 | 1u << 15 | 1u << 13); /* rewriting keeps Remote IRR */
	CHECK(io_read(0x10 + 14) & (1u << 14));
	eoi(0);
	CHECK(intc_pending(&fx.ic, 0)); /* still asserted: delivered again */
	CHECK(io_read(0x10 + 14) & (1u << 14));
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x57);
	gsi(7, 0);
	eoi(0);
	CHECK(!(io_read(0x10 + 14) & (1u << 14)));
	CHECK(!intc_pending(&fx.ic, 0));

	/* The IOAPIC's own EOI register (0x40) also clears Remote IRR. */
	gsi(7, 1);
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x57);
	gsi(7, 0);
	uint32_t v = 0x57;
	CHECK(bus_dispatch(&fx.mmio, LAYOUT_IOAPIC + 0x40, &v, 4, true));
	CHECK(!(io_read(0x10 + 14) & (1u << 14)));
	eoi(0);

	/* A masked level stays pending in the IOAPIC and goes out on unmask. */
	io_write(0x10 + 14, 0x57 | 1u << 15 | 1u << 16);
	gsi(7, 1);
	CHECK(!intc_pending(&fx.ic, 0));
	io_write(0x10 + 14, 0x57 | 1u << 15);
	CHECK(intc_pending(&fx.ic, 0));
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x57);
	gsi(7, 0);
	eoi(0);

	/* Broadcast (physical 0xff) reaches every CPU. */
	io_route(9, 0x59, 0xff);
	pulse(9);
	for (unsigned int c = 0; c < NCPUS; c++) {
		CHECK_EQ(intc_ack(&fx.ic, c), 0x59);
		eoi(c);
	}
	/* NMI delivery goes to the engine. */
	io_route(10, 4u << 8, 3);
	pulse(10);
	CHECK_EQ(fx.eng.nmis[3], 1);
	fx_teardown();
}

/* ---- local APIC priorities and IPIs ---- */

static void test_lapic_tpr(void)
{
	if (!fx_setup(2))
		return;
	lapic_enable(0);
	CHECK_EQ(la_read(0, 0x30), 0x50014);
	CHECK_EQ(la_read(0, 0x20), 0);
	CHECK_EQ(la_read(1, 0x20), 1u << 24);
	CHECK_EQ(intc_apic_base(&fx.ic, 0), 0xfee00900);
	CHECK_EQ(intc_apic_base(&fx.ic, 1), 0xfee00800);

	la_write(0, 0x80, 0x50);
	CHECK_EQ(la_read(0, 0xa0), 0x50);
	/* Self IPIs put vectors in IRR. */
	la_write(0, 0x300, 0x40000 | 0x45);
	CHECK(vec_bit(0, 0x200, 0x45));
	CHECK(!intc_pending(&fx.ic, 0)); /* class 4 <= TPR class 5 */
	CHECK_EQ(intc_ack(&fx.ic, 0), -1);
	la_write(0, 0x80, 0x30);
	CHECK(intc_pending(&fx.ic, 0));
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x45);
	CHECK_EQ(la_read(0, 0xa0), 0x40); /* PPR from the ISR */
	la_write(0, 0x300, 0x40000 | 0x42);
	CHECK(!intc_pending(&fx.ic, 0)); /* same class as the one in service */
	la_write(0, 0x300, 0x40000 | 0x61);
	CHECK(intc_pending(&fx.ic, 0));
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x61);
	CHECK_EQ(la_read(0, 0xa0), 0x60);
	eoi(0); /* 0x61 */
	CHECK(!intc_pending(&fx.ic, 0));
	eoi(0); /* 0x45 */
	CHECK(intc_pending(&fx.ic, 0));
	CHECK_EQ(intc_ack(&fx.ic, 0), 0x42);
	eoi(0);
	CHECK_EQ(la_read(0, 0xa0), 0x30);
	CHECK(!intc_pending(&fx.ic, 0));

	/* Software disabled (SVR bit 8 clear): fixed interrupts are dropped, LVTs stay masked. */
	la_write(0, 0xf0, 0xff);
	la_write(0, 0x300, 0x40000 | 0x70);
	CHECK(!vec_bit(0, 0x200, 0x70));
	la_write(0, 0x320, 0x40);
	CHECK_EQ(la_read(0, 0x320), 0x10040);
	fx_teardown();
}

static void test_ipi(void)
{
	if (!fx_setup(NCPUS))
		return;
	for (unsigned int c = 0; c < NCPUS; c++)
		lapic_enable(c);

	/* INIT assert reaches CPU 1 and resets its APIC; the de-assert does nothing. */
	la_write(1, 0x80, 0x20);
	la_write(0, 0x310, 1u << 24);
	la_write(0, 0x300, 0x4500);
	CHECK_EQ(fx.eng.inits[1], 1);
	CHECK_EQ(fx.eng.inits[0] + fx.eng.inits[2] + fx.eng.inits[3], 0);
	CHECK_EQ(la_read(1, 0xf0), 0xff);
	CHECK_EQ(la_read(1, 0x80), 0);
	CHECK_EQ(la_read(1, 0x20), 1u << 24);	     /* the ID survives */
	CHECK_EQ(la_read(0, 0x300) & (1u << 12), 0); /* delivery status idle */
	la_write(0, 0x300, 0x8500);
	CHECK_EQ(fx.eng.inits[1], 1);
	/* STARTUP with its vector. */
	la_write(0, 0x300, 0x4610);
	CHECK_EQ(fx.eng.sipis[1], 1);
	CHECK_EQ(fx.eng.sipi_vector[1], 0x10);
	CHECK_EQ(fx.eng.sipis[2], 0);
	/* INIT to all but self. */
	la_write(0, 0x300, 0xc4500);
	CHECK_EQ(fx.eng.inits[0], 0);
	CHECK_EQ(fx.eng.inits[1], 2);
	CHECK_EQ(fx.eng.inits[2], 1);
	CHECK_EQ(fx.eng.inits[3], 1);
	for (unsigned int c = 1; c < NCPUS; c++)
		lapic_enable(c);

	/* Fixed to all but self, to all, physical and logical destinations. */
	la_write(0, 0x300, 0xc0000 | 0x50);
	CHECK(!intc_pending(&fx.ic, 0));
	for (unsigned int c = 1; c < NCPUS; c++) {
		CHECK_EQ(intc_ack(&fx.ic, c), 0x50);
		eoi(c);
	}
	la_write(2, 0x300, 0x80000 | 0x51);
	for (unsigned int c = 0; c < NCPUS; c++) {
		CHECK_EQ(intc_ack(&fx.ic, c), 0x51);
		eoi(c);
	}
	la_write(0, 0x310, 3u << 24);
	la_write(0, 0x300, 0x52);
	CHECK_EQ(intc_ack(&fx.ic, 3), 0x52);
	CHECK_EQ(intc_ack(&fx.ic, 1), -1);
	eoi(3);
	/* Cluster model: cluster 1, CPUs bit 0 and 1. */
	la_write(1, 0xe0, 0x0fffffff);
	la_write(1, 0xd0, 0x11000000);
	la_write(2, 0xe0, 0x0fffffff);
	la_write(2, 0xd0, 0x12000000);
	la_write(0, 0x310, 0x12u << 24);
	la_write(0, 0x300, 0x800 | 0x53);
	CHECK_EQ(intc_ack(&fx.ic, 2), 0x53);
	CHECK_EQ(intc_ack(&fx.ic, 1), -1);
	eoi(2);
	/* A destination no APIC has: nothing, nothing breaks. */
	la_write(0, 0x310, 0xfeu << 24);
	la_write(0, 0x300, 0x54);
	for (unsigned int c = 0; c < NCPUS; c++)
		CHECK(!intc_pending(&fx.ic, c));
	/* NMI IPI. */
	la_write(0, 0x310, 2u << 24);
	la_write(0, 0x300, 0x400);
	CHECK_EQ(fx.eng.nmis[2], 1);
	fx_teardown();
}

/* ---- timers ---- */

static void test_lapic_timer(void)
{
	uint64_t t0, t1;
	uint32_t cur;
	unsigned int n = 0;

	if (!fx_setup(2))
		return;
	lapic_enable(1);
	/* One-shot, divide by 1, 5 ms. */
	la_write(1, 0x3e0, 0xb);
	la_write(1, 0x320, 0x40);
	t0 = now_ns();
	la_write(1, 0x380, 5000000);
	cur = la_read(1, 0x390);
	CHECK(cur > 0 && cur <= 5000000);
	CHECK(!intc_pending(&fx.ic, 1));
	CHECK(wait_pending(1, 2000));
	t1 = now_ns();
	CHECK(t1 - t0 >= 5000000); /* never early */
	CHECK(fx.eng.kicks[1] >= 1);
	CHECK_EQ(la_read(1, 0x390), 0);
	CHECK_EQ(intc_ack(&fx.ic, 1), 0x40);
	eoi(1);
	usleep(20000);
	CHECK(!intc_pending(&fx.ic, 1)); /* one shot only */
	CHECK(!intc_pending(&fx.ic, 0));

	/* Divide by 16 counts 16 times slower: after ~1 ms the count moved about 62500. */
	la_write(1, 0x3e0, 0x3);
	la_write(1, 0x380, 100000000);
	usleep(1000);
	cur = la_read(1, 0x390);
	CHECK(cur < 100000000 && cur > 50000000); /* 1 s at divide 1 would be 0 */
	/* At 1 GHz / 16, bounded by when the reads could have happened. */
	uint64_t a0 = now_ns(), a1, b0, b1;
	uint32_t c0, c1;

	c0 = la_read(1, 0x390);
	a1 = now_ns();
	usleep(5000);
	b0 = now_ns();
	c1 = la_read(1, 0x390);
	b1 = now_ns();
	CHECK(c0 - c1 + 1 >= (b0 - a1) / 16);
	CHECK(c0 - c1 <= (b1 - a0) / 16 + 1);
	la_write(1, 0x380, 0); /* stops it */
	CHECK_EQ(la_read(1, 0x390), 0);

	/* Periodic, 2 ms: several interrupts, the engine acking as it goes. */
	la_write(1, 0x3e0, 0xb);
	la_write(1, 0x320, 0x20041);
	t0 = now_ns();
	la_write(1, 0x380, 2000000);
	while (n < 10 && now_ns() - t0 < 2000000000ULL) {
		if (!wait_pending(1, 100))
			continue;
		if (intc_ack(&fx.ic, 1) == 0x41)
			n++;
		eoi(1);
	}
	t1 = now_ns();
	CHECK_EQ(n, 10);
	CHECK(t1 - t0 >= 18000000); /* the 10th expiry is 20 ms after the start */
	cur = la_read(1, 0x390);
	CHECK(cur >= 1 && cur <= 2000000);

	/* Masked: counting goes on, no interrupts. */
	la_write(1, 0x320, 0x30041);
	usleep(5000);
	while (intc_ack(&fx.ic, 1) >= 0)
		eoi(1);
	usleep(10000);
	CHECK(!intc_pending(&fx.ic, 1));
	la_write(1, 0x380, 0);
	fx_teardown();
}

static void test_pit_periodic(void)
{
	uint64_t t0;
	unsigned int n = 0, extra = 0;
	uint16_t count;

	if (!fx_setup(2))
		return;
	lapic_enable(0);
	lapic_enable(1);
	io_route(0, 0x30, 1); /* as timer.c: ISA IRQ 0 on pin 0 */
	/* Mode 2, 1 kHz (count 1193), as the guests' pit_periodic(). */
	outb(0x43, 0x34);
	outb(0x40, 1193 & 0xff);
	outb(0x40, 1193 >> 8);
	t0 = now_ns();
	while (n < 20 && now_ns() - t0 < 2000000000ULL) {
		if (!wait_pending(1, 100))
			continue;
		if (intc_ack(&fx.ic, 1) == 0x30)
			n++;
		eoi(1);
	}
	CHECK_EQ(n, 20);
	CHECK(now_ns() - t0 >= 19000000); /* 20 periods of 1 ms */
	CHECK(!intc_pending(&fx.ic, 0));

	/* The latched counter lies within the period and moves. */
	outb(0x43, 0x00);
	count = inb(0x40);
	count |= (uint16_t)(inb(0x40) << 8);
	CHECK(count >= 1 && count <= 1193);

	/* Read-back status of channel 0: OUT, access both, mode 2. */
	outb(0x43, 0xe2);
	CHECK_EQ(inb(0x40) & 0x3f, 0x34);

	/* A control word without a count stops it (the guests' pit_stop()). */
	outb(0x43, 0x30);
	usleep(3000);
	while (intc_ack(&fx.ic, 1) >= 0)
		eoi(1);
	usleep(20000);
	while (intc_ack(&fx.ic, 1) >= 0) {
		extra++;
		eoi(1);
	}
	CHECK_EQ(extra, 0);
	fx_teardown();
}

static void test_port61(void)
{
	uint64_t t0, t1 = 0;
	uint8_t msb[3];
	bool high = false;

	if (!fx_setup(1))
		return;
	/* Linux's pit_calibrate_tsc(): gate on, speaker off, channel 2 mode 0, 10 ms. */
	outb(0x61, (inb(0x61) & ~0x02) | 0x01);
	outb(0x43, 0xb0);
	t0 = now_ns();
	outb(0x42, 11932 & 0xff);
	outb(0x42, 11932 >> 8);
	CHECK_EQ(inb(0x61) & 0x20, 0);
	while (now_ns() - t0 < 1000000000ULL) {
		if (inb(0x61) & 0x20) {
			t1 = now_ns();
			high = true;
			break;
		}
		usleep(100);
	}
	CHECK(high);
	CHECK(t1 - t0 >= 9900000); /* never early */
	CHECK_EQ(inb(0x61) & 0x01, 0x01);

	/* The gate pauses mode 0: with the gate low OUT stays low. */
	outb(0x61, 0x00);
	outb(0x43, 0xb0);
	outb(0x42, 0x10);
	outb(0x42, 0x00);
	usleep(5000);
	CHECK_EQ(inb(0x61) & 0x20, 0);
	outb(0x61, 0x01);
	usleep(5000);
	CHECK_EQ(inb(0x61) & 0x20, 0x20);

	/* The refresh bit toggles. */
	CHECK((inb(0x61) ^ inb(0x61)) & 0x10);

	/* quick_pit_calibrate(): count down from 0xffff, MSB read without a latch. */
	outb(0x43, 0xb0);
	outb(0x42, 0xff);
	outb(0x42, 0xff);
	for (int i = 0; i < 3; i++) {
		inb(0x42);
		msb[i] = inb(0x42);
		usleep(2000);
	}
	CHECK(msb[0] > msb[1] && msb[1] > msb[2]);

	/* The count moves at 1.193182 MHz: a latched reading before and after a wall-clock
	 * interval, bounded by the instants the reads could have happened. */
	outb(0x43, 0xb0);
	outb(0x42, 0xff);
	outb(0x42, 0xff);
	uint64_t a0 = now_ns(), a1, b0, b1;
	uint16_t c0, c1;

	outb(0x43, 0x80);
	c0 = inb(0x42);
	c0 |= (uint16_t)(inb(0x42) << 8);
	a1 = now_ns();
	usleep(20000);
	b0 = now_ns();
	outb(0x43, 0x80);
	c1 = inb(0x42);
	c1 |= (uint16_t)(inb(0x42) << 8);
	b1 = now_ns();
	if (b1 - a0 < 50000000) { /* the 16-bit count has not wrapped */
		uint64_t moved = (uint16_t)(c0 - c1);

		CHECK(moved + 1 >= (b0 - a1) * 1193182 / 1000000000);
		CHECK(moved <= (b1 - a0) * 1193182 / 1000000000 + 1);
	}

	/* Mode 3 square wave toggles OUT. */
	outb(0x43, 0xb6);
	outb(0x42, 0x00);
	outb(0x42, 0x10); /* 4096 clocks, ~3.4 ms */
	unsigned int changes = 0;
	uint8_t last = inb(0x61) & 0x20;
	t0 = now_ns();
	while (changes < 4 && now_ns() - t0 < 1000000000ULL) {
		uint8_t o = inb(0x61) & 0x20;

		changes += o != last;
		last = o;
		usleep(200);
	}
	CHECK(changes >= 4);
	fx_teardown();
}

/* ---- the guest is hostile ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void test_hostile(void)
{
	static const unsigned int sizes[] = {1, 2, 4, 8, 3, 0, 16};
	uint32_t v;

	if (!fx_setup(2))
		return;
	lapic_enable(0);
	lapic_enable(1);
	la_write(0, 0x370, 1u << 16); /* error LVT masked for now */

	/* Vectors 0-15: sender ESR "send illegal vector", nothing delivered. */
	for (unsigned int vec = 0; vec < 16; vec++) {
		la_write(0, 0x310, 1u << 24);
		la_write(0, 0x300, vec);
	}
	CHECK(!intc_pending(&fx.ic, 1));
	la_write(0, 0x280, 0);
	CHECK_EQ(la_read(0, 0x280), 0x20);
	la_write(0, 0x280, 0);
	CHECK_EQ(la_read(0, 0x280), 0);
	/* From the IOAPIC: receiver ESR "receive illegal vector", and the error LVT fires. */
	la_write(1, 0x370, 0xe3);
	io_route(3, 0x05, 1);
	pulse(3);
	la_write(1, 0x280, 0);
	CHECK_EQ(la_read(1, 0x280), 0x40);
	CHECK_EQ(intc_ack(&fx.ic, 1), 0xe3);
	eoi(1);
	CHECK_EQ(intc_ack(&fx.ic, 1), -1);
	/* LVT timer with vector 3 firing: dropped, not delivered. */
	la_write(1, 0x3e0, 0xb);
	la_write(1, 0x320, 0x3);
	la_write(1, 0x380, 1000);
	CHECK(wait_pending(1, 2000));
	CHECK_EQ(intc_ack(&fx.ic, 1), 0xe3); /* the error interrupt, not vector 3 */
	eoi(1);

	/* Bad accesses: refused or ignored. */
	CHECK_EQ(intc_set_apic_base(&fx.ic, 0, 0xfee00d00), -EINVAL); /* x2APIC */
	CHECK_EQ(intc_set_apic_base(&fx.ic, 0, 0xfee00901), -EINVAL);
	CHECK_EQ(intc_set_apic_base(&fx.ic, 0, 0x8000000000000900ULL), -EINVAL);
	CHECK_EQ(intc_apic_base(&fx.ic, 0), 0xfee00900);
	CHECK_EQ(intc_set_apic_base(&fx.ic, 1, 0xfee00900), 0); /* no BSP change */
	CHECK_EQ(intc_apic_base(&fx.ic, 1), 0xfee00800);
	CHECK_EQ(intc_apic_base(&fx.ic, 7), 0);
	CHECK_EQ(intc_set_apic_base(&fx.ic, 7, 0xfee00800), -EINVAL);
	CHECK(!intc_pending(&fx.ic, 7));
	CHECK(!intc_pending(&fx.ic, 100000));
	CHECK_EQ(intc_ack(&fx.ic, 7), -1);
	CHECK_EQ(intc_lapic_read(&fx.ic, 9, 0x20, 4), 0xffffffffu);
	intc_lapic_write(&fx.ic, 9, 0x300, 0x4500, 4);
	CHECK_EQ(intc_lapic_read(&fx.ic, 0, 0x20, 8), 0);
	CHECK_EQ(intc_lapic_read(&fx.ic, 0, 0x32, 4), 0);
	CHECK_EQ(intc_lapic_read(&fx.ic, 1, 0x23, 1), 1); /* the ID's top byte */
	CHECK_EQ(intc_lapic_read(&fx.ic, 1, 0x30, 2), 0x0014);
	gsi(24, 1);
	gsi(1u << 31, 1);
	io_write(0xff, 0xffffffff);
	CHECK_EQ(io_read(0xff), 0);
	CHECK_EQ(io_read(0x40), 0);
	CHECK_EQ(io_read(0x10 + 2 * 23 + 2), 0);
	v = 0xffffffff;
	CHECK(bus_dispatch(&fx.mmio, LAYOUT_IOAPIC, &v, 4, true));
	CHECK(bus_dispatch(&fx.mmio, LAYOUT_IOAPIC + 0x10, &v, 4, true));

	/* Random writes of every size everywhere, with lines and acks in between. */
	for (unsigned int i = 0; i < 200000; i++) {
		uint64_t r = rnd(), val = rnd();
		unsigned int size = sizes[r % 7], cpu = (unsigned int)(r >> 8) % 3;
		int vec;

		switch ((r >> 4) % 8) {
		case 0:
		case 1:
			intc_lapic_write(&fx.ic, cpu, (r >> 16) % 0x1100, val, size);
			break;
		case 2:
			intc_lapic_read(&fx.ic, cpu, (r >> 16) % 0x1100, size);
			break;
		case 3: {
			static const uint16_t ports[] = {0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1,
							 0x40, 0x41, 0x42, 0x43, 0x61};
			uint8_t b = (uint8_t)val;
			uint16_t port = ports[(r >> 16) % 11];

			bus_dispatch(&fx.pio, port, &b, 1, (r >> 32) & 1);
			break;
		}
		case 4: {
			uint64_t off = (r >> 16) % INTC_IOAPIC_SIZE;
			unsigned int sz = size && size <= 8 && (size & (size - 1)) == 0 ? size : 4;

			if (off + sz <= INTC_IOAPIC_SIZE)
				bus_dispatch(&fx.mmio, LAYOUT_IOAPIC + off, &val, sz,
					     (r >> 32) & 1);
			break;
		}
		case 5:
			gsi((unsigned int)(r >> 16) % 30, (r >> 32) & 1);
			break;
		case 6:
			vec = intc_ack(&fx.ic, cpu);
			CHECK(vec >= -1 && vec < 256);
			/* Only the PIC (CPU 0) may hand out a vector below 16: its base is the
			 * guest's choice; the APICs never accept one. */
			if (vec >= 0 && vec < 16)
				CHECK_EQ(cpu, 0);
			break;
		default:
			intc_set_apic_base(&fx.ic, cpu, r & 1 ? val : 0xfee00000 | (val & 0x900));
			break;
		}
	}
	/* Still alive and sane: quiet the sources, reset CPU 1's APIC, and a self IPI works. */
	outb(0x43, 0x30);
	for (unsigned int pin = 0; pin < 24; pin++)
		io_write(0x10 + 2 * pin, 1u << 16);
	CHECK_EQ(intc_set_apic_base(&fx.ic, 1, 0xfee00000), 0);
	CHECK_EQ(intc_set_apic_base(&fx.ic, 1, 0xfee00800), 0);
	CHECK(!intc_pending(&fx.ic, 1));
	lapic_enable(1);
	la_write(1, 0x300, 0x40000 | 0x77);
	CHECK(intc_pending(&fx.ic, 1));
	CHECK_EQ(intc_ack(&fx.ic, 1), 0x77);
	fx_teardown();
}

int main(void)
{
	struct loop probe;

	if (loop_init(&probe, 4))
		return t_skip("io_uring unavailable");
	loop_fini(&probe);
	test_pic();
	test_ioapic();
	test_lapic_tpr();
	test_ipi();
	test_lapic_timer();
	test_pit_periodic();
	test_port61();
	test_hostile();
	return t_done();
}
