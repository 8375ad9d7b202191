/* vcpu.h: the instruction core's execution context: one x86 CPU as mvm's engine runs it.
 *
 * The core has two kinds of instruction semantics, both here in vmm/emu/:
 *  - "uops": an instruction decoded once by Zydis into a compact pre-decoded form (struct
 *    emu_uop: handler, operand registers, memory form, immediate), run by a direct-threaded
 *    handler on a struct emu_vcpu. Integer, control flow, string and system instructions.
 *  - the class handlers of emu.c (xsave, x87, SSE moves, bit scans, ...) that work on a Zydis
 *    decoded instruction with an all-or-nothing write log. The decoder turns every mnemonic
 *    without a uop handler into a "generic" uop that runs them.
 * The engine (vmm/dbt/) strings uops into cached blocks; emu_vcpu_step() runs one instruction
 * (decode + execute), which is what a single-step fallback needs. Never two implementations of
 * one instruction.
 *
 * Flags are lazy: arithmetic leaves its operands and result in (cc) and RFLAGS' arithmetic bits
 * are computed only when read (emu_flags()). Memory goes through a software TLB (linear page
 * to host address, per access kind and privilege) filled by the page walk of walk.c. */
#ifndef MVM_EMU_VCPU_H
#define MVM_EMU_VCPU_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "emu/emu.h"

struct emu_vcpu;
struct emu_uop;

/* A uop handler's result: 0 goes on with the next uop of the block; anything else leaves the
 * block with cpu.rip naming where the guest goes on. */
enum emu_exit {
	EXIT_NEXT = 0,
	EXIT_BRANCH,		/* control transfer; cpu.rip is the target (chainable) */
	EXIT_JUMP_TAKEN,	/* direct branch taken / not taken: the block's link 0 / 1 */
	EXIT_JUMP_NOT,
	EXIT_FAULT,		/* (fault) holds the exception; state as of the instruction */
	EXIT_MODE,		/* mode, paging or code changed: look the next block up afresh */
	EXIT_HALT,		/* HLT: wait for an interrupt */
	EXIT_STOP,		/* the machine must stop (stop_request made) or unsupported */
	EXIT_TRAP,		/* emu_vcpu_step(): the instruction completed and a #DB trap
				 * follows it, in (fault) */
};

typedef int (*emu_uop_fn)(struct emu_vcpu *v, const struct emu_uop *u);

/* Operand fields of a uop. Registers are GPR indices 0-15; 16-19 name AH, CH, DH, BH. */
#define UOP_REG_NONE 0xff
#define UOP_F_MEM	(1u << 0)	/* the r/m operand is memory (base/index/disp/seg) */
#define UOP_F_IMM	(1u << 1)	/* the source is (imm) */
#define UOP_F_LOCK	(1u << 2)
#define UOP_F_REP	(1u << 3)	/* rep / repe */
#define UOP_F_REPNE	(1u << 4)

struct emu_uop {
	emu_uop_fn fn;
	uint8_t len;		/* instruction bytes */
	uint8_t osz;		/* operand size in bytes: 1, 2, 4, 8 */
	uint8_t asz;		/* address size in bytes: 2, 4, 8 */
	uint8_t flags;		/* UOP_F_* */
	uint8_t reg;		/* the ModRM.reg operand (or the only register operand) */
	uint8_t rm;		/* the r/m operand when it is a register */
	uint8_t base, index;	/* memory: GPR or UOP_REG_NONE (RIP-relative: folded into disp) */
	uint8_t scale;		/* 1, 2, 4, 8 */
	uint8_t seg;		/* enum emu_sreg */
	uint8_t cond;		/* condition code 0-15 (jcc, setcc, cmovcc), or a sub-operation */
	uint8_t osz2;		/* second operand size (movzx/movsx source, shifts' count form) */
	uint16_t mnemonic;	/* ZydisMnemonic, for reports and counters */
	uint16_t pos;		/* position in its block (instructions before it) */
	uint64_t next_rip;	/* address of the next instruction; this one is next_rip - len */
	int64_t disp;
	uint64_t imm;		/* immediate, branch target (absolute), or raw bytes (generic) */
	uint64_t imm2;		/* far pointers, enter's second immediate; raw bytes 8-15 */
};

