/* fault.c: precise exceptions. Each check runs a straight-line sequence that sets every GPR
 * to a known value, changes them all, sets RFLAGS with a SUB, then runs one instruction that
 * faults, followed by instructions that change every register again. The handler records the
 * trap frame and CR2 and resumes after the sequence. The frame must show RIP at the faulting
 * instruction, the registers and RFLAGS as of just before it (earlier effects visible, later
 * ones not), RSP unchanged, the right vector, error code and CR2, and memory untouched:
 *   pf-read, pf-write       a load/store to a not-present page (#PF, error 0 / 2)
 *   pf-rmw-notpresent       add %edx,(mem) on a not-present page (#PF, P clear)
 *   pf-rmw-readonly         add %edx,(mem) on a read-only page (CR0.WP set): #PF error 3,
 *                           memory unchanged
 *   pf-split-store          an 8-byte store across into a not-present page: #PF, CR2 in the
 *                           second page, the bytes of the first page unchanged (where only
 *                           that fails, exactly as KVM's emulator does it on KVM-PVM, the
 *                           guest prints "KNOWN-HOST-BUG pf-split-store: ..." instead)
 *   pf-fetch                call *%r15 to a not-present page: #PF at the target, return
 *                           address pushed (RSP - 8)
 *   de-zero, de-overflow    div by zero, div whose quotient overflows (#DE at the div)
 *   ud-ud2, ud-lock-reg     ud2, lock add with a register destination (#UD)
 *   gp-noncanonical         a load from a non-canonical address (#GP(0))
 *   push-stack, call-stack  push / call with RSP at the top of a not-present page: #PF,
 *                           RIP at the push / call, RSP unchanged (the handler runs on IST1)
 *   rep-movsb-dst-fault     rep movsb whose destination runs into a not-present page: the
 *                           frame's RCX/RSI/RDI say how far it got (SDM vol. 2 REP: RIP at the
 *                           instruction, RSI/RDI at the next element, RCX as after the last
 *                           completed iteration); -copied-before-fault: the handler finds the
 *                           bytes before the page copied; it maps the page and returns to the
 *                           same RIP; -completed: the copy finishes (a restartable REP), the
 *                           byte after it untouched
 *   rep-movsq-src-fault     the same with rep movsq and the source page not present
 * The pages live in 4 KiB page tables of our own at 512 GiB (PML4 slot 1); the runtime's
 * identity map is left alone, so each physical page is also visible at its own address.
 *
 * Prints "PASS <check>" per check above ("  <check>: <what> = <got> (want <want>)" lines
 * before a FAIL), then "RESULT PASS"; exits 0. An exception nobody expected prints
 * "EXCEPTION ..." and exits 3, as the runtime does.
 * Host side: exit status 0, RESULT PASS, no FAIL. */
#include "guest.h"

#define HI_BASE	      0x8000000000ull /* PML4 slot 1 */
#define PG	      4096ull
#define PTE_P	      0x1ull
#define PTE_W	      0x2ull
#define CR0_WP	      (1ull << 16)
#define KERNEL_CS     0x08
#define TSS_SEL	      0x20
#define FLAGS_ARITH   0x8d5ull /* CF PF AF ZF SF OF */
#define FLAGS_SUB_1_2 0x95ull  /* 1 - 2: CF PF AF SF */

/* Virtual pages at HI_BASE + n * PG. */
enum { V_BAD, V_RO, V_SPLIT, V_SPLIT_NP, V_STACK_NP, V_D0, V_D1, V_S0, V_S1 };
#define HI(n) (HI_BASE + PG * (n))

extern uint64_t pml4[512];
extern const uint64_t gdt[4];
static uint64_t hi_pdpt[512] __attribute__((aligned(4096)));
static uint64_t hi_pd[512] __attribute__((aligned(4096)));
static uint64_t hi_pt[512] __attribute__((aligned(4096)));
/* Physical pages behind V_RO, V_SPLIT, V_D0, V_D1, V_S0, V_S1. */
static __attribute__((aligned(4096))) uint8_t ro_page[PG], split_page[PG], d0[PG], d1[PG], s0[PG],
	s1[PG];
