/* syscall.c: user mode and system calls, the transitions KVM-PVM does not virtualize.
 *
 * The guest builds a GDT with user segments, a TSS and its own IDT, programs EFER.SCE, STAR,
 * LSTAR and SFMASK, drops to CPL3 with IRETQ and makes system calls:
 * - SYSCALL: the kernel side records every register on entry and checks what SDM Vol. 2
 *   SYSCALL says: RCX = the return address, R11 = the user RFLAGS, RFLAGS = R11 & ~SFMASK,
 *   CS/SS from STAR[47:32] (CPL 0), RSP and every other register unchanged. SYSRETQ returns;
 *   user mode checks the result, its registers and the CS/SS selectors SYSRET loads.
 * - INT 0x80 through a DPL3 gate: the handler records the frame (CS, SS, RIP after the int).
 *   On KVM-PVM the CPU raises #UD instead (KVM-HOST.md); the guest then reports it as
 *   "int80-ud" and the host test decides with cmdline int80=required|any.
 * - The MSRs read back what was written (mvm virtualizes LSTAR and CSTAR on PVM), LSTAR also
 *   when written again after user mode ran.
 * - Hostile user mode (only where mvm's SYSCALL trap window is in PML4 slot 401, i.e. mvm on
 *   KVM-PVM; elsewhere SKIP): user code that (window) jumps into the trap window at two
 *   offsets that are no trap entry, (unbacked) jumps to a user page with no memory behind it,
 *   (forged-r11) jumps straight to the LSTAR trap with reserved bits, IOPL, VIF and VIP set and
 *   IF and DF clear in R11, (nosce) makes a SYSCALL with EFER.SCE clear, (cstar) jumps to the
 *   CSTAR trap from 64-bit code. The VM must go on. All but forged-r11 must raise #UD in the
 *   guest (executing the window's all-ones bytes does; SYSCALL does without SCE; a 64-bit
 *   SYSCALL never goes through CSTAR); forged-r11 must enter the kernel with an RFLAGS and an
 *   R11 that a SYSCALL produces from that user state (its real IF and DF; no IOPL, VIF, VIP or
 *   reserved bits). The #UD/#GP/#PF handlers record what happened.
 * cmdline: user=0 runs only the kernel-mode part (MSR round trips, SYSRET-free checks), for a
 * host run with the trap mechanism forced off. int80=required fails on #UD. hostile=MODE runs
 * only that hostile mode (window, unbacked, forged-r11, nosce, cstar), hostile=none none.
 * Prints SYSCALLS <n>, the mean cost of an empty SYSCALL+SYSRET round trip in TSC ticks as user
 * mode measures it (SYSCALL-ROUNDTRIP-TSC), and finishes with RESULT PASS/FAIL. */
#include "guest.h"

#define MSR_EFER	 0xc0000080
#define MSR_STAR	 0xc0000081
#define MSR_LSTAR	 0xc0000082
#define MSR_CSTAR	 0xc0000083
#define MSR_SFMASK	 0xc0000084
#define EFER_SCE	 1

#define KERNEL_CS	 0x08
#define KERNEL_SS	 0x10
#define USER_BASE	 0x20 /* STAR[63:48]: SYSRET loads SS = base + 8, CS = base + 16 */
#define USER_SS		 (0x28 | 3)
#define USER_CS		 (0x30 | 3)
#define TSS_SEL		 0x38

/* TF, DF, IF, AC and NT: what Linux masks on SYSCALL. */
#define SFMASK_VALUE	 0x47700ull
/* The user RFLAGS for the calls: IF, DF, ZF, PF and reserved bit 1. */
#define USER_RFLAGS	 0x646ull
#define RFLAGS_IF	 (1ull << 9)
#define RFLAGS_DF	 (1ull << 10)
#define RFLAGS_RF	 (1ull << 16)

#define PTE_P		 1ull
#define PTE_U		 4ull

/* mvm's SYSCALL trap window on KVM-PVM (README "System calls on KVM-PVM"): PML4 slot 401, the
 * LSTAR trap at its start and the CSTAR trap at +0x100 (vmm/kvm/include/kvm/syscall_trap.h). */
