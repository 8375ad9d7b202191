/* tlb.c: TLB maintenance as the SDM specifies it (vol. 3A 4.10), through 4 KiB page tables of
 * our own at 512 GiB (PML4 slot 1); the runtime's identity map stays, so each physical page is
 * also visible at its own address. Only what must happen is checked: a stale translation is
 * allowed to survive until the flush, so nothing tests that one does.
 *   invlpg-remap        V -> A, read; PTE -> B, invlpg V; read sees B
 *   cr3-reload-remap    the same with a CR3 reload (non-global page)
 *   invlpg-global       a global page (CR4.PGE, PTE.G) remapped, invlpg: B
 *   pge-toggle-flush    a global page remapped, CR4.PGE cleared and set again: B
 *   write-after-remap   writes through V after a remap land in B, A keeps the old value
 *   unmap-read-pf, unmap-write-pf
 *                       PTE made not present + invlpg: the access faults (#PF, CR2 = the
 *                       address, error 0 / 2, RIP at the access); the handler skips it
 *   invlpg-2m-page      a 2 MiB page read at three 4 KiB offsets, its PDE pointed at another
 *                       2 MiB, one invlpg of its first address: every offset sees the new page
 *   pte-accessed, pte-dirty, pte-dirty-after-read
 *                       the CPU sets PTE.A on a read, PTE.D on a write, including a write
 *                       through a translation first cached by a read with D clear
 *   code-remap-invlpg, code-remap-cr3
 *                       code at V (mov $n, %eax; ret) remapped 64 times between two pages
 *                       with different n, invlpg or CR3 reload in between: each call returns
 *                       the new page's n
 *   cr3-switch-code     two address spaces map V to different code; switching CR3 back and
 *                       forth 64 times, each call returns its space's n
 *
 * Prints "PASS <check>" per check ("  <check>: ..." details before a FAIL), "RESULT PASS";
 * exits 0. Host side: exit status 0, RESULT PASS, no FAIL. */
#include "guest.h"

#define HI_BASE	  0x8000000000ull /* PML4 slot 1 */
#define PG	  4096ull
#define MB2	  0x200000ull
#define PTE_P	  0x1ull
#define PTE_W	  0x2ull
#define PTE_A	  0x20ull
#define PTE_D	  0x40ull
#define PTE_PS	  0x80ull
#define PTE_G	  0x100ull
#define CR4_PGE	  (1ull << 7)
#define KERNEL_CS 0x08
#define LOOPS	  64
/* Physical 2 MiB regions for invlpg-2m-page, below the default 128 MiB of RAM. */
#define BIG_A 0x2000000ull
#define BIG_B 0x2200000ull

/* Virtual pages: HI(n) is 4 KiB page n of PD slot 0; PD slot 1 is the 2 MiB page. */
#define HI(n)  (HI_BASE + PG * (n))
#define V_DATA 0
#define V_CODE 1
#define V_BIG  (HI_BASE + MB2)

struct space {
	uint64_t pml4[512], pdpt[512], pd[512], pt[512];
};
extern uint64_t pml4[512];
static struct space sp_b __attribute__((aligned(4096)));
static __attribute__((aligned(4096))) uint64_t hi_pdpt[512], hi_pd[512], hi_pt[512];
static __attribute__((aligned(4096))) uint8_t page_a[PG], page_b[PG], code_a[PG], code_b[PG];
static uint64_t cr3_a, cr3_b;