static uint8_t rep_src[PG], rep_dst[PG];

static void invlpg(uint64_t va)
{
	__asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
}

static void hi_map(unsigned int page, const void *pa, uint64_t flags)
{
	hi_pt[page] = pa ? (uint64_t)(uintptr_t)pa | flags : 0;
	invlpg(HI(page));
}

static void hi_init(void)
{
	hi_pd[0] = (uint64_t)(uintptr_t)hi_pt | PTE_P | PTE_W;
	hi_pdpt[0] = (uint64_t)(uintptr_t)hi_pd | PTE_P | PTE_W;
	pml4[1] = (uint64_t)(uintptr_t)hi_pdpt | PTE_P | PTE_W;
	__asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" : : : "rax", "memory");
}

/* ---- the handler: own gates for #DE #UD #GP #PF, all on IST1 ---- */

struct __attribute__((packed)) tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap;
};
_Static_assert(sizeof(struct tss64) == 104, "64-bit TSS size");

static uint64_t my_gdt[6] __attribute__((aligned(16)));
static uint64_t my_idt[2 * 256] __attribute__((aligned(16)));
static struct tss64 tss;
static uint8_t ist_stack[8192] __attribute__((aligned(16)));

/* Same frame layout as the runtime's isr.S (struct trap_frame). */
/* clang-format off */
__asm__(".text\n"
	"fault_de: pushq $0\n	pushq $0\n	jmp fault_common\n"
	"fault_ud: pushq $0\n	pushq $6\n	jmp fault_common\n"
	"fault_gp: pushq $13\n	jmp fault_common\n"
	"fault_pf: pushq $14\n	jmp fault_common\n"
	"fault_common:\n"
	"	pushq %rax\n	pushq %rbx\n	pushq %rcx\n	pushq %rdx\n"
	"	pushq %rsi\n	pushq %rdi\n	pushq %rbp\n	pushq %r8\n"
	"	pushq %r9\n	pushq %r10\n	pushq %r11\n	pushq %r12\n"
	"	pushq %r13\n	pushq %r14\n	pushq %r15\n"
	"	cld\n"
	"	movq %rsp, %rdi\n"
	"	call fault_handler\n"
	"	popq %r15\n	popq %r14\n	popq %r13\n	popq %r12\n"
	"	popq %r11\n	popq %r10\n	popq %r9\n	popq %r8\n"
	"	popq %rbp\n	popq %rdi\n	popq %rsi\n	popq %rdx\n"
	"	popq %rcx\n	popq %rbx\n	popq %rax\n"
	"	addq $16, %rsp\n"
	"	iretq\n");
/* clang-format on */
extern char fault_de[], fault_ud[], fault_gp[], fault_pf[];

static struct {
	bool armed;
	unsigned int count;
	struct trap_frame f; /* the first fault's frame */
	uint64_t cr2;
	uint64_t resume; /* RIP to continue at; 0: map the page and retry */
	unsigned int map_page;
	const void *map_pa;
	const void *pre_dst, *pre_src; /* compared at the first fault, (pre_len) bytes */
	size_t pre_len;
	bool pre_ok;
} fault;

void fault_handler(struct trap_frame *f);
void fault_handler(struct trap_frame *f)
{
	uint64_t cr2 = read_cr2();

	if (!fault.armed || fault.count >= 3) {
		printf("EXCEPTION %lu rip=0x%lx err=0x%lx cr2=0x%lx (unexpected in fault.c)\n",
		       f->vector, f->rip, f->error, cr2);
		guest_exit(EXIT_EXCEPTION);
	}
	if (fault.count++ == 0) {
		fault.f = *f;
		fault.cr2 = cr2;
		fault.pre_ok = !memcmp(fault.pre_dst, fault.pre_src, fault.pre_len);
	}
	if (fault.resume)
		f->rip = fault.resume;
	else
		hi_map(fault.map_page, fault.map_pa, PTE_P | PTE_W); /* retry the instruction */
}

