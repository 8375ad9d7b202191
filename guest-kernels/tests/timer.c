/* timer.c: timer interrupts through the in-kernel irqchip.
 *
 * 1. PIT channel 0 at 100 Hz, ISA IRQ 0 routed through the IOAPIC to this CPU. The pin comes
 *    from the MP table's I/O interrupt entry for ISA IRQ 0 (mvm: pin 0, KVM's default GSI
 *    routing; QEMU microvm's qboot table: pin 2). Without an MP table or entry the MP spec's
 *    default configuration applies: IRQ 0 on INTIN2. Expects >= 5 interrupts within 1 s.
 *    On failure the other candidate pin (0 or 2) is tried and "PIT-IRQ-ON-PIN <n>" printed.
 *    "pit_pin=N" on the command line overrides the pin (for debugging the routing).
 * 2. LAPIC timer, periodic, divide 16, initial count 625000 (10 ms with the 1 GHz APIC timer
 *    clock of KVM and QEMU): >= 5 interrupts within 1 s.
 * 3. With the LAPIC timer running, "sti; hlt" three times: each wake-up needs a new tick
 *    (a halted vCPU must be woken by a timer interrupt).
 * Time is measured by polling the PIT channel 0 counter (no TSC calibration), so the bounds
 * are wall-clock even where guest kernel code is interpreted slowly (KVM-PVM).
 *
 * Prints: "PIT-PIN <pin> (<source>)", "PASS pit-pin-exists", "PIT <n> irqs in <ms> ms",
 * "PASS pit-irq", "LAPIC-TIMER <n> irqs in <ms> ms", "PASS lapic-timer", "PASS hlt-wakeup",
 * "RESULT PASS"; exits 0.
 * Host side: exit status 0 and "RESULT PASS". */
#include "guest.h"

#define PIT_RATE    100
#define WANT_TICKS  5
#define WINDOW_MS   1000
#define LAPIC_DIV   16
#define LAPIC_COUNT 625000u /* 10 ms at 1 GHz / 16 */

static volatile unsigned int pit_irqs, lapic_irqs, other_pin_irqs;

static void on_pit(struct trap_frame *f)
{
	pit_irqs++;
}

static void on_other_pin(struct trap_frame *f)
{
	other_pin_irqs++;
}

static void on_lapic_timer(struct trap_frame *f)
{
	lapic_irqs++;
}

/* Waits with interrupts enabled until *counter reaches want or WINDOW_MS pass. */
static unsigned int wait_irqs(volatile unsigned int *counter, unsigned int want)
{
	struct pit_clock c;

	pit_clock_start(&c);
	irq_enable();
	while (*counter < want && pit_clock_ms(&c) < WINDOW_MS)
		cpu_relax();
	irq_disable();
	return (unsigned int)pit_clock_ms(&c);
}

static int pit_pin(const char **source)
{
	static struct mp_info mp;
	int pin;

	if (cmdline_get("pit_pin", NULL, 0)) {
		*source = "pit_pin= on the command line";
		return (int)cmdline_uint("pit_pin", 2);
	}
	if (mp_parse(&mp)) {
		*source = "no MP table: MP spec default";
		return 2;
	}
	pin = mp_isa_irq_pin(&mp, 0);
	if (pin < 0) {
		*source = "no MP entry for IRQ 0: MP spec default";
		return 2;
	}
	*source = "MP table";
	return pin;
}

static void test_pit(void)
{
	const char *source;
	int pin = pit_pin(&source);
	unsigned int ms, me = lapic_id();

	printf("PIT-PIN %d (%s)\n", pin, source);
	if (!reportf(pin >= 0 && (unsigned int)pin < ioapic_pins(), "pit-pin-exists"))
		return;
	irq_register(VEC_PIT, on_pit);
	ioapic_route((unsigned int)pin, VEC_PIT, me, false);
	pit_periodic(PIT_RATE);
	ms = wait_irqs(&pit_irqs, WANT_TICKS);
	ioapic_mask((unsigned int)pin);
	printf("PIT %u irqs in %u ms\n", pit_irqs, ms);
	if (report("pit-irq", pit_irqs >= WANT_TICKS))
		return;

	/* Diagnose: does IRQ 0 arrive on the other usual pin? */
	unsigned int other = pin == 2 ? 0 : 2;

	irq_register(VEC_PIT + 1, on_other_pin);
	ioapic_route(other, VEC_PIT + 1, me, false);
	wait_irqs(&other_pin_irqs, WANT_TICKS);
	ioapic_mask(other);
	if (other_pin_irqs)
		printf("PIT-IRQ-ON-PIN %u (%u irqs), not on pin %d\n", other, other_pin_irqs, pin);
}

static void test_lapic(void)
{
	unsigned int ms, before;
	bool woke = true;

	irq_register(VEC_LAPIC_TIMER, on_lapic_timer);
	lapic_timer_start(VEC_LAPIC_TIMER, LAPIC_DIV, LAPIC_COUNT, true);
	ms = wait_irqs(&lapic_irqs, WANT_TICKS);
	printf("LAPIC-TIMER %u irqs in %u ms\n", lapic_irqs, ms);
	if (!report("lapic-timer", lapic_irqs >= WANT_TICKS)) {
		lapic_timer_stop();
		report_skip("hlt-wakeup", "no LAPIC timer interrupts");
		return;
	}
	for (int i = 0; i < 3; i++) {
		before = lapic_irqs;
		wait_for_interrupt(); /* only the LAPIC timer is unmasked */
		woke = woke && lapic_irqs != before;
	}
	lapic_timer_stop();
	report("hlt-wakeup", woke);
}

void guest_main(const struct hvm_start_info *si)
{
	(void)si;
	lapic_init();
	ioapic_mask_all();
	test_pit();
	test_lapic();
	pit_stop();
	if (spurious_irqs)
		printf("SPURIOUS-IRQS %u\n", spurious_irqs);
	finish();
}
