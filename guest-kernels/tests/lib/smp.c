/* smp.c: starting APs with INIT-SIPI-SIPI (SDM vol. 3 section 8.4.4.1, MP spec appendix B.4).
 * The trampoline (trampoline.S) is copied to SMP_TRAMPOLINE; APs are started one at a time, so
 * the boot variables in entry.S (ap_booting, ap_cpu_index, ap_stack_top) serve all of them.
 * NOTE: the spec's delays (10 ms after INIT, 200 us after each SIPI) are left out: KVM and
 * QEMU do not need them, and on KVM-PVM every guest instruction spent waiting is interpreted. */
#include "guest.h"

#define AP_STACK_SIZE 8192
#define ICR_INIT      0x00000500
#define ICR_STARTUP   0x00000600
#define ICR_ASSERT    0x00004000
#define ICR_LEVEL     0x00008000

extern const char smp_tramp_start[], smp_tramp_end[];
extern volatile uint32_t ap_booting, ap_cpu_index;
extern volatile uint64_t ap_stack_top;
void ap_start(unsigned int cpu_index);

static uint8_t ap_stacks[MP_MAX_CPUS][AP_STACK_SIZE] __attribute__((aligned(16)));
static volatile ap_main_fn ap_fn;
static volatile unsigned int ap_started; /* index of the AP that reached C, plus 1 */

bool smp_prepare(void)
{
	size_t len = (size_t)(smp_tramp_end - smp_tramp_start);

	if (!memmap_is_ram(SMP_TRAMPOLINE, 4096))
		return false;
	memcpy((void *)(uintptr_t)SMP_TRAMPOLINE, smp_tramp_start, len);
	return true;
}

void ap_start(unsigned int cpu_index)
{
	ap_main_fn fn = ap_fn;

	idt_load();
	__atomic_store_n(&ap_started, cpu_index + 1, __ATOMIC_RELEASE);
	if (fn)
		fn(cpu_index);
}

int smp_start_ap(unsigned int apic_id, unsigned int cpu_index, ap_main_fn fn,
		 unsigned int timeout_ms)
{
	struct pit_clock clock;

	if (cpu_index >= MP_MAX_CPUS)
		return -1;
	ap_fn = fn;
	ap_cpu_index = cpu_index;
	ap_stack_top = (uint64_t)(uintptr_t)&ap_stacks[cpu_index][AP_STACK_SIZE];
	ap_booting = 1;
	__atomic_store_n(&ap_started, 0, __ATOMIC_SEQ_CST); /* the boot variables before INIT */

	lapic_send_ipi(apic_id, ICR_INIT | ICR_ASSERT | ICR_LEVEL);
	lapic_send_ipi(apic_id, ICR_INIT | ICR_LEVEL); /* de-assert (82489DX era) */
	/* The second SIPI only if the first one was not enough (MP spec B.4 sends two). */
	for (int sipi = 0; sipi < 2; sipi++) {
		lapic_send_ipi(apic_id, ICR_STARTUP | (SMP_TRAMPOLINE >> 12));
		pit_clock_start(&clock);
		while (pit_clock_ms(&clock) < timeout_ms / 2) {
			for (int i = 0; i < 100; i++) {
				if (__atomic_load_n(&ap_started, __ATOMIC_ACQUIRE) == cpu_index + 1)
					return 0;
				cpu_relax();
			}
		}
	}
	return -1;
}