static void arm(uint64_t resume)
{
	fault.count = 0;
	fault.resume = resume;
	fault.armed = true;
	memset(&fault.f, 0, sizeof(fault.f));
	fault.cr2 = 0;
	fault.pre_len = 0;
}

/* After the code under test: the handler may have written (fault) behind the compiler's back. */
static void disarm(void)
{
	__asm__ volatile("" : : : "memory");
	fault.armed = false;
}

static void set_gate(unsigned int v, const void *fn)
{
	uint64_t a = (uint64_t)(uintptr_t)fn;

	my_idt[2 * v] = (a & 0xffff) | ((uint64_t)KERNEL_CS << 16) | (1ull << 32) /* IST1 */ |
			(0x8eull << 40) | ((a >> 16) << 48);
	my_idt[2 * v + 1] = a >> 32;
}

static void setup_handlers(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} gdtr = {sizeof(my_gdt) - 1, (uint64_t)(uintptr_t)my_gdt},
	  idtr = {sizeof(my_idt) - 1, (uint64_t)(uintptr_t)my_idt}, old;
	uint64_t t = (uint64_t)(uintptr_t)&tss;

	memcpy(my_gdt, gdt, sizeof(gdt));
	my_gdt[4] = (sizeof(tss) - 1) | ((t & 0xffffff) << 16) | (0x89ull << 40) |
		    (((t >> 24) & 0xff) << 56);
	my_gdt[5] = t >> 32;
	tss.ist[0] = (uint64_t)(uintptr_t)(ist_stack + sizeof(ist_stack));
	tss.iomap = sizeof(tss);
	__asm__ volatile("sidt %0" : "=m"(old));
	memcpy(my_idt, (const void *)(uintptr_t)old.base,
	       old.limit + 1u < sizeof(my_idt) ? old.limit + 1u : sizeof(my_idt));
	set_gate(0, fault_de);
	set_gate(6, fault_ud);
	set_gate(13, fault_gp);
	set_gate(14, fault_pf);
	__asm__ volatile("lgdt %0" : : "m"(gdtr));
	__asm__ volatile("ltr %w0" : : "r"(TSS_SEL));
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

/* ---- the sequences ---- */

/* SEQ name, insn: void name(uint64_t r15). Before the faulting instruction (label
 * name_fault) every GPR but RSP and R15 is set and incremented, then RSI = 1 - 2 sets the
 * flags; after it every GPR changes again. name_resume restores RSP and returns. */
