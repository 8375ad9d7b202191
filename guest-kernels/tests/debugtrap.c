/* debugtrap.c: single-step, the interrupt shadow and hardware breakpoints around instructions
 * the VMM completes.
 *
 * On KVM-PVM LSL, POPCNT and x87 loads and stores at CPL0 come back to mvm as emulation
 * failures (KVM-HOST.md), so mvm's instruction core runs them; elsewhere the CPU or the engine
 * does (QEMU's -cpu max has POPCNT). Either way the SDM's rules hold (Vol. 3A 17.3.1, 6.8.3):
 * - single-step: POPF sets TF; the #DB trap comes after the instruction that follows (lsl
 *   here), with DR6.BS set and the frame's RIP at the instruction after lsl;
 * - the STI shadow covers one instruction only: "cli; self-IPI (pending); sti; lsl; nop"
 *   takes the interrupt right after lsl (frame RIP at the nop). A shadow left in force one
 *   instruction longer delays it past the nop (and with a HLT there, halts with the interrupt
 *   pending); an engine that looks for interrupts only between blocks of instructions never
 *   takes it before the CLI that follows;
 * - data breakpoints (17.3.1.2): DR0 armed for reads and writes of 8 bytes on a variable,
 *   POPCNT reading it raises one #DB trap after it (frame RIP at the next instruction) with
 *   DR6.B0 set and BS clear; armed for writes only, the same read raises none; DR1 armed for
 *   4-byte writes, FISTP storing there raises one with DR6.B1;
 * - instruction breakpoints (17.3.1.1): DR2 on an instruction is a #DB fault before it (frame
 *   RIP at it, DR6.B2); the handler returns with RF set, the instruction then runs once, and
 *   the next time round the breakpoint fires again (RF was cleared when it completed).
 * Prints RESULT PASS/FAIL. */
#include "guest.h"

#define RFLAGS_TF  (1ull << 8)
#define RFLAGS_RF  (1ull << 16)
#define DR6_BS	   (1ull << 14)
#define DR6_B(i)   (1ull << (i))
#define CR0_MP	   (1ull << 1)
#define CR0_EM	   (1ull << 2)
#define CR0_TS	   (1ull << 3)
/* DR7 (SDM Vol. 3A 17.2.4): local enable, R/W (01 writes, 11 reads or writes, 00 execution)
 * and LEN (00 one byte, 10 eight, 11 four) of breakpoint (i). */
#define DR7_L(i)	 (1ull << (2 * (i)))
#define DR7_RW(i, rw)	 ((uint64_t)(rw) << (16 + 4 * (i)))
#define DR7_LEN(i, len)	 ((uint64_t)(len) << (18 + 4 * (i)))
#define DR_RW_EXEC	 0
#define DR_RW_WRITE	 1
#define DR_RW_ANY	 3
#define DR_LEN1		 0
#define DR_LEN8		 2
#define DR_LEN4		 3
#define DR6_CLEAR	 0xffff0ff0ull
#define VEC_SELF   0x50
#define KERNEL_DS  0x10	/* the runtime's flat data segment: limit 4 GiB - 1 */

static volatile unsigned int db_count;
static volatile uint64_t db_rip, db_dr6;
static volatile unsigned int self_count;
static volatile uint64_t self_rip;

extern char after_lsl[], after_shadow[];

static void on_db(struct trap_frame *f)
{
	uint64_t dr6;

	__asm__ volatile("mov %%dr6, %0" : "=r"(dr6));
	if (!db_count++) {
		db_rip = f->rip;
		db_dr6 = dr6;
	}
	__asm__ volatile("mov %0, %%dr6" : : "r"(DR6_CLEAR));
	f->rflags &= ~RFLAGS_TF;
	/* An instruction breakpoint is a fault: return with RF set, or it fires again at once
	 * (17.3.1.1). */
	if (dr6 & DR6_B(2))
		f->rflags |= RFLAGS_RF;
}

static void db_reset(void)
{
	db_count = 0;
	db_rip = db_dr6 = 0;
}

static void on_self(struct trap_frame *f)
{
	if (!self_count++)
		self_rip = f->rip;
}

