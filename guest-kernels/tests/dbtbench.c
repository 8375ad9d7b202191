/* dbtbench.c: CPU-bound loops with an exact guest instruction count, for bench/run's `dbt`
 * figures (guest instructions per second under mvm --accel dbt, QEMU TCG and mvm on KVM).
 *
 * Command line: loop=int|copy|call|pf (default int) n=ITERATIONS (default 1000). Runs the loop
 * n times at CPL0, interrupts off (no timer, PICs masked), then prints
 *   DBTBENCH loop=<name> n=<n> insns_per_iter=<k> loop_insns=<n * k> check=0x<value>
 * and "PASS dbtbench-<name>", "RESULT PASS", and exits 0 through port 0xf4. n=0 runs no
 * iteration (start-up only). The loops are file-scope assembly, so the counts below are exact
 * retired instructions per iteration; each loop also has a few instructions of set-up and
 * return (fewer than 10, the same for every n), and the C around it is the same for every n
 * but for printf of the numbers (a few hundred instructions at most), so two runs with
 * different n differ by n * k instructions, give or take those. (mvm --accel dbt --stats
 * counts the same: its difference of two runs is within 0.01% of n * k.)
 *
 *   int   10: add, xor, sub, lea, rol, or, and, mov (8 register ALU ops, no memory), dec, jnz.
 *         check = the final value of the accumulator (the same under every VMM for one n).
 *   copy  24581: copies 64 KiB (16 pages) from one buffer to another with explicit 8-byte mov
 *         loads and stores, 32 bytes per inner step: 4 x (mov load; mov store), add, add, dec,
 *         jnz = 12 instructions per 32 bytes, 2048 steps; plus 3 set-up and 2 for the outer
 *         dec/jnz: 2048 * 12 + 5. No rep movs (a REP string instruction is one instruction
 *         architecturally). check = the XOR of the destination's qwords, verified against the
 *         source's (the guest fails otherwise).
 *   call  8: call f; f: add, call g; g: xor, ret; ret; dec, jnz (two call/return pairs).
 *         check = the accumulator.
 *   pf    17, plus one #PF delivery: a store to a 4 KiB page of our own page tables (PML4 slot
 *         1, 512 GiB) whose PTE is not present faults; the handler (its own IDT gate, 12
 *         instructions: push, push, mov %cr2, shr, and, mov, mov (PTE write), inc (fault
 *         counter), pop, pop, add $8 (error code), iretq) maps the page and returns; the store
 *         is retried and retires (1); the loop then clears the PTE again, invlpg, dec, jnz (4).
 *         The faulting first attempt of the store does not retire and is not counted. check =
 *         the fault count, verified to be n.
 *
 * Host side: exit status 0, RESULT PASS; bench/run reads the DBTBENCH line. */
#include "guest.h"

#define KERNEL_CS  0x08
#define PTE_P	   0x1ull
#define PTE_W	   0x2ull
#define COPY_BYTES 65536u
#define PF_VA	   0x8000000000ull /* PML4 slot 1, PT slot 0 */

uint64_t dbtb_int(uint64_t n);
uint64_t dbtb_copy(uint64_t n);
uint64_t dbtb_call(uint64_t n);
uint64_t dbtb_pf(uint64_t n);
extern char dbtb_pf_entry[];

uint8_t dbtb_src[COPY_BYTES] __attribute__((aligned(4096)));
uint8_t dbtb_dst[COPY_BYTES] __attribute__((aligned(4096)));
/* pf: the page tables of the PML4 slot 1 region, the page every fault maps, its PTE value. */
uint64_t dbtb_pt[512] __attribute__((aligned(4096)));
static uint64_t hi_pdpt[512] __attribute__((aligned(4096)));
static uint64_t hi_pd[512] __attribute__((aligned(4096)));
static uint8_t pf_page[4096] __attribute__((aligned(4096)));
uint64_t dbtb_pf_pte;
volatile uint64_t dbtb_pf_count;