/* clang-format off */
__asm__(".macro SEQ name, insn:vararg\n"
	"	.text\n"
	"	.globl \\name, \\name\\()_fault, \\name\\()_resume\n"
	"\\name:\n"
	"	push %rbx\n	push %rbp\n	push %r12\n	push %r13\n	push %r14\n	push %r15\n"
	"	mov %rsp, seq_rsp(%rip)\n"
	"	mov %rdi, %r15\n"
	"	mov $0xa0, %eax\n	mov $0xb0, %ebx\n	mov $0xc0, %ecx\n	mov $0xd0, %edx\n"
	"	mov $0xbf, %ebp\n	mov $0x80, %r8d\n	mov $0x90, %r9d\n	mov $0x100, %r10d\n"
	"	mov $0x110, %r11d\n	mov $0x120, %r12d\n	mov $0x130, %r13d\n"
	"	mov $0x140, %r14d\n"
	"	add $1, %rax\n	add $1, %rbx\n	add $1, %rcx\n	add $1, %rdx\n	add $1, %rbp\n"
	"	add $1, %r8\n	add $1, %r9\n	add $1, %r10\n	add $1, %r11\n	add $1, %r12\n"
	"	add $1, %r13\n	add $1, %r14\n"
	"	mov $1, %esi\n	mov $2, %edi\n	sub %rdi, %rsi\n"
	"\\name\\()_fault:\n"
	"	\\insn\n"
	"	add $0x1000, %rax\n	add $0x1000, %rbx\n	add $0x1000, %rcx\n"
	"	add $0x1000, %rdx\n	add $0x1000, %rbp\n	add $0x1000, %r8\n"
	"	add $0x1000, %r9\n	add $0x1000, %r10\n	add $0x1000, %r11\n"
	"	add $0x1000, %r12\n	add $0x1000, %r13\n	add $0x1000, %r14\n"
	"	xor %esi, %esi\n	mov %rsi, %rdi\n	inc %r15\n"
	"\\name\\()_resume:\n"
	"	mov seq_rsp(%rip), %rsp\n"
	"	pop %r15\n	pop %r14\n	pop %r13\n	pop %r12\n	pop %rbp\n	pop %rbx\n"
	"	ret\n"
	".endm\n"
	"SEQ seq_load, movq (%r15), %rdx\n"
	"SEQ seq_store, movq %rdx, (%r15)\n"
	"SEQ seq_rmw, addl %edx, (%r15)\n"
	"SEQ seq_call, call *%r15\n"
	"SEQ seq_div, divq %r15\n"
	"SEQ seq_ud2, ud2\n"
	"SEQ seq_lock_reg, .byte 0xf0, 0x01, 0xc3\n" /* lock add %eax, %ebx */
	".purgem SEQ\n");
/* clang-format on */

/* STACK name, insn: void name(uint64_t rsp): runs insn with RSP = the argument. */
/* clang-format off */
__asm__(".macro STACK name, insn:vararg\n"
	"	.text\n"
	"	.globl \\name, \\name\\()_fault, \\name\\()_resume\n"
	"\\name:\n"
	"	push %rbx\n"
	"	mov %rsp, %rbx\n"
	"	mov %rdi, %rsp\n"
	"	mov $0x1234, %eax\n"
	"\\name\\()_fault:\n"
	"	\\insn\n"
	"	mov $0xdead, %eax\n"
	"\\name\\()_resume:\n"
	"	mov %rbx, %rsp\n"
	"	pop %rbx\n"
	"	ret\n"
	".endm\n"
	"STACK stack_push, push %rax\n"
	"STACK stack_call, call stack_target\n"
	"stack_target:\n"
	"	mov $0xbeef, %eax\n"
	"	ret\n"
	".purgem STACK\n");
/* clang-format on */

/* void rep_movsb_at(void *dst, const void *src, size_t n), rep_movsq_at (n qwords). */
/* clang-format off */
__asm__(".text\n"
	".globl rep_movsb_at, rep_movsb_insn, rep_movsq_at, rep_movsq_insn\n"
	"rep_movsb_at:\n"
	"	mov %rdx, %rcx\n"
	"rep_movsb_insn:\n"
	"	rep movsb\n"
	"	ret\n"
	"rep_movsq_at:\n"
	"	mov %rdx, %rcx\n"
	"rep_movsq_insn:\n"
	"	rep movsq\n"
	"	ret\n");
/* clang-format on */

typedef void (*seq_fn)(uint64_t arg);
#define SEQ_DECL(n)                                                                                \
	extern char n##_fault[], n##_resume[];                                                     \
	void n(uint64_t arg)
SEQ_DECL(seq_load);
SEQ_DECL(seq_store);
SEQ_DECL(seq_rmw);
SEQ_DECL(seq_call);
SEQ_DECL(seq_div);
SEQ_DECL(seq_ud2);
SEQ_DECL(seq_lock_reg);
SEQ_DECL(stack_push);
SEQ_DECL(stack_call);
extern char rep_movsb_insn[], rep_movsq_insn[];
void rep_movsb_at(void *dst, const void *src, size_t n);
void rep_movsq_at(void *dst, const void *src, size_t n);
volatile uint64_t seq_rsp;

/* ---- checking ---- */