static void single_step(void)
{
	uint64_t in = KERNEL_DS, out = 0;

	exception_register(1, on_db);
	__asm__ volatile("mov %%dr6, %%rax\n"
			 "pushfq\n"
			 "orq $0x100, (%%rsp)\n"
			 "popfq\n"			/* TF on: the trap follows the next one */
			 "lsl %1, %0\n"
			 ".globl after_lsl\n"
			 "after_lsl:\n"
			 "nop\n"
			 "nop\n"
			 : "=r"(out)
			 : "r"(in)
			 : "rax", "cc", "memory");
	printf("DB count %u rip 0x%lx (after lsl 0x%lx) dr6 0x%lx lsl 0x%lx\n", db_count,
	       (unsigned long)db_rip, (unsigned long)(uintptr_t)after_lsl,
	       (unsigned long)db_dr6, (unsigned long)out);
	report("lsl-result", out == 0xffffffff);
	report("single-step-trap-once", db_count == 1);
	report("single-step-after-lsl", db_rip == (uint64_t)(uintptr_t)after_lsl);
	report("single-step-dr6-bs", (db_dr6 & DR6_BS) != 0);
}

static void sti_shadow(void)
{
	uint64_t in = KERNEL_DS, out = 0;

	lapic_init();
	irq_register(VEC_SELF, on_self);
	irq_disable();
	/* Self-IPI, fixed delivery: pending in the IRR while IF is clear. */
	lapic_write(LAPIC_ICR_LOW, (1u << 18) | VEC_SELF);
	__asm__ volatile("sti\n"
			 "lsl %1, %0\n"		/* in the STI shadow */
			 ".globl after_shadow\n"
			 "after_shadow:\n"
			 "nop\n"
			 "nop\n"
			 "nop\n"
			 : "=r"(out)
			 : "r"(in)
			 : "cc", "memory");
	irq_disable();
	printf("SELF count %u rip 0x%lx (after lsl 0x%lx)\n", self_count,
	       (unsigned long)self_rip, (unsigned long)(uintptr_t)after_shadow);
	report("shadow-lsl-result", out == 0xffffffff);
	report("shadow-interrupt-taken", self_count == 1);
	report("shadow-ends-after-one-instruction",
	       self_count == 1 && self_rip == (uint64_t)(uintptr_t)after_shadow);
}

/* The variables the data breakpoints watch, alone on their cache line. */
static volatile uint64_t watched[2] __attribute__((aligned(64)));
static volatile int32_t fpu_src = 1234;

extern char after_popcnt[], after_popcnt_wo[], after_fistp[], code_bp[];

static void set_dr7(uint64_t v)
{
	__asm__ volatile("mov %0, %%dr7" : : "r"(v) : "memory");
}

static bool has_popcnt(void)
{
	uint32_t a = 1, b, c = 0, d;

	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	return (c >> 23) & 1;
}

/* POPCNT of the watched quadword, DR0 armed with (dr7). Returns the count. */
static uint64_t popcnt_watched(void)
{
	uint64_t out;

	__asm__ volatile("popcnt (%1), %0\n"
			 ".globl after_popcnt\n"
			 "after_popcnt:\n"
			 "nop\n"
			 : "=r"(out)
			 : "r"(&watched[0])
			 : "cc", "memory");
	return out;
}

static void data_read(void)
{
	uint64_t out;

	if (!has_popcnt()) {
		report_skip("data-read-breakpoint", "no CPUID.POPCNT");
		return;
	}
	exception_register(1, on_db);
	watched[0] = 0xf0f0;
	db_reset();
	__asm__ volatile("mov %0, %%dr0" : : "r"(&watched[0]));
	set_dr7(DR7_L(0) | DR7_RW(0, DR_RW_ANY) | DR7_LEN(0, DR_LEN8));
	out = popcnt_watched();
	set_dr7(0);
	printf("DATA-READ DB count %u rip 0x%lx (after popcnt 0x%lx) dr6 0x%lx popcnt %lu\n",
	       db_count, (unsigned long)db_rip, (unsigned long)(uintptr_t)after_popcnt,
	       (unsigned long)db_dr6, (unsigned long)out);
	report("data-read-result", out == 8);
	report("data-read-breakpoint-once", db_count == 1);
	report("data-read-breakpoint-trap-after", db_rip == (uint64_t)(uintptr_t)after_popcnt);
	report("data-read-breakpoint-dr6-b0", (db_dr6 & 0xf) == DR6_B(0) && !(db_dr6 & DR6_BS));

	/* Armed for writes only: a read meets nothing. */
	db_reset();
	set_dr7(DR7_L(0) | DR7_RW(0, DR_RW_WRITE) | DR7_LEN(0, DR_LEN8));
	__asm__ volatile("popcnt (%1), %0\n"
			 ".globl after_popcnt_wo\n"
			 "after_popcnt_wo:\n"
			 : "=r"(out)
			 : "r"(&watched[0])
			 : "cc", "memory");
	set_dr7(0);
	printf("WRITE-ONLY DB count %u\n", db_count);
	report("data-write-breakpoint-ignores-read", db_count == 0 && out == 8);
}

