/* op_alu.c: integer arithmetic and logic uops with lazy flags: add/adc/sub/sbb/and/or/xor/
 * cmp/test, inc/dec/neg/not, mul/imul/div/idiv, shifts and rotates, shld/shrd, bt*, bit scans,
 * xadd, cmpxchg, and the flag instructions (SDM Vol. 2; flags per Vol. 1 Appendix A). */
#include "uop_internal.h"

/* The binary operations: dst = dst op src, flags from the operation. */
static inline int binop(struct emu_vcpu *v, const struct emu_uop *u, enum emu_cc_op op,
			bool write)
{
	uint64_t a, b, r, la = 0, m = size_mask(u->osz);
	bool cin = false;
	int ret = src_get(v, u, &b);

	if (ret)
		return ret;
	ret = dst_get(v, u, &a, &la, write);
	if (ret)
		return ret;
	switch (op) {
	case CC_ADD: r = a + b; break;
	case CC_ADC: cin = emu_cf_fast(v); r = a + b + cin; break;
	case CC_SUB: r = a - b; break;
	case CC_SBB: cin = emu_cf_fast(v); r = a - b - cin; break;
	default: r = 0; break;
	}
	r &= m;
	if (write) {
		ret = dst_put(v, u, la, r);
		if (ret)
			return ret;
	}
	cc_set(v, op, u->osz, a, b & m, r);
	v->cc.carry_in = cin;
	return EXIT_NEXT;
}

static inline int logic(struct emu_vcpu *v, const struct emu_uop *u, int kind, bool write)
{
	uint64_t a, b, r, la = 0;
	int ret = src_get(v, u, &b);

	if (ret)
		return ret;
	ret = dst_get(v, u, &a, &la, write);
	if (ret)
		return ret;
	r = kind == 0 ? a & b : kind == 1 ? a | b : a ^ b;
	r &= size_mask(u->osz);
	if (write) {
		ret = dst_put(v, u, la, r);
		if (ret)
			return ret;
	}
	cc_set(v, CC_LOGIC, u->osz, 0, 0, r);
	return EXIT_NEXT;
}

UOP_DEF(add) { return binop(v, u, CC_ADD, true); }
UOP_DEF(adc) { return binop(v, u, CC_ADC, true); }
UOP_DEF(sub) { return binop(v, u, CC_SUB, true); }
UOP_DEF(sbb) { return binop(v, u, CC_SBB, true); }
UOP_DEF(cmp) { return binop(v, u, CC_SUB, false); }
UOP_DEF(and) { return logic(v, u, 0, true); }
UOP_DEF(or) { return logic(v, u, 1, true); }
UOP_DEF(xor) { return logic(v, u, 2, true); }
UOP_DEF(test) { return logic(v, u, 0, false); }

/* Register-register and register-immediate forms of the common operations: no operand-kind
 * tests, and the 64-bit ones without the operand-size switch. (src) is the second operand. */
