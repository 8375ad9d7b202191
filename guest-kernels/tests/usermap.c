/* usermap.c: user pages mapped, unmapped, write-protected and remapped while user code runs;
 * every user access must fault or succeed exactly as the page tables say at that moment.
 *
 * This is the test of --accel hybrid's page-table coherence (dbt/ptwatch.h): there the kernel
 * (this guest's CPL0 code) runs in mvm's engine and user code in KVM, whose shadow page tables
 * do not see the kernel's stores. A stale shadow shows up here as a user read of the old frame,
 * a write that succeeds on a write-protected or unmapped page, or an access to a supervisor-only
 * page. Any CPU or VMM must pass it; it runs everywhere.
 *
 * Layout: user pages at USER_VA (PML4 slot 128) through our own PDPT/PD/PT, onto a pool of
 * frames whose first word the kernel keeps a model of. Each probe enters user mode (IRETQ),
 * does one read, write or jump, and leaves by SYSCALL (done: the value read) or by a #PF
 * (recorded: error code and CR2). The kernel changes entries with plain stores and INVLPG (or a
 * CR3 load for non-leaf entries), as an OS does.
 * - random: (iterations) rounds of a random change to one of NPAGES pages (map a frame
 *   read/write, write-protect, unmap, make supervisor-only), then a read and a write of every
 *   page checked against the model;
 * - fixed scenarios for the non-leaf levels (a PD entry pointed at another PT, cleared; a PML4
 *   entry cleared), a CR3 switch to a second address space with another frame at the same
 *   address, and no-execute set on a page user code was running from.
 * cmdline: iterations=N (default 300), seed=N. Prints PROBES <n> and RESULT PASS/FAIL. */
#include "guest.h"

#define MSR_EFER   0xc0000080
#define MSR_STAR   0xc0000081
#define MSR_LSTAR  0xc0000082
#define MSR_SFMASK 0xc0000084
#define EFER_SCE   (1ull << 0)
#define EFER_NXE   (1ull << 11)

#define KERNEL_CS  0x08
#define KERNEL_SS  0x10
#define USER_BASE  0x20
#define USER_SS	   (0x28 | 3)
#define USER_CS	   (0x30 | 3)
#define TSS_SEL	   0x38

#define PTE_P	   (1ull << 0)
#define PTE_RW	   (1ull << 1)
#define PTE_U	   (1ull << 2)
#define PTE_NX	   (1ull << 63)
#define PF_P	   1u
#define PF_W	   2u
#define PF_U	   4u
#define PF_I	   16u

#define USER_SLOT  128
#define USER_VA	   (128ull << 39)
#define NPAGES	   8
#define NFRAMES	   6
#define CODE_PAGE  (NPAGES)	/* PT index of the page user code runs from (exec tests) */

extern uint64_t pml4[];		/* the runtime's (entry.S) */

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3, iomap;
} __attribute__((packed));

static uint64_t gdt[9] __attribute__((aligned(16)));
static struct tss64 tss __attribute__((aligned(16)));
static uint64_t idt[2 * 256] __attribute__((aligned(16)));
static uint8_t kernel_stack[8192] __attribute__((aligned(16)));
static uint8_t user_stack[8192] __attribute__((aligned(4096)));

/* Our user-half tables, the second address space's, and the frames. */
static volatile uint64_t pdpt[512] __attribute__((aligned(4096)));
static volatile uint64_t pd[512] __attribute__((aligned(4096)));
static volatile uint64_t pt[512] __attribute__((aligned(4096)));
static volatile uint64_t pt2[512] __attribute__((aligned(4096)));
static uint64_t pml4_b[512] __attribute__((aligned(4096)));
static volatile uint64_t pdpt_b[512] __attribute__((aligned(4096)));
static volatile uint64_t pd_b[512] __attribute__((aligned(4096)));
static volatile uint64_t pt_b[512] __attribute__((aligned(4096)));
static volatile uint64_t frames[NFRAMES][512] __attribute__((aligned(4096)));
static uint8_t code_frame[4096] __attribute__((aligned(4096)));

/* Shared with the assembly. */
uint64_t kernel_rsp_save;
volatile uint64_t sys_rax, sys_rdx;	/* what the probe's SYSCALL carried */
volatile uint64_t pf_error, pf_cr2;	/* the #PF that ended a probe */
volatile int exit_kind;			/* 1: SYSCALL, 2: #PF, 3: another fault */
volatile uint64_t other_vector;