static void data_write(void)
{
	uint64_t cr0;

	/* x87 on: CR0.EM and TS clear (fistp must not raise #NM or #UD). */
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	cr0 = (cr0 | CR0_MP) & ~(CR0_EM | CR0_TS);
	__asm__ volatile("mov %0, %%cr0; fninit" : : "r"(cr0));
	exception_register(1, on_db);
	watched[1] = 0;
	db_reset();
	__asm__ volatile("mov %0, %%dr1" : : "r"(&watched[1]));
	set_dr7(DR7_L(1) | DR7_RW(1, DR_RW_WRITE) | DR7_LEN(1, DR_LEN4));
	__asm__ volatile("fildl %0\n"
			 "fistpl %1\n"
			 ".globl after_fistp\n"
			 "after_fistp:\n"
			 "nop\n"
			 : : "m"(fpu_src), "m"(watched[1]) : "memory");
	set_dr7(0);
	printf("DATA-WRITE DB count %u rip 0x%lx (after fistp 0x%lx) dr6 0x%lx value %lu\n",
	       db_count, (unsigned long)db_rip, (unsigned long)(uintptr_t)after_fistp,
	       (unsigned long)db_dr6, (unsigned long)watched[1]);
	report("data-write-result", watched[1] == 1234);
	report("data-write-breakpoint-once", db_count == 1);
	report("data-write-breakpoint-trap-after", db_rip == (uint64_t)(uintptr_t)after_fistp);
	report("data-write-breakpoint-dr6-b1", (db_dr6 & 0xf) == DR6_B(1) && !(db_dr6 & DR6_BS));
}

/* The instruction the code breakpoint is on, one copy of it whoever calls. */
static void __attribute__((noinline, noclone)) code_bp_target(unsigned int *runs)
{
	__asm__ volatile(".globl code_bp\n"
			 "code_bp:\n"
			 "incl %0\n"
			 : "+m"(*runs));
}

static void code_breakpoint(void)
{
	unsigned int runs = 0, first_count;
	uint64_t first_rip, first_dr6;

	exception_register(1, on_db);
	db_reset();
	__asm__ volatile("mov %0, %%dr2" : : "r"(code_bp));
	set_dr7(DR7_L(2) | DR7_RW(2, DR_RW_EXEC) | DR7_LEN(2, DR_LEN1));
	for (int i = 0; i < 2; i++) {
		code_bp_target(&runs);
		if (i == 0) {
			first_count = db_count;
			first_rip = db_rip;
			first_dr6 = db_dr6;
		}
	}
	set_dr7(0);
	printf("CODE DB count %u (first pass %u) rip 0x%lx (code_bp 0x%lx) dr6 0x%lx runs %u\n",
	       db_count, first_count, (unsigned long)first_rip,
	       (unsigned long)(uintptr_t)code_bp, (unsigned long)first_dr6, runs);
	report("code-breakpoint-fault-before", first_count == 1 &&
	       first_rip == (uint64_t)(uintptr_t)code_bp);
	report("code-breakpoint-dr6-b2", (first_dr6 & 0xf) == DR6_B(2));
	report("code-breakpoint-runs-once-with-rf", runs == 2);
	report("code-breakpoint-fires-again", db_count == 2);
}

void guest_main(const struct hvm_start_info *si)
{
	single_step();
	sti_shadow();
	data_read();
	data_write();
	code_breakpoint();
	finish();
}
