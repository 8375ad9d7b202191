/* fid_cpu.c: the fidelity guest's CPU set-up and probe runner: a GDT with user, conforming,
 * execute-only and not-present segments, a 64-bit TSS with an I/O permission bitmap, an LDT, a
 * 64-bit call gate, an IDT whose gate DPLs the cases rely on, the trap recorder, and entry to
 * CPL3 by IRETQ (SDM Vol. 3A 6.14, 7.7, 5.8.3.1; Vol. 1 19.5). */
#include "fid.h"

#define PTE_U 4ull

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3, iomap;
	/* SDM Vol. 1 19.5.2: a bit per port, 1 = denied; the byte after the map must be all
	 * ones, since an access may read two bytes of it. */
	uint8_t iobitmap[8192 + 1];
} __attribute__((packed));
_Static_assert(__builtin_offsetof(struct tss64, iobitmap) == 104, "TSS I/O map offset");

#define GDT_ENTRIES 18
static uint64_t gdt[GDT_ENTRIES] __attribute__((aligned(16)));
static uint64_t ldt[2] __attribute__((aligned(16)));
static struct tss64 tss __attribute__((aligned(16)));
static uint64_t idt[2 * 256] __attribute__((aligned(16)));
static uint8_t kernel_stack[16384] __attribute__((aligned(16)));
static uint8_t user_stack[16384] __attribute__((aligned(16)));
struct fid_dtr fid_gdtr, fid_idtr;

volatile struct fid_trap fid_trap;
volatile uint64_t fid_out[8];
/* Where the next event resumes instead of fid_probe_ret (probes that move RSP set it). */
volatile uint64_t fid_resume;
volatile uint64_t fid_ret;	/* a CPL3 probe's RAX */
uint64_t fid_kernel_rsp;	/* fid_run3's stack while user mode runs */
extern char isr_stubs[], fid_user_tramp[], fid_user_done[], fid_user_back[], fid_cg_target[];

__asm__(".text\n"
	".globl fid_probe_ret\n"
	"fid_probe_ret:\n"
	"	ret\n"
	/* CPL3: call the probe (RDX) with RDI, RSI; keep RAX; the UD2 leaves user mode. */
	".globl fid_user_tramp\n"
	"fid_user_tramp:\n"
	"	call *%rdx\n"
	"	mov %rax, fid_ret(%rip)\n"
	".globl fid_user_done\n"
	"fid_user_done:\n"
	"	ud2\n"
	/* Back at CPL0 on fid_run3's stack (fid_on_trap built the IRETQ frame). */
	".globl fid_user_back\n"
	"fid_user_back:\n"
	"	mov $0x10, %eax\n"
	"	mov %eax, %ds\n"
	"	mov %eax, %es\n"
	"	xor %eax, %eax\n"
	"	mov %eax, %fs\n"
	"	mov %eax, %gs\n"
	"	ret\n"
	/* The call gate's target (CPL0): what CS it runs with and what CS the gate pushed
	 * (SDM Vol. 3A 5.8.6: SS, RSP, CS, RIP of the caller, 8 bytes each), then a far return
	 * to the caller's privilege level. */
	".globl fid_cg_target\n"
	"fid_cg_target:\n"
	"	xor %eax, %eax\n"
	"	mov %cs, %ax\n"
	"	mov %rax, fid_out+8(%rip)\n"
	"	mov 8(%rsp), %rax\n"
	"	mov %rax, fid_out+16(%rip)\n"
	"	lretq\n");

void fid_wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

