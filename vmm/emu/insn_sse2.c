/* insn_sse2.c: the SSE/SSE2 computation instructions (legacy encodings, XMM registers and
 * m128/m64/m32/m16 operands) that user space runs: glibc's string functions, memset/memcpy,
 * and the double/float code of printf and awk.
 *   compare, mask: pcmpeqb/w/d, pcmpgtb/w/d, pmovmskb, movmskps/pd
 *   logic: por, pand, pandn, orps/pd, andps/pd, andnps/pd, xorpd (pxor, xorps: insn_sse.c)
 *   integer: padd/psub b/w/d/q, paddus/psubus/padds/psubs b/w, pminub, pmaxub, pminsw, pmaxsw,
 *     pavgb/w, psadbw, pmullw, pmulhw, pmulhuw, pmuludq, pmaddwd
 *   shuffles: pshufd/lw/hw, punpckl/h bw/wd/dq/qdq, packuswb, packsswb, packssdw, shufps/pd,
 *     unpckl/h ps/pd
 *   shifts: psll/psrl w/d/q, psra w/d (xmm/m128 count or imm8), pslldq, psrldq
 *   moves: movss, movsd (SSE2), movlps/pd, movhps/pd, movhlps, movlhps, pextrw, pinsrw
 *   floating point: add/sub/mul/div/sqrt/min/max ss/sd/ps/pd, cmpss/sd/ps/pd, (u)comiss/sd,
 *     cvtsi2ss/sd, cvt(t)ss2si, cvt(t)sd2si, cvtss2sd, cvtsd2ss, cvtps2pd, cvtpd2ps, cvtdq2ps,
 *     cvtdq2pd, cvt(t)ps2dq, cvt(t)pd2dq
 *
 * SDM Vol. 2 semantics and exceptions:
 *
 * - #UD without CPUID.SSE, with CR0.EM or without CR4.OSFXSR; #NM with CR0.TS (Vol. 2 2.4).
 * - #GP(0) for a 16-byte memory operand not 16-byte aligned (exception classes 1, 2 and 4: every
 *   instruction here with an m128 operand); the scalar, m64 and m16 forms have no alignment
 *   rule (classes 3 and 5).
 * - MMX-register forms, SSE3 and later encodings with the same mnemonics (pextrw m16 of SSE4.1),
 *   and the string instructions movsd/cmpsd are reported unsupported, not guessed.
 *
 * Floating point: additions, subtractions, multiplications, divisions, square roots and the
 * conversions between formats and from integers run on the host's SSE unit (C arithmetic on
 * x86-64, inline sqrtsd/sqrtss) under the guest's MXCSR: its rounding control, FTZ and DAZ,
 * with every exception masked, so results, NaN quieting and the MXCSR flags (IE DE ZE OE UE
 * PE, read back from the host's MXCSR) are the hardware's. Which NaN a two-operand instruction
 * returns (the first source's, SDM Vol. 1 4.8.3.5) is chosen here, since the compiler may swap
 * the operands of a commutative C operator. Comparisons, min/max and conversions to integers
 * are computed here, with their IE/DE/PE flags. Simplified: an exception unmasked in MXCSR is
 * not delivered (no #XM or #UD): the instruction completes with the masked response and sets
 * the flag, as if the exception were masked. */
#include <math.h>
#include <string.h>

#include "emu_internal.h"

#if !defined(__x86_64__) || !defined(__SSE2_MATH__)
#error "insn_sse2.c computes SSE floating point on the host's SSE unit (x86-64)"
#endif

union xmm {
	uint8_t b[16];
	int8_t sb[16];
	uint16_t w[8];
	int16_t sw[8];
	uint32_t d[4];
	int32_t sd[4];
	uint64_t q[2];
	int64_t sq[2];
};

/* MXCSR (SDM Vol. 1 10.2.3). */
#define MX_IE	    0x0001u
#define MX_DE	    0x0002u
#define MX_ZE	    0x0004u
#define MX_PE	    0x0020u
#define MX_FLAGS    0x003fu
#define MX_DAZ	    0x0040u
#define MX_MASKS    0x1f80u
#define MX_UM	    0x0800u
#define MX_RC	    0x6000u
#define MX_RC_SHIFT 13
#define MX_FTZ	    0x8000u

static bool is_xmm(const ZydisDecodedOperand *op)
{
	return op->type == ZYDIS_OPERAND_TYPE_REGISTER &&
	       ZydisRegisterGetClass(op->reg.value) == ZYDIS_REGCLASS_XMM;
}

static int availability(struct emu_ctx *ctx)
{
	const struct emu_cpu *c = ctx->cpu;

	if (!ctx->env->features->sse || (c->cr0 & CR0_EM) || !(c->cr4 & CR4_OSFXSR))
		return emu_ud(ctx);
	if (c->cr0 & CR0_TS)
		return emu_raise(ctx, EXC_NM, false, 0);
	return EMU_OK;
}

/* A vector source: a whole XMM register, or (op->size) bytes of memory into the low bytes of
 * (v), the rest zero; a 16-byte memory operand must be 16-byte aligned. */
static int read_src(struct emu_ctx *ctx, const ZydisDecodedOperand *op, union xmm *v)
{
	uint32_t bytes = op->size / 8;
	uint64_t la;
	int ret;

	memset(v, 0, sizeof(*v));
	if (op->type != ZYDIS_OPERAND_TYPE_MEMORY)
		return emu_op_read_vec(ctx, op, v, 16);
	if (bytes == 0 || bytes > 16)
		return emu_unsupported(ctx, "%s with a %u-bit memory operand", ctx->res->mnemonic,
				       op->size);
	ret = emu_op_mem_la(ctx, op, bytes, false, &la);
	if (ret)
		return ret;
	if (bytes == 16 && (la & 15))
		return emu_gp0(ctx);
	return emu_read_linear(ctx, la, v, bytes, 0);
}

static int read_xmm(struct emu_ctx *ctx, const ZydisDecodedOperand *op, union xmm *v)
{
	return emu_op_read_vec(ctx, op, v, 16);
}

static int write_xmm(struct emu_ctx *ctx, const ZydisDecodedOperand *op, const union xmm *v)
{
	return emu_op_write_vec(ctx, op, v, 16, false);
}

/* --- integer and bitwise operations on whole registers --- */

static int8_t sat_s8(int v)
{
	return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
}