#define TRAP_PML4_SLOT	 401
#define TRAP_WINDOW	 0xffffc88000000000 /* no suffixes: also used in the assembly */
#define TRAP_LSTAR	 TRAP_WINDOW
#define TRAP_CSTAR	 (TRAP_WINDOW + 0x100)
#define TRAP_OTHER	 (TRAP_WINDOW + 0x40)
#define TRAP_OTHER2	 (TRAP_WINDOW + 0x1ff001)
/* A 2 MiB page of the MMIO hole with no device (core/layout.h), mapped for user mode. */
#define UNBACKED_GPA	 0xc0200000

/* R11 forged by user code: reserved bits 3, 5, 15 and 22, IOPL 3, VIF and VIP with bit 1, IF
 * and DF clear. A SYSCALL from this guest's user mode (IOPL 0, IF and DF set) produces none
 * of that. */
#define FORGED_R11	 0x0058b02a
#define RFLAGS_IOPL	 0x3000ull
#define RFLAGS_VM	 (1ull << 17)
#define RFLAGS_VIF	 (1ull << 19)
#define RFLAGS_VIP	 (1ull << 20)
#define RFLAGS_RESERVED	 (~0x3f7fd7ull & ~2ull)
/* Bits neither kernel RFLAGS nor R11 may hold after a SYSCALL from IOPL-0 user mode. */
#define RFLAGS_IMPOSSIBLE (RFLAGS_RESERVED | RFLAGS_IOPL | RFLAGS_VM | RFLAGS_VIF | RFLAGS_VIP)

#define ROUNDTRIPS	 1000
#define STR_(x)		 #x
#define STR(x)		 STR_(x)
#define ROUNDTRIPS_STR	 STR(ROUNDTRIPS)

/* Registers as the entry stub saved them, in this order. */
struct regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rflags, cs, ss;
};

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
static uint8_t user_stack[8192] __attribute__((aligned(16)));

/* Shared with the assembly below. */
struct regs entry_regs;		/* saved by syscall_entry */
struct regs int80_regs;		/* saved by int80_entry (frame values in rip/cs/...) */
uint64_t int80_frame[5];	/* rip, cs, rflags, rsp, ss as the CPU pushed them */
volatile uint64_t ud_rip;	/* set by fault_c for the int 0x80 #UD */
volatile uint64_t resume_rip;	/* user code sets it: where a fault resumes user mode */
/* The last #UD/#GP/#PF fault_c saw (other than the int 0x80 #UD), and the RIPs of the first
 * two. */
volatile struct {
	uint64_t count, vector, error, rip, cs, cr2, rips[2], vectors[2];
} fault;
/* What syscall_entry saw for call 3 (forged-r11) and cstar_entry was entered how often. */
volatile uint64_t forged_kflags, forged_r11, forged_rcx;
volatile int forged_calls, cstar_calls;
uint64_t kernel_rsp_save;	/* guest_main's stack while in user mode */
volatile int calls;
uint64_t user_results[10];

/* Entered with SYSCALL from user mode. Saves everything, answers rax = rdi + rsi (call 1) or
 * leaves user mode for good (call 60). */