__asm__(".text\n"
	".globl sys_entry\n"
	"sys_entry:\n"
	"	mov %rax, sys_rax\n"
	"	mov %rdx, sys_rdx\n"
	"	movl $1, exit_kind\n"
	"	jmp back_to_kernel\n"
	".globl pf_entry\n"
	"pf_entry:\n"
	"	popq pf_error\n"
	"	push %rax\n"
	"	mov %cr2, %rax\n"
	"	mov %rax, pf_cr2\n"
	"	pop %rax\n"
	"	movl $2, exit_kind\n"
	"	jmp back_to_kernel\n"
	".globl other_entry\n"
	"other_entry:\n"
	"	movl $3, exit_kind\n"
	"back_to_kernel:\n"
	"	mov kernel_rsp_save, %rsp\n"
	"	mov $0x10, %ax\n"
	"	mov %ax, %ss\n"
	"	ret\n"

	/* Probes: rdi = address, rsi = value to write. */
	".globl user_read\n"
	"user_read:\n"
	"	mov (%rdi), %rdx\n"
	"	mov $1, %eax\n"
	"	syscall\n"
	".globl user_write\n"
	"user_write:\n"
	"	mov %rsi, (%rdi)\n"
	"	mov $2, %eax\n"
	"	syscall\n"
	/* x87/SSE state across the user/kernel boundary: xmm0 as the kernel left it, xmm1 as
	 * user mode sets it (rsi). */
	".globl user_fpu\n"
	"user_fpu:\n"
	"	movq %xmm0, %rdx\n"
	"	movq %rsi, %xmm1\n"
	"	mov $3, %eax\n"
	"	syscall\n"
	".globl user_jump\n"
	"user_jump:\n"
	"	jmp *%rdi\n"
	/* Copied to code_frame: what user code runs from the exec page. */
	".globl exec_stub\n"
	"exec_stub:\n"
	"	mov $0x77, %eax\n"
	"	syscall\n"
	".globl exec_stub_end\n"
	"exec_stub_end:\n");

extern char sys_entry[], pf_entry[], other_entry[], user_read[], user_write[], user_jump[], user_fpu[],
	exec_stub[], exec_stub_end[];

static uint64_t probes;

static void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static void set_gate(unsigned int vector, void *handler)
{
	uint64_t a = (uint64_t)(uintptr_t)handler;

	idt[2 * vector] = (a & 0xffff) | ((uint64_t)KERNEL_CS << 16) | (0x8eull << 40) |
			  ((a >> 16) << 48);
	idt[2 * vector + 1] = a >> 32;
}

static void setup_descriptors(void)
{
	uint64_t t = (uint64_t)(uintptr_t)&tss;
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) gdtr = {sizeof(gdt) - 1, (uint64_t)(uintptr_t)gdt},
				   idtr = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};

	gdt[1] = 0x00af9a000000ffffull; /* 0x08 kernel code64 */
	gdt[2] = 0x00cf92000000ffffull; /* 0x10 kernel data */
	gdt[3] = 0x00cf9a000000ffffull; /* 0x18 code32 (the runtime's) */
	gdt[4] = 0x00cffa000000ffffull; /* 0x20 user code32 */
	gdt[5] = 0x00cff2000000ffffull; /* 0x28 user data */
	gdt[6] = 0x00affa000000ffffull; /* 0x30 user code64 */
	gdt[7] = (sizeof(tss) - 1) | ((t & 0xffffff) << 16) | (0x89ull << 40) |
		 (((t >> 24) & 0xff) << 56);
	gdt[8] = t >> 32;
	tss.rsp[0] = (uint64_t)(uintptr_t)(kernel_stack + sizeof(kernel_stack));
	tss.iomap = sizeof(tss);
	for (unsigned int v = 0; v < 32; v++)
		set_gate(v, other_entry);
	set_gate(14, pf_entry);
	__asm__ volatile("lgdt %0" : : "m"(gdtr));
	__asm__ volatile("lidt %0" : : "m"(idtr));
	__asm__ volatile("ltr %w0" : : "r"(TSS_SEL));
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE | EFER_NXE);
	/* SSE on (CR4.OSFXSR, OSXMMEXCPT; CR0.EM and TS clear) for the x87/SSE checks. */
	__asm__ volatile("mov %%cr4, %%rax; or $0x600, %%rax; mov %%rax, %%cr4\n"
			 "mov %%cr0, %%rax; and $~0xc, %%rax; mov %%rax, %%cr0" : : : "rax");
	wrmsr(MSR_STAR, ((uint64_t)USER_BASE << 48) | ((uint64_t)KERNEL_CS << 32));
	wrmsr(MSR_LSTAR, (uint64_t)(uintptr_t)sys_entry);
	wrmsr(MSR_SFMASK, 0x47700);
}

