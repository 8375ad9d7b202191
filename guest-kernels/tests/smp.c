/* smp.c: SMP bring-up through the MP table. Parses the MP table (floating pointer in the EBDA
 * or the BIOS area, both checksums), prints it, copies the real-mode trampoline to 0x10000
 * (checked to be RAM in the memmap), and starts every enabled processor other than itself
 * with INIT-SIPI-SIPI. Each AP increments a shared counter and records its LAPIC id.
 *
 * Prints: "PASS mptable-found", "MPTABLE at 0x<fp> table 0x<table> entries <hdr>/<found>
 * cpus <n> ioapic <id>@0x<addr> irqs <n> oem '<oem>'", "PASS mptable-entry-count",
 * "MP-CPU <index> apic <id> [bsp]" per CPU, "MP-ISA-IRQS <irq>-><pin> ...",
 * "PASS mptable-lapic-addr" (0xfee00000), "PASS mptable-ioapic" (one, at 0xfec00000),
 * "PASS mptable-bsp-is-us", "PASS trampoline-ram", per AP "PASS ap-<index>-started" and
 * "PASS ap-<index>-apic-id", then "CPUS <n>", "PASS smp-cpus-<n>" (all MP processors run),
 * with "cpus=N" on the command line "PASS smp-cpus-cmdline-<N>", and "RESULT PASS"; exits 0.
 * An MP table without processor entries or without the floating pointer fails
 * "mptable-found"/"smp-cpus-<n>".
 * Host side: exit status 0, "RESULT PASS", "CPUS <the count it configured>". */
#include "guest.h"

/* How long an AP may take from INIT to C, and all of them to check in: generous, as real-mode
 * and kernel code is interpreted on KVM-PVM. Measured with the PIT clock. */
#define AP_TIMEOUT_MS 2000

static volatile unsigned int cpus_up = 1; /* the BSP */
static volatile uint8_t seen_apic_id[MP_MAX_CPUS];
static volatile uint8_t seen[MP_MAX_CPUS];

static void ap_main(unsigned int cpu_index)
{
	seen_apic_id[cpu_index] = (uint8_t)lapic_id();
	__atomic_store_n(&seen[cpu_index], 1, __ATOMIC_RELEASE);
	__atomic_fetch_add(&cpus_up, 1, __ATOMIC_SEQ_CST);
}

void guest_main(const struct hvm_start_info *si)
{
	static struct mp_info mp;
	struct pit_clock clock;
	unsigned int me, want;
	int rc;

	(void)si;
	rc = mp_parse(&mp);
	if (!report("mptable-found", rc == 0)) {
		printf("  mp_parse: %d\n", rc);
		finish();
	}
	printf("MPTABLE at 0x%lx table 0x%lx entries %u/%u cpus %u ioapic %u@0x%x irqs %u "
	       "oem '%s'\n",
	       mp.fp_addr, mp.table_addr, mp.entries, mp.entries_found, mp.ncpus, mp.ioapic_id,
	       mp.ioapic_addr, mp.nirqs, mp.oem);
	/* Entry count 0 is what QEMU's qboot writes; Linux walks by length and accepts it. */
	if (!reportf(mp.entries == mp.entries_found || mp.entries == 0, "mptable-entry-count"))
		printf("  header says %u entries, the table holds %u\n", mp.entries,
		       mp.entries_found);
	for (unsigned int i = 0; i < mp.ncpus; i++)
		printf("MP-CPU %u apic %u%s\n", i, mp.apic_id[i],
		       (int)i == mp.bsp_index ? " bsp" : "");
	printf("MP-ISA-IRQS");
	for (unsigned int i = 0; i < mp.nirqs; i++) {
		if (mp.irq[i].isa && mp.irq[i].type == 0)
			printf(" %u->%u", mp.irq[i].src_irq, mp.irq[i].dst_pin);
	}
	printf("\n");
	report("mptable-lapic-addr", mp.lapic_addr == LAPIC_BASE);
	report("mptable-ioapic", mp.nioapics == 1 && mp.ioapic_addr == IOAPIC_BASE);

	lapic_init();
	me = lapic_id();
	report("mptable-bsp-is-us", mp.bsp_index >= 0 && mp.apic_id[mp.bsp_index] == me);
	if (!report("trampoline-ram", smp_prepare()))
		finish();

	for (unsigned int i = 0; i < mp.ncpus; i++) {
		if (mp.apic_id[i] == me)
			continue;
		rc = smp_start_ap(mp.apic_id[i], i, ap_main, AP_TIMEOUT_MS);
		reportf(rc == 0, "ap-%u-started", i);
		if (rc == 0) {
			/* ap_main may still be running: wait for its record, bounded. */
			pit_clock_start(&clock);
			while (!seen[i] && pit_clock_ms(&clock) < AP_TIMEOUT_MS)
				cpu_relax();
			reportf(seen[i] && seen_apic_id[i] == mp.apic_id[i], "ap-%u-apic-id", i);
		}
	}
	/* Every started AP increments cpus_up after recording itself; wait for the last one. */
	pit_clock_start(&clock);
	while (cpus_up < mp.ncpus && pit_clock_ms(&clock) < AP_TIMEOUT_MS)
		cpu_relax();

	printf("CPUS %u\n", cpus_up);
	reportf(cpus_up == mp.ncpus, "smp-cpus-%u", mp.ncpus);
	want = (unsigned int)cmdline_uint("cpus", 0);
	if (want)
		reportf(cpus_up == want && mp.ncpus == want, "smp-cpus-cmdline-%u", want);
	finish();
}
