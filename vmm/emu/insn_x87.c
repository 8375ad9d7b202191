/* insn_x87.c: the x87 instructions a kernel uses at boot and in context switches: fninit,
 * fnclex, fwait, fnstcw, fldcw, fnstsw, and loads/stores of the stack top (fld, fst, fstp,
 * fild, fist, fistp, fldz, fld1), on the x87 state in the XSAVE image (SDM Vol. 1 ch. 8), with
 * the stack faults and the numeric exceptions of stores (invalid, overflow, underflow,
 * precision). Arithmetic is not emulated: it is reported as unsupported. */
#include <fenv.h>
#include <math.h>
#include <string.h>

#include "emu_internal.h"

#define FSW_IE 0x0001
#define FSW_OE 0x0008
#define FSW_UE 0x0010
#define FSW_PE 0x0020
#define FSW_SF 0x0040
#define FSW_ES 0x0080
#define FSW_C1 0x0200
#define FSW_TOP_SHIFT 11
#define FSW_B  0x8000
#define FCW_IM 0x0001	/* each FCW mask bit sits where its FSW flag does */

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static unsigned int top(const struct emu_cpu *c)
{
	return (get16(c->xsave + XSAVE_FSW) >> FSW_TOP_SHIFT) & 7;
}

static void set_top(struct emu_cpu *c, unsigned int t)
{
	uint16_t fsw = get16(c->xsave + XSAVE_FSW);

	put16(c->xsave + XSAVE_FSW, (fsw & ~(7u << FSW_TOP_SHIFT)) | ((t & 7) << FSW_TOP_SHIFT));
}

/* The abridged tag: one bit per physical register, 1 = valid (SDM Vol. 1 10.5.1.1). */
static bool tag_valid(const struct emu_cpu *c, unsigned int phys)
{
	return (c->xsave[XSAVE_FTW] >> phys) & 1;
}

static void set_tag(struct emu_cpu *c, unsigned int phys, bool valid)
{
	if (valid)
		c->xsave[XSAVE_FTW] |= 1u << phys;
	else
		c->xsave[XSAVE_FTW] &= ~(1u << phys);
}

/* The image stores ST(0)..ST(7) in stack order, 16 bytes apart, 10 bytes used. */
static uint8_t *st(struct emu_cpu *c, unsigned int i)
{
	return c->xsave + XSAVE_ST0 + 16 * i;
}

/* Stack fault (SDM Vol. 1 8.5.1.1): IE and SF set, C1 says overflow (1) or underflow (0); when
 * unmasked the exception is pending (ES, B) and the next waiting instruction raises #MF. */
static bool stack_fault(struct emu_cpu *c, bool overflow)
{
	uint16_t fsw = get16(c->xsave + XSAVE_FSW) | FSW_IE | FSW_SF;

	fsw = overflow ? fsw | FSW_C1 : fsw & ~FSW_C1;
	if (!(get16(c->xsave + XSAVE_FCW) & FCW_IM))
		fsw |= FSW_ES | FSW_B;
	put16(c->xsave + XSAVE_FSW, fsw);
	return get16(c->xsave + XSAVE_FCW) & FCW_IM; /* masked: continue with the default */
}

/* Raises the numeric exceptions (flags, FSW bits) of a result that was then stored: each sets
 * its flag, and an unmasked one leaves #MF pending for the next waiting instruction (ES, B). */
static void numeric_flags(struct emu_cpu *c, uint16_t flags)
{
	uint16_t fsw = get16(c->xsave + XSAVE_FSW) | flags;

	if (flags & ~get16(c->xsave + XSAVE_FCW))
		fsw |= FSW_ES | FSW_B;
	put16(c->xsave + XSAVE_FSW, fsw);
}

static void push(struct emu_cpu *c, long double v)
{
	unsigned int t = (top(c) - 1) & 7;

	/* Overflow: ST7, which the push would load, is in use. Unmasked, the push does not
	 * happen: TOP and the registers stay, only the status word says so (SDM Vol. 1
	 * 8.5.1.1); masked, the real indefinite is pushed. */
	if (tag_valid(c, t)) {
		if (!stack_fault(c, true))
			return;
		v = -NAN;
	}
	memmove(st(c, 1), st(c, 0), 16 * 7);
	memset(st(c, 0), 0, 16);
	memcpy(st(c, 0), &v, 10);
	set_top(c, t);
	set_tag(c, t, true);
}

static bool read_st0(struct emu_cpu *c, long double *v)
{
	if (!tag_valid(c, top(c))) {
		if (!stack_fault(c, false))
			return false;
		*v = -NAN;
		return true;
	}
	*v = 0;
	memcpy(v, st(c, 0), 10);
	return true;
}

static void pop(struct emu_cpu *c)
{
	unsigned int t = top(c);

	set_tag(c, t, false);
	memmove(st(c, 0), st(c, 1), 16 * 7);
	memset(st(c, 7), 0, 16);
	set_top(c, t + 1);
}

static int rounding_mode(const struct emu_cpu *c)
{
	static const int modes[] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};

	return modes[(get16(c->xsave + XSAVE_FCW) >> 10) & 3];
}