static uint64_t phys(const volatile void *p)
{
	return (uint64_t)(uintptr_t)p; /* the runtime's identity map */
}

static void invlpg(uint64_t va)
{
	__asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
}

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

/* Enters user mode at (rip) with rdi, rsi; returns when the probe left (exit_kind). */
static void user_probe(void *rip, uint64_t rdi, uint64_t rsi)
{
	uint64_t ursp = (uint64_t)(uintptr_t)(user_stack + sizeof(user_stack));

	exit_kind = 0;
	probes++;
	__asm__ volatile("push %%rbp\n"
			 "push %%rbx\n"
			 "push %%r12\n"
			 "push %%r13\n"
			 "push %%r14\n"
			 "push %%r15\n"
			 "lea 1f(%%rip), %%rax\n"
			 "push %%rax\n"
			 "mov %%rsp, kernel_rsp_save\n"
			 "push %[ss]\n"
			 "push %[ursp]\n"
			 "push $0x202\n"
			 "push %[cs]\n"
			 "push %[rip]\n"
			 "iretq\n"
			 "1:\n"
			 "pop %%r15\n"
			 "pop %%r14\n"
			 "pop %%r13\n"
			 "pop %%r12\n"
			 "pop %%rbx\n"
			 "pop %%rbp\n"
			 : "+D"(rdi), "+S"(rsi)
			 : [ss] "i"(USER_SS), [ursp] "r"(ursp), [cs] "i"(USER_CS),
			   [rip] "r"((uint64_t)(uintptr_t)rip)
			 : "rax", "rcx", "rdx", "r8", "r9", "r10", "r11", "memory", "cc");
}

/* --- the model --- */

struct page_state {
	bool present, rw, user;
	int frame;
};
static struct page_state model[NPAGES];
static uint64_t frame_value[NFRAMES];
static int failures;

static uint64_t pte_of(const struct page_state *s)
{
	return phys(frames[s->frame]) | (s->present ? PTE_P : 0) | (s->rw ? PTE_RW : 0) |
	       (s->user ? PTE_U : 0);
}

static void apply(unsigned int page)
{
	pt[page] = pte_of(&model[page]);
	invlpg(USER_VA + 4096ull * page);
}

static void fail(const char *what, unsigned int page, uint64_t got, uint64_t want)
{
	if (failures++ < 20)
		printf("MISMATCH %s page %u: got 0x%lx want 0x%lx (exit %d, #PF error 0x%lx "
		       "cr2 0x%lx)\n", what, page, (unsigned long)got, (unsigned long)want,
		       exit_kind, (unsigned long)pf_error, (unsigned long)pf_cr2);
}

/* A user read of (va), expected to give (value), or to fault with (error) when (error) is
 * not ~0. */
static bool expect_read(const char *what, unsigned int page, uint64_t va, uint64_t value,
			uint32_t error)
{
	user_probe(user_read, va, 0);
	if (error != ~0u) {
		if (exit_kind != 2 || pf_error != error || pf_cr2 != va) {
			fail(what, page, exit_kind == 1 ? sys_rdx : pf_error, error);
			return false;
		}
		return true;
	}
	if (exit_kind != 1 || sys_rax != 1 || sys_rdx != value) {
		fail(what, page, exit_kind == 1 ? sys_rdx : pf_error, value);
		return false;
	}
	return true;
}

static bool expect_write(const char *what, unsigned int page, uint64_t va, uint64_t value,
			 uint32_t error)
{
	user_probe(user_write, va, value);
	if (error != ~0u) {
		if (exit_kind != 2 || pf_error != error || pf_cr2 != va) {
			fail(what, page, exit_kind, error);
			return false;
		}
		return true;
	}
	if (exit_kind != 1 || sys_rax != 2) {
		fail(what, page, exit_kind == 2 ? pf_error : (uint64_t)exit_kind, 0);
		return false;
	}
	return true;
}

/* What a user access to (page) does per the model: ~0 (succeeds) or the #PF error code. */
static uint32_t model_error(unsigned int page, bool write)
{
	const struct page_state *s = &model[page];

	if (!s->present)
		return PF_U | (write ? PF_W : 0);
	if (!s->user || (write && !s->rw))
		return PF_P | PF_U | (write ? PF_W : 0);
	return ~0u;
}