static uint8_t sat_u8(int v)
{
	return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static int16_t sat_s16(int32_t v)
{
	return (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
}

static uint16_t sat_u16(int32_t v)
{
	return (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v);
}

/* Interleaves the low (high = false) or high halves of (a) and (b), elements of (size) bytes. */
static void unpack(union xmm *r, const union xmm *a, const union xmm *b, unsigned int size,
		   bool high)
{
	unsigned int n = 8 / size, base = high ? 8 : 0;
	union xmm t;

	for (unsigned int i = 0; i < n; i++) {
		memcpy(t.b + 2 * i * size, a->b + base + i * size, size);
		memcpy(t.b + (2 * i + 1) * size, b->b + base + i * size, size);
	}
	*r = t;
}

enum shift_kind { SHL, SHR, SAR };

/* Shifts each (bits)-bit element of (a) by (count): logical shifts by (bits) or more give
 * zero, arithmetic ones fill with the sign. */
static void shift(union xmm *r, const union xmm *a, uint64_t count, unsigned int bits,
		  enum shift_kind kind)
{
	unsigned int c = count > bits - 1 ? bits : (unsigned int)count;
	union xmm t = {0};

	if (kind == SAR && c == bits)
		c = bits - 1;
	for (unsigned int i = 0; i < 128 / bits; i++) {
		switch (bits) {
		case 16:
			if (kind == SAR)
				t.sw[i] = (int16_t)(a->sw[i] >> c);
			else if (c < 16)
				t.w[i] = (uint16_t)(kind == SHL ? (uint32_t)a->w[i] << c
								: (uint32_t)a->w[i] >> c);
			break;
		case 32:
			if (kind == SAR)
				t.sd[i] = a->sd[i] >> c;
			else if (c < 32)
				t.d[i] = kind == SHL ? a->d[i] << c : a->d[i] >> c;
			break;
		default:
			if (c < 64)
				t.q[i] = kind == SHL ? a->q[i] << c : a->q[i] >> c;
			break;
		}
	}
	*r = t;
}

/* (r) = op(a, b[, imm]) for the two-operand integer, bitwise and shuffle instructions whose
 * destination is (a). False if (m) is not one of them. */
static bool int_op(ZydisMnemonic m, union xmm *r, const union xmm *a, const union xmm *b,
		   unsigned int imm)
{
	union xmm t = *a;
	unsigned int i;

	switch (m) {
	case ZYDIS_MNEMONIC_PCMPEQB:
		for (i = 0; i < 16; i++)
			t.b[i] = a->b[i] == b->b[i] ? 0xff : 0;
		break;
	case ZYDIS_MNEMONIC_PCMPEQW:
		for (i = 0; i < 8; i++)
			t.w[i] = a->w[i] == b->w[i] ? 0xffff : 0;
		break;
	case ZYDIS_MNEMONIC_PCMPEQD:
		for (i = 0; i < 4; i++)
			t.d[i] = a->d[i] == b->d[i] ? ~0u : 0;
		break;
	case ZYDIS_MNEMONIC_PCMPGTB:
		for (i = 0; i < 16; i++)
			t.b[i] = a->sb[i] > b->sb[i] ? 0xff : 0;
		break;
	case ZYDIS_MNEMONIC_PCMPGTW:
		for (i = 0; i < 8; i++)
			t.w[i] = a->sw[i] > b->sw[i] ? 0xffff : 0;
		break;
	case ZYDIS_MNEMONIC_PCMPGTD:
		for (i = 0; i < 4; i++)
			t.d[i] = a->sd[i] > b->sd[i] ? ~0u : 0;
		break;
	case ZYDIS_MNEMONIC_POR:
	case ZYDIS_MNEMONIC_ORPS:
	case ZYDIS_MNEMONIC_ORPD:
		for (i = 0; i < 2; i++)
			t.q[i] = a->q[i] | b->q[i];
		break;
	case ZYDIS_MNEMONIC_PAND:
	case ZYDIS_MNEMONIC_ANDPS:
	case ZYDIS_MNEMONIC_ANDPD:
		for (i = 0; i < 2; i++)
			t.q[i] = a->q[i] & b->q[i];
		break;
	case ZYDIS_MNEMONIC_PANDN:
	case ZYDIS_MNEMONIC_ANDNPS:
	case ZYDIS_MNEMONIC_ANDNPD:
		for (i = 0; i < 2; i++)
			t.q[i] = ~a->q[i] & b->q[i];
		break;
	case ZYDIS_MNEMONIC_XORPD:
		for (i = 0; i < 2; i++)
			t.q[i] = a->q[i] ^ b->q[i];
		break;
	case ZYDIS_MNEMONIC_PADDB:
		for (i = 0; i < 16; i++)
			t.b[i] = (uint8_t)(a->b[i] + b->b[i]);
		break;
	case ZYDIS_MNEMONIC_PADDW:
		for (i = 0; i < 8; i++)
			t.w[i] = (uint16_t)(a->w[i] + b->w[i]);
		break;
	case ZYDIS_MNEMONIC_PADDD:
		for (i = 0; i < 4; i++)
			t.d[i] = a->d[i] + b->d[i];
		break;
	case ZYDIS_MNEMONIC_PADDQ:
		for (i = 0; i < 2; i++)
			t.q[i] = a->q[i] + b->q[i];
		break;
	case ZYDIS_MNEMONIC_PSUBB:
		for (i = 0; i < 16; i++)
			t.b[i] = (uint8_t)(a->b[i] - b->b[i]);
		break;
	case ZYDIS_MNEMONIC_PSUBW:
		for (i = 0; i < 8; i++)
			t.w[i] = (uint16_t)(a->w[i] - b->w[i]);
		break;
	case ZYDIS_MNEMONIC_PSUBD:
		for (i = 0; i < 4; i++)
			t.d[i] = a->d[i] - b->d[i];
		break;
	case ZYDIS_MNEMONIC_PSUBQ:
		for (i = 0; i < 2; i++)
			t.q[i] = a->q[i] - b->q[i];
		break;
	case ZYDIS_MNEMONIC_PADDUSB:
		for (i = 0; i < 16; i++)
			t.b[i] = sat_u8(a->b[i] + b->b[i]);
		break;
	case ZYDIS_MNEMONIC_PADDUSW:
		for (i = 0; i < 8; i++)
			t.w[i] = sat_u16((int32_t)a->w[i] + b->w[i]);
		break;
	case ZYDIS_MNEMONIC_PSUBUSB:
		for (i = 0; i < 16; i++)
			t.b[i] = sat_u8(a->b[i] - b->b[i]);
		break;
	case ZYDIS_MNEMONIC_PSUBUSW:
		for (i = 0; i < 8; i++)
			t.w[i] = sat_u16((int32_t)a->w[i] - b->w[i]);
		break;
	case ZYDIS_MNEMONIC_PADDSB:
		for (i = 0; i < 16; i++)
			t.sb[i] = sat_s8(a->sb[i] + b->sb[i]);
		break;
	case ZYDIS_MNEMONIC_PADDSW:
		for (i = 0; i < 8; i++)
			t.sw[i] = sat_s16((int32_t)a->sw[i] + b->sw[i]);
		break;
	case ZYDIS_MNEMONIC_PSUBSB:
		for (i = 0; i < 16; i++)
			t.sb[i] = sat_s8(a->sb[i] - b->sb[i]);
		break;
	case ZYDIS_MNEMONIC_PSUBSW:
		for (i = 0; i < 8; i++)
			t.sw[i] = sat_s16((int32_t)a->sw[i] - b->sw[i]);
		break;
	case ZYDIS_MNEMONIC_PMINUB:
		for (i = 0; i < 16; i++)
			t.b[i] = a->b[i] < b->b[i] ? a->b[i] : b->b[i];
		break;
	case ZYDIS_MNEMONIC_PMAXUB:
		for (i = 0; i < 16; i++)
			t.b[i] = a->b[i] > b->b[i] ? a->b[i] : b->b[i];
		break;
	case ZYDIS_MNEMONIC_PMINSW:
		for (i = 0; i < 8; i++)
			t.sw[i] = a->sw[i] < b->sw[i] ? a->sw[i] : b->sw[i];
		break;
	case ZYDIS_MNEMONIC_PMAXSW:
		for (i = 0; i < 8; i++)
			t.sw[i] = a->sw[i] > b->sw[i] ? a->sw[i] : b->sw[i];
		break;
	case ZYDIS_MNEMONIC_PAVGB:
		for (i = 0; i < 16; i++)
			t.b[i] = (uint8_t)((a->b[i] + b->b[i] + 1) >> 1);
		break;
	case ZYDIS_MNEMONIC_PAVGW:
		for (i = 0; i < 8; i++)
			t.w[i] = (uint16_t)(((uint32_t)a->w[i] + b->w[i] + 1) >> 1);
		break;
	case ZYDIS_MNEMONIC_PSADBW:
		for (unsigned int h = 0; h < 2; h++) {
			uint64_t sum = 0;

			for (i = 8 * h; i < 8 * h + 8; i++)
				sum += (uint64_t)(a->b[i] > b->b[i] ? a->b[i] - b->b[i]
								    : b->b[i] - a->b[i]);
			t.q[h] = sum;
		}
		break;
	case ZYDIS_MNEMONIC_PMULLW:
		for (i = 0; i < 8; i++)
			t.w[i] = (uint16_t)((uint32_t)a->w[i] * b->w[i]);
		break;
	case ZYDIS_MNEMONIC_PMULHW:
		for (i = 0; i < 8; i++)
			t.w[i] = (uint16_t)((uint32_t)((int32_t)a->sw[i] * b->sw[i]) >> 16);
		break;
	case ZYDIS_MNEMONIC_PMULHUW:
		for (i = 0; i < 8; i++)
			t.w[i] = (uint16_t)(((uint32_t)a->w[i] * b->w[i]) >> 16);
		break;
	case ZYDIS_MNEMONIC_PMULUDQ:
		for (i = 0; i < 2; i++)
			t.q[i] = (uint64_t)a->d[2 * i] * b->d[2 * i];
		break;
	case ZYDIS_MNEMONIC_PMADDWD:
		for (i = 0; i < 4; i++)
			t.d[i] = (uint32_t)((int64_t)a->sw[2 * i] * b->sw[2 * i] +
					    (int64_t)a->sw[2 * i + 1] * b->sw[2 * i + 1]);
		break;
	case ZYDIS_MNEMONIC_PSHUFD:
		for (i = 0; i < 4; i++)
			t.d[i] = b->d[(imm >> (2 * i)) & 3];
		break;
	case ZYDIS_MNEMONIC_PSHUFLW:
		for (i = 0; i < 4; i++)
			t.w[i] = b->w[(imm >> (2 * i)) & 3];
		t.q[1] = b->q[1];
		break;
	case ZYDIS_MNEMONIC_PSHUFHW:
		t.q[0] = b->q[0];
		for (i = 0; i < 4; i++)
			t.w[4 + i] = b->w[4 + ((imm >> (2 * i)) & 3)];
		break;
	case ZYDIS_MNEMONIC_SHUFPS:
		t.d[0] = a->d[imm & 3];
		t.d[1] = a->d[(imm >> 2) & 3];
		t.d[2] = b->d[(imm >> 4) & 3];
		t.d[3] = b->d[(imm >> 6) & 3];
		break;
	case ZYDIS_MNEMONIC_SHUFPD:
		t.q[0] = a->q[imm & 1];
		t.q[1] = b->q[(imm >> 1) & 1];
		break;
	case ZYDIS_MNEMONIC_PUNPCKLBW:
		unpack(&t, a, b, 1, false);
		break;
	case ZYDIS_MNEMONIC_PUNPCKLWD:
		unpack(&t, a, b, 2, false);
		break;
	case ZYDIS_MNEMONIC_PUNPCKLDQ:
	case ZYDIS_MNEMONIC_UNPCKLPS:
		unpack(&t, a, b, 4, false);
		break;
	case ZYDIS_MNEMONIC_PUNPCKLQDQ:
	case ZYDIS_MNEMONIC_UNPCKLPD:
		unpack(&t, a, b, 8, false);
		break;
	case ZYDIS_MNEMONIC_PUNPCKHBW:
		unpack(&t, a, b, 1, true);
		break;
	case ZYDIS_MNEMONIC_PUNPCKHWD:
		unpack(&t, a, b, 2, true);
		break;
	case ZYDIS_MNEMONIC_PUNPCKHDQ:
	case ZYDIS_MNEMONIC_UNPCKHPS:
		unpack(&t, a, b, 4, true);
		break;
	case ZYDIS_MNEMONIC_PUNPCKHQDQ:
	case ZYDIS_MNEMONIC_UNPCKHPD:
		unpack(&t, a, b, 8, true);
		break;
	case ZYDIS_MNEMONIC_PACKSSWB:
		for (i = 0; i < 8; i++) {
			t.sb[i] = sat_s8(a->sw[i]);
			t.sb[8 + i] = sat_s8(b->sw[i]);
		}
		break;
	case ZYDIS_MNEMONIC_PACKUSWB:
		for (i = 0; i < 8; i++) {
			t.b[i] = sat_u8(a->sw[i]);
			t.b[8 + i] = sat_u8(b->sw[i]);
		}
		break;
	case ZYDIS_MNEMONIC_PACKSSDW:
		for (i = 0; i < 4; i++) {
			t.sw[i] = sat_s16(a->sd[i]);
			t.sw[4 + i] = sat_s16(b->sd[i]);
		}
		break;
	/* Shifts by the count in the source's low quadword. */
	case ZYDIS_MNEMONIC_PSLLW:
		shift(&t, a, b->q[0], 16, SHL);
		break;
	case ZYDIS_MNEMONIC_PSLLD:
		shift(&t, a, b->q[0], 32, SHL);
		break;
	case ZYDIS_MNEMONIC_PSLLQ:
		shift(&t, a, b->q[0], 64, SHL);
		break;
	case ZYDIS_MNEMONIC_PSRLW:
		shift(&t, a, b->q[0], 16, SHR);
		break;
	case ZYDIS_MNEMONIC_PSRLD:
		shift(&t, a, b->q[0], 32, SHR);
		break;
	case ZYDIS_MNEMONIC_PSRLQ:
		shift(&t, a, b->q[0], 64, SHR);
		break;
	case ZYDIS_MNEMONIC_PSRAW:
		shift(&t, a, b->q[0], 16, SAR);
		break;
	case ZYDIS_MNEMONIC_PSRAD:
		shift(&t, a, b->q[0], 32, SAR);
		break;
	/* Byte shifts of the whole register (imm8 only). */
	case ZYDIS_MNEMONIC_PSLLDQ:
		for (i = 0; i < 16; i++)
			t.b[i] = imm <= i ? a->b[i - imm] : 0;
		break;
	case ZYDIS_MNEMONIC_PSRLDQ:
		for (i = 0; i < 16; i++)
			t.b[i] = i + imm < 16 ? a->b[i + imm] : 0;
		break;
	default:
		return false;
	}
	*r = t;
	return true;
}

/* op xmm, xmm/m128 [, imm8], and the shifts' op xmm, imm8. */
static int packed_int(struct emu_ctx *ctx)
{
	const ZydisDecodedOperand *dst = &ctx->ops[0], *src = &ctx->ops[1];
	unsigned int n = ctx->insn.operand_count_visible;
	union xmm a, b = {0}, r;
	unsigned int imm = 0;
	int ret;

	if (!is_xmm(dst))
		return emu_unsupported(ctx, "%s form", ctx->res->mnemonic);
	if (src->type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
		/* psllw/d/q, psrlw/d/q, psraw/d, pslldq, psrldq xmm, imm8 */
		imm = (unsigned int)(src->imm.value.u & 0xff);
		b.q[0] = imm;
		ret = EMU_OK;
	} else {
		if (n == 3 && ctx->ops[2].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
			imm = (unsigned int)(ctx->ops[2].imm.value.u & 0xff);
		ret = read_src(ctx, src, &b);
	}
	if (!ret)
		ret = read_xmm(ctx, dst, &a);
	if (ret)
		return ret;
	if (!int_op(ctx->insn.mnemonic, &r, &a, &b, imm))
		return emu_unsupported(ctx, "mvm does not emulate %s", ctx->res->mnemonic);
	return write_xmm(ctx, dst, &r);
}

/* pmovmskb, movmskps, movmskpd r32/r64, xmm: the elements' sign bits, zero-extended. */
static int movemask(struct emu_ctx *ctx)
{
	union xmm s;
	uint64_t mask = 0;
	int ret;

	if (!is_xmm(&ctx->ops[1]))
		return emu_unsupported(ctx, "%s form", ctx->res->mnemonic);
	ret = read_xmm(ctx, &ctx->ops[1], &s);
	if (ret)
		return ret;
	switch (ctx->insn.mnemonic) {
	case ZYDIS_MNEMONIC_PMOVMSKB:
		for (unsigned int i = 0; i < 16; i++)
			mask |= (uint64_t)(s.b[i] >> 7) << i;
		break;
	case ZYDIS_MNEMONIC_MOVMSKPS:
		for (unsigned int i = 0; i < 4; i++)
			mask |= (uint64_t)(s.d[i] >> 31) << i;
		break;
	default:
		for (unsigned int i = 0; i < 2; i++)
			mask |= (s.q[i] >> 63) << i;
		break;
	}
	return emu_op_write(ctx, &ctx->ops[0], mask);
}

/* pextrw r32/r64, xmm, imm8 and pinsrw xmm, r32/m16, imm8. */
static int word_insert_extract(struct emu_ctx *ctx)
{
	unsigned int idx = (unsigned int)(ctx->ops[2].imm.value.u & 7);
	union xmm v;
	uint64_t w;
	int ret;

	if (ctx->insn.mnemonic == ZYDIS_MNEMONIC_PEXTRW) {
		if (!is_xmm(&ctx->ops[1]) || ctx->ops[0].type != ZYDIS_OPERAND_TYPE_REGISTER)
			return emu_unsupported(ctx, "%s form", ctx->res->mnemonic);
		ret = read_xmm(ctx, &ctx->ops[1], &v);
		return ret ? ret : emu_op_write(ctx, &ctx->ops[0], v.w[idx]);
	}
	if (!is_xmm(&ctx->ops[0]))
		return emu_unsupported(ctx, "%s form", ctx->res->mnemonic);
	ret = emu_op_read(ctx, &ctx->ops[1], &w);
	if (!ret)
		ret = read_xmm(ctx, &ctx->ops[0], &v);
	if (ret)
		return ret;
	v.w[idx] = (uint16_t)w;
	return write_xmm(ctx, &ctx->ops[0], &v);
}

/* movss, movsd (the SSE2 one), movlps/movlpd, movhps/movhpd, movhlps, movlhps. */
static int partial_move(struct emu_ctx *ctx)
{
	const ZydisDecodedOperand *dst = &ctx->ops[0], *src = &ctx->ops[1];
	ZydisMnemonic m = ctx->insn.mnemonic;
	bool high = m == ZYDIS_MNEMONIC_MOVHPS || m == ZYDIS_MNEMONIC_MOVHPD;
	uint32_t bytes = m == ZYDIS_MNEMONIC_MOVSS ? 4 : 8;
	union xmm d, s;
	int ret;

	if (!is_xmm(dst)) {
		/* Store: the low element, or the high quadword for movhps/movhpd. */
		if (dst->type != ZYDIS_OPERAND_TYPE_MEMORY || !is_xmm(src))
			return emu_unsupported(ctx, "%s form", ctx->res->mnemonic);
		ret = read_xmm(ctx, src, &s);
		return ret ? ret : emu_op_write_vec(ctx, dst, s.b + (high ? 8 : 0), bytes, false);
	}
	if (src->type == ZYDIS_OPERAND_TYPE_MEMORY) {
		ret = read_xmm(ctx, dst, &d);
		if (!ret)
			ret = emu_op_read_vec(ctx, src, &s, bytes);
		if (ret)
			return ret;
		if (m == ZYDIS_MNEMONIC_MOVSS || m == ZYDIS_MNEMONIC_MOVSD) {
			/* A load zeroes the rest of the register. */
			memset(d.b, 0, 16);
			memcpy(d.b, s.b, bytes);
		} else {
			memcpy(d.b + (high ? 8 : 0), s.b, 8);
		}
		return write_xmm(ctx, dst, &d);
	}
	if (!is_xmm(src))
		return emu_unsupported(ctx, "%s form", ctx->res->mnemonic);
	ret = read_xmm(ctx, dst, &d);
	if (!ret)
		ret = read_xmm(ctx, src, &s);
	if (ret)
		return ret;
	switch (m) {
	case ZYDIS_MNEMONIC_MOVSS:
		d.d[0] = s.d[0];
		break;
	case ZYDIS_MNEMONIC_MOVSD:
		d.q[0] = s.q[0];
		break;
	case ZYDIS_MNEMONIC_MOVHLPS:
		d.q[0] = s.q[1];
		break;
	case ZYDIS_MNEMONIC_MOVLHPS:
		d.q[1] = s.q[0];
		break;
	default:
		return emu_unsupported(ctx, "%s form", ctx->res->mnemonic);
	}
	return write_xmm(ctx, dst, &d);
}

/* --- floating point --- */

/* The guest's MXCSR and the flags an instruction raises. */
struct fp {
	uint32_t mxcsr;
	uint32_t flags;
};

static uint32_t get_mxcsr(const struct emu_ctx *ctx)
{
	uint32_t v;

	memcpy(&v, ctx->cpu->xsave + XSAVE_MXCSR, 4);
	return v;
}

static void fp_commit(struct emu_ctx *ctx, const struct fp *f)
{
	uint32_t v = get_mxcsr(ctx);

	if ((v | f->flags) != v) {
		v |= f->flags;
		memcpy(ctx->cpu->xsave + XSAVE_MXCSR, &v, 4);
		emu_xsave_touch(ctx, XFEATURE_SSE);
	}
}

/* The host MXCSR bits this CPU accepts (DAZ is optional, SDM Vol. 1 11.6.6). */
static uint32_t host_mxcsr_mask(void)
{
	static uint32_t mask;

	if (!mask) {
		_Alignas(16) uint8_t area[512];
		uint32_t m;

		memset(area, 0, sizeof(area));
		__asm__ __volatile__("fxsave %0" : "=m"(area));
		memcpy(&m, area + XSAVE_MXCSR_MASK, 4);
		mask = m ? m : 0xffbf;
	}
	return mask;
}

/* Brackets a host computation: loads the guest's rounding control, FTZ (which applies only with
 * underflow masked) and DAZ with every exception masked and the flags clear; host_leave()
 * restores the host's MXCSR and returns the flags raised. The "memory" clobbers keep the
 * volatile operands' loads and the result's store between the two. */
static uint32_t host_enter(const struct fp *f)
{
	uint32_t saved, m = (f->mxcsr & (MX_RC | MX_FTZ | MX_DAZ)) | MX_MASKS;

	if (!(f->mxcsr & MX_UM))
		m &= ~MX_FTZ;
	m &= host_mxcsr_mask();
	__asm__ __volatile__("stmxcsr %0" : "=m"(saved) : : "memory");
	__asm__ __volatile__("ldmxcsr %0" : : "m"(m) : "memory");
	return saved;
}

static uint32_t host_leave(uint32_t saved)
{
	uint32_t now;

	__asm__ __volatile__("stmxcsr %0" : "=m"(now) : : "memory");
	__asm__ __volatile__("ldmxcsr %0" : : "m"(saved) : "memory");
	return now & MX_FLAGS;
}

/* Element formats, by bit pattern: double (dbl) or single. */
static uint64_t fsign(bool dbl)
{
	return dbl ? 1ull << 63 : 1ull << 31;
}

static uint64_t fexp(bool dbl)
{
	return dbl ? 0x7ff0000000000000ull : 0x7f800000ull;
}

static uint64_t fquiet(bool dbl)
{
	return dbl ? 1ull << 51 : 1ull << 22;
}

static bool is_nan(bool dbl, uint64_t x)
{
	return (x & ~fsign(dbl)) > fexp(dbl);
}

static bool is_snan(bool dbl, uint64_t x)
{
	return is_nan(dbl, x) && !(x & fquiet(dbl));
}

static bool is_denormal(bool dbl, uint64_t x)
{
	return !(x & fexp(dbl)) && (x & (fquiet(dbl) * 2 - 1));
}

static double to_double(bool dbl, uint64_t x)
{
	double d;
	float s;
	uint32_t x32 = (uint32_t)x;

	if (dbl) {
		memcpy(&d, &x, 8);
		return d;
	}
	memcpy(&s, &x32, 4);
	return s; /* exact (and never a NaN here: callers deal with those first) */
}

/* An operand of the operations computed here (not on the host): DAZ makes a denormal a zero of
 * its sign; without it a denormal raises DE. */
static uint64_t operand(struct fp *f, bool dbl, uint64_t x)
{
	if (!is_denormal(dbl, x))
		return x;
	if (f->mxcsr & MX_DAZ)
		return x & fsign(dbl);
	f->flags |= MX_DE;
	return x;
}

enum fp_op { F_ADD, F_SUB, F_MUL, F_DIV, F_SQRT, F_MIN, F_MAX };

/* One element of addps...sqrtsd, minps...maxsd: (a) the first source (the destination), (b)
 * the second. */
static uint64_t fp_arith(struct fp *f, bool dbl, enum fp_op op, uint64_t a, uint64_t b)
{
	uint64_t out = 0;
	uint32_t saved;

	if (op == F_MIN || op == F_MAX) {
		/* The second operand unless the first is strictly less (min) or greater (max):
		 * so for a NaN in either and for two zeros (SDM MINSD/MAXSD). Any NaN is invalid
		 * (and then no DE); DAZ flushes what comes back too. */
		double x, y;

		if (is_nan(dbl, a) || is_nan(dbl, b)) {
			f->flags |= MX_IE;
			if (is_denormal(dbl, b) && (f->mxcsr & MX_DAZ))
				b &= fsign(dbl);
			return b;
		}
		a = operand(f, dbl, a);
		b = operand(f, dbl, b);
		x = to_double(dbl, a);
		y = to_double(dbl, b);
		return (op == F_MIN ? x < y : x > y) ? a : b;
	}
	if (dbl) {
		volatile double x, y, r;
		double t;

		memcpy(&t, &a, 8);
		x = t;
		memcpy(&t, &b, 8);
		y = t;
		saved = host_enter(f);
		switch (op) {
		case F_ADD:
			r = x + y;
			break;
		case F_SUB:
			r = x - y;
			break;
		case F_MUL:
			r = x * y;
			break;
		case F_DIV:
			r = x / y;
			break;
		default:
			t = y;
			__asm__("sqrtsd %1, %0" : "=x"(t) : "x"(t));
			r = t;
			break;
		}
		f->flags |= host_leave(saved);
		t = r;
		memcpy(&out, &t, 8);
	} else {
		volatile float x, y, r;
		float t;
		uint32_t a32 = (uint32_t)a, b32 = (uint32_t)b, o32;

		memcpy(&t, &a32, 4);
		x = t;
		memcpy(&t, &b32, 4);
		y = t;
		saved = host_enter(f);
		switch (op) {
		case F_ADD:
			r = x + y;
			break;
		case F_SUB:
			r = x - y;
			break;
		case F_MUL:
			r = x * y;
			break;
		case F_DIV:
			r = x / y;
			break;
		default:
			t = y;
			__asm__("sqrtss %1, %0" : "=x"(t) : "x"(t));
			r = t;
			break;
		}
		f->flags |= host_leave(saved);
		t = r;
		memcpy(&o32, &t, 4);
		out = o32;
	}
	/* NaN operands: the first source's if it is one, else the second's, made quiet. */
	if (op != F_SQRT && (is_nan(dbl, a) || is_nan(dbl, b)))
		out = (is_nan(dbl, a) ? a : b) | fquiet(dbl);
	return out;
}

/* cmpps...cmpsd predicate (imm8 bits 2:0; legacy SSE ignores the others): all ones if true. LT,
 * LE, NLT and NLE signal on any NaN, the others on signalling NaNs. */
static uint64_t fp_compare(struct fp *f, bool dbl, unsigned int pred, uint64_t a, uint64_t b)
{
	bool unordered = is_nan(dbl, a) || is_nan(dbl, b), res;
	bool signalling = pred == 1 || pred == 2 || pred == 5 || pred == 6;
	double x, y;

	if (unordered) {
		if (signalling || is_snan(dbl, a) || is_snan(dbl, b))
			f->flags |= MX_IE;
		res = pred == 3 || pred == 4 || pred == 5 || pred == 6;
	} else {
		x = to_double(dbl, operand(f, dbl, a));
		y = to_double(dbl, operand(f, dbl, b));
		switch (pred & 7) {
		case 0:
			res = x == y;
			break;
		case 1:
			res = x < y;
			break;
		case 2:
			res = x <= y;
			break;
		case 3:
			res = false;
			break;
		case 4:
			res = x != y;
			break;
		case 5:
			res = !(x < y);
			break;
		case 6:
			res = !(x <= y);
			break;
		default:
			res = true;
			break;
		}
	}
	return res ? (dbl ? ~0ull : 0xffffffffull) : 0;
}

/* Rounds (v), finite, to an integer: MXCSR.RC, or toward zero (trunc). */
static double round_int(double v, unsigned int rc)
{
	double t = trunc(v), frac = v - t;

	switch (rc) {
	case 1:
		return floor(v);
	case 2:
		return ceil(v);
	case 3:
		return t;
	default:
		if (fabs(frac) > 0.5 || (fabs(frac) == 0.5 && fmod(t, 2.0) != 0))
			t += v < 0 ? -1.0 : 1.0;
		return t;
	}
}

/* cvt(t)ss2si, cvt(t)sd2si, cvt(t)ps2dq, cvt(t)pd2dq: to a (bits)-bit integer; a NaN or a value
 * out of range is invalid and gives the integer indefinite (the most negative). */
static uint64_t fp_to_int(struct fp *f, bool dbl, uint64_t x, bool trunc_, unsigned int bits)
{
	uint64_t indefinite = 1ull << (bits - 1);
	double lim = bits == 64 ? 0x1p63 : 0x1p31, v, r;

	if (is_nan(dbl, x)) {
		f->flags |= MX_IE;
		return indefinite;
	}
	if (is_denormal(dbl, x) && (f->mxcsr & MX_DAZ))
		x &= fsign(dbl);
	v = to_double(dbl, x);
	r = round_int(v, trunc_ ? 3 : (f->mxcsr & MX_RC) >> MX_RC_SHIFT);
	if (!(r >= -lim && r < lim)) {
		f->flags |= MX_IE;
		return indefinite;
	}
	if (r != v)
		f->flags |= MX_PE;
	return (uint64_t)(int64_t)r & emu_mask(bits);
}

/* Conversions on the host: double <-> single (with NaN quieting, rounding, overflow...), and
 * from 32- or 64-bit integers. */
enum cvt_kind { C_D2S, C_S2D, C_I2D, C_I2S };

static uint64_t fp_convert(struct fp *f, enum cvt_kind kind, uint64_t x, unsigned int ibits)
{
	uint64_t out = 0;
	uint32_t saved, x32 = (uint32_t)x, o32;
	int64_t i = ibits == 64 ? (int64_t)x : (int32_t)x32;
	volatile double vd;
	volatile float vs;
	volatile int64_t vi = i;
	double d;
	float s;

	switch (kind) {
	case C_D2S:
		memcpy(&d, &x, 8);
		vd = d;
		saved = host_enter(f);
		vs = (float)vd;
		f->flags |= host_leave(saved);
		s = vs;
		memcpy(&o32, &s, 4);
		out = o32;
		break;
	case C_S2D:
		memcpy(&s, &x32, 4);
		vs = s;
		saved = host_enter(f);
		vd = (double)vs;
		f->flags |= host_leave(saved);
		d = vd;
		memcpy(&out, &d, 8);
		break;
	case C_I2D:
		saved = host_enter(f);
		vd = (double)vi;
		f->flags |= host_leave(saved);
		d = vd;
		memcpy(&out, &d, 8);
		break;
	default:
		saved = host_enter(f);
		vs = (float)vi;
		f->flags |= host_leave(saved);
		s = vs;
		memcpy(&o32, &s, 4);
		out = o32;
		break;
	}
	return out;
}

static uint64_t lane(const union xmm *v, bool dbl, unsigned int i)
{
	return dbl ? v->q[i] : v->d[i];
}

static void set_lane(union xmm *v, bool dbl, unsigned int i, uint64_t x)
{
	if (dbl)
		v->q[i] = x;
	else
		v->d[i] = (uint32_t)x;
}

/* addps/pd/ss/sd ... sqrt, min, max, cmp: packed (all lanes) or scalar (the lowest; the others
 * stay from the destination). */
static int fp_vector(struct emu_ctx *ctx, enum fp_op op, bool dbl, bool scalar, bool cmp)
{
	const ZydisDecodedOperand *dst = &ctx->ops[0], *src = &ctx->ops[1];
	struct fp f = {.mxcsr = get_mxcsr(ctx)};
	unsigned int lanes = scalar ? 1 : dbl ? 2 : 4, pred = 0;
	union xmm a, b;
	int ret;

	if (!is_xmm(dst))
		return emu_unsupported(ctx, "%s form", ctx->res->mnemonic);
	if (cmp)
		pred = (unsigned int)(ctx->ops[2].imm.value.u & 7);
	ret = read_src(ctx, src, &b);
	if (!ret)
		ret = read_xmm(ctx, dst, &a);
	if (ret)
		return ret;
	for (unsigned int i = 0; i < lanes; i++) {
		uint64_t x = lane(&a, dbl, i), y = lane(&b, dbl, i);

		set_lane(&a, dbl, i,
			 cmp ? fp_compare(&f, dbl, pred, x, y) : fp_arith(&f, dbl, op, x, y));
	}
	ret = write_xmm(ctx, dst, &a);
	if (!ret)
		fp_commit(ctx, &f);
	return ret;
}

/* comiss, comisd, ucomiss, ucomisd: ZF PF CF = 111 unordered, 000 greater, 001 less, 100
 * equal; OF SF AF cleared. comis signals on any NaN, ucomis on signalling ones. */
static int fp_comis(struct emu_ctx *ctx, bool dbl, bool signalling)
{
	struct fp f = {.mxcsr = get_mxcsr(ctx)};
	union xmm a, b;
	uint64_t x, y, fl;
	int ret;

	if (!is_xmm(&ctx->ops[0]))
		return emu_unsupported(ctx, "%s form", ctx->res->mnemonic);
	ret = read_src(ctx, &ctx->ops[1], &b);
	if (!ret)
		ret = read_xmm(ctx, &ctx->ops[0], &a);
	if (ret)
		return ret;
	x = lane(&a, dbl, 0);
	y = lane(&b, dbl, 0);
	if (is_nan(dbl, x) || is_nan(dbl, y)) {
		if (signalling || is_snan(dbl, x) || is_snan(dbl, y))
			f.flags |= MX_IE;
		fl = RF_ZF | RF_PF | RF_CF;
	} else {
		double p = to_double(dbl, operand(&f, dbl, x));
		double q = to_double(dbl, operand(&f, dbl, y));

		fl = p > q ? 0 : p < q ? RF_CF : RF_ZF;
	}
	ctx->cpu->rflags = (ctx->cpu->rflags & ~RF_ARITH) | fl;
	fp_commit(ctx, &f);
	return EMU_OK;
}

/* Conversions. */
static int fp_cvt(struct emu_ctx *ctx)
{
	const ZydisDecodedOperand *dst = &ctx->ops[0], *src = &ctx->ops[1];
	struct fp f = {.mxcsr = get_mxcsr(ctx)};
	union xmm d = {0}, s;
	uint64_t v;
	bool trunc_ = false;
	int ret;

	switch (ctx->insn.mnemonic) {
	case ZYDIS_MNEMONIC_CVTTSD2SI:
	case ZYDIS_MNEMONIC_CVTTSS2SI:
		trunc_ = true;
		/* fall through */
	case ZYDIS_MNEMONIC_CVTSD2SI:
	case ZYDIS_MNEMONIC_CVTSS2SI: {
		bool dbl = ctx->insn.mnemonic == ZYDIS_MNEMONIC_CVTSD2SI ||
			   ctx->insn.mnemonic == ZYDIS_MNEMONIC_CVTTSD2SI;
		unsigned int bits = dst->size == 64 ? 64 : 32;

		if (dst->type != ZYDIS_OPERAND_TYPE_REGISTER)
			return emu_unsupported(ctx, "%s form", ctx->res->mnemonic);
		ret = read_src(ctx, src, &s);
		if (ret)
			return ret;
		v = fp_to_int(&f, dbl, lane(&s, dbl, 0), trunc_, bits);
		ret = emu_op_write(ctx, dst, v);
		if (!ret)
			fp_commit(ctx, &f);
		return ret;
	}
	default:
		break;
	}
	if (!is_xmm(dst))
		return emu_unsupported(ctx, "%s form", ctx->res->mnemonic);
	ret = read_xmm(ctx, dst, &d);
	if (ret)
		return ret;
	switch (ctx->insn.mnemonic) {
	case ZYDIS_MNEMONIC_CVTSI2SD:
	case ZYDIS_MNEMONIC_CVTSI2SS:
		ret = emu_op_read(ctx, src, &v);
		if (ret)
			return ret;
		v = fp_convert(&f, ctx->insn.mnemonic == ZYDIS_MNEMONIC_CVTSI2SD ? C_I2D : C_I2S, v,
			       src->size == 64 ? 64 : 32);
		set_lane(&d, ctx->insn.mnemonic == ZYDIS_MNEMONIC_CVTSI2SD, 0, v);
		break;
	default:
		ret = read_src(ctx, src, &s);
		if (ret)
			return ret;
		switch (ctx->insn.mnemonic) {
		case ZYDIS_MNEMONIC_CVTSS2SD:
			d.q[0] = fp_convert(&f, C_S2D, s.d[0], 0);
			break;
		case ZYDIS_MNEMONIC_CVTSD2SS:
			d.d[0] = (uint32_t)fp_convert(&f, C_D2S, s.q[0], 0);
			break;
		case ZYDIS_MNEMONIC_CVTPS2PD:
			for (unsigned int i = 0; i < 2; i++)
				d.q[i] = fp_convert(&f, C_S2D, s.d[i], 0);
			break;
		case ZYDIS_MNEMONIC_CVTPD2PS:
			for (unsigned int i = 0; i < 2; i++)
				d.d[i] = (uint32_t)fp_convert(&f, C_D2S, s.q[i], 0);
			d.q[1] = 0;
			break;
		case ZYDIS_MNEMONIC_CVTDQ2PS:
			for (unsigned int i = 0; i < 4; i++)
				d.d[i] = (uint32_t)fp_convert(&f, C_I2S, s.d[i], 32);
			break;
		case ZYDIS_MNEMONIC_CVTDQ2PD:
			for (unsigned int i = 0; i < 2; i++)
				d.q[i] = fp_convert(&f, C_I2D, s.d[i], 32);
			break;
		case ZYDIS_MNEMONIC_CVTTPS2DQ:
			trunc_ = true;
			/* fall through */
		case ZYDIS_MNEMONIC_CVTPS2DQ:
			for (unsigned int i = 0; i < 4; i++)
				d.d[i] = (uint32_t)fp_to_int(&f, false, s.d[i], trunc_, 32);
			break;
		case ZYDIS_MNEMONIC_CVTTPD2DQ:
			trunc_ = true;
			/* fall through */
		case ZYDIS_MNEMONIC_CVTPD2DQ:
			for (unsigned int i = 0; i < 2; i++)
				d.d[i] = (uint32_t)fp_to_int(&f, true, s.q[i], trunc_, 32);
			d.q[1] = 0;
			break;
		default:
			return emu_unsupported(ctx, "mvm does not emulate %s", ctx->res->mnemonic);
		}
		break;
	}
	ret = write_xmm(ctx, dst, &d);
	if (!ret)
		fp_commit(ctx, &f);
	return ret;
}

/* The floating-point arithmetic and compare instructions: operation, double (else single),
 * scalar (else packed), compare (imm8 predicate). */
static const struct fp_insn {
	ZydisMnemonic m;
	uint8_t op, dbl, scalar, cmp;
} fp_insns[] = {
	{ZYDIS_MNEMONIC_ADDSS, F_ADD, 0, 1, 0},	  {ZYDIS_MNEMONIC_ADDSD, F_ADD, 1, 1, 0},
	{ZYDIS_MNEMONIC_ADDPS, F_ADD, 0, 0, 0},	  {ZYDIS_MNEMONIC_ADDPD, F_ADD, 1, 0, 0},
	{ZYDIS_MNEMONIC_SUBSS, F_SUB, 0, 1, 0},	  {ZYDIS_MNEMONIC_SUBSD, F_SUB, 1, 1, 0},
	{ZYDIS_MNEMONIC_SUBPS, F_SUB, 0, 0, 0},	  {ZYDIS_MNEMONIC_SUBPD, F_SUB, 1, 0, 0},
	{ZYDIS_MNEMONIC_MULSS, F_MUL, 0, 1, 0},	  {ZYDIS_MNEMONIC_MULSD, F_MUL, 1, 1, 0},
	{ZYDIS_MNEMONIC_MULPS, F_MUL, 0, 0, 0},	  {ZYDIS_MNEMONIC_MULPD, F_MUL, 1, 0, 0},
	{ZYDIS_MNEMONIC_DIVSS, F_DIV, 0, 1, 0},	  {ZYDIS_MNEMONIC_DIVSD, F_DIV, 1, 1, 0},
	{ZYDIS_MNEMONIC_DIVPS, F_DIV, 0, 0, 0},	  {ZYDIS_MNEMONIC_DIVPD, F_DIV, 1, 0, 0},
	{ZYDIS_MNEMONIC_SQRTSS, F_SQRT, 0, 1, 0}, {ZYDIS_MNEMONIC_SQRTSD, F_SQRT, 1, 1, 0},
	{ZYDIS_MNEMONIC_SQRTPS, F_SQRT, 0, 0, 0}, {ZYDIS_MNEMONIC_SQRTPD, F_SQRT, 1, 0, 0},
	{ZYDIS_MNEMONIC_MINSS, F_MIN, 0, 1, 0},	  {ZYDIS_MNEMONIC_MINSD, F_MIN, 1, 1, 0},
	{ZYDIS_MNEMONIC_MINPS, F_MIN, 0, 0, 0},	  {ZYDIS_MNEMONIC_MINPD, F_MIN, 1, 0, 0},
	{ZYDIS_MNEMONIC_MAXSS, F_MAX, 0, 1, 0},	  {ZYDIS_MNEMONIC_MAXSD, F_MAX, 1, 1, 0},
	{ZYDIS_MNEMONIC_MAXPS, F_MAX, 0, 0, 0},	  {ZYDIS_MNEMONIC_MAXPD, F_MAX, 1, 0, 0},
	{ZYDIS_MNEMONIC_CMPSS, F_ADD, 0, 1, 1},	  {ZYDIS_MNEMONIC_CMPSD, F_ADD, 1, 1, 1},
	{ZYDIS_MNEMONIC_CMPPS, F_ADD, 0, 0, 1},	  {ZYDIS_MNEMONIC_CMPPD, F_ADD, 1, 0, 1},
};

int emu_exec_sse2(struct emu_ctx *ctx)
{
	ZydisMnemonic m = ctx->insn.mnemonic;
	int ret;

	/* The string movsd/cmpsd, MMX registers, and later extensions' forms: not these. */
	if (ctx->insn.meta.isa_ext != ZYDIS_ISA_EXT_SSE &&
	    ctx->insn.meta.isa_ext != ZYDIS_ISA_EXT_SSE2)
		return emu_unsupported(ctx, "mvm does not emulate %s (%s)", ctx->res->mnemonic,
				       ZydisISAExtGetString(ctx->insn.meta.isa_ext));
	for (unsigned int i = 0; i < ctx->insn.operand_count_visible; i++)
		if (ctx->ops[i].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ZydisRegisterGetClass(ctx->ops[i].reg.value) == ZYDIS_REGCLASS_MMX)
			return emu_unsupported(ctx, "%s on MMX registers", ctx->res->mnemonic);
	ret = availability(ctx);
	if (ret)
		return ret;
	switch (m) {
	case ZYDIS_MNEMONIC_PMOVMSKB:
	case ZYDIS_MNEMONIC_MOVMSKPS:
	case ZYDIS_MNEMONIC_MOVMSKPD:
		return movemask(ctx);
	case ZYDIS_MNEMONIC_PEXTRW:
	case ZYDIS_MNEMONIC_PINSRW:
		return word_insert_extract(ctx);
	case ZYDIS_MNEMONIC_MOVSS:
	case ZYDIS_MNEMONIC_MOVSD:
	case ZYDIS_MNEMONIC_MOVLPS:
	case ZYDIS_MNEMONIC_MOVLPD:
	case ZYDIS_MNEMONIC_MOVHPS:
	case ZYDIS_MNEMONIC_MOVHPD:
	case ZYDIS_MNEMONIC_MOVHLPS:
	case ZYDIS_MNEMONIC_MOVLHPS:
		return partial_move(ctx);
	case ZYDIS_MNEMONIC_COMISS:
		return fp_comis(ctx, false, true);
	case ZYDIS_MNEMONIC_COMISD:
		return fp_comis(ctx, true, true);
	case ZYDIS_MNEMONIC_UCOMISS:
		return fp_comis(ctx, false, false);
	case ZYDIS_MNEMONIC_UCOMISD:
		return fp_comis(ctx, true, false);
	case ZYDIS_MNEMONIC_CVTSI2SD:
	case ZYDIS_MNEMONIC_CVTSI2SS:
	case ZYDIS_MNEMONIC_CVTTSD2SI:
	case ZYDIS_MNEMONIC_CVTSD2SI:
	case ZYDIS_MNEMONIC_CVTTSS2SI:
	case ZYDIS_MNEMONIC_CVTSS2SI:
	case ZYDIS_MNEMONIC_CVTSS2SD:
	case ZYDIS_MNEMONIC_CVTSD2SS:
	case ZYDIS_MNEMONIC_CVTPS2PD:
	case ZYDIS_MNEMONIC_CVTPD2PS:
	case ZYDIS_MNEMONIC_CVTDQ2PS:
	case ZYDIS_MNEMONIC_CVTDQ2PD:
	case ZYDIS_MNEMONIC_CVTPS2DQ:
	case ZYDIS_MNEMONIC_CVTTPS2DQ:
	case ZYDIS_MNEMONIC_CVTPD2DQ:
	case ZYDIS_MNEMONIC_CVTTPD2DQ:
		return fp_cvt(ctx);
	default:
		for (size_t i = 0; i < sizeof(fp_insns) / sizeof(fp_insns[0]); i++)
			if (fp_insns[i].m == m)
				return fp_vector(ctx, (enum fp_op)fp_insns[i].op, fp_insns[i].dbl,
						 fp_insns[i].scalar, fp_insns[i].cmp);
		return packed_int(ctx);
	}
}