static uint64_t read_cr3(void)
{
	uint64_t v;

	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

static void write_cr3(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

static uint64_t read_cr4(void)
{
	uint64_t v;

	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

static void write_cr4(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}

static void invlpg(uint64_t va)
{
	__asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
}

static volatile uint64_t *pte(unsigned int n)
{
	return (volatile uint64_t *)&hi_pt[n];
}

static void set_pte(unsigned int n, const void *pa, uint64_t flags)
{
	*pte(n) = (uint64_t)(uintptr_t)pa | flags;
}

static uint64_t rd(uint64_t va)
{
	return *(volatile uint64_t *)(uintptr_t)va;
}

static void wr(uint64_t va, uint64_t v)
{
	*(volatile uint64_t *)(uintptr_t)va = v;
}

static void spaces_init(void)
{
	hi_pd[0] = (uint64_t)(uintptr_t)hi_pt | PTE_P | PTE_W;
	hi_pdpt[0] = (uint64_t)(uintptr_t)hi_pd | PTE_P | PTE_W;
	pml4[1] = (uint64_t)(uintptr_t)hi_pdpt | PTE_P | PTE_W;
	cr3_a = read_cr3();
	write_cr3(cr3_a);
	/* Space B: the same identity map, its own tables at slot 1. */
	memcpy(sp_b.pml4, pml4, sizeof(sp_b.pml4));
	sp_b.pd[0] = (uint64_t)(uintptr_t)sp_b.pt | PTE_P | PTE_W;
	sp_b.pdpt[0] = (uint64_t)(uintptr_t)sp_b.pd | PTE_P | PTE_W;
	sp_b.pml4[1] = (uint64_t)(uintptr_t)sp_b.pdpt | PTE_P | PTE_W;
	cr3_b = (uint64_t)(uintptr_t)sp_b.pml4;
}

/* ---- #PF handler: records the fault, continues at tlb_resume ---- */

/* clang-format off */
__asm__(".text\n"
	"tlb_pf_entry:\n"
	"	pushq $14\n"
	"	pushq %rax\n	pushq %rbx\n	pushq %rcx\n	pushq %rdx\n"
	"	pushq %rsi\n	pushq %rdi\n	pushq %rbp\n	pushq %r8\n"
	"	pushq %r9\n	pushq %r10\n	pushq %r11\n	pushq %r12\n"
	"	pushq %r13\n	pushq %r14\n	pushq %r15\n"
	"	cld\n"
	"	movq %rsp, %rdi\n"
	"	call tlb_pf_handler\n"
	"	popq %r15\n	popq %r14\n	popq %r13\n	popq %r12\n"
	"	popq %r11\n	popq %r10\n	popq %r9\n	popq %r8\n"
	"	popq %rbp\n	popq %rdi\n	popq %rsi\n	popq %rdx\n"
	"	popq %rcx\n	popq %rbx\n	popq %rax\n"
	"	addq $16, %rsp\n"
	"	iretq\n"
	/* uint64_t tlb_load(uint64_t va): the value, or 0x7777 when the load faulted. */
	".globl tlb_load, tlb_load_insn, tlb_store, tlb_store_insn, tlb_resume\n"
	"tlb_load:\n"
	"	mov $0x7777, %eax\n"
	"tlb_load_insn:\n"
	"	mov (%rdi), %rax\n"
	"	ret\n"
	/* void tlb_store(uint64_t va, uint64_t v) */
	"tlb_store:\n"
	"tlb_store_insn:\n"
	"	mov %rsi, (%rdi)\n"
	"tlb_resume:\n"
	"	ret\n");
/* clang-format on */
extern char tlb_pf_entry[], tlb_load_insn[], tlb_store_insn[], tlb_resume[];
uint64_t tlb_load(uint64_t va);
void tlb_store(uint64_t va, uint64_t v);

static struct {
	bool armed;
	unsigned int count;
	uint64_t rip, error, cr2;
} pf;

void tlb_pf_handler(struct trap_frame *f);
void tlb_pf_handler(struct trap_frame *f)
{
	uint64_t cr2 = read_cr2();

	if (!pf.armed || pf.count++) {
		printf("EXCEPTION 14 rip=0x%lx err=0x%lx cr2=0x%lx (unexpected in tlb.c)\n", f->rip,
		       f->error, cr2);
		guest_exit(EXIT_EXCEPTION);
	}
	pf.rip = f->rip;
	pf.error = f->error;
	pf.cr2 = cr2;
	f->rip = (uint64_t)(uintptr_t)tlb_resume;
}

static uint64_t my_idt[2 * 256] __attribute__((aligned(16)));

static void setup_pf_handler(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idtr = {sizeof(my_idt) - 1, (uint64_t)(uintptr_t)my_idt}, old;
	uint64_t a = (uint64_t)(uintptr_t)tlb_pf_entry;

	__asm__ volatile("sidt %0" : "=m"(old));
	memcpy(my_idt, (const void *)(uintptr_t)old.base,
	       old.limit + 1u < sizeof(my_idt) ? old.limit + 1u : sizeof(my_idt));
	my_idt[2 * 14] =
		(a & 0xffff) | ((uint64_t)KERNEL_CS << 16) | (0x8eull << 40) | ((a >> 16) << 48);
	my_idt[2 * 14 + 1] = a >> 32;
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

/* ---- checks ---- */

static bool eq(bool *ok, const char *check, const char *what, uint64_t got, uint64_t want)
{
	if (got != want) {
		printf("  %s: %s = 0x%lx (want 0x%lx)\n", check, what, got, want);
		*ok = false;
	}
	return got == want;
}

enum flush { FLUSH_INVLPG, FLUSH_CR3, FLUSH_PGE };

static void flush(enum flush how, uint64_t va)
{
	uint64_t cr4 = read_cr4();

	switch (how) {
	case FLUSH_INVLPG:
		invlpg(va);
		break;
	case FLUSH_CR3:
		write_cr3(read_cr3());
		break;
	case FLUSH_PGE:
		write_cr4(cr4 & ~CR4_PGE);
		write_cr4(cr4 | CR4_PGE);
		break;
	}
}

/* V -> page_a, read; PTE -> page_b (with extra PTE bits (g)); flush (how); read. */
static void test_remap(const char *name, uint64_t g, enum flush how)
{
	const uint64_t va = HI(V_DATA) + 8;
	bool ok = true;

	wr((uint64_t)(uintptr_t)page_a + 8, 0xaaaa);
	wr((uint64_t)(uintptr_t)page_b + 8, 0xbbbb);
	set_pte(V_DATA, page_a, PTE_P | PTE_W | g);
	invlpg(va);
	eq(&ok, name, "first read", rd(va), 0xaaaa);
	set_pte(V_DATA, page_b, PTE_P | PTE_W | g);
	flush(how, va);
	eq(&ok, name, "read after the flush", rd(va), 0xbbbb);
	report(name, ok);
}

static void test_write_after_remap(void)
{
	const char *name = "write-after-remap";
	const uint64_t va = HI(V_DATA) + 16;
	bool ok = true;

	set_pte(V_DATA, page_a, PTE_P | PTE_W);
	invlpg(va);
	wr(va, 0x1111);
	set_pte(V_DATA, page_b, PTE_P | PTE_W);
	invlpg(va);
	wr(va, 0x2222);
	eq(&ok, name, "page A", rd((uint64_t)(uintptr_t)page_a + 16), 0x1111);
	eq(&ok, name, "page B", rd((uint64_t)(uintptr_t)page_b + 16), 0x2222);
	report(name, ok);
}

static void test_unmap(const char *name, bool write)
{
	const uint64_t va = HI(V_DATA) + 24;
	bool ok = true;

	set_pte(V_DATA, page_a, PTE_P | PTE_W);
	invlpg(va);
	rd(va);
	wr(va, 0x3333);
	*pte(V_DATA) = 0;
	invlpg(va);
	pf.count = 0;
	pf.armed = true;
	if (write)
		tlb_store(va, 0x4444);
	else
		tlb_load(va);
	__asm__ volatile("" : : : "memory"); /* the handler wrote (pf) */
	pf.armed = false;
	if (eq(&ok, name, "faults", pf.count, 1)) {
		eq(&ok, name, "rip", pf.rip,
		   (uint64_t)(uintptr_t)(write ? tlb_store_insn : tlb_load_insn));
		eq(&ok, name, "cr2", pf.cr2, va);
		eq(&ok, name, "error", pf.error, write ? 2 : 0);
	}
	eq(&ok, name, "page A", rd((uint64_t)(uintptr_t)page_a + 24), 0x3333);
	report(name, ok);
}

static void test_big_page(void)
{
	const char *name = "invlpg-2m-page";
	const uint64_t offs[3] = {0, PG, MB2 / 2 + 8};
	bool ok = true;

	if (!memmap_is_ram(BIG_A, 2 * MB2)) {
		report_skip(name, "no RAM at 32-36 MiB");
		return;
	}
	for (int i = 0; i < 3; i++) {
		wr(BIG_A + offs[i], 0xa0 + i);
		wr(BIG_B + offs[i], 0xb0 + i);
	}
	hi_pd[1] = BIG_A | PTE_P | PTE_W | PTE_PS;
	invlpg(V_BIG);
	for (int i = 0; i < 3; i++)
		eq(&ok, name, "first read", rd(V_BIG + offs[i]), 0xa0 + i);
	hi_pd[1] = BIG_B | PTE_P | PTE_W | PTE_PS;
	invlpg(V_BIG);
	for (int i = 0; i < 3; i++)
		eq(&ok, name, "read after invlpg", rd(V_BIG + offs[i]), 0xb0 + i);
	hi_pd[1] = 0;
	invlpg(V_BIG);
	report(name, ok);
}

static void test_accessed_dirty(void)
{
	const uint64_t va = HI(V_DATA) + 32;
	bool ok = true;

	set_pte(V_DATA, page_a, PTE_P | PTE_W);
	invlpg(va);
	rd(va);
	eq(&ok, "pte-accessed", "A and D after a read", *pte(V_DATA) & (PTE_A | PTE_D), PTE_A);
	report("pte-accessed", ok);

	ok = true;
	wr(va, 1);
	eq(&ok, "pte-dirty", "A and D after a write", *pte(V_DATA) & (PTE_A | PTE_D),
	   PTE_A | PTE_D);
	report("pte-dirty", ok);

	/* The read caches a translation with D clear; the write must still set D. */
	ok = true;
	set_pte(V_DATA, page_a, PTE_P | PTE_W | PTE_A);
	invlpg(va);
	rd(va);
	wr(va, 2);
	eq(&ok, "pte-dirty-after-read", "D after read then write", *pte(V_DATA) & PTE_D, PTE_D);
	report("pte-dirty-after-read", ok);
}

/* "mov $n, %eax; ret" at the start of (page). */
static void put_fn(uint8_t *page, uint32_t n)
{
	page[0] = 0xb8;
	memcpy(page + 1, &n, 4);
	page[5] = 0xc3;
}

static uint32_t call_at(uint64_t va)
{
	return ((uint32_t(*)(void))(uintptr_t)va)();
}

static void test_code_remap(const char *name, enum flush how)
{
	const uint64_t va = HI(V_CODE);
	bool ok = true;

	for (int i = 0; i < LOOPS && ok; i++) {
		bool b = i & 1;

		set_pte(V_CODE, b ? code_b : code_a, PTE_P | PTE_W);
		flush(how, va);
		eq(&ok, name, b ? "call through V -> B" : "call through V -> A", call_at(va),
		   b ? 0xb : 0xa);
	}
	report(name, ok);
}

static void test_cr3_switch(void)
{
	const char *name = "cr3-switch-code";
	const uint64_t va = HI(V_CODE);
	bool ok = true;

	set_pte(V_CODE, code_a, PTE_P | PTE_W);
	sp_b.pt[V_CODE] = (uint64_t)(uintptr_t)code_b | PTE_P | PTE_W;
	write_cr3(cr3_a);
	for (int i = 0; i < LOOPS && ok; i++) {
		bool b = i & 1;

		write_cr3(b ? cr3_b : cr3_a);
		eq(&ok, name, b ? "call in space B" : "call in space A", call_at(va),
		   b ? 0xb : 0xa);
	}
	write_cr3(cr3_a);
	report(name, ok);
}

void guest_main(const struct hvm_start_info *si)
{
	(void)si;
	spaces_init();
	setup_pf_handler();
	write_cr4(read_cr4() | CR4_PGE);
	test_remap("invlpg-remap", 0, FLUSH_INVLPG);
	test_remap("cr3-reload-remap", 0, FLUSH_CR3);
	test_remap("invlpg-global", PTE_G, FLUSH_INVLPG);
	test_remap("pge-toggle-flush", PTE_G, FLUSH_PGE);
	test_write_after_remap();
	test_unmap("unmap-read-pf", false);
	test_unmap("unmap-write-pf", true);
	test_big_page();
	test_accessed_dirty();
	put_fn(code_a, 0xa);
	put_fn(code_b, 0xb);
	test_code_remap("code-remap-invlpg", FLUSH_INVLPG);
	test_code_remap("code-remap-cr3", FLUSH_CR3);
	test_cr3_switch();
	finish();
}