/* Lazy condition codes (the QEMU/Bochs scheme): the flags are a function of (op, a, b, res). */
enum emu_cc_op {
	CC_EFLAGS,		/* the arithmetic flags are in cpu.rflags */
	CC_ADD, CC_ADC, CC_SUB, CC_SBB, CC_LOGIC, CC_INC, CC_DEC,
};
struct emu_cc {
	uint8_t op;		/* enum emu_cc_op */
	uint8_t bits;		/* operand size in bits */
	uint8_t carry_in;	/* ADC/SBB: CF before; INC/DEC: CF kept */
	uint64_t a, b, res;	/* res = a op b */
};

/* Software TLB: per privilege (0 supervisor, 1 user) and access kind, direct-mapped by linear
 * page. (tag) is the page's linear address; an empty entry holds an unaligned value that no
 * address tag equals. (addend) turns a linear address into a host pointer. */
#define EMU_TLB_SIZE 256
#define EMU_TLB_EMPTY 1ull
enum emu_tlb_kind { TLB_READ, TLB_WRITE, TLB_FETCH, TLB_KINDS };
struct emu_tlb_entry {
	uint64_t tag;
	uintptr_t addend;
};
struct emu_tlb {
	struct emu_tlb_entry e[2][TLB_KINDS][EMU_TLB_SIZE];
};

/* What the platform around the CPU provides: ports, the local APIC, model-specific registers
 * the core does not keep, CPUID, time. All called on the thread running this vCPU. */
struct emu_platform {
	struct bus *pio;
	/* The local APIC window of this vCPU (MMIO at (apic_base & ~0xfff)); NULL routes it to
	 * the MMIO bus. */
	uint64_t (*lapic_read)(struct emu_vcpu *v, uint64_t off, unsigned int size);
	void (*lapic_write)(struct emu_vcpu *v, uint64_t off, uint64_t val, unsigned int size);
	/* MSRs outside the core's own set: return 0 or -1 for #GP. */
	int (*rdmsr)(struct emu_vcpu *v, uint32_t msr, uint64_t *val);
	int (*wrmsr)(struct emu_vcpu *v, uint32_t msr, uint64_t val);
	/* The CPU model's CPUID. */
	void (*cpuid)(struct emu_vcpu *v, uint32_t leaf, uint32_t sub, uint32_t out[4]);
	/* The guest's time stamp counter now. */
	uint64_t (*tsc)(struct emu_vcpu *v);
	/* Optional: brings the x87/SSE state into cpu.xsave when (fpu_elsewhere) says another
	 * executor holds it (--accel hybrid: KVM, after guest user mode ran there). 0 or -1. */
	int (*fpu_fetch)(struct emu_vcpu *v);
	/* A store reached guest-physical [gpa, gpa+len) on a page that holds translated code. */
	void (*code_written)(struct emu_vcpu *v, uint64_t gpa, uint64_t len);
	/* Guest-physical page (gpa >> 12) holds translated code: stores must go the slow way. */
	bool (*is_code_page)(struct emu_vcpu *v, uint64_t gpa);
	void *ctx;
};

/* MSRs the core keeps (syscall/sysret, swapgs, the PAT and a few the kernel reads back). */
struct emu_msrs {
	uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t pat, misc_enable, tsc_offset;
};

struct emu_vcpu {
	struct emu_cpu cpu;		/* architectural state (RFLAGS' arithmetic bits: lazy) */
	struct emu_cc cc;
	struct emu_msrs msr;
	struct emu_env env;		/* RAM, MMIO bus, features */
	const struct emu_platform *plat;
	unsigned int index;		/* vCPU number, APIC id */
	uint64_t apic_base;		/* IA32_APIC_BASE */

	/* Derived from the state, recomputed by emu_vcpu_mode_changed(). */
	bool mode64;			/* 64-bit code segment */
	bool flat;			/* 64-bit mode: no segment checks except FS/GS bases */
	unsigned int cpl;
	uint64_t seg_base[EMU_NSREG];	/* 64-bit mode: 0 except FS/GS */
	struct emu_tlb_entry (*tlb)[EMU_TLB_SIZE]; /* tlb.e[cpl == 3] */

