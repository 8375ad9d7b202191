/* emu_internal.h: what the emulator's files share: the per-instruction context, memory and
 * operand access, and the instruction handlers' signature. */
#ifndef MVM_EMU_INTERNAL_H
#define MVM_EMU_INTERNAL_H

#include <Zydis/Zydis.h>
#include <stdio.h>

#include "emu/emu.h"
#include "emu/walk.h"

/* Handler results. */
#define EMU_OK	    0
#define EMU_EXC	    1	/* ctx->res->fault holds the exception */
#define EMU_UNSUP   2	/* ctx->res->why says what is missing */
#define EMU_RETRY   3	/* emu_commit(): the page tables changed under the instruction */

#define EMU_WLOG_MAX 32
#define EMU_WBUF_SIZE 8192
#define EMU_ADLOG_MAX 16	/* page walks whose A/D updates wait for the commit */

/* RFLAGS bits. */
#define RF_CF (1ull << 0)
#define RF_PF (1ull << 2)
#define RF_AF (1ull << 4)
#define RF_ZF (1ull << 6)
#define RF_SF (1ull << 7)
#define RF_TF (1ull << 8)
#define RF_IF (1ull << 9)
#define RF_DF (1ull << 10)
#define RF_OF (1ull << 11)
#define RF_NT (1ull << 14)
#define RF_RF (1ull << 16)
#define RF_VM (1ull << 17)
#define RF_AC (1ull << 18)
#define RF_ARITH (RF_CF | RF_PF | RF_AF | RF_ZF | RF_SF | RF_OF)

#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR0_NE (1ull << 5)
#define CR4_TSD (1ull << 2)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_PCIDE (1ull << 17)
#define CR4_OSXSAVE (1ull << 18)
#define CR4_SMAP_BIT (1ull << 21)

/* Exception vectors. */
#define EXC_DE 0
#define EXC_DB 1
#define EXC_BP 3
#define EXC_OF 4
#define EXC_UD 6
#define EXC_NM 7
#define EXC_TS 10
#define EXC_NP 11
#define EXC_SS 12
#define EXC_GP 13
#define EXC_PF 14
#define EXC_MF 16
#define EXC_AC 17
#define EXC_XM 19

/* XSAVE image layout (SDM Vol. 1 13.4). */
#define XSAVE_FCW	0
#define XSAVE_FSW	2
#define XSAVE_FTW	4	/* abridged tag byte */
#define XSAVE_FOP	6
#define XSAVE_MXCSR	24
#define XSAVE_MXCSR_MASK 28
#define XSAVE_ST0	32	/* 8 x 16 bytes */
#define XSAVE_XMM0	160	/* 16 x 16 bytes */
#define XSAVE_HDR	512	/* XSTATE_BV, then XCOMP_BV */
#define XSAVE_LEGACY_SIZE 512
#define XSAVE_HDR_SIZE	64
#define XFEATURE_X87	0
#define XFEATURE_SSE	1
#define XFEATURE_YMM	2
#define MXCSR_DEFAULT	0x1f80

struct emu_wlog {
	uint64_t gpa;
	uint32_t len, off;	/* data at wbuf[off] */
	bool mmio;
};

struct emu_ctx {
	struct emu_cpu *cpu;		/* the working copy */
	const struct emu_env *env;
	struct emu_result *res;
	ZydisDecodedInstruction insn;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	uint64_t next_rip;
	bool rip_written;		/* the handler set cpu->rip itself (control transfer) */
	unsigned int maxphy;
	struct emu_wlog wlog[EMU_WLOG_MAX];
	unsigned int nw, wused;
	uint8_t wbuf[EMU_WBUF_SIZE];
	struct emu_walk_ad ad[EMU_ADLOG_MAX];
	unsigned int nad;
};

typedef int (*emu_handler_fn)(struct emu_ctx *ctx);

