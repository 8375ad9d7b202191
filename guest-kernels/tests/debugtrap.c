/* debugtrap.c: single-step and the interrupt shadow around an instruction the VMM completes.
 *
 * On KVM-PVM LSL at CPL0 comes back to mvm as an emulation failure (KVM-HOST.md), so mvm's
 * instruction core runs it; elsewhere the CPU or the engine does (LSL is in every x86-64 CPU,
 * QEMU's default model included). Either way the SDM's rules
 * hold (Vol. 3A 17.3.1.4, 6.8.3):
 * - single-step: POPF sets TF; the #DB trap comes after the instruction that follows (lsl
 *   here), with DR6.BS set and the frame's RIP at the instruction after lsl;
 * - the STI shadow covers one instruction only: "cli; self-IPI (pending); sti; lsl; nop"
 *   takes the interrupt right after lsl (frame RIP at the nop). A shadow left in force one
 *   instruction longer delays it past the nop (and with a HLT there, halts with the interrupt
 *   pending); an engine that looks for interrupts only between blocks of instructions never
 *   takes it before the CLI that follows.
 * Prints RESULT PASS/FAIL. */
#include "guest.h"

#define RFLAGS_TF  (1ull << 8)
#define DR6_BS	   (1ull << 14)
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
	__asm__ volatile("mov %0, %%dr6" : : "r"(0xffff0ff0ull));
	f->rflags &= ~RFLAGS_TF;
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

void guest_main(const struct hvm_start_info *si)
{
	single_step();
	sti_shadow();
	finish();
}