static void check_page(unsigned int page, uint64_t stamp)
{
	uint64_t va = USER_VA + 4096ull * page;
	uint32_t rerr = model_error(page, false), werr = model_error(page, true);
	int f = model[page].frame;

	expect_read("read", page, va, rerr == ~0u ? frame_value[f] : 0, rerr);
	if (expect_write("write", page, va, stamp, werr) && werr == ~0u)
		frame_value[f] = stamp;
	/* What user mode wrote (or did not) is in the frame, as the kernel sees it. */
	if (frames[f][0] != frame_value[f])
		fail("frame-content", page, frames[f][0], frame_value[f]);
}

static uint64_t rng_state;

static uint32_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33);
}

static void random_rounds(unsigned int iterations)
{
	int before = failures;

	for (unsigned int it = 0; it < iterations; it++) {
		unsigned int page = rnd() % NPAGES;
		struct page_state *s = &model[page];

		switch (rnd() % 5) {
		case 0: /* map another frame, read/write */
		case 1:
			*s = (struct page_state){.present = true, .rw = true, .user = true,
						 .frame = (int)(rnd() % NFRAMES)};
			break;
		case 2: /* write-protect */
			s->rw = false;
			break;
		case 3: /* unmap */
			s->present = false;
			break;
		case 4: /* supervisor-only */
			s->user = false;
			break;
		}
		apply(page);
		for (unsigned int p = 0; p < NPAGES; p++)
			check_page(p, 0x5eed0000ull + it * 16 + p);
	}
	reportf(failures == before, "random-%u-rounds", iterations);
}

static void map_all_rw(void)
{
	for (unsigned int p = 0; p < NPAGES; p++) {
		model[p] = (struct page_state){.present = true, .rw = true, .user = true,
					       .frame = (int)(p % NFRAMES)};
		apply(p);
	}
}

static void nonleaf_scenarios(void)
{
	uint64_t cr3 = read_cr3(), va = USER_VA;
	int before;

	map_all_rw();
	/* The PD entry pointed at another PT that maps page 0 to frame 5. */
	before = failures;
	pt2[0] = phys(frames[5]) | PTE_P | PTE_RW | PTE_U;
	pd[0] = phys(pt2) | PTE_P | PTE_RW | PTE_U;
	write_cr3(cr3);
	expect_read("pd-switch", 0, va, frame_value[5], ~0u);
	expect_read("pd-switch-unmapped", 1, va + 4096, 0, PF_U);
	report("nonleaf-pd-repointed", failures == before);
	/* The PD entry cleared: everything under it faults. */
	before = failures;
	pd[0] = 0;
	write_cr3(cr3);
	expect_read("pd-cleared", 0, va, 0, PF_U);
	report("nonleaf-pd-cleared", failures == before);
	/* Back, then the PD entry made supervisor-only. */
	before = failures;
	pd[0] = phys(pt) | PTE_P | PTE_RW;
	write_cr3(cr3);
	expect_read("pd-supervisor", 0, va, 0, PF_P | PF_U);
	pd[0] = phys(pt) | PTE_P | PTE_RW | PTE_U;
	write_cr3(cr3);
	expect_read("pd-restored", 0, va, frame_value[model[0].frame], ~0u);
	report("nonleaf-pd-supervisor", failures == before);
	/* The PML4 entry cleared, then restored. */
	before = failures;
	pml4[USER_SLOT] = 0;
	write_cr3(cr3);
	expect_read("pml4-cleared", 0, va, 0, PF_U);
	pml4[USER_SLOT] = phys(pdpt) | PTE_P | PTE_RW | PTE_U;
	write_cr3(cr3);
	expect_read("pml4-restored", 0, va, frame_value[model[0].frame], ~0u);
	report("nonleaf-pml4-cleared", failures == before);
}

/* A second address space with frame 4 at USER_VA: each sees its own. */
static void cr3_switch(void)
{
	uint64_t cr3 = read_cr3();
	int before = failures;

	for (unsigned int i = 0; i < 512; i++)
		pml4_b[i] = pml4[i];
	pml4_b[USER_SLOT] = phys(pdpt_b) | PTE_P | PTE_RW | PTE_U;
	pdpt_b[0] = phys(pd_b) | PTE_P | PTE_RW | PTE_U;
	pd_b[0] = phys(pt_b) | PTE_P | PTE_RW | PTE_U;
	pt_b[0] = phys(frames[4]) | PTE_P | PTE_RW | PTE_U;
	for (int round = 0; round < 6; round++) {
		bool b_mapped = pt_b[0] & PTE_P;

		write_cr3(phys(pml4_b));
		expect_read("cr3-b", 0, USER_VA, b_mapped ? frame_value[4] : 0,
			    b_mapped ? ~0u : PF_U);
		write_cr3(cr3);
		expect_read("cr3-a", 0, USER_VA, frame_value[model[0].frame], ~0u);
		/* Change B's mapping while A runs: B must see it next time. */
		pt_b[0] = round & 1 ? phys(frames[4]) | PTE_P | PTE_RW | PTE_U : 0;
		write_cr3(phys(pml4_b));
		if (round & 1)
			expect_read("cr3-b-remapped", 0, USER_VA, frame_value[4], ~0u);
		else
			expect_read("cr3-b-unmapped", 0, USER_VA, 0, PF_U);
		write_cr3(cr3);
	}
	report("cr3-switch", failures == before);
}

