/* idt.c: a 64-bit IDT whose 256 gates point at the stubs in isr.S. Exceptions (vectors 0-31)
 * print "EXCEPTION <vector> rip=<..> err=<..> cr2=<..>" and exit with EXIT_EXCEPTION;
 * interrupts go to the handler registered for their vector, followed by a LAPIC EOI. */
#include "guest.h"

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
};
_Static_assert(sizeof(struct idt_gate) == 16, "idt gate size");
_Static_assert(sizeof(struct trap_frame) == 22 * 8, "trap frame layout (isr.S)");

struct __attribute__((packed)) idt_desc {
	uint16_t limit;
	uint64_t base;
};

#define KERNEL_CS     0x08
#define GATE_INTR     0x8e /* present, DPL 0, 64-bit interrupt gate */
#define ISR_STUB_SIZE 16

extern const char isr_stubs[];
void trap_dispatch(struct trap_frame *f);

static struct idt_gate idt[256] __attribute__((aligned(16)));
static irq_handler_fn handlers[256];
static irq_handler_fn exception_handlers[32];
volatile unsigned int spurious_irqs;

static const char *const exception_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
	"#NP", "#SS", "#GP", "#PF", "15",  "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

void idt_init(void)
{
	for (unsigned int v = 0; v < 256; v++) {
		uint64_t a = (uint64_t)(uintptr_t)isr_stubs + v * ISR_STUB_SIZE;

		idt[v] = (struct idt_gate){
			.offset_lo = (uint16_t)a,
			.selector = KERNEL_CS,
			.type_attr = GATE_INTR,
			.offset_mid = (uint16_t)(a >> 16),
			.offset_hi = (uint32_t)(a >> 32),
		};
	}
	idt_load();
}

void idt_load(void)
{
	struct idt_desc d = {.limit = sizeof(idt) - 1, .base = (uint64_t)(uintptr_t)idt};

	__asm__ volatile("lidt %0" : : "m"(d));
}

void irq_register(unsigned int vector, irq_handler_fn fn)
{
	if (vector >= 32 && vector < 256)
		handlers[vector] = fn;
}

void exception_register(unsigned int vector, irq_handler_fn fn)
{
	if (vector < 32)
		exception_handlers[vector] = fn;
}

void trap_dispatch(struct trap_frame *f)
{
	unsigned int v = (unsigned int)f->vector;

	if (v < 32 && exception_handlers[v]) {
		exception_handlers[v](f);
		return;
	}
	if (v < 32) {
		printf("EXCEPTION %u rip=0x%lx err=0x%lx cr2=0x%lx (%s)\n", v, f->rip, f->error,
		       read_cr2(), exception_names[v] ? exception_names[v] : "?");
		guest_exit(EXIT_EXCEPTION);
	}
	if (v == VEC_SPURIOUS) { /* LAPIC spurious: no EOI (SDM 11.9) */
		spurious_irqs++;
		return;
	}
	if (handlers[v])
		handlers[v](f);
	else
		spurious_irqs++;
	/* Our vectors come from the LAPIC or IOAPIC. 0x20-0x2f are the masked 8259s, whose
	 * only arrivals are spurious IRQ 7/15: no EOI anywhere for those. */
	if (v >= VEC_PIC_BASE + 16)
		lapic_eoi();
}