	/* Breakpoints (SDM Vol. 3A 17.2; the registers are cpu.dr): DR7 enables one of DR0-DR3
	 * (the engine then runs one instruction at a time through emu_vcpu_step(), which checks
	 * them), a data breakpoint among them (the TLB then holds no page a data breakpoint
	 * watches, so every access to one takes the slow path, which checks it), and the B0-B3
	 * the accesses of the current instruction met. Derived from cpu.dr[7]: see
	 * emu_vcpu_debug_changed(). */
	bool dbg_armed, dbg_data;
	uint8_t dbg_hits;
	/* Interrupt shadow: the instruction after STI / MOV SS / POP SS takes no interrupt. */
	bool int_shadow;
	/* MOV SS / POP SS also hold back the debug exceptions they raise until the next
	 * instruction completes (SDM Vol. 3A 6.8.3): (dbg_shadow) set by such a load,
	 * (dbg_held) the B0-B3 its data breakpoints met, reported with the next instruction's. */
	bool dbg_shadow;
	uint8_t dbg_held;
	/* The uop that left the block (any result but EXIT_NEXT). */
	const struct emu_uop *cur;
	/* Direct branches may run on into a linked block (op_branch.c) while (chain_budget) lasts
	 * and (*attention) is false; the instructions of the blocks so left add up in
	 * (chained_insns). */
	const _Atomic bool *attention;
	unsigned int chain_budget;
	uint64_t chained_insns;
	/* The fault an instruction raised (EXIT_FAULT). */
	struct emu_fault fault;
	/* EXIT_STOP: why, for the report. */
	char why[160];
	/* HLT waits; set at reset for application processors until SIPI. */
	bool halted, wait_sipi;
	/* PAUSE: the vCPU spins; the driver may run another. */
	bool yield;
	/* cpu.xsave is stale: the x87/SSE state is elsewhere (plat->fpu_fetch brings it). Only
	 * the generic path touches that state, so it is fetched there, when needed. */
	bool fpu_elsewhere;

	/* Counters for --stats. */
	uint64_t tlb_flushes, tlb_misses, generic_insns, device_accesses, device_ns;
	/* Instructions run through the generic path, by Zydis mnemonic (--stats). */
#define EMU_MNEMONICS 2048
	uint32_t generic_by_mnemonic[EMU_MNEMONICS];

	struct emu_tlb tlb_all;
};

/* The address of the instruction (u) stands for. */
static inline uint64_t emu_uop_rip(const struct emu_uop *u)
{
	return u->next_rip - u->len;
}

/* Initial state of (v) at power-on/INIT (SDM Vol. 3A 9.1.1): real mode at F000:FFF0 for the
 * boot CPU; the caller then loads what the boot loader wants. */
void emu_vcpu_init(struct emu_vcpu *v, unsigned int index, const struct emu_env *env,
		   const struct emu_platform *plat);
/* Recomputes the derived mode fields after CS, CR0, CR4, EFER or segment changes, and flushes
 * the TLB when (flush). */
void emu_vcpu_mode_changed(struct emu_vcpu *v, bool flush);
void emu_tlb_flush(struct emu_vcpu *v);
/* Recomputes the breakpoint fields after a write to DR0-DR3 or DR7 and drops the TLB's data
 * entries when a data breakpoint is or was armed (the pages it watches must go the slow
 * way). emu_vcpu_mode_changed() recomputes them too. */
void emu_vcpu_debug_changed(struct emu_vcpu *v);
/* Drops every write entry (a page became code: its stores must take the slow path). */
void emu_tlb_drop_writes(struct emu_vcpu *v);

/* RFLAGS as the guest sees it; setting it switches the lazy flags off. */
uint64_t emu_flags(const struct emu_vcpu *v);
void emu_flags_set(struct emu_vcpu *v, uint64_t rflags);

/* Decodes the instruction at guest-physical-backed host bytes (bytes, len) for the mode of (v)
 * at linear address (rip) into (u). Returns the instruction length, 0 when the bytes stop short
 * of an instruction (fetch more), or -1 when they do not decode (the uop then raises #UD).
 * (u->fn) is always set: instructions without a uop handler become generic uops. */
int emu_decode(const struct emu_vcpu *v, uint64_t rip, const uint8_t *bytes, unsigned int len,
	       struct emu_uop *u);
