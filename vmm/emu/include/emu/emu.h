/* emu.h: the x86 instruction emulator. Pure: it works on a copy of the CPU state, guest RAM and
 * the MMIO bus it is given, issues no ioctls, and either commits an instruction whole (registers
 * and memory) or reports the fault the CPU would raise with nothing changed.
 *
 * Driver 1 (vmm/kvm/emulate.c) uses it to finish the instructions KVM hands back as emulation
 * failures; a software engine can later run whole guests on the same core. */
#ifndef MVM_EMU_EMU_H
#define MVM_EMU_EMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/guest_mem.h"

/* General registers in encoding order. */
enum emu_gpr {
	EMU_RAX, EMU_RCX, EMU_RDX, EMU_RBX, EMU_RSP, EMU_RBP, EMU_RSI, EMU_RDI,
	EMU_R8, EMU_R9, EMU_R10, EMU_R11, EMU_R12, EMU_R13, EMU_R14, EMU_R15,
};
enum emu_sreg { EMU_ES, EMU_CS, EMU_SS, EMU_DS, EMU_FS, EMU_GS, EMU_NSREG };

struct emu_seg {
	uint64_t base;
	uint32_t limit;		/* byte granular (already scaled by G) */
	uint16_t sel;
	uint8_t type, s, dpl, present, db, l, g;
};

#define EMU_XSAVE_SIZE 4096	/* KVM_GET_XSAVE's standard-format image */

/* Which parts of the state an instruction changed: the driver writes back only those. */
#define EMU_DIRTY_GPRS	 (1u << 0)	/* general registers, RIP, RFLAGS */
#define EMU_DIRTY_SREGS	 (1u << 1)	/* segments, control registers, EFER, descriptor tables */
#define EMU_DIRTY_XSAVE	 (1u << 2)	/* x87/SSE/AVX state */
#define EMU_DIRTY_XCR0	 (1u << 3)
#define EMU_DIRTY_TLB	 (1u << 4)	/* the guest asked for a TLB flush (invpcid, invlpg) */

struct emu_cpu {
	uint64_t gpr[16];
	uint64_t rip, rflags;
	struct emu_seg seg[EMU_NSREG], tr, ldt;
	uint64_t gdt_base, idt_base;
	uint16_t gdt_limit, idt_limit;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer;
	uint64_t xcr0;
	uint64_t tsc, tsc_aux;
	/* Debug registers DR0-DR7 (DR4 and DR5 unused: they alias DR6 and DR7). The core checks
	 * the breakpoints of DR0-DR3 that DR7 enables (emu_dbg_data_hits()); it never writes them
	 * in emu_step(), which reports the hits in emu_result.db_hits instead. */
	uint64_t dr[8];
	uint32_t dirty;
	_Alignas(64) uint8_t xsave[EMU_XSAVE_SIZE];
};

/* The host facts the emulator needs: what CPUID tells the guest. */
#define EMU_XSAVE_COMPONENTS 10
struct emu_features {
	uint64_t xcr0_mask;			/* XCR0 bits the guest may set */
	uint32_t xsave_offset[EMU_XSAVE_COMPONENTS];	/* standard format, CPUID.(0xD,i).EBX */
	uint32_t xsave_size[EMU_XSAVE_COMPONENTS];	/* CPUID.(0xD,i).EAX */
	uint32_t xsave_align64;
	unsigned int maxphyaddr;			/* CPUID.80000008H:EAX[7:0] */			/* bit i: component i 64-byte aligned when compacted */
	bool xsaveopt, xsavec, xsaves, xgetbv1;
	bool popcnt, lzcnt, bmi1, smap, rdtscp, rdpid, monitor, invpcid, cx16, sse, avx, fxsr;
	bool avx2;				/* CPUID.(7,0):EBX[5] */
	bool avx512f;				/* CPUID.(7,0):EBX[16] */
};

struct emu_env {
	const struct guest_mem *mem;	/* borrowed */
	struct bus *mmio;		/* borrowed; accesses outside RAM go here */
	const struct emu_features *features;
	/* Optional: told of every store to RAM the emulator commits (the engine invalidates
	 * translated code on those pages). */
	void (*ram_written)(void *ctx, uint64_t gpa, uint64_t len);
	void *ram_written_ctx;
};

/* A fault, as the CPU would raise it. */
struct emu_fault {
	uint8_t vector;
	bool has_error_code;
	uint32_t error_code;
	uint64_t cr2;			/* for #PF */
};