/* User code runs from a page, then the page becomes no-execute. */
static void exec_then_nx(void)
{
	uint64_t va = USER_VA + 4096ull * CODE_PAGE;
	int before = failures;

	memcpy(code_frame, exec_stub, (size_t)(exec_stub_end - exec_stub));
	pt[CODE_PAGE] = phys(code_frame) | PTE_P | PTE_U;
	invlpg(va);
	user_probe(user_jump, va, 0);
	if (exit_kind != 1 || sys_rax != 0x77)
		fail("exec", CODE_PAGE, exit_kind, 1);
	pt[CODE_PAGE] |= PTE_NX;
	invlpg(va);
	user_probe(user_jump, va, 0);
	if (exit_kind != 2 || pf_error != (PF_P | PF_U | PF_I) || pf_cr2 != va)
		fail("exec-nx", CODE_PAGE, exit_kind == 2 ? pf_error : (uint64_t)exit_kind,
		     PF_P | PF_U | PF_I);
	pt[CODE_PAGE] &= ~PTE_NX;
	invlpg(va);
	user_probe(user_jump, va, 0);
	if (exit_kind != 1 || sys_rax != 0x77)
		fail("exec-again", CODE_PAGE, exit_kind, 1);
	report("exec-nx", failures == before);
}

/* The SSE registers carry values both ways between kernel and user mode, interleaved with
 * page-table changes (under --accel hybrid the state moves between the engine and KVM). */
static void fpu_crossing(void)
{
	int before = failures;

	for (uint64_t i = 1; i <= 16; i++) {
		uint64_t mine = 0x1122334455667700ull + i, theirs = 0xa5a5000000000000ull + i, got;

		__asm__ volatile("movq %0, %%xmm0" : : "r"(mine));
		user_probe(user_fpu, 0, theirs);
		__asm__ volatile("movq %%xmm1, %0" : "=r"(got));
		if (exit_kind != 1 || sys_rax != 3 || sys_rdx != mine)
			fail("fpu-kernel-to-user", 0, sys_rdx, mine);
		if (got != theirs)
			fail("fpu-user-to-kernel", 0, got, theirs);
		if (i % 4 == 0) {
			model[i % NPAGES].present = !model[i % NPAGES].present;
			apply(i % NPAGES);
			check_page(i % NPAGES, 0xf00d00ull + i);
		}
	}
	report("fpu-crossing", failures == before);
}

/* User code and its stack live in the first 2 MiB of the identity map. */
static void allow_user_low_2m(void)
{
	uint64_t *p3 = (uint64_t *)(uintptr_t)(pml4[0] & ~0xfffull);
	uint64_t *p2 = (uint64_t *)(uintptr_t)(p3[0] & ~0xfffull);

	pml4[0] |= PTE_U;
	p3[0] |= PTE_U;
	p2[0] |= PTE_U;
	write_cr3(read_cr3());
}

void guest_main(const struct hvm_start_info *si)
{
	unsigned int iterations = (unsigned int)cmdline_uint("iterations", 300);

	rng_state = cmdline_uint("seed", 1);
	setup_descriptors();
	allow_user_low_2m();
	for (int f = 0; f < NFRAMES; f++) {
		frame_value[f] = 0xf0000000ull + (uint64_t)f;
		frames[f][0] = frame_value[f];
	}
	pml4[USER_SLOT] = phys(pdpt) | PTE_P | PTE_RW | PTE_U;
	pdpt[0] = phys(pd) | PTE_P | PTE_RW | PTE_U;
	pd[0] = phys(pt) | PTE_P | PTE_RW | PTE_U;
	write_cr3(read_cr3());
	map_all_rw();
	{
		int before = failures;

		for (unsigned int p = 0; p < NPAGES; p++)
			check_page(p, 0xabc000ull + p);
		report("mapped-pages", failures == before);
	}
	random_rounds(iterations);
	nonleaf_scenarios();
	cr3_switch();
	exec_then_nx();
	fpu_crossing();
	printf("PROBES %lu\n", (unsigned long)probes);
	report("no-mismatch", failures == 0);
	finish();
}