__asm__(".text\n"
	".globl syscall_entry\n"
	"syscall_entry:\n"
	"	cmp $2, %rax\n"		/* call 2: return at once (the round-trip benchmark) */
	"	jne 0f\n"
	"	sysretq\n"
	"0:	cmp $3, %rax\n"		/* call 3: record RFLAGS, R11, RCX (forged-r11) */
	"	jne 0f\n"
	"	pushfq\n"
	"	popq forged_kflags\n"
	"	mov %r11, forged_r11\n"
	"	mov %rcx, forged_rcx\n"
	"	incl forged_calls\n"
	"	mov $0x202, %r11\n"
	"	sysretq\n"
	"0:	mov %rax, entry_regs+0\n"
	"	mov %rbx, entry_regs+8\n"
	"	mov %rcx, entry_regs+16\n"
	"	mov %rdx, entry_regs+24\n"
	"	mov %rsi, entry_regs+32\n"
	"	mov %rdi, entry_regs+40\n"
	"	mov %rbp, entry_regs+48\n"
	"	mov %rsp, entry_regs+56\n"
	"	mov %r8, entry_regs+64\n"
	"	mov %r9, entry_regs+72\n"
	"	mov %r10, entry_regs+80\n"
	"	mov %r11, entry_regs+88\n"
	"	mov %r12, entry_regs+96\n"
	"	mov %r13, entry_regs+104\n"
	"	mov %r14, entry_regs+112\n"
	"	mov %r15, entry_regs+120\n"
	"	pushfq\n"
	"	popq entry_regs+128\n"
	"	xor %eax, %eax\n"
	"	mov %cs, %ax\n"
	"	mov %rax, entry_regs+136\n"
	"	mov %ss, %ax\n"
	"	mov %rax, entry_regs+144\n"
	"	incl calls\n"
	"	mov entry_regs+0, %rax\n"
	"	cmp $60, %rax\n"
	"	je 1f\n"
	"	mov %rdi, %rax\n"
	"	add %rsi, %rax\n"
	"	sysretq\n"
	/* exit: back to guest_main's stack at CPL0 */
	"1:\n"
	".globl leave_user\n"
	"leave_user:\n"
	"	mov kernel_rsp_save, %rsp\n"
	"	mov $0x10, %ax\n"
	"	mov %ax, %ss\n"
	"	ret\n"

	/* CSTAR: no 64-bit SYSCALL comes here. Count it and leave user mode. */
	".globl cstar_entry\n"
	"cstar_entry:\n"
	"	incl cstar_calls\n"
	"	jmp leave_user\n"

	/* INT 0x80 through a DPL3 gate: record the frame, return with IRETQ. */
	".globl int80_entry\n"
	"int80_entry:\n"
	"	push %rax\n"
	"	mov 8(%rsp), %rax\n"
	"	mov %rax, int80_frame+0\n"
	"	mov 16(%rsp), %rax\n"
	"	mov %rax, int80_frame+8\n"
	"	mov 24(%rsp), %rax\n"
	"	mov %rax, int80_frame+16\n"
	"	mov 32(%rsp), %rax\n"
	"	mov %rax, int80_frame+24\n"
	"	mov 40(%rsp), %rax\n"
	"	mov %rax, int80_frame+32\n"
	"	pop %rax\n"
	"	add $1000, %rax\n"
	"	iretq\n"

	/* #UD (where int 0x80 ends up on KVM-PVM), #GP, #PF: fault_c decides, see there. */
	".globl ud_entry\n"
	"ud_entry:\n"
	"	pushq $0\n"
	"	pushq $6\n"
	"	jmp fault_common\n"
	".globl gp_entry\n"
	"gp_entry:\n"
	"	pushq $13\n"
	"	jmp fault_common\n"
	".globl pf_entry\n"
	"pf_entry:\n"
	"	pushq $14\n"
	"	jmp fault_common\n"
	"fault_common:\n"
	"	push %rax\n"
	"	push %rcx\n"
	"	push %rdx\n"
	"	push %rsi\n"
	"	push %rdi\n"
	"	push %r8\n"
	"	push %r9\n"
	"	push %r10\n"
	"	push %r11\n"
	"	mov %rsp, %rdi\n"
	"	cld\n"
	"	call fault_c\n"
	"	pop %r11\n"
	"	pop %r10\n"
	"	pop %r9\n"
	"	pop %r8\n"
	"	pop %rdi\n"
	"	pop %rsi\n"
	"	pop %rdx\n"
	"	pop %rcx\n"
	"	pop %rax\n"
	"	add $16, %rsp\n"
	"	iretq\n"

	/* User mode: two system calls with known registers, an int 0x80, then exit. */
	".globl user_code\n"
	"user_code:\n"
	"	mov $1, %eax\n"
	"	mov $0x1111, %rdi\n"
	"	mov $0x2222, %rsi\n"
	"	mov $0x3333, %rdx\n"
	"	mov $0x4444, %r8\n"
	"	mov $0x5555, %r9\n"
	"	mov $0x6666, %r10\n"
	"	mov $0x7777, %rbx\n"
	"	mov $0x8888, %rbp\n"
	"	mov $0x9999, %r12\n"
	"	mov $0xaaaa, %r13\n"
	"	mov $0xbbbb, %r14\n"
	"	mov $0xcccc, %r15\n"
	"	syscall\n"
	".globl user_after_syscall\n"
	"user_after_syscall:\n"
	"	mov %rax, user_results+0\n"	/* 0x3333 expected */
	"	pushfq\n"
	"	popq user_results+8\n"
	"	xor %eax, %eax\n"
	"	mov %ss, %ax\n"
	"	mov %rax, user_results+16\n"
	"	mov %rbx, user_results+24\n"	/* preserved: 0x7777 */
	"	mov %r15, user_results+32\n"	/* preserved: 0xcccc */
	"	mov $1, %eax\n"
	"	mov $40, %rdi\n"
	"	mov $2, %rsi\n"
	"	syscall\n"
	"	mov %rax, user_results+40\n"	/* 42 */
	"	mov $7, %eax\n"
	"	int $0x80\n"
	".globl user_after_int80\n"
	"user_after_int80:\n"
	"	mov %rax, user_results+48\n"	/* 1007 if delivered */
	/* Round trips of the empty call 2, timed with the TSC in user mode. */
	"	rdtsc\n"
	"	shl $32, %rdx\n"
	"	or %rdx, %rax\n"
	"	mov %rax, user_results+56\n"
	"	mov $" ROUNDTRIPS_STR ", %r8d\n"
	"3:	mov $2, %eax\n"
	"	syscall\n"
	"	dec %r8d\n"
	"	jnz 3b\n"
	"	rdtsc\n"
	"	shl $32, %rdx\n"
	"	or %rdx, %rax\n"
	"	mov %rax, user_results+64\n"
	"	mov $60, %eax\n"
	"	syscall\n"
	".globl user_after_exit\n"
	"user_after_exit:\n"
	"2:	jmp 2b\n"

	/* Hostile user programs: each sets resume_rip, does one thing, then exits (call 60). */
	".globl user_window\n"
	"user_window:\n"
	"	lea 1f(%rip), %rax\n"
	"	mov %rax, resume_rip\n"
	"	movabs $" STR(TRAP_OTHER) ", %rax\n"
	"	jmp *%rax\n"
	"1:	lea 1f(%rip), %rax\n"
	"	mov %rax, resume_rip\n"
	"	movabs $" STR(TRAP_OTHER2) ", %rax\n"
	"	jmp *%rax\n"
	"1:	mov $60, %eax\n"
	"	syscall\n"
	"	jmp 1b\n"
	".globl user_unbacked\n"
	"user_unbacked:\n"
	"	lea 1f(%rip), %rax\n"
	"	mov %rax, resume_rip\n"
	"	mov $" STR(UNBACKED_GPA) ", %eax\n"
	"	jmp *%rax\n"
	"1:	mov $60, %eax\n"
	"	syscall\n"
	"	jmp 1b\n"
	".globl user_forged_r11\n"
	"user_forged_r11:\n"
	"	lea 1f(%rip), %rcx\n"
	"	mov %rcx, resume_rip\n"
	"	mov $" STR(FORGED_R11) ", %r11\n"
	"	mov $3, %eax\n"
	"	movabs $" STR(TRAP_LSTAR) ", %rdx\n"
	"	jmp *%rdx\n"
	".globl user_forged_r11_ret\n"
	"user_forged_r11_ret:\n"
	"1:	mov $60, %eax\n"
	"	syscall\n"
	"	jmp 1b\n"
	/* SYSCALL with EFER.SCE clear: #UD, not the kernel. The second fault (UD2, nowhere to
	 * resume) leaves user mode: without SCE there is no system call to exit with. */
	".globl user_nosce\n"
	"user_nosce:\n"
	"	lea 1f(%rip), %rax\n"
	"	mov %rax, resume_rip\n"
	"	mov $3, %eax\n"
	".globl user_nosce_syscall\n"
	"user_nosce_syscall:\n"
	"	syscall\n"
	"1:	ud2\n"
	".globl user_cstar\n"
	"user_cstar:\n"
	"	lea 1f(%rip), %rax\n"
	"	mov %rax, resume_rip\n"
	"	movabs $" STR(TRAP_CSTAR) ", %rax\n"
	"	jmp *%rax\n"
	"1:	mov $60, %eax\n"
	"	syscall\n"
	"	jmp 1b\n");