static bool eq(bool *ok, const char *check, const char *what, uint64_t got, uint64_t want)
{
	if (got != want) {
		printf("  %s: %s = 0x%lx (want 0x%lx)\n", check, what, got, want);
		*ok = false;
	}
	return got == want;
}

/* The vector, and the error code under (err_mask); CR2 in [cr2_lo, cr2_hi] for #PF. */
struct want {
	unsigned int vector;
	uint64_t error, err_mask, cr2_lo, cr2_hi;
};

static bool check_fault(bool *ok, const char *check, const struct want *w, uint64_t rip)
{
	if (!eq(ok, check, "faults", fault.count, 1))
		return false;
	eq(ok, check, "vector", fault.f.vector, w->vector);
	eq(ok, check, "rip", fault.f.rip, rip);
	eq(ok, check, "error", fault.f.error & w->err_mask, w->error);
	if (w->vector == 14 && (fault.cr2 < w->cr2_lo || fault.cr2 > w->cr2_hi)) {
		printf("  %s: cr2 = 0x%lx (want 0x%lx..0x%lx)\n", check, fault.cr2, w->cr2_lo,
		       w->cr2_hi);
		*ok = false;
	}
	return *ok;
}

struct seq_case {
	const char *name;
	seq_fn fn;
	const char *fault_rip, *resume;
	uint64_t arg;
	struct want w;
	bool rip_is_arg;     /* a fetch fault: RIP is the target, the call pushed 8 bytes */
	const uint8_t *page; /* a page that must still be all (fill) */
	uint8_t fill;
	bool split; /* the store's first 4 bytes are the last 4 of (page) */
};

/* KVM's instruction emulator, which runs all CPL0 code on KVM-PVM, writes a store that crosses
 * a page boundary one page at a time: the first page keeps its part when the second faults.
 * Known and reported as a host bug when that is exactly what happened (the low 4 bytes of
 * RDX = 0xd1 at the end of the page, nothing else touched). */
static bool split_store_host_bug(const struct seq_case *c)
{
	static const uint8_t part[4] = {0xd1, 0, 0, 0};

	for (unsigned int i = 0; i < PG - 4; i++) {
		if (c->page[i] != c->fill)
			return false;
	}
	if (memcmp(c->page + PG - 4, part, 4))
		return false;
	printf("KNOWN-HOST-BUG %s: the store's bytes in the first page were written\n", c->name);
	return true;
}

static void run_seq(const struct seq_case *c)
{
	const struct trap_frame *f = &fault.f;
	bool ok = true;
	static const char *const names[15] = {"r15", "r14", "r13", "r12", "r11", "r10", "r9", "r8",
					      "rbp", "rdi", "rsi", "rdx", "rcx", "rbx", "rax"};
	const uint64_t want[15] = {c->arg, 0x141, 0x131, 0x121, 0x111, 0x101, 0x91, 0x81,
				   0xc0,   2,	  ~0ull, 0xd1,	0xc1,  0xb1,  0xa1};

	arm((uint64_t)(uintptr_t)c->resume);
	c->fn(c->arg);
	disarm();
	if (check_fault(&ok, c->name, &c->w,
			c->rip_is_arg ? c->arg : (uint64_t)(uintptr_t)c->fault_rip)) {
		uint64_t got[15];

		memcpy(got, f, sizeof(got)); /* r15 .. rax lead struct trap_frame */
		for (int i = 0; i < 15; i++)
			eq(&ok, c->name, names[i], got[i], want[i]);
		eq(&ok, c->name, "rflags", f->rflags & FLAGS_ARITH, FLAGS_SUB_1_2);
		eq(&ok, c->name, "rsp", f->rsp, seq_rsp - (c->rip_is_arg ? 8 : 0));
	}
	for (unsigned int i = 0; c->page && i < PG; i++) {
		if (c->page[i] == c->fill)
			continue;
		if (!(ok && c->split && split_store_host_bug(c)))
			eq(&ok, c->name, "a byte of the page", c->page[i], c->fill);
		break;
	}
	report(c->name, ok);
}

