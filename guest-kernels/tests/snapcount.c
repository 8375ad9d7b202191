/* snapcount.c: a guest whose result depends on every iteration it ran and on all of its memory,
 * for snapshot tests: a snapshot taken mid-run and restored (once, twice, as clones) must finish
 * with the same checksum as the run that was never interrupted, which the host computes on its
 * own. Each of ITERATIONS steps updates every word of a 16 KiB array from its old value
 * (a[j] = a[j] * 1103515245 + 7 * i + j, 32-bit), so a lost page, a stale register or a
 * repeated or skipped step changes the result.
 *
 * "step_ms=N" on the command line (default 0): after each step the guest waits N ms for a
 * one-shot LAPIC timer interrupt, halted (1 GHz timer clock / 16, as KVM and mvm's engine
 * clock it). A snapshot then catches it halted with the timer armed, which a restore must
 * fire; it is also what makes the run last long enough to be caught mid-way where guest code
 * runs fast (mvm's engine). The guest reads the TSC after every step: it must never go back,
 * and the largest difference between two steps is printed (a TSC that jumped over the time
 * between a snapshot and its restore shows there).
 *
 * Prints: "SNAPCOUNT-START", "STEP <i>" after every step, "TSC-MAX-STEP <ticks>",
 * "CHECKSUM <hex>" (the 32-bit sum of the array at the end), "PASS tsc-monotonic",
 * "RESULT PASS"; exits 0.
 * Host side: "CHECKSUM" equal to its own computation of the recurrence. */
#include "guest.h"

#define WORDS	   (16 * 1024 / 4)
#define ITERATIONS 40
#define VEC_TIMER  0x40
#define TIMER_DIV  16
#define TICKS_PER_MS (1000000u / TIMER_DIV)

static uint32_t a[WORDS];
static volatile unsigned int timer_irqs;

static void on_timer(struct trap_frame *f)
{
	timer_irqs++;
	lapic_eoi();
}

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* Halts until the one-shot timer of (ms) milliseconds has fired. */
static void wait_ms(uint32_t ms)
{
	unsigned int before = timer_irqs;

	lapic_timer_start(VEC_TIMER, TIMER_DIV, ms * TICKS_PER_MS, false);
	while (timer_irqs == before)
		wait_for_interrupt();
}

void guest_main(const struct hvm_start_info *si)
{
	uint32_t step_ms = (uint32_t)cmdline_uint("step_ms", 0), sum = 0;
	uint64_t last, max_step = 0;
	bool monotonic = true;

	if (step_ms > 1000)
		step_ms = 1000;
	if (step_ms) {
		lapic_init();
		irq_register(VEC_TIMER, on_timer);
	}
	for (uint32_t j = 0; j < WORDS; j++)
		a[j] = j;
	printf("SNAPCOUNT-START\n");
	last = rdtsc();
	for (uint32_t i = 1; i <= ITERATIONS; i++) {
		uint64_t t;

		for (uint32_t j = 0; j < WORDS; j++)
			a[j] = a[j] * 1103515245u + 7 * i + j;
		printf("STEP %u\n", i);
		if (step_ms)
			wait_ms(step_ms);
		t = rdtsc();
		if (t < last)
			monotonic = false;
		else if (t - last > max_step)
			max_step = t - last;
		last = t;
	}
	for (uint32_t j = 0; j < WORDS; j++)
		sum += a[j];
	printf("TSC-MAX-STEP %llu\n", (unsigned long long)max_step);
	printf("CHECKSUM %x\n", sum);
	report("tsc-monotonic", monotonic);
	report("snapcount-finished", true);
	finish();
}