extern char syscall_entry[], int80_entry[], ud_entry[], gp_entry[], pf_entry[], user_code[],
	user_after_syscall[], user_after_int80[], user_after_exit[], leave_user[];
/* The hostile user programs. */
extern char user_window[], user_unbacked[];
extern char user_forged_r11[], user_forged_r11_ret[];
extern char user_nosce[], user_nosce_syscall[], user_cstar[], cstar_entry[];

void fault_c(uint64_t *f);

/* Called by fault_common with (f) pointing at r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax, the
 * vector, the error code, then the CPU's frame (rip, cs, rflags, rsp, ss). A #UD at the
 * int 0x80 is KVM-PVM's (see the top): skip the 2-byte instruction. Anything else is recorded; a
 * user-mode fault resumes at resume_rip, any other leaves user mode for good (back to
 * guest_main), so a test that goes wrong ends in FAIL lines, not a triple fault. */
void fault_c(uint64_t *f)
{
	uint64_t vector = f[9], rip = f[11], cs = f[12];

	if (vector == 6 && rip == (uint64_t)(uintptr_t)user_after_int80 - 2) {
		ud_rip = rip;
		f[11] = rip + 2;
		return;
	}
	if (fault.count < 2) {
		fault.rips[fault.count] = rip;
		fault.vectors[fault.count] = vector;
	}
	fault.count++;
	fault.vector = vector;
	fault.error = f[10];
	fault.rip = rip;
	fault.cs = cs;
	if (vector == 14) {
		uint64_t cr2;

		__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
		fault.cr2 = cr2;
	}
	if ((cs & 3) == 3 && resume_rip) {
		f[11] = resume_rip;
		resume_rip = 0;
		return;
	}
	f[11] = (uint64_t)(uintptr_t)leave_user;
	f[12] = KERNEL_CS;
	f[13] = 2;
	f[14] = kernel_rsp_save;
	f[15] = KERNEL_SS;
}