/* A seq_case for (fn) with argument (a): vector (v), error (e) under mask (m), CR2 in [lo, hi]. */
#define CASE(n, fn_, a, v, e, m, lo, hi)                                                           \
	.name = n, .fn = fn_, .fault_rip = fn_##_fault, .resume = fn_##_resume, .arg = a,          \
	.w = {.vector = v, .error = e, .err_mask = m, .cr2_lo = lo, .cr2_hi = hi}

static void test_sequences(void)
{
	const uint64_t all = ~0ull, bad = HI(V_BAD), ro = HI(V_RO), split = HI(V_SPLIT + 1) - 4;
	const struct seq_case cases[] = {
		{CASE("pf-read", seq_load, bad, 14, 0, all, bad, bad)},
		{CASE("pf-write", seq_store, bad, 14, 2, all, bad, bad)},
		/* An RMW on a not-present page may report the read or the write: W not checked. */
		{CASE("pf-rmw-notpresent", seq_rmw, bad + 8, 14, 0, ~2ull, bad + 8, bad + 8)},
		{CASE("pf-rmw-readonly", seq_rmw, ro + 16, 14, 3, all, ro + 16, ro + 16),
		 .page = ro_page, .fill = 0x5a},
		/* CR2: a byte of the access in the not-present page (CPUs give the first). */
		{CASE("pf-split-store", seq_store, split, 14, 2, all, split + 4, split + 7),
		 .page = split_page, .fill = 0x6b, .split = true},
		{CASE("pf-fetch", seq_call, bad + 0x40, 14, 0, all, bad + 0x40, bad + 0x40),
		 .rip_is_arg = true},
		{CASE("de-zero", seq_div, 0, 0, 0, all, 0, 0)},
		/* RDX:RAX = 0xd1:0xa1 divided by 1: the quotient does not fit in 64 bits. */
		{CASE("de-overflow", seq_div, 1, 0, 0, all, 0, 0)},
		{CASE("ud-ud2", seq_ud2, 0, 6, 0, all, 0, 0)},
		{CASE("ud-lock-reg", seq_lock_reg, 0, 6, 0, all, 0, 0)},
		{CASE("gp-noncanonical", seq_load, 0x0000800000000000ull, 13, 0, all, 0, 0)},
	};

	memset(ro_page, 0x5a, PG);
	memset(split_page, 0x6b, PG);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_seq(&cases[i]);
}

static void test_stack(const char *name, seq_fn fn, const char *fault_rip, const char *resume)
{
	const uint64_t top = HI(V_STACK_NP + 1);
	const struct want w = {
		.vector = 14, .error = 2, .err_mask = ~0ull, .cr2_lo = top - 8, .cr2_hi = top - 8};
	bool ok = true;

	arm((uint64_t)(uintptr_t)resume);
	fn(top);
	disarm();
	if (check_fault(&ok, name, &w, (uint64_t)(uintptr_t)fault_rip)) {
		eq(&ok, name, "rsp", fault.f.rsp, top);
		eq(&ok, name, "rax", fault.f.rax, 0x1234);
	}
	report(name, ok);
}

/* One REP MOVS case: (n) elements of (size) bytes from (src) to (dst), virtual addresses;
 * page (np) is not present until the fault maps it to (np_pa); (done) elements fit before it.
 * (pdst, psrc): the same buffers through physical (identity) addresses. */
struct rep_case {
	const char *name;
	unsigned int size, n, done, np;
	uint64_t dst, src;
	const void *np_pa;
	const uint8_t *pdst_lo, *psrc_lo; /* the part before the page */
	const uint8_t *pdst_hi, *psrc_hi; /* the part after it */
};

