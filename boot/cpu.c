/* cpu.c: the GDT, TSS descriptor and identity page tables that the kernel entry state
 * (struct boot_cpu) refers to. */
#include <string.h>

#include "boot_impl.h"
#include "core/layout.h"
#include "util/util.h"

/* Segment descriptors (Intel SDM vol. 3A, 3.4.5 and 7.2.3): limit 0xfffff with G=1 is 4 GiB.
 * Access bytes 0x9b and 0x93 already have the accessed bit set, as the types the KVM code
 * loads into the hidden parts (0xb and 0x3) say. */
#define GDT_CODE32 0x00cf9b000000ffffULL /* P, DPL 0, execute/read, D=1, G=1 */
#define GDT_CODE64 0x00af9b000000ffffULL /* P, DPL 0, execute/read, L=1, G=1 */
#define GDT_DATA   0x00cf93000000ffffULL /* P, DPL 0, read/write, B=1, G=1 */
/* Busy TSS (type 0xb), base 0, limit 0x67: what the PVH ABI asks for TR. In long mode the
 * descriptor takes 16 bytes; the upper half (base 63:32) is zero, which in 32-bit mode reads
 * as a null descriptor. Nothing here ever reads the TSS: the guest loads its own TR. */
#define GDT_TSS 0x00008b0000000067ULL

_Static_assert(BOOT_SEL_CODE32 / 8 == 1 && BOOT_SEL_CODE64 / 8 == 2 && BOOT_SEL_DATA / 8 == 3 &&
		       BOOT_SEL_TSS / 8 == 4 && BOOT_GDT_ENTRIES == 6,
	       "GDT slots in boot.h and cpu.c disagree");
_Static_assert(LAYOUT_GDT + BOOT_GDT_ENTRIES * 8 <= LAYOUT_PVH_START_INFO,
	       "GDT overlaps hvm_start_info");

int boot_gdt_check(const struct guest_mem *mem)
{
	return boot_check_ram(mem, LAYOUT_GDT, BOOT_GDT_ENTRIES * 8, "GDT");
}

void boot_gdt_write(const struct guest_mem *mem, struct boot_cpu *cpu)
{
	const uint64_t gdt[BOOT_GDT_ENTRIES] = {
		0, GDT_CODE32, GDT_CODE64, GDT_DATA, GDT_TSS, 0,
	};

	guest_mem_write(mem, LAYOUT_GDT, gdt, sizeof(gdt));
	cpu->gdt_base = LAYOUT_GDT;
	cpu->gdt_limit = sizeof(gdt) - 1;
	cpu->tr_sel = BOOT_SEL_TSS;
}

/* Page-table entry bits (Intel SDM vol. 3A, 4.5). */
#define PTE_P  (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_PS (1ULL << 7)

#define PT_PML4 (LAYOUT_PAGE_TABLES)
#define PT_PDPT (LAYOUT_PAGE_TABLES + 0x1000)
#define PT_PD0	(LAYOUT_PAGE_TABLES + 0x2000) /* four directories, one per GiB */

_Static_assert(LAYOUT_PAGE_TABLES_SIZE == 6 * 0x1000, "PML4, PDPT and four PDs");
_Static_assert(LAYOUT_ZERO_PAGE + 0x1000 <= LAYOUT_BOOT_STACK - 0x100 &&
		       LAYOUT_BOOT_STACK < LAYOUT_PAGE_TABLES &&
		       LAYOUT_PAGE_TABLES + LAYOUT_PAGE_TABLES_SIZE <= LAYOUT_CMDLINE,
	       "zero page, boot stack, page tables and command line overlap");

int boot_pagetables_check(const struct guest_mem *mem)
{
	return boot_check_ram(mem, LAYOUT_PAGE_TABLES, LAYOUT_PAGE_TABLES_SIZE, "page tables");
}

uint64_t boot_pagetables_write(const struct guest_mem *mem)
{
	uint8_t *pt = gpa_to_hva(mem, LAYOUT_PAGE_TABLES, LAYOUT_PAGE_TABLES_SIZE);
	uint64_t e;

	memset(pt, 0, LAYOUT_PAGE_TABLES_SIZE);
	e = PT_PDPT | PTE_P | PTE_RW;
	memcpy(pt + (PT_PML4 - LAYOUT_PAGE_TABLES), &e, 8);
	for (uint64_t i = 0; i < 4; i++) {
		e = (PT_PD0 + i * 0x1000) | PTE_P | PTE_RW;
		memcpy(pt + (PT_PDPT - LAYOUT_PAGE_TABLES) + i * 8, &e, 8);
		for (uint64_t j = 0; j < 512; j++) {
			e = (i << 30 | j << 21) | PTE_P | PTE_RW | PTE_PS;
			memcpy(pt + (PT_PD0 - LAYOUT_PAGE_TABLES) + i * 0x1000 + j * 8, &e, 8);
		}
	}
	return PT_PML4;
}