/* The name of Zydis mnemonic (mnemonic), for reports. */
const char *emu_mnemonic_name(unsigned int mnemonic);

/* True when (u) touches only registers and memory (no MSRs, ports, descriptor tables or
 * interrupt state), so it can run on a stand-alone copy of a CPU. */
bool emu_uop_pure(const struct emu_uop *u);
/* True when (u) ends a block: control transfers and instructions that change the mode, the
 * paging or the interrupt state. */
bool emu_uop_ends_block(const struct emu_uop *u);

/* Linear address of code at (rip) through CS (limit checked outside 64-bit mode). 0 or
 * EXIT_FAULT. */
int emu_code_linear(struct emu_vcpu *v, uint64_t rip, uint64_t *la);

/* Handlers chain: a uop that completes runs the next one (emu_uop[1]) itself, and the value
 * that comes back is the exit of the uop that left, recorded in v->cur. A sequence of uops
 * must therefore end in one that never completes normally: a block's terminator, or for a
 * single instruction uop_single_end, which just returns EXIT_NEXT. */
int uop_single_end(struct emu_vcpu *v, const struct emu_uop *u);

/* Uop handlers the engine places itself: a direct jump to (imm) through link 0 (a block's
 * terminator), and the handler of an invalidated block's uops (leave at this instruction). */
int uop_jmp(struct emu_vcpu *v, const struct emu_uop *u);
int uop_stale(struct emu_vcpu *v, const struct emu_uop *u);

/* Makes direct branch (u) (jmp, jcc, jcxz, loop; a block's terminator) run on into (target)
 * when it goes its (taken) way. False for other uops. The caller guarantees that whenever (u)
 * runs, (target) is what the guest's code at the branch's destination translates to. */
bool emu_uop_link(struct emu_uop *u, bool taken, const struct emu_uop *target);

/* Fetches (len) bytes of code at linear address (la) through the TLB. Returns 0, or
 * EXIT_FAULT with (v->fault) set, or EXIT_STOP. (*gpa) is the first byte's physical address. */
int emu_fetch(struct emu_vcpu *v, uint64_t la, void *buf, unsigned int len, uint64_t *gpa);
/* Host address of the code byte at linear (la) when the fetch TLB holds its page, else NULL
 * (no walk, no fault): the engine's check that a chained block is still what (la) maps. */
static inline const uint8_t *emu_fetch_host_cached(const struct emu_vcpu *v, uint64_t la)
{
	const struct emu_tlb_entry *e = &v->tlb[TLB_FETCH][(la >> 12) & (EMU_TLB_SIZE - 1)];

	return e->tag == (la & ~0xfffull) ? (const uint8_t *)(uintptr_t)(la + e->addend) : NULL;
}

/* Physical address of code at linear (la), for the code cache key: 0 or EXIT_FAULT. */
int emu_fetch_gpa(struct emu_vcpu *v, uint64_t la, uint64_t *gpa);

/* Runs one instruction at cpu.rip (decode + execute). Returns enum emu_exit; EXIT_FAULT leaves
 * the fault in (v->fault) with the state as of before the instruction. As the CPU does
 * around each instruction (SDM Vol. 3A 17.3.1): an instruction breakpoint at cpu.rip with
 * RFLAGS.RF clear is a #DB fault (EXIT_FAULT, DR6.Bn set, nothing run); RF is cleared once
 * the instruction starts; when it completes having met a data breakpoint, or with TF set
 * before and after it, EXIT_TRAP: #DB in (v->fault), DR6.B0-B3 the data breakpoints met and
 * BS for the single step. The interrupt shadow is the caller's business. */
int emu_vcpu_step(struct emu_vcpu *v);

/* Delivers exception/interrupt (vector) through the guest IDT (real mode IVT, 64-bit IDT).
 * (ext): external (hardware interrupt or exception, not INT n). Returns 0, or EXIT_FAULT with
 * the fault of the delivery itself in (v->fault) (the caller escalates: #DF, then shutdown),
 * or EXIT_STOP when mvm cannot deliver in this mode. */
int emu_vcpu_deliver(struct emu_vcpu *v, uint8_t vector, bool has_error, uint32_t error,
		     bool ext);

#endif
