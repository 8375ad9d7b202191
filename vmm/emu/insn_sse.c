/* insn_sse.c: SSE and AVX data movement (movd, movq, movdqa/u, movaps/ups/apd/upd, movntdq,
 * movnti), pxor/xorps/vpxor and vzeroupper, with the #UD/#NM/#GP rules of SDM Vol. 2 and the
 * exception classes of Vol. 2 2.4. Moves to and from MMIO keep the guest's width (mem.c). */
#include <string.h>

#include "emu_internal.h"

static bool is_vex(const struct emu_ctx *ctx)
{
	return ctx->insn.encoding == ZYDIS_INSTRUCTION_ENCODING_VEX;
}

static bool is_evex(const struct emu_ctx *ctx)
{
	return ctx->insn.encoding == ZYDIS_INSTRUCTION_ENCODING_EVEX;
}

/* The VEX and EVEX forms zero the destination register above what they write, up to bit 511
 * (DEST[MAXVL-1:n] <- 0, SDM Vol. 2 2.3.10.1 and VMOVD/VMOVQ); legacy SSE keeps it. */
static bool zeroes_upper(const struct emu_ctx *ctx)
{
	return is_vex(ctx) || is_evex(ctx);
}

static int availability(struct emu_ctx *ctx)
{
	const struct emu_features *f = ctx->env->features;
	const struct emu_cpu *c = ctx->cpu;

	/* movnti stores a general register: it has none of the SSE register checks (no #NM
	 * for CR0.TS, no #UD for CR0.EM or CR4.OSFXSR), only CPUID.SSE2 (SDM Vol. 2 MOVNTI,
	 * "Protected Mode Exceptions"). (features->sse stands for SSE and SSE2, as in
	 * insn_sse2.c: no x86-64 CPU has one without the other.) */
	if (ctx->insn.mnemonic == ZYDIS_MNEMONIC_MOVNTI)
		return f->sse ? EMU_OK : emu_ud(ctx);
	if (is_evex(ctx)) {
		/* AVX-512F: OS support through XCR0 (SSE, YMM, opmask, ZMM_Hi256 and Hi16_ZMM
		 * state enabled, SDM Vol. 1 15.2); never the legacy SSE checks. */
		if (!f->avx512f || !(c->cr4 & CR4_OSXSAVE) || (c->xcr0 & 0xe6) != 0xe6)
			return emu_ud(ctx);
		if (ctx->insn.avx.mask.reg != ZYDIS_REGISTER_NONE &&
		    ctx->insn.avx.mask.reg != ZYDIS_REGISTER_K0)
			return emu_unsupported(ctx, "%s with an opmask", ctx->res->mnemonic);
	} else if (is_vex(ctx)) {
		/* AVX: OS support through XCR0 (SSE and YMM state enabled). The 256-bit forms
		 * of the integer instructions (vpxor ymm) are AVX2 (SDM Vol. 2 VPXOR). */
		if (!f->avx || !(c->cr4 & CR4_OSXSAVE) || (c->xcr0 & 6) != 6)
			return emu_ud(ctx);
		if (ctx->insn.meta.isa_ext == ZYDIS_ISA_EXT_AVX2 && !f->avx2)
			return emu_ud(ctx);
	} else {
		if (!f->sse || (c->cr0 & CR0_EM) || !(c->cr4 & CR4_OSFXSR))
			return emu_ud(ctx);
	}
	if (c->cr0 & CR0_TS)
		return emu_raise(ctx, EXC_NM, false, 0);
	return EMU_OK;
}

/* Aligned forms fault on a misaligned memory operand with #GP(0). */
static int check_alignment(struct emu_ctx *ctx, const ZydisDecodedOperand *op, uint32_t align)
{
	uint64_t la;
	int ret;

	if (op->type != ZYDIS_OPERAND_TYPE_MEMORY || align <= 1)
		return EMU_OK;
	ret = emu_op_mem_la(ctx, op, op->size / 8, false, &la);
	if (ret)
		return ret;
	return la & (align - 1) ? emu_gp0(ctx) : EMU_OK;
}

static uint32_t required_alignment(const struct emu_ctx *ctx, uint32_t bytes)
{
	switch (ctx->insn.mnemonic) {
	case ZYDIS_MNEMONIC_MOVDQA:
	case ZYDIS_MNEMONIC_MOVAPS:
	case ZYDIS_MNEMONIC_MOVAPD:
	case ZYDIS_MNEMONIC_MOVNTDQ:
	case ZYDIS_MNEMONIC_VMOVDQA:
	case ZYDIS_MNEMONIC_VMOVAPS:
		return bytes;
	case ZYDIS_MNEMONIC_PXOR:
	case ZYDIS_MNEMONIC_XORPS:
		return 16; /* legacy SSE with a 128-bit memory operand */
	default:
		return 1;
	}
}