#define ALU_REG_FORMS(name, expr, ccop, write)                                                  \
	UOP_DEF(name##_rr)                                                                      \
	{                                                                                       \
		uint64_t a = reg_get(v, u->reg, u->osz), b = reg_get(v, u->rm, u->osz);         \
		uint64_t r = (expr) & size_mask(u->osz);                                        \
		if (write)                                                                      \
			reg_set(v, u->reg, u->osz, r);                                          \
		cc_set(v, ccop, u->osz, a, b, r);                                               \
		return EXIT_NEXT;                                                               \
	}                                                                                       \
	UOP_DEF(name##_ri)                                                                      \
	{                                                                                       \
		uint64_t a = reg_get(v, u->reg, u->osz), b = u->imm;                            \
		uint64_t r = (expr) & size_mask(u->osz);                                        \
		if (write)                                                                      \
			reg_set(v, u->reg, u->osz, r);                                          \
		cc_set(v, ccop, u->osz, a, b, r);                                               \
		return EXIT_NEXT;                                                               \
	}                                                                                       \
	UOP_DEF(name##_rr64)                                                                      \
	{                                                                                       \
		uint64_t a = v->cpu.gpr[u->reg], b = v->cpu.gpr[u->rm], r = (expr);              \
		if (write)                                                                      \
			v->cpu.gpr[u->reg] = r;                                                 \
		cc_set(v, ccop, 8, a, b, r);                                                    \
		return EXIT_NEXT;                                                               \
	}                                                                                       \
	UOP_DEF(name##_ri64)                                                                      \
	{                                                                                       \
		uint64_t a = v->cpu.gpr[u->reg], b = u->imm, r = (expr);                         \
		if (write)                                                                      \
			v->cpu.gpr[u->reg] = r;                                                 \
		cc_set(v, ccop, 8, a, b, r);                                                    \
		return EXIT_NEXT;                                                               \
	}

/* Logic results keep the lazy-flag operands at zero: only the result matters (CC_LOGIC). */
ALU_REG_FORMS(add, a + b, CC_ADD, true)
ALU_REG_FORMS(sub, a - b, CC_SUB, true)
ALU_REG_FORMS(cmp, a - b, CC_SUB, false)
ALU_REG_FORMS(and, a & b, CC_LOGIC, true)
ALU_REG_FORMS(or, a | b, CC_LOGIC, true)
ALU_REG_FORMS(xor, a ^ b, CC_LOGIC, true)
ALU_REG_FORMS(test, a & b, CC_LOGIC, false)

/* inc/dec keep CF (SDM Vol. 2 INC). */
static int incdec(struct emu_vcpu *v, const struct emu_uop *u, bool inc)
{
	uint64_t a, r, la = 0;
	bool cf;
	int ret = dst_get(v, u, &a, &la, true);

	if (ret)
		return ret;
	r = (inc ? a + 1 : a - 1) & size_mask(u->osz);
	ret = dst_put(v, u, la, r);
	if (ret)
		return ret;
	cf = emu_cf_fast(v);
	cc_set(v, inc ? CC_INC : CC_DEC, u->osz, a, 1, r);
	v->cc.carry_in = cf;
	return EXIT_NEXT;
}

UOP_DEF(inc) { return incdec(v, u, true); }
UOP_DEF(dec) { return incdec(v, u, false); }

UOP_DEF(neg)
{
	uint64_t a, r, la = 0;
	int ret = dst_get(v, u, &a, &la, true);

	if (ret)
		return ret;
	r = (0 - a) & size_mask(u->osz);
	ret = dst_put(v, u, la, r);
	if (ret)
		return ret;
	cc_set(v, CC_SUB, u->osz, 0, a, r); /* CF = (a != 0) = 0 < a */
	return EXIT_NEXT;
}

UOP_DEF(not)
{
	uint64_t a, la = 0;
	int ret = dst_get(v, u, &a, &la, true);

	return ret ? ret : dst_put(v, u, la, ~a & size_mask(u->osz));
}

/* --- multiply and divide --- */

/* The double-width product of mul/imul r/m: AX for bytes, rDX:rAX otherwise. */
static inline void mul_result(struct emu_vcpu *v, unsigned int osz, uint64_t lo, uint64_t hi)
{
	if (osz == 1) {
		reg_set(v, EMU_RAX, 2, lo | (hi << 8));
	} else {
		reg_set(v, EMU_RAX, osz, lo);
		reg_set(v, EMU_RDX, osz, hi);
	}
}

/* The one-operand forms read the source into rm/mem: src_get() with no IMM. */
UOP_DEF(mul)
{
	uint64_t b, a, lo, hi;
	int ret = src_get(v, u, &b);

	if (ret)
		return ret;
	a = reg_get(v, EMU_RAX, u->osz);
	if (u->osz == 8) {
		unsigned __int128 p = (unsigned __int128)a * b;

		lo = (uint64_t)p;
		hi = (uint64_t)(p >> 64);
	} else {
		uint64_t p = a * b;

		lo = p & size_mask(u->osz);
		hi = p >> (u->osz * 8);
	}
	mul_result(v, u->osz, lo, hi);
	emu_flags_merge(v, RF_ARITH, (hi ? RF_CF | RF_OF : 0) | szp_flags(lo, u->osz));
	return EXIT_NEXT;
}

UOP_DEF(imul1)
{
	uint64_t b, lo, hi;
	bool ovf;
	int ret = src_get(v, u, &b);

	if (ret)
		return ret;
	if (u->osz == 8) {
		__int128 p = (__int128)(int64_t)reg_get(v, EMU_RAX, 8) * (int64_t)b;

		lo = (uint64_t)p;
		hi = (uint64_t)((unsigned __int128)p >> 64);
		ovf = p != (__int128)(int64_t)lo;
	} else {
		int64_t p = sext(reg_get(v, EMU_RAX, u->osz), u->osz) * sext(b, u->osz);

		lo = (uint64_t)p & size_mask(u->osz);
		hi = ((uint64_t)p >> (u->osz * 8)) & size_mask(u->osz);
		ovf = p != sext(lo, u->osz);
	}
	mul_result(v, u->osz, lo, hi);
	emu_flags_merge(v, RF_ARITH, (ovf ? RF_CF | RF_OF : 0) | szp_flags(lo, u->osz));
	return EXIT_NEXT;
}

/* imul r, r/m and imul r, r/m, imm. */
UOP_DEF(imul)
{
	uint64_t a, b, lo;
	bool ovf;
	int ret;

	if (u->cond) {
		/* Three operands: the second is the r/m source, the third the immediate. */
		ret = src_get(v, u, &a);
		b = u->imm2;
	} else {
		ret = src_get(v, u, &b);
		a = reg_get(v, u->reg, u->osz);
	}
	if (ret)
		return ret;
	if (u->osz == 8) {
		__int128 p = (__int128)(int64_t)a * (int64_t)b;

		lo = (uint64_t)p;
		ovf = p != (__int128)(int64_t)lo;
	} else {
		int64_t p = sext(a, u->osz) * sext(b, u->osz);

		lo = (uint64_t)p & size_mask(u->osz);
		ovf = p != sext(lo, u->osz);
	}
	reg_set(v, u->reg, u->osz, lo);
	emu_flags_merge(v, RF_ARITH, (ovf ? RF_CF | RF_OF : 0) | szp_flags(lo, u->osz));
	return EXIT_NEXT;
}

/* div/idiv raise #DE on a zero divisor or a quotient that does not fit (SDM Vol. 2 DIV). */
UOP_DEF(div)
{
	uint64_t d, q, r;
	int ret = src_get(v, u, &d);

	if (ret)
		return ret;
	if (!d)
		return uop_raise(v, EXC_DE, false, 0);
	if (u->osz == 8) {
		unsigned __int128 n = ((unsigned __int128)v->cpu.gpr[EMU_RDX] << 64) |
				      v->cpu.gpr[EMU_RAX];
		unsigned __int128 q128 = n / d;

		if (q128 >> 64)
			return uop_raise(v, EXC_DE, false, 0);
		q = (uint64_t)q128;
		r = (uint64_t)(n % d);
	} else {
		unsigned int bits = u->osz * 8;
		uint64_t n = u->osz == 1 ? reg_get(v, EMU_RAX, 2)
					 : (reg_get(v, EMU_RDX, u->osz) << bits) |
						   reg_get(v, EMU_RAX, u->osz);

		q = n / d;
		r = n % d;
		if (q > size_mask(u->osz))
			return uop_raise(v, EXC_DE, false, 0);
	}
	if (u->osz == 1) {
		reg_set(v, EMU_RAX, 2, q | (r << 8));
	} else {
		reg_set(v, EMU_RAX, u->osz, q);
		reg_set(v, EMU_RDX, u->osz, r);
	}
	return EXIT_NEXT;
}

UOP_DEF(idiv)
{
	uint64_t draw;
	int64_t d, q, r;
	int ret = src_get(v, u, &draw);

	if (ret)
		return ret;
	d = sext(draw, u->osz);
	if (!d)
		return uop_raise(v, EXC_DE, false, 0);
	if (u->osz == 8) {
		__int128 n = (__int128)(((unsigned __int128)v->cpu.gpr[EMU_RDX] << 64) |
					v->cpu.gpr[EMU_RAX]);
		__int128 q128;

		if (n == (__int128)((unsigned __int128)1 << 127) && d == -1)
			return uop_raise(v, EXC_DE, false, 0);
		q128 = n / d;
		if (q128 > INT64_MAX || q128 < INT64_MIN)
			return uop_raise(v, EXC_DE, false, 0);
		q = (int64_t)q128;
		r = (int64_t)(n % d);
	} else {
		unsigned int bits = u->osz * 8;
		int64_t n = u->osz == 1 ? sext(reg_get(v, EMU_RAX, 2), 2)
					: (int64_t)((reg_get(v, EMU_RDX, u->osz) << bits) |
						    reg_get(v, EMU_RAX, u->osz));

		if (u->osz == 4)
			n = (int64_t)((reg_get(v, EMU_RDX, 4) << 32) | reg_get(v, EMU_RAX, 4));
		else if (u->osz == 2)
			n = sext((reg_get(v, EMU_RDX, 2) << 16) | reg_get(v, EMU_RAX, 2), 4);
		q = n / d;
		r = n % d;
		if (q > (int64_t)(size_mask(u->osz) >> 1) || q < -(int64_t)(size_mask(u->osz) >> 1) - 1)
			return uop_raise(v, EXC_DE, false, 0);
	}
	if (u->osz == 1) {
		reg_set(v, EMU_RAX, 2, ((uint64_t)q & 0xff) | (((uint64_t)r & 0xff) << 8));
	} else {
		reg_set(v, EMU_RAX, u->osz, (uint64_t)q);
		reg_set(v, EMU_RDX, u->osz, (uint64_t)r);
	}
	return EXIT_NEXT;
}

/* --- shifts and rotates --- */

enum { SH_ROL, SH_ROR, SH_RCL, SH_RCR, SH_SHL, SH_SHR, SH_SAL, SH_SAR };

UOP_DEF(shift)
{
	unsigned int bits = u->osz * 8;
	uint64_t a, r, la = 0, m = size_mask(u->osz), f, sb = sign_bit(u->osz);
	unsigned int n = (unsigned int)(u->flags & UOP_F_IMM ? u->imm : reg_get(v, EMU_RCX, 1));
	bool cf, of;
	int ret;

	n &= u->osz == 8 ? 63 : 31;
	ret = dst_get(v, u, &a, &la, true);
	if (ret)
		return ret;
	if (!n) {
		/* A zero count changes no flags, but a 32-bit register is still written
		 * (zero-extended), as the CPU does. */
		if (u->osz == 4 && !(u->flags & UOP_F_MEMDST))
			reg_set(v, u->reg, 4, a);
		return EXIT_NEXT;
	}
	f = emu_flags(v);
	cf = f & RF_CF;
	of = f & RF_OF;
	switch (u->cond) {
	case SH_SHL:
	case SH_SAL:
		r = n >= 64 ? 0 : (a << n) & m;
		cf = n <= bits ? (a >> (bits - n)) & 1 : 0;
		of = ((r & sb) != 0) != cf;
		f = (f & ~RF_ARITH) | szp_flags(r, u->osz);
		break;
	case SH_SHR:
		r = n >= 64 ? 0 : a >> n;
		cf = n <= bits ? (a >> (n - 1)) & 1 : 0;
		of = (a & sb) != 0;
		f = (f & ~RF_ARITH) | szp_flags(r, u->osz);
		break;
	case SH_SAR: {
		int64_t s = sext(a, u->osz);

		r = (uint64_t)(s >> (n >= bits ? bits - 1 : n)) & m;
		cf = (s >> (n - 1 >= bits ? bits - 1 : n - 1)) & 1;
		of = false;
		f = (f & ~RF_ARITH) | szp_flags(r, u->osz);
		break;
	}
	case SH_ROL: {
		unsigned int k = n % bits;

		r = k ? ((a << k) | (a >> (bits - k))) & m : a;
		cf = r & 1;
		of = ((r & sb) != 0) != cf;
		break;
	}
	case SH_ROR: {
		unsigned int k = n % bits;

		r = k ? ((a >> k) | (a << (bits - k))) & m : a;
		cf = (r & sb) != 0;
		of = ((r & sb) != 0) != ((r & (sb >> 1)) != 0);
		break;
	}
	case SH_RCL:
	case SH_RCR: {
		unsigned int k = n % (bits + 1);

		r = a;
		for (unsigned int i = 0; i < k; i++) {
			bool out;

			if (u->cond == SH_RCL) {
				out = (r & sb) != 0;
				r = ((r << 1) | cf) & m;
			} else {
				out = r & 1;
				r = (r >> 1) | (cf ? sb : 0);
			}
			cf = out;
		}
		of = u->cond == SH_RCL ? ((r & sb) != 0) != cf
				       : ((r & sb) != 0) != ((r & (sb >> 1)) != 0);
		break;
	}
	default:
		return raise_ud(v);
	}
	ret = dst_put(v, u, la, r);
	if (ret)
		return ret;
	f = (f & ~(RF_CF | RF_OF)) | (cf ? RF_CF : 0) | (of ? RF_OF : 0);
	emu_flags_set(v, f);
	return EXIT_NEXT;
}

/* shld/shrd: (cond) 1 for shld; count in imm or CL (imm2 = 1). */
UOP_DEF(shd)
{
	unsigned int bits = u->osz * 8;
	unsigned int n = (unsigned int)(u->imm2 ? reg_get(v, EMU_RCX, 1) : u->imm);
	uint64_t a, b = reg_get(v, u->rm, u->osz), r, la = 0, m = size_mask(u->osz), f;
	bool cf, of;
	int ret;

	n &= u->osz == 8 ? 63 : 31;
	ret = dst_get(v, u, &a, &la, true);
	if (ret)
		return ret;
	if (!n) {
		if (u->osz == 4 && !(u->flags & UOP_F_MEMDST))
			reg_set(v, u->reg, 4, a);
		return EXIT_NEXT;
	}
	if (n > bits) /* undefined for 16-bit operands; do what the 32-bit form does */
		n %= bits;
	if (!n)
		return EXIT_NEXT;
	if (u->cond) {
		r = ((a << n) | (n == bits ? 0 : b >> (bits - n))) & m;
		if (n == bits)
			r = b;
		cf = (a >> (bits - n)) & 1;
	} else {
		r = ((a >> n) | (n == bits ? 0 : b << (bits - n))) & m;
		if (n == bits)
			r = b;
		cf = (a >> (n - 1)) & 1;
	}
	of = ((r ^ a) & sign_bit(u->osz)) != 0;
	ret = dst_put(v, u, la, r);
	if (ret)
		return ret;
	f = (emu_flags(v) & ~RF_ARITH) | szp_flags(r, u->osz) | (cf ? RF_CF : 0) | (of ? RF_OF : 0);
	emu_flags_set(v, f);
	return EXIT_NEXT;
}

/* bt/bts/btr/btc (cond 0-3). With a register bit offset and a memory operand the offset
 * addresses the bit string beyond the operand (SDM Vol. 2 BT). */
UOP_DEF(bt)
{
	unsigned int bits = u->osz * 8;
	uint64_t off = u->flags & UOP_F_IMM ? u->imm : reg_get(v, u->rm, u->osz), a, la = 0, r;
	bool write = u->cond != 0, bit;
	int ret;

	if (u->flags & UOP_F_MEMDST) {
		int64_t disp = 0;

		if (u->flags & UOP_F_IMM)
			off &= bits - 1;
		else {
			disp = (sext(off, u->osz) >> (bits == 64 ? 6 : bits == 32 ? 5 : 4)) *
			       (int64_t)u->osz;
			off &= bits - 1;
		}
		ret = uop_linear(v, u->seg, (uop_ea(v, u) + (uint64_t)disp) & asz_mask(u->asz),
				 u->osz, write, &la);
		if (!ret)
			ret = mem_read(v, la, u->osz, &a, u->seg, write ? TLB_WRITE : TLB_READ);
		if (ret)
			return ret;
	} else {
		off &= bits - 1;
		a = reg_get(v, u->reg, u->osz);
	}
	bit = (a >> off) & 1;
	switch (u->cond) {
	case 1: r = a | (1ull << off); break;
	case 2: r = a & ~(1ull << off); break;
	case 3: r = a ^ (1ull << off); break;
	default: r = a; break;
	}
	if (write) {
		ret = dst_put(v, u, la, r);
		if (ret)
			return ret;
	}
	emu_flags_merge(v, RF_CF, bit ? RF_CF : 0);
	return EXIT_NEXT;
}

/* bsf, bsr, tzcnt, lzcnt, popcnt (cond 0-4). */
UOP_DEF(bitscan)
{
	const struct emu_features *ft = v->env.features;
	unsigned int bits = u->osz * 8, op = u->cond;
	uint64_t s, r = 0, f;
	int ret;

	/* Without CPUID.80000001H:ECX.LZCNT (CPUID.(7,0):EBX.BMI1) the F3 prefix is ignored:
	 * lzcnt is bsr and tzcnt bsf (SDM Vol. 2 LZCNT, TZCNT); popcnt is #UD. */
	if (op == 3 && !ft->lzcnt)
		op = 1;
	else if (op == 2 && !ft->bmi1)
		op = 0;
	else if (op == 4 && !ft->popcnt)
		return raise_ud(v);
	ret = src_get(v, u, &s);
	if (ret)
		return ret;
	f = emu_flags(v);
	switch (op) {
	case 0:
	case 1:
		/* Source zero: ZF set, destination unchanged (as current CPUs do); the flags
		 * the SDM leaves undefined are left as they were. */
		if (!s) {
			emu_flags_set(v, f | RF_ZF);
			return EXIT_NEXT;
		}
		r = op == 0 ? (uint64_t)__builtin_ctzll(s) : 63 - (uint64_t)__builtin_clzll(s);
		f &= ~RF_ZF;
		break;
	case 2:
		r = s ? (uint64_t)__builtin_ctzll(s) : bits;
		f = (f & ~(RF_CF | RF_ZF)) | (s ? 0 : RF_CF) | (r == 0 ? RF_ZF : 0);
		break;
	case 3:
		r = s ? (uint64_t)__builtin_clzll(s) - (64 - bits) : bits;
		f = (f & ~(RF_CF | RF_ZF)) | (s ? 0 : RF_CF) | (r == 0 ? RF_ZF : 0);
		break;
	default:
		/* OF SF ZF AF CF PF cleared; ZF set when the source is zero. */
		r = (uint64_t)__builtin_popcountll(s);
		f = (f & ~RF_ARITH) | (s ? 0 : RF_ZF);
		break;
	}
	reg_set(v, u->reg, u->osz, r);
	emu_flags_set(v, f);
	return EXIT_NEXT;
}

UOP_DEF(xadd)
{
	uint64_t a, b = reg_get(v, u->rm, u->osz), r, la = 0;
	int ret = dst_get(v, u, &a, &la, true);

	if (ret)
		return ret;
	r = (a + b) & size_mask(u->osz);
	ret = dst_put(v, u, la, r);
	if (ret)
		return ret;
	reg_set(v, u->rm, u->osz, a);
	cc_set(v, CC_ADD, u->osz, a, b, r);
	return EXIT_NEXT;
}

/* cmpxchg: compare rAX with the destination; equal: dst = src, else rAX = dst. The memory
 * destination is written either way (SDM Vol. 2 CMPXCHG). */
UOP_DEF(cmpxchg)
{
	uint64_t a, acc = reg_get(v, EMU_RAX, u->osz), la = 0;
	int ret = dst_get(v, u, &a, &la, true);

	if (ret)
		return ret;
	if (a == acc) {
		ret = dst_put(v, u, la, reg_get(v, u->rm, u->osz));
	} else {
		if (u->flags & UOP_F_MEMDST)
			ret = dst_put(v, u, la, a);
		if (!ret)
			reg_set(v, EMU_RAX, u->osz, a);
	}
	if (ret)
		return ret;
	cc_set(v, CC_SUB, u->osz, acc, a, (acc - a) & size_mask(u->osz));
	return EXIT_NEXT;
}

/* clc, stc, cmc, cld, std (cond 0-4). */
UOP_DEF(flagop)
{
	switch (u->cond) {
	case 0: emu_flags_merge(v, RF_CF, 0); break;
	case 1: emu_flags_merge(v, RF_CF, RF_CF); break;
	case 2: emu_flags_merge(v, RF_CF, emu_cf(v) ? 0 : RF_CF); break;
	case 3: v->cpu.rflags &= ~RF_DF; break;
	default: v->cpu.rflags |= RF_DF; break;
	}
	return EXIT_NEXT;
}