static void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static void set_gate(unsigned int vector, void *handler, unsigned int dpl)
{
	uint64_t a = (uint64_t)(uintptr_t)handler;

	idt[2 * vector] = (a & 0xffff) | ((uint64_t)KERNEL_CS << 16) |
			  ((uint64_t)(0x8e | (dpl << 5)) << 40) | ((a >> 16) << 48);
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

	gdt[0] = 0;
	gdt[1] = 0x00af9a000000ffffull; /* 0x08 kernel code64 */
	gdt[2] = 0x00cf92000000ffffull; /* 0x10 kernel data */
	gdt[3] = 0x00cf9a000000ffffull; /* 0x18 code32 (the runtime's) */
	gdt[4] = 0x00cffa000000ffffull; /* 0x20 user code32 */
	gdt[5] = 0x00cff2000000ffffull; /* 0x28 user data */
	gdt[6] = 0x00affa000000ffffull; /* 0x30 user code64 */
	/* 0x38: available 64-bit TSS, 16 bytes. */
	gdt[7] = (sizeof(tss) - 1) | ((t & 0xffffff) << 16) | (0x89ull << 40) |
		 (((t >> 24) & 0xff) << 56);
	gdt[8] = t >> 32;
	tss.rsp[0] = (uint64_t)(uintptr_t)(kernel_stack + sizeof(kernel_stack));
	tss.iomap = sizeof(tss);
	set_gate(6, ud_entry, 0);
	set_gate(13, gp_entry, 0);
	set_gate(14, pf_entry, 0);
	set_gate(0x80, int80_entry, 3);
	__asm__ volatile("lgdt %0" : : "m"(gdtr));
	__asm__ volatile("lidt %0" : : "m"(idtr));
	__asm__ volatile("ltr %w0" : : "r"(TSS_SEL));
}