static int load(struct emu_ctx *ctx, long double *v)
{
	const ZydisDecodedOperand *op = &ctx->ops[ctx->insn.operand_count_visible > 1 ? 1 : 0];
	uint8_t raw[10] = {0};
	uint64_t la;
	int ret;

	if (op->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		unsigned int i = op->reg.value - ZYDIS_REGISTER_ST0;

		if (!tag_valid(ctx->cpu, (top(ctx->cpu) + i) & 7))
			return emu_unsupported(ctx, "%s of an empty register", ctx->res->mnemonic);
		*v = 0;
		memcpy(v, st(ctx->cpu, i), 10);
		return EMU_OK;
	}
	ret = emu_op_mem_la(ctx, op, op->size / 8, false, &la);
	if (!ret)
		ret = emu_read_linear(ctx, la, raw, op->size / 8, 0);
	if (ret)
		return ret;
	if (ctx->insn.mnemonic == ZYDIS_MNEMONIC_FILD) {
		int64_t i = 0;

		memcpy(&i, raw, op->size / 8);
		if (op->size == 16)
			i = (int16_t)i;
		else if (op->size == 32)
			i = (int32_t)i;
		*v = (long double)i;
	} else if (op->size == 32) {
		float f;

		memcpy(&f, raw, 4);
		*v = f;
	} else if (op->size == 64) {
		double d;

		memcpy(&d, raw, 8);
		*v = d;
	} else {
		*v = 0;
		memcpy(v, raw, 10);
	}
	return EMU_OK;
}

/* fist/fistp: (v) rounded with the guest's rounding control into (*out), (bits) wide. A NaN,
 * an infinity or a value out of range is invalid: masked, the integer indefinite (the most
 * negative value); unmasked, false with nothing to store (SDM Vol. 2 FIST/FISTP). Otherwise
 * an inexact result sets PE, and C1 when rounded up in magnitude. */
static bool to_integer(struct emu_cpu *c, long double v, unsigned int bits, int64_t *out)
{
	long double lim = bits == 64 ? 0x1p63L : bits == 32 ? 0x1p31L : 0x1p15L, r;
	int saved = fegetround();
	uint16_t fsw;

	fesetround(rounding_mode(c));
	r = nearbyintl(v);
	fesetround(saved);
	fsw = get16(c->xsave + XSAVE_FSW) & ~FSW_C1;
	if (!(r >= -lim && r < lim)) {
		put16(c->xsave + XSAVE_FSW, fsw);
		numeric_flags(c, FSW_IE);
		*out = (int64_t)(1ull << 63) >> (64 - bits);
		return get16(c->xsave + XSAVE_FCW) & FCW_IM;
	}
	if (fabsl(r) > fabsl(v))
		fsw |= FSW_C1;
	put16(c->xsave + XSAVE_FSW, fsw);
	if (r != v)
		numeric_flags(c, FSW_PE);
	*out = (int64_t)r;
	return true;
}

/* fst/fstp to a 32- or 64-bit real: converted on the host with the guest's rounding control,
 * whose exception flags become the guest's: precision (and C1 when rounded up in magnitude),
 * overflow, underflow (SDM Vol. 1 8.5.4-8.5.6). False for an unmasked overflow or underflow,
 * whose handling (nothing stored) is not emulated. */
static bool to_real(struct emu_ctx *ctx, long double v, unsigned int bits, uint8_t *raw)
{
	struct emu_cpu *c = ctx->cpu;
	volatile long double in = v, back;
	volatile float f;
	volatile double d;
	uint16_t flags = 0, fsw;
	int saved = fegetround(), ex;

	fesetround(rounding_mode(c));
	feclearexcept(FE_ALL_EXCEPT);
	if (bits == 32) {
		f = (float)in;
		back = f;
	} else {
		d = (double)in;
		back = d;
	}
	ex = fetestexcept(FE_INEXACT | FE_OVERFLOW | FE_UNDERFLOW);
	feclearexcept(FE_ALL_EXCEPT);
	fesetround(saved);
	if (ex & FE_OVERFLOW)
		flags |= FSW_OE;
	if (ex & FE_UNDERFLOW)
		flags |= FSW_UE;
	if (ex & FE_INEXACT)
		flags |= FSW_PE;
	if (flags & (FSW_OE | FSW_UE) & ~get16(c->xsave + XSAVE_FCW))
		return false;
	fsw = get16(c->xsave + XSAVE_FSW) & ~FSW_C1;
	if ((flags & FSW_PE) && fabsl(back) > fabsl(v))
		fsw |= FSW_C1;
	put16(c->xsave + XSAVE_FSW, fsw);
	if (flags)
		numeric_flags(c, flags);
	if (bits == 32) {
		float t = f;

		memcpy(raw, &t, 4);
	} else {
		double t = d;

		memcpy(raw, &t, 8);
	}
	return true;
}