static void test_rep(const struct rep_case *c)
{
	const struct want w = {.vector = 14,
			       .error = c->np == V_D1 ? 2 : 0,
			       .err_mask = ~0ull,
			       .cr2_lo = HI(c->np),
			       .cr2_hi = HI(c->np)};
	const size_t lo = (size_t)c->done * c->size, hi = (size_t)(c->n - c->done) * c->size;
	bool ok = true;

	hi_map(c->np, NULL, 0);
	arm(0);
	fault.map_page = c->np;
	fault.map_pa = c->np_pa;
	fault.pre_dst = c->pdst_lo;
	fault.pre_src = c->psrc_lo;
	fault.pre_len = lo;
	if (c->size == 1)
		rep_movsb_at((void *)(uintptr_t)c->dst, (const void *)(uintptr_t)c->src, c->n);
	else
		rep_movsq_at((void *)(uintptr_t)c->dst, (const void *)(uintptr_t)c->src, c->n);
	disarm();
	if (check_fault(&ok, c->name, &w,
			(uint64_t)(uintptr_t)(c->size == 1 ? rep_movsb_insn : rep_movsq_insn))) {
		eq(&ok, c->name, "rcx", fault.f.rcx, c->n - c->done);
		eq(&ok, c->name, "rsi", fault.f.rsi, c->src + lo);
		eq(&ok, c->name, "rdi", fault.f.rdi, c->dst + lo);
	}
	report(c->name, ok);
	reportf(fault.count && fault.pre_ok, "%s-copied-before-fault", c->name);
	reportf(!memcmp(c->pdst_lo, c->psrc_lo, lo) && !memcmp(c->pdst_hi, c->psrc_hi, hi) &&
			c->pdst_hi[hi] == 0,
		"%s-completed", c->name);
}

static void test_reps(void)
{
	const unsigned int before = 100, n = 300, qbefore = 10, qn = 30;

	for (unsigned int i = 0; i < PG; i++) {
		rep_src[i] = (uint8_t)(i * 7 + 3);
		s0[i] = (uint8_t)(i * 13 + 1);
		s1[i] = (uint8_t)(i * 5 + 9);
	}
	memset(d0, 0, PG);
	memset(d1, 0, PG);
	memset(rep_dst, 0, PG);
	hi_map(V_D0, d0, PTE_P | PTE_W);
	hi_map(V_S0, s0, PTE_P | PTE_W);
	/* The destination runs from d0 into d1, adjacent in the virtual range only. */
	test_rep(&(const struct rep_case){.name = "rep-movsb-dst-fault",
					  .size = 1,
					  .n = n,
					  .done = before,
					  .np = V_D1,
					  .dst = HI(V_D1) - before,
					  .src = (uint64_t)(uintptr_t)rep_src,
					  .np_pa = d1,
					  .pdst_lo = d0 + PG - before,
					  .psrc_lo = rep_src,
					  .pdst_hi = d1,
					  .psrc_hi = rep_src + before});
	/* The source runs from s0 into s1. */
	test_rep(&(const struct rep_case){.name = "rep-movsq-src-fault",
					  .size = 8,
					  .n = qn,
					  .done = qbefore,
					  .np = V_S1,
					  .dst = (uint64_t)(uintptr_t)rep_dst,
					  .src = HI(V_S1) - qbefore * 8,
					  .np_pa = s1,
					  .pdst_lo = rep_dst,
					  .psrc_lo = s0 + PG - qbefore * 8,
					  .pdst_hi = rep_dst + qbefore * 8,
					  .psrc_hi = s1});
}

void guest_main(const struct hvm_start_info *si)
{
	uint64_t cr0;

	(void)si;
	hi_init();
	hi_map(V_RO, ro_page, PTE_P);
	hi_map(V_SPLIT, split_page, PTE_P | PTE_W);
	/* Supervisor writes honour read-only pages only with CR0.WP. */
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("mov %0, %%cr0" : : "r"(cr0 | CR0_WP));
	setup_handlers();
	test_sequences();
	test_stack("push-stack", stack_push, stack_push_fault, stack_push_resume);
	test_stack("call-stack", stack_call, stack_call_fault, stack_call_resume);
	test_reps();
	finish();
}