/* User code and stacks live in the first 2 MiB; let CPL3 reach that page. */
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

static bool msr_round_trip(const char *name, uint32_t msr, uint64_t value)
{
	wrmsr(msr, value);
	return reportf(rdmsr(msr) == value, "msr-%s-reads-back", name);
}

static void enter_user_mode(void *rip)
{
	uint64_t ursp = (uint64_t)(uintptr_t)(user_stack + sizeof(user_stack));

	/* Returns here when user mode makes call 60: syscall_entry restores this stack. */
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
			 :
			 : [ss] "i"(USER_SS), [ursp] "r"(ursp), [flags] "i"(USER_RFLAGS),
			   [cs] "i"(USER_CS), [rip] "r"((uint64_t)(uintptr_t)rip)
			 : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory",
			   "cc");
}

/* Whether mvm's trap window is there: PML4 slot 401 filled (mvm on KVM-PVM fills it on the
 * first LSTAR write). Under QEMU, mvm's engine (--accel dbt) or with the trap off it is empty. */
static bool trap_window_present(void)
{
	extern uint64_t pml4[];

	return (pml4[TRAP_PML4_SLOT] & (PTE_P | PTE_U)) == (PTE_P | PTE_U);
}

/* Maps the 2 MiB page at UNBACKED_GPA (identity-mapped, kernel-only) for user mode. */
static void allow_user_unbacked(void)
{
	extern uint64_t pml4[];
	uint64_t *pdpt = (uint64_t *)(uintptr_t)(pml4[0] & ~0xfffull);
	uint64_t *pd = (uint64_t *)(uintptr_t)(pdpt[UNBACKED_GPA >> 30] & ~0xfffull);

	pdpt[UNBACKED_GPA >> 30] |= PTE_U;
	pd[(UNBACKED_GPA >> 21) & 511] |= PTE_U;
	__asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" : : : "rax", "memory");
}

static bool want(const char *modes, const char *mode)
{
	return !strcmp(modes, "all") || !strcmp(modes, mode);
}

/* Runs one hostile user program; returns with (fault) and the counters as it left them. */
static void run_hostile(void *prog)
{
	memset((void *)&fault, 0, sizeof(fault));
	resume_rip = 0;
	forged_calls = cstar_calls = 0;
	enter_user_mode(prog);
}

static void print_fault(const char *mode)
{
	if (fault.count)
		printf("HOSTILE %s: vector %lu at rip 0x%lx cs 0x%lx error 0x%lx cr2 0x%lx\n", mode,
		       (unsigned long)fault.vector, (unsigned long)fault.rip,
		       (unsigned long)fault.cs, (unsigned long)fault.error,
		       (unsigned long)fault.cr2);
	else
		printf("HOSTILE %s: no fault\n", mode);
}

/* A user-mode #UD at (rip), and nothing else. */
static bool user_ud_at(uint64_t rip)
{
	return fault.count == 1 && fault.vector == 6 && fault.rip == rip && fault.cs == USER_CS;
}

/* Whether mvm's own engine runs us: its CPU model's hypervisor leaf says "mvmmvmmvmmvm". */
static bool on_mvm_engine(void)
{
	uint32_t a, b, c, d;

	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x40000000), "c"(0));
	return b == 0x6d6d766d && d == 0x766d6d76 && c == 0x6d766d6d; /* "mvmm" "vmmv" "mmvm" */
}