static int store(struct emu_ctx *ctx, long double v, bool pop_after)
{
	struct emu_cpu *c = ctx->cpu;
	const ZydisDecodedOperand *op = &ctx->ops[0];
	ZydisMnemonic m = ctx->insn.mnemonic;
	uint8_t raw[10];
	uint64_t la;
	int ret;

	if (op->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		unsigned int i = op->reg.value - ZYDIS_REGISTER_ST0;

		memcpy(st(c, i), &v, 10);
		set_tag(c, (top(c) + i) & 7, true);
	} else {
		ret = emu_op_mem_la(ctx, op, op->size / 8, true, &la);
		if (ret)
			return ret;
		if (m == ZYDIS_MNEMONIC_FIST || m == ZYDIS_MNEMONIC_FISTP) {
			int64_t i;

			/* Unmasked invalid: nothing stored, nothing popped, #MF pending. */
			if (!to_integer(c, v, op->size, &i))
				return EMU_OK;
			memcpy(raw, &i, 8);
		} else if (op->size == 32 || op->size == 64) {
			if (!to_real(ctx, v, op->size, raw))
				return emu_unsupported(ctx,
						       "%s with an unmasked overflow or underflow",
						       ctx->res->mnemonic);
		} else {
			memcpy(raw, &v, 10);
		}
		ret = emu_write_linear(ctx, la, raw, op->size / 8, 0);
		if (ret)
			return ret;
	}
	if (pop_after)
		pop(c);
	return EMU_OK;
}

int emu_exec_x87(struct emu_ctx *ctx)
{
	struct emu_cpu *c = ctx->cpu;
	ZydisMnemonic m = ctx->insn.mnemonic;
	uint16_t fsw = get16(c->xsave + XSAVE_FSW);
	long double v = 0;
	int ret;

	/* WAIT/FWAIT faults only with TS and MP; the others with EM or TS (SDM Vol. 3A 2.5). */
	if (m == ZYDIS_MNEMONIC_FWAIT) {
		if ((c->cr0 & CR0_TS) && (c->cr0 & CR0_MP))
			return emu_raise(ctx, EXC_NM, false, 0);
	} else if (c->cr0 & (CR0_EM | CR0_TS)) {
		return emu_raise(ctx, EXC_NM, false, 0);
	}
	/* Waiting instructions deliver a pending unmasked exception first. */
	if (m != ZYDIS_MNEMONIC_FNINIT && m != ZYDIS_MNEMONIC_FNCLEX && m != ZYDIS_MNEMONIC_FNSTCW &&
	    m != ZYDIS_MNEMONIC_FNSTSW && (fsw & FSW_ES)) {
		if (!(c->cr0 & CR0_NE))
			return emu_unsupported(ctx, "x87 error reporting through IRQ 13 (CR0.NE=0)");
		return emu_raise(ctx, EXC_MF, false, 0);
	}
	emu_xsave_touch(ctx, XFEATURE_X87);
	switch (m) {
	case ZYDIS_MNEMONIC_FNINIT:
		/* FCW 0x37f, FSW 0, all tags empty, FIP/FDP/FOP 0; ST registers unchanged. */
		put16(c->xsave + XSAVE_FCW, 0x037f);
		put16(c->xsave + XSAVE_FSW, 0);
		c->xsave[XSAVE_FTW] = 0;
		memset(c->xsave + XSAVE_FOP, 0, 18);
		return EMU_OK;
	case ZYDIS_MNEMONIC_FNCLEX:
		put16(c->xsave + XSAVE_FSW, fsw & ~(0x00ff | FSW_B));
		return EMU_OK;
	case ZYDIS_MNEMONIC_FWAIT:
		return EMU_OK;
	case ZYDIS_MNEMONIC_FNSTCW:
		return emu_op_write(ctx, &ctx->ops[0], get16(c->xsave + XSAVE_FCW));
	case ZYDIS_MNEMONIC_FNSTSW:
		return emu_op_write(ctx, &ctx->ops[0], fsw);
	case ZYDIS_MNEMONIC_FLDCW: {
		uint64_t cw;

		ret = emu_op_read(ctx, &ctx->ops[0], &cw);
		if (ret)
			return ret;
		put16(c->xsave + XSAVE_FCW, (uint16_t)cw | 0x40); /* bit 6 reads as 1 */
		return EMU_OK;
	}
	case ZYDIS_MNEMONIC_FLDZ:
		push(c, 0.0L);
		return EMU_OK;
	case ZYDIS_MNEMONIC_FLD1:
		push(c, 1.0L);
		return EMU_OK;
	case ZYDIS_MNEMONIC_FLD:
	case ZYDIS_MNEMONIC_FILD:
		ret = load(ctx, &v);
		if (ret)
			return ret;
		push(c, v);
		return EMU_OK;
	case ZYDIS_MNEMONIC_FST:
	case ZYDIS_MNEMONIC_FSTP:
	case ZYDIS_MNEMONIC_FIST:
	case ZYDIS_MNEMONIC_FISTP:
		if (!read_st0(c, &v))
			return EMU_OK; /* unmasked stack underflow: nothing stored, #MF pending */
		return store(ctx, v, m == ZYDIS_MNEMONIC_FSTP || m == ZYDIS_MNEMONIC_FISTP);
	default:
		return emu_unsupported(ctx, "x87 %s", ctx->res->mnemonic);
	}
}