static int move(struct emu_ctx *ctx)
{
	const ZydisDecodedOperand *dst = &ctx->ops[0], *src = &ctx->ops[1];
	uint32_t bytes = (dst->size < src->size ? dst->size : src->size) / 8;
	uint8_t buf[32];
	bool zero_upper = zeroes_upper(ctx);
	int ret;

	/* movq/movd move 8 or 4 bytes; between XMM registers the decoder gives both operands
	 * 128 bits. */
	if (ctx->insn.mnemonic == ZYDIS_MNEMONIC_MOVQ || ctx->insn.mnemonic == ZYDIS_MNEMONIC_VMOVQ)
		bytes = 8;
	else if (ctx->insn.mnemonic == ZYDIS_MNEMONIC_MOVD ||
		 ctx->insn.mnemonic == ZYDIS_MNEMONIC_VMOVD)
		bytes = 4;

	if (bytes > sizeof(buf) || bytes == 0)
		return emu_unsupported(ctx, "%s of %u bytes", ctx->res->mnemonic, bytes);
	ret = check_alignment(ctx, dst, required_alignment(ctx, bytes));
	if (!ret)
		ret = check_alignment(ctx, src, required_alignment(ctx, bytes));
	if (!ret)
		ret = emu_op_read_vec(ctx, src, buf, bytes);
	if (ret)
		return ret;
	/* movd/movq into an XMM register zero the rest of it (bits 127:32 or 127:64), and the
	 * VEX and EVEX forms everything above. movq between XMM registers zeroes bits 127:64. */
	if (ctx->insn.mnemonic == ZYDIS_MNEMONIC_MOVD || ctx->insn.mnemonic == ZYDIS_MNEMONIC_MOVQ ||
	    ctx->insn.mnemonic == ZYDIS_MNEMONIC_VMOVD || ctx->insn.mnemonic == ZYDIS_MNEMONIC_VMOVQ) {
		if (dst->type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ZydisRegisterGetClass(dst->reg.value) == ZYDIS_REGCLASS_XMM) {
			memset(buf + bytes, 0, 16 - bytes);
			return emu_op_write_vec(ctx, dst, buf, 16, zero_upper);
		}
	}
	return emu_op_write_vec(ctx, dst, buf, bytes, zero_upper);
}

static int xor_op(struct emu_ctx *ctx)
{
	/* Legacy: dst ^= src. VEX: dst = src1 ^ src2. */
	const ZydisDecodedOperand *dst = &ctx->ops[0];
	const ZydisDecodedOperand *a = is_vex(ctx) ? &ctx->ops[1] : &ctx->ops[0];
	const ZydisDecodedOperand *b = is_vex(ctx) ? &ctx->ops[2] : &ctx->ops[1];
	uint32_t bytes = dst->size / 8;
	uint8_t x[32], y[32];
	int ret;

	if (bytes > sizeof(x))
		return emu_unsupported(ctx, "%s of %u bytes", ctx->res->mnemonic, bytes);
	ret = check_alignment(ctx, b, required_alignment(ctx, bytes));
	if (!ret)
		ret = emu_op_read_vec(ctx, a, x, bytes);
	if (!ret)
		ret = emu_op_read_vec(ctx, b, y, bytes);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < bytes; i++)
		x[i] ^= y[i];
	return emu_op_write_vec(ctx, dst, x, bytes, is_vex(ctx));
}

static int vzeroupper(struct emu_ctx *ctx)
{
	uint8_t buf[16];

	/* Bits 255:128 (and 511:256) of YMM0-15 become zero; the XMM parts stay. */
	for (unsigned int i = 0; i < 16; i++) {
		ZydisDecodedOperand op = {.type = ZYDIS_OPERAND_TYPE_REGISTER,
					  .reg.value = ZYDIS_REGISTER_XMM0 + i, .size = 128};
		int ret = emu_op_read_vec(ctx, &op, buf, 16);

		if (!ret)
			ret = emu_op_write_vec(ctx, &op, buf, 16, true);
		if (ret)
			return ret;
	}
	return EMU_OK;
}

int emu_exec_sse(struct emu_ctx *ctx)
{
	int ret = availability(ctx);

	if (ret)
		return ret;
	switch (ctx->insn.mnemonic) {
	case ZYDIS_MNEMONIC_PXOR:
	case ZYDIS_MNEMONIC_XORPS:
	case ZYDIS_MNEMONIC_VPXOR:
		return xor_op(ctx);
	case ZYDIS_MNEMONIC_VZEROUPPER:
		return vzeroupper(ctx);
	default:
		if (ctx->insn.operand_count_visible != 2)
			return emu_unsupported(ctx, "%s form", ctx->res->mnemonic);
		return move(ctx);
	}
}