static void hostile_user(const char *modes)
{
	if (!trap_window_present()) {
		/* The engine has no trap window, but a user fetch from memory with nothing
		 * behind it must not stop it either (QEMU TCG aborts on that one). */
		if (on_mvm_engine() && want(modes, "unbacked")) {
			allow_user_unbacked();
			run_hostile(user_unbacked);
			print_fault("unbacked");
			report("hostile-unbacked-fetch-ud", user_ud_at(UNBACKED_GPA));
		}
		report_skip("hostile-user", "no SYSCALL trap window in PML4 slot 401: not mvm on "
					    "KVM-PVM");
		return;
	}
	if (want(modes, "window")) {
		run_hostile(user_window);
		print_fault("window");
		report("hostile-window-offset-ud", fault.count == 2 && fault.vector == 6 &&
							   fault.rips[0] == TRAP_OTHER &&
							   fault.rips[1] == TRAP_OTHER2 &&
							   fault.cs == USER_CS);
	}
	if (want(modes, "unbacked")) {
		allow_user_unbacked();
		run_hostile(user_unbacked);
		print_fault("unbacked");
		report("hostile-unbacked-fetch-ud", user_ud_at(UNBACKED_GPA));
	}
	if (want(modes, "forged-r11")) {
		run_hostile(user_forged_r11);
		print_fault("forged-r11");
		printf("HOSTILE forged-r11: kernel rflags 0x%lx r11 0x%lx rcx 0x%lx (%d calls)\n",
		       (unsigned long)forged_kflags, (unsigned long)forged_r11,
		       (unsigned long)forged_rcx, forged_calls);
		/* Where SYSCALL is run by a CPU model that executes the instruction itself (mvm
		 * --accel hybrid hands the trap exit to its engine), a jump to the trap is no
		 * SYSCALL: the window's bytes run, #UD, and the kernel is never entered. That is
		 * safe as well; otherwise the kernel must see what a SYSCALL produces. */
		if (!forged_calls && user_ud_at(TRAP_LSTAR)) {
			report("hostile-forged-r11-ud", true);
			goto forged_done;
		}
		report("hostile-forged-r11-entered", forged_calls == 1 && !fault.count);
		report("hostile-forged-r11-kernel-rflags",
		       forged_calls == 1 && (forged_kflags & 2) &&
			       !(forged_kflags & (RFLAGS_IMPOSSIBLE | RFLAGS_RF | SFMASK_VALUE)));
		report("hostile-forged-r11-kernel-r11",
		       forged_calls == 1 && (forged_r11 & 2) && !(forged_r11 & RFLAGS_IMPOSSIBLE));
		/* The user's own IF and DF (set), not the forged ones (clear). */
		report("hostile-forged-r11-user-if-df",
		       forged_calls == 1 && (forged_r11 & (RFLAGS_IF | RFLAGS_DF)) ==
						    (USER_RFLAGS & (RFLAGS_IF | RFLAGS_DF)));
		report("hostile-forged-r11-rcx",
		       forged_rcx == (uint64_t)(uintptr_t)user_forged_r11_ret);
	}
forged_done:
	if (want(modes, "nosce")) {
		wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~EFER_SCE);
		run_hostile(user_nosce);
		wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
		print_fault("nosce");
		printf("HOSTILE nosce: first fault vector %lu at rip 0x%lx\n",
		       (unsigned long)fault.vectors[0], (unsigned long)fault.rips[0]);
		/* #UD at the SYSCALL (a CPU that checks SCE itself) or at the trap it went to. */
		report("hostile-nosce-ud",
		       fault.count == 2 && fault.vectors[0] == 6 &&
			       (fault.rips[0] == (uint64_t)(uintptr_t)user_nosce_syscall ||
				fault.rips[0] == TRAP_LSTAR));
		report("hostile-nosce-not-entered", forged_calls == 0);
	}
	if (want(modes, "cstar")) {
		/* A CSTAR the kernel could run: entering it from 64-bit code is the bug. */
		wrmsr(MSR_CSTAR, (uint64_t)(uintptr_t)cstar_entry);
		run_hostile(user_cstar);
		print_fault("cstar");
		report("hostile-cstar-not-entered", cstar_calls == 0);
		report("hostile-cstar-64bit-ud", user_ud_at(TRAP_CSTAR));
	}
}