/* clang-format off */
__asm__(".text\n"
	/* int: rdi = n; returns the accumulator. 10 instructions per iteration. */
	".globl dbtb_int\n"
	".balign 64\n"
	"dbtb_int:\n"
	"	mov %rdi, %rcx\n"
	"	mov $1, %eax\n"
	"	mov $3, %edx\n"
	"	mov $5, %esi\n"
	"	mov $7, %r8d\n"
	"	test %rcx, %rcx\n"
	"	jz 2f\n"
	"	.balign 16\n"
	"1:	add %rdx, %rax\n"		/* 1 */
	"	xor %rax, %rsi\n"		/* 2 */
	"	sub %rsi, %r8\n"		/* 3 */
	"	lea 7(%rax,%r8), %rdx\n"	/* 4 */
	"	rol $5, %rsi\n"			/* 5 */
	"	or %r8, %rdx\n"			/* 6 */
	"	and $0x7fffffff, %r8\n"		/* 7 */
	"	mov %rdx, %r9\n"		/* 8 */
	"	dec %rcx\n"			/* 9 */
	"	jnz 1b\n"			/* 10 */
	"	add %r9, %rax\n"
	"2:	ret\n"

	/* copy: rdi = n; copies dbtb_src to dbtb_dst n times. 3 + 2048 * 12 + 2 per iteration. */
	".globl dbtb_copy\n"
	".balign 64\n"
	"dbtb_copy:\n"
	"	mov %rdi, %r8\n"
	"	test %r8, %r8\n"
	"	jz 3f\n"
	"1:	mov $dbtb_src, %esi\n"		/* 1 */
	"	mov $dbtb_dst, %edi\n"		/* 2 */
	"	mov $2048, %ecx\n"		/* 3 */
	"	.balign 16\n"
	"2:	mov 0(%rsi), %rax\n"		/* 12 per 32 bytes */
	"	mov %rax, 0(%rdi)\n"
	"	mov 8(%rsi), %rdx\n"
	"	mov %rdx, 8(%rdi)\n"
	"	mov 16(%rsi), %r9\n"
	"	mov %r9, 16(%rdi)\n"
	"	mov 24(%rsi), %r10\n"
	"	mov %r10, 24(%rdi)\n"
	"	add $32, %rsi\n"
	"	add $32, %rdi\n"
	"	dec %ecx\n"
	"	jnz 2b\n"
	"	dec %r8\n"			/* 4 */
	"	jnz 1b\n"			/* 5 */
	"3:	xor %eax, %eax\n"
	"	ret\n"

	/* call: rdi = n; returns the accumulator. 8 instructions per iteration. */
	".globl dbtb_call\n"
	".balign 64\n"
	"dbtb_call:\n"
	"	mov %rdi, %rcx\n"
	"	mov $1, %eax\n"
	"	test %rcx, %rcx\n"
	"	jz 2f\n"
	"	.balign 16\n"
	"1:	call dbtb_call_f\n"		/* 1 */
	"	dec %rcx\n"			/* 7 */
	"	jnz 1b\n"			/* 8 */
	"2:	ret\n"
	"	.balign 16\n"
	"dbtb_call_f:\n"
	"	add %rcx, %rax\n"		/* 2 */
	"	call dbtb_call_g\n"		/* 3 */
	"	ret\n"				/* 6 */
	"	.balign 16\n"
	"dbtb_call_g:\n"
	"	xor $0x5a5a, %rax\n"		/* 4 */
	"	ret\n"				/* 5 */

	/* pf: rdi = n. Per iteration 5 here + 12 in the handler, plus the #PF delivery. */
	".globl dbtb_pf\n"
	".balign 64\n"
	"dbtb_pf:\n"
	"	mov %rdi, %rcx\n"
	"	movabs $0x8000000000, %rdi\n"
	"	mov $dbtb_pt, %esi\n"
	"	test %rcx, %rcx\n"
	"	jz 2f\n"
	"	.balign 16\n"
	"1:	mov %rcx, (%rdi)\n"		/* 1: faults, retried after the handler */
	"	movq $0, (%rsi)\n"		/* 2: PTE not present again */
	"	invlpg (%rdi)\n"		/* 3 */
	"	dec %rcx\n"			/* 4 */
	"	jnz 1b\n"			/* 5 */
	"2:	xor %eax, %eax\n"
	"	ret\n"
	/* The #PF gate: maps the faulting page of the PML4 slot 1 region to pf_page. */
	".globl dbtb_pf_entry\n"
	".balign 16\n"
	"dbtb_pf_entry:\n"
	"	push %rax\n"			/* 1 */
	"	push %rdx\n"			/* 2 */
	"	mov %cr2, %rax\n"		/* 3 */
	"	shr $12, %rax\n"		/* 4 */
	"	and $511, %eax\n"		/* 5 */
	"	mov dbtb_pf_pte(%rip), %rdx\n"	/* 6 */
	"	mov %rdx, dbtb_pt(,%rax,8)\n"	/* 7 */
	"	incq dbtb_pf_count(%rip)\n"	/* 8 */
	"	pop %rdx\n"			/* 9 */
	"	pop %rax\n"			/* 10 */
	"	add $8, %rsp\n"			/* 11: the error code */
	"	iretq\n");			/* 12 */