uint64_t fid_read_cr0(void)
{
	uint64_t v;

	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

uint64_t fid_read_cr4(void)
{
	uint64_t v;

	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

FID_PROBE(p_write_cr4, "mov %rdi, %cr4");

bool fid_write_cr4(uint64_t v)
{
	fid_run0(p_write_cr4, v, 0);
	return fid_trap.count == 0;
}

void fid_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}

bool fid_cpu_has(uint32_t leaf, uint32_t sub, int reg, int bit)
{
	uint32_t r[4];

	fid_cpuid(leaf & 0x80000000u, 0, r);
	if (r[0] < leaf)
		return false;
	fid_cpuid(leaf, sub, r);
	return (r[reg] >> bit) & 1;
}

bool fid_vendor_amd(void)
{
	uint32_t r[4];

	fid_cpuid(0, 0, r);
	return r[1] == 0x68747541; /* "Auth" */
}

uint64_t fid_gdt_entry(unsigned int sel)
{
	return (sel & 4) ? ldt[(sel >> 3) & 1] : gdt[(sel >> 3) % GDT_ENTRIES];
}

const char *fid_vec_name(uint64_t v)
{
	static const char *const names[32] = {
		"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO", "#TS",
		"#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
	};

	if (v == NO_FAULT)
		return "none";
	if (v < 32 && names[v])
		return names[v];
	return "INT";
}

/* A 16-byte system descriptor (TSS, LDT: SDM Vol. 3A 7.2.3, 3.5) at (idx). */
static void set_system_desc(unsigned int idx, uint64_t base, uint32_t limit, uint8_t type)
{
	gdt[idx] = (limit & 0xffff) | ((base & 0xffffff) << 16) | ((uint64_t)type << 40) |
		   ((uint64_t)((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	gdt[idx + 1] = base >> 32;
}

static void set_gate(unsigned int v, uint64_t a, unsigned int dpl)
{
	idt[2 * v] = (a & 0xffff) | ((uint64_t)SEL_KCODE << 16) |
		     ((uint64_t)(0x8e | (dpl << 5)) << 40) | ((a >> 16) << 48);
	idt[2 * v + 1] = a >> 32;
}

/* Every event of a probe comes here (through the runtime's stubs and trap_dispatch). */
static void fid_on_trap(struct trap_frame *f)
{
	bool user = (f->cs & 3) == 3;

	if (user && f->rip == (uint64_t)(uintptr_t)fid_user_done) {
		/* The trampoline's UD2: back to fid_run3 at CPL0. */
		f->rip = (uint64_t)(uintptr_t)fid_user_back;
		f->cs = SEL_KCODE;
		f->ss = SEL_KDATA;
		f->rsp = fid_kernel_rsp;
		f->rflags = 2;
		return;
	}
	if (fid_trap.count == 0) {
		fid_trap.vector = f->vector;
		fid_trap.error = f->error;
		fid_trap.rip = f->rip;
		fid_trap.cs = f->cs;
		fid_trap.rflags = f->rflags;
		fid_trap.rsp = f->rsp;
		fid_trap.ss = f->ss;
	}
	fid_trap.count++;
	if (fid_trap.count > 8) {
		printf("FID-RUNAWAY vector %lu rip 0x%lx cs 0x%lx\n", (unsigned long)f->vector,
		       (unsigned long)f->rip, (unsigned long)f->cs);
		guest_exit(EXIT_EXCEPTION);
	}
	f->rax = 0;
	/* NT would make the handler's own IRETQ fault (iret-nt case); RF/TF likewise off. */
	f->rflags &= ~(RFL_NT | RFL_TF | (1ull << 16));
	if (fid_resume) {
		f->rip = fid_resume;
		fid_resume = 0;
	} else {
		f->rip = (uint64_t)(uintptr_t)fid_probe_ret;
	}
}

static void clear_probe_state(void)
{
	memset((void *)&fid_trap, 0, sizeof(fid_trap));
	fid_trap.vector = NO_FAULT;
	memset((void *)fid_out, 0, sizeof(fid_out));
	fid_resume = 0;
	fid_ret = 0;
}

uint64_t fid_run0(const char *probe, uint64_t a0, uint64_t a1)
{
	uint64_t (*fn)(uint64_t, uint64_t) = (uint64_t(*)(uint64_t, uint64_t))(uintptr_t)probe;

	clear_probe_state();
	return fn(a0, a1);
}

uint64_t fid_run3(const char *probe, uint64_t a0, uint64_t a1, uint64_t rflags)
{
	uint64_t ursp = (uint64_t)(uintptr_t)(user_stack + sizeof(user_stack));
	uint64_t rdi = a0, rsi = a1, rdx = (uint64_t)(uintptr_t)probe;

	clear_probe_state();
	/* fid_on_trap returns here (fid_user_back, then RET) when the trampoline's UD2 runs. */
	__asm__ volatile("push %%rbp\n"
			 "push %%rbx\n"
			 "push %%r12\n"
			 "push %%r13\n"
			 "push %%r14\n"
			 "push %%r15\n"
			 "lea 1f(%%rip), %%rax\n"
			 "push %%rax\n"
			 "mov %%rsp, fid_kernel_rsp(%%rip)\n"
			 "push %[ss]\n"
			 "push %[ursp]\n"
			 "push %[flags]\n"
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
			 : "+D"(rdi), "+S"(rsi), "+d"(rdx)
			 : [ss] "i"(SEL_UDATA), [ursp] "r"(ursp), [flags] "r"(rflags),
			   [cs] "i"(SEL_UCODE), [rip] "r"((uint64_t)(uintptr_t)fid_user_tramp)
			 : "rax", "rcx", "r8", "r9", "r10", "r11", "memory", "cc");
	return fid_ret;
}

/* CPL3 reaches the first 2 MiB (code, data, stacks of this guest). */
static void allow_user_low_2m(void)
{
	extern uint64_t pml4[];
	uint64_t *pdpt = (uint64_t *)(uintptr_t)(pml4[0] & ~0xfffull);
	uint64_t *pd = (uint64_t *)(uintptr_t)(pdpt[0] & ~0xfffull);

	pml4[0] |= PTE_U;
	pdpt[0] |= PTE_U;
	pd[0] |= PTE_U;
	__asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" : : : "rax", "memory");
}

void fid_cpu_init(void)
{
	uint64_t t = (uint64_t)(uintptr_t)&tss, cg = (uint64_t)(uintptr_t)fid_cg_target;

	gdt[1] = 0x00af9a000000ffffull;	 /* 0x08 kernel code64 */
	gdt[2] = 0x00cf92000000ffffull;	 /* 0x10 kernel data */
	gdt[3] = 0x00cf9a000000ffffull;	 /* 0x18 code32 (the runtime's) */
	gdt[4] = 0x00aff8000000ffffull;	 /* 0x20 user code64, execute-only */
	gdt[5] = 0x00af9e000000ffffull;	 /* 0x28 kernel code64, conforming, readable */
	gdt[6] = 0x00cf72000000ffffull;	 /* 0x30 DPL3 data, not present */
	gdt[9] = 0x00cffa000000ffffull;	 /* 0x48 user code32 */
	gdt[10] = 0x00cff2000000ffffull; /* 0x50 user data */
	gdt[11] = 0x00affa000000ffffull; /* 0x58 user code64 */
	set_system_desc(SEL_TSS >> 3, t, sizeof(tss) - 1, 0x89);
	set_system_desc(SEL_LDT >> 3, (uint64_t)(uintptr_t)ldt, sizeof(ldt) - 1, 0x82);
	/* 0x80: 64-bit call gate, DPL3, to the kernel code segment (SDM Vol. 3A 5.8.3.1). */
	gdt[16] = (cg & 0xffff) | ((uint64_t)SEL_KCODE << 16) | (0xecull << 40) |
		  ((cg >> 16 & 0xffff) << 48);
	gdt[17] = cg >> 32;
	ldt[0] = 0x00cff2000000ffffull; /* LDT entry 0: DPL3 data */

	tss.rsp[0] = (uint64_t)(uintptr_t)(kernel_stack + sizeof(kernel_stack));
	tss.iomap = __builtin_offsetof(struct tss64, iobitmap);
	memset(tss.iobitmap, 0xff, sizeof(tss.iobitmap));
	tss.iobitmap[FID_PORT_ALLOWED / 8] &= (uint8_t)~(1u << (FID_PORT_ALLOWED % 8));

	for (unsigned int v = 0; v < 256; v++)
		set_gate(v, (uint64_t)(uintptr_t)isr_stubs + 16 * v, 0);
	/* DPL3 gates: INT3, INTO and INT 0x80 may be raised by CPL3 software (SDM Vol. 3A
	 * 6.12.1.1); vector 1 and 0x81 stay DPL0 for the cases that check the DPL rule. */
	set_gate(V_BP, (uint64_t)(uintptr_t)isr_stubs + 16 * V_BP, 3);
	set_gate(4, (uint64_t)(uintptr_t)isr_stubs + 16 * 4, 3);
	set_gate(0x80, (uint64_t)(uintptr_t)isr_stubs + 16 * 0x80, 3);
	for (unsigned int v = 0; v < 32; v++)
		exception_register(v, fid_on_trap);
	irq_register(0x80, fid_on_trap);
	irq_register(0x81, fid_on_trap);

	fid_gdtr = (struct fid_dtr){sizeof(gdt) - 1, (uint64_t)(uintptr_t)gdt};
	fid_idtr = (struct fid_dtr){sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};
	__asm__ volatile("lgdt %0" : : "m"(fid_gdtr));
	__asm__ volatile("lidt %0" : : "m"(fid_idtr));
	__asm__ volatile("ltr %w0" : : "r"(SEL_TSS));
	__asm__ volatile("lldt %w0" : : "r"(SEL_LDT));
	allow_user_low_2m();
}
