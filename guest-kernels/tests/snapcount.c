/* snapcount.c: a guest whose result depends on every iteration it ran and on all of its memory,
 * for snapshot tests: a snapshot taken mid-run and restored (once, twice, as clones) must finish
 * with the same checksum as the run that was never interrupted, which the host computes on its
 * own. Each of ITERATIONS steps updates every word of a 16 KiB array from its old value
 * (a[j] = a[j] * 1103515245 + 7 * i + j, 32-bit), so a lost page, a stale register or a
 * repeated or skipped step changes the result.
 *
 * Prints: "SNAPCOUNT-START", "STEP <i>" after every step, "CHECKSUM <hex>" (the 32-bit sum of
 * the array at the end), "RESULT PASS"; exits 0.
 * Host side: "CHECKSUM" equal to its own computation of the recurrence. */
#include "guest.h"

#define WORDS	   (16 * 1024 / 4)
#define ITERATIONS 40

static uint32_t a[WORDS];

void guest_main(const struct hvm_start_info *si)
{
	uint32_t sum = 0;

	for (uint32_t j = 0; j < WORDS; j++)
		a[j] = j;
	printf("SNAPCOUNT-START\n");
	for (uint32_t i = 1; i <= ITERATIONS; i++) {
		for (uint32_t j = 0; j < WORDS; j++)
			a[j] = a[j] * 1103515245u + 7 * i + j;
		printf("STEP %u\n", i);
	}
	for (uint32_t j = 0; j < WORDS; j++)
		sum += a[j];
	printf("CHECKSUM %x\n", sum);
	report("snapcount-finished", true);
	finish();
}
