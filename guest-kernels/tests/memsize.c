/* memsize.c: the PVH memory map. Prints every entry, the end of the highest RAM entry and the
 * RAM total, and writes then reads back a pattern at the first and last 8 bytes of every RAM
 * entry (the part above 1 MiB; the runtime maps 0..8 GiB, so RAM above 4 GiB is reachable).
 * With "mem=<MiB>" on the command line it also checks the layout mvm promises: the highest RAM
 * end is mem MiB when mem <= 3 GiB, and 4 GiB + (mem - 3 GiB) above that (RAM beyond the
 * 3 GiB MMIO hole is placed at 4 GiB), and the RAM total is mem minus at most 1 MiB of holes
 * below 1 MiB.
 *
 * Prints: "MEMMAP <start>-<end> <type>" per entry, "MEM-TOP 0x<end>", "MEM-RAM 0x<bytes>",
 * "PASS memmap-present", "PASS memmap-has-ram-above-1m", "PASS ram-rw-<start>-first" and
 * "-last" per entry, with mem=: "PASS mem-top", "PASS mem-total"; "RESULT PASS"; exits 0.
 * Host side: exit status 0, "RESULT PASS", and MEM-TOP / MEM-RAM matching what it asked for. */
#include "guest.h"

#define ONE_MIB	   (1ull << 20)
#define LOW_LIMIT  (3ull << 30) /* mvm's MMIO hole starts at 3 GiB */
#define HIGH_START (4ull << 30)
#define IDMAP_END  (8ull << 30)

/* Writes two patterns to the 8 bytes at (addr), reads each back, restores the old value (the
 * first RAM entry above 1 MiB starts with this guest's own code). */
static bool rw_check(uint64_t addr)
{
	volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)addr;
	uint64_t pattern = 0xa5c3f00d00000000ull ^ addr;
	uint64_t saved = *p;
	bool ok;

	*p = pattern;
	ok = *p == pattern;
	*p = ~pattern;
	ok = ok && *p == ~pattern;
	*p = saved;
	return ok;
}

void guest_main(const struct hvm_start_info *si)
{
	const struct hvm_memmap_table_entry *e;
	uint64_t top = 0, total = 0, mem_mib;
	unsigned int n = memmap_count();
	bool high_ram = false;

	(void)si;
	if (!report("memmap-present", n > 0))
		finish();
	for (unsigned int i = 0; (e = memmap_entry(i)); i++) {
		printf("MEMMAP 0x%016lx-0x%016lx %s\n", e->addr, e->addr + e->size,
		       e820_type_name(e->type));
		/* NOTE: QEMU microvm's qboot appends an all-zero entry; printed, not judged. */
		if (e->type != E820_RAM)
			continue;
		total += e->size;
		if (e->addr + e->size > top)
			top = e->addr + e->size;
	}
	printf("MEM-TOP 0x%lx\n", top);
	printf("MEM-RAM 0x%lx\n", total);

	for (unsigned int i = 0; (e = memmap_entry(i)); i++) {
		uint64_t start = e->addr, end = e->addr + e->size;

		if (e->type != E820_RAM || end <= ONE_MIB)
			continue;
		if (start < ONE_MIB)
			start = ONE_MIB;
		start = (start + 7) & ~7ull;
		end &= ~7ull;
		if (end < start + 16)
			continue;
		high_ram = true;
		if (end > IDMAP_END) {
			report_skip("ram-rw-last", "entry ends above the 8 GiB identity map");
			end = start + 16 <= IDMAP_END ? IDMAP_END : start + 16;
			if (start >= IDMAP_END)
				continue;
		}
		reportf(rw_check(start), "ram-rw-0x%lx-first", start);
		reportf(rw_check(end - 8), "ram-rw-0x%lx-last", start);
	}
	report("memmap-has-ram-above-1m", high_ram);

	mem_mib = cmdline_uint("mem", 0);
	if (mem_mib) {
		uint64_t mem = mem_mib * ONE_MIB;
		uint64_t want_top = mem <= LOW_LIMIT ? mem : HIGH_START + (mem - LOW_LIMIT);

		if (!reportf(top == want_top, "mem-top"))
			printf("  MEM-TOP 0x%lx, expected 0x%lx for mem=%lu\n", top, want_top,
			       mem_mib);
		if (!reportf(total <= mem && total + ONE_MIB >= mem, "mem-total"))
			printf("  MEM-RAM 0x%lx, expected mem=%lu MiB less at most 1 MiB\n", total,
			       mem_mib);
	}
	finish();
}