void guest_main(const struct hvm_start_info *si)
{
	bool user = cmdline_uint("user", 1) != 0;
	char int80[16] = "any", hostile[16] = "all";
	const struct regs *e = &entry_regs;

	cmdline_get("int80", int80, sizeof(int80));
	cmdline_get("hostile", hostile, sizeof(hostile));
	setup_descriptors();
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	msr_round_trip("star", MSR_STAR,
		       ((uint64_t)USER_BASE << 48) | ((uint64_t)KERNEL_CS << 32));
	msr_round_trip("lstar", MSR_LSTAR, (uint64_t)(uintptr_t)syscall_entry);
	msr_round_trip("cstar", MSR_CSTAR, 0xffffffff81000000ull);
	msr_round_trip("sfmask", MSR_SFMASK, SFMASK_VALUE);
	report("efer-sce", rdmsr(MSR_EFER) & EFER_SCE);
	if (!user) {
		report_skip("user-mode", "user=0 on the command line");
		finish();
	}
	allow_user_low_2m();
	enter_user_mode(user_code);
	/* Linux writes LSTAR again on every CPU and on resume; by now the CPU has walked the
	 * window's PML4 entry (accessed bit set). The hostile modes below exit through it. */
	msr_round_trip("lstar-again", MSR_LSTAR, (uint64_t)(uintptr_t)syscall_entry);

	printf("SYSCALLS %d\n", calls);
	report("syscall-count", calls == 3);
	/* The first call, as the kernel saw it. entry_regs now holds the last call (60), so
	 * the checks below use values that call kept: the run is deterministic. */
	report("syscall-rcx-is-return-rip", e->rcx == (uint64_t)(uintptr_t)user_after_exit);
	/* IF and DF as user mode set them; the arithmetic flags changed along the way. */
	report("syscall-r11-is-user-rflags", (e->r11 & 0x602) == (USER_RFLAGS & 0x602));
	report("syscall-rflags-masked", (e->rflags & SFMASK_VALUE) == 0 &&
					    (e->rflags & 2) && !(e->rflags & RFLAGS_RF));
	report("syscall-cs-from-star", e->cs == KERNEL_CS);
	report("syscall-ss-from-star", e->ss == KERNEL_SS);
	report("syscall-rsp-unchanged",
	       e->rsp == (uint64_t)(uintptr_t)(user_stack + sizeof(user_stack)));
	report("syscall-regs-preserved", e->rbx == 0x7777 && e->rbp == 0x8888 &&
						 e->r12 == 0x9999 && e->r13 == 0xaaaa &&
						 e->r14 == 0xbbbb && e->r15 == 0xcccc);
	report("sysret-result", user_results[0] == 0x3333 && user_results[5] == 42);
	report("sysret-rflags-restored", (user_results[1] & 0xcd5) == (USER_RFLAGS & 0xcd5));
	report("sysret-ss", user_results[2] == USER_SS);
	report("sysret-regs-preserved", user_results[3] == 0x7777 && user_results[4] == 0xcccc);

	printf("SYSCALL-ROUNDTRIP-TSC %lu (TSC ticks per SYSCALL+SYSRET, mean of %d)\n",
	       (unsigned long)((user_results[8] - user_results[7]) / ROUNDTRIPS), ROUNDTRIPS);
	if (int80_frame[0]) {
		report("int80-delivered", true);
		report("int80-frame-rip", int80_frame[0] == (uint64_t)(uintptr_t)user_after_int80);
		report("int80-frame-cs-ss", int80_frame[1] == USER_CS && int80_frame[4] == USER_SS);
		report("int80-result", user_results[6] == 1007);
	} else if (ud_rip) {
		printf("INT80 raised #UD at 0x%lx\n", (unsigned long)ud_rip);
		report("int80-ud", strcmp(int80, "required") != 0);
	} else {
		report("int80-seen", false);
	}
	if (strcmp(hostile, "none"))
		hostile_user(hostile);
	finish();
}
