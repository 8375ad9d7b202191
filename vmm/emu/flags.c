/* flags.c: lazy arithmetic flags. An instruction records its operation, operands and result
 * (struct emu_cc); CF, PF, AF, ZF, SF and OF are computed from them only when something reads
 * them (SDM Vol. 1 3.4.3 and Appendix A for each instruction's effect). */
#include "uop_internal.h"

static bool carry(const struct emu_cc *c, uint64_t m)
{
	uint64_t a = c->a & m, b = c->b & m, r = c->res & m;

	switch (c->op) {
	case CC_ADD: return r < a;
	case CC_ADC: return c->carry_in ? r <= a : r < a;
	case CC_SUB: return a < b;
	case CC_SBB: return c->carry_in ? a <= b : a < b;
	case CC_INC:
	case CC_DEC: return c->carry_in;
	default: return false;
	}
}

static bool overflow(const struct emu_cc *c, uint64_t sb)
{
	uint64_t a = c->a, b = c->b, r = c->res;

	switch (c->op) {
	case CC_ADD:
	case CC_ADC:
	case CC_INC: return ((a ^ ~b) & (a ^ r) & sb) != 0;
	case CC_SUB:
	case CC_SBB:
	case CC_DEC: return ((a ^ b) & (a ^ r) & sb) != 0;
	default: return false;
	}
}

static uint64_t lazy_flags(const struct emu_vcpu *v)
{
	const struct emu_cc *c = &v->cc;
	unsigned int osz = c->bits / 8;
	uint64_t m = size_mask(osz), f = szp_flags(c->res, osz);

	if (carry(c, m))
		f |= RF_CF;
	if (overflow(c, sign_bit(osz)))
		f |= RF_OF;
	if (c->op != CC_LOGIC && ((c->a ^ c->b ^ c->res) & 0x10))
		f |= RF_AF;
	return f;
}

uint64_t emu_flags(const struct emu_vcpu *v)
{
	if (v->cc.op == CC_EFLAGS)
		return v->cpu.rflags;
	return (v->cpu.rflags & ~RF_ARITH) | lazy_flags(v);
}

void emu_flags_set(struct emu_vcpu *v, uint64_t rflags)
{
	v->cpu.rflags = rflags | 2;
	v->cc.op = CC_EFLAGS;
}

void emu_flags_merge(struct emu_vcpu *v, uint64_t mask, uint64_t val)
{
	uint64_t f = emu_flags(v);

	emu_flags_set(v, (f & ~mask) | (val & mask));
}

bool emu_cf(const struct emu_vcpu *v)
{
	if (v->cc.op == CC_EFLAGS)
		return v->cpu.rflags & RF_CF;
	return carry(&v->cc, size_mask(v->cc.bits / 8));
}

bool emu_cond_slow(const struct emu_vcpu *v, unsigned int cc)
{
	uint64_t f;
	bool r;

	f = emu_flags(v);
	switch (cc >> 1) {
	case 0: r = f & RF_OF; break;
	case 1: r = f & RF_CF; break;
	case 2: r = f & RF_ZF; break;
	case 3: r = f & (RF_CF | RF_ZF); break;
	case 4: r = f & RF_SF; break;
	case 5: r = f & RF_PF; break;
	case 6: r = !(f & RF_SF) != !(f & RF_OF); break;
	default: r = (f & RF_ZF) || (!(f & RF_SF) != !(f & RF_OF)); break;
	}
	return r ^ (cc & 1);
}