/* Results. */
int emu_raise(struct emu_ctx *ctx, uint8_t vector, bool has_error, uint32_t error);
int emu_gp0(struct emu_ctx *ctx);
int emu_ud(struct emu_ctx *ctx);
int emu_unsupported(struct emu_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Memory, by linear address. acc: EMU_ACC_* (user is added from the CPL). Reads take effect
 * at once (MMIO reads included); writes, and the accessed/dirty bits of the page walks, are
 * logged and applied by emu_commit() only if the whole instruction succeeds. A read-modify-
 * write reads with EMU_ACC_WRITE, so a fault on the read reports a write as the CPU does. */
int emu_read_linear(struct emu_ctx *ctx, uint64_t la, void *dst, uint32_t len, unsigned int acc);
int emu_write_linear(struct emu_ctx *ctx, uint64_t la, const void *src, uint32_t len,
		     unsigned int acc);
/* Host pointer to [la, la+len) when it is writable RAM on one page, for locked operations;
 * NULL with a fault or unsupported status set otherwise (*status). */
void *emu_ram_pointer(struct emu_ctx *ctx, uint64_t la, uint32_t len, bool write, int *status);
/* EMU_OK; or, with nothing written, EMU_EXC when a page walk redone because another vCPU
 * changed its entries meanwhile now faults, EMU_RETRY when it now maps another page (run the
 * instruction again), EMU_UNSUP. */
int emu_commit(struct emu_ctx *ctx);

/* Segmentation: linear address of (seg:ea) for (len) bytes, checking limits and canonical
 * form; raises #GP(0) or #SS(0). */
int emu_linear(struct emu_ctx *ctx, enum emu_sreg seg, uint64_t ea, uint32_t len, bool write,
	       uint64_t *la);

/* Operands of the decoded instruction. */
uint64_t emu_op_ea(struct emu_ctx *ctx, const ZydisDecodedOperand *op);
int emu_op_mem_la(struct emu_ctx *ctx, const ZydisDecodedOperand *op, uint32_t len, bool write,
		  uint64_t *la);
/* The same for the operand's effective address plus (disp) bytes (bt's bit string). */
int emu_op_mem_la_disp(struct emu_ctx *ctx, const ZydisDecodedOperand *op, int64_t disp,
		       uint32_t len, bool write, uint64_t *la);
int emu_op_read(struct emu_ctx *ctx, const ZydisDecodedOperand *op, uint64_t *val);
/* emu_op_read() with access kind (acc) for a memory operand (EMU_ACC_WRITE: read for RMW). */
int emu_op_read_acc(struct emu_ctx *ctx, const ZydisDecodedOperand *op, uint64_t *val,
		    unsigned int acc);
int emu_op_write(struct emu_ctx *ctx, const ZydisDecodedOperand *op, uint64_t val);
/* Vector operands (XMM/YMM registers or memory), (bytes) 4, 8, 16 or 32. */
int emu_op_read_vec(struct emu_ctx *ctx, const ZydisDecodedOperand *op, void *buf,
		    uint32_t bytes);
int emu_op_write_vec(struct emu_ctx *ctx, const ZydisDecodedOperand *op, const void *buf,
		     uint32_t bytes, bool zero_upper);

/* General registers by Zydis register. */
uint64_t emu_reg_read(struct emu_ctx *ctx, ZydisRegister reg);
void emu_reg_write(struct emu_ctx *ctx, ZydisRegister reg, uint64_t val);
int emu_gpr_index(ZydisRegister reg);

/* The x87/SSE state lives in cpu->xsave; marking a component changed keeps KVM from treating
 * it as in its initial state. */
void emu_xsave_touch(struct emu_ctx *ctx, unsigned int component);

static inline uint64_t emu_mask(unsigned int bits)
{
	return bits >= 64 ? ~0ull : (1ull << bits) - 1;
}

/* Handlers by class. Each returns EMU_OK, EMU_EXC or EMU_UNSUP. */
int emu_exec_system(struct emu_ctx *ctx);	/* clac, stac, rdtscp, rdpid, lar, lsl, ... */
int emu_exec_xsave(struct emu_ctx *ctx);	/* xsave family, fxsave, xgetbv, xsetbv */
int emu_exec_x87(struct emu_ctx *ctx);
int emu_exec_sse(struct emu_ctx *ctx);
int emu_exec_sse2(struct emu_ctx *ctx);	/* SSE/SSE2 compute: integer, shuffles, FP */
int emu_exec_interrupt(struct emu_ctx *ctx);	/* int3, int n, into */
int emu_exec_atomic(struct emu_ctx *ctx);	/* cmpxchg8b/16b */

/* Delivers interrupt (vector) through the guest IDT in IA-32e mode (soft: a software
 * interrupt, DPL checked against CPL; has_error: push (error) as exceptions with an error code
 * do) with the return address cpu->rip set by the caller. */
int emu_deliver_interrupt(struct emu_ctx *ctx, uint8_t vector, bool soft, bool has_error,
			  uint32_t error);

#endif