enum emu_status {
	EMU_DONE,		/* committed; the guest goes on at cpu->rip */
	EMU_FAULT,		/* nothing changed; inject (fault) */
	EMU_UNSUPPORTED,	/* mvm cannot emulate this; (why) says what */
};

struct emu_result {
	enum emu_status status;
	struct emu_fault fault;
	const char *mnemonic;		/* Zydis mnemonic string, for counters and reports */
	unsigned int mnemonic_id;	/* its ZydisMnemonic (0: none decoded) */
	char why[160];			/* EMU_UNSUPPORTED: a one-line reason */
	uint8_t insn[15];
	unsigned int insn_len;
	/* EMU_DONE: DR6.B0-B3 of the data breakpoints the instruction's accesses met (SDM Vol.
	 * 3A 17.3.1.2). The #DB they raise is a trap, after the instruction: the caller sets DR6
	 * and raises it. */
	uint8_t db_hits;
};

/* Emulates the instruction at cpu->rip. (bytes, len) are its first bytes when the caller has
 * them (KVM's exit carries up to 15); with len 0, or when they stop short of a whole
 * instruction, they are fetched through the guest page tables. On EMU_DONE (*cpu) holds the
 * new state with (cpu->dirty) naming what changed and guest memory has been written;
 * otherwise neither changed. */
void emu_step(struct emu_cpu *cpu, const struct emu_env *env, const uint8_t *bytes,
	      unsigned int len, struct emu_result *res);

/* Delivers an external event (exception or hardware interrupt) (vector) with an optional
 * error code through the guest IDT in IA-32e mode, all or nothing. (res->status) EMU_DONE,
 * EMU_FAULT with the fault the delivery itself raised, or EMU_UNSUPPORTED. */
int emu_deliver_event(struct emu_cpu *cpu, const struct emu_env *env, uint8_t vector,
		      bool has_error, uint32_t error, struct emu_result *res);

/* emu_step() for an instruction known to have no uop (emu/vcpu.h): the class handlers only. */
void emu_step_classes(struct emu_cpu *cpu, const struct emu_env *env, const uint8_t *bytes,
		      unsigned int len, struct emu_result *res);

/* Formats the instruction in (res) as Intel syntax into (buf) ("??" if it does not decode). */
void emu_disassemble(const struct emu_cpu *cpu, const struct emu_result *res, char *buf,
		     size_t size);

/* --- debug registers (SDM Vol. 3A 17.2, 17.3.1; debug.c) --- */
#define EMU_DR6_BS	 (1ull << 14)	/* single step */
#define EMU_DR6_HITS	 0xfull		/* B0-B3 */
#define EMU_DR6_FIXED	 0xffff0ff0ull	/* reserved bits that read as 1 */
#define EMU_DR7_ENABLES	 0xffull	/* L0, G0 ... L3, G3 */
#define EMU_DR7_FIXED	 0x400ull	/* bit 10 reads as 1 */

/* B0-B3 of the data breakpoints DR7 enables in (c) that an access of (len) bytes at linear
 * address (la) meets: any of its bytes inside the breakpoint's range, whose start is DRn
 * with the low bits LEN ignores cleared (17.2.5); writes-only breakpoints only for (write).
 * I/O breakpoints (R/W 10, CR4.DE) are not offered and never met. */
unsigned int emu_dbg_data_hits(const struct emu_cpu *c, uint64_t la, unsigned int len,
			       bool write);

/* B0-B3 of the instruction breakpoints (R/W 00) DR7 enables in (c) at linear address (la),
 * the first byte of an instruction (17.3.1.1). RFLAGS.RF is the caller's business. */
unsigned int emu_dbg_code_hits(const struct emu_cpu *c, uint64_t la);

/* Whether DR7 of (c) enables a data breakpoint. */
bool emu_dbg_data_armed(const struct emu_cpu *c);

/* CPU mode helpers. */
static inline bool emu_long_mode(const struct emu_cpu *c)
{
	return (c->efer & (1u << 10)) != 0;
}
static inline bool emu_64bit(const struct emu_cpu *c)
{
	return emu_long_mode(c) && c->seg[EMU_CS].l;
}
static inline unsigned int emu_cpl(const struct emu_cpu *c)
{
	return c->seg[EMU_CS].dpl; /* SS.DPL equals CPL; CS.DPL does too outside conforming code */
}

#endif