/* clang-format on */

extern uint64_t pml4[512];

static uint64_t idt_copy[2 * 256] __attribute__((aligned(16)));

/* A copy of the runtime's IDT with our own #PF gate, and the PML4 slot 1 tables. */
static void pf_setup(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idtr = {sizeof(idt_copy) - 1, (uint64_t)(uintptr_t)idt_copy}, old;
	uint64_t a = (uint64_t)(uintptr_t)dbtb_pf_entry, cr3;

	__asm__ volatile("sidt %0" : "=m"(old));
	memcpy(idt_copy, (const void *)(uintptr_t)old.base,
	       old.limit + 1u < sizeof(idt_copy) ? old.limit + 1u : sizeof(idt_copy));
	idt_copy[2 * 14] =
		(a & 0xffff) | ((uint64_t)KERNEL_CS << 16) | (0x8eull << 40) | ((a >> 16) << 48);
	idt_copy[2 * 14 + 1] = a >> 32;
	__asm__ volatile("lidt %0" : : "m"(idtr));

	dbtb_pf_pte = (uint64_t)(uintptr_t)pf_page | PTE_P | PTE_W;
	hi_pd[0] = (uint64_t)(uintptr_t)dbtb_pt | PTE_P | PTE_W;
	hi_pdpt[0] = (uint64_t)(uintptr_t)hi_pd | PTE_P | PTE_W;
	pml4[1] = (uint64_t)(uintptr_t)hi_pdpt | PTE_P | PTE_W;
	__asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
}

static uint64_t xor_qwords(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;
	uint64_t x = 0;

	for (unsigned int i = 0; i < COPY_BYTES / 8; i++)
		x ^= q[i] * (i + 1);
	return x;
}

void guest_main(const struct hvm_start_info *si)
{
	char loop[16];
	uint64_t n = cmdline_uint("n", 1000), per, check;
	bool ok = true;

	if (!cmdline_get("loop", loop, sizeof(loop)))
		memcpy(loop, "int", 4);
	if (!strcmp(loop, "int")) {
		per = 10;
		check = dbtb_int(n);
	} else if (!strcmp(loop, "copy")) {
		uint64_t *s = (uint64_t *)dbtb_src;

		per = 3 + (COPY_BYTES / 32) * 12 + 2;
		for (unsigned int i = 0; i < COPY_BYTES / 8; i++)
			s[i] = 0x9e3779b97f4a7c15ull * (i + 1);
		dbtb_copy(n);
		check = xor_qwords(dbtb_dst);
		ok = n == 0 || check == xor_qwords(dbtb_src);
	} else if (!strcmp(loop, "call")) {
		per = 8;
		check = dbtb_call(n);
	} else if (!strcmp(loop, "pf")) {
		per = 17;
		pf_setup();
		dbtb_pf(n);
		check = dbtb_pf_count;
		ok = check == n && (n == 0 || *(volatile uint64_t *)pf_page == 1);
	} else {
		printf("unknown loop '%s' (int, copy, call, pf)\n", loop);
		report("dbtbench-loop", false);
		finish();
	}
	printf("DBTBENCH loop=%s n=%lu insns_per_iter=%lu loop_insns=%lu check=0x%lx\n", loop, n,
	       per, n * per, check);
	reportf(ok, "dbtbench-%s", loop);
	finish();
}
