/* insn_bits.c: bit counting and bit testing: popcnt, lzcnt, tzcnt, bsf, bsr, bt, bts, btr, btc
 * (SDM Vol. 2, flags exactly as specified; "undefined" flags are left unchanged). */
#include "emu_internal.h"


/* (m) is what the CPU executes: LZCNT and TZCNT are BSR and BSF on CPUs without them. */
static int count(struct emu_ctx *ctx, ZydisMnemonic m)
{
	struct emu_cpu *c = ctx->cpu;
	unsigned int bits = ctx->ops[0].size;
	uint64_t src, result = 0, flags = c->rflags;
	int ret = emu_op_read(ctx, &ctx->ops[1], &src);

	if (ret)
		return ret;
	src &= emu_mask(bits);
	switch (m) {
	case ZYDIS_MNEMONIC_POPCNT:
		/* OF SF ZF AF CF PF cleared; ZF set when the source is zero. */
		result = __builtin_popcountll(src);
		flags &= ~RF_ARITH;
		if (!src)
			flags |= RF_ZF;
		break;
	case ZYDIS_MNEMONIC_LZCNT:
		result = src ? (unsigned int)__builtin_clzll(src) - (64 - bits) : bits;
		flags &= ~(RF_CF | RF_ZF);
		flags |= (src ? 0 : RF_CF) | (result ? 0 : RF_ZF);
		break;
	case ZYDIS_MNEMONIC_TZCNT:
		result = src ? (unsigned int)__builtin_ctzll(src) : bits;
		flags &= ~(RF_CF | RF_ZF);
		flags |= (src ? 0 : RF_CF) | (result ? 0 : RF_ZF);
		break;
	case ZYDIS_MNEMONIC_BSF:
	case ZYDIS_MNEMONIC_BSR:
		/* Source zero: ZF set, destination unchanged (as current CPUs do). */
		flags &= ~RF_ZF;
		if (!src) {
			c->rflags = flags | RF_ZF;
			return EMU_OK;
		}
		result = m == ZYDIS_MNEMONIC_BSF ? __builtin_ctzll(src) : 63 - __builtin_clzll(src);
		break;
	default:
		break;
	}
	ret = emu_op_write(ctx, &ctx->ops[0], result);
	if (ret)
		return ret;
	c->rflags = flags;
	return EMU_OK;
}

/* bt/bts/btr/btc: with a register bit offset and a memory operand the offset addresses
 * memory beyond the operand (signed, in operand-size units: SDM Vol. 2 BT). bts/btr/btc
 * read with write intent: a fault on the read is reported as a write, as the CPU does for a
 * read-modify-write. */
static int bit_test(struct emu_ctx *ctx)
{
	struct emu_cpu *c = ctx->cpu;
	const ZydisDecodedOperand *dst = &ctx->ops[0], *off_op = &ctx->ops[1];
	unsigned int bits = dst->size;
	uint64_t offset, val, bit;
	ZydisMnemonic m = ctx->insn.mnemonic;
	bool rmw = m != ZYDIS_MNEMONIC_BT;
	int ret = emu_op_read(ctx, off_op, &offset);

	if (ret)
		return ret;
	if (dst->type == ZYDIS_OPERAND_TYPE_MEMORY && off_op->type == ZYDIS_OPERAND_TYPE_REGISTER) {
		int64_t soff = (int64_t)(offset << (64 - bits)) >> (64 - bits);
		int64_t unit = soff >= 0 ? soff / (int64_t)bits
					 : -((-soff + (int64_t)bits - 1) / (int64_t)bits);
		uint64_t la;
		uint32_t bytes = bits / 8;

		/* Segment limit and canonical form apply to the bytes actually accessed. */
		ret = emu_op_mem_la_disp(ctx, dst, unit * (int64_t)bytes, bytes, rmw, &la);
		if (ret)
			return ret;
		bit = (uint64_t)(soff - unit * (int64_t)bits);
		val = 0;
		ret = emu_read_linear(ctx, la, &val, bytes, rmw ? EMU_ACC_WRITE : 0);
		if (ret)
			return ret;
		c->rflags = (c->rflags & ~RF_CF) | ((val >> bit) & 1 ? RF_CF : 0);
		if (m == ZYDIS_MNEMONIC_BT)
			return EMU_OK;
		val = m == ZYDIS_MNEMONIC_BTS ? val | (1ull << bit)
		      : m == ZYDIS_MNEMONIC_BTR ? val & ~(1ull << bit) : val ^ (1ull << bit);
		return emu_write_linear(ctx, la, &val, bytes, 0);
	}
	bit = offset & (bits - 1);
	ret = emu_op_read_acc(ctx, dst, &val, rmw ? EMU_ACC_WRITE : 0);
	if (ret)
		return ret;
	c->rflags = (c->rflags & ~RF_CF) | ((val >> bit) & 1 ? RF_CF : 0);
	if (m == ZYDIS_MNEMONIC_BT)
		return EMU_OK;
	val = m == ZYDIS_MNEMONIC_BTS ? val | (1ull << bit)
	      : m == ZYDIS_MNEMONIC_BTR ? val & ~(1ull << bit) : val ^ (1ull << bit);
	return emu_op_write(ctx, dst, val);
}

int emu_exec_bits(struct emu_ctx *ctx)
{
	const struct emu_features *f = ctx->env->features;

	switch (ctx->insn.mnemonic) {
	case ZYDIS_MNEMONIC_POPCNT:
		if (!f->popcnt)
			return emu_ud(ctx);
		return count(ctx, ZYDIS_MNEMONIC_POPCNT);
	case ZYDIS_MNEMONIC_LZCNT:
		/* Without CPUID.80000001H:ECX.LZCNT the F3 prefix is ignored: this is BSR. */
		return count(ctx, f->lzcnt ? ZYDIS_MNEMONIC_LZCNT : ZYDIS_MNEMONIC_BSR);
	case ZYDIS_MNEMONIC_TZCNT:
		/* Without CPUID.(7,0):EBX.BMI1, likewise BSF. */
		return count(ctx, f->bmi1 ? ZYDIS_MNEMONIC_TZCNT : ZYDIS_MNEMONIC_BSF);
	case ZYDIS_MNEMONIC_BSF:
	case ZYDIS_MNEMONIC_BSR:
		return count(ctx, ctx->insn.mnemonic);
	default:
		if (ctx->insn.attributes & ZYDIS_ATTRIB_HAS_LOCK)
			return emu_unsupported(ctx, "locked %s", ctx->res->mnemonic);
		return bit_test(ctx);
	}
}
